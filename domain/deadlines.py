"""Deadlines (办理时限) per urgency and stage as editable data, which clock runs, and who is late (督办)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from domain.settings_codec import parse_json
from domain.vocabulary import EventStatus, Labelled, Urgency


class Stage(Labelled):
    """A timed stage of the loop; its clock starts when the event enters it."""

    ACCEPT = "accept", "受理"
    DISPATCH = "dispatch", "派单"
    HANDLE = "handle", "处置"
    VERIFY = "verify", "核查"


# Defaults in hours. Accept, dispatch and handle are the limits the demo generator applies
# (demo/events.py ACCEPT_LIMIT, DISPATCH_LIMIT, HANDLE_LIMIT), so stored due dates and this module agree;
# verification has no demo counterpart: two days, one day, half a day.
DEFAULT_HOURS: dict[Stage, dict[Urgency, float]] = {
    Stage.ACCEPT: {Urgency.NORMAL: 2.0, Urgency.URGENT: 1.0, Urgency.CRITICAL: 0.25},
    Stage.DISPATCH: {Urgency.NORMAL: 4.0, Urgency.URGENT: 2.0, Urgency.CRITICAL: 0.5},
    Stage.HANDLE: {Urgency.NORMAL: 72.0, Urgency.URGENT: 24.0, Urgency.CRITICAL: 4.0},
    Stage.VERIFY: {Urgency.NORMAL: 48.0, Urgency.URGENT: 24.0, Urgency.CRITICAL: 12.0},
}

# The stage whose clock runs while an event is in a status; closed or rating-window statuses run none.
STAGE_OF_STATUS: dict[EventStatus, Stage | None] = {
    EventStatus.REPORTED: Stage.ACCEPT,
    EventStatus.ACCEPTED: Stage.DISPATCH,
    EventStatus.RETURNED: Stage.DISPATCH,
    EventStatus.DISPATCHED: Stage.HANDLE,
    EventStatus.IN_PROGRESS: Stage.HANDLE,
    EventStatus.RESOLVED: Stage.VERIFY,
    EventStatus.VERIFIED: None,
    EventStatus.RATED: None,
    EventStatus.ARCHIVED: None,
    EventStatus.REJECTED: None,
}

# The events column holding the moment each stage's clock started (what ``overdue`` reads without due_at).
STAGE_START_COLUMN: dict[Stage, str] = {
    Stage.ACCEPT: "reported_at",
    Stage.DISPATCH: "accepted_at",
    Stage.HANDLE: "dispatched_at",
    Stage.VERIFY: "resolved_at",
}


class DeadlineRulesError(ValueError):
    """Invalid deadline settings; ``errors`` lists every problem in Chinese."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("时限设置有误：" + "；".join(errors))


def _default_hours() -> dict[Stage, dict[Urgency, float]]:
    return {s: dict(h) for s, h in DEFAULT_HOURS.items()}


@dataclass(frozen=True)
class DeadlineRules:
    """Hours allowed per stage and urgency (natural hours, not working hours)."""

    hours: Mapping[Stage, Mapping[Urgency, float]] = field(default_factory=_default_hours)

    def limit(self, stage: Stage, urgency: Urgency) -> timedelta:
        """How long ``stage`` may take for an event of ``urgency``."""
        return timedelta(hours=float(self.hours[Stage(stage)][Urgency(urgency)]))

    def validate(self) -> list[str]:
        """Every problem with these settings, in Chinese (empty when valid)."""
        errors: list[str] = []
        for stage in Stage:
            per = self.hours.get(stage)
            if per is None:
                errors.append(f"缺少“{stage.label}”阶段的时限")
                continue
            for u in Urgency:
                h = per.get(u)
                if h is None:
                    errors.append(f"缺少“{stage.label}”阶段“{u.label}”事件的时限")
                elif not isinstance(h, int | float) or isinstance(h, bool) or not math.isfinite(h) or h <= 0:
                    errors.append(f"“{stage.label}”阶段“{u.label}”事件的时限必须是正数（小时），当前为 {h!r}")
            # A more urgent event must never get more time than a less urgent one.
            ordered = [per.get(u) for u in Urgency]
            hours = [float(h) for h in ordered if isinstance(h, int | float) and not isinstance(h, bool)]
            if len(hours) == len(ordered) and any(hours[i] < hours[i + 1] for i in range(len(hours) - 1)):
                errors.append(f"“{stage.label}”阶段时限应满足 一般 ≥ 紧急 ≥ 特急")
        return errors

    def to_dict(self) -> dict[str, dict[str, float]]:
        """JSON-ready: ``{"handle": {"normal": 72.0, ...}, ...}`` in hours."""
        return {s.value: {u.value: float(self.hours[s][u]) for u in Urgency} for s in Stage}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadlineRules:
        """Parse settings (stages and urgencies by value or Chinese label); missing stages keep defaults."""
        errors: list[str] = []
        hours = _default_hours()
        if not isinstance(data, Mapping):
            raise DeadlineRulesError(["时限设置应为对象（键为阶段）"])
        for key, per in data.items():
            stage = _member(Stage, key)
            if stage is None:
                errors.append(f"未知的阶段：{key}")
                continue
            if not isinstance(per, Mapping):
                errors.append(f"“{stage.label}”阶段的时限应为对象（键为紧急程度）")
                continue
            for ukey, h in per.items():
                u = _member(Urgency, ukey)
                if u is None:
                    errors.append(f"未知的紧急程度：{ukey}")
                    continue
                hours[stage][u] = h
        rules = cls(hours)
        errors += rules.validate()
        if errors:
            raise DeadlineRulesError(errors)
        return rules

    @classmethod
    def from_json(cls, text: str) -> DeadlineRules:
        return cls.from_dict(parse_json(text, DeadlineRulesError))


