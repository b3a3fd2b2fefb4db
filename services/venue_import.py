"""Venue import (场所批量导入) from CSV or XLSX: read, check every row, store all or nothing.

The template is documented in ``docs/venue-import.md``. The file is read by the one reader of every
import (:func:`services.tabular.read_sheet`): CSV in UTF-8 (with or without a BOM) or GBK/GB18030, as
Excel on a Chinese Windows saves them, or XLSX. Every bad row is reported as a
:class:`services.tabular.RowError`: its row number as the file shows it (the header is row 1; blank
lines and lines inside quoted cells count), the field and the reason; a row whose cells do not match
the header is one too. When any row is bad nothing is written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, func, insert, select, tuple_

from db.models import AdminUnit, InspectorGrid, SafetyCodeChange, User, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser, tidy_phone
from domain.hierarchy import unit_code
from domain.intake import looks_swapped
from domain.vocabulary import AdminLevel, SafetyCode, VenueCategory
from geo.crs import POINTS_GCJ02, POINTS_WGS84, gcj02_to_wgs84
from services import audit, settings
from services.access import deny
from services.geography import ExamplePlace
from services.geography import tree as store_tree
from services.locate import SWAPPED_HINT, locate_grids, swapped_inside
from services.tabular import RowError, Sheet, TableError, cell_number, listed, read_sheet, to_csv

# Column headers in template order; the second part says whether a value is required.
COLUMNS: list[tuple[str, bool]] = [
    ("名称", True),
    ("类别", True),
    ("地址", True),
    ("纬度", True),
    ("经度", True),
    ("网格编码", False),
    ("负责人", True),
    ("联系电话", False),
]
OPTIONAL_COLUMNS = ["平安码"]  # 红码/黄码/绿码 (or 红/黄/绿); green when absent or empty
REQUIRED_HEADERS = [name for name, _ in COLUMNS if name != "网格编码"]
MAX_ROWS = 20_000
MAX_BYTES = 20 * 1024 * 1024
LIMITS = {"名称": 200, "地址": 300, "负责人": 64, "联系电话": 20, "网格编码": 32}
PHONE = re.compile(r"^[0-9][0-9\-]{6,19}$")

CATEGORY_BY_LABEL = {c.label: c for c in VenueCategory}
CODE_BY_TEXT = {**{c.label: c for c in SafetyCode}, **{c.label[0]: c for c in SafetyCode}}


class ImportRejected(ValueError):
    """The file cannot be imported (nothing was written); ``problems`` lists the bad rows in row order,
    at most :data:`services.tabular.MAX_LISTED` and then a line with the total; ``total`` counts them all."""

    def __init__(self, problems: Sequence[RowError]):
        self.total = len(problems)
        self.problems = listed(problems)
        super().__init__(f"导入失败：共 {self.total} 处问题，未导入任何场所")


def _file_problem(reason: str, row: int = 0, field: str = "文件") -> ImportRejected:
    return ImportRejected([RowError(row, field, reason)])


@dataclass(frozen=True)
class NewVenue:
    row: int
    name: str
    category: VenueCategory
    address: str
    lat: float
    lon: float
    grid_id: int
    responsible_person: str
    responsible_phone: str | None
    code: SafetyCode


@dataclass(frozen=True)
class ImportResult:
    created: int
    venue_ids: tuple[int, ...]
    #: What the reader decided (the worksheet read, a tab separator) and the columns not imported.
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _read(data: bytes, filename: str) -> Sheet:
    """The file through the one reader (:func:`services.tabular.read_sheet`); a file that cannot be read
    at all is :class:`ImportRejected` (its header problems one by one)."""
    try:
        sheet = read_sheet(data, filename, REQUIRED_HEADERS, max_bytes=MAX_BYTES, max_rows=MAX_ROWS)
    except TableError as exc:
        raise ImportRejected(exc.problems or [RowError(0, "文件", str(exc))]) from exc
    if not sheet.rows and not sheet.problems:
        raise _file_problem("文件中没有场所数据", sheet.header_row + 1, "数据")
    return sheet


#: The coordinate systems a venue file may be in (:func:`check_rows`), with the words the page shows.
COORDINATE_SYSTEMS = {POINTS_WGS84: "WGS84（GPS、天地图、北斗）", POINTS_GCJ02: "GCJ-02（高德、腾讯地图）"}


def read_rows(data: bytes, filename: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-empty rows (row number in the file, header → text) of a CSV or XLSX file;
    :class:`ImportRejected` for a file or a row that cannot be read as the header says."""
    sheet = _read(data, filename)
    if sheet.problems:
        raise ImportRejected(sheet.problems)
    return sheet.header, sheet.rows


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def check_rows(
    conn: Connection,
    rows: Sequence[tuple[int, dict[str, str]]],
    *,
    user: CurrentUser | None = None,
    crs: str = POINTS_WGS84,
) -> tuple[list[NewVenue], list[RowError]]:
    """Every row checked: the venues to create, and every problem (row, field, reason) in row order.

    Each row's fields (:func:`_row_fields`), then where the rows lie (:func:`_placed`: the grid of the
    position, the given grid code, the user's scope), then duplicates (:func:`_duplicates`).
    ``crs``: the file's coordinates, ``geo.crs.POINTS_WGS84`` (GPS, 天地图) or ``POINTS_GCJ02`` (高德, 腾讯: converted
    to WGS84 once here, as the boundary import and the Open311 API do; stored as WGS84).
    """
    if crs not in COORDINATE_SYSTEMS:
        raise ValueError(f"坐标系只能是 {' 或 '.join(COORDINATE_SYSTEMS.values())}")
    parsed, problems = [], []
    for n, r in rows:
        row, found = _row_fields(n, r)
        parsed.append(row)
        problems += found
    if crs == POINTS_GCJ02:
        located = [x for x in parsed if x["lat"] is not None and x["lon"] is not None]
        if located:
            lons, lats = gcj02_to_wgs84([x["lon"] for x in located], [x["lat"] for x in located])
            for x, lon, lat in zip(located, lons.tolist(), lats.tolist(), strict=True):
                x["lon"], x["lat"] = round(lon, 7), round(lat, 7)
    problems += _placed(conn, parsed, user)
    problems += _duplicates(conn, parsed)
    order = [c for c, _ in COLUMNS]
    problems.sort(key=lambda p: (p.row, order.index(p.field) if p.field in order else 99))
    bad_rows = {p.row for p in problems}
    venues = [
        NewVenue(
            x["row"],
            x["r"]["名称"],
            x["category"],
            x["r"]["地址"],
            x["lat"],
            x["lon"],
            x["grid_id"],
            x["r"]["负责人"],
            x["r"].get("联系电话") or None,
            x["code"],
        )
        for x in parsed
        if x["row"] not in bad_rows
    ]
    return venues, problems


