"""Map builders: the pydeck risk map (areas, venues, events) and the folium detail map, all served offline."""

from __future__ import annotations

import html
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import shapely
from folium.elements import MacroElement
from folium.template import Template
from pydeck.bindings.json_tools import default_serialize

from components import offline
from components.palette import CLASS_RGB, EVENT_RAMP, NO_DATA_RGB, SAFETY_CODE_RGB, hex_color
from domain.risk import RiskClass
from domain.vocabulary import SafetyCode, VenueCategory
from geo.bins import bin_points, default_hex_size, hexbin

#: The deck tooltip; every pickable layer below gives its objects ``name``, ``class_label`` and ``score``.
DEFAULT_TOOLTIP = "{name}<br/>{class_label} · {score}"
TOOLTIP_STYLE = {
    "backgroundColor": "rgba(255,255,255,0.96)",
    "color": "#1f2328",
    "fontSize": "13px",
    "padding": "6px 10px",
    "borderRadius": "4px",
    "boxShadow": "0 1px 4px rgba(0,0,0,0.25)",
}
AREA_ALPHA = 170
#: Byte budget of one area layer's JSON; the whole map page must stay under 5 MB.
AREA_LAYER_BUDGET = 3_000_000
#: Raw event points above this are binned on a fine grid before the heatmap gets them.
MAX_HEAT_POINTS = 20_000
DECIMALS = 5  # ~1 m; more only bloats the JSON


class RawJson(str):
    """Layer data already written as JSON text; :class:`_CompactDeck` puts it into the deck's JSON as is.

    The big layers of a view (thousands of venues, areas, event points) are written straight to text:
    no Python record per row for the JSON encoder to walk, and nothing for the garbage collector to
    track (records of dicts and lists promoted per view set off full collections of ~100 ms).
    """


def layer_data(layer: pdk.Layer):
    """A layer's data as Python objects (RawJson parsed), as the browser receives it."""
    data = layer.data
    return json.loads(data) if isinstance(data, RawJson) else data


_js_str = json.encoder.encode_basestring  # a JSON string literal, non-ASCII kept (C-accelerated)


class _CompactDeck(pdk.Deck):
    """A Deck whose JSON has no indentation (pydeck's ``indent=2`` multiplies a GeoJSON's size), with
    :class:`RawJson` layer data spliced in unparsed."""

    def to_json(self) -> str:
        raw: dict[str, str] = {}
        swapped = []
        for layer in self.layers:
            if isinstance(layer.data, RawJson):
                token = f"@@raw-json-{uuid.uuid4().hex}@@"
                raw[json.dumps(token)] = layer.data
                swapped.append((layer, layer.data))
                layer.data = token
        try:
            text = json.dumps(
                self, sort_keys=True, default=default_serialize, separators=(",", ":"), ensure_ascii=False
            )
        finally:
            for layer, data in swapped:
                layer.data = data
        for token, data in raw.items():
            text = text.replace(token, data, 1)
        return text


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _rgb(value) -> list[int]:
    return [int(c) for c in tuple(value)[:3]]


def _safety_code(value) -> SafetyCode:
    if isinstance(value, SafetyCode):
        return value
    try:
        return SafetyCode(value)
    except ValueError:
        return SafetyCode.from_label(value)


def _category_label(value) -> str:
    if _missing(value):
        return "—"
    try:
        return VenueCategory(value).label
    except ValueError:
        return str(value)


# ---------------------------------------------------------------- geometry for the browser


def _round_coords(xy: np.ndarray) -> np.ndarray:
    return np.round(xy, DECIMALS)


