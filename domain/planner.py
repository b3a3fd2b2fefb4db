"""平安码 day planner: who visits which venues today, in what order, what does not fit, and a replay of policies.

Also the rules leaders dispute around the plan: what a campaign (专项整治) may be (:func:`check_campaign`),
each inspector's daily capacity (:class:`Capacity`) and the 30-day load forecast (:func:`forecast_visits`).
Positions are handed in as metres (``x`` east, ``y`` north in one projected CRS, chosen by the caller:
``services`` project with :func:`geo.crs.to_metres`); the planner only measures between them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from domain.hierarchy import Tree
from domain.safety_code import (
    CADENCE_DAYS,
    RANK,
    CodeRules,
    HazardFact,
    InspectionFact,
    VenueFacts,
    evaluate,
    next_due,
    overdue_days,
)
from domain.vocabulary import (
    AdminLevel,
    HazardSeverity,
    InspectionResult,
    Labelled,
    SafetyCode,
    VenueCategory,
)

DEFAULT_CAPACITY = 15
#: The longest campaign (专项整治) that may be set, in days.
MAX_CAMPAIGN_DAYS = 366


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inspector:
    id: int
    name: str
    grid_ids: frozenset[int]
    x: float  # where the day starts (home, office or first grid's centre), metres east
    y: float  # ... metres north (the same projected CRS as the venues')
    village_ids: frozenset[int] = frozenset()  # villages and townships of the grids: overflow proposals
    township_ids: frozenset[int] = frozenset()
    capacity: int | None = None  # visits per day; None → the plan's default

    def __post_init__(self) -> None:
        # Accept lists and sets from callers; freeze them so the plan cannot depend on mutation.
        for name in ("grid_ids", "village_ids", "township_ids"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))


@dataclass(frozen=True, slots=True)
class VenueToVisit:
    id: int
    name: str
    grid_id: int
    village_id: int
    township_id: int
    code: SafetyCode
    category: VenueCategory
    x: float  # metres east (a projected CRS shared by every position of the plan)
    y: float  # metres north
    next_due_on: date | None  # None: never inspected, due now
    first: bool = False  # never inspected (an imported venue is due on its import day: a first visit)


@dataclass(frozen=True, slots=True)
class HazardRecheck:
    hazard_id: int
    venue_id: int
    deadline: date  # rectification deadline; the re-check is planned from deadline − lead days


@dataclass(frozen=True, slots=True)
class Campaign:
    """专项整治: every venue of ``category`` in the area is visited once per ``every_days`` while it runs."""

    name: str
    category: VenueCategory
    area_ids: frozenset[int]  # village or township ids; a venue is in if either of its ids is
    start: date
    end: date  # inclusive
    every_days: int = 7

    def __post_init__(self) -> None:
        object.__setattr__(self, "area_ids", frozenset(self.area_ids))
        if self.end < self.start or self.every_days < 1:
            raise ValueError("专项整治的结束日期不得早于开始日期，周期须 ≥ 1 天")

    def visits_on(self, venue_id: int, day: date) -> bool:
        """Whether the campaign visits this venue on ``day``: its slot in the cycle comes up.

        A venue's slot is ``venue_id mod period`` so the load spreads evenly over the days of the
        cycle instead of flooding the first one; the period is capped by the campaign's length so
        a short campaign still reaches every venue once.
        """
        if not (self.start <= day <= self.end):
            return False
        return (day - self.start).days % self.period == venue_id % self.period

    @property
    def period(self) -> int:
        """Days between two visits of one venue: ``every_days``, capped by the campaign's length."""
        return min(self.every_days, (self.end - self.start).days + 1)


@dataclass(frozen=True)
class Capacity:
    """Visits an inspector can make in a day: a default and per-inspector overrides (an admin's setting)."""

    default: int = DEFAULT_CAPACITY
    per_inspector: Mapping[int, int] = field(default_factory=dict)

    def of(self, inspector_id: int) -> int:
        return int(self.per_inspector.get(inspector_id, self.default))


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class PriorityTier(Labelled):
    """Why a visit ranks where it does, most urgent first (the first element of the sort key)."""

    RED = "red", "红码场所"
    OVERDUE = "overdue", "逾期未检"
    RECHECK = "recheck", "隐患复查"
    YELLOW = "yellow", "黄码到期"
    GREEN = "green", "绿码到期"
    CAMPAIGN = "campaign", "专项整治"
    FORECAST = "forecast", "预测隐患"  # not due: chosen for the hazards it is expected to find


TIER_ORDER: dict[PriorityTier, int] = {t: i for i, t in enumerate(PriorityTier)}
_TIERS = list(PriorityTier)
_FORECAST_TIER = TIER_ORDER[PriorityTier.FORECAST]
_NO_DEADLINE = date.max.toordinal()
_RED, _YELLOW = SafetyCode.RED, SafetyCode.YELLOW
_T_RED, _T_OVERDUE, _T_RECHECK = PriorityTier.RED, PriorityTier.OVERDUE, PriorityTier.RECHECK
_T_YELLOW, _T_GREEN = PriorityTier.YELLOW, PriorityTier.GREEN
_T_CAMPAIGN, _T_FORECAST = PriorityTier.CAMPAIGN, PriorityTier.FORECAST


