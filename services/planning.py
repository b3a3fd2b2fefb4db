"""The 平安码 planner over the store: a day's plan for a scope, the 30-day load, overdue lists, rates, trends.

Reads the planner's inputs (inspectors with their grids and start points, venues with due dates,
open hazards as re-checks, campaigns and capacity from ``settings``) and hands them to
:func:`domain.planner.plan_day`. Campaigns, capacity and accepted reassignments are settings
(key → JSON), edited here with validation and Chinese messages.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, cast, func, or_, select

from db.models import AdminUnit, Hazard, Inspection, InspectorGrid, SafetyCodeChange, User, Venue
from domain.access import CurrentUser
from domain.planner import (
    DEFAULT_CAPACITY,
    Campaign,
    DayPlan,
    HazardRecheck,
    Inspector,
    PlannedVisit,
    Proposal,
    Route,
    VenueToVisit,
    plan_day,
)
from domain.safety_code import CADENCE_DAYS, overdue_days
from domain.vocabulary import AdminLevel, HazardSeverity, HazardStatus, Role, SafetyCode, VenueCategory
from services import settings
from services.access import deny, out_of_scope
from services.inspections import inspections_on

CAMPAIGNS_KEY = "inspection.campaigns"
CAPACITY_KEY = "inspection.capacity"
REASSIGN_PREFIX = "inspection.reassign."
RECHECK_LEAD_DAYS = 1
MAX_CAMPAIGN_DAYS = 366
CODES = [SafetyCode.RED, SafetyCode.YELLOW, SafetyCode.GREEN]


class InvalidSetting(ValueError):
    """A campaign or reassignment the user asked for cannot be stored; ``problems`` maps field → message."""

    def __init__(self, problems: Mapping[str, str]):
        self.problems = dict(problems)
        super().__init__("；".join(f"{k}：{v}" for k, v in self.problems.items()))


# ---------------------------------------------------------------------------------------------
# The five-level tree (no geometry)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """Every unit's name, level and parent, and each grid's village and township (plain dicts: fast lookups)."""

    units: pd.DataFrame  # index id: code, name, level, parent_id, centroid_lon, centroid_lat
    parent: dict[int, int | None]
    levels: dict[int, str]
    names: dict[int, str]
    grid_village: dict[int, int | None]
    grid_township: dict[int, int | None]
    root_id: int | None

    def name(self, unit_id: int | None) -> str:
        return self.names.get(unit_id, "—") if unit_id is not None else "—"

    def level(self, unit_id: int) -> AdminLevel:
        return AdminLevel(self.levels[unit_id])

    def ancestor(self, unit_id: int, level: AdminLevel) -> int | None:
        node: int | None = unit_id
        for _ in range(8):
            if node is None or node not in self.levels:
                return None
            if self.levels[node] == level.value:
                return node
            node = self.parent.get(node)
        return None

    @property
    def grid_ids(self) -> list[int]:
        return list(self.grid_village)

    def grids_under(self, unit_id: int | None) -> list[int]:
        """Grid ids inside ``unit_id`` (all grids for None or the root)."""
        if unit_id is None or unit_id == self.root_id:
            return self.grid_ids
        level = self.level(unit_id)
        if level is AdminLevel.GRID:
            return [unit_id]
        if level is AdminLevel.VILLAGE:
            return [g for g, v in self.grid_village.items() if v == unit_id]
        if level is AdminLevel.TOWNSHIP:
            return [g for g, t in self.grid_township.items() if t == unit_id]
        return [g for g in self.grid_village if self.ancestor(g, level) == unit_id]

    def contains(self, root_id: int, unit_id: int) -> bool:
        node: int | None = unit_id
        for _ in range(8):
            if node is None:
                return False
            if node == root_id:
                return True
            node = self.parent.get(node)
        return False

    def children(self, unit_id: int) -> list[int]:
        kids = [u for u, p in self.parent.items() if p == unit_id]
        return sorted(kids, key=lambda u: self.units.at[u, "code"])


def load_tree(conn: Connection) -> Tree:
    rows = conn.execute(
        select(AdminUnit.id, AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.parent_id,
               AdminUnit.centroid_lon, AdminUnit.centroid_lat).order_by(AdminUnit.id)
    ).all()
    rows = [tuple(r) for r in rows]
    parent = {int(r[0]): (None if r[4] is None else int(r[4])) for r in rows}
    levels = {int(r[0]): AdminLevel(r[3]).value for r in rows}
    names = {int(r[0]): str(r[2]) for r in rows}
    units = pd.DataFrame(rows, columns=["id", "code", "name", "level", "parent_id", "centroid_lon", "centroid_lat"])
    units["level"] = units["id"].map(levels)
    units = units.set_index("id")
    grid_village: dict[int, int | None] = {}
    grid_township: dict[int, int | None] = {}
    for g, lv in levels.items():
        if lv == AdminLevel.GRID.value:
            v = parent.get(g)
            grid_village[g] = v
            grid_township[g] = parent.get(v) if v is not None else None
    roots = [i for i, p in parent.items() if p is None]
    return Tree(units, parent, levels, names, grid_village, grid_township, roots[0] if len(roots) == 1 else None)


def _grid_filter(column, tree: Tree, grids: Sequence[int]):
    """A WHERE clause for ``column`` in the grids, or None for the whole tree (no 5,000-item IN list)."""
    if len(grids) == len(tree.grid_village):
        return None
    return column.in_(list(grids) or [-1])


def _where(*clauses):
    return [c for c in clauses if c is not None]


def _tuples(conn: Connection, query) -> list[tuple]:
    """Rows as plain tuples (fetched at once): pandas builds frames from them far faster than from Rows."""
    return [tuple(r) for r in conn.execute(query).all()]


def _raw(conn: Connection, query) -> list[tuple]:
    """Rows of a large read straight from the DBAPI cursor: SQLAlchemy binds the parameters, but the
    values come back unprocessed (text timestamps on SQLite, enum values as strings), which the caller
    parses column-wise with pandas. Several times faster than building Row objects at city scale."""
    result = conn.execute(query)
    try:
        return [tuple(r) for r in result.cursor.fetchall()]
    finally:
        result.close()


_CODE_VALUE = {**{c: c.value for c in SafetyCode}, **{c.value: c.value for c in SafetyCode}}


# ---------------------------------------------------------------------------------------------
# Settings: capacity, campaigns, accepted reassignments
# ---------------------------------------------------------------------------------------------


def _get_setting(conn: Connection, key: str):
    raw = settings.read(conn, key)
    return json.loads(raw) if raw else None


def _put_setting(conn: Connection, key: str, value, now: datetime, **audit_kw) -> None:
    """Store a setting; ``audit_kw`` (actor, action) go to the trail row :func:`settings.write` writes."""
    settings.write(conn, key, json.dumps(value, ensure_ascii=False, sort_keys=True), now, **audit_kw)


@dataclass(frozen=True)
class Capacity:
    default: int = DEFAULT_CAPACITY
    per_inspector: Mapping[int, int] = field(default_factory=dict)

    def of(self, inspector_id: int) -> int:
        return int(self.per_inspector.get(inspector_id, self.default))


def load_capacity(conn: Connection) -> Capacity:
    """``inspection.capacity``: a number (visits per inspector per day), or {"default": n, "inspectors": {id: n}}."""
    raw = _get_setting(conn, CAPACITY_KEY)
    if raw is None:
        return Capacity()
    if isinstance(raw, int | float):
        return Capacity(max(0, int(raw)))
    per = {int(k): max(0, int(v)) for k, v in (raw.get("inspectors") or {}).items()}
    return Capacity(max(0, int(raw.get("default", DEFAULT_CAPACITY))), per)


def save_capacity(conn: Connection, default: int, now: datetime) -> None:
    if not isinstance(default, int) or not 1 <= default <= 100:
        raise InvalidSetting({"每日检查容量": "须为 1–100 之间的整数"})
    current = load_capacity(conn)
    _put_setting(conn, CAPACITY_KEY, {"default": default, "inspectors": {str(k): v for k, v in
                                                                          current.per_inspector.items()}}, now)


def _campaign_from(d: Mapping) -> Campaign:
    return Campaign(
        name=str(d["name"]),
        category=VenueCategory(d["category"]),
        area_ids=frozenset(int(a) for a in d["area_ids"]),
        start=date.fromisoformat(d["start"]),
        end=date.fromisoformat(d["end"]),
        every_days=int(d.get("every_days", 7)),
    )


def _campaign_json(c: Campaign) -> dict:
    return {"name": c.name, "category": VenueCategory(c.category).value, "area_ids": sorted(c.area_ids),
            "start": c.start.isoformat(), "end": c.end.isoformat(), "every_days": c.every_days}


def load_campaigns(conn: Connection) -> list[Campaign]:
    """Every campaign (专项整治) in ``settings``, by start date then name."""
    raw = _get_setting(conn, CAMPAIGNS_KEY) or []
    return sorted((_campaign_from(d) for d in raw), key=lambda c: (c.start, c.name))


def campaigns_for(conn: Connection, user: CurrentUser, tree: Tree) -> list[Campaign]:
    """The campaigns a user may see: those touching their scope (an area inside it, or their scope inside one)."""
    return [c for c in load_campaigns(conn)
            if any(tree.contains(user.scope_unit_id, a) or tree.contains(a, user.scope_unit_id) for a in c.area_ids)]


def check_campaign(
    *, name: str, category: str | None, area_ids: Iterable[int], start: date | None, end: date | None,
    every_days: int | None, today: date, existing: Iterable[Campaign], tree: Tree, scope_unit_id: int,
) -> dict[str, str]:
    """Every problem of a new campaign (empty when it can be stored)."""
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
        bad = [a for a in areas if a not in tree.units.index
               or tree.level(a) not in (AdminLevel.VILLAGE, AdminLevel.TOWNSHIP)]
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


def add_campaign(
    conn: Connection, *, user: CurrentUser, tree: Tree, name: str, category: str | None, area_ids: Iterable[int],
    start: date | None, end: date | None, every_days: int | None, now: datetime,
) -> Campaign:
    """Validate and store a campaign; :class:`InvalidSetting` lists every problem."""
    if not user.may("plan_inspections"):
        deny(user, "add campaign", None)
        raise InvalidSetting({"权限": f"您的角色（{user.role.label}）不能设置专项整治"})
    existing = load_campaigns(conn)
    areas = [int(a) for a in area_ids or []]
    outside = [a for a in areas if a in tree.levels and not tree.contains(user.scope_unit_id, a)]
    if outside:
        deny(user, "add campaign", outside[0])
    problems = check_campaign(name=name, category=category, area_ids=areas, start=start, end=end,
                              every_days=every_days, today=now.date(), existing=existing, tree=tree,
                              scope_unit_id=user.scope_unit_id)
    if problems:
        raise InvalidSetting(problems)
    campaign = Campaign(name.strip(), VenueCategory(category), frozenset(areas), start, end, int(every_days))
    _put_setting(conn, CAMPAIGNS_KEY, [_campaign_json(c) for c in [*existing, campaign]], now, actor=user,
                 action="planning.campaign_add")
    return campaign


def remove_campaign(conn: Connection, *, user: CurrentUser, tree: Tree, name: str, now: datetime) -> None:
    """Delete a campaign whose areas all lie in the user's scope."""
    existing = load_campaigns(conn)
    target = next((c for c in existing if c.name == name), None)
    if target is None:
        raise InvalidSetting({"名称": f"没有名为“{name}”的专项整治"})
    if not user.may("plan_inspections") or not all(
        tree.contains(user.scope_unit_id, a) for a in target.area_ids
    ):
        deny(user, "remove campaign", None)  # the name is user text: not logged
        raise InvalidSetting({"权限": "该专项整治不在您的管辖范围内"})
    _put_setting(conn, CAMPAIGNS_KEY, [_campaign_json(c) for c in existing if c.name != name], now, actor=user,
                 action="planning.campaign_remove")


