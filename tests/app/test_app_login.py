"""The entry script: a visitor sees only the login form; a logged-in user sees the pages of their role."""

import pytest
from sqlalchemy import insert, select
from streamlit.testing.v1 import AppTest

from db.models import AdminUnit, User
from domain.vocabulary import Role
from services import clock
from services.auth import hash_password
from tests.app.conftest import page
from tests.builders import make_square_area


@pytest.fixture
def store_with_leader(empty_engine, monkeypatch):
    with empty_engine.begin() as conn:
        make_square_area(conn)
        scope = conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990001001")).scalar_one()
        conn.execute(
            insert(User),
            {
                "username": "leader",
                "display_name": "镇领导",
                "role": Role.TOWNSHIP_LEADER,
                "scope_unit_id": scope,
                "password_hash": hash_password("s3cret-pass"),
                "created_at": clock.now(),
            },
        )
    monkeypatch.setenv("DATABASE_URL", empty_engine.url.render_as_string(hide_password=False))


def _login_form():
    from components.auth import login_form

    login_form()


def _login(username, password):
    # AppTest re-runs the navigated page directly after the first run, so the form is tested alone.
    at = AppTest.from_function(_login_form, default_timeout=30).run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def test_a_visitor_sees_the_login_form_and_nothing_else(store_with_leader):
    at = page("app.py").run()
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert at.button[0].label == "登录"
    assert not at.metric


def test_a_township_leader_logs_in_with_role_and_scope(store_with_leader):
    at = _login("leader", "s3cret-pass")
    assert not at.exception
    assert at.session_state["current_user"].role is Role.TOWNSHIP_LEADER


def test_a_wrong_password_is_refused_in_chinese(store_with_leader):
    at = _login("leader", "wrong")
    assert "用户名或密码错误" in at.error[0].value
    assert "current_user" not in at.session_state


def _verify_in_a_tab() -> None:
    import streamlit as st

    from components.auth import verified_current_user

    st.write(f"user={getattr(verified_current_user(), 'username', None)}")


def test_a_connection_without_the_tabs_login_cookie_gets_nothing_of_the_tab(monkeypatch, caplog):
    """A Streamlit session can be joined by anyone who knows its id (it is in every upload URL, so in a
    proxy's log): a client that joined a signed-in tab without its cookie opened /admin as its user."""
    import logging

    from streamlit.testing.v1 import AppTest

    from components import auth
    from domain.access import CurrentUser
    from domain.vocabulary import Role
    from services import sessions

    admin = CurrentUser(1, "demo_admin", "管理员", Role.ADMIN, 1)
    monkeypatch.setattr(auth, "cookie_sessions", lambda: True)
    for sent in (None, "another-browsers-token"):
        monkeypatch.setattr(
            auth, "_cookie", lambda name, sent=sent: sent if name == sessions.COOKIE else None
        )
        at = AppTest.from_function(_verify_in_a_tab, default_timeout=30)
        at.session_state[auth.USER_KEY] = admin
        at.session_state[auth.SESSION_KEY] = 7
        at.session_state[auth._BOUND_KEY] = sessions.digest("the-victims-token")
        with caplog.at_level(logging.WARNING, logger="access"):
            at.run()
        assert not at.exception
        assert at.markdown[0].value == "user=None"
        assert auth.USER_KEY not in at.session_state
        assert any("taken over" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(
        auth, "_cookie", lambda name: "the-victims-token" if name == sessions.COOKIE else None
    )
    with_cookie = AppTest.from_function(_carries, default_timeout=30)
    with_cookie.session_state[auth._BOUND_KEY] = sessions.digest("the-victims-token")
    with_cookie.run()
    assert with_cookie.markdown[0].value == "True"  # the browser that holds the cookie keeps its tab


def _carries() -> None:
    import streamlit as st

    from components.auth import _carries_its_cookie

    st.write(str(_carries_its_cookie()))
