"""Campaign ROI: did the campaign pay? Incremental lift against a randomized control group.

Definitions (used by every function here, and by the demo generator's truth)
---------------------------------------------------------------------------
- **Design.** Members of a campaign are assigned to ``treatment`` or
  ``control`` in ``campaign_assignments``. Analysis is *intention-to-treat*:
  every assigned member counts in their group, contacted or not, bought or not.
- **Attribution window.** ``[start, start + attribution_days)`` in days, from
  00:00 on the start date; when ``attribution_days`` is empty,
  ``[start, end]`` with the whole end day included.
- **Outcomes per assigned member.** An order belongs to the window when its
  first line's ``order_time`` is in the window. ``orders`` counts the window's
  orders with at least one sale line; a member *converted* (purchased) when
  ``orders > 0``; ``revenue`` is the net amount of the window's orders in the store's currency,
  all their lines summed, so a return counts against the order it belongs to
  (same ``order_id``), even when made after the window closes. Gross margin per
  member is ``revenue × margin_rate``. Members who did not buy count as zeros.
- **Estimands.** Lifts are sample differences treatment − control of the
  per-member means, i.e. the average effect of assignment over the assigned
  members; relative lifts are treatment / control − 1.
- **Totals.** Incremental orders, revenue and margin are the per-member lift
  × the number of treatment members.
- **Cost** (money) = ``cost_per_contact`` × contacted treatment members
  (``contacted_at`` set) + ``fixed_cost`` + the value of the campaign's redeemed
  coupons (the coupon's own ``value``, else the campaign's ``coupon_value``),
  wherever they were redeemed. Empty cost fields count as 0.
- **ROI** = (incremental gross margin − cost) / cost. Its interval is the
  margin lift interval mapped through this formula (cost is known); its
  p-value is one-sided, for H0: ROI ≤ 0 (the campaign does not pay).
- **Verdict.** ``pays`` when the lower bound of the interval of incremental
  margin − cost is above 0, ``does not pay`` when its upper bound is below 0,
  else ``cannot tell yet`` with the detectable effect at the current sizes.
  A control group smaller than :data:`MIN_CONTROL` members is too small to
  conclude: the numbers are shown, with a warning, and the verdict is
  ``cannot tell yet``. Without a control group (or with fewer than two
  members in a group) there is no incrementality, no ROI and no verdict.
- **All-zero amounts.** When every amount of the window's orders is zero, or
  every amount in the store is (an export without the amounts paid), revenue,
  margin and ROI would read as a certain zero and the verdict as "does not
  pay" (ROI −100% [−100%, −100%]): they are not given, and ``roi_reason`` says
  why; the conversion and order lifts stand.

Intervals are 95% by default: Wilson / Newcombe for rates, Welch (or a
percentile bootstrap) for orders, revenue and margin per member; see
:mod:`crmkit.stats`. Member attributes (tier, RFM segment, home store, region,
channel, lifecycle stage, CLV band) are those of :mod:`crmkit.audience`, taken
as of the day before the campaign starts.
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold

from . import viz
from .audience import attributes_query
from .checks import zero_amounts
from .errors import CrmkitError, ModelError
from .i18n import register, t
from .lifecycle import Query, as_date
from .schema import GROUPS
from .segments import segment_label
from .stats import (Interval, Lift, bootstrap_means, bootstrap_p_value, mde_means, mde_proportions,
                    mean_lift, percentile_interval, proportion_lift, sample_size_proportions, welch_test,
                    wilson_interval)
from .engine.store import Connection, transaction
from .text import text_table
from .tiers import tier_label

#: A control group with fewer members is too small to conclude ("cannot tell yet").
MIN_CONTROL = 100
#: Within one level of a breakdown (a tier, a store), fewer members than this in either group
#: gives no lift: an interval from a handful of members would be read as an effect.
MIN_LEVEL = 30
#: Fewer purchasers than this in a group makes revenue intervals approximate (a warning).
MIN_BUYERS = 10
PAYS, DOES_NOT_PAY, CANNOT_TELL = "pays", "does not pay", "cannot tell yet"
METHODS = ("welch", "bootstrap")
METRICS = ("conversion", "orders_per_member", "revenue_per_member", "margin_per_member")
#: Member attributes available for strata, heterogeneous effects and funnels.
ATTRIBUTES = ("tier", "segment", "store", "region", "channel", "lifecycle_stage", "clv_band")
#: The categorical attributes used (one-hot) as uplift features; ``store`` has too many levels.
_UPLIFT_CATEGORIES = tuple(a for a in ATTRIBUTES if a != "store")
UNKNOWN = "(unknown)"
_COUNTS = ("n", "contacted", "buyers")

register({
    "campaign.title": ("活动 {id}（{name}）", "Campaign {id} ({name})"),
    "campaign.window": ("归因窗口 {start} 至 {end}（{days} 天）",
                        "attribution window {start} to {end} ({days} days)"),
    "campaign.design": ("与随机留出的对照组比较；活动组每位会员都计入，无论是否触达；{level}% 置信区间（{method}）",
                        "compared with a randomly held-out control group; every member assigned to the "
                        "campaign counts, contacted or not; {level}% intervals ({method})"),
    "campaign.method.welch": ("Welch t 检验", "Welch t-test"),
    "campaign.method.bootstrap": ("自助法重抽样", "bootstrap resampling"),
    "campaign.members": ("会员：活动组 {n_t:,} 人（已触达 {n_contacted:,} 人），对照组 {n_c:,} 人",
                         "Members: treatment {n_t:,} ({n_contacted:,} contacted), control {n_c:,}"),
    "campaign.treatment": ("活动组", "Treatment"),
    "campaign.control": ("对照组", "Control"),
    "campaign.lift": ("提升", "Lift"),
    "campaign.lift_rel": ("相对提升", "Relative lift"),
    "campaign.conversion": ("购买转化率", "Conversion"),
    "campaign.orders_per_member": ("人均订单数", "Orders / member"),
    "campaign.revenue_per_member": ("人均净销售额", "Revenue / member"),
    "campaign.margin_per_member": ("人均毛利", "Gross margin / member"),
    "campaign.incremental_orders": ("增量订单", "Incremental orders"),
    "campaign.incremental_revenue": ("增量销售额", "Incremental revenue"),
    "campaign.incremental_margin": ("增量毛利", "Incremental gross margin"),
    "campaign.cost": ("成本 {total} = 触达 {contact} + 固定 {fixed} + 优惠券 {coupons}（核销 {redeemed:,} 张）",
                      "Cost {total} = contacts {contact} + fixed {fixed} + coupons {coupons} "
                      "({redeemed:,} redeemed)"),
    "campaign.roi": ("活动ROI {roi} {ci}；单侧 p = {p}（原假设：不回本）",
                     "ROI {roi} {ci}; one-sided p = {p} (H0: does not pay)"),
    "campaign.verdict": ("结论", "Verdict"),
    "campaign.warnings": ("提示", "Warnings"),
    "campaign.descriptive": ("仅描述性数字（无增量结论）", "Descriptive numbers only (no incrementality)"),
    f"campaign.{PAYS}": ("回本", "pays"),
    f"campaign.{DOES_NOT_PAY}": ("不回本", "does not pay"),
    f"campaign.{CANNOT_TELL}": ("尚无法判断", "cannot tell yet"),
    f"campaign.text.{PAYS}": (
        "回本：增量毛利 {margin}（区间 {margin_ci}）高于成本 {cost}。",
        "The campaign paid: its incremental gross margin of {margin} ({margin_ci}) exceeds its cost of {cost}."),
    f"campaign.text.{DOES_NOT_PAY}": (
        "不回本：增量毛利 {margin}（区间 {margin_ci}）低于成本 {cost}。",
        "The campaign did not pay: its incremental gross margin of {margin} ({margin_ci}) is below "
        "its cost of {cost}."),
    "campaign.text.small_control": (
        "尚无法判断：对照组只有 {n_c:,} 人，至少需要 {min_control:,} 人才能下结论。",
        "Cannot tell yet: the control group of {n_c:,} members is too small to conclude; "
        "at least {min_control:,} are needed."),
    f"campaign.text.{CANNOT_TELL}": (
        "尚无法判断：增量毛利减成本的区间 {net_ci} 包含盈亏平衡点。以当前组规模，人均毛利提升至少 {mde} "
        "才能被检出（80% 把握），而回本需要人均 {breakeven}。",
        "Cannot tell yet: the interval of incremental margin minus cost, {net_ci}, includes break-even. "
        "At these group sizes only a margin lift of {mde} per member is detectable (80% power); "
        "paying back needs {breakeven} per member."),
    "campaign.reason.no_members": ("活动 {id} 没有分配任何会员，无法衡量。",
                                   "Campaign {id} has no assigned members, so there is nothing to measure."),
    "campaign.reason.no_control": (
        "活动 {id} 没有对照组，无法衡量增量效果，也不给出ROI；以下仅为描述性数字。",
        "Campaign {id} has no control group, so its incremental effect and ROI cannot be measured; "
        "the numbers shown are descriptive only."),
    "campaign.reason.too_few": (
        "活动 {id} 的活动组 {n_t} 人、对照组 {n_c} 人，每组至少需要 2 人才能估计增量效果。",
        "Campaign {id} has {n_t} treatment and {n_c} control members; each group needs at least 2 "
        "to estimate an incremental effect."),
    "campaign.reason.zero_amounts_window": (
        "归因窗口内 {n_lines:,} 行订单的金额均为零：无法衡量销售额、毛利与 ROI，只有转化率与订单数的提升可用。",
        "Every amount of the {n_lines:,} order line{s} in the attribution window is zero, so revenue, gross "
        "margin and ROI cannot be measured; only the conversion and order lifts stand."),
    "campaign.reason.zero_amounts": (
        "库中全部 {n_lines:,} 行交易的金额均为零：无法衡量销售额、毛利与 ROI，只有转化率与订单数的提升可用。",
        "Every amount in the store is zero ({n_lines:,} line{s}), so revenue, gross margin and ROI cannot be "
        "measured; only the conversion and order lifts stand."),
    "campaign.warn.small_control": (
        "对照组只有 {n_c:,} 人，少于 {min_control:,} 人，样本太小无法下结论，结论为“尚无法判断”。",
        "The control group has {n_c:,} members, fewer than {min_control:,}: too small to conclude, "
        "so the verdict is 'cannot tell yet'."),
    "campaign.warn.few_buyers": (
        "归因窗口内对照组仅 {buyers_c:,} 人、活动组仅 {buyers_t:,} 人购买：销售额区间基于很少的购买，仅供参考。",
        "Only {buyers_c:,} control and {buyers_t:,} treatment members bought in the window: the revenue "
        "intervals rest on few purchases and are approximate."),
    "campaign.warn.no_purchases": (
        "归因窗口内两组均无人购买：增量销售额为零。",
        "Nobody in either group bought in the attribution window: the incremental revenue is zero."),
    "campaign.warn.no_contacts": (
        "没有活动组会员记录了触达时间（contacted_at），触达成本按 0 计。",
        "No treatment member is recorded as contacted (contacted_at is empty), so contact cost counts as zero."),
    "campaign.warn.no_margin_rate": (
        "活动未设置毛利率（margin_rate），无法计算毛利与ROI。",
        "The campaign has no margin_rate, so gross margin and ROI cannot be computed."),
    "campaign.warn.no_cost": (
        "活动没有记录成本，ROI无意义；结论比较增量毛利与零。",
        "The campaign has no recorded cost, so ROI is undefined; the verdict compares incremental margin "
        "with zero."),
    "campaign.funnel": ("漏斗", "Funnel"),
    "campaign.targeted": ("目标会员", "Targeted"),
    "campaign.contacted": ("已触达", "Contacted"),
    "campaign.redeemed": ("已核销优惠券", "Redeemed a coupon"),
    "campaign.purchased": ("已购买（用券或未用券）", "Purchased (with or without a coupon)"),
    "campaign.redemption_rate": ("券使用率", "Coupon redemption rate"),
    "campaign.members_count": ("会员数（人）", "Members (count)"),
    "campaign.funnel_title": ("活动漏斗：{id}", "Campaign funnel: {id}"),
    "campaign.lift_title": ("{metric}提升（按{by}）", "{metric} lift by {by}"),
    "campaign.adjusted": ("Bonferroni 校正区间", "Bonferroni-adjusted interval"),
    "campaign.interval": ("{level}% 置信区间", "{level}% interval"),
    "campaign.too_small_levels": ("样本过少（任一组不足 {n} 人）未比较：{levels}（实验组 / 对照组）。",
                                  "Too few members to compare (under {n} in a group): {levels} "
                                  "(treatment / control)."),
    "campaign.caution": (
        "同时比较 {k} 组：仅凭偶然，每 20 个 95% 区间约有 1 个不含真值；只有校正区间也不含 0 的差异才可信。",
        "{k} groups compared: by chance alone about 1 in 20 of the 95% intervals misses; trust a "
        "difference only when its Bonferroni-adjusted interval also excludes 0."),
})


# ----------------------------------------------------------------------------- queries

_CAMPAIGN_CTES = {
    "cmp_campaign": """
  SELECT campaign_id, name, "start", "end", attribution_days, margin_rate,
         coalesce(cost_per_contact, 0) AS cost_per_contact, coalesce(fixed_cost, 0) AS fixed_cost,
         coalesce(coupon_value, 0) AS coupon_value,
         CAST("start" AS TIMESTAMP) AS window_start,
         CASE WHEN attribution_days IS NULL THEN CAST("end" AS TIMESTAMP) + INTERVAL 1 DAY
              ELSE CAST("start" AS TIMESTAMP) + to_days(CAST(attribution_days AS INTEGER)) END AS window_end
  FROM campaigns WHERE campaign_id = $campaign_id""",
    "cmp_assigned": """
  SELECT member_id, "group", contacted_at IS NOT NULL AS contacted
  FROM campaign_assignments WHERE campaign_id = $campaign_id""",
    # the window's orders of assigned members: an order belongs where its first line is
    "cmp_orders": """
  SELECT t.member_id, t.order_id, sum(t.amount) AS net,
         bool_or(coalesce(t.txn_type, 'sale') <> 'return') AS is_purchase
  FROM transactions t SEMI JOIN cmp_assigned a ON a.member_id = t.member_id
  GROUP BY t.member_id, t.order_id
  HAVING min(t.order_time) >= (SELECT window_start FROM cmp_campaign)
     AND min(t.order_time) < (SELECT window_end FROM cmp_campaign)""",
    "cmp_outcomes": """
  SELECT a.member_id, a."group", a.contacted, coalesce(o.orders, 0) AS orders,
         coalesce(o.revenue, 0.0) AS revenue
  FROM cmp_assigned a LEFT JOIN (
    SELECT member_id, count(*) FILTER (WHERE is_purchase) AS orders, sum(net) AS revenue
    FROM cmp_orders GROUP BY member_id) o USING (member_id)""",
    "cmp_member_coupons": """
  SELECT member_id, count(*) AS issued, count(redeemed_at) AS redeemed
  FROM coupons WHERE campaign_id = $campaign_id GROUP BY member_id""",
}


def campaign_query(campaign_id: str) -> Query:
    """CTEs of one campaign: ``cmp_campaign`` (its row and window), ``cmp_outcomes``
    (one row per assigned member: group, contacted, orders, revenue in the window)
    and ``cmp_member_coupons`` (coupons issued and redeemed per member)."""
    return Query(_CAMPAIGN_CTES, {"campaign_id": str(campaign_id)})


_PROFILE_CTES = {
    "cmp_pre": """
  SELECT member_id, sum(net) AS pre_spend, count(*) FILTER (WHERE net > 0) AS pre_purchase_days
  FROM days WHERE day > CAST($as_of AS DATE) - CAST($pre_days AS INTEGER) GROUP BY member_id""",
    "cmp_profile": """
  SELECT a.member_id, a.tier, a.rfm_segment AS segment, a.store_id AS store, a.region, a.channel,
         a.lifecycle_stage, a.clv_band,
         date_diff('day', a.join_date, CAST($as_of AS DATE)) AS tenure_days,
         a.days_since_last_purchase AS recency_days, a.purchase_days, a.net_spend,
         coalesce(p.pre_spend, 0.0) AS pre_spend, coalesce(p.pre_purchase_days, 0) AS pre_purchase_days
  FROM member_attributes a LEFT JOIN cmp_pre p USING (member_id)""",
}

def profile_query(as_of, pre_days: int = 365, tiers=None) -> Query:
    """``cmp_profile``: one row per member as of ``as_of`` (inclusive), from the audience attributes.

    Columns: tier, segment (RFM; empty for members who never bought), home
    store, region, channel, lifecycle_stage, clv_band (empty before ``crmkit
    score``), tenure_days, recency_days (empty if never bought), purchase_days
    and net_spend (all history), pre_spend (money) and pre_purchase_days over
    the ``pre_days`` days up to ``as_of``. See :func:`crmkit.audience.attributes_query`.
    """
    return attributes_query(as_of, tiers=tiers) + Query(_PROFILE_CTES, {"pre_days": int(pre_days)})


@contextmanager
def _registered(con: Connection, frame: pd.DataFrame):
    """Expose ``frame`` to SQL under a fresh name for the duration of the block."""
    name = f"_crmkit_{uuid.uuid4().hex}"
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)


@contextmanager
def _attributes_query(con, by: str, as_of, attributes: pd.DataFrame | None):
    """A Query whose ``cmp_attrs`` CTE maps member_id to ``level`` (the value of ``by``)."""
    if attributes is None:
        if by not in ATTRIBUTES:
            raise CrmkitError(f"cannot break results down by {by!r}; use one of {', '.join(ATTRIBUTES)} "
                              "or pass an attributes table with that column.")
        yield profile_query(as_of) + Query({"cmp_attrs": f"""
  SELECT member_id, CAST({by} AS VARCHAR) AS level FROM cmp_profile"""})
        return
    if "member_id" not in attributes.columns or by not in attributes.columns:
        raise CrmkitError(f"the attributes table needs the columns member_id and {by!r}.")
    frame = pd.DataFrame({"member_id": attributes["member_id"].astype(str),
                          "level": attributes[by].astype(str).where(attributes[by].notna())})
    with _registered(con, frame) as name:
        yield Query({"cmp_attrs": f"SELECT member_id, level FROM {name}"})


# ------------------------------------------------------------------------ campaign rows

def campaign_ids(con: Connection) -> list[str]:
    """Ids of the campaigns in the store, sorted."""
    return [r[0] for r in con.execute("SELECT campaign_id FROM campaigns ORDER BY campaign_id").fetchall()]


def campaign_info(con: Connection, campaign_id: str) -> dict:
    """The campaign's row with its attribution window; one sentence listing the known ids if unknown."""
    rows = campaign_query(campaign_id).df(con, "SELECT * FROM cmp_campaign")
    if rows.empty:
        known = campaign_ids(con)
        listing = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        raise CrmkitError(f"campaign {campaign_id!r} not found; known campaigns: {listing or 'none'}.")
    if len(rows) > 1:
        raise CrmkitError(f"campaign {campaign_id!r} appears {len(rows)} times in the campaigns table.")
    info = rows.iloc[0].to_dict()
    info["name"] = None if pd.isna(info["name"]) else str(info["name"])
    info["margin_rate"] = float(info["margin_rate"]) if pd.notna(info["margin_rate"]) else math.nan
    return info


