"""Event rollups (decisions 0032, 0034): the KPI sums per China-local day × grid × lead department
(``event_daily``), per day × grid (``event_grid_daily``) and per day × lead department
(``event_department_daily``), 预警's counts per day × grid × category (``event_category_daily``) and
every grid's all-time count (``event_grid_totals``), so a view costs the days it spans, not the events
they hold. The tables are kept together, under one watermark.

- :func:`rebuild` recomputes every table from raw events in one unit of work (``python -m
  services.rollups rebuild``).
- :func:`refresh` folds in what changed since the watermark (the last ``event_transitions.id`` read):
  every change an event's figures see (report, status, rating, 超期, lead department, merge) writes a
  transition on it, so the (day, grid) keys of the events with newer transitions (and of the events they
  were merged into: a merge adds to the target's ``reporter_count``) are deleted and recomputed from raw
  rows. The jobs runner runs it every minute (``rollups``).
- :func:`fresh` says whether a reader may use the rollup: it has read every transition in the store.
  Readers (:mod:`services.analytics`, :mod:`services.overview`) fall back to raw events otherwise.
- :func:`differences` compares the rollup with the raw aggregation, key by key (``check``).

Not caught by the watermark: a boundary replace that moves events to new grids (no transition); run
``rebuild`` after one (``check`` finds it).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Connection,
    Date,
    Engine,
    Integer,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import aliased

from db.models import (
    AdminUnit,
    Event,
    EventCategoryDaily,
    EventDaily,
    EventDepartmentDaily,
    EventGridDaily,
    EventGridTotal,
    EventRecentReport,
    EventTownshipDaily,
    EventTransition,
    RollupState,
)
from db.uow import UnitOfWork
from domain import kpi
from domain.early_warning import (
    CELL_DEGREES,
    DEFAULT_PARAMS,
    NEAR_MARGIN,
    cells_around,
    near_counts,
    place_cells,
)
from domain.vocabulary import RESOLVED_STATUSES, EventStatus, Rating
from services import audit

NAME = "event_daily"
SUMS = ["all_events", *kpi.SUM_COLUMNS]
KEYS = ["day", "grid_id", "department_id"]
#: On PostgreSQL a transaction can commit after one with a larger transition id. A refresh keeps the
#: transactions in progress in its snapshot, each with the lowest id it can have drawn (decision 0064),
#: and the next one re-reads from there; it also re-reads this many ids below the watermark (idempotent),
#: for a writer caught between drawing its id and taking its transaction id. SQLite serialises writers:
#: ids commit in order.
OVERLAP = 500
#: At most this many transitions re-read below the watermark for writers still open: a session left open
#: in a transaction for hours would otherwise have every refresh re-read (and then rebuild) everything.
MAX_REREAD = 50_000
#: More events changed than this since the last refresh: readers read raw events instead of patching.
PATCH_ABOVE = 2_000
#: More touched events than this in one refresh: a rebuild is cheaper than the key-by-key recompute.
REBUILD_ABOVE = 50_000


def handling_hours(dialect: str):
    """Hours from report to 办结, in the store's own date arithmetic."""
    if dialect == "postgresql":
        return func.extract("epoch", Event.resolved_at - Event.reported_at) / 3600.0
    return (func.julianday(Event.resolved_at) - func.julianday(Event.reported_at)) * 24.0


def rejected():
    """Events the KPIs leave out (:func:`domain.kpi.valid_mask`): 退回, merged, archived without 办结."""
    return or_(
        Event.status == EventStatus.REJECTED,
        Event.merged_into_id.is_not(None),
        and_(Event.status == EventStatus.ARCHIVED, Event.resolved_at.is_(None), Event.closed_at.is_not(None)),
    )


def sum_columns(dialect: str, only=None) -> list:
    """The :data:`domain.kpi.SUM_COLUMNS` as SQL aggregates, of the rows where ``only`` holds (all if None)."""
    resolved = Event.status.in_(RESOLVED_STATUSES)
    handled = and_(resolved, Event.resolved_at.is_not(None))

    def where(cond):
        return cond if only is None else and_(only, cond)

    def count(cond):
        return func.sum(case((where(cond), 1), else_=0))

    return [
        func.count() if only is None else count(True),
        func.sum(case((where(True), func.coalesce(Event.reporter_count, 1)), else_=0)),
        count(resolved),
        count(Event.rating.is_not(None)),
        count(Event.rating.in_([Rating(v) for v in kpi.SATISFIED_RATINGS])),
        count(Event.is_overdue),
        func.sum(case((where(handled), handling_hours(dialect)), else_=0.0)),
        count(handled),
    ]