def reassign_key(day: date) -> str:
    return f"{REASSIGN_PREFIX}{day.isoformat()}"


def load_reassignments(conn: Connection, day: date) -> dict[int, int]:
    """Accepted proposals of ``day``: venue id → inspector id."""
    raw = _get_setting(conn, reassign_key(day)) or {}
    return {int(k): int(v) for k, v in raw.items()}


def accept_proposals(
    conn: Connection, *, user: CurrentUser, tree: Tree, day: date, proposals: Iterable[Proposal], now: datetime
) -> dict[int, int]:
    """Store accepted proposals for ``day`` (the plan is then made with them); returns all of the day's."""
    if not user.may("plan_inspections"):
        deny(user, "reassign inspections", None)
        raise InvalidSetting({"权限": f"您的角色（{user.role.label}）不能调整检查任务"})
    chosen = list(proposals)
    if not chosen:
        return load_reassignments(conn, day)
    venue_grid = dict(conn.execute(
        select(Venue.id, Venue.grid_id).where(Venue.id.in_([p.venue_id for p in chosen]))
    ).all())
    covering = defaultdict(set)
    for uid, gid in conn.execute(
        select(InspectorGrid.user_id, InspectorGrid.grid_id).where(
            InspectorGrid.user_id.in_([p.to_inspector_id for p in chosen]))
    ):
        covering[uid].add(gid)
    for p in chosen:
        grid = venue_grid.get(p.venue_id)
        if grid is None or not tree.contains(user.scope_unit_id, grid):
            deny(user, "reassign venue", p.venue_id)
            raise InvalidSetting({"场所": f"场所{p.venue_id}不在您的管辖范围内"})
        if not covering.get(p.to_inspector_id) or not any(
            tree.contains(user.scope_unit_id, g) for g in covering[p.to_inspector_id]
        ):
            deny(user, "reassign to inspector", p.to_inspector_id)
            raise InvalidSetting({"检查员": f"检查员{p.to_inspector_id}不在您的管辖范围内"})
    current = load_reassignments(conn, day)
    current.update({p.venue_id: p.to_inspector_id for p in chosen})
    _put_setting(conn, reassign_key(day), {str(k): v for k, v in sorted(current.items())}, now, actor=user,
                 action="planning.reassign")
    return current