def _pre_campaign_day(info: dict) -> dt.date:
    """Attributes are taken as of the day before the campaign starts (inclusive)."""
    return as_date(info["start"]) - dt.timedelta(days=1)


def _group_stats(con, query: Query, level: str = "'all'") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-group sufficient statistics by ``level``: (treatment, control), indexed alike.

    Columns: n, contacted, buyers (members with an order), orders_mean, orders_var,
    revenue_mean, revenue_var (variances with ddof=1). A missing group has n = 0.
    """
    rows = query.df(con, f"""
SELECT coalesce({level}, '{UNKNOWN}') AS level, o."group", count(*) AS n,
       count(*) FILTER (WHERE o.contacted) AS contacted, count(*) FILTER (WHERE o.orders > 0) AS buyers,
       avg(o.orders) AS orders_mean, var_samp(o.orders) AS orders_var,
       avg(o.revenue) AS revenue_mean, var_samp(o.revenue) AS revenue_var
FROM cmp_outcomes o {"LEFT JOIN cmp_attrs a USING (member_id)" if level != "'all'" else ""}
GROUP BY ALL ORDER BY level""")
    bad = sorted(set(rows["group"].dropna()) - set(GROUPS))
    if bad or rows["group"].isna().any():
        raise CrmkitError(f"campaign {query.params['campaign_id']!r} has members in group "
                          f"{(bad or [None])[0]!r}; groups must be 'treatment' or 'control'.")
    levels = pd.Index(rows["level"].unique(), name="level")
    cols = ["n", "contacted", "buyers", "orders_mean", "orders_var", "revenue_mean", "revenue_var"]

    def side(group):
        g = rows[rows["group"] == group].set_index("level")[cols].reindex(levels).astype(float)
        return g.fillna({c: 0.0 for c in _COUNTS})
    return side("treatment"), side("control")


def _lift(t: pd.DataFrame, c: pd.DataFrame, metric: str, alpha: float, margin_rate: float = math.nan) -> Lift:
    """Vectorised lift of one metric from group statistics (Newcombe for conversion, else Welch)."""
    if metric == "conversion":
        return proportion_lift(t["buyers"], t["n"], c["buyers"], c["n"], alpha)
    col = "orders" if metric == "orders_per_member" else "revenue"
    lift = mean_lift(t[f"{col}_mean"], t[f"{col}_var"], t["n"], c[f"{col}_mean"], c[f"{col}_var"], c["n"], alpha)
    return _scale(lift, margin_rate) if metric == "margin_per_member" else lift


def _scale(lift: Lift, k: float) -> Lift:
    """A lift in other units (``k`` × the values); relative lifts are unchanged."""
    return Lift(lift.treatment * k, lift.control * k, Interval(*(np.multiply(v, k) for v in lift.lift)),
                lift.lift_rel)


def _num(x) -> float | None:
    """A finite float for JSON, else None."""
    if x is None:
        return None
    x = float(np.asarray(x))
    return x if math.isfinite(x) else None


def _ci(iv: Interval) -> list | None:
    lo, hi = _num(iv.low), _num(iv.high)
    return None if lo is None or hi is None or _num(iv.estimate) is None else [lo, hi]


def _lift_dict(lift: Lift) -> dict:
    return {"treatment": _num(lift.treatment), "control": _num(lift.control),
            "lift": _num(lift.lift.estimate), "lift_ci": _ci(lift.lift),
            "lift_rel": _num(lift.lift_rel.estimate), "lift_rel_ci": _ci(lift.lift_rel)}


# ------------------------------------------------------------------------- measurement

@dataclass
class CampaignResult:
    """Measurement of one campaign; see the module docstring for every definition.

    ``to_dict()`` is the JSON of ``crmkit campaign-roi --json``; ``summary(lang)``
    the readable text. Intervals are :class:`~crmkit.stats.Interval`
    (estimate, low, high); NaN marks what cannot be estimated.
    """

    campaign_id: str
    name: str | None
    window: tuple[dt.datetime, dt.datetime]
    method: str
    alpha: float
    n_treatment: int
    n_control: int
    n_contacted: int
    lifts: dict[str, Lift]
    incremental_orders: Interval
    incremental_revenue: Interval
    incremental_margin: Interval
    cost: dict[str, float]
    coupons_redeemed: int
    net_margin: Interval
    roi: Interval
    p_value: float
    verdict: str | None
    reason: tuple[str, dict] | None
    mde: dict[str, float]
    min_control: int = MIN_CONTROL
    warnings: list[tuple[str, dict]] = field(default_factory=list)
    funnel: pd.DataFrame | None = None
    #: why revenue, margin and ROI are not given although incrementality was measured (all-zero amounts)
    value_reason: tuple[str, dict] | None = None

    @property
    def measured(self) -> bool:
        """True when there is a usable control group, so incrementality was measured."""
        return self.reason is None

    def to_dict(self, lang: str = "en") -> dict:
        """The JSON contract of ``crmkit campaign-roi --json`` (texts in ``lang``)."""
        start, end = self.window
        out = {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "window": {"start": start.isoformat(), "end": end.isoformat(), "end_exclusive": True},
            "incrementality": ({"design": "randomized holdout, intention-to-treat",
                                "interval_method": self.method, "confidence": 1 - self.alpha}
                               if self.measured else None),
            "reason": t(self.reason[0], lang).format(**self.reason[1]) if self.reason else None,
            "roi_reason": t(self.value_reason[0], lang).format(**self.value_reason[1]) if self.value_reason else None,
            "n_treatment": self.n_treatment,
            "n_control": self.n_control,
            "n_contacted": self.n_contacted,
            **{m: _lift_dict(lift) for m, lift in self.lifts.items()},
        }
        for key in ("incremental_orders", "incremental_revenue", "incremental_margin", "net_margin", "roi"):
            iv = getattr(self, key)
            out[key], out[f"{key}_ci"] = _num(iv.estimate), _ci(iv)
        out.update({
            "cost": _num(self.cost["total"]),
            "cost_breakdown": {k: _num(v) for k, v in self.cost.items() if k != "total"},
            "coupons_redeemed": self.coupons_redeemed,
            "p_value": _num(self.p_value),
            "p_value_test": "one-sided, H0: ROI <= 0 (incremental gross margin <= cost)",
            "verdict": self.verdict,
            "verdict_label": t(f"campaign.{self.verdict}", lang) if self.verdict else None,
            "verdict_text": self.verdict_text(lang),
            "mde": {k: _num(v) for k, v in self.mde.items()},
            "warnings": [t(k, lang).format(**p) for k, p in self.warnings],
        })
        if self.funnel is not None and len(self.funnel):
            out["funnel"] = funnel_dict(self.funnel)
        return out

    def verdict_text(self, lang: str = "zh") -> str | None:
        """The verdict in one plain sentence (or why there is none)."""
        if self.reason:
            return t(self.reason[0], lang).format(**self.reason[1])
        if self.value_reason:
            return t(self.value_reason[0], lang).format(**self.value_reason[1])
        if self.verdict is None:
            return None
        if self.n_control < self.min_control:
            return t("campaign.text.small_control", lang).format(n_c=self.n_control, min_control=self.min_control)
        return t(f"campaign.text.{self.verdict}", lang).format(
            margin=_money(self.incremental_margin.estimate), margin_ci=_money_ci(self.incremental_margin),
            cost=_money(self.cost["total"]), net_ci=_money_ci(self.net_margin),
            mde=_money(self.mde.get("margin_per_member", math.nan), 2),
            breakeven=_money(self.mde.get("breakeven_margin_per_member", math.nan), 2))

    def summary(self, lang: str = "zh") -> str:
        """A readable multi-line summary for the console."""
        start, end = self.window
        days = (end - start).days
        lines = [
            t("campaign.title", lang).format(id=self.campaign_id, name=self.name or "–") + ", "
            + t("campaign.window", lang).format(start=start.date(), end=(end - dt.timedelta(days=1)).date(),
                                                days=days),
            t("campaign.members", lang).format(n_t=self.n_treatment, n_c=self.n_control,
                                               n_contacted=self.n_contacted),
        ]
        if self.measured:
            lines.append(t("campaign.design", lang).format(level=round(100 * (1 - self.alpha)), method=self.method))
        else:
            lines.append(t("campaign.descriptive", lang))
        lines.append("")
        head = [t("campaign.treatment", lang), t("campaign.control", lang), t("campaign.lift", lang),
                t("campaign.lift_rel", lang)]
        rows = [[""] + head]
        for m, lift in self.lifts.items():
            fmt = _fmt_metric(m)
            diff_fmt = _pp if m == "conversion" else fmt
            rows.append([t(f"campaign.{m}", lang), fmt(lift.treatment), fmt(lift.control),
                         _fmt_iv(lift.lift, diff_fmt, signed=True), _fmt_iv(lift.lift_rel, _pct, signed=True)])
        lines += text_table(rows, right=set(range(1, len(rows[0]))))
        lines.append("")
        for key, fmt in (("incremental_orders", _count), ("incremental_revenue", _money),
                         ("incremental_margin", _money)):
            lines.append(f"{t(f'campaign.{key}', lang)}: {_fmt_iv(getattr(self, key), fmt, signed=True)}")
        c = self.cost
        lines.append(t("campaign.cost", lang).format(
            total=_money(c["total"]), contact=_money(c["contact"]), fixed=_money(c["fixed"]),
            coupons=_money(c["coupons"]), redeemed=self.coupons_redeemed))
        if self.measured and not self.value_reason:
            lines.append(t("campaign.roi", lang).format(
                roi=_pct(self.roi.estimate, signed=True), ci=_fmt_ci(self.roi, lambda x: _pct(x, signed=True)),
                p="–" if not np.isfinite(self.p_value) else f"{self.p_value:.3g}"))
        if self.funnel is not None and len(self.funnel):
            lines.append(f"{t('campaign.funnel', lang)}: {funnel_line(self.funnel.iloc[0], lang)}")
        lines += ["", f"{t('campaign.verdict', lang)}: {self.verdict_text(lang) or '–'}"]
        if self.warnings:
            lines.append(f"{t('campaign.warnings', lang)}:")
            lines += [f"- {t(k, lang).format(**p)}" for k, p in self.warnings]
        return "\n".join(lines)


def measure(con: Connection, campaign_id: str, *, method: str = "welch", alpha: float = 0.05,
            n_resamples: int = 2000, seed: int = 0, min_control: int = MIN_CONTROL) -> CampaignResult:
    """Measure one campaign against its control group: lifts, totals, cost, ROI and a verdict.

    Parameters
    ----------
    con
        The member store.
    campaign_id
        A campaign of the ``campaigns`` table; an unknown id is a one-sentence error listing the known ids.
    method
        ``welch`` (default) or ``bootstrap`` for orders, revenue and margin per
        member (and so ROI); conversion always uses Wilson / Newcombe.
    alpha
        1 − confidence of the two-sided intervals (0.05 → 95%).
    n_resamples, seed
        The percentile bootstrap's resamples and seed (``method="bootstrap"``).
    min_control
        Control groups smaller than this are too small to conclude (:data:`MIN_CONTROL`).

    Returns
    -------
    CampaignResult
        All definitions are in this module's docstring. The one-sided p-value
        is Welch's t test (or the bootstrap's) of H0: margin lift per member ≤
        cost / n_treatment, i.e. ROI ≤ 0.
    """
    if method not in METHODS:
        raise CrmkitError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}.")
    info = campaign_info(con, campaign_id)
    q = campaign_query(campaign_id)
    tr, ct = (s.reindex(["all"]).fillna({c: 0.0 for c in _COUNTS}) for s in _group_stats(con, q))
    n_t, n_c = int(tr["n"].iloc[0]), int(ct["n"].iloc[0])
    reason = _no_incrementality(campaign_id, n_t, n_c)
    if reason:  # descriptive numbers only: blank the control group out
        ct = pd.DataFrame({c: [0.0 if c in _COUNTS else math.nan] for c in ct.columns}, index=ct.index)
    rate = info["margin_rate"]
    redeemed, coupon_cost = q.df(con, """