def day_of(dialect: str):
    """The China-local day of ``reported_at`` (times are stored as China-local wall time)."""
    return cast(Event.reported_at, Date) if dialect == "postgresql" else func.date(Event.reported_at)


def _aggregate(dialect: str, *where):
    """``event_daily`` rows computed from raw events (all of them, or those ``where`` selects)."""
    day = day_of(dialect)
    dept = func.coalesce(Event.lead_department_id, 0)
    return (
        select(day, Event.grid_id, dept, func.count(), *sum_columns(dialect, only=not_(rejected())))
        .where(*where)
        .group_by(day, Event.grid_id, dept)
    )


def _insert(conn: Connection, *where) -> None:
    conn.execute(insert(EventDaily).from_select([*KEYS, *SUMS], _aggregate(conn.dialect.name, *where)))


def _grid_aggregate(dialect: str, *where):
    """``event_grid_daily`` rows computed from raw events (the check's reference)."""
    day = day_of(dialect)
    return (
        select(day, Event.grid_id, func.count(), *sum_columns(dialect, only=not_(rejected())))
        .where(*where)
        .group_by(day, Event.grid_id)
    )


def _township_raw_aggregate(dialect: str, *where):
    """``event_township_daily`` rows computed from raw events (the check's reference)."""
    day = day_of(dialect)
    township = _VILLAGE.parent_id
    return (
        select(day, township, func.count(), *sum_columns(dialect, only=not_(rejected())))
        .join(_GRID, _GRID.id == Event.grid_id)
        .join(_VILLAGE, _VILLAGE.id == _GRID.parent_id)
        .where(township.is_not(None), *where)
        .group_by(day, township)
    )


def _department_aggregate(dialect: str, *where):
    """``event_department_daily`` rows computed from raw events (the check's reference)."""
    day = day_of(dialect)
    dept = func.coalesce(Event.lead_department_id, 0)
    return (
        select(day, dept, func.count(), *sum_columns(dialect, only=not_(rejected())))
        .where(*where)
        .group_by(day, dept)
    )


def category_aggregate(dialect: str, *where):
    """``event_category_daily`` rows from raw events: per day, grid and category the events not merged
    into another (as :func:`domain.early_warning.daily_counts` counts them)."""
    day = day_of(dialect)
    return (
        select(
            day, Event.grid_id, Event.category, func.sum(case((Event.merged_into_id.is_(None), 1), else_=0))
        )
        .where(*where)
        .group_by(day, Event.grid_id, Event.category)
    )


def _totals_aggregate(*where):
    return select(Event.grid_id, func.count()).where(*where).group_by(Event.grid_id)


def _derived(model, key: str, *where):
    """``model``'s rows (``event_grid_daily``: by grid; ``event_department_daily``: by department) as sums
    of ``event_daily``'s rows where ``where`` holds: a few thousand rows a day, not the day's events."""
    column = getattr(EventDaily, key)
    return (
        select(EventDaily.day, column, *(func.sum(getattr(EventDaily, c)) for c in SUMS))
        .where(*where)
        .group_by(EventDaily.day, column)
    )


def _insert_derived(conn: Connection, *where) -> None:
    for model, key in ((EventGridDaily, "grid_id"), (EventDepartmentDaily, "department_id")):
        conn.execute(insert(model).from_select(["day", key, *SUMS], _derived(model, key, *where)))
    _insert_townships(conn)


# A grid's township: its parent's parent (a boundary file's levels go one down at a time:
# services.boundaries refuses a unit whose level is not its parent's next).
_GRID = aliased(AdminUnit, name="grid_unit")
_VILLAGE = aliased(AdminUnit, name="village_unit")


def _township_aggregate(*where):
    """``event_township_daily`` rows: ``event_grid_daily``'s sums per day × its grids' township."""
    township = _VILLAGE.parent_id
    return (
        select(EventGridDaily.day, township, *(func.sum(getattr(EventGridDaily, c)) for c in SUMS))
        .join(_GRID, _GRID.id == EventGridDaily.grid_id)
        .join(_VILLAGE, _VILLAGE.id == _GRID.parent_id)
        .where(township.is_not(None), *where)
        .group_by(EventGridDaily.day, township)
    )


def _insert_townships(conn: Connection, *where) -> None:
    conn.execute(
        insert(EventTownshipDaily).from_select(["day", "township_id", *SUMS], _township_aggregate(*where))
    )


def _insert_categories(conn: Connection, *where) -> None:
    conn.execute(
        insert(EventCategoryDaily).from_select(
            ["day", "grid_id", "category", "counted"], category_aggregate(conn.dialect.name, *where)
        )
    )


