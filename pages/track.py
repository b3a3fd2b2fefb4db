"""进度查询: a citizen follows up a 随手拍 report by its number and the last four digits of their phone.

Public (no login), like 随手拍. It shows what Open311's ``GET requests/{id}`` would: status, who holds
it, the handling department, the public replies and, once closed, the rating; nothing personal. Failed
attempts are limited per event and per client (services.tracking).
"""

from __future__ import annotations

import streamlit as st

from components import store
from components.auth import link_to, through_entrypoint
from components.text import md_text
from domain.errors import FieldProblems
from services import clock
from services.tracking import PublicStatus, TrackRefused, client_key, lookup

FOUND = "track_found"  # the last status found, shown until the next query

through_entrypoint()
st.title("进度查询")
st.caption("请输入上报成功时显示的事件编号，以及上报时所留手机号的后四位。")

with st.form("track", clear_on_submit=True):
    number = st.text_input("事件编号", max_chars=14, placeholder="例如：1024")
    tail = st.text_input("手机号后四位", max_chars=4, placeholder="例如：5678")
    asked = st.form_submit_button("查询", type="primary", width="stretch")

if asked:
    st.session_state.pop(FOUND, None)
    try:
        with store.reader() as conn:
            st.session_state[FOUND] = lookup(
                conn,
                number,
                tail,
                now=clock.now(),
                client=client_key(st.context.ip_address, st.context.headers.get("X-Forwarded-For")),
            )
    except FieldProblems as exc:
        for field, problem in exc.problems.items():
            st.error(f"{field}：{md_text(problem)}")
    except TrackRefused as exc:
        st.error(md_text(str(exc)))


def show(found: PublicStatus) -> None:
    """The status card: where the report stands, who handles it, what they replied."""
    with st.container(border=True, key="track_result"):
        st.markdown(f"**事件 \\#{found.event_id}**　{md_text(found.category)}")
        if found.merged:
            st.info(f"您反映的问题已并入事件 #{found.shown_id} 一并处理，以下为该事件的进展。")
        state = "已办结" if found.closed else "处理中"
        st.markdown(f"**当前状态：{found.status.label}**（{state}）")
        lines = [
            ("紧急程度", found.urgency),
            ("办理层级", found.level),
            ("处置部门", found.department or "尚未派单"),
            ("上报时间", f"{found.reported_at:%Y-%m-%d %H:%M}"),
            ("最近更新", f"{found.updated_at:%Y-%m-%d %H:%M}"),
        ]
        if found.rating:
            lines.append(("评价", found.rating))
        st.markdown("  \n".join(f"{k}：{md_text(v)}" for k, v in lines))
        if found.replies:
            st.markdown("**答复**")
            for reply in found.replies:
                st.markdown(f"{reply.at:%Y-%m-%d}　{md_text(reply.text)}")
        with st.expander("办理过程"):
            st.markdown("  \n".join(f"{s.at:%Y-%m-%d %H:%M}　{md_text(s.text)}" for s in found.steps))


found = st.session_state.get(FOUND)
if isinstance(found, PublicStatus):
    show(found)
link_to("pages/report.py", "我要反映问题（随手拍）", ":material/photo_camera:")
