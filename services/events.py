"""Event use cases: report an event, move it through the loop, and 上移 what waited too long.

Each use case takes a :class:`db.uow.UnitOfWork`, writes the change with its trail row and audit row,
and commits; refused, it writes nothing. The loop itself is data in :mod:`domain.event_flow` (which
status each action leads to, which time column it stamps, which actions need a reason); this module
applies it. Another use case that reports or moves an event inside its own unit of work (intake's
duplicate merge, the file import) calls the session-level steps :func:`add_event` and
:func:`apply_action`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, delete, func, not_, select, text, tuple_, update
from sqlalchemy.orm import Session

from db.models import TIMED_EVENTS_SQL, AdminUnit, Department, Event, EventCooperator, EventTransition
from db.uow import UnitOfWork
from domain.access import may_act, owner_may_act
from domain.dispatch import should_escalate
from domain.errors import FieldProblems
from domain.event_flow import (
    ACTION_LABELS,
    NOTE_ONLY,
    STAMPS,
    SYSTEM_ONLY,
    Action,
    missing_note,
    next_status,
)
from domain.vocabulary import (
    TIMED_STATUSES,
    EventCategory,
    EventSource,
    EventStatus,
    Rating,
    Role,
    Urgency,
)
from services import audit
from services.access import (
    event_in_scope,
    out_of_scope,
    require_handler,
    require_lead_department,
    unit_in_scope,
)
from services.accounts import disabled_departments
from services.event_rules import facts_of, load_rules, stage_deadline
from services.locate import OutsideArea, locate_grid, village_of


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id (None for the system) and the role they act in."""

    user_id: int | None
    role: str


log = logging.getLogger("events")
SYSTEM = Actor(None, "system")
#: Statuses whose handling deadline the automatic 上移 watches (the HANDLE stage).
HANDLING = (EventStatus.DISPATCHED, EventStatus.IN_PROGRESS)


class ConcurrentChange(RuntimeError):
    """Somebody else moved the event first; the message says what happened (e.g. 已被派单)."""


def _moved(status) -> ConcurrentChange:
    return ConcurrentChange(
        f"事件已被他人处理（当前状态：{EventStatus(status).label}），请查看最新状态后重新办理"
    )


# -- use cases ------------------------------------------------------------------------------------


def report_event(uow: UnitOfWork, **fields) -> Event:
    """上报: create an event (the fields of :func:`add_event`); refused with :class:`OutsideArea` outside every grid."""
    with uow.begin("events.report"):
        event = add_event(uow.session, **fields)
        uow.commit()
        return event


def act(uow: UnitOfWork, **step) -> EventStatus:
    """Apply one action to an event (the arguments of :func:`apply_action`) and commit: all of it or nothing."""
    with uow.begin("events.act"):
        after = apply_action(uow.session, **step)
        uow.commit()
        return after


def act_as(
    uow: UnitOfWork,
    user,
    scope,
    *,
    event_id: int,
    action: Action,
    with_step: Callable[[Session], None] | None = None,
    **step,
) -> EventStatus:
    """:func:`act` for a logged-in user: refused (and logged) unless the role may take the action and the
    event is in the user's scope as the store says (``scope``, the page's view, may only narrow it).
    ``with_step`` writes what goes with the step (办结's photos) in the same unit of work, after it."""
    if not may_act(user, action):
        raise out_of_scope(
            user,
            f"event action {action.value}",
            event_id,
            f"您的角色（{user.role.label}）不能执行“{ACTION_LABELS[action]}”",
        )
    with uow.begin("events.act"):
        if not _visible(uow.conn, user, scope, event_id):
            raise out_of_scope(user, f"event action {action.value}", event_id, "该事件不在您的管辖范围内")
        if not owner_may_act(user.role, action, owns=_owned_in_scope(uow.conn, user, event_id)):
            raise out_of_scope(
                user,
                f"event action {action.value} (owned above)",
                event_id,
                f"本事件已上移至{_owner_label(uow.conn, event_id)}办理：您可查看全程记录、填写处置意见，"
                f"“{ACTION_LABELS[action]}”由该层级办理",
            )
        after = apply_action(
            uow.session, event_id=event_id, action=action, actor=Actor(user.id, user.role.value), **step
        )
        if with_step is not None:
            with_step(uow.session)
        uow.commit()
        return after


