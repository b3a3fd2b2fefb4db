"""db.beside (decision 0065): a second connection on the first one's snapshot (PostgreSQL), so two
reads of one view run at once and still add up; None on SQLite."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from db.beside import _quoted, beside
from db.models import Setting
from tests.conftest import backend_url

ON_POSTGRES = (backend_url() or "").startswith("postgresql")


def _settings(conn) -> int:
    return conn.execute(select(func.count()).select_from(Setting)).scalar_one()


def _add_setting(engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Setting).values(key=key, value_json=1, updated_at=datetime(2026, 12, 6)))


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_the_second_connection_reads_the_first_one_s_snapshot(empty_engine):
    _add_setting(empty_engine, "before")
    view = empty_engine.connect().execution_options(  # as components.store.reader opens a view's reads
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    with view as conn:
        seen = _settings(conn)
        _add_setting(empty_engine, "after")  # committed by a colleague after the view began
        with beside(conn, 2) as others:
            assert others is not None and len(others) == 2
            assert [_settings(o) for o in others] == [seen, seen] == [_settings(conn)] * 2
            other = others[0]
            # Read only, as the view's own reads are.
            with pytest.raises(Exception, match="read-only"):
                other.execute(insert(Setting).values(key="x", value_json=1, updated_at=datetime(2026, 12, 6)))
    with empty_engine.connect() as fresh:
        assert _settings(fresh) == seen + 1


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_a_read_committed_view_gets_the_snapshot_of_the_moment_it_asks(empty_engine):
    with empty_engine.connect() as conn:
        seen = _settings(conn)
        with beside(conn) as others:
            _add_setting(empty_engine, "later")
            assert others is not None and _settings(others[0]) == seen
        assert _settings(conn) == seen + 1  # READ COMMITTED: its own next statement sees it


def test_no_second_connection_on_sqlite_or_outside_a_transaction(empty_engine):
    with empty_engine.connect() as conn, beside(conn) as others:
        assert others is None  # no transaction yet
    if not ON_POSTGRES:
        with empty_engine.connect() as conn:
            _settings(conn)
            with beside(conn) as others:
                assert others is None


def test_only_a_snapshot_id_reaches_the_statement():
    assert _quoted("00000003-0000001B-1") == "00000003-0000001B-1"
    for bad in ("", "1'; DROP TABLE x; --", "abc def"):
        with pytest.raises(ValueError):
            _quoted(bad)
