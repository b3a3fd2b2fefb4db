"""五色图: the five-colour risk of every area, drillable from the city to one grid, with its explanation."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from components import maps
from components.auth import require_page
from components.kpi import kpi_row
from components.risk_view import LAYERS, assemble, legend_html
from components.store import engine, geography
from components.text import md_text
from domain.hierarchy import path_to_root
from domain.risk import RiskClass, Thresholds
from domain.vocabulary import AdminLevel
from services import clock
from services.access import deny
from services.risk import area_risk, explain_unit, load_model, save_thresholds
from services.risk_map import event_frame, period_bounds, recent_events, venue_frame

PERIODS = {"近7天": 7, "近30天": 30, "近90天": 90}


@st.cache_data(ttl=60, show_spinner="正在计算风险…")
def _risk(url: str, as_of: date, thresholds: tuple) -> pd.DataFrame:
    with engine().connect() as conn:
        return area_risk(conn, as_of, load_model(conn))


# A resource, not data: 100,000 venues are shared read-only instead of unpickled (~45 ms) on every rerun.
@st.cache_resource(ttl=60, show_spinner="正在加载场所…")
def _venues(url: str, today: date) -> pd.DataFrame:
    with engine().connect() as conn:
        return venue_frame(conn, today, load_model(conn))


@st.cache_data(ttl=60, show_spinner="正在加载事件…")
def _events(url: str, start, end) -> pd.DataFrame:
    with engine().connect() as conn:
        return event_frame(conn, start, end)


def _thresholds(url: str) -> Thresholds:
    with engine().connect() as conn:
        return load_model(conn).thresholds


user = require_page("risk_map")
url = str(engine().url)
units, anc = geography()
if units.empty:
    st.warning("数据库中还没有区划数据。请运行 `make run` 或 `make seed`。")
    st.stop()
code_to_id = dict(zip(units["code"], units.index, strict=True))
if user.scope_unit_id not in units.index:
    st.error("您的管辖范围不存在，请联系管理员。")
    st.stop()
root_id = user.scope_unit_id

# The area is in the URL (?area=<code>) so a command centre can bookmark any view.
area_id = code_to_id.get(st.query_params.get("area", ""), root_id)
if root_id not in path_to_root(anc, area_id):
    deny(user, "risk_map area", area_id)
    st.error("该区域不在您的管辖范围内。")
    st.stop()
area = units.loc[area_id]
area_level = AdminLevel(area["level"])

st.title("五色图 · 区域平安风险")
c1, c2, c3, c4 = st.columns([1.2, 1, 1.2, 2])
today = clock.today()
as_of = c1.date_input("风险截至日期", value=today, max_value=today, format="YYYY-MM-DD", key="rm_as_of")
period_label = c2.selectbox("事件时段", list(PERIODS), index=1, key="rm_period")
lower = [lvl for lvl in AdminLevel if lvl.depth > area_level.depth] or [area_level]
level = c3.selectbox("显示层级", lower, format_func=lambda lv: lv.label, key=f"rm_level_{area_id}")
# ?layers=区域风险,事件热力 lets a screen bookmark its layers too.
wanted = [x for x in st.query_params.get("layers", "").split(",") if x in LAYERS] or ["区域风险", "场所平安码"]
layers_on = c4.multiselect(
    "图层", LAYERS, default=wanted, key="rm_layers"
)

# Breadcrumb: every ancestor is one click away.
crumbs = path_to_root(anc, area_id)
crumbs = crumbs[crumbs.index(root_id):]  # nothing above the user's scope
cols = st.columns(len(crumbs) + 1)
for col, uid in zip(cols, crumbs, strict=False):
    u = units.loc[uid]
    if uid == area_id:
        col.markdown(f"**{md_text(u['name'])}**")
    elif col.button(u["name"], key=f"crumb_{uid}"):
        st.query_params["area"] = u["code"]
        st.rerun()

thresholds = _thresholds(url)
risk = _risk(url, as_of, tuple(vars(thresholds).values()))
start, end = period_bounds(as_of, PERIODS[period_label])
view = assemble(units, anc, risk, _venues(url, today), _events(url, start, end), area_id, level, layers_on)
st.markdown(f"<div data-testid='risk-legend'>{legend_html(view.counts)}</div>", unsafe_allow_html=True)
layers, shown, grid_ids, venues = view.layers, view.shown, view.grid_ids, view.venues

left, right = st.columns([3, 2])
with left:
    deck = maps.risk_deck(layers, tuple(area.geometry.bounds), width=820, height=620)
    chosen = st.pydeck_chart(
        deck, on_select="rerun", selection_mode="single-object", key=f"rm_deck_{area_id}_{level.value}", height=620
    )
    picked = (chosen.selection.get("objects") or {}).get("areas") if chosen else None
    if picked:
        props = picked[0].get("properties", picked[0])
        target = props.get("code")
        if target and target != area["code"] and target in code_to_id:
            st.query_params["area"] = target
            st.rerun()
    st.caption("点击区域可下钻；用上方路径返回上级。")

with right:
    row = risk.loc[area_id]
    cls = RiskClass(row["risk_class"])
    st.subheader(f"{area['name']}（{AdminLevel(area['level']).label}）")
    kpi_row([("风险等级", cls.label), ("风险分值", f"{row['score']:.1f}"), ("常住人口", int(area["population"]))])
    st.markdown("**为什么是这个颜色？** 各因素贡献（分/万人，从大到小）")
    with engine().connect() as conn:
        parts = explain_unit(row, load_model(conn))
    st.table(
        pd.DataFrame(
            [{"因素": p.factor, "数量": f"{p.amount:,.1f}", "贡献分值": f"{p.points:,.1f}"} for p in parts if p.points > 0]
            or [{"因素": "无风险因素", "数量": "0", "贡献分值": "0.0"}]
        ).set_index("因素")
    )
    top = view.top_venues
    with engine().connect() as conn:
        recent = recent_events(conn, grid_ids, clock.now())
    st.markdown("**风险最高的场所**")
    if top.empty:
        st.caption("本区域没有需要关注的场所。")
    else:
        st.table(
            top.assign(points=top["points"].map("{:.1f}".format))
            .rename(columns={"name": "场所", "category": "类别", "code": "平安码", "major": "重大隐患",
                             "general": "一般隐患", "points": "风险分"})
            .set_index("场所")[["类别", "平安码", "重大隐患", "一般隐患", "风险分"]]
        )
    st.markdown("**最新事件**")
    if recent.empty:
        st.caption("暂无事件。")
    else:
        st.table(
            recent.assign(时间=recent["reported_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")))
            .rename(columns={"title": "事件", "category": "类别", "status": "状态"})
            .set_index("时间")[["事件", "类别", "状态"]]
        )

st.subheader(f"{level.label}风险排名")
ranking = shown.sort_values("score", ascending=False)[["name", "code", "class_label", "score"]]
st.dataframe(
    ranking.rename(columns={"name": "名称", "code": "编码", "class_label": "风险等级", "score": "风险分值"}),
    hide_index=True,
    width="stretch",
)

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
            with engine().begin() as conn:
                save_thresholds(conn, new, clock.now(), user=user)
            _risk.clear()
            st.toast("阈值已保存，地图已按新阈值重新分级。")
            st.rerun()
