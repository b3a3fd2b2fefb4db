"""Password login: argon2 hashes in the store, lock-out after repeated failures."""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, case, select, update
from sqlalchemy.orm import Session

from db.models import User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.errors import FieldProblems
from domain.vocabulary import Role
from services import audit

log = logging.getLogger("auth")
MAX_FAILURES = 5
MIN_PASSWORD = 8
LOCK_MINUTES = 15
MAX_PASSWORD = 128
#: A temporary password's letters: no 0/O, 1/l/I look-alikes (it is read out or copied by hand).
TEMPORARY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
TEMPORARY_LENGTH = 12
_hasher = PasswordHasher()


class LoginRefused(Exception):
    """Login failed; the message is safe to show (it never says whether the username exists)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_problem(password: str | None) -> str | None:
    """What is wrong with ``password`` under the one password rule (length), in Chinese; None if fine."""
    if len(password or "") < MIN_PASSWORD:
        return f"密码至少 {MIN_PASSWORD} 位，请重新输入"
    if len(password or "") > MAX_PASSWORD:
        return f"密码最多 {MAX_PASSWORD} 位，请重新输入"
    return None


def new_password_problems(password: str | None, repeat: str | None, field: str = "新密码") -> dict[str, str]:
    """The problems of a password typed twice (``field`` and 再次输入 + ``field``), every one at once."""
    problems: dict[str, str] = {}
    if problem := password_problem(password):
        problems[field] = problem
    if (password or "") != (repeat or ""):
        problems[f"再次输入{field}"] = "两次输入的密码不一致，请重新输入"
    return problems


def temporary_password() -> str:
    """A random temporary password (12 characters, letters and digits, no look-alikes), shown only once."""
    while True:
        word = "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))
        if any(c.isdigit() for c in word) and any(c.isalpha() for c in word):
            return word


#: Failed logins one client address may make in :data:`LOCK_MINUTES` before it is refused: an account is
#: locked after 5, but trying one password on many accounts (password spraying) was never slowed.
CLIENT_FAILURES = 30
#: Unknown names and client addresses kept in memory at most (the oldest forgotten first).
KEPT = 10_000


class ClientFailures:
    """Failed logins per client address in this process, over a sliding window of LOCK_MINUTES."""

    def __init__(self, most: int = CLIENT_FAILURES) -> None:
        self.most = most
        self._lock = threading.Lock()
        self._at: dict[str, list[datetime]] = {}

    def _recent(self, client: str, now: datetime) -> list[datetime]:
        since = now - timedelta(minutes=LOCK_MINUTES)
        kept = [t for t in self._at.get(client, []) if t > since]
        if kept:
            self._at[client] = kept
        else:
            self._at.pop(client, None)
        return kept

    def refusal(self, client: str, now: datetime) -> str | None:
        """Why ``client`` may not try now (the minutes until its oldest counted failure leaves the
        window), or None."""
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.most:
                return None
            until = recent[0] + timedelta(minutes=LOCK_MINUTES)
        return f"此设备登录失败次数过多，请 {_minutes_until(until, now)} 分钟后再试"

    def failed(self, client: str, now: datetime) -> None:
        with self._lock:
            self._recent(client, now)
            self._at.setdefault(client, []).append(now)
            if len(self._at) > KEPT:  # the oldest clients forgotten first
                self._at.pop(next(iter(self._at)))


CLIENTS = ClientFailures()


def client_from(remote: str | None, forwarded: str | None) -> str | None:
    """The address a login attempt came from, for the per-client limit: the connection's own address;
    behind a proxy on this machine (deploy/cluster.py's nginx) the last address of X-Forwarded-For,
    which that proxy appends itself (the ones before it are the client's word); None for a browser on
    this machine (a developer, a test) or a local proxy that says nothing: no limit then, rather than
    one limit shared by everyone behind the proxy."""
    if not remote:
        return None
    try:
        local = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return None
    if not local:
        return remote
    last = (forwarded or "").split(",")[-1].strip()
    return last or None


def authenticate(
    uow: UnitOfWork, username: str, password: str, now: datetime, client: str | None = None
) -> CurrentUser:
    """The user for this username and password, or :class:`LoginRefused` (counted towards lock-out).

    A failure is counted and recorded (and committed) before the refusal is raised; a success after
    failures clears the count, recorded too. ``client``: the address the attempt came from (None: not
    known, no per-client limit); :data:`CLIENT_FAILURES` failures from it in LOCK_MINUTES refuse it.
    """
    username = (username or "").strip()
    if not username or not password:
        raise LoginRefused("请输入用户名和密码")
    if client is not None and (why := CLIENTS.refusal(client, now)) is not None:
        log.warning("login refused: client over its failures")
        raise LoginRefused(why)
    try:
        with uow.begin("auth.login"):
            return _authenticate(uow, username, password, now)
    except LoginRefused:
        if client is not None:
            CLIENTS.failed(client, now)
        raise


def _authenticate(uow: UnitOfWork, username: str, password: str, now: datetime) -> CurrentUser:
    session = uow.session
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.is_active or not user.password_hash:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        log.info("login refused: unknown or inactive account")
        raise LoginRefused(_NO_SUCH.fail(username, now))  # the answers a real account would get
    if user.locked_until and user.locked_until > now:
        raise LoginRefused(_locked_for(user.locked_until, now))
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        lock_before = user.locked_until  # the UPDATE below refreshes the loaded object
        failures, locked, stored_lock = _count_failure(session, user.id, now)
        # The trail, after the change (row, then the trail's head: one lock order for every use case).
        # Nobody is logged in yet (actor None, "anonymous"); the row names the account only.
        audit.record(
            session.connection(),
            actor_id=None,
            actor_role="anonymous",
            action="auth.lockout" if locked else "auth.login_failed",
            entity="users",
            entity_id=user.id,
            before={"failed_logins": failures - 1, "locked_until": lock_before},
            after={"failed_logins": 0 if locked else failures, "locked_until": stored_lock},
        )
        uow.commit()
        log.info("login refused for user id %s (%s failures)", user.id, failures)
        raise LoginRefused(_wrong_password(failures, locked=bool(locked))) from None
    if user.failed_logins or user.locked_until:
        before = {"failed_logins": user.failed_logins, "locked_until": user.locked_until}
        session.execute(update(User).where(User.id == user.id).values(failed_logins=0, locked_until=None))
        audit.record(
            session.connection(),
            actor_id=user.id,
            actor_role=Role(user.role).value,
            action="auth.login_reset",
            entity="users",
            entity_id=user.id,
            before=before,
            after={"failed_logins": 0, "locked_until": None},
        )
        uow.commit()
    return _current(user)


def _minutes_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))  # 15 minutes reads 15, not 16


def _locked_for(until: datetime, now: datetime) -> str:
    return f"连续登录失败次数过多，账号已锁定，请 {_minutes_until(until, now)} 分钟后再试"


def _wrong_password(failures: int, *, locked: bool) -> str:
    """The answer to a wrong password (the ``failures``-th in a row), the same for an unknown name."""
    if locked:
        return f"连续 {MAX_FAILURES} 次密码错误，账号已锁定 {LOCK_MINUTES} 分钟"
    return f"用户名或密码错误（还可尝试 {MAX_FAILURES - failures} 次）"


class _Unknown:
    """Failures of names that are no active account, counted in this process as the store counts a
    real account's: the same "还可尝试 n 次" and the same lock, so the answers do not tell which names
    exist (they did: only real accounts were told how many tries were left, or that they were locked).
    At most :data:`KEPT` names, the oldest forgotten first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    def fail(self, username: str, now: datetime) -> str:
        key = username.casefold()
        with self._lock:
            failures, until = self._seen.pop(key, (0, None))
            if until is not None and until > now:
                self._seen[key] = (failures, until)
                return _locked_for(until, now)
            failures += 1
            locked = failures >= MAX_FAILURES
            if locked:
                self._seen[key] = (0, now + timedelta(minutes=LOCK_MINUTES))
            else:
                self._seen[key] = (failures, None)
            while len(self._seen) > KEPT:
                self._seen.popitem(last=False)
        return _wrong_password(failures, locked=locked)


_NO_SUCH = _Unknown()


def _count_failure(
    session: Session, user_id: int, now: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """Count one failed login in the store itself (one UPDATE: simultaneous wrong passwords each count).

    Returns this failure's number; when it is the MAX_FAILURES-th, the lock's end (the counter then
    starts again at 0 for after the lock), else None; and the lock as stored now."""
    reaches = User.failed_logins + 1 >= MAX_FAILURES
    lock_end = now + timedelta(minutes=LOCK_MINUTES)
    row = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            failed_logins=case((reaches, 0), else_=User.failed_logins + 1),
            # a lock still running stays (a simultaneous failure may have just set it); an expired one goes
            locked_until=case((reaches, lock_end), (User.locked_until > now, User.locked_until), else_=None),
        )
        .returning(User.failed_logins, User.locked_until)
    ).one()
    if row.failed_logins == 0:  # this failure reached the limit
        return MAX_FAILURES, lock_end, row.locked_until
    return row.failed_logins, None, row.locked_until


def user_for_identity(
    conn: Connection | Session, claims: Mapping[str, object], claim: str = "preferred_username"
) -> CurrentUser:
    """The active local account named by an identity provider's ``claim`` (OIDC through ``st.login``).

    The provider says who the person is; the store says what they may do (role, scope, department), so
    an account must be opened here first. Refused (:class:`LoginRefused`) for a missing claim, an
    unknown or inactive account (lock-out after failures is the provider's); the log carries no claims.
    """
    username = str(claims.get(claim) or "").strip()
    if not username:
        log.info("oidc login refused: the identity has no %s claim", claim)
        raise LoginRefused(f"统一身份认证未提供账号（{claim}），请联系管理员")
    user = conn.execute(_USER_COLUMNS.where(User.username == username)).one_or_none()
    if user is None or not user.is_active:
        log.info("oidc login refused: no active local account for this identity")
        raise LoginRefused("您的统一身份认证账号尚未在本系统开通或已停用，请联系管理员")
    return _current(user)


def set_password(uow: UnitOfWork, *, username: str, password: str, actor=None) -> None:
    """Give ``username`` a new password (argon2) and lift any lock-out.

    The trail records that the password changed and by whom (``actor``: a user; None: an operator at
    the command line), never the password or its hash. ``python -m services.auth passwd USERNAME``.
    """
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"密码至少 {MIN_PASSWORD} 位")
    with uow.begin("auth.password_change"):
        _set_password(uow, username=username, password=password, actor=actor)
        uow.commit()


