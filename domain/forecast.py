"""Hazard forecast (隐患预测, decision 0030): the chance that a visit in the next 30 days finds a hazard.

Pure: plain records in (frames holding only columns a real store has, :data:`STORE_COLUMNS`, plus the
positions in metres the caller projected), features as of a cut-off out, a scikit-learn model fitted
and validated on a time split, and an explanation per venue in Chinese with numbers.

Leak-free by construction: every feature at cut-off ``c`` reads only records strictly before ``c``
(inspections and events before ``c`` 00:00, hazards found before ``c``, a rectification counts only
if it happened before ``c``); labels read ``[c, c + horizon)``.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from domain.vocabulary import EventCategory, HazardSeverity, InspectionResult, SafetyCode, VenueCategory

HORIZON_DAYS = 30
RADIUS_M = 300.0
WINDOWS = (30, 90)
#: Days between two training cut-offs (each adds one row per visited venue).
CUTOFF_STEP_DAYS = 7
#: The columns read from each store table; ``x_m``/``y_m`` are the caller's projection of lon/lat.
STORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "venues": ("id", "category", "grid_id", "created_at", "lon", "lat"),
    "safety_code_changes": ("venue_id", "changed_at", "to_code"),
    "inspections": ("venue_id", "inspected_at", "result"),
    "hazards": ("venue_id", "found_on", "severity", "deadline", "rectified_on"),
    "events": ("reported_at", "category", "grid_id", "lon", "lat"),
}
PROJECTED = ("x_m", "y_m")
#: Per-venue aggregates of the inspections before a cut-off (:func:`visit_stats`); the visit days are
#: store values (timestamps or text) or whole days since the epoch.
VISIT_STATS = ("inspections_all", "inspections_90", "fails_all", "last_visit", "first_visit")

#: Event categories grouped as the forecast counts them (the vocabulary has no separate 消防).
EVENT_GROUPS: dict[str, tuple[EventCategory, ...]] = {
    "safety": (EventCategory.WORK_SAFETY, EventCategory.NATURAL_HAZARD),
    "security": (EventCategory.PUBLIC_SECURITY, EventCategory.DISPUTE),
    "market": (EventCategory.MARKET,),
    "other": (EventCategory.URBAN, EventCategory.ENVIRONMENT, EventCategory.LIVELIHOOD),
}
GROUP_LABEL = {"safety": "安全生产类", "security": "治安类", "market": "市场监管类", "other": "其他"}
CATEGORIES = list(VenueCategory)
CODE_RANK = {SafetyCode.RED.value: 0, SafetyCode.YELLOW.value: 1, SafetyCode.GREEN.value: 2}

BASE_FEATURES = [
    "category", "code", "worst_code", "age_days",
    "inspections_90", "inspections_all", "fails_all",
    "hazards_90", "hazards_all", "majors_all", "hazards_per_100_days",
    "days_since_hazard", "days_since_visit",
    "open_hazards", "overdue_hazards", "rectify_days_mean",
    "month",
]  # fmt: skip
EVENT_FEATURES = [
    f"events_{where}{w}_{g}" for where in ("near", "grid") for w in WINDOWS for g in EVENT_GROUPS
]
FEATURES = BASE_FEATURES + EVENT_FEATURES

#: Features explained together (one line of "为什么优先" each).
EXPLAIN_GROUPS: dict[str, tuple[str, ...]] = {
    "category": ("category",),
    "code": ("code", "worst_code"),
    "hazards": ("hazards_90", "hazards_all", "majors_all", "hazards_per_100_days"),
    "days_since_hazard": ("days_since_hazard",),
    "visits": ("inspections_90", "inspections_all", "fails_all", "days_since_visit"),
    "rectify": ("open_hazards", "overdue_hazards", "rectify_days_mean"),
    "near": tuple(f for f in EVENT_FEATURES if f.startswith("events_near")),
    "grid": tuple(f for f in EVENT_FEATURES if f.startswith("events_grid")),
    "season": ("month",),
    "age": ("age_days",),
}


@dataclass(frozen=True)
class History:
    """The store's records the forecast may read, as frames (extra columns are dropped on entry)."""

    venues: pd.DataFrame
    code_changes: pd.DataFrame
    inspections: pd.DataFrame
    hazards: pd.DataFrame
    events: pd.DataFrame

    @classmethod
    def of(
        cls,
        venues: pd.DataFrame,
        code_changes: pd.DataFrame,
        inspections: pd.DataFrame,
        hazards: pd.DataFrame,
        events: pd.DataFrame,
    ) -> History:
        """Keep only :data:`STORE_COLUMNS` (and the projected metres of venues and events)."""

        def pick(frame: pd.DataFrame, table: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
            cols = [*STORE_COLUMNS[table], *extra]
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"{table} 缺少列：{'、'.join(missing)}")
            return frame[cols].copy()

        return cls(
            pick(venues, "venues", PROJECTED),
            pick(code_changes, "safety_code_changes"),
            pick(inspections, "inspections"),
            pick(hazards, "hazards"),
            pick(events, "events", PROJECTED),
        )


