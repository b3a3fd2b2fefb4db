"""From an empty store to a working county, in a browser: the first administrator, a county boundary file that is
not Quzhou's (海湾县, DataV-style, one island) mapped, previewed and imported in 区划导入, three accounts and the
county's 城管 department made in 账号管理, each account logging in and opening every page it may open without an exception, and a 随手拍 report that
moves up by itself once the clock is past its deadline — under the default rules, with no simulator running, only
the jobs runner's pass (``services.jobs.run_due``)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from db.engine import make_engine
from db.models import AdminUnit, AuditLog, Department, Event, User
from db.uow import UnitOfWork
from demo.bootstrap import ensure_store
from domain.access import PAGE_ROLES
from domain.dispatch import DEPARTMENT_KINDS
from domain.event_flow import Action
from domain.vocabulary import AdminLevel, Role
from services import clock, settings
from services.access import user_scope
from services.auth import user_by_username
from services.event_rules import DISPATCH_KEY
from services.events import act_as
from services.jobs import run_due
from tests import own_area
from tests.e2e.conftest import choose, settle, start_app

TIMEOUT = 60_000
INCIDENT = re.compile(r"事件编号：[0-9A-F]{8}）")


@pytest.fixture
def own_app(new_store_url, tmp_path):
    """The app over a store made as ``make store DEMO=0`` makes it: no demo data, no account."""
    url = new_store_url()
    engine = make_engine(url)
    ensure_store(engine, demo=False)
    with start_app(url, script="serve.py") as base:  # as `make run` serves it: logins kept in the cookie
        yield base, engine, own_area.county_geojson(tmp_path / "海湾县.json")
    engine.dispose()


def _field(page, key: str):
    return page.locator(f".st-key-{key} input")


def _no_exception(page, where: str) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, where
    alerts = " ".join(page.locator("[data-testid='stAlert']").all_inner_texts())
    assert not INCIDENT.search(alerts), (where, alerts)


def _go(page, title: str, heading: str) -> None:
    """Open a page from the menu and wait for its heading (a click during a run is tried again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    link = page.locator("[data-testid='stSidebarNavLink']").filter(has_text=title).first
    for _ in range(3):
        settle(page)
        link.click()
        try:
            page.get_by_role("heading", name=heading).first.wait_for(timeout=20_000)
            settle(page)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"{title} did not open")


def _logout(page) -> None:
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="退出登录").click()
    page.get_by_label("用户名", exact=True).wait_for(timeout=TIMEOUT)


def _first_login(page, base: str, username: str, initial: str, own: str) -> None:
    """Log in with the initial password, then the forced 修改密码."""
    page.goto(base + "/")
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(initial)
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_role("heading", name="修改密码").wait_for(timeout=TIMEOUT)
    page.get_by_label("新密码", exact=True).fill(own)
    page.get_by_label("再次输入新密码", exact=True).fill(own)
    page.get_by_role("button", name="修改密码").click()
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="退出登录").wait_for(timeout=TIMEOUT)
    settle(page)


def _open_every_page(page, role: Role) -> list[str]:
    """Every page in the role's menu, opened from the menu, each settled and checked: no exception, no
    refusal. The wall screen reloads itself once with the viewport's size; the login cookie carries over."""
    sidebar = page.locator("[data-testid='stSidebar']")
    links = sidebar.locator("[data-testid='stSidebarNavLink']").all_inner_texts()
    titles = [t.strip().splitlines()[-1].strip() for t in links]  # after the icon's name
    expected = {key for key, roles in PAGE_ROLES.items() if role in roles and key != "track"}
    assert len(titles) == len(expected), (role, titles)
    # The wall screen hides the menu: it is opened last, and left with the browser's back button.
    for title in sorted(titles, key=lambda t: t == "指挥大屏"):
        sidebar.locator("[data-testid='stSidebarNavLink']").filter(has_text=title).first.click()
        settle(page, after_ms=800)
        page.wait_for_timeout(1_000)  # fragments and maps report once more after the first run
        settle(page)
        _no_exception(page, f"{role.value} {title}")
        assert "无权访问" not in page.locator("[data-testid='stMain']").inner_text(), title
        if title == "指挥大屏":
            page.locator("[data-testid='bs-kpis']").first.wait_for(timeout=TIMEOUT)
            page.go_back()
            sidebar.wait_for(timeout=TIMEOUT)
            settle(page)
    return titles


