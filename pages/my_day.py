"""我的今日: the inspector's day on a phone — venues in route order, the venue card, recording an inspection."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from components import drafts, store
from components import inspection_forms as forms
from components import inspection_tables as tables
from components.auth import require_page
from components.event_todo import todo_link
from components.forecast import plan_basis_line
from components.text import md_text
from components.venue_card import done_list, render_venue_card, route_deck, stop_list
from domain.vocabulary import Role, SafetyCode
from services import clock
from services.access import OutOfScope
from services.inspections import InvalidInspection, record_inspection, venue_card_for
from services.planning import inspector_day, inspectors_under, require_day_venue
from services.submissions import KeyReused

DAY_KEY, VENUE_KEY, FLASH_KEY = "md_day", "md_venue", "md_flash"
#: The ``?venue=`` this page last put in (or found in) the URL: a different one came from outside.
URL_SEEN = "md_url_venue"

user = require_page("my_day")
today = clock.today()
st.markdown(
    "<style>.stButton button{min-height:3rem;font-size:1.05rem}"
    "div[data-testid='stRadio'] label{font-size:1rem}</style>",
    unsafe_allow_html=True,
)
if DAY_KEY not in st.session_state:
    st.session_state[DAY_KEY] = today
drafts.restore_inspection(VENUE_KEY, today)  # after a reload: the venue and answers left unsaved


def _follow_url() -> None:
    """The open venue is in the URL (?venue=), so the phone's Back button returns to the list and a link
    opens the card. A URL changed from outside (Back, Forward, a bookmark) is followed here; a change
    made on the page (a click, 返回列表, another day) is written to the URL by :func:`_show_in_url`."""
    url = st.query_params.get("venue")
    if url == st.session_state.get(URL_SEEN):
        return
    st.session_state[URL_SEEN] = url
    if url is not None and url.isdigit():
        st.session_state[VENUE_KEY] = int(url)
    elif st.session_state.pop(VENUE_KEY, None) is not None:
        drafts.forget()  # Back to the list, as 返回列表 does


def _show_in_url(venue_id: int | None) -> None:
    if venue_id is None:
        st.query_params.pop("venue", None)
    elif st.query_params.get("venue") != str(venue_id):
        st.query_params["venue"] = str(venue_id)  # a new history entry: Back returns to the list
    st.session_state[URL_SEEN] = st.query_params.get("venue")


_follow_url()


def _set_day(offset: int) -> None:
    st.session_state[DAY_KEY] = today + timedelta(days=offset)
    st.session_state.pop(VENUE_KEY, None)


def _open(venue_id: int | None) -> None:
    forms.forget_submission_keys()  # another display of a form: another submission
    if venue_id is None:
        drafts.forget()  # back to the list: the unsaved answers are not kept for a reload
        st.session_state.pop(VENUE_KEY, None)
    else:
        st.session_state[VENUE_KEY] = int(venue_id)


# Whose day: an inspector's own; an admin may look at any inspector of their scope.
inspector_id, people = user.id, {user.id: user.display_name}
if user.role is not Role.INSPECTOR:
    with store.reader() as conn:
        people = dict(inspectors_under(conn, user.scope_unit_id))
    if not people:
        st.info("您的管辖范围内没有检查员。")
        st.stop()
    inspector_id = st.selectbox("检查员", list(people), format_func=people.get, key="md_inspector")

st.title("我的今日")
if user.role is Role.INSPECTOR:
    todo_link(user)  # the events waiting on them (受理 in their grids, 处置 of what the village handles)
# Horizontal containers stay one row on a phone, where columns would stack.
with st.container(horizontal=True):
    st.button("今天", key="md_today", on_click=_set_day, args=(0,), width="stretch")
    st.button("明天", key="md_tomorrow", on_click=_set_day, args=(1,), width="stretch")
day = st.date_input(
    "日期",
    key=DAY_KEY,
    format="YYYY-MM-DD",
    min_value=today - timedelta(days=30),
    max_value=today + timedelta(days=30),
)
flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.success(flash)

with store.reader() as conn:
    try:
        plan = inspector_day(conn, inspector_id, day, user=user)
    except OutOfScope:  # another inspector forced into the session: refused (logged), the first of the scope
        st.session_state.pop("md_inspector", None)
        inspector_id = next(iter(people))
        plan = inspector_day(conn, inspector_id, day, user=user)
if plan.route is None:
    st.warning("您还没有分配网格，请联系乡镇（街道）管理员。")
    st.stop()
stops, done = plan.stops, plan.done


def _save(venue_id: int, category: str):
    entered = forms.entered_inspection(venue_id, category)
    try:
        return record_inspection(store.uow(), user=user, venue_id=venue_id, now=clock.now(), **entered)
    except KeyReused:  # this form's key saved other answers before: these are a new inspection
        entered["submission_key"] = forms.submission_key(venue_id, renew=True)
        return record_inspection(store.uow(), user=user, venue_id=venue_id, now=clock.now(), **entered)


def _record(venue_id: int, category: str) -> None:
    try:
        saved = _save(venue_id, category)
    except InvalidInspection as exc:
        st.error("未保存，请修改以下内容：")
        for field, problem in exc.problems.items():
            st.error(f"{field}：{md_text(problem)}")
        return
    except (OutOfScope, LookupError) as exc:
        st.error(md_text(str(exc)))
        return
    before, after = SafetyCode(saved.code_before), SafetyCode(saved.code_after)
    change = f"{before.label} → {after.label}" if saved.changed else f"仍为{after.label}"
    photos = len(st.session_state.get(f"md_photos_{venue_id}") or [])
    kept = f"现场照片 {photos} 张已留存。" if photos else ""
    st.session_state[FLASH_KEY] = (
        f"已保存检查（{saved.result.label}）：{change}。{saved.reason}。下次应检：{saved.next_due_on:%Y-%m-%d}。"
        + kept
    )
    drafts.forget()
    st.rerun()


def venue_detail(venue_id: int) -> None:
    st.button("← 返回列表", key="md_back", on_click=_open, args=(None,), width="stretch")
    try:
        with store.reader() as conn:
            card = venue_card_for(conn, user, venue_id, today)
    except (OutOfScope, LookupError) as exc:
        st.error(md_text(str(exc)))
        return
    render_venue_card(card, viewer=user)
    if day != today:
        st.info("只能登记今天的检查。")
        return
    checked_today = venue_id in set(done["venue_id"])
    if checked_today:
        st.success("✓ 今日已检查")
    category = card.venue["category"]
    with st.expander("再次登记检查" if checked_today else "登记检查", expanded=not checked_today):
        if forms.inspection_form(venue_id, category, card.open_hazards, today):
            _record(venue_id, category)
        drafts.keep_inspection(venue_id, today)  # the answers survive a reload (kept with the login)


selected = st.session_state.get(VENUE_KEY)
if selected is not None:
    try:
        require_day_venue(plan, user, int(selected))
    except OutOfScope:  # a venue forced into the session or the URL: refused (logged), back to the list
        st.session_state.pop(VENUE_KEY, None)
        st.warning("该场所不在您当天的检查计划中，已返回列表。")
    else:
        _show_in_url(int(selected))
        venue_detail(int(selected))
        st.stop()
_show_in_url(None)

with st.container(horizontal=True):
    st.metric("待检查", len(stops))
    # venues, as 待检查 counts them: a venue recorded again (再次登记检查) is one venue checked
    st.metric("已检查" if day == today else "当日已检查", done["venue_id"].nunique() if len(done) else 0)
    st.metric("路线（公里）", f"{plan.route.length_m / 1000:.1f}")
st.caption(plan_basis_line(plan.forecast))
if day != today:
    st.caption(f"{day:%Y-%m-%d} 的计划（按当前平安码和应检日期推算）")
if len(stops) or not done.empty:
    st.pydeck_chart(
        route_deck(stops, plan.start, done=done if day == today else None),
        height=300,
        key=f"md_map_{day.isoformat()}",
    )

st.subheader("待检查场所" if day == today else f"{day:%Y-%m-%d} 待检查场所")
if stops.empty:
    st.info("今日没有需要检查的场所。" if day == today else "当日没有需要检查的场所。")
stop_list(stops, _open)
if not plan.overflow.empty:
    st.caption(
        f"另有 {len(plan.overflow)} 处超出今日检查容量，未排入："
        + "、".join(map(md_text, plan.overflow["name"].head(10)))
    )
if not done.empty:
    st.subheader("今日已检查" if day == today else "当日已检查")
    done_list(done, today, _open)
with st.expander("今日检查记录明细"):
    st.dataframe(tables.done_today(done), hide_index=True, width="stretch")
st.caption(f"检查员：{md_text(people.get(inspector_id, user.display_name))}")