def _owned_in_scope(conn: Connection, user, event_id: int) -> bool:
    owner = conn.execute(select(Event.owner_unit_id).where(Event.id == event_id)).scalar()
    return unit_in_scope(conn, user, owner)


def _owner_label(conn: Connection, event_id: int) -> str:
    return (
        conn.execute(
            select(AdminUnit.name)
            .join(Event, Event.owner_unit_id == AdminUnit.id)
            .where(Event.id == event_id)
        ).scalar()
        or "上级"
    )


def _visible(conn: Connection, user, scope, event_id: int) -> bool:
    if not event_in_scope(conn, user, event_id):
        return False
    found = conn.execute(select(Event.id).where(Event.id == event_id, *(scope.where() if scope else ())))
    return found.first() is not None


def escalate_overdue(uow: UnitOfWork, now: datetime, limit: int = 50) -> int:
    """自动上移: every event whose handling deadline passed where the rules say so, each in its own unit of
    work; returns how many moved.

    Safe to run twice, or in two processes at once: each escalation is a compare-and-set on the status and
    the deadline the sweep read, so an event moves once per missed deadline; the loser of a race (or an
    event a person moved meanwhile) is skipped, and so is an event the loop refuses (logged).
    """
    with uow.reader() as conn:
        due = overdue_escalations(conn, now, limit)
    moved = 0
    for event_id, status, due_at, reason in due:
        try:
            act(
                uow,
                event_id=event_id,
                action=Action.ESCALATE,
                now=now,
                note=reason,
                expected=status,
                expected_due_at=due_at,
            )
        except ConcurrentChange:  # another runner, or a person, moved it first
            continue
        except ValueError as exc:  # e.g. already at the top level: the others still go up
            log.warning("automatic escalation of event %s refused: %s", event_id, exc)
            continue
        moved += 1
    return moved


def mark_overdue(uow: UnitOfWork, now: datetime, limit: int = 200) -> int:
    """超期: mark every event whose stage deadline has passed (an open one, or 已办结 awaiting a late 核查)
    and that nobody has moved since, each in
    its own unit of work, so 按时办结率 counts it late without waiting for a person to act on it (the flag
    was only set by the next step taken after the deadline); returns how many were marked.

    The mark is a trail row (action 超期, status unchanged), so the rollups refresh its day and grid. Like
    :func:`escalate_overdue`, a compare-and-set on the status and deadline read: safe twice or at once."""
    with uow.reader() as conn:
        rows = conn.execute(
            select(Event.id, Event.status, Event.due_at)
            .where(
                text(TIMED_EVENTS_SQL),  # word for word as the index says, so the planner takes it
                Event.status.in_(TIMED_STATUSES),
                Event.due_at < now,
                not_(Event.is_overdue),
            )
            .order_by(Event.due_at, Event.id)
            .limit(limit)
        ).all()
    marked = 0
    for event_id, status, due_at in rows:
        try:
            act(
                uow,
                event_id=event_id,
                action=Action.OVERDUE,
                now=now,
                note=f"超过处置期限（{due_at:%Y-%m-%d %H:%M}）",
                expected=EventStatus(status),
                expected_due_at=due_at,
            )
        except ConcurrentChange:  # a person (or the other runner) moved it first: their step marks it
            continue
        marked += 1
    return marked


