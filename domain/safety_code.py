"""平安码 rules: a venue's colour from its facts, stepwise recovery, checklists and re-check cadence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from domain.vocabulary import HazardSeverity, InspectionResult, Labelled, SafetyCode, VenueCategory

# Re-check cadence in days: red daily, yellow weekly, green monthly (DOMAIN.md §2).
CADENCE_DAYS: dict[SafetyCode, int] = {SafetyCode.RED: 1, SafetyCode.YELLOW: 7, SafetyCode.GREEN: 30}

# How bad a colour is; escalation and recovery compare these ranks.
RANK: dict[SafetyCode, int] = {SafetyCode.GREEN: 0, SafetyCode.YELLOW: 1, SafetyCode.RED: 2}

#: The latest 整改期限 a hazard may be given, in days from the day it is found: a deadline years away
#: (2099-12-31 was accepted) never comes due, so the venue never turns red for it.
MAX_RECTIFY_DAYS = 90


def next_due(code: SafetyCode, last_inspected: date) -> date:
    """The date by which a venue of colour ``code`` last inspected on ``last_inspected`` is due again."""
    return last_inspected + timedelta(days=CADENCE_DAYS[SafetyCode(code)])


def overdue_days(due: date | None, today: date) -> int:
    """How many days late a visit due on ``due`` is on ``today`` (0 when not late or never scheduled)."""
    return max(0, (today - due).days) if due else 0


#: Each colour's value (``"red"``…) from either the enum or its stored text.
_VALUE: dict[str, str] = {c.value: c.value for c in SafetyCode}


def on_time(visits: pd.DataFrame, changes: pd.DataFrame, current: Mapping[int, str]) -> pd.DataFrame:
    """Whether each visit was on time, by the colour in force when the previous visit's day ended.

    A visit is due the previous visit's day plus the cadence (:data:`CADENCE_DAYS`) of the colour the
    venue had at the end of that day, and on time if made on or before it. The colour at the end of
    a day is the last change stored up to that day's end (``changes``: ``venue_id``, ``changed_at``,
    ``code``); a venue without one has its colour now (``current``), else green.

    ``visits`` has ``venue_id``, ``day`` and ``prev_day`` (midnight timestamps); the result is the same
    rows (in another order) with ``code`` (the colour that set the due date) and ``on_time`` added.
    """
    if visits.empty:
        return visits.assign(code=pd.Series(dtype=object), on_time=pd.Series(dtype=bool))
    end_of_day = visits["prev_day"] + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    left = visits.assign(prev_end=end_of_day.astype("datetime64[ns]")).sort_values("prev_end", kind="stable")
    right = (
        changes[["venue_id", "changed_at", "code"]]
        .assign(changed_at=pd.to_datetime(changes["changed_at"], format="ISO8601").astype("datetime64[ns]"))
        .astype({"venue_id": left["venue_id"].dtype})
        .sort_values("changed_at", kind="stable")
    )
    merged = pd.merge_asof(
        left, right, left_on="prev_end", right_on="changed_at", by="venue_id", direction="backward"
    )
    now = merged["venue_id"].map({v: _VALUE[c] for v, c in current.items()})
    code = merged["code"].map(_VALUE)
    merged["code"] = code.where(code.notna(), now).fillna(SafetyCode.GREEN.value)
    cadence = merged["code"].map({c.value: d for c, d in CADENCE_DAYS.items()})
    merged["on_time"] = merged["day"] <= merged["prev_day"] + pd.to_timedelta(cadence, unit="D")
    return merged.drop(columns=["prev_end", "changed_at"])


# ---------------------------------------------------------------------------------------------
# Checklists
# ---------------------------------------------------------------------------------------------


class ItemOutcome(Labelled):
    """The outcome of one checklist item, as stored in ``inspections.checklist_json``."""

    PASS = "pass", "合格"
    FAIL = "fail", "不合格"
    NA = "na", "不适用"


@dataclass(frozen=True)
class ChecklistItem:
    key: str  # stable ASCII key, stored in checklist_json; never rename
    label: str
    critical: bool = False  # failing it at a high-risk venue turns the venue red


# Every item's label, one place; categories pick from it so the same key means the same thing everywhere.
ITEM_LABELS: dict[str, str] = {
    "fire_exits": "消防通道畅通",
    "extinguishers": "灭火器材配置有效",
    "electrical_wiring": "电气线路规范",
    "gas_use": "燃气使用安全",
    "hazmat_storage": "危险品存放规范",
    "no_residence": "无“三合一”违规住人",
    "crowd_capacity": "人员容量不超限",
    "scaffolding": "脚手架搭设合规",
    "hard_hats": "安全帽佩戴",
    "emergency_lighting": "应急照明和疏散指示完好",
    "cctv": "监控设施正常运行",
    "ebike_charging": "电动车规范停放充电",
    "smoke_alarms": "独立式烟感报警器完好",
    "escape_windows": "逃生窗口未被封堵",
    "tenant_register": "租住人员信息登记",
    "guest_register": "人员实名登记",
    "security_staff": "安保人员在岗",
    "gas_detectors": "可燃有毒气体报警装置完好",
    "hot_work_permits": "动火作业审批",
    "edge_protection": "临边洞口防护",
    "lifting_equipment": "起重机械检验合格",
    "fire_facilities": "自动消防设施完好",
    "safety_training": "安全培训台账",
}

# (key, critical) per category. Critical items are the ones behind the fires and collapses the
# category is known for: blocked exits everywhere, e-bikes charging indoors in rental housing,
# "三合一" sleeping quarters in shops and workshops, storage and gas leaks in chemical plants,
# scaffolds and edges on sites, over-capacity crowds.
_CHECKLISTS: dict[VenueCategory, tuple[tuple[str, bool], ...]] = {
    VenueCategory.STREET_SHOP: (
        ("fire_exits", True),
        ("extinguishers", False),
        ("electrical_wiring", False),
        ("gas_use", True),
        ("no_residence", True),
        ("ebike_charging", False),
    ),
    VenueCategory.KEY_SECURITY: (
        ("guest_register", True),
        ("cctv", True),
        ("security_staff", False),
        ("fire_exits", True),
        ("extinguishers", False),
        ("emergency_lighting", False),
    ),
    VenueCategory.RENTAL_HOUSING: (
        ("fire_exits", True),
        ("ebike_charging", True),
        ("electrical_wiring", True),
        ("escape_windows", True),
        ("smoke_alarms", False),
        ("extinguishers", False),
        ("tenant_register", False),
    ),
    VenueCategory.HAZCHEM: (
        ("hazmat_storage", True),
        ("gas_detectors", True),
        ("hot_work_permits", True),
        ("electrical_wiring", True),
        ("fire_exits", True),
        ("extinguishers", False),
        ("safety_training", False),
    ),
    VenueCategory.LABOUR_INTENSIVE: (
        ("fire_exits", True),
        ("no_residence", True),
        ("electrical_wiring", False),
        ("extinguishers", False),
        ("emergency_lighting", False),
        ("safety_training", False),
    ),
    VenueCategory.CONSTRUCTION_SITE: (
        ("scaffolding", True),
        ("edge_protection", True),
        ("lifting_equipment", True),
        ("hard_hats", False),
        ("hot_work_permits", False),
        ("electrical_wiring", False),
        ("extinguishers", False),
    ),
    VenueCategory.CROWDED_VENUE: (
        ("crowd_capacity", True),
        ("fire_exits", True),
        ("emergency_lighting", True),
        ("fire_facilities", True),
        ("cctv", False),
        ("extinguishers", False),
        ("electrical_wiring", False),
    ),
    VenueCategory.GENERAL_FIRM: (
        ("fire_exits", True),
        ("extinguishers", False),
        ("electrical_wiring", False),
        ("hazmat_storage", False),
        ("safety_training", False),
    ),
}


def checklist_for(category: VenueCategory | str) -> list[ChecklistItem]:
    """The inspection checklist of a venue category, in the order the form shows it."""
    return [ChecklistItem(k, ITEM_LABELS[k], c) for k, c in _CHECKLISTS[VenueCategory(category)]]


def item_label(key: str) -> str:
    """The Chinese label of a checklist key (the key itself if it is not in the catalogue)."""
    return ITEM_LABELS.get(key, key)


# ---------------------------------------------------------------------------------------------
# Facts and rules
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HazardFact:
    """One open (not yet rectified) hazard at the venue."""

    severity: HazardSeverity
    description: str
    deadline: date | None = None


@dataclass(frozen=True)
class InspectionFact:
    """One inspection: its date, result and checklist (item key → pass/fail/na)."""

    on: date
    result: InspectionResult
    checklist: Mapping[str, str] = field(default_factory=dict)
    new_hazards: int = 0  # hazards this inspection recorded

    @property
    def passed(self) -> bool:
        return self.result == InspectionResult.PASS

    @property
    def clean(self) -> bool:
        """Passed and found nothing new: what counts towards yellow → green."""
        return self.passed and self.new_hazards == 0

    def failed_items(self) -> tuple[str, ...]:
        """Keys of the failed checklist items, sorted so reasons read the same every time."""
        return tuple(sorted(k for k, v in self.checklist.items() if v == ItemOutcome.FAIL))


@dataclass(frozen=True)
class VenueFacts:
    """Everything the rules look at, gathered by the service as of one moment."""

    category: VenueCategory
    latest_inspection: InspectionFact | None = None
    open_hazards: tuple[HazardFact, ...] = ()
    overdue_rectifications: int = 0  # open hazards past their deadline
    recent_events: int = 0  # events at the venue within CodeRules.event_window_days
    # Consecutive clean inspections after the venue last changed to its current colour
    # (see count_clean_inspections); the inspection that caused that change does not count.
    clean_inspections: int = 0
    last_rectified_on: date | None = None  # date of the latest rectification of any hazard
    code_since: date | None = None  # date the venue got its current colour, if known

    @property
    def major_hazards(self) -> tuple[HazardFact, ...]:
        return tuple(h for h in self.open_hazards if h.severity == HazardSeverity.MAJOR)

    @property
    def general_hazards(self) -> tuple[HazardFact, ...]:
        return tuple(h for h in self.open_hazards if h.severity == HazardSeverity.GENERAL)


@dataclass(frozen=True)
class CodeRules:
    """The parameters of the colour rules; ``docs/safety-code.md`` explains each default."""

    clean_inspections_to_green: int = 2  # consecutive clean inspections before yellow → green
    events_to_yellow: int = 3  # events at the venue within the window that make it at least yellow
    event_window_days: int = 30  # the window the service counts recent_events over
    high_risk_categories: frozenset[VenueCategory] = frozenset(
        {VenueCategory.HAZCHEM, VenueCategory.CROWDED_VENUE, VenueCategory.CONSTRUCTION_SITE}
    )

    def __post_init__(self) -> None:
        if self.clean_inspections_to_green < 1 or self.events_to_yellow < 1 or self.event_window_days < 1:
            raise ValueError("转绿所需合格次数、事件阈值和事件统计天数均须 ≥ 1")


@dataclass(frozen=True)
class CodeDecision:
    code: SafetyCode
    reason: str  # Chinese sentence naming the decisive facts


def _hazard_list(hazards: tuple[HazardFact, ...]) -> str:
    return "、".join(sorted(h.description for h in hazards))


def required_code(facts: VenueFacts, rules: CodeRules = CodeRules()) -> CodeDecision:
    """The colour the facts alone demand (the floor), with the facts that demand it.

    :func:`evaluate` never returns a better colour than this; it returns a worse one only while a
    red or yellow venue has not yet earned its way back (stepwise recovery).
    """
    red: list[str] = []
    yellow: list[str] = []
    majors, generals = facts.major_hazards, facts.general_hazards
    if majors:
        red.append(f"存在未整改重大隐患{len(majors)}处：{_hazard_list(majors)}")
    if facts.overdue_rectifications > 0:
        red.append(f"隐患超期未整改{facts.overdue_rectifications}处")
    latest = facts.latest_inspection
    if latest is not None and not latest.passed:
        failed = latest.failed_items()
        critical_keys = {i.key for i in checklist_for(facts.category) if i.critical}
        critical = [k for k in failed if k in critical_keys]
        if facts.category in rules.high_risk_categories and critical:
            labels = "、".join(item_label(k) for k in critical)
            red.append(f"{VenueCategory(facts.category).label}检查不合格，关键项不合格：{labels}")
        elif failed:
            yellow.append(f"最近一次检查（{latest.on}）不合格：{'、'.join(item_label(k) for k in failed)}")
        else:
            yellow.append(f"最近一次检查（{latest.on}）不合格")
    if generals:
        yellow.append(f"存在未整改一般隐患{len(generals)}处：{_hazard_list(generals)}")
    if facts.recent_events >= rules.events_to_yellow:
        yellow.append(f"近{rules.event_window_days}天场所发生事件{facts.recent_events}起")
    if red:
        return CodeDecision(SafetyCode.RED, "；".join(red))
    if yellow:
        return CodeDecision(SafetyCode.YELLOW, "；".join(yellow))
    if latest is None:
        return CodeDecision(SafetyCode.GREEN, "无未整改隐患，暂无检查记录")
    return CodeDecision(SafetyCode.GREEN, f"无未整改隐患，最近一次检查（{latest.on}）合格")


def _reinspected_after_rectification(facts: VenueFacts) -> bool:
    """The latest inspection passed and is on or after both the last rectification and the red verdict.

    Dates compare inclusively: a same-day 复查 that confirms the rectification counts.
    """
    latest = facts.latest_inspection
    if latest is None or not latest.passed:
        return False
    return all(d is None or latest.on >= d for d in (facts.last_rectified_on, facts.code_since))


def evaluate(current: SafetyCode, facts: VenueFacts, rules: CodeRules = CodeRules()) -> CodeDecision:
    """The venue's colour after the facts: escalate at once, recover one step at a time.

    - worse facts than the current colour → that colour now (green → red allowed);
    - red → yellow only when nothing demands red any more AND the latest inspection passed on or
      after the last rectification; never red → green in one step;
    - yellow → green only after ``rules.clean_inspections_to_green`` consecutive clean inspections
      with no open hazards.
    """
    current = SafetyCode(current)
    floor = required_code(facts, rules)
    if RANK[floor.code] >= RANK[current]:
        # Escalation, or the facts still hold the venue where it is.
        return floor
    latest = facts.latest_inspection
    if current == SafetyCode.RED:
        if latest is None or not _reinspected_after_rectification(facts):
            if latest is not None and not latest.passed:
                why = f"最近一次检查（{latest.on}）不合格"
            elif facts.last_rectified_on is not None:
                why = f"隐患已于{facts.last_rectified_on}整改，尚未复查"
            else:
                why = "尚未复查"
            return CodeDecision(SafetyCode.RED, f"{why}，复查合格后方可转为黄码")
        reason = f"隐患已整改并于{latest.on}复查合格，由红码转为黄码"
        if floor.code == SafetyCode.YELLOW:
            reason += f"（仍有：{floor.reason}）"
        return CodeDecision(SafetyCode.YELLOW, reason)
    # current is yellow and the facts allow green.
    n, need = facts.clean_inspections, rules.clean_inspections_to_green
    if n >= need:
        return CodeDecision(SafetyCode.GREEN, f"连续{n}次检查合格且无未整改隐患，由黄码转为绿码")
    return CodeDecision(SafetyCode.YELLOW, f"连续合格检查{n}次，满{need}次方可转为绿码")


def count_clean_inspections(history: Iterable[InspectionFact], since: date | None = None) -> int:
    """Consecutive clean inspections, newest backwards, strictly after ``since`` (the last colour change).

    This is how a service fills :attr:`VenueFacts.clean_inspections`; pass ``since`` as the moment
    the venue got its current colour (a ``datetime`` works too when every inspection has one).
    """
    n = 0
    for insp in sorted(history, key=lambda i: i.on, reverse=True):
        if (since is not None and insp.on <= since) or not insp.clean:
            break
        n += 1
    return n
