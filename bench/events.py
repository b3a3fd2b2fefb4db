"""Event-flow figures at scale: the analytics page's queries cold, one live-feed tick, and intake through the
service layer with four concurrent writers (every row counted afterwards: none lost, none twice).

``python -m bench --scale city --reuse --only events``; ``bench/__main__.py`` calls :func:`bench_events`.
Intake writes events, so it runs on a copy of the store made for the run and dropped after it (a file copy
on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL): every run starts from the store as seeded, not
from one that earlier runs filled with reports at the same places (on PostgreSQL they had: 28 k of the
29 k reports of the last day were earlier runs', and the duplicate search read ~500 rows a report).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
from sqlalchemy import func, select, text

from bench.probe import cpu_probe_ms, machine_busy_s
from bench.scratch import store_copy
from db.engine import make_engine
from db.models import Event
from db.uow import UnitOfWork
from domain.hierarchy import ancestor_table, descendants
from domain.intake import ReportForm
from domain.vocabulary import AdminLevel, EventCategory, EventSource
from services import clock, rollups
from services.access import Scope
from services.analytics import kpi_by, report_workbook, warnings
from services.event_views import feed, today_kpis
from services.geography import load_units

WRITERS = 4
PER_WRITER = 600
WARM_PER_WRITER = 150
TITLE_PREFIX = "BENCH-INTAKE"
WARM_PREFIX = "BENCH-WARM"
ROUNDS = 5


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _scope(anc, unit_id: int) -> Scope:
    return Scope(tuple(descendants(anc, unit_id, AdminLevel.GRID.value)))


def rollups_built(engine) -> dict[str, float]:
    """The rollups (decisions 0032, 0034) rebuilt from the raw events, timed: ``rollup_rebuild_s`` and its
    rows beside the events. ``BENCH_KEEP_ROLLUPS=1`` and rollups that hold every transition: kept as they
    are (nothing timed), so repeated runs of the views do not rebuild."""
    if os.environ.get("BENCH_KEEP_ROLLUPS") == "1":
        with engine.connect() as conn:
            if rollups.fresh(conn) and rollups.kept_from(conn) is not None:
                return {}
    t0 = time.perf_counter()
    rows = rollups.rebuild(UnitOfWork(engine), clock.now())
    seconds = time.perf_counter() - t0
    # Then as the store is after a night (decision 0044): PostgreSQL's recent reports in key order, the
    # rollups vacuumed and analyzed (nothing on SQLite).
    t0 = time.perf_counter()
    rollups.tidy(engine)
    tidy = time.perf_counter() - t0
    with engine.connect() as conn:
        events = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    return {
        "rollup_rebuild_s": round(seconds, 2),
        "rollup_tidy_s": round(tidy, 2),
        "rollup_rows_count": rows,
        "rollup_events_count": events,
    }


@contextmanager
def raw_reads() -> Iterator[None]:
    """Within: the views read the raw events as before the rollup (as if there were none), so one run
    measures both."""
    pending = rollups.pending
    rollups.pending = lambda _conn: None  # type: ignore[assignment]
    try:
        yield
    finally:
        rollups.pending = pending  # type: ignore[assignment]


def bench_analytics(engine, units, anc, root: int, township: int) -> dict[str, float]:
    """The 分析排名 view for the city and one township over the last 30 days (with 同比/环比): from the raw
    events (``_raw_…``) and as served, from the rollup, alternating over :data:`ROUNDS` rounds, the first
    read (``_cold_ms``) and the median of the others (``_median_ms``). The run's floor and the ratios to it
    are added by ``bench/__main__.py``."""
    today = clock.today()
    end = datetime.combine(today + timedelta(days=1), datetime.min.time())
    start = end - timedelta(days=30)
    out: dict[str, float] = rollups_built(engine)
    for name, unit in (("city", root), ("township", township)):
        scope = _scope(anc, unit)
        for group in ("area", "department"):
            times: dict[str, list[float]] = {"_raw": [], "": []}
            for _round in range(ROUNDS):  # alternating, so both paths see the same machine
                for suffix, reads in (("_raw", raw_reads), ("", nullcontext)):
                    with engine.connect() as conn, reads():
                        t0 = time.perf_counter()
                        table = kpi_by(
                            conn, scope, start, end, group=group, units=units, anc=anc, scope_unit_id=unit
                        )
                        times[suffix].append(time.perf_counter() - t0)
            for suffix, ts in times.items():
                out[f"analytics_{name}_{group}{suffix}_cold_ms"] = _ms(ts[0])
                out[f"analytics_{name}_{group}{suffix}_median_ms"] = _ms(statistics.median(ts[1:]))
            out[f"analytics_{name}_{group}_rows_count"] = len(table)
    out |= bench_warnings(engine, units, anc, township)
    out |= bench_report(engine, units, anc, root)
    return out


def bench_warnings(engine, units, anc, township: int, rounds: int = 3) -> dict[str, float]:
    """预警 for the demo township judged today: as served (counts from ``event_category_daily``, eight
    weeks of reports; decision 0034) and from the raw events (``_raw_``), alternating, the first read
    cold; the alerts are the same either way (counted both ways)."""
    today = clock.today()
    scope = _scope(anc, township)
    times: dict[str, list[float]] = {"": [], "_raw": []}
    alerts: dict[str, list] = {}
    for _round in range(rounds):
        for suffix, reads in (("", nullcontext), ("_raw", raw_reads)):
            with engine.connect() as conn, reads():
                t0 = time.perf_counter()
                alerts[suffix] = warnings(conn, scope, today, units)
                times[suffix].append(time.perf_counter() - t0)
    out: dict[str, float] = {}
    for suffix, ts in times.items():
        out[f"warnings_township{suffix}_cold_ms"] = _ms(ts[0])
        out[f"warnings_township{suffix}_median_ms"] = _ms(statistics.median(ts[1:]))
        out[f"warnings_township{suffix}_count"] = len(alerts[suffix])
    out["warnings_township_same_as_raw_count"] = int(alerts[""] == alerts["_raw"])
    return out


def bench_report(engine, units, anc, root: int) -> dict[str, float]:
    """The city's 月报 as XLSX (:func:`services.analytics.report_workbook`) ending yesterday, as the 报表
    tab offers it and the scheduled report makes it: after the nightly 预警 pass has judged that day
    (run here through the jobs runner if it has not: ``warnings_daily_pass_s``; its alerts are stored in
    the store), so the 预警 sheet reads the stored alerts (``report_city_month_xlsx_ms``); and ending
    today, after the runner's intraday judgement of today (decision 0039; run here if this 10-minute
    slot has none: ``warnings_intraday_pass_s``), whose alerts it reads
    (``report_city_month_today_xlsx_ms``), and without one, the whole city judged on the spot
    (``report_city_month_today_judged_now_xlsx_ms``)."""
    from services import analytics, jobs

    today = clock.today()
    yesterday = today - timedelta(days=1)
    out: dict[str, float] = {}
    for key, job, at in (
        (
            "warnings_daily_pass_s",
            "warnings",
            datetime.combine(today, datetime.min.time()) + timedelta(hours=1),
        ),
        ("warnings_intraday_pass_s", "warnings_today", clock.now()),
    ):
        t0 = time.perf_counter()
        done = jobs.run_due(UnitOfWork(engine), at, only={job})
        if job in done and done[job].count:
            out[key] = round(time.perf_counter() - t0, 1)
    scope = _scope(anc, root)
    kept = analytics.intraday_alerts
    for name, day, judged_now in (
        ("report_city_month_xlsx_ms", yesterday, False),
        ("report_city_month_today_xlsx_ms", today, False),
        ("report_city_month_today_judged_now_xlsx_ms", today, True),
    ):
        if judged_now:
            analytics.intraday_alerts = lambda *_a: None
        try:
            with engine.connect() as conn:
                t0 = time.perf_counter()
                report_workbook(conn, scope, kind="月报", day=day, units=units, anc=anc, scope_unit_id=root)
                out[name] = _ms(time.perf_counter() - t0)
        finally:
            analytics.intraday_alerts = kept
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


TODO_DESKS = ("demo_township", "demo_county", "demo_city", "demo_township_department", "demo_inspector")


def bench_todo(engine, runs: int = 5) -> dict[str, float]:
    """我的待办 of each demo desk (:func:`services.event_views.my_todo`): rows, first and median read."""
    from services.access import user_scope
    from services.auth import user_by_username
    from services.event_views import my_todo

    out: dict[str, float] = {}
    with engine.connect() as conn:
        for name in TODO_DESKS:
            user = user_by_username(conn, name)
            if user is None:
                continue
            scope, times = user_scope(conn, user), []
            for _ in range(runs):
                t0 = time.perf_counter()
                rows = my_todo(conn, user, scope, clock.now())
                times.append(time.perf_counter() - t0)
            out[f"todo_{name}_rows_count"] = len(rows)
            out[f"todo_{name}_first_ms"] = _ms(times[0])
            out[f"todo_{name}_median_ms"] = _ms(statistics.median(times[1:]))
    return out


def _writer(
    url: str,
    writer: int,
    warm: list[tuple[float, float]],
    points: list[tuple[float, float]],
    barrier,
    run: str = "",
) -> _Written:
    """One intake writer: first ``len(warm)`` reports from a fresh process (the cold start: statement
    caches, SQLite's page cache), then, after every writer has warmed up, ``len(points)`` more (the
    sustained rate of a running server). Each report in its own transaction, through the service.
    Writer 0 also times the machine (bench.probe) just before and just after the sustained phase, while
    the others wait at a barrier: the window itself holds reports only."""
    from services.intake import submit_report

    engine = make_engine(url)
    uow = UnitOfWork(engine)
    categories = [c.value for c in EventCategory]

    def file(batch, prefix):
        for k, (lon, lat) in enumerate(batch):
            form = ReportForm(
                category=categories[k % len(categories)],
                title=f"{prefix}{run}-{writer}-{k}",
                description="基准测试上报",
                lon=lon,
                lat=lat,
            )
            submit_report(uow, form, now=clock.now(), source=EventSource.CITIZEN)

    barrier.wait()  # all writers start together
    cold_start = time.time()
    file(warm, WARM_PREFIX)
    cold_end = time.time()
    barrier.wait()  # every writer warm: the first times the machine while the others wait
    probes = [cpu_probe_ms()] if writer == 0 else []
    backends = _backends(engine) if writer == 0 else None
    barrier.wait()
    start = time.time()
    busy = machine_busy_s() if writer == 0 else 0.0
    cpu = time.process_time()
    file(points, TITLE_PREFIX)
    end = time.time()
    cpu = time.process_time() - cpu
    barrier.wait()  # every writer done, none disconnected yet: the first reads the server's CPU
    if writer == 0:
        busy = machine_busy_s() - busy
    server = _server_cpu_s(backends) if backends else None
    server_cpu = None if server is None or backends is None else server - backends[1]
    if writer == 0:
        probes.append(cpu_probe_ms())
    barrier.wait()
    engine.dispose()
    return _Written(len(warm) + len(points), cold_start, cold_end, start, end, cpu, server_cpu, probes, busy)


class _Written(NamedTuple):
    """What one intake writer reports (:func:`_writer`): wall-clock times from ``time.time()``."""

    reports: int
    cold_start: float
    cold_end: float
    #: the sustained phase: from ``start`` (every writer warm, the machine timed) to ``end``
    start: float
    end: float
    #: CPU seconds of the sustained phase: this process's, and the store's backends' (writer 0 on a
    #: PostgreSQL server on this machine; None elsewhere)
    cpu_s: float
    server_cpu_s: float | None
    #: bench.probe before and after the sustained phase (writer 0; empty for the others)
    probes_ms: list[float]
    #: CPU seconds the whole machine was busy over the sustained phase (writer 0; 0 for the others)
    machine_busy_s: float


def _backends(engine) -> tuple[list[int], float] | None:
    """On a PostgreSQL server on this machine: the store's client backends (the writers' connections,
    open after their warm-up) and the CPU seconds they have used so far; None elsewhere."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND backend_type = 'client backend'"
                )
            ).scalars()
        )
    used = _server_cpu_s((pids, 0.0))
    return None if used is None else (pids, used)


