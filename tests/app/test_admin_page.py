"""账号管理 (/admin), the first-run form and the forced password change under AppTest, on a store of their own."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import insert, select, update
from streamlit.testing.v1 import AppTest

from db.engine import session_factory
from db.models import AuditLog, Department, User
from db.uow import UnitOfWork
from domain.vocabulary import Role
from services.auth import _current, authenticate, hash_password
from services.tabular import RowError
from tests.app.conftest import page
from tests.builders import make_square_area

NOW = datetime(2026, 11, 21, 9, 0)


def _add(conn, username, role, scope, **extra) -> int:
    return conn.execute(
        insert(User).returning(User.id),
        {
            "username": username,
            "display_name": extra.pop("display_name", username),
            "role": role,
            "scope_unit_id": scope,
            "password_hash": hash_password("admin-pass-1"),
            "created_at": NOW,
            **extra,
        },
    ).scalar_one()


@pytest.fixture
def square(empty_engine, monkeypatch):
    """The square area with a city administrator and a township leader (with a phone)."""
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        admin = _add(conn, "city_admin", Role.ADMIN, ids["990000"], display_name="市管理员")
        leader = _add(conn, "fang_leader", Role.TOWNSHIP_LEADER, ids["990001001"], phone="13812345678")
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return {"engine": empty_engine, "units": ids, "admin": admin, "leader": leader}


def _as(square, user_id: int):
    with session_factory(square["engine"])() as s:
        return _current(s.get(User, user_id))


def _open(square, user_id: int | None = None) -> AppTest:
    at = page("pages/admin.py")
    at.session_state["current_user"] = _as(square, user_id or square["admin"])
    return at.run()


def _row(square, username):
    with session_factory(square["engine"])() as s:
        return s.execute(select(User).where(User.username == username)).scalar_one_or_none()


def _plain(element) -> str:
    """An element's text as read on screen (user text is Markdown-escaped: fang\\_leader shows fang_leader)."""
    return element.value.replace("\\", "")


def _actions(square) -> list[str]:
    with square["engine"].connect() as conn:
        return list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())


# ------------------------------------------------------------------------------------------ the list


def test_the_admin_sees_every_account_of_the_scope_with_masked_phones(square):
    at = _open(square)
    assert not at.exception and not at.error
    assert at.title[0].value == "账号管理"
    assert [t.label for t in at.tabs] == ["账号列表", "新建账号", "批量导入", "部门管理", "接口密钥"]
    table = at.dataframe[0].value
    assert list(table["用户名"]) == ["city_admin", "fang_leader"]
    assert list(table["手机号"]) == ["", "138****5678"] and "13812345678" not in table.to_csv()
    assert list(table["角色"]) == ["系统管理员", "乡镇领导"]
    # no jobs runner has run on this store: the administrator is told, with what to start
    assert [w.value for w in at.warning if w.value.startswith("定时任务从未运行")]


def test_the_list_filters_by_role_status_and_text(square):
    at = _open(square)
    at.selectbox(key="adm_f_role").set_value(Role.TOWNSHIP_LEADER).run()
    assert list(at.dataframe[0].value["用户名"]) == ["fang_leader"]
    at.selectbox(key="adm_f_role").set_value(None).run()
    at.text_input(key="adm_f_text").input("CITY").run()
    assert list(at.dataframe[0].value["用户名"]) == ["city_admin"]
    at.selectbox(key="adm_f_status").set_value("停用").run()
    assert at.dataframe[0].value.empty


def test_the_admins_own_account_offers_no_actions(square):
    at = _open(square)
    at.selectbox(key="adm_pick").set_value(square["admin"]).run()
    assert any("这是您自己的账号" in i.value for i in at.info)
    assert f"adm_reset_{square['admin']}" not in [b.key for b in at.button]


# ------------------------------------------------------------------------------------------ actions


def test_resetting_a_password_shows_the_temporary_password_once(square):
    at = _open(square)
    at.selectbox(key="adm_pick").set_value(square["leader"]).run()
    at.button(key=f"adm_reset_{square['leader']}").click().run()
    assert not at.exception
    assert "已重置 fang_leader 的密码" in _plain(at.success[0])
    word = at.code[0].value
    assert authenticate(UnitOfWork(square["engine"]), "fang_leader", word, NOW).username == "fang_leader"
    assert _row(square, "fang_leader").must_change_password
    at.run()  # the next run no longer shows it
    assert not at.code and not at.success


