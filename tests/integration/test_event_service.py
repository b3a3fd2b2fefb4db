"""Reporting and moving events through the store: one trail row per change, nothing on refusal."""

import threading
from datetime import datetime

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text, update

from db.models import AuditLog, Event, EventTransition
from db.uow import UnitOfWork
from domain.errors import FieldProblems
from domain.event_flow import NEEDS_REASON, Action, IllegalTransition, replay
from domain.vocabulary import EventCategory, EventSource, EventStatus, Rating
from services.events import ConcurrentChange, act, report_event
from services.locate import OutsideArea, forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 9, 30)


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    return empty_engine, ids


def _report(engine, lon, lat):
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="占道堆物",
        lon=lon,
        lat=lat,
        now=NOW,
    )


def _act(engine, eid, action, **kw):
    return act(UnitOfWork(engine), event_id=eid, action=action, now=NOW, **kw)


def _snapshot(engine, eid):
    """What a refused action must leave as it was: the event's row, its trail, the audit trail."""
    with engine.connect() as conn:
        row = tuple(conn.execute(select(Event.__table__).where(Event.id == eid)).one())
        trail = conn.execute(
            select(func.count()).select_from(EventTransition).where(EventTransition.event_id == eid)
        ).scalar_one()
        audited = conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()
    return row, trail, audited


def test_a_report_lands_in_the_grid_under_its_point_owned_by_that_village(area):
    engine, ids = area
    event = _report(engine, *grid_centre(2))
    assert event.grid_id == ids["990001001002001"]
    assert event.owner_unit_id == ids["990001001002"]
    assert event.status is EventStatus.REPORTED


def test_a_report_outside_every_grid_is_refused_and_writes_nothing(area):
    engine, _ = area
    with pytest.raises(OutsideArea, match="不在任何网格内"):
        _report(engine, 118.70, 28.905)  # 0.1° west of the area: outside, not snapped to the nearest grid
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == 0


def test_each_step_writes_one_trail_row_and_the_trail_replays_to_the_status(area):
    engine, _ids = area
    eid = _report(engine, *grid_centre(0)).id
    for action in [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE, Action.VERIFY]:
        _act(engine, eid, action)
    assert _act(engine, eid, Action.RATE, rating=Rating.SATISFIED) is EventStatus.RATED
    with engine.connect() as conn:
        trail = conn.execute(
            select(EventTransition.seq, EventTransition.action)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq)
        ).all()
        status = conn.execute(select(Event.status).where(Event.id == eid)).scalar_one()
    assert [seq for seq, _ in trail] == list(range(1, 8))
    assert replay(Action(a) for _, a in trail) == status == EventStatus.RATED


def test_each_step_stamps_the_time_the_loop_says(area):
    engine, _ = area
    eid = _report(engine, *grid_centre(0)).id
    for hour, action in enumerate([Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE], start=10):
        act(UnitOfWork(engine), event_id=eid, action=action, now=NOW.replace(hour=hour))
    act(UnitOfWork(engine), event_id=eid, action=Action.VERIFY, now=NOW.replace(hour=14))
    act(UnitOfWork(engine), event_id=eid, action=Action.ARCHIVE, now=NOW.replace(hour=15))
    with engine.connect() as conn:
        stamped = conn.execute(
            select(Event.accepted_at, Event.dispatched_at, Event.resolved_at, Event.closed_at).where(
                Event.id == eid
            )
        ).one()
    assert [t.hour for t in stamped] == [10, 11, 13, 15]


def test_an_illegal_step_raises_and_changes_nothing(area):
    engine, _ = area
    eid = _report(engine, *grid_centre(0)).id
    with pytest.raises(IllegalTransition, match="不能执行“办结”"):
        _act(engine, eid, Action.RESOLVE)
    with engine.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.REPORTED
        assert conn.execute(select(func.count()).select_from(EventTransition)).scalar_one() == 1


# Where each turning-back step applies: the steps that bring a fresh event there.
BEFORE = {
    Action.REJECT: [],
    Action.RETURN: [Action.ACCEPT, Action.DISPATCH],
    Action.ESCALATE: [Action.ACCEPT],
    Action.REOPEN: [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE],
}


