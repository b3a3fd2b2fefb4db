"""Point -> grid, the project's index (geo/lookup.GridIndex) beside geopandas' ``sjoin`` on the same
grids and the same random points, in one run, alternating, ``ROUNDS`` times each (issue 15.3).

Figures: points per second for each, min/median/max over the rounds, and whether both gave the same
grid for every point (``sjoin`` with "intersects", then the smallest code per point: the index's rule
for a point on a shared border).
"""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np

from db.engine import make_engine
from services.locate import _index

POINTS = 1_000_000
ROUNDS = 5


def _sjoin_codes(grids: gpd.GeoDataFrame, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lons, lats), crs=grids.crs)
    joined = gpd.sjoin(points, grids[["code", "geometry"]], predicate="intersects", how="inner")
    first = joined.reset_index().groupby("index")["code"].min()
    out = np.full(len(lons), None, dtype=object)
    out[first.index.to_numpy()] = first.to_numpy()
    return out


def _stats(name: str, values: list[float]) -> dict[str, float]:
    return {
        f"point_to_grid_{name}_per_s_min": round(min(values)),
        f"point_to_grid_{name}_per_s_median": round(float(np.median(values))),
        f"point_to_grid_{name}_per_s_max": round(max(values)),
    }


def bench_point_to_grid(url: str) -> dict[str, float]:
    engine = make_engine(url)
    with engine.connect() as conn:
        t0 = time.perf_counter()
        index, _ids = _index(conn)
        build = time.perf_counter() - t0
    engine.dispose()
    grids = gpd.GeoDataFrame({"code": index._codes}, geometry=list(index._geoms), crs="EPSG:4326")
    minx, miny, maxx, maxy = grids.total_bounds
    rng = np.random.default_rng(0)
    lons, lats = rng.uniform(minx, maxx, POINTS), rng.uniform(miny, maxy, POINTS)
    own, lib = [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        codes = index.locate_many(lons, lats)
        own.append(POINTS / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        joined = _sjoin_codes(grids, lons, lats)
        lib.append(POINTS / (time.perf_counter() - t0))
    inside = int(sum(c is not None for c in codes))
    return {
        **_stats("index", own),
        **_stats("sjoin", lib),
        "point_to_grid_per_s": round(float(np.median(own))),
        "point_to_grid_index_build_s": round(build, 2),
        "point_to_grid_inside_share": round(inside / POINTS, 3),
        "point_to_grid_grids_count": len(grids),
        "point_to_grid_same_answers": int(bool((codes == joined).all())),
    }
