"""Account administration against the store: create, disable, reset, change, import; the first administrator;
the forced password change. Every change leaves one audit row and no password material."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from sqlalchemy import func, insert, select, text, update

from db.engine import session_factory
from db.models import AuditLog, Department, InspectorGrid, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.errors import FieldProblems
from domain.vocabulary import Role
from services import accounts
from services.access import OutOfScope
from services.accounts import AccountDraft, AccountRefused, FirstRunClosed
from services.auth import (
    MAX_FAILURES,
    LoginRefused,
    _current,
    authenticate,
    change_own_password,
    hash_password,
    must_change_password,
)
from services.tabular import TableError
from tests.builders import X0, Y0, D, make_square_area, square_area_units

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 21, 9, 0)
HEADER = "用户名,姓名,角色,管辖区划编码,部门,手机号,初始密码"


# ------------------------------------------------------------------------------------------ the area


def _second_county() -> gpd.GeoDataFrame:
    """A second county beside the square area's, inside the same city: one township, village and grid."""
    box = shapely.box(X0 + 4 * D, Y0, X0 + 5 * D, Y0 + D)
    rows = [
        ("990002", "邻县", "county", "990000", "县", 1000, box),
        ("990002001", "邻镇", "township", "990002", "镇", 1000, box),
        ("990002001001", "邻村", "village", "990002001", "村", 1000, box),
        ("990002001001001", "邻村网格", "grid", "990002001001", "网格", 1000, box),
    ]
    cols = ["code", "name", "level", "parent_code", "kind", "population", "geometry"]
    return gpd.GeoDataFrame([dict(zip(cols, r, strict=True)) for r in rows], geometry="geometry", crs=4326)


def _add_user(conn, username: str, role: Role, scope: int, *, department: int | None = None, **extra) -> int:
    return conn.execute(
        insert(User).returning(User.id),
        {
            "username": username,
            "display_name": extra.pop("display_name", username),
            "role": role,
            "scope_unit_id": scope,
            "department_id": department,
            "password_hash": hash_password("admin-pass-1"),
            "created_at": NOW,
            **extra,
        },
    ).scalar_one()


@pytest.fixture
def area(empty_engine):
    """The square city (one county, township, two villages of two grids) and a second county; a city
    administrator, a county administrator of the square county, a leader in each county."""
    from services.geography import store_units

    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        ids |= store_units(conn, _second_county())
        conn.execute(
            insert(Department),
            [
                {"code": "D-SJ", "name": "邻镇市场监管所", "kind": "市场监管", "unit_id": ids["990002001"]},
                {"code": "D-CGX", "name": "方城区城管局", "kind": "城管", "unit_id": ids["990001"]},
            ],
        )
        depts = dict(conn.execute(select(Department.code, Department.id)).all())
        users = {
            "city": _add_user(conn, "city_admin", Role.ADMIN, ids["990000"]),
            "county": _add_user(conn, "county_admin", Role.ADMIN, ids["990001"]),
            "leader": _add_user(
                conn, "fang_leader", Role.TOWNSHIP_LEADER, ids["990001001"], phone="13812345678"
            ),
            "far_leader": _add_user(conn, "lin_leader", Role.TOWNSHIP_LEADER, ids["990002001"]),
        }
    return {"engine": empty_engine, "units": ids, "departments": depts, "users": users}


def _user(area, key: str) -> CurrentUser:
    with session_factory(area["engine"])() as s:
        return _current(s.get(User, area["users"][key]))


def _uow(area) -> UnitOfWork:
    return UnitOfWork(area["engine"])


def _row(area, username: str) -> User | None:
    with session_factory(area["engine"])() as s:
        return s.execute(select(User).where(User.username == username)).scalar_one_or_none()


def _trail(area, action: str | None = None) -> list[AuditLog]:
    with area["engine"].connect() as conn:
        query = select(AuditLog).order_by(AuditLog.id)
        if action:
            query = query.where(AuditLog.action == action)
        return list(conn.execute(query).all())


def _leader_draft(area, **changes) -> AccountDraft:
    values = {
        "username": "new_leader",
        "display_name": "新镇长",
        "role": Role.TOWNSHIP_LEADER,
        "scope_unit_id": area["units"]["990001001"],
        "phone": "139 0000 1111",
        "password": "initial-pass",
    }
    return AccountDraft(**(values | changes))


