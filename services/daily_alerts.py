"""The stored daily 预警 (每日预警研判的结果): whether the nightly pass has judged a day, and its alerts.

:func:`stored_alerts` is the read for pages, reports and the bench: the day's alerts of the units inside
a user's scope unit (the unit itself and everything under it), or None when the pass has not judged that
day (then the caller computes, as before); :func:`intraday_alerts` the same of today's intraday judgement
(decision 0039), with the time it was made. Judged over the whole store, a township's alerts see their
sibling townships as peers, as a county's view does. The pass that writes them is
:mod:`services.daily_warnings`; these reads import nothing of it, so :mod:`services.analytics` can use
them without an import circle.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from db.models import DailyAlert, JobRun, RollupState
from domain.early_warning import Alert, AlertKind
from domain.hierarchy import Tree
from domain.vocabulary import EventCategory

#: The jobs runner's name for the pass (its runs say which days were judged).
JOB = "warnings"
#: The ``rollup_state`` row of the intraday judgement (decision 0039): ``kept_from`` the day it judged,
#: ``watermark`` the last ``event_transitions.id`` it had read, ``refreshed_at`` when it judged.
INTRADAY = "alerts_intraday"


def judged(conn: Connection, day: date) -> bool:
    """Whether the daily pass has judged ``day`` (a run due the next day finished well)."""
    return judged_at(conn, day) is not None


def judged_at(conn: Connection, day: date) -> datetime | None:
    """When the daily pass judged ``day`` (the start of its run due the next day that finished well),
    None when it has not."""
    start = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return conn.execute(
        select(func.min(JobRun.started_at)).where(
            JobRun.job == JOB,
            JobRun.outcome == "ok",
            JobRun.due_at >= start,
            JobRun.due_at < start + timedelta(days=1),
        )
    ).scalar_one()


def stored_alerts(conn: Connection, tree: Tree, unit_id: int, day: date) -> list[Alert] | None:
    """The stored alerts of ``day`` for ``unit_id`` and the units under it (unit ids of ``tree``, as now),
    in the detector's order; None when the daily pass has not judged that day."""
    if not judged(conn, day):
        return None
    return _alerts(conn, tree, unit_id, day)


def intraday_state(conn: Connection) -> tuple[date, int, datetime] | None:
    """The last intraday judgement (decision 0039): the day it judged, the last transition id it had
    read, when it judged; None before the first."""
    row = conn.execute(
        select(RollupState.kept_from, RollupState.watermark, RollupState.refreshed_at).where(
            RollupState.name == INTRADAY
        )
    ).one_or_none()
    if row is None or row[0] is None:
        return None
    day = row[0] if isinstance(row[0], date) else date.fromisoformat(str(row[0])[:10])
    return day, int(row[1]), row[2]


def intraday_alerts(
    conn: Connection, tree: Tree, unit_id: int, day: date
) -> tuple[list[Alert], datetime] | None:
    """The alerts of the intraday judgement of ``day`` (the jobs runner's ``warnings_today``, decision
    0039) for ``unit_id`` and the units under it, and when it was judged: the store as it was then, every
    grid judged together as the nightly pass judges. None when no intraday judgement holds ``day``, or
    when the nightly pass has judged it (its alerts stand: :func:`stored_alerts`)."""
    kept = intraday_state(conn)
    if kept is None or kept[0] != day or judged(conn, day):
        return None
    return _alerts(conn, tree, unit_id, day), kept[2]


def _alerts(conn: Connection, tree: Tree, unit_id: int, day: date) -> list[Alert]:
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