SELECT count(c.redeemed_at),
       coalesce(sum(coalesce(c.value, k.coupon_value)) FILTER (WHERE c.redeemed_at IS NOT NULL), 0)
FROM coupons c, cmp_campaign k WHERE c.campaign_id = $campaign_id""").iloc[0]
    n_contacted = int(tr["contacted"].iloc[0])
    cost = {"contact": info["cost_per_contact"] * n_contacted, "fixed": float(info["fixed_cost"]),
            "coupons": float(coupon_cost)}
    cost["total"] = sum(cost.values())

    lifts = {m: Lift(*map(_first, _lift(tr, ct, m, alpha, rate))) for m in METRICS}
    tr, ct = tr.iloc[0], ct.iloc[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        breakeven = cost["total"] / n_t / rate if n_t else math.nan  # revenue lift per member to pay back
    if reason:
        p_value = math.nan
    elif method == "bootstrap":
        lifts, draws = _bootstrap_lifts(con, q, lifts, rate, alpha, n_resamples, seed)
        p_value = float(bootstrap_p_value(draws, breakeven))
    else:
        p_value = float(welch_test(tr["revenue_mean"], tr["revenue_var"], n_t, ct["revenue_mean"],
                                   ct["revenue_var"], n_c, value=breakeven, alternative="larger").p_value)
    total = {k: Interval(*(v * n_t for v in lifts[m].lift))
             for k, m in (("orders", "orders_per_member"), ("revenue", "revenue_per_member"),
                          ("margin", "margin_per_member"))}
    net = Interval(*(v - cost["total"] for v in total["margin"]))
    roi = Interval(*(v / cost["total"] if cost["total"] > 0 else math.nan for v in net))
    too_small = not reason and n_c < min_control
    verdict = None if reason or not np.isfinite(net.low) else (
        CANNOT_TELL if too_small else PAYS if net.low > 0 else DOES_NOT_PAY if net.high < 0 else CANNOT_TELL)
    mde = {} if reason else {
        "conversion": mde_proportions(ct["buyers"] / n_c, n_t, n_c, alpha),
        "margin_per_member": float(mde_means(tr["revenue_var"], n_t, ct["revenue_var"], n_c, alpha) * rate),
        "breakeven_margin_per_member": cost["total"] / n_t,
    }
    value_reason = None if reason else _zero_amounts(con, q)
    if value_reason:  # without amounts, revenue, margin and ROI would read as a certain zero
        nan = Interval(math.nan, math.nan, math.nan)
        lifts = {**lifts, **{m: Lift(math.nan, math.nan, nan, nan)
                             for m in ("revenue_per_member", "margin_per_member")}}
        total["revenue"] = total["margin"] = net = roi = nan
        p_value, verdict = math.nan, None
        mde = {k: v for k, v in mde.items() if k == "conversion"}
    warnings = _warnings(info, tr, ct, n_contacted, cost, reason, too_small, min_control)
    if value_reason:  # there is no verdict to compare with zero
        warnings = [w for w in warnings if w[0] != "campaign.warn.no_cost"]
    return CampaignResult(
        campaign_id=str(campaign_id), name=info["name"],
        window=(pd.Timestamp(info["window_start"]).to_pydatetime(), pd.Timestamp(info["window_end"]).to_pydatetime()),
        method=method, alpha=alpha, n_treatment=n_t, n_control=n_c, n_contacted=n_contacted,
        lifts=lifts,
        incremental_orders=total["orders"], incremental_revenue=total["revenue"],
        incremental_margin=total["margin"], cost=cost, coupons_redeemed=int(redeemed),
        net_margin=net, roi=roi, p_value=p_value, verdict=verdict,
        reason=reason, mde=mde, min_control=min_control, warnings=warnings, funnel=_funnel(con, q),
        value_reason=value_reason)


def _first(v):
    """The scalar of a one-level result (an Interval stays an Interval)."""
    if isinstance(v, Interval):
        return Interval(*map(_first, v))
    return float(np.asarray(v, dtype=float).reshape(-1)[0])


def _zero_amounts(con, q: Query) -> tuple[str, dict] | None:
    """Why revenue cannot be measured: every amount of the window's orders, or of the store, is zero; else None."""
    lines, paid = q.df(con, """
SELECT count(*) AS lines, count(*) FILTER (WHERE t.amount <> 0) AS paid FROM transactions t
SEMI JOIN cmp_orders o ON o.member_id = t.member_id AND o.order_id IS NOT DISTINCT FROM t.order_id""").iloc[0]
    if lines:
        return None if paid else ("campaign.reason.zero_amounts_window",
                                  {"n_lines": int(lines), "s": "s" if lines != 1 else ""})
    lines = zero_amounts(con)  # nobody bought in the window: are there amounts anywhere?
    return ("campaign.reason.zero_amounts", {"n_lines": lines, "s": "s" if lines != 1 else ""}) if lines else None


