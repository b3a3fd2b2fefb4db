"""Maps with something on them (issue 17), built without a browser: the picker and the detail map draw
village and grid outlines with their names from the store's geometry, offer 定位 (saying in Chinese when
the page is not on HTTPS), measure in metres, carry no Leaflet prefix or flag and fetch nothing off the
machine; route maps put each stop's number on a pin and spread the pins of stops at one place."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from components import maps, offline
from components.pick_map import pick_map_figure
from components.venue_card import route_deck, spread_labels
from tests.builders import X0, Y0, D, square_area_units

CENTRE = (X0 + 0.5 * D, Y0 + 0.5 * D)  # inside 东村's first grid


@pytest.fixture
def units():
    return square_area_units()


def _html(m) -> str:
    return m.get_root().render()


def _outlined(html_text: str) -> list[dict]:
    return json.loads(re.search(r"var units = (.*?);\n", html_text).group(1))


def test_the_picker_outlines_villages_and_grids_with_their_names_and_fetches_nothing_off_the_machine(units):
    m = pick_map_figure(*CENTRE, units)
    html_text = _html(m)
    shown = _outlined(html_text)
    assert {(u["n"], u["l"]) for u in shown} >= {
        ("东村", "village"),
        ("西村", "village"),
        ("第1网格", "grid"),
    }
    assert all(u["g"]["type"] in ("Polygon", "MultiPolygon") for u in shown)
    assert offline.external_links(m) == []
    assert "L.tileLayer" not in html_text
    assert "unit-grid-names" in html_text  # grid names join the village names when zoomed in


def test_the_picker_measures_in_metres_and_carries_no_leaflet_prefix(units, monkeypatch):
    html_text = _html(pick_map_figure(*CENTRE, units))
    assert "imperial: false" in html_text and '"attributionControl": false' in html_text
    monkeypatch.setenv(offline.TILE_URL_ENV, "http://tiles.intranet/{z}/{x}/{y}.png")
    with_tiles = _html(pick_map_figure(*CENTRE, units))
    assert "setPrefix(false)" in with_tiles and json.dumps("内网底图") in with_tiles


def test_locate_says_in_chinese_when_the_page_is_not_on_https_and_shifts_for_gcj02_tiles(units, monkeypatch):
    html_text = _html(pick_map_figure(*CENTRE, units))
    assert "isSecureContext" in html_text and maps.LOCATE_NOT_SECURE in html_text
    assert "var shift = [0.0,0.0];" in html_text  # WGS84 tiles: the phone's position as it is
    monkeypatch.setenv(offline.TILE_CRS_ENV, "gcj02")
    shifted = json.loads(re.search(r"var shift = (.*?);\n", _html(pick_map_figure(*CENTRE, units))).group(1))
    lon, lat = offline.to_display(*CENTRE)
    assert shifted == pytest.approx([lon - CENTRE[0], lat - CENTRE[1]], abs=1e-6) and shifted != [0.0, 0.0]


def test_a_unit_name_is_drawn_as_text_never_as_markup(units):
    units.loc[units["name"] == "东村", "name"] = "<img src=x onerror=alert(1)>东村"
    html_text = _html(pick_map_figure(*CENTRE, units))
    assert "<img src=x" not in html_text
    assert "textContent = u.n" in html_text


def test_the_detail_map_outlines_the_grids_inside_and_measures_in_metres(units):
    village = units.loc[units["name"] == "东村", "geometry"].iloc[0]
    venues = pd.DataFrame({"lon": [CENTRE[0]], "lat": [CENTRE[1]], "name": ["老王杂货店"], "code": ["green"]})
    html_text = _html(maps.detail_map(village, venues, units=units))
    names = {u["n"] for u in _outlined(html_text)}
    assert "第1网格" in names and "西村" not in names  # only what lies inside the area
    assert "imperial: false" in html_text and "control.scale()" not in html_text


def test_a_deck_over_a_street_gets_the_outlines_and_names_first_but_a_risk_map_keeps_its_own_areas(units):
    bounds = (X0, Y0, X0 + D, Y0 + D)
    deck = json.loads(maps.risk_deck([], bounds, base=units).to_json())
    assert [layer["id"] for layer in deck["layers"]][:2] == ["unit_outlines", "unit_names"]
    names = next(layer for layer in deck["layers"] if layer["id"] == "unit_names")
    assert {d["t"] for d in names["data"]} >= {"东村", "第1网格"} and names["characterSet"] == "auto"
    assert maps.risk_deck([], bounds).layers == []  # outside a page run the builder reads no store


def test_stops_at_one_place_get_their_numbers_spread_apart():
    offsets = spread_labels([(100.0, 100.0), (100.0, 100.0), (103.0, 100.0), (400.0, 400.0)])
    placed = [(100.0 + offsets[0][0], 100.0), (100.0 + offsets[1][0], 100.0), (103.0 + offsets[2][0], 100.0)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs(placed[i][0] - placed[j][0]) >= 24
    assert offsets[3] == (0.0, 0.0)  # a stop on its own stays on its spot


def test_the_route_map_puts_each_number_on_a_pin_in_its_code_colour():
    x, y = CENTRE
    stops = pd.DataFrame(
        {
            "stop": [1, 2, 3],
            "name": ["甲店", "乙店", "丙店"],
            "code": ["red", "yellow", "green"],
            "lon": [x, x, x + 0.003],
            "lat": [y, y, y + 0.002],
        }
    )
    deck = json.loads(route_deck(stops, (x - 0.002, y)).to_json())
    pins = next(layer for layer in deck["layers"] if layer["id"] == "stop_numbers")
    assert pins["background"] is True and [d["t"] for d in pins["data"]] == ["1", "2", "3"]
    first, second = (d["o"] for d in pins["data"][:2])
    assert first != second  # the two stops at one address do not hide each other
    text_on = [d["f"][:3] for d in pins["data"]]
    assert text_on[0] == text_on[2] == [255, 255, 255] and text_on[1] != text_on[0]  # dark on yellow
