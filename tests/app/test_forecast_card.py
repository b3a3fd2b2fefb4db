"""隐患预测 on /inspections under AppTest: the validation card and the venues with "为什么优先".

The model is trained on the shared tiny store and removed again afterwards (its two tables only).
"""

from __future__ import annotations

import pytest

from db.engine import session_factory
from db.uow import UnitOfWork
from services import clock, forecast
from services.auth import user_by_username
from tests.app.conftest import page
from tests.integration.test_forecast_service import remove_forecasts


def _open(engine, username: str):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page("pages/inspections.py")
    at.session_state["current_user"] = user
    at.run()
    return at


@pytest.fixture
def trained(store):
    remove_forecasts(store)
    result = forecast.train(UnitOfWork(store), clock.now())
    yield store, result
    remove_forecasts(store)


def test_without_a_model_the_tab_says_when_one_will_be_trained(store):
    remove_forecasts(store)
    at = _open(store, "demo_township")
    assert not at.exception
    assert any("尚未训练隐患预测模型" in i.value for i in at.info)


def test_the_card_shows_the_active_versions_validation_figures_and_each_venue_why(trained):
    engine, result = trained
    at = _open(engine, "demo_township")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["模型版本"] == f"v{result.version}"
    assert metrics["验证 AUC"] == f"{result.metrics['auc']:.3f}"
    assert metrics["Brier 分数"] == f"{result.metrics['brier']:.4f}"
    assert metrics["前10%场所覆盖隐患"] == f"{result.metrics['capture_10'] * 100:.1f}%"
    assert any(str(result.cutoff) in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "为什么优先" in d.value.columns)
    assert len(table) > 0
    expected = table["期望发现（×严重度）"].tolist()
    assert expected == sorted(expected, reverse=True)  # highest expected hazards found first
    assert table["为什么优先"].str.contains("个百分点").any()  # numbers, not adjectives