def _insert_totals(conn: Connection, *where) -> None:
    """``event_grid_totals`` rows summed from ``event_grid_daily`` (``where``: on its columns), written
    just before in the same transaction: a grid's total is always the sum of its days, so a reader can
    take a pending day's rows out of it and that day's raw events in (services.overview, decision
    0057). The check (:func:`differences`) still compares it with the raw count."""
    total = func.sum(EventGridDaily.all_events)
    conn.execute(
        insert(EventGridTotal).from_select(
            ["grid_id", "all_events"],
            select(EventGridDaily.grid_id, total)
            .where(*where)
            .group_by(EventGridDaily.grid_id)
            .having(total > 0),
        )
    )


#: The days ``event_recent_reports`` keeps: 顽疾 reads 8 weeks of reports up to the judged day, so a
#: judgement of any of the last 7 days reads them from it (older days read the events).
RECENT_DAYS = 63
RECENT_COLUMNS = [
    "grid_id",
    "reported_at",
    "id",
    "category",
    "title",
    "lon",
    "lat",
    "address",
    "reporter_count",
    "merged_into_id",
]


def _recent(*where):
    """``event_recent_reports`` rows from raw events."""
    return select(*(getattr(Event, c) for c in RECENT_COLUMNS)).where(*where)


def _insert_recent(conn: Connection, kept_from: date, *where) -> None:
    since = datetime.combine(kept_from, datetime.min.time())
    # In key order: on PostgreSQL (a heap, not clustered by its key as SQLite's table is) a rebuilt
    # table then holds a township's weeks on few pages; :func:`tidy` restores that order nightly.
    rows = _recent(Event.reported_at >= since, *where).order_by(Event.grid_id, Event.reported_at, Event.id)
    conn.execute(insert(EventRecentReport).from_select(RECENT_COLUMNS, rows))


#: What :func:`tidy` rewrites in key order on PostgreSQL (and its lock wait at most, ms): 预警 reads a
#: township's eight weeks from it; at city scale (375 k rows, 67 MB) CLUSTER took 0.7 s.
CLUSTERED = (("event_recent_reports", "pk_event_recent_reports"),)
TIDY_LOCK_TIMEOUT_MS = 5000


def tidy(engine: Engine) -> list[str]:
    """Nightly upkeep of the rollups 预警 reads (jobs runner, ``rollups_tidy``), on PostgreSQL: rewrite
    ``event_recent_reports`` in key order (the minute's refresh appends today's reports at the end of
    the heap and the days it drops leave holes, so a township's weeks spread over the whole table
    again: 7.5 k heap pages a read for the demo city's busiest township, 1.1 k once in order), then
    ``VACUUM ANALYZE`` the rollups so their covering indexes answer alone (the visibility map set) and
    plans see the day's rows. ``CLUSTER`` holds the table's lock while it writes (0.7 s at city scale): it waits at most
    :data:`TIDY_LOCK_TIMEOUT_MS` for it, and fails then (the runner tries again later). SQLite's
    tables are kept in key order by themselves: nothing to do. Returns what was done (Chinese)."""
    if engine.dialect.name != "postgresql":
        return []
    done = []
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
        conn.exec_driver_sql(f"SET lock_timeout = {TIDY_LOCK_TIMEOUT_MS}")
        try:
            for table, index in CLUSTERED:
                conn.exec_driver_sql(f"CLUSTER {table} USING {index}")
                done.append(f"{table} 按索引重排")
            tables = [m.__tablename__ for m in TABLES]
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(tables)}")
            done.append(f"{len(tables)} 张汇总表清理并更新统计")
        finally:
            conn.exec_driver_sql("RESET lock_timeout")
    return done


#: ``event_recent_reports.near`` counts the reports of the same matter within this many metres (decision
#: 0038): 顽疾's radius with a margin, so that every pair 顽疾 finds is counted.
NEAR_M = DEFAULT_PARAMS.chronic.radius_m * NEAR_MARGIN


def cell_of(dialect: str, model=EventRecentReport):
    """The place cell of a row (:func:`domain.early_warning.place_cells`) in the store's arithmetic: the
    longitude and latitude over 0.001°, truncated toward zero."""

    def trunc(column):
        value = column / CELL_DEGREES
        return cast(func.trunc(value), BigInteger) if dialect == "postgresql" else cast(value, Integer)

    return trunc(model.lon) * 400_000 + trunc(model.lat)


def in_ints(column, values) -> list:
    """``column IN (…)`` with the integers written into the statement (thousands of cells as bound
    parameters would cost more to compile than to read), in chunks OR-ed together."""
    listed = sorted({int(v) for v in values})
    if not listed:
        return [column.op("IN")(literal_column("(NULL)"))]
    parts = [
        column.op("IN")(literal_column("(" + ",".join(map(str, listed[k : k + 5000])) + ")"))
        for k in range(0, len(listed), 5000)
    ]
    return [or_(*parts) if len(parts) > 1 else parts[0]]


