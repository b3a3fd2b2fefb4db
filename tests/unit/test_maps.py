"""Map builders: no URL off the machine, local styles, the GCJ-02 display shift, escaping, payload size."""

from __future__ import annotations

import json
import re

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import box

from components import maps, offline
from components.palette import CLASS_RGB, SAFETY_CODE_RGB
from domain.risk import RiskClass
from domain.vocabulary import SafetyCode
from geo.bins import hexbin
from geo.crs import area_km2

TILE_URL = "http://tiles.intranet/{z}/{x}/{y}.png"
URL_RE = re.compile(r"(?:https?:)?//[^\s\"'<>)\\]+", re.IGNORECASE)
# Where HTML/CSS make the browser fetch: src=, href=, url( ).
FETCH_RE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""", re.IGNORECASE)
GEOD = Geod(ellps="WGS84")
XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _no_tiles(monkeypatch):
    monkeypatch.delenv(offline.TILE_URL_ENV, raising=False)
    monkeypatch.delenv(offline.TILE_CRS_ENV, raising=False)


@pytest.fixture(autouse=True)
def _styles_to_tmp(tmp_path, monkeypatch):
    """Styles written for COCKPIT_TILE_URL go to a temporary static folder, not the repository's."""
    monkeypatch.setattr(offline, "STATIC_DIR", tmp_path / "static")
    monkeypatch.setattr(offline, "_written", {})


def _areas(n: int = 3) -> gpd.GeoDataFrame:
    classes = list(RiskClass)
    return gpd.GeoDataFrame(
        {
            "id": range(1, n + 1),
            "code": [f"3308020010{i:02d}" for i in range(n)],
            "name": [f"第{i}网格" for i in range(n)],
            "class_label": [classes[i % 5].label for i in range(n)],
            "score": [12.345 * i for i in range(n)],
            "rgb": [CLASS_RGB[classes[i % 5]] for i in range(n)],
        },
        geometry=[box(118.80 + 0.01 * i, 28.90, 118.81 + 0.01 * i, 28.91) for i in range(n)],
        crs="EPSG:4326",
    )


def _venues() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": [XSS, "李记小吃", "${alert(2)}"],
            "category": ["street_shop", "rental_housing", "hazchem"],
            "code": ["red", "yellow", "green"],
            "address": ["衢州市柯城区<b>1号</b>", None, "`x`\\x3cimg src=x onerror=alert(3)\\x3e"],
            "responsible_person": ["张三", None, "王五"],
            "last_inspected_on": [pd.Timestamp("2026-11-01"), None, pd.NaT],
            "open_hazards": [2, 0, None],
            "lon": [118.801, 118.802, 118.803],
            "lat": [28.901, 28.902, 28.903],
        }
    )


def _events(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"lon": 118.85 + rng.normal(0, 0.02, n), "lat": 28.95 + rng.normal(0, 0.02, n)})


def _clusters() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grid_id": [1, 2],
            "lon": [118.8, 118.9],
            "lat": [28.9, 29.0],
            "count": [12, 3],
            "red": [1, 0],
            "yellow": [4, 0],
            "green": [7, 3],
        }
    )


def _all_layers():
    return [
        maps.area_layer(_areas()),
        maps.venue_points_layer(_venues()),
        maps.venue_cluster_layer(_clusters()),
        maps.event_heat_layer(_events()),
        maps.event_hex_layer(_events()),
    ]


def _deck_json(**kw) -> dict:
    return json.loads(maps.risk_deck(_all_layers(), (118.80, 28.90, 118.83, 28.91), **kw).to_json())


def _coords(layer_json: dict) -> np.ndarray:
    """Every lon/lat pair in a layer's data (GeoJSON features, points or polygons)."""
    data = layer_json["data"]
    if isinstance(data, dict):
        geoms = [shapely.geometry.shape(f["geometry"]) for f in data["features"]]
        return shapely.get_coordinates(geoms)
    pts = [r["p"] for r in data if "p" in r] + [xy for r in data if "polygon" in r for xy in r["polygon"]]
    return np.asarray(pts, dtype=float)


# ---------------------------------------------------------------- no request off the machine


