"""Department administration (部门管理): the handling departments (条线部门) an administrator keeps.

A department serves one unit of the five-level tree (a county's 城管局, a township's 综合执法中队) and
handles one kind (条线, :data:`domain.dispatch.DEPARTMENT_KINDS`): dispatch sends an event to the
department of the rules' kind at the unit serving its place (:func:`services.event_rules.suggest_dispatch`).

Rules (decision 0027):

- Only an active administrator, and only inside their scope: an administrator scoped to a county lists,
  creates and changes the departments of units in that county (a unit or department outside is refused
  and logged, as every scope check of :mod:`services.access`).
- 名称: 2–50 characters, unique within its unit; 类型: one of the kinds; one department per kind and unit
  (the store's ``uq_departments_unit_kind``: dispatch must find exactly one). 编码: optional, unique in the
  store, letters, digits and ``- _ .``; generated from the unit's code and the kind when left empty.
- 停用 (disable): the department takes no new dispatch (neither suggested nor offered in the dispatch form);
  its open events, its trail and its accounts stay. Kept as a list of department ids in the settings
  (``departments.disabled``): department rows keep their ids through a boundary replace.
- Every change is one unit of work with one audit row; an import is all or nothing with row-numbered
  Chinese errors (:mod:`services.tabular`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session

from db.models import Department, Event, User
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.dispatch import DEPARTMENT_KINDS
from domain.errors import FieldProblems
from domain.hierarchy import Tree
from domain.vocabulary import OPEN_STATUSES
from services import audit, settings, tabular
from services.access import deny, out_of_scope
from services.accounts import DISABLED_DEPARTMENTS_KEY, disabled_departments
from services.accounts import _require_admin as require_admin
from services.geography import tree as store_tree
from services.tabular import RowError, TableError, listed, read_sheet

DISABLED_KEY = DISABLED_DEPARTMENTS_KEY
ADMIN_ONLY = "仅系统管理员可以管理部门"
MIN_NAME, MAX_NAME = 2, 50
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
CODE_RULE = "部门编码须为 1–32 位字母、数字或 - _ .，以字母或数字开头"
COLUMNS = ["部门名称", "类型", "所属区划编码", "部门编码"]
REQUIRED_COLUMNS = COLUMNS[:3]
COLUMN_NOTES = {
    "部门名称": f"必填，{MIN_NAME}–{MAX_NAME} 字，同一区划内不能重名",
    "类型": "必填：" + "、".join(DEPARTMENT_KINDS) + "；同一区划每类只能有一个部门",
    "所属区划编码": "必填：部门所在区划的编码（如 {example}），须在您的管辖范围内；可为任一级",
    "部门编码": "可不填（按区划编码和类型自动生成）；填写则不能与已有部门重复",
}
MAX_IMPORT_ROWS = 1000


class DepartmentProblems(FieldProblems):
    """A department that cannot be created or changed; ``problems`` maps each field to why, in Chinese."""


@dataclass(frozen=True)
class DepartmentRow:
    """One department as the administrator's list shows it."""

    id: int
    code: str
    name: str
    kind: str
    unit_id: int
    unit: str  # the unit's path from the administrator's unit down, e.g. 海湾县 / 东港镇
    unit_code: str
    active: bool
    accounts: int
    open_events: int


@dataclass(frozen=True)
class DepartmentDraft:
    """What the form or a file row gives: the unit, the name, the kind and an optional code."""

    unit_id: int | None
    name: str
    kind: str
    code: str = ""


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def disabled_ids(conn: Connection, *, lock: bool = False) -> frozenset[int]:
    """The departments that take no new dispatch (停用)."""
    return disabled_departments(conn, lock=lock)


