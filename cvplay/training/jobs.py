"""A training run in a background thread, for the Train page (so the app stays responsive).

No TensorFlow at import: the trainer is imported inside the thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any


class TrainJob:
    """Runs :func:`cvplay.training.trainer.train` in a daemon thread and records its progress.

    Read ``events``, ``history``, ``fraction``, ``message``, ``result`` and ``error`` from any
    thread (copies under a lock via :meth:`snapshot`); :meth:`stop` asks the run to end early.
    """

    def __init__(self, config, cleanup: list[Path] | None = None):
        self.config = config
        self.cleanup = list(cleanup or [])
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.fraction = 0.0
        self.message = "starting"
        self.result = None
        self.error: str | None = None
        self.details: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.thread = threading.Thread(target=self._run, name="cvplay-train", daemon=True)

    def start(self) -> "TrainJob":
        self.thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.finished is not None

    def stop(self) -> None:
        self.stop_event.set()

    def _progress(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append({k: v for k, v in event.items() if k != "logs"})
            if event.get("message"):
                self.message = str(event["message"])
            if "fraction" in event and event.get("stage") not in ("decode",):
                self.fraction = float(event["fraction"])
            if "logs" in event:
                self.history.append(dict(event["logs"]))

    def _run(self) -> None:
        try:
            from cvplay.training.trainer import train

            result = train(self.config, progress=self._progress, stop_event=self.stop_event)
            with self._lock:
                self.result = result
                self.fraction = 1.0
        except Exception as error:  # reported on the page; known errors are one clear sentence
            from cvplay.datasets import DatasetError

            known = isinstance(error, (DatasetError, ValueError, FileNotFoundError, RuntimeError))
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            with self._lock:
                self.error = text if known else f"{type(error).__name__}: {text}"
                self.details = traceback.format_exc()
        finally:
            for path in self.cleanup:
                try:
                    Path(path).unlink(missing_ok=True)
                except OSError:
                    pass
            self.finished = time.time()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fraction": self.fraction,
                "message": self.message,
                "history": [dict(row) for row in self.history],
                "messages": [e["message"] for e in self.events if e.get("message")],
                "done": self.done,
                "error": self.error,
                "result": self.result,
                "elapsed": (self.finished or time.time()) - self.started,
            }
