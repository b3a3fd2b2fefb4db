"""On a phone (390×844, a mobile browser): the inspector stays signed in through a reload and a new tab,
a logout ends the session in every tab, an expired session asks for the password again; a citizen
places a 随手拍 report with 定位, sees its grid and village before submitting, and follows it up by
number and phone digits; no page is wider than the screen. The app runs as ``make run`` serves it:
through serve.py (decision 0017). Screenshots: /tmp/phone-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from db.engine import make_engine
from db.models import LoginSession
from domain.access import SESSION_LIMITS
from domain.vocabulary import Role
from services.auth import user_by_username
from tests.e2e.conftest import choose, settle, start_app

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}
# A phone's browser: Streamlit closes its menu after a choice for mobile user agents.
ANDROID = (
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)
TIMEOUT = 30_000
SHOTS = "/tmp/phone-{}.png"


@pytest.fixture(scope="module")
def base(seeded_store_url) -> Iterator[str]:
    with start_app(seeded_store_url, "serve.py") as url:  # as `make run` starts the app
        yield url


@pytest.fixture
def phone(browser):
    """A phone's browser context (its cookies shared by its tabs) with location granted."""
    context = browser.new_context(
        viewport=PHONE,
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
        user_agent=ANDROID,
    )
    yield context
    context.close()


def shoot(page, name: str) -> None:
    """/tmp/phone-<name>.png of the whole page at phone width (Streamlit scrolls inside its main area,
    so the viewport is made as tall as the content for the picture, then put back)."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebar]')]"
        ".map(e => e.scrollHeight), 844)"
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height), 8000)})
    page.wait_for_timeout(500)
    page.screenshot(path=SHOTS.format(name), full_page=True)
    page.set_viewport_size(size)


def open_menu(page, attempts: int = 3) -> None:
    """Open the collapsed menu (a run that ends meanwhile may redraw the header: wait, try again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        settle(page)
        try:
            page.get_by_test_id("stExpandSidebarButton").click(timeout=10_000)
            page.get_by_test_id("stSidebarNav").wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("the menu did not open")


def sign_in(page, base: str, username: str = "demo_inspector", path: str = "/") -> None:
    page.goto(base + path)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill("demo-cockpit")
    page.get_by_role("button", name="登录", exact=True).click()


def on_my_day(page) -> None:
    page.wait_for_url("**/my_day", timeout=TIMEOUT)
    page.get_by_role("heading", name="我的今日").wait_for(timeout=TIMEOUT)
    settle(page)


def asked_for_password(page) -> None:
    page.get_by_label("密码").wait_for(timeout=TIMEOUT)
    assert not page.get_by_role("heading", name="我的今日").count()


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == "cockpit_session"), None)


def test_the_inspector_lands_on_my_day_and_a_reload_and_a_new_tab_keep_them_signed_in(base, phone):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)  # the inspector's home, not the overview
    cookie = session_cookie(phone)
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    page.reload()
    on_my_day(page)
    assert not page.get_by_label("密码").count()
    shoot(page, "my-day-after-reload")
    bookmark = phone.new_page()  # a new tab at the root, as a bookmark or the home screen opens it
    bookmark.goto(base + "/")
    on_my_day(bookmark)


def test_the_menu_closes_after_a_choice(base, phone):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)
    open_menu(page)
    menu = page.get_by_test_id("stSidebarNav")
    menu.get_by_role("link", name="事件流").click()
    page.wait_for_url("**/events", timeout=TIMEOUT)
    settle(page)
    page.get_by_test_id("stExpandSidebarButton").wait_for(timeout=TIMEOUT)  # collapsed again
    assert not menu.is_visible()


