"""Early warning (预警) of six kinds (新苗头, 高发, 突发, 顽疾, 多发, 群发) as documented, deterministic rules."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

# scikit-learn's own dependency; imported with the module, not at a process's first judgement (156 ms).
from scipy.spatial import cKDTree
from scipy.special import gammaln

from domain.vocabulary import AdminLevel, EventCategory, Labelled


class AlertKind(Labelled):
    """The six kinds of warning (values match the demo manifest's ``kind_en``)."""

    EMERGING = "emerging", "新苗头"
    HIGH_FREQUENCY = "high_frequency", "高发"
    SPIKE = "spike", "突发"
    CHRONIC = "chronic", "顽疾"
    FREQUENT = "frequent", "多发"
    MASS = "mass", "群发"


KIND_ORDER = {k: i for i, k in enumerate(AlertKind)}


# ---------------------------------------------------------------------------------------------
# Parameters (docs/early-warning.md explains each default)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeParams:
    """突发: a day's count far above the unit's own recent daily mean."""

    levels: tuple[str, ...] = ("grid", "village", "township")
    baseline_days: int = 28
    min_history_days: int = 7  # fewer days of history: no baseline, no judgement
    min_count: int = 5
    ratio: float = 3.0  # at least this many times the baseline mean
    # Poisson upper tail at the baseline mean. About 1,000 grid×category series are judged per
    # township-day (~370,000 a year), so 1e-5 keeps chance alarms to a few a township-year while a
    # real burst (a dozen reports where two are usual) still scores below it on its first day.
    p_value: float = 1e-5
    min_baseline: float = 0.1  # events a day assumed where history is empty


@dataclass(frozen=True)
class HighFrequencyParams:
    """高发: a unit's rate per 10,000 residents persistently far above its peers' (siblings') rate."""

    level: str = "village"
    weeks: int = 4
    min_weeks_share: float = 1.0  # high in every one of the weeks (of those the data covers)
    top_share: float = 0.1  # and among the top 10% of peers by rate
    ratio: float = 2.0  # rate at least twice the peers' pooled rate
    min_count: int = 10  # events in the week
    p_value: float = 1e-4  # Poisson upper tail at the peers' rate, each week
    min_peers: int = 5  # fewer siblings: compare with every unit of the level instead


@dataclass(frozen=True)
class FrequentParams:
    """多发: a small area's week far above its own previous weeks."""

    levels: tuple[str, ...] = ("grid",)
    window_days: int = 7
    baseline_days: int = 56
    min_history_days: int = 28  # four weeks of baseline before a week can be judged unusual
    min_count: int = 5
    ratio: float = 2.0
    p_value: float = 1e-6  # many series every day; a week's excess has power to spare
    min_baseline: float = 0.1  # events a day


@dataclass(frozen=True)
class ChronicParams:
    """顽疾: one place (within ``radius_m``) complaining about the same matter week after week."""

    radius_m: float = 50.0
    weeks: int = 8
    min_weeks: int = 3
    min_events: int = 8
    recent_days: int = 14  # still alive: the last report at most this old
    p_value: float = 1e-6  # binomial upper tail of the matter among the place's reports (see detect_chronic)
    # The matter's share in the rest of the grid is shrunk toward its share among every report of the
    # window, as if the grid had this many more reports: a quiet village grid whose few other reports
    # say little about the matter (2 other reports gave a 25% share) no longer hides a 顽疾.
    prior_reports: float = 20.0


@dataclass(frozen=True)
class MassParams:
    """群发: many reporters about one matter."""

    min_reporters: int = 10  # on one (merged) event
    radius_m: float = 50.0
    window_hours: float = 6.0
    min_reports: int = 5  # separate reports, same category, within the radius and the window


@dataclass(frozen=True)
class EmergingParams:
    """新苗头: a category new to a unit, or one growing week after week."""

    levels: tuple[str, ...] = ("township",)
    quiet_days: int = 60
    min_quiet_days: int = 28  # a younger store judges newness over the history it has, if at least this
    window_days: int = 7
    # One report of a category the township has not seen for 60 days is the first sign: waiting for a
    # second cost the city demo two days (the emerging matter starts at about one report a day).
    # Over the city demo's year no other township-category was ever quiet that long (0 alarms).
    min_count: int = 1
    growth_weeks: int = 3
    growth_factor: float = 1.5  # each week at least this times the week before
    growth_min_count: int = 10
    growth_ratio: float = 2.0  # last week vs the mean week of the baseline
    baseline_weeks: int = 8
    p_value: float = 0.001
    # Growth shared by the peers (sibling townships, or every township when fewer than this) is a
    # season (spring rains, typhoons), not a new matter: the baseline is scaled by the peers' own growth.
    min_peers: int = 5
    min_peer_baseline: float = 5.0  # peers' usual week (events) below which their growth is not used


@dataclass(frozen=True)
class WarningParams:
    """Every rule's parameters; stored as JSON (:meth:`to_dict` / :meth:`from_dict`) in settings."""

    spike: SpikeParams = field(default_factory=SpikeParams)
    high_frequency: HighFrequencyParams = field(default_factory=HighFrequencyParams)
    frequent: FrequentParams = field(default_factory=FrequentParams)
    chronic: ChronicParams = field(default_factory=ChronicParams)
    mass: MassParams = field(default_factory=MassParams)
    emerging: EmergingParams = field(default_factory=EmergingParams)
    # A unit's 突发/多发 alert is dropped when one of its descendants has the same alert that day:
    # the smaller area says where.
    suppress_ancestors: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WarningParams:
        """Parameters as stored; a rule or field left out keeps its default. Chinese errors."""
        errors: list[str] = []
        kw: dict[str, Any] = {}
        default = cls()
        for name, value in data.items():
            if name not in cls.__dataclass_fields__:
                errors.append(f"未知的预警设置项：{name}")
            elif name == "suppress_ancestors":
                kw[name] = bool(value)
            elif not isinstance(value, Mapping):
                errors.append(f"预警设置项“{name}”应为对象")
            else:
                rule = getattr(default, name)
                unknown = sorted(set(value) - set(type(rule).__dataclass_fields__))
                errors += [f"预警设置项“{name}”中未知的参数：{k}" for k in unknown]
                fields_ = {
                    k: tuple(v) if isinstance(v, list) else v for k, v in value.items() if k not in unknown
                }
                kw[name] = replace(rule, **fields_)
        if errors:
            raise ValueError("预警参数有误：" + "；".join(errors))
        return cls(**kw)


DEFAULT_PARAMS = WarningParams()


# ---------------------------------------------------------------------------------------------
# Input and output
# ---------------------------------------------------------------------------------------------


@dataclass
class WarningData:
    """What the detector reads.

    ``counts``: one row per day, unit and category with ``day`` (midnight), ``unit_id``,
    ``category`` (value) and ``count`` (rows with zero may be left out), at any levels.
    ``units``: indexed by unit id, with ``level``, ``parent_id``, ``population`` and optionally
    ``name``. ``reports``: one row per report with ``id``, ``reported_at``,
    ``category``, ``grid_id``, ``x_m``, ``y_m`` (the place in metres, any one projected CRS: the
    services project with ``geo.crs.to_metres``; rows without a place are left out) and optionally
    ``reporter_count``, ``merged_into_id``, ``title``, ``address`` (needed by 顽疾 and 群发 only).
    """

    counts: pd.DataFrame
    units: pd.DataFrame
    reports: pd.DataFrame | None = None
    #: For judging one day without every report of 顽疾's weeks (decision 0038): that day, and the weeks'
    #: reports with a place not merged, counted per ``grid_id``, ``category`` and ``title`` (``count``).
    #: ``reports`` then needs only 群发's hours and, of 顽疾's weeks, the reports within ``radius_m`` of one
    #: that has ``min_events`` of its matter within :data:`NEAR_MARGIN` × ``radius_m`` (any more do no harm):
    #: the alerts are the same as from every report. Other days are judged from ``reports`` alone.
    matter_day: pd.Timestamp | None = None
    matter_counts: pd.DataFrame | None = None
    #: With ``matter_counts``: each grid's reports of every matter (``grid_id``, ``count``); then
    #: ``matter_counts`` need hold only the matters of the reports with ``min_events`` of theirs nearby.
    grid_totals: pd.DataFrame | None = None
    # Lookups built on first use and reused for every day judged (a replay judges hundreds of days
    # over one WarningData): treat the frames as read-only once the detector has seen them.
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Normalise once, not on every day judged: midnight days, category values as text.
        c = self.counts
        self.counts = c.assign(
            day=pd.to_datetime(c["day"]).dt.normalize(), category=c["category"].astype(str)
        )
        self.units = _units(self.units)

    @property
    def first_day(self) -> pd.Timestamp | None:
        """The counts' first day: the detector takes it as the store's first day."""
        if "first_day" not in self._cache:
            self._cache["first_day"] = self.counts["day"].min() if len(self.counts) else None
        return self._cache["first_day"]

    @property
    def watched_units(self) -> set[int]:
        """Units that have counts at all."""
        if "watched" not in self._cache:
            self._cache["watched"] = set(self.counts["unit_id"].unique().tolist())
        return self._cache["watched"]

    def _cube(self) -> tuple[pd.MultiIndex, np.ndarray, np.ndarray, pd.Timestamp | None]:
        """The counts as a dense (unit, category) × day array, series sorted by unit then category."""
        if "cube" not in self._cache:
            c = self.counts
            if c.empty:
                index = pd.MultiIndex.from_tuples([], names=["unit_id", "category"])
                self._cache["cube"] = (
                    index,
                    np.zeros((0, 0), dtype=np.int64),
                    np.array([], dtype=object),
                    None,
                )
            else:
                # Series keyed as integers (unit, category codes in sorted order): sorted by unit then
                # category, each count's series found without a MultiIndex lookup.
                unit_code, unit_ids = pd.factorize(c["unit_id"].to_numpy(), sort=True)
                cat_code, cats = pd.factorize(c["category"].to_numpy(dtype=object), sort=True)
                keys, row = np.unique(unit_code.astype(np.int64) * len(cats) + cat_code, return_inverse=True)
                index = pd.MultiIndex.from_arrays(
                    [
                        np.asarray(unit_ids)[keys // len(cats)],
                        np.asarray(cats, dtype=object)[keys % len(cats)],
                    ],
                    names=["unit_id", "category"],
                )
                first = c["day"].min()
                n_days = (c["day"].max() - first).days + 1
                col = (c["day"] - first).dt.days.to_numpy()
                flat = np.bincount(
                    row * n_days + col,
                    weights=c["count"].to_numpy(dtype=float),
                    minlength=len(index) * n_days,
                )
                cube = flat.reshape(len(index), n_days).round().astype(np.int64)
                level = self.units["level"].astype(str).reindex(index.get_level_values(0)).to_numpy()
                self._cache["cube"] = (index, cube, level, first)
        return self._cache["cube"]

    def window(self, start: pd.Timestamp, end: pd.Timestamp, levels: Iterable[str]) -> pd.DataFrame:
        """Counts in [start, end] (days, inclusive) of units at ``levels``: a (unit, category) × day table
        of the series with at least one event in it, sorted by unit then category."""
        index, cube, level, first = self._cube()
        days = pd.date_range(start, end, freq="D")
        rows = np.flatnonzero(np.isin(level, list(levels)))
        sub = np.zeros((len(rows), len(days)), dtype=np.int64)
        if first is not None and len(rows) and len(days):
            a, b = (start - first).days, (end - first).days + 1
            lo, hi = max(a, 0), min(b, cube.shape[1])
            if lo < hi:
                sub[:, lo - a : hi - a] = cube[rows, lo:hi]
        keep = sub.any(axis=1)
        return pd.DataFrame(sub[keep], index=index[rows[keep]], columns=days)

    def reports_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        """Reports in [start, end) with a place, in (time, id) order; None without reports."""
        if "reports" not in self._cache:
            r = self.reports
            if r is None or r.empty:
                self._cache["reports"] = None
            else:
                # Text as Python objects: pandas' Arrow strings cost a pyarrow ``take`` at every filter.
                r = r.assign(
                    reported_at=pd.to_datetime(r["reported_at"]),
                    category=pd.Series(_as_text(r["category"]), index=r.index, dtype=object),
                )
                r = r[r["x_m"].notna() & r["y_m"].notna()]
                self._cache["reports"] = r.sort_values(["reported_at", "id"], kind="stable").reset_index(
                    drop=True
                )
        r = self._cache["reports"]
        if r is None:
            return None
        t = r["reported_at"].to_numpy()
        lo, hi = (
            np.searchsorted(t, np.datetime64(start), "left"),
            np.searchsorted(t, np.datetime64(end), "left"),
        )
        return r.iloc[lo:hi].reset_index(drop=True)

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        units: pd.DataFrame,
        levels: Sequence[str] = ("grid", "village", "township"),
    ) -> WarningData:
        """Counts at ``levels`` from event rows (merged duplicates are not counted: one matter once)."""
        units = _units(units)
        return cls(daily_counts(events, units, levels), units, events)


def _units(units: pd.DataFrame) -> pd.DataFrame:
    if "id" in units.columns:
        units = units.set_index("id")
    return units


def daily_counts(events: pd.DataFrame, units: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """Events per day, unit (each of ``levels``, through the grid's ancestors) and category: each event
    counted once, as a rollup row of one (:func:`counts_at_levels`)."""
    ev = events
    if "merged_into_id" in ev.columns:
        ev = ev[ev["merged_into_id"].isna()]
    ones = pd.DataFrame(
        {
            "day": pd.to_datetime(ev["reported_at"]).dt.normalize().to_numpy(),
            "grid_id": ev["grid_id"].to_numpy(),
            "category": ev["category"].astype(str).to_numpy(),
            "count": np.ones(len(ev), dtype=np.int64),
        }
    )
    return counts_at_levels(ones, units, levels)


def counts_at_levels(grid_counts: pd.DataFrame, units: pd.DataFrame, levels: Sequence[str]) -> pd.DataFrame:
    """Counts per day, grid and category (``day``, ``grid_id``, ``category``, ``count``: a rollup's rows)
    summed up to each of ``levels`` through the grid's ancestors: what :func:`daily_counts` gives from the
    events themselves (rows with a zero count left out)."""
    units = _units(units)
    positive = grid_counts["count"].to_numpy() > 0
    g = grid_counts if positive.all() else grid_counts[positive]
    if g.empty or not len(levels):
        out = pd.DataFrame(columns=["day", "unit_id", "category", "count"])
        out["unit_id"] = out["unit_id"].astype("int64")
        return out
    # Summed as integer keys (day, unit, category codes in sorted order): the rows come out in the
    # (day, unit, category) order a sorted groupby gives, several times faster on a township's 50 k rows.
    day_code, days = pd.factorize(pd.to_datetime(g["day"]).dt.normalize(), sort=True)
    cat_code, cats = _factorized_as_text(g["category"])
    count = g["count"].to_numpy(dtype=np.int64)
    unit_at = _ancestor_columns(units, g["grid_id"].to_numpy(), levels)
    parts = []
    for level in levels:
        at = unit_at[level]
        keep = at >= 0
        unit_ids, unit_code = np.unique(at[keep], return_inverse=True)
        n_units, n_cats = len(unit_ids), len(cats)
        key = (day_code[keep].astype(np.int64) * n_units + unit_code) * n_cats + cat_code[keep]
        keys, where = np.unique(key, return_inverse=True)
        sums = np.bincount(where, weights=count[keep], minlength=len(keys)).round().astype(np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "day": days[keys // (n_units * n_cats)],
                    "unit_id": unit_ids[(keys // n_cats) % n_units].astype(np.int64),
                    "category": pd.Series(np.asarray(cats, dtype=object)[keys % n_cats], dtype=object),
                    "count": sums,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _factorized_as_text(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values.astype(str), sort=True)``, the text made by :func:`_as_text`: a column of
    tens of thousands of category names made text row by row cost a fifth of the counts' summing."""
    return pd.factorize(_as_text(values), sort=True)


def _as_text(values: pd.Series) -> np.ndarray:
    """``values.astype(str).to_numpy(dtype=object)`` (missing stays NaN), each distinct value made text
    once, not row by row through Arrow strings."""
    code, distinct = pd.factorize(values.to_numpy(dtype=object))
    texts = np.array([str(v) for v in distinct] + [np.nan], dtype=object)
    return texts[code]  # code -1 (missing): the NaN at the end


def _ancestor_columns(
    units: pd.DataFrame, grid_ids: np.ndarray, levels: Iterable[str]
) -> dict[str, np.ndarray]:
    """For each grid id, the id of its ancestor at each level (-1 where none)."""
    # Plain dicts: a walk up from each grid probes them a few times (pandas' ``.at`` costs ~15 µs a probe).
    ids = units.index.tolist()
    parent = dict(zip(ids, units["parent_id"].tolist(), strict=True))
    level_of = dict(zip(ids, [str(v) for v in units["level"].tolist()], strict=True))
    out = {}
    uniq, at = np.unique(np.asarray(grid_ids), return_inverse=True)  # each row's place among the grids
    chain: dict[int, dict[str, int]] = {}
    for g in uniq.tolist():
        row: dict[str, int] = {}
        node = g
        while node is not None and not pd.isna(node) and node in level_of:
            row[level_of[node]] = int(node)
            node = parent[node]
        chain[int(g)] = row
    for level in levels:
        out[level] = np.array([chain[int(g)].get(level, -1) for g in uniq], dtype=np.int64)[at]
    return out


@dataclass(frozen=True)
class Alert:
    """One warning: what, where, when, the evidence as data, and a Chinese sentence."""

    kind: AlertKind
    day: date  # the day the detector judged
    unit_id: int
    unit_level: str
    category: EventCategory
    period_start: date
    period_end: date  # inclusive
    evidence: dict[str, Any]
    message: str

    @property
    def key(self) -> tuple[object, ...]:
        """What stays the same while the same situation lasts (for a service to track episodes)."""
        place = self.evidence.get("place_key")
        return (self.kind.value, self.unit_id, self.category.value, place)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "kind_label": self.kind.label,
            "day": self.day.isoformat(),
            "unit_id": self.unit_id,
            "unit_level": self.unit_level,
            "category": self.category.value,
            "category_label": self.category.label,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "evidence": self.evidence,
            "message": self.message,
        }


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p), summed term by term in log space (n is at most a few thousand here)."""
    tail = _binomial_sf(k, n, p, None)
    assert tail is not None
    return tail


def _binomial_sf(k: int, n: int, p: float, below: float | None) -> float | None:
    """:func:`binomial_sf`; with ``below``, None as soon as the tail is known to be at least ``below`` (its
    first term is: the sum starts with it and only grows; or ``k`` is at most the mean and ``below`` at
    most 1 %), a tail returned being the same number. 顽疾 judges a couple of thousand places a day."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)

    def term(j: int) -> float:
        return math.exp(log_n - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q)

    if k > n * p:
        # Upper tail past the mean: terms fall from k on.
        if below is not None and term(k) >= below:
            return None  # the sum starts with this term and only grows
        total = 0.0
        for j in range(k, n + 1):
            t = term(j)
            total += t
            if t < total * 1e-16:
                break
        return min(1.0, total)
    if below is not None and below <= 0.01:
        # At or below the mean the tail holds about half the mass (the median is ⌊np⌋ or ⌈np⌉).
        return None
    return max(0.0, 1.0 - sum(term(j) for j in range(k)))


def _tail_may_be_below(k: np.ndarray, n: np.ndarray, p: np.ndarray, below: float) -> np.ndarray:
    """Where :func:`_binomial_sf` (k, n, p, ``below``) may return a tail under ``below``: False only
    where it returns None for certain (``0 < p < 1``, ``0 < k ≤ n``, and either k past the mean with a
    first term at least ``below`` — with a margin of 1e-9 for the two ways of computing it — or k at
    most the mean and ``below`` at most 1 %). 顽疾 asks for a couple of thousand places a day, nearly all
    of them known to be common from their first term: one vector computation instead of a call each."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    p = np.asarray(p, dtype=float)
    usual = (p > 0) & (p < 1) & (k > 0) & (k <= n)
    past_mean = k > n * p
    with np.errstate(divide="ignore", invalid="ignore"):
        log_first = (
            gammaln(n + 1)
            - gammaln(k + 1)
            - gammaln(n - k + 1)
            + k * np.log(np.where(usual, p, 0.5))
            + (n - k) * np.log1p(-np.where(usual, p, 0.5))
        )
    common = np.where(past_mean, log_first >= math.log(below) + 1e-9, below <= 0.01)
    return ~(usual & common)


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam): the regularised lower incomplete gamma P(k, lam)."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    a, x = float(k), float(lam)
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        # Series for P(a, x), fast and exact where the tail is small.
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1.0
            term *= x / ap
            total += term
            if term < total * 1e-16:
                break
        return min(1.0, total * math.exp(log_front))
    # Continued fraction for Q(a, x) (Lentz); P = 1 − Q.
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


def _how_unusual(p: float) -> str:
    """The chance of a count this high in a usual period, in words for staff (the figure stays in the
    evidence): a leader reads "远高于常态", not a tail probability."""
    return "远高于常态" if p < 1e-6 else "明显高于常态"


def _day(d: date | datetime | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(d).normalize()


def _md(d: pd.Timestamp | date) -> str:
    return f"{d.month}月{d.day}日"


class _Context:
    """Per-call lookups: unit names, levels, parents; the counts' first day."""

    def __init__(self, day: pd.Timestamp, data: WarningData):
        self.day = day
        self.units = data.units
        self.level = self.units["level"].astype(str)
        self.parent = self.units["parent_id"]
        self.names = self.units["name"] if "name" in self.units.columns else None
        self.counts = data.counts
        self.data = data
        self.first_day = data.first_day if data.first_day is not None else day

    def name(self, unit_id: int) -> str:
        if self.names is not None and unit_id in self.names.index and isinstance(self.names.at[unit_id], str):
            return self.names.at[unit_id]
        return f"单元#{unit_id}"

    def level_of(self, unit_id: int) -> str:
        return self.level.get(unit_id, "")

    def window(self, start: pd.Timestamp, end: pd.Timestamp, levels: Iterable[str]) -> pd.DataFrame:
        """Counts in [start, end] (days, inclusive) of units at ``levels``: a (unit, category) × day table."""
        return self.data.window(start, end, levels)

    def ancestors(self, unit_id: int) -> list[int]:
        out, node = [], self.parent.get(unit_id)
        while node is not None and not pd.isna(node):
            out.append(int(node))
            node = self.parent.get(int(node))
        return out


def _category(value: str) -> EventCategory:
    return EventCategory(value)


# ---------------------------------------------------------------------------------------------
# The six rules
# ---------------------------------------------------------------------------------------------


def per_day(value: float) -> str:
    """A daily average as a sentence shows it: two decimals under one a day (0.25), one above (1.5)."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def detect_spikes(ctx: _Context, p: SpikeParams) -> list[Alert]:
    day = ctx.day
    history = min(p.baseline_days, (day - ctx.first_day).days)
    if history < p.min_history_days:
        return []
    table = ctx.window(day - pd.Timedelta(days=history), day, p.levels)
    if table.empty:
        return []
    values = table.to_numpy(dtype=float)
    today = values[:, -1]
    base = values[:, :-1].mean(axis=1)
    lam = np.maximum(base, p.min_baseline)
    pre = (today >= p.min_count) & (today >= p.ratio * base)
    alerts = []
    for i in np.flatnonzero(pre):
        pv = poisson_sf(int(today[i]), float(lam[i]))
        if pv >= p.p_value:
            continue
        unit_id, cat = int(table.index[i][0]), table.index[i][1]
        category = _category(cat)
        n = int(today[i])
        times = n / lam[i]
        ev = {
            "count": n,
            "baseline_per_day": round(float(base[i]), 3),
            "baseline_days": history,
            "ratio": round(float(times), 1),
            "p_value": pv,
            "period": [day.date().isoformat()] * 2,
        }
        usual = (  # the baseline as precise as the ratio needs: 5 ÷ 0.25 reads 20 times, not 5 ÷ 0.2
            f"近{history}天日均{per_day(base[i])}件，当日{n}件，是平时的{times:.1f}倍"
            if base[i] >= p.min_baseline
            else f"近{history}天几乎没有，当日{n}件"
        )
        msg = (
            f"【突发】{ctx.name(unit_id)}{_md(day)}“{category.label}”类事件{n}件，"
            f"{_how_unusual(pv)}（{usual}）"
        )
        alerts.append(
            Alert(
                AlertKind.SPIKE,
                day.date(),
                unit_id,
                ctx.level_of(unit_id),
                category,
                day.date(),
                day.date(),
                ev,
                msg,
            )
        )
    return alerts


def detect_high_frequency(ctx: _Context, p: HighFrequencyParams) -> list[Alert]:
    day = ctx.day
    start = max(day - pd.Timedelta(days=7 * p.weeks - 1), ctx.first_day)
    table = ctx.window(start, day, [p.level])
    if table.empty:
        return []
    pop = ctx.units["population"].astype(float)
    # Weekly windows back from the judged day; the oldest may be cut short by the data's first day.
    n_days = table.shape[1]
    weeks = [(max(0, n_days - 7 * (k + 1)), n_days - 7 * k) for k in range(p.weeks) if n_days - 7 * k > 0]
    weekly = np.stack([table.iloc[:, a:b].sum(axis=1).to_numpy(dtype=float) for a, b in weeks], axis=1)
    units_idx = table.index.get_level_values(0).to_numpy()
    cats = table.index.get_level_values(1).to_numpy()
    unit_pop = pop.reindex(units_idx).fillna(0).to_numpy()
    # Peers: siblings (same parent) when there are enough of them, else the whole level.
    watched = ctx.data.watched_units
    all_units = pd.Index([u for u in ctx.level.index[ctx.level == p.level] if u in watched])
    parents = ctx.parent.reindex(all_units)
    sib_count = parents.map(parents.value_counts())
    group_of = pd.Series(
        np.where(sib_count.to_numpy() >= p.min_peers, parents.fillna(-1).to_numpy(), -2), index=all_units
    )
    grp = group_of.reindex(units_idx).fillna(-2).to_numpy()
    high = np.zeros_like(weekly, dtype=bool)
    stats: dict[tuple[int, int], tuple[float, float]] = {}
    for g, c in sorted(set(zip(grp.tolist(), cats.tolist(), strict=True))):
        members = group_of.index[group_of == g]
        peer_pop = float(pop.reindex(members).fillna(0).sum())
        rows = np.flatnonzero((grp == g) & (cats == c))
        if peer_pop <= 0:
            continue
        for k in range(weekly.shape[1]):
            total = weekly[rows, k].sum()
            rate = total / peer_pop  # per resident, units without events count as zero
            expected = rate * unit_pop[rows]
            unit_rate = np.divide(
                weekly[rows, k], unit_pop[rows], out=np.zeros(len(rows)), where=unit_pop[rows] > 0
            )
            n_top = max(1, math.ceil(p.top_share * len(members)))
            cutoff = np.sort(unit_rate)[::-1][min(n_top, len(rows)) - 1] if len(rows) else np.inf
            for j, r in enumerate(rows):
                cnt = weekly[r, k]
                ok = (
                    cnt >= p.min_count
                    and unit_pop[r] > 0
                    and cnt >= p.ratio * expected[j]
                    and unit_rate[j] >= cutoff
                    and poisson_sf(int(cnt), float(expected[j])) < p.p_value
                )
                high[r, k] = ok
                stats[(int(r), k)] = (float(rate), float(expected[j]))
    alerts = []
    need = max(1, math.ceil(p.min_weeks_share * len(weeks)))
    for r in np.flatnonzero(high[:, 0] & (high.sum(axis=1) >= need)):
        unit_id, category = int(units_idx[r]), _category(cats[r])
        total = float(weekly[r].sum())
        peer_rate = sum(stats[(int(r), k)][0] for k in range(len(weeks))) / n_days  # per resident a day
        unit_rate = total / unit_pop[r] / n_days
        per10k = unit_rate * 10_000 * 7
        ev = {
            "count": int(total),
            "population": int(unit_pop[r]),
            "days": n_days,
            "rate_per_10k_week": round(per10k, 2),
            "peer_rate_per_10k_week": round(peer_rate * 70_000, 2),
            "ratio": round(unit_rate / peer_rate, 2) if peer_rate > 0 else None,
            "weekly_counts": [int(x) for x in weekly[r][::-1]],
            "weeks_high": int(high[r].sum()),
            "weeks": len(weeks),
            "period": [start.date().isoformat(), day.date().isoformat()],
        }
        ratio_txt = f"，为同级平均的{ev['ratio']:.1f}倍" if ev["ratio"] else ""
        msg = (
            f"【高发】{ctx.name(unit_id)}近{len(weeks)}周“{category.label}”类事件{int(total)}件，"
            f"每万人每周{per10k:.1f}件{ratio_txt}，{len(weeks)}周中{int(high[r].sum())}周明显高于同级"
        )
        alerts.append(
            Alert(
                AlertKind.HIGH_FREQUENCY,
                day.date(),
                unit_id,
                ctx.level_of(unit_id),
                category,
                start.date(),
                day.date(),
                ev,
                msg,
            )
        )
    return alerts


def detect_frequent(ctx: _Context, p: FrequentParams) -> list[Alert]:
    day = ctx.day
    win_start = day - pd.Timedelta(days=p.window_days - 1)
    history = min(p.baseline_days, (win_start - ctx.first_day).days)
    if history < p.min_history_days:
        return []
    table = ctx.window(win_start - pd.Timedelta(days=history), day, p.levels)
    if table.empty:
        return []
    values = table.to_numpy(dtype=float)
    week = values[:, -p.window_days :].sum(axis=1)
    base = values[:, : -p.window_days].mean(axis=1)
    expected = np.maximum(base, p.min_baseline) * p.window_days
    pre = (week >= p.min_count) & (week >= p.ratio * base * p.window_days)
    alerts = []
    for i in np.flatnonzero(pre):
        pv = poisson_sf(int(week[i]), float(expected[i]))
        if pv >= p.p_value:
            continue
        unit_id, category = int(table.index[i][0]), _category(table.index[i][1])
        n = int(week[i])
        ev = {
            "count": n,
            "window_days": p.window_days,
            "expected": round(float(expected[i]), 2),
            "baseline_per_day": round(float(base[i]), 3),
            "baseline_days": history,
            "p_value": pv,
            "daily_counts": [int(x) for x in values[i, -p.window_days :]],
            "period": [win_start.date().isoformat(), day.date().isoformat()],
        }
        msg = (
            f"【多发】{ctx.name(unit_id)}近{p.window_days}天“{category.label}”类事件{n}件，"
            f"{_how_unusual(pv)}（此前{history}天每{p.window_days}天平均{expected[i]:.1f}件）"
        )
        alerts.append(
            Alert(
                AlertKind.FREQUENT,
                day.date(),
                unit_id,
                ctx.level_of(unit_id),
                category,
                win_start.date(),
                day.date(),
                ev,
                msg,
            )
        )
    return alerts


def _depth(level: str) -> int:
    """The level's place from the top (city 0 … grid 4); an unknown level sorts last."""
    try:
        return AdminLevel(level).depth
    except ValueError:
        return len(AdminLevel)


def _pairs(
    x: np.ndarray, y: np.ndarray, group: np.ndarray, radius: float, seeds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with the same ``group`` within ``radius`` metres, i == j included; i only among ``seeds``.

    Points are binned in square cells of side ``radius``; a neighbour can only be in the 3 × 3
    cells around, found by binary search in the sorted cell keys.
    """
    n = len(x)
    empty = np.empty(0, dtype=np.int64)
    if not n:
        return empty, empty
    cx = np.floor(x / radius).astype(np.int64)
    cy = np.floor(y / radius).astype(np.int64)
    cx -= cx.min() - 1
    cy -= cy.min() - 1
    w, h = int(cx.max()) + 2, int(cy.max()) + 2
    g = np.asarray(group, dtype=np.int64)
    key = (g * w + cx) * h + cy
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    # Queries in key order make the binary searches walk memory in order (several times faster).
    src = order if seeds is None else np.asarray(seeds, dtype=np.int64)[np.argsort(key[seeds], kind="stable")]
    out_i, out_j = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            q = (g[src] * w + cx[src] + dx) * h + cy[src] + dy
            lo = np.searchsorted(sorted_key, q, side="left")
            hi = np.searchsorted(sorted_key, q, side="right")
            cnt = hi - lo
            total = int(cnt.sum())
            if not total:
                continue
            i = np.repeat(src, cnt)
            offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            j = order[np.repeat(lo, cnt) + offs]
            out_i.append(i)
            out_j.append(j)
    if not out_i:
        return empty, empty
    i, j = np.concatenate(out_i), np.concatenate(out_j)
    close = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 <= radius * radius
    return i[close], j[close]


#: A stored "reports of the matter nearby" count (:func:`near_counts`) looks this much farther than 顽疾's
#: radius: 顽疾 measures in a UTM zone's metres (scale 0.9996–1.001) and this on a sphere (within 0.5 %),
#: so every pair 顽疾 finds within its radius is counted.
NEAR_MARGIN = 1.02
#: Place cells (:func:`place_cells`): 0.001° of longitude and latitude, wider than 51 m up to 62° north,
#: so two reports within 51 m are in the same or adjacent cells.
CELL_DEGREES = 0.001
_CELL_STRIDE = 400_000
_EARTH_RADIUS_M = 6_371_008.8


def place_cells(lon: Any, lat: Any) -> np.ndarray:
    """Each place's cell key: ``trunc(lon × 1000) × 400000 + trunc(lat × 1000)`` (the stores compute the
    same, :func:`services.rollups.cell_of`)."""
    cx = np.trunc(np.asarray(lon, dtype=float) / CELL_DEGREES).astype(np.int64)
    cy = np.trunc(np.asarray(lat, dtype=float) / CELL_DEGREES).astype(np.int64)
    return cx * _CELL_STRIDE + cy


def cells_around(cells: Iterable[int], reach: int = 1) -> set[int]:
    """The cells within ``reach`` cells (in both directions) of any of ``cells``."""
    out: set[int] = set()
    steps = [dx * _CELL_STRIDE + dy for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)]
    for c in set(int(v) for v in cells):
        out.update(c + s for s in steps)
    return out


def near_counts(lon: Any, lat: Any, matter: Any, radius_m: float) -> np.ndarray:
    """For each place, how many places of the same ``matter`` (itself included) lie within ``radius_m``
    metres on the sphere: what a stored count of 顽疾's possible seeds holds (decision 0038)."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if not len(lon_a):
        return np.zeros(0, dtype=np.int64)
    codes, _ = pd.factorize(pd.Series(np.asarray(matter, dtype=object)), sort=True)
    # Candidates: within one cell's width in degrees (wider than the radius), then the true distance.
    i, j = _pairs(lon_a / CELL_DEGREES, lat_a / CELL_DEGREES, codes, 1.0)
    d = _sphere_m(lon_a[i], lat_a[i], lon_a[j], lat_a[j])
    return np.bincount(i[d <= radius_m], minlength=len(lon_a)).astype(np.int64)


def near_any(lon: Any, lat: Any, to_lon: Any, to_lat: Any, radius_m: float) -> np.ndarray:
    """For each place, whether one of the places ``to_…`` lies within ``radius_m`` metres on the sphere
    :func:`near_counts` measures on (a place without coordinates: never).

    Each place's nearest target by straight-line (chord) distance between points on the unit sphere,
    found in a k-d tree, is its nearest on the sphere too (the chord grows with the arc); that one
    target's great-circle distance (:func:`_sphere_m`, as :func:`near_counts`) decides. A cell-pair
    search, as :func:`near_counts` does, pairs every place with every target in the cells around it: in
    a hot spot (hundreds of reports of a 顽疾 and hundreds of its possible seeds in a few cells) that
    is ~10⁵–10⁶ pairs for an answer of one bit a place (decision 0043)."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    out = np.zeros(len(lon_a), dtype=bool)
    t_lon, t_lat = np.asarray(to_lon, dtype=float), np.asarray(to_lat, dtype=float)
    placed = np.flatnonzero(~(np.isnan(lon_a) | np.isnan(lat_a)))
    targets = ~(np.isnan(t_lon) | np.isnan(t_lat))
    if not len(placed) or not targets.any():
        return out
    t_lon, t_lat = t_lon[targets], t_lat[targets]
    tree = cKDTree(_unit_vectors(t_lon, t_lat))
    # The chord of the radius's arc, a hair wider: the arc's own test below is the exact one.
    chord = 2 * np.sin(radius_m / (2 * _EARTH_RADIUS_M)) * (1 + 1e-9)
    _, nearest = tree.query(_unit_vectors(lon_a[placed], lat_a[placed]), k=1, distance_upper_bound=chord)
    found = nearest < len(t_lon)  # none within the chord: the tree answers len(targets)
    rows, j = placed[found], nearest[found]
    out[rows] = _sphere_m(lon_a[rows], lat_a[rows], t_lon[j], t_lat[j]) <= radius_m
    return out


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The places as points on the unit sphere (x, y, z)."""
    lo, la = np.radians(lon), np.radians(lat)
    c = np.cos(la)
    return np.column_stack([c * np.cos(lo), c * np.sin(lo), np.sin(la)])


def _sphere_m(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    """Great-circle metres between the places (haversine on the mean Earth radius)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _matter_totals(
    r: pd.DataFrame, grid: np.ndarray, matter_key: pd.Series, data: WarningData, day: pd.Timestamp
) -> tuple[pd.Series, pd.Series, pd.Series, int]:
    """The 顽疾 window's reports per grid, per (grid, matter) and per matter, and how many: from the
    counts given for ``day`` (:attr:`WarningData.matter_counts`) or from the reports themselves."""
    mc = data.matter_counts
    if mc is not None and data.matter_day is not None and pd.Timestamp(data.matter_day) == day:
        key = pd.Series(
            [f"{c}|{t}" for c, t in zip(mc["category"].tolist(), mc["title"].tolist(), strict=True)],
            dtype=object,
        )
        n = mc["count"].to_numpy(dtype=np.int64)
        g = mc["grid_id"].to_numpy(dtype=np.int64)
        if data.grid_totals is not None:
            gt = data.grid_totals
            grid_all = (
                pd.Series(gt["count"].to_numpy(dtype=np.int64))
                .groupby(gt["grid_id"].to_numpy(np.int64))
                .sum()
            )
        else:
            grid_all = pd.Series(n).groupby(g).sum()
        grid_matter = (
            pd.Series(n, index=pd.MultiIndex.from_arrays([g, key.to_numpy()])).groupby(level=[0, 1]).sum()
        )
        by_matter = pd.Series(n).groupby(key.to_numpy()).sum()
        return grid_all, grid_matter, by_matter, int(grid_all.sum())
    grid_all = pd.Series(grid).value_counts()
    grid_matter = (
        pd.Series(1, index=pd.MultiIndex.from_arrays([grid, matter_key])).groupby(level=[0, 1]).sum()
    )
    return grid_all, grid_matter, matter_key.value_counts(), len(r)


def _mode(values: Iterable[Any]) -> Any:
    """The most frequent value (missing ones left out), ties to the first seen; None without one.
    A ``Counter`` (its ties in the order first seen, as pandas' ``value_counts`` keeps them): a
    categorical's ``value_counts`` counted every category of the frame (thousands of addresses)."""
    counts = Counter(v for v in values if not pd.isna(v))
    return counts.most_common(1)[0][0] if counts else None


def _reports(data: WarningData, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
    return data.reports_between(start, end)


def detect_chronic(ctx: _Context, data: WarningData, p: ChronicParams) -> list[Alert]:
    day = ctx.day
    start = day - pd.Timedelta(days=7 * p.weeks - 1)
    r = _reports(data, start, day + pd.Timedelta(days=1))
    if r is None or r.empty:
        return []
    if "merged_into_id" in r.columns:
        r = r[r["merged_into_id"].isna()].reset_index(drop=True)
    # "The same matter" is the same title (事项小类) where titles are known, else the category.
    matter = _as_text(r["title"]).tolist() if "title" in r.columns else r["category"].tolist()
    matter_key = pd.Series(
        [f"{c}|{m}" for c, m in zip(r["category"].tolist(), matter, strict=True)], dtype=object
    )
    x, y = r["x_m"].to_numpy(float), r["y_m"].to_numpy(float)
    codes, _ = pd.factorize(matter_key, sort=True)
    i, j = _pairs(x, y, codes, p.radius_m)
    week = ((day - r["reported_at"].dt.normalize()).dt.days // 7).to_numpy()
    t = r["reported_at"].to_numpy()
    n = len(r)
    count = np.bincount(i, minlength=n)
    weeks_of = np.bincount(np.unique(i * p.weeks + week[j]) // p.weeks, minlength=n)
    last = np.full(n, np.datetime64("NaT"), dtype=t.dtype)
    order = np.lexsort((t[j], i))
    ends = (
        np.flatnonzero(np.r_[i[order][1:] != i[order][:-1], True]) if len(i) else np.empty(0, dtype=np.int64)
    )
    last[i[order][ends]] = t[j][order][ends]
    agg = pd.DataFrame({"n": count, "weeks": weeks_of, "last": last})
    recent = day - pd.Timedelta(days=p.recent_days - 1)
    cand = agg[(agg["n"] >= p.min_events) & (agg["weeks"] >= p.min_weeks) & (agg["last"] >= recent)]
    if cand.empty:
        return []
    # Background: is this matter over-represented here compared with the rest of its grid? The
    # place's reports of every matter (busy streets and markets are busy with everything) times the
    # matter's share among the grid's other reports; the place's own reports are left out of that
    # share so a grid whose activity is mostly the 顽疾 itself does not hide it.
    seeds = cand.index.to_numpy()
    grid = r["grid_id"].to_numpy()
    ai, _ = _pairs(x, y, np.zeros(len(r), dtype=np.int64), p.radius_m, seeds=seeds)
    local_all = np.bincount(ai, minlength=n)[seeds].astype(float)
    grid_all, grid_matter, by_matter, total = _matter_totals(r, grid, matter_key, data, day)
    seed_grid = grid[seeds]
    seed_matter = grid_matter.reindex(pd.MultiIndex.from_arrays([seed_grid, matter_key.to_numpy()[seeds]]))
    n_here = cand["n"].to_numpy(dtype=float)
    other_matter = np.maximum(seed_matter.to_numpy(dtype=float) - n_here, 0.0)
    other_all = np.maximum(grid_all.reindex(seed_grid).to_numpy(dtype=float) - local_all, 0.0)
    prior = (by_matter / total).reindex(matter_key.to_numpy()[seeds]).to_numpy(dtype=float)
    share = (other_matter + p.prior_reports * prior) / (other_all + p.prior_reports)
    share = np.minimum(share, 1.0)
    ids = r["id"].to_numpy()
    scored = []
    # Given the place's N reports of every matter (the 顽疾's own included), how many are this matter
    # is binomial at the surroundings' share: P(X ≥ n | Binomial(N, share)). A Poisson tail at N × share
    # ignores that no more than N can be this matter, and where the matter is nearly all a spot
    # reports (8 of its 8 reports, a quiet grid where it is 12 % of the rest) it was ~180× too high
    # (9e-6 against 5e-8): the spot was named only at its 10th report. For a busy spot (n ≪ N) the
    # two tails agree.
    judged = _tail_may_be_below(cand["n"].to_numpy(), local_all, share, p.p_value)
    for seed, n_here, n_weeks, n_all, s_ in zip(
        seeds[judged],
        cand["n"].to_numpy()[judged],
        cand["weeks"].to_numpy()[judged],
        local_all[judged],
        share[judged],
        strict=True,
    ):
        mu = float(n_all * s_)
        pv = _binomial_sf(int(n_here), int(n_all), float(s_), p.p_value)
        if pv is not None and pv < p.p_value:
            scored.append((-int(n_weeks), -int(n_here), int(ids[seed]), int(seed), float(mu), pv))
    by_seed = np.argsort(i, kind="stable")
    starts = np.searchsorted(i[by_seed], np.arange(n + 1))
    used = np.zeros(len(r), dtype=bool)
    alerts = []
    for _, _, _, seed, mu, pv in sorted(scored):
        if used[seed]:
            continue
        members = j[by_seed[starts[seed] : starts[seed + 1]]]
        members = np.sort(members[~used[members]])
        if len(members) < p.min_events or len(set(week[members])) < p.min_weeks:
            continue
        used[members] = True
        sub = r.iloc[members]
        # The place belongs to the grid most of its reports came from (a seed may sit across a border).
        g = int(pd.Series(grid[members]).value_counts().sort_index().idxmax())
        category = _category(r.at[seed, "category"])
        weekly = np.bincount(week[members], minlength=p.weeks)[: p.weeks][::-1]
        lon, lat = float(sub["lon"].mean()), float(sub["lat"].mean())
        title = _mode(sub["title"]) if "title" in sub.columns else None
        address = _mode(sub["address"]) if "address" in sub.columns else None
        n_weeks = int((weekly > 0).sum())
        ev = {
            "count": len(members),
            "weeks_with_events": n_weeks,
            "weeks": p.weeks,
            "weekly_counts": [int(v) for v in weekly],
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "radius_m": p.radius_m,
            "grid_id": g,
            "title": title,
            "address": address,
            "expected_background": round(mu, 3),
            "p_value": pv,
            "first_report": sub["reported_at"].min().isoformat(sep=" "),
            "last_report": sub["reported_at"].max().isoformat(sep=" "),
            "report_ids": [int(v) for v in sub["id"]],
            "place_key": f"{round(lon, 3)},{round(lat, 3)}|{title or category.value}",
            "period": [start.date().isoformat(), day.date().isoformat()],
        }
        where = address or f"{lon:.5f}, {lat:.5f}"
        what = f"“{title}”" if title else f"“{category.label}”类事件"
        msg = (
            f"【顽疾】{ctx.name(g)}（{where}）附近{p.radius_m:.0f}米内近{p.weeks}周反复发生{what}{len(members)}件，"
            f"涉及{n_weeks}周（按周边事件量预期约{mu:.1f}件）"
        )
        alerts.append(
            Alert(
                AlertKind.CHRONIC, day.date(), g, ctx.level_of(g), category, start.date(), day.date(), ev, msg
            )
        )
    return alerts


def detect_mass(ctx: _Context, data: WarningData, p: MassParams) -> list[Alert]:
    day = ctx.day
    window = pd.Timedelta(hours=p.window_hours)
    r = _reports(data, day - window, day + pd.Timedelta(days=1))
    if r is None or r.empty:
        return []
    on_day = (r["reported_at"] >= day).to_numpy()
    x, y = r["x_m"].to_numpy(float), r["y_m"].to_numpy(float)
    cat_codes, _ = pd.factorize(r["category"], sort=True)
    i, j = _pairs(x, y, cat_codes, p.radius_m)
    t = r["reported_at"].to_numpy()
    # A window ends at a report of the day and reaches back ``window_hours``.
    keep = on_day[i] & (t[j] <= t[i]) & (t[j] >= t[i] - window.to_timedelta64())
    i, j = i[keep], j[keep]
    counts = np.bincount(i, minlength=len(r))
    ids = r["id"].to_numpy()
    merged = r["merged_into_id"].to_numpy() if "merged_into_id" in r.columns else np.full(len(r), np.nan)
    reporters = (
        r["reporter_count"].fillna(1).to_numpy(dtype=int)
        if "reporter_count" in r.columns
        else np.ones(len(r), int)
    )
    order = sorted(np.flatnonzero(counts >= p.min_reports), key=lambda s: (-counts[s], t[s], ids[s]))
    # Each seed's neighbours in the order found (a stable sort by seed keeps it).
    by_seed = np.argsort(i, kind="stable")
    starts = np.searchsorted(i[by_seed], np.arange(len(r) + 1))
    used = np.zeros(len(r), dtype=bool)
    alerts = []
    groups: list[np.ndarray] = []
    for seed in order:
        if used[seed]:
            continue
        members = np.array([m for m in j[by_seed[starts[seed] : starts[seed + 1]]] if not used[m]])
        if len(members) < p.min_reports:
            continue
        used[members] = True
        groups.append(members)
    # One (merged) event with many reporters is a 群发 by itself; fold it into its cluster if any.
    big = [k for k in np.flatnonzero(on_day & (reporters >= p.min_reporters) & pd.isna(merged))]
    for k in big:
        if not any(k in g or ids[k] in set(merged[g]) for g in groups):
            groups.append(np.array([k]))
    for members in groups:
        sub = r.iloc[members]
        main = [m for m in members if pd.isna(merged[m])]
        head = max(main or list(members), key=lambda m: (reporters[m], -ids[m]))
        max_reporters = int(reporters[head])
        n_reports = len(members)
        people = max(n_reports, max_reporters)
        g = int(r.at[head, "grid_id"])
        category = _category(r.at[head, "category"])
        title = _mode(sub["title"]) if "title" in sub.columns else None
        address = _mode(sub["address"]) if "address" in sub.columns else None
        lon, lat = float(sub["lon"].mean()), float(sub["lat"].mean())
        ev = {
            "reports": n_reports,
            "max_reporter_count": max_reporters,
            "event_id": int(ids[head]),
            "report_ids": [int(v) for v in sub["id"]],
            "lon": round(lon, 6),
            "lat": round(lat, 6),
            "radius_m": p.radius_m,
            "window_hours": p.window_hours,
            "title": title,
            "address": address,
            "first_report": sub["reported_at"].min().isoformat(sep=" "),
            "last_report": sub["reported_at"].max().isoformat(sep=" "),
            "place_key": f"{round(lon, 3)},{round(lat, 3)}",
            "period": [day.date().isoformat()] * 2,
        }
        what = f"“{title}”" if title else f"“{category.label}”类事项"
        where = f"（{address}附近）" if address else ""
        detail = (
            f"{p.window_hours:g}小时内{p.radius_m:.0f}米范围报告{n_reports}次"
            if n_reports > 1
            else "合并为一件"
        )
        msg = f"【群发】{ctx.name(g)}{where}{what}{people}人反映（{detail}）"
        alerts.append(
            Alert(AlertKind.MASS, day.date(), g, ctx.level_of(g), category, day.date(), day.date(), ev, msg)
        )
    return alerts


def detect_emerging(ctx: _Context, p: EmergingParams) -> list[Alert]:
    day = ctx.day
    win_start = day - pd.Timedelta(days=p.window_days - 1)
    quiet_start = win_start - pd.Timedelta(days=p.quiet_days)
    weeks_needed = p.growth_weeks + p.baseline_weeks
    span_start = min(quiet_start, day - pd.Timedelta(days=7 * weeks_needed - 1))
    table = ctx.window(max(span_start, ctx.first_day), day, p.levels)
    if table.empty:
        return []
    table = table.reindex(columns=pd.date_range(span_start, day, freq="D"), fill_value=0)
    values = table.to_numpy(dtype=float)
    days = table.columns
    recent = values[:, days >= win_start].sum(axis=1)
    quiet = values[:, (days >= quiet_start) & (days < win_start)].sum(axis=1)
    # Newness needs a quiet period of history: the full one, or since the data began if long enough.
    quiet_seen = min(p.quiet_days, (win_start - ctx.first_day).days)
    alerts = []
    found: set[int] = set()
    if quiet_seen >= p.min_quiet_days:
        for i in np.flatnonzero((recent >= p.min_count) & (quiet == 0)):
            found.add(int(i))
            unit_id, category = int(table.index[i][0]), _category(table.index[i][1])
            n = int(recent[i])
            where = _children_with(ctx, unit_id, category.value, win_start, day)
            ev = {
                "rule": "new",
                "count": n,
                "window_days": p.window_days,
                "quiet_days": quiet_seen,
                "daily_counts": [int(v) for v in values[i, days >= win_start]],
                "where": where,
                "period": [win_start.date().isoformat(), day.date().isoformat()],
            }
            tail = f"，集中在{'、'.join(w['name'] for w in where[:3])}" if where else ""
            msg = (
                f"【新苗头】{ctx.name(unit_id)}此前{quiet_seen}天无“{category.label}”类事件，"
                f"近{p.window_days}天出现{n}件{tail}"
            )
            alerts.append(
                Alert(
                    AlertKind.EMERGING,
                    day.date(),
                    unit_id,
                    ctx.level_of(unit_id),
                    category,
                    win_start.date(),
                    day.date(),
                    ev,
                    msg,
                )
            )
    # Growth: the last weeks each well above the one before, the last far above the usual week.
    if ctx.first_day <= day - pd.Timedelta(days=7 * weeks_needed - 1):
        n_days = values.shape[1]
        weekly = np.stack(
            [values[:, n_days - 7 * (k + 1) : n_days - 7 * k].sum(axis=1) for k in range(weeks_needed)],
            axis=1,
        )
        last = weekly[:, 0]
        growing = np.ones(len(values), dtype=bool)
        for k in range(p.growth_weeks - 1):
            growing &= weekly[:, k] >= p.growth_factor * np.maximum(weekly[:, k + 1], 1)
        base = weekly[:, p.growth_weeks :].mean(axis=1)
        season = _peer_growth(ctx, table.index, last, base, p)
        pre = growing & (last >= p.growth_min_count) & (last >= p.growth_ratio * base * season)
        for i in np.flatnonzero(pre):
            if int(i) in found:
                continue
            pv = poisson_sf(int(last[i]), max(float(base[i]), 0.5) * float(season[i]))
            if pv >= p.p_value:
                continue
            unit_id, category = int(table.index[i][0]), _category(table.index[i][1])
            trend = [int(v) for v in weekly[i, : p.growth_weeks][::-1]]
            period_start = day - pd.Timedelta(days=7 * p.growth_weeks - 1)
            ev = {
                "rule": "growth",
                "weekly_counts": trend,
                "baseline_per_week": round(float(base[i]), 2),
                "peer_growth": round(float(season[i]), 2),
                "baseline_weeks": p.baseline_weeks,
                "p_value": pv,
                "where": _children_with(ctx, unit_id, category.value, win_start, day),
                "period": [period_start.date().isoformat(), day.date().isoformat()],
            }
            msg = (
                f"【新苗头】{ctx.name(unit_id)}“{category.label}”类事件连续{p.growth_weeks}周快速增长"
                f"（每周{'→'.join(map(str, trend))}件，此前周均{base[i]:.1f}件）"
            )
            alerts.append(
                Alert(
                    AlertKind.EMERGING,
                    day.date(),
                    unit_id,
                    ctx.level_of(unit_id),
                    category,
                    period_start.date(),
                    day.date(),
                    ev,
                    msg,
                )
            )
    return alerts


def _peer_growth(
    ctx: _Context, index: pd.MultiIndex, last: np.ndarray, base: np.ndarray, p: EmergingParams
) -> np.ndarray:
    """Per series, how much the same category grew among the unit's peers (last week ÷ their usual
    week, at least 1): its siblings with data in the category when there are ``min_peers`` of them;
    units with fewer such siblings are pooled with each other."""
    units_idx = index.get_level_values(0).to_numpy()
    cats = index.get_level_values(1).to_numpy()
    parent = ctx.parent.reindex(units_idx).fillna(-1).to_numpy()
    frame = pd.DataFrame({"parent": parent, "unit": units_idx, "cat": cats, "last": last, "base": base})
    siblings = frame.groupby(["parent", "cat"])["unit"].transform("size").to_numpy()
    frame["group"] = np.where(siblings >= p.min_peers, parent, -2)
    sums = frame.groupby(["group", "cat"])[["last", "base"]].transform("sum")
    rest_last = sums["last"].to_numpy() - last
    rest_base = sums["base"].to_numpy() - base
    ok = rest_base >= p.min_peer_baseline
    growth = np.divide(rest_last, rest_base, out=np.ones_like(rest_last, dtype=float), where=ok)
    return np.maximum(growth, 1.0)


def _children_with(
    ctx: _Context, unit_id: int, category: str, start: pd.Timestamp, end: pd.Timestamp
) -> list[dict[str, Any]]:
    """The unit's children (when counted) with events of ``category`` in [start, end], most first."""
    children = ctx.parent.index[ctx.parent == unit_id]
    c = ctx.counts
    c = c[(c["day"] >= start) & (c["day"] <= end) & (c["category"] == category) & c["unit_id"].isin(children)]
    s = c.groupby("unit_id")["count"].sum().sort_values(ascending=False, kind="stable")
    return [{"unit_id": int(u), "name": ctx.name(int(u)), "count": int(n)} for u, n in s.items()]


def _suppress_ancestors(ctx: _Context, alerts: list[Alert]) -> list[Alert]:
    kinds = {AlertKind.SPIKE, AlertKind.FREQUENT}
    covered: set[tuple[AlertKind, int, EventCategory]] = set()
    for a in alerts:
        if a.kind in kinds:
            for anc in ctx.ancestors(a.unit_id):
                covered.add((a.kind, anc, a.category))
    return [a for a in alerts if a.kind not in kinds or (a.kind, a.unit_id, a.category) not in covered]


def detect(
    day: date | datetime | pd.Timestamp, data: WarningData, params: WarningParams = DEFAULT_PARAMS
) -> list[Alert]:
    """Every warning for ``day`` (judged on that day's complete data and what came before), in a fixed order.

    Deterministic: the same data and parameters give the same alerts in the same order (kind, level
    from the top, unit, category, evidence place).
    """
    ctx = _Context(_day(day), data)
    alerts = (
        detect_emerging(ctx, params.emerging)
        + detect_high_frequency(ctx, params.high_frequency)
        + detect_spikes(ctx, params.spike)
        + detect_chronic(ctx, data, params.chronic)
        + detect_frequent(ctx, params.frequent)
        + detect_mass(ctx, data, params.mass)
    )
    if params.suppress_ancestors:
        alerts = _suppress_ancestors(ctx, alerts)
    return sorted(
        alerts,
        key=lambda a: (
            KIND_ORDER[a.kind],
            _depth(a.unit_level),
            a.unit_id,
            a.category.value,
            str(a.evidence.get("place_key", "")),
        ),
    )


__all__ = [
    "DEFAULT_PARAMS",
    "Alert",
    "AlertKind",
    "ChronicParams",
    "EmergingParams",
    "FrequentParams",
    "HighFrequencyParams",
    "MassParams",
    "SpikeParams",
    "WarningData",
    "WarningParams",
    "binomial_sf",
    "cells_around",
    "counts_at_levels",
    "daily_counts",
    "detect",
    "near_counts",
    "place_cells",
    "poisson_sf",
]
