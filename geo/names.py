"""Chinese place-name material for the synthetic hierarchy: real Quzhou townships and name generators."""

from __future__ import annotations

import numpy as np


def _words(text: str) -> list[str]:
    return text.split()


# Real township names of each Quzhou county (checked against published lists), fitted to
# the cockpit's counts: 61 townships, 17 街道 + 44 乡镇 (32 镇, 12 乡). Real Quzhou has more
# (about 100); which real ones are kept is our choice, their placement is synthetic.
# The first 街道 of 柯城区 is the demo town.
QUZHOU_TOWNSHIPS: dict[str, list[str]] = {
    "330802": _words(
        "双港街道 府山街道 荷花街道 花园街道 信安街道 白云街道 衢化街道 航埠镇 石梁镇 九华乡"
    ),  # 柯城区
    "330803": _words(
        "樟潭街道 浮石街道 杜泽镇 廿里镇 高家镇 湖南镇 全旺镇 大洲镇 后溪镇 上方镇 太真乡 举村乡"
    ),  # 衢江区
    "330822": _words("天马街道 紫港街道 球川镇 辉埠镇 芳村镇 招贤镇 青石镇 同弓乡 新昌乡"),  # 常山县
    "330824": _words("芹阳街道 华埠镇 马金镇 池淮镇 桐村镇 杨林镇 苏庄镇 音坑乡 何田乡 长虹乡"),  # 开化县
    "330825": _words("龙洲街道 东华街道 湖镇镇 小南海镇 溪口镇 詹家镇 模环乡 社阳乡"),  # 龙游县
    "330881": _words(
        "双塔街道 虎山街道 清湖街道 贺村镇 上余镇 四都镇 坛石镇 峡口镇 廿八都镇 石门镇 大陈乡 张村乡"
    ),  # 江山市
}


_VILLAGE_PREFIX = "上下前后东西南北大小新中高里外"
_SURNAME = "张王李徐周叶毛郑余祝方汪吴姜刘陈杨黄赵朱胡林何郭程童傅邵蒋杜詹柴占鲁严金姚范戴夏杭项姜"
_VILLAGE_MID = "家坞源坑塘畈岭垅湾山溪田桥"
_COMMUNITY_WORDS = _words(
    "新华 和平 百汇 锦绣 春江 府东 府西 花园 信安 白云 斗潭 天宁 坊门 柯山 新安 北门 南湖 西区 "
    "东方 丽阳 振兴 文昌 书院 下街 礼贤 县学 兴华 通衢 滨江 紫荆 鹿鸣 新桥 城南 城北 城东 城西 "
    "金港 樟树 江滨 永安 民主 仙霞 海棠 桔香 宝塔 三衢 东园 西安 南苑 北苑 凤凰 荷园 芳洲 翠竹 "
    "梅园 兰苑 桂花 枫林 银河 金星 朝阳 晨光 明珠 新城 龙腾 鹤鸣 石榴 清泉 月湖 富强 幸福 育才"
)
_PLACE_WORDS = _words(
    "城关 城东 城西 城南 城北 新城 东湖 西山 南溪 北岭 青石 白沙 黄泥 龙潭 凤凰 金星 银河 双溪 "
    "三江 五里 七里 桃源 杏花 梅林 松山 竹溪 柳湖 枫林 樟树 石门 石桥 岭头 溪口 横山 长岭 大溪 "
    "小溪 上塘 下塘 前山 后山 高桥 平湖 碧湖 青山 白云 仙居 云台 霞山 马岭 牛头 鹤溪 龙泉 金川 "
    "玉屏 翠峰 清溪 芙蓉 南山 北山 东岸 西岸 古城 新塘 荷塘 葛岭 梓桐 柏林 桂岭 兰溪 莲花 菱湖"
)


def _pick_unique(candidates: list[str], n: int, rng: np.random.Generator, fallback: str) -> list[str]:
    """n distinct names drawn from candidates, then numbered fallbacks if they run out."""
    order = rng.permutation(len(candidates))
    out = [candidates[i] for i in order[:n]]
    k = 1
    while len(out) < n:
        name = fallback.format(k=k)
        if name not in out:
            out.append(name)
        k += 1
    return out


def village_names(n: int, rng: np.random.Generator) -> list[str]:
    """Village stems like 下张 or 张家 (add 村 yourself); distinct."""
    cands = [p + s for p in _VILLAGE_PREFIX for s in _SURNAME]
    cands += [s + m for s in _SURNAME for m in _VILLAGE_MID]
    cands = sorted(set(cands))
    return _pick_unique(cands, n, rng, "新建{k}")


def community_names(n: int, rng: np.random.Generator) -> list[str]:
    """Community stems like 新华 (add 社区 yourself); distinct."""
    return _pick_unique(sorted(set(_COMMUNITY_WORDS)), n, rng, "第{k}")


def place_names(n: int, rng: np.random.Generator) -> list[str]:
    """Two-character place stems for generated townships and counties; distinct."""
    return _pick_unique(sorted(set(_PLACE_WORDS)), n, rng, "新设{k}")


#: The end of the name of a unit an import generated below the file's units (decision 0056).
GENERATED_MARK = "（自动生成）"


def numbered_names(parent_name: str, kinds: list[str]) -> list[str]:
    """Names that say a unit was generated, not found: ``{parent}第{k}{kind}（自动生成）`` with k counted per
    kind from 1 (东溪镇第1社区（自动生成）, 东溪镇第1村（自动生成）, 东溪镇第2村（自动生成）); a grid
    ``{parent}第{k}网格``, as every grid is named. The parent's own mark is left out of its children's names."""
    base = parent_name.removesuffix(GENERATED_MARK)
    seen: dict[str, int] = {}
    out = []
    for kind in kinds:
        seen[kind] = seen.get(kind, 0) + 1
        out.append(f"{base}第{seen[kind]}{kind}" + ("" if kind == "网格" else GENERATED_MARK))
    return out


def kind_from_name(name: str, level: str) -> str:
    """The administrative kind a Chinese unit name implies at a level (市/区/县/县级市/…)."""
    name = name.removesuffix(GENERATED_MARK)
    if level == "city":
        return "市"
    if level == "county":
        for suffix, kind in (("区", "区"), ("县", "县"), ("旗", "县"), ("市", "县级市")):
            if name.endswith(suffix):
                return kind
        return "区"
    if level == "township":
        for suffix in ("街道", "镇", "乡"):
            if name.endswith(suffix):
                return suffix
        if name.endswith("办事处"):
            return "街道"
        return "镇"
    if level == "village":
        return "社区" if name.endswith("社区") or name.endswith("居委会") else "村"
    return "网格"
