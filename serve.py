"""The ASGI entry (decision 0017): the app (app.py) and, in the same process, the routes beside it that a
Streamlit script cannot be: setting and clearing the HttpOnly login cookie, and keeping an inspector's
unsaved form.

``make run`` starts it with ``python -m streamlit run serve.py --server.address … --server.port …``
(Streamlit finds the ``st.App`` below and serves it with uvicorn, with every ``[server]`` option of
.streamlit/config.toml, XSRF protection included); ``uvicorn serve:app`` works as well.

- ``GET /auth/session?code=…&next=/my_day``: a login's one-time code (services.sessions.start), from
  the browser that logged in (its XSRF token), becomes the session cookie; then on to ``next``.
- ``GET /auth/logout?check=…``: the 退出登录 button's way out: the cookie is deleted (the session has
  ended in the store already); ``check`` proves the request comes from this app's page in this browser.
- ``POST /auth/draft``: the unsaved inspection form of the signed-in session (JSON), with Streamlit's
  XSRF header, kept in the store until saved or the session ends.
- ``/open311/v2/…``: the Open311 GeoReport v2 API for other systems (api/open311.py, decision 0024).

The cookie: HttpOnly, SameSite=Strict, Path=/, Max-Age = the session's remaining lifetime, Secure when
the request came over HTTPS (directly or as ``X-Forwarded-Proto: https`` from the proxy in front);
``COCKPIT_COOKIE_SECURE=always`` or ``never`` overrides.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import streamlit as st
from sqlalchemy import Engine
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.open311 import make_routes as open311_routes
from components.auth import XSRF_COOKIE, browser_binding, enable_cookie_sessions, logout_check, route
from db.engine import database_url, make_engine
from db.uow import UnitOfWork
from services import clock, sessions
from services.heap import freeze_startup_heap

log = logging.getLogger("serve")
SECURE_ENV = "COCKPIT_COOKIE_SECURE"
#: Where ``next`` may send the browser: one page path of this app (no other host, no ``//``).
_NEXT = re.compile(r"^/(?:[a-z0-9_]+/)?[a-z0-9_]*$")
_engine: dict[str, Engine] = {}
_lock = threading.Lock()


def _store() -> Engine:
    """This process's engine for the routes (the pages keep theirs in components.store)."""
    url = database_url()
    with _lock:
        if url not in _engine:
            _engine[url] = make_engine(url)
        return _engine[url]


def _base() -> str:
    try:
        return (st.get_option("server.baseUrlPath") or "").strip("/")
    except Exception:  # the option may be unset outside a configured server
        return ""


def _secure(request: Request) -> bool:
    setting = os.environ.get(SECURE_ENV, "auto").strip().lower()
    if setting in ("always", "1", "true", "yes"):
        return True
    if setting in ("never", "0", "false", "no"):
        return False
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the code in the URL goes nowhere else
    return response


def _home() -> str:
    return route("/")


def session_cookie(request: Request) -> Response:
    """Exchange a login's one-time code for the session cookie; on to ``next`` either way (without a
    cookie the page shows the login form again)."""
    target = request.query_params.get("next", "")
    if not _NEXT.match(target):
        target = _home()
    binding = browser_binding(request.cookies.get(XSRF_COOKIE))
    cookie = None
    if binding is not None:
        cookie = sessions.redeem(
            UnitOfWork(_store()), code=request.query_params.get("code", ""), binding=binding, now=clock.now()
        )
    response = RedirectResponse(target, status_code=303)
    if cookie is not None:
        response.set_cookie(
            sessions.COOKIE,
            cookie.token,
            max_age=cookie.max_age,
            path=_home(),
            secure=_secure(request),
            httponly=True,
            samesite="strict",
        )
    return _no_store(response)


def clear_cookie(request: Request) -> Response:
    """Delete the session cookie (the script ended the session in the store) and go to the login page."""
    response = RedirectResponse(_home(), status_code=303)
    binding = browser_binding(request.cookies.get(XSRF_COOKIE))
    if binding is not None and request.query_params.get("check", "") == logout_check(binding):
        response.delete_cookie(
            sessions.COOKIE, path=_home(), secure=_secure(request), httponly=True, samesite="strict"
        )
    return _no_store(response)


async def keep_draft(request: Request) -> Response:
    """Keep the signed-in session's unsaved form (JSON object; ``null`` drops it)."""
    from starlette.concurrency import run_in_threadpool
    from streamlit.web.server.starlette.starlette_app_utils import validate_xsrf_token

    if not validate_xsrf_token(request.headers.get("X-Xsrftoken"), request.cookies.get(XSRF_COOKIE)):
        return Response(status_code=403)
    body = bytearray()
    async for chunk in request.stream():  # stopped at the limit: a body is never held whole first
        body += chunk
        if len(body) > sessions.MAX_DRAFT_BYTES:
            return Response(status_code=413)
    try:
        value = json.loads(body or b"null")
    except ValueError:
        return Response(status_code=400)
    if value is not None and not isinstance(value, dict):
        return Response(status_code=400)

    def save() -> bool:
        engine = _store()
        with engine.connect() as conn:
            session_id = sessions.session_of_token(conn, request.cookies.get(sessions.COOKIE), clock.now())
        return session_id is not None and sessions.save_draft(engine, session_id, value)

    return _no_store(Response(status_code=204 if await run_in_threadpool(save) else 401))


#: ``FRAME_ANCESTORS``: who may show the app in a frame (CSP frame-ancestors; default only the app's own
#: pages). A command centre whose wall software frames the screen sets its origin here.
FRAME_ANCESTORS_ENV = "FRAME_ANCESTORS"


class SecurityHeaders:
    """Headers on every HTTP answer (not the websocket): no framing by another site (clickjacking:
    X-Frame-Options and CSP frame-ancestors), no content-type sniffing, no referrer to other sites.
    Streamlit's own pages need inline scripts and styles, so no wider CSP is set here."""

    def __init__(self, app) -> None:
        self.app = app
        ancestors = os.environ.get(FRAME_ANCESTORS_ENV, "").strip()
        headers = [
            (b"content-security-policy", f"frame-ancestors 'self' {ancestors}".strip().encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if not ancestors:
            headers.append((b"x-frame-options", b"SAMEORIGIN"))
        self.headers = headers

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


@asynccontextmanager
async def started(_app) -> AsyncIterator[None]:
    """The server's start: what its imports made lives as long as it does (services.heap)."""
    freeze_startup_heap()
    yield


enable_cookie_sessions(_base())
_prefix = f"/{_base()}" if _base() else ""
app = st.App(
    "app.py",
    lifespan=started,
    middleware=[Middleware(SecurityHeaders)],
    routes=[
        Route(f"{_prefix}/auth/session", session_cookie, methods=["GET"]),
        Route(f"{_prefix}/auth/logout", clear_cookie, methods=["GET"]),
        Route(f"{_prefix}/auth/draft", keep_draft, methods=["POST"]),
        *open311_routes(prefix=_prefix),  # Open311 GeoReport v2 (decision 0024, docs/open311.md)
    ],
)
