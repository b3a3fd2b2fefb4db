"""Test data builders, named by intent: a small hand-made five-level area and things inside it."""

from __future__ import annotations

from datetime import datetime

import geopandas as gpd
import shapely
from sqlalchemy import insert, select

from db.models import AdminUnit, Department, Venue
from services.geography import store_units

# A 4 × 0.01° square at (118.80, 28.90): city = county = township, two villages of two grids each.
X0, Y0, D = 118.80, 28.90, 0.01


def square_area_units() -> gpd.GeoDataFrame:
    """The five levels of a tiny square area, each level tiling its parent exactly."""
    box = shapely.box
    rows = [
        ("990000", "方城市", "city", None, "市", 4000, box(X0, Y0, X0 + 4 * D, Y0 + D)),
        ("990001", "方城区", "county", "990000", "区", 4000, box(X0, Y0, X0 + 4 * D, Y0 + D)),
        ("990001001", "方城街道", "township", "990001", "街道", 4000, box(X0, Y0, X0 + 4 * D, Y0 + D)),
        ("990001001001", "东村", "village", "990001001", "村", 2000, box(X0, Y0, X0 + 2 * D, Y0 + D)),
        ("990001001002", "西村", "village", "990001001", "村", 2000, box(X0 + 2 * D, Y0, X0 + 4 * D, Y0 + D)),
    ]
    for v, vcode in enumerate(["990001001001", "990001001002"]):
        for g in range(2):
            x = X0 + (2 * v + g) * D
            rows.append(
                (
                    f"{vcode}{g + 1:03d}",
                    f"第{g + 1}网格",
                    "grid",
                    vcode,
                    "网格",
                    1000,
                    box(x, Y0, x + D, Y0 + D),
                )
            )
    cols = ["code", "name", "level", "parent_code", "kind", "population", "geometry"]
    return gpd.GeoDataFrame([dict(zip(cols, r, strict=True)) for r in rows], geometry="geometry", crs=4326)


def make_square_area(conn) -> dict[str, int]:
    """Store the square area; returns code → id. Also one 城管 department at the township."""
    ids = store_units(conn, square_area_units())
    conn.execute(
        insert(Department),
        {"code": "D-CG", "name": "方城街道综合执法中队", "kind": "城管", "unit_id": ids["990001001"]},
    )
    return ids


def grid_centre(index: int) -> tuple[float, float]:
    """Centre of grid ``index`` (0..3, west to east) of the square area."""
    return X0 + (index + 0.5) * D, Y0 + D / 2


def make_green_venue(conn, grid_code: str = "990001001001001", code: str = "V-1") -> int:
    grid_id = conn.execute(select(AdminUnit.id).where(AdminUnit.code == grid_code)).scalar_one()
    return conn.execute(
        insert(Venue).returning(Venue.id),
        {
            "code": code,
            "name": "老王杂货店",
            "category": "street_shop",
            "address": "方城路1号",
            "lon": X0 + D / 2,
            "lat": Y0 + D / 2,
            "grid_id": grid_id,
            "safety_code": "green",
            "responsible_person": "王某",
            "created_at": datetime(2026, 1, 1),
        },
    ).scalar_one()
