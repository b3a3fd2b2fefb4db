"""事件流: the live event flow of the user's area — a feed refreshed every few seconds, counts, today's flow, 督办."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pandas as pd
import plotly.graph_objects as go
import pydeck as pdk
import streamlit as st
from sqlalchemy import select

from components import maps
from components.auth import require_page
from components.event_sections import render_section
from components.kpi import kpi_row
from components.offline import to_display
from components.personal_data import reveal_control
from components.store import engine, geography
from components.text import md_text
from db.engine import session_factory
from db.models import Department
from domain.access import department_may_act, may_act
from domain.event_flow import ACTION_LABELS, NOTE_ONLY, Action, IllegalTransition, allowed_actions
from domain.hierarchy import descendants, rollup
from domain.vocabulary import OPEN_STATUSES, AdminLevel, EventStatus, Rating, Role, actor_label
from services import clock
from services.event_rules import suggest_dispatch
from services.event_views import (
    event_detail,
    feed,
    late_label,
    open_counts_by_grid,
    overdue,
    scope_for,
    suggest_cooperators,
    today_kpis,
    todays_flow,
)
from services.events import ConcurrentChange, OutOfScope, act_as

REFRESH_S = 5
FEED_KEEP = 60

user = require_page("events")


units, anc = geography()
if user.scope_unit_id not in units.index:
    st.error("您的管辖范围不存在，请联系管理员。")
    st.stop()
scope = scope_for(user, descendants(anc, user.scope_unit_id, AdminLevel.GRID.value))
scope_unit = units.loc[user.scope_unit_id]

st.title(f"事件流 · {md_text(scope_unit['name'])}")
VIEWS = ["实时", "分析排名", "预警", "报表", "导入"] if user.may("event_analytics") else ["实时"]
if user.may("edit_rules"):
    VIEWS.append("规则")
view = st.segmented_control("视图", VIEWS, default="实时", key="ev_view") or "实时"
if view != "实时":
    render_section(view, user, scope, units, anc)
    st.stop()


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    """KPIs and the feed; each run asks the store only for events changed since the last run."""
    now = clock.now()
    with engine().connect() as conn:
        kpi_row(list(today_kpis(conn, scope, now).items()))
        since = st.session_state.get("feed_since")
        fresh = feed(conn, scope, since, limit=FEED_KEEP)
    kept = st.session_state.get("feed_rows")
    rows = fresh if kept is None else pd.concat([fresh, kept[~kept["id"].isin(fresh["id"])]])
    rows = rows.head(FEED_KEEP)
    st.session_state["feed_rows"] = rows
    if not rows.empty:
        st.session_state["feed_since"] = rows["updated_at"].max()
    if since is not None:  # a report that arrived since the last tick pops up, so nobody has to watch the grid
        arrived = fresh[pd.to_datetime(fresh["reported_at"]) > pd.Timestamp(since)]
        for r in arrived.head(3).itertuples(index=False):
            st.toast(f"新事件 #{r.id}：{md_text(r.title)}（{r.source_label}）", icon="🔔")
        if len(arrived) > 3:
            st.toast(f"另有 {len(arrived) - 3} 件新事件", icon="🔔")
    st.caption(f"实时动态（每 {REFRESH_S} 秒刷新，更新于 {now:%H:%M:%S}；本次新到 {len(fresh) if since else 0} 条）")
    if rows.empty:
        st.info("暂无事件。")
        return
    stuck_before = now - timedelta(days=3)
    view = pd.DataFrame(
        {
            "编号": rows["id"],
            "更新时间": rows["updated_at"].map(lambda t: t.strftime("%m-%d %H:%M:%S")),
            "来源": rows["source_label"],
            "类别": rows["category_label"],
            "事件": rows["title"],
            "状态": rows["status_label"],
            "紧急程度": rows["urgency_label"],
            "提醒": [
                "⚠ 超期" if late else ("⏳ 滞留" if st_ in {s.value for s in OPEN_STATUSES} and rep < stuck_before else "")
                for late, st_, rep in zip(rows["is_overdue"], rows["status"], rows["reported_at"], strict=True)
            ],
        }
    )
    st.dataframe(view, hide_index=True, width="stretch", height=320)


live()

# Counts by state for each unit one level below the user's scope.
level = AdminLevel(scope_unit["level"]).child
with engine().connect() as conn:
    open_by_grid = open_counts_by_grid(conn, scope)
if level is not None and not open_by_grid.empty:
    st.subheader(f"各{level.label}在办事件（按状态）")
    summed = rollup(open_by_grid, anc)
    kids = descendants(anc, user.scope_unit_id, level.value)
    table = summed.loc[kids].rename(columns={s.value: s.label for s in EventStatus})
    table.insert(0, "单元", units.loc[kids, "name"].to_numpy())
    table["合计"] = table.drop(columns="单元").sum(axis=1)
    st.dataframe(table.sort_values("合计", ascending=False), hide_index=True, width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("今日事件流向")
    with engine().connect() as conn:
        flow = todays_flow(conn, scope, datetime.combine(clock.today(), datetime.min.time()))
    if flow.empty:
        st.caption("今日暂无事件。")
    else:
        stages = ["source", "level", "department", "outcome"]
        labels = list(dict.fromkeys(v for c in stages for v in flow[c]))
        index = {v: i for i, v in enumerate(labels)}
        links = pd.concat(
            [flow.groupby([a, b])["n"].sum().reset_index().set_axis(["s", "t", "n"], axis=1)
             for a, b in itertools.pairwise(stages)]
        )
        fig = go.Figure(go.Sankey(
            node={"label": labels, "pad": 12},
            link={"source": links["s"].map(index), "target": links["t"].map(index), "value": links["n"]},
        ))
        fig.update_layout(height=360, margin={"l": 8, "r": 8, "t": 8, "b": 8}, font={"size": 12})
        st.plotly_chart(fig, width="stretch", config={"displaylogo": False})
with right:
    st.subheader("超期督办")
    with engine().connect() as conn:
        late = overdue(conn, scope, clock.now(), limit=100)
    if late.empty:
        st.caption("没有超期事件。")
    else:
        st.dataframe(
            pd.DataFrame({
                "编号": late["id"], "事件": late["title"], "状态": late["status_label"],
                "时限": late["due_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
                "超期": late["late_hours"].map(late_label),
            }),
            hide_index=True, width="stretch", height=360,
        )

st.subheader("事件详情")
if "ev_detail_id" not in st.session_state:  # a fixed default: a changing one would reset the widget
    rows = st.session_state.get("feed_rows")
    st.session_state["ev_detail_id"] = int(rows["id"].iloc[0]) if rows is not None and not rows.empty else 1
event_id = st.number_input("事件编号", min_value=1, step=1, key="ev_detail_id")
with engine().connect() as conn:
    detail = event_detail(conn, scope, int(event_id), user)
if detail is None:
    st.warning("没有这个编号的事件，或该事件不在您的管辖范围内。")
    st.stop()

e = detail.event
c1, c2 = st.columns([3, 2])
with c1:
    st.markdown(f"**#{e['id']} {md_text(e['title'])}**")
    st.write(
        f"状态：{EventStatus(e['status']).label}　·　当前层级：{md_text(e['owner_label'])}　·　"
        f"牵头部门：{md_text(e['department_label'])}　·　协办部门：{md_text(e['cooperators_label'])}"
    )
    st.write(f"上报：{e['reported_at']:%Y-%m-%d %H:%M}　·　反映人数：{e['reporter_count']}　·　"
             f"上报人：{md_text(e['reporter_name'] or '—')} {md_text(e['reporter_phone'] or '')}")
    if e["reporter_name"] or e["reporter_phone"]:
        reveal_control(user, "event", int(e["id"]))
    if e["description"]:
        st.text(e["description"])
    for photo in detail.photos:
        st.image(photo, width=240)
with c2:
    # Not st.map: its default basemap comes from the internet; this deck uses the local style.
    here = pdk.Layer("ScatterplotLayer", data=[{"position": [float(x) for x in to_display(e["lon"], e["lat"])]}],
                     get_position="position", get_radius=25, radius_min_pixels=6, get_fill_color=[192, 57, 43])
    d = 0.004
    grid = units.loc[e["grid_id"]] if e["grid_id"] in units.index else None
    st.pydeck_chart(
        maps.risk_deck([here], (e["lon"] - d, e["lat"] - d, e["lon"] + d, e["lat"] + d), tooltip_html=""),
        height=220, key=f"ev_map_{e['id']}",
    )
    if grid is not None:
        st.caption(f"所在网格：{md_text(grid['name'])}（{grid['code']}）")

trail = detail.trail
st.dataframe(
    pd.DataFrame({
        "步骤": trail["seq"], "时间": trail["at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
        "操作": trail["action"].map(lambda a: ACTION_LABELS[Action(a)]),
        "状态": trail["to_status"].map(lambda s: EventStatus(s).label),
        "角色": trail["actor_role"].map(actor_label), "层级": trail["unit"], "部门": trail["department"], "说明": trail["note"],
    }),
    hide_index=True, width="stretch",
)

actions = [a for a in allowed_actions(EventStatus(e["status"])) if may_act(user, a)]
if user.role is Role.DEPARTMENT and e["lead_department_id"] != user.department_id:
    st.info("贵部门为本事件的协办部门：可查看事件和全程记录、填写协办意见，办理由牵头部门进行。")
    # decision 0005: cooperators see and write opinions, the lead acts (the service refuses them too)
    actions = [a for a in actions if department_may_act(a, leads=False, cooperates=True)]
if actions:
    st.markdown("**办理**")
    with st.form(f"act_{e['id']}"):
        action = st.radio("操作", actions, format_func=lambda a: ACTION_LABELS[a], horizontal=True)
        note = st.text_input("说明（退回、退单、上移须填写原因；处置意见写在这里）", max_chars=500)
        dept, coop, rating = None, [], None  # the dispatch and rating fields only where those actions apply
        if Action.DISPATCH in actions:
            with engine().connect() as conn:
                depts = conn.execute(select(Department.id, Department.name).order_by(Department.name)).all()
                decision, suggested = suggest_dispatch(conn, e)
                coop_suggested = suggest_cooperators(conn, decision.cooperating_kinds, suggested)
            ids = [d.id for d in depts]
            dept = st.selectbox("派往部门（派单时）", ids, format_func=dict(depts).get,
                                index=ids.index(suggested) if suggested in ids else None)
            coop = st.multiselect("协办部门（一件事，派单时）", ids, default=[i for i in coop_suggested if i in ids],
                                  format_func=dict(depts).get, key=f"coop_{e['id']}")
            st.caption(f"分拨建议：{md_text(decision.reason)}")
        if Action.RATE in actions:
            rating = st.selectbox("满意度（评价时）", list(Rating), format_func=lambda r: r.label, index=None)
        if st.form_submit_button("提交"):
            needs_reason = action in (Action.REJECT, Action.RETURN, Action.ESCALATE, Action.REOPEN)
            if action in NOTE_ONLY and not note.strip():
                st.error("请在“说明”中填写意见内容。")
            elif needs_reason and not note.strip():
                st.error("请填写原因。")
            elif action is Action.DISPATCH and dept is None:
                st.error("请选择派往的部门。")
            else:
                try:
                    with session_factory(engine()).begin() as s:
                        act_as(s, user, scope, event_id=int(e["id"]), action=action, now=clock.now(),
                               note=note.strip() or None, department_id=dept if action is Action.DISPATCH else None,
                               rating=rating,
                               cooperating_department_ids=coop if action is Action.DISPATCH else None,
                               expected=EventStatus(e["status"]))
                except (IllegalTransition, ConcurrentChange, OutOfScope, ValueError) as exc:
                    st.error(md_text(str(exc)))
                else:
                    st.success(f"已{ACTION_LABELS[action]}。")
                    st.rerun()
