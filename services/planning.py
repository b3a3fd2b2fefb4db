"""The 平安码 day plan over the store: a scope's plan for a day and one inspector's day (/my_day).

Reads the planner's inputs (inspectors with their grids and start points, venues due, open hazards
as re-checks, campaigns, capacity and accepted reassignments from :mod:`services.planning_settings`,
the active hazard forecast's scores when there is one), projects every position to metres (:func:`geo.crs.to_metres`) and hands them to
:func:`domain.planner.plan_day`. The reports around the plan (forecast, overdue lists, codes, on-time
rates) are :mod:`services.inspection_reports`. Every read that takes a ``user`` checks the area
against their scope (:func:`services.access.require_area`); ``user=None`` is a trusted caller.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, or_, select

from db.models import ForecastModel, Hazard, Inspection, InspectorGrid, User, Venue, VenueForecast
from domain import forecast as fc
from domain.access import CurrentUser
from domain.hierarchy import Tree
from domain.planner import (
    NEVER_VISITED_DAYS,
    Campaign,
    Capacity,
    DayPlan,
    HazardRecheck,
    Inspector,
    PlannedVisit,
    Route,
    VenueToVisit,
    plan_day,
)
from domain.vocabulary import AdminLevel, HazardStatus, Role, SafetyCode, VenueCategory
from geo.crs import metric_crs_for, to_metres
from services.access import out_of_scope, require_area
from services.geography import tree as store_tree
from services.inspections import inspections_on
from services.planning_settings import load_campaigns, load_capacity, load_reassignments

RECHECK_LEAD_DAYS = 1
NOBODY = "（无人负责）"

# ---------------------------------------------------------------------------------------------
# Scope and fast reads (shared with services.inspection_reports)
# ---------------------------------------------------------------------------------------------


def checked_scope(tree: Tree, user: CurrentUser | None, scope_unit_id: int | None, what: str) -> int | None:
    """The unit a read runs over: ``scope_unit_id`` if inside ``user``'s scope (their own for None);
    refused and logged (:class:`services.access.OutOfScope`) outside it. ``user=None`` is a trusted
    caller (bench, jobs): its ``None`` means the whole store."""
    if user is None:
        return scope_unit_id
    return require_area(tree, user, scope_unit_id, what)


def in_grids(column, tree: Tree, grids: Sequence[int]):
    """``column IN grids``, or None when ``grids`` are every grid of the tree (no 5,000-item IN list)."""
    if len(grids) == len(tree.at_level(AdminLevel.GRID)):
        return None
    return column.in_(list(grids) or [-1])


def present(*clauses):
    """The clauses that are not None (an :func:`in_grids` over the whole tree adds nothing)."""
    return [c for c in clauses if c is not None]


def fetch_tuples(conn: Connection, query) -> list[tuple]:
    """Rows as plain tuples (fetched at once): pandas builds frames from them far faster than from Rows."""
    return [tuple(r) for r in conn.execute(query).all()]


def fetch_raw(conn: Connection, query) -> list[tuple]:
    """Rows of a large read straight from the DBAPI cursor: SQLAlchemy binds the parameters, but the
    values come back unprocessed (text timestamps on SQLite, enum values as strings), which the caller
    parses column-wise with pandas. Several times faster than building Row objects at city scale."""
    result = conn.execute(query)
    try:
        return [tuple(r) for r in result.cursor.fetchall()]
    finally:
        result.close()


def _day(value) -> date | None:
    """A date column's raw DBAPI value as a date (SQLite gives text, PostgreSQL a date)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def day_start(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time())


