"""Every read service, called as each demo role over the spread store: no row outside the user's scope comes
back, and what is in scope is not lost (counts equal the oracle's, computed from the tree alone)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bench.access import Oracle  # the independent answer, shared with the city bench
from db.engine import make_engine
from db.models import Event, Venue
from domain.hierarchy import ancestor_table
from domain.vocabulary import OPEN_STATUSES, Role
from services import clock
from services.access import (
    OutOfScope,
    event_in_scope,
    unit_in_scope,
    user_scope,
    venue_in_scope,
    verified_user,
)
from services.analytics import kpi_by, load_events, report_workbook, warnings
from services.display import open_by_level, screen_kpis
from services.event_views import (
    event_detail,
    feed,
    open_counts_by_grid,
    overdue,
    status_counts_by_grid,
    today_kpis,
)
from services.geography import tree as store_tree
from services.inspection_reports import code_distribution, overdue_hazards, overdue_venues
from services.inspections import venue_card_for
from services.overview import unit_figures, unit_table
from services.planning import inspectors_under, plan_for
from services.planning_settings import campaigns_for
from services.risk_map import recent_events
from tests.security.conftest import DEMO, PROBE, denied_pairs

LEADERS = ["demo_admin", "demo_city", "demo_county", "demo_township"]


@pytest.fixture(scope="module")
def engine(spread):
    e = make_engine(spread.url)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def oracle(engine):
    with engine.connect() as conn:
        return Oracle(conn)


@pytest.fixture(scope="module")
def frames(engine):
    with engine.connect() as conn:
        units = unit_table(conn).set_index("id")
    anc = ancestor_table(units.reset_index()[["id", "parent_id", "level"]])
    return units, anc


def _all_event_ids(engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(Event.id)).scalars())


@pytest.mark.parametrize("username", DEMO)
def test_the_event_reads(engine, spread, spread_users, oracle, username):
    user = spread_users[username]
    now = clock.now()
    with engine.connect() as conn:
        scope = user_scope(conn, user)
        visible = {e for e in oracle.event_grid if oracle.event(user, e)}
        rows = feed(conn, scope, None, limit=100_000)
        assert set(rows["id"]) == visible
        assert set(overdue(conn, scope, now, limit=100_000)["id"]) <= visible
        by_grid = status_counts_by_grid(conn, scope, now - timedelta(days=400), now + timedelta(days=1))
        assert all(oracle.unit(user, g) for g in by_grid.index)
        assert int(by_grid.to_numpy().sum()) == len(visible)
        open_ = open_counts_by_grid(conn, scope)
        statuses = dict(conn.execute(select(Event.id, Event.status)).all())
        assert int(open_.to_numpy().sum()) == sum(statuses[e] in OPEN_STATUSES for e in visible)
        kpis = today_kpis(conn, scope, now)
        assert kpis["在办"] == sum(statuses[e] in OPEN_STATUSES for e in visible)
        assert sum(open_by_level(conn, scope).values()) == kpis["在办"]
        screen = screen_kpis(conn, scope, now)
        assert int(screen["今日事件"].replace(",", "")) == kpis["今日新增"]
        for label, eid in spread.events.items():
            detail = event_detail(conn, scope, eid, user)
            assert (detail is not None) is oracle.event(user, eid), label


@pytest.mark.parametrize("username", DEMO)
def test_event_detail_refuses_what_the_page_scope_would_let_through(
    engine, spread, spread_users, caplog, username
):
    """Even a scope built wrongly (the whole city) does not show an event the store says is out of scope."""
    from services.access import Scope

    user = spread_users[username]
    with engine.connect() as conn:
        everything = Scope(tuple(store_tree(conn).grids_under(spread_users["demo_city"].scope_unit_id)))
        detail = event_detail(conn, everything, spread.events["far"], user)
        assert (detail is not None) is (username in ("demo_admin", "demo_city"))
    if detail is None:
        assert denied_pairs(caplog) == [(user.id, user.role.value, "view event", spread.events["far"])]


@pytest.mark.parametrize("username", LEADERS)
def test_the_analytics(engine, spread, spread_users, oracle, frames, username):
    user = spread_users[username]
    units, anc = frames
    day = clock.today()
    start = datetime.combine(day - timedelta(days=60), datetime.min.time())
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    with engine.connect() as conn:
        scope = user_scope(conn, user)
        events = load_events(conn, scope, start, end)
        assert set(events["id"]) <= {e for e in oracle.event_grid if oracle.event(user, e)}
        assert not events.empty
        table = kpi_by(
            conn, scope, start, end, group="area", units=units, anc=anc, scope_unit_id=user.scope_unit_id
        )
        assert all(oracle.unit(user, u) for u in table.index)
        assert (
            0 < table["events"].sum() <= len(events)
        )  # (the KPI's own rules leave out duplicates and rejects)
        for alert in warnings(conn, scope, day, units):
            assert oracle.unit(user, alert.unit_id) or user.scope_unit_id in oracle.ancestors(alert.unit_id)
        xlsx = report_workbook(
            conn, scope, kind="月报", day=day, units=units, anc=anc, scope_unit_id=user.scope_unit_id
        )
    import io

    import pandas as pd

    sheets = pd.read_excel(io.BytesIO(xlsx), sheet_name=None, header=2)  # under the title and the period
    # The report's areas are the children of the user's scope, nothing else.
    assert set(sheets["各区域"]["名称"]) <= set(units.loc[table.index, "name"])


@pytest.mark.parametrize("username", DEMO)
def test_the_home_figures(engine, spread_users, oracle, username):
    user = spread_users[username]
    with engine.connect() as conn:
        df = unit_figures(conn, clock.today(), user)
        n_events = conn.execute(select(func.count()).select_from(Event)).scalar_one()
    assert all(oracle.unit(user, u) for u in df.index)
    assert df.at[user.scope_unit_id, "events"] == sum(
        oracle.unit(user, g) for g in oracle.event_grid.values()
    )
    assert df.at[user.scope_unit_id, "venues"] == sum(
        oracle.unit(user, g) for g in oracle.venue_grid.values()
    )
    if user.role is not Role.ADMIN and username != "demo_city":
        assert df.at[user.scope_unit_id, "events"] < n_events


@pytest.mark.parametrize("username", LEADERS)
def test_the_inspection_planning_reads(engine, spread, spread_users, oracle, username):
    user = spread_users[username]
    today = clock.today()
    with engine.connect() as conn:
        view = plan_for(conn, today, user.scope_unit_id)
        planned = [v.venue_id for r in view.plan.routes for v in (*r.visits, *r.overflow)]
        assert all(oracle.venue(user, v) for v in planned)
        late = overdue_venues(conn, today, user.scope_unit_id, limit=100_000)
        assert all(oracle.venue(user, v) for v in late["venue_id"])
        assert (spread.venues["far"] in set(late["venue_id"])) is oracle.venue(user, spread.venues["far"])
        assert all(
            oracle.venue(user, v) for v in overdue_hazards(conn, today, user.scope_unit_id)["venue_id"]
        )
        active = dict(conn.execute(select(Venue.id, Venue.is_active)).all())
        assert sum(code_distribution(conn, user.scope_unit_id).values()) == sum(
            oracle.venue(user, v) and active[v] for v in oracle.venue_grid
        )
        for uid, _name in inspectors_under(conn, user.scope_unit_id):
            assert any(oracle.unit(user, g) for g in oracle.covers[uid])
        assert (spread.campaign in {c.name for c in campaigns_for(conn, user)}) is (
            username in ("demo_admin", "demo_city")
        )
        grids = store_tree(conn).grids_under(user.scope_unit_id)
        recent = recent_events(conn, grids, clock.now(), limit=1000)
        assert PROBE + "事件-far" not in set(recent["title"]) or username in ("demo_admin", "demo_city")


@pytest.mark.parametrize("username", DEMO)
def test_venue_cards(engine, spread, spread_users, oracle, caplog, username):
    user = spread_users[username]
    with engine.connect() as conn:
        for label, vid in spread.venues.items():
            assert venue_in_scope(conn, user, vid) is oracle.venue(user, vid), label
            try:
                card = venue_card_for(conn, user, vid, clock.today())
            except OutOfScope:
                assert not oracle.venue(user, vid), label
                assert denied_pairs(caplog)[-1] == (user.id, user.role.value, "view venue", vid)
            else:
                assert oracle.venue(user, vid) and card.venue["id"] == vid


@pytest.mark.parametrize("username", DEMO)
def test_scope_answers_agree_with_the_oracle_on_every_planted_object(
    engine, spread, spread_users, oracle, username
):
    user = spread_users[username]
    with engine.connect() as conn:
        for eid in spread.events.values():
            assert event_in_scope(conn, user, eid) is oracle.event(user, eid)
        for unit in spread.units.values():
            assert unit_in_scope(conn, user, unit) is oracle.unit(user, unit)
        assert verified_user(conn, user) == user


def test_the_planted_objects_are_where_they_should_be(spread, oracle):
    """The fixture's premise: far is in another county, sibling in the demo county, both outside the township."""
    assert spread.units["county"] in oracle.ancestors(spread.units["sibling"])
    assert spread.units["county"] not in oracle.ancestors(spread.units["far"])
    assert spread.units["township"] in oracle.ancestors(spread.grids["uncovered"])


