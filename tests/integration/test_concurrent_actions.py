"""Ten people acting on one event at once, round after round: of the actions that change it, one wins each
round; every loser is told in the domain's Chinese (ConcurrentChange, IllegalTransition, the top level),
never a raw store error; the event, its trail and the audit rows replay to the same state.

``CONCURRENT_ROUNDS`` sets the rounds (default 20, a few seconds); the long run is
``CONCURRENT_ROUNDS=100 pytest tests/integration/test_concurrent_actions.py``.
"""

from __future__ import annotations

import os
import random
import re
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from db.models import AdminUnit, AuditLog, Department, Event, EventTransition, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.event_flow import NOTE_ONLY, Action, IllegalTransition, replay
from domain.vocabulary import EventCategory, EventSource, EventStatus, Rating, Role
from services.events import ConcurrentChange, act, act_as, report_event
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area

THREADS = 10
ROUNDS = int(os.environ.get("CONCURRENT_ROUNDS", "20"))
T0 = datetime(2026, 11, 21, 9, 0)
#: The actions people take on an event in the handling loop (archiving would end the rounds).
POOL = [
    Action.RETURN,
    Action.START,
    Action.COMMENT,
    Action.DISPATCH,
    Action.RESOLVE,
    Action.REOPEN,
    Action.VERIFY,
    Action.RATE,
    Action.ESCALATE,
]
#: What a loser may be told: the domain's own Chinese messages.
LOSER_MESSAGES = [
    re.compile(r"^事件已被他人处理（当前状态：[^）]+），请查看最新状态后重新办理$"),  # ConcurrentChange
    re.compile(r"^事件当前状态为“[^”]+”，不能执行“[^”]+”$"),  # IllegalTransition
    re.compile(r"^已是最高层级，无法上移$"),  # 上移 from the city
]


