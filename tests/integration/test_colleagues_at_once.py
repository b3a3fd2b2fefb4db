"""Two colleagues changing the same thing at the same moment, outside the event loop (which has its own
test, test_concurrent_actions.py): a settings list (停用 departments), one hazard's 整改, one account.
Each pair is started together and the store is made to pause just before the write, so on PostgreSQL
the two transactions overlap for real (SQLite's unit of work takes turns by itself). Either both
changes are kept, or the second is told the first came first; the trail follows on from one row to
the next, never two rows starting from the same state."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from itertools import pairwise

import pytest
from sqlalchemy import event, insert, select

from db.models import AdminUnit, AuditLog, Department, InspectorGrid, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.safety_code import checklist_for
from domain.vocabulary import Role
from services.accounts import update_account
from services.departments import disabled_ids, set_active
from services.inspections import InvalidInspection, NewHazard, record_inspection, rectify_hazard
from services.locate import forget_index
from tests.builders import make_green_venue, make_square_area

T0 = datetime(2026, 11, 21, 9, 0)
GRID = "990001001001001"


def _person(
    conn, username: str, role: Role, scope: str, grids=(), department: int | None = None
) -> CurrentUser:
    ids = dict(conn.execute(select(AdminUnit.code, AdminUnit.id)).all())
    uid = conn.execute(
        insert(User).returning(User.id),
        {
            "username": username,
            "display_name": username,
            "role": role,
            "scope_unit_id": ids[scope],
            "department_id": department,
            "created_at": T0,
        },
    ).scalar_one()
    for g in grids:
        conn.execute(insert(InspectorGrid), {"user_id": uid, "grid_id": ids[g]})
    return CurrentUser(uid, username, username, role, ids[scope], department)


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
        top = conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990000")).scalar_one()
        departments = [
            conn.execute(
                insert(Department).returning(Department.id),
                {"code": f"D-{k}", "name": f"测试部门{k}", "kind": kind, "unit_id": top},
            ).scalar_one()
            for k, kind in enumerate(("公安", "消防", "城管"))
        ]
        people = {
            "admin_a": _person(conn, "admin_a", Role.ADMIN, "990000"),
            "admin_b": _person(conn, "admin_b", Role.ADMIN, "990000"),
            "insp_a": _person(conn, "insp_a", Role.INSPECTOR, "990001001001", (GRID,)),
            "insp_b": _person(conn, "insp_b", Role.INSPECTOR, "990001001001", (GRID,)),
            "worker": _person(conn, "worker", Role.DEPARTMENT, "990000", department=departments[0]),
        }
        venue = make_green_venue(conn)
    return empty_engine, departments, people, venue


def _at_once(engine, pause_before: str, *calls) -> list[tuple[str, object]]:
    """Run ``calls`` together; every statement starting with ``pause_before`` waits 0.3 s first (the
    window in which a colleague's transaction, begun at the same moment, reads the same state)."""

    def pause(_conn, _cursor, statement, *_):
        if statement.lstrip().upper().startswith(pause_before):
            time.sleep(0.3)

    event.listen(engine, "before_cursor_execute", pause)
    start = threading.Barrier(len(calls))
    out: list[tuple[str, object]] = [("", None)] * len(calls)

    def run(i: int, call) -> None:
        start.wait()
        try:
            out[i] = ("ok", call())
        except Exception as exc:
            out[i] = ("refused", exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        event.remove(engine, "before_cursor_execute", pause)
    return out


def _trail(engine, action: str) -> list[AuditLog]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def test_two_departments_disabled_at_once_are_both_disabled(area):
    """The 停用 list is one settings row: the second read the list before the first wrote it and wrote
    over it (one department lost), or both inserted the first row (a raw unique-key error)."""
    engine, (d1, d2, _), people, _ = area

    def switch(who: str, department: int, active: bool):
        return lambda: set_active(
            UnitOfWork(engine), actor=people[who], department_id=department, active=active, now=T0
        )

    # first with no 停用 row yet (both would insert it), then with the row there, enabling both again
    for active, left in ((False, {d1, d2}), (True, set())):
        told = _at_once(
            engine, "UPDATE SETTINGS", switch("admin_a", d1, active), switch("admin_b", d2, active)
        )
        assert [t for t, _ in told] == ["ok", "ok"], told
        with engine.connect() as conn:
            assert disabled_ids(conn) == left


def test_one_hazard_confirmed_fixed_twice_at_once_is_fixed_once_and_the_second_is_told(area):
    engine, _, people, venue = area
    found = record_inspection(
        UnitOfWork(engine),
        user=people["insp_a"],
        venue_id=venue,
        now=T0,
        checklist={i.key: "fail" for i in checklist_for("street_shop")},
        hazards=[NewHazard("major", "消防通道堵塞", date(2026, 11, 23))],
    )
    (hazard,) = found.hazard_ids

    def fix(who: str):
        return rectify_hazard(UnitOfWork(engine), hazard_id=hazard, on=T0.date(), now=T0, user=people[who])

    told = _at_once(engine, "UPDATE HAZARDS", lambda: fix("insp_a"), lambda: fix("insp_b"))
    assert sorted(t for t, _ in told) == ["ok", "refused"], told
    refused = next(e for t, e in told if t == "refused")
    assert isinstance(refused, InvalidInspection) and refused.problems == {"隐患": "该隐患已整改"}
    assert len(_trail(engine, "hazard.rectify")) == 1


def test_one_account_changed_by_two_administrators_at_once_keeps_a_trail_that_follows_on(area):
    """Both trail rows said the department was the original one (1 → 5 and 1 → 6)."""
    engine, (_, d1, d2), people, _ = area
    worker = people["worker"]

    def move(who: str, department: int):
        return update_account(
            UnitOfWork(engine),
            actor=people[who],
            user_id=worker.id,
            role=Role.DEPARTMENT,
            scope_unit_id=worker.scope_unit_id,
            department_id=department,
            now=T0,
        )

    told = _at_once(engine, "UPDATE USERS", lambda: move("admin_a", d1), lambda: move("admin_b", d2))
    assert [t for t, _ in told] == ["ok", "ok"], told
    first, second = ((json.loads(r.before), json.loads(r.after)) for r in _trail(engine, "accounts.update"))
    assert second[0]["department_id"] == first[1]["department_id"]
    with engine.connect() as conn:
        final = conn.execute(select(User.department_id).where(User.id == worker.id)).scalar_one()
    assert final == second[1]["department_id"]


def _flagged(engine, duplicate_of: int | None, title: str) -> int:
    from domain.vocabulary import EventCategory, EventSource
    from services.events import report_event
    from tests.builders import grid_centre

    lon, lat = grid_centre(0)
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title=title,
        lon=lon,
        lat=lat,
        now=T0,
        duplicate_of_id=duplicate_of,
    ).id


def _events(engine, *ids: int) -> list:
    from db.models import Event

    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(Event.__table__).where(Event.id.in_(ids)))}
    return [rows[i] for i in ids]


