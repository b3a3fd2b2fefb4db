"""The event process (cycles, hotspots, mixes) and each event's closed loop with its trail, month by month."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from demo.area import Area
from demo.columns import DAY, HOUR, make_frame, nullable_ints, secs_to_dt
from demo.org import Org
from demo.vocab import (
    CATEGORIES,
    CATEGORY_MIX,
    COUNTY_DEPARTMENTS,
    DETAIL_PHRASES,
    LEAD_KINDS,
    SOURCE_MIX,
    SOURCES,
    SUBTYPES,
    TOWNSHIP_DEPARTMENTS,
    fake_names,
    fake_phones,
)
from domain.deadlines import DEFAULT_HOURS, Stage
from domain.event_flow import ACTION_LABELS, TRANSITIONS, Action
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource, EventStatus, Rating, Urgency

A = Action
# The longest loop an event can take; each event includes a subset of these slots, in this order.
# Any subset the generator picks is a path through domain.event_flow.TRANSITIONS (tested).
SLOTS: list[Action] = [
    A.REPORT,  # 0
    A.REJECT,  # 1   invalid or duplicate
    A.ACCEPT,  # 2
    A.ESCALATE,  # 3  village → township before dispatch (大事不出镇)
    A.ESCALATE,  # 4  township → county
    A.DISPATCH,  # 5
    A.RETURN,  # 6    wrong department: 退单
    A.DISPATCH,  # 7  re-dispatch to the right one
    A.START,  # 8
    A.ESCALATE,  # 9  the handler cannot resolve it: up one level
    A.DISPATCH,  # 10
    A.START,  # 11
    A.RESOLVE,  # 12
    A.REOPEN,  # 13   verification failed
    A.RESOLVE,  # 14
    A.VERIFY,  # 15
    A.RATE,  # 16
    A.REOPEN,  # 17   不满意: handled again
    A.RESOLVE,  # 18
    A.VERIFY,  # 19
    A.RATE,  # 20
    A.ARCHIVE,  # 21
]
N_SLOTS = len(SLOTS)
ALWAYS = [0, 2, 5, 8, 12, 15, 21]
REJECT_PATH = [0, 1, 21]
ESC_SLOTS = [3, 4, 9]
DISPATCH_SLOTS = [5, 7, 10]
RESOLVE_SLOTS = [12, 14, 18]
COMMAND_SLOTS = [1, 2, 3, 4, 5, 7, 9, 10, 13, 15, 19]  # the command centre acts
HANDLER_SLOTS = [6, 8, 11, 12, 14, 18]  # the handling department (or the village's grid worker) acts


def _to_status(action: Action) -> EventStatus:
    # Every action leads to one status whatever it starts from, so a slot has a fixed result.
    results = {to for (_, a), to in TRANSITIONS.items() if a is action}
    assert len(results) == 1, action
    return results.pop()


SLOT_ACTION = np.array([a.value for a in SLOTS], dtype=object)
SLOT_TO = np.array([_to_status(a).value for a in SLOTS], dtype=object)
SLOT_TO_OPEN = np.array([_to_status(a) in OPEN_STATUSES for a in SLOTS])

SRC = {s: i for i, s in enumerate(SOURCES)}
N_SUB = len(SUBTYPES)
SUB_CAT = np.array([CATEGORIES.index(s.category) for s in SUBTYPES])
SUB_SMALL = np.array([s.small for s in SUBTYPES])
SUB_VENUE = np.array([s.venue for s in SUBTYPES])
SUB_TITLE = np.array([s.title for s in SUBTYPES], dtype=object)
URGENCIES = np.array([u.value for u in Urgency], dtype=object)
RATINGS = list(Rating)
CATEGORY_VALUES = np.array([c.value for c in CATEGORIES], dtype=object)
SOURCE_VALUES = np.array([s.value for s in SOURCES], dtype=object)

# Weekly and yearly cycles (Monday first; January first); each normalised to mean 1.
WEEKDAY = np.array([1.08, 1.05, 1.03, 1.02, 1.00, 0.82, 0.78])
WEEKDAY /= WEEKDAY.mean()
MONTH = np.array([0.90, 0.80, 0.95, 1.00, 1.02, 1.08, 1.12, 1.10, 1.02, 0.98, 1.00, 0.95])
MONTH /= MONTH.mean()
CATEGORY_MONTH = np.ones((12, len(CATEGORIES)))
# 梅雨 and typhoons: natural hazards peak in June-August; noise and smells in summer.
CATEGORY_MONTH[:, CATEGORIES.index(EventCategory.NATURAL_HAZARD)] = [
    0.5,
    0.5,
    0.8,
    1.0,
    1.4,
    2.6,
    2.3,
    1.8,
    1.3,
    0.8,
    0.6,
    0.5,
]
CATEGORY_MONTH[:, CATEGORIES.index(EventCategory.ENVIRONMENT)] = [
    0.8,
    0.8,
    0.9,
    1.0,
    1.1,
    1.3,
    1.35,
    1.3,
    1.1,
    0.95,
    0.9,
    0.8,
]

# Hour-of-day profiles (relative weights, 0-23 h).
PROFILES = np.array(
    [
        # daytime: citizens, hotline, video
        [
            0.5,
            0.3,
            0.2,
            0.2,
            0.3,
            0.6,
            1.4,
            3.0,
            5.2,
            6.8,
            7.0,
            6.2,
            4.6,
            4.4,
            5.8,
            6.4,
            6.2,
            5.6,
            4.8,
            4.6,
            4.2,
            3.4,
            2.2,
            1.2,
        ],
        # evening: disputes, public security, 110
        [
            1.2,
            0.8,
            0.5,
            0.3,
            0.3,
            0.5,
            1.0,
            2.0,
            3.5,
            4.6,
            5.0,
            4.8,
            4.2,
            4.0,
            4.6,
            5.0,
            5.2,
            5.4,
            5.8,
            6.4,
            6.8,
            6.2,
            4.8,
            2.6,
        ],
        # working hours: patrols, inspections, 数字城管
        [0, 0, 0, 0, 0, 0, 0.2, 2, 8, 10, 10, 8, 3, 4, 9, 10, 9, 6, 1.5, 0.8, 0.4, 0.2, 0, 0],
        # round the clock: 119
        [2.5, 2, 1.8, 1.6, 1.6, 1.8, 2.5, 3.5, 4.5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 4.5, 4, 3],
    ]
)
PROFILE_CUM = np.cumsum(PROFILES, axis=1) / PROFILES.sum(axis=1, keepdims=True)
P_DAY, P_EVENING, P_WORK, P_FLAT = range(4)

# Rejections by source (video AI has false positives); ratings only where a citizen reported.
REJECT_P = np.array([0.06, 0.01, 0.04, 0.02, 0.01, 0.05, 0.03, 0.0])
RATE_P = np.array([0.75, 0.0, 0.85, 0.5, 0.3, 0.0, 0.0, 0.0])
HAS_REPORTER = np.array([True, True, True, True, True, False, False, True])
# Deadlines by urgency (normal, urgent, critical) in seconds, from the product's default 办理时限.
ACCEPT_LIMIT, DISPATCH_LIMIT, HANDLE_LIMIT, VERIFY_LIMIT = (
    np.array([DEFAULT_HOURS[stage][u] for u in Urgency]) * HOUR
    for stage in (Stage.ACCEPT, Stage.DISPATCH, Stage.HANDLE, Stage.VERIFY)
)
# Handling time: lognormal median by urgency (hours) times a category factor; spread sigma by urgency.
HANDLE_MEDIAN = np.array([20.0, 6.0, 1.5])
HANDLE_SIGMA = np.array([0.9, 0.8, 0.7])
CATEGORY_HANDLE = np.array([0.8, 1.5, 1.1, 1.3, 1.0, 1.0, 1.2, 1.1])
ACCEPT_MEDIAN = np.array([0.3, 0.1, 0.25, 0.05, 0.02, 0.3, 0.4, 0.1])  # hours, by source

INVALID_NOTES = np.array(
    [
        "无效上报：信息不全，无法核实",
        "无效上报：不属于受理范围",
        "无效上报：现场核查无此情况",
        "无效上报：误报",
    ],
    dtype=object,
)
FIXED_NOTES = {
    6: "非本部门职责，申请退单",
    8: "开始处置",
    11: "开始处置",
    12: "已处置完毕，反馈办结",
    14: "已重新处置，反馈办结",
    18: "已重新处置，反馈办结",
    13: "核查未通过，重新处置",
    15: "核查通过",
    19: "核查通过",
    17: "群众不满意，重新处置",
    21: ACTION_LABELS[A.ARCHIVE],
    2: ACTION_LABELS[A.ACCEPT],
}

KINDS = sorted({k for k, _, _ in COUNTY_DEPARTMENTS} | {k for k, _, _ in TOWNSHIP_DEPARTMENTS})
LEAD_CUM = np.zeros((len(CATEGORIES), len(KINDS)))
for _c, _pairs in LEAD_KINDS.items():
    for _k, _w in _pairs:
        LEAD_CUM[CATEGORIES.index(_c), KINDS.index(_k)] = _w
LEAD_CUM = np.cumsum(LEAD_CUM, axis=1) / LEAD_CUM.sum(axis=1, keepdims=True)


def draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: row i of ``cum`` (or ``cum`` itself) is a cumulative distribution."""
    if cum.ndim == 1:
        return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), cum.shape[1] - 1)


