"""接口密钥 on /admin under AppTest: an administrator creates an Open311 key (shown once) and revokes it,
within their own area only."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from db.engine import session_factory
from db.models import ApiKey, AuditLog, User
from db.uow import UnitOfWork
from domain.vocabulary import Role
from services import api_keys
from services.access import OutOfScope
from services.auth import _current
from tests.app.conftest import page
from tests.app.test_admin_page import NOW, _add
from tests.builders import make_square_area


@pytest.fixture
def square(empty_engine, monkeypatch):
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        admin = _add(conn, "city_admin", Role.ADMIN, ids["990000"], display_name="市管理员")
        village = _add(conn, "east_admin", Role.ADMIN, ids["990001001001"], display_name="东村管理员")
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))
    return {"engine": empty_engine, "units": ids, "admin": admin, "village": village}


def _as(square, user_id: int):
    with session_factory(square["engine"])() as s:
        return _current(s.get(User, user_id))


def _open(square, user_id: int) -> AppTest:
    at = page("pages/admin.py")
    at.session_state["current_user"] = _as(square, user_id)
    return at.run()


def test_an_administrator_creates_a_key_shown_once_and_revokes_it(square):
    at = _open(square, square["admin"])
    at.text_input(key="adm_key_channel").input("12345")
    at.text_input(key="adm_key_label").input("12345热线")
    at.button(key="adm_key_create").click().run()
    assert not at.exception
    shown = " ".join(s.value for s in at.success).replace("\\", "")  # the message is markdown-escaped
    assert "o311_" in shown
    secret = shown.split("：", 1)[1].split("（", 1)[0]
    with square["engine"].connect() as conn:
        row = conn.execute(select(ApiKey.channel, ApiKey.key_hash)).one()
        assert api_keys.channel_of(conn, secret) is not None
        assert (
            conn.execute(select(AuditLog.action).where(AuditLog.action == "api_key.create")).scalar()
            is not None
        )
    assert row.channel == "12345" and secret not in row.key_hash
    at.button(key="adm_key_revoke").click().run()
    assert any("已吊销" in s.value for s in at.success)
    with square["engine"].connect() as conn:
        assert api_keys.channel_of(conn, secret) is None


def test_a_village_administrator_cannot_revoke_a_key_of_the_township(square):
    _, secret = api_keys.create_key(
        UnitOfWork(square["engine"]),
        actor=None,
        channel="110",
        label="110联动",
        area_code="990001001",
        now=NOW,
    )
    village = _as(square, square["village"])
    with square["engine"].connect() as conn:
        assert api_keys.list_keys(conn, village) == []
        key_id = api_keys.channel_of(conn, secret).key_id
    with pytest.raises(OutOfScope):
        api_keys.revoke_key(UnitOfWork(square["engine"]), actor=village, key_id=key_id, now=NOW)
    with pytest.raises(OutOfScope):
        api_keys.create_key(
            UnitOfWork(square["engine"]),
            actor=village,
            channel="video",
            label="视频",
            area_code="990001001",
            now=NOW,
        )
