"""Event analytics for leaders: KPIs by area or department, ranked, 同比/环比, early warnings, XLSX reports.

The numbers come from domain.kpi and domain.early_warning; this module only loads the rows of the
user's scope and shapes the results for display and download.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    func,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    type_coerce,
)

from db.beside import Beside, beside
from db.bulk import plain_rows, read_frame, text_frame
from db.frames import rows_frame
from db.models import (
    AdminUnit,
    Department,
    Event,
    EventCategoryDaily,
    EventDaily,
    EventDepartmentDaily,
    EventGridDaily,
    EventRecentReport,
    EventTownshipDaily,
)
from domain import kpi
from domain.early_warning import (
    DEFAULT_PARAMS,
    Alert,
    WarningData,
    cells_around,
    counts_at_levels,
    detect,
    near_any,
    place_cells,
)
from domain.hierarchy import descendants
from domain.vocabulary import AdminLevel, EventCategory
from geo.crs import to_metres
from services import clock, rollups
from services.access import Scope
from services.accounts import disabled_departments
from services.daily_alerts import intraday_alerts, judged_at, stored_alerts
from services.geography import tree as store_tree
from services.report_book import ESTIMATED, Cell, Col, Sheet, kpi_sheet, noted, number, shown, write_book

KPI_COLUMNS = [
    "id",
    "grid_id",
    "lead_department_id",
    "category",
    "status",
    "reported_at",
    "resolved_at",
    "closed_at",
    "rating",
    "is_overdue",
    "reporter_count",
    "merged_into_id",
]
WARNING_HISTORY_DAYS = 84  # 新苗头 growth needs 77 days, 顽疾 8 weeks
REPORT_PERIODS = {"日报": 1, "周报": 7, "月报": 30}


def load_events(
    conn: Connection, scope: Scope, start: datetime, end: datetime, extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Events of the scope reported in [start, end), the columns the KPIs need (enums as values)."""
    cols = KPI_COLUMNS + [c for c in extra if c not in KPI_COLUMNS]
    rows = conn.execute(
        select(*(getattr(Event, c) for c in cols)).where(
            *scope.where(), Event.reported_at >= start, Event.reported_at < end
        )
    ).all()
    df = rows_frame(rows, cols)
    for c in ("category", "status", "rating", "source"):
        if c in df:
            df[c] = df[c].map(lambda v: None if v is None else getattr(v, "value", v))
    return df


def kpi_sums(conn: Connection, scope: Scope, start: datetime, end: datetime, key: str) -> pd.DataFrame:
    """:data:`domain.kpi.SUM_COLUMNS` per ``key`` (``grid_id`` or ``lead_department_id``) of the valid events
    reported in [start, end), summed by the store: the same numbers :func:`domain.kpi.row_sums` gives
    row by row (and the tests hold them equal), without moving a month of events into Python.

    Whole days of an area scope are summed from the rollups (:mod:`services.rollups`, decisions 0032 and
    0034): by grid from ``event_grid_daily``, by department from ``event_department_daily`` when the
    scope holds every grid of the store, else from ``event_daily``; the (day, grid) keys changed since
    the watermark from their raw events. Otherwise (a partial day, a department's scope, which includes
    the events it cooperates on, no rollup, too much changed since it was refreshed) from the raw events."""
    served = _rollup_keys(conn, scope, start, end)
    if served is None:
        return _sums_frame(_raw_rows(conn, scope, start, end, key), key)
    grids, keys = served
    first, stop = start.date(), end.date()
    if key == "grid_id":
        parts = [
            rollup_rows(
                conn, EventGridDaily, key, grids, first, stop, *rollups.rollup_outside(keys, EventGridDaily)
            )
        ]
    elif grids is None:  # every grid: the departments' daily sums; a day with changed keys from event_daily
        days = sorted(keys)
        parts = [
            rollup_rows(
                conn,
                EventDepartmentDaily,
                key,
                None,
                first,
                stop,
                *([EventDepartmentDaily.day.not_in(days)] if days else []),
            )
        ]
        if days:
            parts.append(
                rollup_rows(
                    conn,
                    EventDaily,
                    key,
                    None,
                    first,
                    stop,
                    EventDaily.day.in_(days),
                    *rollups.rollup_outside(keys),
                )
            )
    else:
        parts = [rollup_rows(conn, EventDaily, key, grids, first, stop, *rollups.rollup_outside(keys))]
    if keys:
        parts.append(_raw_rows(conn, scope, start, end, key, rollups.events_inside(keys)))
    if len(parts) == 1:
        return _sums_frame(parts[0], key)
    patched = rows_frame([r for part in parts for r in part], [key, *kpi.SUM_COLUMNS])
    summed = patched.groupby(key, dropna=False, sort=False)[kpi.SUM_COLUMNS].sum().reset_index()
    return _sums_frame(list(summed.itertuples(index=False)), key)


