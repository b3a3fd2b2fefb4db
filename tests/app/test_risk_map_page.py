"""The risk map page under AppTest: scope, drill-down by URL, legend counts, explanation, thresholds."""

import html
import json
import re

from sqlalchemy import select

from db.engine import session_factory
from db.models import AdminUnit
from domain.access import CurrentUser
from domain.risk import RiskClass
from services import clock
from services.auth import user_by_username
from services.risk_map import venue_frame
from tests.app.conftest import page


def _user(engine, username) -> CurrentUser:
    with session_factory(engine)() as s:
        return user_by_username(s, username)


def _open(engine, username, area=None):
    at = page("pages/risk_map.py")
    at.session_state["current_user"] = _user(engine, username)
    if area:
        at.query_params["area"] = area
    return at.run()


def units_by_code(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(AdminUnit.code, AdminUnit.id)).all())


def _deck(at) -> dict:
    return json.loads(at.get("deck_gl_json_chart")[0].proto.json)


def test_the_city_command_centre_sees_the_six_counties_in_five_colours(store):
    at = _open(store, "demo_city")
    assert not at.exception
    deck = _deck(at)
    areas = next(layer for layer in deck["layers"] if layer["id"] == "areas")
    assert len(areas["data"]["features"]) == 6
    assert "app/static" in deck["mapStyle"] and "cartocdn" not in json.dumps(deck)
    legend = next(m.value for m in at.markdown if "risk-legend" in m.value)
    assert all(c.label in legend for c in RiskClass)


def test_drilling_by_url_to_a_grid_shows_its_explanation_and_detail_map(store):
    with store.connect() as conn:
        grid = conn.execute(
            select(AdminUnit.code).where(AdminUnit.level == "grid", AdminUnit.code.like("330802001%")).order_by(AdminUnit.code)
        ).first()[0]
    at = _open(store, "demo_township", area=grid)
    assert not at.exception
    assert any("为什么是这个颜色" in m.value for m in at.markdown)
    detail = at.get("component_instance")[0].proto
    assert detail.component_name == "streamlit_folium.st_folium"
    # Every active venue of the grid is a marker whose card carries its name and open hazards.
    script = json.loads(detail.json_args)["script"]
    rows = json.loads(re.search(r"var rows = (.*?);\n", script).group(1))
    with store.connect() as conn:
        venues = venue_frame(conn, clock.today())
    grid_id = units_by_code(store)[grid]
    mine = venues[venues["grid_id"] == grid_id]
    assert len(rows) == len(mine) > 0
    fields = json.loads(re.search(r"var fields = (.*?);\n", script).group(1))
    by_name = {r[3 + fields.index("name")]: r[3 + fields.index("hazards")] for r in rows}
    assert by_name == {html.escape(n): str(m + g) for n, m, g in zip(mine["name"], mine["major"], mine["general"], strict=True)}


def test_an_area_outside_the_users_scope_is_refused(store):
    with store.connect() as conn:
        other = conn.execute(select(AdminUnit.code).where(AdminUnit.code == "330881")).scalar_one()
    at = _open(store, "demo_township", area=other)
    assert "不在您的管辖范围内" in at.error[0].value
    assert not at.get("deck_gl_json_chart")


def test_an_inspector_may_not_open_the_risk_map(store):
    at = _open(store, "demo_inspector")
    assert "无权访问" in at.error[0].value


def test_thresholds_out_of_order_are_refused_in_chinese(store):
    at = _open(store, "demo_admin")
    at.number_input[0].set_value(10.0)  # 重大 below 较大
    at.button(key="FormSubmitter:rm_thresholds-保存阈值").click().run()
    assert any("阈值未保存" in e.value for e in at.error)
