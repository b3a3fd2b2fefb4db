"""Forecast use cases on the store (SQLite, and PostgreSQL by DATABASE_URL): train, score, roll back,
each with its trail row; a store without history is refused in words, the store unchanged; "为什么优先"
made on read for the venues shown equals what scoring every venue with explanations gave (decision 0037)."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import delete, func, select

from db.engine import make_engine
from db.models import AuditLog, ForecastModel, Venue, VenueForecast
from db.uow import UnitOfWork
from domain import forecast as fc
from services import clock, forecast


def remove_forecasts(engine) -> None:
    """Every model version and score gone (tests that train on the shared store clean up with this)."""
    with engine.begin() as conn:
        conn.execute(delete(VenueForecast))
        conn.execute(delete(ForecastModel))


@pytest.fixture
def engine(seeded_store_url):
    engine = make_engine(seeded_store_url)
    remove_forecasts(engine)
    yield engine
    remove_forecasts(engine)
    engine.dispose()


def _audit(conn, action: str) -> int:
    return conn.execute(
        select(func.count()).select_from(AuditLog).where(AuditLog.action == action)
    ).scalar_one()


def test_training_stores_a_version_with_its_figures_scores_every_venue_and_rolls_back(engine):
    now = clock.now()
    with engine.connect() as conn:
        trained_before = _audit(conn, "forecast.train")
    first = forecast.train(UnitOfWork(engine), now)
    second = forecast.train(UnitOfWork(engine), now)
    assert (first.version, second.version) == (1, 2)
    with engine.connect() as conn:
        rows = conn.execute(
            select(ForecastModel.version, ForecastModel.is_active, ForecastModel.features_json)
        ).all()
        assert {(v, a) for v, a, _ in rows} == {(1, False), (2, True)}
        assert json.loads(rows[0].features_json) == fc.FEATURES
        card = forecast.model_card(conn)
        assert card is not None and card["version"] == 2 and 0 <= card["auc"] <= 1 and 0 <= card["brier"] <= 1
        assert len(card["reliability"]) == 10 and card["cutoff"] == str(second.cutoff)
        venues = conn.execute(select(func.count()).select_from(Venue).where(Venue.is_active)).scalar_one()
        scores = forecast.venue_forecasts(conn)
        assert len(scores) == venues and scores["probability"].between(0, 1).all()
        assert (forecast.with_why(conn, scores)["why"].str.len() > 0).all()
        assert _audit(conn, "forecast.train") == trained_before + 2
    assert forecast.rollback(UnitOfWork(engine), now, actor_id=None, actor_role="system") == 1
    with engine.connect() as conn:
        assert forecast.model_card(conn)["version"] == 1
        assert len(forecast.venue_forecasts(conn)) == venues  # rescored with the version rolled back to
        assert _audit(conn, "forecast.activate") >= 1
    with pytest.raises(ValueError, match="没有可回退"):
        forecast.rollback(UnitOfWork(engine), now, actor_id=None, actor_role="system")


def test_an_empty_store_is_refused_in_words_and_left_unchanged(empty_engine):
    with pytest.raises(forecast.NotEnoughHistory, match="尚无检查记录"):
        forecast.train(UnitOfWork(empty_engine), clock.now())
    with empty_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ForecastModel)).scalar_one() == 0


@pytest.mark.parametrize("back", [0, 45])
def test_scoring_features_from_the_stores_aggregates_equal_those_from_every_record(engine, back):
    """Scoring reads the visits as one grouped query and events in one spatial pass: the same values as
    the features computed from every inspection (what training reads)."""
    day = clock.now().date() - timedelta(days=back)
    with engine.connect() as conn:
        full, _ = forecast.load_history(conn, day)
        scoring, _ = forecast.load_history(conn, day, scoring=True)
        stats = forecast.visit_stats(conn, day)
    assert scoring.inspections.empty and len(full.inspections) > 0
    fast = fc.features(scoring, day, stats)
    pd.testing.assert_frame_equal(fast, fc.features(full, day), check_exact=True)
    assert fast["inspections_all"].sum() == len(full.inspections) and fast["fails_all"].sum() > 0
    assert fast[[f for f in fc.FEATURES if f.startswith("events_near")]].to_numpy().sum() > 0


def _eager(conn, day, model, medians) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Every venue's features, probability and "为什么优先" items as scoring made them before decision 0037
    (all venues at once, the explanation of each)."""
    history, _ = forecast.load_history(conn, day, scoring=True)
    x = fc.features(history, day, forecast.visit_stats(conn, day))
    prob, contrib = fc.predict_and_contributions(model, x, medians)
    return x, pd.Series(prob, index=x.index), fc.explain(contrib, x)


