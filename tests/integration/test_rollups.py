"""The event rollup (decision 0032) equals the raw aggregation, after a rebuild and after refreshes
that follow reports and actions through the use cases; KPI reads served from it equal the raw ones."""

import os
import subprocess
import sys
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, func, insert, or_, select, text, update

from db.engine import make_engine
from db.migrate import upgrade
from db.models import (
    AdminUnit,
    Department,
    Event,
    EventCategoryDaily,
    EventDaily,
    EventDepartmentDaily,
    EventGridDaily,
    EventGridTotal,
    EventRecentReport,
    EventTownshipDaily,
    EventTransition,
    RollupState,
)
from db.uow import UnitOfWork
from domain.event_flow import Action
from domain.hierarchy import ancestor_table, descendants
from domain.vocabulary import EventCategory, EventSource, EventStatus, Rating
from services import analytics, clock, overview, rollups
from services.access import Scope
from services.events import act, report_event
from services.overview import unit_table
from tests.builders import grid_centre, make_square_area

DAY0 = datetime(2026, 11, 2, 9, 0)


def _report(uow, grid: int, at: datetime) -> int:
    lon, lat = grid_centre(grid)
    event = report_event(
        uow,
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="路面垃圾",
        lon=lon,
        lat=lat,
        now=at,
    )
    return event.id


