"""Every scope check and every denial line: may this user see this area, event, venue or grid.

The rules are :mod:`domain.access` (roles, pages, actions) and :class:`domain.hierarchy.Tree`
(``contains`` is the scope test); this module answers them against the store, with the tree loaded
once per process (:func:`services.geography.tree`). Pages and services that take an area call
:func:`require_area` (or :func:`area_by_code` for an ``?area=`` code); objects (an event, a venue) are
looked up for their grid, then asked of the tree. Every denial is logged on the ``access`` logger
with the user id, the role, what was asked and the object id (never a name or a phone number), and
the record carries the same fields as attributes (``user_id``, ``role``, ``what``, ``object_id``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import ColumnElement, Connection, or_, select

from db.models import Event, EventCooperator, InspectorGrid, User, Venue
from domain.access import CurrentUser, department_may_act, handler_may_act, may_act, owner_may_act
from domain.event_flow import ACTION_LABELS, Action
from domain.hierarchy import Tree
from domain.vocabulary import Role
from services.geography import tree as store_tree

log = logging.getLogger("access")

#: The refusal of an area outside the user's scope (a person), and outside a wall screen's token's area.
AREA_REFUSED = "该区域不在您的管辖范围内"
SCREEN_AREA_REFUSED = "该区域不在此大屏的管辖范围内"


class OutOfScope(PermissionError):
    """The user may not see or change this object; the denial is logged."""


def deny(user: CurrentUser | None, what: str, object_id: object = None) -> None:
    """Log one denial: who (id, role), what they asked for, on which object."""
    uid = getattr(user, "id", None)
    role = getattr(getattr(user, "role", None), "value", None) or "anonymous"
    log.warning(
        "denied: user=%s role=%s what=%s object=%s",
        uid,
        role,
        what,
        object_id,
        extra={"user_id": uid, "role": role, "what": what, "object_id": object_id},
    )


def out_of_scope(user: CurrentUser | None, what: str, object_id: object, message: str) -> OutOfScope:
    """Log the denial and return the exception to raise."""
    deny(user, what, object_id)
    return OutOfScope(message)


# -- areas ------------------------------------------------------------------------------------


def require_area(
    tree: Tree, user: CurrentUser, unit_id: int | None, what: str, refusal: str = AREA_REFUSED
) -> int:
    """The area a user asked for, checked: ``None`` means the user's own unit. Outside their scope (or
    unknown) it raises :class:`OutOfScope` with the refusal text and logs one denial line."""
    area = user.scope_unit_id if unit_id is None else int(unit_id)
    if area not in tree or not tree.contains(user.scope_unit_id, area):
        raise out_of_scope(user, what, area, refusal)
    return area


def area_by_code(
    tree: Tree, user: CurrentUser, code: str | None, what: str, refusal: str = AREA_REFUSED
) -> int:
    """:func:`require_area` for an area given by its code (``?area=`` in a URL). Empty or unknown (a unit
    that no longer exists after a boundary import): the user's own unit, as a bookmark should degrade."""
    unit_id = tree.by_code(str(code)) if code else None
    return require_area(tree, user, unit_id, what, refusal)


def unit_in_scope(conn: Connection, user: CurrentUser, unit_id: int | None) -> bool:
    """Whether ``unit_id`` lies in the subtree under the user's scope unit."""
    return unit_id is not None and store_tree(conn).contains(user.scope_unit_id, int(unit_id))


def require_unit(conn: Connection, user: CurrentUser, unit_id: int | None, what: str) -> int:
    """:func:`require_area` against the store's tree, for services that hold a connection."""
    if unit_id is None:
        raise out_of_scope(user, what, None, AREA_REFUSED)
    return require_area(store_tree(conn), user, unit_id, what)


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a user may see of events: grids of their subtree, and their department if they are a handler."""

    grid_ids: tuple[int, ...]
    department_id: int | None = None

    def where(self, *, by_time: bool = False):
        """The scope's clauses. ``by_time=True`` for a query bounded by a recent time window (today's
        events, changes since the last tick, a month): the grid test is then applied row by row
        (``grid_id + 0``), so the planner walks the time index over the window's few rows instead of
        every event the scope ever had (SQLite otherwise prefers the grid index for an IN list)."""
        grid = Event.grid_id + 0 if by_time else Event.grid_id
        clauses: list[ColumnElement[bool]] = [grid.in_(self.grid_ids or (-1,))]
        if self.department_id is not None:
            coop = select(EventCooperator.event_id).where(EventCooperator.department_id == self.department_id)
            clauses.append(or_(Event.lead_department_id == self.department_id, Event.id.in_(coop)))
        return clauses


def scope_for(user: CurrentUser, grid_ids: list[int]) -> Scope:
    """The event scope of ``user`` given the grids under their scope unit."""
    return Scope(tuple(grid_ids), user.department_id if user.role is Role.DEPARTMENT else None)


def user_scope(conn: Connection, user: CurrentUser) -> Scope:
    """The event :class:`Scope` of ``user``, from the store's tree (not from the page)."""
    return scope_for(user, store_tree(conn).grids_under(user.scope_unit_id))


