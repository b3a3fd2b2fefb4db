"""Venue import (场所批量导入) from CSV or XLSX: read, check every row, store all or nothing.

The template is documented in ``docs/venue-import.md``. CSV files may be UTF-8 (with or without a
BOM) or GBK/GB18030, as Excel on a Chinese Windows saves them. Every bad row is reported with its
row number as the spreadsheet shows it (the header is row 1), the field and the reason; when any
row is bad nothing is written. Also the safe CSV export used by the pages: cells that a
spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePath

import pandas as pd
from sqlalchemy import Connection, func, insert, select, tuple_
from sqlalchemy.orm import Session

from db.models import AdminUnit, InspectorGrid, SafetyCodeChange, User, Venue
from domain.access import CurrentUser
from domain.vocabulary import AdminLevel, SafetyCode, VenueCategory
from services import audit
from services.access import deny
from services.locate import locate_grids

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
FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r")

CATEGORY_BY_LABEL = {c.label: c for c in VenueCategory}
CODE_BY_TEXT = {**{c.label: c for c in SafetyCode}, **{c.label[0]: c for c in SafetyCode}}

TEMPLATE_EXAMPLE = {
    "名称": "示例：老王杂货店",
    "类别": "沿街店铺",
    "地址": "柯城区双港街道月湖社区北门街1号",
    "纬度": "28.951",
    "经度": "118.853",
    "网格编码": "",
    "负责人": "王某",
    "联系电话": "13800000000",
}


class ImportRejected(ValueError):
    """The file cannot be imported; ``problems`` lists every bad row (nothing was written)."""

    def __init__(self, problems: Sequence[RowProblem]):
        self.problems = list(problems)
        super().__init__(f"导入失败：共 {len(self.problems)} 处问题，未导入任何场所")


@dataclass(frozen=True)
class RowProblem:
    row: int  # as the spreadsheet numbers it: the header is row 1
    field: str
    reason: str


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


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """The text of a CSV file: UTF-8 (a BOM is dropped), else GB18030 (a superset of GBK and GB2312)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportRejected([RowProblem(0, "文件", "无法识别文件编码（请另存为 UTF-8 或 GBK 编码的 CSV）")]) from exc


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def read_rows(data: bytes, filename: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the non-empty rows (row number, header → text) of a CSV or XLSX file."""
    if len(data) > MAX_BYTES:
        raise ImportRejected([RowProblem(0, "文件", f"文件过大（上限 {MAX_BYTES // 1048576} MB）")])
    suffix = PurePath(filename or "").suffix.lower()
    if suffix == ".xlsx" or data[:4] == b"PK\x03\x04":
        raw_rows = _xlsx_rows(data)
    elif suffix in (".csv", ".txt", ""):
        text = decode_csv(data)
        raw_rows = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)]
    else:
        raise ImportRejected([RowProblem(0, "文件", "只支持 CSV 或 XLSX 文件")])
    if not raw_rows:
        raise ImportRejected([RowProblem(1, "表头", "文件为空")])
    header_row, header = raw_rows[0]
    header = [_cell(h).lstrip("\ufeff") for h in header]
    missing = [h for h in REQUIRED_HEADERS if h not in header]
    dup = sorted({h for h in header if h and header.count(h) > 1})
    problems = [RowProblem(header_row, h, "缺少此列") for h in missing]
    problems += [RowProblem(header_row, h, "列名重复") for h in dup]
    if problems:
        raise ImportRejected(problems)
    rows = []
    for n, cells in raw_rows[1:]:
        values = [_cell(c) for c in cells]
        if not any(values):
            continue
        rows.append((n, {h: (values[i] if i < len(values) else "") for i, h in enumerate(header) if h}))
    if not rows:
        raise ImportRejected([RowProblem(header_row + 1, "数据", "文件中没有场所数据")])
    if len(rows) > MAX_ROWS:
        raise ImportRejected([RowProblem(0, "文件", f"一次最多导入 {MAX_ROWS} 行（本文件 {len(rows)} 行）")])
    return header, rows


def _xlsx_rows(data: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise ImportRejected([RowProblem(0, "文件", "无法读取 XLSX 文件（文件损坏或不是 Excel 工作簿）")]) from exc
    try:
        ws = wb.worksheets[0]
        out = []
        for row in ws.iter_rows():
            cells = [c.value for c in row]
            n = next((c.row for c in row if getattr(c, "row", None) is not None), None)
            if n is None:
                continue
            out.append((n, cells))
        return out
    finally:
        wb.close()


# ---------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def check_rows(
    conn: Connection, rows: Sequence[tuple[int, dict[str, str]]], *, user: CurrentUser | None = None
) -> tuple[list[NewVenue], list[RowProblem]]:
    """Every row checked: the venues to create, and every problem (row, field, reason)."""
    problems: list[RowProblem] = []
    parsed: list[dict] = []
    for n, r in rows:
        p: list[RowProblem] = []
        for name, required in COLUMNS:
            value = r.get(name, "")
            if required and not value:
                p.append(RowProblem(n, name, "不能为空"))
            elif name in LIMITS and len(value) > LIMITS[name]:
                p.append(RowProblem(n, name, f"不能超过 {LIMITS[name]} 字"))
        category = CATEGORY_BY_LABEL.get(r.get("类别", ""))
        if r.get("类别") and category is None:
            p.append(RowProblem(n, "类别", f"“{r['类别']}”不是八类场所之一（{'、'.join(CATEGORY_BY_LABEL)}）"))
        lat, lon = _number(r.get("纬度", "")), _number(r.get("经度", ""))
        if r.get("纬度") and (lat is None or not -90 <= lat <= 90):
            p.append(RowProblem(n, "纬度", f"“{r['纬度']}”不是有效的纬度"))
            lat = None
        if r.get("经度") and (lon is None or not -180 <= lon <= 180):
            p.append(RowProblem(n, "经度", f"“{r['经度']}”不是有效的经度"))
            lon = None
        phone = r.get("联系电话", "")
        if phone and len(phone) <= LIMITS["联系电话"] and not PHONE.match(phone):
            p.append(RowProblem(n, "联系电话", "只能包含数字和“-”，7–20 位"))
        code_text = r.get("平安码", "")
        code = CODE_BY_TEXT.get(code_text, SafetyCode.GREEN) if code_text else SafetyCode.GREEN
        if code_text and code_text not in CODE_BY_TEXT:
            p.append(RowProblem(n, "平安码", "只能是红码、黄码或绿码（可不填，默认绿码）"))
        problems.extend(p)
        parsed.append({"row": n, "r": r, "category": category, "lat": lat, "lon": lon, "code": code, "ok": not p})

    # Location → grid, for every row with a usable position (one vectorised lookup).
    located = [x for x in parsed if x["lat"] is not None and x["lon"] is not None]
    grids = locate_grids(conn, [x["lon"] for x in located], [x["lat"] for x in located]) if located else []
    for x, g in zip(located, grids, strict=True):
        x["grid_id"] = None if g is None else int(g)
    grid_ids = {x.get("grid_id") for x in located} - {None}
    codes = dict(conn.execute(select(AdminUnit.id, AdminUnit.code).where(AdminUnit.id.in_(grid_ids))).all()) \
        if grid_ids else {}
    given_codes = {x["r"].get("网格编码") for x in parsed if x["r"].get("网格编码")}
    known = set(conn.execute(
        select(AdminUnit.code).where(AdminUnit.code.in_(given_codes), AdminUnit.level == AdminLevel.GRID)
    ).scalars()) if given_codes else set()
    in_scope = _scope_check(conn, user, grid_ids)
    for x in parsed:
        given = x["r"].get("网格编码")
        if given and given not in known:
            problems.append(RowProblem(x["row"], "网格编码", f"网格编码“{given}”不存在"))
    for x in located:
        n, g = x["row"], x.get("grid_id")
        if g is None:
            problems.append(RowProblem(n, "经纬度", f"位置（{x['lon']}, {x['lat']}）不在任何网格内"))
            x["ok"] = False
            continue
        given = x["r"].get("网格编码")
        if given and given in known and given != codes.get(g):
            problems.append(RowProblem(n, "网格编码", f"与经纬度所在网格（{codes.get(g)}）不一致"))
            x["ok"] = False
        if not in_scope.get(g, True):
            problems.append(RowProblem(n, "经纬度", "位置不在您的管辖范围内"))
            x["ok"] = False
            deny(user, "import venue outside scope", n)

    # Duplicates: the same name at the same address, within the file or already in the store.
    seen: dict[tuple[str, str], int] = {}
    for x in parsed:
        key = (x["r"].get("名称", ""), x["r"].get("地址", ""))
        if not all(key):
            continue
        if key in seen:
            problems.append(RowProblem(x["row"], "名称", f"与第 {seen[key]} 行重复（名称和地址相同）"))
            x["ok"] = False
        else:
            seen[key] = x["row"]
    if seen:
        keys = list(seen)
        existing: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            existing |= {tuple(k) for k in conn.execute(
                select(Venue.name, Venue.address).where(tuple_(Venue.name, Venue.address).in_(chunk))
            ).all()}
        for key, n in seen.items():
            if key in existing:
                problems.append(RowProblem(n, "名称", "系统中已有同名同地址的场所"))
    problems.sort(key=lambda p: (p.row, [c for c, _ in COLUMNS].index(p.field) if p.field in dict(COLUMNS) else 99))
    bad_rows = {p.row for p in problems}
    venues = [
        NewVenue(x["row"], x["r"]["名称"], x["category"], x["r"]["地址"], x["lat"], x["lon"], x["grid_id"],
                 x["r"]["负责人"], x["r"].get("联系电话") or None, x["code"])
        for x in parsed if x["row"] not in bad_rows
    ]
    return venues, problems


def _scope_check(conn: Connection, user: CurrentUser | None, grid_ids: Iterable[int]) -> dict[int, bool]:
    if user is None or not grid_ids:
        return {}
    parent = dict(conn.execute(select(AdminUnit.id, AdminUnit.parent_id)).all())
    out = {}
    for g in grid_ids:
        node, ok = g, False
        for _ in range(8):
            if node is None:
                break
            if node == user.scope_unit_id:
                ok = True
                break
            node = parent.get(node)
        out[g] = ok
    return out


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def may_import(user: CurrentUser) -> bool:
    return user.may("import_venues")


def import_venues(
    session: Session, *, data: bytes, filename: str, now: datetime, user: CurrentUser | None = None
) -> ImportResult:
    """Check the whole file and create every venue, or raise :class:`ImportRejected` writing nothing.

    New venues get the code from the optional 平安码 column (green by default), a first
    ``safety_code_changes`` row (首次赋码), ``next_due_on`` = today (a first inspection is due), and
    the grid's first inspector as their inspector.
    """
    if user is not None and not may_import(user):
        deny(user, "import venues", None)
        raise ImportRejected([RowProblem(0, "权限", f"您的角色（{user.role.label}）不能导入场所")])
    _, rows = read_rows(data, filename)
    conn = session.connection()
    venues, problems = check_rows(conn, rows, user=user)
    if problems:
        raise ImportRejected(problems)
    today = now.date()
    owner = dict(conn.execute(
        select(InspectorGrid.grid_id, func.min(InspectorGrid.user_id))
        .join(User, User.id == InspectorGrid.user_id)
        .where(InspectorGrid.grid_id.in_({v.grid_id for v in venues}), User.is_active)
        .group_by(InspectorGrid.grid_id)
    ).all())
    next_id = (conn.execute(select(func.max(Venue.id))).scalar() or 0) + 1
    codes = _free_codes(conn, next_id, len(venues))
    params = [
        {"code": code, "name": v.name, "category": v.category, "address": v.address, "lon": v.lon, "lat": v.lat,
         "grid_id": v.grid_id, "safety_code": v.code, "responsible_person": v.responsible_person,
         "responsible_phone": v.responsible_phone, "inspector_id": owner.get(v.grid_id), "last_inspected_on": None,
         "next_due_on": today, "is_active": True, "created_at": now}
        for v, code in zip(venues, codes, strict=True)
    ]
    ids = list(conn.execute(insert(Venue).returning(Venue.id, sort_by_parameter_order=True), params).scalars())
    conn.execute(
        insert(SafetyCodeChange),
        [{"venue_id": vid, "changed_at": now, "from_code": None, "to_code": v.code,
          "reason": f"首次赋码：批量导入（{v.category.label}，{v.code.label}）"} for vid, v in zip(ids, venues, strict=True)],
    )
    # One trail row for the batch (each venue's first 平安码 is in safety_code_changes).
    audit.record(conn, **audit.who(user), action="venue.import", entity="venues", entity_id=None, before=None,
                 after={"file": filename, "sha256": hashlib.sha256(data).hexdigest(), "count": len(ids),
                        "first_id": min(ids) if ids else None, "last_id": max(ids) if ids else None})
    return ImportResult(len(ids), tuple(ids))


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
# Template and safe exports
# ---------------------------------------------------------------------------------------------


def neutralise(value):
    """A cell a spreadsheet would run as a formula (= + - @, tab, CR first) prefixed with ' ; others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_LEAD):
        return "'" + value
    return value


def safe_csv(df: pd.DataFrame) -> bytes:
    """The frame as CSV for Excel: UTF-8 with BOM, every text cell and header neutralised."""
    out = df.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    return out.to_csv(index=False).encode("utf-8-sig")


def template_csv() -> bytes:
    """The import template: the header and one example row, UTF-8 with BOM so Excel opens it."""
    header = [name for name, _ in COLUMNS]
    return safe_csv(pd.DataFrame([TEMPLATE_EXAMPLE], columns=header))


def problems_frame(problems: Sequence[RowProblem]) -> pd.DataFrame:
    return pd.DataFrame([{"行号": p.row, "字段": p.field, "问题": p.reason} for p in problems],
                        columns=["行号", "字段", "问题"])
