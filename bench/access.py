"""Access: random (user, object) pairs from a store; the services' answers against an oracle from the tree.

For each pair the services say whether the user may see the event / venue / area, or take an action on
the event (:mod:`services.access`, and the event page's own read, ``event_detail``); the oracle answers
from the five-level tree held in memory: the object's unit lies in the user's scope subtree, the
department matches for a department handler, an inspector's venues are those of their grids, and the
role's actions are written out below from issue #6. Any disagreement is a counterexample (must be 0).

Half the pairs draw a user whose scope holds the object (so both answers are exercised), half any user.
The test suite runs the same check under Hypothesis on the tiny demo (tests/security/test_property.py).
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from db.models import AdminUnit, Event, EventCooperator, InspectorGrid, User, Venue
from domain.access import CurrentUser
from domain.event_flow import Action
from domain.vocabulary import Role

_LEADERS = {Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER}
_HANDLERS = {Role.DEPARTMENT, Role.INSPECTOR, Role.ADMIN}
# Who may take each action (issue #6: leaders accept, dispatch, verify and close; handlers start, return and
# resolve; an inspector may accept what they find; a department may escalate what it cannot solve).
ACTION_ROLES: dict[Action, set[Role]] = {
    Action.ACCEPT: _LEADERS | {Role.INSPECTOR},
    Action.REJECT: _LEADERS,
    Action.DISPATCH: _LEADERS,
    Action.RETURN: _HANDLERS,
    Action.START: _HANDLERS,
    Action.RESOLVE: _HANDLERS,
    Action.VERIFY: _LEADERS,
    Action.REOPEN: _LEADERS,
    Action.RATE: _LEADERS,
    Action.ARCHIVE: _LEADERS,
    Action.ESCALATE: _LEADERS | {Role.DEPARTMENT},
    Action.COMMENT: set(Role),
}
KINDS = ("event", "venue", "unit", "act")


def _chunks(ids: list[int], n: int = 900):
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


class Oracle:
    """The tree (all units), the given events and venues, and inspectors' grids, in plain dicts."""

    def __init__(
        self, conn: Connection, event_ids: list[int] | None = None, venue_ids: list[int] | None = None
    ):
        self.parent: dict[int, int | None] = dict(
            conn.execute(select(AdminUnit.id, AdminUnit.parent_id)).all()
        )
        self.event_grid: dict[int, int] = {}
        self.event_lead: dict[int, int | None] = {}
        self.event_status: dict[int, str] = {}
        self.event_owner: dict[int, int] = {}
        self.coop: dict[int, set[int]] = defaultdict(set)
        self.venue_grid: dict[int, int] = {}
        ev = [select(Event.id, Event.grid_id, Event.lead_department_id, Event.status, Event.owner_unit_id)]
        if event_ids is None:
            queries = [ev[0]]
        else:
            queries = [ev[0].where(Event.id.in_(c)) for c in _chunks(sorted(set(event_ids)))]
        for q in queries:
            for eid, grid, lead, status, owner in conn.execute(q):
                self.event_grid[eid], self.event_lead[eid] = grid, lead
                self.event_status[eid], self.event_owner[eid] = str(status), owner
        for c in _chunks(sorted(self.event_grid)):
            for eid, dept in conn.execute(
                select(EventCooperator.event_id, EventCooperator.department_id).where(
                    EventCooperator.event_id.in_(c)
                )
            ):
                self.coop[eid].add(dept)
        vq = select(Venue.id, Venue.grid_id)
        vqueries = (
            [vq]
            if venue_ids is None
            else [vq.where(Venue.id.in_(c)) for c in _chunks(sorted(set(venue_ids)))]
        )
        for q in vqueries:
            self.venue_grid.update(dict(conn.execute(q).all()))
        self.covers: dict[int, set[int]] = defaultdict(set)
        for uid, grid in conn.execute(select(InspectorGrid.user_id, InspectorGrid.grid_id)):
            self.covers[uid].add(grid)

    def ancestors(self, unit: int) -> list[int]:
        out, node = [], unit
        while node is not None and node not in out:
            out.append(node)
            node = self.parent.get(node)
        return out

    def unit(self, user: CurrentUser, unit: int) -> bool:
        return unit in self.parent and user.scope_unit_id in self.ancestors(unit)

    def event(self, user: CurrentUser, eid: int) -> bool:
        if eid not in self.event_grid or not self.unit(user, self.event_grid[eid]):
            return False
        if user.role is Role.DEPARTMENT:
            return self.event_lead[eid] == user.department_id or user.department_id in self.coop[eid]
        return True

    def venue(self, user: CurrentUser, vid: int) -> bool:
        if vid not in self.venue_grid:
            return False
        if user.role is Role.INSPECTOR:
            return self.venue_grid[vid] in self.covers[user.id]
        return self.unit(user, self.venue_grid[vid])

    def act(self, user: CurrentUser, eid: int, action: Action) -> bool:
        """A cooperating department sees an event and writes opinions; only the lead department moves it
        (decision 0005), and only while the event is with it (已派单/处置中); a grid worker does not handle
        it; a leader below the level it was moved up to writes opinions only (decision 0051)."""
        leads = self.event_lead.get(eid) == user.department_id
        opinion = action is Action.COMMENT and user.department_id in self.coop.get(eid, ())
        if user.role is Role.DEPARTMENT and not (leads or opinion):
            return False
        with_department = self.event_status.get(eid) in ("dispatched", "in_progress")
        if user.role is Role.DEPARTMENT and action is not Action.COMMENT and not with_department:
            return False
        owner = self.event_owner.get(eid)
        owned_above = owner is not None and not self.unit(user, owner)
        if user.role in _LEADERS and action is not Action.COMMENT and owned_above:
            return False
        # A grid worker handles only what no department leads (issue 16: 交由村（社区）自行处置).
        handling = action in (Action.START, Action.RETURN, Action.RESOLVE)
        if user.role is Role.INSPECTOR and handling and self.event_lead.get(eid) is not None:
            return False
        return user.role in ACTION_ROLES[action] and self.event(user, eid)


