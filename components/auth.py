"""Login form, the current user in the session, and the page guard that refuses a role without the right.

Staying signed in (decision 0017): with the app served through ``serve.py`` a login also starts a login
session in the store and sends the browser once through ``/auth/session``, which sets an HttpOnly
cookie; every new browser session (a reload, a bookmark, a new tab) finds its user again from that
cookie (:func:`verified_current_user`), and every run checks the session is still running (idle and
absolute limits per role, the account unchanged). Without ``serve.py`` (``streamlit run app.py``, the
AppTest) a login lasts as long as the tab, as before.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

import streamlit as st

from components.account_forms import show_problems
from components.store import engine, reader, tree, uow
from components.text import md_text
from domain.access import HOME_PAGE, SESSION_END_LABELS, CurrentUser
from domain.errors import FieldProblems
from services import clock, sessions
from services.access import deny, verified_user
from services.accounts import AccountRefused, create_first_admin, has_accounts, top_units
from services.auth import (
    MIN_PASSWORD,
    LoginRefused,
    authenticate,
    change_own_password,
    client_from,
    must_change_password,
    user_for_identity,
)

log = logging.getLogger("auth")

USER_KEY = "current_user"
#: The id of this tab's login session in the store (absent: a login that lasts as long as the tab).
SESSION_KEY = "_login_session"
#: When this tab last slid its session's idle clock.
_TOUCHED_KEY = "_login_session_touched"
#: The digest of the login cookie this tab's session was resumed from (its connection must carry it).
_BOUND_KEY = "_login_cookie_bound"
#: What the login form says about the last session (it ran out, it was ended elsewhere).
_NOTICE_KEY = "_login_notice"
#: Streamlit's XSRF cookie: its token binds a login's hand-over code to the browser that logged in.
XSRF_COOKIE = "_streamlit_xsrf"
_ENDED_ELSEWHERE = "登录已失效（可能已在其他页面退出登录），请重新登录"
#: The routes beside the app (serve.py); off until serve.py mounts them.
_ROUTES = {"on": False, "base": ""}
# The account whose login in this session used the password an administrator set (initial or reset):
# only such a session may choose a new one without typing the old (decision 0014).
_FRESH_KEY = "_logged_in_with_set_password"
_CHANGED_KEY = "_password_changed"
# The user app.py checked against the store in this run, handed to the page's guard (which takes it, so
# it never outlives the run): one check per run instead of two. A page run without app.py checks itself.
_CHECKED_KEY = "_user_checked_this_run"


def current_user() -> CurrentUser | None:
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, CurrentUser) else None


def verified_current_user(*, hand_to_page: bool = False) -> CurrentUser | None:
    """The session's user, checked against the store (a forged or stale one is logged and logged out).

    A browser session without a user finds it from the login cookie, if any (a reload, a bookmark, a
    new tab); a tab with a login session checks that it still runs (its idle and absolute limits, the
    account unchanged) and slides its idle clock.
    ``hand_to_page``: app.py's check, handed to this run's page guard (:func:`require_page` takes it)."""
    user = current_user()
    if user is None and st.session_state.get(USER_KEY) is None:
        user = _resume_from_cookie()
    if user is None:
        return None
    now = clock.now()
    session_id = st.session_state.get(SESSION_KEY)
    if not _carries_its_cookie():  # another connection attached to this tab: it gets nothing of it
        deny(user, "session without its login cookie (taken over by its id?)", session_id)
        st.session_state.clear()
        return None
    with engine().connect() as conn:
        verified = verified_user(conn, user)
        over = sessions.check(conn, session_id, user, now) if verified and session_id is not None else None
    if verified is None or over is not None:
        st.session_state.pop(_CHECKED_KEY, None)
        _end_session(session_id, over or "credentials", None)
        logout(notice=None if over is None else SESSION_END_LABELS.get(over, _ENDED_ELSEWHERE))
        return None
    touched = st.session_state.get(_TOUCHED_KEY)
    if session_id is not None and (touched is None or now - touched >= sessions.TOUCH_EVERY):
        # Beside the run, never in its way: a busy store only delays the idle clock by a beat.
        threading.Thread(target=sessions.touch, args=(engine(), session_id, now), daemon=True).start()
        st.session_state[_TOUCHED_KEY] = now
    if hand_to_page:
        st.session_state[_CHECKED_KEY] = verified
    return verified


def _resume_from_cookie() -> CurrentUser | None:
    """The user of the login cookie this browser sent, if its session still runs (else it is ended)."""
    token = _cookie(sessions.COOKIE)
    if token is None:
        return None
    with engine().connect() as conn:
        found, over = sessions.resume(conn, token, clock.now())
    if found is None:
        return None
    if over is not None:
        _end_session(found.session_id, over, None)
        st.session_state[_NOTICE_KEY] = SESSION_END_LABELS.get(over, _ENDED_ELSEWHERE)
        return None
    st.session_state[USER_KEY] = found.user
    st.session_state[SESSION_KEY] = found.session_id
    st.session_state[_BOUND_KEY] = sessions.digest(token)
    if found.fresh_password:  # logged in with the administrator's password: may set a new one (0014)
        st.session_state[_FRESH_KEY] = found.user.id
    return found.user


def client_address() -> str | None:
    """The address this login attempt came from (:func:`services.auth.client_from`)."""
    return client_from(st.context.ip_address, st.context.headers.get("X-Forwarded-For"))


def _carries_its_cookie() -> bool:
    """Whether this run's connection sent the login cookie the tab's session was resumed from. A
    Streamlit session can be joined by anyone who knows its id (it travels in upload URLs and so in a
    proxy's logs): the tab's user is given only to the browser that holds the cookie. A tab that logged
    in by the form has no cookie yet until the login route sets it and reloads the page."""
    bound = st.session_state.get(_BOUND_KEY)
    if bound is None or not cookie_sessions():
        return True
    token = _cookie(sessions.COOKIE)
    return token is not None and sessions.digest(token) == bound


def _cookie(name: str) -> str | None:
    """The value of cookie ``name`` this browser sent with its connection (None without one)."""
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and value else None


def _end_session(session_id: int | None, reason: str, actor: CurrentUser | None) -> None:
    """End the login session ``session_id`` in the store (nothing when there is none or it has ended)."""
    if session_id is not None and reason != "ended":
        sessions.end(uow(), session_id=session_id, reason=reason, now=clock.now(), actor=actor)


# ---------------------------------------------------------------------------------------------------
# The routes beside the app (serve.py): the cookie is set and cleared there, never by the script
# ---------------------------------------------------------------------------------------------------


def enable_cookie_sessions(base_path: str = "") -> None:
    """Called by serve.py, which serves ``/auth/session`` and ``/auth/logout`` in this process."""
    _ROUTES["on"], _ROUTES["base"] = True, base_path.strip("/")


def cookie_sessions() -> bool:
    """Whether logins are kept in a cookie (the app runs under serve.py)."""
    return bool(_ROUTES["on"])


def route(path: str) -> str:
    """The URL path of a route beside the app, under ``server.baseUrlPath``."""
    base = str(_ROUTES["base"])
    return f"/{base}{path}" if base else path


def browser_binding(xsrf_cookie: str | None) -> str | None:
    """The XSRF token inside Streamlit's XSRF cookie (hex), the same for every request of a browser
    (the cookie's mask changes, its token does not); None without a readable cookie."""
    from streamlit.web.server.starlette.starlette_app_utils import decode_xsrf_token_string

    token, _ = decode_xsrf_token_string(xsrf_cookie or "")
    return token.hex() if token else None


def browser_id() -> str | None:
    """This browser, the same across reloads, new tabs and bookmarks (the token in Streamlit's XSRF
    cookie, kept until the browser closes); None where no cookie came with the connection (a test
    harness). The 随手拍 rate limit counts per browser with it, so a reload does not reset the count."""
    return browser_binding(_cookie(XSRF_COOKIE))


def logout_check(binding: str) -> str:
    """What ``/auth/logout`` must be given to clear the cookie: proof the request comes from this app's
    page in this browser (a link on another site cannot know it), not the token itself."""
    return sessions.digest(f"logout|{binding}")[:32]


def _redirect(url: str) -> None:
    """Send the browser to ``url`` (a full page load), as ``st.login`` does."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return
    msg = ForwardMsg()
    msg.auth_redirect.url = url
    ctx.enqueue(msg)


def landing_page(user: CurrentUser, page: str | None = None) -> str:
    """Where ``user`` goes after logging in on ``page``: that page when one was asked for by URL, else
    the role's home (``domain.access.HOME_PAGE``)."""
    if page and page != "home":
        return page
    return HOME_PAGE[user.role]


def _keep_signed_in(user: CurrentUser, *, fresh: bool, page: str | None) -> None:
    """Under serve.py: start a login session and send the browser through ``/auth/session`` for its
    cookie, landing on :func:`landing_page`; the run stops. Otherwise the login lasts with the tab."""
    if not cookie_sessions():
        return
    binding = browser_binding(_cookie(XSRF_COOKIE))
    if binding is None:  # XSRF protection off, or no cookie yet: the login lasts with the tab
        log.warning("no XSRF cookie: the login is kept in this tab only")
        return
    try:
        handoff = sessions.start(uow(), user=user, binding=binding, now=clock.now(), fresh_password=fresh)
    except sessions.SessionRefused as exc:
        st.error(md_text(str(exc)))
        return
    st.session_state[SESSION_KEY] = handoff.session_id
    target = route("/" + landing_page(user, page))
    _redirect(f"{route('/auth/session')}?code={quote(handoff.code)}&next={quote(target)}")
    st.stop()


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
        st.button(
            "使用统一身份认证登录", type="primary", on_click=st.login, args=(provider,) if provider else ()
        )
        return
    claim = str(st.secrets["auth"].get("username_claim", "preferred_username"))
    try:
        with reader() as conn:
            st.session_state[USER_KEY] = user_for_identity(conn, st.user.to_dict(), claim)
    except LoginRefused as exc:
        st.error(md_text(str(exc)))
        st.button("退出统一身份认证", on_click=st.logout)
    else:
        st.rerun()


def login_form(page: str | None = None) -> None:
    """The 用户名 / 密码 / 登录 form (or, with ``[auth]`` configured, the OIDC button); on success the user
    is put in the session and the app reruns (under serve.py: through the cookie route, landing on
    :func:`landing_page` of ``page``). A store without any account shows 创建首个管理员 instead."""
    with reader() as conn:
        first_run = not has_accounts(conn)
    if first_run:
        first_admin_form()
        return
    oidc, provider = oidc_provider()
    if oidc:
        _oidc_login(provider)
        return
    st.title("乡镇数字驾驶舱")
    notice = st.session_state.pop(_NOTICE_KEY, None)
    if notice:
        st.info(notice)
    with st.form("login"):
        username = st.text_input("用户名", max_chars=64)
        password = st.text_input("密码", type="password", max_chars=128)
        submitted = st.form_submit_button("登录", type="primary")
    if submitted:
        try:
            user = authenticate(uow(), username, password, clock.now(), client_address())
        except LoginRefused as exc:
            st.error(md_text(str(exc)))
        else:
            st.session_state[USER_KEY] = user
            with reader() as conn:
                fresh = must_change_password(conn, user.id)
            if fresh:
                st.session_state[_FRESH_KEY] = user.id
            _keep_signed_in(user, fresh=fresh, page=page)
            st.rerun()


def link_to(path: str, label: str, icon: str | None = None) -> None:
    """A link to the page file ``path`` inside the app (no new session); a page run on its own (an
    AppTest, a server still in its pages/ mode) has no navigation to link through: a plain link then."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(path, label=label, icon=icon)
    except StreamlitAPIException:
        url = path.removeprefix("pages/").removesuffix(".py")
        st.markdown(f"<a href='{url}' target='_self'>{md_text(label, html=True)}</a>", unsafe_allow_html=True)


def citizen_links() -> None:
    """Under the login form: citizens do not log in; their way in is 随手拍, and 进度查询 for a report
    they made (app.py draws these: the links need its navigation)."""
    st.caption("群众反映问题无需登录：")
    with st.container(horizontal=True):
        st.page_link("pages/report.py", label="随手拍上报", icon=":material/photo_camera:")
        st.page_link("pages/track.py", label="进度查询", icon=":material/search:")


def first_admin_form() -> None:
    """创建首个管理员: the first visit to a store without any account (as Grafana or Gitea do on first run).
    The service refuses once any account exists, so two browsers submitting at once make one admin."""
    st.title("乡镇数字驾驶舱")
    st.subheader("创建首个管理员")
    with reader() as conn:
        tops = top_units(conn)
    if not tops:
        from services.accounts import NO_UNITS

        st.warning(NO_UNITS)
        return
    st.caption(
        "系统中还没有任何账号。请创建第一个系统管理员，创建后即以该账号登录；此后本页不再出现，"
        "其他账号由管理员在「账号管理」中创建。"
    )
    names = {uid: f"{name}（{code}）" for uid, name, code in tops}
    with st.form("first_admin"):
        username = st.text_input("用户名", max_chars=64)
        display_name = st.text_input("姓名", max_chars=50)
        scope = st.selectbox("管辖区划", list(names), format_func=names.get, disabled=len(names) == 1)
        password = st.text_input("密码", type="password", max_chars=128, help=f"至少 {MIN_PASSWORD} 位")
        repeat = st.text_input("再次输入密码", type="password", max_chars=128)
        submitted = st.form_submit_button("创建首个管理员", type="primary")
    if not submitted:
        return
    try:
        user = create_first_admin(
            uow(),
            username=username,
            display_name=display_name,
            password=password,
            repeat=repeat,
            scope_unit_id=scope,
            now=clock.now(),
        )
    except FieldProblems as exc:
        show_problems(exc)
    except AccountRefused as exc:  # the first run is over (another browser was first), or no units
        st.error(md_text(str(exc)))
        st.button("返回登录")
    else:
        st.session_state[USER_KEY] = user
        _keep_signed_in(user, fresh=False, page=None)
        st.rerun()


def password_change_required(user: CurrentUser) -> bool:
    """If the store says ``user`` must change their password, show only the 修改密码 form and return True
    (the caller stops). A session that did not log in with that password (it was reset since) ends."""
    with reader() as conn:
        must = must_change_password(conn, user.id)
    if not must:
        st.session_state.pop(_FRESH_KEY, None)
        if st.session_state.pop(_CHANGED_KEY, False):
            st.toast("密码已修改")
        return False
    if st.session_state.get(_FRESH_KEY) != user.id:
        logout()
        st.warning("您的密码已被管理员重置，请使用管理员提供的临时密码重新登录。")
        login_form()
        return True
    _password_change_form(user)
    return True


def _password_change_form(user: CurrentUser) -> None:
    st.title("修改密码")
    st.info(
        f"{md_text(user.display_name)}，您正在使用管理员设置的初始或临时密码。"
        "请先设置自己的新密码，之后才能使用系统。"
    )
    with st.form("change_password"):
        new = st.text_input("新密码", type="password", max_chars=128, help=f"至少 {MIN_PASSWORD} 位")
        repeat = st.text_input("再次输入新密码", type="password", max_chars=128)
        submitted = st.form_submit_button("修改密码", type="primary")
    if st.button("退出登录", key="change_password_logout"):
        logout(clear_cookie=True)
        st.rerun()
    if not submitted:
        return
    try:
        change_own_password(uow(), user=user, new_password=new, repeat=repeat)
    except FieldProblems as exc:
        show_problems(exc)
    except LoginRefused as exc:
        st.error(md_text(str(exc)))
    else:
        st.session_state.pop(_FRESH_KEY, None)
        st.session_state[_CHANGED_KEY] = True
        # The change ended every session of the account, this one too (its stamp): a new one for this tab.
        st.session_state.pop(SESSION_KEY, None)
        _keep_signed_in(user, fresh=False, page=None)
        st.rerun()


def needs_password_change(user: CurrentUser) -> bool:
    """Whether the store says ``user`` must change their password first (read only; nothing drawn)."""
    with reader() as conn:
        return must_change_password(conn, user.id)


def logout(*, notice: str | None = None, clear_cookie: bool = False) -> None:
    """End the session's login and forget everything the pages kept (a feed, a selected venue …), so the
    next person to log in on this browser sees nothing of the last one's scope.

    The login session in the store ends too (every tab of this browser is logged out at its next run).
    ``clear_cookie`` (the 退出登录 button): the browser also goes through ``/auth/logout``, which
    deletes the cookie, and lands on the login page. ``notice``: what the login form then says."""
    session_id, user = st.session_state.get(SESSION_KEY), current_user()
    st.session_state.clear()
    if notice:
        st.session_state[_NOTICE_KEY] = notice
    _end_session(session_id, "logout", user)
    if clear_cookie and cookie_sessions() and _cookie(sessions.COOKIE):
        binding = browser_binding(_cookie(XSRF_COOKIE))
        if binding is not None:
            _redirect(f"{route('/auth/logout')}?check={logout_check(binding)}")
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
    if checked != user:  # not checked this run by app.py (or another user): check here
        if verified_current_user() is None:
            st.error("登录状态无效，请重新登录。")
            st.stop()
        if password_change_required(user):  # app.py's check includes this one
            st.stop()
    st.session_state.pop(_CHECKED_KEY, None)
    if not user.may_open(page):
        deny(user, f"page {page}", None)
        st.error(f"您的角色（{user.role.label}）无权访问此页面。")
        st.stop()
    if page not in WITHOUT_AREA and no_area_yet():
        st.title(PAGE_TITLES.get(page, "数字驾驶舱"))
        if user.may_open("boundaries"):
            st.info("尚未导入区划：请先导入本地区的边界文件，地图、事件、巡检等功能随后即可使用。")
            link_to("pages/boundaries.py", "前往区划导入", ":material/upload_file:")
        else:
            st.info("尚未导入区划：请联系系统管理员导入本地区的边界文件后再使用。")
        st.stop()
    return user


#: Pages that work before any boundary is imported (a new store holds only the placeholder unit): the
#: administrator's pages. Every other page needs the area, and says so instead of drawing a map of nothing.
WITHOUT_AREA = frozenset({"admin", "boundaries", "track"})
PAGE_TITLES = {
    "home": "乡镇数字驾驶舱 · 总览",
    "risk_map": "五色图 · 区域平安风险",
    "events": "事件流",
    "report": "随手拍 · 问题上报",
    "inspections": "平安检查",
    "my_day": "我的今日",
    "big_screen": "指挥大屏",
}


def no_area_yet() -> bool:
    """Whether the store holds only the placeholder unit of a new store (no boundary imported yet)."""
    from services.boundaries import awaits_first_import

    return awaits_first_import(tree())
