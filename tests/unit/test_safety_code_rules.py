"""平安码 rules: escalation, stepwise recovery, reasons and checklists."""

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from domain.safety_code import (
    RANK,
    CodeRules,
    HazardFact,
    InspectionFact,
    VenueFacts,
    checklist_for,
    count_clean_inspections,
    evaluate,
    required_code,
)
from domain.vocabulary import HazardSeverity, InspectionResult, SafetyCode, VenueCategory

RED, YELLOW, GREEN = SafetyCode.RED, SafetyCode.YELLOW, SafetyCode.GREEN
PASS, FAIL = InspectionResult.PASS, InspectionResult.FAIL
D = date(2026, 11, 21)
SHOP = VenueCategory.STREET_SHOP


def major(desc: str = "消防通道堵塞") -> HazardFact:
    return HazardFact(HazardSeverity.MAJOR, desc, date(2026, 11, 25))


def general(desc: str = "灭火器过期") -> HazardFact:
    return HazardFact(HazardSeverity.GENERAL, desc, date(2026, 11, 28))


def passed(on: date = D, **kw) -> InspectionFact:
    return InspectionFact(on, PASS, **kw)


def failed(on: date = D, **checklist: str) -> InspectionFact:
    return InspectionFact(on, FAIL, checklist)


# --- escalation ---------------------------------------------------------------------------


def test_an_open_major_hazard_turns_a_green_venue_red_at_once_and_names_it():
    d = evaluate(GREEN, VenueFacts(SHOP, passed(), open_hazards=(major(),)))
    assert d.code is RED
    assert d.reason == "存在未整改重大隐患1处：消防通道堵塞"


def test_an_overdue_rectification_turns_a_venue_red():
    d = evaluate(YELLOW, VenueFacts(SHOP, passed(), open_hazards=(general(),), overdue_rectifications=1))
    assert d.code is RED
    assert "隐患超期未整改1处" in d.reason


def test_a_high_risk_venue_failing_a_critical_item_turns_red():
    facts = VenueFacts(VenueCategory.HAZCHEM, failed(hazmat_storage="fail", safety_training="pass"))
    d = evaluate(GREEN, facts)
    assert d.code is RED
    assert d.reason == "危化品生产企业检查不合格，关键项不合格：危险品存放规范"


def test_a_high_risk_venue_failing_only_minor_items_turns_yellow():
    d = evaluate(GREEN, VenueFacts(VenueCategory.CONSTRUCTION_SITE, failed(hard_hats="fail")))
    assert d.code is YELLOW
    assert d.reason == "最近一次检查（2026-11-21）不合格：安全帽佩戴"


def test_a_shop_failing_a_critical_item_is_yellow_because_shops_are_not_high_risk():
    d = evaluate(GREEN, VenueFacts(SHOP, failed(fire_exits="fail")))
    assert d.code is YELLOW
    assert "消防通道畅通" in d.reason


def test_open_general_hazards_make_a_green_venue_yellow():
    d = evaluate(GREEN, VenueFacts(SHOP, passed(), open_hazards=(general(), general("电线私拉乱接"))))
    assert d.code is YELLOW
    assert d.reason == "存在未整改一般隐患2处：灭火器过期、电线私拉乱接"


def test_three_recent_events_make_a_venue_yellow_but_two_do_not():
    assert evaluate(GREEN, VenueFacts(SHOP, passed(), recent_events=3)).code is YELLOW
    assert evaluate(GREEN, VenueFacts(SHOP, passed(), recent_events=2)).code is GREEN
    assert "近30天场所发生事件3起" in evaluate(GREEN, VenueFacts(SHOP, recent_events=3)).reason


def test_a_failed_inspection_without_itemised_failures_still_makes_a_venue_yellow():
    d = evaluate(GREEN, VenueFacts(SHOP, failed()))
    assert (d.code, d.reason) == (YELLOW, "最近一次检查（2026-11-21）不合格")


def test_a_yellow_venue_with_a_new_major_hazard_escalates_to_red():
    assert evaluate(YELLOW, VenueFacts(SHOP, failed(), open_hazards=(major(),))).code is RED


def test_a_red_reason_lists_every_decisive_fact_but_not_the_yellow_ones():
    facts = VenueFacts(SHOP, passed(), open_hazards=(major(), general()), overdue_rectifications=2)
    reason = evaluate(GREEN, facts).reason
    assert reason == "存在未整改重大隐患1处：消防通道堵塞；隐患超期未整改2处"


