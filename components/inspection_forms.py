"""The 平安检查 forms: a campaign (专项整治), the reassignment proposals, an inspection on the phone.

Each form draws its widgets and hands back what the person entered (or calls the page's callback);
the page calls the use case and shows its refusals. Widget keys and labels are the pages' contract with
their tests (``ins_*``, ``md_*``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from components import cached, store
from components.photo_input import photo_input
from components.text import md_text
from domain.access import CurrentUser
from domain.hierarchy import Tree
from domain.planner import CAMPAIGN_LEVELS, Capacity, Proposal
from domain.safety_code import MAX_RECTIFY_DAYS, ItemOutcome, checklist_for
from domain.vocabulary import AdminLevel, HazardSeverity, Role, VenueCategory
from services import clock
from services.inspections import MAX_VISIT_PHOTOS, NewHazard
from services.planning import PlanView
from services.planning_settings import MAX_DAILY_CAPACITY, InvalidSetting, save_capacity
from services.venue_import import COORDINATE_SYSTEMS

SHOWN_PROPOSALS = 50
MAX_NEW_HAZARDS = 5
OUTCOMES = [o.value for o in ItemOutcome]
OUTCOME_LABEL = {o.value: o.label for o in ItemOutcome}


# -- /inspections -----------------------------------------------------------------------------


def scope_options(tree: Tree, unit: int) -> list[int]:
    """The areas the page may be narrowed to: the user's unit, and its townships when it is larger
    (a city or a county is large to plan at once). The scope itself is checked by the service."""
    options = [unit]
    if tree.level(unit).depth < AdminLevel.TOWNSHIP.depth:
        options += tree.descendants(unit, AdminLevel.TOWNSHIP)
    return options


def campaign_form(scope: int, tree: Tree, today: date) -> dict | None:
    """The 新增专项整治 form over the townships and villages of ``scope`` (itself and its children);
    the entered fields (``add_campaign``'s keywords) when saved, else None."""
    areas = [a for a in [scope, *tree.children(scope)] if tree.level(a) in CAMPAIGN_LEVELS]
    with st.form("ins_campaign"):
        st.markdown("**新增专项整治**")
        name = st.text_input("名称", max_chars=50, placeholder="例如：出租房电动车充电专项整治")
        category = st.selectbox(
            "场所类别",
            [c.value for c in VenueCategory],
            index=None,
            placeholder="请选择",
            format_func=lambda c: VenueCategory(c).label,
        )
        chosen = st.multiselect("区域（乡镇或村）", areas, format_func=tree.name, placeholder="请选择")
        c1, c2, c3 = st.columns(3)
        start = c1.date_input("开始日期", value=today, format="YYYY-MM-DD")
        end = c2.date_input("结束日期", value=today + timedelta(days=30), format="YYYY-MM-DD")
        every = c3.number_input("每隔几天检查一次", min_value=1, max_value=90, value=7, step=1)
        if not st.form_submit_button("保存专项整治", type="primary"):
            return None
    return {
        "name": name,
        "category": category,
        "area_ids": chosen,
        "start": start,
        "end": end,
        "every_days": int(every),
    }


def campaign_removal(names: list[str]) -> str | None:
    """The name of the campaign to delete when 删除 is pressed (nothing offered without campaigns)."""
    if not names:
        return None
    c1, c2 = st.columns([3, 1])
    gone = c1.selectbox(
        "删除专项整治", names, index=None, key="ins_campaign_del", placeholder="选择要删除的专项整治"
    )
    return gone if c2.button("删除", key="ins_campaign_del_btn", disabled=gone is None) else None


def venue_upload(allowed: bool, template: bytes):
    """The import section: the template and a file; the uploaded file when 检查并导入 is pressed."""
    if not allowed:
        st.info("场所导入由系统管理员或乡镇（街道）领导操作。")
        return None
    st.caption(
        "按模板填写后上传 CSV（UTF-8 或 GBK 编码）或 XLSX 文件。全部行检查通过才会导入；"
        "有问题时列出每一行的问题，不导入任何场所。说明见 docs/venue-import.md。"
    )
    st.download_button(
        "下载导入模板（CSV）", template, file_name="场所导入模板.csv", mime="text/csv", key="ins_template"
    )
    upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key="ins_import_file")
    crs = st.radio(
        "文件中经纬度的坐标系",
        list(COORDINATE_SYSTEMS),
        format_func=COORDINATE_SYSTEMS.get,
        index=None,
        horizontal=True,
        key="ins_import_crs",
        help="从高德、腾讯地图取的坐标为 GCJ-02（与 GPS 相差数百米），导入时换算；GPS 设备、天地图为 WGS84。",
    )
    pressed = st.button(
        "检查并导入", key="ins_import", type="primary", disabled=upload is None or crs is None
    )
    if upload is not None and crs is None:
        st.caption("请先选择坐标系：选错会使场所落入相邻网格。")
    return (upload, crs) if pressed and upload is not None and crs is not None else None