def lognormal_secs(rng, median_h, sigma, n) -> np.ndarray:
    return np.maximum(60, np.round(rng.lognormal(np.log(median_h * HOUR), sigma, n))).astype(np.int64)


@dataclass
class EventModel:
    """Everything the monthly chunks share: rates, mixes, lookups, and the injected special events."""

    area: Area
    org: Org
    end: int  # seconds; nothing happens after it
    start: int
    events_per_day: float
    grid_p: np.ndarray  # probability that a base event falls in each data grid
    cat_weight: np.ndarray  # (data townships, categories) base category weights
    venue_start: np.ndarray
    venue_count: np.ndarray
    venue_id: np.ndarray
    venue_lon: np.ndarray
    venue_lat: np.ndarray
    venue_address: np.ndarray
    dept_t: np.ndarray  # (data township, kind) → department id or -1
    dept_c: np.ndarray  # (county row, kind) → department id or -1
    grid_c_row: np.ndarray  # data grid → county row
    dept_kind: np.ndarray  # department id → kind index
    specials: pd.DataFrame | None = None  # injected events (anomalies, chronic addresses, hotspots)
    special_ids: dict[str, int] = field(default_factory=dict)  # special key → event id, once generated

    def sub_cum(self) -> np.ndarray:
        w = np.zeros((len(CATEGORIES), N_SUB))
        w[SUB_CAT, np.arange(N_SUB)] = [s.weight for s in SUBTYPES]
        return np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)

    def source_cum(self) -> np.ndarray:
        """(weekend, subtype, source) cumulative source mix."""
        out = np.zeros((2, N_SUB, len(SOURCES)))
        for i, s in enumerate(SUBTYPES):
            w = np.array(SOURCE_MIX[s.category], dtype=float)
            w[SRC[EventSource.VIDEO_AI]] *= 2.0 if s.video else 0.0
            if not s.venue:
                w[SRC[EventSource.INSPECTION]] = 0.0
            out[0, i] = w
            weekend = w.copy()
            weekend[SRC[EventSource.GRID_WORKER]] *= 0.5  # fewer patrols at weekends
            weekend[SRC[EventSource.CITIZEN]] *= 1.15
            out[1, i] = weekend
        return np.cumsum(out, axis=2) / out.sum(axis=2, keepdims=True)


