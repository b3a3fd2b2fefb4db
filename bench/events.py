"""Event-flow figures at scale: the analytics page's queries cold, one live-feed tick, and intake through the
service layer with four concurrent writers (every row counted afterwards: none lost, none twice).

``python -m bench --scale city --reuse --only events``; ``bench/__main__.py`` calls :func:`bench_events`.
Intake writes events, so on SQLite it runs on a copy of the store (the demo stays as seeded); on
PostgreSQL it writes into the store and removes nothing (the rows are real reports at "now").
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, text

from db.engine import make_engine, session_factory
from db.models import Event
from domain.hierarchy import ancestor_table, descendants
from domain.intake import ReportForm
from domain.vocabulary import AdminLevel, EventCategory, EventSource
from services import clock
from services.analytics import kpi_by, report_workbook, warnings
from services.event_views import Scope, feed, today_kpis
from services.geography import load_units

WRITERS = 4
PER_WRITER = 600
WARM_PER_WRITER = 150
TITLE_PREFIX = "BENCH-INTAKE"
WARM_PREFIX = "BENCH-WARM"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _scope(anc, unit_id: int) -> Scope:
    return Scope(tuple(descendants(anc, unit_id, AdminLevel.GRID.value)))


def bench_analytics(engine, units, anc, root: int, township: int) -> dict[str, float]:
    """The 分析排名 view for the city and one township over the last 30 days (with 同比/环比), cold."""
    today = clock.today()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    start = end - timedelta(days=30)
    out: dict[str, float] = {}
    for name, unit in (("city", root), ("township", township)):
        scope = _scope(anc, unit)
        for group in ("area", "department"):
            with engine.connect() as conn:
                t0 = time.perf_counter()
                table = kpi_by(conn, scope, start, end, group=group, units=units, anc=anc, scope_unit_id=unit)
                out[f"analytics_{name}_{group}_cold_ms"] = _ms(time.perf_counter() - t0)
            out[f"analytics_{name}_{group}_rows_count"] = len(table)
    with engine.connect() as conn:
        scope = _scope(anc, township)
        t0 = time.perf_counter()
        alerts = warnings(conn, scope, today, units)
        out["warnings_township_cold_ms"] = _ms(time.perf_counter() - t0)
        out["warnings_township_count"] = len(alerts)
        t0 = time.perf_counter()
        report_workbook(conn, _scope(anc, root), kind="月报", day=today, units=units, anc=anc, scope_unit_id=root)
        out["report_city_month_xlsx_ms"] = _ms(time.perf_counter() - t0)
    return out


def bench_feed(engine, anc, root: int, township: int, ticks: int = 20) -> dict[str, float]:
    """One tick of the /events fragment: today's KPIs and the events changed since the last tick."""
    out: dict[str, float] = {}
    for name, unit in (("city", root), ("township", township)):
        scope = _scope(anc, unit)
        times = []
        with engine.connect() as conn:
            since = None
            for _ in range(ticks):
                now = clock.now()
                t0 = time.perf_counter()
                today_kpis(conn, scope, now)
                rows = feed(conn, scope, since, limit=60)
                times.append(time.perf_counter() - t0)
                since = rows["updated_at"].max() if not rows.empty else now - timedelta(seconds=5)
        out[f"feed_tick_{name}_first_ms"] = _ms(times[0])
        out[f"feed_tick_{name}_median_ms"] = _ms(statistics.median(times[1:]))
        out[f"feed_tick_{name}_max_ms"] = _ms(max(times[1:]))
    return out


def _writer(url: str, writer: int, warm: list[tuple[float, float]], points: list[tuple[float, float]],
            barrier) -> tuple[int, float, float, float]:
    """One intake writer: first ``len(warm)`` reports from a fresh process (the cold start: statement
    caches, SQLite's page cache), then, after every writer has warmed up, ``len(points)`` more (the
    sustained rate of a running server). Each report in its own transaction, through the service.
    Returns the reports written and the wall-clock ends of both phases."""
    from services.intake import submit_report

    engine = make_engine(url)
    factory = session_factory(engine)
    categories = [c.value for c in EventCategory]

    def file(batch, prefix):
        for k, (lon, lat) in enumerate(batch):
            form = ReportForm(category=categories[k % len(categories)], title=f"{prefix}-{writer}-{k}",
                              description="基准测试上报", lon=lon, lat=lat)
            with factory.begin() as s:
                submit_report(s, form, now=clock.now(), source=EventSource.CITIZEN)

    barrier.wait()  # all writers start together
    cold_start = time.time()
    file(warm, WARM_PREFIX)
    cold_end = time.time()
    barrier.wait()
    file(points, TITLE_PREFIX)
    end = time.time()
    engine.dispose()
    return len(warm) + len(points), cold_start, cold_end, end


