"""我的今日: the inspector's day on a phone — venues in route order, the venue card, recording an inspection."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from components.auth import require_page
from components.store import engine
from components.text import md_text
from components.venue_card import code_badge, render_venue_card, route_deck
from db.engine import session_factory
from domain.safety_code import ItemOutcome, checklist_for
from domain.vocabulary import HazardSeverity, Role, SafetyCode
from services import clock
from services.access import deny
from services.inspections import (
    InvalidInspection,
    NewHazard,
    OutOfScope,
    record_inspection,
    venue_card_for,
)
from services.planning import inspector_day, inspectors_under, load_tree

DAY_KEY, VENUE_KEY, FLASH_KEY = "md_day", "md_venue", "md_flash"
OUTCOMES = [o.value for o in ItemOutcome]
OUTCOME_LABEL = {o.value: o.label for o in ItemOutcome}
MAX_NEW_HAZARDS = 5

user = require_page("my_day")
today = clock.today()
st.markdown(
    "<style>.stButton button{min-height:3rem;font-size:1.05rem}"
    "div[data-testid='stRadio'] label{font-size:1rem}</style>",
    unsafe_allow_html=True,
)


@st.cache_resource(show_spinner=False, ttl=600)
def _tree(url: str):
    with engine().connect() as conn:
        return load_tree(conn)


tree = _tree(str(engine().url))

# Whose day: an inspector's own; an admin may look at any inspector of their scope.
inspector_id, inspector_name = user.id, user.display_name
if user.role is not Role.INSPECTOR:
    with engine().connect() as conn:
        people = inspectors_under(conn, tree, user.scope_unit_id)
    if not people:
        st.info("您的管辖范围内没有检查员。")
        st.stop()
    inspector_id = st.selectbox("检查员", [p[0] for p in people], format_func=dict(people).get, key="md_inspector")
    if inspector_id not in dict(people):  # forced into the session: refused, logged, the first of the scope
        deny(user, "my_day inspector", inspector_id)
        inspector_id = people[0][0]
    inspector_name = dict(people)[inspector_id]

if DAY_KEY not in st.session_state:
    st.session_state[DAY_KEY] = today


def _set_day(offset: int) -> None:
    st.session_state[DAY_KEY] = today + timedelta(days=offset)
    st.session_state.pop(VENUE_KEY, None)


def _open(venue_id: int | None) -> None:
    if venue_id is None:
        st.session_state.pop(VENUE_KEY, None)
    else:
        st.session_state[VENUE_KEY] = int(venue_id)


st.title("我的今日")
# Horizontal containers stay one row on a phone, where columns would stack.
with st.container(horizontal=True):
    st.button("今天", key="md_today", on_click=_set_day, args=(0,), width="stretch")
    st.button("明天", key="md_tomorrow", on_click=_set_day, args=(1,), width="stretch")
day = st.date_input("日期", key=DAY_KEY, format="YYYY-MM-DD", min_value=today - timedelta(days=30),
                    max_value=today + timedelta(days=30))

flash = st.session_state.pop(FLASH_KEY, None)
if flash:
    st.success(flash)

with engine().connect() as conn:
    plan = inspector_day(conn, inspector_id, day, tree=tree, user=user)
if plan.route is None:
    st.warning("您还没有分配网格，请联系乡镇（街道）管理员。")
    st.stop()
stops, done = plan.stops, plan.done
mine = set(stops["venue_id"]) | set(done["venue_id"]) | set(plan.overflow["venue_id"])


# ------------------------------------------------------------------ one venue: card and inspection form


def _record(venue_id: int, category: str, n_hazards: int) -> None:
    checklist = {i.key: st.session_state.get(f"md_item_{venue_id}_{i.key}") for i in checklist_for(category)}
    hazards = []
    for k in range(n_hazards):
        photo = st.session_state.get(f"md_hz_photo_{venue_id}_{k}")
        hazards.append(NewHazard(
            severity=st.session_state.get(f"md_hz_sev_{venue_id}_{k}") or "",
            description=st.session_state.get(f"md_hz_desc_{venue_id}_{k}") or "",
            deadline=st.session_state.get(f"md_hz_dl_{venue_id}_{k}"),
            photo=photo.getvalue() if photo is not None else None,
        ))
    try:
        with session_factory(engine()).begin() as s:
            done_ = record_inspection(
                s, user=user, venue_id=venue_id, now=clock.now(),
                checklist={k: v for k, v in checklist.items() if v is not None}, hazards=hazards,
                note=st.session_state.get(f"md_note_{venue_id}") or None,
                rectified=st.session_state.get(f"md_fixed_{venue_id}") or [],
            )
    except InvalidInspection as exc:
        st.error("未保存，请修改以下内容：")
        for field, problem in exc.problems.items():
            st.error(f"{field}：{md_text(problem)}")
        return
    except (OutOfScope, LookupError) as exc:
        st.error(md_text(str(exc)))
        return
    before, after = SafetyCode(done_.code_before), SafetyCode(done_.code_after)
    change = f"{before.label} → {after.label}" if done_.changed else f"仍为{after.label}"
    st.session_state[FLASH_KEY] = (
        f"已保存检查（{done_.result.label}）：{change}。{done_.reason}。下次应检：{done_.next_due_on:%Y-%m-%d}"
    )
    st.rerun()


def venue_detail(venue_id: int) -> None:
    st.button("← 返回列表", key="md_back", on_click=_open, args=(None,), width="stretch")
    try:
        with engine().connect() as conn:
            card = venue_card_for(conn, user, venue_id, today)
    except (OutOfScope, LookupError) as exc:
        st.error(md_text(str(exc)))
        return
    render_venue_card(card, viewer=user)
    checked_today = day == today and venue_id in set(done["venue_id"])
    if day != today:
        st.info("只能登记今天的检查。")
        return
    if checked_today:
        st.success("✓ 今日已检查")
    category = card.venue["category"]
    with st.expander("再次登记检查" if checked_today else "登记检查", expanded=not checked_today):
        n_hz = st.radio("发现隐患（处）", list(range(MAX_NEW_HAZARDS + 1)), horizontal=True,
                        key=f"md_nh_{venue_id}")
        with st.form(f"md_form_{venue_id}", border=False):
            st.markdown("**检查项**（★ 为关键项）")
            for item in checklist_for(category):
                st.radio(item.label + (" ★" if item.critical else ""), OUTCOMES, index=None,
                         format_func=OUTCOME_LABEL.get, horizontal=True, key=f"md_item_{venue_id}_{item.key}")
            open_hz = card.open_hazards
            if not open_hz.empty:
                st.multiselect(
                    "本次复查确认已整改的隐患", open_hz["id"].tolist(), key=f"md_fixed_{venue_id}",
                    format_func=dict(zip(open_hz["id"], open_hz["description"], strict=True)).get,
                    placeholder="选择已整改到位的隐患",
                )
            for k in range(int(n_hz)):
                st.markdown(f"**隐患 {k + 1}**")
                st.radio("隐患等级", [s.value for s in HazardSeverity], index=None, horizontal=True,
                         format_func=lambda s: HazardSeverity(s).label, key=f"md_hz_sev_{venue_id}_{k}")
                st.text_input("隐患描述", max_chars=500, key=f"md_hz_desc_{venue_id}_{k}",
                              placeholder="例如：消防通道堆放杂物")
                st.date_input("整改期限", value=today + timedelta(days=7), min_value=today, format="YYYY-MM-DD",
                              key=f"md_hz_dl_{venue_id}_{k}")
                st.file_uploader("现场照片", type=["jpg", "jpeg", "png", "webp"], key=f"md_hz_photo_{venue_id}_{k}")
            st.text_area("备注", max_chars=1000, key=f"md_note_{venue_id}")
            submitted = st.form_submit_button("保存检查结果", type="primary", width="stretch")
        if submitted:
            _record(venue_id, category, int(n_hz))


selected = st.session_state.get(VENUE_KEY)
if selected is not None:
    if selected in mine or user.role is Role.ADMIN:
        venue_detail(int(selected))
        st.stop()
    deny(user, "my_day venue", selected)
    st.session_state.pop(VENUE_KEY, None)

# ------------------------------------------------------------------ the day's list and map

left_to_do = len(stops)
with st.container(horizontal=True):
    st.metric("待检查", left_to_do)
    st.metric("已检查" if day == today else "当日已检查", len(done))
    st.metric("路线（公里）", f"{plan.route.length_m / 1000:.1f}")
if day != today:
    st.caption(f"{day:%Y-%m-%d} 的计划（按当前平安码和应检日期推算）")

if left_to_do or not done.empty:
    st.pydeck_chart(route_deck(stops, plan.start, done=done if day == today else None), height=300,
                    key=f"md_map_{day.isoformat()}")

st.subheader("待检查场所" if day == today else f"{day:%m月%d日} 待检查场所")
if stops.empty:
    st.info("今日没有需要检查的场所。" if day == today else "当日没有需要检查的场所。")
for row in stops.itertuples(index=False):
    with st.container(border=True, key=f"md_stop_{row.venue_id}"):
        st.markdown(f"**{int(row.stop)}. {md_text(row.name, html=True)}** {code_badge(row.code)}",
                    unsafe_allow_html=True)
        st.caption(f"{md_text(row.reason)}　·　{md_text(row.address)}")
        st.button("查看 / 检查", key=f"md_open_{row.venue_id}", on_click=_open, args=(row.venue_id,),
                  width="stretch")

if not plan.overflow.empty:
    st.caption(f"另有 {len(plan.overflow)} 处超出今日检查容量，未排入：" + "、".join(map(md_text, plan.overflow["name"].head(10))))

if not done.empty:
    st.subheader("今日已检查" if day == today else "当日已检查")
    latest = done.drop_duplicates("venue_id")
    for row in latest.itertuples(index=False):
        with st.container(border=True, key=f"md_done_{row.venue_id}"):
            st.markdown(
                f"✓ **{md_text(row.name, html=True)}** {code_badge(row.code)} 已检查（{row.inspected_at:%H:%M}，"
                f"{'合格' if row.result == 'pass' else '不合格'}）",
                unsafe_allow_html=True,
            )
            due = row.next_due_on
            when = "明天" if due == today + timedelta(days=1) else (f"{due:%Y-%m-%d}" if due else "—")
            st.caption(f"下次应检：{when}")
            st.button("查看", key=f"md_open_done_{row.venue_id}", on_click=_open, args=(row.venue_id,),
                      width="stretch")

with st.expander("今日检查记录明细"):
    st.dataframe(
        pd.DataFrame({
            "时间": done["inspected_at"].map(lambda t: t.strftime("%H:%M")),
            "场所": done["name"],
            "结果": done["result"].map(lambda r: "合格" if r == "pass" else "不合格"),
            "现平安码": done["code"].map(lambda c: SafetyCode(c).label),
        }),
        hide_index=True, width="stretch",
    )
st.caption(f"检查员：{md_text(inspector_name)}")
