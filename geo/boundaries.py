"""A user's boundary file, from bytes to checked units (EPSG:4326): reading, the column mapping, the CRS, checks.

Reading (:func:`read_source`): GeoJSON, a Shapefile (``.shp`` with its siblings, or a ``.zip``; the ``.dbf``'s
text encoding is decided from its bytes with the ``.cpg`` as a hint, :func:`choose_dbf_encoding`), a GeoPackage (the first
polygon layer, or the one named). Files up to :data:`MAX_FILE_BYTES`; GDAL's GeoJSON object-size limit
is raised to the same figure explicitly (its default refuses a single 35 MB feature).

Mapping (:class:`ColumnMapping`, :func:`suggest_mapping`): which property is the code, the name, the
level, the parent, the population. Pre-filled for DataV-style files (``adcode``/``name``/``level``/
``parent`` with ``{"adcode": …}``), for the project's own columns, and for name-only files (省/市/区县
names: each feature's level is its finest filled column, its parent the next coarser, codes generated).

CRS (:func:`to_wgs84`): a file without CRS in lon/lat is WGS84; without CRS in metres it is refused
(projected coordinates); CGCS2000 (EPSG:4490) is taken as WGS84 (they differ by centimetres); other
CRSs are reprojected; GCJ-02 is converted when the user declares it; coordinates outside lon/lat
ranges are refused before anything is generated.

Checks (:func:`validate_units`), in the shape of geopandas' ``_basic_checks``: one function per kind of
problem — fields, each feature, duplicates, parents, containment — every problem listed with the
feature's position, code and field, in Chinese. Nothing here reads or writes a store: the units already
stored come in as :class:`KnownUnit`.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import os
import tempfile
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from domain.hierarchy import unit_code
from geo import names as _names
from geo.crs import POINTS_GCJ02, WGS84, gcj02_to_wgs84
from geo.generate import LEVEL_INDEX, LEVEL_WORDS, LEVELS, estimate_population

log = logging.getLogger(__name__)

#: Largest file accepted (bytes), zipped or not; also GDAL's GeoJSON object-size limit.
MAX_FILE_BYTES = 1 << 30

#: Share of a unit's area that may lie outside its parent before it is an error. Boundary
#: files from different sources rarely match to the metre; 0.5 % tolerates such slivers
#: while any real misplacement is far larger.
OUTSIDE_PARENT_TOLERANCE = 0.005
#: Two units of one parent may share at most this much of the smaller one's area (slivers where the
#: sources differ); beyond it a point there would belong to either, and its grid would be a coin toss.
OVERLAP_TOLERANCE = 0.005
#: Beyond this share of a parent's area outside all of its children from the file, the import says so in a
#: note: no grid is generated there until its own units come, and a report from it is refused meanwhile.
UNCOVERED_TOLERANCE = 0.01

#: What the store's ``admin_units`` columns hold (``db/base.py``: code 32, name 200, kind 16 characters;
#: population a 32-bit integer). A generated child's code is its parent's + 3 digits and its name its
#: parent's + 第k村（自动生成） (a grid's + 第k网格; decision 0056), so a file's code leaves 3 digits per level
#: below it and a name stays well under the column: a longer value would fail in the write (PostgreSQL)
#: instead of being listed here.
MAX_CODE_CHARS = 32
MAX_NAME_CHARS = 100
MAX_KIND_CHARS = 16
MAX_POPULATION = 2_147_483_647


#: Spellings accepted for ``level`` besides the five English names (Chinese, and DataV's English).
LEVEL_ALIASES = {
    "市": "city",
    "地级市": "city",
    "地级": "city",
    "区县": "county",
    "县区": "county",
    "县": "county",
    "区": "county",
    "县级": "county",
    "县级市": "county",
    "市辖区": "county",
    "旗": "county",  # Inner Mongolia's counties
    "区县级": "county",
    "district": "county",
    "乡镇": "township",
    "乡镇街道": "township",
    "街道": "township",
    "街道办事处": "township",
    "街道办": "township",
    "苏木": "township",  # Inner Mongolia's townships
    "乡": "township",
    "镇": "township",
    "乡级": "township",
    "street": "township",
    "town": "township",
    "村": "village",
    "行政村": "village",
    "社区": "village",
    "居委会": "village",
    "村委会": "village",
    "嘎查": "village",  # Inner Mongolia's villages
    "村(社区)": "village",
    "村（社区）": "village",
    "村社区": "village",
    "村居": "village",
    "村级": "village",
    "网格": "grid",
    "乡镇(街道)": "township",
    "乡镇（街道）": "township",
    "县(市、区)": "county",
    "县（市、区）": "county",
}
#: Levels above the five: named in the refusal so the user knows why.
UNSUPPORTED_LEVELS = {"province": "省级", "省": "省级", "省级": "省级", "country": "国家级", "国家": "国家级"}

CRS_AUTO = "auto"
CRS_GCJ02 = POINTS_GCJ02

PARENT_AUTO = "auto"  # a top unit's parent is in the file or the store, or it has none
PARENT_CREATE = "create"  # the parent is made from the union of the file's top units
PARENT_NONE = "none"  # the file's top units become top units of the store

# Column names each field is looked for under (lower case), best first.
_CANDIDATES: dict[str, list[str]] = {
    "code": [
        "code",
        "adcode",
        "区划代码",
        "行政区划代码",
        "区划编码",
        "编码",
        "代码",
        "xzqdm",
        "gbcode",
        "admin_code",
    ],
    "name": ["name", "名称", "区划名称", "单位名称", "xzqmc", "name_chn", "cname"],
    "level": ["level", "级别", "层级", "行政级别", "jb"],
    "parent": [
        "parent_code",
        "parent_cod",
        "parentcode",
        "pcode",
        "上级编码",
        "上级代码",
        "上级区划代码",
        "sjdm",  # 三调 exports: 上级代码
        "sjxzqdm",
        "parent",
    ],
    "population": ["population", "pop", "人口", "常住人口", "户籍人口", "总人口", "rk"],
    "kind": ["kind", "类型"],
}
# Name-only files: one column of names per level (coarse to fine).
_LEVEL_COLUMNS: dict[str, list[str]] = {
    "province": ["province", "省", "省份", "省名", "省级", "provname", "prov_name"],
    "city": ["city", "市", "地级市", "市名", "地市", "cityname", "city_name"],
    "county": [
        "district",
        "county",
        "区县",
        "县区",
        "县",
        "区",
        "县名",
        "区县名",
        "countyname",
        "county_name",
    ],
    "township": ["town", "township", "street", "乡镇", "街道", "乡镇街道", "乡镇名", "townname", "town_name"],
    "village": ["village", "村", "社区", "村社区", "村名", "villname", "village_name"],
}


class BoundaryError(NamedTuple):
    """One problem in the file. ``feature_index`` is the 0-based feature position (None for
    a file-level problem such as a missing column); ``reason`` is in Chinese."""

    feature_index: int | None
    code: str | None
    field: str | None
    reason: str

    def where(self) -> str:
        """第 n 个要素 / 文件, as the user reads it."""
        return "文件" if self.feature_index is None else f"第 {self.feature_index + 1} 个要素"


@dataclass(frozen=True)
class KnownUnit:
    """A unit already in the store, as the checks need it (a parent of the file's top units)."""

    code: str
    level: str
    name: str = ""
    geometry: Any = None


@dataclass(frozen=True)
class ColumnMapping:
    """Which property of the file holds what. None: not in the file.

    ``fixed_level`` is every feature's level when there is no level column; ``parent_is_name`` says the
    parent column holds the parent's name (resolved within the file); ``names_by_level`` (name-only files)
    lists (level, column) coarse to fine: each feature's level is its finest filled column, its name that
    value, its parent the next coarser one. Without a code column codes are generated (``code_prefix``
    then two digits per top unit, parent code + two or three digits below, in name order).
    """

    code: str | None = None
    name: str | None = None
    level: str | None = None
    fixed_level: str | None = None
    parent: str | None = None
    parent_is_name: bool = False
    population: str | None = None
    kind: str | None = None
    names_by_level: tuple[tuple[str, str], ...] = ()
    code_prefix: str = "N"
    style: str = "standard"  # how it was guessed: standard / datav / names

    def columns(self) -> list[str]:
        cols = [self.code, self.name, self.level, self.parent, self.population, self.kind]
        return [c for c in cols if c] + [c for _, c in self.names_by_level]


@dataclass(frozen=True)
class ParentChoice:
    """What the file's top units hang under: :data:`PARENT_AUTO` (their parent code is in the file or the
    store; none given: they are top units), :data:`PARENT_CREATE` (a parent made from their union, with
    ``code``/``name``, by default the common parent code / parent name the file gives), or
    :data:`PARENT_NONE` (they become top units whatever the file says)."""

    mode: str = PARENT_AUTO
    code: str | None = None
    name: str | None = None


@dataclass
class SourceFile:
    """A file as read: its features with their own properties (CRS as the file declares it)."""

    frame: gpd.GeoDataFrame
    name: str
    format: str  # GeoJSON / Shapefile / GeoPackage
    notes: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)

    @property
    def properties(self) -> list[str]:
        return [str(c) for c in self.frame.columns if c != self.frame.geometry.name]


