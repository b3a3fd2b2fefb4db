"""The generated Quzhou hierarchy: counts, codes, populations and exact tiling at every level."""

# Tolerances are relative areas in degree² (so independent of any projection): 1e-9 of the
# parent's (or child's) area. Float rounding of overlay intersection points leaves ~1e-13
# at worst, while 1e-9 of a 1 km² grid is 0.001 m²: anything real (a gap or overlap one
# could see on a map, or a point-lookup ambiguity wider than a hair) fails.

import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from geo.generate import (
    COLUMNS,
    DEMO_TOWNSHIP_CODE,
    DEMO_TOWNSHIP_NAME,
    LEVELS,
    QUZHOU_POPULATION,
    generate_children,
    generate_quzhou,
)

pytestmark = pytest.mark.xdist_group("geo_tiling")

REL_TOL = 1e-9
SEED = 11
KINDS = {
    "city": {"市"},
    "county": {"区", "县", "县级市"},
    "township": {"街道", "镇", "乡"},
    "village": {"社区", "村"},
    "grid": {"网格"},
}
CODE_LENGTH = {"city": 6, "county": 6, "township": 9, "village": 12, "grid": 15}


@pytest.fixture(scope="module")
def quzhou():
    start = time.perf_counter()
    gdf = generate_quzhou(seed=SEED)
    elapsed = time.perf_counter() - start
    print(f"generate_quzhou: {elapsed:.2f} s")
    return gdf, elapsed


@pytest.fixture(scope="module")
def gdf(quzhou):
    return quzhou[0]


def by_level(gdf, level):
    return gdf[gdf["level"] == level]


def test_generation_is_fast(quzhou):
    assert quzhou[1] < 60.0


def test_schema(gdf):
    assert list(gdf.columns) == COLUMNS
    assert gdf.crs.to_epsg() == 4326
    assert set(gdf["level"]) == set(LEVELS)
    assert all(isinstance(c, str) for c in gdf["code"])
    assert gdf["population"].dtype == np.int64
    assert gdf["area_km2"].dtype == np.float64
    city = by_level(gdf, "city").iloc[0]
    assert city["parent_code"] is None
    assert all(isinstance(p, str) for p in gdf.loc[gdf["level"] != "city", "parent_code"])
    for level, kinds in KINDS.items():
        assert set(by_level(gdf, level)["kind"]) <= kinds


def test_counts(gdf):
    assert len(by_level(gdf, "city")) == 1
    counties = by_level(gdf, "county")
    assert dict(zip(counties["code"], counties["name"], strict=True)) == {
        "330802": "柯城区",
        "330803": "衢江区",
        "330822": "常山县",
        "330824": "开化县",
        "330825": "龙游县",
        "330881": "江山市",
    }
    townships = by_level(gdf, "township")
    assert len(townships) == 61
    assert (townships["kind"] == "街道").sum() == 17
    assert townships["kind"].isin(["镇", "乡"]).sum() == 44
    kecheng = townships[townships["parent_code"] == "330802"]
    assert (kecheng["kind"] == "街道").sum() == townships.groupby("parent_code")["kind"].apply(
        lambda k: (k == "街道").sum()
    ).max()
    assert len(by_level(gdf, "village")) == 1483
    assert len(by_level(gdf, "grid")) >= 5000


def test_demo_town(gdf):
    demo = gdf[gdf["code"] == DEMO_TOWNSHIP_CODE].iloc[0]
    assert demo["name"] == DEMO_TOWNSHIP_NAME
    assert demo["level"] == "township"
    assert demo["kind"] == "街道"
    assert demo["parent_code"] == "330802"
    assert demo["population"] == 330_000
    assert demo["area_km2"] == pytest.approx(38.0, abs=0.5)
    villages = gdf[(gdf["level"] == "village") & (gdf["parent_code"] == DEMO_TOWNSHIP_CODE)]
    assert 20 <= len(villages) <= 30
    grids = gdf[(gdf["level"] == "grid") & gdf["code"].str.startswith(DEMO_TOWNSHIP_CODE)]
    assert len(grids) == 125
    assert set(grids["parent_code"]) == set(villages["code"])


def test_populations_add_up(gdf):
    assert by_level(gdf, "city")["population"].iloc[0] == QUZHOU_POPULATION
    assert (gdf["population"] > 0).all()
    sums = gdf[gdf["level"] != "city"].groupby("parent_code")["population"].sum()
    parents = gdf.set_index("code").loc[sums.index, "population"]
    assert (sums == parents).all()
    for level in LEVELS:
        assert by_level(gdf, level)["population"].sum() == QUZHOU_POPULATION


