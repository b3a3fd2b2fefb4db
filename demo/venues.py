"""Venues with their 平安码 history, inspections on the red/yellow/green cadence, and the hazards they find."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from demo.area import Area, sample_points
from demo.columns import DAY, days_to_dt, make_frame, nullable_ints, secs_to_dt, to_secs
from demo.org import Org
from demo.vocab import CHECK_ITEMS, FIRM_WORDS, VENUE_NAME_PARTS, checklist_json, fake_names, fake_phones
from domain.safety_code import CADENCE_DAYS
from domain.vocabulary import HazardSeverity, HazardStatus, InspectionResult, SafetyCode, VenueCategory

VENUE_CATEGORIES = list(VenueCategory)
CODES = [SafetyCode.RED, SafetyCode.YELLOW, SafetyCode.GREEN]  # index 0, 1, 2
INTERVAL = np.array([CADENCE_DAYS[c] for c in CODES], dtype=np.int64)

# Category mix by township kind (order of VenueCategory): shops, 出租房 and general firms dominate.
#            shop  security rental hazchem labour site  crowded general
VENUE_MIX = {
    "街道": [0.38, 0.035, 0.32, 0.005, 0.04, 0.010, 0.05, 0.16],
    "镇": [0.32, 0.030, 0.26, 0.015, 0.08, 0.015, 0.04, 0.24],
    "乡": [0.30, 0.020, 0.20, 0.020, 0.08, 0.020, 0.04, 0.32],
}
# P(red), P(yellow) of the current code by category: ~5 % red and ~20 % yellow overall.
CODE_ODDS = {
    VenueCategory.STREET_SHOP: (0.035, 0.18),
    VenueCategory.KEY_SECURITY: (0.10, 0.35),
    VenueCategory.RENTAL_HOUSING: (0.05, 0.22),
    VenueCategory.HAZCHEM: (0.25, 0.45),
    VenueCategory.LABOUR_INTENSIVE: (0.08, 0.30),
    VenueCategory.CONSTRUCTION_SITE: (0.12, 0.40),
    VenueCategory.CROWDED_VENUE: (0.08, 0.30),
    VenueCategory.GENERAL_FIRM: (0.03, 0.15),
}
RISK_WORD = ["高", "中", "低"]

# The hidden hazard propensity (decision 0030): hazards appear at a venue as a Poisson process whose
# daily rate is BASE_RATE × category × first colour × the grid's crowding × a venue factor nobody sees.
# Observable history explains part of it (category, colour, past hazards, busy grids with many
# events); the lognormal venue factor it cannot. The rate is never written to the store.
BASE_RATE = 0.0022
#               shop security rental hazchem labour site crowded general  (order of VenueCategory)
RATE_BY_CATEGORY = np.array([0.8, 1.2, 1.0, 2.6, 1.5, 2.0, 1.3, 0.7])
RATE_BY_CODE = np.array([3.0, 1.8, 1.0])  # red, yellow, green at the window's start
HIDDEN_SIGMA = 0.9  # the venue factor's lognormal spread


@dataclass
class Venues:
    venues: pd.DataFrame
    safety_code_changes: pd.DataFrame
    inspections: pd.DataFrame
    hazards: pd.DataFrame
    grid_start: np.ndarray  # grid index → first venue row (venues are grouped by grid)
    grid_count: np.ndarray
    # Hidden (never stored): each venue row's daily hazard rate, for the forecast replay only.
    propensity: np.ndarray | None = None


def build_venues(
    area: Area,
    org: Org,
    n_venues: int,
    created_before: datetime,
    window_start: datetime,
    end: datetime,
    rng: np.random.Generator,
    hidden_rng: np.random.Generator | None = None,
) -> Venues:
    """``n_venues`` venues over the data grids, their code history and inspections from ``window_start``.

    Hazards appear at each venue at its hidden rate (:func:`propensity`, drawn from ``hidden_rng``
    so the venue stream's other draws stay where they were); a visit finds them if any appeared
    since the previous visit.
    """
    grids = area.grids
    n_grids = len(grids)
    kind = grids["township_kind"].map(lambda k: k if k in VENUE_MIX else "镇").to_numpy()
    weight = (grids["population"].to_numpy() + 50) * rng.lognormal(0, 0.5, n_grids)
    weight *= np.where(kind == "街道", 1.2, np.where(kind == "乡", 0.7, 1.0))
    per_grid = rng.multinomial(n_venues, weight / weight.sum())
    grid_idx = np.repeat(np.arange(n_grids), per_grid)
    n = len(grid_idx)

    mix = np.array([VENUE_MIX[k] for k in kind])[grid_idx]
    cat_idx = (rng.random(n)[:, None] > np.cumsum(mix, axis=1)[:, :-1]).sum(axis=1)
    cats = np.asarray(VENUE_CATEGORIES, dtype=object)[cat_idx]

    lon = np.empty(n)
    lat = np.empty(n)
    start = np.concatenate([[0], np.cumsum(per_grid)])
    for g in np.flatnonzero(per_grid):
        lon[start[g] : start[g + 1]], lat[start[g] : start[g + 1]] = sample_points(
            area.polygons[g], per_grid[g], rng
        )
    pool = rng.integers(0, area.pool_address.shape[1], n)
    address = area.pool_address[grid_idx, pool]

    person = fake_names(rng, n)
    names = _venue_names(cat_idx, person, grids["village_name"].to_numpy()[grid_idx], rng)

    # Current code by category; some venues changed code inside the inspection window.
    odds = np.array([CODE_ODDS[c] for c in VENUE_CATEGORIES])[cat_idx]
    u = rng.random(n)
    c1 = np.where(u < odds[:, 0], 0, np.where(u < odds[:, 0] + odds[:, 1], 1, 2))
    has_change = rng.random(n) < np.array([0.5, 0.15, 0.06])[c1]
    v = rng.random(n)
    c0 = np.select([c1 == 0, c1 == 1], [np.where(v < 0.85, 1, 2), np.where(v < 0.6, 2, 0)], 1)
    c0 = np.where(has_change, c0, c1)

    # The venue's inspector: its grid worker mostly, else another one covering the grid.
    inspector = np.where(rng.random(n) < 0.85, org.grid_primary[grid_idx], pick_cover(org, grid_idx, rng))

    t_lo = to_secs(created_before) - 3 * 365 * DAY
    created = t_lo + (rng.random(n) * (to_secs(created_before) - DAY - t_lo)).astype(np.int64)
    created = created - created % DAY + rng.integers(9 * 3600, 17 * 3600, n)

    population = grids["population"].to_numpy(dtype=float)
    rate = propensity(cat_idx, c0, population[grid_idx], hidden_rng or np.random.default_rng(0))
    ins = _inspect(c0, c1, has_change, rate, to_secs(window_start), to_secs(end), rng)
    code = ins.pop("final_code")
    changed = ins.pop("changed")
    change_at = ins.pop("change_at")

    ids = np.arange(1, n + 1, dtype=np.int64)
    last = ins["last_day"]
    venues = make_frame(
        {
            "id": ids,
            "code": np.char.add("V", np.char.zfill(ids.astype(str), 7)).astype(object),
            "name": names,
            "category": np.asarray([c.value for c in cats], dtype=object),
            "address": address,
            "lon": lon,
            "lat": lat,
            "grid_id": grids["id"].to_numpy()[grid_idx],
            "safety_code": np.asarray([c.value for c in CODES], dtype=object)[code],
            "responsible_person": person.astype(object),
            "responsible_phone": fake_phones(rng, n).astype(object),
            "inspector_id": nullable_ints(inspector, inspector <= 0),
            "last_inspected_on": days_to_dt(last),
            "next_due_on": days_to_dt(np.where(last >= 0, last + INTERVAL[code], -1)),
            "is_active": True,
            "created_at": secs_to_dt(created),
        }
    )

    # 平安码 history: the first code at registration, and the change inside the window if it happened.
    cat_label = np.asarray([c.label for c in VENUE_CATEGORIES], dtype=object)[cat_idx]
    code_vals = np.asarray([c.value for c in CODES], dtype=object)
    code_labels = np.asarray([c.label for c in CODES], dtype=object)
    first = np.where(changed, c0, code)
    first_reason = [
        f"首次赋码：{cl}，综合评估为{RISK_WORD[f]}风险" for cl, f in zip(cat_label, first, strict=True)
    ]
    ch = np.flatnonzero(changed)
    worse = c1[ch] < c0[ch]
    reasons = [
        f"检查发现隐患，由{code_labels[a]}调整为{code_labels[b]}"
        if w
        else f"隐患整改到位、复查合格，由{code_labels[a]}调整为{code_labels[b]}"
        for a, b, w in zip(c0[ch], c1[ch], worse, strict=True)
    ]
    changes = make_frame(
        {
            "venue_id": np.concatenate([ids, ids[ch]]),
            "changed_at": secs_to_dt(np.concatenate([created, change_at[ch]])),
            "from_code": np.concatenate([np.full(n, None, dtype=object), code_vals[c0[ch]]]),
            "to_code": np.concatenate([code_vals[first], code_vals[c1[ch]]]),
            "reason": np.concatenate(
                [np.asarray(first_reason, dtype=object), np.asarray(reasons, dtype=object)]
            ),
        }
    ).sort_values(["venue_id", "changed_at"], kind="stable", ignore_index=True)
    changes.insert(0, "id", np.arange(1, len(changes) + 1, dtype=np.int64))

    inspections, hazards = _inspection_frames(ins, cat_idx, inspector, grid_idx, org, to_secs(end), rng)
    return Venues(venues, changes, inspections, hazards, start[:-1], per_grid, rate)


def propensity(
    cat_idx: np.ndarray, code: np.ndarray, population: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each venue's hidden daily hazard rate (see :data:`BASE_RATE`); ``population`` is its grid's."""
    crowding = ((population + 100.0) / (np.mean(population) + 100.0)) ** 0.5
    hidden = rng.lognormal(-(HIDDEN_SIGMA**2) / 2, HIDDEN_SIGMA, len(cat_idx))  # mean 1
    return BASE_RATE * RATE_BY_CATEGORY[cat_idx] * RATE_BY_CODE[code] * crowding * hidden


def hazard_onsets(rate: np.ndarray, days: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Hidden onset days (offsets in ``[0, days)``, sorted) per venue row: a Poisson process at ``rate``."""
    counts = rng.poisson(rate * days)
    offsets = rng.integers(0, days, int(counts.sum()))
    cuts = np.cumsum(counts)[:-1]
    return [np.sort(part) for part in np.split(offsets, cuts)]


def _venue_names(cat_idx: np.ndarray, person: np.ndarray, village: np.ndarray, rng) -> np.ndarray:
    n = len(cat_idx)
    words = np.asarray(FIRM_WORDS, dtype=object)[rng.integers(0, len(FIRM_WORDS), n)]
    out = np.empty(n, dtype=object)
    for ci, cat in enumerate(VENUE_CATEGORIES):
        sel = np.flatnonzero(cat_idx == ci)
        parts = np.asarray(VENUE_NAME_PARTS[cat], dtype=object)[
            rng.integers(0, len(VENUE_NAME_PARTS[cat]), len(sel))
        ]
        if cat is VenueCategory.STREET_SHOP:
            out[sel] = [
                f"{p[0]}记{s}" if i % 3 else f"{w}{s}"
                for i, (p, s, w) in enumerate(zip(person[sel], parts, words[sel], strict=True))
            ]
        elif cat is VenueCategory.RENTAL_HOUSING:
            out[sel] = [f"{p}出租房" for p in person[sel]]
        elif cat is VenueCategory.CONSTRUCTION_SITE:
            out[sel] = [f"{v}{s}" for v, s in zip(village[sel], parts, strict=True)]
        elif cat in (VenueCategory.GENERAL_FIRM, VenueCategory.HAZCHEM, VenueCategory.LABOUR_INTENSIVE):
            out[sel] = [f"衢州{w}{s}" for w, s in zip(words[sel], parts, strict=True)]
        else:
            out[sel] = [f"{w}{s}" for w, s in zip(words[sel], parts, strict=True)]
    return out


def _inspect(c0, c1, has_change, rate, win_start: int, end: int, rng) -> dict:
    """Walk every venue's visits on its cadence, all venues at once, one visit per loop turn.

    A visit fails if a hazard appeared since the previous one (the first looks back one cadence):
    probability ``1 − exp(−rate × gap)``, so rarely visited venues collect more per visit.
    """
    n = len(c0)
    code = c0.copy()
    end_day = end // DAY
    day = win_start // DAY + (rng.random(n) * INTERVAL[code]).astype(np.int64)
    prev = day - INTERVAL[code]
    window = max(end - win_start, 8 * DAY)
    tau = np.where(
        has_change,
        win_start + 5 * DAY + (rng.random(n) * (window - 7 * DAY)).astype(np.int64),
        np.iinfo(np.int64).max,
    )
    changed = np.zeros(n, dtype=bool)
    change_at = np.zeros(n, dtype=np.int64)
    last_day = np.full(n, -1, dtype=np.int64)
    out = {k: [] for k in ("venue", "at", "code", "fail", "forced")}
    active = day <= end_day
    while active.any():
        idx = np.flatnonzero(active)
        at = day[idx] * DAY + rng.integers(8 * 3600 + 1800, 17 * 3600 + 1800, len(idx))
        keep = at <= end
        active[idx[~keep]] = False
        idx, at = idx[keep], at[keep]
        cur = code[idx]
        cp = has_change[idx] & ~changed[idx] & (at >= tau[idx])
        worse = c1[idx] < c0[idx]
        gap = np.maximum(day[idx] - prev[idx], 1)
        fail = np.where(cp, worse, rng.random(len(idx)) < -np.expm1(-rate[idx] * gap))
        prev[idx] = day[idx]
        for k, val in (("venue", idx), ("at", at), ("code", cur), ("fail", fail), ("forced", cp)):
            out[k].append(val)
        last_day[idx] = at // DAY
        cpi = idx[cp]
        changed[cpi] = True
        change_at[cpi] = np.minimum(at[cp] + rng.integers(1800, 5400, len(cpi)), end)
        code[cpi] = c1[cpi]
        # Lateness: red visits slip by a day now and then; weekly and monthly ones by a few days.
        nc = code[idx]
        r = rng.random(len(idx))
        late = np.select(
            [nc == 0, nc == 1],
            [
                np.where(r < 0.08, 1, 0),
                np.where(r < 0.15, rng.integers(1, 4, len(idx)), np.where(r > 0.95, -1, 0)),
            ],
            np.where(
                r < 0.17, rng.integers(1, 8, len(idx)), np.where(r > 0.92, -rng.integers(1, 4, len(idx)), 0)
            ),
        )
        day[idx] += INTERVAL[nc] + late
        active[idx] = day[idx] <= end_day
    cat = {k: np.concatenate(v) if v else np.empty(0, dtype=np.int64) for k, v in out.items()}
    cat.update(final_code=code, changed=changed, change_at=change_at, last_day=last_day)
    return cat


def _inspection_frames(ins, cat_idx, inspector, grid_idx, org: Org, end: int, rng):
    venue, at, code, fail = ins["venue"], ins["at"], ins["code"], ins["fail"].astype(bool)
    order = np.lexsort((venue, at))
    venue, at, code, fail = venue[order], at[order], code[order], fail[order]
    m = len(venue)
    ids = np.arange(1, m + 1, dtype=np.int64)

    # Mostly the venue's own inspector; sometimes a colleague covering the same grid.
    who = np.where(rng.random(m) < 0.9, inspector[venue], pick_cover(org, grid_idx[venue], rng))

    cats = cat_idx[venue]
    n_items = np.array([len(CHECK_ITEMS[c]) for c in VENUE_CATEGORIES])[cats]
    item = (rng.random(m) * n_items).astype(int)
    templates = {
        (ci, k): checklist_json(c, k)
        for ci, c in enumerate(VENUE_CATEGORIES)
        for k in [None, *range(len(CHECK_ITEMS[c]))]
    }
    texts = {
        (ci, k): CHECK_ITEMS[c][k][1]
        for ci, c in enumerate(VENUE_CATEGORIES)
        for k in range(len(CHECK_ITEMS[c]))
    }
    checklist = [
        templates[(c, i if f else None)]
        for c, i, f in zip(cats.tolist(), item.tolist(), fail.tolist(), strict=True)
    ]
    fails = np.flatnonzero(fail)
    hazard_text = [texts[(c, i)] for c, i in zip(cats[fails].tolist(), item[fails].tolist(), strict=True)]
    note = np.full(m, None, dtype=object)
    note[fails] = [f"发现隐患：{t}，已责令限期整改" for t in hazard_text]

    inspections = make_frame(
        {
            "id": ids,
            "venue_id": venue + 1,
            "inspector_id": nullable_ints(who, who <= 0),
            "inspected_at": secs_to_dt(at),
            "result": np.where(fail, InspectionResult.FAIL.value, InspectionResult.PASS.value).astype(object),
            "checklist_json": np.asarray(checklist, dtype=object),
            "note": note,
        }
    )

    # Each failed visit opens a hazard with a deadline; most are rectified, some late, some still open.
    k = len(fails)
    found = at[fails] // DAY
    major = rng.random(k) < np.where(code[fails] == 0, 0.35, 0.15)
    deadline = found + np.where(major, 15, 7)
    delay = np.round(rng.lognormal(np.log(np.where(major, 9.0, 4.0)), 0.6)).astype(np.int64)
    stubborn = rng.random(k) < 0.06
    rectified = (~stubborn) & (found + delay <= end // DAY)
    hazards = make_frame(
        {
            "id": np.arange(1, k + 1, dtype=np.int64),
            "venue_id": venue[fails] + 1,
            "inspection_id": ids[fails],
            "severity": np.where(major, HazardSeverity.MAJOR.value, HazardSeverity.GENERAL.value).astype(
                object
            ),
            "description": np.asarray(hazard_text, dtype=object),
            "found_on": days_to_dt(found),
            "deadline": days_to_dt(deadline),
            "status": np.where(rectified, HazardStatus.RECTIFIED.value, HazardStatus.OPEN.value).astype(
                object
            ),
            "rectified_on": days_to_dt(np.where(rectified, found + delay, -1)),
        }
    )
    return inspections, hazards


def pick_cover(org: Org, grid_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random user covering each grid in ``grid_idx`` (-1 where nobody does)."""
    n_cover = np.diff(org.grid_cover_start)[grid_idx]
    if not len(org.grid_cover_users):
        return np.full(len(grid_idx), -1, dtype=np.int64)
    pos = org.grid_cover_start[grid_idx] + (rng.random(len(grid_idx)) * np.maximum(n_cover, 1)).astype(
        np.int64
    )
    return np.where(n_cover > 0, org.grid_cover_users[np.minimum(pos, len(org.grid_cover_users) - 1)], -1)
