"""Importing a user's boundary file end to end: validated, filled down to grids, stored, usable — and never
destroying data: a refused, failed or killed import leaves every row of the store as it was (SQLite and
PostgreSQL), and a replace carries venues, events, departments and accounts over to the new units."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import func, insert, select, text

from db.engine import session_factory
from db.models import AdminUnit, AuditLog, Base, Department, Event, InspectorGrid, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import AdminLevel, EventCategory, EventSource, Role
from geo.boundaries import PARENT_CREATE, PARENT_NONE, ParentChoice, read_source
from services.access import OutOfScope
from services.boundaries import (
    SETUP_CODE,
    ImportOptions,
    apply_plan,
    ensure_setup_unit,
    import_boundaries,
    plan_import,
)
from services.events import report_event
from services.locate import forget_index, locate_grid
from tests import own_area

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 21, 10, 0)
MAINLAND = shapely.box(121.00, 29.80, 121.10, 29.90)
COAST = shapely.box(121.10, 29.80, 121.20, 29.90)
ISLAND = shapely.box(121.30, 29.82, 121.34, 29.86)
ON_ISLAND = (121.32, 29.84)
ON_MAINLAND = (121.05, 29.85)


def _harbour_rows(*, east_code: str = "880002"):
    return [
        {
            "code": "880000",
            "name": "港城市",
            "level": "city",
            "parent_code": None,
            "population": 300000,
            "geometry": shapely.union_all([MAINLAND, COAST, ISLAND]),
        },
        {
            "code": "880001",
            "name": "港城区",
            "level": "county",
            "parent_code": "880000",
            "population": 200000,
            "geometry": MAINLAND,
        },
        {
            "code": east_code,
            "name": "海岛区",
            "level": "county",
            "parent_code": "880000",
            "population": 100000,
            "geometry": shapely.MultiPolygon([COAST, ISLAND]),
        },
    ]


def _write(rows, path: Path) -> Path:
    gpd.GeoDataFrame(rows, geometry="geometry", crs=4326).to_file(path, driver="GeoJSON")
    return path


def _harbour_city(tmp_path, *, broken: bool = False, name: str | None = None, **kw):
    """A fictional coastal city: a mainland district and one with an island (a MultiPolygon)."""
    rows = _harbour_rows(**kw)
    if broken:
        rows[2]["geometry"] = shapely.box(122.0, 30.0, 122.1, 30.1)  # far outside the city
        rows.append(
            {
                "code": "880003",
                "name": "无名区",
                "level": "county",
                "parent_code": "889999",
                "population": 1,
                "geometry": shapely.box(121.0, 29.8, 121.01, 29.81),
            }
        )
    return _write(rows, tmp_path / (name or ("broken.geojson" if broken else "harbour.geojson")))


def _units(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AdminUnit)).scalar_one()


def _report(engine, lon: float, lat: float, title: str = "海堤破损"):
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.NATURAL_HAZARD,
        title=title,
        lon=lon,
        lat=lat,
        now=NOW,
    )


def _unit_id(engine, code: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(AdminUnit.id).where(AdminUnit.code == code)).scalar_one()


def _populated(engine, tmp_path) -> dict:
    """The harbour city stored and in use: an event on the island, a venue on the mainland, a department,
    an administrator of the city, a township leader and an inspector."""
    forget_index()
    assert import_boundaries(UnitOfWork(engine), _harbour_city(tmp_path), seed=3).ok
    event = _report(engine, *ON_ISLAND)
    with engine.begin() as conn:
        grid = locate_grid(conn, *ON_MAINLAND)
        venue = conn.execute(
            insert(Venue).returning(Venue.id),
            {
                "code": "V-1",
                "name": "码头小卖部",
                "category": "street_shop",
                "address": "港城路1号",
                "lon": ON_MAINLAND[0],
                "lat": ON_MAINLAND[1],
                "grid_id": grid,
                "safety_code": "green",
                "responsible_person": "王某",
                "created_at": NOW,
            },
        ).scalar_one()
        conn.execute(
            insert(Department),
            {"code": "D-HD", "name": "海岛区城管局", "kind": "城管", "unit_id": _unit_id(engine, "880002")},
        )
        users = {}
        for username, role, code in (
            ("city_admin", Role.ADMIN, "880000"),
            ("island_leader", Role.TOWNSHIP_LEADER, "880002001"),
            ("coast_inspector", Role.INSPECTOR, "880001001"),
        ):
            users[username] = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": username,
                    "display_name": username,
                    "role": role,
                    "scope_unit_id": _unit_id(engine, code),
                    "created_at": NOW,
                },
            ).scalar_one()
    return {"event": event.id, "venue": venue, "users": users}


def _snapshot(engine) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of its rows in key order: "unchanged" means all of it."""
    out = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
            out[table.name] = (len(rows), digest)
    return out