def simplify_for_display(geoms, max_coords: int, *, pixels: int = 4000):
    """Simplify an array of (Multi)Polygons for drawing: always below a pixel at the zoom that shows all of
    them on a ``pixels``-wide screen, then coarser (doubling the tolerance) until at most ``max_coords``,
    but never beyond a quarter of a typical polygon's width, so every shape stays recognisable.

    Coverage simplification keeps shared edges shared (no gaps or overlaps between neighbours that share
    vertices); a set it cannot handle falls back to per-polygon, topology-preserving simplification.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return geoms
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    extent = max(maxx - minx, maxy - miny, 1e-6)
    tolerance = extent / pixels
    ceiling = max(tolerance, 0.25 * float(np.median(np.sqrt(shapely.area(geoms)))))
    while True:
        try:
            out = shapely.coverage_simplify(geoms, tolerance)
        except shapely.errors.GEOSException:
            out = shapely.simplify(geoms, tolerance, preserve_topology=True)
        if int(shapely.get_num_coordinates(out).sum()) <= max_coords or tolerance >= ceiling:
            return out
        tolerance = min(tolerance * 2, ceiling)


def _geojson_geometry(geom) -> dict:
    return shapely.geometry.mapping(geom)


def _geometry_json(geoms) -> list[str]:
    """GeoJSON geometry text of each geometry (5-decimal coordinates are written as they are)."""
    return [json.dumps(_geojson_geometry(g), separators=(",", ":")) for g in geoms]


def _max_coords(n_features: int, budget_bytes: int) -> int:
    # ~21 bytes per "[118.12345,28.12345]," and ~260 bytes of properties and structure per feature.
    return max(1000, (budget_bytes - 260 * n_features) // 21)


def display_geojson(geoms, *, budget_bytes: int = AREA_LAYER_BUDGET) -> list[str]:
    """GeoJSON geometries of WGS84 (Multi)Polygons as the browser gets them: in the display CRS, rounded
    to 5 decimals, and simplified only when their coordinates would not fit ``budget_bytes``."""
    geoms = offline.geometry_to_display(np.asarray(geoms, dtype=object))
    max_coords = _max_coords(len(geoms), budget_bytes)
    if len(geoms) and int(shapely.get_num_coordinates(geoms).sum()) > max_coords:
        geoms = simplify_for_display(geoms, max_coords)
    return _geometry_json(shapely.transform(geoms, _round_coords))


class ShapeCache:
    """The display GeoJSON of every unit of a geography, converted once and reused by every view.

    ``geometry``: WGS84 geometries indexed by unit id (a frame loaded once per process and not changed
    afterwards). A view whose units fit the byte budget takes their cached shapes; a bigger one
    (a detailed boundary file) is simplified for that view by :func:`display_geojson`.
    """

    def __init__(self, geometry: gpd.GeoSeries):
        self.crs = offline.tile_crs()
        raw = np.asarray(geometry, dtype=object)
        ok = ~(shapely.is_missing(raw) | shapely.is_empty(raw))
        shown = shapely.transform(offline.geometry_to_display(raw[ok]), _round_coords)
        ids = geometry.index[ok]
        self.coords = dict(zip(ids, shapely.get_num_coordinates(shown).tolist(), strict=True))
        self.shapes = dict(zip(ids, _geometry_json(shown), strict=True))

    def geojson(self, ids: Sequence, *, budget_bytes: int = AREA_LAYER_BUDGET) -> list[str] | None:
        """The cached shapes of ``ids`` (None for a unit without geometry), or None when over budget."""
        total = sum(self.coords.get(i, 0) for i in ids)
        if total > _max_coords(len(ids), budget_bytes):
            return None
        return [self.shapes.get(i) for i in ids]


def _area_rgbs(features: pd.DataFrame) -> list[list[int]]:
    if "rgb" in features:
        return [_rgb(v) for v in features["rgb"]]
    return [_rgb(CLASS_RGB[RiskClass(c)]) for c in features["risk_class"]]


def area_layer(
    features: gpd.GeoDataFrame,
    *,
    budget_bytes: int = AREA_LAYER_BUDGET,
    geometries: Sequence[str | None] | None = None,
) -> pdk.Layer:
    """A pickable GeoJsonLayer (id ``areas``) of areas filled with their risk colour.

    ``features``: ``id``, ``name``, ``class_label``, ``score``, ``rgb`` (or ``risk_class``), ``geometry``
    (WGS84) and optionally ``code`` (kept in the properties for drill-down). Geometries are shifted to
    the display CRS, simplified to fit ``budget_bytes`` and rounded to 5 decimals
    (:func:`display_geojson`), unless ``geometries`` gives them ready, one per row (:class:`ShapeCache`).
    """
    if geometries is None:
        raw = np.asarray(features["geometry"], dtype=object)
        keep = ~(shapely.is_missing(raw) | shapely.is_empty(raw))
        features = features[keep]
        geometries = display_geojson(raw[keep], budget_bytes=budget_bytes)
    else:
        keep = np.array([g is not None for g in geometries], dtype=bool)
        features = features[keep]
        geometries = [g for g in geometries if g is not None]
    rgbs = _area_rgbs(features)
    ids = features["id"].tolist() if "id" in features else [None] * len(features)
    codes = features["code"].tolist() if "code" in features else None
    out = []
    for i, (uid, name, label, score, geom) in enumerate(
        zip(
            ids,
            features["name"].tolist(),
            features["class_label"].tolist(),
            features["score"].tolist(),
            geometries,
            strict=True,
        )
    ):
        shown = repr(round(float(score), 1)) if not _missing(score) else '"—"'
        code = f',"code":{_js_str(str(codes[i]))}' if codes is not None else ""
        out.append(
            f'{{"geometry":{geom},"properties":{{"class_label":{_js_str(str(label))}{code},'
            f'"fill":[{rgbs[i][0]},{rgbs[i][1]},{rgbs[i][2]},{AREA_ALPHA}],'
            f'"id":{int(uid) if not _missing(uid) else i},"name":{_js_str(str(name))},"score":{shown}}},'
            f'"type":"Feature"}}'
        )
    data = RawJson('{"features":[' + ",".join(out) + '],"type":"FeatureCollection"}')
    return pdk.Layer(
        "GeoJsonLayer",
        data=data,
        id="areas",
        pickable=True,
        stroked=True,
        filled=True,
        get_fill_color="properties.fill",
        get_line_color=[255, 255, 255, 230],
        line_width_units="'pixels'",
        get_line_width=1,
        line_width_min_pixels=1,
        auto_highlight=True,
        highlight_color=[255, 255, 255, 80],
    )


# ---------------------------------------------------------------- venues


def _positions(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = offline.to_display(df["lon"].to_numpy(dtype=float), df["lat"].to_numpy(dtype=float))
    return np.round(np.atleast_1d(lon), DECIMALS), np.round(np.atleast_1d(lat), DECIMALS)


def _with_position(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["lon"].notna() & df["lat"].notna()]


def _code_values(values) -> list[SafetyCode]:
    """SafetyCode of each value (member, value or label), converting each distinct value once."""
    seen: dict = {}
    return [seen[v] if v in seen else seen.setdefault(v, _safety_code(v)) for v in values]


def venue_points_layer(df: pd.DataFrame, *, radius_m: float = 15, min_pixels: float = 3) -> pdk.Layer:
    """A pickable ScatterplotLayer (id ``venues``) of venues coloured by 平安码, for township level and below.

    ``df``: ``lon``, ``lat``, ``name``, ``code`` (SafetyCode value) or ``rgb`` + ``code_label``, and
    ``category`` (VenueCategory value) or ``category_label``; ``id`` if present is kept.
    """
    df = _with_position(df)
    lon, lat = _positions(df)
    # Columns as plain lists first (.tolist()): iterating pandas' Arrow-backed strings is slow.
    codes = _code_values(df["code"].tolist()) if "code" in df else None
    if "rgb" in df:
        fills = ["[{},{},{},235]".format(*_rgb(v)) for v in df["rgb"].tolist()]
    else:
        fill_of = {c: "[{},{},{},235]".format(*SAFETY_CODE_RGB[c]) for c in SafetyCode}
        fills = [fill_of[c] for c in codes]
    if "code_label" in df:
        code_labels = [_js_str(str(v)) for v in df["code_label"].tolist()]
    else:
        code_labels = [_js_str(c.label) for c in codes]
    labels: dict = {}
    if "category_label" in df:
        cat_labels = [
            labels[c] if c in labels else labels.setdefault(c, _js_str(str(c)))
            for c in df["category_label"].tolist()
        ]
    else:
        cat_labels = [
            labels[c] if c in labels else labels.setdefault(c, _js_str(_category_label(c)))
            for c in df["category"].tolist()
        ]
    ids = [f',"id":{int(i)}' for i in df["id"].tolist()] if "id" in df else [""] * len(df)
    records = [
        f'{{"c":{fill},"class_label":{cat}{uid},"name":{_js_str(str(name))},"p":[{x},{y}],"score":{code}}}'
        for fill, cat, uid, name, x, y, code in zip(
            fills, cat_labels, ids, df["name"].tolist(), lon.tolist(), lat.tolist(), code_labels, strict=True
        )
    ]
    records = RawJson("[" + ",".join(records) + "]")
    return pdk.Layer(
        "ScatterplotLayer",
        data=records,
        id="venues",
        pickable=True,
        get_position="p",
        get_fill_color="c",
        get_radius=radius_m,
        radius_units="'meters'",
        radius_min_pixels=min_pixels,
        radius_max_pixels=14,
        stroked=True,
        get_line_color=[255, 255, 255, 255],
        line_width_units="'pixels'",
        get_line_width=1,
        auto_highlight=True,
    )


def venue_cluster_layer(df: pd.DataFrame) -> pdk.Layer:
    """A ScatterplotLayer (id ``venue_clusters``) of pre-aggregated venue clusters, for city/county views.

    ``df``: ``lon``, ``lat``, ``count`` and either ``rgb`` or per-code counts ``red``/``yellow``/``green``
    (the colour is then the worst code present); circles grow with the square root of ``count``.
    """
    df = _with_position(df)
    df = df[df["count"].fillna(0) > 0]
    lon, lat = _positions(df)
    counts = df["count"].astype(int).tolist()
    present = [c for c in SafetyCode if c.value in df]
    per_code = {c: df[c.value].fillna(0).astype(int).to_numpy() for c in present}
    if "rgb" in df:
        rgbs = [_rgb(v) for v in df["rgb"]]
    else:  # the worst code present: red, yellow, green
        worst = (
            np.select(
                [per_code[c] > 0 for c in present],
                [i for i, c in enumerate(SafetyCode) if c in per_code],
                default=list(SafetyCode).index(SafetyCode.GREEN),
            )
            if present
            else np.full(len(df), list(SafetyCode).index(SafetyCode.GREEN))
        )
        palette = [_rgb(SAFETY_CODE_RGB[c]) for c in SafetyCode]
        rgbs = [palette[k] for k in worst.tolist()]
    names = [str(n or "场所聚合") for n in df["name"]] if "name" in df else ["场所聚合"] * len(df)
    label_columns = [[f"{c.label} {n:,}" for n in per_code[c].tolist()] for c in present]
    labels = (
        [" / ".join(parts) for parts in zip(*label_columns, strict=True)] if present else ["场所"] * len(df)
    )
    radii = np.round(np.minimum(36.0, 4.0 + 2.2 * np.sqrt(np.asarray(counts, dtype=float))), 1).tolist()
    records = [
        f'{{"c":[{r},{g},{b},210],"class_label":{_js_str(label)},"name":{_js_str(name)},"p":[{x},{y}],'
        f'"r":{radius},"score":"共 {count:,} 个"}}'
        for (r, g, b), label, name, x, y, radius, count in zip(
            rgbs, labels, names, lon.tolist(), lat.tolist(), radii, counts, strict=True
        )
    ]
    records = RawJson("[" + ",".join(records) + "]")
    return pdk.Layer(
        "ScatterplotLayer",
        data=records,
        id="venue_clusters",
        pickable=True,
        get_position="p",
        get_fill_color="c",
        get_radius="r",
        radius_units="'pixels'",
        stroked=True,
        get_line_color=[255, 255, 255, 255],
        line_width_units="'pixels'",
        get_line_width=1,
        auto_highlight=True,
    )


# ---------------------------------------------------------------- events


def _weights(df: pd.DataFrame) -> np.ndarray:
    if "weight" in df:
        return df["weight"].fillna(0).to_numpy(dtype=float)
    return np.ones(len(df))


def event_heat_layer(
    df: pd.DataFrame, *, max_points: int = MAX_HEAT_POINTS, radius_pixels: int = 40
) -> pdk.Layer:
    """A HeatmapLayer (id ``events``) over ``lon``, ``lat`` and optional ``weight``; binned when many."""
    df = _with_position(df)
    lon, lat = _positions(df)
    lon, lat, weight = bin_points(lon, lat, _weights(df), max_points)
    lon, lat = np.round(lon, DECIMALS), np.round(lat, DECIMALS)
    records = RawJson(
        "["
        + ",".join(
            f'{{"p":[{x},{y}],"w":{w}}}'
            for x, y, w in zip(
                lon.tolist(), lat.tolist(), np.round(np.asarray(weight, dtype=float), 3).tolist(), strict=True
            )
        )
        + "]"
    )
    return pdk.Layer(
        "HeatmapLayer",
        data=records,
        id="events",
        get_position="p",
        get_weight="w",
        aggregation="'SUM'",
        radius_pixels=radius_pixels,
        opacity=0.75,
        pickable=False,
    )


def event_hex_layer(df: pd.DataFrame, *, size_m: float | None = None) -> pdk.Layer:
    """A pickable PolygonLayer (id ``events_hex``) of event counts per hexagon, binned server-side."""
    df = _with_position(df)
    lon = df["lon"].to_numpy(dtype=float)
    lat = df["lat"].to_numpy(dtype=float)
    size = size_m or (default_hex_size(lon, lat) if len(lon) else 500.0)
    polygons, counts = hexbin(lon, lat, size, _weights(df))
    records = []
    if len(counts):
        flat_lon, flat_lat = offline.to_display(polygons[..., 0].ravel(), polygons[..., 1].ravel())
        rings = np.round(np.stack([flat_lon, flat_lat], axis=-1).reshape(polygons.shape), DECIMALS)
        top = counts.max()
        for ring, count in zip(rings, counts, strict=True):
            step = min(len(EVENT_RAMP) - 1, math.ceil(count / top * len(EVENT_RAMP)) - 1) if top > 0 else 0
            shown = int(count) if float(count).is_integer() else round(float(count), 1)
            records.append(
                {
                    "polygon": ring.tolist(),
                    "c": [*EVENT_RAMP[max(step, 0)], 190],
                    "name": "事件分布",
                    "class_label": f"六边形半径 {size:,.0f} 米",
                    "score": f"{shown:,} 起",
                }
            )
    return pdk.Layer(
        "PolygonLayer",
        data=records,
        id="events_hex",
        pickable=True,
        get_polygon="polygon",
        get_fill_color="c",
        stroked=True,
        get_line_color=[255, 255, 255, 160],
        line_width_units="'pixels'",
        get_line_width=1,
        auto_highlight=True,
    )


# ---------------------------------------------------------------- the base: unit outlines and names

#: The levels drawn under a map of a street or a village (issue 17): where you are, offline.
BASE_LEVELS = ("village", "grid")
#: At this zoom and closer, grid names join the village names.
GRID_NAMES_ZOOM = 14.0
OUTLINE_RGB = _rgb(NO_DATA_RGB)


def units_in_view(units: gpd.GeoDataFrame, bounds: Sequence[float], *, pad: float = 0.5) -> gpd.GeoDataFrame:
    """The villages and grids of ``units`` (WGS84, with ``level`` and ``name``) that meet ``bounds``
    widened by ``pad`` of its size on each side."""
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    dx, dy = max(maxx - minx, 0.002) * pad, max(maxy - miny, 0.002) * pad
    view = shapely.box(minx - dx, miny - dy, maxx + dx, maxy + dy)
    shown = units[units["level"].isin(BASE_LEVELS)]
    hits = shown.sindex.query(view, predicate="intersects") if len(shown) else []
    return shown.iloc[np.sort(np.asarray(hits, dtype=int))]


def _label_points(geoms) -> tuple[np.ndarray, np.ndarray]:
    """A point inside each polygon (not its centroid, which may fall outside), in the display CRS."""
    inside = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    lon, lat = offline.to_display(shapely.get_x(inside), shapely.get_y(inside))
    return np.round(np.atleast_1d(lon), DECIMALS), np.round(np.atleast_1d(lat), DECIMALS)


def outline_layers(units: gpd.GeoDataFrame, *, grid_names: bool = True) -> list[pdk.Layer]:
    """The base of a street-level deck: village and grid outlines (``unit_outlines``, villages thicker)
    and their names (``unit_names``, villages bold; grids only with ``grid_names``)."""
    if units.empty:
        return []
    geoms = display_geojson(np.asarray(units.geometry, dtype=object), budget_bytes=1_000_000)
    levels, names = units["level"].tolist(), units["name"].tolist()
    features = RawJson(
        '{"features":['
        + ",".join(
            f'{{"geometry":{g},"properties":{{"w":{2 if lv == "village" else 1}}},"type":"Feature"}}'
            for g, lv in zip(geoms, levels, strict=True)
        )
        + '],"type":"FeatureCollection"}'
    )
    lon, lat = _label_points(units.geometry)
    labels = [
        {"p": [x, y], "t": str(n), "s": 14 if lv == "village" else 11, "w": 700 if lv == "village" else 400}
        for x, y, n, lv in zip(lon.tolist(), lat.tolist(), names, levels, strict=True)
        if lv == "village" or grid_names
    ]
    return [
        pdk.Layer(
            "GeoJsonLayer",
            data=features,
            id="unit_outlines",
            pickable=False,
            stroked=True,
            filled=False,
            get_line_color=[*OUTLINE_RGB, 210],
            get_line_width="properties.w",
            line_width_units="'pixels'",
        ),
        pdk.Layer(
            "TextLayer",
            data=labels,
            id="unit_names",
            get_position="p",
            get_text="t",
            get_size="s",
            get_color=[*OUTLINE_RGB, 255],
            character_set="'auto'",
            font_settings={"sdf": True},
            outline_width=3,
            outline_color=[255, 255, 255, 230],
            get_text_anchor="'middle'",
            get_alignment_baseline="'center'",
            pickable=False,
        ),
    ]


def _base_units(bounds: Sequence[float]) -> gpd.GeoDataFrame | None:
    """The store's villages and grids around ``bounds`` while a page runs; None elsewhere (tests of the
    builders, the bench) or when the store has no such units."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    from components import store

    units, _ = store.geography()
    view = units_in_view(units, bounds)
    return view if len(view) else None


