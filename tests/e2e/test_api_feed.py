"""Another system files through the API and a leader sees it: a 12345 work order POSTed to
/open311/v2/requests.json (the same process that serves the pages, as ``make run`` starts it) arrives in
the township leader's 实时动态 on /events within the feed's refresh, and the API's answer and the page
name the same event."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from db.engine import make_engine
from db.models import AdminUnit
from db.uow import UnitOfWork
from services import api_keys, clock
from services.auth import user_by_username
from services.geography import default_focus
from tests.e2e.conftest import RequestLog, login, start_app

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


@pytest.fixture(scope="module")
def served(seeded_store_url) -> Iterator[tuple[str, str, tuple[float, float]]]:
    """serve.py on the shared demo store, a 12345 key for demo_township's township, a point inside it."""
    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        leader = user_by_username(conn, "demo_township")
        assert leader is not None
        code = conn.execute(select(AdminUnit.code).where(AdminUnit.id == leader.scope_unit_id)).scalar_one()
        point = default_focus(conn, leader.scope_unit_id)
    _id, key = api_keys.create_key(
        UnitOfWork(engine),
        actor=None,
        channel="12345",
        label="12345 热线（测试）",
        area_code=code,
        now=clock.now(),
    )
    engine.dispose()
    with start_app(seeded_store_url, "serve.py") as base:
        yield base, key, (float(point[0]), float(point[1]))


def test_a_work_order_filed_through_the_api_reaches_the_leaders_feed(browser, served):
    base, key, (lon, lat) = served
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.requests = RequestLog()
    page.on("request", lambda r: page.requests.append(r.url))
    try:
        login(page, base, "demo_township", path="/events")
        page.get_by_text("实时动态（", exact=False).wait_for(timeout=TIMEOUT)
        page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=TIMEOUT)

        work_order = f"GD-{uuid.uuid4().hex[:8]}"
        title = f"热线：楼道堆物 {work_order[-4:]}"
        answer = requests.post(
            f"{base}/open311/v2/requests.json",
            data={
                "api_key": key,
                "service_code": "urban",
                "lat": str(lat),
                "long": str(lon),
                "description": title,
                "attribute[work_order]": work_order,
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text  # GeoReport v2 answers a POST with 200
        event_id = answer.json()[0]["service_request_id"]

        # The feed refreshes by itself; its accessibility cells carry the text (attached, not painted).
        cells = page.locator("[role='gridcell']")
        cells.filter(has_text=str(event_id)).first.wait_for(state="attached", timeout=TIMEOUT)
        assert str(event_id) in cells.all_inner_texts()
        assert page.requests.off_host() == []
    finally:
        context.close()