def grid_areas(tree: Tree, grids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Each grid's (village, township) ids, 0 where the tree has none (looked up once, not per venue)."""
    return {g: (tree.grid_village(g) or 0, tree.grid_township(g) or 0) for g in grids}


def metric_crs(tree: Tree) -> str | None:
    """The one metric CRS of every position a plan compares: the UTM zone of the store's top unit(s)."""
    points = [c for c in (tree.units[r].centroid for r in tree.roots) if c is not None]
    if not points:
        return None
    return metric_crs_for(float(np.mean([p[0] for p in points])), float(np.mean([p[1] for p in points])))


# ---------------------------------------------------------------------------------------------
# The planner's inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastBasis:
    """The stored forecast a plan is ordered by (decisions 0030, 0036): the active model version and each
    venue's expected severity-weighted hazards found by a visit on the day (what the replay's FORECAST
    plans with: :func:`domain.forecast.expected_per_visit` of the stored probability and severity weight
    over the days since the venue's last inspection, :data:`domain.planner.NEVER_VISITED_DAYS` if never).
    A venue of the plan without a score (registered after the scoring) gets the scored venues' mean
    probability and severity weight (over every venue the version scored, so a plan over part of a
    township values it as the township's plan does)."""

    version: int
    created_at: datetime
    cutoff: date
    scored_on: date | None
    scored: int  # venues of the plan with a score of this version
    expected: dict[int, float]


@dataclass(frozen=True)
class PlanInputs:
    day: date
    inspectors: list[Inspector]
    venues: list[VenueToVisit]
    rechecks: list[HazardRecheck]
    campaigns: list[Campaign]
    capacity: Capacity
    reassign: dict[int, int]
    done: dict[int, int]  # inspections already recorded on ``day`` per inspector (they use up capacity)
    starts: dict[int, tuple[float, float]]  # where each inspector's day starts, (lon, lat) WGS84
    forecast: ForecastBasis | None = None  # None: no model, or none of the scope's venues scored


def load_inspectors(
    conn: Connection,
    tree: Tree,
    grids: Sequence[int],
    capacity: Capacity,
    done: Mapping[int, int],
    *,
    crs: str | None = None,
) -> tuple[list[Inspector], dict[int, tuple[float, float]]]:
    """The active inspectors of ``grids`` (in metres, projected to ``crs``) and where each day starts
    (lon, lat): their home, else their first grid's centre. Capacity left is the day's less what is done."""
    grid_set = set(grids)
    rows = conn.execute(
        select(User.id, User.display_name, User.home_lon, User.home_lat, InspectorGrid.grid_id)
        .join(InspectorGrid, InspectorGrid.user_id == User.id)
        .where(
            User.role == Role.INSPECTOR,
            User.is_active,
            *present(in_grids(InspectorGrid.grid_id, tree, grids)),
        )
        .order_by(User.id, InspectorGrid.grid_id)
    ).all()
    by_user: dict[int, dict] = {}
    for uid, name, lon, lat, gid in rows:
        if gid not in grid_set:
            continue
        u = by_user.setdefault(uid, {"name": name, "lon": lon, "lat": lat, "grids": []})
        u["grids"].append(gid)
    starts: dict[int, tuple[float, float]] = {}
    for uid, u in by_user.items():
        centre = tree.units[u["grids"][0]].centroid or (np.nan, np.nan)
        lon = u["lon"] if u["lon"] is not None else centre[0]
        lat = u["lat"] if u["lat"] is not None else centre[1]
        starts[uid] = (float(lon), float(lat))
    xy = to_metres([p[0] for p in starts.values()], [p[1] for p in starts.values()], crs)
    out = []
    for (uid, u), (x, y) in zip(by_user.items(), xy, strict=True):
        areas = grid_areas(tree, u["grids"])
        out.append(
            Inspector(
                uid,
                u["name"],
                frozenset(u["grids"]),
                float(x),
                float(y),
                frozenset(v for v, _ in areas.values() if v),
                frozenset(t for _, t in areas.values() if t),
                max(0, capacity.of(uid) - int(done.get(uid, 0))),
            )
        )
    return out, starts


def done_on(conn: Connection, day: date, inspector_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Inspections recorded on ``day`` per inspector."""
    q = (
        select(Inspection.inspector_id, func.count())
        .where(
            Inspection.inspected_at >= day_start(day),
            Inspection.inspected_at < day_start(day + timedelta(days=1)),
            Inspection.inspector_id.is_not(None),
        )
        .group_by(Inspection.inspector_id)
    )
    if inspector_ids is not None:
        q = q.where(Inspection.inspector_id.in_(list(inspector_ids) or [-1]))
    return {int(k): int(v) for k, v in conn.execute(q).all() if k is not None}


def load_plan_inputs(
    conn: Connection,
    day: date,
    scope_unit_id: int | None = None,
    *,
    grids: Sequence[int] | None = None,
) -> PlanInputs:
    """The planner's inputs for ``day`` over a scope (a unit's grids; the whole tree for None)."""
    tree = store_tree(conn)
    crs = metric_crs(tree)
    grids = list(grids) if grids is not None else tree.grids_under(scope_unit_id)
    capacity = load_capacity(conn)
    campaigns = [c for c in load_campaigns(conn) if c.start <= day <= c.end]
    done = done_on(conn, day)
    inspectors, starts = load_inspectors(conn, tree, grids, capacity, done, crs=crs)
    loaded = {i.id for i in inspectors}
    reassign = load_reassignments(conn, day)
    # Accepted reassignments: visits moved to an inspector of this plan come along wherever they lie;
    # visits moved to someone outside it are theirs now and leave this plan.
    forced_in = sorted(v for v, i in reassign.items() if i in loaded)
    gone = {v for v, i in reassign.items() if i not in loaded}
    horizon = day + timedelta(days=RECHECK_LEAD_DAYS)
    gfilter = in_grids(Venue.grid_id, tree, grids)
    where_area = gfilter if gfilter is None or not forced_in else or_(gfilter, Venue.id.in_(forced_in))
    hz = conn.execute(
        select(Hazard.id, Hazard.venue_id, Hazard.deadline)
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(
            Hazard.status == HazardStatus.OPEN,
            Hazard.deadline <= horizon,
            Venue.is_active,
            *present(where_area),
        )
    ).all()
    rechecks = [HazardRecheck(int(h), int(v), d) for h, v, d in hz if int(v) not in gone]
    basis_model = active_model(conn)
    scores = _scores(conn, basis_model[0], where_area) if basis_model is not None else {}
    wanted = [
        Venue.next_due_on.is_(None),
        Venue.next_due_on <= day,
        Venue.id.in_(
            select(Hazard.venue_id).where(Hazard.status == HazardStatus.OPEN, Hazard.deadline <= horizon)
        ),
    ]
    if campaigns:
        wanted.append(Venue.category.in_(sorted({VenueCategory(c.category) for c in campaigns})))
    # With a forecast every venue of the scope is a candidate (a visit may be worth it before it is due).
    which = [] if scores else [or_(*wanted)]
    # Raw DBAPI rows (a city's 110,000 venues with a forecast): enums as values, dates parsed here.
    rows = [
        (*r[:7], _day(r[7]), _day(r[8]))
        for r in fetch_raw(
            conn,
            select(
                Venue.id,
                Venue.name,
                Venue.grid_id,
                Venue.safety_code,
                Venue.category,
                Venue.lon,
                Venue.lat,
                Venue.next_due_on,
                Venue.last_inspected_on,
            ).where(Venue.is_active, *which, *present(where_area)),
        )
        if int(r[0]) not in gone
    ]
    basis = None
    if scores and basis_model is not None:
        basis = _basis(basis_model, scores, [(int(r[0]), r[8]) for r in rows], day)
        rows = _could_be_chosen(rows, basis.expected, inspectors, rechecks, campaigns, day, reassign)
    areas = grid_areas(tree, {int(r[2]) for r in rows})
    xy = to_metres([r[5] for r in rows], [r[6] for r in rows], crs)
    venues = [
        VenueToVisit(
            int(vid),
            name,
            int(gid),
            *areas[int(gid)],
            SafetyCode(code),
            VenueCategory(cat),
            float(x),
            float(y),
            due,
            last is None,
        )
        for (vid, name, gid, code, cat, _, _, due, last), (x, y) in zip(rows, xy, strict=True)
    ]
    return PlanInputs(
        day,
        inspectors,
        venues,
        rechecks,
        campaigns,
        capacity,
        {v: i for v, i in reassign.items() if i in loaded},
        done,
        starts,
        basis,
    )


#: The active forecast version: model id, version, created at, cut-off, scored on, and the mean
#: probability and severity weight over every venue it scored (what an unscored venue gets).
ActiveModel = tuple[int, int, datetime, date, date | None, tuple[float, float]]


def active_model(conn: Connection) -> ActiveModel | None:
    """The active forecast version (see :data:`ActiveModel`); None: no model."""
    row = conn.execute(
        select(ForecastModel.id, ForecastModel.version, ForecastModel.created_at, ForecastModel.cutoff).where(
            ForecastModel.is_active
        )
    ).first()
    if row is None:
        return None
    scored_on, p, sev = conn.execute(
        select(
            func.max(VenueForecast.scored_on),
            func.avg(VenueForecast.probability),
            func.avg(VenueForecast.severity),
        ).where(VenueForecast.model_id == row[0])
    ).one()
    mean = (float(p or 0.0), float(sev or 1.0))
    return int(row[0]), int(row[1]), row[2], row[3], scored_on, mean


def _scores(conn: Connection, model_id: int, where_area) -> dict[int, tuple[float, float]]:
    """The active version's (probability, severity weight) of the active venues in the area."""
    rows = fetch_raw(
        conn,
        select(VenueForecast.venue_id, VenueForecast.probability, VenueForecast.severity)
        .join(Venue, Venue.id == VenueForecast.venue_id)
        .where(VenueForecast.model_id == model_id, Venue.is_active, *present(where_area)),
    )
    return {int(v): (float(p), float(s)) for v, p, s in rows}


def _could_be_chosen(
    rows: list,
    expected: Mapping[int, float],
    inspectors: Sequence[Inspector],
    rechecks: Sequence[HazardRecheck],
    campaigns: Sequence[Campaign],
    day: date,
    reassign: Mapping[int, int],
) -> list:
    """The venue rows a forecast-guided plan could choose: every venue needed by the 平安码 rules (due,
    re-check, campaign category, reassigned) and, of the others (wanted only for their forecast), in a
    grid with one inspector the ``capacity`` best by expected value — no other can make that inspector's
    day, which takes the top ``capacity`` of a list these all outrank — and all of them in a grid shared
    by several inspectors. In a grid nobody covers they are dropped (never planned, never overflow).
    The plan is the one all the rows give (the city's 110,000 venues become a few tens of thousands)."""
    covering: dict[int, list[int]] = {}
    for i in inspectors:
        for g in i.grid_ids:
            covering.setdefault(g, []).append(i.id)
    capacity = {i.id: int(i.capacity or 0) for i in inspectors}
    recheck = {r.venue_id for r in rechecks}
    categories = {VenueCategory(c.category) for c in campaigns}
    keep: list = []
    pool: dict[int, list] = {}
    for r in rows:
        vid, gid, due = int(r[0]), int(r[2]), r[7]
        needed = (
            due is None
            or due <= day
            or vid in recheck
            or vid in reassign
            or (categories and VenueCategory(r[4]) in categories)
        )
        owners = covering.get(gid, ())
        if needed or len(owners) > 1:
            keep.append(r)
        elif owners and expected.get(vid, 0.0) > 0:
            pool.setdefault(gid, []).append(r)
    for gid, rs in pool.items():
        rs.sort(key=lambda r: (-expected[int(r[0])], int(r[0])))
        keep.extend(rs[: capacity[covering[gid][0]]])
    return keep


def _basis(
    model: ActiveModel,
    scores: Mapping[int, tuple[float, float]],
    venues: Sequence[tuple[int, date | None]],
    day: date,
) -> ForecastBasis:
    """Each venue's expected value of a visit on ``day`` (see :class:`ForecastBasis`)."""
    _, version, created, cutoff, scored_on, mean = model
    ids = [v for v, _ in venues]
    known = [scores.get(v, mean) for v in ids]
    since = np.array(
        [NEVER_VISITED_DAYS if last is None else (day - last).days for _, last in venues], dtype=float
    )
    value = fc.expected_per_visit(
        np.array([k[0] for k in known], dtype=float), np.array([k[1] for k in known], dtype=float), since
    )
    return ForecastBasis(
        version,
        created,
        cutoff,
        scored_on,
        sum(1 for v in ids if v in scores),
        {v: float(x) for v, x in zip(ids, value, strict=True)},
    )


# ---------------------------------------------------------------------------------------------
# The day plan
# ---------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = [
    "inspector_id",
    "inspector",
    "planned",
    "done_today",
    "spare",
    "red",
    "route_km",
    "overflow",
]


