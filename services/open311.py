"""Open311 GeoReport v2 (decision 0024): what the API answers, in the specification's fields.

Requests are filed through :func:`services.intake.submit_report`, the 随手拍 intake (field checks, point
→ grid, outside-area refusal, duplicate flagging, dispatch rules, SLA, audit), with the channel as the
actor (``api:<channel>``) and the event source its channel. The channel's own work-order number
(``attribute[work_order]``) is the idempotency key: the submission key is a digest of the API key's id
and that number, so a retried POST returns the first event. GCJ-02 points (WeChat locations,
``attribute[crs]=gcj02``) are converted once to WGS84 here (geo.crs.gcj02_to_wgs84).

GET answers carry no personal data: no reporter name or phone, free text with phone and ID numbers
masked and house numbers hidden (domain.access.public_text), coordinates
rounded to 3 decimals (about 100 m) and the grid's name as the address. Times are ISO 8601 with the
+08:00 offset (Asia/Shanghai).
"""

from __future__ import annotations

import hashlib
import re
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select

from db.models import AdminUnit, Department, Event
from db.uow import UnitOfWork, reading
from domain.access import public_text
from domain.errors import FieldProblems
from domain.intake import MAX_TEXT, UNSTORABLE, ReportForm, blank, unstorable
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource, EventStatus, Urgency
from geo.crs import POINT_SYSTEMS, POINTS_GCJ02, POINTS_WGS84, gcj02_to_wgs84
from services import clock, submissions
from services.access import out_of_scope, user_scope
from services.api_keys import Channel
from services.events import Actor
from services.intake import (
    KIND,
    GroupCommit,
    Report,
    prepare_report,
    submit_report,
    write_at_once,
    writes_at_once,
)
from services.locate import OutsideArea, grid_within, locate_grid

#: The groups and keywords of each category (service discovery); names are the Chinese labels.
GROUPS: dict[EventCategory, tuple[str, str]] = {
    EventCategory.URBAN: ("城市管理", "占道经营,乱堆乱放,违章搭建,垃圾,井盖"),
    EventCategory.DISPUTE: ("社会治理", "邻里纠纷,劳资纠纷,土地纠纷"),
    EventCategory.ENVIRONMENT: ("生态环境", "污水,异味,噪声,焚烧,河道"),
    EventCategory.MARKET: ("市场监管", "无证经营,食品安全,价格"),
    EventCategory.WORK_SAFETY: ("安全生产", "消防通道,燃气,隐患,危化品"),
    EventCategory.PUBLIC_SECURITY: ("社会治理", "治安,可疑人员,监控"),
    EventCategory.NATURAL_HAZARD: ("应急管理", "山体滑坡,积水,倒树,地质灾害"),
    EventCategory.LIVELIHOOD: ("民生服务", "路灯,供水,道路破损,公交"),
}
#: The event source a channel's requests carry.
SOURCES = {
    "12345": EventSource.HOTLINE_12345,
    "hotline_12345": EventSource.HOTLINE_12345,
    "110": EventSource.POLICE_110,
    "police_110": EventSource.POLICE_110,
    "video": EventSource.VIDEO_AI,
    "video_ai": EventSource.VIDEO_AI,
    "119": EventSource.FIRE_119,
    "digital_city": EventSource.DIGITAL_CITY,
}
CRS = POINT_SYSTEMS
WORK_ORDER = re.compile(r"[A-Za-z0-9_\-.:/]{1,64}")
#: The description, the address line and the media link are one text in the store (随手拍's limit).
MAX_DESCRIPTION = MAX_TEXT
MAX_ADDRESS = 300
MAX_LIST = 1000


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def default_store() -> Engine:
    """This process's engine for the API (DATABASE_URL or the default store)."""
    from db.engine import database_url, make_engine

    url = database_url()
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def unit_of_work(engine: Engine) -> UnitOfWork:
    return UnitOfWork(engine)


def reader(engine: Engine) -> AbstractContextManager[Connection]:
    """One pooled connection for a request's reads (:func:`db.uow.reading`: on PostgreSQL each statement
    commits itself, so a report can be written on it at once, :func:`file_at_once`)."""
    return reading(engine)


def service_list() -> list[dict[str, Any]]:
    return [
        {
            "service_code": c.value,
            "service_name": c.label,
            "description": f"{c.label}类事件（{GROUPS[c][0]}）",
            "metadata": True,
            "type": "realtime",
            "keywords": GROUPS[c][1],
            "group": GROUPS[c][0],
        }
        for c in EventCategory
    ]


