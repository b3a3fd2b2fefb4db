"""The 部门管理 tab of /admin: the departments of the administrator's area — list, create (any level of the
tree), rename or change kind, disable/enable, import a file (services.departments, decision 0027)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from components import cached, store
from components.account_forms import attempt, errors_frame, example_code, scope_picker
from components.text import md_text
from domain.access import CurrentUser
from domain.dispatch import DEPARTMENT_KINDS
from domain.hierarchy import Tree
from services import clock
from services.access import OutOfScope
from services.departments import (
    MAX_IMPORT_ROWS,
    DepartmentDraft,
    DepartmentRow,
    create_department,
    import_departments,
    import_template,
    list_departments,
    set_active,
    update_department,
)
from services.tabular import MAX_LISTED, TableError

COLUMNS = ["部门名称", "类型", "所属区划", "区划编码", "部门编码", "状态", "账号数", "在办事件"]


def department_frame(rows: Sequence[DepartmentRow]) -> pd.DataFrame:
    """The list as shown: labels in Chinese, the unit as its path from the administrator's unit."""
    return pd.DataFrame(
        [
            [
                r.name,
                r.kind,
                r.unit,
                r.unit_code,
                r.code,
                "启用" if r.active else "停用",
                r.accounts,
                r.open_events,
            ]
            for r in rows
        ],
        columns=COLUMNS,
    )


@st.cache_data(show_spinner=False)
def _template(example_code: str | None) -> bytes:
    return import_template(example_code)


def _written(write: Callable[[], Any]) -> Callable[[], Any]:
    """The use case, then the pages' read caches cleared (they may show department names)."""

    def run() -> Any:
        out = write()
        cached.clear_after_write()
        return out

    return run


def _kind(key: str, default: str | None = None) -> str:
    kinds = list(DEPARTMENT_KINDS)
    return st.selectbox("部门类型", kinds, index=kinds.index(default) if default in kinds else 0, key=key)


def department_panel(user: CurrentUser, tree: Tree) -> None:
    st.markdown(
        "派单时按分拨规则的部门类型，在事件所在区划及其上级中寻找该类部门。每个区划每类只能有一个部门；"
        "停用的部门不再接收新派单，其在办事件和账号不受影响。"
    )
    with store.reader() as conn:
        rows = list_departments(conn, user)
    st.caption(f"共 {len(rows)} 个部门")
    st.dataframe(department_frame(rows), hide_index=True, width="stretch")
    if rows:
        _actions(user, {r.id: r for r in rows})
    _create(user, tree)
    _import(user, example_code(tree, user.scope_unit_id))


def _actions(user: CurrentUser, by_id: dict[int, DepartmentRow]) -> None:
    st.subheader("部门操作")
    chosen = st.selectbox(
        "选择部门",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name}（{by_id[i].unit} · {by_id[i].kind}）",
        key="adm_d_pick",
    )
    dept = by_id[chosen]
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.text_input("部门名称", value=dept.name, max_chars=50, key=f"adm_d_rename_{chosen}")
    with c2:
        kind = _kind(f"adm_d_rekind_{chosen}", dept.kind)
    c3.write("")
    if c3.button("保存修改", key=f"adm_d_save_{chosen}"):
        attempt(
            _written(
                lambda: update_department(
                    store.uow(), actor=user, department_id=chosen, name=name, kind=kind, now=clock.now()
                )
            ),
            f"已修改部门 {name.strip()}",
        )
    label = "停用部门" if dept.active else "启用部门"
    if st.button(label, key=f"adm_d_toggle_{chosen}", help="停用后不再接收新派单；在办事件和账号不受影响"):
        attempt(
            _written(
                lambda: set_active(
                    store.uow(), actor=user, department_id=chosen, active=not dept.active, now=clock.now()
                )
            ),
            f"已{'停用' if dept.active else '启用'}部门 {dept.name}",
        )


def _create(user: CurrentUser, tree: Tree) -> None:
    st.subheader("新建部门")
    gen = st.session_state.setdefault("adm_d_gen", 0)  # a new form (empty fields) after each department
    unit = scope_picker(tree, user.scope_unit_id, f"adm_d_unit_{gen}")
    c1, c2, c3 = st.columns([2, 1, 1])
    name = c1.text_input(
        "部门名称", max_chars=50, key=f"adm_d_name_{gen}", placeholder="如 海湾县综合行政执法局"
    )
    with c2:
        kind = _kind(f"adm_d_kind_{gen}")
    code = c3.text_input(
        "部门编码（可不填）", max_chars=32, key=f"adm_d_code_{gen}", help="不填则按区划编码和类型生成"
    )
    if st.button("新建部门", type="primary", key="adm_d_create"):
        draft = DepartmentDraft(unit, name, kind, code)
        st.session_state["adm_d_gen"] = gen + 1  # kept only if the department is created (attempt reruns)
        attempt(
            _written(lambda: create_department(store.uow(), actor=user, draft=draft, now=clock.now())),
            f"已新建部门 {name.strip()}（{tree.name(unit)}）",
        )
        st.session_state["adm_d_gen"] = gen  # refused: the same form, as typed


def _import(user: CurrentUser, example: str | None) -> None:
    st.subheader("批量导入部门")
    st.caption(
        f"每行一个部门，全部无误才导入；CSV 可为 UTF-8 或 GBK 编码，一次最多 {MAX_IMPORT_ROWS} 行。列说明见模板的「说明」页。"
    )
    st.download_button(
        "下载部门导入模板（XLSX）", _template(example), file_name="部门导入模板.xlsx", key="adm_d_template"
    )
    upload = st.file_uploader("选择部门文件", type=["csv", "xlsx"], key="adm_d_upload")
    if upload is None or not st.button("导入部门", type="primary", key="adm_d_import"):
        return
    try:
        result = import_departments(
            store.uow(), actor=user, data=upload.getvalue(), filename=upload.name, now=clock.now()
        )
    except (TableError, OutOfScope) as exc:
        st.error(md_text(str(exc)))
        return
    for note in result.notes:  # what the reader assumed: the sheet read, a title row passed over
        st.info(md_text(note))
    if result.ok:
        cached.clear_after_write()
        st.success(f"已导入 {len(result.created)} 个部门")
    else:
        count = f"超过 {MAX_LISTED}" if len(result.errors) > MAX_LISTED else str(len(result.errors))
        st.error(f"文件中有 {count} 处问题，未导入任何部门。请改正后重新导入：")
        st.dataframe(errors_frame(result.errors), hide_index=True)