def _row_fields(n: int, r: dict[str, str]) -> tuple[dict, list[RowError]]:
    """One row's own fields: required, lengths, category, position, phone, 平安码; the parsed row."""
    p: list[RowError] = []
    for name, required in COLUMNS:
        value = r.get(name, "")
        if required and not value:
            p.append(RowError(n, name, "不能为空"))
        elif name in LIMITS and len(value) > LIMITS[name]:
            p.append(RowError(n, name, f"不能超过 {LIMITS[name]} 字"))
    category = CATEGORY_BY_LABEL.get(r.get("类别", ""))
    if r.get("类别") and category is None:
        p.append(RowError(n, "类别", f"“{r['类别']}”不是八类场所之一（{'、'.join(CATEGORY_BY_LABEL)}）"))
    lat, lon = cell_number(r.get("纬度", "")), cell_number(r.get("经度", ""))
    if r.get("纬度") and (lat is None or not -90 <= lat <= 90):
        swapped = lat is not None and lon is not None and looks_swapped(lon, lat)
        p.append(
            RowError(
                n, "纬度", f"“{r['纬度']}”不是有效的纬度" + ("：纬度和经度可能填反了" if swapped else "")
            )
        )
        lat = None
    if r.get("经度") and (lon is None or not -180 <= lon <= 180):
        p.append(RowError(n, "经度", f"“{r['经度']}”不是有效的经度"))
        lon = None
    phone = r.get("联系电话", "")
    tidy, ok = tidy_phone(phone)  # the event import's reading: spaces, +86, full-width digits
    if phone and ok and tidy:
        r["联系电话"] = phone = tidy
    if phone and len(phone) <= LIMITS["联系电话"] and not PHONE.match(phone):
        p.append(RowError(n, "联系电话", "应为手机号（11 位，可带 +86 和空格）或固定电话（如 0570-3021234）"))
    code_text = r.get("平安码", "")
    code = CODE_BY_TEXT.get(code_text, SafetyCode.GREEN) if code_text else SafetyCode.GREEN
    if code_text and code_text not in CODE_BY_TEXT:
        p.append(RowError(n, "平安码", "只能是红码、黄码或绿码（可不填，默认绿码）"))
    row = {"row": n, "r": r, "category": category, "lat": lat, "lon": lon, "code": code, "grid_id": None}
    return row, p