@pytest.fixture
def area(new_store_url):
    """The square area with 24 events over six days in its four grids, some handled and rated."""
    engine = make_engine(new_store_url())
    upgrade(engine)
    with engine.begin() as conn:
        make_square_area(conn)
        dept = conn.execute(select(Department.id)).scalar_one()
    uow = UnitOfWork(engine)
    ids = [_report(uow, k % 4, DAY0 + timedelta(days=k // 4, hours=k % 5)) for k in range(24)]
    for k, eid in enumerate(ids[:12]):
        t = DAY0 + timedelta(days=k // 4, hours=6)
        act(uow, event_id=eid, action=Action.ACCEPT, now=t)
        act(uow, event_id=eid, action=Action.DISPATCH, now=t, department_id=dept)
        if k % 3:
            act(uow, event_id=eid, action=Action.START, now=t + timedelta(hours=1))
            act(uow, event_id=eid, action=Action.RESOLVE, now=t + timedelta(hours=3 + k))
    act(uow, event_id=ids[12], action=Action.REJECT, now=DAY0 + timedelta(days=3, hours=7), note="无效上报")
    yield engine, uow, ids, dept
    engine.dispose()


def _rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(EventDaily)).all())


def _differences(engine) -> list[str]:
    with engine.connect() as conn:
        return rollups.differences(conn)


def test_a_rebuild_equals_the_raw_aggregation_for_every_key(area):
    engine, uow, ids, _dept = area
    assert rollups.rebuild(uow, DAY0 + timedelta(days=7)) > 0
    rows = _rows(engine)
    assert sum(r[3] for r in rows) == len(ids)  # all_events
    assert sum(r[4] for r in rows) == len(ids) - 1  # valid events: the rejected one left out
    assert _differences(engine) == []
    with engine.connect() as conn:
        assert rollups.fresh(conn)


def test_a_refresh_folds_in_new_reports_and_actions_and_then_changes_nothing(area):
    engine, uow, ids, dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    new = _report(uow, 2, DAY0 + timedelta(days=6, hours=1))  # a new key
    for eid in ids[12:16]:  # an old day's events: dispatched (the department key moves), handled, rated
        act(uow, event_id=eid, action=Action.ACCEPT, now=now) if eid != ids[12] else None
    act(uow, event_id=ids[13], action=Action.DISPATCH, now=now, department_id=dept)
    act(uow, event_id=ids[1], action=Action.VERIFY, now=now)
    act(uow, event_id=ids[1], action=Action.RATE, now=now, rating=Rating.SATISFIED)
    act(uow, event_id=new, action=Action.REJECT, now=now, note="无效上报")
    with engine.connect() as conn:
        assert not rollups.fresh(conn)
    assert _differences(engine)  # stale until refreshed: the check sees it
    assert rollups.refresh(uow, now) > 0
    assert _differences(engine) == []
    with engine.connect() as conn:
        assert rollups.fresh(conn)
    before = _rows(engine)
    assert rollups.refresh(uow, now + timedelta(minutes=1)) == 0
    assert _rows(engine) == before


def test_a_refresh_without_a_rollup_builds_it(area):
    engine, uow, _ids, _dept = area
    assert rollups.refresh(uow, DAY0 + timedelta(days=7)) > 0
    assert _differences(engine) == []


def _heap_order(engine) -> list[tuple]:
    """``event_recent_reports``' keys in the order its rows lie in the table (PostgreSQL's ctid)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT grid_id, reported_at, id FROM event_recent_reports ORDER BY ctid"))
        return [tuple(r) for r in rows]


def _every_rollup_row(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            m.__tablename__: sorted(tuple(map(str, r)) for r in conn.execute(select(m)).all())
            for m in rollups.TABLES
        }


def test_tidy_puts_the_recent_reports_back_in_key_order_on_postgresql_and_changes_no_row(area):
    """Decision 0044: a rebuild writes 预警's recent reports in key order; the minute's refreshes append
    new ones at the end of PostgreSQL's heap; the nightly tidy rewrites it in key order again, every row
    as it was. On SQLite (tables kept in key order by themselves) it does nothing."""
    engine, uow, _ids, _dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        assert _heap_order(engine) == sorted(_heap_order(engine))
    for k in range(8):  # a later day's reports, in every grid, folded in by a refresh
        _report(uow, 3 - k % 4, DAY0 + timedelta(days=6, hours=k % 5, minutes=k))
    assert rollups.refresh(uow, now) > 0
    before = _every_rollup_row(engine)
    if postgres:
        assert _heap_order(engine) != sorted(_heap_order(engine))
    done = rollups.tidy(engine)
    assert _every_rollup_row(engine) == before
    assert _differences(engine) == []
    if postgres:
        assert _heap_order(engine) == sorted(_heap_order(engine))
        assert len(done) == 2 and "重排" in done[0]
    else:
        assert done == []


def test_the_nightly_tidy_job_runs_on_either_store(area, tmp_path):
    from services.jobs import run_due

    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    run = run_due(uow, DAY0 + timedelta(days=7, hours=5), only=("rollups_tidy",), reports=tmp_path)
    assert run["rollups_tidy"].outcome == "ok", run["rollups_tidy"].error
    assert ("重排" in run["rollups_tidy"].summary) == (engine.dialect.name == "postgresql")


@pytest.mark.parametrize("key", ["grid_id", "lead_department_id"])
def test_kpi_sums_from_the_rollup_equal_the_raw_sums(area, key):
    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.connect() as conn:
        grids = tuple(conn.execute(select(AdminUnit.id).where(AdminUnit.level == "grid")).scalars())
        scope = Scope(grids)
        start = datetime(2026, 11, 2)
        for end in (start + timedelta(days=3), start + timedelta(days=30)):
            rolled = analytics.kpi_sums(conn, scope, start, end, key)
            raw = analytics.raw_kpi_sums(conn, scope, start, end, key)
            assert rolled[analytics.kpi.SUM_COLUMNS].to_numpy().sum() > 0
            pd.testing.assert_frame_equal(
                rolled.sort_values(key).reset_index(drop=True),
                raw.sort_values(key).reset_index(drop=True),
                check_dtype=False,
                rtol=1e-9,
            )


def _area_tables(conn, unit_code: str, start: datetime, end: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The area view (分析排名 by child unit, 同比/环比) of the unit: as served, and from the raw events."""
    units = unit_table(conn).set_index("id")
    anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
    unit = int(units.index[units["code"] == unit_code][0])
    scope = Scope(tuple(descendants(anc, unit, "grid")))
    args = dict(group="area", units=units, anc=anc, scope_unit_id=unit)
    served = analytics.kpi_by(conn, scope, start, end, **args)
    with _raw_reads():
        raw = analytics.kpi_by(conn, scope, start, end, **args)
    return served, raw


def test_the_area_views_of_a_city_and_a_county_from_the_township_rollup_equal_the_raw_ones(area):
    """Decision 0045: a city's and a county's area views read ``event_township_daily``; the same table as
    from the raw events after a rebuild, before a refresh (the changed keys' townships from their raw
    events) and after it."""
    engine, uow, ids, dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    start, end = datetime(2026, 11, 2), datetime(2026, 11, 9)
    read = []
    original, pending = analytics.township_sums, rollups.pending

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        if rollups.pending is pending:  # the served view, not the raw one beside it
            read.append(out is not None)
        return out

    analytics.township_sums = spy
    try:
        for moment in ("rebuilt", "stale", "refreshed"):
            if moment == "stale":
                _report(uow, 1, DAY0 + timedelta(days=2, hours=3))
                act(uow, event_id=ids[20], action=Action.ACCEPT, now=now)
                act(uow, event_id=ids[20], action=Action.DISPATCH, now=now, department_id=dept)
                act(uow, event_id=ids[14], action=Action.REJECT, now=now, note="无效上报")
            if moment == "refreshed":
                assert rollups.refresh(uow, now) > 0
            with engine.connect() as conn:
                for code in ("990000", "990001"):  # the city (by county), the county (by township)
                    served, raw = _area_tables(conn, code, start, end)
                    assert served["events"].sum() > 0, moment
                    pd.testing.assert_frame_equal(served, raw, check_dtype=False, rtol=1e-9)
    finally:
        analytics.township_sums = original
    assert read and all(read)  # every served view was read from the township rollup
    with engine.connect() as conn:  # a township's view is by village: read by grid as before
        read.clear()
        served, raw = _area_tables(conn, "990001001", start, end)
        pd.testing.assert_frame_equal(served, raw, check_dtype=False, rtol=1e-9)


def test_the_city_report_read_by_township_equals_the_one_from_raw_events(area, monkeypatch):
    """The city's 月报 reads its areas' table per township, and its 概况 reuses those sums: every sheet
    holds the same cells as when the report reads the raw events."""
    import io

    import openpyxl

    engine, uow, _ids, _dept = area
    # 预警's "judged when the report was made" names the minute: both reports are made in the same one
    monkeypatch.setattr(clock, "now", lambda: DAY0 + timedelta(days=7))
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.connect() as conn:
        units = unit_table(conn).set_index("id")
        anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
        city = int(units.index[units["code"] == "990000"][0])
        scope = Scope(tuple(descendants(anc, city, "grid")))
        args = dict(
            kind="周报", day=DAY0.date() + timedelta(days=6), units=units, anc=anc, scope_unit_id=city
        )
        served = analytics.report_workbook(conn, scope, **args)
        with _raw_reads():
            raw = analytics.report_workbook(conn, scope, **args)

    def cells(data: bytes) -> dict[str, list[tuple]]:
        book = openpyxl.load_workbook(io.BytesIO(data))
        return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}

    assert cells(served) == cells(raw)
    assert any("23" in map(str, row) for row in cells(served)["概况"])  # 24 reports, one rejected


def test_the_township_rollup_serves_no_scope_holding_part_of_a_township(area):
    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.connect() as conn:
        units = unit_table(conn).set_index("id")
        anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
        grids = sorted(int(g) for g in units.index[units["level"] == "grid"])
        start, end = datetime(2026, 11, 2), datetime(2026, 11, 9)
        whole = analytics.township_sums(conn, Scope(tuple(grids)), start, end, anc)
        assert whole is not None and int(whole["events"].sum()) == 23  # 24 reports, one rejected
        assert analytics.township_sums(conn, Scope(tuple(grids[:3])), start, end, anc) is None
        partial_day = datetime(2026, 11, 2, 12)
        assert analytics.township_sums(conn, Scope(tuple(grids)), partial_day, end, anc) is None


def test_whole_days_are_read_from_the_rollup_and_a_partial_day_from_the_events(area):
    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.begin() as conn:  # a marked rollup row: whoever reads the rollup sees one event more
        conn.execute(
            update(EventGridDaily)
            .where(EventGridDaily.day == DAY0.date())
            .values(events=EventGridDaily.events + 1)
        )
    with engine.connect() as conn:
        scope = Scope(tuple(conn.execute(select(AdminUnit.id).where(AdminUnit.level == "grid")).scalars()))
        start = datetime(2026, 11, 2)

        def events(end):
            return analytics.kpi_sums(conn, scope, start, end, "grid_id")["events"].sum()

        assert events(start + timedelta(days=1)) == 4 + 4  # four grids' days, each marked
        assert events(start + timedelta(hours=23)) == 4


def test_before_a_refresh_the_changed_keys_are_read_from_the_events_and_the_others_from_the_rollup(area):
    engine, uow, ids, _dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    act(uow, event_id=ids[2], action=Action.VERIFY, now=now)  # day 0, grid 2: handled, then rated
    act(uow, event_id=ids[2], action=Action.RATE, now=now, rating=Rating.SATISFIED)
    _report(uow, 0, DAY0 + timedelta(hours=8))  # day 0, grid 0: one more
    start = datetime(2026, 11, 2)
    with engine.connect() as conn:
        assert not rollups.fresh(conn) and rollups.pending(conn) == {
            DAY0.date(): {_grid(conn, 0), _grid(conn, 2)}
        }
        scope = Scope(tuple(conn.execute(select(AdminUnit.id).where(AdminUnit.level == "grid")).scalars()))
        for key in ("grid_id", "lead_department_id"):
            rolled = analytics.kpi_sums(conn, scope, start, start + timedelta(days=3), key)
            raw = analytics.raw_kpi_sums(conn, scope, start, start + timedelta(days=3), key)
            assert rolled["rated"].sum() == 1 and rolled["events"].sum() == raw["events"].sum() == 13
            pd.testing.assert_frame_equal(
                rolled.sort_values(key).reset_index(drop=True),
                raw.sort_values(key).reset_index(drop=True),
                check_dtype=False,
                rtol=1e-9,
            )
    with engine.begin() as conn:  # a marked rollup row of an unchanged day: still read from the rollup
        conn.execute(
            update(EventGridDaily)
            .where(EventGridDaily.day == DAY0.date() + timedelta(days=1))
            .values(events=EventGridDaily.events + 1)
        )
    with engine.connect() as conn:
        assert (
            analytics.kpi_sums(conn, scope, start, start + timedelta(days=3), "grid_id")["events"].sum()
            == 13 + 4
        )


def _grid(conn, index: int) -> int:
    code = f"99000100100{1 + index // 2}{1 + index % 2:03d}"
    return conn.execute(select(AdminUnit.id).where(AdminUnit.code == code)).scalar_one()


def test_the_check_command_exits_1_on_a_difference(area):
    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))

    def check() -> subprocess.CompletedProcess:
        url = engine.url.render_as_string(hide_password=False)
        env = {**os.environ, "DATABASE_URL": url}
        return subprocess.run(
            [sys.executable, "-m", "services.rollups", "check"], env=env, capture_output=True, text=True
        )

    assert check().returncode == 0
    with engine.begin() as conn:
        conn.execute(
            update(EventDaily).where(EventDaily.day == DAY0.date()).values(rated=EventDaily.rated + 1)
        )
    run = check()
    assert run.returncode == 1 and "不一致" in run.stderr and str(DAY0.date()) in run.stdout


