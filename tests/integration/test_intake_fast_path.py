"""Intake's Core path (services.intake.add_report) writes what services.events.add_event writes: the same
event row, the same first trail row, the same audit row; the duplicate search bounded by the grids near
the point finds what the unbounded box search finds; the lookup's scope test agrees with the tree's."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text

from db.models import AdminUnit, AuditLog, Event, EventTransition
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.intake import ReportForm
from domain.vocabulary import AdminLevel, EventCategory, EventSource, Role, Urgency
from services import audit
from services.access import unit_in_scope
from services.events import Actor, add_event
from services.intake import NewReport, add_report, find_duplicates, submit_report
from services.locate import OutsideArea, forget_index, grid_within, grids_near
from tests.builders import grid_centre, make_square_area
from tests.conftest import backend_url

NOW = datetime(2026, 11, 21, 12, 0)
ACTOR = Actor(None, "api:12345")
#: Columns that differ by construction between two events filed one after the other.
OWN = {"id"}
ON_POSTGRES = (backend_url() or "").startswith("postgresql")


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    yield empty_engine
    forget_index()


def _fields(i: int = 1, **kw):
    lon, lat = grid_centre(i)
    return {
        "source": EventSource.HOTLINE_12345,
        "category": EventCategory.URBAN,
        "title": "  井盖缺失 13912345678 ",
        "description": "路口井盖缺失",
        "lon": lon,
        "lat": lat,
        "now": NOW,
        "actor": ACTOR,
        "reporter_name": "王五",
        "reporter_phone": "13912345678",
    } | kw


def _stored(engine, event_id: int):
    with engine.connect() as conn:
        event = conn.execute(select(Event.__table__).where(Event.id == event_id)).mappings().one()
        step = (
            conn.execute(select(EventTransition.__table__).where(EventTransition.event_id == event_id))
            .mappings()
            .one()
        )
        trail = (
            conn.execute(
                select(AuditLog.__table__).where(AuditLog.entity == "events", AuditLog.entity_id == event_id)
            )
            .mappings()
            .one()
        )
    return dict(event), dict(step), dict(trail)


@pytest.mark.parametrize("flag", [False, True])
def test_core_path_writes_what_add_event_writes(engine, flag):
    with UnitOfWork(engine).begin("t.orm") as uow:
        orm = add_event(uow.session, **_fields(), duplicate_of_id=None)
        uow.session.flush()
        uow.commit()
    with UnitOfWork(engine).begin("t.core") as uow:
        core = add_report(uow.conn, NewReport(**_fields(), duplicate_of_id=orm.id if flag else None))
        uow.commit()
    if flag:  # the ORM twin flagged the same way, for a like-for-like comparison
        with UnitOfWork(engine).begin("t.orm2") as uow:
            orm = add_event(uow.session, **_fields(), duplicate_of_id=orm.id)
            uow.session.flush()
            uow.commit()
    e1, t1, a1 = _stored(engine, orm.id)
    e2, t2, a2 = _stored(engine, core.id)
    assert {k: v for k, v in e1.items() if k not in OWN} == {k: v for k, v in e2.items() if k not in OWN}
    assert {k: v for k, v in t1.items() if k not in {"id", "event_id"}} == {
        k: v for k, v in t2.items() if k not in {"id", "event_id"}
    }
    for row in (a1, a2):
        assert row["action"] == "event.report" and row["actor_role"] == "api:12345"
    assert json.loads(a1["after"]) == json.loads(a2["after"])
    assert "13912345678" not in a2["after"]  # the title's phone number is masked in the trail
    # the object returned is the stored row
    assert core.id == e2["id"] and core.grid_id == e2["grid_id"] and core.due_at == e2["due_at"]
    assert core.duplicate_of_id == (orm.duplicate_of_id if flag else None)
    with engine.connect() as conn:
        assert audit.verify(conn) is None


def test_core_path_writes_what_add_event_writes_for_an_imported_row(engine):
    """The 12345/110 file import takes the Core path too: urgency, address and 外部编号 as add_event's."""
    extra = {"urgency": Urgency.URGENT, "address": "方城路1号"}
    with UnitOfWork(engine).begin("t.orm") as uow:
        orm = add_event(uow.session, **_fields(), **extra, external_ref="GD-1")
        uow.session.flush()
        uow.commit()
    with UnitOfWork(engine).begin("t.core") as uow:
        core = add_report(uow.conn, NewReport(**_fields(), **extra, external_ref="GD-2"))
        uow.commit()
    (e1, t1, a1), (e2, t2, a2) = _stored(engine, orm.id), _stored(engine, core.id)
    mine = OWN | {"external_ref"}
    assert {k: v for k, v in e1.items() if k not in mine} == {k: v for k, v in e2.items() if k not in mine}
    assert (e1["external_ref"], e2["external_ref"], e2["urgency"]) == ("GD-1", "GD-2", Urgency.URGENT)
    assert json.loads(a1["after"]) | {"external_ref": "GD-2"} == json.loads(a2["after"])
    assert {k: v for k, v in t1.items() if k not in {"id", "event_id"}} == {
        k: v for k, v in t2.items() if k not in {"id", "event_id"}
    }