def _no_incrementality(campaign_id, n_t: int, n_c: int) -> tuple[str, dict] | None:
    """Why no incremental effect can be estimated, or None when it can."""
    if n_t + n_c == 0:
        return "campaign.reason.no_members", {"id": campaign_id}
    if n_c == 0:
        return "campaign.reason.no_control", {"id": campaign_id}
    if min(n_t, n_c) < 2:
        return "campaign.reason.too_few", {"id": campaign_id, "n_t": n_t, "n_c": n_c}
    return None


def _bootstrap_lifts(con, q: Query, lifts: dict[str, Lift], rate: float, alpha: float,
                     n_resamples: int, seed: int) -> tuple[dict[str, Lift], np.ndarray]:
    """``lifts`` with percentile-bootstrap intervals for the means, and the revenue-lift draws.

    Members are resampled within their group (per-member outcomes, one row per assigned member).
    """
    lifts = dict(lifts)
    per_member = q.df(con, 'SELECT "group", orders, revenue FROM cmp_outcomes ORDER BY member_id')
    seeds = np.random.SeedSequence(seed).spawn(2)
    means = {g: bootstrap_means(per_member.loc[per_member["group"] == g, ["orders", "revenue"]].to_numpy(),
                                n_resamples, s) for g, s in zip(GROUPS, seeds)}
    for j, metric in enumerate(("orders_per_member", "revenue_per_member")):
        mt, mc = means["treatment"][:, j], means["control"][:, j]
        old = lifts[metric]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = mt / mc - 1 if old.control > 0 else np.full_like(mt, np.nan)
        lifts[metric] = Lift(old.treatment, old.control,
                             Interval(old.lift.estimate, *percentile_interval(mt - mc, alpha)),
                             Interval(old.lift_rel.estimate, *percentile_interval(rel, alpha)))
    lifts["margin_per_member"] = _scale(lifts["revenue_per_member"], rate)
    return lifts, means["treatment"][:, 1] - means["control"][:, 1]


