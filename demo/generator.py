"""Deterministic demo data: same geography, scale, seed and end → identical rows (numpy streams only, no clock)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd

from demo.anomalies import NOVEL_CATEGORY, build_specials
from demo.area import Area, build_area, default_unit_ids
from demo.columns import DAY, from_secs, to_secs
from demo.events import EventModel, build_event_model, make_chunk
from demo.org import Org, build_org
from demo.scales import Scale, get_scale
from demo.venues import build_venues

# Tables in the order they are written (parents first); events come after, month by month.
STATIC_TABLES = [
    "departments",
    "users",
    "inspector_grids",
    "venues",
    "safety_code_changes",
    "inspections",
    "hazards",
]
EVENT_TABLES = ["events", "event_transitions", "event_cooperators"]

# Independent random streams: changing one part of the generator leaves the others' rows alone.
STREAM_AREA, STREAM_ORG, STREAM_VENUES, STREAM_EVENTS, STREAM_SPECIALS, STREAM_CHUNK = 1, 2, 3, 4, 5, 100


def _rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, *more])


@dataclass
class DemoData:
    """The generated demo: static tables at once, events lazily month by month (bounded memory)."""

    scale: Scale
    seed: int
    start: datetime  # first possible report
    end: datetime  # nothing happens after this moment (the demo's "now")
    area: Area
    org: Org
    tables: dict[str, pd.DataFrame]
    model: EventModel
    manifest: dict
    chunks: list[tuple[int, int]] = field(default_factory=list)
    # Hidden truth the store never holds (each venue row's daily hazard rate): replay inputs only.
    venue_propensity: np.ndarray | None = None

    def event_chunks(self) -> Iterator[dict[str, pd.DataFrame]]:
        """Frames of events, trails and cooperators per month (or part), ids continuing across chunks."""
        next_event, next_transition = 1, 1
        self.model.special_ids.clear()
        for i, (cs, ce) in enumerate(self.chunks):
            frames = make_chunk(
                self.model, cs, ce, _rng(self.seed, STREAM_CHUNK, i), next_event, next_transition
            )
            next_event += len(frames["events"])
            next_transition += len(frames["event_transitions"])
            yield frames
        for entry in self.manifest["anomalies"]:
            if entry["kind_en"] == "mass":
                entry["event_id"] = self.model.special_ids.get("mass_main")

    def all_events(self) -> dict[str, pd.DataFrame]:
        """Every event table in one piece (for small scales and tests)."""
        parts: dict[str, list[pd.DataFrame]] = {t: [] for t in EVENT_TABLES}
        for frames in self.event_chunks():
            for t in EVENT_TABLES:
                parts[t].append(frames[t])
        return {t: pd.concat(p, ignore_index=True) for t, p in parts.items()}


def month_chunks(start: int, end: int, parts: int = 1) -> list[tuple[int, int]]:
    """[start, end] cut at calendar months (and at the 11th and 21st if ``parts`` is 3), as half-open
    second ranges; the last one ends just after ``end``."""
    days = {1: [1], 2: [1, 16], 3: [1, 11, 21]}[parts]
    out = []
    cs = start
    while cs <= end:
        d = from_secs(cs)
        nxt = next(
            (datetime(d.year, d.month, k) for k in days if datetime(d.year, d.month, k) > d),
            datetime(d.year + (d.month == 12), d.month % 12 + 1, 1),
        )
        ce = min(to_secs(nxt), end + 1)
        out.append((cs, ce))
        cs = ce
    return out


def generate(
    units: gpd.GeoDataFrame,
    scale: str | Scale,
    seed: int,
    end: datetime,
    *,
    unit_ids: dict[str, int] | None = None,
    demo_township: str,
    data_townships: list[str] | None = None,
) -> DemoData:
    """Generate the demo over ``units`` (all five levels, WGS84) ending at ``end`` (naive China time).

    ``unit_ids`` maps unit codes to their ids in the store (default: what ``store_units`` assigns
    in an empty store). Data lives in ``data_townships`` (default: the demo township alone, or every
    township for a whole-city scale).
    """
    sc = get_scale(scale)
    end = end.replace(microsecond=0)
    if unit_ids is None:
        unit_ids = default_unit_ids(units)
    if data_townships is None:
        townships = units.loc[units["level"] == "township", "code"].astype(str)
        data_townships = sorted(townships) if sc.whole_city else [demo_township]
    start = end - timedelta(days=sc.event_days)
    window_start = end - timedelta(days=sc.inspection_days)
    before = min(start, window_start).replace(hour=0, minute=0, second=0)

    area = build_area(
        units, unit_ids, data_townships, demo_township, sc.pool_per_grid, _rng(seed, STREAM_AREA)
    )
    org = build_org(
        area, sc.inspectors, seed, before - timedelta(days=30) + timedelta(hours=9), _rng(seed, STREAM_ORG)
    )
    venues = build_venues(
        area,
        org,
        sc.venues,
        before,
        window_start,
        end,
        _rng(seed, STREAM_VENUES),
        _rng(seed, STREAM_VENUES, 1),
    )
    model = build_event_model(
        area,
        org,
        venues,
        to_secs(start),
        to_secs(end),
        sc.events_per_day,
        NOVEL_CATEGORY,
        _rng(seed, STREAM_EVENTS),
    )
    specials, entries = build_specials(model, venues.venues, _rng(seed, STREAM_SPECIALS))
    model.specials = specials
    tables = {
        "departments": org.departments,
        "users": org.users,
        "inspector_grids": org.inspector_grids,
        "venues": venues.venues,
        "safety_code_changes": venues.safety_code_changes,
        "inspections": venues.inspections,
        "hazards": venues.hazards,
    }
    manifest = {
        "scale": sc.name,
        "seed": seed,
        "start": start.isoformat(sep=" "),
        "end": end.isoformat(sep=" "),
        "demo_township": demo_township,
        "data_townships": list(area.data_townships),
        "demo_accounts": {k: int(v) for k, v in org.demo_users.items()},
        "anomalies": entries,
    }
    return DemoData(
        sc,
        seed,
        start,
        end,
        area,
        org,
        tables,
        model,
        manifest,
        month_chunks(to_secs(start), to_secs(end), sc.chunks_per_month),
        venues.propensity,
    )


__all__ = ["DAY", "EVENT_TABLES", "STATIC_TABLES", "DemoData", "generate", "month_chunks"]