class _Tab:
    """One tab of 账号管理. A rerun of the page brings its first tab (账号列表) back to the front, so the tab is
    chosen again before each step, and a box that could not be opened is tried again."""

    def __init__(self, page, name: str) -> None:
        self.page, self.name = page, name

    def front(self) -> None:
        settle(self.page)
        self.page.get_by_role("tab", name=self.name).last.click()
        settle(self.page, after_ms=300)

    def pick(self, key: str, index: int) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for _ in range(5):
            self.front()
            try:
                _field(self.page, key).click(timeout=5_000)
                self.page.get_by_role("option").nth(index).click(timeout=5_000)
                return
            except PlaywrightTimeout:
                self.page.keyboard.press("Escape")
        raise AssertionError(f"could not choose option {index} of {key}")

    def type_in(self, key: str, text: str) -> None:
        for _ in range(5):
            self.front()
            field = _field(self.page, key)
            field.fill(text)
            field.press("Enter")  # committed now, not when a later click blurs it mid-run
            settle(self.page, after_ms=500)
            self.front()
            if _field(self.page, key).input_value() == text:
                return
        raise AssertionError(f"{key} did not keep {text!r}")

    def submit(self, button: str, done: str, kept: dict[str, str]) -> None:
        for key, text in kept.items():
            assert _field(self.page, key).input_value() == text, key
        self.page.get_by_role("button", name=button).click()
        self.page.get_by_text(done, exact=False).wait_for(timeout=TIMEOUT)
        settle(self.page)


def _create_account(
    page, gen: int, username: str, name: str, role: Role, township: int | None, county: int
) -> None:
    """账号管理 → 新建账号."""
    tab = _Tab(page, "新建账号")
    tab.type_in(f"adm_n_user_{gen}", username)
    tab.type_in(f"adm_n_name_{gen}", name)
    if role is not Role.TOWNSHIP_LEADER:  # the form's default
        tab.pick(f"adm_n_role_{gen}", list(Role).index(role))
    if township is not None:
        tab.pick(f"adm_n_scope_{gen}_{county}", 1)  # the county's first township
    tab.type_in(f"adm_n_pw_{gen}", "initial-pass-1")
    kept = {f"adm_n_user_{gen}": username, f"adm_n_name_{gen}": name}
    tab.submit("创建账号", f"已创建账号 {username}", kept)


def _create_department(page, name: str, kind: str, code: str) -> None:
    """账号管理 → 部门管理 → 新建部门, at the administrator's own unit (the county: the picker's 本级)."""
    tab = _Tab(page, "部门管理")
    tab.type_in("adm_d_name_0", name)
    tab.pick("adm_d_kind_0", DEPARTMENT_KINDS.index(kind))
    tab.type_in("adm_d_code_0", code)
    tab.submit("新建部门", f"已新建部门 {name}", {"adm_d_name_0": name, "adm_d_code_0": code})


def test_a_county_installs_the_cockpit_on_its_own_boundaries_and_its_timers_run_without_the_demo(
    page, own_app
):
    try:
        _walk_through(page, *own_app)
    except Exception:
        page.screenshot(path="test-results/own_area_failure.png", full_page=True)
        with open("test-results/own_area_failure.txt", "w", encoding="utf-8") as out:
            out.write(page.locator("[data-testid='stMain']").inner_text())
        raise


