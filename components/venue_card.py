"""The venue card (场所卡片) of the inspector's phone and the township page, and the day's route map.

Everything shown comes from :class:`services.inspections.VenueHistory`, whose personal data the
service has already masked for the viewer; this module only lays it out, narrow-first (one column).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from datetime import date, timedelta

import pandas as pd
import pydeck as pdk
import streamlit as st

from components import maps
from components.offline import to_display
from components.palette import NO_DATA_RGB, SAFETY_CODE_RGB, TEXT_ON
from components.personal_data import reveal_control
from components.text import md_text
from domain.access import CurrentUser
from domain.vocabulary import HazardSeverity, HazardStatus, InspectionResult, SafetyCode, VenueCategory
from services.inspections import VenueHistory

#: The route line and start point (kept as before; components/palette.py should own it: reported).
ROUTE_RGB = (37, 99, 235)


def code_badge(code: SafetyCode | str, text: str | None = None) -> str:
    """An inline HTML badge of a 平安码 in its colour (escaped)."""
    code = SafetyCode(code)
    r, g, b = SAFETY_CODE_RGB[code]
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


def render_venue_card(
    h: VenueHistory, *, history_rows: int = 10, show_photos: bool = True, viewer: CurrentUser | None = None
) -> None:
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
            pd.DataFrame(
                {
                    # what to act on first: a phone shows three or four columns without a sideways swipe
                    "等级": open_hz["severity"].map(lambda s: HazardSeverity(s).label),
                    "隐患": open_hz["description"],
                    "逾期天数": open_hz["overdue_days"],
                    "整改期限": open_hz["deadline"].map(_date),
                    "发现": open_hz["found_on"].map(_date),
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with st.expander(f"检查记录（最近 {min(history_rows, len(h.inspections))} 次）"):
        if h.inspections.empty:
            st.caption("暂无检查记录")
        else:
            ins = h.inspections.head(history_rows)
            st.dataframe(
                pd.DataFrame(
                    {
                        "时间": ins["inspected_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M")),
                        "检查员": ins["inspector"],
                        "结果": ins["result"].map(lambda r: InspectionResult(r).label),
                        "不合格项": ins["failed_items"],
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        done = h.hazards[h.hazards["status"] == HazardStatus.RECTIFIED.value]
        if not done.empty:
            st.caption(
                "已整改隐患："
                + "；".join(
                    f"{md_text(d)}（{_date(r)}整改）"
                    for d, r in zip(done["description"], done["rectified_on"], strict=True)
                )
            )
    if show_photos and h.photos:
        st.markdown("**现场照片**")
        cols = st.columns(3)
        for k, (_aid, _hid, _mime, data) in enumerate(h.photos[:6]):
            cols[k % 3].image(data, width="stretch")


# ---------------------------------------------------------------------------------------------
# The day's lists (/my_day)
# ---------------------------------------------------------------------------------------------


def stop_list(stops: pd.DataFrame, open_venue: Callable[[int], None]) -> None:
    """The venues to visit in route order, each a card with its number, code, reason and 查看 / 检查."""
    for row in stops.itertuples(index=False):
        with st.container(border=True, key=f"md_stop_{row.venue_id}"):
            st.markdown(
                f"**{int(row.stop)}. {md_text(row.name, html=True)}** {code_badge(row.code)}",
                unsafe_allow_html=True,
            )
            st.caption(f"{md_text(row.reason)}　·　{md_text(row.address)}")
            st.button(
                "查看 / 检查",
                key=f"md_open_{row.venue_id}",
                on_click=open_venue,
                args=(row.venue_id,),
                width="stretch",
            )


def done_list(done: pd.DataFrame, today: date, open_venue: Callable[[int], None]) -> None:
    """The venues inspected that day (latest visit of each), with the result and the next due date."""
    for row in done.drop_duplicates("venue_id").itertuples(index=False):
        with st.container(border=True, key=f"md_done_{row.venue_id}"):
            st.markdown(
                f"✓ **{md_text(row.name, html=True)}** {code_badge(row.code)} 已检查（{row.inspected_at:%H:%M}，"
                f"{InspectionResult(row.result).label}）",
                unsafe_allow_html=True,
            )
            due = row.next_due_on
            when = "明天" if due == today + timedelta(days=1) else (f"{due:%Y-%m-%d}" if due else "—")
            st.caption(f"下次应检：{when}")
            st.button(
                "查看",
                key=f"md_open_done_{row.venue_id}",
                on_click=open_venue,
                args=(row.venue_id,),
                width="stretch",
            )


# ---------------------------------------------------------------------------------------------
# The route map
# ---------------------------------------------------------------------------------------------


def _pixels(lon: float, lat: float, zoom: float) -> tuple[float, float]:
    """Web-Mercator pixel position at ``zoom`` (deck.gl's 512-pixel world), to see which labels collide."""
    world = 512 * 2**zoom
    y = math.log(math.tan(math.pi / 4 + math.radians(max(min(lat, 85.0), -85.0)) / 2))
    return (lon + 180) / 360 * world, (1 - y / math.pi) / 2 * world


def spread_labels(points: Sequence[tuple[float, float]], *, min_px: float = 24) -> list[tuple[float, float]]:
    """Pixel offsets that keep stop numbers apart: a label closer than ``min_px`` to one already placed
    moves sideways, alternately right and left, until it is clear (stops at one address stay legible)."""
    placed: list[tuple[float, float]] = []
    offsets: list[tuple[float, float]] = []
    for x, y in points:
        dx = 0.0
        for k in range(1, 40):
            if all(math.hypot(x + dx - px, y - py) >= min_px for px, py in placed):
                break
            dx = min_px * ((k + 1) // 2) * (1 if k % 2 else -1)
        placed.append((x + dx, y))
        offsets.append((dx, 0.0))
    return offsets


def route_deck(
    stops: pd.DataFrame,
    start: tuple[float, float] | None,
    *,
    done: pd.DataFrame | None = None,
    height: int = 300,
) -> pdk.Deck:
    """A small offline map of the day over the village and grid outlines: the start point, the route
    line, each stop's spot and its number on a pin in its 平安码 colour (spread apart where stops share
    an address), and the venues already inspected that day (grey).

    ``stops``: ``stop``, ``name``, ``code``, ``lon``, ``lat`` in route order; ``done`` (optional):
    venues already inspected that day.
    """
    points: list[tuple[float, float]] = [start] if start is not None else []
    points += [(float(x), float(y)) for x, y in zip(stops["lon"], stops["lat"], strict=True)]
    if done is not None and not done.empty:
        points += [(float(x), float(y)) for x, y in zip(done["lon"], done["lat"], strict=True)]
    if points:
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        pad = 0.002
        bounds: Sequence[float] = (min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)
    else:
        bounds = (118.0, 28.2, 119.4, 29.5)
    zoom = maps.fit_view(bounds, width=390, height=height).zoom
    path: list[list[float]] = []
    if start is not None:
        sx, sy = to_display(*start)
        path.append([round(float(sx), 6), round(float(sy), 6)])
    records = []
    for row in stops.itertuples(index=False):
        x, y = to_display(float(row.lon), float(row.lat))
        code = SafetyCode(row.code)
        records.append(
            {
                "p": [round(float(x), 6), round(float(y), 6)],
                "c": [*SAFETY_CODE_RGB[code], 255],
                "f": [*_rgb_of(TEXT_ON[code]), 255],
                "t": str(int(row.stop)),
                "name": str(row.name),
                "class_label": code.label,
                "score": f"第 {int(row.stop)} 站",
            }
        )
        path.append(records[-1]["p"])
    offsets = spread_labels([_pixels(r["p"][0], r["p"][1], zoom) for r in records])
    for record, (dx, dy) in zip(records, offsets, strict=True):
        record["o"] = [dx, dy - 10]  # the pin stands just above its spot
    finished = []
    if done is not None and not done.empty:
        for row in done.drop_duplicates("venue_id").itertuples(index=False):
            x, y = to_display(float(row.lon), float(row.lat))
            finished.append(
                {
                    "p": [round(float(x), 6), round(float(y), 6)],
                    "name": str(row.name),
                    "class_label": "已检查",
                    "score": SafetyCode(row.code).label,
                }
            )
    layers: list[pdk.Layer] = []
    if len(path) > 1:
        layers.append(
            pdk.Layer(
                "PathLayer",
                data=[{"path": path}],
                id="route",
                get_path="path",
                get_color=[*ROUTE_RGB, 200],
                width_units="'pixels'",
                get_width=3,
            )
        )
    if finished:
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                data=finished,
                id="done",
                get_position="p",
                get_fill_color=[*NO_DATA_RGB, 200],
                get_radius=8,
                radius_units="'pixels'",
                pickable=True,
                stroked=True,
                get_line_color=[255, 255, 255],
                line_width_units="'pixels'",
                get_line_width=1,
            )
        )
    if start is not None:
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                data=[{"p": path[0], "name": "出发点", "class_label": "", "score": ""}],
                id="start",
                get_position="p",
                get_fill_color=[*ROUTE_RGB, 255],
                get_radius=7,
                radius_units="'pixels'",
                pickable=True,
            )
        )
    layers.append(
        pdk.Layer(
            "ScatterplotLayer",
            data=records,
            id="stops",
            get_position="p",
            get_fill_color="c",
            get_radius=4,
            radius_units="'pixels'",
            pickable=True,
            stroked=True,
            get_line_color=[255, 255, 255, 255],
            line_width_units="'pixels'",
            get_line_width=1.5,
        )
    )
    layers.append(
        pdk.Layer(
            "TextLayer",
            data=records,
            id="stop_numbers",
            get_position="p",
            get_text="t",
            get_size=15,
            get_color="f",
            get_pixel_offset="o",
            get_text_anchor="'middle'",
            get_alignment_baseline="'bottom'",
            font_weight=700,
            background=True,
            get_background_color="c",
            background_padding=[6, 2, 6, 2],
            get_border_color=[255, 255, 255, 255],
            get_border_width=1.5,
            pickable=True,
        )
    )
    return maps.risk_deck(layers, bounds, width=390, height=height)


def _rgb_of(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
