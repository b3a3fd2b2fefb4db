"""顽疾 judged from the reports near a possible seed and counts per grid × matter (decision 0038) gives the
same alerts as from every report; the nearby counts and place cells that choose those reports."""

import numpy as np
import pandas as pd
import pytest

from domain.early_warning import (
    NEAR_MARGIN,
    AlertKind,
    ChronicParams,
    WarningData,
    cells_around,
    daily_counts,
    detect,
    near_any,
    near_counts,
    place_cells,
)
from tests.unit.test_early_warning import (
    DAY,
    LAT0,
    LON0,
    THREE_A_WEEK,
    UNITS,
    background,
    noise_at,
    offset,
    reports_frame,
)

P = ChronicParams()


def test_near_counts_count_the_same_matter_within_the_radius_itself_included():
    lon, lat = offset(LON0, LAT0, [0, 30, 60, 30], [0, 0, 0, 0])
    matter = ["a", "a", "a", "b"]
    # 0–30 m and 30–60 m are within 51 m, 0–60 m is not; "b" shares a place with the second but not its matter.
    assert near_counts(lon, lat, matter, 51.0).tolist() == [2, 3, 2, 1]
    assert near_counts([], [], [], 51.0).tolist() == []


def _brute_nearest_m(lon, lat, to_lon, to_lat) -> np.ndarray:
    """Each place's great-circle metres to its nearest target, every pair measured (haversine)."""
    p1, p2 = np.radians(lat)[:, None], np.radians(to_lat)[None, :]
    dl = np.radians(np.asarray(to_lon)[None, :] - np.asarray(lon)[:, None])
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    d = np.min(2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1))), axis=1)
    return np.where(np.isnan(d), np.inf, d)


@pytest.mark.parametrize("lat0", [28.94, 0.0, -33.9, 61.5])
def test_near_any_keeps_exactly_the_places_within_the_radius_of_a_target_in_a_hot_spot(lat0):
    """A 顽疾 hot spot: hundreds of reports and possible seeds stacked in a few metres (many at the very
    same point), a ring of places at the radius ± a few centimetres, and a scatter around; what
    ``near_any`` keeps is what measuring every pair keeps, at the equator, in the south and far north."""
    rng = np.random.default_rng(11)
    dlat = 51.0 / (np.radians(1) * 6_371_008.8)
    dlon = dlat / np.cos(np.radians(lat0))
    hot_lon = 120.0 + np.concatenate([np.zeros(300), rng.normal(0, dlon / 20, 300)])
    hot_lat = lat0 + np.concatenate([np.zeros(300), rng.normal(0, dlat / 20, 300)])
    angle = rng.uniform(0, 2 * np.pi, 400)
    reach = 51.0 + rng.choice([-0.05, -0.01, 0.01, 0.05], 400)
    ring_lon = 120.0 + np.cos(angle) * reach / 51.0 * dlon
    ring_lat = lat0 + np.sin(angle) * reach / 51.0 * dlat
    far_lon = 120.0 + rng.uniform(-20, 20, 1000) * dlon
    far_lat = lat0 + rng.uniform(-20, 20, 1000) * dlat
    lon = np.concatenate([hot_lon, ring_lon, far_lon, [np.nan]])
    lat = np.concatenate([hot_lat, ring_lat, far_lat, [np.nan]])
    t_lon = np.concatenate([np.full(200, 120.0), far_lon[:30], [np.nan]])
    t_lat = np.concatenate([np.full(200, lat0), far_lat[:30], [lat0]])
    kept = near_any(lon, lat, t_lon, t_lat, 51.0)
    nearest = _brute_nearest_m(lon, lat, t_lon[:-1], t_lat[:-1])
    assert kept.tolist() == (nearest <= 51.0).tolist()
    assert kept[:600].all() and not kept[-1]
    assert 0 < kept[600:1000].sum() < 400  # the ring is split by the radius
    assert not near_any(lon, lat, [], [], 51.0).any()
    assert near_any([], [], t_lon, t_lat, 51.0).tolist() == []


