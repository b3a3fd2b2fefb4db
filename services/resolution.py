"""办结 by a person: the 处置结果 (how it was handled, required) and up to a few 处置照片, with the step.

The result is the 办结 trail row's note (the citizen's 进度查询 shows it as the reply,
:mod:`services.tracking`); each photo is an attachment of the event, cleaned as a 随手拍 photo is
(:func:`services.intake.strip_metadata`: EXIF and GPS removed) and names its step (``step_seq``), which
is how the timeline puts it under the 办结 row (:func:`services.event_views.event_detail`). The step, the
photos and their audit rows are one unit of work: refused, nothing is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import EventTransition
from db.uow import UnitOfWork
from domain.errors import FieldProblems
from domain.event_flow import Action
from domain.intake import InvalidReport, check_photo, stored_mime
from domain.vocabulary import EventStatus
from services.events import Actor, act_as
from services.intake import attach_photo, strip_metadata

MAX_RESULT = 500
MAX_PHOTOS = 3
RESULT_FIELD = "处置结果"


def result_problems(result: str | None, photos: Sequence[bytes]) -> dict[str, str]:
    """What is wrong with a 办结's result and photos, by field (Chinese); empty when nothing is."""
    problems: dict[str, str] = {}
    text = (result or "").strip()
    if not text:
        problems[RESULT_FIELD] = "请填写处置结果（如何处置、结果如何），办结须写明"
    elif len(text) > MAX_RESULT:
        problems[RESULT_FIELD] = f"处置结果过长（{len(text)} 字），上限 {MAX_RESULT} 字"
    if len(photos) > MAX_PHOTOS:
        problems["处置照片"] = f"最多上传 {MAX_PHOTOS} 张照片，现有 {len(photos)} 张"
    return problems


def resolve_event(
    uow: UnitOfWork,
    user,
    scope,
    *,
    event_id: int,
    result: str,
    now: datetime,
    photos: Sequence[bytes] = (),
    expected: EventStatus | None = None,
    expected_due_at: datetime | None = None,
) -> EventStatus:
    """办结 ``event_id`` as ``user`` with its result and photos (:func:`services.events.act_as` checks role,
    scope and the lead department). Raises :class:`FieldProblems` naming each bad field (a missing result,
    too many photos, a photo that is not a readable JPEG/PNG/WebP/HEIC: 处置照片2 …) before anything is written."""
    problems = result_problems(result, photos)
    cleaned: list[tuple[bytes, str]] = []
    for n, data in enumerate(photos[:MAX_PHOTOS], start=1):
        try:
            mime = check_photo(data)
            if mime is not None:
                cleaned.append((strip_metadata(data, mime), stored_mime(mime)))
        except InvalidReport as exc:
            problems[f"处置照片{n}"] = "；".join(exc.problems.values())
    if problems:
        raise FieldProblems(problems)
    actor = Actor(user.id, user.role.value)

    def attach(session: Session) -> None:
        # The 办结 step just written is the event's last: its photos name it, whatever the clock says.
        step = session.scalar(
            select(func.max(EventTransition.seq)).where(EventTransition.event_id == event_id)
        )
        for data, mime in cleaned:
            attach_photo(session, event_id, data, mime, actor, now, step_seq=step)

    return act_as(
        uow,
        user,
        scope,
        event_id=event_id,
        action=Action.RESOLVE,
        now=now,
        note=result.strip(),
        expected=expected,
        expected_due_at=expected_due_at,
        with_step=attach,
    )
