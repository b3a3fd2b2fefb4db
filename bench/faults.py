"""The long fault runs (the suite runs three iterations of each), on a scratch store beside the measured
one (same backend): writers killed with SIGKILL mid-intake ``FAULT_KILLS`` times (default 200), and event
imports of 300 rows killed mid-write ``FAULT_IMPORT_KILLS`` times (default 200).

Figures: iterations, reports acknowledged, acknowledged reports missing afterwards (must be 0), events
half-written (an event without its report transition or audit row: must be 0), the chain and
SQLite's integrity_check.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, func, make_url, select, text

from db.engine import make_engine
from db.migrate import upgrade
from db.models import AuditLog, Event, EventTransition
from services import audit

ROOT = Path(__file__).resolve().parent.parent


def _scratch(url: str) -> tuple[str, Callable[[], None]]:
    if url.startswith("sqlite"):
        path = Path(tempfile.mkdtemp()) / "faults.db"
        return f"sqlite:///{path}", lambda: None
    name = f"cockpit_faults_{uuid.uuid4().hex[:8]}"
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def _kill_after(module_args: list[str], seconds: float) -> list[str]:
    """Run ``python -m <module_args>``, wait for its first printed line, ``seconds`` more, then SIGKILL
    it; every line it printed (flushed before the kill)."""
    proc = subprocess.Popen([sys.executable, "-m", *module_args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    while not lines and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join()
    return lines


def bench_faults(url: str) -> dict[str, float]:
    from tests.builders import make_square_area

    kills = int(os.environ.get("FAULT_KILLS", "200"))
    scratch, drop = _scratch(url)
    engine = make_engine(scratch)
    upgrade(engine)
    with engine.begin() as conn:
        make_square_area(conn)
    rng = random.Random(3)
    acknowledged: set[str] = set()
    for i in range(kills):
        lines = _kill_after(["tests.faults.writer", scratch, f"K{i}", "100000"], rng.uniform(0.0, 0.3))
        acknowledged |= {line.strip() for line in lines if line.strip()}
    imports = _import_kills(scratch, rng, int(os.environ.get("FAULT_IMPORT_KILLS", "200")))
    with engine.connect() as conn:
        stored = set(conn.execute(select(Event.title)).scalars())
        events = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        reported = conn.execute(
            select(func.count(func.distinct(EventTransition.event_id))).where(EventTransition.seq == 1)
        ).scalar_one()
        trail = conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "event.report")
        ).scalar_one()
        chain_ok = audit.verify(conn) is None
        integrity = (
            conn.exec_driver_sql("PRAGMA integrity_check").scalar() if conn.dialect.name == "sqlite" else "ok"
        )
    store = engine.dialect.name
    engine.dispose()
    drop()
    return {
        **{f"faults_{store}_{name}": value for name, value in imports.items()},
        f"faults_{store}_kills_count": kills,
        f"faults_{store}_acknowledged_count": len(acknowledged),
        f"faults_{store}_acknowledged_missing_count": len(acknowledged - stored),
        f"faults_{store}_half_written_count": max(events - reported, events - trail, 0),
        f"faults_{store}_chain_ok": int(chain_ok),
        f"faults_{store}_integrity_ok": int(integrity == "ok"),
    }


IMPORT_ROWS = 300


def _import_kills(url: str, rng: random.Random, kills: int) -> dict[str, int]:
    """``kills`` event imports (one file of :data:`IMPORT_ROWS` rows each, one unit of work) killed with
    SIGKILL at a random moment of their write: afterwards each file's rows are all there or none, and
    every import that said ``done`` has all of them."""
    engine = make_engine(url)
    # One import left to finish first: how long the write takes here, so the kills land inside it.
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "tests.faults.importer", url, "IMPCAL", str(IMPORT_ROWS)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    span = time.monotonic() - t0
    done, partial, whole, none_ = 0, 0, 0, 0
    for i in range(kills):
        prefix = f"IMP{i}"
        # From its first line on: before, during or after the write.
        lines = _kill_after(["tests.faults.importer", url, prefix, str(IMPORT_ROWS)], rng.uniform(0.0, span))
        said_done = any(line.strip() == "done" for line in lines)
        with engine.connect() as conn:
            present = conn.execute(
                select(func.count()).select_from(Event).where(Event.external_ref.like(f"{prefix}-%"))
            ).scalar_one()
        done += said_done
        whole += present == IMPORT_ROWS
        none_ += present == 0
        partial += 0 < present < IMPORT_ROWS or (said_done and present != IMPORT_ROWS)
    engine.dispose()
    return {
        "import_kills_count": kills,
        "import_one_s": round(span, 2),
        "import_done_before_kill_count": done,
        "import_whole_count": whole,
        "import_none_count": none_,
        "import_partial_count": partial,
    }
