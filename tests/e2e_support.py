"""Helpers for end-to-end browser tests: a real ``streamlit run`` server on loopback and Debian's
headless Chromium driven through Playwright's sync API. Nothing is downloaded: Playwright's own
browser builds are never used.

    from e2e_support import chromium_page, streamlit_server

    @pytest.mark.browser
    def test_something():
        with streamlit_server("app.py") as server, chromium_page(fake_media=True) as page:
            page.goto(server.url + "/webcam")

When Chromium or Playwright is missing the test is skipped with the reason, except when the
environment variable ``CI`` is ``true``: there a missing browser is a failure, so a broken CI
machine cannot pass by skipping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CVPLAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
FAKE_MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Host and server share this machine: let WebRTC use the loopback interface.
    "--allow-loopback-in-peer-connection",
]
SERVER_START_TIMEOUT = 90.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason`` locally; fail in CI (CI=true), where the browser must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


def require_browser(chromium: str | None = None) -> None:
    """Skip (or fail in CI) unless Playwright's Python package and Debian's Chromium are present."""
    chromium = chromium or CHROMIUM
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("playwright (the Python package) is not installed")
    if not (Path(chromium).is_file() and os.access(chromium, os.X_OK)):
        skip_or_fail(f"Chromium is not installed at {chromium} (apt-get install chromium)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StreamlitServer:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _wait_until_serving(server: StreamlitServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    health = f"{server.url}/_stcore/health"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.process.returncode}:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(health, timeout=2) as response:  # loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not serve {health} within {timeout:.0f} s:\n{server.log()[-4000:]}")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a process we started (its own process group), politely first."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


@contextlib.contextmanager
def streamlit_server(
    script: str | os.PathLike[str] = "app.py",
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = SERVER_START_TIMEOUT,
) -> Iterator[StreamlitServer]:
    """``streamlit run SCRIPT`` headless on 127.0.0.1 and a free port, in the repository root;
    yields once ``/_stcore/health`` answers, stops the server (and its children) afterwards."""
    port = free_port()
    log_file = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        *extra_args,
    ]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        command, cwd=ROOT, env=child_env, stdout=log_file, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    server = StreamlitServer(process=process, port=port, log_path=Path(log_file.name))
    log_file.close()
    try:
        _wait_until_serving(server, timeout)
        yield server
    finally:
        stop_process(process)
        with contextlib.suppress(OSError):
            server.log_path.unlink()


@contextlib.contextmanager
def chromium_page(fake_media: bool = False, extra_args: Sequence[str] = (), viewport=(1280, 900)) -> Iterator["object"]:
    """A Playwright page in Debian's headless Chromium (skips or fails as :func:`require_browser`).
    ``fake_media`` adds Chromium's fake camera and auto-granted permission prompts."""
    require_browser()
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + (FAKE_MEDIA_ARGS if fake_media else []) + list(extra_args)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        except Exception as error:  # noqa: BLE001 - report why the browser would not start
            skip_or_fail(f"Chromium at {CHROMIUM} would not start: {str(error).splitlines()[0]}")
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if fake_media:
                context.grant_permissions(["camera", "microphone"])
            page = context.new_page()
            yield page
        finally:
            browser.close()


def app_script() -> str:
    """``app.py`` when the app shell exists, for tests that want the real navigation."""
    return "app.py" if (ROOT / "app.py").is_file() else ""


def wait_for_streamlit(page, timeout_ms: int = 60_000) -> None:
    """Wait until the page's script has run once (the app view is there and nothing is running)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app && app.getAttribute('data-test-script-state') !== 'running'
                && document.querySelector('[data-testid="stMainBlockContainer"], [data-testid="block-container"]');
        }""",
        timeout=timeout_ms,
    )
