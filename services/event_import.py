"""Import events from other systems (12345, 110, 数字城管 …) from CSV/XLSX: all rows or none, every bad row listed.

The template is in docs/event-import.md; :data:`TEMPLATE_COLUMNS` is its header.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import Event
from domain.access import CurrentUser
from domain.intake import MAX_TEXT, MAX_TITLE
from domain.vocabulary import EventCategory, EventSource, Urgency
from services import audit
from services.access import deny, grids_under
from services.events import Actor, report_event
from services.locate import locate_grids
from services.tabular import RowError, TableError, read_table

TEMPLATE_COLUMNS = ["来源", "外部编号", "类别", "标题", "描述", "地址", "纬度", "经度", "上报时间", "紧急程度", "反映人", "联系电话"]
REQUIRED = ["来源", "类别", "标题", "纬度", "经度", "上报时间"]
MAX_ROWS = 50_000
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M")


@dataclass
class ImportOutcome:
    errors: list[RowError] = field(default_factory=list)
    imported: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def template() -> pd.DataFrame:
    """The template with one example row."""
    return pd.DataFrame(
        [["12345热线", "GD20261121001", "城镇管理", "店门口占道经营", "早高峰影响通行", "荷花路12号", "28.9701", "118.8702",
          "2026-11-21 09:30", "一般", "张先生", "13800000000"]],
        columns=TEMPLATE_COLUMNS,
    )


def _parse_time(text: str) -> datetime | None:
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def check_rows(df: pd.DataFrame, now: datetime) -> tuple[list[dict], list[RowError]]:
    """Each row as clean values, or every problem of every row (row numbers as in the file)."""
    sources = {s.label: s for s in EventSource}
    categories = {c.label: c for c in EventCategory}
    urgencies = {u.label: u for u in Urgency}
    rows, errors = [], []
    for r in df.to_dict("records"):
        n, bad = r["_row"], []
        for col in REQUIRED:
            if not r.get(col):
                bad.append(RowError(n, col, "不能为空"))
        source = sources.get(r["来源"])
        if r["来源"] and source is None:
            bad.append(RowError(n, "来源", f"未知来源“{r['来源']}”，应为：{'、'.join(sources)}"))
        category = categories.get(r["类别"])
        if r["类别"] and category is None:
            bad.append(RowError(n, "类别", f"未知类别“{r['类别']}”，应为：{'、'.join(categories)}"))
        urgency = urgencies.get(r.get("紧急程度") or "一般")
        if urgency is None:
            bad.append(RowError(n, "紧急程度", "应为 一般、紧急 或 特急"))
        if len(r["标题"]) > MAX_TITLE:
            bad.append(RowError(n, "标题", f"不能超过 {MAX_TITLE} 字"))
        if len(r.get("描述", "")) > MAX_TEXT:
            bad.append(RowError(n, "描述", f"不能超过 {MAX_TEXT} 字"))
        lon = lat = None
        for col, lo, hi in (("经度", -180, 180), ("纬度", -90, 90)):
            if r[col]:
                try:
                    value = float(r[col])
                    if not lo <= value <= hi:
                        raise ValueError
                except ValueError:
                    bad.append(RowError(n, col, f"“{r[col]}”不是有效的{col}"))
                else:
                    lon, lat = (value, lat) if col == "经度" else (lon, value)
        at = _parse_time(r["上报时间"]) if r["上报时间"] else None
        if r["上报时间"] and at is None:
            bad.append(RowError(n, "上报时间", "格式应为 2026-11-21 09:30"))
        elif at is not None and at > now:
            bad.append(RowError(n, "上报时间", "不能晚于当前时间"))
        phone = r.get("联系电话", "")
        if phone and not (phone.isdigit() and len(phone) == 11 and phone.startswith("1")):
            bad.append(RowError(n, "联系电话", "应为 11 位手机号码"))
        errors += bad
        if not bad:
            rows.append({"row": n, "source": source, "category": category, "title": r["标题"], "description": r.get("描述", ""),
                         "address": r.get("地址") or None, "lon": lon, "lat": lat, "at": at, "urgency": urgency,
                         "name": r.get("反映人") or None, "phone": phone or None, "ref": r.get("外部编号") or ""})
    return rows, errors


def import_events(session: Session, data: bytes, filename: str, *, actor: Actor, now: datetime,
                  user: CurrentUser | None = None) -> ImportOutcome:
    """Import every row of the file as an event, or none: the caller's transaction is left untouched on errors.

    ``user`` (the logged-in importer; None for trusted callers) must be a leader, and every row must lie
    inside their scope: a row outside it is an error of that row, and the denial is logged.
    """
    if user is not None and not user.may("import_events"):
        deny(user, "import events", None)
        return ImportOutcome([RowError(1, "权限", f"您的角色（{user.role.label}）不能导入事件")])
    try:
        df = read_table(data, filename, REQUIRED)
    except TableError as exc:
        return ImportOutcome([RowError(1, "文件", str(exc))])
    if len(df) > MAX_ROWS:
        return ImportOutcome([RowError(1, "文件", f"一次最多导入 {MAX_ROWS} 行，请分批导入")])
    if df.empty:
        return ImportOutcome([RowError(1, "文件", "文件只有表头，没有可导入的事件")])
    rows, errors = check_rows(df, now)
    if rows:
        grids = locate_grids(session.connection(), [r["lon"] for r in rows], [r["lat"] for r in rows])
        errors += [RowError(r["row"], "经度/纬度", "位置不在任何网格内") for r, g in zip(rows, grids, strict=True) if g is None]
        if user is not None:
            inside = set(grids_under(session.connection(), user.scope_unit_id))
            outside = [r["row"] for r, g in zip(rows, grids, strict=True) if g is not None and g not in inside]
            errors += [RowError(n, "经度/纬度", "位置不在您的管辖范围内") for n in outside]
            if outside:
                deny(user, "import events outside scope", outside[0])
    if errors:
        return ImportOutcome(sorted(errors, key=lambda e: (e.row, e.field)))
    ids = []
    for r in rows:
        note = f"［{r['source'].label} {r['ref']}］" if r["ref"] else ""
        event = report_event(session, source=r["source"], category=r["category"], title=r["title"],
                     description=(note + r["description"]).strip(), lon=r["lon"], lat=r["lat"], now=r["at"],
                     actor=actor, urgency=r["urgency"], address=r["address"], reporter_name=r["name"],
                     reporter_phone=r["phone"])
        ids.append(event.id)
    # Reported when the source system says; changed (for the live feed) when it arrived here.
    session.execute(update(Event).where(Event.id.in_(ids)).values(updated_at=now))
    # Each event has its own event.report row; this one records the import as a whole.
    audit.record(session.connection(), **audit.who(actor), action="event.import", entity="events", entity_id=None,
                 before=None, after={"file": filename, "sha256": hashlib.sha256(data).hexdigest(), "count": len(ids),
                                     "first_id": min(ids, default=None), "last_id": max(ids, default=None)})
    return ImportOutcome(imported=len(rows))
