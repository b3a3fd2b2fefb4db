"""Injected patterns the early warning must find (突发, 群发, 新苗头, 顽疾, 高发), with their manifest entries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from demo.area import sample_near
from demo.columns import DAY, HOUR, from_secs
from demo.events import (
    P_DAY,
    P_EVENING,
    PROFILE_CUM,
    SRC,
    SUBTYPES,
    EventModel,
    draw,
    expected_rate,
)
from demo.vocab import SUBTYPE_INDEX, fake_names, fake_phones
from domain.vocabulary import EventCategory, EventSource, Urgency, VenueCategory

NOVEL_CATEGORY = EventCategory.NATURAL_HAZARD
NOVEL_TITLE = "路面沉降塌陷"  # a new road works corridor starts to sink: nothing like it before
SPIKE_TITLE = "异味扰民"
MASS_TITLE = "劳资纠纷"
MASS_REPORTERS = 28
CHRONIC_TITLES = ["餐饮油烟扰民", "噪声扰民", "出店经营", "占道经营", "垃圾满溢", "违章停车", "群租隐患"]
EVENING_TITLES = {"餐饮油烟扰民", "噪声扰民"}
URGENCY_INDEX = {u: i for i, u in enumerate(Urgency)}

COLUMNS = [
    "t",
    "grid",
    "sub",
    "source",
    "lon",
    "lat",
    "address",
    "venue_row",
    "reporter_name",
    "reporter_phone",
    "urgency",
    "reporter_count",
    "dup_of",
    "description",
    "key",
]


def _times(rng, days: np.ndarray, profile: int) -> np.ndarray:
    hour = draw(PROFILE_CUM[profile], rng.random(len(days)))
    return days * DAY + hour * HOUR + rng.integers(0, HOUR, len(days))


def _sources(rng, n: int, mix: dict[EventSource, float]) -> np.ndarray:
    keys = list(mix)
    cum = np.cumsum([mix[k] for k in keys]) / sum(mix.values())
    return np.array([SRC[keys[i]] for i in draw(cum, rng.random(n))], dtype=np.int64)


def _iso(s: int) -> str:
    return from_secs(int(s)).isoformat(sep=" ")


class Specials:
    """Collects injected events as blocks; ``frame()`` gives them one table with special ids."""

    def __init__(self) -> None:
        self.blocks: list[pd.DataFrame] = []
        self.manifest: list[dict] = []

    def add(self, **cols) -> np.ndarray:
        n = len(cols["t"])
        frame = pd.DataFrame(
            {
                "t": np.asarray(cols["t"], dtype=np.int64),
                "grid": np.broadcast_to(np.asarray(cols["grid"], dtype=np.int64), (n,)),
                "sub": np.broadcast_to(np.asarray(cols["sub"], dtype=np.int64), (n,)),
                "source": np.asarray(cols["source"], dtype=np.int64),
                "lon": np.broadcast_to(np.asarray(cols.get("lon", np.nan), dtype=float), (n,)),
                "lat": np.broadcast_to(np.asarray(cols.get("lat", np.nan), dtype=float), (n,)),
                "address": _objs(cols.get("address"), n),
                "venue_row": np.broadcast_to(np.asarray(cols.get("venue_row", -1), dtype=np.int64), (n,)),
                "reporter_name": _objs(cols.get("reporter_name"), n),
                "reporter_phone": _objs(cols.get("reporter_phone"), n),
                "urgency": np.broadcast_to(np.asarray(cols.get("urgency", -1), dtype=np.int64), (n,)),
                "reporter_count": np.broadcast_to(
                    np.asarray(cols.get("reporter_count", 1), dtype=np.int64), (n,)
                ),
                "dup_of": np.broadcast_to(np.asarray(cols.get("dup_of", -1), dtype=np.int64), (n,)),
                "description": _objs(cols.get("description"), n),
                "key": _objs(cols.get("key"), n),
            }
        )
        start = sum(len(b) for b in self.blocks)
        frame["special_id"] = np.arange(start, start + n, dtype=np.int64)
        self.blocks.append(frame)
        return frame["special_id"].to_numpy()

    def frame(self) -> pd.DataFrame:
        if not self.blocks:
            return pd.DataFrame(columns=[*COLUMNS, "special_id"])
        return pd.concat(self.blocks, ignore_index=True)


def _objs(v, n: int) -> np.ndarray:
    if v is None or isinstance(v, str):
        return np.full(n, v, dtype=object)
    return np.asarray(v, dtype=object)


def build_specials(
    model: EventModel, venues: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, list]:
    """All injected events over the period and the manifest entries that describe them."""
    area = model.area
    grids = area.grids
    sp = Specials()
    end, start = model.end, model.start
    end_day = end // DAY
    start_day = start // DAY + 1
    days_all = np.arange(start_day, end_day + 1)
    demo = np.flatnonzero(grids["township_code"].to_numpy() == area.demo_township)
    grid_codes = grids["code"].to_numpy()
    order_by_id = np.argsort(grids["id"].to_numpy())
    v_grid = order_by_id[np.searchsorted(grids["id"].to_numpy()[order_by_id], venues["grid_id"].to_numpy())]

    def unit_info(g: int) -> dict:
        row = grids.iloc[g]
        return {
            "township_code": row["township_code"],
            "village_code": row["village_code"],
            "grid_code": row["code"],
            "county_code": row["county_code"],
        }

    def entry(kind, kind_en, level, codes, category, title, t0, t1, count, **extra) -> dict:
        e = {
            "kind": kind,
            "kind_en": kind_en,
            "unit_level": level,
            "unit_codes": list(codes),
            "category": category.value,
            "category_label": category.label,
            "title": title,
            "start": _iso(t0),
            "end": _iso(t1),
            "expected_extra": int(count),
        }
        e.update(extra)
        sp.manifest.append(e)
        return e

    # 高发: one village of the demo town runs at three times its urban-management rate all year.
    village_w = pd.Series(model.grid_p[demo]).groupby(grids["village_code"].to_numpy()[demo]).sum()
    hot_village = str(village_w.sort_values(ascending=False, kind="stable").index[0])
    hv = demo[grids["village_code"].to_numpy()[demo] == hot_village]
    base = expected_rate(model, hv, EventCategory.URBAN)
    n = int(rng.poisson(2.0 * base * len(days_all)))
    g = hv[draw(np.cumsum(model.grid_p[hv]) / model.grid_p[hv].sum(), rng.random(n))]
    k = rng.integers(0, area.pool_lon.shape[1], n)
    t = _times(rng, rng.choice(days_all, n), P_DAY)
    keep = (t > start) & (t <= end)
    g, k, t = g[keep], k[keep], t[keep]
    sp.add(
        t=t,
        grid=g,
        sub=np.where(rng.random(len(t)) < 0.5, SUBTYPE_INDEX["出店经营"], SUBTYPE_INDEX["占道经营"]),
        source=_sources(
            rng,
            len(t),
            {
                EventSource.CITIZEN: 4,
                EventSource.VIDEO_AI: 3,
                EventSource.DIGITAL_CITY: 1.5,
                EventSource.GRID_WORKER: 1.5,
            },
        ),
        lon=area.pool_lon[g, k],
        lat=area.pool_lat[g, k],
        address=area.pool_address[g, k],
    )
    entry(
        "高发",
        "high_frequency",
        "village",
        [hot_village],
        EventCategory.URBAN,
        "出店经营/占道经营",
        start,
        end,
        len(t),
        baseline_per_day=round(base, 3),
        factor=3.0,
        township_code=area.demo_township,
    )

    # 突发: a chemical smell in one grid: a burst of reports over two days.
    outside = demo[grids["village_code"].to_numpy()[demo] != hot_village]
    cand = outside if len(outside) else demo
    sg = int(
        cand[np.argsort(-model.grid_p[cand], kind="stable")[: min(10, len(cand))]][
            rng.integers(0, min(10, len(cand)))
        ]
    )
    base = expected_rate(model, np.array([sg]), EventCategory.ENVIRONMENT)
    t0 = (end_day - 18) * DAY + 7 * HOUR
    n = max(20, round(8 * base * 2))
    t = np.sort(t0 + (rng.random(n) ** 1.5 * 2 * DAY).astype(np.int64))  # front-loaded, fading
    c = int(rng.integers(0, area.pool_lon.shape[1]))
    clon, clat = float(area.pool_lon[sg, c]), float(area.pool_lat[sg, c])
    lon, lat = sample_near(area.polygons[sg], clon, clat, 300, n, rng)
    sp.add(
        t=t,
        grid=sg,
        sub=SUBTYPE_INDEX[SPIKE_TITLE],
        lon=lon,
        lat=lat,
        address=area.pool_address[sg, c],
        source=_sources(
            rng, n, {EventSource.CITIZEN: 55, EventSource.HOTLINE_12345: 35, EventSource.GRID_WORKER: 10}
        ),
        description=f"{area.pool_address[sg, c]}附近有刺鼻化学异味，多名居民反映身体不适",
    )
    info = unit_info(sg)
    entry(
        "突发",
        "spike",
        "grid",
        [info["grid_code"], info["village_code"], info["township_code"]],
        EventCategory.ENVIRONMENT,
        SPIKE_TITLE,
        t0,
        t0 + 2 * DAY,
        n,
        baseline_per_day=round(base, 3),
        lon=clon,
        lat=clat,
        radius_m=300,
    )

    # 群发: unpaid wages at a construction site: 28 workers report within hours, merged into one event.
    dv = np.flatnonzero(np.isin(v_grid, demo))
    sites = dv[venues["category"].to_numpy()[dv] == VenueCategory.CONSTRUCTION_SITE.value]
    pool = sites if len(sites) else dv
    t0 = (end_day - 9) * DAY + 9 * HOUR + 40 * 60
    n = MASS_REPORTERS
    t = t0 + np.concatenate([[0], np.sort(rng.integers(60, 150 * 60, n - 1))])
    if len(pool):
        vr = int(pool[rng.integers(0, len(pool))])
        mg = int(v_grid[vr])
        clon, clat = float(venues["lon"].iat[vr]), float(venues["lat"].iat[vr])
        vname, vaddr = str(venues["name"].iat[vr]), str(venues["address"].iat[vr])
    else:
        vr, mg = -1, int(demo[0])
        clon, clat = float(area.pool_lon[mg, 0]), float(area.pool_lat[mg, 0])
        vname, vaddr = "某建设项目工地", str(area.pool_address[mg, 0])
    lon, lat = sample_near(area.polygons[mg], clon, clat, 30, n, rng)
    lon[0], lat[0] = clon, clat
    source = _sources(rng, n, {EventSource.CITIZEN: 6, EventSource.HOTLINE_12345: 4})
    names, phones = fake_names(rng, n), fake_phones(rng, n)
    urgent = URGENCY_INDEX[Urgency.URGENT]
    main = sp.add(
        t=t[:1],
        grid=mg,
        sub=SUBTYPE_INDEX[MASS_TITLE],
        source=source[:1],
        lon=lon[:1],
        lat=lat[:1],
        address=vaddr,
        venue_row=vr,
        reporter_name=names[:1],
        reporter_phone=phones[:1],
        urgency=urgent,
        reporter_count=n,
        key="mass_main",
        description=f"{vname}拖欠农民工工资，{n}名工人集体反映，情绪激动，请求尽快协调",
    )
    sp.add(
        t=t[1:],
        grid=mg,
        sub=SUBTYPE_INDEX[MASS_TITLE],
        source=source[1:],
        lon=lon[1:],
        lat=lat[1:],
        address=vaddr,
        venue_row=vr,
        reporter_name=names[1:],
        reporter_phone=phones[1:],
        urgency=urgent,
        dup_of=int(main[0]),
        description=f"{vname}拖欠工资，我是该工地工人，要求结清工资",
    )
    info = unit_info(mg)
    entry(
        "群发",
        "mass",
        "grid",
        [info["grid_code"], info["village_code"], info["township_code"]],
        EventCategory.DISPUTE,
        MASS_TITLE,
        int(t[0]),
        int(t[-1]),
        n,
        lon=clon,
        lat=clat,
        radius_m=30,
        reporter_count=n,
        merged_reports=n - 1,
        venue=vname,
    )

    # 新苗头: road subsidence along a works corridor, never seen in the town, growing for two weeks.
    vil = pd.Series(demo).groupby(grids["village_code"].to_numpy()[demo]).apply(lambda x: x.to_numpy())
    big = [v for v in sorted(vil.index) if len(vil[v]) >= 3 and v != hot_village] or sorted(vil.index)
    nv = big[int(rng.integers(0, len(big)))]
    ng = np.sort(vil[nv])[:4]
    day0 = end_day - 21
    ks = np.arange(0, end_day - day0 + 1)
    counts = rng.poisson(1 + 5 * np.minimum(ks, 14) / 14)
    counts[0] = max(counts[0], 1)
    days = np.repeat(day0 + ks, counts)
    t = np.sort(_times(rng, days, P_DAY))
    t = t[t <= end]
    n = len(t)
    g = ng[rng.integers(0, len(ng), n)]
    k = rng.integers(0, area.pool_lon.shape[1], n)
    sp.add(
        t=t,
        grid=g,
        sub=SUBTYPE_INDEX[NOVEL_TITLE],
        lon=area.pool_lon[g, k],
        lat=area.pool_lat[g, k],
        address=area.pool_address[g, k],
        source=_sources(
            rng, n, {EventSource.CITIZEN: 5, EventSource.GRID_WORKER: 3, EventSource.HOTLINE_12345: 2}
        ),
        urgency=np.where(rng.random(n) < 0.4, urgent, URGENCY_INDEX[Urgency.NORMAL]),
    )
    entry(
        "新苗头",
        "emerging",
        "township",
        [area.demo_township, nv],
        NOVEL_CATEGORY,
        NOVEL_TITLE,
        int(t[0]),
        end,
        n,
        grid_codes=[str(grid_codes[x]) for x in ng],
        growth_days=14,
    )

    # 顽疾: fixed addresses that complain again and again (three in the demo town, one elsewhere).
    for t_code in area.data_townships:
        tg = np.flatnonzero(grids["township_code"].to_numpy() == t_code)
        for _ in range(3 if t_code == area.demo_township else 1):
            cg = int(tg[draw(np.cumsum(model.grid_p[tg]) / model.grid_p[tg].sum(), rng.random(1))[0]])
            title = CHRONIC_TITLES[int(rng.integers(0, len(CHRONIC_TITLES)))]
            sub = SUBTYPE_INDEX[title]
            gv = np.flatnonzero(v_grid == cg)
            if SUBTYPES[sub].venue and len(gv):
                vr = int(gv[rng.integers(0, len(gv))])
                clon, clat = float(venues["lon"].iat[vr]), float(venues["lat"].iat[vr])
                addr = str(venues["address"].iat[vr])
            else:
                vr, c = -1, int(rng.integers(0, area.pool_lon.shape[1]))
                clon, clat, addr = (
                    float(area.pool_lon[cg, c]),
                    float(area.pool_lat[cg, c]),
                    str(area.pool_address[cg, c]),
                )
            per_week = float(rng.uniform(2, 4))
            n = int(rng.poisson(per_week / 7 * len(days_all)))
            t = np.sort(_times(rng, rng.choice(days_all, n), P_EVENING if title in EVENING_TITLES else P_DAY))
            t = t[(t > start) & (t <= end)]
            n = len(t)
            if not n:
                continue
            same = rng.random() < 0.6  # often the same neighbour, again and again
            name, phone = fake_names(rng, 1)[0], fake_phones(rng, 1)[0]
            sp.add(
                t=t,
                grid=cg,
                sub=sub,
                lon=clon,
                lat=clat,
                address=addr,
                venue_row=vr,
                source=_sources(rng, n, {EventSource.CITIZEN: 6, EventSource.HOTLINE_12345: 4}),
                reporter_name=name if same else None,
                reporter_phone=phone if same else None,
            )
            info = unit_info(cg)
            entry(
                "顽疾",
                "chronic",
                "grid",
                [info["grid_code"], info["village_code"], info["township_code"]],
                SUBTYPES[sub].category,
                title,
                int(t[0]),
                int(t[-1]),
                n,
                lon=clon,
                lat=clat,
                radius_m=0,
                per_week=round(per_week, 2),
            )
    return sp.frame(), sp.manifest
