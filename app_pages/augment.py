"""Augmentation previews: see what an augmentation policy does to an image, sample by sample.

Thin page: the controls are generated from ``cvplay.augment.TRANSFORMS`` (one expander per
transform, one widget per declared setting) and every computation is in ``cvplay.augment``.
"""

from __future__ import annotations

import streamlit as st

from cvplay import augment, samples
from cvplay.augment_params import drawn_table
from cvplay_ui.robustness import sample_captions, sample_model
from cvplay_ui.widgets import image_inputs

KEY = "augment"
PREVIEW_MAX_SIDE = 512
PER_ROW = 3  # the original and the samples, large enough to see what a transform did
PARAMS_MAX_HEIGHT = 420  # the drawn-parameters table scrolls past this many pixels
POLICY_STATE = f"{KEY}-policy"  # a plain (non-widget) copy, so settings survive page switches
MESSAGE_STATE = f"{KEY}-policy-message"
SOURCES = ("Built-in sample", "Your own image")
state = st.session_state


def key(*parts: str) -> str:
    return "-".join((KEY, *parts))


def widget_values(policy: augment.Policy) -> dict[str, object]:
    """Session-state values of every policy widget, for ``policy``."""
    values: dict[str, object] = {
        key("fill-mode"): policy.fill_mode,
        key("fill-value"): policy.fill_value,
        key("seed"): policy.seed,
    }
    for name, config in policy.transforms.items():
        values[key(name, "enabled")] = config.enabled
        values[key(name, "probability")] = config.probability
        for setting, value in config.settings.items():
            values[key(name, setting)] = value
    return values


def load_policy(policy: augment.Policy, *, keep_seed: bool = False) -> None:
    if keep_seed and key("seed") in state:
        policy = policy.replace(seed=int(state[key("seed")]))
    state[POLICY_STATE] = policy.to_dict()
    state.update(widget_values(policy))


def on_preset() -> None:
    load_policy(augment.preset(state[key("preset")]), keep_seed=True)
    state[MESSAGE_STATE] = None


def on_policy_upload() -> None:
    upload = state.get(key("policy-upload"))
    if upload is None:
        return
    try:
        load_policy(augment.Policy.from_json(upload.getvalue()))
        state[MESSAGE_STATE] = ("success", f"Loaded the policy from {upload.name}.")
    except ValueError as error:
        state[MESSAGE_STATE] = ("error", f"{upload.name} is not a valid policy: {error}")


def on_new_samples() -> None:
    state[key("seed")] = int(state.get(key("seed"), 0)) + 1


def policy_from_widgets() -> augment.Policy:
    transforms = {}
    for t in augment.TRANSFORMS:
        entry = {"enabled": state[key(t.name, "enabled")], "probability": state[key(t.name, "probability")]}
        for param in t.params:
            entry[param.name] = state[key(t.name, param.name)]
        transforms[t.name] = entry
    return augment.Policy.from_dict(
        {
            "seed": int(state[key("seed")]),
            "fill_mode": state[key("fill-mode")],
            "fill_value": int(state[key("fill-value")]),
            "transforms": transforms,
        }
    )


def param_widget(t: augment.Transform, param: augment.Param) -> None:
    label = param.name.replace("_", " ").capitalize()
    widget_key = key(t.name, param.name)
    if param.type == "bool":
        st.checkbox(label, key=widget_key, help=param.help)
    elif param.type in ("int", "int_range"):
        st.slider(label, int(param.min), int(param.max), step=int(param.step or 1), key=widget_key, help=param.help)
    else:
        st.slider(label, float(param.min), float(param.max), step=float(param.step or 0.01), key=widget_key, help=param.help)


# First run (or back from another page): fill every widget's state from the saved policy.
if POLICY_STATE not in state:
    state[POLICY_STATE] = augment.DEFAULT_POLICY.to_dict()
for widget_key, value in widget_values(augment.Policy.from_dict(state[POLICY_STATE])).items():
    state.setdefault(widget_key, value)
state.setdefault(key("preset"), augment.DEFAULT_PRESET)

st.title("Augmentation previews")
st.write(
    "Pick an image, switch transforms on and set their ranges, and see augmented samples drawn "
    "from the policy, each with the exact parameters it drew."
)

source = st.radio("Image", SOURCES, horizontal=True, key=key("source"))
image = None
if source == SOURCES[0]:
    name = st.selectbox(
        "Sample", samples.SAMPLES, key=key("sample"), format_func=lambda n: f"{n}: {samples.DESCRIPTIONS[n]}"
    )
    image = samples.load(name)
