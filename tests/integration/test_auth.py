"""Password login against the store: argon2 hashes, a clear refusal, lock-out after five failures."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from db.engine import session_factory
from db.models import AdminUnit, User
from db.uow import UnitOfWork
from domain.vocabulary import Role
from services.auth import MAX_FAILURES, LoginRefused, authenticate, hash_password
from tests.builders import make_square_area

NOW = datetime(2026, 11, 21, 9, 0)


@pytest.fixture
def sessions(empty_engine):
    with empty_engine.begin() as conn:
        make_square_area(conn)
        scope = conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990001001")).scalar_one()
        conn.execute(
            insert(User),
            {
                "username": "leader",
                "display_name": "镇领导",
                "role": Role.TOWNSHIP_LEADER,
                "scope_unit_id": scope,
                "password_hash": hash_password("s3cret-pass"),
                "created_at": NOW,
            },
        )
    return session_factory(empty_engine)


def login(sessions, username: str, password: str, now: datetime):
    """One login attempt as the login form makes it: its own unit of work."""
    return authenticate(UnitOfWork(sessions.kw["bind"]), username, password, now)


def test_the_right_password_gives_the_user_with_role_and_scope(sessions):
    user = login(sessions, "leader", "s3cret-pass", NOW)
    assert user.role is Role.TOWNSHIP_LEADER and user.may_open("risk_map") and not user.may_open("my_day")


def test_the_password_is_stored_as_an_argon2_hash(sessions):
    with sessions() as s:
        stored = s.execute(select(User.password_hash)).scalar_one()
    assert stored.startswith("$argon2") and "s3cret-pass" not in stored


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(sessions):
    """Only a real account was told how many tries were left, and that it was locked: every answer now
    reads the same whether the name exists or not, down to the lock and its minutes."""
    told = {}
    for name in ("leader", "nobody_here"):
        answers = []
        for _ in range(MAX_FAILURES + 1):
            with pytest.raises(LoginRefused) as refused:
                login(sessions, name, "nope", NOW)
            answers.append(str(refused.value))
        told[name] = answers
    assert told["leader"] == told["nobody_here"]
    assert told["leader"][0] == f"用户名或密码错误（还可尝试 {MAX_FAILURES - 1} 次）"
    assert told["leader"][-1] == "连续登录失败次数过多，账号已锁定，请 15 分钟后再试"  # not 16


def test_five_failures_lock_the_account_even_for_the_right_password(sessions):
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(LoginRefused, match="还可尝试"):
            login(sessions, "leader", "wrong", NOW)
    with pytest.raises(LoginRefused, match="已锁定"):
        login(sessions, "leader", "wrong", NOW)
    with pytest.raises(LoginRefused, match="分钟后再试"):
        login(sessions, "leader", "s3cret-pass", NOW + timedelta(minutes=5))
    assert login(sessions, "leader", "s3cret-pass", NOW + timedelta(minutes=16)).username == "leader"


def test_simultaneous_wrong_passwords_each_count(sessions):
    """Four wrong passwords at once (four sessions, four threads) leave exactly four failures counted."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_):
        try:
            login(sessions, "leader", "wrong", NOW)
        except LoginRefused as refused:
            return str(refused)
        return "accepted"

    with ThreadPoolExecutor(MAX_FAILURES - 1) as pool:
        answers = sorted(pool.map(attempt, range(MAX_FAILURES - 1)))
    assert answers == sorted(f"用户名或密码错误（还可尝试 {n} 次）" for n in range(1, MAX_FAILURES))
    with sessions() as s:
        assert s.execute(select(User.failed_logins)).scalar_one() == MAX_FAILURES - 1
    with pytest.raises(LoginRefused, match="已锁定"):  # the fifth locks, as one after another
        login(sessions, "leader", "wrong", NOW)


def test_the_trail_of_a_lockout_says_what_the_store_held_before_and_after(sessions):
    """before: no lock; after: the lock; a failure after the lock ran out clears it in the store and the trail."""
    from db.models import AuditLog

    for _ in range(MAX_FAILURES):
        with pytest.raises(LoginRefused):
            login(sessions, "leader", "wrong", NOW)
    later = NOW + timedelta(minutes=16)
    with pytest.raises(LoginRefused, match="还可尝试"):
        login(sessions, "leader", "wrong", later)
    with sessions() as s:
        rows = s.execute(select(AuditLog.action, AuditLog.before, AuditLog.after).order_by(AuditLog.id)).all()
        stored = s.execute(select(User.failed_logins, User.locked_until)).one()
    lockout, after_expiry = rows[-2], rows[-1]
    lock_end = (NOW + timedelta(minutes=15)).isoformat()
    assert lockout.action == "auth.lockout"
    assert '"locked_until":null' in lockout.before and f'"locked_until":"{lock_end}"' in lockout.after
    assert after_expiry.action == "auth.login_failed" and '"locked_until":null' in after_expiry.after
    assert tuple(stored) == (1, None)


def test_one_client_trying_many_names_is_slowed_and_others_are_not(sessions, monkeypatch):
    """An account locks after 5 wrong passwords, but one password tried on many names (password
    spraying) was never slowed: 30 failures from one address in 15 minutes refuse that address."""
    from services import auth

    monkeypatch.setattr(auth, "CLIENTS", auth.ClientFailures())
    engine = sessions.kw["bind"]

    def attempt(name: str, password: str = "Spring2026", client: str = "10.1.2.3", at: datetime = NOW):
        return authenticate(UnitOfWork(engine), name, password, at, client)

    for k in range(auth.CLIENT_FAILURES):
        with pytest.raises(LoginRefused, match="用户名或密码错误"):
            attempt(f"staff{k:02d}")
    with pytest.raises(LoginRefused, match="此设备登录失败次数过多，请 15 分钟后再试"):
        attempt("leader", "s3cret-pass")  # even the right password, from that address
    assert attempt("leader", "s3cret-pass", client="10.9.9.9").username == "leader"  # another desk
    assert attempt("leader", "s3cret-pass", client=None).username == "leader"  # address unknown
    later = NOW + timedelta(minutes=15, seconds=1)
    assert attempt("leader", "s3cret-pass", at=later).username == "leader"  # the window has passed


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("10.1.2.3", None, "10.1.2.3"),  # a browser straight to the server
        ("10.1.2.3", "1.1.1.1", "10.1.2.3"),  # a header from the client itself counts for nothing
        ("127.0.0.1", "6.6.6.6, 10.1.2.3", "10.1.2.3"),  # nginx on this machine appended the real one
        ("::1", "10.1.2.4", "10.1.2.4"),
        ("127.0.0.1", None, None),  # this machine itself, or a proxy that says nothing: no limit
        (None, None, None),
        ("not an address", "10.1.2.3", None),
    ],
)
def test_the_client_address_is_the_connection_s_or_the_local_proxy_s_last_word(remote, forwarded, client):
    from services.auth import client_from

    assert client_from(remote, forwarded) == client
