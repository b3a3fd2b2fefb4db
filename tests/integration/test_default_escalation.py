"""The fresh store's default rules move an overdue 一般 event up, by the jobs runner's pass alone (SQLite, and
PostgreSQL when DATABASE_URL says so); an administrator's rule turning 一般 off keeps it where it is
(decision 0027)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from db.models import AdminUnit, Event
from db.uow import UnitOfWork
from domain.event_flow import Action
from domain.vocabulary import AdminLevel, EventCategory, EventSource, Urgency
from services.event_rules import load_rules, save_rules
from services.events import act, report_event
from services.jobs import run_due
from tests.builders import grid_centre, make_square_area

REPORTED = datetime(2026, 11, 21, 9, 0)


@pytest.fixture
def handled(empty_engine):
    """An ordinary (一般) 随手拍 event in the square area, accepted and dispatched to the township's 城管."""
    with empty_engine.begin() as conn:
        make_square_area(conn)
    x, y = grid_centre(0)
    uow = UnitOfWork(empty_engine)
    event_id = report_event(
        uow,
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="路边护栏损坏",
        lon=x,
        lat=y,
        now=REPORTED,
        urgency=Urgency.NORMAL,
    ).id
    act(uow, event_id=event_id, action=Action.ACCEPT, now=REPORTED)
    act(uow, event_id=event_id, action=Action.DISPATCH, now=REPORTED)
    return empty_engine, event_id


def _state(engine, event_id: int) -> tuple[AdminLevel, int, datetime]:
    with engine.connect() as conn:
        row = conn.execute(
            select(AdminUnit.level, Event.escalations, Event.due_at)
            .join(AdminUnit, AdminUnit.id == Event.owner_unit_id)
            .where(Event.id == event_id)
        ).one()
    return AdminLevel(row.level), row.escalations, row.due_at


def test_an_ordinary_event_past_its_handling_deadline_moves_up_under_the_default_rules(handled):
    engine, event_id = handled
    level, escalations, due = _state(engine, event_id)
    assert (level, escalations, due) == (AdminLevel.VILLAGE, 0, REPORTED + timedelta(hours=72))
    early = run_due(UnitOfWork(engine), due - timedelta(minutes=1), only=["escalate"])["escalate"]
    assert early.count == 0 and _state(engine, event_id)[:2] == (AdminLevel.VILLAGE, 0)
    late = run_due(UnitOfWork(engine), due + timedelta(minutes=1), only=["escalate"])["escalate"]
    assert late.outcome == "ok" and late.count == 1
    assert _state(engine, event_id)[:2] == (AdminLevel.TOWNSHIP, 1)  # 村 → 乡镇


def test_a_rule_turning_ordinary_events_off_keeps_them_where_they_are(handled):
    engine, event_id = handled
    with engine.connect() as conn:
        dispatch, deadlines = load_rules(conn)
    auto = {**dispatch.escalation.auto, Urgency.NORMAL: False}
    save_rules(
        UnitOfWork(engine),
        dispatch_json=replace(dispatch, escalation=replace(dispatch.escalation, auto=auto)).to_json(),
        deadlines_json=deadlines.to_json(),
        now=REPORTED,
    )
    due = _state(engine, event_id)[2]
    run = run_due(UnitOfWork(engine), due + timedelta(days=5), only=["escalate"])["escalate"]
    assert run.count == 0 and _state(engine, event_id)[:2] == (AdminLevel.VILLAGE, 0)
