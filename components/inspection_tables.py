"""The 平安检查 tables as people read them: the services' English frames with Chinese headers and labels.

Every function takes what a service returned and gives a frame (or a styled one) ready for
``st.dataframe`` and for export (:func:`show_codes` draws the distribution tab); colours come from
:mod:`components.palette`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import altair as alt
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from components.palette import EVENT_RAMP, RGB, SAFETY_CODE_RGB, hex_color
from components.venue_card import code_badge
from domain.hierarchy import Tree
from domain.planner import Campaign
from domain.vocabulary import HazardSeverity, InspectionResult, SafetyCode, VenueCategory
from services.planning import PlanView
from services.tabular import RowError, to_csv

#: The share of capacity from which a day's load is shown as near capacity.
NEAR_CAPACITY = 0.8
TOTAL = "合计"


def _label(enum, value) -> str:
    return enum(value).label if value is not None and not pd.isna(value) else "—"


def csv_button(label: str, frame: pd.DataFrame, file_name: str, key: str) -> None:
    """A download of ``frame`` as formula-safe CSV for Excel (:func:`services.tabular.to_csv`)."""
    st.download_button(label, to_csv(frame), file_name=file_name, mime="text/csv", key=key)


# -- the day plan -----------------------------------------------------------------------------


def plan_summary(view: PlanView) -> pd.DataFrame:
    """One row per inspector: 检查员, 计划检查, 今日已检查, 剩余容量, 红码, 路线长度（公里）, 未排入."""
    s = view.summary()
    return pd.DataFrame(
        {
            "检查员": s["inspector"],
            "计划检查": s["planned"],
            "今日已检查": s["done_today"],
            "剩余容量": s["spare"],
            "红码": s["red"],
            "路线长度（公里）": s["route_km"],
            "未排入": s["overflow"],
        }
    )


def overflow(view: PlanView) -> pd.DataFrame:
    o = view.overflow_table()
    return pd.DataFrame({"检查员": o["inspector"], "村（社区）": o["village"], "未排入": o["count"]})


def uncovered(view: PlanView) -> pd.DataFrame:
    u = view.uncovered_table()
    return pd.DataFrame(
        {
            "乡镇（街道）": u["township"],
            "村（社区）": u["village"],
            "场所": u["venue"],
            "平安码": u["code"].map(lambda c: _label(SafetyCode, c)),
            "原因": u["reason"],
        }
    )


def route(view: PlanView, inspector_id: int) -> pd.DataFrame:
    r = view.route_table(inspector_id)
    return pd.DataFrame(
        {
            "顺序": r["stop"],
            "场所": r["venue"],
            "平安码": r["code"].map(lambda c: _label(SafetyCode, c)),
            "原因": r["reason"],
            "距上一站（米）": r["leg_m"],
        }
    )


# -- the 30-day load --------------------------------------------------------------------------


def _tint(rgb: RGB, strength: float) -> str:
    """A pale version of ``rgb`` (mixed with white) as a CSS background."""
    r, g, b = (round(255 - strength * (255 - c)) for c in rgb)
    return f"background-color:rgb({r},{g},{b})"


def load_heat(frame: pd.DataFrame, capacity: int | None, index_name: str) -> Styler:
    """A forecast table (rows × ISO dates) with MM-DD headers, cells coloured by load.

    With a ``capacity``: over it red, from :data:`NEAR_CAPACITY` of it yellow, any load green (the
    平安码 colours, pale). Without: the event-count ramp by share of the table's largest cell.
    """
    shown = frame.rename(columns={c: c[5:] for c in frame.columns})
    shown.index.name = index_name
    top = max(1, int(shown.to_numpy().max()) if shown.size else 1)

    def colour(v) -> str:
        if not v:
            return ""
        if capacity:
            code = (
                SafetyCode.RED
                if v > capacity
                else (SafetyCode.YELLOW if v >= NEAR_CAPACITY * capacity else SafetyCode.GREEN)
            )
            return _tint(SAFETY_CODE_RGB[code], 0.3)
        step = min(len(EVENT_RAMP) - 1, int(len(EVENT_RAMP) * v / top))
        return _tint(EVENT_RAMP[step], 0.6)

    return shown.style.map(colour)


# -- overdue lists ----------------------------------------------------------------------------


def late_venues(frame: pd.DataFrame) -> pd.DataFrame:
    """Overdue venues, most overdue first."""
    return pd.DataFrame(
        {
            "场所": frame["name"],
            "类别": frame["category"].map(lambda c: _label(VenueCategory, c)),
            "平安码": frame["code"].map(lambda c: _label(SafetyCode, c)),
            "村（社区）": frame["village"],
            "应检日期": frame["next_due_on"],
            "逾期天数": frame["overdue_days"],
            "负责检查员": frame["inspector"],
        }
    ).sort_values("逾期天数", ascending=False, kind="stable")


def late_hazards(frame: pd.DataFrame) -> pd.DataFrame:
    """Hazards past their deadline, most overdue first."""
    return pd.DataFrame(
        {
            "场所": frame["venue"],
            "村（社区）": frame["village"],
            "等级": frame["severity"].map(lambda s: _label(HazardSeverity, s)),
            "隐患": frame["description"],
            "发现日期": frame["found_on"],
            "整改期限": frame["deadline"],
            "超期天数": frame["overdue_days"],
        }
    ).sort_values("超期天数", ascending=False, kind="stable")


# -- codes and rates --------------------------------------------------------------------------


def code_shares_html(dist: dict[str, int]) -> str:
    """Each colour's badge with its count and share (HTML; no user text)."""
    total = sum(dist.values()) or 1
    return "　".join(f"{code_badge(c)} {dist[c.value]:,}（{dist[c.value] / total:.1%}）" for c in SafetyCode)


