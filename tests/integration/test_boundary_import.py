"""Loading another city's district file end to end: validated, filled down to grids, stored, usable."""

import geopandas as gpd
import shapely
from sqlalchemy import func, select

from db.engine import session_factory
from db.models import AdminUnit
from domain.vocabulary import EventCategory, EventSource
from services.boundaries import import_boundaries
from services.events import report_event
from services.locate import forget_index, locate_grid

NOW = __import__("datetime").datetime(2026, 11, 21, 10, 0)


def _harbour_city(tmp_path, *, broken: bool = False):
    """A fictional coastal city: a mainland district and one with an island (a MultiPolygon)."""
    mainland = shapely.box(121.00, 29.80, 121.10, 29.90)
    coast = shapely.box(121.10, 29.80, 121.20, 29.90)
    island = shapely.box(121.30, 29.82, 121.34, 29.86)
    rows = [
        {"code": "880000", "name": "港城市", "level": "city", "parent_code": None, "population": 300000,
         "geometry": shapely.union_all([mainland, coast, island])},
        {"code": "880001", "name": "港城区", "level": "county", "parent_code": "880000", "population": 200000,
         "geometry": mainland},
        {"code": "880002", "name": "海岛区", "level": "county", "parent_code": "880000", "population": 100000,
         "geometry": shapely.MultiPolygon([coast, island])},
    ]
    if broken:
        rows[2]["geometry"] = shapely.box(122.0, 30.0, 122.1, 30.1)  # far outside the city
        rows.append({"code": "880003", "name": "无名区", "level": "county", "parent_code": "889999",
                     "population": 1, "geometry": shapely.box(121.0, 29.8, 121.01, 29.81)})
    path = tmp_path / ("broken.geojson" if broken else "harbour.geojson")
    gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).to_file(path, driver="GeoJSON")
    return path


def _units(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()


def test_another_citys_district_file_is_filled_down_to_grids_and_takes_reports_on_its_island(empty_engine, tmp_path):
    forget_index()
    result = import_boundaries(empty_engine, _harbour_city(tmp_path), seed=3)
    assert result.ok, result.errors
    assert set(result.units_by_level) == {"city", "county", "township", "village", "grid"}
    assert _units(empty_engine) == sum(result.units_by_level.values())
    with session_factory(empty_engine).begin() as s:
        grid = locate_grid(s, 121.32, 29.84)  # on the island
        assert grid is not None
        event = report_event(s, source=EventSource.CITIZEN, category=EventCategory.NATURAL_HAZARD,
                             title="海堤破损", lon=121.32, lat=29.84, now=NOW)
        assert event.grid_id == grid
        assert locate_grid(s, 121.25, 29.84) is None  # the sea between coast and island


def test_a_bad_file_is_reported_feature_by_feature_and_writes_nothing(empty_engine, tmp_path):
    result = import_boundaries(empty_engine, _harbour_city(tmp_path, broken=True))
    assert not result.ok
    reasons = {(e.code, e.reason.split("：")[0].split(":")[0]) for e in result.errors}
    codes = {code for code, _ in reasons}
    assert {"880002", "880003"} <= codes
    assert any("上级" in e.reason for e in result.errors if e.code == "880003")
    assert _units(empty_engine) == 0


def test_a_store_that_already_has_units_is_not_overwritten_without_replace(empty_engine, tmp_path):
    path = _harbour_city(tmp_path)
    assert import_boundaries(empty_engine, path, fill=False).ok
    before = _units(empty_engine)
    second = import_boundaries(empty_engine, path, fill=False)
    assert not second.ok and "--replace" in second.errors[0].reason
    assert _units(empty_engine) == before
    assert import_boundaries(empty_engine, path, fill=False, replace=True).ok
    assert _units(empty_engine) == before
