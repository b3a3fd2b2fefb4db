"""When timed work falls due (定时任务的时间表): every N minutes, daily, weekly or monthly at a China time.

Pure: no clock. Times are naive China Standard Time, as the store keeps them (decision 0002). Each
schedule answers one question, :meth:`last_due`: the latest moment at or before ``now`` when the job
was due. The jobs runner (``services.jobs``) runs a job when that moment has no run yet, so a runner
that was down over several due moments runs the job once, for the latest of them (catch-up once).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
MINUTES_PER_DAY = 24 * 60


class Schedule(Protocol):
    """What the runner asks of a schedule."""

    def last_due(self, now: datetime) -> datetime:
        """The latest due moment at or before ``now``."""
        ...

    @property
    def label(self) -> str:
        """The schedule in Chinese, e.g. 每天 02:00."""
        ...


def _at(day: datetime, at: time) -> datetime:
    return datetime.combine(day.date(), at)


def _check_time(at: time) -> None:
    if at.second or at.microsecond or at.tzinfo is not None:
        raise ValueError(f"a schedule's time is a whole minute, naive China time: {at!r}")


@dataclass(frozen=True)
class Every:
    """Every ``minutes`` minutes, counted from midnight (every 5: 00:00, 00:05, …); a divisor of a day."""

    minutes: int

    def __post_init__(self) -> None:
        if self.minutes < 1 or MINUTES_PER_DAY % self.minutes:
            raise ValueError(f"every N minutes needs N ≥ 1 dividing a day (1440), not {self.minutes}")

    def last_due(self, now: datetime) -> datetime:
        midnight = datetime.combine(now.date(), time())
        since = int((now - midnight).total_seconds() // 60)
        return midnight + timedelta(minutes=since - since % self.minutes)

    @property
    def label(self) -> str:
        return "每分钟" if self.minutes == 1 else f"每{self.minutes}分钟"


@dataclass(frozen=True)
class Daily:
    """Every day at ``at``."""

    at: time

    def __post_init__(self) -> None:
        _check_time(self.at)

    def last_due(self, now: datetime) -> datetime:
        today = _at(now, self.at)
        return today if today <= now else today - timedelta(days=1)

    @property
    def label(self) -> str:
        return f"每天 {self.at:%H:%M}"


@dataclass(frozen=True)
class Weekly:
    """Every week on ``weekday`` (0 = Monday, as :meth:`datetime.weekday`) at ``at``."""

    weekday: int
    at: time

    def __post_init__(self) -> None:
        _check_time(self.at)
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday is 0 (Monday) to 6 (Sunday), not {self.weekday}")

    def last_due(self, now: datetime) -> datetime:
        back = (now.weekday() - self.weekday) % 7
        due = _at(now - timedelta(days=back), self.at)
        return due if due <= now else due - timedelta(days=7)

    @property
    def label(self) -> str:
        return f"每周{WEEKDAYS[self.weekday]} {self.at:%H:%M}"


@dataclass(frozen=True)
class Monthly:
    """Every month on day ``day`` (1–28, so every month has it) at ``at``."""

    day: int
    at: time

    def __post_init__(self) -> None:
        _check_time(self.at)
        if not 1 <= self.day <= 28:
            raise ValueError(f"a monthly day is 1 to 28 (every month has it), not {self.day}")

    def last_due(self, now: datetime) -> datetime:
        due = datetime.combine(now.date().replace(day=self.day), self.at)
        if due <= now:
            return due
        year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
        return datetime.combine(now.date().replace(year=year, month=month, day=self.day), self.at)

    @property
    def label(self) -> str:
        return f"每月{self.day}日 {self.at:%H:%M}"


def previous_month(day: date) -> tuple[date, date]:
    """The first and the last day of the calendar month before ``day``'s month."""
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
