"""Column helpers: naive local times as int64 seconds since 1970, nullable ids, frames with plain str objects."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd

# Naive local times (China time throughout, so no zone arithmetic) travel as int64 seconds since 1970.
DAY = 86_400
HOUR = 3_600
EPOCH = datetime(1970, 1, 1)


def to_secs(t: datetime | date) -> int:
    """Seconds since 1970-01-01 of a naive datetime (a date counts from its midnight)."""
    if not isinstance(t, datetime):
        t = datetime(t.year, t.month, t.day)
    return int((t - EPOCH).total_seconds())


def from_secs(s: int) -> datetime:
    return EPOCH + pd.Timedelta(seconds=int(s)).to_pytimedelta()


def secs_to_dt(secs: np.ndarray, null: np.ndarray | None = None) -> np.ndarray:
    """int64 seconds → datetime64[s]; NaT where ``null`` is true."""
    out = np.asarray(secs, dtype=np.int64).astype("datetime64[s]")
    if null is not None:
        out[null] = np.datetime64("NaT")
    return out


def days_to_dt(days: np.ndarray) -> np.ndarray:
    """Day numbers since 1970-01-01 → datetime64[s] at midnight; NaT for negative (none)."""
    days = np.asarray(days, dtype=np.int64)
    return secs_to_dt(days * DAY, days < 0)


def nullable_ints(values: np.ndarray, null: np.ndarray) -> pd.arrays.IntegerArray:
    """An Int64 array of ``values`` with NA where ``null`` is true (nullable foreign keys)."""
    return pd.arrays.IntegerArray(np.where(null, 0, values).astype(np.int64), np.asarray(null, dtype=bool))


def make_frame(columns: dict) -> pd.DataFrame:
    """A DataFrame that keeps object columns as Python objects.

    pandas 3 would infer an Arrow string dtype and the loader would convert it straight back:
    seconds per million rows for nothing.
    """
    return pd.DataFrame(
        {
            k: pd.Series(v, dtype=object) if isinstance(v, np.ndarray) and v.dtype == object else v
            for k, v in columns.items()
        }
    )
