"""What each kind of export holds, and how its columns are recognised.

A *kind* says which canonical table an export feeds (``schema.TABLES``), which
fields it may carry, how each field is parsed, and by which header names the
field is known in Chinese and English exports. Kinds are data: the loader
checks and keeps them generically, with one behaviour per table.

Member references
-----------------
Channel exports name a person by the id of that channel, never by crmkit's
member id. These *identity columns* are shared by every kind:

========================  ==============  =====================================
field                     source          known as
========================  ==============  =====================================
``card_no``               ``pos``         会员卡号, 卡号, 绑定卡号, card_no, ...
``user_id``               ``online``      user_id, uid, 用户ID, buyer_id, ...
``open_id``               ``miniapp``     openid, open_id, ...
``customer_id``           ``customer``    customer_id, 客户编号, ... (any other system)
``member_id``             (crmkit's own)  member_id: crmkit's member id itself
========================  ==============  =====================================

A member export's row is one *source record*: its first identity column in
the order ``open_id, user_id, card_no, customer_id, member_id`` is the record's
own id, and the others are explicit links (a mini-program user's bound POS
card). Any other row is resolved through whichever of its ids is known.

Headers
-------
A header is read as the field it is a known name of (the alias tables below: Chinese POS, pharmacy and
supermarket tills, Youzan, Weimob, English retail), compared without case, spaces, punctuation or a unit
in brackets (``实付金额(元)``). Where a header has none, two stated rules may name a field; both are
stated in the load summary (``header_rules``):

- the *fallback* (:data:`FALLBACKS`): a transactions export whose amount or order time no column is
  known as reads it from the one column whose name contains 金额 (or 时间 / 日期), and refuses two;
- ``--derive-amount`` (:data:`DERIVATIONS`): amount = quantity × unit price, when no column holds it.

A buyer's or receiver's phone of an order export (买家手机号, 客户手机号, 收货人手机号) is no member's
phone: it is not an alias, so an order export never sets a member's phone.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import InputError
from ..i18n import register


@dataclass(frozen=True)
class Field:
    """One field of an export: canonical name, parser and header aliases.

    ``parse`` is one of ``text``, ``id`` (text; a whole number saved as a float, ``123.0``,
    reads as ``123``), ``date``, ``timestamp``, ``number``, ``integer``, ``phone`` or the
    name of a value vocabulary in
    :data:`VOCABULARIES`. ``no_future`` quarantines dates after the load time, and
    ``since`` (an ISO date) dates before it: :data:`EARLIEST` for the dates of events
    (orders, joining, coupons...), none for a birth date. ``derives`` names the field that this one
    is only read to compute (``unit_price`` → ``amount``, see :data:`DERIVATIONS`): it is checked and
    used only when that field is derived, and never stored.
    """

    name: str
    parse: str = "text"
    aliases: tuple[str, ...] = ()
    required: bool = False
    no_future: bool = False
    since: str | None = None
    derives: str | None = None


#: Dates of events before this are quarantined as implausible ("date before 1990: order_time"): a
#: two-digit year read as a four-digit one (0012-01-10) or a default date (1900-01-01) of a till.
EARLIEST = "1990-01-01"


#: Identity fields and their sources, in the order that picks a record's own id.
IDENTITY_SOURCES: dict[str, str] = {
    "open_id": "miniapp",
    "user_id": "online",
    "card_no": "pos",
    "customer_id": "customer",
    "member_id": "member_id",
}

IDENTITY_FIELDS = (
    Field("open_id", "id", aliases=("open_id", "openid", "微信openid", "wx_openid", "小程序openid")),
    Field("user_id", "id", aliases=("user_id", "uid", "用户id", "用户编号", "buyer_id", "买家id", "mall_user_id",
                              "客户wid", "wid", "有赞uid", "yz_uid", "粉丝id", "fans_id")),
    Field("card_no", "id", aliases=("card_no", "会员卡号", "卡号", "card_number", "member_card", "vip卡号",
                              "绑定卡号", "bind_card_no", "bound_card_no", "pos_card_no", "社保卡号", "医保卡号",
                              "会员号", "会员编号", "vip号", "vip卡", "会员卡", "顾客卡号")),
    Field("customer_id", "id", aliases=("customer_id", "cust_id", "客户编号", "客户id")),
    Field("member_id", "id", aliases=("member_id", "crm_member_id")),
)

#: Value vocabularies: synonyms (compared lower-cased and trimmed) → canonical value.
#: ``strict`` vocabularies quarantine a value they do not know; others keep it.
VOCABULARIES: dict[str, tuple[dict[str, tuple[str, ...]], bool]] = {
    "gender": ({"M": ("m", "male", "男", "1", "先生"), "F": ("f", "female", "女", "2", "女士")}, False),
    "channel": ({"pos": ("pos", "门店", "线下", "store", "offline"),
                 "online": ("online", "mall", "商城", "线上", "web", "app", "电商"),
                 "miniapp": ("miniapp", "mini-program", "mini_program", "小程序", "wechat", "微信")}, False),
    "txn_type": ({"sale": ("sale", "sales", "销售", "正常", "payment", "pay", "支付", "s"),
                  "return": ("return", "refund", "退货", "退款", "r")}, True),
    "group": ({"treatment": ("treatment", "test", "实验组", "干预组", "t"),
               "control": ("control", "holdout", "对照组", "控制组", "c")}, True),
    "event_type": ({"earn": ("earn", "获得", "消费获得", "累积"), "redeem": ("redeem", "兑换", "积分兑换", "使用", "抵扣"),
                    "expire": ("expire", "过期"), "adjust": ("adjust", "调整", "退货扣减")}, False),
}

_STORE_ID = ("store_id", "门店编号", "门店代码", "门店id", "门店编码", "店号", "店铺编号", "店铺id", "store_code", "shop_id",
             "shop_code", "branch_id")
_SKU = ("sku", "商品编码", "商品编号", "货号", "商品条码", "条码", "条形码", "药品编码", "商品id", "规格编码",
        "商品规格编码", "sku_id", "sku_code", "item_id", "product_id", "goods_id", "stock_code", "barcode",
        "item_code", "product_code")
_CATEGORY = ("category", "品类", "类目", "商品类别", "商品分类", "商品类目", "类别", "分类", "药品分类", "category_name",
             "cate_name")
_ORDER_ID = ("order_id", "小票号", "订单号", "订单编号", "单号", "流水号", "单据号", "单据编号", "小票编号", "销售单号",
             "交易单号", "order_no", "receipt_no", "ticket_no", "trade_no", "transaction_id", "invoice_no", "invoice")
_CAMPAIGN_ID = ("campaign_id", "活动编号", "活动id", "campaign_code", "activity_id")


@dataclass(frozen=True)
class Kind:
    """One kind of export and the canonical table it feeds.

    ``key`` are the fields that identify a row: a repeat within one file is a
    duplicate; a row whose key is already in the store replaces it when
    ``upsert`` (dimension tables, campaign assignments, coupons) and is a
    duplicate otherwise. ``signature`` are the fields that tell this kind apart
    when recognising a file by its header. ``members`` says how rows name
    members: ``None`` (not at all), ``"record"`` (a member export) or
    ``"reference"`` (a fact about a member).
    """

    name: str
    table: str
    fields: tuple[Field, ...]
    signature: tuple[str, ...]
    names: tuple[str, ...]
    key: tuple[str, ...] = ()
    upsert: bool = False
    members: str | None = None

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


def _kind(name, table, fields, signature, names, *, key=(), upsert=False, members=None) -> Kind:
    if members:
        fields = IDENTITY_FIELDS + tuple(fields)
    return Kind(name, table, tuple(fields), signature, names, key, upsert, members)


F = Field

#: Every kind, in load order: stores and members before transactions, campaigns before assignments.
KINDS: dict[str, Kind] = {k.name: k for k in (
    _kind("stores", "stores", (
        F("store_id", aliases=_STORE_ID, required=True),
        F("name", aliases=("name", "门店名称", "店名", "store_name", "shop_name")),
        F("city", aliases=("city", "城市")),
        F("region", aliases=("region", "区域", "大区", "地区", "area")),
    ), ("store_id", "name|city|region"), ("store", "shop", "门店"), key=("store_id",), upsert=True),
    _kind("products", "products", (
        F("sku", aliases=_SKU, required=True),
        F("category", aliases=_CATEGORY, required=True),
    ), ("sku", "category"), ("product", "sku", "goods", "商品"), key=("sku",), upsert=True),
    _kind("members", "members", (
        F("phone", "phone", ("phone", "手机号", "手机", "手机号码", "电话", "联系电话", "mobile", "phone_number",
                             "tel", "cellphone")),
        F("name", aliases=("name", "姓名", "会员姓名", "客户姓名", "顾客姓名", "客户名称", "member_name", "real_name",
                           "nickname", "昵称", "粉丝昵称", "微信昵称", "客户昵称")),
        F("gender", "gender", ("gender", "性别", "sex")),
        F("birth_date", "date", ("birth_date", "出生日期", "生日", "birthday", "birthdate", "dob"), no_future=True),
        F("join_date", "date", ("join_date", "入会日期", "入会时间", "注册时间", "注册日期", "开卡日期", "开卡时间",
                                "办卡日期", "办卡时间", "建档日期", "建档时间", "成为会员时间", "成为客户时间",
                                "register_time", "register_date", "registered_at", "signup_time", "reg_time",
                                "created_at"),
          no_future=True, since=EARLIEST),
        F("join_store_id", aliases=("join_store_id", "入会门店", "开卡门店", "注册门店", "办卡门店", "建档门店", "所属门店",
                                    "join_store", "register_store")),
    ), ("@identity", "phone|name|gender|birth_date|join_date|join_store_id"),
        ("member", "user", "customer", "会员", "用户", "客户"), members="record"),
    _kind("campaigns", "campaigns", (
        F("campaign_id", aliases=_CAMPAIGN_ID, required=True),
        F("name", aliases=("name", "活动名称", "campaign_name")),
        F("start", "date", ("start", "开始日期", "开始时间", "start_date", "begin_date"), required=True, since=EARLIEST),
        F("end", "date", ("end", "结束日期", "结束时间", "end_date"), required=True, since=EARLIEST),
        F("channel", aliases=("channel", "渠道", "触达渠道")),
        F("cost_per_contact", "number", ("cost_per_contact", "单次触达成本", "触达成本", "contact_cost")),
        F("fixed_cost", "number", ("fixed_cost", "固定成本")),
        F("coupon_value", "number", ("coupon_value", "券面额", "优惠券面额")),
        F("margin_rate", "number", ("margin_rate", "毛利率", "gross_margin")),
        F("attribution_days", "integer", ("attribution_days", "归因天数", "attribution_window_days")),
    ), ("campaign_id", "start", "end"), ("campaign", "活动"), key=("campaign_id",), upsert=True),
    _kind("transactions", "transactions", (
        F("order_id", aliases=_ORDER_ID),
        F("line_no", "integer", ("line_no", "行号", "序号", "明细行号", "line", "item_no", "item_seq", "line_number")),
        F("order_time", "timestamp", ("order_time", "交易时间", "销售时间", "支付时间", "买家付款时间", "付款时间", "下单时间",
                                      "订单创建时间", "订单时间", "成交时间", "消费时间", "结算时间", "收银时间", "交易日期",
                                      "销售日期", "单据日期", "消费日期", "下单日期", "日期", "时间",
                                      "pay_time", "paid_at", "order_date", "txn_time", "transaction_time",
                                      "sale_time", "invoice_date", "transaction_date", "purchase_date", "sale_date",
                                      "sales_date", "date"),
          required=True, no_future=True, since=EARLIEST),
        F("store_id", aliases=_STORE_ID),
        F("channel", "channel", ("channel", "渠道", "来源渠道")),
        F("sku", aliases=_SKU),
        F("category", aliases=_CATEGORY),
        F("quantity", "number", ("quantity", "数量", "件数", "qty", "num", "销售数量", "商品数量", "购买数量", "售出数量")),
        # an order line's own amount before an order's total (有赞: 商品实际成交金额 before 订单实付金额)
        F("amount", "number", ("amount", "金额", "商品实际成交金额", "商品实付金额", "商品成交金额", "实付金额", "实收金额",
                               "成交金额", "销售金额", "消费金额", "支付金额", "付款金额", "实付款", "实收款", "结算金额",
                               "小计", "订单实付金额", "订单金额", "pay_amount", "paid_amount", "net_amount",
                               "sales_amount", "line_amount", "line_total", "total_amount", "total_price", "payment"),
          required=True),
        F("unit_price", "number", ("unit_price", "成交单价", "成交价", "实际单价", "销售单价", "单价", "商品单价", "售价",
                                   "销售价", "零售价", "零售单价", "price", "sale_price", "selling_price",
                                   "retail_price", "item_price"), derives="amount"),
        F("discount", "number", ("discount", "折扣", "折扣金额", "优惠金额", "discount_amount")),
        F("coupon_id", aliases=("coupon_id", "券号", "优惠券号", "优惠券编号", "coupon_code", "coupon_no")),
        F("txn_type", "txn_type", ("txn_type", "交易类型", "单据类型", "类型", "trade_type", "type", "order_type",
                                   "transaction_type")),
    ), ("@identity", "order_time", "amount"), ("transaction", "order", "sale", "txn", "订单", "交易", "销售", "流水", "小票"),
        key=("order_id", "line_no", "txn_type"), members="reference"),
    _kind("store_sales", "store_sales", (
        F("store_id", aliases=_STORE_ID, required=True),
        F("day", "date", ("day", "日期", "营业日", "date", "business_date"), required=True, no_future=True,
          since=EARLIEST),
        F("sales", "number", ("sales", "销售额", "营业额", "sales_amount", "turnover"), required=True),
        F("orders", "integer", ("orders", "小票数", "单数", "receipts", "tickets", "order_count")),
    ), ("store_id", "day", "sales"), ("store_sales", "storesales", "tillsales", "门店销售", "营业额"),
        key=("store_id", "day"), upsert=True),
    _kind("campaign_assignments", "campaign_assignments", (
        F("campaign_id", aliases=_CAMPAIGN_ID, required=True),
        F("group", "group", ("group", "分组", "组别", "arm", "test_group"), required=True),
        F("contacted_at", "timestamp", ("contacted_at", "触达时间", "发送时间", "sent_at", "contact_time"),
          since=EARLIEST),
    ), ("@identity", "campaign_id", "group"), ("assignment", "分组", "实验"),
        key=("campaign_id", "member_id"), upsert=True, members="reference"),
    _kind("coupons", "coupons", (
        F("coupon_id", aliases=("coupon_id", "券号", "优惠券号", "coupon_code", "coupon_no"), required=True),
        F("campaign_id", aliases=_CAMPAIGN_ID),
        F("value", "number", ("value", "面额", "券面额", "coupon_value", "face_value")),
        F("issued_at", "timestamp", ("issued_at", "发放时间", "领取时间", "issue_time", "granted_at"),
          required=True, no_future=True, since=EARLIEST),
        F("redeemed_at", "timestamp", ("redeemed_at", "核销时间", "使用时间", "used_at", "redeem_time"),
          no_future=True, since=EARLIEST),
        F("order_id", aliases=("order_id", "核销订单号", "order_no", "订单号")),
    ), ("@identity", "coupon_id", "issued_at"), ("coupon", "券"), key=("coupon_id",), upsert=True,
        members="reference"),
    _kind("points", "points", (
        F("event_time", "timestamp", ("event_time", "积分时间", "发生时间", "变动时间", "time"), required=True,
          no_future=True, since=EARLIEST),
        F("points", "number", ("points", "积分", "积分变动", "point_change"), required=True),
        F("event_type", "event_type", ("event_type", "积分类型", "变动类型", "类型", "type")),
        F("order_id", aliases=_ORDER_ID),
    ), ("@identity", "event_time", "points"), ("point", "积分"),
        key=("member_id", "event_time", "points", "event_type", "order_id"), members="reference"),
)}

#: The order in which a file's header, then its name, is tried against the kinds: most specific first.
RECOGNITION_ORDER = ("campaign_assignments", "coupons", "points", "store_sales", "transactions", "campaigns",
                     "members", "stores", "products")

register({
    "kind.stores": ("门店", "Stores"), "kind.products": ("商品", "Products"), "kind.members": ("会员", "Members"),
    "kind.campaigns": ("营销活动", "Campaigns"), "kind.transactions": ("交易明细", "Transactions"),
    "kind.store_sales": ("门店营业额", "Store sales"), "kind.campaign_assignments": ("活动分组", "Campaign assignments"),
    "kind.coupons": ("优惠券", "Coupons"), "kind.points": ("积分", "Points"),
    "load.rows": ("行数", "Rows"), "load.accepted": ("已入库", "Accepted"), "load.rejected": ("已隔离", "Rejected"),
    "load.reason": ("隔离原因", "Reason"), "load.source_records": ("来源记录", "Source records"),
})

#: ``--kind transactions+members``: transactions whose unknown members are created from them.
DERIVE_KIND = "transactions+members"

#: Fields computed from others when a file lacks them and the user asks for it (``--derive-amount``):
#: field → (the fields whose product it is, the rule in words). A row without a valid input is quarantined
#: (``missing value: unit_price``, ``unparseable number: quantity``).
DERIVATIONS: dict[str, tuple[tuple[str, ...], str]] = {"amount": (("quantity", "unit_price"), "quantity × unit price")}

#: The stated fallback of a header, for transactions: a required field that no column is known as is read
#: from the one column whose name contains one of these words and which is no known name of another field
#: (注册时间 is a join date, 优惠金额 a discount). Two or more such columns are refused, naming them. Stated
#: in the load summary (``header_rules``).
FALLBACKS: dict[str, dict[str, tuple[str, ...]]] = {"transactions": {"order_time": ("时间", "日期"),
                                                                     "amount": ("金额",)}}

#: Names of an order's total: as the amount of order lines, every line of an order would carry the whole order.
ORDER_TOTALS = ("订单实付金额", "订单金额", "订单总金额", "订单应付金额", "order_total", "order_amount")

_PUNCT = re.compile(r"[\s_\-.()（）/]+")
#: A unit in brackets at the end of a header, 实付金额(元) or 数量（件）: not part of the name.
_UNIT = re.compile(r"[(（]\s*(元|¥|￥|rmb|cny|件|个)\s*[)）]\s*$", re.IGNORECASE)


def normalize_header(name: str) -> str:
    """``"Order No."`` → ``"orderno"``, ``"实付金额(元)"`` → ``"实付金额"``: headers and aliases are compared in this form."""
    return _PUNCT.sub("", _UNIT.sub("", str(name).replace("\ufeff", ""))).lower()


def all_field_names() -> set[str]:
    return {f.name for k in KINDS.values() for f in k.fields}


@cache
def _known_names() -> dict[str, set[str]]:
    """Normalized header → the fields (of any kind) known by it."""
    out: dict[str, set[str]] = {}
    for k in KINDS.values():
        for f in k.fields:
            for a in (f.name,) + f.aliases:
                out.setdefault(normalize_header(a), set()).add(f.name)
    return out


def known_as(f: Field, chinese: int = 6, english: int = 3) -> str:
    """How a field is known, for messages: its name, its first short Chinese names (up to four characters,
    then longer ones), then its other English ones."""
    return ", ".join([f.name, _aliases(f, chinese, english)])


def _aliases(f: Field, chinese: int, english: int) -> str:
    aliases = list(dict.fromkeys(a for a in f.aliases if a != f.name))
    zh = sorted((a for a in aliases if not a.isascii()), key=lambda a: len(a) > 4)
    en = [a for a in aliases if a.isascii()]
    more = len(zh) > chinese or len(en) > english
    return ", ".join(zh[:chinese] + en[:english]) + (", ..." if more else "")


def _member_id_known_as() -> str:
    """The identity columns, POS card first: ``card_no (会员卡号, 卡号, ...), user_id (...), ... or member_id``."""
    fields = sorted(IDENTITY_FIELDS, key=lambda f: ("card_no", "user_id", "open_id", "customer_id",
                                                    "member_id").index(f.name))
    shown = [f"{f.name} ({_aliases(f, 3, 1)})" for f in fields]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def looks_like_unit_price(header: str) -> bool:
    """True for a header such as ``UnitPrice``, ``单价`` or ``零售价``: the price of one item, not a line's total."""
    n = normalize_header(header)
    names = {normalize_header(a) for a in KINDS["transactions"].field("unit_price").aliases}
    return n in names or "单价" in n or "unitprice" in n


