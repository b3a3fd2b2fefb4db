"""Inspection use cases (平安检查): record a visit, rectify a hazard, and read a venue's history.

Each write is a use case over a :class:`db.uow.UnitOfWork` that commits itself:

- it validates everything first (every field's problem at once, in Chinese; nothing written on error);
- it stores the facts, then recomputes the venue's 平安码 with :func:`domain.safety_code.evaluate`
  from what the store now holds;
- a change of colour gets a ``safety_code_changes`` row and the next due date moves by the cadence
  of the new colour;
- the trail (``audit_log``) gets its rows in the same transaction.

:func:`record_inspection_in` is the same recording inside a caller's Session (the live simulator's tick).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from db.models import (
    AdminUnit,
    Attachment,
    Event,
    Hazard,
    Inspection,
    SafetyCodeChange,
    User,
    Venue,
)
from db.uow import UnitOfWork
from domain.access import CurrentUser, mask_phone
from domain.errors import FieldProblems
from domain.intake import InvalidReport, check_photo, key_problem, stored_mime
from domain.safety_code import (
    MAX_RECTIFY_DAYS,
    CodeDecision,
    CodeRules,
    HazardFact,
    InspectionFact,
    ItemOutcome,
    VenueFacts,
    checklist_for,
    count_clean_inspections,
    evaluate,
    item_label,
    next_due,
    overdue_days,
)
from domain.vocabulary import HazardSeverity, HazardStatus, InspectionResult, Role, SafetyCode, VenueCategory
from services import audit, submissions
from services.access import OutOfScope, deny, grid_in_scope
from services.intake import attachment, strip_metadata
from services.planning_settings import load_reassignments

__all__ = [
    "InvalidInspection",
    "NewHazard",
    "RecordedInspection",
    "VenueHistory",
    "check_checklist",
    "gather_facts",
    "inspections_on",
    "may_record_at",
    "may_view_venue",
    "recompute_code",
    "record_inspection",
    "record_inspection_in",
    "rectify_hazard",
    "routine_checklist",
    "venue_card_for",
    "venue_history",
]

_log = logging.getLogger("access")

MAX_NOTE = 1000
#: 现场照片 of the visit itself (留痕: the venue as found, a passed check too), beside each hazard's own.
MAX_VISIT_PHOTOS = 3
MAX_HAZARD_TEXT = 500
MAX_HAZARDS = 20
#: How far back the clean-inspection streak is read; far more than any rule needs.
STREAK_LOOKBACK = 50
DEFAULT_RULES = CodeRules()
#: The submissions kind of a recorded inspection (its key is unique per kind).
RECORD_KIND = "inspection.record"


class InvalidInspection(FieldProblems):
    """The inspection (or rectification) cannot be stored; ``problems`` maps each field to its message."""


@dataclass(frozen=True)
class NewHazard:
    """A hazard found in this inspection: 重大/一般, what it is, the rectification deadline, a photo."""

    severity: HazardSeverity | str
    description: str
    deadline: date | None
    photo: bytes | None = None


@dataclass(frozen=True)
class RecordedInspection:
    """What one recorded inspection did to the venue."""

    inspection_id: int
    venue_id: int
    result: InspectionResult
    hazard_ids: tuple[int, ...]
    rectified_ids: tuple[int, ...]
    code_before: SafetyCode
    code_after: SafetyCode
    reason: str
    next_due_on: date

    @property
    def changed(self) -> bool:
        return self.code_before != self.code_after


# ---------------------------------------------------------------------------------------------
# Scope
# ---------------------------------------------------------------------------------------------


def may_record_at(conn: Connection, user: CurrentUser, grid_id: int) -> bool:
    """Whether ``user`` may record inspections in ``grid_id``.

    An inspector only in the grids assigned to them (``inspector_grids``); an admin anywhere in
    their scope; other roles never (leaders read, inspectors record).
    """
    if user.role in (Role.INSPECTOR, Role.ADMIN):
        return grid_in_scope(conn, user, grid_id)
    return False


def may_view_venue(conn: Connection, user: CurrentUser, grid_id: int) -> bool:
    """Inspectors see the venues of their grids; other roles those inside their scope unit."""
    return grid_in_scope(conn, user, grid_id)


def reassigned_to(conn: Connection, user: CurrentUser, venue_id: int, day: date) -> bool:
    """Whether a leader's accepted 调配 gives ``user`` (an inspector) this venue's visit on ``day``:
    the venue is theirs to open and record that day, though its grid is another inspector's."""
    if user.role is not Role.INSPECTOR:
        return False
    return load_reassignments(conn, day).get(int(venue_id)) == user.id


