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
        CheckConstraint("centroid_lon BETWEEN -180 AND 180 AND centroid_lat BETWEEN -90 AND 90", name="centroid_range"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[intpk]
    code: Mapped[str_code] = mapped_column(unique=True)
    name: Mapped[str_name]
    level: Mapped[AdminLevel] = mapped_column(enum_column(AdminLevel, "admin_level"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # 市/区/县/街道/镇/乡/社区/村/网格
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("admin_units.id"), index=True)
    population: Mapped[int] = mapped_column(Integer)
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
        CheckConstraint("role <> 'department' OR department_id IS NOT NULL", name="department_role_has_department"),
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
    created_at: Mapped[datetime]


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
        CheckConstraint(
            "(status = 'rectified') = (rectified_on IS NOT NULL)", name="rectified_iff_date"
        ),
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