def _ts(day: date) -> pd.Timestamp:
    return pd.Timestamp(datetime.combine(day, datetime.min.time()))


def _days(values: pd.Series) -> np.ndarray:
    """Dates or datetimes as whole days since the epoch (float, NaN for missing)."""
    ts = pd.to_datetime(values)
    out = (ts - pd.Timestamp(0)).dt.days.to_numpy(dtype=float)
    return out


def _day_numbers(values: pd.Series) -> np.ndarray:
    """Whole days since the epoch as they are, or store dates/timestamps read as such (:func:`_days`)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    return _days(values)


def _count(ids: np.ndarray, index: pd.Index) -> np.ndarray:
    if len(ids) == 0:
        return np.zeros(len(index))
    return pd.Series(ids).value_counts().reindex(index, fill_value=0).to_numpy(dtype=float)


def _per_value(values: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """``fn`` applied once per distinct value (enum members or their values), not once per row."""
    return values.map({u: fn(u) for u in pd.unique(values)})


def _near_counts(vx: np.ndarray, vy: np.ndarray, ex: np.ndarray, ey: np.ndarray) -> np.ndarray:
    """Events within :data:`RADIUS_M` of each venue."""
    if len(ex) == 0:
        return np.zeros(len(vx))
    from scipy.spatial import cKDTree  # scikit-learn's own dependency

    tree = cKDTree(np.column_stack([ex, ey]))
    return tree.query_ball_point(np.column_stack([vx, vy]), RADIUS_M, return_length=True).astype(float)


def visit_stats(inspections: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """Per venue (index: venue id), the inspections before ``cutoff``: :data:`VISIT_STATS` columns.

    The store can compute the same in one grouped query (the scoring path does, rather than reading a
    million inspections); ``last_visit``/``first_visit`` are the store's values, read as whole days.
    """
    c = float((_ts(cutoff) - pd.Timestamp(0)).days)
    at = _days(inspections["inspected_at"])
    before = at < c
    vid = inspections["venue_id"].to_numpy(dtype=np.int64)[before]
    failed = (
        _per_value(inspections["result"], lambda r: InspectionResult(r).value) == InspectionResult.FAIL.value
    ).to_numpy()[before]
    frame = pd.DataFrame(
        {"venue_id": vid, "all": 1.0, "recent": (at[before] >= c - 90).astype(float),
         "fail": failed.astype(float)}
    )  # fmt: skip
    g = frame.groupby("venue_id")
    out = pd.DataFrame(
        {
            "inspections_all": g["all"].sum(),
            "inspections_90": g["recent"].sum(),
            "fails_all": g["fail"].sum(),
            "last_visit": pd.Series(at[before]).groupby(vid).max(),
            "first_visit": pd.Series(at[before]).groupby(vid).min(),
        }
    )
    out.index.name = "venue_id"
    return out[list(VISIT_STATS)]


def _near_counts_by(
    vx: np.ndarray, vy: np.ndarray, ex: np.ndarray, ey: np.ndarray, bucket: np.ndarray, buckets: int
) -> np.ndarray:
    """Per venue and bucket (``bucket`` of each event, ``0 ≤ bucket < buckets``): the events within
    :data:`RADIUS_M`. Each event is queried once, in its own bucket (a pair list would be tens of
    millions at city scale; counting per bucket is not)."""
    out = np.zeros((len(vx), buckets))
    for k in range(buckets):
        sel = bucket == k
        out[:, k] = _near_counts(vx, vy, ex[sel], ey[sel])
    return out


def features(history: History, cutoff: date, visits: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per venue (index: venue id), :data:`FEATURES` as of ``cutoff`` (records before it only).

    ``visits``: :func:`visit_stats` as of ``cutoff`` computed by the store (then ``history.inspections``
    is not read).
    """
    v = history.venues
    idx = pd.Index(v["id"].to_numpy(dtype=np.int64), name="venue_id")
    c = float((_ts(cutoff) - pd.Timestamp(0)).days)
    out = pd.DataFrame(index=idx)
    cat_pos = {cat.value: i for i, cat in enumerate(CATEGORIES)}
    out["category"] = _per_value(v["category"], lambda x: cat_pos[VenueCategory(x).value]).to_numpy(
        dtype=float
    )
    out["age_days"] = np.maximum(c - _days(v["created_at"]), 0)

    ch = history.code_changes
    ch = ch[_days(ch["changed_at"]) < c].sort_values("changed_at", kind="stable")
    rank = _per_value(ch["to_code"], lambda x: CODE_RANK[SafetyCode(x).value])
    out["code"] = rank.groupby(ch["venue_id"]).last().reindex(idx).to_numpy(dtype=float)
    out["worst_code"] = rank.groupby(ch["venue_id"]).min().reindex(idx).to_numpy(dtype=float)

    vs = (visit_stats(history.inspections, cutoff) if visits is None else visits).reindex(idx)
    for col in ("inspections_all", "inspections_90", "fails_all"):
        out[col] = vs[col].fillna(0).to_numpy(dtype=float)
    out["days_since_visit"] = c - _day_numbers(vs["last_visit"])
    watched = np.maximum(
        c - _day_numbers(vs["first_visit"]), 1.0
    )  # days the history has watched the venue (NaN: never)

    hz = history.hazards
    found = _days(hz["found_on"])
    hb = found < c
    hvid = hz["venue_id"].to_numpy(dtype=np.int64)
    major = (
        _per_value(hz["severity"], lambda s: HazardSeverity(s).value) == HazardSeverity.MAJOR.value
    ).to_numpy()
    rect = _days(hz["rectified_on"])
    deadline = _days(hz["deadline"])
    fixed = hb & (rect < c)  # NaN compares False: unrectified stays open
    open_ = hb & ~fixed
    out["hazards_all"] = _count(hvid[hb], idx)
    out["hazards_90"] = _count(hvid[hb & (found >= c - 90)], idx)
    out["majors_all"] = _count(hvid[hb & major], idx)
    out["hazards_per_100_days"] = 100.0 * out["hazards_all"].to_numpy() / watched
    out["open_hazards"] = _count(hvid[open_], idx)
    out["overdue_hazards"] = _count(hvid[open_ & (deadline < c)], idx)
    last_hz = pd.Series(found[hb]).groupby(hvid[hb]).max().reindex(idx)
    out["days_since_hazard"] = c - last_hz.to_numpy(dtype=float)
    delay = pd.Series((rect - found)[fixed]).groupby(hvid[fixed]).mean().reindex(idx)
    out["rectify_days_mean"] = delay.to_numpy(dtype=float)
    out["month"] = float(cutoff.month)

    ev = history.events
    et = _days(ev["reported_at"])
    group_of = {cat.value: g for g, cats in EVENT_GROUPS.items() for cat in cats}
    eg = _per_value(ev["category"], lambda x: group_of[EventCategory(x).value]).to_numpy(dtype=object)
    egrid = ev["grid_id"].to_numpy(dtype=np.int64)
    ex, ey = ev["x_m"].to_numpy(dtype=float), ev["y_m"].to_numpy(dtype=float)
    vx, vy = v["x_m"].to_numpy(dtype=float), v["y_m"].to_numpy(dtype=float)
    vgrid = v["grid_id"].to_numpy(dtype=np.int64)
    # Nearby events by bucket: each recent event counted once, in its group's shortest window holding
    # it; a window's count adds its bucket and the shorter ones' (the longer windows' queries no longer
    # go over the shorter ones' events again).
    windows, groups = sorted(WINDOWS), list(EVENT_GROUPS)
    recent = (et < c) & (et >= c - windows[-1])
    shortest = np.searchsorted(np.array(windows, dtype=float), c - et[recent], side="left")
    gpos = pd.Series(eg[recent]).map({g: i for i, g in enumerate(groups)}).to_numpy(dtype=np.int64)
    buckets = _near_counts_by(
        vx, vy, ex[recent], ey[recent], gpos * len(windows) + shortest, len(groups) * len(windows)
    )
    for k, w in enumerate(windows):
        inw = (et < c) & (et >= c - w)
        for i, g in enumerate(groups):
            out[f"events_near{w}_{g}"] = buckets[:, i * len(windows) : i * len(windows) + k + 1].sum(axis=1)
            per_grid = pd.Series(egrid[inw & (eg == g)]).value_counts()
            out[f"events_grid{w}_{g}"] = pd.Series(vgrid).map(per_grid).fillna(0).to_numpy(dtype=float)
    return out[FEATURES]