def clear_reassignments(conn: Connection, *, day: date, now: datetime, user: CurrentUser | None = None,
                        tree: Tree | None = None) -> None:
    """Undo the day's accepted proposals: all of them (trusted callers) or, for ``user``, those in their scope."""
    kept: dict[int, int] = {}
    if user is not None:
        if not user.may("plan_inspections"):
            deny(user, "clear reassignments", None)
            raise InvalidSetting({"权限": f"您的角色（{user.role.label}）不能调整检查任务"})
        tree = tree or load_tree(conn)
        current = load_reassignments(conn, day)
        grid_of = dict(conn.execute(select(Venue.id, Venue.grid_id).where(Venue.id.in_(list(current) or [-1]))).all())
        kept = {v: i for v, i in current.items() if not tree.contains(user.scope_unit_id, grid_of.get(v, -1))}
    _put_setting(conn, reassign_key(day), {str(k): v for k, v in sorted(kept.items())}, now, actor=user,
                 action="planning.reassign_clear")


# ---------------------------------------------------------------------------------------------
# The day plan
# ---------------------------------------------------------------------------------------------


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


def _day_start(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time())


def load_inspectors(conn: Connection, tree: Tree, grids: Sequence[int], capacity: Capacity,
                done: Mapping[int, int]) -> list[Inspector]:
    grid_set = set(grids)
    rows = conn.execute(
        select(User.id, User.display_name, User.home_lon, User.home_lat, InspectorGrid.grid_id)
        .join(InspectorGrid, InspectorGrid.user_id == User.id)
        .where(User.role == Role.INSPECTOR, User.is_active, *_where(_grid_filter(InspectorGrid.grid_id, tree, grids)))
        .order_by(User.id, InspectorGrid.grid_id)
    ).all()
    by_user: dict[int, dict] = {}
    for uid, name, lon, lat, gid in rows:
        if gid not in grid_set:
            continue
        u = by_user.setdefault(uid, {"name": name, "lon": lon, "lat": lat, "grids": []})
        u["grids"].append(gid)
    out = []
    cents = tree.units[["centroid_lon", "centroid_lat"]]
    for uid, u in by_user.items():
        first = u["grids"][0]
        lon = u["lon"] if u["lon"] is not None else float(cents.at[first, "centroid_lon"])
        lat = u["lat"] if u["lat"] is not None else float(cents.at[first, "centroid_lat"])
        villages = {tree.grid_village[g] for g in u["grids"] if tree.grid_village.get(g) is not None}
        townships = {tree.grid_township[g] for g in u["grids"] if tree.grid_township.get(g) is not None}
        cap = max(0, capacity.of(uid) - int(done.get(uid, 0)))
        out.append(Inspector(uid, u["name"], frozenset(u["grids"]), float(lon), float(lat),
                             frozenset(villages), frozenset(townships), cap))
    return out


