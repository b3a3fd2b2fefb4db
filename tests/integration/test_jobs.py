"""The jobs runner on a store made without the demo or the simulator: each job does its work, runs are
recorded and claimed (one runner per due item, threads or processes), a gap is caught up once, and a
failing job records its error without stopping the others."""

import io
import os
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from datetime import time as clock_time

import openpyxl
import pytest
from sqlalchemy import func, insert, select

from db.engine import ROOT
from db.models import (
    AuditCheck,
    AuditLog,
    DailyAlert,
    Department,
    Event,
    EventReminder,
    EventTransition,
    JobRun,
)
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.early_warning import AlertKind
from domain.event_flow import Action
from domain.hierarchy import ancestor_table
from domain.schedule import Daily, Every
from domain.vocabulary import EventCategory, EventSource, EventStatus, Role, Urgency
from services import clock
from services.access import OutOfScope, Scope
from services.audit_checks import latest_check
from services.daily_alerts import stored_alerts
from services.events import ConcurrentChange, act, overdue_escalations, report_event
from services.geography import tree as store_tree
from services.jobs import JOBS, MAX_ATTEMPTS, Done, Job, allow_retry, attention, last_runs, run_due
from services.locate import forget_index
from services.reminders import reminders
from services.scheduled_reports import list_reports, read_report
from tests.builders import grid_centre, make_square_area
from tests.integration.test_audit import _tamper

# Long enough ago that an urgent event's handling deadline has passed by now, whatever the rules' hours.
STARTED = clock.now().replace(microsecond=0) - timedelta(days=10)
#: A fixed moment for the whole-registry tests: Wednesday 2026-11-25, 09:00 China time.
NOW = datetime(2026, 11, 25, 9, 0)
ALL = {j.name for j in JOBS}


@pytest.fixture
def area(empty_engine):
    """A store made from a boundary-like area and nothing else: no demo, no simulator."""
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    return empty_engine, ids


def _report(engine, at: datetime, grid: int = 0, urgency=Urgency.URGENT, title="占道经营") -> int:
    return report_event(
        UnitOfWork(engine),
        source=EventSource.HOTLINE_12345,
        category=EventCategory.URBAN,
        title=title,
        lon=grid_centre(grid)[0],
        lat=grid_centre(grid)[1],
        now=at,
        urgency=urgency,
    ).id


def _being_handled(
    engine, n: int = 1, grid: int = 0, started: datetime = STARTED, department: int | None = None
) -> list[int]:
    """``n`` urgent events accepted, dispatched (to ``department``) and started at ``started``."""
    ids = []
    for _ in range(n):
        eid = _report(engine, started, grid)
        act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=started)
        act(UnitOfWork(engine), event_id=eid, action=Action.DISPATCH, now=started, department_id=department)
        act(UnitOfWork(engine), event_id=eid, action=Action.START, now=started)
        ids.append(eid)
    return ids


def _escalations(engine, ids) -> dict[int, tuple[int, int]]:
    """Per event: its escalation count and its 上移 trail rows."""
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Event.id, Event.escalations).where(Event.id.in_(ids))).all())
        rows = dict(
            conn.execute(
                select(EventTransition.event_id, func.count())
                .where(EventTransition.event_id.in_(ids), EventTransition.action == Action.ESCALATE.value)
                .group_by(EventTransition.event_id)
            ).all()
        )
    return {i: (counts[i], rows.get(i, 0)) for i in ids}


def _runs(engine, job: str | None = None) -> list:
    with engine.connect() as conn:
        q = select(JobRun).order_by(JobRun.job, JobRun.due_at)
        if job is not None:
            q = q.where(JobRun.job == job)
        return list(conn.execute(q).all())


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def _user(ids, role=Role.TOWNSHIP_LEADER, unit="990001001", department_id=None) -> CurrentUser:
    return CurrentUser(7, "u", "某人", role, ids[unit], department_id)


# ---------------------------------------------------------------------------------------------
# (a) escalation: its guarantees hold inside the registry
# ---------------------------------------------------------------------------------------------


def test_an_overdue_event_moves_up_when_the_jobs_run_on_a_store_without_the_simulator(area):
    engine, ids = area
    (eid,) = _being_handled(engine)
    run = run_due(UnitOfWork(engine), clock.now(), only=("escalate",))["escalate"]
    assert (run.outcome, run.count) == ("ok", 1)
    with engine.connect() as conn:
        status, owner = conn.execute(select(Event.status, Event.owner_unit_id).where(Event.id == eid)).one()
        note, role = conn.execute(
            select(EventTransition.note, EventTransition.actor_role)
            .where(EventTransition.event_id == eid)
            .order_by(EventTransition.seq.desc())
            .limit(1)
        ).one()
        audited = conn.execute(select(AuditLog.action).order_by(AuditLog.id.desc()).limit(1)).scalar_one()
    assert status == EventStatus.ACCEPTED and owner == ids["990001001"]  # the village's township
    assert "自动上移" in note and role == "system"
    assert audited == "event.escalate"


