"""Open311 API keys (接口密钥), one per channel: 12345 hotline, 110 linkage, video analytics, a mini-program.

A key is a random token shown once; only its sha256 is stored (table ``api_keys``), as for the wall
screens' display tokens. A key is scoped to an area (a unit and its subtree) and to the event categories
it may file (none listed: all), and carries its own per-minute limit. Administrators create and revoke
keys (audited); a revoked key is refused on its next call. Every call reads the row, except the POSTs
whose write path checks the key (decision 0059): they take the channel from this process's memory of
keys seen valid, and SQLite's batch (in its write transaction) or PostgreSQL's read ahead of the
duplicates (in the same statement) refuses a key revoked since.

The rate limit is a per-process fixed one-minute window per key (decision 0024): cheap, no write per
call; with several server processes each allows the key's limit, which is acceptable for a limit that
protects the store from a runaway client rather than meters use.

``python -m services.api_keys create --channel 12345 --label 12345热线 --area 330802 [--categories urban,dispute] [--per-minute 600]``
``python -m services.api_keys list`` · ``python -m services.api_keys revoke <id>``
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, bindparam, exists, select
from sqlalchemy.orm import Session

from db.direct import Direct, one_of
from db.models import AdminUnit, ApiKey
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.errors import FieldProblems
from domain.vocabulary import EventCategory, Role
from services import audit
from services.access import require_area
from services.geography import tree

CHANNEL = re.compile(r"[a-z0-9_]{1,24}")
DEFAULT_PER_MINUTE = 600
PREFIX = "o311_"


class KeyStamp(NamedTuple):
    """A key's row as it was read (decision 0059): a write path that takes the key from memory checks that
    the row still reads so, unrevoked. Its scope moves with a boundary import, and a deleted key's id can
    be given to a new key (its hash differs)."""

    key_id: int
    key_hash: str
    scope_unit_id: int
    categories: str
    per_minute: int


@dataclass(frozen=True)
class Channel:
    """A valid key's channel as the API sees it."""

    key_id: int
    channel: str
    label: str
    scope_unit_id: int
    categories: frozenset[str]  # empty: every category
    per_minute: int
    #: The row as read (:func:`channel_of`); None for a channel made by hand.
    stamp: KeyStamp | None = None

    @property
    def role(self) -> str:
        """The audit trail's actor for this channel (``api:12345``)."""
        return f"api:{self.channel}"

    def as_user(self) -> CurrentUser:
        """A read-only viewer of the key's area, for the scope checks of services.access."""
        return CurrentUser(
            id=0,
            username=self.role,
            display_name=self.label,
            role=Role.COMMAND_CENTER,
            scope_unit_id=self.scope_unit_id,
        )

    def may_file(self, category: str) -> bool:
        return not self.categories or category in self.categories


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    uow: UnitOfWork,
    *,
    actor: CurrentUser | None,
    channel: str,
    label: str,
    area_code: str,
    now: datetime,
    categories: tuple[str, ...] = (),
    per_minute: int = DEFAULT_PER_MINUTE,
) -> tuple[int, str]:
    """A new key for ``channel`` in the area ``area_code``: its id and the key (shown once)."""
    problems: dict[str, str] = {}
    if not CHANNEL.fullmatch(channel or ""):
        problems["渠道"] = "渠道代码无效（1–24 位小写字母、数字或 _，如 12345、police_110）"
    if not (label or "").strip() or len(label.strip()) > 100:
        problems["名称"] = "请填写名称（不超过 100 字）"
    bad = [c for c in categories if c not in EventCategory._value2member_map_]
    if bad:
        problems["事项"] = f"未知的事项代码：{'、'.join(bad)}"
    if not 1 <= per_minute <= 100_000:
        problems["每分钟上限"] = "每分钟上限应在 1 到 100000 之间"
    with uow.begin("api_keys.create"):
        conn = uow.conn
        unit = conn.execute(select(AdminUnit.id).where(AdminUnit.code == area_code)).scalar()
        if unit is None:
            problems["区划编码"] = f"区划编码 {area_code} 不存在"
        if problems:
            raise FieldProblems(problems)
        if actor is not None:  # an administrator files keys only within their own area
            require_area(tree(conn), actor, unit, "api_key.create")
        key = PREFIX + secrets.token_urlsafe(24)
        row = ApiKey(
            key_hash=digest(key),
            channel=channel,
            label=label.strip(),
            scope_unit_id=unit,
            categories=",".join(sorted(set(categories))),
            per_minute=per_minute,
            created_at=now,
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(
            conn,
            **audit.who(actor),
            action="api_key.create",
            entity="api_keys",
            entity_id=row.id,
            before=None,
            after={
                "channel": channel,
                "label": row.label,
                "scope_unit_id": unit,
                "categories": row.categories,
            },
            at=now,
        )
        key_id = row.id
        uow.commit()
    return key_id, key


def list_keys(conn: Connection, actor: CurrentUser | None = None) -> list[dict]:
    """Every key (never the key itself) in ``actor``'s area (all without one): id, channel, label, area,
    categories, limit, created, revoked."""
    with Session(bind=conn) as s:
        rows = s.execute(
            select(ApiKey, AdminUnit.name)
            .join(AdminUnit, AdminUnit.id == ApiKey.scope_unit_id)
            .order_by(ApiKey.id)
        ).all()
    return [
        {
            "id": k.id,
            "channel": k.channel,
            "label": k.label,
            "area": name,
            "categories": k.categories,
            "per_minute": k.per_minute,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k, name in rows
        if actor is None or _mine(conn, actor, k.scope_unit_id)
    ]


def _mine(conn: Connection, actor: CurrentUser, unit_id: int) -> bool:
    here = tree(conn)
    return unit_id in here and here.contains(actor.scope_unit_id, unit_id)


def revoke_key(uow: UnitOfWork, *, actor: CurrentUser | None, key_id: int, now: datetime) -> bool:
    """Revoke key ``key_id``; False if there is no such key or it was revoked already."""
    with uow.begin("api_keys.revoke"):
        row = uow.session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        if actor is not None:
            require_area(tree(uow.conn), actor, row.scope_unit_id, "api_key.revoke")
        row.revoked_at = now
        uow.session.flush()
        audit.record(
            uow.conn,
            **audit.who(actor),
            action="api_key.revoke",
            entity="api_keys",
            entity_id=key_id,
            before={"revoked_at": None},
            after={"revoked_at": now},
            at=now,
        )
        uow.commit()
    forget(key_id)
    return True


# Read on every API call (a revoked key is refused on its next call): one Core statement, built once,
# run on the driver on PostgreSQL (db.direct, decision 0058).
_BY_HASH = Direct(
    select(
        ApiKey.id,
        ApiKey.channel,
        ApiKey.label,
        ApiKey.scope_unit_id,
        ApiKey.categories,
        ApiKey.per_minute,
        ApiKey.revoked_at,
    ).where(ApiKey.key_hash == bindparam("key_hash"))
)


def channel_of(conn: Connection, key: str | None) -> Channel | None:
    """The channel of a valid, unrevoked key, or None."""
    if not key or len(key) > 200:
        return None
    key_hash = digest(key)
    found = _BY_HASH.rows(conn, {"key_hash": key_hash})
    if not found:
        return None
    key_id, channel, label, scope_unit_id, categories, per_minute, revoked_at = found[0]
    if revoked_at is not None:
        return None
    return Channel(
        key_id=key_id,
        channel=channel,
        label=label,
        scope_unit_id=scope_unit_id,
        categories=frozenset(c for c in categories.split(",") if c),
        per_minute=per_minute,
        stamp=KeyStamp(int(key_id), key_hash, int(scope_unit_id), categories, int(per_minute)),
    )


# -- keys seen valid (decision 0059) ------------------------------------------------------------------

#: Channels of keys found valid, per store and by the key's digest. Used only where the write path checks
#: the key's row (:func:`unchanged`, services.intake's read ahead): a key revoked, re-scoped by a
#: boundary import or replaced since is caught there (:class:`KeyChanged`), and forgotten then; one
#: revoked in this process is forgotten at once.
_KNOWN: weakref.WeakKeyDictionary[Any, dict[str, Channel]] = weakref.WeakKeyDictionary()
_known_lock = threading.Lock()
KNOWN_MAX = 1024


class KeyChanged(Exception):
    """The key's row no longer reads as this process remembered it (revoked, re-scoped by a boundary
    import, or deleted and its id given to another key): nothing was written; read the key again."""

    def __init__(self, key_id: int) -> None:
        super().__init__(f"api key {key_id} changed since it was read")
        self.key_id = key_id


def known_channel(store: Any, key: str | None) -> Channel | None:
    """The channel of ``key`` if this process has seen it valid in ``store`` (an Engine; no query)."""
    if not key or len(key) > 200:
        return None
    with _known_lock:
        return _KNOWN.get(store, {}).get(digest(key))


def remember(store: Any, key: str, channel: Channel) -> None:
    with _known_lock:
        known = _KNOWN.setdefault(store, {})
        if len(known) >= KNOWN_MAX:
            known.clear()
        known[digest(key)] = channel


def forget(key_id: int) -> None:
    """Drop key ``key_id`` from this process's memory, in every store (revoked or changed)."""
    with _known_lock:
        for known in _KNOWN.values():
            for h in [h for h, c in known.items() if c.key_id == key_id]:
                del known[h]


#: A key's columns as its stamp holds them, in :class:`KeyStamp`'s order.
_STAMPED = (ApiKey.id, ApiKey.key_hash, ApiKey.scope_unit_id, ApiKey.categories, ApiKey.per_minute)
#: The unrevoked rows among some key ids, in the caller's transaction: one statement per batch.
_LIVE = {
    dialect: Direct(select(*_STAMPED).where(ids, ApiKey.revoked_at.is_(None)))
    for dialect, ids in one_of(ApiKey.id, "ids").items()
}


def stamp_params(stamp: KeyStamp) -> dict[str, Any]:
    """The parameters of :func:`unchanged_clause` for ``stamp``."""
    return {f"key_{name}": value for name, value in zip(KeyStamp._fields, stamp, strict=True)}


def unchanged_clause() -> ColumnElement[bool]:
    """Whether the key bound by :func:`stamp_params` still reads so, unrevoked: :func:`unchanged` as a
    condition, for a statement that checks the key beside its own work (services.intake's read ahead)."""
    same = [c == bindparam(f"key_{name}") for c, name in zip(_STAMPED, KeyStamp._fields, strict=True)]
    return exists(select(ApiKey.id).where(*same, ApiKey.revoked_at.is_(None)))


def unchanged(conn: Connection, stamps: set[KeyStamp]) -> set[KeyStamp]:
    """Which of the keys as read (``stamps``) still read so, unrevoked, in the caller's transaction."""
    if not stamps:
        return set()
    statement = _LIVE["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    rows = statement.rows(conn, {"ids": sorted({s.key_id for s in stamps})})
    now = {KeyStamp(int(i), h, int(u), c, int(p)) for i, h, u, c, p in rows}
    return stamps & now


class RateWindow:
    """Per-key fixed one-minute windows in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, tuple[int, int]] = {}

    def allow(self, channel: Channel, at: float | None = None) -> bool:
        minute = int((time.monotonic() if at is None else at) // 60)
        with self._lock:
            start, used = self._counts.get(channel.key_id, (minute, 0))
            if start != minute:
                start, used = minute, 0
            if used >= channel.per_minute:
                return False
            self._counts[channel.key_id] = (start, used + 1)
            return True

    @staticmethod
    def seconds_left(at: float | None = None) -> int:
        """Whole seconds until the next window opens (the 429's Retry-After)."""
        now = time.monotonic() if at is None else at
        return max(1, math.ceil(60 - now % 60))


LIMITS = RateWindow()


def main(argv: list[str] | None = None) -> None:
    from db.engine import make_engine
    from services import clock

    parser = argparse.ArgumentParser(prog="python -m services.api_keys", description="Open311 接口密钥")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--channel", required=True)
    c.add_argument("--label", required=True)
    c.add_argument("--area", required=True, help="区划编码")
    c.add_argument("--categories", default="", help="逗号分隔的事项代码，留空为全部")
    c.add_argument("--per-minute", type=int, default=DEFAULT_PER_MINUTE)
    sub.add_parser("list")
    r = sub.add_parser("revoke")
    r.add_argument("id", type=int)
    args = parser.parse_args(argv)
    engine = make_engine()
    if args.cmd == "create":
        cats = tuple(c for c in args.categories.split(",") if c)
        key_id, key = create_key(
            UnitOfWork(engine),
            actor=None,
            channel=args.channel,
            label=args.label,
            area_code=args.area,
            now=clock.now(),
            categories=cats,
            per_minute=args.per_minute,
        )
        print(f"#{key_id} {key}")
    elif args.cmd == "list":
        with engine.connect() as conn:
            for k in list_keys(conn):
                state = f"已吊销 {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "有效"
                print(
                    f"#{k['id']}\t{k['channel']}\t{k['label']}\t{k['area']}\t{k['categories'] or '全部'}\t{state}"
                )
    else:
        print(
            "已吊销"
            if revoke_key(UnitOfWork(engine), actor=None, key_id=args.id, now=clock.now())
            else "无此有效密钥"
        )


if __name__ == "__main__":
    main()
