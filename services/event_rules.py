"""The event rules an admin edits (dispatch, owning levels, deadlines, escalation), kept in settings.

Also what the rules drive: the suggested dispatch of an event, each stage's deadline, and the
automatic 上移 of events whose handling deadline passed.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from db.models import AdminUnit, Department, Event
from domain.deadlines import DEFAULT_DEADLINES, DeadlineRules
from domain.dispatch import DEFAULT_RULES, DispatchDecision, DispatchRules, EventFacts, route, should_escalate
from domain.event_flow import Action
from domain.vocabulary import AdminLevel, EventStatus, Urgency
from services import settings

DISPATCH_KEY = "event.dispatch_rules"
DEADLINES_KEY = "event.deadlines"
SYSTEM_ROLE = "system"


def load_rules(conn: Connection) -> tuple[DispatchRules, DeadlineRules]:
    """The admin's rules, or the defaults where none were saved (read on every call, parsed once per text)."""
    d, t = settings.read(conn, DISPATCH_KEY), settings.read(conn, DEADLINES_KEY)
    return (_dispatch(d) if d else DEFAULT_RULES, _deadlines(t) if t else DEFAULT_DEADLINES)


@functools.lru_cache(maxsize=8)
def _dispatch(text: str) -> DispatchRules:
    return DispatchRules.from_json(text)


@functools.lru_cache(maxsize=8)
def _deadlines(text: str) -> DeadlineRules:
    return DeadlineRules.from_json(text)


def save_rules(conn: Connection, *, dispatch_json: str, deadlines_json: str, now: datetime, user=None) -> None:
    """Validate both rule sets (Chinese errors name what is wrong) and store them; nothing is stored on error.

    ``user``: the logged-in editor, refused (logged) without the ``edit_rules`` permission; None for trusted callers.
    """
    if user is not None and not user.may("edit_rules"):
        from services.access import out_of_scope

        raise out_of_scope(user, "edit event rules", None, "只有系统管理员可以修改规则")
    dispatch = DispatchRules.from_json(dispatch_json)
    deadlines = DeadlineRules.from_json(deadlines_json)
    settings.write(conn, DISPATCH_KEY, dispatch.to_json(), now, actor=user, action="event.rules")
    settings.write(conn, DEADLINES_KEY, deadlines.to_json(), now, actor=user, action="event.rules")


def facts_of(conn: Connection, event: dict) -> EventFacts:
    level = conn.execute(select(AdminUnit.level).where(AdminUnit.id == event["owner_unit_id"])).scalar()
    return EventFacts(
        category=event["category"], urgency=event["urgency"], title=event.get("title") or "",
        description=event.get("description") or "", reporter_count=event.get("reporter_count") or 1,
        owner_level=AdminLevel(level) if level else None, status=EventStatus(event["status"]),
        dispatched_at=event.get("dispatched_at"),
    )


def suggest_dispatch(conn: Connection, event: dict) -> tuple[DispatchDecision, int | None]:
    """Where the rules send the event, and the department that serves its place at that level (if any)."""
    dispatch, _ = load_rules(conn)
    decision = route(facts_of(conn, event), dispatch)
    # Walk up from the grid: the first unit at or above the decided level with a department of that kind.
    node, reached = event["grid_id"], False
    while node is not None:
        unit = conn.execute(select(AdminUnit.parent_id, AdminUnit.level).where(AdminUnit.id == node)).one()
        reached = reached or AdminLevel(unit.level) == decision.level
        if reached:
            dept = conn.execute(
                select(Department.id).where(Department.unit_id == node, Department.kind == decision.department_kind)
            ).scalar()
            if dept is not None:
                return decision, dept
        node = unit.parent_id
    return decision, None


def stage_deadline(conn: Connection, status: EventStatus, urgency: Urgency, since: datetime) -> datetime | None:
    """The deadline of the stage ``status`` starts, under the admin's deadline rules."""
    from domain.deadlines import due_at, stage_of

    _, deadlines = load_rules(conn)
    stage = stage_of(status)
    return None if stage is None else due_at(stage, urgency, since, deadlines)


def escalate_overdue(session: Session, now: datetime, limit: int = 50) -> int:
    """上移 events whose handling deadline passed where the policy says so; returns how many moved."""
    from services.events import Actor, act

    conn = session.connection()
    dispatch, deadlines = load_rules(conn)
    rows = conn.execute(
        select(Event.__table__)
        .where(Event.status.in_([EventStatus.DISPATCHED, EventStatus.IN_PROGRESS]), Event.due_at < now)
        .order_by(Event.due_at)
        .limit(limit)
    ).mappings().all()
    moved = 0
    for row in rows:
        decision = should_escalate(facts_of(conn, dict(row)), now, dispatch, deadlines)
        if decision is None:
            continue
        act(session, event_id=row["id"], action=Action.ESCALATE, now=now, actor=Actor(None, SYSTEM_ROLE),
            note=decision.reason, expected=EventStatus(row["status"]))
        moved += 1
    return moved