def test_running_the_jobs_twice_moves_each_due_event_once(area):
    engine, _ = area
    ids = _being_handled(engine, 3)
    uow, now = UnitOfWork(engine), clock.now()
    assert run_due(uow, now, only=("escalate",))["escalate"].count == 3
    assert run_due(uow, now, only=("escalate",)) == {}  # the same minute: already done
    assert run_due(uow, now + timedelta(minutes=1), only=("escalate",))["escalate"].count == 0
    assert _escalations(engine, ids) == {i: (1, 1) for i in ids}


def test_two_runners_at_once_move_each_due_event_exactly_once(area):
    engine, _ = area
    ids = _being_handled(engine, 6)
    now = clock.now()
    barrier, results, errors = threading.Barrier(2), [], []

    def runner():
        try:
            barrier.wait()
            run = run_due(UnitOfWork(engine), now, only=("escalate",)).get("escalate")
            results.append(0 if run is None else run.count)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == [0, 6]  # one runner held the minute, the other skipped it
    assert _escalations(engine, ids) == {i: (1, 1) for i in ids}
    with engine.connect() as conn:
        moved = conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "event.escalate")
        ).scalar_one()
    assert moved == 6


def test_a_runner_that_read_an_event_before_it_moved_and_came_back_does_not_move_it_again(area):
    """Compare-and-set on the status and the deadline: the same status with a new deadline is not the
    missed deadline the runner read."""
    engine, _ = area
    (eid,) = _being_handled(engine)
    now = clock.now()
    with engine.connect() as conn:
        (stale,) = overdue_escalations(conn, now)
    assert run_due(UnitOfWork(engine), now, only=("escalate",))["escalate"].count == 1
    for action in (Action.DISPATCH, Action.START):  # dispatched again at the township, being handled
        act(UnitOfWork(engine), event_id=eid, action=action, now=STARTED + timedelta(days=1))
    _, status, due_at, reason = stale
    assert status == EventStatus.IN_PROGRESS  # the same status as now, but not the same deadline
    with pytest.raises(ConcurrentChange):
        act(
            UnitOfWork(engine),
            event_id=eid,
            action=Action.ESCALATE,
            now=now,
            note=reason,
            expected=status,
            expected_due_at=due_at,
        )
    assert _escalations(engine, [eid]) == {eid: (1, 1)}


def test_overdue_events_that_may_not_move_up_do_not_hold_back_those_behind_them(area):
    """Events being handled at the county (the rules' top level: 矛盾不上交) stay overdue and are never
    moved up; the sweep read the most overdue ``limit`` events and judged only those, so once that many
    sat at the top, an event late in its village waited for ever, every minute."""
    engine, ids = area
    at_top = []
    for _ in range(3):
        eid = _report(engine, STARTED)
        act(UnitOfWork(engine), event_id=eid, action=Action.ACCEPT, now=STARTED)
        for _ in range(2):  # village → township → county
            act(UnitOfWork(engine), event_id=eid, action=Action.ESCALATE, now=STARTED, note="村镇无法解决")
        for action in (Action.DISPATCH, Action.START):
            act(UnitOfWork(engine), event_id=eid, action=action, now=STARTED)
        at_top.append(eid)
    (late,) = _being_handled(engine, started=STARTED + timedelta(days=1))
    run = run_due(UnitOfWork(engine), clock.now(), only=("escalate",), limit=2)["escalate"]
    assert (run.outcome, run.count) == ("ok", 1)
    assert _escalations(engine, [late, *at_top]) == {late: (1, 1)} | {i: (2, 2) for i in at_top}
    with engine.connect() as conn:
        owner = conn.execute(select(Event.owner_unit_id).where(Event.id == late)).scalar_one()
    assert owner == ids["990001001"]


# ---------------------------------------------------------------------------------------------
# (b) 督办 reminders
# ---------------------------------------------------------------------------------------------


