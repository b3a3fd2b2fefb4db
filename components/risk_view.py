"""One risk map view (an area, a level, some layers) assembled from cached frames: layers, legend, side panel.

The page and the benchmark both call :func:`assemble`, so the figure measured is the page's own work.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from components import maps, offline
from components.palette import CLASS_RGB, FORECAST_RAMP, NO_DATA_RGB, TEXT_ON_CLASS, hex_color
from domain.hierarchy import Tree
from domain.risk import Contribution, RiskClass, Thresholds, class_band, rank_among, verdict, whole_points
from domain.vocabulary import AdminLevel
from services.risk import class_counts
from services.risk_map import in_grids, riskiest_venues, venue_clusters

# Individual venues are drawn when the area is a township or below; above it, one cluster per grid.
POINT_LEVELS = {AdminLevel.TOWNSHIP.value, AdminLevel.VILLAGE.value, AdminLevel.GRID.value}
LAYERS = ["区域风险", "场所平安码", "事件热力"]
#: The toggle that recolours the areas by forecast hazard density (only with a trained model).
FORECAST_LAYER = "隐患预测"
_CLASS_LABEL = {c.value: c.label for c in RiskClass}
_CLASS_RGB = {c.value: CLASS_RGB[c] for c in RiskClass}

_lock = threading.Lock()
_shapes: dict[int, tuple[weakref.ref, maps.ShapeCache]] = {}


def shapes_of(units: gpd.GeoDataFrame) -> maps.ShapeCache:
    """The display shapes of every unit, made on first use and kept while ``units`` lives.

    ``units`` is the per-process geography frame (``components.store.geography``), never changed in
    place: a new boundary import gives a new frame and so new shapes. Kept per display CRS too.
    """
    key = id(units)
    with _lock:
        hit = _shapes.get(key)
    if hit and hit[0]() is units and hit[1].crs == offline.tile_crs():
        return hit[1]
    made = maps.ShapeCache(units.geometry)
    with _lock:
        _shapes[key] = (weakref.ref(units, lambda _ref, k=key: _shapes.pop(k, None)), made)
    return made


@dataclass
class RiskView:
    shown: gpd.GeoDataFrame  # the areas drawn, with score, class, label, colour
    counts: dict[RiskClass, int]  # the legend
    grid_ids: list[int]
    venues: pd.DataFrame  # venues inside the area
    layers: list[pdk.Layer]
    top_venues: pd.DataFrame
    forecast_bins: list[tuple[float, float, tuple[int, int, int]]] | None = None  # legend of 隐患预测


def forecast_bins(values: pd.Series, classes: int = len(FORECAST_RAMP)) -> list[tuple[float, float, tuple]]:
    """Equal-count classes of the shown areas' densities (at most ``classes``): (low, high, colour)."""
    v = values.dropna().to_numpy(dtype=float)
    if not len(v):
        return []
    edges = np.unique(np.quantile(v, np.linspace(0, 1, classes + 1)))
    if len(edges) == 1:
        return [(float(edges[0]), float(edges[0]), FORECAST_RAMP[-1])]
    ramp = FORECAST_RAMP[-(len(edges) - 1) :] if len(edges) - 1 < len(FORECAST_RAMP) else FORECAST_RAMP
    return [(float(lo), float(hi), ramp[k]) for k, (lo, hi) in enumerate(pairwise(edges))]


def forecast_shading(shown: gpd.GeoDataFrame, density: pd.DataFrame) -> tuple[gpd.GeoDataFrame, list]:
    """The shown areas coloured by expected hazards per 100 venues (grey: no venue scored), the tooltip
    saying the figure; and the legend's classes."""
    per_100 = density["per_100"].reindex(shown.index)
    bins = forecast_bins(per_100)
    highs = np.array([hi for _, hi, _ in bins])

    def colour(x: float) -> tuple[int, int, int]:
        if pd.isna(x) or not bins:
            return NO_DATA_RGB
        return bins[min(int(np.searchsorted(highs, x, side="left")), len(bins) - 1)][2]

    out = shown.copy()
    out["rgb"] = [colour(x) for x in per_100]
    venues = density["venues"].reindex(shown.index).fillna(0)
    out["class_label"] = [
        "无场所预测" if pd.isna(x) else f"每百场所预测隐患 {x:.1f}（{int(n)} 个场所）"
        for x, n in zip(per_100, venues, strict=True)
    ]
    out["score"] = per_100.round(1)
    return out, bins


