"""Departments and users of the demo: handlers, dispatchers, inspectors with their grids, demo accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from argon2 import PasswordHasher
from argon2.low_level import hash_secret

from demo.area import Area
from demo.vocab import COUNTY_DEPARTMENTS, TOWNSHIP_DEPARTMENTS, fake_names, fake_phones
from domain.vocabulary import Role

DEMO_PASSWORD = "demo-cockpit"


def demo_password_hash(seed: int) -> str:
    """The argon2id hash of the demo password with PasswordHasher's parameters and a seeded salt.

    A fixed salt keeps seeding deterministic (PasswordHasher draws a random one); the hash still
    verifies with ``PasswordHasher().verify`` and needs no rehash.
    """
    ph = PasswordHasher()
    salt = np.random.default_rng([seed, 99]).bytes(16)
    return hash_secret(
        DEMO_PASSWORD.encode(),
        salt,
        time_cost=ph.time_cost,
        memory_cost=ph.memory_cost,
        parallelism=ph.parallelism,
        hash_len=ph.hash_len,
        type=ph.type,
    ).decode()


@dataclass
class Org:
    """Departments and users as frames, plus the lookups the event and venue generators need."""

    departments: pd.DataFrame
    users: pd.DataFrame
    inspector_grids: pd.DataFrame
    dept_by_unit_kind: dict[tuple[int, str], int]  # (unit id, kind) → department id
    dept_handler: np.ndarray  # department id → the user id of its handler (index 0 unused)
    dept_name: np.ndarray  # department id → name (object array, index 0 unused)
    dispatcher_by_unit: dict[int, int]  # township/county unit id → its command-centre user id
    grid_primary: np.ndarray  # grid index → user id of its grid worker (-1 if nobody covers it)
    grid_cover_start: np.ndarray  # grid index → start in ``grid_cover_users``
    grid_cover_users: np.ndarray  # user ids covering each grid, grouped by grid index
    user_name: dict[int, str]
    user_phone: dict[int, str]
    demo_users: dict[str, int]  # demo account → user id


def build_org(area: Area, inspectors: int, seed: int, created_at: datetime, rng: np.random.Generator) -> Org:
    """All departments of the city, their handlers, dispatchers, the inspectors of the data area."""
    dept_rows: list[dict] = []
    for code, c in area.counties.iterrows():
        short = "公安分局" if str(c["kind"]) == "区" else "公安局"
        for kind, slug, suffix in COUNTY_DEPARTMENTS:
            name = f"{c['name']}{short if kind == '公安' else suffix}"
            dept_rows.append({"code": f"{code}-{slug}", "name": name, "kind": kind, "unit_id": int(c["id"])})
    for code, t in area.townships.iterrows():
        for kind, slug, suffix in TOWNSHIP_DEPARTMENTS:
            dept_rows.append(
                {
                    "code": f"{code}-{slug}",
                    "name": f"{t['name']}{suffix}",
                    "kind": kind,
                    "unit_id": int(t["id"]),
                }
            )
    departments = pd.DataFrame(dept_rows)
    departments.insert(0, "id", np.arange(1, len(departments) + 1, dtype=np.int64))

    demo_t = area.townships.loc[area.demo_township]
    demo_county = area.units.loc[demo_t["county_code"]]
    city_id = area.unit_id(area.city_code)
    pw = demo_password_hash(seed)
    users: list[dict] = []

    def add(username, display, role, scope, dept=None, phone=None, password=None, home=(None, None)) -> int:
        uid = len(users) + 1
        users.append(
            {
                "id": uid,
                "username": username,
                "display_name": display,
                "phone": phone,
                "password_hash": password,
                "role": role.value,
                "scope_unit_id": scope,
                "department_id": dept,
                "home_lon": home[0],
                "home_lat": home[1],
            }
        )
        return uid

    demo_users = {
        "demo_admin": add("demo_admin", "系统管理员（演示）", Role.ADMIN, city_id, password=pw),
        "demo_city": add(
            "demo_city",
            f"{area.units.at[area.city_code, 'name']}指挥中心（演示）",
            Role.COMMAND_CENTER,
            city_id,
            password=pw,
        ),
        "demo_county": add(
            "demo_county",
            f"{demo_county['name']}指挥中心（演示）",
            Role.COMMAND_CENTER,
            int(demo_county["id"]),
            password=pw,
        ),
        "demo_township": add(
            "demo_township",
            f"{demo_t['name']}领导（演示）",
            Role.TOWNSHIP_LEADER,
            int(demo_t["id"]),
            password=pw,
        ),
    }

    # One command-centre operator per township and county with data: they accept and dispatch.
    dispatcher_by_unit: dict[int, int] = {}
    data_counties = sorted({str(area.townships.at[t, "county_code"]) for t in area.data_townships})
    for code in [*data_counties, *area.data_townships]:
        unit = area.units.loc[code]
        dispatcher_by_unit[int(unit["id"])] = add(
            f"zx_{code}",
            f"{unit['name']}指挥中心受理员",
            Role.COMMAND_CENTER,
            int(unit["id"]),
            phone=str(fake_phones(rng, 1)[0]),
        )

    # One handler per department; the demo county's 城管 handler is the demo department account, the demo
    # township's 综合行政执法队 handler the demo township department account (乡镇部门).
    names = fake_names(rng, len(departments))
    phones = fake_phones(rng, len(departments))
    dept_handler = np.zeros(len(departments) + 1, dtype=np.int64)
    demo_dept_accounts = {
        f"{demo_county['code']}-cg": "demo_department",
        f"{area.demo_township}-cg": "demo_township_department",
    }
    for i, d in enumerate(departments.itertuples(index=False)):
        account = demo_dept_accounts.get(d.code)
        demo = account is not None
        username = account or f"bm_{d.code}"
        dept_handler[d.id] = add(
            username,
            str(names[i]),
            Role.DEPARTMENT,
            d.unit_id,
            dept=d.id,
            phone=str(phones[i]),
            password=pw if demo else None,
        )
        if account is not None:
            demo_users[account] = int(dept_handler[d.id])

    grids = area.grids
    n_grids = len(grids)
    grid_primary = np.full(n_grids, -1, dtype=np.int64)
    cover: list[list[int]] = [[] for _ in range(n_grids)]
    ig_rows: list[tuple[int, int]] = []
    # Inspectors per township in proportion to its grids (at least one each).
    per_t = grids.groupby("township_code", sort=True).size()
    counts = np.maximum(1, np.floor(per_t.to_numpy() / per_t.sum() * inspectors)).astype(int)
    counts[np.argsort(-per_t.to_numpy(), kind="stable")[: max(0, inspectors - counts.sum())]] += 1
    grid_idx_by_t = grids.groupby("township_code", sort=True).indices
    for t_code, n_ins in zip(per_t.index, counts, strict=True):
        idx = np.sort(grid_idx_by_t[t_code])  # grids of the township in code order
        g = len(idx)
        blocks: list[np.ndarray] = []
        if n_ins >= g:
            # A grid worker per grid (网格员); the rest are inspectors over contiguous blocks of grids.
            blocks = [idx[i : i + 1] for i in range(g)]
            extra = n_ins - g
            if extra:
                size = -(-g // extra)
                blocks += [
                    idx[i * size : (i + 1) * size]
                    for i in range(extra)
                    if len(idx[i * size : (i + 1) * size])
                ]
        else:
            bounds = np.floor(np.arange(n_ins + 1) * g / n_ins).astype(int)
            blocks = [idx[bounds[j] : bounds[j + 1]] for j in range(n_ins)]
        names = fake_names(rng, len(blocks))
        phones = fake_phones(rng, len(blocks))
        for j, block in enumerate(blocks):
            first = int(block[0])
            villages = grids["village_id"].to_numpy()[block]
            scope = (
                int(villages[0]) if (villages == villages[0]).all() else int(grids.at[first, "township_id"])
            )
            k = int(rng.integers(0, area.pool_lon.shape[1]))
            demo = t_code == area.demo_township and j == 0
            uid = add(
                "demo_inspector" if demo else f"wg_{t_code}_{j + 1:03d}",
                str(names[j]),
                Role.INSPECTOR,
                scope,
                phone=str(phones[j]),
                password=pw if demo else None,
                home=(float(area.pool_lon[first, k]), float(area.pool_lat[first, k])),
            )
            if demo:
                demo_users["demo_inspector"] = uid
            for gi in block:
                ig_rows.append((uid, int(grids.at[int(gi), "id"])))
                cover[int(gi)].append(uid)
                if grid_primary[gi] < 0:
                    grid_primary[gi] = uid

    users_df = pd.DataFrame(users)
    users_df["department_id"] = users_df["department_id"].astype("Int64")
    users_df["is_active"] = True
    users_df["failed_logins"] = 0
    users_df["locked_until"] = pd.Series([pd.NaT] * len(users_df), dtype="datetime64[s]")
    users_df["created_at"] = pd.Timestamp(created_at).as_unit("s")
    lengths = np.array([len(c) for c in cover], dtype=np.int64)
    return Org(
        departments=departments,
        users=users_df,
        inspector_grids=pd.DataFrame(ig_rows, columns=["user_id", "grid_id"]).astype("int64"),
        dept_by_unit_kind={
            (int(u), str(k)): int(i)
            for i, u, k in departments[["id", "unit_id", "kind"]].itertuples(index=False)
        },
        dept_handler=dept_handler,
        dept_name=np.concatenate([[None], departments["name"].to_numpy(dtype=object)]),
        dispatcher_by_unit=dispatcher_by_unit,
        grid_primary=grid_primary,
        grid_cover_start=np.concatenate([[0], np.cumsum(lengths)]),
        grid_cover_users=np.array([u for c in cover for u in c], dtype=np.int64),
        user_name=dict(zip(users_df["id"], users_df["display_name"], strict=True)),
        user_phone=dict(zip(users_df["id"], users_df["phone"], strict=True)),
        demo_users=demo_users,
    )
