"""The product's clock: China Standard Time, naive (as stored), read in one place only."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current local time in China, to the second, without tzinfo (how the store keeps times)."""
    return datetime.now(ZONE).replace(tzinfo=None, microsecond=0)


def today() -> date:
    return now().date()
