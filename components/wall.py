"""The wall screen's (指挥大屏) pieces: its style, the viewport probe, the HTML charts and panels, the map's
names, live event points and alarm highlights.

Everything is sized from the screen: fonts in ``vw`` through ``clamp()`` in one injected style (no CDN,
no font download), the map in pixels from the viewport the browser reports once (``?vw=&vh=``, see
:func:`viewport_probe`). Charts are plain HTML bars: they update in place on every refresh, read the
same at 1080p and 4K, and carry Chinese labels only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import pydeck as pdk
import streamlit as st

from components import maps, offline
from components.palette import CLASS_RGB, hex_color
from domain.risk import RiskClass
from services.wall import WallDay

#: The layout the wall's sizes are computed for: the top band and the gaps, as shares of the screen.
TOP_BAND = 0.085  # of the height: title, clock and the six KPI tiles
PAD = 0.006  # of the width: page padding and the gap between columns
LEGEND_BAND = 0.052  # of the height: the line above the map
COLUMNS = (1.0, 2.5, 1.0)  # left charts · map · right panels
#: The 16 px by which Streamlit pulls the element after a markdown up; the style takes it back under the
#: KPI band and the map's legend, so the columns and the map are that much shorter.
MARKDOWN_PULL = 16

#: The empty venue and event frames the wall's 五色图 is assembled with (it draws areas only).
NO_VENUES = pd.DataFrame(
    {
        c: pd.Series(dtype="int64" if c in ("id", "grid_id") else "float64" if c == "points" else "object")
        for c in ("id", "grid_id", "points", "category", "code", "name", "lon", "lat")
    }
)
NO_EVENTS = pd.DataFrame(
    {
        "grid_id": pd.Series(dtype="int64"),
        "lon": pd.Series(dtype="float64"),
        "lat": pd.Series(dtype="float64"),
    }
)

POINT_RGBA = {
    "overdue": (230, 0, 18, 255),
    "new": (255, 214, 0, 255),
    "open": (0, 200, 255, 230),
    "done": (140, 200, 160, 150),
}
POINT_LABEL = {"new": "1小时内新事件", "open": "在办", "overdue": "超期", "done": "已办结"}
ALARM_RGB = (255, 40, 40)

STYLE = """<style>
header, [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"], footer,
[data-testid="stStatusWidget"], [data-testid="stSpinner"], [data-testid="stElementToolbar"],
[data-testid="stDeckGlJsonChart"] button, .maplibregl-ctrl, .mapboxgl-ctrl {display: none !important;}
/* Never greyed: a refresh updates the panels in place, it does not fade them while it runs. */
[data-stale="true"], [data-stale="true"] * {opacity: 1 !important; transition: none !important;}
.stApp, [data-testid="stAppViewContainer"] {background: #07111f; color: #e8eef7;}
.block-container, [data-testid="stMainBlockContainer"] {padding: 0.6vw !important; max-width: 100% !important;}
[data-testid="stVerticalBlock"] {gap: 0.4vw !important;}
[data-testid="stHorizontalBlock"] {gap: 0.6vw !important;}
[data-testid="stIFrame"], iframe[title="st.iframe"] {display: none;}
html, body {overflow: hidden;}
.stApp * {font-size: clamp(14px, 0.85vw, 72px); line-height: 1.35;}
.bs-top {display: grid; grid-template-columns: 2.2fr repeat(6, 1fr); gap: 0.5vw; height: 8.5vh; align-items: stretch;}
.bs-head {display: flex; flex-direction: column; justify-content: center; overflow: hidden;}
.bs-title {font-size: clamp(20px, 1.55vw, 130px) !important; font-weight: 700; color: #fff; white-space: nowrap;}
.bs-clock {font-size: clamp(14px, 0.95vw, 80px) !important; color: #9cc7ff; white-space: nowrap;}
.bs-tile {background: #0f2238; border: 1px solid #1d3b5e; border-radius: 0.4vw; padding: 0.3vw 0.6vw;
  display: flex; flex-direction: column; justify-content: center; overflow: hidden;}
.bs-tile .k {font-size: clamp(14px, 0.8vw, 68px) !important; color: #8fb3d9; white-space: nowrap;}
.bs-tile .v {font-size: clamp(22px, 1.8vw, 150px) !important; font-weight: 700; color: #fff; white-space: nowrap; line-height: 1.15;}
.bs-col {display: flex; flex-direction: column; gap: 0.4vw; overflow: hidden;}
.bs-panel {background: #0f2238; border: 1px solid #1d3b5e; border-radius: 0.4vw; padding: 0.45vw 0.6vw; overflow: hidden; min-height: 0;}
.bs-panel h3 {font-size: clamp(15px, 0.95vw, 80px) !important; margin: 0 0 0.3vw 0; padding: 0; color: #9cc7ff; font-weight: 700; white-space: nowrap;}
.bs-grow {flex: 1 1 auto;}
.bs-row {display: flex; justify-content: space-between; gap: 0.5vw; padding: 0.12vw 0; border-bottom: 1px solid #16304f; white-space: nowrap;}
.bs-row span:first-child {overflow: hidden;}
.bs-alert {padding: 0.25vw 0; border-bottom: 1px solid #16304f; color: #ffd7d7; white-space: normal; word-break: break-all;}
.bs-alert b {color: #ff6b6b;}
.bs-more {color: #8fb3d9;}
.bs-flow {display: flex; gap: 0.4vw;}
.bs-flow .lv {flex: 1; text-align: center; background: #12304f; border-radius: 0.3vw; padding: 0.3vw 0; white-space: nowrap;}
.bs-flow .lv b {display: block; font-size: clamp(18px, 1.4vw, 120px) !important; color: #fff;}
.bs-bar {display: grid; grid-template-columns: 6.2em 1fr 3em; align-items: center; gap: 0.4vw; padding: 0.1vw 0; white-space: nowrap;}
.bs-bar .track {background: #12304f; border-radius: 0.2vw; height: 0.8em; overflow: hidden;}
.bs-bar .fill {background: linear-gradient(90deg, #2f7fd8, #56c2ff); height: 100%;}
.bs-bar .n {text-align: right; color: #fff; font-weight: 700;}
.bs-hours {display: flex; align-items: flex-end; gap: 0.12vw; height: 11vh; border-bottom: 1px solid #3a5f88; border-left: 1px solid #3a5f88; padding-left: 0.2vw;}
.bs-hours .h {flex: 1; position: relative; height: 100%;}
.bs-hours .y {position: absolute; bottom: 0; left: 0; right: 0; background: rgba(143, 179, 217, 0.28);}
.bs-hours .t {position: absolute; bottom: 0; left: 18%; right: 18%; background: #56c2ff;}
.bs-hours .t.now {background: #ffd600;}
.bs-axis {display: flex; gap: 0.12vw; padding-left: 0.2vw; color: #8fb3d9;}
.bs-axis span {flex: 1; text-align: left; white-space: nowrap; overflow: visible; font-size: clamp(12px, 0.7vw, 60px) !important;}
.bs-note {color: #8fb3d9; white-space: nowrap;}
.bs-key {display: inline-flex; align-items: center; margin-right: 0.8vw; white-space: nowrap;}
.bs-key i {display: inline-block; width: 0.9vw; height: 0.9vw; min-width: 12px; min-height: 12px; border-radius: 0.15vw; margin-right: 0.3vw;}
.bs-key i.dot {border-radius: 50%;}
/* Streamlit pulls the element after a markdown up by 16 px (its container's margin-bottom: -1rem): under
   the KPI band and the map's legend that overlapped the next panel by up to 11 px at 1366×768. */
[data-testid="stMarkdownContainer"]:has(> .bs-top), [data-testid="stMarkdownContainer"]:has(> .bs-maphead)
  {margin-bottom: 0 !important;}
.bs-maphead {display: flex; flex-direction: column; justify-content: center; overflow: hidden; height: 4.9vh; row-gap: 0.2vh;}
.bs-maphead > div {display: flex; align-items: center; white-space: nowrap; overflow: hidden;}
.bs-maphead .name {font-size: clamp(15px, 0.9vw, 76px) !important; color: #9cc7ff; font-weight: 700; margin-right: 0.8vw; line-height: 1.2;}
.bs-maphead .bs-key, .bs-maphead .bs-key * {font-size: clamp(14px, 0.75vw, 64px) !important; line-height: 1.2;}
.bs-maphead .bs-key i {width: 0.75vw; height: 0.75vw;}
</style>"""

#: Makes sure the page knows the screen it is on: when ``?vw=&vh=`` are missing or differ from the
#: window, the page reloads once with them (and again after a resize). Runs in the parent page
#: (a same-origin component frame may not navigate the top page itself).
_PROBE = """<script>
(function () {
  const w = window.parent;
  function check() {
    const u = new URL(w.location.href);
    const W = w.innerWidth, H = w.innerHeight;
    const pw = Number(u.searchParams.get('vw')), ph = Number(u.searchParams.get('vh'));
    if (Math.abs(pw - W) > 8 || Math.abs(ph - H) > 8) {
      u.searchParams.set('vw', W); u.searchParams.set('vh', H);
      const s = w.document.createElement('script');
      s.textContent = 'location.replace(' + JSON.stringify(u.href) + ')';
      w.document.head.appendChild(s);
    }
  }
  check();
  let t = null;
  w.addEventListener('resize', () => { clearTimeout(t); t = setTimeout(check, 800); });
})();
</script>"""


def viewport_probe() -> None:
    """The hidden frame that reports the window size through the URL (see :data:`_PROBE`)."""
    st.iframe(_PROBE, height=1)


def int_param(value: str | None, default: int, lo: int, hi: int) -> int:
    """A number from the wall's URL (``refresh``, ``rotate``, ``vw``, ``vh``), kept within ``lo``–``hi``; the
    default for anything else (text, NaN, ``inf``, ``1e999``): a mistyped screen URL shows the wall."""
    try:
        return max(lo, min(int(float(value or default)), hi))
    except (ValueError, OverflowError):
        return default


@dataclass(frozen=True)
class Screen:
    """The screen in CSS pixels, and the sizes derived from it."""

    width: int
    height: int

    @classmethod
    def from_params(cls, vw: str | None, vh: str | None) -> Screen:
        return cls(int_param(vw, 1920, 640, 7680), int_param(vh, 1080, 360, 4320))

    @property
    def scale(self) -> float:
        """Pixel sizes on the map grow with the screen (1 at 1920 wide)."""
        return self.width / 1920

    @property
    def map_width(self) -> int:
        pad = PAD * self.width
        return int((self.width - 4 * pad) * COLUMNS[1] / sum(COLUMNS))

    @property
    def map_height(self) -> int:
        pad = PAD * self.width
        body = self.height * (1 - TOP_BAND - LEGEND_BAND) - 4 * pad - 0.4 * pad
        return max(200, int(body) - 6 - 2 * MARKDOWN_PULL)

    @property
    def column_height(self) -> int:
        pad = PAD * self.width
        return max(200, int(self.height * (1 - TOP_BAND) - 3.4 * pad) - 6 - MARKDOWN_PULL)

    @property
    def font_px(self) -> float:
        return max(14.0, 0.0085 * self.width)


def esc(value) -> str:
    """A value for the wall's HTML: escaped, on one line. The wall is one HTML block in Markdown, and a
    blank line inside a citizen's title ended the block: what followed was Markdown again (a heading,
    a link, an image fetched from anywhere on the screen). Every run of white space is one space."""
    return html.escape(" ".join(str(value).split()))


def top_band(title: str, clock: str, kpis: Mapping[str, str]) -> str:
    tiles = "".join(
        f"<div class='bs-tile'><div class='k'>{esc(k)}</div><div class='v'>{esc(v)}</div></div>"
        for k, v in kpis.items()
    )
    return (
        "<div class='bs-top' data-testid='bs-kpis'>"
        f"<div class='bs-head' data-testid='bs-title'><div class='bs-title'>{esc(title)}</div>"
        f"<div class='bs-clock'>{esc(clock)}</div></div>{tiles}</div>"
    )


def map_head(level_label: str, counts: Mapping[RiskClass, int], alarms: int) -> str:
    """The line above the map: the five colours with their counts, and the point and alarm keys."""
    classes = "".join(
        f"<span class='bs-key'><i style='background:{hex_color(c)}'></i>{c.label} {int(counts.get(c, 0))}</span>"
        for c in RiskClass
    )
    points = "".join(
        f"<span class='bs-key'><i class='dot' style='background:rgb{POINT_RGBA[k][:3]}'></i>{label}</span>"
        for k, label in POINT_LABEL.items()
        if k != "done"
    )
    alarm = f"<span class='bs-key'><i style='border:0.2vw solid rgb{ALARM_RGB};'></i>预警区域 {alarms}</span>"
    return (
        f"<div class='bs-maphead' data-testid='bs-map'><div><span class='name'>五色图 · {esc(level_label)}</span>"
        f"{classes}</div><div>{points}{alarm}</div></div>"
    )


def _bars(counts: Mapping[str, int], limit: int) -> str:
    shown = list(counts.items())[:limit]
    top = max([n for _, n in shown] + [1])
    return "".join(
        f"<div class='bs-bar'><span>{esc(k)}</span><div class='track'>"
        f"<div class='fill' style='width:{n / top * 100:.1f}%'></div></div><span class='n'>{n:,}</span></div>"
        for k, n in shown
    )


def hours_chart(day: WallDay) -> str:
    """Today's events by hour (up to now) over yesterday's (lighter), with hour labels in Chinese."""
    top = max([*day.hours_today, *day.hours_yesterday, 1])
    cols = []
    for h in range(24):
        t = day.hours_today[h] if h <= day.now_hour else 0
        y = day.hours_yesterday[h]
        now = " now" if h == day.now_hour else ""
        cols.append(
            f"<div class='h' title='{h}时'><div class='y' style='height:{y / top * 100:.1f}%'></div>"
            + (f"<div class='t{now}' style='height:{t / top * 100:.1f}%'></div>" if h <= day.now_hour else "")
            + "</div>"
        )
    axis = "".join(f"<span>{h}时</span>" if h % 4 == 0 else "<span></span>" for h in range(24))
    total = sum(day.hours_today[: day.now_hour + 1])
    return (
        "<div class='bs-panel' data-testid='bs-trend'><h3>今日事件 · 按小时（件）</h3>"
        f"<div class='bs-note'>今日 {total:,} 件 · 昨日全天 {sum(day.hours_yesterday):,} 件 · 每格最高 {top} 件</div>"
        f"<div class='bs-hours'>{''.join(cols)}</div><div class='bs-axis'>{axis}</div>"
        "<div class='bs-note'><span class='bs-key'><i style='background:#56c2ff'></i>今日</span>"
        "<span class='bs-key'><i style='background:rgba(143,179,217,0.5)'></i>昨日同时段</span>"
        "<span class='bs-key'><i style='background:#ffd600'></i>当前小时</span></div></div>"
    )


def left_column(day: WallDay, ticker: pd.DataFrame, screen: Screen) -> str:
    cats = _bars(day.categories, 8)
    srcs = _bars({k: n for k, n in day.sources.items() if n} or day.sources, 6)
    rows = (
        "".join(
            f"<div class='bs-row'><span>{r.updated_at:%H:%M} {esc(r.title)}</span><span>{esc(r.status_label)}</span></div>"
            for r in ticker.head(5).itertuples()
        )
        or "<div class='bs-row'>暂无事件</div>"
    )
    return (
        f"<div class='bs-col' style='height:{screen.column_height}px'>"
        + hours_chart(day)
        + f"<div class='bs-panel' data-testid='bs-categories'><h3>今日事件 · 按类别（件）</h3>{cats}</div>"
        + f"<div class='bs-panel' data-testid='bs-sources'><h3>今日事件 · 按来源（件）</h3>{srcs}</div>"
        + f"<div class='bs-panel bs-grow' data-testid='bs-ticker'><h3>实时事件</h3>{rows}</div>"
        + "</div>"
    )


def fit_alerts(messages: Sequence[str], screen: Screen, budget_px: float) -> int:
    """How many alerts, each shown whole, fit ``budget_px`` of the right column's height."""
    width = screen.width * (1 - 4 * PAD) * COLUMNS[2] / sum(COLUMNS) - 2 * 0.6 * screen.width / 100
    per_line = max(8, int(width / screen.font_px) - 1)
    line = screen.font_px * 1.35
    used, n = 0.0, 0
    for m in messages:
        need = math.ceil(len(m) / per_line) * line + 0.5 * screen.width / 100 + 1
        if used + need > budget_px:
            break
        used, n = used + need, n + 1
    return n


def right_column(
    flow: Mapping[str, int],
    alerts: Sequence[tuple[str, str, int]],
    ranking: Sequence[tuple[str, str, str]],
    level_label: str,
    screen: Screen,
    linkage: str = "五级联动",
) -> str:
    levels = "".join(f"<div class='lv'>{esc(k)}<b>{v:,}</b></div>" for k, v in flow.items())
    rank = "".join(
        # a place in the ranking only for an area with a score: one without data is listed, not ranked
        f"<div class='bs-row'><span>{f'{i}. ' if value != RiskClass.NO_DATA.label else ''}{esc(name)}</span>"
        f"<span style='color:{colour}'>{esc(value)}</span></div>"
        for i, (name, colour, value) in enumerate(ranking, start=1)
    )
    line = screen.font_px * 1.35
    fixed = (
        (2.2 + 1.4) * line + 3 * screen.font_px + (len(ranking) + 1.5) * line * 1.1 + 5 * PAD * screen.width
    )
    budget = screen.column_height - fixed - 2.5 * line
    messages = [m for _k, m, _u in alerts]
    n = fit_alerts(messages, screen, budget)
    items = "".join(f"<div class='bs-alert'>{_alert_html(m)}</div>" for m in messages[:n])
    if not alerts:
        items = "<div class='bs-row'>当前无预警</div>"
    elif n < len(alerts):
        items += f"<div class='bs-more'>另有 {len(alerts) - n} 条预警，详见事件页「预警」</div>"
    return (
        f"<div class='bs-col' style='height:{screen.column_height}px'>"
        f"<div class='bs-panel' data-testid='bs-flow'><h3>{esc(linkage)} · 在办事件所在层级</h3><div class='bs-flow'>{levels}</div></div>"
        f"<div class='bs-panel bs-grow' data-testid='bs-alerts'><h3>预警 · {len(alerts)} 条</h3>{items}</div>"
        f"<div class='bs-panel' data-testid='bs-rank'><h3>风险排名 · {esc(level_label)}</h3>{rank}</div>"
        "</div>"
    )


def _alert_html(message: str) -> str:
    """An alert in full: its 【kind】 in bold red, the rest as written."""
    if message.startswith("【") and "】" in message:
        head, rest = message.split("】", 1)
        return f"<b>{esc(head)}】</b>{esc(rest)}"
    return esc(message)


def ranking_rows(shown: pd.DataFrame, limit: int = 6) -> list[tuple[str, str, str]]:
    """(name, colour, score or 暂无数据) of the riskiest shown areas, 暂无数据 last."""
    out = []
    for name, cls, score in zip(shown["name"], shown["risk_class"], shown["score"], strict=True):
        rc = RiskClass(cls)
        out.append(
            (str(name), hex_color(CLASS_RGB[rc]), rc.label if rc is RiskClass.NO_DATA else f"{score:.0f}")
        )
    return out[:limit]


# ---------------------------------------------------------------- map layers


def names_layer(shown: gpd.GeoDataFrame, screen: Screen) -> pdk.Layer:
    """The shown areas' names, white on a dark outline, sized for the screen."""
    lon, lat = maps._label_points(shown.geometry)
    data = [
        {"p": [x, y], "t": str(n)}
        for x, y, n in zip(lon.tolist(), lat.tolist(), shown["name"].tolist(), strict=True)
    ]
    return pdk.Layer(
        "TextLayer",
        data=data,
        id="wall_names",
        get_position="p",
        get_text="t",
        get_size=round(18 * screen.scale, 1),
        get_color=[255, 255, 255, 255],
        character_set="'auto'",
        font_weight=700,
        font_settings={"sdf": True},
        outline_width=4,
        outline_color=[7, 17, 31, 255],
        get_text_anchor="'middle'",
        get_alignment_baseline="'center'",
        pickable=False,
    )


def alarm_layer(units: gpd.GeoDataFrame, unit_ids: Sequence[int], screen: Screen) -> pdk.Layer | None:
    """The areas with a 预警 today, outlined thick in red over a red veil."""
    ids = [u for u in dict.fromkeys(unit_ids) if u in units.index]
    if not ids:
        return None
    geoms = maps.display_geojson(units.loc[ids].geometry.to_numpy(), budget_bytes=600_000)
    features = maps.RawJson(
        '{"features":['
        + ",".join(f'{{"geometry":{g},"properties":{{}},"type":"Feature"}}' for g in geoms)
        + '],"type":"FeatureCollection"}'
    )
    return pdk.Layer(
        "GeoJsonLayer",
        data=features,
        id="wall_alarms",
        pickable=False,
        stroked=True,
        filled=True,
        get_fill_color=[*ALARM_RGB, 60],
        get_line_color=[*ALARM_RGB, 255],
        line_width_units="'pixels'",
        get_line_width=round(3.5 * screen.scale, 1),
    )


def points_layer(points: pd.DataFrame, screen: Screen) -> pdk.Layer | None:
    """Today's live events as dots: overdue red, new yellow and larger, open cyan, done pale."""
    placed = points[points["lon"].notna() & points["lat"].notna()] if len(points) else points
    if placed.empty:
        return None
    lon, lat = offline.to_display(placed["lon"].to_numpy(dtype=float), placed["lat"].to_numpy(dtype=float))
    size = {"overdue": 5.5, "new": 7.0, "open": 4.5, "done": 3.5}
    order = {"done": 0, "open": 1, "new": 2, "overdue": 3}  # the urgent drawn last, on top
    points = sorted(
        zip(lon.tolist(), lat.tolist(), placed["kind"].tolist(), strict=True), key=lambda t: order[t[2]]
    )
    data = [
        {
            "p": [round(float(x), 5), round(float(y), 5)],
            "c": list(POINT_RGBA[k]),
            "r": round(size[k] * screen.scale, 1),
        }
        for x, y, k in points
    ]
    return pdk.Layer(
        "ScatterplotLayer",
        data=data,
        id="wall_events",
        get_position="p",
        get_fill_color="c",
        get_radius="r",
        radius_units="'pixels'",
        stroked=True,
        get_line_color=[7, 17, 31, 220],
        line_width_units="'pixels'",
        get_line_width=1,
        pickable=False,
    )
