"""serve.py's own routes and headers, over real HTTP (uvicorn on a free port): a draft body is read
only up to its limit (a 600 MB body was held whole before the check, ~2× its size in memory), and every
answer forbids framing by another site and content-type sniffing."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from streamlit.web.server.starlette.starlette_app_utils import generate_xsrf_token_string

from services import sessions


@pytest.fixture(scope="module")
def serve():
    """serve.py, imported as the server does; its switch to cookie logins is undone after (AppTest runs
    of the pages in this process log in without the cookie routes)."""
    from components import auth

    before = dict(auth._ROUTES)
    import serve as module

    yield module
    auth._ROUTES.update(before)


def _served(app) -> tuple[uvicorn.Server, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, port


def test_a_draft_larger_than_its_limit_is_refused_without_being_read_whole(serve):
    read: list[int] = []

    async def counted(scope, receive, send):  # counts what the route takes from the connection
        async def counting():
            message = await receive()
            read.append(len(message.get("body", b"")))
            return message

        await app(scope, counting, send)

    app = Starlette(routes=[Route("/auth/draft", serve.keep_draft, methods=["POST"])])
    server, port = _served(counted)
    token = generate_xsrf_token_string()
    chunk = b"x" * 65536
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/auth/draft")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("X-Xsrftoken", token)
        conn.putheader("Cookie", f"{serve.XSRF_COOKIE}={token}")
        conn.endheaders()
        status = None
        for _ in range(2000):  # up to 128 MB offered
            try:
                conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server answered and closed: it stopped reading
                break
            if len(read) * len(chunk) > 4 * sessions.MAX_DRAFT_BYTES + 10 * len(chunk):
                break
        conn.sock.settimeout(10)
        status = conn.getresponse().status
    finally:
        server.should_exit = True
    assert status == 413
    assert sum(read) <= sessions.MAX_DRAFT_BYTES + 2 * len(chunk)


def test_every_http_answer_forbids_framing_by_another_site_and_sniffing(serve, monkeypatch):
    app = Starlette(
        routes=[Route("/", lambda _r: PlainTextResponse("ok"))],
        middleware=[Middleware(serve.SecurityHeaders)],
    )
    server, port = _served(app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        answer = conn.getresponse()
        headers = {k.lower(): v for k, v in answer.getheaders()}
    finally:
        server.should_exit = True
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["content-security-policy"] == "frame-ancestors 'self'"
    assert headers["x-content-type-options"] == "nosniff"
    monkeypatch.setenv(serve.FRAME_ANCESTORS_ENV, "https://wall.example.gov.cn")
    wall = serve.SecurityHeaders(app)
    assert (b"content-security-policy", b"frame-ancestors 'self' https://wall.example.gov.cn") in wall.headers
    assert all(k != b"x-frame-options" for k, _ in wall.headers)  # one that names other hosts: CSP alone