def test_disabling_and_enabling_an_account_from_the_page(square):
    at = _open(square)
    at.selectbox(key="adm_pick").set_value(square["leader"]).run()
    at.button(key=f"adm_toggle_{square['leader']}").click().run()
    assert "已停用账号 fang_leader" in _plain(at.success[0])
    assert list(at.dataframe[0].value["状态"]) == ["启用", "停用"]
    assert at.button(key=f"adm_toggle_{square['leader']}").label == "启用账号"
    at.button(key=f"adm_toggle_{square['leader']}").click().run()
    assert _row(square, "fang_leader").is_active
    assert _actions(square) == ["accounts.disable", "accounts.enable"]


def test_changing_an_accounts_scope_through_the_picker(square):
    units, leader = square["units"], square["leader"]
    at = _open(square)
    at.selectbox(key="adm_pick").set_value(leader).run()
    # The picker opens on the account's scope (city > county > township); choose the township's 东村.
    assert at.selectbox(key=f"adm_e_scope_{leader}_{units['990001']}").value == units["990001001"]
    at.selectbox(key=f"adm_e_scope_{leader}_{units['990001001']}").set_value(units["990001001001"]).run()
    at.button(key=f"adm_save_{leader}").click().run()
    assert not at.exception and "已修改账号 fang_leader" in _plain(at.success[0])
    assert _row(square, "fang_leader").scope_unit_id == units["990001001001"]


# ------------------------------------------------------------------------------------------ creating


def _fill_new(at, **values):
    for key, value in values.items():
        at.text_input(key=f"adm_n_{key}_0").input(value)
    return at


def test_the_admin_creates_a_township_leader_with_an_initial_password(square):
    units = square["units"]
    at = _open(square)
    _fill_new(at, user="new_leader", name="新镇长", pw="initial-pass")
    at.selectbox(key="adm_n_role_0").set_value(Role.TOWNSHIP_LEADER)
    at.selectbox(key=f"adm_n_scope_0_{units['990000']}").set_value(units["990001"]).run()
    at.selectbox(key=f"adm_n_scope_0_{units['990001']}").set_value(units["990001001"]).run()
    at.button(key="adm_create").click().run()
    assert not at.exception and not at.error
    assert "已创建账号 new_leader" in _plain(at.success[0]) and not at.code  # the typed password is not shown
    row = _row(square, "new_leader")
    assert (row.role, row.scope_unit_id, row.must_change_password) == (
        Role.TOWNSHIP_LEADER,
        units["990001001"],
        True,
    )
    assert at.text_input(key="adm_n_user_1").value == ""  # a fresh form for the next one


def test_a_new_account_without_a_password_shows_the_generated_one_once(square):
    units = square["units"]
    at = _open(square)
    _fill_new(at, user="wg_one", name="网格员甲")
    at.selectbox(key="adm_n_role_0").set_value(Role.INSPECTOR)
    at.selectbox(key=f"adm_n_scope_0_{units['990000']}").set_value(units["990001"]).run()
    at.selectbox(key=f"adm_n_scope_0_{units['990001']}").set_value(units["990001001"]).run()
    at.button(key="adm_create").click().run()
    assert len(at.code[0].value) == 12


def test_every_problem_of_a_new_account_is_shown_and_the_form_keeps_what_was_typed(square):
    at = _open(square)
    _fill_new(at, user="9bad", phone="123")
    at.selectbox(key="adm_n_role_0").set_value(Role.DEPARTMENT).run()
    at.button(key="adm_create").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("用户名：") for e in errors) and any(e.startswith("姓名：") for e in errors)
    assert any(e.startswith("手机号：") for e in errors) and any(e.startswith("部门：") for e in errors)
    assert at.text_input(key="adm_n_user_0").value == "9bad"
    assert _row(square, "9bad") is None


def test_a_department_handler_picks_a_department_of_the_chosen_scope(square):
    units = square["units"]
    at = _open(square)
    _fill_new(at, user="cg_handler", name="城管队员")
    at.selectbox(key="adm_n_role_0").set_value(Role.DEPARTMENT)
    at.selectbox(key=f"adm_n_scope_0_{units['990000']}").set_value(units["990001"]).run()
    at.selectbox(key=f"adm_n_scope_0_{units['990001']}").set_value(units["990001001"]).run()
    box = at.selectbox(key="adm_n_dept_0")
    assert box.options == ["（请选择部门）", "方城街道综合执法中队（D-CG）"]
    box.select_index(1).run()
    at.button(key="adm_create").click().run()
    assert not at.error and _row(square, "cg_handler").department_id == _dept_id(square)


def _dept_id(square) -> int:
    from db.models import Department

    with square["engine"].connect() as conn:
        return conn.execute(select(Department.id).where(Department.code == "D-CG")).scalar_one()


# ------------------------------------------------------------------------------------------ import


