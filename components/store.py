"""The page side of the store: one cached Engine per process, and a cached read helper."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from db.engine import database_url, make_engine


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return make_engine(url)


def engine() -> Engine:
    """The Engine of the configured store (``DATABASE_URL``), shared by every session."""
    return _engine(database_url())


@st.cache_resource(show_spinner="正在加载区划…")
def _geography(url: str):
    from domain.hierarchy import ancestor_table
    from services.geography import load_units

    with _engine(url).connect() as conn:
        units = load_units(conn)
    return units.set_index("id"), ancestor_table(units[["id", "parent_id", "level"]])


def geography():
    """Every unit (WGS84 geometry, indexed by id) and its ancestor table, loaded once per process."""
    return _geography(database_url())
