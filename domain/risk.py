"""The five-colour regional risk model (区域平安风险"五色图"): one scoring function for every level.

An area's *inputs* are counts (venues by colour weighted by category, open and overdue hazards,
overdue inspections, recent safety events) that add up from grids to the city; its *score* is
those inputs weighted, per 10,000 residents, so a village and a county are graded on one scale.
Pure: plain numbers in, plain numbers out. ``docs/risk-model.md`` explains the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from domain.vocabulary import Labelled, VenueCategory


class RiskClass(Labelled):
    """The five colours, worst first (重大/较大/一般/低 is the national 四色; 无明显风险 adds green), then
    暂无数据: an area where nothing is recorded (:func:`has_data`) is not "safe", it is unknown (grey)."""

    RED = "red", "重大风险"
    ORANGE = "orange", "较大风险"
    YELLOW = "yellow", "一般风险"
    BLUE = "blue", "低风险"
    GREEN = "green", "无明显风险"
    NO_DATA = "no_data", "暂无数据"


# Base risk of a venue category: hazardous chemicals and crowds weigh more than a general firm.
CATEGORY_BASE: dict[VenueCategory, float] = {
    VenueCategory.HAZCHEM: 3.0,
    VenueCategory.CROWDED_VENUE: 2.0,
    VenueCategory.CONSTRUCTION_SITE: 2.0,
    VenueCategory.LABOUR_INTENSIVE: 1.5,
    VenueCategory.KEY_SECURITY: 1.5,
    VenueCategory.RENTAL_HOUSING: 1.0,
    VenueCategory.STREET_SHOP: 0.8,
    VenueCategory.GENERAL_FIRM: 0.6,
}


@dataclass(frozen=True)
class RiskInputs:
    """Additive inputs of an area; a parent's are the sums of its children's (:meth:`__add__`)."""

    red_weight: float = 0.0  # Σ category base of red-code venues
    yellow_weight: float = 0.0
    green_weight: float = 0.0
    major_hazards: int = 0  # open 重大隐患
    general_hazards: int = 0  # open 一般隐患
    overdue_hazards: int = 0  # open past their rectification deadline
    overdue_inspections: int = 0  # venues past their re-check due date
    safety_events: int = 0  # safety-related events in the look-back window
    population: int = 0
    red_venues: int = 0  # venue counts by colour (the explanation's whole numbers; no weight of their own)
    yellow_venues: int = 0
    green_venues: int = 0

    def __add__(self, other: RiskInputs) -> RiskInputs:
        return RiskInputs(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class RiskWeights:
    """Points per unit of each input (before the per-10,000-residents scaling)."""

    red: float = 10.0
    yellow: float = 3.0
    green: float = 0.2
    major_hazard: float = 8.0
    general_hazard: float = 1.5
    overdue_hazard: float = 4.0
    overdue_inspection: float = 1.0
    safety_event: float = 0.5
    min_population: int = 1000  # floor of the denominator: a grid of workshops and few residents


@dataclass(frozen=True)
class Thresholds:
    """Lower bounds of the score for red, orange, yellow and blue; below ``blue`` is green."""

    # Calibrated on the town demo (docs/risk-model.md): grids split roughly 10/20/30/25/15 %.
    red: float = 900.0
    orange: float = 650.0
    yellow: float = 400.0
    blue: float = 150.0

    def __post_init__(self) -> None:
        if not (self.red > self.orange > self.yellow > self.blue >= 0):
            raise ValueError("阈值须满足：重大 > 较大 > 一般 > 低 ≥ 0")


@dataclass(frozen=True)
class RiskModel:
    weights: RiskWeights = field(default_factory=RiskWeights)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def with_thresholds(self, **bounds: float) -> RiskModel:
        return replace(self, thresholds=replace(self.thresholds, **bounds))


# (label, input field, weight field) of every factor, in the order the explanation lists ties.
FACTORS: list[tuple[str, str, str]] = [
    ("红码场所", "red_weight", "red"),
    ("黄码场所", "yellow_weight", "yellow"),
    ("绿码场所", "green_weight", "green"),
    ("未整改重大隐患", "major_hazards", "major_hazard"),
    ("未整改一般隐患", "general_hazards", "general_hazard"),
    ("超期未整改隐患", "overdue_hazards", "overdue_hazard"),
    ("超期未检查场所", "overdue_inspections", "overdue_inspection"),
    ("近期安全类事件", "safety_events", "safety_event"),
]


# The whole count behind a weighted input: venues by colour (the weight sums their category bases).
COUNT_OF: dict[str, str] = {
    "red_weight": "red_venues",
    "yellow_weight": "yellow_venues",
    "green_weight": "green_venues",
}


@dataclass(frozen=True)
class Contribution:
    factor: str
    amount: float  # the input (count or category-weighted count)
    points: float  # its share of the score
    count: int = 0  # the whole number of venues, hazards or events behind it


def _scale(inputs: RiskInputs, w: RiskWeights) -> float:
    return 10_000 / max(inputs.population, w.min_population)


def explain(inputs: RiskInputs, model: RiskModel = RiskModel()) -> list[Contribution]:
    """Each factor with its contribution to the score, largest first (why is this area red?)."""
    scale = _scale(inputs, model.weights)
    parts = [
        Contribution(
            label,
            getattr(inputs, i),
            getattr(model.weights, w) * getattr(inputs, i) * scale,
            round(getattr(inputs, COUNT_OF.get(i, i))),
        )
        for label, i, w in FACTORS
    ]
    return sorted(parts, key=lambda c: -c.points)


def score(inputs: RiskInputs, model: RiskModel = RiskModel()) -> float:
    """Risk points per 10,000 residents; the sum of :func:`explain`'s contributions."""
    return sum(c.points for c in explain(inputs, model))