def overdue_escalations(
    conn: Connection, now: datetime, limit: int = 50
) -> list[tuple[int, EventStatus, datetime, str]]:
    """(event id, status, deadline, reason) of the events the rules move up now, most overdue first.

    Overdue events the rules keep where they are (at the top level, an urgency turned off) stay overdue
    for ever: the overdue events are read page by page past them, so they never hold back the ones behind."""
    dispatch, deadlines = load_rules(conn)
    out: list[tuple[int, EventStatus, datetime, str]] = []
    after: tuple[datetime, int] | None = None
    owner = AdminUnit.__table__.alias("owner")
    while len(out) < limit:
        # each row with its owner's level: the rules read it, and a page of events costs one query
        page = (
            select(Event.__table__, owner.c.level.label("owner_level"))
            .join(owner, owner.c.id == Event.owner_unit_id)
            .where(
                text(TIMED_EVENTS_SQL),
                Event.status.in_(HANDLING),
                Event.due_at < now,
                # owned by the area's top unit (an own area without a city above): nowhere to move up to
                owner.c.parent_id.is_not(None),
            )
        )
        if after is not None:
            page = page.where(tuple_(Event.due_at, Event.id) > tuple_(*after))
        rows = conn.execute(page.order_by(Event.due_at, Event.id).limit(limit)).mappings().all()
        for row in rows:
            facts = facts_of(conn, dict(row), level=row["owner_level"])
            decision = should_escalate(facts, now, dispatch, deadlines)
            if decision is not None:
                out.append((row["id"], EventStatus(row["status"]), row["due_at"], decision.reason))
                if len(out) == limit:
                    break
        if len(rows) < limit:
            break
        after = (rows[-1]["due_at"], rows[-1]["id"])
    return out


# -- session-level steps (inside a caller's unit of work) -----------------------------------------


def add_event(
    session: Session,
    *,
    source: EventSource,
    category: EventCategory,
    title: str,
    lon: float,
    lat: float,
    now: datetime,
    actor: Actor = SYSTEM,
    description: str = "",
    urgency: Urgency = Urgency.NORMAL,
    address: str | None = None,
    reporter_name: str | None = None,
    reporter_phone: str | None = None,
    duplicate_of_id: int | None = None,
    external_ref: str | None = None,
) -> Event:
    """The new event at (lon, lat) with its first trail row and audit row; :class:`OutsideArea` outside
    every grid. It is first owned by the village of its grid (小事不出村).

    ``duplicate_of_id`` flags a likely original for staff to merge (疑似重复, set by intake);
    ``external_ref`` is the source system's number (外部编号, unique per source)."""
    title = title.strip()
    if not title:
        raise ValueError("事件标题不能为空")
    grid_id = locate_grid(session, lon, lat)
    if grid_id is None:
        raise OutsideArea(lon, lat)
    conn = session.connection()
    status = next_status(None, Action.REPORT)
    event = Event(
        source=EventSource(source),
        category=EventCategory(category),
        title=title[:200],
        description=description,
        lon=lon,
        lat=lat,
        address=address,
        grid_id=grid_id,
        status=status,
        urgency=Urgency(urgency),
        owner_unit_id=village_of(conn, grid_id) or grid_id,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        duplicate_of_id=duplicate_of_id,
        external_ref=external_ref,
        reported_at=now,
        updated_at=now,
        due_at=stage_deadline(conn, status, Urgency(urgency), now),
    )
    session.add(event)
    session.flush()
    _trail(session, event, 1, Action.REPORT, None, status, actor, now)
    audit.record(conn, **reported_entry(actor, event, duplicate_of_id, external_ref))
    return event


def reported_entry(
    actor: Actor, event: Event, duplicate_of_id: int | None, external_ref: str | None = None
) -> dict:
    """The ``event.report`` audit row of a new event (:func:`services.audit.record`'s arguments), whichever
    path writes it: this one, intake's one at a time or a file's many, or intake's one statement on
    PostgreSQL (``event.id`` unset there: the store fills the row's entity id in)."""
    return {
        **audit.who(actor),
        "action": "event.report",
        "entity": "events",
        "entity_id": event.id,
        "before": None,
        "after": reported_state(event, duplicate_of_id, external_ref),
    }


def reported_state(event: Event, duplicate_of_id: int | None, external_ref: str | None = None) -> dict:
    """The audit row's ``after`` of a new event (上报), whichever path wrote it (this one, or intake's)."""
    return {
        "source": event.source,
        "category": event.category,
        "title": event.title,
        "grid_id": event.grid_id,
        "lon": event.lon,
        "lat": event.lat,
        **audit.new_event_state(event),
        **({"duplicate_of_id": duplicate_of_id} if duplicate_of_id is not None else {}),
        **({"external_ref": external_ref} if external_ref else {}),
    }


