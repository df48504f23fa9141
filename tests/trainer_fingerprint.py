"""What a training run gives, as plain JSON: card metrics, history, card fields, progress events.

Used to check that reshaping the trainer changes nothing: the same runs on the same tiny
self-made data give the same fingerprint. One run per path through the trainer (small CNN
with augmentation and a test split, int8 export; Lite0 on the pooled-feature cache, on images,
and on cached lower blocks). tests/trainer_fingerprint.json was recorded before the trainer was
reshaped into stages, and tests/test_trainer_fingerprint.py compares with it. To record one:

    python tests/trainer_fingerprint.py OUT.json
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

#: name -> TrainConfig arguments (data and out are added).
RUNS: dict[str, dict[str, Any]] = {
    "small-cnn-light-test-int8": dict(backbone="small-cnn", image_size=16, epochs=3, augment="light",
                                      test_fraction=0.25, val_fraction=0.25, precision="int8"),
    "lite0-feature-cache": dict(backbone="efficientnet-lite0", image_size=32, epochs=2, fine_tune_epochs=1,
                                fine_tune_blocks=1, augment="none"),
    "lite0-images-cosine": dict(backbone="efficientnet-lite0", image_size=32, epochs=1, fine_tune_epochs=1,
                                fine_tune_blocks=1, augment="light", lr_schedule="cosine"),
    "lite0-cache-blocks": dict(backbone="efficientnet-lite0", image_size=32, epochs=1, fine_tune_epochs=2,
                               fine_tune_blocks=2, cache_blocks=True, augment="classic", val_fraction=0.2,
                               test_fraction=0.2, crop_fraction=1.0, lr_schedule="cosine", monitor="val_accuracy",
                               fine_tune_learning_rate=1e-3),
}

_VOLATILE_PROVENANCE = ("date", "training_time_s", "hardware", "throughput_images_per_s", "command")


def _event_text(event: dict[str, Any], root: Path) -> str | None:
    """An event without its timings and folder, or None for the throttled (time-dependent) progress ones."""
    if "fraction" in event and "epoch" not in event or "step_fraction" in event:
        return None
    text = re.sub(r"\d+(\.\d+)?", "#", str(event.get("message", "")).replace(str(root), "<root>"))
    return f"{event.get('stage')}|{event.get('step', '')}|{text}"


def fingerprint(name: str, data: Path, out: Path) -> dict[str, Any]:
    from cvplay.training.trainer import TrainConfig, train

    events: list[dict[str, Any]] = []
    result = train(TrainConfig(data=str(data), out=str(out), name=name, **RUNS[name]), progress=events.append)
    card = json.loads(result.card_path.read_text())
    provenance = {k: v for k, v in card["provenance"].items() if k not in _VOLATILE_PROVENANCE}
    if provenance.get("block_cache"):
        provenance["block_cache"] = {k: v for k, v in provenance["block_cache"].items() if k != "seconds"}
    return {
        "metrics": {m["name"]: m["value"] for m in card["metrics"]},
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "learning_rate"}
                    for row in result.history],
        "card": {k: card[k] for k in ("name", "task", "file", "title", "input", "output", "labels", "augmentation")},
        "provenance": provenance,
        "metric_data": [m["data"] for m in card["metrics"]],
        "result": {"n": [result.n_train, result.n_val, result.n_test], "split": result.metrics_split,
                   "confusion": result.confusion.tolist(), "feature_cache": result.feature_cache,
                   "stopped": result.stopped, "files": sorted(result.files),
                   "misclassified": [(m["index"], m["true"], m["predicted"]) for m in result.misclassified]},
        "events": [text for text in (_event_text(event, data.parent) for event in events) if text is not None],
    }


def fingerprints(root: Path) -> dict[str, Any]:
    from test_trainer import write_folder

    data = write_folder(root / "colours", per_class=10)
    return {name: fingerprint(name, data, root / name) for name in RUNS}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as tmp:
        # data and runs under one fixed-name folder so that paths in the card text compare equal
        root = Path(tmp) / "fp"
        found = fingerprints(root)
    text = json.dumps(found, indent=1, sort_keys=True).replace(str(root), "<root>")
    Path(sys.argv[1]).write_text(text)
    print(f"wrote {sys.argv[1]}")
