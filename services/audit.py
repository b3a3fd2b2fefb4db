"""The tamper-evident trail (全留痕): append hash-chained rows in the caller's transaction; verify the chain.

Every change a use case makes is recorded by :func:`record` in the same transaction as the change:
who (``actor_id``, ``actor_role``; the system is ``None``/"system"), when, what (``action``, the
``entity`` table and ``entity_id``), the state ``before`` and ``after`` as canonical JSON, and why.
Each row's ``hash`` is sha256 over the previous row's hash and the canonical JSON of its own fields
(sorted keys, ISO timestamps); the first row's ``prev_hash`` is 64 zeros. :func:`verify` streams the
rows in id order and reports the first row whose link or content does not match.

``python -m services.audit verify`` (``make audit-verify``) checks ``DATABASE_URL``. See decision 0006.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Insert,
    Integer,
    Text,
    bindparam,
    cast,
    func,
    insert,
    inspect,
    literal_column,
    not_,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from db.direct import Direct, bound_columns
from db.models import AuditHead, AuditLog, Event, EventCooperator
from db.uow import mark_audited
from domain.access import redact

GENESIS = "0" * 64
SYSTEM_ROLE = "system"
BATCH = 5000
#: The fields each row's hash covers (with ``prev_hash``), in the canonical JSON.
FIELDS = ("id", "at", "actor_id", "actor_role", "action", "entity", "entity_id", "before", "after", "reason")
#: What an event's audit rows show of it before and after a step of the loop.
EVENT_FIELDS = (
    "status",
    "owner_unit_id",
    "lead_department_id",
    "urgency",
    "due_at",
    "is_overdue",
    "rating",
    "escalations",
    "merged_into_id",
    "reporter_count",
)


# ---------------------------------------------------------------------------------------------
# Canonical form and hash
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot record {type(value).__name__} in the audit trail")


def to_json(value: Any) -> str | None:
    """``value`` as canonical JSON text (sorted keys, no spaces, ISO dates, enums by value); None stays None."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=_plain)