def test_places_within_the_radius_are_in_the_same_or_adjacent_cells():
    rng = np.random.default_rng(3)
    for lat0 in (18.0, 29.0, 45.0, 53.5):  # China from Hainan to Mohe
        lon, lat = offset(118.0, lat0, rng.uniform(0, 3_000, 4_000), rng.uniform(0, 3_000, 4_000))
        near = near_counts(lon, lat, ["m"] * len(lon), 51.0)
        assert near.max() > 1
        cells = place_cells(lon, lat)
        # Each place's neighbours (brute force) lie in the cells one around its own.
        d_east = (lon[:, None] - lon[None, :]) * 111_195 * np.cos(np.radians(lat0))
        d_north = (lat[:, None] - lat[None, :]) * 111_195
        close = np.hypot(d_east, d_north) <= 51.0
        for i in np.flatnonzero(close.sum(axis=1) > 1)[:300]:
            assert set(cells[close[i]].tolist()) <= cells_around([cells[i]], 1)


def served_data(rows: list[dict]) -> tuple[WarningData, int]:
    """What the service hands the detector for judging DAY (services.analytics.warning_reports): of 顽疾's
    weeks only the reports in the cells around one with ``min_events`` of its matter within the margin, and
    every report counted per grid × category × title; and how many reports that is."""
    full = reports_frame(rows)
    full["reported_at"] = pd.to_datetime(full["reported_at"])
    near = near_counts(
        full["lon"], full["lat"], full["category"] + "|" + full["title"], P.radius_m * NEAR_MARGIN
    )
    seeds = full[near >= P.min_events]
    keep = np.isin(
        place_cells(full["lon"], full["lat"]), list(cells_around(place_cells(seeds["lon"], seeds["lat"])))
    )
    start = DAY - pd.Timedelta(days=7 * P.weeks - 1)
    window = full[(full["reported_at"] >= start) & (full["reported_at"] < DAY + pd.Timedelta(days=1))]
    # Per grid every report; per grid × matter only the possible seeds' matters.
    totals = window.groupby("grid_id").size().rename("count").reset_index()
    seed_matters = set(zip(seeds["category"], seeds["title"], strict=True))
    of_seeds = [(c, t) in seed_matters for c, t in zip(window["category"], window["title"], strict=True)]
    matters = window[of_seeds].groupby(["grid_id", "category", "title"]).size().rename("count").reset_index()
    counts = daily_counts(full, UNITS, ("grid", "village", "township"))
    data = WarningData(
        counts,
        UNITS,
        full[keep].reset_index(drop=True),
        matter_day=DAY,
        matter_counts=matters,
        grid_totals=totals,
    )
    return data, int(keep.sum())


QUIET = [dict(r, grid_id=102) for r in noise_at(2_000, 0, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27])]


@pytest.mark.parametrize(
    "rows",
    [
        background(np.random.default_rng(1), 300) + noise_at(120, 80, THREE_A_WEEK),
        background(np.random.default_rng(2), 600)
        + background(np.random.default_rng(4), 50, grid=102)
        + QUIET,
        background(np.random.default_rng(5), 900) + noise_at(300, 300, THREE_A_WEEK[:12]),
    ],
    ids=["hotspot", "quiet-grid", "busy-grid"],
)
def test_chronic_from_the_reports_near_a_possible_seed_equals_chronic_from_every_report(rows):
    everything = detect(DAY, WarningData.from_events(reports_frame(rows), UNITS))
    data, read = served_data(rows)
    served = detect(DAY, data)
    assert [a.kind for a in everything].count(AlertKind.CHRONIC) == 1
    assert served == everything  # evidence (counts, background, p-value, report ids) and sentence alike
    assert read < len(rows)  # fewer (a tenth in the sparse hotspot case; the busy 500 m square is all seeds)


def test_a_sparse_area_reads_a_small_share_of_its_reports():
    _data, read = served_data(background(np.random.default_rng(1), 300) + noise_at(120, 80, THREE_A_WEEK))
    assert read < 324 / 3


def test_the_counts_given_for_one_day_are_not_used_for_another():
    rows = background(np.random.default_rng(1), 300) + noise_at(120, 80, THREE_A_WEEK)
    data, _read = served_data(rows)
    data.grid_totals = data.grid_totals.assign(count=10_000)  # wrong for DAY: would change the background
    other = DAY - pd.Timedelta(days=1)
    full = WarningData(data.counts, UNITS, data.reports)
    assert detect(other, data) == detect(other, full)
    assert detect(DAY, data) != detect(DAY, full)
