"""KPI tiles: a row of labelled numbers."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st


def kpi_row(items: Sequence[tuple[str, int | float | str]]) -> None:
    """One st.metric per (label, value), thousands separated."""
    for col, (label, value) in zip(st.columns(len(items)), items, strict=True):
        col.metric(label, f"{value:,}" if isinstance(value, int) else value)
