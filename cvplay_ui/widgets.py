"""Input widgets shared by the pages: upload several photos, paste an image URL, or take a
camera snapshot. Every input is decoded by the core; a bad one gets its own message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import streamlit as st

from cvplay.fetch import FetchError, fetch_image_bytes
from cvplay.images import DEFAULT_MAX_BYTES, ImageError, decode_image

UPLOAD_TYPES = ["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"]


@dataclass
class InputImage:
    name: str
    image: np.ndarray | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.image is not None


def _decode(name: str, data: bytes) -> InputImage:
    try:
        return InputImage(name=name, image=decode_image(data))
    except ImageError as error:
        return InputImage(name=name, image=None, error=str(error))


@st.cache_data(ttl=600, max_entries=32, show_spinner="Fetching the image…")
def _fetch(url: str) -> tuple[bytes | None, str | None]:
    try:
        return fetch_image_bytes(url, max_bytes=DEFAULT_MAX_BYTES), None
    except FetchError as error:
        return None, str(error)


def image_inputs(
    key: str,
    *,
    multiple: bool = True,
    sources: Sequence[str] = ("upload", "url", "camera"),
) -> list[InputImage]:
    """Render the chosen input widgets and return every input, failed ones with ``error`` set.

    Errors are shown here, one message per bad input, so a page only handles the good ones.
    """
    inputs: list[InputImage] = []
    if "upload" in sources:
        uploads = st.file_uploader(
            "Drag in photos" if multiple else "Drag in a photo",
            type=UPLOAD_TYPES,
            accept_multiple_files=multiple,
            key=f"{key}-upload",
            max_upload_size=DEFAULT_MAX_BYTES // 2**20,
            help=f"JPEG, PNG, GIF, BMP, WebP or TIFF, up to {DEFAULT_MAX_BYTES // 2**20} MB each.",
        )
        if uploads is None:
            uploads = []
        elif not isinstance(uploads, list):
            uploads = [uploads]
        for upload in uploads:
            inputs.append(_decode(upload.name, upload.getvalue()))
    if "url" in sources:
        url = st.text_input(
            "…or paste an image URL",
            key=f"{key}-url",
            placeholder="https://example.org/photo.jpg",
        ).strip()
        if url:
            data, error = _fetch(url)
            inputs.append(_decode(url, data) if data is not None else InputImage(url, None, error))
    if "camera" in sources and st.toggle("Take a camera snapshot", key=f"{key}-camera-on"):
        snapshot = st.camera_input("Camera", key=f"{key}-camera", label_visibility="collapsed")
        if snapshot is not None:
            inputs.append(_decode("camera snapshot", snapshot.getvalue()))
    for item in inputs:
        if item.error:
            st.error(f"**{item.name}**: {item.error}")
    if not multiple:
        good = [item for item in inputs if item.ok]
        return good[-1:] if good else inputs[-1:]
    return inputs
