"""Store faults met for real (a full disk, a read-only store, a killed connection) are told apart."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from db.uow import StoreBusy
from services.faults import MESSAGES, Fault, classify, incident
from tests.conftest import backend_url

ON_SQLITE = not (backend_url() or "").startswith("postgresql")


def _failure(engine, sql: str, **params) -> BaseException:
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        conn.execute(text(sql), params)
    return caught.value


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite's own page limit stands in for a full disk")
def test_a_full_store_is_told_as_full_with_what_to_do(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (b BLOB)"))
    with engine.connect() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        conn.execute(text(f"PRAGMA max_page_count = {pages + 1}"))
        with pytest.raises(DBAPIError) as caught:
            conn.execute(text("INSERT INTO t VALUES (zeroblob(1000000))"))
    assert classify(caught.value) is Fault.FULL
    assert "存储空间已满" in MESSAGES[Fault.FULL]


@pytest.mark.skipif(not ON_SQLITE, reason="a read-only SQLite file; PostgreSQL is covered by the next test")
def test_a_read_only_store_is_told_as_read_only(tmp_path):
    path = tmp_path / "ro.db"
    with create_engine(f"sqlite:///{path}").begin() as conn:
        conn.execute(text("CREATE TABLE t (x INT)"))
    ro = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert classify(_failure(ro, "INSERT INTO t VALUES (1)")) is Fault.READ_ONLY


def test_a_read_only_transaction_is_told_as_read_only(empty_engine):
    sql = "PRAGMA query_only = ON" if ON_SQLITE else "SET TRANSACTION READ ONLY"
    with pytest.raises(DBAPIError) as caught, empty_engine.begin() as conn:
        conn.execute(text(sql))
        conn.execute(
            text("INSERT INTO settings (key, value_json, updated_at) VALUES ('k', '1', '2026-11-21')")
        )
    assert classify(caught.value) is Fault.READ_ONLY


@pytest.mark.skipif(ON_SQLITE, reason="a server backend to terminate")
def test_a_terminated_database_connection_is_told_as_disconnected(empty_engine):
    with empty_engine.connect() as victim:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with empty_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        with pytest.raises((DBAPIError, PendingRollbackError)) as caught:
            victim.execute(text("SELECT 1"))
    assert classify(caught.value) is Fault.DISCONNECTED


def test_anything_else_is_unexpected_and_gets_a_logged_incident_id(caplog):
    found = incident(ValueError("boom"), "tests")
    assert found.fault is Fault.UNEXPECTED and len(found.incident_id) == 8
    assert any(found.incident_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert classify(StoreBusy()) is Fault.BUSY
