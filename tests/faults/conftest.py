"""The fault suite: a few iterations in `make test`; the long runs are `make bench` (section faults)."""

from __future__ import annotations

import pytest

from services.locate import forget_index
from tests.builders import make_square_area


@pytest.fixture
def area_store(empty_engine):
    """An empty store with the square test area (four grids), ready for reports."""
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine
