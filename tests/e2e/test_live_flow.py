"""The live loop in two browsers: a citizen files a 随手拍 report and a township leader, watching /events
in another browser, is told by a toast and sees it arrive in the feed within 10 seconds; neither page asks anything of another host."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from db.engine import make_engine
from db.uow import UnitOfWork
from services import clock, sessions
from tests.e2e.conftest import RequestLog, choose, login, settle, start_app

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def _context_page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    p = context.new_page()
    p.requests = RequestLog()
    p.on("request", lambda r: p.requests.append(r.url))
    return context, p


def test_a_citizens_report_reaches_the_leaders_feed_within_ten_seconds(browser, app_url):
    watch_ctx, leader = _context_page(browser)
    report_ctx, citizen = _context_page(browser)
    try:
        leader.goto(app_url + "/")
        leader.get_by_label("用户名").wait_for(timeout=TIMEOUT)
        login(leader, app_url, "demo_township", path="/events")
        leader.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
        feed = leader.locator("[data-testid='stDataFrame']").first
        feed.wait_for(timeout=TIMEOUT)

        title = f"路灯不亮 {uuid.uuid4().hex[:6]}"
        citizen.goto(app_url + "/report")
        citizen.get_by_label("标题").wait_for(timeout=TIMEOUT)
        choose(citizen, citizen.get_by_label("事项类别"))
        citizen.get_by_label("标题").fill(title)
        citizen.get_by_label("问题描述").fill("小区门口两盏路灯一周没亮")
        citizen.get_by_role("button", name="提交").click()
        done = citizen.get_by_text("上报成功，事件编号", exact=False)
        again = citizen.get_by_role("button", name="不是同一件事，仍然新建")
        done.or_(again).first.wait_for(timeout=TIMEOUT)
        if again.count():
            again.click()
        done.wait_for(timeout=TIMEOUT)
        event_id = re.search(r"#(\d+)", done.inner_text()).group(1)

        # The feed is a canvas grid; its accessibility cells carry the text. The fragment refreshes by itself.
        # The leader is told without watching the grid: a toast names the new event …
        leader.get_by_text(f"新事件 #{event_id}：{title}", exact=False).wait_for(timeout=10_000)
        cells = leader.locator(
            "[role='gridcell']"
        )  # … and the grid's accessibility cells (not painted: attached)
        cells.filter(has_text=title).first.wait_for(state="attached", timeout=10_000)
        assert event_id in cells.all_inner_texts()
        assert leader.requests.off_host() == [] and citizen.requests.off_host() == []
    finally:
        watch_ctx.close()
        report_ctx.close()


def _grid(page, heading_cell: str, *, without: tuple[str, ...] = ()):
    """The st.dataframe whose text holds ``heading_cell`` and none of ``without`` (its accessibility table
    carries the text)."""
    grids = page.locator("[data-testid='stDataFrame']").filter(has_text=heading_cell)
    for text in without:
        grids = grids.filter(has_not_text=text)
    return grids.first


def _cells(grid) -> list[str]:
    """The texts of the grid's accessibility cells, row by row, once they are drawn."""
    grid.locator("[role='gridcell']").first.wait_for(state="attached", timeout=TIMEOUT)
    return [t.strip() for t in grid.locator("[role='gridcell']").all_inner_texts()]


def _click_row(page, grid, row: int, columns: int) -> str:
    """Click the middle of data row ``row`` (0-based; on its text, not its checkbox); the row's 编号."""
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # the scroll settles before the click is aimed
    box = grid.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + 35 + 35 * row + 17)
    event_id = _cells(grid)[row * columns]
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + 35 + 35 * row + 17)
    return event_id