def labels(history: History, cutoff: date, horizon: int = HORIZON_DAYS) -> pd.DataFrame:
    """Per venue visited in ``[cutoff, cutoff + horizon)``: ``found`` (a hazard found then, 0/1) and
    ``hazards`` (how many)."""
    c = float((_ts(cutoff) - pd.Timestamp(0)).days)
    ins = history.inspections
    at = _days(ins["inspected_at"])
    visited = np.unique(ins["venue_id"].to_numpy(dtype=np.int64)[(at >= c) & (at < c + horizon)])
    hz = history.hazards
    found = _days(hz["found_on"])
    hvid = hz["venue_id"].to_numpy(dtype=np.int64)[(found >= c) & (found < c + horizon)]
    counts = _count(hvid, pd.Index(visited))
    return pd.DataFrame({"found": (counts > 0).astype(int), "hazards": counts}, index=pd.Index(visited))


def dataset(history: History, cutoffs: Sequence[date]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and labels of every visited venue at each cut-off, stacked (column ``cutoff`` added)."""
    xs, ys = [], []
    for cut in cutoffs:
        y = labels(history, cut)
        x = features(history, cut).reindex(y.index)
        xs.append(x.assign(cutoff=cut))
        ys.append(y.assign(cutoff=cut))
    return pd.concat(xs), pd.concat(ys)


def severity_weight(history: History, cutoff: date) -> pd.Series:
    """Expected weight of a hazard found (major 2, general 1), smoothed towards the venue category's."""
    hz = history.hazards
    hz = hz[_days(hz["found_on"]) < (_ts(cutoff) - pd.Timestamp(0)).days]
    major = _per_value(hz["severity"], lambda s: HazardSeverity(s).value) == HazardSeverity.MAJOR.value
    per = pd.DataFrame({"venue_id": hz["venue_id"], "major": major.astype(float)}).groupby("venue_id")[
        "major"
    ]
    prior = float(major.mean()) if len(major) else 0.2
    k = 2.0
    idx = pd.Index(history.venues["id"].to_numpy(dtype=np.int64))
    share = ((per.sum() + k * prior) / (per.count() + k)).reindex(idx).fillna(prior)
    return 1.0 + share


# ---------------------------------------------------------------------------------------------
# Model, validation
# ---------------------------------------------------------------------------------------------


def new_estimator() -> Any:  # a HistGradientBoostingClassifier
    """The model (decision 0030): gradient-boosted trees, categorical venue category, NaN as "never"."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.05,
        max_leaf_nodes=7,
        min_samples_leaf=200,
        l2_regularization=5.0,
        categorical_features=[FEATURES.index("category")],
        early_stopping=False,
        random_state=0,
    )


def _one_thread() -> Any:
    """OpenMP limited to one thread: on a small shared server its spinning threads made a prediction of
    11,000 rows take 1.1 s instead of 0.07 s (measured under load; decision 0030)."""
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    return threadpool_limits(1)


def fit(x: pd.DataFrame, y: pd.Series) -> Any:
    model = new_estimator()
    with _one_thread():
        model.fit(x[FEATURES].to_numpy(dtype=float), y.to_numpy(dtype=int))
    return model


def predict(model: Any, x: pd.DataFrame) -> np.ndarray:
    with _one_thread():
        return model.predict_proba(x[FEATURES].to_numpy(dtype=float))[:, 1]


def dumps(model: Any) -> bytes:
    buf = io.BytesIO()
    pickle.dump(model, buf, protocol=pickle.HIGHEST_PROTOCOL)
    return buf.getvalue()


def loads(blob: bytes) -> Any:
    """Only for blobs this product wrote into its own store (pickle runs code)."""
    return pickle.loads(blob)  # own store only (decision 0030)


def capture(scores: np.ndarray, hazards: np.ndarray, share: float) -> float:
    """Share of all ``hazards`` at the top ``share`` of venues by score (ties broken by order)."""
    total = float(np.sum(hazards))
    if total == 0 or len(scores) == 0:
        return math.nan
    k = max(1, round(len(scores) * share))
    top = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return float(np.sum(np.asarray(hazards)[top]) / total)


def auc(scores: np.ndarray, found: np.ndarray) -> float:
    """Area under the ROC curve (the Mann–Whitney statistic, ties counted half)."""
    y = np.asarray(found).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def reliability(prob: np.ndarray, found: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-count bins of predicted probability: mean predicted, observed rate, venues."""
    order = np.argsort(prob, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part):
            out.append(
                {
                    "predicted": round(float(np.mean(prob[part])), 4),
                    "observed": round(float(np.mean(found[part])), 4),
                    "venues": len(part),
                }
            )
    return out


@dataclass(frozen=True)
class Validation:
    cutoff: date  # validated on [cutoff, cutoff + horizon)
    rows_train: int
    rows_valid: int
    positives_valid: int
    auc: float
    brier: float
    capture_10: float
    capture_20: float
    colour_auc: float  # the 平安码 colour alone as a ranking (red first), for comparison
    colour_capture_10: float
    base_rate: float
    reliability: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["cutoff"] = self.cutoff.isoformat()
        return {k: (round(x, 4) if isinstance(x, float) else x) for k, x in d.items()}


@dataclass(frozen=True)
class Trained:
    model: Any
    cutoff: date  # the last day of history the model learned from (exclusive bound)
    validation: Validation
    medians: dict[str, float]  # training medians: the reference of the explanation


def training_cutoffs(first: date, last: date, horizon: int = HORIZON_DAYS) -> tuple[list[date], date]:
    """Train cut-offs (weekly, every label window ending by the validation cut-off) and the validation
    cut-off (``last − horizon``); ``first`` and ``last`` bound the inspection history."""
    valid = last - timedelta(days=horizon)
    cuts = []
    c = valid - timedelta(days=horizon)
    while c >= first + timedelta(days=14):
        cuts.append(c)
        c -= timedelta(days=CUTOFF_STEP_DAYS)
    return sorted(cuts), valid


def train(history: History, first: date, last: date) -> Trained:
    """Fit on cut-offs whose 30-day label windows end by ``last − 30``; validate on the 30 days after."""
    cuts, valid = training_cutoffs(first, last)
    if not cuts:
        raise ValueError("检查记录不足：至少需要约 75 天的检查历史才能训练预测模型")
    x, y = dataset(history, cuts)
    if y["found"].nunique() < 2:
        raise ValueError("训练期内没有发现隐患（或全部发现），无法训练预测模型")
    model = fit(x, y["found"])
    xv, yv = dataset(history, [valid])
    p = predict(model, xv)
    f = yv["found"].to_numpy()
    colour = -xv["code"].fillna(2).to_numpy()
    medians = {k: float(x[k].median()) if x[k].notna().any() else math.nan for k in FEATURES}
    val = Validation(
        valid, len(x), len(xv), int(f.sum()),
        auc(p, f), float(np.mean((p - f) ** 2)) if len(f) else math.nan,
        capture(p, yv["hazards"].to_numpy(), 0.1), capture(p, yv["hazards"].to_numpy(), 0.2),
        auc(colour, f), capture(colour, yv["hazards"].to_numpy(), 0.1),
        float(f.mean()) if len(f) else math.nan, reliability(p, f),
    )  # fmt: skip
    return Trained(model, valid, val, medians)


# ---------------------------------------------------------------------------------------------
# Explanation: "为什么优先"
# ---------------------------------------------------------------------------------------------


def contributions(model: Any, x: pd.DataFrame, medians: Mapping[str, float]) -> pd.DataFrame:
    """Per venue and :data:`EXPLAIN_GROUPS` group: the probability minus the probability with the
    group's features set to their training medians (positive: this raises the forecast)."""
    return predict_and_contributions(model, x, medians)[1]


def predict_and_contributions(
    model: Any, x: pd.DataFrame, medians: Mapping[str, float]
) -> tuple[np.ndarray, pd.DataFrame]:
    """:func:`predict` and :func:`contributions` together, the same values as each alone.

    With a fitted gradient-boosted model each tree's leaf is read once per venue; a group's alternative
    re-reads only the trees that split on the group's features (a tree that does not gives the same leaf)
    and sums the leaves in the model's own order, so every probability is the model's to the last bit.
    """
    trees = _Trees.of(model)
    a = x[FEATURES].to_numpy(dtype=float)
    if trees is None:
        base = predict(model, x)
    else:
        with _one_thread():
            leaves = trees.leaves(a)
            base = trees.proba(leaves)
    out = pd.DataFrame(index=x.index)
    for g, cols in EXPLAIN_GROUPS.items():
        med = np.array([medians.get(col, math.nan) for col in cols], dtype=float)
        pos = [FEATURES.index(col) for col in cols]
        vals = a[:, pos]
        # A venue whose group already sits at the medians is predicted the same: 0, not predicted again
        # (most venues have no hazard and no nearby event; at city scale this halves the work).
        moved = ~((vals == med) | (np.isnan(vals) & np.isnan(med))).all(axis=1)
        diff = np.zeros(len(x))
        if moved.any():
            alt = a[moved].copy()
            alt[:, pos] = med
            if trees is None:
                diff[moved] = base[moved] - predict(model, pd.DataFrame(alt, columns=FEATURES))
            else:
                with _one_thread():
                    diff[moved] = base[moved] - trees.proba(trees.leaves(alt, leaves[moved], pos))
        out[g] = diff
    return base, out


class _Trees:
    """A fitted HistGradientBoostingClassifier's trees, read one by one (its own prediction, unrolled)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.predictors = [p[0] for p in model._predictors]
        self.bitsets, self.f_idx_map = model._bin_mapper.make_known_categories_bitsets()

    @classmethod
    def of(cls, model: Any) -> _Trees | None:
        """None unless ``model`` is a fitted binary HistGradientBoostingClassifier (then the plain path)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        if not isinstance(model, HistGradientBoostingClassifier) or not hasattr(model, "_predictors"):
            return None
        if model.n_trees_per_iteration_ != 1 or any(len(p) != 1 for p in model._predictors):
            return None
        return cls(model)

    def leaves(
        self, a: np.ndarray, same: np.ndarray | None = None, changed: Sequence[int] = ()
    ) -> np.ndarray:
        """Each tree's value per row of ``a`` (rows × trees); with ``same`` (the leaves of rows differing
        from ``a`` only in the features ``changed``, a copy this overwrites), only the trees splitting on
        those are read again."""
        xp = self.model._preprocess_X(a, reset=False)
        out = np.empty((len(a), len(self.predictors))) if same is None else same  # a copy already
        for t, p in enumerate(self.predictors):
            if same is not None:
                splits = p.nodes["feature_idx"][~p.nodes["is_leaf"].astype(bool)]
                if not np.isin(splits, changed).any():
                    continue
            out[:, t] = p.predict(xp, self.bitsets, self.f_idx_map, 1)
        return out

    def proba(self, leaves: np.ndarray) -> np.ndarray:
        """The model's probability from its trees' values, summed in its own order."""
        m = self.model
        raw = np.zeros(shape=(len(leaves), 1), dtype=m._baseline_prediction.dtype, order="F")
        raw += m._baseline_prediction
        for t in range(leaves.shape[1]):
            raw[:, 0] += leaves[:, t]
        return np.asarray(m._loss.predict_proba(raw))[:, 1]


def _n(x: float) -> str:
    return "无" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:g}"


