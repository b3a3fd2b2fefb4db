"""What the risk map shows inside one area: venues (points or per-grid clusters), events, riskiest venues."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, case, func, select, type_coerce

from db.models import Event, Hazard, Venue
from domain.access import redact
from domain.risk import CATEGORY_BASE, RiskModel, points_many
from domain.vocabulary import (
    EventCategory,
    EventStatus,
    HazardSeverity,
    HazardStatus,
    SafetyCode,
    VenueCategory,
)
from services.risk import not_merged


def _in(column, ids: list[int]):
    return column.in_(ids) if ids else column.in_([-1])


VENUE_COLUMNS = [
    "id",
    "name",
    "category",
    "code",
    "address",
    "lon",
    "lat",
    "grid_id",
    "responsible_person",
    "last_inspected_on",
    "next_due_on",
    "major",
    "general",
    "overdue",
]


def venue_frame(conn: Connection, today: date, model: RiskModel | None = None) -> pd.DataFrame:
    """Every active venue with its open hazards and risk points; pages cache it and filter by grid.

    Columns :data:`VENUE_COLUMNS` plus ``points`` (the venue's own risk points, domain.risk weights).
    """
    hz = (
        select(
            Hazard.venue_id,
            func.sum(case((Hazard.severity == HazardSeverity.MAJOR, 1), else_=0)).label("major"),
            func.sum(case((Hazard.severity == HazardSeverity.GENERAL, 1), else_=0)).label("general"),
            func.sum(case((Hazard.deadline < today, 1), else_=0)).label("overdue"),
        )
        .where(Hazard.status == HazardStatus.OPEN)
        .group_by(Hazard.venue_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            # Enum columns as their stored text (values of VenueCategory / SafetyCode): no per-row conversion.
            Venue.id,
            Venue.name,
            type_coerce(Venue.category, String),
            type_coerce(Venue.safety_code, String),
            Venue.address,
            Venue.lon,
            Venue.lat,
            Venue.grid_id,
            Venue.responsible_person,
            Venue.last_inspected_on,
            Venue.next_due_on,
            func.coalesce(hz.c.major, 0),
            func.coalesce(hz.c.general, 0),
            func.coalesce(hz.c.overdue, 0),
        )
        .outerjoin(hz, hz.c.venue_id == Venue.id)
        .where(Venue.is_active)
        .order_by(Venue.id)
    )
    df = pd.DataFrame(list(map(tuple, rows)), columns=VENUE_COLUMNS)
    base = df["category"].map({k.value: v for k, v in CATEGORY_BASE.items()}).astype(float)
    late_visit = pd.to_datetime(df["next_due_on"]) < pd.Timestamp(today)
    df["points"] = np.round(
        points_many(
            {
                "red_weight": base.where(df["code"] == "red", 0.0),
                "yellow_weight": base.where(df["code"] == "yellow", 0.0),
                "green_weight": base.where(df["code"] == "green", 0.0),
                "major_hazards": df["major"],
                "general_hazards": df["general"],
                "overdue_hazards": df["overdue"],
                "overdue_inspections": late_visit.astype(int),
            },
            model or RiskModel(),
        ),
        1,
    )
    return df


def in_grids(frame: pd.DataFrame, grid_ids: list[int]) -> pd.DataFrame:
    """The rows of a venue or event frame that lie in ``grid_ids`` (the frame itself when all do)."""
    inside = frame["grid_id"].isin(grid_ids).to_numpy()
    return frame if inside.all() else frame[inside]


def venue_clusters(venues: pd.DataFrame, centroids: pd.DataFrame) -> pd.DataFrame:
    """One row per grid with venues: lon, lat (the grid's label point), count, red, yellow, green."""
    if venues.empty:
        return pd.DataFrame(columns=["grid_id", "lon", "lat", "count", "red", "yellow", "green"])
    wide = (
        venues.groupby(["grid_id", "code"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=["red", "yellow", "green"], fill_value=0)
    )
    wide["count"] = wide.sum(axis=1)
    out = wide.join(centroids[["centroid_lon", "centroid_lat"]], how="left")
    return out.rename(columns={"centroid_lon": "lon", "centroid_lat": "lat"}).reset_index()


def event_frame(conn: Connection, start: datetime, end: datetime) -> pd.DataFrame:
    """Events reported in [start, end): lon, lat, grid_id, category; pages cache it and filter by grid."""
    rows = conn.execute(
        select(Event.lon, Event.lat, Event.grid_id, type_coerce(Event.category, String)).where(
            Event.reported_at >= start, Event.reported_at < end, not_merged()
        )
    )
    return pd.DataFrame(list(map(tuple, rows)), columns=["lon", "lat", "grid_id", "category"])


def riskiest_venues(venues: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """The venues with the most risk points, labelled for display."""
    points, ids = venues["points"].to_numpy(dtype=float), venues["id"].to_numpy()
    rows = np.flatnonzero(points > 0)
    rows = rows[np.lexsort((ids[rows], -points[rows]))[:limit]]  # most points first, then by id
    top = venues.iloc[rows].copy()
    top["category"] = top["category"].map(lambda c: VenueCategory(c).label)
    top["code"] = top["code"].map(lambda c: SafetyCode(c).label)
    return top


def recent_events(conn: Connection, grid_ids: list[int], now: datetime, limit: int = 10) -> pd.DataFrame:
    """The area's latest events (those of the last 400 days).

    A large area takes them from the newest events of the whole store, read along the reported_at
    index (500, then 5,000 rows). A small area is looked for in its last two days along the same index
    (``grid_id + 0`` keeps the planner off the grid index, which would read all the area's events and
    sort them), and only when those hold too few, among all its events through the grid index.
    """
    cols = (Event.id, Event.reported_at, Event.category, Event.title, Event.status, Event.address)
    newest_first = (Event.reported_at.desc(), Event.id.desc())
    wanted = set(grid_ids)
    rows: Sequence = []
    if len(grid_ids) > 50:
        for n in (500, 5000):
            latest = conn.execute(
                select(*cols, Event.grid_id).where(Event.reported_at <= now).order_by(*newest_first).limit(n)
            )
            rows = [r[:6] for r in latest if r[6] in wanted][:limit]
            if len(rows) >= limit:
                break
    if len(rows) < limit:
        rows = conn.execute(
            select(*cols)
            .where((Event.grid_id + 0).in_(grid_ids or [-1]), Event.reported_at >= now - timedelta(days=2))
            .order_by(*newest_first)
            .limit(limit)
        ).all()
    if len(rows) < limit:
        rows = conn.execute(
            select(*cols)
            .where(_in(Event.grid_id, grid_ids), Event.reported_at >= now - timedelta(days=400))
            .order_by(*newest_first)
            .limit(limit)
        ).all()
    df = pd.DataFrame(
        [tuple(r) for r in rows], columns=["id", "reported_at", "category", "title", "status", "address"]
    )
    df["title"] = df["title"].map(
        lambda t: redact(t) if isinstance(t, str) else t
    )  # a typed phone shown masked
    df["category"] = df["category"].map(lambda c: EventCategory(c).label)
    df["status"] = df["status"].map(lambda s: EventStatus(s).label)
    return df


def period_bounds(today: date, days: int) -> tuple[datetime, datetime]:
    """[start, end) of the last ``days`` days up to and including ``today``."""
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    return end - timedelta(days=days), end
