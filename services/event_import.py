"""Import events from other systems (12345, 110, 数字城管 …) from CSV/XLSX: all rows or none, every bad row listed.

The template is in docs/event-import.md; :data:`TEMPLATE_COLUMNS` is its header. The file is read by the
one reader of every import (:func:`services.tabular.read_sheet`: row numbers as the file shows them, a
row whose cells do not match the header is an error of that row). A row's event fields are checked by
the 随手拍 form's own checker (:func:`domain.intake.check_form`); this module adds what only a file has
(the source, the time, the urgency, the 外部编号).

Nothing is imported twice: a 外部编号 is unique per source (twice in the file, or already stored, is an
error of its row; the store's unique index holds it under concurrent imports too), and the same file
(by its sha256) imported again is a no-op that says when it was imported (:mod:`services.submissions`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from db.models import Event
from db.uow import UnitOfWork
from domain.access import CurrentUser, is_mobile, tidy_phone
from domain.intake import ReportForm, check_form
from domain.vocabulary import EventCategory, EventSource, Urgency
from services import audit, clock, submissions
from services.access import deny
from services.event_rules import load_rules
from services.events import Actor
from services.geography import ExamplePlace
from services.geography import tree as store_tree
from services.intake import NewReport, add_reports
from services.locate import SWAPPED_HINT, locate_grids, swapped_inside
from services.tabular import RowError, Sheet, TableError, cell_number, listed, read_sheet

TEMPLATE_COLUMNS = [
    "来源",
    "外部编号",
    "类别",
    "标题",
    "描述",
    "地址",
    "纬度",
    "经度",
    "上报时间",
    "紧急程度",
    "反映人",
    "联系电话",
]
REQUIRED = ["来源", "类别", "标题", "纬度", "经度", "上报时间"]
#: Other systems' names of the template's columns (a 12345 or 110 export), read as the template's.
ALIASES = {
    "工单编号": "外部编号",
    "工单号": "外部编号",
    "外部工单号": "外部编号",
    "诉求内容": "描述",
    "问题描述": "描述",
    "事发地址": "地址",
    "发生地址": "地址",
    "诉求人": "反映人",
    "来电人": "反映人",
    "来电号码": "联系电话",
    "来电时间": "上报时间",
}
#: A column saying where the work order stands in its own system, and the words that say it is closed
#: there: such rows are history, not work to do here (docs/event-import.md), and are left out.
STATUS_COLUMNS = ("办理状态", "工单状态", "状态", "处理状态")
CLOSED_WORDS = ("办结", "完成", "关闭", "归档", "结案", "已回访", "已评价", "撤销", "作废")
MAX_ROWS = 50_000
#: Reports written per multi-row statement (services.intake.add_reports).
WRITE_CHUNK = 1_000
MAX_REF = 64
#: The submissions kind of an imported file (its key is the file's sha256).
IMPORT_KIND = "event.import"
#: The earliest 上报时间 a row may give: an Excel date cell left at 0 reads as 1899-12-30 or 1900-01-00,
#: and such a row would be an event already 滞留 for a century in every report.
EARLIEST = datetime(2000, 1, 1)
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",  # ISO 8601, as systems export it
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f",  # a database export's fractions of a second
    "%Y年%m月%d日 %H:%M:%S",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日%H:%M",
    "%Y-%m-%d",  # a date alone: taken as 00:00 of that day
    "%Y/%m/%d",
    "%Y年%m月%d日",
)
#: The form checker's fields as the file's columns.
FORM_COLUMNS = {
    "事项类别": "类别",
    "标题": "标题",
    "描述": "描述",
    "位置": "经度/纬度",
    "联系电话": "联系电话",
}


@dataclass
class ImportOutcome:
    """What an import did: ``imported`` events, or ``errors`` (in row order, at most
    :data:`services.tabular.MAX_LISTED` and a line with the total; ``total`` counts them all) and nothing
    written. ``already``: the same file was imported before (its one error says when)."""

    errors: list[RowError] = field(default_factory=list)
    imported: int = 0
    total: int = 0
    already: bool = False
    #: Imported events already past their first deadline (受理时限) when they arrived: 超期 at once.
    late: int = 0
    #: What the reader and the import decided that the importer should know (the worksheet read, a column
    #: read under another name, columns not imported, closed work orders left out), in Chinese.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _refused(errors: list[RowError], already: bool = False) -> ImportOutcome:
    return ImportOutcome(listed(errors), total=len(errors), already=already)


def template(place: ExamplePlace | None = None) -> pd.DataFrame:
    """The template with one example row, placed in ``place`` (a grid of the user's area,
    :func:`services.geography.example_place`); without one its place is left blank."""
    return pd.DataFrame(
        [
            [
                "12345热线",
                "GD20261121001",
                "城镇管理",
                "店门口占道经营",
                "早高峰影响通行",
                f"{place.address if place else ''}某某路12号",
                f"{place.lat:.6f}" if place else "",
                f"{place.lon:.6f}" if place else "",
                "2026-11-21 09:30",
                "一般",
                "张先生",
                "13800000000",
            ]
        ],
        columns=TEMPLATE_COLUMNS,
    )


#: Excel's day numbers of 2000-01-01 and 2100-01-01: a number between them in a time column is a date
#: cell shown as a number ("常规" format), counted from 1899-12-30.
EXCEL_SERIALS = (36526.0, 73051.0)
EXCEL_EPOCH = datetime(1899, 12, 30)


def _parse_time(text: str) -> datetime | None:
    """上报时间 as China time: the template's formats; ISO 8601 with an offset (``+08:00``, ``Z``),
    moved to China time; an Excel day number (a date cell formatted 常规), from 1899-12-30."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())  # full-width digits, doubled spaces
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(microsecond=0)
        except ValueError:
            continue
    if "T" in text or text[-1:] in ("Z", "z") or "+" in text:
        try:
            at = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
        except ValueError:
            return None
        if at.tzinfo is not None:
            at = at.astimezone(clock.ZONE).replace(tzinfo=None)
        return at.replace(microsecond=0)
    try:
        serial = float(text)
    except ValueError:
        return None
    if EXCEL_SERIALS[0] <= serial < EXCEL_SERIALS[1]:
        return (EXCEL_EPOCH + timedelta(days=serial) + timedelta(microseconds=500_000)).replace(microsecond=0)
    return None