def test_events_near_or_past_their_deadline_get_one_reminder_per_stage_deadline(area):
    engine, _ = area
    (late,) = _being_handled(engine, started=NOW - timedelta(days=2))  # urgent: 24 h to handle, long past
    near = _report(engine, NOW - timedelta(hours=1, minutes=50), urgency=Urgency.NORMAL)  # 2 h to accept
    fresh = _report(engine, NOW - timedelta(minutes=10), urgency=Urgency.NORMAL)  # not near yet
    uow = UnitOfWork(engine)
    assert run_due(uow, NOW, only=("remind",))["remind"].count == 2
    assert run_due(uow, NOW + timedelta(minutes=5), only=("remind",))["remind"].count == 0  # once each
    with engine.connect() as conn:
        stored = {r.event_id: r for r in conn.execute(select(EventReminder)).all()}
        trail = (
            conn.execute(select(AuditLog.action).where(AuditLog.entity == "event_reminders")).scalars().all()
        )
    assert set(stored) == {late, near}
    assert stored[late].kind == "late" and stored[late].message.startswith("处置超期1天")
    assert stored[near].kind == "near" and "受理即将超时" in stored[near].message
    assert trail == ["reminder.raise"]  # one trail row for the pass that raised them
    # Accepted: a new stage with a new deadline (4 h to dispatch) is reminded of again when near.
    act(UnitOfWork(engine), event_id=near, action=Action.ACCEPT, now=NOW + timedelta(minutes=6))
    assert run_due(uow, NOW + timedelta(minutes=10), only=("remind",))["remind"].count == 0
    # 3 h 20 min on: the dispatch deadline (accepted + 4 h) is within its last 48 minutes; the fresh
    # report's acceptance deadline has passed.
    assert run_due(uow, NOW + timedelta(hours=3, minutes=20), only=("remind",))["remind"].count == 2
    with engine.connect() as conn:
        per_event = dict(
            conn.execute(select(EventReminder.event_id, func.count()).group_by(EventReminder.event_id)).all()
        )
    assert per_event == {late: 1, near: 2, fresh: 1}


def test_the_reminders_list_shows_the_open_reminders_of_the_users_scope_only(area):
    engine, ids = area
    with engine.begin() as conn:
        lead = conn.execute(select(Department.id).where(Department.code == "D-CG")).scalar_one()
        other = conn.execute(
            insert(Department).returning(Department.id),
            {"code": "D-GA", "name": "方城派出所", "kind": "公安", "unit_id": ids["990001001"]},
        ).scalar_one()
    (late,) = _being_handled(engine, started=NOW - timedelta(days=2), department=lead)
    run_due(UnitOfWork(engine), NOW, only=("remind",))
    with engine.connect() as conn:
        grids = tuple(store_tree(conn).grids_under(ids["990001001"]))
        leader = reminders(conn, Scope(grids), NOW)
        handler = reminders(conn, Scope(grids, lead), NOW)
        stranger = reminders(conn, Scope(grids, other), NOW)
        west = reminders(conn, Scope(tuple(store_tree(conn).grids_under(ids["990001001002"]))), NOW)
    assert list(leader["event_id"]) == [late] and list(handler["event_id"]) == [late]
    assert leader.iloc[0]["late"].startswith("超期") and leader.iloc[0]["stage_label"] == "处置"
    assert leader.iloc[0]["department"] == "方城街道综合执法中队"
    assert stranger.empty and west.empty  # another department; the other village
    act(UnitOfWork(engine), event_id=late, action=Action.RESOLVE, now=NOW, note="已清理")
    with engine.connect() as conn:
        assert reminders(conn, Scope(grids), NOW).empty  # resolved: that deadline no longer runs


# ---------------------------------------------------------------------------------------------
# (c) the daily early-warning pass
# ---------------------------------------------------------------------------------------------


def test_the_daily_pass_stores_the_days_alerts_once_and_pages_read_them_by_scope(area):
    engine, ids = area
    day = NOW.date() - timedelta(days=1)
    for k in range(5):  # five reports of one matter within 50 m and an hour: 群发
        _report(
            engine, datetime.combine(day, clock_time(10, 8 * k)), urgency=Urgency.NORMAL, title="噪声扰民"
        )
    uow = UnitOfWork(engine)
    with engine.connect() as conn:
        tree = store_tree(conn)
        assert stored_alerts(conn, tree, ids["990000"], day) is None  # not judged yet
    run = run_due(uow, NOW, only=("warnings",))["warnings"]
    assert run.outcome == "ok" and run.count >= 1 and str(day) in run.summary
    with engine.connect() as conn:
        everything = stored_alerts(conn, tree, ids["990000"], day)
        east = stored_alerts(conn, tree, ids["990001001001"], day)
        west = stored_alerts(conn, tree, ids["990001001002"], day)
    assert everything is not None and len(everything) == run.count
    mass = [a for a in everything if a.kind is AlertKind.MASS]
    assert len(mass) == 1 and mass[0].unit_id == ids["990001001001001"] and "5人反映" in mass[0].message
    assert mass[0] in east and west == []
    # The same day judged again (a retried run) replaces the day's rows: never twice as many.
    from services.daily_warnings import store_daily_alerts

    assert store_daily_alerts(uow, day, NOW) == run.count
    assert _count(engine, DailyAlert) == run.count


def _same_alerts(a, b) -> bool:
    """Alerts equal as the store keeps them (evidence through JSON, as the daily pass writes it)."""
    import json

    def plain(alerts):
        return [json.loads(json.dumps(x.to_dict(), ensure_ascii=False, default=str)) for x in alerts]

    return plain(a) == plain(b)


