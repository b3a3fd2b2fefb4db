"""Event analytics for leaders: KPIs by area or department, ranked, 同比/环比, early warnings, XLSX reports.

The numbers come from domain.kpi and domain.early_warning; this module only loads the rows of the
user's scope and shapes the results for display and download.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, String, and_, case, func, not_, or_, select, type_coerce

from db.frames import rows_frame
from db.models import Department, Event
from domain import kpi
from domain.early_warning import Alert, WarningData, detect
from domain.hierarchy import descendants
from domain.vocabulary import AdminLevel, EventCategory, EventStatus, Rating
from services.event_views import Scope
from services.tabular import to_xlsx

KPI_COLUMNS = ["id", "grid_id", "lead_department_id", "category", "status", "reported_at", "resolved_at", "closed_at",
               "rating", "is_overdue", "reporter_count", "merged_into_id"]
WARNING_HISTORY_DAYS = 84  # 新苗头 growth needs 77 days, 顽疾 8 weeks
REPORT_PERIODS = {"日报": 1, "周报": 7, "月报": 30}


def load_events(conn: Connection, scope: Scope, start: datetime, end: datetime, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Events of the scope reported in [start, end), the columns the KPIs need (enums as values)."""
    cols = KPI_COLUMNS + [c for c in extra if c not in KPI_COLUMNS]
    rows = conn.execute(
        select(*(getattr(Event, c) for c in cols)).where(*scope.where(), Event.reported_at >= start, Event.reported_at < end)
    ).all()
    df = rows_frame(rows, cols)
    for c in ("category", "status", "rating", "source"):
        if c in df:
            df[c] = df[c].map(lambda v: None if v is None else getattr(v, "value", v))
    return df


def _handling_hours(dialect: str):
    """Hours from report to 办结, in the store's own date arithmetic."""
    if dialect == "postgresql":
        return func.extract("epoch", Event.resolved_at - Event.reported_at) / 3600.0
    return (func.julianday(Event.resolved_at) - func.julianday(Event.reported_at)) * 24.0


def kpi_sums(conn: Connection, scope: Scope, start: datetime, end: datetime, key: str) -> pd.DataFrame:
    """:data:`domain.kpi.SUM_COLUMNS` per ``key`` (``grid_id`` or ``lead_department_id``) of the valid events
    reported in [start, end), summed by the store: the same numbers :func:`domain.kpi.row_sums` gives
    row by row (and the tests hold them equal), without moving a month of events into Python."""
    rejected = or_(
        Event.status == EventStatus.REJECTED,
        Event.merged_into_id.is_not(None),
        and_(Event.status == EventStatus.ARCHIVED, Event.resolved_at.is_(None), Event.closed_at.is_not(None)),
    )
    resolved = Event.status.in_([EventStatus(v) for v in kpi.RESOLVED_STATUSES])
    handled = and_(resolved, Event.resolved_at.is_not(None))

    def count(cond):
        return func.sum(case((cond, 1), else_=0))

    column = getattr(Event, key)
    rows = conn.execute(
        select(
            column,
            func.count(),
            func.sum(func.coalesce(Event.reporter_count, 1)),
            count(resolved),
            count(Event.rating.is_not(None)),
            count(Event.rating.in_([Rating(v) for v in kpi.SATISFIED_RATINGS])),
            count(Event.is_overdue),
            func.sum(case((handled, _handling_hours(conn.dialect.name)), else_=0.0)),
            count(handled),
        )
        .where(*scope.where(by_time=True), Event.reported_at >= start, Event.reported_at < end, not_(rejected))
        .group_by(column)
    ).all()
    df = rows_frame(rows, [key, *kpi.SUM_COLUMNS])
    df[kpi.SUM_COLUMNS] = df[kpi.SUM_COLUMNS].fillna(0)
    df["handling_hours_sum"] = df["handling_hours_sum"].astype(float)
    return df


