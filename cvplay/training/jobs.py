"""Training runs in their own processes, for the Train page.

A run takes 1.3-1.9 GB and minutes of CPU; in the server's own process that memory would stay
after the run (the allocator keeps it) and sink a small server. So each run is a child process
(``multiprocessing`` "spawn": a fresh interpreter that imports TensorFlow, never the server):

- progress events (the trainer's ``progress`` dicts) and the final result come back over a
  queue; a thread in the server drains it into the run's record;
- **Stop** asks the trainer to end early (it still exports the best weights so far);
  **kill** ends the process at once; either way its memory goes back to the system;
- runs are kept in a registry for the whole server process, not in a browser session: a page
  opened later, in another tab or after a reconnect, lists them and can stop them;
- a run that no page has shown for ``CVPLAY_TRAIN_UNWATCHED_S`` seconds (default 900, 0 = never)
  is stopped the same way (its model is still saved), so a closed tab cannot leave a run eating
  CPU with nobody to see it; the child also exits when the server process is gone;
- at most ``CVPLAY_TRAIN_MAX_RUNS`` runs (default 1) at once; the child runs at a lower CPU
  priority (``CVPLAY_TRAIN_NICE``, default 10) so the pages stay responsive.

No TensorFlow at import, here or in the server: only the child imports the trainer's TF parts.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue as queue_module
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

KEEP_FINISHED = 5
_POLL_S = 0.25


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.lstrip("-").isdigit() else default


class RunLimitError(RuntimeError):
    """Too many training runs at once on this server."""


# --- the child process -----------------------------------------------------------------------


def _watch_parent(parent_pid: int) -> None:
    """Exit when the server process that started this run is gone (no orphaned runs)."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(1.0)


def _child_main(target: Callable, config, events, stop_event, parent_pid: int, nice: int) -> None:
    """Runs in the child: ``target(config, progress=..., stop_event=...)``, reporting over ``events``."""
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
    events.put(("pid", os.getpid()))
    try:
        result = target(config, progress=lambda event: events.put(("event", event)), stop_event=stop_event)
        events.put(("result", result))
    except BaseException as error:  # noqa: BLE001 - every failure is reported to the page
        from cvplay.datasets import DatasetError

        known = isinstance(error, (DatasetError, ValueError, FileNotFoundError, RuntimeError, MemoryError))
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        events.put(("error", text if known else f"{type(error).__name__}: {text}", traceback.format_exc()))
    finally:
        events.close()
        events.join_thread()


def _train(config, progress, stop_event):
    from cvplay.training.trainer import train

    return train(config, progress=progress, stop_event=stop_event)


# --- one run, seen from the server -----------------------------------------------------------