def _options(page, field, attempts: int = 4) -> list[str]:
    """The options a select box draws when opened (a refresh that ends meanwhile closes it: try again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        settle(page)
        field.click()
        try:
            page.get_by_role("option").first.wait_for(timeout=5_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        options = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        return options
    raise AssertionError(f"{field} never opened its list in {attempts} attempts")


def _detail_shows(page, event_id: str) -> None:
    page.locator("[data-testid='stMarkdownContainer']").filter(
        has_text=re.compile(rf"^#{event_id} ")
    ).first.wait_for(timeout=TIMEOUT)


def _overdue_event(engine, title: str, steps, department_id=None, days_late: int = 30) -> int:
    """A fresh event at the demo town's first venue, moved through ``steps`` (actions) and then made
    ``days_late`` past its deadline: the top of the 我的待办 of whoever it waits on."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from db.models import Event, Venue
    from db.uow import UnitOfWork
    from domain.vocabulary import EventCategory, EventSource
    from services import clock
    from services.events import act, report_event

    with engine.connect() as conn:
        lon, lat = conn.execute(select(Venue.lon, Venue.lat).order_by(Venue.id)).first()
    now = clock.now()
    eid = report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.URBAN,
        title=title,
        lon=lon,
        lat=lat,
        now=now,
    ).id
    for action in steps:
        act(UnitOfWork(engine), event_id=eid, action=action, now=now, department_id=department_id)
    with engine.begin() as conn:
        conn.execute(update(Event).where(Event.id == eid).values(due_at=now - timedelta(days=days_late)))
    return eid


def test_a_leader_opens_events_from_the_feed_overdue_and_todo_with_one_click_and_dispatches_as_suggested(
    page, app_url, seeded_store_url
):
    from sqlalchemy import select

    from db.engine import make_engine
    from db.models import AdminUnit, Department
    from domain.event_flow import Action

    engine = make_engine(seeded_store_url)
    eid = _overdue_event(engine, f"待派单 {uuid.uuid4().hex[:6]}", [Action.ACCEPT])  # waits on the leader

    login(page, app_url, "demo_township", path="/events")
    page.get_by_text("我的待办（", exact=False).wait_for(timeout=TIMEOUT)
    page.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
    settle(page)
    # 实时动态 (8 columns) and 超期督办 (5 columns): one click on a row's text opens its event.
    opened = _click_row(page, _grid(page, "提醒"), 2, 8)
    settle(page, after_ms=500)
    _detail_shows(page, opened)
    opened = _click_row(page, _grid(page, "超期", without=("提醒", "待办")), 0, 5)
    settle(page, after_ms=500)
    _detail_shows(page, opened)
    # 我的待办 (8 columns): the accepted event waits on the leader for 派单.
    todo = _grid(page, "待办")
    texts = _cells(todo)
    assert texts[0] == str(eid) and texts[3] == "派单"
    row = 0
    _click_row(page, todo, row, 8)
    settle(page, after_ms=500)
    _detail_shows(page, str(eid))

    # The dispatch list serves the event's place: no other township's department.
    options = _options(page, page.get_by_label("派往部门（派单时）"))  # those drawn: the nearest first
    with engine.connect() as conn:
        here = conn.execute(select(AdminUnit.name).where(AdminUnit.level == "township")).scalars().all()
        leader_town = page.locator("h1").first.inner_text().split("·")[-1].strip()
        others = [
            n
            for n in conn.execute(
                select(Department.name)
                .join(AdminUnit, AdminUnit.id == Department.unit_id)
                .where(AdminUnit.level == "township", AdminUnit.name != leader_town)
            ).scalars()
        ]
    assert here and others and options
    assert options[0].startswith(leader_town), options  # the event's own township first
    assert not set(options) & set(others), set(options) & set(others)
    page.get_by_label("说明（", exact=False).fill("请尽快处置")
    page.get_by_role("button", name="按建议派单").click()
    page.get_by_text(f"已派单：事件 #{eid} 现为“已派单”", exact=False).wait_for(timeout=TIMEOUT)
    settle(page)
    assert page.get_by_label("说明（", exact=False).count() == 0 or (
        page.get_by_label("说明（", exact=False).input_value() == ""
    )
    assert page.requests.off_host() == []
    engine.dispose()


