"""The tabs of the events page beside 实时: 督办提醒 (everyone's, read-only) and the leaders' 分析排名, 预警,
报表 (on demand and 定时报表), 导入, 规则: one function per tab."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import streamlit as st

from components import store
from components.report_preview import report_preview, warnings_table
from components.text import md_text
from domain import kpi
from domain.access import CurrentUser
from domain.deadlines import DeadlineRulesError
from domain.dispatch import RulesError
from domain.vocabulary import Role
from services import clock
from services.access import Scope
from services.analytics import REPORT_PERIODS, kpi_by, kpi_display, report_workbook, warnings
from services.daily_alerts import stored_alerts
from services.event_import import import_events, template
from services.event_rules import load_rules, save_rules
from services.events import Actor
from services.geography import example_place
from services.reminders import reminders
from services.scheduled_reports import XLSX, list_reports, read_report
from services.tabular import to_csv

METRIC_CHOICES = {
    "满意率": "satisfaction_rate",
    "解决率": "resolution_rate",
    "按时办结率": "on_time_rate",
    "投诉率": "complaint_rate",
    "平均处置时长": "mean_handling_hours",
}


#: The tabs beside 实时, in order, and who sees them: 督办提醒 the responsible (department handlers and
#: leaders), the others by the ``event_analytics`` / ``edit_rules`` permission.
REMINDERS_TAB = "督办提醒"
ANALYTICS_TABS = ["分析排名", "预警", "报表", "导入"]
RULES_TAB = "规则"


def tabs_for(user: CurrentUser) -> list[str]:
    """实时 and the tabs the user's role and permissions open (an inspector: 实时 only)."""
    leader = user.may("event_analytics")
    tabs = [
        "实时",
        *([REMINDERS_TAB] if leader or user.role is Role.DEPARTMENT else []),
        *(ANALYTICS_TABS if leader else []),
    ]
    return [*tabs, RULES_TAB] if user.may("edit_rules") else tabs


def render_tab(view: str, user: CurrentUser, scope: Scope, units: pd.DataFrame, anc: pd.DataFrame) -> None:
    tabs = {
        "督办提醒": _reminders,
        "分析排名": _analytics,
        "预警": _warnings,
        "报表": _reports,
        "导入": _import,
    }
    (tabs | {"规则": _rules})[view](user, scope, units, anc)


def _reminders(user, scope, units, anc) -> None:
    """The jobs runner's 督办 reminders of the user's events whose deadline still runs (read-only)."""
    now = clock.now()
    with store.reader() as conn:
        rows = reminders(conn, scope, now)
    if rows.empty:
        st.success("暂无督办提醒。")
        return
    st.caption(f"共 {len(rows)} 条。系统每 5 分钟检查一次，每个环节的时限临近或超过时提醒一次。")
    table = {
        "事件编号": rows["event_id"],
        "事件": rows["title"],
        "状态": rows["status_label"],
        "环节": rows["stage_label"],
        "时限": pd.to_datetime(rows["due_at"]).dt.strftime("%Y-%m-%d %H:%M"),
        "当前": rows["late"].replace("", "未超时"),
        "提醒内容": rows["message"],
        "承办部门": rows["department"].fillna("—"),
    }
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")


def _rules(user, scope, units, anc) -> None:
    """The admin edits dispatch rules, owning levels, escalation and deadlines as JSON, validated on save."""
    if not user.may("edit_rules"):
        st.error("只有系统管理员可以修改规则。")
        return
    with store.reader() as conn:
        dispatch, deadlines = load_rules(conn)
    st.caption(
        "分拨规则（事项→部门、紧急程度→承办层级、一件事、自动上移）与各环节时限（小时）。保存前逐项校验，有误不保存。"
    )
    with st.form("event_rules"):
        d_text = st.text_area(
            "分拨规则", json.dumps(json.loads(dispatch.to_json()), ensure_ascii=False, indent=2), height=300
        )
        t_text = st.text_area(
            "环节时限", json.dumps(json.loads(deadlines.to_json()), ensure_ascii=False, indent=2), height=200
        )
        if st.form_submit_button("保存规则"):
            try:
                save_rules(
                    store.uow(), dispatch_json=d_text, deadlines_json=t_text, now=clock.now(), user=user
                )
            except (RulesError, DeadlineRulesError, ValueError, PermissionError) as exc:
                st.error(f"规则未保存：{md_text(exc)}")
            else:
                st.success("规则已保存，新事件与下一步办理即按新规则执行。")


def _analytics(user, scope, units, anc) -> None:
    c1, c2, c3, c4 = st.columns(4)
    today = clock.today()
    period = c1.date_input(
        "统计时段", value=(today - timedelta(days=29), today), max_value=today, format="YYYY-MM-DD"
    )
    group = c2.radio(
        "分组",
        ["area", "department"],
        format_func={"area": "下级区域", "department": "牵头部门"}.get,
        horizontal=True,
    )
    metric_label = c3.selectbox("排名指标", list(METRIC_CHOICES))
    min_n = c4.number_input("最少事件数（不足不排名）", min_value=1, value=kpi.DEFAULT_MIN_EVENTS, step=5)
    if not isinstance(period, tuple) or len(period) != 2:
        st.info("请选择开始和结束日期。")
        return
    start = datetime.combine(period[0], datetime.min.time())
    end = datetime.combine(period[1] + timedelta(days=1), datetime.min.time())
    with store.reader() as conn:
        table = kpi_by(
            conn,
            scope,
            start,
            end,
            group=group,
            units=units,
            anc=anc,
            scope_unit_id=user.scope_unit_id,
            min_events=int(min_n),
            metric=METRIC_CHOICES[metric_label],
        )
    st.caption(
        f"事件数不足 {int(min_n)} 件的单位只显示 N、不参与排名。环比：前一个同长时段；同比：去年同期。"
    )
    st.dataframe(kpi_display(table), hide_index=True, width="stretch")


