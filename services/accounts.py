"""Account administration (账号管理): the first administrator, then accounts created, changed and imported.

Only an active administrator (:class:`domain.vocabulary.Role` ADMIN) uses these, and only inside their
scope: an administrator scoped to a county lists and changes the accounts whose scope unit lies in
that county, and gives scopes and departments inside it (a unit outside is refused and logged, as
every scope check of :mod:`services.access`). Each change is one unit of work with one audit row per
account changed (never a password or its hash; phones masked). Decision 0014.

Rules:

- 用户名: 3–64 characters, letters, digits and ``_ . @ -``, starting with a letter; unique regardless
  of case. 姓名: 1–50 characters. 手机号: optional, one mainland mobile number.
- A 部门处置人员 needs a department; the department's unit lies inside the administrator's scope and on
  the path of the account's scope (the scope itself, above or below it). Other roles have none.
- A 网格员/检查员 is scoped to a township, village or grid and covers every grid under it
  (``inspector_grids``, replaced when the scope or role changes).
- An account created or imported gets an initial password (typed, or generated and shown once) and
  must change it at its next login; a reset does the same with a generated temporary password and lifts
  any lock-out.
- Nobody disables, or changes the role, scope or department of, their own account; the last active
  administrator is never disabled nor given another role (checked under a lock: two administrators
  acting at once cannot both succeed).
- The first administrator: on a store without any account, :func:`create_first_admin` (the login
  page's 创建首个管理员) creates one scoped to the top unit; once any account exists it refuses,
  checked under a lock inside its unit of work. ``python -m services.accounts create-admin`` is the
  operator's way at any time.

Passwords are hashed (argon2, ~0.1–0.2 s each) before a unit of work begins, so a bulk import does not
hold the store's write lock while it hashes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import AuditHead, Department, InspectorGrid, User
from db.uow import UnitOfWork
from domain.access import CurrentUser, is_mobile, mask_phone
from domain.errors import FieldProblems
from domain.hierarchy import Tree
from domain.vocabulary import AdminLevel, Role
from services import audit, settings, tabular
from services.access import out_of_scope, require_area
from services.auth import (
    _current,
    hash_password,
    new_password_problems,
    password_problem,
    temporary_password,
)
from services.geography import tree as store_tree
from services.tabular import RowError, TableError, listed, read_sheet

log = logging.getLogger("accounts")

USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]{2,63}")
USERNAME_RULE = "用户名须为 3–64 位英文字母、数字或 _ . @ -，并以字母开头"
MAX_NAME = 50
ADMIN_ONLY = "仅系统管理员可以管理账号"
#: How to get units into an empty store (services/boundaries.py's command line).
BOUNDARY_COMMAND = "python -m services.boundaries 区划文件.geojson"
NO_UNITS = f"尚未导入行政区划，无法创建账号。请先在服务器上运行 {BOUNDARY_COMMAND} 导入区划边界，再刷新本页"
#: The levels an inspector may be scoped to (they cover every grid under it).
INSPECTOR_LEVELS = (AdminLevel.TOWNSHIP, AdminLevel.VILLAGE, AdminLevel.GRID)

# The import file: these column headers (row 1), one account per row from row 2.
COLUMNS = ["用户名", "姓名", "角色", "管辖区划编码", "部门", "手机号", "初始密码"]
REQUIRED_COLUMNS = COLUMNS[:4]
COLUMN_NOTES = {
    "用户名": "必填。" + USERNAME_RULE + "；不能与已有账号或本文件其他行重复（不区分大小写）",
    "姓名": f"必填，最多 {MAX_NAME} 字",
    "角色": "必填：" + "、".join(r.label for r in Role) + "（也可写 管理员、网格员、检查员）",
    "管辖区划编码": "必填：区划编码（如 {example}），须在您的管辖范围内；网格员/检查员须为乡镇、村（社区）或网格",
    "部门": "部门处置人员必填（部门编码或全称），其他角色留空",
    "手机号": "可不填；11 位手机号码",
    "初始密码": "可不填（自动生成临时密码，导入后显示一次）；填写则至少 8 位。首次登录须修改密码",
}
MAX_IMPORT_ROWS = 1000
ROLE_ALIASES = {"管理员": Role.ADMIN, "网格员": Role.INSPECTOR, "检查员": Role.INSPECTOR}


class AccountRefused(ValueError):
    """A change the rules do not allow (own account, last administrator, first run over); the message is
    Chinese and says what to do instead."""


class FirstRunClosed(AccountRefused):
    """The first administrator exists already (or some account does): the first-run form is over."""


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """One account as the administrator's list shows it (phone masked)."""

    id: int
    username: str
    display_name: str
    role: Role
    scope_unit_id: int
    scope: str  # the scope's path from the administrator's unit down, e.g. 柯城区 / 白云街道
    scope_code: str
    department_id: int | None
    department: str | None
    phone: str | None  # masked: 138****5678
    is_active: bool
    locked_until: datetime | None  # only while the lock runs
    must_change_password: bool
    created_at: datetime


