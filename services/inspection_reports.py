"""平安码 reports over a scope: the 30-day load forecast, overdue venues and hazards, the code distribution
and its trend, and on-time inspection rates.

Each read checks the area against the user's scope (``user=None``: a trusted caller) and returns data
with English column names; :mod:`components.inspection_tables` puts the Chinese headers on. The rules
are the domain's: :func:`domain.planner.forecast_visits` and :func:`domain.safety_code.on_time`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, cast, func, select

from db.models import Hazard, Inspection, InspectorGrid, SafetyCodeChange, User, Venue
from domain.access import CurrentUser
from domain.hierarchy import Tree
from domain.planner import Capacity, forecast_visits
from domain.safety_code import CADENCE_DAYS, on_time, overdue_days
from domain.vocabulary import AdminLevel, HazardSeverity, HazardStatus, Role, SafetyCode, VenueCategory
from services.geography import tree as store_tree
from services.planning import (
    NOBODY,
    RECHECK_LEAD_DAYS,
    checked_scope,
    day_start,
    fetch_raw,
    fetch_tuples,
    grid_areas,
    in_grids,
    present,
)
from services.planning_settings import load_campaigns, load_capacity

CODES = [SafetyCode.RED, SafetyCode.YELLOW, SafetyCode.GREEN]
OVERDUE_VENUE_COLUMNS = [
    "venue_id",
    "name",
    "category",
    "code",
    "village",
    "next_due_on",
    "last_inspected_on",
    "overdue_days",
    "inspector",
]
OVERDUE_HAZARD_COLUMNS = [
    "hazard_id",
    "venue_id",
    "venue",
    "village",
    "severity",
    "description",
    "found_on",
    "deadline",
    "overdue_days",
]
RATE_COLUMNS = ["area", "code", "visits", "on_time", "rate"]


# ---------------------------------------------------------------------------------------------
# 30-day load forecast
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    start: date
    days: int
    by_inspector: pd.DataFrame  # index: inspector name ("inspector"); columns: ISO dates; values: visits
    by_village: pd.DataFrame  # index: village name ("village")
    capacity: Capacity


def _owners(conn: Connection, grids: Sequence[int], tree: Tree) -> dict[int, list[int]]:
    """The active inspectors covering each grid, by id."""
    covering: dict[int, list[int]] = defaultdict(list)
    for uid, gid in conn.execute(
        select(InspectorGrid.user_id, InspectorGrid.grid_id)
        .join(User, User.id == InspectorGrid.user_id)
        .where(
            User.is_active,
            User.role == Role.INSPECTOR,
            *present(in_grids(InspectorGrid.grid_id, tree, grids)),
        )
        .order_by(InspectorGrid.grid_id, InspectorGrid.user_id)
    ).all():
        covering[int(gid)].append(int(uid))
    return covering


def _unique(labels: Sequence[tuple[str, str]]) -> list[str]:
    """Row labels: the name, qualified（…）only where two rows would share it (namesakes, same-named villages)."""
    counts: dict[str, int] = defaultdict(int)
    for name, _ in labels:
        counts[name] += 1
    return [f"{name}（{qual}）" if counts[name] > 1 else name for name, qual in labels]


def load_forecast(
    conn: Connection,
    start: date,
    scope_unit_id: int | None = None,
    days: int = 30,
    *,
    user: CurrentUser | None = None,
) -> Forecast:
    """Visits per day for ``days`` days from ``start``, per inspector and per village
    (:func:`domain.planner.forecast_visits`).

    A venue in a grid covered by several inspectors goes to its own inspector if they cover the grid,
    else to one of them by venue id (an even split); every inspector of the scope has a row.
    """
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "inspection forecast")
    grids = tree.grids_under(scope_unit_id)
    gfilter = in_grids(Venue.grid_id, tree, grids)
    rows = conn.execute(
        select(
            Venue.id, Venue.grid_id, Venue.safety_code, Venue.category, Venue.next_due_on, Venue.inspector_id
        ).where(Venue.is_active, *present(gfilter))
    ).all()
    names = dict(conn.execute(select(User.id, User.display_name).where(User.role == Role.INSPECTOR)).all())
    columns = [(start + timedelta(days=k)).isoformat() for k in range(days)]
    capacity = load_capacity(conn)
    if not rows:
        empty = pd.DataFrame(columns=columns)
        return Forecast(start, days, empty, empty, capacity)
    areas = grid_areas(tree, {int(r[1]) for r in rows})
    venues = pd.DataFrame(
        {
            "venue_id": [int(r[0]) for r in rows],
            "code": [SafetyCode(r[2]).value for r in rows],
            "category": [VenueCategory(r[3]).value for r in rows],
            "next_due_on": [r[4] for r in rows],
            "village_id": [areas[int(r[1])][0] for r in rows],
            "township_id": [areas[int(r[1])][1] for r in rows],
        }
    )
    rechecks = conn.execute(
        select(Hazard.venue_id, Hazard.deadline)
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(Hazard.status == HazardStatus.OPEN, Venue.is_active, *present(gfilter))
    ).all()
    visits = forecast_visits(
        venues, rechecks, load_campaigns(conn), start, days, recheck_lead_days=RECHECK_LEAD_DAYS
    )
    covering = _owners(conn, grids, tree)
    owner: dict[int, int] = {}
    for vid, gid, *_, own in rows:
        cands = covering.get(int(gid), [])
        owner[int(vid)] = 0 if not cands else (own if own in cands else cands[int(vid) % len(cands)])
    village = dict(zip(venues["venue_id"], venues["village_id"], strict=True))
    visits["inspector"] = visits["venue_id"].map(owner)
    visits["village"] = visits["venue_id"].map(village)

    def per(key: str) -> pd.DataFrame:
        counts = visits.groupby([key, "day"]).size().unstack(fill_value=0)
        return counts.reindex(columns=range(days), fill_value=0)

    by_i, by_v = per("inspector"), per("village")
    # Every inspector of the scope appears, even with nothing due.
    everyone = sorted({u for us in covering.values() for u in us})
    by_i = by_i.reindex(sorted(set(by_i.index) | set(everyone)), fill_value=0)
    by_i.columns = by_v.columns = columns
    by_i.index = _unique([(names.get(int(i), NOBODY) if i else NOBODY, str(int(i))) for i in by_i.index])
    by_v.index = _unique(
        [(tree.name(int(v)) if v else "—", tree.name(tree.parent(int(v)) if v else None)) for v in by_v.index]
    )
    by_i.index.name, by_v.index.name = "inspector", "village"
    return Forecast(start, days, by_i, by_v, capacity)


# ---------------------------------------------------------------------------------------------
# Overdue lists, code distribution and trend
# ---------------------------------------------------------------------------------------------


def overdue_venues(
    conn: Connection,
    today: date,
    scope_unit_id: int | None = None,
    *,
    limit: int = 500,
    user: CurrentUser | None = None,
) -> pd.DataFrame:
    """Active venues past their due date, most overdue first."""
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "overdue venues")
    grids = tree.grids_under(scope_unit_id)
    rows = conn.execute(
        select(
            Venue.id,
            Venue.name,
            Venue.category,
            Venue.safety_code,
            Venue.grid_id,
            Venue.next_due_on,
            Venue.last_inspected_on,
        )
        .where(Venue.is_active, Venue.next_due_on < today, *present(in_grids(Venue.grid_id, tree, grids)))
        .order_by(Venue.next_due_on, Venue.id)
        .limit(limit)
    ).all()
    # Who covers each grid now (a venue's inspector_id is set once, at its import, and went stale
    # with every change of who covers what): every active inspector of the grid, by name.
    covering: dict[int, list[str]] = {}
    for grid_id, name in conn.execute(
        select(InspectorGrid.grid_id, User.display_name)
        .join(User, User.id == InspectorGrid.user_id)
        .where(User.is_active, InspectorGrid.grid_id.in_({int(r[4]) for r in rows} or {-1}))
        .order_by(InspectorGrid.grid_id, User.display_name)
    ):
        covering.setdefault(int(grid_id), []).append(str(name))
    return pd.DataFrame(
        [
            (
                r[0],
                r[1],
                VenueCategory(r[2]).value,
                SafetyCode(r[3]).value,
                tree.name(tree.grid_village(r[4])),
                r[5],
                r[6],
                overdue_days(r[5], today),
                "、".join(covering.get(int(r[4]), [])) or "无人负责",
            )
            for r in rows
        ],
        columns=OVERDUE_VENUE_COLUMNS,
    )


def overdue_hazards(
    conn: Connection,
    today: date,
    scope_unit_id: int | None = None,
    *,
    limit: int = 500,
    user: CurrentUser | None = None,
) -> pd.DataFrame:
    """Open hazards past their rectification deadline, most overdue first."""
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "overdue hazards")
    grids = tree.grids_under(scope_unit_id)
    rows = conn.execute(
        select(
            Hazard.id,
            Venue.id,
            Venue.name,
            Venue.grid_id,
            Hazard.severity,
            Hazard.description,
            Hazard.found_on,
            Hazard.deadline,
        )
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(
            Hazard.status == HazardStatus.OPEN,
            Hazard.deadline < today,
            Venue.is_active,
            *present(in_grids(Venue.grid_id, tree, grids)),
        )
        .order_by(Hazard.deadline, Hazard.id)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            (
                r[0],
                r[1],
                r[2],
                tree.name(tree.grid_village(r[3])),
                HazardSeverity(r[4]).value,
                r[5],
                r[6],
                r[7],
                overdue_days(r[7], today),
            )
            for r in rows
        ],
        columns=OVERDUE_HAZARD_COLUMNS,
    )


def code_distribution(
    conn: Connection, scope_unit_id: int | None = None, *, user: CurrentUser | None = None
) -> dict[str, int]:
    """Active venues by colour now (``red``/``yellow``/``green``)."""
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "code distribution")
    grids = tree.grids_under(scope_unit_id)
    counts = {
        SafetyCode(code).value: int(n)
        for code, n in conn.execute(
            select(Venue.safety_code, func.count())
            .where(Venue.is_active, *present(in_grids(Venue.grid_id, tree, grids)))
            .group_by(Venue.safety_code)
        ).all()
    }
    return {c.value: counts.get(c.value, 0) for c in CODES}


def code_trend(
    conn: Connection,
    today: date,
    scope_unit_id: int | None = None,
    days: int = 90,
    *,
    user: CurrentUser | None = None,
) -> pd.DataFrame:
    """Venues of each colour (columns ``red``, ``yellow``, ``green``) at the end of each of the last
    ``days`` days (index ``day``), from the change log.

    A venue counts from its creation; its colour on a day is the last change stored before the
    day's end (a venue with no change stored has its current colour throughout).
    """
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "code trend")
    gfilter = in_grids(Venue.grid_id, tree, tree.grids_under(scope_unit_id))
    venues = conn.execute(
        select(Venue.id, Venue.created_at, Venue.safety_code).where(Venue.is_active, *present(gfilter))
    ).all()
    changes = conn.execute(
        select(SafetyCodeChange.venue_id, SafetyCodeChange.changed_at, SafetyCodeChange.to_code)
        .join(Venue, Venue.id == SafetyCodeChange.venue_id)
        .where(Venue.is_active, *present(gfilter))
    ).all()
    ch = pd.DataFrame([tuple(r) for r in changes], columns=["venue_id", "at", "code"])
    has = set(ch["venue_id"].tolist())
    # A venue without any stored change enters with its current colour at creation.
    synth = pd.DataFrame(
        [(v, c, code) for v, c, code in venues if v not in has], columns=["venue_id", "at", "code"]
    )
    ev = pd.concat([ch, synth], ignore_index=True) if len(synth) else ch
    ev["code"] = ev["code"].map(lambda c: SafetyCode(c).value)
    ev = ev.sort_values(["venue_id", "at"], kind="stable")
    ev["prev"] = ev.groupby("venue_id")["code"].shift(1)
    ev = ev.sort_values("at", kind="stable")
    times = pd.to_datetime(ev["at"]).to_numpy()
    ends = pd.to_datetime(
        [day_start(today - timedelta(days=k) + timedelta(days=1)) for k in range(days - 1, -1, -1)]
    )
    out = {}
    for c in CODES:
        delta = (ev["code"] == c.value).astype(int) - (ev["prev"] == c.value).astype(int)
        cum = np.concatenate([[0], np.cumsum(delta.to_numpy())])
        pos = np.searchsorted(times, ends.to_numpy(), side="left")
        out[c.value] = cum[pos]
    idx = pd.Index([(e - pd.Timedelta(days=1)).date() for e in ends], name="day")
    return pd.DataFrame(out, index=idx)


# ---------------------------------------------------------------------------------------------
# On-time rate
# ---------------------------------------------------------------------------------------------

#: A colour's value from the enum or its stored text (the raw reads return text).
_CODE_VALUE = {c.value: c.value for c in SafetyCode}


def _visits_with_previous(conn: Connection, start: date, end: date, gfilter, lookback_start) -> pd.DataFrame:
    """Visits from ``start`` to ``end`` with the day of each venue's previous visit (``prev_day``), read
    back far enough for every cadence; a venue's first visit in the window looks further back once."""
    venue_grid = dict(fetch_tuples(conn, select(Venue.id, Venue.grid_id).where(*present(gfilter))))
    # Timestamps come back as text and are parsed by pandas at once (row by row is most of the time at
    # city scale); the scope is a subquery, not a join per inspection.
    ins = pd.DataFrame(
        fetch_raw(
            conn,
            select(Inspection.venue_id, cast(Inspection.inspected_at, String)).where(
                Inspection.inspected_at >= lookback_start,
                Inspection.inspected_at < day_start(end + timedelta(days=1)),
                *present(
                    None if gfilter is None else Inspection.venue_id.in_(select(Venue.id).where(gfilter))
                ),
            ),
        ),
        columns=["venue_id", "at"],
    )
    if ins.empty:
        return ins.assign(grid_id=[], day=[], prev_day=[])
    ins["at"] = pd.to_datetime(ins["at"], format="ISO8601")
    ins["grid_id"] = ins["venue_id"].map(venue_grid)
    ins = ins[ins["grid_id"].notna()]
    ins = ins.sort_values(["venue_id", "at"], kind="stable")
    ins["day"] = pd.to_datetime(ins["at"]).dt.normalize()
    # A venue's visits are due by the day: a second record on one day (two phones, two colleagues) is the
    # same visit, not one due that day and made on time.
    ins = ins.drop_duplicates(["venue_id", "day"], keep="first")
    ins["prev_day"] = ins.groupby("venue_id")["day"].shift(1)
    ins = ins[ins["day"] >= pd.Timestamp(start)]
    first = ins[ins["prev_day"].isna()]
    if not first.empty:
        older = dict(
            fetch_tuples(
                conn,
                select(Inspection.venue_id, func.max(Inspection.inspected_at))
                .where(
                    Inspection.venue_id.in_(first["venue_id"].unique().tolist()),
                    Inspection.inspected_at < lookback_start,
                )
                .group_by(Inspection.venue_id),
            )
        )
        ins.loc[first.index, "prev_day"] = pd.to_datetime(first["venue_id"].map(older)).dt.normalize()
    return ins[ins["prev_day"].notna()]


