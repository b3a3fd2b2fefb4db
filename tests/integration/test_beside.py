"""db.beside (decision 0065): reads in threads on other connections that see the view's snapshot
(PostgreSQL), so two reads of one view run at once and still add up; None on SQLite."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from db.beside import _quoted, beside
from db.models import Setting
from db.uow import reading
from tests.conftest import backend_url

ON_POSTGRES = (backend_url() or "").startswith("postgresql")


def _settings(conn) -> int:
    return conn.execute(select(func.count()).select_from(Setting)).scalar_one()


def _add_setting(engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Setting).values(key=key, value_json=1, updated_at=datetime(2026, 12, 6)))


def _write(conn) -> None:
    conn.execute(insert(Setting).values(key="x", value_json=1, updated_at=datetime(2026, 12, 6)))


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_reads_beside_see_the_view_s_snapshot_in_threads_of_their_own(empty_engine):
    _add_setting(empty_engine, "before")
    view = empty_engine.connect().execution_options(  # as components.store.reader opens a view's reads
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    with view as conn:
        seen = _settings(conn)
        _add_setting(empty_engine, "after")  # committed by a colleague after the view began
        with beside(conn) as reads:
            assert reads is not None
            futures = [reads.submit(lambda c: (_settings(c), threading.get_ident())) for _ in range(3)]
            counted = [f.result() for f in futures]
            assert [n for n, _ in counted] == [seen] * 3 == [_settings(conn)] * 3
            assert threading.get_ident() not in {t for _, t in counted}
            with pytest.raises(Exception, match="read-only"):  # read only, as the view's own reads are
                reads.submit(_write).result()
    with empty_engine.connect() as fresh:
        assert _settings(fresh) == seen + 1


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_a_read_committed_view_gets_the_snapshot_of_the_moment_it_asks(empty_engine):
    with empty_engine.connect() as conn:
        seen = _settings(conn)
        with beside(conn) as reads:
            _add_setting(empty_engine, "later")
            assert reads is not None and reads.submit(_settings).result() == seen
        assert _settings(conn) == seen + 1  # READ COMMITTED: its own next statement sees it


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_leaving_waits_for_every_read_submitted(empty_engine):
    done = threading.Event()

    def slow(conn):
        conn.exec_driver_sql("SELECT pg_sleep(0.3)")
        done.set()

    with empty_engine.connect() as conn:
        _settings(conn)
        with beside(conn) as reads:
            assert reads is not None
            reads.submit(slow)
        assert done.is_set()


@pytest.mark.skipif(not ON_POSTGRES, reason="exported snapshots are PostgreSQL's")
def test_beside_a_reading_that_autocommits_each_read_takes_its_own_snapshot(empty_engine):
    """db.uow.reading (the jobs runner's daily 预警 pass): no transaction to export a snapshot from."""
    with reading(empty_engine) as conn:
        seen = _settings(conn)
        with beside(conn) as reads:
            assert reads is not None
            _add_setting(empty_engine, "meanwhile")
            assert reads.submit(_settings).result() == seen + 1 == _settings(conn)


def test_no_reads_beside_on_sqlite(empty_engine):
    with empty_engine.connect() as conn, beside(conn) as reads:
        assert (reads is None) == (not ON_POSTGRES)


def test_only_a_snapshot_id_reaches_the_statement():
    assert _quoted("00000003-0000001B-1") == "00000003-0000001B-1"
    for bad in ("", "1'; DROP TABLE x; --", "abc def"):
        with pytest.raises(ValueError):
            _quoted(bad)
