"""The day plan with the stored hazard forecast (decision 0036), on SQLite and PostgreSQL (DATABASE_URL).

With an active model the leader's plan and the inspector's day choose visits by expected hazards found
per visit, red venues due and hazard re-checks first; with no model the plan is the 平安码 rules' alone,
exactly as before any model existed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, update

from db.models import ForecastModel, Hazard, Venue, VenueForecast
from db.uow import UnitOfWork
from domain import forecast as fc
from domain.planner import NEVER_VISITED_DAYS, PriorityTier, plan_day
from services.planning import RECHECK_LEAD_DAYS, inspector_day, load_plan_inputs, plan_for
from services.planning_settings import save_capacity
from tests.integration.test_planning_service import DAY, NOW, area  # noqa: F401  (the fixture)

CREATED = datetime(2026, 11, 15, 2, 30)


def _model(engine, scores: dict[int, float], *, version: int = 1, severity: float = 1.5) -> None:
    """An active model version with these probabilities (the planner reads scores, never the blob)."""
    with engine.begin() as conn:
        conn.execute(update(ForecastModel).values(is_active=False))
        mid = conn.execute(
            insert(ForecastModel).returning(ForecastModel.id),
            {
                "version": version,
                "created_at": CREATED,
                "cutoff": DAY - timedelta(days=36),
                "features_json": json.dumps(fc.FEATURES),
                "metrics_json": "{}",
                "model_blob": b"",
                "is_active": True,
            },
        ).scalar_one()
        for vid, p in scores.items():
            conn.execute(
                insert(VenueForecast),
                {
                    "model_id": mid,
                    "venue_id": vid,
                    "scored_on": DAY - timedelta(days=6),
                    "probability": p,
                    "severity": severity,
                    "explanation_json": "[]",
                },
            )


@pytest.fixture
def world(area):  # noqa: F811
    """甲 (grids 0 and 1, 3 visits a day): a red venue due and a green one with a hazard to re-check (both
    unlikely to show a new hazard), a yellow venue due, and four green venues not due for 20 days."""
    save_capacity(UnitOfWork(area.engine), default=3, now=NOW)
    w = {
        "red": area.venue(0, "red"),
        "recheck": area.venue(1, "green", due=DAY + timedelta(days=20)),
        "yellow": area.venue(0, "yellow"),
    }
    for k in range(4):
        w[f"g{k}"] = area.venue(k % 2, "green", due=DAY + timedelta(days=20))
    with area.engine.begin() as conn:
        conn.execute(
            update(Venue)
            .where(Venue.id.in_([w[k] for k in ("yellow", "g0", "g1", "g2", "g3")]))
            .values(last_inspected_on=DAY - timedelta(days=10))
        )
        conn.execute(
            insert(Hazard),
            {
                "venue_id": w["recheck"],
                "severity": "major",
                "description": "消防通道堵塞",
                "found_on": DAY - timedelta(days=5),
                "deadline": DAY,
                "status": "open",
            },
        )
    area.w = w
    area.probability = {
        "red": 0.01,
        "recheck": 0.01,
        "yellow": 0.02,
        "g0": 0.05,
        "g1": 0.6,
        "g2": 0.3,
        "g3": 0.2,
    }
    return area


def _days(world):
    with world.engine.connect() as conn:
        view = plan_for(conn, DAY, world.township)
        mine = inspector_day(conn, world.a.id, DAY)
    return view, mine


def test_with_a_stored_model_the_plan_takes_the_highest_expected_hazards_after_red_and_rechecks(world):
    w = world.w
    _model(world.engine, {w[k]: p for k, p in world.probability.items()})
    view, mine = _days(world)
    assert view.inputs.forecast is not None and view.inputs.forecast.version == 1
    route = view.plan.route_of(world.a.id)
    planned = {v.venue_id for v in route.visits}
    # Capacity 3: the two mandatory visits, then the venue a visit is most likely to find a hazard at
    # (g1, not due for 20 days) — not the yellow venue due today, whose expected value is lower.
    assert planned == {w["red"], w["recheck"], w["g1"]}
    tiers = {v.venue_id: v.tier for v in route.visits}
    assert tiers[w["g1"]] is PriorityTier.FORECAST
    expected = view.inputs.forecast.expected
    # The expected value is the replay's: probability → daily rate → found over the days since the visit.
    assert expected[w["g1"]] == pytest.approx(fc.expected_found(fc.daily_rate(0.6), 1.5, 10))
    assert expected[w["red"]] == pytest.approx(
        fc.expected_found(fc.daily_rate(0.01), 1.5, NEVER_VISITED_DAYS)
    )
    left = [v for v in expected if v not in planned and v in {w[k] for k in world.probability}]
    assert max(expected[v] for v in left) <= expected[w["g1"]]
    # The yellow venue due today did not fit: it is overflow; venues wanted only for the forecast are not.
    assert [v.venue_id for v in route.overflow] == [w["yellow"]]
    g1 = next(v for v in route.visits if v.venue_id == w["g1"])
    assert "预测本次检查发现隐患期望" in g1.reason
    # /my_day is the same plan: the same stops in the same route order, and it names the model.
    assert mine.stops["venue_id"].tolist() == [v.venue_id for v in route.visits]
    assert mine.forecast is not None and mine.forecast.version == 1 and mine.forecast.created_at == CREATED


def test_a_higher_forecast_moves_a_venue_into_the_day_red_and_rechecks_stay_first(world):
    w = world.w
    _model(world.engine, {w[k]: p for k, p in world.probability.items()} | {w["g2"]: 0.9, w["red"]: 0.0})
    view, mine = _days(world)
    planned = {v.venue_id for v in view.plan.route_of(world.a.id).visits}
    assert planned == {w["red"], w["recheck"], w["g2"]}  # g2 now outranks g1; red stays at probability 0
    assert set(mine.stops["venue_id"]) == planned


def test_without_a_model_the_plan_is_the_colour_plan_exactly_as_before(world):
    w = world.w
    view, mine = _days(world)
    assert view.inputs.forecast is None and mine.forecast is None
    route = view.plan.route_of(world.a.id)
    # The 平安码 rules: red, the re-check, the yellow venue due; the green ones are not due.
    assert {v.venue_id for v in route.visits} == {w["red"], w["recheck"], w["yellow"]}
    assert view.plan.shortfall is None
    assert all(v.tier is not PriorityTier.FORECAST for r in view.plan.routes for v in r.visits)
    # Identical to the planner given the same inputs and no forecast (what plan_for did before 0036).
    with world.engine.connect() as conn:
        inputs = load_plan_inputs(conn, DAY, world.township)
    before = plan_day(
        DAY,
        inputs.inspectors,
        inputs.venues,
        inputs.rechecks,
        inputs.campaigns,
        capacity=inputs.capacity.default,
        recheck_lead_days=RECHECK_LEAD_DAYS,
        reassign=inputs.reassign,
    )
    assert view.plan.routes == before.routes and view.plan.overflow == before.overflow
    assert {v.id for v in inputs.venues} == {w["red"], w["recheck"], w["yellow"]}  # only what is needed
    assert mine.stops["venue_id"].tolist() == [v.venue_id for v in route.visits]


def test_a_model_that_scored_none_of_the_scopes_venues_leaves_the_colour_plan(world):
    _model(world.engine, {})
    view, mine = _days(world)
    assert view.inputs.forecast is None and mine.forecast is None
    assert view.plan.shortfall is None


def test_a_venue_registered_after_the_scoring_gets_the_mean_forecast(world):
    w = world.w
    _model(world.engine, {w[k]: p for k, p in world.probability.items() if k != "g3"})
    view, _ = _days(world)
    basis = view.inputs.forecast
    assert basis is not None and basis.scored == 6
    mean = sum(p for k, p in world.probability.items() if k != "g3") / 6
    assert basis.expected[w["g3"]] == pytest.approx(fc.expected_found(fc.daily_rate(mean), 1.5, 10))
