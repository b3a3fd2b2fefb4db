"""The daily early-warning pass (每日预警研判): judge yesterday once for the whole store, keep the alerts.

:func:`store_daily_alerts` (the jobs runner's ``warnings`` job, each night) runs
:func:`services.analytics.warnings` over every grid of the store for one day and replaces that day's
stored alerts in one unit of work with one trail row: running it again for the same day gives the
same rows, never twice as many. Units are kept by code, so the alerts outlive a boundary replacement.

:mod:`services.daily_alerts` holds the reads of what this pass stored (whether a day was judged, its
alerts), apart from this writer so that the 预警 reads of reports need not import the pass.

:func:`store_intraday_alerts` (the runner's ``warnings_today``, every 10 minutes; decision 0039) judges
today the same way and keeps the result in the same table under today's date, with the time of the
judgement and the last transition it had read (``rollup_state`` row ``alerts_intraday``): a 月报 ending
today reads it instead of judging the whole city on the spot, and says when it was judged. Nothing is
judged again while no transition came since; the nightly pass replaces the day's rows with its own.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from db.models import DailyAlert, EventTransition, RollupState
from db.uow import UnitOfWork
from domain.early_warning import Alert
from domain.hierarchy import Tree
from services import audit
from services.access import Scope
from services.analytics import warnings
from services.daily_alerts import INTRADAY, intraday_state, judged
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
        tree, alerts = _judge_store(conn, day)
    rows = _rows(tree, alerts, day, now)
    with uow.begin("warnings.daily"):
        conn = uow.conn
        before = _replace(conn, day, rows)
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


def store_intraday_alerts(uow: UnitOfWork, now: datetime) -> int | None:
    """Judge today (``now``'s day) over the whole store, as the nightly pass will judge it complete, and
    keep the alerts under today's date with ``now`` and the last transition read before judging
    (decision 0039); returns how many, or None when nothing was judged: no transition since the last
    intraday judgement of today, or the nightly pass has judged the day already (its rows stand)."""
    day = now.date()
    with uow.reader() as conn:
        if judged(conn, day):
            return None
        # Read before the judgement: it sees at least these transitions (a later one is judged next time).
        mark = _latest_transition(conn)
        kept = intraday_state(conn)
        if kept is not None and kept[0] == day and kept[1] == mark:
            return None
        tree, alerts = _judge_store(conn, day)
    rows = _rows(tree, alerts, day, now)
    with uow.begin("warnings.intraday"):
        conn = uow.conn
        if judged(conn, day):  # the nightly pass finished meanwhile: leaving the block writes nothing
            return None
        before = _replace(conn, day, rows)
        state = {"watermark": mark, "refreshed_at": now, "kept_from": day}
        if intraday_state(conn) is None:
            conn.execute(insert(RollupState), {"name": INTRADAY, "rebuilt_at": now, **state})
        else:
            conn.execute(update(RollupState).where(RollupState.name == INTRADAY).values(**state))
        audit.record(
            conn,
            **audit.who(None),
            action="warning.intraday",
            entity="daily_alerts",
            entity_id=None,
            before={"day": day, "alerts": before},
            after={"day": day, "alerts": len(rows), "watermark": mark},
            at=now,
        )
        uow.commit()
    log.info("%s (intraday, transitions up to %s): %s alerts", day, mark, len(rows))
    return len(rows)


def _latest_transition(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(EventTransition.id), 0))).scalar_one())


def _judge_store(conn: Connection, day: date) -> tuple[Tree, list[Alert]]:
    tree = store_tree(conn)
    units = unit_table(conn).set_index("id")
    alerts = warnings(conn, Scope(tuple(tree.grids_under(None))), day, units) if len(tree) else []
    return tree, alerts


def _rows(tree: Tree, alerts: list[Alert], day: date, now: datetime) -> list[dict[str, Any]]:
    return [
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


def _replace(conn: Connection, day: date, rows: list[dict[str, Any]]) -> int:
    """The day's stored rows replaced by ``rows``; returns how many there were."""
    before = conn.execute(
        select(func.count()).select_from(DailyAlert).where(DailyAlert.day == day)
    ).scalar_one()
    conn.execute(delete(DailyAlert).where(DailyAlert.day == day))
    if rows:
        conn.execute(insert(DailyAlert), rows)
    return int(before)