def test_a_quiet_green_venue_stays_green_and_says_why():
    d = evaluate(GREEN, VenueFacts(SHOP, passed()))
    assert (d.code, d.reason) == (GREEN, "无未整改隐患，最近一次检查（2026-11-21）合格")


# --- stepwise recovery ----------------------------------------------------------------------


def test_a_red_venue_whose_major_hazard_is_rectified_stays_red_until_re_inspected():
    # Last passed inspection 11-18, hazard rectified 11-20: no re-inspection since.
    facts = VenueFacts(SHOP, passed(date(2026, 11, 18)), last_rectified_on=date(2026, 11, 20))
    d = evaluate(RED, facts)
    assert d.code is RED
    assert d.reason == "隐患已于2026-11-20整改，尚未复查，复查合格后方可转为黄码"


def test_a_red_venue_turns_yellow_after_rectification_and_a_passed_re_inspection():
    facts = VenueFacts(
        SHOP, passed(date(2026, 11, 21)), last_rectified_on=date(2026, 11, 20), clean_inspections=5
    )
    d = evaluate(RED, facts)
    assert d.code is YELLOW
    assert d.reason == "隐患已整改并于2026-11-21复查合格，由红码转为黄码"


def test_a_same_day_re_inspection_confirming_the_rectification_counts():
    facts = VenueFacts(SHOP, passed(D), last_rectified_on=D)
    assert evaluate(RED, facts).code is YELLOW


def test_a_failed_re_inspection_keeps_a_red_venue_red():
    facts = VenueFacts(SHOP, failed(), last_rectified_on=date(2026, 11, 20))
    d = evaluate(RED, facts)
    assert d.code is RED
    assert d.reason.startswith("最近一次检查（2026-11-21）不合格")


def test_a_passed_inspection_from_before_the_venue_turned_red_does_not_lift_it():
    facts = VenueFacts(SHOP, passed(date(2026, 11, 10)), code_since=date(2026, 11, 15))
    assert evaluate(RED, facts).code is RED


def test_a_red_venue_with_a_major_hazard_still_open_stays_red_whatever_the_inspection():
    facts = VenueFacts(SHOP, passed(), open_hazards=(major(),), clean_inspections=9)
    assert evaluate(RED, facts).code is RED


def test_a_red_venue_never_jumps_to_green_even_with_a_long_clean_streak():
    facts = VenueFacts(SHOP, passed(), last_rectified_on=date(2026, 11, 1), clean_inspections=10)
    assert evaluate(RED, facts).code is YELLOW


def test_a_red_venue_recovering_with_general_hazards_left_says_what_remains():
    facts = VenueFacts(SHOP, passed(), open_hazards=(general(),), last_rectified_on=date(2026, 11, 20))
    d = evaluate(RED, facts)
    assert d.code is YELLOW
    assert d.reason.endswith("（仍有：存在未整改一般隐患1处：灭火器过期）")


def test_a_yellow_venue_needs_two_clean_inspections_to_turn_green():
    one = evaluate(YELLOW, VenueFacts(SHOP, passed(), clean_inspections=1))
    assert (one.code, one.reason) == (YELLOW, "连续合格检查1次，满2次方可转为绿码")
    two = evaluate(YELLOW, VenueFacts(SHOP, passed(), clean_inspections=2))
    assert (two.code, two.reason) == (GREEN, "连续2次检查合格且无未整改隐患，由黄码转为绿码")


def test_a_yellow_venue_with_an_open_general_hazard_stays_yellow_however_clean():
    assert (
        evaluate(YELLOW, VenueFacts(SHOP, passed(), open_hazards=(general(),), clean_inspections=9)).code
        is YELLOW
    )


def test_the_clean_streak_needed_for_green_is_a_parameter():
    rules = CodeRules(clean_inspections_to_green=3)
    assert evaluate(YELLOW, VenueFacts(SHOP, passed(), clean_inspections=2), rules).code is YELLOW
    assert evaluate(YELLOW, VenueFacts(SHOP, passed(), clean_inspections=3), rules).code is GREEN


def test_a_full_recovery_from_red_takes_a_re_inspection_then_two_clean_ones():
    code = GREEN
    code = evaluate(code, VenueFacts(SHOP, failed(date(2026, 11, 1)), open_hazards=(major(),))).code
    assert code is RED
    # Rectified on the 3rd, re-inspected on the 4th: yellow; the streak restarts after the change.
    code = evaluate(
        code, VenueFacts(SHOP, passed(date(2026, 11, 4)), last_rectified_on=date(2026, 11, 3))
    ).code
    assert code is YELLOW
    steps = [(date(2026, 11, 11), 1, YELLOW), (date(2026, 11, 18), 2, GREEN)]
    for on, streak, expected in steps:
        facts = VenueFacts(SHOP, passed(on), last_rectified_on=date(2026, 11, 3), clean_inspections=streak)
        code = evaluate(code, facts).code
        assert code is expected


