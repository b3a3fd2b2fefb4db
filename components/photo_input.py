"""The photo upload every form uses (随手拍, 办结's 处置照片, an inspection's hazard and visit photos): the
types and size the store takes (:mod:`domain.intake`), and the caption that says how a photo the widget
refused looks, so nobody believes a refused photo was sent (decision 0053)."""

from __future__ import annotations

import streamlit as st

from domain.intake import MAX_PHOTO_MB, PHOTO_HELP, PHOTO_UPLOAD_TYPES


def photo_input(label: str, *, key: str | None = None, multiple: bool = False):
    """A photo upload widget with its caption; its value (one file, a list with ``multiple``, or None)."""
    value = st.file_uploader(
        label,
        type=PHOTO_UPLOAD_TYPES,
        accept_multiple_files=multiple,
        max_upload_size=MAX_PHOTO_MB,
        key=key,
    )
    st.caption(PHOTO_HELP)
    return value
