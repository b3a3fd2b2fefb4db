"""转督办: a leader turns a 预警 into one event (the report path, audited), once per warning, in scope only."""

from datetime import date, datetime

import pytest
from sqlalchemy import func, insert, select

from db.models import AuditLog, Event, EventTransition, Submission, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.early_warning import Alert, AlertKind
from domain.vocabulary import EventCategory, EventStatus, Role, Urgency
from services.access import OutOfScope
from services.locate import forget_index
from services.warnings_followup import SOURCE, follow_up
from tests.builders import make_square_area

NOW = datetime(2026, 11, 21, 9, 30)


@pytest.fixture
def area(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        users = {}
        for name, role, unit in (
            ("leader", Role.TOWNSHIP_LEADER, ids["990001001"]),
            ("county", Role.COMMAND_CENTER, ids["990001"]),
            ("west", Role.TOWNSHIP_LEADER, ids["990001001002"]),  # scoped to the other village
            ("inspector", Role.INSPECTOR, ids["990001001"]),
        ):
            uid = conn.execute(
                insert(User).returning(User.id),
                {
                    "username": name,
                    "display_name": name,
                    "role": role,
                    "scope_unit_id": unit,
                    "created_at": NOW,
                },
            ).scalar_one()
            users[name] = CurrentUser(uid, name, name, role, unit)
    return empty_engine, ids, users


def _alert(unit_id: int, kind=AlertKind.SPIKE, category=EventCategory.DISPUTE) -> Alert:
    return Alert(
        kind=kind,
        day=date(2026, 11, 20),
        unit_id=unit_id,
        unit_level="village",
        category=category,
        period_start=date(2026, 11, 20),
        period_end=date(2026, 11, 20),
        evidence={},
        message="东村矛盾纠纷 11月20日 9 件（泊松尾概率<0.0001），为近 28 日日均的 4 倍",
    )


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_warning_becomes_one_event_in_its_area_in_plain_chinese_audited(area):
    engine, ids, users = area
    village = ids["990001001001"]
    done = follow_up(UnitOfWork(engine), users["leader"], _alert(village), NOW)
    assert done.created
    with engine.connect() as conn:
        e = conn.execute(select(Event.__table__).where(Event.id == done.event_id)).one()
        grids = {ids[c] for c in ("990001001001001", "990001001001002")}
        assert e.grid_id in grids and e.owner_unit_id == village  # in the warning's village
        assert (e.source, e.category, e.status, e.urgency) == (
            SOURCE,
            EventCategory.DISPUTE,
            EventStatus.REPORTED,
            Urgency.URGENT,
        )
        assert e.title == "【预警转督办】东村突发：矛盾纠纷"
        assert "泊松" not in e.description and "远高于常态" in e.description
        actors = conn.execute(
            select(EventTransition.actor_id).where(EventTransition.event_id == e.id)
        ).scalars()
        assert list(actors) == [users["leader"].id]
        audited = conn.execute(
            select(AuditLog.action).where(AuditLog.entity == "events", AuditLog.entity_id == e.id)
        ).scalars()
        assert sorted(audited) == ["event.report", "warning.followup"]


def test_the_same_warning_turned_again_gives_the_first_event_and_another_warning_a_new_one(area):
    engine, ids, users = area
    village = ids["990001001001"]
    first = follow_up(UnitOfWork(engine), users["leader"], _alert(village), NOW)
    again = follow_up(UnitOfWork(engine), users["county"], _alert(village), NOW)
    assert (again.event_id, again.created) == (first.event_id, False)
    other = follow_up(UnitOfWork(engine), users["leader"], _alert(village, AlertKind.CHRONIC), NOW)
    assert other.created and other.event_id != first.event_id
    township = follow_up(UnitOfWork(engine), users["leader"], _alert(ids["990001001"]), NOW)
    assert township.created  # the township's point (between grids) still lands in one of its grids
    assert _count(engine, Event) == 3


@pytest.mark.parametrize("who", ["west", "inspector"])
def test_out_of_scope_or_without_the_warnings_view_is_refused_and_nothing_written(area, who, caplog):
    engine, ids, users = area
    before = (_count(engine, Event), _count(engine, AuditLog), _count(engine, Submission))
    with pytest.raises(OutOfScope):
        follow_up(UnitOfWork(engine), users[who], _alert(ids["990001001001"]), NOW)
    assert (_count(engine, Event), _count(engine, AuditLog), _count(engine, Submission)) == before
    assert any(r.name == "access" for r in caplog.records)
