"""A bookmark opened first on a freshly started server still goes through login and the role menu."""

import pytest

from tests.e2e.conftest import start_app


@pytest.fixture
def fresh_app(seeded_store_url):
    with start_app(seeded_store_url) as url:
        yield url


def test_the_first_request_after_a_restart_can_be_a_deep_link(page, fresh_app):
    page.goto(fresh_app + "/risk_map")
    page.get_by_label("用户名").fill("demo_city")
    page.get_by_label("密码").fill("demo-cockpit")
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_selector("text=五色图 · 区域平安风险", timeout=30_000)
    nav = page.locator("[data-testid='stSidebar']").inner_text()
    assert "五色图" in nav and "risk map" not in nav  # the role menu, not the pages/ folder listing
    assert "/risk_map" in page.url
