"""Hazard forecast use cases (decision 0030): train a version, score every venue, activate or roll back.

Reads hand :mod:`domain.forecast` plain frames of the store's own columns (:data:`STORE_COLUMNS`) with
positions projected to metres here (:func:`geo.crs.to_metres`). Writes go through a unit of work
with a trail row; every version is kept, one is active, the previous one is a rollback away.

Scoring stores every venue's probability and severity weight, not its "为什么优先" (decision 0037):
:func:`explanations` makes that for the venues a person is shown, from the active version and the
venue's records as of the day it was scored — the same items the venue would get among all of them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Connection,
    Executable,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite

from db.frames import rows_frame
from db.models import Event, ForecastModel, Hazard, Inspection, SafetyCodeChange, Venue, VenueForecast
from db.uow import UnitOfWork
from domain import forecast as fc
from domain.vocabulary import InspectionResult
from geo.crs import to_metres
from services import audit
from services.geography import tree as store_tree
from services.planning import fetch_raw, fetch_tuples, metric_crs

#: Events read before the first inspection (the longest feature window).
EVENT_LOOKBACK_DAYS = max(fc.WINDOWS)
#: Venues explained per read of their records (bounds every ``IN`` list).
EXPLAIN_BATCH = 500
#: ``explanation_json`` of a stored score: made on read (:func:`explanations`), not when scoring.
ON_READ = ""
#: Cells of the nearby events read for a few venues: 1/200 of a degree (about 0.55 km north–south).
CELLS_PER_DEGREE = 200
CELL_KEY = 100_000  # a cell's key: its row × this + its column (columns < 360 × 200)


class NotEnoughHistory(ValueError):
    """The store's history cannot train a model yet (the message says why, in Chinese)."""


@dataclass(frozen=True)
class TrainResult:
    version: int
    model_id: int
    cutoff: date
    metrics: dict
    seconds: float
    rows: int


def _chunks(ids: Sequence[int], size: int = EXPLAIN_BATCH) -> Iterator[list[int]]:
    for k in range(0, len(ids), size):
        yield list(ids[k : k + size])


def _frame(conn: Connection, columns, table: str, *where) -> pd.DataFrame:
    names = list(fc.STORE_COLUMNS[table])
    query = select(*[getattr(columns, c) for c in names])
    for w in where:
        query = query.where(w)
    # Raw values (the domain parses them column-wise), straight into a frame: at city scale (a million
    # inspections) the row-by-row frame builder took twice as long. (Building it column by column as plain
    # objects was slower still: 2.5 s against 1.5 s for the half million events.)
    return pd.DataFrame(fetch_raw(conn, query), columns=names)