def points_many(columns: Mapping[str, np.ndarray], model: RiskModel = RiskModel()) -> np.ndarray:
    """Weighted points (no per-resident scale) of many areas or venues: ``columns`` maps input fields to arrays."""
    w = model.weights
    return sum(getattr(w, wf) * np.asarray(columns.get(i, 0), dtype=float) for _, i, wf in FACTORS)


def score_many(
    columns: Mapping[str, np.ndarray], population: np.ndarray, model: RiskModel = RiskModel()
) -> np.ndarray:
    """:func:`score` of many areas at once: ``columns`` maps each input field to an array."""
    scale = 10_000 / np.maximum(np.asarray(population, dtype=float), model.weights.min_population)
    return points_many(columns, model) * scale


def classify(value: float, thresholds: Thresholds = Thresholds()) -> RiskClass:
    """The colour of a score: each score falls in exactly one of the five classes."""
    if value >= thresholds.red:
        return RiskClass.RED
    if value >= thresholds.orange:
        return RiskClass.ORANGE
    if value >= thresholds.yellow:
        return RiskClass.YELLOW
    if value >= thresholds.blue:
        return RiskClass.BLUE
    return RiskClass.GREEN


# Every input but population: when all are zero nothing is recorded for the area.
_RECORDED = [f.name for f in fields(RiskInputs) if f.name != "population"]


def has_data(inputs: RiskInputs) -> bool:
    """Whether anything is recorded for the area: a coded venue, an open hazard, an overdue inspection or
    an event in the window. Without any (no venues, no events: often no population either) its score of 0
    means "unknown", not "safe"."""
    return any(getattr(inputs, name) for name in _RECORDED)


