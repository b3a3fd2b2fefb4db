"""指挥大屏: the whole area on a wall display, refreshing itself, for days, without anyone at the keyboard.

URL: /big_screen?area=330802&rotate=30&refresh=10&token=… (token: a revocable read-only display token).
"""

from __future__ import annotations

import html

import streamlit as st

from components import maps
from components.auth import login_form, through_entrypoint, verified_current_user
from components.risk_view import assemble
from components.store import engine, geography
from domain.hierarchy import descendants
from domain.risk import CLASS_RGB, RiskClass
from domain.vocabulary import AdminLevel
from services import clock
from services.access import deny
from services.analytics import warnings
from services.display import open_by_level, rotation_index, screen_kpis, viewer_for
from services.event_views import feed, scope_for
from services.risk import area_risk, load_model
from services.risk_map import event_frame, period_bounds, venue_frame

through_entrypoint()
params = st.query_params
with engine().connect() as conn:
    viewer = viewer_for(conn, params.get("token"))
viewer = viewer or verified_current_user()
if viewer is None:
    login_form()
    st.stop()
if not viewer.may_open("big_screen"):
    deny(viewer, "page big_screen", None)
    st.error(f"您的角色（{viewer.role.label}）无权访问指挥大屏。")
    st.stop()

REFRESH_S = max(1, min(int(params.get("refresh", "10") or 10), 3600))
ROTATE_S = max(0, int(params.get("rotate", "0") or 0))

# Dark, no Streamlit chrome; sizes in vw so 3840×2160 reads like 1920×1080 from 5 m.
st.markdown(
    """<style>
    header, [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
    [data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"], footer,
    [data-testid="stStatusWidget"] {display: none !important;}
    .stApp, [data-testid="stAppViewContainer"] {background: #07111f; color: #e8eef7;}
    .block-container, [data-testid="stMainBlockContainer"] {padding: 0.8vw 1.2vw !important; max-width: 100% !important;}
    html, body {overflow: hidden; font-size: 0.9vw;}
    .stApp * {font-size: max(0.85vw, 14px);}
    .bs-title {font-size: 1.7vw !important; font-weight: 700; color: #fff; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
    .bs-tiles {display: grid; grid-template-columns: repeat(6, 1fr); gap: 0.6vw; margin: 0.5vw 0;}
    .bs-tile {background: #0f2238; border: 1px solid #1d3b5e; border-radius: 0.4vw; padding: 0.5vw 0.7vw; overflow: hidden;}
    .bs-tile .k {font-size: 0.85vw !important; color: #8fb3d9; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
    .bs-tile .v {font-size: 2.1vw !important; font-weight: 700; color: #fff; white-space: nowrap;}
    .bs-panel {background: #0f2238; border: 1px solid #1d3b5e; border-radius: 0.4vw; padding: 0.5vw 0.7vw; overflow: hidden;}
    .bs-panel h3 {font-size: 1.05vw !important; margin: 0 0 0.4vw 0; color: #9cc7ff;}
    .bs-row {display: flex; justify-content: space-between; gap: 0.5vw; padding: 0.2vw 0; border-bottom: 1px solid #16304f;
             white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
    .bs-row span {overflow: hidden; text-overflow: ellipsis;}
    .bs-flow {display: flex; align-items: center; gap: 0.4vw;}
    .bs-flow .lv {flex: 1; text-align: center; background: #12304f; border-radius: 0.3vw; padding: 0.4vw 0;}
    .bs-flow .lv b {display: block; font-size: 1.6vw !important; color: #fff;}
    .bs-legend span {margin-right: 0.8vw; white-space: nowrap;}
    </style>""",
    unsafe_allow_html=True,
)


@st.cache_data(ttl=60, show_spinner=False)
def _risk(url: str, day):
    with engine().connect() as conn:
        return area_risk(conn, day, load_model(conn)), venue_frame(conn, day), event_frame(conn, *period_bounds(day, 7))


@st.cache_data(ttl=600, show_spinner=False)
def _alerts(url: str, area_id: int, day, grids: tuple[int, ...]):
    from services.event_views import Scope

    units, _ = geography()
    with engine().connect() as conn:
        return [(a.kind.label, a.message) for a in warnings(conn, Scope(grids), day, units)]


def _esc(value) -> str:
    return html.escape(str(value))


