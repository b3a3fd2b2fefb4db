"""How a process learns that another one wrote (decision 0031): the audit rows since its last look, the
event loop's own steps left to the caches' TTLs, anything else (a setting, an import) reported."""

from __future__ import annotations

from db.uow import UnitOfWork
from services import audit, clock, settings


def _write(engine, action: str) -> None:
    uow = UnitOfWork(engine)
    with uow.begin("test.write"):
        if action.startswith("event."):
            audit.record(
                uow.conn,
                actor_id=None,
                actor_role="system",
                action=action,
                entity="events",
                entity_id=1,
                before=None,
                after={"k": 1},
                at=clock.now(),
            )
        else:
            settings.write(uow.conn, "test.key", '"x"', clock.now(), action=action)
        uow.commit()


def test_only_writes_outside_the_ignored_actions_since_the_last_look_are_reported(empty_engine):
    quiet = ("event.",)
    with empty_engine.connect() as conn:
        first, changed = audit.written_since(conn, None, ignoring=quiet)
    assert not changed  # the first look only learns where the trail stands

    _write(empty_engine, "event.report")
    with empty_engine.connect() as conn:
        after_event, changed = audit.written_since(conn, first, ignoring=quiet)
    assert after_event > first and not changed

    _write(empty_engine, "risk.thresholds")
    with empty_engine.connect() as conn:
        after_setting, changed = audit.written_since(conn, after_event, ignoring=quiet)
        assert after_setting > after_event and changed
        assert audit.written_since(conn, after_setting, ignoring=quiet) == (after_setting, False)
