"""转督办: a leader turns a 预警 into an event to be worked and supervised (issue 16).

:func:`follow_up` creates the event through the report path (:func:`services.events.add_event`: its
first trail row and audit row, owned by the village of its grid, its deadline from the rules), in the
warning's category, at its area's representative point (the unit's stored centroid, a point on its
surface; a grid under it when that point lies in no grid), titled and described in the warning's plain
Chinese, and records one ``warning.followup`` audit row. The same warning (area, day, kind, matter)
turned twice, by the same leader or another, gives the first event (a submission key): one matter, one
event. Only a leader whose scope holds the warning's area may do it (``event_analytics``; logged
otherwise). Decision 0033.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from db.models import AdminUnit
from db.uow import UnitOfWork
from domain.access import CurrentUser
from domain.early_warning import Alert, AlertKind
from domain.vocabulary import EventSource, Urgency
from services import audit, submissions
from services.access import out_of_scope, require_unit
from services.events import Actor, OutsideArea, add_event
from services.geography import tree as store_tree

#: The submission kind of a 转督办 (one event per warning).
KIND = "warning.followup"
#: The source of a followed-up warning: the store's sources have no 预警 yet (a new value needs a
#: migration of the CHECK constraint); 检查发现 is the government's own finding. The title says 预警.
SOURCE = EventSource.INSPECTION
#: Kinds that ask for haste: a sudden or a mass matter is 紧急.
URGENT_KINDS = frozenset({AlertKind.SPIKE, AlertKind.MASS})

#: Alerts judged and stored before the wording changed carry a tail probability: not for staff.
_TAIL = re.compile(r"（泊松尾概率[^）]*）")


def plain(message: str) -> str:
    """An alert's sentence for staff (a stored older sentence loses its tail probability)."""
    return _TAIL.sub("，远高于常态", message)


@dataclass(frozen=True)
class FollowUp:
    """The event a warning became, and whether this call created it (False: it had been turned before)."""

    event_id: int
    created: bool


def warning_key(alert: Alert) -> str:
    """The warning's submission key: its area, day, kind and matter."""
    return f"{alert.unit_id}:{alert.day.isoformat()}:{alert.kind.value}:{alert.category.value}"


def follow_up(uow: UnitOfWork, user: CurrentUser, alert: Alert, now: datetime) -> FollowUp:
    """转督办: the event for ``alert`` (created once); refused (:class:`services.access.OutOfScope`, logged)
    for a role without the warnings view or an area outside the user's scope."""
    key = warning_key(alert)
    if not user.may("event_analytics"):
        raise out_of_scope(user, "warning follow-up", alert.unit_id, "您的角色不能将预警转为督办事件")
    fingerprint = submissions.digest({"warning": key})
    with uow.begin("warnings.followup"):
        conn = uow.conn
        require_unit(conn, user, alert.unit_id, "warning follow-up")
        first = submissions.find(conn, KIND, key, fingerprint)
        if first is None and not submissions.claim(conn, KIND, key, fingerprint, now):
            first = submissions.find(conn, KIND, key, fingerprint)
        if first is not None and first.entity_id is not None:
            return FollowUp(int(first.entity_id), created=False)
        unit = conn.execute(
            select(AdminUnit.name, AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(
                AdminUnit.id == alert.unit_id
            )
        ).one()
        title = f"【预警转督办】{unit.name}{alert.kind.label}：{alert.category.label}"
        fields = {
            "source": SOURCE,
            "category": alert.category,
            "title": title,
            "now": now,
            "actor": Actor(user.id, user.role.value),
            "description": f"{plain(alert.message)}（预警日期 {alert.day:%Y-%m-%d}）",
            "urgency": Urgency.URGENT if alert.kind in URGENT_KINDS else Urgency.NORMAL,
            "address": unit.name,
        }
        try:
            event = add_event(uow.session, lon=unit.centroid_lon, lat=unit.centroid_lat, **fields)
        except OutsideArea:  # the area's point lies between grids: its first grid's point
            grid = store_tree(conn).grids_under(alert.unit_id)[0]
            lon, lat = conn.execute(
                select(AdminUnit.centroid_lon, AdminUnit.centroid_lat).where(AdminUnit.id == grid)
            ).one()
            event = add_event(uow.session, lon=lon, lat=lat, **fields)
        audit.record(
            conn,
            **audit.who(user),
            action=KIND,
            entity="events",
            entity_id=event.id,
            before=None,
            after={"warning": key, "event_id": event.id},
        )
        submissions.settle(conn, KIND, key, event.id, {"event_id": event.id})
        uow.commit()
        return FollowUp(event.id, created=True)
