"""Campaign measurement: lifts, totals, cost, ROI and a verdict against a randomized control group.

Definitions (the outcomes per member and the window are those of :mod:`crmkit.campaigns.queries`)
--------------------------------------------------------------------------------------------------
- **Estimands.** Lifts are sample differences treatment − control of the
  per-member means, i.e. the average effect of assignment over the assigned
  members; relative lifts are treatment / control − 1. Gross margin per
  member is ``revenue × margin_rate``.
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
- **Breakdowns** (:func:`lift_by`, :func:`funnel`) are by member attributes as
  of the day before the campaign starts, or by a table the caller passes.
- **Scope.** ``measure``, ``funnel`` and ``lift_by`` take a ``scope``
  (:class:`crmkit.engine.Scope`; None or the chain: every assigned member).
  Only the assigned members whose home lies in the scope are measured, the
  home as of the day before the campaign starts
  (:mod:`crmkit.campaigns.queries`). Assignment is randomized per member and
  the home is fixed before treatment, so within a scope treatment and control
  are still two random samples of the same members and the comparison stays
  valid (with wider intervals). In a scope, cost is that of its members:
  contacts of its treatment members, the coupons of its assigned members, and
  the fixed cost shared by treatment members (fixed cost × the scope's
  treatment members / the chain's). The chain's numbers are the campaign's.

Intervals are 95% by default: Wilson / Newcombe for rates, Welch (or a
percentile bootstrap) for orders, revenue and margin per member; see
:mod:`crmkit.stats`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..checks import zero_amounts
from ..defaults import INTERVAL_METHODS
from ..engine import Query, Scope
from ..engine.store import Connection
from ..errors import CrmkitError
from ..i18n import t
from ..schema import GROUPS
from ..stats import (Interval, Lift, bootstrap_means, bootstrap_p_value, mde_means, mde_proportions, mean_lift,
                     percentile_interval, proportion_lift, welch_test, wilson_interval)
from . import queries
from .queries import campaign_info, level_query, outcome_query, pre_campaign_day
from .result import CANNOT_TELL, DOES_NOT_PAY, PAYS, CampaignResult

#: A control group with fewer members is too small to conclude ("cannot tell yet").
MIN_CONTROL = 100
#: Within one level of a breakdown (a tier, a store), fewer members than this in either group
#: gives no lift: an interval from a handful of members would be read as an effect.
MIN_LEVEL = 30
#: Fewer purchasers than this in a group makes revenue intervals approximate (a warning).
MIN_BUYERS = 10
METHODS = INTERVAL_METHODS
METRICS = ("conversion", "orders_per_member", "revenue_per_member", "margin_per_member")
_COUNTS = ("n", "contacted", "buyers")


def _group_stats(con, query: Query, by_level: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-group sufficient statistics by level (:func:`~crmkit.campaigns.queries.group_stats`):
    (treatment, control), indexed alike. A missing group has n = 0."""
    rows = queries.group_stats(con, query, by_level)
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


def measure(con: Connection, campaign_id: str, *, method: str = "welch", alpha: float = 0.05,
            n_resamples: int = 2000, seed: int = 0, min_control: int = MIN_CONTROL,
            scope: Scope | None = None) -> CampaignResult:
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
    scope
        Measure the assigned members of this scope only (by home, before the start; this
        module's docstring); None: the chain.

    Returns
    -------
    CampaignResult
        Definitions: this module's docstring and :mod:`crmkit.campaigns.queries`. The one-sided p-value
        is Welch's t test (or the bootstrap's) of H0: margin lift per member ≤
        cost / n_treatment, i.e. ROI ≤ 0.
    """
    if method not in METHODS:
        raise CrmkitError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}.")
    info = campaign_info(con, campaign_id)
    q = outcome_query(info, scope)
    tr, ct = (s.reindex(["all"]).fillna({c: 0.0 for c in _COUNTS}) for s in _group_stats(con, q))
    n_t, n_c = int(tr["n"].iloc[0]), int(ct["n"].iloc[0])
    reason = _no_incrementality(campaign_id, n_t, n_c)
    if reason:  # descriptive numbers only: blank the control group out
        ct = pd.DataFrame({c: [0.0 if c in _COUNTS else math.nan] for c in ct.columns}, index=ct.index)
    rate = info["margin_rate"]
    redeemed, coupon_cost = queries.coupon_cost(con, q)
    n_contacted = int(tr["contacted"].iloc[0])
    chain_t = queries.treatment_size(con, q)
    cost = {"contact": info["cost_per_contact"] * n_contacted,
            "fixed": float(info["fixed_cost"]) * (n_t / chain_t if chain_t else 1.0),
            "coupons": coupon_cost}
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
        window=(info["window_start"], info["window_end"]),
        method=method, alpha=alpha, n_treatment=n_t, n_control=n_c, n_contacted=n_contacted,
        lifts=lifts,
        incremental_orders=total["orders"], incremental_revenue=total["revenue"],
        incremental_margin=total["margin"], cost=cost, coupons_redeemed=redeemed,
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
    lines, paid = queries.window_amounts(con, q)
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
    per_member = queries.member_outcomes(con, q)
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

def _funnel(con, q: Query, by_level: bool = False) -> pd.DataFrame:
    rows = queries.funnel_rows(con, q, by_level)
    rate = wilson_interval(rows["coupons_redeemed"], rows["coupons_issued"])
    return rows.assign(redemption_rate=rate.estimate, redemption_low=rate.low, redemption_high=rate.high)


def funnel(con: Connection, campaign_id: str, by: str | None = None, *,
           attributes: pd.DataFrame | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Treatment funnel: targeted → contacted → redeemed a coupon → purchased, overall or by ``by``.

    Stages count treatment members (intention-to-treat): ``contacted`` has
    ``contacted_at`` set, ``redeemed`` redeemed at least one coupon of the
    campaign, ``purchased`` bought in the attribution window (whether or not
    with a coupon). The coupon redemption rate (券使用率) is redeemed / issued
    coupons, with its 95% Wilson interval.

    Parameters
    ----------
    by
        None for one row (``level = 'all'``), or one of
        :data:`~crmkit.campaigns.queries.ATTRIBUTES` (as of the day before the
        start), or a column of ``attributes``.
    attributes
        Optional member_id → ``by`` table for a breakdown crmkit does not compute.
    scope
        The treatment members of this scope only (by home, before the start); None: the chain.
    """
    info = campaign_info(con, campaign_id)
    q = outcome_query(info, scope)
    if by is None:
        return _funnel(con, q)
    with level_query(con, by, pre_campaign_day(info), attributes) as attrs:
        return _funnel(con, q + attrs, by_level=True).rename(columns={"level": by})


# ------------------------------------------------------------------ heterogeneous effects

def lift_by(con: Connection, campaign_id: str, by: str, metric: str = "conversion", *,
            attributes: pd.DataFrame | None = None, alpha: float = 0.05,
            scope: Scope | None = None) -> pd.DataFrame:
    """Lift of ``metric`` within each level of ``by`` (tier, segment, store, region, channel, …).

    With a ``scope``, only its assigned members (by home, before the start) are counted, so a
    region's breakdown by store lists the region's stores only.

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
    with level_query(con, by, pre_campaign_day(info), attributes) as attrs:
        tr, ct = _group_stats(con, outcome_query(info, scope) + attrs, by_level=True)
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
