"""GCJ-02 <-> WGS84 conversion against published point pairs, and the metric helpers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import box

from geo.crs import METRIC_CRS, area_km2, gcj02_to_wgs84, in_china, metric_crs_for, wgs84_to_gcj02

# (wgs_lon, wgs_lat, gcj_lon, gcj_lat). The first three are the test vectors shared by
# every port of googollee/eviltransform (go/transform_test.go, csharp/EvilTransformUnitTest.cs,
# java GeoTest.java); the last is wandergis/coordtransform's test/app.js wgs84togcj02 example.
PUBLISHED = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),  # Beijing, coordtransform
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), PUBLISHED)
def test_forward_matches_published_pairs(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert abs(lon - glon) <= 1e-9
    assert abs(lat - glat) <= 1e-9


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), PUBLISHED)
def test_inverse_recovers_published_wgs84(wlon, wlat, glon, glat):
    lon, lat = gcj02_to_wgs84(glon, glat)
    assert abs(lon - wlon) <= 1e-9
    assert abs(lat - wlat) <= 1e-9


def test_inverse_beats_the_one_step_approximation():
    # coordtransform's published gcj02towgs84(116.404, 39.915) is the one-step
    # approximation: centimetres off here (up to 1-2 m elsewhere); the iterative inverse
    # maps back onto the input to 1e-11 degree.
    approx = (116.39775550083061, 39.91359571849836)
    exact = gcj02_to_wgs84(116.404, 39.915)
    back_exact = wgs84_to_gcj02(*exact)
    back_approx = wgs84_to_gcj02(*approx)
    assert max(abs(back_exact[0] - 116.404), abs(back_exact[1] - 39.915)) <= 1e-11
    assert max(abs(back_approx[0] - 116.404), abs(back_approx[1] - 39.915)) > 1e-7
    assert max(abs(exact[0] - approx[0]), abs(exact[1] - approx[1])) < 5e-5


def test_vectorised_round_trip_over_china():
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.0, 135.0, 20_000)
    lat = rng.uniform(18.0, 53.0, 20_000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == lon.shape
    assert np.all(np.hypot(glon - lon, glat - lat) > 1e-4)  # the offset is real (tens of m+)
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    assert np.max(np.abs(back_lon - lon)) <= 1e-6
    assert np.max(np.abs(back_lat - lat)) <= 1e-6
    assert np.max(np.abs(back_lon - lon)) <= 1e-10  # in practice far better


@settings(max_examples=300, deadline=None)
@given(
    st.floats(min_value=72.1, max_value=137.7, allow_nan=False),
    st.floats(min_value=0.9, max_value=55.8, allow_nan=False),
)
def test_scalar_round_trip(lon, lat):
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert isinstance(glon, float) and isinstance(glat, float)
    back = gcj02_to_wgs84(glon, glat)
    assert abs(back[0] - lon) <= 1e-6 and abs(back[1] - lat) <= 1e-6


@pytest.mark.parametrize(("lon", "lat"), [(139.69, 35.69), (-0.1276, 51.5072), (151.2, -33.9), (100.5, 0.5)])
def test_outside_china_unchanged(lon, lat):
    assert not in_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_mixed_array_only_converts_points_in_china():
    lon = np.array([118.87, 139.69])
    lat = np.array([28.94, 35.69])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[0] != lon[0] and glat[0] != lat[0]
    assert glon[1] == lon[1] and glat[1] == lat[1]


def test_quzhou_offset_is_a_few_hundred_metres():
    glon, glat = wgs84_to_gcj02(118.87, 28.94)
    metres = np.hypot((glon - 118.87) * 111_320 * np.cos(np.radians(28.94)), (glat - 28.94) * 110_574)
    assert 300 < metres < 800


def test_metric_crs_for_quzhou_is_utm_50n():
    assert metric_crs_for(118.87, 28.94) == METRIC_CRS == "EPSG:32650"
    assert metric_crs_for(-0.12, 51.5) == "EPSG:32630"
    assert metric_crs_for(151.2, -33.9) == "EPSG:32756"


def test_area_km2_matches_geodesic_area_within_a_tenth_of_a_percent():
    import geopandas as gpd

    cell = box(118.5, 28.8, 118.6, 28.9)
    ours = area_km2(gpd.GeoSeries([cell], crs="EPSG:4326"))[0]
    geodesic = abs(Geod(ellps="WGS84").geometry_area_perimeter(cell)[0]) / 1e6
    assert ours == pytest.approx(geodesic, rel=1e-3)
