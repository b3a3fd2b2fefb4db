"""Boundary files as GIS tools really write them — the .cpg, the .dbf's 10-byte field names, broken and cut-off
files — imported end to end: read right, or refused in Chinese with what to do, and the store left as it was."""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box
from sqlalchemy import func, select

from db.models import AdminUnit
from db.uow import UnitOfWork
from services.boundaries import import_boundaries

X0, Y0, D = 118.80, 28.90, 0.02  # a small county of about 8 km × 4 km
CJK = re.compile(r"[\u4e00-\u9fff]")


def small_county(code="code", name="name", level="level", parent="parent_code") -> gpd.GeoDataFrame:
    """测试县 with two townships of two villages each (codes, names, levels, parent codes)."""
    rows = [
        dict(
            code="330899",
            name="测试县",
            level="county",
            parent_code=None,
            geometry=box(X0, Y0, X0 + 4 * D, Y0 + 2 * D),
        )
    ]
    for t, town in enumerate(("东溪镇", "西溪镇")):
        tcode, tx = f"330899{t + 1:03d}", X0 + 2 * D * t
        rows.append(
            dict(
                code=tcode,
                name=town,
                level="township",
                parent_code="330899",
                geometry=box(tx, Y0, tx + 2 * D, Y0 + 2 * D),
            )
        )
        for v, part in enumerate("上下"):
            rows.append(
                dict(
                    code=f"{tcode}{v + 1:03d}",
                    name=f"{town[:2]}{part}村",
                    level="village",
                    parent_code=tcode,
                    geometry=box(tx, Y0 + D * v, tx + 2 * D, Y0 + D * (v + 1)),
                )
            )
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
    return frame.rename(columns={"code": code, "name": name, "level": level, "parent_code": parent})


def shapefile_zip(
    frame: gpd.GeoDataFrame, tmp_path: Path, *, encoding: str, cpg: str | None = None, drop=()
) -> bytes:
    """``frame`` as GDAL writes a Shapefile in ``encoding``, zipped; ``cpg`` replaces the .cpg's text
    (``""``: no .cpg); ``drop``: extensions left out of the zip."""
    folder = tmp_path / f"shp{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_file(folder / "bnd.shp", driver="ESRI Shapefile", encoding=encoding)
    if cpg is not None:
        (folder / "bnd.cpg").unlink(missing_ok=True)
        if cpg:
            (folder / "bnd.cpg").write_text(cpg)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for part in sorted(folder.iterdir()):
            if part.suffix.lstrip(".") not in drop:
                zf.write(part, part.name)
    return buf.getvalue()


def stored_names(engine, *levels: str) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AdminUnit.name).where(AdminUnit.level.in_(levels)).order_by(AdminUnit.code)
        )
        return [r[0] for r in rows]


def unit_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()


# ------------------------------------------------------------------------------------- text encoding (.cpg)


@pytest.mark.parametrize(
    ("cpg", "note"),
    [
        (
            "65001",
            ".cpg 文件写的编码「65001」与属性内容不符，属性按 GBK 编码读取",
        ),  # UTF-8's code page, wrongly
        ("UTF-8", ".cpg 文件写的编码「UTF-8」与属性内容不符，属性按 GBK 编码读取"),
        ("System", ".cpg 文件写的编码「System」无法识别，属性按 GBK 编码读取"),
        ("ANSI 936", None),  # GBK's code page, right (GDAL did not know the spelling)
        ("GBK", None),
        ("936", None),
        ("", "未找到 .cpg 文件，属性按 GBK 编码读取"),
    ],
)
def test_a_gbk_shapefile_is_read_as_gbk_whatever_its_cpg_says_and_a_wrong_cpg_is_told(
    empty_engine, tmp_path, cpg, note
):
    data = shapefile_zip(small_county(), tmp_path, encoding="GBK", cpg=cpg)
    result = import_boundaries(UnitOfWork(empty_engine), data, filename="县界.zip")
    assert result.ok, result.errors
    assert stored_names(empty_engine, "county", "township") == ["测试县", "东溪镇", "西溪镇"]
    told = [n for n in result.notes if ".cpg" in n]
    assert told[0].startswith(note) if note else told == [], result.notes
    assert result.units_by_level["grid"] == 28  # as from the file read right (mojibake names made 92)