def canonical(row: Mapping[str, Any], prev_hash: str) -> str:
    """The canonical JSON text of a row's :data:`FIELDS` and ``prev_hash``: what its hash covers."""
    payload = {k: row[k] for k in FIELDS}
    payload["at"] = row["at"].isoformat()
    payload["prev_hash"] = prev_hash
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the row), hex."""
    return hashlib.sha256((prev_hash + canonical(row, prev_hash)).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def who(actor: Any) -> dict[str, Any]:
    """``actor_id``/``actor_role`` for :func:`record` from an ``Actor``, a ``CurrentUser`` or None (the system)."""
    if actor is None:
        return {"actor_id": None, "actor_role": SYSTEM_ROLE}
    if hasattr(actor, "user_id"):  # services.events.Actor
        return {"actor_id": actor.user_id, "actor_role": str(getattr(actor.role, "value", actor.role))}
    return {"actor_id": actor.id, "actor_role": str(getattr(actor.role, "value", actor.role))}


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact(text)


def record(
    conn: Connection,
    *,
    actor_id: int | None,
    actor_role: str,
    action: str,
    entity: str,
    entity_id: int | None,
    before: Any,
    after: Any,
    reason: str | None = None,
    at: datetime | None = None,
) -> int:
    """Append one chained row in the caller's transaction; returns its id.

    ``conn`` is the transaction's Connection (from an ORM Session: ``session.connection()``; a
    Session is accepted too). ``before``/``after`` are JSON-able values (dicts of the fields that
    matter; never password material or unmasked phone numbers). The head row is updated first, so
    on PostgreSQL concurrent writers queue on its row lock until this transaction ends; SQLite
    serialises writers anyway.
    """
    if isinstance(conn, Session):
        conn = conn.connection()
    mark_audited(conn)
    # everything but the place in the chain first: the head's lock is held for as short as can be
    row = entry(actor_id, actor_role, action, entity, entity_id, before, after, reason, at)
    if conn.dialect.name == "postgresql":  # one statement: the store takes its place and hashes the link
        return int(
            conn.execute(_RECORD_CHAINED, link_values(row) | {"a_entity_id": row["entity_id"]}).scalar_one()
        )
    ((new_id, prev_hash),) = _TAKE_NEXT.rows(conn, {})
    row["id"] = entry_id = int(new_id)
    digest = chain_hash(prev_hash, row)
    _APPEND_ROW.run(conn, {**row, "prev_hash": prev_hash, "hash": digest})
    _MOVE_HEAD.run(conn, {"digest": digest})
    return entry_id


def entry(
    actor_id: int | None,
    actor_role: str,
    action: str,
    entity: str,
    entity_id: int | None,
    before: Any,
    after: Any,
    reason: str | None,
    at: datetime | None,
) -> dict[str, Any]:
    """One row as stored, but its place in the chain (``id``, the hashes): times in China time, free text
    masked (titles, notes and reasons may quote a phone number)."""
    from services import clock

    if at is None:
        at = clock.now()
    elif at.tzinfo is not None:
        at = at.astimezone(clock.ZONE).replace(tzinfo=None)
    return {
        "id": None,
        "at": at,
        "actor_id": None if actor_id is None else int(actor_id),
        "actor_role": str(getattr(actor_role, "value", actor_role)),
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else int(entity_id),
        "before": _redacted(to_json(before)),
        "after": _redacted(to_json(after)),
        "reason": None if reason is None else redact(str(reason)[:1000]),
    }


def record_many(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """:func:`record` for many rows at once (a file import's events, one row each): the same rows, chained
    in the order given, with one head update and one multi-row insert instead of three statements a row.
    Each entry has :func:`record`'s keyword arguments. Returns their ids in order."""
    if not entries:
        return []
    mark_audited(conn)
    rows = [
        entry(
            e["actor_id"],
            e["actor_role"],
            e["action"],
            e["entity"],
            e.get("entity_id"),
            e.get("before"),
            e.get("after"),
            e.get("reason"),
            e.get("at"),
        )
        for e in entries
    ]
    last_id, prev_hash = conn.execute(_TAKE_MANY, {"n": len(rows)}).one()
    first = int(last_id) - len(rows) + 1
    for k, row in enumerate(rows):
        row["id"] = first + k
        digest = chain_hash(prev_hash, row)
        row["prev_hash"], row["hash"] = prev_hash, digest
        prev_hash = digest
    conn.execute(_APPEND_ROW.statement, rows)  # many rows: SQLAlchemy's executemany
    _MOVE_HEAD.run(conn, {"digest": prev_hash})
    return [int(r["id"]) for r in rows]


# The three statements of :func:`record`, built once (intake writes one trail row per report).
_TAKE_NEXT = Direct(
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(last_id=AuditHead.last_id + 1)
    .returning(AuditHead.last_id, AuditHead.hash)
)
_TAKE_MANY = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(last_id=AuditHead.last_id + bindparam("n"))
    .returning(AuditHead.last_id, AuditHead.hash)
)
# SQLite's three statements a row, run on the driver (db.direct, decision 0058): every column bound.
_APPEND_ROW = Direct(
    insert(AuditLog).values(bound_columns(AuditLog.__table__, [c.name for c in AuditLog.__table__.columns]))
)
_MOVE_HEAD = Direct(update(AuditHead).where(AuditHead.id == 1).values(hash=bindparam("digest")))


# -- chained by the store (PostgreSQL, decision 0057) --------------------------------------------------
# A row's hash covers its own id and prev_hash, which only the head knows, so the head's row lock used
# to be held over two round trips and Python's hashing between them. On PostgreSQL the store fills them
# in: Python renders the row's canonical JSON around the three values it cannot know (link_parts), and
# one UPDATE of the head takes the next id, keeps the old hash as prev_hash and hashes
# prev_hash + pre + entity_id + ',"id":' + id + ',"prev_hash":"' + prev_hash + '",' + post with the
# store's sha256. The only text the store formats is two integers and a hex string, so the bytes hashed
# are the ones chain_hash hashes (a test holds the two equal) and verify_chain is unchanged.

#: The text between the three values the store fills in: must follow canonical()'s sorted keys.
_MARKER = f'"entity_id":0,"id":0,"prev_hash":"{GENESIS}",'