@pytest.mark.parametrize("username", LEADERS)
@pytest.mark.parametrize("label", ["township", "sibling", "far"])
def test_planning_reads_refuse_an_area_outside_the_users_scope(
    engine, spread, spread_users, oracle, caplog, username, label
):
    from services.inspection_reports import code_trend, load_forecast, on_time_rates

    user = spread_users[username]
    unit = spread.units[label]
    today = clock.today()
    reads = {
        "inspection plan": lambda c: plan_for(c, today, unit, user=user),
        "inspection forecast": lambda c: load_forecast(c, today, unit, days=3, user=user),
        "overdue venues": lambda c: overdue_venues(c, today, unit, user=user),
        "overdue hazards": lambda c: overdue_hazards(c, today, unit, user=user),
        "code distribution": lambda c: code_distribution(c, unit, user=user),
        "code trend": lambda c: code_trend(c, today, unit, days=3, user=user),
        "on-time rates": lambda c: on_time_rates(c, today - timedelta(days=7), today, unit, user=user),
    }
    with engine.connect() as conn:
        for what, read in reads.items():
            if oracle.unit(user, unit):
                read(conn)
            else:
                with pytest.raises(OutOfScope):
                    read(conn)
                assert denied_pairs(caplog)[-1] == (user.id, user.role.value, what, unit)


@pytest.mark.parametrize(
    "username,whose,allowed",
    [
        ("demo_inspector", "demo_inspector", True),
        ("demo_inspector", "other", False),
        ("demo_township", "demo_inspector", True),
        ("demo_admin", "other", True),
    ],
)
def test_an_inspectors_day_is_theirs_and_their_leaders(
    engine, spread_users, caplog, username, whose, allowed
):
    from db.models import InspectorGrid, User
    from services.planning import inspector_day

    user = spread_users[username]
    with engine.connect() as conn:
        other = conn.execute(
            select(User.id)
            .join(InspectorGrid, InspectorGrid.user_id == User.id)
            .where(User.role == Role.INSPECTOR, User.id != spread_users["demo_inspector"].id)
        ).first()[0]
        target = spread_users["demo_inspector"].id if whose == "demo_inspector" else other
        if allowed:
            assert inspector_day(conn, target, clock.today(), user=user).inspector_id == target
        else:
            with pytest.raises(OutOfScope):
                inspector_day(conn, target, clock.today(), user=user)
            assert denied_pairs(caplog) == [(user.id, "inspector", "inspector day", target)]
