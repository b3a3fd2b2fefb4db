"""The Open311 API as other systems meet it in tests: the square area's store with API keys, and the
routes served by a real uvicorn server on a free port (tests of the API, its schema and published
clients share these)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
import uvicorn
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette

from api.open311 import make_routes
from db.engine import make_engine
from db.migrate import upgrade
from db.models import AuditLog, Event
from db.uow import UnitOfWork
from services import api_keys, clock
from services.locate import forget_index
from tests.builders import grid_centre, make_square_area


@contextmanager
def square_store(url: str) -> Iterator[tuple[Engine, Callable[..., tuple[int, str]]]]:
    """A migrated store holding the square area, and ``key(channel, area_code, **kw)`` → (id, key)."""
    engine = make_engine(url)
    upgrade(engine)
    forget_index()
    with engine.begin() as conn:
        make_square_area(conn)

    def key(channel: str, area: str, **kw) -> tuple[int, str]:
        kw.setdefault("per_minute", 100_000)
        return api_keys.create_key(
            UnitOfWork(engine),
            actor=None,
            channel=channel,
            label=f"{channel}接口",
            area_code=area,
            now=clock.now(),
            **kw,
        )

    try:
        yield engine, key
    finally:
        engine.dispose()
        forget_index()


@contextmanager
def served(engine: Engine) -> Iterator[str]:
    """The API's routes over ``engine`` on a real server; yields its base address (http://127.0.0.1:port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = Starlette(routes=make_routes(lambda: engine))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# -- shared by the tests of hostile and careless clients (test_open311_clients.py, test_open311_hostile.py)

BASE = "/open311/v2"
CJK = re.compile(r"[\u4e00-\u9fff]")


def report_fields(key: str, i: int = 0, **extra: str) -> dict[str, str]:
    """A good POST's fields, at the centre of grid ``i`` (0..3), with ``extra`` added or replaced."""
    lon, lat = grid_centre(i)
    return {
        "api_key": key,
        "service_code": "urban",
        "lat": str(lat),
        "long": str(lon),
        "description": "路口占道经营",
        **extra,
    }


def counts(engine) -> tuple[int, int]:
    """(events, audit rows) in the store: a refused request leaves both as they were."""
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Event)).scalar_one(),
            conn.execute(select(func.count()).select_from(AuditLog)).scalar_one(),
        )


def refused(answer: requests.Response, status: int, *words: str) -> None:
    """The specification's error list, in Chinese, naming ``words``."""
    assert answer.status_code == status, answer.text
    errors = answer.json()
    assert isinstance(errors, list) and errors and all(set(e) == {"code", "description"} for e in errors)
    text = " ".join(e["description"] for e in errors)
    assert CJK.search(text) and all(w in text for w in words), text
