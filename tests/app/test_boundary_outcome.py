"""The boundary import's outcome as the administrator reads it: settings that could not be carried over to the
new units are listed with what was done about them (decision 0027)."""

from __future__ import annotations

import shapely.geometry
from streamlit.testing.v1 import AppTest

from services.boundaries import ImportResult, NotCarried


def _outcome(result, done):
    from components.boundary_preview import show_outcome

    show_outcome(result, done=done)


def test_settings_that_could_not_be_carried_over_are_listed_with_their_outcome():
    result = ImportResult(
        carried=2,
        not_carried=[
            NotCarried("大屏令牌", "海岛区大屏", "海岛区（880002）", "已停用，请重新签发"),
            NotCarried("接口密钥", "海岛小程序", "海岛区（880002）", "已吊销，请重新创建"),
        ],
    )
    at = AppTest.from_function(_outcome, args=(result, False), default_timeout=30).run()
    assert not at.exception
    assert "将无法沿用" in at.warning[0].value
    table = at.dataframe[0].value
    assert list(table.columns) == ["设置", "名称", "原区划", "处理"]
    assert list(table["名称"]) == ["海岛区大屏", "海岛小程序"]
    assert list(table["处理"]) == ["已停用，请重新签发", "已吊销，请重新创建"]


def test_nothing_is_listed_when_every_setting_was_carried_over():
    at = AppTest.from_function(_outcome, args=(ImportResult(carried=3), True), default_timeout=30).run()
    assert not at.exception and not at.warning and not at.dataframe


def test_the_problems_name_the_field_in_chinese_and_an_empty_value_as_empty(tmp_path):
    """The 字段 column showed the checks' keys (level, population) and an empty level read "缺少字段 level"."""
    import json

    from components.boundary_form import problems_frame
    from geo.boundaries import read_source, validate_units
    from tests.own_area import COUNTY, COUNTY_CODE

    feature = {
        "type": "Feature",
        "properties": {"code": COUNTY_CODE, "name": "海湾县", "level": "", "population": "很多"},
        "geometry": shapely.geometry.mapping(COUNTY),
    }
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    source, unreadable = read_source(path)
    assert source is not None and not unreadable
    frame = problems_frame(validate_units(source.frame).errors)
    assert set(zip(frame["字段"], frame["问题"], strict=True)) == {
        ("级别", "级别为空，请填写"),
        ("人口", "人口必须为非负整数"),
    }


def _upload(path: str) -> None:
    import streamlit as st

    from components.boundary_form import mapping_form, read_upload

    upload = st.file_uploader("边界文件", key="bd_upload")
    if upload is None:
        return
    source, digest = read_upload(upload)
    if source is not None:
        mapping_form(source, digest)
        st.caption(f"读取：{len(source.frame)} 个要素")


def test_a_file_of_two_layers_offers_both_and_reads_the_one_chosen(tmp_path):
    """A GeoPackage with 乡镇 and 村 layers read only the first, and the page had no way to choose."""
    import geopandas as gpd

    path = tmp_path / "两层.gpkg"
    towns = gpd.GeoDataFrame(
        {"code": ["990101"], "name": ["西镇"], "level": ["township"]},
        geometry=[shapely.geometry.box(120.0, 30.0, 120.1, 30.1)],
        crs=4326,
    )
    villages = gpd.GeoDataFrame(
        {"code": ["990101001", "990101002"], "name": ["甲村", "乙村"], "level": ["village"] * 2},
        geometry=[
            shapely.geometry.box(120.0, 30.0, 120.05, 30.1),
            shapely.geometry.box(120.05, 30.0, 120.1, 30.1),
        ],
        crs=4326,
    )
    towns.to_file(path, layer="乡镇", driver="GPKG")
    villages.to_file(path, layer="村", driver="GPKG")
    at = AppTest.from_function(_upload, args=(str(path),), default_timeout=30).run()
    at.get("file_uploader")[0].set_value(("两层.gpkg", path.read_bytes(), "application/octet-stream"))
    at.run()
    assert not at.exception
    picker = next(s for s in at.selectbox if s.label.startswith("图层"))
    assert picker.options == ["乡镇", "村"] and any("1 个要素" in c.value for c in at.caption)
    picker.set_value("村").run()
    assert not at.exception and any("2 个要素" in c.value for c in at.caption)