@dataclass(frozen=True)
class DepartmentChoice:
    id: int
    code: str
    name: str
    unit_id: int


def has_accounts(conn: Connection | Session) -> bool:
    """Whether the store holds any account at all (none: the login page offers 创建首个管理员)."""
    return conn.execute(select(User.id).limit(1)).first() is not None


def top_units(conn: Connection) -> list[tuple[int, str, str]]:
    """The store's top units as (id, name, code): the first administrator's possible scopes."""
    tree = store_tree(conn)
    return [(u, tree.name(u), tree.code(u)) for u in tree.roots]


def list_accounts(
    conn: Connection,
    actor: CurrentUser,
    *,
    now: datetime,
    role: Role | None = None,
    active: bool | None = None,
    text: str | None = None,
) -> list[Account]:
    """The accounts inside the administrator's scope, by role then user name; filters are optional
    (``text``: part of the user name or name, any case)."""
    _require_admin(conn, actor)
    tree = store_tree(conn)
    query = (
        select(
            User.id,
            User.username,
            User.display_name,
            User.role,
            User.scope_unit_id,
            User.department_id,
            User.phone,
            User.is_active,
            User.locked_until,
            User.must_change_password,
            User.created_at,
            Department.name.label("department"),
        )
        .outerjoin(Department, Department.id == User.department_id)
        .order_by(User.username)
    )
    if role is not None:
        query = query.where(User.role == role)
    if active is not None:
        query = query.where(User.is_active.is_(active))
    if text and text.strip():
        needle = text.strip().lower()  # typed % or _ match themselves
        query = query.where(
            func.lower(User.username).contains(needle, autoescape=True)
            | func.lower(User.display_name).contains(needle, autoescape=True)
        )
    order = {r: i for i, r in enumerate(Role)}
    out = [
        _account(tree, actor, row, now)
        for row in conn.execute(query).all()
        if tree.contains(actor.scope_unit_id, row.scope_unit_id)
    ]
    return sorted(out, key=lambda a: (order[a.role], a.username))


def _account(tree: Tree, actor: CurrentUser, user, now: datetime) -> Account:
    path = tree.path(user.scope_unit_id)
    below = path[path.index(actor.scope_unit_id) :] if actor.scope_unit_id in path else path
    return Account(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        scope_unit_id=user.scope_unit_id,
        scope=" / ".join(tree.name(u) for u in below),
        scope_code=tree.code(user.scope_unit_id) if user.scope_unit_id in tree else "",
        department_id=user.department_id,
        department=user.department,
        phone=mask_phone(user.phone),
        is_active=bool(user.is_active),
        locked_until=user.locked_until if user.locked_until and user.locked_until > now else None,
        must_change_password=bool(user.must_change_password),
        created_at=user.created_at,
    )


#: The departments that take no new work (停用, 部门管理): a settings list, audited (decision 0027).
DISABLED_DEPARTMENTS_KEY = "departments.disabled"


def disabled_departments(conn: Connection, *, lock: bool = False) -> frozenset[int]:
    """The departments that take no new dispatch and get no new account (停用); ``lock``: read to change
    the list (:func:`services.settings.read`)."""
    raw = settings.read(conn, DISABLED_DEPARTMENTS_KEY, lock=lock)
    return frozenset(int(i) for i in json.loads(raw)) if raw else frozenset()


def departments_for(
    conn: Connection, actor: CurrentUser, scope_unit_id: int | None = None
) -> list[DepartmentChoice]:
    """The departments an administrator may give: inside their scope and, for a chosen account scope,
    on its path (at the scope, above it or below it)."""
    tree = store_tree(conn)
    rows = conn.execute(
        select(Department.id, Department.code, Department.name, Department.unit_id).order_by(Department.code)
    ).all()
    stopped = disabled_departments(conn)
    return [
        DepartmentChoice(d.id, d.code, d.name, d.unit_id)
        for d in rows
        if d.id not in stopped
        and tree.contains(actor.scope_unit_id, d.unit_id)
        and (scope_unit_id is None or _on_path(tree, d.unit_id, scope_unit_id))
    ]


