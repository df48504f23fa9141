"""Training runs in a separate process (cvplay.training.jobs): start, progress, stop, kill,
result, failure, the unwatched-run guard, the per-server run limit, and that the server's own
memory does not carry the run's."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from cvplay.training import jobs

TIMEOUT = 60


@dataclasses.dataclass
class FakeResult:
    epochs: int
    stopped: bool
    pid: int


def fake_train(config, progress, stop_event):
    """Epochs of ``config['epoch_s']`` seconds; stops early like the trainer; then the finish steps."""
    done = 0
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config.get("epoch_s", 0.05))
        done = epoch
        progress({"stage": "head", "message": f"epoch {epoch}", "epoch": epoch, "epochs": config["epochs"],
                  "fraction": epoch / config["epochs"], "logs": {"epoch": epoch, "loss": 1.0 / epoch}})
        if stop_event.is_set():
            break
    for number, name in enumerate(("save", "convert", "measure", "reports"), 1):
        progress({"stage": "finish", "message": f"step {name}", "step": number, "steps": 4, "step_name": name})
    return FakeResult(epochs=done, stopped=stop_event.is_set(), pid=os.getpid())


def finishing_train(config, progress, stop_event):
    """One epoch, then stuck in the second step after training until stopped."""
    progress({"stage": "head", "message": "epoch 1", "epoch": 1, "epochs": 1, "fraction": 1.0,
              "logs": {"epoch": 1, "loss": 0.5}})
    progress({"stage": "finish", "message": "converting to demo.tflite (fp32)", "step": 2, "steps": 4,
              "step_name": "convert"})
    while not stop_event.is_set():
        time.sleep(0.05)
    return FakeResult(epochs=1, stopped=True, pid=os.getpid())


def failing_train(config, progress, stop_event):
    progress({"stage": "load", "message": "loading"})
    raise ValueError("The dataset has one class: add a second class folder.")


def stubborn_train(config, progress, stop_event):
    """Ignores Stop (a run stuck in a long step): only kill ends it."""
    progress({"stage": "head", "message": "busy"})
    time.sleep(300)


def memory_hungry_train(config, progress, stop_event):
    block = bytearray(config["bytes"])
    for i in range(0, len(block), 4096):  # touch every page: resident, not just reserved
        block[i] = 1
    progress({"stage": "head", "message": "allocated"})
    while not stop_event.is_set():
        time.sleep(0.05)
    return FakeResult(epochs=0, stopped=True, pid=os.getpid())


def crashing_train(config, progress, stop_event):
    progress({"stage": "head", "message": "about to crash"})
    os.kill(os.getpid(), 9)  # as the kernel's OOM killer would


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_reports_progress_and_result_from_another_process():
    job = jobs.TrainJob({"epochs": 3}, target=fake_train, label="fake").start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "finished" and snap["error"] is None
    assert snap["result"].epochs == 3 and not snap["result"].stopped
    assert snap["result"].pid != os.getpid() and snap["result"].pid == snap["pid"]
    assert [row["epoch"] for row in snap["history"]] == [1, 2, 3]
    assert snap["fraction"] == 1.0
    assert snap["step"]["number"] == 4 and snap["step"]["name"] == "reports"
    assert "step save" in snap["messages"] and "epoch 2" in snap["messages"]
    assert not job.process.is_alive()


def test_stop_ends_early_and_keeps_the_result():
    job = jobs.TrainJob({"epochs": 200, "epoch_s": 0.1}, target=fake_train).start()
    wait_for(lambda: len(job.snapshot()["history"]) >= 2, what="two epochs")
    job.stop()
    assert job.snapshot()["state"] == "stopping"
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "stopped" and snap["error"] is None
    assert snap["result"].stopped and 2 <= snap["result"].epochs < 200
    assert snap["stop_reason"] == "stopped from the page"


def test_failure_is_one_clear_sentence_with_details():
    job = jobs.TrainJob({}, target=failing_train).start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "failed"
    assert snap["error"] == "The dataset has one class: add a second class folder."
    assert "ValueError" in job.details and snap["result"] is None


def test_kill_ends_a_stuck_run_and_says_so(tmp_path):
    leftover = tmp_path / "upload.zip"
    leftover.write_bytes(b"zip")
    job = jobs.TrainJob({}, cleanup=[leftover], target=stubborn_train).start()
    wait_for(lambda: job.snapshot()["message"] == "busy", what="the run to start")
    pid = job.snapshot()["pid"]
    job.kill()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "stopped" and "before it saved a model" in snap["error"]
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert not leftover.exists()  # the uploaded zip is cleaned up however the run ends


def test_a_run_nobody_watches_is_stopped():
    job = jobs.TrainJob({"epochs": 500, "epoch_s": 0.1}, target=fake_train, unwatched_s=1.0).start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "stopped" and snap["result"].stopped
    assert "no page has shown this run" in snap["stop_reason"]


def test_a_watched_run_is_not_stopped():
    job = jobs.TrainJob({"epochs": 25, "epoch_s": 0.1}, target=fake_train, unwatched_s=1.0).start()
    while not job.done:
        job.touch()
        time.sleep(0.2)
    assert job.snapshot()["state"] == "finished"


def test_process_crash_is_reported():
    job = jobs.TrainJob({}, target=crashing_train).start()
    assert job.wait(TIMEOUT)
    snap = job.snapshot()
    assert snap["state"] == "failed" and "killed by signal 9 (out of memory?)" in snap["error"]


def test_registry_lists_runs_for_every_session_and_limits_them(monkeypatch):
    monkeypatch.setenv("CVPLAY_TRAIN_MAX_RUNS", "1")
    first = jobs.start_run({"epochs": 500, "epoch_s": 0.1}, target=fake_train, label="first")
    try:
        assert jobs.get_run(first.id) is first
        assert first in jobs.list_runs(active_only=True)
        with pytest.raises(jobs.RunLimitError, match="first"):
            jobs.start_run({"epochs": 1}, target=fake_train)
    finally:
        first.stop()
        assert first.wait(TIMEOUT)
    assert first not in jobs.list_runs(active_only=True) and first in jobs.list_runs()
    second = jobs.start_run({"epochs": 1}, target=fake_train, label="second")
    assert second.wait(TIMEOUT) and second.snapshot()["state"] == "finished"


def test_the_run_memory_is_the_childs_not_the_servers():
    before = rss_mb(os.getpid())
    job = jobs.TrainJob({"bytes": 300 * 2**20}, target=memory_hungry_train).start()
    wait_for(lambda: job.snapshot()["message"] == "allocated", what="the allocation")
    child = job.snapshot()["pid"]
    assert rss_mb(child) > 250
    assert rss_mb(os.getpid()) - before < 50
    job.stop()
    assert job.wait(TIMEOUT)
    assert not Path(f"/proc/{child}/status").exists() or rss_mb(child) == 0  # gone: its memory with it


def test_a_page_script_installed_as_main_is_not_run_in_the_child(tmp_path, monkeypatch):
    """Streamlit (and AppTest) install the page being run as ``__main__``; spawn would re-run it in
    the child. A page that cannot run outside Streamlit must not break the run."""
    import sys
    import types

    page = tmp_path / "page.py"
    page.write_text("raise SystemExit('a page script ran in the training process')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    job = jobs.TrainJob({"epochs": 1}, target=fake_train, label="fake").start()
    assert sys.modules["__main__"] is fake_main  # put back once the child started
    assert job.wait(TIMEOUT)
    assert job.snapshot()["state"] == "finished", job.snapshot()["error"]