def _warnings(info, tr, ct, n_contacted, cost, reason, too_small, min_control) -> list[tuple[str, dict]]:
    out = []
    n_c, buyers_t, buyers_c = int(ct["n"]), int(tr["buyers"]), int(ct["buyers"])
    if too_small:
        out.append(("campaign.warn.small_control", {"n_c": n_c, "min_control": min_control}))
    if not reason and buyers_t + buyers_c == 0:
        out.append(("campaign.warn.no_purchases", {}))
    elif not reason and min(buyers_t, buyers_c) < MIN_BUYERS:
        out.append(("campaign.warn.few_buyers", {"buyers_t": buyers_t, "buyers_c": buyers_c}))
    if tr["n"] > 0 and n_contacted == 0 and info["cost_per_contact"] > 0:
        out.append(("campaign.warn.no_contacts", {}))
    if not math.isfinite(info["margin_rate"]):
        out.append(("campaign.warn.no_margin_rate", {}))
    if not reason and cost["total"] <= 0:
        out.append(("campaign.warn.no_cost", {}))
    return out


# ----------------------------------------------------------------------------- funnel

FUNNEL_STAGES = ("targeted", "contacted", "redeemed", "purchased")


def _funnel(con, q: Query, level: str = "'all'") -> pd.DataFrame:
    rows = q.df(con, f"""
SELECT coalesce({level}, '{UNKNOWN}') AS level, count(*) AS targeted,
       count(*) FILTER (WHERE o.contacted) AS contacted,
       count(*) FILTER (WHERE coalesce(k.redeemed, 0) > 0) AS redeemed,
       count(*) FILTER (WHERE o.orders > 0) AS purchased,
       coalesce(sum(k.issued), 0) AS coupons_issued, coalesce(sum(k.redeemed), 0) AS coupons_redeemed
FROM cmp_outcomes o LEFT JOIN cmp_member_coupons k USING (member_id)
{"LEFT JOIN cmp_attrs a USING (member_id)" if level != "'all'" else ""}
WHERE o."group" = 'treatment' GROUP BY ALL ORDER BY level""")
    rate = wilson_interval(rows["coupons_redeemed"], rows["coupons_issued"])
    return rows.assign(redemption_rate=rate.estimate, redemption_low=rate.low, redemption_high=rate.high)


