"""我的今日 on a phone (390×844): an inspector records a failed inspection with a major hazard, sees the venue
turn red and in tomorrow's list, and the page asks nothing of any other machine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from db.engine import make_engine, session_factory
from db.models import InspectorGrid, SafetyCodeChange, Venue
from domain.safety_code import checklist_for
from services import clock
from services.auth import user_by_username
from tests.e2e.conftest import RequestLog, login

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def venue(seeded_store_url):
    """A yellow shop of the demo inspector, long overdue, so it is near the top of today's list."""
    engine = make_engine(seeded_store_url)
    with session_factory(engine).begin() as s:
        uid = user_by_username(s, "demo_inspector").id
        grid = (
            s.execute(
                select(InspectorGrid.grid_id)
                .where(InspectorGrid.user_id == uid)
                .order_by(InspectorGrid.grid_id)
            )
            .scalars()
            .first()
        )
        lon, lat = s.execute(select(Venue.lon, Venue.lat).where(Venue.grid_id == grid)).first()
        n = s.execute(select(Venue.id).order_by(Venue.id.desc())).scalars().first() + 1
        vid = s.execute(
            insert(Venue).returning(Venue.id),
            {
                "code": f"E2E{n}",
                "name": f"测试：手机检查小店{n}",
                "category": "street_shop",
                "address": "测试路2号",
                "lon": lon,
                "lat": lat,
                "grid_id": grid,
                "safety_code": "yellow",
                "responsible_person": "测试人",
                "responsible_phone": "13912345678",
                "inspector_id": uid,
                "next_due_on": clock.today() - timedelta(days=2000 + n % 1000),
                "created_at": clock.now() - timedelta(days=3000),
            },
        ).scalar_one()
        s.execute(
            insert(SafetyCodeChange),
            {
                "venue_id": vid,
                "changed_at": clock.now() - timedelta(days=3000),
                "from_code": None,
                "to_code": "yellow",
                "reason": "测试赋码",
            },
        )
    yield vid, engine
    engine.dispose()


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    )
    p = context.new_page()
    p.requests = RequestLog()
    p.on("request", lambda r: p.requests.append(r.url))
    yield p
    context.close()


def _click_option(page, key: str, text: str) -> None:
    page.locator(f".st-key-{key}").get_by_text(text, exact=True).click()


def test_an_inspector_records_a_failed_inspection_and_the_venue_is_red_in_tomorrows_list(
    phone, app_url, venue
):
    vid, engine = venue
    page = phone
    # A freshly started server serves the first deep URL from pages/ before app.py's navigation exists:
    # open the root once so /my_day goes through the app's own navigation and login.
    page.goto(app_url + "/")
    page.get_by_label("用户名").wait_for(timeout=TIMEOUT)
    # ``login`` waits for the sidebar to be visible, and a phone-width page collapses it: log in wide,
    # then work at phone size (the session survives the resize; nothing reloads).
    page.set_viewport_size({"width": 1024, "height": 844})
    login(page, app_url, "demo_inspector", path="/my_day")
    page.set_viewport_size(PHONE)
    stop = page.locator(f".st-key-md_stop_{vid}")
    stop.locator("[data-code='yellow']").wait_for(timeout=TIMEOUT)
    page.locator("[data-testid='stDeckGlJsonChart'] canvas").first.wait_for(timeout=TIMEOUT)  # the route map
    page.locator(f".st-key-md_open_{vid} button").click()

    card = page.locator(f"[data-testid='venue-card'][data-venue='{vid}']")
    card.wait_for(timeout=TIMEOUT)
    page.get_by_text("139****5678").wait_for(timeout=TIMEOUT)  # the responsible person's phone, masked
    assert page.get_by_text("13912345678").count() == 0
    _click_option(page, f"md_nh_{vid}", "1")
    page.locator(f".st-key-md_hz_desc_{vid}_0 input").wait_for(timeout=TIMEOUT)
    for i, item in enumerate(checklist_for("street_shop")):
        _click_option(page, f"md_item_{vid}_{item.key}", "不合格" if i == 0 else "合格")
    _click_option(page, f"md_hz_sev_{vid}_0", "重大隐患")
    page.locator(f".st-key-md_hz_desc_{vid}_0 input").fill("消防通道堆放杂物")
    page.get_by_role("button", name="保存检查结果").click()

    success = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="已保存检查")
    success.wait_for(timeout=TIMEOUT)
    assert "黄码 → 红码" in success.inner_text()
    page.locator(f"[data-testid='venue-card'][data-venue='{vid}'] [data-code='red']").wait_for(
        timeout=TIMEOUT
    )
    with engine.connect() as conn:
        code, due = conn.execute(select(Venue.safety_code, Venue.next_due_on).where(Venue.id == vid)).one()
    tomorrow = clock.today() + timedelta(days=1)
    assert (code.value, due) == ("red", tomorrow)

    page.get_by_role("button", name="← 返回列表").click()
    done = page.locator(f".st-key-md_done_{vid}")
    done.get_by_text("已检查", exact=False).first.wait_for(timeout=TIMEOUT)
    done.get_by_text("下次应检：明天").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name="明天", exact=True).click()
    page.get_by_text(f"{tomorrow:%Y-%m-%d} 待检查场所").wait_for(timeout=TIMEOUT)
    tomorrow_stop = page.locator(f".st-key-md_stop_{vid}")
    tomorrow_stop.get_by_text("红码场所，每日必检", exact=False).wait_for(timeout=TIMEOUT)
    assert tomorrow_stop.locator("[data-code='red']").count() == 1
    page.screenshot(path="test-results/my_day_tomorrow.png", full_page=True)
    assert page.requests.off_host() == []
