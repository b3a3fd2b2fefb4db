"""Scoring early warnings against an anomaly manifest, on hand-made alerts whose right score is known."""

from datetime import date, timedelta

from bench.warning_match import Anomaly, anomalies_from_manifest, chronic_ready, chronic_report_days, match
from domain.early_warning import Alert, AlertKind, ChronicParams
from domain.vocabulary import EventCategory

# Township 1 → village 10 → grids 100, 101; village 11 → grid 110.
PARENT = {1: None, 10: 1, 11: 1, 100: 10, 101: 10, 110: 11}
LEVEL = {1: "township", 10: "village", 11: "village", 100: "grid", 101: "grid", 110: "grid"}
CODES = {"T": 1, "V10": 10, "V11": 11, "G100": 100, "G101": 101, "G110": 110}

SPIKE = Anomaly(
    "spike", "突发", "environment", "异味扰民", 100, frozenset({10}), date(2026, 11, 4), date(2026, 11, 6)
)
MASS = Anomaly(
    "mass", "群发", "dispute", "劳资纠纷", 110, frozenset({11}), date(2026, 11, 13), date(2026, 11, 13)
)


def alert(
    kind: AlertKind,
    unit: int,
    day: date,
    category: EventCategory = EventCategory.ENVIRONMENT,
    place: str | None = None,
) -> Alert:
    evidence = {"place_key": place} if place else {}
    return Alert(kind, day, unit, LEVEL[unit], category, day, day, evidence, "…")


def test_an_alert_of_the_kind_on_the_anomalys_grid_the_next_day_detects_it_with_a_delay_of_one_day():
    ev = match([alert(AlertKind.SPIKE, 100, date(2026, 11, 5))], [SPIKE], PARENT)
    (d,) = ev.detections
    assert d.found and d.first_day == date(2026, 11, 5) and d.delay_days == 1
    assert ev.false_alerts == []


def test_a_listed_village_above_counts_but_a_whole_township_does_not():
    ev = match(
        [alert(AlertKind.SPIKE, 10, date(2026, 11, 4)), alert(AlertKind.SPIKE, 1, date(2026, 11, 4))],
        [SPIKE],
        PARENT,
    )
    assert ev.detections[0].delay_days == 0
    assert [a.unit_id for a in ev.false_alerts] == [1]


def test_the_wrong_kind_category_place_or_time_does_not_detect():
    alerts = [
        alert(AlertKind.FREQUENT, 100, date(2026, 11, 5)),  # other kind: related, not a detection
        alert(AlertKind.SPIKE, 100, date(2026, 11, 5), EventCategory.URBAN),  # other category
        alert(AlertKind.SPIKE, 101, date(2026, 11, 5)),  # sibling grid
        alert(AlertKind.SPIKE, 100, date(2026, 11, 3)),  # before the start
        alert(AlertKind.SPIKE, 100, date(2026, 11, 8)),  # after end + 1 day
    ]
    ev = match(alerts, [SPIKE], PARENT)
    assert not ev.detections[0].found
    assert ev.detections[0].delay_days is None
    # The 多发 during and the 突发 within 7 days after the anomaly on its grid are its aftermath, not false.
    assert len(ev.related_alerts) == 2
    assert {(a.unit_id, a.category.value, a.day.day) for a in ev.false_alerts} == {
        (100, "urban", 5),
        (101, "environment", 5),
        (100, "environment", 3),
    }


def test_false_alarms_count_episodes_by_key_and_alert_days_per_township_week():
    repeat = [
        alert(AlertKind.CHRONIC, 110, date(2026, 11, 1) + timedelta(days=k), place="p1") for k in range(3)
    ]
    other = alert(AlertKind.CHRONIC, 110, date(2026, 11, 1), place="p2")
    ev = match([*repeat, other, alert(AlertKind.SPIKE, 100, date(2026, 11, 4))], [SPIKE, MASS], PARENT)
    f = ev.figures(township_weeks=4.0)
    assert len(ev.false_episodes) == 2
    assert f["early_warning_false_alarm_episodes_count"] == 2
    assert f["early_warning_false_alarms_per_township_week"] == 0.5
    assert f["early_warning_false_alarm_days_per_township_week"] == 1.0
    assert f["early_warning_false_alarm_chronic_count"] == 2
    assert f["early_warning_anomalies_count"] == 2
    assert f["early_warning_found_share"] == 0.5
    assert f["early_warning_found_within_1_day_share"] == 0.5
    assert f["early_warning_spike_found_share"] == 1.0 and f["early_warning_mass_found_share"] == 0.0
    assert f["early_warning_max_days_to_detect"] == 0