@dataclass(frozen=True)
class PlanView:
    """A day's plan over a scope, with what the pages need to show it (English columns; Chinese headers
    are :mod:`components.inspection_tables`')."""

    plan: DayPlan
    inputs: PlanInputs
    tree: Tree
    seconds: dict[str, float]

    def inspector_name(self, inspector_id: int | None) -> str:
        if inspector_id is None:
            return NOBODY
        return next((i.name for i in self.inputs.inspectors if i.id == inspector_id), str(inspector_id))

    def summary(self) -> pd.DataFrame:
        """One row per inspector: planned, done today, spare capacity, red visits, route km, overflow."""
        over = {r.inspector_id: len(r.overflow) for r in self.plan.routes}
        rows = [
            (
                r.inspector_id,
                r.inspector_name,
                len(r.visits),
                int(self.inputs.done.get(r.inspector_id, 0)),
                r.spare,
                sum(1 for v in r.visits if v.code == SafetyCode.RED),
                round(r.length_m / 1000, 1),
                over.get(r.inspector_id, 0),
            )
            for r in self.plan.routes
        ]
        return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    def overflow_table(self) -> pd.DataFrame:
        """What did not fit an inspector's day: inspector, village and count (venues nobody covers are
        not over anyone's capacity: :meth:`uncovered_table`)."""
        rows = [
            (self.inspector_name(o.inspector_id), self.tree.name(o.village_id), o.count)
            for o in self.plan.overflow
            if o.inspector_id is not None
        ]
        return pd.DataFrame(rows, columns=["inspector", "village", "count"])

    def uncovered_table(self) -> pd.DataFrame:
        """Venues due today in grids no inspector covers (no account is assigned there yet): township,
        village, venue, code and why it is due, in priority order."""
        rows = [
            (
                self.tree.name(v.township_id),
                self.tree.name(v.village_id),
                v.venue_name,
                SafetyCode(v.code).value,
                v.reason,
            )
            for v in sorted(self.plan.uncovered, key=lambda v: v.priority)
        ]
        return pd.DataFrame(rows, columns=["township", "village", "venue", "code", "reason"])

    def route_table(self, inspector_id: int) -> pd.DataFrame:
        """One inspector's route: stop, venue, code, reason, metres from the previous stop."""
        visits = self.plan.route_of(inspector_id).visits
        return pd.DataFrame(
            [(v.stop, v.venue_name, SafetyCode(v.code).value, v.reason, round(v.leg_m)) for v in visits],
            columns=["stop", "venue", "code", "reason", "leg_m"],
        )