def test_the_intraday_judgement_keeps_today_for_a_report_ending_today_and_follows_new_reports(area):
    """Decision 0039: the runner's ``warnings_today`` judges today over the whole store and keeps the
    alerts with the time; a 月报 ending today reads them and says when they were judged; the 预警 tab's
    on-the-spot judgement still sees a report filed after it; no transition since: not judged again; a
    new one: judged again at the next run; the nightly pass's rows then stand."""
    from services.analytics import report_workbook, warnings
    from services.daily_alerts import intraday_alerts
    from services.daily_warnings import store_intraday_alerts
    from services.overview import unit_table

    engine, ids = area
    day = NOW.date()
    for k in range(5):  # five reports of one matter within 50 m and an hour this morning: 群发
        _report(engine, datetime.combine(day, clock_time(7, 8 * k)), urgency=Urgency.NORMAL, title="噪声扰民")
    uow = UnitOfWork(engine)
    run = run_due(uow, NOW, only=("warnings_today",))["warnings_today"]
    assert run.outcome == "ok" and run.count >= 1
    root, township = ids["990000"], ids["990001001"]

    def read(unit=root):
        with engine.connect() as conn:
            tree = store_tree(conn)
            units = unit_table(conn).set_index("id")
            whole = warnings(conn, Scope(tuple(tree.grids_under(None))), day, units)
            here = warnings(conn, Scope(tuple(tree.grids_under(township))), day, units)
            return whole, here, intraday_alerts(conn, tree, unit, day), stored_alerts(conn, tree, unit, day)

    whole, _here, (kept, at), nightly = read()
    assert at == NOW and nightly is None  # the 预警 tab still judges today on the spot
    assert len(kept) == run.count and _same_alerts(kept, whole)
    assert any(a.kind is AlertKind.MASS and "5人反映" in a.message for a in kept)

    def book(unit: int) -> openpyxl.Workbook:
        with engine.connect() as conn:
            tree = store_tree(conn)
            units = unit_table(conn).set_index("id")
            anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
            data = report_workbook(
                conn,
                Scope(tuple(tree.grids_under(unit))),
                kind="月报",
                day=day,
                units=units,
                anc=anc,
                scope_unit_id=unit,
            )
        return openpyxl.load_workbook(io.BytesIO(data))

    wb = book(township)
    overview = {r[0]: r[1] for r in wb["概况"].iter_rows(values_only=True) if r[0]}
    assert overview["预警研判时间"].startswith("2026-11-25 09:00（当日预警研判")
    messages = [r[4] for r in wb["预警"].iter_rows(values_only=True)]
    assert any(m and "5人反映" in m for m in messages)

    # Nothing changed: not judged again (the time stays that of the judgement).
    again = run_due(uow, NOW + timedelta(minutes=10), only=("warnings_today",))["warnings_today"]
    assert again.outcome == "ok" and again.count == 0
    assert read()[2][1] == NOW

    # A sixth report: the kept judgement says five until the next run; the on-the-spot one says six.
    _report(engine, NOW + timedelta(minutes=12), urgency=Urgency.NORMAL, title="噪声扰民")
    whole, here, (kept, at), _ = read()
    assert at == NOW and any("5人反映" in a.message for a in kept) and not _same_alerts(kept, whole)
    assert any(a.kind is AlertKind.MASS and "6人反映" in a.message for a in here)
    run_due(uow, NOW + timedelta(minutes=20), only=("warnings_today",))
    whole, _here, (kept, at), _ = read()
    assert at == NOW + timedelta(minutes=20) and _same_alerts(kept, whole)
    assert any("6人反映" in a.message for a in kept)

    # The nightly pass judges the whole day: its rows stand, and a late intraday run leaves them.
    nightly_run = run_due(
        uow, datetime.combine(day + timedelta(days=1), clock_time(0, 40)), only=("warnings",)
    )
    assert nightly_run["warnings"].outcome == "ok"
    _report(
        engine, datetime.combine(day, clock_time(23, 50)), grid=2, urgency=Urgency.NORMAL, title="路灯不亮"
    )
    assert store_intraday_alerts(uow, datetime.combine(day, clock_time(23, 55))) is None
    _whole, _here, intraday, nightly = read()
    assert intraday is None and nightly is not None and _same_alerts(nightly, kept)
    overview = {r[0]: r[1] for r in book(township)["概况"].iter_rows(values_only=True) if r[0]}
    assert "每日预警研判" in overview["预警研判时间"]


# ---------------------------------------------------------------------------------------------
# (d) scheduled reports
# ---------------------------------------------------------------------------------------------


