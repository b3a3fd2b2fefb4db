"""Idempotent creates: a retried, double-clicked or concurrently resent submission gives one row, one audit
row, and the first result (the same event number); the same key with other content changes nothing."""

import threading
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from db.models import AdminUnit, AuditLog, Event, Inspection, InspectorGrid, Submission, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.intake import InvalidReport, ReportForm
from domain.safety_code import checklist_for
from domain.vocabulary import EventSource, Role
from services.inspections import InvalidInspection, NewHazard, record_inspection
from services.intake import submit_report
from services.locate import forget_index
from services.submissions import KeyReused
from tests.builders import grid_centre, make_green_venue, make_square_area

NOW = datetime(2026, 11, 21, 12, 0)


@pytest.fixture
def engine(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine


def _form(i=0, **kw):
    lon, lat = grid_centre(i)
    fields = {"category": "urban", "title": "占道经营", "description": "店门口堆物", "lon": lon, "lat": lat}
    return ReportForm(**(fields | kw))


def _count(engine, model, *where):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _audits(engine, action):
    return _count(engine, AuditLog, AuditLog.action == action)


def _key() -> str:
    return uuid.uuid4().hex


def test_a_retried_submission_gives_one_event_and_one_audit_row(engine):
    key = _key()
    first = submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=key)
    again = [
        submit_report(UnitOfWork(engine), _form(), now=NOW + timedelta(seconds=s), submission_key=key)
        for s in (1, 30)
    ]
    assert [e.id for e in again] == [first.id, first.id]
    assert again[0].title == "占道经营" and again[0].grid_id == first.grid_id  # usable after its unit closed
    assert _count(engine, Event) == 1
    assert _audits(engine, "event.report") == 1
    assert _count(engine, Submission) == 1


def test_a_double_click_sent_from_five_threads_at_once_gives_one_event(engine):
    key, barrier, ids, errors = _key(), threading.Barrier(5), [], []

    def click():
        barrier.wait()
        try:
            ids.append(submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=key).id)
        except Exception as exc:  # any error here is the test's failure, reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=click) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 5 and len(set(ids)) == 1
    assert _count(engine, Event) == 1 and _audits(engine, "event.report") == 1


def test_the_same_key_with_other_content_is_refused_and_writes_nothing(engine):
    key = _key()
    submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=key)
    with engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()
    with pytest.raises(KeyReused, match="提交编号"):
        submit_report(UnitOfWork(engine), _form(title="另一件事"), now=NOW, submission_key=key)
    assert _count(engine, Event) == 1 and _count(engine, AuditLog) == audited


def test_keys_are_their_own_per_submission_two_keys_make_two_events(engine):
    a = submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=_key())
    b = submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=_key())
    assert a.id != b.id and _count(engine, Event) == 2


@pytest.mark.parametrize("bad", ["short", "x" * 65, "<script>alert(1)</script>xxxx", "../../etc/passwd-xx"])
def test_a_malformed_key_is_refused_in_chinese_and_nothing_is_stored(engine, bad):
    with pytest.raises(InvalidReport) as caught:
        submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=bad)
    assert "提交编号" in caught.value.problems
    assert _count(engine, Event) == 0 and _count(engine, Submission) == 0


def test_a_retried_merge_counts_its_reporter_once(engine):
    original = submit_report(UnitOfWork(engine), _form(), now=NOW)
    key = _key()
    for _ in range(3):
        dup = submit_report(
            UnitOfWork(engine),
            _form(),
            now=NOW + timedelta(minutes=5),
            merge_into=original.id,
            submission_key=key,
        )
        assert dup.merged_into_id == original.id
    with engine.connect() as conn:
        count = conn.execute(select(Event.reporter_count).where(Event.id == original.id)).scalar_one()
    assert count == 2 and _count(engine, Event) == 2 and _audits(engine, "event.merge") == 1


def test_a_refused_submission_leaves_its_key_free_for_the_corrected_one(engine):
    key = _key()
    with pytest.raises(InvalidReport):
        submit_report(UnitOfWork(engine), _form(title=" "), now=NOW, submission_key=key)
    assert _count(engine, Submission) == 0
    stored = submit_report(UnitOfWork(engine), _form(), now=NOW, submission_key=key)
    assert _count(engine, Event) == 1 and stored.id is not None


def test_a_grid_workers_retried_report_is_one_event_too(engine):
    key = _key()
    ids = {
        submit_report(
            UnitOfWork(engine), _form(), now=NOW, source=EventSource.GRID_WORKER, submission_key=key
        ).id
        for _ in range(2)
    }
    assert len(ids) == 1 and _count(engine, Event) == 1


# -- inspections ------------------------------------------------------------------------------------


@pytest.fixture
def venue(engine):
    with engine.begin() as conn:
        venue_id = make_green_venue(conn)
        grid = conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990001001001001")).scalar_one()
        uid = conn.execute(
            insert(User).returning(User.id),
            {
                "username": "insp",
                "display_name": "检查员甲",
                "role": Role.INSPECTOR,
                "scope_unit_id": grid,
                "created_at": datetime(2026, 1, 1),
            },
        ).scalar_one()
        conn.execute(insert(InspectorGrid), {"user_id": uid, "grid_id": grid})
    return venue_id, CurrentUser(uid, "insp", "检查员甲", Role.INSPECTOR, grid)


def _inspect(engine, venue_id, user, key, **kw):
    checklist = {i.key: "pass" for i in checklist_for("street_shop")}
    return record_inspection(
        UnitOfWork(engine),
        venue_id=venue_id,
        now=NOW,
        checklist=checklist,
        user=user,
        submission_key=key,
        **kw,
    )


def test_a_retried_inspection_records_one_inspection_and_returns_the_first_result(engine, venue):
    venue_id, user = venue
    key = _key()
    hazard = NewHazard("major", "消防通道堆物", NOW.date() + timedelta(days=3))
    first = _inspect(engine, venue_id, user, key, hazards=[hazard])
    again = _inspect(engine, venue_id, user, key, hazards=[hazard])
    assert again == first
    assert _count(engine, Inspection) == 1 and _audits(engine, "inspection.record") == 1


def test_an_inspection_key_reused_for_other_answers_is_refused(engine, venue):
    venue_id, user = venue
    key = _key()
    _inspect(engine, venue_id, user, key)
    with pytest.raises(KeyReused):
        _inspect(engine, venue_id, user, key, note="另一次检查")
    assert _count(engine, Inspection) == 1


def test_a_malformed_inspection_key_is_refused(engine, venue):
    venue_id, user = venue
    with pytest.raises(InvalidInspection, match="提交编号"):
        _inspect(engine, venue_id, user, "bad key")
    assert _count(engine, Inspection) == 0
