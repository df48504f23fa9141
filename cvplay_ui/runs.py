"""Streamlit pieces of the Runs page: the runs table, side-by-side comparison, the CNN-from-scratch
comparison job and the "Download everything" button (also used by the Train page).

The work is in :mod:`cvplay.runs` and :mod:`cvplay.bundle`; training goes through
:func:`start_training`, the one place that starts a run in the background.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from cvplay import runs as runs_core
from cvplay.bundle import bundle_bytes

KEY = "runs"
JOB = f"{KEY}-scratch-job"
state = st.session_state


def download_everything(card_path: str | Path, key: str) -> None:
    """A button that downloads the run's bundle: .tflite + card, .keras, labels, reports, predict.py."""
    run = runs_core.read_run(card_path)
    if run is None:
        return
    st.download_button("Download everything (.zip)", data=lambda: bundle_bytes(run), file_name=f"{run.name}.zip",
                       mime="application/zip", key=key, icon=":material/folder_zip:",
                       help="The .tflite model and its card, the Keras model, labels.txt, the curves and reports, "
                       "and predict.py, which runs the model with LiteRT alone.")


def start_training(config):
    """Start a training run in the background; returns the job (``snapshot()``, ``stop()``, ``done``)."""
    from cvplay.training.jobs import TrainJob

    return TrainJob(config).start()


def _format_table(table: pd.DataFrame) -> dict:
    return {
        "val top-1": st.column_config.NumberColumn(format="percent", help="Top-1 accuracy on the validation split"),
        "held-out top-1": st.column_config.NumberColumn(format="percent",
                                                        help="Top-1 on a held-out test split, never used for training "
                                                        "or model selection (runs trained with --test-fraction)"),
        "time (s)": st.column_config.NumberColumn(format="%.0f"),
        "folder": st.column_config.TextColumn(width="small"),
    }


def runs_overview(runs: list) -> None:
    table = runs_core.runs_table(runs)
    st.dataframe(table, hide_index=True, width="stretch", column_config=_format_table(table), key=f"{KEY}-table")
    st.caption("Click a column header to sort. Runs are read from " + ", ".join(f"`{d}`" for d in runs_core.search_dirs())
               + ".")


def _curve_chart(frame: pd.DataFrame, metric: str, title: str):
    data = frame[frame["metric"].isin([metric, f"val_{metric}"])].copy()
    data["split"] = data["metric"].map({metric: "train", f"val_{metric}": "validation"})
    return (alt.Chart(data, title=title).mark_line(point=True)
            .encode(x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title=metric),
                    color=alt.Color("run:N", legend=alt.Legend(orient="bottom", columns=1)),
                    strokeDash=alt.StrokeDash("split:N", sort=["validation", "train"]),
                    tooltip=["run", "split", "epoch", alt.Tooltip("value:Q", format=".4f")]))


def compare(chosen: list) -> None:
    for note in runs_core.comparable(chosen):
        st.caption(note)
    summary = runs_core.runs_table(chosen)[["run", "backbone", "image size", "epochs", "time (s)", "val top-1",
                                           "held-out top-1"]]
    st.dataframe(summary, hide_index=True, width="stretch", column_config=_format_table(summary))
    frame = runs_core.curves(chosen)
    if frame.empty:
        st.info("These runs have no per-epoch history (history.csv) to plot.")
    else:
        left, right = st.columns(2)
        left.altair_chart(_curve_chart(frame, "accuracy", "Accuracy per epoch"), use_container_width=True)
        right.altair_chart(_curve_chart(frame, "loss", "Loss per epoch"), use_container_width=True)
    st.subheader("Confusion matrices")
    st.caption("Rows: true class; columns: predicted class; on each run's report split (held-out test when it has one).")
    columns = st.columns(len(chosen))
    for column, run in zip(columns, chosen):
        with column:
            st.markdown(f"**{run.name}**")
            matrix = run.confusion()
            if matrix is None:
                st.caption("No confusion matrix saved.")
            else:
                st.dataframe(matrix, width="stretch")
    st.subheader("Per-class scores")
    score = st.radio("Score", ["f1", "recall", "precision"], horizontal=True, key=f"{KEY}-score")
    side = runs_core.per_class_side_by_side(chosen, score)
    if side.empty:
        st.caption("No per-class report saved.")
    else:
        st.dataframe(side, width="stretch",
                     column_config={name: st.column_config.ProgressColumn(name, min_value=0.0, max_value=1.0, format="%.2f")
                                    for name in side.columns})