def _check_scope(
    session: Session, user: CurrentUser | None, venue: Venue, what: str, day: date | None = None
) -> None:
    if user is None:  # a trusted system caller (simulator, seed)
        return
    conn = session.connection()
    if not may_record_at(conn, user, venue.grid_id) and not (
        day is not None and reassigned_to(conn, user, venue.id, day)
    ):
        deny(user, what, venue.id)
        if user.role is Role.INSPECTOR:
            raise OutOfScope("该场所不在您负责的网格内，不能登记检查")
        if user.role is Role.ADMIN:
            raise OutOfScope("该场所不在您的管辖范围内")
        raise OutOfScope(f"您的角色（{user.role.label}）不能登记检查")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def check_checklist(category: VenueCategory | str, checklist: Mapping[str, str] | None) -> dict[str, str]:
    """Problems of a checklist: every item of the category answered pass/fail/na, no other keys."""
    items = checklist_for(category)
    keys = {i.key for i in items}
    answers = dict(checklist or {})
    problems: dict[str, str] = {}
    for key in sorted(set(answers) - keys):
        problems[f"检查项：{item_label(key)}"] = f"不是{VenueCategory(category).label}的检查项"
    valid = {o.value for o in ItemOutcome}
    for item in items:
        value = answers.get(item.key)
        if value is None or value == "":
            problems[f"检查项：{item.label}"] = "未填写（请选择合格、不合格或不适用）"
        elif str(value) not in valid:
            problems[f"检查项：{item.label}"] = f"取值“{value}”无效（只能是合格、不合格或不适用）"
    return problems


def _check_hazards(
    hazards: Sequence[NewHazard], today: date
) -> tuple[dict[str, str], list[tuple[str | None, bytes | None]]]:
    """Problems of the new hazards, and each hazard's (photo MIME, EXIF-free photo)."""
    problems: dict[str, str] = {}
    photos: list[tuple[str | None, bytes | None]] = []
    if len(hazards) > MAX_HAZARDS:
        problems["隐患"] = f"一次最多登记 {MAX_HAZARDS} 处隐患"
    for n, h in enumerate(hazards, start=1):
        tag = f"隐患{n}"
        try:
            HazardSeverity(h.severity)
        except ValueError:
            problems[f"{tag}·等级"] = "请选择重大隐患或一般隐患"
        text = (h.description or "").strip()
        if not text:
            problems[f"{tag}·描述"] = "请填写隐患描述"
        elif len(text) > MAX_HAZARD_TEXT:
            problems[f"{tag}·描述"] = f"描述不能超过 {MAX_HAZARD_TEXT} 字"
        if h.deadline is None:
            problems[f"{tag}·整改期限"] = "请填写整改期限"
        elif not isinstance(h.deadline, date) or isinstance(h.deadline, datetime):
            problems[f"{tag}·整改期限"] = "整改期限须为日期"
        elif h.deadline < today:
            problems[f"{tag}·整改期限"] = f"整改期限（{h.deadline}）不能早于今天（{today}）"
        elif h.deadline > today + timedelta(days=MAX_RECTIFY_DAYS):
            problems[f"{tag}·整改期限"] = (
                f"整改期限（{h.deadline}）不能晚于 {today + timedelta(days=MAX_RECTIFY_DAYS)}"
                f"（{MAX_RECTIFY_DAYS} 天内）；需要更久的整改请分阶段登记，到期复查时再定下一期限"
            )
        mime, clean = None, None
        try:
            found = check_photo(h.photo)
            clean = strip_metadata(h.photo, found) if found and h.photo is not None else None
            mime = stored_mime(found) if clean is not None and found else None
        except InvalidReport as exc:
            for msg in exc.problems.values():
                problems[f"{tag}·照片"] = msg
        photos.append((mime, clean))
    return problems, photos


# ---------------------------------------------------------------------------------------------
# The venue's facts and its colour
# ---------------------------------------------------------------------------------------------


def _day_start(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time())