def test_logging_out_in_one_tab_ends_the_session_in_the_other(base, phone, seeded_store_url):
    first, second = phone.new_page(), phone.new_page()
    sign_in(first, base)
    on_my_day(first)
    second.goto(base + "/my_day")
    on_my_day(second)
    open_menu(first)
    first.get_by_role("button", name="退出登录").click()
    asked_for_password(first)
    assert session_cookie(phone) is None
    second.get_by_role("button", name="明天").click()  # the other tab's next run
    asked_for_password(second)
    second.get_by_text("已在其他页面退出登录", exact=False).wait_for(timeout=TIMEOUT)
    shoot(second, "logged-out-in-the-other-tab")
    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        uid = user_by_username(conn, "demo_inspector").id
        last = conn.execute(
            select(LoginSession.end_reason)
            .where(LoginSession.user_id == uid)
            .order_by(LoginSession.id.desc())
        ).first()
    engine.dispose()
    assert last.end_reason == "logout"


def test_an_expired_session_asks_for_the_password_again(base, phone, seeded_store_url):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)
    # Half a day and a minute without use, as the store records it (the check reads the real clock).
    engine = make_engine(seeded_store_url)
    with engine.begin() as conn:
        uid = user_by_username(conn, "demo_inspector").id
        sid = conn.execute(
            select(LoginSession.id).where(LoginSession.user_id == uid).order_by(LoginSession.id.desc())
        ).scalar()
        row = conn.execute(select(LoginSession.last_seen_at).where(LoginSession.id == sid)).one()
        idle = SESSION_LIMITS[Role.INSPECTOR].idle + timedelta(minutes=1)
        conn.execute(update(LoginSession).where(LoginSession.id == sid).values(last_seen_at=row[0] - idle))
    page.reload()
    asked_for_password(page)
    page.get_by_text("长时间未操作", exact=False).wait_for(timeout=TIMEOUT)
    shoot(page, "expired-session")
    with engine.connect() as conn:
        assert conn.execute(select(LoginSession.end_reason).where(LoginSession.id == sid)).scalar() == "idle"
    engine.dispose()
    sign_in(page, base)  # the password again: back to work
    on_my_day(page)


# --------------------------------------------------------------------------------------------------
# 随手拍 with 定位, then 进度查询
# --------------------------------------------------------------------------------------------------


def a_grid_away_from_the_default_focus(store_url: str):
    """A grid of the demo store other than the one the picker opens on, a point inside it, its village."""
    import shapely

    from domain.vocabulary import AdminLevel
    from services.geography import default_focus, load_units, tree
    from services.locate import locate_grid

    engine = make_engine(store_url)
    with engine.connect() as conn:
        start = locate_grid(conn, *default_focus(conn))
        grids = load_units(conn, AdminLevel.GRID)
        units = tree(conn)
    engine.dispose()
    start_village = units.grid_village(start)
    grid = next(
        g
        for g in grids.itertuples()
        if g.id != start and units.grid_village(g.id) != start_village and "网格" in g.name
    )
    point = shapely.point_on_surface(grid.geometry)
    return grid.id, grid.name, units.name(units.grid_village(grid.id)), point.x, point.y


