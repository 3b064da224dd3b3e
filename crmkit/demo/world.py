"""The fixed world of the demo chain: stores, categories and products, names."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Region → city → store names (50 stores).
STORES: dict[str, dict[str, tuple[str, ...]]] = {
    "华东": {"上海": ("徐家汇店", "南京东路店", "五角场店", "陆家嘴店", "中山公园店", "七宝店"),
             "杭州": ("湖滨店", "西溪店", "滨江店"), "南京": ("新街口店", "河西店", "仙林店"),
             "苏州": ("观前街店", "园区店"), "宁波": ("天一广场店", "鄞州店")},
    "华南": {"广州": ("天河城店", "北京路店", "珠江新城店", "番禺店"),
             "深圳": ("万象城店", "海岸城店", "龙华店", "宝安店"), "东莞": ("南城店",), "佛山": ("祖庙店",),
             "厦门": ("中山路店", "SM店")},
    "华北": {"北京": ("西单店", "三里屯店", "望京店", "五道口店", "国贸店"), "天津": ("滨江道店", "南开店"),
             "济南": ("泉城路店",), "青岛": ("台东店",), "石家庄": ("北国店",)},
    "西南": {"成都": ("春熙路店", "太古里店", "高新店"), "重庆": ("解放碑店", "观音桥店"), "昆明": ("南屏街店",)},
    "华中": {"武汉": ("江汉路店", "光谷店", "汉街店"), "长沙": ("五一广场店", "梅溪湖店"), "郑州": ("二七店",)},
}

#: Category → (sku code prefix, share of lines, share of lines returned).
CATEGORIES: dict[str, tuple[str, float, float]] = {
    "服装": ("FZ", 0.24, 0.08), "鞋履": ("XL", 0.12, 0.07), "美妆": ("MZ", 0.14, 0.02), "食品": ("SP", 0.16, 0.01),
    "家居": ("JJ", 0.10, 0.03), "母婴": ("MY", 0.08, 0.02), "数码": ("SM", 0.06, 0.04), "运动": ("YD", 0.10, 0.05),
}
SKUS_PER_CATEGORY = 40

#: Categories bought together: a later line of an order follows the first line's category this way.
COMPANIONS = {"服装": "鞋履", "鞋履": "服装", "美妆": "服装", "食品": "母婴", "家居": "食品", "母婴": "食品",
              "数码": "运动", "运动": "鞋履"}

SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严")
GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏辉建林玲文俊婷雪琳晨宇浩然子轩梓涵欣怡佳琪思雨一诺"
              "晓东海燕晶慧博文嘉怡心悦雅宁振国志强丹丹")
NICKNAMES = ("小鱼儿", "阳光", "晴天", "momo", "Lily", "大橙子", "喵喵", "kiki", "小太阳", "奔跑的蜗牛", "Tina", "木子",
             "糖糖", "Amy", "豆豆", "Jason", "小白", "向日葵", "Coco", "果果")

PHONE_PREFIXES = np.array([130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158,
                           159, 166, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 198, 199])


@dataclass(frozen=True)
class Stores:
    ids: np.ndarray      # "S001", ...
    names: np.ndarray
    cities: np.ndarray
    regions: np.ndarray
    weights: np.ndarray  # share of members whose home store it is


def stores(rng: np.random.Generator) -> Stores:
    rows = [(region, city, f"{city}{name}") for region, cities in STORES.items()
            for city, names in cities.items() for name in names]
    n = len(rows)
    weights = rng.lognormal(0.0, 0.4, n)
    return Stores(ids=np.array([f"S{i + 1:03d}" for i in range(n)]), names=np.array([r[2] for r in rows]),
                  cities=np.array([r[1] for r in rows]), regions=np.array([r[0] for r in rows]),
                  weights=weights / weights.sum())


def category_names() -> np.ndarray:
    return np.array(list(CATEGORIES))


def sku_codes() -> np.ndarray:
    """All SKU codes, category by category: sku ``c * SKUS_PER_CATEGORY + k``."""
    return np.array([f"{code}{k + 1:04d}" for code, _, _ in CATEGORIES.values() for k in range(SKUS_PER_CATEGORY)])


def unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """``n`` distinct random integers in ``[low, high)``, in random order."""
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        draw = rng.integers(low, high, int((n - len(out)) * 1.2) + 16, dtype=np.int64)
        both = np.concatenate([out, draw])
        _, first = np.unique(both, return_index=True)
        out = both[np.sort(first)]
    return out[:n]


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct mainland mobile numbers (int64)."""
    nums = unique_ints(rng, n, 0, len(PHONE_PREFIXES) * 10**8)
    return PHONE_PREFIXES[nums // 10**8] * 10**8 + nums % 10**8


def open_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """WeChat-style open ids: ``o`` + 27 characters."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    chars = alphabet[rng.integers(0, 64, (n, 27))]
    body = np.ascontiguousarray(chars).view("<U27").ravel()
    return np.char.add("o", body)


def names(rng: np.random.Generator, n: int) -> np.ndarray:
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    given = np.array(GIVEN)[rng.integers(0, len(GIVEN), n)]
    second = np.where(rng.random(n) < 0.6, np.array(GIVEN)[rng.integers(0, len(GIVEN), n)], "")
    return np.char.add(np.char.add(surname, given), second)


def nicknames(rng: np.random.Generator, n: int) -> np.ndarray:
    stem = np.array(NICKNAMES)[rng.integers(0, len(NICKNAMES), n)]
    return np.char.add(stem, rng.integers(1, 1000, n).astype(str))
