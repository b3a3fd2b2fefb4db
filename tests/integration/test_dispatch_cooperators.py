"""一件事: dispatching to a lead department with cooperating departments, who sees the event and who moves it."""

from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from db.models import Department, Event, EventCooperator, EventTransition, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, EventStatus, Role
from services.access import OutOfScope, Scope
from services.event_views import event_detail, feed, suggest_cooperators
from services.events import Actor, act, report_event
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 9, 30)


@pytest.fixture
def team(empty_engine):
    """The square area with the township's 综治 (lead), 司法 and 公安, the county's 交警, and a handler each."""
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        town, county = ids["990001001"], ids["990001"]
        depts = {}
        for code, kind, unit in (
            ("D-ZZ", "综治", town),
            ("D-SF", "司法", town),
            ("D-GA", "公安", town),
            ("D-JJ", "交警", county),
        ):
            depts[kind] = conn.execute(
                insert(Department).returning(Department.id),
                {"code": code, "name": f"方城{kind}", "kind": kind, "unit_id": unit},
            ).scalar_one()
        depts["城管"] = conn.execute(select(Department.id).where(Department.code == "D-CG")).scalar_one()
        handlers = {}
        for kind in ("综治", "司法", "城管"):
            handlers[kind] = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": f"h_{kind}",
                    "display_name": f"{kind}办理人",
                    "role": Role.DEPARTMENT,
                    "scope_unit_id": county,
                    "department_id": depts[kind],
                    "created_at": NOW,
                },
            ).scalar_one()
    grids = tuple(ids[f"99000100100{v}00{g}"] for v in (1, 2) for g in (1, 2))
    return empty_engine, ids, depts, handlers, grids


def _accepted(engine) -> int:
    eid = report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.DISPUTE,
        title="工地拖欠工资，多名工人反映",
        lon=grid_centre(1)[0],
        lat=grid_centre(1)[1],
        now=NOW,
    ).id
    act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=NOW)
    return eid


def _state(engine, eid):
    with engine.connect() as conn:
        ev = conn.execute(select(Event.status, Event.lead_department_id).where(Event.id == eid)).one()
        coop = set(
            conn.execute(
                select(EventCooperator.department_id).where(EventCooperator.event_id == eid)
            ).scalars()
        )
        trail = conn.execute(
            select(func.count()).select_from(EventTransition).where(EventTransition.event_id == eid)
        )
        return ev.status, ev.lead_department_id, coop, trail.scalar_one()


def _dispatch(engine, eid, lead, coop, note=None):
    return act(
        UnitOfWork(engine),
        event_id=eid,
        action=Action.DISPATCH,
        now=NOW,
        department_id=lead,
        cooperating_department_ids=coop,
        note=note,
    )


def test_a_dispatch_stores_the_lead_and_its_cooperating_departments_and_names_them_in_the_trail(team):
    engine, _, d, _, _ = team
    eid = _accepted(engine)
    assert _dispatch(engine, eid, d["综治"], [d["司法"], d["公安"], d["司法"]]) is EventStatus.DISPATCHED
    status, lead, coop, n = _state(engine, eid)
    assert (status, lead, coop, n) == (EventStatus.DISPATCHED, d["综治"], {d["司法"], d["公安"]}, 3)
    with engine.connect() as conn:
        note = conn.execute(
            select(EventTransition.note).where(EventTransition.event_id == eid, EventTransition.seq == 3)
        ).scalar_one()
    assert note == "派单（协办部门：方城司法、方城公安）"


@pytest.mark.parametrize(
    ("lead", "coop", "message"),
    [
        ("综治", [999_999], "协办部门：编号 999999 的部门不存在"),
        ("综治", ["司法", "综治"], "协办部门：“方城综治”已是牵头部门，不能同时协办"),
        (None, ["司法"], "协办部门：须同时选择牵头部门"),
    ],
)
def test_bad_cooperating_departments_are_refused_in_chinese_and_nothing_changes(team, lead, coop, message):
    engine, _, d, _, _ = team
    eid = _accepted(engine)
    before = _state(engine, eid)
    with pytest.raises(ValueError, match=message):
        _dispatch(engine, eid, d.get(lead), [d.get(c, c) for c in coop])
    assert _state(engine, eid) == before == (EventStatus.ACCEPTED, None, set(), 2)


def test_a_redispatch_after_a_return_replaces_the_cooperators(team):
    engine, _, d, _, _ = team
    eid = _accepted(engine)
    _dispatch(engine, eid, d["综治"], [d["司法"], d["公安"]])
    act(UnitOfWork(engine), event_id=eid, action=Action.RETURN, now=NOW, note="非本部门职责")
    _dispatch(engine, eid, d["城管"], [d["交警"]])
    assert _state(engine, eid)[1:3] == (d["城管"], {d["交警"]})
    act(UnitOfWork(engine), event_id=eid, action=Action.RETURN, now=NOW, note="再次退单")
    _dispatch(engine, eid, d["综治"], None)
    assert _state(engine, eid)[1:3] == (d["综治"], set())


