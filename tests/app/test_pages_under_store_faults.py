"""Every page with its store read-only, full, and (PostgreSQL) with its backends terminated between two
runs: pages that only read show their figures, a write says in Chinese what happened and stores nothing,
and no exception reaches the person (issue 12, "test every page ...")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text
from streamlit.testing.v1 import AppTest

from db.engine import make_engine
from db.models import Event
from domain.access import PAGE_ROLES
from services.auth import user_by_username
from services.faults import MESSAGES, Fault
from services.locate import forget_index
from tests.app.conftest import ROOT, page
from tests.conftest import backend_url

ON_SQLITE = not (backend_url() or "").startswith("postgresql")
# 进度查询 is the citizens' page (no area; run through app.py by its own tests).
PAGES = sorted(set(PAGE_ROLES) - {"track"})


def _copy(seeded_store_url: str, tmp_path: Path) -> Path:
    """A consistent copy of the shared demo store (SQLite's backup API), for this test alone to break."""
    target = tmp_path / "cockpit.db"
    source = sqlite3.connect(seeded_store_url.removeprefix("sqlite:///"))
    copy = sqlite3.connect(target)
    source.backup(copy)
    copy.execute("PRAGMA journal_mode = DELETE")  # one file: a read-only open needs no -shm beside it
    copy.execute("VACUUM")  # no free page left inside the file: a write that needs a page must grow it
    copy.close()
    source.close()
    return target


def _admin(url: str):
    engine = make_engine(url)
    with engine.connect() as conn:
        admin = user_by_username(conn, "demo_admin")
    engine.dispose()
    assert admin is not None
    return admin


def _events(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    engine.dispose()
    return count


def _app(admin, key: str):
    """The page ``key`` as the app runs it: through app.py (its error boundary), as ``admin``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.session_state["current_user"] = admin
    return at.switch_page(f"pages/{key}.py").run()


def _send_report(at):
    """Fill the 随手拍 form at the default place and submit it (past the possible-duplicate offer). The
    description is 2,000 characters (6 KB): more than a page of the file, so the write must grow it."""
    next(s for s in at.selectbox if s.label == "事项类别").set_value("城镇管理")
    next(t for t in at.text_input if t.label == "标题").input("测试：存储故障时的上报")
    next(t for t in at.text_area if t.label == "问题描述").input("门口堆物挡住通道" * 250)
    at = next(b for b in at.button if b.label == "提交").click().run()
    again = [b for b in at.button if b.label == "不是同一件事，仍然新建"]
    return again[0].click().run() if again else at


def _only(at, allowed: set[str]) -> None:
    assert not at.exception, [e.value for e in at.exception]
    shown = {e.value.split("（事件编号", 1)[0] for e in at.error}
    assert all(any(a in s for a in allowed) for s in shown), shown


@pytest.mark.skipif(
    not ON_SQLITE,
    reason="a read-only SQLite file (PostgreSQL: no hot standby here, and default_transaction_read_only is undone by the readers' SET SESSION … READ WRITE)",
)
def test_on_a_read_only_store_every_page_reads_and_a_report_is_refused_as_read_only(
    seeded_store_url, tmp_path, monkeypatch
):
    path = _copy(seeded_store_url, tmp_path)
    admin = _admin(f"sqlite:///{path}")
    before = _events(f"sqlite:///{path}")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///file:{path}?mode=ro&uri=true")
    forget_index()
    for key in PAGES:
        at = _app(admin, key)
        _only(at, {MESSAGES[Fault.READ_ONLY]})
        assert at.main.children, key  # the page drew something: read-only reading works
    at = _send_report(page("pages/report.py").run())  # a citizen, no login
    assert not at.exception
    assert any(MESSAGES[Fault.READ_ONLY] in e.value for e in at.error), [e.value for e in at.error]
    assert not any("上报成功" in s.value for s in at.success)
    assert _events(f"sqlite:///{path}") == before


@pytest.mark.skipif(not ON_SQLITE, reason="SQLite's page limit stands in for a full disk")
def test_on_a_full_store_every_page_reads_and_a_report_is_refused_as_full(
    seeded_store_url, tmp_path, monkeypatch
):
    path = _copy(seeded_store_url, tmp_path)
    url = f"sqlite:///{path}"
    admin = _admin(url)
    before = _events(url)
    monkeypatch.setenv("DATABASE_URL", url)
    forget_index()
    from components import store

    pages_now = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]

    def no_room(dbapi_conn, _record) -> None:  # every new connection of the app's engine: the disk is full
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages_now}")

    engine = store._engine(url)
    event.listen(engine, "connect", no_room)
    engine.dispose()
    try:
        for key in PAGES:
            _only(_app(admin, key), {MESSAGES[Fault.FULL]})
        at = _send_report(page("pages/report.py").run())  # a citizen, no login
        assert not at.exception
        assert any(MESSAGES[Fault.FULL] in e.value for e in at.error), [e.value for e in at.error]
    finally:
        event.remove(engine, "connect", no_room)
        engine.dispose()
    assert _events(url) == before


@pytest.mark.skipif(ON_SQLITE, reason="PostgreSQL backends to terminate")
def test_after_its_backends_are_terminated_every_page_runs_again_without_an_error(
    seeded_store_url, monkeypatch
):
    admin = _admin(seeded_store_url)
    monkeypatch.setenv("DATABASE_URL", seeded_store_url)
    forget_index()
    killer = make_engine(seeded_store_url)
    database = killer.url.database
    for key in PAGES:
        at = _app(admin, key)
        _only(at, set())
        with killer.connect() as conn:  # every other connection to the store, the app's pooled ones too
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar_one()
            conn.commit()
        assert killed >= 1, key
        at.run()
        _only(at, set())
    killer.dispose()
