"""进度查询: what a citizen may see of a report they made, by its number and the last four digits of the
phone they gave (issue 17). The same fields as Open311's ``GET requests/{id}`` (:func:`as_open311`).

No personal data leaves: no name, no phone, no coordinates, no handler's name; the public replies (办结
反馈, 退回原因) are shown with any phone number in them masked. A wrong number and a wrong phone get
the same answer (nobody learns which events exist), and failed attempts are limited per event and per
client (:class:`AttemptLimiter`: five tries at one event's four digits in half an hour leave 9,995 of
10,000 untried).
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select

from db.models import AdminUnit, Department, Event, EventTransition
from domain.access import public_text
from domain.errors import FieldProblems
from domain.event_flow import ACTION_LABELS, Action
from domain.vocabulary import OPEN_STATUSES, AdminLevel, EventCategory, EventStatus, Rating, Urgency
from services.auth import client_from

TAIL = 4
WINDOW = timedelta(minutes=30)
MAX_FAILED_PER_EVENT = 5
MAX_FAILED_PER_CLIENT = 20
#: The steps whose written note is the public reply to the reporter.
REPLY_ACTIONS = frozenset({Action.RESOLVE, Action.REJECT})
CHINA_OFFSET = "+08:00"  # the store's times are China time (decision 0002)
NOT_FOUND = "未找到该事件，或手机号后四位与上报时所留号码不符。请核对后再试"
TOO_MANY = "查询失败次数过多，请 30 分钟后再试"


class TrackRefused(ValueError):
    """No status for this query; the message is safe to show (it never says whether the event exists)."""


@dataclass(frozen=True)
class Step:
    """A dated line of the public record: a step of the loop, or a reply."""

    at: datetime
    text: str


@dataclass(frozen=True)
class PublicStatus:
    """One report as its reporter may follow it."""

    event_id: int  # the number asked for
    shown_id: int  # the event whose progress is shown (the one it was merged into, if it was)
    category: str
    status: EventStatus
    closed: bool
    urgency: str
    level: str  # who holds it now: 月湖街道（乡镇/街道）
    department: str | None
    reported_at: datetime
    updated_at: datetime
    steps: tuple[Step, ...]
    replies: tuple[Step, ...]
    rating: str | None

    @property
    def merged(self) -> bool:
        return self.shown_id != self.event_id


class AttemptLimiter:
    """Failed attempts per key in a sliding window, in this process's memory (thread-safe)."""

    def __init__(self, window: timedelta, limit: int) -> None:
        self.window, self.limit = window, limit
        self._failed: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        seen = self._failed.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def blocked(self, key: str, now: datetime) -> bool:
        with self._lock:
            return len(self._recent(key, now)) >= self.limit

    def fail(self, key: str, now: datetime) -> None:
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failed) > 100_000:  # a flood of keys: forget the idle ones
                for k in [k for k, v in self._failed.items() if not v]:
                    del self._failed[k]


_per_event = AttemptLimiter(WINDOW, MAX_FAILED_PER_EVENT)
_per_client = AttemptLimiter(WINDOW, MAX_FAILED_PER_CLIENT)


def reset_limits() -> None:
    """Forget every failed attempt (tests; an operator after a restart gets the same)."""
    global _per_event, _per_client
    _per_event = AttemptLimiter(WINDOW, MAX_FAILED_PER_EVENT)
    _per_client = AttemptLimiter(WINDOW, MAX_FAILED_PER_CLIENT)


def client_key(address: str | None, forwarded_for: str | None = None) -> str:
    """A digest of the asking client (the limit's key; the address itself is not kept): the address the
    login limit counts (:func:`services.auth.client_from`: the connection's own, or behind the proxy on
    this machine the last X-Forwarded-For entry, which that proxy appends itself; the entries before it
    are the client's word, and counting them let a guesser dodge the limit by sending a new one each
    time). Without either, the connection's address as given."""
    who = client_from(address, forwarded_for) or address or "unknown"
    return hashlib.sha256(f"track|{who}".encode()).hexdigest()[:32]