def test_a_boundary_replace_that_moves_events_leaves_the_rollup_equal_to_the_events(empty_engine, tmp_path):
    """A replace moves events to new grids without a transition: the import recomputes the rollup in
    its own transaction, so no refresh is needed to be exact again."""
    from services.boundaries import import_boundaries
    from tests.integration.test_boundary_import import _harbour_city, _populated

    engine = empty_engine
    _populated(engine, tmp_path)
    rollups.rebuild(UnitOfWork(engine), datetime(2026, 11, 21, 10, 0))
    path = _harbour_city(tmp_path, name="next.geojson", east_code="880009")
    result = import_boundaries(UnitOfWork(engine), path, seed=4, replace=True)
    assert result.ok, result.errors
    assert result.relocated["events"] >= 1
    with engine.connect() as conn:
        assert rollups.differences(conn) == []


ROLLUP_TABLES = (
    EventDaily,
    EventGridDaily,
    EventTownshipDaily,
    EventDepartmentDaily,
    EventCategoryDaily,
    EventGridTotal,
    EventRecentReport,
)
#: Per table a column every event adds one to (a report's reporter_count is 1 here).
COUNTED = {EventCategoryDaily: "counted", EventRecentReport: "reporter_count"}


@pytest.mark.parametrize("model", ROLLUP_TABLES, ids=lambda m: m.__tablename__)
def test_every_rollup_table_is_built_and_a_wrong_row_in_it_is_found(area, model):
    engine, uow, ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    column = getattr(model, COUNTED.get(model, "all_events"))
    with engine.begin() as conn:
        assert conn.execute(select(func.sum(column))).scalar_one() == len(ids)
        conn.execute(update(model).values({column: column + 1}))
    with engine.connect() as conn:
        found = rollups.differences(conn, limit=1000)
        rows = conn.execute(select(func.count()).select_from(model)).scalar_one()
    assert rows > 0 and len(found) == rows  # every row of the marked table, none of another


