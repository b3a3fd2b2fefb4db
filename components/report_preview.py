"""What a leader sees before sending a report up, and the 预警 list they can act on.

:func:`report_preview` shows a 日报/周报/月报 workbook on screen, sheet by sheet, each cell as Excel
displays it (:func:`services.report_book.read_book`). :func:`warnings_table` lists 预警 in plain
Chinese with a link to the area on the 五色图, and for a leader 转督办: one warning becomes an event to
work and supervise (:func:`services.warnings_followup.follow_up`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from components import cached, store
from domain.access import CurrentUser
from domain.early_warning import Alert
from services import clock
from services.access import OutOfScope
from services.analytics import alerts_frame
from services.report_book import read_book
from services.warnings_followup import follow_up, plain


def report_preview(data: bytes, *, key: str) -> None:
    """The workbook ``data`` sheet by sheet: its title and period, then the table as the file shows it."""
    try:
        sheets = read_book(data)
    except (OSError, ValueError, KeyError):
        st.warning("无法预览该报表，请下载后查看。")
        return
    st.markdown("**报表预览**")
    for tab, sheet in zip(st.tabs([s.name for s in sheets]), sheets, strict=True):
        with tab:
            st.markdown(f"**{sheet.title}**")
            st.caption(sheet.subtitle)
            if sheet.table.empty:
                st.caption("（本表无数据）")
            else:
                st.dataframe(sheet.table, hide_index=True, width="stretch", key=f"{key}_{sheet.name}")


def warnings_table(alerts: Sequence[Alert], units: pd.DataFrame, user: CurrentUser | None = None) -> None:
    """预警 as a table: kind, area, matter, period, the reason in plain Chinese, and 在地图上查看; with
    ``user`` (a leader), 转督办 of one chosen warning beside its map link."""
    frame = alerts_frame(list(alerts), units)
    frame["依据"] = frame["依据"].map(plain)
    codes = units["code"] if "code" in units.columns else pd.Series(dtype=str)
    frame["地图"] = [
        f"/risk_map?area={codes.get(a.unit_id, '')}" if a.unit_id in codes.index else None for a in alerts
    ]
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "依据": st.column_config.TextColumn("依据", width="large"),
            "地图": st.column_config.LinkColumn("地图", display_text="在五色图上查看"),
        },
    )
    if user is not None and user.may("event_analytics"):
        _follow_up(alerts, frame, user)


def _follow_up(alerts: Sequence[Alert], frame: pd.DataFrame, user: CurrentUser) -> None:
    """转督办 beside 在五色图上查看 for the warning chosen in the list."""
    labels = [f"{a.kind.label}｜{n}｜{a.category.label}" for a, n in zip(alerts, frame["区域"], strict=True)]
    pick, go, see = st.columns([3, 1, 1], vertical_alignment="bottom")
    i = pick.selectbox("预警", range(len(alerts)), format_func=lambda k: labels[k], key="warning_pick")
    if frame["地图"].iloc[i]:
        see.link_button("在五色图上查看", frame["地图"].iloc[i])
    if go.button("转督办", key="warning_follow_up", help="将该预警转为督办事件，进入处置流程"):
        try:
            done = follow_up(store.uow(), user, alerts[i], clock.now())
        except OutOfScope as e:
            st.error(str(e))
            return
        cached.clear_after_write()
        if done.created:
            st.success(f"已转督办：事件编号 {done.event_id}，可在“事件”中查看和派单。")
        else:
            st.info(f"该预警已转督办：事件编号 {done.event_id}。")