def _set_password(uow: UnitOfWork, *, username: str, password: str, actor) -> None:
    session = uow.session
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise LookupError(f"用户 {username} 不存在")
    had = bool(user.password_hash)
    session.execute(
        update(User)
        .where(User.id == user.id)
        .values(password_hash=hash_password(password), failed_logins=0, locked_until=None)
    )
    audit.record(
        session.connection(),
        **audit.who(actor),
        action="auth.password_change",
        entity="users",
        entity_id=user.id,
        before={"password_set": had},
        after={"password_set": True, "failed_logins": 0, "locked_until": None},
    )


def must_change_password(conn: Connection | Session, user_id: int) -> bool:
    """Whether the account must change its password before anything else (an administrator's initial or
    reset password, decision 0014)."""
    return bool(conn.execute(select(User.must_change_password).where(User.id == user_id)).scalar())


def change_own_password(
    uow: UnitOfWork,
    *,
    user: CurrentUser,
    new_password: str,
    repeat: str,
    current_password: str | None = None,
) -> None:
    """The logged-in ``user`` chooses a new password (typed twice); the forced change is then lifted.

    ``current_password`` None is allowed only while the account must change its password and the
    caller vouches that this session logged in with that (temporary) password: the 修改密码 form right
    after such a login (components.auth). Otherwise the current password is checked. Problems are raised
    together as :class:`FieldProblems` (当前密码 / 新密码 / 再次输入新密码); nothing is written then.
    The trail records that the password changed, never the password or its hash.
    """
    problems = new_password_problems(new_password, repeat)
    with uow.begin("auth.password_change"):
        session = uow.session
        row = session.execute(select(User).where(User.id == user.id, User.is_active)).scalar_one_or_none()
        if row is None or row.username != user.username or not row.password_hash:
            raise LoginRefused("登录状态无效，请重新登录")
        if current_password is None:
            if not row.must_change_password:
                problems["当前密码"] = "请输入当前密码"
        elif not _verifies(row.password_hash, current_password):
            problems["当前密码"] = "当前密码不正确，请重新输入"
        if "新密码" not in problems and _verifies(row.password_hash, new_password):
            problems["新密码"] = "新密码不能与当前密码相同，请换一个"
        if problems:
            raise FieldProblems(problems)
        before = {"password_set": True, "must_change_password": row.must_change_password}
        session.execute(
            update(User)
            .where(User.id == row.id)
            .values(
                password_hash=hash_password(new_password),
                must_change_password=False,
                failed_logins=0,
                locked_until=None,
            )
        )
        audit.record(
            session.connection(),
            **audit.who(user),
            action="auth.password_change",
            entity="users",
            entity_id=row.id,
            before=before,
            after={"password_set": True, "must_change_password": False},
        )
        uow.commit()
    log.info("password changed by user id %s", user.id)