# ---------------------------------------------------------------- the deck


def fit_view(
    bounds: Sequence[float], *, width: int = 800, height: int = 600, padding_px: int = 24
) -> pdk.ViewState:
    """The view that shows a WGS84 box ``(minlon, minlat, maxlon, maxlat)`` in a width×height viewport."""
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):  # an empty outline: NaN is no JSON
        return pdk.ViewState(longitude=0.0, latitude=0.0, zoom=1.0, pitch=0, bearing=0)
    (x0, x1), (y0, y1) = offline.to_display(np.array([minx, maxx]), np.array([miny, maxy]))
    lon_c, lat_c = (x0 + x1) / 2, (y0 + y1) / 2

    def merc_y(lat: float) -> float:
        lat = max(min(lat, 85.0), -85.0)
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    fx = max((x1 - x0) / 360, 1e-9)
    fy = max((merc_y(y1) - merc_y(y0)) / (2 * math.pi), 1e-9)
    usable_w, usable_h = max(width - 2 * padding_px, 50), max(height - 2 * padding_px, 50)
    zoom = math.log2(min(usable_w / (512 * fx), usable_h / (512 * fy)))
    return pdk.ViewState(
        longitude=round(float(lon_c), 6),
        latitude=round(float(lat_c), 6),
        zoom=round(max(1.0, min(zoom, 17.0)), 2),
        pitch=0,
        bearing=0,
    )