def test_a_report_placed_with_locate_lands_in_its_grid_and_the_citizen_follows_it_up(
    base, browser, seeded_store_url
):
    grid_id, grid_name, village_name, lon, lat = a_grid_away_from_the_default_focus(seeded_store_url)
    context = browser.new_context(
        viewport=PHONE,
        locale="zh-CN",
        is_mobile=True,
        has_touch=True,
        user_agent=ANDROID,
        geolocation={"latitude": lat, "longitude": lon},
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.goto(base + "/report")
    where = page.get_by_test_id("pick-where")
    where.wait_for(timeout=TIMEOUT)
    assert grid_name not in where.inner_text()
    picker = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    picker.get_by_role("button", name="定位").click()
    page.wait_for_function(
        "([g, v]) => { const w = document.querySelector('[data-testid=pick-where]');"
        " return !!w && w.innerText.includes(g) && w.innerText.includes(v); }",
        arg=[grid_name, village_name],
        timeout=TIMEOUT,
    )
    settle(page)
    shoot(page, "report-located")

    choose(page, page.get_by_label("事项类别"))
    page.get_by_label("标题").fill("测试：定位上报的占道堆物")
    page.get_by_label("问题描述").fill("店门口堆满纸箱，行人只能走车道")
    page.get_by_label("联系电话（可选）").fill("13955557391")
    page.get_by_role("button", name="提交").click()
    settle(page, after_ms=300)
    anyway = page.get_by_role("button", name="不是同一件事，仍然新建")
    if anyway.count():
        anyway.click()
    done = page.get_by_text("上报成功，事件编号", exact=False)
    done.wait_for(timeout=TIMEOUT)
    number = int(re.search(r"事件编号 #(\d+)（未附照片）", done.inner_text()).group(1))  # said: no photo
    settle(page)
    assert page.get_by_label("标题").input_value() == ""  # a new, empty form for the next report
    shoot(page, "report-sent")
    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        from db.models import Event

        assert conn.execute(select(Event.grid_id).where(Event.id == number)).scalar() == grid_id
    engine.dispose()

    page.get_by_role("link", name="查询处理进度").click()
    page.wait_for_url("**/track", timeout=TIMEOUT)
    page.get_by_label("事件编号").fill(str(number))
    page.get_by_label("手机号后四位").fill("7391")
    page.get_by_role("button", name="查询").click()
    page.get_by_text("当前状态：已上报", exact=False).wait_for(timeout=TIMEOUT)
    body = page.locator("[data-testid=stMain]").inner_text()
    assert f"事件 #{number}" in body and "13955557391" not in body and "店门口堆满纸箱" not in body
    shoot(page, "track-found")
    context.close()


# --------------------------------------------------------------------------------------------------
# Nothing wider than the phone
# --------------------------------------------------------------------------------------------------

WIDTHS = """() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,
  document.body.scrollWidth]"""
TITLE_LINES = """() => [...document.querySelectorAll('[data-testid=stMain] h1')].map(h => {
  const bottoms = new Set(), walk = document.createTreeWalker(h, NodeFilter.SHOW_TEXT);
  for (let t = walk.nextNode(); t; t = walk.nextNode()) {
    if (!t.textContent.trim()) continue;
    const range = document.createRange(); range.selectNodeContents(t);
    for (const r of range.getClientRects()) if (r.width > 0) bottoms.add(Math.round(r.bottom));
  }
  return bottoms.size; })"""


def fits(page, name: str) -> None:
    """The page has run and drawn its maps; the document is no wider than the screen; a screenshot."""
    settle(page)
    page.wait_for_timeout(1500)  # maps and fragments fill in after the run
    settle(page)
    document, viewport, body = page.evaluate(WIDTHS)
    title_lines = page.evaluate(TITLE_LINES)
    shoot(page, name)
    assert document <= viewport and body <= viewport, (name, document, body, viewport)
    assert all(n == 1 for n in title_lines), (name, title_lines)  # the title fits on one line
    assert not page.get_by_text("Press Enter", exact=False).count()
    assert not page.get_by_text("Page not found", exact=False).count()


def test_no_page_is_wider_than_the_phone_for_the_inspector_or_the_citizen(base, phone, browser):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)
    for key in ("my_day", "home", "events", "report", "track"):
        page.goto(f"{base}/{key}")
        page.wait_for_url(f"**/{key}", timeout=TIMEOUT)
        fits(page, f"inspector-{key}")
    page.goto(f"{base}/my_day")
    page.locator("[class*='st-key-md_open_'] button").first.click()
    page.get_by_test_id("venue-card").wait_for(timeout=TIMEOUT)
    fits(page, "inspector-venue-card")

    for width in (PHONE["width"], 360):  # a 390 px phone and a smaller 360 px one
        citizen = browser.new_context(
            viewport={**PHONE, "width": width},
            locale="zh-CN",
            is_mobile=True,
            has_touch=True,
            user_agent=ANDROID,
        )
        page = citizen.new_page()
        for key, shown in (("", "用户名"), ("report", "事项类别"), ("track", "手机号后四位")):
            page.goto(f"{base}/{key}")
            page.get_by_text(shown).first.wait_for(timeout=TIMEOUT)
            fits(page, f"citizen-{key or 'login'}" + ("" if width == PHONE["width"] else f"-{width}"))
        citizen.close()