def test_a_merge_into_an_original_a_colleague_rejects_at_once_is_refused_or_counted_before(area):
    """合并 C into B while another leader 退回s B: C never ends merged into a closed event."""
    from domain.event_flow import Action
    from domain.vocabulary import EventStatus
    from services.events import act
    from services.intake import merge_flagged

    engine, _, _, _ = area
    with engine.begin() as conn:
        leader = _person(conn, "leader", Role.TOWNSHIP_LEADER, "990000")
    b = _flagged(engine, None, "原事件B")
    c = _flagged(engine, b, "重复C")
    told = _at_once(
        engine,
        "UPDATE EVENTS",
        lambda: merge_flagged(UnitOfWork(engine), leader, event_id=c, now=T0, expected=EventStatus.REPORTED),
        lambda: act(UnitOfWork(engine), event_id=b, action=Action.REJECT, now=T0, note="无效上报"),
    )
    eb, ec = _events(engine, b, c)
    assert eb.status == EventStatus.REJECTED
    if ec.merged_into_id is not None:  # the merge came first: B counted C's reporter before it closed
        assert [t for t, _ in told] == ["ok", "ok"] and eb.reporter_count == 2
    else:
        assert told[0][0] == "refused" and "已办结或已被合并" in str(told[0][1]), told
        assert ec.status == EventStatus.REPORTED and eb.reporter_count == 1


