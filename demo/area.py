"""The geography as arrays for the generators: units, the data area's grids and candidate addresses per grid."""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.vocab import ROADS
from domain.vocabulary import AdminLevel

LEVEL_DEPTH = {lvl.value: lvl.depth for lvl in AdminLevel}
METRES_PER_DEGREE = 111_320.0


def default_unit_ids(units: pd.DataFrame) -> dict[str, int]:
    """The ids ``services.geography.store_units`` gives in an empty store: 1.. by (level, code)."""
    order = units.assign(_d=units["level"].map(LEVEL_DEPTH)).sort_values(["_d", "code"], kind="stable")
    return {str(c): i + 1 for i, c in enumerate(order["code"])}


@dataclass
class Area:
    """Every unit (for departments and scopes) and the grids where the demo data lives."""

    units: pd.DataFrame  # code (index), id, name, level, kind, parent_code, population
    counties: pd.DataFrame  # all counties, sorted by code
    townships: pd.DataFrame  # all townships, sorted by code; column county_code
    data_townships: list[str]  # townships that get data, sorted
    demo_township: str
    city_code: str
    grids: pd.DataFrame  # data-area grids sorted by code (row i = grid index i), see build_area
    polygons: np.ndarray  # shapely polygon of each data grid
    pool_lon: np.ndarray  # (grids, pool) candidate event addresses inside each grid
    pool_lat: np.ndarray
    pool_address: np.ndarray  # (grids, pool) object array of address strings

    @property
    def n_grids(self) -> int:
        return len(self.grids)

    def unit_id(self, code: str) -> int:
        return int(self.units.at[code, "id"])


def build_area(
    units: gpd.GeoDataFrame,
    unit_ids: dict[str, int],
    data_townships: list[str],
    demo_township: str,
    pool_per_grid: int,
    rng: np.random.Generator,
) -> Area:
    """Index ``units`` (all five levels) and sample ``pool_per_grid`` addresses in each data grid."""
    u = pd.DataFrame(units.drop(columns="geometry")).copy()
    u["code"] = u["code"].astype(str)
    u["parent_code"] = u["parent_code"].map(lambda c: None if pd.isna(c) else str(c))
    u["id"] = u["code"].map(unit_ids).astype("int64")
    u = u.set_index("code", drop=False)
    geometry = dict(zip(u["code"], units.geometry, strict=True))
    by_level = {lvl: u[u["level"] == lvl].sort_index() for lvl in LEVEL_DEPTH}
    if len(by_level["city"]) != 1:
        raise ValueError("地理数据须恰好包含一个市级单元")
    townships = by_level["township"].assign(county_code=lambda t: t["parent_code"])
    missing = sorted(set(data_townships) - set(townships.index))
    if missing or demo_township not in townships.index:
        raise ValueError(f"未知的乡镇编码: {', '.join(missing or [demo_township])}")

    g = by_level["grid"]
    g = g.assign(village_code=g["parent_code"])
    g["township_code"] = g["village_code"].map(u["parent_code"])
    g = g[g["township_code"].isin(data_townships)].sort_index()
    g["county_code"] = g["township_code"].map(u["parent_code"])
    grids = pd.DataFrame(
        {
            "id": g["id"].to_numpy(),
            "code": g["code"].to_numpy(),
            "population": g["population"].fillna(0).astype("int64").to_numpy(),
            "village_code": g["village_code"].to_numpy(),
            "village_id": g["village_code"].map(u["id"]).to_numpy(),
            "village_name": g["village_code"].map(u["name"]).to_numpy(),
            "village_kind": g["village_code"].map(u["kind"]).to_numpy(),
            "township_code": g["township_code"].to_numpy(),
            "township_id": g["township_code"].map(u["id"]).to_numpy(),
            "township_name": g["township_code"].map(u["name"]).to_numpy(),
            "township_kind": g["township_code"].map(u["kind"]).to_numpy(),
            "county_code": g["county_code"].to_numpy(),
            "county_id": g["county_code"].map(u["id"]).to_numpy(),
            "county_name": g["county_code"].map(u["name"]).to_numpy(),
        }
    )
    grids["township_idx"] = np.searchsorted(
        np.asarray(sorted(data_townships)), grids["township_code"].to_numpy()
    )
    polygons = np.array([geometry[c] for c in grids["code"]], dtype=object)
    shapely.prepare(polygons)

    n, p = len(grids), pool_per_grid
    pool_lon = np.empty((n, p))
    pool_lat = np.empty((n, p))
    for i, poly in enumerate(polygons):
        pool_lon[i], pool_lat[i] = sample_points(poly, p, rng)
    # Each grid has a few streets; each candidate address is a number on one of them (or a 组 of a 村).
    roads = np.asarray(ROADS, dtype=object)
    grid_roads = (
        np.stack([rng.choice(len(roads), 3, replace=False) for _ in range(n)]) if n else np.empty((0, 3))
    )
    road = roads[np.take_along_axis(grid_roads, rng.integers(0, 3, (n, p)), axis=1).astype(int)]
    number = rng.integers(1, 300, (n, p))
    group = rng.integers(1, 12, (n, p))
    prefix = (grids["county_name"] + grids["township_name"] + grids["village_name"]).to_numpy()
    rural = (grids["village_kind"] == "村").to_numpy()
    pool_address = np.empty((n, p), dtype=object)
    for i in range(n):
        if rural[i]:
            pool_address[i] = [f"{prefix[i]}{k}组{m}号" for k, m in zip(group[i], number[i], strict=True)]
        else:
            pool_address[i] = [f"{prefix[i]}{r}{m}号" for r, m in zip(road[i], number[i], strict=True)]
    return Area(
        units=u,
        counties=by_level["county"],
        townships=townships,
        data_townships=sorted(data_townships),
        demo_township=demo_township,
        city_code=str(by_level["city"].index[0]),
        grids=grids,
        polygons=polygons,
        pool_lon=pool_lon,
        pool_lat=pool_lat,
        pool_address=pool_address,
    )