def done_on(conn: Connection, day: date, inspector_ids: Iterable[int] | None = None) -> dict[int, int]:
    """Inspections recorded on ``day`` per inspector."""
    q = (
        select(Inspection.inspector_id, func.count())
        .where(Inspection.inspected_at >= _day_start(day), Inspection.inspected_at < _day_start(day + timedelta(days=1)),
               Inspection.inspector_id.is_not(None))
        .group_by(Inspection.inspector_id)
    )
    if inspector_ids is not None:
        q = q.where(Inspection.inspector_id.in_(list(inspector_ids) or [-1]))
    return {int(k): int(v) for k, v in conn.execute(q).all()}


def load_plan_inputs(conn: Connection, day: date, scope_unit_id: int | None = None, *,
                     tree: Tree | None = None, grids: Sequence[int] | None = None) -> PlanInputs:
    """The planner's inputs for ``day`` over a scope (a unit's grids; the whole tree for None)."""
    tree = tree or load_tree(conn)
    grids = list(grids) if grids is not None else tree.grids_under(scope_unit_id)
    capacity = load_capacity(conn)
    campaigns = [c for c in load_campaigns(conn) if c.start <= day <= c.end]
    done = done_on(conn, day)
    inspectors = load_inspectors(conn, tree, grids, capacity, done)
    loaded = {i.id for i in inspectors}
    reassign = load_reassignments(conn, day)
    # Accepted reassignments: visits moved to an inspector of this plan come along wherever they lie;
    # visits moved to someone outside it are theirs now and leave this plan.
    forced_in = sorted(v for v, i in reassign.items() if i in loaded)
    gone = {v for v, i in reassign.items() if i not in loaded}
    horizon = day + timedelta(days=RECHECK_LEAD_DAYS)
    gfilter = _grid_filter(Venue.grid_id, tree, grids)
    where_area = gfilter if gfilter is None or not forced_in else or_(gfilter, Venue.id.in_(forced_in))
    hz = conn.execute(
        select(Hazard.id, Hazard.venue_id, Hazard.deadline)
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(Hazard.status == HazardStatus.OPEN, Hazard.deadline <= horizon, Venue.is_active, *_where(where_area))
    ).all()
    rechecks = [HazardRecheck(int(h), int(v), d) for h, v, d in hz if int(v) not in gone]
    wanted = [Venue.next_due_on.is_(None), Venue.next_due_on <= day,
              Venue.id.in_(select(Hazard.venue_id).where(Hazard.status == HazardStatus.OPEN,
                                                         Hazard.deadline <= horizon))]
    if campaigns:
        wanted.append(Venue.category.in_(sorted({VenueCategory(c.category) for c in campaigns})))
    rows = conn.execute(
        select(Venue.id, Venue.name, Venue.grid_id, Venue.safety_code, Venue.category, Venue.lon, Venue.lat,
               Venue.next_due_on)
        .where(Venue.is_active, or_(*wanted), *_where(where_area))
    ).all()
    venues = []
    for vid, name, gid, code, cat, lon, lat, due in rows:
        if int(vid) in gone:
            continue
        venues.append(VenueToVisit(int(vid), name, int(gid), tree.grid_village.get(gid) or 0,
                                   tree.grid_township.get(gid) or 0, SafetyCode(code), VenueCategory(cat),
                                   float(lon), float(lat), due))
    return PlanInputs(day, inspectors, venues, rechecks, campaigns, capacity,
                      {v: i for v, i in reassign.items() if i in loaded}, done)


@dataclass(frozen=True)
class PlanView:
    """A day's plan over a scope, with what the pages need to show it."""

    plan: DayPlan
    inputs: PlanInputs
    tree: Tree
    seconds: dict[str, float]

    def inspector_name(self, inspector_id: int | None) -> str:
        if inspector_id is None:
            return "（无人负责）"
        return next((i.name for i in self.inputs.inspectors if i.id == inspector_id), str(inspector_id))

    def summary(self) -> pd.DataFrame:
        """One row per inspector: planned, capacity, spare, red visits, route km, overflow, done today."""
        over = {r.inspector_id: len(r.overflow) for r in self.plan.routes}
        rows = []
        for r in self.plan.routes:
            rows.append({
                "inspector_id": r.inspector_id,
                "检查员": r.inspector_name,
                "计划检查": len(r.visits),
                "今日已检查": int(self.inputs.done.get(r.inspector_id, 0)),
                "剩余容量": r.spare,
                "红码": sum(1 for v in r.visits if v.code == SafetyCode.RED),
                "路线长度（公里）": round(r.length_m / 1000, 1),
                "未排入": over.get(r.inspector_id, 0),
            })
        return pd.DataFrame(rows, columns=["inspector_id", "检查员", "计划检查", "今日已检查", "剩余容量", "红码",
                                           "路线长度（公里）", "未排入"])

    def overflow_table(self) -> pd.DataFrame:
        rows = [{"检查员": self.inspector_name(o.inspector_id), "村（社区）": self.tree.name(o.village_id),
                 "未排入": o.count} for o in self.plan.overflow]
        return pd.DataFrame(rows, columns=["检查员", "村（社区）", "未排入"])