def _on_path(tree: Tree, unit_a: int, unit_b: int) -> bool:
    return tree.contains(unit_a, unit_b) or tree.contains(unit_b, unit_a)


# ---------------------------------------------------------------------------------------------
# Checks shared by the form, the edit and the import
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountDraft:
    """What a form or a file row says about a new account. ``password`` empty: a temporary one is made."""

    username: str
    display_name: str
    role: Role | None
    scope_unit_id: int | None
    department_id: int | None = None
    phone: str | None = None
    password: str | None = None


def normalise_phone(phone: str | None) -> str | None:
    """A phone as stored: digits only (spaces and dashes typed between them dropped); None when empty."""
    text = re.sub(r"[\s-]", "", phone or "")
    return text or None


def _identity_problems(draft: AccountDraft) -> dict[str, str]:
    problems: dict[str, str] = {}
    username = (draft.username or "").strip()
    if not username:
        problems["用户名"] = "请填写用户名"
    elif not USERNAME.fullmatch(username):
        problems["用户名"] = USERNAME_RULE
    name = (draft.display_name or "").strip()
    if not name:
        problems["姓名"] = "请填写姓名"
    elif len(name) > MAX_NAME:
        problems["姓名"] = f"姓名最多 {MAX_NAME} 字，请缩短"
    phone = normalise_phone(draft.phone)
    if phone is not None and not is_mobile(phone):
        problems["手机号"] = "请填写 11 位手机号码（1 开头），或留空"
    if draft.password and (problem := password_problem(draft.password)):
        problems["初始密码"] = problem
    return problems


def _placement_problems(
    tree: Tree,
    departments: Mapping[int, Department | DepartmentChoice],
    actor: CurrentUser,
    role: Role | None,
    scope_unit_id: int | None,
    department_id: int | None,
) -> dict[str, str]:
    """Role, scope and department together (the scope is known to lie in the administrator's scope)."""
    problems: dict[str, str] = {}
    if role is None:
        problems["角色"] = "请选择角色"
    if scope_unit_id is None or scope_unit_id not in tree:
        problems["管辖区划"] = "请选择管辖区划"
    elif role is Role.INSPECTOR and tree.level(scope_unit_id) not in INSPECTOR_LEVELS:
        problems["管辖区划"] = "网格员/检查员的管辖区划须为乡镇（街道）、村（社区）或网格，请选到乡镇或以下"
    if role is Role.DEPARTMENT:
        dept = departments.get(department_id) if department_id is not None else None
        if department_id is None:
            problems["部门"] = "部门处置人员须选择所属部门"
        elif dept is None or not tree.contains(actor.scope_unit_id, dept.unit_id):
            problems["部门"] = "该部门不存在或不在您的管辖范围内，请重新选择"
        elif (
            scope_unit_id is not None
            and scope_unit_id in tree
            and not _on_path(tree, dept.unit_id, scope_unit_id)
        ):
            problems["部门"] = "所选部门不属于该管辖区划（部门须设在管辖区划本级、上级或下级），请重新选择"
    elif role is not None and department_id is not None:
        problems["部门"] = "只有部门处置人员需要部门，请留空"
    return problems


def _taken(session: Session, username: str) -> bool:
    query = select(User.id).where(func.lower(User.username) == username.strip().lower())
    return session.execute(query).first() is not None


# ---------------------------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------------------------


def _require_admin(conn: Connection | Session, actor: CurrentUser | None, refusal: str = ADMIN_ONLY) -> None:
    """The actor is an active administrator, as the store says now (a stale or forged one is refused with
    ``refusal``; departments, decision 0027, use this guard too)."""
    row = None
    if actor is not None and actor.role is Role.ADMIN:
        row = conn.execute(
            select(User.role, User.scope_unit_id, User.is_active).where(User.id == actor.id)
        ).one_or_none()
    if (
        actor is None
        or row is None
        or not row.is_active
        or Role(row.role) is not Role.ADMIN
        or row.scope_unit_id != actor.scope_unit_id
    ):
        raise out_of_scope(actor, "accounts", None, refusal)


