"""Schedules of the jobs runner: the latest due moment at or before now, in China time."""

from datetime import date, datetime, time

import pytest

from domain.schedule import Daily, Every, Monthly, Weekly, previous_month


def test_every_five_minutes_is_due_at_the_last_multiple_of_five_since_midnight():
    s = Every(5)
    assert s.last_due(datetime(2026, 11, 23, 9, 7, 59)) == datetime(2026, 11, 23, 9, 5)
    assert s.last_due(datetime(2026, 11, 23, 9, 5)) == datetime(2026, 11, 23, 9, 5)
    assert s.last_due(datetime(2026, 11, 23, 0, 4)) == datetime(2026, 11, 23, 0, 0)
    assert Every(1).last_due(datetime(2026, 11, 23, 9, 7, 30)) == datetime(2026, 11, 23, 9, 7)


def test_every_n_minutes_refuses_an_n_that_does_not_divide_a_day():
    with pytest.raises(ValueError):
        Every(7)
    with pytest.raises(ValueError):
        Every(0)


def test_a_daily_job_is_due_today_once_its_time_has_come_and_yesterday_before():
    s = Daily(time(2, 0))
    assert s.last_due(datetime(2026, 11, 23, 1, 59)) == datetime(2026, 11, 22, 2, 0)
    assert s.last_due(datetime(2026, 11, 23, 2, 0)) == datetime(2026, 11, 23, 2, 0)
    assert s.last_due(datetime(2026, 11, 23, 23, 0)) == datetime(2026, 11, 23, 2, 0)
    assert s.label == "每天 02:00"


def test_a_weekly_job_is_due_on_the_last_such_weekday_at_its_time():
    s = Weekly(0, time(1, 30))  # Monday; 2026-11-23 is a Monday
    assert s.last_due(datetime(2026, 11, 25, 12, 0)) == datetime(2026, 11, 23, 1, 30)
    assert s.last_due(datetime(2026, 11, 23, 1, 0)) == datetime(2026, 11, 16, 1, 30)
    assert s.last_due(datetime(2026, 11, 23, 1, 30)) == datetime(2026, 11, 23, 1, 30)
    assert s.label == "每周一 01:30"


def test_a_monthly_job_is_due_on_its_day_of_this_month_or_the_month_before():
    s = Monthly(1, time(2, 0))
    assert s.last_due(datetime(2026, 12, 1, 2, 0)) == datetime(2026, 12, 1, 2, 0)
    assert s.last_due(datetime(2026, 12, 1, 1, 0)) == datetime(2026, 11, 1, 2, 0)
    assert s.last_due(datetime(2027, 1, 1, 0, 0)) == datetime(2026, 12, 1, 2, 0)
    with pytest.raises(ValueError):
        Monthly(31, time(2, 0))


def test_a_runner_down_for_days_finds_only_the_latest_due_moment():
    s = Daily(time(1, 0))
    before, after = datetime(2026, 11, 20, 9, 0), datetime(2026, 11, 24, 9, 0)
    assert s.last_due(after) == datetime(2026, 11, 24, 1, 0)
    assert s.last_due(before) == datetime(2026, 11, 20, 1, 0)


def test_the_month_before_is_a_whole_calendar_month():
    assert previous_month(date(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 11, 30))
    assert previous_month(date(2027, 1, 1)) == (date(2026, 12, 1), date(2026, 12, 31))
    assert previous_month(date(2028, 3, 15)) == (date(2028, 2, 1), date(2028, 2, 29))
