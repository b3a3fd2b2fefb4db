"""Risk of every area as of a date: inputs counted per grid in SQL, rolled up, scored by domain.risk.

The past is recomputed from stored history: a venue's colour from its 平安码 changes, hazards open
on that day from found/rectified dates, overdue visits from the last inspection before that day.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, DateTime, String, and_, case, func, literal, or_, select, type_coerce

from db.models import Event, Hazard, Inspection, SafetyCodeChange, Venue
from db.uow import UnitOfWork
from domain.hierarchy import ancestor_table, rollup
from domain.risk import (
    CATEGORY_BASE,
    RiskClass,
    RiskInputs,
    RiskModel,
    Thresholds,
    classify,
    explain,
    has_data_many,
    score_many,
)
from domain.safety_code import CADENCE_DAYS
from domain.vocabulary import EventCategory, HazardSeverity, SafetyCode
from services import settings
from services.access import out_of_scope
from services.overview import unit_table

# Event categories that count as safety-related for the map (安全生产, 治安隐患, 自然灾害防治).
SAFETY_CATEGORIES = [EventCategory.WORK_SAFETY, EventCategory.PUBLIC_SECURITY, EventCategory.NATURAL_HAZARD]
EVENT_WINDOW_DAYS = 30
THRESHOLDS_KEY = "risk.thresholds"
INPUT_FIELDS = [f.name for f in fields(RiskInputs) if f.name != "population"]


def _day_end(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), datetime.min.time())


def _latest_codes(end: datetime):
    """Per venue, the 平安码 of its last recorded change before ``end`` (a subquery: venue_id, to_code)."""
    ranked = (
        select(
            SafetyCodeChange.venue_id,
            type_coerce(SafetyCodeChange.to_code, String).label("to_code"),
            func.row_number()
            .over(
                partition_by=SafetyCodeChange.venue_id,
                order_by=(SafetyCodeChange.changed_at.desc(), SafetyCodeChange.id.desc()),
            )
            .label("rn"),
        )
        .where(SafetyCodeChange.changed_at < end)
        .subquery()
    )
    return select(ranked.c.venue_id, ranked.c.to_code).where(ranked.c.rn == 1).subquery()


def venue_colours(conn: Connection, as_of: date) -> pd.DataFrame:
    """Every venue existing on ``as_of`` with its grid, category and colour on that day."""
    end = _day_end(as_of)
    latest = _latest_codes(end)
    # Enum columns read as plain text (type_coerce): converting 100,000 values to enum members and
    # back costs seconds and buys nothing here. No recorded change before the day: the current colour.
    rows = conn.execute(
        select(
            Venue.id,
            Venue.grid_id,
            type_coerce(Venue.category, String),
            func.coalesce(latest.c.to_code, type_coerce(Venue.safety_code, String)),
        )
        .outerjoin(latest, latest.c.venue_id == Venue.id)
        .where(Venue.created_at < end)
        .order_by(Venue.id)
    )
    return pd.DataFrame(list(map(tuple, rows)), columns=["id", "grid_id", "category", "code"])


def _venue_inputs(conn: Connection, as_of: date) -> pd.DataFrame:
    """Per grid: venue weights by colour on ``as_of`` and venues overdue for inspection, counted in SQL.

    One statement over venues ⟕ their colour on the day ⟕ their last inspection before it, grouped by
    grid: no venue row leaves the database (100,000 venues and a million inspections at city scale).
    A venue is overdue when its last inspection's day plus its colour's cadence is before ``as_of``,
    i.e. the inspection happened before midnight of ``as_of`` − cadence; a venue never inspected is
    not counted (its first visit is the planner's business, not an overdue re-check).
    """
    end = _day_end(as_of)
    latest = _latest_codes(end)
    last = (
        select(Inspection.venue_id, func.max(Inspection.inspected_at).label("last"))
        .where(Inspection.inspected_at < end)
        .group_by(Inspection.venue_id)
        .subquery()
    )
    code = func.coalesce(latest.c.to_code, type_coerce(Venue.safety_code, String))
    weight = case(
        {k.value: v for k, v in CATEGORY_BASE.items()}, value=type_coerce(Venue.category, String), else_=0.0
    )
    per_venue = (
        select(
            Venue.grid_id.label("grid_id"), code.label("code"), weight.label("w"), last.c.last.label("last")
        )
        .outerjoin(latest, latest.c.venue_id == Venue.id)
        .outerjoin(last, last.c.venue_id == Venue.id)
        .where(Venue.created_at < end)
        .subquery()
    )
    v = per_venue.c
    cutoff = case(
        {
            c.value: literal(datetime.combine(as_of - timedelta(days=days), datetime.min.time()), DateTime())
            for c, days in CADENCE_DAYS.items()
        },
        value=v.code,
    )
    rows = conn.execute(
        select(
            v.grid_id,
            *(func.sum(case((v.code == c.value, v.w), else_=0.0)) for c in SafetyCode),
            func.sum(case((v.last < cutoff, 1), else_=0)),
            *(func.sum(case((v.code == c.value, 1), else_=0)) for c in SafetyCode),
        ).group_by(v.grid_id)
    ).all()
    return _frame(
        rows,
        [
            "grid_id",
            *(f"{c.value}_weight" for c in SafetyCode),
            "overdue_inspections",
            *(f"{c.value}_venues" for c in SafetyCode),
        ],
    )


def grid_inputs(conn: Connection, as_of: date, window_days: int = EVENT_WINDOW_DAYS) -> pd.DataFrame:
    """Per grid id, the additive risk inputs (:class:`RiskInputs` fields but population) on ``as_of``.

    Every input is counted per grid in SQL (GROUP BY grid): only about one row per grid is read back.
    """
    end = _day_end(as_of)
    parts: list[pd.DataFrame] = [_venue_inputs(conn, as_of)]
    open_on_day = and_(
        Hazard.found_on <= as_of, or_(Hazard.rectified_on.is_(None), Hazard.rectified_on > as_of)
    )
    hz = conn.execute(
        select(
            Venue.grid_id,
            func.sum(case((Hazard.severity == HazardSeverity.MAJOR, 1), else_=0)).label("major_hazards"),
            func.sum(case((Hazard.severity == HazardSeverity.GENERAL, 1), else_=0)).label("general_hazards"),
            func.sum(case((Hazard.deadline < as_of, 1), else_=0)).label("overdue_hazards"),
        )
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(open_on_day)
        .group_by(Venue.grid_id)
    ).all()
    parts.append(_frame(hz, ["grid_id", "major_hazards", "general_hazards", "overdue_hazards"]))
    ev = conn.execute(
        select(Event.grid_id, func.count().label("safety_events"))
        .where(
            Event.reported_at >= end - timedelta(days=window_days),
            Event.reported_at < end,
            Event.category.in_(SAFETY_CATEGORIES),
            not_merged(),
        )
        .group_by(Event.grid_id)
    ).all()
    parts.append(_frame(ev, ["grid_id", "safety_events"]))
    out = pd.concat(parts, axis=1).fillna(0)
    return out.reindex(columns=INPUT_FIELDS, fill_value=0)


def not_merged():
    """Events not merged into another. Written ``merged_into_id + 0 IS NULL`` so that no planner takes the
    merged_into index for it (nearly every event matches): the reported_at range is the selective term,
    and SQLite without table statistics otherwise scans two million events through that index."""
    return (Event.merged_into_id + 0).is_(None)


def _frame(rows, columns: list[str]) -> pd.DataFrame:
    # Plain tuples: pandas probes every Row object for named-tuple attributes, which costs more than the query.
    df = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    return df.set_index("grid_id").astype(float)


def load_model(conn: Connection) -> RiskModel:
    """The model with the admin's thresholds (settings table) or the defaults."""
    raw = settings.read(conn, THRESHOLDS_KEY)
    return RiskModel(thresholds=Thresholds(**json.loads(raw))) if raw else RiskModel()


def save_thresholds(uow: UnitOfWork, thresholds: Thresholds, now: datetime, user=None) -> None:
    """Store the admin's thresholds (validated by :class:`Thresholds`); ``user`` needs ``edit_rules`` (logged)."""
    with uow.begin("risk.thresholds"):
        if user is not None and not user.may("edit_rules"):
            raise out_of_scope(user, "edit risk thresholds", None, "只有系统管理员可以修改风险阈值")
        settings.write(
            uow.conn,
            THRESHOLDS_KEY,
            json.dumps(asdict(thresholds)),
            now,
            actor=user,
            action="risk.thresholds",
        )
        uow.commit()


def area_risk(conn: Connection, as_of: date, model: RiskModel | None = None) -> pd.DataFrame:
    """Every unit of every level: its inputs, score and class on ``as_of``.

    Index: unit id; columns: code, name, level, kind, parent_id, population, the input fields,
    ``score`` and ``risk_class`` (a :class:`RiskClass` value).
    """
    model = model or load_model(conn)
    units = unit_table(conn)
    summed = rollup(grid_inputs(conn, as_of), ancestor_table(units))
    out = units.set_index("id").join(summed)
    out["score"] = score_many(
        {f: out[f].to_numpy() for f in INPUT_FIELDS}, out["population"].to_numpy(), model
    )
    recorded = has_data_many({f: out[f].to_numpy() for f in INPUT_FIELDS})
    out["risk_class"] = [
        classify(s, model.thresholds).value if known else RiskClass.NO_DATA.value
        for s, known in zip(out["score"], recorded, strict=True)
    ]
    return out


def explain_unit(row: pd.Series, model: RiskModel) -> list:
    """The explanation (factor, amount, points) of one row of :func:`area_risk`."""
    return explain(RiskInputs(**{f: row[f] for f in INPUT_FIELDS}, population=int(row["population"])), model)


def class_counts(frame: pd.DataFrame) -> dict[RiskClass, int]:
    """How many areas of ``frame`` are in each class (the legend's figures)."""
    counts = frame["risk_class"].value_counts()
    return {c: int(counts.get(c.value, 0)) for c in RiskClass}
