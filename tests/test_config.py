"""Production settings: .streamlit/config.toml as Streamlit reads it, the Procfile, the
Dockerfile, and the load benchmark's idea of the serving environment, all in step with the
app's own limits."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from cvplay.images import DEFAULT_MAX_BYTES

ROOT = Path(__file__).resolve().parents[1]
IMAGE_MAX_MB = DEFAULT_MAX_BYTES // 2**20


def train_zip_max_mb() -> int:
    match = re.search(r"^TRAIN_ZIP_MAX_MB = (\d+)", (ROOT / "app_pages" / "train.py").read_text(), re.M)
    assert match, "app_pages/train.py defines TRAIN_ZIP_MAX_MB"
    return int(match.group(1))


def procfile_web() -> str:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")]
    assert len(lines) == 1
    return lines[0].removeprefix("web:").strip()


def streamlit_options(*names: str) -> dict:
    """The options as Streamlit itself resolves them when started in the project folder."""
    code = ("import json, sys; from streamlit import config; config.get_config_options(force_reparse=True); "
            "print(json.dumps({n: config.get_option(n) for n in sys.argv[1:]}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    out = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_streamlit_reads_the_production_settings():
    options = streamlit_options("server.fileWatcherType", "server.runOnSave", "browser.gatherUsageStats",
                                "server.headless", "server.maxUploadSize", "server.disconnectedSessionTTL",
                                "server.maxCacheDataSize")
    assert options["server.fileWatcherType"] == "none"  # no "Inotify queue overflowed" (issue 12, item 8)
    assert options["server.runOnSave"] is False
    assert options["browser.gatherUsageStats"] is False
    assert options["server.headless"] is True
    # The largest upload any widget takes: the Train page's zip (image uploaders cap themselves).
    assert options["server.maxUploadSize"] == train_zip_max_mb()
    # Disconnected sessions (state, uploads, images) go sooner than Streamlit's 120 s default.
    assert 10 <= options["server.disconnectedSessionTTL"] < 120
    # Cached URL fetches (up to 20 MB each) cannot grow without bound.
    assert options["server.maxCacheDataSize"] == "64mb"


def test_config_file_is_valid_toml_with_no_unknown_sections():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert set(config) <= {"server", "browser", "client", "runner", "theme", "logger"}


def test_procfile_serves_on_port_with_image_sized_uploads_and_two_arenas():
    command = procfile_web()
    words = shlex.split(command)
    assert "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}" in words[0]
    assert "--server.port=$PORT" in words and "--server.address=0.0.0.0" in words
    # No training on Heroku (no TensorFlow): the largest upload is an image.
    assert f"--server.maxUploadSize={IMAGE_MAX_MB}" in words


def test_load_benchmark_serves_like_the_procfile():
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_load

    command = procfile_web()
    assert bench_load.SERVING_ENV["MALLOC_ARENA_MAX"] == "2"
    flag, value = bench_load.SERVING_ARGS
    assert f"{flag}={value}" in command


def test_dockerfile_is_slim_serving_only_non_root_with_health_check():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM python:(\S+)", text, re.M)
    assert base and base.group(1).endswith("-slim")
    assert base.group(1).startswith((ROOT / ".python-version").read_text().strip())
    assert "pip install --no-compile -r requirements.txt" in text
    assert "[train]" not in text and "pyproject" not in text  # serving only: no TensorFlow
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/_stcore/health" in text
    cmd = re.search(r"^CMD (.*)$", text, re.M).group(1)
    assert '--server.port="$PORT"' in cmd and f"--server.maxUploadSize={IMAGE_MAX_MB}" in cmd
    assert "MALLOC_ARENA_MAX=2" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "tests", ".git"} <= set(ignored)


@pytest.mark.slow
def test_procfile_command_serves_the_app(tmp_path):
    """Run the Procfile's web command as Heroku would (sh, $PORT set) and ask for the health page."""
    from e2e_support import free_port, stop_process

    port = free_port()
    env = {**os.environ, "PORT": str(port), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MALLOC_ARENA_MAX", None)
    log = tmp_path / "web.log"
    command = procfile_web().replace("--server.address=0.0.0.0", "--server.address=127.0.0.1")
    with log.open("w") as handle:
        process = subprocess.Popen(["sh", "-c", command], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    status = response.status
            except OSError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.5)
        assert status == 200, log.read_text()
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ  # exec: the shell became the server, with the setting
    finally:
        stop_process(process)
    assert "Inotify" not in log.read_text() and "Traceback" not in log.read_text()
