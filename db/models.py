"""The store's tables as SQLAlchemy 2.x typed models; Alembic migrations are generated from these.

Times are naive local times (China Standard Time, UTC+8, no DST): every user, screen and
report of the product is in that one zone (decision 0002).
Geometry is stored as WKB in WGS84 (EPSG:4326) so the same schema runs on SQLite and on
PostgreSQL without PostGIS; spatial work happens in geo/ over shapely.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, BigId, enum_column, intpk, str_code, str_name
from domain.vocabulary import (
    AdminLevel,
    EventCategory,
    EventSource,
    EventStatus,
    HazardSeverity,
    HazardStatus,
    InspectionResult,
    Rating,
    Role,
    SafetyCode,
    Urgency,
    VenueCategory,
)


class AdminUnit(Base):
    """A unit of the five levels (市/县/乡镇/村社区/网格); each tiles its parent."""

    __tablename__ = "admin_units"
    __table_args__ = (
        CheckConstraint("population >= 0", name="population_non_negative"),
        CheckConstraint("area_km2 >= 0", name="area_non_negative"),
        CheckConstraint(
            "centroid_lon BETWEEN -180 AND 180 AND centroid_lat BETWEEN -90 AND 90", name="centroid_range"
        ),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[intpk]
    code: Mapped[str_code] = mapped_column(unique=True)
    name: Mapped[str_name]
    level: Mapped[AdminLevel] = mapped_column(enum_column(AdminLevel, "admin_level"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # 市/区/县/街道/镇/乡/社区/村/网格
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("admin_units.id"), index=True)
    population: Mapped[int] = mapped_column(Integer)
    #: The boundary import estimated the population (the file had none): 投诉率 per resident says so.
    population_estimated: Mapped[bool] = mapped_column(default=False, server_default=false())
    area_km2: Mapped[float] = mapped_column(Float)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    geometry_wkb: Mapped[bytes] = mapped_column(LargeBinary)

    parent: Mapped[AdminUnit | None] = relationship(remote_side="AdminUnit.id", back_populates="children")
    children: Mapped[list[AdminUnit]] = relationship(back_populates="parent")


class Department(Base):
    """A handling department (条线部门) serving an area, e.g. 柯城区城管局."""

    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("unit_id", "kind", name="uq_departments_unit_kind"),)

    id: Mapped[intpk]
    code: Mapped[str_code] = mapped_column(unique=True)
    name: Mapped[str_name]
    kind: Mapped[str] = mapped_column(String(32))  # 公安/交警/城管/市场监管/应急管理/消防/生态环境/住建/...
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"), index=True)


class User(Base):
    """A person who logs in; scope is the subtree under ``scope_unit_id`` (plus a department where set)."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("failed_logins >= 0", name="failed_logins_non_negative"),
        CheckConstraint(
            "role <> 'department' OR department_id IS NOT NULL", name="department_role_has_department"
        ),
    )

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str_name]
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(enum_column(Role, "user_role"))
    scope_unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("departments.id"))
    home_lon: Mapped[float | None] = mapped_column(Float)  # an inspector's start point for routing
    home_lat: Mapped[float | None] = mapped_column(Float)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None]
    # Set by an administrator's initial or reset password: the next login sees only 修改密码 (decision 0014).
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]


class LoginSession(Base):
    """A server-side login session (登录会话, decision 0017): what a browser's HttpOnly cookie stands for.

    Only digests are stored: ``token_hash`` of the cookie's random token (set when the browser redeems
    its one-time ``handoff_hash`` code at ``/auth/session``, within ``handoff_until``, from the browser
    whose XSRF token digests to ``binding``). ``stamp`` digests the account's password hash, role, scope
    and department at login: any change ends the session. ``role`` picks the idle and absolute limits
    (``domain.access.SESSION_LIMITS``); ``last_seen_at`` slides with use. ``ended_at`` and ``end_reason``
    (logout, idle, absolute, credentials, disabled) end it for good. ``draft_json``: the inspector's
    unsaved inspection form, restored after a reload. ``fresh_password``: logged in with a password an
    administrator set, so it may choose a new one without typing the old (decision 0014).
    """

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_id_ended_at", "user_id", "ended_at"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    handoff_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    handoff_until: Mapped[datetime | None]
    binding: Mapped[str] = mapped_column(String(64))
    stamp: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(enum_column(Role, "login_session_role"))
    fresh_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    draft_json: Mapped[str | None] = mapped_column(Text)


