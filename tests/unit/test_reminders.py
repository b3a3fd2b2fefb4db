"""督办提醒 rules: a reminder when the deadline is in the last fifth of its stage's limit, or past."""

from datetime import datetime, timedelta

from domain.deadlines import DeadlineRules, Stage
from domain.reminders import ReminderKind, near_window, reminder_for, widest_window
from domain.vocabulary import EventStatus, Urgency

NOW = datetime(2026, 11, 23, 9, 0)


def test_an_event_early_in_its_stage_gets_no_reminder():
    # Handling an ordinary matter takes 72 h: 20 hours before the deadline is not near yet.
    assert reminder_for(EventStatus.IN_PROGRESS, Urgency.NORMAL, NOW + timedelta(hours=20), NOW) is None


def test_a_deadline_in_the_last_fifth_of_the_limit_is_near():
    found = reminder_for(EventStatus.IN_PROGRESS, Urgency.NORMAL, NOW + timedelta(hours=14), NOW)
    assert found is not None and found.kind is ReminderKind.NEAR and found.stage is Stage.HANDLE
    assert found.message == "处置即将超时（时限 11-23 23:00，剩余14小时），请抓紧办理"
    # Acceptance of a critical matter has 15 minutes: near in its last 3.
    assert reminder_for(EventStatus.REPORTED, Urgency.CRITICAL, NOW + timedelta(minutes=4), NOW) is None
    near = reminder_for(EventStatus.REPORTED, Urgency.CRITICAL, NOW + timedelta(minutes=3), NOW)
    assert near is not None and "剩余3分钟" in near.message


def test_a_past_deadline_is_late_and_says_by_how_much():
    found = reminder_for(EventStatus.ACCEPTED, Urgency.URGENT, NOW - timedelta(hours=3, minutes=5), NOW)
    assert found is not None and found.kind is ReminderKind.LATE
    assert found.message == "派单超时3小时（时限 11-23 05:55），请督促办理"


def test_closed_events_and_events_without_a_deadline_get_none():
    assert reminder_for(EventStatus.ARCHIVED, Urgency.NORMAL, NOW - timedelta(days=1), NOW) is None
    assert reminder_for(EventStatus.RATED, Urgency.NORMAL, NOW - timedelta(days=1), NOW) is None
    assert reminder_for(EventStatus.REPORTED, Urgency.NORMAL, None, NOW) is None


def test_the_near_window_follows_the_rules_the_administrator_saved():
    rules = DeadlineRules.from_dict({"handle": {"normal": 10, "urgent": 5, "critical": 1}})
    assert near_window(Stage.HANDLE, Urgency.NORMAL, rules) == timedelta(hours=2)
    assert widest_window(rules) == timedelta(hours=48 * 0.2)  # verification (48 h) is now the longest