def _verifies(password_hash: str, password: str | None) -> bool:
    try:
        return bool(password) and _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


_USER_COLUMNS = select(
    User.id,
    User.username,
    User.display_name,
    User.role,
    User.scope_unit_id,
    User.department_id,
    User.is_active,
)


def _current(user) -> CurrentUser:
    """The :class:`CurrentUser` of a ``User`` object or a row of :data:`_USER_COLUMNS`."""
    return CurrentUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        scope_unit_id=user.scope_unit_id,
        department_id=user.department_id,
    )


def user_by_username(conn: Connection | Session, username: str) -> CurrentUser | None:
    """The active user ``username`` as the services see them (no password check: for trusted callers)."""
    user = conn.execute(_USER_COLUMNS.where(User.username == username, User.is_active)).one_or_none()
    return _current(user) if user else None


def main(argv: list[str] | None = None) -> int:
    """``python -m services.auth passwd USERNAME``: an operator sets a password (asked twice, never echoed)."""
    import argparse
    import getpass
    import sys

    from db.engine import make_engine

    parser = argparse.ArgumentParser(description="设置用户密码 (set a user's password)")
    parser.add_argument("command", choices=["passwd"])
    parser.add_argument("username")
    args = parser.parse_args(argv)
    password = getpass.getpass("新密码：")
    if password != getpass.getpass("再次输入新密码："):
        print("两次输入的密码不一致，未修改", file=sys.stderr)
        return 1
    try:
        set_password(UnitOfWork(make_engine()), username=args.username, password=password)
    except (ValueError, LookupError) as exc:
        print(f"未修改：{exc}", file=sys.stderr)
        return 1
    print(f"已更新 {args.username} 的密码（已记入审计日志）")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
