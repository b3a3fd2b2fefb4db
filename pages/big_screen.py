"""指挥大屏: the whole area on a wall display, refreshing itself, for days, without anyone at the keyboard.

URL: /big_screen?area=330802&rotate=30&refresh=10&token=… (token: a revocable read-only display token);
the page adds ``vw``/``vh`` (the window's size) itself on first load. Only the data refreshes, inside a
fragment, over cached reads, and nothing is greyed while it runs (decision 0029).
"""

from __future__ import annotations

import streamlit as st

from components import cached, maps, wall
from components.auth import login_form, no_area_yet, through_entrypoint, verified_current_user
from components.errors import guarded
from components.risk_view import assemble, by_risk
from components.store import geography, reader
from components.store import tree as store_tree
from domain.vocabulary import AdminLevel
from services import clock
from services.access import SCREEN_AREA_REFUSED, OutOfScope, area_by_code, deny, scope_for
from services.display import open_by_level, rotation_index, screen_kpis, viewer_for
from services.event_views import feed

through_entrypoint()
params = st.query_params
with reader() as conn:
    viewer = viewer_for(conn, params.get("token"))
viewer = viewer or verified_current_user()
if viewer is None:
    if params.get("token"):  # a wall has nobody at its keyboard: say why the screen stopped
        st.warning(
            "大屏令牌无效或已被吊销：请系统管理员重新生成大屏地址（python -m services.display create），或在此登录。"
        )
    login_form()
    st.stop()
if not viewer.may_open("big_screen"):
    deny(viewer, "page big_screen", None)
    st.error(f"您的角色（{viewer.role.label}）无权访问指挥大屏。")
    st.stop()

REFRESH_S = wall.int_param(params.get("refresh"), 10, 1, 3600)
ROTATE_S = wall.int_param(params.get("rotate"), 0, 0, 86400)
SCREEN = wall.Screen.from_params(params.get("vw"), params.get("vh"))

st.markdown(wall.STYLE, unsafe_allow_html=True)

tree = store_tree()
if no_area_yet():
    st.info("尚未导入区划：请系统管理员先导入本地区的边界文件，大屏随后即可显示。")
    st.stop()
try:
    base_id = area_by_code(tree, viewer, params.get("area"), "big_screen area", SCREEN_AREA_REFUSED)
except OutOfScope as exc:
    st.error(f"{exc}。")
    st.stop()
units, _ = geography()


@st.fragment(run_every=REFRESH_S)
@guarded("big_screen")  # a refresh does not pass through app.py's boundary
def screen() -> None:
    # A refresh skips app.py and the checks above: the token or the login is asked again each time, so a
    # revoked token or an ended login stops the wall at its next refresh, not at the next page load.
    with reader() as conn:
        still = viewer_for(conn, params.get("token"))
    if still is None and verified_current_user() is None:
        st.rerun()
    now = clock.now()
    area_id = base_id
    if ROTATE_S:  # the playlist: each child area in turn, placed by the clock
        kids = tree.children(base_id)
        if kids:
            area_id = kids[rotation_index(now, ROTATE_S, len(kids))]
    area = units.loc[area_id]
    level = AdminLevel(area["level"]).child or AdminLevel(area["level"])
    grids = tree.grids_under(area_id)
    scope = scope_for(viewer, grids)
    with reader() as conn:
        kpis = screen_kpis(conn, scope, now)
        flow = open_by_level(conn, scope, AdminLevel(area["level"]))
        ticker = feed(conn, scope, None, limit=5)
    day, points = cached.wall(grids)
    risk = cached.risk(now.date())
    # Areas only: the wall draws no venue or heat layer, so it never loads 100,000 venues on a refresh.
    view = assemble(units, tree, risk, wall.NO_VENUES, wall.NO_EVENTS, area_id, level, ["区域风险"])
    alerts = cached.alerts(now.date(), grids)

    st.markdown(
        wall.top_band(f"{area['name']} · 社会治理指挥大屏", f"{now:%Y-%m-%d %H:%M:%S}", kpis),
        unsafe_allow_html=True,
    )
    left, mid, right = st.columns(list(wall.COLUMNS), gap="small")
    with left:
        st.markdown(wall.left_column(day, ticker, SCREEN), unsafe_allow_html=True)
    with mid:
        alarmed = [u for _k, _m, u in alerts]
        st.markdown(wall.map_head(level.label, view.counts, len(set(alarmed))), unsafe_allow_html=True)
        layers = [
            *view.layers,
            wall.alarm_layer(units, alarmed, SCREEN),
            wall.points_layer(points, SCREEN),
            wall.names_layer(view.shown, SCREEN),
        ]
        bounds = tuple(area.geometry.bounds)
        deck = maps.risk_deck(
            [la for la in layers if la is not None],
            bounds,
            None,
            dark=True,
            width=SCREEN.map_width,
            height=SCREEN.map_height,
        )
        st.pydeck_chart(deck, height=SCREEN.map_height, key="bs_map")
    with right:
        top = wall.ranking_rows(by_risk(view.shown))
        linkage = AdminLevel(area["level"]).linked()
        st.markdown(
            wall.right_column(flow, alerts, top, level.label, SCREEN, linkage), unsafe_allow_html=True
        )


screen()
wall.viewport_probe()
