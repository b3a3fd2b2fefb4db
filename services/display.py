"""Read-only display tokens for wall screens (大屏), and the figures a screen shows.

A token opens ``/big_screen?token=…`` without a login, read-only, for one area; only its SHA-256
is stored (settings key ``display.tokens``), and an admin can revoke it at any time.
``python -m services.display create --area 330802 --label 柯城区指挥大厅`` prints a new one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from db.models import AdminUnit, Event, Inspection, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.vocabulary import OPEN_STATUSES, AdminLevel, Rating, Role, SafetyCode
from services import settings
from services.access import Scope

TOKENS_KEY = "display.tokens"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _load(conn: Connection, lock: bool = False) -> dict:
    raw = settings.read(conn, TOKENS_KEY, lock=lock)
    return json.loads(raw) if raw else {}


def _save(conn: Connection, tokens: dict, now: datetime) -> None:
    settings.write(
        conn, TOKENS_KEY, json.dumps(tokens, ensure_ascii=False), now, action="display.tokens"
    )  # hashes only


def create_token(uow: UnitOfWork, *, area_code: str, label: str, now: datetime) -> str:
    """A new display token for the area ``area_code``; only its hash is kept."""
    if not (label or "").strip():
        raise ValueError("请填写大屏名称")
    with uow.begin("display.create_token"):
        conn = uow.conn
        unit = conn.execute(select(AdminUnit.id).where(AdminUnit.code == area_code)).scalar()
        if unit is None:
            raise ValueError(f"区划编码 {area_code} 不存在")
        token = secrets.token_urlsafe(24)
        tokens = _load(conn, lock=True)
        tokens[_digest(token)] = {
            "label": label.strip(),
            "scope_unit_id": unit,
            "created_at": now.isoformat(),
            "revoked": False,
        }
        _save(conn, tokens, now)
        uow.commit()
    return token


def list_tokens(conn: Connection) -> list[dict]:
    return [{"id": h[:12], **v} for h, v in _load(conn).items()]


def revoke_token(uow: UnitOfWork, token_id: str, now: datetime) -> bool:
    """Revoke the token whose hash starts with ``token_id`` (as listed); False if none matches."""
    with uow.begin("display.revoke_token"):
        tokens = _load(uow.conn, lock=True)
        hit = [h for h in tokens if h.startswith(token_id)]
        if not token_id or len(hit) != 1:
            return False
        tokens[hit[0]]["revoked"] = True
        _save(uow.conn, tokens, now)
        uow.commit()
    return True


def viewer_for(conn: Connection, token: str | None) -> CurrentUser | None:
    """The read-only viewer a valid, unrevoked token stands for, or None."""
    if not token:
        return None
    entry = _load(conn).get(_digest(token))
    if not entry or entry.get("revoked"):
        return None
    return CurrentUser(
        id=0,
        username="display",
        display_name=entry["label"],
        role=Role.COMMAND_CENTER,
        scope_unit_id=int(entry["scope_unit_id"]),
    )


def screen_kpis(conn: Connection, scope: Scope, now: datetime) -> dict[str, str]:
    """Today's figures for the wall: events, closed, overdue, satisfaction (30 days), red venues, inspections."""
    day = datetime.combine(now.date(), datetime.min.time())
    where = scope.where()
    count = lambda *c: conn.execute(select(func.count()).select_from(Event).where(*where, *c)).scalar_one()  # noqa: E731
    new = count(Event.reported_at >= day)
    closed = count(Event.resolved_at >= day)
    late = count(Event.status.in_(OPEN_STATUSES), Event.due_at < now)
    since = now - timedelta(days=30)
    rated = count(Event.rating.is_not(None), Event.resolved_at >= since)
    happy = count(Event.rating.in_([Rating.SATISFIED, Rating.BASICALLY]), Event.resolved_at >= since)
    grids = scope.grid_ids or (-1,)
    red = conn.execute(
        select(func.count())
        .select_from(Venue)
        .where(Venue.grid_id.in_(grids), Venue.safety_code == SafetyCode.RED)
    ).scalar_one()
    done = conn.execute(
        select(func.count())
        .select_from(Inspection)
        .join(Venue, Venue.id == Inspection.venue_id)
        .where(Venue.grid_id.in_(grids), Inspection.inspected_at >= day)
    ).scalar_one()
    due = conn.execute(
        select(func.count())
        .select_from(Venue)
        .where(Venue.grid_id.in_(grids), Venue.next_due_on <= now.date(), Venue.is_active)
    ).scalar_one()
    return {
        "今日事件": f"{new:,}",
        "今日办结": f"{closed:,}",
        "超期事件": f"{late:,}",
        "满意率(30天)": f"{happy / rated * 100:.1f}%" if rated else "—",
        "红码场所": f"{red:,}",
        "今日检查 已完成/待检": f"{done:,} / {due:,}",
    }


