"""Department administration against the store (SQLite, and PostgreSQL when DATABASE_URL says so): create at
any level inside the administrator's scope, rename, change kind, disable and enable, import a file all or
nothing; every change one audit row; refusals in Chinese with the store unchanged; and dispatch following it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, insert, select

from db.engine import session_factory
from db.models import AuditLog, Department, Event, EventCooperator, EventTransition, User
from db.uow import UnitOfWork
from domain.errors import FieldProblems
from domain.event_flow import Action
from domain.vocabulary import EventCategory, EventSource, Role
from services import departments
from services.access import OutOfScope
from services.accounts import departments_for
from services.auth import _current
from services.departments import DepartmentDraft, DepartmentProblems
from services.event_rules import suggest_dispatch
from services.event_views import departments as dispatch_choices
from services.event_views import suggest_cooperators
from services.events import act, report_event
from services.tabular import TableError
from tests.builders import grid_centre, make_square_area
from tests.integration.test_accounts import _add_user, _second_county

NOW = datetime(2026, 11, 21, 9, 0)
HEADER = "部门名称,类型,所属区划编码,部门编码"


@pytest.fixture
def area(empty_engine):
    """The square city with a second county; a city administrator, a county administrator of the square
    county, a township leader; the square township's 城管 department (D-CG) and one in the other county."""
    from services.geography import store_units

    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        ids |= store_units(conn, _second_county())
        conn.execute(
            insert(Department),
            {"code": "D-SJ", "name": "邻镇市场监管所", "kind": "市场监管", "unit_id": ids["990002001"]},
        )
        depts = dict(conn.execute(select(Department.code, Department.id)).all())
        users = {
            name: _add_user(conn, name, role, ids[scope])
            for name, role, scope in (
                ("city_admin", Role.ADMIN, "990000"),
                ("county_admin", Role.ADMIN, "990001"),
                ("fang_leader", Role.TOWNSHIP_LEADER, "990001001"),
            )
        }
    return {"engine": empty_engine, "units": ids, "departments": depts, "users": users}


def _user(area, name: str):
    with session_factory(area["engine"])() as s:
        return _current(s.get(User, area["users"][name]))


def _uow(area) -> UnitOfWork:
    return UnitOfWork(area["engine"])


def _hotline_report(area) -> int:
    """A 12345 report of 占道经营 in the square township's first grid; its event id."""
    x, y = grid_centre(0)
    return report_event(
        _uow(area),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.URBAN,
        title="占道经营",
        lon=x,
        lat=y,
        now=NOW,
    ).id


def _rows(area) -> list[tuple]:
    with area["engine"].connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    Department.id, Department.code, Department.name, Department.kind, Department.unit_id
                ).order_by(Department.id)
            )
        ]


def _trail(area, prefix: str = "departments.") -> list[AuditLog]:
    with area["engine"].connect() as conn:
        return list(
            conn.execute(
                select(AuditLog).where(AuditLog.action.startswith(prefix)).order_by(AuditLog.id)
            ).all()
        )


def _audit_rows(area) -> int:
    with area["engine"].connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()


# ------------------------------------------------------------------------------------------ creating


def test_a_county_administrator_creates_departments_at_any_level_of_the_county_each_audited(area):
    admin, units = _user(area, "county_admin"), area["units"]
    county = departments.create_department(
        _uow(area), actor=admin, draft=DepartmentDraft(units["990001"], " 方城区公安分局 ", "公安"), now=NOW
    )
    village = departments.create_department(
        _uow(area),
        actor=admin,
        draft=DepartmentDraft(units["990001001001"], "东村调解委员会", "司法", "DC-SF"),
        now=NOW,
    )
    rows = {r[0]: r[1:] for r in _rows(area)}
    assert rows[county] == (
        "990001-01",
        "方城区公安分局",
        "公安",
        units["990001"],
    )  # code made from unit + kind
    assert rows[village] == ("DC-SF", "东村调解委员会", "司法", units["990001001001"])
    trail = _trail(area)
    assert [(t.action, t.entity_id, t.actor_id) for t in trail] == [
        ("departments.create", county, admin.id),
        ("departments.create", village, admin.id),
    ]
    assert (
        json.loads(trail[0].after)["unit_code"] == "990001"
        and json.loads(trail[0].after)["name"] == "方城区公安分局"
    )
    listed = departments.list_departments(area["engine"].connect(), admin)
    assert {d.code for d in listed} == {"D-CG", "990001-01", "DC-SF"}  # not the other county's D-SJ
    assert [d.unit for d in listed if d.code == "DC-SF"] == ["方城区 / 方城街道 / 东村"]