def test_each_layer_and_the_deck_hold_no_url_and_point_at_the_local_style():
    text = maps.risk_deck(_all_layers(), (118.80, 28.90, 118.83, 28.91)).to_json()
    assert URL_RE.findall(text) == []
    spec = json.loads(text)
    assert spec["mapStyle"] == "/app/static/map/blank-style.json"
    assert "mapProvider" not in spec  # no Carto/Mapbox provider: Streamlit only loads mapStyle
    assert [layer["id"] for layer in spec["layers"]] == [
        "areas",
        "venues",
        "venue_clusters",
        "events",
        "events_hex",
    ]


def test_the_committed_blank_styles_have_no_source_and_one_background():
    from pathlib import Path

    static = Path(maps.__file__).resolve().parents[1] / "static"
    for name, colour in [
        ("blank-style.json", offline.LIGHT_BACKGROUND),
        ("blank-style-dark.json", offline.DARK_BACKGROUND),
    ]:
        style = json.loads((static / "map" / name).read_text(encoding="utf-8"))
        assert style["version"] == 8 and style["sources"] == {}
        assert [(lyr["type"], lyr["paint"]["background-color"]) for lyr in style["layers"]] == [
            ("background", colour)
        ]
        assert "glyphs" not in style and "sprite" not in style
    assert (
        maps.risk_deck([], (118, 28, 119, 29), dark=True).map_style == "/app/static/map/blank-style-dark.json"
    )


def test_a_configured_tile_url_is_the_only_url_and_lives_in_a_written_local_style(monkeypatch):
    monkeypatch.setenv(offline.TILE_URL_ENV, TILE_URL)
    text = maps.risk_deck(_all_layers(), (118.80, 28.90, 118.83, 28.91)).to_json()
    style_url = json.loads(text)["mapStyle"]
    assert style_url.startswith("/app/static/map/tiles-style.json?v=")
    assert URL_RE.findall(text) == []  # the deck names only the local style
    style = json.loads((offline.STATIC_DIR / "map" / "tiles-style.json").read_text(encoding="utf-8"))
    assert style["sources"]["intranet"]["tiles"] == [TILE_URL]
    assert [lyr["type"] for lyr in style["layers"]] == ["background", "raster"]
    assert set(URL_RE.findall(json.dumps(style))) <= {"http://tiles.intranet/{z}/{x}/{y}.png"}
    # Written once: the same URL again leaves the file alone; a new URL rewrites it and changes ?v=.
    mtime = (offline.STATIC_DIR / "map" / "tiles-style.json").stat().st_mtime_ns
    assert offline.map_style() == style_url
    assert (offline.STATIC_DIR / "map" / "tiles-style.json").stat().st_mtime_ns == mtime
    monkeypatch.setenv(offline.TILE_URL_ENV, "http://other.intranet/t/{z}/{x}/{y}.png")
    assert offline.map_style() != style_url
    assert offline.map_style(dark=True).startswith("/app/static/map/tiles-style-dark.json?v=")


def test_static_urls_follow_the_base_url_path(monkeypatch):
    from streamlit import config

    monkeypatch.setattr(config, "get_option", lambda key: "cockpit/" if key == "server.baseUrlPath" else None)
    assert offline.map_style() == "/cockpit/app/static/map/blank-style.json"
    assert offline.static_url(offline.LEAFLET_JS) == "/cockpit/app/static/vendor/leaflet/leaflet.js"


# ---------------------------------------------------------------- the display CRS


def test_wgs84_tiles_leave_coordinates_unchanged():
    spec = _deck_json()
    areas, venues = spec["layers"][0], spec["layers"][1]
    assert np.allclose(_coords(venues), _venues()[["lon", "lat"]].to_numpy(), atol=1e-5)
    assert np.allclose(np.sort(_coords(areas)[:, 0])[[0, -1]], [118.80, 118.83], atol=1e-5)
    assert offline.to_display(118.9, 28.9) == (118.9, 28.9)
    g = box(118.8, 28.9, 118.9, 29.0)
    assert offline.geometry_to_display(g).equals(g)


def test_gcj02_tiles_shift_every_layer_by_about_500_m(monkeypatch):
    plain = _deck_json()
    monkeypatch.setenv(offline.TILE_CRS_ENV, "gcj02")
    shifted = _deck_json()
    for before, after in zip(plain["layers"], shifted["layers"], strict=True):
        a, b = _coords(before), _coords(after)
        assert a.shape == b.shape and len(a), before["id"]
        _, _, dist = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
        assert np.all((dist > 400) & (dist < 700)), (before["id"], dist.min(), dist.max())
        assert np.all(b[:, 0] > a[:, 0]), before["id"]  # GCJ-02 lies east of WGS84 around Quzhou
    v = plain["initialViewState"], shifted["initialViewState"]
    assert v[1]["longitude"] > v[0]["longitude"]