# ------------------------------------------------------------------------------------------- importing


def test_another_citys_district_file_is_filled_down_to_grids_and_takes_reports_on_its_island(
    empty_engine, tmp_path
):
    forget_index()
    result = import_boundaries(UnitOfWork(empty_engine), _harbour_city(tmp_path), seed=3)
    assert result.ok, result.errors
    assert set(result.units_by_level) == {"city", "county", "township", "village", "grid"}
    assert _units(empty_engine) == sum(result.units_by_level.values())
    with session_factory(empty_engine)() as s:
        grid = locate_grid(s, *ON_ISLAND)
        assert grid is not None
        assert locate_grid(s, 121.25, 29.84) is None  # the sea between coast and island
    assert _report(empty_engine, *ON_ISLAND).grid_id == grid


def test_a_bad_file_is_reported_feature_by_feature_and_writes_nothing(empty_engine, tmp_path):
    result = import_boundaries(UnitOfWork(empty_engine), _harbour_city(tmp_path, broken=True))
    assert not result.ok
    codes = {e.code for e in result.errors}
    assert {"880002", "880003"} <= codes
    assert any("上级" in e.reason for e in result.errors if e.code == "880003")
    assert _units(empty_engine) == 0


def test_a_file_whose_codes_are_already_stored_is_refused_unless_it_replaces_them(empty_engine, tmp_path):
    path = _harbour_city(tmp_path)
    assert import_boundaries(UnitOfWork(empty_engine), path, seed=3).ok
    before = _snapshot(empty_engine)
    second = import_boundaries(UnitOfWork(empty_engine), path, seed=3)
    assert not second.ok
    assert {e.code for e in second.errors} == {"880000", "880001", "880002"}
    assert all("替换现有区划" in e.reason for e in second.errors)
    assert _snapshot(empty_engine) == before
    again = import_boundaries(UnitOfWork(empty_engine), path, seed=3, replace=True)
    assert again.ok, again.errors
    assert (again.kept, _units(empty_engine)) == (
        sum(again.units_by_level.values()) - again.units_by_level["grid"],
        before["admin_units"][0],
    )


def test_a_county_file_hangs_under_its_city_already_in_the_store(empty_engine, tmp_path):
    rows = _harbour_rows()
    assert import_boundaries(UnitOfWork(empty_engine), _write(rows[:2], tmp_path / "city.geojson"), seed=3).ok
    result = import_boundaries(UnitOfWork(empty_engine), _write(rows[2:], tmp_path / "east.geojson"), seed=3)
    assert result.ok, result.errors
    with empty_engine.connect() as conn:
        parent = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.code == "880002")).scalar_one()
    assert parent == _unit_id(empty_engine, "880000")
    forget_index()
    assert _report(empty_engine, *ON_ISLAND).grid_id is not None