def _closed_there(cells: dict[str, str]) -> bool:
    """Whether the row's own status column says the work order is closed in its system."""
    status = next((cells[c] for c in STATUS_COLUMNS if cells.get(c)), "")
    return any(word in status for word in CLOSED_WORDS) and "未" not in status


def check_rows(sheet: Sheet, now: datetime) -> tuple[list[dict], list[RowError]]:
    """Each row as clean values, or every problem of every row (row numbers as in the file, one per
    column): the rows the reader could not read, each row's fields, a 外部编号 twice in the file."""
    rows, errors = [], list(sheet.problems)
    first_of: dict[tuple[str, str], int] = {}
    for n, cells in sheet.rows:
        clean, bad = _check_row({"_row": n, **cells}, now)
        ref = clean["ref"]
        if ref and clean["source"] is not None and "外部编号" not in bad:
            seen = first_of.setdefault((clean["source"], ref), n)
            if seen != n:
                bad["外部编号"] = f"与第 {seen} 行的外部编号重复（同一来源的外部编号只能导入一次）"
        errors += [RowError(n, col, reason) for col, reason in bad.items()]
        if not bad:
            rows.append(clean)
    return rows, errors


def _check_row(r: dict, now: datetime) -> tuple[dict, dict[str, str]]:
    """One row's clean values and its problems (column → reason; the first problem of a column counts)."""
    bad: dict[str, str] = {col: "不能为空" for col in REQUIRED if not r.get(col)}
    if len(r.get("外部编号", "")) > MAX_REF:
        bad["外部编号"] = f"不能超过 {MAX_REF} 个字符"
    sources = {s.label: s for s in EventSource}
    categories = {c.label: c for c in EventCategory}
    source, category = sources.get(r["来源"]), categories.get(r["类别"])
    if r["来源"] and source is None:
        bad.setdefault("来源", f"未知来源“{r['来源']}”，应为：{'、'.join(sources)}")
    if r["类别"] and category is None:
        bad.setdefault("类别", f"未知类别“{r['类别']}”，应为：{'、'.join(categories)}")
    urgency = {u.label: u for u in Urgency}.get(r.get("紧急程度") or "一般")
    if urgency is None:
        bad.setdefault("紧急程度", "应为 一般、紧急 或 特急")
    lon, lat = (_number(r, col, bad) for col in ("经度", "纬度"))
    at = _parse_time(r["上报时间"]) if r["上报时间"] else None
    if r["上报时间"] and at is None:
        bad.setdefault(
            "上报时间", "格式应为 2026-11-21 09:30（也可为 2026/11/21 09:30、2026年11月21日 09:30）"
        )
    elif at is not None and at > now:
        bad.setdefault("上报时间", "不能晚于当前时间")
    elif at is not None and at < EARLIEST:
        bad.setdefault(
            "上报时间", f"不能早于 {EARLIEST:%Y-%m-%d}（请核对：Excel 的空日期显示为 1900 年前后）"
        )
    phone, phone_ok = tidy_phone(r.get("联系电话", ""))
    if not phone_ok:
        bad.setdefault("联系电话", "应为手机号（11 位，可带 +86）或固定电话（如 0570-3021234）；不知道可留空")
    form = ReportForm(
        category=category.value if category else "",
        title=r["标题"],
        description=r.get("描述", ""),
        lon=lon,
        lat=lat,
        reporter_phone=phone if phone and is_mobile(phone) else "",  # a landline is checked above
    )
    for name, reason in check_form(form).items():  # the 随手拍 checker: same fields, same limits
        column = FORM_COLUMNS[name]
        if not (column in bad or (column == "经度/纬度" and {"经度", "纬度"} & bad.keys())):
            bad[column] = reason
    clean = {
        "row": r["_row"],
        "source": source,
        "category": category,
        "title": r["标题"],
        "description": r.get("描述", ""),
        "address": r.get("地址") or None,
        "lon": lon,
        "lat": lat,
        "at": at,
        "urgency": urgency,
        "name": r.get("反映人") or None,
        "phone": phone or None,
        "ref": r.get("外部编号") or "",
    }
    return clean, bad