def test_core_path_refuses_outside_and_empty_title(engine):
    with UnitOfWork(engine).begin("t.core") as uow:
        with pytest.raises(OutsideArea):
            add_report(uow.conn, NewReport(**_fields(lon=100.0, lat=10.0)))
        with pytest.raises(ValueError, match="标题"):
            add_report(uow.conn, NewReport(**_fields(title="   ")))


def test_bounded_duplicate_search_finds_neighbours_across_a_grid_border(engine):
    """Two reports 10 m apart on either side of the border between grids 0 and 1: each finds the other."""
    (x0, y), (x1, _) = grid_centre(0), grid_centre(1)
    border = (x0 + x1) / 2
    west, east = border - 0.00005, border + 0.00005
    form = ReportForm(category="urban", title="占道", description="", lon=west, lat=y)
    first = submit_report(UnitOfWork(engine), form, now=NOW)
    second = submit_report(
        UnitOfWork(engine),
        ReportForm(category="urban", title="占道", description="", lon=east, lat=y),
        now=NOW + timedelta(minutes=5),
    )
    assert first.grid_id != second.grid_id
    assert second.duplicate_of_id == first.id
    with engine.connect() as conn:
        found = find_duplicates(conn, "urban", east, y, NOW + timedelta(minutes=6))
        assert [e.id for e, _ in found] == [second.id, first.id]  # nearest first
        assert len(grids_near(conn, border, y, 0.001)) >= 2
        assert grids_near(conn, 100.0, 10.0, 0.001) == []  # far outside: no grid, nothing searched


def test_grid_within_agrees_with_the_tree(engine):
    with engine.connect() as conn:
        units = conn.execute(select(AdminUnit.id, AdminUnit.level)).all()
        grids = [u.id for u in units if AdminLevel(u.level) is AdminLevel.GRID]
        for unit, _level in units:
            viewer = CurrentUser(
                id=0, username="k", display_name="k", role=Role.COMMAND_CENTER, scope_unit_id=unit
            )
            for grid in grids:
                assert grid_within(conn, grid, unit) == unit_in_scope(conn, viewer, grid)


def test_a_report_read_ahead_is_stored_as_one_read_in_its_transaction(engine):
    """submit_report reads the duplicates and the deadline rules before its write transaction (decision
    0041); the GroupCommit path reads them inside it. Both give the same flag and the same deadline under
    the rules saved just before, so neither read is stale or skipped."""
    from domain.deadlines import DEFAULT_DEADLINES
    from domain.dispatch import DEFAULT_RULES
    from services.event_rules import save_rules
    from services.intake import GroupCommit

    rules = json.loads(DEFAULT_DEADLINES.to_json())
    for stage in rules.values():  # every deadline 5 hours: not the default anywhere
        for urgency in stage:
            stage[urgency] = 5
    save_rules(
        UnitOfWork(engine), dispatch_json=DEFAULT_RULES.to_json(), deadlines_json=json.dumps(rules), now=NOW
    )
    lon, lat = grid_centre(3)
    first = submit_report(
        UnitOfWork(engine),
        ReportForm(category="urban", title="占道", description="", lon=lon, lat=lat),
        now=NOW,
    )
    ahead = submit_report(
        UnitOfWork(engine),
        ReportForm(category="urban", title="占道经营", description="", lon=lon + 0.0001, lat=lat),
        now=NOW + timedelta(minutes=1),
    )
    batch = GroupCommit(engine).submit_report(
        ReportForm(category="urban", title="又见占道", description="", lon=lon, lat=lat + 0.0001),
        now=NOW + timedelta(minutes=2),
    )
    assert ahead.duplicate_of_id == first.id and batch.duplicate_of_id in {first.id, ahead.id}
    for event, at in ((first, NOW), (ahead, NOW + timedelta(minutes=1)), (batch, NOW + timedelta(minutes=2))):
        assert event.due_at == at + timedelta(hours=5)
        e, _, _ = _stored(engine, event.id)
        assert e["due_at"] == event.due_at and e["duplicate_of_id"] == event.duplicate_of_id


