"""The domain's words: every enumerated value the cockpit stores, with its Chinese label.

One place knows each vocabulary. Values are stored by their English value (stable across
releases and databases); labels are what the UI shows. Nothing here imports a framework.
"""

from __future__ import annotations

from enum import StrEnum


class Labelled(StrEnum):
    """A StrEnum whose members carry a Chinese label (``member.label``)."""

    label: str

    def __new__(
        cls, value: str, label: str = ""
    ) -> Labelled:  # label's default: lets mypy see Enum(value) lookups
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    @classmethod
    def from_label(cls, label: str) -> Labelled:
        """The member whose Chinese label is ``label`` (KeyError if none)."""
        for m in cls:
            if m.label == label:
                return m
        raise KeyError(label)


class AdminLevel(Labelled):
    """The five levels, 市-县-乡-村-网格 五级联动, from the top down."""

    CITY = "city", "市"
    COUNTY = "county", "县(市、区)"
    TOWNSHIP = "township", "乡镇(街道)"
    VILLAGE = "village", "村(社区)"
    GRID = "grid", "网格"

    @property
    def depth(self) -> int:
        return list(AdminLevel).index(self)

    @property
    def child(self) -> AdminLevel | None:
        levels = list(AdminLevel)
        return levels[self.depth + 1] if self.depth + 1 < len(levels) else None

    @property
    def parent(self) -> AdminLevel | None:
        return list(AdminLevel)[self.depth - 1] if self.depth > 0 else None

    def and_below(self) -> list[AdminLevel]:
        """This level and every one under it, from the top down."""
        return list(AdminLevel)[self.depth :]

    def linkage(self) -> str:
        """The levels from this one down as the cockpits name them: 市-县-乡-村-网格 五级联动 from a city,
        县-乡-村-网格 四级联动 from a county (an own-area store, a county's leader)."""
        return f"{'-'.join(_SHORT[lv.value] for lv in self.and_below())} {self.linked()}"

    def linked(self) -> str:
        """How many levels link from this one down: 五级联动 from a city, 四级联动 from a county."""
        return f"{'一二三四五'[len(self.and_below()) - 1]}级联动"


_SHORT = {"city": "市", "county": "县", "township": "乡", "village": "村", "grid": "网格"}


class VenueCategory(Labelled):
    """The eight venue categories of 平安码 (一企一所一码)."""

    STREET_SHOP = "street_shop", "沿街店铺"
    KEY_SECURITY = "key_security", "重点治安场所"
    RENTAL_HOUSING = "rental_housing", "出租房"
    HAZCHEM = "hazchem", "危化品生产企业"
    LABOUR_INTENSIVE = "labour_intensive", "劳动密集型企业"
    CONSTRUCTION_SITE = "construction_site", "建筑工地"
    CROWDED_VENUE = "crowded_venue", "人流密集场所"
    GENERAL_FIRM = "general_firm", "一般企业"


class SafetyCode(Labelled):
    """平安码 colour of a venue; re-check cadence red daily, yellow weekly, green monthly."""

    RED = "red", "红码"
    YELLOW = "yellow", "黄码"
    GREEN = "green", "绿码"


class EventSource(Labelled):
    """Where an event came from (渠道)."""

    CITIZEN = "citizen", "随手拍"
    GRID_WORKER = "grid_worker", "网格员巡查"
    HOTLINE_12345 = "hotline_12345", "12345热线"
    POLICE_110 = "police_110", "110联动"
    FIRE_119 = "fire_119", "119警情"
    VIDEO_AI = "video_ai", "视频智能识别"
    DIGITAL_CITY = "digital_city", "数字城管"
    INSPECTION = "inspection", "检查发现"


