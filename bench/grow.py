"""A store with N times the history (issue 15: "the same figures on a synthetic store with 10× the city's
events"): every event of a seeded bench store is copied N − 1 times, each copy 52 weeks × k earlier
(k = 1 … N − 1: weekdays and seasons stay where they were), then the rollups are rebuilt from the raw rows.

    python -m bench.grow --source sqlite:////tmp/cockpit_bench_city.db \\
        --target sqlite:////tmp/cockpit_bench_city_x10.db --factor 10
    python -m bench.grow --measure --target sqlite:////tmp/cockpit_bench_city_x10.db --scale city \
        --factor 10 --only events,home,reports

What a copy is: the same place, category, source, urgency, department, reporter and texts; its times
moved back; an event still open in the original is closed in its copy (已归档, closed at its last
time): nobody leaves a year-old report open, and the open work of today must not grow with history.
外部编号 gets a ``#k`` suffix (unique per source); merge and duplicate links are dropped (their targets'
copies have other ids). Trails (event_transitions) are not copied: the views measured here read the
events and the rollups, never the trail, and 16 M trail rows per year would only cost disk.

SQLite: the source is copied first by SQLite's online backup (the copy is the target). PostgreSQL: the target database must be
a copy made by ``CREATE DATABASE … TEMPLATE <source>``; then pass the same URL as source and target.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from db.engine import make_engine
from db.migrate import upgrade
from db.models import Event
from db.uow import UnitOfWork
from domain.vocabulary import EventStatus

#: 52 weeks: a copy's weekdays are the original's.
SHIFT_DAYS = 364
TIMES = ("reported_at", "accepted_at", "dispatched_at", "resolved_at", "closed_at", "due_at", "updated_at")
OPEN = tuple(
    s.value
    for s in (
        EventStatus.REPORTED,
        EventStatus.ACCEPTED,
        EventStatus.DISPATCHED,
        EventStatus.RETURNED,
        EventStatus.IN_PROGRESS,
        EventStatus.RESOLVED,
        EventStatus.VERIFIED,
    )
)


def _shifted(dialect: str, column: str, days: int) -> str:
    """``column`` moved ``days`` back, stored as the original is (SQLite keeps SQLAlchemy's text form)."""
    if dialect == "sqlite":
        return f"(datetime({column}, '-{days} days') || substr({column}, 20))"
    return f"({column} - interval '{days} days')"


def copy_statement(dialect: str, k: int, last_id: int) -> str:
    """INSERT … SELECT of every original event (id ≤ ``last_id``) as the copy ``k`` years back."""
    days = SHIFT_DAYS * k
    open_list = ", ".join(f"'{s}'" for s in OPEN)
    moved = {c: _shifted(dialect, c, days) for c in TIMES}
    last = f"COALESCE({moved['closed_at']}, {moved['resolved_at']}, {moved['updated_at']})"
    plain = (
        "source, category, title, description, lon, lat, address, grid_id, venue_id, urgency, "
        "owner_unit_id, lead_department_id, reporter_name, reporter_phone, reporter_count, rating, "
        "escalations"
    )
    suffix = f"'#{k}'"
    ref = f"CASE WHEN external_ref IS NULL THEN NULL ELSE external_ref || {suffix} END"
    return (
        f"INSERT INTO events ({plain}, status, external_ref, merged_into_id, duplicate_of_id, is_overdue, "
        f"{', '.join(TIMES)}) "
        f"SELECT {plain}, "
        f"CASE WHEN status IN ({open_list}) THEN 'archived' ELSE status END, {ref}, NULL, NULL, "
        f"{'false' if dialect != 'sqlite' else '0'}, "
        f"{moved['reported_at']}, {moved['accepted_at']}, {moved['dispatched_at']}, {moved['resolved_at']}, "
        f"CASE WHEN status IN ({open_list}) THEN {last} ELSE {moved['closed_at']} END, "
        f"CASE WHEN status IN ({open_list}) THEN NULL ELSE {moved['due_at']} END, {moved['updated_at']} "
        f"FROM events WHERE id <= {last_id}"
    )


def grow(engine: Engine, factor: int, *, log=print, rollups_too: bool = True) -> dict[str, float]:
    """Make ``engine``'s store ``factor`` times its history; returns what was done and how long it took."""
    if factor < 2:
        raise ValueError("factor must be at least 2")
    t0 = time.perf_counter()
    with engine.connect() as conn:
        last_id = conn.execute(select(func.max(Event.id))).scalar_one()
        originals = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    dialect = engine.dialect.name
    # The copies go in without the events' secondary indexes (kept up row by row, they made each copy
    # of the city's 2.1 M events take minutes); the indexes are built once at the end, the unique one
    # on 外部编号 included, so a duplicate would still fail the run.
    indexes = list(Event.__table__.indexes)
    with engine.begin() as conn:
        for index in indexes:
            index.drop(conn, checkfirst=True)
    for k in range(1, factor):
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(copy_statement(dialect, k, last_id)))
        log(f"  copy {k}/{factor - 1}: {originals:,} events, {time.perf_counter() - started:.0f} s")
    copied_s = time.perf_counter() - t0
    started = time.perf_counter()
    with engine.begin() as conn:
        for index in indexes:
            index.create(conn, checkfirst=True)
    index_s = time.perf_counter() - started
    log(f"  indexes: {index_s:.0f} s")
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    rows, rebuild_s = 0, 0.0
    if rollups_too:
        rows, rebuild_s = rebuild_rollups(engine)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    return {
        "grow_factor": factor,
        "grow_events_count": total,
        "grow_original_events_count": originals,
        "grow_copy_s": round(copied_s, 1),
        "grow_index_s": round(index_s, 1),
        "grow_rollup_rebuild_s": round(rebuild_s, 1),
        "grow_rollup_rows_count": rows,
    }


