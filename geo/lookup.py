"""Point -> grid lookup: the one way a location (lon/lat) is turned into a grid code."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike

from geo.crs import WGS84


class GridIndex:
    """Finds the grid containing a WGS84 point (EPSG:4326, lon/lat degrees).

    A point inside no grid is reported as outside (None): it is never snapped to the
    nearest grid. A point on a border shared by several grids (or on a vertex where they
    meet) belongs to the grid with the smallest code (string order), so the answer is
    deterministic and the same whichever side the point came from. A point on the outer
    boundary of the grid set counts as inside that grid.
    """

    def __init__(self, grids: gpd.GeoDataFrame, code_column: str = "code") -> None:
        """``grids``: one row per grid with ``code_column`` and a (multi)polygon geometry.

        Reprojected to EPSG:4326 if it has another CRS; a GeoDataFrame without a CRS is
        taken to be EPSG:4326 already.
        """
        if grids.crs is not None and not grids.crs.equals(WGS84):
            grids = grids.to_crs(WGS84)
        codes = grids[code_column].astype(str).to_numpy(dtype=object)
        geoms = np.asarray(grids.geometry.values, dtype=object)
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        codes, geoms = codes[keep], geoms[keep]
        # Tree positions follow code order, so "smallest position" means "smallest code".
        order = np.argsort(codes, kind="stable")
        self._codes = codes[order]
        self._geoms = geoms[order].copy()
        shapely.prepare(self._geoms)
        self._tree = shapely.STRtree(self._geoms)

    def __len__(self) -> int:
        return len(self._codes)

    def locate(self, lon: float, lat: float) -> str | None:
        """Code of the grid containing (lon, lat), or None when it lies in no grid."""
        # One point asks the tree directly: half the time of the arrays locate_many builds (every report
        # is located once or twice on its way in).
        if lon is None or lat is None or len(self._codes) == 0:
            return None
        x, y = float(lon), float(lat)
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        hits = self._tree.query(shapely.Point(x, y), predicate="intersects")
        return str(self._codes[hits.min()]) if len(hits) else None

    def locate_many(self, lons: ArrayLike, lats: ArrayLike) -> np.ndarray:
        """Grid code (str) or None for each point; a numpy array of dtype object.

        Non-finite coordinates give None.
        """
        x = np.asarray(lons, dtype=float).ravel()
        y = np.asarray(lats, dtype=float).ravel()
        if x.shape != y.shape:
            raise ValueError("lons and lats must have the same length")
        out = np.full(x.shape, None, dtype=object)
        valid = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(valid) == 0 or len(self._codes) == 0:
            return out
        points = shapely.points(x[valid], y[valid])
        point_idx, grid_idx = self._tree.query(points, predicate="intersects")
        if len(point_idx) == 0:
            return out
        best = np.full(len(valid), len(self._codes), dtype=np.int64)
        np.minimum.at(best, point_idx, grid_idx)
        found = best < len(self._codes)
        out[valid[found]] = self._codes[best[found]]
        return out
