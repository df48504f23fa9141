"""The Train page in a real browser: a run starts in its own process, shows Stop, survives its tab
being closed (a new visit lists it and stops it), and the page then shows the saved model with
the "stopped early" note. Set CVPLAY_SCREENSHOTS=DIR to keep screenshots of each stage."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from e2e_support import chromium_page, streamlit_server, wait_for_streamlit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_load import process_tree, rss_bytes  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def colour_folders(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}.items():
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def shoot(page, name: str) -> None:
    folder = os.environ.get("CVPLAY_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.get_by_role("option", name=option).click()
    wait_for_streamlit(page)


def test_run_is_stoppable_from_a_new_visit_after_its_tab_closed(tmp_path):
    pytest.importorskip("tensorflow")
    data = colour_folders(tmp_path / "colours")
    env = {"CVPLAY_MODELS": str(tmp_path / "models"), "CVPLAY_SHARED": "/nonexistent"}
    with streamlit_server("app.py", env=env) as server:
        with chromium_page() as page:
            page.goto(server.url + "/train")
            wait_for_streamlit(page)
            page.get_by_text("Local folder path").click()
            wait_for_streamlit(page)
            page.get_by_label("Folder of class folders (on the server)").fill(str(data))
            page.keyboard.press("Enter")
            wait_for_streamlit(page)
            choose(page, "Backbone", "Small CNN from scratch (baseline)")
            epochs = page.get_by_label("Epochs (head, or whole model from scratch)")
            epochs.fill("100")
            epochs.press("Enter")
            wait_for_streamlit(page)
            page.get_by_role("button", name="Start").click()
            page.get_by_text(re.compile(r"train epoch \d+/100")).first.wait_for(timeout=240_000)
            assert page.get_by_role("button", name="Stop").is_visible()
            assert page.get_by_role("button", name="Start").is_disabled()
            shoot(page, "train-running")
            # TensorFlow and the run's memory live in the child, not in the server.
            server_pid = server.process.pid
            children = [pid for pid in process_tree(server_pid) if pid != server_pid]
            maps = {pid: Path(f"/proc/{pid}/maps").read_text() for pid in [server_pid, *children]}
            assert "tensorflow" not in maps[server_pid]
            trainer = [pid for pid in children if "tensorflow" in maps[pid]]
            assert trainer, "no child process holds TensorFlow"
            print(f"\nwhile training: server RSS {rss_bytes(server_pid) / 2**20:.0f} MB, "
                  f"training process RSS {rss_bytes(trainer[0]) / 2**20:.0f} MB")
        # The tab is closed; the run goes on in its own process. A new visit finds it.
        with chromium_page() as page:
            page.goto(server.url + "/train")
            wait_for_streamlit(page)
            page.get_by_text("Training in progress on this server").wait_for(timeout=60_000)
            shoot(page, "train-reconnected")
            page.get_by_role("button", name="Stop").click()
            page.get_by_text(re.compile(r"stopping|After training, step")).first.wait_for(timeout=60_000)
            page.get_by_text("Earlier runs on this server").wait_for(timeout=240_000)
            assert page.get_by_role("button", name="Start").is_enabled()
            page.get_by_text("Earlier runs on this server").click()
            shoot(page, "train-ended")
            page.get_by_role("button", name="Show its results").click()
            page.get_by_text("Training was stopped early").wait_for(timeout=60_000)
            page.locator('[data-testid="stMetric"]', has_text="Validation top-1").wait_for(timeout=60_000)
            shoot(page, "train-result")
        assert "Traceback" not in server.log()
    assert list((tmp_path / "models").glob("*/*.tflite"))  # stopped, and still saved