def _number(r: dict, col: str, bad: dict[str, str]) -> float | None:
    """The column as a number (full-width digits and point as typed on a Chinese keyboard too), or None
    (and its problem noted) when it is not one."""
    if not r[col]:
        return None
    number = cell_number(r[col])
    if number is None:
        bad.setdefault(col, f"“{r[col]}”不是有效的{col}")
    return number


def import_events(
    uow: UnitOfWork,
    data: bytes,
    filename: str,
    *,
    actor: Actor,
    now: datetime,
    user: CurrentUser | None = None,
) -> ImportOutcome:
    """Import every row of the file as an event, or none: on any error nothing is written.

    ``user`` (the logged-in importer; None for trusted callers) must be a leader, and every row must lie
    inside their scope: a row outside it is an error of that row, and the denial is logged. A file
    imported before (the same bytes) imports nothing and says when it was imported.
    """
    if user is not None and not user.may("import_events"):
        deny(user, "import events", None)
        return ImportOutcome([RowError(1, "权限", f"您的角色（{user.role.label}）不能导入事件")], total=1)
    digest = hashlib.sha256(data).hexdigest()
    with uow.reader() as conn:
        first = submissions.find(conn, IMPORT_KIND, digest, digest)
    if first is not None:
        return _refused([_imported_before(first)], already=True)
    try:
        sheet = read_sheet(data, filename, REQUIRED, max_rows=MAX_ROWS, aliases=ALIASES)
    except TableError as exc:
        return _refused(exc.problems or [RowError(1, "文件", str(exc))])
    notes = list(sheet.notes)
    unknown = [c for c in sheet.unknown_columns(TEMPLATE_COLUMNS) if c not in STATUS_COLUMNS]
    if unknown:
        notes.append(f"以下列不是模板中的列，未导入：{'、'.join(unknown[:12])}")
    shut = [_closed_there(cells) for _n, cells in sheet.rows]
    closed = [n for (n, _cells), s in zip(sheet.rows, shut, strict=True) if s]
    if closed:
        sheet.rows = [row for row, s in zip(sheet.rows, shut, strict=True) if not s]
        notes.append(
            f"{len(closed)} 行在原系统中已办结（第 {'、'.join(map(str, closed[:10]))}"
            f"{' 等' if len(closed) > 10 else ''} 行），未导入：已办结的历史工单不进入本系统的办理流程"
        )
    if not sheet.rows and not sheet.problems:
        what = (
            "文件中的工单都已在原系统办结，没有要导入的事件" if closed else "文件只有表头，没有可导入的事件"
        )
        return _refused([RowError(1, "文件", what)])
    rows, errors = check_rows(sheet, now)
    if rows:  # where the rows lie is read before the write lock is taken: a bad file never takes it
        with uow.reader() as conn:
            errors = errors + _placed(conn, rows, user)
    try:
        outcome = _store(uow, rows, errors, digest=digest, filename=filename, actor=actor, now=now, user=user)
        outcome.notes = notes
        return outcome
    except IntegrityError:  # another import stored one of these 外部编号 meanwhile (PostgreSQL)
        return _refused(
            [RowError(0, "外部编号", "其他人刚刚导入了相同的外部编号，本次未导入，请重新导入以查看是哪几行")]
        )


