"""Geography in the store: write a five-level unit set, read it back as a GeoDataFrame."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, func, insert, select

from db.models import AdminUnit
from domain.vocabulary import AdminLevel

UNIT_COLUMNS = ["code", "name", "level", "parent_code", "population", "geometry"]
# A unit's kind (街道/镇/村/社区 …) when the source does not say.
DEFAULT_KIND = {"city": "市", "county": "区县", "township": "乡镇", "village": "村", "grid": "网格"}


def store_units(conn: Connection, units: gpd.GeoDataFrame) -> dict[str, int]:
    """Insert ``units`` (WGS84; columns :data:`UNIT_COLUMNS`, ``kind``/``area_km2`` optional) parents first.

    Parents may already be in the store (looked up by code). Returns code → id for every unit
    written. The caller owns the transaction: on any error nothing is kept.
    """
    missing = [c for c in UNIT_COLUMNS if c not in units.columns]
    if missing:
        raise ValueError(f"缺少字段: {', '.join(missing)}")
    if units.crs is not None and units.crs.to_epsg() != 4326:
        units = units.to_crs(4326)
    existing = dict(conn.execute(select(AdminUnit.code, AdminUnit.id)).all())
    ids: dict[str, int] = {}
    order = {lvl.value: lvl.depth for lvl in AdminLevel}
    frame = units.assign(_depth=units["level"].map(order)).sort_values(["_depth", "code"], kind="stable")
    if "area_km2" not in frame.columns:
        frame = frame.assign(area_km2=area_km2(frame.geometry))
    centroids = frame.geometry.representative_point()
    for _depth, part in frame.groupby("_depth", sort=True):
        rows = []
        for (_, u), c in zip(part.iterrows(), centroids.loc[part.index], strict=True):
            parent_code = u["parent_code"] if pd.notna(u["parent_code"]) else None
            parent_id = None
            if parent_code is not None:
                parent_id = ids.get(parent_code) or existing.get(parent_code)
                if parent_id is None:
                    raise ValueError(f"单元 {u['code']}: 未知的上级编码 {parent_code}")
            rows.append(
                {
                    "code": str(u["code"]),
                    "name": str(u["name"]),
                    "level": AdminLevel(u["level"]),
                    "kind": str(u["kind"]) if pd.notna(u.get("kind")) else DEFAULT_KIND[u["level"]],
                    "parent_id": parent_id,
                    "population": int(u["population"]),
                    "area_km2": float(u["area_km2"]),
                    "centroid_lon": float(c.x),
                    "centroid_lat": float(c.y),
                    "geometry_wkb": shapely.to_wkb(u.geometry),
                }
            )
        conn.execute(insert(AdminUnit), rows)
        codes = [r["code"] for r in rows]
        for code, uid in conn.execute(select(AdminUnit.code, AdminUnit.id).where(AdminUnit.code.in_(codes))):
            ids[code] = uid
    return ids


def area_km2(geoms: gpd.GeoSeries) -> pd.Series:
    """Area in km² of WGS84 geometries, measured in an equal-area projection (EPSG:6933)."""
    return gpd.GeoSeries(geoms, crs=4326).to_crs(6933).area / 1e6


def load_units(conn: Connection, level: AdminLevel | None = None) -> gpd.GeoDataFrame:
    """Units from the store (all, or one level) as a WGS84 GeoDataFrame with ``parent_code``."""
    parent = AdminUnit.__table__.alias("parent")
    q = select(
        AdminUnit.id,
        AdminUnit.code,
        AdminUnit.name,
        AdminUnit.level,
        AdminUnit.kind,
        AdminUnit.parent_id,
        parent.c.code.label("parent_code"),
        AdminUnit.population,
        AdminUnit.area_km2,
        AdminUnit.centroid_lon,
        AdminUnit.centroid_lat,
        AdminUnit.geometry_wkb,
    ).outerjoin(parent, parent.c.id == AdminUnit.parent_id)
    if level is not None:
        q = q.where(AdminUnit.level == level)
    df = pd.DataFrame(conn.execute(q.order_by(AdminUnit.id)).mappings().all())
    if df.empty:
        return gpd.GeoDataFrame(df, geometry=gpd.GeoSeries([], crs=4326))
    df["level"] = df["level"].map(lambda v: AdminLevel(v).value)
    geom = shapely.from_wkb(df.pop("geometry_wkb").to_numpy())
    return gpd.GeoDataFrame(df, geometry=geom, crs=4326)


def count_units_by_level(conn: Connection) -> dict[AdminLevel, int]:
    rows = conn.execute(select(AdminUnit.level, func.count()).group_by(AdminUnit.level)).all()
    return {AdminLevel(level): n for level, n in rows}


def default_focus(conn: Connection, scope_unit_id: int | None = None) -> tuple[float, float]:
    """Where a map should open: the scope unit's label point, else the township with the most venues."""
    from db.models import Venue

    if scope_unit_id is not None:
        row = conn.execute(
            select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == scope_unit_id)
        ).first()
        if row:
            return float(row[0]), float(row[1])
    busiest = conn.execute(
        select(Venue.grid_id, func.count()).group_by(Venue.grid_id).order_by(func.count().desc()).limit(1)
    ).first()
    unit_id = busiest[0] if busiest else None
    if unit_id is None:
        unit_id = conn.execute(select(AdminUnit.id).where(AdminUnit.parent_id.is_(None))).scalar()
    row = conn.execute(select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == unit_id)).first()
    return (float(row[0]), float(row[1])) if row else (118.87, 28.94)