def test_a_report_committed_while_another_was_read_ahead_is_not_its_duplicate(engine):
    """The race decision 0041 accepts: a report prepared before its neighbour committed is not flagged
    against it (as with two concurrent transactions on PostgreSQL); the next report is flagged again."""
    from services.intake import prepare_report, write_report

    lon, lat = grid_centre(2)
    form = ReportForm(category="urban", title="占道", description="", lon=lon, lat=lat)
    early = prepare_report(UnitOfWork(engine), form, now=NOW, read_ahead=True)
    assert early.nearby == []
    first = submit_report(UnitOfWork(engine), form, now=NOW)
    with UnitOfWork(engine).begin("t.late") as uow:
        late = write_report(uow.session, early)
        uow.commit()
    assert late.duplicate_of_id is None
    third = submit_report(UnitOfWork(engine), form, now=NOW + timedelta(minutes=1))
    assert third.duplicate_of_id in {first.id, late.id}


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's planner and its statistics")
def test_the_duplicate_search_reads_its_grids_not_the_whole_day_when_statistics_lag(engine):
    """PostgreSQL plans from the statistics an ANALYZE took, which never count the reports filed since.
    Here a year's history over 400 grids, a quarter of it in the busy grid 0, is analyzed; then a day
    elsewhere fills with reports. A search near grid 0 reads grid 0's index entries (decision
    0061), not the reported_at index over every report of the day, and by a plan made once."""
    x, y = grid_centre(0)
    first = submit_report(
        UnitOfWork(engine), ReportForm(category="urban", title="占道", description="", lon=x, lat=y), now=NOW
    )
    units = [c.name for c in AdminUnit.__table__.columns if c.name not in ("id", "code")]
    columns = [c.name for c in Event.__table__.columns if c.name not in ("id", "grid_id", "reported_at")]
    copy = (
        f"INSERT INTO events ({', '.join(columns)}, grid_id, reported_at) SELECT {', '.join(columns)}, "
        "CASE WHEN n % 4 = 0 THEN grid_id ELSE (SELECT id FROM admin_units WHERE code = 'P' || (n % 399)) END, "
        "CAST(:at AS timestamp) + n * CAST(:step AS interval) FROM events, generate_series(1, :n) AS n "
        "WHERE events.id = :id"
    )
    with engine.begin() as conn:
        east = conn.execute(  # the new grids copy the easternmost one: none is near grid 0
            select(AdminUnit.id)
            .where(AdminUnit.level == AdminLevel.GRID)
            .order_by(AdminUnit.centroid_lon.desc())
        ).first()[0]
        conn.execute(
            text(
                f"INSERT INTO admin_units (code, {', '.join(units)}) SELECT 'P' || n, {', '.join(units)}"
                " FROM admin_units, generate_series(0, 398) AS n WHERE id = :grid"
            ),
            {"grid": east},
        )
        conn.execute(
            text(copy), {"at": NOW - timedelta(days=400), "step": "30 minutes", "n": 16_000, "id": first.id}
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ALTER TABLE events SET (autovacuum_enabled = off)")  # no ANALYZE but this one
        conn.exec_driver_sql("ANALYZE events")
    with engine.begin() as conn:  # the day's reports, after the ANALYZE, none near grid 0
        conn.execute(
            text(copy.replace("CASE WHEN n % 4 = 0 THEN grid_id ELSE", "CASE WHEN false THEN 0 ELSE")),
            {"at": NOW - timedelta(hours=20), "step": "3 seconds", "n": 20_000, "id": first.id},
        )
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if isinstance(parameters, dict) and "lon_lo" in parameters:  # the duplicate search
            seen.append((statement, parameters))

    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            assert [e.id for e, _ in find_duplicates(conn, "urban", x, y, NOW)] == [first.id]
            ((statement, parameters),) = seen
            with conn.connection.driver_connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
                plan = json.dumps(cursor.fetchone()[0])
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    assert "ix_events_grid_reported" in plan
    assert "ix_events_reported_at" not in plan
    # No plan depends on the search's values: PostgreSQL keeps its generic plan for the prepared statement
    # instead of planning each search again.
    with engine.connect() as conn:
        for _ in range(24):  # prepared after 5 runs; planned for its values 5 times, then generic
            find_duplicates(conn, "urban", x, y, NOW)
        generic, custom = conn.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE :near AND statement NOT LIKE :rules"
            ),
            {"near": "%unnest%lon BETWEEN%", "rules": "%deadlines%"},
        ).one()
    assert generic > custom