def list_departments(
    conn: Connection, actor: CurrentUser, *, active: bool | None = None
) -> list[DepartmentRow]:
    """The departments of units inside the administrator's scope, by unit path then kind."""
    _require_admin(conn, actor)
    tree = store_tree(conn)
    off = disabled_ids(conn)
    accounts = dict(
        conn.execute(
            select(User.department_id, func.count())
            .where(User.department_id.is_not(None))
            .group_by(User.department_id)
        ).all()
    )
    events = dict(
        conn.execute(
            select(Event.lead_department_id, func.count())
            .where(Event.lead_department_id.is_not(None), Event.status.in_(OPEN_STATUSES))
            .group_by(Event.lead_department_id)
        ).all()
    )
    out = []
    for d in conn.execute(select(Department.__table__)):
        if d.unit_id not in tree or not tree.contains(actor.scope_unit_id, d.unit_id):
            continue
        row = DepartmentRow(
            id=int(d.id),
            code=d.code,
            name=d.name,
            kind=d.kind,
            unit_id=int(d.unit_id),
            unit=_below(tree, actor, d.unit_id),
            unit_code=tree.code(d.unit_id),
            active=d.id not in off,
            accounts=int(accounts.get(d.id, 0)),
            open_events=int(events.get(d.id, 0)),
        )
        if active is None or row.active is active:
            out.append(row)
    return sorted(out, key=lambda r: (len(tree.path(r.unit_id)), r.unit_code, r.kind, r.name))


def _below(tree: Tree, actor: CurrentUser, unit_id: int) -> str:
    path = tree.path(unit_id)
    if actor.scope_unit_id in path:
        path = path[path.index(actor.scope_unit_id) :]
    return " / ".join(tree.name(u) for u in path)


# ---------------------------------------------------------------------------------------------
# Checks shared by the form, the edit and the import
# ---------------------------------------------------------------------------------------------


def _require_admin(conn: Connection | Session, actor: CurrentUser | None) -> None:
    """The actor is an active administrator with the scope the store says (a stale or forged one is refused)."""
    require_admin(conn, actor, ADMIN_ONLY)


@dataclass
class _Known:
    """The stored departments (and, during an import, the file's earlier rows) the checks compare with."""

    by_unit_kind: dict[tuple[int, str], str] = field(default_factory=dict)  # → name
    by_unit_name: dict[tuple[int, str], int] = field(default_factory=dict)  # → id (0: a file row)
    codes: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, session: Session | Connection, skip: int | None = None) -> _Known:
        known = cls()
        for d in session.execute(
            select(Department.id, Department.code, Department.name, Department.kind, Department.unit_id)
        ):
            if d.id != skip:
                known.add(d.unit_id, d.name, d.kind, d.code, d.id)
            else:
                known.codes.add(d.code)
        return known

    def add(self, unit_id: int, name: str, kind: str, code: str, dept_id: int = 0) -> None:
        self.by_unit_kind[(unit_id, kind)] = name
        self.by_unit_name[(unit_id, name)] = dept_id
        self.codes.add(code.lower())


def _problems(
    tree: Tree, known: _Known, draft: DepartmentDraft, *, check_code: bool = True
) -> dict[str, str]:
    """Every problem of a draft whose unit lies in the administrator's scope (checked before)."""
    problems: dict[str, str] = {}
    name = draft.name.strip()
    if not name:
        problems["部门名称"] = "请填写部门名称"
    elif not MIN_NAME <= len(name) <= MAX_NAME:
        problems["部门名称"] = f"部门名称须为 {MIN_NAME}–{MAX_NAME} 字（现为 {len(name)} 字）"
    if draft.kind not in DEPARTMENT_KINDS:
        problems["类型"] = (
            f"“{draft.kind}”不是部门类型之一（{'、'.join(DEPARTMENT_KINDS)}）"
            if draft.kind
            else "请选择部门类型"
        )
    unit = draft.unit_id
    if unit is None or unit not in tree:
        problems["所属区划"] = "请选择部门所属的区划"
    else:
        where = f"{tree.name(unit)}（{tree.code(unit)}）"
        if "部门名称" not in problems and (unit, name) in known.by_unit_name:
            problems["部门名称"] = f"{where}已有名为“{name}”的部门，请换一个名称"
        if "类型" not in problems and (unit, draft.kind) in known.by_unit_kind:
            other = known.by_unit_kind[(unit, draft.kind)]
            problems["类型"] = (
                f"{where}已有{draft.kind}类部门“{other}”：同一区划每类只能有一个部门（可修改或停用它）"
            )
    code = draft.code.strip()
    if check_code and code:
        if not CODE.fullmatch(code):
            problems["部门编码"] = CODE_RULE
        elif code.lower() in known.codes:
            problems["部门编码"] = f"部门编码 {code} 已被使用，请换一个或留空自动生成"
    return problems