def test_the_recent_reports_count_their_matter_nearby_and_the_check_finds_a_wrong_count(area):
    engine, uow, ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.connect() as conn:
        near = conn.execute(select(EventRecentReport.near)).scalars().all()
    assert near == [6] * 24  # six reports of 路面垃圾 at each grid's centre, the grids far apart
    with engine.begin() as conn:
        conn.execute(update(EventRecentReport).where(EventRecentReport.id == ids[0]).values(near=7))
    found = _differences(engine)
    assert len(found) == 1 and f"事件 {ids[0]}：附近同类事项 原始 6 汇总 7" in found[0]


def test_a_refresh_recounts_the_matter_nearby_around_a_change_and_when_days_fall_out(area):
    engine, uow, ids, _dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    for k in range(3):  # three more at grid 0's centre, on a day of its own
        _report(uow, 0, DAY0 + timedelta(days=6, hours=k))
    act(uow, event_id=ids[13], action=Action.ACCEPT, now=now)  # and a change in grid 1
    assert rollups.refresh(uow, now) > 0
    assert _differences(engine) == []

    def near() -> dict[int, int | None]:
        with engine.connect() as conn:
            return dict(conn.execute(select(EventRecentReport.id, EventRecentReport.near)).all())

    assert near()[ids[0]] == 9 and near()[ids[1]] == 6  # grid 0's reports see the new ones, grid 1's do not
    # 65 days on, the first two days have left the window with two of grid 0's reports: counted again
    # (grid 0: the reports of days 2–5 and the three new ones).
    later = DAY0 + timedelta(days=rollups.RECENT_DAYS + 2)
    _report(uow, 3, later)
    assert rollups.refresh(uow, later) > 0
    assert _differences(engine) == []
    assert ids[0] not in near() and near()[ids[8]] == 7


