"""The event rules an admin edits (dispatch, owning levels, deadlines, escalation), kept in settings.

Also what the rules answer: the suggested dispatch of an event and each stage's deadline. The
automatic 上移 they call for is applied by :func:`services.events.escalate_overdue` (run by the jobs
runner, :mod:`services.jobs`).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, literal_column, select

from db.direct import Direct
from db.models import AdminUnit, Department, Setting
from db.uow import UnitOfWork
from domain.deadlines import DEFAULT_DEADLINES, DeadlineRules, due_at, stage_of
from domain.dispatch import DEFAULT_RULES, DispatchDecision, DispatchRules, EventFacts, route
from domain.vocabulary import AdminLevel, EventStatus, Urgency
from services import settings
from services.access import out_of_scope
from services.departments import disabled_ids

DISPATCH_KEY = "event.dispatch_rules"
DEADLINES_KEY = "event.deadlines"


# Both rule sets in one statement, built once: intake reads them in every report's transaction (run on
# the driver, db.direct, decision 0058; the two keys written into its text).
_RULES = Direct(
    select(Setting.key, Setting.value_json).where(
        Setting.key.in_([literal_column(f"'{k}'", String) for k in (DISPATCH_KEY, DEADLINES_KEY)])
    )
)


def load_rules(conn: Connection) -> tuple[DispatchRules, DeadlineRules]:
    """The admin's rules, or the defaults where none were saved (read on every call, in the caller's
    transaction, so a change saved by another process applies to the next report; parsed once per text)."""
    stored: dict[str, str] = {k: v for k, v in _RULES.rows(conn, {})}
    d, t = stored.get(DISPATCH_KEY), stored.get(DEADLINES_KEY)
    return (_dispatch(d) if d else DEFAULT_RULES, _deadlines(t) if t else DEFAULT_DEADLINES)


#: The deadline rules' stored text as a scalar subquery: a statement that reads something else can carry
#: them (intake reads them with the possible duplicates: services.intake.nearby_and_deadlines).
DEADLINES_TEXT = select(Setting.value_json).where(Setting.key == DEADLINES_KEY).scalar_subquery()


def deadlines_from(text: str | None) -> DeadlineRules:
    """The deadline rules stored as ``text`` (:data:`DEADLINES_TEXT`), or the defaults when none were saved."""
    return _deadlines(text) if text else DEFAULT_DEADLINES


@functools.lru_cache(maxsize=8)
def _dispatch(text: str) -> DispatchRules:
    return DispatchRules.from_json(text)


@functools.lru_cache(maxsize=8)
def _deadlines(text: str) -> DeadlineRules:
    return DeadlineRules.from_json(text)


def save_rules(uow: UnitOfWork, *, dispatch_json: str, deadlines_json: str, now: datetime, user=None) -> None:
    """Validate both rule sets (Chinese errors name what is wrong) and store them; nothing is stored on error.

    ``user``: the logged-in editor, refused (logged) without the ``edit_rules`` permission; None for trusted callers.
    """
    if user is not None and not user.may("edit_rules"):
        raise out_of_scope(user, "edit event rules", None, "只有系统管理员可以修改规则")
    dispatch = DispatchRules.from_json(dispatch_json)
    deadlines = DeadlineRules.from_json(deadlines_json)
    with uow.begin("events.save_rules"):
        settings.write(uow.conn, DISPATCH_KEY, dispatch.to_json(), now, actor=user, action="event.rules")
        settings.write(uow.conn, DEADLINES_KEY, deadlines.to_json(), now, actor=user, action="event.rules")
        uow.commit()


def facts_of(conn: Connection, event: dict, level: Any = None) -> EventFacts:
    """What the rules read of ``event`` (a row of ``events``); ``level``: its owner unit's, when the caller
    read it with the row (else one query)."""
    if level is None:
        level = conn.execute(select(AdminUnit.level).where(AdminUnit.id == event["owner_unit_id"])).scalar()
    return EventFacts(
        category=event["category"],
        urgency=event["urgency"],
        title=event.get("title") or "",
        description=event.get("description") or "",
        reporter_count=event.get("reporter_count") or 1,
        owner_level=AdminLevel(level) if level else None,
        status=EventStatus(event["status"]),
        dispatched_at=event.get("dispatched_at"),
    )


def suggest_dispatch(conn: Connection, event: dict) -> tuple[DispatchDecision, int | None]:
    """Where the rules send the event, and the department that serves its place at that level (if any)."""
    dispatch, _ = load_rules(conn)
    decision = route(facts_of(conn, event), dispatch)
    # Walk up from the grid: the first unit at or above the decided level with an enabled department of that
    # kind (a disabled one, 停用 in 部门管理, takes no new dispatch).
    off = disabled_ids(conn)
    node, reached = event["grid_id"], False
    while node is not None:
        unit = conn.execute(select(AdminUnit.parent_id, AdminUnit.level).where(AdminUnit.id == node)).one()
        reached = reached or AdminLevel(unit.level) == decision.level
        if reached:
            dept = conn.execute(
                select(Department.id).where(
                    Department.unit_id == node, Department.kind == decision.department_kind
                )
            ).scalar()
            if dept is not None and dept not in off:
                return decision, dept
        node = unit.parent_id
    return decision, None


def stage_deadline(
    conn: Connection, status: EventStatus, urgency: Urgency, since: datetime
) -> datetime | None:
    """The deadline of the stage ``status`` starts, under the admin's deadline rules."""
    return stage_deadline_under(load_rules(conn)[1], status, urgency, since)


def stage_deadline_under(
    deadlines: DeadlineRules, status: EventStatus, urgency: Urgency, since: datetime
) -> datetime | None:
    """:func:`stage_deadline` under rules the caller has read (intake reads them before its write)."""
    stage = stage_of(status)
    return None if stage is None else due_at(stage, urgency, since, deadlines)