def test_every_problem_of_a_department_is_named_in_chinese_and_nothing_is_written(area):
    admin, units = _user(area, "county_admin"), area["units"]
    before, audited = _rows(area), _audit_rows(area)
    with pytest.raises(DepartmentProblems) as refused:
        departments.create_department(
            _uow(area),
            actor=admin,
            draft=DepartmentDraft(units["990001001"], "方城街道综合执法中队", "城管", "D-CG"),
            now=NOW,
        )
    problems = refused.value.problems
    assert "已有名为“方城街道综合执法中队”的部门" in problems["部门名称"]  # duplicate name in the unit
    assert "已有城管类部门" in problems["类型"]  # one department per kind and unit
    assert "已被使用" in problems["部门编码"]
    with pytest.raises(DepartmentProblems) as refused:
        departments.create_department(
            _uow(area), actor=admin, draft=DepartmentDraft(None, "局", "园林", "a b"), now=NOW
        )
    assert set(refused.value.problems) == {"部门名称", "类型", "所属区划", "部门编码"}
    assert "园林" in refused.value.problems["类型"]
    assert _rows(area) == before and _audit_rows(area) == audited


def test_the_same_name_in_another_unit_is_fine(area):
    admin, units = _user(area, "city_admin"), area["units"]
    departments.create_department(
        _uow(area),
        actor=admin,
        draft=DepartmentDraft(units["990002001"], "方城街道综合执法中队", "城管"),
        now=NOW,
    )
    assert sum(r[2] == "方城街道综合执法中队" for r in _rows(area)) == 2


def test_a_county_administrator_cannot_touch_another_countys_departments(area, caplog):
    admin, units = _user(area, "county_admin"), area["units"]
    before = _rows(area)
    with pytest.raises(OutOfScope):
        departments.create_department(
            _uow(area), actor=admin, draft=DepartmentDraft(units["990002001"], "邻镇派出所", "公安"), now=NOW
        )
    with pytest.raises(OutOfScope):
        departments.update_department(
            _uow(area),
            actor=admin,
            department_id=area["departments"]["D-SJ"],
            name="改名",
            kind="市场监管",
            now=NOW,
        )
    with pytest.raises(OutOfScope):
        departments.set_active(
            _uow(area), actor=admin, department_id=area["departments"]["D-SJ"], active=False, now=NOW
        )
    with pytest.raises(OutOfScope):  # a leader is no administrator
        departments.list_departments(area["engine"].connect(), _user(area, "fang_leader"))
    assert _rows(area) == before and _trail(area) == []
    assert sum("denied" in r.getMessage() for r in caplog.records) >= 4


# ------------------------------------------------------------------------------------------ changing


def test_rename_and_change_kind_keep_the_unit_and_code_and_are_audited(area):
    admin, dept = _user(area, "county_admin"), area["departments"]["D-CG"]
    departments.update_department(
        _uow(area), actor=admin, department_id=dept, name="方城街道执法队", kind="城管", now=NOW
    )
    departments.update_department(
        _uow(area), actor=admin, department_id=dept, name="方城街道执法队", kind="住建", now=NOW
    )
    row = next(r for r in _rows(area) if r[0] == dept)
    assert row[1:4] == ("D-CG", "方城街道执法队", "住建")
    trail = _trail(area)
    assert [t.action for t in trail] == ["departments.update"] * 2
    changes = [(json.loads(t.before), json.loads(t.after)) for t in trail]
    assert (changes[0][0]["name"], changes[0][1]["name"]) == ("方城街道综合执法中队", "方城街道执法队")
    assert (changes[1][0]["kind"], changes[1][1]["kind"]) == ("城管", "住建")
    with pytest.raises(DepartmentProblems, match="没有修改"):
        departments.update_department(
            _uow(area), actor=admin, department_id=dept, name="方城街道执法队", kind="住建", now=NOW
        )


def test_a_disabled_department_is_neither_suggested_nor_offered_for_dispatch_until_enabled(area):
    admin, dept = _user(area, "county_admin"), area["departments"]["D-CG"]
    event_id = _hotline_report(area)

    def suggested():
        with area["engine"].connect() as conn:
            event = dict(conn.execute(select(Event.__table__).where(Event.id == event_id)).mappings().one())
            offered = [i for i, _ in dispatch_choices(conn, event["grid_id"])]
            suggestion = suggest_dispatch(conn, event)[1]
            assert (dept in offered) is (suggestion == dept)  # the dispatch form offers what is suggested
            # … and the new-account form offers it to a department account exactly when it takes work
            for_accounts = [d.id for d in departments_for(conn, admin)]
            assert (dept in for_accounts) is (suggestion == dept)
            return suggestion

    assert suggested() == dept
    departments.set_active(_uow(area), actor=admin, department_id=dept, active=False, now=NOW)
    assert suggested() is None
    listed = departments.list_departments(area["engine"].connect(), admin)
    assert [d.active for d in listed if d.id == dept] == [False]
    with pytest.raises(DepartmentProblems, match="已停用"):
        departments.set_active(_uow(area), actor=admin, department_id=dept, active=False, now=NOW)
    departments.set_active(_uow(area), actor=admin, department_id=dept, active=True, now=NOW)
    assert suggested() == dept
    assert [t.action for t in _trail(area)] == ["departments.disable", "departments.enable"]


