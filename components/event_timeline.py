"""全程记录 of one event as a timeline: every step with its time, who, where, its full note (never cut, never
"None"), the 办结's 处置结果 and photos, and the 评价 given."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from components.text import md_text
from domain.event_flow import ACTION_LABELS, Action
from domain.vocabulary import EventStatus, Rating, actor_label
from services.event_views import EventDetail

#: What a step's note is called in the timeline, where it says more than "说明".
NOTE_HEADINGS: Mapping[Action, str] = {
    Action.RESOLVE: "处置结果",
    Action.RATE: "评价",
    Action.REJECT: "退回原因",
    Action.RETURN: "退单原因",
    Action.ESCALATE: "上移原因",
    Action.REOPEN: "重新处置原因",
    Action.COMMENT: "意见",
    Action.OVERDUE: "超期",
}


def _text(value: object) -> str:
    """A cell as text: an empty or missing value is "—", never "None" or "nan"."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return str(value).strip() or "—"


def step_note(action: Action, note: object, rating: object, last_rating_step: bool) -> str | None:
    """The note to show under a step, or None when it only repeats the step's name (the default note).

    A 评价 row written before the verdict went into the trail says only "评价": the event's rating stands
    in for the last such row."""
    text = "" if note is None or (not isinstance(note, str) and pd.isna(note)) else str(note).strip()
    if action is Action.RATE and text in ("", ACTION_LABELS[Action.RATE]):
        if last_rating_step and rating is not None and not pd.isna(rating):
            return f"满意度：{Rating(rating).label}"
        return None
    if not text or text == ACTION_LABELS[action]:
        return None
    return text


def _with_heading(action: Action, note: str) -> str:
    """The note as Markdown, all of it, one line per line, after its heading (a 评价 names itself)."""
    body = md_text(note).replace("\n", "  \n")
    if action is Action.RATE and ("满意" in note or note.startswith("评价")):
        return body
    return f"{NOTE_HEADINGS.get(action, '说明')}：{body}"


def timeline(detail: EventDetail) -> None:
    """The steps, oldest first; a step's photos (办结's 处置照片) under it."""
    trail = detail.trail
    st.markdown(f"**全程记录**（{len(trail)} 步）")
    if trail.empty:
        st.caption("暂无记录。")
        return
    rates = [i for i, a in enumerate(trail["action"]) if a == Action.RATE]
    for i, row in enumerate(trail.itertuples(index=False)):
        action = Action(row.action)
        with st.container(border=True):
            st.markdown(
                f"**{int(row.seq)}. {ACTION_LABELS[action]}** → {EventStatus(row.to_status).label}　"
                f"{row.at:%Y-%m-%d %H:%M}　·　{md_text(actor_label(row.actor_role))}　·　"
                f"{md_text(_text(row.unit))}　·　部门：{md_text(_text(row.department))}"
            )
            note = step_note(action, row.note, detail.event.get("rating"), bool(rates) and i == rates[-1])
            if note is not None:
                st.markdown(_with_heading(action, note))
            photos = detail.step_photos.get(int(row.seq), [])
            if photos:
                st.image(photos, width=200, caption=[f"处置照片 {n}" for n in range(1, len(photos) + 1)])
