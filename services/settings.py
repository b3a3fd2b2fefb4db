"""Admin-edited parameters in the ``settings`` table: one JSON text per key, read and upserted here only."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from db.models import Setting


def read(conn: Connection, key: str) -> str | None:
    """The stored JSON text of ``key``, or None when nobody has set it (callers use their defaults)."""
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

    old = read(conn, key)
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