def service_definition(code: str) -> dict[str, Any] | None:
    if code not in EventCategory._value2member_map_:
        return None
    return {
        "service_code": code,
        "attributes": [
            {
                "variable": True,
                "code": "crs",
                "datatype": "singlevaluelist",
                "required": False,
                "datatype_description": "坐标系：wgs84（默认）或 gcj02（微信、高德等国测局坐标，服务端换算一次）",
                "order": 1,
                "description": "坐标系",
                "values": [{"key": "wgs84", "name": "WGS84"}, {"key": "gcj02", "name": "GCJ-02（国测局）"}],
            },
            {
                "variable": True,
                "code": "work_order",
                "datatype": "string",
                "required": False,
                "datatype_description": "来源系统的工单号（1–64 位字母、数字或 _-.:/），重复提交同一工单号返回同一事件",
                "order": 2,
                "description": "渠道工单号",
            },
        ],
    }


def _number(raw: str | None, name: str, lo: float, hi: float, problems: dict[str, str]) -> float | None:
    if raw is None or not str(raw).strip():
        problems[name] = f"请填写{name}"
        return None
    try:
        value = float(raw)
    except ValueError:
        problems[name] = f"{name}不是数字：{str(raw)[:20]}"
        return None
    if not lo <= value <= hi:  # also refuses nan
        problems[name] = f"{name}超出范围（{lo} 到 {hi}）"
        return None
    return value


def submission_key(channel: Channel, work_order: str) -> str:
    """The intake's submission key for the channel's work-order number (the idempotency key)."""
    return "o311-" + hashlib.sha256(f"{channel.key_id}:{work_order}".encode()).hexdigest()[:48]


def file_request(
    uow: UnitOfWork,
    channel: Channel,
    *,
    group: GroupCommit | None = None,
    **fields: Any,
) -> Event:
    """File one request as an event: :func:`prepare_request` on a read connection of its own, then
    :func:`file_prepared`. ``fields``: :func:`prepare_request`'s (``service_code``, ``lat``, ``lon``,
    ``description``, ``address``, ``crs``, ``work_order``, ``media_url``, ``photo``, ``now``)."""
    with uow.reader() as conn:
        filing = prepare_request(uow, channel, reader=conn, grouped=group is not None, **fields)
    return file_prepared(uow, filing, group)


@dataclass(frozen=True)
class Filing:
    """A request checked and located (:func:`prepare_request`), ready for :func:`file_prepared`."""

    form: ReportForm
    how: dict[str, Any]
    #: Prepared for a group commit (``grouped``); None: written alone by ``submit_report``.
    report: Report | None