def gather_facts(
    conn: Connection,
    venue_id: int,
    grid_id: int,
    category: VenueCategory | str,
    now: datetime,
    rules: CodeRules = DEFAULT_RULES,
) -> VenueFacts:
    """Everything :func:`evaluate` looks at for one venue, read from the store as of ``now``."""
    today = now.date()
    open_rows = conn.execute(
        select(Hazard.severity, Hazard.description, Hazard.deadline)
        .where(Hazard.venue_id == venue_id, Hazard.status == HazardStatus.OPEN)
        .order_by(Hazard.id)
    ).all()
    open_hazards = tuple(HazardFact(HazardSeverity(s), d, dl) for s, d, dl in open_rows)
    overdue = sum(1 for h in open_hazards if h.deadline is not None and h.deadline < today)
    last_rectified = conn.execute(
        select(func.max(Hazard.rectified_on)).where(Hazard.venue_id == venue_id)
    ).scalar()
    # Events at a venue are located at it, so they lie in its grid: the (grid_id, status) index
    # narrows the search to one grid instead of every event of the window (see docs).
    recent_events = conn.execute(
        select(func.count())
        .select_from(Event)
        .where(
            Event.grid_id == grid_id,
            Event.venue_id == venue_id,
            Event.merged_into_id.is_(None),
            Event.reported_at >= now - timedelta(days=rules.event_window_days),
            Event.reported_at <= now,
        )
    ).scalar_one()
    since = conn.execute(
        select(SafetyCodeChange.changed_at)
        .where(SafetyCodeChange.venue_id == venue_id)
        .order_by(SafetyCodeChange.changed_at.desc(), SafetyCodeChange.id.desc())
        .limit(1)
    ).scalar()
    new_hazards = (
        select(Hazard.inspection_id, func.count().label("n"))
        .where(Hazard.venue_id == venue_id)
        .group_by(Hazard.inspection_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            Inspection.inspected_at,
            Inspection.result,
            Inspection.checklist_json,
            func.coalesce(new_hazards.c.n, 0),
        )
        .outerjoin(new_hazards, new_hazards.c.inspection_id == Inspection.id)
        .where(Inspection.venue_id == venue_id, Inspection.inspected_at <= now)
        .order_by(Inspection.inspected_at.desc(), Inspection.id.desc())
        .limit(STREAK_LOOKBACK)
    ).all()
    latest = None
    if rows:
        at, result, raw, n = rows[0]
        latest = InspectionFact(at.date(), InspectionResult(result), _checklist(raw), int(n))
    # The streak compares full timestamps: the inspection that caused the last change (stored at the
    # same moment as the change) does not count towards the next step.
    history = [InspectionFact(at, InspectionResult(r), {}, int(n)) for at, r, _, n in rows]
    clean = count_clean_inspections(history, since=since)
    return VenueFacts(
        category=VenueCategory(category),
        latest_inspection=latest,
        open_hazards=open_hazards,
        overdue_rectifications=overdue,
        recent_events=int(recent_events),
        clean_inspections=clean,
        last_rectified_on=last_rectified,
        code_since=since.date() if since else None,
    )


def _checklist(raw: str | None) -> dict[str, str]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def recompute_code(
    session: Session, venue: Venue, now: datetime, rules: CodeRules = DEFAULT_RULES
) -> CodeDecision:
    """Re-evaluate ``venue``'s colour from the stored facts; store the change with its reason if it changes."""
    session.flush()
    facts = gather_facts(session.connection(), venue.id, venue.grid_id, venue.category, now, rules)
    current = SafetyCode(venue.safety_code)
    decision = evaluate(current, facts, rules)
    if decision.code != current:
        session.add(
            SafetyCodeChange(
                venue_id=venue.id,
                changed_at=now,
                from_code=current,
                to_code=decision.code,
                reason=decision.reason[:500],
            )
        )
        venue.safety_code = decision.code
    return decision


def routine_checklist(conn: Connection | Session, venue_id: int, *, failed: bool = False) -> dict[str, str]:
    """A complete checklist for the venue's category: every item passed, or its first non-critical item failed.

    For trusted system callers (the live simulator) that record routine visits without a form.
    """
    category = conn.execute(select(Venue.category).where(Venue.id == venue_id)).scalar_one()
    items = checklist_for(category)
    fail_key = next((i.key for i in items if not i.critical), items[-1].key) if failed else None
    return {i.key: (ItemOutcome.FAIL.value if i.key == fail_key else ItemOutcome.PASS.value) for i in items}


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


