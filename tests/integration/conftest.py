"""Fixtures shared by the integration tests."""

import pytest

from db.engine import make_engine, session_factory
from domain.hierarchy import ancestor_table, descendants
from domain.vocabulary import AdminLevel
from services.access import scope_for
from services.auth import user_by_username
from services.overview import unit_table


@pytest.fixture(scope="module")
def township(seeded_store_url):
    """The demo township leader on the tiny demo: (engine, user, units by id, ancestors, scope)."""
    engine = make_engine(seeded_store_url)
    with session_factory(engine)() as s:
        user = user_by_username(s, "demo_township")
    with engine.connect() as conn:
        units = unit_table(conn).set_index("id")
    anc = ancestor_table(units.reset_index())
    scope = scope_for(user, descendants(anc, user.scope_unit_id, AdminLevel.GRID.value))
    yield engine, user, units, anc, scope
    engine.dispose()