DEFAULT_DEADLINES = DeadlineRules()


def _member(enum: type[Labelled], key: object) -> Any:
    """The member of ``enum`` whose value or Chinese label is ``key`` (None if none)."""
    for m in enum:
        if key in (m.value, m.label):
            return m
    return None


def stage_of(status: EventStatus | str) -> Stage | None:
    """The stage whose clock runs while an event is in ``status`` (None: no deadline runs)."""
    return STAGE_OF_STATUS[EventStatus(status)]


def due_at(
    stage: Stage, urgency: Urgency, started_at: datetime, rules: DeadlineRules = DEFAULT_DEADLINES
) -> datetime:
    """When ``stage``, started at ``started_at``, must be done for an event of ``urgency``."""
    return started_at + rules.limit(stage, urgency)


def late_label(late_by: timedelta) -> str:
    """督办 wording of a delay: under an hour 超时N分钟, under a day 超时N小时, else 超期N天 (whole units)."""
    secs = late_by.total_seconds()
    if secs < 3600:
        return f"超时{max(1, int(secs // 60))}分钟"
    if secs < 86400:
        return f"超时{int(secs // 3600)}小时"
    return f"超期{int(secs // 86400)}天"


def overdue(events: pd.DataFrame, now: datetime, rules: DeadlineRules = DEFAULT_DEADLINES) -> pd.DataFrame:
    """Events late in their current stage at ``now``, most late first (the 督办 list).

    ``events`` needs ``status`` and ``urgency`` (values), and either a ``due_at`` column (used where
    set: the service writes it at every transition) or the stage start columns of
    :data:`STAGE_START_COLUMN`. Adds ``stage``, ``stage_label``, ``due_at``, ``late_by``,
    ``late_hours`` and ``late_label``; keeps every input column.
    """
    stage_list = [stage_of(s) for s in events["status"]]
    keep = [st is not None for st in stage_list]
    out = events[keep].copy()
    stages = [st for st in stage_list if st is not None]
    out["stage"] = [st.value for st in stages]
    out["stage_label"] = [st.label for st in stages]
    limit = pd.to_timedelta(
        [rules.limit(st, Urgency(u)) for st, u in zip(stages, out["urgency"], strict=True)]
    )
    start = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
    for stage, col in STAGE_START_COLUMN.items():
        if col in out.columns:
            sel = [st is stage for st in stages]
            start[sel] = pd.to_datetime(out.loc[sel, col]).astype("datetime64[ns]")
    computed = start + pd.Series(limit, index=out.index)
    if "due_at" in out.columns:
        given = pd.to_datetime(out["due_at"]).astype("datetime64[ns]")
        due = given.where(given.notna(), computed)
    else:
        due = computed
    out["due_at"] = due
    late = pd.Timestamp(now) - due
    out["late_by"] = late
    out = out[late > pd.Timedelta(0)].copy()
    out["late_hours"] = out["late_by"].dt.total_seconds() / 3600.0
    out["late_label"] = [late_label(td.to_pytimedelta()) for td in out["late_by"]]
    sort_cols = ["late_by", "id"] if "id" in out.columns else ["late_by"]
    asc = [False, True] if "id" in out.columns else [False]
    return out.sort_values(sort_cols, ascending=asc, kind="stable")
