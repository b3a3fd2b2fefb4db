"""查看完整信息: the control a permitted role uses to reveal one record's contact details, with a reason.

Shown only to roles with the ``unmask_personal_data`` permission; the service checks again, writes the
reveal to the audit trail and refuses everyone else.
"""

from __future__ import annotations

import streamlit as st

from components import store
from components.text import md_text
from domain.access import CurrentUser
from services import clock
from services.access import OutOfScope, verified_user
from services.personal_data import PERMISSION, ReasonRequired, reveal_event_reporter, reveal_venue_contact

_REVEAL = {"event": (reveal_event_reporter, "上报人"), "venue": (reveal_venue_contact, "负责人")}


def reveal_control(user: CurrentUser | None, kind: str, object_id: int) -> None:
    """A small form: 查看原因 (required) → the full name and phone, for this run only."""
    if user is None or not user.may(PERMISSION):
        return
    reveal, who = _REVEAL[kind]
    with st.popover(f"查看完整{who}信息", width="content"):
        with st.form(f"reveal_{kind}_{object_id}", border=False):
            st.caption("依据《个人信息保护法》，查看完整信息将记录查看人、时间和原因。")
            reason = st.text_input("查看原因", max_chars=200, placeholder="如：回访核实处置结果")
            go = st.form_submit_button("确认查看")
        if go:
            try:
                with store.reader() as conn:
                    viewer = verified_user(conn, user)
                if viewer is None:
                    raise OutOfScope("登录信息已失效，请重新登录")
                contact = reveal(store.uow(), viewer, int(object_id), reason, clock.now())
            except ReasonRequired as exc:
                st.error(md_text(str(exc)))
            except OutOfScope as exc:
                st.error(md_text(str(exc)))
            else:
                st.success(
                    f"{who}：{md_text(contact.name or '—')}　电话：{md_text(contact.phone or '—')}（已记录本次查看）"
                )
