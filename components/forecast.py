"""隐患预测 on /inspections: the model's validation card and each venue's forecast with "为什么优先"."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from components import store
from components.kpi import kpi_row
from components.palette import EVENT_RAMP, NO_DATA_RGB, hex_color
from domain import forecast as fc
from domain.vocabulary import SafetyCode, VenueCategory
from services import forecast
from services.planning import ForecastBasis, PlanView

#: Venues listed at most (highest expected hazards found first).
LIST_LIMIT = 200


def plan_basis_line(basis: ForecastBasis | None) -> str:
    """One Chinese line saying what chose the day's visits: the forecast (its version and date) or the
    平安码 rules when there is no model."""
    if basis is None:
        return (
            "今日检查按平安码规则安排：红码每日必检、隐患到期复查、黄码每周、绿码每月（尚无隐患预测模型）。"
        )
    scored = f"，{basis.scored_on:%Y-%m-%d} 评分" if basis.scored_on else ""
    return (
        f"今日检查按隐患预测安排（模型 v{basis.version}，{basis.created_at:%Y-%m-%d} 训练{scored}）："
        "红码到期与隐患复查优先，其余按本次检查预计发现隐患多少选取，再按路程排定顺序。"
    )


def _pct(x) -> str:
    return "—" if x is None else f"{float(x) * 100:.1f}%"


def model_card(card: dict) -> None:
    """Version, cut-off and the validation figures of the active model, with its reliability bins."""
    kpi_row(
        [
            ("模型版本", f"v{card['version']}"),
            ("验证 AUC", "—" if card.get("auc") is None else f"{card['auc']:.3f}"),
            ("Brier 分数", "—" if card.get("brier") is None else f"{card['brier']:.4f}"),
            ("前10%场所覆盖隐患", _pct(card.get("capture_10"))),
        ]
    )
    st.caption(
        f"训练数据截止 {card['cutoff']}，在其后 30 天验证（按时间切分）：验证样本 {card.get('rows_valid', 0)} 个场所，"
        f"其中 {card.get('positives_valid', 0)} 个检查发现隐患；前20%场所覆盖 {_pct(card.get('capture_20'))}；"
        f"仅按平安码颜色排序时 AUC {card.get('colour_auc') or 0:.3f}、前10%覆盖 {_pct(card.get('colour_capture_10'))}。"
    )
    bins = pd.DataFrame(card.get("reliability") or [])
    if not bins.empty:
        st.markdown("**可靠性（按预测概率分十组：预测 vs 实际发现率）**")
        chart = pd.DataFrame(
            {"预测概率": bins["predicted"], "实际发现率": bins["observed"]},
            index=pd.Index(range(1, len(bins) + 1), name="分组"),
        )
        st.line_chart(chart, height=220)


def shown_venues(frame: pd.DataFrame) -> pd.DataFrame:
    """The venues the list shows: highest expected hazards found per visit first, :data:`LIST_LIMIT`."""
    return frame.sort_values(["expected", "venue_id"], ascending=[False, True]).head(LIST_LIMIT)


def venue_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Chinese columns of :func:`shown_venues` (``frame`` with its ``why``, made for those rows)."""
    top = shown_venues(frame)
    return pd.DataFrame(
        {
            "场所": top["name"],
            "类别": top["category"].map(lambda c: VenueCategory(c).label),
            "平安码": top["code"].map(lambda c: SafetyCode(c).label),
            "30天内检查发现隐患概率": (top["probability"] * 100).round(1).astype(str) + "%",
            "期望发现（×严重度）": top["expected"].round(3),
            "为什么优先": top["why"],
        }
    )