def record_inspection(
    uow: UnitOfWork,
    *,
    venue_id: int,
    now: datetime,
    checklist: Mapping[str, str] | None,
    hazards: Sequence[NewHazard] = (),
    note: str | None = None,
    user: CurrentUser | None = None,
    inspector_id: int | None = None,
    rectified: Iterable[int] = (),
    rules: CodeRules = DEFAULT_RULES,
    submission_key: str | None = None,
    photos: Sequence[bytes] = (),
) -> RecordedInspection:
    """Record one inspection as its own use case (:func:`record_inspection_in`, then commit).

    ``submission_key``: the client's key for this submission (the phone form's once-per-display key, an
    API's Idempotency-Key). Sent again with the same content, the first call's result is returned and
    nothing is written; with other content, :class:`services.submissions.KeyReused`.
    """
    if (bad_key := key_problem(submission_key)) is not None:
        raise InvalidInspection({"提交编号": bad_key})
    hazards, rectified = list(hazards), list(rectified)
    fingerprint = submissions.digest(
        {
            "venue_id": venue_id,
            "user": user.id if user is not None else None,
            "inspector_id": inspector_id,
            "checklist": dict(checklist or {}),
            "hazards": [asdict(h) for h in hazards],
            "note": note,
            "rectified": sorted(int(h) for h in rectified),
            "photos": [hashlib.sha256(p).hexdigest() for p in photos],
        }
    )
    with uow.begin("inspections.record"):
        conn = uow.conn
        if submission_key:
            first = submissions.find(conn, RECORD_KIND, submission_key, fingerprint)
            if first is None and not submissions.claim(conn, RECORD_KIND, submission_key, fingerprint, now):
                first = submissions.find(conn, RECORD_KIND, submission_key, fingerprint)
            if first is not None:
                return _recorded_from(first.result)
        done = record_inspection_in(
            uow.session,
            venue_id=venue_id,
            now=now,
            checklist=checklist,
            hazards=hazards,
            note=note,
            user=user,
            inspector_id=inspector_id,
            rectified=rectified,
            rules=rules,
            photos=photos,
        )
        if submission_key:
            submissions.settle(conn, RECORD_KIND, submission_key, done.inspection_id, asdict(done))
        uow.commit()
        return done


def _recorded_from(stored: dict) -> RecordedInspection:
    """A :class:`RecordedInspection` as its first call stored it (JSON)."""
    return RecordedInspection(
        inspection_id=int(stored["inspection_id"]),
        venue_id=int(stored["venue_id"]),
        result=InspectionResult(stored["result"]),
        hazard_ids=tuple(int(h) for h in stored["hazard_ids"]),
        rectified_ids=tuple(int(h) for h in stored["rectified_ids"]),
        code_before=SafetyCode(stored["code_before"]),
        code_after=SafetyCode(stored["code_after"]),
        reason=str(stored["reason"]),
        next_due_on=date.fromisoformat(stored["next_due_on"]),
    )


