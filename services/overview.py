"""The home page's proof of wiring: every unit of the five levels with its venues and events."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import ColumnElement, Connection, Integer, and_, case, func, literal_column, select, union_all

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
    # One statement, one snapshot: a refresh committed between two reads would otherwise take a key's
    # rows out of totals that already held its new count. Each part gives (grid, events, today's).
    zero: ColumnElement[int] = literal_column("0", Integer)

    def part(grid, events, todays):
        return select(grid.label("grid"), events.label("events"), todays.label("todays"))

    parts = [
        part(EventGridTotal.grid_id, EventGridTotal.all_events, zero),
        part(EventGridDaily.grid_id, zero, EventGridDaily.all_events).where(EventGridDaily.day == today),
    ]
    if keys:
        is_today = and_(Event.reported_at >= start, Event.reported_at < start + timedelta(days=1))
        parts += [  # the pending keys' rows out, their events in
            part(
                EventGridDaily.grid_id,
                -EventGridDaily.all_events,
                case((EventGridDaily.day == today, -EventGridDaily.all_events), else_=zero),
            ).where(rollups.rollup_inside(keys, EventGridDaily)),
            part(Event.grid_id, func.count(), func.sum(case((is_today, 1), else_=zero)))
            .where(rollups.events_inside(keys))
            .group_by(Event.grid_id),
        ]
    counted = union_all(*parts).subquery("counted")
    grid, events, todays = counted.c
    rows = conn.execute(select(grid, func.sum(events), func.sum(todays)).group_by(grid)).all()
    return (
        pd.Series({g: int(n) for g, n, _t in rows if n}, name="events", dtype="int64"),
        pd.Series({g: int(t) for g, _n, t in rows if t}, name="today_events", dtype="int64"),
    )


def _per_grid(conn: Connection, query, name: str) -> pd.Series:
    rows = conn.execute(query).all()
    return pd.Series({g: n for g, n in rows}, name=name, dtype="int64")
