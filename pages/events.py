"""事件流: the live event flow of the user's area — a feed refreshed every few seconds, counts, today's flow, 督办."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from components.auth import require_page, verified_current_user
from components.charts import sankey
from components.errors import guarded
from components.event_card import (
    DETAIL_ANCHOR,
    action_form,
    arrival_toast,
    event_card,
    feed_table,
    open_counts_table,
    overdue_table,
    pick_list,
    scroll_to_detail,
)
from components.event_tabs import render_tab, tabs_for
from components.event_timeline import timeline
from components.event_todo import todo_list
from components.kpi import kpi_row
from components.store import geography, reader
from components.text import md_text
from services import clock
from services.access import user_scope
from services.event_views import event_detail, feed, open_counts_below, overdue, today_kpis, todays_flow

REFRESH_S = 5
FEED_KEEP = 60

user = require_page("events")


units, anc = geography()
if user.scope_unit_id not in units.index:
    st.error("您的管辖范围不存在，请联系管理员。")
    st.stop()
with reader() as conn:
    scope = user_scope(conn, user)

st.title(f"事件流 · {md_text(units.at[user.scope_unit_id, 'name'])}")
view = st.segmented_control("视图", tabs_for(user), default="实时", key="ev_view") or "实时"
if view != "实时":
    render_tab(view, user, scope, units, anc)
    st.stop()


todo_list(user, scope)  # what waits on me: outside the refresh, a click reruns the page to open it


@st.fragment(run_every=REFRESH_S)
@guarded("events live")  # a refresh does not pass through app.py's boundary
def live() -> None:
    """KPIs and the feed; each run asks the store only for events changed since the last run."""
    if verified_current_user() is None:  # a refresh skips app.py: a logout elsewhere, a disabled
        st.rerun()  # account, an ended session stop the feed here (the full run shows the login)
    now = clock.now()
    with reader() as conn:
        kpi_row(list(today_kpis(conn, scope, now).items()))
        since = st.session_state.get("feed_since")
        fresh = feed(conn, scope, since, limit=FEED_KEEP)
    kept = st.session_state.get("feed_rows")
    rows = fresh if kept is None else pd.concat([fresh, kept[~kept["id"].isin(fresh["id"])]])
    rows = rows.head(FEED_KEEP)
    st.session_state["feed_rows"] = rows
    if not rows.empty:
        st.session_state["feed_since"] = rows["updated_at"].max()
    if (
        since is not None
    ):  # a report that arrived since the last tick pops up, so nobody has to watch the grid
        arrived = fresh[pd.to_datetime(fresh["reported_at"]) > pd.Timestamp(since)]
        if toast := arrival_toast(arrived):  # one toast however many arrived
            st.toast(toast, icon="🔔")
    st.caption(
        f"实时动态（每 {REFRESH_S} 秒刷新，更新于 {now:%H:%M:%S}；本次新到 {len(fresh) if since else 0} 条）"
    )
    if rows.empty:
        st.info("暂无事件。")
        return
    if pick_list(feed_table(rows, now), rows["id"], "ev_feed_pick", height=320):
        st.rerun()  # the whole page: 事件详情 lies outside this fragment


live()

# Counts by state for each unit one level below the user's scope.
with reader() as conn:
    level, by_unit = open_counts_below(conn, scope, user.scope_unit_id)
if level is not None and not by_unit.empty:
    st.subheader(f"各{level.label}在办事件（按状态）")
    st.dataframe(open_counts_table(by_unit), hide_index=True, width="stretch")

left, right = st.columns(2)
with left:
    st.subheader("今日事件流向")
    with reader() as conn:
        flow = todays_flow(conn, scope, datetime.combine(clock.today(), datetime.min.time()))
    if flow.empty:
        st.caption("今日暂无事件。")
    else:
        # no toolbar: on a phone it covered the right-hand nodes
        st.plotly_chart(sankey(flow), width="stretch", config={"displaylogo": False, "displayModeBar": False})
with right:
    st.subheader("超期督办")
    with reader() as conn:
        late = overdue(conn, scope, clock.now(), limit=100)
    if late.empty:
        st.caption("没有超期事件。")
    else:
        pick_list(overdue_table(late), late["id"], "ev_late_pick", height=360)

st.subheader("事件详情", anchor=DETAIL_ANCHOR)
scroll_to_detail()
st.caption("点击上方我的待办、实时动态或超期督办中的一行即可打开该事件。")
if "ev_detail_id" not in st.session_state:  # a fixed default: a changing one would reset the widget
    rows = st.session_state.get("feed_rows")
    # none in the feed (a township's first day): an empty box, not someone else's event number
    st.session_state["ev_detail_id"] = (
        int(rows["id"].iloc[0]) if rows is not None and not rows.empty else None
    )
event_id = st.number_input("事件编号", min_value=1, step=1, key="ev_detail_id", placeholder="输入事件编号")
if event_id is None:
    st.info("辖区内暂无事件。有新事件上报后，会出现在上方的实时动态中。")
    st.stop()
with reader() as conn:
    detail = event_detail(conn, scope, int(event_id), user)
if detail is None:
    st.warning("没有这个编号的事件，或该事件不在您的管辖范围内。")
    st.stop()

event_card(detail, user, units)
action_form(user, scope, detail.event)
timeline(detail)
