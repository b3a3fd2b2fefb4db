"""From an empty store in a browser: the first administrator, a township leader created in 账号管理, and the
leader's first login forced through 修改密码 before their pages open."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from db.engine import make_engine
from db.migrate import upgrade
from db.models import AuditLog, User
from tests.builders import make_square_area
from tests.e2e.conftest import choose, open_from_menu, settle, start_app, wait_for_app

TIMEOUT = 30_000


@pytest.fixture
def empty_app(new_store_url):
    """The app over a store holding the square area's units and no account at all."""
    url = new_store_url()
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        units = make_square_area(conn)
    with start_app(url) as base:
        yield base, engine, units
    engine.dispose()


def _field(page, key: str):
    """The input of the widget with Streamlit key ``key``."""
    return page.locator(f".st-key-{key} input")


def test_first_admin_creates_a_township_leader_who_must_change_the_password_then_sees_their_pages(
    page, empty_app
):
    base, engine, units = empty_app

    # First visit to an empty store: 创建首个管理员, then logged in as that administrator.
    page.goto(base)
    page.get_by_text("创建首个管理员", exact=True).first.wait_for(timeout=TIMEOUT)
    page.get_by_label("用户名", exact=True).fill("county_admin")
    page.get_by_label("姓名", exact=True).fill("县管理员")
    page.get_by_label("密码", exact=True).fill("admin-pass-1")
    page.get_by_label("再次输入密码", exact=True).fill("admin-pass-1")
    page.get_by_role("button", name="创建首个管理员").click()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("账号管理").wait_for(timeout=TIMEOUT)

    # 账号管理 → 新建账号: a township leader of 方城街道 with an initial password.
    open_from_menu(page, "账号管理", "账号管理", "admin")
    settle(page)
    page.get_by_role("tab", name="新建账号").click()
    _field(page, "adm_n_user_0").fill("fang_leader")
    _field(page, "adm_n_name_0").fill("方城街道书记")
    settle(page, after_ms=300)
    choose(page, _field(page, f"adm_n_scope_0_{units['990000']}"), 1)  # 方城区
    settle(page, after_ms=300)
    choose(page, _field(page, f"adm_n_scope_0_{units['990001']}"), 1)  # 方城街道
    settle(page, after_ms=300)
    page.get_by_text("已选：方城市 / 方城区 / 方城街道").wait_for(timeout=TIMEOUT)
    _field(page, "adm_n_pw_0").fill("initial-pass-1")
    settle(page, after_ms=300)
    page.get_by_role("button", name="创建账号").click()
    page.get_by_text("已创建账号 fang_leader", exact=False).wait_for(timeout=TIMEOUT)

    # Log out; the leader logs in with the initial password and sees only 修改密码.
    sidebar.get_by_role("button", name="退出登录").click()
    page.get_by_role("button", name="退出登录").wait_for(state="detached", timeout=TIMEOUT)
    page.get_by_label("用户名", exact=True).fill("fang_leader")
    page.get_by_label("密码", exact=True).fill("initial-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_role("heading", name="修改密码").wait_for(timeout=TIMEOUT)
    settle(page)  # the login page's citizen links stay on screen (stale) until this run has finished
    # no menu and no links: polled, since stale elements leave just after the run's end
    expect(page.locator("[data-testid='stSidebarNav'], [data-testid='stPageLink']")).to_have_count(
        0, timeout=10_000
    )
    page.get_by_label("新密码", exact=True).fill("leader-own-pass")
    page.get_by_label("再次输入新密码", exact=True).fill("leader-own-pass")
    page.get_by_role("button", name="修改密码").click()

    # Then their pages: the township leader's menu, no 账号管理, and the overview of their township.
    sidebar.get_by_text("五色图").wait_for(timeout=TIMEOUT)
    wait_for_app(page)
    menu = sidebar.inner_text()
    assert "总览" in menu and "事件流" in menu and "账号管理" not in menu and "方城街道书记" in menu
    assert page.get_by_text("乡镇数字驾驶舱 · 总览").count() == 1
    assert page.requests.off_host() == []

    with engine.connect() as conn:
        leader = conn.execute(select(User).where(User.username == "fang_leader")).one()
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
    assert leader.scope_unit_id == units["990001001"] and not leader.must_change_password
    assert actions == ["accounts.first_admin", "accounts.create", "auth.password_change"]
