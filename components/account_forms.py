"""Widgets of 账号管理 (/admin): the scope picker over the tree, role and department boxes, the account list
and the import's result tables, and the one-time notice that shows a temporary password once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from components.text import md_text
from domain.errors import FieldProblems
from domain.hierarchy import Tree
from domain.vocabulary import Role
from services.access import OutOfScope
from services.accounts import (
    Account,
    AccountRefused,
    Created,
    DepartmentChoice,
    ImportResult,
    import_template,
)
from services.tabular import MAX_LISTED, RowError

NOTICE_KEY = "admin_notice"
ROLES = list(Role)
STATUS = {"全部": None, "启用": True, "停用": False}


def scope_picker(tree: Tree, root: int, key: str, default: int | None = None) -> int:
    """管辖区划: one box per level below ``root`` (the administrator's unit), each listing the children of
    the unit chosen above it; "（本级）" stops there. Returns the deepest unit chosen (``root`` at least).
    Keys carry the parent unit, so choosing another county shows that county's townships afresh."""
    path = tree.path(default) if default is not None and tree.contains(root, default) else [root]
    preset = path[path.index(root) + 1 :]
    st.markdown("**管辖区划**")
    chosen = root
    cols = st.columns(4)
    for depth in range(8):
        kids = tree.children(chosen)
        if not kids:
            break
        options: list[int | None] = [None, *kids]
        labels = {u: f"{tree.name(u)}（{tree.code(u)}）" for u in kids}
        here = tree.name(chosen)
        index = options.index(preset[depth]) if depth < len(preset) and preset[depth] in options else 0
        pick = cols[depth % 4].selectbox(
            tree.level(kids[0]).label,
            options,
            index=index,
            format_func=lambda u, here=here, labels=labels: f"（本级：{here}）" if u is None else labels[u],
            key=f"{key}_{chosen}",
        )
        if pick is None:
            break
        chosen = pick
    st.caption(f"已选：{md_text(' / '.join(tree.name(u) for u in tree.path(chosen)))}")
    return chosen


def role_select(key: str, default: Role | None = None) -> Role:
    return st.selectbox(
        "角色",
        ROLES,
        index=ROLES.index(default) if default in ROLES else 0,
        format_func=lambda r: r.label,
        key=key,
    )


def department_select(
    choices: Sequence[DepartmentChoice], key: str, default: int | None = None
) -> int | None:
    """所属部门 (for a 部门处置人员): the departments on the chosen scope's path."""
    ids: list[int | None] = [None, *(d.id for d in choices)]
    names = {d.id: f"{d.name}（{d.code}）" for d in choices}
    return st.selectbox(
        "所属部门",
        ids,
        index=ids.index(default) if default in ids else 0,
        format_func=lambda d: "（请选择部门）" if d is None else names[d],
        key=key,
        help="部门须设在管辖区划本级、上级或下级；没有合适的部门时请先调整管辖区划",
    )


@st.cache_data(show_spinner=False)
def template(example: str | None) -> bytes:
    """The import template (XLSX) with ``example`` as its example code, built once per process and code."""
    return import_template(example)


def example_code(tree: Tree, scope_unit_id: int) -> str | None:
    """The code a template's notes give as an example: the user's own unit's (not the demo's 330802),
    none before the first boundary import."""
    from services.boundaries import SETUP_CODE

    code = tree.code(scope_unit_id) if scope_unit_id in tree else None
    return None if code in (None, SETUP_CODE) else code


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def account_frame(accounts: Sequence[Account]) -> pd.DataFrame:
    """The account list as shown: phones masked, labels in Chinese, dates as 2026-11-21 09:00."""
    return pd.DataFrame(
        [
            {
                "用户名": a.username,
                "姓名": a.display_name,
                "角色": a.role.label,
                "管辖区划": a.scope,
                "部门": a.department or "",
                "手机号": a.phone or "",
                "状态": "启用" if a.is_active else "停用",
                "锁定至": _when(a.locked_until),
                "须改密码": "是" if a.must_change_password else "",
                "创建时间": _when(a.created_at),
            }
            for a in accounts
        ],
        columns=[
            "用户名",
            "姓名",
            "角色",
            "管辖区划",
            "部门",
            "手机号",
            "状态",
            "锁定至",
            "须改密码",
            "创建时间",
        ],
    )


def errors_frame(errors: Sequence[RowError]) -> pd.DataFrame:
    """An import's problems as the table 行号 / 字段 / 问题."""
    return pd.DataFrame(
        [{"行号": e.row, "字段": e.field, "问题": e.reason} for e in errors], columns=["行号", "字段", "问题"]
    )


def created_frame(created: Sequence[Created]) -> pd.DataFrame:
    """Imported accounts with their generated temporary passwords (shown this once)."""
    return pd.DataFrame(
        [
            {
                "行号": c.row,
                "用户名": c.username,
                "临时密码": c.temporary_password or "（使用文件中的初始密码）",
            }
            for c in created
        ],
        columns=["行号", "用户名", "临时密码"],
    )


def notify(message: str, secret: str | None = None) -> None:
    """Keep a message (and a temporary password) for the next run, which shows it once."""
    st.session_state[NOTICE_KEY] = (message, secret)


def show_notice() -> None:
    """The message kept by :func:`notify`, shown once; a temporary password in a copyable box."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if not notice:
        return
    message, secret = notice
    st.success(md_text(message))
    if secret:
        st.caption("临时密码只显示这一次，请当面或通过安全渠道告知本人；对方首次登录后须修改密码。")
        st.code(secret, language=None)


def show_problems(exc: FieldProblems) -> None:
    """Every field's problem, one line each."""
    for field, message in exc.problems.items():
        st.error(f"{md_text(field)}：{md_text(message)}")


def attempt(action: Callable[[], Any], done: str | Callable[[Any], str], secret_of=None) -> None:
    """Run a use case: its refusal is shown in Chinese; on success ``done`` (a message, or one made from
    the result) and a temporary password (``secret_of(result)``) are kept for the next run, which shows
    them once, and the page reruns (the list reads the change)."""
    try:
        result = action()
    except FieldProblems as exc:
        show_problems(exc)
    except (AccountRefused, OutOfScope) as exc:
        st.error(md_text(str(exc)))
    else:
        notify(done(result) if callable(done) else done, secret_of(result) if secret_of else None)
        st.rerun()


def show_import_result(result: ImportResult) -> None:
    """All imported, with the generated passwords; or every problem as 行号 / 字段 / 问题 and nothing done.
    What the reader assumed (the sheet read, a title row passed over) is said first."""
    for note in result.notes:
        st.info(md_text(note))
    if result.ok:
        st.success(f"已导入 {len(result.created)} 个账号；临时密码只显示这一次，请妥善转交本人。")
        st.dataframe(created_frame(result.created), hide_index=True)
    else:
        many = (
            len(result.errors) > MAX_LISTED
        )  # the list stops at MAX_LISTED and its last line gives the total
        count = f"超过 {MAX_LISTED}" if many else str(len(result.errors))
        st.error(f"文件中有 {count} 处问题，未导入任何账号。请改正后重新导入：")
        st.dataframe(errors_frame(result.errors), hide_index=True)
