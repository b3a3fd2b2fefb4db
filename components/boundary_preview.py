"""The preview of 区划导入 (/boundaries): what the import will write — the counts per level, the outlines on
the map, and what the (rolled-back) write did to venues, events and accounts — before anything is kept."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import maps
from components.boundary_form import problems_frame
from components.palette import NO_DATA_RGB
from components.text import md_text
from domain.vocabulary import AdminLevel
from services.boundaries import ImportPlan, ImportResult

MAP_HEIGHT = 520


def counts_frame(plan: ImportPlan) -> pd.DataFrame:
    """Per level: from the file, generated, in all, residents (Chinese headings)."""
    counts = plan.counts()
    if counts.empty:
        return counts
    counts["level"] = counts["level"].map(lambda lv: AdminLevel(lv).label)
    return counts.rename(
        columns={
            "level": "级别",
            "from_file": "文件中",
            "generated": "将生成",
            "total": "合计",
            "population": "人口",
        }
    )


def show_notes(notes: list[str]) -> None:
    if notes:
        st.info("\n".join(f"- {md_text(n)}" for n in notes))


def show_problems(result: ImportResult) -> None:
    st.error(f"共 {len(result.errors)} 处问题，数据库未作任何修改：")
    st.dataframe(problems_frame(result.errors), hide_index=True, width="stretch")
    if result.unplaced:
        st.markdown(f"**不在新区划任何网格内的场所和事件**（共 {result.unplaced_total} 个）")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "类别": "场所" if u.kind == "venue" else "事件",
                        "名称": u.label,
                        "经度": u.lon,
                        "纬度": u.lat,
                    }
                    for u in result.unplaced
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def show_map(plan: ImportPlan, key: str) -> None:
    """The outlines of one level (the file's top level first), grey with white borders; hover: name, level,
    residents."""
    units = plan.units
    if units is None or units.empty:
        return
    present = [lv for lv in AdminLevel if lv.value in set(units["level"])]
    level = st.radio(
        "地图显示层级", present, format_func=lambda lv: lv.label, horizontal=True, key=f"bd_view_level_{key}"
    )
    shown = units[units["level"] == level.value].reset_index(drop=True)
    features = shown[["code", "name", "geometry"]].assign(
        id=range(len(shown)),
        class_label=level.label,
        score=shown["population"].astype(float),
        rgb=[NO_DATA_RGB] * len(shown),
    )
    deck = maps.risk_deck(
        [maps.area_layer(features)],
        tuple(units.total_bounds),
        tooltip_html="{name}<br/>{class_label} · 人口 {score}",
        width=900,
        height=MAP_HEIGHT,
    )
    st.pydeck_chart(deck, height=MAP_HEIGHT, key=f"bd_deck_{key}")


def show_outcome(result: ImportResult, *, done: bool) -> None:
    """What the write does (preview) or did (done) to the stored area and what depends on it."""
    verb = "已" if done else "将"
    if result.kept or result.removed:
        st.markdown(
            f"原有区划：{verb}保留 {result.kept} 个单元（编码相同，原记录更新），{verb}移除 {result.removed} 个；"
            f"{verb}重新定位场所 {result.relocated.get('venues', 0)} 个、事件 {result.relocated.get('events', 0)} 个"
            "到其位置所在的新网格。"
        )
    if result.rescoped:
        st.warning(
            f"以下账号的管辖单位在新区划中不存在，{verb}改为覆盖其位置的新单位；非管理员账号{verb}停用，请在「账号管理」中确认管辖区划后启用："
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "用户名": r.username,
                        "角色": r.role.label,
                        "原管辖单位": r.old_scope,
                        "新管辖单位": r.new_scope,
                        "状态": "停用，待确认" if r.disabled else "仍可登录",
                    }
                    for r in result.rescoped
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    if result.not_carried:  # settings naming a unit whose code is gone (decision 0027)
        st.warning(f"以下设置所指的区划在新区划中已不存在，{verb}无法沿用并作如下处理（其余按编码沿用）：")
        st.dataframe(
            pd.DataFrame(
                [
                    {"设置": n.setting, "名称": n.label, "原区划": n.unit, "处理": n.outcome}
                    for n in result.not_carried
                ]
            ),
            hide_index=True,
            width="stretch",
        )