class ApiKey(Base):
    """An Open311 API key of one channel (接口密钥: 12345 hotline, 110 linkage, video analytics, a
    mini-program). Only the key's sha256 is stored (``key_hash``); ``scope_unit_id`` is the area it may
    file and read in, ``categories`` the comma-separated event categories it may file (empty: all),
    ``per_minute`` its rate limit; ``revoked_at`` ends it for good (services.api_keys)."""

    __tablename__ = "api_keys"

    id: Mapped[intpk]
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(100))
    scope_unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"))
    categories: Mapped[str] = mapped_column(String(300), default="")
    per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class InspectorGrid(Base):
    """Which grids an inspector / grid worker (网格员) covers."""

    __tablename__ = "inspector_grids"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"), primary_key=True, index=True)


class Venue(Base):
    """A firm or venue with its 平安码 (一企一所一码)."""

    __tablename__ = "venues"
    __table_args__ = (
        CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="lonlat_range"),
        Index("ix_venues_grid_code", "grid_id", "safety_code"),
    )

    id: Mapped[intpk]
    code: Mapped[str_code] = mapped_column(unique=True)
    name: Mapped[str_name]
    category: Mapped[VenueCategory] = mapped_column(enum_column(VenueCategory, "venue_category"))
    address: Mapped[str] = mapped_column(String(300))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    grid_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"))
    safety_code: Mapped[SafetyCode] = mapped_column(enum_column(SafetyCode, "safety_code"))
    responsible_person: Mapped[str] = mapped_column(String(64))
    responsible_phone: Mapped[str | None] = mapped_column(String(20))
    inspector_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    last_inspected_on: Mapped[date | None]
    next_due_on: Mapped[date | None] = mapped_column(index=True)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime]


class SafetyCodeChange(Base):
    """Every change of a venue's 平安码, with its reason (append-only)."""

    __tablename__ = "safety_code_changes"

    id: Mapped[intpk]
    venue_id: Mapped[int] = mapped_column(BigId, ForeignKey("venues.id"), index=True)
    changed_at: Mapped[datetime]
    from_code: Mapped[SafetyCode | None] = mapped_column(enum_column(SafetyCode, "safety_code_from"))
    to_code: Mapped[SafetyCode] = mapped_column(enum_column(SafetyCode, "safety_code_to"))
    reason: Mapped[str] = mapped_column(String(500))


class Inspection(Base):
    """One visit to a venue (平安检查) and its checklist result."""

    __tablename__ = "inspections"
    __table_args__ = (Index("ix_inspections_venue_at", "venue_id", "inspected_at"),)

    id: Mapped[intpk]
    venue_id: Mapped[int] = mapped_column(BigId, ForeignKey("venues.id"))
    inspector_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    inspected_at: Mapped[datetime] = mapped_column(index=True)
    result: Mapped[InspectionResult] = mapped_column(enum_column(InspectionResult, "inspection_result"))
    checklist_json: Mapped[str] = mapped_column(Text, default="{}")  # item -> pass/fail/na
    note: Mapped[str | None] = mapped_column(String(1000))


