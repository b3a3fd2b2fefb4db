"""Scope checks the services share: is this unit, event or venue inside the user's scope; the denial log.

The rules are :mod:`domain.access` (roles, pages, actions, ``in_scope``); this module answers them
against the store. Every denial is logged on the ``access`` logger with the user id, the role, what
was asked and the object id (never a name or a phone number), and the record carries the same
fields as attributes (``user_id``, ``role``, ``what``, ``object_id``) for log shippers and tests.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from db.models import AdminUnit, Event, EventCooperator, InspectorGrid, User, Venue
from domain.access import CurrentUser, department_may_act, in_scope, may_act
from domain.vocabulary import AdminLevel, Role

log = logging.getLogger("access")
MAX_DEPTH = 8  # five levels; the bound guards a corrupted cycle


def deny(user: CurrentUser | None, what: str, object_id: object = None) -> None:
    """Log one denial: who (id, role), what they asked for, on which object."""
    uid = getattr(user, "id", None)
    role = getattr(getattr(user, "role", None), "value", None) or "anonymous"
    log.warning(
        "denied: user=%s role=%s what=%s object=%s", uid, role, what, object_id,
        extra={"user_id": uid, "role": role, "what": what, "object_id": object_id},
    )


def out_of_scope(user: CurrentUser | None, what: str, object_id: object, message: str):
    """Log the denial and return the exception to raise (:class:`services.events.OutOfScope`)."""
    from services.events import OutOfScope

    deny(user, what, object_id)
    return OutOfScope(message)


def unit_path(conn: Connection, unit_id: int) -> dict[int, int | None]:
    """``unit_id`` and its ancestors as a child → parent map (what :func:`domain.access.in_scope` walks)."""
    parent_of: dict[int, int | None] = {}
    node: int | None = unit_id
    for _ in range(MAX_DEPTH):
        if node is None or node in parent_of:
            break
        parent = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == node)).one_or_none()
        if parent is None:  # no such unit
            break
        parent_of[node] = parent[0]
        node = parent[0]
    return parent_of


def unit_in_scope(conn: Connection, user: CurrentUser, unit_id: int | None) -> bool:
    """Whether ``unit_id`` lies in the subtree under the user's scope unit."""
    if unit_id is None:
        return False
    parent_of = unit_path(conn, int(unit_id))
    return bool(parent_of) and in_scope(int(unit_id), user.scope_unit_id, parent_of)


def require_unit(conn: Connection, user: CurrentUser, unit_id: int | None, what: str) -> None:
    """Refuse (logged, :class:`OutOfScope`) unless ``unit_id`` is inside the user's scope."""
    if not unit_in_scope(conn, user, unit_id):
        raise out_of_scope(user, what, unit_id, "该区域不在您的管辖范围内")


def event_in_scope(conn: Connection, user: CurrentUser, event_id: int) -> bool:
    """Whether the user may see event ``event_id``: its grid in their subtree, and for a department
    handler, their department leads it or cooperates on it. False for an event that does not exist."""
    row = conn.execute(select(Event.grid_id, Event.lead_department_id).where(Event.id == event_id)).one_or_none()
    if row is None or not unit_in_scope(conn, user, row.grid_id):
        return False
    if user.role is Role.DEPARTMENT:
        if user.department_id is None:
            return False
        if row.lead_department_id == user.department_id:
            return True
        return conn.execute(
            select(EventCooperator.event_id).where(
                EventCooperator.event_id == event_id, EventCooperator.department_id == user.department_id
            )
        ).first() is not None
    return True


def may_act_on(conn: Connection, user: CurrentUser, event_id: int, action) -> bool:
    """Whether the user's role may take ``action`` and the event is in their scope; a department moves only
    events it leads (a cooperating one sees them and writes opinions, decision 0005). The loop's own rules
    (which actions a status allows) are :func:`domain.event_flow.next_status`'s."""
    if not may_act(user, action) or not event_in_scope(conn, user, event_id):
        return False
    return user.role is not Role.DEPARTMENT or department_acts(conn, user.department_id, event_id, action)


def department_acts(conn: Connection, department_id: int | None, event_id: int, action) -> bool:
    """Whether a handler of ``department_id`` may take ``action`` on the event, as its lead or as one of its
    cooperating departments (:func:`domain.access.department_may_act`); without a department, nothing."""
    if department_id is None:
        return False
    lead = conn.execute(select(Event.lead_department_id).where(Event.id == event_id)).scalar()
    cooperates = conn.execute(
        select(EventCooperator.event_id).where(EventCooperator.event_id == event_id,
                                               EventCooperator.department_id == department_id)
    ).first() is not None
    return department_may_act(action, leads=lead == department_id, cooperates=cooperates)


def grid_in_scope(conn: Connection, user: CurrentUser, grid_id: int) -> bool:
    """Whether the user may see the venues of ``grid_id``: an inspector in their assigned grids, every
    other role inside their scope unit."""
    if user.role is Role.INSPECTOR:
        return conn.execute(
            select(InspectorGrid.grid_id).where(InspectorGrid.user_id == user.id, InspectorGrid.grid_id == grid_id)
        ).first() is not None
    return unit_in_scope(conn, user, grid_id)


def venue_in_scope(conn: Connection, user: CurrentUser, venue_id: int) -> bool:
    """Whether the user may see venue ``venue_id`` (:func:`grid_in_scope` of its grid)."""
    grid_id = conn.execute(select(Venue.grid_id).where(Venue.id == venue_id)).scalar()
    return grid_id is not None and grid_in_scope(conn, user, grid_id)


def grids_under(conn: Connection, unit_id: int) -> list[int]:
    """Ids of the grids inside ``unit_id`` (itself if it is a grid), level by level down the tree."""
    frontier = [unit_id]
    grids: list[int] = []
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        rows = conn.execute(select(AdminUnit.id, AdminUnit.level).where(AdminUnit.id.in_(frontier))).all()
        grids += [r.id for r in rows if AdminLevel(r.level) is AdminLevel.GRID]
        frontier = list(conn.execute(select(AdminUnit.id).where(AdminUnit.parent_id.in_(frontier))).scalars())
    return sorted(grids)


def user_scope(conn: Connection, user: CurrentUser):
    """The event :class:`services.event_views.Scope` of ``user``, from the store (not from the page)."""
    from services.event_views import scope_for

    return scope_for(user, grids_under(conn, user.scope_unit_id))


def verified_user(conn: Connection, user: CurrentUser | None) -> CurrentUser | None:
    """The session's user if the store still says the same (active, same role, scope and department).

    A session value is only a claim: a forged or stale one (another role, a wider scope, a
    deactivated account) is refused here and logged.
    """
    if user is None:
        return None
    row = conn.execute(
        select(User.username, User.role, User.scope_unit_id, User.department_id, User.is_active).where(User.id == user.id)
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