def record_inspection_in(
    session: Session,
    *,
    venue_id: int,
    now: datetime,
    checklist: Mapping[str, str] | None,
    hazards: Sequence[NewHazard] = (),
    note: str | None = None,
    user: CurrentUser | None = None,
    inspector_id: int | None = None,
    rectified: Iterable[int] = (),
    rules: CodeRules = DEFAULT_RULES,
    photos: Sequence[bytes] = (),
) -> RecordedInspection:
    """Store one inspection of ``venue_id`` with its hazards and photos, and recompute the venue's 平安码,
    inside ``session`` (the caller commits).

    - ``checklist`` maps every item key of the venue's category (:func:`checklist_for`) to
      ``pass``/``fail``/``na``; the result is 不合格 if any item fails or any hazard is recorded.
    - ``hazards`` are the hazards found (deadline ≥ today; a photo is checked and stripped of EXIF).
    - ``photos`` are the visit's own 现场照片 (at most :data:`MAX_VISIT_PHOTOS`, checked and stripped of
      EXIF as the hazards' are), kept with the inspection whatever its result.
    - ``rectified`` are ids of the venue's open hazards this visit confirms fixed (复查), marked
      rectified today before the colour is evaluated.
    - ``user`` is the logged-in person (an inspector only in their grids); ``None`` is a trusted
      system caller (the simulator) recording as ``inspector_id``.

    Raises :class:`LookupError`, :class:`OutOfScope` or :class:`InvalidInspection` (every problem at
    once) before anything is written.
    """
    venue = session.get(Venue, venue_id, with_for_update=True, populate_existing=True)  # one at a time
    if venue is None or not venue.is_active:
        raise LookupError(f"场所 {venue_id} 不存在")
    today = now.date()
    _check_scope(session, user, venue, "record inspection", today)
    hazard_photos, visit_photos, fixing = _checked(
        session, venue, checklist, list(hazards), note, rectified, today, photos
    )
    answers = {item.key: str((checklist or {})[item.key]) for item in checklist_for(venue.category)}
    failed = any(v == ItemOutcome.FAIL for v in answers.values()) or bool(hazards)
    result = InspectionResult.FAIL if failed else InspectionResult.PASS
    inspection = Inspection(
        venue_id=venue.id,
        inspector_id=user.id if user is not None else inspector_id,
        inspected_at=now,
        result=result,
        checklist_json=json.dumps(answers, ensure_ascii=False),
        note=(note or "").strip() or None,
    )
    session.add(inspection)
    for h in fixing:
        h.status = HazardStatus.RECTIFIED
        h.rectified_on = today
    session.flush()
    new_ids = _store_hazards(session, inspection, hazards, hazard_photos, now)
    kept = _store_visit_photos(session, inspection, visit_photos, now)
    before = SafetyCode(venue.safety_code)
    prior = {
        "safety_code": before,
        "last_inspected_on": venue.last_inspected_on,
        "next_due_on": venue.next_due_on,
    }
    decision = recompute_code(session, venue, now, rules)
    venue.last_inspected_on = today
    venue.next_due_on = next_due(decision.code, today)
    session.flush()
    audit.record(
        session.connection(),
        **audit.who(user),
        action="inspection.record",
        entity="inspections",
        entity_id=inspection.id,
        before={"venue": prior},
        after={
            "venue_id": venue.id,
            "inspector_id": inspection.inspector_id,
            "result": result,
            "hazard_ids": new_ids,
            "rectified_ids": [h.id for h in fixing],
            "photos": kept,
            "venue": {
                "safety_code": decision.code,
                "last_inspected_on": today,
                "next_due_on": venue.next_due_on,
            },
        },
    )
    _audit_code_change(session, user, venue.id, before, decision)
    return RecordedInspection(
        inspection_id=inspection.id,
        venue_id=venue.id,
        result=result,
        hazard_ids=tuple(new_ids),
        rectified_ids=tuple(h.id for h in fixing),
        code_before=before,
        code_after=decision.code,
        reason=decision.reason,
        next_due_on=venue.next_due_on,
    )


def _checked(
    session: Session,
    venue: Venue,
    checklist: Mapping[str, str] | None,
    hazards: Sequence[NewHazard],
    note: str | None,
    rectified: Iterable[int],
    today: date,
    visit_photos: Sequence[bytes] = (),
) -> tuple[list[tuple[str | None, bytes | None]], list[tuple[str, bytes]], list[Hazard]]:
    """Every problem of an inspection at once (:class:`InvalidInspection`); else each new hazard's
    (photo MIME, EXIF-free photo), the visit's own photos so, and the open hazards it confirms rectified.
    Every photo is decoded and re-encoded here, before anything is written."""
    problems = check_checklist(venue.category, checklist)
    hz_problems, photos = _check_hazards(hazards, today)
    problems |= hz_problems
    visit_problems, visit = _check_visit_photos(visit_photos)
    problems |= visit_problems
    if note is not None and len(note) > MAX_NOTE:
        problems["备注"] = f"备注不能超过 {MAX_NOTE} 字"
    rectified_ids = tuple(dict.fromkeys(int(h) for h in rectified))
    fixing: list[Hazard] = []
    if rectified_ids:
        fixing = list(session.execute(select(Hazard).where(Hazard.id.in_(rectified_ids))).scalars())
        found = {h.id: h for h in fixing}
        for hid in rectified_ids:
            h = found.get(hid)
            if h is None or h.venue_id != venue.id:
                problems[f"整改复查：隐患{hid}"] = "不是本场所的隐患"
            elif h.status != HazardStatus.OPEN:
                problems[f"整改复查：隐患{hid}"] = "该隐患已整改"
            elif h.found_on > today:
                problems[f"整改复查：隐患{hid}"] = "整改日期不能早于发现日期"
    if problems:
        raise InvalidInspection(problems)
    return photos, visit, fixing


