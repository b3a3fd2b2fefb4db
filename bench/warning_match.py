"""Scoring early warnings against the demo's anomaly manifest: which anomaly was found when, and what was a false alarm.

Pure (no store, no Streamlit): ``bench/early_warning.py`` feeds it the alerts of a day-by-day replay;
``tests/unit/test_warning_match.py`` checks it on hand-made cases.

Rules (docs/early-warning.md, "Measured on the demo"):

- An alert **detects** an anomaly when it has the anomaly's kind and category, its unit is the
  anomaly's first unit or below it (or one of the anomaly's listed non-township units above it),
  and its day lies in [start day, end day + ``detect_slack_days``]. The delay is the first such
  day − the start day.
- A 顽疾 (chronic) is recurrence over weeks: no rule can name it on its first report. Its delay is
  also given from the day its injected reports alone first meet the 顽疾 definition (``ready``).
- An alert is **related** when it has the category and unit of some anomaly (any kind) and falls
  in [start day, end day + ``related_slack_days``] (the 多发 that follows a 突发, the week after a
  burst; ``chronic_slack_days`` after a 顽疾's last report, as long as the rule keeps a place alive);
  every other alert is a **false alarm**, counted as episodes (distinct ``alert.key``) and as
  alert-days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np

from domain.early_warning import DEFAULT_PARAMS, Alert, ChronicParams


@dataclass(frozen=True)
class Anomaly:
    """One injected anomaly as the manifest describes it, its units resolved to store ids."""

    kind: str  # AlertKind value (the manifest's kind_en)
    label: str  # 突发, 群发 …
    category: str
    title: str
    unit_id: int  # the anomaly's own unit (the manifest's first code)
    units_above: frozenset[int]  # listed ancestors an alert may name too (never a whole township)
    start: date
    end: date
    ready: date | None = None  # 顽疾: the day its injected reports first meet the definition


@dataclass(frozen=True)
class Detection:
    anomaly: Anomaly
    first_day: date | None  # None: not found
    alert_days: int = 0

    @property
    def found(self) -> bool:
        return self.first_day is not None

    @property
    def delay_days(self) -> int | None:
        return None if self.first_day is None else (self.first_day - self.anomaly.start).days

    @property
    def delay_after_ready_days(self) -> int | None:
        """Days after the anomaly could first be named (its start, or a 顽疾's definition met)."""
        if self.first_day is None:
            return None
        ref = self.anomaly.ready or self.anomaly.start
        return (self.first_day - ref).days


@dataclass
class Evaluation:
    detections: list[Detection]
    false_alerts: list[Alert]
    related_alerts: list[Alert] = field(default_factory=list)

    @property
    def false_episodes(self) -> dict[tuple, list[Alert]]:
        out: dict[tuple, list[Alert]] = {}
        for a in self.false_alerts:
            out.setdefault(a.key, []).append(a)
        return out

    def figures(self, township_weeks: float, prefix: str = "early_warning_") -> dict[str, float]:
        """Recall, delays and false alarms per township-week as flat bench figures."""
        d = self.detections
        found = [x for x in d if x.found]
        n = len(d)
        out: dict[str, float] = {
            "anomalies_count": n,
            "found_count": len(found),
            "found_share": round(len(found) / n, 3) if n else 0.0,
            "found_within_1_day_share": round(sum(x.delay_days <= 1 for x in found) / n, 3) if n else 0.0,
            "found_within_1_day_of_definition_share": round(
                sum(x.delay_after_ready_days <= 1 for x in found) / n, 3
            )
            if n
            else 0.0,
            "max_days_to_detect": max((x.delay_days for x in found), default=-1),
            "max_days_after_definition": max((x.delay_after_ready_days for x in found), default=-1),
            "township_weeks": round(township_weeks, 1),
        }
        episodes = self.false_episodes
        out["false_alarms_per_township_week"] = (
            round(len(episodes) / township_weeks, 4) if township_weeks else 0.0
        )
        out["false_alarm_days_per_township_week"] = (
            round(len(self.false_alerts) / township_weeks, 4) if township_weeks else 0.0
        )
        out["false_alarm_episodes_count"] = len(episodes)
        for kind, k in sorted(Counter(v[0].kind.value for v in episodes.values()).items()):
            out[f"false_alarm_{kind}_count"] = k
        for kind in sorted({x.anomaly.kind for x in d}):
            mine = [x for x in d if x.anomaly.kind == kind]
            got = [x for x in mine if x.found]
            out[f"{kind}_count"] = len(mine)
            out[f"{kind}_found_share"] = round(len(got) / len(mine), 3)
            out[f"{kind}_max_days_to_detect"] = max((x.delay_days for x in got), default=-1)
            if kind == "chronic":
                out[f"{kind}_max_days_after_definition"] = max(
                    (x.delay_after_ready_days for x in got), default=-1
                )
        return {prefix + k: v for k, v in out.items()}


def anomalies_from_manifest(
    manifest: Mapping,
    unit_id_of: Mapping[str, int],
    level_of: Mapping[int, str],
    ready: Mapping[int, date | None] | None = None,
) -> list[Anomaly]:
    """The manifest's anomalies with unit codes resolved (``ready``: per manifest index, for 顽疾)."""
    out = []
    for i, a in enumerate(manifest["anomalies"]):
        ids = [unit_id_of[str(c)] for c in a["unit_codes"]]
        out.append(
            Anomaly(
                kind=a["kind_en"],
                label=a["kind"],
                category=a["category"],
                title=a["title"],
                unit_id=ids[0],
                units_above=frozenset(u for u in ids[1:] if level_of[u] != "township"),
                start=datetime.fromisoformat(a["start"]).date(),
                end=datetime.fromisoformat(a["end"]).date(),
                ready=(ready or {}).get(i),
            )
        )
    return out


def _on_units(alert: Alert, a: Anomaly, lineage: Callable[[int], Sequence[int]]) -> bool:
    return alert.category.value == a.category and (
        a.unit_id in lineage(alert.unit_id) or alert.unit_id in a.units_above
    )


def match(
    alerts: Iterable[Alert],
    anomalies: Sequence[Anomaly],
    parent_of: Mapping[int, int | None],
    *,
    detect_slack_days: int = 1,
    related_slack_days: int = 7,
    chronic_slack_days: int = DEFAULT_PARAMS.chronic.recent_days,
) -> Evaluation:
    """Score ``alerts`` (of every day judged) against ``anomalies``; ``parent_of`` gives each unit's parent."""
    cache: dict[int, tuple[int, ...]] = {}

    def lineage(uid: int) -> tuple[int, ...]:
        if uid not in cache:
            chain, node = [], uid
            while node is not None:
                chain.append(node)
                node = parent_of.get(node)
            cache[uid] = tuple(chain)
        return cache[uid]

    alerts = list(alerts)
    detections = []
    for a in anomalies:
        last = a.end + timedelta(days=detect_slack_days)
        days = sorted(
            {
                x.day
                for x in alerts
                if x.kind.value == a.kind and a.start <= x.day <= last and _on_units(x, a, lineage)
            }
        )
        detections.append(Detection(a, days[0] if days else None, len(days)))
    related, false = [], []
    for x in alerts:
        hit = any(
            _on_units(x, a, lineage)
            and a.start
            <= x.day
            <= a.end + timedelta(days=chronic_slack_days if a.kind == "chronic" else related_slack_days)
            for a in anomalies
        )
        (related if hit else false).append(x)
    return Evaluation(detections, false, related)


def chronic_ready(
    report_days: Iterable[date], first: date, last: date, p: ChronicParams = DEFAULT_PARAMS.chronic
) -> date | None:
    """The first day in [first, last] on which these reports alone meet the 顽疾 definition.

    As the detector counts: reports of the last ``p.weeks`` weeks (the day judged included), at least
    ``p.min_events`` of them in at least ``p.min_weeks`` distinct weeks counted back from that day.
    """
    days = sorted(report_days)
    span = 7 * p.weeks - 1
    d = first
    while d <= last:
        window = [r for r in days if d - timedelta(days=span) <= r <= d]
        if len(window) >= p.min_events and len({(d - r).days // 7 for r in window}) >= p.min_weeks:
            return d
        d += timedelta(days=1)
    return None


def chronic_report_days(reports, title: str, lon: float, lat: float) -> list[date]:
    """Days of a 顽疾's own reports: its title at its exact place, duplicates (merged into another) left out.

    As the detector counts: a duplicate is one matter, not a recurrence. "Exact" is exact:
    ``np.isclose``'s default relative tolerance (1e-5 of 118° of longitude, ~115 m) took in the title's
    reports at neighbouring addresses, outside the rule's 50 m, and dated the definition too early.
    """
    r = reports
    if "merged_into_id" in r.columns:
        r = r[r["merged_into_id"].isna()]
    mine = r[
        (r["title"].astype(str) == title)
        & np.isclose(r["lon"], lon, rtol=0, atol=1e-9)
        & np.isclose(r["lat"], lat, rtol=0, atol=1e-9)
    ]
    return [t.date() for t in mine["reported_at"]]


__all__ = [
    "Anomaly",
    "Detection",
    "Evaluation",
    "anomalies_from_manifest",
    "chronic_ready",
    "chronic_report_days",
    "match",
]
