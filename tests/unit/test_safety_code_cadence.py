"""平安码 cadence: when a venue is due again, and whether a visit was on time."""

from datetime import date, datetime

import pandas as pd

from domain.safety_code import next_due, on_time, overdue_days
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


# --- on time: by the colour in force when the previous visit's day ended ------------------------


def _visits(*rows):
    """(venue, day, previous visit's day) as the on-time rule takes them."""
    return pd.DataFrame(
        {
            "venue_id": [r[0] for r in rows],
            "day": pd.to_datetime([r[1] for r in rows]),
            "prev_day": pd.to_datetime([r[2] for r in rows]),
        }
    )


def _changes(*rows):
    return pd.DataFrame(list(rows), columns=["venue_id", "changed_at", "code"])


def _judged(visits, changes, current=None):
    out = on_time(visits, changes, current or {})
    return {
        (int(v), d.date()): (c, bool(ok))
        for v, d, c, ok in out[["venue_id", "day", "code", "on_time"]].values
    }


def test_a_visit_is_on_time_up_to_the_previous_visits_day_plus_the_cadence_of_its_colour():
    visits = _visits((1, "2026-11-08", "2026-11-01"), (1, "2026-11-16", "2026-11-08"))
    judged = _judged(visits, _changes((1, datetime(2026, 1, 1), "yellow")))
    assert judged == {(1, date(2026, 11, 8)): ("yellow", True), (1, date(2026, 11, 16)): ("yellow", False)}


def test_a_change_made_during_the_previous_visits_day_sets_the_due_date():
    # Turned red at 17:00 on the day of the visit (the visit that found the hazard): due the next day.
    visits = _visits((1, "2026-11-03", "2026-11-01"))
    changes = _changes((1, datetime(2026, 1, 1), "green"), (1, datetime(2026, 11, 1, 17), "red"))
    assert _judged(visits, changes) == {(1, date(2026, 11, 3)): ("red", False)}


def test_a_change_after_the_previous_visits_day_does_not_move_the_due_date():
    visits = _visits((1, "2026-11-20", "2026-11-01"))
    changes = _changes((1, datetime(2026, 1, 1), "green"), (1, datetime(2026, 11, 2, 9), "red"))
    assert _judged(visits, changes) == {(1, date(2026, 11, 20)): ("green", True)}


def test_without_a_stored_change_the_venues_colour_now_decides_and_else_green():
    visits = _visits((1, "2026-11-09", "2026-11-01"), (2, "2026-11-09", "2026-11-01"))
    judged = _judged(visits, _changes(), {1: SafetyCode.YELLOW})
    assert judged == {(1, date(2026, 11, 9)): ("yellow", False), (2, date(2026, 11, 9)): ("green", True)}
