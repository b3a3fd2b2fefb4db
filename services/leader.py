"""One leader among several processes (the jobs runner on every app replica, decision 0031): whoever
holds the lease runs the passes; the others wait and take over when the holder dies.

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its own, kept for
  as long as the process leads. The server releases it the moment that connection ends, a killed
  process included (its socket closes), so a standby takes over at its next try.
- SQLite (replicas on one machine share the file): an exclusive ``flock`` on ``<store>.jobs.lock``
  beside the store file; the kernel releases it when the holder's process ends, however it ends.

The lease is an optimisation of who works, not what keeps work from being done twice: every job's
run is still claimed in ``job_runs`` by compare-and-set (services/jobs.claim), so even two leaders at
once (a partitioned network) would not do one item twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("leader")


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lease:
    """The lease named ``name`` on ``engine``'s store: :meth:`acquire` (non-blocking), :meth:`held`
    (still ours: False once the connection holding it was lost), :meth:`release`."""

    def __init__(self, engine: Engine, name: str = "jobs") -> None:
        self.engine, self.name = engine, name
        self._conn: Connection | None = None
        self._file: IO[str] | None = None

    @property
    def _lock_path(self) -> Path:
        database = self.engine.url.database or ""
        path = database.removeprefix("file:").split("?", 1)[0]
        if not path or path == ":memory:":
            raise ValueError("a leader lease needs a store file (SQLite) or a server (PostgreSQL)")
        return Path(f"{path}.{self.name}.lock")

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this process holds it (now or already)."""
        if self.held():
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            try:
                got = bool(
                    conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(self.name)}).scalar()
                )
                conn.commit()  # the lock is the session's, not the transaction's: it outlives the commit
            except Exception:
                conn.close()
                raise
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        handle = open(self._lock_path, "a+")  # noqa: SIM115 (kept open while the lease is held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def held(self) -> bool:
        """Whether this process still holds the lease (PostgreSQL: its connection still answers)."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except Exception:  # the connection is gone, and the lock with it: lead no more
            log.warning("the lease %s was lost with its connection", self.name)
            self._drop_connection()
            return False

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(self.name)})
                self._conn.commit()
            except Exception:  # gone already: the server released it with the session
                pass
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                pass
