"""Validation of a user-supplied boundary file (GeoJSON or Shapefile) of administrative units."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84
from geo.generate import LEVEL_INDEX, LEVELS

REQUIRED_FIELDS = ("code", "name", "level", "parent_code")

#: Share of a unit's area that may lie outside its parent before it is an error. Boundary
#: files from different sources rarely match to the metre; 0.5 % tolerates such slivers
#: while any real misplacement is far larger.
OUTSIDE_PARENT_TOLERANCE = 0.005

#: Chinese spellings accepted for ``level``, besides the five English names.
LEVEL_ALIASES = {
    "市": "city",
    "地级市": "city",
    "区县": "county",
    "县区": "county",
    "县": "county",
    "区": "county",
    "县级": "county",
    "乡镇": "township",
    "乡镇街道": "township",
    "街道": "township",
    "乡": "township",
    "镇": "township",
    "村": "village",
    "社区": "village",
    "村社区": "village",
    "村居": "village",
    "网格": "grid",
}


#: Other spellings of the field names: a Shapefile (dBase) cuts names to 10 characters.
FIELD_ALIASES = {"parent_cod": "parent_code", "parentcode": "parent_code", "pcode": "parent_code"}


class BoundaryError(NamedTuple):
    """One problem in the file. ``feature_index`` is the 0-based feature position (None for
    a file-level problem such as a missing column); ``reason`` is in Chinese."""

    feature_index: int | None
    code: str | None
    field: str | None
    reason: str


@dataclass
class BoundaryCheck:
    """Result of a validation: ``units`` (EPSG:4326) when there are no errors, else None."""

    units: gpd.GeoDataFrame | None
    errors: list[BoundaryError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_boundaries(source) -> BoundaryCheck:
    """Read and validate a boundary file: a path (GeoJSON, .shp, or a zipped Shapefile) or
    a file-like object. Nothing is written anywhere.

    The file must have fields ``code``, ``name``, ``level`` (city/county/township/village/
    grid or 市/区县/乡镇/村社区/网格) and ``parent_code`` (``parent_cod`` in a Shapefile,
    whose field names stop at 10 characters); ``population`` and ``kind`` are optional.
    See :func:`validate_units` for the checks.
    """
    try:
        gdf = gpd.read_file(source)
    except Exception as exc:  # any reader failure is the user's file, reported not raised
        return BoundaryCheck(None, [BoundaryError(None, None, None, f"无法读取文件: {exc}")])
    return validate_units(gdf)


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
    text = str(value).strip()
    return text or None


def _level(value) -> str | None:
    text = _text(value)
    if text is None:
        return None
    low = text.lower()
    return low if low in LEVEL_INDEX else LEVEL_ALIASES.get(text)


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


def _to_wgs84(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame | None, BoundaryError | None]:
    if gdf.crs is None:
        minx, miny, maxx, maxy = gdf.total_bounds
        if (
            all(np.isfinite([minx, miny, maxx, maxy]))
            and -180 <= minx <= maxx <= 180
            and -90 <= miny <= maxy <= 90
        ):
            return gdf.set_crs(WGS84), None
        return None, BoundaryError(None, None, "geometry", "文件没有坐标参考系 (CRS)，且坐标不是经纬度")
    if gdf.crs.equals(WGS84):
        return gdf, None
    try:
        return gdf.to_crs(WGS84), None
    except Exception as exc:  # an unusable CRS definition in the file
        return None, BoundaryError(None, None, "geometry", f"无法转换到 WGS84 经纬度: {exc}")


def validate_units(gdf: gpd.GeoDataFrame) -> BoundaryCheck:
    """Check units already read into a GeoDataFrame; every bad feature is reported.

    Checks: required fields present and filled (缺少字段), level one of the five,
    codes unique (编码重复), geometry present, polygonal and valid (几何无效, with GEOS'
    explanation), population a non-negative integer, parent code known (未知的上级编码)
    unless the unit is at the file's top level (a district file refers to a city outside
    it), level exactly one below the parent's, and at most OUTSIDE_PARENT_TOLERANCE of a
    unit's area outside its parent (超出上级范围). A file without CRS is taken as WGS84 when
    its coordinates fit lon/lat, otherwise it is an error; another CRS is reprojected.
    """
    errors: list[BoundaryError] = []
    if len(gdf) == 0:
        return BoundaryCheck(None, [BoundaryError(None, None, None, "文件中没有要素")])
    renames = {}
    for col in gdf.columns:
        if col == gdf.geometry.name:
            continue
        key = str(col).strip().lower()
        key = FIELD_ALIASES.get(key, key)
        if key not in gdf.columns and key not in renames.values():
            renames[col] = key
    gdf = gdf.rename(columns=renames)
    gdf, crs_error = _to_wgs84(gdf.reset_index(drop=True))
    if crs_error is not None:
        return BoundaryCheck(None, [crs_error])
    for name in REQUIRED_FIELDS:
        if name not in gdf.columns:
            errors.append(BoundaryError(None, None, name, f"缺少字段 {name}"))

    n = len(gdf)

    def column(name: str) -> list:
        return list(gdf[name]) if name in gdf.columns else [None] * n

    codes = [_text(v) for v in column("code")]
    names = [_text(v) for v in column("name")]
    raw_levels = column("level")
    levels = [_level(v) for v in raw_levels]
    parents = [_text(v) for v in column("parent_code")]
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    has_pop = "population" in gdf.columns
    pops: list[int | None] = [None] * n

    geom_ok = np.zeros(n, dtype=bool)
    for i in range(n):
        code = codes[i]
        if "code" in gdf.columns and code is None:
            errors.append(BoundaryError(i, None, "code", "缺少字段 code"))
        if "name" in gdf.columns and names[i] is None:
            errors.append(BoundaryError(i, code, "name", "缺少字段 name"))
        if "level" in gdf.columns:
            if _text(raw_levels[i]) is None:
                errors.append(BoundaryError(i, code, "level", "缺少字段 level"))
            elif levels[i] is None:
                errors.append(
                    BoundaryError(
                        i, code, "level", f"级别无效: {raw_levels[i]}（应为 {'/'.join(LEVELS)} 之一）"
                    )
                )
        if has_pop:
            pops[i], ok = _population(gdf["population"].iloc[i])
            if not ok:
                errors.append(BoundaryError(i, code, "population", "人口必须为非负整数"))
        geom = geoms[i]
        if geom is None or shapely.is_empty(geom):
            errors.append(BoundaryError(i, code, "geometry", "几何为空"))
        elif shapely.get_type_id(geom) not in (3, 6):
            errors.append(
                BoundaryError(
                    i, code, "geometry", f"几何类型应为面 (Polygon/MultiPolygon)，实际为 {geom.geom_type}"
                )
            )
        elif not shapely.is_valid(geom):
            errors.append(BoundaryError(i, code, "geometry", f"几何无效: {shapely.is_valid_reason(geom)}"))
        else:
            geom_ok[i] = True

    # Duplicates: every occurrence is reported, so the user sees all the rows to fix.
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

    ranks = [LEVEL_INDEX[lv] for lv in levels if lv is not None]
    top = min(ranks) if ranks else None
    parent_row: list[int | None] = [None] * n
    if "parent_code" in gdf.columns:
        for i in range(n):
            code, parent, level = codes[i], parents[i], levels[i]
            if level is None:
                continue
            if parent is None:
                if LEVEL_INDEX[level] != top:
                    errors.append(BoundaryError(i, code, "parent_code", "缺少上级编码"))
                continue
            if parent == code:
                errors.append(BoundaryError(i, code, "parent_code", "上级编码不能是自身"))
                continue
            if parent not in index_of:
                if parent in seen:  # duplicated parent, already reported
                    continue
                if LEVEL_INDEX[level] != top:
                    errors.append(BoundaryError(i, code, "parent_code", f"未知的上级编码 {parent}"))
                continue
            j = index_of[parent]
            parent_level = levels[j]
            if parent_level is not None and LEVEL_INDEX[level] != LEVEL_INDEX[parent_level] + 1:
                expected = LEVELS[LEVEL_INDEX[parent_level] + 1] if parent_level != "grid" else "（无）"
                errors.append(
                    BoundaryError(
                        i,
                        code,
                        "level",
                        f"级别与上级不匹配: 上级 {parent} 为 {parent_level}，本单位应为 {expected}",
                    )
                )
                continue
            parent_row[i] = j

    pairs = [(i, j) for i, j in enumerate(parent_row) if j is not None and geom_ok[i] and geom_ok[j]]
    if pairs:
        child_idx = np.array([i for i, _ in pairs])
        parent_idx = np.array([j for _, j in pairs])
        child_area = shapely.area(geoms[child_idx])
        outside = shapely.area(shapely.difference(geoms[child_idx], geoms[parent_idx]))
        share = np.divide(outside, child_area, out=np.zeros_like(outside), where=child_area > 0)
        for i, j, s in zip(child_idx, parent_idx, share, strict=True):
            if s > OUTSIDE_PARENT_TOLERANCE:
                errors.append(
                    BoundaryError(
                        int(i), codes[i], "geometry", f"超出上级范围（{s:.1%} 的面积在上级 {codes[j]} 之外）"
                    )
                )

    if errors:
        errors.sort(key=lambda e: -1 if e.feature_index is None else e.feature_index)
        return BoundaryCheck(None, errors)

    units = gpd.GeoDataFrame(
        {
            "code": pd.Series(codes, dtype=object),
            "name": pd.Series(names, dtype=object),
            "level": pd.Series(levels, dtype=object),
            "parent_code": pd.Series(parents, dtype=object),
            "population": pd.array(pops, dtype="Int64"),
        },
        geometry=gpd.GeoSeries(shapely.force_2d(geoms), crs=WGS84),
    )
    if "kind" in gdf.columns:
        units.insert(4, "kind", pd.Series([_text(v) for v in gdf["kind"]], dtype=object))
    return BoundaryCheck(units, [])