def test_to_display_and_geometry_to_display_agree_with_geo_crs(monkeypatch):
    from geo.crs import wgs84_to_gcj02

    monkeypatch.setenv(offline.TILE_CRS_ENV, "GCJ-02")
    assert offline.tile_crs() == "gcj02"
    lon, lat = np.array([118.8, 118.9]), np.array([28.9, 29.0])
    out = offline.to_display(lon, lat)
    assert np.allclose(out, wgs84_to_gcj02(lon, lat))
    g = offline.geometry_to_display(box(118.8, 28.9, 118.9, 29.0))
    assert np.allclose(shapely.get_coordinates(g)[0], wgs84_to_gcj02(118.9, 28.9))
    frame = _areas()
    moved = offline.geometry_to_display(frame)
    assert type(moved) is type(frame) and moved.index.equals(frame.index)
    assert not moved.geometry.iloc[0].equals(frame.geometry.iloc[0])


def test_an_unknown_tile_crs_is_refused(monkeypatch):
    monkeypatch.setenv(offline.TILE_CRS_ENV, "bd09")
    with pytest.raises(ValueError, match="gcj02 or wgs84"):
        offline.tile_crs()


# ---------------------------------------------------------------- layer contents


def test_area_features_carry_the_tooltip_fields_fill_and_code():
    props = [
        f["properties"]
        for f in json.loads(maps.risk_deck([maps.area_layer(_areas())], (118, 28, 119, 29)).to_json())[
            "layers"
        ][0]["data"]["features"]
    ]
    assert props[1] == {
        "id": 2,
        "code": "330802001001",
        "name": "第1网格",
        "class_label": "较大风险",
        "score": 12.3,
        "fill": [*CLASS_RGB[RiskClass.ORANGE], maps.AREA_ALPHA],
    }
    assert maps.DEFAULT_TOOLTIP == "{name}<br/>{class_label} · {score}"


def test_no_tooltip_html_means_no_tooltip():
    assert maps.risk_deck([], (118, 28, 119, 29), tooltip_html=None)._tooltip is False
    assert maps.risk_deck([], (118, 28, 119, 29))._tooltip["html"] == maps.DEFAULT_TOOLTIP


def test_area_layer_accepts_a_plain_frame_and_skips_missing_geometry():
    frame = pd.DataFrame(_areas())
    frame.loc[1, "geometry"] = None
    features = maps.layer_data(maps.area_layer(frame))["features"]
    assert [f["properties"]["id"] for f in features] == [1, 3]


def test_venue_points_take_the_safety_code_colour_and_labels():
    recs = maps.layer_data(maps.venue_points_layer(_venues()))
    assert [r["c"][:3] for r in recs] == [list(SAFETY_CODE_RGB[c]) for c in SafetyCode]
    assert (recs[1]["name"], recs[1]["class_label"], recs[1]["score"]) == ("李记小吃", "出租房", "黄码")


def test_layer_text_written_directly_is_valid_json_for_any_name_and_reaches_the_deck_whole():
    odd = ['引号"与\\反斜杠', "换行\n制表\t", "\u2028分隔", "@@raw-json-x@@", "</script>"]
    venues = _venues().iloc[[0, 1, 2, 0, 1]].assign(name=odd, id=range(5))
    areas = _areas(5).assign(name=odd)
    layers = [
        maps.venue_points_layer(venues),
        maps.area_layer(areas),
        maps.venue_cluster_layer(_clusters().assign(name=odd[:2])),
    ]
    assert all(isinstance(layer.data, maps.RawJson) for layer in layers)
    assert [r["name"] for r in maps.layer_data(layers[0])] == odd
    assert [f["properties"]["name"] for f in maps.layer_data(layers[1])["features"]] == odd
    spec = json.loads(maps.risk_deck(layers, (118.80, 28.90, 118.85, 28.91)).to_json())
    assert [layer["data"] for layer in spec["layers"]] == [maps.layer_data(layer) for layer in layers]
    assert all(
        isinstance(layer.data, maps.RawJson) for layer in layers
    )  # the deck left its layers as they were