def _create(area, actor="city", **changes):
    return accounts.create_account(
        _uow(area), actor=_user(area, actor), draft=_leader_draft(area, **changes), now=NOW
    )


def _login(area, username, password, now=NOW):
    return authenticate(_uow(area), username, password, now)


# ------------------------------------------------------------------------------------------ creating


def test_an_admin_creates_a_township_leader_who_must_change_the_password_at_first_login(area):
    created = _create(area)
    assert created.temporary_password is None  # the admin typed one
    user = _login(area, "new_leader", "initial-pass")
    assert (user.role, user.scope_unit_id) == (Role.TOWNSHIP_LEADER, area["units"]["990001001"])
    with area["engine"].connect() as conn:
        assert must_change_password(conn, user.id)
    row = _row(area, "new_leader")
    assert row.phone == "13900001111" and row.password_hash.startswith("$argon2")
    (entry,) = _trail(area, "accounts.create")
    after = json.loads(entry.after)
    assert (entry.actor_id, entry.entity_id) == (area["users"]["city"], created.id)
    assert after["phone"] == "139****1111" and after["must_change_password"] is True


def test_an_account_without_an_initial_password_gets_a_generated_one_shown_once(area):
    created = _create(area, password=None)
    assert len(created.temporary_password) == 12
    assert _login(area, "new_leader", created.temporary_password).username == "new_leader"


def test_every_problem_of_a_new_account_is_reported_at_once_and_nothing_is_written(area):
    with pytest.raises(FieldProblems) as caught:
        _create(area, username="1x", display_name=" ", phone="12345", password="short", role=None)
    assert set(caught.value.problems) == {"用户名", "姓名", "手机号", "初始密码", "角色"}
    assert "字母开头" in caught.value.problems["用户名"]
    assert "至少 8 位" in caught.value.problems["初始密码"]
    assert _row(area, "1x") is None and not _trail(area)


def test_a_user_name_is_taken_whatever_its_case(area):
    with pytest.raises(FieldProblems) as caught:
        _create(area, username="FANG_Leader")
    assert caught.value.problems == {"用户名": "该用户名已被使用，请换一个"}


def test_a_department_handler_needs_a_department_on_the_path_of_the_scope(area):
    deps, units = area["departments"], area["units"]
    with pytest.raises(FieldProblems) as caught:
        _create(area, username="handler1", role=Role.DEPARTMENT, scope_unit_id=units["990001001"])
    assert caught.value.problems == {"部门": "部门处置人员须选择所属部门"}
    with pytest.raises(FieldProblems) as caught:  # a department of the other county
        _create(area, username="handler1", role=Role.DEPARTMENT, department_id=deps["D-SJ"])
    assert "不属于该管辖区划" in caught.value.problems["部门"]
    with pytest.raises(FieldProblems) as caught:  # a leader has none
        _create(area, username="handler1", department_id=deps["D-CG"])
    assert "只有部门处置人员" in caught.value.problems["部门"]
    _create(
        area, username="handler1", role=Role.DEPARTMENT, department_id=deps["D-CGX"]
    )  # the county's, above
    assert _row(area, "handler1").department_id == deps["D-CGX"]


def test_an_inspector_covers_every_grid_under_a_village_and_cannot_be_scoped_to_a_county(area):
    units = area["units"]
    with pytest.raises(FieldProblems) as caught:
        _create(area, username="wg1", role=Role.INSPECTOR, scope_unit_id=units["990001"])
    assert "乡镇" in caught.value.problems["管辖区划"]
    created = _create(area, username="wg1", role=Role.INSPECTOR, scope_unit_id=units["990001001001"])
    with area["engine"].connect() as conn:
        grids = set(
            conn.execute(select(InspectorGrid.grid_id).where(InspectorGrid.user_id == created.id)).scalars()
        )
    assert grids == {units["990001001001001"], units["990001001001002"]}
    assert json.loads(_trail(area, "accounts.create")[0].after)["inspector_grids"] == 2


# ------------------------------------------------------------------------------------------ scope


