"""In a real browser: an inspector meets no unmasked phone number anywhere they can go, and hostile text typed
into the app's text fields never runs and shows exactly as typed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from db.engine import make_engine
from db.models import Event, EventTransition, Hazard, Inspection
from domain.access import PAGE_ROLES
from domain.vocabulary import Role
from tests.e2e.conftest import choose, login, settle

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
# A mainland mobile number standing alone (an 11-digit run: codes and timestamps are longer runs of digits).
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
TITLES = {
    "home": "总览",
    "risk_map": "五色图",
    "events": "事件流",
    "report": "随手拍上报",
    "inspections": "平安检查",
    "my_day": "我的今日",
    "big_screen": "指挥大屏",
}

# Each payload sets window.__xss or opens a dialog if it ever runs; the Markdown ones would change how
# the text looks if the app rendered user text as Markdown.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=2">',
    '"><svg onload=window.__xss=3>',
    "[点我](javascript:window.__xss=4)",
    "**加粗** _斜体_ $x^2$ :red[红字] `代码`",
    "{{7*7}} ${7*7} '; DROP TABLE events;--",
]


def _guard(page) -> list[str]:
    """Record every dialog the page opens (an alert() from a payload) and dismiss it."""
    dialogs: list[str] = []

    def on_dialog(d):
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _no_script_ran(page, dialogs: list[str]) -> None:
    assert page.evaluate("() => window.__xss === undefined"), "a payload ran in the page"
    assert dialogs == []


def _assert_no_phone(page, where: str) -> int:
    text, markup = page.locator("body").inner_text(), page.content()
    assert not PHONE.findall(text), f"{where}: unmasked phone in the text: {PHONE.findall(text)[:3]}"
    assert not PHONE.findall(markup), f"{where}: unmasked phone in the markup: {PHONE.findall(markup)[:3]}"
    return len(text)


def test_an_inspector_finds_no_unmasked_phone_number_on_any_page_they_can_open(page, app_url):
    allowed = [p for p, roles in PAGE_ROLES.items() if Role.INSPECTOR in roles and p in TITLES]
    assert set(allowed) >= {"home", "events", "report", "my_day"}
    page.goto(app_url + "/")
    page.get_by_label("用户名").wait_for(timeout=TIMEOUT)
    login(page, app_url, "demo_inspector")
    sidebar = page.locator("[data-testid='stSidebar']")
    seen: dict[str, int] = {}
    for key in allowed:  # through the menu, as the inspector goes (a new URL would be a new session)
        sidebar.get_by_role("link", name=TITLES[key]).click()
        at_home = " || location.pathname === '/'" if key == "home" else ""  # the default page
        page.wait_for_function(f"() => location.pathname.endsWith('/{key}'){at_home}", timeout=TIMEOUT)
        settle(page)
        page.wait_for_timeout(1500)  # fragments and maps fill in after the first run
        if key == "my_day":  # open the first venue card: the responsible person's phone is on it
            page.locator("[class*='st-key-md_open_'] button").first.click()
            page.locator("[data-testid='venue-card']").wait_for(timeout=TIMEOUT)
            masked = page.locator("[data-testid='stMain']").get_by_text(re.compile(r"1[3-9]\d\*{4}\d{4}"))
            masked.first.wait_for(timeout=TIMEOUT)  # the responsible person's number is on the card, masked
            settle(page)
        seen[key] = _assert_no_phone(page, key)
    assert all(n > 50 for n in seen.values()), seen  # every page rendered something to look at
    for key in sorted(set(TITLES) - set(allowed) - {"big_screen"}):  # by URL: refused, and nothing shown
        login(page, app_url, "demo_inspector", path=f"/{key}")
        page.get_by_text("无权访问此页面", exact=False).wait_for(timeout=TIMEOUT)
        _assert_no_phone(page, key)


def test_hostile_text_never_runs_and_shows_as_typed(page, app_url, seeded_store_url):
    engine = make_engine(seeded_store_url)
    dialogs = _guard(page)
    page.goto(app_url + "/")

    # The login form: a payload as the user name is refused like any unknown name.
    page.get_by_label("用户名").fill(PAYLOADS[1])
    page.get_by_label("密码").fill(PAYLOADS[0])
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_text("用户名或密码错误", exact=False).wait_for(timeout=TIMEOUT)
    _no_script_ran(page, dialogs)

    # 随手拍, anonymous: every payload as a title, the next one as the description, one as the name.
    ids = []
    for k, title in enumerate(PAYLOADS):
        page.context.clear_cookies()  # each from a browser of its own: the 随手拍 limit counts per browser
        page.goto(app_url + "/report")
        page.get_by_label("标题").wait_for(timeout=TIMEOUT)
        choose(page, page.get_by_label("事项类别"), k % 3)
        page.get_by_label("标题").fill(title)
        page.get_by_label("问题描述").fill(PAYLOADS[(k + 1) % len(PAYLOADS)])
        page.get_by_label("姓名（可选）").fill(PAYLOADS[k][:32])
        page.get_by_role("button", name="提交").click()
        done = page.get_by_text("上报成功，事件编号", exact=False)
        again = page.get_by_role("button", name="不是同一件事，仍然新建")
        done.or_(again).first.wait_for(timeout=TIMEOUT)
        if again.count():  # an earlier report nearby in the same category is offered for merging: keep apart
            _no_script_ran(page, dialogs)  # the offer lists the earlier titles
            again.click()
        done.wait_for(timeout=TIMEOUT)
        ids.append(int(re.search(r"#(\d+)", done.inner_text()).group(1)))
        _no_script_ran(page, dialogs)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(Event.id, Event.title).where(Event.id.in_(ids))).all())
    assert [stored[i] for i in ids] == PAYLOADS  # stored exactly as typed

    # A command-centre user opens each event: title and description show exactly as typed.
    login(page, app_url, "demo_city", path="/events")
    for k, event_id in enumerate(ids):
        box = page.get_by_label("事件编号")
        box.fill(str(event_id))
        box.press("Enter")
        main = page.locator("[data-testid='stMain']")
        # Each an element whose whole text is exactly what was typed (a timeout here: not shown as typed).
        for typed in (f"#{event_id} {PAYLOADS[k]}", PAYLOADS[(k + 1) % len(PAYLOADS)]):  # title, description
            main.get_by_text(typed, exact=True).filter(visible=True).first.wait_for(timeout=TIMEOUT)
        settle(page)
        _no_script_ran(page, dialogs)

    # The last one: reveal the reporter (a payload as the name) with a reason, then act with a payload as note.
    page.get_by_role("button", name="查看完整上报人信息").click()
    settle(page)
    reason = page.get_by_label("查看原因").filter(visible=True)  # the open popover's (not a stale copy)
    expect(reason).to_have_count(1, timeout=TIMEOUT)
    reason.fill("核实反映人身份")
    page.get_by_role("button", name="确认查看").click()
    shown = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="已记录本次查看")
    shown.wait_for(timeout=TIMEOUT)
    assert f"上报人：{PAYLOADS[-1][:32]}" in shown.inner_text()
    page.keyboard.press("Escape")
    settle(page)
    note = PAYLOADS[2]
    field = page.get_by_label("说明（退回、退单、上移须填写原因")
    field.fill(note)
    expect(field).to_have_value(note, timeout=TIMEOUT)
    page.get_by_role("button", name="提交").click()
    notes: list[str] = []
    for _ in range(120):  # the action's own rerun shows the new trail; the store is the witness here
        with engine.connect() as conn:
            notes = (
                conn.execute(
                    select(EventTransition.note)
                    .where(EventTransition.event_id == ids[-1])
                    .order_by(EventTransition.seq)
                )
                .scalars()
                .all()
            )
        if len(notes) > 1:
            break
        page.wait_for_timeout(500)
    settle(page)
    _no_script_ran(page, dialogs)
    assert notes[-1] == note
    engine.dispose()


def test_hostile_text_in_an_inspection_is_stored_as_typed_and_never_runs(page, app_url, seeded_store_url):
    engine = make_engine(seeded_store_url)
    dialogs = _guard(page)
    page.goto(app_url + "/")
    page.get_by_label("用户名").wait_for(timeout=TIMEOUT)
    login(page, app_url, "demo_inspector", path="/my_day")
    page.locator("[class*='st-key-md_open_'] button").first.click()
    card = page.locator("[data-testid='venue-card']")
    card.wait_for(timeout=TIMEOUT)
    vid = int(card.get_attribute("data-venue"))
    before = _count(engine, vid)
    settle(page)
    again = page.locator("[data-testid='stExpander'] summary").filter(has_text="再次登记检查")
    if again.count():  # another test on this store checked the venue today: its form is folded away
        again.click()
    page.locator(f".st-key-md_nh_{vid}").get_by_text("1", exact=True).click()
    page.locator(f".st-key-md_hz_desc_{vid}_0 input").wait_for(timeout=TIMEOUT)
    for item in page.locator(f"[class*='st-key-md_item_{vid}_']").all():
        item.get_by_text("合格", exact=True).click()
    page.locator(f".st-key-md_hz_sev_{vid}_0").get_by_text("一般隐患", exact=True).click()
    page.locator(f".st-key-md_hz_desc_{vid}_0 input").fill(PAYLOADS[1])
    page.locator(f".st-key-md_note_{vid} textarea").fill(PAYLOADS[3] + "\n" + PAYLOADS[0])
    page.get_by_role("button", name="保存检查结果").click()
    page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="已保存检查").wait_for(
        timeout=TIMEOUT
    )
    settle(page)
    _no_script_ran(page, dialogs)
    with engine.connect() as conn:
        assert _count(engine, vid) == (before[0] + 1, before[1] + 1)
        desc = (
            conn.execute(select(Hazard.description).where(Hazard.venue_id == vid).order_by(Hazard.id.desc()))
            .scalars()
            .first()
        )
        note = (
            conn.execute(
                select(Inspection.note).where(Inspection.venue_id == vid).order_by(Inspection.id.desc())
            )
            .scalars()
            .first()
        )
    assert (desc, note) == (PAYLOADS[1], PAYLOADS[3] + "\n" + PAYLOADS[0])
    engine.dispose()


def _count(engine, vid: int) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(func.count()).select_from(Inspection).where(Inspection.venue_id == vid)
            ).scalar_one(),
            conn.execute(select(func.count()).select_from(Hazard).where(Hazard.venue_id == vid)).scalar_one(),
        )


def test_hostile_text_in_leaders_and_admins_fields_never_runs(page, app_url, seeded_store_url):
    """专项整治's name (a leader), the rules editor (an admin) and the reveal's reason: stored or refused as
    typed, and nothing runs."""
    from services.planning_settings import load_campaigns

    engine = make_engine(seeded_store_url)
    dialogs = _guard(page)
    page.goto(app_url + "/")
    page.get_by_label("用户名").wait_for(timeout=TIMEOUT)
    login(page, app_url, "demo_township", path="/inspections")
    page.get_by_role("tab", name="专项整治").click()
    name = PAYLOADS[2][:30]
    form = page.locator(".stForm").filter(has_text="新增专项整治")
    form.get_by_label("名称").fill(name)
    choose(page, form.get_by_label("场所类别"))
    choose(page, form.get_by_label("区域（乡镇或村）"))
    page.keyboard.press("Escape")
    form.get_by_role("button", name="保存专项整治").click()
    for _ in range(60):
        with engine.connect() as conn:
            names = [c.name for c in load_campaigns(conn)]
        if name in names:
            break
        page.wait_for_timeout(500)
    assert name in names  # stored exactly as typed
    settle(page)
    _no_script_ran(page, dialogs)
    _remove_campaign(engine, name)  # the shared demo store plans with it otherwise

    # The rules editor (an admin): a payload instead of JSON is refused with the reason, shown as text.
    login(page, app_url, "demo_admin", path="/events")
    page.get_by_text("规则", exact=True).click()
    editor = page.get_by_label("分拨规则")
    editor.wait_for(timeout=TIMEOUT)
    editor.fill(PAYLOADS[0] + PAYLOADS[1])
    page.get_by_role("button", name="保存规则").click()
    page.get_by_text("规则未保存", exact=False).wait_for(timeout=TIMEOUT)
    settle(page)
    _no_script_ran(page, dialogs)
    engine.dispose()


def _remove_campaign(engine, name: str) -> None:
    from db.engine import session_factory
    from db.uow import UnitOfWork
    from services import clock
    from services.auth import user_by_username
    from services.planning_settings import remove_campaign

    with session_factory(engine)() as s:
        leader = user_by_username(s, "demo_township")
    remove_campaign(UnitOfWork(engine), user=leader, name=name, now=clock.now())