def test_a_unit_added_over_a_stored_one_is_refused_and_writes_nothing(empty_engine, tmp_path):
    """The city with one district now, the other later: a second district drawn over half of the first was
    added, and every place there had two grids (a report went to either)."""
    rows = _harbour_rows()
    assert import_boundaries(UnitOfWork(empty_engine), _write(rows[:2], tmp_path / "city.geojson"), seed=3).ok
    over = [{**rows[2], "geometry": shapely.box(121.05, 29.80, 121.20, 29.90)}]  # half of 880001 too
    before = _snapshot(empty_engine)
    result = import_boundaries(UnitOfWork(empty_engine), _write(over, tmp_path / "over.geojson"), seed=3)
    assert not result.ok and [(e.code, e.field) for e in result.errors] == [("880002", "geometry")]
    assert "880001" in result.errors[0].reason and "重叠" in result.errors[0].reason
    assert _snapshot(empty_engine) == before
    assert import_boundaries(UnitOfWork(empty_engine), _write(rows[2:], tmp_path / "east.geojson"), seed=3).ok


def test_top_units_of_a_file_that_overlap_each_other_are_refused(empty_engine, tmp_path):
    """Two districts without their city (不设上级) overlapping by half were both stored, their grids too."""
    rows = _harbour_rows()[1:]
    rows[1] = {**rows[1], "geometry": shapely.box(121.05, 29.80, 121.20, 29.90)}
    result = import_boundaries(
        UnitOfWork(empty_engine), _write(rows, tmp_path / "two.geojson"), parent=ParentChoice(PARENT_NONE)
    )
    assert not result.ok and [(e.code, e.field) for e in result.errors] == [("880002", "geometry")]
    assert "880001" in result.errors[0].reason and _units(empty_engine) == 0


def test_a_top_parent_in_neither_the_file_nor_the_store_is_refused_before_anything_is_generated(
    empty_engine, tmp_path
):
    """The issue's case: district codes right, their city absent. Refused at the check, with the ways out."""
    path = _write(_harbour_rows()[1:], tmp_path / "districts.geojson")
    source, _ = read_source(path)
    with empty_engine.connect() as conn:
        plan = plan_import(conn, source, ImportOptions(seed=3))
    assert plan.units is None  # nothing generated
    assert [(e.code, e.field) for e in plan.errors] == [("880001", "parent_code"), ("880002", "parent_code")]
    assert "不设上级" in plan.errors[0].reason and "由文件合并生成上级" in plan.errors[0].reason
    assert not apply_plan(UnitOfWork(empty_engine), plan).ok
    assert _units(empty_engine) == 0

    dropped = import_boundaries(UnitOfWork(empty_engine), path, seed=3, parent=ParentChoice(PARENT_NONE))
    assert dropped.ok, dropped.errors
    with empty_engine.connect() as conn:
        tops = conn.execute(select(AdminUnit.code).where(AdminUnit.parent_id.is_(None))).scalars().all()
    assert sorted(tops) == ["880001", "880002"]


def test_on_a_store_of_several_top_units_the_administrator_of_one_cannot_import_over_the_others(
    empty_engine, tmp_path
):
    """Two districts side by side, each with its own administrator: neither may import (a replace would
    delete the other's units and move its administrator); the operator at the command line still can."""
    path = _write(_harbour_rows()[1:], tmp_path / "districts.geojson")
    assert import_boundaries(UnitOfWork(empty_engine), path, seed=3, parent=ParentChoice(PARENT_NONE)).ok
    west = _unit_id(empty_engine, "880001")
    with empty_engine.begin() as conn:
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": "west_admin",
                "display_name": "港城区管理员",
                "role": Role.ADMIN,
                "scope_unit_id": west,
                "created_at": NOW,
            },
        ).scalar_one()
    actor = CurrentUser(uid, "west_admin", "港城区管理员", Role.ADMIN, west)
    before = _snapshot(empty_engine)
    for replace in (True, False):
        with pytest.raises(OutOfScope, match="多个顶层区划"):
            import_boundaries(
                UnitOfWork(empty_engine),
                _write(_harbour_rows()[1:2], tmp_path / "west.geojson"),
                seed=4,
                parent=ParentChoice(PARENT_NONE),
                replace=replace,
                actor=actor,
            )
    assert _snapshot(empty_engine) == before


