"""五色图: the five-colour risk of every area, drillable from the city to one grid, with its explanation."""

from __future__ import annotations

from datetime import datetime, timedelta

import streamlit as st

from components import cached, maps
from components.auth import require_page
from components.kpi import kpi_row
from components.palette import legend_html
from components.risk_view import (
    LAYERS,
    POINT_LEVELS,
    assemble,
    drill_choice,
    forecast_legend,
    forecast_toggle,
    picked_row_code,
    ranking_table,
    sibling_rank,
    verdict_panel,
    why_tables,
)
from components.store import geography, reader, uow
from components.store import tree as store_tree
from components.text import md_text
from domain.risk import RiskClass, Thresholds, data_gaps
from domain.vocabulary import AdminLevel
from services import clock
from services.access import OutOfScope, area_by_code
from services.forecast import active_summary, area_density
from services.risk import explain_unit, load_model, save_thresholds
from services.risk_map import period_bounds, recent_events

PERIODS = {"近7天": 7, "近30天": 30, "近90天": 90}


user = require_page("risk_map")
tree = store_tree()
if not len(tree):
    st.warning("数据库中还没有区划数据。请运行 `make run` 或 `make seed`。")
    st.stop()
root_id = user.scope_unit_id
# The area is in the URL (?area=<code>) so a command centre can bookmark any view.
try:
    area_id = area_by_code(tree, user, st.query_params.get("area"), "risk_map area")
except OutOfScope as exc:
    st.error(f"{exc}。")
    st.stop()
units, _ = geography()
area = units.loc[area_id]
area_level = AdminLevel(area["level"])

st.title("五色图 · 区域平安风险")
c1, c2, c3, c4, c5 = st.columns([1.2, 1, 1.2, 2, 0.9])
today = clock.today()
as_of = c1.date_input("风险截至日期", value=today, max_value=today, format="YYYY-MM-DD", key="rm_as_of")
period_label = c2.selectbox("事件时段", list(PERIODS), index=1, key="rm_period")
lower = [lvl for lvl in AdminLevel if lvl.depth > area_level.depth] or [area_level]
level = c3.selectbox("显示层级", lower, format_func=lambda lv: lv.label, key=f"rm_level_{area_id}")
# ?layers=区域风险,事件热力 lets a screen bookmark its layers too. Venues are on by default only from a
# township down: above it their circles would cover the coloured areas.
default_layers = ["区域风险", "场所平安码"] if area_level.value in POINT_LEVELS else ["区域风险"]
wanted = [x for x in st.query_params.get("layers", "").split(",") if x in LAYERS] or default_layers
layers_on = c4.multiselect("图层", LAYERS, default=wanted, key="rm_layers", placeholder="选择图层")
if layers_on != default_layers or "layers" in st.query_params:  # a choice of one's own goes in the URL
    if layers_on:
        st.query_params["layers"] = ",".join(layers_on)
    else:
        del st.query_params["layers"]
with reader() as conn:
    model = active_summary(conn)
forecast_on = forecast_toggle(c5, model)

# Breadcrumb: every ancestor is one click away.
crumbs = tree.path(area_id)
crumbs = crumbs[crumbs.index(root_id) :]  # nothing above the user's scope
cols = st.columns(len(crumbs) + 1)
for col, uid in zip(cols, crumbs, strict=False):
    u = units.loc[uid]
    if uid == area_id:
        col.markdown(f"**{md_text(u['name'])}**")
    elif col.button(u["name"], key=f"crumb_{uid}"):
        st.query_params["area"] = u["code"]
        st.rerun()


def drill_to(code: str | None) -> None:
    """Open ``code``'s view (the URL keeps it: ?area=), unless it is the one shown."""
    if code and code != area["code"] and tree.by_code(code) is not None:
        st.query_params["area"] = code
        st.rerun()


thresholds = cached.thresholds()
risk = cached.risk(as_of, thresholds)
start, end = period_bounds(as_of, PERIODS[period_label])
density = None
if forecast_on:
    with reader() as conn:
        density = area_density(conn, tree, tree.descendants(area_id, level))
