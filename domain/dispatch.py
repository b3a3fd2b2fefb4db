"""Dispatch rules (分拨规则) as editable data: which level and department own an event, and when it moves up."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.deadlines import DEFAULT_DEADLINES, DeadlineRules, Stage, due_at, late_label, stage_of
from domain.settings_codec import parse_json
from domain.vocabulary import AdminLevel, EventCategory, EventStatus, Labelled, Urgency

C, L, U = EventCategory, AdminLevel, Urgency

# The department kinds (条线) that exist in the store: township offices and county departments
# (demo/vocab.py TOWNSHIP_DEPARTMENTS and COUNTY_DEPARTMENTS use exactly these).
DEPARTMENT_KINDS: tuple[str, ...] = (
    "公安",
    "交警",
    "城管",
    "市场监管",
    "应急管理",
    "消防",
    "生态环境",
    "住建",
    "民政",
    "司法",
    "水利",
    "综治",
)

# Levels that can own (承办) an event; grids report, their village handles.
OWNING_LEVELS: tuple[AdminLevel, ...] = (L.VILLAGE, L.TOWNSHIP, L.COUNTY, L.CITY)


class RulesError(ValueError):
    """Invalid dispatch settings; ``errors`` lists every problem in Chinese."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("分拨规则有误：" + "；".join(errors))


@dataclass(frozen=True)
class JointMatter:
    """一件事: a matter one department leads and others cooperate on, recognised by category and keywords."""

    name: str
    lead: str
    cooperating: tuple[str, ...]
    categories: tuple[EventCategory, ...] = ()  # empty: any category
    keywords: tuple[str, ...] = ()  # any of them in the title or description; empty: the whole category

    def matches(self, category: EventCategory, text: str) -> bool:
        if self.categories and category not in self.categories:
            return False
        return not self.keywords or any(k in text for k in self.keywords)


@dataclass(frozen=True)
class EscalationPolicy:
    """When an event moves up on its own: its handling deadline passed and its urgency says so.

    By default every urgency moves up (decision 0027): a matter left unhandled past its deadline goes one
    level up whatever its urgency; an administrator may turn an urgency off in the rules."""

    auto: Mapping[Urgency, bool] = field(default_factory=lambda: dict.fromkeys(U, True))
    grace_hours: float = 0.0  # extra time past the deadline before moving up
    top_level: AdminLevel = L.COUNTY  # 矛盾不上交: nothing is pushed above this level automatically


def _default_departments() -> dict[EventCategory, str]:
    return {
        C.URBAN: "城管",
        C.DISPUTE: "司法",
        C.ENVIRONMENT: "生态环境",
        C.MARKET: "市场监管",
        C.WORK_SAFETY: "应急管理",
        C.PUBLIC_SECURITY: "公安",
        C.NATURAL_HAZARD: "应急管理",
        C.LIVELIHOOD: "民政",
    }


def _default_keyword_departments() -> dict[str, str]:
    # Titles the category's default department does not own (demo/vocab.py LEAD_KINDS alternatives).
    return {
        "违章停车": "交警",
        "共享单车": "交警",
        "违章搭建": "住建",
        "道路破损": "住建",
        "危旧房屋": "住建",
        "加装电梯": "住建",
        "井盖": "住建",
        "河道水位": "水利",
        "积水内涝": "水利",
        "路灯": "城管",
        "垃圾未清运": "城管",
        "绿化养护": "城管",
        "打架斗殴": "公安",
        "电信诈骗": "公安",
        "邻里纠纷": "综治",
        "物业纠纷": "综治",
        "群租": "公安",
        "灭火器": "消防",
        "消防通道": "消防",
    }


def _default_levels() -> dict[Urgency, AdminLevel]:
    # 小事不出村, 大事不出镇: an ordinary matter stays in the village, an urgent one goes to the
    # township, a critical one to the county, where the departments with the means sit.
    return {U.NORMAL: L.VILLAGE, U.URGENT: L.TOWNSHIP, U.CRITICAL: L.COUNTY}


