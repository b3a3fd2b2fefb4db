"""Seed a store with the demo: ``python -m demo.seed --scale town|city|tiny --seed 1 [--until 2026-11-22] [--force]``."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import geopandas as gpd
from sqlalchemy import Engine, func, select

from db.engine import ROOT, make_engine
from db.maintenance import count_rows, empty_store
from db.migrate import upgrade
from db.models import AdminUnit
from demo.generator import EVENT_TABLES, STATIC_TABLES, generate
from demo.load import Prepared, prepare, reset_sequences, write_frame, write_prepared
from demo.org import DEMO_PASSWORD
from services import audit
from services.geography import store_units

DATA_DIR = ROOT / "data"
DEMO_ACCOUNTS = [
    "demo_admin",
    "demo_city",
    "demo_county",
    "demo_township",
    "demo_department",
    "demo_inspector",
]


class SeedRefused(RuntimeError):
    """The store already holds data and ``force`` was not given."""


def resolve_end(until: date | datetime | None) -> datetime:
    """The demo's last moment: a datetime as given; a date means through that day, but never past now.

    With no ``until`` the demo ends now (China time), so the home page has today's events.
    """
    from services import clock  # the one place that reads the clock

    if isinstance(until, datetime):
        return until.replace(microsecond=0)
    now = clock.now()
    if until is None:
        return now
    return min(datetime(until.year, until.month, until.day) + timedelta(days=1, seconds=-1), now)


def geography_cache_key() -> str:
    """A digest of geo/'s code and data: the cached geography is rebuilt whenever they change."""
    h = hashlib.sha1()
    geo_dir = ROOT / "geo"
    for path in sorted([*geo_dir.glob("*.py"), *(geo_dir / "data").glob("*")]):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def load_geography(seed: int, cache_dir: Path | None = DATA_DIR) -> gpd.GeoDataFrame:
    """The whole city's five levels from ``geo.generate.generate_quzhou(seed)``, cached as GeoParquet."""
    from geo.generate import generate_quzhou

    if cache_dir is None:
        return generate_quzhou(seed)
    path = Path(cache_dir) / f"geography_{seed}_{geography_cache_key()}.parquet"
    for stale in path.parent.glob(f"geography_{seed}_*.parquet"):
        if stale != path:
            stale.unlink(missing_ok=True)  # built from an older geo/
    if path.exists():
        return gpd.read_parquet(path)
    units = generate_quzhou(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so parallel seeders (pytest -n 2) never read a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        units.to_parquet(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return units


def seed(
    engine: Engine,
    scale: str = "town",
    seed: int = 1,
    until: date | datetime | None = None,
    *,
    force: bool = False,
    geography: gpd.GeoDataFrame | None = None,
    demo_township: str | None = None,
    manifest_dir: Path | None = DATA_DIR,
    log=None,
) -> dict:
    """Migrate ``engine``'s store and fill it with the demo; returns rows per table, seconds and manifest.

    Refuses (:class:`SeedRefused`) a store that already has units unless ``force``, which first empties
    every data table. On failure the store is emptied again, so the next start seeds afresh.
    """
    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        seconds[name] = round(now - since, 2)
        return now

    upgrade(engine)
    with engine.connect() as conn:
        units_present = conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()
    if units_present and not force:
        raise SeedRefused(
            f"数据库中已有 {units_present} 个区划单元；如需重新生成演示数据请加 --force（将清空数据）"
        )
    if units_present:
        empty_store(engine)
    t = lap("migrate", t0)

    end = resolve_end(until)
    if geography is None:
        geography = load_geography(seed)
    if demo_township is None:
        from geo.generate import DEMO_TOWNSHIP_CODE

        demo_township = DEMO_TOWNSHIP_CODE
    t = lap("geography", t)
    try:
        with engine.begin() as conn:
            unit_ids = store_units(conn, geography)
        t = lap("store_units", t)
        data = generate(geography, scale, seed, end, unit_ids=unit_ids, demo_township=demo_township)
        t = lap("generate_static", t)
        rows = {"admin_units": len(unit_ids)}
        with engine.begin() as conn:
            for name in STATIC_TABLES:
                rows[name] = write_frame(conn, name, data.tables[name])
        data.tables.clear()  # written: free them before the events (city scale holds ~1 M inspections)
        t = lap("write_static", t)
        say(f"区划 {len(unit_ids)}，场所 {rows['venues']}，检查 {rows['inspections']}，用户 {rows['users']}")
        for name in EVENT_TABLES:
            rows[name] = 0
        for month, prepared in _prefetch(_prepared_chunks(data, engine.dialect.name)):
            with engine.begin() as conn:
                for prep in prepared:
                    rows[prep.table] += write_prepared(conn, prep)
            say(f"  {month}: 事件 {prepared[0].rows}，处置记录 {prepared[1].rows}")
            del prepared  # let the producer's next chunk take its memory
        t = lap("events", t)
        with engine.begin() as conn:
            reset_sequences(conn)
            # The trail (全留痕) gets one row for the whole load, with its counts, not one per row.
            audit.record(
                conn,
                actor_id=None,
                actor_role=audit.SYSTEM_ROLE,
                action="demo.seed",
                entity="store",
                entity_id=None,
                before={"emptied": bool(units_present)},
                after={
                    "scale": data.scale.name,
                    "seed": seed,
                    "start": data.start,
                    "end": data.end,
                    "rows": rows,
                },
                reason="演示数据批量装载：逐行不留痕，本行记录各表行数",
            )
    except BaseException:
        empty_store(engine)
        raise
    # Planner statistics for what was just bulk-loaded: PostgreSQL's autovacuum may take its time to
    # analyze millions of COPY'd rows, and until then it plans seq scans (a city's views 3-20× slower).
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
        t = lap("analyze", t)
    manifest = data.manifest
    manifest_path = None
    if manifest_dir is not None:
        manifest_path = Path(manifest_dir) / f"manifest_{data.scale.name}_{seed}.json"
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    seconds["total"] = round(time.perf_counter() - t0, 2)
    return {
        "scale": data.scale.name,
        "seed": seed,
        "start": data.start.isoformat(sep=" "),
        "end": data.end.isoformat(sep=" "),
        "rows": rows,
        "seconds": seconds,
        "manifest_path": str(manifest_path) if manifest_path else None,
        "manifest": manifest,
    }


def _prepared_chunks(data, dialect: str) -> Iterator[tuple[str, list[Prepared]]]:
    for frames in data.event_chunks():
        month = str(frames["events"]["reported_at"].iloc[0])[:7] if len(frames["events"]) else "-"
        yield month, [prepare(name, frames[name], dialect) for name in EVENT_TABLES]


def _prefetch(items: Iterator) -> Iterator:
    """Produce the next item in a thread while the caller consumes this one; order is kept.

    Generating a month (numpy, pandas) overlaps with writing the previous one: sqlite3 and psycopg
    release the GIL while the database works, so both cores are busy. At most two items are alive
    at once (one being written, one ready or being made), which bounds memory.
    """
    q: queue.Queue = queue.Queue()
    room = threading.Semaphore(2)  # items made but not yet finished by the consumer
    stop = threading.Event()
    done = object()

    def run() -> None:
        source = iter(items)
        try:
            while True:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                try:
                    item = next(source)
                except StopIteration:
                    q.put(done)
                    return
                q.put(item)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    worker = threading.Thread(target=run, name="demo-seed-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
            del item
            room.release()
    finally:
        stop.set()  # a failed write stops the producer instead of leaving it waiting
        worker.join()


def _parse_until(text: str) -> date | datetime:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="生成演示数据 (seed the store with deterministic demo data)")
    parser.add_argument("--scale", default="town", choices=["tiny", "town", "city"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--until",
        type=_parse_until,
        default=None,
        help="last day (YYYY-MM-DD, through that day but not past now) or moment "
        "(YYYY-MM-DDTHH:MM:SS); default: now",
    )
    parser.add_argument("--force", action="store_true", help="empty a store that already has data, then seed")
    args = parser.parse_args(argv)
    engine = make_engine()
    print(f"数据库: {engine.url.render_as_string(hide_password=True)}")
    try:
        figures = seed(engine, args.scale, args.seed, args.until, force=args.force, log=print)
    except SeedRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    rows, secs = figures["rows"], figures["seconds"]
    print(
        f"完成：{figures['scale']} 规模，种子 {figures['seed']}，{figures['start']} 至 {figures['end']}，"
        f"用时 {secs['total']:.1f} 秒"
    )
    for name, n in rows.items():
        print(f"  {name:<22} {n:>10,}")
    print(f"异常清单: {figures['manifest_path']}")
    print(f"演示账号（密码均为 {DEMO_PASSWORD}）: {', '.join(DEMO_ACCOUNTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["SeedRefused", "count_rows", "load_geography", "resolve_end", "seed"]
