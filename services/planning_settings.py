"""The planner's settings (key → JSON in ``settings``): daily capacity, campaigns (专项整治), accepted reassignments.

Reads take a Connection; each change is a use case that takes a :class:`db.uow.UnitOfWork`, checks the
user's permission and scope (a refusal is logged), validates every field at once
(:class:`InvalidSetting`, in Chinese), stores the setting with its trail row and commits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from sqlalchemy import Connection, select

from db.models import InspectorGrid, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.errors import FieldProblems
from domain.planner import DEFAULT_CAPACITY, Campaign, Capacity, Proposal, check_campaign
from domain.vocabulary import Role, VenueCategory
from services import settings
from services.access import deny
from services.geography import tree as store_tree

CAMPAIGNS_KEY = "inspection.campaigns"
CAPACITY_KEY = "inspection.capacity"
REASSIGN_PREFIX = "inspection.reassign."
MAX_DAILY_CAPACITY = 100


class InvalidSetting(FieldProblems):
    """A capacity, campaign or reassignment that cannot be stored (or may not be, by this user)."""


def _get(conn: Connection, key: str, lock: bool = False):
    raw = settings.read(conn, key, lock=lock)
    return json.loads(raw) if raw else None


def _put(conn: Connection, key: str, value, now: datetime, **audit_kw) -> None:
    """Store a setting; ``audit_kw`` (actor, action) go to the trail row :func:`settings.write` writes."""
    settings.write(conn, key, json.dumps(value, ensure_ascii=False, sort_keys=True), now, **audit_kw)


def _may_plan(user: CurrentUser, what: str, message: str) -> None:
    if not user.may("plan_inspections"):
        deny(user, what, None)
        raise InvalidSetting({"权限": message})


# -- capacity ---------------------------------------------------------------------------------


def load_capacity(conn: Connection, *, lock: bool = False) -> Capacity:
    """``inspection.capacity``: a number (visits per inspector per day), or {"default": n, "inspectors": {id: n}}."""
    raw = _get(conn, CAPACITY_KEY, lock)
    if raw is None:
        return Capacity()
    if isinstance(raw, int | float):
        return Capacity(max(0, int(raw)))
    per = {int(k): max(0, int(v)) for k, v in (raw.get("inspectors") or {}).items()}
    return Capacity(max(0, int(raw.get("default", DEFAULT_CAPACITY))), per)


def save_capacity(
    uow: UnitOfWork,
    *,
    default: int | None = None,
    inspectors: Mapping[int, int | None] | None = None,
    now: datetime,
    user: CurrentUser | None = None,
) -> Capacity:
    """Set the daily capacity (visits a day, 1–100): ``default`` for everyone (an administrator; the
    store's one setting), ``inspectors`` id → their own (None, or the default's value: back to the
    default) for inspectors with a grid in the user's scope (a leader plans their own). Every problem is
    said at once; nothing is stored then."""
    with uow.begin("planning.capacity"):
        if user is not None:
            _may_plan(user, "set capacity", f"您的角色（{user.role.label}）不能设置检查容量")
        problems: dict[str, str] = {}
        if default is not None:
            if not isinstance(default, int) or not 1 <= default <= MAX_DAILY_CAPACITY:
                problems["每日检查容量"] = f"须为 1–{MAX_DAILY_CAPACITY} 之间的整数"
            elif user is not None and user.role is not Role.ADMIN:
                problems["每日检查容量"] = (
                    "全体检查员的默认容量由系统管理员设置；您可以设置本辖区检查员各自的容量"
                )
        changes = dict(inspectors or {})
        if changes:
            tree = store_tree(uow.conn)
            grids: dict[int, list[int]] = defaultdict(list)
            for uid, gid in uow.conn.execute(
                select(InspectorGrid.user_id, InspectorGrid.grid_id).where(
                    InspectorGrid.user_id.in_([int(k) for k in changes])
                )
            ):
                grids[int(uid)].append(int(gid))
            for uid, value in changes.items():
                mine = grids.get(int(uid), [])
                if not mine or (
                    user is not None and not any(tree.contains(user.scope_unit_id, g) for g in mine)
                ):
                    if user is not None:
                        deny(user, "set inspector capacity", int(uid))
                    problems[f"检查员{uid}"] = "不在您的管辖范围内（或没有负责的网格）"
                elif value is not None and (
                    not isinstance(value, int) or not 1 <= value <= MAX_DAILY_CAPACITY
                ):
                    problems[f"检查员{uid}"] = f"容量须为 1–{MAX_DAILY_CAPACITY} 之间的整数（留空为默认）"
        if problems:
            raise InvalidSetting(problems)
        current = load_capacity(uow.conn, lock=True)
        new_default = current.default if default is None else default
        per = dict(current.per_inspector)
        for uid, value in changes.items():
            if value is None or value == new_default:  # the default itself is no capacity of one's own
                per.pop(int(uid), None)
            else:
                per[int(uid)] = int(value)
        if new_default == current.default and per == current.per_inspector:
            return current  # nothing changed: the block ends without a write
        _put(
            uow.conn,
            CAPACITY_KEY,
            {"default": new_default, "inspectors": {str(k): v for k, v in sorted(per.items())}},
            now,
            actor=user,
            action="planning.capacity",
        )
        uow.commit()
        return Capacity(new_default, per)


# -- campaigns --------------------------------------------------------------------------------


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
    return {
        "name": c.name,
        "category": VenueCategory(c.category).value,
        "area_ids": sorted(c.area_ids),
        "start": c.start.isoformat(),
        "end": c.end.isoformat(),
        "every_days": c.every_days,
    }


def load_campaigns(conn: Connection, *, lock: bool = False) -> list[Campaign]:
    """Every campaign (专项整治) in ``settings``, by start date then name."""
    raw = _get(conn, CAMPAIGNS_KEY, lock) or []
    return sorted((_campaign_from(d) for d in raw), key=lambda c: (c.start, c.name))


def campaigns_for(conn: Connection, user: CurrentUser) -> list[Campaign]:
    """The campaigns a user may see: those touching their scope (an area inside it, or their scope inside one)."""
    tree = store_tree(conn)
    mine = user.scope_unit_id
    return [
        c
        for c in load_campaigns(conn)
        if any(tree.contains(mine, a) or tree.contains(a, mine) for a in c.area_ids)
    ]


def add_campaign(
    uow: UnitOfWork,
    *,
    user: CurrentUser,
    name: str,
    category: str | None,
    area_ids: Iterable[int],
    start: date | None,
    end: date | None,
    every_days: int | None,
    now: datetime,
) -> Campaign:
    """Validate (:func:`domain.planner.check_campaign`) and store a campaign; :class:`InvalidSetting`
    lists every problem. An area outside the user's scope is refused and logged."""
    with uow.begin("planning.campaign_add"):
        _may_plan(user, "add campaign", f"您的角色（{user.role.label}）不能设置专项整治")
        tree = store_tree(uow.conn)
        existing = load_campaigns(uow.conn, lock=True)
        areas = [int(a) for a in area_ids or []]
        outside = [a for a in areas if a in tree and not tree.contains(user.scope_unit_id, a)]
        if outside:
            deny(user, "add campaign", outside[0])
        problems = check_campaign(
            name=name,
            category=category,
            area_ids=areas,
            start=start,
            end=end,
            every_days=every_days,
            today=now.date(),
            existing=existing,
            tree=tree,
            scope_unit_id=user.scope_unit_id,
        )
        if problems:
            raise InvalidSetting(problems)
        # check_campaign has refused every missing field
        assert category is not None and start is not None and end is not None and every_days is not None
        campaign = Campaign(
            name.strip(), VenueCategory(category), frozenset(areas), start, end, int(every_days)
        )
        _put(
            uow.conn,
            CAMPAIGNS_KEY,
            [_campaign_json(c) for c in [*existing, campaign]],
            now,
            actor=user,
            action="planning.campaign_add",
        )
        uow.commit()
        return campaign