def kpi_by(
    conn: Connection,
    scope: Scope,
    start: datetime,
    end: datetime,
    *,
    group: str,
    units: pd.DataFrame,
    anc: pd.DataFrame,
    scope_unit_id: int,
    min_events: int = kpi.DEFAULT_MIN_EVENTS,
    metric: str = "satisfaction_rate",
) -> pd.DataFrame:
    """KPIs of [start, end) with 同比/环比, by the child units of the scope (``group="area"``) or by lead
    department (``group="department"``), ranked on ``metric`` with small-sample care (N always shown)."""
    periods = kpi.comparison_periods(start, end)
    windows = [(periods.start, periods.end), periods.year_ago, periods.previous]
    if group == "area":
        child = AdminLevel(units.at[scope_unit_id, "level"]).child or AdminLevel.GRID
        unit_of = anc.loc[anc[child.value].notna(), child.value].astype("int64")
        table = kpi.compare_tables(*(
            kpi.kpi_from_sums(kpi_sums(conn, scope, a.to_pydatetime(), b.to_pydatetime(), "grid_id"), "unit_id",
                              unit_of=unit_of, population=units["population"])
            for a, b in windows
        ))
        kids = descendants(anc, scope_unit_id, child.value)
        table = table.reindex(kids)
        table.insert(0, "name", units.loc[kids, "name"].to_numpy())
    else:
        table = kpi.compare_tables(*(
            kpi.kpi_from_sums(kpi_sums(conn, scope, a.to_pydatetime(), b.to_pydatetime(), "lead_department_id"),
                              "lead_department_id")
            for a, b in windows
        ))
        names = dict(conn.execute(select(Department.id, Department.name)).all())
        table.insert(0, "name", [names.get(i, str(i)) for i in table.index])
    table["events"] = table["events"].fillna(0).astype(int)
    return kpi.rank(table, metric, min_events=min_events)


WARNING_COLUMNS = ["id", "grid_id", "category", "title", "lon", "lat", "address", "reporter_count", "merged_into_id",
                   "reported_at"]


def warning_events(conn: Connection, scope: Scope, start: datetime, end: datetime, *,
                   chunk_days: int = 31) -> pd.DataFrame:
    """The scope's events reported in [start, end) with the columns the detector reads.

    Read a month at a time and kept compact (text as categoricals): a city year is ~2 million rows.
    """
    parts = []
    t = start
    # The category and the time as the store holds them (text on SQLite): converted by column below, not
    # row by row into enums and datetimes by the driver layer (a third of the read at city scale).
    columns = [type_coerce(getattr(Event, c), String).label(c) if c in ("category", "reported_at")
               else getattr(Event, c) for c in WARNING_COLUMNS]
    while t < end:
        t1 = min(t + timedelta(days=chunk_days), end)
        rows = conn.execute(
            select(*columns).where(*scope.where(), Event.reported_at >= t, Event.reported_at < t1)
        ).all()
        parts.append(rows_frame(rows, WARNING_COLUMNS))
        t = t1
    events = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=WARNING_COLUMNS)
    events["category"] = events["category"].map(lambda v: getattr(v, "value", v), na_action="ignore")
    for c in ("category", "title", "address"):
        events[c] = events[c].astype("category")
    events["reported_at"] = pd.to_datetime(events["reported_at"], format="ISO8601")
    events["merged_into_id"] = events["merged_into_id"].astype("float64")  # NaN: not merged
    return events


def warning_data(conn: Connection, scope: Scope, start: datetime, end: datetime, units: pd.DataFrame) -> WarningData | None:
    """The detector's input over [start, end): the scope's events and ``units`` (indexed by id); None without events."""
    events = warning_events(conn, scope, start, end)
    if events.empty:
        return None
    return WarningData.from_events(events, units.reset_index().rename(columns={"index": "id"}))


