"""The daily early-warning pass (每日预警研判): judge yesterday once for the whole store, keep the alerts.

:func:`store_daily_alerts` (the jobs runner's ``warnings`` job, each night) runs
:func:`services.analytics.warnings` over every grid of the store for one day and replaces that day's
stored alerts in one unit of work with one trail row: running it again for the same day gives the
same rows, never twice as many. Units are kept by code, so the alerts outlive a boundary replacement.

:mod:`services.daily_alerts` holds the reads of what this pass stored (whether a day was judged, its
alerts), apart from this writer so that the 预警 reads of reports need not import the pass.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select

from db.models import DailyAlert
from db.uow import UnitOfWork
from services import audit
from services.access import Scope
from services.analytics import warnings
from services.geography import tree as store_tree
from services.overview import unit_table

log = logging.getLogger("jobs.warnings")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def judged_day(due: datetime) -> date:
    """The day a pass due at ``due`` judges: the day before (complete by then)."""
    return due.date() - timedelta(days=1)


def store_daily_alerts(uow: UnitOfWork, day: date, now: datetime) -> int:
    """Judge ``day`` over the whole store and store its alerts in place of any stored before; returns how many."""
    with uow.reader() as conn:
        tree = store_tree(conn)
        units = unit_table(conn).set_index("id")
        alerts = warnings(conn, Scope(tuple(tree.grids_under(None))), day, units) if len(tree) else []
    rows = [
        {
            "day": day,
            "unit_code": tree.code(a.unit_id),
            "unit_level": a.unit_level,
            "kind": a.kind.value,
            "category": a.category.value,
            "period_start": a.period_start,
            "period_end": a.period_end,
            "evidence_json": json.dumps(a.evidence, ensure_ascii=False, sort_keys=True, default=_plain),
            "message": a.message,
            "created_at": now,
        }
        for a in alerts
        if a.unit_id in tree
    ]
    with uow.begin("warnings.daily"):
        conn = uow.conn
        before = conn.execute(
            select(func.count()).select_from(DailyAlert).where(DailyAlert.day == day)
        ).scalar_one()
        conn.execute(delete(DailyAlert).where(DailyAlert.day == day))
        if rows:
            conn.execute(insert(DailyAlert), rows)
        audit.record(
            conn,
            **audit.who(None),
            action="warning.daily",
            entity="daily_alerts",
            entity_id=None,
            before={"day": day, "alerts": before},
            after={"day": day, "alerts": len(rows)},
            at=now,
        )
        uow.commit()
    log.info("%s: %s alerts", day, len(rows))
    return len(rows)