def open_by_level(conn: Connection, scope: Scope, top: AdminLevel = AdminLevel.CITY) -> dict[str, int]:
    """Open events by the level that owns them now (村 → 镇 → 县 → 市): the flow across the levels, from
    the grid's village up to ``top`` (the area's own level: no 市 0 on a county's screen), and above it
    only a level that holds some (an event of the area sent up to the city)."""
    owner = AdminUnit.__table__.alias("owner")
    rows = conn.execute(
        select(owner.c.level, func.count())
        .select_from(Event)
        .join(owner, owner.c.id == Event.owner_unit_id)
        .where(*scope.where(), Event.status.in_(OPEN_STATUSES))
        .group_by(owner.c.level)
    ).all()
    got = {AdminLevel(level).value: n for level, n in rows}
    return {
        lvl.label: got.get(lvl.value, 0)
        for lvl in reversed(list(AdminLevel))
        if lvl is not AdminLevel.GRID and (lvl.depth >= top.depth or got.get(lvl.value))
    }


def rotation_index(now: datetime, seconds: int, n: int) -> int:
    """Which of ``n`` areas a playlist shows now: a function of the clock, so every refresh and reload
    of the screen keeps its place."""
    if n <= 0 or seconds <= 0:
        return 0
    return int(now.timestamp() // seconds) % n


def main(argv: list[str] | None = None) -> int:
    import os
    import sys

    from db.engine import make_engine
    from services import clock

    parser = argparse.ArgumentParser(description="大屏只读令牌 (display tokens)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--area", required=True, help="区划编码：库中任一单位的编码（如本县的编码）")
    c.add_argument("--label", required=True, help="大屏名称，如 县指挥大厅")
    c.add_argument(
        "--base-url",
        default=os.environ.get("PUBLIC_URL") or f"http://localhost:{os.environ.get('PORT', '8501')}",
        help="大屏浏览器打开本系统的地址（默认 PUBLIC_URL，或 http://localhost:PORT）",
    )
    sub.add_parser("list")
    r = sub.add_parser("revoke")
    r.add_argument("id")
    args = parser.parse_args(argv)
    engine = make_engine()
    if args.cmd == "create":
        try:
            token = create_token(UnitOfWork(engine), area_code=args.area, label=args.label, now=clock.now())
        except ValueError as exc:  # an unknown area, a blank name: said, not a traceback
            print(f"未创建：{exc}（请核对区划编码：与导入的区划文件中的编码一致）", file=sys.stderr)
            return 2
        base = args.base_url.rstrip("/")
        print(f"大屏地址: {base}/big_screen?token={token}&area={args.area}")
    elif args.cmd == "list":
        with engine.connect() as conn:
            for t in list_tokens(conn):
                print(f"{t['id']}  {t['label']}  {'已吊销' if t['revoked'] else '有效'}  {t['created_at']}")
    elif revoke_token(UnitOfWork(engine), args.id, clock.now()):
        print("已吊销")
    else:
        print("未找到该令牌", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "create_token",
    "list_tokens",
    "open_by_level",
    "revoke_token",
    "rotation_index",
    "screen_kpis",
    "viewer_for",
]
