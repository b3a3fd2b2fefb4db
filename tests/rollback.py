"""A unit of work whose commit is not kept: for tests that call a write use case on a shared store.

:class:`RolledBack` is a real :class:`db.uow.UnitOfWork` on the test's own Connection: the use case runs
whole (its audit row is checked at commit), but its Session joins the test's transaction (SQLAlchemy's
"join a Session into an external transaction"), so commit does not end it and the test rolls it back.
A refused use case rolls the test's transaction back at once; the next use case begins a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from db.uow import UnitOfWork


class RolledBack(UnitOfWork):
    """A unit of work inside ``conn``'s transaction (begun if need be): never committed for real."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)  # type: ignore[arg-type]  # a Session binds to a Connection as well
        self.connection = conn

    def __enter__(self):
        if not self.connection.in_transaction():
            self.connection.begin()
        return super().__enter__()


@contextmanager
def rolled_back(engine: Engine) -> Iterator[tuple[RolledBack, Connection]]:
    """A :class:`RolledBack` unit of work and its Connection (to read what it did); all undone at the end."""
    with engine.connect() as conn:
        conn.begin()
        try:
            yield RolledBack(conn), conn
        finally:
            conn.rollback()