def risk_deck(
    layers: Iterable[pdk.Layer],
    bounds: Sequence[float],
    tooltip_html: str | None = DEFAULT_TOOLTIP,
    *,
    dark: bool = False,
    width: int = 600,
    height: int = 600,
    base: gpd.GeoDataFrame | str | None = "auto",
) -> pdk.Deck:
    """The risk map Deck: local map style (no request off the machine), view fitted to ``bounds``.

    ``width``/``height``: the chart's expected size in pixels, for the initial zoom (pass the real
    ``st.pydeck_chart`` height; a column's width may be guessed low, the map then shows a margin).

    ``map_provider=None``: Streamlit loads ``map_style`` itself whatever the provider; a provider would only
    add a Carto/Mapbox key. The JSON is compact (see :class:`_CompactDeck`). An empty or None
    ``tooltip_html`` means no tooltip. Streamlit HTML-escapes the ``{field}`` values it substitutes.

    ``base``: villages and grids (WGS84, ``level``, ``name``) drawn first as outlines with names
    (:func:`outline_layers`), over the intranet tiles when there are any. ``"auto"``: a map without its
    own areas layer gets the store's units around ``bounds`` while a page runs (an event's spot, an
    inspector's route); None: none.
    """
    layers = list(layers)
    view = fit_view(bounds, width=width, height=height)
    if isinstance(base, str):
        base = None if any(getattr(layer, "id", None) == "areas" for layer in layers) else _base_units(bounds)
    if base is not None:
        layers = [*outline_layers(base, grid_names=view.zoom >= GRID_NAMES_ZOOM), *layers]
    return _CompactDeck(
        layers=layers,
        initial_view_state=view,
        map_style=offline.map_style(dark=dark),
        map_provider=None,
        tooltip={"html": tooltip_html, "style": TOOLTIP_STYLE} if tooltip_html else False,
    )


