"""Reads behind the live event flow page: the feed of what changed, counts by state, today's flow, overdue, one event.

Every function takes the set of grids the user may see (their scope), plus a department for
department handlers, and reads nothing outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, or_, select

from db.frames import rows_frame
from db.models import AdminUnit, Attachment, Department, Event, EventCooperator, EventTransition
from domain.access import CurrentUser, mask_name, mask_phone, redact
from domain.vocabulary import (
    OPEN_STATUSES,
    AdminLevel,
    EventCategory,
    EventSource,
    EventStatus,
    Role,
    Urgency,
)

FEED_COLUMNS = ["id", "updated_at", "reported_at", "source", "category", "title", "status", "urgency", "grid_id",
                "is_overdue", "reporter_count"]


@dataclass(frozen=True)
class Scope:
    """What a user may see of events: grids of their subtree, and their department if they are a handler."""

    grid_ids: tuple[int, ...]
    department_id: int | None = None

    def where(self, *, by_time: bool = False):
        """The scope's clauses. ``by_time=True`` for a query bounded by a recent time window (today's
        events, changes since the last tick, a month): the grid test is then applied row by row
        (``grid_id + 0``), so the planner walks the time index over the window's few rows instead of
        every event the scope ever had (SQLite otherwise prefers the grid index for an IN list)."""
        grid = Event.grid_id + 0 if by_time else Event.grid_id
        clauses = [grid.in_(self.grid_ids or (-1,))]
        if self.department_id is not None:
            coop = select(EventCooperator.event_id).where(EventCooperator.department_id == self.department_id)
            clauses.append(or_(Event.lead_department_id == self.department_id, Event.id.in_(coop)))
        return clauses


def scope_for(user: CurrentUser, grid_ids: list[int]) -> Scope:
    """The event scope of ``user`` given the grids under their scope unit."""
    return Scope(tuple(grid_ids), user.department_id if user.role is Role.DEPARTMENT else None)


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Chinese labels beside the enum columns; a phone number typed into a title shown masked (PIPL)."""
    if "title" in df:
        df["title"] = df["title"].map(lambda t: redact(t) if isinstance(t, str) else t)
    for col, enum in (("source", EventSource), ("category", EventCategory), ("status", EventStatus),
                      ("urgency", Urgency)):
        if col in df:
            df[col + "_label"] = df[col].map(lambda v, e=enum: e(v).label)
    return df


def feed(conn: Connection, scope: Scope, since: datetime | None, limit: int = 50) -> pd.DataFrame:
    """Events changed after ``since`` (all recent ones when None), newest change first."""
    q = select(*(getattr(Event, c) for c in FEED_COLUMNS)).where(*scope.where(by_time=True))
    if since is not None:
        q = q.where(Event.updated_at > since)
    rows = conn.execute(q.order_by(Event.updated_at.desc(), Event.id.desc()).limit(limit)).all()
    return _labelled(rows_frame(rows, FEED_COLUMNS))


def status_counts_by_grid(conn: Connection, scope: Scope, start: datetime, end: datetime) -> pd.DataFrame:
    """Per grid, events reported in [start, end) by current status (columns: status values)."""
    rows = conn.execute(
        select(Event.grid_id, Event.status, func.count())
        .where(*scope.where(), Event.reported_at >= start, Event.reported_at < end)
        .group_by(Event.grid_id, Event.status)
    ).all()
    df = rows_frame(rows, ["grid_id", "status", "n"])
    df["status"] = df["status"].map(lambda s: EventStatus(s).value)
    wide = df.pivot_table(index="grid_id", columns="status", values="n", aggfunc="sum", fill_value=0)
    return wide.reindex(columns=[s.value for s in EventStatus], fill_value=0)