def test_a_cooperating_department_sees_the_event_and_an_uninvolved_one_does_not(team):
    engine, _, d, h, grids = team
    eid = _accepted(engine)
    _dispatch(engine, eid, d["综治"], [d["司法"]])
    with engine.connect() as conn:
        assert eid in set(feed(conn, Scope(grids, d["司法"]), None)["id"])
        assert eid in set(feed(conn, Scope(grids, d["综治"]), None)["id"])
        assert eid not in set(feed(conn, Scope(grids, d["城管"]), None)["id"])
        viewer = CurrentUser(h["司法"], "h_司法", "司法办理人", Role.DEPARTMENT, _county(conn), d["司法"])
        detail = event_detail(conn, Scope(grids, d["司法"]), eid, viewer)
    assert detail is not None
    assert detail.event["department_label"] == "方城综治"
    assert detail.event["cooperators_label"] == "方城司法"


def _county(conn) -> int:
    from db.models import AdminUnit

    return conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990001")).scalar_one()


def test_only_the_lead_departments_handler_moves_the_event_a_cooperating_one_is_refused(team, caplog):
    engine, _, d, h, _ = team
    eid = _accepted(engine)
    _dispatch(engine, eid, d["综治"], [d["司法"]])
    with pytest.raises(OutOfScope, match="协办部门只能查看"):
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=Action.START,
            now=NOW,
            actor=Actor(h["司法"], "department"),
        )
    assert _state(engine, eid)[0] is EventStatus.DISPATCHED
    denied = [(r.user_id, r.role, r.object_id) for r in caplog.records if r.name == "access"]
    assert denied == [(h["司法"], "department", eid)]
    act(UnitOfWork(engine), event_id=eid, action=Action.START, now=NOW, actor=Actor(h["综治"], "department"))
    assert _state(engine, eid)[0] is EventStatus.IN_PROGRESS


def test_the_suggested_cooperators_serve_the_leads_unit_or_the_nearest_unit_above(team):
    engine, _, d, _, _ = team
    with engine.connect() as conn:
        assert suggest_cooperators(conn, ("司法", "公安", "交警", "消防"), d["综治"]) == [
            d["司法"],
            d["公安"],
            d["交警"],
        ]
        assert suggest_cooperators(conn, ("综治", "司法"), d["综治"]) == [d["司法"]]  # never the lead itself
        assert suggest_cooperators(conn, (), d["综治"]) == []
        assert suggest_cooperators(conn, ("司法",), None) == []


def test_a_cooperating_department_writes_its_opinion_and_the_event_stays_where_it_was(team):
    """协办意见: one trail row (the cooperator's department, the text), no change of status or deadline."""
    from db.models import AuditLog

    engine, _, d, h, _ = team
    eid = _accepted(engine)
    _dispatch(engine, eid, d["综治"], [d["司法"]])
    with engine.connect() as conn:
        due = conn.execute(select(Event.due_at).where(Event.id == eid)).scalar_one()
    later = NOW.replace(hour=11)
    after = act(
        UnitOfWork(engine),
        event_id=eid,
        action=Action.COMMENT,
        now=later,
        actor=Actor(h["司法"], "department"),
        note="已约谈双方，建议先行调解",
    )
    assert after is EventStatus.DISPATCHED
    with engine.connect() as conn:
        ev = conn.execute(select(Event.status, Event.due_at, Event.updated_at).where(Event.id == eid)).one()
        row = conn.execute(
            select(
                EventTransition.action,
                EventTransition.from_status,
                EventTransition.to_status,
                EventTransition.department_id,
                EventTransition.note,
                EventTransition.actor_id,
            )
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq.desc())
            .limit(1)
        ).one()
        audited = conn.execute(select(AuditLog.action).order_by(AuditLog.id.desc()).limit(1)).scalar_one()
    assert (ev.status, ev.due_at, ev.updated_at) == (EventStatus.DISPATCHED, due, later)
    assert (row.action, row.from_status, row.to_status) == ("comment", "dispatched", "dispatched")
    assert (row.department_id, row.note, row.actor_id) == (d["司法"], "已约谈双方，建议先行调解", h["司法"])
    assert audited == "event.comment"
    # The lead then starts handling, and writes its own progress note while in progress.
    act(
        UnitOfWork(engine), event_id=eid, action=Action.START, now=later, actor=Actor(h["综治"], "department")
    )
    act(
        UnitOfWork(engine),
        event_id=eid,
        action=Action.COMMENT,
        now=later,
        actor=Actor(h["综治"], "department"),
        note="调解中",
    )
    assert _state(engine, eid)[0] is EventStatus.IN_PROGRESS


def test_an_empty_opinion_or_one_from_an_uninvolved_department_is_refused_and_nothing_changes(team, caplog):
    engine, _, d, h, _ = team
    eid = _accepted(engine)
    _dispatch(engine, eid, d["综治"], [d["司法"]])
    before = _state(engine, eid)
    with pytest.raises(ValueError, match="请填写意见内容"):
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=Action.COMMENT,
            now=NOW,
            actor=Actor(h["司法"], "department"),
            note="  ",
        )
    with pytest.raises(OutOfScope, match="协办部门只能查看和填写处置意见"):
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=Action.COMMENT,
            now=NOW,
            actor=Actor(h["城管"], "department"),
            note="不是我们的事",
        )
    assert _state(engine, eid) == before
    assert [(r.user_id, r.object_id) for r in caplog.records if r.name == "access"] == [(h["城管"], eid)]
