"""The five-colour risk model: hand-computed cases and the properties every level relies on."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from domain.risk import (
    RiskClass,
    RiskInputs,
    RiskModel,
    Thresholds,
    classify,
    explain,
    score,
    venue_points,
    venue_weight,
)
from domain.vocabulary import VenueCategory

counts = st.integers(min_value=0, max_value=500)
weights = st.floats(min_value=0, max_value=500, allow_nan=False)
inputs = st.builds(
    RiskInputs,
    red_weight=weights,
    yellow_weight=weights,
    green_weight=weights,
    major_hazards=counts,
    general_hazards=counts,
    overdue_hazards=counts,
    overdue_inspections=counts,
    safety_events=counts,
    population=st.integers(min_value=0, max_value=3_000_000),
)


def test_a_grid_with_one_red_hazchem_plant_and_a_major_hazard_scores_by_hand():
    # 2,500 residents → ×4 per 10,000. Red hazchem: 10 × 3.0 = 30; major hazard 8; overdue 4.
    grid = RiskInputs(red_weight=3.0, major_hazards=1, overdue_hazards=1, population=2500)
    assert score(grid) == (30 + 8 + 4) * 4 == 168
    assert classify(score(grid)) is RiskClass.BLUE
    assert (
        classify(score(grid + RiskInputs(red_weight=20.0, major_hazards=2))) is RiskClass.RED
    )  # (42 + 216) × 4


def test_a_quiet_village_of_green_shops_is_green():
    village = RiskInputs(green_weight=20 * 0.8, safety_events=2, population=5000)
    assert score(village) == (0.2 * 16 + 0.5 * 2) * 2  # 8.4 points
    assert classify(score(village)) is RiskClass.GREEN


def test_the_population_floor_keeps_an_empty_grid_from_exploding():
    assert score(RiskInputs(yellow_weight=1.0, population=0)) == 3.0 * 10  # floor of 1,000 residents


def test_the_explanation_lists_factors_largest_first_and_adds_up_to_the_score():
    grid = RiskInputs(red_weight=1.5, yellow_weight=4.0, general_hazards=3, safety_events=10, population=4000)
    parts = explain(grid)
    assert parts[0].factor == "红码场所"
    assert [p.points for p in parts] == sorted((p.points for p in parts), reverse=True)
    assert abs(sum(p.points for p in parts) - score(grid)) < 1e-9


def test_hazchem_and_crowded_venues_weigh_more_than_general_firms():
    assert (
        venue_weight(VenueCategory.HAZCHEM)
        > venue_weight(VenueCategory.CROWDED_VENUE)
        > venue_weight(VenueCategory.GENERAL_FIRM)
    )


def test_a_red_venue_with_an_open_major_hazard_outranks_a_yellow_one():
    red = venue_points(RiskInputs(red_weight=venue_weight("street_shop"), major_hazards=1))
    yellow = venue_points(RiskInputs(yellow_weight=venue_weight("hazchem")))
    assert red > yellow


@given(inputs, st.sampled_from(list(VenueCategory)))
def test_adding_a_red_venue_never_lowers_a_score(area, category):
    more = area + RiskInputs(red_weight=venue_weight(category))
    assert score(more) >= score(area)


@given(inputs, st.sampled_from(["major_hazards", "general_hazards", "overdue_hazards"]))
def test_adding_an_open_hazard_never_lowers_a_score(area, field):
    assert score(area + RiskInputs(**{field: 1})) >= score(area)


@given(inputs, inputs)
def test_a_parents_inputs_are_the_sums_of_its_childrens(a, b):
    total = a + b
    assert total.major_hazards == a.major_hazards + b.major_hazards
    assert total.population == a.population + b.population


@given(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_the_five_classes_partition_the_score_range_in_order(x, y):
    order = list(RiskClass)  # worst first
    cx, cy = classify(x), classify(y)
    assert cx in order
    if x <= y:
        assert order.index(cx) >= order.index(cy)


def test_thresholds_must_be_strictly_ordered():
    import pytest

    with pytest.raises(ValueError, match="阈值"):
        Thresholds(red=10, orange=20, yellow=5, blue=1)
    assert RiskModel().with_thresholds(red=1000).thresholds.red == 1000


def test_vectorised_scores_match_the_scalar_ones():
    import numpy as np

    from domain.risk import points_many, score_many

    a = RiskInputs(red_weight=3.0, major_hazards=1, safety_events=4, population=2500)
    b = RiskInputs(yellow_weight=2.0, overdue_inspections=3, population=400)
    cols = {f: np.array([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__}
    assert np.allclose(score_many(cols, cols["population"]), [score(a), score(b)])
    assert np.allclose(points_many(cols), [venue_points(a), venue_points(b)])


def test_an_area_with_nothing_recorded_is_no_data_not_green_even_with_residents():
    from domain.risk import classify_area, has_data, has_data_many

    empty = RiskInputs(population=8000)
    assert not has_data(empty) and classify_area(score(empty), empty) is RiskClass.NO_DATA
    one_green_shop = RiskInputs(green_weight=0.8, green_venues=1, population=8000)
    assert classify_area(score(one_green_shop), one_green_shop) is RiskClass.GREEN
    one_event = RiskInputs(safety_events=1)
    assert classify_area(score(one_event), one_event) is RiskClass.GREEN
    recorded = has_data_many({"green_venues": np.array([0, 2, np.nan]), "safety_events": np.array([0, 0, 0])})
    assert recorded.tolist() == [False, True, False]


def test_the_explanation_counts_whole_venues_and_names_band_rank_and_main_factor_in_one_sentence():
    from domain.risk import class_band, rank_among, verdict

    area = RiskInputs(red_weight=3.8, red_venues=2, yellow_weight=1.5, yellow_venues=1, population=2000)
    parts = explain(area)
    red = next(p for p in parts if p.factor == "红码场所")
    assert (red.count, red.amount) == (2, 3.8)
    assert rank_among({1: 500.0, 2: 900.0, 3: 500.0, 4: 10.0}, 3) == (2, 4)
    cls = classify(score(area))
    sentence = verdict("东村", cls, score(area), parts, (2, 4))
    assert sentence.startswith(f"东村为{cls.label}：{score(area):.0f} 分/万人")
    assert class_band(cls) in sentence and "红码场所（2 项" in sentence and "4 个区域中排第 2" in sentence
    assert (
        verdict("西村", RiskClass.NO_DATA, 0.0, [], None)
        == "西村暂无场所和安全类事件记录，无法评定风险等级（不等于没有风险；纠纷、城管等诉求类事件不计入风险评分）。"
    )


def test_the_why_rows_in_whole_points_add_up_to_the_score_shown():
    """Each row rounded alone: 1.4 + 1.4 + 1.4 + 1.4 + 1.4 + 1.0 shown as 1 × 6 = 6 beside a score of 8."""
    from domain.risk import whole_points

    points = [1.4, 1.4, 1.4, 1.4, 1.4, 1.0]
    shown = whole_points(points)
    assert sum(shown) == round(sum(points)) == 8
    assert all(abs(w - p) < 1 for w, p in zip(shown, points, strict=True))
    assert whole_points([0.3, 0.3, 120.4]) == [0, 0, 121]  # the two small shares shown as "<1"
    assert whole_points([]) == []


def test_an_area_with_children_without_data_says_its_class_may_read_low():
    from domain.risk import RiskClass, data_gaps

    children = [("甲镇", RiskClass.GREEN, 30_000.0), ("乙镇", RiskClass.NO_DATA, 10_000.0)]
    text = data_gaps("某县", RiskClass.GREEN, [*children, ("丙镇", RiskClass.NO_DATA, float("nan"))])
    assert text is not None and "3 个下级区域中有 2 个" in text and "乙镇、丙镇" in text
    assert "占常住人口 25%" in text and "可能偏低" in text
    assert data_gaps("某县", RiskClass.GREEN, children[:1]) is None  # every child has data
    assert data_gaps("某县", RiskClass.NO_DATA, children) is None  # its own verdict says it has none
    many = [(f"{i}村", RiskClass.NO_DATA, 0.0) for i in range(7)]
    assert "0村、1村、2村、3村、4村等" in (data_gaps("某镇", RiskClass.BLUE, [*many, children[0]]) or "")
