"""督办提醒: which events get a reminder about their stage deadline, and what it says.

Pure: ``now`` is passed in. An event gets one reminder per stage deadline (the ``due_at`` the service
writes at every transition): when the deadline is near — the last :data:`NEAR_SHARE` of the stage's
time limit (a 72-hour handling stage: its last 14.4 hours; a 2-hour acceptance: its last 24 minutes) —
or already past when the sweep first sees it. A new deadline (the next stage, a 上移) is a new reminder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.deadlines import DEFAULT_DEADLINES, DeadlineRules, Stage, late_label, stage_of
from domain.vocabulary import EventStatus, Labelled, Urgency

#: The share of a stage's time limit, before its deadline, in which the deadline counts as near.
NEAR_SHARE = 0.2


class ReminderKind(Labelled):
    NEAR = "near", "即将超时"
    LATE = "late", "已超时"


@dataclass(frozen=True)
class Reminder:
    """A reminder about one event's stage deadline."""

    stage: Stage
    due_at: datetime
    kind: ReminderKind
    message: str


def near_window(stage: Stage, urgency: Urgency, rules: DeadlineRules = DEFAULT_DEADLINES) -> timedelta:
    """How long before the deadline the reminder is raised."""
    return rules.limit(stage, urgency) * NEAR_SHARE


def widest_window(rules: DeadlineRules = DEFAULT_DEADLINES) -> timedelta:
    """The largest :func:`near_window` of any stage and urgency (what a sweep must look ahead)."""
    return max(near_window(s, u, rules) for s in Stage for u in Urgency)


def _left_label(left: timedelta) -> str:
    minutes = max(1, int(left.total_seconds() // 60))
    return f"剩余{minutes}分钟" if minutes < 60 else f"剩余{minutes // 60}小时"


def reminder_for(
    status: EventStatus | str,
    urgency: Urgency | str,
    due_at: datetime | None,
    now: datetime,
    rules: DeadlineRules = DEFAULT_DEADLINES,
) -> Reminder | None:
    """The reminder an event in ``status`` with deadline ``due_at`` gets at ``now``, or None (no clock
    runs, no deadline, or the deadline is not near yet)."""
    stage = stage_of(status)
    if stage is None or due_at is None:
        return None
    if now < due_at - near_window(stage, Urgency(urgency), rules):
        return None
    deadline = f"时限 {due_at:%m-%d %H:%M}"
    if now >= due_at:
        text = f"{stage.label}{late_label(now - due_at)}（{deadline}），请督促办理"
        return Reminder(stage, due_at, ReminderKind.LATE, text)
    text = f"{stage.label}即将超时（{deadline}，{_left_label(due_at - now)}），请抓紧办理"
    return Reminder(stage, due_at, ReminderKind.NEAR, text)