def _target(session: Session, tree: Tree, actor: CurrentUser, user_id: int, what: str) -> User:
    """The account ``user_id``, if it lies in the administrator's scope (else refused and logged); its
    row locked and read again (PostgreSQL): two administrators changing one account at once take turns,
    and the second's trail row starts from the first's change. The active administrators' rows are
    locked before it, as :func:`_keep_an_admin` locks them: one lock order for every account change
    (two administrators disabling each other deadlocked otherwise)."""
    _lock_admins(session)
    user = session.get(User, int(user_id), with_for_update=True, populate_existing=True)
    if user is None:
        raise AccountRefused("该账号不存在，请刷新列表后重试")
    if not tree.contains(actor.scope_unit_id, user.scope_unit_id):
        raise out_of_scope(actor, what, user.id, "该账号不在您的管辖范围内")
    return user


def _lock_admins(session: Session) -> list[int]:
    """The active administrators' ids, their rows locked in id order (PostgreSQL; SQLite's unit of work
    holds the write lock already)."""
    admins = (
        select(User.id).where(User.role == Role.ADMIN, User.is_active).order_by(User.id).with_for_update()
    )
    return list(session.execute(admins).scalars())


def _keep_an_admin(session: Session, leaving_id: int) -> None:
    """Refuse if ``leaving_id`` is the last active administrator. The active administrators' rows are
    locked first (PostgreSQL; SQLite's unit of work holds the write lock already), so two administrators
    removing each other at once cannot both succeed."""
    admins = _lock_admins(session)
    if not [a for a in admins if a != leaving_id]:
        raise AccountRefused(
            "这是最后一个启用的系统管理员，不能停用或改为其他角色。请先新建或启用另一个管理员"
        )


def _snapshot(tree: Tree, user: User, grids: int | None = None) -> dict:
    """What the trail shows of an account (no password material; the phone masked)."""
    out = {
        "username": user.username,
        "display_name": user.display_name,
        "role": Role(user.role).value,
        "scope_unit_id": user.scope_unit_id,
        "scope_code": tree.code(user.scope_unit_id) if user.scope_unit_id in tree else None,
        "department_id": user.department_id,
        "phone": mask_phone(user.phone),
        "is_active": bool(user.is_active),
        "must_change_password": bool(user.must_change_password),
    }
    if grids is not None:
        out["inspector_grids"] = grids
    return out


def _cover_grids(session: Session, tree: Tree, user_id: int, role: Role, scope_unit_id: int) -> int:
    """An inspector covers every grid under their scope (rows replaced); other roles cover none."""
    session.execute(delete(InspectorGrid).where(InspectorGrid.user_id == user_id))
    if role is not Role.INSPECTOR:
        return 0
    grids = tree.grids_under(scope_unit_id)
    if grids:
        session.execute(insert(InspectorGrid), [{"user_id": user_id, "grid_id": g} for g in grids])
    return len(grids)


# ---------------------------------------------------------------------------------------------
# Creating
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """A new account; ``temporary_password`` is set when it was generated (to be shown once)."""

    id: int
    username: str
    temporary_password: str | None = None
    row: int | None = None  # its row in an imported file


def create_account(uow: UnitOfWork, *, actor: CurrentUser, draft: AccountDraft, now: datetime) -> Created:
    """Create one account (every problem at once as :class:`FieldProblems`); it must change its password
    at its next login. A scope outside the administrator's is refused and logged (:class:`OutOfScope`)."""
    problems = _identity_problems(draft)
    generated = None if draft.password else temporary_password()
    password_hash = hash_password(draft.password or generated or "") if not problems else ""
    with uow.begin("accounts.create"):
        session = uow.session
        _require_admin(session, actor)
        tree = store_tree(uow.conn)
        if draft.scope_unit_id is not None:
            require_area(tree, actor, draft.scope_unit_id, "accounts.create scope")
        departments = {d.id: d for d in session.execute(select(Department)).scalars()}
        problems |= _placement_problems(
            tree, departments, actor, draft.role, draft.scope_unit_id, draft.department_id
        )
        if "用户名" not in problems and _taken(session, draft.username):
            problems["用户名"] = "该用户名已被使用，请换一个"
        if problems:
            raise FieldProblems(problems)
        user = _insert(session, tree, draft, password_hash, now, who=audit.who(actor))
        uow.commit()
    log.info("account %s created by user id %s", user.id, actor.id)
    return Created(user.id, user.username, generated)


