"""The one point → grid lookup of the store: every location that enters the system goes through here."""

from __future__ import annotations

import threading
import time

import numpy as np
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from db.models import AdminUnit
from domain.vocabulary import AdminLevel
from geo.lookup import GridIndex
from services.geography import load_units


class OutsideArea(ValueError):
    """A location outside every grid: refused, never attached to the nearest grid."""

    def __init__(self, lon: float, lat: float):
        self.lon, self.lat = lon, lat
        super().__init__(f"位置（经度 {lon:.6f}，纬度 {lat:.6f}）不在任何网格内，请重新选择位置")


_lock = threading.Lock()
# url → (newest grid id, when it was checked, index, code → id, grid id → parent id)
_cache: dict[str, tuple[int, float, GridIndex, dict[str, int], dict[int, int | None]]] = {}
RECHECK_S = 2.0  # how often a process looks for a boundary import made by another process


def _entry(conn: Connection) -> tuple[GridIndex, dict[str, int], dict[int, int | None]]:
    # One index per store, rebuilt when the grids change (a boundary import gives new ids); checked at
    # most every RECHECK_S seconds, so the busiest write path (intake) does not ask on every report.
    key = conn.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and now - hit[1] < RECHECK_S:
        return hit[2], hit[3], hit[4]
    n = conn.execute(select(AdminUnit.id).where(AdminUnit.level == AdminLevel.GRID).order_by(AdminUnit.id.desc()).limit(1)).scalar()
    if hit and hit[0] == n:
        with _lock:
            _cache[key] = (n, now, *hit[2:])
        return hit[2], hit[3], hit[4]
    grids = load_units(conn, AdminLevel.GRID)
    index = GridIndex(grids[["code", "geometry"]])
    ids = dict(zip(grids["code"], grids["id"], strict=True))
    parents = {int(i): (None if p is None or p != p else int(p)) for i, p in zip(grids["id"], grids["parent_id"], strict=True)}
    with _lock:
        _cache[key] = (n, now, index, ids, parents)
    return index, ids, parents


def _index(conn: Connection) -> tuple[GridIndex, dict[str, int]]:
    index, ids, _ = _entry(conn)
    return index, ids


def village_of(conn: Connection, grid_id: int) -> int | None:
    """The village (parent unit) of ``grid_id``, from the same cache as the lookup."""
    return _entry(conn)[2].get(int(grid_id))


def locate_grid(session_or_conn: Session | Connection, lon: float, lat: float) -> int | None:
    """The id of the grid containing (lon, lat) in WGS84, or None when it lies outside every grid."""
    conn = session_or_conn.connection() if isinstance(session_or_conn, Session) else session_or_conn
    index, ids = _index(conn)
    code = index.locate(float(lon), float(lat))
    return None if code is None else ids[code]


def locate_grids(conn: Connection, lons, lats) -> np.ndarray:
    """Vectorised :func:`locate_grid`: grid ids (object array, None outside)."""
    index, ids = _index(conn)
    codes = index.locate_many(np.asarray(lons, float), np.asarray(lats, float))
    return np.array([None if c is None else ids[c] for c in codes], dtype=object)


def forget_index() -> None:
    """Drop cached indexes (tests that rebuild a store under the same URL call this)."""
    with _lock:
        _cache.clear()