def test_the_import_tab_offers_the_template(square):
    at = _open(square)
    labels = [d.proto.label for d in at.get("download_button")]
    assert labels == ["下载导入模板（XLSX）", "下载部门导入模板（XLSX）"]  # accounts', then departments'


def _import_result(result):
    from components.account_forms import show_import_result

    show_import_result(result)


def test_an_import_with_problems_shows_them_as_row_field_problem(square):
    from services.accounts import ImportResult

    errors = ImportResult(errors=[RowError(3, "用户名", "与第 2 行的用户名重复")])
    at = AppTest.from_function(_import_result, args=(errors,), default_timeout=30).run()
    assert "未导入任何账号" in at.error[0].value
    assert list(at.dataframe[0].value.columns) == ["行号", "字段", "问题"]
    assert at.dataframe[0].value.iloc[0].tolist() == [3, "用户名", "与第 2 行的用户名重复"]


# ------------------------------------------------------------------------------------------ refusal


def test_a_township_leader_is_refused(square):
    at = _open(square, square["leader"])
    assert any("无权访问" in e.value for e in at.error)
    assert not at.dataframe


# ------------------------------------------------------------------------------------------ forced change


def _gate():
    # app.py's step after the session's user is checked (AppTest reruns only the page after a first run).
    import streamlit as st

    from components.auth import current_user, password_change_required

    if not password_change_required(current_user()):
        st.write("已进入系统")


def _login_form():
    from components.auth import login_form

    login_form()


def _must_change(square) -> None:
    with square["engine"].begin() as conn:
        conn.execute(update(User).where(User.id == square["leader"]).values(must_change_password=True))


def test_the_app_shows_a_user_who_must_change_the_password_only_the_change_form(square):
    _must_change(square)
    at = page("app.py")
    at.session_state["current_user"] = _as(square, square["leader"])
    at.session_state["_logged_in_with_set_password"] = square["leader"]
    at.run()
    assert not at.exception
    assert at.title[0].value == "修改密码"
    assert [t.label for t in at.text_input] == ["新密码", "再次输入新密码"]
    assert not at.metric and not at.dataframe and "退出登录" in [b.label for b in at.button]


def test_after_logging_in_with_a_set_password_the_new_one_is_typed_twice_and_the_change_lifted(square):
    _must_change(square)
    at = AppTest.from_function(_login_form, default_timeout=30).run()
    at.text_input[0].input("fang_leader")
    at.text_input[1].input("admin-pass-1")
    at.button[0].click().run()
    assert at.session_state["_logged_in_with_set_password"] == square["leader"]
    gate = AppTest.from_function(_gate, default_timeout=30)
    gate.session_state["current_user"] = at.session_state["current_user"]
    gate.session_state["_logged_in_with_set_password"] = square["leader"]
    gate.run()
    gate.text_input[0].input("leader-own-1")
    gate.text_input[1].input("leader-own-2")
    gate.button[0].click().run()
    assert any("两次输入的密码不一致" in e.value for e in gate.error)
    gate.text_input[0].input("leader-own-1")
    gate.text_input[1].input("leader-own-1")
    gate.button[0].click().run()
    assert not gate.exception
    assert [m.value for m in gate.markdown] == ["已进入系统"]
    assert not _row(square, "fang_leader").must_change_password
    assert _actions(square) == ["auth.password_change"]


def test_a_session_older_than_a_reset_is_ended_and_asked_to_log_in_again(square):
    _must_change(square)
    at = AppTest.from_function(_gate, default_timeout=30)
    at.session_state["current_user"] = _as(square, square["leader"])
    at.run()
    assert "current_user" not in at.session_state
    assert "已被管理员重置" in at.warning[0].value
    assert [t.label for t in at.text_input] == ["用户名", "密码"]


# ------------------------------------------------------------------------------------------ first run


@pytest.fixture
def no_accounts(empty_engine, monkeypatch):
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return {"engine": empty_engine, "units": ids}


def test_a_visit_to_a_store_without_accounts_offers_to_create_the_first_administrator(no_accounts):
    at = page("app.py").run()
    assert not at.exception
    assert at.subheader[0].value == "创建首个管理员"
    assert [t.label for t in at.text_input] == ["用户名", "姓名", "密码", "再次输入密码"]
    assert at.selectbox[0].value == no_accounts["units"]["990000"] and at.selectbox[0].disabled


