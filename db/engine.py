"""The one engine factory: ``DATABASE_URL`` (default: the embedded SQLite store) → a tuned Engine."""

from __future__ import annotations

import logging
import os
import re
import select
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from db.uow import AUDITED, USE_CASE, WRITE_TRANSACTION, AuditMissing

log = logging.getLogger("db.engine")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = ROOT / "data" / "cockpit.db"


def database_url() -> str:
    """The configured store: ``DATABASE_URL`` or ``sqlite:///<repo>/data/cockpit.db``."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def _tune_sqlite(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the simulator write while pages read; busy_timeout makes writers queue, not fail;
    # foreign keys are off by default in SQLite and the schema relies on them.
    # The driver's own implicit BEGIN is switched off: _begin_sqlite says how each transaction begins.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # The WAL is folded into the file by the checkpointer thread (decision 0060); a writer does it
    # itself only when the WAL has grown this far (the checkpointer stopped or could not keep up).
    cur.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
    cur.close()


#: What a connection says when the store's file is gone (services.faults tells it in Chinese).
STORE_FILE_MISSING = "store file missing: the database file was removed after the store was opened"


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _watch_store_file(engine: Engine, path: Path) -> None:
    """Once the store's file exists, no connection creates it again, and none writes into a file that
    was removed or replaced: SQLite would silently make a new empty store at the path (every page then
    "no such table"), and a pooled connection would acknowledge writes into the deleted file, lost on
    close. A connection checked out is dropped when the file at the path is no longer the one it opened
    (a restored backup is opened afresh); a new one is refused while the file is missing."""
    seen = {"file": path.exists()}

    def connect(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
        if seen["file"] and not path.exists():
            raise sqlite3.OperationalError(STORE_FILE_MISSING)
        # None: the dialect connects as usual

    def opened(_dbapi_conn: Any, record: Any) -> None:
        seen["file"] = True
        record.info["store_file"] = _inode(path)

    def checkout(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("store_file") != _inode(path):
            raise DisconnectionError("the store file was removed or replaced since this connection opened")

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "connect", opened)
    event.listen(engine, "checkout", checkout)


def _begin_sqlite(conn: Connection) -> None:
    """A unit of work begins with BEGIN IMMEDIATE: it takes the write lock up front and waits its turn
    in busy_timeout, instead of starting as a reader and failing with "database is locked" when two
    writers both try to upgrade (SQLite cannot wait for that deadlock). Reads begin deferred."""
    immediate = conn.get_execution_options().get(WRITE_TRANSACTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


#: A pooled PostgreSQL connection idle this long is pinged at checkout (decision 0058). One busy a
#: moment ago is only looked at: under load a connection is back in use within milliseconds.
PING_AFTER_IDLE_S = 5.0


def _checked_in(_dbapi_conn: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _transactional_again(dbapi_conn: Any, record: Any) -> None:
    """PostgreSQL's safety net behind :func:`db.uow.reading`, which switches the driver's autocommit itself:
    a connection that comes back to the pool in autocommit (its block closed it, or switching back failed)
    is switched back here, after the pool's own reset, or dropped: a unit of work never gets one."""
    if getattr(dbapi_conn, "autocommit", False):
        try:
            dbapi_conn.autocommit = False
        except Exception:
            record.invalidate()


def _closed_by_server(engine: Engine) -> Any:
    """The checkout listener that drops a pooled PostgreSQL connection the server has closed, instead
    of a pre-ping ("SELECT 1" on every checkout: ~0.1 ms of the API's CPU per request):
    - an idle connection has nothing to read unless the server said goodbye (a restart, a terminated
      backend, an idle timeout: FATAL, then EOF). One poll of its socket tells; anything readable, or a
      socket already gone, counts as closed;
    - a connection idle longer than :data:`PING_AFTER_IDLE_S` is pinged as well: a server that vanished
      without a goodbye (a host rebooted, an address moved to a standby, a NAT entry expired) answers
      only when asked.
    The pool opens a fresh connection in place of one found closed."""
    dialect = engine.dialect

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        try:
            fd = dbapi_conn.pgconn.socket
        except Exception as exc:  # psycopg: the connection is already closed
            raise DisconnectionError("pooled connection already closed") from exc
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        if poller.poll(0):
            raise DisconnectionError("the server closed this pooled connection")
        idle_since = record.info.pop("idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_S:
            try:
                dialect.do_ping(dbapi_conn)
            except Exception as exc:
                raise DisconnectionError("a pooled connection idle for a while did not answer") from exc

    return checkout


# -- SQLite's checkpoints off the writers' path (decision 0060) ----------------------------------------

#: WAL pages after which a committing writer folds the WAL itself: SQLite's default is 1,000, and that
#: commit then took 5–190 ms (44 % of an API batch's commit time on the town store).
WRITER_CHECKPOINT_PAGES = 10_000
#: How often the checkpointer looks at each store's WAL.
CHECKPOINT_EVERY_S = 0.1
#: ``SQLITE_CHECKPOINTER=0``: no checkpointer thread in this process (the writers fold the WAL).
CHECKPOINTER_ENV = "SQLITE_CHECKPOINTER"

_stores: dict[str, list[Any]] = {}  # path → [the engines on it (weak), the WAL's last change seen]
_stores_lock = threading.Lock()
_checkpointer: threading.Thread | None = None


def fold_wal(path: str, seen: int | None = None) -> tuple[int | None, tuple[int, int] | None]:
    """One passive checkpoint of the store at ``path`` when its WAL changed since ``seen`` (its
    modification time, ns): copies the committed pages into the file without holding up writers or
    readers. Returns the WAL's change time now and (pages in the WAL, pages folded), or None when
    nothing was done: no WAL, unchanged, the file missing (never created here), or SQLite busy."""
    try:
        changed = os.stat(f"{path}-wal").st_mtime_ns
    except OSError:
        return seen, None
    if changed == seen:
        return seen, None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0)
    except sqlite3.Error:
        return seen, None
    try:
        busy, pages, folded = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error:
        return seen, None
    finally:
        conn.close()
    return changed, (None if busy else (int(pages), int(folded)))


