"""A small own area that is not Quzhou, written as users' files are: 海湾县 (a fictional coastal county, code
990321) with one island, DataV-style properties (``adcode``/``name``/``level``/``parent`` with
``{"adcode": …}``), and the same area as a Shapefile with a GBK ``.dbf``, a GeoPackage, a name-only file.

Geometry is built here with shapely (no file is fetched): a mainland of about 280 km² and an island
of about 12 km² some 6 km offshore, at 121.9°E 29.0°N.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import MultiPolygon, Polygon

COUNTY_CODE = "990321"
COUNTY_NAME = "海湾县"
CITY_CODE = "990300"
TOWNSHIP_CODE = "990321101"
TOWNSHIP_NAME = "东港镇"

MAINLAND = Polygon(
    [
        (121.80, 28.95),
        (121.88, 28.93),
        (121.97, 28.94),
        (122.00, 29.00),
        (121.99, 29.06),
        (121.93, 29.09),
        (121.85, 29.08),
        (121.80, 29.03),
    ]
)
ISLAND = Polygon([(122.06, 28.99), (122.09, 28.98), (122.11, 29.00), (122.10, 29.03), (122.07, 29.03)])
COUNTY = MultiPolygon([MAINLAND, ISLAND])
#: A township of the county: its western part (used as a township-only area).
TOWNSHIP = shapely.intersection(MAINLAND, shapely.box(121.80, 28.90, 121.86, 29.10))

ON_ISLAND = (122.085, 29.005)
ON_MAINLAND = (121.90, 29.01)
AT_SEA = (122.03, 29.00)


def _datav_feature(code: str, name: str, level: str, parent: str, geom) -> dict:
    centroid = shapely.centroid(geom)
    return {
        "type": "Feature",
        "properties": {
            "adcode": int(code),
            "name": name,
            "center": [round(centroid.x, 6), round(centroid.y, 6)],
            "centroid": [round(centroid.x, 6), round(centroid.y, 6)],
            "childrenNum": 0,
            "level": level,
            "parent": {"adcode": int(parent)},
            "subFeatureIndex": 0,
            "acroutes": [100000, 990000, int(parent)],
        },
        "geometry": shapely.geometry.mapping(geom),
    }


def county_geojson(path: Path) -> Path:
    """海湾县 as DataV GeoAtlas publishes a county: one feature, level ``district``, parent the city."""
    fc = {
        "type": "FeatureCollection",
        "features": [_datav_feature(COUNTY_CODE, COUNTY_NAME, "district", CITY_CODE, COUNTY)],
    }
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def township_geojson(path: Path) -> Path:
    """东港镇 alone (a township-level file, DataV-style level ``street``)."""
    fc = {
        "type": "FeatureCollection",
        "features": [_datav_feature(TOWNSHIP_CODE, TOWNSHIP_NAME, "street", COUNTY_CODE, TOWNSHIP)],
    }
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    return path


def county_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"XZQDM": [COUNTY_CODE], "XZQMC": [COUNTY_NAME], "JB": ["区县"], "RK": [80_000]},
        geometry=[COUNTY],
        crs=4326,
    )


def county_shapefile_zip(path: Path, *, cpg: bool = False, crs: str | None = "EPSG:4326") -> Path:
    """The county as a zipped Shapefile whose .dbf is GBK (Chinese field names and values), with or
    without the .cpg that says so; ``crs`` None leaves out the .prj."""
    folder = path.parent / (path.stem + "_shp")
    folder.mkdir(exist_ok=True)
    frame = county_frame().rename(columns={"XZQMC": "名称", "JB": "级别"})
    if crs is None:
        frame = frame.set_crs(None, allow_override=True)
    elif crs != "EPSG:4326":
        frame = frame.to_crs(crs)
    frame.to_file(folder / "县界.shp", encoding="GBK")
    if not cpg:
        (folder / "县界.cpg").unlink(missing_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, part.name)
    return path


def county_geopackage(path: Path) -> Path:
    county_frame().to_file(path, layer="xzq", driver="GPKG")
    return path


def districts_by_name(path: Path) -> Path:
    """A name-only file of two districts of a city (省/市/区县 names, no codes), as many portals publish."""
    west = shapely.intersection(MAINLAND, shapely.box(121.80, 28.90, 121.90, 29.10))
    east = shapely.difference(COUNTY, shapely.box(121.80, 28.90, 121.90, 29.10))
    frame = gpd.GeoDataFrame(
        {"省": ["海东省", "海东省"], "市": ["海湾市", "海湾市"], "区县": ["西湾区", "东岛县"]},
        geometry=[west, east],
        crs=4326,
    )
    frame.to_file(path, driver="GeoJSON")
    return path
