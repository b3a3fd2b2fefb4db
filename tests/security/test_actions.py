"""Every action a page offers, done below the page (the service called as each demo role): the role that may
do it can, the others are refused with a logged denial, and a refused call changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from db.engine import make_engine
from db.models import Event, Venue
from db.uow import UnitOfWork
from domain.access import HANDLING, may_act
from domain.event_flow import Action
from domain.planner import Proposal, ProposalScope
from domain.risk import Thresholds
from domain.vocabulary import EventCategory, EventSource, EventStatus, Rating, Role
from services import clock
from services.access import OutOfScope
from services.event_import import import_events
from services.event_rules import load_rules, save_rules
from services.events import SYSTEM, Actor, act, act_as, report_event
from services.inspections import record_inspection, routine_checklist
from services.planning_settings import (
    InvalidSetting,
    accept_proposals,
    add_campaign,
    clear_reassignments,
    load_reassignments,
    reassign_key,
    remove_campaign,
)
from services.risk import save_thresholds
from services.venue_import import ImportRejected, import_venues
from tests.rollback import RolledBack, rolled_back
from tests.security.conftest import DEMO, denied_pairs

LEADERS = {"demo_admin", "demo_city", "demo_county", "demo_township"}
HANDLERS = {"demo_department", "demo_inspector", "demo_admin"}
# From issue #6's role descriptions: leaders accept, dispatch, verify and close; whoever handles (a department,
# a grid worker) starts, returns and resolves; an inspector may also accept what they find; a department may
# escalate what it cannot solve.
WHO_MAY = {
    Action.ACCEPT: LEADERS | {"demo_inspector"},
    Action.REJECT: LEADERS,
    Action.DISPATCH: LEADERS,
    Action.RETURN: HANDLERS,
    Action.START: HANDLERS,
    Action.RESOLVE: HANDLERS,
    Action.VERIFY: LEADERS,
    Action.REOPEN: LEADERS,
    Action.RATE: LEADERS,
    Action.ARCHIVE: LEADERS,
    Action.ESCALATE: LEADERS | {"demo_department"},
    Action.COMMENT: set(DEMO),  # 处置意见: anyone who sees the event while it is handled
}
# The system's steps that bring a fresh event to where the action applies (dispatched to the demo department).
BEFORE = {
    Action.ACCEPT: [],
    Action.REJECT: [],
    Action.DISPATCH: [Action.ACCEPT],
    Action.RETURN: [Action.ACCEPT, Action.DISPATCH],
    Action.START: [Action.ACCEPT, Action.DISPATCH],
    Action.ESCALATE: [Action.ACCEPT, Action.DISPATCH],
    Action.COMMENT: [Action.ACCEPT, Action.DISPATCH],
    Action.RESOLVE: [Action.ACCEPT, Action.DISPATCH, Action.START],
    Action.VERIFY: [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE],
    Action.REOPEN: [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE],
    Action.RATE: [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE, Action.VERIFY],
    Action.ARCHIVE: [Action.ACCEPT, Action.DISPATCH, Action.START, Action.RESOLVE, Action.VERIFY],
}


@pytest.fixture(scope="module")
def engine(spread):
    e = make_engine(spread.url)
    yield e
    e.dispose()


def _centre(engine, unit_id):
    from db.models import AdminUnit

    with engine.connect() as conn:
        return conn.execute(
            select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == unit_id)
        ).one()


def _fresh_event(engine, spread, users, steps, grid="covered") -> int:
    lon, lat = _centre(engine, spread.grids[grid])
    now = clock.now()
    eid = report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.URBAN,
        title="动作测试",
        lon=lon,
        lat=lat,
        now=now,
    ).id
    for step in steps:
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=step,
            now=now,
            actor=SYSTEM,
            department_id=users["demo_department"].department_id if step is Action.DISPATCH else None,
        )
    return eid


def _due(engine, eid):
    with engine.connect() as conn:
        return conn.execute(select(Event.due_at).where(Event.id == eid)).scalar_one()


def _last_step(engine, eid):
    """The last trail row's action and note, and the event's deadline now."""
    from db.models import EventTransition

    with engine.connect() as conn:
        action, note = conn.execute(
            select(EventTransition.action, EventTransition.note)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq.desc())
            .limit(1)
        ).one()
    return action, note, _due(engine, eid)


def _status(engine, eid):
    with engine.connect() as conn:
        return EventStatus(conn.execute(select(Event.status).where(Event.id == eid)).scalar_one())


def test_the_written_action_rights_are_what_domain_access_grants(spread_users):
    for action, allowed in WHO_MAY.items():
        assert {n for n in DEMO if may_act(spread_users[n], action)} == allowed, action


@pytest.mark.parametrize("action", list(WHO_MAY), ids=lambda a: a.value)
@pytest.mark.parametrize("username", DEMO)
def test_event_action_as_each_role(engine, spread, spread_users, caplog, username, action):
    user = spread_users[username]
    eid = _fresh_event(engine, spread, spread_users, BEFORE[action])
    before = _status(engine, eid)
    due_before = _due(engine, eid)
    kwargs = {
        Action.DISPATCH: {"department_id": spread_users["demo_department"].department_id},
        Action.RATE: {"rating": Rating.SATISFIED},
    }.get(action, {})
    # In every user's scope (the demo township), and from DISPATCH on led by the demo department: so the
    # handling (开始处置 / 退单 / 办结) is that department's, never the grid worker's (domain.access.HANDLING).
    may = (
        username in WHO_MAY[action]
        and (username != "demo_department" or bool(BEFORE[action]))
        and not (username == "demo_inspector" and action in HANDLING)
    )
    try:
        act_as(
            UnitOfWork(engine),
            user,
            None,
            event_id=eid,
            action=action,
            now=clock.now(),
            note="测试",
            **kwargs,
        )
    except OutOfScope:
        assert not may, f"{username} was refused {action.value}"
        assert _status(engine, eid) is before
        assert [p[:2] for p in denied_pairs(caplog)] == [(user.id, user.role.value)]
        assert all(p[3] == eid for p in denied_pairs(caplog))
    else:
        assert may, f"{username} could {action.value}"
        assert _status(engine, eid) is not before or action in (Action.ESCALATE, Action.COMMENT)
        assert not denied_pairs(caplog)
        if action is Action.COMMENT:  # written down, nothing moved
            assert _last_step(engine, eid) == ("comment", "测试", due_before)
            assert _status(engine, eid) is before


# Which planted event each demo account may see (the tree, written out by hand).
VISIBLE = {
    "demo_admin": {"sibling", "far", "uncovered", "covered", "sibling_dept", "far_dept", "cooperating"},
    "demo_city": {"sibling", "far", "uncovered", "covered", "sibling_dept", "far_dept", "cooperating"},
    "demo_county": {"sibling", "uncovered", "covered", "sibling_dept", "cooperating"},
    "demo_township": {"uncovered", "covered", "cooperating"},
    "demo_department": {"sibling_dept", "cooperating"},
    "demo_inspector": {"uncovered", "covered", "cooperating"},
}


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["sibling", "far", "uncovered", "covered", "sibling_dept", "far_dept"])
def test_acting_on_a_planted_event_needs_it_in_scope(engine, spread, spread_users, caplog, username, label):
    """ACCEPT on the reported ones, START on the dispatched ones; rolled back either way."""
    user = spread_users[username]
    eid = spread.events[label]
    action = Action.START if label.endswith("_dept") else Action.ACCEPT
    may = label in VISIBLE[username] and username in WHO_MAY[action]
    with rolled_back(engine) as (uow, _):
        try:
            act_as(uow, user, None, event_id=eid, action=action, now=clock.now())
        except OutOfScope:
            assert not may
            assert denied_pairs(caplog)[-1][:2] == (user.id, user.role.value)
            assert denied_pairs(caplog)[-1][3] == eid
        else:
            assert may


# ----------------------------------------------------------------------------------------------- 平安检查


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["covered", "uncovered", "far"])
def test_recording_an_inspection(engine, spread, spread_users, caplog, username, label):
    """Inspectors record in their own grids, the admin anywhere; leaders and departments read only."""
    user = spread_users[username]
    vid = spread.venues[label]
    may = username == "demo_admin" or (username == "demo_inspector" and label == "covered")
    with rolled_back(engine) as (uow, conn):
        try:
            record_inspection(
                uow, user=user, venue_id=vid, now=clock.now(), checklist=routine_checklist(conn, vid)
            )
        except OutOfScope:
            assert not may
            assert denied_pairs(caplog) == [(user.id, user.role.value, "record inspection", vid)]
        else:
            assert may


# ----------------------------------------------------------------------------------------------- campaigns


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("area", ["township", "far"])
def test_setting_a_campaign(engine, spread, spread_users, caplog, username, area):
    user = spread_users[username]
    may = {"township": LEADERS, "far": {"demo_admin", "demo_city"}}[area]
    today = clock.today()
    with rolled_back(engine) as (uow, _):
        try:
            add_campaign(
                uow,
                user=user,
                name=f"测试整治{username}{area}",
                category="street_shop",
                area_ids=[spread.units[area]],
                start=today,
                end=today + timedelta(days=7),
                every_days=7,
                now=clock.now(),
            )
        except InvalidSetting:
            assert username not in may
            assert denied_pairs(caplog)[0][:2] == (user.id, user.role.value)
        else:
            assert username in may


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["covered", "far"])
def test_reassigning_a_visit(engine, spread, spread_users, caplog, username, label):
    user = spread_users[username]
    inspector = spread_users["demo_inspector"].id if label == "covered" else _an_inspector_of(engine, spread)
    p = Proposal(
        spread.venues[label],
        "场所",
        spread.units["township"],
        None,
        inspector,
        ProposalScope.TOWNSHIP,
        "测试",
    )
    may = {"covered": LEADERS, "far": {"demo_admin", "demo_city"}}[label]
    with rolled_back(engine) as (uow, _):
        try:
            accept_proposals(uow, user=user, day=clock.today(), proposals=[p], now=clock.now())
        except InvalidSetting:
            assert username not in may
            assert denied_pairs(caplog)[0][:2] == (user.id, user.role.value)
        else:
            assert username in may


def _an_inspector_of(engine, spread):
    """An inspector of the far venue's grid (the tiny demo has none there), planted once and kept."""
    from db.models import InspectorGrid, User

    with engine.begin() as conn:
        uid = conn.execute(select(User.id).where(User.username == "wg_far_test")).scalar()
        if uid is None:
            uid = conn.execute(
                User.__table__.insert().values(
                    username="wg_far_test",
                    display_name="远方检查员",
                    role=Role.INSPECTOR,
                    scope_unit_id=spread.units["far"],
                    created_at=clock.now(),
                )
            ).inserted_primary_key[0]
            conn.execute(InspectorGrid.__table__.insert().values(user_id=uid, grid_id=spread.grids["far"]))
    return uid