def proposal_list(view: PlanView, tree: Tree, accept: Callable[[list[Proposal]], None]) -> None:
    """The day's proposals, each with 采纳, and 全部采纳; ``accept`` runs as the buttons' callback."""
    proposals = view.plan.proposals
    st.markdown("**调配建议**：把未排入的检查交给同村或同乡镇尚有余量的检查员")
    st.button("全部采纳", key="ins_accept_all", on_click=accept, args=(list(proposals),), type="primary")
    if "ins_error" in st.session_state:
        st.error(md_text(st.session_state.pop("ins_error")))
    for p in proposals[:SHOWN_PROPOSALS]:
        c1, c2 = st.columns([5, 1])
        c1.markdown(
            f"{md_text(p.venue_name)}（{md_text(tree.name(p.village_id))}）："
            f"{md_text(view.inspector_name(p.from_inspector_id))} → "
            f"**{md_text(view.inspector_name(p.to_inspector_id))}**。{md_text(p.reason)}"
        )
        c2.button("采纳", key=f"ins_accept_{p.venue_id}", on_click=accept, args=([p],))
    if len(proposals) > SHOWN_PROPOSALS:
        st.caption(f"另有 {len(proposals) - SHOWN_PROPOSALS} 条建议，可“全部采纳”。")


# -- /my_day ----------------------------------------------------------------------------------


def inspection_form(venue_id: int, category: str, open_hazards: pd.DataFrame, today: date) -> bool:
    """The phone's inspection form of one venue: the checklist of its category (★ critical), the open
    hazards this visit confirms fixed, up to :data:`MAX_NEW_HAZARDS` new hazards, a note. True when saved."""
    n_hz = st.radio(
        "发现隐患（处）", list(range(MAX_NEW_HAZARDS + 1)), horizontal=True, key=f"md_nh_{venue_id}"
    )
    with st.form(f"md_form_{venue_id}", border=False):
        st.markdown("**检查项**（★ 为关键项）")
        for item in checklist_for(category):
            st.radio(
                item.label + (" ★" if item.critical else ""),
                OUTCOMES,
                index=None,
                format_func=OUTCOME_LABEL.get,
                horizontal=True,
                key=f"md_item_{venue_id}_{item.key}",
            )
        if not open_hazards.empty:
            st.multiselect(
                "本次复查确认已整改的隐患",
                open_hazards["id"].tolist(),
                key=f"md_fixed_{venue_id}",
                format_func=dict(zip(open_hazards["id"], open_hazards["description"], strict=True)).get,
                placeholder="选择已整改到位的隐患",
            )
        for k in range(int(n_hz)):
            _hazard_fields(venue_id, k, today)
        st.text_area("备注", max_chars=1000, key=f"md_note_{venue_id}")
        photo_input(
            f"本次检查现场照片（可选，最多 {MAX_VISIT_PHOTOS} 张，合格也可留存）",
            key=f"md_photos_{venue_id}",
            multiple=True,
        )
        return st.form_submit_button("保存检查结果", type="primary", width="stretch")


def _hazard_fields(venue_id: int, k: int, today: date) -> None:
    st.markdown(f"**隐患 {k + 1}**")
    st.radio(
        "隐患等级",
        [s.value for s in HazardSeverity],
        index=None,
        horizontal=True,
        format_func=lambda s: HazardSeverity(s).label,
        key=f"md_hz_sev_{venue_id}_{k}",
    )
    st.text_input(
        "隐患描述", max_chars=500, key=f"md_hz_desc_{venue_id}_{k}", placeholder="例如：消防通道堆放杂物"
    )
    st.date_input(
        "整改期限",
        value=today + timedelta(days=7),
        min_value=today,
        max_value=today + timedelta(days=MAX_RECTIFY_DAYS),
        format="YYYY-MM-DD",
        key=f"md_hz_dl_{venue_id}_{k}",
    )
    photo_input("现场照片", key=f"md_hz_photo_{venue_id}_{k}")