def plan_for(
    conn: Connection,
    day: date,
    scope_unit_id: int | None = None,
    *,
    grids: Sequence[int] | None = None,
    user: CurrentUser | None = None,
) -> PlanView:
    """Load the inputs and plan ``day`` over the scope (accepted reassignments of the day applied).

    With an active forecast scoring the scope's venues the plan is forecast-guided (decision 0036): red
    venues due and hazard re-checks first, then every venue by the expected hazards a visit finds
    (:class:`ForecastBasis`); without one, the 平安码 rules alone order it, as before any model."""
    t0 = time.perf_counter()
    tree = store_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "inspection plan")
    inputs = load_plan_inputs(conn, day, scope_unit_id, grids=grids)
    t1 = time.perf_counter()
    plan = plan_day(
        day,
        inputs.inspectors,
        inputs.venues,
        inputs.rechecks,
        inputs.campaigns,
        capacity=inputs.capacity.default,
        recheck_lead_days=RECHECK_LEAD_DAYS,
        reassign=inputs.reassign,
        expected=inputs.forecast.expected if inputs.forecast is not None else None,
    )
    t2 = time.perf_counter()
    return PlanView(plan, inputs, tree, {"load_s": round(t1 - t0, 3), "plan_s": round(t2 - t1, 3)})


