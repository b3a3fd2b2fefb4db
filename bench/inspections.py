"""平安码 figures: one day's plan for the whole city, the services behind one inspector's /my_day, recording
an inspection (rolled back), and the replay of risk-ordered against round-robin planning over 90 days.

``python -m bench.inspections sqlite:////tmp/cockpit_bench_city.db`` prints them; ``bench/__main__.py``
calls :func:`bench_inspections`.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from db.engine import make_engine
from db.models import Hazard, Inspection, InspectorGrid, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.planner import (
    DEFAULT_CAPACITY,
    Capacity,
    ReplayPolicy,
    ReplayVenue,
    VenueToVisit,
    compare_policies,
)
from domain.safety_code import CADENCE_DAYS, ItemOutcome, checklist_for
from domain.vocabulary import AdminLevel, Role, SafetyCode, VenueCategory
from geo.crs import to_metres
from services import clock
from services.geography import tree as store_tree
from services.inspections import NewHazard, record_inspection, venue_card_for
from services.planning import grid_areas, inspector_day, load_inspectors, metric_crs, plan_for
from services.risk import venue_colours

REPLAY_DAYS = 90


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def bench_inspections(url: str, *, replay: bool = True, record_samples: int = 20) -> dict[str, float]:
    engine = make_engine(url)
    today, now = clock.today(), clock.now()
    out: dict[str, float] = {}
    with engine.connect() as conn:
        # One day's plan for the whole city, loading included (the five-level tree too).
        t0 = time.perf_counter()
        view = plan_for(conn, today, None)
        out["plan_city_day_s"] = round(time.perf_counter() - t0, 2)
        out["plan_city_load_s"] = view.seconds["load_s"]
        out["plan_city_plan_s"] = view.seconds["plan_s"]
        out["plan_city_visits_count"] = view.plan.planned
        out["plan_city_overflow_count"] = view.plan.not_planned
        out["plan_city_inspectors_count"] = len(view.plan.routes)

        # /my_day for the inspector with the most visits today: the plan of their townships and one card.
        busiest = max(view.plan.routes, key=lambda r: (len(r.visits), -r.inspector_id))
        role = conn.execute(
            select(User.role, User.scope_unit_id).where(User.id == busiest.inspector_id)
        ).one()
        viewer = CurrentUser(busiest.inspector_id, "bench", "bench", Role(role[0]), role[1])
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            day = inspector_day(conn, busiest.inspector_id, today)
            if not day.stops.empty:
                venue_card_for(conn, viewer, int(day.stops.iloc[0]["venue_id"]), today)
            times.append(time.perf_counter() - t0)
        out["inspector_page_ms"] = _ms(statistics.median(times))
        out["inspector_page_cold_ms"] = _ms(times[0])

    out["record_inspection_ms"], out["record_inspection_max_ms"] = _bench_record(
        engine, today, now, record_samples
    )
    if replay:
        out |= bench_replay(engine, today)
    engine.dispose()
    return out


def _bench_record(engine, today: date, now: datetime, samples: int) -> tuple[float, float]:
    """Median and max of ``samples`` recorded inspections (scope check, hazards, recolour), each rolled back."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Venue.id, Venue.category, InspectorGrid.user_id, User.scope_unit_id)
            .join(InspectorGrid, InspectorGrid.grid_id == Venue.grid_id)
            .join(User, User.id == InspectorGrid.user_id)
            .where(Venue.is_active, Venue.next_due_on <= today)
            .order_by(Venue.id)
            .limit(samples * 50)
        ).all()
    picked = rows[:: max(1, len(rows) // samples)][:samples]
    times = []
    for k, (vid, category, uid, scope) in enumerate(picked):
        user = CurrentUser(uid, "bench", "bench", Role.INSPECTOR, scope)
        items = checklist_for(VenueCategory(category))
        checklist = {i.key: ItemOutcome.PASS.value for i in items}
        hazards = []
        if k % 2:
            checklist[items[0].key] = ItemOutcome.FAIL.value
            hazards = [
                NewHazard("major" if k % 4 == 1 else "general", "基准测试隐患", today + timedelta(days=3))
            ]
        # The unit of work joins this connection's transaction (its commit does not end it): rolled back.
        with engine.connect() as conn:
            conn.begin()
            t0 = time.perf_counter()
            record_inspection(
                UnitOfWork(conn), user=user, venue_id=vid, now=now, checklist=checklist, hazards=hazards
            )
            times.append(time.perf_counter() - t0)
            conn.rollback()
    if not times:
        return float("nan"), float("nan")
    return _ms(statistics.median(times)), _ms(max(times))


def replay_inputs(engine, start: date) -> tuple[list, list[ReplayVenue], dict[str, int]]:
    """The store's inspectors and venues as they stood at ``start``, with the hazards found since as onsets.

    A venue's colour is its colour on ``start`` (from the change log); its next due date is its last
    inspection before ``start`` plus that colour's cadence (None if never inspected); each hazard
    found from ``start`` on is an onset on its ``found_on`` date (it existed by then at the latest).
    """
    with engine.connect() as conn:
        tree = store_tree(conn)
        crs = metric_crs(tree)
        grids = tree.at_level(AdminLevel.GRID)
        inspectors, _ = load_inspectors(conn, tree, grids, Capacity(DEFAULT_CAPACITY), {}, crs=crs)
        colours = venue_colours(conn, start - timedelta(days=1))
        info = {
            int(v): (n, int(g), c, lon, lat)
            for v, n, g, c, lon, lat in conn.execute(
                select(Venue.id, Venue.name, Venue.grid_id, Venue.category, Venue.lon, Venue.lat).where(
                    Venue.is_active
                )
            ).all()
        }
        last = dict(
            conn.execute(
                select(Inspection.venue_id, func.max(Inspection.inspected_at))
                .where(Inspection.inspected_at < datetime.combine(start, datetime.min.time()))
                .group_by(Inspection.venue_id)
            ).all()
        )
        onsets: dict[int, list[date]] = defaultdict(list)
        for vid, found in conn.execute(
            select(Hazard.venue_id, Hazard.found_on).where(
                Hazard.found_on >= start, Hazard.found_on < start + timedelta(days=REPLAY_DAYS)
            )
        ).all():
            onsets[int(vid)].append(found)
    known = [
        (int(v), SafetyCode(c)) for v, c in zip(colours["id"], colours["code"], strict=True) if int(v) in info
    ]
    areas = grid_areas(tree, grids)
    xy = to_metres([info[v][3] for v, _ in known], [info[v][4] for v, _ in known], crs)
    venues = []
    for (vid, code), (x, y) in zip(known, xy, strict=True):
        name, grid, category, _, _ = info[vid]
        seen = last.get(vid)
        due = seen.date() + timedelta(days=CADENCE_DAYS[code]) if seen else None
        village, township = areas.get(grid, (0, 0))
        v = VenueToVisit(
            vid, name, grid, village, township, code, VenueCategory(category), float(x), float(y), due
        )
        venues.append(ReplayVenue(v, tuple(sorted(onsets.get(vid, ())))))
    return inspectors, venues, {"venues": len(venues), "hazards": sum(len(o) for o in onsets.values())}


def bench_replay(
    engine, today: date, days: int = REPLAY_DAYS, capacity: int = DEFAULT_CAPACITY
) -> dict[str, float]:
    """Risk-ordered planning against a fixed round-robin over the last ``days`` days of the store."""
    start = today - timedelta(days=days)
    t0 = time.perf_counter()
    inspectors, venues, counts = replay_inputs(engine, start)
    # FORECAST needs a trained model and hidden onsets: bench.forecast replays it.
    results = compare_policies(
        start, days, inspectors, venues, capacity, (ReplayPolicy.RISK, ReplayPolicy.ROUND_ROBIN)
    )
    risk, rr = results[ReplayPolicy.RISK], results[ReplayPolicy.ROUND_ROBIN]
    out = {
        "replay_s": round(time.perf_counter() - t0, 1),
        "replay_venues_count": counts["venues"],
        "replay_hazards_count": risk.hazards,
        "replay_capacity": capacity,
        "replay_days": days,
    }
    for name, r in (("risk", risk), ("round_robin", rr)):
        out[f"replay_{name}_visits"] = r.visits
        out[f"replay_{name}_found"] = r.discovered
        out[f"replay_{name}_days_to_find"] = round(r.mean_days_to_discovery, 2)
        out[f"replay_{name}_days_to_find_censored"] = round(r.mean_days_to_discovery_censored, 2)
        out[f"replay_{name}_days_open"] = round(r.mean_days_open, 2)
        out[f"replay_{name}_red_on_time_share"] = round(r.red_on_time_share, 3)
    out["replay_days_earlier_risk"] = round(rr.mean_days_to_discovery - risk.mean_days_to_discovery, 2)
    out["replay_days_earlier_risk_censored"] = round(
        rr.mean_days_to_discovery_censored - risk.mean_days_to_discovery_censored, 2
    )
    return out


if __name__ == "__main__":
    figures = bench_inspections(
        sys.argv[1] if len(sys.argv) > 1 else "sqlite:////tmp/cockpit_bench_town.db",
        replay="--no-replay" not in sys.argv,
    )
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"  {name:<{width}}  {value:>14,}")