def _time_key(conn: Connection):
    """``reported_at`` as the row's key: the stored text on SQLite (a datetime bound back could be written
    otherwise than the seed wrote it), the timestamp on PostgreSQL."""
    column = EventRecentReport.reported_at
    return type_coerce(column, String) if conn.dialect.name == "sqlite" else column


def _near_rows(conn: Connection, *where) -> list:
    m = EventRecentReport
    return list(
        conn.execute(
            select(
                m.grid_id,
                _time_key(conn),
                m.id,
                type_coerce(m.category, String),
                m.title,
                m.lon,
                m.lat,
                m.near,
            ).where(m.lon.is_not(None), m.lat.is_not(None), *where)
        ).all()
    )


def _near_of(rows) -> tuple[list, list]:
    """Each row's ``near`` as it should be (NULL for a row alone) and its place cell."""
    if not rows:
        return [], []
    lon = [r[5] for r in rows]
    lat = [r[6] for r in rows]
    matter = [f"{r[3]}|{r[4]}" for r in rows]
    n = near_counts(lon, lat, matter, NEAR_M)
    return [int(v) if v > 1 else None for v in n], place_cells(lon, lat).tolist()


def update_near(conn: Connection, around: set[int] | None = None) -> int:
    """Set ``event_recent_reports.near`` where it is not as :func:`domain.early_warning.near_counts`
    gives it: of every row (``around`` None), or of the rows whose count a change in the cells ``around``
    can move (those within one cell; their own surroundings are read, within two). Returns the rows set."""
    m = EventRecentReport
    if around is not None and not around:
        return 0
    where = [] if around is None else in_ints(cell_of(conn.dialect.name), cells_around(around, 2))
    rows = _near_rows(conn, *where)
    near, cells = _near_of(rows)
    target = None if around is None else cells_around(around, 1)
    changed = [
        {"b_grid": r[0], "b_at": r[1], "b_id": r[2], "b_near": n}
        for r, n, c in zip(rows, near, cells, strict=True)
        if n != r[7] and (target is None or c in target)
    ]
    if changed:
        conn.execute(
            update(m)
            .where(
                m.grid_id == bindparam("b_grid"),
                _time_key(conn) == bindparam("b_at", type_=_time_key(conn).type),
                m.id == bindparam("b_id"),
            )
            .values(near=bindparam("b_near")),
            changed,
        )
    return len(changed)


def _recent_cells(conn: Connection, *where) -> set[int]:
    m = EventRecentReport
    return set(
        conn.execute(
            select(cell_of(conn.dialect.name))
            .where(m.lon.is_not(None), m.lat.is_not(None), *where)
            .distinct()
        ).scalars()
    )


def kept_from(conn: Connection) -> date | None:
    """The first day ``event_recent_reports`` holds (every report from then on), None without a rollup."""
    day = conn.execute(select(RollupState.kept_from).where(RollupState.name == NAME)).scalar_one_or_none()
    return None if day is None else _as_date(day)


#: Every rollup table, cleared by a rebuild.
TABLES = (
    EventDaily,
    EventGridDaily,
    EventTownshipDaily,
    EventDepartmentDaily,
    EventCategoryDaily,
    EventGridTotal,
    EventRecentReport,
)


def _latest(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(EventTransition.id), 0))).scalar_one()


#: PostgreSQL: the last transition id and the transactions in progress, in one statement's snapshot (so a
#: transaction whose rows the max does not see is among those in progress); less the ones of other
#: databases (a transaction id is the cluster's) and this one.
_MARK_AND_OPEN = text(
    "SELECT (SELECT coalesce(max(id), 0) FROM event_transitions),"
    " ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x),"
    " pg_current_xact_id_if_assigned()::text,"
    " ARRAY(SELECT backend_xid::text FROM pg_stat_activity"
    "       WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())"
)


def _mark_and_open(conn: Connection) -> tuple[int, set[int]]:
    """The last transition id; on PostgreSQL also the transactions (64-bit ids) in progress as it was read,
    which may still commit rows with smaller ids."""
    if conn.dialect.name != "postgresql":
        return _latest(conn), set()
    mark, open_now, mine, elsewhere = conn.execute(_MARK_AND_OPEN).one()
    other = {int(x) for x in elsewhere}  # 32-bit, as pg_stat_activity shows them
    return int(mark), {int(x) for x in open_now if x != mine and int(x) % 2**32 not in other}


