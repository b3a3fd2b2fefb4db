"""随手拍: a citizen (or a grid worker) reports a problem with a place, a category, text and a photo.

Each submission carries a key kept in the session (提交编号): a double click, or the same report sent
again from this session (the form empties after a success), returns the first report's number instead
of a second event. The key changes when the content does (the service says so:
:class:`services.submissions.KeyReused`).
"""

from __future__ import annotations

import uuid

import streamlit as st

from components import store
from components.auth import browser_id, link_to, no_area_yet, through_entrypoint, verified_current_user
from components.errors import show_incident
from components.photo_input import photo_input
from components.pick_map import place_search, show_pick_map, show_where
from components.text import md_text
from domain.access import public_text
from domain.intake import InvalidReport, ReportForm
from domain.vocabulary import EventCategory, EventSource, Role
from services import clock
from services.events import Actor
from services.geography import default_focus
from services.intake import find_duplicates, submit_report
from services.locate import OutsideArea
from services.submissions import KeyReused

PENDING = "report_pending"  # a submitted form waiting for the duplicate decision
KEY = "report_key"  # this form's submission key, kept until the content changes after a success
ORIGIN = "report_origin"  # this browser, for the per-device rate limit (only its digest is stored)
FORM = "report_form"  # the form's number: a new, empty form after each report that went through
DONE = "report_done"  # the last success's words, shown above the new form

through_entrypoint()
user = verified_current_user()
worker = user is not None and user.role is Role.INSPECTOR
source = EventSource.GRID_WORKER if worker else EventSource.CITIZEN
actor = Actor(user.id, user.role.value) if user else Actor(None, "citizen")

st.title("随手拍 · 问题上报" if not worker else "网格员上报")
st.caption("点“定位”、在地图上点选或搜索地名确定位置，选择事项类别，描述问题并可附照片（10 MB 以内）。")
if DONE in st.session_state:
    st.success(st.session_state.pop(DONE))
    link_to("pages/track.py", "查询处理进度", ":material/search:")

if no_area_yet():
    st.info("尚未导入区划，暂不能上报：请系统管理员先导入本地区的边界文件。")
    st.stop()


def _place(lon: float, lat: float) -> None:
    """The report's point, and the 经度/纬度 boxes showing it (set before they are drawn)."""
    st.session_state.report_lon, st.session_state.report_lat = lon, lat
    st.session_state.report_lon_box, st.session_state.report_lat_box = float(lon), float(lat)


if "report_lon" not in st.session_state:
    with store.reader() as conn:
        _place(*default_focus(conn, user.scope_unit_id if user else None))

found = place_search(
    st.session_state.report_lon, st.session_state.report_lat, key="report_search", staff=bool(user)
)
clicked = show_pick_map(st.session_state.report_lon, st.session_state.report_lat, key="report_pick")
clicked = {"lng": found[0], "lat": found[1]} if found else clicked
if clicked and (clicked["lng"], clicked["lat"]) != (st.session_state.report_lon, st.session_state.report_lat):
    _place(clicked["lng"], clicked["lat"])
    st.rerun()


def _typed() -> None:
    """经度/纬度 typed by hand: the place shown and the place sent are the same point."""
    st.session_state.report_lon = st.session_state.report_lon_box
    st.session_state.report_lat = st.session_state.report_lat_box


c1, c2 = st.columns(2)
c1.number_input("经度", key="report_lon_box", format="%.6f", step=0.0001, on_change=_typed)
c2.number_input("纬度", key="report_lat_box", format="%.6f", step=0.0001, on_change=_typed)
show_where(st.session_state.report_lon, st.session_state.report_lat)  # grid and village, before sending

categories = {c.label: c.value for c in EventCategory}
with st.form(f"report_{st.session_state.get(FORM, 0)}", clear_on_submit=False):
    category = st.selectbox("事项类别", list(categories), index=None, placeholder="请选择")
    title = st.text_input("标题", max_chars=100, placeholder="例如：店门口占道堆物")
    description = st.text_area("问题描述", max_chars=2000)
    photo = photo_input("照片（可选）")
    c3, c4 = st.columns(2)
    name = c3.text_input("姓名（可选）", max_chars=32)
    phone = c4.text_input("联系电话（可选）", max_chars=11)
    submitted = st.form_submit_button("提交", type="primary")

if submitted:
    form = ReportForm(
        category=categories.get(category, ""),
        title=title,
        description=description,
        lon=float(st.session_state.report_lon),
        lat=float(st.session_state.report_lat),
        reporter_name=name,
        reporter_phone=phone,
    )
    st.session_state[PENDING] = (form, photo.getvalue() if photo else None)


def _send(form: ReportForm, data: bytes | None, merge_into: int | None):
    """The use case with this form's key; a key used before for other content is replaced once."""
    for _attempt in range(2):
        try:
            return submit_report(
                store.uow(),
                form,
                now=clock.now(),
                source=source,
                actor=actor,
                photo=data,
                merge_into=merge_into,
                submission_key=st.session_state.setdefault(KEY, uuid.uuid4().hex),
                origin=st.session_state.setdefault(ORIGIN, browser_id() or uuid.uuid4().hex),
            )
        except KeyReused:  # the last success's key, and the person has written another report since
            st.session_state[KEY] = uuid.uuid4().hex
    raise RuntimeError("a new submission key was refused as reused")


def _submit(merge_into: int | None) -> None:
    form, data = st.session_state.pop(PENDING)
    try:
        event = _send(form, data, merge_into)
    except InvalidReport as exc:
        for field, problem in exc.problems.items():
            st.error(f"{field}：{md_text(problem)}")
        return
    except OutsideArea as exc:
        st.error(md_text(str(exc)))
        return
    except Exception as exc:  # a store fault: the report and its key stay; 重试 sends the same one again
        st.session_state[PENDING] = (form, data)
        show_incident(exc, "report.submit")
        return
    follow = "可凭事件编号和所留手机号后四位在「进度查询」查看处理进展。" if form.reporter_phone else ""
    if event.merged_into_id:
        st.session_state[DONE] = (
            f"已合并至事件 #{event.merged_into_id}，感谢您的反映，我们会一并处理。{follow}"
        )
    else:
        where = store.tree().name(event.grid_id)
        attached = "含照片 1 张" if data else "未附照片"
        st.session_state[DONE] = (
            f"上报成功，事件编号 #{event.id}（{attached}）。所在网格：{md_text(where)}。{follow}"
        )
    st.session_state[FORM] = st.session_state.get(FORM, 0) + 1  # the next report starts from an empty form
    st.rerun()


if PENDING in st.session_state:
    form, _ = st.session_state[PENDING]
    dups = []
    if form.category and form.lon is not None:
        with store.reader() as conn:
            dups = find_duplicates(conn, form.category, form.lon, form.lat, clock.now())
    if not dups:
        _submit(None)
    else:
        st.warning("附近 24 小时内已有同类问题上报，可能是同一件事：")
        # anyone may open this page: other reporters' titles without their phone and house numbers
        for e, dist in dups[:5]:
            cols = st.columns([4, 1])
            cols[0].markdown(
                f"\\#{e.id} {md_text(public_text(e.title))}（距此约 {dist:.0f} 米，{e.reported_at:%Y-%m-%d %H:%M}，已有 {e.reporter_count} 人反映）"
            )
            if cols[1].button("合并到此事件", key=f"merge_{e.id}"):
                _submit(e.id)
        if st.button("不是同一件事，仍然新建"):
            _submit(None)