def describe(group: str, row: Mapping[str, float]) -> str:
    """The facts behind one group for one venue, in Chinese with numbers."""
    if group == "category":
        return f"场所类别：{CATEGORIES[int(row['category'])].label}"
    if group == "code":
        code = row["code"]
        names = {0: "红码", 1: "黄码", 2: "绿码"}
        now = names.get(int(code), "未赋码") if not math.isnan(code) else "未赋码"
        worst = row["worst_code"]
        was = "" if math.isnan(worst) or worst == code else f"（曾为{names.get(int(worst), '')}）"
        return f"平安码：{now}{was}"
    if group == "hazards":
        rate = row["hazards_per_100_days"]
        per = "" if math.isnan(rate) else f"，每100天{rate:.1f}处"
        return (
            f"近90天隐患{_n(row['hazards_90'])}处，累计{_n(row['hazards_all'])}处"
            f"（重大{_n(row['majors_all'])}处）{per}"
        )
    if group == "days_since_hazard":
        d = row["days_since_hazard"]
        return "此前未发现过隐患" if math.isnan(d) else f"距上次发现隐患{d:g}天"
    if group == "visits":
        d = row["days_since_visit"]
        last = "从未检查" if math.isnan(d) else f"距上次检查{d:g}天"
        return f"{last}，近90天检查{_n(row['inspections_90'])}次"
    if group == "rectify":
        mean = row["rectify_days_mean"]
        tail = "" if math.isnan(mean) else f"，平均整改{mean:.0f}天"
        return f"未整改隐患{_n(row['open_hazards'])}处（逾期{_n(row['overdue_hazards'])}处）{tail}"
    if group in ("near", "grid"):
        where = f"周边{RADIUS_M:.0f}米" if group == "near" else "所在网格"
        parts = "、".join(f"{GROUP_LABEL[g]}{row[f'events_{group}90_{g}']:.0f}件" for g in EVENT_GROUPS)
        return f"{where}近90天事件：{parts}"
    if group == "season":
        return f"季节：{int(row['month'])}月"
    if group == "age":
        return f"登记{row['age_days']:.0f}天"
    raise ValueError(group)