def test_clusters_take_the_worst_code_present():
    recs = maps.layer_data(maps.venue_cluster_layer(_clusters()))
    assert recs[0]["c"][:3] == list(SAFETY_CODE_RGB[SafetyCode.RED])
    assert recs[1]["c"][:3] == list(SAFETY_CODE_RGB[SafetyCode.GREEN])
    assert recs[0]["r"] > recs[1]["r"]
    assert recs[0]["class_label"] == "红码 1 / 黄码 4 / 绿码 7" and recs[0]["score"] == "共 12 个"


def test_many_event_points_reach_the_heatmap_binned_with_their_total_weight():
    events = _events(50_000, seed=1).assign(weight=2.0)
    recs = maps.layer_data(maps.event_heat_layer(events, max_points=5_000))
    assert len(recs) <= 5_000
    assert sum(r["w"] for r in recs) == pytest.approx(100_000)
    assert len(maps.layer_data(maps.event_heat_layer(_events(300)))) == 300  # few points go as they are


def test_hexbin_counts_every_point_once_in_hexagons_of_the_given_size():
    events = _events(5_000, seed=2)
    polygons, counts = hexbin(events["lon"], events["lat"], 300)
    assert polygons.shape == (len(counts), 7, 2) and counts.sum() == 5_000
    hexes = shapely.polygons(polygons)
    assert shapely.is_valid(hexes).all()
    # A regular hexagon of circumradius R has area 3√3/2·R².
    areas = area_km2(gpd.GeoSeries(hexes, crs="EPSG:4326")) * 1e6
    assert np.allclose(areas, 3 * np.sqrt(3) / 2 * 300**2, rtol=0.01)
    # Each point lies in the hexagon it was counted in; hexagons do not overlap.
    inside = shapely.contains_xy(
        hexes[:, None], events["lon"].to_numpy()[None, :], events["lat"].to_numpy()[None, :]
    )
    assert (inside.sum(axis=0) == 1).all() and np.array_equal(inside.sum(axis=1), counts)
    recs = maps.event_hex_layer(events, size_m=300).data
    assert sum(int(r["score"].split()[0].replace(",", "")) for r in recs) == 5_000


def test_fit_view_frames_the_bounds():
    v = maps.fit_view((118.0230, 28.2415, 119.3404, 29.4994), width=800, height=600)
    assert (v.longitude, v.latitude) == pytest.approx((118.6817, 28.8705), abs=1e-3)
    assert 7.5 < v.zoom < 8.8
    town = maps.fit_view((118.84, 28.92, 118.90, 28.97), width=800, height=600)
    assert 11.5 < town.zoom < 13.5


# ---------------------------------------------------------------- the folium detail map


def _detail_html(**kw) -> str:
    return maps.detail_map(box(118.79, 28.89, 118.81, 28.91), _venues(), **kw).get_root().render()


def test_the_detail_map_html_fetches_nothing_off_the_machine():
    html_text = _detail_html()
    fetched = [a or b for a, b in FETCH_RE.findall(html_text)]
    assert fetched, "the map loads Leaflet from somewhere"
    assert [u for u in fetched if offline.is_off_host(u)] == []
    assert (
        "/app/static/vendor/leaflet/leaflet.js" in fetched
        and "/app/static/vendor/leaflet/leaflet.css" in fetched
    )
    assert not re.search(r"jquery|bootstrap|font-?awesome|awesome-markers|cdn", html_text, re.IGNORECASE)
    assert offline.external_links(maps.detail_map(box(118.79, 28.89, 118.81, 28.91), _venues())) == []
    assert len(_marker_rows(html_text)) == 3 and "L.tileLayer" not in html_text


def test_the_detail_map_uses_only_the_configured_tile_server(monkeypatch):
    monkeypatch.setenv(offline.TILE_URL_ENV, TILE_URL)
    html_text = _detail_html()
    assert "L.tileLayer" in html_text and json.dumps("内网底图") in html_text
    urls = set(URL_RE.findall(html_text))
    assert urls == {"http://tiles.intranet/{z}/{x}/{y}.png"}


def _script_json(html_text: str, name: str):
    """A JSON value the detail map's marker script declares as ``var <name> = …;``."""
    return json.loads(re.search(rf"var {name} = (.*?);\n", html_text).group(1))


def _marker_rows(html_text: str) -> list[list]:
    return _script_json(html_text, "rows")


def _browser_card(html_text: str, row: list) -> str:
    """The card the marker script makes in the browser: the same slot substitution, done here."""
    fields, codes = _script_json(html_text, "fields"), _script_json(html_text, "codes")
    values = {**codes[row[2]], **dict(zip(fields, row[3:], strict=True))}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], _script_json(html_text, "card"))