def test_clearing_reassignments_keeps_those_outside_the_users_scope(engine, spread, spread_users, caplog):
    from services import settings

    day = clock.today() + timedelta(days=3)
    planted = {str(spread.venues["covered"]): 1, str(spread.venues["far"]): 2}
    with rolled_back(engine) as (uow, conn):
        settings.write(conn, reassign_key(day), json.dumps(planted), clock.now())
        clear_reassignments(uow, day=day, now=clock.now(), user=spread_users["demo_township"])
        assert load_reassignments(conn, day) == {spread.venues["far"]: 2}
    for name in ("demo_department", "demo_inspector"):
        with rolled_back(engine) as (uow, conn):
            settings.write(conn, reassign_key(day), json.dumps(planted), clock.now())
            with pytest.raises(InvalidSetting):
                clear_reassignments(uow, day=day, now=clock.now(), user=spread_users[name])
    assert [p[:3] for p in denied_pairs(caplog)] == [
        (spread_users[n].id, spread_users[n].role.value, "clear reassignments")
        for n in ("demo_department", "demo_inspector")
    ]


# ----------------------------------------------------------------------------------------------- imports


def _venue_csv(engine, spread, label) -> bytes:
    lon, lat = _centre(engine, spread.grids[label])
    df = pd.DataFrame(
        [
            {
                "名称": f"导入测试{label}",
                "类别": "沿街店铺",
                "地址": "测试路1号",
                "纬度": f"{lat:.6f}",
                "经度": f"{lon:.6f}",
                "网格编码": "",
                "负责人": "赵六",
                "联系电话": "13800000000",
            }
        ]
    )
    return df.to_csv(index=False).encode("utf-8")


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["covered", "far"])
def test_importing_venues(engine, spread, spread_users, caplog, username, label):
    user = spread_users[username]
    may = {"covered": {"demo_admin", "demo_township"}, "far": {"demo_admin"}}[label]
    data = _venue_csv(engine, spread, label)
    with rolled_back(engine) as (uow, conn):
        try:
            result = import_venues(uow, data=data, filename="v.csv", now=clock.now(), user=user)
        except ImportRejected as exc:
            assert username not in may, exc.problems
            assert denied_pairs(caplog)[0][:2] == (user.id, user.role.value)
            assert conn.execute(select(Venue.id).where(Venue.name == f"导入测试{label}")).first() is None
        else:
            assert username in may and result.created == 1


