"""The store's schema: migrations match the models, and the constraints keep bad rows out."""

from datetime import datetime

import pytest
import shapely
from sqlalchemy import MetaData, Table, insert, inspect, text
from sqlalchemy.exc import IntegrityError, StatementError

from db.drift import schema_diff
from db.migrate import current_revision
from db.models import AdminUnit, Base, Venue


def _city(conn) -> int:
    """One unit, written through the table as the store has it now (an old store lacks newer columns)."""
    stored = Table("admin_units", MetaData(), autoload_with=conn)
    return conn.execute(
        insert(stored).returning(stored.c.id),
        {
            "code": "330800",
            "name": "衢州市",
            "level": "city",
            "kind": "市",
            "parent_id": None,
            "population": 10,
            "area_km2": 1.0,
            "centroid_lon": 118.8,
            "centroid_lat": 28.9,
            "geometry_wkb": shapely.to_wkb(shapely.box(118, 28, 119, 29)),
        },
    ).scalar_one()


def test_migrations_produce_exactly_the_models_schema(empty_engine):
    assert schema_diff(empty_engine) == []
    assert current_revision(empty_engine) is not None


def test_every_model_table_exists_after_migrating(empty_engine):
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_an_unknown_enum_value_is_refused_by_the_database(empty_engine):
    # Raw SQL, past the ORM's own validation: the CHECK constraint itself must refuse it.
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO admin_units (code, name, level, kind, population, area_km2,"
                " centroid_lon, centroid_lat, geometry_wkb)"
                " VALUES ('x', 'x', 'planet', 'x', 1, 1, 1, 1, :g)"
            ),
            {"g": b"\x00"},
        )


def test_a_negative_population_is_refused(empty_engine):
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        cid = _city(conn)
        conn.execute(AdminUnit.__table__.update().where(AdminUnit.id == cid).values(population=-1))


def test_a_venue_in_a_missing_grid_is_refused(empty_engine):
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(
            insert(Venue),
            {
                "code": "V1",
                "name": "某店",
                "category": "street_shop",
                "address": "某路1号",
                "lon": 118.8,
                "lat": 28.9,
                "grid_id": 999999,
                "safety_code": "green",
                "responsible_person": "张三",
                "created_at": datetime(2026, 11, 21),
            },
        )


def test_an_invalid_category_never_reaches_the_database(empty_engine):
    with pytest.raises(StatementError), empty_engine.begin() as conn:
        conn.execute(
            insert(Venue),
            {
                "code": "V1",
                "name": "某店",
                "category": "casino",
                "address": "某路1号",
                "lon": 118.8,
                "lat": 28.9,
                "grid_id": 1,
                "safety_code": "green",
                "responsible_person": "张三",
                "created_at": datetime(2026, 11, 21),
            },
        )


def test_an_existing_store_is_migrated_in_place_without_losing_rows(new_store_url):
    from alembic import command

    from db.engine import make_engine
    from db.migrate import alembic_config, upgrade

    engine = make_engine(new_store_url())
    cfg = alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")  # the first released schema
    with engine.begin() as conn:
        city = _city(conn)
        # a row of another table that references the unit: a migration that rebuilds admin_units (SQLite
        # batch mode: DROP TABLE) is refused on a store with data (it was, by 0020's first version)
        departments = Table("departments", MetaData(), autoload_with=conn)
        conn.execute(insert(departments), {"code": "D1", "name": "城管局", "kind": "城管", "unit_id": city})
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM admin_units")).scalar_one() == "衢州市"
        assert conn.execute(text("SELECT unit_id FROM departments")).scalar_one() == city
    assert schema_diff(engine) == []
    engine.dispose()


def _check_definitions(conn) -> dict[str, str]:
    return dict(
        conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'c'"
                " AND connamespace = 'public'::regnamespace"
            )
        ).all()
    )


def test_the_busiest_tables_checks_are_one_constant_each_and_refuse_what_they_refused(empty_engine):
    """Decision 0062: on PostgreSQL each enum CHECK of events and event_transitions is one array constant
    (what PostgreSQL reads and plans again at every INSERT), the lon/lat range has no casts; the same
    values are refused; migration 0022 taken back restores SQLAlchemy's lists exactly, and again."""
    from alembic import command

    from db.migrate import alembic_config

    with empty_engine.begin() as conn:
        grid = _city(conn)
        row = {"grid": grid, "at": datetime(2026, 11, 21, 9, 30)}
        insert_event = (
            "INSERT INTO events (source, category, title, description, lon, lat, grid_id, status, urgency,"
            " owner_unit_id, reporter_count, escalations, is_overdue, reported_at, updated_at, rating)"
            " VALUES ('citizen', 'urban', 't', '', {lon}, 28.9, :grid, '{status}', 'normal', :grid, 1, 0,"
            " false, :at, :at, {rating})"
        )
        conn.execute(text(insert_event.format(lon=118.8, status="reported", rating="NULL")), row)
    for lon, status, rating in (
        (118.8, "lost", "NULL"),
        (118.8, "reported", "'happy'"),
        (181.0, "reported", "NULL"),
    ):
        with pytest.raises(IntegrityError), empty_engine.begin() as conn:
            conn.execute(text(insert_event.format(lon=lon, status=status, rating=rating)), row)
    if empty_engine.dialect.name != "postgresql":
        return
    with empty_engine.connect() as conn:
        migrated = _check_definitions(conn)
    for name in (
        "ck_events_event_status",
        "ck_events_event_category",
        "ck_event_transitions_event_status_to",
    ):
        assert "= ANY ('{" in migrated[name] and "ARRAY[" not in migrated[name], migrated[name]
    assert "integer" not in migrated["ck_events_lonlat_range"]
    cfg = alembic_config(str(empty_engine.url))
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0021")
        before = _check_definitions(conn)
        command.upgrade(cfg, "0022")
        assert _check_definitions(conn) == migrated
    assert "ARRAY['reported'::character varying" in before["ck_events_event_status"]
    assert "('-180'::integer)::double precision" in before["ck_events_lonlat_range"]
    assert {n for n, d in before.items() if d != migrated[n]} >= {
        "ck_events_event_status",
        "ck_events_rating",
    }