def submission_key(venue_id: int, *, renew: bool = False) -> str:
    """The inspection form's submission key (提交编号): made once while the venue's form is shown, so a
    double click or a resent form records one inspection; ``renew`` after the content changed."""
    name = f"md_key_{venue_id}"
    if renew or name not in st.session_state:
        st.session_state[name] = uuid.uuid4().hex
    return str(st.session_state[name])


def forget_submission_keys() -> None:
    """Leaving a venue's form: the next time it is shown is a new submission."""
    for name in [k for k in st.session_state if str(k).startswith("md_key_")]:
        del st.session_state[name]


def entered_inspection(venue_id: int, category: str) -> dict:
    """What :func:`inspection_form` holds, as ``record_inspection``'s keywords (checklist, hazards, note,
    rectified, submission_key, the visit's photos)."""
    state = st.session_state
    checklist = {i.key: state.get(f"md_item_{venue_id}_{i.key}") for i in checklist_for(category)}
    hazards = []
    for k in range(int(state.get(f"md_nh_{venue_id}") or 0)):
        photo = state.get(f"md_hz_photo_{venue_id}_{k}")
        hazards.append(
            NewHazard(
                severity=state.get(f"md_hz_sev_{venue_id}_{k}") or "",
                description=state.get(f"md_hz_desc_{venue_id}_{k}") or "",
                deadline=state.get(f"md_hz_dl_{venue_id}_{k}"),
                photo=photo.getvalue() if photo is not None else None,
            )
        )
    return {
        "checklist": {k: v for k, v in checklist.items() if v is not None},
        "hazards": hazards,
        "note": state.get(f"md_note_{venue_id}") or None,
        "rectified": state.get(f"md_fixed_{venue_id}") or [],
        "submission_key": submission_key(venue_id),
        "photos": [f.getvalue() for f in state.get(f"md_photos_{venue_id}") or []],
    }


def capacity_form(user: CurrentUser, inspectors: list[tuple[int, str]], capacity: Capacity) -> None:
    """每日检查容量: the default (an administrator) and each inspector's own of the scope (a leader), saved
    together; each cell shows the capacity that applies, and one equal to the default (or cleared) is no
    capacity of their own. Problems are said in Chinese and nothing is stored."""
    with st.expander(f"每日检查容量（默认每人每日 {capacity.default} 处）"):
        default = None
        if user.role is Role.ADMIN:
            default = st.number_input(
                "全体检查员默认容量（处/日）", 1, MAX_DAILY_CAPACITY, capacity.default, key="ins_cap_default"
            )
        if not inspectors:
            st.caption("本范围内没有负责网格的检查员。")
            edited = pd.DataFrame(columns=["id", "检查员", "每日容量"])
        else:
            rows = pd.DataFrame(  # the capacity that applies: their own, or the default
                [(i, name, capacity.of(i)) for i, name in inspectors], columns=["id", "检查员", "每日容量"]
            )
            edited = st.data_editor(
                rows,
                hide_index=True,
                disabled=["id", "检查员"],
                column_config={
                    "id": None,
                    "每日容量": st.column_config.NumberColumn(
                        "每日容量（处/日）", min_value=1, max_value=MAX_DAILY_CAPACITY, step=1
                    ),
                },
                key="ins_cap_table",
            )
        if st.button("保存容量", key="ins_cap_save"):
            changed = {  # the cells edited (a cleared one: back to the default); the service decides
                int(r.id): None if pd.isna(r.每日容量) else int(r.每日容量)
                for r in edited.itertuples(index=False)
                if pd.isna(r.每日容量) or int(r.每日容量) != capacity.of(int(r.id))
            }
            try:
                save_capacity(
                    store.uow(),
                    default=int(default) if default is not None and default != capacity.default else None,
                    inspectors=changed,
                    now=clock.now(),
                    user=user,
                )
            except InvalidSetting as exc:
                st.error(md_text(str(exc)))
            else:
                cached.clear_after_write()
                st.rerun()