def funnel(con: Connection, campaign_id: str, by: str | None = None, *,
           attributes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Treatment funnel: targeted → contacted → redeemed a coupon → purchased, overall or by ``by``.

    Stages count treatment members (intention-to-treat): ``contacted`` has
    ``contacted_at`` set, ``redeemed`` redeemed at least one coupon of the
    campaign, ``purchased`` bought in the attribution window (whether or not
    with a coupon). The coupon redemption rate (券使用率) is redeemed / issued
    coupons, with its 95% Wilson interval.

    Parameters
    ----------
    by
        None for one row (``level = 'all'``), or one of :data:`ATTRIBUTES`
        (as of the day before the start), or a column of ``attributes``.
    attributes
        Optional member_id → ``by`` table for a breakdown crmkit does not compute.
    """
    info = campaign_info(con, campaign_id)
    q = campaign_query(campaign_id)
    if by is None:
        return _funnel(con, q)
    with _attributes_query(con, by, _pre_campaign_day(info), attributes) as attrs:
        return _funnel(con, q + attrs, "a.level").rename(columns={"level": by})


def funnel_dict(rows: pd.DataFrame) -> dict:
    """The first funnel row as JSON: stages with their share of targeted, and the redemption rate."""
    r = rows.iloc[0]
    n = int(r["targeted"])
    return {
        "stages": [{"stage": s, "members": int(r[s]), "share_of_targeted": _num(r[s] / n) if n else None}
                   for s in FUNNEL_STAGES],
        "coupons_issued": int(r["coupons_issued"]), "coupons_redeemed": int(r["coupons_redeemed"]),
        "redemption_rate": _num(r["redemption_rate"]),
        "redemption_rate_ci": _ci(Interval(r["redemption_rate"], r["redemption_low"], r["redemption_high"])),
    }


def funnel_line(r: pd.Series, lang: str = "zh") -> str:
    """``Targeted 9,000 → Contacted 8,950 (99.4%) → …; coupon redemption rate 12.0% [11.3%, 12.7%]``."""
    n = r["targeted"]
    parts = [f"{t(f'campaign.{s}', lang)} {int(r[s]):,}" + (f" ({_pct(r[s] / n)})" if i and n else "")
             for i, s in enumerate(FUNNEL_STAGES)]
    rate = Interval(r["redemption_rate"], r["redemption_low"], r["redemption_high"])
    return (" → ".join(parts)
            + f"; {t('campaign.redemption_rate', lang)} {_pct(rate.estimate)} {_fmt_ci(rate, _pct)}".rstrip())


# ------------------------------------------------------------------ heterogeneous effects

def lift_by(con: Connection, campaign_id: str, by: str, metric: str = "conversion", *,
            attributes: pd.DataFrame | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Lift of ``metric`` within each level of ``by`` (tier, segment, store, region, channel, …).

    Each level gets its own interval at ``1 − alpha`` and a Bonferroni-adjusted
    one at ``1 − alpha / k`` over the k levels with both groups present. With
    many levels some 95% intervals exclude 0 by chance alone: the caution text
    is in ``result.attrs["caution"]``.

    Returns
    -------
    DataFrame
        ``by``, n_treatment, n_control, treatment, control, lift, lift_low,
        lift_high, lift_rel, lift_rel_low, lift_rel_high, adj_low, adj_high, too_small
        (fewer than :data:`MIN_LEVEL` members in a group: no lift, no interval, not
        counted among the k levels compared); attrs: metric, by, alpha, caution.
    """
    if metric not in METRICS:
        raise CrmkitError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    info = campaign_info(con, campaign_id)
    with _attributes_query(con, by, _pre_campaign_day(info), attributes) as attrs:
        tr, ct = _group_stats(con, campaign_query(campaign_id) + attrs, "a.level")
    too_small = ((tr["n"] < MIN_LEVEL) | (ct["n"] < MIN_LEVEL)).to_numpy()
    k = max(int((~too_small).sum()), 1)
    lift = _lift(tr, ct, metric, alpha, info["margin_rate"])
    adjusted = _lift(tr, ct, metric, alpha / k, info["margin_rate"]).lift
    out = pd.DataFrame({
        by: tr.index.astype(str), "n_treatment": tr["n"].astype(int).to_numpy(),
        "n_control": ct["n"].astype(int).to_numpy(), "treatment": lift.treatment, "control": lift.control,
        "lift": lift.lift.estimate, "lift_low": lift.lift.low, "lift_high": lift.lift.high,
        "lift_rel": lift.lift_rel.estimate, "lift_rel_low": lift.lift_rel.low,
        "lift_rel_high": lift.lift_rel.high, "adj_low": adjusted.low, "adj_high": adjusted.high,
        "too_small": too_small,
    })
    out.loc[too_small, ["lift", "lift_low", "lift_high", "lift_rel", "lift_rel_low", "lift_rel_high",
                        "adj_low", "adj_high"]] = np.nan
    out.attrs.update(metric=metric, by=by, alpha=alpha, caution={lang: t("campaign.caution", lang).format(k=k)
                                                                  for lang in ("zh", "en")})
    return out


# ------------------------------------------------------------------------------ uplift

class TwoModelUplift:
    """Two-model (T-learner) uplift: one model per group, uplift = prediction(treated) − prediction(control).

    Radcliffe, N. J. & Surry, P. D. (2011). Real-world uplift modelling with
    significance-based uplift trees; Künzel, S. R. et al. (2019). Metalearners
    for estimating heterogeneous treatment effects using machine learning. PNAS 116, 4156–4165.

    Parameters
    ----------
    model
        A scikit-learn estimator cloned for each group; by default a shallow,
        strongly regularised histogram gradient boosting classifier (binary
        outcome) or regressor (uplift is a difference of two noisy fits).
    """

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y, treated) -> TwoModelUplift:
        X, y, treated = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(treated, dtype=bool)
        binary = set(np.unique(y)) <= {0.0, 1.0}
        if binary and any(len(np.unique(y[mask])) < 2 for mask in (treated, ~treated)):
            raise ModelError("uplift needs members who bought and who did not in both groups.")
        base = self.model if self.model is not None else (
            HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor)(
                max_depth=3, learning_rate=0.05, max_iter=100, min_samples_leaf=100, early_stopping=False,
                random_state=0)
        self.model_treatment_ = clone(base).fit(X[treated], y[treated])
        self.model_control_ = clone(base).fit(X[~treated], y[~treated])
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted uplift per row: the outcome if treated minus the outcome if held out."""
        X = np.asarray(X, dtype=float)
        return self._outcome(self.model_treatment_, X) - self._outcome(self.model_control_, X)

    @staticmethod
    def _outcome(model, X):
        return model.predict_proba(X)[:, 1] if is_classifier(model) else model.predict(X)


def uplift_ranking(con: Connection, campaign_id: str, outcome: str = "conversion", *,
                   model=None, folds: int = 3, seed: int = 0) -> pd.DataFrame:
    """Members of the campaign ranked by cross-fitted two-model uplift, to choose whom to target next time.

    Features are the member profile as of the day before the start
    (:func:`profile_query`: tenure, recency, frequency, spend, pre-period spend
    and purchase days, one-hot tier, segment, region, channel, lifecycle stage
    and CLV band). Each member's score comes from models fitted on the other
    ``folds − 1`` folds, so :func:`uplift_deciles` is an honest check of the ranking.

    Parameters
    ----------
    outcome
        ``conversion`` (bought in the window) or ``margin`` (gross margin per member, money).

    Returns
    -------
    DataFrame
        member_id, group, outcome, uplift, decile (1 = the tenth with the highest uplift);
        highest uplift first. No personal data.
    """
    if outcome not in ("conversion", "margin"):
        raise CrmkitError(f"unknown uplift outcome {outcome!r}; use conversion or margin.")
    info = campaign_info(con, campaign_id)
    rate = info["margin_rate"] if outcome == "margin" else 1.0
    if not math.isfinite(rate):
        raise CrmkitError(f"campaign {campaign_id!r} has no margin_rate, so margin uplift cannot be modelled.")
    frame = (campaign_query(campaign_id) + profile_query(_pre_campaign_day(info))).df(con, f"""
SELECT o.member_id, o."group", {'CAST(o.orders > 0 AS DOUBLE)' if outcome == 'conversion' else 'o.revenue'} AS y,
       p.* EXCLUDE (member_id, store)
