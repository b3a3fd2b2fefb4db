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