def forecast_legend_html(bins: list[tuple[float, float, tuple]], swatch_px: int = 14) -> str:
    """The density classes with their ranges, and grey for areas without a scored venue."""
    items = [(rgb, f"{lo:.1f}–{hi:.1f}") for lo, hi, rgb in bins] + [(NO_DATA_RGB, "无场所")]
    return "每百场所预测隐患：" + " ".join(
        f"<span class='legend-item' style='display:inline-block;margin-right:14px'>"
        f"<span style='display:inline-block;width:{swatch_px}px;height:{swatch_px}px;"
        f"background:{hex_color(rgb)};vertical-align:middle;margin-right:4px;border-radius:2px'></span>"
        f"{text}</span>"
        for rgb, text in items
    )


def forecast_toggle(where: DeltaGenerator, model: tuple[int, datetime] | None) -> bool:
    """「隐患预测」 in ``where`` (a column of the controls' row): on only with a trained model; without one
    it is disabled and says so beneath."""
    on = where.toggle(
        FORECAST_LAYER,
        key="rm_forecast",
        disabled=model is None,
        help=(
            "按隐患预测模型给区域着色：每百个场所中预计检查会发现隐患的场所数。"
            if model is not None
            else "尚未训练隐患预测模型：定时任务每周日 02:30 训练（需约 75 天检查记录），训练后可用。"
        ),
    )
    if model is None:
        where.caption("尚未训练隐患预测模型")
    return bool(on) and model is not None


def forecast_legend(bins: list[tuple[float, float, tuple]], model: tuple[int, datetime]) -> None:
    """The density legend and what the colour means (the model's expectation, per 100 venues)."""
    st.markdown(
        f"<div data-testid='forecast-legend'>{forecast_legend_html(bins)}</div>", unsafe_allow_html=True
    )
    st.caption(
        f"区域颜色为隐患预测（模型 v{model[0]}，{model[1]:%Y-%m-%d} 训练）：若每个场所在 30 天内检查一次，"
        "每百个场所预计发现隐患的场所数（模型期望，非实测）；按场所数而非面积计，比较的是一次检查的收获。"
    )


def assemble(
    units: gpd.GeoDataFrame,
    tree: Tree,
    risk: pd.DataFrame,
    all_venues: pd.DataFrame,
    events: pd.DataFrame,
    area_id: int,
    level: AdminLevel,
    layers_on: list[str],
    *,
    forecast: pd.DataFrame | None = None,
) -> RiskView:
    """The view of ``area_id`` showing its units at ``level``, from frames the caller has cached.

    ``forecast`` (:func:`services.forecast.area_density` of the shown units): the areas are coloured by
    forecast hazard density instead of their risk class (drawn even with 区域风险 off)."""
    shown_ids = tree.descendants(area_id, level)
    shown = units.loc[shown_ids, ["code", "name", "level", "geometry"]]
    shown = shown.join(risk[["score", "risk_class"]])
    shown["class_label"] = shown["risk_class"].map(_CLASS_LABEL)
    shown["rgb"] = shown["risk_class"].map(_CLASS_RGB)
    shown["score"] = shown["score"].round(1)
    # 暂无数据: the tooltip says "—", not a score of 0 that reads as "safe".
    shown.loc[shown["risk_class"] == RiskClass.NO_DATA.value, "score"] = float("nan")
    grid_ids = tree.grids_under(area_id)
    venues = in_grids(all_venues, grid_ids)
    area_level = units.at[area_id, "level"]
    layers: list[pdk.Layer] = []
    bins = None
    if forecast is not None:
        drawn, bins = forecast_shading(shown, forecast)
        layers.append(maps.area_layer(drawn.reset_index(), geometries=shapes_of(units).geojson(shown_ids)))
    elif "区域风险" in layers_on:
        # Shapes converted once per process; the view only adds each area's colour and figures.
        layers.append(maps.area_layer(shown.reset_index(), geometries=shapes_of(units).geojson(shown_ids)))
    if "场所平安码" in layers_on:
        if area_level in POINT_LEVELS:
            layers.append(maps.venue_points_layer(venues))
        else:
            centroids = units.loc[grid_ids, ["centroid_lon", "centroid_lat"]]
            layers.append(maps.venue_cluster_layer(venue_clusters(venues, centroids)))
    if "事件热力" in layers_on:
        # event_heat_layer bins many points server-side: only aggregates reach the browser.
        layers.append(maps.event_heat_layer(in_grids(events, grid_ids).assign(weight=1)))
    return RiskView(shown, class_counts(shown), grid_ids, venues, layers, riskiest_venues(venues), bins)


def _table(rows: pd.DataFrame, columns: dict[str, str], index: str) -> None:
    st.table(rows.rename(columns=columns).set_index(index)[[c for c in columns.values() if c != index]])