def parse_query(number: str | None, tail: str | None) -> tuple[int, str]:
    """The event number and the four digits, or :class:`FieldProblems` naming each bad field."""
    problems: dict[str, str] = {}
    # NFKC: full-width digits typed with a Chinese input method (１２３４) read as 1234
    text = unicodedata.normalize("NFKC", number or "").strip().lstrip("#").strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 10**12:
        problems["事件编号"] = "请输入上报成功时显示的事件编号（数字）"
    digits = unicodedata.normalize("NFKC", tail or "").strip()
    if len(digits) != TAIL or not (digits.isascii() and digits.isdigit()):
        problems["手机号后四位"] = "请输入上报时所留手机号的后 4 位数字"
    if problems:
        raise FieldProblems(problems)
    return int(text), digits


def _tail(phone: str | None) -> str | None:
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone or "") if ch.isdigit())
    return digits[-TAIL:] if len(digits) >= TAIL else None


def lookup(conn: Connection, number: str, tail: str, *, now: datetime, client: str) -> PublicStatus:
    """The public status of report ``number`` if ``tail`` ends the phone given with it (or with a report
    merged into it). Raises :class:`FieldProblems` (bad input, not counted) or :class:`TrackRefused`
    (not found or not matching, counted; or too many failures)."""
    event_id, digits = parse_query(number, tail)
    event_key = f"event|{event_id}"
    if _per_event.blocked(event_key, now) or _per_client.blocked(client, now):
        raise TrackRefused(TOO_MANY)
    phones = conn.execute(
        select(Event.reporter_phone).where(or_(Event.id == event_id, Event.merged_into_id == event_id))
    ).scalars()
    if digits not in {_tail(p) for p in phones}:
        _per_event.fail(event_key, now)
        _per_client.fail(client, now)
        raise TrackRefused(NOT_FOUND)
    merged_into = conn.execute(select(Event.merged_into_id).where(Event.id == event_id)).scalar()
    return _status(conn, event_id, merged_into or event_id)


def _status(conn: Connection, event_id: int, shown_id: int) -> PublicStatus:
    e = conn.execute(
        select(
            Event.category,
            Event.status,
            Event.urgency,
            Event.rating,
            Event.reported_at,
            Event.updated_at,
            AdminUnit.name.label("owner"),
            AdminUnit.level.label("owner_level"),
            Department.name.label("department"),
        )
        .join(AdminUnit, AdminUnit.id == Event.owner_unit_id)
        .outerjoin(Department, Department.id == Event.lead_department_id)
        .where(Event.id == shown_id)
    ).one()
    trail = conn.execute(
        select(EventTransition.at, EventTransition.action, EventTransition.note)
        .where(EventTransition.event_id == shown_id)
        .order_by(EventTransition.seq)
    ).all()
    status = EventStatus(e.status)
    closed = status not in OPEN_STATUSES
    return PublicStatus(
        event_id=event_id,
        shown_id=shown_id,
        category=EventCategory(e.category).label,
        status=status,
        closed=closed,
        urgency=Urgency(e.urgency).label,
        level=f"{e.owner}（{AdminLevel(e.owner_level).label}）",
        department=e.department,
        reported_at=e.reported_at,
        updated_at=e.updated_at,
        steps=tuple(_steps(trail)),
        replies=tuple(
            Step(t.at, public_text(t.note.strip()))  # as Open311 answers: no house numbers
            for t in trail
            if Action(t.action) in REPLY_ACTIONS and (t.note or "").strip()
        ),
        rating=Rating(e.rating).label if closed and e.rating else None,
    )


#: Trail rows kept inside: departments' opinions (处置意见) and the system's 超期 marks.
INTERNAL = frozenset({Action.COMMENT, Action.OVERDUE})


def _steps(trail: Iterable) -> list[Step]:
    """The loop's steps as the public sees them (no opinions between departments, no 超期 marks)."""
    return [Step(t.at, ACTION_LABELS[Action(t.action)]) for t in trail if Action(t.action) not in INTERNAL]


def as_open311(status: PublicStatus) -> dict[str, object]:
    """The Open311 GeoReport v2 ``service_request`` of a status (no address, no position: see above)."""
    return {
        "service_request_id": str(status.event_id),
        "status": "closed" if status.closed else "open",
        "status_notes": status.replies[-1].text if status.replies else status.status.label,
        "service_name": status.category,
        "agency_responsible": status.department or status.level,
        "requested_datetime": status.reported_at.isoformat(timespec="seconds") + CHINA_OFFSET,
        "updated_datetime": status.updated_at.isoformat(timespec="seconds") + CHINA_OFFSET,
    }