url = str(engine().url)
units, anc = geography()
code_to_id = dict(zip(units["code"], units.index, strict=True))
scope_root = viewer.scope_unit_id
base_id = code_to_id.get(params.get("area", ""), scope_root)
if scope_root not in [int(v) for v in anc.loc[base_id].dropna()]:
    deny(viewer, "big_screen area", base_id)
    st.error("该区域不在此大屏的管辖范围内。")
    st.stop()


@st.fragment(run_every=REFRESH_S)
def screen() -> None:
    now = clock.now()
    area_id = base_id
    if ROTATE_S:  # the playlist: each child area in turn, placed by the clock
        kids = descendants(anc, base_id, (AdminLevel(units.at[base_id, "level"]).child or AdminLevel.GRID).value)
        if kids:
            area_id = kids[rotation_index(now, ROTATE_S, len(kids))]
    area = units.loc[area_id]
    level = AdminLevel(area["level"]).child or AdminLevel(area["level"])
    grids = descendants(anc, area_id, AdminLevel.GRID.value)
    scope = scope_for(viewer, grids)
    with engine().connect() as conn:
        kpis = screen_kpis(conn, scope, now)
        flow = open_by_level(conn, scope)
        ticker = feed(conn, scope, None, limit=9)
    risk, venues, events = _risk(url, now.date())
    view = assemble(units, anc, risk, venues, events, area_id, level, ["区域风险"])
    alerts = _alerts(url, area_id, now.date(), tuple(grids))

    st.markdown(
        f"<div class='bs-title' data-testid='bs-title'>{_esc(area['name'])} · 社会治理指挥大屏"
        f"<span style='float:right;font-size:1vw'>{now:%Y-%m-%d %H:%M:%S}</span></div>"
        "<div class='bs-tiles' data-testid='bs-kpis'>"
        + "".join(f"<div class='bs-tile'><div class='k'>{_esc(k)}</div><div class='v'>{_esc(v)}</div></div>" for k, v in kpis.items())
        + "</div>",
        unsafe_allow_html=True,
    )
    left, mid, right = st.columns([5, 3, 3], gap="small")
    with left:
        legend = "".join(
            f"<span><span style='color:rgb{CLASS_RGB[c]}'>■</span> {c.label} {view.counts[c]}</span>" for c in RiskClass
        )
        st.markdown(f"<div class='bs-panel bs-legend' data-testid='bs-map'><h3>五色图 · {_esc(level.label)}</h3>{legend}</div>",
                    unsafe_allow_html=True)
        deck = maps.risk_deck(view.layers, tuple(area.geometry.bounds), dark=True, width=900, height=560)
        st.pydeck_chart(deck, height=int(params.get("map_h", "560") or 560), key="bs_map")
    with mid:
        levels = "".join(f"<div class='lv'>{_esc(k)}<b>{v:,}</b></div>" for k, v in flow.items())
        st.markdown(f"<div class='bs-panel' data-testid='bs-flow'><h3>五级联动 · 在办事件所在层级</h3>"
                    f"<div class='bs-flow'>{levels}</div></div>", unsafe_allow_html=True)
        rows = "".join(
            f"<div class='bs-row'><span>{r.updated_at:%H:%M} {_esc(r.title)}</span><span>{_esc(r.status_label)}</span></div>"
            for r in ticker.itertuples()
        ) or "<div class='bs-row'>暂无事件</div>"
        st.markdown(f"<div class='bs-panel' data-testid='bs-ticker'><h3>实时事件</h3>{rows}</div>", unsafe_allow_html=True)
    with right:
        items = "".join(
            f"<div class='bs-row'><span>{_esc(m)}</span></div>" for _k, m in alerts[:8]
        ) or "<div class='bs-row'>当前无预警</div>"
        st.markdown(f"<div class='bs-panel' data-testid='bs-alerts'><h3>预警 · {len(alerts)} 条</h3>{items}</div>",
                    unsafe_allow_html=True)
        top = view.shown.sort_values("score", ascending=False).head(6)
        rank = "".join(
            f"<div class='bs-row'><span>{_esc(n)}</span><span style='color:rgb{CLASS_RGB[RiskClass(c)]}'>{s:.0f}</span></div>"
            for n, c, s in zip(top["name"], top["risk_class"], top["score"], strict=True)
        )
        st.markdown(f"<div class='bs-panel' data-testid='bs-rank'><h3>风险排名 · {_esc(level.label)}</h3>{rank}</div>",
                    unsafe_allow_html=True)


screen()
