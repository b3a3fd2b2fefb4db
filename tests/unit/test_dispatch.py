"""Dispatch rules: routing by urgency, category, keywords and 一件事; validation; automatic 上移."""

import json
from datetime import datetime, timedelta

import pytest

from domain.dispatch import (
    DEFAULT_RULES,
    DEPARTMENT_KINDS,
    DispatchRules,
    EscalationPolicy,
    EventFacts,
    JointMatter,
    RulesError,
    route,
    should_escalate,
)
from domain.vocabulary import AdminLevel as L
from domain.vocabulary import EventCategory as C
from domain.vocabulary import EventStatus as S
from domain.vocabulary import Urgency as U

T0 = datetime(2026, 11, 20, 9, 0)


def facts(category=C.URBAN, urgency=U.NORMAL, title="", **kw) -> EventFacts:
    return EventFacts(category=category, urgency=urgency, title=title, **kw)


def test_the_default_rules_are_valid_and_cover_every_category_and_urgency():
    assert DEFAULT_RULES.validate() == []
    assert set(DEFAULT_RULES.department_by_category) == set(C)
    assert set(DEFAULT_RULES.level_by_urgency) == set(U)


def test_the_department_kinds_are_exactly_those_the_demo_departments_use():
    from demo.vocab import COUNTY_DEPARTMENTS, TOWNSHIP_DEPARTMENTS

    demo_kinds = {k for k, _, _ in COUNTY_DEPARTMENTS} | {k for k, _, _ in TOWNSHIP_DEPARTMENTS}
    assert set(DEPARTMENT_KINDS) == demo_kinds


def test_every_category_goes_to_its_own_department_by_default():
    expected = {
        C.URBAN: "城管",
        C.DISPUTE: "司法",
        C.ENVIRONMENT: "生态环境",
        C.MARKET: "市场监管",
        C.WORK_SAFETY: "应急管理",
        C.PUBLIC_SECURITY: "公安",
        C.NATURAL_HAZARD: "应急管理",
        C.LIVELIHOOD: "民政",
    }
    for category, kind in expected.items():
        decision = route(facts(category, title="一般问题"))
        assert decision.department_kind == kind
        assert decision.cooperating_kinds == ()


def test_small_matters_stay_in_the_village_urgent_go_to_the_township_critical_to_the_county():
    assert route(facts(urgency=U.NORMAL)).level is L.VILLAGE
    assert "小事不出村" in route(facts(urgency=U.NORMAL)).reason
    assert route(facts(urgency=U.URGENT)).level is L.TOWNSHIP
    assert route(facts(urgency=U.CRITICAL)).level is L.COUNTY


def test_a_big_matter_keyword_raises_the_level_but_never_lowers_it():
    assert route(facts(C.WORK_SAFETY, title="危化品违规存放")).level is L.TOWNSHIP
    assert route(facts(C.WORK_SAFETY, U.CRITICAL, title="危化品违规存放")).level is L.COUNTY


def test_many_reporters_make_a_mass_matter_for_the_township():
    decision = route(facts(C.LIVELIHOOD, title="路灯不亮", reporter_count=12))
    assert decision.level is L.TOWNSHIP
    assert "12人反映" in decision.reason


def test_an_escalated_event_is_not_routed_back_down():
    assert route(facts(owner_level=L.COUNTY)).level is L.COUNTY


def test_a_title_keyword_sends_an_event_to_another_department():
    decision = route(facts(C.URBAN, title="违章停车"))
    assert decision.department_kind == "交警"
    assert "违章停车" in decision.reason


def test_a_cross_department_matter_has_one_lead_and_cooperating_departments():
    decision = route(
        facts(C.DISPUTE, U.URGENT, title="劳资纠纷", description="工地拖欠工资，28名工人集体反映")
    )
    assert decision.joint_matter == "群体性劳资纠纷"
    assert decision.department_kind == "综治"
    assert decision.cooperating_kinds == ("司法", "公安", "住建")
    assert "综治牵头" in decision.reason


def test_a_joint_matter_restricted_to_a_category_does_not_match_others():
    j = JointMatter("油烟", "生态环境", ("城管",), (C.ENVIRONMENT,), ("油烟",))
    assert j.matches(C.ENVIRONMENT, "餐饮油烟扰民")
    assert not j.matches(C.MARKET, "餐饮油烟扰民")


def test_rules_survive_a_round_trip_through_json():
    rules = DispatchRules(
        mass_reporters=7, escalation=EscalationPolicy(grace_hours=2.0, top_level=L.TOWNSHIP)
    )
    text = rules.to_json()
    assert json.loads(text)["escalation"]["top_level"] == "township"
    assert DispatchRules.from_json(text) == rules


def test_settings_may_name_enums_by_their_chinese_labels():
    rules = DispatchRules.from_dict(
        {"level_by_urgency": {"一般": "村(社区)", "紧急": "乡镇(街道)", "特急": "乡镇(街道)"}}
    )
    assert rules.level_by_urgency[U.CRITICAL] is L.TOWNSHIP