class ProposalScope(Labelled):
    VILLAGE = "village", "同村"
    TOWNSHIP = "township", "同乡镇"


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    venue_id: int
    venue_name: str
    inspector_id: int | None  # None: no inspector covers the venue's grid
    grid_id: int
    village_id: int
    township_id: int
    code: SafetyCode
    category: VenueCategory
    x: float  # metres, as the venue was given
    y: float
    tier: PriorityTier
    overdue_days: int
    recheck_deadline: date | None
    reasons: tuple[str, ...]
    priority: tuple[int, int, int, int]  # (tier, −overdue days, recheck deadline ordinal, venue id)
    stop: int = 0  # 1-based position in the route; 0 when not routed (overflow)
    leg_m: float = 0.0  # metres from the previous stop (or the start point)

    @property
    def reason(self) -> str:
        return "；".join(self.reasons)


@dataclass(frozen=True, slots=True)
class Route:
    inspector_id: int
    inspector_name: str
    capacity: int
    visits: tuple[PlannedVisit, ...]  # in route order
    overflow: tuple[PlannedVisit, ...]  # assigned but beyond capacity, in priority order
    length_m: float  # open path from the start point through every stop

    @property
    def spare(self) -> int:
        return self.capacity - len(self.visits)


@dataclass(frozen=True, slots=True)
class Overflow:
    """Visits that did not fit, per inspector (None: nobody covers the grid) and village."""

    inspector_id: int | None
    village_id: int
    count: int
    venue_ids: tuple[int, ...]  # in priority order