def test_codes_and_names(gdf):
    assert gdf["code"].is_unique
    for level, length in CODE_LENGTH.items():
        codes = by_level(gdf, level)["code"]
        assert (codes.str.len() == length).all()
        assert codes.str.isdigit().all()
    # Real county codes share the city's first four digits (3308xx under 330800); every
    # generated code is its parent's code plus three digits.
    counties = by_level(gdf, "county")
    assert (counties["code"].str[:4] == counties["parent_code"].str[:4]).all()
    child = gdf[~gdf["level"].isin(["city", "county"])]
    assert all(c[:-3] == p for c, p in zip(child["code"], child["parent_code"], strict=True))
    assert not gdf[gdf["level"] != "city"].duplicated(["parent_code", "name"]).any()
    grids = by_level(gdf, "grid")
    names = gdf.set_index("code")["name"]
    assert all(
        n.startswith(names[p]) and n.endswith("网格")
        for n, p in zip(grids["name"], grids["parent_code"], strict=True)
    )
    villages = by_level(gdf, "village")
    assert all(
        (k == "社区") == n.endswith("社区") for n, k in zip(villages["name"], villages["kind"], strict=True)
    )


def test_geometries_valid_single_polygons(gdf):
    assert gdf.is_valid.all()
    assert not gdf.is_empty.any()
    below_city = gdf[gdf["level"] != "city"]
    assert (below_city.geom_type == "Polygon").all()


def test_areas(gdf):
    city = by_level(gdf, "city")["area_km2"].iloc[0]
    assert city == pytest.approx(8844, rel=0.01)  # Quzhou's official land area
    for level in LEVELS[1:]:
        assert by_level(gdf, level)["area_km2"].sum() == pytest.approx(city, rel=1e-6)


@pytest.mark.parametrize("level", LEVELS[1:])
def test_children_tile_parent(gdf, level):
    parents = gdf.set_index("code")["geometry"]
    children = by_level(gdf, level)
    for parent_code, group in children.groupby("parent_code"):
        parent = parents[parent_code]
        geoms = group.geometry.values
        union = shapely.union_all(geoms)
        assert shapely.area(shapely.symmetric_difference(union, parent)) <= REL_TOL * parent.area
        outside = shapely.area(shapely.difference(geoms, parent))
        assert (outside <= REL_TOL * shapely.area(geoms)).all()
        # Children of one parent share their borders vertex for vertex.
        assert shapely.coverage_is_valid(geoms)


@pytest.mark.parametrize("level", LEVELS[1:])
def test_no_overlaps_within_level(gdf, level):
    geoms = by_level(gdf, level).geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    overlap = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
    assert (overlap <= REL_TOL * smaller).all()


def test_geojson_size_is_reasonable(gdf):
    size = len(gdf.to_json().encode())
    print(f"GeoJSON, all five levels: {size / 1e6:.1f} MB")
    assert size < 40e6


def test_same_seed_same_result(gdf):
    again = generate_quzhou(seed=SEED)
    for column in ("code", "name", "parent_code", "kind", "population"):
        assert list(again[column]) == list(gdf[column])
    assert list(shapely.to_wkb(again.geometry.values)) == list(shapely.to_wkb(gdf.geometry.values))


def test_different_seed_different_result(gdf):
    other = generate_quzhou(seed=SEED + 1)
    assert list(other["code"]) != list(gdf["code"]) or list(other["name"]) != list(gdf["name"])
    grids_a = by_level(gdf, "grid").geometry.values
    grids_b = by_level(other, "grid").geometry.values
    assert len(grids_a) != len(grids_b) or not all(shapely.equals_exact(grids_a, grids_b, 0.0))
    assert by_level(other, "grid")["population"].sum() == QUZHOU_POPULATION


def test_multipolygon_parent_gets_every_part_covered():
    far_apart = MultiPolygon([box(120.0, 30.0, 120.1, 30.1), box(121.0, 30.5, 121.05, 30.55)])
    parents = gpd.GeoDataFrame(
        {"code": ["990100"], "name": ["测试区"], "level": ["county"], "population": [50_000]},
        geometry=[far_apart],
        crs="EPSG:4326",
    )
    children = generate_children(parents, {"990100": 6}, "township", seed=3)
    assert len(children) == 6
    assert list(children["code"]) == [f"990100{k:03d}" for k in range(1, 7)]
    assert children["population"].sum() == 50_000
    union = shapely.union_all(children.geometry.values)
    assert shapely.area(shapely.symmetric_difference(union, far_apart)) <= REL_TOL * far_apart.area
    for part in far_apart.geoms:
        covering = children[children.intersects(part)]
        assert len(covering) >= 1
        covered = shapely.union_all(shapely.intersection(covering.geometry.values, part))
        assert covered.area == pytest.approx(part.area, rel=1e-9)


def test_generate_children_is_deterministic_and_respects_counts():
    square = box(118.0, 29.0, 118.2, 29.2)
    parents = gpd.GeoDataFrame({"code": ["A"], "name": ["甲镇"], "kind": ["镇"]}, geometry=[square], crs=4326)
    one = generate_children(parents, {"A": 12}, "village", seed=5)
    two = generate_children(parents, {"A": 12}, "village", seed=5)
    three = generate_children(parents, {"A": 12}, "village", seed=6)
    assert len(one) == 12
    assert list(shapely.to_wkb(one.geometry.values)) == list(shapely.to_wkb(two.geometry.values))
    assert list(shapely.to_wkb(one.geometry.values)) != list(shapely.to_wkb(three.geometry.values))
    assert one["name"].is_unique
    with pytest.raises(ValueError):
        generate_children(parents, {}, "village", seed=5)
