"""我的待办: which events wait on a user, and in what order to work them.

An event waits on whoever takes its loop's next step (:mod:`domain.event_flow`), as the stage whose
clock runs names it (:data:`domain.deadlines.STAGE_OF_STATUS`):

- 受理 (已上报), 派单 (已受理, 已退单) and 核查 (已办结) wait on the leaders who answer for the event's
  owning unit: a township's leaders for the township and its villages and grids (no village has a
  leader's account; 小事不出村 is worked by the township's command), a county's or the city's for their
  own unit. A grid worker may 受理 too: a report in one of their grids waits on them as well.
- 处置 (已派单 → 开始处置, 处置中 → 办结) waits on the lead department's handlers; an event dispatched to no
  department (交由村（社区）自行处置) on the grid workers of its grid. A cooperating department (协办)
  is not waited on: it writes opinions, the lead moves the event (decision 0005).

Pure: plain mappings in, plain lists out; the store's reads are :func:`services.event_views.my_todo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.event_flow import Action
from domain.vocabulary import AdminLevel, EventStatus, Role, Urgency

LEADERS = frozenset({Role.ADMIN, Role.COMMAND_CENTER, Role.TOWNSHIP_LEADER})

#: The next step a leader takes from each status (the others wait on someone else, or on nobody).
LEADER_STEPS: dict[EventStatus, Action] = {
    EventStatus.REPORTED: Action.ACCEPT,
    EventStatus.ACCEPTED: Action.DISPATCH,
    EventStatus.RETURNED: Action.DISPATCH,
    EventStatus.RESOLVED: Action.VERIFY,
}
#: The next step the handler of a dispatched event takes.
HANDLER_STEPS: dict[EventStatus, Action] = {
    EventStatus.DISPATCHED: Action.START,
    EventStatus.IN_PROGRESS: Action.RESOLVE,
}
#: Every status a to-do list may hold (what a store query asks for first).
WAITING_STATUSES: frozenset[EventStatus] = frozenset(LEADER_STEPS) | frozenset(HANDLER_STEPS)

_URGENCY_RANK = {Urgency.CRITICAL: 0, Urgency.URGENT: 1, Urgency.NORMAL: 2}


@dataclass(frozen=True)
class Desk:
    """Whose list: the role and what it answers for.

    ``owner_units``: for a leader, the owning units whose events they accept, dispatch and verify
    (:func:`answering_level`); ``grids``: for a grid worker, the grids they work; ``department_id``: for a
    department's handler, their department.
    """

    role: Role
    department_id: int | None = None
    owner_units: frozenset[int] = frozenset()
    grids: frozenset[int] = frozenset()


def answering_level(owner_level: AdminLevel) -> AdminLevel:
    """The level whose leaders answer for an event owned at ``owner_level``: the owner's own from the
    township up; the township for a village's or a grid's event."""
    return owner_level if owner_level.depth <= AdminLevel.TOWNSHIP.depth else AdminLevel.TOWNSHIP


def next_step(desk: Desk, event: Mapping[str, Any]) -> Action | None:
    """The step of ``event`` that waits on ``desk`` (None when it waits on someone else or nobody).

    ``event`` holds ``status``, ``owner_unit_id``, ``grid_id`` and ``lead_department_id``."""
    status = EventStatus(event["status"])
    lead = event.get("lead_department_id")
    if desk.role in LEADERS and status in LEADER_STEPS and event["owner_unit_id"] in desk.owner_units:
        return LEADER_STEPS[status]
    if desk.role is Role.DEPARTMENT and status in HANDLER_STEPS:
        return HANDLER_STEPS[status] if lead is not None and lead == desk.department_id else None
    if desk.role is Role.INSPECTOR and event["grid_id"] in desk.grids:
        if status is EventStatus.REPORTED:
            return Action.ACCEPT
        if status in HANDLER_STEPS and lead is None:
            return HANDLER_STEPS[status]
    return None


def is_late(event: Mapping[str, Any], now: datetime) -> bool:
    """Past its stage's deadline now."""
    due = event.get("due_at")
    return due is not None and due < now


def order_key(event: Mapping[str, Any], now: datetime) -> tuple[int, datetime, int, int]:
    """Overdue first, the longest overdue first; then the oldest report first; the more urgent, then the
    lower number, between equals."""
    late = is_late(event, now)
    since = event["due_at"] if late else event["reported_at"]
    return (0 if late else 1, since, _URGENCY_RANK[Urgency(event["urgency"])], int(event["id"]))


def waiting(desk: Desk, events: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The events that wait on ``desk``, in working order, each with its ``step`` and ``late`` added."""
    mine = []
    for e in events:
        step = next_step(desk, e)
        if step is not None:
            mine.append({**e, "step": step, "late": is_late(e, now)})
    return sorted(mine, key=lambda e: order_key(e, now))


def most_urgent(events: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Of newly arrived events, the one to name: the most urgent, then the earliest reported, then the
    lower number (None when there are none)."""
    return min(
        events,
        key=lambda e: (_URGENCY_RANK[Urgency(e["urgency"])], e["reported_at"], int(e["id"])),
        default=None,
    )
