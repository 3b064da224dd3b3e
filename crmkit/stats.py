"""Statistical helpers for campaign measurement: intervals, tests, bootstrap, planning.

Pure functions of counts, means and variances, vectorised over numpy arrays
(scalars work too), written with numpy/scipy only. The tests check them
against statsmodels to 1e-6.

Conventions: group 1 is the treatment group and group 2 the control group;
``alpha`` is two-sided, so ``alpha=0.05`` gives 95% intervals; differences
are treatment − control and ratios treatment / control. Undefined cases
(an empty group, a ratio over a zero control) give NaN, never an error.

References
----------
- Wilson, E. B. (1927). Probable inference, the law of succession, and
  statistical inference. JASA 22, 209–212.
- Newcombe, R. G. (1998). Interval estimation for the difference between
  independent proportions: comparison of eleven methods. Stat. Med. 17, 873–890
  (method 10, the hybrid score interval).
- Katz, D. et al. (1978). Obtaining confidence intervals for the risk ratio in
  cohort studies. Biometrics 34, 469–474 (log interval; 0.5 added to counts
  as in statsmodels' ``log-adjusted``).
- Welch, B. L. (1947). The generalization of Student's problem when several
  different population variances are involved. Biometrika 34, 28–35.
- Deng, A., Knoblich, U. & Lu, J. (2018). Applying the delta method in metric
  analytics. KDD '18 (interval of a relative change of means).
- Efron, B. & Tibshirani, R. (1993). An Introduction to the Bootstrap, ch. 13
  (percentile intervals).
- Fleiss, J. L., Levin, B. & Paik, M. C. (2003). Statistical Methods for Rates
  and Proportions, 3rd ed., §4.2 (sample size for two proportions).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import optimize
from scipy.special import ndtri, stdtr, stdtrit

ALTERNATIVES = ("two-sided", "larger", "smaller")


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _z(alpha: float) -> float:
    """The two-sided normal critical value, 1.96 for ``alpha=0.05``."""
    return float(-ndtri(alpha / 2))  # the normal's upper alpha/2 point (scipy.special: no scipy.stats import)


class Interval(NamedTuple):
    """An estimate with the bounds of its confidence interval."""

    estimate: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float


def wilson_interval(count, nobs, alpha: float = 0.05) -> Interval:
    """Wilson score interval for a proportion ``count / nobs`` (Wilson 1927).

    Good at small counts and at 0 or ``nobs`` successes, unlike the Wald interval.
    """
    count, nobs = _f(count), _f(nobs)
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = count / nobs
        denom = 1 + z**2 / nobs
        center = (p + z**2 / (2 * nobs)) / denom
        half = z * np.sqrt(p * (1 - p) / nobs + z**2 / (4 * nobs**2)) / denom
    return Interval(p, np.clip(center - half, 0, 1), np.clip(center + half, 0, 1))


def newcombe_interval(count1, nobs1, count2, nobs2, alpha: float = 0.05) -> Interval:
    """Newcombe's hybrid score interval for the difference of two proportions ``p1 − p2``.

    Combines the two Wilson intervals (Newcombe 1998, method 10); it keeps its
    coverage when a rate is near 0, as conversion rates are.
    """
    p1, low1, high1 = wilson_interval(count1, nobs1, alpha)
    p2, low2, high2 = wilson_interval(count2, nobs2, alpha)
    diff = p1 - p2
    return Interval(diff,
                    diff - np.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2),
                    diff + np.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2))


def rate_ratio_interval(count1, nobs1, count2, nobs2, alpha: float = 0.05) -> Interval:
    """Interval for the ratio of two proportions ``p1 / p2`` (log interval, 0.5 added to each count).

    The estimate is the plain ratio, NaN when ``p2`` is 0; the bounds use the
    adjusted counts (Katz et al. 1978), so they exist even at zero counts.
    """
    count1, nobs1, count2, nobs2 = _f(count1), _f(nobs1), _f(count2), _f(nobs2)
    c1, n1, c2, n2 = count1 + 0.5, nobs1 + 0.5, count2 + 0.5, nobs2 + 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((c1 / n1) / (c2 / n2))
        half = _z(alpha) * np.sqrt(1 / c1 - 1 / n1 + 1 / c2 - 1 / n2)
        ratio = np.where(count2 > 0, (count1 / nobs1) / (count2 / nobs2), np.nan)
    return Interval(ratio, np.exp(log_ratio - half), np.exp(log_ratio + half))


class WelchResult(NamedTuple):
    """Welch's unequal-variance t test of ``mean1 − mean2``."""

    diff: np.ndarray | float
    se: np.ndarray | float
    df: np.ndarray | float
    low: np.ndarray | float
    high: np.ndarray | float
    statistic: np.ndarray | float
    p_value: np.ndarray | float


