"""Customer lifetime value over a horizon, with prediction intervals.

CLV of a member = margin × Σₖ E[purchases in step k] × E[spend per order] ×
discount factor of step k, with steps of ``step_days`` days (a week by
default) up to ``horizon_days``: no month is assumed. The discount rate is
annual and compounds: a step ending ``d`` days out is worth
``(1 + rate) ** (-d / 365.25)``, paid at the step's end. ``clv`` is this
expectation, given the member's history (frequency, recency, T, monetary).

Intervals (90% by default) are *prediction intervals*: they hold what the
member will actually bring over the horizon, margin × discount × the sum of
their future orders, with the stated probability under the model. They
combine two sources of uncertainty:

- **the purchase process**: whether the member is still active, how many
  purchases they make (the transaction model given their history), and what
  each order is worth (the Gamma-Gamma posterior of their mean spend);
- **the parameters**: the fitted parameters' asymptotic normal distribution
  on the log scale (``log_params_cov_``), by the delta method, the
  transaction model and Gamma-Gamma independent, as the Gamma-Gamma assumes.

They assume the model is right: a misfit (a trend, a season, a change in the
chain) is not in them. A member's value, in closed form (no simulation, so
the same parameters always give the same numbers):

- ``N``, the purchases in the horizon, is 0 with probability
  ``1 − P(alive)·P(a purchase within the horizon | alive)``. Its first two
  moments are exact: for a member active at T with purchase rate λ, E[N(N−1)]
  = 2∫₀ᵗ s·λ·m'(s) ds, where m(s) is E[N(s)]; averaging λ (and, for BG/NBD,
  the survival 1−p) over the member's posterior tilts it by one purchase, so
  E[N(N−1) | alive] = 2·c·(t·m̃(t) − ∫₀ᵗ m̃(s) ds), with m̃ the expected
  purchases of a member with one more repeat purchase and c = (r+x)/(α+T)
  (Pareto/NBD and NBD; BG/NBD and MBG/NBD: times (b+x+k)/(a+b+x+k), k = 1
  for the MBG/NBD).
  The integral is Gauss-Legendre.
- Given N ≥ 1 orders the spend is Gamma(pN, ν) with ν ~ Gamma(q + p·x, v +
  x·m) (Fader, Hardie & Lee 2005; Fader & Hardie 2013), so spend / (v + x·m)
  is beta-prime(pN, q + p·x). N is mixed into the shape: the value given a
  purchase is taken as margin × discount × (v + x·m) × scale ×
  beta-prime(κ, q + p·x), with κ and the scale matching its exact mean and
  variance (the variance widened by the parameters' share, by the law of
  total variance).
- Discounting applies the member's expected discount factor (discounted over
  undiscounted expected purchases) to the whole value.
- The interval is equal-tailed when the chance of no purchase is below its
  lower tail; otherwise it starts at ¥0 and ends at the ``interval`` quantile
  (a member who will most likely not buy again has [¥0, ¥0]).

Members are conditionally independent given the parameters, so the total's
interval is the sum of their values: given the parameters it is taken as
gamma with the sum of the members' means and variances (their chance
variation averages out), and the parameters' uncertainty, which all members
share, scales it (a log-normal factor, integrated by Gauss-Hermite). For a
large chain the total's interval is nearly all parameter uncertainty; for a
single member nearly all chance.

:func:`forecast_purchases` still gives the interval of the *expected*
purchases (parameter uncertainty only), as model validation compares it with
the actual total.

References: Fader, Hardie & Lee (2005), "Counting your customers" the easy
way: an alternative to the Pareto/NBD model, *Marketing Science* 24(2); Fader,
Hardie & Lee (2005), RFM and CLV: using iso-value curves for customer base
analysis, *JMR* 42(4); Schmittlein, Morrison & Colombo (1987), *Management
Science* 33(1); Batislam, Denizel & Filiztekin (2007), *IJRM* 24(3).
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import betaincinv, gammainc
from scipy.special import ndtri

from ..errors import CrmkitError
from ..i18n import register, t
from ..rfm import period_days, unique_rows
from ._base import MLEModel, RepeatBuyingModel, as_float_arrays, check_rfm, check_weights, dot
from .bgnbd import BetaGeo
from .gammagamma import GammaGamma
from .paretonbd import ParetoNBD

YEAR_DAYS = 365.25
_H = 1e-5  # relative step of the parameter gradients
#: Gauss-Legendre rule on [0, 1] for ∫ m̃(s) ds in the second moment of the purchases.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(12)
_GL_NODES, _GL_WEIGHTS = (_GL_NODES + 1) / 2, _GL_WEIGHTS / 2
#: Gauss-Hermite rule for the standard normal: the parameters' log-normal factor on the total.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(40)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()
#: Gamma-Gamma gives spend no finite variance when q + p·x ≤ 2; the total's spread then uses
#: q + p·x − 2 = this floor (a member's own interval needs no finite variance).
_SPEND_VAR_FLOOR = 0.25

register({
    "clv.interval_note": (
        "{level} 预测区间：会员实际带来的价值有 {level} 的可能落在区间内；它涵盖模型参数的不确定性和"
        "会员购买的随机性（是否流失、买几次、每次花多少），前提是模型成立。",
        "{level} prediction interval: what members actually bring falls inside it with {level} probability; "
        "it covers the uncertainty of the model's parameters and the chance in each member's purchases "
        "(whether they stay, how often they buy, how much they spend), assuming the model is right."),
})


def interval_note(lang: str = "zh", interval: float = 0.9) -> str:
    """One sentence for reports: what the CLV intervals of :func:`customer_value` and :func:`total_value` cover."""
    if not 0 < interval < 1:
        raise CrmkitError(f"interval must be between 0 and 1 (e.g. 0.9), not {interval!r}.")
    return t("clv.interval_note", lang).format(level=f"{interval:.0%}")


def discount_schedule(horizon_days: float, discount_rate_annual: float, step_days: float = 7.0):
    """Step ends (days after as_of) and their discount factors."""
    if not horizon_days > 0:
        raise CrmkitError(f"horizon_days must be positive, not {horizon_days!r}.")
    if not step_days > 0:
        raise CrmkitError(f"step_days must be positive, not {step_days!r}.")
    if not discount_rate_annual > -1:
        raise CrmkitError(f"discount_rate_annual must be above -1 (e.g. 0.1 for 10% a year), "
                          f"not {discount_rate_annual!r}.")
    ends = np.minimum(np.arange(1, int(np.ceil(horizon_days / step_days - 1e-9)) + 1) * step_days, horizon_days)
    return ends, (1.0 + discount_rate_annual) ** (-ends / YEAR_DAYS)


def log_param_gradient(model: MLEModel, fn: Callable[[MLEModel], np.ndarray], base=None) -> np.ndarray:
    """d fn(model) / d log θⱼ by forward differences, stacked on a first axis (one per parameter).

    ``base`` is ``fn(model)`` when the caller has it already.
    """
    base = fn(model) if base is None else base
    params = model.params_
    return np.array([(fn(model.with_params({**params, name: params[name] * np.exp(_H)})) - base) / _H
                     for name in model.param_names])


def log_variance(value, grad: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Variance of ln(value) by the delta method, from d value / d log θ and the covariance of log θ."""
    value = np.asarray(value, dtype=float)
    var = np.einsum("j...,jk,k...->...", grad, cov, grad)
    return np.divide(np.maximum(var, 0.0), value ** 2, out=np.zeros_like(value), where=value > 0)


