"""Risk map figures: all five levels scored cold; each drill-down view assembled warm, with its bytes.

A view is what the page does per switch once the frames are cached (components.risk_view.assemble,
the recent-events query, the Deck JSON and, for a village or grid, the folium detail map). The frames'
load includes the display shapes the views reuse (components.risk_view.shapes_of).
"""

from __future__ import annotations

import time

from sqlalchemy import select

from components import maps
from components.risk_view import LAYERS, assemble, shapes_of
from db.engine import make_engine
from db.models import AdminUnit
from domain.vocabulary import AdminLevel
from services import clock
from services.geography import load_tree, load_units
from services.risk import area_risk
from services.risk_map import event_frame, period_bounds, recent_events, venue_frame


def bench_risk(url: str) -> dict[str, float]:
    engine = make_engine(url)
    today, now = clock.today(), clock.now()
    with engine.connect() as conn:
        t0 = time.perf_counter()
        risk = area_risk(conn, today)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        units = load_units(conn).set_index("id")
        tree = load_tree(conn)
        venues = venue_frame(conn, today)
        events = event_frame(conn, *period_bounds(today, 30))
        shapes_of(units)  # the display shapes, converted once per process like the frames
        frames = time.perf_counter() - t0
        warm, sizes, names = [], [], []
        path = _drill_path(conn)
        # One untimed view first: imports and first-use set-up are not a switch.
        maps.risk_deck(
            assemble(units, tree, risk, venues, events, path[-1], AdminLevel.GRID, LAYERS).layers,
            tuple(units.at[path[-1], "geometry"].bounds),
        ).to_json()
        for area_id in path:
            level = AdminLevel(units.at[area_id, "level"])
            for shown_level in [lv for lv in AdminLevel if lv.depth > level.depth] or [level]:
                t0 = time.perf_counter()
                view = assemble(units, tree, risk, venues, events, area_id, shown_level, LAYERS)
                recent_events(conn, view.grid_ids, now)
                payload = maps.risk_deck(view.layers, tuple(units.at[area_id, "geometry"].bounds)).to_json()
                size = len(payload.encode())
                if level in (AdminLevel.VILLAGE, AdminLevel.GRID):
                    size += len(
                        maps.detail_map(units.at[area_id, "geometry"], view.venues)
                        .get_root()
                        .render()
                        .encode()
                    )
                warm.append((time.perf_counter() - t0) * 1000)
                sizes.append(size)
                names.append(f"{units.at[area_id, 'name']}→{shown_level.label}")
    engine.dispose()
    worst = max(range(len(warm)), key=warm.__getitem__)
    print(f"  slowest view: {names[worst]} {warm[worst]:.0f} ms; largest: {names[sizes.index(max(sizes))]}")
    return {
        "risk_all_levels_cold_s": round(cold, 2),
        "risk_frames_load_s": round(frames, 2),
        "risk_view_switch_warm_max_ms": round(max(warm)),
        "risk_view_switch_warm_median_ms": round(sorted(warm)[len(warm) // 2]),
        "risk_view_max_bytes_mb": round(max(sizes) / 1e6, 2),
    }


def _drill_path(conn) -> list[int]:
    """The city, then the most populous child at each level down to a grid."""
    path = [conn.execute(select(AdminUnit.id).where(AdminUnit.parent_id.is_(None))).scalar()]
    for _ in range(4):
        child = conn.execute(
            select(AdminUnit.id)
            .where(AdminUnit.parent_id == path[-1])
            .order_by(AdminUnit.population.desc(), AdminUnit.code)
            .limit(1)
        ).scalar()
        if child is None:
            break
        path.append(child)
    return path