class Hazard(Base):
    """A hazard (隐患) found at a venue, followed until rectified (整改)."""

    __tablename__ = "hazards"
    __table_args__ = (
        CheckConstraint("rectified_on IS NULL OR rectified_on >= found_on", name="rectified_after_found"),
        CheckConstraint("deadline >= found_on", name="deadline_after_found"),
        CheckConstraint("(status = 'rectified') = (rectified_on IS NOT NULL)", name="rectified_iff_date"),
        Index("ix_hazards_venue_status", "venue_id", "status"),
    )

    id: Mapped[intpk]
    venue_id: Mapped[int] = mapped_column(BigId, ForeignKey("venues.id"))
    inspection_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inspections.id"), index=True)
    severity: Mapped[HazardSeverity] = mapped_column(enum_column(HazardSeverity, "hazard_severity"))
    description: Mapped[str] = mapped_column(String(500))
    found_on: Mapped[date]
    deadline: Mapped[date]
    status: Mapped[HazardStatus] = mapped_column(enum_column(HazardStatus, "hazard_status"))
    rectified_on: Mapped[date | None]


#: The statuses whose stage clock runs (``domain.deadlines.STAGE_OF_STATUS``: the open ones and 已办结
#: awaiting 核查) as SQL, for the partial index of events with a running deadline.
TIMED_EVENTS_SQL = "status IN ('reported', 'accepted', 'dispatched', 'returned', 'in_progress', 'resolved')"


class Event(Base):
    """An event (事件) in the closed loop; its history is in ``event_transitions``."""

    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint("lon BETWEEN -180 AND 180 AND lat BETWEEN -90 AND 90", name="lonlat_range"),
        CheckConstraint("reporter_count >= 1", name="reporter_count_positive"),
        CheckConstraint("merged_into_id IS NULL OR merged_into_id <> id", name="not_merged_into_self"),
        Index("ix_events_grid_status", "grid_id", "status"),
        Index("ix_events_reported_at", "reported_at"),
        Index("ix_events_updated_at", "updated_at"),
        Index("ix_events_resolved_at", "resolved_at"),
        Index("ix_events_grid_reported", "grid_id", "reported_at"),
        Index("ix_events_department_status", "lead_department_id", "status"),
        Index("ix_events_owner_unit", "owner_unit_id"),
        Index("ix_events_venue_reported", "venue_id", "reported_at"),
        Index("ix_events_merged_into", "merged_into_id"),
        # The few events whose deadline runs, by deadline: the runner's 超期, 上移 and 督办 sweeps (no scan).
        Index(
            "ix_events_timed_due",
            "due_at",
            sqlite_where=text(TIMED_EVENTS_SQL),
            postgresql_where=text(TIMED_EVENTS_SQL),
        ),
        # 外部编号 unique per source (a 12345 work order imported once); NULLs (no number) repeat freely.
        Index("uq_events_source_external_ref", "source", "external_ref", unique=True),
    )

    id: Mapped[intpk]
    source: Mapped[EventSource] = mapped_column(enum_column(EventSource, "event_source"))
    category: Mapped[EventCategory] = mapped_column(enum_column(EventCategory, "event_category"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    grid_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"))
    venue_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("venues.id"))
    status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus, "event_status"))
    urgency: Mapped[Urgency] = mapped_column(enum_column(Urgency, "urgency"))
    owner_unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("admin_units.id"))  # level that owns it now
    lead_department_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("departments.id"))
    reporter_name: Mapped[str | None] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    reporter_count: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))  # 群发
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"))
    # 疑似重复: the likely original (same category, ≤ 50 m, ≤ 24 h) flagged at intake for staff to merge.
    duplicate_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"))
    external_ref: Mapped[str | None] = mapped_column(String(64))  # 外部编号 of an imported event
    reported_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]  # deadline of the current stage
    rating: Mapped[Rating | None] = mapped_column(enum_column(Rating, "rating"))
    escalations: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    is_overdue: Mapped[bool] = mapped_column(default=False, server_default=false())
    updated_at: Mapped[datetime]


class EventCooperator(Base):
    """Cooperating departments of a cross-department matter (一件事); the lead is on the event."""

    __tablename__ = "event_cooperators"

    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("events.id"), primary_key=True)
    department_id: Mapped[int] = mapped_column(BigId, ForeignKey("departments.id"), primary_key=True)


