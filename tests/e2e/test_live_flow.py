"""The live loop in two browsers: a citizen files a 随手拍 report and a township leader, watching /events
in another browser, is told by a toast and sees it arrive in the feed within 10 seconds; neither page asks anything of another host."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.e2e.conftest import RequestLog, choose, login

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
        leader.get_by_text("实时动态", exact=False).wait_for(timeout=TIMEOUT)
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
        filed = time.monotonic()
        event_id = re.search(r"#(\d+)", done.inner_text()).group(1)

        # The feed is a canvas grid; its accessibility cells carry the text. The fragment refreshes by itself.
        # The leader is told without watching the grid: a toast names the new event …
        leader.get_by_text(f"新事件 #{event_id}：{title}", exact=False).wait_for(timeout=10_000)
        cells = leader.locator("[role='gridcell']")  # … and the grid's accessibility cells (not painted: attached)
        cells.filter(has_text=title).first.wait_for(state="attached", timeout=10_000)
        seen = time.monotonic() - filed
        assert seen <= 10, f"the report took {seen:.1f} s to reach the feed"
        assert event_id in cells.all_inner_texts()
        assert leader.requests.off_host() == [] and citizen.requests.off_host() == []
    finally:
        watch_ctx.close()
        report_ctx.close()