def _store_hazards(
    session: Session,
    inspection: Inspection,
    hazards: Sequence[NewHazard],
    photos: Sequence[tuple[str | None, bytes | None]],
    now: datetime,
) -> list[int]:
    """Add the inspection's new hazards (with their photos); their ids."""
    new_ids: list[int] = []
    for h, (mime, photo) in zip(hazards, photos, strict=True):
        hazard = Hazard(
            venue_id=inspection.venue_id,
            inspection_id=inspection.id,
            severity=HazardSeverity(h.severity),
            description=h.description.strip(),
            found_on=now.date(),
            deadline=h.deadline,
            status=HazardStatus.OPEN,
        )
        session.add(hazard)
        session.flush()
        new_ids.append(hazard.id)
        if photo is not None and mime is not None:
            session.add(_photo(inspection.id, hazard.id, mime, photo, now))
    return new_ids


def _photo(inspection_id: int, hazard_id: int | None, mime: str, data: bytes, now: datetime) -> Attachment:
    """A photo of an inspection (``hazard_id`` None: the visit's own) as its attachment row."""
    return attachment(data, mime, now, inspection_id=inspection_id, hazard_id=hazard_id)


def _check_visit_photos(photos: Sequence[bytes]) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """Problems of the visit's photos (each named by its place), and each as stored: (MIME, re-encoded
    without EXIF), as :func:`_check_hazards` does a hazard's."""
    if len(photos) > MAX_VISIT_PHOTOS:
        return {"现场照片": f"最多上传 {MAX_VISIT_PHOTOS} 张（本次 {len(photos)} 张）"}, []
    problems: dict[str, str] = {}
    out: list[tuple[str, bytes]] = []
    for n, photo in enumerate(photos, start=1):
        try:
            mime = check_photo(photo)
            if mime is not None:
                out.append((stored_mime(mime), strip_metadata(photo, mime)))
        except InvalidReport as exc:
            problems[f"现场照片{n}"] = "；".join(exc.problems.values())
    return problems, out


def _store_visit_photos(
    session: Session, inspection: Inspection, photos: Sequence[tuple[str, bytes]], now: datetime
) -> int:
    session.add_all(_photo(inspection.id, None, mime, data, now) for mime, data in photos)
    return len(photos)


def rectify_hazard(
    uow: UnitOfWork,
    *,
    hazard_id: int,
    on: date,
    now: datetime,
    user: CurrentUser | None = None,
    rules: CodeRules = DEFAULT_RULES,
) -> CodeDecision:
    """Mark a hazard rectified on ``on`` (confirmed by an inspector's re-check) and re-evaluate the venue.

    The rectification alone never lifts a red venue: that takes a passed inspection on or after it
    (stepwise recovery); it can only clear what the hazard itself demanded.
    """
    with uow.begin("inspections.rectify"):
        session = uow.session
        hazard = session.get(Hazard, hazard_id)
        if hazard is None:
            raise LookupError(f"隐患 {hazard_id} 不存在")
        # The venue, then the hazard, locked and read again (PostgreSQL; SQLite's unit of work is alone):
        # two people confirming one fix at once take turns, and the second is told it is done already.
        # The venue first, as an inspection's record locks it before its hazards.
        venue = session.get(Venue, hazard.venue_id, with_for_update=True, populate_existing=True)
        if venue is None:  # a hazard's venue is a foreign key: only a broken store gets here
            raise LookupError(f"场所 {hazard.venue_id} 不存在")
        hazard = session.get(Hazard, hazard_id, with_for_update=True, populate_existing=True)
        assert hazard is not None
        _check_scope(session, user, venue, "rectify hazard", now.date())
        problems: dict[str, str] = {}
        if hazard.status != HazardStatus.OPEN:
            problems["隐患"] = "该隐患已整改"
        if on > now.date():
            problems["整改日期"] = f"整改日期（{on}）不能晚于今天（{now.date()}）"
        elif on < hazard.found_on:
            problems["整改日期"] = f"整改日期（{on}）不能早于发现日期（{hazard.found_on}）"
        if problems:
            raise InvalidInspection(problems)
        hazard.status = HazardStatus.RECTIFIED
        hazard.rectified_on = on
        before = SafetyCode(venue.safety_code)
        decision = recompute_code(session, venue, now, rules)
        if decision.code != before and venue.last_inspected_on is not None:
            venue.next_due_on = next_due(decision.code, venue.last_inspected_on)
        session.flush()
        audit.record(
            session.connection(),
            **audit.who(user),
            action="hazard.rectify",
            entity="hazards",
            entity_id=hazard.id,
            before={"status": HazardStatus.OPEN, "rectified_on": None},
            after={"status": HazardStatus.RECTIFIED, "rectified_on": on, "venue_id": venue.id},
        )
        _audit_code_change(session, user, venue.id, before, decision)
        uow.commit()
        return decision


