"""Report ranking: competition ranks on the value as shown, small samples after the others, no value no rank."""

import math

import pytest

from domain.ranking import NO_EVENTS_NOTE, SMALL_NOTE, TIE_NOTE, competition_rank, rank_for_report


def test_ties_share_a_place_and_the_next_place_is_skipped():
    assert competition_rank([0.9, 0.95, 0.95, 0.8]) == [3, 1, 1, 4]
    assert competition_rank([3, 1, 1, 2], higher_is_better=False) == [4, 1, 1, 3]


def test_values_that_read_the_same_in_the_report_tie():
    # 95.04 % and 94.96 % both print as 95.0 %: the report must not put one above the other.
    assert competition_rank([0.9504, 0.9496, 0.9], decimals=3) == [1, 1, 3]
    assert competition_rank([0.9504, 0.9496, 0.9]) == [1, 2, 3]


def test_missing_values_get_no_rank():
    assert competition_rank([None, 0.5, math.nan, 0.7]) == [None, 2, None, 1]


def test_small_samples_are_ranked_after_the_others_and_marked():
    values = [1.0, 0.9, 1.0, 0.95, 0.5, None]
    sizes = [3, 40, 50, 31, 2, 0]
    placed = rank_for_report(values, sizes, min_size=30)
    assert [p.rank for p in placed] == [4, 3, 1, 2, 5, None]
    assert placed[0].small and placed[0].note == f"{SMALL_NOTE}（N<30）"
    assert not placed[2].small and placed[2].note == ""
    assert placed[5].rank is None and placed[5].note == NO_EVENTS_NOTE


def test_a_shared_place_is_noted_in_the_same_column():
    placed = rank_for_report([0.9, 0.9, 0.8, 0.9], [30, 40, 50, 5], min_size=30)
    assert [p.rank for p in placed] == [1, 1, 3, 4]
    assert [p.note for p in placed[:3]] == [TIE_NOTE, TIE_NOTE, ""]
    assert placed[3].note == f"{SMALL_NOTE}（N<30）"


def test_lower_is_better_metrics_rank_upwards_and_events_without_a_value_say_why():
    placed = rank_for_report(
        [12.0, None, 3.5], [40, 35, 60], min_size=30, higher_is_better=False, no_value_note="暂无办结"
    )
    assert [p.rank for p in placed] == [2, None, 1]
    assert placed[1].note == "暂无办结"


def test_lengths_must_match():
    with pytest.raises(ValueError):
        rank_for_report([1.0], [1, 2], min_size=1)
