"""统一身份认证 (OIDC through st.login): with ``[auth]`` configured the login page offers the provider instead of
the password form; the provider's identity maps onto a local account, whose role and scope are ours."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from db.engine import session_factory
from db.models import User
from domain.vocabulary import Role
from services.auth import LoginRefused, user_for_identity

KEYCLOAK = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-long-random-secret-for-the-cookie",
    "client_id": "cockpit",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "http://keycloak.intranet/realms/quzhou/.well-known/openid-configuration",
}


def _login_form():
    # As app.py does: the login page only while nobody is logged in.
    import streamlit as st

    from components.auth import current_user, login_form

    if current_user() is None:
        login_form()
    else:
        st.write(f"已登录：{current_user().username}")


def _run(secrets: dict | None, user: dict | None = None) -> AppTest:
    at = AppTest.from_function(_login_form, default_timeout=30)
    for key, value in (secrets or {}).items():
        at.secrets[key] = value
    at.user = user or {"is_logged_in": False}
    return at.run()


def test_without_auth_the_password_form_is_shown(store):
    at = _run(None)
    assert not at.exception
    assert [t.label for t in at.text_input] == ["用户名", "密码"]


@pytest.mark.parametrize(
    "section",
    [KEYCLOAK, {"keycloak": KEYCLOAK, "username_claim": "preferred_username"}],
    ids=["unnamed", "named"],
)
def test_with_auth_configured_the_provider_replaces_the_password_form(store, section):
    at = _run({"auth": section})
    assert not at.exception
    assert [b.label for b in at.button] == ["使用统一身份认证登录"]
    assert not at.text_input  # no password field to phish or to guess against


def test_back_from_the_provider_the_identity_logs_in_the_local_account(store):
    at = _run({"auth": KEYCLOAK}, {"is_logged_in": True, "preferred_username": "demo_township", "name": "x"})
    assert not at.exception
    user = at.session_state["current_user"]
    assert (user.username, user.role) == ("demo_township", Role.TOWNSHIP_LEADER)


def test_back_from_the_provider_an_identity_without_an_account_is_refused_and_may_log_out(store):
    at = _run({"auth": KEYCLOAK}, {"is_logged_in": True, "preferred_username": "stranger"})
    assert not at.exception
    assert "尚未在本系统开通" in at.error[0].value
    assert "current_user" not in at.session_state
    assert [b.label for b in at.button] == ["退出统一身份认证"]


def test_an_auth_section_without_a_client_keeps_the_password_form(store):
    at = _run({"auth": {"username_claim": "preferred_username"}})
    assert [t.label for t in at.text_input] == ["用户名", "密码"]


def test_an_identity_maps_onto_the_local_account_with_its_role_and_scope(store):
    with session_factory(store)() as s:
        user = user_for_identity(
            s, {"preferred_username": "demo_county", "email": "x@example.org", "role": "admin"}
        )  # a role claim from the provider is ignored
    assert (user.username, user.role) == ("demo_county", Role.COMMAND_CENTER)
    with session_factory(store)() as s:
        assert user_for_identity(s, {"email": "demo_city"}, claim="email").username == "demo_city"


@pytest.mark.parametrize("claims", [{}, {"preferred_username": "  "}, {"preferred_username": "nobody_here"}])
def test_an_unknown_or_missing_identity_is_refused_in_chinese(store, claims):
    with session_factory(store)() as s, pytest.raises(LoginRefused, match="统一身份认证"):
        user_for_identity(s, claims)


def test_a_deactivated_account_is_refused(store):
    with session_factory(store).begin() as s:
        s.execute(update(User).where(User.username == "demo_department").values(is_active=False))
    try:
        with session_factory(store)() as s, pytest.raises(LoginRefused, match="已停用"):
            user_for_identity(s, {"preferred_username": "demo_department"})
    finally:
        with session_factory(store).begin() as s:
            s.execute(update(User).where(User.username == "demo_department").values(is_active=True))
