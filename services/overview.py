"""The home page's proof of wiring: every unit of the five levels with its venues and events."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, select

from db.models import AdminUnit, Event, EventGridTotal, Venue
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
    events, today_events. Counting happens in SQL per grid (all time: from the per-grid totals of
    :mod:`services.rollups`); the roll-up in :mod:`domain.hierarchy`.
    """
    units = unit_table(conn)
    start = datetime.combine(today, datetime.min.time())
    per_grid = pd.concat(
        [
            _per_grid(conn, select(Venue.grid_id, func.count()).group_by(Venue.grid_id), "venues"),
            all_time_events(conn),
            _per_grid(
                conn,
                select(Event.grid_id, func.count())
                .where(Event.reported_at >= start, Event.reported_at < start + timedelta(days=1))
                .group_by(Event.grid_id),
                "today_events",
            ),
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


def all_time_events(conn: Connection) -> pd.Series:
    """Every event ever reported, per grid: ``event_grid_totals`` (decision 0034), the grids with events
    changed since the rollup's watermark counted from their events; counted from the events without a
    usable rollup."""
    keys = rollups.pending(conn)
    if keys is None:
        return _per_grid(conn, select(Event.grid_id, func.count()).group_by(Event.grid_id), "events")
    changed = sorted(set().union(*keys.values())) if keys else []
    totals = select(EventGridTotal.grid_id, EventGridTotal.all_events)
    if not changed:
        return _per_grid(conn, totals, "events")
    return pd.concat(
        [
            _per_grid(conn, totals.where(EventGridTotal.grid_id.not_in(changed)), "events"),
            _per_grid(
                conn,
                select(Event.grid_id, func.count()).where(Event.grid_id.in_(changed)).group_by(Event.grid_id),
                "events",
            ),
        ]
    )


def _per_grid(conn: Connection, query, name: str) -> pd.Series:
    rows = conn.execute(query).all()
    return pd.Series({g: n for g, n in rows}, name=name, dtype="int64")