def link_parts(row: Mapping[str, Any]) -> tuple[str, str]:
    """``row``'s canonical JSON (:func:`canonical`) before ``entity_id``'s value and after ``prev_hash``'s:
    canonical(row, P) == pre + E + ',"id":' + I + ',"prev_hash":"' + P + '",' + post, with E the row's
    entity_id as JSON (``null`` when None), I its id and P the previous row's hash."""
    whole = canonical({**row, "id": 0, "entity_id": 0}, GENESIS)
    pre, found, post = whole.partition(_MARKER)
    if not found or _MARKER in post:  # canonical's keys changed order: chained() must change with them
        raise ValueError("audit row's canonical form no longer has entity_id, id, prev_hash side by side")
    return pre + '"entity_id":', post


def link_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`chained` for ``row`` (from :func:`entry`): its fields and its link's text."""
    pre, post = link_parts(row)
    return {f"a_{k}": row[k] for k in FIELDS if k not in ("id", "entity_id")} | {"a_pre": pre, "a_post": post}


def _sql(text: str) -> Any:
    """A constant written into the statement, not bound: psycopg converts a statement's placeholders
    once and keeps the result only for statements with at most 50 parameters."""
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def chained(entity_id: Any, when: Any = None, nulls: frozenset[str] = frozenset()) -> Insert:
    """PostgreSQL: one statement appending an audit row chained by the store (add ``RETURNING`` to it).
    ``entity_id``: a SQL expression (a bound value, or the id a data-modifying CTE of the same statement
    returns); ``when``: a condition without which neither the head moves nor a row is appended (the
    report a CTE did not insert); ``nulls``: the columns written as NULL rather than bound. Parameters:
    :func:`link_values`."""
    one = literal_column("1", Integer)
    linked = (
        AuditHead.hash
        + bindparam("a_pre", type_=Text)
        + func.coalesce(cast(entity_id, Text), _sql("null"))
        + _sql(',"id":')
        + cast(AuditHead.last_id + one, Text)
        + _sql(',"prev_hash":"')
        + AuditHead.hash
        + _sql('",')
        + bindparam("a_post", type_=Text)
    )
    head = (
        update(AuditHead)
        .where(AuditHead.id == one, *(() if when is None else (when,)))
        .values(
            last_id=AuditHead.last_id + one,
            prev_hash=AuditHead.hash,
            hash=func.encode(func.sha256(func.convert_to(linked, _sql("UTF8"))), _sql("hex")),
        )
        .returning(AuditHead.last_id, AuditHead.prev_hash, AuditHead.hash)
        .cte("audit_link")
    )
    columns = [c.name for c in AuditLog.__table__.columns]
    picked = {
        "id": head.c.last_id,
        "entity_id": entity_id,
        "prev_hash": head.c.prev_hash,
        "hash": head.c.hash,
    }
    written = [
        picked[c.name]
        if c.name in picked
        else null()
        if c.name in nulls
        else bindparam(f"a_{c.name}", type_=c.type)
        for c in AuditLog.__table__.columns
    ]
    return insert(AuditLog).from_select(columns, select(*written))


_RECORD_CHAINED = chained(bindparam("a_entity_id", type_=BigInteger)).returning(AuditLog.id)


def new_event_state(event: Event) -> dict[str, Any]:
    """:func:`event_state` of an event just inserted in this session, from the object (no query: intake is
    the busiest write path); a new event has no cooperating departments yet."""
    state = {f: getattr(event, f) for f in EVENT_FIELDS}
    state = {k: _plain(v) if isinstance(v, Enum | datetime | date) else v for k, v in state.items()}
    state["cooperators"] = []
    return state