# ---------------------------------------------------------------- the folium detail map


def _text(value) -> str:
    """Venue data as HTML text: escaped, '—' when missing; dates as YYYY-MM-DD."""
    if _missing(value) or value == "":
        return "—"
    if isinstance(value, datetime | pd.Timestamp):
        value = value.strftime("%Y-%m-%d")
    elif isinstance(value, date):
        value = value.isoformat()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return html.escape(str(value), quote=True)


def _hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


class _PlainAttribution(MacroElement):
    """Only the tile attribution ("内网底图"), without Leaflet's prefix (a link off the intranet and a flag)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.setPrefix(false);
        {% endmacro %}
        """
    )


class MetricScale(MacroElement):
    """A scale bar in metres and kilometres only (folium's ``control_scale`` adds feet and miles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({imperial: false, metric: true, maxWidth: 120}).addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )


#: The labels of :class:`UnitOutlines` and the 定位 button of :class:`LocateControl` (in the map's page).
_FOLIUM_CSS = """
<style>
.leaflet-container { background: @GROUND@; }
.unit-label { background: none; border: none; }
.unit-label span { position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
  color: @TEXT@; font-size: 13px; font-weight: 700;
  text-shadow: 0 0 3px #fff, 0 0 3px #fff, 0 0 2px #fff; pointer-events: none; }
.unit-label-grid span { font-size: 11px; font-weight: 400; display: none; }
.unit-grid-names .unit-label-grid span { display: inline; }
.cockpit-locate a { width: auto !important; height: 40px !important; line-height: 40px !important;
  padding: 0 14px; font-size: 15px; font-weight: 600; color: #1f2328; }
.cockpit-locate-note { max-width: 220px; padding: 4px 8px; font-size: 12px; line-height: 1.4;
  background: rgba(255, 255, 255, 0.95); color: #1f2328; }
.cockpit-locate-note:empty { display: none; }
</style>
""".replace("@TEXT@", hex_color(NO_DATA_RGB)).replace("@GROUND@", offline.LIGHT_BACKGROUND)


def _add_css(m: folium.Map) -> None:
    root = m.get_root()
    if not getattr(root, "_cockpit_css", False):
        root.header.add_child(folium.Element(_FOLIUM_CSS))
        root._cockpit_css = True


class UnitOutlines(MacroElement):
    """Village and grid outlines with their names, drawn from one JSON table (the offline base of a
    folium map). Names are set as text (never HTML); grid names show from :data:`GRID_NAMES_ZOOM` + 1."""

    _template = Template(
        r"""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var units = {{ this.units_json }};
            var styles = {
                village: {color: {{ this.colour }}, weight: 2.5, opacity: 0.9, fill: false},
                grid: {color: {{ this.colour }}, weight: 1, opacity: 0.7, fill: false, dashArray: "4 3"}
            };
            units.forEach(function (u) {
                L.geoJSON(u.g, {style: styles[u.l], interactive: false}).addTo(map);
                var name = document.createElement("span");
                name.textContent = u.n;
                L.marker(u.p, {
                    icon: L.divIcon({className: "unit-label unit-label-" + u.l, html: name, iconSize: [0, 0]}),
                    interactive: false, keyboard: false
                }).addTo(map);
            });
            function grids() {
                map.getContainer().classList.toggle("unit-grid-names", map.getZoom() >= {{ this.grid_zoom }});
            }
            map.on("zoomend", grids);
            grids();
        })();
        {% endmacro %}
        """
    )

    def __init__(self, units: gpd.GeoDataFrame):
        super().__init__()
        self._name = "UnitOutlines"
        geoms = offline.geometry_to_display(np.asarray(units.geometry, dtype=object))
        max_coords = _max_coords(len(geoms), 1_000_000)
        if len(geoms) and int(shapely.get_num_coordinates(geoms).sum()) > max_coords:
            geoms = simplify_for_display(geoms, max_coords)
        geoms = shapely.transform(geoms, _round_coords)
        inside = shapely.point_on_surface(geoms)
        rows = [
            {"g": _geojson_geometry(g), "n": str(n), "l": lv, "p": [round(y, DECIMALS), round(x, DECIMALS)]}
            for g, n, lv, x, y in zip(
                geoms,
                units["name"].tolist(),
                units["level"].tolist(),
                shapely.get_x(inside).tolist(),
                shapely.get_y(inside).tolist(),
                strict=True,
            )
        ]
        self.units_json = _js_json(rows)
        self.colour = _js_json(hex_color(NO_DATA_RGB))
        self.grid_zoom = int(GRID_NAMES_ZOOM + 1)

    def add_to(self, parent, name=None, index=None):
        _add_css(parent)
        return super().add_to(parent, name=name, index=index)


LOCATE_NOT_SECURE = "此页面未通过 HTTPS 打开，浏览器不允许定位。请在地图上点选位置或搜索地名。"
LOCATE_DENIED = "未获得定位权限。请在浏览器设置中允许定位，或在地图上点选位置。"
LOCATE_FAILED = "暂时无法定位，请在地图上点选位置。"


class LocateControl(MacroElement):
    """The 定位 button: the browser's position (WGS84) shifted to the tiles' CRS with ``shift`` (degrees,
    taken at the map's centre: the GCJ-02 offset changes by metres across a town) and given to the map
    as a click there, so the page receives it as the chosen point. Without HTTPS (no secure context) or
    permission it says so in Chinese instead."""

    _template = Template(
        r"""
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            var shift = {{ this.shift_json }};
            var words = {{ this.words_json }};
            var control = L.control({position: "topleft"});
            control.onAdd = function () {
                var box = L.DomUtil.create("div", "leaflet-bar cockpit-locate");
                var button = L.DomUtil.create("a", "", box);
                button.href = "#";
                button.setAttribute("role", "button");
                button.title = "定位到我的位置";
                button.textContent = "定位";
                var note = L.DomUtil.create("div", "cockpit-locate-note", box);
                L.DomEvent.disableClickPropagation(box);
                L.DomEvent.on(button, "click", function (e) {
                    L.DomEvent.preventDefault(e);
                    if (!window.isSecureContext || !navigator.geolocation) {
                        note.textContent = words.not_secure;
                        return;
                    }
                    button.textContent = "定位中…";
                    note.textContent = "";
                    navigator.geolocation.getCurrentPosition(function (pos) {
                        button.textContent = "定位";
                        var here = L.latLng(pos.coords.latitude + shift[1], pos.coords.longitude + shift[0]);
                        map.setView(here, Math.max(map.getZoom(), 17));
                        map.fire("click", {latlng: here});
                    }, function (err) {
                        button.textContent = "定位";
                        note.textContent = err.code === 1 ? words.denied : words.failed;
                    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 30000});
                });
                return box;
            };
            control.addTo(map);
        })();
        {% endmacro %}
        """
    )

    def __init__(self, lon: float, lat: float):
        super().__init__()
        self._name = "LocateControl"
        dlon, dlat = offline.to_display(lon, lat)
        self.shift_json = _js_json([round(float(dlon) - lon, 7), round(float(dlat) - lat, 7)])
        self.words_json = _js_json(
            {"not_secure": LOCATE_NOT_SECURE, "denied": LOCATE_DENIED, "failed": LOCATE_FAILED}
        )

    def add_to(self, parent, name=None, index=None):
        _add_css(parent)
        return super().add_to(parent, name=name, index=index)


def _js_json(value) -> str:
    """``value`` as JSON safe inside an inline <script>: no ``<``, ``>``, ``&``, ``'`` or line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("'", "\\u0027"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