def _values(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Enum members as their values (the domain compares values), looked up once per distinct value."""
    col = frame[column]
    frame[column] = col.map({u: getattr(u, "value", u) for u in pd.unique(col)})
    return frame


def _projected(frame: pd.DataFrame, crs: str | None) -> pd.DataFrame:
    if frame.empty:
        return frame.assign(x_m=pd.Series(dtype=float), y_m=pd.Series(dtype=float))
    xy = np.asarray(to_metres(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), crs)).reshape(-1, 2)
    return frame.assign(x_m=xy[:, 0], y_m=xy[:, 1])


def visit_stats(conn: Connection, until: date, venue_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """:func:`domain.forecast.visit_stats` as of ``until``, computed by the store in one grouped query
    (at city scale, instead of reading a million inspections into Python); of ``venue_ids`` only if
    given (at most :data:`EXPLAIN_BATCH`: read on their index)."""
    end = datetime.combine(until, datetime.min.time())
    recent = datetime.combine(until - timedelta(days=90), datetime.min.time())
    grouped = (
        select(
            Inspection.venue_id,
            func.count(),
            func.sum(case((Inspection.inspected_at >= recent, 1), else_=0)),
            func.sum(case((Inspection.result == InspectionResult.FAIL, 1), else_=0)),
            func.max(Inspection.inspected_at),
            func.min(Inspection.inspected_at),
        )
        .where(Inspection.inspected_at < end)
        .group_by(Inspection.venue_id)
    )
    if venue_ids is not None:
        grouped = grouped.where(Inspection.venue_id.in_([int(v) for v in venue_ids]))
    query: Executable = grouped
    if conn.dialect.name == "sqlite" and venue_ids is None:
        # SQLite would walk the (venue, time) index and fetch each row's result from the table at random
        # (13 s at city scale); a table scan grouped in a temporary B-tree takes a fifth of that.
        # SQLAlchemy renders no table hint on SQLite, so the same statement goes as text.
        compiled = grouped.compile(dialect=sqlite.dialect(paramstyle="named"))
        sql = str(compiled).replace("FROM inspections ", "FROM inspections NOT INDEXED ", 1)
        binds = [bindparam(k, v, type_=compiled.binds[k].type) for k, v in compiled.params.items()]
        query = text(sql).bindparams(*binds)
    frame = pd.DataFrame(fetch_raw(conn, query), columns=["venue_id", *fc.VISIT_STATS])
    for col in ("inspections_all", "inspections_90", "fails_all"):
        frame[col] = frame[col].astype(float)
    return frame.set_index(frame["venue_id"].astype(np.int64)).drop(columns="venue_id")


def load_history(
    conn: Connection, until: date, *, scoring: bool = False, venue_ids: Sequence[int] | None = None
) -> tuple[fc.History, date | None]:
    """The store's records before ``until`` as the forecast reads them, and the first inspection day.

    Events from the longest feature window before the first inspection (training cut-offs start there),
    or before ``until`` alone when ``scoring`` (then no inspection is read: :func:`visit_stats` stands in
    for them). ``venue_ids`` (at most :data:`EXPLAIN_BATCH`; implies ``scoring``): those venues, active
    or not, their own records, and of the events every one their features count — those in their grids
    and those within :data:`domain.forecast.RADIUS_M` (read by the cells around them, a superset:
    :func:`_events_counted_for`) — so their features are those they get among every venue.
    """
    end = datetime.combine(until, datetime.min.time())
    first_at = conn.execute(select(func.min(Inspection.inspected_at))).scalar()
    first = first_at.date() if first_at is not None else None
    scoring = scoring or venue_ids is not None
    oldest = until if scoring or first is None else first
    since = datetime.combine(oldest - timedelta(days=EVENT_LOOKBACK_DAYS), datetime.min.time())
    crs = metric_crs(store_tree(conn))
    ids = None if venue_ids is None else [int(v) for v in venue_ids]
    venues = _values(
        _frame(conn, Venue, "venues", Venue.is_active if ids is None else Venue.id.in_(ids)), "category"
    )
    own = () if ids is None else (SafetyCodeChange.venue_id.in_(ids),)
    changes = _values(
        _frame(conn, SafetyCodeChange, "safety_code_changes", SafetyCodeChange.changed_at < end, *own),
        "to_code",
    )
    if scoring:  # the visits are read as :func:`visit_stats`; the frame stays, empty
        inspections = pd.DataFrame({c: pd.Series(dtype=object) for c in fc.STORE_COLUMNS["inspections"]})
    else:
        inspections = _values(
            _frame(conn, Inspection, "inspections", Inspection.inspected_at < end), "result"
        )
    own = () if ids is None else (Hazard.venue_id.in_(ids),)
    hazards = _values(_frame(conn, Hazard, "hazards", Hazard.found_on < until, *own), "severity")
    window = (Event.reported_at >= since, Event.reported_at < end)
    events = _values(
        _frame(conn, Event, "events", *window) if ids is None else _events_counted_for(conn, venues, window),
        "category",
    )
    history = fc.History.of(_projected(venues, crs), changes, inspections, hazards, _projected(events, crs))
    return history, first


def _events_counted_for(conn: Connection, venues: pd.DataFrame, window: tuple) -> pd.DataFrame:
    """Of the events in ``window``, every one :func:`domain.forecast.features` may count for these
    venues (a superset): those in their grids (read on the grid index), and of the others those in the
    cells (:data:`CELLS_PER_DEGREE`) that cover a box around each venue twice
    :data:`domain.forecast.RADIUS_M` wide, in degrees at the venue's latitude plus the box's (the exact
    radius is the feature's own test). One pass over the window's events, filtered in the store."""
    if venues.empty:
        return _frame(conn, Event, "events", false())
    grids = sorted({int(g) for g in venues["grid_id"]})
    in_grids = _frame(conn, Event, "events", *window, Event.grid_id.in_(grids))
    dlat = 2.0 * fc.RADIUS_M / 111_000.0
    keys: set[int] = set()
    for lon, lat in zip(venues["lon"].to_numpy(float), venues["lat"].to_numpy(float), strict=True):
        dlon = dlat / math.cos(math.radians(min(abs(lat) + dlat, 89.0)))
        for i in range(_cell(lat - dlat, 90.0), _cell(lat + dlat, 90.0) + 1):
            for j in range(_cell(lon - dlon, 180.0), _cell(lon + dlon, 180.0) + 1):
                keys.add(i * CELL_KEY + j)
    near = _cell_key(conn).in_(sorted(keys))
    others = _frame(conn, Event, "events", *window, Event.grid_id.not_in(grids), near)
    return pd.concat([in_grids, others], ignore_index=True)


def _cell(degrees: float, offset: float) -> int:
    """The row (``offset`` 90, of a latitude) or column (180, of a longitude) of a cell, as the store
    computes it (:func:`_cell_key`: the same IEEE operations, so the same cell)."""
    return math.floor((degrees + offset) * CELLS_PER_DEGREE)


def _cell_key(conn: Connection):
    row, col = (Event.lat + 90.0) * CELLS_PER_DEGREE, (Event.lon + 180.0) * CELLS_PER_DEGREE
    if conn.dialect.name == "sqlite":  # CAST truncates, the floor of a non-negative number
        return cast(row, BigInteger) * CELL_KEY + cast(col, BigInteger)
    return cast(func.floor(row), BigInteger) * CELL_KEY + cast(func.floor(col), BigInteger)


def train(
    uow: UnitOfWork, now: datetime, *, actor_id: int | None = None, actor_role: str | None = None
) -> TrainResult:
    """Train a new version on the store up to today, validate it on the last 30 days, store and activate it
    (the previous version stays for :func:`rollback`), then score every venue with it."""
    t0 = time.perf_counter()
    today = now.date()
    with uow.reader() as conn:
        history, first = load_history(conn, today)
    if first is None:
        raise NotEnoughHistory("尚无检查记录，无法训练隐患预测模型")
    try:
        trained = fc.train(history, first, today)
    except ValueError as exc:
        raise NotEnoughHistory(str(exc)) from exc
    seconds = round(time.perf_counter() - t0, 2)
    metrics = trained.validation.as_dict() | {"train_s": seconds, "medians": trained.medians}
    who = audit.who(None) if actor_id is None else {"actor_id": actor_id, "actor_role": actor_role or ""}
    with uow.begin("forecast.train"):
        conn = uow.conn
        version = (
            int(conn.execute(select(func.coalesce(func.max(ForecastModel.version), 0))).scalar_one()) + 1
        )
        before = _active_version(conn)
        conn.execute(update(ForecastModel).values(is_active=False))
        model_id = conn.execute(
            insert(ForecastModel).returning(ForecastModel.id),
            {
                "version": version,
                "created_at": now,
                "cutoff": trained.cutoff,
                "features_json": json.dumps(fc.FEATURES),
                "metrics_json": json.dumps(_finite(metrics), ensure_ascii=False),
                "model_blob": fc.dumps(trained.model),
                "is_active": True,
            },
        ).scalar_one()
        audit.record(
            conn, **who, action="forecast.train", entity="forecast_models", entity_id=model_id,
            before={"active_version": before},
            after={"version": version, "cutoff": trained.cutoff, "auc": metrics["auc"], "brier": metrics["brier"]},
            at=now,
        )  # fmt: skip
        uow.commit()
    score(uow, now)
    return TrainResult(version, model_id, trained.cutoff, metrics, seconds, trained.validation.rows_train)


def _finite(d):
    if isinstance(d, dict):
        return {k: _finite(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_finite(v) for v in d]
    if isinstance(d, float) and math.isnan(d):
        return None
    return d


def _active_version(conn: Connection) -> int | None:
    return conn.execute(select(ForecastModel.version).where(ForecastModel.is_active)).scalar()


def score_frame(conn: Connection, day: date, model) -> pd.DataFrame:
    """Every active venue's forecast as of ``day``: probability and severity weight (what the plans and
    the map read). No explanation: :func:`explanations` makes it for the venues shown (decision 0037)."""
    history, _ = load_history(conn, day, scoring=True)
    x = fc.features(history, day, visit_stats(conn, day))
    prob = fc.predict(model, x)
    sev = fc.severity_weight(history, day).reindex(x.index).fillna(1.0)
    return pd.DataFrame(
        {
            "venue_id": x.index.to_numpy(dtype=np.int64),
            "probability": prob,
            "severity": sev.to_numpy(dtype=float),
        }
    )


def score(uow: UnitOfWork, now: datetime) -> int:
    """Score every active venue with the active version (replacing its earlier scores); venues scored."""
    with uow.reader() as conn:
        active = conn.execute(
            select(ForecastModel.id, ForecastModel.model_blob).where(ForecastModel.is_active)
        ).first()
        if active is None:
            return 0
        model_id, blob = active
        frame = score_frame(conn, now.date(), fc.loads(blob))
    rows = [
        {
            "model_id": model_id,
            "venue_id": int(r.venue_id),
            "scored_on": now.date(),
            "probability": float(r.probability),
            "severity": float(r.severity),
            "explanation_json": ON_READ,
        }
        for r in frame.itertuples(index=False)
    ]
    with uow.begin("forecast.score"):
        conn = uow.conn
        conn.execute(delete(VenueForecast).where(VenueForecast.model_id == model_id))
        if rows:
            conn.execute(insert(VenueForecast), rows)
        audit.record(
            conn, **audit.who(None), action="forecast.score", entity="forecast_models", entity_id=model_id,
            before=None, after={"venues": len(rows), "scored_on": now.date()}, at=now,
        )  # fmt: skip
        uow.commit()
    return len(rows)


def activate(uow: UnitOfWork, version: int, now: datetime, *, actor_id: int | None, actor_role: str) -> None:
    """Make ``version`` the active one (a rollback or a roll forward), with a trail row; then rescore."""
    with uow.begin("forecast.activate"):
        conn = uow.conn
        target = conn.execute(select(ForecastModel.id).where(ForecastModel.version == version)).scalar()
        if target is None:
            raise ValueError(f"模型版本 {version} 不存在")
        before = _active_version(conn)
        conn.execute(update(ForecastModel).values(is_active=ForecastModel.version == version))
        audit.record(
            conn, actor_id=actor_id, actor_role=actor_role, action="forecast.activate",
            entity="forecast_models", entity_id=target,
            before={"active_version": before}, after={"active_version": version}, at=now,
        )  # fmt: skip
        uow.commit()
    score(uow, now)


def rollback(uow: UnitOfWork, now: datetime, *, actor_id: int | None, actor_role: str) -> int:
    """Activate the version before the active one; returns it."""
    with uow.reader() as conn:
        active = _active_version(conn)
        previous = conn.execute(
            select(func.max(ForecastModel.version)).where(ForecastModel.version < (active or 0))
        ).scalar()
    if previous is None:
        raise ValueError("没有可回退的上一版本模型")
    activate(uow, int(previous), now, actor_id=actor_id, actor_role=actor_role)
    return int(previous)


# -- reads ------------------------------------------------------------------------------------


def model_card(conn: Connection) -> dict | None:
    """The active version's validation card: version, cut-off, created, figures (None: no model yet)."""
    row = conn.execute(
        select(
            ForecastModel.version, ForecastModel.cutoff, ForecastModel.created_at, ForecastModel.metrics_json
        ).where(ForecastModel.is_active)
    ).first()
    if row is None:
        return None
    metrics = json.loads(row.metrics_json)
    metrics.pop("medians", None)
    return {"version": row.version, "cutoff": row.cutoff, "created_at": row.created_at} | metrics


def versions(conn: Connection) -> pd.DataFrame:
    rows = fetch_tuples(
        conn,
        select(
            ForecastModel.version, ForecastModel.cutoff, ForecastModel.created_at, ForecastModel.is_active
        ).order_by(ForecastModel.version.desc()),
    )
    return rows_frame(rows, ["version", "cutoff", "created_at", "is_active"])


def venue_forecasts(conn: Connection, grid_ids: list[int] | None = None) -> pd.DataFrame:
    """The active version's scores (of the venues in ``grid_ids``, all if None): venue_id, name,
    category, code, probability, severity, expected (probability × severity), scored_on. No "为什么优先":
    :func:`with_why` adds it to the rows shown."""
    query = (
        select(
            VenueForecast.venue_id, Venue.name, Venue.category, Venue.safety_code,
            VenueForecast.probability, VenueForecast.severity, VenueForecast.scored_on,
        )
        .join(ForecastModel, ForecastModel.id == VenueForecast.model_id)
        .join(Venue, Venue.id == VenueForecast.venue_id)
        .where(ForecastModel.is_active)
    )  # fmt: skip
    if grid_ids is not None:
        query = query.where(Venue.grid_id.in_(list(grid_ids) or [-1]))
    names = ["venue_id", "name", "category", "code", "probability", "severity", "scored_on"]
    frame = rows_frame(fetch_tuples(conn, query), names)
    for col in ("category", "code"):
        frame[col] = frame[col].map(lambda x: getattr(x, "value", x))
    frame["expected"] = frame["probability"] * frame["severity"]
    return frame


def explanations(conn: Connection, venue_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The "为什么优先" items (:func:`domain.forecast.explain`) of those of ``venue_ids`` the active version
    scored, made now (decision 0037): from the version's model and training medians and each venue's
    features as of the day it was scored (its records before that day, read for these venues only), so
    they explain the stored probability and equal what scoring every venue with explanations gave."""
    ids = sorted({int(v) for v in venue_ids})
    active = conn.execute(
        select(ForecastModel.id, ForecastModel.model_blob, ForecastModel.metrics_json).where(
            ForecastModel.is_active
        )
    ).first()
    if not ids or active is None:
        return {}
    model_id, blob, metrics = active
    days: dict[date, list[int]] = {}
    for part in _chunks(ids):
        rows = fetch_tuples(
            conn,
            select(VenueForecast.venue_id, VenueForecast.scored_on).where(
                VenueForecast.model_id == model_id, VenueForecast.venue_id.in_(part)
            ),
        )
        for vid, day in rows:
            days.setdefault(day, []).append(int(vid))
    model, medians = fc.loads(blob), json.loads(metrics).get("medians", {})
    out: dict[int, list[dict[str, Any]]] = {}
    for day, vids in sorted(days.items()):
        for part in _chunks(sorted(vids)):
            history, _ = load_history(conn, day, venue_ids=part)
            out |= fc.explain_venues(model, fc.features(history, day, visit_stats(conn, day, part)), medians)
    return out


def why_texts(conn: Connection, venue_ids: Iterable[int]) -> dict[int, str]:
    """Each venue's "为什么优先" line (:func:`domain.forecast.reason_text` of :func:`explanations`)."""
    return {vid: fc.reason_text(items) for vid, items in explanations(conn, venue_ids).items()}


def with_why(conn: Connection, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows of :func:`venue_forecasts`: the ones shown) with its ``why`` column made now."""
    texts = why_texts(conn, frame["venue_id"].tolist())
    return frame.assign(why=[texts.get(int(v), "") for v in frame["venue_id"]])


def active_summary(conn: Connection) -> tuple[int, datetime] | None:
    """The active version and when it was trained (None: no model yet); a cheap read for a page's toggle."""
    row = conn.execute(
        select(ForecastModel.version, ForecastModel.created_at).where(ForecastModel.is_active)
    ).first()
    return None if row is None else (int(row[0]), row[1])


DENSITY_COLUMNS = ["venues", "expected", "per_100"]


def area_density(conn: Connection, tree, unit_ids: list[int]) -> pd.DataFrame | None:
    """Forecast hazard density of each unit in ``unit_ids`` by the active version (None: no model).

    ``venues``: active venues scored; ``expected``: the sum of their probabilities (venues where a visit
    within 30 days is expected to find a hazard); ``per_100``: that per 100 venues (NaN: no venue). Per
    venue, not per km² (decision 0036): a unit's venue count varies a hundredfold, and per km² would redraw
    where venues are rather than where a visit is likeliest to find something.
    """
    active = conn.execute(select(ForecastModel.id).where(ForecastModel.is_active)).scalar()
    if active is None:
        return None
    rows = fetch_tuples(
        conn,
        select(Venue.grid_id, func.count(), func.sum(VenueForecast.probability))
        .join(Venue, Venue.id == VenueForecast.venue_id)
        .where(VenueForecast.model_id == active, Venue.is_active)
        .group_by(Venue.grid_id),
    )
    per_grid = rows_frame(rows, ["grid_id", "venues", "expected"]).set_index("grid_id").astype(float)
    out = []
    for u in unit_ids:
        part = per_grid.reindex(tree.grids_under(u)).dropna()
        venues, expected = float(part["venues"].sum()), float(part["expected"].sum())
        out.append((u, venues, expected, 100.0 * expected / venues if venues else math.nan))
    return pd.DataFrame(out, columns=["unit_id", *DENSITY_COLUMNS]).set_index("unit_id")