def checked_scope(tree: Tree, user: CurrentUser | None, scope_unit_id: int | None, what: str) -> int | None:
    """The unit a read runs over: ``scope_unit_id`` if inside ``user``'s scope (their own for None);
    refused and logged (:class:`OutOfScope`) outside it. ``user=None`` is a trusted caller (bench, jobs)."""
    if user is None:
        return scope_unit_id
    if scope_unit_id is None:
        return user.scope_unit_id
    if not tree.contains(user.scope_unit_id, scope_unit_id):
        raise out_of_scope(user, what, scope_unit_id, "该区域不在您的管辖范围内")
    return scope_unit_id


def plan_for(conn: Connection, day: date, scope_unit_id: int | None = None, *, tree: Tree | None = None,
             grids: Sequence[int] | None = None, user: CurrentUser | None = None) -> PlanView:
    """Load the inputs and plan ``day`` over the scope (accepted reassignments of the day applied)."""
    t0 = time.perf_counter()
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "inspection plan")
    inputs = load_plan_inputs(conn, day, scope_unit_id, tree=tree, grids=grids)
    t1 = time.perf_counter()
    plan = plan_day(day, inputs.inspectors, inputs.venues, inputs.rechecks, inputs.campaigns,
                    capacity=inputs.capacity.default, recheck_lead_days=RECHECK_LEAD_DAYS,
                    reassign=inputs.reassign)
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
    start: tuple[float, float] | None
    grid_ids: tuple[int, ...]


def inspector_grids(conn: Connection, inspector_id: int) -> list[int]:
    return [int(g) for g in conn.execute(
        select(InspectorGrid.grid_id).where(InspectorGrid.user_id == inspector_id).order_by(InspectorGrid.grid_id)
    ).scalars()]


