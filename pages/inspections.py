"""平安检查: today's plan of every inspector, the 30-day load, overdue lists, codes and their trend,
on-time rates, campaigns (专项整治) and venue import — for the township leader and the command centre."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from components.auth import require_page
from components.kpi import kpi_row
from components.store import engine
from components.text import md_text
from components.venue_card import code_badge
from db.engine import session_factory
from domain.planner import Proposal
from domain.vocabulary import AdminLevel, HazardSeverity, SafetyCode, VenueCategory
from services import clock
from services.access import deny, require_unit
from services.events import OutOfScope
from services.planning import (
    InvalidSetting,
    accept_proposals,
    add_campaign,
    campaigns_for,
    clear_reassignments,
    code_distribution,
    code_trend,
    load_forecast,
    load_tree,
    on_time_rates,
    overdue_hazards,
    overdue_venues,
    plan_for,
    remove_campaign,
)
from services.venue_import import (
    ImportRejected,
    import_venues,
    may_import,
    problems_frame,
    safe_csv,
    template_csv,
)

user = require_page("inspections")
today = clock.today()
url = str(engine().url)


@st.cache_resource(show_spinner=False, ttl=600)
def _tree(url: str):
    with engine().connect() as conn:
        return load_tree(conn)


@st.cache_data(ttl=30, show_spinner="正在编排检查计划…")
def _plan(url: str, day: date, scope: int, _user):
    with engine().connect() as conn:
        return plan_for(conn, day, scope, tree=_tree(url), user=_user)


@st.cache_data(ttl=120, show_spinner="正在推算负荷…")
def _forecast(url: str, start: date, scope: int, _user):
    with engine().connect() as conn:
        return load_forecast(conn, start, scope, tree=_tree(url), user=_user)


@st.cache_data(ttl=120, show_spinner=False)
def _codes(url: str, today: date, scope: int, _user):
    with engine().connect() as conn:
        return (code_distribution(conn, scope, tree=_tree(url), user=_user),
                code_trend(conn, today, scope, tree=_tree(url), user=_user))


@st.cache_data(ttl=300, show_spinner="正在统计按时率…")
def _rates(url: str, start: date, end: date, scope: int, _user):
    with engine().connect() as conn:
        return on_time_rates(conn, start, end, scope, tree=_tree(url), user=_user)


def _refresh() -> None:
    _plan.clear()
    _forecast.clear()


tree = _tree(url)
if user.scope_unit_id not in tree.levels:
    st.error("您的管辖范围不存在，请联系管理员。")
    st.stop()

st.title("平安检查")
# Scope: the user's unit, or one township inside it (a city or county is large).
choices = [user.scope_unit_id]
if tree.level(user.scope_unit_id).depth < AdminLevel.TOWNSHIP.depth:
    choices += [g for g in sorted(tree.levels)
                if tree.levels[g] == AdminLevel.TOWNSHIP.value and tree.contains(user.scope_unit_id, g)]
c1, c2 = st.columns([2, 1])
scope = c1.selectbox("范围", choices, format_func=tree.name, key="ins_scope")
if scope not in choices:  # a value forced into the session: refused, logged, back to the user's own scope
    deny(user, "inspections scope", scope)
    st.session_state.pop("ins_scope", None)
    scope = user.scope_unit_id
with engine().connect() as conn:  # the store says, on every run: the cached reads below are shared by users
    try:
        require_unit(conn, user, scope, "inspections scope")
    except OutOfScope as exc:
        st.error(md_text(str(exc)))
        st.stop()
day = c2.date_input("计划日期", value=today, min_value=today - timedelta(days=7), max_value=today + timedelta(days=30),
                    format="YYYY-MM-DD", key="ins_day")

view = _plan(url, day, scope, user)
plan = view.plan
dist, trend = _codes(url, today, scope, user)
kpi_row([
    ("今日计划检查", plan.planned),
    ("未排入", plan.not_planned),
    ("调配建议", len(plan.proposals)),
    ("红码场所", dist["red"]),
])

tabs = st.tabs(["检查计划", "30天负荷", "逾期清单", "平安码分布", "按时检查率", "专项整治", "场所导入"])

# ------------------------------------------------------------------ today's plan
with tabs[0]:
    summary = view.summary()
    st.caption(f"{day:%Y-%m-%d} 各检查员计划（每人每日容量 {view.inputs.capacity.default}；已登记的检查占用当日容量）")
    st.dataframe(summary.drop(columns=["inspector_id"]), hide_index=True, width="stretch")
    st.download_button("导出计划（CSV）", safe_csv(summary.drop(columns=["inspector_id"])),
                       file_name=f"检查计划_{day:%Y%m%d}.csv", mime="text/csv", key="ins_plan_csv")
    if plan.overflow:
        st.markdown("**超出容量未排入（按检查员、村）**")
        st.dataframe(view.overflow_table(), hide_index=True, width="stretch")
    if view.inputs.reassign:
        st.info(f"当日已采纳调配 {len(view.inputs.reassign)} 处。")
        if st.button("撤销当日全部调配", key="ins_clear"):
            with engine().begin() as conn:
                clear_reassignments(conn, day=day, now=clock.now(), user=user, tree=tree)
            _refresh()
            st.rerun()
    if plan.proposals:
        st.markdown("**调配建议**：把未排入的检查交给同村或同乡镇尚有余量的检查员")

        def _accept(chosen: list[Proposal]) -> None:
            try:
                with engine().begin() as conn:
                    accept_proposals(conn, user=user, tree=tree, day=day, proposals=chosen, now=clock.now())
            except InvalidSetting as exc:
                st.session_state["ins_error"] = str(exc)
            _refresh()

        st.button("全部采纳", key="ins_accept_all", on_click=_accept, args=(list(plan.proposals),), type="primary")
        if "ins_error" in st.session_state:
            st.error(md_text(st.session_state.pop("ins_error")))
        for p in plan.proposals[:50]:
            c1, c2 = st.columns([5, 1])
            c1.markdown(f"{md_text(p.venue_name)}（{md_text(tree.name(p.village_id))}）："
                        f"{md_text(view.inspector_name(p.from_inspector_id))} → "
                        f"**{md_text(view.inspector_name(p.to_inspector_id))}**。{md_text(p.reason)}")
            c2.button("采纳", key=f"ins_accept_{p.venue_id}", on_click=_accept, args=([p],))
        if len(plan.proposals) > 50:
            st.caption(f"另有 {len(plan.proposals) - 50} 条建议，可“全部采纳”。")
    with st.expander("查看某位检查员的路线"):
        names = {r.inspector_id: r.inspector_name for r in plan.routes}
        if names:
            who = st.selectbox("检查员", list(names), format_func=names.get, key="ins_route_of")
            r = plan.route_of(who)
            st.dataframe(
                pd.DataFrame({
                    "顺序": [v.stop for v in r.visits], "场所": [v.venue_name for v in r.visits],
                    "平安码": [SafetyCode(v.code).label for v in r.visits],
                    "原因": [v.reason for v in r.visits], "距上一站（米）": [round(v.leg_m) for v in r.visits],
                }),
                hide_index=True, width="stretch",
            )

# ------------------------------------------------------------------ 30-day load


def _heat(df: pd.DataFrame, capacity: int | None):
    """Cells coloured by load: over capacity red, near it orange, light otherwise (no matplotlib)."""
    top = max(1, int(df.to_numpy().max()) if df.size else 1)

    def colour(v) -> str:
        if capacity:
            if v > capacity:
                return "background-color:#f8b4b4"
            if v >= 0.8 * capacity:
                return "background-color:#fde68a"
            return "background-color:#d1fae5" if v else ""
        shade = int(255 - 120 * (v / top))
        return f"background-color:rgb(255,{shade},{shade})" if v else ""

    return df.style.map(colour)


with tabs[1]:
    fc = _forecast(url, today, scope, user)
    st.caption("未来 30 天每天应检查的场所数（按各场所的应检日期与平安码周期推算，假设每次都按期检查；含隐患复查与专项整治）。"
               f"红色：超过每日容量 {fc.capacity.default}；黄色：接近容量。")
    short = {c: c[5:] for c in fc.by_inspector.columns}
    st.markdown("**按检查员**")
    st.dataframe(_heat(fc.by_inspector.rename(columns=short), fc.capacity.default), width="stretch")
    st.markdown("**按村（社区）**")
    st.dataframe(_heat(fc.by_village.rename(columns=short), None), width="stretch")

# ------------------------------------------------------------------ overdue lists
with tabs[2], engine().connect() as conn:
    late = overdue_venues(conn, today, scope, tree=tree, user=user)
    late_hz = overdue_hazards(conn, today, scope, tree=tree, user=user)
    st.markdown(f"**逾期未检场所**（{len(late)}）")
    late_view = pd.DataFrame({
        "场所": late["name"], "类别": late["category"].map(lambda c: VenueCategory(c).label),
        "平安码": late["code"].map(lambda c: SafetyCode(c).label), "村（社区）": late["village"],
        "应检日期": late["next_due_on"], "逾期天数": late["overdue_days"], "负责检查员": late["inspector"],
    }).sort_values("逾期天数", ascending=False, kind="stable")
    st.dataframe(late_view, hide_index=True, width="stretch")
    st.download_button("导出逾期场所（CSV）", safe_csv(late_view), file_name=f"逾期场所_{today:%Y%m%d}.csv",
                       mime="text/csv", key="ins_late_csv")
    st.markdown(f"**超期未整改隐患**（{len(late_hz)}）")
    hz_view = pd.DataFrame({
        "场所": late_hz["venue"], "村（社区）": late_hz["village"],
        "等级": late_hz["severity"].map(lambda s: HazardSeverity(s).label), "隐患": late_hz["description"],
        "发现日期": late_hz["found_on"], "整改期限": late_hz["deadline"], "超期天数": late_hz["overdue_days"],
    }).sort_values("超期天数", ascending=False, kind="stable")
    st.dataframe(hz_view, hide_index=True, width="stretch")
    st.download_button("导出超期隐患（CSV）", safe_csv(hz_view), file_name=f"超期隐患_{today:%Y%m%d}.csv",
                       mime="text/csv", key="ins_hz_csv")

# ------------------------------------------------------------------ codes and trend
with tabs[3]:
    total = sum(dist.values()) or 1
    st.markdown(
        "　".join(f"{code_badge(c)} {dist[c.value]:,}（{dist[c.value] / total:.1%}）" for c in SafetyCode),
        unsafe_allow_html=True,
    )
    st.markdown("**近 90 天红码场所数**")
    st.line_chart(trend[["红码"]], y_label="红码场所数", color=["#e60012"])
    st.markdown("**近 90 天黄码、绿码场所数**")
    st.line_chart(trend[["黄码", "绿码"]], color=["#ffc107", "#00a859"])

# ------------------------------------------------------------------ on-time rate
with tabs[4]:
    period = st.selectbox("统计时段", [30, 90], format_func=lambda d: f"近 {d} 天", key="ins_rate_period")
    rates = _rates(url, today - timedelta(days=period - 1), today, scope, user)
    st.caption("一次检查“按时”：在上次检查后按当时平安码的周期（红 1 天、黄 7 天、绿 30 天）到期之日或之前完成。")
    if rates.empty:
        st.info("该时段没有检查记录。")
    else:
        shown = rates.assign(按时率=(rates["按时率"] * 100).round(1).astype(str) + "%")
        st.dataframe(shown, hide_index=True, width="stretch")

# ------------------------------------------------------------------ campaigns
with tabs[5]:
    with engine().connect() as conn:
        campaigns = campaigns_for(conn, user, tree)
    if campaigns:
        table = pd.DataFrame({
            "名称": [c.name for c in campaigns],
            "场所类别": [VenueCategory(c.category).label for c in campaigns],
            "区域": ["、".join(tree.name(a) for a in sorted(c.area_ids)) for c in campaigns],
            "开始": [c.start for c in campaigns], "结束": [c.end for c in campaigns],
            "周期（天）": [c.every_days for c in campaigns],
            "状态": ["进行中" if c.start <= today <= c.end else ("未开始" if c.start > today else "已结束")
                   for c in campaigns],
        })
        st.dataframe(table, hide_index=True, width="stretch")
    else:
        st.caption("暂无专项整治。")
    areas = [a for a in [scope, *tree.children(scope)]
             if tree.levels[a] in (AdminLevel.TOWNSHIP.value, AdminLevel.VILLAGE.value)]
    with st.form("ins_campaign"):
        st.markdown("**新增专项整治**")
        name = st.text_input("名称", max_chars=50, placeholder="例如：出租房电动车充电专项整治")
        cat = st.selectbox("场所类别", [c.value for c in VenueCategory], index=None, placeholder="请选择",
                           format_func=lambda c: VenueCategory(c).label)
        chosen = st.multiselect("区域（乡镇或村）", areas, format_func=tree.name, placeholder="请选择")
        c1, c2, c3 = st.columns(3)
        start = c1.date_input("开始日期", value=today, format="YYYY-MM-DD")
        end = c2.date_input("结束日期", value=today + timedelta(days=30), format="YYYY-MM-DD")
        every = c3.number_input("每隔几天检查一次", min_value=1, max_value=90, value=7, step=1)
        if st.form_submit_button("保存专项整治", type="primary"):
            try:
                with engine().begin() as conn:
                    add_campaign(conn, user=user, tree=tree, name=name, category=cat, area_ids=chosen, start=start,
                                 end=end, every_days=int(every), now=clock.now())
            except InvalidSetting as exc:
                for field, problem in exc.problems.items():
                    st.error(f"{field}：{md_text(problem)}")
            else:
                _refresh()
                st.success(f"已保存专项整治“{md_text(name.strip())}”。")
                st.rerun()
    if campaigns:
        c1, c2 = st.columns([3, 1])
        gone = c1.selectbox("删除专项整治", [c.name for c in campaigns], index=None, key="ins_campaign_del",
                            placeholder="选择要删除的专项整治")
        if c2.button("删除", key="ins_campaign_del_btn", disabled=gone is None):
            try:
                with engine().begin() as conn:
                    remove_campaign(conn, user=user, tree=tree, name=gone, now=clock.now())
            except InvalidSetting as exc:
                st.error(md_text(str(exc)))
            else:
                _refresh()
                st.rerun()

# ------------------------------------------------------------------ venue import
with tabs[6]:
    if not may_import(user):
        st.info("场所导入由系统管理员或乡镇（街道）领导操作。")
    else:
        st.caption("按模板填写后上传 CSV（UTF-8 或 GBK 编码）或 XLSX 文件。全部行检查通过才会导入；"
                   "有问题时列出每一行的问题，不导入任何场所。说明见 docs/venue-import.md。")
        st.download_button("下载导入模板（CSV）", template_csv(), file_name="场所导入模板.csv", mime="text/csv",
                           key="ins_template")
        upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key="ins_import_file")
        if st.button("检查并导入", key="ins_import", type="primary", disabled=upload is None):
            try:
                with session_factory(engine()).begin() as s:
                    result = import_venues(s, data=upload.getvalue(), filename=upload.name, now=clock.now(),
                                           user=user)
            except ImportRejected as exc:
                st.error(md_text(str(exc)))
                st.dataframe(problems_frame(exc.problems), hide_index=True, width="stretch")
            else:
                _refresh()
                st.success(f"已导入 {result.created} 个场所（初始平安码按模板，首次检查日期为今天）。")
