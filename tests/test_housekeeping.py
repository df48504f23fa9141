"""Session clean-up (cvplay_ui/housekeeping.py): what an ended session leaves in Streamlit's
upload and media managers is released, live sessions keep theirs, expired sessions are dropped;
and end to end, a visitor's upload is gone from a real server after the visitor leaves."""

from __future__ import annotations

import textwrap
import time
from types import SimpleNamespace

import pytest
from streamlit.runtime import media_file_manager as media_module
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from cvplay_ui import housekeeping


class FakeCache:
    def __init__(self, expired):
        self.expired = list(expired)

    def expire(self):
        gone, self.expired = self.expired, []
        return gone


class FakeSessionManager:
    """What sweep reads of Streamlit's WebsocketSessionManager: live sessions, expired storage."""

    def __init__(self, live, expired=()):
        self.live = list(live)
        self._session_storage = SimpleNamespace(_cache=FakeCache([(i, object()) for i in expired]))

    def list_sessions(self):
        return [SimpleNamespace(session=SimpleNamespace(id=i), client=None) for i in self.live]


def runtime_with(live, expired=()):
    return SimpleNamespace(
        _session_mgr=FakeSessionManager(live, expired),
        uploaded_file_mgr=MemoryUploadedFileManager("/_stcore/upload_file"),
        media_file_mgr=MediaFileManager(MemoryMediaFileStorage("/media")),
    )


def add_media(runtime, monkeypatch, session_id: str, data: bytes) -> str:
    monkeypatch.setattr(media_module, "_get_session_id", lambda: session_id)
    url = runtime.media_file_mgr.add(data, "image/png", coordinates=f"{session_id}-image")
    return url.rsplit("/", 1)[-1].split(".")[0]


def test_sweep_releases_ended_sessions_and_keeps_live_ones(monkeypatch):
    runtime = runtime_with(live=["alive"], expired=["old-1", "old-2"])
    for session_id in ("alive", "gone"):
        for n in range(3):
            runtime.uploaded_file_mgr.add_file(
                session_id, UploadedFileRec(f"{session_id}-{n}", f"{n}.jpg", "image/jpeg", bytes(1000 * (n + 1))))
    alive_file = add_media(runtime, monkeypatch, "alive", b"alive image")
    gone_file = add_media(runtime, monkeypatch, "gone", b"gone image")
    assert {alive_file, gone_file} <= set(runtime.media_file_mgr._file_metadata)

    report = housekeeping.sweep(runtime, trim=False)

    assert report.ended_sessions == ["gone"]
    assert report.uploaded_files == 3 and report.uploaded_bytes == 6000
    assert report.media_sessions == 1 and report.expired_sessions == 2
    assert runtime.uploaded_file_mgr.get_files("gone", ["gone-0", "gone-1", "gone-2"]) == []
    assert len(runtime.uploaded_file_mgr.get_files("alive", ["alive-0", "alive-1", "alive-2"])) == 3
    assert gone_file not in runtime.media_file_mgr._file_metadata
    assert alive_file in runtime.media_file_mgr._file_metadata
    assert "released 3 uploaded file(s)" in report.describe()

    again = housekeeping.sweep(runtime, trim=False)
    assert not again.released_anything and again.uploaded_files == 0


def test_sweep_with_nothing_ended_releases_nothing():
    runtime = runtime_with(live=["a"])
    runtime.uploaded_file_mgr.add_file("a", UploadedFileRec("f", "f.jpg", "image/jpeg", b"x" * 10))
    report = housekeeping.sweep(runtime)
    assert not report.released_anything and not report.trimmed
    assert len(runtime.uploaded_file_mgr.get_files("a", ["f"])) == 1


def test_malloc_trim_runs_on_this_libc():
    assert isinstance(housekeeping.malloc_trim(), bool)


def test_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CVPLAY_HOUSEKEEPING_S", "0")
    assert housekeeping.start() is None
    monkeypatch.setenv("CVPLAY_HOUSEKEEPING_S", "nonsense")
    assert housekeeping.interval_s() == housekeeping.DEFAULT_INTERVAL_S


TINY_APP = textwrap.dedent("""
    import streamlit as st
    from cvplay_ui import housekeeping

    housekeeping.start()
    upload = st.file_uploader("file")
    if upload is not None:
        st.image(upload.getvalue())
        st.write(f"got {len(upload.getvalue())} bytes")
""")


@pytest.mark.browser
@pytest.mark.slow
def test_a_visitors_upload_is_released_after_the_visitor_leaves(tmp_path):
    import numpy as np
    from e2e_support import chromium_page, streamlit_server, wait_for_streamlit
    from PIL import Image

    app = tmp_path / "tiny_app.py"
    app.write_text(TINY_APP)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    env = {"CVPLAY_HOUSEKEEPING_S": "1", "STREAMLIT_LOGGER_LEVEL": "info"}
    with streamlit_server(app, env=env, extra_args=["--server.disconnectedSessionTTL", "1"]) as server:
        with chromium_page() as page:
            page.goto(server.url)
            wait_for_streamlit(page)
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(photo))
            page.get_by_text(f"got {photo.stat().st_size} bytes").wait_for(timeout=60_000)
            assert "released" not in server.log()  # the visitor is still here
        deadline = time.time() + 60
        while "released 1 uploaded file(s)" not in server.log() and time.time() < deadline:
            time.sleep(0.5)
        log = server.log()
    assert "released 1 uploaded file(s)" in log, log[-3000:]
    assert "images of 1 session(s)" in log