def _tracking_note(run) -> None:
    path = run.file("tracking.json")
    if path is None:
        return
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if record.get("tensorboard"):
        st.caption(f"TensorBoard logs: `tensorboard --logdir {record['tensorboard']}`")
    if record.get("mlflow"):
        st.caption(f"MLflow run `{record['mlflow'].get('run_id')}` in `{record['mlflow'].get('tracking_uri')}` "
                   f"(experiment {record['mlflow'].get('experiment')}).")


def scratch_comparison(run, runs: list) -> None:
    """The "Compare with a CNN from scratch" button and its background run."""
    partner = runs_core.scratch_partner(run, runs)
    job = state.get(JOB)
    if job is not None and not job.done:
        @st.fragment(run_every=1.0)
        def progress() -> None:
            snapshot = job.snapshot()
            st.progress(min(1.0, snapshot["fraction"]), text=f"CNN from scratch: {snapshot['message']}")
            if snapshot["done"]:
                st.rerun()

        progress()
        if st.button("Stop", key=f"{KEY}-scratch-stop"):
            job.stop()
        return
    if job is not None and job.done:
        snapshot = job.snapshot()
        if snapshot["error"]:
            st.error(f"The CNN from scratch could not be trained: {snapshot['error']}")
        elif partner is not None and not state.get(f"{KEY}-scratch-shown"):
            state[f"{KEY}-compare-next"] = [run.name, partner.name]  # once, then the choice is the user's
            state[f"{KEY}-scratch-shown"] = True
    if partner is not None:
        st.success(f"Trained from scratch on the same data and split: **{partner.name}**. Pick both below to "
                   "compare them (the scratch run's folder: the runs folder).")
        return
    if run.backbone == runs_core.SCRATCH_BACKBONE:
        return
    no_tf = importlib.util.find_spec("tensorflow") is None
    clicked = st.button("Compare with a CNN from scratch", key=f"{KEY}-scratch", disabled=no_tf,
                        help="Trains the small CNN (no pretrained weights) on the same images, with the same "
                        "validation/test split and augmentation, and shows both runs side by side."
                        + (" Needs the training extra." if no_tf else ""))
    if clicked:
        try:
            kwargs = runs_core.scratch_config_kwargs(run)
            runs_core.check_same_data(run, kwargs.get("max_per_class"))
        except runs_core.RunError as error:
            st.error(str(error))
            return
        from cvplay.training.trainer import TrainConfig

        runs_core.write_comparison_note(run, Path(kwargs["out"]))
        state[JOB] = start_training(TrainConfig(**kwargs))
        state[f"{KEY}-scratch-shown"] = False
        st.rerun()


def runs_page() -> None:
    st.title("Training runs")
    st.write("Every training run on this machine: what it learned from, how, and how well it did. Pick two or "
             "more to compare their curves, confusion matrices and per-class scores.")
    runs = runs_core.discover_runs()
    if not runs:
        st.info("No training runs yet. Train a classifier on the **Train a classifier** page (or with "
                "`python -m cvplay train`) and it appears here.")
        return
    runs_overview(runs)
    names = [run.name for run in runs]
    by_name = {run.name: run for run in runs}

    st.header("One run")
    chosen_name = st.selectbox("Run", names, key=f"{KEY}-one")
    run = by_name[chosen_name]
    st.caption(f"{run.card.get('title', run.name)}; data `{run.data}`; folder `{run.folder}`")
    columns = st.columns([1, 2])
    with columns[0]:
        download_everything(run.card_path, key=f"{KEY}-download-{run.name}")
    with columns[1]:
        scratch_comparison(run, runs)
    _tracking_note(run)

    st.header("Compare runs")
    wanted = state.pop(f"{KEY}-compare-next", None)
    if wanted and all(name in names for name in wanted):
        state[f"{KEY}-compare"] = wanted
    elif f"{KEY}-compare" not in state:
        state[f"{KEY}-compare"] = names[:2]
    state[f"{KEY}-compare"] = [name for name in state[f"{KEY}-compare"] if name in names]
    picked = st.multiselect("Runs to compare", names, key=f"{KEY}-compare")
    if len(picked) < 2:
        st.info("Pick at least two runs.")
        return
    compare([by_name[name] for name in picked])