def explain(contrib: pd.DataFrame, x: pd.DataFrame, top: int = 3) -> dict[int, list[dict[str, Any]]]:
    """Per venue id: the ``top`` groups raising its forecast most (percentage points and the facts)."""
    out: dict[int, list[dict[str, Any]]] = {}
    values = contrib.to_numpy()
    groups = list(contrib.columns)
    columns = {c: x[c].to_numpy(dtype=float) for c in x.columns}  # not a dict per row: 110,000 rows
    tops = np.argsort(-values, axis=1, kind="stable")[:, :top]
    for k, vid in enumerate(contrib.index):
        row = _Row(columns, k)
        out[int(vid)] = [
            {
                "group": groups[j],
                "points": round(float(values[k, j]) * 100, 1),
                "text": describe(groups[j], row),
            }
            for j in tops[k]
            if values[k, j] > 0.0005
        ]
    return out


def explain_venues(
    model: Any, x: pd.DataFrame, medians: Mapping[str, float], top: int = 3
) -> dict[int, list[dict[str, Any]]]:
    """:func:`explain` of :func:`contributions` for the venues of ``x``: the "为什么优先" items.

    Row by row (a venue's items read only its own features, the model and the medians), so the items of
    a few venues made on read are those the same rows would get among every venue (decision 0037).
    """
    return explain(contributions(model, x, medians), x, top)