def test_a_county_admin_cannot_give_a_scope_outside_the_county_and_the_denial_is_logged(area, caplog):
    with pytest.raises(OutOfScope, match="不在您的管辖范围内"):
        _create(area, actor="county", scope_unit_id=area["units"]["990002001"])
    assert any(r.name == "access" and "accounts.create scope" in r.getMessage() for r in caplog.records)
    assert _row(area, "new_leader") is None


def test_a_county_admin_lists_only_the_accounts_inside_the_county_with_masked_phones(area):
    with area["engine"].connect() as conn:
        listed = accounts.list_accounts(conn, _user(area, "county"), now=NOW)
        everyone = accounts.list_accounts(conn, _user(area, "city"), now=NOW)
        leaders = accounts.list_accounts(
            conn, _user(area, "city"), now=NOW, role=Role.TOWNSHIP_LEADER, text="LIN"
        )
    assert [a.username for a in listed] == ["county_admin", "fang_leader"]
    assert {a.username for a in everyone} == {"city_admin", "county_admin", "fang_leader", "lin_leader"}
    assert [a.username for a in leaders] == ["lin_leader"]
    leader = listed[1]
    assert leader.phone == "138****5678" and leader.scope == "方城区 / 方城街道"
    assert leader.is_active and leader.locked_until is None and not leader.must_change_password


@pytest.mark.parametrize("action", ["disable", "reset", "update"])
def test_a_county_admin_cannot_touch_an_account_outside_the_county(area, action):
    county, target = _user(area, "county"), area["users"]["far_leader"]
    with pytest.raises(OutOfScope, match="不在您的管辖范围内"):
        if action == "disable":
            accounts.set_active(_uow(area), actor=county, user_id=target, active=False, now=NOW)
        elif action == "reset":
            accounts.reset_password(_uow(area), actor=county, user_id=target, now=NOW)
        else:
            accounts.update_account(
                _uow(area), actor=county, user_id=target, role=Role.COMMAND_CENTER,
                scope_unit_id=area["units"]["990001"], department_id=None, now=NOW,
            )  # fmt: skip
    assert _row(area, "lin_leader").is_active and not _trail(area)


@pytest.mark.parametrize(
    "role", [Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER, Role.DEPARTMENT, Role.INSPECTOR, "forged admin"]
)
def test_only_an_administrator_may_manage_accounts(area, role, caplog):
    with area["engine"].begin() as conn:
        if role == "forged admin":  # a leader whose session claims the administrator's role
            uid = area["users"]["leader"]
        else:
            dept = area["departments"]["D-CG"] if role is Role.DEPARTMENT else None
            uid = _add_user(conn, "someone", role, area["units"]["990001001"], department=dept)
    with session_factory(area["engine"])() as s:
        actor = _current(s.get(User, uid))
    if role == "forged admin":
        actor = dataclasses.replace(actor, role=Role.ADMIN)
    with pytest.raises(OutOfScope, match="仅系统管理员"), area["engine"].connect() as conn:
        accounts.list_accounts(conn, actor, now=NOW)
    with pytest.raises(OutOfScope, match="仅系统管理员"):
        accounts.create_account(_uow(area), actor=actor, draft=_leader_draft(area), now=NOW)
    with pytest.raises(OutOfScope, match="仅系统管理员"):
        accounts.reset_password(_uow(area), actor=actor, user_id=area["users"]["far_leader"], now=NOW)
    assert all(getattr(r, "what", None) == "accounts" for r in caplog.records if r.name == "access")
    assert not _trail(area) and _row(area, "new_leader") is None


def test_an_administrator_disabled_meanwhile_can_no_longer_act(area):
    county = _user(area, "county")
    accounts.set_active(_uow(area), actor=_user(area, "city"), user_id=county.id, active=False, now=NOW)
    with pytest.raises(OutOfScope, match="仅系统管理员"):
        accounts.reset_password(_uow(area), actor=county, user_id=area["users"]["leader"], now=NOW)


# ------------------------------------------------------------------------------------------ disabling


