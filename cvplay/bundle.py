""""Download everything": one ``.zip`` per training run, usable without cvplay.

The zip holds ``<run>/``: the ``.tflite`` and its card, ``model.keras``, ``labels.txt`` (one
label a line, in output order), the curves, confusion matrix and per-class report the trainer
wrote, ``predict.py`` (:mod:`cvplay.standalone_predict`: runs the ``.tflite`` with LiteRT alone)
and a short README. No Streamlit, no TensorFlow.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from cvplay.runs import Run

REPORT_FILES = ("model.keras", "history.csv", "curves.png", "confusion_matrix.csv", "confusion_matrix.png",
                "per_class.csv")
PREDICT_SCRIPT = Path(__file__).with_name("standalone_predict.py")


def readme(run: Run) -> str:
    top1 = run.test_top1 if run.test_top1 is not None else run.val_top1
    split = "held-out test" if run.test_top1 is not None else "validation"
    score = f"{split} top-1 {top1:.1%}" if top1 is not None else "no score recorded"
    return f"""# {run.name}

A {len(run.labels)}-class image classifier trained by cvplay ({run.backbone}, {run.image_size}px; {score}).

- `{run.model_path.name}`: the model for LiteRT / TensorFlow Lite; `{run.card_path.name}`: its card
  (input size and preprocessing, labels, metrics with the data and command that produced them).
- `model.keras`: the Keras model (keras.saving.load_model) to fine-tune further.
- `labels.txt`: the labels in output order.
- `history.csv`, `curves.png`: loss and accuracy per epoch; `confusion_matrix.*`, `per_class.csv`: the
  {split} report.

Classify photos with LiteRT alone:

    pip install ai-edge-litert pillow numpy
    python predict.py photo.jpg

or, with cvplay: `python -m cvplay predict --model {run.card_path.name} photo.jpg`.
"""


def bundle_files(run: Run) -> list[tuple[str, Path | bytes]]:
    """``(name in the zip, file or content)`` for every part of the bundle that exists."""
    prefix = f"{run.name}/"
    parts: list[tuple[str, Path | bytes]] = [
        (prefix + run.model_path.name, run.model_path),
        (prefix + run.card_path.name, run.card_path),
    ]
    for name in REPORT_FILES:
        path = run.file(name)
        if path is not None:
            parts.append((prefix + name, path))
    parts.append((prefix + "labels.txt", ("\n".join(run.labels) + "\n").encode("utf-8")))
    parts.append((prefix + "predict.py", PREDICT_SCRIPT.read_bytes()))
    parts.append((prefix + "README.md", readme(run).encode("utf-8")))
    return parts


def bundle_bytes(run: Run) -> bytes:
    """The whole bundle as the bytes of a ``.zip``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in bundle_files(run):
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return buffer.getvalue()
