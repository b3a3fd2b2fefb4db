"""Validation of user boundary files (GeoJSON, Shapefile), and filling a foreign city below."""

import io
import warnings
import zipfile

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from geo.boundaries import OUTSIDE_PARENT_TOLERANCE, BoundaryError, read_boundaries, validate_units
from geo.generate import LEVELS, generate_below

CITY = box(120.0, 30.0, 120.2, 30.1)
WEST = box(120.0, 30.0, 120.1, 30.1)
EAST = box(120.1, 30.0, 120.2, 30.1)


def units(rows, crs="EPSG:4326"):
    """GeoDataFrame from (code, name, level, parent_code, geometry[, population]) rows."""
    data = {
        "code": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "level": [r[2] for r in rows],
        "parent_code": [r[3] for r in rows],
    }
    if any(len(r) > 5 for r in rows):
        data["population"] = [r[5] if len(r) > 5 else None for r in rows]
    return gpd.GeoDataFrame(data, geometry=[r[4] for r in rows], crs=crs)


def good_rows():
    return [
        ("990100", "测试市", "city", None, CITY, 300_000),
        ("990101", "西区", "county", "990100", WEST, 200_000),
        ("990102", "东县", "county", "990100", EAST, 100_000),
    ]


def write_geojson(gdf, tmp_path, name="units.geojson"):
    path = tmp_path / name
    gdf.to_file(path, driver="GeoJSON")
    return path


def write_shapefile(gdf, tmp_path, name="units.shp"):
    # dBase field names stop at 10 characters, so real Shapefiles carry "parent_cod".
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")
        gdf.rename(columns={"parent_code": "parent_cod"}).to_file(
            path, driver="ESRI Shapefile", encoding="UTF-8"
        )
    return path


def reasons(check):
    return [(e.feature_index, e.code, e.field, e.reason) for e in check.errors]


def test_valid_geojson(tmp_path):
    check = read_boundaries(write_geojson(units(good_rows()), tmp_path))
    assert check.ok, check.errors
    assert check.units.crs.to_epsg() == 4326
    assert list(check.units["code"]) == ["990100", "990101", "990102"]
    assert list(check.units["level"]) == ["city", "county", "county"]
    assert check.units["parent_code"].iloc[0] is None
    assert list(check.units["population"]) == [300_000, 200_000, 100_000]


def test_valid_projected_shapefile_is_reprojected(tmp_path):
    projected = units(good_rows()).to_crs("EPSG:32651")
    path = write_shapefile(projected, tmp_path)
    assert (tmp_path / "units.prj").exists()
    check = read_boundaries(path)
    assert check.ok, check.errors
    assert check.units.crs.to_epsg() == 4326
    # Shapefile fields stop at 10 characters: parent_code arrives as parent_cod.
    assert list(check.units["parent_code"]) == [None, "990100", "990100"]
    back = check.units.set_index("code").geometry
    assert shapely.equals_exact(back["990101"].normalize(), WEST.normalize(), tolerance=1e-7)


def test_zipped_shapefile_and_file_object(tmp_path):
    write_shapefile(units(good_rows()), tmp_path)
    archive = tmp_path / "units.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            if (tmp_path / f"units.{ext}").exists():
                zf.write(tmp_path / f"units.{ext}", f"units.{ext}")
    assert read_boundaries(archive).ok
    buffer = io.BytesIO(units(good_rows()).to_json().encode())
    assert read_boundaries(buffer).ok


def test_shapefile_without_crs_in_lonlat_is_assumed_wgs84(tmp_path):
    path = write_shapefile(units(good_rows(), crs=None), tmp_path)
    assert not (tmp_path / "units.prj").exists()
    check = read_boundaries(path)
    assert check.ok, check.errors
    assert check.units.crs.to_epsg() == 4326


