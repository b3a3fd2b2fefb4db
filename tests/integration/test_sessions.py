"""Login sessions in the store (decision 0017): a cookie token found again after a reload, digests only,
a hand-over code used once by the browser that logged in, idle and absolute limits per role, and an end
on logout, a password change or reset, a role change and a disabled account, whoever made the change."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from db.engine import session_factory
from db.models import AdminUnit, AuditLog, Department, LoginSession, User
from db.uow import UnitOfWork
from domain.access import SESSION_LIMITS
from domain.vocabulary import Role
from services import audit, sessions
from services.accounts import reset_password, set_active, update_account
from services.auth import _current, change_own_password, hash_password, set_password
from tests.builders import make_square_area

NOW = datetime(2026, 12, 1, 8, 0)
BROWSER = "xsrf-token-of-the-phone"


@pytest.fixture
def store(empty_engine):
    """The square area, an administrator, a township leader and an inspector."""
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        for username, role in [
            ("admin", Role.ADMIN),
            ("leader", Role.TOWNSHIP_LEADER),
            ("inspector", Role.INSPECTOR),
        ]:
            conn.execute(
                insert(User),
                {
                    "username": username,
                    "display_name": username,
                    "role": role,
                    "scope_unit_id": ids["990001001"],
                    "password_hash": hash_password("s3cret-pass"),
                    "created_at": NOW,
                },
            )
    return empty_engine


def user(engine, username: str):
    with session_factory(engine)() as s:
        return _current(s.execute(select(User).where(User.username == username)).scalar_one())


def logged_in(engine, username: str, now: datetime = NOW) -> sessions.Cookie:
    """A login as the app makes it: the session with its code, redeemed by the same browser."""
    handoff = sessions.start(UnitOfWork(engine), user=user(engine, username), binding=BROWSER, now=now)
    cookie = sessions.redeem(UnitOfWork(engine), code=handoff.code, binding=BROWSER, now=now)
    assert cookie is not None and cookie.session_id == handoff.session_id
    return cookie


def resumed(engine, token: str, now: datetime):
    with engine.connect() as conn:
        return sessions.resume(conn, token, now)


def test_a_reload_finds_the_user_again_from_the_cookie_token(store):
    cookie = logged_in(store, "inspector")
    found, over = resumed(store, cookie.token, NOW + timedelta(minutes=5))
    assert over is None and found.user == user(store, "inspector") and found.session_id == cookie.session_id
    assert cookie.max_age == int(SESSION_LIMITS[Role.INSPECTOR].absolute.total_seconds())


def test_the_store_keeps_digests_only_never_the_token_or_the_code(store):
    handoff = sessions.start(UnitOfWork(store), user=user(store, "leader"), binding=BROWSER, now=NOW)
    cookie = sessions.redeem(UnitOfWork(store), code=handoff.code, binding=BROWSER, now=NOW)
    with session_factory(store)() as s:
        row = s.execute(select(LoginSession)).scalar_one()
    with store.connect() as conn:
        trail = " ".join(
            f"{a or ''} {b or ''}" for a, b in conn.execute(select(AuditLog.before, AuditLog.after))
        )
    stored = " ".join(str(v) for v in row.__dict__.values())
    for secret in (cookie.token, handoff.code, BROWSER):
        assert secret not in stored and secret not in trail
    assert row.token_hash == sessions.digest(cookie.token) and row.handoff_hash is None
    assert row.binding == sessions.digest(BROWSER)


def test_a_hand_over_code_works_once_and_only_for_the_browser_that_logged_in(store):
    leader = user(store, "leader")
    stolen = sessions.start(UnitOfWork(store), user=leader, binding=BROWSER, now=NOW)
    assert sessions.redeem(UnitOfWork(store), code=stolen.code, binding="another-browser", now=NOW) is None
    assert sessions.redeem(UnitOfWork(store), code=stolen.code, binding=BROWSER, now=NOW) is not None
    assert sessions.redeem(UnitOfWork(store), code=stolen.code, binding=BROWSER, now=NOW) is None
    late = sessions.start(UnitOfWork(store), user=leader, binding=BROWSER, now=NOW)
    after = NOW + timedelta(seconds=sessions.HANDOFF_SECONDS + 1)
    assert sessions.redeem(UnitOfWork(store), code=late.code, binding=BROWSER, now=after) is None
    assert sessions.redeem(UnitOfWork(store), code="made-up", binding=BROWSER, now=NOW) is None


def test_an_inspector_stays_signed_in_while_working_and_is_asked_again_after_the_idle_time(store):
    cookie = logged_in(store, "inspector")
    idle = SESSION_LIMITS[Role.INSPECTOR].idle
    later = NOW + idle - timedelta(minutes=1)
    sessions.touch(store, cookie.session_id, later)  # a run just before the idle limit slides the clock
    assert resumed(store, cookie.token, later + idle - timedelta(minutes=1))[1] is None
    assert resumed(store, cookie.token, later + idle)[1] == "idle"


def test_no_use_extends_a_session_past_its_absolute_lifetime(store):
    cookie = logged_in(store, "inspector")
    lifetime = SESSION_LIMITS[Role.INSPECTOR].absolute
    t = NOW
    while t < NOW + lifetime - timedelta(hours=1):
        t += timedelta(hours=6)
        sessions.touch(store, cookie.session_id, t)
    assert resumed(store, cookie.token, NOW + lifetime - timedelta(minutes=1))[1] is None
    assert resumed(store, cookie.token, NOW + lifetime)[1] == "absolute"


def test_an_administrators_session_ends_sooner_than_an_inspectors(store):
    admin, inspector = logged_in(store, "admin"), logged_in(store, "inspector")
    an_hour = NOW + timedelta(hours=1)
    assert resumed(store, admin.token, an_hour)[1] == "idle"
    assert resumed(store, inspector.token, an_hour)[1] is None


def test_logout_ends_the_session_for_every_tab_and_writes_the_trail(store):
    cookie = logged_in(store, "leader")
    leader = user(store, "leader")
    assert sessions.end(
        UnitOfWork(store), session_id=cookie.session_id, reason="logout", now=NOW, actor=leader
    )
    assert resumed(store, cookie.token, NOW)[1] == "ended"
    with store.connect() as conn:
        assert sessions.check(conn, cookie.session_id, leader, NOW) == "ended"
        actions = conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars().all()
        assert audit.verify(conn) is None
    assert actions == ["auth.session_start", "auth.session_cookie", "auth.logout"]
    again = sessions.end(
        UnitOfWork(store), session_id=cookie.session_id, reason="logout", now=NOW, actor=leader
    )
    assert again is False


def test_changing_ones_own_password_ends_every_session_of_the_account(store):
    phone, desk = logged_in(store, "leader"), logged_in(store, "leader")
    change_own_password(
        UnitOfWork(store),
        user=user(store, "leader"),
        new_password="a-new-pass-1",
        repeat="a-new-pass-1",
        current_password="s3cret-pass",
    )
    assert resumed(store, phone.token, NOW)[1] == "credentials"
    assert resumed(store, desk.token, NOW)[1] == "credentials"
    assert resumed(store, logged_in(store, "leader").token, NOW)[1] is None  # a new login works


def test_an_administrators_reset_and_an_operators_password_end_the_sessions(store):
    first = logged_in(store, "inspector")
    reset_password(
        UnitOfWork(store), actor=user(store, "admin"), user_id=user(store, "inspector").id, now=NOW
    )
    assert resumed(store, first.token, NOW)[1] == "credentials"
    second = logged_in(store, "inspector")
    set_password(UnitOfWork(store), username="inspector", password="operator-set-1")
    assert resumed(store, second.token, NOW)[1] == "credentials"


def test_disabling_the_account_ends_its_sessions(store):
    cookie = logged_in(store, "inspector")
    set_active(
        UnitOfWork(store),
        actor=user(store, "admin"),
        user_id=user(store, "inspector").id,
        active=False,
        now=NOW,
    )
    assert resumed(store, cookie.token, NOW)[1] == "disabled"
    with pytest.raises(sessions.SessionRefused):
        sessions.start(UnitOfWork(store), user=user(store, "inspector"), binding=BROWSER, now=NOW)


def test_a_role_or_scope_change_ends_the_sessions(store):
    cookie = logged_in(store, "leader")
    leader = user(store, "leader")
    with store.connect() as conn:
        village = conn.execute(select(AdminUnit.id).where(AdminUnit.code == "990001001001")).scalar_one()
        department = conn.execute(select(Department.id)).scalar_one()
    update_account(
        UnitOfWork(store),
        actor=user(store, "admin"),
        user_id=leader.id,
        role=Role.DEPARTMENT,
        scope_unit_id=village,
        department_id=department,
        now=NOW,
    )
    assert resumed(store, cookie.token, NOW)[1] == "credentials"
    with store.connect() as conn:
        assert sessions.check(conn, cookie.session_id, leader, NOW) == "credentials"


def test_the_unsaved_form_is_kept_for_the_session_and_gone_when_it_ends(store):
    cookie = logged_in(store, "inspector")
    form = {"page": "my_day", "venue": 7, "values": {"md_note_7": "消防通道有杂物"}}
    assert sessions.save_draft(store, cookie.session_id, form)
    with store.connect() as conn:
        assert sessions.draft(conn, cookie.session_id) == form
    assert not sessions.save_draft(store, cookie.session_id, {"values": "x" * (sessions.MAX_DRAFT_BYTES + 1)})
    sessions.end(UnitOfWork(store), session_id=cookie.session_id, reason="logout", now=NOW)
    with store.connect() as conn:
        assert sessions.draft(conn, cookie.session_id) is None
    assert not sessions.save_draft(store, cookie.session_id, form)


def test_an_unknown_or_missing_token_finds_nobody(store):
    logged_in(store, "inspector")
    assert resumed(store, "not-a-token", NOW) == (None, None)
    assert resumed(store, None, NOW) == (None, None)
    assert resumed(store, "", NOW) == (None, None)