class _Row(Mapping[str, float]):
    """Row ``k`` of column arrays, read as a mapping (what :func:`describe` reads)."""

    def __init__(self, columns: Mapping[str, np.ndarray], k: int) -> None:
        self._columns, self._k = columns, k

    def __getitem__(self, name: str) -> float:
        return float(self._columns[name][self._k])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def reason_text(items: Sequence[Mapping[str, Any]]) -> str:
    """One line of "为什么优先": the facts with how much each adds, in percentage points."""
    return "；".join(f"{i['text']}（+{i['points']:.1f}个百分点）" for i in items) or "各项指标接近一般水平"


# ---------------------------------------------------------------------------------------------
# From probability to the planner's value of a visit
# ---------------------------------------------------------------------------------------------


def daily_rate(probability: float, horizon: int = HORIZON_DAYS) -> float:
    """The daily hazard rate that makes ``probability`` the chance of at least one in ``horizon`` days."""
    p = min(max(float(probability), 0.0), 0.999)
    return -math.log1p(-p) / horizon


def expected_found(rate: float, severity: float, days_since_visit: float) -> float:
    """Expected severity-weighted hazards a visit finds after ``days_since_visit`` days unvisited."""
    return severity * -math.expm1(-rate * max(days_since_visit, 0.0))


