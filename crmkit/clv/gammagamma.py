"""Gamma-Gamma model of spend per order.

Reference
---------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis. *Journal of Marketing Research*
42(4), 415-430 (after Colombo & Jiang 1999); Fader & Hardie (2013), "The
Gamma-Gamma Model of Monetary Value".
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from ..errors import InputError, ModelError
from ._base import _HUGE, MLEModel, as_float_arrays, check_weights, dot, first_bad, join_limits


def _check_spend(frequency, monetary) -> list[np.ndarray]:
    x, m = as_float_arrays(frequency, monetary)
    bad = ~np.isfinite(x) | (x < 0) | (x != np.round(x))
    if bad.any():
        raise InputError(f"frequency must be a whole number ≥ 0 ({first_bad(bad)}).")
    bad = ~np.isfinite(m) | (m < 0)
    if bad.any():
        raise InputError(f"monetary must be a mean spend ≥ 0 ({first_bad(bad)}).")
    return [x, m]


class GammaGamma(MLEModel):
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005).

    A member's order values are Gamma(p, ν) around their own mean p/ν, and
    ν ~ Gamma(q, v) across members, so the mean order value is p·v/(q-1).
    Fitted on members with repeat purchases, from the number of repeat
    purchases and their mean value (first purchases are left out, as in the
    literature). Assumes spend is independent of purchase frequency.
    """

    name = "gamma_gamma"
    label = "Gamma-Gamma"
    param_names = ("p", "q", "v")
    has_gradient = True

    def fit(self, frequency, monetary, weights=None):
        """Fit on (repeat purchases, mean repeat spend); returns self.

        Members without repeat purchases, or whose repeat purchases were free,
        carry no spend information and are left out.
        """
        x, m = (v.ravel() for v in _check_spend(frequency, monetary))
        keep = (x > 0) & (m > 0)
        if keep.sum() < 2:
            raise ModelError("Gamma-Gamma needs members with paid repeat purchases and there are fewer than two.")
        w = None if weights is None else check_weights(weights, x.size)[keep]
        return self._fit_rows((x[keep], m[keep]), w)

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on the ``frequency`` and ``monetary`` columns of an RFM summary."""
        weights = summary["weight"] if "weight" in summary.columns else None
        return self.fit(summary["frequency"], summary["monetary"], weights)

    def _prepare(self, w, x, m):
        xu, xi = np.unique(x, return_inverse=True)
        return w, x, m, xu, np.bincount(xi, w), dot(w, x * np.log(x) + x * np.log(m)), dot(w, np.log(m))

    def _initial(self, data):
        return np.array([1.0, 2.0, 1.0])

    def _moment_start(self, data):
        # Across members with many orders, the mean spend p/ν has coefficient of variation
        # 1/sqrt(q-2): q from the spread of the members' means, p = 4 and v matching the mean.
        w, x, m = data[:3]
        mean = dot(w, m) / w.sum()
        cv2 = dot(w, (m - mean) ** 2) / w.sum() / mean ** 2
        q = 2.0 + 1.0 / max(cv2, 1e-3)
        return np.array([4.0, q, mean * (q - 1) / 4.0])

    def _check_data(self, w, x, m):
        if np.all(m == m[0]):
            raise ModelError("Gamma-Gamma cannot be fitted: every member's mean repeat spend is the same, so "
                             "there is no spread in spend to fit.")

    def _limits(self, params):
        # p → ∞: each member's orders are all worth the same; q, v → ∞ (v/q fixed): members alike in spend
        p, q, v = params
        each = ({"p": "∞"}, {"en": "each member's orders appear to be worth the same amount",
                             "zh": "同一会员每笔订单的金额看来相同"}) if p > _HUGE else None
        alike = ({"q": "∞", "v": "∞"}, {"en": "every member appears to have the same mean spend",
                                        "zh": "会员的平均客单价看来相同"}) if q > _HUGE else None
        found = join_limits(each, alike)
        return None if found is None else (found[0], None, found[1])

    def _objective(self, params, data):
        # ln L = ln Γ(px+q) - ln Γ(px) - ln Γ(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(xm+v),
        # summed with the weights; terms in x alone once per distinct frequency.
        p, q, v = params
        w, x, m, xu, wx, s_xlogxm, s_logm = data
        pxu = p * xu
        log_xmv = np.log(x * m + v)
        wt = w.sum()
        wpxq = w * (p * x + q)
        total = (dot(wx, gammaln(pxu + q) - gammaln(pxu)) - wt * (gammaln(q) - q * np.log(v))
                 + p * s_xlogxm - s_logm - dot(wpxq, log_xmv))
        dg_pq = digamma(pxu + q)
        grad = np.array([
            dot(wx * xu, dg_pq - digamma(pxu)) + s_xlogxm - dot(w * x, log_xmv),
            dot(wx, dg_pq) - wt * (digamma(q) - np.log(v)) - dot(w, log_xmv),
            wt * q / v - dot(wpxq, 1 / (x * m + v)),
        ])
        return total, grad

    @property
    def mean_spend_(self) -> float:
        """Population mean spend per order, p·v/(q-1) (yuan)."""
        p, q, v = self._values()
        if q <= 1:
            raise ModelError(f"Gamma-Gamma fitted q = {q:.3g} ≤ 1, so mean spend is unbounded; "
                             f"check the spend data for extreme orders.")
        return p * v / (q - 1)

    def expected_spend(self, frequency, monetary) -> np.ndarray:
        """E(spend per order | x repeat purchases with mean value monetary): a weighted mean
        of the member's own mean and the population mean (FHL 2005 eq. 5)."""
        x, m = _check_spend(frequency, monetary)
        p, q, v = self._values()
        prior = self.mean_spend_
        return (q - 1) / (p * x + q - 1) * prior + p * x / (p * x + q - 1) * np.where(x > 0, m, 0.0)

    def expected_spend_with_gradient(self, frequency, monetary) -> tuple[np.ndarray, np.ndarray]:
        """``expected_spend`` and its derivatives in ln θ for θ = (p, q, v), stacked on a first axis.

        With D = px + q - 1, E = p(v + x·m) / D, so d E/d ln p = E(q-1)/D,
        d E/d ln q = -E·q/D and d E/d ln v = p·v/D: exact, and in one pass
        over the members instead of a finite difference per parameter.
        """
        x, m = _check_spend(frequency, monetary)
        p, q, v = self._values()
        self.mean_spend_  # q > 1, or one clear error
        inv_d = 1.0 / (p * x + q - 1.0)
        spend = np.where(x > 0, m, 0.0)
        spend *= x
        spend += v
        spend *= p
        spend *= inv_d  # E = p(v + x·m) / D
        grad = np.empty((3,) + spend.shape)
        np.multiply(spend, inv_d, out=grad[0])
        np.multiply(grad[0], -q, out=grad[1])
        grad[0] *= q - 1.0
        np.multiply(inv_d, p * v, out=grad[2])
        return spend, grad
