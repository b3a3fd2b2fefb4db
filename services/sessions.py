"""Server-side login sessions (登录会话, decision 0017): stay signed in through a reload, safely.

A login creates a ``login_sessions`` row and a one-time hand-over code (:func:`start`); the browser
takes the code to ``/auth/session`` (serve.py), which exchanges it, once, within
:data:`HANDOFF_SECONDS` and only from the browser that logged in, for a random token set as an
HttpOnly cookie (:func:`redeem`). Every later run of the app finds its user again from that cookie
(:func:`resume`) or checks the session it already has (:func:`check`); both re-read the account:

- idle and absolute limits per role (``domain.access.SESSION_LIMITS``);
- a credential stamp: the digest of the account's password hash, role, scope and department at login.
  A password change or reset, a role or scope change, whoever makes it (this module does not need to
  be told), ends every session of the account; a disabled account ends them too;
- :func:`end` on logout (and when a check finds a session over).

Only digests of the token, the code and the browser's XSRF token are stored. Logins, cookie hand-overs
and ends are units of work with their trail rows. Two writes are the session's own bookkeeping, like a
cache, and not business changes: sliding ``last_seen_at`` (:func:`touch`, at most once a
:data:`TOUCH_EVERY`) and the unsaved form (:func:`save_draft`); they run in their own short
transaction without a trail row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from db.models import LoginSession, User
from db.uow import UnitOfWork
from domain.access import SESSION_LIMITS, CurrentUser, session_end
from domain.vocabulary import Role
from services import audit

log = logging.getLogger("sessions")

COOKIE = "cockpit_session"
#: How long the one-time hand-over code of a login may wait for the browser to redeem it.
HANDOFF_SECONDS = 60
#: ``last_seen_at`` moves at most this often (the idle limit is measured in hours or half-hours).
TOUCH_EVERY = timedelta(minutes=1)
#: The largest unsaved form kept for a session (the inspection form is a few hundred bytes).
MAX_DRAFT_BYTES = 20_000


def digest(text: str) -> str:
    """sha256 hex of ``text``: what the store keeps of a token, a code or a browser's XSRF token."""
    return hashlib.sha256(text.encode()).hexdigest()


def credential_stamp(
    password_hash: str | None, role: Role | str, scope_unit_id: int, department_id: int | None
) -> str:
    """The digest of what a session was granted on; when any part changes, the session is over."""
    role_value = role.value if isinstance(role, Role) else str(role)
    return digest(f"{password_hash or ''}|{role_value}|{scope_unit_id}|{department_id or ''}")


@dataclass(frozen=True)
class Handoff:
    """A new login session and the one-time code the browser redeems for its cookie."""

    session_id: int
    code: str


@dataclass(frozen=True)
class Cookie:
    """The token to set as the session cookie and how long the browser should keep it (seconds)."""

    session_id: int
    token: str
    max_age: int


@dataclass(frozen=True)
class Resumed:
    """The session a cookie names and its account, checked against the store."""

    session_id: int
    user: CurrentUser
    fresh_password: bool


class SessionRefused(Exception):
    """No session could be started for this account (inactive, changed); the message is safe to show."""


_SESSION_COLUMNS = select(
    LoginSession.id,
    LoginSession.user_id,
    LoginSession.stamp,
    LoginSession.role.label("session_role"),
    LoginSession.fresh_password,
    LoginSession.started_at,
    LoginSession.last_seen_at,
    LoginSession.expires_at,
    LoginSession.ended_at,
    User.username,
    User.display_name,
    User.role,
    User.scope_unit_id,
    User.department_id,
    User.is_active,
    User.password_hash,
).join(User, User.id == LoginSession.user_id)


def _over(row: Any, now: datetime) -> str | None:
    """Why the session of this joined row is over (None: it runs)."""
    if row.ended_at is not None:
        return "ended"
    if not row.is_active:
        return "disabled"
    if row.stamp != credential_stamp(row.password_hash, row.role, row.scope_unit_id, row.department_id):
        return "credentials"
    if now >= row.expires_at:
        return "absolute"
    return session_end(Role(row.session_role), row.started_at, row.last_seen_at, now)