@dataclass
class BoundaryCheck:
    """Result of a validation: ``units`` (EPSG:4326; code, name, level, parent_code, population, kind,
    geometry) when there are no errors, else None; ``notes`` say what was assumed or converted."""

    units: gpd.GeoDataFrame | None
    errors: list[BoundaryError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    estimated: list[str] = field(default_factory=list)  # codes whose population was estimated

    @property
    def ok(self) -> bool:
        return not self.errors


# --------------------------------------------------------------------------------------------- reading


def read_source(
    source, *, filename: str | None = None, max_bytes: int = MAX_FILE_BYTES, layer: str | None = None
) -> tuple[SourceFile | None, list[BoundaryError]]:
    """Read a boundary file: a path, bytes (``filename`` gives the format), or a file object (an upload).

    Nothing is written anywhere. A file over ``max_bytes`` (or a zip unpacking to more) is refused
    before it is parsed.
    """
    try:
        name, data, path = _materialise(source, filename)
    except OSError as exc:
        log.warning("boundary file %r not read: %s", filename, exc)
        said = str(exc) if str(exc).startswith("找不到文件") else "文件无法打开，请检查文件后重新上传"
        return None, [BoundaryError(None, None, None, f"无法读取文件：{said}")]
    size = len(data) if data is not None else os.path.getsize(path)  # type: ignore[arg-type]
    if size > max_bytes:
        return None, [_oversized(size, max_bytes)]
    if size == 0:
        return None, [BoundaryError(None, None, None, "文件为空")]
    with tempfile.TemporaryDirectory(prefix="boundaries-") as tmp:
        if data is not None:
            path = Path(tmp) / (Path(name).name or "upload")
            if not path.suffix:
                path = path.with_suffix(_sniff(data))
            path.write_bytes(data)
        assert path is not None
        try:
            found, problem = _dataset(Path(path), Path(tmp), max_bytes, layer)
        except Exception as exc:  # a zip or GeoPackage GDAL or zipfile cannot open: the user's file
            return None, [_unreadable(exc, _kind_of(Path(path)), Path(path), Path(tmp))]
        if problem is not None:
            return None, [problem]
        assert found is not None
        dataset, kind, layer_name, layers, notes = found
        text = _DbfText()
        if kind == "Shapefile":
            broken = _shapefile_problem(dataset, zipped=Path(path).suffix.lower() == ".zip")
            if broken is not None:
                return None, [broken]
            text = _dbf_text(_sibling(dataset, ".dbf"), _sibling(dataset, ".cpg"))
            if text.problem is not None:
                return None, [text.problem]
            notes += text.notes
        _allow_large_geojson(max_bytes)
        try:
            if kind == "KML":
                frame = _read_kml(dataset, notes)
            else:
                # text in a known encoding is read byte for byte (ISO-8859-1) and decoded here: GDAL would
                # take an unknown .cpg as Latin-1 without a word, and pyogrio fails on a field name cut
                # mid-character
                frame = gpd.read_file(
                    dataset, layer=layer_name, encoding="ISO-8859-1" if text.encoding else None
                )
        except Exception as exc:  # any reader failure is the user's file, reported not raised
            return None, [_unreadable(exc, kind, dataset, Path(tmp))]
        if text.encoding:
            frame, cut = _decoded_frame(frame, text.encoding)
            if cut:
                notes.append(_cut_names_note(cut))
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        return None, [
            BoundaryError(
                None, None, None, f"文件中没有几何（边界）：{kind} 文件只有属性表，不能作为区划文件"
            )
        ]
    return SourceFile(frame, name, kind, notes, layers), []


def _read_kml(dataset: Path, notes: list[str]) -> gpd.GeoDataFrame:
    """Every folder of a KML as one frame. GDAL reads each <Folder> (and the placemarks at the document's
    level) as a layer of its own, and only the first by default: Google Earth, 天地图 and 奥维 keep placemarks
    in folders (often nested, the outer one empty), so the first layer held part of the area, or nothing,
    or only the map's point labels. Point placemarks (labels, 村委 markers) are left out with a note;
    lines stay, to be refused as not polygons."""
    names = [str(n) for n, _ in pyogrio.list_layers(dataset)]
    if len(names) <= 1:
        return gpd.read_file(dataset)
    frames = [gpd.read_file(dataset, layer=n) for n in names]
    filled = [(n, f) for n, f in zip(names, frames, strict=True) if len(f)]
    if not filled:
        return frames[0]
    frame = gpd.GeoDataFrame(
        pd.concat([f for _, f in filled], ignore_index=True), geometry="geometry", crs=filled[0][1].crs
    )
    points = frame.geometry.notna() & frame.geometry.geom_type.isin(["Point", "MultiPoint"])
    if points.any() and not points.all():  # a file of points only is refused as such
        frame = frame[~points].reset_index(drop=True)
        notes.append(f"KML 中的 {int(points.sum())} 个点标注不是边界，未读取")
    notes.append(
        f"KML 有 {len(filled)} 个含要素的文件夹（{'、'.join(n for n, _ in filled[:10])}"
        f"{' 等' if len(filled) > 10 else ''}），已全部读取"
    )
    return frame


#: The person's words for a file cut short, whatever part of it.
INCOMPLETE = "文件不完整（可能上传中断或被截断）"


def _kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".zip": "压缩包", ".gpkg": "GeoPackage", ".kml": "KML", ".shp": "Shapefile"}.get(
        suffix, "GeoJSON"
    )


def _unreadable(exc: Exception, kind: str, dataset: Path, tmp: Path) -> BoundaryError:
    """A reader's failure as the person can act on it, in Chinese. GDAL's and Python's own English, and
    the server's paths, go to the log only."""
    log.warning("boundary file %s (%s) not read: %s: %s", dataset.name, kind, type(exc).__name__, exc)
    said = str(exc)
    if isinstance(exc, UnicodeDecodeError) and kind == "Shapefile":
        why = (
            "属性表的文字编码无法识别：请在 GIS 软件中将图层另存为 UTF-8 编码的 Shapefile，连同 .cpg 文件一起打包后"
            "重新上传"
        )
    elif isinstance(exc, UnicodeDecodeError):
        why = f"{kind} 文件须为 UTF-8 编码：请用 GIS 软件或文本编辑器另存为 UTF-8 后重新上传"
    elif isinstance(exc, zipfile.BadZipFile) or kind == "压缩包":
        why = "压缩包不完整或已损坏（可能上传中断）：请重新压缩后上传"
    elif kind == "GeoJSON" and ("GeoJSON" in said or "JSON" in said):
        why = _json_problem(dataset)
    elif "not recognized as being in a supported file format" in said:
        why = f"文件内容不是有效的 {kind}（可能已损坏、未保存完整或扩展名与内容不符）：请用 GIS 软件重新导出"
    elif any(w in said for w in ("fread", "failed on", "corrupt", "unreadable", "Unterminated", "truncated")):
        why = f"{INCOMPLETE}：请重新导出后上传"
    else:
        why = f"{kind} 文件无法解析：请检查文件是否完整，或用 GIS 软件重新导出后上传"
    return BoundaryError(None, None, None, f"无法读取文件：{why}")


def _json_problem(path: Path) -> str:
    """Why GDAL could not read a GeoJSON: cut short (the parser ran out of text), or where it is malformed."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return f"{INCOMPLETE}：请重新导出后上传"
        return f"GeoJSON 格式有误（第 {exc.lineno} 行第 {exc.colno} 个字符附近）：请用 GIS 软件重新导出"
    except OSError:
        pass
    return "文件内容不是有效的 GeoJSON：请用 GIS 软件重新导出"


def _shapefile_problem(shp: Path, *, zipped: bool) -> BoundaryError | None:
    """A Shapefile whose .shx or .dbf is missing, or whose .shp, .shx or .dbf is shorter than its own header
    says (cut short): told before GDAL reads it (it would say so in English, or read empty outlines)."""
    together = (
        "请把同名的 .shp、.shx、.dbf、.prj（及 .cpg）一起压缩后上传" if zipped else "请把它们放在同一文件夹"
    )
    where = "压缩包" if zipped else f"{shp.stem}.shp 旁"
    for suffix, what in ((".shx", "（几何索引）"), (".dbf", "（属性表：编码、名称都在其中）")):
        if _sibling(shp, suffix) is None:
            return BoundaryError(
                None, None, None, f"无法读取文件：{where}缺少 {suffix} 文件{what}：{together}"
            )
    for part in (shp, _sibling(shp, ".shx"), _sibling(shp, ".dbf")):
        if part is not None and _cut_short(part):
            return BoundaryError(
                None,
                None,
                None,
                f"无法读取文件：{part.suffix.lower()} {INCOMPLETE}：请从 GIS 软件重新导出，打包后重新上传",
            )
    return None


def _cut_short(part: Path) -> bool:
    """Whether a .shp/.shx (length in 16-bit words at byte 24) or .dbf (header + records) is shorter than
    its header says."""
    size = part.stat().st_size
    with part.open("rb") as f:
        head = f.read(32)
    if part.suffix.lower() in (".shp", ".shx"):
        return len(head) < 28 or size < 2 * int.from_bytes(head[24:28], "big")
    if len(head) < 12:
        return True
    records = int.from_bytes(head[4:8], "little") * int.from_bytes(head[10:12], "little")
    return size < int.from_bytes(head[8:10], "little") + records


def _oversized(size: int, max_bytes: int) -> BoundaryError:
    return BoundaryError(
        None,
        None,
        None,
        f"文件过大（{size / 2**20:.0f} MB），上限为 {max_bytes / 2**20:.0f} MB：请拆分后分批导入",
    )


def _materialise(source, filename: str | None) -> tuple[str, bytes | None, Path | None]:
    """(file name, its bytes or None, its path on disk or None)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise OSError(f"找不到文件 {path}")
        return path.name, None, path
    if isinstance(source, (bytes, bytearray, memoryview)):
        return filename or "upload", bytes(source), None
    data = source.getvalue() if hasattr(source, "getvalue") else source.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return filename or str(getattr(source, "name", "") or "upload"), bytes(data), None


