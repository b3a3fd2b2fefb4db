"""The one point → grid lookup of the store: every location that enters the system goes through here."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from db.engine import store_key
from db.models import AdminUnit
from domain.vocabulary import AdminLevel
from geo.lookup import GridIndex
from services.geography import load_units, tree_version


class OutsideArea(ValueError):
    """A location outside every grid: refused, never attached to the nearest grid."""

    def __init__(self, lon: float, lat: float):
        self.lon, self.lat = lon, lat
        super().__init__(f"位置（经度 {lon:.6f}，纬度 {lat:.6f}）不在任何网格内，请重新选择位置")


_lock = threading.Lock()
_building = threading.Lock()  # held while an index is built (a city's ~6,000 grids take seconds)
RECHECK_S = 2.0  # how often a process looks for a boundary import made by another process


@dataclass(frozen=True)
class _Grids:
    """One store's grids as the lookup keeps them: the index, code → id, grid → village, each grid's
    ancestors (for a scope check without the tree) and bounding boxes (for a search near a point)."""

    stamp: tuple[int, int, int]  # services.geography.tree_version when built
    index: GridIndex
    ids: dict[str, int]
    parents: dict[int, int | None]
    ancestors: dict[int, frozenset[int]]  # grid id → the grid and every unit above it
    grid_ids: np.ndarray  # bounding boxes, one row per grid: minx, miny, maxx, maxy
    bounds: np.ndarray


# url → (when the stamp was last checked, the grids)
_cache: dict[str, tuple[float, _Grids]] = {}


def _entry(conn: Connection) -> _Grids:
    # One index per store, rebuilt when the units change (a boundary import gives new ids; the stamp is
    # services.geography's, the one the tree is reloaded by); checked at most every RECHECK_S seconds,
    # so the busiest write path (intake) does not ask on every report.
    key = store_key(conn.engine)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and now - hit[0] < RECHECK_S:
        return hit[1]
    stamp = tree_version(conn)
    if hit and hit[1].stamp == stamp:
        with _lock:
            _cache[key] = (now, hit[1])
        return hit[1]
    with _building:  # one thread builds; the others wait for it instead of each building their own
        with _lock:
            hit = _cache.get(key)
        if hit and hit[1].stamp == stamp:
            return hit[1]
        return _build(conn, key, stamp, now)


def _build(conn: Connection, key: str, stamp: tuple[int, int, int], now: float) -> _Grids:
    grids = load_units(conn, AdminLevel.GRID)
    if grids.empty:  # a new store (only the placeholder unit, or nothing yet): every point is outside
        grids = gpd.GeoDataFrame({"id": [], "code": [], "parent_id": []}, geometry=[], crs=4326)
    index = GridIndex(grids[["code", "geometry"]])
    ids = {str(c): int(i) for c, i in zip(grids["code"], grids["id"], strict=True)}
    parents = {
        int(i): (None if p is None or p != p else int(p))
        for i, p in zip(grids["id"], grids["parent_id"], strict=True)
    }
    above = dict(conn.execute(select(AdminUnit.id, AdminUnit.parent_id)).all())
    ancestors: dict[int, frozenset[int]] = {}
    for grid in parents:
        chain: list[int] = []
        node: int | None = grid
        while node is not None and node not in chain:
            chain.append(node)
            node = above.get(node)
        ancestors[grid] = frozenset(chain)
    has_shape = ~(grids.geometry.isna() | grids.geometry.is_empty) if len(grids) else np.zeros(0, bool)
    bounds = grids.geometry[has_shape].bounds.to_numpy(float) if len(grids) else np.zeros((0, 4))
    grid_ids = grids["id"][has_shape].to_numpy(np.int64) if len(grids) else np.zeros(0, np.int64)
    entry = _Grids(stamp, index, ids, parents, ancestors, grid_ids, bounds.reshape(-1, 4))
    with _lock:
        _cache[key] = (now, entry)
        _recent.clear()  # an id() of a replaced build may be reused
    return entry


def _index(conn: Connection) -> tuple[GridIndex, dict[str, int]]:
    entry = _entry(conn)
    return entry.index, entry.ids


def village_of(conn: Connection, grid_id: int) -> int | None:
    """The village (parent unit) of ``grid_id``, from the same cache as the lookup."""
    return _entry(conn).parents.get(int(grid_id))


def grid_within(conn: Connection, grid_id: int, unit_id: int) -> bool:
    """Whether grid ``grid_id`` lies in the subtree of unit ``unit_id`` (the grid itself or any unit above
    it): :func:`services.access.unit_in_scope`'s answer for a grid, from the lookup's cache instead of
    the tree (no query per call on the busiest write path). False for an unknown grid."""
    return int(unit_id) in _entry(conn).ancestors.get(int(grid_id), frozenset())


def grids_near(conn: Connection, lon: float, lat: float, box_deg: float) -> list[int]:
    """The grids whose bounding box meets the box of ``box_deg`` degrees around (lon, lat): every grid
    that can hold a point of that box (an event's grid contains its point), so a search near a point
    asks the (grid, time) index for these grids only."""
    entry = _entry(conn)
    b = entry.bounds
    near = (
        (b[:, 0] <= lon + box_deg)
        & (b[:, 2] >= lon - box_deg)
        & (b[:, 1] <= lat + box_deg)
        & (b[:, 3] >= lat - box_deg)
    )
    return [int(i) for i in entry.grid_ids[near]]


#: The last points located (an API request is located for its scope check, then again by the intake):
#: (the grids' build, lon, lat) → (that build, grid id or None); dropped when the grids are rebuilt.
_recent: dict[tuple[int, float, float], tuple[_Grids, int | None]] = {}
RECENT = 256


def locate_grid(session_or_conn: Session | Connection, lon: float, lat: float) -> int | None:
    """The id of the grid containing (lon, lat) in WGS84, or None when it lies outside every grid."""
    conn = session_or_conn.connection() if isinstance(session_or_conn, Session) else session_or_conn
    entry = _entry(conn)
    point = (id(entry), float(lon), float(lat))
    with _lock:
        hit = _recent.get(point)
    if hit is not None and hit[0] is entry:
        return hit[1]
    code = entry.index.locate(point[1], point[2])
    found = None if code is None else entry.ids[code]
    with _lock:
        if len(_recent) >= RECENT:
            _recent.clear()
        _recent[point] = (entry, found)
    return found


def locate_grids(conn: Connection, lons, lats) -> np.ndarray:
    """Vectorised :func:`locate_grid`: grid ids (object array, None outside)."""
    index, ids = _index(conn)
    codes = index.locate_many(np.asarray(lons, float), np.asarray(lats, float))
    return np.array([None if c is None else ids[c] for c in codes], dtype=object)


#: Said of a point outside every grid that would lie inside one with its latitude and longitude swapped.
SWAPPED_HINT = "纬度和经度可能填反了（互换后位于网格内），请核对这两列"


def swapped_inside(conn: Connection, lons, lats) -> list[bool]:
    """For points outside every grid: whether each would lie inside one with latitude and longitude
    swapped (a file whose two columns were filled the other way round)."""
    if len(lons) == 0:
        return []
    return [g is not None for g in locate_grids(conn, lats, lons)]


def forget_index() -> None:
    """Drop cached indexes (tests that rebuild a store under the same URL call this)."""
    with _lock:
        _cache.clear()
        _recent.clear()


def locate_among(conn: Connection, lons, lats, *, exclude: Collection[int] = ()) -> np.ndarray:
    """Grid ids (object array, None outside) for points, from the grids ``conn``'s transaction sees minus
    ``exclude``: a boundary import re-locating venues and events to its new grids before they are
    committed (the old ones excluded). Nothing is cached: the index is built for this call."""
    grids = load_units(conn, AdminLevel.GRID)
    if len(grids) and exclude:
        grids = grids[~grids["id"].isin(list(exclude))]
    if len(grids) == 0:
        return np.full(len(np.atleast_1d(lons)), None, dtype=object)
    codes = GridIndex(grids[["code", "geometry"]]).locate_many(
        np.asarray(lons, float), np.asarray(lats, float)
    )
    ids = dict(zip(grids["code"], grids["id"], strict=True))
    return np.array([None if c is None else int(ids[c]) for c in codes], dtype=object)