else:
    good = [item for item in image_inputs(KEY, multiple=False) if item.ok]
    image = good[0].image if good else None

controls, previews = st.columns([1, 3], gap="medium")

with controls:
    st.subheader("Policy")
    st.selectbox(
        "Preset",
        augment.PRESETS,
        key=key("preset"),
        on_change=on_preset,
        help="Loads into the controls below. 'classic' is the seed project's Keras ImageDataGenerator.",
    )
    st.selectbox(
        "Fill mode", list(augment.FILL_MODES), key=key("fill-mode"),
        help="What geometric transforms show where they uncover the outside of the image.",
    )
    st.number_input(
        "Fill value", min_value=0, max_value=255, step=1, key=key("fill-value"), help="Grey level for 'constant'."
    )
    for t in augment.TRANSFORMS:
        on = bool(state[key(t.name, "enabled")])
        with st.expander(t.title, key=key(t.name, "expander"), icon=":material/check_circle:" if on else None):
            st.caption(t.help)
            st.checkbox("Enabled", key=key(t.name, "enabled"))
            st.slider("Probability", 0.0, 1.0, step=0.05, key=key(t.name, "probability"))
            for param in t.params:
                param_widget(t, param)

    try:
        policy = policy_from_widgets()
    except ValueError as error:
        st.error(f"These settings do not make a valid policy: {error}")
        st.stop()
    state[POLICY_STATE] = policy.to_dict()

    st.subheader("Policy JSON")
    st.download_button(
        "Download policy JSON",
        data=policy.to_json(),
        file_name="augmentation-policy.json",
        mime="application/json",
        key=key("download"),
        on_click="ignore",
        icon=":material/download:",
    )
    st.file_uploader("Load a policy JSON", type=["json"], key=key("policy-upload"), on_change=on_policy_upload, max_upload_size=1)
    message = state.get(MESSAGE_STATE)
    if message:
        getattr(st, message[0])(message[1])
    st.caption("The Train page reads the same policy JSON, so what you see here is what training draws.")
    with st.expander("Show the policy JSON", key=key("json-expander")):
        st.code(policy.to_json(), language="json")

with previews:
    seed_column, count_column, button_column = st.columns([1, 1, 1], vertical_alignment="bottom")
    seed_column.number_input("Seed", min_value=0, step=1, key=key("seed"))
    count = count_column.slider("Samples", 1, 16, value=8, key=key("count"))
    button_column.button("New samples", key=key("new-samples"), on_click=on_new_samples, icon=":material/casino:")
    show_params = st.checkbox("Show drawn parameters", key=key("show-params"))
    judge = sample_model(KEY)

    if image is None:
        st.info("Add a photo (upload, URL or camera), or pick a built-in sample.")
        st.stop()

    height, width = image.shape[:2]
    image = augment.downscale_to(image, PREVIEW_MAX_SIDE)
    if image.shape[:2] != (height, width):
        st.caption(
            f"Previewing a copy downscaled from {width}×{height} to {image.shape[1]}×{image.shape[0]} "
            f"(longer side at most {PREVIEW_MAX_SIDE} px), so sliders stay responsive."
        )
    enabled = [t.title for t, _, _ in policy.enabled()]
    st.caption("On: " + (", ".join(enabled) if enabled else "nothing (the 'none' policy)"))

    results = policy.preview(image, count, policy.seed)
    captions = sample_captions(judge, image, [augmented for augmented, _ in results]) if judge else None
    if captions:
        st.caption(f"The model changes its answer on {captions.changed} of {count} samples.")
    original_caption = captions.original if captions else "Original"
    sample_labels = captions.samples if captions else [f"Sample {index}" for index in range(1, count + 1)]
    tiles = [(image, original_caption)] + [(augmented, label) for (augmented, _), label in zip(results, sample_labels)]
    for start in range(0, len(tiles), PER_ROW):
        for column, (picture, caption) in zip(st.columns(PER_ROW), tiles[start:start + PER_ROW]):
            column.image(picture, caption=caption, width="stretch")
    if show_params:
        table = drawn_table([drawn for _, drawn in results])
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            height=min(PARAMS_MAX_HEIGHT, 38 + 35 * len(table)),
            column_config={
                "sample": st.column_config.NumberColumn("sample", format="%d", width="small"),
                "transform": st.column_config.TextColumn("transform", width="medium"),
                "drawn values": st.column_config.TextColumn("drawn values (rounded)", width="large"),
            },
        )
