"""Intake of reports (随手拍, 网格员上报): validate, strip the photo's EXIF, place in a grid, merge duplicates."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import Attachment, Event
from domain.event_flow import Action
from domain.intake import (
    DUPLICATE_WINDOW,
    InvalidReport,
    OpenEvent,
    ReportForm,
    check_form,
    check_photo,
    possible_duplicates,
)
from domain.vocabulary import OPEN_STATUSES, EventCategory, EventSource
from services import audit
from services.events import SYSTEM, Actor, act, report_event

# ~0.001° is > 50 m in every direction at Chinese latitudes: a cheap box before the exact distance.
BOX_DEG = 0.001
PIL_FORMAT = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def strip_metadata(data: bytes, mime: str) -> bytes:
    """The image re-encoded without EXIF (GPS, device), turned upright first; InvalidReport if undecodable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            upright = ImageOps.exif_transpose(img)
            out = io.BytesIO()
            if PIL_FORMAT[mime] == "JPEG" and upright.mode not in ("RGB", "L"):
                upright = upright.convert("RGB")
            upright.save(out, PIL_FORMAT[mime], **({"quality": 90} if mime == "image/jpeg" else {}))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidReport({"照片": "图片已损坏，无法读取"}) from exc
    return out.getvalue()


def find_duplicates(session: Session, category: str, lon: float, lat: float, now: datetime) -> list[tuple[OpenEvent, float]]:
    """Open events that may be the same matter: same category, within 50 m and 24 h."""
    rows = session.execute(
        select(Event.id, Event.category, Event.lon, Event.lat, Event.reported_at, Event.title, Event.reporter_count)
        .where(
            Event.category == EventCategory(category),
            Event.status.in_(OPEN_STATUSES),
            Event.merged_into_id.is_(None),
            Event.reported_at >= now - DUPLICATE_WINDOW,
            Event.lon.between(lon - BOX_DEG, lon + BOX_DEG),
            Event.lat.between(lat - BOX_DEG, lat + BOX_DEG),
        )
    ).all()
    candidates = [OpenEvent(r.id, EventCategory(r.category).value, r.lon, r.lat, r.reported_at, r.title, r.reporter_count) for r in rows]
    return possible_duplicates(category, lon, lat, now, candidates)


def submit_report(
    session: Session,
    form: ReportForm,
    *,
    now: datetime,
    source: EventSource = EventSource.CITIZEN,
    actor: Actor = SYSTEM,
    photo: bytes | None = None,
    merge_into: int | None = None,
) -> Event:
    """Store a report as a new event (or as a duplicate merged into ``merge_into``), with its photo.

    Raises :class:`InvalidReport` (every bad field at once) or :class:`services.locate.OutsideArea`;
    the caller's transaction then writes nothing.
    """
    problems = check_form(form)
    try:
        mime = check_photo(photo)
    except InvalidReport as exc:
        problems |= exc.problems
        mime = None
    if problems:
        raise InvalidReport(problems)
    clean = strip_metadata(photo, mime) if photo is not None and mime else None
    target_before = None
    if merge_into is not None:
        # The client's choice is checked again: a merge target must still qualify now. Its row is changed
        # first, before anything writes the trail: every use case locks the event before the trail's
        # head, so a merge and a leader's action on the same event cannot deadlock on PostgreSQL.
        allowed = {e.id for e, _ in find_duplicates(session, form.category, float(form.lon), float(form.lat), now)}
        if merge_into not in allowed:
            raise InvalidReport({"合并": "所选事件已不满足合并条件（同类、50 米、24 小时内、未办结）"})
        target_before = audit.event_state(session, merge_into)
        session.execute(
            update(Event).where(Event.id == merge_into).values(reporter_count=Event.reporter_count + 1, updated_at=now)
        )
    event = report_event(
        session,
        source=source,
        category=EventCategory(form.category),
        title=form.title.strip(),
        description=form.description.strip(),
        lon=float(form.lon),
        lat=float(form.lat),
        now=now,
        actor=actor,
        reporter_name=form.reporter_name.strip() or None,
        reporter_phone=form.reporter_phone.strip() or None,
    )
    if merge_into is not None:
        act(session, event_id=event.id, action=Action.REJECT, now=now, actor=actor,
            note=f"重复上报，已合并至事件 #{merge_into}")
        session.execute(update(Event).where(Event.id == event.id).values(merged_into_id=merge_into))
        audit.record(session.connection(), **audit.who(actor), action="event.merge", entity="events",
                     entity_id=merge_into, before=target_before, after=audit.event_state(session, merge_into),
                     reason=f"重复上报（事件 #{event.id}）合并至此")
    if clean is not None:
        photo_row = Attachment(event_id=event.id, mime=mime, size_bytes=len(clean),
                               sha256=hashlib.sha256(clean).hexdigest(), data=clean, created_at=now)
        session.add(photo_row)
        session.flush()
        audit.record(session.connection(), **audit.who(actor), action="attachment.add", entity="attachments",
                     entity_id=photo_row.id, before=None,
                     after={"event_id": event.id, "mime": mime, "size_bytes": len(clean), "sha256": photo_row.sha256})
    session.flush()
    return event
