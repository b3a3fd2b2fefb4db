"""A view's tiles come from one snapshot: while four writers report events, every wall-screen reading adds up."""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from db.uow import UnitOfWork
from domain.vocabulary import EventCategory, EventSource
from services import clock
from services.access import Scope
from services.display import open_by_level, screen_kpis
from services.events import report_event
from services.geography import tree
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area

WRITERS = 4
READINGS = 100


def _reader(engine) -> Connection:
    """What ``components.store.reader()`` opens: one snapshot per view."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    return conn


def test_every_wall_screen_reading_adds_up_while_events_are_reported(empty_engine):
    forget_index()
    engine = empty_engine
    with engine.begin() as conn:
        make_square_area(conn)
    with engine.connect() as conn:
        scope = Scope(tuple(tree(conn).grids_under(None)))
    now = clock.now()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            i = 0
            while not stop.is_set() and i < 200:
                lon, lat = grid_centre((n + i) % 4)
                report_event(
                    UnitOfWork(engine),
                    source=EventSource.CITIZEN,
                    category=EventCategory.URBAN,
                    title=f"路灯不亮 {n}-{i}",
                    lon=lon,
                    lat=lat,
                    now=now,
                )
                i += 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    mismatches, seen = [], set()
    try:
        for _ in range(READINGS):
            with _reader(engine) as conn:
                today = int(screen_kpis(conn, scope, now)["今日事件"].replace(",", ""))
                by_level = sum(open_by_level(conn, scope).values())
            seen.add(today)
            if today != by_level:  # every event is new today and still open: two tiles, one number
                mismatches.append((today, by_level))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(seen) > 1, "the writers wrote while the screen read"
    assert mismatches == []