def test_the_daily_report_is_written_for_each_leaders_unit_and_listed_and_read_by_scope(area, tmp_path):
    engine, ids = area
    _report(engine, NOW - timedelta(days=1), urgency=Urgency.NORMAL)
    run = run_due(UnitOfWork(engine), NOW, only=("report_daily",), reports=tmp_path)["report_daily"]
    assert (run.outcome, run.count) == ("ok", 3)  # the city, the county, the township
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"daily_2026-11-24_2026-11-24_{c}.xlsx" for c in ("990000", "990001", "990001001")]
    with engine.connect() as conn:
        tree = store_tree(conn)
    township = list_reports(tree, ids["990001001"], tmp_path)
    assert [(r.kind, r.period_label, r.unit_name) for r in township] == [("日报", "2026-11-24", "方城街道")]
    assert township[0].size_bytes > 0 and township[0].download_name == "方城街道日报_2026-11-24.xlsx"
    assert len(list_reports(tree, ids["990000"], tmp_path)) == 3
    leader = _user(ids)
    book = openpyxl.load_workbook(io.BytesIO(read_report(tree, leader, township[0].name, tmp_path)))
    assert book.sheetnames == ["概况", "各区域", "各部门", "预警"]
    overview = {r[0]: r[1] for r in book["概况"].iter_rows(min_row=2, values_only=True)}
    assert overview["统计时段"] == "2026-11-24 至 2026-11-24" and overview["事件数"] == 1
    with pytest.raises(OutOfScope):
        read_report(tree, leader, "daily_2026-11-24_2026-11-24_990001.xlsx", tmp_path)  # the county's
    with pytest.raises(LookupError):
        read_report(tree, leader, "../daily_2026-11-24_2026-11-24_990001001.xlsx", tmp_path)