def _audit_code_change(
    session: Session, user: CurrentUser | None, venue_id: int, before: SafetyCode, decision: CodeDecision
) -> None:
    """The trail's row for a change of a venue's 平安码 (the reason is the rule that decided it)."""
    if decision.code != before:
        audit.record(
            session.connection(),
            **audit.who(user),
            action="venue.safety_code",
            entity="venues",
            entity_id=venue_id,
            before={"safety_code": before},
            after={"safety_code": decision.code},
            reason=decision.reason,
        )


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenueHistory:
    """One venue as its card shows it: the venue, its inspections, hazards, code changes and photos."""

    venue: dict
    inspections: pd.DataFrame  # id, inspected_at, inspector, result, failed_items, note
    hazards: pd.DataFrame  # id, severity, description, found_on, deadline, status, rectified_on, overdue_days
    code_changes: pd.DataFrame  # changed_at, from_code, to_code, reason
    photos: list[tuple[int, int | None, str, bytes]] = field(
        default_factory=list
    )  # (attachment, hazard, mime, data)

    @property
    def open_hazards(self) -> pd.DataFrame:
        return self.hazards[self.hazards["status"] == HazardStatus.OPEN.value]


def venue_history(
    conn: Connection,
    venue_id: int,
    *,
    today: date | None = None,
    viewer: CurrentUser | None = None,
    limit: int = 30,
    photo_limit: int = 12,
) -> VenueHistory | None:
    """The venue's card data, newest first; None if there is no such venue.

    With a ``viewer`` (any role) the responsible person's phone is masked (``138****5678``); a permitted
    role reveals it one venue at a time with a reason (:mod:`services.personal_data`). Inspectors'
    names are shown as is (colleagues); nothing else personal leaves the service.
    """
    v = (
        conn.execute(
            select(
                Venue.id,
                Venue.code,
                Venue.name,
                Venue.category,
                Venue.address,
                Venue.lon,
                Venue.lat,
                Venue.grid_id,
                Venue.safety_code,
                Venue.responsible_person,
                Venue.responsible_phone,
                Venue.last_inspected_on,
                Venue.next_due_on,
                AdminUnit.name.label("grid_name"),
            )
            .join(AdminUnit, AdminUnit.id == Venue.grid_id)
            .where(Venue.id == venue_id)
        )
        .mappings()
        .first()
    )
    if v is None:
        return None
    venue = dict(v)
    venue["category"] = VenueCategory(venue["category"]).value
    venue["safety_code"] = SafetyCode(venue["safety_code"]).value
    if (
        viewer is not None
    ):  # masked for every viewer; revealed one at a time with a reason (services.personal_data)
        venue["responsible_phone"] = mask_phone(venue["responsible_phone"])
    if today is not None:
        venue["overdue_days"] = overdue_days(venue["next_due_on"], today)

    ins = conn.execute(
        select(
            Inspection.id,
            Inspection.inspected_at,
            User.display_name,
            Inspection.result,
            Inspection.checklist_json,
            Inspection.note,
        )
        .outerjoin(User, User.id == Inspection.inspector_id)
        .where(Inspection.venue_id == venue_id)
        .order_by(Inspection.inspected_at.desc(), Inspection.id.desc())
        .limit(limit)
    ).all()
    inspections = pd.DataFrame(
        [
            {
                "id": r[0],
                "inspected_at": r[1],
                "inspector": r[2] or "系统",
                "result": InspectionResult(r[3]).value,
                "failed_items": "、".join(
                    item_label(k) for k, val in sorted(_checklist(r[4]).items()) if val == ItemOutcome.FAIL
                ),
                "note": r[5] or "",
            }
            for r in ins
        ],
        columns=["id", "inspected_at", "inspector", "result", "failed_items", "note"],
    )
    hz = conn.execute(
        select(
            Hazard.id,
            Hazard.severity,
            Hazard.description,
            Hazard.found_on,
            Hazard.deadline,
            Hazard.status,
            Hazard.rectified_on,
        )
        .where(Hazard.venue_id == venue_id)
        .order_by((Hazard.status == HazardStatus.OPEN).desc(), Hazard.found_on.desc(), Hazard.id.desc())
        .limit(limit)
    ).all()
    hazards = pd.DataFrame(
        [
            {
                "id": r[0],
                "severity": HazardSeverity(r[1]).value,
                "description": r[2],
                "found_on": r[3],
                "deadline": r[4],
                "status": HazardStatus(r[5]).value,
                "rectified_on": r[6],
                "overdue_days": overdue_days(r[4], today) if today and r[5] == HazardStatus.OPEN else 0,
            }
            for r in hz
        ],
        columns=[
            "id",
            "severity",
            "description",
            "found_on",
            "deadline",
            "status",
            "rectified_on",
            "overdue_days",
        ],
    )
    ch = conn.execute(
        select(
            SafetyCodeChange.changed_at,
            SafetyCodeChange.from_code,
            SafetyCodeChange.to_code,
            SafetyCodeChange.reason,
        )
        .where(SafetyCodeChange.venue_id == venue_id)
        .order_by(SafetyCodeChange.changed_at.desc(), SafetyCodeChange.id.desc())
        .limit(limit)
    ).all()
    changes = pd.DataFrame(
        [
            {
                "changed_at": a,
                "from_code": SafetyCode(f).value if f else None,
                "to_code": SafetyCode(t).value,
                "reason": r,
            }
            for a, f, t, r in ch
        ],
        columns=["changed_at", "from_code", "to_code", "reason"],
    )
    photos: list[tuple[int, int | None, str, bytes]] = []
    if photo_limit:
        insp_ids = select(Inspection.id).where(Inspection.venue_id == venue_id).scalar_subquery()
        hz_ids = select(Hazard.id).where(Hazard.venue_id == venue_id).scalar_subquery()
        photos = [
            (a, h, m, d)
            for a, h, m, d in conn.execute(
                select(Attachment.id, Attachment.hazard_id, Attachment.mime, Attachment.data)
                .where((Attachment.inspection_id.in_(insp_ids)) | (Attachment.hazard_id.in_(hz_ids)))
                .order_by(Attachment.id.desc())
                .limit(photo_limit)
            ).all()
        ]
    return VenueHistory(venue, inspections, hazards, changes, photos)