def prepare_request(
    uow: UnitOfWork,
    channel: Channel,
    *,
    reader: Connection,
    grouped: bool,
    service_code: str | None,
    lat: str | None,
    lon: str | None,
    description: str | None,
    address: str | None = None,
    crs: str | None = None,
    work_order: str | None = None,
    media_url: str | None = None,
    photo: bytes | None = None,
    now: datetime | None = None,
) -> Filing:
    """Everything of filing a request that only reads, on the caller's connection ``reader`` (the API
    reads the key and prepares the report on one pooled connection; on PostgreSQL it writes the report
    on it too, :func:`file_at_once`, and otherwise gives it back before the write waits for its batch): the fields (:class:`FieldProblems`, Chinese, every field), the key's
    categories and area (:class:`PermissionError`), the place (services.locate.OutsideArea), the photo
    checked and stripped as 随手拍's. ``grouped``: prepare the report for a group commit
    (:class:`services.intake.GroupCommit`, decision 0035). Nothing is written."""
    problems: dict[str, str] = {}
    code = (service_code or "").strip()
    if code not in EventCategory._value2member_map_:
        problems["service_code"] = f"未知的事项代码：{code[:40] or '（空）'}"
    y = _number(lat, "纬度", -90, 90, problems)
    x = _number(lon, "经度", -180, 180, problems)
    system = (crs or POINTS_WGS84).strip().lower()
    if system not in CRS:
        problems["坐标系"] = "坐标系只能是 wgs84 或 gcj02"
    text = (description or "").strip()
    if blank(text):  # nothing that shows: zero-width spaces, direction marks … only
        problems["description"] = "请填写事件描述"
    elif len(text) > MAX_DESCRIPTION:
        problems["description"] = f"事件描述过长（{len(text)} 字），上限 {MAX_DESCRIPTION} 字"
    place = (address or "").strip()
    if len(place) > MAX_ADDRESS:
        problems["address_string"] = f"地址过长（{len(place)} 字），上限 {MAX_ADDRESS} 字"
    for name, value in (("description", text), ("address_string", place)):
        if name not in problems and unstorable(value):
            problems[name] = UNSTORABLE
    order = (work_order or "").strip() or None
    if order is not None and not WORK_ORDER.fullmatch(order):
        problems["工单号"] = "工单号无效（1–64 位字母、数字或 _-.:/）"
    media = (media_url or "").strip() or None
    if media is not None and (not re.fullmatch(r"https?://\S{1,500}", media)):
        problems["media_url"] = "图片链接须为 http(s) 地址"
    if problems:
        raise FieldProblems(problems)
    assert x is not None and y is not None
    if not channel.may_file(code):
        raise out_of_scope(
            channel.as_user(), "open311.category", code, f"该密钥不能上报“{EventCategory(code).label}”类事件"
        )
    if system == POINTS_GCJ02:
        wx, wy = gcj02_to_wgs84(x, y)
        x, y = float(wx), float(wy)
    body = text
    if place:
        body += f"\n地址：{place}"
    if media:
        body += f"\n图片链接：{media}"
    if len(body) > MAX_TEXT:  # each part within its own limit, the three together over the store's
        raise FieldProblems(
            {"description": f"描述、地址与图片链接合计 {len(body)} 字，超过上限 {MAX_TEXT} 字，请缩短描述"}
        )
    form = ReportForm(category=code, title=text.splitlines()[0][:60], description=body, lon=x, lat=y)
    how: dict[str, Any] = {
        "now": now or clock.now(),
        "source": SOURCES.get(channel.channel, EventSource.CITIZEN),
        "actor": Actor(None, channel.role),
        "submission_key": submission_key(channel, order) if order else None,
        "photo": photo,
    }
    report = None
    grid = locate_grid(reader, x, y)
    # the key's area (services.access.unit_in_scope's test, from the lookup's cache: no query)
    if grid is not None and not grid_within(reader, grid, channel.scope_unit_id):
        raise out_of_scope(channel.as_user(), "open311.place", grid, "该位置不在此密钥的管辖范围内")
    if grid is None and not (
        how["submission_key"] and submissions.taken(reader, KIND, how["submission_key"])
    ):
        # refused here, not in a batch (where it would send the batch round again with savepoints);
        # a retry of a stored work order goes on: it is answered with its first event
        raise OutsideArea(x, y)
    if grouped:
        # PostgreSQL reads ahead: the report may be written at once on this connection (file_at_once)
        # the read ahead (PostgreSQL) or the batch (SQLite) checks that the key is not revoked (0059)
        report = prepare_report(
            uow, form, reader=reader, read_ahead=not uow.one_writer, api_key=channel.stamp, **how
        )
    return Filing(form, how, report)


def file_at_once(uow: UnitOfWork, conn: Connection, filing: Filing) -> Event | None:
    """PostgreSQL: write a prepared request on the request's own connection ``conn`` (a
    :func:`reader`), in one statement (:func:`services.intake.write_at_once`, decision 0057); None when
    it takes :func:`file_prepared` instead (SQLite's group commit, a photo)."""
    if uow.one_writer or filing.report is None or not writes_at_once(filing.report):
        return None
    return write_at_once(conn, filing.report)


def file_prepared(uow: UnitOfWork, filing: Filing, group: GroupCommit | None = None) -> Event:
    """Write a prepared request: with the other requests of the moment in ``group``'s transaction, in a
    savepoint of its own, answered after it; alone (``submit_report``) when it was not prepared for one."""
    if group is not None and filing.report is not None:
        # in the batch, a report is checked against those before it (decision 0035): not read ahead
        return group.write(replace(filing.report, nearby=None, deadlines=None))
    return submit_report(uow, filing.form, **filing.how)


def stamp(at: datetime | None) -> str | None:
    """ISO 8601 with the +08:00 offset (China has kept UTC+8 all year since 1991: no zone lookup per row)."""
    return None if at is None else at.isoformat() + "+08:00"