@dataclass(frozen=True)
class Mapping:
    """Which header feeds which field of a kind; ``columns[field] = header index``.

    ``derived`` are fields computed by :data:`DERIVATIONS`; ``candidates`` are, per required field that
    no column is known as, the columns the fallback (:data:`FALLBACKS`) could not choose between;
    ``rules`` state how a header was read other than by a known name, and ``warnings`` what may be wrong.
    """

    kind: Kind
    columns: dict[str, int]
    ignored: tuple[str, ...]
    derived: tuple[str, ...] = ()
    candidates: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    rules: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def identities(self) -> list[str]:
        return [f for f in IDENTITY_SOURCES if f in self.columns]

    def satisfied(self) -> bool:
        return self.first_missing() is None

    def first_missing(self) -> str | None:
        """The first required field the file lacks (``"a member id"`` for identity kinds)."""
        if self.kind.members and not self.identities:
            return "a member id"
        for f in self.kind.fields:
            if f.required and f.name not in self.columns and f.name not in self.derived:
                return f.name
        return None

    def matches_signature(self) -> bool:
        """True when the header carries every signature field (``a|b`` = either) of the kind."""
        present = set(self.columns) | set(self.derived)
        for sig in self.kind.signature:
            options = self.identities if sig == "@identity" else [s for s in sig.split("|") if s in present]
            if not options:
                return False
        return True

    def only_required(self) -> bool:
        """True when nothing beyond the required fields matched: a weak match."""
        extra = set(self.columns) - {f.name for f in self.kind.fields if f.required} - set(IDENTITY_SOURCES)
        return not extra


