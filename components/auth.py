"""Login form, the current user in the session, and the page guard that refuses a role without the right."""

from __future__ import annotations

import streamlit as st

from components.store import engine
from components.text import md_text
from db.engine import session_factory
from domain.access import CurrentUser
from services import clock
from services.access import deny, verified_user
from services.auth import LoginRefused, authenticate, user_for_identity

USER_KEY = "current_user"
# The user app.py checked against the store in this run, handed to the page's guard (which takes it, so
# it never outlives the run): one check per run instead of two. A page run without app.py checks itself.
_CHECKED_KEY = "_user_checked_this_run"


def current_user() -> CurrentUser | None:
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, CurrentUser) else None


def verified_current_user(*, hand_to_page: bool = False) -> CurrentUser | None:
    """The session's user, checked against the store (a forged or stale one is logged and logged out).

    ``hand_to_page``: app.py's check, handed to this run's page guard (:func:`require_page` takes it)."""
    user = current_user()
    if user is None:
        return None
    with engine().connect() as conn:
        verified = verified_user(conn, user)
    if verified is None:
        st.session_state.pop(_CHECKED_KEY, None)
        logout()
    elif hand_to_page:
        st.session_state[_CHECKED_KEY] = verified
    return verified


def end_of_run() -> None:
    """Drop app.py's hand-over if the page did not take it (a public page, a stopped run)."""
    st.session_state.pop(_CHECKED_KEY, None)


def oidc_provider() -> tuple[bool, str | None]:
    """Whether an ``[auth]`` section is configured in secrets.toml, and the provider name to log in with.

    ``[auth]`` with ``client_id`` is the single, unnamed provider (``st.login()``); otherwise the first
    ``[auth.<name>]`` subsection names it. ``username_claim`` (default ``preferred_username``) says which
    claim holds the local account's user name. Decision 0008.
    """
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml at all (StreamlitSecretNotFoundError): password login
        return False, None
    if not section:
        return False, None
    if "client_id" in section:
        return True, None
    named = [k for k, v in section.items() if hasattr(v, "keys") and "client_id" in v]
    return (True, named[0]) if named else (False, None)


def _provider_logged_in() -> bool:
    return bool(st.user.to_dict().get("is_logged_in"))


def _oidc_login(provider: str | None) -> None:
    """统一身份认证: the provider's login, then the local account its identity names (role and scope are ours)."""
    st.title("乡镇数字驾驶舱")
    if not _provider_logged_in():
        st.button("使用统一身份认证登录", type="primary", on_click=st.login, args=(provider,) if provider else ())
        return
    claim = str(st.secrets["auth"].get("username_claim", "preferred_username"))
    try:
        with session_factory(engine())() as session:
            st.session_state[USER_KEY] = user_for_identity(session, st.user.to_dict(), claim)
    except LoginRefused as exc:
        st.error(md_text(str(exc)))
        st.button("退出统一身份认证", on_click=st.logout)
    else:
        st.rerun()


def login_form() -> None:
    """The 用户名 / 密码 / 登录 form (or, with ``[auth]`` configured, the OIDC button); on success the user
    is put in the session and the app reruns."""
    oidc, provider = oidc_provider()
    if oidc:
        _oidc_login(provider)
        return
    st.title("乡镇数字驾驶舱")
    with st.form("login"):
        username = st.text_input("用户名", max_chars=64)
        password = st.text_input("密码", type="password", max_chars=128)
        submitted = st.form_submit_button("登录", type="primary")
    if submitted:
        try:
            with session_factory(engine())() as session:
                st.session_state[USER_KEY] = authenticate(session, username, password, clock.now())
        except LoginRefused as exc:
            st.error(md_text(str(exc)))
        else:
            st.rerun()


def logout() -> None:
    """End the session's login and forget everything the pages kept (a feed, a selected venue …), so the
    next person to log in on this browser sees nothing of the last one's scope."""
    st.session_state.clear()
    if oidc_provider()[0] and _provider_logged_in():
        st.logout()  # and the provider's session cookie, or the next run would log straight back in


def through_entrypoint() -> None:
    """Make sure the page runs under app.py's navigation, login and menu.

    Streamlit (1.67) starts a server in its old "pages/ directory" mode when a pages/ folder exists,
    until some session runs the entry script's st.navigation. A bookmark opened first after a
    restart (/risk_map on a wall screen) would then run the page file alone, without login or menu.
    Switching the mode off and rerunning sends this session through app.py, at the same URL.
    Decision 0004.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def require_page(page: str) -> CurrentUser:
    """The current user if they may open ``page``; otherwise a clear refusal and the script stops.

    The session's user is checked against the store on every run (decision 0007): a forged or stale
    value in ``st.session_state`` (another role, a wider scope) logs a denial and ends the session.
    """
    through_entrypoint()
    user = current_user()
    if user is None:
        if st.session_state.get(USER_KEY) is not None:  # something that is not a user: forged
            deny(None, f"page {page}: session value", None)
            logout()
        st.error("请先登录。")
        st.stop()
    checked = st.session_state.pop(_CHECKED_KEY, None)
    if checked != user and verified_current_user() is None:  # not checked this run (or another user): check
        st.error("登录状态无效，请重新登录。")
        st.stop()
    st.session_state.pop(_CHECKED_KEY, None)
    if not user.may_open(page):
        deny(user, f"page {page}", None)
        st.error(f"您的角色（{user.role.label}）无权访问此页面。")
        st.stop()
    return user