def test_a_utf8_shapefile_whose_cpg_says_65001_is_read_as_utf8(empty_engine, tmp_path):
    data = shapefile_zip(small_county(), tmp_path, encoding="UTF-8", cpg="65001")
    result = import_boundaries(UnitOfWork(empty_engine), data, filename="县界.zip")
    assert result.ok, result.errors
    assert stored_names(empty_engine, "county") == ["测试县"]


def test_a_shapefile_whose_text_is_neither_utf8_nor_gbk_is_refused_with_what_to_do(empty_engine, tmp_path):
    frame = small_county()
    frame["name"] = [f"Ünit{i} ÿ" for i in range(len(frame))]  # Latin-1 bytes no CJK decoding explains
    data = shapefile_zip(frame, tmp_path, encoding="ISO-8859-1", cpg="System")
    result = import_boundaries(UnitOfWork(empty_engine), data, filename="县界.zip")
    assert not result.ok and len(result.errors) == 1
    reason = result.errors[0].reason
    assert "编码" in reason and "UTF-8" in reason and "另存" in reason and CJK.search(reason)
    assert unit_count(empty_engine) == 0


# ------------------------------------------------------------------------------------- generated units' names

GENERATED = "（自动生成）"


def stored_units(engine) -> dict[str, tuple[str, str, str | None]]:
    """code → (name, kind, parent's name)."""
    parent = AdminUnit.__table__.alias("parent")
    query = (
        select(AdminUnit.code, AdminUnit.name, AdminUnit.kind, parent.c.name)
        .select_from(AdminUnit)
        .outerjoin(parent, parent.c.id == AdminUnit.parent_id)
    )
    with engine.connect() as conn:
        return {code: (name, kind, above) for code, name, kind, above in conn.execute(query)}


def test_units_generated_below_a_township_file_are_named_as_generated_not_invented(empty_engine, tmp_path):
    """The probe's case: a county's two townships only. The villages made below them were named 后金村,
    前刘村 … — real-sounding, stored like real ones."""
    frame = small_county()
    townships = frame[frame["level"] == "township"].assign(parent_code=None)
    result = import_boundaries(
        UnitOfWork(empty_engine), townships.to_json().encode(), filename="乡镇.geojson"
    )
    assert result.ok, result.errors
    units = stored_units(empty_engine)
    villages = {c: u for c, u in units.items() if len(c) == 12}
    grids = {c: u for c, u in units.items() if len(c) == 15}
    assert villages and grids and len(units) == 2 + len(villages) + len(grids)
    for name, kind, town in villages.values():
        assert re.fullmatch(rf"{town}第\d+{kind}（自动生成）", name), name
    for name, _, village in grids.values():
        assert re.fullmatch(rf"{village.removesuffix(GENERATED)}第\d+网格", name), name
    names = {name for name, _, _ in villages.values()}
    assert {"东溪镇第1村（自动生成）", "东溪镇第1社区（自动生成）"} & names  # numbered per kind from 1
    assert {units["330899001"][0], units["330899002"][0]} == {"东溪镇", "西溪镇"}  # the file's names as given


def test_a_county_alone_gets_numbered_townships_and_villages_marked_as_generated(empty_engine, tmp_path):
    frame = small_county()
    county = frame[frame["level"] == "county"]
    result = import_boundaries(UnitOfWork(empty_engine), county.to_json().encode(), filename="县.geojson")
    assert result.ok, result.errors
    generated = [(n, k) for c, (n, k, _) in stored_units(empty_engine).items() if c != "330899"]
    assert generated and all(n.endswith(GENERATED) or n.endswith("网格") for n, _ in generated)
    assert all("测试县第" in n for n, _ in generated)
    townships = [n for n, k in generated if k in ("街道", "镇", "乡")]
    assert townships and all(re.fullmatch(r"测试县第\d+(街道|镇|乡)（自动生成）", n) for n in townships)


# ------------------------------------------------------------------------------------- 10-byte field names