def _checkpoint_forever() -> None:
    while True:
        time.sleep(CHECKPOINT_EVERY_S)
        with _stores_lock:
            for path in [p for p, (engines, _) in _stores.items() if not engines]:
                del _stores[path]  # its engines are gone
            watched = [(p, entry) for p, entry in _stores.items()]
        for path, entry in watched:
            try:
                entry[1], _ = fold_wal(path, entry[1])
            except Exception:  # never let one store stop the others' checkpoints
                log.warning("checkpoint of %s failed", path, exc_info=True)


def _checkpointed(engine: Engine, path: str) -> None:
    """Fold ``engine``'s WAL by the process's checkpointer thread (started on the first store)."""
    global _checkpointer
    with _stores_lock:
        _stores.setdefault(str(Path(path).resolve()), [weakref.WeakSet(), None])[0].add(engine)
        if _checkpointer is None:
            _checkpointer = threading.Thread(
                target=_checkpoint_forever, name="sqlite-checkpoint", daemon=True
            )
            _checkpointer.start()


def unwatch(path: str) -> None:
    """Stop folding the WAL of the store at ``path`` in this process (a test that copies the file and
    its WAL as a power cut would leave them, with writers that never fold either)."""
    with _stores_lock:
        _stores.pop(str(Path(path).resolve()), None)


def checkpointed(engine: Engine) -> bool:
    """Whether the checkpointer folds ``engine``'s WAL."""
    with _stores_lock:
        return any(engine in engines for engines, _ in _stores.values())


_store_keys: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def store_key(engine: Engine) -> str:
    """The engine's store as a key for a per-store cache (its URL, password hidden): the same for two
    engines on one store, rendered once per engine (~3 µs a rendering; intake asks 4 times a report)."""
    key = _store_keys.get(engine)
    if key is None:
        key = _store_keys[engine] = engine.url.render_as_string(hide_password=True)
    return key


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
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
        event.listen(engine, "begin", _begin_sqlite)
        if path and path != ":memory:" and not path.startswith("file:"):
            _watch_store_file(engine, Path(path))
            if os.environ.get(CHECKPOINTER_ENV, "1") != "0":
                _checkpointed(engine, path)
        if os.environ.get("AUDIT_GUARD", "1") != "0":
            install_audit_guard(engine)
        return engine
    if "pool_pre_ping" not in kwargs:  # a socket look at checkout, not a round trip (decision 0058)
        kwargs["pool_pre_ping"] = False
        engine = create_engine(url, **kwargs)
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "checkout", _closed_by_server(engine))
    else:
        engine = create_engine(url, **kwargs)
    event.listen(engine, "checkin", _transactional_again)
    if os.environ.get("AUDIT_GUARD", "1") != "0":
        install_audit_guard(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------------------------------------
# The trail's guard (decision 0006), the safety net under db.uow.UnitOfWork.commit: a transaction
# opened by a unit of work that wrote business tables must hold an audit_log row, or its commit fails.
# Writes outside a unit of work (migrations, the demo seed, test set-up) are not use cases.
# ---------------------------------------------------------------------------------------------

AUDIT_TABLES = frozenset({"audit_log", "audit_head"})
_DML = re.compile(
    r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)\s+"?(\w+)',
    re.IGNORECASE,
)
_WRITTEN = "written_tables"


def _guard_statement(conn, _cursor, statement, _params, _context, _executemany) -> None:
    if USE_CASE not in conn.info:
        return
    m = _DML.match(statement)
    if m is None:
        return
    table = m.group(1).lower()
    if table in AUDIT_TABLES:
        conn.info[AUDITED] = True
    else:
        conn.info.setdefault(_WRITTEN, set()).add(table)


def _guard_commit(conn) -> None:
    tables = conn.info.pop(_WRITTEN, None)
    if tables and USE_CASE in conn.info and not conn.info.get(AUDITED):
        raise AuditMissing(
            f"{conn.info[USE_CASE]} changed {', '.join(sorted(tables))} without an audit_log row"
            " (全留痕: call services.audit.record in the same unit of work)"
        )


def _guard_end(conn: Connection) -> None:
    if conn.invalidated:  # a lost connection: nothing to clear, and asking for .info would raise
        return
    conn.info.pop(_WRITTEN, None)


def install_audit_guard(engine: Engine) -> None:
    """Fail the commit of a unit of work's transaction that wrote business tables but no audit row.

    Installed by :func:`make_engine` unless ``AUDIT_GUARD=0``.
    """
    event.listen(engine, "begin", _guard_end)
    event.listen(engine, "before_cursor_execute", _guard_statement)
    event.listen(engine, "commit", _guard_commit)
    event.listen(engine, "rollback", _guard_end)