def _default_keyword_levels() -> dict[str, AdminLevel]:
    # 大事: matters a village has neither the powers nor the means for, whatever their urgency.
    return {
        "劳资纠纷": L.TOWNSHIP,
        "土地山林纠纷": L.TOWNSHIP,
        "危化品": L.TOWNSHIP,
        "食品安全": L.TOWNSHIP,
        "特种设备": L.TOWNSHIP,
        "燃气使用不规范": L.TOWNSHIP,
        "三合一": L.TOWNSHIP,
        "异味扰民": L.TOWNSHIP,
        "道路破损": L.TOWNSHIP,
        "危旧房屋": L.TOWNSHIP,
        "河道水位": L.TOWNSHIP,
        "加装电梯": L.TOWNSHIP,
        "污水直排": L.TOWNSHIP,
        "渣土偷倒": L.TOWNSHIP,
        "违章搭建": L.TOWNSHIP,
        "地质灾害": L.TOWNSHIP,
        "边坡落石": L.TOWNSHIP,
        "沉降塌陷": L.TOWNSHIP,
        "盗窃": L.TOWNSHIP,
        "赌博": L.TOWNSHIP,
        "诈骗": L.TOWNSHIP,
        "打架斗殴": L.TOWNSHIP,
    }


def _default_joint() -> tuple[JointMatter, ...]:
    return (
        JointMatter(
            "群体性劳资纠纷", "综治", ("司法", "公安", "住建"), (C.DISPUTE,), ("劳资", "拖欠工资", "欠薪")
        ),
        JointMatter("渣土偷倒", "城管", ("交警", "生态环境", "住建"), (C.URBAN,), ("渣土",)),
        JointMatter("餐饮油烟扰民", "生态环境", ("城管", "市场监管"), (C.ENVIRONMENT,), ("油烟",)),
        JointMatter("污水直排", "生态环境", ("住建", "城管"), (C.ENVIRONMENT,), ("污水",)),
        JointMatter("危化品违规存放", "应急管理", ("消防", "公安", "生态环境"), (), ("危化品",)),
        JointMatter("群租隐患", "公安", ("消防", "住建"), (C.PUBLIC_SECURITY,), ("群租",)),
        JointMatter("三合一场所", "应急管理", ("消防", "公安"), (C.WORK_SAFETY,), ("三合一",)),
        JointMatter("路面沉降塌陷", "应急管理", ("住建", "交警"), (C.NATURAL_HAZARD,), ("沉降", "塌陷")),
        JointMatter("地质灾害隐患", "应急管理", ("住建", "水利"), (C.NATURAL_HAZARD,), ("地质灾害", "边坡")),
    )