def event_state(conn: Connection | Session, event_id: int) -> dict[str, Any] | None:
    """What the trail shows of an event: :data:`EVENT_FIELDS` and its cooperating departments, as stored now."""
    row = (
        conn.execute(select(*(getattr(Event, f) for f in EVENT_FIELDS)).where(Event.id == event_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    state = {k: _plain(v) if isinstance(v, Enum | datetime | date) else v for k, v in row.items()}
    state["cooperators"] = sorted(
        conn.execute(
            select(EventCooperator.department_id).where(EventCooperator.event_id == event_id)
        ).scalars()
    )
    return state


# ---------------------------------------------------------------------------------------------
# Verifying
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """The first row where the chain breaks: its id and what is wrong (Chinese)."""

    id: int
    problem: str

    def __str__(self) -> str:
        return f"审计链断开：第 {self.id} 条（id={self.id}）{self.problem}"


def verify_chain(conn: Connection, batch: int = BATCH) -> tuple[int, Broken | None]:
    """(rows checked, the first broken row or None), streaming the rows in id order ``batch`` at a time."""
    cols = [getattr(AuditLog, f) for f in FIELDS] + [AuditLog.prev_hash, AuditLog.hash]
    # The head first, then the rows up to it: a change committed while we read (the app keeps writing)
    # lies beyond the head we read and is left for the next check, never taken for a deletion.
    head = conn.execute(select(AuditHead.last_id, AuditHead.hash).where(AuditHead.id == 1)).first()
    upto = AuditLog.id <= head.last_id if head is not None else AuditLog.id > 0
    prev, expected, last = GENESIS, 1, 0
    while True:
        rows = (
            conn.execute(select(*cols).where(AuditLog.id > last, upto).order_by(AuditLog.id).limit(batch))
            .mappings()
            .all()
        )
        if not rows:
            break
        for r in rows:
            if r["id"] != expected:
                gone = f"第 {expected} 条" if r["id"] == expected + 1 else f"第 {expected}–{r['id'] - 1} 条"
                return expected - 1, Broken(expected, f"缺失：{gone}记录已被删除（下一条是 id={r['id']}）")
            if r["prev_hash"] != prev:
                return expected - 1, Broken(
                    r["id"],
                    f"链接不符：prev_hash 与上一条（id={r['id'] - 1}）的哈希不一致，上一条或本条已被改动",
                )
            if chain_hash(r["prev_hash"], dict(r)) != r["hash"]:
                return expected - 1, Broken(r["id"], "内容与哈希不符：该记录已被改动")
            prev, expected = r["hash"], expected + 1
        last = rows[-1]["id"]
    count = expected - 1
    if head is not None and head.last_id > count:
        gone = f"第 {count + 1} 条" if head.last_id == count + 1 else f"第 {count + 1}–{head.last_id} 条"
        return count, Broken(count + 1, f"缺失：{gone}记录已被删除（链头记录共 {head.last_id} 条）")
    if head is not None and count and head.hash != prev:
        return count, Broken(
            count, f"链头（共 {head.last_id} 条）与最后一条不一致：最后一条已被改动或有链外追加"
        )
    return count, None


def verify(conn: Connection) -> Broken | None:
    """The first broken row of the chain, or None when every link and hash holds."""
    return verify_chain(conn)[1]


# ---------------------------------------------------------------------------------------------
# Anchors outside the database: a truncated tail or a chain recomputed from row k is found
# ---------------------------------------------------------------------------------------------

#: Where checkpoints are kept: one append-only file per store (one JSON line each); put the folder on
#: another volume or ship the files off the host (decision 0006). ``AUDIT_ANCHOR_DIR`` moves the folder;
#: ``AUDIT_ANCHOR_FILE`` names one file outright (a deployment with one store).
DEFAULT_ANCHOR_DIR = Path(__file__).resolve().parent.parent / "data" / "audit-anchors"


def anchor_file(url: str | None = None) -> Path:
    """The checkpoint file of the store at ``url`` (default: ``DATABASE_URL``)."""
    if os.environ.get("AUDIT_ANCHOR_FILE"):
        return Path(os.environ["AUDIT_ANCHOR_FILE"])
    if url is None:
        from db.engine import database_url

        url = database_url()
    key = hashlib.sha256(str(url).encode()).hexdigest()[:16]
    return Path(os.environ.get("AUDIT_ANCHOR_DIR") or DEFAULT_ANCHOR_DIR) / f"{key}.jsonl"


@dataclass(frozen=True)
class Anchor:
    """A checkpoint of the chain: row ``last_id`` had hash ``hash`` at ``at`` (China time, ISO)."""

    last_id: int
    hash: str
    at: str


def write_anchor(conn: Connection, path: Path, now: datetime) -> Anchor | None:
    """Append the chain's head as a checkpoint line to ``path`` (None for an empty chain).

    The file is opened for appending only and flushed to disk before returning: what it held before
    stays as it was, whatever happens to the database afterwards.
    """
    head = conn.execute(select(AuditHead.last_id, AuditHead.hash).where(AuditHead.id == 1)).first()
    if head is None or not head.last_id:
        return None
    found = Anchor(int(head.last_id), str(head.hash), now.replace(microsecond=0).isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"last_id": found.last_id, "hash": found.hash, "at": found.at}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())
    return found


def read_anchors(path: Path) -> list[Anchor]:
    """The checkpoints in ``path`` (none if it does not exist); a line that is not a checkpoint raises
    ValueError naming its line number (the file itself was tampered with or damaged)."""
    if not path.exists():
        return []
    anchors = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            anchors.append(Anchor(int(item["last_id"]), str(item["hash"]), str(item["at"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"锚点文件第 {number} 行无法识别：文件已被改动或损坏") from exc
    return anchors


def verify_anchors(conn: Connection, anchors: list[Anchor]) -> Broken | None:
    """The first checkpoint the stored chain no longer matches: its row gone (a truncated tail, even with
    the head rewound) or its hash different (the chain recomputed from an earlier row)."""
    for a in sorted(anchors, key=lambda a: a.last_id):
        stored = conn.execute(select(AuditLog.hash).where(AuditLog.id == a.last_id)).scalar()
        if stored is None:
            return Broken(
                a.last_id, f"缺失：{a.at} 的锚点记录了第 {a.last_id} 条，该记录已不存在（末尾记录被删除）"
            )
        if stored != a.hash:
            return Broken(a.last_id, f"与 {a.at} 的锚点不符：第 {a.last_id} 条的哈希已变（审计链被重算）")
    return None


def main(argv: list[str] | None = None) -> int:
    from db.engine import make_engine

    parser = argparse.ArgumentParser(description="审计链校验 (verify the audit trail's hash chain)")
    parser.add_argument("command", choices=["verify", "anchor"])
    parser.add_argument("--url", default=None, help="database URL (default: DATABASE_URL or data/cockpit.db)")
    parser.add_argument(
        "--anchors", default=None, help="checkpoint file (default: AUDIT_ANCHOR_FILE or data/)"
    )
    args = parser.parse_args(argv)
    engine = make_engine(args.url)
    anchors_path = (
        Path(args.anchors) if args.anchors else anchor_file(engine.url.render_as_string(hide_password=True))
    )
    t0 = time.perf_counter()
    with engine.connect() as conn:
        if not inspect(conn).has_table("audit_log"):
            print("数据库中没有审计表（audit_log）：请先运行 make migrate", file=sys.stderr)
            return 2
        if args.command == "anchor":
            from services import clock

            made = write_anchor(conn, anchors_path, clock.now())
            print(f"已写入锚点：第 {made.last_id} 条 → {anchors_path}" if made else "审计链为空，无需锚点")
            return 0
        count, broken = verify_chain(conn)
        if broken is None:
            try:
                broken = verify_anchors(conn, read_anchors(anchors_path))
            except ValueError as exc:
                print(str(exc))
                return 1
    engine.dispose()
    seconds = time.perf_counter() - t0
    if broken is not None:
        print(str(broken))
        print(f"已校验 {count} 条完好记录，用时 {seconds:.1f} 秒", file=sys.stderr)
        return 1
    print(f"审计链完整：{count} 条")
    print(f"用时 {seconds:.1f} 秒", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def written_since(
    conn: Connection, last_id: int | None, *, ignoring: tuple[str, ...] = ()
) -> tuple[int, bool]:
    """The newest audit row's id, and whether a row after ``last_id`` (None: never looked) has an action
    starting with none of ``ignoring``: how a process learns that another one wrote (a primary-key range
    of the rows since ``last_id``, one row read at most)."""
    top = conn.execute(select(func.max(AuditLog.id))).scalar() or 0
    if last_id is None or top <= last_id:
        return int(top), False
    quiet = or_(*(AuditLog.action.startswith(p) for p in ignoring)) if ignoring else None
    query = select(AuditLog.id).where(AuditLog.id > last_id, AuditLog.id <= top)
    if quiet is not None:
        query = query.where(not_(quiet))
    return int(top), conn.execute(query.limit(1)).first() is not None