def build_event_model(
    area: Area,
    org: Org,
    venues,
    start: int,
    end: int,
    events_per_day: float,
    novel_category: EventCategory | None,
    rng: np.random.Generator,
) -> EventModel:
    grids = area.grids
    kind = grids["township_kind"].to_numpy()
    # Hotspots: intensity follows population, skewed by a lognormal factor and a few hot grids.
    w = (grids["population"].to_numpy() + 100.0) * rng.lognormal(0, 0.5, len(grids))
    w *= np.where(rng.random(len(grids)) < 0.06, 2.5, 1.0)
    w *= np.where(kind == "街道", 1.3, np.where(kind == "乡", 0.8, 1.0))
    t_kinds = [area.townships.at[t, "kind"] for t in area.data_townships]
    cat_weight = np.array([CATEGORY_MIX.get(k, CATEGORY_MIX["镇"]) for k in t_kinds])
    cat_weight = cat_weight * rng.lognormal(0, 0.15, cat_weight.shape)  # townships differ a little
    if novel_category is not None:
        # The 新苗头 township has never seen this category before the anomaly starts.
        cat_weight[area.data_townships.index(area.demo_township), CATEGORIES.index(novel_category)] = 0.0

    deps = org.departments
    county_row = {c: i for i, c in enumerate(area.counties.index)}
    unit_row_t = {int(area.townships.at[t, "id"]): i for i, t in enumerate(area.data_townships)}
    unit_row_c = {int(area.counties.at[c, "id"]): i for i, c in enumerate(area.counties.index)}
    dept_t = np.full((len(area.data_townships), len(KINDS)), -1, dtype=np.int64)
    dept_c = np.full((len(area.counties), len(KINDS)), -1, dtype=np.int64)
    dept_kind = np.zeros(len(deps) + 1, dtype=np.int64)
    for did, uid, k in deps[["id", "unit_id", "kind"]].itertuples(index=False):
        dept_kind[did] = KINDS.index(k)
        if uid in unit_row_t:
            dept_t[unit_row_t[uid], KINDS.index(k)] = did
        elif uid in unit_row_c:
            dept_c[unit_row_c[uid], KINDS.index(k)] = did
    v = venues.venues
    return EventModel(
        area=area,
        org=org,
        end=end,
        start=start,
        events_per_day=events_per_day,
        grid_p=w / w.sum(),
        cat_weight=cat_weight,
        venue_start=venues.grid_start,
        venue_count=venues.grid_count,
        venue_id=v["id"].to_numpy(),
        venue_lon=v["lon"].to_numpy(),
        venue_lat=v["lat"].to_numpy(),
        venue_address=v["address"].to_numpy(dtype=object),
        dept_t=dept_t,
        dept_c=dept_c,
        grid_c_row=np.array([county_row[c] for c in grids["county_code"]], dtype=np.int64),
        dept_kind=dept_kind,
    )


def expected_rate(model: EventModel, grid_idx: np.ndarray, category: EventCategory) -> float:
    """Mean base events a day of ``category`` over the grids ``grid_idx`` (before cycles and noise)."""
    t = model.area.grids["township_idx"].to_numpy()[grid_idx]
    share = model.cat_weight[t, CATEGORIES.index(category)] / model.cat_weight[t].sum(axis=1)
    return float(model.events_per_day * (model.grid_p[grid_idx] * share).sum())