@dataclass(frozen=True)
class DispatchRules:
    """Everything dispatch decides by, editable by an administrator and stored as JSON."""

    department_by_category: Mapping[EventCategory, str] = field(default_factory=_default_departments)
    department_by_keyword: Mapping[str, str] = field(default_factory=_default_keyword_departments)
    level_by_urgency: Mapping[Urgency, AdminLevel] = field(default_factory=_default_levels)
    min_level_by_category: Mapping[EventCategory, AdminLevel] = field(default_factory=dict)
    min_level_by_keyword: Mapping[str, AdminLevel] = field(default_factory=_default_keyword_levels)
    mass_reporters: int = 10  # this many reporters make it a 群体性 matter: at least the township's
    joint_matters: tuple[JointMatter, ...] = field(default_factory=_default_joint)
    escalation: EscalationPolicy = field(default_factory=EscalationPolicy)

    def validate(self) -> list[str]:
        """Every problem with these rules, in Chinese (empty when valid)."""
        errors: list[str] = []

        def kind_ok(kind: object, where: str) -> None:
            if kind not in DEPARTMENT_KINDS:
                errors.append(f"{where}：未知的部门类型“{kind}”（可选：{'、'.join(DEPARTMENT_KINDS)}）")

        def level_ok(level: object, where: str) -> None:
            if level not in OWNING_LEVELS:
                names = "、".join(lv.label for lv in OWNING_LEVELS)
                shown = level.label if isinstance(level, AdminLevel) else level
                errors.append(f"{where}：层级“{shown}”不能承办事件（可选：{names}）")

        for c in EventCategory:
            if c not in self.department_by_category:
                errors.append(f"事项“{c.label}”没有归口部门")
        for c, kind in self.department_by_category.items():
            kind_ok(kind, f"事项“{_shown(c)}”的归口部门")
        for kw, kind in self.department_by_keyword.items():
            if not str(kw).strip():
                errors.append("关键词不能为空")
            kind_ok(kind, f"关键词“{kw}”的归口部门")
        for u in Urgency:
            if u not in self.level_by_urgency:
                errors.append(f"“{u.label}”事件没有承办层级")
        for u, level in self.level_by_urgency.items():
            level_ok(level, f"“{_shown(u)}”事件的承办层级")
        for c, level in self.min_level_by_category.items():
            level_ok(level, f"事项“{_shown(c)}”的最低承办层级")
        for kw, level in self.min_level_by_keyword.items():
            level_ok(level, f"关键词“{kw}”的最低承办层级")
        if (
            not isinstance(self.mass_reporters, int)
            or isinstance(self.mass_reporters, bool)
            or self.mass_reporters < 2
        ):
            errors.append(f"群体性事件的反映人数门槛应为不小于 2 的整数，当前为 {self.mass_reporters!r}")
        for j in self.joint_matters:
            where = f"一件事“{j.name}”"
            if not j.name.strip():
                errors.append("一件事的名称不能为空")
            kind_ok(j.lead, f"{where}的牵头部门")
            for k in j.cooperating:
                kind_ok(k, f"{where}的协办部门")
            if j.lead in j.cooperating:
                errors.append(f"{where}：牵头部门“{j.lead}”不能同时是协办部门")
            if not j.cooperating:
                errors.append(f"{where}：至少要有一个协办部门")
            if not j.categories and not j.keywords:
                errors.append(f"{where}：须指定事项或关键词，否则会匹配所有事件")
        esc = self.escalation
        for u in Urgency:
            if u not in esc.auto:
                errors.append(f"未设置“{u.label}”事件是否自动上移")
        level_ok(esc.top_level, "自动上移的最高层级")
        if (
            not isinstance(esc.grace_hours, int | float)
            or isinstance(esc.grace_hours, bool)
            or esc.grace_hours < 0
        ):
            errors.append(f"上移宽限时间应为非负的小时数，当前为 {esc.grace_hours!r}")
        return errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, enums by their stored value, department kinds in Chinese."""
        return {
            "department_by_category": {c.value: k for c, k in self.department_by_category.items()},
            "department_by_keyword": dict(self.department_by_keyword),
            "level_by_urgency": {u.value: lv.value for u, lv in self.level_by_urgency.items()},
            "min_level_by_category": {c.value: lv.value for c, lv in self.min_level_by_category.items()},
            "min_level_by_keyword": {k: lv.value for k, lv in self.min_level_by_keyword.items()},
            "mass_reporters": self.mass_reporters,
            "joint_matters": [
                {
                    "name": j.name,
                    "lead": j.lead,
                    "cooperating": list(j.cooperating),
                    "categories": [c.value for c in j.categories],
                    "keywords": list(j.keywords),
                }
                for j in self.joint_matters
            ],
            "escalation": {
                "auto": {u.value: bool(v) for u, v in self.escalation.auto.items()},
                "grace_hours": self.escalation.grace_hours,
                "top_level": self.escalation.top_level.value,
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DispatchRules:
        """Parse settings (enums by value or Chinese label); a missing section keeps its default.

        Raises :class:`RulesError` listing every problem (unknown category, level, kind, key …).
        """
        if not isinstance(data, Mapping):
            raise RulesError(["分拨规则应为对象"])
        p = _Parser()
        known = set(cls.__dataclass_fields__)
        for key in data:
            if key not in known:
                p.errors.append(f"未知的设置项：{key}")
        d = cls()
        kw: dict[str, Any] = {}
        if "department_by_category" in data:
            kw["department_by_category"] = {
                c: v
                for k, v in p.mapping(data["department_by_category"], "归口部门").items()
                if (c := p.enum(EventCategory, k, "事项类别")) is not None
            }
        if "department_by_keyword" in data:
            kw["department_by_keyword"] = {
                str(k): v for k, v in p.mapping(data["department_by_keyword"], "关键词部门").items()
            }
        if "level_by_urgency" in data:
            kw["level_by_urgency"] = {
                u: lv
                for k, v in p.mapping(data["level_by_urgency"], "承办层级").items()
                if (u := p.enum(Urgency, k, "紧急程度")) is not None
                and (lv := p.enum(AdminLevel, v, "层级")) is not None
            }
        if "min_level_by_category" in data:
            kw["min_level_by_category"] = {
                c: lv
                for k, v in p.mapping(data["min_level_by_category"], "最低承办层级").items()
                if (c := p.enum(EventCategory, k, "事项类别")) is not None
                and (lv := p.enum(AdminLevel, v, "层级")) is not None
            }
        if "min_level_by_keyword" in data:
            kw["min_level_by_keyword"] = {
                str(k): lv
                for k, v in p.mapping(data["min_level_by_keyword"], "关键词层级").items()
                if (lv := p.enum(AdminLevel, v, "层级")) is not None
            }
        if "mass_reporters" in data:
            kw["mass_reporters"] = data["mass_reporters"]
        if "joint_matters" in data:
            kw["joint_matters"] = p.joint(data["joint_matters"])
        if "escalation" in data:
            kw["escalation"] = p.escalation(data["escalation"], d.escalation)
        rules = cls(**kw)
        errors = p.errors + rules.validate()
        if errors:
            raise RulesError(errors)
        return rules

    @classmethod
    def from_json(cls, text: str) -> DispatchRules:
        return cls.from_dict(parse_json(text, RulesError))


DEFAULT_RULES = DispatchRules()


def _shown(x: object) -> str:
    return x.label if isinstance(x, Labelled) else str(x)


class _Parser:
    """Lenient parsing that collects Chinese errors instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def mapping(self, value: Any, what: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.errors.append(f"“{what}”应为对象")
        return {}

    def enum(self, enum: type[Labelled], key: Any, what: str) -> Any:
        for m in enum:
            if key in (m.value, m.label):
                return m
        self.errors.append(f"未知的{what}：{key}")
        return None

    def joint(self, value: Any) -> tuple[JointMatter, ...]:
        if not isinstance(value, list):
            self.errors.append("“一件事”应为列表")
            return ()
        out = []
        for i, item in enumerate(value, 1):
            if not isinstance(item, Mapping):
                self.errors.append(f"第 {i} 个一件事应为对象")
                continue
            unknown = set(item) - {"name", "lead", "cooperating", "categories", "keywords"}
            for key in sorted(unknown):
                self.errors.append(f"第 {i} 个一件事：未知的设置项 {key}")
            cats = tuple(
                c for k in item.get("categories", []) if (c := self.enum(EventCategory, k, "事项类别"))
            )
            out.append(
                JointMatter(
                    name=str(item.get("name", "")),
                    lead=str(item.get("lead", "")),
                    cooperating=tuple(str(k) for k in item.get("cooperating", [])),
                    categories=cats,
                    keywords=tuple(str(k) for k in item.get("keywords", [])),
                )
            )
        return tuple(out)

    def escalation(self, value: Any, default: EscalationPolicy) -> EscalationPolicy:
        value = self.mapping(value, "上移规则")
        for key in sorted(set(value) - {"auto", "grace_hours", "top_level"}):
            self.errors.append(f"上移规则：未知的设置项 {key}")
        auto = dict(default.auto)
        for k, v in self.mapping(value.get("auto", {}), "自动上移").items():
            u = self.enum(Urgency, k, "紧急程度")
            if u is not None:
                if not isinstance(v, bool):
                    self.errors.append(f"“{u.label}”事件是否自动上移应为 true 或 false")
                auto[u] = bool(v)
        top = default.top_level
        if "top_level" in value:
            top = self.enum(AdminLevel, value["top_level"], "层级") or top
        return EscalationPolicy(
            auto=auto, grace_hours=value.get("grace_hours", default.grace_hours), top_level=top
        )


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFacts:
    """What dispatch needs to know about an event."""

    category: EventCategory
    urgency: Urgency
    title: str = ""
    description: str = ""
    reporter_count: int = 1
    owner_level: AdminLevel | None = None  # the level that owns it now (after escalations), if any
    status: EventStatus | None = None
    dispatched_at: datetime | None = None  # the handling clock's start


@dataclass(frozen=True)
class DispatchDecision:
    """Who owns an event: a level, a lead department kind and, for 一件事, cooperating kinds."""

    level: AdminLevel
    department_kind: str
    cooperating_kinds: tuple[str, ...]
    reason: str  # Chinese, for the trail note and the dispatcher's screen
    joint_matter: str | None = None


@dataclass(frozen=True)
class Escalation:
    """An automatic 上移: from the owner level to its parent, with why."""

    from_level: AdminLevel
    to_level: AdminLevel
    overdue_by: timedelta
    reason: str


def _higher(a: AdminLevel, b: AdminLevel) -> AdminLevel:
    return a if a.depth <= b.depth else b


def route(facts: EventFacts, rules: DispatchRules = DEFAULT_RULES) -> DispatchDecision:
    """The level and departments an event goes to, with the reasons in Chinese.

    The level is the urgency's, raised (never lowered) by the category's and keywords' minimum
    levels, by a 群体性 reporter count, and by where the event already is; the department is the
    first matching 一件事's lead, else a title keyword's, else the category's.
    """
    category, urgency = EventCategory(facts.category), Urgency(facts.urgency)
    text = f"{facts.title} {facts.description}"
    level = rules.level_by_urgency[urgency]
    why = [f"{urgency.label}事件由{level.label}承办"]
    raised: list[str] = []
    if category in rules.min_level_by_category:
        floor = rules.min_level_by_category[category]
        if _higher(floor, level) is not level:
            level = floor
            raised.append(f"“{category.label}”类事项至少由{floor.label}承办")
    for kw, floor in rules.min_level_by_keyword.items():
        if kw in text and _higher(floor, level) is not level:
            level = floor
            raised.append(f"涉及“{kw}”，至少由{floor.label}承办（大事不出镇）")
    if facts.reporter_count >= rules.mass_reporters and _higher(L.TOWNSHIP, level) is not level:
        level = L.TOWNSHIP
        raised.append(f"{facts.reporter_count}人反映，属群体性事项，至少由{L.TOWNSHIP.label}承办")
    if facts.owner_level is not None and _higher(facts.owner_level, level) is not level:
        level = facts.owner_level
        raised.append(f"事件已上移至{level.label}")
    if not raised and level is L.VILLAGE:
        why[0] += "（小事不出村）"
    why += raised

    joint = next((j for j in rules.joint_matters if j.matches(category, text)), None)
    if joint is not None:
        why.append(f"属“{joint.name}”一件事，{joint.lead}牵头，{'、'.join(joint.cooperating)}协办")
        return DispatchDecision(level, joint.lead, tuple(joint.cooperating), "；".join(why), joint.name)
    for kw, kind in rules.department_by_keyword.items():
        if kw in text:
            why.append(f"涉及“{kw}”，归口{kind}")
            return DispatchDecision(level, kind, (), "；".join(why))
    kind = rules.department_by_category[category]
    why.append(f"“{category.label}”类事项归口{kind}")
    return DispatchDecision(level, kind, (), "；".join(why))


def should_escalate(
    facts: EventFacts,
    now: datetime,
    rules: DispatchRules = DEFAULT_RULES,
    deadlines: DeadlineRules = DEFAULT_DEADLINES,
) -> Escalation | None:
    """An automatic 上移 when the handling deadline (plus grace) passed and the urgency's policy allows it.

    Only events being handled (派单/处置中) with a known dispatch time qualify; the target is the
    owner level's parent, never above the policy's top level (矛盾不上交).
    """
    if facts.status is None or facts.dispatched_at is None or stage_of(facts.status) is not Stage.HANDLE:
        return None
    urgency = Urgency(facts.urgency)
    policy = rules.escalation
    if not policy.auto.get(urgency, False):
        return None
    due = due_at(Stage.HANDLE, urgency, facts.dispatched_at, deadlines)
    late = now - due
    if late <= timedelta(hours=policy.grace_hours):
        return None
    level = facts.owner_level or route(facts, rules).level
    parent = level.parent
    if parent is None or parent.depth < policy.top_level.depth:
        return None
    return Escalation(
        from_level=level,
        to_level=parent,
        overdue_by=late,
        reason=f"处置{late_label(late)}（时限 {due:%m-%d %H:%M}），{urgency.label}事件自动上移至{parent.label}",
    )
