"""The 接口密钥 tab of /admin: Open311 keys of the administrator's area — list, create (the key shown
once), revoke (services.api_keys, decision 0024)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import store
from components.account_forms import attempt, scope_picker
from domain.access import CurrentUser
from domain.hierarchy import Tree
from domain.vocabulary import EventCategory
from services import api_keys, clock


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "编号": [r["id"] for r in rows],
            "渠道": [r["channel"] for r in rows],
            "名称": [r["label"] for r in rows],
            "区域": [r["area"] for r in rows],
            "可报事项": [
                "、".join(EventCategory(c).label for c in r["categories"].split(","))
                if r["categories"]
                else "全部"
                for r in rows
            ],
            "每分钟上限": [r["per_minute"] for r in rows],
            "创建时间": [f"{r['created_at']:%Y-%m-%d %H:%M}" for r in rows],
            "状态": [f"已吊销（{r['revoked_at']:%Y-%m-%d}）" if r["revoked_at"] else "有效" for r in rows],
        }
    )


def api_keys_panel(user: CurrentUser, tree: Tree) -> None:
    st.markdown(
        "12345 热线、110 联动、视频识别、小程序等外部系统通过 Open311 接口上报和查询事件，每个渠道一把密钥。"
    )
    with store.reader() as conn:
        rows = api_keys.list_keys(conn, user)
    st.dataframe(_frame(rows), hide_index=True, width="stretch")
    live = {r["id"]: r for r in rows if not r["revoked_at"]}
    if live:
        c1, c2 = st.columns([3, 1])
        chosen = c1.selectbox(
            "吊销密钥", list(live), format_func=lambda i: f"#{i} {live[i]['label']}", key="adm_key_pick"
        )
        if c2.button("吊销", key="adm_key_revoke"):
            attempt(
                lambda: api_keys.revoke_key(store.uow(), actor=user, key_id=chosen, now=clock.now()),
                f"已吊销密钥 #{chosen}，下一次调用即被拒绝",
            )
    st.subheader("新建密钥")
    c1, c2 = st.columns(2)
    channel = c1.text_input("渠道代码", placeholder="12345、110、video、mini_program", key="adm_key_channel")
    label = c2.text_input("名称", placeholder="12345热线", key="adm_key_label")
    area = scope_picker(tree, user.scope_unit_id, key="adm_key_area")
    cats = st.multiselect(
        "可报事项（留空为全部）",
        list(EventCategory),
        format_func=lambda c: c.label,
        placeholder="全部事项",
        key="adm_key_cats",
    )
    per_minute = st.number_input("每分钟上限", 1, 100_000, api_keys.DEFAULT_PER_MINUTE, key="adm_key_limit")
    if st.button("创建密钥", type="primary", key="adm_key_create"):
        attempt(
            lambda: api_keys.create_key(
                store.uow(),
                actor=user,
                channel=channel.strip(),
                label=label,
                area_code=tree.code(area),
                now=clock.now(),
                categories=tuple(c.value for c in cats),
                per_minute=int(per_minute),
            ),
            lambda made: f"已创建密钥 #{made[0]}：{made[1]}（只显示这一次，请复制后交给对接方）",
        )
