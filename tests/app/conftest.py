"""AppTest helpers: pages are loaded by their path from the repository root."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components.cached import clear_after_write
from db.engine import make_engine

ROOT = Path(__file__).resolve().parents[2]


def page(path: str) -> AppTest:
    """An AppTest of the page file ``path`` (relative to the repository root)."""
    return AppTest.from_file(str(ROOT / path), default_timeout=30)


@pytest.fixture
def store(seeded_store_url, monkeypatch):
    """The shared tiny demo store, as the pages under test see it (DATABASE_URL)."""
    monkeypatch.setenv("DATABASE_URL", seeded_store_url)
    engine = make_engine(seeded_store_url)
    # Other tests of this worker write to the shared store without the app (no clear_after_write, no trail
    # row for follow_other_processes): each test's pages read the store as it is, not a worker's cache.
    clear_after_write()
    yield engine
    engine.dispose()
