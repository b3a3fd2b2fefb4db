"""The forecast's value of a visit over arrays, and the capacity what-if curve (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domain import forecast as fc


def test_the_vectorised_value_of_a_visit_is_the_replays_scalar_one():
    p = np.array([0.0, 0.05, 0.3, 0.999, 1.0])
    sev = np.array([1.0, 1.2, 2.0, 1.5, 1.0])
    days = np.array([10, 0, 30, 60, -3])
    got = fc.expected_per_visit(p, sev, days)
    want = [fc.expected_found(fc.daily_rate(a), s, d) for a, s, d in zip(p, sev, days, strict=True)]
    assert got == pytest.approx(want)
    assert got[0] == 0 and got[1] == 0 and got[4] == 0  # no chance, just visited, visited "after" the day
    # A visit after exactly the horizon finds the probability itself (times the severity weight).
    assert fc.expected_per_visit(np.array([0.3]), np.array([1.0]), np.array([30]))[0] == pytest.approx(0.3)


def test_the_curve_sums_the_top_probabilities_a_months_visits_reach():
    p = [0.1, 0.5, 0.2, 0.05]
    curve = fc.capacity_curve(p, [0, 1, 2], days=2).set_index("visits_per_day")
    # k visits a day for 2 days: the 2k most likely venues, once each.
    assert curve.loc[0, "found"] == 0 and curve.loc[0, "venues"] == 0
    assert curve.loc[1, "visits"] == 2 and curve.loc[1, "found"] == pytest.approx(0.5 + 0.2)
    assert curve.loc[2, "venues"] == 4 and curve.loc[2, "found"] == pytest.approx(0.85)
    assert curve.loc[1, "found_per_day"] == pytest.approx(0.35)
    assert curve.loc[2, "share"] == pytest.approx(1.0)


def test_the_curve_rises_with_diminishing_returns_and_is_flat_past_one_visit_per_venue():
    rng = np.random.default_rng(3)
    p = rng.beta(1, 12, size=500)
    ks = list(range(0, 40))
    found = fc.capacity_curve(p, ks).set_index("visits_per_day")["found"].to_numpy()
    steps = np.diff(found)
    assert (steps >= -1e-12).all()  # more visits never find less
    assert (np.diff(steps) <= 1e-9).all()  # each extra visit a day is worth no more than the one before
    full = math.ceil(500 / 30)
    assert found[full] == pytest.approx(p.sum()) and found[-1] == pytest.approx(p.sum())
    assert found[full - 1] < p.sum()


def test_the_curve_refuses_negative_capacity_and_handles_no_venues():
    with pytest.raises(ValueError):
        fc.capacity_curve([0.1], [-1])
    empty = fc.capacity_curve([], [0, 5])
    assert empty["found"].tolist() == [0.0, 0.0] and empty["share"].isna().all()


def test_the_points_reach_past_capacity_and_one_visit_per_venue_with_capacity_among_them():
    pts = fc.curve_points(venues=3000, capacity=45)
    assert pts[0] == 0 and 45 in pts and pts[-1] >= 101 and pts == sorted(set(pts))
    assert len(pts) <= 45
    small = fc.curve_points(venues=10, capacity=0)
    assert small[0] == 0 and small[-1] >= 1