def inspectors_under(conn: Connection, tree: Tree, unit_id: int) -> list[tuple[int, str]]:
    """(id, name) of the active inspectors with a grid inside ``unit_id``, by name."""
    grids = tree.grids_under(unit_id)
    rows = conn.execute(
        select(User.id, User.display_name).join(InspectorGrid, InspectorGrid.user_id == User.id)
        .where(User.role == Role.INSPECTOR, User.is_active, *_where(_grid_filter(InspectorGrid.grid_id, tree, grids)))
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
        more = set(conn.execute(
            select(InspectorGrid.grid_id).join(User, User.id == InspectorGrid.user_id)
            .where(InspectorGrid.user_id.in_(users), User.is_active, User.role == Role.INSPECTOR)
        ).scalars())
        frontier = more - found
        found |= more
    return sorted(found)


def _stops_frame(conn: Connection, visits: Sequence[PlannedVisit]) -> pd.DataFrame:
    cols = ["stop", "venue_id", "name", "category", "code", "address", "reason", "tier", "overdue_days",
            "leg_m", "lon", "lat", "next_due_on"]
    if not visits:
        return pd.DataFrame(columns=cols)
    extra = {vid: (addr, due) for vid, addr, due in conn.execute(
        select(Venue.id, Venue.address, Venue.next_due_on).where(Venue.id.in_([v.venue_id for v in visits]))
    ).all()}
    return pd.DataFrame(
        [
            {"stop": v.stop, "venue_id": v.venue_id, "name": v.venue_name, "category": VenueCategory(v.category).value,
             "code": SafetyCode(v.code).value, "address": extra.get(v.venue_id, ("", None))[0], "reason": v.reason,
             "tier": v.tier.value, "overdue_days": v.overdue_days, "leg_m": round(v.leg_m),
             "lon": v.lon, "lat": v.lat, "next_due_on": extra.get(v.venue_id, ("", None))[1]}
            for v in visits
        ],
        columns=cols,
    )


def inspector_day(conn: Connection, inspector_id: int, day: date, *, tree: Tree | None = None,
                  user: CurrentUser | None = None) -> InspectorDay:
    """The inspector's list for ``day`` in route order, what did not fit, and what they already did that day.

    Only the inspectors linked to this one through shared grids (and their grids) are planned: who
    gets a visit in a shared grid depends on those inspectors' loads and nothing else, so the route
    is the one the township plan gives (accepted reassignments included) at a fraction of the work.
    """
    tree = tree or load_tree(conn)
    mine = inspector_grids(conn, inspector_id)
    if user is not None and inspector_id != user.id and (
        user.role is Role.INSPECTOR or not any(tree.contains(user.scope_unit_id, g) for g in mine)
    ):
        raise out_of_scope(user, "inspector day", inspector_id, "该检查员不在您的管辖范围内")
    done = inspections_on(conn, inspector_id, day)
    if not mine:
        return InspectorDay(inspector_id, day, None, _stops_frame(conn, []), _stops_frame(conn, []), done, None, ())
    grids = linked_grids(conn, mine)
    view = plan_for(conn, day, tree=tree, grids=grids)
    route = next((r for r in view.plan.routes if r.inspector_id == inspector_id), None)
    me = next((i for i in view.inputs.inspectors if i.id == inspector_id), None)
    stops = _stops_frame(conn, route.visits if route else ())
    overflow = _stops_frame(conn, route.overflow if route else ())
    return InspectorDay(inspector_id, day, route, stops, overflow, done, (me.lon, me.lat) if me else None,
                        tuple(mine))


# ---------------------------------------------------------------------------------------------
# 30-day load forecast
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Forecast:
    start: date
    days: int
    by_inspector: pd.DataFrame  # index inspector name, columns ISO dates, values visits
    by_village: pd.DataFrame  # index village name
    capacity: Capacity


def _owners(conn: Connection, grids: Sequence[int], tree: Tree) -> dict[int, list[int]]:
    covering: dict[int, list[int]] = defaultdict(list)
    for uid, gid in conn.execute(
        select(InspectorGrid.user_id, InspectorGrid.grid_id)
        .join(User, User.id == InspectorGrid.user_id)
        .where(User.is_active, User.role == Role.INSPECTOR, *_where(_grid_filter(InspectorGrid.grid_id, tree, grids)))
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


def load_forecast(conn: Connection, start: date, scope_unit_id: int | None = None, days: int = 30, *,
                  tree: Tree | None = None, user: CurrentUser | None = None) -> Forecast:
    """Visits per day for ``days`` days from ``start``, per inspector and per village.

    Each venue is projected forward from its next due date by its colour's cadence, assuming every
    visit happens on its due day (an overdue or never-inspected venue is due on ``start``); open
    hazards add a re-check the day before their deadline and campaigns their slots, unless the venue
    is visited that day anyway. A venue in a grid covered by several inspectors goes to its own
    inspector if they cover the grid, else to one of them by venue id (an even split).
    """
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "inspection forecast")
    grids = tree.grids_under(scope_unit_id)
    gfilter = _grid_filter(Venue.grid_id, tree, grids)
    rows = conn.execute(
        select(Venue.id, Venue.grid_id, Venue.safety_code, Venue.category, Venue.next_due_on, Venue.inspector_id)
        .where(Venue.is_active, *_where(gfilter))
    ).all()
    names = dict(conn.execute(select(User.id, User.display_name).where(User.role == Role.INSPECTOR)).all())
    dates = [start + timedelta(days=k) for k in range(days)]
    columns = [d.isoformat() for d in dates]
    empty = pd.DataFrame(columns=columns)
    if not rows:
        return Forecast(start, days, empty, empty, load_capacity(conn))
    vid = np.array([r[0] for r in rows], dtype=np.int64)
    gid = np.array([r[1] for r in rows], dtype=np.int64)
    cadence = np.array([CADENCE_DAYS[SafetyCode(r[2])] for r in rows], dtype=np.int64)
    first = np.array([0 if r[4] is None else max(0, (r[4] - start).days) for r in rows], dtype=np.int64)
    pairs: list[np.ndarray] = []  # (row index, day offset)
    for k in range(days):
        hit = np.flatnonzero((first <= k) & ((k - first) % cadence == 0))
        pairs.append(np.column_stack([hit, np.full(len(hit), k)]))
    index = {int(v): i for i, v in enumerate(vid)}
    extra: list[tuple[int, int]] = []
    for v, deadline in conn.execute(
        select(Hazard.venue_id, Hazard.deadline).join(Venue, Venue.id == Hazard.venue_id)
        .where(Hazard.status == HazardStatus.OPEN, Venue.is_active, *_where(gfilter))
    ).all():
        k = max(0, (deadline - start).days - RECHECK_LEAD_DAYS)
        if k < days and int(v) in index:
            extra.append((index[int(v)], k))
    cats = np.array([VenueCategory(r[3]).value for r in rows], dtype=object)
    villages = np.array([tree.grid_village.get(int(g)) or 0 for g in gid], dtype=np.int64)
    townships = np.array([tree.grid_township.get(int(g)) or 0 for g in gid], dtype=np.int64)
    for c in load_campaigns(conn):
        sel = np.flatnonzero((cats == VenueCategory(c.category).value)
                             & (np.isin(villages, list(c.area_ids)) | np.isin(townships, list(c.area_ids))))
        for k, d in enumerate(dates):
            if c.start <= d <= c.end:
                period = min(c.every_days, (c.end - c.start).days + 1)
                hit = sel[(vid[sel] % period) == ((d - c.start).days % period)]
                extra.extend((int(i), k) for i in hit)
    allp = np.vstack([*pairs, np.array(extra, dtype=np.int64).reshape(-1, 2)])
    allp = np.unique(allp, axis=0)  # one visit per venue and day
    covering = _owners(conn, grids, tree)
    owner = np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        cands = covering.get(int(r[1]), [])
        if not cands:
            owner[i] = 0
        elif r[5] in cands:
            owner[i] = int(r[5])
        else:
            owner[i] = cands[int(r[0]) % len(cands)]
    df = pd.DataFrame({"row": allp[:, 0], "k": allp[:, 1]})
    df["inspector"] = owner[df["row"].to_numpy()]
    df["village"] = villages[df["row"].to_numpy()]
    by_i = df.groupby(["inspector", "k"]).size().unstack(fill_value=0).reindex(columns=range(days), fill_value=0)
    by_v = df.groupby(["village", "k"]).size().unstack(fill_value=0).reindex(columns=range(days), fill_value=0)
    # Every inspector of the scope appears, even with nothing due.
    everyone = sorted({u for us in covering.values() for u in us})
    by_i = by_i.reindex(sorted(set(by_i.index) | set(everyone)), fill_value=0)
    by_i.columns = columns
    by_v.columns = columns
    by_i.index = _unique([(names.get(int(i), "（无人负责）") if i else "（无人负责）", str(int(i))) for i in by_i.index])
    by_v.index = _unique([(tree.name(int(v)) if v else "—", tree.name(tree.parent.get(int(v)))) for v in by_v.index])
    by_i.index.name, by_v.index.name = "检查员", "村（社区）"
    return Forecast(start, days, by_i, by_v, load_capacity(conn))


# ---------------------------------------------------------------------------------------------
# Overdue lists, code distribution and trend, on-time rate
# ---------------------------------------------------------------------------------------------


def overdue_venues(conn: Connection, today: date, scope_unit_id: int | None = None, *, tree: Tree | None = None,
                   limit: int = 500, user: CurrentUser | None = None) -> pd.DataFrame:
    """Active venues past their due date, most overdue first."""
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "overdue venues")
    grids = tree.grids_under(scope_unit_id)
    rows = conn.execute(
        select(Venue.id, Venue.name, Venue.category, Venue.safety_code, Venue.grid_id, Venue.next_due_on,
               Venue.last_inspected_on, User.display_name)
        .outerjoin(User, User.id == Venue.inspector_id)
        .where(Venue.is_active, Venue.next_due_on < today, *_where(_grid_filter(Venue.grid_id, tree, grids)))
        .order_by(Venue.next_due_on, Venue.id)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [{"venue_id": r[0], "name": r[1], "category": VenueCategory(r[2]).value, "code": SafetyCode(r[3]).value,
          "village": tree.name(tree.grid_village.get(r[4])), "next_due_on": r[5], "last_inspected_on": r[6],
          "overdue_days": overdue_days(r[5], today), "inspector": r[7] or "—"} for r in rows],
        columns=["venue_id", "name", "category", "code", "village", "next_due_on", "last_inspected_on",
                 "overdue_days", "inspector"],
    )


