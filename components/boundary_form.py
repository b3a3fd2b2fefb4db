"""The mapping step of 区划导入 (/boundaries): the uploaded file read once, its columns mapped (pre-filled for
DataV, the project's own columns and name-only files), the CRS, where the top units hang, replace/generate."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from components import store
from components.text import md_text
from domain.vocabulary import AdminLevel
from geo.boundaries import (
    CRS_AUTO,
    CRS_GCJ02,
    PARENT_AUTO,
    PARENT_CREATE,
    PARENT_NONE,
    BoundaryError,
    ColumnMapping,
    ParentChoice,
    SourceFile,
    sample_rows,
    suggest_mapping,
)
from services.boundaries import ImportOptions, StoreState, read_file, suggest_parent

UPLOAD_TYPES = ["geojson", "json", "zip", "gpkg", "kml"]
STYLE = {
    "datav": "DataV（阿里云 DataV GeoAtlas）格式：adcode / name / level / parent",
    "names": "只有名称的文件（省、市、区县等名称列，没有编码：编码将自动生成）",
    "standard": "带编码字段的文件",
}
FIELDS = [("code", "编码"), ("name", "名称"), ("level", "级别"), ("parent", "上级"), ("population", "人口")]
CRS_CHOICES = {
    CRS_AUTO: "按文件（WGS84 / CGCS2000 / 文件声明的坐标系）",
    CRS_GCJ02: "GCJ-02（高德、腾讯、DataV 数据）",
    "epsg": "指定 EPSG 编号（文件未声明坐标系时）",
}
PARENT_CHOICES = {
    PARENT_AUTO: "上级在文件或数据库中（按上级编码）",
    PARENT_CREATE: "由文件中的顶层单位合并生成上级",
    PARENT_NONE: "不设上级（文件的顶层单位即为最高一级）",
}


#: The checks' field keys as the person reads them (the 字段 column of the problems).
FIELD_WORDS = {
    "code": "编码",
    "name": "名称",
    "level": "级别",
    "parent_code": "上级",
    "population": "人口",
    "kind": "类型",
    "geometry": "边界（几何）",
}


def problems_frame(errors: list[BoundaryError]) -> pd.DataFrame:
    """Every problem as the person fixes it: where (第 n 个要素 / 文件), code, field, reason."""
    return pd.DataFrame(
        [
            {
                "位置": e.where(),
                "编码": e.code or "",
                "字段": FIELD_WORDS.get(e.field or "", e.field or ""),
                "问题": e.reason,
            }
            for e in errors
        ]
    )


def read_upload(upload) -> tuple[SourceFile | None, str]:
    """The uploaded file read once per content and layer (kept in the session); problems shown; a file of
    several layers (a GeoPackage, a zip of Shapefiles) offers them to choose. (file, its digest: the
    content's, and the layer's when it is not the first)."""
    data = upload.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:16]
    layer = st.session_state.get(f"bd_layer_{digest}")
    cached = st.session_state.get("bd_source")
    if cached is None or cached[0] != digest or (layer is not None and cached[1] != layer):
        with st.spinner("正在读取文件…"):
            source, problems = read_file(data, filename=upload.name, layer=layer)
        read = (
            layer
            if layer is not None
            else (source.layers[0] if source is not None and source.layers else None)
        )
        st.session_state["bd_source"] = cached = (digest, read, source, problems)
    _, read, source, problems = cached
    if problems:
        st.error("无法读取该文件，数据库未作任何修改：")
        st.dataframe(problems_frame(problems), hide_index=True, width="stretch")
        return None, digest
    if source is None or len(source.layers) <= 1:
        return source, digest
    st.selectbox(
        "图层（文件中有多个图层，每次导入其中一个；上下级分在不同图层时，请先在 GIS 软件中合并为一个图层）",
        source.layers,
        key=f"bd_layer_{digest}",
    )
    if read == source.layers[0]:
        return source, digest
    return source, f"{digest}-{hashlib.sha256(str(read).encode()).hexdigest()[:6]}"


def _pick(label: str, props: list[str | None], default: str | None, key: str, col=st) -> str | None:
    return col.selectbox(
        label,
        props,
        index=props.index(default) if default in props else 0,
        format_func=lambda c: "（无）" if c is None else str(c),
        key=key,
    )


def mapping_form(source: SourceFile, digest: str) -> ColumnMapping:
    """Which property is the code, name, level, parent and population (pre-filled from the file)."""
    suggested = suggest_mapping(source.frame)
    st.markdown(f"**{md_text(source.name)}** · {source.format} · {len(source.frame)} 个要素")
    st.caption(f"识别为：{STYLE[suggested.style]}。请核对字段对应关系。")
    st.dataframe(sample_rows(source), hide_index=True, width="stretch")
    props: list[str | None] = [None, *source.properties]
    if suggested.style == "names":
        by_level = dict(suggested.names_by_level)
        chosen = []
        cols = st.columns(5)
        for col, level in zip(cols, list(AdminLevel)[:4], strict=True):
            pick = _pick(
                f"{level.label}名称",
                props,
                by_level.get(level.value),
                f"bd_names_{level.value}_{digest}",
                col,
            )
            if pick is not None:
                chosen.append((level.value, pick))
        population = _pick("人口", props, suggested.population, f"bd_names_pop_{digest}", cols[4])
        return ColumnMapping(names_by_level=tuple(chosen), population=population, style="names")
    picks = {}
    for (name, label), col in zip(FIELDS, st.columns(len(FIELDS)), strict=True):
        picks[name] = _pick(f"{label}字段", props, getattr(suggested, name), f"bd_map_{name}_{digest}", col)
    fixed = None
    if picks["level"] is None:
        levels = list(AdminLevel)
        preset = AdminLevel(suggested.fixed_level or "county")
        fixed = st.selectbox(
            "全部要素的级别（文件没有级别字段）",
            levels,
            index=levels.index(preset),
            format_func=lambda lv: lv.label,
            key=f"bd_fixed_{digest}",
        ).value
    by_name = False
    if picks["parent"] is not None:
        by_name = st.checkbox("上级字段填的是名称（不是编码）", key=f"bd_parent_by_name_{digest}")
    return ColumnMapping(
        code=picks["code"],
        name=picks["name"],
        level=picks["level"],
        fixed_level=fixed,
        parent=picks["parent"],
        parent_is_name=by_name,
        population=picks["population"],
        kind=suggested.kind,
        style=suggested.style,
    )


def options_form(source: SourceFile, mapping: ColumnMapping, state: StoreState, digest: str) -> ImportOptions:
    """The CRS, replace or add, generate the lower levels, and where the file's top units hang."""
    c1, c2 = st.columns(2)
    crs_mode = c1.selectbox("坐标系", list(CRS_CHOICES), format_func=CRS_CHOICES.get, key=f"bd_crs_{digest}")
    crs = crs_mode
    if crs_mode == "epsg":
        crs = c1.text_input("EPSG 编号", value="EPSG:4549", key=f"bd_epsg_{digest}").strip() or CRS_AUTO
    replace = False
    if not state.empty:
        replace = c2.checkbox(
            "替换现有区划（场所、事件、部门和账号随之迁移到新区划）",
            key=f"bd_replace_{digest}",
            help="不勾选：文件中的单元加入现有区划（编码不能重复）",
        )
    fill = c2.checkbox("自动生成缺少的下级区划（乡镇、村社区、网格）", value=True, key=f"bd_fill_{digest}")
    with store.reader() as conn:
        preset = suggest_parent(conn, source, mapping, replacing=replace or state.empty)
    modes = list(PARENT_CHOICES)
    mode = st.radio(
        "顶层单位的上级",
        modes,
        index=modes.index(preset),
        format_func=PARENT_CHOICES.get,
        key=f"bd_parent_{digest}",
        horizontal=True,
    )
    code = name = None
    if mode == PARENT_CREATE:
        p1, p2 = st.columns(2)
        code = p1.text_input("上级编码（不填则用文件中的上级编码）", key=f"bd_pcode_{digest}").strip() or None
        name = p2.text_input("上级名称", key=f"bd_pname_{digest}").strip() or None
    return ImportOptions(mapping, crs, ParentChoice(mode, code, name), fill, replace)
