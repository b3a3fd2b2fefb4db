"""Deadlines: limits per stage and urgency, the running clock, the 督办 list and its wording."""

from datetime import datetime, timedelta

import pandas as pd
import pytest

from domain.deadlines import (
    DEFAULT_DEADLINES,
    DeadlineRules,
    DeadlineRulesError,
    Stage,
    due_at,
    late_label,
    overdue,
    stage_of,
)
from domain.vocabulary import EventStatus as S
from domain.vocabulary import Urgency as U

T0 = datetime(2026, 11, 20, 9, 0)


def test_more_urgent_events_get_less_time_at_every_stage():
    for stage in Stage:
        limits = [DEFAULT_DEADLINES.limit(stage, u) for u in U]
        assert limits == sorted(limits, reverse=True)


def test_the_handling_limits_match_the_demo_generator():
    from demo.events import ACCEPT_LIMIT, DISPATCH_LIMIT, HANDLE_LIMIT

    for stage, secs in (
        (Stage.ACCEPT, ACCEPT_LIMIT),
        (Stage.DISPATCH, DISPATCH_LIMIT),
        (Stage.HANDLE, HANDLE_LIMIT),
    ):
        assert [DEFAULT_DEADLINES.limit(stage, u).total_seconds() for u in U] == list(secs)


def test_the_due_time_is_the_start_plus_the_limit():
    assert due_at(Stage.ACCEPT, U.NORMAL, T0) == T0 + timedelta(hours=2)
    assert due_at(Stage.HANDLE, U.URGENT, T0) == T0 + timedelta(hours=24)
    assert due_at(Stage.VERIFY, U.CRITICAL, T0) == T0 + timedelta(hours=12)


def test_each_open_status_runs_the_clock_of_its_stage_and_closed_ones_run_none():
    assert stage_of(S.REPORTED) is Stage.ACCEPT
    assert stage_of(S.ACCEPTED) is Stage.DISPATCH
    assert stage_of(S.RETURNED) is Stage.DISPATCH
    assert stage_of(S.DISPATCHED) is Stage.HANDLE
    assert stage_of("in_progress") is Stage.HANDLE
    assert stage_of(S.RESOLVED) is Stage.VERIFY
    for closed in (S.VERIFIED, S.RATED, S.ARCHIVED, S.REJECTED):
        assert stage_of(closed) is None


def test_delays_are_worded_in_minutes_hours_or_days():
    assert late_label(timedelta(seconds=20)) == "超时1分钟"
    assert late_label(timedelta(minutes=45)) == "超时45分钟"
    assert late_label(timedelta(hours=3, minutes=40)) == "超时3小时"
    assert late_label(timedelta(days=2, hours=23)) == "超期2天"


def test_the_supervision_list_holds_only_late_events_most_late_first():
    events = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "status": ["reported", "in_progress", "in_progress", "archived", "resolved"],
            "urgency": ["normal", "urgent", "normal", "normal", "critical"],
            "reported_at": [T0 - timedelta(hours=5)] * 5,
            "accepted_at": [pd.NaT] + [T0 - timedelta(hours=4)] * 4,
            "dispatched_at": [pd.NaT, T0 - timedelta(hours=27), T0 - timedelta(hours=1), T0, pd.NaT],
            "resolved_at": [pd.NaT, pd.NaT, pd.NaT, T0, T0 - timedelta(days=3)],
        }
    )
    late = overdue(events, T0)
    assert late["id"].tolist() == [5, 1, 2]
    assert late["late_label"].tolist() == ["超期2天", "超时3小时", "超时3小时"]
    assert late["stage_label"].tolist() == ["核查", "受理", "处置"]
    assert late["late_hours"].tolist() == pytest.approx([60.0, 3.0, 3.0])


def test_a_stored_due_time_wins_over_the_computed_one():
    events = pd.DataFrame(
        {
            "id": [1, 2],
            "status": ["dispatched", "dispatched"],
            "urgency": ["normal", "normal"],
            "dispatched_at": [T0 - timedelta(hours=1), T0 - timedelta(hours=100)],
            "due_at": [T0 - timedelta(minutes=30), pd.NaT],
        }
    )
    late = overdue(events, T0)
    assert late["id"].tolist() == [2, 1]
    assert late["late_label"].tolist() == ["超期1天", "超时30分钟"]


def test_deadline_rules_survive_a_round_trip_through_json():
    rules = DeadlineRules.from_dict({"handle": {"normal": 120, "紧急": 48}})
    assert rules.limit(Stage.HANDLE, U.NORMAL) == timedelta(hours=120)
    assert rules.limit(Stage.HANDLE, U.URGENT) == timedelta(hours=48)
    assert rules.limit(Stage.ACCEPT, U.NORMAL) == timedelta(hours=2)
    assert DeadlineRules.from_json(rules.to_json()) == rules


def test_invalid_deadlines_are_refused_in_chinese():
    with pytest.raises(DeadlineRulesError) as info:
        DeadlineRules.from_dict({"handle": {"normal": -1, "urgent": 5, "someday": 3}, "review": {}})
    errors = info.value.errors
    assert "未知的阶段：review" in errors
    assert "未知的紧急程度：someday" in errors
    assert any("必须是正数" in e for e in errors)


def test_a_more_urgent_event_may_not_get_more_time():
    with pytest.raises(DeadlineRulesError, match="一般 ≥ 紧急 ≥ 特急"):
        DeadlineRules.from_dict({"accept": {"normal": 1, "urgent": 2}})