def remove_campaign(uow: UnitOfWork, *, user: CurrentUser, name: str, now: datetime) -> None:
    """Delete a campaign whose areas all lie in the user's scope."""
    with uow.begin("planning.campaign_remove"):
        tree = store_tree(uow.conn)
        existing = load_campaigns(uow.conn, lock=True)
        target = next((c for c in existing if c.name == name), None)
        if target is None:
            raise InvalidSetting({"名称": f"没有名为“{name}”的专项整治"})
        if not user.may("plan_inspections") or not all(
            tree.contains(user.scope_unit_id, a) for a in target.area_ids
        ):
            deny(user, "remove campaign", None)  # the name is user text: not logged
            raise InvalidSetting({"权限": "该专项整治不在您的管辖范围内"})
        _put(
            uow.conn,
            CAMPAIGNS_KEY,
            [_campaign_json(c) for c in existing if c.name != name],
            now,
            actor=user,
            action="planning.campaign_remove",
        )
        uow.commit()


# -- accepted reassignments -------------------------------------------------------------------


def reassign_key(day: date) -> str:
    return f"{REASSIGN_PREFIX}{day.isoformat()}"


def load_reassignments(conn: Connection, day: date, *, lock: bool = False) -> dict[int, int]:
    """Accepted proposals of ``day``: venue id → inspector id."""
    raw = _get(conn, reassign_key(day), lock) or {}
    return {int(k): int(v) for k, v in raw.items()}