def expected_per_visit(
    probability: np.ndarray, severity: np.ndarray, days_since_visit: np.ndarray, horizon: int = HORIZON_DAYS
) -> np.ndarray:
    """:func:`expected_found` of :func:`daily_rate` over arrays: what a visit on the day is worth to the
    planner (the value the replay's FORECAST policy plans with). Negative days count as zero."""
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 0.999)
    rate = -np.log1p(-p) / horizon
    days = np.maximum(np.asarray(days_since_visit, dtype=float), 0.0)
    return np.asarray(severity, dtype=float) * -np.expm1(-rate * days)


def capacity_curve(
    probabilities: Sequence[float] | np.ndarray, visits_per_day: Sequence[int], days: int = HORIZON_DAYS
) -> pd.DataFrame:
    """What-if of capacity: hazards the model expects ``k`` visits a day to find, for each ``k``.

    ``k`` visits a day make ``k × days`` visits in the period; spent on the venues with the highest
    probability, one visit each, they find in expectation the sum of those venues' probabilities (each
    is the chance that a visit within the 30 days finds a hazard). A venue is counted once: beyond one
    visit per venue the curve stays flat (what a second visit finds is not in the forecast). Columns:
    ``visits_per_day``, ``visits`` (in the period), ``venues`` (visited), ``found`` (expected, period),
    ``found_per_day``, ``share`` (of every venue's expected hazards).
    """
    p = np.sort(np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0))[::-1]
    cum = np.concatenate([[0.0], np.cumsum(p)])
    total = float(cum[-1])
    rows = []
    for k in visits_per_day:
        if k < 0:
            raise ValueError("每日检查次数不得为负")
        visits = int(k) * days
        n = min(visits, len(p))
        found = float(cum[n])
        rows.append((int(k), visits, n, found, found / days, found / total if total > 0 else math.nan))
    return pd.DataFrame(
        rows, columns=["visits_per_day", "visits", "venues", "found", "found_per_day", "share"]
    )


def curve_points(venues: int, capacity: int, days: int = HORIZON_DAYS, points: int = 40) -> list[int]:
    """Visits a day to draw the what-if at: from 0 to past both today's ``capacity`` (×2) and one visit
    per venue in the period, about ``points`` steps, today's capacity always among them."""
    top = max(2 * capacity, math.ceil(venues / days) + 1, 1)
    step = max(1, math.ceil(top / points))
    return sorted(set(range(0, top + 1, step)) | {capacity, top})