def map_columns(kind: Kind, headers: list[str], column_map: dict[str, str] | None = None, *,
                fallback: bool = False, derive_amount: bool = False) -> Mapping:
    """Match ``headers`` to the fields of ``kind``: the user's map first, then the aliases in order.

    With ``derive_amount``, a field of :data:`DERIVATIONS` that no column holds is computed from its
    inputs; with ``fallback``, the kind's :data:`FALLBACKS` name a required field that no column is known
    as (a derivation asked for comes first). Both are stated in the mapping's ``rules``.
    """
    column_map = column_map or {}
    columns: dict[str, int] = {}
    taken: set[int] = set()
    norm = [normalize_header(h) for h in headers]
    for src, dst in column_map.items():
        if dst not in kind.field_names:
            continue
        idx = _find_header(headers, norm, src)
        if idx is not None:
            columns[dst] = idx
            taken.add(idx)
    for f in kind.fields:
        if f.name in columns:
            continue
        for alias in (f.name,) + f.aliases:
            hits = [i for i, h in enumerate(norm) if h == normalize_header(alias) and i not in taken]
            if hits:
                columns[f.name] = hits[0]
                taken.add(hits[0])
                break
    rules: list[str] = []
    derived: list[str] = []
    for name, (inputs, how) in DERIVATIONS.items():
        if not derive_amount or name not in kind.field_names:
            continue
        if name in columns:
            rules.append(f"--derive-amount not applied: {name} is read from column {headers[columns[name]]!r}")
        elif all(i in columns for i in inputs):
            derived.append(name)
            rules.append(f"{name} derived as {how} (columns {' × '.join(repr(headers[columns[i]]) for i in inputs)}), "
                         f"as asked with --derive-amount"
                         + ("; the discount column is not subtracted" if "discount" in columns else ""))
    candidates: dict[str, tuple[str, ...]] = {}
    known = _known_names() if fallback else {}
    for name, words in FALLBACKS.get(kind.name, {}).items() if fallback else ():
        if name in columns or name in derived or (derive_amount and name in DERIVATIONS):
            continue
        hits = [i for i, h in enumerate(headers) if i not in taken and any(w in str(h) for w in words)
                and not known.get(norm[i], set()) - {name}]
        if len(hits) == 1:
            columns[name] = hits[0]
            taken.add(hits[0])
            rules.append(f"{name} read from column {headers[hits[0]]!r}: no column is known as {name}, and it is "
                         f"the only one whose name contains {' or '.join(words)}")
        elif hits:
            candidates[name] = tuple(str(headers[i]) for i in hits)
    ignored = tuple(h for i, h in enumerate(headers) if i not in taken)
    return Mapping(kind, columns, ignored, tuple(derived), candidates, tuple(rules),
                   _warnings(kind, headers, columns))


