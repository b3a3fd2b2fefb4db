"""A report written at once (decision 0057): on PostgreSQL a report without photo, merge or rate limit is
read on an autocommit connection and written by one statement that claims its key, inserts the event and
its first trail row and appends its audit row chained by the store. The same rows as the transaction's
path, a chain that verifies, one event for a retried or concurrently resent key, nothing for a reused
one, and the app's own database role is enough. On SQLite the same tests hold the transaction's path."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from db.models import AuditHead, AuditLog, Event, EventTransition, Submission
from db.uow import UnitOfWork
from domain.intake import ReportForm
from domain.vocabulary import EventSource
from services import audit
from services.events import Actor
from services.intake import submit_report
from services.locate import forget_index
from services.submissions import KeyReused
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


def _form(i=0, **kw) -> ReportForm:
    lon, lat = grid_centre(i)
    fields = {"category": "urban", "title": "井盖缺失", "description": "路口井盖缺失", "lon": lon, "lat": lat}
    return ReportForm(**(fields | kw))


def _count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def _file(engine, form=None, **kw):
    kw.setdefault("source", EventSource.HOTLINE_12345)
    kw.setdefault("actor", HOTLINE)
    return submit_report(UnitOfWork(engine), form or _form(), now=NOW, **kw)


def test_a_report_is_read_then_written_by_one_statement_on_postgresql(engine):
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement.split(None, 1)[0].upper())

    sa_event.listen(engine, "before_cursor_execute", seen)
    try:
        _file(engine)  # the first one also reads the grids and their tree
        statements.clear()
        _file(engine, _form(1), submission_key=uuid.uuid4().hex)
    finally:
        sa_event.remove(engine, "before_cursor_execute", seen)
    if engine.dialect.name == "postgresql":
        # the possible duplicates with the rules, then everything else at once; no BEGIN, no COMMIT
        assert statements == ["SELECT", "WITH"]
    else:
        assert len(statements) > 3  # SQLite keeps its transaction (decision 0041)


def test_the_rows_written_at_once_are_the_transactions_rows(engine):
    """The same report through the one statement and through a transaction (a photo-less report from a
    phone takes the rate-limited path): the event, its trail row and its audit row agree."""
    at_once = _file(engine, submission_key=uuid.uuid4().hex)
    counted = submit_report(
        UnitOfWork(engine),
        _form(reporter_phone="13912345678"),
        now=NOW,
        source=EventSource.HOTLINE_12345,
        actor=HOTLINE,
    )
    with engine.connect() as conn:
        rows = {
            e.id: (
                conn.execute(select(Event.__table__).where(Event.id == e.id)).mappings().one(),
                conn.execute(select(EventTransition.__table__).where(EventTransition.event_id == e.id))
                .mappings()
                .one(),
                conn.execute(select(AuditLog.__table__).where(AuditLog.entity_id == e.id)).mappings().one(),
            )
            for e in (at_once, counted)
        }
        assert audit.verify_chain(conn) == (2, None)
    (e1, t1, a1), (e2, t2, a2) = rows[at_once.id], rows[counted.id]
    differ = {"id", "reporter_phone", "duplicate_of_id"}
    assert {k: v for k, v in e1.items() if k not in differ} == {
        k: v for k, v in e2.items() if k not in differ
    }
    assert {k: v for k, v in t1.items() if k not in {"id", "event_id"}} == {
        k: v for k, v in t2.items() if k not in {"id", "event_id"}
    }
    assert a1["action"] == a2["action"] == "event.report" and a1["actor_role"] == "api:12345"
    after1, after2 = json.loads(a1["after"]), json.loads(a2["after"])
    assert after2.pop("duplicate_of_id") == at_once.id and "duplicate_of_id" not in after1
    assert after1 == after2 and after1["title"] == "井盖缺失"
    assert e2["duplicate_of_id"] == at_once.id  # the second was read against the first, 0 m away
    # the object returned is the stored row
    assert at_once.id == e1["id"] and at_once.due_at == e1["due_at"] and at_once.grid_id == e1["grid_id"]


def test_a_retried_key_returns_the_first_event_and_a_reused_one_writes_nothing(engine):
    key = uuid.uuid4().hex
    first = _file(engine, submission_key=key)
    again = _file(engine, submission_key=key)
    assert again.id == first.id and again.title == "井盖缺失"
    with pytest.raises(KeyReused):
        _file(engine, _form(title="另一件事"), submission_key=key)
    assert _count(engine, Event) == 1 and _count(engine, AuditLog) == 1 and _count(engine, Submission) == 1
    with engine.connect() as conn:
        stored = conn.execute(select(Submission.entity_id, Submission.result_json)).one()
        assert stored.entity_id == first.id and json.loads(stored.result_json)["event_id"] == first.id


def test_eight_threads_resending_one_work_order_and_eight_others_keep_one_chain(engine):
    key, barrier, ids, errors = uuid.uuid4().hex, threading.Barrier(16), [], []

    def send(n: int) -> None:
        barrier.wait()
        try:
            for k in range(5):
                mine, where = (key, 0) if n < 8 else (f"{n:02d}{k:02d}{uuid.uuid4().hex}", n % 4)
                ids.append((n, _file(engine, _form(where), submission_key=mine).id))
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({i for n, i in ids if n < 8}) == 1  # the resent work order: one event, every time
    assert _count(engine, Event) == 1 + 8 * 5
    with engine.connect() as conn:
        assert audit.verify_chain(conn) == (41, None)
        head = conn.execute(select(AuditHead.last_id)).scalar_one()
    assert head == 41


def test_the_apps_own_database_role_may_write_a_report_at_once(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("database roles exist on PostgreSQL only")
    from db.roles import APP_ROLE, grant_app_role

    with engine.begin() as conn:
        grant_app_role(conn)
    with engine.connect() as conn, conn.begin():  # the unit of work joins this transaction
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        made = submit_report(
            UnitOfWork(conn),
            _form(),
            now=NOW,
            source=EventSource.HOTLINE_12345,
            actor=HOTLINE,
            submission_key=uuid.uuid4().hex,
        )
    assert _count(engine, Event, Event.id == made.id) == 1
    with engine.connect() as conn:
        assert audit.verify_chain(conn) == (1, None)


def test_the_rules_saved_by_another_process_apply_to_the_next_report_read_with_its_neighbours(engine):
    """The duplicates and the deadline rules come in one statement: a rule saved just before applies to
    the next report, with a neighbour to flag or with none."""
    from domain.deadlines import DEFAULT_DEADLINES, DeadlineRules
    from services.event_rules import DEFAULT_RULES, save_rules

    first = _file(engine)
    hours = {s: dict(per) for s, per in DEFAULT_DEADLINES.hours.items()}
    for per in hours.values():
        for u in per:
            per[u] = per[u] * 2
    longer = DeadlineRules(hours)
    save_rules(
        UnitOfWork(engine), dispatch_json=DEFAULT_RULES.to_json(), deadlines_json=longer.to_json(), now=NOW
    )
    near = _file(engine)  # 0 m from the first: flagged, under the new rules
    alone = _file(engine, _form(3, category="environment"))  # nothing near
    assert near.duplicate_of_id == first.id and alone.duplicate_of_id is None
    assert near.due_at - NOW == 2 * (first.due_at - NOW)
    assert alone.due_at - NOW == longer.limit(*_stage_and_urgency(alone))


def _stage_and_urgency(event):
    from domain.deadlines import stage_of

    return stage_of(event.status), event.urgency


def test_a_report_flagged_as_a_duplicate_waits_for_a_merge_into_that_event_instead_of_deadlocking(
    engine, monkeypatch
):
    """A merge locks its target FOR UPDATE, then takes the chain's head. The one statement of a report
    flagged as the target's duplicate locks the target (FOR KEY SHARE) before the head, so it waits for
    the merge instead of holding the head while PostgreSQL checks its foreign keys at the statement's
    end (a deadlock, one of the two refused)."""
    from services import intake

    target = _file(engine)
    real, merging = intake.find_duplicates, threading.Event()

    def slow(conn, *args, **kw):  # the merge calls it after locking its target
        found = real(conn, *args, **kw)
        merging.set()
        time.sleep(0.5)
        return found

    monkeypatch.setattr(intake, "find_duplicates", slow)
    done, errors = {}, []

    def merge():
        try:
            done["merge"] = _file(engine, merge_into=target.id).id
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    def flagged():
        merging.wait(10)
        try:
            done["flagged"] = _file(engine)
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=merge), threading.Thread(target=flagged)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert done["flagged"].duplicate_of_id == target.id
    with engine.connect() as conn:
        # the target; the merged report, its merge and its count; the flagged one
        assert audit.verify_chain(conn) == (5, None)


def test_api_requests_with_photos_in_one_batch_are_checked_against_each_other(engine):
    """A request with a photo goes to the group commit (decision 0035), where each report is checked
    against those written before it in the batch: what it read ahead on its own connection (PostgreSQL)
    is not used there, so the second of two photos of one spot is flagged as the first's duplicate."""
    import io

    from PIL import Image

    from services import api_keys, clock, open311
    from services.intake import GroupCommit

    _, key = api_keys.create_key(
        UnitOfWork(engine), actor=None, channel="12345", label="热线", area_code="990001001", now=clock.now()
    )
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo, "JPEG")
    lon, lat = grid_centre(1)
    uow, group = UnitOfWork(engine), GroupCommit(engine)
    filings = []
    for order in ("GD-1", "GD-2"):  # both prepared (and on PostgreSQL read ahead) before either is written
        with open311.reader(engine) as conn:
            channel = api_keys.channel_of(conn, key)
            assert channel is not None
            filings.append(
                open311.prepare_request(
                    uow,
                    channel,
                    reader=conn,
                    grouped=True,
                    service_code="urban",
                    lat=str(lat),
                    lon=str(lon),
                    description="垃圾堆放",
                    work_order=order,
                    photo=photo.getvalue(),
                    now=NOW,
                )
            )
    first, second = (open311.file_prepared(uow, f, group) for f in filings)
    assert first.duplicate_of_id is None and second.duplicate_of_id == first.id


def test_a_retry_returns_its_event_even_when_its_point_now_lies_outside_every_grid(engine, monkeypatch):
    """A boundary replaced between a report and its retry may leave the point outside every grid: the
    retry still returns the first event (the key is its answer), and a new report there is refused."""
    from services import intake
    from services.locate import OutsideArea

    key = uuid.uuid4().hex
    first = _file(engine, submission_key=key)
    monkeypatch.setattr(intake, "locate_grid", lambda *_args: None)  # the grids as a new file drew them
    assert _file(engine, submission_key=key).id == first.id
    with pytest.raises(OutsideArea):
        _file(engine, submission_key=uuid.uuid4().hex)
    assert _count(engine, Event) == 1
