"""Offline maps: local Leaflet for folium, local MapLibre styles for pydeck, and the display CRS shift."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike

from geo.crs import wgs84_to_gcj02

#: Served by Streamlit's static serving (``[server] enableStaticServing``) under ``/app/static/``.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
TILE_URL_ENV = "COCKPIT_TILE_URL"
TILE_CRS_ENV = "COCKPIT_TILE_CRS"
TILE_ATTRIBUTION = "内网底图"

BLANK_STYLE = "map/blank-style.json"
BLANK_STYLE_DARK = "map/blank-style-dark.json"
TILES_STYLE = "map/tiles-style.json"
TILES_STYLE_DARK = "map/tiles-style-dark.json"
LEAFLET_JS = "vendor/leaflet/leaflet.js"
LEAFLET_CSS = "vendor/leaflet/leaflet.css"

# Background colours of the blank styles (kept equal to the committed JSON files).
LIGHT_BACKGROUND = "#eef0f3"
DARK_BACKGROUND = "#0b1a2e"

_log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_written: dict[str, str] = {}  # style path -> the content this process wrote


def static_url(path: str) -> str:
    """The URL path of ``static/<path>``, honouring ``server.baseUrlPath``; host-relative, so any host name works."""
    base = ""
    try:
        from streamlit import config

        base = (config.get_option("server.baseUrlPath") or "").strip("/")
    except Exception:  # outside a Streamlit process the option may be unset
        base = ""
    prefix = f"/{base}" if base else ""
    return f"{prefix}/app/static/{path.lstrip('/')}"


def use_local_assets() -> None:
    """Point folium at the vendored Leaflet instead of its CDNs (idempotent; call before rendering a map).

    folium.Map is the only element we use that carries CDN links (class-level ``default_js`` /
    ``default_css``): Leaflet plus jQuery, Bootstrap, Font Awesome and awesome-markers, which we do not use.
    """
    import folium

    folium.Map.default_js = [("leaflet", static_url(LEAFLET_JS))]
    folium.Map.default_css = [("leaflet_css", static_url(LEAFLET_CSS))]


def is_off_host(url: str) -> bool:
    """True for a URL naming a host (http(s)://…, //host/…); local paths and data: URIs are on-host."""
    parsed = urlparse(url.strip())
    return bool(parsed.netloc) or parsed.scheme not in ("", "data", "blob")


def external_links(m) -> list[str]:
    """Every off-host JS/CSS link a folium map would make streamlit-folium load (empty when offline-safe)."""
    import branca.colormap
    import folium.elements

    links: list[str] = []

    def walk(el) -> None:
        if isinstance(el, branca.colormap.ColorMap):
            links.append("https://d3js.org/d3.v4.min.js")  # streamlit-folium adds d3 from a CDN for these
        if isinstance(el, folium.elements.JSCSSMixin):
            links.extend(url for _, url in [*el.default_js, *el.default_css])
        for child in getattr(el, "_children", {}).values():
            walk(child)

    walk(m)
    return [url for url in dict.fromkeys(links) if is_off_host(url)]


def tile_url() -> str | None:
    """The intranet XYZ raster tile template from ``COCKPIT_TILE_URL`` (``…/{z}/{x}/{y}.png``), or None."""
    url = os.environ.get(TILE_URL_ENV, "").strip()
    return url or None


def tile_crs() -> Literal["gcj02", "wgs84"]:
    """The CRS of the tiles (``COCKPIT_TILE_CRS``: ``gcj02`` or ``wgs84``, default wgs84)."""
    raw = os.environ.get(TILE_CRS_ENV, "").strip().lower().replace("-", "").replace("_", "")
    if raw in ("", "wgs84", "epsg4326"):
        return "wgs84"
    if raw == "gcj02":
        return "gcj02"
    raise ValueError(f"{TILE_CRS_ENV} must be gcj02 or wgs84, not {os.environ[TILE_CRS_ENV]!r}")


def _tiles_style(url: str, dark: bool) -> dict:
    raster_paint = {"raster-saturation": -0.5, "raster-brightness-max": 0.55} if dark else {}
    return {
        "version": 8,
        "name": "cockpit-intranet-tiles-dark" if dark else "cockpit-intranet-tiles",
        "sources": {
            "intranet": {
                "type": "raster",
                "tiles": [url],
                "tileSize": 256,
                "maxzoom": 18,
                "attribution": TILE_ATTRIBUTION,
            }
        },
        "layers": [
            {
                "id": "background",
                "type": "background",
                "paint": {"background-color": DARK_BACKGROUND if dark else LIGHT_BACKGROUND},
            },
            {"id": "intranet-tiles", "type": "raster", "source": "intranet", "paint": raster_paint},
        ],
    }


def _write_once(path: str, content: str) -> None:
    """Write ``static/<path>`` unless this process already wrote the same content (atomic replace)."""
    with _LOCK:
        target = STATIC_DIR / path
        if _written.get(path) == content and target.exists():
            return
        if not (target.exists() and target.read_text(encoding="utf-8") == content):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, target)
        _written[path] = content


def map_style(dark: bool = False) -> str:
    """The pydeck ``map_style``: a local MapLibre style URL (blank, or the intranet tiles when configured).

    With ``COCKPIT_TILE_URL`` set, ``static/map/tiles-style[-dark].json`` is written on first use and
    its URL returned, with a ``?v=`` of the tile URL's hash so a browser never keeps a stale style.
    """
    url = tile_url()
    if not url:
        return static_url(BLANK_STYLE_DARK if dark else BLANK_STYLE)
    path = TILES_STYLE_DARK if dark else TILES_STYLE
    content = json.dumps(_tiles_style(url, dark), ensure_ascii=False, indent=2) + "\n"
    try:
        _write_once(path, content)
    except OSError as exc:  # a read-only install: keep the map usable on the blank style
        _log.warning("cannot write %s (%s); using the blank map style", STATIC_DIR / path, exc)
        return static_url(BLANK_STYLE_DARK if dark else BLANK_STYLE)
    version = hashlib.sha256(content.encode()).hexdigest()[:10]
    return f"{static_url(path)}?v={version}"


def to_display(lon: ArrayLike, lat: ArrayLike):
    """WGS84 lon/lat (scalars or arrays) in the tiles' CRS: shifted to GCJ-02 when ``tile_crs()`` is gcj02."""
    if tile_crs() == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        return float(lon), float(lat)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def _shift_coords(xy: np.ndarray) -> np.ndarray:
    lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def geometry_to_display(geoms):
    """WGS84 shapely geometries (one, an array, or a GeoSeries) in the tiles' CRS, same shape and type."""
    if tile_crs() != "gcj02":
        return geoms
    if isinstance(geoms, gpd.GeoDataFrame):
        return geoms.set_geometry(geometry_to_display(geoms.geometry))
    if isinstance(geoms, gpd.GeoSeries):
        return gpd.GeoSeries(
            shapely.transform(geoms.to_numpy(), _shift_coords), index=geoms.index, crs=geoms.crs
        )
    return shapely.transform(geoms, _shift_coords)
