"""督办提醒: the jobs runner raises one reminder per event and stage deadline; handlers and leaders read theirs.

Which events and what the reminder says is :func:`domain.reminders.reminder_for` (the deadline near —
the last fifth of the stage's time limit — or past). :func:`raise_reminders` is the job's write: the
open events whose deadline is near or past and that have no reminder for that deadline yet, in one unit
of work with one trail row. The pair (event, deadline) is unique in the store and the insert skips a
pair already there, so a second runner, or a pass that runs again, never raises the same reminder twice.

:func:`reminders` is the read: the reminders of the events in a user's scope (a department handler's
scope is their department's events) whose deadline is still the one reminded of, most urgent first.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, and_, exists, select, text
from sqlalchemy.dialects import postgresql, sqlite

from db.frames import rows_frame
from db.models import TIMED_EVENTS_SQL, Department, Event, EventReminder
from db.uow import UnitOfWork
from domain.access import redact
from domain.deadlines import STAGE_OF_STATUS, Stage, late_label
from domain.reminders import ReminderKind, reminder_for, widest_window
from domain.vocabulary import EventStatus
from services import audit
from services.access import Scope
from services.event_rules import load_rules

log = logging.getLogger("jobs.reminders")
#: Reminders raised per pass at most (the most urgent deadlines first); the rest wait for the next pass.
BATCH = 500
#: Statuses whose stage clock runs (the only ones with a deadline to remind of).
TIMED = tuple(s for s, stage in STAGE_OF_STATUS.items() if stage is not None)


def _insert(conn: Connection):
    """An INSERT that skips an (event, deadline) already reminded of, on either store."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return (
        dialect.insert(EventReminder)
        .on_conflict_do_nothing(index_elements=["event_id", "due_at"])
        .returning(EventReminder.event_id)
    )


def candidates(conn: Connection, now: datetime, limit: int = BATCH) -> list[dict]:
    """The reminders due at ``now`` not raised yet: dicts ready to insert, earliest deadline first."""
    _, deadlines = load_rules(conn)
    reminded = exists().where(EventReminder.event_id == Event.id, EventReminder.due_at == Event.due_at)
    rows = conn.execute(
        select(Event.id, Event.status, Event.urgency, Event.due_at)
        .where(
            text(TIMED_EVENTS_SQL),  # word for word as the partial index says, so the planner takes it
            Event.status.in_(TIMED),
            Event.due_at.is_not(None),
            Event.due_at <= now + widest_window(deadlines),
            ~reminded,
        )
        .order_by(Event.due_at, Event.id)
        .limit(limit * 4)  # some are not near yet for their own stage; the window above is the widest
    ).all()
    out = []
    for r in rows:
        found = reminder_for(r.status, r.urgency, r.due_at, now, deadlines)
        if found is not None:
            out.append(
                {
                    "event_id": r.id,
                    "due_at": r.due_at,
                    "stage": found.stage.value,
                    "kind": found.kind.value,
                    "message": found.message,
                    "raised_at": now,
                }
            )
            if len(out) == limit:
                break
    return out


def raise_reminders(uow: UnitOfWork, now: datetime, limit: int = BATCH) -> int:
    """Raise the reminders due at ``now`` (at most ``limit``) in one unit of work; returns how many are new."""
    with uow.reader() as conn:
        due = candidates(conn, now, limit)
    if not due:
        return 0
    with uow.begin("reminders.raise"):
        conn = uow.conn
        raised = sorted(conn.execute(_insert(conn), due).scalars().all())
        if not raised:
            return 0  # another runner raised them all first: nothing to commit
        audit.record(
            conn,
            **audit.who(None),
            action="reminder.raise",
            entity="event_reminders",
            entity_id=None,
            before=None,
            after={"count": len(raised), "event_ids": raised},
            at=now,
        )
        uow.commit()
    log.info("%s reminders raised", len(raised))
    return len(raised)


REMINDER_COLUMNS = [
    "id",
    "event_id",
    "title",
    "status",
    "due_at",
    "stage",
    "kind",
    "message",
    "raised_at",
    "department",
]


def reminders(conn: Connection, scope: Scope, now: datetime, limit: int = 200) -> pd.DataFrame:
    """The open reminders of the events in ``scope``: the event still in a timed stage with the deadline
    reminded of. Columns: :data:`REMINDER_COLUMNS` plus ``stage_label``, ``status_label`` and ``late``
    (how late now, "" before the deadline); late ones first, then by deadline."""
    rows = conn.execute(
        select(
            EventReminder.id,
            EventReminder.event_id,
            Event.title,
            Event.status,
            EventReminder.due_at,
            EventReminder.stage,
            EventReminder.kind,
            EventReminder.message,
            EventReminder.raised_at,
            Department.name,
        )
        .join(Event, and_(Event.id == EventReminder.event_id, Event.due_at == EventReminder.due_at))
        .outerjoin(Department, Department.id == Event.lead_department_id)
        .where(*scope.where(), Event.status.in_(TIMED))
        .order_by(EventReminder.due_at, EventReminder.id)
        .limit(limit)
    ).all()
    df = rows_frame(rows, REMINDER_COLUMNS)
    df["title"] = df["title"].map(lambda t: redact(t) if isinstance(t, str) else t)
    df["status"] = df["status"].map(lambda s: EventStatus(s).value)
    df["status_label"] = df["status"].map(lambda s: EventStatus(s).label)
    df["stage_label"] = df["stage"].map(lambda s: Stage(s).label)
    df["kind_label"] = df["kind"].map(lambda k: ReminderKind(k).label)
    due = pd.to_datetime(df["due_at"])
    df["late"] = [late_label(now - d.to_pydatetime()) if d <= now else "" for d in due]
    return df