def test_a_chain_merged_at_once_counts_every_reporter_on_the_last_original(area):
    """B flagged as A's duplicate, C as B's; 合并 C→B and B→A at the same moment: A counts all three
    reporters, or the second merge is told where to merge instead; never C→B→A with A counting two."""
    from domain.vocabulary import EventStatus
    from services.intake import merge_flagged

    engine, _, _, _ = area
    with engine.begin() as conn:
        one = _person(conn, "leader_1", Role.TOWNSHIP_LEADER, "990000")
        two = _person(conn, "leader_2", Role.TOWNSHIP_LEADER, "990000")
    a = _flagged(engine, None, "原事件A")
    b = _flagged(engine, a, "重复B")
    c = _flagged(engine, b, "重复C")
    told = _at_once(
        engine,
        "UPDATE EVENTS",
        lambda: merge_flagged(UnitOfWork(engine), one, event_id=c, now=T0, expected=EventStatus.REPORTED),
        lambda: merge_flagged(UnitOfWork(engine), two, event_id=b, now=T0, expected=EventStatus.REPORTED),
    )
    ea, eb, ec = _events(engine, a, b, c)
    assert eb.merged_into_id == a, told
    if ec.merged_into_id is None:
        assert told[0][0] == "refused" and f"请改为合并至事件 #{a}" in str(told[0][1]), told
        assert ea.reporter_count == 2
        # told where to go, the next 合并 of C follows B to A by itself
        assert merge_flagged(UnitOfWork(engine), one, event_id=c, now=T0) == a
        (ea,) = _events(engine, a)
    assert ea.reporter_count == 3, told


def test_a_dispatch_while_a_duplicate_is_merged_into_the_event_keeps_a_trail_that_follows_on(area):
    """合并 C into B while another leader 派单s B: both are kept, and the 派单's trail row starts from the
    state the 合并 left (two reporters), not from the one it read before the merge committed (its row
    said the 派单 had raised the count from one to two, and did not follow on from the merge's)."""
    from db.models import Event
    from domain.event_flow import Action
    from domain.vocabulary import EventStatus
    from services.events import act
    from services.intake import merge_flagged

    engine, (department, _, _), _, _ = area
    with engine.begin() as conn:
        leader = _person(conn, "leader", Role.TOWNSHIP_LEADER, "990000")
    b = _flagged(engine, None, "原事件B")
    c = _flagged(engine, b, "重复C")
    act(UnitOfWork(engine), event_id=b, action=Action.ACCEPT, now=T0)
    with engine.connect() as conn:
        due = conn.execute(select(Event.due_at).where(Event.id == b)).scalar_one()
    told = _at_once(
        engine,
        "UPDATE EVENTS",
        lambda: merge_flagged(UnitOfWork(engine), leader, event_id=c, now=T0, expected=EventStatus.REPORTED),
        lambda: act(
            UnitOfWork(engine),
            event_id=b,
            action=Action.DISPATCH,
            now=T0,
            department_id=department,
            expected=EventStatus.ACCEPTED,
            expected_due_at=due,
        ),
    )
    assert [t for t, _ in told] == ["ok", "ok"], told
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                select(AuditLog)
                .where(
                    AuditLog.entity == "events", AuditLog.entity_id == b, AuditLog.action != "event.report"
                )
                .order_by(AuditLog.id)
            )
        )
    assert [r.action for r in rows][:1] == ["event.accept"] and len(rows) == 3
    for first, second in pairwise(rows):
        assert json.loads(second.before) == json.loads(first.after), (first.action, second.action)
    (eb,) = _events(engine, b)
    assert eb.reporter_count == 2 and json.loads(rows[-1].after)["reporter_count"] == 2