def test_venue_text_is_escaped_in_popups_and_tooltips():
    html_text = _detail_html()
    assert XSS not in html_text
    assert "<b>1号</b>" not in html_text
    # Marker data and the card template reach the script as JSON with < > & ' escaped: no venue text
    # can close the script, and ${…} or backticks stay inside JSON strings (no JS template literal).
    script = html_text[html_text.index("var codes = ") : html_text.index("rows.forEach")]
    assert not re.search(r"[<>&']", script)
    rows = _marker_rows(html_text)
    assert [r[3] for r in rows] == [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "李记小吃",
        "${alert(2)}",
    ]  # tooltips
    cards = [_browser_card(html_text, r) for r in rows]
    # The browser's card is the Python venue card, escaped alike.
    assert cards == [maps.venue_card(v) for v in _venues().to_dict("records")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in cards[0] and "<script" not in cards[0]
    assert "&lt;b&gt;1号&lt;/b&gt;" in cards[0] and "张三" in cards[0] and "2026-11-01" in cards[0]
    assert "\\x3cimg" in cards[2] and "<img" not in cards[2]
    assert "$(`" not in html_text  # folium.Popup's jQuery call on a template literal


def test_a_large_village_draws_every_venue_with_its_card_from_one_script():
    n = 3000
    venues = pd.concat([_venues()] * (n // 3), ignore_index=True).assign(
        lon=lambda d: 118.80 + 0.0001 * (d.index % 100), lat=lambda d: 28.90 + 0.0001 * (d.index // 100)
    )
    html_text = maps.detail_map(box(118.79, 28.89, 118.81, 28.91), venues).get_root().render()
    rows = _marker_rows(html_text)
    assert len(rows) == n and {r[2] for r in rows} == {0, 1, 2}
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)  # red markers first, then yellow, green
    assert html_text.count("L.circleMarker(") == 1  # one script draws them all, not one element each
    assert len(html_text.encode()) < 250 * n  # ~150 bytes a venue


def test_the_card_counts_major_and_general_hazards_when_open_hazards_is_absent():
    row = _venues().iloc[0].drop("open_hazards").to_dict() | {"major": 1, "general": 2}
    assert "<td>3</td>" in maps.venue_card(row)


def test_the_venue_card_shows_every_field_and_dashes_for_missing_ones():
    card = maps.venue_card(_venues().iloc[1].to_dict())
    for text in ["李记小吃", "黄码", "出租房", "地址", "负责人", "最近检查", "未整改隐患", "—"]:
        assert text in card
    assert card.count("—") == 3  # address, responsible person, last inspection (0 hazards shows 0)


def test_use_local_assets_is_idempotent_and_replaces_every_cdn_link():
    offline.use_local_assets()
    first = (list(folium.Map.default_js), list(folium.Map.default_css))
    offline.use_local_assets()
    assert (folium.Map.default_js, folium.Map.default_css) == first
    assert [u for _, u in [*first[0], *first[1]] if offline.is_off_host(u)] == []


def test_show_detail_map_refuses_a_map_with_cdn_assets():
    m = maps.detail_map(box(118.79, 28.89, 118.81, 28.91), _venues())
    folium.Marker([28.9, 118.8], icon=folium.Icon(icon="info-sign")).add_to(m)
    from folium.plugins import MarkerCluster

    MarkerCluster().add_to(m)
    assert offline.external_links(m)
    with pytest.raises(ValueError, match="外部资源"):
        maps.show_detail_map(m)


# ---------------------------------------------------------------- payload size


@pytest.fixture(scope="module")
def quzhou():
    from geo.generate import generate_quzhou

    return generate_quzhou()


def test_the_5400_grids_of_quzhou_serialise_under_5_mb(quzhou):
    grids = quzhou[quzhou["level"] == "grid"].reset_index(drop=True)
    assert len(grids) == 5400
    classes = list(RiskClass)
    frame = grids.assign(
        id=range(1, len(grids) + 1),
        class_label=[classes[i % 5].label for i in range(len(grids))],
        score=np.linspace(0, 80, len(grids)),
        rgb=[CLASS_RGB[classes[i % 5]] for i in range(len(grids))],
    )[["id", "code", "name", "class_label", "score", "rgb", "geometry"]]
    deck = maps.risk_deck([maps.area_layer(frame)], tuple(grids.total_bounds))
    size = len(deck.to_json().encode("utf-8"))
    print(f"5,400 grids: {size:,} bytes")
    assert size < 5_000_000
    features = json.loads(deck.to_json())["layers"][0]["data"]["features"]
    assert len(features) == 5400
    drawn = shapely.get_coordinates([shapely.geometry.shape(f["geometry"]) for f in features])
    assert np.allclose(drawn, np.round(drawn, 5))  # 5 decimals
    # Simplified for the view, not distorted: each drawn grid keeps nearly its area.
    a0 = shapely.area(grids.geometry.to_numpy())
    a1 = shapely.area(np.array([shapely.geometry.shape(f["geometry"]) for f in features]))
    assert np.median(np.abs(a1 / a0 - 1)) < 0.02


def test_a_tight_budget_simplifies_harder_without_losing_area(quzhou):
    villages = quzhou[quzhou["level"] == "village"].reset_index(drop=True)
    frame = villages.assign(
        id=range(len(villages)), class_label="低风险", score=5.0, rgb=[(31, 119, 180)] * len(villages)
    )
    big = len(maps.risk_deck([maps.area_layer(frame)], tuple(villages.total_bounds)).to_json())
    small_layer = maps.area_layer(frame, budget_bytes=300_000)
    small = len(maps.risk_deck([small_layer], tuple(villages.total_bounds)).to_json())
    print(f"1,483 villages: {big:,} bytes; with a 300 kB budget {small:,} bytes")
    drawn = np.array(
        [shapely.geometry.shape(f["geometry"]) for f in maps.layer_data(small_layer)["features"]]
    )
    assert small < big
    assert (
        shapely.get_num_coordinates(drawn).sum()
        < 0.7 * shapely.get_num_coordinates(villages.geometry.to_numpy()).sum()
    )
    whole = shapely.union_all(villages.geometry.to_numpy()).area
    union = shapely.union_all(drawn).area
    assert abs(union / whole - 1) < 0.01  # the outline is kept
    assert (shapely.area(drawn).sum() - union) / whole < 0.001  # neighbours barely overlap


# ---------------------------------------------------------------- shapes converted once


def _detailed_areas() -> gpd.GeoDataFrame:
    """Three small boxes and one round area of 2,401 vertices."""
    circle = shapely.Point(118.86, 28.95).buffer(0.02, quad_segs=600)
    frame = _areas(3)
    return gpd.GeoDataFrame(
        pd.concat([frame, frame.iloc[[0]].assign(id=4, code="330802001099", name="圆村", geometry=[circle])]),
        geometry="geometry",
        crs="EPSG:4326",
    ).set_index("id", drop=False)


def test_cached_shapes_draw_the_same_layer_as_converting_them_per_view():
    areas = _detailed_areas()
    cache = maps.ShapeCache(areas.geometry)
    ids = list(areas.index)
    assert cache.geojson(ids) == maps.display_geojson(areas.geometry.to_numpy())
    assert maps.layer_data(maps.area_layer(areas, geometries=cache.geojson(ids))) == maps.layer_data(
        maps.area_layer(areas)
    )


def test_a_view_over_its_byte_budget_gets_no_cached_shapes_and_is_simplified_instead():
    areas = _detailed_areas()
    cache = maps.ShapeCache(areas.geometry)
    assert cache.geojson([1, 2, 3], budget_bytes=20_000) is not None  # 15 coordinates fit
    assert cache.geojson(list(areas.index), budget_bytes=20_000) is None  # 2,416 do not
    drawn = maps.layer_data(maps.area_layer(areas, budget_bytes=20_000))["features"]
    assert shapely.get_num_coordinates(shapely.geometry.shape(drawn[3]["geometry"])) < 1000


def test_the_shapes_of_a_geography_are_made_once_and_again_for_another_display_crs(monkeypatch):
    from components.risk_view import shapes_of

    areas = _detailed_areas()
    first = shapes_of(areas)
    assert shapes_of(areas) is first and first.crs == "wgs84"
    monkeypatch.setenv(offline.TILE_CRS_ENV, "gcj02")
    shifted = shapes_of(areas)
    assert shifted is not first and shifted.crs == "gcj02"
    a = np.array(json.loads(first.shapes[1])["coordinates"][0])
    b = np.array(json.loads(shifted.shapes[1])["coordinates"][0])
    assert 0.003 < np.abs(b - a).max() < 0.01  # ~500 m
    assert shapes_of(areas.copy()) is not shifted  # another frame, other shapes