def _warnings(kind: Kind, headers: list[str], columns: dict[str, int]) -> tuple[str, ...]:
    """What may be wrong with a mapping: a unit price or an order's total read as the amount of a line."""
    if kind.name != "transactions" or "amount" not in columns:
        return ()
    header = str(headers[columns["amount"]])
    if looks_like_unit_price(header):
        return (f"amount is read from column {header!r}, which looks like a unit price: a line's spend would be "
                f"the price of one item; read the line's total as amount, or pass --derive-amount (quantity × "
                f"unit price) without mapping {header!r} to amount",)
    if normalize_header(header) in {normalize_header(a) for a in ORDER_TOTALS} and ("sku" in columns
                                                                                   or "line_no" in columns):
        return (f"amount is read from column {header!r}, an order's total, in a file of order lines: each line "
                f"of an order carries the whole order's amount; name the line's amount with --map HEADER=amount",)
    return ()


def _find_header(headers: list[str], norm: list[str], src: str) -> int | None:
    if src in headers:
        return headers.index(src)
    key = normalize_header(src)
    return norm.index(key) if key in norm else None


def kind_from_name(path: str | Path) -> Kind | None:
    """The kind a file's name suggests (``pos_members.csv`` → members), if any."""
    stem = normalize_header(Path(path).stem)
    for kind in (KINDS[k] for k in RECOGNITION_ORDER):
        if any(normalize_header(n) in stem for n in kind.names):
            return kind
    return None