def _new_code(tree: Tree, known: _Known, unit_id: int, kind: str) -> str:
    base = f"{tree.code(unit_id)}-{DEPARTMENT_KINDS.index(kind) + 1:02d}"
    code, n = base, 1
    while code.lower() in known.codes:
        n += 1
        code = f"{base}-{n}"
    return code


def _in_scope(tree: Tree, actor: CurrentUser, unit_id: int | None, what: str) -> None:
    if unit_id is not None and (unit_id not in tree or not tree.contains(actor.scope_unit_id, unit_id)):
        raise out_of_scope(actor, what, unit_id, "该区划不在您的管辖范围内，不能在此设立或管理部门")


def _snapshot(tree: Tree, d: Department | DepartmentDraft, code: str, active: bool = True) -> dict:
    return {
        "code": code,
        "name": d.name.strip(),
        "kind": d.kind,
        "unit_id": d.unit_id,
        "unit_code": tree.code(d.unit_id) if d.unit_id is not None and d.unit_id in tree else None,
        "active": active,
    }


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def create_department(uow: UnitOfWork, *, actor: CurrentUser, draft: DepartmentDraft, now: datetime) -> int:
    """Create one department (every problem at once as :class:`DepartmentProblems`); returns its id."""
    with uow.begin("departments.create"):
        _require_admin(uow.conn, actor)
        tree = store_tree(uow.conn)
        _in_scope(tree, actor, draft.unit_id, "departments.create")
        known = _Known.of(uow.conn)
        problems = _problems(tree, known, draft)
        if problems:
            raise DepartmentProblems(problems)
        dept_id = _insert(uow.conn, tree, known, draft, actor, now)
        uow.commit()
    return dept_id


def _insert(
    conn: Connection,
    tree: Tree,
    known: _Known,
    draft: DepartmentDraft,
    actor: CurrentUser,
    now: datetime,
    reason=None,
) -> int:
    assert draft.unit_id is not None
    code = draft.code.strip() or _new_code(tree, known, draft.unit_id, draft.kind)
    dept_id = conn.execute(
        insert(Department).returning(Department.id),
        {"code": code, "name": draft.name.strip(), "kind": draft.kind, "unit_id": draft.unit_id},
    ).scalar_one()
    known.add(draft.unit_id, draft.name.strip(), draft.kind, code, dept_id)
    audit.record(
        conn,
        **audit.who(actor),
        action="departments.create",
        entity="departments",
        entity_id=int(dept_id),
        before=None,
        after=_snapshot(tree, draft, code),
        reason=reason,
        at=now,
    )
    return int(dept_id)


def _target(conn: Connection, tree: Tree, actor: CurrentUser, dept_id: int, what: str):
    row = conn.execute(  # locked (PostgreSQL): a second change of one department starts from the first's
        select(Department.__table__).where(Department.id == int(dept_id)).with_for_update()
    ).one_or_none()
    if row is None:
        raise DepartmentProblems({"部门": "该部门不存在，请刷新列表后重试"})
    if row.unit_id not in tree or not tree.contains(actor.scope_unit_id, row.unit_id):
        raise out_of_scope(actor, what, row.id, "该部门不在您的管辖范围内")
    return row


def update_department(
    uow: UnitOfWork, *, actor: CurrentUser, department_id: int, name: str, kind: str, now: datetime
) -> None:
    """Rename a department and/or change its kind (its unit and code stay: its events and accounts keep it)."""
    with uow.begin("departments.update"):
        _require_admin(uow.conn, actor)
        tree = store_tree(uow.conn)
        row = _target(uow.conn, tree, actor, department_id, "departments.update")
        draft = DepartmentDraft(row.unit_id, name, kind)
        problems = _problems(tree, _Known.of(uow.conn, skip=row.id), draft, check_code=False)
        if problems:
            raise DepartmentProblems(problems)
        if (row.name, row.kind) == (name.strip(), kind):
            raise DepartmentProblems({"部门": "没有修改任何内容"})
        uow.conn.execute(
            update(Department).where(Department.id == row.id).values(name=name.strip(), kind=kind)
        )
        active = row.id not in disabled_ids(uow.conn)
        audit.record(
            uow.conn,
            **audit.who(actor),
            action="departments.update",
            entity="departments",
            entity_id=int(row.id),
            before=_snapshot(tree, row, row.code, active),
            after=_snapshot(tree, draft, row.code, active),
            at=now,
        )
        uow.commit()


