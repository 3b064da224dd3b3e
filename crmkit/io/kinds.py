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
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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
    (orders, joining, coupons...), none for a birth date.
    """

    name: str
    parse: str = "text"
    aliases: tuple[str, ...] = ()
    required: bool = False
    no_future: bool = False
    since: str | None = None


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
    Field("user_id", "id", aliases=("user_id", "uid", "用户id", "用户编号", "buyer_id", "买家id", "mall_user_id")),
    Field("card_no", "id", aliases=("card_no", "会员卡号", "卡号", "card_number", "member_card", "vip卡号",
                              "绑定卡号", "bind_card_no", "bound_card_no", "pos_card_no", "社保卡号")),
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

_STORE_ID = ("store_id", "门店编号", "门店代码", "门店id", "store_code", "shop_id")
_SKU = ("sku", "商品编码", "商品编号", "货号", "sku_id", "sku_code", "item_id", "product_id", "goods_id", "stock_code")
_CATEGORY = ("category", "品类", "类目", "商品类别", "商品分类", "category_name", "cate_name")
_ORDER_ID = ("order_id", "小票号", "订单号", "单号", "流水号", "order_no", "receipt_no", "ticket_no",
             "trade_no", "transaction_id", "invoice_no")
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
        F("name", aliases=("name", "姓名", "会员姓名", "member_name", "real_name", "nickname", "昵称")),
        F("gender", "gender", ("gender", "性别", "sex")),
        F("birth_date", "date", ("birth_date", "出生日期", "生日", "birthday", "birthdate", "dob"), no_future=True),
        F("join_date", "date", ("join_date", "入会日期", "入会时间", "注册时间", "注册日期", "开卡日期", "register_time",
                                "register_date", "registered_at", "signup_time", "reg_time", "created_at"),
          no_future=True, since=EARLIEST),
        F("join_store_id", aliases=("join_store_id", "入会门店", "开卡门店", "注册门店", "join_store",
                                    "register_store")),
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
        F("order_time", "timestamp", ("order_time", "交易时间", "销售时间", "支付时间", "下单时间", "付款时间", "交易日期",
                                      "pay_time", "paid_at", "order_date", "txn_time", "transaction_time",
                                      "sale_time", "invoice_date"),
          required=True, no_future=True, since=EARLIEST),
        F("store_id", aliases=_STORE_ID),
        F("channel", "channel", ("channel", "渠道", "来源渠道")),
        F("sku", aliases=_SKU),
        F("category", aliases=_CATEGORY),
        F("quantity", "number", ("quantity", "数量", "件数", "qty", "num", "销售数量")),
        F("amount", "number", ("amount", "金额", "实付金额", "实收金额", "成交金额", "销售金额", "消费金额", "pay_amount",
                               "paid_amount", "net_amount", "sales_amount", "payment"), required=True),
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

_PUNCT = re.compile(r"[\s_\-.()（）/]+")


def normalize_header(name: str) -> str:
    """``"Order No."`` → ``"orderno"``: headers and aliases are compared in this form."""
    return _PUNCT.sub("", str(name).replace("\ufeff", "")).lower()


def all_field_names() -> set[str]:
    return {f.name for k in KINDS.values() for f in k.fields}


@dataclass(frozen=True)
class Mapping:
    """Which header feeds which field of a kind; ``columns[field] = header index``."""

    kind: Kind
    columns: dict[str, int]
    ignored: tuple[str, ...]

    @property
    def identities(self) -> list[str]:
        return [f for f in IDENTITY_SOURCES if f in self.columns]

    def satisfied(self) -> bool:
        return self.first_missing() is None

    def first_missing(self) -> str | None:
        """The first required field the file lacks (``"a member id"`` for identity kinds)."""
        if self.kind.members and not self.identities:
            return "a member id (card_no, user_id, open_id, customer_id or member_id)"
        for f in self.kind.fields:
            if f.required and f.name not in self.columns:
                return f.name
        return None

    def matches_signature(self) -> bool:
        """True when the header carries every signature field (``a|b`` = either) of the kind."""
        for sig in self.kind.signature:
            options = self.identities if sig == "@identity" else [s for s in sig.split("|") if s in self.columns]
            if not options:
                return False
        return True

    def only_required(self) -> bool:
        """True when nothing beyond the required fields matched: a weak match."""
        extra = set(self.columns) - {f.name for f in self.kind.fields if f.required} - set(IDENTITY_SOURCES)
        return not extra


def map_columns(kind: Kind, headers: list[str], column_map: dict[str, str] | None = None) -> Mapping:
    """Match ``headers`` to the fields of ``kind``: the user's map first, then the aliases in order."""
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
    ignored = tuple(h for i, h in enumerate(headers) if i not in taken)
    return Mapping(kind, columns, ignored)


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
              kind: str | None = None) -> Mapping:
    """The kind and column mapping of one file, given or recognised from its header and name.

    Raises :class:`InputError` naming the file (and column) when the kind is
    unknown, a required column is missing, or the header says it is another kind.
    """
    if kind is not None:
        if kind not in KINDS:
            raise InputError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} or {DERIVE_KIND}.", path=path)
        mapping = map_columns(KINDS[kind], headers, column_map)
        missing = mapping.first_missing()
        if missing:
            raise InputError(f"missing required column for a {kind} export (columns: {_show(headers)}).",
                             path=path, column=missing)
        other = _by_header(headers, column_map)
        # an export of events (orders, coupons...) read as a dimension (members...) would overwrite
        # real records with per-event values, e.g. a member's phone with an order's receiver phone
        events_as_dimension = (other is not None and other.kind.name in _EVENT_KINDS
                               and kind in ("members", "stores", "products", "campaigns"))
        if other is not None and other.kind.name != kind and (mapping.only_required() or events_as_dimension):
            raise InputError(f"looks like a {other.kind.name} export, not {kind} (columns: {_show(headers)}); "
                             f"check --kind.", path=path)
        return mapping
    by_header = _by_header(headers, column_map)
    named = kind_from_name(path)
    if by_header is not None and by_header.kind.name in ("products", "stores"):
        # an order export without its amount carries a sku and a category, or a store id and a
        # name, too: when its name or its member id and order time say so, it is transactions
        txn = map_columns(KINDS["transactions"], headers, column_map)
        if (named is not None and named.name == "transactions") or (txn.identities and "order_time" in txn.columns):
            raise InputError(f"missing required column for a transactions export (columns: {_show(headers)}).",
                             path=path, column=txn.first_missing())
    if by_header is not None:
        return by_header
    if named is not None:
        mapping = map_columns(named, headers, column_map)
        missing = mapping.first_missing()
        if missing:
            raise InputError(f"missing required column for a {named.name} export (columns: {_show(headers)}).",
                             path=path, column=missing)
        return mapping
    raise InputError(f"cannot tell what kind of export this is from its name or its columns ({_show(headers)}); "
                     f"pass --kind, or --map to name the columns.", path=path)


_EVENT_KINDS = ("transactions", "coupons", "points", "campaign_assignments", "store_sales")


def _by_header(headers: list[str], column_map: dict[str, str] | None) -> Mapping | None:
    for k in RECOGNITION_ORDER:
        mapping = map_columns(KINDS[k], headers, column_map)
        if mapping.matches_signature() and mapping.satisfied():
            return mapping
    return None


def _show(headers: list[str], limit: int = 8) -> str:
    shown = ", ".join(str(h) for h in headers[:limit])
    return shown + (", ..." if len(headers) > limit else "")