def test_a_disabled_account_cannot_log_in_until_it_is_enabled_again_each_step_audited(area):
    city, leader = _user(area, "city"), area["users"]["leader"]
    assert accounts.set_active(_uow(area), actor=city, user_id=leader, active=False, now=NOW)
    assert not accounts.set_active(_uow(area), actor=city, user_id=leader, active=False, now=NOW)  # no change
    with pytest.raises(LoginRefused, match="用户名或密码错误"):
        _login(area, "fang_leader", "admin-pass-1")
    assert accounts.set_active(_uow(area), actor=city, user_id=leader, active=True, now=NOW)
    assert _login(area, "fang_leader", "admin-pass-1").username == "fang_leader"
    trail = [
        (e.action, json.loads(e.before)["is_active"], json.loads(e.after)["is_active"]) for e in _trail(area)
    ]
    assert trail == [("accounts.disable", True, False), ("accounts.enable", False, True)]


def test_an_admin_cannot_disable_themself(area):
    city = _user(area, "city")
    with pytest.raises(AccountRefused, match="不能停用自己的账号"):
        accounts.set_active(_uow(area), actor=city, user_id=city.id, active=False, now=NOW)


def test_with_one_other_active_administrator_an_administrator_may_be_disabled(area):
    accounts.set_active(
        _uow(area), actor=_user(area, "city"), user_id=area["users"]["county"], active=False, now=NOW
    )
    assert not _row(area, "county_admin").is_active


