"""The role × page matrix: every demo role (and a visitor) opens every page; allowed pages show their content,
refused ones a clear Chinese refusal and none of the page's data, and the refusal is logged."""

from __future__ import annotations

import pytest

from domain.access import PAGE_ROLES
from domain.vocabulary import Role
from tests.app.conftest import page
from tests.security.conftest import ANONYMOUS, DEMO, PAGES, denials, shown_text

#: The pages of the matrix: the shared list and 进度查询 (issue 17), public like 随手拍.
MATRIX_PAGES = {**PAGES, "track": "pages/track.py"}

# Written once from issue #6's role descriptions (账号管理 and 区划导入 from issue #11: administrators only): admin everything; the command centre (city or county)
# the leaders' pages and the wall screen; the township leader their township's leader pages; a department
# handler the events dispatched to them; an inspector their day and their events. 随手拍 and 进度查询
# (issue 17) are open to all.
EXPECTED: dict[str, set[str]] = {
    "demo_admin": {
        "home",
        "risk_map",
        "events",
        "report",
        "inspections",
        "my_day",
        "big_screen",
        "admin",
        "boundaries",
        "track",
    },
    "demo_city": {"home", "risk_map", "events", "report", "inspections", "big_screen", "track"},
    "demo_county": {"home", "risk_map", "events", "report", "inspections", "big_screen", "track"},
    "demo_township": {"home", "risk_map", "events", "report", "inspections", "track"},
    "demo_department": {"home", "events", "report", "track"},
    "demo_inspector": {"home", "events", "report", "my_day", "track"},
    ANONYMOUS: {"report", "track"},
}
ROLE_OF = {
    "demo_admin": Role.ADMIN,
    "demo_city": Role.COMMAND_CENTER,
    "demo_county": Role.COMMAND_CENTER,
    "demo_township": Role.TOWNSHIP_LEADER,
    "demo_department": Role.DEPARTMENT,
    "demo_inspector": Role.INSPECTOR,
}
# What each page shows when it opens (its title), absent from every refusal.
MARKER = {
    "home": "乡镇数字驾驶舱 · 总览",
    "risk_map": "五色图 · 区域平安风险",
    "events": "事件流 · ",
    "report": "上报",
    "inspections": "平安检查",
    "my_day": "我的今日",
    "big_screen": "社会治理指挥大屏",
    "admin": "账号管理",
    "boundaries": "区划导入",
    "track": "进度查询",
}


# What each page's content looks like once it opens: its figures, its map or its form.
CONTENT = {
    "home": lambda at: len(at.metric) >= 5 and at.table,
    "risk_map": lambda at: at.get("deck_gl_json_chart") and at.dataframe,
    "events": lambda at: [m.label for m in at.metric][:4] == ["今日新增", "在办", "超期", "今日办结"],
    "report": lambda at: "事项类别" in [s.label for s in at.selectbox],
    "inspections": lambda at: at.metric and at.dataframe,
    "my_day": lambda at: at.metric or at.warning or at.info,
    "big_screen": lambda at: any("bs-kpis" in m.value for m in at.markdown),
    "admin": lambda at: (
        at.dataframe
        and [t.label for t in at.tabs] == ["账号列表", "新建账号", "批量导入", "部门管理", "接口密钥"]
    ),
    "boundaries": lambda at: len(at.get("file_uploader")) == 1,
    "track": lambda at: [t.label for t in at.text_input] == ["事件编号", "手机号后四位"],
}


def open_page(key: str, user):
    """Run page ``key`` of the matrix as ``user`` (None: a visitor)."""
    at = page(MATRIX_PAGES[key])
    if user is not None:
        at.session_state["current_user"] = user
    return at.run()


def test_the_expected_matrix_is_what_domain_access_grants():
    for username, role in ROLE_OF.items():
        granted = {p for p in MATRIX_PAGES if role in PAGE_ROLES[p]} | {"report"}  # 随手拍 decides itself
        assert granted == EXPECTED[username], username
    assert set(MATRIX_PAGES) <= set(PAGE_ROLES)
    assert PAGE_ROLES["track"] == frozenset(Role)  # public: every role, and visitors (app.PUBLIC)


def test_every_role_is_covered_by_a_demo_account(demo_users):
    assert {u.role for u in demo_users.values()} == set(Role)
    assert {name: demo_users[name].role for name in DEMO} == ROLE_OF


@pytest.mark.parametrize("key", list(MATRIX_PAGES))
@pytest.mark.parametrize("username", [*DEMO, ANONYMOUS])
def test_role_page(store, demo_users, caplog, username, key):
    user = demo_users.get(username)
    at = open_page(key, user)
    assert not at.exception, at.exception
    text = shown_text(at)
    if key in EXPECTED[username]:
        assert MARKER[key] in text
        assert CONTENT[key](at), key
        assert not [e.value for e in at.error], [e.value for e in at.error]
        assert not denials(caplog)
        return
    assert MARKER[key] not in text
    assert not at.dataframe and not at.table and not at.metric
    if user is None:
        # A visitor gets the login form (the wall screen without a token too), never page data.
        assert "请先登录" in text or [t.label for t in at.text_input] == ["用户名", "密码"]
    else:
        assert any("无权访问" in e.value and user.role.label in e.value for e in at.error), text
        assert [(r.user_id, r.role) for r in denials(caplog)] == [(user.id, user.role.value)]
