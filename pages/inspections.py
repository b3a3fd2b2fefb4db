"""平安检查: today's plan of every inspector, the 30-day load, overdue lists, codes and their trend,
on-time rates, campaigns (专项整治) and venue import — for the township leader and the command centre."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from components import cached, store
from components import inspection_forms as forms
from components import inspection_tables as tables
from components.auth import require_page
from components.forecast import forecast_section
from components.kpi import kpi_row
from components.text import md_text
from domain.planner import Proposal
from services import clock
from services.access import OutOfScope, require_area
from services.geography import example_place
from services.inspection_reports import overdue_hazards, overdue_venues
from services.planning_settings import (
    InvalidSetting,
    accept_proposals,
    add_campaign,
    campaigns_for,
    clear_reassignments,
    remove_campaign,
)
from services.venue_import import ImportRejected, import_venues, may_import, template_csv

user = require_page("inspections")
today = clock.today()
tree = store.tree()
if user.scope_unit_id not in tree:
    st.error("您的管辖范围不存在，请联系管理员。")
    st.stop()


st.title("平安检查")
c1, c2 = st.columns([2, 1])
asked = c1.selectbox(
    "范围", forms.scope_options(tree, user.scope_unit_id), format_func=tree.name, key="ins_scope"
)
try:  # the store's tree decides, on every run: the cached reads below are shared by users
    scope = require_area(tree, user, asked, "inspections scope")
except OutOfScope:  # a value forced into the session: refused, logged, back to the user's own scope
    st.session_state.pop("ins_scope", None)
    scope = user.scope_unit_id
day = c2.date_input(
    "计划日期",
    value=today,
    min_value=today - timedelta(days=7),
    max_value=today + timedelta(days=30),
    format="YYYY-MM-DD",
    key="ins_day",
)

view = cached.plan(day, scope, user)
plan = view.plan
dist, trend = cached.codes(today, scope, user)
kpi_row(
    [
        ("今日计划检查", plan.planned),
        ("未排入", plan.not_planned),
        ("调配建议", len(plan.proposals)),
        ("红码场所", dist["red"]),
    ]
)
tabs = st.tabs(
    ["检查计划", "30天负荷", "逾期清单", "平安码分布", "按时检查率", "专项整治", "场所导入", "隐患预测"]
)

with tabs[0]:
    summary = tables.plan_summary(view)
    st.caption(
        f"{day:%Y-%m-%d} 各检查员计划（每人每日容量 {view.inputs.capacity.default}；已登记的检查占用当日容量）"
    )
    st.dataframe(summary, hide_index=True, width="stretch")
    tables.csv_button("导出计划（CSV）", summary, f"检查计划_{day:%Y%m%d}.csv", "ins_plan_csv")
    forms.capacity_form(user, [(r.inspector_id, r.inspector_name) for r in plan.routes], view.inputs.capacity)
    if plan.overflow and not (over := tables.overflow(view)).empty:
        st.markdown("**超出容量未排入（按检查员、村）**")
        st.dataframe(over, hide_index=True, width="stretch")
    if plan.uncovered:
        st.warning(
            f"{len(plan.uncovered)} 个今日应检场所所在的网格没有检查员负责，不能排入任何人的计划："
            "请在「账号管理」中为检查员分配这些网格。"
        )
        st.dataframe(tables.uncovered(view), hide_index=True, width="stretch")
    if view.inputs.reassign:
        st.info(f"当日已采纳调配 {len(view.inputs.reassign)} 处。")
        if st.button("撤销当日全部调配", key="ins_clear"):
            clear_reassignments(store.uow(), day=day, now=clock.now(), user=user)
            cached.clear_after_write()
            st.rerun()
    if plan.proposals:

        def _accept(chosen: list[Proposal]) -> None:
            try:
                accept_proposals(store.uow(), user=user, day=day, proposals=chosen, now=clock.now())
            except InvalidSetting as exc:
                st.session_state["ins_error"] = str(exc)
            cached.clear_after_write()

        forms.proposal_list(view, tree, _accept)
    with st.expander("查看某位检查员的路线"):
        names = {r.inspector_id: r.inspector_name for r in plan.routes}
        if names:
            who = st.selectbox("检查员", list(names), format_func=names.get, key="ins_route_of")
            st.dataframe(tables.route(view, who), hide_index=True, width="stretch")

with tabs[1]:
    fc = cached.forecast(today, scope, user)
    st.caption(
        "未来 30 天每天应检查的场所数（按各场所的应检日期与平安码周期推算，假设每次都按期检查；含隐患复查与专项整治）。"
        f"红色：超过每日容量 {fc.capacity.default}；黄色：接近容量。"
    )
    st.markdown("**按检查员**")
    st.dataframe(tables.load_heat(fc.by_inspector, fc.capacity.default, "检查员"), width="stretch")
    st.markdown("**按村（社区）**")
    st.dataframe(tables.load_heat(fc.by_village, None, "村（社区）"), width="stretch")

with tabs[2], store.reader() as conn:
    late = tables.late_venues(overdue_venues(conn, today, scope, user=user))
    late_hz = tables.late_hazards(overdue_hazards(conn, today, scope, user=user))
    st.markdown(f"**逾期未检场所**（{len(late)}）")
    st.dataframe(late, hide_index=True, width="stretch")
    tables.csv_button("导出逾期场所（CSV）", late, f"逾期场所_{today:%Y%m%d}.csv", "ins_late_csv")
    st.markdown(f"**超期未整改隐患**（{len(late_hz)}）")
    st.dataframe(late_hz, hide_index=True, width="stretch")
    tables.csv_button("导出超期隐患（CSV）", late_hz, f"超期隐患_{today:%Y%m%d}.csv", "ins_hz_csv")

with tabs[3]:
    tables.show_codes(dist, trend)

with tabs[4]:
    period = st.selectbox("统计时段", [30, 90], format_func=lambda d: f"近 {d} 天", key="ins_rate_period")
    rates = cached.rates(today - timedelta(days=period - 1), today, scope, user)
    st.caption(
        "一次检查“按时”：在上次检查后按当时平安码的周期（红 1 天、黄 7 天、绿 30 天）到期之日或之前完成。"
    )
    if rates.empty:
        st.info("该时段没有可计算按时率的检查（首次检查没有上次检查，不计入按时率）。")
    else:
        st.dataframe(tables.rates(rates), hide_index=True, width="stretch")

with tabs[5]:
    with store.reader() as conn:
        campaigns = campaigns_for(conn, user)
    if campaigns:
        st.dataframe(tables.campaigns(campaigns, tree, today), hide_index=True, width="stretch")
    else:
        st.caption("暂无专项整治。")
    entered = forms.campaign_form(scope, tree, today)
    if entered is not None:
        try:
            add_campaign(store.uow(), user=user, now=clock.now(), **entered)
        except InvalidSetting as exc:
            for field, problem in exc.problems.items():
                st.error(f"{field}：{md_text(problem)}")
        else:
            cached.clear_after_write()
            st.rerun()
    gone = forms.campaign_removal([c.name for c in campaigns])
    if gone is not None:
        try:
            remove_campaign(store.uow(), user=user, name=gone, now=clock.now())
        except InvalidSetting as exc:
            st.error(md_text(str(exc)))
        else:
            cached.clear_after_write()
            st.rerun()

with tabs[6]:
    chosen = forms.venue_upload(may_import(user), template_csv(example_place(tree, user.scope_unit_id)))
    if chosen is not None:
        upload, crs = chosen
        try:
            result = import_venues(
                store.uow(), data=upload.getvalue(), filename=upload.name, now=clock.now(), user=user, crs=crs
            )
        except ImportRejected as exc:
            st.error(md_text(str(exc)))
            st.dataframe(tables.row_errors(exc.problems), hide_index=True, width="stretch")
        else:
            cached.clear_after_write()
            st.success(f"已导入 {result.created} 个场所（初始平安码按模板，首次检查日期为今天）。")
            for note in result.notes:  # the sheet read, a tab separator, columns left out
                st.info(md_text(note))

with tabs[7]:
    forecast_section(tree.grids_under(scope), view)
