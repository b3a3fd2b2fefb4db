"""The event views of the events page: the feed and 督办 tables, one event's card, its trail, its action form.

Services return English columns; these put Chinese on them. The form offers what
:func:`services.event_views.offered_actions` says, and the use case (:func:`services.events.act_as`)
checks everything again: a refusal (a missing reason, another's move, the scope) is shown as it says.
"""

from __future__ import annotations

import time
from datetime import datetime

import pandas as pd
import pydeck as pdk
import streamlit as st
import streamlit.components.v1 as components

from components import maps, store
from components.offline import to_display
from components.personal_data import reveal_control
from components.photo_input import photo_input
from components.text import md_text
from domain.access import CurrentUser, may_act, owner_may_act
from domain.event_flow import ACTION_LABELS, Action, IllegalTransition, is_stuck
from domain.intake import InvalidReport
from domain.todo import most_urgent
from domain.vocabulary import EventStatus, Rating
from services import clock
from services.access import OutOfScope, Scope
from services.event_rules import suggest_dispatch
from services.event_views import (
    EventDetail,
    cooperates_only,
    departments,
    late_label,
    offered_actions,
    suggest_cooperators,
)
from services.events import ConcurrentChange, act_as
from services.intake import merge_flagged
from services.resolution import MAX_PHOTOS, MAX_RESULT, resolve_event

FLASH_KEY = "event_action_flash"
DONE_KEY = "event_actions_done"
#: The user's last step (event id, status before, status after, when): a second tap of the same submit is
#: told apart from a colleague's step within this many seconds.
LAST_ACT_KEY = "event_last_action"
REPEAT_WITHIN_S = 30.0
NOTE_LABEL = "说明（退回、退单、上移须填写原因；处置意见写在这里）"


DETAIL_KEY = "ev_detail_id"  # the 事件编号 box of 事件详情
DETAIL_ANCHOR = "ev-detail"  # the 事件详情 heading's id
SCROLL_KEY = "ev_scroll_to_detail"  # clicks on a list not yet scrolled to
_SCROLL_JS = """<script>/* %(n)s */
(function () {
  var target = window.parent.document.getElementById("%(anchor)s");
  if (target) { target.scrollIntoView({behavior: "smooth", block: "start"}); }
})();
</script>"""


#: How a list of events is picked: a click on any cell selects that cell, and so its row (a row-only
#: selection reacts to the row's checkbox alone: a click on the text only highlighted the cell); the
#: checkbox still selects the row.
PICK_MODES = ["single-row", "single-cell"]
_NOTHING_PICKED = {"selection": {"rows": [], "columns": [], "cells": []}}


def pick_list(table: pd.DataFrame, ids: pd.Series, key: str, height: int) -> bool:
    """An event list (``table``, one row per id of ``ids``) whose click on a row or any of its cells opens
    that event in 事件详情; True when a click just did.

    The selection is emptied on the list's next run, so the next click, on the same cell too, is a new
    one, and a number typed into 事件编号 meanwhile is not taken back."""
    if st.session_state.pop(f"{key}_done", False):
        st.session_state[key] = _NOTHING_PICKED
    event = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=height,
        on_select="rerun",
        selection_mode=PICK_MODES,
        key=key,
    )
    selection = event.selection if event else {}
    cells, rows = selection.get("cells") or (), selection.get("rows") or ()
    picked = int(cells[0][0]) if cells else (int(rows[0]) if rows else None)
    if picked is None or picked >= len(ids):
        return False
    st.session_state[DETAIL_KEY] = int(ids.iloc[picked])
    st.session_state[f"{key}_done"] = True
    st.session_state[SCROLL_KEY] = st.session_state.get(SCROLL_KEY, 0) + 1
    return True


def scroll_to_detail() -> None:
    """After a click on a list, bring 事件详情 (the heading with :data:`DETAIL_ANCHOR`) into view: on a phone
    it lies screens below the lists, and the click seemed to do nothing but highlight a cell."""
    clicks = st.session_state.pop(SCROLL_KEY, None)
    if clicks:  # the count makes each click's script new, so it runs again
        components.html(_SCROLL_JS % {"anchor": DETAIL_ANCHOR, "n": clicks}, height=0)


