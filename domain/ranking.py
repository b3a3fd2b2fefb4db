"""Ranking for reports sent up: competition ranking ("1, 1, 3") on the value as shown, small samples
ranked after the others and marked, units without a value unranked.

A report ranks villages on a rate; a village with 3 events and a 100 % rate must not share first place
with one of 300 events, nor should 16 of 25 villages read "样本不足" instead of a place. So the units
with at least ``min_size`` events are ranked first (1 … k), the smaller ones after them (k+1 …), each
group by competition ranking, and the small ones carry the note :data:`SMALL_NOTE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The note of a unit ranked among the small samples (its N is below the report's minimum).
SMALL_NOTE = "样本少"
#: The note of a unit without events in the period: no rank.
NO_EVENTS_NOTE = "无事件"
#: The note of a unit with events but no value (say, none rated yet for a 满意率): no rank.
NO_VALUE_NOTE = "无数据"
#: The note of a unit that shares its place with another.
TIE_NOTE = "并列"


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def competition_rank(
    values: Sequence[float | None], *, higher_is_better: bool = True, decimals: int | None = None
) -> list[int | None]:
    """Standard competition ranks ("1224") of ``values``; None for a missing value.

    ``decimals``: compare the values rounded so (as the report shows them): 95.04 % and 94.96 % both
    read 95.0 % and share a place.
    """
    keyed = [
        None if _missing(v) else (round(float(v), decimals) if decimals is not None else float(v))  # type: ignore[arg-type]
        for v in values
    ]
    present = sorted((k for k in keyed if k is not None), reverse=higher_is_better)
    first: dict[float, int] = {}
    for i, k in enumerate(present, start=1):
        first.setdefault(k, i)
    return [None if k is None else first[k] for k in keyed]


@dataclass(frozen=True)
class Placed:
    """One unit's place in a report's ranking."""

    rank: int | None
    note: str  # "", 样本少（N<30）, 无事件, and 并列 when the place is shared
    small: bool


def rank_for_report(
    values: Sequence[float | None],
    sizes: Sequence[int],
    *,
    min_size: int,
    higher_is_better: bool = True,
    decimals: int | None = None,
    no_value_note: str = NO_VALUE_NOTE,
) -> list[Placed]:
    """Each unit's place: those with ``sizes >= min_size`` first, then the small samples, each group by
    :func:`competition_rank`; a unit without a value gets no place (note :data:`NO_EVENTS_NOTE` without
    events, else ``no_value_note``)."""
    if len(values) != len(sizes):
        raise ValueError("values and sizes differ in length")
    big = [not _missing(v) and n >= min_size for v, n in zip(values, sizes, strict=True)]
    small = [not _missing(v) and n < min_size for v, n in zip(values, sizes, strict=True)]
    ranks_big = competition_rank(
        [v if b else None for v, b in zip(values, big, strict=True)],
        higher_is_better=higher_is_better,
        decimals=decimals,
    )
    ranks_small = competition_rank(
        [v if s else None for v, s in zip(values, small, strict=True)],
        higher_is_better=higher_is_better,
        decimals=decimals,
    )
    offset = sum(big)
    ranks: list[int | None] = [
        rb if b else (offset + rs if s and rs is not None else None)
        for rb, rs, b, s in zip(ranks_big, ranks_small, big, small, strict=True)
    ]
    shared = {r for r in ranks if r is not None and ranks.count(r) > 1}
    out = []
    for r, s, v, n in zip(ranks, small, values, sizes, strict=True):
        notes = []
        if _missing(v):
            notes.append(NO_EVENTS_NOTE if n == 0 else no_value_note)
        if s:
            notes.append(f"{SMALL_NOTE}（N<{min_size}）")
        if r in shared:
            notes.append(TIE_NOTE)
        out.append(Placed(r, "，".join(notes), s))
    return out
