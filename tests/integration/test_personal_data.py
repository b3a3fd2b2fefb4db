"""Personal data (PIPL): masked for every viewer, revealed one record at a time with a reason that the trail
keeps, refused (and logged) for roles without the permission or outside scope; logs carry no phone numbers."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from sqlalchemy import func, select

from db.engine import make_engine, session_factory
from db.models import AdminUnit, AuditLog, Event, Venue
from db.uow import UnitOfWork
from domain.access import redact
from domain.vocabulary import AdminLevel
from services import audit, clock
from services.access import OutOfScope, scope_for
from services.auth import user_by_username
from services.event_views import event_detail, feed
from services.geography import tree as store_tree
from services.inspections import venue_history
from services.personal_data import (
    ReasonRequired,
    redact_logs,
    reveal_event_reporter,
    reveal_venue_contact,
)


@pytest.fixture
def store(seeded_store_url):
    engine = make_engine(seeded_store_url)
    with session_factory(engine)() as s:
        users = {
            name: user_by_username(s, f"demo_{name}") for name in ("admin", "city", "township", "inspector")
        }
    with engine.connect() as conn:
        event_id = conn.execute(
            select(func.min(Event.id)).where(Event.reporter_phone.is_not(None))
        ).scalar_one()
        venue_id = conn.execute(
            select(func.min(Venue.id)).where(Venue.responsible_phone.is_not(None))
        ).scalar_one()
    yield engine, users, event_id, venue_id
    engine.dispose()


def _reveals(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "personal_data.reveal")
        ).scalar_one()


def test_every_viewer_sees_the_reporter_masked_even_an_admin(store):
    engine, users, event_id, _ = store
    with engine.connect() as conn:
        for user in users.values():
            detail = event_detail(
                conn, scope_for(user, store_tree(conn).grids_under(user.scope_unit_id)), event_id, user
            )
            if detail is None:  # out of this role's scope: nothing to mask
                continue
            phone = detail.event["reporter_phone"]
            assert "****" in phone and redact(phone) == phone
            assert detail.event["reporter_name"].endswith("*")
        card = venue_history(conn, store[3], viewer=users["admin"])
    assert "****" in card.venue["responsible_phone"]


def test_a_command_centre_user_reveals_a_reporter_with_a_reason_and_the_trail_keeps_who_and_why(store):
    engine, users, event_id, _ = store
    before = _reveals(engine)
    contact = reveal_event_reporter(
        UnitOfWork(engine), users["city"], event_id, "回访核实处置结果", clock.now()
    )
    with engine.connect() as conn:
        full = conn.execute(
            select(Event.reporter_phone, Event.reporter_name).where(Event.id == event_id)
        ).one()
    assert (contact.phone, contact.name) == tuple(full)
    with engine.connect() as conn:
        row = conn.execute(
            select(AuditLog.actor_id, AuditLog.entity, AuditLog.entity_id, AuditLog.reason, AuditLog.after)
            .where(AuditLog.action == "personal_data.reveal")
            .order_by(AuditLog.id.desc())
            .limit(1)
        ).one()
        assert audit.verify(conn) is None
    assert (row.actor_id, row.entity, row.entity_id, row.reason) == (
        users["city"].id,
        "events",
        event_id,
        "回访核实处置结果",
    )
    assert full.reporter_phone not in (row.after or "")  # the trail records the reveal, not the number
    assert _reveals(engine) == before + 1


def test_an_admin_reveals_a_venue_contact(store):
    engine, users, _, venue_id = store
    contact = reveal_venue_contact(
        UnitOfWork(engine), users["admin"], venue_id, "核实负责人联系方式", clock.now()
    )
    with engine.connect() as conn:
        phone = conn.execute(select(Venue.responsible_phone).where(Venue.id == venue_id)).scalar_one()
    assert contact.phone == phone and "*" not in phone


@pytest.mark.parametrize("reason", ["", "   ", "看看", "x" * 201])
def test_a_missing_short_or_long_reason_is_refused_in_chinese_and_nothing_is_logged(store, reason):
    engine, users, event_id, _ = store
    before = _reveals(engine)
    with pytest.raises(ReasonRequired, match="查看原因"):
        reveal_event_reporter(UnitOfWork(engine), users["city"], event_id, reason, clock.now())
    assert _reveals(engine) == before


@pytest.mark.parametrize("role", ["township", "inspector"])
def test_roles_without_the_permission_are_refused_and_the_denial_is_logged(store, role, caplog):
    engine, users, event_id, venue_id = store
    before = _reveals(engine)
    with caplog.at_level(logging.WARNING, logger="access"):
        with pytest.raises(OutOfScope, match="无权查看完整个人信息"):
            reveal_event_reporter(UnitOfWork(engine), users[role], event_id, "回访核实处置结果", clock.now())
        with pytest.raises(OutOfScope):
            reveal_venue_contact(UnitOfWork(engine), users[role], venue_id, "回访核实处置结果", clock.now())
    denials = [r for r in caplog.records if r.name == "access" and r.user_id == users[role].id]
    assert [r.object_id for r in denials] == [event_id, venue_id]
    assert _reveals(engine) == before


def test_a_permitted_role_outside_its_scope_is_refused(store, caplog):
    engine, users, event_id, _ = store
    with engine.connect() as conn:
        grid = conn.execute(select(Event.grid_id).where(Event.id == event_id)).scalar_one()
        others = (
            conn.execute(select(AdminUnit.id).where(AdminUnit.level == AdminLevel.TOWNSHIP)).scalars().all()
        )
        elsewhere = next(t for t in others if grid not in store_tree(conn).grids_under(t))
    outsider = dataclasses.replace(users["city"], scope_unit_id=elsewhere)
    with (
        caplog.at_level(logging.WARNING, logger="access"),
        pytest.raises(OutOfScope, match="不在您的管辖范围"),
    ):
        reveal_event_reporter(UnitOfWork(engine), outsider, event_id, "回访核实处置结果", clock.now())
    assert any(r.name == "access" and r.object_id == event_id for r in caplog.records)


def test_redact_masks_mobile_numbers_and_leaves_other_digits():
    assert redact("回拨13912345678，备用 15800001111。") == "回拨139****5678，备用 158****1111。"
    assert redact("网格 330802001001001 编号 2026112212") == "网格 330802001001001 编号 2026112212"
    assert redact("身份证 330802199001011234") == "身份证 330802********1234"


def test_no_log_line_carries_a_phone_number_whoever_writes_it(caplog):
    previous = logging.getLogRecordFactory()
    redact_logs()
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("some.library").info("called back %s about %s", "13912345678", "event 7")
            logging.getLogger("access").warning("reporter 15800001111 complained")
    finally:
        logging.setLogRecordFactory(previous)
    text = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    assert "13912345678" not in text and "15800001111" not in text
    assert "139****5678" in text and "158****1111" in text


def test_the_trail_keeps_a_phone_typed_into_free_text_masked(store):
    from domain.intake import ReportForm
    from services.intake import submit_report

    engine, *_ = store
    with engine.connect() as conn:
        lon, lat = conn.execute(select(Event.lon, Event.lat).limit(1)).one()
    event_id = submit_report(
        UnitOfWork(engine),
        ReportForm(category="urban", title="占道，请回拨13912345678", description="", lon=lon, lat=lat),
        now=clock.now(),
    ).id
    with engine.connect() as conn:
        after = conn.execute(
            select(AuditLog.after).where(
                AuditLog.entity == "events", AuditLog.entity_id == event_id, AuditLog.action == "event.report"
            )
        ).scalar_one()
        title = conn.execute(select(Event.title).where(Event.id == event_id)).scalar_one()
    assert "13912345678" in title  # the event keeps what was typed; every view shows it masked
    assert "13912345678" not in after and "139****5678" in after
    city = store[1]["city"]
    with engine.connect() as conn:
        scope = scope_for(city, store_tree(conn).grids_under(city.scope_unit_id))
        shown = event_detail(conn, scope, event_id, city).event["title"]
        listed = feed(conn, scope, None, limit=500)
    assert shown == "占道，请回拨139****5678"
    assert (
        "占道，请回拨139****5678" in set(listed["title"])
        and not listed["title"].str.contains("13912345678").any()
    )
