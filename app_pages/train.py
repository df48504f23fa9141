"""Train your own classifier: transfer learning on a .zip (or folder) of class folders.

Thin page: the work is :func:`cvplay.training.trainer.train`, run in a separate process
(:mod:`cvplay.training.jobs`) so that the server stays small and other sessions keep using the
app while the page polls progress. Runs belong to the server, not to a browser tab: a page opened
later lists them and can stop them. The server never imports TensorFlow; the run's process does.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cvplay import augment
from cvplay.registry import user_models_dir
from cvplay.training import jobs  # TF-free
from cvplay_ui import collect as collect_ui
from cvplay_ui import runs as runs_ui

KEY = "train"
RUN = f"{KEY}-run"  # the id of this session's run (the run itself lives in cvplay.training.jobs)
# The largest .zip of class folders the page takes; .streamlit/config.toml's maxUploadSize matches it.
TRAIN_ZIP_MAX_MB = 200
SOURCES = ("Upload a .zip", "Local folder path", "Collect with the camera")
BACKBONES = {
    "efficientnet-lite0": ("EfficientNet-Lite0 (ImageNet, offline)", 224),
    "efficientnet-b0": ("EfficientNet-B0 (Keras; needs internet for its weights)", 224),
    "small-cnn": ("Small CNN from scratch (baseline)", 64),
}
SIZES = [32, 64, 96, 128, 160, 192, 224]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
UPLOADED_POLICY = "Uploaded policy JSON"
state = st.session_state


def key(*parts: str) -> str:
    return "-".join((KEY, *parts))


st.title("Train a classifier")
st.write(
    "Teach a model your own classes: give a `.zip` of class folders (one folder per class, named "
    "after it), pick a backbone and press **Start**. A pretrained backbone is frozen while a new "
    "head learns, then its top blocks are fine-tuned. The trained model is saved to your models "
    "folder and shows up in the other pages."
)

if importlib.util.find_spec("tensorflow") is None:
    st.info(
        "Training needs TensorFlow, which is not installed here. Install the training extra and "
        "restart the app:"
    )
    st.code('pip install -e ".[train]"', language="bash")
    st.stop()


def unique_name(name: str) -> str:
    from cvplay.training.trainer import slug  # TF-free

    base = slug(name)
    candidate, number = base, 2
    while (user_models_dir() / candidate).exists():
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def read_policy(upload) -> augment.Policy | None:
    if upload is None:
        return None
    try:
        return augment.Policy.from_json(upload.getvalue())
    except ValueError as error:
        st.error(f"{upload.name} is not an augmentation policy: {error}")
        return None


def show_curves(history: list[dict]) -> None:
    if not history:
        return
    frame = pd.DataFrame(history).set_index("epoch")
    left, right = st.columns(2)
    loss_cols = [c for c in ("loss", "val_loss") if c in frame]
    acc_cols = [c for c in ("accuracy", "val_accuracy") if c in frame]
    with left:
        st.caption("Loss")
        st.line_chart(frame[loss_cols])
    with right:
        st.caption("Accuracy")
        st.line_chart(frame[acc_cols])


def show_result(snapshot: dict) -> None:
    result = snapshot["result"]
    if snapshot["error"]:
        st.error(f"Training failed: {snapshot['error']}")
        return
    if result is None:
        return
    if result.stopped:
        st.warning("Training was stopped early; the model holds the best weights reached so far.")
    for text in result.warnings:
        st.warning(text)
    cols = st.columns(4)
    cols[0].metric("Validation top-1", f"{result.metrics['top1']:.1%}")
    cols[1].metric("Validation top-5", f"{result.metrics['top5']:.1%}")
    cols[2].metric("Validation images", result.n_val)
    cols[3].metric("Time", f"{result.seconds:.0f} s")
    show_curves(result.history)
    st.subheader("Confusion matrix")
    st.caption("Rows: true class; columns: predicted class (validation images).")
    st.dataframe(pd.DataFrame(result.confusion, index=result.labels, columns=result.labels), width="stretch")
    st.dataframe(pd.DataFrame(result.per_class), hide_index=True, width="stretch")
    st.subheader("Misclassified validation images")
    if not result.misclassified:
        st.write("None: every validation image was classified correctly.")
    else:
        columns = st.columns(6)
        for i, item in enumerate(result.misclassified):
            columns[i % 6].image(
                item["image"],
                caption=f"{item['true']} → {item['predicted']} ({item['confidence']:.0%})",
                width="stretch",
            )
    st.subheader("Downloads")
    downloads = st.columns(3)
    downloads[0].download_button("Model (.tflite)", Path(result.model_path).read_bytes(),
                                 file_name=Path(result.model_path).name, mime="application/octet-stream")
    downloads[1].download_button("Keras model (.keras)", Path(result.keras_path).read_bytes(),
                                 file_name=f"{result.name}.keras", mime="application/octet-stream")
    downloads[2].download_button("Model card (JSON)", Path(result.card_path).read_bytes(),
                                 file_name=Path(result.card_path).name, mime="application/json")
    listed = Path(result.out_dir).resolve().is_relative_to(user_models_dir().resolve())
    st.success(
        f"Saved to `{result.out_dir}` as **{result.name}**"
        + (": it is now listed in the app's model pickers." if listed else ".")
    )
    if listed:
        collect_ui.try_it_live(result.name)
    runs_ui.download_everything(result.card_path, key=key("bundle"))


# --- controls --------------------------------------------------------------------------------

job = jobs.get_run(state.get(RUN))
running = job is not None and not job.done
others = [run for run in jobs.list_runs() if run is not job]
at_limit = len(jobs.list_runs(active_only=True)) >= jobs.max_active_runs()

source = st.radio("Images", SOURCES, horizontal=True, key=key("source"), disabled=running)
upload = data_path = None
if source == SOURCES[0]:
    upload = st.file_uploader("A .zip of class folders", type=["zip"], key=key("zip"), disabled=running,
                              max_upload_size=TRAIN_ZIP_MAX_MB)
elif source == SOURCES[1]:
    data_path = st.text_input("Folder of class folders (on the server)", key=key("path"), disabled=running).strip()
else:
    data_path = collect_ui.collect_mode(key("collect"), disabled=running)

left, middle, right = st.columns(3)
with left:
    backbone = st.selectbox("Backbone", list(BACKBONES), format_func=lambda b: BACKBONES[b][0],
                            key=key("backbone"), disabled=running)
    size = st.selectbox("Image size", SIZES, index=SIZES.index(BACKBONES[backbone][1]), key=key("size", backbone),
                        disabled=running)
with middle:
    epochs = st.number_input("Epochs (head, or whole model from scratch)", 1, 100, 10, key=key("epochs"), disabled=running)
    fine_tune = st.number_input("Fine-tuning epochs", 0, 50, 3 if backbone != "small-cnn" else 0,
                                key=key("fine-tune", backbone), disabled=running or backbone == "small-cnn")
    learning_rate = st.select_slider("Learning rate", LEARNING_RATES, value=1e-3, key=key("lr"),
                                     format_func=lambda v: f"{v:g}", disabled=running)
with right:
    presets = [*augment.PRESETS, UPLOADED_POLICY]
    choice = st.selectbox("Augmentation", presets, index=presets.index(augment.DEFAULT_PRESET), key=key("augment"),
                          disabled=running, help="A preset, or the JSON the Augmentation page downloads.")
    policy_upload = None
    if choice == UPLOADED_POLICY:
        policy_upload = st.file_uploader("Policy JSON", type=["json"], key=key("policy"), disabled=running, max_upload_size=1)
    cache = st.checkbox("Fast head training (cached features)", value=True, key=key("cache"),
                        disabled=running or backbone == "small-cnn",
                        help="The frozen backbone's features are computed once and the head trains on them in "
                        "seconds; augmentation then applies to fine-tuning only.")
    name = st.text_input("Model name", key=key("name"), disabled=running,
                         placeholder="default: the data's name and the backbone")

start = st.button("Start", type="primary", key=key("start"), disabled=running or at_limit,
                  help="One training run at a time on this server." if at_limit and not running else None)

if start:
    policy: object = choice
    if choice == UPLOADED_POLICY:
        policy = read_policy(policy_upload)
    cleanup: list[Path] = []
    data = None
    if upload is not None:
        with tempfile.NamedTemporaryFile(prefix="cvplay-train-", suffix=".zip", delete=False) as handle:
            handle.write(upload.getvalue())
        data = handle.name
        cleanup.append(Path(handle.name))
        stem = Path(upload.name).stem
    elif data_path:
        data = data_path
        stem = Path(data_path.rstrip("/\\")).name
    if data is None:
        st.error("Give the images first: upload a .zip of class folders, type a folder path, or collect "
                 "photos of at least 2 classes with the camera.")
    elif policy is None:
        st.error("Upload the augmentation policy JSON, or choose a preset.")
    else:
        from cvplay.training.trainer import TrainConfig

        model_name = unique_name(name or f"{stem}-{backbone}")
        config = TrainConfig(
            data=data, out=str(user_models_dir() / model_name), backbone=backbone, epochs=int(epochs),
            image_size=int(size), learning_rate=float(learning_rate),
            fine_tune_epochs=int(fine_tune) if backbone != "small-cnn" else 0,
            augment=policy, name=model_name, cache_features=True if cache and backbone != "small-cnn" else None,
        )
        try:
            job = jobs.start_run(config, cleanup=cleanup, label=model_name)
        except jobs.RunLimitError as error:
            for path in cleanup:
                path.unlink(missing_ok=True)
            st.error(str(error))
        else:
            state[RUN] = job.id
            st.rerun()  # draw the page again with its controls locked while the run goes

# --- progress and results --------------------------------------------------------------------


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def ended_run(run: jobs.TrainJob) -> None:
    snapshot = run.snapshot()
    outcome = f"failed: {snapshot['error']}" if snapshot["state"] == "failed" else snapshot["state"]
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.write(f"**{snapshot['label']}**: {outcome}, {minutes(snapshot['elapsed'])} after it started.")
    if right.button("Show its results", key=key("adopt", run.id)):
        state[RUN] = run.id
        st.rerun()


@st.fragment(run_every=1.0)
def run_panel(run_id: str, own: bool) -> None:
    """A run's live progress with Stop (and Kill once stopping), for this session's run or
    another one on the server (started in a closed tab, say)."""
    run = jobs.get_run(run_id)
    if run is None:
        return
    snapshot = run.snapshot()
    if snapshot["done"]:
        # The whole page again: this session's results, or the run among the earlier ones,
        # and the Start button unlocked.
        st.rerun()
    run.touch()  # someone is watching: not an abandoned run
    buttons = st.columns([1, 1, 4])
    if buttons[0].button("Stop", key=key("stop", run_id), disabled=snapshot["state"] == "stopping",
                         help="End training now; the model is still saved, with the best weights so far."):
        run.stop()
    if run.snapshot()["state"] == "stopping" and buttons[1].button(
            "Kill now", key=key("kill", run_id), help="End the process at once; nothing more is saved."):
        run.kill()
    snapshot = run.snapshot()
    st.progress(min(1.0, snapshot["fraction"]), text=snapshot["message"] if not snapshot["step"] else "training done")
    step = snapshot["step"]
    if step:
        inside = step["fraction"] if step["fraction"] is not None else 0.0
        st.progress(min(1.0, (step["number"] - 1 + inside) / step["of"]),
                    text=f"After training, step {step['number']} of {step['of']}: {step['message']} "
                         f"({time.time() - step['since']:.0f} s)")
    where = f"in its own process (pid {snapshot['pid']})" if snapshot["pid"] else "in its own process"
    st.caption(f"**{snapshot['label']}**: training {where} for {minutes(snapshot['elapsed'])}; other pages stay "
               "usable, and this page can be closed and opened again. **Stop** ends it early and still saves the "
               "model with the best weights so far.")
    show_curves(snapshot["history"])
    with st.expander("Log"):
        st.code("\n".join(snapshot["messages"][-40:]) or "starting", language=None)


if job is not None:
    if running:
        run_panel(job.id, own=True)
    else:
        snapshot = job.snapshot()
        with st.expander("Training log"):
            st.code("\n".join(snapshot["messages"]) or "(empty)", language=None)
        show_result(snapshot)
        if snapshot["result"] is not None and not snapshot["error"]:
            from cvplay_ui.robustness import robustness_panel

            robustness_panel(snapshot["result"], upload if upload is not None else data_path)
        if snapshot["error"] and snapshot["result"] is None and job.details and "Error" in job.details:
            with st.expander("Details"):
                st.code(job.details, language=None)

if others:
    active = [run for run in others if not run.done]
    if active:
        st.subheader("Training in progress on this server")
        st.caption("Started from another tab or an earlier visit. Follow it or stop it here.")
        for run in active:
            run_panel(run.id, own=False)
    finished = [run for run in others if run.done]
    if finished and not running:
        with st.expander(f"Earlier runs on this server ({len(finished)})"):
            for run in finished:
                ended_run(run)