def _placed(conn: Connection, parsed: list[dict], user: CurrentUser | None) -> list[RowError]:
    """Sets each located row's ``grid_id`` (one vectorised lookup); the problems of where rows lie: outside
    every grid, a given grid code unknown or not the position's, outside the user's scope (logged)."""
    problems: list[RowError] = []
    located = [x for x in parsed if x["lat"] is not None and x["lon"] is not None]
    grids = locate_grids(conn, [x["lon"] for x in located], [x["lat"] for x in located]) if located else ()
    for x, g in zip(located, grids, strict=True):
        x["grid_id"] = None if g is None else int(g)
    grid_ids: set[int] = {x["grid_id"] for x in located if x["grid_id"] is not None}
    codes = (
        dict(conn.execute(select(AdminUnit.id, AdminUnit.code).where(AdminUnit.id.in_(grid_ids))).all())
        if grid_ids
        else {}
    )
    for x in parsed:  # a grid code as typed with an input method's full-width digits, or a space inside
        if x["r"].get("网格编码"):
            x["r"]["网格编码"] = unit_code(x["r"]["网格编码"])
    given_codes = {x["r"].get("网格编码") for x in parsed if x["r"].get("网格编码")}
    known = (
        set(
            conn.execute(
                select(AdminUnit.code).where(
                    AdminUnit.code.in_(given_codes), AdminUnit.level == AdminLevel.GRID
                )
            ).scalars()
        )
        if given_codes
        else set()
    )
    in_scope = _scope_check(conn, user, grid_ids)
    lost = [x for x in located if x["grid_id"] is None]
    swapped = dict(
        zip(
            (x["row"] for x in lost),
            swapped_inside(conn, [x["lon"] for x in lost], [x["lat"] for x in lost]),
            strict=True,
        )
    )
    for x in parsed:
        given = x["r"].get("网格编码")
        if given and given not in known:
            problems.append(RowError(x["row"], "网格编码", f"网格编码“{given}”不存在"))
    for x in located:
        n, g = x["row"], x["grid_id"]
        if g is None:
            hint = f"：{SWAPPED_HINT}" if swapped.get(n) else ""
            problems.append(RowError(n, "经纬度", f"位置（{x['lon']}, {x['lat']}）不在任何网格内{hint}"))
            continue
        given = x["r"].get("网格编码")
        if given and given in known and given != codes.get(g):
            problems.append(RowError(n, "网格编码", f"与经纬度所在网格（{codes.get(g)}）不一致"))
        if not in_scope.get(g, True):
            x["outside"] = True  # nothing more is said of it (not even whether the store has it)
            problems.append(RowError(n, "经纬度", "位置不在您的管辖范围内"))
            deny(user, "import venue outside scope", n)
    return problems


def _duplicates(conn: Connection, parsed: list[dict]) -> list[RowError]:
    """The same name at the same address: twice in the file, or already in the store."""
    problems: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    for x in parsed:
        key = (x["r"].get("名称", ""), x["r"].get("地址", ""))
        if not all(key):
            continue
        if key in seen:
            problems.append(RowError(x["row"], "名称", f"与第 {seen[key]} 行重复（名称和地址相同）"))
        else:
            seen[key] = x["row"]
    keys = list(seen)
    existing: set[tuple[str, str]] = set()
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        existing |= {
            (k[0], k[1])
            for k in conn.execute(
                select(Venue.name, Venue.address).where(tuple_(Venue.name, Venue.address).in_(chunk))
            ).all()
        }
    outside = {x["row"] for x in parsed if x.get("outside")}  # another area's venues are not its to know
    problems += [
        RowError(n, "名称", "系统中已有同名同地址的场所")
        for key, n in seen.items()
        if key in existing and n not in outside
    ]
    return problems


def _scope_check(conn: Connection, user: CurrentUser | None, grid_ids: Iterable[int]) -> dict[int, bool]:
    """Whether each grid lies in the user's scope (nothing to check for a trusted caller)."""
    if user is None or not grid_ids:
        return {}
    tree = store_tree(conn)
    return {g: tree.contains(user.scope_unit_id, g) for g in grid_ids}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def may_import(user: CurrentUser) -> bool:
    return user.may("import_venues")