def open_counts_by_grid(conn: Connection, scope: Scope) -> pd.DataFrame:
    """Per grid, events still open now by status (whenever reported)."""
    rows = conn.execute(
        select(Event.grid_id, Event.status, func.count())
        .where(*scope.where(), Event.status.in_(OPEN_STATUSES))
        .group_by(Event.grid_id, Event.status)
    ).all()
    df = rows_frame(rows, ["grid_id", "status", "n"])
    df["status"] = df["status"].map(lambda s: EventStatus(s).value)
    wide = df.pivot_table(index="grid_id", columns="status", values="n", aggfunc="sum", fill_value=0)
    return wide.reindex(columns=[s.value for s in EventStatus if s in OPEN_STATUSES], fill_value=0)


def todays_flow(conn: Connection, scope: Scope, day_start: datetime) -> pd.DataFrame:
    """Events reported since ``day_start``: source → owning level → lead department kind → outcome, counted."""
    owner = AdminUnit.__table__.alias("owner")
    rows = conn.execute(
        select(Event.source, owner.c.level, Department.kind, Event.status, func.count())
        .join(owner, owner.c.id == Event.owner_unit_id)
        .outerjoin(Department, Department.id == Event.lead_department_id)
        .where(*scope.where(), Event.reported_at >= day_start)
        .group_by(Event.source, owner.c.level, Department.kind, Event.status)
    ).all()
    df = rows_frame(rows, ["source", "level", "department", "status", "n"])
    df["source"] = df["source"].map(lambda v: EventSource(v).label)
    df["level"] = df["level"].map(lambda v: AdminLevel(v).label + "级")
    df["department"] = df["department"].fillna("待派单")
    df["outcome"] = df["status"].map(_outcome)
    return df.drop(columns="status")


def _outcome(status) -> str:
    s = EventStatus(status)
    if s in (EventStatus.RESOLVED, EventStatus.VERIFIED, EventStatus.RATED, EventStatus.ARCHIVED):
        return "已办结"
    if s is EventStatus.REJECTED:
        return "已退回"
    return "处置中"


def overdue(conn: Connection, scope: Scope, now: datetime, limit: int = 200) -> pd.DataFrame:
    """Open events past their stage deadline (督办), most late first, with how late in hours."""
    rows = conn.execute(
        select(Event.id, Event.title, Event.category, Event.status, Event.urgency, Event.due_at, Event.grid_id,
               Event.owner_unit_id)
        .where(*scope.where(), Event.status.in_(OPEN_STATUSES), Event.due_at < now)
        .order_by(Event.due_at)
        .limit(limit)
    ).all()
    df = _labelled(rows_frame(rows, ["id", "title", "category", "status", "urgency", "due_at", "grid_id",
                                                "owner_unit_id"]))
    df["late_hours"] = ((now - pd.to_datetime(df["due_at"])).dt.total_seconds() / 3600).round(1)
    return df


def late_label(hours: float) -> str:
    """超时3小时 / 超期2天: how late, in the unit a supervisor thinks in."""
    return f"超期{int(hours // 24)}天" if hours >= 24 else f"超时{max(1, int(hours))}小时"


@dataclass
class EventDetail:
    event: dict
    trail: pd.DataFrame
    photos: list[bytes]


