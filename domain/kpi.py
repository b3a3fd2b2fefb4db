"""Event KPIs (投诉率, 解决率, 满意率, 按时率, 平均处置时长) by any key, ranked with care, compared 同比/环比."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from domain.vocabulary import RESOLVED_STATUSES, EventStatus, Rating

# 满意率 counts 满意 and 基本满意 as satisfied, over every rated event (the 12345 好差评 convention).
SATISFIED_RATINGS = frozenset({Rating.SATISFIED.value, Rating.BASICALLY.value})

PER_RESIDENTS = 10_000
DEFAULT_MIN_EVENTS = 30

# Metric → (Chinese label, higher is better). Shares change by difference (percentage points);
# the others by relative change.
METRICS: dict[str, tuple[str, bool]] = {
    "events": ("事件数", False),
    "complaint_rate": ("投诉率（件/万人）", False),
    "resolution_rate": ("解决率", True),
    "satisfaction_rate": ("满意率", True),
    "on_time_rate": ("按时办结率", True),
    "mean_handling_hours": ("平均处置时长（小时）", False),
}
SHARE_METRICS = frozenset({"resolution_rate", "satisfaction_rate", "on_time_rate"})


def valid_mask(events: pd.DataFrame) -> pd.Series:
    """Events that count: not rejected (退回), including rejected ones archived since, nor merged duplicates.

    In the loop the only way to ARCHIVED without RESOLVE is REJECT, so an event closed without a
    resolution time was rejected.
    """
    status = events["status"].astype(str)
    rejected = status.eq(EventStatus.REJECTED.value)
    if "resolved_at" in events.columns and "closed_at" in events.columns:
        rejected |= (
            status.eq(EventStatus.ARCHIVED.value) & events["resolved_at"].isna() & events["closed_at"].notna()
        )
    if "merged_into_id" in events.columns:
        rejected |= events["merged_into_id"].notna()
    return ~rejected


# What every KPI rests on, summed per group: these add up across grids, periods and levels, so the store
# can sum them per grid (services.analytics) and the rates follow here, the same for rows as for sums.
SUM_COLUMNS = [
    "events",
    "reports",
    "resolved",
    "rated",
    "satisfied",
    "overdue",
    "handling_hours_sum",
    "handled",
]


def row_sums(events: pd.DataFrame) -> pd.DataFrame:
    """Each valid event's contribution to :data:`SUM_COLUMNS`, beside its other columns (keys, times)."""
    ev = events[valid_mask(events)]
    resolved = ev["status"].astype(str).isin({s.value for s in RESOLVED_STATUSES})
    rating = (
        ev["rating"].astype(object)
        if "rating" in ev.columns
        else pd.Series(None, index=ev.index, dtype=object)
    )
    hours = (
        (pd.to_datetime(ev["resolved_at"]) - pd.to_datetime(ev["reported_at"])).dt.total_seconds() / 3600.0
    ).where(resolved)
    out = pd.DataFrame(
        {
            "events": 1,
            "reports": ev["reporter_count"].fillna(1).astype(int) if "reporter_count" in ev.columns else 1,
            "resolved": resolved.astype(int),
            "rated": rating.notna().astype(int),
            "satisfied": rating.isin(SATISFIED_RATINGS).astype(int),
            "overdue": ev["is_overdue"].fillna(False).astype(bool).astype(int)
            if "is_overdue" in ev.columns
            else 0,
            "handling_hours_sum": hours.fillna(0.0),
            "handled": hours.notna().astype(int),
        },
        index=ev.index,
    )
    return pd.concat([ev.drop(columns=[c for c in out.columns if c in ev.columns]), out], axis=1)


