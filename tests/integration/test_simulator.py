"""The live simulator moves the demo through the same services the pages use, and the trails stay sound."""

import random
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select

from db.models import Event, EventTransition, Venue
from demo.simulator import Simulator
from domain.event_flow import Action, replay
from services.locate import forget_index
from tests.builders import make_green_venue, make_square_area


def test_simulated_minutes_report_events_advance_them_and_record_inspections(empty_engine):
    forget_index()
    with empty_engine.begin() as conn:
        make_square_area(conn)
        venue_id = make_green_venue(conn)
        conn.execute(Venue.__table__.update().values(next_due_on=datetime(2026, 11, 1).date()))
    sim = Simulator(empty_engine, rate_per_min=60, rng=random.Random(7))
    now = datetime(2026, 11, 21, 8, 0)
    totals = defaultdict(int)
    for _ in range(60):
        now += timedelta(seconds=10)
        for k, v in sim.tick(now, 10).items():
            totals[k] += v
    assert totals["reported"] > 20 and totals["advanced"] > 20 and totals["inspected"] >= 1
    with empty_engine.connect() as conn:
        events = dict(conn.execute(select(Event.id, Event.status)).all())
        trails = defaultdict(list)
        for eid, action in conn.execute(
            select(EventTransition.event_id, EventTransition.action).order_by(
                EventTransition.event_id, EventTransition.seq
            )
        ):
            trails[eid].append(Action(action))
        due = conn.execute(select(Venue.next_due_on).where(Venue.id == venue_id)).scalar_one()
        moved = conn.execute(
            select(func.count()).select_from(Event).where(Event.status != "reported")
        ).scalar_one()
    assert len(events) == totals["reported"]
    assert moved > 0
    assert all(replay(trails[eid]) == status for eid, status in events.items())
    assert due > datetime(2026, 11, 21).date()  # the green venue was inspected and is due in 30 days
