"""The 随手拍 location picker (issue 17): an offline map over the village and grid outlines with their
names, a 定位 button (the browser's position), a search by village, grid or venue name, and the grid and
village the chosen point falls in, shown before the report is sent.

The page keeps the chosen point; :func:`show_pick_map` and :func:`place_search` hand back a new one
(WGS84) when the person clicks, locates or searches, and :func:`show_where` says where it is.
"""

from __future__ import annotations

import folium
import shapely
import streamlit as st
from streamlit_folium import st_folium

from components import offline, store
from components.maps import LocateControl, MetricScale, UnitOutlines, _PlainAttribution, units_in_view
from components.palette import SAFETY_CODE_RGB, hex_color
from components.text import md_text
from domain.vocabulary import AdminLevel, SafetyCode
from geo.crs import gcj02_to_wgs84
from services.locate import locate_grid
from services.places import venues_in

#: How far around the chosen point the map draws units (degrees; ~2 km).
AROUND = 0.02


def pick_map_figure(lon: float, lat: float, units) -> folium.Map:
    """The picker's map (no rendering): centred on (lon, lat) with a marker there, the villages and grids
    of ``units`` around it outlined and named, 定位, a scale in metres, and no attribution but the
    intranet tiles' name (no Leaflet link, no flag)."""
    offline.use_local_assets()
    dlon, dlat = offline.to_display(lon, lat)
    url = offline.tile_url()
    m = folium.Map(
        location=[float(dlat), float(dlon)],
        zoom_start=16,
        tiles=None,
        control_scale=False,
        attribution_control=bool(url),
    )
    if url:
        folium.TileLayer(tiles=url, attr=offline.TILE_ATTRIBUTION, control=False).add_to(m)
        m.add_child(_PlainAttribution())
    around = units_in_view(units, (lon - AROUND, lat - AROUND, lon + AROUND, lat + AROUND), pad=0)
    if len(around):
        UnitOutlines(around).add_to(m)
    MetricScale().add_to(m)
    LocateControl(lon, lat).add_to(m)
    folium.CircleMarker(
        [float(dlat), float(dlon)],
        radius=9,
        color=hex_color(SAFETY_CODE_RGB[SafetyCode.RED]),
        weight=3,
        fill=True,
        fill_opacity=0.35,
        tooltip="上报位置",
    ).add_to(m)
    return m


def show_pick_map(lon: float, lat: float, *, key: str, height: int = 320) -> dict | None:
    """The picker (:func:`pick_map_figure` over the store's units); the person's last click or 定位 as
    ``{"lng", "lat"}`` (WGS84), else None."""
    units, _ = store.geography()
    m = pick_map_figure(lon, lat, units)
    out = st_folium(m, height=height, use_container_width=True, key=key, returned_objects=["last_clicked"])
    click = (out or {}).get("last_clicked")
    if not click:
        return None
    # Clicks come in display coordinates; convert back when the basemap is GCJ-02.
    wlon, wlat = click["lng"], click["lat"]
    if offline.tile_crs() == "gcj02":
        wlon, wlat = gcj02_to_wgs84(wlon, wlat)
    return {"lng": float(wlon), "lat": float(wlat)}


def _options(lon: float, lat: float, *, staff: bool) -> dict[str, tuple[str, float, float]]:
    """Search options around (lon, lat): the villages and grids of its township and the venues in
    them, as option key → (label, lon, lat)."""
    tree = store.tree()
    units, _ = store.geography()
    with store.reader() as conn:
        grid = locate_grid(conn, lon, lat)
        township = tree.grid_township(grid) if grid is not None else None
        ids = (
            [*tree.descendants(township, AdminLevel.VILLAGE), *tree.grids_under(township)]
            if township is not None
            else units_in_view(units, (lon - AROUND, lat - AROUND, lon + AROUND, lat + AROUND)).index.tolist()
        )
        grids = [i for i in ids if tree.level(i) is AdminLevel.GRID]
        venues = venues_in(conn, grids, public_only=not staff)
    options: dict[str, tuple[str, float, float]] = {}
    shown = units.loc[[i for i in ids if i in units.index]]
    inside = shapely.point_on_surface(shown.geometry.to_numpy())
    for uid, x, y in zip(shown.index, shapely.get_x(inside), shapely.get_y(inside), strict=True):
        parent = tree.parent(uid)
        if tree.level(uid) is AdminLevel.GRID:
            label = f"{tree.name(uid)} · {tree.name(parent)}"
        else:
            label = f"{tree.name(uid)}（{tree.level(uid).label}）"
        options[f"u{uid}"] = (label, float(x), float(y))
    for v in venues.itertuples(index=False):
        options[f"v{v.id}"] = (f"{v.name} · {v.address}", float(v.lon), float(v.lat))
    return options


def place_search(lon: float, lat: float, *, key: str, staff: bool = False) -> tuple[float, float] | None:
    """搜索村、网格或场所: a searchable list of the villages, grids and venues of the township around
    (lon, lat); the chosen place's point (WGS84) once, when it is chosen. Citizens (``staff`` False)
    see the public venues only: shops, markets, sites and firms, never a home (services.places)."""
    options = _options(lon, lat, staff=staff)
    choice = st.selectbox(
        "搜索村（社区）、网格或场所",
        list(options),
        index=None,
        format_func=lambda k: options[k][0],
        placeholder="输入名称搜索，如：菜场、某某村",
        key=key,
    )
    applied = f"{key}_applied"
    if choice is None or choice == st.session_state.get(applied) or choice not in options:
        return None
    st.session_state[applied] = choice
    _, x, y = options[choice]
    return x, y


def show_where(lon: float, lat: float) -> int | None:
    """所在位置: the grid, village and township of (lon, lat), or a warning when it lies outside every
    grid (the report would be refused); the grid id, else None."""
    tree = store.tree()
    with store.reader() as conn:
        grid = locate_grid(conn, lon, lat)
    if grid is None:
        st.warning("所选位置不在本系统的任何网格内，请在地图上重新选择。")
        return None
    village, township = tree.grid_village(grid), tree.grid_township(grid)
    parts = [tree.name(grid), tree.name(village), tree.name(township)]
    st.markdown(
        "<div data-testid='pick-where'>所在位置：<b>"
        + " · ".join(md_text(p, html=True) for p in parts if p != "—")
        + "</b></div>",
        unsafe_allow_html=True,
    )
    return grid
