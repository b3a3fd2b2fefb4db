"""区划导入 at a city's scale: a DataV-style file of a city's 12 districts imported into an empty store.

The file is made here (no download): Quzhou's outline enlarged to ~12,100 km² and cut into 12 districts
(4 区, 8 县) by the generator, written as DataV GeoAtlas publishes a city (``adcode``/``name``/``level``/
``parent``, GCJ-02 is not declared, no population: every figure is estimated). The import — read, checked,
filled down to ~9,000 grids, written in one unit of work — runs in a child process so its wall time and
peak memory are its own (issue #11's targets: ≤ 60 s, ≤ 1 GB on the 2-core machine).

``python -m bench --scale city --reuse --only boundary_import`` (the section does not use the seeded store).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import shapely
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
CITY_CODE = "339900"
COUNTIES = 12
FILE = Path("/tmp/cockpit_bench_city_districts.geojson")


def city_districts_file(path: Path = FILE) -> Path:
    """The 12 districts as a DataV-style GeoJSON FeatureCollection (deterministic)."""
    from geo.generate import generate_children, load_quzhou_counties

    counties = load_quzhou_counties()
    outline = shapely.coverage_union_all(counties.geometry.values)
    outline = shapely.affinity.scale(outline, 1.17, 1.17, origin=outline.centroid)
    city = gpd.GeoDataFrame(
        {"code": [CITY_CODE], "name": ["滨海市"], "level": ["city"], "population": [4_500_000]},
        geometry=[outline],
        crs=4326,
    )
    parts = generate_children(city, {CITY_CODE: COUNTIES}, "county", seed=7)
    features = [
        {
            "type": "Feature",
            "properties": {
                "adcode": int(CITY_CODE) + k,
                "name": name,
                "level": "district",
                "parent": {"adcode": int(CITY_CODE)},
                "childrenNum": 0,
            },
            "geometry": shapely.geometry.mapping(geom),
        }
        for k, (name, geom) in enumerate(zip(parts["name"], parts.geometry, strict=True), start=1)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def _scratch_url(url: str) -> str:
    """An empty store on the bench store's backend (a file beside it, or a database on its server)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path("/tmp/cockpit_bench_boundaries.db")
        for extra in ("", "-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "cockpit_bench_boundaries" WITH (FORCE)'))
        conn.execute(text('CREATE DATABASE "cockpit_bench_boundaries"'))
    admin.dispose()
    return parsed.set(database="cockpit_bench_boundaries").render_as_string(hide_password=False)


def bench_boundary_import(url: str) -> dict[str, float]:
    path = city_districts_file()
    scratch = _scratch_url(url)
    out = subprocess.run(
        [sys.executable, "-m", "bench.boundaries", str(path), scratch],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {f"boundary_import_city_{k}": v for k, v in figures.items()}


def _child(path: str, url: str) -> None:
    from db.engine import make_engine
    from db.migrate import upgrade
    from db.uow import UnitOfWork
    from geo.boundaries import PARENT_NONE, ParentChoice
    from services.boundaries import ImportOptions, apply_plan, plan_import, read_file

    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    source, problems = read_file(path)
    assert source is not None, problems
    with engine.connect() as conn:
        plan = plan_import(conn, source, ImportOptions(parent=ParentChoice(PARENT_NONE)))
    t1 = time.perf_counter()
    result = apply_plan(UnitOfWork(engine), plan)
    t2 = time.perf_counter()
    assert result.ok, result.errors
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "s": round(t2 - t0, 1),
                "plan_s": round(t1 - t0, 1),
                "write_s": round(t2 - t1, 1),
                "peak_rss_mb": round(peak),
                "county_count": result.units_by_level.get("county", 0),
                "grid_count": result.units_by_level.get("grid", 0),
                "unit_count": sum(result.units_by_level.values()),
            }
        )
    )


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
