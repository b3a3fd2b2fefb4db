"""Early warning replayed day by day over a seeded demo: every manifest anomaly found (and how fast), false alarms
per township-week, and the time it took.

The replay loads the store through ``services.analytics.warning_data`` (what the app's 预警 tab reads) and
judges every day of the demo with ``domain.early_warning.detect`` (the app's rules and defaults); the
scoring is ``bench.warning_match``. ``python -m bench.early_warning sqlite:////tmp/cockpit_bench_town.db``
prints the detail; ``bench/__main__.py`` calls :func:`bench_early_warning`.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from bench.warning_match import anomalies_from_manifest, chronic_ready, chronic_report_days, match
from db.engine import make_engine
from db.models import Event
from domain.early_warning import DEFAULT_PARAMS, detect
from services.access import Scope
from services.analytics import warning_data
from services.geography import load_units

ROOT = Path(__file__).resolve().parent.parent


def _describes(manifest: dict, conn) -> bool:
    """Whether ``manifest`` was written by the seed of this store (its 群发 main event is there as described)."""
    mass = next((a for a in manifest.get("anomalies", []) if a["kind_en"] == "mass"), None)
    if mass is None or mass.get("event_id") is None:
        return False
    row = conn.execute(
        select(Event.reporter_count, Event.reported_at).where(Event.id == mass["event_id"])
    ).first()
    return row is not None and row[0] == mass["reporter_count"] and str(row[1]) == mass["start"]


def find_manifest(conn, data_dir: Path = ROOT / "data") -> tuple[Path, dict]:
    """The manifest (``data/manifest_<scale>_<seed>.json``, or ``BENCH_MANIFEST``) that describes the store."""
    paths = (
        [Path(os.environ["BENCH_MANIFEST"])]
        if os.environ.get("BENCH_MANIFEST")
        else sorted(data_dir.glob("manifest_*.json"), key=lambda p: -p.stat().st_mtime)
    )
    for path in paths:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if _describes(manifest, conn):
            return path, manifest
    raise SystemExit(f"no manifest in {data_dir} describes this store (re-seeded since?)")


def bench_early_warning(url: str, *, verbose: bool = True) -> dict[str, float]:
    engine = make_engine(url)
    t_start = time.perf_counter()
    with engine.connect() as conn:
        path, manifest = find_manifest(conn)
        units = pd.DataFrame(load_units(conn).drop(columns="geometry")).set_index("id")
        scope = Scope(tuple(int(i) for i in units.index[units["level"] == "grid"]))
        first_day = pd.Timestamp(manifest["start"]).normalize()
        last_day = pd.Timestamp(manifest["end"]).normalize()
        t0 = time.perf_counter()
        data = warning_data(
            conn, scope, first_day.to_pydatetime(), (last_day + pd.Timedelta(days=1)).to_pydatetime(), units
        )
        load_s = time.perf_counter() - t0
    days = pd.date_range(first_day, last_day, freq="D")
    t0 = time.perf_counter()
    alerts, per_day = [], []
    for d in days:
        t1 = time.perf_counter()
        alerts += detect(d, data)
        per_day.append(time.perf_counter() - t1)
    detect_s = time.perf_counter() - t0

    # 顽疾: the day its injected reports (its title at its exact place, duplicates left out) alone meet
    # the definition.
    reports = data.reports
    ready = {}
    for i, a in enumerate(manifest["anomalies"]):
        if a["kind_en"] == "chronic":
            mine = chronic_report_days(reports, a["title"], a["lon"], a["lat"])
            ready[i] = chronic_ready(mine, first_day.date(), last_day.date(), DEFAULT_PARAMS.chronic)
    level_of = units["level"].astype(str).to_dict()
    anomalies = anomalies_from_manifest(
        manifest, dict(zip(units["code"].astype(str), units.index, strict=True)), level_of, ready
    )
    parent_of = {int(u): (None if pd.isna(p) else int(p)) for u, p in units["parent_id"].items()}
    evaluation = match(alerts, anomalies, parent_of)
    township_weeks = len(days) / 7 * len(manifest["data_townships"])
    figures = evaluation.figures(township_weeks)
    figures |= {
        "early_warning_events_count": len(reports),
        "early_warning_days_judged": len(days),
        "early_warning_alerts_count": len(alerts),
        "early_warning_load_s": round(load_s, 1),
        "early_warning_detect_s": round(detect_s, 1),
        "early_warning_detect_day_median_ms": round(float(np.median(per_day)) * 1000),
        "early_warning_detect_day_max_ms": round(max(per_day) * 1000),
        "early_warning_s": round(time.perf_counter() - t_start, 1),
    }
    if verbose:
        _print(path, units, evaluation, township_weeks)
    return figures


def _print(path: Path, units: pd.DataFrame, ev, township_weeks: float) -> None:
    print(f"manifest: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print("anomaly | unit | start | first alert | delay (d) | after definition (d) | alert-days")
    for x in ev.detections:
        a = x.anomaly
        name = units.at[a.unit_id, "name"]
        first = x.first_day.isoformat() if x.found else "NOT FOUND"
        after = x.delay_after_ready_days if a.ready else ""
        print(
            f"  {a.label} {a.category} {a.title} | {name} | {a.start} | {first} | "
            f"{'' if x.delay_days is None else x.delay_days} | {after} | {x.alert_days}"
        )
    episodes = ev.false_episodes
    print(
        f"false alarms: {len(episodes)} episodes, {len(ev.false_alerts)} alert-days over {township_weeks:.1f} "
        f"township-weeks; by kind {dict(Counter(v[0].kind.label for v in episodes.values()))}"
    )
    for _key, v in sorted(episodes.items(), key=lambda kv: (kv[1][0].day, kv[1][0].unit_id))[:60]:
        print(f"    {v[0].day} ×{len(v)} {v[0].message}")


def main() -> None:
    """``python -m bench.early_warning URL [--results SCALE]``: measure a store as it is, never migrating it
    (``python -m bench --reuse`` upgrades the schema first); ``--results`` merges the figures into
    ``bench/results/<SCALE>.json`` as ``bench/__main__.py`` does."""
    import argparse

    parser = argparse.ArgumentParser(description="预警回放评估 (early-warning replay)")
    parser.add_argument("url", nargs="?", default="sqlite:////tmp/cockpit_bench_town.db")
    parser.add_argument(
        "--results", choices=["tiny", "town", "city"], help="merge into bench/results/<scale>.json"
    )
    args = parser.parse_args()
    out = bench_early_warning(args.url)
    for k, v in out.items():
        print(f"  {k:<55} {v:>12,}")
    if args.results:
        path = ROOT / "bench" / "results" / f"{args.results}.json"
        merged = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps(merged | out, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"written: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