def recognise(path: str, headers: list[str], column_map: dict[str, str] | None,
              kind: str | None = None, derive_amount: bool = False) -> Mapping:
    """The kind and column mapping of one file, given or recognised from its header and name.

    A file is recognised by the known names of its columns (:func:`map_columns`, with ``derive_amount``
    asked for), then by its name; last, a header of order lines (a member id, an order number, product or
    quantity, and a time found by the fallback) is read as transactions. The fallback of
    :data:`FALLBACKS` applies to transactions given by ``kind``, by the name, or by that last rule.

    Raises :class:`InputError` naming the file (and column) when the kind is
    unknown, a required column is missing (naming its Chinese and English names), the fallback finds
    several candidates, or the header says it is another kind.
    """
    if kind is not None:
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or {DERIVE_KIND}.", path=path)
        mapping = map_columns(KINDS[kind], headers, column_map, fallback=True, derive_amount=derive_amount)
        _require(path, headers, mapping, derive_amount)
        other = _by_header(headers, column_map)
        # an export of events (orders, coupons...) read as a dimension (members...) would overwrite
        # real records with per-event values, e.g. a member's phone with an order's receiver phone
        events_as_dimension = (other is not None and other.kind.name in _EVENT_KINDS
                               and kind in ("members", "stores", "products", "campaigns"))
        if other is not None and other.kind.name != kind and (mapping.only_required() or events_as_dimension):
            raise InputError(f"looks like a {other.kind.name} export, not {kind} (columns: {_show(headers)}); "
                             f"check --kind.", path=path)
        return mapping
    by_header = _by_header(headers, column_map, derive_amount)
    named = kind_from_name(path)
    txn = map_columns(KINDS["transactions"], headers, column_map, fallback=True, derive_amount=derive_amount)
    if by_header is not None and by_header.kind.name in ("products", "stores", "members"):
        # an order export without its amount carries a sku and a category, or a store id and a
        # name, too: when its name or its member id and order time say so, it is transactions;
        # one with a member's join date (注册时间) is a member export only without an order number
        dimension = by_header.kind.name != "members"
        by_name = dimension and named is not None and named.name == "transactions"
        if by_name or (txn.identities and "order_time" in txn.columns and (dimension or "order_id" in txn.columns)):
            _require(path, headers, txn, derive_amount)
            return txn
    if by_header is not None:
        return by_header
    if named is not None:
        mapping = txn if named.name == "transactions" else map_columns(named, headers, column_map)
        _require(path, headers, mapping, derive_amount)
        return mapping
    if txn.identities and {"order_id", "sku", "quantity"} & set(txn.columns) and (
            "order_time" in txn.columns or "order_time" in txn.candidates):
        _require(path, headers, txn, derive_amount)
        return txn
    raise InputError(f"cannot tell what kind of export this is from its name or its columns ({_show(headers)}); "
                     f"pass --kind, or --map to name the columns.", path=path)


