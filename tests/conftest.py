"""Shared fixtures: fresh stores on the configured backend (SQLite by default, PostgreSQL by DATABASE_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from db.engine import make_engine, session_factory
from db.migrate import upgrade


@pytest.fixture(autouse=True, scope="session")
def _audit_anchors_out_of_the_repository(tmp_path_factory) -> None:
    """Checkpoints written by tests (the nightly audit job) go to a temporary folder, per store as always."""
    os.environ["AUDIT_ANCHOR_DIR"] = str(tmp_path_factory.mktemp("audit-anchors"))


def backend_url() -> str | None:
    """The server the suite runs against: DATABASE_URL if set (PostgreSQL in CI's second run)."""
    return os.environ.get("DATABASE_URL")


@pytest.fixture(scope="session")
def new_store_url(tmp_path_factory) -> Iterator[Callable[[], str]]:
    """A factory of URLs of new, empty databases on the configured backend; all dropped at the end."""
    base = backend_url()
    made: list[str] = []

    def make() -> str:
        if not base or base.startswith("sqlite"):
            path = tmp_path_factory.mktemp("store") / "cockpit.db"
            return f"sqlite:///{path}"
        name = f"cockpit_t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        made.append(name)
        return make_url(base).set(database=name).render_as_string(hide_password=False)

    yield make
    if made:
        admin = create_engine(make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_engine(new_store_url) -> Iterator[Engine]:
    """A migrated store with no rows, new for each test."""
    engine = make_engine(new_store_url())
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def seeded_store(new_store_url) -> tuple[str, dict]:
    """A store seeded with the tiny demo (the demo town, two months up to today) and its anomaly manifest."""
    from demo.seed import seed
    from services import clock

    url = new_store_url()
    engine = make_engine(url)
    result = seed(engine, scale="tiny", seed=1, until=clock.today(), manifest_dir=None)
    _room_for_test_visits(engine)
    engine.dispose()
    return url, result["manifest"]


def _room_for_test_visits(engine) -> None:
    """Give the demo inspector room for the venues tests add to their day.

    The demo runs until now, so how many visits the demo inspector has already made today depends on the
    hour the suite starts (late in the day the default 15 are used up and a test's venue cannot be planned).
    A per-inspector capacity, as an admin would set it, makes the day's room independent of the hour.
    """
    import json

    from services import clock, settings
    from services.auth import user_by_username
    from services.planning_settings import CAPACITY_KEY, load_capacity

    with session_factory(engine).begin() as s:
        uid = user_by_username(s, "demo_inspector").id
        conn = s.connection()
        default = load_capacity(conn).default
        settings.write(
            conn, CAPACITY_KEY, json.dumps({"default": default, "inspectors": {str(uid): 100}}), clock.now()
        )


@pytest.fixture(scope="session")
def seeded_store_url(seeded_store) -> str:
    """The tiny demo store's URL, shared: tests that write create their own rows."""
    return seeded_store[0]