class EventCategory(Labelled):
    """What an event is about (事项)."""

    URBAN = "urban", "城镇管理"
    DISPUTE = "dispute", "矛盾纠纷"
    ENVIRONMENT = "environment", "生态环境"
    MARKET = "market", "市场监管"
    WORK_SAFETY = "work_safety", "安全生产"
    PUBLIC_SECURITY = "public_security", "治安隐患"
    NATURAL_HAZARD = "natural_hazard", "自然灾害防治"
    LIVELIHOOD = "livelihood", "民生服务"


class EventStatus(Labelled):
    """Where an event stands in the closed loop (事件闭环)."""

    REPORTED = "reported", "已上报"
    ACCEPTED = "accepted", "已受理"
    REJECTED = "rejected", "已退回"
    DISPATCHED = "dispatched", "已派单"
    RETURNED = "returned", "已退单"
    IN_PROGRESS = "in_progress", "处置中"
    RESOLVED = "resolved", "已办结"
    VERIFIED = "verified", "已核查"
    RATED = "rated", "已评价"
    ARCHIVED = "archived", "已归档"


# The status groups every count and filter uses (one place, as FixMyStreet's State filters):
# OPEN still needs someone's work; CLOSED is every other status; RESOLVED are the closed ones that were
# handled to the end (办结 and after; a reopened event is in progress, open again). Rejected is closed
# without a resolution.
OPEN_STATUSES: frozenset[EventStatus] = frozenset(
    {
        EventStatus.REPORTED,
        EventStatus.ACCEPTED,
        EventStatus.DISPATCHED,
        EventStatus.RETURNED,
        EventStatus.IN_PROGRESS,
    }
)
CLOSED_STATUSES: frozenset[EventStatus] = frozenset(EventStatus) - OPEN_STATUSES
RESOLVED_STATUSES: frozenset[EventStatus] = frozenset(
    {EventStatus.RESOLVED, EventStatus.VERIFIED, EventStatus.RATED, EventStatus.ARCHIVED}
)
#: The statuses whose stage clock runs (domain.deadlines.STAGE_OF_STATUS): the open ones and 已办结
#: awaiting 核查. An event in one of them can be late (超期).
TIMED_STATUSES: frozenset[EventStatus] = OPEN_STATUSES | {EventStatus.RESOLVED}


class Urgency(Labelled):
    """How fast an event must be handled; deadlines hang off it."""

    NORMAL = "normal", "一般"
    URGENT = "urgent", "紧急"
    CRITICAL = "critical", "特急"


class Rating(Labelled):
    """The reporter's verdict (好差评)."""

    SATISFIED = "satisfied", "满意"
    BASICALLY = "basically", "基本满意"
    UNSATISFIED = "unsatisfied", "不满意"


class HazardSeverity(Labelled):
    """Severity of a hazard found in an inspection (隐患等级)."""

    MAJOR = "major", "重大隐患"
    GENERAL = "general", "一般隐患"


class HazardStatus(Labelled):
    OPEN = "open", "整改中"
    RECTIFIED = "rectified", "已整改"


class InspectionResult(Labelled):
    PASS = "pass", "合格"
    FAIL = "fail", "不合格"


class Role(Labelled):
    """Who a user is; what they may see is their role plus their scope (a subtree of the five levels)."""

    ADMIN = "admin", "系统管理员"
    COMMAND_CENTER = "command_center", "指挥中心"
    TOWNSHIP_LEADER = "township_leader", "乡镇领导"
    DEPARTMENT = "department", "部门处置人员"
    INSPECTOR = "inspector", "网格员/检查员"


# Who wrote a trail row when it was not a person with a role: the system's own steps, the simulator, a citizen.
ACTOR_LABELS = {"system": "系统", "simulator": "模拟数据", "anonymous": "群众（匿名）", "citizen": "群众"}


def actor_label(role: str | None) -> str:
    """The Chinese name of a trail row's ``actor_role`` (a :class:`Role` value or a system actor)."""
    if role is not None and role in Role._value2member_map_:
        return Role(role).label
    return ACTOR_LABELS.get(role or "", role or "—")