def inspections_on(conn: Connection, inspector_id: int, day: date) -> pd.DataFrame:
    """The inspections ``inspector_id`` recorded on ``day`` (newest first) with the venue's colour now."""
    rows = conn.execute(
        select(
            Inspection.id,
            Inspection.venue_id,
            Venue.name,
            Inspection.inspected_at,
            Inspection.result,
            Venue.safety_code,
            Venue.next_due_on,
            Venue.lon,
            Venue.lat,
        )
        .join(Venue, Venue.id == Inspection.venue_id)
        .where(
            Inspection.inspector_id == inspector_id,
            Inspection.inspected_at >= _day_start(day),
            Inspection.inspected_at < _day_start(day + timedelta(days=1)),
        )
        .order_by(Inspection.inspected_at.desc(), Inspection.id.desc())
    ).all()
    return pd.DataFrame(
        [
            (r[0], r[1], r[2], r[3], InspectionResult(r[4]).value, SafetyCode(r[5]).value, r[6], r[7], r[8])
            for r in rows
        ],
        columns=["id", "venue_id", "name", "inspected_at", "result", "code", "next_due_on", "lon", "lat"],
    )


def venue_card_for(conn: Connection, user: CurrentUser, venue_id: int, today: date) -> VenueHistory:
    """:func:`venue_history` for a logged-in viewer: refused (:class:`OutOfScope`) outside their venues."""
    grid_id = conn.execute(select(Venue.grid_id).where(Venue.id == venue_id)).scalar()
    if grid_id is None:
        raise LookupError(f"场所 {venue_id} 不存在")
    if not may_view_venue(conn, user, grid_id) and not reassigned_to(conn, user, venue_id, today):
        deny(user, "view venue", venue_id)
        raise OutOfScope("该场所不在您的管辖范围内")
    card = venue_history(conn, venue_id, today=today, viewer=user)
    if card is None:  # removed between the two reads
        raise LookupError(f"场所 {venue_id} 不存在")
    return card