def test_a_disabled_department_takes_no_dispatch_as_lead_or_cooperator_and_nothing_changes(area):
    """The service refuses what the form no longer offers (a stale form, the API, a script): 派单 to a
    disabled department, as lead or as 协办, is refused in Chinese and the event stays as it was; the
    一件事 suggestion leaves it out."""
    admin, lead = _user(area, "county_admin"), area["departments"]["D-CG"]
    with area["engine"].begin() as conn:
        police = conn.execute(
            insert(Department).returning(Department.id),
            {"code": "D-PCS", "name": "方城派出所", "kind": "公安", "unit_id": area["units"]["990001001"]},
        ).scalar_one()
    event_id = _hotline_report(area)
    act(_uow(area), event_id=event_id, action=Action.ACCEPT, now=NOW)
    with area["engine"].connect() as conn:
        assert suggest_cooperators(conn, ("公安",), lead) == [police]

    departments.set_active(_uow(area), actor=admin, department_id=police, active=False, now=NOW)
    with area["engine"].connect() as conn:
        assert suggest_cooperators(conn, ("公安",), lead) == []
    before = _event_state(area, event_id)
    with pytest.raises(ValueError, match=r"方城派出所.*已停用"):
        act(
            _uow(area),
            event_id=event_id,
            action=Action.DISPATCH,
            department_id=lead,
            cooperating_department_ids=[police],
            now=NOW,
        )
    with pytest.raises(FieldProblems, match=r"方城派出所.*已停用"):
        act(_uow(area), event_id=event_id, action=Action.DISPATCH, department_id=police, now=NOW)
    assert _event_state(area, event_id) == before

    act(_uow(area), event_id=event_id, action=Action.DISPATCH, department_id=lead, now=NOW)  # an active one
    assert _event_state(area, event_id)[0] == "dispatched"


def _event_state(area, event_id: int) -> tuple:
    with area["engine"].connect() as conn:
        status, lead = conn.execute(
            select(Event.status, Event.lead_department_id).where(Event.id == event_id)
        ).one()
        trail = conn.execute(
            select(func.count()).select_from(EventTransition).where(EventTransition.event_id == event_id)
        ).scalar_one()
        cooperators = conn.execute(
            select(func.count()).select_from(EventCooperator).where(EventCooperator.event_id == event_id)
        ).scalar_one()
    return str(getattr(status, "value", status)), lead, trail, cooperators


# ------------------------------------------------------------------------------------------ importing


def test_an_import_creates_every_department_or_none_with_row_numbered_errors(area):
    admin = _user(area, "county_admin")
    before, audited = _rows(area), _audit_rows(area)
    bad = "\n".join(
        [
            HEADER,
            "方城区交警大队,交警,990001,",
            "东村警务室,公安,990001001001,",
            "",
            "重名,城管,990001001,",  # 城管 exists at the township
            "邻镇派出所,公安,990002001,",  # another county
            "东村警务室2,公安,990001001001,",  # the same kind twice in one unit (row 3 first)
            "无名,园林,999999,",
        ]
    ).encode("gbk")
    result = departments.import_departments(_uow(area), actor=admin, data=bad, filename="部门.csv", now=NOW)
    assert not result.ok
    lines = [str(e) for e in result.errors]
    assert lines[0].startswith("第 5 行「类型」") and "已有城管类部门" in lines[0]
    assert any(line.startswith("第 6 行「所属区划编码」") and "不在您的管辖范围内" in line for line in lines)
    assert any(line.startswith("第 7 行「类型」") and "已有公安类部门“东村警务室”" in line for line in lines)
    assert any(line.startswith("第 8 行「类型」") for line in lines) and any(
        line.startswith("第 8 行「所属区划编码」") and "999999" in line for line in lines
    )
    assert _rows(area) == before and _audit_rows(area) == audited

    good = "\ufeff" + "\n".join([HEADER, "方城区交警大队,交警,990001,", "东村警务室,公安,990001001001,DC-GA"])
    result = departments.import_departments(
        _uow(area), actor=admin, data=good.encode("utf-8"), filename="部门.csv", now=NOW
    )
    assert result.ok and [n for n, _ in result.created] == [2, 3]
    assert {r[1] for r in _rows(area)} >= {"990001-02", "DC-GA"}
    assert [t.reason for t in _trail(area)] == ["批量导入：部门.csv"] * 2


def test_a_file_without_departments_or_columns_is_refused_as_a_whole(area):
    admin = _user(area, "county_admin")
    with pytest.raises(TableError, match="没有部门"):
        departments.import_departments(
            _uow(area), actor=admin, data=HEADER.encode(), filename="a.csv", now=NOW
        )
    with pytest.raises(TableError):
        departments.import_departments(
            _uow(area), actor=admin, data="名称,类型\n甲,公安".encode(), filename="a.csv", now=NOW
        )