def _event_csv(engine, spread, label) -> bytes:
    lon, lat = _centre(engine, spread.grids[label])
    df = pd.DataFrame(
        [
            {
                "来源": "12345热线",
                "外部编号": "T1",
                "类别": "城镇管理",
                "标题": f"导入事件{label}",
                "描述": "",
                "地址": "",
                "纬度": f"{lat:.6f}",
                "经度": f"{lon:.6f}",
                "上报时间": f"{clock.now():%Y-%m-%d %H:%M}",
                "紧急程度": "一般",
                "反映人": "",
                "联系电话": "",
            }
        ]
    )
    return df.to_csv(index=False).encode("utf-8")


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["covered", "sibling", "far"])
def test_importing_events(engine, spread, spread_users, caplog, username, label):
    user = spread_users[username]
    may = {
        "covered": LEADERS,
        "sibling": {"demo_admin", "demo_city", "demo_county"},
        "far": {"demo_admin", "demo_city"},
    }[label]
    data = _event_csv(engine, spread, label)
    with rolled_back(engine) as (uow, conn):
        outcome = import_events(
            uow, data, "e.csv", actor=Actor(user.id, user.role.value), now=clock.now(), user=user
        )
        imported = conn.execute(select(Event.id).where(Event.title == f"导入事件{label}")).first() is not None
    assert outcome.ok is (username in may), outcome.errors
    assert imported is (username in may)
    if username not in may:
        assert denied_pairs(caplog)[0][:2] == (user.id, user.role.value)