def overdue_hazards(conn: Connection, today: date, scope_unit_id: int | None = None, *, tree: Tree | None = None,
                    limit: int = 500, user: CurrentUser | None = None) -> pd.DataFrame:
    """Open hazards past their rectification deadline, most overdue first."""
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "overdue hazards")
    grids = tree.grids_under(scope_unit_id)
    rows = conn.execute(
        select(Hazard.id, Venue.id, Venue.name, Venue.grid_id, Hazard.severity, Hazard.description, Hazard.found_on,
               Hazard.deadline)
        .join(Venue, Venue.id == Hazard.venue_id)
        .where(Hazard.status == HazardStatus.OPEN, Hazard.deadline < today, Venue.is_active,
               *_where(_grid_filter(Venue.grid_id, tree, grids)))
        .order_by(Hazard.deadline, Hazard.id)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [{"hazard_id": r[0], "venue_id": r[1], "venue": r[2], "village": tree.name(tree.grid_village.get(r[3])),
          "severity": HazardSeverity(r[4]).value, "description": r[5], "found_on": r[6], "deadline": r[7],
          "overdue_days": overdue_days(r[7], today)} for r in rows],
        columns=["hazard_id", "venue_id", "venue", "village", "severity", "description", "found_on", "deadline",
                 "overdue_days"],
    )


def code_distribution(conn: Connection, scope_unit_id: int | None = None, *, tree: Tree | None = None,
                      user: CurrentUser | None = None) -> dict[str, int]:
    """Active venues by colour now (``red``/``yellow``/``green``)."""
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "code distribution")
    grids = tree.grids_under(scope_unit_id)
    rows = dict(conn.execute(
        select(Venue.safety_code, func.count()).where(Venue.is_active, *_where(_grid_filter(Venue.grid_id, tree, grids)))
        .group_by(Venue.safety_code)
    ).all())
    return {c.value: int(rows.get(c, rows.get(c.value, 0)) or 0) for c in CODES}


def code_trend(conn: Connection, today: date, scope_unit_id: int | None = None, days: int = 90, *,
               tree: Tree | None = None, user: CurrentUser | None = None) -> pd.DataFrame:
    """Venues of each colour at the end of each of the last ``days`` days (index: date), from the change log.

    A venue counts from its creation; its colour on a day is the last change stored before the
    day's end (a venue with no change stored has its current colour throughout).
    """
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "code trend")
    grids = tree.grids_under(scope_unit_id)
    gfilter = _grid_filter(Venue.grid_id, tree, grids)
    venues = conn.execute(
        select(Venue.id, Venue.created_at, Venue.safety_code).where(Venue.is_active, *_where(gfilter))
    ).all()
    changes = conn.execute(
        select(SafetyCodeChange.venue_id, SafetyCodeChange.changed_at, SafetyCodeChange.to_code)
        .join(Venue, Venue.id == SafetyCodeChange.venue_id)
        .where(Venue.is_active, *_where(gfilter))
    ).all()
    ch = pd.DataFrame([tuple(r) for r in changes], columns=["venue_id", "at", "code"])
    has = set(ch["venue_id"].tolist())
    # A venue without any stored change enters with its current colour at creation.
    synth = pd.DataFrame([(v, c, code) for v, c, code in venues if v not in has], columns=["venue_id", "at", "code"])
    ev = pd.concat([ch, synth], ignore_index=True) if len(synth) else ch
    ev["code"] = ev["code"].map(lambda c: SafetyCode(c).value)
    ev = ev.sort_values(["venue_id", "at"], kind="stable")
    ev["prev"] = ev.groupby("venue_id")["code"].shift(1)
    ev = ev.sort_values("at", kind="stable")
    times = pd.to_datetime(ev["at"]).to_numpy()
    ends = pd.to_datetime([_day_start(today - timedelta(days=k) + timedelta(days=1)) for k in range(days - 1, -1, -1)])
    out = {}
    for c in CODES:
        delta = (ev["code"] == c.value).astype(int) - (ev["prev"] == c.value).astype(int)
        cum = np.concatenate([[0], np.cumsum(delta.to_numpy())])
        pos = np.searchsorted(times, ends.to_numpy(), side="left")
        out[c.label] = cum[pos]
    idx = pd.Index([(e - pd.Timedelta(days=1)).date() for e in ends], name="日期")
    return pd.DataFrame(out, index=idx)


