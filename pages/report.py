"""随手拍: a citizen (or a grid worker) reports a problem with a place, a category, text and a photo."""

from __future__ import annotations

import streamlit as st

from components.auth import through_entrypoint, verified_current_user
from components.pick_map import show_pick_map
from components.store import engine
from components.text import md_text
from db.engine import session_factory
from domain.intake import InvalidReport, ReportForm
from domain.vocabulary import EventCategory, EventSource, Role
from services import clock
from services.events import Actor
from services.geography import default_focus
from services.intake import find_duplicates, submit_report
from services.locate import OutsideArea

PENDING = "report_pending"  # a submitted form waiting for the duplicate decision

through_entrypoint()
user = verified_current_user()
worker = user is not None and user.role is Role.INSPECTOR
source = EventSource.GRID_WORKER if worker else EventSource.CITIZEN
actor = Actor(user.id, user.role.value) if user else Actor(None, "citizen")

st.title("随手拍 · 问题上报" if not worker else "网格员上报")
st.caption("在地图上点选位置（或填写经纬度），选择事项类别，描述问题并可附照片（10 MB 以内）。")

if "report_lon" not in st.session_state:
    with engine().connect() as conn:
        st.session_state.report_lon, st.session_state.report_lat = default_focus(conn, user.scope_unit_id if user else None)

clicked = show_pick_map(st.session_state.report_lon, st.session_state.report_lat, key="report_pick")
if clicked and (clicked["lng"], clicked["lat"]) != (st.session_state.report_lon, st.session_state.report_lat):
    st.session_state.report_lon, st.session_state.report_lat = clicked["lng"], clicked["lat"]
    st.rerun()

categories = {c.label: c.value for c in EventCategory}
with st.form("report", clear_on_submit=False):
    c1, c2 = st.columns(2)
    lon = c1.number_input("经度", value=float(st.session_state.report_lon), format="%.6f", step=0.0001)
    lat = c2.number_input("纬度", value=float(st.session_state.report_lat), format="%.6f", step=0.0001)
    category = st.selectbox("事项类别", list(categories), index=None, placeholder="请选择")
    title = st.text_input("标题", max_chars=100, placeholder="例如：店门口占道堆物")
    description = st.text_area("问题描述", max_chars=2000)
    photo = st.file_uploader("照片（可选）", type=["jpg", "jpeg", "png", "webp"])
    c3, c4 = st.columns(2)
    name = c3.text_input("姓名（可选）", max_chars=32)
    phone = c4.text_input("联系电话（可选）", max_chars=11)
    submitted = st.form_submit_button("提交", type="primary")

if submitted:
    form = ReportForm(
        category=categories.get(category, ""),
        title=title,
        description=description,
        lon=lon,
        lat=lat,
        reporter_name=name,
        reporter_phone=phone,
    )
    st.session_state[PENDING] = (form, photo.getvalue() if photo else None)


def _submit(merge_into: int | None) -> None:
    form, data = st.session_state[PENDING]
    try:
        with session_factory(engine()).begin() as s:
            event = submit_report(s, form, now=clock.now(), source=source, actor=actor, photo=data,
                                  merge_into=merge_into)
            event_id = event.id
    except InvalidReport as exc:
        for field, problem in exc.problems.items():
            st.error(f"{field}：{md_text(problem)}")
        st.session_state.pop(PENDING, None)
        return
    except OutsideArea as exc:
        st.error(md_text(str(exc)))
        st.session_state.pop(PENDING, None)
        return
    st.session_state.pop(PENDING, None)
    if merge_into:
        st.success(f"已合并至事件 #{merge_into}，感谢您的反映，我们会一并处理。")
    else:
        st.success(f"上报成功，事件编号 #{event_id}。处理进展可凭编号查询。")


if PENDING in st.session_state:
    form, _ = st.session_state[PENDING]
    dups = []
    if form.category and form.lon is not None:
        with session_factory(engine())() as s:
            dups = find_duplicates(s, form.category, form.lon, form.lat, clock.now())
    if not dups:
        _submit(None)
    else:
        st.warning("附近 24 小时内已有同类问题上报，可能是同一件事：")
        for e, dist in dups[:5]:
            cols = st.columns([4, 1])
            cols[0].markdown(f"\\#{e.id} {md_text(e.title)}（距此约 {dist:.0f} 米，{e.reported_at:%Y-%m-%d %H:%M}，已有 {e.reporter_count} 人反映）")
            if cols[1].button("合并到此事件", key=f"merge_{e.id}"):
                _submit(e.id)
        if st.button("不是同一件事，仍然新建"):
            _submit(None)
