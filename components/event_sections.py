"""The leaders' sections of the event page: analytics and ranking, early warnings, reports, imports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from components.store import engine
from components.text import md_text
from db.engine import session_factory
from domain import kpi
from domain.access import CurrentUser
from domain.deadlines import DeadlineRulesError
from domain.dispatch import RulesError
from services import clock
from services.analytics import REPORT_PERIODS, alerts_frame, kpi_by, kpi_display, report_workbook, warnings
from services.event_import import import_events, template
from services.event_rules import load_rules, save_rules
from services.event_views import Scope
from services.events import Actor
from services.tabular import to_csv

METRIC_CHOICES = {"满意率": "satisfaction_rate", "解决率": "resolution_rate", "按时办结率": "on_time_rate",
                  "投诉率": "complaint_rate", "平均处置时长": "mean_handling_hours"}


def render_section(view: str, user: CurrentUser, scope: Scope, units: pd.DataFrame, anc: pd.DataFrame) -> None:
    {"分析排名": _analytics, "预警": _warnings, "报表": _reports, "导入": _import, "规则": _rules}[view](
        user, scope, units, anc
    )


def _rules(user, scope, units, anc) -> None:
    """The admin edits dispatch rules, owning levels, escalation and deadlines as JSON, validated on save."""
    if not user.may("edit_rules"):
        st.error("只有系统管理员可以修改规则。")
        return
    with engine().connect() as conn:
        dispatch, deadlines = load_rules(conn)
    st.caption("分拨规则（事项→部门、紧急程度→承办层级、一件事、自动上移）与各环节时限（小时）。保存前逐项校验，有误不保存。")
    with st.form("event_rules"):
        d_text = st.text_area("分拨规则", json.dumps(json.loads(dispatch.to_json()), ensure_ascii=False, indent=2), height=300)
        t_text = st.text_area("环节时限", json.dumps(json.loads(deadlines.to_json()), ensure_ascii=False, indent=2), height=200)
        if st.form_submit_button("保存规则"):
            try:
                with engine().begin() as conn:
                    save_rules(conn, dispatch_json=d_text, deadlines_json=t_text, now=clock.now(), user=user)
            except (RulesError, DeadlineRulesError, ValueError, PermissionError) as exc:
                st.error(f"规则未保存：{md_text(exc)}")
            else:
                st.success("规则已保存，新事件与下一步办理即按新规则执行。")


def _analytics(user, scope, units, anc) -> None:
    c1, c2, c3, c4 = st.columns(4)
    today = clock.today()
    period = c1.date_input("统计时段", value=(today - timedelta(days=29), today), max_value=today, format="YYYY-MM-DD")
    group = c2.radio("分组", ["area", "department"], format_func={"area": "下级区域", "department": "牵头部门"}.get,
                     horizontal=True)
    metric_label = c3.selectbox("排名指标", list(METRIC_CHOICES))
    min_n = c4.number_input("最少事件数（不足不排名）", min_value=1, value=kpi.DEFAULT_MIN_EVENTS, step=5)
    if not isinstance(period, tuple) or len(period) != 2:
        st.info("请选择开始和结束日期。")
        return
    start = datetime.combine(period[0], datetime.min.time())
    end = datetime.combine(period[1] + timedelta(days=1), datetime.min.time())
    with engine().connect() as conn:
        table = kpi_by(conn, scope, start, end, group=group, units=units, anc=anc, scope_unit_id=user.scope_unit_id,
                       min_events=int(min_n), metric=METRIC_CHOICES[metric_label])
    st.caption(f"事件数不足 {int(min_n)} 件的单位只显示 N、不参与排名。环比：前一个同长时段；同比：去年同期。")
    st.dataframe(kpi_display(table), hide_index=True, width="stretch")


def _warnings(user, scope, units, anc) -> None:
    day = st.date_input("研判日期", value=clock.today(), max_value=clock.today(), format="YYYY-MM-DD")
    with st.spinner("正在研判…"), engine().connect() as conn:
        alerts = warnings(conn, scope, day, units)
    if not alerts:
        st.success("当日无预警。")
        return
    frame = alerts_frame(alerts, units)
    counts = frame["预警类型"].value_counts()
    st.write("　".join(f"{k} {v} 条" for k, v in counts.items()))
    st.dataframe(frame, hide_index=True, width="stretch")


def _reports(user, scope, units, anc) -> None:
    c1, c2 = st.columns(2)
    kind = c1.radio("报表", list(REPORT_PERIODS), horizontal=True)
    day = c2.date_input("截至日期", value=clock.today() - timedelta(days=1), max_value=clock.today(), format="YYYY-MM-DD")
    if st.button("生成报表"):
        with st.spinner("正在生成…"), engine().connect() as conn:
            data = report_workbook(conn, scope, kind=kind, day=day, units=units, anc=anc,
                                   scope_unit_id=user.scope_unit_id)
        st.download_button(f"下载{kind}（XLSX）", data, file_name=f"{units.at[user.scope_unit_id, 'name']}{kind}_{day}.xlsx",
                           mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _import(user, scope, units, anc) -> None:
    st.caption("从 12345、110、数字城管等系统导入事件。全部行通过校验才导入；有错时列出每一处问题，不写入任何数据。")
    st.download_button("下载导入模板（CSV）", to_csv(template()), file_name="事件导入模板.csv", mime="text/csv")
    upload = st.file_uploader("选择文件（CSV 或 XLSX）", type=["csv", "xlsx"], key="ev_import_file")
    if upload is None or not st.button("导入"):
        return
    # import_events writes nothing unless every row passed, so the transaction may simply commit.
    with session_factory(engine()).begin() as s:
        outcome = import_events(s, upload.getvalue(), upload.name, actor=Actor(user.id, user.role.value), now=clock.now(),
                                user=user)
    if not outcome.ok:
        st.error(f"导入失败：共 {len(outcome.errors)} 处问题，未导入任何数据。")
        st.dataframe(pd.DataFrame([{"行号": e.row, "字段": e.field, "问题": e.reason} for e in outcome.errors]),
                     hide_index=True, width="stretch")
        return
    st.success(f"已导入 {outcome.imported} 条事件。")
