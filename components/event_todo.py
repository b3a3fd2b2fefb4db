"""我的待办 on the events page: what waits on the logged-in user, overdue and oldest first; a click on a
row opens the event in 事件详情 (:func:`components.event_card.pick_list`, as the feed does)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import store
from components.auth import link_to
from components.event_card import pick_list
from domain.access import CurrentUser
from domain.event_flow import ACTION_LABELS
from services import clock
from services.access import Scope, user_scope
from services.event_views import due_label, my_todo

TODO_PICK = "ev_todo_pick"
SHOWN = 200  # rows on screen; the count above says how many wait in all


def todo_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The to-do rows in Chinese: the step that waits (待办), the deadline and how it stands (期限)."""
    return pd.DataFrame(
        {
            "编号": rows["id"],
            "事件": rows["title"],
            "状态": rows["status_label"],
            "待办": rows["step"].map(lambda a: ACTION_LABELS[a]),
            "期限": [due_label(late, h) for late, h in zip(rows["late"], rows["late_hours"], strict=True)],
            "紧急程度": rows["urgency_label"],
            "时限": rows["due_at"].map(lambda t: "—" if pd.isna(t) else t.strftime("%Y-%m-%d %H:%M")),
            "上报时间": rows["reported_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
        }
    )


def _late(rows: pd.DataFrame) -> int:
    return int(rows["late"].sum()) if not rows.empty else 0


def todo_list(user: CurrentUser, scope: Scope) -> None:
    """The 我的待办 section: its count (and how many are overdue), the list, a clicked row opened below."""
    with store.reader() as conn:
        rows = my_todo(conn, user, scope, clock.now())
    late = _late(rows)
    st.subheader(f"我的待办（{len(rows)} 件" + (f"，其中超期 {late} 件）" if late else "）"))
    if rows.empty:
        st.caption("暂无等待您办理的事件。")
        return
    st.caption("超期的排在最前，其余按上报先后；点击一行即可在下方事件详情中打开并办理。")
    rows = rows.head(SHOWN)
    pick_list(todo_table(rows), rows["id"], TODO_PICK, height=min(320, 38 + 35 * len(rows)))


def todo_link(user: CurrentUser) -> None:
    """How many events wait on the user (and how many are overdue), linked to 我的待办 on the events page:
    a grid worker's home shows it above the day's route."""
    with store.reader() as conn:
        rows = my_todo(conn, user, user_scope(conn, user), clock.now())
    late = _late(rows)
    label = f"我的待办 {len(rows)} 件" + (f"，其中超期 {late} 件" if late else "")
    link_to("pages/events.py", label, icon=":material/assignment:")