@pytest.fixture
def store(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        admin = conn.execute(
            insert(User).returning(User.id),
            {
                "username": "city_admin",
                "display_name": "市管理员",
                "role": Role.ADMIN,
                "scope_unit_id": ids["990000"],
                "created_at": T0,
            },
        ).scalar_one()
        department = conn.execute(select(Department.id)).scalar_one()
    user = CurrentUser(admin, "city_admin", "市管理员", Role.ADMIN, ids["990000"])
    return empty_engine, user, department


def _step(action: Action, department: int) -> dict:
    """What a person enters with ``action``: a reason where one is needed, a department, a rating."""
    extra: dict = {}
    if action in (Action.RETURN, Action.REOPEN, Action.ESCALATE, Action.COMMENT):
        extra["note"] = f"{action.value} 的说明"
    if action is Action.DISPATCH:
        extra["department_id"] = department
    if action is Action.RATE:
        extra["rating"] = Rating.SATISFIED
    return extra


def _state(engine, eid) -> tuple[EventStatus, int, datetime | None]:
    """What the event page shows a person before they act: the status, the owning level, the deadline."""
    with engine.connect() as conn:
        status, owner, due = conn.execute(
            select(Event.status, Event.owner_unit_id, Event.due_at).where(Event.id == eid)
        ).one()
    return EventStatus(status), owner, due


def test_ten_people_acting_on_one_event_round_after_round_one_wins_and_every_loser_is_told(store):
    engine, admin, department = store
    eid = report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="占道经营",
        lon=grid_centre(0)[0],
        lat=grid_centre(0)[1],
        now=T0,
    ).id
    for action in (Action.ACCEPT, Action.DISPATCH):
        act(UnitOfWork(engine), event_id=eid, action=action, now=T0, department_id=department)
    pick = random.Random(12)
    tally: Counter[str] = Counter()
    changes = 0
    for r in range(ROUNDS):
        before = _state(engine, eid)
        seen, _owner, due = before
        barrier, outcomes = threading.Barrier(THREADS), []
        choices = [pick.choice(POOL) for _ in range(THREADS)]

        def person(k, action, seen=seen, due=due, r=r, barrier=barrier, outcomes=outcomes):
            # what the page passes: the status and the deadline it showed, and the clock's own moment
            now = T0 + timedelta(minutes=r + 1, microseconds=k)
            step = _step(action, department) | {"event_id": eid, "action": action, "now": now}
            step |= {"expected": seen, "expected_due_at": due}
            barrier.wait()
            try:
                if k % 2:  # half of them through the page's door (role and scope checked), half as the system
                    act_as(UnitOfWork(engine), admin, None, **step)
                else:
                    act(UnitOfWork(engine), **step)
                outcomes.append(("won", action, ""))
            except (ConcurrentChange, IllegalTransition, ValueError) as exc:
                outcomes.append((type(exc).__name__, action, str(exc)))
            except Exception as exc:  # a raw store or session error: the failure this test looks for
                outcomes.append(("raw", action, repr(exc)))

        threads = [threading.Thread(target=person, args=(k, a)) for k, a in enumerate(choices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(outcomes) == THREADS
        raw = [o for o in outcomes if o[0] == "raw"]
        assert raw == [], raw
        for kind, _action, message in outcomes:
            tally[kind] += 1
            if kind != "won":
                assert any(p.match(message) for p in LOSER_MESSAGES), message
        movers = [a for kind, a, _ in outcomes if kind == "won" and a not in NOTE_ONLY]
        assert len(movers) <= 1, (r, seen, outcomes)
        changes += len(movers)
        if movers:
            assert _state(engine, eid)[:2] != before[:2]
    # The event, its trail and its audit rows tell one story.
    with engine.connect() as conn:
        trail = conn.execute(
            select(EventTransition.seq, EventTransition.action, EventTransition.to_status)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq)
        ).all()
        audited = conn.execute(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.entity == "events", AuditLog.entity_id == eid)
        ).scalar_one()
        escalations, unit_level = conn.execute(
            select(Event.escalations, AdminUnit.level)
            .join(AdminUnit, AdminUnit.id == Event.owner_unit_id)
            .where(Event.id == eid)
        ).one()
    assert [s for s, _, _ in trail] == list(range(1, len(trail) + 1))
    assert replay(Action(a) for _, a, _ in trail) == _state(engine, eid)[0] == trail[-1].to_status
    assert audited == len(trail)
    assert escalations == sum(1 for _, a, _ in trail if a == Action.ESCALATE)
    assert len(trail) == 3 + changes + tally["won"] - changes  # report, accept, dispatch, then each win
    assert tally["won"] >= ROUNDS // 2 and tally["ConcurrentChange"] > 0, tally
    assert unit_level is not None


def test_two_people_sending_the_same_event_up_at_once_move_it_one_level(store):
    """上移 leaves the status 已受理 as it was: the page passes the deadline it showed too (every step but a
    处置意见 sets a new one), so the second 上移 of what the first already moved is refused."""
    engine, admin, _ = store
    for round_ in range(5):
        eid = report_event(
            UnitOfWork(engine),
            source=EventSource.CITIZEN,
            category=EventCategory.URBAN,
            title=f"上移{round_}",
            lon=grid_centre(1)[0],
            lat=grid_centre(1)[1],
            now=T0,
        ).id
        act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=T0)
        seen, _owner, due = _state(engine, eid)
        barrier, outcomes = threading.Barrier(2), []

        def up(k, barrier=barrier, outcomes=outcomes, eid=eid, seen=seen, due=due):
            barrier.wait()
            try:
                act_as(
                    UnitOfWork(engine),
                    admin,
                    None,
                    event_id=eid,
                    action=Action.ESCALATE,
                    now=T0 + timedelta(minutes=1, microseconds=k),
                    note="村级无法解决",
                    expected=seen,
                    expected_due_at=due,
                )
                outcomes.append("won")
            except ConcurrentChange as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=up, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["won", "事件已被他人处理（当前状态：已受理），请查看最新状态后重新办理"]
        with engine.connect() as conn:
            assert conn.execute(select(Event.escalations).where(Event.id == eid)).scalar_one() == 1
