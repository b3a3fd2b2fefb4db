"""A small offline folium map to pick a location by clicking; returns the last click (lng, lat) or None."""

from __future__ import annotations

import folium
from streamlit_folium import st_folium

from components import offline
from geo.crs import gcj02_to_wgs84


def show_pick_map(lon: float, lat: float, *, key: str, height: int = 320) -> dict | None:
    """Show a map centred on (lon, lat) with a marker there; the user's last click as {"lng", "lat"} (WGS84)."""
    offline.use_local_assets()
    dlon, dlat = offline.to_display(lon, lat)
    m = folium.Map(location=[float(dlat), float(dlon)], zoom_start=16, tiles=None, control_scale=True)
    url = offline.tile_url()
    if url:
        folium.TileLayer(tiles=url, attr="内网底图").add_to(m)
    folium.CircleMarker([float(dlat), float(dlon)], radius=8, color="#c0392b", fill=True, tooltip="上报位置").add_to(m)
    out = st_folium(m, height=height, use_container_width=True, key=key, returned_objects=["last_clicked"])
    click = (out or {}).get("last_clicked")
    if not click:
        return None
    # Clicks come in display coordinates; convert back when the basemap is GCJ-02.
    wlon, wlat = click["lng"], click["lat"]
    if offline.tile_crs() == "gcj02":
        wlon, wlat = gcj02_to_wgs84(wlon, wlat)
    return {"lng": float(wlon), "lat": float(wlat)}