def _store(
    uow: UnitOfWork,
    rows: list[dict],
    errors: list[RowError],
    *,
    digest: str,
    filename: str,
    actor: Actor,
    now: datetime,
    user: CurrentUser | None,
) -> ImportOutcome:
    """The checked rows stored in one unit of work, once the store's own checks passed: where the rows
    lie, 外部编号 already stored, the same file imported meanwhile."""
    with uow.begin("events.import"):
        conn = uow.conn
        first = submissions.find(conn, IMPORT_KIND, digest, digest)
        if first is None and not submissions.claim(conn, IMPORT_KIND, digest, digest, now):
            first = submissions.find(conn, IMPORT_KIND, digest, digest)  # the same file, committed meanwhile
        if first is not None:
            return _refused([_imported_before(first)], already=True)
        if rows:
            errors = errors + _stored_refs(conn, rows)
        if errors:
            return _refused(sorted(errors, key=lambda e: (e.row, e.field)))
        # Core statements, the deadline rules read once: the write lock (SQLite) is held for the inserts only.
        rules = load_rules(conn)[1]
        added = [
            e
            for i in range(0, len(rows), WRITE_CHUNK)  # multi-row statements, a bounded batch at a time
            for e in add_reports(conn, [_report(r, actor) for r in rows[i : i + WRITE_CHUNK]], rules)
        ]
        ids = [e.id for e in added]
        late = sum(1 for e in added if e.due_at is not None and e.due_at < now)
        # Reported when the source system says; changed (for the live feed) when it arrived here.
        for i in range(0, len(ids), 1000):  # a file's ids in bounded IN lists
            conn.execute(update(Event).where(Event.id.in_(ids[i : i + 1000])).values(updated_at=now))
        summary = {
            "file": filename,
            "sha256": digest,
            "count": len(ids),
            "first_id": min(ids, default=None),
            "last_id": max(ids, default=None),
        }
        submissions.settle(conn, IMPORT_KIND, digest, None, summary | {"at": now})
        # Each event has its own event.report row; this one records the import as a whole.
        audit.record(
            conn,
            **audit.who(actor),
            action="event.import",
            entity="events",
            entity_id=None,
            before=None,
            after=summary,
        )
        uow.commit()
    return ImportOutcome(imported=len(rows), late=late)


def _imported_before(first: submissions.First) -> RowError:
    """The no-op's message: when the same file was imported, and what it made."""
    done = first.result
    made = f"{done.get('count', 0)} 条事件"
    if done.get("first_id") is not None:
        made += f"，编号 #{done['first_id']}–#{done['last_id']}"
    return RowError(
        0, "文件", f"该文件已于 {first.created_at:%Y-%m-%d %H:%M} 导入过（{made}），本次未重复导入"
    )


def _stored_refs(conn: Connection, rows: list[dict]) -> list[RowError]:
    """The rows whose (source, 外部编号) is already stored: one error each, naming the stored event."""
    keyed = {(r["source"], r["ref"]): r["row"] for r in rows if r["ref"]}
    keys = list(keyed)
    found: dict[tuple, int] = {}
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        for event_id, source, ref in conn.execute(
            select(Event.id, Event.source, Event.external_ref).where(
                tuple_(Event.source, Event.external_ref).in_(chunk)
            )
        ):
            found[(EventSource(source), ref)] = event_id
    return [
        RowError(keyed[k], "外部编号", f"该来源的此编号已导入过（事件 #{found[k]}），不能重复导入")
        for k in keys
        if k in found
    ]


def _placed(conn, rows: list[dict], user: CurrentUser | None) -> list[RowError]:
    """The rows outside every grid, and (for a user) outside their scope: one error each, denials logged."""
    grids = locate_grids(conn, [r["lon"] for r in rows], [r["lat"] for r in rows])
    lost = [r for r, g in zip(rows, grids, strict=True) if g is None]
    swapped = swapped_inside(conn, [r["lon"] for r in lost], [r["lat"] for r in lost])
    errors = [
        RowError(r["row"], "经度/纬度", "位置不在任何网格内" + (f"：{SWAPPED_HINT}" if s else ""))
        for r, s in zip(lost, swapped, strict=True)
    ]
    if user is not None:
        inside = set(store_tree(conn).grids_under(user.scope_unit_id))
        outside = [r["row"] for r, g in zip(rows, grids, strict=True) if g is not None and g not in inside]
        errors += [RowError(n, "经度/纬度", "位置不在您的管辖范围内") for n in outside]
        if outside:
            deny(user, "import events outside scope", outside[0])
    return errors


def _report(r: dict, actor: Actor) -> NewReport:
    """A checked row as :func:`services.intake.add_reports` takes it."""
    note = f"［{r['source'].label} {r['ref']}］" if r["ref"] else ""
    return NewReport(
        actor=actor,
        source=r["source"],
        category=r["category"],
        title=r["title"],
        description=(note + r["description"]).strip(),
        lon=r["lon"],
        lat=r["lat"],
        now=r["at"],
        urgency=r["urgency"],
        address=r["address"],
        reporter_name=r["name"],
        reporter_phone=r["phone"],
        external_ref=r["ref"] or None,
    )