def test_the_top_parent_can_be_created_from_the_union_of_the_files_units(empty_engine, tmp_path):
    path = _write(_harbour_rows()[1:], tmp_path / "districts.geojson")
    result = import_boundaries(
        UnitOfWork(empty_engine), path, seed=3, parent=ParentChoice(PARENT_CREATE, name="港城市")
    )
    assert result.ok, result.errors
    with empty_engine.connect() as conn:
        city = conn.execute(select(AdminUnit).where(AdminUnit.parent_id.is_(None))).one()
        geom = shapely.from_wkb(city.geometry_wkb)
    assert (city.code, city.name, city.level, city.population) == (
        "880000",
        "港城市",
        AdminLevel.CITY,
        300000,
    )
    assert geom.area == pytest.approx(shapely.union_all([MAINLAND, COAST, ISLAND]).area, rel=1e-9)


def test_a_dry_run_runs_the_same_write_and_leaves_the_store_as_it_was(empty_engine, tmp_path):
    data = _populated(empty_engine, tmp_path)
    before = _snapshot(empty_engine)
    path = _harbour_city(tmp_path, name="next.geojson", east_code="880009")
    dry = import_boundaries(UnitOfWork(empty_engine), path, seed=4, replace=True, dry_run=True)
    assert dry.ok and dry.dry_run, dry.errors
    assert _snapshot(empty_engine) == before
    real = import_boundaries(UnitOfWork(empty_engine), path, seed=4, replace=True)
    assert real.ok, real.errors
    assert (real.units_by_level, real.kept, real.removed, real.relocated) == (
        dry.units_by_level,
        dry.kept,
        dry.removed,
        dry.relocated,
    )
    assert [r.username for r in real.rescoped] == [r.username for r in dry.rescoped] == ["island_leader"]
    assert data


# ------------------------------------------------------------------------------------------- replacing


def test_a_replace_carries_venues_events_departments_and_accounts_over_to_the_new_units(
    empty_engine, tmp_path
):
    data = _populated(empty_engine, tmp_path)
    old_city = _unit_id(empty_engine, "880000")
    # The island district's code changes (880002 → 880009); the city and the mainland district keep theirs.
    path = _harbour_city(tmp_path, name="next.geojson", east_code="880009")
    result = import_boundaries(UnitOfWork(empty_engine), path, seed=4, replace=True)
    assert result.ok, result.errors
    assert result.relocated == {"venues": 1, "events": 1}
    forget_index()
    with empty_engine.connect() as conn:
        grid_ids = set(conn.execute(select(AdminUnit.id).where(AdminUnit.level == AdminLevel.GRID)).scalars())
        event = conn.execute(select(Event).where(Event.id == data["event"])).one()
        venue = conn.execute(select(Venue).where(Venue.id == data["venue"])).one()
        dept_unit = conn.execute(select(Department.unit_id).where(Department.code == "D-HD")).scalar_one()
        users = {u.username: u for u in conn.execute(select(User)).all()}
        codes = set(conn.execute(select(AdminUnit.code)).scalars())
        inspector_grids = conn.execute(
            select(func.count())
            .select_from(InspectorGrid)
            .where(InspectorGrid.user_id == data["users"]["coast_inspector"])
        ).scalar_one()
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
    assert "880002" not in codes and "880009" in codes and not any(c.startswith("~") for c in codes)
    # Venues and events lie in the new grid of their point; the event's owner is that grid's unit at its level.
    assert event.grid_id in grid_ids and event.grid_id == locate_grid(empty_engine.connect(), *ON_ISLAND)
    assert venue.grid_id in grid_ids and venue.grid_id == locate_grid(empty_engine.connect(), *ON_MAINLAND)
    # The city kept its row: its administrator's session stays valid.
    assert _unit_id(empty_engine, "880000") == old_city == users["city_admin"].scope_unit_id
    assert users["city_admin"].is_active
    # The island's department and leader moved to the new island district's units; the leader, whose
    # township code is gone, is disabled until an administrator confirms; the inspector kept their code.
    assert dept_unit == _unit_id(empty_engine, "880009")
    leader = users["island_leader"]
    assert not leader.is_active
    with empty_engine.connect() as conn:
        leader_scope = conn.execute(
            select(AdminUnit.code).where(AdminUnit.id == leader.scope_unit_id)
        ).scalar_one()
    assert leader_scope.startswith("880009")
    assert [(r.username, r.disabled) for r in result.rescoped] == [("island_leader", True)]
    assert users["coast_inspector"].is_active and inspector_grids > 0
    assert actions[-2:] == ["accounts.rescope", "boundaries.import"]
    assert _report(empty_engine, *ON_ISLAND).grid_id in grid_ids