def _pending_of(old: Row | None) -> dict[int, int]:
    """The transactions a refresh saw in progress, each with the lowest transition id it can have drawn."""
    if old is None or not getattr(old, "pending", None):
        return {}
    return {int(x): int(floor) for x, floor in json.loads(old.pending).items()}


def state(conn: Connection) -> Row | None:
    """The rollup's row of ``rollup_state`` (watermark, rebuilt_at, refreshed_at), None before a rebuild."""
    return conn.execute(select(RollupState.__table__).where(RollupState.name == NAME)).one_or_none()


def fresh(conn: Connection) -> bool:
    """Whether the rollup holds every transition in the store (so it equals the raw aggregation)."""
    mark = conn.execute(select(RollupState.watermark).where(RollupState.name == NAME)).scalar_one_or_none()
    return mark is not None and mark >= _latest(conn)


def _settled(conn: Connection) -> bool:
    """Nothing for a refresh to do: every transition read, and no writer that was open at the last refresh
    (its rows may have committed since with ids below the watermark: decision 0064)."""
    found = conn.execute(
        select(RollupState.watermark, RollupState.pending).where(RollupState.name == NAME)
    ).one_or_none()
    return found is not None and not found.pending and found.watermark >= _latest(conn)


def pending(conn: Connection) -> dict[date, set[int]] | None:
    """The (day → grids) keys whose rollup rows may lag the raw events: those of the events with a
    transition past the watermark. Empty when the rollup holds everything; None without a rollup or when
    more than :data:`PATCH_ABOVE` events changed (read raw then). A reader sums the rollup's other keys and
    these keys' raw events: exact while the jobs runner has not caught up yet. (On PostgreSQL a
    transaction that commits after a refresh with a transition id below its watermark is seen at the next
    refresh, which re-reads :data:`OVERLAP` transitions: a lag of at most a minute for that event.)"""
    mark = conn.execute(select(RollupState.watermark).where(RollupState.name == NAME)).scalar_one_or_none()
    if mark is None:
        return None
    latest = _latest(conn)
    if latest <= mark:
        return {}
    return _touched_keys(conn, mark, latest, limit=PATCH_ABOVE)


def rollup_inside(keys: dict[date, set[int]], model=EventDaily):
    """A clause on a rollup table keyed by day and grid: one of ``keys`` (which must not be empty)."""
    return or_(*(and_(model.day == d, model.grid_id.in_(g)) for d, g in keys.items()))


def rollup_outside(keys: dict[date, set[int]], model=EventDaily) -> list:
    """Clauses on a rollup table keyed by day and grid (``event_daily`` unless ``model``) leaving out ``keys``."""
    return [not_(rollup_inside(keys, model))] if keys else []


def events_inside(keys: dict[date, set[int]]):
    """A clause on ``events``: reported on one of the ``keys``' days in one of its grids."""
    return or_(
        *(
            and_(
                Event.reported_at >= datetime.combine(d, datetime.min.time()),
                Event.reported_at < datetime.combine(d + timedelta(days=1), datetime.min.time()),
                Event.grid_id.in_(g),
            )
            for d, g in keys.items()
        )
    )


def _save_state(
    conn: Connection, watermark: int, now: datetime, rebuilt: bool, kept: date, pending: dict[int, int]
) -> None:
    old = state(conn)
    waiting = json.dumps({str(x): floor for x, floor in sorted(pending.items())}) if pending else None
    if old is None:
        conn.execute(
            insert(RollupState),
            {
                "name": NAME,
                "watermark": watermark,
                "rebuilt_at": now,
                "refreshed_at": now,
                "kept_from": kept,
                "pending": waiting,
            },
        )
        return
    values = {"watermark": watermark, "refreshed_at": now, "kept_from": kept, "pending": waiting} | (
        {"rebuilt_at": now} if rebuilt else {}
    )
    conn.execute(update(RollupState).where(RollupState.name == NAME).values(**values))


def rebuild(uow: UnitOfWork, now: datetime) -> int:
    """Recompute the whole rollup from raw events in one unit of work; returns its rows."""
    with uow.begin("rollups.rebuild"):
        before = state(uow.conn)
        rows, mark = _rebuild_in(uow.conn, now)
        _audit(uow.conn, "rollups.rebuild", before, {"watermark": mark, "rows": rows}, now)
        uow.commit()
    return rows


def rebuild_in(conn: Connection, now: datetime) -> tuple[int, int]:
    """:func:`rebuild` inside a caller's transaction (a boundary replace that moved events): rows and
    watermark; the caller's audit row covers it."""
    return _rebuild_in(conn, now)


