"""Event rules in the store: admin edits validated, deadlines per stage, suggested dispatch, automatic 上移."""

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from db.models import Event, Setting
from db.uow import UnitOfWork
from domain.deadlines import DEFAULT_DEADLINES, DeadlineRulesError, Stage
from domain.dispatch import DEFAULT_RULES
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, EventStatus, Urgency
from services.event_rules import save_rules, suggest_dispatch
from services.events import act, escalate_overdue, report_event
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 9, 0)


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    return empty_engine, ids


def _report(engine, urgency=Urgency.URGENT):
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="占道经营",
        lon=grid_centre(0)[0],
        lat=grid_centre(0)[1],
        now=NOW,
        urgency=urgency,
    )


def test_every_stage_gets_its_deadline_and_a_late_step_marks_the_event_late(area):
    engine, _ids = area
    event = _report(engine)
    assert event.due_at == NOW + DEFAULT_DEADLINES.limit(Stage.ACCEPT, Urgency.URGENT)
    act(UnitOfWork(engine), event_id=event.id, action=Action.ACCEPT, now=NOW + timedelta(days=2))
    with engine.connect() as conn:
        assert conn.execute(select(Event.is_overdue).where(Event.id == event.id)).scalar_one()


def test_bad_rules_are_refused_in_chinese_and_nothing_is_stored(area):
    engine, _ = area
    bad = json.loads(DEFAULT_DEADLINES.to_json())
    first_stage = next(iter(bad))
    bad[first_stage][next(iter(bad[first_stage]))] = -5
    with pytest.raises(DeadlineRulesError):
        save_rules(
            UnitOfWork(engine), dispatch_json=DEFAULT_RULES.to_json(), deadlines_json=json.dumps(bad), now=NOW
        )
    with engine.connect() as conn:
        assert conn.execute(select(Setting.key)).all() == []


def test_the_rules_suggest_the_department_serving_the_place(area):
    engine, _ = area
    event = _report(engine)
    with engine.connect() as conn:
        row = dict(conn.execute(select(Event.__table__).where(Event.id == event.id)).mappings().one())
        decision, dept = suggest_dispatch(conn, row)
    assert decision.department_kind == "城管" and dept is not None
    assert decision.reason


def test_an_urgent_event_past_its_handling_deadline_moves_up_by_itself(area):
    engine, ids = area
    eid = _report(engine).id
    for action in (Action.ACCEPT, Action.DISPATCH, Action.START):
        act(UnitOfWork(engine), event_id=eid, action=action, now=NOW)
    assert escalate_overdue(UnitOfWork(engine), NOW + timedelta(days=10)) == 1
    with engine.connect() as conn:
        status, owner = conn.execute(select(Event.status, Event.owner_unit_id).where(Event.id == eid)).one()
    assert status == EventStatus.ACCEPTED and owner == ids["990001001"]


def test_saved_rules_are_stored_with_their_trail_row_and_read_back(area):
    from db.models import AuditLog

    engine, _ = area
    slower = json.loads(DEFAULT_DEADLINES.to_json())
    first_stage = next(iter(slower))
    slower[first_stage][next(iter(slower[first_stage]))] = 99
    save_rules(
        UnitOfWork(engine), dispatch_json=DEFAULT_RULES.to_json(), deadlines_json=json.dumps(slower), now=NOW
    )
    with engine.connect() as conn:
        keys = set(conn.execute(select(Setting.key)).scalars())
        actions = list(conn.execute(select(AuditLog.action)).scalars())
    assert keys == {"event.dispatch_rules", "event.deadlines"}
    assert actions == ["event.rules", "event.rules"]


def test_an_untouched_event_past_its_deadline_is_marked_late_once_and_the_rollup_counts_it(area):
    """按时办结率: an event nobody moved after its deadline is late without waiting for the next step (超期)."""
    from db.models import EventDaily, EventTransition
    from domain.event_flow import replay
    from services import rollups
    from services.events import Actor, mark_overdue

    engine, _ids = area
    eid = _report(engine).id
    rollups.rebuild(UnitOfWork(engine), NOW)
    with engine.connect() as conn:
        due = conn.execute(select(Event.due_at).where(Event.id == eid)).scalar_one()
    assert mark_overdue(UnitOfWork(engine), due - timedelta(minutes=1)) == 0  # not yet
    later = due + timedelta(hours=2)
    assert mark_overdue(UnitOfWork(engine), later) == 1
    assert mark_overdue(UnitOfWork(engine), later + timedelta(minutes=1)) == 0  # once
    with engine.connect() as conn:
        row = conn.execute(select(Event.status, Event.due_at, Event.is_overdue).where(Event.id == eid)).one()
        trail = conn.execute(
            select(EventTransition.action, EventTransition.actor_id, EventTransition.note)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq)
        ).all()
    assert row == (EventStatus.REPORTED, due, True)  # marked where it stands: the stage's deadline runs on
    assert [t.action for t in trail] == ["report", "overdue"] and trail[-1].actor_id is None
    assert f"{due:%Y-%m-%d %H:%M}" in trail[-1].note
    assert replay(Action(t.action) for t in trail) == EventStatus.REPORTED
    assert rollups.refresh(UnitOfWork(engine), later) >= 1
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(EventDaily.overdue))).scalar_one() == 1
        assert rollups.differences(conn) == []
    with pytest.raises(PermissionError, match="由系统标记"):
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=Action.OVERDUE,
            now=later,
            note="x",
            actor=Actor(user_id=1, role="admin"),
        )


def test_a_resolved_event_whose_check_is_late_is_marked_at_its_deadline_not_at_the_check(area):
    """已办结 awaiting 核查: the 核查 deadline runs, and a late check was only counted once somebody did it."""
    from services.events import mark_overdue

    engine, _ids = area
    eid = _report(engine).id
    at = NOW
    for action in (Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE):
        at += timedelta(minutes=10)
        act(UnitOfWork(engine), event_id=eid, action=action, now=at, note="按规定办理")
    with engine.connect() as conn:
        status, due, late = conn.execute(
            select(Event.status, Event.due_at, Event.is_overdue).where(Event.id == eid)
        ).one()
    assert (status, late) == (EventStatus.RESOLVED, False)
    assert due == at + DEFAULT_DEADLINES.limit(Stage.VERIFY, Urgency.URGENT)
    assert mark_overdue(UnitOfWork(engine), due - timedelta(minutes=1)) == 0
    assert mark_overdue(UnitOfWork(engine), due + timedelta(minutes=1)) == 1
    with engine.connect() as conn:
        row = conn.execute(select(Event.status, Event.due_at, Event.is_overdue).where(Event.id == eid)).one()
    assert row == (EventStatus.RESOLVED, due, True)  # still awaiting 核查, its deadline unchanged
    act(UnitOfWork(engine), event_id=eid, action=Action.VERIFY, now=due + timedelta(hours=1))
    assert mark_overdue(UnitOfWork(engine), due + timedelta(days=5)) == 0  # 已核查: no clock runs
