"""Give memory back after visitors leave: release what Streamlit keeps of ended sessions, then
hand freed heap pages back to the system.

Measured (bench/bench_load.py, README "Memory on a small dyno"): Streamlit keeps a disconnected
session for ``server.disconnectedSessionTTL`` seconds so that a reconnect can resume it. When that
time is up, its storage drops the session *without shutting it down*, and only on its next write
(the next disconnect). What the shutdown would have released stays in the server for good:

- the session's uploaded files (``MemoryUploadedFileManager``, bytes in RAM, per session),
- its images and downloads (``MediaFileManager``: the session's references are never cleared, so
  the files never become orphans),
- its dataframe sources, and the expired session object with its session state.

:func:`sweep` releases all of it for every session that is neither connected nor waiting for a
reconnect, then runs the garbage collector and glibc's ``malloc_trim(0)``: freed memory inside
the allocator's arenas goes back to the system instead of staying in the process's RSS.
:func:`start` runs it every ``CVPLAY_HOUSEKEEPING_S`` seconds (default 30; 0 turns it off) in
one daemon thread per server process. It reads Streamlit's runtime objects defensively: if a
future Streamlit renames them, the sweep logs that once and does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from streamlit.logger import get_logger

LOGGER = get_logger(__name__)
DEFAULT_INTERVAL_S = 30.0


@dataclass
class SweepReport:
    ended_sessions: list[str] = field(default_factory=list)
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    media_sessions: int = 0
    expired_sessions: int = 0
    trimmed: bool = False

    @property
    def released_anything(self) -> bool:
        return bool(self.ended_sessions or self.expired_sessions)

    def describe(self) -> str:
        return (f"released {self.uploaded_files} uploaded file(s) ({self.uploaded_bytes / 2**20:.1f} MB) and the images "
                f"of {self.media_sessions} session(s); {len(self.ended_sessions)} ended session(s), "
                f"{self.expired_sessions} expired session(s) dropped"
                + ("; heap trimmed" if self.trimmed else ""))


def _live_session_ids(session_mgr: Any) -> set[str]:
    """Sessions that are connected or still waiting for a reconnect (within the TTL)."""
    return {info.session.id for info in session_mgr.list_sessions()}


def _reap_expired(session_mgr: Any) -> int:
    """Drop expired sessions from Streamlit's session storage now, not at its next write."""
    storage = getattr(session_mgr, "_session_storage", None)
    cache = getattr(storage, "_cache", None)
    expire = getattr(cache, "expire", None)
    if expire is None:
        return 0
    lock = getattr(session_mgr, "_storage_lock", None) or threading.Lock()
    with lock:
        return len(expire())


def malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: give free heap pages of every arena back to the system."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))


def sweep(runtime: Any, trim: bool = True) -> SweepReport:
    """Release the uploads, images and dataframe sources of sessions that have ended, drop
    expired sessions, then collect garbage and trim the heap. Safe from any thread."""
    report = SweepReport()
    session_mgr = runtime._session_mgr
    report.expired_sessions = _reap_expired(session_mgr)
    live = _live_session_ids(session_mgr)

    uploads = runtime.uploaded_file_mgr
    file_storage = getattr(uploads, "file_storage", None)
    upload_sessions = set(file_storage) if isinstance(file_storage, dict) else set()
    media = runtime.media_file_mgr
    by_session = getattr(media, "_files_by_session_and_coord", None)
    media_sessions = set(by_session) if isinstance(by_session, dict) else set()
    ended = sorted((upload_sessions | media_sessions) - live)
    for session_id in ended:
        if session_id in upload_sessions:
            files = list(file_storage.get(session_id, {}).values())
            report.uploaded_files += len(files)
            report.uploaded_bytes += sum(len(getattr(f, "data", b"")) for f in files)
            uploads.remove_session_files(session_id)
        if session_id in media_sessions:
            media.clear_session_refs(session_id)
            report.media_sessions += 1
        dataframes = getattr(runtime, "dataframe_source_mgr", None)
        if dataframes is not None and hasattr(dataframes, "clear_all_for_session"):
            dataframes.clear_all_for_session(session_id)
    if report.media_sessions:
        media.remove_orphaned_files()
    report.ended_sessions = ended
    if trim and report.released_anything:
        gc.collect()
        report.trimmed = malloc_trim()
    return report


class Housekeeper:
    """Runs :func:`sweep` every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float):
        self.interval = interval
        self.sweeps = 0
        self.last: SweepReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cvplay-housekeeping", daemon=True)

    def start(self) -> "Housekeeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from streamlit.runtime import Runtime

        while not self._stop.wait(self.interval):
            try:
                if not Runtime.exists():
                    continue
                report = sweep(Runtime.instance())
            except Exception as error:  # noqa: BLE001 - never take the server down; say why once
                LOGGER.warning("cvplay housekeeping stopped: %s: %s", type(error).__name__, error)
                return
            self.sweeps += 1
            self.last = report
            if report.released_anything:
                LOGGER.info("cvplay housekeeping: %s", report.describe())


def interval_s() -> float:
    value = os.environ.get("CVPLAY_HOUSEKEEPING_S", "").strip()
    try:
        return float(value) if value else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


@st.cache_resource(show_spinner=False)
def _housekeeper(interval: float) -> Housekeeper:
    return Housekeeper(interval).start()


def start() -> Housekeeper | None:
    """Start the server's housekeeping thread once (every call after the first is free)."""
    interval = interval_s()
    if interval <= 0:
        return None
    return _housekeeper(interval)


__all__ = ["Housekeeper", "SweepReport", "malloc_trim", "start", "sweep"]