def parse_time(raw: str | None, name: str, problems: dict[str, str]) -> datetime | None:
    """A query's ISO 8601 time as local (Asia/Shanghai) naive time; a time without offset is local."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        at = datetime.fromisoformat(text)
        # years 1 and 9999 with an offset overflow when moved to China time
        return at.astimezone(clock.ZONE).replace(tzinfo=None) if at.tzinfo else at
    except ValueError:
        problems[name] = f"{name} 不是 ISO 8601 时间（如 2026-11-21T08:00:00+08:00）"
    except OverflowError:
        problems[name] = f"{name} 超出可用的时间范围"
    return None


#: The columns a listed request shows (a Core select: no ORM objects for a list of up to 1,000).
_LISTED = (
    Event.id,
    Event.status,
    Event.category,
    Event.description,
    Event.title,
    Event.reported_at,
    Event.updated_at,
    Event.due_at,
    Event.lat,
    Event.lon,
    Event.urgency,
)


def _row(e, grid: str, department: str | None) -> dict[str, Any]:
    """One request as GeoReport v2 shows it; ``e`` has the :data:`_LISTED` columns by name."""
    status = EventStatus(e.status)
    return {
        "service_request_id": str(e.id),
        "status": "open" if status in OPEN_STATUSES else "closed",
        "status_notes": status.label,
        "service_name": EventCategory(e.category).label,
        "service_code": EventCategory(e.category).value,
        "description": public_text(e.description or e.title),
        "agency_responsible": department,
        "service_notice": None,
        "requested_datetime": stamp(e.reported_at),
        "updated_datetime": stamp(e.updated_at),
        "expected_datetime": stamp(e.due_at) if status in OPEN_STATUSES else None,
        "address": grid,
        "address_id": None,
        "zipcode": None,
        "lat": round(e.lat, 3),
        "long": round(e.lon, 3),
        "media_url": None,
        # extensions (documented in docs/open311.md and the OpenAPI document)
        "cockpit_status": status.value,
        "cockpit_status_label": status.label,
        "level": Urgency(e.urgency).label,
        "department": department,
    }


def find_requests(
    conn: Connection,
    channel: Channel,
    *,
    ids: list[int] | None = None,
    service_codes: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    status: str | None = None,
    updated_after: datetime | None = None,
    after_id: int | None = None,
    limit: int = MAX_LIST,
) -> list[dict[str, Any]]:
    """The requests in the key's area matching the filters (at most ``limit``): newest first; with
    ``updated_after`` (status sync), the changes at or after that second, oldest change first, so a
    client pages by asking again from the last row's ``updated_datetime``. Times are kept to the second:
    that second is answered again (a change stored later in the same second is not missed; the client
    keeps each id once). ``after_id``: of that second, only the ids above it — for a page that came back
    full within one second."""
    scope = user_scope(conn, channel.as_user())
    q = (
        select(*_LISTED, AdminUnit.name.label("grid_name"), Department.name.label("department_name"))
        .join(AdminUnit, AdminUnit.id == Event.grid_id)
        .outerjoin(Department, Department.id == Event.lead_department_id)
        .where(*scope.where(by_time=start is not None or updated_after is not None))
    )
    if ids is not None:
        q = q.where(Event.id.in_(ids or [-1]))
    if service_codes:
        q = q.where(Event.category.in_([EventCategory(c) for c in service_codes]))
    if start is not None:
        q = q.where(Event.reported_at >= start)
    if end is not None:
        q = q.where(Event.reported_at <= end)
    if updated_after is not None and after_id is not None:
        q = q.where(
            or_(
                Event.updated_at > updated_after,
                and_(Event.updated_at == updated_after, Event.id > after_id),
            )
        )
    elif updated_after is not None:
        q = q.where(Event.updated_at >= updated_after)
    if status == "open":
        q = q.where(Event.status.in_(OPEN_STATUSES))
    elif status == "closed":
        q = q.where(Event.status.not_in(OPEN_STATUSES))
    if updated_after is not None:
        q = q.order_by(Event.updated_at, Event.id)
    else:
        q = q.order_by(Event.reported_at.desc(), Event.id.desc())
    return [_row(r, r.grid_name, r.department_name) for r in conn.execute(q.limit(limit))]


def find_request(conn: Connection, channel: Channel, request_id: int) -> dict[str, Any] | None:
    rows = find_requests(conn, channel, ids=[request_id], limit=1)
    return rows[0] if rows else None


__all__ = [
    "FieldProblems",
    "file_prepared",
    "file_request",
    "find_request",
    "find_requests",
    "prepare_request",
    "service_definition",
    "service_list",
]