def test_shapefile_without_crs_in_metres_is_an_error(tmp_path):
    metres = units(good_rows()).to_crs("EPSG:32651").set_crs(None, allow_override=True)
    check = read_boundaries(write_shapefile(metres, tmp_path))
    assert not check.ok
    assert check.units is None
    assert check.errors[0].field == "geometry"
    assert "坐标参考系" in check.errors[0].reason


def test_invalid_geometry_is_explained(tmp_path):
    bowtie = Polygon([(120.0, 30.0), (120.1, 30.1), (120.1, 30.0), (120.0, 30.1)])
    rows = good_rows()
    rows[1] = ("990101", "西区", "county", "990100", bowtie)
    check = read_boundaries(write_geojson(units(rows), tmp_path))
    errs = [e for e in check.errors if e.field == "geometry"]
    assert len(errs) == 1
    assert errs[0].feature_index == 1 and errs[0].code == "990101"
    assert errs[0].reason.startswith("几何无效")
    assert "自相交" in errs[0].reason


def test_missing_code_column(tmp_path):
    gdf = units(good_rows()).drop(columns="code")
    check = read_boundaries(write_geojson(gdf, tmp_path))
    assert BoundaryError(None, None, "code", "请指定编码所在的列") in check.errors


def test_empty_values_are_reported_per_feature():
    rows = good_rows()
    rows[1] = ("", "西区", "county", "990100", WEST)
    rows[2] = ("990102", None, None, "990100", EAST)
    check = validate_units(units(rows))
    got = reasons(check)
    assert (1, None, "code", "编码为空，请填写") in got
    assert (2, "990102", "name", "名称为空，请填写") in got
    assert (2, "990102", "level", "级别为空，请填写") in got


def test_unknown_parent(tmp_path):
    rows = [*good_rows(), ("990101001", "某街道", "township", "990199", box(120.0, 30.0, 120.05, 30.05))]
    check = read_boundaries(write_geojson(units(rows), tmp_path))
    assert reasons(check) == [(3, "990101001", "parent_code", "未知的上级编码 990199")]


def test_child_outside_parent(tmp_path):
    rows = [*good_rows(), ("990101001", "某街道", "township", "990101", box(120.05, 30.0, 120.15, 30.05))]
    check = read_boundaries(write_geojson(units(rows), tmp_path))
    assert len(check.errors) == 1
    err = check.errors[0]
    assert (err.feature_index, err.code, err.field) == (3, "990101001", "geometry")
    assert err.reason.startswith("超出上级范围")


def test_child_barely_outside_parent_is_tolerated():
    sliver = OUTSIDE_PARENT_TOLERANCE / 4 * 0.1  # a quarter of the allowed share
    rows = [
        *good_rows(),
        ("990101001", "某街道", "township", "990101", box(120.0, 30.0, 120.1 + sliver, 30.1)),
    ]
    assert validate_units(units(rows)).ok


def test_duplicate_codes_all_reported():
    rows = good_rows()
    rows[2] = ("990101", "东县", "county", "990100", EAST)
    got = reasons(validate_units(units(rows)))
    assert (1, "990101", "code", "编码重复（共 2 处）") in got
    assert (2, "990101", "code", "编码重复（共 2 处）") in got


def test_levels_must_be_known_and_one_below_parent():
    rows = [
        *good_rows(),
        ("990101001", "某街道", "province", "990101", box(120.0, 30.0, 120.05, 30.05)),
        ("990102001", "某村", "village", "990102", box(120.1, 30.0, 120.15, 30.05)),
        ("990102002", "某镇", "乡镇", "990102", box(120.15, 30.0, 120.2, 30.05)),
    ]
    check = validate_units(units(rows))
    got = reasons(check)
    assert any(i == 3 and f == "level" and r.startswith("级别无效") for i, _, f, r in got)
    assert any(i == 4 and f == "level" and r.startswith("级别与上级不匹配") for i, _, f, r in got)
    assert not any(i == 5 for i, *_ in got)  # 乡镇 is accepted as township