def log_interval(value, log_var, interval: float = 0.9):
    """(low, high): ``value`` times and divided by exp(z·sd) — normal on the log scale, never negative."""
    if not 0 < interval < 1:
        raise CrmkitError(f"interval must be between 0 and 1 (e.g. 0.9), not {interval!r}.")
    spread = np.exp(ndtri(0.5 + interval / 2) * np.sqrt(log_var))
    return value / spread, value * spread


def _check_model(model, gg=None) -> None:
    if not isinstance(model, RepeatBuyingModel):
        raise CrmkitError(f"CLV needs a fitted BG/NBD, Pareto/NBD or MBG/NBD model, not {type(model).__name__}.")
    model._values()
    if gg is not None:
        if not isinstance(gg, GammaGamma):
            raise CrmkitError(f"spend must come from a fitted GammaGamma model, not {type(gg).__name__}.")
        gg._values()


def purchase_moments(model: RepeatBuyingModel, t, frequency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E[N], E[N(N−1)] and P(N ≥ 1) for N, the purchases in the next ``t`` periods of a member active at T.

    Exact for the BG/NBD, MBG/NBD, Pareto/NBD and NBD (see the module docstring);
    the moments given a member's history are P(alive) times these. Arguments
    broadcast; ``t`` in the model's periods.
    """
    _check_model(model)
    p = model._values()
    t, x, T = as_float_arrays(t, frequency, T)
    if isinstance(model, BetaGeo):  # also the MBG/NBD
        r, alpha, a, b = p
        b_x = b + x + model._shift
        tilt = (r + x) / (alpha + T) * b_x / (a + b_x)
    elif isinstance(model, ParetoNBD) or model.name == "nbd":  # the NBD: nobody drops out
        r, alpha = p[:2]
        tilt = (r + x) / (alpha + T)
    else:
        raise CrmkitError(f"prediction intervals need a BG/NBD, Pareto/NBD or MBG/NBD model, "
                          f"not {type(model).__name__}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        # m̃(s): expected purchases of a member with one more repeat purchase, at the nodes and at t
        s = t[..., None] * np.append(_GL_NODES, 1.0)
        tilted = model._expected_if_alive(p, s, (x + 1)[..., None], T[..., None])
        integral = t * np.einsum("...k,k->...", tilted[..., :-1], _GL_WEIGHTS)
        second = np.maximum(2 * tilt * (t * tilted[..., -1] - integral), 0.0)
        mean = model._expected_if_alive(p, t, x, T)
        any_ = model._prob_purchase_if_alive(p, t, x, T)
    return mean, np.where(t > 0, second, 0.0), any_


def _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                 margin, period, step_days):
    """The pieces of CLV = margin × discounted purchases × spend, with their log-parameter gradients.

    Discounted purchases are P(alive) (once per unique frequency, recency, T)
    times the discounted step sum of a member alive at T (once per unique
    frequency, T); spend is per member. ``inverse`` maps members to the unique
    (frequency, recency, T) rows; the moments of the purchases over the
    horizon (``n_mean``, ``n_second`` = E[N(N−1)], ``p_any``) and the
    discount factor ``phi`` (discounted over undiscounted expected purchases)
    are per unique row.
    """
    _check_model(model, gg)
    if not 0 < margin <= 1:
        raise CrmkitError(f"margin is the gross margin as a share of net sales (0 < margin ≤ 1), not {margin!r}.")
    days, factors = discount_schedule(horizon_days, discount_rate_annual, step_days)
    times = days / period_days(period)
    x, tx, T = (v.ravel() for v in check_rfm(frequency, recency, T))
    m = np.broadcast_to(np.asarray(monetary, dtype=float), x.shape).ravel()
    (ux, utx, uT), inverse = unique_rows(x, tx, T)
    (vx, vT), by_xT = unique_rows(ux, uT)

    def cumulative(mod):  # expected purchases of a member alive at T, by the end of each step
        return mod.expected_purchases_if_alive(times[None, :], vx[:, None], vT[:, None])

    def discounted(alive, cum):
        return alive * np.einsum("ik,k->i", np.diff(cum, axis=1, prepend=0.0), factors)[by_xT]

    def purchases(mod):
        return discounted(mod.p_alive(ux, utx, uT), cumulative(mod))

    alive, cum = model.p_alive(ux, utx, uT), cumulative(model)
    dp = discounted(alive, cum)
    sp, sp_grad = gg.expected_spend_with_gradient(x, m)
    _, second, any_ = purchase_moments(model, times[-1], vx, vT)
    mean = cum[:, -1]  # the last step ends at the horizon
    disc = np.einsum("ik,k->i", np.diff(cum, axis=1, prepend=0.0), factors)
    phi = np.divide(disc, mean, out=np.ones_like(mean), where=mean > 0)
    return {
        "inverse": inverse, "x": ux,
        "purchases": dp, "purchases_grad": log_param_gradient(model, purchases, dp),
        "spend": sp, "spend_grad": sp_grad,
        "p_alive": alive,
        "expected": alive * mean[by_xT],
        "n_mean": alive * mean[by_xT], "n_second": alive * second[by_xT], "p_any": alive * any_[by_xT],
        "phi": phi[by_xT],
    }


def fit_value_models(model: RepeatBuyingModel, summary: pd.DataFrame) -> tuple[RepeatBuyingModel, GammaGamma]:
    """Fit ``model`` (a new BG/NBD, Pareto/NBD or MBG/NBD) and a Gamma-Gamma on one RFM summary.

    The two fits are independent and spend their time in numpy and scipy
    kernels, which release the GIL, so they run side by side: on two cores
    the pair takes about the time of the slower fit. Returns both, fitted.

    When ``model`` has no interior maximum because members do not appear to
    drop out, the NBD is fitted instead (:func:`crmkit.clv.fit_with_fallback`):
    the model returned is then that NBD, with ``fallback_from_`` and
    ``fit_note_`` saying so.
    """
    from .fallback import fit_with_fallback

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmkit-gamma-gamma") as pool:
        spend = pool.submit(GammaGamma().fit_summary, summary)
        model = fit_with_fallback(model, summary)
        return model, spend.result()


def _row_interval_factors(parts, gg: GammaGamma, margin: float, log_var: np.ndarray,
                          interval: float) -> tuple[np.ndarray, np.ndarray]:
    """Per unique row, the interval bounds of a member's value divided by their expected spend per order.

    ``log_var`` is the parameters' variance of ln CLV per row. The value is 0
    with the chance of no purchase; given a purchase it is (see the module
    docstring) margin × phi × (v + x·m) × scale × beta-prime(κ, Q), Q = q + p·x,
    and (v + x·m) = E[spend | x, m] × (Q − 1) / p.
    """
    if not 0 < interval < 1:
        raise CrmkitError(f"interval must be between 0 and 1 (e.g. 0.9), not {interval!r}.")
    gp, gq, _ = gg._values()
    q_shape = gq + gp * parts["x"]
    n_mean, n_second, p_any = parts["n_mean"], parts["n_second"], np.clip(parts["p_any"], 0.0, 1.0)
    buys = (p_any > 0) & (n_mean > 0)
    pa = np.where(buys, p_any, 1.0)
    mean1 = np.where(buys, n_mean / pa, 1.0)                            # E[N | N ≥ 1]
    var1 = np.maximum((n_second + n_mean) / pa - mean1 ** 2, 0.0)      # Var[N | N ≥ 1]
    # the parameters' variance, Var E[value | θ] = CLV² (e^(s²) − 1), put on N given a purchase
    var1 += pa * mean1 ** 2 * np.expm1(log_var) * np.clip((q_shape - 2) / (q_shape - 1), 0.0, None)
    kappa = mean1 ** 2 / (mean1 / gp + var1)
    scale = margin * parts["phi"] * mean1 * (q_shape - 1) / kappa
    nothing = np.where(buys, 1.0 - pa, 1.0)
    tail = (1 - interval) / 2
    equal_tails = nothing < tail  # else the interval starts at 0 and ends at the `interval` quantile
    levels = (np.where(equal_tails, tail, 0.0), np.where(equal_tails, 1 - tail, interval))
    bounds = []
    for level in levels:
        u = np.clip((level - nothing) / np.maximum(1.0 - nothing, 1e-300), 0.0, None)
        need = buys & (u > 0)
        y = np.zeros_like(u)
        y[need] = betaincinv(kappa[need], q_shape[need], u[need])
        bounds.append(np.where(need, scale * y / (1.0 - y), 0.0))
    return bounds[0], bounds[1]


def _gamma_lognormal_interval(mean: float, var: float, log_var: float, interval: float) -> tuple[float, float]:
    """Quantiles of G·e^(s·Z), G ~ gamma with ``mean`` and ``var``, Z standard normal, s² = ``log_var``.

    Given the parameters the total is gamma (chance); the parameters scale it
    by a log-normal factor of median 1, its shape with it (the chance
    variation of a total grows with its mean).
    """
    if not mean > 0:
        return 0.0, 0.0
    if not (np.isfinite(mean) and np.isfinite(var) and np.isfinite(log_var)):
        return np.nan, np.nan  # e.g. no parameter covariance: the interval is unknown, not zero
    if not var > 1e-12 * mean ** 2:
        low, high = log_interval(mean, log_var, interval)
        return float(low), float(high)
    shapes = mean ** 2 / var * np.exp(np.sqrt(log_var) * _GH_NODES)
    scale = var / mean

    def cdf(y):
        return dot(_GH_WEIGHTS, gammainc(shapes, y / scale))

    out = []
    for level in ((1 - interval) / 2, (1 + interval) / 2):
        high = mean
        while cdf(high) < level:
            high *= 2
        out.append(brentq(lambda y: cdf(y) - level, 0.0, high, xtol=1e-12 * mean, rtol=1e-12))
    return out[0], out[1]


def _table(parts, model, gg, margin: float, interval: float, index) -> pd.DataFrame:
    inverse, dp, sp = parts["inverse"], parts["purchases"], parts["spend"]
    lv_spend = log_variance(sp, parts["spend_grad"], gg.log_params_cov_)
    counts = np.bincount(inverse, minlength=dp.size)
    # ln CLV = ln margin + ln purchases + ln spend, the two models' parameters independent; the
    # spend's share is averaged over the members of a row (it depends on their own spend)
    log_var = (log_variance(dp, parts["purchases_grad"], model.log_params_cov_)
               + np.bincount(inverse, lv_spend, minlength=dp.size) / np.maximum(counts, 1))
    low, high = _row_interval_factors(parts, gg, margin, log_var, interval)
    clv = margin * dp[inverse] * sp
    # copy=False: each fresh column stays its own block instead of being stacked into one (0.1 s a million)
    return pd.DataFrame({"p_alive": parts["p_alive"][inverse], "expected_purchases": parts["expected"][inverse],
                         "expected_spend": sp, "clv": clv, "clv_low": low[inverse] * sp,
                         "clv_high": high[inverse] * sp}, index=index, copy=False)


def _total(parts, model, gg, margin: float, interval: float) -> pd.Series:
    if not 0 < interval < 1:
        raise CrmkitError(f"interval must be between 0 and 1 (e.g. 0.9), not {interval!r}.")
    inverse, dp, sp = parts["inverse"], parts["purchases"], parts["spend"]
    spend_by_row = np.bincount(inverse, sp, minlength=dp.size)
    total = margin * dot(dp, spend_by_row)
    log_var = (log_variance(total, margin * np.einsum("jn,n->j", parts["purchases_grad"], spend_by_row),
                            model.log_params_cov_)
               + log_variance(total, margin * np.einsum("jn,n->j", parts["spend_grad"], dp[inverse]),
                              gg.log_params_cov_))
    # chance: members are independent given the parameters, so their variances add;
    # E[value²] = (margin·phi·spend)² (Q−1)/(Q−2) (E[N²] + E[N]/p)
    gp, gq, _ = gg._values()
    q_shape = gq + gp * parts["x"]
    second = ((margin * parts["phi"]) ** 2 * (q_shape - 1) / np.maximum(q_shape - 2, _SPEND_VAR_FLOOR)
              * (parts["n_second"] + parts["n_mean"] + parts["n_mean"] / gp))
    sp2_by_row = np.bincount(inverse, sp * sp, minlength=dp.size)
    var = max(dot(second, sp2_by_row) - margin ** 2 * dot(dp * dp, sp2_by_row), 0.0)
    low, high = _gamma_lognormal_interval(total, var, float(log_var), interval)
    return pd.Series({"clv": total, "clv_low": low, "clv_high": high, "members": inverse.size})


def customer_value(model: RepeatBuyingModel, gg: GammaGamma, frequency, recency, T, monetary, *,
                   horizon_days: float, discount_rate_annual: float, margin: float, period: str = "W",
                   interval: float = 0.9, step_days: float = 7.0) -> pd.DataFrame:
    """Per-member CLV over ``horizon_days`` with a prediction interval, in yuan.

    Parameters
    ----------
    model : fitted transaction model, in ``period`` units (weeks for ``"W"``).
    gg : fitted Gamma-Gamma model of spend per order.
    frequency, recency, T, monetary : the members' RFM summary (see :mod:`crmkit.rfm`).
    horizon_days : length of the forecast, in days (365 for a year).
    discount_rate_annual : annual discount rate, compounded per step (0.1 = 10% a year).
    margin : gross margin as a share of net sales.
    interval : probability of the prediction intervals (0.9 = 90%).
    step_days : length of a step of the sum (7 = weekly).

    Returns
    -------
    DataFrame (index of ``frequency`` when it is a Series) with ``p_alive``,
    ``expected_purchases`` (undiscounted, over the horizon), ``expected_spend``
    (yuan per order), ``clv`` (the expected value), ``clv_low`` and
    ``clv_high`` (yuan): the member's actual value over the horizon falls in
    [clv_low, clv_high] with probability ``interval`` under the model (see the
    module docstring; :func:`interval_note` says it in words).
    """
    parts = _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                         margin, period, step_days)
    index = frequency.index if isinstance(frequency, pd.Series) else None
    return _table(parts, model, gg, margin, interval, index)


def total_value(model: RepeatBuyingModel, gg: GammaGamma, frequency, recency, T, monetary, *,
                horizon_days: float, discount_rate_annual: float, margin: float, period: str = "W",
                interval: float = 0.9, step_days: float = 7.0) -> pd.Series:
    """CLV summed over the members given, with its prediction interval (yuan); arguments as :func:`customer_value`.

    Returns ``clv``, ``clv_low``, ``clv_high`` and ``members``. The interval
    holds the members' actual total: their chance variation largely averages
    out, the parameters' uncertainty, which they share, does not.
    """
    parts = _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                         margin, period, step_days)
    return _total(parts, model, gg, margin, interval)


def value_and_total(model: RepeatBuyingModel, gg: GammaGamma, frequency, recency, T, monetary, *,
                    horizon_days: float, discount_rate_annual: float, margin: float, period: str = "W",
                    interval: float = 0.9, step_days: float = 7.0) -> tuple[pd.DataFrame, pd.Series]:
    """:func:`customer_value` and :func:`total_value` at once, sharing their work (half the time)."""
    parts = _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                         margin, period, step_days)
    index = frequency.index if isinstance(frequency, pd.Series) else None
    return _table(parts, model, gg, margin, interval, index), _total(parts, model, gg, margin, interval)


def forecast_purchases(model: RepeatBuyingModel, t, frequency, recency, T, *, weights=None,
                       interval: float = 0.9) -> pd.Series:
    """Total expected purchases of the members over the next ``t`` periods, with its interval.

    ``weights`` counts members per row when the rows are compressed.
    """
    _check_model(model)
    x, tx, T = (v.ravel() for v in check_rfm(frequency, recency, T))
    w = np.ones_like(x) if weights is None else check_weights(weights, x.size)

    def total(mod):
        return dot(w, np.broadcast_to(mod.expected_purchases(t, x, tx, T), x.shape))

    expected = float(total(model))
    grad = log_param_gradient(model, total, expected)
    low, high = log_interval(expected, log_variance(expected, grad, model.log_params_cov_), interval)
    return pd.Series({"expected": expected, "low": float(low), "high": float(high)})