def test_the_category_rollup_counts_the_events_not_merged(area):
    engine, uow, ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(EventCategoryDaily.counted))).scalar_one() == len(ids)
        assert set(conn.execute(select(EventCategoryDaily.category)).scalars()) == {EventCategory.URBAN.value}


@pytest.mark.parametrize("refreshed", [True, False])
def test_home_figures_from_the_grid_totals_equal_the_counted_events(area, refreshed):
    engine, uow, _ids, _dept = area
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    _report(uow, 1, DAY0 + timedelta(days=6, hours=2))  # one more in grid 1
    if refreshed:
        rollups.refresh(uow, now)
    with engine.connect() as conn:
        assert rollups.fresh(conn) == refreshed
        served = overview.unit_figures(conn, (DAY0 + timedelta(days=6)).date())
        with _raw_reads():
            raw = overview.unit_figures(conn, (DAY0 + timedelta(days=6)).date())
        assert served.loc[_grid(conn, 1), "events"] == 7
    assert served["events"].max() == 25  # the root: every event
    pd.testing.assert_frame_equal(served, raw)


def test_home_figures_read_the_grid_totals(area):
    engine, uow, _ids, _dept = area
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.begin() as conn:
        conn.execute(update(EventGridTotal).values(all_events=EventGridTotal.all_events + 100))
    with engine.connect() as conn:
        assert overview.unit_figures(conn, DAY0.date())["events"].max() == 24 + 4 * 100


