"""The stored daily 预警 (每日预警研判的结果): whether the nightly pass has judged a day, and its alerts.

:func:`stored_alerts` is the read for pages, reports and the bench: the day's alerts of the units inside
a user's scope unit (the unit itself and everything under it), or None when the pass has not judged that
day (then the caller computes, as before). Judged over the whole store, a township's alerts see their
sibling townships as peers, as a county's view does. The pass that writes them is
:mod:`services.daily_warnings`; these reads import nothing of it, so :mod:`services.analytics` can use
them without an import circle.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from db.models import DailyAlert, JobRun
from domain.early_warning import Alert, AlertKind
from domain.hierarchy import Tree
from domain.vocabulary import EventCategory

#: The jobs runner's name for the pass (its runs say which days were judged).
JOB = "warnings"


def judged(conn: Connection, day: date) -> bool:
    """Whether the daily pass has judged ``day`` (a run due the next day finished well)."""
    start = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return bool(
        conn.execute(
            select(func.count())
            .select_from(JobRun)
            .where(
                JobRun.job == JOB,
                JobRun.outcome == "ok",
                JobRun.due_at >= start,
                JobRun.due_at < start + timedelta(days=1),
            )
        ).scalar_one()
    )


def stored_alerts(conn: Connection, tree: Tree, unit_id: int, day: date) -> list[Alert] | None:
    """The stored alerts of ``day`` for ``unit_id`` and the units under it (unit ids of ``tree``, as now),
    in the detector's order; None when the daily pass has not judged that day."""
    if not judged(conn, day):
        return None
    rows = conn.execute(select(DailyAlert).where(DailyAlert.day == day).order_by(DailyAlert.id)).all()
    out = []
    for r in rows:
        uid = tree.by_code(r.unit_code)
        if uid is None or not tree.contains(unit_id, uid):
            continue
        out.append(
            Alert(
                AlertKind(r.kind),
                r.day,
                uid,
                r.unit_level,
                EventCategory(r.category),
                r.period_start,
                r.period_end,
                json.loads(r.evidence_json),
                r.message,
            )
        )
    return out