def _insert(
    session: Session,
    tree: Tree,
    draft: AccountDraft,
    password_hash: str,
    now: datetime,
    *,
    who: dict,
    action: str = "accounts.create",
    reason: str | None = None,
    must_change: bool = True,
) -> User:
    """Insert the account, its grids (an inspector) and its trail row (``who``: :func:`audit.who`)."""
    assert draft.role is not None and draft.scope_unit_id is not None
    user = User(
        username=draft.username.strip(),
        display_name=draft.display_name.strip(),
        phone=normalise_phone(draft.phone),
        password_hash=password_hash,
        role=draft.role,
        scope_unit_id=draft.scope_unit_id,
        department_id=draft.department_id if draft.role is Role.DEPARTMENT else None,
        is_active=True,
        failed_logins=0,
        must_change_password=must_change,
        created_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the same name taken by another administrator a moment ago
        raise FieldProblems({"用户名": "该用户名已被使用，请换一个"}) from None
    grids = _cover_grids(session, tree, user.id, draft.role, draft.scope_unit_id)
    audit.record(
        session.connection(),
        **who,
        action=action,
        entity="users",
        entity_id=user.id,
        before=None,
        after=_snapshot(tree, user, grids if draft.role is Role.INSPECTOR else None),
        reason=reason,
    )
    return user


# ---------------------------------------------------------------------------------------------
# Changing
# ---------------------------------------------------------------------------------------------


def set_active(uow: UnitOfWork, *, actor: CurrentUser, user_id: int, active: bool, now: datetime) -> bool:
    """Disable (停用) or re-enable (启用) an account; False if it already was. A disabled account cannot
    log in and its open sessions end at their next page run. Nobody disables themself or the last
    active administrator."""
    action = "accounts.enable" if active else "accounts.disable"
    with uow.begin(action):
        session = uow.session
        _require_admin(session, actor)
        tree = store_tree(uow.conn)
        user = _target(session, tree, actor, user_id, action)
        if bool(user.is_active) == active:
            return False
        if not active:
            if user.id == actor.id:
                raise AccountRefused("不能停用自己的账号，请由其他管理员操作")
            if Role(user.role) is Role.ADMIN:
                _keep_an_admin(session, user.id)
        before = _snapshot(tree, user)
        session.execute(update(User).where(User.id == user.id).values(is_active=active))
        session.refresh(user)
        audit.record(
            uow.conn,
            **audit.who(actor),
            action=action,
            entity="users",
            entity_id=user.id,
            before=before,
            after=_snapshot(tree, user),
        )
        uow.commit()
    log.info("account %s %s by user id %s", user_id, "enabled" if active else "disabled", actor.id)
    return True


def reset_password(uow: UnitOfWork, *, actor: CurrentUser, user_id: int, now: datetime) -> str:
    """Give the account a new temporary password (returned, to be shown once), lift any lock-out, and
    make it change the password at its next login. An open session of that account ends at its next
    page run (it did not log in with the temporary password)."""
    word = temporary_password()
    password_hash = hash_password(word)
    with uow.begin("accounts.reset_password"):
        session = uow.session
        _require_admin(session, actor)
        tree = store_tree(uow.conn)
        user = _target(session, tree, actor, user_id, "accounts.reset_password")
        if user.id == actor.id:
            raise AccountRefused(
                "不能重置自己的密码。请由其他管理员重置，或在服务器上运行 python -m services.auth passwd 用户名"
            )
        before = {
            "password_set": bool(user.password_hash),
            "must_change_password": bool(user.must_change_password),
            "failed_logins": user.failed_logins,
            "locked_until": user.locked_until,
        }
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                password_hash=password_hash, must_change_password=True, failed_logins=0, locked_until=None
            )
        )
        audit.record(
            uow.conn,
            **audit.who(actor),
            action="accounts.reset_password",
            entity="users",
            entity_id=user.id,
            before=before,
            after={
                "password_set": True,
                "must_change_password": True,
                "failed_logins": 0,
                "locked_until": None,
            },
        )
        uow.commit()
    log.info("password of account %s reset by user id %s", user_id, actor.id)
    return word