def capacity_what_if(probabilities: pd.Series, capacity: int) -> None:
    """Expected hazards found in 30 days (and a day) against visits a day, today's capacity marked: the
    model's expectation from the current scores (:func:`domain.forecast.capacity_curve`), not a measure."""
    curve = fc.capacity_curve(probabilities, fc.curve_points(len(probabilities), capacity))
    now = fc.capacity_curve(probabilities, [capacity]).iloc[0]
    double = fc.capacity_curve(probabilities, [2 * capacity]).iloc[0]
    st.markdown("**容量测算：每日检查次数与预计发现隐患**")
    data = curve.rename(
        columns={"visits_per_day": "每日检查次数", "found": "预计30天发现", "found_per_day": "预计每日发现"}
    )
    x = alt.X("每日检查次数:Q", title="每日检查次数（范围内合计）")
    line = (
        alt.Chart(data)
        .mark_line(color=hex_color(EVENT_RAMP[4]))
        .encode(
            x=x,
            y=alt.Y("预计30天发现:Q", title="预计30天发现隐患的场所数（模型期望）"),
            tooltip=[
                "每日检查次数",
                alt.Tooltip("预计30天发现:Q", format=".1f"),
                alt.Tooltip("预计每日发现:Q", format=".2f"),
            ],
        )
    )
    marker = pd.DataFrame({"每日检查次数": [capacity], "label": [f"当前容量 {capacity} 次/日"]})
    rule = alt.Chart(marker).mark_rule(color=hex_color(NO_DATA_RGB), strokeDash=[4, 4]).encode(x=x)
    label = (
        alt.Chart(marker)
        .mark_text(align="left", dx=4, dy=-6, color=hex_color(NO_DATA_RGB))
        .encode(x=x, y=alt.value(12), text="label:N")
    )
    st.altair_chart(line + rule + label, width="stretch")
    share = "—" if pd.isna(now["share"]) else f"{now['share'] * 100:.0f}%"
    st.caption(
        f"这是模型的期望值，不是实测：每日 k 次检查、30 天共 30k 次，依次检查预测概率最高的场所，每个场所至多一次，"
        f"预计发现数为这些场所预测概率之和（超过场所总数 {len(probabilities)} 后曲线持平：模型不预测同一场所的第二次检查）。"
        f"当前容量 {capacity} 次/日：预计 30 天发现 {now['found']:.1f} 处（每日 {now['found_per_day']:.2f}），"
        f"占全部场所预测值的 {share}；容量翻倍预计 {double['found']:.1f} 处。实际分配还要先保证红码与隐患复查。"
    )


def forecast_section(grid_ids: list[int], view: PlanView | None = None) -> None:
    """The tab: the card, what chose the day's plan and its shortfall, the capacity what-if, then the
    venues of ``grid_ids`` by expected hazards found per visit."""
    with store.reader() as conn:
        card = forecast.model_card(conn)
        frame = forecast.venue_forecasts(conn, grid_ids) if card is not None else None
        # "为什么优先" of the listed venues only, made now (decision 0037)
        shown = forecast.with_why(conn, shown_venues(frame)) if frame is not None else None
    if card is None or frame is None or shown is None:
        st.info("尚未训练隐患预测模型：定时任务每周日 02:30 训练一次（需约 75 天检查记录）。")
        return
    model_card(card)
    if view is not None:
        st.caption(plan_basis_line(view.inputs.forecast))
        short = view.plan.shortfall
        if short is not None and short.mandatory:
            st.caption(
                f"今日必检（红码到期与隐患复查）{short.mandatory} 处，已排入 {short.done} 处"
                + (
                    f"，缺 {short.undone} 处：每日需再增加 {short.extra_visits} 次检查（约 {short.inspectors_needed} 名检查员）。"
                    if short.undone
                    else "，全部排入。"
                )
            )
    if frame.empty:
        st.info("范围内暂无场所预测。")
        return
    if view is not None:
        capacity = sum(view.inputs.capacity.of(i.id) for i in view.inputs.inspectors)
        capacity_what_if(frame["probability"], capacity)
    st.markdown(f"**各场所预测（按期望发现隐患排序，前 {LIST_LIMIT} 个）**")
    st.dataframe(venue_table(shown), hide_index=True, width="stretch")