@pytest.mark.parametrize("cpg", [None, ""])  # as GDAL/QGIS write it (.cpg UTF-8), and without the .cpg
def test_a_utf8_shapefile_with_chinese_field_names_cut_at_ten_bytes_is_read_by_those_names(
    empty_engine, tmp_path, cpg
):
    """区划代码 is 12 bytes in UTF-8: the .dbf keeps 10, the fourth character cut mid-way. Such a file was refused
    as 'not the .cpg's encoding', with advice (delete the .cpg) that made it worse."""
    frame = small_county("区划代码", "区划名称", "级别", "上级编码")
    frame["级别"] = frame["级别"].map({"county": "县", "township": "乡镇", "village": "村"})
    data = shapefile_zip(frame, tmp_path, encoding="UTF-8", cpg=cpg)
    result = import_boundaries(UnitOfWork(empty_engine), data, filename="县界.zip")
    assert result.ok, result.errors
    assert stored_names(empty_engine, "county", "township") == ["测试县", "东溪镇", "西溪镇"]
    assert result.units_by_level["village"] == 4  # the file's villages, under their parents
    cut = [n for n in result.notes if "字段名" in n]
    assert len(cut) == 1 and "区划代" in cut[0] and "区划代码" in cut[0] and "10 字节" in cut[0], result.notes


# ------------------------------------------------------------------------------------- broken files, in Chinese

#: Words a Chinese message may carry in Latin letters: formats, extensions, encodings, tools.
ALLOWED_LATIN = {
    "GeoJSON",
    "Shapefile",
    "GeoPackage",
    "KML",
    "GIS",
    "QGIS",
    "UTF",
    "GBK",
    "shp",
    "shx",
    "dbf",
}
ALLOWED_LATIN |= {"prj", "cpg", "zip", "json", "geojson", "gpkg", "kml"}


def english_in(reason: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z_]{3,}", reason) if w not in ALLOWED_LATIN]


def without(data: bytes, ext: str) -> bytes:
    return _rezip(data, lambda name, b: None if name.endswith(f".{ext}") else b)