# ---------------------------------------------------------------------------------------------
# One inspector's day (/my_day)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InspectorDay:
    inspector_id: int
    day: date
    route: Route | None  # None: the inspector has no grid
    stops: pd.DataFrame  # the route in order with address, code, reason
    overflow: pd.DataFrame  # what did not fit today
    done: pd.DataFrame  # inspections recorded on ``day`` by this inspector
    start: tuple[float, float] | None  # (lon, lat) where the day starts
    grid_ids: tuple[int, ...]
    forecast: ForecastBasis | None = None  # the forecast the route is chosen by; None: 平安码 rules alone

    @property
    def venue_ids(self) -> set[int]:
        """The venues of the day: to visit, not fitted, or already inspected."""
        return {int(v) for f in (self.stops, self.overflow, self.done) for v in f["venue_id"]}


def require_day_venue(day: InspectorDay, user: CurrentUser, venue_id: int) -> int:
    """A venue opened from an inspector's day: one of :attr:`InspectorDay.venue_ids` (an admin: any);
    refused and logged otherwise (the venue card then checks the venue's grid itself)."""
    if venue_id in day.venue_ids or user.role is Role.ADMIN:
        return venue_id
    raise out_of_scope(user, "my_day venue", venue_id, "该场所不在当日的检查清单中")


def inspector_grids(conn: Connection, inspector_id: int) -> list[int]:
    return [
        int(g)
        for g in conn.execute(
            select(InspectorGrid.grid_id)
            .where(InspectorGrid.user_id == inspector_id)
            .order_by(InspectorGrid.grid_id)
        ).scalars()
    ]


