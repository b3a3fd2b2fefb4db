"""Store faults met for real (a full disk, a read-only store, a killed connection) are told apart."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from db.engine import make_engine
from db.models import AuditLog, Event, EventTransition
from db.uow import StoreBusy, UnitOfWork
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, EventStatus
from services.events import act, report_event
from services.faults import MESSAGES, Fault, classify, incident
from tests.builders import grid_centre, make_square_area
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


@pytest.mark.skipif(ON_SQLITE, reason="server backends to terminate")
def test_pooled_connections_the_server_closed_are_replaced_without_an_error(empty_engine):
    """A restart closes every pooled connection while it sits idle. The engine does not ping on checkout
    (decision 0058): it looks at the socket, finds the server's goodbye and opens a new connection, so
    the next request after the restart is answered, not failed."""
    import time

    pool_ids = set()
    with empty_engine.connect() as a, empty_engine.connect() as b:  # two connections in the pool
        pool_ids = {c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in (a, b)}
    admin = make_engine(empty_engine.url.render_as_string(hide_password=False))
    try:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(p) FROM unnest(CAST(:p AS int[])) AS p"),
                {"p": list(pool_ids)},
            )
            conn.commit()
            for _ in range(200):  # the backends are gone (a restart takes longer than this)
                left = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(CAST(:p AS int[]))"),
                    {"p": list(pool_ids)},
                ).scalar_one()
                conn.commit()
                if not left:
                    break
                time.sleep(0.01)
    finally:
        admin.dispose()
    seen = set()
    with empty_engine.connect() as a, empty_engine.connect() as b:
        for c in (a, b):
            seen.add(c.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert len(seen) == 2 and not seen & pool_ids


@pytest.mark.skipif(ON_SQLITE, reason="the PostgreSQL pool's checkout")
def test_a_pooled_connection_idle_for_a_while_is_pinged_and_replaced_when_it_does_not_answer(
    empty_engine, monkeypatch
):
    """A server that vanished without a goodbye (a host rebooted, an address moved to a standby) leaves
    nothing on the socket to see: a connection idle longer than PING_AFTER_IDLE_S is pinged at checkout,
    and one that does not answer is replaced before the request gets it. One busy a moment ago is not."""
    import db.engine as engine_module

    pings: list[bool] = []
    answers = {"ok": True}

    def ping(dbapi_conn):
        pings.append(answers["ok"])
        if not answers["ok"]:
            raise OSError("no answer")
        return True

    monkeypatch.setattr(empty_engine.dialect, "do_ping", ping)
    with empty_engine.connect() as conn:
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with empty_engine.connect() as conn:  # back in use at once: looked at, not pinged
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
    assert pings == []
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    with empty_engine.connect() as conn:  # "idle for a while": pinged, answers, kept
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
    answers["ok"] = False
    with empty_engine.connect() as conn:  # pinged, no answer: a new connection, no error
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    assert pings == [True, False]


def test_anything_else_is_unexpected_and_gets_a_logged_incident_id(caplog):
    found = incident(ValueError("boom"), "tests")
    assert found.fault is Fault.UNEXPECTED and len(found.incident_id) == 8
    assert any(found.incident_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert classify(StoreBusy()) is Fault.BUSY


@pytest.mark.parametrize("pasted", ["\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_a_pasted_control_character_in_a_note_is_told_as_such_and_nothing_is_written(empty_engine, pasted):
    """A form without its own check (here an action's note) meets text a store cannot keep: PostgreSQL
    refuses a NUL, both drivers a lone surrogate. The person reads what to remove; the action, its trail
    row and its audit row are not written. (SQLite keeps a NUL as typed: nothing to refuse there.)"""
    with empty_engine.begin() as conn:
        make_square_area(conn)
    uow = UnitOfWork(empty_engine)
    lon, lat = grid_centre(0)
    now = datetime(2026, 11, 20, 9, 0)
    event = report_event(
        uow,
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="路面垃圾",
        lon=lon,
        lat=lat,
        now=now,
    )

    def counts():
        with empty_engine.connect() as conn:
            return tuple(
                conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (EventTransition, AuditLog)
            )

    before = counts()
    note = f"已到现场{pasted}处理"
    if pasted == "\x00" and ON_SQLITE:
        act(uow, event_id=event.id, action=Action.ACCEPT, now=now, note=note)
        with empty_engine.connect() as conn:
            stored = (
                conn.execute(
                    select(EventTransition.note)
                    .where(EventTransition.event_id == event.id)
                    .order_by(EventTransition.seq.desc())
                )
                .scalars()
                .first()
            )
        assert stored == note
        return
    with pytest.raises(Exception) as caught:
        act(uow, event_id=event.id, action=Action.ACCEPT, now=now, note=note)
    found = incident(caught.value, "tests")
    assert found.fault is Fault.UNSTORABLE_TEXT and "控制字符" in found.message
    assert counts() == before
    with empty_engine.connect() as conn:
        assert (
            conn.execute(select(Event.status).where(Event.id == event.id)).scalar_one()
            == EventStatus.REPORTED
        )


@pytest.mark.skipif(not ON_SQLITE, reason="the store's own file")
def test_a_store_file_removed_under_the_app_is_told_as_missing_and_never_made_again_empty(tmp_path):
    """SQLite made a new, empty file at the path on the next connection (every page "no such table"),
    and a pooled connection acknowledged writes into the deleted file, lost when it closed."""
    from db.engine import make_engine
    from db.migrate import upgrade

    path = tmp_path / "cockpit.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        make_square_area(conn)
    with engine.connect() as conn:  # a connection in the pool, open on the file
        conn.execute(text("SELECT 1"))
    for name in ("cockpit.db", "cockpit.db-wal", "cockpit.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    lon, lat = grid_centre(0)
    with pytest.raises(DBAPIError) as caught:
        report_event(
            UnitOfWork(engine),
            source=EventSource.CITIZEN,
            category=EventCategory.URBAN,
            title="占道经营",
            lon=lon,
            lat=lat,
            now=datetime(2026, 11, 21, 9),
        )
    assert classify(caught.value) is Fault.STORE_MISSING and "数据库文件" in MESSAGES[Fault.STORE_MISSING]
    assert not path.exists()
    # a backup restored at the path is opened afresh
    restored = make_engine(f"sqlite:///{path}")
    upgrade(restored)
    restored.dispose()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0


def test_a_statement_cut_off_by_its_timeout_and_a_broken_disk_are_told_by_name():
    class Orig(Exception):
        sqlstate = "57014"

    timeout = DBAPIError("UPDATE events …", {}, Orig("canceling statement due to statement timeout"))
    assert classify(timeout) is Fault.BUSY
    broken = DBAPIError("PRAGMA journal_mode=WAL", {}, Exception("disk I/O error"))
    assert classify(broken) is Fault.STORAGE and "磁盘" in MESSAGES[Fault.STORAGE]