def test_a_department_resolves_from_its_todo_with_a_result_and_a_photo_shown_in_the_timeline(
    page, app_url, seeded_store_url, tmp_path
):
    import io

    from PIL import Image
    from sqlalchemy import select

    from db.engine import make_engine
    from db.models import User
    from domain.event_flow import Action

    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        dept = conn.execute(
            select(User.department_id).where(User.username == "demo_township_department")
        ).scalar_one()
    steps = [Action.ACCEPT, Action.DISPATCH, Action.START]
    eid = _overdue_event(engine, f"占道堆物 {uuid.uuid4().hex[:6]}", steps, department_id=dept, days_late=40)
    photo = tmp_path / "after.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 160, 60)).save(buf, format="PNG")
    photo.write_bytes(buf.getvalue())

    login(page, app_url, "demo_township_department", path="/events")
    page.get_by_text("我的待办（", exact=False).wait_for(timeout=TIMEOUT)
    settle(page)
    todo = _grid(page, "待办")
    texts = _cells(todo)
    assert texts[0] == str(eid) and texts[3] == "办结"
    _click_row(page, todo, 0, 8)
    settle(page, after_ms=500)
    _detail_shows(page, str(eid))
    page.get_by_role("radiogroup").get_by_text("办结", exact=True).click()
    page.get_by_role("button", name="提交").click()  # no result: refused, in Chinese
    page.get_by_text("处置结果：请填写处置结果", exact=False).wait_for(timeout=TIMEOUT)
    settle(page)
    page.get_by_role("radiogroup").get_by_text("办结", exact=True).click()
    page.get_by_label("处置结果", exact=False).fill(
        "已清理门前堆物，责令店主签订门前三包。\n复查：通道恢复畅通。"
    )
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(photo))
    page.get_by_text("after.png").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="提交").click()
    page.get_by_text(f"已办结：事件 #{eid} 现为“已办结”，附处置照片 1 张", exact=False).wait_for(
        timeout=TIMEOUT
    )
    settle(page)
    page.get_by_text("复查：通道恢复畅通", exact=False).wait_for(timeout=TIMEOUT)
    page.get_by_text("处置照片 1", exact=True).wait_for(timeout=TIMEOUT)
    assert page.get_by_text("None", exact=True).count() == 0
    assert page.requests.off_host() == []
    engine.dispose()


def test_a_login_ended_elsewhere_stops_the_live_feed_at_its_next_refresh(browser, seeded_store_url):
    """The feed's refresh asks for the login again (decision 0047): the login ended on the server (as a
    logout in another tab or an administrator's 停用 does) while /events is open, the feed gives way to
    the login form within a refresh or two, without a page load. Served by serve.py, whose logins are
    kept in the store behind a cookie."""
    engine = make_engine(seeded_store_url)
    with start_app(seeded_store_url, script="serve.py") as app_url:
        context, leader = _context_page(browser)
        try:
            login(leader, app_url, "demo_township", path="/events")
            leader.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
            (token,) = [c["value"] for c in context.cookies() if c["name"] == sessions.COOKIE]
            with engine.connect() as conn:
                session_id = sessions.session_of_token(conn, token, clock.now())
            assert session_id is not None
            assert sessions.end(UnitOfWork(engine), session_id=session_id, reason="logout", now=clock.now())
            leader.get_by_role("button", name="登录", exact=True).wait_for(timeout=TIMEOUT)
            # the feed's elements leave when the run that drew the login form ends (Streamlit keeps a run's
            # earlier elements until then): gone within the wait, or the test fails
            expect(leader.get_by_text("实时动态（", exact=False)).to_have_count(0, timeout=TIMEOUT)
        finally:
            context.close()
            engine.dispose()