def measure(url: str, scale: str, factor: int, sections: list[str]) -> Path:
    """The bench's ``sections`` on the grown store, with the store's floor of the same run, written to
    ``bench/results/<scale>.x<factor>[.postgresql].json`` beside the plain store's file."""
    import json

    import numpy as np

    from bench.__main__ import RESULTS, SECTIONS, store_floor_ms, with_floor_ratios

    engine = make_engine(url)
    upgrade(engine)
    floors = [store_floor_ms(engine)]
    figures: dict[str, float] = {}
    for name in sections:
        figures |= SECTIONS[name](engine, url)
    floors.append(store_floor_ms(engine))
    figures |= with_floor_ratios(figures, float(np.median(floors)))
    suffix = "" if engine.dialect.name == "sqlite" else "." + engine.dialect.name
    out = RESULTS / f"{scale}.x{factor}{suffix}.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged |= figures
    out.write_text(json.dumps(merged, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    for name, value in figures.items():
        print(f"  {name:<44} {value:>14,}")
    return out


def rebuild_rollups(engine: Engine) -> tuple[int, float]:
    """The rollups recomputed from the raw rows: their row count and the seconds it took."""
    from services import clock, rollups

    started = time.perf_counter()
    rows = rollups.rebuild(UnitOfWork(engine), clock.now())
    return rows, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N 倍历史的合成库 (a store with N times the history)")
    parser.add_argument("--source", help="a seeded bench store's URL")
    parser.add_argument("--target", required=True, help="the URL of the store to make (or to measure)")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--measure", action="store_true", help="measure the grown store instead")
    parser.add_argument("--no-rollups", action="store_true", help="copy only; rebuild later")
    parser.add_argument("--scale", default="city", help="the name of the results file (with --measure)")
    parser.add_argument("--only", default="events", help="the bench sections to run (with --measure)")
    args = parser.parse_args(argv)
    if args.measure:
        os.environ["BENCH_SCALE"] = args.scale
        print(f"写入 {measure(args.target, args.scale, args.factor, args.only.split(','))}")
        return 0
    if not args.source:
        parser.error("--source is required to grow a store")
    if args.source != args.target:
        if not (args.source.startswith("sqlite:///") and args.target.startswith("sqlite:///")):
            print(
                "PostgreSQL：先 CREATE DATABASE 目标 TEMPLATE 源库，再以同一地址作源与目标", file=sys.stderr
            )
            return 2
        source, target = (Path(u.removeprefix("sqlite:///")) for u in (args.source, args.target))
        print(f"复制 {source} → {target}")
        # SQLite's online backup, not a file copy: the source may be in use, with pages still in its WAL.
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst, pages=65536)
    engine = make_engine(args.target)
    if not args.no_rollups:
        upgrade(engine)
    figures = grow(engine, args.factor, rollups_too=not args.no_rollups)
    for name, value in figures.items():
        print(f"  {name:<28} {value:>14,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