def _stored(conn) -> pd.DataFrame:
    rows = conn.execute(
        select(VenueForecast.venue_id, VenueForecast.probability, VenueForecast.explanation_json)
        .join(ForecastModel, ForecastModel.id == VenueForecast.model_id)
        .where(ForecastModel.is_active)
    ).all()
    return pd.DataFrame(rows, columns=["venue_id", "probability", "explanation_json"]).set_index("venue_id")


def test_scoring_stores_every_probability_and_the_why_is_made_on_read_as_the_eager_path_made_it(
    engine, monkeypatch
):
    now = clock.now()
    forecast.train(UnitOfWork(engine), now)
    described: list[str] = []
    real_describe = fc.describe

    def counting(group, row):
        described.append(group)
        return real_describe(group, row)

    monkeypatch.setattr(fc, "describe", counting)  # the real one, counted
    assert forecast.score(UnitOfWork(engine), now) > 0
    assert described == []  # scoring every venue made no explanation
    with engine.connect() as conn:
        active = conn.execute(
            select(ForecastModel.model_blob, ForecastModel.metrics_json).where(ForecastModel.is_active)
        ).one()
        model, medians = fc.loads(active.model_blob), json.loads(active.metrics_json)["medians"]
        stored = _stored(conn)
        active_venues = conn.execute(select(Venue.id).where(Venue.is_active)).scalars().all()
        assert sorted(stored.index) == sorted(active_venues)  # every venue's probability ...
        assert (stored["explanation_json"] == forecast.ON_READ).all()  # ... and no explanation stored
        x, prob, eager = _eager(conn, now.date(), model, medians)
        pd.testing.assert_series_equal(
            stored["probability"].sort_index(), prob.sort_index(), check_names=False, check_exact=True
        )
        assert sum(1 for items in eager.values() if items) > len(eager) // 2  # most venues have a why

        # The list of the whole store (as /inspections shows it): its rows only are explained.
        scores = forecast.venue_forecasts(conn)
        top = scores.sort_values(["expected", "venue_id"], ascending=[False, True]).head(5)
        described.clear()
        shown = forecast.with_why(conn, top)
        assert 0 < len(described) <= 3 * len(top)
        assert shown["why"].tolist() == [fc.reason_text(eager[int(v)]) for v in top["venue_id"]]
        assert shown["why"].str.contains("个百分点").all()

        # One venue at a time (a card): the venues with the most events around them, whose counts reach
        # past their own grid, and the ones with most hazards: the same features, items and text.
        near = x[[f for f in fc.FEATURES if f.startswith("events_near")]].sum(axis=1)
        picked = [*near.nlargest(3).index, *x["hazards_all"].nlargest(2).index]
        for vid in picked:
            history, _ = forecast.load_history(conn, now.date(), venue_ids=[int(vid)])
            alone = fc.features(history, now.date(), forecast.visit_stats(conn, now.date(), [int(vid)]))
            pd.testing.assert_frame_equal(alone, x.loc[[vid]], check_exact=True)
            assert forecast.explanations(conn, [int(vid)]) == {int(vid): eager[int(vid)]}
            assert forecast.why_texts(conn, [int(vid)])[int(vid)] == fc.reason_text(eager[int(vid)])
        assert near.loc[picked].sum() > 0

        # Every venue on read, in batches: the same items as the eager path's, venue by venue.
        assert forecast.explanations(conn, list(x.index)) == eager