#: The venue card (popup) with ``{slot}`` places; filled by :func:`venue_card` in Python and, for the
#: detail map's markers, by the same substitution in the browser when a card is opened. Every slot
#: receives text already HTML-escaped here (:func:`_card_fields`, :func:`_badge`).
VENUE_CARD_TEMPLATE = (
    "<div class='venue-card' style='font-size:13px;line-height:1.55;min-width:210px'>"
    "<div style='font-weight:600;font-size:14px;margin-bottom:4px'>{name}</div>"
    "<span style='display:inline-block;padding:0 6px;border-radius:3px;background:{badge_bg};"
    "color:{badge_fg}'>{code}</span>"
    "<table style='margin-top:4px;border-collapse:collapse'>"
    + "".join(
        f"<tr><td style='color:#6b7280;padding:1px 8px 1px 0;white-space:nowrap'>{label}</td><td>{{{slot}}}</td></tr>"
        for label, slot in [
            ("类别", "category"),
            ("地址", "address"),
            ("负责人", "person"),
            ("最近检查", "inspected"),
            ("未整改隐患", "hazards"),
        ]
    )
    + "</table></div>"
)
_SLOT = re.compile(r"\{(\w+)\}")
#: The slots a marker carries itself, in order (the badge slots come from its 平安码).
CARD_FIELDS = ["name", "category", "address", "person", "inspected", "hazards"]


