"""Reads behind the live event flow page: the feed of what changed, counts by state, today's flow, overdue,
one event and the actions its form offers, the departments to dispatch to.

Every function takes the set of grids the user may see (their scope), plus a department for
department handlers, and reads nothing outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, func, select

from db.frames import rows_frame
from db.models import (
    AdminUnit,
    Attachment,
    Department,
    Event,
    EventCooperator,
    EventTransition,
    InspectorGrid,
)
from domain.access import (
    CurrentUser,
    department_may_act,
    handler_may_act,
    mask_name,
    mask_phone,
    may_act,
    owner_may_act,
    redact,
)
from domain.event_flow import Action, allowed_actions
from domain.todo import LEADERS, WAITING_STATUSES, Desk, answering_level, waiting
from domain.vocabulary import (
    OPEN_STATUSES,
    RESOLVED_STATUSES,
    AdminLevel,
    EventCategory,
    EventSource,
    EventStatus,
    Role,
    Urgency,
)
from services.access import Scope, deny, event_in_scope, unit_in_scope
from services.departments import disabled_ids
from services.geography import tree as store_tree

FEED_COLUMNS = [
    "id",
    "updated_at",
    "reported_at",
    "source",
    "category",
    "title",
    "status",
    "urgency",
    "grid_id",
    "is_overdue",
    "reporter_count",
]


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    """Chinese labels beside the enum columns; a phone number typed into a title shown masked (PIPL)."""
    if "title" in df:
        df["title"] = df["title"].map(lambda t: redact(t) if isinstance(t, str) else t)
    for col, enum in (
        ("source", EventSource),
        ("category", EventCategory),
        ("status", EventStatus),
        ("urgency", Urgency),
    ):
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


def open_counts_below(conn: Connection, scope: Scope, unit_id: int) -> tuple[AdminLevel | None, pd.DataFrame]:
    """The level one below ``unit_id`` and, per unit of it, the open events by status (status value
    columns, plus ``name`` and ``total``), most first; an empty frame at grid level or with nothing open."""
    tree = store_tree(conn)
    level = tree.level(unit_id).child
    by_grid = open_counts_by_grid(conn, scope)
    if level is None or by_grid.empty:
        return level, pd.DataFrame()
    kids = tree.descendants(unit_id, level)
    owner = {g: kid for kid in kids for g in tree.grids_under(kid)}
    table = by_grid.groupby(by_grid.index.map(owner)).sum().reindex(kids, fill_value=0)
    table["total"] = table.sum(axis=1)
    table.insert(0, "name", [tree.name(k) for k in kids])
    return level, table.sort_values("total", ascending=False, kind="stable")


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
    if s in RESOLVED_STATUSES:
        return "已办结"
    if s is EventStatus.REJECTED:
        return "已退回"
    return "处置中"


def overdue(conn: Connection, scope: Scope, now: datetime, limit: int = 200) -> pd.DataFrame:
    """Open events past their stage deadline (督办), most late first, with how late in hours."""
    rows = conn.execute(
        select(
            Event.id,
            Event.title,
            Event.category,
            Event.status,
            Event.urgency,
            Event.due_at,
            Event.grid_id,
            Event.owner_unit_id,
        )
        .where(*scope.where(), Event.status.in_(OPEN_STATUSES), Event.due_at < now)
        .order_by(Event.due_at)
        .limit(limit)
    ).all()
    df = _labelled(
        rows_frame(
            rows, ["id", "title", "category", "status", "urgency", "due_at", "grid_id", "owner_unit_id"]
        )
    )
    df["late_hours"] = ((now - pd.to_datetime(df["due_at"])).dt.total_seconds() / 3600).round(1)
    return df


TODO_COLUMNS = [
    "id",
    "title",
    "category",
    "status",
    "urgency",
    "reported_at",
    "due_at",
    "grid_id",
    "owner_unit_id",
    "lead_department_id",
]


def desk_of(conn: Connection, user: CurrentUser) -> Desk:
    """What ``user`` answers for (:class:`domain.todo.Desk`): a leader the owning units of their level
    (a township's leader its villages' and grids' too), a grid worker their grids, a handler their
    department."""
    if user.role in LEADERS:
        tree = store_tree(conn)
        unit = user.scope_unit_id
        owners = {unit}
        if unit in tree:  # the units below whose events this level answers for
            level = tree.level(unit)
            below = [lv for lv in AdminLevel if lv.depth > level.depth and answering_level(lv) is level]
            owners |= {u for lv in below for u in tree.descendants(unit, lv)}
        return Desk(user.role, owner_units=frozenset(owners))
    if user.role is Role.INSPECTOR:
        grids = conn.execute(select(InspectorGrid.grid_id).where(InspectorGrid.user_id == user.id))
        return Desk(user.role, grids=frozenset(grids.scalars()))
    return Desk(user.role, department_id=user.department_id)


def my_todo(conn: Connection, user: CurrentUser, scope: Scope, now: datetime) -> pd.DataFrame:
    """我的待办: the events in scope whose next step is the user's (:func:`domain.todo.waiting`), overdue
    and oldest first, with ``step`` (an :class:`Action`), ``late`` and ``late_hours`` (negative: hours
    left) beside the labelled columns. The store narrows by status and by what the desk answers for;
    the rule itself is the domain's."""
    desk = desk_of(conn, user)
    q = select(*(getattr(Event, c) for c in TODO_COLUMNS)).where(
        *scope.where(), Event.status.in_(WAITING_STATUSES)
    )
    if user.role in LEADERS:
        q = q.where(Event.owner_unit_id.in_(desk.owner_units))
    elif user.role is Role.INSPECTOR:
        q = q.where(Event.grid_id.in_(desk.grids or (-1,)))
    else:
        q = q.where(Event.lead_department_id == (desk.department_id or -1))
    found = rows_frame(conn.execute(q).all(), TODO_COLUMNS)
    mine = waiting(desk, found.to_dict("records"), now)
    df = _labelled(pd.DataFrame(mine, columns=[*TODO_COLUMNS, "step", "late"]))
    due = pd.to_datetime(df["due_at"])
    df["late_hours"] = ((now - due).dt.total_seconds() / 3600).round(1)
    return df


def due_label(late: bool, hours: float) -> str:
    """超期2天 / 超时3小时 when late; 剩余5小时 / 剩余1天 while the deadline runs; — without one."""
    if pd.isna(hours):
        return "—"
    if late:
        return late_label(hours)
    left = -hours
    return f"剩余{int(left // 24)}天" if left >= 24 else f"剩余{max(1, int(left))}小时"


def late_label(hours: float) -> str:
    """超时3小时 / 超期2天: how late, in the unit a supervisor thinks in."""
    return f"超期{int(hours // 24)}天" if hours >= 24 else f"超时{max(1, int(hours))}小时"


@dataclass
class EventDetail:
    """One event: its row, its trail (全留痕), the photos of its report, and the photos a later step
    attached (办结's 处置照片) by the trail row's ``seq``."""

    event: dict
    trail: pd.DataFrame
    photos: list[bytes]
    step_photos: dict[int, list[bytes]] = field(default_factory=dict)


def event_detail(conn: Connection, scope: Scope, event_id: int, user: CurrentUser) -> EventDetail | None:
    """One event in scope with its whole trail and photos; None when it is outside the user's scope."""
    found = (
        conn.execute(select(Event.__table__).where(Event.id == event_id, *scope.where()))
        .mappings()
        .one_or_none()
    )

    if found is None or not event_in_scope(conn, user, event_id):  # the page's scope, and the store's
        if conn.execute(select(Event.id).where(Event.id == event_id)).first() is not None:
            deny(user, "view event", event_id)
        return None
    event = dict(found)
    # Masked for everyone; a permitted role reveals one record with a reason (services.personal_data).
    event["reporter_name"] = mask_name(event["reporter_name"])
    event["reporter_phone"] = mask_phone(event["reporter_phone"])
    event["title"], event["description"] = redact(event["title"]), redact(event["description"] or "")
    owner = conn.execute(
        select(AdminUnit.name, AdminUnit.level).where(AdminUnit.id == event["owner_unit_id"])
    ).one()
    event["owner_label"] = f"{owner.name}（{AdminLevel(owner.level).label}）"
    event["owner_in_scope"] = unit_in_scope(conn, user, event["owner_unit_id"])
    dept = conn.execute(select(Department.name).where(Department.id == event["lead_department_id"])).scalar()
    event["department_label"] = dept or "—"
    # 一件事: the cooperating departments (协办) beside the lead (牵头).
    coop = conn.execute(
        select(Department.id, Department.name)
        .join(EventCooperator, EventCooperator.department_id == Department.id)
        .where(EventCooperator.event_id == event_id)
        .order_by(Department.name)
    ).all()
    event["cooperator_ids"] = [d.id for d in coop]
    event["cooperators_label"] = "、".join(d.name for d in coop) or "—"
    unit = AdminUnit.__table__.alias("unit")
    trail = pd.DataFrame(
        conn.execute(
            select(
                EventTransition.seq,
                EventTransition.at,
                EventTransition.action,
                EventTransition.from_status,
                EventTransition.to_status,
                EventTransition.actor_role,
                unit.c.name,
                Department.name,
                EventTransition.note,
            )
            .outerjoin(unit, unit.c.id == EventTransition.unit_id)
            .outerjoin(Department, Department.id == EventTransition.department_id)
            .where(EventTransition.event_id == event_id)
            .order_by(EventTransition.seq)
        ).all(),
        columns=[
            "seq",
            "at",
            "action",
            "from_status",
            "to_status",
            "actor_role",
            "unit",
            "department",
            "note",
        ],
    )
    # A step's photos name their trail step (migration 0016). Older rows were only stamped with the step's
    # moment: they belong to the trail row of that moment (the report's own photo stays with the report).
    steps: dict[datetime, int | None] = {}
    for seq, at, action in zip(trail["seq"], trail["at"], trail["action"], strict=True):
        steps[at] = None if action == Action.REPORT or steps.get(at, 0) is None else int(seq)
    photos: list[bytes] = []
    step_photos: dict[int, list[bytes]] = {}
    for data, at, step_seq in conn.execute(
        select(Attachment.data, Attachment.created_at, Attachment.step_seq)
        .where(Attachment.event_id == event_id)
        .order_by(Attachment.id)
    ).all():
        seq = step_seq if step_seq is not None else steps.get(at)
        if seq is None:
            photos.append(data)
        else:
            step_photos.setdefault(int(seq), []).append(data)
    return EventDetail(event, trail, photos, step_photos)


def today_kpis(conn: Connection, scope: Scope, now: datetime) -> dict[str, int]:
    """Today's new events, open now, overdue now, closed today."""
    day = datetime.combine(now.date(), datetime.min.time())
    where, recent = scope.where(), scope.where(by_time=True)
    new = conn.execute(
        select(func.count()).select_from(Event).where(*recent, Event.reported_at >= day)
    ).scalar_one()
    open_ = conn.execute(
        select(func.count()).select_from(Event).where(*where, Event.status.in_(OPEN_STATUSES))
    ).scalar_one()
    late = conn.execute(
        select(func.count())
        .select_from(Event)
        .where(*where, Event.status.in_(OPEN_STATUSES), Event.due_at < now)
    ).scalar_one()
    closed = conn.execute(
        select(func.count())
        .select_from(Event)
        .where(*recent, Event.resolved_at >= day, Event.resolved_at < day + timedelta(days=1))
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
    off = disabled_ids(conn)  # a disabled department (停用) is suggested for nothing
    by_kind: dict[str, int] = {}
    for _ in range(8):  # five levels; the bound guards a corrupted cycle
        if unit is None or len(by_kind) == len(set(kinds)):
            break
        rows = conn.execute(
            select(Department.id, Department.kind)
            .where(Department.unit_id == unit, Department.kind.in_(kinds), Department.id != lead_id)
            .order_by(Department.id)
        ).all()
        for r in rows:
            if r.id not in off:
                by_kind.setdefault(r.kind, r.id)
        unit = conn.execute(select(AdminUnit.parent_id).where(AdminUnit.id == unit)).scalar()
    return [by_kind[k] for k in dict.fromkeys(kinds) if k in by_kind]


def departments(conn: Connection, grid_id: int | None = None) -> list[tuple[int, str]]:
    """The choices of the dispatch form as (id, name).

    With the event's ``grid_id``: only the departments serving its place, the nearest level first (its
    village's, its township's, then upward to the top), by name within a level; never a sibling unit's
    department (派往部门 of another township). Without one, every department by name. A department disabled
    in 部门管理 (decision 0027) takes no new dispatch and is left out.
    """
    off = disabled_ids(conn)
    rows = [
        r
        for r in conn.execute(
            select(Department.id, Department.name, Department.unit_id).order_by(Department.name)
        ).all()
        if r.id not in off
    ]
    if grid_id is None:
        return [(int(i), str(n)) for i, n, _ in rows]
    depth = {unit: d for d, unit in enumerate(store_tree(conn).path(int(grid_id)))}
    serving = [r for r in rows if r.unit_id in depth]
    serving.sort(key=lambda r: (-depth[r.unit_id], r.name))
    return [(int(i), str(n)) for i, n, _ in serving]


def cooperates_only(user: CurrentUser, event: dict) -> bool:
    """Whether the user sees the event as a handler of a cooperating department, not the lead (一件事 协办)."""
    return user.role is Role.DEPARTMENT and event["lead_department_id"] != user.department_id


def offered_actions(user: CurrentUser, event: dict) -> list[Action]:
    """What the event's form offers: the loop's actions from its status that the user's role may take; a
    cooperating department only writes its opinion (decision 0005); a grid worker does not handle an event a
    department leads (:func:`domain.access.handler_may_act`); a leader below the owning level only writes
    opinions (``owner_in_scope`` from :func:`event_detail`, :func:`domain.access.owner_may_act`). The use
    case checks all of it again."""
    led = event["lead_department_id"] is not None
    actions = [
        a
        for a in allowed_actions(EventStatus(event["status"]))
        if may_act(user, a)
        and handler_may_act(user.role, a, led_by_department=led)
        and owner_may_act(user.role, a, owns=event.get("owner_in_scope", True))
    ]
    if cooperates_only(user, event):
        actions = [a for a in actions if department_may_act(a, leads=False, cooperates=True)]
    elif user.role is Role.DEPARTMENT:  # the lead, while the event is with it (not after its 上移 or 退单)
        actions = [
            a for a in actions if department_may_act(a, leads=True, cooperates=False, status=event["status"])
        ]
    return actions
