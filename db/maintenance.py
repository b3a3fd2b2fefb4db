"""Store-wide maintenance: empty every business table, count rows.

What is kept (:data:`KEEP_TABLES`): admin-edited parameters are not data to throw away, and the trail is
append-only and continues across an emptying (the use case that empties says so in its own audit row).
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Table, text

from db.models import Base

KEEP_TABLES = frozenset({"settings", "audit_log", "audit_head"})


def emptied_tables() -> list[Table]:
    """The tables an emptying deletes, children before their parents."""
    return [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]


def empty_tables(conn: Connection) -> None:
    """Delete every row of every table but :data:`KEEP_TABLES` inside the caller's transaction, so a
    failure later in it (or a rollback) leaves every row in place; ids restart at 1 once committed.

    PostgreSQL: one ``TRUNCATE … RESTART IDENTITY`` (transactional there). SQLite: ``DELETE`` children
    first, so every foreign key holds after each statement (a rowid restarts after the largest id left).
    """
    tables = emptied_tables()
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE TABLE {', '.join(t.name for t in tables)} RESTART IDENTITY CASCADE"))
        return
    for t in tables:
        conn.execute(t.delete())


def empty_store(engine: Engine) -> None:
    """:func:`empty_tables` at full speed for a store about to be written again at once (the demo reseed):
    not one transaction, so use :func:`empty_tables` where a failure must leave the old rows."""
    tables = emptied_tables()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            empty_tables(conn)
        return
    # SQLite checks each deleted parent row against unindexed child columns (quadratic on millions of
    # rows); every table is emptied, so nothing can dangle: switch the checks off around the deletes
    # (possible only outside a transaction, hence the raw connection).
    raw = engine.raw_connection()
    cur = raw.cursor()
    try:
        cur.execute("PRAGMA foreign_keys=OFF")
        for t in tables:
            cur.execute(f"DELETE FROM {t.name}")
        raw.commit()
    finally:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
        raw.close()


def count_rows(conn: Connection, names: list[str]) -> dict[str, int]:
    """Rows per table, for each table name in ``names``."""
    return {n: int(conn.execute(text(f"SELECT COUNT(*) FROM {n}")).scalar_one()) for n in names}