def _user(row: Any) -> CurrentUser:
    return CurrentUser(
        id=row.user_id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        scope_unit_id=row.scope_unit_id,
        department_id=row.department_id,
    )


# ---------------------------------------------------------------------------------------------
# Writes with a trail row: a login, the cookie hand-over, an end
# ---------------------------------------------------------------------------------------------


def start(
    uow: UnitOfWork, *, user: CurrentUser, binding: str, now: datetime, fresh_password: bool = False
) -> Handoff:
    """A login session for ``user`` (just authenticated) and its one-time hand-over code.

    ``binding``: the logging-in browser's XSRF token; only a request carrying the same token redeems
    the code (a code sent to someone else's browser logs nobody in). Refused (:class:`SessionRefused`)
    when the account is no longer active or no longer what ``user`` says.
    """
    if not binding:
        raise SessionRefused("浏览器未提供安全令牌（XSRF），无法保持登录")
    code = secrets.token_urlsafe(32)
    limits = SESSION_LIMITS[user.role]
    with uow.begin("auth.session_start"):
        s = uow.session
        row = s.execute(select(User).where(User.id == user.id)).scalar_one_or_none()
        if (
            row is None
            or not row.is_active
            or row.username != user.username
            or Role(row.role) is not user.role
            or row.scope_unit_id != user.scope_unit_id
            or row.department_id != user.department_id
        ):
            raise SessionRefused("登录状态无效，请重新登录")
        session = LoginSession(
            user_id=user.id,
            token_hash=None,
            handoff_hash=digest(code),
            handoff_until=now + timedelta(seconds=HANDOFF_SECONDS),
            binding=digest(binding),
            stamp=credential_stamp(row.password_hash, row.role, row.scope_unit_id, row.department_id),
            role=user.role,
            fresh_password=fresh_password,
            started_at=now,
            last_seen_at=now,
            expires_at=now + limits.absolute,
        )
        s.add(session)
        s.flush()
        audit.record(
            s.connection(),
            **audit.who(user),
            action="auth.session_start",
            entity="login_sessions",
            entity_id=session.id,
            before=None,
            after={
                "user_id": user.id,
                "role": user.role.value,
                "idle_minutes": int(limits.idle.total_seconds() // 60),
                "expires_at": session.expires_at,
            },
        )
        uow.commit()
        return Handoff(session.id, code)


def redeem(uow: UnitOfWork, *, code: str, binding: str, now: datetime) -> Cookie | None:
    """The cookie for a hand-over code: once, before :data:`HANDOFF_SECONDS`, from the same browser.

    None (and nothing written) for an unknown, used or late code, another browser, or a session over.
    """
    if not code or not binding:
        return None
    with uow.begin("auth.session_cookie"):
        s = uow.session
        row = s.execute(_SESSION_COLUMNS.where(LoginSession.handoff_hash == digest(code))).one_or_none()
        if row is None:
            log.info("session hand-over refused: unknown or used code")
            return None
        handoff = s.execute(
            select(LoginSession.handoff_until, LoginSession.binding).where(LoginSession.id == row.id)
        ).one()
        if handoff.handoff_until is None or now > handoff.handoff_until:
            log.info("session hand-over refused for session %s: late", row.id)
            return None
        if not secrets.compare_digest(handoff.binding, digest(binding)):
            log.info("session hand-over refused for session %s: another browser", row.id)
            return None
        if _over(row, now) is not None:
            return None
        token = secrets.token_urlsafe(32)
        taken = s.execute(
            update(LoginSession)
            .where(LoginSession.id == row.id, LoginSession.handoff_hash == digest(code))
            .values(token_hash=digest(token), handoff_hash=None, handoff_until=None, last_seen_at=now)
            .returning(LoginSession.id)
        ).one_or_none()
        if taken is None:  # redeemed a moment ago by a simultaneous request: a code works once
            return None
        audit.record(
            s.connection(),
            actor_id=row.user_id,
            actor_role=Role(row.role).value,
            action="auth.session_cookie",
            entity="login_sessions",
            entity_id=row.id,
            before={"cookie_set": False},
            after={"cookie_set": True},
        )
        uow.commit()
    max_age = int((row.expires_at - now).total_seconds())
    return Cookie(row.id, token, max(max_age, 0))


def end(
    uow: UnitOfWork, *, session_id: int, reason: str, now: datetime, actor: CurrentUser | None = None
) -> bool:
    """End a session for good (``reason``: logout, idle, absolute, credentials, disabled); False when
    it had already ended. ``actor`` None: the system found it over."""
    with uow.begin("auth.session_end"):
        s = uow.session
        ended = s.execute(
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason, draft_json=None, handoff_hash=None, handoff_until=None)
            .returning(LoginSession.user_id)
        ).one_or_none()
        if ended is None:
            return False
        audit.record(
            s.connection(),
            **audit.who(actor),
            action="auth.logout" if reason == "logout" else "auth.session_end",
            entity="login_sessions",
            entity_id=session_id,
            before={"user_id": ended.user_id, "ended": False},
            after={"user_id": ended.user_id, "ended": True, "reason": reason},
        )
        uow.commit()
        return True


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def resume(conn: Connection, token: str | None, now: datetime) -> tuple[Resumed | None, str | None]:
    """The session and account a cookie's ``token`` stands for, or (None, why not).

    Why not: None for no cookie or an unknown token; else the reason the session is over (idle,
    absolute, credentials, disabled, ended) for the caller to end it and say so.
    """
    if not token:
        return None, None
    row = conn.execute(_SESSION_COLUMNS.where(LoginSession.token_hash == digest(token))).one_or_none()
    if row is None:
        return None, None
    over = _over(row, now)
    if over is not None:
        return Resumed(row.id, _user(row), row.fresh_password), over
    return Resumed(row.id, _user(row), row.fresh_password), None