def test_home_figures_read_todays_counts_from_the_rollup_and_a_pending_grid_from_its_events(area):
    """Today's counts are the day's rollup rows (a wrong row shows), but for the (day, grid) keys the jobs
    runner has not folded in yet, which are counted from their events (decision 0057)."""
    engine, uow, _ids, _dept = area
    day = (DAY0 + timedelta(days=5)).date()
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    with engine.begin() as conn:
        grids = {g: _grid(conn, g) for g in range(4)}
        wrong = (EventGridDaily.day == day, EventGridDaily.grid_id == grids[1])
        conn.execute(update(EventGridDaily).where(*wrong).values(all_events=100))
    with engine.connect() as conn:
        figures = overview.unit_figures(conn, day)
        assert [figures.at[grids[g], "today_events"] for g in range(4)] == [1, 100, 1, 1]
    _report(uow, 2, DAY0 + timedelta(days=5, hours=3))  # grid 2's day pending: its events are counted
    with engine.connect() as conn:
        figures = overview.unit_figures(conn, day)
        with _raw_reads():
            raw = overview.unit_figures(conn, day)
    assert figures.at[grids[2], "today_events"] == raw.at[grids[2], "today_events"] == 2
    assert figures.at[grids[1], "today_events"] == 100  # not pending: the rollup's row
    # all time: the pending day's row is taken out of the grid's total and its events counted
    assert figures.at[grids[2], "events"] == raw.at[grids[2], "events"] == 7


def test_home_figures_stay_exact_when_the_runner_folds_the_keys_in_while_they_are_read(area, monkeypatch):
    """The pending keys are read first; if the minute's refresh commits before the counts are read, the
    counts (one statement) take the refreshed rows out and the same events in: nothing is lost."""
    engine, uow, _ids, _dept = area
    day = (DAY0 + timedelta(days=5)).date()
    rollups.rebuild(uow, DAY0 + timedelta(days=7))
    for h in range(3):
        _report(uow, 2, DAY0 + timedelta(days=5, hours=3 + h))  # grid 2's day pending: 3 new events
    with engine.connect() as conn:
        expected = overview.unit_figures(conn, day)
    real = rollups.pending

    def then_refreshed(conn):
        keys = real(conn)
        rollups.refresh(UnitOfWork(engine), DAY0 + timedelta(days=7))  # the jobs runner, meanwhile
        return keys

    monkeypatch.setattr(rollups, "pending", then_refreshed)
    with engine.connect() as conn:
        got = overview.unit_figures(conn, day)
        grid = _grid(conn, 2)
    assert got.at[grid, "events"] == 9 and got.at[grid, "today_events"] == 4
    pd.testing.assert_frame_equal(got, expected)


class _raw_reads:
    """Within: readers see no rollup (``rollups.pending`` says None), as before one was built."""

    def __enter__(self):
        self.pending = rollups.pending
        rollups.pending = lambda _conn: None

    def __exit__(self, *_exc):
        rollups.pending = self.pending


