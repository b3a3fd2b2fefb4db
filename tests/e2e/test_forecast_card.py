"""/inspections → 隐患预测 in the browser: the active model's validation card and the venues' "为什么优先"."""

from __future__ import annotations

import pytest

from db.engine import make_engine
from db.uow import UnitOfWork
from services import clock, forecast
from tests.e2e.conftest import login, settle
from tests.integration.test_forecast_service import remove_forecasts


@pytest.fixture
def trained(seeded_store_url):
    engine = make_engine(seeded_store_url)
    remove_forecasts(engine)
    yield forecast.train(UnitOfWork(engine), clock.now())
    remove_forecasts(engine)
    engine.dispose()


def test_the_forecast_tab_shows_the_card_and_why_each_venue_comes_first(page, app_url, trained):
    login(page, app_url, "demo_township", path="/inspections")
    page.get_by_role("heading", name="平安检查").wait_for(timeout=30_000)
    settle(page)
    page.get_by_role("tab", name="隐患预测").click()
    card = page.locator("[data-testid='stMetric']").filter(has_text="验证 AUC")
    card.wait_for(timeout=30_000)
    assert f"{trained.metrics['auc']:.3f}" in card.inner_text()
    assert (
        f"v{trained.version}"
        in page.locator("[data-testid='stMetric']").filter(has_text="模型版本").inner_text()
    )
    assert str(trained.cutoff) in page.get_by_text("训练数据截止").first.inner_text()
    table = page.locator("[data-testid='stDataFrame']").filter(has_text="为什么优先")
    table.wait_for(timeout=30_000)
    assert table.is_visible()
    assert not page.requests.off_host()
