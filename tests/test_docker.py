"""Build the serving image from the Dockerfile, start it, and ask for its health page; where no
Docker daemon answers, skip with the reason. Prints the image size (pytest -s shows it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def docker_available() -> str | None:
    """None when a Docker daemon answers, else why not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker info failed: {error}"
    if info.returncode != 0 or not info.stdout.strip():
        return "no Docker daemon answers here: " + (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return None


@pytest.mark.slow
def test_image_builds_runs_as_non_root_and_answers_its_health_check():
    reason = docker_available()
    if reason:
        pytest.skip(reason)
    from e2e_support import free_port

    tag = f"cvplay-test:{uuid.uuid4().hex[:8]}"
    name = f"cvplay-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1800)
    try:
        size = int(subprocess.run(["docker", "image", "inspect", tag, "--format", "{{.Size}}"], check=True,
                                  capture_output=True, text=True).stdout.strip())
        print(f"\nimage {tag}: {size / 2**20:.0f} MB")
        port = free_port()
        subprocess.run(["docker", "run", "-d", "--name", name, "-e", "PORT=9000", "-p", f"127.0.0.1:{port}:9000", tag],
                       check=True, timeout=60)
        deadline, status = time.time() + 120, None
        while time.time() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                    status = response.status
            except OSError:
                time.sleep(1)
        assert status == 200, subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout[-3000:]
        uid = subprocess.run(["docker", "exec", name, "id", "-u"], check=True, capture_output=True, text=True).stdout
        assert uid.strip() != "0"
        health = json.loads(subprocess.run(["docker", "inspect", name, "--format", "{{json .State.Health}}"],
                                           check=True, capture_output=True, text=True).stdout or "null")
        assert health is not None  # the image declares a HEALTHCHECK
        tf = subprocess.run(["docker", "exec", name, "python", "-c", "import tensorflow"], capture_output=True)
        assert tf.returncode != 0  # serving only
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