@pytest.fixture
def demo_with_rollup(seeded_store):
    """The tiny demo (shared) with its rollups built; cleared afterwards, as other tests found it."""
    engine = make_engine(seeded_store[0])
    rollups.rebuild(UnitOfWork(engine), clock.now())
    try:
        yield engine, seeded_store[1]
    finally:
        with engine.begin() as conn:
            for model in (*ROLLUP_TABLES, RollupState):
                conn.execute(delete(model))
        engine.dispose()


def _demo_scope(conn):
    units = unit_table(conn).set_index("id")
    anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
    township = int(units.index[units["level"] == "township"][0])
    return units, Scope(tuple(descendants(anc, township, "grid")))


def test_warnings_from_the_rollup_equal_those_judged_on_the_events(demo_with_rollup):
    """预警 reads daily counts from ``event_category_daily`` and only the last 8 weeks of reports: the
    same alerts, evidence and sentences as from every event of the 84 days, on the anomalies' days and
    around them, before a refresh too (a new report's key read from the events)."""
    engine, manifest = demo_with_rollup
    days = sorted(
        {
            datetime.fromisoformat(e["start"]).date() + timedelta(days=k)
            for e in manifest["anomalies"]
            for k in (0, 1, 3)
        }
    )
    days = [d for d in days if d <= clock.today()] + [clock.today()]
    kinds = set()
    with engine.connect() as conn:
        units, scope = _demo_scope(conn)
        assert analytics.warning_counts(conn, scope, DAY0 - timedelta(days=84), DAY0, units) is not None
        for d in days:
            served = analytics.warnings(conn, scope, d, units)
            with _raw_reads():
                raw = analytics.warnings(conn, scope, d, units)
            assert served == raw, d
            kinds |= {a.kind.value for a in served}
    assert {"spike", "mass", "chronic"} <= kinds
    grid = scope.grid_ids[0]
    lon, lat = grid_centre_of(engine, grid)
    report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="路面垃圾",
        lon=lon,
        lat=lat,
        now=clock.now(),
    )
    with engine.connect() as conn:
        assert rollups.pending(conn)
        served = analytics.warnings(conn, scope, clock.today(), units)
        with _raw_reads():
            assert served == analytics.warnings(conn, scope, clock.today(), units)
        # The reports 顽疾 and 群发 read: from event_recent_reports (the new one from the events) as from
        # the events themselves, row for row.
        end = datetime.combine(clock.today() + timedelta(days=1), datetime.min.time())
        start, mass_from = end - timedelta(days=56), end - timedelta(days=1, hours=6)
        recent = analytics.recent_reports(conn, scope, start, end, mass_from)
        raw = analytics.warning_events(
            conn, scope, start, end, or_(Event.merged_into_id.is_(None), Event.reported_at >= mass_from)
        )
        assert len(recent) > 100 and (recent["title"] == "路面垃圾").any()
        # What a judgement reads (decision 0038): fewer reports, and every one counted per grid × matter.
        served_reports, matters, totals = analytics.warning_reports(conn, scope, start, end, mass_from)
        assert len(served_reports) < len(recent)
        counted = recent[recent["merged_into_id"].isna() & recent["lon"].notna() & recent["lat"].notna()]
        assert totals["count"].sum() == len(counted)
        by_matter = counted.groupby(["category", "title"], observed=True).size()
        assert len(matters) > 0 and all(
            by_matter[(c, t)] == n
            for (c, t), n in matters.groupby(["category", "title"])["count"].sum().items()
        )
        assert set(served_reports["id"]) <= set(recent["id"])

        def plain(frame):
            return frame.astype(object).sort_values("id").reset_index(drop=True)

        pd.testing.assert_frame_equal(plain(recent), plain(raw))


def grid_centre_of(engine, grid: int) -> tuple[float, float]:
    with engine.connect() as conn:
        return conn.execute(
            select(func.avg(Event.lon), func.avg(Event.lat)).where(
                Event.grid_id == grid, Event.lon.is_not(None)
            )
        ).one()