def load_users(conn: Connection) -> list[CurrentUser]:
    rows = conn.execute(
        select(User.id, User.username, User.display_name, User.role, User.scope_unit_id, User.department_id)
        .where(User.is_active)
        .order_by(User.id)
    ).all()
    return [
        CurrentUser(r.id, r.username, r.display_name, Role(r.role), r.scope_unit_id, r.department_id)
        for r in rows
    ]


@dataclass(frozen=True)
class Pair:
    user: CurrentUser
    kind: str
    obj: int
    action: Action | None = None


class Checker:
    """The services' answer for a pair, with the user's event scope built once per user (as a page does)."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self._scopes: dict[int, object] = {}

    def scope(self, user: CurrentUser):
        from services.access import user_scope

        if user.id not in self._scopes:
            self._scopes[user.id] = user_scope(self.conn, user)
        return self._scopes[user.id]

    def answer(self, p: Pair) -> bool | None:
        from services.access import event_in_scope, may_act_on, unit_in_scope, venue_in_scope
        from services.event_views import event_detail

        if p.kind == "event":
            seen = event_in_scope(self.conn, p.user, p.obj)
            shown = event_detail(self.conn, self.scope(p.user), p.obj, p.user) is not None
            return seen if seen == shown else None  # the two reads must agree: None matches no oracle answer
        if p.kind == "venue":
            return venue_in_scope(self.conn, p.user, p.obj)
        if p.kind == "unit":
            return unit_in_scope(self.conn, p.user, p.obj)
        return may_act_on(self.conn, p.user, p.obj, p.action)


def expected(oracle: Oracle, p: Pair) -> bool:
    if p.kind == "event":
        return oracle.event(p.user, p.obj)
    if p.kind == "venue":
        return oracle.venue(p.user, p.obj)
    if p.kind == "unit":
        return oracle.unit(p.user, p.obj)
    return oracle.act(p.user, p.obj, p.action)


def draw_pairs(conn: Connection, users: list[CurrentUser], n: int, seed: int) -> list[Pair]:
    """``n`` pairs: kinds and roles uniform; half with a user whose scope holds the object's unit."""
    rng = random.Random(seed)
    by_role: dict[Role, list[CurrentUser]] = defaultdict(list)
    by_scope: dict[int, list[CurrentUser]] = defaultdict(list)
    for u in users:
        by_role[u.role].append(u)
        by_scope[u.scope_unit_id].append(u)
    roles = sorted(by_role, key=lambda r: r.value)
    lo_e, hi_e = conn.execute(select(func.min(Event.id), func.max(Event.id))).one()
    lo_v, hi_v = conn.execute(select(func.min(Venue.id), func.max(Venue.id))).one()
    unit_ids = list(conn.execute(select(AdminUnit.id)).scalars())
    parent = dict(conn.execute(select(AdminUnit.id, AdminUnit.parent_id)).all())
    drafts = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        if kind in ("event", "act"):
            obj = rng.randint(lo_e, hi_e) if lo_e is not None else 1
        elif kind == "venue":
            obj = rng.randint(lo_v, hi_v) if lo_v is not None else 1
        else:
            obj = rng.choice(unit_ids)
        drafts.append(
            (kind, obj, rng.random() < 0.5, rng.choice(roles), rng.random(), rng.choice(list(ACTION_ROLES)))
        )
    # Where each object lies, to find users near it.
    ev_grid = {}
    for c in _chunks(sorted({o for k, o, *_ in drafts if k in ("event", "act")})):
        ev_grid.update(dict(conn.execute(select(Event.id, Event.grid_id).where(Event.id.in_(c))).all()))
    ve_grid = {}
    for c in _chunks(sorted({o for k, o, *_ in drafts if k == "venue"})):
        ve_grid.update(dict(conn.execute(select(Venue.id, Venue.grid_id).where(Venue.id.in_(c))).all()))
    pairs = []
    for kind, obj, near, role, r, action in drafts:
        home = {"event": ev_grid, "act": ev_grid, "venue": ve_grid}.get(kind, {}).get(
            obj, obj if kind == "unit" else None
        )
        user = None
        if near and home is not None:
            chain, node = [], home
            while node is not None and len(chain) < 8:
                chain.append(node)
                node = parent.get(node)
            near_users = [u for a in chain for u in by_scope.get(a, ())]
            if near_users:
                user = near_users[int(r * len(near_users))]
        if user is None:
            pool = by_role[role]
            user = pool[int(r * len(pool))]
        pairs.append(Pair(user, kind, obj, action if kind == "act" else None))
    return pairs