def test_a_replace_that_would_leave_a_venue_outside_every_grid_is_refused_and_lists_it(
    empty_engine, tmp_path
):
    _populated(empty_engine, tmp_path)
    before = _snapshot(empty_engine)
    rows = _harbour_rows()
    rows[0]["geometry"] = shapely.union_all([COAST, ISLAND])
    smaller = _write([rows[0], rows[2]], tmp_path / "no_mainland.geojson")  # the mainland district dropped
    result = import_boundaries(UnitOfWork(empty_engine), smaller, seed=3, replace=True)
    assert not result.ok
    assert [(u.kind, u.label) for u in result.unplaced] == [("venue", "V-1 码头小卖部")]
    assert "1 个场所和 0 个事件" in result.errors[0].reason
    assert _snapshot(empty_engine) == before


# ------------------------------------------------------------------------------------------- failures


def _bad_geometry(tmp_path):
    rows = _harbour_rows()
    rows[1]["geometry"] = shapely.Polygon([(121.0, 29.8), (121.1, 29.9), (121.1, 29.8), (121.0, 29.9)])
    return {"source": _write(rows, tmp_path / "bowtie.geojson")}, "几何无效"


def _parent_mismatch(tmp_path):
    rows = _harbour_rows()[
        1:
    ]  # the districts, pointing at a city in neither the file nor (after replace) the store
    for r in rows:
        r["parent_code"] = "870000"
    return {"source": _write(rows, tmp_path / "orphans.geojson")}, "未知的上级编码 870000"


def _projected(tmp_path):
    metres = gpd.GeoDataFrame(_harbour_rows(), geometry="geometry", crs=4326).to_crs(32651)
    data = json.loads(metres.to_json())
    data.pop("crs", None)  # GeoJSON without a crs member is read as lon/lat: the numbers are metres
    path = tmp_path / "metres.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    return {"source": path}, "投影坐标"


def _missing_population(tmp_path):
    rows = _harbour_rows()
    rows[1]["population"] = None  # missing: would be estimated
    rows[2]["population"] = "约10万"  # not a number: refused
    return {"source": _write(rows, tmp_path / "population.geojson")}, "人口必须为非负整数"


def _oversized(tmp_path):
    return {"source": _harbour_city(tmp_path, name="big.geojson"), "max_bytes": 1_000}, "文件过大"


