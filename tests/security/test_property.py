"""The property: for random (user, object) pairs drawn from a demo store, the services' answers (may see,
may act) agree with an oracle computed from the tree alone. Hypothesis draws a role, then a user of it,
then an event, a venue or an area anywhere in the store (half the time one inside the user's scope)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bench.access import ACTION_ROLES, Checker, Oracle, Pair, check_pairs, draw_pairs, expected, load_users
from db.engine import make_engine
from db.models import AdminUnit, Event, Venue
from domain.event_flow import IllegalTransition
from services import clock
from services.access import OutOfScope
from services.events import ConcurrentChange, act_as
from tests.rollback import rolled_back

EXAMPLES = 300


class World:
    """A store as the property sees it: its users by role, every object id, the oracle, the services."""

    def __init__(self, url: str):
        self.engine = make_engine(url)
        self.conn = self.engine.connect()
        self.users = load_users(self.conn)
        self.roles = sorted({u.role for u in self.users}, key=lambda r: r.value)
        self.events = list(self.conn.execute(select(Event.id)).scalars())
        self.venues = list(self.conn.execute(select(Venue.id)).scalars())
        self.units = list(self.conn.execute(select(AdminUnit.id)).scalars())
        self.oracle = Oracle(self.conn)
        self.checker = Checker(self.conn)

    def close(self):
        self.conn.close()
        self.engine.dispose()


@pytest.fixture(scope="module", params=["seeded_store_url", "spread"])
def world(request):
    url = request.getfixturevalue(request.param)
    w = World(url if isinstance(url, str) else url.url)
    yield w
    w.close()


def _pairs(w: World):
    user = st.sampled_from(w.roles).flatmap(lambda r: st.sampled_from([u for u in w.users if u.role is r]))
    near = st.sampled_from(w.events).flatmap(
        lambda e: st.sampled_from(
            [u for u in w.users if w.oracle.unit(u, w.oracle.event_grid[e])] or w.users
        ).map(lambda u, e=e: Pair(u, "event", e))
    )
    return st.one_of(
        st.builds(Pair, user, st.just("event"), st.sampled_from(w.events)),
        near,
        st.builds(Pair, user, st.just("venue"), st.sampled_from(w.venues)),
        st.builds(Pair, user, st.just("unit"), st.sampled_from(w.units)),
        st.builds(Pair, user, st.just("act"), st.sampled_from(w.events), st.sampled_from(list(ACTION_ROLES))),
    )


def test_services_agree_with_the_oracle(world):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(_pairs(world))
    def prop(pair):
        assert world.checker.answer(pair) == expected(world.oracle, pair), pair

    prop()


def test_acting_for_real_agrees_with_the_oracle(world):
    """The write path itself: act_as in a unit of work that is rolled back; refused exactly when the oracle
    says the user may not act (otherwise the loop may still say no to this status: that is not scope)."""
    engine = world.engine

    @settings(
        max_examples=EXAMPLES // 3,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(st.sampled_from(world.users), st.sampled_from(world.events), st.sampled_from(list(ACTION_ROLES)))
    def prop(user, eid, action):
        may = world.oracle.act(user, eid, action)
        with rolled_back(engine) as (uow, _):
            try:
                act_as(uow, user, None, event_id=eid, action=action, now=clock.now(), note="性质测试")
            except OutOfScope:
                assert not may, (user, eid, action)
            except (IllegalTransition, ConcurrentChange, ValueError, LookupError):
                assert may, (user, eid, action)  # past the scope check: only the loop refused
            else:
                assert may, (user, eid, action)

    prop()


def test_the_bench_draws_both_answers_and_finds_no_counterexample(world):
    """bench/access.py's own drawing over the same store: no counterexample, and both answers occur."""
    pairs = draw_pairs(world.conn, world.users, 400, seed=1)
    bad, allowed = check_pairs(world.conn, pairs)
    assert bad == []
    assert 0 < allowed < len(pairs)
    assert {p.user.role for p in pairs} == set(world.roles)