class TrainJob:
    """One training run in a child process, and what the server knows of it.

    ``state`` is ``starting``, ``running``, ``stopping``, then ``finished``, ``stopped`` or
    ``failed``. Read it all at once with :meth:`snapshot` (thread-safe).
    """

    _ids = itertools.count(1)

    def __init__(self, config, cleanup: list[Path] | None = None, *, label: str = "",
                 target: Callable = _train, unwatched_s: float | None = None):
        self.id = f"run-{os.getpid()}-{next(self._ids)}"
        self.config = config
        self.label = label or str(getattr(config, "name", "") or "training run")
        self.cleanup = list(cleanup or [])
        self.target = target
        self.unwatched_s = float(_env_int("CVPLAY_TRAIN_UNWATCHED_S", 900) if unwatched_s is None else unwatched_s)
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.fraction = 0.0
        self.message = "starting a training process"
        self.step: dict[str, Any] | None = None
        self.result = None
        self.error: str | None = None
        self.details: str | None = None
        self.state = "starting"
        self.stop_reason: str | None = None
        self.pid: int | None = None
        self.exitcode: int | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.last_seen = time.time()
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._stop_event = context.Event()
        self.process = context.Process(
            target=_child_main, name=f"cvplay-train-{self.id}", daemon=True,
            args=(target, config, self._events, self._stop_event, os.getpid(), _env_int("CVPLAY_TRAIN_NICE", 10)))
        self._reader = threading.Thread(target=self._follow, name=f"cvplay-train-reader-{self.id}", daemon=True)

    def start(self) -> "TrainJob":
        self.process.start()
        self.pid = self.process.pid
        self._reader.start()
        return self

    # --- control

    @property
    def done(self) -> bool:
        return self.finished is not None

    def stop(self, reason: str = "stopped from the page") -> None:
        """Ask the run to end early; it saves the best weights so far, then exits."""
        with self._lock:
            if self.done:
                return
            self.stop_reason = self.stop_reason or reason
            self.state = "stopping"
            self.message = f"stopping ({reason}): the model is saved with the best weights so far"
        self._stop_event.set()

    def kill(self) -> None:
        """End the process at once (nothing more is saved)."""
        with self._lock:
            self.stop_reason = self.stop_reason or "killed from the page"
        self._stop_event.set()
        if self.process.is_alive():
            self.process.kill()

    def touch(self) -> None:
        """A page is showing this run (resets the unwatched timer)."""
        self.last_seen = time.time()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (True) or ``timeout`` passed (False)."""
        self._reader.join(timeout)
        return self.done

    # --- the reader thread

    def _on_message(self, message: tuple) -> None:
        kind = message[0]
        with self._lock:
            if kind == "pid":
                self.pid = int(message[1])
                if self.state == "starting":
                    self.state = "running"
                    self.message = "training process started"
            elif kind == "event":
                event = message[1]
                self.events.append({k: v for k, v in event.items() if k != "logs"})
                if event.get("message"):
                    self.message = str(event["message"])
                if "step" in event:
                    self.step = {"number": int(event["step"]), "of": int(event.get("steps", 1)),
                                 "name": event.get("step_name", ""), "message": str(event.get("message", "")),
                                 "fraction": event.get("step_fraction"), "since": time.time()
                                 if not self.step or self.step["number"] != int(event["step"]) else self.step["since"]}
                elif "fraction" in event and event.get("stage") not in ("decode",):
                    self.fraction = float(event["fraction"])
                if "logs" in event:
                    self.history.append(dict(event["logs"]))
            elif kind == "result":
                self.result = message[1]
                self.fraction = 1.0
            elif kind == "error":
                self.error, self.details = message[1], message[2]

    def _follow(self) -> None:
        while True:
            if self.unwatched_s > 0 and time.time() - self.last_seen > self.unwatched_s and not self._stop_event.is_set():
                self.stop(f"no page has shown this run for {self.unwatched_s:.0f} s")
            try:
                self._on_message(self._events.get(timeout=_POLL_S))
                continue
            except queue_module.Empty:
                pass
            except (EOFError, OSError):
                pass
            if not self.process.is_alive():
                # Drain what the child wrote just before it exited.
                try:
                    while True:
                        self._on_message(self._events.get(timeout=0.5))
                except (queue_module.Empty, EOFError, OSError):
                    pass
                break
        self.process.join()
        self._finish()

    def _finish(self) -> None:
        for path in self.cleanup:
            try:
                Path(path).unlink(missing_ok=True)
            except OSError:
                pass
        with self._lock:
            self.exitcode = self.process.exitcode
            if self.result is not None:
                self.state = "stopped" if getattr(self.result, "stopped", False) else "finished"
                self.message = "done"
            elif self.error is not None:
                self.state = "failed"
            elif self.stop_reason is not None:
                self.state = "stopped"
                self.error = f"the training process was ended ({self.stop_reason}) before it saved a model"
            else:
                self.state = "failed"
                code = self.exitcode
                how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
                hint = " (out of memory?)" if code == -9 else ""
                self.error = f"the training process {how}{hint} before it finished"
            self.finished = time.time()
        self._events.close()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "id": self.id,
                "label": self.label,
                "state": self.state,
                "fraction": self.fraction,
                "message": self.message,
                "step": dict(self.step) if self.step else None,
                "history": [dict(row) for row in self.history],
                "messages": [e["message"] for e in self.events if e.get("message")],
                "done": self.done,
                "error": self.error,
                "result": self.result,
                "pid": self.pid,
                "started": self.started,
                "elapsed": (self.finished or time.time()) - self.started,
                "stop_reason": self.stop_reason,
            }


# --- every run of this server process --------------------------------------------------------

_RUNS: dict[str, TrainJob] = {}
_RUNS_LOCK = threading.Lock()


def max_active_runs() -> int:
    return max(1, _env_int("CVPLAY_TRAIN_MAX_RUNS", 1))


def start_run(config, cleanup: list[Path] | None = None, **kwargs: Any) -> TrainJob:
    """Start a run in a child process and register it; :class:`RunLimitError` when
    ``CVPLAY_TRAIN_MAX_RUNS`` runs are already going."""
    with _RUNS_LOCK:
        active = [job for job in _RUNS.values() if not job.done]
        if len(active) >= max_active_runs():
            raise RunLimitError(
                f"{len(active)} training run{'s are' if len(active) > 1 else ' is'} already going on this server "
                f"({', '.join(job.label for job in active)}): wait for it to end, or stop it below.")
        job = TrainJob(config, cleanup, **kwargs).start()
        _RUNS[job.id] = job
        finished = sorted((j for j in _RUNS.values() if j.done), key=lambda j: j.started)
        for old in finished[:-KEEP_FINISHED]:
            del _RUNS[old.id]
        return job


def get_run(run_id: str | None) -> TrainJob | None:
    with _RUNS_LOCK:
        return _RUNS.get(run_id) if run_id else None


def list_runs(active_only: bool = False) -> list[TrainJob]:
    """Runs of this server process, newest first."""
    with _RUNS_LOCK:
        jobs = [job for job in _RUNS.values() if not (active_only and job.done)]
    return sorted(jobs, key=lambda job: job.started, reverse=True)
