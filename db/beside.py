"""Reads run beside a view's own, on other connections that see what it sees (decision 0065).

PostgreSQL lets a transaction export its snapshot (``pg_export_snapshot()``) and another, REPEATABLE
READ, one adopt it (``SET TRANSACTION SNAPSHOT``) while the first is open: the two see the same
committed rows, as pg_dump's parallel workers do. A view whose reads are independent can then run
some of them in threads, the server working on those while this process shapes the rows of the
others. :func:`beside` gives the view a :class:`Beside`: each read submitted runs in a thread of the
process's few (:data:`THREADS`), on a connection of its own small pool (one per engine, so the view's
own connections, held while it waits, never leave its reads without one), the connection opened and
the snapshot adopted in the thread too, behind the view's own work. SQLite gets None: its reads run in
this process, and a second connection to an in-memory store would be another store.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
#: Threads (and, per engine, pooled connections) for the reads run beside a view's own.
THREADS = 4

_pool: ThreadPoolExecutor | None = None
_side_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class Beside:
    """Reads on ``snapshot`` (exported by a view's open transaction; None: each statement its own), each
    in a thread."""

    def __init__(self, engine: Engine, snapshot: str | None) -> None:
        self._engine = engine
        self._snapshot = snapshot
        self._started: list[Future[Any]] = []

    def submit(self, read: Callable[..., T], *args: Any) -> Future[T]:
        """``read(connection, *args)`` in a thread, on a connection reading the view's snapshot."""
        future = _threads().submit(self._run, read, args)
        self._started.append(future)
        return future

    def _run(self, read: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._engine.connect() as other:
            if self._snapshot is None:
                return read(other.execution_options(postgresql_readonly=True), *args)
            other = other.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")
            return read(other, *args)

    def wait(self) -> None:
        """Until every read submitted has ended (the view's transaction may end after)."""
        wait(self._started)


@contextmanager
def beside(conn: Connection) -> Iterator[Beside | None]:
    """Within: a :class:`Beside` on ``conn``'s snapshot (PostgreSQL; its transaction begun if it was
    not), or None (SQLite). A connection that autocommits (:func:`db.uow.reading`) has no snapshot to
    share: each of its statements takes its own, and so do the reads beside it. Leaving waits for every
    read submitted: ``conn``'s transaction, whose snapshot they read, stays open until then."""
    if conn.dialect.name != "postgresql":
        yield None
        return
    snapshot = None  # on autocommit (db.uow.reading) each statement has its own snapshot: theirs too
    if not getattr(conn.connection.driver_connection, "autocommit", False):
        snapshot = _quoted(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    reads = Beside(_side_engine(conn.engine), snapshot)
    try:
        yield reads
    finally:
        reads.wait()


def _threads() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="beside")
        return _pool


def _side_engine(engine: Engine) -> Engine:
    """``engine``'s store with a pool of its own (:data:`THREADS` connections), disposed with it."""
    with _lock:
        side = _side_engines.get(engine)
        if side is None:
            from db.engine import make_engine

            side = make_engine(
                engine.url.render_as_string(hide_password=False), pool_size=THREADS, max_overflow=0
            )
            _side_engines[engine] = side
            weakref.finalize(engine, side.dispose)
        return side


def _quoted(snapshot: str) -> str:
    """The snapshot's id as a literal (``SET TRANSACTION SNAPSHOT`` takes no parameter); PostgreSQL
    gives ids of hex digits and dashes, nothing else is let through."""
    if not snapshot or any(c not in "0123456789ABCDEFabcdef-" for c in snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return snapshot
