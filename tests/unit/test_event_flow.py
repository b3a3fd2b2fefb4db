"""The event loop's transition table, and random action sequences against its replay."""

import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from domain.event_flow import (
    ACTION_LABELS,
    NOTE_ONLY,
    SYSTEM_ONLY,
    TRANSITIONS,
    Action,
    IllegalTransition,
    allowed_actions,
    next_status,
    replay,
)
from domain.vocabulary import OPEN_STATUSES, TIMED_STATUSES
from domain.vocabulary import EventStatus as S

A = Action
FROM_STATES: list[S | None] = [None, *S]
ILLEGAL = [(s, a) for s in FROM_STATES for a in A if (s, a) not in TRANSITIONS]


def _id(pair) -> str:
    s, a = pair
    return f"{s.value if s else 'new'}-{a.value}"


@pytest.mark.parametrize(("pair", "to"), list(TRANSITIONS.items()), ids=[_id(p) for p in TRANSITIONS])
def test_every_transition_of_the_table_is_allowed_and_lands_where_the_table_says(pair, to):
    status, action = pair
    assert next_status(status, action) is to
    assert action in allowed_actions(status)


@pytest.mark.parametrize("pair", ILLEGAL, ids=[_id(p) for p in ILLEGAL])
def test_every_other_pair_is_refused_with_a_chinese_message(pair):
    status, action = pair
    with pytest.raises(IllegalTransition) as info:
        next_status(status, action)
    assert (info.value.status, info.value.action) == (status, action)
    where = status.label if status else "（新事件）"
    assert str(info.value) == f"事件当前状态为“{where}”，不能执行“{ACTION_LABELS[action]}”"


def test_the_refusal_names_the_status_and_the_action_in_chinese():
    with pytest.raises(IllegalTransition, match="事件当前状态为“已归档”，不能执行“派单”"):
        next_status(S.ARCHIVED, A.DISPATCH)
    with pytest.raises(IllegalTransition, match="（新事件）"):
        next_status(None, A.ACCEPT)


def test_only_a_report_creates_an_event():
    assert allowed_actions(None) == [A.REPORT]


def test_archived_is_the_only_status_without_a_way_out():
    dead_ends = [s for s in S if not allowed_actions(s)]
    assert dead_ends == [S.ARCHIVED]


def test_every_status_can_be_reached_from_a_report():
    seen, frontier = set(), {None}
    while frontier:
        nxt = {to for (s, _), to in TRANSITIONS.items() if s in frontier} - seen
        seen |= nxt
        frontier = nxt
    assert seen == set(S)


def test_every_open_status_can_still_reach_the_archive():
    for start in OPEN_STATUSES:
        seen, frontier = {start}, {start}
        while frontier:
            frontier = {to for (s, _), to in TRANSITIONS.items() if s in frontier} - seen
            seen |= frontier
        assert S.ARCHIVED in seen, start


def test_escalation_lands_the_event_accepted_at_the_level_above():
    for status in (S.ACCEPTED, S.DISPATCHED, S.RETURNED, S.IN_PROGRESS):
        assert next_status(status, A.ESCALATE) is S.ACCEPTED
    for status in (S.REPORTED, S.RESOLVED, S.VERIFIED, S.RATED, S.ARCHIVED, S.REJECTED):
        assert A.ESCALATE not in allowed_actions(status)


def test_the_happy_path_replays_to_archived():
    trail = [A.REPORT, A.ACCEPT, A.DISPATCH, A.START, A.RESOLVE, A.VERIFY, A.RATE, A.ARCHIVE]
    assert replay(trail) is S.ARCHIVED


def test_an_empty_trail_cannot_be_replayed():
    with pytest.raises(ValueError, match="空的处置记录"):
        replay([])


def test_a_trail_with_an_illegal_step_does_not_replay():
    with pytest.raises(IllegalTransition):
        replay([A.REPORT, A.DISPATCH])


class EventLoop(RuleBasedStateMachine):
    """A person pressing random buttons: the status only moves by the table, and the trail replays to it."""

    def __init__(self) -> None:
        super().__init__()
        self.status: S | None = None
        self.trail: list[Action] = []

    @rule(action=st.sampled_from(list(A)))
    def act(self, action: Action) -> None:
        before, trail_before = self.status, list(self.trail)
        legal = (self.status, action) in TRANSITIONS
        try:
            after = next_status(self.status, action)
        except IllegalTransition:
            assert not legal
            assert (self.status, self.trail) == (before, trail_before)
            return
        assert legal
        self.status = after
        self.trail.append(action)

    @precondition(lambda self: self.status is not None and allowed_actions(self.status))
    @rule(data=st.data())
    def act_legally(self, data: st.DataObject) -> None:
        # Random buttons rarely walk deep into the loop; half of the steps take an offered action.
        action = data.draw(st.sampled_from(allowed_actions(self.status)))
        self.status = next_status(self.status, action)
        self.trail.append(action)

    @invariant()
    def the_trail_replays_to_the_current_status(self) -> None:
        if self.trail:
            assert replay(self.trail) is self.status
        else:
            assert self.status is None

    @invariant()
    def the_offered_actions_are_exactly_the_legal_ones(self) -> None:
        for action in A:
            assert (action in allowed_actions(self.status)) == ((self.status, action) in TRANSITIONS)


