"""The unit of work (一次业务操作): one use case's transaction, owned and committed by the use case itself.

A write use case takes a :class:`UnitOfWork` and does::

    def act(uow: UnitOfWork, *, event_id: int, ...) -> ...:
        with uow.begin("events.act"):
            s = uow.session          # the ORM Session; uow.conn is its Connection, same transaction
            ...                      # change rows first, then services.audit.record(uow.conn, ...)
            uow.commit()             # refused (AuditMissing) unless an audit row was recorded
            return result

Leaving the block without :meth:`UnitOfWork.commit` rolls back everything (an exception, or a use case
that decided to change nothing). Callers only build one: pages through ``components.store.uow()``, jobs,
the simulator, bench and tests with ``UnitOfWork(engine)``. Reads keep taking a ``Connection``.

全留痕 (decision 0006): :func:`services.audit.record` marks the transaction as audited; the engine's
guard (:func:`db.engine.install_audit_guard`) is the safety net for a commit that bypasses
:meth:`commit`. Writes outside a unit of work (migrations, the demo seed, test set-up) are not use
cases and are not checked.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

#: Execution option of a unit of work's connection: on SQLite its transaction begins IMMEDIATE
#: (``db.engine`` reads it in its "begin" listener).
WRITE_TRANSACTION = "write_transaction"
#: Keys a unit of work keeps in ``Connection.info`` while it is open (the DBAPI connection's dict).
USE_CASE = "use_case"
AUDITED = "audited"


class StoreBusy(RuntimeError):
    """The store stayed busy with other writers for too long; nothing was written (try again)."""

    def __init__(self) -> None:
        super().__init__("系统繁忙，数据未保存，请稍后重试")


#: How long a unit of work waits for its turn among this process's writers on SQLite, seconds.
WRITER_WAIT_S = 60.0
_writer_locks: weakref.WeakKeyDictionary[Engine | Connection, threading.Lock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _writer_lock(engine: Engine | Connection) -> threading.Lock | None:
    """One lock per SQLite engine: this process's writers queue on it in turn (SQLite has one writer at
    a time anyway, and its busy handler polls with growing sleeps, so under many writers some waited
    past busy_timeout and failed as "database is locked"). Other processes still queue in busy_timeout.
    None for a server store (PostgreSQL writers run side by side)."""
    if engine.dialect.name != "sqlite":
        return None
    with _locks_guard:
        lock = _writer_locks.get(engine)
        if lock is None:
            lock = _writer_locks[engine] = threading.Lock()
        return lock


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A pooled connection for reads (``with reading(engine) as conn:``).

    PostgreSQL: each statement commits itself (autocommit; decision 0057). Its reads are what READ
    COMMITTED gave them, each statement its own snapshot, without the BEGIN and COMMIT round trips, and
    no ROLLBACK at the end, at which psycopg drops every prepared statement of its connection (decision
    0054). A statement that writes is atomic and kept (:func:`services.intake.write_at_once`).
    SQLite: one deferred transaction ended by COMMIT (an error still rolls back).

    The driver's autocommit is switched on and off directly: SQLAlchemy's ``isolation_level`` option does
    the same through its connection characteristics, set at checkout and reset at checkin, at 44 µs a
    reading against 27 µs (on every report filed). SQLAlchemy's own ROLLBACK at the end then finds the
    driver idle and sends nothing. A connection that cannot be switched back (lost, or left in a
    transaction) is invalidated, never returned to the pool in autocommit; one the block closed itself is
    switched back by the pool (``db.engine._transactional_again``)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            yield conn
            if conn.in_transaction():
                conn.commit()
            return
        driver: Any = conn.connection.driver_connection
        driver.autocommit = True
        try:
            yield conn
        finally:
            if not (conn.closed or conn.invalidated):
                switched = False
                if driver.info.transaction_status.name == "IDLE":
                    with suppress(Exception):
                        driver.autocommit = False
                        switched = True
                if not switched:
                    conn.invalidate()


class AuditMissing(RuntimeError):
    """A use case changed business rows but recorded no audit row; nothing was committed."""


def mark_audited(conn: Connection | Session) -> None:
    """Say that this transaction holds its audit row (called by :func:`services.audit.record`)."""
    if isinstance(conn, Session):
        conn = conn.connection()
    conn.info[AUDITED] = True


class _Borrowed:
    """A caller's Connection lent as a context manager that does not close it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        return None