def test_the_first_administrator_is_created_and_logged_in_and_the_form_is_gone(no_accounts):
    at = AppTest.from_function(_login_form, default_timeout=30).run()
    for box, value in zip(
        at.text_input, ["first_admin", "首任管理员", "first-pass-1", "first-pass-1"], strict=True
    ):
        box.input(value)
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert at.session_state["current_user"].role is Role.ADMIN
    with session_factory(no_accounts["engine"])() as s:
        assert s.execute(select(User.username)).scalars().all() == ["first_admin"]
    again = AppTest.from_function(_login_form, default_timeout=30).run()
    assert [t.label for t in again.text_input] == ["用户名", "密码"]  # the ordinary login from now on


def test_a_first_run_form_submitted_after_another_browser_was_first_turns_into_the_login(no_accounts):
    at = AppTest.from_function(_login_form, default_timeout=30).run()
    with no_accounts["engine"].begin() as conn:  # another browser was first
        _add(conn, "quick_admin", Role.ADMIN, no_accounts["units"]["990000"])
    for box, value in zip(
        at.text_input, ["late_admin", "迟到者", "first-pass-1", "first-pass-1"], strict=True
    ):
        box.input(value)
    at.button[0].click().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert "current_user" not in at.session_state and _count_users(no_accounts) == 1


def _count_users(store) -> int:
    with session_factory(store["engine"])() as s:
        return len(s.execute(select(User.id)).all())


def test_an_empty_store_without_units_says_to_import_boundaries_first(empty_engine, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    at = page("app.py").run()
    assert not at.exception
    assert "python -m services.boundaries" in at.warning[0].value
    assert not at.text_input


# ------------------------------------------------------------------------------------------ departments


def _departments_table(at):
    return next(d.value for d in at.dataframe if "部门编码" in d.value.columns)


def _department_rows(square) -> list[tuple]:
    with square["engine"].connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(Department.code, Department.name, Department.kind, Department.unit_id)
            )
        ]


def test_the_admin_creates_a_county_department_in_the_department_tab(square):
    units = square["units"]
    at = _open(square)
    assert list(_departments_table(at)["部门名称"]) == ["方城街道综合执法中队"]
    at.selectbox(key=f"adm_d_unit_0_{units['990000']}").set_value(units["990001"]).run()
    at.text_input(key="adm_d_name_0").input("方城区综合行政执法局")
    at.selectbox(key="adm_d_kind_0").set_value("城管").run()
    at.button(key="adm_d_create").click().run()
    assert not at.exception and not at.error
    assert "已新建部门 方城区综合行政执法局（方城区）" in _plain(at.success[0])
    assert ("990001-03", "方城区综合行政执法局", "城管", units["990001"]) in _department_rows(square)
    table = _departments_table(at)
    assert list(table["部门名称"]) == ["方城区综合行政执法局", "方城街道综合执法中队"]  # the county's first
    assert list(table["所属区划"]) == ["方城市 / 方城区", "方城市 / 方城区 / 方城街道"]
    assert at.text_input(key="adm_d_name_1").value == ""  # a fresh form for the next one
    assert _actions(square) == ["departments.create"]


def test_a_refused_department_shows_why_and_keeps_the_form(square):
    units = square["units"]
    at = _open(square)
    at.selectbox(key=f"adm_d_unit_0_{units['990000']}").set_value(units["990001"]).run()
    at.selectbox(key=f"adm_d_unit_0_{units['990001']}").set_value(units["990001001"]).run()
    at.text_input(key="adm_d_name_0").input("方城街道综合执法中队")
    at.selectbox(key="adm_d_kind_0").set_value("城管").run()
    at.button(key="adm_d_create").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("部门名称：") and "已有名为" in e for e in errors)
    assert any(e.startswith("类型：") and "同一区划每类只能有一个部门" in e for e in errors)
    assert at.text_input(key="adm_d_name_0").value == "方城街道综合执法中队"
    assert len(_department_rows(square)) == 1 and _actions(square) == []


def test_renaming_and_disabling_a_department_from_the_page(square):
    at = _open(square)
    with square["engine"].connect() as conn:
        dept = conn.execute(select(Department.id)).scalar_one()
    at.selectbox(key="adm_d_pick").set_value(dept).run()
    at.text_input(key=f"adm_d_rename_{dept}").input("方城街道执法队")
    at.button(key=f"adm_d_save_{dept}").click().run()
    assert not at.exception and "已修改部门 方城街道执法队" in _plain(at.success[0])
    at.button(key=f"adm_d_toggle_{dept}").click().run()
    assert "已停用部门 方城街道执法队" in _plain(at.success[0])
    assert list(_departments_table(at)["状态"]) == ["停用"]
    assert at.button(key=f"adm_d_toggle_{dept}").label == "启用部门"
    assert _actions(square) == ["departments.update", "departments.disable"]
