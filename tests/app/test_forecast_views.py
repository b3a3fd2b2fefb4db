"""The hazard forecast where people see it (decision 0036), under AppTest on the shared tiny store:
/my_day says what chose the day, /inspections draws the capacity what-if, the risk map's 「隐患预测」
toggle colours areas by forecast density — and each says so plainly when there is no model yet.

A model is trained on the store and removed again afterwards (its two tables only).
"""

from __future__ import annotations

import json

import pytest

from components.cached import clear_after_write
from components.palette import FORECAST_RAMP, NO_DATA_RGB
from db.engine import session_factory
from db.uow import UnitOfWork
from services import clock, forecast
from services.auth import user_by_username
from tests.app.conftest import page
from tests.integration.test_forecast_service import remove_forecasts


def _open(engine, path: str, username: str):
    with session_factory(engine)() as s:
        user = user_by_username(s, username)
    at = page(path)
    at.session_state["current_user"] = user
    return at.run()


@pytest.fixture
def bare(store):
    remove_forecasts(store)
    clear_after_write()  # a plan cached by an earlier test of this worker (30 s) predates the change
    return store


@pytest.fixture
def trained(store):
    remove_forecasts(store)
    result = forecast.train(UnitOfWork(store), clock.now())
    clear_after_write()  # as a page does after a write: the cached plan was made without the model
    yield store, result
    remove_forecasts(store)
    clear_after_write()


def _captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def test_my_day_says_the_colour_rules_chose_the_day_when_there_is_no_model(bare):
    at = _open(bare, "pages/my_day.py", "demo_inspector")
    assert not at.exception
    assert "按平安码规则安排" in _captions(at) and "尚无隐患预测模型" in _captions(at)


def test_my_day_names_the_model_version_and_date_that_chose_the_day(trained):
    engine, result = trained
    at = _open(engine, "pages/my_day.py", "demo_inspector")
    assert not at.exception
    text = _captions(at)
    assert f"按隐患预测安排（模型 v{result.version}，{clock.today():%Y-%m-%d} 训练" in text
    assert "平安码规则" not in text


def test_the_inspections_tab_draws_the_capacity_what_if_as_the_models_expectation(trained):
    engine, _ = trained
    at = _open(engine, "pages/inspections.py", "demo_township")
    assert not at.exception
    text = _captions(at)
    assert "这是模型的期望值，不是实测" in text and "当前容量" in text
    assert "按隐患预测安排" in text  # the leader's plan is the forecast's too
    charts = at.get("vega_lite_chart")
    assert charts, "no Altair chart"
    spec = json.loads(charts[-1].proto.spec)
    titles = json.dumps(spec, ensure_ascii=False)
    assert "每日检查次数" in titles and "预计30天发现隐患的场所数（模型期望）" in titles


def test_the_risk_map_toggle_is_disabled_and_says_why_without_a_model(bare):
    at = _open(bare, "pages/risk_map.py", "demo_township")
    assert not at.exception
    toggle = at.toggle(key="rm_forecast")
    assert toggle.disabled and toggle.label == "隐患预测"
    assert "尚未训练隐患预测模型" in _captions(at)
    assert not any("forecast-legend" in m.value for m in at.markdown)


def test_the_risk_map_toggle_colours_areas_by_forecast_hazards_per_100_venues(trained):
    engine, result = trained
    at = _open(engine, "pages/risk_map.py", "demo_township")
    toggle = at.toggle(key="rm_forecast")
    assert not toggle.disabled and not toggle.value
    at = toggle.set_value(True).run()
    assert not at.exception
    legend = next(m.value for m in at.markdown if "forecast-legend" in m.value)
    assert "每百场所预测隐患" in legend
    assert f"模型 v{result.version}" in _captions(at)
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    areas = next(layer for layer in deck["layers"] if layer["id"] == "areas")
    props = [f["properties"] for f in areas["data"]["features"]]
    allowed = {tuple(c) for c in FORECAST_RAMP} | {tuple(NO_DATA_RGB)}
    assert all(tuple(p["fill"][:3]) in allowed for p in props)
    shaded = [p for p in props if "每百场所预测隐患" in p["class_label"]]
    assert shaded and all(p["score"] != "—" for p in shaded)
    # The densest area gets the darkest class.
    top = max(shaded, key=lambda p: float(p["score"]))
    assert tuple(top["fill"][:3]) == FORECAST_RAMP[-1]