def apply_action(
    session: Session,
    *,
    event_id: int,
    action: Action,
    now: datetime,
    actor: Actor = SYSTEM,
    note: str | None = None,
    department_id: int | None = None,
    cooperating_department_ids: Iterable[int] | None = None,
    rating: Rating | None = None,
    expected: EventStatus | None = None,
    expected_due_at: datetime | None = None,
) -> EventStatus:
    """Apply ``action`` to an event: the status change, its trail row and audit row, or nothing at all.

    派单 sends it to the lead department ``department_id`` and, for a cross-department matter (一件事),
    the ``cooperating_department_ids`` (协办); each dispatch replaces the cooperators of the last one.
    Only the lead department's handlers move a dispatched event: a cooperating one sees it (decision 0005).
    退回、退单、上移、重新处置 need a reason and 处置意见 its text in ``note`` (:class:`FieldProblems` otherwise).

    ``expected`` is the status the actor saw (a page passes what it showed), ``expected_due_at`` the
    deadline (the 上移 sweep passes what it read). Raises :class:`domain.event_flow.IllegalTransition` if
    the loop forbids the action, and :class:`ConcurrentChange` if another actor changed the event since.
    """
    if action in SYSTEM_ONLY and actor.user_id is not None:
        raise PermissionError(f"“{ACTION_LABELS[action]}”由系统标记，不能手动办理")
    # The row locked, as the UPDATE below would, and read again (PostgreSQL; SQLite's unit of work is
    # alone): a colleague's step or merge committed meanwhile is seen here, and one under way waits, so the
    # trail's "before" is the state this step changes (FOR NO KEY UPDATE: intake's KEY SHARE is not held up).
    event = session.get(Event, event_id, with_for_update={"key_share": True}, populate_existing=True)
    if event is None:
        raise LookupError(f"事件 {event_id} 不存在")
    acting_department = _lead_only(session, event, actor, action)
    if missing := missing_note(action, note):
        raise FieldProblems({"说明": missing})
    before = expected or event.status
    if before != event.status or (expected_due_at is not None and event.due_at != expected_due_at):
        raise _moved(event.status)
    prior = audit.event_state(session, event_id)  # the trail's "before" (全留痕)
    after = next_status(before, action)
    values = _new_values(session, event, action, after, now)
    if action in NOTE_ONLY or (action is not Action.DISPATCH and department_id is None):
        department_id = acting_department  # the trail names the acting handler's department
    cooperators: dict[int, str] = {}
    if action is Action.DISPATCH:
        if department_id is not None:
            _checked_lead(session, int(department_id))
            values["lead_department_id"] = department_id
        cooperators = _checked_cooperators(session, department_id, cooperating_department_ids)
        if cooperators:
            note = f"{note or ACTION_LABELS[action]}（协办部门：{'、'.join(cooperators.values())}）"
    elif action is Action.RATE:
        if rating is None:
            raise ValueError("评价需要选择满意度")
        values["rating"] = Rating(rating)
        # The verdict is written into the trail: the timeline shows every rating, a reopened event's too.
        said = (note or "").strip()
        note = f"满意度：{Rating(rating).label}" + (f"；{said}" if said else "")
    elif action is Action.ESCALATE:
        values |= {
            "owner_unit_id": _parent_of(session, event.owner_unit_id),
            "escalations": Event.escalations + 1,
        }
    # Compare-and-set on what was read: of two concurrent actors exactly one matches.
    guard = [Event.id == event_id, Event.status == before]
    if expected_due_at is not None:
        guard.append(Event.due_at == expected_due_at)
    moved = cast(CursorResult[Any], session.execute(update(Event).where(*guard).values(**values)))
    if moved.rowcount != 1:
        raise _moved(session.execute(select(Event.status).where(Event.id == event_id)).scalar_one())
    if action is Action.DISPATCH:  # 一件事: this dispatch's team replaces the last one's
        session.execute(delete(EventCooperator).where(EventCooperator.event_id == event_id))
        session.add_all(EventCooperator(event_id=event_id, department_id=d) for d in cooperators)
    seq = session.execute(
        select(func.coalesce(func.max(EventTransition.seq), 0)).where(EventTransition.event_id == event_id)
    ).scalar_one()
    owner = values.get("owner_unit_id", event.owner_unit_id)
    _trail(session, event, seq + 1, action, before, after, actor, now, owner, department_id, note)
    session.flush()
    session.refresh(event)  # the object as stored now: usable after the unit of work has closed
    audit.record(
        session.connection(),
        **audit.who(actor),
        action=f"event.{action.value}",
        entity="events",
        entity_id=event_id,
        before=prior,
        after=audit.event_state(session, event_id),
        reason=note,
    )
    return after


