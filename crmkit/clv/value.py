"""Customer lifetime value over a horizon, with intervals.

CLV of a member = margin × Σₖ E[purchases in step k] × E[spend per order] ×
discount factor of step k, with steps of ``step_days`` days (a week by
default) up to ``horizon_days``: no month is assumed. The discount rate is
annual and compounds: a step ending ``d`` days out is worth
``(1 + rate) ** (-d / 365.25)``, paid at the step's end.

Intervals (90% by default) reflect the uncertainty of the fitted parameters:
the delta method on the log scale, with the parameter covariance of each
model (transaction model and Gamma-Gamma, independent as the Gamma-Gamma
assumes) and gradients by forward differences in the log-parameters. They
cover the *expected* value, not the chance variation of what one member will
actually buy. The same applies to aggregate forecasts, where the members'
gradients are summed before the variance is formed.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import CrmkitError
from ..rfm import period_days, unique_rows
from ._base import MLEModel, RepeatBuyingModel, check_rfm, check_weights, dot
from .gammagamma import GammaGamma

YEAR_DAYS = 365.25
_H = 1e-5  # relative step of the parameter gradients


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
    spread = np.exp(norm.ppf(0.5 + interval / 2) * np.sqrt(log_var))
    return value / spread, value * spread


def _check_model(model, gg=None) -> None:
    if not isinstance(model, RepeatBuyingModel):
        raise CrmkitError(f"CLV needs a fitted BG/NBD, Pareto/NBD or MBG/NBD model, not {type(model).__name__}.")
    model._values()
    if gg is not None:
        if not isinstance(gg, GammaGamma):
            raise CrmkitError(f"spend must come from a fitted GammaGamma model, not {type(gg).__name__}.")
        gg._values()


def _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                 margin, period, step_days):
    """The pieces of CLV = margin × discounted purchases × spend, with their log-parameter gradients.

    Discounted purchases are P(alive) (once per unique frequency, recency, T)
    times the discounted step sum of a member alive at T (once per unique
    frequency, T); spend is per member. ``inverse`` maps members to the unique
    (frequency, recency, T) rows.
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
    return {
        "inverse": inverse,
        "purchases": dp, "purchases_grad": log_param_gradient(model, purchases, dp),
        "spend": sp, "spend_grad": sp_grad,
        "p_alive": alive,
        "expected": alive * cum[by_xT, -1],  # the last step ends at the horizon
    }


def fit_value_models(model: RepeatBuyingModel, summary: pd.DataFrame) -> tuple[RepeatBuyingModel, GammaGamma]:
    """Fit ``model`` (a new BG/NBD, Pareto/NBD or MBG/NBD) and a Gamma-Gamma on one RFM summary.

    The two fits are independent and spend their time in numpy and scipy
    kernels, which release the GIL, so they run side by side: on two cores
    the pair takes about the time of the slower fit. Returns both, fitted.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crmkit-gamma-gamma") as pool:
        spend = pool.submit(GammaGamma().fit_summary, summary)
        model.fit_summary(summary)
        return model, spend.result()


def customer_value(model: RepeatBuyingModel, gg: GammaGamma, frequency, recency, T, monetary, *,
                   horizon_days: float, discount_rate_annual: float, margin: float, period: str = "W",
                   interval: float = 0.9, step_days: float = 7.0) -> pd.DataFrame:
    """Per-member CLV over ``horizon_days`` with an interval, in yuan.

    Parameters
    ----------
    model : fitted transaction model, in ``period`` units (weeks for ``"W"``).
    gg : fitted Gamma-Gamma model of spend per order.
    frequency, recency, T, monetary : the members' RFM summary (see :mod:`crmkit.rfm`).
    horizon_days : length of the forecast, in days (365 for a year).
    discount_rate_annual : annual discount rate, compounded per step (0.1 = 10% a year).
    margin : gross margin as a share of net sales.
    step_days : length of a step of the sum (7 = weekly).

    Returns
    -------
    DataFrame (index of ``frequency`` when it is a Series) with ``p_alive``,
    ``expected_purchases`` (undiscounted, over the horizon), ``expected_spend``
    (yuan per order), ``clv``, ``clv_low`` and ``clv_high`` (yuan).
    """
    parts = _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                         margin, period, step_days)
    inverse, dp, sp = parts["inverse"], parts["purchases"], parts["spend"]
    # ln CLV = ln margin + ln purchases + ln spend, the two models' parameters independent
    log_var = (log_variance(dp, parts["purchases_grad"], model.log_params_cov_)[inverse]
               + log_variance(sp, parts["spend_grad"], gg.log_params_cov_))
    clv = margin * dp[inverse] * sp
    low, high = log_interval(clv, log_var, interval)
    index = frequency.index if isinstance(frequency, pd.Series) else None
    # copy=False: each fresh column stays its own block instead of being stacked into one (0.1 s a million)
    return pd.DataFrame({"p_alive": parts["p_alive"][inverse], "expected_purchases": parts["expected"][inverse],
                         "expected_spend": sp, "clv": clv, "clv_low": low, "clv_high": high}, index=index,
                        copy=False)


def total_value(model: RepeatBuyingModel, gg: GammaGamma, frequency, recency, T, monetary, *,
                horizon_days: float, discount_rate_annual: float, margin: float, period: str = "W",
                interval: float = 0.9, step_days: float = 7.0) -> pd.Series:
    """CLV summed over the members given, with its interval (yuan); arguments as :func:`customer_value`."""
    parts = _value_parts(model, gg, frequency, recency, T, monetary, horizon_days, discount_rate_annual,
                         margin, period, step_days)
    inverse, dp, sp = parts["inverse"], parts["purchases"], parts["spend"]
    spend_by_row = np.bincount(inverse, sp, minlength=dp.size)
    total = margin * dot(dp, spend_by_row)
    log_var = (log_variance(total, margin * np.einsum("jn,n->j", parts["purchases_grad"], spend_by_row),
                            model.log_params_cov_)
               + log_variance(total, margin * np.einsum("jn,n->j", parts["spend_grad"], dp[inverse]),
                              gg.log_params_cov_))
    low, high = log_interval(total, log_var, interval)
    return pd.Series({"clv": total, "clv_low": float(low), "clv_high": float(high), "members": inverse.size})


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