def warnings(conn: Connection, scope: Scope, day: date, units: pd.DataFrame) -> list[Alert]:
    """Early warnings (预警) judged on ``day`` over the scope's recent events."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    data = warning_data(conn, scope, end - timedelta(days=WARNING_HISTORY_DAYS), end, units)
    return [] if data is None else detect(day, data)


def alerts_frame(alerts: list[Alert], units: pd.DataFrame) -> pd.DataFrame:
    """Alerts as a display table, evidence sentence included."""
    return pd.DataFrame(
        [
            {
                "预警类型": a.kind.label,
                "区域": units.at[a.unit_id, "name"] if a.unit_id in units.index else a.unit_id,
                "事项": EventCategory(a.category).label,
                "时段": f"{a.period_start.isoformat()} 至 {a.period_end.isoformat()}",
                "依据": a.message,
            }
            for a in alerts
        ],
        columns=["预警类型", "区域", "事项", "时段", "依据"],
    )


def kpi_display(table: pd.DataFrame) -> pd.DataFrame:
    """A ranked KPI table with Chinese headers, shares as percentages, N always shown."""

    def pct(v):
        return "—" if pd.isna(v) else f"{v * 100:.1f}%"

    def pp(v):
        return "—" if pd.isna(v) else f"{v * 100:+.1f}个百分点"

    def rel(v):
        return "—" if pd.isna(v) else f"{v * 100:+.1f}%"

    return pd.DataFrame(
        {
            "排名": table["rank"].astype("string").fillna("样本不足"),
            "名称": table["name"],
            "事件数(N)": table["events"],
            "投诉率(件/万人)": table["complaint_rate"].round(2),
            "解决率": table["resolution_rate"].map(pct),
            "满意率": table["satisfaction_rate"].map(pct),
            "满意率环比": table["satisfaction_rate_prev_change"].map(pp),
            "满意率同比": table["satisfaction_rate_yoy_change"].map(pp),
            "按时办结率": table["on_time_rate"].map(pct),
            "平均处置时长(小时)": table["mean_handling_hours"].round(1),
            "事件数环比": table["events_prev_change"].map(rel),
            "事件数同比": table["events_yoy_change"].map(rel),
        }
    )


def report_workbook(
    conn: Connection,
    scope: Scope,
    *,
    kind: str,
    day: date,
    units: pd.DataFrame,
    anc: pd.DataFrame,
    scope_unit_id: int,
    min_events: int = kpi.DEFAULT_MIN_EVENTS,
) -> bytes:
    """日报/周报/月报 ending on ``day`` as XLSX: overview, by area, by department, early warnings."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    start = end - timedelta(days=REPORT_PERIODS[kind])
    args = {"units": units, "anc": anc, "scope_unit_id": scope_unit_id, "min_events": min_events}
    by_area = kpi_display(kpi_by(conn, scope, start, end, group="area", **args))
    by_dept = kpi_display(kpi_by(conn, scope, start, end, group="department", **args))
    total = kpi.kpi_from_sums(kpi_sums(conn, scope, start, end, "grid_id"), population=units.at[scope_unit_id, "population"])
    overview = pd.DataFrame(
        {
            "项目": ["统计区域", "统计时段", "事件数", "投诉率(件/万人)", "解决率", "满意率", "按时办结率", "平均处置时长(小时)"],
            "数值": [
                units.at[scope_unit_id, "name"],
                f"{start:%Y-%m-%d} 至 {end - timedelta(days=1):%Y-%m-%d}",
                int(total["events"].iloc[0]),
                round(float(total["complaint_rate"].iloc[0]), 2),
                *(f"{v * 100:.1f}%" if pd.notna(v) else "—" for v in total[["resolution_rate", "satisfaction_rate", "on_time_rate"]].iloc[0]),
                round(float(total["mean_handling_hours"].iloc[0]), 1) if pd.notna(total["mean_handling_hours"].iloc[0]) else "—",
            ],
        }
    )
    alerts = alerts_frame(warnings(conn, scope, day, units), units)
    return to_xlsx({"概况": overview, "各区域": by_area, "各部门": by_dept, "预警": alerts})
