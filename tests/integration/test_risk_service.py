"""Risk inputs counted in SQL per grid, as of any date, from the stored history: hand-computed cases.

The square area (tests/builders.py) has four grids; two venues, their 平安码 changes, inspections, a
hazard and a few events are placed by hand, and each input is checked on days before, inside and after
the stretches where it applies.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import insert

from db.models import Event, Hazard, Inspection, SafetyCodeChange, Venue
from domain.risk import CATEGORY_BASE
from domain.vocabulary import VenueCategory
from services.risk import area_risk, grid_inputs, venue_colours
from services.risk_map import recent_events
from tests.builders import grid_centre, make_square_area

G1, G2 = "990001001001001", "990001001001002"
SHOP = CATEGORY_BASE[VenueCategory.STREET_SHOP]  # 0.8
HAZCHEM = CATEGORY_BASE[VenueCategory.HAZCHEM]  # 3.0


def _venue(conn, ids, grid, code, category, current, created):
    lon, lat = grid_centre(0 if grid == G1 else 1)
    return conn.execute(
        insert(Venue).returning(Venue.id),
        {
            "code": code,
            "name": code,
            "category": category,
            "address": "方城路",
            "lon": lon,
            "lat": lat,
            "grid_id": ids[grid],
            "safety_code": current,
            "responsible_person": "王某",
            "created_at": created,
        },
    ).scalar_one()


def _event(conn, ids, grid, category, reported, merged_into=None):
    lon, lat = grid_centre(0 if grid == G1 else 1)
    return conn.execute(
        insert(Event).returning(Event.id),
        {
            "source": "grid_worker",
            "category": category,
            "title": "巡查发现",
            "lon": lon,
            "lat": lat,
            "grid_id": ids[grid],
            "status": "reported",
            "urgency": "normal",
            "owner_unit_id": ids[grid],
            "merged_into_id": merged_into,
            "reported_at": reported,
            "updated_at": reported,
        },
    ).scalar_one()


@pytest.fixture
def history(empty_engine):
    """Shop A in grid 1: red now; yellow from 02-01, red again from 03-01; visited 02-05 and 03-10; a major
    hazard found 03-01, due 03-05, rectified 03-08. Hazchem plant B in grid 2 from 02-10: green, never
    visited. Events in grid 1 on 03-10: one safety event, its merged duplicate, one not about safety."""
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
        a = _venue(conn, ids, G1, "V-A", "street_shop", "red", datetime(2026, 1, 1))
        _venue(conn, ids, G2, "V-B", "hazchem", "green", datetime(2026, 2, 10))
        conn.execute(
            insert(SafetyCodeChange),
            [
                {
                    "venue_id": a,
                    "changed_at": datetime(2026, 2, 1, 9),
                    "from_code": "green",
                    "to_code": "yellow",
                    "reason": "复查",
                },
                {
                    "venue_id": a,
                    "changed_at": datetime(2026, 3, 1, 9),
                    "from_code": "yellow",
                    "to_code": "red",
                    "reason": "重大隐患",
                },
            ],
        )
        conn.execute(
            insert(Inspection),
            [
                {"venue_id": a, "inspected_at": datetime(2026, 2, 5, 10), "result": "pass"},
                {"venue_id": a, "inspected_at": datetime(2026, 3, 10, 23, 30), "result": "fail"},
            ],
        )
        conn.execute(
            insert(Hazard),
            {
                "venue_id": a,
                "severity": "major",
                "description": "消防通道堵塞",
                "found_on": date(2026, 3, 1),
                "deadline": date(2026, 3, 5),
                "status": "rectified",
                "rectified_on": date(2026, 3, 8),
            },
        )
        first = _event(conn, ids, G1, "work_safety", datetime(2026, 3, 10, 8))
        _event(conn, ids, G1, "work_safety", datetime(2026, 3, 10, 9), merged_into=first)
        _event(conn, ids, G1, "urban", datetime(2026, 3, 10, 10))
    return empty_engine, ids


def _inputs(engine, ids, day) -> dict[str, dict[str, float]]:
    with engine.connect() as conn:
        frame = grid_inputs(conn, day)
    code = {v: k for k, v in ids.items()}
    return {code[g]: {k: v for k, v in row.items() if v} for g, row in frame.to_dict("index").items()}


def test_colours_follow_the_recorded_changes_and_a_venue_counts_from_its_creation(history):
    engine, ids = history
    assert _inputs(engine, ids, date(2026, 1, 15)) == {
        G1: {"red_weight": SHOP, "red_venues": 1}
    }  # no change yet: current colour
    assert _inputs(engine, ids, date(2026, 2, 9)) == {
        G1: {"yellow_weight": SHOP, "yellow_venues": 1}
    }  # B does not exist yet
    assert _inputs(engine, ids, date(2026, 2, 10))[G2] == {"green_weight": HAZCHEM, "green_venues": 1}
    with engine.connect() as conn:
        colours = venue_colours(conn, date(2026, 2, 20))
    assert colours[["grid_id", "category", "code"]].values.tolist() == [
        [ids[G1], "street_shop", "yellow"],
        [ids[G2], "hazchem", "green"],
    ]


def test_an_inspection_is_overdue_after_its_colours_cadence_and_a_never_visited_venue_is_not(history):
    engine, ids = history
    # Yellow (7 days) since the visit of 02-05: due 02-12, overdue from 02-13.
    assert "overdue_inspections" not in _inputs(engine, ids, date(2026, 2, 12))[G1]
    assert _inputs(engine, ids, date(2026, 2, 13))[G1]["overdue_inspections"] == 1
    # Red (1 day) since the late visit of 03-10 23:30: due 03-11, overdue from 03-12.
    assert "overdue_inspections" not in _inputs(engine, ids, date(2026, 3, 11))[G1]
    assert _inputs(engine, ids, date(2026, 3, 12))[G1]["overdue_inspections"] == 1
    assert "overdue_inspections" not in _inputs(engine, ids, date(2026, 3, 12))[G2]  # B: never visited


def test_a_hazard_counts_while_open_and_as_overdue_past_its_deadline(history):
    engine, ids = history
    assert "major_hazards" not in _inputs(engine, ids, date(2026, 2, 28))[G1]
    on_4th, on_6th = _inputs(engine, ids, date(2026, 3, 4))[G1], _inputs(engine, ids, date(2026, 3, 6))[G1]
    assert (on_4th["major_hazards"], on_4th.get("overdue_hazards", 0)) == (1, 0)
    assert (on_6th["major_hazards"], on_6th["overdue_hazards"]) == (1, 1)
    assert "major_hazards" not in _inputs(engine, ids, date(2026, 3, 8))[G1]  # rectified that day


def test_safety_events_of_the_last_30_days_count_without_merged_duplicates(history):
    engine, ids = history
    assert _inputs(engine, ids, date(2026, 3, 9))[G1].get("safety_events", 0) == 0
    assert _inputs(engine, ids, date(2026, 3, 10))[G1]["safety_events"] == 1
    assert _inputs(engine, ids, date(2026, 4, 8))[G1]["safety_events"] == 1  # 30 days up to 04-08
    assert _inputs(engine, ids, date(2026, 4, 9))[G1].get("safety_events", 0) == 0


def test_every_level_sums_its_grids_and_scores_by_hand(history):
    engine, ids = history
    with engine.connect() as conn:
        risk = area_risk(conn, date(2026, 3, 6))
    # Grid 1 (1,000 residents): red shop 10 × 0.8 + major hazard 8 + overdue 4 + overdue visit
    # (yellow→red on 03-01, last visit 02-05: red cadence passed) 1 = 21 points × 10 per 10,000.
    assert risk.at[ids[G1], "score"] == pytest.approx(210.0)
    # The township (4,000 residents) holds both grids: + green hazchem 0.2 × 3.0 = 21.6 × 2.5.
    assert risk.at[ids["990001001"], "score"] == pytest.approx(54.0)
    assert risk.at[ids["990000"], "major_hazards"] == 1 and risk.at[ids["990000"], "red_weight"] == SHOP


def test_an_areas_latest_events_come_newest_first_and_only_from_its_grids(history):
    engine, ids = history
    with engine.connect() as conn:
        g1 = recent_events(conn, [ids[G1]], datetime(2026, 3, 11, 12), limit=2)
        g2 = recent_events(conn, [ids[G2]], datetime(2026, 3, 11, 12))
        later = recent_events(
            conn, [ids[G1]], datetime(2026, 6, 1)
        )  # beyond two days: the grid's whole history
    assert list(g1["reported_at"]) == [datetime(2026, 3, 10, 10), datetime(2026, 3, 10, 9)]
    assert list(g1["category"]) == ["城镇管理", "安全生产"] and g2.empty
    assert len(later) == 3


def test_an_area_without_venues_or_events_scores_zero_and_shows_no_data_not_green(empty_engine):
    with empty_engine.begin() as conn:
        ids = make_square_area(conn)
    with empty_engine.connect() as conn:
        risk = area_risk(conn, date(2026, 3, 1))
    assert sorted(risk.index) == sorted(ids.values())
    assert (risk["score"] == 0).all() and set(risk["risk_class"]) == {"no_data"}