def _rebuild_in(conn: Connection, now: datetime, seen: dict[int, int] | None = None) -> tuple[int, int]:
    """Every table again from raw events. ``seen``: the writers a refresh saw open before (kept, with
    their floors, while they stay open)."""
    # read first: what commits meanwhile is recomputed by the next refresh; a writer open now re-read from
    # its floor (one seen before) or from OVERLAP below the mark (its first ids are unknown)
    mark, open_now = _mark_and_open(conn)
    earlier = seen or {}
    waiting = {x: earlier.get(x, max(0, mark - OVERLAP)) for x in open_now}
    for model in TABLES:
        conn.execute(delete(model))
    _insert(conn)
    _insert_derived(conn)
    _insert_categories(conn)
    _insert_totals(conn)
    kept = now.date() - timedelta(days=RECENT_DAYS)
    _insert_recent(conn, kept)
    update_near(conn)
    rows = conn.execute(select(func.count()).select_from(EventDaily)).scalar_one()
    _save_state(conn, mark, now, rebuilt=True, kept=kept, pending=waiting)
    return rows, mark


def _audit(conn: Connection, action: str, before: Row | None, after: dict, now: datetime) -> None:
    audit.record(
        conn,
        actor_id=None,
        actor_role="system",
        action=action,
        entity="rollup_state",
        entity_id=None,
        before=None if before is None else {"watermark": before.watermark},
        after=after,
        at=now,
    )


def _touched_keys(
    conn: Connection, since: int, upto: int, limit: int | None = None
) -> dict[date, set[int]] | None:
    """Day → grids of the events with a transition in (since, upto] and of their merge targets;
    None when there are too many (rebuild instead)."""
    ids = set(
        conn.execute(
            select(EventTransition.event_id)
            .where(EventTransition.id > since, EventTransition.id <= upto)
            .distinct()
        ).scalars()
    )
    if len(ids) > (REBUILD_ABOVE if limit is None else limit):
        return None
    keys: dict[date, set[int]] = defaultdict(set)
    day = day_of(conn.dialect.name)
    pending = ids
    while pending:
        chunk = sorted(pending)[:5000]
        pending = pending - set(chunk)
        rows = conn.execute(select(day, Event.grid_id, Event.merged_into_id).where(Event.id.in_(chunk))).all()
        for d, grid, target in rows:
            keys[_as_date(d)].add(grid)
            if target is not None and target not in ids:
                ids.add(target)
                pending = pending | {target}
    return keys


def _as_date(d) -> date:
    return d if isinstance(d, date) else date.fromisoformat(str(d)[:10])


def refresh(uow: UnitOfWork, now: datetime) -> int:
    """Fold in the events changed since the watermark; returns the (day, grid) keys recomputed, or the
    rollup's rows after a rebuild (no rollup yet, or too much changed). Nothing is written when nothing
    changed (0)."""
    target = uow.engine
    if isinstance(target, Connection) and _settled(target):  # joined into a caller's transaction
        return 0
    if not isinstance(target, Connection):
        with target.connect() as conn:
            if _settled(conn):
                return 0
    with uow.begin("rollups.refresh"):
        conn = uow.conn
        old = state(conn)
        earlier = _pending_of(old)
        mark, open_now = _mark_and_open(conn)
        postgres = conn.dialect.name == "postgresql"
        if old is not None and postgres:
            # from OVERLAP below the watermark, or lower: the floor of a writer open at the last refresh
            # (its rows may have committed since, below the watermark), at most MAX_REREAD below it
            since = min([old.watermark - OVERLAP, *earlier.values()])
            since = max(0, since, old.watermark - MAX_REREAD)
        else:
            since = 0 if old is None else old.watermark
        # a writer open now and not at the last refresh drew its first id after that refresh read
        waiting = {x: earlier.get(x, max(0, (old.watermark if old else mark) - OVERLAP)) for x in open_now}
        # No rollup, or one without recent reports (kept_from unset): rebuilt.
        keys = None if old is None or old.kept_from is None else _touched_keys(conn, since, mark)
        if old is None or old.kept_from is None or keys is None:
            n, mark = _rebuild_in(conn, now, earlier)
            after = {"watermark": mark, "rows": n}
        else:
            kept = _as_date(old.kept_from)
            n, moved = _recompute(conn, keys, kept)
            newer = now.date() - timedelta(days=RECENT_DAYS)
            if newer > kept:  # the days that fell out of the window: every count of neighbours again
                conn.execute(
                    delete(EventRecentReport).where(
                        EventRecentReport.reported_at < datetime.combine(newer, datetime.min.time())
                    )
                )
                kept = newer
                update_near(conn)
            else:
                update_near(conn, moved)
            _save_state(conn, mark, now, rebuilt=False, kept=kept, pending=waiting)
            after = {"watermark": mark, "keys": n}
        _audit(conn, "rollups.refresh", old, after, now)
        uow.commit()
    return n


