"""The hazard forecast's features (store columns only, leak-free), validation figures, explanation, and
the planner's forecast-guided allocation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from db.models import Base
from domain import forecast as fc
from domain.planner import HazardRecheck, Inspector, PriorityTier, VenueToVisit, plan_day
from domain.vocabulary import SafetyCode, VenueCategory

CUT = date(2026, 10, 1)


def _history(n: int = 40, seed: int = 0, extra_venue_column: bool = False) -> fc.History:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    cats = [list(VenueCategory)[i % 8].value for i in range(n)]
    venues = pd.DataFrame(
        {
            "id": ids, "category": cats, "grid_id": 1 + ids % 3,
            "created_at": [datetime(2024, 1, 1)] * n, "lon": 118.9, "lat": 28.9,
            "x_m": rng.uniform(0, 2000, n), "y_m": rng.uniform(0, 2000, n),
        }
    )  # fmt: skip
    if extra_venue_column:
        venues["propensity"] = np.random.default_rng(99).random(n)  # hidden truth: must change no feature
    changes = pd.DataFrame(
        {"venue_id": ids, "changed_at": [datetime(2024, 1, 1)] * n, "to_code": ["green"] * n}
    )
    days = [CUT - timedelta(days=int(d)) for d in rng.integers(1, 80, 4 * n)]
    inspections = pd.DataFrame(
        {
            "venue_id": np.tile(ids, 4),
            "inspected_at": [datetime.combine(d, datetime.min.time()) + timedelta(hours=10) for d in days],
            "result": np.where(rng.random(4 * n) < 0.2, "fail", "pass"),
        }
    )
    found = [CUT - timedelta(days=int(d)) for d in rng.integers(1, 80, n)]
    hazards = pd.DataFrame(
        {
            "venue_id": ids, "found_on": found, "severity": ["major" if i % 4 == 0 else "general" for i in ids],
            "deadline": [d + timedelta(days=7) for d in found],
            "rectified_on": [d + timedelta(days=3) if i % 2 else None for i, d in zip(ids, found, strict=True)],
        }
    )  # fmt: skip
    m = 5 * n
    events = pd.DataFrame(
        {
            "reported_at": [datetime.combine(CUT, datetime.min.time()) - timedelta(hours=int(h))
                            for h in rng.integers(1, 24 * 80, m)],
            "category": rng.choice(["work_safety", "public_security", "market", "urban"], m),
            "grid_id": rng.integers(1, 4, m), "lon": 118.9, "lat": 28.9,
            "x_m": rng.uniform(0, 2000, m), "y_m": rng.uniform(0, 2000, m),
        }
    )  # fmt: skip
    return fc.History.of(venues, changes, inspections, hazards, events)


def _after_cut(h: fc.History, days: int = 1) -> fc.History:
    """The same history plus records on and after the cut-off (which must change nothing)."""
    at = datetime.combine(CUT, datetime.min.time()) + timedelta(days=days - 1, hours=9)
    later_ins = pd.DataFrame({"venue_id": [1, 2, 3], "inspected_at": [at] * 3, "result": ["fail"] * 3})
    later_hz = pd.DataFrame(
        {"venue_id": [1, 2], "found_on": [at.date()] * 2, "severity": ["major"] * 2,
         "deadline": [at.date()] * 2, "rectified_on": [None, None]}
    )  # fmt: skip
    later_ev = h.events.head(50).assign(reported_at=at)
    later_ch = pd.DataFrame({"venue_id": [1], "changed_at": [at], "to_code": ["red"]})
    # A hazard found before the cut-off but rectified after it is still open at the cut-off.
    hz = h.hazards.copy()
    hz.loc[hz["rectified_on"].isna(), "rectified_on"] = at.date()
    return fc.History(
        h.venues,
        pd.concat([h.code_changes, later_ch], ignore_index=True),
        pd.concat([h.inspections, later_ins], ignore_index=True),
        pd.concat([hz, later_hz], ignore_index=True),
        pd.concat([h.events, later_ev], ignore_index=True),
    )


def test_the_feature_pipeline_reads_only_columns_the_store_holds():
    tables = Base.metadata.tables
    for table, columns in fc.STORE_COLUMNS.items():
        assert set(columns) <= set(tables[table].columns.keys()), table
    assert not any("propensity" in c.name for t in tables.values() for c in t.columns)
    plain, hidden = _history(), _history(extra_venue_column=True)
    assert "propensity" not in hidden.venues.columns  # dropped on entry
    pd.testing.assert_frame_equal(fc.features(plain, CUT), fc.features(hidden, CUT))
    with pytest.raises(ValueError, match="缺少列"):
        fc.History.of(plain.venues.drop(columns="grid_id"), *[getattr(plain, f) for f in
                      ("code_changes", "inspections", "hazards", "events")])  # fmt: skip


@pytest.mark.parametrize("days", [1, 10])
def test_nothing_on_or_after_the_cutoff_changes_a_feature(days):
    h = _history()
    before = fc.features(h, CUT)
    after = fc.features(_after_cut(h, days), CUT)
    pd.testing.assert_frame_equal(before, after)
    assert list(before.columns) == fc.FEATURES
    # ... while the same records a day earlier do change them (the test can fail).
    earlier = fc.features(_after_cut(h, days), CUT + timedelta(days=days))
    assert not before.equals(earlier)


def test_features_count_what_happened_before_the_cutoff():
    h = _history()
    x = fc.features(h, CUT)
    ins = h.inspections
    assert x.loc[1, "inspections_all"] == (ins["venue_id"] == 1).sum()
    last = ins.loc[ins["venue_id"] == 1, "inspected_at"].max().date()
    assert x.loc[1, "days_since_visit"] == (CUT - last).days
    hz = h.hazards.set_index("venue_id")
    assert x.loc[2, "days_since_hazard"] == (CUT - hz.loc[2, "found_on"]).days
    assert x.loc[2, "open_hazards"] == 1 and x.loc[1, "open_hazards"] == 0  # even ids stay unrectified
    assert x.loc[1, "rectify_days_mean"] == 3
    assert x["code"].eq(2).all() and x["month"].eq(10).all()
    near = x[[f for f in fc.FEATURES if f.startswith("events_near90")]].sum(axis=1)
    assert (near > 0).any() and (near < len(h.events)).all()


def _reference_near(h: fc.History, cutoff: date) -> pd.DataFrame:
    """The nearby-event counts as first written: one radius query per window and group."""
    c = float((pd.Timestamp(cutoff) - pd.Timestamp(0)).days)
    et = fc._days(h.events["reported_at"])
    group_of = {cat.value: g for g, cats in fc.EVENT_GROUPS.items() for cat in cats}
    eg = h.events["category"].map(group_of).to_numpy()
    vx, vy = h.venues["x_m"].to_numpy(float), h.venues["y_m"].to_numpy(float)
    ex, ey = h.events["x_m"].to_numpy(float), h.events["y_m"].to_numpy(float)
    out = {}
    for w in fc.WINDOWS:
        for g in fc.EVENT_GROUPS:
            sel = (et < c) & (et >= c - w) & (eg == g)
            out[f"events_near{w}_{g}"] = fc._near_counts(vx, vy, ex[sel], ey[sel])
    return pd.DataFrame(out, index=pd.Index(h.venues["id"].to_numpy(dtype=np.int64), name="venue_id"))


@pytest.mark.parametrize("days", [0, 20, 85])
def test_one_spatial_pass_counts_the_same_nearby_events_as_a_query_per_window_and_group(days):
    h = _history(n=120, seed=days)
    cut = CUT - timedelta(days=days)
    x = fc.features(h, cut)
    ref = _reference_near(h, cut)
    pd.testing.assert_frame_equal(x[list(ref.columns)], ref, check_exact=True)
    assert ref.to_numpy().sum() > 0 or days == 85  # counts to compare (85 days back: events barely begin)


def test_visit_aggregates_count_the_inspections_before_the_cutoff():
    h = _after_cut(_history(), 5)
    vs = fc.visit_stats(h.inspections, CUT)
    ins = h.inspections[h.inspections["inspected_at"] < datetime.combine(CUT, datetime.min.time())]
    assert vs["inspections_all"].to_dict() == ins.groupby("venue_id").size().astype(float).to_dict()
    fails = ins[ins["result"] == "fail"].groupby("venue_id").size()
    assert vs["fails_all"].reindex(fails.index).to_dict() == fails.astype(float).to_dict()
    recent = ins[ins["inspected_at"] >= datetime.combine(CUT - timedelta(days=90), datetime.min.time())]
    assert vs["inspections_90"].sum() == len(recent)
    # Given as the store's aggregates (timestamps for the visit days), the features are the same.
    stored = vs.assign(
        last_visit=ins.groupby("venue_id")["inspected_at"].max(),
        first_visit=ins.groupby("venue_id")["inspected_at"].min(),
    )
    no_records = fc.History(h.venues, h.code_changes, h.inspections.head(0), h.hazards, h.events)
    pd.testing.assert_frame_equal(fc.features(no_records, CUT, stored), fc.features(h, CUT), check_exact=True)
    assert not fc.features(no_records, CUT).equals(fc.features(h, CUT))  # the aggregates carry the visits


def test_labels_are_the_visited_venues_and_their_hazards_after_the_cutoff():
    h = _after_cut(_history(), 3)
    y = fc.labels(h, CUT)
    assert set(y.index) == {1, 2, 3}
    assert y.loc[1, "found"] == 1 and y.loc[3, "found"] == 0 and y.loc[2, "hazards"] == 1


def test_validation_figures_are_computed_as_defined():
    scores = np.array([0.9, 0.8, 0.1, 0.2])
    assert fc.auc(scores, np.array([1, 1, 0, 0])) == 1.0
    assert fc.auc(scores, np.array([0, 0, 1, 1])) == 0.0
    assert math.isnan(fc.auc(scores, np.zeros(4)))
    assert fc.capture(np.arange(10.0), np.array([0] * 9 + [3]), 0.1) == 1.0
    assert fc.capture(np.arange(10.0)[::-1], np.array([0] * 9 + [3]), 0.1) == 0.0
    bins = fc.reliability(np.linspace(0, 1, 20), np.r_[np.zeros(10), np.ones(10)], bins=2)
    assert [b["observed"] for b in bins] == [0.0, 1.0]


def test_the_explanation_names_the_feature_that_moves_the_probability_with_its_number():
    class OnlyHazards:  # probability rises with recent hazards alone: the explanation must say so
        def predict_proba(self, a):
            p = np.clip(0.05 + 0.1 * a[:, fc.FEATURES.index("hazards_90")], 0, 1)
            return np.column_stack([1 - p, p])

    x = fc.features(_history(), CUT)
    x.loc[5, "hazards_90"] = 3
    medians = {k: float(x[k].median()) for k in fc.FEATURES}
    contrib = fc.contributions(OnlyHazards(), x, medians)
    assert contrib.drop(columns="hazards").abs().to_numpy().max() == 0
    why = fc.explain(contrib, x)[5]
    assert why[0]["group"] == "hazards" and why[0]["points"] == pytest.approx(
        10 * (3 - medians["hazards_90"])
    )
    assert "近90天隐患3处" in fc.reason_text(why) and "个百分点" in fc.reason_text(why)


def test_a_probability_becomes_a_rate_and_an_expected_find_per_visit():
    r = fc.daily_rate(0.3)
    assert 1 - math.exp(-30 * r) == pytest.approx(0.3)
    assert fc.expected_found(r, 2.0, 30) == pytest.approx(0.6)
    assert fc.expected_found(r, 1.0, 0) == 0


def _venue(i: int, code=SafetyCode.GREEN, due: date | None = date(2027, 1, 1)) -> VenueToVisit:
    return VenueToVisit(i, f"场所{i}", 1, 10, 100, code, VenueCategory.STREET_SHOP, i * 10.0, 0.0, due)


def test_forecast_guided_plan_keeps_red_and_rechecks_first_then_expected_value_and_reports_the_shortfall():
    day = date(2026, 12, 1)
    insp = [Inspector(1, "甲", {1}, 0.0, 0.0)]
    venues = [_venue(1, SafetyCode.RED, day), _venue(2, SafetyCode.RED, day), _venue(3), _venue(4), _venue(5)]
    recheck = [HazardRecheck(9, 3, day)]
    expected = {1: 0.01, 2: 0.02, 3: 0.0, 4: 0.5, 5: 0.9}
    plan = plan_day(day, insp, venues, recheck, capacity=4, expected=expected)
    chosen = {v.venue_id for v in plan.routes[0].visits}
    assert chosen == {1, 2, 3, 5}  # every mandatory visit, then the highest expected value (5 over 4)
    assert plan.shortfall is not None and plan.shortfall.undone == 0 and plan.shortfall.mandatory == 3
    assert plan.not_planned == 0  # venue 4 was wanted for its forecast only: not overflow
    tiers = {v.venue_id: v.tier for v in plan.routes[0].visits}
    assert tiers[5] == PriorityTier.FORECAST
    assert any("预测" in r for v in plan.routes[0].visits if v.venue_id == 5 for r in v.reasons)

    short = plan_day(day, insp, venues, recheck, capacity=2, expected=expected)
    assert {v.venue_id for v in short.routes[0].visits} == {2, 1} or len(short.routes[0].visits) == 2
    assert short.shortfall is not None and short.shortfall.undone == 1 and short.shortfall.extra_visits == 1
    assert short.shortfall.inspectors_needed == 1
    plain = plan_day(day, insp, venues, recheck, capacity=4)
    assert plain.shortfall is None and {v.venue_id for v in plain.routes[0].visits} == {1, 2, 3}


def _replay_world(n: int = 200, seed: int = 3):
    from domain.planner import ReplayVenue

    rng = np.random.default_rng(seed)
    start = date(2026, 12, 1)
    insp = [Inspector(1, "甲", {1}, 0.0, 0.0), Inspector(2, "乙", {2}, 0.0, 0.0)]
    venues = []
    for i in range(1, n + 1):
        rate = 0.05 if i % 10 == 0 else 0.002  # a tenth of the venues hazardous, and known to be
        onsets = tuple(
            sorted(start + timedelta(days=int(d)) for d in rng.integers(0, 90, rng.poisson(rate * 90)))
        )
        v = VenueToVisit(i, f"场所{i}", 1 + i % 2, 10, 100, SafetyCode.GREEN, VenueCategory.STREET_SHOP,
                         float(i), 0.0, start + timedelta(days=int(i % 30)))  # fmt: skip
        venues.append(ReplayVenue(v, onsets, rate, 1.0, start - timedelta(days=30 - i % 30)))
    return start, insp, venues


def test_the_replay_spends_fractional_capacity_exactly_and_the_forecast_finds_more_sooner():
    from domain.planner import ReplayPolicy, replay

    start, insp, venues = _replay_world()
    runs = {
        p: replay(start, 90, insp, venues, policy=p, seed=1, visits_per_venue_month=0.5)
        for p in (ReplayPolicy.ROUND_ROBIN, ReplayPolicy.RISK, ReplayPolicy.FORECAST)
    }
    # 0.5 visits per venue per month: 100 venues each × 0.5 / 30 a day × 90 days = 150 per inspector.
    assert runs[ReplayPolicy.ROUND_ROBIN].visits == 300
    assert runs[ReplayPolicy.FORECAST].visits == 300
    rr, f = runs[ReplayPolicy.ROUND_ROBIN], runs[ReplayPolicy.FORECAST]
    assert f.discovered > rr.discovered
    assert f.mean_days_to_discovery_censored < rr.mean_days_to_discovery_censored
    assert f.found_first_half_share > rr.found_first_half_share
    blind = [replace(rv, rate=0.01) for rv in venues]  # an uninformative forecast loses the edge
    b = replay(start, 90, insp, blind, policy=ReplayPolicy.FORECAST, seed=1, visits_per_venue_month=0.5)
    assert b.discovered < f.discovered


def test_contributions_read_tree_by_tree_equal_predicting_each_alternative():
    h = _history(n=400, seed=4)
    x = fc.features(h, CUT)
    rng = np.random.default_rng(1)
    y = pd.Series((rng.random(len(x)) < 0.1 + 0.1 * x["hazards_90"].to_numpy()).astype(int), index=x.index)
    model = fc.new_estimator().set_params(min_samples_leaf=10, max_iter=30)
    with fc._one_thread():
        model.fit(x[fc.FEATURES].to_numpy(dtype=float), y.to_numpy())
    medians = {k: float(x[k].median()) for k in fc.FEATURES}
    prob, fast = fc.predict_and_contributions(model, x, medians)
    np.testing.assert_array_equal(prob, fc.predict(model, x))
    plain = pd.DataFrame(index=x.index)  # the definition: predict again with the group at its medians
    for g, cols in fc.EXPLAIN_GROUPS.items():
        alt = x.copy()
        for col in cols:
            alt[col] = medians[col]
        plain[g] = prob - fc.predict(model, alt)
    moved = fast.to_numpy() != 0
    assert moved.any()
    np.testing.assert_array_equal(fast.to_numpy()[moved], plain.to_numpy()[moved])
    assert (plain.to_numpy()[~moved] == 0).all()  # unmoved venues: the same prediction, no need to ask