def inspectors_under(conn: Connection, unit_id: int) -> list[tuple[int, str]]:
    """(id, name) of the active inspectors with a grid inside ``unit_id``, by name."""
    tree = store_tree(conn)
    grids = tree.grids_under(unit_id)
    rows = conn.execute(
        select(User.id, User.display_name)
        .join(InspectorGrid, InspectorGrid.user_id == User.id)
        .where(
            User.role == Role.INSPECTOR,
            User.is_active,
            *present(in_grids(InspectorGrid.grid_id, tree, grids)),
        )
        .distinct()
    ).all()
    return sorted(((int(i), n) for i, n in rows), key=lambda x: (x[1], x[0]))


def linked_grids(conn: Connection, grids: Iterable[int], max_rounds: int = 10) -> list[int]:
    """``grids`` and every grid reachable through inspectors who share a grid (the planner's coupled part)."""
    found = set(grids)
    frontier = set(found)
    for _ in range(max_rounds):
        if not frontier:
            break
        users = select(InspectorGrid.user_id).where(InspectorGrid.grid_id.in_(sorted(frontier)))
        more = set(
            conn.execute(
                select(InspectorGrid.grid_id)
                .join(User, User.id == InspectorGrid.user_id)
                .where(InspectorGrid.user_id.in_(users), User.is_active, User.role == Role.INSPECTOR)
            ).scalars()
        )
        frontier = more - found
        found |= more
    return sorted(found)


STOP_COLUMNS = [
    "stop",
    "venue_id",
    "name",
    "category",
    "code",
    "address",
    "reason",
    "tier",
    "overdue_days",
    "leg_m",
    "lon",
    "lat",
    "next_due_on",
]


def _stops_frame(conn: Connection, visits: Sequence[PlannedVisit]) -> pd.DataFrame:
    if not visits:
        return pd.DataFrame(columns=STOP_COLUMNS)
    venue = {
        int(r.id): r
        for r in conn.execute(
            select(Venue.id, Venue.address, Venue.lon, Venue.lat, Venue.next_due_on).where(
                Venue.id.in_([v.venue_id for v in visits])
            )
        ).all()
    }
    rows = []
    for v in visits:
        r = venue.get(v.venue_id)
        rows.append(
            {
                "stop": v.stop,
                "venue_id": v.venue_id,
                "name": v.venue_name,
                "category": VenueCategory(v.category).value,
                "code": SafetyCode(v.code).value,
                "address": r.address if r else "",
                "reason": v.reason,
                "tier": v.tier.value,
                "overdue_days": v.overdue_days,
                "leg_m": round(v.leg_m),
                "lon": r.lon if r else None,
                "lat": r.lat if r else None,
                "next_due_on": r.next_due_on if r else None,
            }
        )
    return pd.DataFrame(rows, columns=STOP_COLUMNS)


def inspector_day(
    conn: Connection, inspector_id: int, day: date, *, user: CurrentUser | None = None
) -> InspectorDay:
    """The inspector's list for ``day`` in route order, what did not fit, and what they already did that day.

    Only the inspectors linked to this one through shared grids (and their grids) are planned: who
    gets a visit in a shared grid depends on those inspectors' loads and nothing else, so the route
    is the one the township plan gives (accepted reassignments included) at a fraction of the work.
    An inspector sees their own day; another role the day of an inspector with a grid in their scope.
    """
    tree = store_tree(conn)
    mine = inspector_grids(conn, inspector_id)
    if (
        user is not None
        and inspector_id != user.id
        and (user.role is Role.INSPECTOR or not any(tree.contains(user.scope_unit_id, g) for g in mine))
    ):
        raise out_of_scope(user, "inspector day", inspector_id, "该检查员不在您的管辖范围内")
    done = inspections_on(conn, inspector_id, day)
    if not mine:
        return InspectorDay(
            inspector_id, day, None, _stops_frame(conn, []), _stops_frame(conn, []), done, None, ()
        )
    view = plan_for(conn, day, grids=linked_grids(conn, mine))
    route = next((r for r in view.plan.routes if r.inspector_id == inspector_id), None)
    stops = _stops_frame(conn, route.visits if route else ())
    overflow = _stops_frame(conn, route.overflow if route else ())
    start = view.inputs.starts.get(inspector_id)
    return InspectorDay(
        inspector_id, day, route, stops, overflow, done, start, tuple(mine), view.inputs.forecast
    )
