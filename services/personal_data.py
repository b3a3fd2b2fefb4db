"""Personal data (个人信息, PIPL): shown masked to everyone; revealed one record at a time, with a reason, logged.

Every read service masks reporters' names and phones and responsible persons' phones. A role with the
``unmask_personal_data`` permission (admin, command centre) may reveal one record's contact details by
giving a reason (e.g. 回访核实); the reveal is written to the audit trail (who, when, which record, why)
in the same transaction that reads the data, so no reveal goes unrecorded. Roles without the permission
are refused and the refusal is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from db.models import Event, Venue
from db.uow import UnitOfWork
from domain.access import CurrentUser, redact
from services import audit
from services.access import event_in_scope, out_of_scope, venue_in_scope

REASON_MIN, REASON_MAX = 4, 200
PERMISSION = "unmask_personal_data"


class ReasonRequired(ValueError):
    """The reveal needs a reason of 4–200 characters; the message says so in Chinese."""


@dataclass(frozen=True)
class Contact:
    """Revealed contact details of one record."""

    name: str | None
    phone: str | None


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < REASON_MIN:
        raise ReasonRequired(f"查看原因：请填写至少 {REASON_MIN} 个字的查看原因（如“回访核实处置结果”）")
    if len(text) > REASON_MAX:
        raise ReasonRequired(f"查看原因：不能超过 {REASON_MAX} 个字")
    return text


# What may be revealed: the record, its name and phone columns, the scope check, the refusal's words.
_REVEALABLE: dict[str, tuple[Any, tuple[str, str], Callable[[Connection, CurrentUser, int], bool], str]] = {
    "events": (Event, ("reporter_name", "reporter_phone"), event_in_scope, "该事件不在您的管辖范围内"),
    "venues": (
        Venue,
        ("responsible_person", "responsible_phone"),
        venue_in_scope,
        "该场所不在您的管辖范围内",
    ),
}


def _reveal(
    conn: Connection, user: CurrentUser, entity: str, object_id: int, reason: str, now: datetime
) -> Contact:
    """Check the reason, the permission and the scope (refusals logged), read the contact, audit the reveal."""
    model, fields, in_scope, outside = _REVEALABLE[entity]
    what = f"reveal {entity} contact"
    if not user.may(PERMISSION):  # refusals first, so each is logged whatever reason was given
        raise out_of_scope(user, what, object_id, f"您的角色（{user.role.label}）无权查看完整个人信息")
    if not in_scope(conn, user, object_id):
        raise out_of_scope(user, what, object_id, outside)
    text = check_reason(reason)
    name, phone = conn.execute(
        select(*(getattr(model, f) for f in fields)).where(model.id == object_id)
    ).one()
    audit.record(
        conn,
        actor_id=user.id,
        actor_role=user.role.value,
        action="personal_data.reveal",
        entity=entity,
        entity_id=object_id,
        before=None,
        after={"fields": list(fields)},
        reason=text,
        at=now,
    )
    return Contact(name, phone)


def reveal_event_reporter(
    uow: UnitOfWork, user: CurrentUser, event_id: int, reason: str, now: datetime
) -> Contact:
    """The reporter's name and phone of one event in the user's scope, logged with ``reason``."""
    return _revealed(uow, user, "events", event_id, reason, now)


def reveal_venue_contact(
    uow: UnitOfWork, user: CurrentUser, venue_id: int, reason: str, now: datetime
) -> Contact:
    """The responsible person's name and phone of one venue in the user's scope, logged with ``reason``."""
    return _revealed(uow, user, "venues", venue_id, reason, now)


def _revealed(
    uow: UnitOfWork, user: CurrentUser, entity: str, object_id: int, reason: str, now: datetime
) -> Contact:
    """:func:`_reveal` as one unit of work: the read and its audit row commit together, or neither."""
    with uow.begin("personal_data.reveal"):
        contact = _reveal(uow.conn, user, entity, object_id, reason, now)
        uow.commit()
        return contact


class _Redacting(logging.LogRecord):
    """A log record whose message has every mobile number masked, whoever logs it."""

    def getMessage(self) -> str:
        return redact(super().getMessage())


def redact_logs() -> None:
    """Make every log record of this process mask mobile numbers (logs carry no phone numbers).

    Installed once at start (app.py, the simulator); idempotent.
    """
    logging.setLogRecordFactory(_Redacting)
