"""Reporting and moving events through the store: one trail row per change, nothing on refusal."""

from datetime import datetime

import pytest
from sqlalchemy import func, select

from db.engine import session_factory
from db.models import Event, EventTransition
from domain.event_flow import Action, IllegalTransition, replay
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


def _report(session, lon, lat):
    return report_event(
        session, source=EventSource.CITIZEN, category=EventCategory.URBAN, title="占道堆物",
        lon=lon, lat=lat, now=NOW,
    )


def test_a_report_lands_in_the_grid_under_its_point_owned_by_that_village(area):
    engine, ids = area
    with session_factory(engine).begin() as s:
        event = _report(s, *grid_centre(2))
        assert event.grid_id == ids["990001001002001"]
        assert event.owner_unit_id == ids["990001001002"]
        assert event.status is EventStatus.REPORTED


def test_a_report_outside_every_grid_is_refused_and_writes_nothing(area):
    engine, _ = area
    with pytest.raises(OutsideArea, match="不在任何网格内"), session_factory(engine).begin() as s:
        _report(s, 118.70, 28.905)  # 0.1° west of the area: outside, not snapped to the nearest grid
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar_one() == 0


def test_each_step_writes_one_trail_row_and_the_trail_replays_to_the_status(area):
    engine, _ids = area
    sessions = session_factory(engine)
    with sessions.begin() as s:
        eid = _report(s, *grid_centre(0)).id
    for action in [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE, Action.VERIFY]:
        with sessions.begin() as s:
            act(s, event_id=eid, action=action, now=NOW)
    with sessions.begin() as s:
        assert act(s, event_id=eid, action=Action.RATE, now=NOW, rating=Rating.SATISFIED) is EventStatus.RATED
    with engine.connect() as conn:
        trail = conn.execute(
            select(EventTransition.seq, EventTransition.action).where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq)
        ).all()
        status = conn.execute(select(Event.status).where(Event.id == eid)).scalar_one()
    assert [seq for seq, _ in trail] == list(range(1, 8))
    assert replay(Action(a) for _, a in trail) == status == EventStatus.RATED


def test_an_illegal_step_raises_and_changes_nothing(area):
    engine, _ = area
    sessions = session_factory(engine)
    with sessions.begin() as s:
        eid = _report(s, *grid_centre(0)).id
    with pytest.raises(IllegalTransition, match="不能执行“办结”"), sessions.begin() as s:
        act(s, event_id=eid, action=Action.RESOLVE, now=NOW)
    with engine.connect() as conn:
        assert conn.execute(select(Event.status).where(Event.id == eid)).scalar_one() == EventStatus.REPORTED
        assert conn.execute(select(func.count()).select_from(EventTransition)).scalar_one() == 1


def test_of_two_actors_on_the_same_event_only_the_first_wins(area):
    engine, _ = area
    sessions = session_factory(engine)
    with sessions.begin() as s:
        eid = _report(s, *grid_centre(0)).id
    first, second = sessions(), sessions()
    seen = first.get(Event, eid).status, second.get(Event, eid).status  # both saw "reported"
    act(first, event_id=eid, action=Action.ACCEPT, now=NOW, expected=seen[0])
    first.commit()
    with pytest.raises(ConcurrentChange, match="已受理"):
        act(second, event_id=eid, action=Action.REJECT, now=NOW, expected=seen[1])
    second.close()
    first.close()


def test_escalation_moves_the_event_to_the_parent_level(area):
    engine, ids = area
    sessions = session_factory(engine)
    with sessions.begin() as s:
        eid = _report(s, *grid_centre(0)).id
        act(s, event_id=eid, action=Action.ACCEPT, now=NOW)
        act(s, event_id=eid, action=Action.ESCALATE, now=NOW, note="村级无法解决")
    with engine.connect() as conn:
        owner, n = conn.execute(select(Event.owner_unit_id, Event.escalations).where(Event.id == eid)).one()
    assert owner == ids["990001001"] and n == 1
