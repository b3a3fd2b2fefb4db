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
            select(AdminUnit.code)
            .where(AdminUnit.level == "grid", AdminUnit.code.like("330802001%"))
            .order_by(AdminUnit.code)
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
    assert by_name == {
        html.escape(n): str(m + g)
        for n, m, g in zip(mine["name"], mine["major"], mine["general"], strict=True)
    }


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


def test_the_city_view_shows_counties_without_data_as_grey_no_data_and_leaves_venues_off(store):
    from components.palette import CLASS_RGB

    at = _open(store, "demo_city")
    assert not at.exception
    deck = _deck(at)
    assert [layer["id"] for layer in deck["layers"]] == ["areas"]  # venues off above township level
    legend = next(m.value for m in at.markdown if "risk-legend" in m.value)
    no_data = int(re.search(r"暂无数据 <b>(\d+)</b>", legend).group(1))
    assert 1 <= no_data < 6  # the demo data covers one county; the others are unknown, not safe
    # and the city's own verdict says its class leaves those counties out
    assert any(f"6 个下级区域中有 {no_data} 个暂无" in w.value for w in at.warning)
    features = next(layer for layer in deck["layers"] if layer["id"] == "areas")["data"]["features"]
    grey = [f for f in features if f["properties"]["class_label"] == "暂无数据"]
    assert len(grey) == no_data
    assert all(tuple(f["properties"]["fill"][:3]) == CLASS_RGB[RiskClass.NO_DATA] for f in grey)
    assert all(f["properties"]["score"] == "—" for f in grey)
    ranking = at.dataframe[0].value
    assert (ranking["风险等级"] == "暂无数据").sum() == no_data
    assert ranking["风险等级"].tolist()[-no_data:] == ["暂无数据"] * no_data  # last, with "—" as score
    assert set(ranking["风险分值"].tolist()[-no_data:]) == {"—"}


def test_a_grid_explanation_gives_whole_counts_the_thresholds_and_its_rank_in_one_sentence(store):
    with store.connect() as conn:
        grid = conn.execute(
            select(AdminUnit.code)
            .where(AdminUnit.level == "grid", AdminUnit.code.like("330802001%"))
            .order_by(AdminUnit.code)
        ).first()[0]
    at = _open(store, "demo_township", area=grid)
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any("risk-verdict" in t and "…" not in t for t in texts)
    sentence = next(t for t in texts if "分/万人（" in t)
    assert re.search(r"在同级 \d+ 个区域中排第 \d+", sentence)
    assert any("分级阈值" in c.value and "重大风险 ≥" in c.value for c in at.caption)
    factors = at.table[0].value
    assert factors["数量（项）"].str.fullmatch(r"[\d,]+").all()  # whole counts, never 39.5


def test_a_leader_drills_down_by_the_child_selector_and_by_a_ranking_row_without_the_map(store):
    ids = units_by_code(store)
    at = _open(store, "demo_township", area="330802001")
    assert not at.exception
    town = ids["330802001"]
    selector = at.selectbox(key=f"rm_drill_{town}")
    village = next(o for o in selector.options if "（330802001" in o)
    village_code = re.search(r"（(\d+)）", village).group(1)
    at = selector.set_value(ids[village_code]).run()
    assert not at.exception
    assert at.query_params["area"] in (village_code, [village_code])
    # The ranking of the village's grids: a click on a row opens that grid.
    at = _open(store, "demo_township", area=village_code)
    ranking = at.dataframe[0].value
    grid_code = str(ranking.iloc[0]["编码"])
    at.session_state[f"rm_rank_{ids[village_code]}_grid"] = {
        "selection": {"rows": [0], "columns": [], "cells": []}
    }
    at = at.run()
    assert not at.exception
    assert grid_code.startswith(village_code)
    assert at.query_params["area"] in (grid_code, [grid_code])


def test_a_past_as_of_date_lists_that_days_latest_events_and_says_the_venues_are_todays(store):
    """风险截至日期 in the past: the 最新事件 end with that day (today's events are not shown under a
    verdict of a week ago), and the venue table says it shows the venues as they are today."""
    from datetime import timedelta

    at = _open(store, "demo_township")
    day = clock.today() - timedelta(days=7)
    at.date_input(key="rm_as_of").set_value(day).run()
    assert not at.exception
    assert any(f"截至 {day:%Y-%m-%d} 计算" in c.value and "今日" in c.value for c in at.caption)
    shown = [t.value for t in at.table if t.value.index.name == "时间"]
    assert shown and all(str(v)[:10] <= f"{day:%Y-%m-%d}" for v in shown[0].index), shown
    today = _open(store, "demo_township")
    assert not any("为场所今日的平安码" in c.value for c in today.caption)


def test_the_layers_chosen_go_into_the_url_so_a_screen_can_bookmark_them(store):
    at = _open(store, "demo_city")
    assert "layers" not in at.query_params  # the defaults need no parameter
    at.multiselect(key="rm_layers").set_value(["区域风险", "事件热力"]).run()
    assert not at.exception
    assert at.query_params["layers"] in ("区域风险,事件热力", ["区域风险,事件热力"])
    again = page("pages/risk_map.py")  # a bookmark: the parameter is there before the first run
    again.session_state["current_user"] = _user(store, "demo_city")
    again.query_params["layers"] = "事件热力"
    again.run()
    assert again.multiselect(key="rm_layers").value == ["事件热力"]
    again.multiselect(key="rm_layers").set_value([]).run()
    assert "layers" not in again.query_params  # none chosen: the next visit starts from the defaults
