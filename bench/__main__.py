"""``python -m bench --scale town|city``: seed a scratch store, measure, print a table, write JSON.

Each figure's unit is in its name (``_s``, ``_ms``, ``_mb``, ``_per_s``). Figures are merged into
``bench/results/<scale>.json`` so later features add theirs without losing the others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.probe import cpu_probe_ms
from db.engine import make_engine
from services.heap import freeze_startup_heap

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_seed(url: str, scale: str, seed: int) -> dict[str, float]:
    """Seed in a child process so its peak RSS is the seed's own."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "demo.seed", "--scale", scale, "--seed", str(seed), "--force"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seed_s": round(seconds, 1), "seed_peak_rss_mb": round(peak_kb / 1024, 0)}


def bench_home(engine) -> dict[str, float]:
    from services import clock
    from services.overview import unit_figures

    with engine.connect() as conn:
        cold, df = _timed(lambda: unit_figures(conn, clock.today()))
        warm, _ = _timed(lambda: unit_figures(conn, clock.today()), repeat=3)
    levels = df.groupby("level").size().to_dict()
    return {
        "home_figures_cold_ms": round(cold * 1000),
        "home_figures_warm_ms": round(warm * 1000),
        "units_township_count": levels.get("township", 0),
        "units_village_count": levels.get("village", 0),
        "units_grid_count": levels.get("grid", 0),
        "venues_count": int(df[df["parent_id"].isna()]["venues"].sum()),
        "events_count": int(df[df["parent_id"].isna()]["events"].sum()),
    }


def store_floor_ms(engine, repeat: int = 5) -> float:
    """The store's floor in this run: one indexed aggregate over the events (events per grid of the
    last 7 days, on ``ix_events_grid_reported``), the median of ``repeat`` runs, in ms."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from db.models import Event

    with engine.connect() as conn:
        newest = conn.execute(select(func.max(Event.reported_at))).scalar()
        if newest is None:
            return float("nan")
        query = (
            select(Event.grid_id, func.count())
            .where(Event.reported_at >= newest - timedelta(days=7))
            .group_by(Event.grid_id)
        )
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            conn.execute(query).all()
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def with_floor_ratios(figures: dict[str, float], floor_ms: float) -> dict[str, float]:
    """``store_floor_ms`` and, for every time in ms, its ratio to the floor (``…_floor_ratio``): a slow
    machine slows the floor too, so a ratio that grows is the code's doing, not the machine's."""
    out: dict[str, float] = {"store_floor_ms": round(floor_ms, 2)}
    if not floor_ms or floor_ms != floor_ms:  # no events to aggregate: no ratio
        return out
    for name, value in figures.items():
        if (
            name.endswith("_ms")
            and "floor" not in name
            and "probe" not in name
            and isinstance(value, int | float)
        ):
            out[name[: -len("_ms")] + "_floor_ratio"] = round(value / floor_ms, 1)
    return out


def _section(module: str, function: str):
    """A section measured on the store's URL, imported only when it runs. The bench's own pooled
    connections are closed first: a section may copy the store (``CREATE DATABASE … TEMPLATE`` wants it
    free of other sessions) or time a cold start."""

    def run(engine, url: str) -> dict[str, float]:
        import importlib

        engine.dispose()
        measure = getattr(importlib.import_module(module), function)
        freeze_startup_heap()  # as the app's server does once its imports are done (services.heap)
        return measure(url)

    return run


# Each section adds its figures; ``--only`` picks some (a feature measures its own without the rest).
SECTIONS = {
    "point_to_grid": _section("bench.point_to_grid", "bench_point_to_grid"),
    "home": lambda engine, _url: bench_home(engine),
    "risk_map": _section("bench.risk_map", "bench_risk"),
    "inspections": _section("bench.inspections", "bench_inspections"),
    "access": _section("bench.access", "bench_access"),
    "early_warning": _section("bench.early_warning", "bench_early_warning"),
    "events": _section("bench.events", "bench_events"),
    "views": _section("bench.events", "bench_views"),
    "intake": _section("bench.events", "bench_intake"),
    "audit": _section("bench.audit", "bench_audit"),
    "contention": _section("bench.contention", "bench_contention"),
    "faults": _section("bench.faults", "bench_faults"),
    "boundary_import": _section("bench.boundaries", "bench_boundary_import"),
    "api": _section("bench.api", "bench_api"),
    "forecast": _section("bench.forecast", "bench_forecast"),
    "load": _section("bench.load", "bench_load"),
}
#: Sections only run when named in ``--only`` (``load`` drives 20 browsers for 5 minutes; ``intake`` is
#: part of ``events`` and named alone to re-measure it).
OPT_IN = {"load", "intake"}


def main() -> None:
    parser = argparse.ArgumentParser(description="性能基准 (benchmark)")
    parser.add_argument("--scale", default="town", choices=["tiny", "town", "city"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="measure an already seeded store")
    parser.add_argument("--only", default="", help=f"comma-separated sections of: {','.join(SECTIONS)}")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:////tmp/cockpit_bench_{args.scale}.db"
    os.environ["BENCH_SCALE"] = args.scale  # sections that seed more stores (bench.forecast) need it
    figures: dict[str, float] = {}
    if not args.reuse:
        figures |= bench_seed(url, args.scale, args.seed)
    engine = make_engine(url)
    if args.reuse:  # a store seeded by an older release: bring its schema up first
        from db.migrate import upgrade

        upgrade(engine)
    chosen = [name for name in args.only.split(",") if name] or [n for n in SECTIONS if n not in OPT_IN]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    floors, probes = [store_floor_ms(engine)], [cpu_probe_ms()]
    for name in chosen:
        figures |= SECTIONS[name](engine, url)
    floors.append(store_floor_ms(engine))
    probes.append(cpu_probe_ms())
    figures |= with_floor_ratios(figures, float(np.median(floors)))
    # the machine's speed at the start and the end of the run (bench.probe), beside the store's floor
    figures["bench_cpu_probe_ms"] = round(float(np.median(probes)), 1)
    figures["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # One file per store, side by side: <scale>.json (SQLite), <scale>.postgresql.json (BENCH_DATABASE_URL).
    suffix = "" if engine.dialect.name == "sqlite" else "." + engine.dialect.name
    out = RESULTS / f"{args.scale}{suffix}.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged |= figures
    out.write_text(json.dumps(merged, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    width = max(map(len, figures))
    print(f"benchmark · scale={args.scale} · store={url}")
    for name, value in figures.items():
        shown = f"{value:>14,}" if isinstance(value, int | float) else f"{value!s:>14}"  # a cut-off is a date
        print(f"  {name:<{width}}  {shown}")
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
