"""The trail (全留痕): every change writes a chained audit row in its transaction; tampering is found.

Runs on SQLite and, with DATABASE_URL set to PostgreSQL, on PostgreSQL (plus the app role's rights).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.engine import ROOT, make_engine
from db.models import AuditHead, AuditLog, Event, Setting, User
from db.uow import AuditMissing, UnitOfWork
from domain.event_flow import Action, IllegalTransition
from domain.vocabulary import EventCategory, EventSource, EventStatus
from services import audit, settings
from services.event_import import import_events
from services.events import Actor, act, apply_action, report_event
from services.inspections import record_inspection, routine_checklist
from services.locate import forget_index
from tests.builders import grid_centre, make_green_venue, make_square_area

NOW = datetime(2026, 11, 21, 9, 30)
LEADER = Actor(1, "township_leader")  # the user the area fixture makes


def _is_pg(engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        venue = make_green_venue(conn)
        conn.execute(
            User.__table__.insert().values(
                id=1,
                username="leader",
                display_name="镇领导",
                role="township_leader",
                scope_unit_id=ids["990001001"],
                created_at=NOW,
            )
        )
    return empty_engine, ids, venue


def _report(engine, grid=0, actor=LEADER):
    return report_event(
        UnitOfWork(engine),
        source=EventSource.CITIZEN,
        category=EventCategory.URBAN,
        title="占道堆物",
        lon=grid_centre(grid)[0],
        lat=grid_centre(grid)[1],
        now=NOW,
        actor=actor,
    )


def _rows(engine) -> list[AuditLog]:
    with Session(engine) as s:
        return s.scalars(select(AuditLog).order_by(AuditLog.id)).all()


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditLog)).scalar_one()


def _changes(engine) -> list[int]:
    """A few changes through the services: report, three steps, a setting, an inspection."""
    eid = _report(engine).id
    for action in (Action.ACCEPT, Action.DISPATCH, Action.START):
        act(UnitOfWork(engine), event_id=eid, action=action, now=NOW, actor=LEADER, note="按规定办理")
    with engine.begin() as conn:
        settings.write(conn, "inspection.capacity", json.dumps({"default": 6}), NOW, actor=LEADER)
    with engine.begin() as conn:
        settings.write(conn, "inspection.capacity", json.dumps({"default": 8}), NOW, actor=LEADER)
    with engine.connect() as conn:
        venue = conn.execute(text("SELECT id FROM venues")).scalar_one()
        checklist = routine_checklist(conn, venue, failed=True)
    record_inspection(UnitOfWork(engine), venue_id=venue, now=NOW, checklist=checklist)
    return [r.id for r in _rows(engine)]


def _verify_cli(engine) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "services.audit",
            "verify",
            "--url",
            engine.url.render_as_string(hide_password=False),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tamper(engine, sql: str, params: dict) -> None:
    """Change the trail past its guard, as someone with direct access to the database would."""
    with engine.begin() as conn:
        if _is_pg(engine):  # the superuser switches the guard trigger off
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
            conn.execute(text(sql), params)
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
        else:  # someone with the file drops the trigger
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
            conn.execute(text(sql), params)


# ---------------------------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------------------------


def test_a_chain_over_several_changes_verifies_and_links_each_row_to_the_last(area):
    engine, _, _ = area
    ids = _changes(engine)
    rows = _rows(engine)
    assert ids == list(range(1, len(ids) + 1))  # gapless, from the head
    assert [r.action for r in rows] == [
        "event.report",
        "event.accept",
        "event.dispatch",
        "event.start",
        "setting.write",
        "setting.write",
        "inspection.record",
        "venue.safety_code",
    ]
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in pairwise(rows))
    with engine.connect() as conn:
        assert audit.verify_chain(conn) == (len(rows), None)
        head = conn.execute(select(AuditHead.last_id, AuditHead.hash)).one()
    assert tuple(head) == (rows[-1].id, rows[-1].hash)


def test_each_row_says_who_what_before_and_after(area):
    engine, _, _ = area
    _changes(engine)
    rows = _rows(engine)
    dispatch = rows[2]
    assert (dispatch.actor_id, dispatch.actor_role, dispatch.entity, dispatch.reason) == (
        1,
        "township_leader",
        "events",
        "按规定办理",
    )
    assert json.loads(dispatch.before)["status"] == EventStatus.ACCEPTED.value
    assert json.loads(dispatch.after)["status"] == EventStatus.DISPATCHED.value
    second_setting = rows[5]
    assert json.loads(second_setting.before)["value"] == {"default": 6}
    assert json.loads(second_setting.after)["value"] == {"default": 8}
    inspection, code = rows[6], rows[7]
    assert (inspection.actor_id, inspection.actor_role) == (None, "system")  # a trusted system caller
    assert json.loads(inspection.after)["result"] == "fail"
    assert (json.loads(code.before), json.loads(code.after)) == (
        {"safety_code": "green"},
        {"safety_code": "yellow"},
    )
    assert code.reason  # the rule that changed the colour


def test_a_refused_transition_leaves_no_audit_row(area):
    engine, _, _ = area
    eid = _report(engine).id
    before = _count(engine)
    with pytest.raises(IllegalTransition):  # not yet accepted
        act(UnitOfWork(engine), event_id=eid, action=Action.RESOLVE, now=NOW, actor=LEADER)
    assert _count(engine) == before
    with engine.connect() as conn:
        assert audit.verify(conn) is None


def test_a_bad_import_leaves_no_audit_row(area):
    engine, _, _ = area
    lon, lat = grid_centre(0)
    bad = f"来源,类别,标题,纬度,经度,上报时间\n12345热线,城镇管理,占道,{lat},{lon},2026-11-21 09:00\n12345热线,火星,占道,{lat},{lon},昨天\n"
    outcome = import_events(UnitOfWork(engine), bad.encode(), "events.csv", actor=LEADER, now=NOW)
    assert not outcome.ok
    assert _count(engine) == 0
    good = f"来源,类别,标题,纬度,经度,上报时间\n12345热线,城镇管理,占道,{lat},{lon},2026-11-21 09:00\n"
    assert import_events(UnitOfWork(engine), good.encode(), "events.csv", actor=LEADER, now=NOW).imported == 1
    assert [r.action for r in _rows(engine)] == ["event.report", "event.import"]


def test_the_database_refuses_to_update_or_delete_an_audit_row(area):
    engine, _, _ = area
    _changes(engine)
    for sql in ("UPDATE audit_log SET reason = 'x' WHERE id = 2", "DELETE FROM audit_log WHERE id = 2"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert audit.verify(conn) is None


def test_an_edited_row_is_reported_by_its_id_and_the_command_exits_1(area):
    engine, _, _ = area
    _changes(engine)
    assert _verify_cli(engine).returncode == 0
    _tamper(engine, "UPDATE audit_log SET after = :a WHERE id = 3", {"a": '{"status":"archived"}'})
    with engine.connect() as conn:
        broken = audit.verify(conn)
    assert broken.id == 3 and "改动" in broken.problem
    run = _verify_cli(engine)
    assert run.returncode == 1
    assert "第 3 条（id=3）" in run.stdout


def test_a_row_edited_with_a_recomputed_hash_breaks_the_next_link(area):
    engine, _, _ = area
    _changes(engine)
    with Session(engine) as s:
        row = s.get(AuditLog, 3)
        fields = {f: getattr(row, f) for f in audit.FIELDS} | {"reason": "改过"}
    forged = audit.chain_hash(row.prev_hash, fields)
    _tamper(engine, "UPDATE audit_log SET reason = '改过', hash = :h WHERE id = 3", {"h": forged})
    with engine.connect() as conn:
        assert audit.verify(conn).id == 4


def test_a_deleted_row_is_reported(area):
    engine, _, _ = area
    _changes(engine)
    _tamper(engine, "DELETE FROM audit_log WHERE id = 4", {})
    run = _verify_cli(engine)
    assert run.returncode == 1
    assert "第 4 条（id=4）" in run.stdout and "删除" in run.stdout


def test_a_deleted_last_row_is_reported_against_the_head(area):
    engine, _, _ = area
    last = _changes(engine)[-1]
    _tamper(engine, "DELETE FROM audit_log WHERE id = :i", {"i": last})
    with engine.connect() as conn:
        broken = audit.verify(conn)
    assert broken.id == last and "删除" in broken.problem


def test_the_tiny_demo_store_verifies_clean_from_its_seed_row(seeded_store_url):
    engine = make_engine(seeded_store_url)
    with engine.connect() as conn:
        count, broken = audit.verify_chain(conn)
    with Session(engine) as s:
        first = s.get(AuditLog, 1)
    engine.dispose()
    assert broken is None and count >= 1
    assert (first.action, first.actor_role, first.prev_hash) == ("demo.seed", "system", "0" * 64)
    assert json.loads(first.after)["rows"]["events"] > 0


def test_concurrent_writers_keep_one_gapless_chain(area):
    engine, _, _ = area
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _ in range(10):
                _report(engine, grid=n, actor=Actor(None, "simulator"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with engine.connect() as conn:
        assert audit.verify_chain(conn) == (30, None)


# ---------------------------------------------------------------------------------------------
# The guard: a service that forgets the trail cannot commit
# ---------------------------------------------------------------------------------------------


def _forgetful_use_case(uow: UnitOfWork, *, audited: bool, commit_directly: bool = False) -> None:
    """A use case that changes a setting and may forget its trail row."""
    with uow.begin("tests.forgetful"):
        uow.conn.execute(text("UPDATE settings SET value_json = '1'"))
        if audited:
            audit.record(
                uow.conn,
                actor_id=None,
                actor_role="system",
                action="setting.write",
                entity="settings",
                entity_id=None,
                before=None,
                after=1,
            )
        if commit_directly:  # bypassing UnitOfWork.commit: the engine's guard still refuses
            uow.session.commit()
        else:
            uow.commit()


def _setting(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(select(Setting.value_json)).scalar_one()


def test_a_use_case_without_an_audit_row_cannot_commit_and_changes_nothing(area):
    engine, _, _ = area
    with engine.begin() as conn:  # test set-up writes directly: not a use case, not checked
        conn.execute(Setting.__table__.insert().values(key="k", value_json="0", updated_at=NOW))
    with pytest.raises(AuditMissing, match=r"tests\.forgetful tried to commit without an audit_log row"):
        _forgetful_use_case(UnitOfWork(engine), audited=False)
    assert _setting(engine) == "0"  # nothing committed
    _forgetful_use_case(UnitOfWork(engine), audited=True)
    assert _setting(engine) == "1"
    assert _count(engine) == 1


def test_a_commit_that_bypasses_the_unit_of_work_is_refused_by_the_engine_guard(area):
    engine, _, _ = area
    with engine.begin() as conn:
        conn.execute(Setting.__table__.insert().values(key="k", value_json="0", updated_at=NOW))
    with pytest.raises(AuditMissing, match=r"tests\.forgetful changed settings without an audit_log row"):
        _forgetful_use_case(UnitOfWork(engine), audited=False, commit_directly=True)
    assert _setting(engine) == "0"


def test_leaving_a_unit_of_work_without_commit_rolls_back_even_an_audited_change(area):
    engine, _, _ = area
    with engine.begin() as conn:
        conn.execute(Setting.__table__.insert().values(key="k", value_json="0", updated_at=NOW))
    before = _count(engine)
    uow = UnitOfWork(engine)
    with uow.begin("tests.undecided"):
        uow.conn.execute(text("UPDATE settings SET value_json = '2'"))
        audit.record(
            uow.conn,
            actor_id=None,
            actor_role="system",
            action="setting.write",
            entity="settings",
            entity_id=None,
            before=None,
            after=2,
        )
    assert _setting(engine) == "0" and _count(engine) == before
    with pytest.raises(RuntimeError, match="not open"):
        uow.session  # noqa: B018


def test_writes_outside_a_unit_of_work_are_not_use_cases(area):
    """Migrations, the demo seed and test set-up write without a trail row (decision 0006)."""
    engine, _, _ = area
    with engine.begin() as conn:
        conn.execute(Setting.__table__.insert().values(key="k", value_json="0", updated_at=NOW))
        conn.execute(text("UPDATE settings SET value_json = '3'"))
    assert _setting(engine) == "3"


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the app's role cannot rewrite the trail, whatever the trigger
# ---------------------------------------------------------------------------------------------


def test_the_app_role_may_append_but_not_update_or_delete_audit_rows(area):
    engine, _, _ = area
    if not _is_pg(engine):
        pytest.skip(
            "database roles exist on PostgreSQL only (SQLite: the trigger and the file's permissions)"
        )
    from db.roles import APP_ROLE, grant_app_role

    _changes(engine)
    with engine.begin() as conn:
        grant_app_role(conn)
    with engine.begin() as conn:  # as the app: business changes and their trail rows work
        conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
        s = Session(bind=conn)
        apply_action(  # the use case's own step, in this transaction (SET LOCAL ROLE holds for it only)
            s,
            event_id=conn.execute(select(Event.id)).scalar_one(),
            action=Action.RESOLVE,
            now=NOW,
            actor=LEADER,
        )
        s.flush()
    for sql in (
        "UPDATE audit_log SET reason = 'x' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 2",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="permission denied"), engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))  # superuser
            conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert audit.verify_chain(conn) == (9, None)


# ---------------------------------------------------------------------------------------------
# The other writers: login, passwords, intake, venue and boundary imports, the seed
# ---------------------------------------------------------------------------------------------


def test_failed_logins_a_lockout_and_a_password_change_are_recorded_without_password_material(area):
    from services.auth import MAX_FAILURES, LoginRefused, authenticate, hash_password, set_password

    engine, _, _ = area
    with engine.begin() as conn:
        conn.execute(
            User.__table__.update().where(User.id == 1).values(password_hash=hash_password("s3cret-pass"))
        )
    for _ in range(MAX_FAILURES):
        with pytest.raises(LoginRefused):
            authenticate(UnitOfWork(engine), "leader", "wrong-guess-123", NOW)
    set_password(UnitOfWork(engine), username="leader", password="new-pass-456", actor=LEADER)
    assert authenticate(UnitOfWork(engine), "leader", "new-pass-456", NOW).id == 1
    rows = _rows(engine)
    assert [r.action for r in rows] == ["auth.login_failed"] * (MAX_FAILURES - 1) + [
        "auth.lockout",
        "auth.password_change",
    ]
    assert all(r.entity == "users" and r.entity_id == 1 for r in rows)
    assert (rows[0].actor_id, rows[0].actor_role) == (None, "anonymous")
    assert json.loads(rows[-2].after)["locked_until"] is not None
    with engine.connect() as conn:
        stored_hash = conn.execute(select(User.password_hash)).scalar_one()
        assert audit.verify(conn) is None
    text_of_trail = " ".join(f"{r.before} {r.after} {r.reason}" for r in rows)
    for secret in ("s3cret-pass", "wrong-guess-123", "new-pass-456", stored_hash, "$argon2"):
        assert secret not in text_of_trail


def test_a_merged_report_records_the_target_events_new_count(area):
    from domain.intake import ReportForm
    from services.intake import submit_report

    engine, _, _ = area
    lon, lat = grid_centre(1)
    form = ReportForm(
        category="urban",
        title="占道经营",
        description="店门口堆物",
        lon=lon,
        lat=lat,
        reporter_name="李四",
        reporter_phone="13912345678",
    )
    first = submit_report(UnitOfWork(engine), form, now=NOW).id
    submit_report(UnitOfWork(engine), form, now=NOW, merge_into=first)
    rows = _rows(engine)
    assert [r.action for r in rows] == ["event.report", "event.report", "event.reject", "event.merge"]
    merge = rows[-1]
    assert merge.entity_id == first
    assert (json.loads(merge.before)["reporter_count"], json.loads(merge.after)["reporter_count"]) == (1, 2)
    assert "13912345678" not in " ".join(f"{r.before} {r.after}" for r in rows)  # no phone in the trail


def test_a_venue_import_writes_one_row_with_the_files_digest_and_a_rejected_one_none(area):
    import hashlib

    from domain.access import CurrentUser
    from domain.vocabulary import Role
    from services.venue_import import ImportRejected, import_venues

    engine, ids, _ = area
    leader = CurrentUser(1, "leader", "镇领导", Role.TOWNSHIP_LEADER, ids["990001001"])
    lat, lon = f"{grid_centre(0)[1]:.6f}", f"{grid_centre(0)[0]:.6f}"
    header = "名称,类别,地址,纬度,经度,网格编码,负责人,联系电话\n"
    good = (header + f"老李饭店,沿街店铺,方城路8号,{lat},{lon},,李某,\n").encode()
    bad = (header + f"老李饭店,赌场,方城路8号,{lat},{lon},,李某,\n").encode()
    with pytest.raises(ImportRejected):
        import_venues(UnitOfWork(engine), data=bad, filename="v.csv", now=NOW, user=leader)
    assert _count(engine) == 0
    result = import_venues(UnitOfWork(engine), data=good, filename="v.csv", now=NOW, user=leader)
    (row,) = _rows(engine)
    assert (row.action, row.entity, row.actor_id) == ("venue.import", "venues", 1)
    assert json.loads(row.after) == {
        "file": "v.csv",
        "crs": "wgs84",
        "sha256": hashlib.sha256(good).hexdigest(),
        "count": 1,
        "first_id": result.venue_ids[0],
        "last_id": result.venue_ids[0],
    }


def test_a_boundary_import_is_recorded(empty_engine, tmp_path):
    from services.boundaries import import_boundaries
    from tests.integration.test_boundary_import import _harbour_city

    assert import_boundaries(UnitOfWork(empty_engine), _harbour_city(tmp_path), seed=3).ok
    (row,) = _rows(empty_engine)
    assert (row.action, row.entity, row.actor_role) == ("boundaries.import", "admin_units", "system")
    assert json.loads(row.after)["units_by_level"]["county"] == 2


def test_a_reseed_continues_the_trail_with_one_row_per_load(new_store_url):
    from demo.seed import seed

    engine = make_engine(new_store_url())
    end = datetime(2026, 11, 21, 18, 30)
    seed(engine, "tiny", 1, end, manifest_dir=None)
    seed(engine, "tiny", 1, end, force=True, manifest_dir=None)
    rows = _rows(engine)
    with engine.connect() as conn:
        assert audit.verify(conn) is None
    engine.dispose()
    assert [r.action for r in rows] == ["demo.seed", "demo.seed"]
    assert [json.loads(r.before)["emptied"] for r in rows] == [False, True]


@pytest.mark.parametrize("entity_id", [None, 0, 123, 2**62])
def test_rows_with_any_text_number_or_time_chain_and_verify(empty_engine, entity_id):
    """On PostgreSQL the store hashes each link (decision 0057): the bytes it hashes must be Python's for
    every text (quotes, backslashes, line and paragraph separators, control characters, astral and
    composed characters, a byte-order mark), number and time."""
    from datetime import timezone

    odd = '井盖 "缺失" \\ 路口\n😀\u2028\u2029\x01\t\r é ﬀ 𠀀 \ufeff'
    with empty_engine.begin() as conn:
        for i in range(3):
            audit.record(
                conn,
                actor_id=None if i else 7,
                actor_role="leader",
                action="x.y",
                entity="events",
                entity_id=entity_id,
                before={"a": odd, "f": 0.1 + 0.2, "big": 10**20, "n": None} if i == 1 else None,
                after={"t": odd, "d": 1e-7, "nested": [1.5, {"k": "v"}]},
                reason=odd if i != 2 else None,
                at=datetime(2026, 1, 2, 3, 4, 5, 123456 if i else 0, tzinfo=timezone(timedelta(hours=3))),
            )
    with empty_engine.connect() as conn:
        assert audit.verify_chain(conn) == (3, None)