def _server_cpu_s(backends: tuple[list[int], float]) -> float | None:
    """CPU seconds the given PostgreSQL backends have used, or None when they are not visible here."""
    import psutil

    total, seen = 0.0, False
    for pid in backends[0]:
        with suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
            seen = True
    return total if seen else None


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
    over each phase's wall time, then every row counted. On a copy of the store (:func:`store_copy`)."""
    t0 = time.perf_counter()
    with store_copy(url, "intake") as copy:
        copy_s = time.perf_counter() - t0
        return _intake_on(copy) | {"intake_store_copy_s": round(copy_s, 1)}


def _intake_on(url: str) -> dict[str, float]:
    engine = make_engine(url)
    everything = _report_points(engine, WRITERS * (PER_WRITER + WARM_PER_WRITER))
    cut = (
        len(everything) * WARM_PER_WRITER // (PER_WRITER + WARM_PER_WRITER)
    )  # a small store: both phases shrink
    warm, points = everything[:cut], everything[cut:]
    if not warm or not points:
        raise SystemExit(f"intake bench: the store has too few events to place {WRITERS} writers' reports")
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    run = time.strftime("%m%d%H%M%S")  # this run's titles only: a reused store holds earlier runs' reports
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WRITERS) as pool:
        barrier = manager.Barrier(WRITERS, timeout=600)  # a writer that fails breaks it: no endless wait
        results = pool.starmap(
            _writer, [(url, w, warm[w::WRITERS], points[w::WRITERS], barrier, run) for w in range(WRITERS)]
        )
    # Cold start: from the first writer's start to the last one's end of its warm-up reports;
    # sustained: from the common start after the warm-up (and the machine's probe) to the last writer's end.
    cold_wall = max(r.cold_end for r in results) - min(r.cold_start for r in results)
    wall = max(r.end for r in results) - max(r.start for r in results)
    written = sum(r.reports for r in results)
    server_cpu = next((r.server_cpu_s for r in results if r.server_cpu_s is not None), None)
    probes = [p for r in results for p in r.probes_ms]
    # What else ran on the machine meanwhile: its busy CPU less the writers' and their backends' (on
    # SQLite the store works in the writers), as a share of its cores over the phase. A run that met
    # another job on the machine shows it here.
    others = sum(r.machine_busy_s for r in results) - sum(r.cpu_s for r in results) - (server_cpu or 0.0)
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(Event)).scalar_one()
        titles = conn.execute(
            select(Event.title, func.count()).where(Event.title.like(f"BENCH-%{run}-%")).group_by(Event.title)
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
        # Where a report's time goes over the sustained phase: the writers' own CPU (Python, the driver)
        # and, on a PostgreSQL server on this machine, its backends' (the WAL writer and checkpointer
        # not counted). On 2 cores the two together cap the rate at 2,000 / (their sum) reports/s.
        "intake_writer_cpu_per_report_ms": round(sum(r.cpu_s for r in results) / len(points) * 1000, 2),
        # the machine's speed just before and just after the sustained phase (bench.probe; lower is faster)
        "intake_cpu_probe_before_ms": probes[0],
        "intake_cpu_probe_after_ms": probes[-1],
        "intake_machine_other_cpu_share": round(max(others, 0.0) / ((os.cpu_count() or 1) * wall), 2),
    }
    if server_cpu is not None:
        out["intake_server_cpu_per_report_ms"] = round(server_cpu / len(points) * 1000, 2)
    return out


def _city(engine):
    """The store's units, ancestors, root and demo township (the one with the most events)."""
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
    return units, anc, root, township


def bench_views(url: str) -> dict[str, float]:
    """The leaders' views alone (``--only views``): analytics, 预警, the city's 月报; no intake."""
    engine = make_engine(url)
    out = bench_analytics(engine, *_city(engine))
    engine.dispose()
    return out


def bench_events(url: str) -> dict[str, float]:
    engine = make_engine(url)
    units, anc, root, township = _city(engine)
    out = bench_analytics(engine, units, anc, root, township)
    out |= bench_feed(engine, anc, root, township)
    out |= bench_todo(engine)
    engine.dispose()
    out |= bench_intake(url)
    return out


if __name__ == "__main__":
    import sys

    for name, value in bench_events(sys.argv[1]).items():
        print(f"{name:<40} {value:>12,}")
