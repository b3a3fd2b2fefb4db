"""The live simulator: keeps the demo alive through the same use cases the pages call.

``python -m demo.simulator --rate 6`` reports about six new events a minute, moves open events one
step along the loop and records due inspections, until stopped. Each tick also runs the 上移 job when it
falls due (:func:`services.jobs.run_due`), like any other scheduler; ``make run`` starts the jobs runner
beside it for the rest (reminders, warnings, reports, the audit check), as in a real deployment.
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from db.engine import make_engine
from db.models import AdminUnit, Department, Event, Venue
from db.uow import UnitOfWork
from demo.vocab import SUBTYPES
from domain.event_flow import Action, IllegalTransition, allowed_actions
from domain.vocabulary import (
    EventCategory,
    EventSource,
    EventStatus,
    Rating,
    Urgency,
)
from services import clock
from services.events import Actor, ConcurrentChange, act, report_event
from services.inspections import record_inspection, routine_checklist
from services.jobs import run_due
from services.locate import OutsideArea
from services.personal_data import redact_logs

log = logging.getLogger("simulator")
ACTOR = Actor(None, "simulator")

SOURCES = [
    EventSource.CITIZEN,
    EventSource.GRID_WORKER,
    EventSource.HOTLINE_12345,
    EventSource.VIDEO_AI,
    EventSource.DIGITAL_CITY,
    EventSource.POLICE_110,
]
SOURCE_WEIGHTS = [35, 30, 15, 8, 8, 4]
# The same kinds of matter (事项小类) and weights as the seeded year, so live events look like it.
CATEGORY_TITLES: dict[EventCategory, list[tuple[str, float]]] = {}
for _s in SUBTYPES:
    if _s.weight > 0:
        CATEGORY_TITLES.setdefault(EventCategory(_s.category), []).append((_s.title, _s.weight))
CATEGORY_WEIGHTS = dict(zip(EventCategory, [30, 12, 10, 8, 12, 10, 4, 14], strict=True))
# How likely each action is, among those the loop allows, when the simulator picks a next step.
ACTION_WEIGHTS = {
    Action.ACCEPT: 20,
    Action.REJECT: 1,
    Action.DISPATCH: 20,
    Action.RETURN: 1,
    Action.START: 20,
    Action.RESOLVE: 15,
    Action.VERIFY: 15,
    Action.REOPEN: 1,
    Action.RATE: 10,
    Action.ARCHIVE: 8,
    Action.ESCALATE: 1,
}
# The reason each turning-back step must give (退回、退单、上移、重新处置 are refused without one).
REASONS = {
    Action.REJECT: "经核实不属实，予以退回",
    Action.RETURN: "非本部门职责，退回重新派单",
    Action.ESCALATE: "本级无法解决，申请上移",
    Action.REOPEN: "回访不满意，重新处置",
}


@dataclass
class Simulator:
    """One simulated township: new events, steps of open ones, due inspections per tick."""

    engine: Engine
    rate_per_min: float = 6.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        self.uow = UnitOfWork(self.engine)

    def tick(self, now: datetime, seconds: float) -> dict[str, int]:
        """Simulate ``seconds`` of activity ending at ``now``; returns what was done."""
        done = {"reported": 0, "advanced": 0, "inspected": 0, "conflicts": 0, "escalated": 0}
        lam = self.rate_per_min * seconds / 60.0
        for _ in range(_poisson(self.rng, lam)):
            done["reported"] += self._report(now)
        for _ in range(_poisson(self.rng, lam * 2)):
            outcome = self._advance(now)
            done["advanced"] += outcome == "ok"
            done["conflicts"] += outcome == "conflict"
        for _ in range(_poisson(self.rng, lam / 2)):
            done["inspected"] += self._inspect(now)
        # What the rules say waited too long: the runner's 上移 job (once per minute, whoever runs it first).
        run = run_due(self.uow, now, only=("escalate",), limit=10).get("escalate")
        done["escalated"] = run.count or 0 if run is not None else 0
        return done

    def _report(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            venue = _random_row(conn, self.rng, select(Venue.lon, Venue.lat, Venue.address))
        if venue is None:
            return 0
        lon = venue.lon + self.rng.uniform(-0.0004, 0.0004)  # within ~40 m of a real place
        lat = venue.lat + self.rng.uniform(-0.0004, 0.0004)
        categories = [c for c in CATEGORY_WEIGHTS if c in CATEGORY_TITLES]
        category = self.rng.choices(categories, [CATEGORY_WEIGHTS[c] for c in categories])[0]
        try:
            report_event(
                self.uow,
                source=self.rng.choices(SOURCES, SOURCE_WEIGHTS)[0],
                category=category,
                title=self.rng.choices(*zip(*CATEGORY_TITLES[category], strict=True))[0],
                lon=lon,
                lat=lat,
                now=now,
                actor=ACTOR,
                address=venue.address,
                urgency=self.rng.choices(list(Urgency), [85, 12, 3])[0],
            )
        except OutsideArea:
            return 0  # jittered across the area's outer edge: a real client would be refused too
        return 1

    def _advance(self, now: datetime) -> str:
        with self.engine.connect() as conn:
            pick = _random_row(
                conn,
                self.rng,
                select(Event.id, Event.status, Event.grid_id).where(
                    Event.status.notin_([EventStatus.ARCHIVED, EventStatus.REJECTED])
                ),
                recent_first=True,
            )
            if pick is None:
                return "none"
            choices = [a for a in allowed_actions(EventStatus(pick.status)) if a in ACTION_WEIGHTS]
            action = self.rng.choices(choices, [ACTION_WEIGHTS[a] for a in choices])[0]
            department = _department_for(conn, self.rng, pick.grid_id) if action is Action.DISPATCH else None
        rating = self.rng.choices(list(Rating), [80, 15, 5])[0] if action is Action.RATE else None
        try:
            act(
                self.uow,
                event_id=pick.id,
                action=action,
                now=now,
                actor=ACTOR,
                note=REASONS.get(action),
                department_id=department,
                rating=rating,
                expected=EventStatus(pick.status),
            )
        except ConcurrentChange:
            return "conflict"
        except (IllegalTransition, ValueError):
            return "none"
        return "ok"

    def _inspect(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            venue_id = conn.execute(
                select(Venue.id).where(Venue.next_due_on <= now.date()).order_by(Venue.next_due_on).limit(1)
            ).scalar()
            if venue_id is None:
                return 0
            failed = self.rng.random() >= 0.9
            checklist = routine_checklist(conn, venue_id, failed=failed)
        record_inspection(
            self.uow, venue_id=venue_id, inspector_id=None, now=now, note="模拟巡查", checklist=checklist
        )
        return 1


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates of a tick.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _random_row(s: Connection, rng: random.Random, query, recent_first: bool = False):
    """A random row of ``query`` by id range (no ORDER BY RANDOM() over millions of rows)."""
    entity = query.column_descriptions[0]["entity"]
    lo_hi = s.execute(select(entity.id).order_by(entity.id.desc()).limit(1)).scalar()
    if lo_hi is None:
        return None
    span = min(lo_hi, 500) if recent_first else lo_hi
    start = lo_hi - int(rng.random() * span)
    return s.execute(query.where(entity.id <= start).order_by(entity.id.desc()).limit(1)).first()


def _department_for(s: Connection, rng: random.Random, grid_id: int) -> int | None:
    # Departments serving any ancestor of the grid (the village, township, county …).
    unit_ids, node = [], grid_id
    while node is not None:
        unit_ids.append(node)
        node = s.execute(select(AdminUnit.parent_id).where(AdminUnit.id == node)).scalar()
    ids = (
        s.execute(select(Department.id).where(Department.unit_id.in_(unit_ids)).order_by(Department.id))
        .scalars()
        .all()
    )
    return rng.choice(ids) if ids else None


def main() -> None:
    parser = argparse.ArgumentParser(description="模拟实时事件流 (live demo simulator)")
    parser.add_argument("--rate", type=float, default=6.0, help="new events per minute")
    parser.add_argument("--tick", type=float, default=2.0, help="seconds between ticks")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    redact_logs()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s simulator %(message)s")
    sim = Simulator(make_engine(), args.rate, random.Random(args.seed))
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("started: %.1f events/min", args.rate)
    while running:
        try:
            done = sim.tick(clock.now(), args.tick)
            if any(done.values()):
                log.info("%s", done)
        except Exception:  # keep the demo alive across a transient lock or a bad row
            log.exception("tick failed")
        time.sleep(args.tick)


if __name__ == "__main__":
    main()