def _sniff(data: bytes) -> str:
    if data[:2] == b"PK":
        return ".zip"
    if data[:16].startswith(b"SQLite format 3"):
        return ".gpkg"
    return ".geojson"


def _dataset(path: Path, tmp: Path, max_bytes: int, layer: str | None):
    """((dataset path, format, layer, layers, notes), None) or (None, the problem)."""
    suffix = path.suffix.lower()
    notes: list[str] = []
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > max_bytes:
                return None, _oversized(sum(m.file_size for m in members), max_bytes)
            for m in members:
                target = (tmp / "unzipped" / m.filename).resolve()
                if not str(target).startswith(str((tmp / "unzipped").resolve())):
                    return None, BoundaryError(None, None, None, f"压缩包中的路径无效: {m.filename}")
            zf.extractall(tmp / "unzipped")
        inside = sorted(p for p in (tmp / "unzipped").rglob("*") if p.is_file() and "__MACOSX" not in p.parts)
        for wanted in (".shp", ".gpkg", ".geojson", ".json"):
            hits = [p for p in inside if p.suffix.lower() == wanted]
            if hits:
                every = [p.stem for p in hits] if wanted == ".shp" else []
                if layer and wanted == ".shp":
                    hits = [p for p in hits if p.stem == layer] or hits
                if len(every) > 1:
                    notes.append(f"压缩包中有 {len(every)} 个 .shp 文件（图层），读取的是 {hits[0].name}")
                found, problem = _dataset_of(hits[0], layer if wanted == ".gpkg" else None, notes)
                if found is not None and every:
                    found = (*found[:3], every, found[4])
                return found, problem
        return None, BoundaryError(None, None, None, "压缩包中没有 .shp、.gpkg 或 .geojson 文件")
    return _dataset_of(path, layer, notes)


def _dataset_of(path: Path, layer: str | None, notes: list[str]):
    suffix = path.suffix.lower()
    if suffix == ".shp":
        return (path, "Shapefile", None, [], notes), None
    if suffix == ".gpkg":
        listed = [(str(n), str(t or "")) for n, t in pyogrio.list_layers(path)]
        # a layer declared GEOMETRY (Unknown: ogr2ogr -nlt GEOMETRY, FME, mixed exports) may hold polygons too:
        # offered after the declared ones, its features checked one by one like any others
        polygonal = [n for n, t in listed if "polygon" in t.lower()] + [
            n
            for n, t in listed
            if t and not any(w in t.lower() for w in ("point", "line", "string", "polygon"))
        ]
        if layer is not None:
            if layer not in {n for n, _ in listed}:
                return None, BoundaryError(None, None, None, f"GeoPackage 中没有图层 {layer}")
            chosen = layer
        elif polygonal:
            chosen = polygonal[0]
        else:
            return None, BoundaryError(None, None, None, "GeoPackage 中没有面图层 (Polygon/MultiPolygon)")
        if len(polygonal) > 1:
            notes.append(f"GeoPackage 有 {len(polygonal)} 个面图层，读取的是 {chosen}")
        return (path, "GeoPackage", chosen, polygonal, notes), None
    if suffix in (".geojson", ".json"):
        return (path, "GeoJSON", None, [], notes), None
    if suffix == ".kml":  # Google Earth, 天地图 and 奥维 exports: GDAL reads them as well
        return (path, "KML", None, [], notes), None
    return None, BoundaryError(
        None,
        None,
        None,
        f"不支持的文件格式（{suffix or '无扩展名'}）：请上传 GeoJSON（.geojson/.json）、"
        "打包为 .zip 的 Shapefile、GeoPackage（.gpkg）或 KML；表格（CSV、Excel）中没有边界，不能作为区划文件",
    )


#: Code pages a .cpg names by number (ESRI writes "936", "ANSI 936", "65001", "88591") that are not
#: simply Python's ``cp<number>``.
_CODE_PAGES = {"54936": "gb18030", "20936": "gb2312", "88591": "iso8859-1", "28591": "iso8859-1"}
_CJK = ("\u4e00", "\u9fff")
_NEITHER_UTF8_NOR_GBK = (
    "无法读取文件：属性表的文字编码无法识别（既不是 UTF-8，也不是 GBK）：请在 GIS 软件中将图层另存为 UTF-8 编码的"
    " Shapefile（QGIS：导出 → 要素另存为，编码选 UTF-8），连同 .cpg 文件一起打包后重新上传"
)


@dataclass
class _DbfText:
    """How a .dbf's text is to be decoded: ``encoding`` a Python codec (None: nothing but ASCII, read as
    it is), the notes saying what was assumed, or the problem that refuses the file."""

    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    problem: BoundaryError | None = None


def _sibling(dataset: Path, suffix: str) -> Path | None:
    """The file beside ``dataset`` with its stem and ``suffix`` in any case (.cpg, .CPG), or None."""
    for p in (dataset.with_suffix(suffix), dataset.with_suffix(suffix.upper())):
        if p.exists():
            return p
    for p in dataset.parent.glob(f"{dataset.stem}.*"):
        if p.suffix.lower() == suffix:
            return p
    return None


def _cpg_codec(said: str) -> str | None:
    """The Python codec a .cpg's text names ("UTF-8", "GBK", "936", "ANSI 936", "65001"), None if unknown."""
    word = said.strip().upper()
    for prefix in ("ANSI", "OEM", "CP", "WINDOWS-"):
        if word.startswith(prefix) and word[len(prefix) :].strip().isdigit():
            word = word[len(prefix) :].strip()
    if word.isdigit():
        word = _CODE_PAGES.get(word, f"cp{word}")
    try:
        return codecs.lookup(word).name
    except LookupError:
        return None


def _has_cjk(text: str) -> bool:
    return any(_CJK[0] <= ch <= _CJK[1] for ch in text)


def _field_name(raw: bytes, codec: str) -> str | None:
    """A .dbf field name decoded; one cut mid-character at the 10-byte limit (UTF-8 Chinese names are)
    keeps its whole characters. None: not text in ``codec``."""
    for cut in range(4 if len(raw) >= 10 else 1):
        try:
            return raw[: len(raw) - cut].decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _dbf_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(field names, records) of a .dbf's bytes."""
    n_records = int.from_bytes(data[4:8], "little")
    header = int.from_bytes(data[8:10], "little")
    record = int.from_bytes(data[10:12], "little")
    names = [data[i : i + 11].split(b"\0")[0] for i in range(32, max(32, header - 1), 32)]
    return names, data[header : header + n_records * record]


def _decode_dbf(names: list[bytes], records: bytes, codec: str) -> str | None:
    """Every field name and record decoded in ``codec`` (names may be cut, see :func:`_field_name`), else None."""
    decoded = [_field_name(n, codec) for n in names]
    if any(d is None for d in decoded):
        return None
    try:
        return "".join(d for d in decoded if d) + records.decode(codec)
    except UnicodeDecodeError:
        return None


def choose_dbf_encoding(names: list[bytes], records: bytes, cpg: str | None) -> _DbfText:
    """Which encoding a .dbf's text is in, from its bytes, with the .cpg's word (``cpg``; None: no .cpg).

    Text that is only ASCII needs none. A .cpg naming an encoding the text is in is followed, unless that
    gives no Chinese character where GBK gives some (a single-byte code page over GBK text) or the text is
    Chinese in UTF-8 where the .cpg said otherwise. Without a .cpg, or with one nobody knows (``System``,
    ``OEM``) or that the text contradicts (``UTF-8`` or ``65001`` over GBK text), the text is UTF-8 when it
    decodes as UTF-8 (a field name cut mid-character at the 10-byte limit, or a few values cut short, are
    still UTF-8), else GBK when it is Chinese in GBK (most Chinese GIS exports), else the file is refused
    with what to do. What was assumed is said in a note, in Chinese.
    """
    if records.isascii() and all(n.isascii() for n in names):
        return _DbfText()
    declared = _cpg_codec(cpg) if cpg is not None else None
    utf8 = _decode_dbf(names, records, "utf-8")
    if declared is not None and declared != "utf-8":
        text = _decode_dbf(names, records, declared)
        chinese_in_utf8 = utf8 is not None and _has_cjk(utf8)
        gbk = _decode_dbf(names, records, "gb18030")
        if text is not None and not chinese_in_utf8 and (_has_cjk(text) or gbk is None or not _has_cjk(gbk)):
            return _DbfText(declared)
    elif declared == "utf-8" and utf8 is not None:
        return _DbfText(declared)
    notes = []
    if utf8 is not None:
        found = "UTF-8"
    elif _mostly_utf8(names, records):
        found = "UTF-8"
        notes.append("属性表中个别文字不是完整的 UTF-8 字符（可能在导出时被截断），以 � 显示：请核对名称")
    elif (gbk := _decode_dbf(names, records, "gb18030")) is not None and _has_cjk(gbk):
        found = "GBK"
    else:
        return _DbfText(problem=BoundaryError(None, None, None, _NEITHER_UTF8_NOR_GBK))
    if cpg is not None:
        why = "无法识别" if declared is None else "与属性内容不符"
        notes.insert(
            0, f".cpg 文件写的编码「{cpg.strip()}」{why}，属性按 {found} 编码读取：请核对名称是否正确"
        )
    elif found == "GBK":
        notes.insert(0, "未找到 .cpg 文件，属性按 GBK 编码读取")
    return _DbfText("utf-8" if found == "UTF-8" else "gb18030", notes)