def show_codes(dist: dict[str, int], trend_frame: pd.DataFrame) -> None:
    """The distribution tab: each colour's share, the red trend, then the yellow and green trends."""
    st.markdown(code_shares_html(dist), unsafe_allow_html=True)
    for title, codes, y_label in (
        ("**近 90 天红码场所数**", [SafetyCode.RED], "红码场所数"),
        ("**近 90 天黄码、绿码场所数**", [SafetyCode.YELLOW, SafetyCode.GREEN], None),
    ):
        st.markdown(title)
        st.altair_chart(trend_chart(trend(trend_frame, codes), codes, y_label), width="stretch")


def trend_chart(frame: pd.DataFrame, codes: Sequence[SafetyCode], y_label: str | None) -> alt.Chart:
    """The trend as lines, dates on the axis as 11-21 (Vega's default wrote "Nov 08", "November")."""
    long = frame.reset_index().melt("日期", var_name="平安码", value_name="场所数")
    long["日期"] = pd.to_datetime(long["日期"])
    return (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("日期:T", title="日期", axis=alt.Axis(format="%m-%d", labelAngle=0)),
            y=alt.Y("场所数:Q", title=y_label or "场所数"),
            color=alt.Color(
                "平安码:N",
                scale=alt.Scale(domain=[c.label for c in codes], range=[hex_color(c) for c in codes]),
            ),
            tooltip=[alt.Tooltip("日期:T", format="%Y-%m-%d"), "平安码:N", "场所数:Q"],
        )
    )


def trend(frame: pd.DataFrame, codes: Sequence[SafetyCode]) -> pd.DataFrame:
    """The trend of the given colours, headed by their labels (红码…), indexed by 日期."""
    out = frame[[c.value for c in codes]].rename(columns={c.value: c.label for c in codes})
    out.index.name = "日期"
    return out


def rates(frame: pd.DataFrame) -> pd.DataFrame:
    """On-time rates: 区域 (合计 first), 平安码, 检查次数, 按时, 按时率 as a percentage."""
    return pd.DataFrame(
        {
            "区域": frame["area"].map(lambda a: TOTAL if a is None or pd.isna(a) else a),
            "平安码": frame["code"].map(lambda c: _label(SafetyCode, c)),
            "检查次数": frame["visits"],
            "按时": frame["on_time"],
            "按时率": (frame["rate"] * 100).round(1).astype(str) + "%",
        }
    )


# -- campaigns and imports --------------------------------------------------------------------


def _state(c: Campaign, today: date) -> str:
    if c.start > today:
        return "未开始"
    return "进行中" if today <= c.end else "已结束"


def campaigns(items: Sequence[Campaign], tree: Tree, today: date) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "名称": [c.name for c in items],
            "场所类别": [VenueCategory(c.category).label for c in items],
            "区域": ["、".join(tree.name(a) for a in sorted(c.area_ids)) for c in items],
            "开始": [c.start for c in items],
            "结束": [c.end for c in items],
            "周期（天）": [c.every_days for c in items],
            "状态": [_state(c, today) for c in items],
        }
    )


def row_errors(problems: Sequence[RowError]) -> pd.DataFrame:
    """A file's problems: 行号, 字段, 问题."""
    return pd.DataFrame(
        [(p.row, p.field, p.reason) for p in problems],
        columns=["行号", "字段", "问题"],
    )


# -- an inspector's day -----------------------------------------------------------------------


def done_today(done: pd.DataFrame) -> pd.DataFrame:
    """The inspections recorded on the day: 时间, 场所, 结果, 现平安码."""
    return pd.DataFrame(
        {
            "时间": done["inspected_at"].map(lambda t: t.strftime("%H:%M")),
            "场所": done["name"],
            "结果": done["result"].map(lambda r: _label(InspectionResult, r)),
            "现平安码": done["code"].map(lambda c: _label(SafetyCode, c)),
        }
    )