def accept_proposals(
    uow: UnitOfWork,
    *,
    user: CurrentUser,
    day: date,
    proposals: Iterable[Proposal],
    now: datetime,
) -> dict[int, int]:
    """Store accepted proposals for ``day`` (the plan is then made with them); returns all of the day's.

    Each venue and each receiving inspector must lie in the user's scope (refused and logged otherwise).
    """
    with uow.begin("planning.reassign"):
        _may_plan(user, "reassign inspections", f"您的角色（{user.role.label}）不能调整检查任务")
        conn = uow.conn
        chosen = list(proposals)
        if not chosen:
            return load_reassignments(conn, day)  # nothing to change: the block ends without a write
        tree = store_tree(conn)
        venue_grid = dict(
            conn.execute(
                select(Venue.id, Venue.grid_id).where(Venue.id.in_([p.venue_id for p in chosen]))
            ).all()
        )
        covering = defaultdict(set)
        for uid, gid in conn.execute(
            select(InspectorGrid.user_id, InspectorGrid.grid_id).where(
                InspectorGrid.user_id.in_([p.to_inspector_id for p in chosen])
            )
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
        current = load_reassignments(conn, day, lock=True)
        current.update({p.venue_id: p.to_inspector_id for p in chosen})
        _put(
            conn,
            reassign_key(day),
            {str(k): v for k, v in sorted(current.items())},
            now,
            actor=user,
            action="planning.reassign",
        )
        uow.commit()
        return current


def clear_reassignments(
    uow: UnitOfWork, *, day: date, now: datetime, user: CurrentUser | None = None
) -> None:
    """Undo the day's accepted proposals: all of them (trusted callers) or, for ``user``, those in their scope."""
    with uow.begin("planning.reassign_clear"):
        conn = uow.conn
        kept: dict[int, int] = {}
        if user is not None:
            _may_plan(user, "clear reassignments", f"您的角色（{user.role.label}）不能调整检查任务")
            tree = store_tree(conn)
            current = load_reassignments(conn, day, lock=True)
            grid_of = dict(
                conn.execute(select(Venue.id, Venue.grid_id).where(Venue.id.in_(list(current) or [-1]))).all()
            )
            kept = {
                v: i for v, i in current.items() if not tree.contains(user.scope_unit_id, grid_of.get(v, -1))
            }
        _put(
            conn,
            reassign_key(day),
            {str(k): v for k, v in sorted(kept.items())},
            now,
            actor=user,
            action="planning.reassign_clear",
        )
        uow.commit()