def check(conn: Connection, session_id: int, user: CurrentUser, now: datetime) -> str | None:
    """Why the tab's session ``session_id`` of ``user`` is over (None: it runs)."""
    row = conn.execute(_SESSION_COLUMNS.where(LoginSession.id == session_id)).one_or_none()
    if row is None or row.user_id != user.id:
        return "ended"
    return _over(row, now)


def session_of_token(conn: Connection, token: str | None, now: datetime) -> int | None:
    """The id of the running session a cookie's token stands for (None when none or over)."""
    found, over = resume(conn, token, now)
    return found.session_id if found is not None and over is None else None


def draft(conn: Connection, session_id: int) -> dict[str, Any] | None:
    """The unsaved form kept for this session (None when none)."""
    raw = conn.execute(
        select(LoginSession.draft_json).where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
    ).scalar()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------------------------------------
# The session's own bookkeeping (no trail row): the idle clock and the unsaved form
# ---------------------------------------------------------------------------------------------


def touch(engine: Engine, session_id: int, now: datetime) -> None:
    """Slide the idle clock of a running session (at most once a :data:`TOUCH_EVERY`). Best effort: a
    busy store skips a beat, the next run slides it."""
    try:
        with engine.begin() as conn:
            conn.execute(
                update(LoginSession)
                .where(
                    LoginSession.id == session_id,
                    LoginSession.ended_at.is_(None),
                    LoginSession.last_seen_at < now - TOUCH_EVERY,
                )
                .values(last_seen_at=now)
            )
    except SQLAlchemyError as exc:  # locked, busy or gone: the idle clock moves on the next run
        log.info("session %s not touched: %s", session_id, exc.__class__.__name__)


def save_draft(engine: Engine, session_id: int, value: dict[str, Any] | None) -> bool:
    """Keep (or, with None, drop) the unsaved form of a running session; False when refused (too big,
    or the session is over)."""
    text = None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if text is not None and len(text.encode()) > MAX_DRAFT_BYTES:
        return False
    with engine.begin() as conn:
        changed = conn.execute(
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.ended_at.is_(None))
            .values(draft_json=text)
        ).rowcount
    return changed == 1
