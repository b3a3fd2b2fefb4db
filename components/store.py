"""The page side of the store: one cached Engine per process, a unit of work for writes, a reader for reads.

This is the only module of pages/ and components/ that imports db/. A page writes with
``some_use_case(store.uow(), ...)`` (the use case opens, audits and commits it) and reads with
``with store.reader() as conn: ...``.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Connection, Engine

from db.engine import database_url, make_engine
from db.uow import UnitOfWork
from domain.hierarchy import Tree
from services.geography import tree as store_tree
from services.geography import tree_version


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return make_engine(url)


def engine() -> Engine:
    """The Engine of the configured store (``DATABASE_URL``), shared by every session."""
    return _engine(database_url())


def uow() -> UnitOfWork:
    """A fresh unit of work on the configured store, for one write use case to begin and commit."""
    return UnitOfWork(engine())


def reader() -> Connection:
    """A Connection for one view's reads (``with reader() as conn:``), all from one snapshot: SQLite
    reads inside one deferred transaction (db.engine), PostgreSQL in a REPEATABLE READ, READ ONLY one,
    so a view's tiles add up while others write."""
    conn = engine().connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def tree() -> Tree:
    """The store's five-level tree (:func:`services.geography.tree`: once per process, replaced when the
    boundaries change)."""
    with reader() as conn:
        return store_tree(conn)


@st.cache_resource(show_spinner="正在加载区划…", max_entries=2)
def _geography(url: str, version: tuple[int, int, int]):
    from domain.hierarchy import ancestor_table
    from services.geography import load_units

    with _engine(url).connect() as conn:
        units = load_units(conn)
    return units.set_index("id"), ancestor_table(units[["id", "parent_id", "level"]])


def geography():
    """Every unit (WGS84 geometry, indexed by id) and its ancestor table, loaded once per process and
    loaded again when the boundaries change."""
    with reader() as conn:
        version = tree_version(conn)
    return _geography(database_url(), version)
