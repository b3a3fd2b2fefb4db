"""Dispatch within scope: the 派往部门 list serves the event's place (its own area first, then upward, never a
sibling township's department), and every action the form offers is one the service accepts for that user."""

from datetime import datetime

import pytest
import shapely
from sqlalchemy import delete, insert, select, update

from db.models import AdminUnit, Department, Event, EventCooperator, InspectorGrid, User
from domain.access import CurrentUser
from domain.event_flow import Action, IllegalTransition
from domain.todo import next_step
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource, EventStatus, Rating, Role
from services.access import OutOfScope, user_scope
from services.event_views import departments, desk_of, event_detail, my_todo, offered_actions
from services.events import ConcurrentChange, act_as, report_event
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area
from tests.rollback import rolled_back

NOW = datetime(2026, 11, 21, 9, 30)


@pytest.fixture
def area(empty_engine):
    """The square area with a sibling township (双塔街道) beside 方城街道, each with a 综治中心, and the
    county's and the city's 公安."""
    from db.uow import UnitOfWork

    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        sibling = conn.execute(
            insert(AdminUnit).returning(AdminUnit.id),
            {
                "code": "990001002",
                "name": "双塔街道",
                "level": "township",
                "parent_id": ids["990001"],
                "kind": "街道",
                "population": 100,
                "area_km2": 1.0,
                "centroid_lon": 120.0,
                "centroid_lat": 29.0,
                "geometry_wkb": shapely.box(121.0, 30.0, 121.01, 30.01).wkb,
            },
        ).scalar_one()
        depts = {"城管": conn.execute(select(Department.id).where(Department.code == "D-CG")).scalar_one()}
        for code, name, kind, unit in (
            ("D-ZZ", "方城街道综治中心", "综治", ids["990001001"]),
            ("D-ST", "双塔街道综治中心", "综治", sibling),
            ("D-QGA", "方城区公安分局", "公安", ids["990001"]),
            ("D-SGA", "方城市公安局", "公安", ids["990000"]),
        ):
            depts[name] = conn.execute(
                insert(Department).returning(Department.id),
                {"code": code, "name": name, "kind": kind, "unit_id": unit},
            ).scalar_one()
    eid = report_event(
        UnitOfWork(empty_engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.DISPUTE,
        title="占道经营",
        lon=grid_centre(1)[0],
        lat=grid_centre(1)[1],
        now=NOW,
    ).id
    return empty_engine, ids, depts, eid


def test_the_dispatch_list_holds_the_events_own_township_first_then_upward_and_no_sibling_township(area):
    engine, _, _, eid = area
    with engine.connect() as conn:
        grid = conn.execute(select(Event.grid_id).where(Event.id == eid)).scalar_one()
        names = [n for _, n in departments(conn, grid)]
        everything = [n for _, n in departments(conn)]
    assert names == ["方城街道综合执法中队", "方城街道综治中心", "方城区公安分局", "方城市公安局"]
    assert "双塔街道综治中心" not in names
    assert "双塔街道综治中心" in everything  # the unfiltered list (admin pages) still has every department


def _users(conn, ids, depts) -> dict[str, CurrentUser]:
    """One user per role, plus the handlers of a cooperating (协办) and of an uninvolved department."""
    scopes = {
        "admin": (Role.ADMIN, ids["990000"], None),
        "command_center": (Role.COMMAND_CENTER, ids["990000"], None),
        "township_leader": (Role.TOWNSHIP_LEADER, ids["990001001"], None),
        "department": (Role.DEPARTMENT, ids["990001"], depts["城管"]),
        "cooperating_department": (Role.DEPARTMENT, ids["990001"], depts["方城区公安分局"]),
        "other_department": (Role.DEPARTMENT, ids["990001"], depts["方城街道综治中心"]),
        "inspector": (Role.INSPECTOR, ids["990001001"], None),
    }
    out = {}
    for name, (role, unit, dept) in scopes.items():
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": f"u_{name}",
                "display_name": role.label,
                "role": role,
                "scope_unit_id": unit,
                "department_id": dept,
                "created_at": NOW,
            },
        ).scalar_one()
        out[name] = CurrentUser(uid, f"u_{name}", role.label, role, unit, dept)
    return out


def _accepted_by(engine, user, scope, row, action, depts) -> bool:
    with rolled_back(engine) as (uow, _):
        try:
            act_as(
                uow,
                user,
                scope,
                event_id=row["id"],
                action=action,
                now=NOW,
                note="测试说明",
                department_id=depts["城管"],
                rating=Rating.SATISFIED,
                expected=EventStatus(row["status"]),
                expected_due_at=row["due_at"],
            )
        except (IllegalTransition, ConcurrentChange, OutOfScope, ValueError, LookupError):
            return False
    return True