@pytest.mark.parametrize("note", [None, "", "   "], ids=["none", "empty", "blank"])
@pytest.mark.parametrize("action", sorted(NEEDS_REASON), ids=lambda a: a.value)
def test_turning_an_event_back_or_up_without_a_reason_is_refused_and_changes_nothing(area, action, note):
    """退回、退单、上移、重新处置 need a written reason, whoever calls the service (page, simulator, import)."""
    engine, _ = area
    eid = _report(engine, *grid_centre(0)).id
    for step in BEFORE[action]:
        _act(engine, eid, step)
    before = _snapshot(engine, eid)
    with pytest.raises(FieldProblems, match="请填写原因") as refused:
        _act(engine, eid, action, note=note)
    assert set(refused.value.problems) == {"说明"}
    assert _snapshot(engine, eid) == before
    _act(engine, eid, action, note="核实后处理")  # with a reason it goes through
    assert _snapshot(engine, eid)[1:] == (before[1] + 1, before[2] + 1)


def test_an_actor_who_saw_an_older_status_is_told_it_moved_and_nothing_changes(area):
    engine, _ = area
    eid = _report(engine, *grid_centre(0)).id
    _act(engine, eid, Action.ACCEPT, expected=EventStatus.REPORTED)
    before = _snapshot(engine, eid)
    with pytest.raises(ConcurrentChange, match="已受理"):
        _act(engine, eid, Action.REJECT, expected=EventStatus.REPORTED, note="重复")
    assert _snapshot(engine, eid) == before


def test_an_actor_whose_event_is_moved_at_the_last_moment_gets_a_clean_concurrent_change(area):
    """Another actor commits while this one is acting: the loser is told what happened, its unit of work
    rolls back whole (no half-written trail, no session error) and the store goes on.

    PostgreSQL: the other commits just before the loser locks and reads the event (once it holds the row,
    the other waits for it), and the loser refuses on the status it reads. SQLite serialises writers from
    the unit of work's BEGIN, so the other can only commit just before it (as the loser connects): the
    loser then reads the new status and refuses."""
    engine, _ = area
    eid = _report(engine, *grid_centre(0)).id
    postgres = engine.dialect.name == "postgresql"
    fired = []

    def the_other_actor_commits(*args):
        statement = args[2].upper() if postgres else "FROM EVENTS FOR NO KEY UPDATE"
        if not fired and "FROM EVENTS" in statement and "FOR NO KEY UPDATE" in statement:
            fired.append(True)
            with engine.connect() as other:  # a second connection: the other actor's whole transaction
                other.execute(update(Event).where(Event.id == eid).values(status=EventStatus.ACCEPTED))
                other.commit()

    moment = "before_cursor_execute" if postgres else "engine_connect"
    before = _snapshot(engine, eid)
    sa_event.listen(engine, moment, the_other_actor_commits)
    try:
        with pytest.raises(ConcurrentChange, match="事件已被他人处理（当前状态：已受理）"):
            _act(engine, eid, Action.REJECT, note="信息不实", expected=EventStatus.REPORTED)
    finally:
        sa_event.remove(engine, moment, the_other_actor_commits)
    assert fired
    _row, trail, audited = _snapshot(engine, eid)
    assert (trail, audited) == before[1:]
    with engine.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.ACCEPTED
        assert conn.execute(text("SELECT 1")).scalar_one() == 1  # the pool's connections are still sound
    _act(engine, eid, Action.DISPATCH)  # and the store goes on


def test_of_two_actors_at_once_exactly_one_wins_and_the_other_is_told(area):
    engine, _ = area
    for _round in range(5):
        eid = _report(engine, *grid_centre(0)).id
        barrier, outcomes = threading.Barrier(2), []

        def actor(action, note, eid=eid, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            try:
                _act(engine, eid, action, note=note, expected=EventStatus.REPORTED)
                outcomes.append("won")
            except ConcurrentChange:
                outcomes.append("lost")

        threads = [
            threading.Thread(target=actor, args=(Action.ACCEPT, None)),
            threading.Thread(target=actor, args=(Action.REJECT, "重复上报")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["lost", "won"]
        with engine.connect() as conn:
            trail = conn.execute(
                select(func.count()).select_from(EventTransition).where(EventTransition.event_id == eid)
            ).scalar_one()
        assert trail == 2


def test_escalation_moves_the_event_to_the_parent_level(area):
    engine, ids = area
    eid = _report(engine, *grid_centre(0)).id
    _act(engine, eid, Action.ACCEPT)
    _act(engine, eid, Action.ESCALATE, note="村级无法解决")
    with engine.connect() as conn:
        owner, n = conn.execute(select(Event.owner_unit_id, Event.escalations).where(Event.id == eid)).one()
    assert owner == ids["990001001"] and n == 1