def has_data_many(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`has_data` of many areas: ``columns`` maps input fields to arrays (missing ones are 0)."""
    recorded = [np.nan_to_num(np.asarray(columns[n], dtype=float)) != 0 for n in _RECORDED if n in columns]
    return np.logical_or.reduce(recorded) if recorded else np.zeros(0, dtype=bool)


def classify_area(value: float, inputs: RiskInputs, thresholds: Thresholds = Thresholds()) -> RiskClass:
    """An area's class: :attr:`RiskClass.NO_DATA` when nothing is recorded, else :func:`classify`."""
    return classify(value, thresholds) if has_data(inputs) else RiskClass.NO_DATA


def rank_among(scores: Mapping[int, float], unit_id: int) -> tuple[int, int]:
    """(rank, of how many) of ``unit_id`` among ``scores`` (its siblings with data, itself included), the
    highest score first; ties share the better rank (1, 2, 2, 4)."""
    mine = scores[unit_id]
    return 1 + sum(1 for s in scores.values() if s > mine), len(scores)


def class_band(cls: RiskClass, thresholds: Thresholds = Thresholds()) -> str:
    """The score range of a class in words, e.g. "400–650 分"."""
    t = thresholds
    bands = {
        RiskClass.RED: f"≥ {t.red:.0f} 分",
        RiskClass.ORANGE: f"{t.orange:.0f}–{t.red:.0f} 分",
        RiskClass.YELLOW: f"{t.yellow:.0f}–{t.orange:.0f} 分",
        RiskClass.BLUE: f"{t.blue:.0f}–{t.yellow:.0f} 分",
        RiskClass.GREEN: f"< {t.blue:.0f} 分",
        RiskClass.NO_DATA: "无场所、无安全类事件记录",
    }
    return bands[cls]


def whole_points(points: list[float]) -> list[int]:
    """Each factor's points as whole numbers that add up to the score shown (the total rounded): rounded
    down, then the points left over go to the largest remainders (each row rounded alone summed to 6
    beside a score of 8)."""
    if not points:
        return []
    floors = [math.floor(p) for p in points]
    left = round(sum(points)) - sum(floors)
    order = sorted(range(len(points)), key=lambda i: (points[i] - floors[i], points[i]), reverse=True)
    for i in order[: max(0, left)]:
        floors[i] += 1
    return floors


def verdict(
    name: str,
    cls: RiskClass,
    value: float,
    parts: list[Contribution],
    rank: tuple[int, int] | None,
    thresholds: Thresholds = Thresholds(),
) -> str:
    """One Chinese sentence: the class, the score against its band, the main factor, the rank."""
    if cls is RiskClass.NO_DATA:
        return (
            f"{name}暂无场所和安全类事件记录，无法评定风险等级"
            "（不等于没有风险；纠纷、城管等诉求类事件不计入风险评分）。"
        )
    main = next((p for p in parts if p.points > 0), None)
    because = f"，主要来自{main.factor}（{main.count} 项，{main.points:.0f} 分）" if main else ""
    where = f"，在同级 {rank[1]} 个区域中排第 {rank[0]}" if rank and rank[1] > 1 else ""
    return f"{name}为{cls.label}：{value:.0f} 分/万人（{cls.label}区间 {class_band(cls, thresholds)}）{because}{where}。"


def data_gaps(name: str, cls: RiskClass, children: Sequence[tuple[str, RiskClass, float]]) -> str | None:
    """The warning an area's verdict needs when some of its child areas have no data (暂无数据): its score
    is per 万人 of the whole area, so a county whose venues were imported for two townships of fifteen reads
    low (green) for want of records, not for want of risk. ``children``: (name, class, population) of each
    child. None when every child has data, or when the area itself has none (its own verdict says so)."""
    children = [(n, c, p if p == p and p > 0 else 0.0) for n, c, p in children]  # no NaN, none below 0
    missing = [(n, p) for n, c, p in children if c is RiskClass.NO_DATA]
    if cls is RiskClass.NO_DATA or not missing:
        return None
    people = sum(p for _, _, p in children)
    share = f"，占常住人口 {sum(p for _, p in missing) / people:.0%}" if people > 0 else ""
    names = "、".join(n for n, _ in missing[:5]) + ("等" if len(missing) > 5 else "")
    return (
        f"数据不完整：{name}的 {len(children)} 个下级区域中有 {len(missing)} 个暂无场所和安全类事件记录"
        f"（{names}{share}），其风险按零计入，{name}的等级可能偏低。请先为这些区域导入场所（平安码）和事件。"
    )


def venue_weight(category: VenueCategory | str) -> float:
    return CATEGORY_BASE[VenueCategory(category)]


def inputs_from_mapping(row: Mapping[str, float]) -> RiskInputs:
    """RiskInputs from a mapping (a DataFrame row) holding the input fields; missing ones are 0."""
    kinds = {f.name: int if isinstance(f.default, int) else float for f in fields(RiskInputs)}
    values: dict[str, Any] = {name: kind(row.get(name, 0) or 0) for name, kind in kinds.items()}
    return RiskInputs(**values)


def venue_points(inputs: RiskInputs, model: RiskModel = RiskModel()) -> float:
    """A single venue's risk points: the same weights, without the per-resident scaling.

    Build its inputs with the venue's category base in the field of its colour, and its own open,
    overdue hazards and overdue inspection (0/1); used to rank an area's riskiest venues.
    """
    return sum(getattr(model.weights, w) * getattr(inputs, i) for _, i, w in FACTORS)
