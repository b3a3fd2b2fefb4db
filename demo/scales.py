"""The three demo scales: where data lives and how much of it there is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """How much demo data to make; the geography is always the whole city."""

    name: str
    whole_city: bool  # data in every township; otherwise only in the demo township
    venues: int
    event_days: int  # length of the event history, ending at ``until``
    events_per_day: float  # mean base events a day over the data area (before weekly/seasonal factors)
    inspectors: int  # inspectors / grid workers over the data area
    pool_per_grid: int  # candidate event addresses sampled in each grid
    inspection_days: int = 95  # inspections cover at least the 90 days the 平安码 replay reads
    chunks_per_month: int = 1  # events are generated and written this many times a month (memory bound)


SCALES: dict[str, Scale] = {
    # The test suite's scale: the demo town only, two months, seeds in seconds.
    "tiny": Scale(
        "tiny", False, venues=1_000, event_days=60, events_per_day=50, inspectors=10, pool_per_grid=32
    ),
    # S town (DOMAIN.md): 11,000+ coded venues, ~21,000 events a month, 125 grids.
    "town": Scale(
        "town", False, venues=11_000, event_days=365, events_per_day=640, inspectors=130, pool_per_grid=96
    ),
    # All 61 townships: ≥ 100,000 venues and ≥ 2,000,000 events in 12 months.
    "city": Scale(
        "city",
        True,
        venues=110_000,
        event_days=365,
        events_per_day=5_800,
        inspectors=2_000,
        pool_per_grid=48,
        chunks_per_month=3,
    ),
}


def get_scale(scale: str | Scale) -> Scale:
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"未知的数据规模 {scale!r}（可选：{', '.join(SCALES)}）") from None