def _recompute(conn: Connection, keys: dict[date, set[int]], kept: date) -> tuple[int, set[int]]:
    """Delete and recompute the rollup rows of ``keys`` (day → grids): ``event_daily`` and
    ``event_category_daily`` from raw events, ``event_grid_daily`` of those keys and
    ``event_department_daily`` of those days from ``event_daily`` and ``event_township_daily`` of those
    days from ``event_grid_daily``, the grids' totals from raw events,
    the reports of those keys from ``kept`` on. Returns the keys recomputed and the place cells of the
    recent reports removed or written (whose neighbours' ``near`` may have moved)."""
    n = 0
    moved: set[int] = set()
    for d, grids in sorted(keys.items()):
        start = datetime.combine(d, datetime.min.time())
        for chunk in _chunks(sorted(grids), 1000):
            for model in (EventDaily, EventGridDaily, EventCategoryDaily):
                conn.execute(delete(model).where(model.day == d, model.grid_id.in_(chunk)))
            raw = (
                Event.reported_at >= start,
                Event.reported_at < start + timedelta(days=1),
                Event.grid_id.in_(chunk),
            )
            _insert(conn, *raw)
            _insert_categories(conn, *raw)
            if d >= kept:
                these = (
                    EventRecentReport.reported_at >= start,
                    EventRecentReport.reported_at < start + timedelta(days=1),
                    EventRecentReport.grid_id.in_(chunk),
                )
                moved |= _recent_cells(conn, *these)
                conn.execute(delete(EventRecentReport).where(*these))
                _insert_recent(conn, kept, *raw)
                moved |= _recent_cells(conn, *these)
            conn.execute(
                insert(EventGridDaily).from_select(
                    ["day", "grid_id", *SUMS],
                    _derived(EventGridDaily, "grid_id", EventDaily.day == d, EventDaily.grid_id.in_(chunk)),
                )
            )
            n += len(chunk)
        conn.execute(delete(EventTownshipDaily).where(EventTownshipDaily.day == d))
        _insert_townships(conn, EventGridDaily.day == d)
        conn.execute(delete(EventDepartmentDaily).where(EventDepartmentDaily.day == d))
        conn.execute(
            insert(EventDepartmentDaily).from_select(
                ["day", "department_id", *SUMS],
                _derived(EventDepartmentDaily, "department_id", EventDaily.day == d),
            )
        )
    for chunk in _chunks(sorted(set().union(*keys.values())) if keys else [], 1000):
        conn.execute(delete(EventGridTotal).where(EventGridTotal.grid_id.in_(chunk)))
        _insert_totals(conn, EventGridDaily.grid_id.in_(chunk))
    return n, moved


