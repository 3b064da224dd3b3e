"""The result of a campaign's measurement: :class:`CampaignResult`, its readable text and its JSON.

``CampaignResult.to_dict()`` is the JSON contract of ``crmkit campaign-roi
--json`` (keys are a contract: extend, don't rename); ``summary(lang)`` the
console text; ``verdict_text(lang)`` the verdict in one plain sentence. Money
is in the store's currency; NaN marks what cannot be estimated and is
``null`` in JSON. Every figure is defined in :mod:`crmkit.campaigns.measurement`.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..currency import fmt_money
from ..i18n import register, t
from ..stats import Interval, Lift
from ..text import fmt_pct, text_table
from .queries import FUNNEL_STAGES

PAYS, DOES_NOT_PAY, CANNOT_TELL = "pays", "does not pay", "cannot tell yet"

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


@dataclass
class CampaignResult:
    """Measurement of one campaign; every definition is in :mod:`crmkit.campaigns.measurement`.

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
    #: control groups smaller than this were too small to conclude (:data:`~crmkit.campaigns.measurement.MIN_CONTROL`)
    min_control: int
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


# --------------------------------------------------------------------------- formatting

def _money(x, decimals: int = 0, signed: bool = False) -> str:
    s = fmt_money(float(x), decimals)
    return f"+{s}" if signed and float(x) > 0 else s


def _count(x, signed: bool = False) -> str:
    x = float(x)
    return "–" if not math.isfinite(x) else f"{x:{'+' if signed else ''},.0f}"


def _pct(x, signed: bool = False) -> str:
    x = float(x)
    if not math.isfinite(x):
        return "–"
    return f"{x * 100:+.1f}%" if signed else fmt_pct(x)


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