def update_account(
    uow: UnitOfWork,
    *,
    actor: CurrentUser,
    user_id: int,
    role: Role | None,
    scope_unit_id: int | None,
    department_id: int | None,
    now: datetime,
) -> bool:
    """Change an account's role, scope and department together (False if nothing changed). The account's
    open sessions end at their next page run (the store no longer says what they claim)."""
    with uow.begin("accounts.update"):
        session = uow.session
        _require_admin(session, actor)
        tree = store_tree(uow.conn)
        user = _target(session, tree, actor, user_id, "accounts.update")
        if scope_unit_id is not None:
            require_area(tree, actor, scope_unit_id, "accounts.update scope")
        departments = {d.id: d for d in session.execute(select(Department)).scalars()}
        problems = _placement_problems(tree, departments, actor, role, scope_unit_id, department_id)
        if problems:
            raise FieldProblems(problems)
        assert role is not None and scope_unit_id is not None
        old_role = Role(user.role)
        if (old_role, user.scope_unit_id, user.department_id) == (role, scope_unit_id, department_id):
            return False
        if user.id == actor.id:
            raise AccountRefused("不能修改自己的角色、管辖区划或部门，请由其他管理员操作")
        if old_role is Role.ADMIN and role is not Role.ADMIN and user.is_active:
            _keep_an_admin(session, user.id)
        before = _snapshot(tree, user)
        grids = None
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(role=role, scope_unit_id=scope_unit_id, department_id=department_id)
        )
        if role is Role.INSPECTOR or old_role is Role.INSPECTOR:
            grids = _cover_grids(session, tree, user.id, role, scope_unit_id)
        session.refresh(user)
        audit.record(
            uow.conn,
            **audit.who(actor),
            action="accounts.update",
            entity="users",
            entity_id=user.id,
            before=before,
            after=_snapshot(tree, user, grids),
        )
        uow.commit()
    log.info("account %s changed by user id %s", user_id, actor.id)
    return True


# ---------------------------------------------------------------------------------------------
# Bulk import
# ---------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """All or nothing: ``created`` when every row was good, else ``errors`` and nothing written."""

    created: list[Created] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: what the reader assumed (which sheet, a title or grouped header row passed over, the separator)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def import_template(example_code: str | None = None) -> bytes:
    """The XLSX template: the 账号 sheet's headers, and a 说明 sheet with what each column takes."""
    return tabular.import_template("账号", {c: COLUMN_NOTES[c] for c in COLUMNS}, example_code)


def parse_role(text: str) -> Role | None:
    """A role as people write it: its Chinese label (乡镇领导), its value (township_leader) or an alias."""
    text = (text or "").strip()
    for role in Role:
        if text in (role.label, role.value):
            return role
    return ROLE_ALIASES.get(text)


def import_accounts(
    uow: UnitOfWork, *, actor: CurrentUser, data: bytes, filename: str, now: datetime
) -> ImportResult:
    """Create every account of an XLSX/CSV file (UTF-8, UTF-8 with BOM, GBK), or none.

    Each bad row is a :class:`RowError` with its row number as the file shows it (header row 1; blank
    lines and lines inside quoted cells count: :func:`services.tabular.read_sheet`); a row whose cells do
    not match the header is one, and so is a user name repeated in the file or already in the store.
    The errors are listed in row order, at most :data:`services.tabular.MAX_LISTED` and then the total.
    A file that cannot be read at all raises :class:`TableError`. The rows are checked once before
    hashing the passwords and again inside the unit of work that writes them (a name taken meanwhile
    is reported, nothing written).
    """
    sheet = read_sheet(data, filename, REQUIRED_COLUMNS, max_rows=MAX_IMPORT_ROWS)
    if not sheet.rows and not sheet.problems:
        raise TableError("文件中没有账号：请在表头下一行起每行填写一个账号")
    rows = [{c: cells.get(c, "") for c in COLUMNS} | {"_row": n} for n, cells in sheet.rows]
    with uow.reader() as conn, Session(bind=conn) as reading:
        _require_admin(conn, actor)
        drafts, errors = _check_rows(reading, store_tree(conn), actor, rows)
    if errors or sheet.problems:
        return ImportResult(errors=listed(sheet.problems + errors), notes=sheet.notes)
    hashes, created = [], []
    for row, draft in drafts:
        generated = None if draft.password else temporary_password()
        hashes.append(hash_password(draft.password or generated or ""))
        created.append((row, generated))
    with uow.begin("accounts.import"):
        session = uow.session
        _require_admin(session, actor)
        tree = store_tree(uow.conn)
        drafts, errors = _check_rows(session, tree, actor, rows)
        if errors:
            return ImportResult(errors=listed(errors), notes=sheet.notes)
        out = []
        reason = f"批量导入：{filename}"[:200]
        for (row, draft), password_hash, (_, generated) in zip(drafts, hashes, created, strict=True):
            user = _insert(session, tree, draft, password_hash, now, who=audit.who(actor), reason=reason)
            out.append(Created(user.id, user.username, generated, row))
        uow.commit()
    log.info("%s accounts imported by user id %s", len(out), actor.id)
    return ImportResult(created=out, notes=sheet.notes)