def _warnings(user, scope, units, anc) -> None:
    day = st.date_input("研判日期", value=clock.today(), max_value=clock.today(), format="YYYY-MM-DD")
    with store.reader() as conn:
        alerts = stored_alerts(conn, store.tree(), user.scope_unit_id, day)
    if alerts is not None:
        st.caption("该日已由每日预警研判（定时任务，次日 00:30 按全域数据研判）完成，以下为其结果。")
    else:
        with st.spinner("正在研判…"), store.reader() as conn:
            alerts = warnings(conn, scope, day, units)
    if not alerts:
        st.success("当日无预警。")
        return
    counts = pd.Series([a.kind.label for a in alerts]).value_counts()
    st.write("　".join(f"{k} {v} 条" for k, v in counts.items()))
    warnings_table(alerts, units, user)


def month_start(kind: str, day: date) -> date | None:
    """A 月报 covers its calendar month up to ``day`` (the month so far, or all of it on its last day), as
    the scheduled one does; 日报 and 周报 the days ending on ``day``."""
    return day.replace(day=1) if kind == "月报" else None


def _reports(user, scope, units, anc) -> None:
    c1, c2 = st.columns(2)
    kind = c1.radio("报表", list(REPORT_PERIODS), horizontal=True)
    day = c2.date_input(
        "截至日期", value=clock.today() - timedelta(days=1), max_value=clock.today(), format="YYYY-MM-DD"
    )
    if kind == "月报":
        st.caption(
            f"月报统计截至日期所在月份：{day:%Y-%m}-01 至 {day:%Y-%m-%d}；环比为上月同期，同比为去年同月同期。"
        )
    if st.button("生成报表"):
        with st.spinner("正在生成…"), store.reader() as conn:
            data = report_workbook(
                conn,
                scope,
                kind=kind,
                day=day,
                units=units,
                anc=anc,
                scope_unit_id=user.scope_unit_id,
                first_day=month_start(kind, day),
            )
        st.download_button(
            f"下载{kind}（XLSX）",
            data,
            file_name=f"{units.at[user.scope_unit_id, 'name']}{kind}_{day}.xlsx",
            mime=XLSX,
        )
        report_preview(data, key="ev_report_now")
    st.subheader("定时报表")
    tree = store.tree()
    files = list_reports(tree, user.scope_unit_id)
    if not files:
        st.caption("暂无定时报表：系统每天 01:00 生成前一日日报，每周一生成上周周报，每月 1 日生成上月月报。")
        return
    listing = {
        "区域": [f.unit_name for f in files],
        "报表": [f.kind for f in files],
        "周期": [f.period_label for f in files],
        "生成时间": [f"{f.created:%Y-%m-%d %H:%M}" for f in files],
        "大小": [f"{max(1, round(f.size_bytes / 1024))} KB" for f in files],
    }
    st.dataframe(pd.DataFrame(listing), hide_index=True, width="stretch", height=240)
    pick = st.selectbox("选择定时报表", range(len(files)), format_func=lambda i: files[i].download_name[:-5])
    try:
        data = read_report(tree, user, files[pick].name)
    except LookupError:
        st.warning("该报表已被删除，请刷新列表。")
        return
    st.download_button(
        "下载所选报表（XLSX）", data, file_name=files[pick].download_name, mime=XLSX, key="ev_sched_dl"
    )
    report_preview(data, key="ev_report_sched")


def _import(user, scope, units, anc) -> None:
    st.caption(
        "从 12345、110、数字城管等系统导入事件。全部行通过校验才导入；有错时列出每一处问题，不写入任何数据。"
    )
    st.download_button(
        "下载导入模板（CSV）",
        to_csv(template(example_place(store.tree(), user.scope_unit_id))),
        file_name="事件导入模板.csv",
        mime="text/csv",
    )
    upload = st.file_uploader("选择文件（CSV 或 XLSX）", type=["csv", "xlsx"], key="ev_import_file")
    if upload is None or not st.button("导入"):
        return
    # import_events writes nothing unless every row passed.
    outcome = import_events(
        store.uow(),
        upload.getvalue(),
        upload.name,
        actor=Actor(user.id, user.role.value),
        now=clock.now(),
        user=user,
    )
    if outcome.already:  # the same file again: nothing to do, and nothing wrong
        st.info(outcome.errors[0].reason)
        return
    if not outcome.ok:
        st.error(f"导入失败：共 {outcome.total or len(outcome.errors)} 处问题，未导入任何数据。")
        st.dataframe(
            pd.DataFrame([{"行号": e.row, "字段": e.field, "问题": e.reason} for e in outcome.errors]),
            hide_index=True,
            width="stretch",
        )
        return
    st.success(f"已导入 {outcome.imported} 条事件。")
    for note in outcome.notes:  # the sheet read, columns read under another name or left out, closed orders
        st.info(md_text(note))
    if outcome.late:
        st.warning(
            f"其中 {outcome.late} 条在导入时已超过受理时限（按上报时间计），已显示为超期，请尽快受理。"
            "已在其他系统办结的历史工单不必导入：导入的事件都会进入本系统的办理流程。"
        )