def test_a_chronic_is_also_timed_from_the_day_its_reports_meet_the_definition():
    start = date(2026, 1, 1)
    days = [start] * 3 + [start + timedelta(days=7)] * 3 + [start + timedelta(days=14)] * 2
    ready = chronic_ready(days, start, date(2026, 3, 1), ChronicParams(weeks=8, min_weeks=3, min_events=8))
    assert ready == date(2026, 1, 15)
    chronic = Anomaly(
        "chronic", "顽疾", "urban", "垃圾满溢", 101, frozenset({10}), start, date(2026, 3, 1), ready
    )
    ev = match([alert(AlertKind.CHRONIC, 101, date(2026, 1, 16), EventCategory.URBAN)], [chronic], PARENT)
    d = ev.detections[0]
    assert d.delay_days == 15 and d.delay_after_ready_days == 1
    f = ev.figures(1.0)
    assert f["early_warning_found_within_1_day_share"] == 0.0
    assert f["early_warning_found_within_1_day_of_definition_share"] == 1.0
    assert f["early_warning_chronic_max_days_after_definition"] == 1


def test_reports_all_in_one_week_never_make_a_chronic():
    start = date(2026, 1, 1)
    assert chronic_ready([start + timedelta(days=k % 5) for k in range(20)], start, date(2026, 3, 1)) is None


def test_the_manifest_resolves_codes_and_leaves_out_townships_above():
    manifest = {
        "anomalies": [
            {
                "kind": "突发",
                "kind_en": "spike",
                "category": "environment",
                "title": "异味扰民",
                "unit_codes": ["G100", "V10", "T"],
                "start": "2026-11-04 07:00:00",
                "end": "2026-11-06 07:00:00",
            },
            {
                "kind": "新苗头",
                "kind_en": "emerging",
                "category": "natural_hazard",
                "title": "x",
                "unit_codes": ["T", "V11"],
                "start": "2026-11-01 20:42:44",
                "end": "2026-11-22 10:42:03",
            },
        ]
    }
    spike, emerging = anomalies_from_manifest(manifest, CODES, LEVEL)
    assert spike == SPIKE
    assert emerging.unit_id == 1 and emerging.units_above == frozenset({11})
    assert emerging.start == date(2026, 11, 1)


def test_a_chronic_place_stays_related_while_the_rule_keeps_it_alive_after_its_last_report():
    end = date(2026, 3, 1)
    chronic = Anomaly("chronic", "顽疾", "urban", "垃圾满溢", 101, frozenset({10}), date(2026, 1, 1), end)
    late = [
        alert(AlertKind.CHRONIC, 101, end + timedelta(days=k), EventCategory.URBAN, place="p")
        for k in (10, 14, 15)
    ]
    ev = match(late, [chronic], PARENT)
    assert [a.day for a in ev.related_alerts] == [end + timedelta(days=10), end + timedelta(days=14)]
    assert [a.day for a in ev.false_alerts] == [end + timedelta(days=15)]


def test_a_chronic_s_own_reports_are_its_title_at_its_exact_place_without_duplicates():
    import numpy as np
    import pandas as pd

    lon, lat = 118.90304774316432, 28.965166044864
    rows = pd.DataFrame(
        {
            "reported_at": pd.to_datetime(
                [
                    "2025-11-23 16:15",
                    "2025-11-24 08:28",
                    "2025-11-29 08:56",
                    "2025-11-29 09:40",
                    "2025-12-01 13:55",
                    "2025-12-02 10:00",
                ]
            ),
            "title": ["出店经营", "出店经营", "出店经营", "出店经营", "出店经营", "占道经营"],
            # the second and fifth are the title at a neighbouring address ~65 m and ~85 m away (within
            # np.isclose's default tolerance), the fourth a duplicate of the third, the last another matter
            "lon": [lon, 118.902360, lon, lon, 118.902154, lon],
            "lat": [lat, 28.965097, lat, lat, 28.965432, lat],
            "merged_into_id": [np.nan, np.nan, np.nan, 3.0, np.nan, np.nan],
        }
    )
    assert chronic_report_days(rows, "出店经营", lon, lat) == [date(2025, 11, 23), date(2025, 11, 29)]