def _mostly_utf8(names: list[bytes], records: bytes) -> bool:
    """UTF-8 text with a few characters cut (at most one in 50 non-ASCII characters undecodable): GBK text
    read as UTF-8 fails at almost every character."""
    text = (b"".join(names) + records).decode("utf-8", errors="replace")
    wide = len(text) - len(text.encode("ascii", errors="ignore"))
    return wide > 0 and text.count("\ufffd") * 50 <= wide


def _dbf_text(dbf: Path | None, cpg: Path | None) -> _DbfText:
    """:func:`choose_dbf_encoding` for a Shapefile's .dbf and .cpg on disk."""
    if dbf is None:
        return _DbfText()
    data = dbf.read_bytes()
    if len(data) < 32:
        return _DbfText()
    said = cpg.read_bytes().decode("ascii", errors="replace") if cpg is not None else None
    names, records = _dbf_parts(data)
    return choose_dbf_encoding(names, records, said)


def _decoded_frame(frame: gpd.GeoDataFrame, codec: str) -> tuple[gpd.GeoDataFrame, list[str]]:
    """(a frame read byte for byte (ISO-8859-1) with its field names and text decoded in ``codec``, the
    field names that were cut mid-character at the .dbf's 10 bytes, as kept)."""

    def text(value):
        if not isinstance(value, str):
            return value
        try:
            return value.encode("iso8859-1").decode(codec, errors="replace")
        except UnicodeEncodeError:
            return value

    geometry = frame.geometry.name
    renamed: dict[str, str] = {}
    cut: list[str] = []
    for col in frame.columns:
        if col == geometry:
            continue
        try:
            raw = str(col).encode("iso8859-1")
            name = _field_name(raw, codec) or str(col)
            if len(name.encode(codec)) < len(raw):
                cut.append(name)
        except UnicodeEncodeError:
            name = str(col)
        while name in renamed.values() or (name != col and name in frame.columns):
            name += "_"
        renamed[col] = name
    out = frame.rename(columns=renamed)
    for col in renamed.values():
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(text)
    return out, cut


def _cut_names_note(cut: Sequence[str]) -> str:
    """What the person is told of field names the .dbf cut mid-character (区划代码 → 区划代)."""
    shown = "、".join(f"{c}（{full}）" if (full := full_field_name(c)) else c for c in cut)
    return (
        f"Shapefile 的字段名最长 10 字节，UTF-8 的中文字段名被截断：{shown}；已按括号中的完整名称对应字段，"
        "请在「字段对应」中核对"
    )