def import_venues(
    uow: UnitOfWork,
    *,
    data: bytes,
    filename: str,
    now: datetime,
    user: CurrentUser | None = None,
    crs: str = POINTS_WGS84,
) -> ImportResult:
    """Check the whole file and create every venue, or raise :class:`ImportRejected` writing nothing.

    New venues get the code from the optional 平安码 column (green by default), a first
    ``safety_code_changes`` row (首次赋码), ``next_due_on`` = today (a first inspection is due), and
    the grid's first inspector as their inspector. The batch has one trail row (the file's digest).
    """
    with uow.begin("venues.import"):
        if user is not None and not may_import(user):
            deny(user, "import venues", None)
            raise ImportRejected([RowError(0, "权限", f"您的角色（{user.role.label}）不能导入场所")])
        sheet = _read(data, filename)
        conn = uow.conn
        # One import at a time (PostgreSQL): two checked against the same venues and numbered from the
        # same highest code collided on the code's unique key, a generic error for one of them.
        settings.take_turn(conn, "venues.import")
        venues, problems = check_rows(conn, sheet.rows, user=user, crs=crs)
        if problems or sheet.problems:
            raise ImportRejected(sorted(sheet.problems + problems, key=lambda p: p.row))
        ids = _insert(conn, venues, now)
        # One trail row for the batch (each venue's first 平安码 is in safety_code_changes).
        audit.record(
            conn,
            **audit.who(user),
            action="venue.import",
            entity="venues",
            entity_id=None,
            before=None,
            after={
                "file": filename,
                "crs": crs,
                "sha256": hashlib.sha256(data).hexdigest(),
                "count": len(ids),
                "first_id": min(ids) if ids else None,
                "last_id": max(ids) if ids else None,
            },
        )
        uow.commit()
        notes = list(sheet.notes)
        unknown = sheet.unknown_columns([name for name, _ in COLUMNS] + OPTIONAL_COLUMNS)
        if unknown:
            notes.append(f"以下列不是模板中的列，未导入：{'、'.join(unknown[:12])}")
        return ImportResult(len(ids), tuple(ids), tuple(notes))


def _insert(conn: Connection, venues: Sequence[NewVenue], now: datetime) -> list[int]:
    """Insert the checked venues and their first 平安码; their ids in file order."""
    owner = dict(
        conn.execute(
            select(InspectorGrid.grid_id, func.min(InspectorGrid.user_id))
            .join(User, User.id == InspectorGrid.user_id)
            .where(InspectorGrid.grid_id.in_({v.grid_id for v in venues}), User.is_active)
            .group_by(InspectorGrid.grid_id)
        ).all()
    )
    next_id = (conn.execute(select(func.max(Venue.id))).scalar() or 0) + 1
    codes = _free_codes(conn, next_id, len(venues))
    params = [
        {
            "code": code,
            "name": v.name,
            "category": v.category,
            "address": v.address,
            "lon": v.lon,
            "lat": v.lat,
            "grid_id": v.grid_id,
            "safety_code": v.code,
            "responsible_person": v.responsible_person,
            "responsible_phone": v.responsible_phone,
            "inspector_id": owner.get(v.grid_id),
            "last_inspected_on": None,
            "next_due_on": now.date(),
            "is_active": True,
            "created_at": now,
        }
        for v, code in zip(venues, codes, strict=True)
    ]
    ids = list(
        conn.execute(insert(Venue).returning(Venue.id, sort_by_parameter_order=True), params).scalars()
    )
    conn.execute(
        insert(SafetyCodeChange),
        [
            {
                "venue_id": vid,
                "changed_at": now,
                "from_code": None,
                "to_code": v.code,
                "reason": f"首次赋码：批量导入（{v.category.label}，{v.code.label}）",
            }
            for vid, v in zip(ids, venues, strict=True)
        ],
    )
    return ids


def _free_codes(conn: Connection, start: int, n: int) -> list[str]:
    """``n`` venue codes V0000123… from ``start`` on, skipping any already taken."""
    out: list[str] = []
    k = start
    while len(out) < n:
        batch = [f"V{i:07d}" for i in range(k, k + (n - len(out)) + 16)]
        taken = set(conn.execute(select(Venue.code).where(Venue.code.in_(batch))).scalars())
        out.extend(c for c in batch if c not in taken)
        k += len(batch)
    return out[:n]


# ---------------------------------------------------------------------------------------------
# Template
# ---------------------------------------------------------------------------------------------


def template_csv(place: ExamplePlace | None = None) -> bytes:
    """The import template: the header and one example row, UTF-8 with BOM so Excel opens it. The
    example lies in ``place`` (:func:`services.geography.example_place`: a grid of the user's area and a
    point inside it); without one (no boundaries yet) its place is left blank."""
    header = [name for name, _ in COLUMNS]
    example = {
        "名称": "示例：老王杂货店",
        "类别": "沿街店铺",
        "地址": f"{place.address if place else ''}某某路1号",
        "纬度": f"{place.lat:.6f}" if place else "",
        "经度": f"{place.lon:.6f}" if place else "",
        "网格编码": "",
        "负责人": "王某",
        "联系电话": "13800000000",
    }
    return to_csv(pd.DataFrame([example], columns=header))