# --------------------------------------------------------------------------------------------------
# An inspection form survives a reload
# --------------------------------------------------------------------------------------------------


def test_an_unsaved_inspection_comes_back_after_a_reload(base, phone):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)
    page.locator("[class*='st-key-md_open_'] button").first.click()
    card = page.get_by_test_id("venue-card")
    card.wait_for(timeout=TIMEOUT)
    settle(page)
    venue = card.get_attribute("data-venue")

    def unfold() -> None:  # another test on this store may have checked the venue today: its form is folded
        again = page.locator("[data-testid='stExpander'] summary").filter(has_text="再次登记检查")
        option = page.locator("[class*='st-key-md_item_']").first.get_by_text("不合格", exact=True)
        # Either the open form's first answer or the folded form's title is drawn before looking which.
        expect(again.or_(option).first).to_be_visible(timeout=TIMEOUT)
        if again.count() and again.first.get_attribute("aria-expanded") != "true":
            again.first.click()
            settle(page)

    unfold()
    first_item = page.locator("[class*='st-key-md_item_']").first
    note = "消防通道堆放纸箱，已当面告知店主"

    def kept(text: str):  # the store answered 204 to a draft carrying ``text``
        return lambda r: "/auth/draft" in r.url and r.status == 204 and text in (r.request.post_data or "")

    with page.expect_response(kept('"md_item_'), timeout=TIMEOUT):
        first_item.get_by_text("不合格", exact=True).click()
    with page.expect_response(kept(note), timeout=TIMEOUT):
        page.get_by_label("备注").fill(note)
    page.reload()  # a backgrounded phone tab reloaded by the browser
    page.get_by_text("已恢复上次未保存的检查记录", exact=False).wait_for(timeout=TIMEOUT)
    expect(page.get_by_test_id("venue-card")).to_have_attribute("data-venue", venue, timeout=TIMEOUT)
    settle(page)
    unfold()
    expect(page.get_by_label("备注")).to_have_value(note, timeout=TIMEOUT)
    settle(page)
    radios = page.locator("[class*='st-key-md_item_']").first.locator("input[type=radio]")
    assert [radios.nth(i).is_checked() for i in range(radios.count())] == [False, True, False]
    shoot(page, "inspection-restored")


# --------------------------------------------------------------------------------------------------
# The routes beside the app refuse what does not come from the browser that logged in
# --------------------------------------------------------------------------------------------------


def test_a_login_code_works_only_in_the_browser_that_logged_in_and_only_once(base, phone, browser):
    page = phone.new_page()
    handing_over = re.compile(r"/auth/session\?")
    page.route(handing_over, lambda route: route.abort())  # the hand-over URL, kept instead of followed
    with page.expect_request(handing_over, timeout=TIMEOUT) as sent:
        sign_in(page, base)
    handover = sent.value.url
    other = browser.new_context(viewport=PHONE, user_agent=ANDROID)
    thief = other.new_page()
    thief.goto(base + "/track")  # a browser of its own, with its own XSRF cookie
    thief.get_by_label("事件编号").wait_for(timeout=TIMEOUT)
    thief.goto(handover)
    assert session_cookie(other) is None
    asked_for_password(thief)  # sent on to the page, not signed in
    other.close()
    page.unroute(handing_over)
    page.goto(handover)  # the browser that logged in: its cookie, once
    on_my_day(page)
    assert session_cookie(phone) is not None
    phone.clear_cookies(name="cockpit_session")
    page.goto(handover)
    asked_for_password(page)
    assert session_cookie(phone) is None


def test_the_routes_send_nowhere_else_and_refuse_forged_requests(base, phone):
    page = phone.new_page()
    sign_in(page, base)
    on_my_day(page)
    api = phone.request
    away = api.get(base + "/auth/session?code=x&next=//elsewhere.example/", max_redirects=0)
    assert away.status == 303 and away.headers["location"] == "/"
    assert (
        api.post(base + "/auth/draft", data="{}", headers={"Content-Type": "application/json"}).status == 403
    )
    api.get(base + "/auth/logout?check=guessed", max_redirects=0)
    assert session_cookie(phone) is not None  # a logout link from elsewhere does not sign anyone out
    page.reload()
    on_my_day(page)


