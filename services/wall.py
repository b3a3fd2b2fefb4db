"""The wall screen's (指挥大屏) figures beside the KPIs: today's events by hour, category and source, and
the live points on the map. One read per refresh, cheap at city scale: counted by the store over
today's rows (the time index), never a year of events moved into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, select

from db.frames import rows_frame
from db.models import Event
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource, EventStatus
from services.access import Scope

#: The most event points sent to the wall's map (newest first): enough for a city's day.
MAX_POINTS = 3000
#: Points younger than this are drawn as "new" (brighter, larger).
NEW_MINUTES = 60


@dataclass(frozen=True)
class WallDay:
    """Today on the wall: counts per hour (today and yesterday), per category and per source (labels)."""

    hours_today: list[int]  # 24 counts; hours after now are 0
    hours_yesterday: list[int]
    now_hour: int
    categories: dict[str, int]  # label → count, most first, every category present
    sources: dict[str, int]


def _value(v) -> str:
    return getattr(v, "value", v)


def _hours(conn: Connection, scope: Scope, start: datetime, end: datetime) -> list[int]:
    rows = conn.execute(
        select(Event.reported_at).where(
            *scope.where(by_time=True), Event.reported_at >= start, Event.reported_at < end
        )
    ).scalars()
    counts = [0] * 24
    for t in rows:
        counts[pd.Timestamp(t).hour] += 1
    return counts


def _by(conn: Connection, scope: Scope, column, start: datetime, end: datetime) -> dict[str, int]:
    rows = conn.execute(
        select(column, func.count())
        .where(*scope.where(by_time=True), Event.reported_at >= start, Event.reported_at < end)
        .group_by(column)
    ).all()
    return {_value(k): int(n) for k, n in rows}


def wall_day(conn: Connection, scope: Scope, now: datetime) -> WallDay:
    """Today's events of the scope by hour (with yesterday's for comparison), category and source."""
    today = datetime.combine(now.date(), datetime.min.time())
    yesterday = today - timedelta(days=1)
    cats = _by(conn, scope, Event.category, today, now + timedelta(seconds=1))
    srcs = _by(conn, scope, Event.source, today, now + timedelta(seconds=1))
    return WallDay(
        hours_today=_hours(conn, scope, today, now + timedelta(seconds=1)),
        hours_yesterday=_hours(conn, scope, yesterday, today),
        now_hour=now.hour,
        categories=dict(
            sorted(((c.label, cats.get(c.value, 0)) for c in EventCategory), key=lambda kv: -kv[1])
        ),
        sources=dict(sorted(((s.label, srcs.get(s.value, 0)) for s in EventSource), key=lambda kv: -kv[1])),
    )


POINT_COLUMNS = ["id", "lon", "lat", "title", "status", "reported_at", "is_overdue"]


def live_points(conn: Connection, scope: Scope, now: datetime, hours: int = 24) -> pd.DataFrame:
    """Events of the scope reported in the last ``hours`` hours, newest first (at most :data:`MAX_POINTS`),
    with ``kind``: ``overdue`` (open and past its deadline), ``new`` (reported within
    :data:`NEW_MINUTES`), ``open`` or ``done``; and ``status_label``."""
    rows = conn.execute(
        select(*(getattr(Event, c) for c in POINT_COLUMNS), Event.due_at)
        .where(
            *scope.where(by_time=True),
            Event.reported_at >= now - timedelta(hours=hours),
            Event.reported_at <= now,
            Event.merged_into_id.is_(None),
        )
        .order_by(Event.reported_at.desc())
        .limit(MAX_POINTS)
    ).all()
    df = rows_frame(rows, [*POINT_COLUMNS, "due_at"])
    if df.empty:
        return df.assign(kind=pd.Series(dtype=str), status_label=pd.Series(dtype=str))
    status = [EventStatus(_value(v)) for v in df["status"]]
    open_ = pd.Series([s in OPEN_STATUSES for s in status], index=df.index)
    due = pd.to_datetime(df["due_at"])
    overdue = open_ & (df["is_overdue"].astype(bool) | (due.notna() & (due < pd.Timestamp(now))))
    new = pd.to_datetime(df["reported_at"]) >= pd.Timestamp(now - timedelta(minutes=NEW_MINUTES))
    kind = pd.Series("done", index=df.index)
    kind[open_] = "open"
    kind[new] = "new"
    kind[overdue] = "overdue"
    return df.assign(kind=kind, status_label=[s.label for s in status]).drop(columns=["due_at"])