def sample_points(poly, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n uniform random points strictly inside ``poly`` (rejection sampling in its bounding box)."""
    if n <= 0:
        return np.empty(0), np.empty(0)
    minx, miny, maxx, maxy = poly.bounds
    fill = max(poly.area / max((maxx - minx) * (maxy - miny), 1e-18), 0.02)
    xs, ys, got = [], [], 0
    while got < n:
        k = int((n - got) / fill * 1.25) + 8
        x = rng.uniform(minx, maxx, k)
        y = rng.uniform(miny, maxy, k)
        ok = shapely.contains_xy(poly, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def sample_near(
    poly, lon: float, lat: float, radius_m: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n random points within ``radius_m`` of (lon, lat) and inside ``poly`` (which holds the centre)."""
    xs, ys, got, radius = [], [], 0, radius_m
    for attempt in range(200):
        k = 4 * (n - got) + 8
        r = radius * np.sqrt(rng.random(k))
        theta = rng.uniform(0, 2 * math.pi, k)
        x = lon + r * np.cos(theta) / (METRES_PER_DEGREE * math.cos(math.radians(lat)))
        y = lat + r * np.sin(theta) / METRES_PER_DEGREE
        ok = shapely.contains_xy(poly, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
        if got >= n:
            break
        if attempt % 10 == 9:
            radius /= 2  # the centre sits at the edge of a thin grid: draw closer in
    if got < n:
        xs.append(np.full(n - got, lon))
        ys.append(np.full(n - got, lat))
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def distance_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Equirectangular distance in metres between WGS84 points (accurate at the scale of a town)."""
    lat0 = np.radians((np.asarray(lat1) + np.asarray(lat2)) / 2)
    dx = (np.asarray(lon2) - np.asarray(lon1)) * np.cos(lat0) * METRES_PER_DEGREE
    dy = (np.asarray(lat2) - np.asarray(lat1)) * METRES_PER_DEGREE
    return np.hypot(dx, dy)
