"""区划导入 (/boundaries): a boundary file → its columns mapped → a preview (counts, outlines, what moves) → 导入.

The preview runs the import's own write and rolls it back (services.boundaries, decision 0025: imports that
never destroy data); 导入 writes the very plan that was previewed."""

from __future__ import annotations

import streamlit as st

from components import cached, store
from components.auth import require_page
from components.boundary_form import UPLOAD_TYPES, mapping_form, options_form, read_upload
from components.boundary_preview import counts_frame, show_map, show_notes, show_outcome, show_problems
from services.access import OutOfScope
from services.boundaries import apply_plan, preview, store_state

user = require_page("boundaries")
st.title("区划导入")
with store.reader() as conn:
    state = store_state(conn)
if state.setup_only:
    st.info("尚未导入区划：请上传本地区的边界文件。导入后，您的管辖区划即为文件中的顶层单位。")
st.caption(
    "支持 GeoJSON、Shapefile（.shp 等文件打包为 .zip，.dbf 可为 GBK 编码）、GeoPackage 和 KML。"
    "先预览：检查全部要素、生成下级区划并试写入（随即撤销），无误后再导入；任何问题都不会改动数据库。"
)
if done := st.session_state.pop("bd_done", None):
    st.success(done[0])
    show_outcome(done[1], done=True)

upload = st.file_uploader("边界文件", type=UPLOAD_TYPES, key="bd_upload")
if upload is None:
    st.stop()
source, digest = read_upload(upload)
if source is None:
    st.stop()

st.subheader("1. 字段对应")
mapping = mapping_form(source, digest)
st.subheader("2. 导入选项")
options = options_form(source, mapping, state, digest)

st.subheader("3. 预览")
fingerprint = (digest, repr(options))
if st.button("预览", type="secondary", key="bd_preview"):
    try:
        with st.spinner("正在检查全部要素并生成下级区划…"):
            plan, result = preview(store.uow(), source, options, actor=user)
    except OutOfScope as exc:
        st.error(str(exc))
        st.stop()
    st.session_state["bd_plan"] = (fingerprint, plan, result)
saved = st.session_state.get("bd_plan")
if saved is None or saved[0] != fingerprint:
    st.caption("修改字段或选项后请重新预览。")
    st.stop()
_, plan, result = saved
show_notes(result.notes)
if not result.ok:
    show_problems(result)
    st.stop()
st.success("检查通过：以下为将要写入的区划（尚未写入）。")
st.dataframe(counts_frame(plan), hide_index=True, width="stretch")
show_outcome(result, done=False)
show_map(plan, digest)

if st.button("导入", type="primary", key="bd_commit"):
    try:
        with st.spinner("正在写入…"):
            final = apply_plan(store.uow(), plan, actor=user)
    except OutOfScope as exc:
        st.error(str(exc))
        st.stop()
    if not final.ok:
        show_problems(final)
        st.stop()
    cached.clear_after_write()  # the tree and the geography follow the units' stamp by themselves
    st.session_state.pop("bd_plan", None)
    total = sum(final.units_by_level.values())
    message = f"导入完成：共写入 {total} 个区划单元（{plan.source_name}），已记入审计日志。"
    st.session_state["bd_done"] = (message, final)
    st.rerun()