def test_the_reports_kept_around_possible_seeds_are_every_one_within_their_radius():
    """Decision 0039's cut of what 预警 reads (``analytics.cells_within`` in SQL, ``early_warning.near_any``
    in Python): every place within 51 m (on the sphere, as ``near`` counts) of a possible seed is kept and
    its cell read, none farther than a few centimetres beyond; brute force over dense random places."""
    import numpy as np

    from domain.early_warning import near_any, place_cells

    rng = np.random.default_rng(7)
    lon = 118.87 + rng.uniform(-0.004, 0.004, 3000)
    lat = 28.94 + rng.uniform(-0.004, 0.004, 3000)
    lon[:5], lat[:5] = np.nan, np.nan  # no place: never kept
    seeds = rng.choice(np.arange(5, 3000), 40, replace=False)
    s_lon, s_lat = lon[seeds] + rng.normal(0, 0.0003, 40), lat[seeds] + rng.normal(0, 0.0003, 40)
    p1, p2 = np.radians(lat)[:, None], np.radians(s_lat)[None, :]
    dl = np.radians(s_lon[None, :] - lon[:, None])
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    dist = np.min(2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1))), axis=1)
    dist[np.isnan(dist)] = np.inf
    kept = near_any(lon, lat, s_lon, s_lat, rollups.NEAR_M)
    assert not kept[:5].any()
    assert kept[dist <= rollups.NEAR_M - 0.05].all()
    assert not kept[dist > rollups.NEAR_M + 0.05].any()
    assert 0 < kept.sum() < len(kept) - 5  # the cut cuts
    cells = analytics.cells_within(s_lon, s_lat, rollups.NEAR_M)
    near = dist <= rollups.NEAR_M
    assert set(place_cells(lon[near], lat[near]).tolist()) <= cells
    # Fewer cells than the nine around each seed's cell that decision 0038 read.
    from domain.early_warning import cells_around

    assert len(cells) < len(cells_around(place_cells(s_lon, s_lat).tolist(), 1))


def test_a_writer_that_commits_after_a_refresh_moved_past_its_ids_is_folded_in_by_the_next(area):
    """PostgreSQL draws ids before commits: a transaction that wrote a transition, then stayed open while
    other writers committed more than OVERLAP (500) larger ids and a refresh moved the watermark past them
    all, was never read (an import of hotline work orders while reports came in). The refresh keeps the
    writers open in its snapshot and the next one re-reads from their ids (decision 0064)."""
    engine, uow, ids, _dept = area
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: its ids commit in order")
    now = DAY0 + timedelta(days=7)
    rollups.rebuild(uow, now)
    event = ids[20]
    with engine.connect() as late:
        # the writer: an event rejected and its transition, its transaction left open (no trail head yet)
        late.execute(update(Event).where(Event.id == event).values(status=EventStatus.REJECTED))
        seq = late.execute(
            select(func.max(EventTransition.seq)).where(EventTransition.event_id == event)
        ).scalar_one()
        late.execute(
            insert(EventTransition).values(
                event_id=event,
                seq=seq + 1,
                at=now,
                action=Action.REJECT.value,
                from_status=EventStatus.REPORTED,
                to_status=EventStatus.REJECTED,
                actor_role="system",
                note="无效上报",
            )
        )
        with engine.connect() as other:  # meanwhile others draw 1,000 ids and commit
            other.execute(
                text("SELECT setval(pg_get_serial_sequence('event_transitions', 'id'), 1000, true)")
            )
            other.commit()
        _report(uow, 2, DAY0 + timedelta(days=6, hours=3))
        assert rollups.refresh(uow, now) > 0  # past every id, the writer's too, which it cannot see yet
        late.commit()
    assert _differences(engine)  # the writer's change is not in the rollup yet
    assert rollups.refresh(uow, now + timedelta(minutes=1)) > 0
    assert _differences(engine) == []
    assert rollups.refresh(uow, now + timedelta(minutes=2)) == 0  # nothing left open: settled