def _rollup_keys(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> tuple[set[int] | None, dict[date, set[int]]] | None:
    """For a KPI read the rollups can serve (whole days, an area's scope, a usable rollup): the scope's
    grids (None: every grid of the store) and the (day → grids) keys of [start, end) in them changed since
    the watermark, to be read from their raw events; None when the read must use the raw events alone."""
    whole_days = start.time() == end.time() == time() and end > start
    keys = rollups.pending(conn) if whole_days and scope.department_id is None else None
    if keys is None:
        return None
    first, stop = start.date(), end.date()
    grids = None if whole_store(conn, scope) else set(scope.grid_ids)
    keys = {d: g if grids is None else g & grids for d, g in keys.items() if first <= d < stop}
    return grids, {d: g for d, g in keys.items() if g}


def township_sums(
    conn: Connection, scope: Scope, start: datetime, end: datetime, anc: pd.DataFrame
) -> pd.DataFrame | None:
    """:data:`domain.kpi.SUM_COLUMNS` per township (column ``township_id``) of the valid events reported in
    [start, end), from ``event_township_daily`` (decision 0045): a city's area view reads ~60 rows a day,
    not ~5,400. The (day, township) rows of the keys changed since the watermark are left out and their
    grids' raw events summed instead. None where it cannot serve (a partial day, a department's scope,
    no usable rollup, a scope that holds part of a township): :func:`kpi_sums` by grid then."""
    served = _rollup_keys(conn, scope, start, end)
    if served is None:
        return None
    keys = served[1]
    grids = set(scope.grid_ids)
    township_of = anc["township"]
    in_scope = township_of.reindex(sorted(grids))
    if in_scope.isna().any():
        return None
    townships = set(in_scope.astype("int64").tolist())
    grid_rows = anc.index[(anc["grid"] == anc.index.to_series()).fillna(False).to_numpy(dtype=bool)]
    of_grid = township_of.reindex(grid_rows)
    if int(of_grid.isin(townships).sum()) != len(grids):  # part of a township: its rows hold more
        return None
    first, stop = start.date(), end.date()
    stale = {d: {int(township_of.at[g]) for g in hit} for d, c in keys.items() if (hit := c & grids)}
    model = EventTownshipDaily
    rows = conn.execute(
        select(model.township_id, *(func.sum(getattr(model, c)) for c in kpi.SUM_COLUMNS))
        .where(
            in_ids(model.township_id, sorted(townships)),
            model.day >= first,
            model.day < stop,
            *(
                [not_(or_(*(and_(model.day == d, model.township_id.in_(t)) for d, t in stale.items())))]
                if stale
                else []
            ),
        )
        .group_by(model.township_id)
        .having(func.sum(model.events) > 0)
    ).all()
    frame = rows_frame([tuple(r) for r in rows], ["township_id", *kpi.SUM_COLUMNS])
    if stale:  # every grid of a stale (day, township) from its raw events
        whole = of_grid[of_grid.notna()].astype("int64")
        patch_keys = {d: {int(g) for g in whole.index[whole.isin(t)]} for d, t in stale.items()}
        raw = rows_frame(
            _raw_rows(conn, scope, start, end, "grid_id", rollups.events_inside(patch_keys)),
            ["grid_id", *kpi.SUM_COLUMNS],
        )
        raw = raw.assign(township_id=raw["grid_id"].map(township_of)).drop(columns="grid_id")
        frame = pd.concat([frame, raw], ignore_index=True) if len(frame) else raw
        frame = frame.groupby("township_id", sort=False)[kpi.SUM_COLUMNS].sum().reset_index()
    out = _sums_frame(list(frame.itertuples(index=False)), "township_id")
    return out[out["events"] > 0].reset_index(drop=True)


def whole_store(conn: Connection, scope: Scope) -> bool:
    """Whether the scope holds every grid of the store (a rollup read then needs no grid test)."""
    grids = conn.execute(
        select(func.count()).select_from(AdminUnit).where(AdminUnit.level == AdminLevel.GRID)
    ).scalar_one()
    return grids > 0 and len(set(scope.grid_ids)) >= grids


def in_ids(column, ids) -> ColumnElement[bool]:
    """``column IN (…)`` with the ids written into the statement: a city's thousands of grids as bound
    parameters cost SQLAlchemy more to compile (~70 ms a query) than the store takes to sum the rollup."""
    listed = ",".join(str(int(i)) for i in ids) or "-1"
    return column.op("IN")(literal_column(f"({listed})"))


def raw_kpi_sums(conn: Connection, scope: Scope, start: datetime, end: datetime, key: str) -> pd.DataFrame:
    """:func:`kpi_sums` from the raw events, whatever the period and the rollup."""
    return _sums_frame(_raw_rows(conn, scope, start, end, key), key)


def _raw_rows(
    conn: Connection, scope: Scope, start: datetime, end: datetime, key: str, *where
) -> list[tuple]:
    column = getattr(Event, key)
    rows = conn.execute(
        select(column, *rollups.sum_columns(conn.dialect.name))
        .where(
            *scope.where(by_time=True),
            Event.reported_at >= start,
            Event.reported_at < end,
            not_(rollups.rejected()),
            *where,
        )
        .group_by(column)
    ).all()
    return [tuple(r) for r in rows]


def rollup_rows(
    conn: Connection, model, key: str, grids: set[int] | None, first: date, stop: date, *where
) -> list[tuple]:
    """Per ``key`` the sums of the rollup table ``model`` over the days [first, stop) of ``grids`` (None:
    every grid); a key without a valid event is left out, as the raw query leaves it out. The
    department 0 (none yet) reads as None."""
    column = model.grid_id if key == "grid_id" else model.department_id
    rows = conn.execute(
        select(column, *(func.sum(getattr(model, c)) for c in kpi.SUM_COLUMNS))
        .where(
            *([] if grids is None else [in_ids(model.grid_id, sorted(grids))]),
            model.day >= first,
            model.day < stop,
            *where,
        )
        .group_by(column)
        .having(func.sum(model.events) > 0)
    ).all()
    return [(None if key != "grid_id" and r[0] == 0 else r[0], *r[1:]) for r in rows]


def _sums_frame(rows, key: str) -> pd.DataFrame:
    df = rows_frame(rows, [key, *kpi.SUM_COLUMNS])
    if df.empty:  # numbers, not objects: a period without events gives rates of NaN, not a division error
        df = df.astype(dict.fromkeys(kpi.SUM_COLUMNS, "float64"))
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
    memo: dict | None = None,
) -> pd.DataFrame:
    """KPIs of [start, end) with 同比/环比, by the child units of the scope (``group="area"``) or by lead
    department (``group="department"``), ranked on ``metric`` with small-sample care (N always shown).
    ``memo``: the :func:`kpi_sums` (and :func:`township_sums`) read, kept by (start, end, key) for a caller
    that needs them again (the report's 概况 sums the same period)."""

    def sums(a: datetime, b: datetime, key: str) -> pd.DataFrame:
        if memo is None:
            return kpi_sums(conn, scope, a, b, key)
        if (a, b, key) not in memo:
            memo[(a, b, key)] = kpi_sums(conn, scope, a, b, key)
        return memo[(a, b, key)]

    periods = kpi.comparison_periods(start, end)
    windows = [(periods.start, periods.end), periods.year_ago, periods.previous]
    if group == "area":
        child = AdminLevel(units.at[scope_unit_id, "level"]).child or AdminLevel.GRID
        unit_of = anc.loc[anc[child.value].notna(), child.value].astype("int64")

        def area_sums(a: datetime, b: datetime) -> pd.DataFrame:
            """The window's sums with ``unit_id``, the child unit each row belongs to: per township when
            the children are counties or townships and the township rollup serves, else per grid."""
            if child in (AdminLevel.COUNTY, AdminLevel.TOWNSHIP):
                by_township = memo.get((a, b, "township_id")) if memo is not None else None
                if by_township is None:
                    by_township = township_sums(conn, scope, a, b, anc)
                if by_township is not None:
                    if memo is not None:
                        memo[(a, b, "township_id")] = by_township
                    return by_township.assign(unit_id=by_township["township_id"].map(unit_of))
            by_grid = sums(a, b, "grid_id")
            return by_grid.assign(unit_id=by_grid["grid_id"].map(unit_of))

        table = kpi.compare_tables(
            *(
                kpi.kpi_from_sums(
                    area_sums(a.to_pydatetime(), b.to_pydatetime()), "unit_id", population=units["population"]
                )
                for a, b in windows
            )
        )
        kids = descendants(anc, scope_unit_id, child.value)
        table = table.reindex(kids)
        table.insert(0, "name", units.loc[kids, "name"].to_numpy())
        if "population_estimated" in units.columns:  # 投诉率 on an estimated population says so
            table["population_estimated"] = units.loc[kids, "population_estimated"].astype(bool).to_numpy()
    else:
        table = kpi.compare_tables(
            *(
                kpi.kpi_from_sums(
                    sums(a.to_pydatetime(), b.to_pydatetime(), "lead_department_id"),
                    "lead_department_id",
                )
                for a, b in windows
            )
        )
        depts = conn.execute(select(Department.id, Department.name, Department.unit_id)).all()
        names = {d.id: d.name for d in depts}
        # the scope's own departments in service appear with none (无事件), as areas without events do
        tree, stopped = store_tree(conn), disabled_departments(conn)
        own = [d.id for d in depts if d.id not in stopped and tree.contains(scope_unit_id, d.unit_id)]
        table = table.reindex(table.index.union(pd.Index(own, dtype=table.index.dtype)))
        table.insert(0, "name", [names.get(i, str(i)) for i in table.index])
    table["events"] = table["events"].fillna(0).astype(int)
    return kpi.rank(table, metric, min_events=min_events)