def test_every_bad_feature_is_listed(tmp_path):
    bowtie = Polygon([(120.0, 30.0), (120.1, 30.1), (120.1, 30.0), (120.0, 30.1)])
    rows = [
        *good_rows(),
        ("990101001", "甲街道", "township", "990101", bowtie, 10),
        ("990101002", "乙街道", "township", "990177", box(120.0, 30.05, 120.05, 30.1), 10),
        ("990102001", "丙镇", "township", "990102", box(120.3, 30.0, 120.4, 30.1), -5),
        ("990102002", "丁镇", "township", "990102", box(120.1, 30.0, 120.2, 30.1), 12.5),
    ]
    for path in (write_geojson(units(rows), tmp_path), write_shapefile(units(rows), tmp_path)):
        check = read_boundaries(path)
        assert check.units is None
        bad = {e.feature_index for e in check.errors}
        assert bad == {3, 4, 5, 6}, reasons(check)
        fields = {(e.feature_index, e.field) for e in check.errors}
        assert {(3, "geometry"), (4, "parent_code"), (5, "geometry"), (5, "population")} <= fields
        assert (6, "population") in fields


def test_unreadable_file(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text("{not json", encoding="utf-8")
    check = read_boundaries(path)
    assert not check.ok
    assert check.errors[0].reason.startswith("无法读取文件")


def test_empty_file(tmp_path):
    check = validate_units(gpd.GeoDataFrame({"code": []}, geometry=[], crs=4326))
    assert check.errors == [BoundaryError(None, None, None, "文件中没有要素")]


# --------------------------------------------------------------------------- foreign city


def fictional_districts():
    """Two districts of a made-up coastal city (code 990200), ~15 x 22 km each; the second
    owns an island 6 km offshore."""
    mainland = Polygon([(121.30, 29.90), (121.45, 29.88), (121.47, 30.05), (121.32, 30.10)])
    east = Polygon([(121.45, 29.88), (121.62, 29.90), (121.60, 30.06), (121.47, 30.05)])
    island = Polygon([(121.68, 29.95), (121.71, 29.94), (121.72, 29.97), (121.69, 29.98)])
    return gpd.GeoDataFrame(
        {
            "code": ["990201", "990202"],
            "name": ["海门区", "东港区"],
            "level": ["区县", "区县"],
            "parent_code": ["990200", "990200"],
            "population": [420_000, None],
        },
        geometry=[mainland, MultiPolygon([east, island])],
        crs="EPSG:4326",
    )


def test_foreign_district_file_validates_and_is_filled_down_to_grids(tmp_path):
    check = read_boundaries(write_geojson(fictional_districts(), tmp_path, "haimen.geojson"))
    assert check.ok, check.errors
    assert list(check.units["level"]) == ["county", "county"]

    filled = generate_below(check.units, seed=8)
    assert set(filled["level"]) == set(LEVELS[1:])
    counts = filled["level"].value_counts()
    assert counts["township"] >= 4 and counts["village"] >= 50 and counts["grid"] >= 150
    assert filled["code"].is_unique

    parents = filled.set_index("code")
    for level in ("township", "village", "grid"):
        children = filled[filled["level"] == level]
        assert all(c[:-3] == p for c, p in zip(children["code"], children["parent_code"], strict=True))
        for parent_code, group in children.groupby("parent_code"):
            parent = parents.loc[parent_code]
            union = shapely.union_all(group.geometry.values)
            sym = shapely.area(shapely.symmetric_difference(union, parent.geometry))
            assert sym <= 1e-9 * parent.geometry.area
            assert group["population"].sum() == parent["population"]
            assert shapely.coverage_is_valid(group.geometry.values)

    # A missing population is estimated from the area; the given one is kept.
    assert parents.loc["990201", "population"] == 420_000
    assert parents.loc["990202", "population"] > 0

    island = fictional_districts().geometry.iloc[1].geoms[1]
    grids = filled[filled["level"] == "grid"]
    on_island = grids[grids.intersects(island.buffer(-1e-6))]
    assert len(on_island) >= 1
    covered = shapely.union_all(shapely.intersection(on_island.geometry.values, island))
    assert covered.area == pytest.approx(island.area, rel=1e-9)


def test_generate_below_fills_only_childless_units():
    rows = [
        ("990100", "测试市", "city", None, CITY, 300_000),
        ("990101", "西区", "county", "990100", WEST, 200_000),
        ("990102", "东县", "county", "990100", EAST, 100_000),
        ("990101001", "甲街道", "township", "990101", WEST, 200_000),
    ]
    check = validate_units(units(rows))
    assert check.ok, check.errors
    filled = generate_below(check.units, seed=2)
    townships = filled[filled["level"] == "township"]
    # 西区 already has its township; only 东县 gets new ones.
    assert set(townships.loc[townships["parent_code"] == "990101", "code"]) == {"990101001"}
    assert (townships["parent_code"] == "990102").sum() >= 1
    villages = filled[filled["level"] == "village"]
    assert set(villages["parent_code"]) == set(townships["code"])


# --------------------------------------------------------------------------- the formats users have


def test_a_datav_county_file_is_mapped_by_itself_and_its_parent_object_read(tmp_path):
    from geo.boundaries import read_source, suggest_mapping
    from tests import own_area

    source, problems = read_source(own_area.county_geojson(tmp_path / "county.json"))
    assert problems == []
    mapping = suggest_mapping(source.frame)
    assert (mapping.style, mapping.code, mapping.name, mapping.level, mapping.parent) == (
        "datav",
        "adcode",
        "name",
        "level",
        "parent",
    )
    check = validate_units(source.frame, mapping)
    assert check.ok, check.errors
    row = check.units.iloc[0]
    assert (row["code"], row["name"], row["level"], row["parent_code"], row["kind"]) == (
        "990321",
        "海湾县",
        "county",
        "990300",
        "县",
    )
    assert check.estimated == ["990321"] and row["population"] > 0


@pytest.mark.parametrize("with_cpg", [False, True])
def test_a_zipped_shapefile_with_a_gbk_dbf_is_read_in_chinese_with_or_without_its_cpg(tmp_path, with_cpg):
    from geo.boundaries import read_source, suggest_mapping
    from tests import own_area

    source, problems = read_source(own_area.county_shapefile_zip(tmp_path / "county.zip", cpg=with_cpg))
    assert problems == [] and source.format == "Shapefile"
    assert source.properties == ["XZQDM", "名称", "级别", "RK"]
    assert source.frame["名称"].tolist() == ["海湾县"]
    assert ("未找到 .cpg 文件，属性按 GBK 编码读取" in source.notes) is not with_cpg
    check = validate_units(source.frame, suggest_mapping(source.frame))
    assert check.ok, check.errors
    assert check.units["population"].tolist() == [80_000] and check.estimated == []


def test_a_geopackage_layer_is_read_and_a_level_given_for_every_feature(tmp_path):
    from geo.boundaries import read_source, suggest_mapping, with_mapping
    from tests import own_area

    source, problems = read_source(own_area.county_geopackage(tmp_path / "county.gpkg"))
    assert problems == [] and source.format == "GeoPackage" and source.layers == ["xzq"]
    mapping = suggest_mapping(source.frame)
    assert (mapping.code, mapping.name, mapping.level, mapping.population) == ("XZQDM", "XZQMC", "JB", "RK")
    check = validate_units(source.frame, with_mapping(mapping, level=None, fixed_level="county"))
    assert check.ok, check.errors
    assert check.units["level"].tolist() == ["county"]


def test_a_name_only_file_gets_levels_parents_and_codes_from_its_columns(tmp_path):
    from geo.boundaries import PARENT_CREATE, ParentChoice, read_source, suggest_mapping
    from tests import own_area

    source, _ = read_source(own_area.districts_by_name(tmp_path / "districts.geojson"))
    mapping = suggest_mapping(source.frame)
    assert mapping.style == "names" and mapping.names_by_level == (("city", "市"), ("county", "区县"))
    check = validate_units(source.frame, mapping, parent=ParentChoice(PARENT_CREATE, code="990300"))
    assert check.ok, check.errors
    got = check.units[["code", "name", "level", "parent_code", "kind"]].values.tolist()
    assert got[0] == ["990300", "海湾市", "city", None, "市"]  # made from the union, named by the 市 column
    assert sorted(got[1:]) == [
        ["N01", "东岛县", "county", "990300", "县"],
        ["N02", "西湾区", "county", "990300", "区"],
    ]


def test_a_province_file_is_refused_by_name():
    gdf = units([("990000", "海东省", "province", None, CITY)])
    (error,) = validate_units(gdf).errors
    assert error.field == "level" and "省级单元不在市-县-乡-村-网格五级之内" in error.reason


# --------------------------------------------------------------------------- coordinates


def test_cgcs2000_is_taken_as_wgs84_and_said_so():
    check = validate_units(units(good_rows(), crs="EPSG:4490"))
    assert check.ok, check.errors
    assert check.units.crs.to_epsg() == 4326
    assert any("CGCS2000 (EPSG:4490)" in n for n in check.notes)
    assert shapely.equals_exact(check.units.geometry.iloc[1], WEST, tolerance=0)


def test_gcj02_declared_by_the_user_is_converted_to_wgs84():
    from geo.crs import wgs84_to_gcj02

    def shift(coords):
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        import numpy as np

        return np.column_stack([lon, lat])

    gdf = units(good_rows())
    gdf = gdf.set_geometry(gpd.GeoSeries(shapely.transform(gdf.geometry.values, shift), crs=4326))
    check = validate_units(gdf, crs="gcj02")
    assert check.ok, check.errors
    back = check.units.geometry.iloc[1]
    assert (
        shapely.hausdorff_distance(back, WEST) < 1e-7
    )  # ~1 cm: the offset of several hundred metres is gone
    assert any("GCJ-02" in n for n in check.notes)


def test_coordinates_in_metres_declared_as_lonlat_are_refused_and_a_declared_epsg_reads_them():
    metres = units(good_rows()).to_crs("EPSG:32651").set_crs("EPSG:4326", allow_override=True)
    (error,) = validate_units(metres).errors
    assert error.field == "geometry" and "投影坐标" in error.reason and "EPSG" in error.reason
    check = validate_units(metres, crs="EPSG:32651")
    assert check.ok, check.errors
    assert shapely.hausdorff_distance(check.units.geometry.iloc[1], WEST) < 1e-6


def test_a_feature_outside_lonlat_ranges_is_refused_before_anything_is_generated():
    rows = good_rows()
    rows[2] = ("990102", "东县", "county", "990100", box(179.5, 30.0, 180.5, 30.1))
    gdf = units(rows).set_crs(None, allow_override=True)
    errors = validate_units(gdf).errors
    assert errors and errors[0].field == "geometry"


def test_a_geojson_feature_over_gdal_s_default_object_size_is_read(tmp_path):
    """A single 55 MB feature (GDAL's default refused 35 MB): the limit is raised explicitly."""
    import json

    import numpy as np

    from geo.boundaries import read_source

    t = np.linspace(0, 2 * np.pi, 2_000_000, endpoint=False)
    ring = np.column_stack([121.0 + 0.1 * np.cos(t), 29.0 + 0.1 * np.sin(t)]).round(7)
    coords = [*ring.tolist(), ring[0].tolist()]
    feature = {
        "type": "Feature",
        "properties": {"adcode": 990321, "name": "大县"},
        "geometry": {"type": "Polygon", "coordinates": [coords]},
    }
    path = tmp_path / "big.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    assert path.stat().st_size >= 50 * 2**20
    source, problems = read_source(path)
    assert problems == []
    assert shapely.get_num_coordinates(source.frame.geometry.iloc[0]) == 2_000_001


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    from geo.boundaries import read_source

    path = write_geojson(units(good_rows()), tmp_path)
    source, problems = read_source(path, max_bytes=100)
    assert source is None and problems[0].reason.startswith("文件过大")


# --------------------------------------------------------------------------- population estimates


def test_an_urban_district_without_population_still_gets_several_streets():
    """A 36 km² 区 is a city core: ~6,000 residents/km² estimated, at least one 街道 per 60,000, all 街道."""
    core = box(120.0, 30.0, 120.062, 30.054)  # ~6 km × 6 km
    rural = box(120.062, 30.0, 120.5, 30.3)  # ~1,300 km²
    gdf = gpd.GeoDataFrame(
        {"code": ["990201", "990202"], "name": ["中山区", "山南县"], "level": ["county", "county"]},
        geometry=[core, rural],
        crs=4326,
    )
    check = validate_units(gdf)
    assert check.ok, check.errors
    pops = dict(zip(check.units["code"], check.units["population"], strict=True))
    assert 150_000 <= pops["990201"] <= 300_000  # 6,000/km²
    assert 250_000 <= pops["990202"] <= 400_000  # 250/km²
    filled = generate_below(check.units, seed=1)
    townships = filled[filled["level"] == "township"]
    core_towns = townships[townships["parent_code"] == "990201"]
    assert len(core_towns) >= 3 and set(core_towns["kind"]) == {"街道"}
    villages = filled[filled["parent_code"].isin(core_towns["code"])]
    assert set(villages["kind"]) == {"社区"} and len(villages) >= len(core_towns) * 5


def test_an_unreadable_file_says_in_chinese_what_to_do_and_shows_no_server_path(tmp_path):
    """GDAL's English words and the server's temporary path were shown as the reason."""
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json", encoding="utf-8")
    gbk = tmp_path / "gbk.geojson"
    gbk.write_bytes(
        write_geojson(units(good_rows()), tmp_path)
        .read_text(encoding="utf-8")
        .replace('"西区"', '"西区镇"')
        .encode("gbk")
    )
    for path, hint in ((broken, "重新导出"), (gbk, "UTF-8")):
        reason = read_boundaries(path).errors[0].reason
        assert reason.startswith("无法读取文件：") and hint in reason, reason
        assert str(tmp_path) not in reason and "recognized" not in reason and "codec" not in reason


def test_a_population_that_would_make_too_many_grids_is_refused_in_chinese():
    """generate_below's limits were raised in English (… units would be generated (limit 250000))."""
    rows = [(*row[:5], 2_000_000_000) for row in good_rows()]
    check = validate_units(units(rows))
    assert check.ok, check.errors
    with pytest.raises(ValueError) as err:
        generate_below(check.units, seed=1)
    assert "请核对" in str(err.value) and "units" not in str(err.value), err.value


# --------------------------------------------------------------------------- files a county brings


def test_estimated_populations_add_up_level_by_level():
    """Each level was estimated from its own area: a county of 326,185 with villages summing to 127,637.
    Estimated children now share what their parent holds beyond the given ones."""
    villages = [box(120.0 + 0.05 * k, 30.0, 120.05 + 0.05 * k, 30.1) for k in range(4)]
    rows = [
        ("990100", "测试县", "county", None, CITY),
        ("990101", "西镇", "township", "990100", WEST),
        ("990102", "东镇", "township", "990100", EAST),
        *[
            (f"99010{1 + k // 2}00{k % 2 + 1}", f"村{k}", "village", f"99010{1 + k // 2}", g)
            for k, g in enumerate(villages)
        ],
    ]
    check = validate_units(units(rows))
    assert check.ok, check.errors
    pop = dict(zip(check.units["code"], check.units["population"], strict=True))
    assert abs(pop["990101"] + pop["990102"] - pop["990100"]) <= 1
    for town in ("990101", "990102"):
        kids = [v for c, v in pop.items() if c.startswith(town) and c != town]
        assert len(kids) == 2 and abs(sum(kids) - pop[town]) <= 1
    given = units([(*rows[0], 100_000), *[(*r, None) for r in rows[1:]]])
    check = validate_units(given)
    pop = dict(zip(check.units["code"], check.units["population"], strict=True))
    assert pop["990100"] == 100_000 and abs(pop["990101"] + pop["990102"] - 100_000) <= 1


def test_units_of_one_parent_that_overlap_are_refused_and_a_hole_is_told():
    overlap = [
        ("990100", "测试县", "county", None, CITY),
        ("990101", "西镇", "township", "990100", box(120.0, 30.0, 120.13, 30.1)),  # 30 % into 东镇
        ("990102", "东镇", "township", "990100", EAST),
    ]
    check = validate_units(units(overlap))
    assert [(e.code, e.field) for e in check.errors] == [("990102", "geometry")]
    assert "重叠" in check.errors[0].reason and "990101" in check.errors[0].reason
    hole = [overlap[0], ("990101", "西镇", "township", "990100", WEST)]  # the east half has no township
    check = validate_units(units(hole))  # a city with one county now, the other later: allowed, and told
    assert check.ok and any("990100" in n and "50.0%" in n and "没有网格" in n for n in check.notes)
    sliver = [overlap[0], (*overlap[1][:4], box(120.0, 30.0, 120.1004, 30.1)), overlap[2]]  # 0.4 %
    assert validate_units(units(sliver)).ok


def test_files_that_hold_no_outline_are_refused_by_what_they_are(tmp_path):
    table = tmp_path / "units.csv"
    table.write_text("code,name\n990100,测试县\n", encoding="utf-8")
    empty = units([("990100", "测试县", "county", None, None)])
    for found in (read_boundaries(table), validate_units(empty)):
        assert not found.ok and len(found.errors) == 1
    assert "不支持的文件格式（.csv）" in read_boundaries(table).errors[0].reason
    assert "几何为空" in validate_units(empty).errors[0].reason  # not a riddle about the CRS


def test_an_invalid_outline_is_told_in_chinese_with_its_place():
    bowtie = [
        (
            "990100",
            "测试县",
            "county",
            None,
            shapely.Polygon([(120, 30), (120.1, 30.1), (120.1, 30), (120, 30.1)]),
        )
    ]
    reason = validate_units(units(bowtie)).errors[0].reason
    assert reason.startswith("几何无效：边界自相交") and "120.05, 30.05" in reason and "Self" not in reason


def test_projected_metres_read_as_degrees_point_to_the_zone_s_own_code():
    metres = units([("990100", "测试县", "county", None, box(39_510_000, 3_510_000, 39_520_000, 3_520_000))])
    reason = validate_units(metres).errors[0].reason
    assert "EPSG:4527" in reason and "带号 39" in reason


def test_a_sandiao_export_s_parent_column_and_a_cpg_that_lies_are_understood(tmp_path):
    """三调 exports name the parent SJDM (it was not found: one 缺少上级编码 per feature); a .cpg saying
    UTF-8 over GBK attributes was told to save as UTF-8, then refused with advice to delete the .cpg: the
    text is read as GBK and the .cpg is said to be wrong."""
    import zipfile

    from geo.boundaries import read_source, suggest_mapping

    frame = gpd.GeoDataFrame(
        {"XZQDM": ["990101"], "XZQMC": ["西镇"], "JB": ["乡镇"], "SJDM": ["990100"]},
        geometry=[WEST],
        crs=4326,
    )
    assert suggest_mapping(frame).parent == "SJDM"
    folder = tmp_path / "shp"
    folder.mkdir()
    frame.to_file(folder / "xzq.shp", encoding="GBK")
    (folder / "xzq.cpg").write_text("UTF-8")
    packed = tmp_path / "xzq.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    source, problems = read_source(packed)
    assert problems == [] and source is not None
    assert source.frame["XZQMC"].tolist() == ["西镇"]
    assert ".cpg 文件写的编码「UTF-8」与属性内容不符，属性按 GBK 编码读取：请核对名称是否正确" in source.notes


def test_a_crs_proj_cannot_convert_is_told_in_chinese_without_its_english(monkeypatch):
    from geo.boundaries import to_wgs84

    def fails(self, *args, **kwargs):
        raise RuntimeError("Invalid projection: +proj=tmerc +lat_0=... (Internal Proj Error)")

    metres = units(
        [("990100", "测试县", "county", None, box(500_000, 3_300_000, 510_000, 3_310_000))], crs=4549
    )
    monkeypatch.setattr(gpd.GeoDataFrame, "to_crs", fails)
    _, _, problem = to_wgs84(metres)
    assert problem is not None and problem.reason.startswith("无法从文件的坐标系")
    assert "Proj" not in problem.reason and "EPSG:4549" in problem.reason


@pytest.mark.parametrize("typed", ["EPSG：4549", "ＥＰＳＧ：４５４９", "epsg:4549"])
def test_an_epsg_code_typed_with_a_chinese_input_method_is_understood(typed):
    """EPSG：4549 with the full-width colon a Chinese input method types was 无法识别坐标系 EPSG：4549（请填写如
    EPSG:4549）: the same text, to the eye, as the example it was told to follow."""
    from geo.boundaries import to_wgs84

    metres = units(
        [("990100", "测试县", "county", None, box(500_000, 3_300_000, 510_000, 3_310_000))], crs=None
    )
    converted, _, problem = to_wgs84(metres, typed)
    assert problem is None and converted is not None
    minx, miny, _, _ = converted.total_bounds
    assert 119.9 < minx < 120.1 and 29.8 < miny < 29.9


def test_metres_read_in_the_wrong_projection_are_refused_not_placed_abroad():
    """A Gauss–Krüger file (zone 39, EPSG:4527) imported with EPSG:3857 typed converted without a word to
    the Sahara (−3.5°, 27.6°): an area of this system is in China, so the choice is told, with the zone's
    own code."""
    from geo.boundaries import to_wgs84

    metres = units(
        [("990100", "测试县", "county", None, box(39_510_000, 3_310_000, 39_520_000, 3_320_000))], crs=None
    )
    converted, _, problem = to_wgs84(metres, "EPSG:3857")
    assert converted is None and problem is not None
    assert "中国境外" in problem.reason and "EPSG:4527" in problem.reason
    converted, _, problem = to_wgs84(metres, "EPSG:4527")
    assert problem is None and converted is not None
    minx, miny, _, _ = converted.total_bounds
    assert 117 < minx < 118 and 29.8 < miny < 30


def test_codes_typed_with_full_width_digits_or_spaces_are_stored_as_plain_digits():
    """Codes with full-width digits (an input method's ９９０１００) or a space inside (990100 101 pasted
    from a table) were stored as typed and passed on to the generated children: the staff and department
    imports then said 找不到编码 for the code written the usual way."""
    rows = [
        ("９９０１００", "测试市", "city", None, CITY),
        ("990 101", "西区", "county", "９９０１００", WEST),
        ("990102", "东县", "county", "990100", EAST),
    ]
    check = validate_units(units(rows))
    assert check.ok, check.errors
    assert sorted(check.units["code"]) == ["990100", "990101", "990102"]
    assert set(check.units["parent_code"].dropna()) == {"990100"}