class EventTransition(Base):
    """One step of an event's loop (全留痕): append-only; replaying them rebuilds the event's state."""

    __tablename__ = "event_transitions"
    __table_args__ = (
        UniqueConstraint("event_id", "seq", name="uq_event_transitions_event_seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_event_transitions_unit", "unit_id"),
        Index("ix_event_transitions_department", "department_id"),
    )

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("events.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[EventStatus | None] = mapped_column(enum_column(EventStatus, "event_status_from"))
    to_status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus, "event_status_to"))
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))  # None: the system
    actor_role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("admin_units.id"))
    department_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("departments.id"))
    note: Mapped[str | None] = mapped_column(String(1000))


class Submission(Base):
    """A client's submission key (提交编号, decision 0021): a retried create finds its first result here.

    ``kind`` names the create (``event.report``, ``inspection.record``, ``event.import``); the key is the
    client's (a form's once-per-display key, an API's Idempotency-Key, a file's digest) and unique per
    kind. ``fingerprint`` is the digest of what was submitted: the same key with other content is refused.
    ``origin`` is a digest of the submitting browser session (the 随手拍 rate limit counts it).
    """

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_submissions_kind_key"),
        Index("ix_submissions_origin_at", "origin", "created_at"),
    )

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[int | None] = mapped_column(BigId)  # the row created (events.id, inspections.id)
    result_json: Mapped[str | None] = mapped_column(Text)  # what the first call returned
    created_at: Mapped[datetime]


class Setting(Base):
    """Admin-editable parameters (thresholds, deadlines, capacities) as JSON by key."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Attachment(Base):
    """A photo attached to an event, inspection or hazard; stored after its EXIF (GPS) is stripped."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("size_bytes > 0 AND size_bytes <= 10485760", name="size_limit"),
        CheckConstraint("mime IN ('image/jpeg', 'image/png', 'image/webp')", name="mime_allowed"),
    )

    id: Mapped[intpk]
    event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"), index=True)
    inspection_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("inspections.id"), index=True)
    hazard_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("hazards.id"), index=True)
    mime: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    #: The event's trail step (``event_transitions.seq``) the photo was stored with (办结's 处置照片);
    #: NULL for a report's own photo and for rows stored before migration 0016 (matched by time).
    step_seq: Mapped[int | None] = mapped_column(Integer)


class AuditLog(Base):
    """The tamper-evident trail (全留痕): one row per change, hash-chained, append-only (decision 0006).

    ``hash`` = sha256(prev_hash + canonical JSON of the row's fields); ``services.audit`` writes and
    verifies it. Guard triggers (migration 0004) refuse UPDATE and DELETE on both backends; on
    PostgreSQL the app's role holds only SELECT and INSERT here (``python -m db.roles``). No foreign
    keys: the trail outlives the rows it describes.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)  # from audit_head: gapless
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(BigId)  # None: the system (or nobody logged in)
    actor_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))  # e.g. event.dispatch, setting.write
    entity: Mapped[str] = mapped_column(String(64))  # the table changed
    entity_id: Mapped[int | None] = mapped_column(BigId)  # None for batches and keyed rows (in before/after)
    before: Mapped[str | None] = mapped_column(Text)  # canonical JSON text
    after: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(1000))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head (one row): the last id and hash. Updated first by every record, so concurrent
    writers queue on its row lock (PostgreSQL); verify compares it with the last row (a deleted tail)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
    #: The hash before ``hash`` (PostgreSQL): how one UPDATE returns the row's prev_hash and its own hash
    #: when the store chains a row (services.audit.chained). Never read to verify anything.
    prev_hash: Mapped[str | None] = mapped_column(String(64))


class JobRun(Base):
    """One run of a timed job (定时任务) for one due moment; the row is also the claim (decision 0015).

    A runner inserts (job, due_at) before doing the work: the unique pair lets one runner have it and the
    others skip. ``outcome`` is running → ok or failed; a failed or abandoned run may be taken again
    (``attempts``) by a later pass. The runner's own record: not a business change, no trail row.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "due_at", name="uq_job_runs_job_due_at"),
        CheckConstraint("outcome IN ('running', 'ok', 'failed')", name="outcome_known"),
        CheckConstraint("attempts >= 1", name="attempts_positive"),
    )

    id: Mapped[intpk]
    job: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    count: Mapped[int | None] = mapped_column(Integer)  # items done (events, reminders, alerts, files, rows)
    summary: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    runner: Mapped[str] = mapped_column(String(100))  # host:pid