def _badge(code: SafetyCode | None) -> dict[str, str]:
    rgb = SAFETY_CODE_RGB[code] if code else (128, 128, 128)
    return {
        "badge_bg": _hex(rgb),
        "badge_fg": "#1f2328" if code == SafetyCode.YELLOW else "#ffffff",
        "code": _text(code.label if code else None),
    }


def _open_hazards(row: Mapping):
    """The venue's open hazards: ``open_hazards``, else ``major`` + ``general`` (the risk map's venue frame)."""
    if "open_hazards" in row:
        return row.get("open_hazards")
    parts = [row.get(k) for k in ("major", "general") if not _missing(row.get(k))]
    return sum(parts) if parts else None


def _card_fields(row: Mapping) -> list[str]:
    """The escaped text of :data:`CARD_FIELDS` for one venue."""
    category = row.get("category_label") if "category_label" in row else _category_label(row.get("category"))
    return [
        _text(row.get("name")),
        _text(category),
        _text(row.get("address")),
        _text(row.get("responsible_person")),
        _text(row.get("last_inspected_on")),
        _text(_open_hazards(row)),
    ]


def venue_card(row: Mapping) -> str:
    """The popup "venue card" of one venue as HTML; every value escaped."""
    code = _safety_code(row["code"]) if not _missing(row.get("code")) else None
    values = {**dict(zip(CARD_FIELDS, _card_fields(row), strict=True)), **_badge(code)}
    return _SLOT.sub(lambda m: values[m.group(1)], VENUE_CARD_TEMPLATE)


