"""The trail (全留痕): what one audit row costs a change, and how fast the chain verifies.

- ``audit_record_ms_p50`` / ``_p95``: one :func:`services.audit.record` in its own transaction on the
  bench store (the head update, the insert, the head's new hash, the commit); 200 rows are appended.
- ``audit_verify_store_s``: ``python -m services.audit verify``'s work on the bench store's chain.
- ``audit_verify_rows_per_s``: verify over a synthetic chain of 200,000 event-sized rows in a temporary
  SQLite file (the demo's own chain is short: the seed writes one row), to size millions of rows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from db.engine import make_engine
from db.migrate import upgrade
from db.models import AuditHead, AuditLog
from db.uow import UnitOfWork
from services import audit

RECORDS = 200
SYNTHETIC_ROWS = 200_000


def _synthetic_chain(url: str, n: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    prev, t0, batch = audit.GENESIS, datetime(2026, 1, 1), []
    with engine.begin() as conn:
        for i in range(1, n + 1):
            row = {
                "id": i,
                "at": t0 + timedelta(seconds=i),
                "actor_id": i % 500,
                "actor_role": "township_leader",
                "action": "event.dispatch",
                "entity": "events",
                "entity_id": i,
                "before": audit.to_json(
                    {"status": "accepted", "owner_unit_id": 12, "lead_department_id": None}
                ),
                "after": audit.to_json(
                    {"status": "dispatched", "owner_unit_id": 12, "lead_department_id": 3}
                ),
                "reason": "派单",
            }
            digest = audit.chain_hash(prev, row)
            batch.append(row | {"prev_hash": prev, "hash": digest})
            prev = digest
            if len(batch) == 20_000:
                conn.execute(AuditLog.__table__.insert(), batch)
                batch = []
        if batch:
            conn.execute(AuditLog.__table__.insert(), batch)
        conn.execute(update(AuditHead).values(last_id=n, hash=prev))
    engine.dispose()


def bench_audit(url: str) -> dict[str, float]:
    engine = make_engine(url)
    times = []
    uow = UnitOfWork(engine)
    for i in range(RECORDS):
        t = time.perf_counter()
        with uow.begin("bench.audit"):  # one use case's trail row, committed as a use case commits
            audit.record(
                uow.conn,
                actor_id=None,
                actor_role="system",
                action="bench.record",
                entity="settings",
                entity_id=None,
                before={"n": i},
                after={"n": i + 1},
            )
            uow.commit()
        times.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    with engine.connect() as conn:
        rows, broken = audit.verify_chain(conn)
    store_s = time.perf_counter() - t
    engine.dispose()
    assert broken is None, broken
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = f"sqlite:///{Path(tmp) / 'chain.db'}"
        _synthetic_chain(synthetic, SYNTHETIC_ROWS)
        other = make_engine(synthetic)
        t = time.perf_counter()
        with other.connect() as conn:
            n, broken = audit.verify_chain(conn)
        verify_s = time.perf_counter() - t
        other.dispose()
    assert broken is None and n == SYNTHETIC_ROWS
    return {
        "audit_record_ms_p50": round(statistics.median(times), 2),
        "audit_record_ms_p95": round(statistics.quantiles(times, n=20)[-1], 2),
        "audit_store_rows": rows,
        "audit_verify_store_s": round(store_s, 3),
        "audit_verify_rows_per_s": round(SYNTHETIC_ROWS / verify_s),
    }
