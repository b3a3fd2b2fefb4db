"""Submission keys (提交编号): a retried or double-clicked create gives one row and returns its first result.

A create that takes a key runs, inside its own unit of work::

    first = submissions.find(conn, KIND, key, digest)    # a retry: return what the first call returned
    if first is None and not submissions.claim(conn, KIND, key, digest, now):
        first = submissions.find(conn, KIND, key, digest)  # lost a race to a concurrent twin
    ... create the rows ...
    submissions.settle(conn, KIND, key, entity_id, result)

``claim`` inserts the key first, with ``ON CONFLICT DO NOTHING`` on the (kind, key) unique constraint:
on PostgreSQL a concurrent twin waits on the key's index entry until the first commits (then finds it)
or rolls back (then claims it); on SQLite writers queue anyway. The same key with other content is
refused (:class:`KeyReused`), so a key cannot fetch another submission's result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from db.direct import Direct, bound_columns
from db.models import Submission
from domain.errors import FieldProblems


class KeyReused(FieldProblems):
    """The submission key was used before for other content: nothing is written."""

    def __init__(self) -> None:
        super().__init__({"提交编号": "该提交编号已用于另一份内容，请刷新页面后重新填写提交"})


@dataclass(frozen=True)
class First:
    """What the first call with this key stored: the row it created and what it returned."""

    entity_id: int | None
    result: dict[str, Any]
    created_at: datetime


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def digest(content: Any) -> str:
    """The sha256 of ``content`` as canonical JSON (photos as their own digest): the fingerprint."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def origin_digest(origin: str | None) -> str | None:
    """What is stored of a browser session's id (its digest, never the id itself)."""
    return None if not origin else hashlib.sha256(origin.encode()).hexdigest()


# The statements of the busiest path (every keyed report), built once.
_FIND = select(
    Submission.fingerprint, Submission.entity_id, Submission.result_json, Submission.created_at
).where(Submission.kind == bindparam("kind"), Submission.key == bindparam("key"))
# Run on the driver (db.direct, decision 0058).
_CLAIMED = ("kind", "key", "fingerprint", "origin", "created_at")
_CLAIM = {
    name: Direct(
        dialect.insert(Submission)
        .values(bound_columns(Submission.__table__, _CLAIMED))
        .on_conflict_do_nothing(index_elements=["kind", "key"])
        .returning(Submission.id)
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_SETTLE = Direct(
    update(Submission)
    .where(Submission.kind == bindparam("k_kind"), Submission.key == bindparam("k_key"))
    .values(entity_id=bindparam("entity_id"), result_json=bindparam("result_json"))
)


def find(conn: Connection, kind: str, key: str, fingerprint: str) -> First | None:
    """The first call's record for (kind, key), or None; :class:`KeyReused` if its content differs."""
    row = conn.execute(_FIND, {"kind": kind, "key": key}).first()
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise KeyReused()
    return First(row.entity_id, json.loads(row.result_json or "{}"), row.created_at)


def taken(conn: Connection, kind: str, key: str) -> bool:
    """Whether (kind, key) is stored (a retry), whatever the content."""
    return conn.execute(_FIND, {"kind": kind, "key": key}).first() is not None


def claim(
    conn: Connection, kind: str, key: str, fingerprint: str, now: datetime, origin: str | None = None
) -> bool:
    """Take (kind, key) for this unit of work; False when another call holds it (committed)."""
    values = {
        "kind": kind,
        "key": key,
        "fingerprint": fingerprint,
        "origin": origin,
        "created_at": now,
    }
    stmt = _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    return bool(stmt.rows(conn, values))  # no row back: the key was taken


def settle(conn: Connection, kind: str, key: str, entity_id: int | None, result: dict[str, Any]) -> None:
    """Record what the create made and returned, in the same unit of work as the rows themselves."""
    _SETTLE.run(
        conn,
        {
            "k_kind": kind,
            "k_key": key,
            "entity_id": entity_id,
            "result_json": json.dumps(result, ensure_ascii=False, default=_plain),
        },
    )


def times_from(conn: Connection, kind: str, origin: str, since: datetime) -> list[datetime]:
    """When the submissions of ``kind`` from ``origin`` (a stored digest) were made since ``since``."""
    return list(
        conn.execute(
            select(Submission.created_at).where(
                Submission.kind == kind, Submission.origin == origin, Submission.created_at > since
            )
        ).scalars()
    )