venues_all, events = cached.venues(today), cached.events(start, end)
view = assemble(units, tree, risk, venues_all, events, area_id, level, layers_on, forecast=density)
st.markdown(f"<div data-testid='risk-legend'>{legend_html(view.counts)}</div>", unsafe_allow_html=True)
if view.forecast_bins is not None and model is not None:
    forecast_legend(view.forecast_bins, model)
layers, shown, grid_ids, venues = view.layers, view.shown, view.grid_ids, view.venues

left, right = st.columns([3, 2])
with left:
    drill_to(drill_choice(tree, units, area_id))
    deck = maps.risk_deck(layers, tuple(area.geometry.bounds), width=820, height=620)
    chosen = st.pydeck_chart(
        deck,
        on_select="rerun",
        selection_mode="single-object",
        key=f"rm_deck_{area_id}_{level.value}",
        height=620,
    )
    picked = (chosen.selection.get("objects") or {}).get("areas") if chosen else None
    if picked:
        drill_to(picked[0].get("properties", picked[0]).get("code"))
    st.caption("点击区域、选择下级区域或点击排名中的一行可下钻；用上方路径返回上级。")

with right:
    row = risk.loc[area_id]
    cls = RiskClass(row["risk_class"])
    st.subheader(f"{area['name']}（{AdminLevel(area['level']).label}）")
    with reader() as conn:
        parts = explain_unit(row, load_model(conn))
        # the latest events up to the end of the as-of day (a past date shows that day's, not today's)
        recent = recent_events(
            conn,
            view.grid_ids,
            min(clock.now(), datetime.combine(as_of + timedelta(days=1), datetime.min.time())),
        )
    verdict_panel(
        area["name"], cls, float(row["score"]), parts, sibling_rank(tree, risk, area_id), thresholds
    )
    gaps = data_gaps(
        area["name"],
        cls,
        [
            (units.at[c, "name"], RiskClass(risk.at[c, "risk_class"]), float(units.at[c, "population"] or 0))
            for c in tree.children(area_id)
            if c in risk.index
        ],
    )
    if gaps:
        st.warning(gaps)
    no_data = cls is RiskClass.NO_DATA
    kpi_row([("风险分值", "—" if no_data else f"{row['score']:.0f}"), ("常住人口", int(area["population"]))])
    if as_of < today:  # the venues' codes and hazards are kept as they are now, not as of a day
        st.caption(
            f"评分与说明按截至 {as_of:%Y-%m-%d} 计算；“风险最高的场所”和场所图层为场所今日的平安码与隐患。"
        )
    why_tables(parts, view.top_venues, recent)

st.subheader(f"{level.label}风险排名")
ranked = ranking_table(shown)
clicked = st.dataframe(
    ranked,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=f"rm_rank_{area_id}_{level.value}",
)
drill_to(picked_row_code(clicked, ranked))

if area_level in (AdminLevel.VILLAGE, AdminLevel.GRID):
    st.subheader("场所分布详图")
    maps.show_detail_map(maps.detail_map(area.geometry, venues), key=f"rm_detail_{area_id}")

if not user.may("edit_rules"):  # the thresholds are the admin's (the service checks again)
    st.stop()
with st.expander("风险等级阈值设置（管理员）"), st.form("rm_thresholds"):
    t = thresholds
    cols = st.columns(4)
    red = cols[0].number_input("重大风险 ≥", value=float(t.red), min_value=0.0, step=1.0)
    orange = cols[1].number_input("较大风险 ≥", value=float(t.orange), min_value=0.0, step=1.0)
    yellow = cols[2].number_input("一般风险 ≥", value=float(t.yellow), min_value=0.0, step=1.0)
    blue = cols[3].number_input("低风险 ≥", value=float(t.blue), min_value=0.0, step=0.5)
    if st.form_submit_button("保存阈值"):
        try:
            new = Thresholds(red=red, orange=orange, yellow=yellow, blue=blue)
        except ValueError as exc:
            st.error(f"阈值未保存：{md_text(exc)}")
        else:
            save_thresholds(uow(), new, clock.now(), user=user)
            cached.clear_after_write()
            st.toast("阈值已保存，地图已按新阈值重新分级。")
            st.rerun()
