"""A second connection that reads what a first one reads, so one view can run two reads at once
(decision 0065).

PostgreSQL lets a transaction export its snapshot (``pg_export_snapshot()``) and another, REPEATABLE
READ, one adopt it (``SET TRANSACTION SNAPSHOT``) while the first is open: the two see the same
committed rows, as pg_dump's parallel workers do. A view whose reads are independent can then run one
on each, its Python work on one overlapping the server's on the other. SQLite gets None: its reads run
in this process and an in-memory store's second connection would be another store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def beside(conn: Connection, n: int = 1) -> Iterator[list[Connection] | None]:
    """Within: ``n`` read-only connections on ``conn``'s snapshot (PostgreSQL; one snapshot exported
    for all), or None (SQLite, or ``conn`` outside a transaction). ``conn``'s transaction must stay
    open while they are used."""
    if conn.dialect.name != "postgresql" or not conn.in_transaction():
        yield None
        return
    snapshot = _quoted(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
    others: list[Connection] = []
    try:
        for _ in range(n):
            other = conn.engine.connect().execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            others.append(other)
            other.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        yield others
    finally:
        for other in others:
            other.close()


def _quoted(snapshot: str) -> str:
    """The snapshot's id as a literal (``SET TRANSACTION SNAPSHOT`` takes no parameter); PostgreSQL
    gives ids of hex digits and dashes, nothing else is let through."""
    if not snapshot or any(c not in "0123456789ABCDEFabcdef-" for c in snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return snapshot