def _check_rows(
    session: Session, tree: Tree, actor: CurrentUser, rows: list[dict]
) -> tuple[list[tuple[int, AccountDraft]], list[RowError]]:
    """Every row's draft, or every row's problems (file fields by their column names)."""
    departments = list(session.execute(select(Department)).scalars())
    by_id = {d.id: d for d in departments}
    by_text: dict[str, list[Department]] = {}
    for d in departments:
        by_text.setdefault(d.code, []).append(d)
        if d.name != d.code:
            by_text.setdefault(d.name, []).append(d)
    taken = {
        name.lower()
        for name in session.execute(
            select(User.username).where(
                func.lower(User.username).in_({r["用户名"].strip().lower() for r in rows})
            )
        ).scalars()
    }
    seen: dict[str, int] = {}
    drafts: list[tuple[int, AccountDraft]] = []
    errors: list[RowError] = []
    for r in rows:
        n = r["_row"]
        problems: dict[str, str] = {}
        role = parse_role(r["角色"])
        if role is None:
            problems["角色"] = (
                f"“{r['角色']}”不是角色之一（{'、'.join(x.label for x in Role)}）"
                if r["角色"]
                else "请填写角色"
            )
        code = r["管辖区划编码"]
        scope = tree.by_code(code) if code else None
        if not code:
            problems["管辖区划编码"] = "请填写管辖区划编码"
        elif scope is None:
            problems["管辖区划编码"] = f"找不到编码为 {code} 的区划，请核对"
        elif not tree.contains(actor.scope_unit_id, scope):
            problems["管辖区划编码"] = f"区划 {code}（{tree.name(scope)}）不在您的管辖范围内"
        dept_id = None
        if r["部门"]:
            found = by_text.get(r["部门"], [])
            inside = [d for d in found if tree.contains(actor.scope_unit_id, d.unit_id)]
            if scope is not None and len(inside) > 1:
                inside = [d for d in inside if _on_path(tree, d.unit_id, scope)] or inside
            if not inside:
                problems["部门"] = f"找不到部门“{r['部门']}”（请填写部门编码或全称，且须在您的管辖范围内）"
            elif len(inside) > 1:
                problems["部门"] = f"有多个部门叫“{r['部门']}”，请改填部门编码"
            else:
                dept_id = inside[0].id
        draft = AccountDraft(r["用户名"], r["姓名"], role, scope, dept_id, r["手机号"], r["初始密码"] or None)
        problems = _identity_problems(draft) | problems
        if scope is not None and tree.contains(actor.scope_unit_id, scope) and "部门" not in problems:
            placement = _placement_problems(tree, by_id, actor, role, scope, dept_id)
            problems |= {
                ("管辖区划编码" if k == "管辖区划" else k): v for k, v in placement.items() if k != "角色"
            }
        if role is not Role.DEPARTMENT and role is not None and r["部门"] and "部门" not in problems:
            problems["部门"] = "只有部门处置人员需要部门，请留空"
        key = r["用户名"].strip().lower()
        if "用户名" not in problems:
            if key in seen:
                problems["用户名"] = f"与第 {seen[key]} 行的用户名重复"
            elif key in taken:
                problems["用户名"] = "该用户名已存在，请换一个"
            seen.setdefault(key, n)
        errors += [RowError(n, f, reason) for f, reason in problems.items()]
        if not problems:
            drafts.append((n, draft))
    order = {c: i for i, c in enumerate(COLUMNS)}
    errors.sort(key=lambda e: (e.row, order.get(e.field, len(order))))
    return drafts, errors


# ---------------------------------------------------------------------------------------------
# The first administrator
# ---------------------------------------------------------------------------------------------


