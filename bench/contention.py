"""Writes under contention: 20 writer threads in one server process × 500 reports each, through the
service (one unit of work per report), as twenty busy sessions of one Streamlit server would write.

Figures: commit latency p50/p95/p99 (ms), errors callers saw (by kind), rows lost or doubled,
SQLite's integrity_check, and beside them the store's floor measured in the same run: the latency of
one audited write with no other writer (so a slow machine shows in the floor, not as a regression).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from db.engine import make_engine
from db.models import Event
from db.uow import UnitOfWork
from domain.vocabulary import EventCategory, EventSource
from services import clock, settings
from services.events import report_event

WRITERS = 20
PER_WRITER = 500
#: Runs of 20 × 500 (``BENCH_CONTENTION_RUNS``): the machine is shared, one run's p95 is one sample.
RUNS = int(os.environ.get("BENCH_CONTENTION_RUNS", "3"))
PREFIX = "CONTEND"


def _scratch(url: str) -> str:
    """A copy of a SQLite store (the WAL folded in first), so the bench leaves the original as it was."""
    if not url.startswith("sqlite"):
        return url
    src = Path(url.split("///", 1)[-1])
    copy = src.with_name(src.stem + "_contention" + src.suffix)
    with make_engine(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(src, copy)
    return f"sqlite:///{copy}"


def _places(engine, n: int) -> list[tuple[float, float]]:
    with engine.connect() as conn:
        top = conn.execute(select(func.max(Event.id))).scalar_one()
        rng = np.random.default_rng(7)
        ids = sorted({int(i) for i in rng.integers(1, top + 1, n * 2)})
        pts = conn.execute(select(Event.lon, Event.lat).where(Event.id.in_(ids))).all()
    return [(float(lon), float(lat)) for lon, lat in pts[:n]]


def _floor_ms(engine, n: int = 50) -> float:
    """Median latency of one audited setting write with no other writer."""
    times = []
    for i in range(n):
        uow = UnitOfWork(engine)
        t0 = time.perf_counter()
        with uow.begin("bench.floor"):
            settings.write(uow.conn, "bench.floor", str(i), clock.now(), action="bench.floor")
            uow.commit()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def bench_contention(url: str) -> dict[str, float]:
    """``RUNS`` runs of 20 × 500 on one scratch store; each figure of time as the median of the runs
    with its min and max beside it, the counts (errors, lost, doubled) summed over every run."""
    url = _scratch(url)
    stamp = time.strftime("%m%d%H%M%S")  # a reused PostgreSQL store holds earlier runs' reports
    runs = [_one_run(url, f"{PREFIX}{stamp}R{r}") for r in range(RUNS)]
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    out: dict[str, float] = {}
    for name in runs[0]:
        values = [r[name] for r in runs]
        if name.endswith(("_count", "_ok")):
            out[name] = sum(values) if not name.endswith(("_ok", "writers_count")) else min(values)
            continue
        out[name] = round(float(np.median(values)), 2)
        if name.endswith(("_p95_ms", "_per_s", "_floor_write_ms")):
            out[name + "_min"], out[name + "_max"] = round(min(values), 2), round(max(values), 2)
    store = "sqlite" if url.startswith("sqlite") else "postgresql"
    out[f"contention_{store}_runs_count"] = RUNS
    return out


def _one_run(url: str, prefix: str) -> dict[str, float]:
    engine = (
        make_engine(url, pool_size=WRITERS, max_overflow=5)
        if not url.startswith("sqlite")
        else make_engine(url)
    )
    places = _places(engine, 200)
    if not places:
        raise SystemExit("contention bench: the store has no events to take places from")
    floor_before = _floor_ms(engine)
    categories = list(EventCategory)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(w: int) -> None:
        mine, failed = [], Counter()
        start.wait()
        for k in range(PER_WRITER):
            lon, lat = places[(w * PER_WRITER + k) % len(places)]
            t0 = time.perf_counter()
            try:
                report_event(
                    UnitOfWork(engine),
                    source=EventSource.GRID_WORKER,
                    category=categories[k % len(categories)],
                    title=f"{prefix}-{w}-{k}",
                    lon=lon,
                    lat=lat,
                    now=clock.now(),
                )
            except Exception as exc:  # counted: what a caller would have seen
                failed[type(exc).__name__] += 1
                continue
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)
            errors.update(failed)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    floor_after = _floor_ms(engine)
    with engine.connect() as conn:
        titles = conn.execute(
            select(Event.title, func.count()).where(Event.title.like(f"{prefix}-%")).group_by(Event.title)
        ).all()
        integrity = (
            conn.exec_driver_sql("PRAGMA integrity_check").scalar() if url.startswith("sqlite") else "ok"
        )
    engine.dispose()
    ms = np.array(latencies) * 1000
    acknowledged = len(latencies)
    store = "sqlite" if url.startswith("sqlite") else "postgresql"
    out = {
        f"contention_{store}_writers_count": WRITERS,
        f"contention_{store}_acknowledged_count": acknowledged,
        f"contention_{store}_errors_count": sum(errors.values()),
        f"contention_{store}_lock_errors_count": sum(n for k, n in errors.items() if "Operational" in k),
        f"contention_{store}_rows_lost_count": acknowledged - len(titles),
        f"contention_{store}_rows_duplicated_count": sum(n - 1 for _t, n in titles if n > 1),
        f"contention_{store}_commit_p50_ms": round(float(np.percentile(ms, 50)), 1),
        f"contention_{store}_commit_p95_ms": round(float(np.percentile(ms, 95)), 1),
        f"contention_{store}_commit_p99_ms": round(float(np.percentile(ms, 99)), 1),
        f"contention_{store}_events_per_s": round(acknowledged / wall, 1),
        f"contention_{store}_floor_write_ms": round((floor_before + floor_after) / 2, 2),
        f"contention_{store}_integrity_ok": int(integrity == "ok"),
    }
    if errors:
        print("contention errors:", dict(errors))
    return out
