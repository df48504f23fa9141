"""The Train page's "Collect with the camera" mode: build a dataset of class folders in the app.

The page calls :func:`collect_mode` where it would take a ``.zip`` or a folder path; it returns
the collected dataset's folder once the dataset can be trained on (else None, having said what
is missing). Photos come from camera snapshots (``st.camera_input``), from a burst of several
frames a second of a live WebRTC stream (:class:`cvplay.collect.BurstRecorder`), or from uploads.
Everything is stored at once by :mod:`cvplay.datastore` under the user's datasets folder, so a
refresh or a restart loses nothing. :func:`try_it_live` links a trained model to the webcam page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cvplay.collect import DEFAULT_COUNT, DEFAULT_RATE, MAX_RATE, BurstRecorder
from cvplay.datastore import DatasetStore, DataStoreError
from cvplay_ui.widgets import UPLOAD_TYPES

NEW = "New dataset…"
OPEN_ZIP = "Open a .zip…"
THUMBNAILS_PER_ROW = 8
MAX_THUMBNAILS = 48
POLL_SECONDS = 0.5
state = st.session_state


@st.cache_data(max_entries=2000, show_spinner=False)
def _thumbnail(path: str, modified: float, side: int = 160) -> bytes:
    """A small JPEG of a stored photo (cached by path and modification time)."""
    import io

    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _recorder(prefix: str) -> BurstRecorder:
    name = f"{prefix}-burst"
    if name not in state:
        state[name] = BurstRecorder()
    return state[name]


def _flash(prefix: str, kind: str, text: str) -> None:
    state.setdefault(f"{prefix}-flash", []).append((kind, text))


def _show_flashes(prefix: str) -> None:
    for kind, text in state.pop(f"{prefix}-flash", []):
        getattr(st, kind)(text)


def _choose_dataset(store: DatasetStore, prefix: str, disabled: bool):
    """The dataset picker with its "new" and "open a .zip" forms; returns the open dataset or None."""
    names = store.names()
    options = [*names, NEW, OPEN_ZIP]
    wanted = state.pop(f"{prefix}-select-next", None)
    if wanted in options:
        state[f"{prefix}-dataset"] = wanted
    elif state.get(f"{prefix}-dataset") not in options:
        state[f"{prefix}-dataset"] = names[-1] if names else NEW
    choice = st.selectbox("Dataset", options, key=f"{prefix}-dataset", disabled=disabled,
                          help=f"Collected datasets live in `{store.root}`, one folder per class.")
    if choice == NEW:
        with st.form(f"{prefix}-new-form", border=True):
            name = st.text_input("Dataset name", value=store.free_name("my-objects"), key=f"{prefix}-new-name")
            classes = st.text_input("Class names, separated by commas", placeholder="e.g. mug, pen, phone",
                                    key=f"{prefix}-new-classes")
            if st.form_submit_button("Create the dataset", type="primary", disabled=disabled):
                try:
                    wanted_classes = [c for c in (part.strip() for part in classes.split(",")) if c]
                    dataset = store.create(name, wanted_classes)
                except DataStoreError as error:
                    st.error(str(error))
                else:
                    state[f"{prefix}-select-next"] = dataset.name
                    st.rerun()
        return None
    if choice == OPEN_ZIP:
        upload = st.file_uploader("A .zip of class folders (for example one downloaded here)", type=["zip"],
                                  key=f"{prefix}-import", disabled=disabled)
        if upload is not None and st.button("Open it", type="primary", key=f"{prefix}-import-go", disabled=disabled):
            try:
                dataset, problems = store.import_zip(upload.getvalue(), name=Path(upload.name).stem)
            except DataStoreError as error:
                st.error(f"{upload.name}: {error}")
            else:
                _flash(prefix, "success", f"Opened {upload.name} as **{dataset.name}**: "
                       + ", ".join(f"{k} {v}" for k, v in dataset.counts().items()) + ".")
                if problems:
                    _flash(prefix, "warning", f"{len(problems)} file(s) left out: " + "; ".join(problems[:5])
                           + (" …" if len(problems) > 5 else ""))
                state[f"{prefix}-select-next"] = dataset.name
                st.rerun()
        return None
    try:
        return store.open(choice)
    except DataStoreError as error:
        st.error(str(error))
        return None


def _snapshot_tab(dataset, class_name: str, prefix: str, disabled: bool) -> None:
    shot = st.camera_input(f"Take a photo of **{class_name}**", key=f"{prefix}-camera", disabled=disabled,
                           help="Each photo you take is added to the class chosen above.")
    if shot is None:
        return
    seen = f"{prefix}-camera-seen"
    if state.get(seen) == shot.file_id:
        return
    state[seen] = shot.file_id
    try:
        dataset.add_photo(class_name, shot.getvalue())
    except DataStoreError as error:
        st.error(str(error))
    else:
        st.toast(f"Added a photo to {class_name} ({len(dataset.photos(class_name))} now).")


def _burst_tab(dataset, class_name: str, prefix: str, disabled: bool) -> None:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    from cvplay_ui.webrtc import IceConfigError, enable_loopback_ice, ice_servers_from_env, loopback_requested

    recorder = _recorder(prefix)
    if disabled:  # while a model trains, the stream would only take CPU time from it
        recorder.stop()
        st.caption("The live camera is off while a training run is in progress.")
        return
    st.caption("Press START to open the camera, then **Record a burst**: it keeps several frames a second "
               "while you move the object around, so you get many views in seconds.")
    if loopback_requested():
        enable_loopback_ice()
    try:
        ice_servers, _ = ice_servers_from_env()
    except IceConfigError as error:
        st.error(f"WebRTC settings: {error}. Using host candidates only.")
        ice_servers = []

    def callback(frame):
        recorder.offer(frame.to_ndarray(format="rgb24"))
        return frame

    video, controls = st.columns([3, 2])
    with video:
        context = webrtc_streamer(
            key=f"{prefix}-webrtc", mode=WebRtcMode.SENDRECV, video_frame_callback=callback,
            media_stream_constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False},
            rtc_configuration={"iceServers": ice_servers}, async_processing=True,
        )
    playing = bool(getattr(getattr(context, "state", None), "playing", False))
    with controls:
        count = st.number_input("Photos per burst", 1, dataset.limits.max_photos_per_class, DEFAULT_COUNT,
                                key=f"{prefix}-burst-count")
        rate = st.slider("Photos per second", 1.0, MAX_RATE, DEFAULT_RATE, 1.0, key=f"{prefix}-burst-rate")
        status = recorder.status()
        left, right = st.columns(2)
        if left.button(f"Record a burst of {class_name}", type="primary", key=f"{prefix}-burst-start",
                       disabled=disabled or not playing or status.active):
            try:
                recorder.start(dataset, class_name, int(count), float(rate))
            except DataStoreError as error:
                st.error(str(error))
        if right.button("Stop the burst", key=f"{prefix}-burst-stop", disabled=not status.active):
            recorder.stop()
        if not playing:
            st.caption("The camera is off: press START.")
        _burst_status(recorder, prefix)


def _burst_status(recorder: BurstRecorder, prefix: str) -> None:
    @st.fragment(run_every=POLL_SECONDS if recorder.status().active else None)
    def panel() -> None:
        status = recorder.status()
        if status.active:
            st.progress(min(1.0, status.saved / max(1, status.target)), text=status.message)
            state[f"{prefix}-burst-was-active"] = True
        else:
            if status.class_name:
                st.caption(status.message)
            if state.pop(f"{prefix}-burst-was-active", False):
                st.rerun()  # show the new photos

    panel()


def _upload_tab(dataset, class_name: str, prefix: str, disabled: bool) -> None:
    version = state.get(f"{prefix}-upload-version", 0)
    files = st.file_uploader(f"Photos of **{class_name}**", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key=f"{prefix}-upload-{version}", disabled=disabled)
    if files and st.button(f"Add {len(files)} photo(s) to {class_name}", type="primary",
                           key=f"{prefix}-upload-add", disabled=disabled):
        added, problems = dataset.add_photos(class_name, [(f.name, f.getvalue()) for f in files])
        _flash(prefix, "success", f"Added {len(added)} photo(s) to {class_name}.")
        if problems:
            _flash(prefix, "warning", "Left out: " + "; ".join(problems[:8]) + (" …" if len(problems) > 8 else ""))
        state[f"{prefix}-upload-version"] = version + 1  # empties the uploader
        st.rerun()


def _class_gallery(dataset, class_name: str, prefix: str, disabled: bool) -> None:
    photos = dataset.photos(class_name)
    header = st.columns([4, 1])
    header[0].markdown(f"**{class_name}**: {len(photos)} photo(s)")
    if header[1].button("Delete class", key=f"{prefix}-delclass-{class_name}", disabled=disabled,
                        help="Deletes the class folder and its photos."):
        state[f"{prefix}-confirm"] = class_name
    if state.get(f"{prefix}-confirm") == class_name:
        st.warning(f"Delete {class_name} and its {len(photos)} photo(s)? This cannot be undone.")
        yes, no = st.columns([1, 5])
        if yes.button("Delete", type="primary", key=f"{prefix}-delclass-yes-{class_name}"):
            dataset.delete_class(class_name)
            state.pop(f"{prefix}-confirm", None)
            st.rerun()
        if no.button("Keep it", key=f"{prefix}-delclass-no-{class_name}"):
            state.pop(f"{prefix}-confirm", None)
            st.rerun()
    if not photos:
        st.caption("No photos yet.")
        return
    shown = photos[-MAX_THUMBNAILS:][::-1]  # newest first
    if len(photos) > len(shown):
        st.caption(f"The newest {len(shown)} are shown.")
    for start in range(0, len(shown), THUMBNAILS_PER_ROW):
        columns = st.columns(THUMBNAILS_PER_ROW)
        for column, photo in zip(columns, shown[start:start + THUMBNAILS_PER_ROW]):
            with column:
                st.image(_thumbnail(str(photo), photo.stat().st_mtime), width="stretch")
                if st.button(":material/delete:", key=f"{prefix}-del-{class_name}-{photo.name}", help="Delete this photo",
                             disabled=disabled):
                    try:
                        dataset.delete_photo(class_name, photo.name)
                    except DataStoreError as error:
                        st.error(str(error))
                    st.rerun()


def collect_mode(prefix: str = "collect", disabled: bool = False) -> str | None:
    """The collect mode's widgets; returns the dataset folder when it can be trained on, else None."""
    store = DatasetStore()
    st.caption("Name your classes, then add photos to each: snapshots, a burst from the live camera, or "
               "uploads. Every photo is saved on the server at once, so a refresh or a restart loses nothing.")
    _show_flashes(prefix)
    try:
        dataset = _choose_dataset(store, prefix, disabled)
    except OSError as error:
        st.error(f"The datasets folder {store.root} cannot be used: {error.strerror or error}.")
        return None
    if dataset is None:
        return None

    counts = dataset.counts()
    add_row = st.columns([3, 1, 2])
    new_class = add_row[0].text_input("Add a class", key=f"{prefix}-add-class-name", disabled=disabled,
                                      placeholder="class name", label_visibility="collapsed")
    if add_row[1].button("Add class", key=f"{prefix}-add-class", disabled=disabled):
        try:
            added = dataset.add_class(new_class)
        except DataStoreError as error:
            st.error(str(error))
        else:
            state[f"{prefix}-target-next"] = added
            st.rerun()
    if not counts:
        st.info("Add a class first (one per kind of object), e.g. **mug**.")
        return None

    targets = list(counts)
    wanted = state.pop(f"{prefix}-target-next", None)
    if wanted in targets:
        state[f"{prefix}-target"] = wanted
    elif state.get(f"{prefix}-target") not in targets:
        state[f"{prefix}-target"] = targets[0]
    # Plain class names as options: a label that changed with the counts would reset the choice.
    class_name = st.radio("Add photos to", targets, horizontal=True, key=f"{prefix}-target", disabled=disabled)
    snapshot, burst, upload = st.tabs([":material/photo_camera: Snapshot", ":material/burst_mode: Burst (live camera)",
                                       ":material/upload: Upload"])
    with snapshot:
        _snapshot_tab(dataset, class_name, prefix, disabled)
    with burst:
        _burst_tab(dataset, class_name, prefix, disabled)
    with upload:
        _upload_tab(dataset, class_name, prefix, disabled)

    counts = dataset.counts()
    total_mb = dataset.total_bytes() / 2**20
    st.markdown(f"#### {dataset.name}: {sum(counts.values())} photo(s) in {len(counts)} class(es), {total_mb:.1f} MB")
    st.caption(f"Limits: {dataset.limits.max_classes} classes, {dataset.limits.max_photos_per_class} photos per class, "
               f"{dataset.limits.max_total_bytes / 2**20:.0f} MB per dataset; photos are stored at most "
               f"{dataset.limits.max_side} px wide.")
    for name in counts:
        with st.container(border=True):
            _class_gallery(dataset, name, prefix, disabled)

    actions = st.columns([2, 2, 3])
    actions[0].download_button("Download the dataset (.zip)", data=lambda: dataset.to_zip_bytes(),
                               file_name=f"{dataset.name}.zip", mime="application/zip", key=f"{prefix}-download",
                               help="Class folders of JPEG photos; open it here again, or train on it anywhere.")
    if actions[1].button("Delete the dataset", key=f"{prefix}-delete-dataset", disabled=disabled):
        state[f"{prefix}-confirm"] = f"dataset:{dataset.name}"
        st.rerun()
    if state.get(f"{prefix}-confirm") == f"dataset:{dataset.name}":
        st.warning(f"Delete the whole dataset {dataset.name} ({sum(counts.values())} photos)? This cannot be undone.")
        yes, no = st.columns([1, 5])
        if yes.button("Delete it", type="primary", key=f"{prefix}-delete-dataset-yes"):
            store.delete(dataset.name)
            state.pop(f"{prefix}-confirm", None)
            st.rerun()
        if no.button("Keep it", key=f"{prefix}-delete-dataset-no"):
            state.pop(f"{prefix}-confirm", None)
            st.rerun()

    problems = dataset.problems_for_training()
    if problems:
        st.info("Before training: " + " ".join(problems))
        return None
    for hint in dataset.advice():
        st.caption(f"Tip: {hint}")
    st.success(f"**{dataset.name}** is ready to train: choose the settings below and press **Start**.")
    return str(dataset.root)


def try_it_live(model_name: str) -> None:
    """A link to the webcam page with the new model chosen in whole-frame classify mode
    (the agreed deep link ``/webcam?classifier=MODEL_NAME``)."""
    label = f"Try **{model_name}** live on the webcam"
    try:
        st.page_link("app_pages/webcam.py", label=label, icon=":material/videocam:",
                     query_params={"classifier": model_name})
    except Exception:  # the page runs outside the app's navigation (a test, a bare `streamlit run`)
        from urllib.parse import quote

        st.markdown(f":material/videocam: [{label}](webcam?classifier={quote(model_name)})")