def test_searching_a_village_by_name_moves_the_point_there(base, browser, seeded_store_url):
    _, _, village, _, _ = a_grid_away_from_the_default_focus(seeded_store_url)
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, user_agent=ANDROID
    )
    page = context.new_page()
    page.goto(base + "/report")
    where = page.get_by_test_id("pick-where")
    where.wait_for(timeout=TIMEOUT)
    assert village not in where.inner_text()
    search = page.get_by_role("combobox", name="搜索村（社区）、网格或场所")
    search.click()
    search.fill("没有这个地方")
    page.wait_for_function(  # Streamlit's "No results" is hidden, a Chinese line drawn in its place
        """() => [...document.querySelectorAll('[data-testid=stSelectboxVirtualDropdown] [role=option] span')]
          .some(s => getComputedStyle(s).fontSize === '0px'
                     && getComputedStyle(s, '::after').content.includes('没有找到'))""",
        timeout=TIMEOUT,
    )
    search.fill(village)
    page.get_by_role("option", name=f"{village}（村(社区)）").click()
    expect(where).to_contain_text(village, timeout=TIMEOUT)
    shoot(page, "report-searched")
    context.close()


#: A 随手拍 submit's answer: a success with another event number than ``prev``, the duplicate offer,
#: or the rate limit's refusal.
NEW_ANSWER_JS = """(prev) => { const t = document.body.innerText;
  const m = t.match(/上报成功，事件编号 #(\\d+)/);
  return (!!m && m[1] !== prev) || t.includes('不是同一件事，仍然新建') || t.includes('提交过于频繁：本设备'); }"""

#: What filing anyway ends in: a success with a new number, or the rate limit's refusal.
FILED_JS = """(prev) => { const t = document.body.innerText;
  const m = t.match(/上报成功，事件编号 #(\\d+)/);
  return (!!m && m[1] !== prev) || t.includes('提交过于频繁：本设备'); }"""


def _last_event_number(page) -> str | None:
    found = re.search(r"上报成功，事件编号 #(\d+)", page.locator("body").inner_text())
    return found.group(1) if found else None


def test_the_report_limit_counts_per_browser_so_a_reload_does_not_reset_it(base, phone):
    """Five reports from one phone, then a reload (a new Streamlit session, the same browser): the
    sixth is refused, and nothing of it is stored."""
    page = phone.new_page()
    page.goto(base + "/report")

    def send(title: str) -> None:
        page.get_by_label("标题").wait_for(timeout=TIMEOUT)
        settle(page)
        choose(page, page.get_by_label("事项类别"))
        page.get_by_label("标题").fill(title)
        page.get_by_label("问题描述").fill("测试频率限制：同一台手机连续上报")
        before = _last_event_number(page)
        page.get_by_role("button", name="提交").click()
        # The submit's run ends in one of three answers; on a loaded machine it may not have started
        # 300 ms after the click, so wait for a new answer (the last report's success stays on screen).
        page.wait_for_function(NEW_ANSWER_JS, arg=before, timeout=TIMEOUT)
        settle(page)
        anyway = page.get_by_role("button", name="不是同一件事，仍然新建")
        if anyway.count():  # a likely duplicate of the last report offered first: file it anyway
            anyway.click()
            page.wait_for_function(FILED_JS, arg=before, timeout=TIMEOUT)
            settle(page)

    for k in range(5):
        send(f"测试：频率限制第{k + 1}件")
        page.get_by_text("上报成功，事件编号", exact=False).wait_for(timeout=TIMEOUT)
    page.reload()
    send("测试：频率限制第6件")
    page.get_by_text("提交过于频繁：本设备", exact=False).wait_for(timeout=TIMEOUT)
    assert page.get_by_text("上报成功，事件编号", exact=False).count() == 0