def test_the_clean_streak_counts_back_from_the_newest_inspection_to_the_last_colour_change():
    history = [
        passed(date(2026, 11, 1)),
        failed(date(2026, 11, 5)),
        passed(date(2026, 11, 8)),
        passed(date(2026, 11, 12)),
        passed(date(2026, 11, 15), new_hazards=1),
        passed(date(2026, 11, 18)),
        passed(date(2026, 11, 21)),
    ]
    assert count_clean_inspections(history) == 2
    assert count_clean_inspections(history, since=date(2026, 11, 18)) == 1
    assert count_clean_inspections(history[:4]) == 2


# --- properties -----------------------------------------------------------------------------

codes = st.sampled_from(list(SafetyCode))
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
facts_st = st.builds(
    VenueFacts,
    category=st.sampled_from(list(VenueCategory)),
    latest_inspection=st.none()
    | st.builds(
        InspectionFact,
        on=days,
        result=st.sampled_from(list(InspectionResult)),
        checklist=st.dictionaries(
            st.sampled_from(["fire_exits", "hazmat_storage", "hard_hats", "crowd_capacity", "cctv", "x"]),
            st.sampled_from(["pass", "fail", "na"]),
            max_size=4,
        ),
    ),
    open_hazards=st.lists(
        st.builds(
            HazardFact, severity=st.sampled_from(list(HazardSeverity)), description=st.sampled_from("甲乙丙")
        ),
        max_size=3,
    ).map(tuple),
    overdue_rectifications=st.integers(0, 2),
    recent_events=st.integers(0, 5),
    clean_inspections=st.integers(0, 4),
    last_rectified_on=st.none() | days,
    code_since=st.none() | days,
)


@given(codes, facts_st)
def test_the_decision_is_never_better_than_the_facts_demand(current, facts):
    assert RANK[evaluate(current, facts).code] >= RANK[required_code(facts).code]


@given(codes, facts_st)
def test_escalation_is_immediate_and_goes_exactly_to_what_the_facts_demand(current, facts):
    floor = required_code(facts)
    if RANK[floor.code] >= RANK[current]:
        assert evaluate(current, facts) == floor


@given(codes, facts_st)
def test_recovery_moves_at_most_one_step_and_never_red_to_green(current, facts):
    decided = evaluate(current, facts).code
    assert RANK[current] - RANK[decided] <= 1
    assert not (current is RED and decided is GREEN)


@given(codes, facts_st)
def test_every_decision_has_a_chinese_reason(current, facts):
    reason = evaluate(current, facts).reason
    assert reason and any("\u4e00" <= ch <= "\u9fff" for ch in reason)


# --- checklists -----------------------------------------------------------------------------


def test_every_category_has_at_least_five_items_with_stable_ascii_keys_and_a_critical_one():
    for category in VenueCategory:
        items = checklist_for(category)
        keys = [i.key for i in items]
        assert len(items) >= 5
        assert len(set(keys)) == len(keys)
        assert all(k.isascii() and k.replace("_", "").isalnum() and k.islower() for k in keys)
        assert any(i.critical for i in items)
        assert all(i.label for i in items)


def test_checklists_fit_their_category():
    def keys(c: VenueCategory) -> dict[str, bool]:
        return {i.key: i.critical for i in checklist_for(c)}

    assert keys(VenueCategory.RENTAL_HOUSING)["ebike_charging"] is True
    assert keys(VenueCategory.CONSTRUCTION_SITE)["scaffolding"] is True
    assert "hard_hats" in keys(VenueCategory.CONSTRUCTION_SITE)
    assert keys(VenueCategory.CROWDED_VENUE)["crowd_capacity"] is True
    assert keys(VenueCategory.HAZCHEM)["hazmat_storage"] is True
    assert keys(VenueCategory.STREET_SHOP)["no_residence"] is True
    assert "cctv" in keys(VenueCategory.KEY_SECURITY)
    assert all("fire_exits" in keys(c) for c in VenueCategory if c is not VenueCategory.CONSTRUCTION_SITE)
    assert checklist_for("hazchem") == checklist_for(VenueCategory.HAZCHEM)