FROM cmp_outcomes o LEFT JOIN cmp_profile p USING (member_id) ORDER BY o.member_id""")
    y = frame["y"].to_numpy(dtype=float) * rate
    treated = (frame["group"] == "treatment").to_numpy()
    X = pd.get_dummies(frame.drop(columns=["member_id", "group", "y"]), columns=list(_UPLIFT_CATEGORIES),
                       dtype=float).to_numpy(dtype=float)
    uplift = np.empty(len(frame))
    for fit_idx, score_idx in KFold(folds, shuffle=True, random_state=seed).split(X):
        m = TwoModelUplift(model).fit(X[fit_idx], y[fit_idx], treated[fit_idx])
        uplift[score_idx] = m.predict(X[score_idx])
    out = pd.DataFrame({"member_id": frame["member_id"], "group": frame["group"], "outcome": y, "uplift": uplift})
    out = out.sort_values(["uplift", "member_id"], ascending=[False, True], ignore_index=True)
    out["decile"] = np.arange(len(out)) * 10 // max(len(out), 1) + 1
    return out


def uplift_deciles(ranking: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Observed lift within each predicted-uplift decile of :func:`uplift_ranking`, with intervals.

    If the ranking works, the observed lift falls from decile 1 to decile 10:
    target the deciles whose lift pays for the contact.
    """
    g = ranking.groupby(["decile", "group"])["outcome"].agg(["count", "sum", "mean", "var"]).unstack("group")
    tr, ct = g.xs("treatment", axis=1, level="group"), g.xs("control", axis=1, level="group")
    binary = set(np.unique(ranking["outcome"])) <= {0.0, 1.0}
    lift = (proportion_lift(tr["sum"], tr["count"], ct["sum"], ct["count"], alpha) if binary else
            mean_lift(tr["mean"], tr["var"], tr["count"], ct["mean"], ct["var"], ct["count"], alpha))
    return pd.DataFrame({
        "decile": g.index, "mean_uplift": ranking.groupby("decile")["uplift"].mean().to_numpy(),
        "n_treatment": tr["count"].fillna(0).astype(int).to_numpy(),
        "n_control": ct["count"].fillna(0).astype(int).to_numpy(),
        "treatment": lift.treatment, "control": lift.control, "lift": lift.lift.estimate,
        "lift_low": lift.lift.low, "lift_high": lift.lift.high,
    })


# -------------------------------------------------------------------------- assignment

def _audience_frame(audience) -> pd.DataFrame:
    frame = (audience.copy() if isinstance(audience, pd.DataFrame)
             else pd.DataFrame({"member_id": list(audience)}))
    if "member_id" not in frame.columns:
        raise CrmkitError("the audience needs a member_id column.")
    frame["member_id"] = frame["member_id"].astype(str)
    frame = frame.drop_duplicates("member_id").sort_values("member_id", ignore_index=True)
    if frame.empty:
        raise CrmkitError("the audience is empty; there is nobody to assign.")
    return frame


def _default_as_of(con) -> dt.date:
    """The day of the latest transaction (today when there are none)."""
    last = con.execute("SELECT max(order_time) FROM transactions").fetchall()[0][0]
    return as_date(last) if last is not None else dt.date.today()


def _with_profile(con, frame: pd.DataFrame, columns: Iterable[str], as_of, pre_days: int = 365) -> pd.DataFrame:
    """``frame`` plus the member-profile ``columns`` it lacks (as of ``as_of``)."""
    need = [c for c in columns if c not in frame.columns]
    if not need:
        return frame
    with _registered(con, frame[["member_id"]]) as name:
        prof = profile_query(as_of, pre_days).df(con, f"""
SELECT f.member_id, {', '.join(f'p.{c}' for c in need)}
FROM {name} f LEFT JOIN cmp_profile p USING (member_id)""")
    return frame.merge(prof, on="member_id", how="left")