def set_active(
    uow: UnitOfWork, *, actor: CurrentUser, department_id: int, active: bool, now: datetime
) -> None:
    """停用 / 启用 a department: a disabled one takes no new dispatch; its open events and accounts stay."""
    with uow.begin("departments.set_active"):
        _require_admin(uow.conn, actor)
        tree = store_tree(uow.conn)
        row = _target(uow.conn, tree, actor, department_id, "departments.set_active")
        off = set(disabled_ids(uow.conn, lock=True))
        if (row.id not in off) is active:
            raise DepartmentProblems({"部门": f"该部门已{'启用' if active else '停用'}，请刷新列表"})
        (off.discard if active else off.add)(row.id)
        settings.write(
            uow.conn,
            DISABLED_KEY,
            json.dumps(sorted(off)),
            now,
            actor=actor,
            action="departments.enable" if active else "departments.disable",
            reason=f"{row.name}（{row.code}）",
        )
        uow.commit()


# ---------------------------------------------------------------------------------------------
# Import (all or nothing)
# ---------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """``created`` (file row, department id) when every row was good, else ``errors`` and nothing written."""

    created: list[tuple[int, int]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: what the reader assumed (which sheet, a title or grouped header row passed over, the separator)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def import_template(example_code: str | None = None) -> bytes:
    """The XLSX template: the 部门 sheet's headers and a 说明 sheet."""
    return tabular.import_template("部门", {c: COLUMN_NOTES[c] for c in COLUMNS}, example_code)


def import_departments(
    uow: UnitOfWork, *, actor: CurrentUser, data: bytes, filename: str, now: datetime
) -> ImportResult:
    """Create every department of an XLSX/CSV file (UTF-8, UTF-8 with BOM, GBK), or none: each bad row is a
    :class:`RowError` with its row number as the file shows it; a file that cannot be read raises
    :class:`TableError`. A unit outside the administrator's scope is a row error (and logged)."""
    sheet = read_sheet(data, filename, REQUIRED_COLUMNS, max_rows=MAX_IMPORT_ROWS)
    if not sheet.rows and not sheet.problems:
        raise TableError("文件中没有部门：请在表头下一行起每行填写一个部门")
    with uow.begin("departments.import"):
        _require_admin(uow.conn, actor)
        tree = store_tree(uow.conn)
        known = _Known.of(uow.conn)
        errors: list[RowError] = list(sheet.problems)
        drafts: list[tuple[int, DepartmentDraft]] = []
        for n, cells in sheet.rows:
            code = cells.get("所属区划编码", "").strip()
            unit = tree.by_code(code) if code else None
            draft = DepartmentDraft(
                unit, cells.get("部门名称", ""), cells.get("类型", "").strip(), cells.get("部门编码", "")
            )
            problems = _problems(tree, known, draft)
            if not code:
                problems["所属区划"] = "请填写所属区划编码"
            elif unit is None:
                problems["所属区划"] = f"找不到编码为 {code} 的区划，请核对"
            elif not tree.contains(actor.scope_unit_id, unit):
                deny(actor, "departments.import", unit)
                problems["所属区划"] = f"区划 {code}（{tree.name(unit)}）不在您的管辖范围内"
            errors += [
                RowError(n, "所属区划编码" if f == "所属区划" else f, why) for f, why in problems.items()
            ]
            if not problems and unit is not None:
                known.add(unit, draft.name.strip(), draft.kind, draft.code.strip() or f"~{n}")
                drafts.append((n, draft))
        if errors:
            order = {c: i for i, c in enumerate(COLUMNS)}
            errors.sort(key=lambda e: (e.row, order.get(e.field, len(order))))
            # leaving the block without commit writes nothing
            return ImportResult(errors=listed(errors), notes=sheet.notes)
        known = _Known.of(uow.conn)
        reason = f"批量导入：{filename}"[:200]
        created = [(n, _insert(uow.conn, tree, known, d, actor, now, reason)) for n, d in drafts]
        uow.commit()
    return ImportResult(created=created, notes=sheet.notes)