def test_a_missing_section_keeps_its_default():
    assert DispatchRules.from_dict({}) == DEFAULT_RULES


def test_invalid_rules_are_refused_with_every_problem_in_chinese():
    data = DEFAULT_RULES.to_dict()
    data["department_by_category"]["unknown_cat"] = "城管"
    data["department_by_category"]["dispute"] = "法院"
    data["level_by_urgency"]["normal"] = "grid"
    data["level_by_urgency"]["urgent"] = "province"
    data["escalation"]["auto"]["urgent"] = "yes"
    data["colour"] = "red"
    with pytest.raises(RulesError) as info:
        DispatchRules.from_dict(data)
    errors = info.value.errors
    assert "未知的事项类别：unknown_cat" in errors
    assert any("未知的部门类型“法院”" in e for e in errors)
    assert any("层级“网格”不能承办事件" in e for e in errors)
    assert "未知的层级：province" in errors
    assert "未知的设置项：colour" in errors
    assert any("是否自动上移应为 true 或 false" in e for e in errors)
    assert str(info.value).startswith("分拨规则有误：")


def test_a_category_without_a_department_is_an_error():
    rules = DispatchRules(department_by_category={C.URBAN: "城管"})
    assert "事项“矛盾纠纷”没有归口部门" in rules.validate()


def test_a_joint_matter_whose_lead_also_cooperates_is_an_error():
    rules = DispatchRules(joint_matters=(JointMatter("x", "城管", ("城管", "交警"), (C.URBAN,)),))
    assert any("不能同时是协办部门" in e for e in rules.validate())


def test_broken_json_is_refused_in_chinese():
    with pytest.raises(RulesError, match="不是有效的 JSON"):
        DispatchRules.from_json("{")


def handled(urgency=U.URGENT, hours_ago=30.0, owner=L.TOWNSHIP, status=S.IN_PROGRESS) -> EventFacts:
    return facts(
        urgency=urgency, owner_level=owner, status=status, dispatched_at=T0 - timedelta(hours=hours_ago)
    )


def test_an_urgent_event_past_its_handling_deadline_moves_up_to_the_parent_level():
    esc = should_escalate(handled(hours_ago=27), T0)
    assert esc is not None
    assert (esc.from_level, esc.to_level) == (L.TOWNSHIP, L.COUNTY)
    assert esc.overdue_by == timedelta(hours=3)
    assert "超时3小时" in esc.reason and "上移至县(市、区)" in esc.reason


def test_an_event_within_its_deadline_does_not_move_up():
    assert should_escalate(handled(hours_ago=23), T0) is None


def test_every_urgency_moves_up_on_its_own_by_default_ordinary_events_included():
    esc = should_escalate(handled(urgency=U.NORMAL, hours_ago=73, owner=L.VILLAGE), T0)
    assert esc is not None and (esc.from_level, esc.to_level) == (L.VILLAGE, L.TOWNSHIP)
    assert "一般事件自动上移至乡镇" in esc.reason
    assert should_escalate(handled(urgency=U.NORMAL, hours_ago=71, owner=L.VILLAGE), T0) is None


def test_a_rule_turning_an_urgency_off_keeps_its_events_where_they_are():
    off = DispatchRules(escalation=EscalationPolicy(auto={U.NORMAL: False, U.URGENT: True, U.CRITICAL: True}))
    assert should_escalate(handled(urgency=U.NORMAL, hours_ago=200, owner=L.VILLAGE), T0, off) is None
    assert should_escalate(handled(urgency=U.URGENT, hours_ago=30), T0, off) is not None
    saved = DispatchRules.from_json(off.to_json())  # an admin's saved choice survives the default
    assert saved.escalation.auto[U.NORMAL] is False


def test_the_grace_period_delays_escalation():
    rules = DispatchRules(escalation=EscalationPolicy(grace_hours=5))
    assert should_escalate(handled(hours_ago=27), T0, rules) is None
    assert should_escalate(handled(hours_ago=30), T0, rules) is not None


def test_nothing_moves_above_the_top_level():
    assert should_escalate(handled(owner=L.COUNTY, hours_ago=100), T0) is None


def test_only_events_being_handled_can_move_up_automatically():
    assert should_escalate(handled(status=S.RESOLVED, hours_ago=100), T0) is None
    assert should_escalate(facts(urgency=U.URGENT, status=S.DISPATCHED), T0) is None


def test_without_a_known_owner_the_routed_level_is_the_one_that_moves_up():
    # Critical events route to the county, whose parent (the city) is above the default top level.
    assert should_escalate(handled(urgency=U.CRITICAL, owner=None, hours_ago=5), T0) is None
    rules = DispatchRules(escalation=EscalationPolicy(top_level=L.CITY))
    esc = should_escalate(handled(urgency=U.CRITICAL, owner=None, hours_ago=5), T0, rules)
    assert esc is not None and (esc.from_level, esc.to_level) == (L.COUNTY, L.CITY)