def kpi_table(
    events: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    unit_of: Mapping[int, int] | pd.Series | None = None,
    population: float | Mapping[Any, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """The KPIs of ``events``, one row per group of ``by`` (or one row ``"全部"`` when None).

    ``events`` columns: ``status``, ``reported_at``, ``resolved_at``, and where available
    ``closed_at``, ``rating``, ``is_overdue``, ``reporter_count``, ``merged_into_id``, plus the keys.
    ``unit_of`` maps ``grid_id`` to a unit at any level and adds it as column ``unit_id`` (group by
    ``"unit_id"``). ``population`` (residents per group key, or one number for the whole) gives 投诉率.
    See :func:`kpi_from_sums` for the columns.
    """
    return kpi_from_sums(row_sums(events), by, unit_of=unit_of, population=population)


def kpi_from_sums(
    sums: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    unit_of: Mapping[int, int] | pd.Series | None = None,
    population: float | Mapping[Any, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """The KPIs from partial sums (:data:`SUM_COLUMNS` per row: one event each, or one grid each).

    Columns: ``events`` (valid events, the N every rate rests on), ``reports`` (Σ reporter_count),
    ``resolved``, ``rated``, ``satisfied``, ``overdue``, ``population``, ``complaint_rate`` (events per
    10,000 residents over the period, not annualised), ``resolution_rate`` (resolved / events),
    ``satisfaction_rate`` ((满意+基本满意) / rated), ``on_time_rate`` (1 − overdue / events),
    ``mean_handling_hours`` (report → 办结, over resolved events).
    """
    ev = sums
    if unit_of is not None:
        ev = ev.assign(
            unit_id=ev["grid_id"].map(pd.Series(unit_of) if isinstance(unit_of, Mapping) else unit_of)
        )
    keys = [by] if isinstance(by, str) else list(by) if by is not None else []
    if keys:
        ev = ev.dropna(subset=keys)
        table = ev.groupby(keys, sort=True, dropna=True)[SUM_COLUMNS].sum()
    else:
        table = ev[SUM_COLUMNS].sum().to_frame().T
        table.index = pd.Index(["全部"], name="group")
    with np.errstate(divide="ignore", invalid="ignore"):
        table["mean_handling_hours"] = np.where(
            table["handled"] > 0,
            table["handling_hours_sum"] / table["handled"].where(table["handled"] > 0),
            np.nan,
        )
    pop = _population(table.index, population, bool(keys))
    table["population"] = pop
    n = table["events"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["complaint_rate"] = np.where(pop > 0, n * PER_RESIDENTS / pop, np.nan)
        table["resolution_rate"] = np.where(n > 0, table["resolved"] / n, np.nan)
        table["satisfaction_rate"] = np.where(table["rated"] > 0, table["satisfied"] / table["rated"], np.nan)
        table["on_time_rate"] = np.where(n > 0, 1.0 - table["overdue"] / n, np.nan)
    for c in ("events", "reports", "resolved", "rated", "satisfied", "overdue"):
        table[c] = table[c].astype("int64")
    return table[
        [
            "events",
            "reports",
            "resolved",
            "rated",
            "satisfied",
            "overdue",
            "population",
            "complaint_rate",
            "resolution_rate",
            "satisfaction_rate",
            "on_time_rate",
            "mean_handling_hours",
        ]
    ]


def _population(
    index: pd.Index, population: float | Mapping[Any, float] | pd.Series | None, grouped: bool
) -> np.ndarray:
    if population is None:
        return np.full(len(index), np.nan)
    if not grouped or np.isscalar(population):
        # any real number: a unit's population read from a frame is numpy's int64, not int
        return np.full(len(index), float(population) if isinstance(population, numbers.Real) else np.nan)
    pop = population if isinstance(population, pd.Series) else pd.Series(population)
    return pop.reindex(index).astype(float).to_numpy()


#: The decimals a ranked metric is compared at, as pages and reports show it (a share as 95.0 %: three
#: decimals of the fraction): values that read the same share a place, on screen as on paper.
RANK_DECIMALS = {"complaint_rate": 2, "mean_handling_hours": 1}
#: Why a group with events has no value of the metric (its note in place of a rank).
NO_VALUE_NOTES = {
    "satisfaction_rate": "暂无评价",
    "on_time_rate": "暂无办结",
    "mean_handling_hours": "暂无办结",
}


def rank(
    table: pd.DataFrame,
    metric: str,
    *,
    min_events: int = DEFAULT_MIN_EVENTS,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Rank groups by ``metric`` (1 = best) as the reports rank them (:func:`domain.ranking.rank_for_report`):
    competition ranking on the value as shown (:data:`RANK_DECIMALS`), groups with at least ``min_events``
    events first, the smaller ones after them (``ranked`` False, note 样本少), groups without a value
    unranked (NA). Column ``rank_note`` holds the note (样本少, 并列, 无事件 …). Direction defaults to the
    metric's (:data:`METRICS`): lower 投诉率 and handling time are better.
    """
    from domain.ranking import rank_for_report

    if higher_is_better is None:
        higher_is_better = METRICS[metric][1] if metric in METRICS else True
    out = table.copy()
    places = rank_for_report(
        out[metric].astype("float64").tolist(),
        out["events"].astype("int64").tolist(),
        min_size=min_events,
        higher_is_better=higher_is_better,
        decimals=RANK_DECIMALS.get(metric, 3),
        no_value_note=NO_VALUE_NOTES.get(metric, "无数据"),
    )
    out["rank"] = pd.array([p.rank for p in places], dtype="Int64")
    out["ranked"] = [p.rank is not None and not p.small for p in places]
    out["rank_note"] = [p.note for p in places]
    out["min_events"] = min_events
    order = out.assign(_r=out["rank"].astype("float").fillna(np.inf), _n=-out["events"])
    return out.loc[order.sort_values(["_r", "_n"], kind="stable").index]


@dataclass(frozen=True)
class Periods:
    """A period [start, end) with its 同比 (a year earlier) and 环比 (the same length just before)."""

    start: pd.Timestamp
    end: pd.Timestamp
    year_ago: tuple[pd.Timestamp, pd.Timestamp]
    previous: tuple[pd.Timestamp, pd.Timestamp]


def comparison_periods(start: datetime | pd.Timestamp, end: datetime | pd.Timestamp) -> Periods:
    """The period and the two it is compared with; 29 February a year earlier falls on the 28th.

    A period that starts on the first of a month and spans at most that month (a 月报, or a month so far)
    is compared month to month, as a leader reads it: 环比 the same days of the month before (October
    against September, 1–3 December against 1–3 November), 同比 the same days a year earlier, each cut
    at its own month's end. Any other period is compared with the same length just before, and the same
    dates a year earlier."""
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    if e <= s:
        raise ValueError("统计时段的结束时间必须晚于开始时间")
    year, month = pd.DateOffset(years=1), pd.DateOffset(months=1)
    if s == s.normalize() and s.day == 1 and e <= s + month:
        length, whole = e - s, e == s + month

        def same_days(first: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
            return first, first + month if whole else min(first + length, first + month)

        return Periods(s, e, same_days(s - year), same_days(s - month))
    return Periods(s, e, (s - year, e - year), (s - (e - s), s))


def in_period(
    events: pd.DataFrame, start: datetime | pd.Timestamp, end: datetime | pd.Timestamp
) -> pd.DataFrame:
    """Events reported in [start, end)."""
    t = pd.to_datetime(events["reported_at"])
    return events[(t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))]


def compare(
    events: pd.DataFrame,
    start: datetime | pd.Timestamp,
    end: datetime | pd.Timestamp,
    by: str | Sequence[str] | None = None,
    *,
    unit_of: Mapping[int, int] | pd.Series | None = None,
    population: float | Mapping[Any, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """KPIs of events reported in [start, end) beside their 同比 and 环比 values and changes.

    For each metric ``m`` of :data:`METRICS`: ``m`` (this period), ``m_yoy`` (a year earlier),
    ``m_yoy_change``, ``m_prev`` (the previous period of the same length), ``m_prev_change``. Shares
    change by difference (0.032 = 3.2 个百分点); counts, rates and hours by relative change
    (0.10 = +10%); NaN when the base is missing or zero. Groups present in any period appear.
    """
    p = comparison_periods(start, end)

    def table(start: datetime | pd.Timestamp, end: datetime | pd.Timestamp) -> pd.DataFrame:
        return kpi_table(in_period(events, start, end), by, unit_of=unit_of, population=population)

    return compare_tables(table(p.start, p.end), table(*p.year_ago), table(*p.previous))


def compare_tables(cur: pd.DataFrame, yoy: pd.DataFrame, prev: pd.DataFrame) -> pd.DataFrame:
    """:func:`compare` from the three periods' KPI tables (from rows or from sums)."""
    index = cur.index.union(yoy.index).union(prev.index)
    cur, yoy, prev = (t.reindex(index) for t in (cur, yoy, prev))
    for t in (cur, yoy, prev):
        t["events"] = t["events"].fillna(0)
    out = pd.DataFrame(index=index)
    for m in METRICS:
        out[m] = cur[m]
        for suffix, base in (("yoy", yoy), ("prev", prev)):
            out[f"{m}_{suffix}"] = base[m]
            out[f"{m}_{suffix}_change"] = change(cur[m], base[m], share=m in SHARE_METRICS)
    return out


def change(current: Any, base: Any, *, share: bool) -> pd.Series:
    """Difference for shares, relative change otherwise; NaN where the base is missing (or zero)."""
    current, base = pd.Series(current, dtype=float), pd.Series(base, dtype=float)
    if share:
        return current - base
    with np.errstate(divide="ignore", invalid="ignore"):
        return (current - base) / base.where(base != 0)
