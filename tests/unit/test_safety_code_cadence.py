"""平安码 cadence."""

from datetime import date

from domain.safety_code import next_due, overdue_days
from domain.vocabulary import SafetyCode


def test_red_is_due_the_next_day_yellow_in_a_week_green_in_thirty_days():
    d = date(2026, 11, 21)
    assert next_due(SafetyCode.RED, d) == date(2026, 11, 22)
    assert next_due(SafetyCode.YELLOW, d) == date(2026, 11, 28)
    assert next_due(SafetyCode.GREEN, d) == date(2026, 12, 21)


def test_a_visit_is_overdue_only_after_its_due_date():
    assert overdue_days(date(2026, 11, 21), date(2026, 11, 21)) == 0
    assert overdue_days(date(2026, 11, 21), date(2026, 11, 24)) == 3
    assert overdue_days(None, date(2026, 11, 24)) == 0