@dataclass(frozen=True, slots=True)
class Proposal:
    """Move one overflowing visit to an inspector with spare capacity; applied only if a user accepts."""

    venue_id: int
    venue_name: str
    village_id: int
    from_inspector_id: int | None
    to_inspector_id: int
    scope: ProposalScope
    reason: str


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What capacity left undone (forecast-guided plans): mandatory visits — red venues due and hazard
    re-checks — that did not fit, and the extra visits a day (and inspectors at the default capacity)
    that would cover them."""

    mandatory: int
    done: int
    extra_visits: int
    inspectors_needed: int

    @property
    def undone(self) -> int:
        return self.mandatory - self.done


@dataclass(frozen=True)
class DayPlan:
    day: date
    capacity: int
    routes: tuple[Route, ...]  # one per inspector, by inspector id
    overflow: tuple[Overflow, ...]
    proposals: tuple[Proposal, ...]
    uncovered: tuple[PlannedVisit, ...] = ()  # needed visits in grids no inspector covers
    shortfall: Shortfall | None = None  # with a forecast: mandatory visits left undone

    def route_of(self, inspector_id: int) -> Route:
        return next(r for r in self.routes if r.inspector_id == inspector_id)

    @property
    def planned(self) -> int:
        return sum(len(r.visits) for r in self.routes)

    @property
    def not_planned(self) -> int:
        return sum(o.count for o in self.overflow)

    def accepted(self, proposals: Iterable[Proposal]) -> dict[int, int]:
        """The ``reassign`` argument that applies these proposals when the day is planned again."""
        return {p.venue_id: p.to_inspector_id for p in proposals}


# ---------------------------------------------------------------------------------------------
# Space and routing
# ---------------------------------------------------------------------------------------------


def distance_matrix(xy: np.ndarray) -> list[list[float]]:
    """Euclidean metres between every pair of rows; a nested list because the loops below are scalar."""
    d = xy[:, None, :] - xy[None, :, :]
    return np.hypot(d[..., 0], d[..., 1]).tolist()


def path_length(path: Sequence[int], dist: Sequence[Sequence[float]]) -> float:
    return sum(dist[a][b] for a, b in pairwise(path))


def nearest_neighbour(dist: Sequence[Sequence[float]]) -> list[int]:
    """Open path from node 0 always to the nearest unvisited node; ties go to the lower index."""
    n = len(dist)
    path, left = [0], list(range(1, n))
    while left:
        row = dist[path[-1]]
        nxt = min(left, key=lambda j: row[j])  # min keeps the first of equals: deterministic
        left.remove(nxt)
        path.append(nxt)
    return path


def two_opt(path: Sequence[int], dist: Sequence[Sequence[float]]) -> list[int]:
    """Improve an open path with a fixed first node by segment reversals until none shortens it.

    Only strictly improving moves are taken, so the result is never longer than the input.
    """
    p = list(path)
    n = len(p)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b, c = p[i - 1], p[i], p[j]
                delta = dist[a][c] - dist[a][b]
                if j + 1 < n:
                    e = p[j + 1]
                    delta += dist[b][e] - dist[c][e]
                if delta < -1e-7:
                    p[i : j + 1] = p[i : j + 1][::-1]
                    improved = True
    return p


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Need:
    venue: VenueToVisit
    overdue: int = 0
    due: bool = False
    deadlines: list[tuple[date, int]] = field(default_factory=list)  # (deadline, hazard id)
    campaigns: list[str] = field(default_factory=list)
    expected: float | None = None  # forecast: expected severity-weighted hazards this visit finds
    #: A hazard's 整改期限 has passed unfixed: the rule makes the venue red (docs/safety-code.md) though its
    #: stored code changes only at the next visit, so the re-check ranks with the red venues.
    late_fix: bool = False
    _key: tuple[int, int, int, int] | None = None  # cached: sorts call key() tens of thousands of times
    _fkey: tuple[int, float, tuple[int, int, int, int]] | None = None  # forecast_key, cached the same way

    def mandatory(self) -> bool:
        """A red venue due today or a hazard re-check: first in a forecast-guided plan."""
        return (self.due and self.venue.code == _RED) or bool(self.deadlines)

    def forecast_key(self) -> tuple[int, float, tuple[int, int, int, int]]:
        """The forecast-guided sort key; valid once ``expected`` is set (cached like :meth:`key`)."""
        if self._fkey is None:
            self._fkey = (0 if self.mandatory() else 1, -(self.expected or 0.0), self.key())
        return self._fkey

    def tier(self) -> PriorityTier:
        # Members read from module constants: an Enum member's class attribute costs ~0.2 µs on 3.11,
        # and a forecast-guided city plan asks every venue's tier.
        code = self.venue.code
        if code == _RED or self.late_fix:
            return _T_RED
        if self.overdue > 0:
            return _T_OVERDUE
        if self.deadlines:
            return _T_RECHECK
        if self.due:
            return _T_YELLOW if code == _YELLOW else _T_GREEN
        if self.campaigns:
            return _T_CAMPAIGN
        return _T_FORECAST

    def key(self) -> tuple[int, int, int, int]:
        """The priority sort key; valid once every reason has been gathered (keys are cached)."""
        if self._key is None:
            deadline = min(self.deadlines)[0].toordinal() if self.deadlines else _NO_DEADLINE
            self._key = (TIER_ORDER[self.tier()], -self.overdue, deadline, self.venue.id)
        return self._key

    def reasons(self, day: date) -> tuple[str, ...]:
        v, out = self.venue, []
        if self.due:
            if v.code == SafetyCode.RED:
                out.append("红码场所，每日必检")
            elif v.next_due_on is None or v.first:
                out.append("尚无检查记录，需首次检查")
            elif v.code == SafetyCode.YELLOW:
                out.append("黄码场所，每周复查到期")
            else:
                out.append("绿码场所，每月复查到期")
        if self.overdue > 0:
            out.append(f"逾期{self.overdue}天")
        for deadline, _ in sorted(self.deadlines):
            late = (day - deadline).days
            out.append(
                f"隐患整改期限{deadline}复查" + (f"（已过期{late}天，按红码优先复查）" if late > 0 else "")
            )
        out.extend(f"专项整治：{name}" for name in sorted(set(self.campaigns)))
        if self.expected is not None and self.expected > 0:
            out.append(f"预测本次检查发现隐患期望{self.expected:.2f}")
        return tuple(out)


def _needs(
    day: date,
    venues: Mapping[int, VenueToVisit],
    rechecks: Iterable[HazardRecheck],
    campaigns: Sequence[Campaign],
    recheck_lead_days: int,
) -> dict[int, _Need]:
    needs: dict[int, _Need] = {}
    for v in venues.values():
        if v.next_due_on is None or v.next_due_on <= day:
            needs[v.id] = _Need(v, overdue_days(v.next_due_on, day), True)
    horizon = day + timedelta(days=recheck_lead_days)
    for r in rechecks:
        if r.deadline <= horizon:
            if r.venue_id not in venues:
                raise ValueError(f"隐患{r.hazard_id}所属场所{r.venue_id}不在场所清单中")
            need = needs.setdefault(r.venue_id, _Need(venues[r.venue_id]))
            recheck = (r.deadline, r.hazard_id)
            if recheck not in need.deadlines:  # the same hazard listed twice is one re-check
                need.deadlines.append(recheck)
            need.late_fix = need.late_fix or r.deadline < day
    active = [c for c in campaigns if c.start <= day <= c.end]
    if active:
        by_category: dict[VenueCategory, list[Campaign]] = defaultdict(list)
        for c in active:
            by_category[VenueCategory(c.category)].append(c)
        for v in venues.values():
            for c in by_category.get(v.category, ()):
                if (v.village_id in c.area_ids or v.township_id in c.area_ids) and c.visits_on(v.id, day):
                    needs.setdefault(v.id, _Need(v)).campaigns.append(c.name)
    return needs


def _assign(
    order: Sequence[_Need],
    inspectors: Mapping[int, Inspector],
    reassign: Mapping[int, int],
    key: Any = _Need.key,
) -> tuple[dict[int, list[_Need]], list[_Need]]:
    """Give each needed visit to one inspector: accepted proposals, then sole owners, then the least loaded.

    Grids covered by several inspectors are shared by load (ties to the lower id) after the
    visits with a single candidate are placed, so a shared grid does not pile onto an inspector
    whose own grids are already full.
    """
    covering: dict[int, list[int]] = defaultdict(list)
    for i in inspectors.values():  # inspectors is sorted by id, so each list is too
        for g in i.grid_ids:
            covering[g].append(i.id)
    lists: dict[int, list[_Need]] = {i: [] for i in inspectors}
    shared: list[_Need] = []
    uncovered: list[_Need] = []
    for n in order:
        forced = reassign.get(n.venue.id)
        if forced is not None and forced in lists:
            lists[forced].append(n)
            continue
        cands = covering.get(n.venue.grid_id, ())
        if len(cands) == 1:
            lists[cands[0]].append(n)
        elif cands:
            shared.append(n)
        else:
            uncovered.append(n)
    for n in shared:  # still in priority order
        best = min(covering[n.venue.grid_id], key=lambda i: (len(lists[i]), i))
        lists[best].append(n)
    for lst in lists.values():
        lst.sort(key=key)
    return lists, uncovered


def plan_day(
    day: date,
    inspectors: Iterable[Inspector],
    venues: Iterable[VenueToVisit],
    rechecks: Iterable[HazardRecheck] = (),
    campaigns: Iterable[Campaign] = (),
    capacity: int = DEFAULT_CAPACITY,
    *,
    recheck_lead_days: int = 1,
    reassign: Mapping[int, int] | None = None,
    expected: Mapping[int, float] | None = None,
    routes_only: bool = False,
) -> DayPlan:
    """Every inspector's visits for ``day``: who, which venues, in which order, with reasons.

    Needed visits: venues due (``next_due_on ≤ day``, or never inspected), hazard re-checks whose
    deadline is at most ``recheck_lead_days`` away, and active campaigns' visits of the day. Each
    inspector keeps the first ``capacity`` by the priority key ``(tier, −overdue days, earliest
    re-check deadline, venue id)`` and visits them along a nearest-neighbour + 2-opt route; the
    rest is reported per inspector and village with proposals to move visits to inspectors of the
    same village, else township, with spare capacity. ``reassign`` (venue id → inspector id)
    applies accepted proposals. The result does not depend on the order of any input.

    With ``expected`` (venue id → expected severity-weighted hazards a visit today finds, from the
    forecast) the plan is forecast-guided: mandatory visits (red venues due, hazard re-checks) first,
    by expected value, then every other venue with a positive expected value — due or not — by it;
    the plan's :class:`Shortfall` says how many mandatory visits did not fit.

    ``routes_only``: the routes and the shortfall alone, no overflow, proposals or uncovered visits
    (empty): the replay's simulated days read only who visits what, and at city scale with a forecast
    the visits that did not fit are most of the venues. The routes are the same either way.
    """
    if capacity < 0:
        raise ValueError("每日检查容量不得为负")
    insp = {i.id: i for i in sorted(inspectors, key=lambda i: i.id)}
    vs: dict[int, VenueToVisit] = {}
    for v in venues:
        if v.id in vs:
            raise ValueError(f"场所{v.id}重复")
        vs[v.id] = v
    camp = sorted(campaigns, key=lambda c: (c.name, c.start, c.end, c.category))
    needs = _needs(day, vs, rechecks, camp, recheck_lead_days)
    key: Any = _Need.key
    if expected is not None:
        key = _Need.forecast_key
        for vid, value in expected.items():
            if vid in vs and value > 0:
                n = needs.get(vid)
                if n is None:
                    needs[vid] = n = _Need(vs[vid])
                n.expected = float(value)
        for n in needs.values():
            if n.expected is None:
                n.expected = float(expected.get(n.venue.id, 0.0))
    order = sorted(needs.values(), key=key)
    lists, uncovered = _assign(order, insp, reassign or {}, key)

    caps = {i: (x.capacity if x.capacity is not None else capacity) for i, x in insp.items()}
    chosen = {i: lst[: caps[i]] for i, lst in lists.items()}
    shortfall = None
    if expected is not None:
        mandatory = sum(n.mandatory() for n in needs.values())
        done = sum(n.mandatory() for lst in chosen.values() for n in lst)
        extra = mandatory - done
        shortfall = Shortfall(mandatory, done, extra, math.ceil(extra / capacity) if capacity else 0)

    ids = list(insp)
    stops = [n for i in ids for n in chosen[i]]
    xy = np.array(
        [(insp[i].x, insp[i].y) for i in ids] + [(n.venue.x, n.venue.y) for n in stops], dtype=float
    ).reshape(-1, 2)
    starts = {i: xy[k] for k, i in enumerate(ids)}

    routes: list[Route] = []
    at = len(ids)
    for i in ids:
        ch = chosen[i]
        pts = xy[at : at + len(ch)]
        at += len(ch)
        visits, length = _route(day, i, ch, starts[i], pts)
        # A venue wanted only for its forecast is not missed when it does not fit: not overflow.
        late = (
            ()
            if routes_only
            else tuple(_visit(day, n, i) for n in lists[i][caps[i] :] if n.key()[0] != _FORECAST_TIER)
        )
        routes.append(Route(i, insp[i].name, caps[i], visits, late, length))
    if routes_only:
        return DayPlan(day, capacity, tuple(routes), (), (), (), shortfall)
    unc = tuple(_visit(day, n, None) for n in uncovered if n.key()[0] != _FORECAST_TIER)
    overflow, proposals = _overflow(routes, unc, insp, starts)
    return DayPlan(day, capacity, tuple(routes), overflow, proposals, unc, shortfall)


def _visit(day: date, n: _Need, inspector_id: int | None, stop: int = 0, leg: float = 0.0) -> PlannedVisit:
    v = n.venue
    return PlannedVisit(
        v.id, v.name, inspector_id, v.grid_id, v.village_id, v.township_id, SafetyCode(v.code),
        VenueCategory(v.category), v.x, v.y, _TIERS[n.key()[0]], n.overdue,
        min(n.deadlines)[0] if n.deadlines else None, n.reasons(day), n.key(), stop, leg,
    )  # fmt: skip


def _route(
    day: date, inspector_id: int, chosen: Sequence[_Need], start: np.ndarray, pts: np.ndarray
) -> tuple[tuple[PlannedVisit, ...], float]:
    if not chosen:
        return (), 0.0
    dist = distance_matrix(np.vstack([start[None, :], pts]))
    path = two_opt(nearest_neighbour(dist), dist)
    visits = tuple(
        _visit(day, chosen[node - 1], inspector_id, k, dist[prev][node])
        for k, (prev, node) in enumerate(pairwise(path), start=1)
    )
    return visits, path_length(path, dist)


def _overflow(
    routes: Sequence[Route],
    uncovered: Sequence[PlannedVisit],
    insp: Mapping[int, Inspector],
    starts: Mapping[int, np.ndarray],
) -> tuple[tuple[Overflow, ...], tuple[Proposal, ...]]:
    """Group what did not fit and propose, greedily in priority order, who could take it.

    Candidates are inspectors of the visit's village with spare capacity, else of its township;
    among them the most spare capacity wins, then the shortest distance from their start point,
    then the lower id. Spare capacity is used up as proposals are made, so they can all be accepted.
    """
    groups: dict[tuple[int | None, int], list[PlannedVisit]] = defaultdict(list)
    late: list[PlannedVisit] = list(uncovered)
    for r in routes:
        late.extend(r.overflow)
    for v in late:
        groups[(v.inspector_id, v.village_id)].append(v)
    overflow = tuple(
        Overflow(i, village, len(vs), tuple(v.venue_id for v in sorted(vs, key=lambda v: v.priority)))
        for (i, village), vs in sorted(
            groups.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or 0, kv[0][1])
        )
    )
    spare = {r.inspector_id: r.spare for r in routes}
    by_village: dict[int, list[int]] = defaultdict(list)
    by_township: dict[int, list[int]] = defaultdict(list)
    for i in insp.values():
        for x in i.village_ids:
            by_village[x].append(i.id)
        for x in i.township_ids:
            by_township[x].append(i.id)
    proposals: list[Proposal] = []
    left = sum(s for s in spare.values() if s > 0)  # no spare anywhere: nothing to propose
    if left <= 0:
        return overflow, ()
    late.sort(key=lambda v: v.priority)
    there = np.array([(v.x, v.y) for v in late], dtype=float).reshape(-1, 2)
    for v, pos in zip(late, there, strict=True):
        if left <= 0:
            break
        for scope, pool in (
            (ProposalScope.VILLAGE, by_village.get(v.village_id, ())),
            (ProposalScope.TOWNSHIP, by_township.get(v.township_id, ())),
        ):
            cands = [i for i in pool if i != v.inspector_id and spare[i] > 0]
            if not cands:
                continue
            best = min(cands, key=lambda i: (-spare[i], float(np.hypot(*(starts[i] - pos))), i))
            proposals.append(
                Proposal(
                    venue_id=v.venue_id,
                    venue_name=v.venue_name,
                    village_id=v.village_id,
                    from_inspector_id=v.inspector_id,
                    to_inspector_id=best,
                    scope=scope,
                    reason=f"{insp[best].name}（{scope.label}）尚有{spare[best]}个空余名额",
                )
            )
            spare[best] -= 1
            left -= 1
            break
    return overflow, tuple(proposals)


# ---------------------------------------------------------------------------------------------
# Campaign rules and the load forecast
# ---------------------------------------------------------------------------------------------

CAMPAIGN_LEVELS = (AdminLevel.VILLAGE, AdminLevel.TOWNSHIP)


def check_campaign(
    *,
    name: str,
    category: str | None,
    area_ids: Iterable[int],
    start: date | None,
    end: date | None,
    every_days: int | None,
    today: date,
    existing: Iterable[Campaign],
    tree: Tree,
    scope_unit_id: int,
) -> dict[str, str]:
    """Every problem of a new campaign, by field (empty when it can be stored).

    A campaign has a unique name of at most 50 characters, one venue category, villages or
    townships inside the user's scope (``scope_unit_id``), an end not before its start, not past
    and at most :data:`MAX_CAMPAIGN_DAYS` after it, and a cycle of 1–90 days.
    """
    problems: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        problems["名称"] = "请填写专项整治名称"
    elif len(name) > 50:
        problems["名称"] = "名称不能超过 50 字"
    elif any(c.name == name for c in existing):
        problems["名称"] = f"已有同名专项整治“{name}”"
    if category not in {c.value for c in VenueCategory}:
        problems["场所类别"] = "请选择场所类别"
    areas = list(area_ids or [])
    if not areas:
        problems["区域"] = "请至少选择一个村（社区）或乡镇（街道）"
    else:
        bad = [a for a in areas if a not in tree or tree.level(a) not in CAMPAIGN_LEVELS]
        outside = [a for a in areas if a not in bad and not tree.contains(scope_unit_id, a)]
        if bad:
            problems["区域"] = "区域只能是村（社区）或乡镇（街道）"
        elif outside:
            problems["区域"] = f"{'、'.join(tree.name(a) for a in outside)}不在您的管辖范围内"
    if start is None:
        problems["开始日期"] = "请填写开始日期"
    if end is None:
        problems["结束日期"] = "请填写结束日期"
    if start is not None and end is not None:
        if end < start:
            problems["结束日期"] = "结束日期不能早于开始日期"
        elif (end - start).days + 1 > MAX_CAMPAIGN_DAYS:
            problems["结束日期"] = f"专项整治不能超过 {MAX_CAMPAIGN_DAYS} 天"
        elif end < today:
            problems["结束日期"] = "结束日期已过，无需再安排"
    if every_days is None or not 1 <= int(every_days) <= 90:
        problems["检查周期"] = "检查周期须为 1–90 天"
    return problems


#: The columns :func:`forecast_visits` reads, one row per active venue.
FORECAST_COLUMNS = ["venue_id", "code", "category", "next_due_on", "village_id", "township_id"]


def forecast_visits(
    venues: pd.DataFrame,
    rechecks: Iterable[tuple[int, date]],
    campaigns: Iterable[Campaign],
    start: date,
    days: int,
    *,
    recheck_lead_days: int = 1,
) -> pd.DataFrame:
    """The visits due on each of ``days`` days from ``start``: one row per venue and day (``venue_id``,
    ``day`` as the offset from ``start``).

    ``venues`` has :data:`FORECAST_COLUMNS`. Each venue is projected forward from its next due date
    by its colour's cadence, assuming every visit happens on its due day (an overdue or
    never-inspected venue is due on ``start``). Each open hazard in ``rechecks`` (venue id, deadline)
    adds a re-check ``recheck_lead_days`` before its deadline (on ``start`` if that is past), and each
    campaign its slots (:meth:`Campaign.visits_on`), unless the venue is visited that day anyway.
    """
    if venues.empty or days <= 0:
        return pd.DataFrame({"venue_id": pd.Series(dtype="int64"), "day": pd.Series(dtype="int64")})
    vid = venues["venue_id"].to_numpy(dtype=np.int64)
    cadence = venues["code"].map({c.value: d for c, d in CADENCE_DAYS.items()}).to_numpy(dtype=np.int64)
    first = np.array(
        [0 if due is None or pd.isna(due) else max(0, (due - start).days) for due in venues["next_due_on"]],
        dtype=np.int64,
    )
    pairs: list[np.ndarray] = []  # (row, day offset)
    for k in range(days):
        hit = np.flatnonzero((first <= k) & ((k - first) % cadence == 0))
        pairs.append(np.column_stack([hit, np.full(len(hit), k)]))
    row_of = {int(v): i for i, v in enumerate(vid)}
    extra: list[tuple[int, int]] = []
    for venue_id, deadline in rechecks:
        k = max(0, (deadline - start).days - recheck_lead_days)
        if k < days and int(venue_id) in row_of:
            extra.append((row_of[int(venue_id)], k))
    cats = venues["category"].map(lambda c: VenueCategory(c).value).to_numpy(dtype=object)
    villages = venues["village_id"].to_numpy(dtype=np.int64)
    townships = venues["township_id"].to_numpy(dtype=np.int64)
    for c in campaigns:
        areas = list(c.area_ids)
        sel = np.flatnonzero(
            (cats == VenueCategory(c.category).value) & (np.isin(villages, areas) | np.isin(townships, areas))
        )
        for k in range(days):
            d = start + timedelta(days=k)
            if c.start <= d <= c.end:
                hit = sel[(vid[sel] % c.period) == ((d - c.start).days % c.period)]
                extra.extend((int(i), k) for i in hit)
    both = np.unique(np.vstack([*pairs, np.array(extra, dtype=np.int64).reshape(-1, 2)]), axis=0)
    return pd.DataFrame({"venue_id": vid[both[:, 0]], "day": both[:, 1].astype(np.int64)})


# ---------------------------------------------------------------------------------------------
# Replay: does risk-based planning pay?
# ---------------------------------------------------------------------------------------------


_DEFAULT_RULES = CodeRules()


class ReplayPolicy(Labelled):
    RISK = "risk", "按风险排序"
    ROUND_ROBIN = "round_robin", "固定顺序轮巡"
    FORECAST = "forecast", "按预测分配"


@dataclass(frozen=True, slots=True)
class ReplayVenue:
    """A venue and the hidden days hazards appear at it (unknown to every policy).

    ``rate`` and ``severity`` are the forecast's (a daily hazard rate from the model's probability,
    :func:`domain.forecast.daily_rate`, and the expected severity weight): what FORECAST plans with.
    ``last_visit`` is the venue's last inspection before the replay (None: never).
    """

    venue: VenueToVisit
    onsets: tuple[date, ...] = ()
    rate: float = 0.0
    severity: float = 1.0
    last_visit: date | None = None


@dataclass(frozen=True)
class ReplayResult:
    policy: ReplayPolicy
    days: int
    visits: int
    hazards: int  # onsets inside the replayed period
    discovered: int
    mean_days_to_discovery: float  # over discovered hazards (nan if none)
    mean_days_to_discovery_censored: float  # undiscovered ones count until the day after the end
    # Onset → the re-check that confirms the fix (the loop closes only at 复查); censored at the end.
    mean_days_open: float
    red_due: int  # red venue-days on which the venue was due
    red_on_time: int  # ... and was visited that day
    final_codes: dict[SafetyCode, int] = field(default_factory=dict)
    hazards_first_half: int = 0  # onsets in the first half of the period
    found_first_half: int = 0  # hazards discovered in the first half

    @property
    def found_first_half_share(self) -> float:
        return self.found_first_half / self.hazards_first_half if self.hazards_first_half else math.nan

    @property
    def red_on_time_share(self) -> float:
        return self.red_on_time / self.red_due if self.red_due else math.nan


@dataclass(slots=True)
class _State:
    venue: VenueToVisit
    pending: list[date]  # hidden onsets not yet discovered, sorted
    open: list[tuple[date, date]] = field(default_factory=list)  # (deadline, onset) of found hazards
    clean: int = 0
    code_since: date | None = None
    rectified: date | None = None
    last: date | None = None  # last visit
    rate: float = 0.0
    severity: float = 1.0


def replay(
    start: date,
    days: int,
    inspectors: Sequence[Inspector],
    venues: Sequence[ReplayVenue],
    capacity: int = DEFAULT_CAPACITY,
    policy: ReplayPolicy = ReplayPolicy.RISK,
    *,
    seed: int = 0,
    rectify_days: int = 3,
    fill_spare: bool = True,
    rules: CodeRules = _DEFAULT_RULES,
    visits_per_venue_month: float | None = None,
) -> ReplayResult:
    """Replay ``days`` days from ``start`` under one policy and measure how fast hidden hazards are found.

    Each visit finds every hazard whose onset is on or before the day; a found hazard is a major
    one with a deadline ``rectify_days`` away; the owner fixes it by the deadline and the first
    visit on or after it confirms the fix; the venue's colour follows :func:`evaluate` after every
    visit. RISK plans each day with :func:`plan_day`
    (re-checks included) and, with ``fill_spare``, spends leftover capacity on the venues due
    soonest (worse colour first), so both policies spend the same visits. ROUND_ROBIN visits each
    inspector's venues in id order, ``capacity`` a day, cycling from a seeded random offset.
    FORECAST plans each day with :func:`plan_day` given each venue's expected hazards found by a
    visit today (its forecast rate over the days since its last visit, times its severity weight).

    ``visits_per_venue_month`` replaces ``capacity``: each inspector gets that many visits a month
    per venue they cover, spread over the days (fractions carried, so 0.1 is honoured exactly).
    """
    policy = ReplayPolicy(policy)
    end = start + timedelta(days=days)
    insp = sorted(inspectors, key=lambda i: i.id)
    # Onsets outside the replayed period are ignored: a hazard present before the start would be
    # charged to whichever policy happens to come by first, not to its ordering.
    states = {
        rv.venue.id: _State(
            rv.venue, sorted(d for d in rv.onsets if start <= d < end),
            last=rv.last_visit, rate=rv.rate, severity=rv.severity,
        )
        for rv in sorted(venues, key=lambda r: r.venue.id)
    }  # fmt: skip
    # The baseline's fixed rounds use the planner's own assignment of venues to inspectors.
    owners, _ = _assign([_Need(s.venue) for s in states.values()], {i.id: i for i in insp}, {})
    rounds = {i: sorted(n.venue.id for n in lst) for i, lst in owners.items()}
    per_day = {i.id: float(i.capacity if i.capacity is not None else capacity) for i in insp}
    if visits_per_venue_month is not None:
        per_day = {i: visits_per_venue_month * len(ids) / 30.0 for i, ids in rounds.items()}
    rng = np.random.default_rng(seed)
    cursor = {i: int(rng.integers(0, max(1, len(rounds[i])))) for i in rounds}

    delays: list[int] = []
    open_days: list[int] = []
    visits = red_due = red_on_time = 0
    half = start + timedelta(days=days // 2)
    found_first_half = 0
    for k in range(days):
        day = start + timedelta(days=k)
        caps = {i: math.floor((k + 1) * c + 1e-9) - math.floor(k * c + 1e-9) for i, c in per_day.items()}
        insp_today = [replace(i, capacity=caps[i.id]) for i in insp]
        if policy == ReplayPolicy.RISK:
            today = _risk_visits(day, insp_today, states, rounds, caps, capacity, fill_spare)
        elif policy == ReplayPolicy.FORECAST:
            today = _forecast_visits(day, insp_today, states, capacity)
        else:
            today = []
            for i, ids in rounds.items():
                take = min(caps[i], len(ids))
                today.extend(ids[(cursor[i] + t) % len(ids)] for t in range(take))
                cursor[i] = (cursor[i] + take) % len(ids) if ids else 0
        seen = set(today)
        for s in states.values():
            v = s.venue
            if v.code == SafetyCode.RED and (v.next_due_on is None or v.next_due_on <= day):
                red_due += 1
                red_on_time += v.id in seen
        for vid in sorted(seen):
            found, closed = _inspect(states[vid], day, rectify_days, rules)
            delays.extend(found)
            open_days.extend(closed)
            if day < half:
                found_first_half += len(found)
        visits += len(seen)

    hazards = sum(1 for rv in venues for d in rv.onsets if start <= d < end)
    undiscovered = [(end - d).days for s in states.values() for d in s.pending]
    unconfirmed = [(end - onset).days for s in states.values() for _, onset in s.open]
    return ReplayResult(
        policy, days, visits, hazards, len(delays),
        _mean(delays), _mean(delays + undiscovered), _mean(open_days + unconfirmed + undiscovered),
        red_due, red_on_time,
        {c: sum(1 for s in states.values() if s.venue.code == c) for c in SafetyCode},
        sum(1 for rv in venues for d in rv.onsets if start <= d < half), found_first_half,
    )  # fmt: skip


def compare_policies(
    start: date,
    days: int,
    inspectors: Sequence[Inspector],
    venues: Sequence[ReplayVenue],
    capacity: int = DEFAULT_CAPACITY,
    policies: Sequence[ReplayPolicy] = tuple(ReplayPolicy),
    **options: Any,
) -> dict[ReplayPolicy, ReplayResult]:
    """:func:`replay` under each of ``policies`` (every one by default) on the same input."""
    return {p: replay(start, days, inspectors, venues, capacity, p, **options) for p in policies}


def _risk_visits(
    day: date,
    insp: Sequence[Inspector],
    states: Mapping[int, _State],
    owned: Mapping[int, list[int]],
    caps: Mapping[int, int],
    capacity: int,
    fill_spare: bool,
) -> list[int]:
    rechecks = _open_rechecks(states)
    plan = plan_day(
        day, insp, [s.venue for s in states.values()], rechecks, capacity=capacity, routes_only=True
    )
    today = [v.venue_id for r in plan.routes for v in r.visits]
    if fill_spare:
        taken = set(today)
        for r in plan.routes:
            spare = caps[r.inspector_id] - len(r.visits)
            if spare > 0:
                pool = [states[vid].venue for vid in owned[r.inspector_id] if vid not in taken]
                # Pull forward the visits due soonest; worse colours first among equals.
                pool.sort(key=lambda v: (v.next_due_on or date.min, -RANK[v.code], v.id))
                today.extend(v.id for v in pool[:spare])
    return today


def _open_rechecks(states: Mapping[int, _State]) -> list[HazardRecheck]:
    """A re-check for every hazard found and not yet confirmed fixed."""
    return [
        HazardRecheck(vid * 1000 + n, vid, deadline)
        for vid, s in states.items()
        for n, (deadline, _) in enumerate(s.open)
    ]


#: Days since the last visit assumed for a venue never inspected before the replay.
NEVER_VISITED_DAYS = 60


def _forecast_visits(
    day: date, insp: Sequence[Inspector], states: Mapping[int, _State], capacity: int
) -> list[int]:
    rechecks = _open_rechecks(states)
    expected = {
        vid: s.severity * -math.expm1(-s.rate * ((day - s.last).days if s.last else NEVER_VISITED_DAYS))
        for vid, s in states.items()
    }
    plan = plan_day(
        day,
        insp,
        [s.venue for s in states.values()],
        rechecks,
        capacity=capacity,
        expected=expected,
        routes_only=True,
    )
    return [v.venue_id for r in plan.routes for v in r.visits]


def _mean(xs: list[int]) -> float:
    return float(np.mean(xs)) if xs else math.nan


def _inspect(s: _State, day: date, rectify_days: int, rules: CodeRules) -> tuple[list[int], list[int]]:
    """One visit: find what appeared, confirm what was fixed, recolour; (discovery delays, days open)."""
    s.last = day
    found = [d for d in s.pending if d <= day]
    s.pending = [d for d in s.pending if d > day]
    fixed = [h for h in s.open if h[0] <= day]
    s.open = [h for h in s.open if h[0] > day]
    if fixed:
        s.rectified = day
    deadline = day + timedelta(days=rectify_days)
    s.open.extend((deadline, onset) for onset in found)
    ok = not s.open
    s.clean = s.clean + 1 if ok else 0
    facts = VenueFacts(
        s.venue.category,
        InspectionFact(day, InspectionResult.PASS if ok else InspectionResult.FAIL, new_hazards=len(found)),
        tuple(HazardFact(HazardSeverity.MAJOR, "检查发现隐患", d) for d, _ in s.open),
        clean_inspections=s.clean,
        last_rectified_on=s.rectified,
        code_since=s.code_since,
    )
    decision = evaluate(s.venue.code, facts, rules)
    code = decision.code
    if code != s.venue.code:
        # The streak counts inspections after the change, so the one that caused it does not count.
        s.code_since, s.clean = day, 0
    s.venue = _with(s.venue, code, next_due(code, day))
    return [(day - d).days for d in found], [(day - onset).days for _, onset in fixed]


def _with(v: VenueToVisit, code: SafetyCode, due: date) -> VenueToVisit:
    return VenueToVisit(v.id, v.name, v.grid_id, v.village_id, v.township_id, code, v.category, v.x, v.y, due)
