"""The event closed loop (事件闭环) as a transition table: (status, action) → new status.

Pure: no framework, no clock. Services apply an action with :func:`next_status`, write the new
status and one trail row in the same transaction; replaying a trail with :func:`replay` rebuilds
the status, which is how the trail proves itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from domain.vocabulary import OPEN_STATUSES, TIMED_STATUSES
from domain.vocabulary import EventStatus as S


class Action(StrEnum):
    """What a person (or the system) does to an event."""

    REPORT = "report"  # 上报 (creates the event)
    ACCEPT = "accept"  # 受理
    REJECT = "reject"  # 退回: invalid or duplicate
    DISPATCH = "dispatch"  # 派单 to a level and department
    RETURN = "return"  # 退单: wrong dispatch, back for re-dispatch
    START = "start"  # 开始处置
    RESOLVE = "resolve"  # 办结, with feedback
    VERIFY = "verify"  # 核查通过
    REOPEN = "reopen"  # 核查不通过 / 不满意 回访
    RATE = "rate"  # 评价
    ARCHIVE = "archive"  # 归档
    ESCALATE = "escalate"  # 上移 to the parent level
    COMMENT = (
        "comment"  # 处置意见: a written opinion (协办意见 from a cooperating department); status unchanged
    )
    OVERDUE = "overdue"  # 超期: the system marks an open event whose stage deadline passed; status unchanged


ACTION_LABELS: dict[Action, str] = {
    Action.REPORT: "上报",
    Action.ACCEPT: "受理",
    Action.REJECT: "退回",
    Action.DISPATCH: "派单",
    Action.RETURN: "退单",
    Action.START: "开始处置",
    Action.RESOLVE: "办结",
    Action.VERIFY: "核查",
    Action.REOPEN: "重新处置",
    Action.RATE: "评价",
    Action.ARCHIVE: "归档",
    Action.ESCALATE: "上移",
    Action.COMMENT: "处置意见",
    Action.OVERDUE: "超期",
}

# Actions that record something without moving the event: its status and stage deadline stay as they are.
NOTE_ONLY: frozenset[Action] = frozenset({Action.COMMENT})

# Actions only the system takes (the jobs runner), never offered to a person: no role in domain.access may.
SYSTEM_ONLY: frozenset[Action] = frozenset({Action.OVERDUE})

# Actions that turn an event back or up: refused without a written reason (退回、退单、上移、重新处置).
NEEDS_REASON: frozenset[Action] = frozenset({Action.REJECT, Action.RETURN, Action.ESCALATE, Action.REOPEN})

# Which time column each action stamps with the moment it is taken (the KPIs are measured between them).
STAMPS: dict[Action, str] = {
    Action.ACCEPT: "accepted_at",
    Action.DISPATCH: "dispatched_at",
    Action.RESOLVE: "resolved_at",
    Action.ARCHIVE: "closed_at",
}

# An open event reported longer ago than this is 滞留 (stuck), whatever its stage deadline says.
STUCK_AFTER = timedelta(days=3)

# The whole loop. An escalated event lands, accepted, at the parent level, to be dispatched there.
TRANSITIONS: dict[tuple[S | None, Action], S] = {
    (None, Action.REPORT): S.REPORTED,
    (S.REPORTED, Action.ACCEPT): S.ACCEPTED,
    (S.REPORTED, Action.REJECT): S.REJECTED,
    (S.ACCEPTED, Action.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, Action.RETURN): S.RETURNED,
    (S.RETURNED, Action.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, Action.START): S.IN_PROGRESS,
    (S.IN_PROGRESS, Action.RESOLVE): S.RESOLVED,
    (S.RESOLVED, Action.VERIFY): S.VERIFIED,
    (S.RESOLVED, Action.REOPEN): S.IN_PROGRESS,
    (S.VERIFIED, Action.RATE): S.RATED,
    (S.VERIFIED, Action.ARCHIVE): S.ARCHIVED,
    (S.RATED, Action.REOPEN): S.IN_PROGRESS,
    (S.RATED, Action.ARCHIVE): S.ARCHIVED,
    (S.REJECTED, Action.ARCHIVE): S.ARCHIVED,
    (S.ACCEPTED, Action.ESCALATE): S.ACCEPTED,
    (S.DISPATCHED, Action.ESCALATE): S.ACCEPTED,
    (S.RETURNED, Action.ESCALATE): S.ACCEPTED,
    (S.IN_PROGRESS, Action.ESCALATE): S.ACCEPTED,
    # While a dispatched event is being handled, the lead and the cooperating departments write opinions.
    (S.DISPATCHED, Action.COMMENT): S.DISPATCHED,
    (S.IN_PROGRESS, Action.COMMENT): S.IN_PROGRESS,
    # 超期: an event past its stage deadline (an open one, or 已办结 awaiting a late 核查) is marked late
    # once (按时办结率 counts it), where it stands.
    **{(s, Action.OVERDUE): s for s in sorted(TIMED_STATUSES)},
}


class IllegalTransition(ValueError):
    """An action the loop does not allow from the event's current status."""

    def __init__(self, status: S | None, action: Action):
        self.status, self.action = status, action
        where = status.label if status else "（新事件）"
        super().__init__(f"事件当前状态为“{where}”，不能执行“{ACTION_LABELS[action]}”")


def next_status(status: S | None, action: Action) -> S:
    """The status after ``action``; raises :class:`IllegalTransition` if the loop forbids it."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action) from None


def missing_note(action: Action, note: str | None) -> str | None:
    """What is missing when ``action`` needs written text and ``note`` is blank (None when nothing is)."""
    if (note or "").strip():
        return None
    if action in NOTE_ONLY:
        return "请填写意见内容"
    if action in NEEDS_REASON:
        return f"请填写原因（{ACTION_LABELS[action]}须写明原因）"
    return None


def is_stuck(status: S | str, reported_at: datetime, now: datetime) -> bool:
    """滞留: still open and reported more than :data:`STUCK_AFTER` before ``now``."""
    return S(status) in OPEN_STATUSES and reported_at < now - STUCK_AFTER


def allowed_actions(status: S | None) -> list[Action]:
    """Actions the loop offers from ``status``, in the table's order (what the UI may show)."""
    return [a for (s, a) in TRANSITIONS if s == status]


def replay(actions: Iterable[Action]) -> S:
    """Rebuild an event's status from its trail's actions, from nothing."""
    status: S | None = None
    for action in actions:
        status = next_status(status, action)
    if status is None:
        raise ValueError("空的处置记录")
    return status