_EVENT_KINDS = ("transactions", "coupons", "points", "campaign_assignments", "store_sales")


def _require(path: str, headers: list[str], mapping: Mapping, derive_amount: bool) -> None:
    """Raise :class:`InputError`, one sentence naming the column, when ``mapping`` lacks a required field:
    the fallback's candidates, the inputs of a derivation, or the names the field is known by."""
    missing = mapping.first_missing()
    if missing is None:
        return
    kind, cols = mapping.kind.name, _show(headers)
    if missing in mapping.candidates:
        shown = ", ".join(map(repr, mapping.candidates[missing]))
        raise InputError(f"no column of this {kind} export is known as {missing}, and "
                         f"{len(mapping.candidates[missing])} could be it by their name ({shown}); name the right "
                         f"one with --map HEADER={missing}.", path=path, column=missing)
    if missing in DERIVATIONS:
        inputs, how = DERIVATIONS[missing]
        lacking = [i for i in inputs if i not in mapping.columns]
        if derive_amount:
            f = mapping.kind.field(lacking[0])
            raise InputError(f"cannot derive {missing} as {how} (--derive-amount): no column is {f.name} (known "
                             f"as {known_as(f)}); the file's columns are {cols}.", path=path, column=f.name)
        if not lacking:
            have = " and ".join(f"{i} ({headers[mapping.columns[i]]!r})" for i in inputs)
            raise InputError(f"missing required column for a {kind} export: no {missing}, but {have}; pass "
                             f"--derive-amount to compute {missing} as {how}, or --map HEADER={missing}.",
                             path=path, column=missing)
    if missing == "a member id":
        names, target = _member_id_known_as(), "card_no"
    else:
        names, target = known_as(mapping.kind.field(missing)), missing
    raise InputError(f"missing required column for a {kind} export: {missing} (known as {names}); the file's "
                     f"columns are {cols}; name it with --map HEADER={target}.", path=path, column=missing)


def _by_header(headers: list[str], column_map: dict[str, str] | None, derive_amount: bool = False) -> Mapping | None:
    for k in RECOGNITION_ORDER:
        mapping = map_columns(KINDS[k], headers, column_map, derive_amount=derive_amount)
        if mapping.matches_signature() and mapping.satisfied():
            return mapping
    return None


def _show(headers: list[str], limit: int = 8) -> str:
    shown = ", ".join(str(h) for h in headers[:limit])
    return shown + (", ..." if len(headers) > limit else "")