@pytest.mark.parametrize("led", [True, False], ids=["led_by_a_department", "handed_to_the_village"])
@pytest.mark.parametrize("status", list(EventStatus))
def test_every_action_offered_to_each_role_is_one_the_service_accepts_and_no_other(area, status, led):
    """The page offers what :func:`offered_actions` says on an event it shows (:func:`event_detail`; none on
    one it does not); the service accepts exactly that set. And what 我的待办 says waits on a user is one of
    them: a to-do row is always workable. Past 派单 the event is led by 城管 (with a 协办) or handed to the
    village with no lead department: the grid worker handles only the latter."""
    engine, ids, depts, eid = area
    with engine.begin() as conn:
        users = _users(conn, ids, depts)
        dispatched = status not in (EventStatus.REPORTED, EventStatus.ACCEPTED)
        lead = depts["城管"] if dispatched and led else None
        conn.execute(update(Event).where(Event.id == eid).values(status=status, lead_department_id=lead))
        conn.execute(delete(EventCooperator).where(EventCooperator.event_id == eid))
        if lead is not None:
            conn.execute(insert(EventCooperator).values(event_id=eid, department_id=depts["方城区公安分局"]))
        grid = conn.execute(select(Event.grid_id).where(Event.id == eid)).scalar_one()
        conn.execute(insert(InspectorGrid).values(user_id=users["inspector"].id, grid_id=grid))
    with engine.connect() as conn:
        row = dict(conn.execute(select(Event.__table__).where(Event.id == eid)).mappings().one())
    mismatches, todo_not_workable = {}, {}
    for name, user in users.items():
        with engine.connect() as conn:
            detail = event_detail(conn, user_scope(conn, user), eid, user)
            step = next_step(desk_of(conn, user), row)
        offered = set(offered_actions(user, detail.event)) if detail is not None else set()
        accepted = {a for a in Action if _accepted_by(engine, user, None, row, a, depts)}
        if offered != accepted:
            mismatches[name] = (sorted(a.value for a in offered), sorted(a.value for a in accepted))
        if step is not None and step not in accepted:
            todo_not_workable[name] = step.value
        if name == "inspector":
            handling = {a for a in accepted if a in (Action.START, Action.RETURN, Action.RESOLVE)}
    assert mismatches == {}
    assert todo_not_workable == {}
    # The grid worker's handling: none on an event a department leads, the loop's own on a village's.
    expected = {
        EventStatus.DISPATCHED: {Action.START, Action.RETURN},
        EventStatus.IN_PROGRESS: {Action.RESOLVE},
    }.get(status, set())
    assert handling == (set() if led else expected)


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES | {EventStatus.RESOLVED}))
def test_after_escalation_to_the_county_the_township_leader_follows_and_the_county_moves_it(area, status):
    """上移 gives the event to the level above: the township leader below still sees it and writes opinions,
    but 受理/派单/核查/上移 are the county's (or the city's); the page offers exactly what the service takes."""
    engine, ids, depts, eid = area
    with engine.begin() as conn:
        users = _users(conn, ids, depts)
        lead = depts["城管"] if status in (EventStatus.DISPATCHED, EventStatus.IN_PROGRESS) else None
        conn.execute(
            update(Event)
            .where(Event.id == eid)
            .values(status=status, lead_department_id=lead, owner_unit_id=ids["990001"], escalations=1)
        )
    with engine.connect() as conn:
        row = dict(conn.execute(select(Event.__table__).where(Event.id == eid)).mappings().one())
    seen = {}
    for name in ("township_leader", "command_center"):
        user = users[name]
        with engine.connect() as conn:
            detail = event_detail(conn, user_scope(conn, user), eid, user)
        assert detail is not None  # both still see it
        offered = set(offered_actions(user, detail.event))
        accepted = {a for a in Action if _accepted_by(engine, user, None, row, a, depts)}
        assert offered == accepted, name
        seen[name] = offered
    assert seen["township_leader"] <= {Action.COMMENT}
    assert seen["command_center"] - {Action.COMMENT}  # the level above moves it
    if status in (EventStatus.DISPATCHED, EventStatus.IN_PROGRESS):
        assert Action.COMMENT in seen["township_leader"]
    with rolled_back(engine) as (uow, _), pytest.raises(OutOfScope, match="已上移至方城区办理"):
        act_as(
            uow,
            users["township_leader"],
            None,
            event_id=eid,
            action=next(iter(seen["command_center"] - {Action.COMMENT})),
            now=NOW,
            note="测试说明",
            department_id=depts["城管"],
            rating=Rating.SATISFIED,
        )


def test_the_todo_of_each_role_on_a_led_and_cooperated_event(area):
    """Who is waited on, state by state: the leader for 受理/派单/核查, the lead department for 处置, never the
    cooperating one; the grid worker for 受理 of a report in their grid."""
    engine, ids, depts, eid = area
    with engine.begin() as conn:
        users = _users(conn, ids, depts)
        grid = conn.execute(select(Event.grid_id).where(Event.id == eid)).scalar_one()
        conn.execute(insert(InspectorGrid).values(user_id=users["inspector"].id, grid_id=grid))
    waits: dict[EventStatus, set[str]] = {}
    for status in EventStatus:
        with engine.begin() as conn:
            lead = depts["城管"] if status not in (EventStatus.REPORTED, EventStatus.ACCEPTED) else None
            conn.execute(update(Event).where(Event.id == eid).values(status=status, lead_department_id=lead))
        with engine.connect() as conn:
            waits[status] = {
                name
                for name, user in users.items()
                if not my_todo(conn, user, user_scope(conn, user), NOW).empty
            }
    assert waits == {
        EventStatus.REPORTED: {"township_leader", "inspector"},
        EventStatus.ACCEPTED: {"township_leader"},
        EventStatus.RETURNED: {"township_leader"},
        EventStatus.DISPATCHED: {"department"},
        EventStatus.IN_PROGRESS: {"department"},
        EventStatus.RESOLVED: {"township_leader"},
        EventStatus.VERIFIED: set(),
        EventStatus.RATED: set(),
        EventStatus.ARCHIVED: set(),
        EventStatus.REJECTED: set(),
    }
