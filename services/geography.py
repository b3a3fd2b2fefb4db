"""Geography in the store: write a five-level unit set, read it back as a GeoDataFrame."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection, func, insert, select

from db.engine import store_key
from db.models import AdminUnit
from domain.hierarchy import Tree, Unit
from domain.vocabulary import AdminLevel
from geo.crs import area_km2 as crs_area_km2

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
    """Area in km² of WGS84 geometries (:func:`geo.crs.area_km2`), as a Series on the same index."""
    series = gpd.GeoSeries(geoms, crs=4326)
    return pd.Series(crs_area_km2(series), index=series.index)


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
    row = conn.execute(
        select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == unit_id)
    ).first()
    return (float(row[0]), float(row[1])) if row else (118.87, 28.94)


@dataclass(frozen=True)
class ExamplePlace:
    """Where an import template's example row lies: a grid of the user's own area and a point inside it."""

    grid_code: str
    address: str  # the grid's township and village names, to start an example address with
    lon: float
    lat: float


def example_place(tree: Tree, scope_unit_id: int | None = None) -> ExamplePlace | None:
    """The first grid (by code) under ``scope_unit_id`` (None: the store) with its label point — inside
    the grid (``representative_point``) — or None when the store has no grid yet. The templates' example
    rows use it, so a county's template shows its own place, not the demo's."""
    for grid in tree.grids_under(scope_unit_id):
        point = tree.units[grid].centroid
        if point is not None:
            names = (
                tree.name(u) for u in (tree.grid_township(grid), tree.grid_village(grid)) if u is not None
            )
            return ExamplePlace(tree.code(grid), "".join(names), point[0], point[1])
    return None


def load_tree(conn: Connection) -> Tree:
    """The five-level tree of the store (no geometry): the one source of every tree walk."""
    rows = conn.execute(
        select(
            AdminUnit.id,
            AdminUnit.parent_id,
            AdminUnit.level,
            AdminUnit.code,
            AdminUnit.name,
            AdminUnit.centroid_lon,
            AdminUnit.centroid_lat,
        )
    ).all()
    return Tree.from_units(
        Unit(
            int(r.id),
            None if r.parent_id is None else int(r.parent_id),
            AdminLevel(r.level),
            str(r.code),
            str(r.name),
            None if r.centroid_lon is None else (float(r.centroid_lon), float(r.centroid_lat)),
        )
        for r in rows
    )


# One tree per store and process, replaced when the units change (an own-area import, a reseed).
_TREES: dict[str, tuple[tuple, Tree]] = {}
_FINGERPRINT = select(
    func.count(AdminUnit.id),
    func.coalesce(func.max(AdminUnit.id), 0),
    func.coalesce(func.sum(AdminUnit.parent_id), 0),
)


def tree_version(conn: Connection) -> tuple[int, int, int]:
    """A cheap stamp of the stored units that changes when boundaries are imported or replaced."""
    count, top, parents = conn.execute(_FINGERPRINT).one()
    return int(count or 0), int(top or 0), int(parents or 0)


def tree(conn: Connection) -> Tree:
    """The store's tree, loaded once per process and reloaded when the units change.

    The check is one aggregate over ``admin_units`` (a few thousand rows: about a millisecond), so every
    process (the app, the jobs runner) sees an import made by another one on its next call.
    """
    key = store_key(conn.engine)
    stamp = tree_version(conn)
    cached = _TREES.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    fresh = load_tree(conn)
    _TREES[key] = (stamp, fresh)
    return fresh
