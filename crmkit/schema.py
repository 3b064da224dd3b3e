"""Canonical tables of the member store: the single source of truth.

Every table crmkit keeps is declared here once: its columns, their DuckDB
types, which are required, and their units. Readers map channel exports onto
these columns, the store creates its tables from them, and every analysis
reads them by these names.

Conventions
-----------
- Money is in the store's currency (``settings`` key ``currency``, CNY ``¥`` by
  default; see :mod:`crmkit.currency`), as DOUBLE. Units below say ``money``.
  ``amount`` is the net amount paid for the line after discounts; ``discount``
  is the discount given.
- Returns and refunds are explicit rows with ``txn_type = 'return'`` and a
  negative ``amount`` (and negative ``quantity``). They are never dropped.
- Times are local shop time, stored as TIMESTAMP without zone. Dates are DATE.
- ``channel`` is one of ``pos``, ``online`` and ``miniapp``.
- The column ``group`` of ``campaign_assignments`` is an SQL keyword: quote
  it (``"group"``) in SQL.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CHANNELS = ("pos", "online", "miniapp")
TXN_TYPES = ("sale", "return")
GROUPS = ("treatment", "control")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB SQL type
    required: bool = False
    unit: str = ""
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    doc: str = ""
    pii: tuple[str, ...] = field(default=())

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")

    def create_sql(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}\n)'


C = Column

MEMBERS = Table(
    "members",
    (
        C("member_id", "VARCHAR", True, doc="crmkit's unified member id"),
        C("phone", "VARCHAR", doc="normalized 11-digit mainland mobile (PII)"),
        C("name", "VARCHAR", doc="PII"),
        C("gender", "VARCHAR", doc="F | M | NULL"),
        C("birth_date", "DATE"),
        C("join_date", "DATE", doc="earliest registration over all channels"),
        C("join_store_id", "VARCHAR"),
        C("join_channel", "VARCHAR", doc="pos | online | miniapp"),
    ),
    key=("member_id",),
    doc="One row per resolved person: the unified member view.",
    pii=("phone", "name"),
)

MEMBER_IDENTITIES = Table(
    "member_identities",
    (
        C("source", "VARCHAR", True, doc="pos | online | miniapp | <other source name>"),
        C("source_id", "VARCHAR", True, doc="card number, user id or open id (PII for open ids)"),
        C("member_id", "VARCHAR", True),
        C("phone", "VARCHAR", doc="normalized phone seen on that source record (PII)"),
        C("source_file", "VARCHAR"),
    ),
    key=("source", "source_id"),
    doc="Identity map: every source record and the member it resolved to.",
    pii=("source_id", "phone"),
)

STORES = Table(
    "stores",
    (
        C("store_id", "VARCHAR", True),
        C("name", "VARCHAR"),
        C("city", "VARCHAR"),
        C("region", "VARCHAR"),
    ),
    key=("store_id",),
)

PRODUCTS = Table(
    "products",
    (C("sku", "VARCHAR", True), C("category", "VARCHAR")),
    key=("sku",),
)

TRANSACTIONS = Table(
    "transactions",
    (
        C("member_id", "VARCHAR", True),
        C("order_id", "VARCHAR", True),
        C("line_no", "INTEGER", doc="line within the order, 1-based"),
        C("order_time", "TIMESTAMP", True),
        C("store_id", "VARCHAR"),
        C("channel", "VARCHAR", doc="pos | online | miniapp"),
        C("sku", "VARCHAR"),
        C("category", "VARCHAR"),
        C("quantity", "DOUBLE", unit="items; negative on returns"),
        C("amount", "DOUBLE", True, unit="money, net paid; negative on returns"),
        C("discount", "DOUBLE", unit="money"),
        C("coupon_id", "VARCHAR"),
        C("txn_type", "VARCHAR", doc="sale | return"),
        C("source_file", "VARCHAR"),
        C("ref_order_id", "VARCHAR", doc="on a credit-note line (a return under its own number): the order it "
                                         "reverses, linked by crmkit.io.credit_notes; NULL otherwise"),
    ),
    key=("order_id", "line_no", "txn_type"),
    doc="One row per order line. Returns and refunds are explicit rows.",
)

CAMPAIGNS = Table(
    "campaigns",
    (
        C("campaign_id", "VARCHAR", True),
        C("name", "VARCHAR"),
        C("start", "DATE", True),
        C("end", "DATE", True),
        C("channel", "VARCHAR", doc="sms | app_push | wechat | ..."),
        C("cost_per_contact", "DOUBLE", unit="money per contacted member"),
        C("fixed_cost", "DOUBLE", unit="money"),
        C("coupon_value", "DOUBLE", unit="money per redeemed coupon"),
        C("margin_rate", "DOUBLE", unit="gross margin as a share of net sales, 0..1"),
        C("attribution_days", "INTEGER", unit="days after start counted as the campaign's effect"),
    ),
    key=("campaign_id",),
)

CAMPAIGN_ASSIGNMENTS = Table(
    "campaign_assignments",
    (
        C("campaign_id", "VARCHAR", True),
        C("member_id", "VARCHAR", True),
        C("group", "VARCHAR", True, doc="treatment | control"),
        C("contacted_at", "TIMESTAMP", doc="NULL when not (yet) contacted"),
    ),
    key=("campaign_id", "member_id"),
)

COUPONS = Table(
    "coupons",
    (
        C("coupon_id", "VARCHAR", True),
        C("member_id", "VARCHAR", True),
        C("campaign_id", "VARCHAR"),
        C("value", "DOUBLE", unit="money"),
        C("issued_at", "TIMESTAMP", True),
        C("redeemed_at", "TIMESTAMP", doc="NULL when not redeemed"),
        C("order_id", "VARCHAR", doc="order that redeemed it"),
    ),
    key=("coupon_id",),
)

POINTS = Table(
    "points",
    (
        C("member_id", "VARCHAR", True),
        C("event_time", "TIMESTAMP", True),
        C("points", "DOUBLE", True, unit="points; positive earned, negative redeemed"),
        C("event_type", "VARCHAR", doc="earn | redeem | expire | adjust"),
        C("order_id", "VARCHAR"),
    ),
)

STORE_SALES = Table(
    "store_sales",
    (
        C("store_id", "VARCHAR", True),
        C("day", "DATE", True),
        C("sales", "DOUBLE", True, unit="money, net of returns, members and non-members"),
        C("orders", "BIGINT", doc="till receipts, members and non-members"),
    ),
    key=("store_id", "day"),
    doc="Daily till totals per store over all customers: the denominator of the member share of sales.",
)

QUARANTINE = Table(
    "quarantine",
    (
        C("source_file", "VARCHAR", True),
        C("row_number", "BIGINT", True, doc="1-based data row in the file (header not counted)"),
        C("reason", "VARCHAR", True),
        C("raw", "VARCHAR", doc="the row as read, JSON"),
        C("kind", "VARCHAR"),
        C("loaded_at", "TIMESTAMP"),
    ),
    doc="Every rejected input row with its reason. Rows in = accepted + rejected.",
)

LOADS = Table(
    "loads",
    (
        C("file_sha256", "VARCHAR", True),
        C("path", "VARCHAR", True),
        C("kind", "VARCHAR", True),
        C("rows", "BIGINT"),
        C("accepted", "BIGINT"),
        C("rejected", "BIGINT"),
        C("loaded_at", "TIMESTAMP"),
    ),
    key=("file_sha256", "kind"),
    doc="One row per loaded file; loading the same content again adds nothing.",
)

SETTINGS = Table(
    "settings",
    (
        C("key", "VARCHAR", True),
        C("value", "VARCHAR"),
    ),
    key=("key",),
    doc="Settings of the store, one row per key: ``currency`` (ISO code, set by the first load).",
)

MEMBER_SCORES = Table(
    "member_scores",
    (
        C("member_id", "VARCHAR", True),
        C("as_of", "DATE", True),
        C("frequency", "DOUBLE"),
        C("recency", "DOUBLE"),
        C("T", "DOUBLE"),
        C("monetary", "DOUBLE", unit="money per repeat order"),
        C("p_alive", "DOUBLE"),
        C("expected_purchases", "DOUBLE"),
        C("expected_spend", "DOUBLE", unit="money per order"),
        C("clv", "DOUBLE", unit="money, discounted gross margin over the horizon"),
        C("clv_low", "DOUBLE"),
        C("clv_high", "DOUBLE"),
        C("churn_risk", "DOUBLE"),
        C("churn_band", "VARCHAR"),
        C("rfm_r", "INTEGER"),
        C("rfm_f", "INTEGER"),
        C("rfm_m", "INTEGER"),
        C("rfm_segment", "VARCHAR"),
        C("lifecycle_stage", "VARCHAR"),
        C("tier", "VARCHAR"),
    ),
    key=("member_id", "as_of"),
    doc="Per-member scores written back by `crmkit score` (and by an audience on scores that found none, "
        ":mod:`crmkit.engine.snapshots`); the rows of one as_of date are one run of ``score_runs``.",
)

SCORE_RUNS = Table(
    "score_runs",
    (
        C("run_id", "BIGINT", True, doc="1, 2, ... in the order runs were recorded"),
        C("created_at", "TIMESTAMP", True, doc="when the run was recorded, UTC"),
        C("as_of", "DATE", True, doc="the score date; its member_scores rows are this run's"),
        C("model", "VARCHAR", True, doc="transaction model: bgnbd | pareto | mbgnbd"),
        C("parameters", "VARCHAR", True, doc="JSON: model, period, horizon_days, discount_rate, margin, "
                                             "churn_days, interval, thresholds"),
        C("settings_fingerprint", "VARCHAR", True, doc="sha256 of the parameters and of crmkit's code, tier "
                                                       "rules included: what determines the scores besides data"),
        C("data_fingerprint", "VARCHAR", True, doc="sha256 of the loaded files, the members and the "
                                                   "transactions (count, span, sums): the data scored"),
        C("crmkit_version", "VARCHAR", True),
        C("members", "BIGINT", True, doc="member_scores rows of the run"),
        C("result", "BLOB", doc="the fitted models, total CLV and churn check of the run (pickled "
                                "crmkit.scoring.Scores without its table), so a report shows them without refitting"),
    ),
    key=("run_id",),
    doc="One row per score snapshot: what was scored, when, with what and from what. "
        "At most one run per as_of date (a new run of a date replaces the old one and its member_scores rows).",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        MEMBERS,
        MEMBER_IDENTITIES,
        STORES,
        PRODUCTS,
        TRANSACTIONS,
        STORE_SALES,
        CAMPAIGNS,
        CAMPAIGN_ASSIGNMENTS,
        COUPONS,
        POINTS,
        QUARANTINE,
        LOADS,
        MEMBER_SCORES,
        SCORE_RUNS,
        SETTINGS,
    )
}

#: Columns that hold personal data, by table. privacy.py masks these on every output path.
PII_COLUMNS: dict[str, tuple[str, ...]] = {t.name: t.pii for t in TABLES.values() if t.pii}