def hour_profile(source: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Which hour profile fits each event, by source first, then by category."""
    evening_cat = np.isin(
        category, [CATEGORIES.index(EventCategory.DISPUTE), CATEGORIES.index(EventCategory.PUBLIC_SECURITY)]
    )
    return np.select(
        [
            np.isin(
                source,
                [SRC[EventSource.GRID_WORKER], SRC[EventSource.INSPECTION], SRC[EventSource.DIGITAL_CITY]],
            ),
            source == SRC[EventSource.POLICE_110],
            source == SRC[EventSource.FIRE_119],
            evening_cat,
        ],
        [P_WORK, P_EVENING, P_FLAT, P_EVENING],
        P_DAY,
    )


def base_events(model: EventModel, cs: int, ce: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The ordinary flow in [cs, ce): Poisson days with weekly/yearly cycles, grids by intensity."""
    days = np.arange(cs // DAY, (min(ce, model.end) - 1) // DAY + 1)
    month = secs_to_dt(days * DAY).astype("datetime64[M]").astype(int) % 12
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday
    lam = model.events_per_day * WEEKDAY[dow] * MONTH[month] * rng.lognormal(0, 0.08, len(days))
    counts = rng.poisson(lam)
    day = np.repeat(days, counts)
    mon = np.repeat(month, counts)
    n = len(day)
    grid = draw(np.cumsum(model.grid_p), rng.random(n))
    t_idx = model.area.grids["township_idx"].to_numpy()[grid]
    w = model.cat_weight[t_idx] * CATEGORY_MONTH[mon]
    cat = draw(np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True), rng.random(n))
    sub = draw(model.sub_cum()[cat], rng.random(n))
    weekend = (np.repeat(dow, counts) >= 5).astype(int)
    source = draw(model.source_cum()[weekend, sub], rng.random(n))
    hour = draw(PROFILE_CUM[hour_profile(source, cat)], rng.random(n))
    t = day * DAY + hour * HOUR + rng.integers(0, HOUR, n)
    keep = (t >= cs) & (t < ce) & (t <= model.end)
    return {"t": t[keep], "grid": grid[keep], "sub": sub[keep], "source": source[keep]}


def make_chunk(
    model: EventModel, cs: int, ce: int, rng: np.random.Generator, first_id: int, first_transition_id: int
) -> dict[str, pd.DataFrame]:
    """The events reported in [cs, ce), their loops up to ``model.end``, as frames for the store."""
    area, org = model.area, model.org
    base = base_events(model, cs, ce, rng)
    nb = len(base["t"])
    sp = model.specials
    if sp is not None:
        sp = sp[(sp["t"] >= cs) & (sp["t"] < ce) & (sp["t"] <= model.end)]
    ns = 0 if sp is None else len(sp)
    n = nb + ns

    def cat_(base_val, col, dtype=None):
        extra = sp[col].to_numpy() if ns else np.empty(0)
        out = np.concatenate([base_val, extra])
        return out.astype(dtype) if dtype else out

    t = cat_(base["t"], "t", np.int64)
    grid = cat_(base["grid"], "grid", np.int64)
    sub = cat_(base["sub"], "sub", np.int64)
    source = cat_(base["source"], "source", np.int64)
    special = np.concatenate([np.full(nb, -1), sp["special_id"].to_numpy() if ns else []]).astype(np.int64)
    dup_of_special = np.concatenate([np.full(nb, -1), sp["dup_of"].to_numpy() if ns else []]).astype(np.int64)
    g = area.grids

    # Place: a venue of the grid for venue-bound matters (always for inspections), else an address.
    vcount = model.venue_count[grid]
    want_venue = (SUB_VENUE[sub] & (rng.random(n) < 0.6)) | (source == SRC[EventSource.INSPECTION])
    vrow = np.where(
        want_venue & (vcount > 0),
        model.venue_start[grid] + (rng.random(n) * np.maximum(vcount, 1)).astype(np.int64),
        -1,
    )
    k = rng.integers(0, area.pool_lon.shape[1], n)
    lon = np.where(vrow >= 0, model.venue_lon[np.maximum(vrow, 0)], area.pool_lon[grid, k])
    lat = np.where(vrow >= 0, model.venue_lat[np.maximum(vrow, 0)], area.pool_lat[grid, k])
    address = np.where(vrow >= 0, model.venue_address[np.maximum(vrow, 0)], area.pool_address[grid, k])
    venue_id = np.where(vrow >= 0, model.venue_id[np.maximum(vrow, 0)], -1)

    # Who reported: a named citizen, the grid worker on patrol, or nobody (video, 数字城管).
    primary = org.grid_primary[grid]
    by_worker = np.isin(source, [SRC[EventSource.GRID_WORKER], SRC[EventSource.INSPECTION]]) & (primary > 0)
    name = fake_names(rng, n).astype(object)
    phone = fake_phones(rng, n).astype(object)
    worker_names = np.array([org.user_name.get(int(u)) for u in primary], dtype=object) if n else name
    worker_phones = np.array([org.user_phone.get(int(u)) for u in primary], dtype=object) if n else phone
    name = np.where(by_worker, worker_names, np.where(HAS_REPORTER[source], name, None))
    phone = np.where(by_worker, worker_phones, np.where(HAS_REPORTER[source], phone, None))
    urgent_src = np.isin(source, [SRC[EventSource.POLICE_110], SRC[EventSource.FIRE_119]])
    ucum = np.select(
        [urgent_src[:, None], SUB_SMALL[sub][:, None]],
        [[0.4, 0.8, 1.0], [0.9, 0.99, 1.0]],
        np.array([0.72, 0.94, 1.0]),
    )
    urgency = draw(ucum, rng.random(n))
    reporter_count = np.ones(n, dtype=np.int64)
    description = None
    if ns:
        # Injected events carry their own place, people and words where they set them.
        sl = slice(nb, n)
        for col, arr in (("lon", lon), ("lat", lat)):
            vals = sp[col].to_numpy(dtype=float)
            arr[sl] = np.where(np.isnan(vals), arr[sl], vals)
        for col, arr in (("address", address), ("reporter_name", name), ("reporter_phone", phone)):
            vals = sp[col].to_numpy(dtype=object)
            has = np.array([v is not None and v == v for v in vals], dtype=bool)
            arr[sl] = np.where(has, vals, arr[sl])
        vrow_sp = sp["venue_row"].to_numpy(dtype=np.int64)
        venue_id[sl] = np.where(vrow_sp >= 0, model.venue_id[np.maximum(vrow_sp, 0)], -1)
        urg = sp["urgency"].to_numpy(dtype=np.int64)
        urgency[sl] = np.where(urg >= 0, urg, urgency[sl])
        reporter_count[sl] = sp["reporter_count"].to_numpy(dtype=np.int64)
        description = np.concatenate(
            [np.full(nb, None, dtype=object), sp["description"].to_numpy(dtype=object)]
        )

    # 退回: invalid reports, and duplicates of an earlier report in the same grid (merged into it).
    rejected = (rng.random(n) < REJECT_P[source]) & (special < 0)
    dup_of = np.full(n, -1, dtype=np.int64)
    forced = np.flatnonzero(dup_of_special >= 0)
    if len(forced):
        sp_pos = {int(s): i for i, s in enumerate(special) if s >= 0}
        dup_of[forced] = [sp_pos[int(s)] for s in dup_of_special[forced]]
        rejected[forced] = True
    dup_try = (
        rejected & (dup_of < 0) & np.isin(source, [SRC[EventSource.CITIZEN], SRC[EventSource.HOTLINE_12345]])
    )
    dup_try &= rng.random(n) < 0.5
    if n:
        order = np.lexsort((t, grid))
        valid_pos = np.maximum.accumulate(np.where(~rejected[order], np.arange(n), -1))
        prev = np.concatenate([[-1], valid_pos[:-1]])
        prev0 = np.maximum(prev, 0)
        ok = (prev >= 0) & dup_try[order] & (grid[order] == grid[order][prev0])
        ok &= t[order] - t[order][prev0] <= 3 * DAY
        dup_of[order[ok]] = order[prev[ok]]
    d = np.flatnonzero((dup_of >= 0) & (dup_of_special < 0))
    if len(d):
        # A duplicate repeats its target's matter and place; the target counts one more reporter.
        tgt = dup_of[d]
        for arr in (sub, lon, lat, address, venue_id):
            arr[d] = arr[tgt]
        t[d] = np.where(t[tgt] + 60 <= model.end, np.maximum(t[d], t[tgt] + 60), t[d])
        np.add.at(reporter_count, tgt, 1)
    cat = SUB_CAT[sub]

    flags = _loop_flags(model, n, grid, cat, sub, source, urgency, rejected, rng)
    times, mask = _loop_times(t, source, urgency, cat, flags, rng)
    kept = mask & (times <= model.end)

    # Ids follow report time; every per-event array is put in that order.
    perm = np.argsort(t, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    ids = first_id + np.arange(n, dtype=np.int64)
    merged_into = np.where(dup_of[perm] >= 0, first_id + rank[np.maximum(dup_of[perm], 0)], -1)
    for pos_i in np.flatnonzero(special >= 0):
        s_key = sp["key"].iat[pos_i - nb]
        if isinstance(s_key, str) and s_key:
            model.special_ids[s_key] = int(first_id + rank[pos_i])

    P = lambda a: a[perm]  # noqa: E731
    t, grid, sub, cat, source, urgency = P(t), P(grid), P(sub), P(cat), P(source), P(urgency)
    lon, lat, address, venue_id, name, phone = P(lon), P(lat), P(address), P(venue_id), P(name), P(phone)
    reporter_count, rejected = P(reporter_count), P(rejected)
    flags = {key: P(v) for key, v in flags.items()}
    times, mask, kept = times[perm], mask[perm], kept[perm]
    description = P(description) if description is not None else np.full(n, None, dtype=object)

    village = g["village_id"].to_numpy()[grid]
    township = g["township_id"].to_numpy()[grid]
    county = g["county_id"].to_numpy()[grid]
    owners = np.stack([village, township, county], axis=1)
    slots = np.arange(N_SLOTS)
    last = (kept * slots).max(axis=1)
    status = SLOT_TO[last]
    level = kept[:, ESC_SLOTS].sum(axis=1)

    def last_time(slot_list):
        out = np.full(n, -1, dtype=np.int64)
        for s in slot_list:
            out = np.where(kept[:, s], times[:, s], out)
        return out

    dispatched = last_time(DISPATCH_SLOTS)
    resolved = last_time(RESOLVE_SLOTS)
    rating = np.where(kept[:, 20], flags["rating2"], np.where(kept[:, 16], flags["rating1"], -1))
    lead = np.full(n, -1, dtype=np.int64)
    for s, dcol in ((5, "d1"), (7, "d2"), (10, "d3")):
        lead = np.where(kept[:, s] & (flags[dcol] >= 0), flags[dcol], lead)

    # due_at is the deadline of the stage the event is in (domain.deadlines): accept, (re-)dispatch,
    # handle from the latest dispatch, verify once resolved; closed events keep their handling deadline.
    # is_overdue: open and past due, or (closed) handled after the handling deadline.
    at_last = times[np.arange(n), last]
    handle_due = dispatched + HANDLE_LIMIT[urgency]
    rejected_path = kept[:, 1]
    due = np.select(
        [
            rejected_path | (last == 0),
            np.isin(last, [2, 3, 4, 9, 6]),
            np.isin(last, RESOLVE_SLOTS),
        ],
        [t + ACCEPT_LIMIT[urgency], at_last + DISPATCH_LIMIT[urgency], at_last + VERIFY_LIMIT[urgency]],
        handle_due,
    ).astype(np.int64)
    is_open = SLOT_TO_OPEN[last]
    overdue = np.select(
        [is_open, rejected_path],
        [model.end > due, times[:, 1] > due],
        (resolved >= 0) & (resolved > handle_due),
    )

    titles = SUB_TITLE[sub]
    phrase_pick = rng.integers(0, 3, n)
    phrases = np.array(
        [DETAIL_PHRASES[CATEGORIES[c]][p] for c, p in zip(cat.tolist(), phrase_pick.tolist(), strict=True)],
        dtype=object,
    )
    description = np.where(description == None, address + "，" + titles + "：" + phrases, description)  # noqa: E711

    events = make_frame(
        {
            "id": ids,
            "source": SOURCE_VALUES[source],
            "category": CATEGORY_VALUES[cat],
            "title": titles,
            "description": description,
            "lon": lon.astype(float),
            "lat": lat.astype(float),
            "address": address,
            "grid_id": g["id"].to_numpy()[grid],
            "venue_id": nullable_ints(venue_id, venue_id < 0),
            "status": status,
            "urgency": URGENCIES[urgency],
            "owner_unit_id": owners[np.arange(n), level],
            "lead_department_id": nullable_ints(lead, lead < 0),
            "reporter_name": name,
            "reporter_phone": phone,
            "reporter_count": reporter_count,
            "merged_into_id": nullable_ints(merged_into, merged_into < 0),
            "reported_at": secs_to_dt(t),
            "accepted_at": secs_to_dt(times[:, 2], ~kept[:, 2]),
            "dispatched_at": secs_to_dt(dispatched, dispatched < 0),
            "resolved_at": secs_to_dt(resolved, resolved < 0),
            "closed_at": secs_to_dt(times[:, 21], ~kept[:, 21]),
            "due_at": secs_to_dt(due),
            "rating": np.where(
                rating >= 0, np.array([r.value for r in RATINGS], dtype=object)[np.maximum(rating, 0)], None
            ),
            "escalations": level.astype(np.int64),
            "is_overdue": overdue.astype(bool),
            "updated_at": secs_to_dt(at_last),
        }
    )
    transitions = _trail(
        model, kept, times, ids, owners, grid, source, cat, flags, merged_into, first_transition_id
    )
    cooperators = _cooperators(model, kept, lead, ids, rng)
    return {"events": events, "event_transitions": transitions, "event_cooperators": cooperators}


def _dispatch_target(model: EventModel, level, cat, grid, small, rng) -> np.ndarray:
    """The department an event goes to from the owner ``level`` (0 village, 1 township, 2 county); -1: the village."""
    n = len(cat)
    kind = draw(LEAD_CUM[cat], rng.random(n))
    t_row = model.area.grids["township_idx"].to_numpy()[grid]
    c_row = model.grid_c_row[grid]
    at_t = model.dept_t[t_row, kind]
    at_c = model.dept_c[c_row, kind]
    # 条抓块统: township offices take most; county departments take the rest and what townships lack.
    dept = np.where((level <= 1) & (at_t >= 0) & (rng.random(n) < 0.6), at_t, at_c)
    village_self = (level == 0) & small & (rng.random(n) < 0.55)
    return np.where(village_self, -1, dept)


def _loop_flags(model, n, grid, cat, sub, source, urgency, rejected, rng) -> dict[str, np.ndarray]:
    """Which optional steps each event takes, and to whom it is dispatched."""
    small = SUB_SMALL[sub] & (urgency == 0)
    esc1 = ~rejected & (rng.random(n) < np.where(small, 0.02, 0.12))
    esc2 = esc1 & (rng.random(n) < 0.08)
    late = ~rejected & ~esc2 & (rng.random(n) < 0.015)
    level1 = esc1.astype(int) + esc2
    d_right = _dispatch_target(model, level1, cat, grid, small, rng)
    # 退单: the first dispatch went to the wrong department of the same unit.
    ret = ~rejected & (d_right >= 0) & (rng.random(n) < 0.04)
    wrong_kind = (model.dept_kind[np.maximum(d_right, 0)] + rng.integers(1, len(KINDS), n)) % len(KINDS)
    same_t = np.isin(d_right, model.dept_t)
    t_row = model.area.grids["township_idx"].to_numpy()[grid]
    wrong = np.where(
        same_t, model.dept_t[t_row, wrong_kind], model.dept_c[model.grid_c_row[grid], wrong_kind]
    )
    ret &= wrong >= 0
    d1 = np.where(ret, wrong, d_right)
    d3 = _dispatch_target(model, level1 + 1, cat, grid, np.zeros(n, dtype=bool), rng)
    vfail = ~rejected & (rng.random(n) < 0.03)
    rated = ~rejected & (rng.random(n) < RATE_P[source])
    rating1 = draw(np.array([0.86, 0.96, 1.0]), rng.random(n))
    unsat = rated & (rating1 == 2)
    rating2 = draw(np.array([0.6, 0.9, 1.0]), rng.random(n))
    return {
        "rejected": rejected,
        "esc1": esc1,
        "esc2": esc2,
        "late": late,
        "ret": ret,
        "vfail": vfail,
        "rated": rated,
        "unsat": unsat,
        "rating1": rating1,
        "rating2": rating2,
        "d1": d1,
        "d2": d_right,
        "d3": d3,
        "invalid_note": rng.integers(0, len(INVALID_NOTES), n),
    }


def _loop_times(t, source, urgency, cat, f, rng) -> tuple[np.ndarray, np.ndarray]:
    """Slot inclusion mask and the time of every included slot (seconds, strictly increasing)."""
    n = len(t)
    mask = np.zeros((n, N_SLOTS), dtype=bool)
    ok = ~f["rejected"]
    mask[:, REJECT_PATH] = f["rejected"][:, None]
    mask[:, ALWAYS] |= ok[:, None]
    mask[:, 3] = f["esc1"]
    mask[:, 4] = f["esc2"]
    mask[:, 6] = mask[:, 7] = f["ret"]
    mask[:, 9] = mask[:, 10] = mask[:, 11] = f["late"]
    mask[:, 13] = mask[:, 14] = f["vfail"]
    mask[:, 16] = f["rated"]
    mask[:, 17:21] = f["unsat"][:, None]

    delay = np.zeros((n, N_SLOTS), dtype=np.int64)
    L = lambda med, sig: lognormal_secs(rng, med, sig, n)  # noqa: E731
    delay[:, 1] = L(0.4, 0.8)
    accept = lognormal_secs(rng, 1.0, 0.7, n) * ACCEPT_MEDIAN[source]
    # Reports in the night from citizens, cameras and 数字城管 wait for the morning shift (07:30).
    sod = t % DAY
    night = np.isin(
        source, [SRC[EventSource.CITIZEN], SRC[EventSource.VIDEO_AI], SRC[EventSource.DIGITAL_CITY]]
    ) & ((sod >= 22 * HOUR) | (sod < 7 * HOUR))
    wait = np.where(sod >= 22 * HOUR, DAY - sod + 7.5 * HOUR, 7.5 * HOUR - sod)
    delay[:, 2] = np.maximum(60, np.where(night, wait + accept, accept)).astype(np.int64)
    delay[:, 3] = L(1.5, 0.8)
    delay[:, 4] = L(4.0, 0.8)
    fast = np.array([1.0, 0.5, 0.25])[urgency]
    delay[:, 5] = np.maximum(60, L(0.4, 0.8) * fast).astype(np.int64)
    delay[:, 6] = L(3.0, 0.8)
    delay[:, 7] = L(0.6, 0.6)
    delay[:, 8] = np.maximum(60, L(1.2, 0.9) * np.array([1.0, 0.4, 0.12])[urgency]).astype(np.int64)
    delay[:, 9] = L(10.0, 0.8)
    delay[:, 10] = L(0.8, 0.6)
    delay[:, 11] = L(1.5, 0.8)
    handle = rng.lognormal(
        np.log(HANDLE_MEDIAN[urgency] * CATEGORY_HANDLE[cat] * HOUR), HANDLE_SIGMA[urgency]
    )
    delay[:, 12] = np.clip(np.round(handle), 300, 20 * DAY).astype(np.int64)
    delay[:, 13] = L(3.0, 0.8)
    delay[:, 14] = L(10.0, 0.8)
    delay[:, 15] = L(5.0, 0.8)
    delay[:, 16] = L(10.0, 1.0)
    delay[:, 17] = L(2.0, 0.8)
    delay[:, 18] = L(20.0, 0.8)
    delay[:, 19] = L(5.0, 0.8)
    delay[:, 20] = L(12.0, 0.8)
    # Archive: soon after a rating; unrated events wait out the three-day rating window.
    delay[:, 21] = np.where(
        f["rejected"], L(24.0, 0.5), np.where(f["rated"], L(6.0, 0.8), 72 * HOUR + L(2.0, 0.8))
    )
    times = t[:, None] + np.cumsum(delay * mask, axis=1)
    return times, mask


def _trail(model, kept, times, ids, owners, grid, source, cat, f, merged_into, first_id) -> pd.DataFrame:
    """One row per kept slot, event by event: the trail that replays to the event's status."""
    org = model.org
    r, s = np.nonzero(kept)
    m = len(r)
    seq = np.cumsum(kept, axis=1)[r, s]
    to_status = SLOT_TO[s]
    from_status = np.empty(m, dtype=object)
    from_status[1:] = to_status[:-1]
    from_status[seq == 1] = None

    esc_at = np.zeros_like(kept)
    esc_at[:, ESC_SLOTS] = kept[:, ESC_SLOTS]
    level_after = np.cumsum(esc_at, axis=1)[r, s]
    unit = owners[r, level_after]
    level_before = level_after - esc_at[r, s]

    hd1 = np.where(f["ret"], f["d2"], f["d1"])
    hd = np.where(f["late"], f["d3"], hd1)
    dept = np.full(m, -1, dtype=np.int64)
    for slot, arr in (
        (5, f["d1"]),
        (6, f["d1"]),
        (7, f["d2"]),
        (8, hd1),
        (10, f["d3"]),
        (11, f["d3"]),
        (12, hd),
        (14, hd),
        (18, hd),
    ):
        sel = s == slot
        dept[sel] = arr[r[sel]]

    # Actors: the township's (or county's) command centre, the department's handler, the grid worker.
    disp = org.dispatcher_by_unit
    t_disp = np.array([disp.get(int(u), -1) for u in owners[:, 1]], dtype=np.int64)
    c_disp = np.array([disp.get(int(u), -1) for u in owners[:, 2]], dtype=np.int64)
    worker = org.grid_primary[grid]
    actor = np.full(m, -1, dtype=np.int64)
    role = np.full(m, "system", dtype=object)
    first = s == 0
    by_worker = np.isin(source, [SRC[EventSource.GRID_WORKER], SRC[EventSource.INSPECTION]])[r]
    actor[first & by_worker] = worker[r[first & by_worker]]
    role[first & by_worker] = "inspector"
    role[first & (source[r] == SRC[EventSource.CITIZEN])] = "citizen"
    cmd = np.isin(s, COMMAND_SLOTS)
    actor[cmd] = np.where(level_before[cmd] >= 2, c_disp[r[cmd]], t_disp[r[cmd]])
    role[cmd] = "command_center"
    hnd = np.isin(s, HANDLER_SLOTS)
    has_dept = hnd & (dept >= 0)
    actor[has_dept] = org.dept_handler[dept[has_dept]]
    role[has_dept] = "department"
    village = hnd & (dept < 0)
    actor[village] = worker[r[village]]
    role[village] = "inspector"
    role[np.isin(s, [16, 17, 20])] = "citizen"

    note = np.full(m, None, dtype=object)
    for slot, text in FIXED_NOTES.items():
        note[s == slot] = text
    rej = np.flatnonzero(s == 1)
    dup = merged_into[r[rej]]
    note[rej] = np.where(
        dup >= 0,
        np.array([f"重复上报，已并入事件#{d}" for d in dup], dtype=object),
        INVALID_NOTES[f["invalid_note"][r[rej]]],
    )
    dispatch_note = np.concatenate(
        [[None], np.array([f"派单至{x}" for x in org.dept_name[1:]], dtype=object)]
    )
    for slot in DISPATCH_SLOTS:
        sel = s == slot
        note[sel] = np.where(
            dept[sel] >= 0, dispatch_note[np.maximum(dept[sel], 0)], "交由村（社区）自行处置"
        )
    esc = np.isin(s, ESC_SLOTS)
    unit_names = model.area.units.set_index("id")["name"]
    note[esc] = ["上移至" + unit_names.at[int(u)] for u in unit[esc]] if esc.any() else []
    labels = np.array([x.label for x in RATINGS], dtype=object)
    for slot, key in ((16, "rating1"), (20, "rating2")):
        sel = s == slot
        note[sel] = "评价：" + labels[f[key][r[sel]]]

    return make_frame(
        {
            "id": first_id + np.arange(m, dtype=np.int64),
            "event_id": ids[r],
            "seq": seq.astype(np.int64),
            "at": secs_to_dt(times[r, s]),
            "action": SLOT_ACTION[s],
            "from_status": from_status,
            "to_status": to_status,
            "actor_id": nullable_ints(actor, actor <= 0),
            "actor_role": role,
            "unit_id": unit,
            "department_id": nullable_ints(dept, dept < 0),
            "note": note,
        }
    )


def _cooperators(model: EventModel, kept, lead, ids, rng) -> pd.DataFrame:
    """一件事: a few dispatched events get one or two cooperating departments of the lead's unit."""
    pick = np.flatnonzero((lead >= 0) & kept[:, DISPATCH_SLOTS].any(axis=1) & (rng.random(len(lead)) < 0.05))
    rows_e, rows_d = [], []
    by_unit = model.org.departments.groupby("unit_id")["id"].apply(lambda x: x.to_numpy())
    unit_of = model.org.departments.set_index("id")["unit_id"]
    for e in pick:
        pool = by_unit[unit_of.at[int(lead[e])]]
        pool = pool[pool != lead[e]]
        k = 1 + int(rng.random() < 0.4)
        for d in rng.choice(pool, size=min(k, len(pool)), replace=False):
            rows_e.append(ids[e])
            rows_d.append(int(d))
    out = pd.DataFrame(
        {"event_id": np.array(rows_e, dtype=np.int64), "department_id": np.array(rows_d, dtype=np.int64)}
    )
    return out.sort_values(["event_id", "department_id"], ignore_index=True)