def on_time_rates(conn: Connection, start: date, end: date, scope_unit_id: int | None = None, *,
                  level: AdminLevel | None = None, tree: Tree | None = None,
                  user: CurrentUser | None = None) -> pd.DataFrame:
    """On-time inspection rate by colour and area for visits made from ``start`` to ``end`` (inclusive).

    A visit is due ``cadence`` days after the previous visit, by the colour in force at the end of
    the previous visit's day; it is on time if made on or before that date. Visits with no earlier
    visit on record have no due date and are not counted. Areas are units of ``level`` (default:
    one level below the scope, villages for a township or below).
    """
    tree = tree or load_tree(conn)
    scope_unit_id = checked_scope(tree, user, scope_unit_id, "on-time rates")
    grids = tree.grids_under(scope_unit_id)
    scope_level = tree.level(scope_unit_id) if scope_unit_id is not None else AdminLevel.CITY
    if level is None:
        level = scope_level.child if scope_level.depth < AdminLevel.VILLAGE.depth else AdminLevel.VILLAGE
        level = level or AdminLevel.VILLAGE
    gfilter = _grid_filter(Venue.grid_id, tree, grids)
    lookback_start = _day_start(start - timedelta(days=max(CADENCE_DAYS.values()) + 5))
    venue_grid = dict(_tuples(conn, select(Venue.id, Venue.grid_id).where(*_where(gfilter))))
    # Timestamps come back as text and are parsed by pandas at once (row by row is most of the time at
    # city scale); the scope is a subquery, not a join per inspection.
    ins = pd.DataFrame(
        _raw(conn,
            select(Inspection.venue_id, cast(Inspection.inspected_at, String))
            .where(Inspection.inspected_at >= lookback_start,
                   Inspection.inspected_at < _day_start(end + timedelta(days=1)),
                   *_where(None if gfilter is None else Inspection.venue_id.in_(select(Venue.id).where(gfilter))))
        ),
        columns=["venue_id", "at"],
    )
    cols = ["区域", "平安码", "检查次数", "按时", "按时率"]
    if ins.empty:
        return pd.DataFrame(columns=cols)
    ins["at"] = pd.to_datetime(ins["at"], format="ISO8601")
    ins["grid_id"] = ins["venue_id"].map(venue_grid)
    ins = ins[ins["grid_id"].notna()]
    ins = ins.sort_values(["venue_id", "at"], kind="stable")
    ins["day"] = pd.to_datetime(ins["at"]).dt.normalize()
    ins["prev_day"] = ins.groupby("venue_id")["day"].shift(1)
    ins = ins[ins["day"] >= pd.Timestamp(start)]
    # A venue's first visit in the window: its previous visit may be older than the window read above.
    first = ins[ins["prev_day"].isna()]
    if not first.empty:
        older = dict(_tuples(conn,
            select(Inspection.venue_id, func.max(Inspection.inspected_at))
            .where(Inspection.venue_id.in_(first["venue_id"].unique().tolist()),
                   Inspection.inspected_at < lookback_start)
            .group_by(Inspection.venue_id)
        ))
        fill = pd.to_datetime(first["venue_id"].map(older)).dt.normalize()
        ins.loc[first.index, "prev_day"] = fill
    ins = ins[ins["prev_day"].notna()]
    if ins.empty:
        return pd.DataFrame(columns=cols)
    venue_ids = ins["venue_id"].unique().tolist()
    ch = pd.DataFrame(
        _raw(conn,
            select(SafetyCodeChange.venue_id, cast(SafetyCodeChange.changed_at, String), SafetyCodeChange.to_code)
            .where(*_where(None if gfilter is None else SafetyCodeChange.venue_id.in_(select(Venue.id).where(gfilter))))
        ),
        columns=["venue_id", "changed_at", "code"],
    )
    ch = ch[ch["venue_id"].isin(venue_ids)]
    current = {v: _CODE_VALUE[c] for v, c in _tuples(conn, select(Venue.id, Venue.safety_code)
                                                      .where(Venue.id.in_(venue_ids)))}
    ins["prev_end"] = ins["prev_day"] + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    left = ins.sort_values("prev_end", kind="stable")
    right = ch.assign(changed_at=pd.to_datetime(ch["changed_at"], format="ISO8601")).sort_values("changed_at", kind="stable")
    merged = pd.merge_asof(left, right, left_on="prev_end", right_on="changed_at", by="venue_id",
                           direction="backward")
    fallback = merged["venue_id"].map(current)
    merged["code"] = merged["code"].map(_CODE_VALUE)
    merged["code"] = merged["code"].where(merged["code"].notna(), fallback).fillna(SafetyCode.GREEN.value)
    cadence = merged["code"].map({c.value: d for c, d in CADENCE_DAYS.items()})
    merged["on_time"] = merged["day"] <= merged["prev_day"] + pd.to_timedelta(cadence, unit="D")
    area_of = {g: tree.ancestor(g, level) for g in merged["grid_id"].unique().tolist()}
    merged["area"] = merged["grid_id"].map({g: tree.name(a) for g, a in area_of.items()})
    g = merged.groupby(["area", "code"]).agg(visits=("on_time", "size"), on_time=("on_time", "sum")).reset_index()
    total = merged.groupby("code").agg(visits=("on_time", "size"), on_time=("on_time", "sum")).reset_index()
    total.insert(0, "area", "合计")
    out = pd.concat([total, g], ignore_index=True)
    out["order"] = out["code"].map({c.value: i for i, c in enumerate(CODES)})
    out["first"] = out["area"] != "合计"
    out = out.sort_values(["first", "area", "order"], kind="stable")
    out["rate"] = (out["on_time"] / out["visits"]).round(3)
    return pd.DataFrame({
        "区域": out["area"].to_numpy(), "平安码": out["code"].map({c.value: c.label for c in SafetyCode}).to_numpy(),
        "检查次数": out["visits"].astype(int).to_numpy(), "按时": out["on_time"].astype(int).to_numpy(),
        "按时率": out["rate"].to_numpy(),
    })
