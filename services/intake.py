"""Intake of reports (随手拍, 网格员上报): validate, strip the photo's EXIF, place in a grid, flag or merge
duplicates, and keep the anonymous channel within its rate limits.

A submission may carry a client's key (提交编号, :mod:`services.submissions`): a retried or double-clicked
submission returns the first one's event and writes nothing. Anonymous reports (source 随手拍) are
limited per browser session and per phone number from what the store holds (:func:`load_rate_limits`).
A new report near an open one (same category, ≤ 50 m, ≤ 24 h) is stored with ``duplicate_of_id`` set to
it, for staff to merge (:func:`merge_flagged`). Photos are refused from their header above
:data:`domain.intake.MAX_PHOTO_PIXELS`, then decoded one at a time (:func:`strip_metadata`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Insert,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from db.direct import Direct, bound_columns, in_transaction, one_of
from db.models import Attachment, AuditLog, Event, EventTransition, Submission
from db.uow import UnitOfWork
from domain.access import CurrentUser, may_act
from domain.deadlines import DeadlineRules
from domain.event_flow import Action, next_status
from domain.intake import (
    DUPLICATE_WINDOW,
    HEIF_MIME,
    MAX_JPEG_PIXELS,
    MAX_STORED_BYTES,
    InvalidReport,
    OpenEvent,
    RateLimit,
    RateLimits,
    ReportForm,
    check_form,
    check_photo,
    key_problem,
    pixel_problem,
    possible_duplicates,
    retry_at,
    stored_mime,
    too_often,
)
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource, EventStatus, Urgency
from geo.crs import distance_m
from services import api_keys, audit, settings, submissions
from services.access import event_in_scope, out_of_scope
from services.event_rules import (
    DEADLINES_TEXT,
    deadlines_from,
    load_rules,
    stage_deadline,
    stage_deadline_under,
)
from services.events import SYSTEM, Actor, apply_action, reported_entry
from services.locate import OutsideArea, grids_near, locate_grid, village_of

log = logging.getLogger("intake")

# ~0.001° is > 50 m in every direction at Chinese latitudes: a cheap box before the exact distance.
BOX_DEG = 0.001
PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", HEIF_MIME: "HEIF"}
MIME_OF = {fmt: mime for mime, fmt in PIL_FORMAT.items()}
# Pillow opens HEIC/HEIF through pillow-heif (libheif); such a photo is stored as a JPEG (decision 0055).
pillow_heif.register_heif_opener()
#: The submissions kind of a report (its key is unique per kind).
KIND = "event.report"
#: Where the 随手拍 rate limits are kept (``settings``), as {"session": [[count, minutes], ...], "phone": ...}.
RATE_LIMITS_KEY = "intake.rate_limits"
#: Photos are stored at most this many pixels on their long edge (a phone's 12 Mpx photo is 4032 wide).
MAX_STORED_EDGE = 4096
#: Pillow's own guard, process-wide: it warns above this many pixels and refuses twice as many. The
#: header check (:func:`domain.intake.check_photo`) and the size check below refuse earlier still.
Image.MAX_IMAGE_PIXELS = MAX_JPEG_PIXELS
#: One photo decodes at a time per process: a 40 Mpx RGBA PNG takes ~1.6 s and ~450 MB at its peak.
DECODERS = threading.BoundedSemaphore(1)
DECODE_WAIT_S = 30.0


def strip_metadata(data: bytes, mime: str) -> bytes:
    """The image re-encoded without EXIF (GPS, device), turned upright, at most :data:`MAX_STORED_EDGE`
    pixels on its long edge, as :func:`domain.intake.stored_mime` says (a HEIC/HEIF photo becomes a
    JPEG; the others keep their type). Every failure (too many pixels, truncated, not the image it claims, not an
    image) is an :class:`InvalidReport` in Chinese; nothing else escapes."""
    if not DECODERS.acquire(timeout=DECODE_WAIT_S):
        raise InvalidReport({"照片": "图片处理繁忙，请稍后重试"})
    try:
        out = _reencode(data, PIL_FORMAT[mime])
    except InvalidReport:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidReport({"照片": f"图片像素过大，上限 {MAX_JPEG_PIXELS // 1_000_000} 百万像素"}) from exc
    except UnidentifiedImageError as exc:
        raise InvalidReport({"照片": "图片内容与文件类型不符，无法读取"}) from exc
    except MemoryError as exc:
        raise InvalidReport({"照片": "图片过大，无法处理，请缩小后重试"}) from exc
    except (
        Exception
    ) as exc:  # truncated data, broken chunks: Pillow raises OSError, SyntaxError, ValueError …
        raise InvalidReport({"照片": "图片已损坏或不完整，无法读取"}) from exc
    finally:
        DECODERS.release()
    if len(out) > MAX_STORED_BYTES:
        raise InvalidReport({"照片": f"图片处理后仍超过 {MAX_STORED_BYTES // 1048576} MB，请压缩后重试"})
    return out


def _reencode(data: bytes, fmt: str) -> bytes:
    with Image.open(io.BytesIO(data), formats=[fmt]) as img:
        # Pillow read the header only: its own idea of the size is checked before anything decodes.
        if (problem := pixel_problem(*img.size, mime=MIME_OF[fmt])) is not None:
            raise InvalidReport({"照片": problem})
        if fmt == "JPEG":  # decode at 1/2, 1/4 … of the size when that still covers the stored size
            scale = min(1.0, MAX_STORED_EDGE / max(img.size))
            img.draft(img.mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
        img.load()
        img.thumbnail((MAX_STORED_EDGE, MAX_STORED_EDGE))
        upright = ImageOps.exif_transpose(img)
        out = io.BytesIO()
        kept = PIL_FORMAT[stored_mime(MIME_OF[fmt])]
        if kept == "JPEG" and upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        upright.save(out, kept, **({"quality": 90} if kept == "JPEG" else {}))
    return out.getvalue()


# -- rate limits of the anonymous channel -----------------------------------------------------------


def load_rate_limits(conn: Connection) -> RateLimits:
    """The 随手拍 limits an administrator set (``settings``), else the defaults of :class:`RateLimits`."""
    raw = settings.read(conn, RATE_LIMITS_KEY)
    if raw is None:
        return RateLimits()
    try:
        return _limits_from(json.loads(raw))
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("intake.rate_limits unreadable (%s): the defaults apply", exc)
        return RateLimits()


def _limits_from(value: dict) -> RateLimits:
    def rules(pairs) -> tuple[RateLimit, ...]:
        out = tuple(RateLimit(int(n), timedelta(minutes=int(m))) for n, m in pairs)
        if any(r.count < 1 or not timedelta(minutes=1) <= r.window <= timedelta(days=7) for r in out):
            raise ValueError("每条限制须至少 1 次，时间窗 1 分钟至 7 天")
        return out

    defaults = RateLimits()
    return RateLimits(
        session=rules(value["session"]) if "session" in value else defaults.session,
        phone=rules(value["phone"]) if "phone" in value else defaults.phone,
    )


def save_rate_limits(
    uow: UnitOfWork, limits: dict, *, now: datetime, user: CurrentUser | None = None
) -> None:
    """Store the 随手拍 limits ({"session": [[count, minutes], ...], "phone": [...]}); ``user`` needs
    ``edit_rules`` (logged). A bad value is refused in Chinese and nothing is stored."""
    if user is not None and not user.may("edit_rules"):
        raise out_of_scope(user, "edit intake rate limits", None, "只有系统管理员可以修改上报频率限制")
    try:
        checked = _limits_from(limits)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidReport({"上报频率限制": f"格式应为 [[次数, 分钟], …]：{exc}"}) from exc
    value = {
        "session": [[r.count, int(r.window.total_seconds() // 60)] for r in checked.session],
        "phone": [[r.count, int(r.window.total_seconds() // 60)] for r in checked.phone],
    }
    with uow.begin("intake.rate_limits"):
        settings.write(
            uow.conn, RATE_LIMITS_KEY, json.dumps(value), now, actor=user, action="intake.rate_limits"
        )
        uow.commit()


def _check_rate(conn: Connection, origin: str | None, phone: str, now: datetime) -> None:
    """Refuse (:class:`domain.intake.RateLimited`, saying when to try again) a report over the limits:
    per browser session from the stored submissions, per phone number from the stored events."""
    if not origin and not phone:
        return
    limits = load_rate_limits(conn)
    checks: list[tuple[str, tuple[RateLimit, ...], list[datetime]]] = []
    if origin and limits.session:
        since = now - max(r.window for r in limits.session)
        checks.append(("本设备", limits.session, submissions.times_from(conn, KIND, origin, since)))
    if phone and limits.phone:
        since = now - max(r.window for r in limits.phone)
        reported = conn.execute(
            select(Event.reported_at).where(
                Event.reporter_phone == phone,
                Event.source == EventSource.CITIZEN,
                Event.reported_at > since,
            )
        ).scalars()
        checks.append(("同一手机号", limits.phone, list(reported)))
    for who, rules, times in checks:
        for rule in rules:
            when = retry_at(times, rule, now)
            if when is not None:
                raise too_often(who, rule, when, now)


# -- duplicates ---------------------------------------------------------------------------------------


# The duplicate search, built once. Bounded by the (grid, reported_at) index: only the last day's rows of
# the few grids whose box meets the 50 m box around the report (services.locate.grids_near), however many
# reports the day has had elsewhere. "+ 0" keeps SQLite off the merged_into index (true of most rows).
# The open statuses are written into the statement: its text, and its prepared plan, are the same each time.
# "|| ''" keeps PostgreSQL off the partial index of open events' due times (ix_events_timed_due), whose
# predicate those statuses match: ANDed with the grid index it read ~8,000 index entries a report (town
# store: 0.37–0.97 ms a search, 0.17 ms without).
def _nearby(dialect: str) -> Select:
    columns = (
        Event.id,
        Event.category,
        Event.lon,
        Event.lat,
        Event.reported_at,
        Event.title,
        Event.reporter_count,
    )
    conditions = (
        Event.category == bindparam("category"),
        Event.status.op("||")(literal_column("''")).in_(
            [literal_column(f"'{s.value}'", String) for s in sorted(OPEN_STATUSES)]
        ),
        (Event.merged_into_id + 0).is_(None),
        Event.lon.between(bindparam("lon_lo"), bindparam("lon_hi")),
        Event.lat.between(bindparam("lat_lo"), bindparam("lat_hi")),
    )
    if dialect != "postgresql":
        grids = one_of(Event.grid_id, "grids")[dialect]
        return select(*columns).where(grids, Event.reported_at >= bindparam("since"), *conditions)

    # PostgreSQL (decision 0061): one search per grid. With the grids as one list, the planner weighed the
    # (grid, reported_at) index against the reported_at index by its statistics, which never count the
    # rows reported since the last ANALYZE: it took the reported_at index and read every report of the
    # store's last day (12,570 rows for 3 grids' 6), more of them as the day filled. Per grid, the grid is
    # an equality the planner weighs at an average grid's share, and OFFSET 0 keeps each search a loop of
    # its own (no hash join over the day's rows). The grids and the window [since, until] are read by
    # one-row subqueries, so that the index chosen does not depend on them: the prepared statement's
    # generic plan then costs what one made for the values would, and PostgreSQL keeps it instead of
    # planning every search again (0.17 ms of the server's CPU a report). With events in fewer than ~45
    # grids the time index still wins each loop (decision 0061 gives the figures).
    def hidden(name: str, type_: Any) -> Any:
        return select(cast(bindparam(name), type_)).scalar_subquery()

    grid = (
        func.unnest(hidden("grids", postgresql.ARRAY(BigInteger)))
        .table_valued("id")
        .render_derived(name="grid")
    )
    window = Event.reported_at.between(hidden("since", DateTime), hidden("until", DateTime))
    per_grid = (
        select(*columns)
        .where(Event.grid_id == grid.c.id, window, *conditions)
        .offset(literal_column("0"))
        .lateral("near")
    )
    return select(*per_grid.c).select_from(grid.join(per_grid, true()))


def _with_deadlines(nearby: Select, key: bool = False) -> Select:
    """``nearby`` with the deadline rules' text beside it, in one statement (one row with no event when none
    is near): a report read ahead takes one round trip for both. ``key``: whether the API key's row still
    reads as remembered, unrevoked, as well (services.api_keys.unchanged_clause; decision 0059: an API
    POST whose channel was taken from memory)."""
    rows = nearby.subquery("nearby")
    live = [api_keys.unchanged_clause().label("key_live")] if key else []
    return select(DEADLINES_TEXT.label("deadlines"), *rows.c, *live).select_from(
        select(literal_column("1").label("one")).subquery("one").outerjoin(rows, true())
    )


#: The dialects the duplicate search is built for: the grids are bound as one parameter (db.direct runs no
#: expanding IN, decision 0058).
_DIALECTS = ("postgresql", "sqlite")
#: The duplicate search run on the driver (db.direct), alone (a batch's report, checked in its
#: transaction) or with the deadline rules (a report read ahead), by dialect.
_NEAR = {name: Direct(_nearby(name)) for name in _DIALECTS}
_NEAR_AND_DEADLINES = {name: Direct(_with_deadlines(_nearby(name))) for name in _DIALECTS}
#: The same with the API key's check (:func:`nearby_and_deadlines` with ``api_key``).
_NEAR_DEADLINES_AND_KEY = {name: Direct(_with_deadlines(_nearby(name), key=True)) for name in _DIALECTS}


class _Near(NamedTuple):
    """A row of :data:`_NEAR_AND_DEADLINES` (the event's columns are None when none is near; without the
    rules, a row of :data:`_NEAR`)."""

    deadlines: str | None
    id: int | None
    category: str
    lon: float
    lat: float
    reported_at: datetime
    title: str
    reporter_count: int
    #: Read with the API key's check: whether the key is unrevoked.
    key_live: bool | None = None


def _near_params(grids: list[int], category: str, lon: float, lat: float, now: datetime) -> dict[str, Any]:
    return {
        "grids": grids,
        "category": EventCategory(category),
        "since": now - DUPLICATE_WINDOW,
        "until": now,
        "lon_lo": lon - BOX_DEG,
        "lon_hi": lon + BOX_DEG,
        "lat_lo": lat - BOX_DEG,
        "lat_hi": lat + BOX_DEG,
    }


def find_duplicates(
    conn: Connection | Session, category: str, lon: float, lat: float, now: datetime
) -> list[tuple[OpenEvent, float]]:
    """Open events that may be the same matter: same category, within 50 m and 24 h, with their distance."""
    if isinstance(conn, Session):
        conn = conn.connection()
    grids = grids_near(conn, lon, lat, BOX_DEG)
    if not grids:
        return []
    rows = [
        _Near(None, *r)
        for r in _NEAR[conn.dialect.name].rows(conn, _near_params(grids, category, lon, lat, now))
    ]
    return _duplicates_among(rows, category, lon, lat, now)


def nearby_and_deadlines(
    conn: Connection,
    category: str,
    lon: float,
    lat: float,
    now: datetime,
    api_key: api_keys.KeyStamp | None = None,
) -> tuple[list[tuple[OpenEvent, float]], DeadlineRules]:
    """:func:`find_duplicates` and the deadline rules (``load_rules(conn)[1]``) in one statement.
    ``api_key``: an API key's row as remembered, checked in the same statement
    (services.api_keys.KeyChanged)."""
    grids = grids_near(conn, lon, lat, BOX_DEG)
    if not grids:
        _check_key(conn, api_key)
        return [], load_rules(conn)[1]
    params = _near_params(grids, category, lon, lat, now)
    if api_key is None:
        rows = [_Near(*r) for r in _NEAR_AND_DEADLINES[conn.dialect.name].rows(conn, params)]
    else:
        params |= api_keys.stamp_params(api_key)
        rows = [_Near(*r) for r in _NEAR_DEADLINES_AND_KEY[conn.dialect.name].rows(conn, params)]
        if not rows[0].key_live:
            raise api_keys.KeyChanged(api_key.key_id)
    found = [r for r in rows if r.id is not None]
    return _duplicates_among(found, category, lon, lat, now), deadlines_from(rows[0].deadlines)


def _check_key(conn: Connection, api_key: api_keys.KeyStamp | None) -> None:
    """Raise services.api_keys.KeyChanged unless ``api_key`` (when given) still reads as remembered."""
    if api_key is not None and not api_keys.unchanged(conn, {api_key}):
        raise api_keys.KeyChanged(api_key.key_id)


def _duplicates_among(
    rows: Sequence[Any], category: str, lon: float, lat: float, now: datetime
) -> list[tuple[OpenEvent, float]]:
    """The possible duplicates among the open events ``rows`` read near (lon, lat), with their distance."""
    if not rows:
        return []
    # One call for every row's distance (a scalar call per row was ~40 % of the search's time).
    metres = distance_m(lon, lat, [r.lon for r in rows], [r.lat for r in rows]).tolist()
    nearby = [
        (
            OpenEvent(
                r.id, EventCategory(r.category).value, r.lon, r.lat, r.reported_at, r.title, r.reporter_count
            ),
            d,
        )
        for r, d in zip(rows, metres, strict=True)
    ]
    return possible_duplicates(category, now, nearby)


def submit_report(
    uow: UnitOfWork,
    form: ReportForm,
    *,
    now: datetime,
    source: EventSource = EventSource.CITIZEN,
    actor: Actor = SYSTEM,
    photo: bytes | None = None,
    merge_into: int | None = None,
    submission_key: str | None = None,
    origin: str | None = None,
) -> Event:
    """Store a report as a new event (or as a duplicate merged into ``merge_into``), with its photo.

    ``submission_key``: the client's key for this submission (a form's once-per-display key, an API's
    Idempotency-Key). Sent again, the first call's event is returned and nothing is written; sent with
    other content, :class:`services.submissions.KeyReused`. ``origin``: the submitting browser session
    (any stable text; only its digest is stored), counted by the 随手拍 rate limit per session.

    A new event within 50 m and 24 h of an open one of its category is flagged ``duplicate_of_id`` (the
    nearest) for staff to merge. Raises :class:`InvalidReport` (every bad field at once; a
    :class:`domain.intake.RateLimited` when the anonymous channel's limits are reached) or
    :class:`services.locate.OutsideArea`; nothing is written then.
    """

    def prepared(reader: Connection | None = None) -> Report:
        return prepare_report(
            uow,
            form,
            now=now,
            source=source,
            actor=actor,
            photo=photo,
            merge_into=merge_into,
            submission_key=submission_key,
            origin=origin,
            reader=reader,
            read_ahead=True,
        )

    if not uow.one_writer and photo is None and merge_into is None and not counted(source, origin, form):
        # PostgreSQL: read on a connection whose statements commit themselves, then the rows in one
        # statement (decision 0057)
        with uow.reader() as conn:
            return write_at_once(conn, prepared(conn))
    if uow.one_writer:  # SQLite: everything that only reads, before the one write lock (decision 0041)
        report = prepared()
    with uow.begin("intake.submit"):
        if not uow.one_writer:
            # A server store: checked and read in the write transaction itself, on its one connection
            # (decision 0054: one checkout and one commit a report; no read transaction ending in a
            # ROLLBACK, which makes psycopg drop its prepared statements).
            report = prepared(uow.conn)
        event = write_report(uow.session, report)
        if uow.audited:  # a new report (a retry of a stored one wrote nothing)
            uow.commit()
        return event


def counted(source: EventSource, origin: str | None, form: ReportForm) -> bool:
    """Whether the 随手拍 rate limits count a report: an anonymous one from a browser session or a phone."""
    return source is EventSource.CITIZEN and bool(origin or form.reporter_phone.strip())


def writes_at_once(report: Report) -> bool:
    """Whether :func:`write_at_once` can write ``report`` (read ahead): no photo, no merge, not counted by
    the rate limits. Others take :func:`write_report` in a transaction."""
    return (
        report.clean is None
        and report.merge_into is None
        and not report.limited
        and report.deadlines is not None
        and (report.nearby is not None)
    )


def write_at_once(conn: Connection, r: Report) -> Event:
    """PostgreSQL: a prepared report (:func:`writes_at_once`) written by one statement
    (:func:`_report_at_once`), atomic by itself: ``conn`` needs no transaction around it (a
    :func:`db.uow.reading` connection commits each statement). A key stored before returns its first
    event and writes nothing, as :func:`write_report` does."""
    if not writes_at_once(r):
        raise ValueError("write_at_once: a report with a photo, a merge or a rate limit takes write_report")
    key = r.key()
    new = r.as_new(r.nearby[0][0].id if r.nearby else None)
    try:
        values, first_step = report_rows(conn, new, r.deadlines)
    except OutsideArea:
        # A retry of a stored report returns its event, as write_report's claim-first order does,
        # even when a boundary replaced since has left its point outside every grid.
        first = submissions.find(conn, KIND, key, r.fingerprint) if key else None
        if first is None:
            raise
        with Session(conn) as s:
            return _first_event(s, first)
    event = Event(**values)
    row = audit.entry(**reported_entry(new.actor, event, new.duplicate_of_id), reason=None, at=None)
    params = _row_params(values, first_step) | audit.link_values(row)
    if key:
        params |= {"k_kind": KIND, "k_key": key, "k_fingerprint": r.fingerprint, "k_origin": r.seen_from}
        params["k_created_at"] = r.now
    statement, bound = _at_once_statement(params)
    written = statement.rows(conn, bound)
    event_id = written[0][0] if written else None
    if event_id is None:  # the key was taken: a retry, or a twin that committed first
        with Session(conn) as s:
            return _taken(s, key or "", r.fingerprint)
    event.id = int(event_id)
    return event


def _taken(s: Session, key: str, fingerprint: str) -> Event:
    """The first event of a submission key found taken (sent before, or a twin committed it first)."""
    first = submissions.find(s.connection(), KIND, key, fingerprint)
    if first is None:
        raise RuntimeError(f"submission key {key} neither free nor stored")
    return _first_event(s, first)


@dataclass(frozen=True)
class Report:
    """A report checked and ready to write (:func:`prepare_report`): what :func:`write_report` needs."""

    form: ReportForm
    lon: float
    lat: float
    now: datetime
    source: EventSource
    actor: Actor
    merge_into: int | None
    submission_key: str | None
    fingerprint: str
    seen_from: str | None
    clean: bytes | None
    photo_type: str | None
    #: Read before the write transaction (``prepare_report(read_ahead=True)``): the open reports this one
    #: may repeat, and the deadline rules. None: :func:`write_report` reads them in its transaction.
    nearby: list[tuple[OpenEvent, float]] | None = None
    deadlines: DeadlineRules | None = None
    #: The API key the report came with, as read when its channel was taken from memory: a batch checks
    #: in its transaction that its row still reads so (services.api_keys.unchanged, decision 0059).
    api_key: api_keys.KeyStamp | None = None

    @property
    def core_only(self) -> bool:
        """Whether its rows are written by Core statements alone (no photo, no merge)."""
        return self.clean is None and self.merge_into is None

    @property
    def limited(self) -> bool:
        """Whether the 随手拍 rate limits count this report (:func:`counted`)."""
        return counted(self.source, self.seen_from, self.form)

    def key(self) -> str | None:
        """The submission key to claim: the client's, or a new one for a report from a browser session
        (its row keeps the session's digest, which the rate limits count); None: nothing to claim."""
        return self.submission_key or (uuid.uuid4().hex if self.seen_from else None)

    def as_new(self, duplicate_of_id: int | None) -> NewReport:
        """The facts :func:`add_report` writes for this report, flagged as ``duplicate_of_id``'s duplicate."""
        form = self.form
        return NewReport(
            source=self.source,
            category=EventCategory(form.category),
            title=form.title,
            description=form.description.strip(),
            lon=self.lon,
            lat=self.lat,
            now=self.now,
            actor=self.actor,
            reporter_name=form.reporter_name.strip() or None,
            reporter_phone=form.reporter_phone.strip() or None,
            duplicate_of_id=duplicate_of_id,
        )


def prepare_report(
    uow: UnitOfWork,
    form: ReportForm,
    *,
    now: datetime,
    source: EventSource = EventSource.CITIZEN,
    actor: Actor = SYSTEM,
    photo: bytes | None = None,
    merge_into: int | None = None,
    submission_key: str | None = None,
    origin: str | None = None,
    reader: Connection | None = None,
    read_ahead: bool = False,
    api_key: api_keys.KeyStamp | None = None,
) -> Report:
    """Everything of :func:`submit_report` that needs no transaction: the field checks (every bad field
    at once, :class:`InvalidReport`), the photo checked and stripped, the fingerprint of the content, the
    point located (kept by services.locate, so the writer's turn finds it).

    ``read_ahead``: also read the open reports this one may repeat and the deadline rules now, so that the
    write transaction holds SQLite's one write lock only to write (decision 0041: ~0.8 ms of a ~1.6–2.8 ms
    turn). A report committed by another writer in between is not seen as its duplicate, as on
    PostgreSQL, where two concurrent transactions never see each other's report either. A group commit
    (:class:`GroupCommit`) does not read ahead: a report there is checked against those before it in
    its batch. ``api_key``: the API key whose channel the caller took from memory, as read; checked by the
    read ahead when there is one (services.api_keys.KeyChanged), and by a batch (:attr:`Report.api_key`)."""
    problems = check_form(form)
    if (bad_key := key_problem(submission_key)) is not None:
        problems["提交编号"] = bad_key
    try:
        mime = check_photo(photo)
    except InvalidReport as exc:
        problems |= exc.problems
        mime = None
    if problems or form.lon is None or form.lat is None:
        raise InvalidReport(problems)
    lon, lat = float(form.lon), float(form.lat)
    clean = strip_metadata(photo, mime) if photo is not None and mime else None
    photo_type = stored_mime(mime) if clean is not None and mime else None
    # The form's fields are plain values: a copy of them is what dataclasses.asdict gives, at half the cost.
    fingerprint = submissions.digest(
        {"form": dict(vars(form)), "photo": photo, "source": source, "actor": actor.user_id}
    )
    nearby, deadlines = None, None
    with nullcontext(reader) if reader is not None else uow.reader() as conn:
        # The caller's read connection when given (one pooled connection per request).
        locate_grid(conn, lon, lat)
        if read_ahead and merge_into is None:
            nearby, deadlines = nearby_and_deadlines(conn, form.category, lon, lat, now, api_key)
        elif read_ahead:
            _check_key(conn, api_key)
            deadlines = load_rules(conn)[1]
    return Report(
        form,
        lon,
        lat,
        now,
        source,
        actor,
        merge_into,
        submission_key,
        fingerprint,
        submissions.origin_digest(origin),
        clean,
        photo_type,
        nearby,
        deadlines,
        api_key,
    )


def write_report(
    s: Session, report: Report, deadlines: DeadlineRules | None = None, conn: Connection | None = None
) -> Event:
    """The rows of a prepared report in the caller's transaction (``s``: the unit of work's session): the
    submission key claimed, the rate limits, the duplicate flag or the merge, the event with its trail
    and audit rows, the photo, the key settled. A key stored before returns its first event and writes
    nothing. Raises as :func:`submit_report` does; the caller rolls back (a batch: its savepoint).
    ``deadlines``: the rules as read in this transaction (a batch reads them once for all its reports),
    when the report did not read them ahead. ``conn``: the session's connection, when the caller has it."""
    conn = conn if conn is not None else s.connection()
    r, form = report, report.form
    # A report the rate limits count finds its first event before they count it again; any other
    # claims its key first (one statement for a new key) and looks for the first call only when taken.
    if (
        r.submission_key
        and r.limited
        and (first := submissions.find(conn, KIND, r.submission_key, r.fingerprint))
    ):
        return _first_event(s, first)
    if r.limited:
        _check_rate(conn, r.seen_from, form.reporter_phone.strip(), r.now)
    key = r.key()
    if key and not submissions.claim(conn, KIND, key, r.fingerprint, r.now, r.seen_from):
        return _taken(s, key, r.fingerprint)
    target_before, flagged = None, None
    if r.merge_into is not None:
        target_before = _count_reporter(s, form.category, r.lon, r.lat, r.merge_into, r.now)
    else:
        nearby = (
            r.nearby if r.nearby is not None else find_duplicates(conn, form.category, r.lon, r.lat, r.now)
        )
        flagged = nearby[0][0].id if nearby else None
    event = add_report(conn, r.as_new(flagged), r.deadlines if r.deadlines is not None else deadlines)
    if r.merge_into is not None:
        _merge(s, event.id, r.merge_into, target_before, r.actor, r.now)
    if r.clean is not None and r.photo_type is not None:
        attach_photo(s, event.id, r.clean, r.photo_type, r.actor, r.now)
    if r.merge_into is not None or r.clean is not None:
        s.flush()
    if key:
        submissions.settle(conn, KIND, key, event.id, {"event_id": event.id, "merged_into": r.merge_into})
    if r.merge_into is not None:  # the stored row as the merge left it (merged_into_id, status)
        event = s.get(Event, event.id) or event
        s.refresh(event)
        s.expunge(event)  # as loaded now, whatever a later savepoint of the same session undoes
    return event


# -- group commit (decision 0035) ---------------------------------------------------------------------


_SAVEPOINT = Direct(text("SAVEPOINT intake_report"))
_ROLLBACK_TO = Direct(text("ROLLBACK TO SAVEPOINT intake_report"))
_RELEASE = Direct(text("RELEASE SAVEPOINT intake_report"))


@contextmanager
def _savepoint(conn: Connection) -> Iterator[None]:
    """A batch's savepoint for a report written by Core statements only (no photo, no merge), sent on
    the driver (db.direct): the session's own (``begin_nested``) compiles and tracks one each time,
    ~10 % of a batch's CPU. The session never sees this report's rows, so it has nothing to forget
    when the savepoint is rolled back. When the store has rolled the whole transaction back on its
    own, or the connection is lost, there is nothing to roll back to: the error goes on as it is, and
    :meth:`GroupCommit.run` fails the whole batch."""
    _SAVEPOINT.run(conn, {})
    try:
        yield
    except BaseException:
        if in_transaction(conn):
            try:
                _ROLLBACK_TO.run(conn, {})
                _RELEASE.run(conn, {})
            except Exception:  # failed in turn: the report's own error is the one to tell
                log.warning("intake: a report's savepoint could not be rolled back", exc_info=True)
        raise
    _RELEASE.run(conn, {})


class _Pending:
    """One report waiting for its batch: its outcome is set once the batch's transaction has ended."""

    __slots__ = ("done", "error", "event", "report")

    def __init__(self, report: Report) -> None:
        self.report = report
        self.event: Event | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit:
    """Concurrent reports of one process written in one transaction (decision 0035).

    Each caller prepares its report itself (:func:`prepare_report`: checks, photo, locate), then queues it.
    Whoever finds no batch in flight writes everything queued so far (at most :attr:`most`), each report
    in a savepoint of its own: one that fails (a merge no longer allowed, a store error) is rolled back
    alone and its caller gets its error, the others are kept. Each report keeps its own rows: its
    submission key, event, trail row and audit row, in queue order in the chain. Every caller is answered
    after the commit (a failed commit: every caller of the batch gets that error, nothing was stored).
    While a batch commits, the next gathers: no waiting when the store is idle.
    """

    def __init__(self, engine, most: int = 64) -> None:
        self.engine = engine
        self.most = most
        self._queue: list[_Pending] = []
        self._busy = False
        self._turn = threading.Condition()
        #: Batches written and reports in them (the bench reads them).
        self.batches = 0
        self.reports = 0

    def submit_report(self, form: ReportForm, **kw) -> Event:
        """:func:`submit_report` through the batch: the same arguments, the same answer and errors."""
        report = prepare_report(UnitOfWork(self.engine), form, **kw)
        return self.write(report)

    def write(self, report: Report) -> Event:
        """Queue a prepared report and wait for its batch's commit; its event, or its error raised."""
        item = _Pending(report)
        with self._turn:
            self._queue.append(item)
        while True:
            with self._turn:
                while not item.done and self._busy:
                    self._turn.wait()
                if item.done:
                    break
                self._busy = True
                batch, self._queue = self._queue[: self.most], self._queue[self.most :]
            try:
                self.run(batch)
            finally:
                with self._turn:
                    self._busy = False
                    self._turn.notify_all()
        if item.error is not None:
            raise item.error
        assert item.event is not None
        return item.event

    def run(self, batch: list[_Pending]) -> None:
        """Write ``batch`` in one unit of work; mark each report done (after the commit).

        First without savepoints (decision 0059): a batch of reports written by Core statements alone
        (no photo, no merge) rarely meets an error, and a savepoint per report was two statements more
        for each. Should one fail, that transaction is rolled back whole and the batch written again with
        a savepoint per report (:meth:`_write`), so that the failing report is refused alone."""
        try:
            if not (all(item.report.core_only for item in batch) and self._write(batch, savepoints=False)):
                self._write(batch, savepoints=True)
        except Exception as exc:  # the transaction itself failed: nothing of the batch was stored
            for item in batch:
                if item.error is None:
                    item.error, item.event = exc, None
        finally:
            for item in batch:
                item.done = True

    def _write(self, batch: list[_Pending], *, savepoints: bool) -> bool:
        """One transaction for ``batch``, committed when it holds a report (each attempt starts with the
        outcomes cleared). Without ``savepoints`` a report's error rolls everything back and returns
        False (nothing stored);
        with them the report alone is refused and the batch goes on. An error of the transaction itself
        is raised (nothing of the batch was stored)."""
        for item in batch:
            item.error, item.event = None, None
        uow = UnitOfWork(self.engine)
        with uow.begin("intake.submit_batch"):
            s = uow.session
            kept = 0
            conn = uow.conn
            rules = load_rules(conn)[1]  # once for the batch, in its transaction
            # the API keys taken from memory, checked as read and unrevoked once for the batch (0059)
            keys = {item.report.api_key for item in batch if item.report.api_key is not None}
            same = api_keys.unchanged(conn, keys) if keys else keys
            for item in batch:
                r = item.report
                if r.api_key is not None and r.api_key not in same:
                    item.error = api_keys.KeyChanged(r.api_key.key_id)
                    continue
                try:
                    if not savepoints:
                        item.event = write_report(s, r, rules, conn)
                    elif r.core_only:
                        with _savepoint(conn):
                            item.event = write_report(s, r, rules, conn)
                    else:
                        with s.begin_nested():
                            item.event = write_report(s, r, rules)
                    kept += 1
                except Exception as exc:
                    if not in_transaction(conn):
                        # the store rolled the whole transaction back (SQLite: a full disk, an I/O
                        # error) or the connection is lost: the reports before this one went with
                        # it, and any statement now would run outside the batch. Every caller is told.
                        raise
                    if not savepoints:  # rolled back on leaving the block; written again with them
                        return False
                    item.error, item.event = exc, None  # this report alone is refused; the batch goes on
            if uow.audited:
                uow.commit()
        self.batches += 1
        self.reports += kept
        return True


# -- the report's rows, in Core (intake is the busiest write path) ------------------------------------

_EVENT_COLUMNS = [c for c in Event.__table__.columns if c.name != "id"]
_STEP_COLUMNS = [c for c in EventTransition.__table__.columns if c.name not in ("id", "event_id")]
#: SQLite: the event and its first trail row, every column bound, run on the driver (db.direct).
_INSERT_EVENT = Direct(insert(Event).values(bound_columns(Event.__table__)).returning(Event.id))
_INSERT_STEP = Direct(insert(EventTransition).values(bound_columns(EventTransition.__table__)))
#: PostgreSQL: the event and its first trail row in one statement (a data-modifying CTE). Parameters:
#: ``e_<column>`` for every column of the event, ``t_<column>`` for the step's.
_NEW_EVENT = (
    insert(Event)
    .values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in _EVENT_COLUMNS})
    .returning(Event.id)
    .cte("new_event")
)
_INSERT_EVENT_AND_STEP = (
    insert(EventTransition)
    .from_select(
        ["event_id", *(c.name for c in _STEP_COLUMNS)],
        select(_NEW_EVENT.c.id, *(bindparam(f"t_{c.name}", type_=c.type) for c in _STEP_COLUMNS)),
    )
    .returning(EventTransition.event_id)
)