def test_a_report_that_could_not_be_written_leaves_no_hidden_half_file(area, tmp_path, monkeypatch):
    """A full disk: the run fails (and is retried), and no .tmp file is left for every try."""
    from pathlib import Path

    engine, _ = area
    real = Path.write_bytes

    def full(self, data):
        real(self, data[: len(data) // 2])  # half of it reached the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    run = run_due(UnitOfWork(engine), NOW, only=("report_daily",), reports=tmp_path)["report_daily"]
    assert run.outcome == "failed" and "No space left" in run.error
    assert list(tmp_path.iterdir()) == []


def test_the_weekly_report_covers_monday_to_sunday_and_the_monthly_the_calendar_month(area, tmp_path):
    engine, _ = area
    uow = UnitOfWork(engine)
    run_due(uow, NOW, only=("report_weekly",), reports=tmp_path)  # due Monday 11-23
    run_due(uow, NOW, only=("report_monthly",), reports=tmp_path)  # due 11-01
    names = {p.name.rsplit("_", 1)[0] for p in tmp_path.iterdir()}
    assert names == {"weekly_2026-11-16_2026-11-22", "monthly_2026-10-01_2026-10-31"}


# ---------------------------------------------------------------------------------------------
# (e) the nightly audit-chain verification
# ---------------------------------------------------------------------------------------------


def test_the_nightly_check_records_a_whole_chain_and_then_the_first_broken_row(area):
    engine, _ = area
    _being_handled(engine, 2, started=NOW - timedelta(days=1))
    rows = _count(engine, AuditLog)
    uow = UnitOfWork(engine)
    with engine.connect() as conn:
        assert latest_check(conn) is None
    run = run_due(uow, NOW, only=("audit_verify",))["audit_verify"]
    assert (run.outcome, run.count) == ("ok", rows)
    with engine.connect() as conn:
        first = latest_check(conn)
        trail = conn.execute(select(AuditLog.action).order_by(AuditLog.id.desc()).limit(1)).scalar_one()
    assert first is not None and first.ok and first.rows_checked == rows
    assert first.line() == f"审计链校验（2026-11-25 09:00）：完整，共 {rows} 条记录"
    assert trail == "audit.verify"
    _tamper(engine, "UPDATE audit_log SET reason = :r WHERE id = 3", {"r": "改过"})
    run_due(uow, NOW + timedelta(days=1), only=("audit_verify",))
    with engine.connect() as conn:
        second = latest_check(conn)
    assert second is not None and not second.ok and second.broken_id == 3 and second.rows_checked == 2
    assert "第 3 条" in second.line() and "内容与哈希不符" in second.line()
    assert _count(engine, AuditCheck) == 2


# ---------------------------------------------------------------------------------------------
# The runner: catch-up, claims, failures, the command line
# ---------------------------------------------------------------------------------------------


def test_after_a_gap_each_job_is_caught_up_once_for_its_latest_due_moment(area, tmp_path):
    engine, _ = area
    uow = UnitOfWork(engine)
    first = run_due(uow, NOW, reports=tmp_path)
    assert set(first) == ALL and all(r.outcome == "ok" for r in first.values())
    later = NOW + timedelta(days=3, hours=2)  # down from Wednesday 09:00 to Saturday 11:00
    again = run_due(uow, later, reports=tmp_path)
    # Weekly and monthly were not due again (the weekly forecast training neither: Sunday 02:30); every
    # other job runs once, for its latest moment.
    assert set(again) == ALL - {"report_weekly", "report_monthly", "forecast_train"}
    assert again["report_daily"].due_at == datetime(2026, 11, 28, 1, 0)
    assert again["escalate"].due_at == later
    assert [r.due_at for r in _runs(engine, "report_daily")] == [
        datetime(2026, 11, 25, 1),
        datetime(2026, 11, 28, 1),
    ]
    assert len(_runs(engine, "escalate")) == 2  # not one per missed minute
    assert sorted(p.name.split("_")[1] for p in tmp_path.glob("daily_*990000.xlsx")) == [
        "2026-11-24",
        "2026-11-27",
    ]


def test_two_runner_threads_at_once_do_each_due_item_once(area, tmp_path):
    engine, _ = area
    ids = _being_handled(engine, 4, started=NOW - timedelta(days=3))
    # Ordinary matters late for acceptance: reminded, never moved up (the urgent ones above may be moved
    # up before or after the other runner's reminder pass reads them, so their reminders depend on timing).
    late = [_report(engine, NOW - timedelta(hours=5), urgency=Urgency.NORMAL) for _ in range(2)]
    barrier, results, errors = threading.Barrier(2), [], []

    def runner():
        try:
            barrier.wait()
            results.append(run_due(UnitOfWork(engine), NOW, reports=tmp_path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    a, b = results
    assert set(a) | set(b) == ALL and not set(a) & set(b)  # every item done, by one runner each
    runs = _runs(engine)
    assert len(runs) == len(JOBS) and all(r.outcome == "ok" and r.attempts == 1 for r in runs)
    assert _escalations(engine, ids) == {i: (1, 1) for i in ids}
    assert _count(engine, AuditCheck) == 1
    with engine.connect() as conn:
        reminded = conn.execute(
            select(EventReminder.event_id, func.count()).group_by(EventReminder.event_id)
        ).all()
    assert {e: n for e, n in reminded if e in late} == dict.fromkeys(late, 1)
    assert all(n == 1 for _, n in reminded)


RUNNER = """
import os, sys, time
from datetime import datetime
from db.engine import make_engine
from db.uow import UnitOfWork
from services.jobs import run_due
engine = make_engine()
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
for run in run_due(UnitOfWork(engine), datetime.fromisoformat(sys.argv[2])).values():
    print(run.job, run.outcome, flush=True)
"""


def test_two_runner_processes_at_once_do_each_due_item_once(area, tmp_path):
    engine, _ = area
    ids = _being_handled(engine, 4, started=NOW - timedelta(days=3))
    go = tmp_path / "go"
    env = os.environ | {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "REPORTS_DIR": str(tmp_path / "reports"),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(go), NOW.isoformat()],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:  # both imported and connected: let them go at the same moment
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outputs.append({line.split()[0] for line in out.splitlines()})
    assert outputs[0] | outputs[1] == ALL and not outputs[0] & outputs[1]
    runs = _runs(engine)
    assert len(runs) == len(JOBS) and all(r.outcome == "ok" for r in runs)
    assert _escalations(engine, ids) == {i: (1, 1) for i in ids}
    assert _count(engine, AuditCheck) == 1


def _jobs_with_a_failure(calls: list[str]) -> tuple[Job, ...]:
    def fine(name):
        def work(ctx):
            calls.append(name)
            return Done(1, f"{name} 完成")

        return work

    def boom(ctx):
        calls.append("boom")
        raise RuntimeError("报表目录不可写：13812345678")

    return (
        Job("first", "第一个", Daily(clock_time(1, 0)), fine("first")),
        Job("boom", "会失败的", Daily(clock_time(1, 0)), boom),
        Job("last", "最后一个", Every(5), fine("last")),
    )


def test_a_failing_job_records_its_error_and_the_others_still_run(area):
    engine, _ = area
    calls: list[str] = []
    jobs = _jobs_with_a_failure(calls)
    done = run_due(UnitOfWork(engine), NOW, jobs=jobs)
    assert calls == ["first", "boom", "last"]
    assert {k: r.outcome for k, r in done.items()} == {"first": "ok", "boom": "failed", "last": "ok"}
    (failed,) = _runs(engine, "boom")
    assert failed.outcome == "failed" and failed.finished_at is not None and failed.count is None
    assert "RuntimeError: 报表目录不可写" in failed.error and "13812345678" not in failed.error  # masked
    (ok,) = _runs(engine, "first")
    assert (ok.outcome, ok.count, ok.summary) == ("ok", 1, "first 完成")


def test_a_runner_that_loses_its_lease_mid_pass_stops_and_leaves_the_rest_to_the_leader(area):
    engine, _ = area
    calls: list[str] = []
    jobs = _jobs_with_a_failure(calls)
    asked = iter([True, False])  # the lease answers before each job: held, then lost
    done = run_due(UnitOfWork(engine), NOW, jobs=jobs, leading=lambda: next(asked, False))
    assert calls == ["first"] and set(done) == {"first"}
    assert [r.job for r in _runs(engine)] == ["first"]  # nothing claimed past the loss
    run_due(UnitOfWork(engine), NOW, jobs=jobs, leading=lambda: True)  # the new leader, the same minute
    assert calls == ["first", "boom", "last"]  # the rest, and not the first again


def test_a_runner_told_to_stop_mid_pass_finishes_the_job_under_way_and_leaves_the_rest(area):
    """SIGTERM/Ctrl-C set run_forever's flag: the pass used to go on through every due job (minutes on a
    new store) before the runner exited."""
    engine, _ = area
    calls: list[str] = []
    jobs = _jobs_with_a_failure(calls)
    done = run_due(UnitOfWork(engine), NOW, jobs=jobs, stopping=lambda: bool(calls))  # told during "first"
    assert calls == ["first"] and set(done) == {"first"}
    assert [r.job for r in _runs(engine)] == ["first"]
    run_due(UnitOfWork(engine), NOW, jobs=jobs)  # the next runner's pass does the rest
    assert calls == ["first", "boom", "last"]


def test_a_failed_run_is_taken_again_after_ten_minutes_at_most_three_times(area):
    engine, _ = area
    calls: list[str] = []
    jobs = _jobs_with_a_failure(calls)
    uow = UnitOfWork(engine)
    for minutes in (0, 5, 11, 15, 22, 40, 60):
        run_due(uow, NOW + timedelta(minutes=minutes), jobs=jobs, only=("boom",))
    assert calls.count("boom") == MAX_ATTEMPTS  # at 0, 11 and 22 minutes; not before 10, not a fourth
    (failed,) = _runs(engine, "boom")
    assert failed.attempts == MAX_ATTEMPTS and failed.outcome == "failed"


def test_an_administrator_is_told_when_the_runner_stopped_or_a_job_keeps_failing_and_what_to_do(area):
    """/admin's warnings (services.jobs.attention): nothing run yet; a job failing on a full disk, first
    with its retry, then stopped with the command that takes it again; the runner silent for an hour."""
    engine, _ = area
    jobs = _jobs_with_a_failure([])
    with engine.connect() as conn:
        (never,) = attention(conn, NOW, jobs)
    assert never.startswith("定时任务从未运行") and "make jobs" in never

    def full_disk(ctx):
        raise OSError(28, "No space left on device")

    jobs = (*jobs[:1], Job("boom", "日报", Daily(clock_time(1, 0)), full_disk), *jobs[2:])
    uow = UnitOfWork(engine)
    run_due(uow, NOW, jobs=jobs)
    with engine.connect() as conn:
        (failed,) = attention(conn, NOW, jobs)
    assert failed.startswith("日报（应于 2026-11-25 01:00 运行）失败 1 次，10 分钟后自动重试")
    assert "磁盘已满" in failed and "Errno" not in failed
    for minutes in (11, 22):
        run_due(uow, NOW + timedelta(minutes=minutes), jobs=jobs)
    later = NOW + timedelta(minutes=23)
    with engine.connect() as conn:
        (stopped,) = attention(conn, later, jobs)
    assert "失败 3 次，已停止重试" in stopped and "--once --retry --only boom" in stopped
    assert allow_retry(uow, ["boom"], later) == 1
    assert run_due(uow, later, jobs=jobs, only=("boom",))["boom"].outcome == "failed"  # taken again
    with engine.connect() as conn:
        lines = attention(conn, later + timedelta(hours=1), jobs)
    assert lines[0].startswith("定时任务已 59 分钟未运行") and len(lines) == 2  # ended 09:23:00.xxx


def test_a_run_left_running_by_a_dead_runner_is_taken_again_after_two_hours(area):
    engine, _ = area
    calls: list[str] = []
    jobs = _jobs_with_a_failure(calls)
    due = datetime(2026, 11, 25, 1, 0)
    with engine.begin() as conn:
        conn.execute(
            insert(JobRun),
            {"job": "first", "due_at": due, "started_at": due, "outcome": "running", "runner": "gone:1"},
        )
    uow = UnitOfWork(engine)
    assert run_due(uow, due + timedelta(hours=1), jobs=jobs, only=("first",)) == {}
    assert run_due(uow, due + timedelta(hours=2), jobs=jobs, only=("first",))["first"].outcome == "ok"
    (run,) = _runs(engine, "first")
    assert (run.outcome, run.attempts) == ("ok", 2)


def test_a_run_that_kept_its_runner_from_finishing_is_not_retaken_for_ever(area):
    """A job that gets its runner killed (out of memory on a city's 月报) was retaken every two hours all
    day; after MAX_ATTEMPTS the administrator is told, and --retry gives it one more go."""
    engine, _ = area
    jobs = _jobs_with_a_failure([])
    due = datetime(2026, 11, 25, 1, 0)
    with engine.begin() as conn:
        conn.execute(
            insert(JobRun),
            {
                "job": "first",
                "due_at": due,
                "started_at": due,
                "outcome": "running",
                "runner": "gone:1",
                "attempts": MAX_ATTEMPTS,
            },
        )
    uow = UnitOfWork(engine)
    later = due + timedelta(hours=5)
    assert run_due(uow, later, jobs=jobs, only=("first",)) == {}
    with engine.connect() as conn:
        told = [line for line in attention(conn, later, jobs) if line.startswith("第一个")]
    assert told and f"已中断 {MAX_ATTEMPTS} 次，不再自动重做" in told[0] and "--retry --only first" in told[0]
    assert allow_retry(uow, ["first"], later) == 1
    assert run_due(uow, later, jobs=jobs, only=("first",))["first"].outcome == "ok"


def test_the_end_of_a_run_is_written_again_when_the_store_was_busy_at_that_moment(area, monkeypatch):
    """The store busy for a moment as the 日报 finished left its run "running", redone two hours later."""
    from services import jobs as jobs_module

    engine, _ = area
    real, tries = jobs_module._finish, []

    def busy_twice(*args, **kw):
        tries.append(1)
        if len(tries) <= 2:
            raise RuntimeError("database is locked")
        return real(*args, **kw)

    monkeypatch.setattr(jobs_module, "_finish", busy_twice)
    monkeypatch.setattr(jobs_module, "FINISH_PAUSE_S", 0.0)
    done = run_due(UnitOfWork(engine), NOW, jobs=_jobs_with_a_failure([]), only=("first",))
    assert done["first"].outcome == "ok" and len(tries) == 3
    (run,) = _runs(engine, "first")
    assert run.outcome == "ok"


def test_the_command_line_runner_does_one_pass_against_the_configured_store(area, tmp_path):
    engine, _ = area
    ids = _being_handled(engine, 2)
    run = subprocess.run(
        [sys.executable, "-m", "services.jobs", "--once", "--reports-dir", str(tmp_path)],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": engine.url.render_as_string(hide_password=False)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert set(lines) == ALL and "ok count=2 自动上移 2 件" in lines["escalate"]
    assert _escalations(engine, ids) == {i: (1, 1) for i in ids}
    assert len(list(tmp_path.glob("daily_*.xlsx"))) == 3
    status = subprocess.run(
        [sys.executable, "-m", "services.jobs", "--status"],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": engine.url.render_as_string(hide_password=False)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert "escalate" in status.stdout and "自动上移 2 件" in status.stdout
    with engine.connect() as conn:
        assert {r["job"]: r.get("outcome") for r in last_runs(conn)} == dict.fromkeys(ALL, "ok")


def test_the_command_line_runner_runs_as_if_at_a_given_moment(area, tmp_path):
    engine, _ = area
    run = subprocess.run(
        [sys.executable, "-m", "services.jobs", "--now", "2026-11-25T09:00", "--only", "remind", "warnings"],
        cwd=ROOT,
        env=os.environ
        | {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "REPORTS_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert [r.job for r in _runs(engine)] == ["remind", "warnings"]
    assert [r.due_at for r in _runs(engine)] == [NOW, datetime(2026, 11, 25, 0, 30)]


def test_the_registry_names_each_job_once_with_a_schedule_label():
    names = [j.name for j in JOBS]
    assert len(names) == len(set(names))
    assert {j.name: j.schedule.label for j in JOBS}["report_weekly"] == "每周一 01:30"


def test_a_runner_whose_clock_is_off_from_the_stores_does_not_run(area, monkeypatch):
    """A runner 3 h ahead closed a day early on PostgreSQL (its 日报 and 预警 on part of the day, taken as
    done by every other runner). It now runs nothing and says why; SQLite shares the machine's clock."""
    from services import jobs

    engine, _ = area
    assert jobs.skew_problem(engine) is None  # the same machine: in step
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + timedelta(hours=3))
    problem = jobs.skew_problem(engine)
    if engine.dialect.name == "postgresql":
        m = re.match(r"本机时钟比数据库快 (\d+) 秒", problem or "")
        assert m is not None and abs(int(m.group(1)) - 3 * 3600) <= 2, problem  # whole seconds of 3 h
        assert "NTP" in problem
    else:
        assert problem is None and jobs.clock_skew(engine) is None
