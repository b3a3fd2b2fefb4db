"""``make store DEMO=0`` / ``make run DEMO=0``: an own-area store has no demo data, no demo account and no
simulator; its first visit creates the first administrator, scoped to the placeholder until the import."""

from __future__ import annotations

from sqlalchemy import func, select

from db.engine import make_engine
from db.models import AdminUnit, AuditLog, Event, User, Venue
from db.uow import UnitOfWork
from demo.bootstrap import ensure_store, is_demo
from services import clock
from services.accounts import create_first_admin
from services.boundaries import SETUP_CODE


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_store_made_without_demo_holds_only_the_placeholder_and_takes_a_first_administrator(new_store_url):
    engine = make_engine(new_store_url())
    assert "空数据库" in ensure_store(engine, demo=False)
    assert "已有数据库" in ensure_store(engine, demo=False)  # run again: migrated, nothing added
    assert [_count(engine, m) for m in (AdminUnit, User, Venue, Event)] == [1, 0, 0, 0]
    assert not is_demo(engine)  # make run starts no simulator on it
    admin = create_first_admin(
        UnitOfWork(engine),
        username="county_admin",
        display_name="县管理员",
        password="admin-pass-1",
        repeat="admin-pass-1",
        now=clock.now(),
    )
    with engine.connect() as conn:
        scope = conn.execute(select(AdminUnit.code).where(AdminUnit.id == admin.scope_unit_id)).scalar_one()
        actions = list(conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars())
    assert scope == SETUP_CODE
    assert actions == ["boundaries.setup_unit", "accounts.first_admin"]
    engine.dispose()


def test_the_demo_store_is_recognised_as_one(seeded_store_url):
    engine = make_engine(seeded_store_url)
    assert is_demo(engine)
    engine.dispose()