class EventReminder(Base):
    """督办提醒: one reminder per event and stage deadline, raised by the jobs runner (near or past it)."""

    __tablename__ = "event_reminders"
    __table_args__ = (
        UniqueConstraint("event_id", "due_at", name="uq_event_reminders_event_due_at"),
        CheckConstraint("kind IN ('near', 'late')", name="kind_known"),
        Index("ix_event_reminders_raised_at", "raised_at"),
    )

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("events.id"))
    due_at: Mapped[datetime]  # the stage deadline reminded of
    stage: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(String(300))
    raised_at: Mapped[datetime]


class DailyAlert(Base):
    """An early warning (预警) of the daily pass, judged over the whole store for ``day``.

    The unit is kept by its code (and its id at the time): alerts outlive a boundary replacement.
    """

    __tablename__ = "daily_alerts"
    __table_args__ = (Index("ix_daily_alerts_day", "day"),)

    id: Mapped[intpk]
    day: Mapped[date]
    unit_code: Mapped[str_code]
    unit_level: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[date]
    period_end: Mapped[date]
    evidence_json: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class AuditCheck(Base):
    """A verification of the audit chain (审计链校验): rows checked, and the first broken row if any."""

    __tablename__ = "audit_checks"

    id: Mapped[intpk]
    checked_at: Mapped[datetime] = mapped_column(index=True)
    rows_checked: Mapped[int] = mapped_column(BigId)
    ok: Mapped[bool]
    broken_id: Mapped[int | None] = mapped_column(BigId)
    problem: Mapped[str | None] = mapped_column(String(500))


class ForecastModel(Base):
    """A trained hazard forecast (隐患预测模型, decision 0030): one row per version, kept for rollback.

    ``cutoff`` is the last day of the history it learned from (validated on the 30 days after it);
    ``features_json`` its feature names in order; ``metrics_json`` the validation figures (AUC, Brier,
    reliability bins, top-10 %/20 % capture); ``model_blob`` the pickled estimator, read only from this
    store. Exactly one version is ``is_active`` once any is trained.
    """

    __tablename__ = "forecast_models"

    id: Mapped[intpk]
    version: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime]
    cutoff: Mapped[date]
    features_json: Mapped[str] = mapped_column(Text)
    metrics_json: Mapped[str] = mapped_column(Text)
    model_blob: Mapped[bytes] = mapped_column(LargeBinary)
    is_active: Mapped[bool] = mapped_column(default=False, server_default=false())


class VenueForecast(Base):
    """One venue's forecast by one model version: the probability that a visit within 30 days finds a
    hazard and the expected severity weight. ``explanation_json`` is ``""`` since decision 0037: the top
    contributing features (为什么优先) are made on read for the venues shown (``services.forecast``)."""

    __tablename__ = "venue_forecasts"
    __table_args__ = (Index("ix_venue_forecasts_venue", "venue_id"),)

    model_id: Mapped[int] = mapped_column(BigId, ForeignKey("forecast_models.id"), primary_key=True)
    venue_id: Mapped[int] = mapped_column(BigId, ForeignKey("venues.id"), primary_key=True)
    scored_on: Mapped[date]
    probability: Mapped[float] = mapped_column(Float)
    severity: Mapped[float] = mapped_column(Float)
    explanation_json: Mapped[str] = mapped_column(Text)


