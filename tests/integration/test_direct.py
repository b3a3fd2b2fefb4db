"""db.direct (decision 0058): a hot statement run on the driver's cursor answers what SQLAlchemy's own
execution answers, is seen by the engine's statement listeners, and fails as SQLAlchemy's would: the
same exception classes, the values hidden, a lost connection invalidated and told as disconnected."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from db.direct import Direct
from db.engine import make_engine
from db.models import AdminUnit, Setting
from db.uow import reading
from services.faults import Fault, classify
from tests.builders import make_square_area
from tests.conftest import backend_url

ON_POSTGRES = (backend_url() or "").startswith("postgresql")

_UNITS = Direct(
    select(AdminUnit.id, AdminUnit.code, AdminUnit.name, AdminUnit.level)
    .where(AdminUnit.parent_id.is_not(None), AdminUnit.code >= bindparam("from_code"))
    .order_by(AdminUnit.id)
)
_SETTING = Direct(
    insert(Setting)
    .values(key=bindparam("key"), value_json=bindparam("value"), updated_at=bindparam("at"))
    .returning(Setting.key, Setting.updated_at)
)


@pytest.fixture
def engine(empty_engine):
    with empty_engine.begin() as conn:
        make_square_area(conn)
    return empty_engine


def test_the_rows_are_sqlalchemys_rows_and_the_listeners_see_the_statement(engine):
    seen: list[str] = []

    def listener(_conn, _cursor, statement, *_):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        with reading(engine) as conn:
            rows = _UNITS.rows(conn, {"from_code": ""})
            expected = [tuple(r) for r in conn.execute(_UNITS.statement, {"from_code": ""}).all()]
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert rows == expected and len(rows) > 3
    assert sum("admin_units" in s for s in seen) == 2  # ours and SQLAlchemy's


def test_a_write_returns_its_row_and_a_refused_one_raises_sqlalchemys_error_without_its_values(engine):
    at = datetime(2026, 11, 21, 9, 30)
    with reading(engine) as conn:
        assert _SETTING.rows(conn, {"key": "direct.test", "value": '"甲"', "at": at}) == [("direct.test", at)]
        with pytest.raises(IntegrityError) as caught:
            _SETTING.rows(conn, {"key": "direct.test", "value": '"机密-13800000000"', "at": at})
    assert "13800000000" not in str(caught.value)
    with engine.connect() as conn:  # the first is kept, the second wrote nothing
        assert conn.execute(text("SELECT value_json FROM settings WHERE key = 'direct.test'")).all() == [
            ('"甲"',)
        ]


def test_a_statement_with_expanding_parameters_is_refused(engine):
    expanding = Direct(select(AdminUnit.id).where(AdminUnit.id.in_(bindparam("ids", expanding=True))))
    with reading(engine) as conn, pytest.raises(ValueError, match="ANY"):
        expanding.rows(conn, {"ids": [1, 2]})


@pytest.mark.skipif(not ON_POSTGRES, reason="a server backend to terminate")
def test_a_lost_connection_is_invalidated_and_told_as_disconnected_and_the_next_one_works(engine):
    admin = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        with reading(engine) as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                for _ in range(200):
                    gone = not other.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                    ).scalar_one()
                    other.commit()
                    if gone:
                        break
                    time.sleep(0.01)
            with pytest.raises(DBAPIError) as caught:
                _UNITS.rows(conn, {"from_code": ""})
            assert caught.value.connection_invalidated and conn.invalidated
        assert classify(caught.value) is Fault.DISCONNECTED
    finally:
        admin.dispose()
    with reading(engine) as conn:
        assert len(_UNITS.rows(conn, {"from_code": ""})) > 3


@pytest.mark.skipif(not ON_POSTGRES, reason="autocommit is PostgreSQL's reading")
def test_a_reading_commits_each_statement_and_gives_its_connection_back_transactional(engine):
    at = datetime(2026, 11, 21, 9, 30)
    engine.pool.dispose()  # one pooled connection from here on: the one each block below checks out
    with reading(engine) as conn:
        driver = conn.connection.driver_connection
        _SETTING.rows(conn, {"key": "direct.kept", "value": '"甲"', "at": at})
        other = make_engine(engine.url.render_as_string(hide_password=False))
        try:  # committed by itself, before the reading ends
            with other.connect() as seen:
                assert seen.execute(
                    text("SELECT count(*) FROM settings WHERE key = 'direct.kept'")
                ).scalar_one()
        finally:
            other.dispose()
        with pytest.raises(IntegrityError):
            _SETTING.rows(conn, {"key": "direct.kept", "value": '"乙"', "at": at})
    with engine.connect() as conn:  # the same connection, in transactions again
        assert conn.connection.driver_connection is driver and not driver.autocommit
        conn.execute(text("DELETE FROM settings WHERE key = 'direct.kept'"))
        conn.rollback()
        assert conn.execute(text("SELECT count(*) FROM settings WHERE key = 'direct.kept'")).scalar_one()
    with reading(engine) as conn:  # left inside a transaction: the connection is dropped, not pooled
        conn.exec_driver_sql("BEGIN")
        left = conn.connection.driver_connection
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not left and not driver.autocommit
    with reading(engine) as conn:  # closed by its own block: the pool switches it back
        conn.close()
    with engine.connect() as conn:
        assert conn.connection.driver_connection is driver and not driver.autocommit
