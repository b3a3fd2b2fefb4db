"""The unit of work under concurrent writers: every acknowledged write kept, none refused as "locked"."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy import func, select

from db.models import AuditLog, Setting
from db.uow import UnitOfWork
from services import audit, settings

NOW = datetime(2026, 11, 21, 9, 0)
WRITERS = 20
EACH = 25


def _bump(uow: UnitOfWork, key: str) -> None:
    """A use case that reads, then writes (the shape that deadlocks two deferred SQLite writers)."""
    with uow.begin("tests.bump"):
        old = settings.read(uow.conn, key)
        settings.write(uow.conn, key, str(int(old or 0) + 1), NOW, action="tests.bump")
        uow.commit()


def test_twenty_writers_at_once_all_commit_and_the_trail_stays_one_chain(empty_engine):
    engine = empty_engine

    def writer(n: int) -> int:
        done = 0
        for _ in range(EACH):
            _bump(UnitOfWork(engine), f"writer.{n}")
            done += 1
        return done

    with ThreadPoolExecutor(WRITERS) as pool:
        acknowledged = sum(pool.map(writer, range(WRITERS)))
    assert acknowledged == WRITERS * EACH
    with engine.connect() as conn:
        values = dict(conn.execute(select(Setting.key, Setting.value_json)).all())
        assert values == {f"writer.{n}": str(EACH) for n in range(WRITERS)}
        assert conn.execute(select(func.count()).select_from(AuditLog)).scalar_one() == WRITERS * EACH
        assert audit.verify(conn) is None
