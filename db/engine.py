"""The one engine factory: ``DATABASE_URL`` (default: the embedded SQLite store) → a tuned Engine."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = ROOT / "data" / "cockpit.db"


def database_url() -> str:
    """The configured store: ``DATABASE_URL`` or ``sqlite:///<repo>/data/cockpit.db``."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _tune_sqlite(dbapi_conn, _record) -> None:
    # WAL lets the simulator write while pages read; busy_timeout makes writers queue, not fail;
    # foreign keys are off by default in SQLite and the schema relies on them.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """Create an Engine for ``url`` (default :func:`database_url`), SQLite tuned as above.

    ``hide_parameters``: a failed statement's error names the SQL, never the values (a reporter's
    phone must not reach a log or an error page through an exception message).
    """
    url = url or database_url()
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _tune_sqlite)
        if os.environ.get("AUDIT_GUARD", "1") != "0":
            install_audit_guard(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(url, **kwargs)
    if os.environ.get("AUDIT_GUARD", "1") != "0":
        install_audit_guard(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------------------------------------
# The trail's guard (decision 0006): a service use case that changes business tables must write
# an audit_log row in the same transaction, or its commit fails.
# ---------------------------------------------------------------------------------------------

AUDIT_TABLES = frozenset({"audit_log", "audit_head"})
#: Service functions that write but are helpers, not use cases: ``store_units`` is called by the
#: seed (exempt) and by test builders; ``import_boundaries``, the use case around it, records.
GUARD_HELPERS = frozenset({("geography.py", "store_units")})
_SERVICES_DIR = str(ROOT / "services") + os.sep
_DML = re.compile(
    r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"?(\w+)',
    re.IGNORECASE,
)
_exempt: ContextVar[bool] = ContextVar("audit_exempt", default=False)
_STATE = "audit_guard"


class AuditMissing(RuntimeError):
    """A service changed business tables in a transaction that wrote no audit row; nothing was committed."""


@contextmanager
def audit_exempt() -> Iterator[None]:
    """Writes inside this block need no audit row: the demo seed (one ``demo.seed`` row) and migrations."""
    token = _exempt.set(True)
    try:
        yield
    finally:
        _exempt.reset(token)


def _service_entry() -> str | None:
    """The outermost function under services/ on the stack (the use case), unless it is a helper."""
    frame, entry = sys._getframe(2), None
    while frame is not None:
        if frame.f_code.co_filename.startswith(_SERVICES_DIR):
            entry = frame
        frame = frame.f_back
    if entry is None:
        return None
    name = os.path.basename(entry.f_code.co_filename)
    if (name, entry.f_code.co_name) in GUARD_HELPERS:
        return None
    return f"services.{name[:-3]}.{entry.f_code.co_name}"


def _guard_begin(conn) -> None:
    conn.info.pop(_STATE, None)


def _guard_statement(conn, _cursor, statement, _params, _context, _executemany) -> None:
    m = _DML.match(statement)
    if m is None:
        return
    state = conn.info.setdefault(_STATE, {"audited": False, "tables": set(), "entry": None})
    table = m.group(1).lower()
    if table in AUDIT_TABLES:
        state["audited"] = True
    elif not state["audited"] and not _exempt.get():
        if state["tables"]:
            state["tables"].add(table)
        elif (entry := _service_entry()) is not None:
            state["tables"].add(table)
            state["entry"] = entry


def _guard_commit(conn) -> None:
    state = conn.info.pop(_STATE, None)
    if state and state["tables"] and not state["audited"]:
        raise AuditMissing(
            f"{state['entry']} changed {', '.join(sorted(state['tables']))} without an audit_log row"
            " (全留痕: call services.audit.record in the same transaction)"
        )


def _guard_rollback(conn) -> None:
    conn.info.pop(_STATE, None)


def install_audit_guard(engine: Engine) -> None:
    """Fail the commit of any transaction in which a service wrote business tables but no audit row.

    Installed by :func:`make_engine` unless ``AUDIT_GUARD=0``. Writes from outside services/ (test
    set-up, tools) and inside :func:`audit_exempt` are not checked.
    """
    event.listen(engine, "begin", _guard_begin)
    event.listen(engine, "before_cursor_execute", _guard_statement)
    event.listen(engine, "commit", _guard_commit)
    event.listen(engine, "rollback", _guard_rollback)