class UnitOfWork:
    """One Session and its Connection for one use case; commit checks the trail, exit rolls back.

    A unit of work is used one block at a time; it can be begun again after the block ends (the
    simulator and the jobs runner reuse one per loop). It is not re-entrant: a use case that needs
    another's work calls that module's session-level helper, not the other use case.
    """

    def __init__(self, engine: Engine | Connection, use_case: str = "unnamed") -> None:
        """``engine``: the store. A Connection already in a transaction is accepted too (the Session
        joins it, SQLAlchemy's "join into an external transaction": tests/rollback.py, the bench), so
        the owner of that transaction decides whether the work is kept."""
        self.engine = engine
        self.use_case = use_case
        self._session: Session | None = None
        self._conn: Connection | None = None
        self._info: dict[str, Any] | None = None
        self._lock: threading.Lock | None = None
        self.committed = False

    def begin(self, use_case: str) -> Self:
        """Name the use case (for the trail's guard and its error) and return self to enter."""
        self.use_case = use_case
        return self

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError(f"unit of work {self.use_case} is already open (not re-entrant)")
        self.committed = False
        self._lock = _writer_lock(self.engine)
        if self._lock is not None and not self._lock.acquire(timeout=WRITER_WAIT_S):
            self._lock = None
            raise StoreBusy()
        self._session = Session(self.engine, expire_on_commit=False)
        try:
            self._attach()
        except BaseException:
            self._session.close()
            self._session = None
            self._release()
            raise
        return self

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _attach(self) -> Connection:
        """The session's Connection for the current transaction, marked as this use case's."""
        assert self._session is not None
        self._conn = self._session.connection(execution_options={WRITE_TRANSACTION: True})
        self._info = self._conn.info
        self._info[USE_CASE] = self.use_case
        self._info[AUDITED] = False
        return self._conn

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work is not open: use `with uow.begin(name):`")
        return self._session

    @property
    def conn(self) -> Connection:
        if self._session is None:
            raise RuntimeError("unit of work is not open: use `with uow.begin(name):`")
        return self._conn if self._conn is not None else self._attach()

    @property
    def store(self) -> Engine:
        """The Engine underneath (for a migration check or a read outside the unit of work)."""
        return self.engine if isinstance(self.engine, Engine) else self.engine.engine

    @property
    def one_writer(self) -> bool:
        """Whether the store takes one writer at a time (SQLite's write lock): a use case then reads what
        it can before :meth:`begin`, to hold the lock only to write. On PostgreSQL it reads in its
        transaction, on the one connection it has checked out."""
        return self.engine.dialect.name == "sqlite"

    def reader(self) -> AbstractContextManager[Connection]:
        """A read-only Connection beside this unit of work (``with uow.reader() as conn:``); when the
        unit of work joins a caller's Connection (tests/rollback.py), that Connection itself."""
        if isinstance(self.engine, Engine):
            return reading(self.engine)
        return _Borrowed(self.engine)

    @property
    def audited(self) -> bool:
        return bool(self._info is not None and self._info.get(AUDITED))

    def commit(self) -> None:
        """Commit, unless nothing was audited: then raise :class:`AuditMissing` (the block rolls back)."""
        session = self.session
        if not self.audited:
            raise AuditMissing(
                f"{self.use_case} tried to commit without an audit_log row"
                " (全留痕: call services.audit.record in the same unit of work)"
            )
        session.commit()
        self.committed = True
        self._detach()

    def _detach(self) -> None:
        # After a commit or rollback the block may go on reading (expire_on_commit=False); the next
        # transaction is attached, and checked like the first, when ``conn`` is asked for again.
        if self._info is not None:
            self._info.pop(USE_CASE, None)
            self._info.pop(AUDITED, None)
        self._conn = self._info = None

    def rollback(self) -> None:
        """Undo everything since the block began or last committed; the block may go on reading."""
        self.session.rollback()
        self._detach()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self._session
        if session is None:
            return
        try:
            session.rollback()  # whatever was not committed (an error, or a use case that changed its mind)
        finally:
            self._detach()
            self._session = None
            try:
                session.close()
            finally:
                self._release()
