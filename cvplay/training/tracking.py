"""Experiment tracking for training runs: TensorBoard logs and MLflow, both optional.

* ``TrainConfig.tensorboard`` (``--tensorboard [DIR]``): Keras' own ``TensorBoard`` callback
  writes loss and accuracy per epoch (train and validation) to ``DIR`` (default
  ``<run folder>/tensorboard``): ``tensorboard --logdir DIR`` shows them, and Weights & Biases
  users can sync that folder (``wandb sync --sync-tensorboard DIR``).
* ``TrainConfig.mlflow`` (``--mlflow [URI]``, needs ``pip install mlflow-skinny`` or ``mlflow``,
  the ``mlflow`` extra): one MLflow run per training run with the configuration as params,
  loss/accuracy per epoch as metrics (step = epoch), the final figures, and the model files
  (``.tflite``, card, ``.keras``, curves, reports) as artifacts. The tracking URI is ``URI``
  when given, else ``$MLFLOW_TRACKING_URI``, else a local file store in the runs folder
  (``file:<runs folder>/mlruns``; MLflow 3 asks for ``MLFLOW_ALLOW_FILE_STORE=true`` to use a
  file store, which cvplay sets for that default only). ``tracking.json`` in the run folder says
  where everything went.

Imported by the trainer only; MLflow is imported only when asked for.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

EXPERIMENT = "cvplay"
RECORD_FILE = "tracking.json"


class TrackingError(ValueError):
    """Tracking was asked for but cannot be done; one sentence for a person."""


def default_mlflow_uri() -> str:
    from cvplay.runs import runs_dir

    return (runs_dir() / "mlruns").resolve().as_uri()


def _params(config) -> dict[str, str]:
    params = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value is None or item.name in ("command", "tensorboard", "mlflow"):
            continue
        if not isinstance(value, (str, int, float, bool)):
            value = json.dumps(value.to_dict() if hasattr(value, "to_dict") else value, default=str)[:500]
        params[item.name] = str(value)[:500]
    return params


class Tracking:
    """What one training run reports to TensorBoard and MLflow."""

    def __init__(self, out_dir: Path, tensorboard_dir: Path | None, mlflow_module=None, mlflow_uri: str | None = None):
        self.out_dir = Path(out_dir)
        self.tensorboard_dir = tensorboard_dir
        self.mlflow = mlflow_module
        self.mlflow_uri = mlflow_uri
        self.run_id: str | None = None
        self._finished = False

    @classmethod
    def create(cls, config, out_dir: Path, name: str) -> "Tracking | None":
        """The tracking ``config`` asks for, started (None when it asks for none)."""
        tensorboard = getattr(config, "tensorboard", False)
        wants_mlflow = getattr(config, "mlflow", False)
        if not tensorboard and not wants_mlflow:
            return None
        tensorboard_dir = None
        if tensorboard:
            import importlib.util

            if importlib.util.find_spec("tensorboard") is None:
                raise TrackingError("--tensorboard needs TensorBoard: pip install tensorboard (part of the train extra)")
            tensorboard_dir = (Path(tensorboard).expanduser() if isinstance(tensorboard, (str, os.PathLike))
                               else Path(out_dir) / "tensorboard")
        module = uri = None
        if wants_mlflow:
            try:
                import mlflow as module
            except ImportError:
                raise TrackingError("--mlflow needs MLflow: pip install -e \".[mlflow]\" (or pip install mlflow)") from None
            if isinstance(wants_mlflow, str):
                uri = wants_mlflow
            elif os.environ.get("MLFLOW_TRACKING_URI"):
                uri = os.environ["MLFLOW_TRACKING_URI"]
            else:
                uri = default_mlflow_uri()
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        tracking = cls(Path(out_dir), tensorboard_dir, module, uri)
        tracking._start(config, name)
        return tracking

    def _start(self, config, name: str) -> None:
        if self.mlflow is not None:
            self.mlflow.set_tracking_uri(self.mlflow_uri)
            self.mlflow.set_experiment(EXPERIMENT)
            run = self.mlflow.start_run(run_name=name)
            self.run_id = run.info.run_id
            self.mlflow.log_params(_params(config))
            self.mlflow.set_tags({"cvplay.run_folder": str(self.out_dir), "cvplay.backbone": str(config.backbone)})
        self._record()

    def _record(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record = {"tensorboard": str(self.tensorboard_dir) if self.tensorboard_dir else None,
                  "mlflow": {"tracking_uri": self.mlflow_uri, "experiment": EXPERIMENT, "run_id": self.run_id}
                  if self.mlflow is not None else None}
        (self.out_dir / RECORD_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")

    def callbacks(self, keras, stage: str) -> list:
        callbacks = []
        if self.tensorboard_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(self.tensorboard_dir), write_graph=False,
                                                         profile_batch=0, update_freq="epoch"))
        if self.mlflow is not None:
            mlflow = self.mlflow

            class MlflowEpochs(keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    values = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float)) or hasattr(v, "__float__")}
                    if values:
                        mlflow.log_metrics(values, step=int(epoch) + 1)

            callbacks.append(MlflowEpochs())
        return callbacks

    def finish(self, files: dict[str, Path], metrics: dict[str, float]) -> None:
        """Log the final figures and the run's files, and close the MLflow run."""
        if self.mlflow is not None and not self._finished:
            self.mlflow.log_metrics({f"final_{k}": float(v) for k, v in metrics.items()})
            for path in files.values():
                if path is not None and Path(path).is_file():
                    self.mlflow.log_artifact(str(path))
            self.mlflow.end_run()
        self._finished = True

    def close(self) -> None:
        """End a run that did not finish (an error or a stop before export)."""
        if self.mlflow is not None and not self._finished:
            self.mlflow.end_run(status="FAILED")
        self._finished = True