def event_detail(conn: Connection, scope: Scope, event_id: int, user: CurrentUser) -> EventDetail | None:
    """One event in scope with its whole trail and photos; None when it is outside the user's scope."""
    found = conn.execute(select(Event.__table__).where(Event.id == event_id, *scope.where())).mappings().one_or_none()
    from services.access import deny, event_in_scope

    if found is None or not event_in_scope(conn, user, event_id):  # the page's scope, and the store's
        if conn.execute(select(Event.id).where(Event.id == event_id)).first() is not None:
            deny(user, "view event", event_id)
        return None
    event = dict(found)
    # Masked for everyone; a permitted role reveals one record with a reason (services.personal_data).
    event["reporter_name"] = mask_name(event["reporter_name"])
    event["reporter_phone"] = mask_phone(event["reporter_phone"])
    event["title"], event["description"] = redact(event["title"]), redact(event["description"] or "")
    owner = conn.execute(select(AdminUnit.name, AdminUnit.level).where(AdminUnit.id == event["owner_unit_id"])).one()
    event["owner_label"] = f"{owner.name}（{AdminLevel(owner.level).label}）"
    dept = conn.execute(select(Department.name).where(Department.id == event["lead_department_id"])).scalar()
    event["department_label"] = dept or "—"
    # 一件事: the cooperating departments (协办) beside the lead (牵头).
    coop = conn.execute(
        select(Department.id, Department.name).join(EventCooperator, EventCooperator.department_id == Department.id)
        .where(EventCooperator.event_id == event_id).order_by(Department.name)
    ).all()
    event["cooperator_ids"] = [d.id for d in coop]
    event["cooperators_label"] = "、".join(d.name for d in coop) or "—"
    unit = AdminUnit.__table__.alias("unit")
    trail = pd.DataFrame(
        conn.execute(
            select(EventTransition.seq, EventTransition.at, EventTransition.action, EventTransition.from_status,
                   EventTransition.to_status, EventTransition.actor_role, unit.c.name, Department.name,
                   EventTransition.note)
            .outerjoin(unit, unit.c.id == EventTransition.unit_id)
            .outerjoin(Department, Department.id == EventTransition.department_id)
            .where(EventTransition.event_id == event_id)
            .order_by(EventTransition.seq)
        ).all(),
        columns=["seq", "at", "action", "from_status", "to_status", "actor_role", "unit", "department", "note"],
    )
    photos = list(conn.execute(select(Attachment.data).where(Attachment.event_id == event_id)).scalars())
    return EventDetail(event, trail, photos)


def today_kpis(conn: Connection, scope: Scope, now: datetime) -> dict[str, int]:
    """Today's new events, open now, overdue now, closed today."""
    day = datetime.combine(now.date(), datetime.min.time())
    where, recent = scope.where(), scope.where(by_time=True)
    new = conn.execute(select(func.count()).select_from(Event).where(*recent, Event.reported_at >= day)).scalar_one()
    open_ = conn.execute(select(func.count()).select_from(Event).where(*where, Event.status.in_(OPEN_STATUSES))).scalar_one()
    late = conn.execute(
        select(func.count()).select_from(Event).where(*where, Event.status.in_(OPEN_STATUSES), Event.due_at < now)
    ).scalar_one()
    closed = conn.execute(
        select(func.count()).select_from(Event).where(*recent, Event.resolved_at >= day,
                                                      Event.resolved_at < day + timedelta(days=1))
    ).scalar_one()
    return {"今日新增": new, "在办": open_, "超期": late, "今日办结": closed}


def suggest_cooperators(conn: Connection, kinds: tuple[str, ...], lead_id: int | None) -> list[int]:
    """The departments of ``kinds`` (a 一件事 rule's cooperating kinds) serving the lead department's unit.

    Cooperators work beside the lead at its level (e.g. the township's 司法所 and 派出所 beside its
    综合执法中队); a kind the unit has no department of comes from the nearest unit above that has
    one (交警, 消防 serve a county), and a kind found nowhere is left for the dispatcher to pick.
    """
    if not kinds or lead_id is None:
        return []
    unit = conn.execute(select(Department.unit_id).where(Department.id == lead_id)).scalar()
    by_kind: dict[str, int] = {}
    for _ in range(8):  # five levels; the bound guards a corrupted cycle
        if unit is None or len(by_kind) == len(set(kinds)):
            break
        rows = conn.execute(
            select(Department.id, Department.kind).where(Department.unit_id == unit, Department.kind.in_(kinds),
                                                         Department.id != lead_id).order_by(Department.id)
        ).all()
        for r in rows:
            by_kind.setdefault(r.kind, r.id)
        unit = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == unit)).scalar()
    return [by_kind[k] for k in dict.fromkeys(kinds) if k in by_kind]
