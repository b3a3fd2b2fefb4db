"""bench.grow: a store with N times the history (issue 15's 10× store), on either backend: N copies of
every event, 52 weeks apart, open ones closed in their copies, 外部编号 still unique, and rollups rebuilt
equal to the raw rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bench.grow import SHIFT_DAYS, grow
from db.models import Event
from db.uow import UnitOfWork
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, EventStatus
from services import rollups
from services.events import act, report_event
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 20, 9, 30, 15, 250000)


def test_growing_a_store_copies_its_history_back_in_whole_weeks_with_rollups_equal_to_raw(empty_engine):
    with empty_engine.begin() as conn:
        make_square_area(conn)
    uow = UnitOfWork(empty_engine)
    for i, (category, ref) in enumerate(
        [(EventCategory.URBAN, "GD-1"), (EventCategory.ENVIRONMENT, None), (EventCategory.URBAN, "GD-2")]
    ):
        x, y = grid_centre(i)
        event = report_event(
            uow,
            source=EventSource.HOTLINE_12345,
            category=category,
            title=f"事件{i}",
            lon=x,
            lat=y,
            now=NOW + timedelta(hours=i),
            external_ref=ref,
        )
        if i == 0:  # one accepted, the others just reported: all still open
            act(uow, event_id=event.id, action=Action.ACCEPT, now=NOW)
    with empty_engine.connect() as conn:
        originals = conn.execute(select(Event.id, Event.reported_at, Event.status)).all()

    figures = grow(empty_engine, 3, log=lambda *_: None)

    assert figures["grow_events_count"] == 3 * len(originals) == 9
    with empty_engine.connect() as conn:
        rows = conn.execute(
            select(Event.reported_at, Event.status, Event.external_ref, Event.closed_at)
        ).all()
        assert rollups.differences(conn) == []
    stamps = sorted(r.reported_at for r in rows)
    first = min(r.reported_at for r in originals)
    assert stamps[0] == first - timedelta(days=2 * SHIFT_DAYS)  # microseconds kept, weekday kept
    assert stamps[0].weekday() == first.weekday()
    copies = [r for r in rows if r.reported_at < first]
    assert len(copies) == 6
    assert {EventStatus(r.status) for r in copies} == {EventStatus.ARCHIVED}
    assert all(r.closed_at is not None for r in copies)
    refs = [r.external_ref for r in rows if r.external_ref]
    assert sorted(refs) == ["GD-1", "GD-1#1", "GD-1#2", "GD-2", "GD-2#1", "GD-2#2"]
    # today's open work did not grow with history
    assert sum(EventStatus(r.status) != EventStatus.ARCHIVED for r in rows) == len(originals)
