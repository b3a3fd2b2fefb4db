"""Event use cases: report an event and move it through the loop, each in one transaction with its trail row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from db.models import AdminUnit, Department, Event, EventCooperator, EventTransition, User
from domain.event_flow import ACTION_LABELS, NOTE_ONLY, Action, next_status
from domain.vocabulary import EventCategory, EventSource, EventStatus, Rating, Role, Urgency
from services import audit
from services.event_rules import stage_deadline
from services.locate import OutsideArea, locate_grid, village_of


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id (None for the system) and the role they act in."""

    user_id: int | None
    role: str


SYSTEM = Actor(None, "system")


class ConcurrentChange(RuntimeError):
    """Somebody else moved the event first; the message says what happened (e.g. 已被派单)."""


def report_event(
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
) -> Event:
    """上报: create an event at (lon, lat); refused with :class:`OutsideArea` outside every grid.

    The event is first owned by the village of its grid (小事不出村).
    """
    title = title.strip()
    if not title:
        raise ValueError("事件标题不能为空")
    grid_id = locate_grid(session, lon, lat)
    if grid_id is None:
        raise OutsideArea(lon, lat)
    village_id = village_of(session.connection(), grid_id)
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
        owner_unit_id=village_id or grid_id,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        reported_at=now,
        updated_at=now,
        due_at=stage_deadline(session.connection(), status, Urgency(urgency), now),
    )
    session.add(event)
    session.flush()
    session.add(
        EventTransition(
            event_id=event.id,
            seq=1,
            at=now,
            action=Action.REPORT.value,
            from_status=None,
            to_status=status,
            actor_id=actor.user_id,
            actor_role=actor.role,
            unit_id=event.owner_unit_id,
        )
    )
    audit.record(session.connection(), **audit.who(actor), action="event.report", entity="events", entity_id=event.id,
                 before=None, after={"source": event.source, "category": event.category, "title": event.title,
                                     "grid_id": grid_id, "lon": lon, "lat": lat, **audit.new_event_state(event)})
    return event


def act(
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
) -> EventStatus:
    """Apply ``action`` to an event: the status change and its trail row, or nothing at all.

    派单 sends it to the lead department ``department_id`` and, for a cross-department matter (一件事),
    the ``cooperating_department_ids`` (协办); each dispatch replaces the cooperators of the last one.
    Only the lead department's handlers move a dispatched event: a cooperating one sees it (decision 0005).

    ``expected`` is the status the actor saw (a page passes what it showed). Raises
    :class:`domain.event_flow.IllegalTransition` if the loop forbids the action, and
    :class:`ConcurrentChange` if another actor changed the event since it was read.
    """
    event = session.get(Event, event_id)
    if event is None:
        raise LookupError(f"事件 {event_id} 不存在")
    acting_department = _lead_only(session, event, actor, action)
    if action in NOTE_ONLY and not (note or "").strip():
        raise ValueError(f"{ACTION_LABELS[action]}：请填写意见内容")
    before = expected or event.status
    if before != event.status:
        raise ConcurrentChange(f"事件已被他人处理（当前状态：{EventStatus(event.status).label}）")
    prior = audit.event_state(session, event_id)  # the trail's "before" (全留痕)
    after = next_status(before, action)
    # Each stage gets its own deadline; an event that ever missed one counts as late (按时率).
    late = event.due_at is not None and now > event.due_at
    values: dict = {
        "status": after,
        "updated_at": now,
        "due_at": stage_deadline(session.connection(), after, Urgency(event.urgency), now),
        "is_overdue": bool(event.is_overdue or late),
    }
    if action in NOTE_ONLY:  # an opinion moves nothing: the stage's deadline runs on
        values = {"status": after, "updated_at": now}
        department_id = acting_department
    elif action is not Action.DISPATCH and department_id is None:  # the trail names the handler's department
        department_id = acting_department
    owner = event.owner_unit_id
    if action is Action.ACCEPT:
        values["accepted_at"] = now
    elif action is Action.DISPATCH:
        values["dispatched_at"] = now
        if department_id is not None:
            values["lead_department_id"] = department_id
        cooperators = _checked_cooperators(session, department_id, cooperating_department_ids)
        if cooperators:
            note = f"{note or ACTION_LABELS[action]}（协办部门：{'、'.join(cooperators.values())}）"
    elif action is Action.RESOLVE:
        values["resolved_at"] = now
    elif action is Action.RATE:
        if rating is None:
            raise ValueError("评价需要选择满意度")
        values["rating"] = Rating(rating)
    elif action is Action.ARCHIVE:
        values["closed_at"] = now
    elif action is Action.ESCALATE:
        parent = session.execute(select(AdminUnit.parent_id).where(AdminUnit.id == owner)).scalar_one()
        if parent is None:
            raise ValueError("已是最高层级，无法上移")
        owner = parent
        values["owner_unit_id"] = parent
        values["escalations"] = Event.escalations + 1
    # Compare-and-set on the status read above: of two concurrent actors exactly one matches.
    done = session.execute(
        update(Event).where(Event.id == event_id, Event.status == before).values(**values)
    ).rowcount
    if done != 1:
        session.rollback()
        current = session.execute(select(Event.status).where(Event.id == event_id)).scalar_one()
        raise ConcurrentChange(f"事件已被他人处理（当前状态：{EventStatus(current).label}）")
    if action is Action.DISPATCH:  # 一件事: this dispatch's team replaces the last one's
        session.execute(delete(EventCooperator).where(EventCooperator.event_id == event_id))
        session.add_all(EventCooperator(event_id=event_id, department_id=d) for d in cooperators)
    seq = session.execute(
        select(func.coalesce(func.max(EventTransition.seq), 0)).where(EventTransition.event_id == event_id)
    ).scalar_one()
    session.add(
        EventTransition(
            event_id=event_id,
            seq=seq + 1,
            at=now,
            action=action.value,
            from_status=before,
            to_status=after,
            actor_id=actor.user_id,
            actor_role=actor.role,
            unit_id=owner,
            department_id=department_id,
            note=note or ACTION_LABELS[action],
        )
    )
    session.flush()
    session.expire(event)
    audit.record(session.connection(), **audit.who(actor), action=f"event.{action.value}", entity="events",
                 entity_id=event_id, before=prior, after=audit.event_state(session, event_id), reason=note)
    return after


