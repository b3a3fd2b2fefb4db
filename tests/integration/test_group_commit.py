"""Group commit of reports (decision 0035): the API's POSTs of the moment written in one transaction,
each in a savepoint of its own. One bad report fails alone (its error to its caller, its rows undone, the
trail whole); retries of one work-order number, together or at once from many threads, give one event;
a failed commit stores nothing and tells every caller."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import event, func, select, text

from db.engine import make_engine
from db.models import AuditLog, Event, EventTransition, Submission
from db.uow import UnitOfWork
from domain.intake import InvalidReport, ReportForm
from domain.vocabulary import EventSource
from services import api_keys, audit, intake, open311
from services.events import Actor
from services.faults import Fault, classify
from services.intake import GroupCommit, _Pending, prepare_report
from services.locate import OutsideArea, forget_index
from tests.builders import grid_centre, make_square_area

NOW = datetime(2026, 11, 21, 12, 0)
HOTLINE = Actor(None, "api:12345")


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    yield empty_engine
    forget_index()


def _report(engine, i: int, *, title: str = "占道经营", key: str | None = None, **kw):
    lon, lat = grid_centre(i % 4)
    form = ReportForm(category="urban", title=title, description="门口堆物", lon=lon, lat=lat)
    return prepare_report(
        UnitOfWork(engine),
        form,
        now=NOW,
        source=EventSource.HOTLINE_12345,
        actor=HOTLINE,
        submission_key=key,
        **kw,
    )


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar_one()
            for m in (Event, EventTransition, AuditLog, Submission)
        }


#: Two reports' rows: an event, a trail row, an audit row and a submission key each.
_EACH_ROW_TWICE = {"events": 2, "event_transitions": 2, "audit_log": 2, "submissions": 2}


def _added(engine, before: dict[str, int]) -> dict[str, int]:
    after = _counts(engine)
    return {k: after[k] - before[k] for k in after}


def _trail_whole(engine) -> None:
    with engine.connect() as conn:
        assert audit.verify(conn) is None


def test_one_bad_report_in_a_batch_fails_alone(engine, monkeypatch):
    before = _counts(engine)
    real = intake.add_report

    def failing(conn, report, deadlines=None):  # a store error after the event, its trail and audit rows
        event = real(conn, report, deadlines)
        if report.title == "写入失败":
            raise RuntimeError("磁盘写入失败")
        return event

    monkeypatch.setattr(intake, "add_report", failing)
    batch = [
        _Pending(_report(engine, 0, key="o311-good-000000000001")),
        # refused inside the transaction, after its key was claimed: a merge target that does not qualify
        _Pending(_report(engine, 1, key="o311-bad-merge-00000001", merge_into=999_999)),
        _Pending(_report(engine, 2, key="o311-bad-store-00000001", title="写入失败")),
        _Pending(_report(engine, 3, key="o311-good-000000000002")),
    ]
    GroupCommit(engine).run(batch)
    assert all(item.done for item in batch)
    good, merge, store, good2 = batch
    assert good.error is None and good2.error is None
    assert isinstance(merge.error, InvalidReport)
    assert "合并" in merge.error.problems and merge.event is None
    assert isinstance(store.error, RuntimeError) and store.event is None
    # exactly the two good reports: one event, one trail row, one audit row and one key each
    assert _added(engine, before) == _EACH_ROW_TWICE
    with engine.connect() as conn:
        keys = set(conn.execute(select(Submission.key)).scalars())
        ids = set(conn.execute(select(Event.id)).scalars())
    assert {"o311-good-000000000001", "o311-good-000000000002"} <= keys
    assert not keys & {"o311-bad-merge-00000001", "o311-bad-store-00000001"}
    assert {good.event.id, good2.event.id} <= ids
    _trail_whole(engine)


def test_the_same_work_order_twice_in_one_batch_gives_one_event(engine):
    twins = [_Pending(_report(engine, 0, key="o311-twin-0000000000001")) for _ in range(3)]
    other = _Pending(_report(engine, 1, key="o311-twin-0000000000001", title="另一件事"))
    GroupCommit(engine).run([*twins, other])
    assert len({t.event.id for t in twins}) == 1 and all(t.error is None for t in twins)
    assert other.error is not None and "提交编号" in other.error.problems  # the key, other content
    assert _counts(engine)["events"] == 1
    _trail_whole(engine)


def test_a_failed_commit_stores_nothing_and_tells_every_caller(engine, monkeypatch):
    before = _counts(engine)

    def refuse(self):
        raise RuntimeError("提交失败")

    monkeypatch.setattr(UnitOfWork, "commit", refuse)
    batch = [_Pending(_report(engine, i, key=f"o311-lost-00000000000{i}")) for i in range(3)]
    GroupCommit(engine).run(batch)
    assert all(isinstance(item.error, RuntimeError) and item.event is None for item in batch)
    assert _counts(engine) == before


def _batch_failing_at(engine, monkeypatch, prefix: str, hook) -> list[_Pending]:
    """Four keyed reports; ``hook(conn)`` runs in the batch's transaction before the second's rows."""
    real = intake.add_report

    def patched(conn, report, deadlines=None):
        if report.title == "出故障":
            hook(conn)
        return real(conn, report, deadlines)

    monkeypatch.setattr(intake, "add_report", patched)
    return [
        _Pending(_report(engine, i, key=f"o311-{prefix}-{i:016d}", title="出故障" if i == 1 else "占道经营"))
        for i in range(4)
    ]


@pytest.mark.skipif(
    not str(os.environ.get("DATABASE_URL", "sqlite")).startswith("sqlite"),
    reason="SQLite's page limit stands in for a full disk",
)
def test_a_store_that_rolls_the_whole_batch_back_tells_every_caller_and_keeps_nothing(engine, monkeypatch):
    """SQLite rolls the whole transaction back on a full disk, not only the statement: the reports before
    the failing one went with it, and there is no savepoint left to roll back to. Every caller is told
    (none answered with an event that was never stored) and nothing of the batch is kept."""
    before = _counts(engine)

    def fill(conn) -> None:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA max_page_count={pages + 2}")
        try:
            conn.exec_driver_sql(
                "INSERT INTO settings (key, value_json, updated_at) "
                "VALUES ('filler', hex(randomblob(2000000)), '2026-11-21')"
            )
        finally:
            conn.exec_driver_sql("PRAGMA max_page_count=1073741823")

    batch = _batch_failing_at(engine, monkeypatch, "full", fill)
    GroupCommit(engine).run(batch)
    assert all(item.error is not None and item.event is None for item in batch)
    assert {classify(item.error) for item in batch} == {Fault.FULL}
    assert _counts(engine) == before
    _trail_whole(engine)


@pytest.mark.skipif(
    str(os.environ.get("DATABASE_URL", "sqlite")).startswith("sqlite"), reason="a server backend to terminate"
)
def test_a_connection_lost_in_a_batch_is_told_as_lost_to_every_caller(engine, monkeypatch):
    before = _counts(engine)
    admin = make_engine(engine.url.render_as_string(hide_password=False))

    def cut(conn) -> None:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            other.commit()
        time.sleep(0.2)

    batch = _batch_failing_at(engine, monkeypatch, "cut", cut)
    try:
        GroupCommit(engine).run(batch)
    finally:
        admin.dispose()
    assert all(item.event is None for item in batch)
    assert {classify(item.error) for item in batch} == {Fault.DISCONNECTED}
    assert _counts(engine) == before


def test_a_batch_that_meets_no_error_takes_no_savepoint_and_one_that_does_is_written_with_them(
    engine, monkeypatch
):
    """Decision 0059: a batch is written first without a savepoint per report; a report's error rolls
    that transaction back and the batch is written again with them, the failing report refused alone."""
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        group = GroupCommit(engine)
        clean = [_Pending(_report(engine, i, key=f"o311-clean-{i:016d}")) for i in range(3)]
        group.run(clean)
        assert all(item.error is None and item.event is not None for item in clean)
        assert not [s for s in sent if "SAVEPOINT" in s.upper()]
        sent.clear()
        batch = _batch_failing_at(
            engine, monkeypatch, "again", lambda conn: conn.execute(text("SELECT 1/0x"))
        )
        before = _counts(engine)
        group.run(batch)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [s for s in sent if "SAVEPOINT" in s.upper()]
    assert batch[1].error is not None and batch[1].event is None
    assert all(item.error is None and item.event is not None for i, item in enumerate(batch) if i != 1)
    assert _counts(engine)["events"] - before["events"] == 3
    assert group.batches == 2 and group.reports == 6
    _trail_whole(engine)


def test_a_report_whose_key_was_revoked_meanwhile_is_refused_alone(engine):
    """A report whose channel came from memory carries its key's row as read; the batch checks in its
    transaction that the row still reads so (decision 0059): that report is refused, the others written."""
    stamps = {}
    for channel in ("110", "12345"):
        _, key = api_keys.create_key(
            UnitOfWork(engine), actor=None, channel=channel, label=channel, area_code="990001001", now=NOW
        )
        with engine.connect() as conn:
            stamps[channel] = api_keys.channel_of(conn, key).stamp
    gone, live = stamps["110"], stamps["12345"]
    assert api_keys.revoke_key(UnitOfWork(engine), actor=None, key_id=gone.key_id, now=NOW)
    before = _counts(engine)
    batch = [
        _Pending(_report(engine, 0, key="o311-live-000000000001", api_key=live)),
        _Pending(_report(engine, 1, key="o311-gone-000000000001", api_key=gone)),
        _Pending(_report(engine, 2, key="o311-live-000000000002")),
    ]
    GroupCommit(engine).run(batch)
    assert isinstance(batch[1].error, api_keys.KeyChanged) and batch[1].event is None
    assert batch[0].event is not None and batch[2].event is not None
    assert _added(engine, before) == _EACH_ROW_TWICE
    rescoped = live._replace(scope_unit_id=live.scope_unit_id + 1)
    with engine.connect() as conn:
        assert api_keys.unchanged(conn, {gone, live, rescoped}) == {live}
        # the read ahead's check, where no grid is near the point (PostgreSQL's path for such a report)
        with pytest.raises(api_keys.KeyChanged):
            intake.nearby_and_deadlines(conn, "urban", 100.0, 10.0, NOW, api_key=rescoped)
        assert intake.nearby_and_deadlines(conn, "urban", 100.0, 10.0, NOW, api_key=live)[0] == []
        lon, lat = grid_centre(0)
        with pytest.raises(api_keys.KeyChanged):
            intake.nearby_and_deadlines(conn, "urban", lon, lat, NOW, api_key=gone)


def test_errors_before_the_transaction_are_the_callers_own(engine):
    group = GroupCommit(engine)
    with pytest.raises(InvalidReport) as refused:
        group.submit_report(ReportForm(category="", title="", description="", lon=None, lat=None), now=NOW)
    assert {"事项类别", "标题", "位置"} <= set(refused.value.problems)
    lon, lat = 100.0, 10.0
    with pytest.raises(OutsideArea):
        group.submit_report(
            ReportForm(category="urban", title="界外", description="", lon=lon, lat=lat), now=NOW
        )
    assert _counts(engine)["events"] == 0


def test_concurrent_posts_through_the_group(engine):
    """16 threads: 8 file distinct work orders, 8 retry one work order at once; every answer after its
    commit, one event per work order, the trail whole."""
    _, key = api_keys.create_key(
        UnitOfWork(engine), actor=None, channel="12345", label="热线", area_code="990001001", now=NOW
    )
    with engine.connect() as conn:
        channel = api_keys.channel_of(conn, key)
    assert channel is not None
    group = GroupCommit(engine)
    answers: dict[int, int] = {}
    failures: list[BaseException] = []
    start = threading.Barrier(16)

    def post(i: int) -> None:
        lon, lat = grid_centre(i % 4 if i < 8 else 0)  # the retries: the same request
        start.wait()
        try:
            event = open311.file_request(
                UnitOfWork(engine),
                channel,
                service_code="urban",
                lat=str(lat),
                lon=str(lon),
                description=f"并发工单 {i if i < 8 else 'same'}",
                work_order=f"GD-{i}" if i < 8 else "GD-SAME",
                now=NOW,
                group=group,
            )
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)
            return
        with engine.connect() as conn:  # answered only after its commit: another connection sees it
            assert conn.execute(select(Event.id).where(Event.id == event.id)).scalar() == event.id
        answers[i] = event.id

    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len({answers[i] for i in range(8, 16)}) == 1  # the retries: one event
    assert len({answers[i] for i in range(8)}) == 8
    assert _counts(engine)["events"] == 9
    assert group.reports == 16 and 1 <= group.batches <= 16
    _trail_whole(engine)
