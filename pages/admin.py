"""账号管理 (/admin): the accounts of the administrator's scope; create, disable/enable, reset a password,
change role/scope/department, import a file; the scope's departments (部门管理, decision 0027) and API keys.
The rules are services.accounts' (decision 0014)."""

from __future__ import annotations

import streamlit as st

from components import store
from components.account_forms import (
    STATUS,
    account_frame,
    attempt,
    department_select,
    example_code,
    role_select,
    scope_picker,
    show_import_result,
    show_notice,
    template,
)
from components.api_keys_panel import api_keys_panel
from components.auth import require_page
from components.department_panel import department_panel
from components.text import md_text
from domain.vocabulary import Role
from services import clock
from services.access import OutOfScope
from services.accounts import (
    MAX_IMPORT_ROWS,
    AccountDraft,
    create_account,
    departments_for,
    import_accounts,
    list_accounts,
    reset_password,
    set_active,
    update_account,
)
from services.audit_checks import latest_check
from services.jobs import attention
from services.tabular import TableError

user = require_page("admin")
st.title("账号管理")
tree = store.tree()
st.caption(
    f"您可以管理「{md_text(tree.name(user.scope_unit_id))}」及其下级区划的账号；每次修改都记入审计日志。"
)
show_notice()
with store.reader() as conn:
    check = latest_check(conn)  # the jobs runner's nightly 审计链校验
    troubles = attention(conn, clock.now())  # the timed work stopped or failing
for line in troubles:
    st.warning(line)
if check is not None:
    (st.caption if check.ok else st.error)(check.line())


def departments(scope: int):
    with store.reader() as conn:
        return departments_for(conn, user, scope)


listing, creating, importing, depts, keys = st.tabs(
    ["账号列表", "新建账号", "批量导入", "部门管理", "接口密钥"]
)

with listing:
    c1, c2, c3 = st.columns([1, 1, 2])
    role_filter = c1.selectbox(
        "角色", [None, *Role], format_func=lambda r: "全部角色" if r is None else r.label, key="adm_f_role"
    )
    status = c2.selectbox("状态", list(STATUS), key="adm_f_status")
    text = c3.text_input("搜索用户名或姓名", key="adm_f_text")
    with store.reader() as conn:
        rows = list_accounts(conn, user, now=clock.now(), role=role_filter, active=STATUS[status], text=text)
    st.caption(f"共 {len(rows)} 个账号")
    st.dataframe(account_frame(rows), hide_index=True, width="stretch")
    if rows:
        st.subheader("账号操作")
        by_id = {a.id: a for a in rows}
        chosen = st.selectbox(
            "选择账号",
            list(by_id),
            format_func=lambda i: f"{by_id[i].username} · {by_id[i].display_name}（{by_id[i].role.label}）",
            key="adm_pick",
        )
        account = by_id[chosen]
        if account.id == user.id:
            st.info("这是您自己的账号：停用、重置密码和修改角色须由其他管理员操作。")
        else:
            now = clock.now()
            b1, b2 = st.columns(2)
            if b1.button("停用账号" if account.is_active else "启用账号", key=f"adm_toggle_{chosen}"):
                attempt(
                    lambda: set_active(
                        store.uow(), actor=user, user_id=chosen, active=not account.is_active, now=now
                    ),
                    f"已{'停用' if account.is_active else '启用'}账号 {account.username}",
                )
            if b2.button(
                "重置密码", key=f"adm_reset_{chosen}", help="生成临时密码并解除锁定；对方下次登录须修改密码"
            ):
                attempt(
                    lambda: reset_password(store.uow(), actor=user, user_id=chosen, now=now),
                    f"已重置 {account.username} 的密码",
                    secret_of=lambda word: word,
                )
            with st.expander("修改角色、管辖区划或部门"):
                role = role_select(f"adm_e_role_{chosen}", account.role)
                scope = scope_picker(tree, user.scope_unit_id, f"adm_e_scope_{chosen}", account.scope_unit_id)
                dept = None
                if role is Role.DEPARTMENT:
                    dept = department_select(
                        departments(scope), f"adm_e_dept_{chosen}", account.department_id
                    )
                if st.button("保存修改", key=f"adm_save_{chosen}", type="primary"):
                    attempt(
                        lambda: update_account(
                            store.uow(),
                            actor=user,
                            user_id=chosen,
                            role=role,
                            scope_unit_id=scope,
                            department_id=dept,
                            now=now,
                        ),
                        f"已修改账号 {account.username}（该账号需重新登录）",
                    )

with creating:
    gen = st.session_state.setdefault("adm_new_gen", 0)  # a new form (empty fields) after each account
    c1, c2 = st.columns(2)
    username = c1.text_input(
        "用户名", max_chars=64, key=f"adm_n_user_{gen}", help="字母开头，3–64 位字母、数字或 _ . @ -"
    )
    display_name = c2.text_input("姓名", max_chars=50, key=f"adm_n_name_{gen}")
    role = role_select(f"adm_n_role_{gen}", Role.TOWNSHIP_LEADER)
    scope = scope_picker(tree, user.scope_unit_id, f"adm_n_scope_{gen}")
    dept = department_select(departments(scope), f"adm_n_dept_{gen}") if role is Role.DEPARTMENT else None
    c1, c2 = st.columns(2)
    phone = c1.text_input("手机号（可不填）", max_chars=20, key=f"adm_n_phone_{gen}")
    password = c2.text_input(
        "初始密码（可不填）",
        type="password",
        max_chars=128,
        key=f"adm_n_pw_{gen}",
        help="不填则自动生成临时密码，创建后显示一次；对方首次登录须修改密码",
    )
    if st.button("创建账号", type="primary", key="adm_create"):
        draft = AccountDraft(username, display_name, role, scope, dept, phone, password or None)
        st.session_state["adm_new_gen"] = gen + 1  # kept only if the account is created (attempt reruns)
        attempt(
            lambda: create_account(store.uow(), actor=user, draft=draft, now=clock.now()),
            lambda created: f"已创建账号 {created.username}，对方首次登录须修改密码",
            secret_of=lambda created: created.temporary_password,
        )
        st.session_state["adm_new_gen"] = gen  # refused: the same form, as typed

with importing:
    st.markdown(
        "每行一个账号，全部无误才导入（有任何一行出错则一个也不导入）。CSV 可为 UTF-8 或 GBK 编码；"
        f"一次最多 {MAX_IMPORT_ROWS} 行。列说明见模板的「说明」页。"
    )
    st.download_button(
        "下载导入模板（XLSX）",
        template(example_code(tree, user.scope_unit_id)),
        file_name="账号导入模板.xlsx",
        key="adm_template",
    )
    upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key="adm_upload")
    if upload is not None and st.button("导入", type="primary", key="adm_import"):
        try:
            with st.spinner("正在检查并导入…"):
                result = import_accounts(
                    store.uow(), actor=user, data=upload.getvalue(), filename=upload.name, now=clock.now()
                )
        except (TableError, OutOfScope) as exc:
            st.error(md_text(str(exc)))
        else:
            show_import_result(result)

with depts:
    department_panel(user, tree)

with keys:
    api_keys_panel(user, tree)