def _walk_through(page, base, engine, county_file) -> None:

    # 1. First visit: 创建首个管理员 (scoped to the new store's placeholder until the import).
    page.goto(base)
    page.get_by_text("创建首个管理员", exact=True).first.wait_for(timeout=TIMEOUT)
    page.get_by_label("用户名", exact=True).fill("county_admin")
    page.get_by_label("姓名", exact=True).fill("县管理员")
    page.get_by_label("密码", exact=True).fill("admin-pass-1")
    page.get_by_label("再次输入密码", exact=True).fill("admin-pass-1")
    page.get_by_role("button", name="创建首个管理员").click()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("区划导入").wait_for(timeout=TIMEOUT)

    # 2. 区划导入: upload the DataV file; its columns are mapped by themselves; no parent (its city is not here).
    _go(page, "区划导入", "区划导入")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(county_file))
    page.get_by_role("heading", name="1. 字段对应").wait_for(timeout=TIMEOUT)
    settle(page)
    digest = hashlib.sha256(county_file.read_bytes()).hexdigest()[:16]
    assert "DataV" in page.locator("[data-testid='stMain']").inner_text()
    for field, column in (("code", "adcode"), ("name", "name"), ("level", "level"), ("parent", "parent")):
        box = page.locator(f".st-key-bd_map_{field}_{digest}")
        box.locator("input").first.wait_for(timeout=TIMEOUT)  # drawn, not its loading skeleton
        assert f"{column}" in box.inner_html(), field
    page.get_by_text("不设上级（文件的顶层单位即为最高一级）").click()
    settle(page, after_ms=300)
    page.get_by_role("button", name="预览").click()
    page.get_by_text("检查通过", exact=False).wait_for(timeout=TIMEOUT)
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "缺少人口，已按级别和类型估算" in main and "不设上级" in main
    deck = page.locator("[data-testid='stDeckGlJsonChart']").first
    deck.wait_for(timeout=TIMEOUT)
    deck.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=stDeckGlJsonChart] canvas').length >= 1",
        timeout=TIMEOUT,
    )
    page.wait_for_timeout(1_500)
    page.screenshot(path="test-results/own_area_preview.png")  # the outlines as the administrator sees them
    with engine.connect() as conn:  # the preview wrote nothing
        assert conn.execute(select(AdminUnit.code)).scalars().all() == ["000000"]
    _no_exception(page, "preview")
    page.get_by_role("button", name="导入").click()
    page.get_by_text("导入完成", exact=False).wait_for(timeout=TIMEOUT)
    _no_exception(page, "import")

    with engine.connect() as conn:
        county = conn.execute(select(AdminUnit).where(AdminUnit.parent_id.is_(None))).one()
        township = conn.execute(
            select(AdminUnit).where(AdminUnit.parent_id == county.id).order_by(AdminUnit.code)
        ).first()
        village = conn.execute(
            select(AdminUnit).where(AdminUnit.parent_id == township.id).order_by(AdminUnit.code)
        ).first()
        grid = conn.execute(
            select(AdminUnit).where(AdminUnit.parent_id == village.id).order_by(AdminUnit.code)
        ).first()
        island_grids = conn.execute(
            select(AdminUnit.code).where(AdminUnit.level == AdminLevel.GRID, AdminUnit.centroid_lon > 122.05)
        ).all()
    assert (county.code, county.name, AdminLevel(county.level)) == ("990321", "海湾县", AdminLevel.COUNTY)
    assert island_grids, "the island is tiled by grids"

    # 3. 账号管理: a county command centre, a township leader and an inspector of that township.
    _go(page, "账号管理", "账号管理")
    accounts = [
        ("county_centre", "县指挥中心", Role.COMMAND_CENTER, None),
        ("town_leader", "镇领导", Role.TOWNSHIP_LEADER, township.id),
        ("town_inspector", "网格员", Role.INSPECTOR, township.id),
    ]
    for gen, (username, name, role, scope) in enumerate(accounts):
        _create_account(page, gen, username, name, role, scope, county.id)
    # 部门管理: the county's 城管 department, which the township's events are dispatched to.
    _create_department(page, "海湾县综合行政执法局", "城管", "990321-CG")
    _no_exception(page, "admin")
    assert "区划导入" in _open_every_page(page, Role.ADMIN)
    _logout(page)

    # 4. Each logs in (forced 修改密码 first) and opens every page their role may open.
    for username, _, role, _ in accounts:
        _first_login(page, base, username, "initial-pass-1", f"{username}-own-pass")
        opened = _open_every_page(page, role)
        assert "总览" in opened and "事件流" in opened, (username, opened)
        _logout(page)

    # 5. A citizen's 随手拍 in the township (no login), at a grid's centre.
    page.goto(base + "/report")
    page.get_by_label("标题").wait_for(timeout=TIMEOUT)
    settle(page)
    page.get_by_label("经度").fill(f"{grid.centroid_lon:.6f}")
    page.get_by_label("纬度").fill(f"{grid.centroid_lat:.6f}")
    choose(page, page.get_by_label("事项类别"))
    page.get_by_label("标题").fill("海堤护栏损坏")
    page.get_by_label("问题描述").fill("海堤步道护栏断了两段")
    page.get_by_role("button", name="提交").click()
    done = page.get_by_text("上报成功，事件编号", exact=False)
    done.wait_for(timeout=TIMEOUT)
    event_id = int(re.search(r"#(\d+)", done.inner_text()).group(1))
    _no_exception(page, "report")

    # 6. The township leader takes it in hand (受理, 派单 to the department made in 部门管理); then the clock passes
    #    the deadline and only the jobs runner's pass runs, under the store's default rules (decision 0027: an
    #    event of any urgency left unhandled past its deadline moves one level up; no rule was changed).
    with engine.connect() as conn:
        dept, dept_unit = conn.execute(
            select(Department.id, Department.unit_id).where(Department.code == "990321-CG")
        ).one()
        assert settings.read(conn, DISPATCH_KEY) is None  # the defaults, as a fresh store has them
    assert dept_unit == county.id
    with engine.connect() as conn:
        leader = user_by_username(conn, "town_leader")
        scope = user_scope(conn, leader)
    now = clock.now()
    for action, extra in ((Action.ACCEPT, {}), (Action.DISPATCH, {"department_id": dept})):
        act_as(UnitOfWork(engine), leader, scope, event_id=event_id, action=action, now=now, **extra)
    with engine.connect() as conn:
        before = conn.execute(
            select(Event.owner_unit_id, Event.escalations, Event.due_at).where(Event.id == event_id)
        ).one()
    assert before.escalations == 0 and before.owner_unit_id != township.id

    later = before.due_at + timedelta(days=1)  # the clock moved past the handling deadline
    runs = run_due(UnitOfWork(engine), later, only=["escalate"])
    assert runs["escalate"].outcome == "ok" and runs["escalate"].count == 1

    with engine.connect() as conn:
        after = conn.execute(
            select(Event.owner_unit_id, Event.escalations, Event.status).where(Event.id == event_id)
        ).one()
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
        sessions_ok = conn.execute(select(User.is_active).where(User.username == "county_admin")).scalar_one()
    assert after.escalations == 1 and after.owner_unit_id == township.id  # 村 → 乡镇: 上移
    assert "boundaries.import" in actions and sessions_ok

    # 7. The township leader sees it moved up to the township, on /events.
    page.goto(base + "/")
    page.get_by_label("用户名", exact=True).fill("town_leader")
    page.get_by_label("密码", exact=True).fill("town_leader-own-pass")
    page.get_by_role("button", name="登录", exact=True).click()
    page.locator("[data-testid='stSidebar']").get_by_role("button", name="退出登录").wait_for(timeout=TIMEOUT)
    _go(page, "事件流", "事件详情")
    settle(page)
    number = page.get_by_label("事件编号")
    number.fill(str(event_id))
    number.press("Enter")
    settle(page, after_ms=500)
    card = page.get_by_text(f"当前层级：{township.name}", exact=False)
    card.first.wait_for(timeout=TIMEOUT)
    assert page.get_by_text(f"#{event_id} 海堤护栏损坏").count() == 1
    _no_exception(page, "events after the escalation")
    assert page.requests.off_host() == []
