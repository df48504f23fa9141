"""The same training run on the same tiny data gives the same card metrics, history, card and
progress events as the trainer did when ``trainer_fingerprint.json`` was recorded (before the
trainer was reshaped into stages; CPU, TensorFlow as pinned). One run per path through the
trainer; see tests/trainer_fingerprint.py. After a deliberate change of behaviour, record it
again: ``python tests/trainer_fingerprint.py tests/trainer_fingerprint.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from test_trainer import write_folder  # noqa: E402
from trainer_fingerprint import RUNS, fingerprint  # noqa: E402

RECORDED = Path(__file__).with_name("trainer_fingerprint.json")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_the_same_run_gives_what_was_recorded(tmp_path, name):
    recorded = json.loads(RECORDED.read_text())[name]
    root = tmp_path / "fp"
    data = write_folder(root / "colours", per_class=10)
    found = json.loads(json.dumps(fingerprint(name, data, root / name)).replace(str(root), "<root>"))
    assert found["metrics"] == recorded["metrics"]
    assert len(found["history"]) == len(recorded["history"])
    for row, expected in zip(found["history"], recorded["history"]):
        assert row == pytest.approx(expected, abs=1e-3)
    for key in ("card", "provenance", "metric_data", "result", "events"):
        assert found[key] == recorded[key], key