def _report_at_once(keyed: bool, nulls: frozenset[str]) -> Insert:
    """PostgreSQL: a report's rows in one statement (decision 0057): its submission key claimed (``keyed``),
    the event, its first trail row and its audit row chained by the store (:func:`services.audit.chained`).
    Returns the event's id, or no row when the key was taken (a retry, or a twin that committed first:
    nothing was written). Parameters: ``e_<column>`` for the event's, ``t_<column>`` for its trail row's,
    ``k_`` for the key's row and :func:`services.audit.link_values`; the columns named in ``nulls``
    (``e_venue_id``, ``a_before``, …) are written as NULL, not bound (:func:`_at_once_statement`)."""

    def value(prefix: str, column: Any) -> Any:
        name = f"{prefix}{column.name}"
        return null() if name in nulls else bindparam(name, type_=column.type)

    events = [value("e_", c) for c in _EVENT_COLUMNS]
    if keyed:
        # The event's id is drawn first, so the key's row holds it from the start: the claim decides
        # whether the event is written at all (ON CONFLICT DO NOTHING: a twin waits on the key's index
        # entry until the first commits, then inserts nothing).
        drawn = select(
            literal_column("nextval(pg_get_serial_sequence('events', 'id')::regclass)").label("id")
        ).cte("drawn")
        claim = (
            postgresql.insert(Submission)
            .from_select(
                ["kind", "key", "fingerprint", "origin", "created_at", "entity_id", "result_json"],
                select(
                    *(
                        value("k_", Submission.__table__.c[c])
                        for c in ("kind", "key", "fingerprint", "origin")
                    ),
                    value("k_", Submission.__table__.c.created_at),
                    drawn.c.id,
                    cast(
                        func.json_build_object(
                            literal_column("'event_id'"), drawn.c.id, literal_column("'merged_into'"), null()
                        ),
                        Text,
                    ),
                ),
            )
            .on_conflict_do_nothing(index_elements=["kind", "key"])
            .returning(Submission.entity_id)
            .cte("claim")
        )
        new_event = (
            insert(Event)
            .from_select(["id", *(c.name for c in _EVENT_COLUMNS)], select(claim.c.entity_id, *events))
            .returning(Event.id)
            .cte("new_event")
        )
    else:
        new_event = (
            insert(Event)
            .values(dict(zip((c.name for c in _EVENT_COLUMNS), events, strict=True)))
            .returning(Event.id)
            .cte("new_event")
        )
    first_step = insert(EventTransition).from_select(
        ["event_id", *(c.name for c in _STEP_COLUMNS)],
        select(new_event.c.id, *(value("t_", c) for c in _STEP_COLUMNS)),
    )
    # The rows the new ones refer to (the grid, the village, the event flagged, the actor…) are locked
    # FOR KEY SHARE before the chain's head, in the head's own condition (evaluated before its row is
    # locked). PostgreSQL checks a statement's foreign keys at its end, after the head: a merge that
    # holds the flagged event FOR UPDATE and then waits for the head would otherwise deadlock with it.
    # Every other use case locks its rows first and the head last; so does this statement now.
    held = [
        exists(
            select(literal_column("1"))
            .select_from(fk.column.table)
            .where(fk.column == bindparam(f"{prefix}{c.name}", type_=c.type))
            .with_for_update(read=True, key_share=True)
        )
        for prefix, columns in (("e_", _EVENT_COLUMNS), ("t_", _STEP_COLUMNS))
        for c in columns
        for fk in c.foreign_keys
        if f"{prefix}{c.name}" not in nulls
    ]
    event_id = select(new_event.c.id).scalar_subquery()
    return (
        audit.chained(
            event_id,
            when=and_(exists(select(new_event.c.id)), *held),
            nulls=frozenset(n[2:] for n in nulls if n.startswith("a_")),
        )
        .add_cte(first_step.cte("first_step"))
        .returning(AuditLog.entity_id)
    )