def welch_test(mean1, var1, n1, mean2, var2, n2, alpha: float = 0.05, *, value: float = 0.0,
               alternative: str = "two-sided") -> WelchResult:
    """Welch's t interval and test for a difference of means, from group summaries (Welch 1947).

    Parameters
    ----------
    mean1, var1, n1, mean2, var2, n2
        Group means, sample variances (``ddof=1``) and sizes.
    alpha
        The interval is two-sided at level ``1 − alpha``, whatever ``alternative``.
    value
        The difference under the null hypothesis.
    alternative
        ``two-sided``, ``larger`` (H1: diff > value) or ``smaller``.

    Notes
    -----
    When both variances are 0 (e.g. nobody bought in either group) the
    difference is known exactly: the interval collapses onto it and the
    p-value is 0 or 1 by the side on which it lies.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, not {alternative!r}")
    mean1, var1, n1, mean2, var2, n2 = map(_f, (mean1, var1, n1, mean2, var2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, s2 = var1 / n1, var2 / n2
        se = np.sqrt(s1 + s2)
        df = np.where(se > 0, (s1 + s2) ** 2 / (s1**2 / (n1 - 1) + s2**2 / (n2 - 1)), np.inf)
        diff = mean1 - mean2
        half = -stdtrit(df, alpha / 2) * se
        statistic = (diff - value) / se
    if alternative == "two-sided":
        p = 2 * stdtr(df, -np.abs(statistic))
    elif alternative == "larger":
        p = stdtr(df, -statistic)
    else:
        p = stdtr(df, statistic)
    return WelchResult(diff, se, df, diff - half, diff + half, statistic, p)


def mean_ratio_interval(mean1, var1, n1, mean2, var2, n2, alpha: float = 0.05) -> Interval:
    """Delta-method interval for a ratio of independent means ``mean1 / mean2`` (Deng et al. 2018).

    NaN when ``mean2`` is not positive: a change relative to nothing is undefined.
    """
    mean1, var1, n1, mean2, var2, n2 = map(_f, (mean1, var1, n1, mean2, var2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mean2 > 0, mean1 / mean2, np.nan)
        se = np.sqrt(var1 / n1 / mean2**2 + mean1**2 * var2 / n2 / mean2**4)
    half = _z(alpha) * se
    return Interval(ratio, ratio - half, ratio + half)


class Lift(NamedTuple):
    """Treatment and control levels of a metric and their absolute and relative lift.

    ``lift = treatment − control``; ``lift_rel = treatment / control − 1``.
    """

    treatment: np.ndarray | float
    control: np.ndarray | float
    lift: Interval
    lift_rel: Interval


def proportion_lift(count1, nobs1, count2, nobs2, alpha: float = 0.05) -> Lift:
    """Lift of a rate: Newcombe interval for the difference, log interval for the ratio.

    The relative lift and its bounds are NaN when the control rate is 0.
    """
    diff = newcombe_interval(count1, nobs1, count2, nobs2, alpha)
    ratio = rate_ratio_interval(count1, nobs1, count2, nobs2, alpha)
    defined = np.isfinite(ratio.estimate)
    rel = Interval(*(np.where(defined, v, np.nan) - 1 for v in ratio))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = _f(count1) / _f(nobs1), _f(count2) / _f(nobs2)
    return Lift(p1, p2, diff, rel)


def mean_lift(mean1, var1, n1, mean2, var2, n2, alpha: float = 0.05) -> Lift:
    """Lift of a mean: Welch interval for the difference, delta-method interval for the ratio."""
    w = welch_test(mean1, var1, n1, mean2, var2, n2, alpha)
    ratio = mean_ratio_interval(mean1, var1, n1, mean2, var2, n2, alpha)
    return Lift(_f(mean1), _f(mean2), Interval(w.diff, w.low, w.high),
                Interval(*(np.asarray(v) - 1 for v in ratio)))


def bootstrap_means(values, n_resamples: int = 2000, seed: int = 0, *,
                    max_cells: int = 4_000_000) -> np.ndarray:
    """Column means of ``n_resamples`` bootstrap resamples of the rows of ``values``.

    Parameters
    ----------
    values
        ``(n, k)`` array: one row per member, one column per metric; rows are
        resampled with replacement, jointly over the columns.
    n_resamples, seed
        Number of resamples and the seed of the generator (reproducible).
    max_cells
        Resamples are drawn in batches of at most this many row indices, to bound memory.

    Returns
    -------
    ndarray
        ``(n_resamples, k)`` resampled means (Efron & Tibshirani 1993).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    n = len(values)
    if n == 0:
        return np.full((n_resamples, values.shape[1]), np.nan)
    rng = np.random.default_rng(seed)
    batch = max(1, max_cells // n)
    out = np.empty((n_resamples, values.shape[1]))
    for start in range(0, n_resamples, batch):
        stop = min(start + batch, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def percentile_interval(draws, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The ``alpha/2`` and ``1 − alpha/2`` quantiles of bootstrap draws (along axis 0)."""
    with np.errstate(invalid="ignore"):  # NaN draws (e.g. a ratio over a zero mean) give NaN bounds
        low, high = np.quantile(np.asarray(draws, dtype=float), [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def bootstrap_p_value(draws, value: float = 0.0) -> np.ndarray:
    """One-sided bootstrap p-value of H0: statistic ≤ ``value``: ``(1 + #{draw ≤ value}) / (B + 1)``.

    The smallest level at which a one-sided percentile bound would exclude ``value``
    (NaN when ``value`` is NaN).
    """
    draws = np.asarray(draws, dtype=float)
    p = (1 + (draws <= value).sum(axis=0)) / (len(draws) + 1)
    return np.where(np.isnan(value), np.nan, p)


# ------------------------------------------------------------------ planning

def _std_diff(p1, p2, ratio):
    return np.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)


def sample_size_proportions(p_control: float, lift: float, control_share: float = 0.5,
                            alpha: float = 0.05, power: float = 0.8) -> tuple[float, float]:
    """Group sizes needed to detect an absolute ``lift`` in a rate, two-sided test at ``alpha``.

    Normal approximation with the pooled variance under the null and the
    unpooled one under the alternative (Fleiss et al. 2003, §4.2); the far
    tail of the two-sided test is ignored.

    Parameters
    ----------
    p_control
        The base (control) rate, e.g. 0.05.
    lift
        Absolute lift to detect, e.g. 0.01 for 5% → 6%.
    control_share
        Share of the audience held out as control, in (0, 1).

    Returns
    -------
    (n_treatment, n_control)
        Unrounded sizes; round up before use.
    """
    ratio = control_share / (1 - control_share)  # n_control / n_treatment
    p1 = p_control + lift
    pooled = (p1 + p_control * ratio) / (1 + ratio)
    std_null = _std_diff(pooled, pooled, ratio)
    std_alt = _std_diff(p1, p_control, ratio)
    n1 = ((_z(alpha) * std_null + ndtri(power) * std_alt) / lift) ** 2
    return float(n1), float(n1 * ratio)


def mde_proportions(p_control: float, n_treatment: float, n_control: float,
                    alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute rate lift detectable with these group sizes (inverse of :func:`sample_size_proportions`).

    NaN when even a lift to a rate of 1 is not detectable.
    """
    if min(n_treatment, n_control) <= 0 or not 0 <= p_control < 1:
        return float("nan")
    share = n_control / (n_treatment + n_control)

    def gap(lift):
        return sample_size_proportions(p_control, lift, share, alpha, power)[0] - n_treatment

    top = 1 - p_control
    if gap(top) > 0:
        return float("nan")
    return float(optimize.brentq(gap, top * 1e-9, top, xtol=1e-14, rtol=1e-12))


def mde_means(var_treatment, n_treatment, var_control, n_control,
              alpha: float = 0.05, power: float = 0.8):
    """Smallest difference of means detectable with these sizes and variances (normal approximation).

    ``(z_{1−alpha/2} + z_power) × sqrt(var_t / n_t + var_c / n_c)``, in the metric's unit.
    """
    se = np.sqrt(_f(var_treatment) / _f(n_treatment) + _f(var_control) / _f(n_control))
    return (_z(alpha) + ndtri(power)) * se