WARNING_COLUMNS = [
    "id",
    "grid_id",
    "category",
    "title",
    "lon",
    "lat",
    "address",
    "reporter_count",
    "merged_into_id",
    "reported_at",
]


def warning_events(
    conn: Connection, scope: Scope, start: datetime, end: datetime, *where, chunk_days: int = 31
) -> pd.DataFrame:
    """The scope's events reported in [start, end) (and where ``where`` holds) with the columns the
    detector reads.

    Read a month at a time and kept compact (text as categoricals): a city year is ~2 million rows.
    """
    parts = []
    t = start
    columns = _warning_columns()
    while t < end:
        t1 = min(t + timedelta(days=chunk_days), end)
        rows = conn.execute(
            select(*columns).where(*scope.where(), Event.reported_at >= t, Event.reported_at < t1, *where)
        ).all()
        parts.append(rows_frame(rows, WARNING_COLUMNS))
        t = t1
    return _warning_frame(
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=WARNING_COLUMNS)
    )


def _warning_columns() -> list:
    # The category and the time as the store holds them (text on SQLite): converted by column below, not
    # row by row into enums and datetimes by the driver layer (a third of the read at city scale).
    return [
        type_coerce(getattr(Event, c), String).label(c)
        if c in ("category", "reported_at")
        else getattr(Event, c)
        for c in WARNING_COLUMNS
    ]