class EventDaily(Base):
    """Rollup (decision 0032): the KPI sums of the events reported on one China-local ``day`` in one grid
    with one lead department (``department_id`` 0: none yet). Every column adds up over grids, days and
    departments, so a period's KPIs are sums of these rows (:data:`domain.kpi.SUM_COLUMNS`), and
    ``all_events`` (rejected and merged ones included) is what the home page counts. Maintained by
    :mod:`services.rollups`; never written by a use case."""

    __tablename__ = "event_daily"
    __table_args__ = (Index("ix_event_daily_grid_day", "grid_id", "day"),)  # migration 0015

    day: Mapped[date] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    department_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    all_events: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    reports: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    handling_hours_sum: Mapped[float] = mapped_column(Float)
    handled: Mapped[int] = mapped_column(Integer)


class _KpiSums:
    """The :data:`domain.kpi.SUM_COLUMNS` and ``all_events``, as in :class:`EventDaily`."""

    all_events: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    reports: Mapped[int] = mapped_column(Integer)
    resolved: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    overdue: Mapped[int] = mapped_column(Integer)
    handling_hours_sum: Mapped[float] = mapped_column(Float)
    handled: Mapped[int] = mapped_column(Integer)


class EventGridDaily(_KpiSums, Base):
    """Rollup (decision 0034): :class:`EventDaily` summed over departments, per day × grid (area views)."""

    __tablename__ = "event_grid_daily"
    __table_args__ = (Index("ix_event_grid_daily_grid_day", "grid_id", "day"),)

    day: Mapped[date] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class EventTownshipDaily(_KpiSums, Base):
    """Rollup (decision 0045): :class:`EventGridDaily` summed per day × township (each grid's grandparent):
    a city's or a county's area view reads ~60 rows a day, not the city's ~5,400 grid rows."""

    __tablename__ = "event_township_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    township_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class EventDepartmentDaily(_KpiSums, Base):
    """Rollup (decision 0034): :class:`EventDaily` summed over grids, per day × lead department (0: none);
    the department view of a scope holding every grid."""

    __tablename__ = "event_department_daily"

    day: Mapped[date] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(BigId, primary_key=True)


class EventCategoryDaily(Base):
    """Rollup (decision 0034): per day × grid × category (its value) the events not merged into another,
    what 预警's daily counts are made of (:func:`domain.early_warning.daily_counts`)."""

    __tablename__ = "event_category_daily"
    __table_args__ = (Index("ix_event_category_daily_grid_day", "grid_id", "day", "category", "counted"),)

    day: Mapped[date] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    counted: Mapped[int] = mapped_column(Integer)


class EventGridTotal(Base):
    """Rollup (decision 0034): every event ever reported in a grid (the home page's all-time count)."""

    __tablename__ = "event_grid_totals"

    grid_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    all_events: Mapped[int] = mapped_column(Integer)


class EventRecentReport(Base):
    """Rollup (decision 0034): the reports of the last :data:`services.rollups.RECENT_DAYS` days as 预警's
    顽疾 and 群发 read them, stored by grid then time (clustered on SQLite: a township's eight weeks are
    contiguous pages, not scattered rows of the city's events). From ``rollup_state.kept_from`` on."""

    __tablename__ = "event_recent_reports"
    __table_args__ = ({"sqlite_with_rowid": False},)

    grid_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reported_at: Mapped[datetime] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    reporter_count: Mapped[int] = mapped_column(Integer)
    merged_into_id: Mapped[int | None] = mapped_column(BigId)
    #: Reports of the same matter (category and title) in this table within 51 m, itself included, NULL
    #: for one alone or without a place (decision 0038): 顽疾's possible seeds are the rows with ``near`` ≥ 8.
    near: Mapped[int | None] = mapped_column(Integer)


class RollupState(Base):
    """How far a rollup has read: ``watermark`` is the last ``event_transitions.id`` folded in."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[int] = mapped_column(BigId)
    rebuilt_at: Mapped[datetime]
    refreshed_at: Mapped[datetime]
    #: The first day a rollup keeping recent days only holds (``event_recent_reports``; migration 0015).
    kept_from: Mapped[date | None]
    #: PostgreSQL: the transactions in progress when the rollup last read, each with the lowest transition
    #: id it can have drawn, as JSON ``{"xid": floor}``: the next refresh re-reads from there (migration 0023).
    pending: Mapped[str | None] = mapped_column(Text)