def create_first_admin(
    uow: UnitOfWork,
    *,
    username: str,
    display_name: str,
    password: str,
    repeat: str,
    now: datetime,
    scope_unit_id: int | None = None,
) -> CurrentUser:
    """The first account of an empty store: an administrator of the top unit (or of the chosen one when
    the store has several). Refused (:class:`FirstRunClosed`) once any account exists, checked under a
    lock inside the unit of work: of two simultaneous first-run submissions exactly one succeeds."""
    draft = AccountDraft(username, display_name, Role.ADMIN, scope_unit_id)
    problems = _identity_problems(draft) | new_password_problems(password, repeat, field="密码")
    password_hash = "" if problems else hash_password(password)
    with uow.begin("accounts.first_admin"):
        session = uow.session
        # Every audited writer queues on the trail's head row: the lock that makes "no account yet" hold
        # until this transaction ends (PostgreSQL; SQLite's unit of work holds the write lock already).
        session.execute(select(AuditHead.id).where(AuditHead.id == 1).with_for_update())
        if has_accounts(session):
            raise FirstRunClosed("系统已有账号，首个管理员只能创建一次。请使用已有账号登录")
        tree = store_tree(uow.conn)
        roots = list(tree.roots)
        if not roots:
            raise AccountRefused(NO_UNITS)
        if scope_unit_id is None and len(roots) == 1:
            scope_unit_id = roots[0]
        if scope_unit_id not in roots:
            problems["管辖区划"] = "请选择管辖区划（区划的顶层单位之一）"
        if problems:
            raise FieldProblems(problems)
        draft = AccountDraft(username, display_name, Role.ADMIN, scope_unit_id)
        user = _insert(
            session,
            tree,
            draft,
            password_hash,
            now,
            who={"actor_id": None, "actor_role": "anonymous"},  # nobody is logged in yet
            action="accounts.first_admin",
            reason="首次运行：创建首个管理员",
            must_change=False,
        )
        uow.commit()
    log.info("first administrator created (user id %s)", user.id)
    return _current(user)


def create_admin(
    uow: UnitOfWork, *, username: str, display_name: str, password: str, scope_code: str | None, now: datetime
) -> CurrentUser:
    """An operator at the server's command line creates an administrator (at any time: the way back in
    when no administrator can log in). ``scope_code`` None: the store's single top unit."""
    draft = AccountDraft(username, display_name, Role.ADMIN, None)
    problems = _identity_problems(draft)
    if problem := password_problem(password):
        problems["密码"] = problem
    password_hash = "" if problems else hash_password(password)
    with uow.begin("accounts.create_admin"):
        session = uow.session
        tree = store_tree(uow.conn)
        if not tree.roots:
            raise AccountRefused(NO_UNITS)
        if scope_code:
            scope = tree.by_code(scope_code)
            if scope is None:
                problems["管辖区划编码"] = f"找不到编码为 {scope_code} 的区划"
        elif len(tree.roots) == 1:
            scope = tree.roots[0]
        else:
            scope = None
            codes = "、".join(tree.code(r) for r in tree.roots)
            problems["管辖区划编码"] = f"区划有多个顶层单位（{codes}），请用 --scope-code 指定"
        if "用户名" not in problems and _taken(session, username):
            problems["用户名"] = "该用户名已被使用"
        if problems:
            raise FieldProblems(problems)
        user = _insert(
            session,
            tree,
            AccountDraft(username, display_name, Role.ADMIN, scope),
            password_hash,
            now,
            who=audit.who(None),  # the operator at the server: the system
            action="accounts.create_admin",
            reason="命令行创建管理员",
            must_change=False,
        )
        uow.commit()
    return _current(user)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m services.accounts create-admin --username U [--name 姓名] [--scope-code 330802]``:
    the password is asked twice and never echoed."""
    import argparse
    import getpass

    from db.engine import make_engine
    from services import clock

    parser = argparse.ArgumentParser(description="创建系统管理员 (create an administrator)")
    parser.add_argument("command", choices=["create-admin"])
    parser.add_argument("--username", required=True)
    parser.add_argument("--name", default="系统管理员", help="姓名（默认：系统管理员）")
    parser.add_argument("--scope-code", default=None, help="管辖区划编码（默认：区划的唯一顶层单位）")
    args = parser.parse_args(list(argv) if argv is not None else None)
    password = getpass.getpass("密码：")
    if password != getpass.getpass("再次输入密码："):
        print("两次输入的密码不一致，未创建", file=sys.stderr)
        return 1
    try:
        user = create_admin(
            UnitOfWork(make_engine()),
            username=args.username,
            display_name=args.name,
            password=password,
            scope_code=args.scope_code,
            now=clock.now(),
        )
    except FieldProblems as exc:
        print("未创建：" + "；".join(f"{k}：{v}" for k, v in exc.problems.items()), file=sys.stderr)
        return 1
    except AccountRefused as exc:
        print(f"未创建：{exc}", file=sys.stderr)
        return 1
    print(f"已创建管理员 {user.username}（已记入审计日志），请用该账号登录")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