# ----------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize("username", DEMO)
def test_editing_event_rules_and_risk_thresholds(engine, spread_users, caplog, username):
    user = spread_users[username]
    with engine.connect() as conn:
        dispatch, deadlines = load_rules(conn)
        for save in (
            lambda: save_rules(
                RolledBack(conn),
                dispatch_json=dispatch.to_json(),
                deadlines_json=deadlines.to_json(),
                now=clock.now(),
                user=user,
            ),
            lambda: save_thresholds(
                RolledBack(conn), Thresholds(red=90, orange=60, yellow=30, blue=10), clock.now(), user=user
            ),
        ):
            try:
                save()
            except PermissionError:
                assert username != "demo_admin"
            else:
                assert username == "demo_admin"
        conn.rollback()
    if username != "demo_admin":
        assert [p[:3] for p in denied_pairs(caplog)] == [
            (user.id, user.role.value, "edit event rules"),
            (user.id, user.role.value, "edit risk thresholds"),
        ]


def test_an_inspector_escalating_is_refused_before_anything_is_read(engine, spread, spread_users, caplog):
    """The role check comes first: a refused role learns nothing about whether the event exists."""
    user = spread_users["demo_inspector"]
    with pytest.raises(OutOfScope, match="不能执行"):
        act_as(UnitOfWork(engine), user, None, event_id=10**9, action=Action.ESCALATE, now=clock.now())
    assert denied_pairs(caplog) == [(user.id, "inspector", "event action escalate", 10**9)]


def test_denials_never_log_a_phone_number_or_user_text(engine, spread, spread_users, caplog):
    """Logged denials carry ids and what was asked, never the text a user typed (it may hold a phone)."""
    import re

    today = clock.today()
    with rolled_back(engine) as (uow, _):
        add_campaign(
            uow,
            user=spread_users["demo_admin"],
            name="联系13812345678整治",
            category="street_shop",
            area_ids=[spread.units["far"]],
            start=today,
            end=today + timedelta(days=7),
            every_days=7,
            now=clock.now(),
        )
        with pytest.raises(InvalidSetting):
            remove_campaign(
                uow, user=spread_users["demo_township"], name="联系13812345678整治", now=clock.now()
            )
    refused = _venue_csv(engine, spread, "far")
    with rolled_back(engine) as (uow, _), pytest.raises(ImportRejected):
        import_venues(
            uow, data=refused, filename="v.csv", now=clock.now(), user=spread_users["demo_township"]
        )
    assert len(denied_pairs(caplog)) == 2
    assert not [r for r in caplog.records if re.search(r"1[3-9]\d{9}", r.getMessage())]


@pytest.mark.parametrize("username", DEMO)
@pytest.mark.parametrize("label", ["covered", "sibling", "far"])
def test_revealing_a_reporters_contact(engine, spread, spread_users, caplog, username, label):
    """Unmasking (PIPL) needs the permission and the event in scope; the reveal is refused and logged otherwise."""
    from services.personal_data import reveal_event_reporter

    user = spread_users[username]
    eid = spread.events[label]
    may = {
        "covered": {"demo_admin", "demo_city", "demo_county"},
        "sibling": {"demo_admin", "demo_city", "demo_county"},
        "far": {"demo_admin", "demo_city"},
    }[label]
    with rolled_back(engine) as (uow, _):
        try:
            contact = reveal_event_reporter(uow, user, eid, "回访核实处置结果", clock.now())
        except OutOfScope:
            assert username not in may
            assert denied_pairs(caplog)[0][:2] == (user.id, user.role.value)
            assert denied_pairs(caplog)[0][3] == eid
        else:
            assert username in may and contact.phone == "13812345678"
