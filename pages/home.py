"""Home (总览): the five levels with their units, venues and events: proof that store, geography and data are wired."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components.auth import require_page
from components.kpi import kpi_row
from components.store import engine
from components.text import md_text
from domain.vocabulary import AdminLevel
from services import clock
from services.overview import unit_figures

user = require_page("home")
st.title("乡镇数字驾驶舱 · 总览")


@st.cache_data(ttl=15, show_spinner="正在汇总五级数据…")
def figures(url_key: str, today_iso: str, _user, scope_unit_id: int) -> pd.DataFrame:
    from datetime import date

    with engine().connect() as conn:
        return unit_figures(conn, date.fromisoformat(today_iso), _user)


today = clock.today()
# Everything below is the user's scope: their unit and its subtree (the service leaves out the rest).
df = figures(str(engine().url), today.isoformat(), user, user.scope_unit_id)
if df.empty:
    st.warning(
        "您的管辖范围内还没有区划数据。请运行 `make run`（自动创建演示数据）或 `make seed`，或联系管理员。"
    )
    st.stop()
scope = user.scope_unit_id
scope_level = df.at[scope, "level"]
root = df.loc[scope]

own = AdminLevel(scope_level)
st.caption(f"数据日期：{today.isoformat()}　·　{md_text(root['name'])}　·　{own.linkage()}")
by_level = df.groupby("level").size()
kpi_row([(lvl.label + "数", int(by_level.get(lvl.value, 0))) for lvl in own.and_below()])
kpi_row(
    [
        ("场所总数", int(root["venues"])),
        ("事件总数", int(root["events"])),
        ("今日事件", int(root["today_events"])),
        (
            "常住人口（估算）" if bool(root.get("population_estimated", False)) else "常住人口",
            int(root["population"]),
        ),
    ]
)
st.caption("事件总数为全部上报（含已退回、已合并的重复件）；分析排名和报表只计有效事件，数字因此会小一些。")

st.subheader("五级穿透")
st.caption("逐级选择区划单元；默认沿事件最多的单元向下。")
path = [scope]
below = [lvl for lvl in AdminLevel if lvl.depth > AdminLevel(scope_level).depth]
cols = st.columns(max(len(below), 1))
for i, lvl in enumerate(below):
    kids = df[df["parent_id"] == path[-1]].sort_values(["events", "code"], ascending=[False, True])
    if kids.empty:
        break
    labels = {uid: f"{row['name']}（{row['code']}）" for uid, row in kids.iterrows()}
    chosen = cols[i].selectbox(lvl.label, list(labels), format_func=labels.get, key=f"home_{lvl.value}")
    path.append(chosen)

rows = []
for uid in path:
    u = df.loc[uid]
    rows.append(
        {
            "层级": AdminLevel(u["level"]).label,
            "单元": u["name"],
            "编码": u["code"],
            "下级单元数": int(u["children"]),
            "人口": f"{int(u['population']):,}",
            "场所数": f"{int(u['venues']):,}",
            "事件数": f"{int(u['events']):,}",
            "今日事件": f"{int(u['today_events']):,}",
        }
    )
st.table(pd.DataFrame(rows).set_index("层级"))