FAILURES = {
    "bad_geometry": _bad_geometry,
    "parent_mismatch": _parent_mismatch,
    "projected_coordinates": _projected,
    "missing_population": _missing_population,
    "oversized_file": _oversized,
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_refused_replace_leaves_every_row_of_the_store_as_it_was(empty_engine, tmp_path, failure):
    _populated(empty_engine, tmp_path)
    before = _snapshot(empty_engine)
    kwargs, reason = FAILURES[failure](tmp_path)
    source = kwargs.pop("source")
    result = import_boundaries(UnitOfWork(empty_engine), source, seed=3, replace=True, **kwargs)
    assert not result.ok
    assert any(reason in e.reason for e in result.errors), result.errors
    assert _snapshot(empty_engine) == before
    forget_index()
    assert _report(empty_engine, *ON_ISLAND).grid_id is not None  # the old units still take reports


def _refuse_inserts_of(engine, code: str) -> None:
    """A database that fails while the new units are written (as a full disk would): a trigger, set up
    the way an operator with direct access would."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_unit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'disk full'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_unit BEFORE INSERT ON admin_units FOR EACH ROW "
                    f"WHEN (NEW.code = '{code}') EXECUTE FUNCTION refuse_unit()"
                )
            )
        else:
            conn.execute(
                text(
                    f"CREATE TRIGGER refuse_unit BEFORE INSERT ON admin_units WHEN NEW.code = '{code}' "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )


def test_a_replace_whose_writing_fails_half_way_leaves_every_row_of_the_store_as_it_was(
    empty_engine, tmp_path
):
    """The grids are written last: a failure there comes after the old codes were freed and the upper
    levels rewritten, and still nothing of it stays."""
    _populated(empty_engine, tmp_path)
    with empty_engine.connect() as conn:
        last_grid = (
            conn.execute(
                select(AdminUnit.code)
                .where(AdminUnit.level == AdminLevel.GRID)
                .order_by(AdminUnit.code.desc())
            )
            .scalars()
            .first()
        )
    _refuse_inserts_of(empty_engine, last_grid)
    before = _snapshot(empty_engine)
    with pytest.raises(Exception, match="disk full"):
        import_boundaries(
            UnitOfWork(empty_engine), _harbour_city(tmp_path, name="again.geojson"), seed=3, replace=True
        )
    assert _snapshot(empty_engine) == before
    forget_index()
    assert _report(empty_engine, *ON_ISLAND).grid_id is not None


KILLED = r"""
import sys, time
from sqlalchemy import event
from db.engine import make_engine
from db.uow import UnitOfWork
from services.boundaries import import_boundaries

engine = make_engine(sys.argv[1])
writes = {"n": 0}

@event.listens_for(engine, "after_cursor_execute")
def pause_in_the_write(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO ADMIN_UNITS"):
        writes["n"] += 1
        if writes["n"] == 3:  # the townships are in, the villages and grids not yet
            print("WRITING", flush=True)
            time.sleep(300)

import_boundaries(UnitOfWork(engine), sys.argv[2], seed=4, replace=True)
print("FINISHED", flush=True)
"""


def test_a_replace_killed_half_way_leaves_every_row_of_the_store_as_it_was(empty_engine, tmp_path):
    _populated(empty_engine, tmp_path)
    before = _snapshot(empty_engine)
    path = _harbour_city(tmp_path, name="next.geojson", east_code="880009")
    url = empty_engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, url, str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WRITING"
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 with the transaction open
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    empty_engine.dispose()
    assert _snapshot(empty_engine) == before
    forget_index()
    assert _report(empty_engine, *ON_ISLAND).grid_id is not None
    assert import_boundaries(
        UnitOfWork(empty_engine), path, seed=4, replace=True
    ).ok  # and it can be done again


# ------------------------------------------------------------------------------------------- a new store


def test_the_first_import_takes_over_the_placeholder_row_so_the_first_administrator_stays_logged_in(
    empty_engine, tmp_path
):
    assert ensure_setup_unit(UnitOfWork(empty_engine))
    assert not ensure_setup_unit(UnitOfWork(empty_engine))
    setup = _unit_id(empty_engine, SETUP_CODE)
    with empty_engine.begin() as conn:
        conn.execute(
            insert(User),
            {
                "username": "first",
                "display_name": "首位管理员",
                "role": Role.ADMIN,
                "scope_unit_id": setup,
                "created_at": NOW,
            },
        )
    result = import_boundaries(
        UnitOfWork(empty_engine),
        own_area.county_geojson(tmp_path / "county.json"),
        parent=ParentChoice(PARENT_NONE),
    )
    assert result.ok, result.errors
    assert result.rescoped == []
    with empty_engine.connect() as conn:
        top = conn.execute(select(AdminUnit).where(AdminUnit.parent_id.is_(None))).one()
        admin = conn.execute(select(User).where(User.username == "first")).one()
    assert (top.id, top.code, top.name, top.level) == (
        setup,
        own_area.COUNTY_CODE,
        own_area.COUNTY_NAME,
        AdminLevel.COUNTY,
    )
    assert admin.scope_unit_id == setup and admin.is_active
    forget_index()
    assert _report(empty_engine, *own_area.ON_ISLAND).grid_id is not None


def test_a_first_import_on_the_page_that_would_leave_two_top_units_is_refused_and_writes_nothing(
    empty_engine, tmp_path
):
    """Two districts of a city by name, their city not in the file (the page's default, or 不设上级): the
    first administrator was moved to one district without a word of the other, and could not import on the
    page any more (多个顶层区划). Refused, naming both and the way out; the operator's command line still may."""
    from services.accounts import create_first_admin

    assert ensure_setup_unit(UnitOfWork(empty_engine))
    admin = create_first_admin(
        UnitOfWork(empty_engine),
        username="first",
        display_name="首位管理员",
        password="admin-pass-1",
        repeat="admin-pass-1",
        now=NOW,
    )
    path = own_area.districts_by_name(tmp_path / "districts.geojson")
    before = _snapshot(empty_engine)
    for choice in (ParentChoice(), ParentChoice(PARENT_NONE)):
        for dry_run in (True, False):
            result = import_boundaries(
                UnitOfWork(empty_engine), path, parent=choice, actor=admin, dry_run=dry_run, seed=2
            )
            assert not result.ok and len(result.errors) == 1
            reason = result.errors[0].reason
            assert "2 个顶层单位" in reason and "东岛县" in reason and "西湾区" in reason, reason
            assert "由文件合并生成上级" in reason
            assert _snapshot(empty_engine) == before
    created = import_boundaries(
        UnitOfWork(empty_engine),
        path,
        parent=ParentChoice(PARENT_CREATE, "990300", "海湾市"),
        actor=admin,
        seed=2,
    )
    assert created.ok, created.errors
    with empty_engine.connect() as conn:
        top = conn.execute(select(AdminUnit.id, AdminUnit.code).where(AdminUnit.parent_id.is_(None))).one()
        scope = conn.execute(select(User.scope_unit_id).where(User.id == admin.id)).scalar_one()
    assert top.code == "990300" and scope == top.id


def test_without_filling_a_file_without_population_is_stored_with_estimates(empty_engine, tmp_path):
    """Once a crash (int of NA): population is optional, also when nothing is generated."""
    box = shapely.box
    rows = [
        {
            "code": "T1",
            "name": "一镇",
            "level": "township",
            "parent_code": None,
            "geometry": box(121, 29, 121.02, 29.01),
        },
        {
            "code": "T1001",
            "name": "一村",
            "level": "village",
            "parent_code": "T1",
            "geometry": box(121, 29, 121.02, 29.01),
        },
        {
            "code": "T1001001",
            "name": "一网格",
            "level": "grid",
            "parent_code": "T1001",
            "geometry": box(121, 29, 121.01, 29.01),
        },
        {
            "code": "T1001002",
            "name": "二网格",
            "level": "grid",
            "parent_code": "T1001",
            "geometry": box(121.01, 29, 121.02, 29.01),
        },
    ]
    result = import_boundaries(UnitOfWork(empty_engine), _write(rows, tmp_path / "full.geojson"), fill=False)
    assert result.ok, result.errors
    with empty_engine.connect() as conn:
        pops = dict(conn.execute(select(AdminUnit.code, AdminUnit.population)).all())
    assert pops["T1001001"] > 0 and pops["T1"] >= pops["T1001001"] + pops["T1001002"]


def test_an_estimated_population_is_kept_as_such_and_the_rankings_and_report_say_so(empty_engine, tmp_path):
    """投诉率 is per 10,000 residents: on a population the import estimated, the figure says 人口为估算."""
    from services.analytics import kpi_display, with_population_note
    from services.overview import unit_table
    from services.report_book import kpi_sheet

    rows = _harbour_rows()
    rows[2]["population"] = None  # 海岛区: none in the file, estimated
    result = import_boundaries(UnitOfWork(empty_engine), _write(rows, tmp_path / "gap.geojson"))
    assert result.ok, result.errors
    with empty_engine.connect() as conn:
        units = unit_table(conn).set_index("id")
    island = int(units.index[units["code"] == "880002"][0])
    under_island: set[int] = set()
    frontier = {island}
    while frontier:
        frontier = set(units.index[units["parent_id"].isin(frontier)])
        under_island |= frontier
    flagged = units.set_index("code")["population_estimated"]
    assert {c: flagged[c] for c in ("880000", "880001", "880002")} == {
        "880000": False,
        "880001": False,
        "880002": True,
    }
    # what was generated below 海岛区 shares its estimate; below 港城区, its real figure
    assert units.loc[sorted(under_island), "population_estimated"].all() and len(under_island) > 1
    others = units.index.difference([*under_island, island])
    assert not units.loc[others, "population_estimated"].any()
    counties = units[units["level"] == "county"].sort_values("code")
    table = counties[["name"]].assign(
        population_estimated=counties["population_estimated"],
        rank=[1, 2],
        rank_note=["", "样本少"],
        events=[10, 1],
        **{
            c: [0.5, 0.5]
            for c in (
                "complaint_rate",
                "resolution_rate",
                "satisfaction_rate",
                "satisfaction_rate_prev_change",
                "satisfaction_rate_yoy_change",
                "on_time_rate",
                "mean_handling_hours",
                "events_prev_change",
                "events_yoy_change",
            )
        },
    )
    assert with_population_note(table) == ["", "样本少；人口为估算"]
    assert kpi_display(table)["备注"].tolist() == ["", "样本少；人口为估算"]
    sheet = kpi_sheet("各区域", table, "resolution_rate", 5)
    assert {r[1]: r[-1] for r in sheet.rows} == {"港城区": "", "海岛区": "样本少（N<5）；人口为估算"}
    departments = kpi_sheet("各部门", table, "resolution_rate", 5, per_resident=False)
    assert {r[1]: r[-1] for r in departments.rows} == {"港城区": "", "海岛区": "样本少（N<5）"}  # no 投诉率


def test_values_longer_than_the_store_holds_are_listed_by_feature_and_field_and_nothing_is_written(
    empty_engine, tmp_path
):
    """A name over 100 characters, a code that leaves its generated children no room in the 32-character
    column, a population over the 32-bit column: listed before the write (on PostgreSQL the write itself
    failed with a store error; on SQLite the rows were stored as given)."""
    ensure_setup_unit(UnitOfWork(empty_engine))
    rows = _harbour_rows()
    rows[1]["name"] = "港" * 101
    rows[2]["code"] = "88" * 14  # 28 characters: a county's grids would be 37
    rows[0]["population"] = 3_000_000_000
    for row in rows[1:]:
        row["parent_code"] = rows[0]["code"]
    before = _snapshot(empty_engine)
    result = import_boundaries(UnitOfWork(empty_engine), _write(rows, tmp_path / "long.geojson"))
    problems = {(e.feature_index, e.field) for e in result.errors}
    assert {(0, "population"), (1, "name"), (2, "code")} <= problems, result.errors
    assert all("过长" in e.reason or "过大" in e.reason for e in result.errors)
    assert _snapshot(empty_engine) == before
    forget_index()


def test_a_parent_made_from_the_file_must_fit_the_store_too(empty_engine, tmp_path):
    rows = [r for r in _harbour_rows() if r["level"] == "county"]
    result = import_boundaries(
        UnitOfWork(empty_engine),
        _write(rows, tmp_path / "counties.geojson"),
        parent=ParentChoice(PARENT_CREATE, code="8" * 30, name="港城市"),
    )
    assert [(e.field, "要生成的上级单位" in e.reason) for e in result.errors] == [("parent_code", True)]
    assert _units(empty_engine) == 0


def test_a_level_mismatch_names_the_levels_in_chinese(empty_engine, tmp_path):
    rows = _harbour_rows()
    rows[2]["level"] = "township"
    result = import_boundaries(UnitOfWork(empty_engine), _write(rows, tmp_path / "mismatch.geojson"))
    reasons = [e.reason for e in result.errors if e.field == "level"]
    assert reasons and "为市，本单位应为县(市、区)" in reasons[0], reasons
    assert _units(empty_engine) == 0