def check_pairs(conn: Connection, pairs: list[Pair]) -> tuple[list[tuple[Pair, bool, bool]], int]:
    """(counterexamples as (pair, service answer, oracle answer), how many pairs the services allowed)."""
    oracle = Oracle(
        conn,
        event_ids=[p.obj for p in pairs if p.kind in ("event", "act")],
        venue_ids=[p.obj for p in pairs if p.kind == "venue"],
    )
    checker = Checker(conn)
    bad, allowed = [], 0
    access_log = logging.getLogger("access")
    was = access_log.disabled
    access_log.disabled = True  # every refusal is logged; thousands of them are not the figure
    try:
        for p in pairs:
            got, want = checker.answer(p), expected(oracle, p)
            allowed += bool(got)
            if got != want:
                bad.append((p, got, want))
    finally:
        access_log.disabled = was
    return bad, allowed


def bench_access(url: str, n: int = 20_000, seed: int = 0) -> dict[str, float]:
    from db.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        users = load_users(conn)
        pairs = draw_pairs(conn, users, n, seed)
        t0 = time.perf_counter()
        bad, allowed = check_pairs(conn, pairs)
        seconds = time.perf_counter() - t0
    engine.dispose()
    for p, got, want in bad[:10]:
        print(
            f"counterexample: user {p.user.id} ({p.user.role.value}) {p.kind} {p.obj} {p.action}: "
            f"services {got}, oracle {want}"
        )
    return {
        "counterexamples_count": len(bad),
        "pairs_checked_count": len(pairs),
        "access_pairs_allowed_share": round(allowed / len(pairs), 3) if pairs else 0.0,
        "access_roles_count": len({p.user.role for p in pairs}),
        "access_check_ms": round(seconds / max(1, len(pairs)) * 1000, 3),
    }
