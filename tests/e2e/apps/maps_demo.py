"""A tiny page for the offline-maps browser test: one pydeck risk map and one folium detail map."""

import geopandas as gpd
import pandas as pd
import streamlit as st
from shapely.geometry import box

from components import maps
from components.palette import CLASS_RGB
from domain.risk import RiskClass

st.set_page_config(page_title="maps demo", layout="wide")

# Two areas side by side: red on the left (the test samples its colour), green on the right with the venues.
areas = gpd.GeoDataFrame(
    {
        "id": [1, 2],
        "code": ["330802001", "330802002"],
        "name": ["红区街道", "绿区街道"],
        "class_label": [RiskClass.RED.label, RiskClass.GREEN.label],
        "score": [45.2, 1.3],
        "rgb": [CLASS_RGB[RiskClass.RED], CLASS_RGB[RiskClass.GREEN]],
    },
    geometry=[box(118.80, 28.90, 118.87, 28.98), box(118.87, 28.90, 118.94, 28.98)],
    crs="EPSG:4326",
)
venues = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "name": ["<script>alert(1)</script>", "李记小吃", "绿色工厂", "${alert(2)}"],
        "category": ["street_shop", "rental_housing", "general_firm", "hazchem"],
        "code": ["red", "yellow", "green", "red"],
        "address": ["衢州市柯城区<b>1号</b>", None, "衢州市", "`x`"],
        "responsible_person": ["张三", None, "王五", "赵六"],
        "last_inspected_on": [pd.Timestamp("2026-11-01"), None, pd.NaT, pd.Timestamp("2026-10-15")],
        "open_hazards": [2, 0, None, 1],
        "lon": [118.90, 118.91, 118.92, 118.905],
        "lat": [28.93, 28.95, 28.94, 28.96],
    }
)

# Both maps fit in the test's 1440×900 viewport, so Playwright clicks land on the real markers.
deck = maps.risk_deck(
    [maps.area_layer(areas), maps.venue_points_layer(venues)], tuple(areas.total_bounds), height=340
)
st.pydeck_chart(deck, height=340, key="deck")
# No store behind this page: the detail map is given its (empty) inner units instead of reading them.
no_units = gpd.GeoDataFrame({"name": [], "level": []}, geometry=[], crs="EPSG:4326")
clicked = maps.show_detail_map(
    maps.detail_map(areas.union_all(), venues, units=no_units), key="detail", height=340
)
st.caption(f"clicked: {clicked.get('last_object_clicked') if clicked else None}")
