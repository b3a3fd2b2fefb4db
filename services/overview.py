"""The home page's proof of wiring: every unit of the five levels with its venues and events."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, and_, func, select

from db.models import AdminUnit, Event, EventGridDaily, EventGridTotal, Venue
from domain.access import CurrentUser
from domain.hierarchy import ancestor_table, rollup
from domain.vocabulary import AdminLevel
from services import rollups


def unit_table(conn: Connection) -> pd.DataFrame:
    """All units (no geometry): id, code, name, level, kind, parent_id, population, population_estimated
    (the boundary import estimated it: the file had none)."""
    q = select(
        AdminUnit.id,
        AdminUnit.code,
        AdminUnit.name,
        AdminUnit.level,
        AdminUnit.kind,
        AdminUnit.parent_id,
        AdminUnit.population,
        AdminUnit.population_estimated,
    ).order_by(AdminUnit.id)
    df = pd.DataFrame(  # plain tuples: pandas probes each Row's attributes otherwise (a third of the time)
        [tuple(r) for r in conn.execute(q).all()],
        columns=["id", "code", "name", "level", "kind", "parent_id", "population", "population_estimated"],
    )
    df["population_estimated"] = df["population_estimated"].astype(bool)
    df["level"] = df["level"].map({v: AdminLevel(v).value for v in set(df["level"])})
    return df


def unit_figures(conn: Connection, today: date, user: CurrentUser | None = None) -> pd.DataFrame:
    """Per unit of every level: venues, events (all time) and today's events, summed up from grids.

    With ``user``, only their scope unit and its subtree (empty if their scope unit is gone).

    Index: unit id; columns: code, name, level, kind, parent_id, population, children, venues,
    events, today_events. Counting happens in SQL per grid (:func:`event_counts`); the roll-up in
    :mod:`domain.hierarchy`.
    """
    units = unit_table(conn)
    per_grid = pd.concat(
        [
            _per_grid(conn, select(Venue.grid_id, func.count()).group_by(Venue.grid_id), "venues"),
            *event_counts(conn, today),
        ],
        axis=1,
    ).fillna(0)
    figures = rollup(per_grid, ancestor_table(units)).astype("int64")
    children = units.groupby("parent_id").size()
    out = units.set_index("id")
    out["children"] = children.reindex(out.index, fill_value=0).astype("int64")
    out = out.join(figures)
    if user is not None:
        anc = ancestor_table(units)
        if user.scope_unit_id not in anc.index:
            return out.iloc[0:0]
        level = out.at[user.scope_unit_id, "level"]
        out = out[anc[level].reindex(out.index) == user.scope_unit_id]
    return out


def event_counts(conn: Connection, today: date) -> tuple[pd.Series, pd.Series]:
    """Per grid: every event ever reported (``events``) and today's (``today_events``).

    From the rollup (decisions 0034, 0057): ``event_grid_totals`` and today's ``event_grid_daily`` rows,
    with the (day, grid) keys the jobs runner has not folded in yet (:func:`services.rollups.pending`)
    taken out of them and counted from their raw events instead. The cost is the grids and the keys
    pending, not the history: a grid's total is the sum of its days (services.rollups), so a pending
    day's rows come out of it exactly. Counted from the events without a usable rollup."""
    start = datetime.combine(today, datetime.min.time())
    keys = rollups.pending(conn)
    if keys is None:
        return (
            _per_grid(conn, select(Event.grid_id, func.count()).group_by(Event.grid_id), "events"),
            _per_grid(
                conn,
                select(Event.grid_id, func.count())
                .where(Event.reported_at >= start, Event.reported_at < start + timedelta(days=1))
                .group_by(Event.grid_id),
                "today_events",
            ),
        )
    totals = _per_grid(conn, select(EventGridTotal.grid_id, EventGridTotal.all_events), "events")
    days = select(EventGridDaily.grid_id, EventGridDaily.all_events).where(EventGridDaily.day == today)
    if not keys:
        return totals, _per_grid(conn, days, "today_events")
    stale = _per_grid(
        conn,
        select(EventGridDaily.grid_id, func.sum(EventGridDaily.all_events))
        .where(rollups.rollup_inside(keys, EventGridDaily))
        .group_by(EventGridDaily.grid_id),
        "events",
    )
    is_today = and_(Event.reported_at >= start, Event.reported_at < start + timedelta(days=1))
    raw = conn.execute(
        select(Event.grid_id, is_today, func.count())
        .where(rollups.events_inside(keys))
        .group_by(Event.grid_id, is_today)
    ).all()
    fresh = pd.Series(dict(_summed((g, n) for g, _today, n in raw)), name="events", dtype="int64")
    fresh_today = pd.Series(
        dict(_summed((g, n) for g, is_today, n in raw if is_today)), name="today_events", dtype="int64"
    )
    events = totals.sub(stale, fill_value=0).add(fresh, fill_value=0).astype("int64")
    today_rows = _per_grid(conn, days.where(*rollups.rollup_outside(keys, EventGridDaily)), "today_events")
    today_events = today_rows.add(fresh_today, fill_value=0).astype("int64")
    return events[events != 0].rename("events"), today_events.rename("today_events")


def _summed(pairs) -> dict[int, int]:
    out: dict[int, int] = {}
    for g, n in pairs:
        out[g] = out.get(g, 0) + int(n)
    return out


def _per_grid(conn: Connection, query, name: str) -> pd.Series:
    rows = conn.execute(query).all()
    return pd.Series({g: n for g, n in rows}, name=name, dtype="int64")
