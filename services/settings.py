"""Admin-edited parameters in the ``settings`` table: one JSON text per key, read and upserted here only."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, text, update

from db.models import Setting


def take_turn(conn: Connection, name: str) -> None:
    """Wait, inside the caller's unit of work, until no other transaction holds the turn ``name``; hold it
    until this one ends (PostgreSQL: an advisory lock on the name; SQLite's unit of work holds the store's
    one write lock already). For work that reads what it then writes and has no row to lock first."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": name})


def read(conn: Connection, key: str, *, lock: bool = False) -> str | None:
    """The stored JSON text of ``key``, or None when nobody has set it (callers use their defaults).

    ``lock``: the read of a change made from what is read (a department disabled in the list, a
    proposal added to the day's, a token to the screens'), inside its unit of work: on PostgreSQL the
    key is locked until the transaction ends, so two colleagues changing one setting at once take turns
    and the second changes the first's value instead of writing over it (the row may not exist yet: a
    lock on the key, not on the row). SQLite's unit of work holds the store's write lock already."""
    if lock:
        take_turn(conn, f"settings:{key}")
    return conn.execute(select(Setting.value_json).where(Setting.key == key)).scalar()


def write(
    conn: Connection,
    key: str,
    value_json: str,
    now: datetime,
    *,
    actor=None,
    action: str = "setting.write",
    reason: str | None = None,
) -> None:
    """Store ``value_json`` under ``key``, replacing what was there, inside the caller's transaction.

    The trail (全留痕) gets the old and new value with ``actor`` (a user or ``Actor``; None: the system).
    """
    from services import audit

    old = read(conn, key, lock=True)  # two first writes of a key: the second waits, then updates
    updated = conn.execute(
        update(Setting).where(Setting.key == key).values(value_json=value_json, updated_at=now)
    ).rowcount
    if not updated:
        conn.execute(insert(Setting).values(key=key, value_json=value_json, updated_at=now))
    # After the change: the row, then the trail's head (one lock order for every use case).
    audit.record(
        conn,
        **audit.who(actor),
        action=action,
        entity="settings",
        entity_id=None,
        before=None if old is None else {"key": key, "value": _parsed(old)},
        after={"key": key, "value": _parsed(value_json)},
        reason=reason,
    )


def _parsed(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text
