"""Roles, page rights, scope and masking of personal data."""

from domain.access import CurrentUser, mask_name, mask_phone
from domain.vocabulary import Role


def test_an_inspector_may_open_my_day_but_not_the_big_screen():
    inspector = CurrentUser(1, "i", "检查员", Role.INSPECTOR, 6)
    assert inspector.may_open("my_day") and inspector.may_open("home")
    assert not inspector.may_open("big_screen") and not inspector.may_open("risk_map")
    assert not inspector.may("unmask_personal_data")


def test_phones_and_names_are_masked_for_display():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    assert mask_phone(None) is None


def test_a_grid_worker_handles_only_events_no_department_leads():
    """开始处置 / 退单 / 办结 of an event a department leads are that department's; a grid worker takes them
    only on an event handed to their village or grid with no lead department. Other actions, other roles:
    unchanged."""
    from domain.access import HANDLING, handler_may_act
    from domain.event_flow import Action

    assert {Action.START, Action.RETURN, Action.RESOLVE} == HANDLING
    for action in HANDLING:
        assert not handler_may_act(Role.INSPECTOR, action, led_by_department=True)
        assert handler_may_act(Role.INSPECTOR, action, led_by_department=False)
        assert handler_may_act(Role.DEPARTMENT, action, led_by_department=True)
        assert handler_may_act(Role.ADMIN, action, led_by_department=True)
    for action in set(Action) - HANDLING:
        assert handler_may_act(Role.INSPECTOR, action, led_by_department=True)