EventLoop.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_action_sequences_keep_the_trail_and_the_status_in_step = EventLoop.TestCase


def test_an_opinion_is_written_only_while_an_event_is_handled_and_moves_nothing():
    assert {s for s in S if A.COMMENT in allowed_actions(s)} == {S.DISPATCHED, S.IN_PROGRESS}
    assert all(next_status(s, A.COMMENT) is s for s in (S.DISPATCHED, S.IN_PROGRESS))
    assert A.COMMENT in NOTE_ONLY and all(
        next_status(s, a) is not s
        for (s, a) in TRANSITIONS
        if a not in NOTE_ONLY | SYSTEM_ONLY | {A.ESCALATE} and s is not None
    )


def test_the_system_marks_any_event_whose_clock_runs_late_where_it_stands_and_no_role_may():
    from domain.access import ACTION_ROLES
    from domain.deadlines import STAGE_OF_STATUS

    timed = {s for s, stage in STAGE_OF_STATUS.items() if stage is not None}
    assert {s for s in S if A.OVERDUE in allowed_actions(s)} == timed == set(TIMED_STATUSES)
    assert S.RESOLVED in timed  # 已办结 awaiting 核查: the 核查 deadline runs
    assert all(next_status(s, A.OVERDUE) is s for s in timed)
    with pytest.raises(IllegalTransition):
        next_status(S.VERIFIED, A.OVERDUE)  # 核查 done: no clock runs any more
    assert A.OVERDUE in SYSTEM_ONLY and A.OVERDUE not in ACTION_ROLES  # never offered to a person


def test_a_cooperating_department_may_only_write_opinions_and_the_lead_may_do_all():
    from domain.access import department_may_act

    assert [a for a in A if department_may_act(a, leads=False, cooperates=True)] == [A.COMMENT]
    assert all(department_may_act(a, leads=True, cooperates=False) for a in A)
    assert not any(department_may_act(a, leads=False, cooperates=False) for a in A)


def test_the_lead_department_moves_an_event_only_while_it_is_with_it():
    """After its 上移 or 退单 the event waits on a leader (已受理, 已退单): the department that had it may
    still write its opinion, not move it again (it had pushed the event up to the county)."""
    from domain.access import department_may_act

    def moves(status):
        return {a for a in A if department_may_act(a, leads=True, cooperates=False, status=status)}

    assert moves(S.DISPATCHED) == moves(S.IN_PROGRESS) == set(A)
    for waiting in (S.ACCEPTED, S.RETURNED, S.RESOLVED, S.REPORTED):
        assert moves(waiting) == {A.COMMENT}, waiting


def test_the_turning_back_steps_need_a_reason_and_an_opinion_needs_its_text():
    from domain.event_flow import NEEDS_REASON, missing_note

    assert {ACTION_LABELS[a] for a in NEEDS_REASON} == {"退回", "退单", "上移", "重新处置"}
    for action in NEEDS_REASON:
        for blank in (None, "", "  \n"):
            assert "请填写原因" in missing_note(action, blank)
            assert ACTION_LABELS[action] in missing_note(action, blank)
        assert missing_note(action, "核实后处理") is None
    assert missing_note(A.COMMENT, " ") == "请填写意见内容"
    assert all(missing_note(a, None) is None for a in A if a not in NEEDS_REASON | NOTE_ONLY)


def test_each_stamped_time_belongs_to_an_action_that_reaches_a_new_stage():
    from domain.event_flow import STAMPS

    assert STAMPS == {
        A.ACCEPT: "accepted_at",
        A.DISPATCH: "dispatched_at",
        A.RESOLVE: "resolved_at",
        A.ARCHIVE: "closed_at",
    }
    assert not set(STAMPS) & NOTE_ONLY


def test_an_open_event_reported_over_three_days_ago_is_stuck_and_a_closed_one_never():
    from datetime import datetime, timedelta

    from domain.event_flow import STUCK_AFTER, is_stuck

    now = datetime(2026, 11, 21, 12, 0)
    assert timedelta(days=3) == STUCK_AFTER
    assert is_stuck(S.IN_PROGRESS, now - timedelta(days=3, minutes=1), now)
    assert not is_stuck(S.IN_PROGRESS, now - timedelta(days=3), now)
    assert not is_stuck(S.ARCHIVED.value, now - timedelta(days=30), now)


def test_the_status_groups_split_every_status_and_a_resolved_event_is_closed():
    from domain.vocabulary import CLOSED_STATUSES, RESOLVED_STATUSES

    assert set(S) == OPEN_STATUSES | CLOSED_STATUSES and not OPEN_STATUSES & CLOSED_STATUSES
    assert RESOLVED_STATUSES < CLOSED_STATUSES
    assert {S.REJECTED} == CLOSED_STATUSES - RESOLVED_STATUSES


def test_the_partial_index_of_timed_events_names_every_status_whose_clock_runs():
    from db.models import TIMED_EVENTS_SQL
    from domain.deadlines import STAGE_OF_STATUS

    timed = {s.value for s, stage in STAGE_OF_STATUS.items() if stage is not None}
    assert timed == set(re.findall(r"'([a-z_]+)'", TIMED_EVENTS_SQL)) and timed >= {
        s.value for s in OPEN_STATUSES
    }