def on_time_rates(
    conn: Connection,
    start: date,
    end: date,
    scope_unit_id: int | None = None,
    *,
    level: AdminLevel | None = None,
    user: CurrentUser | None = None,
) -> pd.DataFrame:
    """On-time inspection rate by colour and area for visits made from ``start`` to ``end`` (inclusive).

    Columns: ``area`` (the unit's name; None on the rows of every area together, which come first),
    ``code``, ``visits``, ``on_time`` and ``rate``. The rule is :func:`domain.safety_code.on_time`;
    visits with no earlier visit on record have no due date and are not counted. Areas are units of
    ``level`` (default: one level below the scope, villages for a township or below).
    """
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "on-time rates")
    scope_level = tree.level(scope_unit_id) if scope_unit_id is not None else AdminLevel.CITY
    if level is None:
        level = scope_level.child if scope_level.depth < AdminLevel.VILLAGE.depth else AdminLevel.VILLAGE
        level = level or AdminLevel.VILLAGE
    gfilter = in_grids(Venue.grid_id, tree, tree.grids_under(scope_unit_id))
    lookback_start = day_start(start - timedelta(days=max(CADENCE_DAYS.values()) + 5))
    visits = _visits_with_previous(conn, start, end, gfilter, lookback_start)
    if visits.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    venue_ids = visits["venue_id"].unique().tolist()
    changes = pd.DataFrame(
        fetch_raw(
            conn,
            select(
                SafetyCodeChange.venue_id, cast(SafetyCodeChange.changed_at, String), SafetyCodeChange.to_code
            ).where(
                *present(
                    None
                    if gfilter is None
                    else SafetyCodeChange.venue_id.in_(select(Venue.id).where(gfilter))
                )
            ),
        ),
        columns=["venue_id", "changed_at", "code"],
    )
    changes = changes[changes["venue_id"].isin(venue_ids)]
    current = {
        v: _CODE_VALUE[c]
        for v, c in fetch_tuples(conn, select(Venue.id, Venue.safety_code).where(Venue.id.in_(venue_ids)))
    }
    judged = on_time(visits[["venue_id", "grid_id", "day", "prev_day"]], changes, current)
    area_of = {g: tree.ancestor(int(g), level) for g in judged["grid_id"].unique().tolist()}
    judged["area"] = judged["grid_id"].map({g: tree.name(a) for g, a in area_of.items()})
    per_area = (
        judged.groupby(["area", "code"])
        .agg(visits=("on_time", "size"), on_time=("on_time", "sum"))
        .reset_index()
    )
    total = judged.groupby("code").agg(visits=("on_time", "size"), on_time=("on_time", "sum")).reset_index()
    total.insert(0, "area", "")
    out = pd.concat([total, per_area], ignore_index=True)
    out["order"] = out["code"].map({c.value: i for i, c in enumerate(CODES)})
    out["first"] = out["area"] != ""
    out = out.sort_values(["first", "area", "order"], kind="stable")
    return pd.DataFrame(
        {
            "area": out["area"].where(out["first"], None).to_numpy(),
            "code": out["code"].to_numpy(),
            "visits": out["visits"].astype(int).to_numpy(),
            "on_time": out["on_time"].astype(int).to_numpy(),
            "rate": (out["on_time"] / out["visits"]).round(3).to_numpy(),
        }
    )
