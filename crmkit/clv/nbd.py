"""NBD: Poisson purchasing with gamma-distributed rates and no dropout.

The model the BG/NBD, MBG/NBD and Pareto/NBD become when nobody drops out
(BG/NBD a → 0, Pareto/NBD s → 0): every member stays a customer, so
P(alive) = 1. It is the fallback when those models have no interior
maximum because the data show no dropout (:func:`crmkit.clv.fit_with_fallback`).

A member buys as a Poisson process with rate λ ~ Gamma(r, alpha), so the
repeat purchases x in the T periods since the first purchase are negative
binomial. The likelihood of (x, tx, T) is taken, as in the BTYD models,
with the purchase times' density, Γ(r+x)/Γ(r) · alpha^r / (alpha+T)^(r+x)
(the times of the x purchases are uniform given x, free of the parameters),
so that its log-likelihood is the limit of theirs and can be compared with
them. Given the history, λ ~ Gamma(r+x, alpha+T), hence

- expected purchases in the next t periods: (r+x)/(alpha+T) · t;
- P(at least one purchase in the next t periods): 1 − ((alpha+T)/(alpha+T+t))^(r+x).

References
----------
Ehrenberg, A. S. C. (1959). The Pattern of Consumer Purchases. *Journal of
the Royal Statistical Society C* 8(1), 26-41.

Morrison, D. G. & Schmittlein, D. C. (1988). Generalizing the NBD Model for
Customer Purchases: What Are the Implications and Is It Worth the Effort?
*Journal of Business & Economic Statistics* 6(2), 145-159.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from ._base import RepeatBuyingModel, dot, nbd_moments, rate_limits


class NBD(RepeatBuyingModel):
    """NBD model (Ehrenberg 1959): gamma-Poisson purchasing, nobody drops out.

    Parameters r and alpha are in the time unit of the data (weeks when
    recency and T are in weeks); r/alpha is the mean purchase rate.

    Example: ``NBD().fit_summary(rfm_summary(con, "2026-06-30")).params_``.
    """

    name = "nbd"
    label = "NBD"
    param_names = ("r", "alpha")
    has_gradient = True

    def _prepare(self, w, x, tx, T):
        xu, xi = np.unique(x, return_inverse=True)
        return w, x, T, xu, np.bincount(xi, w)

    def _initial(self, data):
        w, x, T, *_ = data
        rate = max(dot(w, x), 1.0) / max(dot(w, T), 1e-9)
        return np.array([1.0, 1.0 / rate])

    def _moment_start(self, data):
        w, x, T, *_ = data
        return np.array(nbd_moments(w, x, T))

    def _objective(self, params, data):
        r, alpha = params
        w, x, T, xu, wx = data
        log_at = np.log(alpha + T)
        total = dot(wx, gammaln(r + xu) - gammaln(r)) + w.sum() * r * np.log(alpha) - dot(w * (r + x), log_at)
        grad = np.array([
            dot(wx, digamma(r + xu) - digamma(r)) + w.sum() * np.log(alpha) - dot(w, log_at),
            w.sum() * r / alpha - dot(w * (r + x), 1 / (alpha + T)),
        ])
        return total, grad

    def _limits(self, params):
        found = rate_limits(*params)
        return None if found is None else (found[0], None, found[1])

    def _log_p_alive(self, params, x, tx, T):
        return np.zeros(np.broadcast(x, tx, T).shape)

    def _expected_if_alive(self, params, t, x, T):
        r, alpha = params
        return (r + x) / (alpha + T) * t

    def _prob_purchase_if_alive(self, params, t, x, T):
        r, alpha = params
        return -np.expm1((r + x) * np.log((alpha + T) / (alpha + T + t)))