def _allow_large_geojson(max_bytes: int) -> None:
    # GDAL refuses a GeoJSON object above OGR_GEOJSON_MAX_OBJ_SIZE (MB; a single 35 MB feature failed at
    # the default here): raised to the file limit, the one size rule.
    pyogrio.set_gdal_config_options({"OGR_GEOJSON_MAX_OBJ_SIZE": str(max_bytes // 2**20 + 1)})


# --------------------------------------------------------------------------------------------- mapping


#: Longest field name a .dbf holds (bytes): longer Chinese names are cut, UTF-8 ones mid-character.
DBF_NAME_BYTES = 10


def _cut_forms(name: str) -> set[str]:
    """What a .dbf keeps of a field name longer than :data:`DBF_NAME_BYTES` in UTF-8 or GBK (whole
    characters only: 区划代码 → 区划代 in UTF-8); nothing for a name that fits or a cut of one character."""
    out = set()
    for encoding in ("utf-8", "gbk"):
        raw = name.encode(encoding)
        if len(raw) > DBF_NAME_BYTES:
            kept = raw[:DBF_NAME_BYTES].decode(encoding, errors="ignore")
            if len(kept) >= 2:
                out.add(kept)
    return out


def _cut_owners() -> dict[str, set[str]]:
    """Each cut form of a candidate column name → the full names it may come from."""
    owners: dict[str, set[str]] = {}
    for table in (_CANDIDATES, _LEVEL_COLUMNS):
        for names in table.values():
            for full in names:
                for kept in _cut_forms(full):
                    owners.setdefault(kept, set()).add(full)
    return owners


_CUT_OWNERS = _cut_owners()


def full_field_name(column: str) -> str | None:
    """The candidate column name a .dbf's cut field name stands for (区划代 → 区划代码), if only one."""
    owners = _CUT_OWNERS.get(column.strip().lower(), set())
    return next(iter(owners)) if len(owners) == 1 else None


def _find(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    """The column named as the first candidate found; else one a .dbf cut from a candidate (区划代: 区划代码)."""
    by_low: dict[str, str] = {}
    for c in columns:
        by_low.setdefault(str(c).strip().lower(), c)
    for cand in candidates:
        if cand in by_low:
            return by_low[cand]
    for cand in candidates:
        for kept in _cut_forms(cand):
            if kept in by_low and full_field_name(kept) == cand:
                return by_low[kept]
    return None


def suggest_mapping(frame: pd.DataFrame) -> ColumnMapping:
    """The mapping a person would most likely choose for this file (pre-filled in the mapping step)."""
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    cols = [str(c) for c in frame.columns if c != geometry]
    found = {key: _find(cols, cands) for key, cands in _CANDIDATES.items()}
    if found["code"] is not None and str(found["code"]).lower() == "adcode":
        return ColumnMapping(
            code=found["code"],
            name=found["name"],
            level=found["level"],
            fixed_level=None if found["level"] else "county",
            parent=found["parent"],
            population=found["population"],
            kind=found["kind"],
            style="datav",
        )
    by_level = {lv: _find(cols, cands) for lv, cands in _LEVEL_COLUMNS.items()}
    named = [(lv, c) for lv, c in by_level.items() if c is not None and lv != "province"]
    if found["code"] is None and named:
        finest = LEVEL_INDEX[named[-1][0]]
        plain = found["name"]
        if plain is not None and plain not in {c for _, c in named} and finest + 1 < len(LEVELS):
            named.append((LEVELS[finest + 1], plain))
        return ColumnMapping(
            names_by_level=tuple(named), population=found["population"], kind=found["kind"], style="names"
        )
    return ColumnMapping(
        code=found["code"],
        name=found["name"],
        level=found["level"],
        parent=found["parent"],
        population=found["population"],
        kind=found["kind"],
    )


def _text(value) -> str | None:
    """A field value as clean text; numbers as integers when integral (codes read as floats)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if np.ndim(value) == 0 and pd.isna(value):
        return None
    text = str(value).strip()
    return text or None


def _code_text(value) -> str | None:
    """A code field as stored (:func:`domain.hierarchy.unit_code`): ９９０１００ or 330899 001 as 990100 and
    330899001, so that the staff, department and venue imports find the unit by the code they are given."""
    text = _text(value)
    return (unit_code(text) or None) if text is not None else None


def _parent_text(value) -> str | None:
    """A parent reference: text, or DataV's ``{"adcode": 330800}`` (an object, or its JSON text)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return _text(value)
    if isinstance(value, Mapping):
        for key in ("adcode", "code", "parent_code"):
            if key in value:
                return _text(value[key])
        return None
    return _text(value) if np.ndim(value) == 0 else None


def level_of(value) -> str | None:
    """One of the five level names for a level value (English, Chinese, DataV), else None."""
    text = _text(value)
    if text is None:
        return None
    low = text.lower()
    return low if low in LEVEL_INDEX else LEVEL_ALIASES.get(low, LEVEL_ALIASES.get(text))


@dataclass
class _Mapped:
    """The file's values under the project's field names, one list per field, one entry per feature."""

    codes: list[str | None]
    names: list[str | None]
    raw_levels: list[Any]
    levels: list[str | None]
    parents: list[str | None]
    parent_names: list[str | None]
    populations: list[Any]
    kinds: list[str | None]
    generated_codes: bool = False
    #: name-only files: each feature's filled (level, name) columns, coarse to fine (its parent's are the same
    #: less the last)
    name_paths: list[tuple[tuple[str, str], ...]] = field(default_factory=list)
    #: features whose parent name fits several units: told once, not again as missing
    ambiguous: set[int] = field(default_factory=set)


def _check_fields(frame: gpd.GeoDataFrame, m: ColumnMapping) -> list[BoundaryError]:
    """File-level: every mapped column exists, and the mapping says where code, name and level are."""
    cols = {str(c) for c in frame.columns if c != frame.geometry.name}
    errors = []
    for key, col in (
        ("code", m.code),
        ("name", m.name),
        ("level", m.level),
        ("parent_code", m.parent),
        ("population", m.population),
        ("kind", m.kind),
    ):
        if col is not None and col not in cols:
            errors.append(BoundaryError(None, None, key, f"文件中没有字段 {col}"))
    for _, col in m.names_by_level:
        if col not in cols:
            errors.append(BoundaryError(None, None, "name", f"文件中没有字段 {col}"))
    if m.names_by_level:
        return errors
    if m.code is None and m.parent is not None and not m.parent_is_name:
        errors.append(BoundaryError(None, None, "code", "请指定编码所在的列"))
    if m.name is None:
        errors.append(BoundaryError(None, None, "name", "请指定名称所在的列"))
    if m.level is None and m.fixed_level is None:
        errors.append(BoundaryError(None, None, "level", "请指定级别所在的列（或为全部要素指定一个级别）"))
    if m.fixed_level is not None and m.fixed_level not in LEVEL_INDEX:
        errors.append(BoundaryError(None, None, "level", f"级别无效: {m.fixed_level}"))
    return errors


def _map_values(frame: gpd.GeoDataFrame, m: ColumnMapping) -> _Mapped:
    n = len(frame)

    def col(name: str | None) -> list:
        return list(frame[name]) if name is not None else [None] * n

    if m.names_by_level:
        names: list[str | None] = [None] * n
        levels: list[str | None] = [None] * n
        parent_names: list[str | None] = [None] * n
        table = [(lv, [_text(v) for v in frame[c]]) for lv, c in m.names_by_level]
        paths: list[tuple[tuple[str, str], ...]] = []
        for i in range(n):
            filled = [(lv, vals[i]) for lv, vals in table if vals[i] is not None]
            paths.append(tuple(filled))  # type: ignore[arg-type]
            if filled:
                levels[i], names[i] = filled[-1]
                parent_names[i] = filled[-2][1] if len(filled) > 1 else None
        return _Mapped(
            [None] * n,
            names,
            list(levels),
            levels,
            [None] * n,
            parent_names,
            col(m.population),
            [_text(v) for v in col(m.kind)],
            name_paths=paths,
        )
    raw_levels = col(m.level) if m.level is not None else [m.fixed_level] * n
    parents = [_parent_text(v) for v in col(m.parent)]
    return _Mapped(
        [_code_text(v) for v in col(m.code)],
        [_text(v) for v in col(m.name)],
        raw_levels,
        [level_of(v) for v in raw_levels],
        [None] * n if m.parent_is_name else [_code_text(p) for p in parents],
        parents if m.parent_is_name else [None] * n,
        col(m.population),
        [_text(v) for v in col(m.kind)],
    )


def _resolve_names(v: _Mapped, m: ColumnMapping) -> list[BoundaryError]:
    """Parents given by name → codes (within the file); codes generated where the file has none.

    In a name-only file a parent is first the feature whose name columns are the child's less the last (甲县's
    城关镇 and 乙县's 城关镇 are two); by its name alone only when no such feature is there. A name that
    still fits several units is told once per child, naming their parents."""
    errors: list[BoundaryError] = []
    n = len(v.names)
    by_name: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        if v.levels[i] is not None and v.names[i] is not None:
            by_name.setdefault((v.levels[i], v.names[i]), []).append(i)  # type: ignore[arg-type]
    by_path: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for i, path in enumerate(v.name_paths):
        by_path.setdefault(path, []).append(i)
    parent_row: list[int | None] = [None] * n
    for i in range(n):
        pname, level = v.parent_names[i], v.levels[i]
        if pname is None or level is None or LEVEL_INDEX[level] == 0:
            continue
        above = LEVELS[LEVEL_INDEX[level] - 1]
        rows = (
            [j for j in by_path.get(v.name_paths[i][:-1], []) if v.levels[j] == above] if v.name_paths else []
        )
        rows = rows or by_name.get((above, pname), [])
        if len(rows) > 1:
            v.ambiguous.add(i)
            whose = "、".join(f"{v.parent_names[j] or ''}的{pname}" for j in rows[:5])
            errors.append(
                BoundaryError(
                    i,
                    None,
                    "parent_code",
                    f"上级 {pname} 在文件中有 {len(rows)} 个（{whose}），无法确定属于哪一个："
                    f"请填写上级各列（如 {_level_column(m, above)}）以区分",
                )
            )
        elif rows:
            parent_row[i] = rows[0]
    if all(c is None for c in v.codes):
        v.generated_codes = True
        order = sorted(range(n), key=lambda i: (LEVEL_INDEX.get(v.levels[i] or "", 9), v.names[i] or "", i))
        seq: dict[Any, int] = {}
        for i in order:
            p = parent_row[i]
            key: object
            if p is not None and v.codes[p] is not None:
                key, width = v.codes[p], 2 if v.levels[i] == "county" else 3
            else:  # top units (or orphans, refused anyway) share one sequence: no code twice
                key, width = m.code_prefix, 2
            seq[key] = seq.get(key, 0) + 1
            prefix = v.codes[p] if p is not None and v.codes[p] is not None else m.code_prefix
            v.codes[i] = f"{prefix}{seq[key]:0{width}d}"
    for i in range(n):
        p = parent_row[i]
        if p is not None:
            v.parents[i] = v.codes[p]
    return errors


def _level_column(m: ColumnMapping, level: str) -> str:
    """The file's column of names above ``level`` (区县 for a township's parent), or the level's word."""
    coarser = [c for lv, c in m.names_by_level if LEVEL_INDEX[lv] < LEVEL_INDEX[level]]
    return coarser[-1] if coarser else LEVEL_WORDS[level]


# --------------------------------------------------------------------------------------------- CRS


def _lonlat(bounds) -> bool:
    minx, miny, maxx, maxy = bounds
    return bool(np.all(np.isfinite(bounds)) and -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


#: China's extent in lon/lat (min lon, min lat, max lon, max lat), generously: what a latitude-first file of a
#: Chinese area reads as once its two numbers are swapped back.
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


def _in_china(bounds) -> bool:
    minx, miny, maxx, maxy = bounds
    return bool(
        np.all(np.isfinite(bounds))
        and CHINA_BOUNDS[0] <= minx <= maxx <= CHINA_BOUNDS[2]
        and CHINA_BOUNDS[1] <= miny <= maxy <= CHINA_BOUNDS[3]
    )


#: GEOS's reasons for an invalid polygon, in Chinese (the point where it happens is kept).
_GEOS_REASONS = {
    "Self-intersection": "边界自相交（如 8 字形）",
    "Ring Self-intersection": "边界环自相交",
    "Interior is disconnected": "内部被洞分割成不相连的部分",
    "Hole lies outside shell": "内洞在外边界之外",
    "Nested holes": "内洞嵌套",
    "Nested shells": "多个面互相嵌套",
    "Duplicate Rings": "边界环重复",
    "Too few points in geometry component": "边界点数过少",
    "Invalid Coordinate": "坐标无效（非数字或无穷大）",
    "Ring is not closed": "边界环未闭合",
}


def invalid_reason(geom) -> str:
    """Why ``geom`` is invalid, in Chinese, with the place GEOS names (经度 纬度)."""
    reason = str(shapely.is_valid_reason(geom))
    what, _, where = reason.partition("[")
    said = _GEOS_REASONS.get(what.strip(), what.strip())
    place = where.rstrip("]").split()
    if len(place) >= 2:
        said += f"，位置约在 {place[0]}, {place[1]}"
    return said + "：请用 GIS 软件修复几何后重新导出"


def _projected_hint(bounds) -> str:
    """Which CGCS2000 Gauss–Krüger EPSG code the eastings suggest: with the zone number in front (8
    digits before the point, 39 500 000) the zone's own code (3-degree zones 25–45: EPSG:4513–4533),
    else the central-meridian family (EPSG:4534–4554)."""
    easting = float(bounds[0])
    if 1e7 <= easting < 1e8:
        zone = int(easting // 1e6)
        if 25 <= zone <= 45:
            return f"X 坐标以带号 {zone} 开头：CGCS2000 3 度带第 {zone} 带为 EPSG:{4513 + zone - 25}"
    return "如 CGCS2000 3 度带 EPSG:4549；X 坐标以带号开头时为 EPSG:4513–4533"


def _unconvertible(crs: CRS, exc: Exception) -> BoundaryError:
    """PROJ's failure to convert, in Chinese (its English goes to the log)."""
    log.warning("boundary file CRS %s not converted: %s", crs.name, exc)
    return BoundaryError(
        None,
        None,
        "geometry",
        f"无法从文件的坐标系（{crs.name}）转换到 WGS84 经纬度：请在「坐标系」中填写文件实际所用的 EPSG 编号"
        "（如 EPSG:4549），或用 GIS 软件转换为 WGS84 经纬度后重新导出",
    )


def _crs_refused(notes: list[str], reason: str) -> tuple[None, list[str], BoundaryError]:
    """:func:`to_wgs84`'s answer when the file's coordinates cannot be taken: no frame, the notes so far,
    the reason (of the file as a whole)."""
    return None, notes, BoundaryError(None, None, "geometry", reason)


def to_wgs84(
    gdf: gpd.GeoDataFrame, declared: str = CRS_AUTO
) -> tuple[gpd.GeoDataFrame | None, list[str], BoundaryError | None]:
    """(the frame in EPSG:4326, notes on what was assumed or converted, the problem or None).

    ``declared``: :data:`CRS_AUTO` (the file's own CRS), :data:`CRS_GCJ02` (the file's lon/lat are GCJ-02,
    as 高德/腾讯/DataV data are) or any CRS pyproj understands (``EPSG:4549``), overriding the file's.
    """
    # NFKC: EPSG：4549 with the full-width colon (or digits) a Chinese input method types
    declared = unicodedata.normalize("NFKC", declared or CRS_AUTO).strip()
    notes: list[str] = []
    crs = gdf.crs
    if declared.lower() not in (CRS_AUTO, CRS_GCJ02):
        try:
            crs = CRS.from_user_input(declared)
        except Exception:
            return _crs_refused(notes, f"无法识别坐标系 {declared}（请填写如 EPSG:4549）")
        gdf = gdf.set_crs(crs, allow_override=True)
        notes.append(f"按指定坐标系 {crs.name} 读取")
    geoms = gdf.geometry
    present = geoms[~(geoms.isna() | geoms.is_empty)]
    if present.empty:  # no outline at all: each feature is told "几何为空" by the checks, not a CRS riddle
        return (gdf if crs is not None else gdf.set_crs(WGS84)), notes, None
    bounds = present.total_bounds
    shown = ", ".join(f"{b:.6g}" for b in bounds)
    if (crs is None or crs.is_geographic) and not _lonlat(bounds) and _in_china(bounds[[1, 0, 3, 2]]):
        return _crs_refused(
            notes,
            f"坐标看起来经度和纬度写反了（范围 {shown}：第一个数在纬度范围内，第二个超出了纬度的 ±90）："
            "请在 GIS 软件中按「经度, 纬度」的顺序重新导出（GeoJSON 规定先经度后纬度）",
        )
    if crs is None:
        if not _lonlat(bounds):
            return _crs_refused(
                notes,
                f"文件没有坐标参考系 (CRS)，且坐标不是经纬度（范围 {shown}），看起来是投影坐标（米）："
                f"请在「坐标系」中填写文件所用的 EPSG 编号（{_projected_hint(bounds)}）",
            )
        notes.append("文件未声明坐标系，坐标在经纬度范围内，按 WGS84 经纬度读取")
        gdf = gdf.set_crs(WGS84)
    elif crs.is_geographic:
        if not _lonlat(bounds):
            return _crs_refused(
                notes,
                f"文件按经纬度坐标（{crs.name}）读取{'（GeoJSON 未写明坐标系时即按此读取）' if crs.to_epsg() == 4326 else ''}，但坐标超出经纬度范围"
                f"（{shown}），看起来是投影坐标（米）：请在「坐标系」中填写文件实际所用的 EPSG 编号"
                f"（{_projected_hint(bounds)}）",
            )
        epsg = crs.to_epsg()
        if epsg == 4979:  # WGS 84 with heights: the same longitudes and latitudes
            gdf = gdf.set_crs(WGS84, allow_override=True)
        elif epsg == 4490:
            notes.append("坐标系为 CGCS2000 (EPSG:4490)：与 WGS84 相差在厘米级，按 WGS84 处理")
            gdf = gdf.set_crs(WGS84, allow_override=True)
        elif epsg != 4326:
            try:
                gdf = gdf.to_crs(WGS84)
            except Exception as exc:
                return None, notes, _unconvertible(crs, exc)
            notes.append(f"已从 {crs.name} 转换为 WGS84 经纬度")
    else:
        try:
            gdf = gdf.to_crs(WGS84)
        except Exception as exc:  # an unusable CRS definition in the file
            return None, notes, _unconvertible(crs, exc)
        epsg = crs.to_epsg()
        named = f"{crs.name}{f'（EPSG:{epsg}）' if epsg else ''}"
        landed = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)].total_bounds
        if not _in_china(landed):
            # metres read in the wrong projection convert without a word (a Gauss–Krüger file taken as Web
            # Mercator lands in the Sahara): an area of this system is in China, so the choice is told
            lon = f"{landed[0]:.2f}～{landed[2]:.2f}" if np.all(np.isfinite(landed)) else "无效"
            lat = f"{landed[1]:.2f}～{landed[3]:.2f}" if np.all(np.isfinite(landed)) else "无效"
            return _crs_refused(
                notes,
                f"按坐标系 {named} 换算后，边界落在中国境外（经度 {lon}，纬度 {lat}）：坐标系多半不对，"
                f"请在「坐标系」中填写文件实际所用的 EPSG 编号（{_projected_hint(bounds)}）",
            )
        notes.append(f"已从投影坐标系 {named}转换为 WGS84 经纬度")
    if declared.lower() == CRS_GCJ02:

        def unshift(coords: np.ndarray) -> np.ndarray:
            lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
            return np.column_stack([lon, lat])

        gdf = gdf.set_geometry(gpd.GeoSeries(shapely.transform(gdf.geometry.values, unshift), crs=WGS84))
        notes.append("已按 GCJ-02（高德/腾讯/DataV 坐标）转换为 WGS84（偏移约数百米）")
    return gdf, notes, None


# --------------------------------------------------------------------------------------------- checks


def _population(value) -> tuple[int | None, bool]:
    """(population, ok). Missing is ok; otherwise it must be a non-negative integer."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None, True
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, False
    if not math.isfinite(number) or number < 0 or not number.is_integer():
        return None, False
    return int(number), True


def _check_features(
    v: _Mapped, geoms: np.ndarray, m: ColumnMapping
) -> tuple[list[BoundaryError], np.ndarray, list]:
    """Per feature: code, name and level filled and valid, population a non-negative integer, geometry
    present, polygonal, valid and within lon/lat ranges. Returns (errors, geometry ok, populations)."""
    errors: list[BoundaryError] = []
    n = len(v.names)
    ok = np.zeros(n, dtype=bool)
    pops: list[int | None] = [None] * n
    for i in range(n):
        code = v.codes[i]
        if m.code is not None and code is None:
            errors.append(BoundaryError(i, None, "code", "编码为空，请填写"))
        if v.names[i] is None:
            errors.append(BoundaryError(i, code, "name", "名称为空，请填写"))
        raw = _text(v.raw_levels[i])
        if raw is None:
            errors.append(BoundaryError(i, code, "level", "级别为空，请填写"))
        elif v.levels[i] is None:
            above = UNSUPPORTED_LEVELS.get(raw.lower(), UNSUPPORTED_LEVELS.get(raw))
            why = (
                f"{above}单元不在市-县-乡-村-网格五级之内"
                if above
                else f"应为 {'/'.join(LEVEL_WORDS.values())}（或 {'/'.join(LEVELS)}）之一"
            )
            errors.append(BoundaryError(i, code, "level", f"级别无效: {raw}（{why}）"))
        errors += _too_long(i, code, v.names[i], v.levels[i], v.kinds[i])
        population, good = _population(v.populations[i])
        pops[i] = population
        if not good:
            errors.append(BoundaryError(i, code, "population", "人口必须为非负整数"))
        elif population is not None and population > MAX_POPULATION:
            errors.append(
                BoundaryError(i, code, "population", f"人口过大（不能超过 {MAX_POPULATION}），请核对")
            )
        geom = geoms[i]
        if geom is None or shapely.is_empty(geom):
            errors.append(BoundaryError(i, code, "geometry", "几何为空"))
        elif shapely.get_type_id(geom) not in (3, 6):
            errors.append(
                BoundaryError(
                    i, code, "geometry", f"几何类型应为面 (Polygon/MultiPolygon)，实际为 {geom.geom_type}"
                )
            )
        elif not _lonlat(shapely.bounds(geom)):
            errors.append(
                BoundaryError(i, code, "geometry", "坐标超出经纬度范围（经度 -180～180，纬度 -90～90）")
            )
        elif not shapely.is_valid(geom):
            errors.append(BoundaryError(i, code, "geometry", f"几何无效：{invalid_reason(geom)}"))
        else:
            ok[i] = True
    return errors, ok, pops


def _too_long(
    i: int, code: str | None, name: str | None, level: str | None, kind: str | None
) -> list[BoundaryError]:
    """A code, name or kind longer than the store holds (a code also leaves room for generated children)."""
    errors = []
    if code is not None and level is not None:
        room = MAX_CODE_CHARS - 3 * (len(LEVELS) - 1 - LEVEL_INDEX[level])
        if len(code) > room:
            errors.append(
                BoundaryError(
                    i, code[:40], "code", f"编码过长（{len(code)} 位，本级最多 {room} 位），请核对编码列"
                )
            )
    if name is not None and len(name) > MAX_NAME_CHARS:
        errors.append(
            BoundaryError(
                i, code, "name", f"名称过长（{len(name)} 字，最多 {MAX_NAME_CHARS} 字），请核对名称列"
            )
        )
    if kind is not None and len(kind) > MAX_KIND_CHARS:
        errors.append(
            BoundaryError(
                i, code, "kind", f"类型过长（{len(kind)} 字，最多 {MAX_KIND_CHARS} 字），请核对类型列"
            )
        )
    return errors


def _check_duplicates(
    codes: Sequence[str | None], known: Mapping[str, KnownUnit] | None
) -> tuple[list[BoundaryError], dict[str, int]]:
    """Every occurrence of a repeated code (so the user sees all rows to fix), and codes already in the
    store. Returns (errors, code → row of each unique code)."""
    errors: list[BoundaryError] = []
    seen: dict[str, list[int]] = {}
    for i, code in enumerate(codes):
        if code is not None:
            seen.setdefault(code, []).append(i)
    index_of = {}
    for code, rows in seen.items():
        if len(rows) > 1:
            errors.extend(BoundaryError(i, code, "code", f"编码重复（共 {len(rows)} 处）") for i in rows)
        else:
            index_of[code] = rows[0]
            if known is not None and code in known:
                errors.append(
                    BoundaryError(
                        rows[0], code, "code", "编码已在数据库中（如需替换现有区划，请选择「替换现有区划」）"
                    )
                )
    return errors, index_of


def _check_parents(
    v: _Mapped, index_of: Mapping[str, int], known: Mapping[str, KnownUnit] | None, choice: ParentChoice
) -> tuple[list[BoundaryError], list[int | None], list[KnownUnit | None]]:
    """Each unit's parent exists (in the file, or the store for a top unit) and sits one level above.

    A top unit (at the file's highest level) may name a parent outside the file: it must be in the store
    unless the choice creates it or drops it; ``known`` None (no store consulted) leaves it unchecked.
    Returns (errors, parent row in the file, parent in the store) per feature.
    """
    errors: list[BoundaryError] = []
    n = len(v.codes)
    ranks = [LEVEL_INDEX[lv] for lv in v.levels if lv is not None]
    top = min(ranks) if ranks else None
    parent_row: list[int | None] = [None] * n
    parent_known: list[KnownUnit | None] = [None] * n
    seen = {c for c in v.codes if c is not None}
    unpadded = {c.lstrip("0"): c for c in [*seen, *(known or {})] if c.isdigit()}
    for i in range(n):
        code, parent, level = v.codes[i], v.parents[i], v.levels[i]
        if level is None:
            continue
        is_top = LEVEL_INDEX[level] == top
        if parent is None:
            if not is_top and v.parent_names[i] is None:
                errors.append(BoundaryError(i, code, "parent_code", "缺少上级编码"))
            elif not is_top and i not in v.ambiguous:
                errors.append(BoundaryError(i, code, "parent_code", f"上级 {v.parent_names[i]} 不在文件中"))
            continue
        if parent == code:
            errors.append(BoundaryError(i, code, "parent_code", "上级编码不能是自身"))
            continue
        if parent in index_of:
            j = index_of[parent]
            parent_level = v.levels[j]
            if parent_level is not None and LEVEL_INDEX[level] != LEVEL_INDEX[parent_level] + 1:
                errors.append(_level_mismatch(i, code, parent, parent_level, level))
                continue
            parent_row[i] = j
            continue
        if parent in seen:  # a duplicated parent, already reported
            continue
        if not is_top:
            errors.append(
                BoundaryError(
                    i, code, "parent_code", f"未知的上级编码 {parent}{_zeros_hint(parent, unpadded)}"
                )
            )
            continue
        if choice.mode != PARENT_AUTO or known is None:
            continue
        if parent not in known:
            errors.append(
                BoundaryError(
                    i,
                    code,
                    "parent_code",
                    f"未知的上级编码 {parent}{_zeros_hint(parent, unpadded)}：既不在文件中，也不在数据库中。"
                    "请选择「不设上级」"
                    "（本文件的顶层单位即为最高一级）或「由文件合并生成上级」",
                )
            )
            continue
        if LEVEL_INDEX[level] != LEVEL_INDEX[known[parent].level] + 1:
            errors.append(_level_mismatch(i, code, parent, known[parent].level, level, where="（数据库中）"))
            continue
        parent_known[i] = known[parent]
    return errors, parent_row, parent_known


def _zeros_hint(parent: str, unpadded: Mapping[str, str]) -> str:
    """A hint when ``parent`` and a code in the file or the store differ only in leading zeros (a code
    column kept as numbers, as Excel does), else ""."""
    twin = unpadded.get(parent.lstrip("0")) if parent.isdigit() else None
    if twin is None or twin == parent:
        return ""
    return f"：编码可能丢失了开头的 0（Excel 会这样），已有编码 {twin}：请把编码列设为文本后重新导出"


def _level_mismatch(
    i: int, code, parent: str, parent_level: str, level: str, where: str = ""
) -> BoundaryError:
    expected = LEVEL_WORDS[LEVELS[LEVEL_INDEX[parent_level] + 1]] if parent_level != "grid" else "（无）"
    return BoundaryError(
        i,
        code,
        "level",
        f"级别与上级不匹配: 上级 {parent}{where} 为{LEVEL_WORDS[parent_level]}，本单位应为{expected}",
    )


def _check_containment(
    codes: Sequence[str | None],
    geoms: np.ndarray,
    geom_ok: np.ndarray,
    parent_row: Sequence[int | None],
    parent_known: Sequence[KnownUnit | None],
) -> list[BoundaryError]:
    """At most :data:`OUTSIDE_PARENT_TOLERANCE` of each unit's area outside its parent (超出上级范围)."""
    errors: list[BoundaryError] = []
    pairs = []
    for i in range(len(codes)):
        if not geom_ok[i]:
            continue
        j = parent_row[i]
        if j is not None and geom_ok[j]:
            pairs.append((i, geoms[j], codes[j]))
        elif parent_known[i] is not None and parent_known[i].geometry is not None:  # type: ignore[union-attr]
            pairs.append((i, parent_known[i].geometry, parent_known[i].code))  # type: ignore[union-attr]
    if not pairs:
        return errors
    child = np.array([geoms[i] for i, _, _ in pairs], dtype=object)
    parent = np.array([g for _, g, _ in pairs], dtype=object)
    child_area = shapely.area(child)
    outside = shapely.area(shapely.difference(child, parent))
    share = np.divide(outside, child_area, out=np.zeros_like(outside), where=child_area > 0)
    for (i, _, pcode), s in zip(pairs, share, strict=True):
        if s > OUTSIDE_PARENT_TOLERANCE:
            errors.append(
                BoundaryError(
                    int(i), codes[i], "geometry", f"超出上级范围（{s:.1%} 的面积在上级 {pcode} 之外）"
                )
            )
    return errors


def _check_siblings(
    codes: Sequence[str | None],
    geoms: np.ndarray,
    geom_ok: np.ndarray,
    parent_row: Sequence[int | None],
    levels: Sequence[str | None] = (),
) -> tuple[list[BoundaryError], list[str]]:
    """Units of one parent in the file must not overlap (:data:`OVERLAP_TOLERANCE`): a point there would
    have two grids. A parent they leave partly uncovered (:data:`UNCOVERED_TOLERANCE`) is told in a note,
    not refused: the lower levels are generated inside the children only, so that part has no grid until
    its own units are imported (a city with one county now, the others later)."""
    errors: list[BoundaryError] = []
    notes: list[str] = []
    family: dict[int, list[int]] = {}
    broken: set[int] = set()  # parents with a child whose outline is refused already: no coverage to judge
    for i, j in enumerate(parent_row):
        if j is not None and geom_ok[i]:
            family.setdefault(j, []).append(i)
        elif j is not None:
            broken.add(j)
    # the file's top units (no parent, or one in the store) are siblings too: two of them overlapping
    # made two grids of one place (the store's own units beside them: overlapping_stored)
    tops: dict[str, list[int]] = {}
    for i, j in enumerate(parent_row):
        if j is None and geom_ok[i] and i < len(levels) and levels[i] is not None:
            tops.setdefault(str(levels[i]), []).append(i)
    for kids in tops.values():
        errors += _overlapping(codes, geoms, kids, "文件中同级的")
    for j, kids in family.items():
        errors += _overlapping(codes, geoms, kids)
        shapes = np.array([geoms[i] for i in kids], dtype=object)
        if not geom_ok[j] or j in broken:
            continue
        whole = shapely.area(geoms[j])
        left = shapely.area(shapely.difference(geoms[j], shapely.union_all(shapes))) if whole > 0 else 0.0
        if whole > 0 and left / whole > UNCOVERED_TOLERANCE:
            notes.append(
                f"{codes[j]} 的下级在文件中只覆盖了 {1 - left / whole:.1%} 的面积：其余 {left / whole:.1%} "
                "在导入其下级单元之前没有网格，那里的上报会被拒绝（若不是有意分批导入，请补齐下级单元）"
            )
    return errors, notes


def _overlapping(
    codes: Sequence[str | None], geoms: np.ndarray, kids: list[int], whose: str = "同一上级下的"
) -> list[BoundaryError]:
    """The pairs of ``kids`` (rows of one parent) that overlap by more than :data:`OVERLAP_TOLERANCE` of the
    smaller one."""
    errors = []
    shapes = np.array([geoms[i] for i in kids], dtype=object)
    areas = shapely.area(shapes)
    a, b = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    for x, y in zip(a, b, strict=True):
        if x >= y:
            continue
        shared = shapely.area(shapely.intersection(shapes[x], shapes[y]))
        smaller = min(areas[x], areas[y])
        if smaller > 0 and shared / smaller > OVERLAP_TOLERANCE:
            errors.append(
                BoundaryError(
                    kids[y],
                    codes[kids[y]],
                    "geometry",
                    f"与{whose} {codes[kids[x]]} 重叠（{shared / smaller:.1%} 的面积）：同一地点不能属于两个区划",
                )
            )
    return errors


def overlapping_stored(
    units: gpd.GeoDataFrame, stored: Sequence[tuple[str, str, Any]]
) -> list[BoundaryError]:
    """Units added to a stored area against the stored units of their level, (code, name, outline) each: more
    than :data:`OVERLAP_TOLERANCE` of the smaller one shared would give a place two grids."""
    if not len(stored) or not len(units):
        return []
    shapes = np.array([g for _, _, g in stored], dtype=object)
    areas = shapely.area(shapes)
    mine = np.asarray(units.geometry.values, dtype=object)
    a, b = shapely.STRtree(shapes).query(mine, predicate="intersects")
    errors = []
    for x, y in zip(a, b, strict=True):
        shared = shapely.area(shapely.intersection(mine[x], shapes[y]))
        smaller = min(shapely.area(mine[x]), areas[y])
        if smaller > 0 and shared / smaller > OVERLAP_TOLERANCE:
            code, name, _ = stored[y]
            errors.append(
                BoundaryError(
                    None,
                    str(units["code"].iloc[x]),
                    "geometry",
                    f"与数据库中已有的 {name}（{code}）重叠（{shared / smaller:.1%} 的面积）：同一地点不能属于两个区划"
                    "（如需改动已有单元，请选择「替换现有区划」）",
                )
            )
    return errors


def _top_parent(
    units: gpd.GeoDataFrame,
    choice: ParentChoice,
    parent_names: Sequence[str | None],
    known: Mapping[str, KnownUnit] | None,
) -> tuple[gpd.GeoDataFrame, list[BoundaryError], list[str]]:
    """Apply the choice for the file's top units: drop their parent, or add one made from their union."""
    ranks = units["level"].map(LEVEL_INDEX)
    top = units[ranks == ranks.min()]
    if choice.mode == PARENT_NONE:
        units = units.copy()
        units.loc[top.index, "parent_code"] = None
        return units, [], [f"文件的 {len(top)} 个顶层单位不设上级，作为最高一级导入"]
    if choice.mode != PARENT_CREATE:
        return units, [], []
    level_rank = int(ranks.min())
    if level_rank == 0:
        return units, [BoundaryError(None, None, "parent_code", "顶层单位已是市级，无法再生成上级")], []
    given = {c for c in top["parent_code"] if c is not None}
    names_given = {parent_names[i] for i in top.index if parent_names[i] is not None}
    code = (choice.code or "").strip() or (given.pop() if len(given) == 1 else None)
    name = (choice.name or "").strip() or (names_given.pop() if len(names_given) == 1 else None)
    problems = []
    if not code:
        problems.append(BoundaryError(None, None, "parent_code", "请填写要生成的上级单位的编码"))
    elif code in set(units["code"]) or (known is not None and code in known):
        problems.append(BoundaryError(None, None, "parent_code", f"上级编码 {code} 已被使用"))
    if not name:
        problems.append(BoundaryError(None, None, "name", "请填写要生成的上级单位的名称"))
    level = LEVELS[level_rank - 1]
    if code and name and not problems:  # the unit to be made must fit the store like the file's own
        problems = [
            BoundaryError(
                None, None, "parent_code" if e.field == "code" else e.field, f"要生成的上级单位：{e.reason}"
            )
            for e in _too_long(0, code, name, level, None)
        ]
    if problems:
        return units, problems, []
    pops = top["population"]
    row = {
        "code": code,
        "name": name,
        "level": level,
        "parent_code": None,
        "population": int(pops.sum()) if pops.notna().all() else pd.NA,
        "kind": _names.kind_from_name(str(name), level),
        "geometry": shapely.union_all(np.asarray(top.geometry.values, dtype=object)),
    }
    units = units.copy()
    units.loc[top.index, "parent_code"] = code
    parent = gpd.GeoDataFrame([row], geometry="geometry", crs=WGS84)
    out = pd.concat([parent.astype({"population": "Int64"}), units], ignore_index=True)
    note = f"由文件中 {len(top)} 个顶层单位合并生成上级「{name}」（编码 {code}，{LEVEL_WORDS[level]}）"
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84), [], [note]


def validate_units(
    gdf: gpd.GeoDataFrame,
    mapping: ColumnMapping | None = None,
    *,
    crs: str = CRS_AUTO,
    parent: ParentChoice | None = None,
    known: Mapping[str, KnownUnit] | None = None,
) -> BoundaryCheck:
    """Check a file's features under ``mapping`` (None: :func:`suggest_mapping`); every bad feature is reported.

    The checks run in order — fields (:func:`_check_fields`), the CRS (:func:`to_wgs84`), each feature
    (:func:`_check_features`), duplicates (:func:`_check_duplicates`), parents (:func:`_check_parents`),
    containment (:func:`_check_containment`) — and every problem found is listed before anything else is
    done. ``known``: the units already in the store by code (a file's top units may hang under one;
    a file code already there is refused); None checks the file alone. A missing population is estimated
    per level and kind (:func:`geo.generate.estimate_population`; the codes are in ``estimated``).
    """
    parent = parent or ParentChoice()
    if len(gdf) == 0:
        return BoundaryCheck(None, [BoundaryError(None, None, None, "文件中没有要素")])
    mapping = mapping or suggest_mapping(gdf)
    gdf = gdf.reset_index(drop=True)
    errors = _check_fields(gdf, mapping)
    if errors:
        return BoundaryCheck(None, errors)
    gdf, notes, crs_error = to_wgs84(gdf, crs)
    if crs_error is not None or gdf is None:
        return BoundaryCheck(None, [crs_error] if crs_error else [], notes)
    values = _map_values(gdf, mapping)
    errors += _resolve_names(values, mapping)
    if values.generated_codes:
        notes.append("文件没有编码字段：已按名称顺序生成编码")
    geoms = np.asarray(shapely.force_2d(np.asarray(gdf.geometry.values, dtype=object)), dtype=object)
    feature_errors, geom_ok, pops = _check_features(values, geoms, mapping)
    duplicate_errors, index_of = _check_duplicates(values.codes, known)
    parent_errors, parent_row, parent_known = _check_parents(values, index_of, known, parent)
    errors += feature_errors + duplicate_errors + parent_errors
    outside = _check_containment(values.codes, geoms, geom_ok, parent_row, parent_known)
    # a child refused for its place: its family's coverage is not judged
    refused = [e.feature_index for e in outside if e.feature_index is not None]
    judged = geom_ok & ~np.isin(np.arange(len(geoms)), refused)
    overlaps, uncovered = _check_siblings(values.codes, geoms, judged, parent_row, values.levels)
    errors += outside + overlaps
    notes += uncovered
    if errors:
        errors.sort(key=lambda e: -1 if e.feature_index is None else e.feature_index)
        return BoundaryCheck(None, errors, notes)
    units = gpd.GeoDataFrame(
        {
            "code": pd.Series(values.codes, dtype=object),
            "name": pd.Series(values.names, dtype=object),
            "level": pd.Series(values.levels, dtype=object),
            "parent_code": pd.Series(values.parents, dtype=object),
            "population": pd.array(pops, dtype="Int64"),
            "kind": pd.Series(
                [
                    k or _names.kind_from_name(str(nm), str(lv))
                    for k, nm, lv in zip(values.kinds, values.names, values.levels, strict=True)
                ],
                dtype=object,
            ),
        },
        geometry=gpd.GeoSeries(geoms, crs=WGS84),
    )
    units, top_errors, top_notes = _top_parent(units, parent, values.parent_names, known)
    if top_errors:
        return BoundaryCheck(None, top_errors, notes)
    units, estimated = _fill_population(units)
    if estimated:
        notes.append(f"{len(estimated)} 个单元缺少人口，已按级别和类型估算（说明见 docs/boundaries.md）")
    return BoundaryCheck(units.reset_index(drop=True), [], notes + top_notes, estimated)


def _fill_population(units: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Missing populations estimated by level and kind from the area, then made to add up: a parent
    without one gets at least its children's (deepest first), and the estimated children of a parent
    share what the parent holds beyond its given children (top down), so every level sums to the one
    above it, as the given figures allow."""
    missing = units["population"].isna().to_numpy()
    units = units.copy()
    if missing.any():
        est = estimate_population(
            units["level"].tolist(), units["kind"].tolist(), np.asarray(units.geometry.values, dtype=object)
        )
        filled = units["population"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        filled[missing] = est[missing]
        by_code = {c: i for i, c in enumerate(units["code"])}
        parents = units["parent_code"].to_numpy()
        kids_of: dict[int, list[int]] = {}
        for i, p in enumerate(parents):
            j = by_code.get(p) if p is not None else None
            if j is not None:
                kids_of.setdefault(j, []).append(i)
        depth = units["level"].map(LEVEL_INDEX).to_numpy()
        for j in sorted(kids_of, key=lambda j: -depth[j]):  # deepest parents first
            kids = np.asarray(kids_of[j])
            if missing[j]:
                filled[j] = max(filled[j], float(np.nansum(filled[kids])))
        for j in sorted(kids_of, key=lambda j: depth[j]):  # top down: estimated children share the rest
            kids = np.asarray(kids_of[j])
            guessed = kids[missing[kids]]
            rest = filled[j] - float(np.nansum(filled[kids[~missing[kids]]]))
            share = float(np.nansum(filled[guessed]))
            if len(guessed) and rest > 0 and share > 0:
                filled[guessed] *= rest / share
        units["population"] = np.round(filled).astype(np.int64)
    else:
        units["population"] = units["population"].astype(np.int64)
    return units, [str(c) for c in units.loc[missing, "code"]]


def read_boundaries(
    source,
    mapping: ColumnMapping | None = None,
    *,
    filename: str | None = None,
    crs: str = CRS_AUTO,
    parent: ParentChoice | None = None,
    known: Mapping[str, KnownUnit] | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> BoundaryCheck:
    """Read (:func:`read_source`) and validate (:func:`validate_units`) a boundary file. Nothing is written."""
    source_file, errors = read_source(source, filename=filename, max_bytes=max_bytes)
    if source_file is None:
        return BoundaryCheck(None, errors)
    check = validate_units(source_file.frame, mapping, crs=crs, parent=parent, known=known)
    check.notes[:0] = source_file.notes
    return check


def top_parent_codes(frame: gpd.GeoDataFrame, mapping: ColumnMapping) -> set[str]:
    """The parent codes the file's highest-level features name (empty: they name none), without checking
    anything: what the mapping step needs to pre-select where the top units hang."""
    if _check_fields(frame, mapping) or len(frame) == 0:
        return set()
    values = _map_values(frame, mapping)
    ranks = [LEVEL_INDEX[lv] for lv in values.levels if lv is not None]
    if not ranks:
        return set()
    top = min(ranks)
    return {
        p
        for p, lv in zip(values.parents, values.levels, strict=True)
        if p is not None and lv is not None and LEVEL_INDEX[lv] == top
    }


def with_mapping(mapping: ColumnMapping, **changes) -> ColumnMapping:
    """A copy of ``mapping`` with some fields changed (the mapping form's edits)."""
    return replace(mapping, **changes)


def sample_rows(source_file: SourceFile, n: int = 5) -> pd.DataFrame:
    """The first ``n`` features' properties as text (what the mapping step shows beside the choices)."""
    props = pd.DataFrame(source_file.frame.drop(columns=source_file.frame.geometry.name)).head(n)
    return props.map(
        lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else ("" if v is None else str(v))
    )
