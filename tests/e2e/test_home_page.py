"""The home page in a real browser: the five levels' counts, and no request leaves the machine."""

import re

from tests.e2e.conftest import login, wait_for_app


def test_home_page_shows_the_five_levels_counts_and_stays_on_this_machine(page, app_url):
    login(page, app_url, "demo_admin")
    wait_for_app(page)
    metrics = page.locator("[data-testid='stMetric']")
    text = " ".join(metrics.all_inner_texts())
    for label in ["市数", "县(市、区)数", "乡镇(街道)数", "村(社区)数", "网格数"]:
        assert label in text
    counts = {
        label: int(m.group(1).replace(",", ""))
        for label, m in (
            (lab, re.search(re.escape(lab) + r"\s*([\d,]+)", text))
            for lab in ["市数", "乡镇(街道)数", "村(社区)数", "网格数"]
        )
    }
    assert counts == {"市数": 1, "乡镇(街道)数": 61, "村(社区)数": 1483, "网格数": counts["网格数"]}
    assert counts["网格数"] >= 5000
    table = page.locator("[data-testid='stTable']").inner_text()
    assert "今日事件" in table and "网格" in table
    assert page.requests, "the page made no request at all: the recorder is broken"
    assert page.requests.off_host() == []
