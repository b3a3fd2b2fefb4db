"""The venue card (场所卡片) of the inspector's phone and the township page, and the day's route map.

Everything shown comes from :class:`services.inspections.VenueHistory`, whose personal data the
service has already masked for the viewer; this module only lays it out, narrow-first (one column).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import pydeck as pdk
import streamlit as st

from components import maps
from components.offline import to_display
from components.personal_data import reveal_control
from components.text import md_text
from domain.access import CurrentUser
from domain.vocabulary import HazardSeverity, HazardStatus, InspectionResult, SafetyCode, VenueCategory
from services.inspections import VenueHistory

TEXT_ON = {SafetyCode.RED: "#ffffff", SafetyCode.YELLOW: "#1f2328", SafetyCode.GREEN: "#ffffff"}


def code_badge(code: SafetyCode | str, text: str | None = None) -> str:
    """An inline HTML badge of a 平安码 in its colour (escaped)."""
    code = SafetyCode(code)
    r, g, b = maps.SAFETY_CODE_RGB[code]
    label = html.escape(text or code.label)
    return (
        f"<span data-testid='code-badge' data-code='{code.value}' style='display:inline-block;padding:1px 8px;"
        f"border-radius:4px;background:rgb({r},{g},{b});color:{TEXT_ON[code]};font-weight:600'>{label}</span>"
    )


def _date(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return "—"
    try:
        return value.strftime("%Y-%m-%d")
    except AttributeError:
        return str(value)


def render_venue_card(h: VenueHistory, *, history_rows: int = 10, show_photos: bool = True,
                      viewer: CurrentUser | None = None) -> None:
    """The card: name and code, category, address, grid, responsible person (phone masked by the service;
    a ``viewer`` with the permission may reveal it with a reason), last and next inspection, the reason
    of the code, open hazards, inspection history and photos."""
    v = h.venue
    code = SafetyCode(v["safety_code"])
    st.markdown(
        f"<div data-testid='venue-card' data-venue='{int(v['id'])}' style='font-size:1.05rem'>"
        f"<b>{md_text(v['name'], html=True)}</b> {code_badge(code)}</div>",
        unsafe_allow_html=True,
    )
    overdue = v.get("overdue_days") or 0
    due = _date(v.get("next_due_on")) + (f"（已逾期 {overdue} 天）" if overdue else "")
    lines = [
        ("类别", VenueCategory(v["category"]).label),
        ("地址", v["address"]),
        ("所属网格", v.get("grid_name") or "—"),
        ("负责人", f"{v['responsible_person']}  {v.get('responsible_phone') or ''}".strip()),
        ("最近检查", _date(v.get("last_inspected_on"))),
        ("下次应检", due),
    ]
    st.markdown("  \n".join(f"**{k}**：{md_text(val)}" for k, val in lines))
    reveal_control(viewer, "venue", int(v["id"]))
    if not h.code_changes.empty:
        latest = h.code_changes.iloc[0]
        st.caption(f"赋码依据（{_date(latest['changed_at'])}）：{md_text(latest['reason'])}")

    open_hz = h.open_hazards
    st.markdown(f"**未整改隐患**（{len(open_hz)}）")
    if open_hz.empty:
        st.caption("无")
    else:
        st.dataframe(
            pd.DataFrame({
                "等级": open_hz["severity"].map(lambda s: HazardSeverity(s).label),
                "隐患": open_hz["description"],
                "发现": open_hz["found_on"].map(_date),
                "整改期限": open_hz["deadline"].map(_date),
                "逾期天数": open_hz["overdue_days"],
            }),
            hide_index=True, width="stretch",
        )
    with st.expander(f"检查记录（最近 {min(history_rows, len(h.inspections))} 次）"):
        if h.inspections.empty:
            st.caption("暂无检查记录")
        else:
            ins = h.inspections.head(history_rows)
            st.dataframe(
                pd.DataFrame({
                    "时间": ins["inspected_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
                    "检查员": ins["inspector"],
                    "结果": ins["result"].map(lambda r: InspectionResult(r).label),
                    "不合格项": ins["failed_items"],
                }),
                hide_index=True, width="stretch",
            )
        done = h.hazards[h.hazards["status"] == HazardStatus.RECTIFIED.value]
        if not done.empty:
            st.caption("已整改隐患：" + "；".join(
                f"{md_text(d)}（{_date(r)}整改）" for d, r in zip(done["description"], done["rectified_on"], strict=True)
            ))
    if show_photos and h.photos:
        st.markdown("**现场照片**")
        cols = st.columns(3)
        for k, (_aid, _hid, _mime, data) in enumerate(h.photos[:6]):
            cols[k % 3].image(data, width="stretch")


# ---------------------------------------------------------------------------------------------
# The route map
# ---------------------------------------------------------------------------------------------


def route_deck(stops: pd.DataFrame, start: tuple[float, float] | None, *, done: pd.DataFrame | None = None,
               height: int = 300) -> pdk.Deck:
    """A small offline map of the day: the start point, the route line and numbered stops by colour.

    ``stops``: ``stop``, ``name``, ``code``, ``lon``, ``lat`` in route order; ``done`` (optional):
    venues already inspected that day (grey with a tick).
    """
    points: list[tuple[float, float]] = []
    path: list[list[float]] = []
    if start is not None:
        sx, sy = to_display(*start)
        path.append([round(float(sx), 6), round(float(sy), 6)])
        points.append(start)
    records = []
    for row in stops.itertuples(index=False):
        x, y = to_display(float(row.lon), float(row.lat))
        code = SafetyCode(row.code)
        records.append({"p": [round(float(x), 6), round(float(y), 6)], "c": [*maps.SAFETY_CODE_RGB[code], 240],
                        "t": str(int(row.stop)), "name": str(row.name), "class_label": code.label,
                        "score": f"第 {int(row.stop)} 站"})
        path.append(records[-1]["p"])
        points.append((float(row.lon), float(row.lat)))
    finished = []
    if done is not None and not done.empty:
        for row in done.drop_duplicates("venue_id").itertuples(index=False):
            x, y = to_display(float(row.lon), float(row.lat))
            finished.append({"p": [round(float(x), 6), round(float(y), 6)], "name": str(row.name),
                             "class_label": "已检查", "score": SafetyCode(row.code).label})
            points.append((float(row.lon), float(row.lat)))
    layers: list[pdk.Layer] = []
    if len(path) > 1:
        layers.append(pdk.Layer("PathLayer", data=[{"path": path}], id="route", get_path="path",
                                get_color=[37, 99, 235, 200], width_units="'pixels'", get_width=3))
    if finished:
        layers.append(pdk.Layer("ScatterplotLayer", data=finished, id="done", get_position="p",
                                get_fill_color=[150, 150, 150, 200], get_radius=9, radius_units="'pixels'",
                                pickable=True, stroked=True, get_line_color=[255, 255, 255], line_width_units="'pixels'",
                                get_line_width=1))
    if start is not None:
        layers.append(pdk.Layer("ScatterplotLayer", data=[{"p": path[0], "name": "出发点", "class_label": "",
                                                            "score": ""}], id="start", get_position="p",
                                get_fill_color=[37, 99, 235, 255], get_radius=7, radius_units="'pixels'", pickable=True))
    layers.append(pdk.Layer("ScatterplotLayer", data=records, id="stops", get_position="p", get_fill_color="c",
                            get_radius=12, radius_units="'pixels'", pickable=True, stroked=True,
                            get_line_color=[255, 255, 255, 255], line_width_units="'pixels'", get_line_width=2))
    layers.append(pdk.Layer("TextLayer", data=records, id="stop_numbers", get_position="p", get_text="t",
                            get_size=14, get_color=[20, 20, 20, 255], get_text_anchor="'middle'",
                            get_alignment_baseline="'center'", font_weight=700))
    if points:
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        pad = 0.002
        bounds: Sequence[float] = (min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)
    else:
        bounds = (118.0, 28.2, 119.4, 29.5)
    return maps.risk_deck(layers, bounds, width=390, height=height)
