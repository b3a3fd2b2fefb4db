"""Faults a county's server meets: a writer killed mid-write, a power cut, a full disk, a read-only store,
PostgreSQL backends terminated. Every acknowledged write survives, nothing is half-written, the trail
verifies, and what a caller meets is a named fault (services.faults), never a silent loss."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from db.engine import CHECKPOINTER_ENV, make_engine, unwatch
from db.models import AuditLog, Event, EventTransition
from db.uow import UnitOfWork
from domain.vocabulary import EventCategory, EventSource
from services import audit, clock
from services.events import report_event
from services.faults import Fault, classify
from tests.builders import grid_centre
from tests.conftest import backend_url

ROOT = Path(__file__).resolve().parents[2]
ON_SQLITE = not (backend_url() or "").startswith("postgresql")
ITERATIONS = int(os.environ.get("FAULT_ITERATIONS", "3"))


def _titles(engine, prefix: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(Event.title).where(Event.title.like(f"{prefix}-%"))).scalars())


def _whole(engine) -> None:
    """Nothing half-written: every event has its report transition and its audit row; the chain holds."""
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        reported = conn.execute(
            select(func.count(func.distinct(EventTransition.event_id))).where(EventTransition.seq == 1)
        ).scalar_one()
        trail = conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "event.report")
        ).scalar_one()
        assert events == reported == trail
        assert audit.verify(conn) is None
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def _report(engine, title: str, k: int = 0) -> None:
    lon, lat = grid_centre(k % 4)
    report_event(
        UnitOfWork(engine),
        source=EventSource.GRID_WORKER,
        category=EventCategory.URBAN,
        title=title,
        lon=lon,
        lat=lat,
        now=clock.now(),
    )


def _start_writer(url: str, prefix: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.writer", url, prefix, str(count)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_writer_killed_mid_write_loses_no_acknowledged_report(area_store):
    url = area_store.url.render_as_string(hide_password=False)
    rng = random.Random(1)
    acknowledged: set[str] = set()
    for i in range(ITERATIONS):
        writer = _start_writer(url, f"KILL{i}", 10_000)
        lines: list[str] = []
        reader = threading.Thread(target=lambda w=writer, out=lines: out.extend(iter(w.stdout.readline, "")))
        reader.start()
        deadline = time.monotonic() + 60
        while len(lines) < 5 and time.monotonic() < deadline:  # let it write a while
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        reader.join()
        assert lines, "the writer acknowledged nothing before it was killed"
        acknowledged |= {line.strip() for line in lines if line.strip()}
    stored = set().union(*(_titles(area_store, f"KILL{i}") for i in range(ITERATIONS)))
    assert acknowledged <= stored  # at most the one in flight is stored but unacknowledged
    assert len(stored - acknowledged) <= ITERATIONS
    _whole(area_store)


@pytest.mark.skipif(not ON_SQLITE, reason="the SQLite file and its WAL are what a power cut leaves")
def test_a_power_cut_at_any_moment_leaves_a_store_that_opens_with_every_acknowledged_report(
    area_store, tmp_path
):
    path = Path(area_store.url.database)
    unwatch(str(path))  # this process's checkpointer leaves the file still too (decision 0060)
    with area_store.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    url = area_store.url.render_as_string(hide_password=False)
    # No automatic checkpoint in the writer, no checkpointer thread beside it: the main file stays still
    # and the WAL only grows, so a copy of both at any moment is what the disk would hold after a power
    # cut at that moment.
    writer = subprocess.Popen(
        [sys.executable, "-c", _NO_CHECKPOINT_WRITER, url, "CUT", "100000"], cwd=ROOT, stdout=subprocess.PIPE,
        text=True, env={**os.environ, CHECKPOINTER_ENV: "0"},
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(writer.stdout.readline, "")))
    reader.start()
    rng = random.Random(2)
    try:
        for i in range(ITERATIONS):
            deadline = time.monotonic() + 60
            while len(lines) < 5 * (i + 1) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.2))
            before = {line.strip() for line in list(lines)}
            cut = tmp_path / f"cut{i}"
            cut.mkdir()
            shutil.copyfile(path, cut / path.name)
            wal = Path(f"{path}-wal")
            if wal.exists():
                shutil.copyfile(wal, cut / wal.name)
            copy = create_engine(f"sqlite:///{cut / path.name}")
            with copy.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                stored = set(conn.execute(select(Event.title).where(Event.title.like("CUT-%"))).scalars())
                assert audit.verify(conn) is None
            copy.dispose()
            assert before <= stored
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        reader.join()


_NO_CHECKPOINT_WRITER = """
import sys
from sqlalchemy import event
import db.engine
original = db.engine._tune_sqlite
def tune(dbapi_conn, record):
    original(dbapi_conn, record)
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")
db.engine._tune_sqlite = tune
from tests.faults.writer import main
main()
"""


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite's page limit stands in for a full disk")
def test_a_full_disk_refuses_the_report_as_full_and_keeps_the_store_as_it_was(area_store):
    _report(area_store, "FULL-before")
    with area_store.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")  # on this connection only
        conn.commit()
    full = make_engine(area_store.url.render_as_string(hide_password=False))
    from sqlalchemy import event

    @event.listens_for(full, "connect")
    def _no_room(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    failures = []
    for k in range(200):  # fill the last pages, then meet the wall
        try:
            _report(full, f"FULL-{k}" + "x" * 2000, k)
        except Exception as exc:
            failures.append(exc)
            break
    assert failures and classify(failures[0]) is Fault.FULL
    full.dispose()
    _whole(area_store)


@pytest.mark.skipif(not ON_SQLITE, reason="a read-only SQLite file")
def test_a_read_only_store_refuses_the_report_as_read_only_and_writes_nothing(area_store):
    _report(area_store, "RO-before")
    path = Path(area_store.url.database)
    area_store.dispose()
    ro = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(Exception) as caught:
        _report(ro, "RO-after")
    assert classify(caught.value) is Fault.READ_ONLY
    ro.dispose()
    assert _titles(area_store, "RO") == {"RO-before"}


@pytest.mark.skipif(ON_SQLITE, reason="PostgreSQL backends to terminate")
def test_terminated_backends_mid_write_leave_every_acknowledged_report_and_nothing_half_written(area_store):
    admin = make_engine(area_store.url.render_as_string(hide_password=False))
    database = area_store.url.database
    stop = threading.Event()
    terminated = []

    def terminator() -> None:
        while not stop.is_set():
            with admin.connect() as conn:
                killed = conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid() AND state <> 'idle'"
                    ),
                    {"db": database},
                ).all()
                conn.commit()
            terminated.extend(k for (k,) in killed if k)
            time.sleep(0.02)

    killer = threading.Thread(target=terminator)
    killer.start()
    acknowledged, faults = set(), []
    try:
        for k in range(60 * ITERATIONS):
            title = f"PG-{k}"
            try:
                _report(area_store, title, k)
            except Exception as exc:
                faults.append(classify(exc))
                continue
            acknowledged.add(title)
    finally:
        stop.set()
        killer.join()
        admin.dispose()
    assert terminated, "backends were terminated while the reports were written"
    assert set(faults) <= {Fault.DISCONNECTED}, faults
    assert acknowledged <= _titles(area_store, "PG")
    _whole(area_store)