class OutOfScope(PermissionError):
    """The user may not see or change this object; the denial is logged."""


def _checked_cooperators(session: Session, lead_id: int | None, ids: Iterable[int] | None) -> dict[int, str]:
    """The cooperating departments of a dispatch (id → name, in the order given), or a Chinese error."""
    wanted = list(dict.fromkeys(int(i) for i in ids or ()))
    if not wanted:
        return {}
    if lead_id is None:
        raise ValueError("协办部门：须同时选择牵头部门（派往部门）")
    names = dict(session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted))).all())
    missing = [str(i) for i in wanted if i not in names]
    if missing:
        raise ValueError(f"协办部门：编号 {'、'.join(missing)} 的部门不存在")
    if int(lead_id) in names:
        raise ValueError(f"协办部门：“{names[int(lead_id)]}”已是牵头部门，不能同时协办")
    return {i: names[i] for i in wanted}


def _lead_only(session: Session, event: Event, actor: Actor, action: Action) -> int | None:
    """A department handler moves only events their department leads; a cooperating department sees them and
    writes its opinion (decision 0005). Returns the acting handler's department (None for other roles)."""
    if actor.role != "department" or actor.user_id is None:
        return None
    from services.access import deny, department_acts

    mine = session.execute(select(User.department_id).where(User.id == actor.user_id)).scalar()
    if not department_acts(session.connection(), mine, event.id, action):  # no department: acts on nothing
        deny(SimpleNamespace(id=actor.user_id, role=Role.DEPARTMENT), f"event action {action.value} (not lead)", event.id)
        raise OutOfScope(f"本事件由牵头部门办理，协办部门只能查看和填写处置意见，不能执行“{ACTION_LABELS[action]}”")
    return mine


def act_as(session: Session, user, scope, *, event_id: int, action: Action, now: datetime, **kwargs) -> EventStatus:
    """:func:`act` for a logged-in user: refused (and logged) unless the role may take the action and the
    event is in the user's scope as the store says (``scope``, the page's view, may only narrow it)."""
    from domain.access import may_act
    from services.access import event_in_scope, out_of_scope

    if not may_act(user, action):
        raise out_of_scope(user, f"event action {action.value}", event_id,
                           f"您的角色（{user.role.label}）不能执行“{ACTION_LABELS[action]}”")
    conn = session.connection()
    visible = event_in_scope(conn, user, event_id) and (
        scope is None or session.execute(select(Event.id).where(Event.id == event_id, *scope.where())).scalar()
    )
    if not visible:
        raise out_of_scope(user, f"event action {action.value}", event_id, "该事件不在您的管辖范围内")
    return act(session, event_id=event_id, action=action, now=now, actor=Actor(user.id, user.role.value), **kwargs)