def test_two_administrators_disabling_each_other_at_once_leave_exactly_one_active(area):
    city, county = _user(area, "city"), _user(area, "county")
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def disable(actor: CurrentUser, target: int) -> None:
        barrier.wait()
        try:
            accounts.set_active(_uow(area), actor=actor, user_id=target, active=False, now=NOW)
            outcomes[actor.username] = "done"
        except (AccountRefused, OutOfScope) as refused:
            outcomes[actor.username] = str(refused)

    # The county admin cannot reach the city admin (outside the county): make both city-wide first.
    with area["engine"].begin() as conn:
        conn.execute(update(User).where(User.id == county.id).values(scope_unit_id=city.scope_unit_id))
    county = _user(area, "county")
    threads = [
        threading.Thread(target=disable, args=(city, county.id)),
        threading.Thread(target=disable, args=(county, city.id)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v == "done" for v in outcomes.values()) == [False, True], outcomes
    with area["engine"].connect() as conn:
        active = conn.execute(select(func.count()).where(User.role == Role.ADMIN, User.is_active)).scalar()
    assert active == 1 and len(_trail(area, "accounts.disable")) == 1


def test_two_administrators_held_at_the_lock_the_second_finds_itself_the_last(area):
    """PostgreSQL: both requests pass the administrator check, then queue on the administrators' rows;
    the one served second sees the other's change and refuses (SQLite serialises whole transactions)."""
    engine = area["engine"]
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite's unit of work holds the write lock from its start)")
    with engine.begin() as conn:
        conn.execute(
            update(User).where(User.username == "county_admin").values(scope_unit_id=area["units"]["990000"])
        )
    city, county = _user(area, "city"), _user(area, "county")
    outcomes: dict[str, str] = {}

    def disable(actor: CurrentUser, target: int) -> None:
        try:
            accounts.set_active(_uow(area), actor=actor, user_id=target, active=False, now=NOW)
            outcomes[actor.username] = "done"
        except (AccountRefused, OutOfScope) as refused:
            outcomes[actor.username] = str(refused)

    holder = engine.connect()
    holder.begin()
    holder.execute(select(User.id).where(User.role == Role.ADMIN).with_for_update())
    threads = [
        threading.Thread(target=disable, args=(city, county.id)),
        threading.Thread(target=disable, args=(county, city.id)),
    ]
    for t in threads:
        t.start()
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    with engine.connect() as probe:
        for _ in range(600):
            if probe.execute(text(waiting)).scalar() >= 2:
                break
            threading.Event().wait(0.05)
    holder.commit()
    holder.close()
    for t in threads:
        t.join()
    assert sorted(outcomes.values())[0] == "done", outcomes
    assert "最后一个启用的系统管理员" in sorted(outcomes.values())[1]


# ------------------------------------------------------------------------------------------ reset


def test_a_reset_gives_a_temporary_password_lifts_the_lock_and_forces_a_change(area):
    for _ in range(MAX_FAILURES):
        with pytest.raises(LoginRefused):
            _login(area, "fang_leader", "wrong-password")
    with pytest.raises(LoginRefused, match="锁定"):
        _login(area, "fang_leader", "admin-pass-1")
    word = accounts.reset_password(
        _uow(area), actor=_user(area, "county"), user_id=area["users"]["leader"], now=NOW
    )
    assert len(word) == 12
    user = _login(area, "fang_leader", word)
    with area["engine"].connect() as conn:
        assert must_change_password(conn, user.id)
    (entry,) = _trail(area, "accounts.reset_password")
    assert json.loads(entry.before)["locked_until"] is not None
    assert json.loads(entry.after) == {
        "password_set": True, "must_change_password": True, "failed_logins": 0, "locked_until": None,
    }  # fmt: skip


def test_an_admin_cannot_reset_their_own_password_here(area):
    city = _user(area, "city")
    with pytest.raises(AccountRefused, match=r"services\.auth passwd"):
        accounts.reset_password(_uow(area), actor=city, user_id=city.id, now=NOW)


# ------------------------------------------------------------------------------------------ forced change


def test_after_a_reset_login_the_new_password_needs_no_old_one_and_lifts_the_forced_change(area):
    word = accounts.reset_password(
        _uow(area), actor=_user(area, "city"), user_id=area["users"]["leader"], now=NOW
    )
    user = _login(area, "fang_leader", word)
    change_own_password(_uow(area), user=user, new_password="my-own-pass", repeat="my-own-pass")
    with area["engine"].connect() as conn:
        assert not must_change_password(conn, user.id)
    assert _login(area, "fang_leader", "my-own-pass").username == "fang_leader"
    with pytest.raises(LoginRefused):
        _login(area, "fang_leader", word)
    entry = _trail(area, "auth.password_change")[-1]
    assert entry.actor_id == user.id and json.loads(entry.after)["must_change_password"] is False


def test_the_new_password_must_be_long_enough_typed_twice_alike_and_differ_from_the_old(area):
    word = accounts.reset_password(
        _uow(area), actor=_user(area, "city"), user_id=area["users"]["leader"], now=NOW
    )
    user = _login(area, "fang_leader", word)
    with pytest.raises(FieldProblems) as caught:
        change_own_password(_uow(area), user=user, new_password="short", repeat="shorts")
    assert set(caught.value.problems) == {"新密码", "再次输入新密码"}
    with pytest.raises(FieldProblems) as caught:
        change_own_password(_uow(area), user=user, new_password=word, repeat=word)
    assert "不能与当前密码相同" in caught.value.problems["新密码"]


def test_without_a_forced_change_the_current_password_is_needed(area):
    user = _login(area, "fang_leader", "admin-pass-1")
    with pytest.raises(FieldProblems) as caught:
        change_own_password(_uow(area), user=user, new_password="another-pass", repeat="another-pass")
    assert caught.value.problems == {"当前密码": "请输入当前密码"}
    with pytest.raises(FieldProblems, match="当前密码不正确"):
        change_own_password(
            _uow(area), user=user, new_password="another-pass", repeat="another-pass", current_password="nope"
        )
    change_own_password(
        _uow(area),
        user=user,
        new_password="another-pass",
        repeat="another-pass",
        current_password="admin-pass-1",
    )
    assert _login(area, "fang_leader", "another-pass").username == "fang_leader"


# ------------------------------------------------------------------------------------------ changing


def test_changing_role_and_scope_replaces_an_inspectors_grids_and_is_audited(area):
    units = area["units"]
    created = _create(area, username="wg1", role=Role.INSPECTOR, scope_unit_id=units["990001001001"])
    city = _user(area, "city")
    assert accounts.update_account(
        _uow(area), actor=city, user_id=created.id, role=Role.INSPECTOR,
        scope_unit_id=units["990001001002001"], department_id=None, now=NOW,
    )  # fmt: skip
    with area["engine"].connect() as conn:
        grids = list(
            conn.execute(select(InspectorGrid.grid_id).where(InspectorGrid.user_id == created.id)).scalars()
        )
    assert grids == [units["990001001002001"]]
    assert accounts.update_account(
        _uow(area), actor=city, user_id=created.id, role=Role.DEPARTMENT,
        scope_unit_id=units["990001001"], department_id=area["departments"]["D-CG"], now=NOW,
    )  # fmt: skip
    with area["engine"].connect() as conn:
        assert not conn.execute(select(InspectorGrid).where(InspectorGrid.user_id == created.id)).first()
    entry = _trail(area, "accounts.update")[-1]
    assert json.loads(entry.before)["role"] == "inspector"
    assert json.loads(entry.after)["role"] == "department" and json.loads(entry.after)["inspector_grids"] == 0


def test_an_admin_cannot_change_their_own_role_or_scope(area):
    city = _user(area, "city")
    with pytest.raises(AccountRefused, match="不能修改自己的"):
        accounts.update_account(
            _uow(area), actor=city, user_id=city.id, role=Role.ADMIN,
            scope_unit_id=area["units"]["990001"], department_id=None, now=NOW,
        )  # fmt: skip


def test_a_changed_scope_ends_the_accounts_open_session(area):
    from services.access import verified_user

    leader = _login(area, "fang_leader", "admin-pass-1")
    accounts.update_account(
        _uow(area), actor=_user(area, "city"), user_id=leader.id, role=Role.TOWNSHIP_LEADER,
        scope_unit_id=area["units"]["990001001001"], department_id=None, now=NOW,
    )  # fmt: skip
    with area["engine"].connect() as conn:
        assert verified_user(conn, leader) is None


def test_a_locked_account_shows_its_lock_in_the_list(area):
    with area["engine"].begin() as conn:
        conn.execute(
            update(User).where(User.username == "fang_leader").values(locked_until=NOW + timedelta(minutes=9))
        )
    with area["engine"].connect() as conn:
        listed = {a.username: a for a in accounts.list_accounts(conn, _user(area, "city"), now=NOW)}
        later = {
            a.username: a
            for a in accounts.list_accounts(conn, _user(area, "city"), now=NOW + timedelta(hours=1))
        }
    assert listed["fang_leader"].locked_until == NOW + timedelta(minutes=9)
    assert later["fang_leader"].locked_until is None


# ------------------------------------------------------------------------------------------ import


def _csv(*lines: str, encoding: str = "utf-8") -> bytes:
    return "\n".join([HEADER, *lines]).encode(encoding)


GOOD = [
    "zhang_san,张三,乡镇领导,990001001,,13812345678,zhang-pass-1",
    "li_si,李四,网格员,990001001002,,,",
    "wang_wu,王五,部门处置人员,990001,D-CGX,,",
    "zhao_liu,赵六,command_center,990001,,,",
]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"], ids=["utf8", "utf8-bom", "gbk"])
def test_an_import_creates_every_account_of_a_csv_in_each_encoding(area, encoding):
    result = accounts.import_accounts(
        _uow(area),
        actor=_user(area, "county"),
        data=_csv(*GOOD, encoding=encoding),
        filename="账号.csv",
        now=NOW,
    )
    assert result.ok and [c.row for c in result.created] == [2, 3, 4, 5]
    assert [c.temporary_password is None for c in result.created] == [True, False, False, False]
    wang = _row(area, "wang_wu")
    assert (wang.role, wang.department_id) == (Role.DEPARTMENT, area["departments"]["D-CGX"])
    assert _row(area, "zhang_san").display_name == "张三" and _row(area, "zhang_san").must_change_password
    assert _login(area, "li_si", result.created[1].temporary_password).role is Role.INSPECTOR
    trail = _trail(area, "accounts.create")
    assert len(trail) == 4 and {e.reason for e in trail} == {"批量导入：账号.csv"}


def test_an_import_reads_an_xlsx_with_codes_and_phones_as_text(area):
    frame = pd.DataFrame([r.split(",") for r in GOOD], columns=HEADER.split(","))
    out = io.BytesIO()
    frame.to_excel(out, index=False)
    result = accounts.import_accounts(
        _uow(area), actor=_user(area, "city"), data=out.getvalue(), filename="账号.xlsx", now=NOW
    )
    assert result.ok and len(result.created) == 4
    assert _row(area, "zhang_san").phone == "13812345678"


def test_an_import_says_what_its_reader_assumed(area):
    """The staff import read a sheet below its title row, or with its columns written in full-width digits,
    without saying so: the venue import shows the reader's notes, the staff one now does too."""
    data = "\n".join(["方城区账号清单", HEADER, GOOD[0]]).encode("utf-8")
    result = accounts.import_accounts(
        _uow(area), actor=_user(area, "county"), data=data, filename="账号.csv", now=NOW
    )
    assert result.ok and [c.row for c in result.created] == [3]
    assert any("第 1 行" in note for note in result.notes), result.notes
    # and a code typed with full-width digits finds its unit
    wide = GOOD[1].replace("990001001002", "９９０００１００１００２")
    result = accounts.import_accounts(
        _uow(area), actor=_user(area, "county"), data=_csv(wide), filename="账号.csv", now=NOW
    )
    assert result.ok, result.errors


def test_one_bad_row_writes_nothing_and_every_problem_names_its_row(area):
    data = _csv(
        GOOD[0],
        "Zhang_San,张三二,乡镇领导,990001001,,,",  # 3: the same name as row 2, another case
        "fang_leader,重名,乡镇领导,990001001,,,",  # 4: already in the store
        "ok_one,好人,镇长,990001001,,,",  # 5: not a role
        "far_one,远人,乡镇领导,990002001,,,",  # 6: outside the county
        "nowhere,无处,乡镇领导,123456,,,",  # 7: no such unit
        "handler,无部门,部门处置人员,990001,,,",  # 8: department missing
        "bad phone,坏号,乡镇领导,990001001,,12345,short",  # 9: four problems
        encoding="gbk",
    )
    result = accounts.import_accounts(
        _uow(area), actor=_user(area, "county"), data=data, filename="a.csv", now=NOW
    )
    assert not result.ok and not result.created
    got = {(e.row, e.field): e.reason for e in result.errors}
    assert got[(3, "用户名")] == "与第 2 行的用户名重复"
    assert got[(4, "用户名")] == "该用户名已存在，请换一个"
    assert "不是角色之一" in got[(5, "角色")]
    assert "不在您的管辖范围内" in got[(6, "管辖区划编码")]
    assert "找不到编码为 123456" in got[(7, "管辖区划编码")]
    assert got[(8, "部门")] == "部门处置人员须选择所属部门"
    assert {f for r, f in got if r == 9} == {"用户名", "手机号", "初始密码"}
    assert 2 not in {r for r, _ in got}
    assert [e.row for e in result.errors] == sorted(e.row for e in result.errors)
    assert _row(area, "zhang_san") is None and not _trail(area)


def test_a_file_that_cannot_be_read_is_refused_in_chinese(area):
    county = _user(area, "county")
    with pytest.raises(TableError, match="缺少列：管辖区划编码"):
        accounts.import_accounts(
            _uow(area), actor=county, data="用户名,姓名,角色\n".encode(), filename="a.csv", now=NOW
        )
    with pytest.raises(TableError, match="没有账号"):
        accounts.import_accounts(_uow(area), actor=county, data=_csv(), filename="a.csv", now=NOW)
    with pytest.raises(TableError, match="仅支持"):
        accounts.import_accounts(_uow(area), actor=county, data=b"x", filename="a.txt", now=NOW)


def test_the_template_has_the_documented_columns_and_notes(area):
    sheets = pd.read_excel(io.BytesIO(accounts.import_template("990001")), sheet_name=None, dtype=str)
    assert list(sheets["账号"].columns) == accounts.COLUMNS
    assert list(sheets["说明"]["列"]) == accounts.COLUMNS
    notes = " ".join(sheets["说明"].astype(str).to_numpy().ravel())
    assert "如 990001" in notes and "330802" not in notes  # the user's own code, not the demo's
    from services import departments

    unit = pd.read_excel(io.BytesIO(departments.import_template("990001")), sheet_name=None, dtype=str)
    assert "如 990001" in " ".join(unit["说明"].astype(str).to_numpy().ravel())


def test_no_audit_row_carries_password_material(area):
    created = _create(area, password=None)
    accounts.reset_password(_uow(area), actor=_user(area, "city"), user_id=created.id, now=NOW)
    accounts.import_accounts(
        _uow(area), actor=_user(area, "city"), data=_csv(*GOOD), filename="a.csv", now=NOW
    )
    text = " ".join(f"{e.before} {e.after} {e.reason}" for e in _trail(area))
    assert "$argon2" not in text and "zhang-pass-1" not in text and "password_hash" not in text
    assert created.temporary_password not in text and "13812345678" not in text


# ------------------------------------------------------------------------------------------ first administrator


@pytest.fixture
def empty_area(empty_engine):
    """The square area and no account at all."""
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    return {"engine": empty_engine, "units": ids}


def _first(engine, username="first_admin", password="first-pass-1", repeat=None, **kw):
    return accounts.create_first_admin(
        UnitOfWork(engine), username=username, display_name="首任管理员", password=password,
        repeat=password if repeat is None else repeat, now=NOW, **kw,
    )  # fmt: skip


def test_the_first_admin_of_an_empty_store_is_scoped_to_the_top_unit_and_logs_in(empty_area):
    engine = empty_area["engine"]
    with engine.connect() as conn:
        assert not accounts.has_accounts(conn)
    admin = _first(engine)
    assert (admin.role, admin.scope_unit_id) == (Role.ADMIN, empty_area["units"]["990000"])
    assert authenticate(UnitOfWork(engine), "first_admin", "first-pass-1", NOW).id == admin.id
    with engine.connect() as conn:
        assert accounts.has_accounts(conn) and not must_change_password(conn, admin.id)
        (entry,) = conn.execute(select(AuditLog)).all()
    assert (entry.action, entry.actor_role, entry.entity_id) == (
        "accounts.first_admin",
        "anonymous",
        admin.id,
    )


def test_once_any_account_exists_the_first_run_is_closed(empty_area):
    _first(empty_area["engine"])
    with pytest.raises(FirstRunClosed, match="已有账号"):
        _first(empty_area["engine"], username="second_admin")


def test_the_first_admins_password_is_typed_twice_alike(empty_area):
    with pytest.raises(FieldProblems) as caught:
        _first(empty_area["engine"], password="first-pass-1", repeat="first-pass-2")
    assert caught.value.problems == {"再次输入密码": "两次输入的密码不一致，请重新输入"}


def test_a_store_without_units_asks_for_boundaries_first(empty_engine):
    with pytest.raises(AccountRefused, match=r"python -m services\.boundaries"):
        _first(empty_engine)


def test_with_several_top_units_the_first_admin_chooses_one_of_them(empty_engine):
    from services.geography import store_units

    with empty_engine.begin() as conn:
        ids = store_units(conn, square_area_units().query("level != 'city'").assign(
            parent_code=lambda f: f["parent_code"].where(f["level"] != "county", None)
        ))  # fmt: skip
        ids |= store_units(
            conn,
            _second_county().assign(
                parent_code=lambda f: f["parent_code"].where(f["level"] != "county", None)
            ),
        )
    with pytest.raises(FieldProblems, match="请选择管辖区划"):
        _first(empty_engine)
    with pytest.raises(FieldProblems, match="请选择管辖区划"):
        _first(empty_engine, scope_unit_id=ids["990001001"])  # not a top unit
    assert _first(empty_engine, scope_unit_id=ids["990002"]).scope_unit_id == ids["990002"]


def test_two_simultaneous_first_run_submissions_create_exactly_one_admin(empty_area):
    engine = empty_area["engine"]
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def submit(name: str) -> None:
        barrier.wait()
        try:
            _first(engine, username=name)
            outcomes.append("created")
        except FirstRunClosed:
            outcomes.append("closed")

    threads = [threading.Thread(target=submit, args=(f"admin_{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["closed", "created"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(User)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(AuditLog)).scalar() == 1


def test_the_command_line_creates_an_admin_with_the_password_asked_twice(empty_area):
    url = empty_area["engine"].url.render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "services.accounts",
        "create-admin",
        "--username",
        "ops_admin",
        "--scope-code",
        "990001",
    ]
    ran = subprocess.run(
        args, input="cli-pass-123\ncli-pass-123\n", capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert ran.returncode == 0, ran.stderr
    assert "已创建管理员 ops_admin" in ran.stdout and "cli-pass-123" not in ran.stdout + ran.stderr
    admin = authenticate(UnitOfWork(empty_area["engine"]), "ops_admin", "cli-pass-123", NOW)
    assert (admin.role, admin.scope_unit_id) == (Role.ADMIN, empty_area["units"]["990001"])
    again = subprocess.run(
        args, input="cli-pass-123\nother-pass-1\n", capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert again.returncode == 1 and "两次输入的密码不一致" in again.stderr


def test_the_top_units_are_what_the_first_run_form_offers(empty_area):
    with empty_area["engine"].connect() as conn:
        assert accounts.top_units(conn) == [(empty_area["units"]["990000"], "方城市", "990000")]
