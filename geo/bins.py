"""Binning points for display: square cells that thin a heat map, hexagons that count events per area.

Both work in metres where size matters (:func:`geo.crs.to_metres`); the map widgets in
``components/maps.py`` turn their results into layers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pyproj import Transformer

from geo.crs import WGS84, metric_crs_for, to_metres


def bin_points(lon: np.ndarray, lat: np.ndarray, weight: np.ndarray, max_points: int):
    """Points merged on a square grid (coarsened until at most ``max_points`` occupied cells).

    Each cell becomes one point at the mean position of its points with the sum of their weights.
    """
    if len(lon) <= max_points:
        return lon, lat, weight
    minx, miny = lon.min(), lat.min()
    extent = max(np.ptp(lon), np.ptp(lat), 1e-6)
    cell = extent / 2048
    while True:
        ix = np.floor((lon - minx) / cell).astype(np.int64)
        iy = np.floor((lat - miny) / cell).astype(np.int64)
        inverse, cells = pd.factorize(ix * (iy.max() + 1) + iy)  # hashing: no sort of every point
        counts = np.bincount(inverse, minlength=len(cells))
        if len(counts) <= max_points:
            break
        cell *= 2
    return (
        np.bincount(inverse, weights=lon) / counts,
        np.bincount(inverse, weights=lat) / counts,
        np.bincount(inverse, weights=weight),
    )


def hexbin(
    lons: Sequence[float], lats: Sequence[float], size_m: float, weights: Sequence[float] | None = None
):
    """Bin WGS84 points into pointy-top hexagons of circumradius ``size_m`` metres (in the local UTM zone).

    Returns ``(polygons, counts)``: an array (k, 7, 2) of closed WGS84 lon/lat rings and the k counts
    (sums of ``weights`` if given) of the non-empty hexagons.
    """
    lon = np.asarray(lons, dtype=float)
    lat = np.asarray(lats, dtype=float)
    w = np.ones(len(lon)) if weights is None else np.asarray(weights, dtype=float)
    if len(lon) == 0:
        return np.zeros((0, 7, 2)), np.zeros(0)
    crs = metric_crs_for(float(np.mean(lon)), float(np.mean(lat)))
    x, y = to_metres(lon, lat, crs).T
    back = Transformer.from_crs(crs, WGS84, always_xy=True)
    # Axial coordinates (Red Blob Games' pointy-top layout), rounded in cube space.
    qf = (math.sqrt(3) / 3 * x - y / 3) / size_m
    rf = (2 / 3 * y) / size_m
    sf = -qf - rf
    q, r, s = np.round(qf), np.round(rf), np.round(sf)
    dq, dr, ds = np.abs(q - qf), np.abs(r - rf), np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    keys = np.column_stack([q, r]).astype(np.int64)
    cells, inverse = np.unique(keys, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w)
    cx = size_m * math.sqrt(3) * (cells[:, 0] + cells[:, 1] / 2)
    cy = size_m * 1.5 * cells[:, 1]
    angles = np.radians(60 * np.arange(7) - 30)  # 7 vertices: the ring closes on the first
    vx = cx[:, None] + size_m * np.cos(angles)[None, :]
    vy = cy[:, None] + size_m * np.sin(angles)[None, :]
    vlon, vlat = back.transform(vx.ravel(), vy.ravel())
    polygons = np.stack([np.asarray(vlon).reshape(vx.shape), np.asarray(vlat).reshape(vy.shape)], axis=-1)
    polygons[:, -1] = polygons[:, 0]
    return polygons, counts


def default_hex_size(lon: np.ndarray, lat: np.ndarray) -> float:
    """About 40 hexagons across the points' extent, between 150 m and 5 km, rounded to 10 m."""
    width_m = max(np.ptp(lon) * 111_320 * math.cos(math.radians(float(np.mean(lat)))), np.ptp(lat) * 110_574)
    return float(min(5000.0, max(150.0, round(width_m / 40 / 10) * 10)))