def _stratified_control(strata: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Control flags: within each stratum, a random order and systematic sampling from a random start.

    Every member has probability ``share`` of control, and each stratum gets
    ⌊share·n⌋ or ⌈share·n⌉ controls, so the groups are balanced on the strata.
    """
    order = np.lexsort((rng.random(len(strata)), strata))
    s = strata[order]
    first = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    sizes = np.diff(np.r_[first, len(s)])
    rank = np.arange(len(s)) - np.repeat(first, sizes)
    u = np.repeat(rng.random(len(first)), sizes)
    picked = np.floor((rank + 1) * share + u) > np.floor(rank * share + u)
    out = np.empty(len(s), dtype=bool)
    out[order] = picked
    return out


def assign_holdout(con: Connection, audience, campaign_id: str, control_share: float = 0.1,
                   strata: Sequence[str] = ("tier", "store"), seed: int = 0, *, as_of=None,
                   write: bool = False) -> pd.DataFrame:
    """Randomly hold out a control group from a planned campaign's audience, stratified and reproducible.

    Parameters
    ----------
    audience
        Member ids, or a DataFrame with ``member_id`` (and, if wanted, the strata columns).
    control_share
        Share of the audience held out, in (0, 1).
    strata
        Columns to stratify by: columns of ``audience``, or :data:`ATTRIBUTES`
        (``store`` is the home store) from the member profile as of ``as_of``.
    seed
        The same audience, strata and seed give the same assignment, whatever the input order.
    as_of
        Date of the profile used for strata (default: the day of the latest transaction).
    write
        Also insert the assignment into ``campaign_assignments`` (contacted_at
        empty), in one transaction; refused if the campaign already has assignments.

    Returns
    -------
    DataFrame
        campaign_id, member_id, group, and the strata columns; see :func:`balance_table`.
    """
    if not 0 < control_share < 1:
        raise CrmkitError(f"control_share must be between 0 and 1, not {control_share!r}.")
    frame = _audience_frame(audience)
    unknown = [s for s in strata if s not in frame.columns and s not in ATTRIBUTES]
    if unknown:
        raise CrmkitError(f"cannot stratify by {unknown[0]!r}; use audience columns or {', '.join(ATTRIBUTES)}.")
    as_of = as_date(as_of) if as_of is not None else _default_as_of(con)
    frame = _with_profile(con, frame, strata, as_of)
    codes = (frame.groupby(list(strata), dropna=False, sort=True).ngroup().to_numpy() if strata
             else np.zeros(len(frame), dtype=int))
    control = _stratified_control(codes, control_share, np.random.default_rng(seed))
    out = frame[["member_id", *strata]].assign(group=np.where(control, "control", "treatment"))
    out.insert(0, "campaign_id", str(campaign_id))
    if write:
        write_assignments(con, out)
    return out


def write_assignments(con: Connection, assignments: pd.DataFrame) -> None:
    """Insert assignments (campaign_id, member_id, group) into ``campaign_assignments``, all or nothing."""
    ids = assignments["campaign_id"].unique().tolist()
    have = con.execute("SELECT DISTINCT campaign_id FROM campaign_assignments WHERE campaign_id IN "
                       "(SELECT unnest($ids))", {"ids": ids}).fetchall()
    if have:
        raise CrmkitError(f"campaign {have[0][0]!r} already has assignments; they are kept as they are.")
    with _registered(con, assignments[["campaign_id", "member_id", "group"]]) as name, transaction(con):
        con.execute(f'INSERT INTO campaign_assignments (campaign_id, member_id, "group", contacted_at) '
                    f'SELECT campaign_id, member_id, "group", NULL FROM {name}')


def balance_table(con: Connection, assignments, *, as_of=None, pre_days: int = 365,
                  mix: Sequence[str] = ("tier",)) -> pd.DataFrame:
    """Pre-period balance of treatment and control: spend, purchase days and tier mix by group.

    Parameters
    ----------
    assignments
        A frame with member_id and group (as from :func:`assign_holdout`), or a
        campaign id, whose assignments are read from the store with ``as_of``
        the day before its start.
    as_of, pre_days
        The pre-period is the ``pre_days`` days up to ``as_of`` (inclusive);
        default ``as_of``: the day of the latest transaction.
    mix
        Categorical columns whose share of members is compared (one row per value).

    Returns
    -------
    DataFrame
        metric, treatment, control, difference, smd. Means per member for
        pre_spend (money) and pre_purchase_days, shares for ``mix`` values.
        ``smd`` is the standardized mean difference; |smd| < 0.1 is the usual
        mark of good balance.
    """
    if isinstance(assignments, str):
        info = campaign_info(con, assignments)
        as_of = as_of if as_of is not None else _pre_campaign_day(info)
        assignments = con.execute('SELECT member_id, "group" FROM campaign_assignments WHERE campaign_id = ?',
                                  [assignments]).df()
    as_of = as_date(as_of) if as_of is not None else _default_as_of(con)
    pre = ["pre_spend", "pre_purchase_days"]
    frame = _with_profile(con, assignments[["member_id", "group", *[c for c in mix if c in assignments]]],
                          [*mix, *pre], as_of, pre_days)
    columns = {c: frame[c].astype(float).fillna(0.0) for c in pre}  # members who joined later: nothing before
    for col in mix:
        values = frame[col].astype(str).where(frame[col].notna(), UNKNOWN)
        for v in sorted(values.unique()):
            columns[f"{col}={v}"] = (values == v).astype(float)
    by_group = pd.DataFrame(columns).groupby(frame["group"].to_numpy())
    mean, var = by_group.mean().reindex(GROUPS), by_group.var().reindex(GROUPS)
    n = frame["group"].value_counts().reindex(GROUPS, fill_value=0).astype(float)
    diff = mean.loc["treatment"] - mean.loc["control"]
    sd = np.sqrt((var.loc["treatment"] + var.loc["control"]) / 2)
    out = pd.DataFrame({"treatment": mean.loc["treatment"], "control": mean.loc["control"], "difference": diff,
                        "smd": (diff / sd).where(sd > 0, np.where(diff == 0, 0.0, np.nan))})
    head = pd.DataFrame({"treatment": n["treatment"], "control": n["control"],
                         "difference": n["treatment"] - n["control"], "smd": np.nan}, index=["members"])
    return pd.concat([head, out]).rename_axis("metric").reset_index()


# ---------------------------------------------------------------------------- planning

def plan_campaign(base_rate: float, expected_lift: float, control_share: float = 0.1, *,
                  audience_size: int | None = None, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Sample size and minimum detectable effect for a planned campaign's conversion rate.

    Parameters
    ----------
    base_rate
        Expected conversion of the control group in the attribution window, e.g. 0.05.
    expected_lift
        Absolute lift hoped for, e.g. 0.01 (5% → 6%).
    control_share
        Share of the audience held out.
    audience_size
        If given, also the lift detectable with that audience split by ``control_share``.

    Returns
    -------
    dict
        n_treatment, n_control, n_total (rounded up) needed to detect
        ``expected_lift`` with ``power`` in a two-sided test at ``alpha``; with
        ``audience_size``: mde (absolute) and mde_rel (relative to ``base_rate``)
        at that size, and ``enough`` (whether the audience suffices).
    """
    if not 0 < control_share < 1:
        raise CrmkitError(f"control_share must be between 0 and 1, not {control_share!r}.")
    if not 0 < base_rate < 1 or not 0 < base_rate + expected_lift <= 1 or expected_lift == 0:
        raise CrmkitError("base_rate and base_rate + expected_lift must be rates between 0 and 1, "
                          "and the lift must not be 0.")
    n_t, n_c = sample_size_proportions(base_rate, expected_lift, control_share, alpha, power)
    out = {"base_rate": base_rate, "expected_lift": expected_lift, "control_share": control_share,
           "alpha": alpha, "power": power, "n_treatment": math.ceil(n_t), "n_control": math.ceil(n_c)}
    out["n_total"] = out["n_treatment"] + out["n_control"]
    if audience_size is not None:
        n_c_have = audience_size * control_share
        mde = mde_proportions(base_rate, audience_size - n_c_have, n_c_have, alpha, power)
        out.update(audience_size=audience_size, mde=mde, mde_rel=mde / base_rate,
                   enough=bool(audience_size >= out["n_total"]))
    return out


# ------------------------------------------------------------------------------- plots

def plot_lift(table: pd.DataFrame, lang: str = "zh"):
    """Lift with its interval (dark) and Bonferroni-adjusted interval (light) per level of :func:`lift_by`."""
    metric, by = table.attrs["metric"], table.attrs["by"]
    label = {"tier": tier_label, "segment": segment_label}.get(by, lambda v, _lang: v)
    attrs = dict(table.attrs)
    small = table[table["too_small"]]
    table = table[~table["too_small"]]
    caution = attrs["caution"][lang]
    if len(small):
        caution += " " + t("campaign.too_small_levels", lang).format(
            n=MIN_LEVEL, levels=", ".join(f"{label(v, lang)} ({a:,} / {b:,})" for v, a, b in
                                          zip(small[by], small["n_treatment"], small["n_control"])))
    fig, ax = viz.new_figure(figsize=(8, 0.45 * max(len(table), 1) + 1.8))
    y = np.arange(len(table))[::-1]
    ax.hlines(y, table["adj_low"], table["adj_high"], color=viz.PALETTE[0], alpha=0.3, linewidth=6,
              label=t("campaign.adjusted", lang))
    ax.errorbar(table["lift"], y, xerr=[table["lift"] - table["lift_low"], table["lift_high"] - table["lift"]],
                fmt="o", color=viz.PALETTE[0], capsize=3,
                label=t("campaign.interval", lang).format(level=round(100 * (1 - attrs["alpha"]))))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [label(v, lang) for v in table[by]])
    ax.xaxis.set_major_formatter(viz.FuncFormatter(lambda x, _pos: viz.fmt_pp(x, 0)) if metric == "conversion"
                                 else viz.money_formatter)
    by_label = t({"tier": "tier.tier", "segment": "rfm.segment"}.get(by, by), lang)
    ax.set_title(t("campaign.lift_title", lang).format(metric=t(f"campaign.{metric}", lang), by=by_label))
    ax.set_xlabel(t("campaign.lift", lang))
    ax.legend(loc="best", fontsize="small")
    fig.text(0.01, 0.01, caution, fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_funnel(rows: pd.DataFrame, campaign_id: str, lang: str = "zh"):
    """Horizontal bars of the treatment funnel (first row of :func:`funnel`), with shares of targeted."""
    r = rows.iloc[0]
    counts = [int(r[s]) for s in FUNNEL_STAGES]
    fig, ax = viz.new_figure()
    y = np.arange(len(counts))[::-1]
    ax.barh(y, counts, color=viz.PALETTE[0])
    for yi, c in zip(y, counts):
        ax.text(c, yi, f" {c:,} ({_pct(c / counts[0]) if counts[0] else '–'})", va="center")
    ax.set_yticks(y, [t(f"campaign.{s}", lang) for s in FUNNEL_STAGES])
    ax.set_xlabel(t("campaign.members_count", lang))
    ax.xaxis.set_major_formatter(viz.int_formatter)
    ax.set_title(t("campaign.funnel_title", lang).format(id=campaign_id))
    ax.set_xlim(0, max(counts[0], 1) * 1.25)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- formatting

def _money(x, decimals: int = 0, signed: bool = False) -> str:
    s = viz.fmt_money(float(x), decimals)
    return f"+{s}" if signed and float(x) > 0 else s


def _count(x, signed: bool = False) -> str:
    x = float(x)
    return "–" if not math.isfinite(x) else f"{x:{'+' if signed else ''},.0f}"


def _pct(x, signed: bool = False) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "–"
    return f"{x * 100:+.1f}%" if signed else viz.fmt_pct(x)


def _pp(x, signed: bool = False) -> str:
    """A difference of rates in percentage points."""
    x = float(x)
    return "–" if not math.isfinite(x) else f"{x * 100:{'+' if signed else ''}.1f} pp"


def _fmt_metric(metric: str):
    if metric == "conversion":
        return _pct
    if metric == "orders_per_member":
        return lambda x, signed=False: "–" if not math.isfinite(float(x)) else f"{float(x):{'+' if signed else ''}.3f}"
    return lambda x, signed=False: _money(x, 2, signed)


def _fmt_ci(iv: Interval, fmt) -> str:
    return "" if _ci(iv) is None else f"[{fmt(iv.low)}, {fmt(iv.high)}]"


def _fmt_iv(iv: Interval, fmt, signed: bool = False) -> str:
    if _num(iv.estimate) is None:
        return "–"
    f = (lambda x: fmt(x, signed=True)) if signed else fmt
    return f"{f(iv.estimate)} {_fmt_ci(iv, f)}".rstrip()


def _money_ci(iv: Interval) -> str:
    return _fmt_ci(iv, _money)

