"""Roles, page rights, scope and masking of personal data."""

from domain.access import CurrentUser, in_scope, mask_name, mask_phone
from domain.vocabulary import Role

PARENT = {1: None, 2: 1, 3: 2, 4: 3, 5: 3, 6: 4}  # city 1 → county 2 → township 3 → villages 4, 5 → grid 6


def test_a_unit_is_in_scope_only_inside_the_scopes_subtree():
    assert in_scope(6, 3, PARENT) and in_scope(3, 3, PARENT) and in_scope(6, 1, PARENT)
    assert not in_scope(5, 4, PARENT) and not in_scope(2, 3, PARENT)


def test_an_inspector_may_open_my_day_but_not_the_big_screen():
    inspector = CurrentUser(1, "i", "检查员", Role.INSPECTOR, 6)
    assert inspector.may_open("my_day") and inspector.may_open("home")
    assert not inspector.may_open("big_screen") and not inspector.may_open("risk_map")
    assert not inspector.may("unmask_personal_data")


def test_phones_and_names_are_masked_for_display():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    assert mask_phone(None) is None