def cut(data: bytes, ext: str) -> bytes:
    return _rezip(data, lambda name, b: b[: len(b) // 2] if name.endswith(f".{ext}") else b)


def _rezip(data: bytes, change) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            kept = change(info.filename, zin.read(info))
            if kept is not None:
                zout.writestr(info.filename, kept)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("no .shx", "压缩包缺少 .shx 文件"),
        ("no .dbf", "压缩包缺少 .dbf 文件"),
        ("cut .dbf", "文件不完整（可能上传中断或被截断）"),
        ("cut .shp", "文件不完整（可能上传中断或被截断）"),
        ("cut .shx", "文件不完整（可能上传中断或被截断）"),
        ("cut zip", "压缩包不完整或已损坏"),
        ("cut GeoJSON", "文件不完整（可能上传中断或被截断）"),
        ("not GeoJSON", "不是有效的 GeoJSON"),
    ],
)
def test_a_broken_file_is_refused_with_its_cause_and_what_to_do_in_chinese_only(
    empty_engine, tmp_path, case, said
):
    """GDAL's English reached the person (Unable to open … SHAPE_RESTORE_SHX; fread(321) failed on DBF file;
    Failed to read GeoJSON data; … Unterminated array), a zip without .dbf was asked for its name column,
    and a cut-off .shp was told 几何为空 feature by feature."""
    good = shapefile_zip(small_county(), tmp_path, encoding="GBK")
    geojson = small_county().to_json().encode()
    data, filename = {
        "no .shx": (without(good, "shx"), "县界.zip"),
        "no .dbf": (without(good, "dbf"), "县界.zip"),
        "cut .dbf": (cut(good, "dbf"), "县界.zip"),
        "cut .shp": (cut(good, "shp"), "县界.zip"),
        "cut .shx": (cut(good, "shx"), "县界.zip"),
        "cut zip": (good[: len(good) // 2], "县界.zip"),
        "cut GeoJSON": (geojson[: len(geojson) // 2], "县界.geojson"),
        "not GeoJSON": (b"<html><body>404</body></html>", "县界.geojson"),
    }[case]
    result = import_boundaries(UnitOfWork(empty_engine), data, filename=filename)
    assert not result.ok and len(result.errors) == 1, result.errors
    reason = result.errors[0].reason
    assert said in reason and english_in(reason) == [], reason
    if case.startswith("no "):
        assert reason.endswith("请把同名的 .shp、.shx、.dbf、.prj（及 .cpg）一起压缩后上传"), reason
    assert unit_count(empty_engine) == 0


def test_an_unknown_reader_failure_is_said_in_chinese_and_its_english_goes_to_the_log(
    empty_engine, tmp_path, monkeypatch, caplog
):
    import geo.boundaries

    def fails(*args, **kwargs):
        raise RuntimeError("Something GDAL said about /tmp/boundaries-x/unzipped/bnd.shp")

    monkeypatch.setattr(geo.boundaries.gpd, "read_file", fails)
    with caplog.at_level("WARNING"):
        result = import_boundaries(
            UnitOfWork(empty_engine), small_county().to_json().encode(), filename="a.geojson"
        )
    reason = result.errors[0].reason
    assert reason.startswith("无法读取文件：") and english_in(reason) == [] and "/tmp" not in reason, reason
    assert "Something GDAL said" in caplog.text


# ------------------------------------------------------------------------------------- names-only files


def two_counties_with_a_chengguan(*, village_county: str | None = "row") -> gpd.GeoDataFrame:
    """测试市 with 甲县 and 乙县, each with a 城关镇 and a 溪乡 of two villages (市/区县/乡镇/村 columns).
    ``village_county`` None leaves the villages' 区县 blank."""
    rows = []
    for k, county in enumerate(["甲县", "乙县"]):
        cx = X0 + 0.1 * k
        rows.append(
            dict(市="测试市", 区县=county, 乡镇=None, 村=None, geometry=box(cx, Y0, cx + 0.08, Y0 + 0.04))
        )
        for t, town in enumerate(["城关镇", f"{county[0]}溪乡"]):
            tx = cx + 0.04 * t
            rows.append(
                dict(市="测试市", 区县=county, 乡镇=town, 村=None, geometry=box(tx, Y0, tx + 0.04, Y0 + 0.04))
            )
            for v in range(2):
                rows.append(
                    dict(
                        市="测试市",
                        区县=county if village_county else None,
                        乡镇=town,
                        村=f"{county[0]}{town[:2]}{v}村",
                        geometry=box(tx, Y0 + 0.02 * v, tx + 0.04, Y0 + 0.02 * (v + 1)),
                    )
                )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)


def test_two_counties_each_with_a_township_of_the_same_name_are_told_apart_by_the_name_path(empty_engine):
    """The probe's case: refused with codes the user never wrote (N01 编码重复) and '上级 城关镇 不在文件中'."""
    from geo.boundaries import ParentChoice

    data = two_counties_with_a_chengguan().to_json().encode()
    result = import_boundaries(
        UnitOfWork(empty_engine),
        data,
        filename="测试市.geojson",
        parent=ParentChoice("create", "330800", "测试市"),
    )
    assert result.ok, result.errors
    units = stored_units(empty_engine)
    chengguan = {code: above for code, (name, _, above) in units.items() if name == "城关镇"}
    assert sorted(chengguan.values()) == ["乙县", "甲县"]
    for code, (name, _, above) in units.items():
        if name.endswith("村") and not name.endswith(GENERATED) and "城关" in name:
            assert above == "城关镇" and units[code[:-3]][2] == ("甲县" if name[0] == "甲" else "乙县")


def test_a_township_name_two_counties_share_with_no_county_on_the_village_is_one_clear_line_each(
    empty_engine,
):
    data = two_counties_with_a_chengguan(village_county=None).to_json().encode()
    result = import_boundaries(UnitOfWork(empty_engine), data, filename="测试市.geojson")
    assert not result.ok
    reasons = {e.reason for e in result.errors}
    assert reasons == {
        "上级 城关镇 在文件中有 2 个（甲县的城关镇、乙县的城关镇），无法确定属于哪一个：请填写上级各列（如 区县）以区分"
    }
    assert len(result.errors) == 4  # the four villages of the two 城关镇, nothing about generated codes
    assert unit_count(empty_engine) == 0


# ------------------------------------------------------------------------------------- smaller hints


def test_a_file_written_latitude_first_is_told_its_coordinates_look_swapped(empty_engine):
    """EPSG:4490 written lat,lon was told 看起来是投影坐标（米） and 'GeoJSON 未写明坐标系' though it declared one."""
    doc = json.loads(small_county().to_json())
    for feature in doc["features"]:
        feature["geometry"]["coordinates"] = [
            [[y, x] for x, y in ring] for ring in feature["geometry"]["coordinates"]
        ]
    doc["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    result = import_boundaries(UnitOfWork(empty_engine), json.dumps(doc).encode(), filename="县界.geojson")
    assert not result.ok and len(result.errors) == 1
    reason = result.errors[0].reason
    assert "经度和纬度写反了" in reason and "投影坐标" not in reason and "未写明坐标系" not in reason, reason
    assert unit_count(empty_engine) == 0


def test_codes_that_lost_their_leading_zeros_are_hinted_at(empty_engine):
    frame = small_county()
    frame = frame[frame["level"] != "village"].copy()
    frame["code"] = frame["code"].str.replace("330899", "030899")
    frame["parent_code"] = frame["parent_code"].str.replace("330899", "030899")
    frame.loc[frame["level"] == "county", "code"] = "30899"  # as a number column keeps it
    result = import_boundaries(UnitOfWork(empty_engine), frame.to_json().encode(), filename="县界.geojson")
    assert not result.ok
    assert {e.reason for e in result.errors} == {
        "未知的上级编码 030899：编码可能丢失了开头的 0（Excel 会这样），已有编码 30899：请把编码列设为文本后重新导出"
    }


# ------------------------------------------------------------------------------------- KML folders


def _placemark(name: str, code: str, geom) -> str:
    ring = " ".join(f"{x},{y},0" for x, y in geom.exterior.coords)
    return (
        f"<Placemark><name>{name}</name><ExtendedData><Data name='code'><value>{code}</value></Data>"
        "<Data name='level'><value>乡镇</value></Data></ExtendedData>"
        f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{ring}</coordinates></LinearRing></outerBoundaryIs>"
        "</Polygon></Placemark>"
    )


def test_a_kml_whose_placemarks_are_in_folders_is_read_whole(empty_engine):
    """Google Earth and 奥维 keep placemarks in folders, often nested, with point labels beside the outlines.
    GDAL reads each folder as a layer, and only the first was read: here an empty outer folder (文件中没有
    要素); with the townships in two folders, one of them was imported and the other silently left out."""
    east, west = box(X0, Y0, X0 + 2 * D, Y0 + 2 * D), box(X0 + 2 * D, Y0, X0 + 4 * D, Y0 + 2 * D)
    kml = (
        "<?xml version='1.0' encoding='UTF-8'?><kml xmlns='http://www.opengis.net/kml/2.2'><Document>"
        "<name>测试县</name><Folder><name>标注</name><Placemark><name>东溪村委</name><Point>"
        f"<coordinates>{X0 + D},{Y0 + D},0</coordinates></Point></Placemark></Folder>"
        f"<Folder><name>乡镇</name><Folder><name>东片</name>{_placemark('东溪镇', '330899001', east)}</Folder>"
        f"<Folder><name>西片</name>{_placemark('西溪镇', '330899002', west)}</Folder></Folder>"
        "</Document></kml>"
    )
    result = import_boundaries(UnitOfWork(empty_engine), kml.encode(), filename="乡镇.kml")
    assert result.ok, result.errors
    assert stored_names(empty_engine, "township") == ["东溪镇", "西溪镇"]
    assert any("点标注" in n for n in result.notes) and any("东片、西片" in n for n in result.notes)


def test_a_geopackage_whose_layer_is_declared_of_any_geometry_type_is_read(empty_engine, tmp_path):
    """ogr2ogr -nlt GEOMETRY, FME and mixed exports declare a layer's type GEOMETRY (GDAL: Unknown): its
    polygons were refused as GeoPackage 中没有面图层, beside a layer of points that is rightly not offered."""
    import pyogrio

    path = tmp_path / "县界.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pyogrio.write_dataframe(small_county(), path, layer="xzq", driver="GPKG", geometry_type="Unknown")
        seats = small_county().assign(geometry=lambda f: f.geometry.representative_point())
        pyogrio.write_dataframe(seats, path, layer="驻地", driver="GPKG")
    result = import_boundaries(UnitOfWork(empty_engine), path)
    assert result.ok, result.errors
    assert stored_names(empty_engine, "county", "township") == ["测试县", "东溪镇", "西溪镇"]
