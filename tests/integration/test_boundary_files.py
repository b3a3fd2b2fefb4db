"""Boundary files as GIS tools really write them — the .cpg, the .dbf's 10-byte field names, broken and cut-off
files — imported end to end: read right, or refused in Chinese with what to do, and the store left as it was."""

from __future__ import annotations

import io
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