def event_in_scope(conn: Connection, user: CurrentUser, event_id: int) -> bool:
    """Whether the user may see event ``event_id``: its grid in their subtree, and for a department
    handler, their department leads it or cooperates on it. False for an event that does not exist."""
    row = conn.execute(
        select(Event.grid_id, Event.lead_department_id).where(Event.id == event_id)
    ).one_or_none()
    if row is None or not unit_in_scope(conn, user, row.grid_id):
        return False
    if user.role is Role.DEPARTMENT:
        if user.department_id is None:
            return False
        if row.lead_department_id == user.department_id:
            return True
        return _cooperates(conn, user.department_id, event_id)
    return True


def _cooperates(conn: Connection, department_id: int, event_id: int) -> bool:
    return (
        conn.execute(
            select(EventCooperator.event_id).where(
                EventCooperator.event_id == event_id, EventCooperator.department_id == department_id
            )
        ).first()
        is not None
    )


def may_act_on(conn: Connection, user: CurrentUser, event_id: int, action) -> bool:
    """Whether the user's role may take ``action`` and the event is in their scope; a department moves only
    events it leads (a cooperating one sees them and writes opinions, decision 0005), and a grid worker
    handles only events with no lead department (:func:`domain.access.handler_may_act`); a leader below the
    level an event was moved up to only writes opinions (:func:`domain.access.owner_may_act`). The loop's own
    rules (which actions a status allows) are :func:`domain.event_flow.next_status`'s."""
    if not may_act(user, action) or not event_in_scope(conn, user, event_id):
        return False
    if user.role is Role.DEPARTMENT:
        return department_acts(conn, user.department_id, event_id, action)
    lead, owner = conn.execute(
        select(Event.lead_department_id, Event.owner_unit_id).where(Event.id == event_id)
    ).one()
    return handler_may_act(user.role, action, led_by_department=lead is not None) and owner_may_act(
        user.role, action, owns=unit_in_scope(conn, user, owner)
    )


def department_acts(conn: Connection, department_id: int | None, event_id: int, action) -> bool:
    """Whether a handler of ``department_id`` may take ``action`` on the event, as its lead or as one of its
    cooperating departments (:func:`domain.access.department_may_act`); without a department, nothing."""
    if department_id is None:
        return False
    row = conn.execute(select(Event.lead_department_id, Event.status).where(Event.id == event_id)).first()
    if row is None:
        return False
    cooperates = _cooperates(conn, department_id, event_id)
    return department_may_act(
        action, leads=row.lead_department_id == department_id, cooperates=cooperates, status=row.status
    )


def require_lead_department(
    conn: Connection, user_id: int | None, event_id: int, action: Action
) -> int | None:
    """A department handler moves only events their department leads; a cooperating department sees them
    and writes its opinion (decision 0005). Returns the handler's department; refused (logged) otherwise."""
    mine = conn.execute(select(User.department_id).where(User.id == user_id)).scalar()
    if not department_acts(conn, mine, event_id, action):  # no department: acts on nothing
        raise out_of_scope(
            SimpleNamespace(id=user_id, role=Role.DEPARTMENT),  # type: ignore[arg-type]
            f"event action {action.value} (not lead)",
            event_id,
            f"本事件由牵头部门办理，协办部门只能查看和填写处置意见，不能执行“{ACTION_LABELS[action]}”",
        )
    return mine


def require_handler(
    role: Role, user_id: int | None, event_id: int, lead_department_id, action: Action
) -> None:
    """A grid worker handles (开始处置 / 退单 / 办结) only events with no lead department: one led by a
    department is that department's (:func:`domain.access.handler_may_act`). Refused (logged) otherwise."""
    if not handler_may_act(role, action, led_by_department=lead_department_id is not None):
        raise out_of_scope(
            SimpleNamespace(id=user_id, role=role),  # type: ignore[arg-type]
            f"event action {action.value} (led by a department)",
            event_id,
            f"本事件已派往牵头部门办理，由该部门执行“{ACTION_LABELS[action]}”，网格员不能代为操作",
        )


# -- venues and grids -------------------------------------------------------------------------


def grid_in_scope(conn: Connection, user: CurrentUser, grid_id: int) -> bool:
    """Whether the user may see the venues of ``grid_id``: an inspector in their assigned grids, every
    other role inside their scope unit."""
    if user.role is Role.INSPECTOR:
        return (
            conn.execute(
                select(InspectorGrid.grid_id).where(
                    InspectorGrid.user_id == user.id, InspectorGrid.grid_id == grid_id
                )
            ).first()
            is not None
        )
    return unit_in_scope(conn, user, grid_id)


def venue_in_scope(conn: Connection, user: CurrentUser, venue_id: int) -> bool:
    """Whether the user may see venue ``venue_id`` (:func:`grid_in_scope` of its grid)."""
    grid_id = conn.execute(select(Venue.grid_id).where(Venue.id == venue_id)).scalar()
    return grid_id is not None and grid_in_scope(conn, user, grid_id)


def verified_user(conn: Connection, user: CurrentUser | None) -> CurrentUser | None:
    """The session's user if the store still says the same (active, same role, scope and department).

    A session value is only a claim: a forged or stale one (another role, a wider scope, a
    deactivated account) is refused here and logged.
    """
    if user is None:
        return None
    row = conn.execute(
        select(User.username, User.role, User.scope_unit_id, User.department_id, User.is_active).where(
            User.id == user.id
        )
    ).one_or_none()
    same = (
        row is not None
        and row.is_active
        and row.username == user.username
        and Role(row.role) is user.role
        and row.scope_unit_id == user.scope_unit_id
        and row.department_id == user.department_id
    )
    if not same:
        deny(user, "session user", user.id)
        return None
    return user