def sibling_rank(tree: Tree, risk: pd.DataFrame, unit_id: int) -> tuple[int, int] | None:
    """The area's rank among its siblings with data (itself included); None for a top unit or no data."""
    parent = tree.parent(unit_id)
    if parent is None or risk.at[unit_id, "risk_class"] == RiskClass.NO_DATA.value:
        return None
    siblings = [u for u in tree.children(parent) if u in risk.index]
    scores = {
        u: float(risk.at[u, "score"]) for u in siblings if risk.at[u, "risk_class"] != RiskClass.NO_DATA.value
    }
    return rank_among(scores, unit_id)


def verdict_panel(
    name: str,
    cls: RiskClass,
    value: float,
    parts: list[Contribution],
    rank: tuple[int, int] | None,
    thresholds: Thresholds,
) -> None:
    """The class as a full-width badge (never cut), one Chinese sentence, and the thresholds of all bands."""
    st.markdown(
        f"<div data-testid='risk-verdict' style='display:inline-block;padding:6px 14px;border-radius:6px;"
        f"background:{hex_color(CLASS_RGB[cls])};color:{TEXT_ON_CLASS[cls]};font-size:1.4rem;"
        f"font-weight:600;white-space:nowrap'>{cls.label}</div>",
        unsafe_allow_html=True,
    )
    st.markdown(verdict(name, cls, value, parts, rank, thresholds).replace("*", "＊"))
    bands = "；".join(f"{c.label} {class_band(c, thresholds)}" for c in RiskClass)
    st.caption(f"分级阈值（分/万人）：{bands}。")


def by_risk(shown: pd.DataFrame) -> pd.DataFrame:
    """The shown areas by score, highest first, 暂无数据 last."""
    no_data = shown["risk_class"] == RiskClass.NO_DATA.value
    return pd.concat(
        [shown[~no_data].sort_values("score", ascending=False), shown[no_data].sort_values("code")]
    )


def ranking_table(shown: pd.DataFrame) -> pd.DataFrame:
    """The ranking in Chinese, 暂无数据 last (score "—", not 0)."""
    ordered = by_risk(shown)
    return pd.DataFrame(
        {
            "名称": ordered["name"],
            "编码": ordered["code"],
            "风险等级": ordered["class_label"],
            "风险分值": [
                "—" if c == RiskClass.NO_DATA.value else f"{s:.0f}"
                for c, s in zip(ordered["risk_class"], ordered["score"], strict=True)
            ],
        }
    )


def why_tables(parts: list, top: pd.DataFrame, recent: pd.DataFrame) -> None:
    """ "Why is this area this colour?": each factor in whole counts with its points, the riskiest venues,
    the latest events."""
    st.markdown("**为什么是这个颜色？** 各因素贡献（分/万人，从大到小）")
    counted = [p for p in parts if p.points > 0]
    factors = [  # whole points that add up to the score shown; a share under one point says so
        {"因素": p.factor, "数量（项）": f"{p.count:,}", "贡献分值": f"{w:,}" if w else "<1"}
        for p, w in zip(counted, whole_points([p.points for p in counted]), strict=True)
    ]
    st.table(
        pd.DataFrame(factors or [{"因素": "无风险因素", "数量（项）": "0", "贡献分值": "0"}]).set_index(
            "因素"
        )
    )
    st.markdown("**风险最高的场所**")
    if top.empty:
        st.caption("本区域没有需要关注的场所。")
    else:
        venue_columns = {"name": "场所", "category": "类别", "code": "平安码", "major": "重大隐患"}
        venue_columns |= {"general": "一般隐患", "points": "风险分"}
        _table(top.assign(points=top["points"].map("{:.0f}".format)), venue_columns, "场所")
    st.markdown("**最新事件**")
    if recent.empty:
        st.caption("暂无事件。")
    else:
        when = recent["reported_at"].map(lambda t: t.strftime("%Y-%m-%d %H:%M"))
        _table(
            recent.assign(时间=when),
            {"时间": "时间", "title": "事件", "category": "类别", "status": "状态"},
            "时间",
        )


def drill_choice(tree: Tree, units: gpd.GeoDataFrame, area_id: int) -> str | None:
    """下钻到: a selector of the area's child units (a way down that needs no map click); the code chosen."""
    children = tree.children(area_id)
    if not children:
        return None
    names = {int(u): f"{units.at[u, 'name']}（{units.at[u, 'code']}）" for u in children}
    chosen = st.selectbox(
        "下钻到下级区域",
        children,
        index=None,
        format_func=names.get,
        placeholder="选择下级区域",
        key=f"rm_drill_{area_id}",
    )
    return None if chosen is None else str(units.at[chosen, "code"])


def picked_row_code(event, table: pd.DataFrame) -> str | None:
    """The 编码 of the ranking row a click selected (``st.dataframe(on_select="rerun")``), if any."""
    rows = (event.selection.get("rows") or []) if event else []
    return str(table.iloc[rows[0]]["编码"]) if rows else None