class _VenueMarkers(MacroElement):
    """Every venue of a detail map as a CircleMarker with its tooltip and card, drawn from one table.

    One element instead of a marker, a popup and a tooltip element per venue: building and rendering
    thousands of folium elements took seconds for a large village. Each row is ``[lat, lon, code index,
    *CARD_FIELDS]`` with the fields already HTML-escaped; a card's HTML is made from
    :data:`VENUE_CARD_TEMPLATE` when its marker is opened. Data and template reach the script as JSON
    with ``<``, ``>``, ``&`` and quotes escaped, so no venue text can end the script or run.
    """

    _template = Template(
        r"""
        {% macro script(this, kwargs) %}
        (function () {
            var groups = [{% for g in this.groups %}{{ g.get_name() }}{{ "," if not loop.last }}{% endfor %}];
            var codes = {{ this.codes_json }};
            var fields = {{ this.fields_json }};
            var card = {{ this.card_json }};
            var rows = {{ this.rows_json }};
            rows.forEach(function (r) {
                var c = codes[r[2]];
                var v = {badge_bg: c.badge_bg, badge_fg: c.badge_fg, code: c.code};
                for (var i = 0; i < fields.length; i++) { v[fields[i]] = r[3 + i]; }
                var marker = L.circleMarker([r[0], r[1]], {
                    radius: 7, color: "#ffffff", weight: 1.5, fill: true, fillColor: c.fill, fillOpacity: 0.92
                });
                marker.bindTooltip(v.name, {sticky: true});
                marker.bindPopup(function () {
                    return card.replace(/\{(\w+)\}/g, function (_, k) { return v[k]; });
                }, {maxWidth: 320});
                marker.addTo(groups[r[2]]);
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(self, groups: list, rows: list[list]):
        super().__init__()
        self._name = "VenueMarkers"
        self.groups = groups
        self.codes_json = _js_json([{**_badge(c), "fill": _hex(SAFETY_CODE_RGB[c])} for c in SafetyCode])
        self.fields_json = _js_json(CARD_FIELDS)
        self.card_json = _js_json(VENUE_CARD_TEMPLATE)
        self.rows_json = _js_json(rows)


def detail_map(
    boundary_geom, venues: pd.DataFrame, *, height: int = 480, units: gpd.GeoDataFrame | None = None
) -> folium.Map:
    """A folium map of one area: its outline and its venues as CircleMarkers coloured by 平安码.

    ``venues``: ``lon``, ``lat``, ``name``, ``code`` (SafetyCode value) and optionally ``category``
    (or ``category_label``), ``address``, ``responsible_person``, ``last_inspected_on``, ``open_hazards``
    (or ``major`` and ``general``). Every venue opens its card (:func:`venue_card`) when clicked.
    The villages and grids inside are outlined with their names (``units``, or the store's while a
    page runs); the scale is in metres only. Leaflet comes from ``static/``; no tiles unless
    ``COCKPIT_TILE_URL`` is set.
    """
    offline.use_local_assets()
    outline = offline.geometry_to_display(boundary_geom)
    minx, miny, maxx, maxy = outline.bounds
    url = offline.tile_url()
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=14,
        tiles=None,
        height=height,
        control_scale=False,
        attribution_control=bool(url),
    )
    m.add_child(MetricScale())
    if url:
        folium.TileLayer(
            tiles=url, attr=offline.TILE_ATTRIBUTION, name="内网底图", max_zoom=18, control=False
        ).add_to(m)
        m.add_child(_PlainAttribution())
    inner = _base_units(boundary_geom.bounds) if units is None else units
    if inner is not None and len(inner):  # the villages and grids inside, with their names
        inner = inner[shapely.intersects(np.asarray(inner.geometry), boundary_geom.buffer(-1e-6))]
        if len(inner):
            UnitOutlines(inner).add_to(m)
    folium.GeoJson(
        {"type": "Feature", "geometry": _geojson_geometry(outline), "properties": {}},
        name="辖区边界",
        style_function=lambda _: {"color": "#c0392b", "weight": 2.5, "fill": False, "dashArray": "6 4"},
        control=False,
        interactive=False,
    ).add_to(m)

    venues = _with_position(venues)
    lon, lat = _positions(venues)
    order = {c: i for i, c in enumerate(SafetyCode)}
    codes = [order[c] for c in _code_values(venues["code"])]
    rows = [
        [y, x, k, *_card_fields(row)]
        for x, y, k, row in zip(lon.tolist(), lat.tolist(), codes, venues.to_dict("records"), strict=True)
    ]
    rows.sort(key=lambda r: r[2])  # red, yellow, green: markers drawn group by group, as before
    groups = [folium.FeatureGroup(name=f"{c.label}场所") for c in SafetyCode]
    for group in groups:
        group.add_to(m)
    m.add_child(_VenueMarkers(groups, rows))
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def show_detail_map(m: folium.Map, *, key: str | None = None, height: int = 480):
    """Render a detail map with streamlit-folium; returns its ``last_object_clicked`` state."""
    from streamlit_folium import st_folium

    offline.use_local_assets()
    external = offline.external_links(m)
    if external:
        raise ValueError(f"地图引用了外部资源（内网无法加载）：{external}")
    return st_folium(
        m, key=key, height=height, use_container_width=True, returned_objects=["last_object_clicked"]
    )