#: The statements built so far, by (keyed, the parameters written as NULL): a few shapes in all. Each runs
#: on the driver (db.direct, decision 0058): it carries its own audit row.
_AT_ONCE: dict[tuple[bool, frozenset[str]], Direct] = {}


def _at_once_statement(params: dict[str, Any]) -> tuple[Direct, dict[str, Any]]:
    """The statement for these parameters and the parameters it binds. The values that are NULL (most
    of a new report's columns) are written into the statement: psycopg keeps its conversion of a
    statement's placeholders only for statements with at most 50 parameters."""
    nulls = frozenset(k for k, v in params.items() if v is None)
    shape = ("k_key" in params, nulls)
    statement = _AT_ONCE.get(shape)
    if statement is None:
        statement = _AT_ONCE.setdefault(shape, Direct(_report_at_once(*shape)))
    return statement, {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class NewReport:
    """A report's facts as :func:`add_report` writes them (intake, the 12345/110 file import)."""

    source: EventSource
    category: EventCategory
    title: str
    lon: float
    lat: float
    now: datetime
    actor: Actor = SYSTEM
    description: str = ""
    reporter_name: str | None = None
    reporter_phone: str | None = None
    duplicate_of_id: int | None = None
    urgency: Urgency = Urgency.NORMAL
    address: str | None = None
    external_ref: str | None = None


def add_report(conn: Connection, r: NewReport, deadlines: DeadlineRules | None = None) -> Event:
    """:func:`services.events.add_event` in Core statements built once (intake, the 12345/110 file import):
    the same event row (owned by its grid's village, the stage deadline of the admin's rules, or of
    ``deadlines`` when the caller has read them), the same first trail row and the same audit row
    (``event.report``), in the caller's transaction; :class:`OutsideArea` outside every grid. Returns the
    event as a detached object (``tests/integration/test_intake_fast_path.py`` holds it equal to
    ``add_event``'s, row for row)."""
    values, first_step = report_rows(conn, r, deadlines)
    if conn.dialect.name == "postgresql":  # the event and its first trail row in one round trip
        event_id = int(conn.execute(_INSERT_EVENT_AND_STEP, _row_params(values, first_step)).scalar_one())
    else:
        event_id = int(_INSERT_EVENT.rows(conn, values)[0][0])
        _INSERT_STEP.run(conn, {"event_id": event_id, **first_step})
    event = Event(id=event_id, **values)
    audit.record(conn, **reported_entry(r.actor, event, r.duplicate_of_id, r.external_ref))
    return event


def _row_params(values: dict[str, Any], first_step: dict[str, Any]) -> dict[str, Any]:
    """An event's and its first trail row's values as the PostgreSQL statements bind them (``e_``, ``t_``)."""
    return {f"e_{k}": v for k, v in values.items()} | {f"t_{k}": v for k, v in first_step.items()}


def report_rows(
    conn: Connection, r: NewReport, deadlines: DeadlineRules | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new report's event row and first trail row (without its ``event_id``), as :func:`add_report`
    writes them; :class:`OutsideArea` outside every grid."""
    title = r.title.strip()
    if not title:
        raise ValueError("事件标题不能为空")
    grid_id = locate_grid(conn, r.lon, r.lat)
    if grid_id is None:
        raise OutsideArea(r.lon, r.lat)
    status = next_status(None, Action.REPORT)
    urgency = Urgency(r.urgency)
    owner = village_of(conn, grid_id) or grid_id
    values = {
        "source": EventSource(r.source),
        "category": EventCategory(r.category),
        "title": title[:200],
        "description": r.description,
        "lon": r.lon,
        "lat": r.lat,
        "address": r.address,
        "grid_id": grid_id,
        "venue_id": None,
        "status": status,
        "urgency": urgency,
        "owner_unit_id": owner,
        "lead_department_id": None,
        "reporter_name": r.reporter_name,
        "reporter_phone": r.reporter_phone,
        "reporter_count": 1,
        "merged_into_id": None,
        "duplicate_of_id": r.duplicate_of_id,
        "external_ref": r.external_ref,
        "reported_at": r.now,
        "accepted_at": None,
        "dispatched_at": None,
        "resolved_at": None,
        "closed_at": None,
        "due_at": (
            stage_deadline(conn, status, urgency, r.now)
            if deadlines is None
            else stage_deadline_under(deadlines, status, urgency, r.now)
        ),
        "rating": None,
        "escalations": 0,
        "is_overdue": False,
        "updated_at": r.now,
    }
    first_step = {
        "seq": 1,
        "at": r.now,
        "action": Action.REPORT.value,
        "from_status": None,
        "to_status": status,
        "actor_id": r.actor.user_id,
        "actor_role": r.actor.role,
        "unit_id": owner,
        "department_id": None,
        "note": None,
    }
    return values, first_step


def add_reports(conn: Connection, reports: Sequence[NewReport], deadlines: DeadlineRules) -> list[Event]:
    """:func:`add_report` for many reports at once (a file import), in the caller's transaction: the same
    rows, the events in one multi-row insert (their ids in order), their first trail rows in another and
    their audit rows through :func:`services.audit.record_many`, instead of five statements a report.
    """
    rows = [report_rows(conn, r, deadlines) for r in reports]
    if not rows:
        return []
    ids = (
        conn.execute(insert(Event).returning(Event.id, sort_by_parameter_order=True), [v for v, _ in rows])
        .scalars()
        .all()
    )
    conn.execute(
        _INSERT_STEP.statement, [{"event_id": i, **step} for i, (_v, step) in zip(ids, rows, strict=True)]
    )
    events = [Event(id=i, **v) for i, (v, _s) in zip(ids, rows, strict=True)]
    audit.record_many(
        conn,
        [
            reported_entry(r.actor, e, r.duplicate_of_id, r.external_ref)
            for e, r in zip(events, reports, strict=True)
        ],
    )
    return events


def _first_event(s: Session, first: submissions.First) -> Event:
    """The event the first call with this key created, detached so it can be read after the unit of
    work has closed (it wrote nothing and rolls back)."""
    event = s.get(Event, first.entity_id) if first.entity_id is not None else None
    if event is None:
        raise LookupError(f"提交编号对应的事件 #{first.entity_id} 不存在")
    s.expunge(event)
    return event


#: How far 合并 follows originals merged into other events (C flagged as B's duplicate, B merged into A).
MERGE_HOPS = 5


def merge_flagged(
    uow: UnitOfWork,
    user: CurrentUser,
    *,
    event_id: int,
    now: datetime,
    into: int | None = None,
    expected: EventStatus | None = None,
) -> int:
    """合并: staff close a flagged near-duplicate (退回, "重复上报，已合并至事件 #N") into its likely original
    (``duplicate_of_id``, or ``into``), which counts one more reporter; returns the original's id.

    An original merged into another event since is followed there (C flagged as B's duplicate, B merged
    into A: C joins A). Both rows are locked in id order and read again before anything changes.
    Refused (logged) for a role that may not 退回, or either event outside the user's scope; refused in
    Chinese (:class:`InvalidReport`) when there is nothing to merge into or the original is closed or
    merged at the same moment; :class:`domain.event_flow.IllegalTransition` / :class:`services.events.ConcurrentChange`
    when the event moved on (``expected``: the status the user saw).
    """
    if not may_act(user, Action.REJECT):
        raise out_of_scope(user, "merge event", event_id, f"您的角色（{user.role.label}）不能合并事件")
    with uow.begin("intake.merge"):
        s, conn = uow.session, uow.conn
        event = s.get(Event, event_id)
        if event is None or not event_in_scope(conn, user, event_id):
            raise out_of_scope(user, "merge event", event_id, "该事件不在您的管辖范围内")
        if event.merged_into_id is not None:
            raise InvalidReport({"合并": f"该事件已合并至事件 #{event.merged_into_id}"})
        target = into if into is not None else event.duplicate_of_id
        # An original merged into a third event since: the report joins where its original went.
        for _ in range(MERGE_HOPS):
            went = (
                s.execute(select(Event.merged_into_id).where(Event.id == target)).scalar() if target else None
            )
            if went is None or went == event_id:
                break
            target = went
        if target is None or target == event_id:
            raise InvalidReport({"合并": "该事件没有可合并的原事件"})
        if not event_in_scope(conn, user, target):
            raise out_of_scope(user, "merge event into", target, "原事件不在您的管辖范围内")
        # Both rows locked in id order and read again under the lock (PostgreSQL: a colleague closing
        # the original, or merging it elsewhere, at the same moment is seen here, not after).
        locked = {
            e.id: e
            for e in s.execute(
                select(Event)
                .where(Event.id.in_(sorted({event_id, target})))
                .order_by(Event.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).scalars()
        }
        event, original = locked[event_id], locked.get(target)
        if event.merged_into_id is not None:
            raise InvalidReport({"合并": f"该事件已合并至事件 #{event.merged_into_id}"})
        if original is not None and original.merged_into_id is not None:
            raise InvalidReport(
                {
                    "合并": f"原事件 #{target} 已合并至事件 #{original.merged_into_id}："
                    f"请改为合并至事件 #{original.merged_into_id}"
                }
            )
        if original is None or original.status not in OPEN_STATUSES:
            raise InvalidReport({"合并": f"原事件 #{target} 已办结或已被合并，无法合并至此"})
        before = audit.event_state(s, target)
        s.execute(
            update(Event)
            .where(Event.id == target)
            .values(reporter_count=Event.reporter_count + event.reporter_count, updated_at=now)
        )
        _merge(s, event_id, target, before, Actor(user.id, user.role.value), now, expected=expected)
        uow.commit()
    return target


def _count_reporter(
    s: Session, category: str, lon: float, lat: float, merge_into: int, now: datetime
) -> dict | None:
    """One more reporter on the merge target; its state before, for the trail.

    The client's choice is checked again: a merge target must still qualify now. Its row is changed first,
    before anything writes the trail: every use case locks the event before the trail's head, so a merge
    and a leader's action on the same event cannot deadlock on PostgreSQL.
    """
    # The target locked first (PostgreSQL), so whether it still qualifies is read after a colleague's
    # 退回 or 合并 of it that commits meanwhile, not before.
    s.execute(select(Event.id).where(Event.id == merge_into).with_for_update())
    allowed = {e.id for e, _ in find_duplicates(s, category, lon, lat, now)}
    if merge_into not in allowed:
        raise InvalidReport({"合并": "所选事件已不满足合并条件（同类、50 米、24 小时内、未办结）"})
    before = audit.event_state(s, merge_into)
    s.execute(
        update(Event)
        .where(Event.id == merge_into)
        .values(reporter_count=Event.reporter_count + 1, updated_at=now)
    )
    return before


def _merge(
    s: Session,
    event_id: int,
    merge_into: int,
    target_before,
    actor: Actor,
    now: datetime,
    expected: EventStatus | None = None,
) -> None:
    """The report closed as a duplicate (退回 with the reason) and pointed at its target."""
    apply_action(
        s,
        event_id=event_id,
        action=Action.REJECT,
        now=now,
        actor=actor,
        note=f"重复上报，已合并至事件 #{merge_into}",
        expected=expected,
    )
    s.execute(update(Event).where(Event.id == event_id).values(merged_into_id=merge_into))
    audit.record(
        s.connection(),
        **audit.who(actor),
        action="event.merge",
        entity="events",
        entity_id=merge_into,
        before=target_before,
        after=audit.event_state(s, merge_into),
        reason=f"重复上报（事件 #{event_id}）合并至此",
    )


def attachment(data: bytes, mime: str, now: datetime, **owner: int | None) -> Attachment:
    """A cleaned photo (:func:`strip_metadata`) as an attachment row of its ``owner`` (``event_id`` and
    ``step_seq``, or ``inspection_id`` and ``hazard_id``): its size and digest with it."""
    return Attachment(
        mime=mime,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        created_at=now,
        **owner,
    )


def attach_photo(
    s: Session,
    event_id: int,
    clean: bytes,
    mime: str,
    actor: Actor,
    now: datetime,
    step_seq: int | None = None,
) -> None:
    """Store a cleaned photo (:func:`strip_metadata`) as an attachment of the event, with its audit row,
    in the caller's unit of work (a report's photo; a 办结's 处置照片 with ``step_seq``, its trail step)."""
    photo_row = attachment(clean, mime, now, event_id=event_id, step_seq=step_seq)
    s.add(photo_row)
    s.flush()
    audit.record(
        s.connection(),
        **audit.who(actor),
        action="attachment.add",
        entity="attachments",
        entity_id=photo_row.id,
        before=None,
        after={
            "event_id": event_id,
            "mime": mime,
            "size_bytes": len(clean),
            "sha256": photo_row.sha256,
            **({"step_seq": step_seq} if step_seq is not None else {}),
        },
    )