def _warning_frame(events: pd.DataFrame) -> pd.DataFrame:
    """Read rows made compact: text as categoricals, times parsed by column, NaN for not merged."""
    events = events.copy()
    # Enum members (if the driver gave them) as their values: each distinct one looked up once.
    distinct = pd.unique(events["category"].dropna().to_numpy(dtype=object))
    events["category"] = events["category"].map({v: getattr(v, "value", v) for v in distinct})
    for c in ("category", "title", "address"):
        events[c] = events[c].astype("category")
    events["reported_at"] = pd.to_datetime(events["reported_at"], format="ISO8601")
    events["merged_into_id"] = events["merged_into_id"].astype("float64")  # NaN: not merged
    return events


def warning_data(
    conn: Connection, scope: Scope, start: datetime, end: datetime, units: pd.DataFrame
) -> WarningData | None:
    """The detector's input over [start, end): the scope's events and ``units`` (indexed by id); None without events."""
    events = warning_events(conn, scope, start, end)
    if events.empty:
        return None
    return WarningData.from_events(with_metres(events), units.reset_index().rename(columns={"index": "id"}))


def with_metres(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` with ``x_m``/``y_m``: each place in metres (:func:`geo.crs.to_metres`), NaN without one."""
    placed = events["lon"].notna() & events["lat"].notna()
    x = np.full(len(events), np.nan)
    y = np.full(len(events), np.nan)
    if placed.any():
        xy = to_metres(events.loc[placed, "lon"], events.loc[placed, "lat"])
        x[placed.to_numpy()], y[placed.to_numpy()] = xy[:, 0], xy[:, 1]
    return events.assign(x_m=x, y_m=y)


#: The reports a day's judgement reads (the rest is counts): 顽疾 looks back its weeks, 群发 its hours
#: before the day; merged reports only count for 群发.
REPORT_DAYS = 7 * DEFAULT_PARAMS.chronic.weeks
MASS_HOURS = DEFAULT_PARAMS.mass.window_hours
COUNT_LEVELS = ("grid", "village", "township")


def warning_counts(
    conn: Connection, scope: Scope, start: datetime, end: datetime, units: pd.DataFrame
) -> pd.DataFrame | None:
    """The detector's daily counts (per day, unit of :data:`COUNT_LEVELS` and category, merged reports
    left out) over the whole days [start, end), from ``event_category_daily`` (decision 0034), the keys
    changed since its watermark from their raw events; None without a usable rollup (read the events)."""
    keys = rollups.pending(conn) if scope.department_id is None else None
    if keys is None:
        return None
    first, stop = start.date(), end.date()
    grids = None if whole_store(conn, scope) else set(scope.grid_ids)
    keys = {d: g if grids is None else g & grids for d, g in keys.items() if first <= d < stop}
    keys = {d: g for d, g in keys.items() if g}
    model = EventCategoryDaily
    columns = ["day", "grid_id", "category", "count"]
    grid_counts = read_frame(
        conn,
        select(type_coerce(model.day, String), model.grid_id, model.category, model.counted).where(
            *([] if grids is None else [in_ids(model.grid_id, sorted(grids))]),
            model.day >= first,
            model.day < stop,
            model.counted > 0,
            *rollups.rollup_outside(keys, model),
        ),
        columns,
    )
    if keys:
        changed = conn.execute(
            rollups.category_aggregate(
                conn.dialect.name,
                *scope.where(by_time=True),
                Event.reported_at >= start,
                Event.reported_at < end,
                rollups.events_inside(keys),
            )
        ).all()
        if changed:
            more = text_frame(changed, columns)
            grid_counts = pd.concat([grid_counts, more], ignore_index=True) if len(grid_counts) else more
    # Days as the store gives them (text on SQLite, dates on PostgreSQL), each of the ~84 parsed once.
    code, days = pd.factorize(grid_counts["day"].to_numpy(dtype=object))
    parsed = pd.to_datetime(pd.Index([str(d)[:10] for d in days], dtype=object), format="%Y-%m-%d")
    grid_counts["day"] = parsed.take(code) if len(code) else parsed
    if keys:  # the events' own rows hold the category as the enum
        grid_counts["category"] = grid_counts["category"].map(lambda c: getattr(c, "value", c))
    return counts_at_levels(grid_counts, units, COUNT_LEVELS)


def day_warning_data(conn: Connection, scope: Scope, day: date, units: pd.DataFrame) -> WarningData | None:
    """What judging ``day`` reads: :data:`WARNING_HISTORY_DAYS` of daily counts from the rollup and only
    the reports 顽疾 and 群发 look at (:data:`REPORT_DAYS`, with a place): the same alerts as
    :func:`warning_data` over the whole history, at the cost of the days, not of their events. Without
    a usable rollup (or without counts), :func:`warning_data`.

    On PostgreSQL the daily counts and the grid × matter counts are read beside (:func:`db.beside.beside`,
    decision 0065: other connections on this one's snapshot, in threads) while this one reads the
    reports: the server works on some while this process shapes the others' rows."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    start = end - timedelta(days=WARNING_HISTORY_DAYS)
    mass_from = end - timedelta(days=1, hours=MASS_HOURS)
    first = max(start, end - timedelta(days=REPORT_DAYS))
    kept = rollups.kept_from(conn)
    if kept is None or first.date() < kept or scope.department_id is not None:
        counts = warning_counts(conn, scope, start, end, units)
        if counts is None or counts.empty:
            return warning_data(conn, scope, start, end, units)
        reports = warning_events(
            conn,
            scope,
            first,
            end,
            Event.lon.is_not(None),
            Event.lat.is_not(None),
            or_(Event.merged_into_id.is_(None), Event.reported_at >= mass_from),
        )
        return WarningData(counts, units, with_metres(reports))
    with beside(conn) as reads:
        counting = None if reads is None else reads.submit(warning_counts, scope, start, end, units)
        reports, matters, totals = warning_reports(conn, scope, first, end, mass_from, reads=reads)
        counts = warning_counts(conn, scope, start, end, units) if counting is None else counting.result()
    if counts is None or counts.empty:  # no events in the history: nothing read above was of use
        return warning_data(conn, scope, start, end, units)
    return WarningData(
        counts,
        units,
        with_metres(reports),
        matter_day=pd.Timestamp(day),
        matter_counts=matters,
        grid_totals=totals,
    )


MATTER_COLUMNS = ["grid_id", "category", "title", "count"]


def warning_reports(
    conn: Connection,
    scope: Scope,
    start: datetime,
    end: datetime,
    mass_from: datetime,
    *,
    reads: Beside | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What 顽疾 and 群发 read of [start, end) (顽疾's weeks) from ``event_recent_reports`` (decision
    0038): the reports from ``mass_from`` on (群发's hours, merged ones too) and, of the reports not merged,
    those in the place cells around a possible 顽疾 seed (a row whose ``near`` reaches 顽疾's
    ``min_events``) — a few thousand of a busy township's ~50 k — and the reports with a place not
    merged counted per grid and per grid × category × title (on PostgreSQL every matter, in one scan,
    the grids' totals summed from them; on SQLite the possible seeds' matters). The (day, grid) keys changed since the watermark are
    read from the events, and the cells two around each of their reports read too (their neighbours'
    ``near`` may lag). :func:`domain.early_warning.detect` gives the same alerts from these as from every
    report (tests/integration/test_rollups.py). ``reads``: the view's reads beside (:func:`db.beside.beside`):
    the matters are counted there meanwhile."""
    grids, keys = _scope_grids_and_pending(conn, scope, start, end)
    model = EventRecentReport
    base = [
        *([] if grids is None else [in_ids(model.grid_id, sorted(grids))]),
        model.reported_at >= start,
        model.reported_at < end,
        *_outside(keys),
    ]
    counted = [*base, model.merged_into_id.is_(None), model.lon.is_not(None), model.lat.is_not(None)]
    # PostgreSQL: every grid × matter's reports in one scan (~6.6 k groups for a busy township), beside
    # the reads below when it can, each grid's total summed from them. Two statements over the same
    # ~50 k rows cost twice there, and the matters' own, filtered to the seeds' matters, drew a parallel
    # plan whose workers' start took longer than its scan (62 ms, against 26 for this one). SQLite:
    # each grid's total and the seeds' matters only (44–66 ms, against 71–90 for every matter).
    every_matter = conn.dialect.name == "postgresql"
    counting = (
        select(model.grid_id, model.category, model.title, func.count())
        .where(*counted)
        .group_by(model.grid_id, model.category, model.title)
    )
    matters = (
        None if reads is None or not every_matter else reads.submit(read_frame, counting, MATTER_COLUMNS)
    )
    changed_rows = _changed_reports(conn, scope, start, end, mass_from, keys) if keys else []
    changed = _warning_frame(text_frame(changed_rows, WARNING_COLUMNS)) if changed_rows else None
    cell = rollups.cell_of(conn.dialect.name)
    seeds = plain_rows(
        conn,
        select(model.lon, model.lat, model.category, model.title).where(
            *base, model.merged_into_id.is_(None), model.near >= DEFAULT_PARAMS.chronic.min_events
        ),
    )
    seed_lon = np.array([r[0] for r in seeds], dtype=float)
    seed_lat = np.array([r[1] for r in seeds], dtype=float)
    # The cells a disc of NEAR_M around a possible seed touches (one to four each), not the nine around
    # its cell: every report within 50 m of a seed lies in them.
    cells = cells_within(seed_lon, seed_lat, rollups.NEAR_M)
    mine = None
    exact = True  # the reports read are cut to those within NEAR_M of a possible seed (and 群发's hours)
    if changed is not None and len(changed):
        exact = False  # changed keys: their neighbours' ``near`` may lag; read the cells around as they are
        placed = changed[changed["lon"].notna() & changed["lat"].notna()]
        cells |= cells_around(place_cells(placed["lon"], placed["lat"]).tolist(), 2)
        mine = pd.DataFrame(
            {
                "grid_id": placed["grid_id"].to_numpy(),
                "category": placed["category"].astype(str).to_numpy(dtype=object),
                "title": placed["title"].astype(str).to_numpy(dtype=object),
            }
        )[placed["merged_into_id"].isna().to_numpy()]
    columns = [
        type_coerce(getattr(model, c), String).label(c) if c == "reported_at" else getattr(model, c)
        for c in WARNING_COLUMNS
    ]
    near = and_(model.merged_into_id.is_(None), *rollups.in_ints(cell, cells)) if cells else None
    hours = model.reported_at >= mass_from
    rows = read_frame(
        conn, select(*columns).where(*base, hours if near is None else or_(near, hours)), WARNING_COLUMNS
    )
    if exact and near is not None:
        rows = _near_or_in_hours(rows, seed_lon, seed_lat, mass_from)
    if every_matter:
        counts = matters.result() if matters is not None else read_frame(conn, counting, MATTER_COLUMNS)
        totals = (
            counts.groupby("grid_id", sort=False)["count"].sum().reset_index()
            if len(counts)
            else pd.DataFrame(columns=["grid_id", "count"])
        )
    else:
        totals = text_frame(
            plain_rows(conn, select(model.grid_id, func.count()).where(*counted).group_by(model.grid_id)),
            ["grid_id", "count"],
        )
        seed_matters = {(category, title) for _, _, category, title in seeds}
        if mine is not None:
            seed_matters |= set(zip(mine["category"], mine["title"], strict=True))
        counts = (
            read_frame(
                conn,
                counting.where(tuple_(model.category, model.title).in_(sorted(seed_matters))),
                MATTER_COLUMNS,
            )
            if seed_matters
            else text_frame([], MATTER_COLUMNS)
        )
    if changed_rows:
        more = text_frame(changed_rows, WARNING_COLUMNS)
        more["reported_at"] = more["reported_at"].map(str)  # as the rows read as text give it
        rows = pd.concat([rows, more], ignore_index=True) if len(rows) else more
    frame = _warning_frame(rows)
    if mine is not None and len(mine):
        extra = (
            mine.groupby(["grid_id", "category", "title"], sort=False).size().rename("count").reset_index()
        )
        counts = pd.concat([counts, extra], ignore_index=True) if len(counts) else extra
        more = mine.groupby("grid_id").size().rename("count").reset_index()
        totals = pd.concat([totals, more], ignore_index=True) if len(totals) else more
    return frame, counts, totals


#: Metres per degree of latitude on the sphere :func:`domain.early_warning.near_counts` measures on.
_M_PER_DEGREE = math.radians(1) * 6_371_008.8


def cells_within(lon: np.ndarray, lat: np.ndarray, radius_m: float) -> set[int]:
    """The place cells (:func:`domain.early_warning.place_cells`, 0.001°) that a disc of ``radius_m``
    around any of the places touches: the cells of nine points of each disc's bounding box (widened by
    1 %: its corners, the middles of its sides, its centre). Those points are at most ``radius_m`` × 1.01
    apart and a cell is wider than that (up to 60° N), so every cell the box meets holds one of them."""
    if not len(lon):
        return set()
    dlat = radius_m * 1.01 / _M_PER_DEGREE
    dlon = dlat / np.cos(np.radians(np.abs(lat) + dlat))
    out: set[int] = set()
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            out.update(place_cells(lon + sx * dlon, lat + sy * dlat).tolist())
    return out


def _near_or_in_hours(
    rows: pd.DataFrame, seed_lon: np.ndarray, seed_lat: np.ndarray, mass_from: datetime
) -> pd.DataFrame:
    """Of the rows read (:data:`WARNING_COLUMNS`), those reported from ``mass_from`` on (群发 reads them
    all) and those within :data:`services.rollups.NEAR_M` of a possible 顽疾 seed, on the sphere
    :func:`domain.early_warning.near_counts` measures on: every report 顽疾 can count around a seed
    (decision 0038's argument), the others left to no one."""
    if not len(rows):
        return rows
    near = near_any(
        rows["lon"].to_numpy(dtype=float),
        rows["lat"].to_numpy(dtype=float),
        seed_lon,
        seed_lat,
        rollups.NEAR_M,
    )
    since = str(mass_from)
    hours = rows["reported_at"].map(str).to_numpy(dtype=str) >= since
    return rows[near | hours].reset_index(drop=True)


def _scope_grids_and_pending(
    conn: Connection, scope: Scope, start: datetime, end: datetime
) -> tuple[set[int] | None, dict[date, set[int]]]:
    """The scope's grids (None: the whole store) and the (day → grids) keys of [start, end) in them
    changed since the rollup's watermark (read from the events, not the rollup)."""
    grids = None if whole_store(conn, scope) else set(scope.grid_ids)
    keys = rollups.pending(conn) or {}
    keys = {d: g if grids is None else g & grids for d, g in keys.items() if start.date() <= d < end.date()}
    return grids, {d: g for d, g in keys.items() if g}


def _outside(keys: dict[date, set[int]]) -> list:
    """Clauses on ``event_recent_reports`` leaving out the rows of ``keys`` (day → grids)."""
    model = EventRecentReport
    return (
        [
            not_(
                or_(
                    *(
                        and_(
                            model.reported_at >= _midnight(d),
                            model.reported_at < _midnight(d + timedelta(days=1)),
                            model.grid_id.in_(g),
                        )
                        for d, g in keys.items()
                    )
                )
            )
        ]
        if keys
        else []
    )


def _changed_reports(
    conn: Connection, scope: Scope, start: datetime, end: datetime, mass_from: datetime, keys
) -> list[tuple]:
    """The rows of the events of ``keys`` (changed since the watermark) as :func:`warning_events` reads them."""
    return plain_rows(
        conn,
        select(*_warning_columns()).where(
            *scope.where(by_time=True),
            Event.reported_at >= start,
            Event.reported_at < end,
            rollups.events_inside(keys),
            or_(Event.merged_into_id.is_(None), Event.reported_at >= mass_from),
        ),
    )


def recent_reports(
    conn: Connection, scope: Scope, start: datetime, end: datetime, mass_from: datetime
) -> pd.DataFrame:
    """:func:`warning_events` of [start, end) not merged (or reported from ``mass_from`` on) read from
    ``event_recent_reports`` (decision 0034), the (day, grid) keys changed since the watermark from the
    events; a frame like :func:`warning_events`'s."""
    grids, keys = _scope_grids_and_pending(conn, scope, start, end)
    model = EventRecentReport
    columns = [
        type_coerce(getattr(model, c), String).label(c) if c == "reported_at" else getattr(model, c)
        for c in WARNING_COLUMNS
    ]
    rows = plain_rows(
        conn,
        select(*columns).where(
            *([] if grids is None else [in_ids(model.grid_id, sorted(grids))]),
            model.reported_at >= start,
            model.reported_at < end,
            or_(model.merged_into_id.is_(None), model.reported_at >= mass_from),
            *_outside(keys),
        ),
    )
    frames = [text_frame(rows, WARNING_COLUMNS)]
    if keys:
        frames.append(text_frame(_changed_reports(conn, scope, start, end, mass_from, keys), WARNING_COLUMNS))
    frames = [f for f in frames if len(f)] or frames[:1]
    return _warning_frame(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])


def _midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time())


def warnings(conn: Connection, scope: Scope, day: date, units: pd.DataFrame) -> list[Alert]:
    """Early warnings (预警) judged on ``day`` over the scope's recent events."""
    with gc_paused():
        data = day_warning_data(conn, scope, day, units)
        return [] if data is None else detect(day, data)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Within: no cyclic garbage collection. Reading tens of thousands of rows allocates enough tuples to
    set off full collections, each walking every object of the process (the app's caches, pandas, the
    ORM): ~70 ms of a township's 预警 on the city store (decision 0038). The rows and frames made within
    hold no reference cycles; what cycles there are are collected after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
    """A ranked KPI table with Chinese headers, shares as percentages, N always shown, ranked and noted as
    the report ranks it (样本少 after the others, 并列, 无事件)."""

    # As the report shows them (services.report_book): a change that rounds to zero reads 0.0, never -0.0.
    def pct(v):
        return "—" if pd.isna(v) else shown(number(v, "pct"), "pct")

    def pp(v):
        return "—" if pd.isna(v) else shown(number(v * 100, "pp"), "pp")

    def rel(v):
        return "—" if pd.isna(v) else shown(number(v, "rel"), "rel")

    def dec(places: int):
        return lambda v: "—" if pd.isna(v) else f"{v:.{places}f}"

    return pd.DataFrame(
        {
            "排名": table["rank"].astype("string").fillna("—"),
            "名称": table["name"],
            "事件数(N)": table["events"],
            "投诉率(件/万人)": table["complaint_rate"].map(dec(2)),
            "解决率": table["resolution_rate"].map(pct),
            "满意率": table["satisfaction_rate"].map(pct),
            "满意率环比": table["satisfaction_rate_prev_change"].map(pp),
            "满意率同比": table["satisfaction_rate_yoy_change"].map(pp),
            "按时办结率": table["on_time_rate"].map(pct),
            "平均处置时长(小时)": table["mean_handling_hours"].map(dec(1)),
            "事件数环比": table["events_prev_change"].map(rel),
            "事件数同比": table["events_yoy_change"].map(rel),
            "备注": with_population_note(table),
        }
    )


def with_population_note(table: pd.DataFrame) -> list[str]:
    """The ranking's notes (``rank_note``) with 人口为估算 added for the units whose 投诉率 rests on an
    estimated population, as the report writes them (:func:`services.report_book.noted`)."""
    return [noted(n, row) for n, (_, row) in zip(table["rank_note"], table.iterrows(), strict=True)]


def report_alerts(
    conn: Connection, scope: Scope, day: date, units: pd.DataFrame, unit_id: int
) -> tuple[list[Alert], str]:
    """A report's 预警 sheet and when its alerts were judged (预警研判时间, in words): what the daily pass
    stored for ``day`` under ``unit_id`` when it has judged that day (a scheduled report's day, the 报表
    tab's default: yesterday), as the 预警 tab shows it; else the jobs runner's intraday judgement of
    ``day`` (today, every 10 minutes: decision 0039), the store as it was then; otherwise judged now
    (:func:`warnings`)."""
    from services.geography import tree

    units_tree = tree(conn)
    stored = stored_alerts(conn, units_tree, unit_id, day)
    if stored is not None:
        at = judged_at(conn, day)
        return stored, f"{at:%Y-%m-%d %H:%M}（每日预警研判，全天数据）"
    intraday = intraday_alerts(conn, units_tree, unit_id, day)
    if intraday is not None:
        alerts, at = intraday
        return alerts, f"{at:%Y-%m-%d %H:%M}（当日预警研判，截至该时刻，每 10 分钟更新）"
    at = clock.now()
    return warnings(conn, scope, day, units), f"{at:%Y-%m-%d %H:%M}（生成报表时研判）"


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
    first_day: date | None = None,
    metric: str = "satisfaction_rate",
) -> bytes:
    """日报/周报/月报 ending on ``day`` as XLSX: overview, by area, by department, early warnings, each
    sheet titled with the area, the report and its period (:mod:`services.report_book`).

    The period is the :data:`REPORT_PERIODS` days ending on ``day``, or from ``first_day`` (a scheduled
    月报 covers its calendar month). Areas and departments are ranked on ``metric``."""
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    start = (
        end - timedelta(days=REPORT_PERIODS[kind])
        if first_day is None
        else datetime.combine(first_day, datetime.min.time())
    )
    memo: dict = {}  # the period summed once (by grid or township): the areas' table and the 概况 both read it
    args = {
        "units": units,
        "anc": anc,
        "scope_unit_id": scope_unit_id,
        "min_events": min_events,
        "memo": memo,
    }
    by_area = kpi_by(conn, scope, start, end, group="area", metric=metric, **args)
    by_dept = kpi_by(conn, scope, start, end, group="department", metric=metric, **args)
    read = [memo[k] for k in ((start, end, "grid_id"), (start, end, "township_id")) if k in memo]
    period_sums = read[0] if read else kpi_sums(conn, scope, start, end, "grid_id")
    total = kpi.kpi_from_sums(period_sums, population=units.at[scope_unit_id, "population"]).iloc[0]
    area = str(units.at[scope_unit_id, "name"])
    period = f"{start:%Y-%m-%d} 至 {end - timedelta(days=1):%Y-%m-%d}"
    overview = Sheet("概况", [Col("项目"), Col("数值")])
    overview.rows = [["统计区域", area], ["统计时段", period]]
    overview.rows += [
        [label, Cell(value, kind)]
        for label, value, kind in (
            ("事件数", total["events"], "int"),
            ("投诉率(件/万人)", total["complaint_rate"], "dec2"),
            ("解决率", total["resolution_rate"], "pct"),
            ("满意率", total["satisfaction_rate"], "pct"),
            ("按时办结率", total["on_time_rate"], "pct"),
            ("平均处置时长(小时)", total["mean_handling_hours"], "dec1"),
        )
    ]
    if "population_estimated" in units.columns and bool(units.at[scope_unit_id, "population_estimated"]):
        overview.rows.append(["人口", f"{ESTIMATED}（边界文件未提供人口），投诉率仅供参考"])
    judged_alerts, judged_when = report_alerts(conn, scope, day, units, scope_unit_id)
    overview.rows.append(["预警研判时间", judged_when])
    alerts = alerts_frame(judged_alerts, units)
    warn = Sheet("预警", [Col(c) for c in alerts.columns], alerts.to_numpy().tolist())
    note = (
        f"统计时段：{period}　排名指标：{kpi.METRICS.get(metric, (metric,))[0]}"
        f"（并列同名次；事件数不足 {min_events} 件的单位排在其后，备注“样本少”）"
    )
    return write_book(
        f"{area}{kind}",
        note,
        [
            overview,
            kpi_sheet("各区域", by_area, metric, min_events),
            kpi_sheet("各部门", by_dept, metric, min_events, per_resident=False),
            warn,
        ],
    )