def _report_points(engine, n: int, seed: int = 0) -> list[tuple[float, float]]:
    """``n`` places where citizens have reported before (inside a grid), spread over the whole area."""
    with engine.connect() as conn:
        top = conn.execute(select(func.max(Event.id))).scalar_one()
        rng = np.random.default_rng(seed)
        ids = sorted({int(i) for i in rng.integers(1, top + 1, n * 2)})
        pts = conn.execute(select(Event.lon, Event.lat).where(Event.id.in_(ids))).all()
    return [(float(lon), float(lat)) for lon, lat in pts[:n]]


def bench_intake(url: str) -> dict[str, float]:
    """4 writer processes, each 150 reports from a cold start then 600 more (sustained); events per second
    over each phase's wall time, then every row counted."""
    if url.startswith("sqlite"):
        src = Path(url.split("///", 1)[-1])
        copy = src.with_name(src.stem + "_intake" + src.suffix)
        with make_engine(url).connect() as conn:  # fold the WAL in so the copy is the whole store
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(src, copy)
        url = f"sqlite:///{copy}"
    engine = make_engine(url)
    everything = _report_points(engine, WRITERS * (PER_WRITER + WARM_PER_WRITER))
    cut = len(everything) * WARM_PER_WRITER // (PER_WRITER + WARM_PER_WRITER)  # a small store: both phases shrink
    warm, points = everything[:cut], everything[cut:]
    if not warm or not points:
        raise SystemExit(f"intake bench: the store has too few events to place {WRITERS} writers' reports")
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WRITERS) as pool:
        barrier = manager.Barrier(WRITERS, timeout=600)  # a writer that fails breaks it: no endless wait
        results = pool.starmap(_writer, [(url, w, warm[w::WRITERS], points[w::WRITERS], barrier)
                                         for w in range(WRITERS)])
    # Cold start: from the first writer's start to the last one's end of its warm-up reports;
    # sustained: from the common start after the warm-up to the last writer's end.
    cold_wall = max(r[2] for r in results) - min(r[1] for r in results)
    sustained_start = max(r[2] for r in results)
    wall = max(r[3] for r in results) - sustained_start
    written = sum(r[0] for r in results)
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        titles = conn.execute(
            select(Event.title, func.count()).where(Event.title.like("BENCH-%")).group_by(Event.title)
        ).all()
    engine.dispose()
    expected = len(warm) + len(points)  # what the writers were given (fewer if the store has few events)
    out = {
        "intake_writers_count": WRITERS,
        "intake_events_count": written,
        "intake_events_per_s": round(len(points) / wall, 1),
        "intake_cold_start_events_per_s": round(len(warm) / cold_wall, 1),
        "intake_rows_lost_count": expected - sum(1 for _t, n in titles),
        "intake_rows_duplicated_count": sum(n - 1 for _t, n in titles if n > 1),
        "intake_store_rows_added_count": after - before,
    }
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[-1]).unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(url.split("///", 1)[-1] + suffix).unlink(missing_ok=True)
    return out


def bench_events(url: str) -> dict[str, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        units = load_units(conn).set_index("id")
        conn.execute(text("SELECT 1"))
    anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
    root = int(units.index[units["parent_id"].isna()][0])
    # The demo township (the busiest): the one with the most events.
    with engine.connect() as conn:
        counts = conn.execute(select(Event.grid_id, func.count()).group_by(Event.grid_id)).all()
    by_township: dict[int, int] = {}
    for grid, n in counts:
        t = int(anc.at[grid, AdminLevel.TOWNSHIP.value])
        by_township[t] = by_township.get(t, 0) + n
    township = max(by_township, key=by_township.get)
    out = bench_analytics(engine, units, anc, root, township)
    out |= bench_feed(engine, anc, root, township)
    engine.dispose()
    out |= bench_intake(url)
    return out


if __name__ == "__main__":
    import sys

    for name, value in bench_events(sys.argv[1]).items():
        print(f"{name:<40} {value:>12,}")
