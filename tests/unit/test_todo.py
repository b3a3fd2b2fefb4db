"""我的待办: which events wait on whom (the loop's next step and who answers for it), and in what order."""

from datetime import datetime, timedelta

import pytest

from domain.event_flow import Action
from domain.todo import Desk, answering_level, most_urgent, next_step, order_key, waiting
from domain.vocabulary import AdminLevel, EventStatus, Role, Urgency

NOW = datetime(2026, 11, 21, 9, 30)
TOWN, VILLAGE, GRID, OTHER_GRID = 10, 11, 12, 13
POLICE, ZONGZHI = 7, 8


def ev(id_, status, *, lead=None, owner=VILLAGE, grid=GRID, due=None, reported=None, urgency=Urgency.NORMAL):
    return {
        "id": id_,
        "status": status,
        "lead_department_id": lead,
        "owner_unit_id": owner,
        "grid_id": grid,
        "due_at": due,
        "reported_at": reported or NOW - timedelta(hours=id_),
        "urgency": urgency,
    }


LEADER = Desk(Role.TOWNSHIP_LEADER, owner_units=frozenset({TOWN, VILLAGE, GRID}))
HANDLER = Desk(Role.DEPARTMENT, department_id=POLICE)
WORKER = Desk(Role.INSPECTOR, grids=frozenset({GRID}))


@pytest.mark.parametrize(
    ("status", "leader", "handler", "worker"),
    [
        (EventStatus.REPORTED, Action.ACCEPT, None, Action.ACCEPT),
        (EventStatus.ACCEPTED, Action.DISPATCH, None, None),
        (EventStatus.RETURNED, Action.DISPATCH, None, None),
        (EventStatus.DISPATCHED, None, Action.START, None),
        (EventStatus.IN_PROGRESS, None, Action.RESOLVE, None),
        (EventStatus.RESOLVED, Action.VERIFY, None, None),
        (EventStatus.VERIFIED, None, None, None),
        (EventStatus.RATED, None, None, None),
        (EventStatus.ARCHIVED, None, None, None),
        (EventStatus.REJECTED, None, None, None),
    ],
)
def test_each_status_waits_on_the_one_who_takes_its_next_step(status, leader, handler, worker):
    e = ev(1, status, lead=POLICE)
    assert (next_step(LEADER, e), next_step(HANDLER, e), next_step(WORKER, e)) == (leader, handler, worker)


def test_a_dispatched_event_waits_on_its_lead_department_only_never_a_cooperator_or_another():
    e = ev(1, EventStatus.DISPATCHED, lead=ZONGZHI)
    assert next_step(Desk(Role.DEPARTMENT, department_id=ZONGZHI), e) is Action.START
    assert next_step(HANDLER, e) is None
    assert next_step(Desk(Role.DEPARTMENT, department_id=None), ev(2, EventStatus.DISPATCHED)) is None


def test_an_event_left_to_the_village_waits_on_its_grid_worker_and_one_sent_to_a_department_does_not():
    assert next_step(WORKER, ev(1, EventStatus.IN_PROGRESS, lead=None)) is Action.RESOLVE
    assert next_step(WORKER, ev(2, EventStatus.DISPATCHED, lead=None)) is Action.START
    assert next_step(WORKER, ev(3, EventStatus.DISPATCHED, lead=POLICE)) is None  # the county police's
    assert next_step(WORKER, ev(4, EventStatus.REPORTED, grid=OTHER_GRID)) is None  # not their grid


def test_a_leader_answers_for_their_own_levels_events_not_another_units():
    county = Desk(Role.COMMAND_CENTER, owner_units=frozenset({99}))
    assert next_step(county, ev(1, EventStatus.ACCEPTED, owner=VILLAGE)) is None
    assert next_step(county, ev(2, EventStatus.ACCEPTED, owner=99)) is Action.DISPATCH
    assert next_step(LEADER, ev(3, EventStatus.ACCEPTED, owner=99)) is None


def test_the_township_answers_for_its_villages_and_grids_and_every_other_level_for_itself():
    assert answering_level(AdminLevel.GRID) is AdminLevel.TOWNSHIP
    assert answering_level(AdminLevel.VILLAGE) is AdminLevel.TOWNSHIP
    for level in (AdminLevel.TOWNSHIP, AdminLevel.COUNTY, AdminLevel.CITY):
        assert answering_level(level) is level


def test_overdue_first_the_longest_overdue_first_then_the_oldest_report_first():
    events = [
        ev(
            1,
            EventStatus.IN_PROGRESS,
            lead=POLICE,
            due=NOW + timedelta(hours=5),
            reported=NOW - timedelta(days=2),
        ),
        ev(
            2,
            EventStatus.IN_PROGRESS,
            lead=POLICE,
            due=NOW - timedelta(hours=1),
            reported=NOW - timedelta(hours=3),
        ),
        ev(
            3,
            EventStatus.DISPATCHED,
            lead=POLICE,
            due=NOW - timedelta(days=2),
            reported=NOW - timedelta(hours=4),
        ),
        ev(
            4,
            EventStatus.DISPATCHED,
            lead=POLICE,
            due=NOW + timedelta(hours=1),
            reported=NOW - timedelta(days=5),
        ),
        ev(5, EventStatus.ARCHIVED, lead=POLICE, reported=NOW - timedelta(days=9)),  # waits on nobody
        ev(6, EventStatus.DISPATCHED, lead=ZONGZHI, due=NOW - timedelta(days=9)),  # another department's
    ]
    mine = waiting(HANDLER, events, NOW)
    assert [e["id"] for e in mine] == [3, 2, 4, 1]
    assert [e["late"] for e in mine] == [True, True, False, False]
    assert [e["step"] for e in mine] == [Action.START, Action.RESOLVE, Action.START, Action.RESOLVE]


def test_between_equals_the_more_urgent_then_the_lower_number_comes_first():
    same = NOW - timedelta(hours=2)
    a = ev(5, EventStatus.REPORTED, reported=same, urgency=Urgency.NORMAL)
    b = ev(9, EventStatus.REPORTED, reported=same, urgency=Urgency.CRITICAL)
    c = ev(7, EventStatus.REPORTED, reported=same, urgency=Urgency.NORMAL)
    assert [e["id"] for e in sorted([a, b, c], key=lambda e: order_key(e, NOW))] == [9, 5, 7]
    # No deadline (None) is never late.
    assert waiting(LEADER, [ev(1, EventStatus.REPORTED, due=None)], NOW)[0]["late"] is False


def test_the_toast_names_the_most_urgent_arrival():
    arrivals = [
        ev(1, EventStatus.REPORTED, urgency=Urgency.NORMAL, reported=NOW),
        ev(2, EventStatus.REPORTED, urgency=Urgency.URGENT, reported=NOW),
        ev(3, EventStatus.REPORTED, urgency=Urgency.URGENT, reported=NOW - timedelta(minutes=1)),
    ]
    assert most_urgent(arrivals)["id"] == 3
    assert most_urgent([]) is None