def _chunks(items: list[int], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _key(values) -> tuple:
    return tuple(
        _as_date(v) if isinstance(v, date | datetime) or (isinstance(v, str) and v[:1].isdigit()) else v
        for v in (getattr(x, "value", x) for x in values)
    )


def _checks(dialect: str):
    """Per table: its label, key columns' labels, value columns, the raw aggregation, the stored rows."""

    def stored(model, keys, values):
        return select(*(getattr(model, c) for c in [*keys, *values]))

    yield "", ["日期", "网格", "部门"], SUMS, _aggregate(dialect), stored(EventDaily, KEYS, SUMS)
    yield (
        "按网格",
        ["日期", "网格"],
        SUMS,
        _grid_aggregate(dialect),
        stored(EventGridDaily, ["day", "grid_id"], SUMS),
    )
    yield (
        "按乡镇",
        ["日期", "乡镇"],
        SUMS,
        _township_raw_aggregate(dialect),
        stored(EventTownshipDaily, ["day", "township_id"], SUMS),
    )
    yield (
        "按部门",
        ["日期", "部门"],
        SUMS,
        _department_aggregate(dialect),
        stored(EventDepartmentDaily, ["day", "department_id"], SUMS),
    )
    yield (
        "按类别",
        ["日期", "网格", "类别"],
        ["counted"],
        category_aggregate(dialect),
        stored(EventCategoryDaily, ["day", "grid_id", "category"], ["counted"]),
    )
    yield (
        "网格累计",
        ["网格"],
        ["all_events"],
        _totals_aggregate(),
        stored(EventGridTotal, ["grid_id"], ["all_events"]),
    )


def _recent_differences(conn: Connection) -> list[str]:
    """Reports whose ``event_recent_reports`` row differs from the event (or is missing, or left over)."""
    kept = kept_from(conn)
    if kept is None:
        return []
    since = datetime.combine(kept, datetime.min.time())

    def by_id(rows):
        return {int(r.id): tuple(getattr(r[c], "value", r[c]) for c in RECENT_COLUMNS) for r in rows}

    raw = by_id(conn.execute(_recent(Event.reported_at >= since)).mappings().all())
    stored = by_id(
        conn.execute(
            select(*(getattr(EventRecentReport, c) for c in RECENT_COLUMNS)).where(
                EventRecentReport.reported_at >= since
            )
        )
        .mappings()
        .all()
    )
    return [
        f"近期上报 事件 {i}：原始 {raw.get(i)} 汇总 {stored.get(i)}"
        for i in sorted(raw.keys() | stored.keys())
        if raw.get(i) != stored.get(i)
    ]


def _near_differences(conn: Connection) -> list[str]:
    """Recent reports whose ``near`` is not the count of their matter nearby (the rows themselves are
    checked against the events by :func:`_recent_differences`)."""
    rows = _near_rows(conn)
    near, _cells = _near_of(rows)
    out = [
        f"近期上报 事件 {r[2]}：附近同类事项 原始 {n or 1} 汇总 {r[7] or 1}"
        for r, n in zip(rows, near, strict=True)
        if n != r[7]
    ]
    missing = conn.execute(
        select(EventRecentReport.id).where(
            or_(EventRecentReport.lon.is_(None), EventRecentReport.lat.is_(None)),
            EventRecentReport.near.is_not(None),
        )
    ).scalars()
    return out + [f"近期上报 事件 {i}：无位置却有附近同类事项计数" for i in missing]


def differences(conn: Connection, limit: int = 20) -> list[str]:
    """Keys where a rollup table and the raw aggregation differ (at most ``limit``), as readable lines."""
    out: list[str] = (_recent_differences(conn) + _near_differences(conn))[:limit]
    if len(out) >= limit:
        return out
    for label, names, values, raw_query, stored_query in _checks(conn.dialect.name):
        n = len(names)
        raw = {_key(r[:n]): r[n:] for r in conn.execute(raw_query).all()}
        rolled = {_key(r[:n]): r[n:] for r in conn.execute(stored_query).all()}
        for key in sorted(raw.keys() | rolled.keys(), key=lambda k: tuple(map(str, k))):
            a, b = raw.get(key), rolled.get(key)
            if a is None or b is None or not _same(a, b):
                a, b = a or (0,) * len(values), b or (0,) * len(values)
                changed = [
                    f"{c} 原始 {x} 汇总 {y}"
                    for c, x, y in zip(values, a, b, strict=True)
                    if not _same([x], [y])
                ]
                where = " ".join(
                    f"{name} {k.isoformat() if isinstance(k, date) else k}"
                    for name, k in zip(names, key, strict=True)
                )
                out.append(f"{label + ' ' if label else ''}{where}：{'，'.join(changed)}")
                if len(out) >= limit:
                    return out
    return out


def _same(a, b) -> bool:
    return all(
        abs(float(x or 0) - float(y or 0)) <= 1e-6 * max(1.0, abs(float(x or 0)))
        for x, y in zip(a, b, strict=True)
    )


def main(argv: list[str]) -> int:
    from db.engine import database_url, make_engine
    from db.migrate import upgrade
    from services import clock

    if len(argv) != 1 or argv[0] not in ("rebuild", "refresh", "check", "tidy"):
        print("用法：python -m services.rollups rebuild|refresh|check|tidy", file=sys.stderr)
        return 2
    engine = make_engine(database_url())
    upgrade(engine)
    uow = UnitOfWork(engine)
    if argv[0] == "rebuild":
        print(f"汇总表已重建：{rebuild(uow, clock.now())} 行")
        for line in tidy(engine):  # PostgreSQL: the rebuilt tables analyzed and vacuumed at once
            print(f"汇总表整理：{line}")
    elif argv[0] == "tidy":
        print(f"汇总表整理：{'；'.join(tidy(engine)) or '无需整理（SQLite 表本身按键有序）'}")
    elif argv[0] == "refresh":
        print(f"汇总表已更新：{refresh(uow, clock.now())} 个（日期、网格）")
    else:
        with engine.connect() as conn:
            diff = differences(conn)
            ok = fresh(conn)
        for line in diff:
            print(line)
        if diff or not ok:
            print(
                f"汇总表与原始事件不一致：{len(diff)} 处差异{'' if ok else '，且水位落后'}", file=sys.stderr
            )
            return 1
        print("汇总表与原始事件一致")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