def feed_table(rows: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The live feed in Chinese, with its reminder: ⚠ 超期 (a stage deadline missed), ⏳ 滞留 (stuck)."""
    reminders = [
        "⚠ 超期" if late else ("⏳ 滞留" if is_stuck(status, reported, now) else "")
        for late, status, reported in zip(
            rows["is_overdue"], rows["status"], rows["reported_at"], strict=True
        )
    ]
    # What happened first (a phone shows the first three or four columns without a sideways swipe).
    return pd.DataFrame(
        {
            "编号": rows["id"],
            "事件": rows["title"],
            "状态": rows["status_label"],
            "提醒": reminders,
            "类别": rows["category_label"],
            "紧急程度": rows["urgency_label"],
            "来源": rows["source_label"],
            "更新时间": rows["updated_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
        }
    )


def arrival_toast(arrived: pd.DataFrame) -> str | None:
    """One toast for what arrived since the last refresh: the event itself when it is one, else
    "新事件 N 件" naming the most urgent (:func:`domain.todo.most_urgent`); None when nothing arrived."""
    if arrived.empty:
        return None
    top = most_urgent(arrived.to_dict("records"))
    assert top is not None
    what = f"#{top['id']}：{md_text(top['title'])}（{top['urgency_label']}，{top['source_label']}）"
    if len(arrived) == 1:
        return f"新事件 {what}"
    return f"新事件 {len(arrived)} 件，最紧急：{what}"


def overdue_table(late: pd.DataFrame) -> pd.DataFrame:
    """督办: the overdue events in Chinese, with how late."""
    return pd.DataFrame(
        {
            "编号": late["id"],
            "事件": late["title"],
            "状态": late["status_label"],
            "时限": late["due_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
            "超期": late["late_hours"].map(late_label),
        }
    )


def open_counts_table(table: pd.DataFrame) -> pd.DataFrame:
    """Open events per unit by status (:func:`services.event_views.open_counts_below`) in Chinese."""
    labels = {s.value: s.label for s in EventStatus} | {"name": "单元", "total": "合计"}
    return table.rename(columns=labels)


def event_card(detail: EventDetail, user: CurrentUser, units: pd.DataFrame) -> None:
    """One event: what, where it stands, who reported it (masked; a permitted role may reveal), its map."""
    e = detail.event
    c1, c2 = st.columns([3, 2])
    with c1:
        st.markdown(f"**#{e['id']} {md_text(e['title'])}**")
        st.write(
            f"状态：{EventStatus(e['status']).label}　·　当前层级：{md_text(e['owner_label'])}　·　"
            f"牵头部门：{md_text(e['department_label'])}　·　协办部门：{md_text(e['cooperators_label'])}"
        )
        st.write(
            f"上报：{e['reported_at']:%Y-%m-%d %H:%M}　·　反映人数：{e['reporter_count']}　·　"
            f"上报人：{md_text(e['reporter_name'] or '—')} {md_text(e['reporter_phone'] or '')}"
        )
        if e["reporter_name"] or e["reporter_phone"]:
            reveal_control(user, "event", int(e["id"]))
        if e["description"]:
            st.text(e["description"])
        for photo in detail.photos:
            st.image(photo, width=240)
        duplicate_flag(user, e)
    with c2:
        _event_map(e, units)


def duplicate_flag(user: CurrentUser, e: dict) -> None:
    """疑似重复: the likely original intake flagged (same category, ≤ 50 m, ≤ 24 h), with 合并 for staff who
    may 退回 an event still 已上报; a merged event names what it was merged into."""
    # A click on 合并 drawn on the last run, read before this run draws (or no longer draws) the button:
    # a colleague who moved or merged the report since is said, not passed over in silence.
    clicked = bool(st.session_state.get(f"merge_{e['id']}"))
    if e.get("merged_into_id"):
        st.caption(f"已合并至事件 #{int(e['merged_into_id'])}")
        if clicked:
            st.error(_not_merged(e))
        return
    original = e.get("duplicate_of_id")
    if not original:
        return
    original = int(original)
    st.warning(f"疑似重复：可能与事件 #{original} 为同一件事（同类、相距 50 米内、24 小时内上报）。")
    if not may_act(user, Action.REJECT):
        return
    if EventStatus(e["status"]) is not EventStatus.REPORTED:
        if clicked:
            st.error(_not_merged(e))
        return
    if not st.button(f"合并至事件 #{original}", key=f"merge_{e['id']}"):
        return
    try:
        merge_flagged(
            store.uow(), user, event_id=int(e["id"]), now=clock.now(), expected=EventStatus(e["status"])
        )
    except (InvalidReport, IllegalTransition, ConcurrentChange, OutOfScope) as exc:
        st.error(md_text(str(exc)))
    else:
        _done(f"已合并至事件 #{original}，原事件反映人数加一；本事件现为“{EventStatus.REJECTED.label}”。")


def _event_map(e: dict, units: pd.DataFrame) -> None:
    # Not st.map: its default basemap comes from the internet; this deck uses the local style.
    here = pdk.Layer(
        "ScatterplotLayer",
        data=[{"position": [float(x) for x in to_display(e["lon"], e["lat"])]}],
        get_position="position",
        get_radius=25,
        radius_min_pixels=6,
        get_fill_color=[192, 57, 43],
    )
    d = 0.004
    st.pydeck_chart(
        maps.risk_deck([here], (e["lon"] - d, e["lat"] - d, e["lon"] + d, e["lat"] + d), tooltip_html=""),
        height=220,
        key=f"ev_map_{e['id']}",
    )
    if e["grid_id"] in units.index:
        grid = units.loc[e["grid_id"]]
        st.caption(f"所在网格：{md_text(grid['name'])}（{grid['code']}）")


def action_form(user: CurrentUser, scope: Scope, e: dict) -> None:
    """办理: the actions the loop and the user's role allow on this event, with the fields they need; after
    an action, a success message above the form, the 说明 box empty and the card showing the new state."""
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash)
    if cooperates_only(user, e):
        st.info("贵部门为本事件的协办部门：可查看事件和全程记录、填写协办意见，办理由牵头部门进行。")
    elif not e.get("owner_in_scope", True) and not owner_may_act(user.role, Action.ACCEPT, owns=False):
        st.info(f"本事件已上移至{e['owner_label']}办理：可查看全程记录、填写处置意见，办理由该层级进行。")
    # What this form showed when it was drawn: a submit is checked against it, not against the event
    # as read again for the submit's run (a colleague's step in between would otherwise pass the
    # compare-and-set, and the 操作 choice, its options changed, would fall back to another action).
    now_shown = (str(e["status"]), e["due_at"])
    shown = st.session_state.get(f"act_shown_{e['id']}", now_shown)
    st.session_state[f"act_shown_{e['id']}"] = now_shown
    actions = offered_actions(user, e)
    if not actions:
        return
    st.markdown("**办理**")
    with st.form(f"act_{e['id']}", clear_on_submit=True):
        action = st.radio(
            "操作",
            actions,
            format_func=lambda a: ACTION_LABELS[a],
            horizontal=True,
            key=f"act_action_{e['id']}_{now_shown[0]}_{now_shown[1]}",
        )
        # A new key after every action: the 说明 box comes back empty, the last note never carries over.
        note = st.text_input(
            NOTE_LABEL, max_chars=500, key=f"act_note_{e['id']}_{st.session_state.get(DONE_KEY, 0)}"
        )
        dept, coop, rating, suggested = (
            None,
            [],
            None,
            None,
        )  # dispatch and rating fields only where they apply
        if Action.DISPATCH in actions:
            dept, coop, suggested = _dispatch_fields(e)
        result, photos = "", []
        if Action.RESOLVE in actions:  # 办结: how it was handled (required) and what it looks like now
            result = st.text_area(
                "处置结果（办结时必填：如何处置、结果如何）",
                max_chars=MAX_RESULT,
                key=f"act_result_{e['id']}_{st.session_state.get(DONE_KEY, 0)}",
            )
            photos = photo_input(
                f"处置照片（办结时可选，最多 {MAX_PHOTOS} 张）",
                key=f"act_photos_{e['id']}_{st.session_state.get(DONE_KEY, 0)}",
                multiple=True,
            )
        if Action.RATE in actions:
            rating = st.selectbox(
                "满意度（评价时）",
                list(Rating),
                format_func=lambda r: r.label,
                index=None,
                placeholder="请选择",
                key=f"act_rating_{e['id']}",
            )
        submitted = st.form_submit_button("提交")
        as_suggested = suggested is not None and st.form_submit_button("按建议派单")
        if not (submitted or as_suggested):
            return
    if shown != now_shown:  # the event moved since the form was drawn: nothing is done
        if _own_repeat(e, shown):  # a double tap: the first tap moved it, the second finds it moved
            st.info(f"事件 #{e['id']} 已办理，现为“{EventStatus(e['status']).label}”（重复提交已忽略）。")
        else:
            st.error(_moved_meanwhile(e))
        return
    if as_suggested:
        action, dept = Action.DISPATCH, suggested[0]
        coop = [c for c in suggested[1] if c != dept]
    if action is Action.DISPATCH and dept is None:
        st.error("请选择派往的部门。")
        return
    seen = {"expected": EventStatus(shown[0]), "expected_due_at": shown[1]}
    try:
        if action is Action.RESOLVE:
            after = resolve_event(
                store.uow(),
                user,
                scope,
                event_id=int(e["id"]),
                # 说明 typed beside it is kept too, never dropped in silence
                result="\n".join(t for t in ((result or "").strip(), note.strip()) if t),
                photos=[p.getvalue() for p in photos or []],
                now=clock.now(),
                **seen,
            )
        else:
            after = act_as(
                store.uow(),
                user,
                scope,
                event_id=int(e["id"]),
                action=action,
                now=clock.now(),
                note=note.strip() or None,
                department_id=dept if action is Action.DISPATCH else None,
                rating=rating,
                cooperating_department_ids=coop if action is Action.DISPATCH else None,
                **seen,  # 上移 keeps 已受理: the deadline it showed tells a second 上移 apart
            )
    except (IllegalTransition, ConcurrentChange, OutOfScope, ValueError) as exc:
        st.error(md_text(str(exc)))
    else:
        extra = f"，附处置照片 {len(photos)} 张" if action is Action.RESOLVE and photos else ""
        st.session_state[LAST_ACT_KEY] = (int(e["id"]), shown[0], str(after), time.monotonic())
        _done(f"已{ACTION_LABELS[action]}：事件 #{e['id']} 现为“{after.label}”{extra}。")


def _own_repeat(e: dict, shown: tuple) -> bool:
    """Whether this submit repeats the user's own last step on the event (a second tap sent before the
    first one's answer came back): that step left it in the state it is in now, from the state shown."""
    last = st.session_state.get(LAST_ACT_KEY)
    return (
        last is not None
        and last[:3] == (int(e["id"]), shown[0], str(e["status"]))
        and time.monotonic() - last[3] < REPEAT_WITHIN_S
    )


def _not_merged(e: dict) -> str:
    return (
        f"事件 #{e['id']} 已被他人处理（当前状态：{EventStatus(e['status']).label}），未合并；"
        "上方已显示最新状态，请核对后再办理。"
    )


def _moved_meanwhile(e: dict) -> str:
    return (
        f"事件 #{e['id']} 已被他人处理（当前状态：{EventStatus(e['status']).label}），您的操作未执行；"
        "上方已显示最新状态，请核对后重新办理。"
    )


def _done(message: str) -> None:
    """After an action: its success message above the form on the next run, the form's boxes (说明,
    处置结果, 处置照片) new and empty, the card read again in its new state."""
    st.session_state[DONE_KEY] = st.session_state.get(DONE_KEY, 0) + 1
    st.session_state[FLASH_KEY] = message
    st.rerun()


def _dispatch_fields(e: dict) -> tuple[int | None, list[int], tuple[int, list[int]] | None]:
    """派往部门 and 协办部门, prefilled from the dispatch rules' suggestion; only departments serving the
    event's place, its own area first (:func:`services.event_views.departments`). Also the suggestion
    (department, cooperators) for 按建议派单 when it names a department on the list."""
    with store.reader() as conn:
        depts = departments(conn, e["grid_id"])
        decision, suggested = suggest_dispatch(conn, e)
        coop_suggested = suggest_cooperators(conn, decision.cooperating_kinds, suggested)
    ids, names = [d for d, _ in depts], dict(depts)
    dept = st.selectbox(
        "派往部门（派单时）",
        ids,
        format_func=names.get,
        index=ids.index(suggested) if suggested in ids else None,
        placeholder="请选择部门",
    )
    coop_default = [i for i in coop_suggested if i in ids]
    coop = st.multiselect(
        "协办部门（一件事，派单时）",
        ids,
        default=coop_default,
        format_func=names.get,
        key=f"coop_{e['id']}",
        placeholder="可选，一件事时选择",
    )
    if suggested in ids:
        helpers = "、".join(names[i] for i in coop_default)
        st.caption(
            f"分拨建议：派往 **{md_text(names[suggested])}**"
            + (f"，协办 {md_text(helpers)}" if helpers else "")
            + f"（{md_text(decision.reason)}）"
        )
        return dept, coop, (suggested, coop_default)
    st.caption(f"分拨建议：{md_text(decision.reason)}（未找到对应部门，请手动选择）")
    return dept, coop, None
