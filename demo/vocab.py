"""Chinese material for synthetic records: people, roads, venue names, event kinds, checklists, departments."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from domain.vocabulary import EventCategory as C
from domain.vocabulary import EventSource as S
from domain.vocabulary import VenueCategory as V

# ---------------------------------------------------------------- people

SURNAMES = list(
    "徐王张李周郑吴毛汪叶余姜刘陈杨黄方祝程胡赵朱林何郭童傅邵蒋杜詹柴占鲁严金姚范戴夏项"
    "孙马高罗梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蔡苏魏吕丁任沈卢崔钟谭陆石廖贾韦邹孟熊"
)
# Common surnames dominate (a Zipf-like tail), as in any Chinese register.
SURNAME_WEIGHTS = 1.0 / (np.arange(len(SURNAMES)) + 6.0)
GIVEN_CHARS = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文斌波辉宁海燕鹏飞浩宇欣怡"
    "子涵梓轩俊晨阳雨婷佳琪思远志春梅秋菊冬生立新永康金水根土富贵卫东龙凤忠良德福荣晓丹"
)
# Real mobile prefixes; every one keeps the number inside 1[3-9]\d{9}.
PHONE_PREFIXES = np.array(
    [
        *range(130, 140),
        150,
        151,
        152,
        153,
        155,
        156,
        157,
        158,
        159,
        166,
        170,
        171,
        173,
        175,
        176,
        177,
        178,
        *range(180, 190),
        198,
        199,
    ],
    dtype=np.int64,
)


def fake_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """n fake Chinese full names (surname + one or two given characters) as a str array."""
    sur = np.asarray(SURNAMES)[rng.choice(len(SURNAMES), n, p=SURNAME_WEIGHTS / SURNAME_WEIGHTS.sum())]
    given = np.asarray(GIVEN_CHARS)
    g1 = given[rng.integers(0, len(given), n)]
    g2 = np.where(rng.random(n) < 0.7, given[rng.integers(0, len(given), n)], "")
    return np.char.add(np.char.add(sur, g1), g2)


def fake_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """n fake mainland mobile numbers matching 1[3-9]\\d{9}, as a str array."""
    prefix = PHONE_PREFIXES[rng.integers(0, len(PHONE_PREFIXES), n)]
    return (prefix * 100_000_000 + rng.integers(0, 100_000_000, n)).astype(str)


# ---------------------------------------------------------------- places

ROADS = [
    "荷花路",
    "新桥街",
    "县西街",
    "上街",
    "坊门街",
    "水亭街",
    "衢化路",
    "世纪大道",
    "花园大道",
    "白云大道",
    "三衢路",
    "劳动路",
    "府山街",
    "柯城大道",
    "九华大道",
    "西安路",
    "南湖路",
    "通荷路",
    "双港路",
    "紫荆路",
    "书院路",
    "兴华路",
    "天宁巷",
    "下街",
    "北门街",
    "新安路",
    "百汇路",
    "江滨路",
    "信安大道",
    "礼贤路",
    "皂木巷",
    "钟楼底",
    "东门街",
    "南街",
    "化工路",
    "巨化路",
    "凯旋路",
    "仙霞路",
    "鹿鸣路",
    "文昌路",
    "丽阳路",
    "亭川路",
    "石梁路",
    "航埠路",
    "沙湾路",
    "东港路",
    "锦西大道",
    "芹江路",
    "体育路",
]
FIRM_WORDS = [
    "宏达",
    "恒信",
    "金盛",
    "华康",
    "永兴",
    "鑫源",
    "瑞丰",
    "东方",
    "正泰",
    "天和",
    "隆昌",
    "汇丰",
    "嘉禾",
    "博远",
    "广源",
    "明辉",
    "立信",
    "安泰",
    "新宇",
    "恒通",
    "润达",
    "信诚",
    "和美",
    "三衢",
    "衢兴",
    "柯发",
    "巨能",
    "万家",
    "百川",
    "联创",
]

VENUE_NAME_PARTS: dict[V, list[str]] = {
    V.STREET_SHOP: [
        "小吃店",
        "五金店",
        "水果店",
        "理发店",
        "便利店",
        "面馆",
        "烟酒店",
        "服装店",
        "早餐店",
        "药店",
        "手机店",
        "快递驿站",
        "烧烤店",
        "奶茶店",
        "超市",
        "干洗店",
        "电动车行",
        "文具店",
        "粮油店",
        "麻辣烫",
    ],
    V.RENTAL_HOUSING: ["出租房"],
    V.GENERAL_FIRM: [
        "贸易有限公司",
        "科技有限公司",
        "建材有限公司",
        "机械有限公司",
        "物流有限公司",
        "食品有限公司",
        "包装有限公司",
        "纺织有限公司",
        "木业有限公司",
    ],
    V.LABOUR_INTENSIVE: ["服饰厂", "电子厂", "鞋业有限公司", "玩具厂", "纸制品厂", "箱包厂"],
    V.HAZCHEM: ["化工有限公司", "新材料有限公司", "氟化工有限公司", "涂料有限公司", "精细化工有限公司"],
    V.CONSTRUCTION_SITE: [
        "小区项目工地",
        "安置房项目工地",
        "商业综合体项目工地",
        "学校建设工地",
        "道路改造工地",
        "厂房项目工地",
    ],
    V.CROWDED_VENUE: ["农贸市场", "超市", "影城", "体育馆", "KTV", "商场", "客运站", "医院门诊部"],
    V.KEY_SECURITY: ["宾馆", "网吧", "酒吧", "典当行", "旅馆", "洗浴中心", "二手手机店"],
}

# ---------------------------------------------------------------- event kinds


@dataclass(frozen=True)
class Subtype:
    """One kind of matter within a category: title, weight within it, what can report or cause it."""

    category: C
    title: str
    weight: float
    video: bool = False  # video AI / drones can spot it (出店经营, 违章停车, 渣土偷倒 …)
    venue: bool = False  # usually tied to a venue (a shop, a firm, a site)
    small: bool = True  # a 小事 the village can usually settle itself


SUBTYPES: list[Subtype] = [
    Subtype(C.URBAN, "出店经营", 0.16, video=True, venue=True),
    Subtype(C.URBAN, "违章停车", 0.16, video=True),
    Subtype(C.URBAN, "占道经营", 0.12, video=True),
    Subtype(C.URBAN, "乱堆乱放", 0.10),
    Subtype(C.URBAN, "垃圾满溢", 0.10, video=True),
    Subtype(C.URBAN, "渣土偷倒", 0.06, video=True, small=False),
    Subtype(C.URBAN, "违规户外广告", 0.07),
    Subtype(C.URBAN, "违章搭建", 0.08, small=False),
    Subtype(C.URBAN, "共享单车乱停放", 0.08),
    Subtype(C.URBAN, "道路破损", 0.07, small=False),
    Subtype(C.DISPUTE, "邻里纠纷", 0.28),
    Subtype(C.DISPUTE, "物业纠纷", 0.18),
    Subtype(C.DISPUTE, "劳资纠纷", 0.16, venue=True, small=False),
    Subtype(C.DISPUTE, "家庭矛盾", 0.12),
    Subtype(C.DISPUTE, "土地山林纠纷", 0.08, small=False),
    Subtype(C.DISPUTE, "消费纠纷", 0.10, venue=True),
    Subtype(C.DISPUTE, "房屋租赁纠纷", 0.08),
    Subtype(C.ENVIRONMENT, "噪声扰民", 0.25),
    Subtype(C.ENVIRONMENT, "餐饮油烟扰民", 0.18, venue=True),
    Subtype(C.ENVIRONMENT, "河道漂浮物", 0.12),
    Subtype(C.ENVIRONMENT, "异味扰民", 0.10, small=False),
    Subtype(C.ENVIRONMENT, "露天焚烧", 0.10, video=True),
    Subtype(C.ENVIRONMENT, "污水直排", 0.10, venue=True, small=False),
    Subtype(C.ENVIRONMENT, "工地扬尘", 0.15, video=True, venue=True),
    Subtype(C.MARKET, "无证经营", 0.20, venue=True),
    Subtype(C.MARKET, "食品安全隐患", 0.22, venue=True, small=False),
    Subtype(C.MARKET, "价格争议", 0.14, venue=True),
    Subtype(C.MARKET, "销售过期商品", 0.12, venue=True),
    Subtype(C.MARKET, "虚假宣传", 0.10, venue=True),
    Subtype(C.MARKET, "计量作弊", 0.08, venue=True),
    Subtype(C.MARKET, "特种设备隐患", 0.14, venue=True, small=False),
    Subtype(C.WORK_SAFETY, "消防通道堵塞", 0.18, venue=True),
    Subtype(C.WORK_SAFETY, "电线私拉乱接", 0.16, venue=True),
    Subtype(C.WORK_SAFETY, "电动车楼道充电", 0.16),
    Subtype(C.WORK_SAFETY, "燃气使用不规范", 0.12, venue=True, small=False),
    Subtype(C.WORK_SAFETY, "工地作业未戴安全帽", 0.10, video=True, venue=True),
    Subtype(C.WORK_SAFETY, "危化品违规存放", 0.08, venue=True, small=False),
    Subtype(C.WORK_SAFETY, "三合一场所住人", 0.10, venue=True, small=False),
    Subtype(C.WORK_SAFETY, "灭火器过期", 0.10, venue=True),
    Subtype(C.PUBLIC_SECURITY, "群租隐患", 0.18, venue=True),
    Subtype(C.PUBLIC_SECURITY, "可疑人员", 0.14),
    Subtype(C.PUBLIC_SECURITY, "流动人口未登记", 0.16, venue=True),
    Subtype(C.PUBLIC_SECURITY, "打架斗殴", 0.10, small=False),
    Subtype(C.PUBLIC_SECURITY, "盗窃线索", 0.12, small=False),
    Subtype(C.PUBLIC_SECURITY, "赌博线索", 0.08, venue=True, small=False),
    Subtype(C.PUBLIC_SECURITY, "监控设施损坏", 0.10, video=True),
    Subtype(C.PUBLIC_SECURITY, "电信诈骗线索", 0.12, small=False),
    Subtype(C.NATURAL_HAZARD, "积水内涝", 0.25),
    Subtype(C.NATURAL_HAZARD, "边坡落石", 0.15, small=False),
    Subtype(C.NATURAL_HAZARD, "树木倾倒", 0.20),
    Subtype(C.NATURAL_HAZARD, "河道水位上涨", 0.10, small=False),
    Subtype(C.NATURAL_HAZARD, "危旧房屋", 0.15, small=False),
    Subtype(C.NATURAL_HAZARD, "地质灾害隐患点", 0.15, small=False),
    Subtype(C.LIVELIHOOD, "路灯不亮", 0.18),
    Subtype(C.LIVELIHOOD, "井盖缺失破损", 0.12),
    Subtype(C.LIVELIHOOD, "垃圾未清运", 0.12),
    Subtype(C.LIVELIHOOD, "停水停电咨询", 0.10),
    Subtype(C.LIVELIHOOD, "低保救助申请", 0.08),
    Subtype(C.LIVELIHOOD, "老旧小区加装电梯", 0.06, small=False),
    Subtype(C.LIVELIHOOD, "公交站台损坏", 0.06),
    Subtype(C.LIVELIHOOD, "无障碍设施缺失", 0.05),
    Subtype(C.LIVELIHOOD, "宠物扰民", 0.08),
    Subtype(C.LIVELIHOOD, "燃气报修", 0.05),
    Subtype(C.LIVELIHOOD, "绿化养护", 0.10),
    # Only injected by the anomalies (weight 0 in the base process).
    Subtype(C.NATURAL_HAZARD, "路面沉降塌陷", 0.0, small=False),
]
SUBTYPE_INDEX = {s.title: i for i, s in enumerate(SUBTYPES)}

# What citizens write after the place and the title; one phrase per category, picked at random.
DETAIL_PHRASES: dict[C, list[str]] = {
    C.URBAN: ["影响市容和通行，请尽快处理", "已持续多日，周边居民意见较大", "占用人行道，行人只能走机动车道"],
    C.DISPUTE: ["双方争执不下，请求调解", "多次协商未果，情绪较激动", "当事人要求社区介入"],
    C.ENVIRONMENT: ["严重影响周边居民休息", "气味刺鼻，持续时间较长", "请环保部门核查处理"],
    C.MARKET: ["消费者投诉，请市场监管部门核查", "疑似存在违规行为", "店家拒绝退换，请求处理"],
    C.WORK_SAFETY: ["存在较大安全隐患，请尽快整改", "巡查发现，需限期整改", "多次提醒仍未整改"],
    C.PUBLIC_SECURITY: ["请派出所核查", "居民反映存在治安隐患", "夜间时有发生，居民担心安全"],
    C.NATURAL_HAZARD: ["存在安全隐患，请尽快排查", "雨后情况加重，需设置警示", "威胁周边住户安全"],
    C.LIVELIHOOD: ["给居民生活带来不便", "请相关部门尽快解决", "已反映多次，希望尽快答复"],
}

# Share of each source per category, on weekdays (citizen 随手拍 and grid-worker patrols dominate).
SOURCES = [
    S.CITIZEN,
    S.GRID_WORKER,
    S.HOTLINE_12345,
    S.POLICE_110,
    S.FIRE_119,
    S.VIDEO_AI,
    S.DIGITAL_CITY,
    S.INSPECTION,
]
SOURCE_MIX: dict[C, list[float]] = {
    C.URBAN: [30, 28, 10, 1, 0, 14, 16, 1],
    C.DISPUTE: [28, 30, 24, 16, 0, 0, 0, 2],
    C.ENVIRONMENT: [36, 26, 20, 2, 0, 8, 6, 2],
    C.MARKET: [34, 18, 26, 2, 0, 0, 2, 18],
    C.WORK_SAFETY: [18, 28, 8, 2, 6, 4, 2, 32],
    C.PUBLIC_SECURITY: [22, 34, 10, 26, 0, 6, 0, 2],
    C.NATURAL_HAZARD: [22, 40, 14, 4, 6, 4, 8, 2],
    C.LIVELIHOOD: [36, 28, 28, 0, 0, 0, 8, 0],
}

# Category mix by township kind: streets are urban, 乡 are rural.
CATEGORIES = list(C)
CATEGORY_MIX: dict[str, list[float]] = {
    #        urban dispute env market safety security natural livelihood
    "街道": [0.30, 0.12, 0.10, 0.12, 0.07, 0.10, 0.02, 0.17],
    "镇": [0.22, 0.15, 0.13, 0.09, 0.08, 0.08, 0.07, 0.18],
    "乡": [0.12, 0.18, 0.16, 0.06, 0.06, 0.07, 0.14, 0.21],
}

# ---------------------------------------------------------------- checklists and hazards

COMMON_ITEMS = [
    ("消防器材", "灭火器过期或配置不足"),
    ("疏散通道", "疏散通道堆放杂物"),
    ("电气线路", "电线私拉乱接"),
    ("安全出口", "安全出口指示标志损坏"),
]
CHECK_ITEMS: dict[V, list[tuple[str, str]]] = {
    V.STREET_SHOP: [*COMMON_ITEMS, ("燃气使用", "燃气软管老化未更换"), ("出店经营", "商品摆放超出门店")],
    V.KEY_SECURITY: [*COMMON_ITEMS, ("治安登记", "住宿/上网登记不全"), ("监控设施", "监控设备损坏未修复")],
    V.RENTAL_HOUSING: [*COMMON_ITEMS, ("电动车充电", "电动车室内违规充电"), ("人员登记", "租住人员未登记")],
    V.HAZCHEM: [
        *COMMON_ITEMS,
        ("危化品储存", "危化品超量储存"),
        ("防爆设施", "防爆设施失效"),
        ("应急预案", "应急预案未演练"),
    ],
    V.LABOUR_INTENSIVE: [
        *COMMON_ITEMS,
        ("员工宿舍", "生产储存住宿三合一"),
        ("安全培训", "员工安全培训记录缺失"),
    ],
    V.CONSTRUCTION_SITE: [
        *COMMON_ITEMS,
        ("脚手架", "脚手架搭设不规范"),
        ("安全帽", "作业人员未戴安全帽"),
        ("临时用电", "临时用电不规范"),
    ],
    V.CROWDED_VENUE: [*COMMON_ITEMS, ("人员限流", "高峰时段未落实限流"), ("应急照明", "应急照明失效")],
    V.GENERAL_FIRM: [*COMMON_ITEMS, ("安全制度", "安全生产责任制未落实")],
}


def checklist_json(category: V, failed: int | None) -> str:
    """The checklist of a venue category as stored: every item pass, or item ``failed`` fail."""
    items = CHECK_ITEMS[category]
    return json.dumps(
        {name: ("fail" if i == failed else "pass") for i, (name, _) in enumerate(items)}, ensure_ascii=False
    )


# ---------------------------------------------------------------- departments

# (kind, code slug, name after the township name) of the offices every township has.
TOWNSHIP_DEPARTMENTS = [
    ("城管", "cg", "综合行政执法队"),
    ("公安", "ga", "派出所"),
    ("市场监管", "sj", "市场监管所"),
    ("应急管理", "yj", "应急管理中心"),
    ("综治", "zz", "综治中心"),
    ("司法", "sf", "司法所"),
    ("民政", "mz", "社会事务办"),
    ("住建", "zj", "村镇建设办"),
    ("生态环境", "hb", "生态环境办"),
]
# (kind, code slug, name after the county name) of every county's departments.
COUNTY_DEPARTMENTS = [
    ("公安", "ga", "公安分局"),
    ("交警", "jj", "交警大队"),
    ("城管", "cg", "综合行政执法局"),
    ("市场监管", "sj", "市场监管局"),
    ("应急管理", "yj", "应急管理局"),
    ("消防", "xf", "消防救援大队"),
    ("生态环境", "hb", "生态环境分局"),
    ("住建", "zj", "住房和城乡建设局"),
    ("民政", "mz", "民政局"),
    ("司法", "sf", "司法局"),
    ("水利", "sl", "水利局"),
    ("综治", "zz", "社会矛盾纠纷调处化解中心"),
]
# Which kind of department leads an event of each category, with weights.
LEAD_KINDS: dict[C, list[tuple[str, float]]] = {
    C.URBAN: [("城管", 0.75), ("交警", 0.15), ("住建", 0.10)],
    C.DISPUTE: [("司法", 0.45), ("综治", 0.35), ("公安", 0.20)],
    C.ENVIRONMENT: [("生态环境", 0.80), ("城管", 0.20)],
    C.MARKET: [("市场监管", 1.0)],
    C.WORK_SAFETY: [("应急管理", 0.65), ("消防", 0.25), ("住建", 0.10)],
    C.PUBLIC_SECURITY: [("公安", 0.80), ("综治", 0.20)],
    C.NATURAL_HAZARD: [("应急管理", 0.60), ("水利", 0.25), ("住建", 0.15)],
    C.LIVELIHOOD: [("民政", 0.55), ("住建", 0.25), ("城管", 0.20)],
}