def _new_values(session: Session, event: Event, action: Action, after: EventStatus, now: datetime) -> dict:
    """The event's columns after ``action``: status, the stage's new deadline, late-ever, the stamped time."""
    if action in NOTE_ONLY:  # an opinion moves nothing: the stage's deadline runs on
        return {"status": after, "updated_at": now}
    if action is Action.OVERDUE:  # the system marks the missed deadline; the stage goes on as it was
        return {"status": after, "updated_at": now, "is_overdue": True}
    late = event.due_at is not None and now > event.due_at  # an event that ever missed a stage is late
    values = {
        "status": after,
        "updated_at": now,
        "due_at": stage_deadline(session.connection(), after, Urgency(event.urgency), now),
        "is_overdue": bool(event.is_overdue or late),
    }
    if action in STAMPS:
        values[STAMPS[action]] = now
    return values


def _parent_of(session: Session, unit_id: int) -> int:
    parent = session.execute(select(AdminUnit.parent_id).where(AdminUnit.id == unit_id)).scalar_one()
    if parent is None:
        raise ValueError("已是最高层级，无法上移")
    return parent


def _trail(
    session: Session,
    event: Event,
    seq: int,
    action: Action,
    before: EventStatus | None,
    after: EventStatus,
    actor: Actor,
    now: datetime,
    owner: int | None = None,
    department_id: int | None = None,
    note: str | None = None,
) -> None:
    session.add(
        EventTransition(
            event_id=event.id,
            seq=seq,
            at=now,
            action=action.value,
            from_status=before,
            to_status=after,
            actor_id=actor.user_id,
            actor_role=actor.role,
            unit_id=owner if owner is not None else event.owner_unit_id,
            department_id=department_id,
            note=note if action is Action.REPORT else (note or ACTION_LABELS[action]),
        )
    )


def _checked_cooperators(session: Session, lead_id: int | None, ids: Iterable[int] | None) -> dict[int, str]:
    """The cooperating departments of a dispatch (id → name, in the order given), or a Chinese error."""
    wanted = list(dict.fromkeys(int(i) for i in ids or ()))
    if not wanted:
        return {}
    if lead_id is None:
        raise ValueError("协办部门：须同时选择牵头部门（派往部门）")
    names = dict(
        session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted))).all()
    )
    missing = [str(i) for i in wanted if i not in names]
    if missing:
        raise ValueError(f"协办部门：编号 {'、'.join(missing)} 的部门不存在")
    if int(lead_id) in names:
        raise ValueError(f"协办部门：“{names[int(lead_id)]}”已是牵头部门，不能同时协办")
    off = [names[i] for i in wanted if i in disabled_departments(session.connection())]
    if off:
        raise ValueError(f"协办部门：“{'、'.join(off)}”已停用，不再接收派单（部门管理可重新启用）")
    return {i: names[i] for i in wanted}


def _checked_lead(session: Session, department_id: int) -> None:
    """A 派单 goes to a department that exists and is not disabled (停用, decision 0027)."""
    name = session.execute(select(Department.name).where(Department.id == department_id)).scalar()
    if name is None:
        raise FieldProblems({"派往部门": f"编号 {department_id} 的部门不存在"})
    if department_id in disabled_departments(session.connection()):
        raise FieldProblems({"派往部门": f"“{name}”已停用，不再接收派单（部门管理可重新启用）"})


def _lead_only(session: Session, event: Event, actor: Actor, action: Action) -> int | None:
    """The acting handler's department when a department acts (only on events it leads, decision 0005);
    None for other roles. A grid worker does not handle an event a department leads."""
    if actor.role == Role.INSPECTOR.value:
        require_handler(Role.INSPECTOR, actor.user_id, event.id, event.lead_department_id, action)
    if actor.role != "department" or actor.user_id is None:
        return None
    return require_lead_department(session.connection(), actor.user_id, event.id, action)
