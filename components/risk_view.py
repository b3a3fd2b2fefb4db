"""One risk map view (an area, a level, some layers) assembled from cached frames: layers, legend, side panel.

The page and the benchmark both call :func:`assemble`, so the figure measured is the page's own work.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pydeck as pdk

from components import maps, offline
from domain.hierarchy import descendants
from domain.risk import CLASS_RGB, RiskClass
from domain.vocabulary import AdminLevel
from services.risk import class_counts
from services.risk_map import in_grids, riskiest_venues, venue_clusters

# Individual venues are drawn when the area is a township or below; above it, one cluster per grid.
POINT_LEVELS = {AdminLevel.TOWNSHIP.value, AdminLevel.VILLAGE.value, AdminLevel.GRID.value}
LAYERS = ["区域风险", "场所平安码", "事件热力"]
_CLASS_LABEL = {c.value: c.label for c in RiskClass}
_CLASS_RGB = {c.value: CLASS_RGB[c] for c in RiskClass}

_lock = threading.Lock()
_shapes: dict[int, tuple[weakref.ref, maps.ShapeCache]] = {}


def shapes_of(units: gpd.GeoDataFrame) -> maps.ShapeCache:
    """The display shapes of every unit, made on first use and kept while ``units`` lives.

    ``units`` is the per-process geography frame (``components.store.geography``), never changed in
    place: a new boundary import gives a new frame and so new shapes. Kept per display CRS too.
    """
    key = id(units)
    with _lock:
        hit = _shapes.get(key)
    if hit and hit[0]() is units and hit[1].crs == offline.tile_crs():
        return hit[1]
    made = maps.ShapeCache(units.geometry)
    with _lock:
        _shapes[key] = (weakref.ref(units, lambda _ref, k=key: _shapes.pop(k, None)), made)
    return made


@dataclass
class RiskView:
    shown: gpd.GeoDataFrame  # the areas drawn, with score, class, label, colour
    counts: dict[RiskClass, int]  # the legend
    grid_ids: list[int]
    venues: pd.DataFrame  # venues inside the area
    layers: list[pdk.Layer]
    top_venues: pd.DataFrame


def assemble(
    units: gpd.GeoDataFrame,
    anc: pd.DataFrame,
    risk: pd.DataFrame,
    all_venues: pd.DataFrame,
    events: pd.DataFrame,
    area_id: int,
    level: AdminLevel,
    layers_on: list[str],
) -> RiskView:
    """The view of ``area_id`` showing its units at ``level``, from frames the caller has cached."""
    shown_ids = descendants(anc, area_id, level.value)
    shown = units.loc[shown_ids, ["code", "name", "level", "geometry"]]
    shown = shown.join(risk[["score", "risk_class"]])
    shown["class_label"] = shown["risk_class"].map(_CLASS_LABEL)
    shown["rgb"] = shown["risk_class"].map(_CLASS_RGB)
    shown["score"] = shown["score"].round(1)
    grid_ids = descendants(anc, area_id, AdminLevel.GRID.value)
    venues = in_grids(all_venues, grid_ids)
    area_level = units.at[area_id, "level"]
    layers: list[pdk.Layer] = []
    if "区域风险" in layers_on:
        # Shapes converted once per process; the view only adds each area's colour and figures.
        layers.append(maps.area_layer(shown.reset_index(), geometries=shapes_of(units).geojson(shown_ids)))
    if "场所平安码" in layers_on:
        if area_level in POINT_LEVELS:
            layers.append(maps.venue_points_layer(venues))
        else:
            centroids = units.loc[grid_ids, ["centroid_lon", "centroid_lat"]]
            layers.append(maps.venue_cluster_layer(venue_clusters(venues, centroids)))
    if "事件热力" in layers_on:
        # event_heat_layer bins many points server-side: only aggregates reach the browser.
        layers.append(maps.event_heat_layer(in_grids(events, grid_ids).assign(weight=1)))
    return RiskView(shown, class_counts(shown), grid_ids, venues, layers, riskiest_venues(venues))


def legend_html(counts: dict[RiskClass, int]) -> str:
    """The five colours with the count of shown areas in each (no user text inside)."""
    return " ".join(
        f"<span style='display:inline-block;margin-right:14px'>"
        f"<span style='display:inline-block;width:14px;height:14px;background:rgb{CLASS_RGB[c]};"
        f"vertical-align:middle;margin-right:4px;border-radius:2px'></span>{c.label} <b>{counts[c]}</b></span>"
        for c in RiskClass
    )

