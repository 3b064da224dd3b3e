"""BG/NBD: Poisson purchasing with a chance to drop out after each repeat purchase.

Reference
---------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers"
the Easy Way: An Alternative to the Pareto/NBD Model. *Marketing Science*
24(2), 275-284.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from ._base import _HUGE, _TINY, NO_DROPOUT, RepeatBuyingModel, dot, join_limits, nbd_moments, rate_limits


class BetaGeo(RepeatBuyingModel):
    """BG/NBD model (Fader, Hardie & Lee 2005).

    While active, a member buys as a Poisson process with rate λ ~ Gamma(r,
    alpha); after each repeat purchase they drop out with probability
    p ~ Beta(a, b). Parameters are in the time unit of the data (weeks when
    recency and T are in weeks).

    Example: ``BetaGeo().fit_summary(rfm_summary(con, "2026-06-30")).params_``.
    """

    name = "bgnbd"
    label = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")
    has_gradient = True
    _simpler = "nbd"
    #: 0 for the BG/NBD; 1 for the MBG/NBD, where a member may also drop out
    #: right after the first purchase (every index into b shifts by one).
    _shift: ClassVar[int] = 0

    def _prepare(self, w, x, tx, T):
        # Terms in x alone are computed once per distinct frequency, and logs of alpha + T and
        # alpha + tx once per distinct value (there are few: ages and recencies are whole days).
        xu, xi = np.unique(x, return_inverse=True)
        Tu, Ti = np.unique(T, return_inverse=True)
        txu, txi = np.unique(tx, return_inverse=True)
        return w, x, xu, xi, np.bincount(xi, w), Tu, Ti, txu, txi

    def _initial(self, data):
        w, x, *_, Tu, Ti, txu, txi = data
        rate = max(dot(w, x), 1.0) / max(dot(w, Tu[Ti]), 1e-9)
        return np.array([1.0, 1.0 / rate, 1.0, 1.0])

    def _moment_start(self, data):
        w, x, *_, Tu, Ti, txu, txi = data
        r, alpha = nbd_moments(w, x, Tu[Ti])
        return np.array([r, alpha, 1.0, 3.0])

    def _limits(self, params):
        # a → 0, or b → ∞ faster than a: the dropout probability a/(a+b) vanishes, the NBD remains;
        # a, b → ∞ together: every member has the same dropout probability; r, alpha → ∞: the same rate.
        # a, b → 0 together (a/(a+b) fixed): two kinds of members, those who drop out at the first chance
        # and those who never do.
        r, alpha, a, b = params
        same_p = None
        if a < _TINY and b < _TINY:
            share = f"{a / (a + b):.3g}"
            same_p = ({"a": "0", "b": "0"}, {
                "en": f"members appear to be of two kinds, a share a/(a+b) = {share} who drop out at their first "
                      f"chance and the rest who never do",
                "zh": f"会员看来分两类：约 {share} 的会员一有机会就流失，其余从不流失"})
        elif a < _TINY or (b > 1 / _TINY and a / (a + b) < _TINY):
            return {"a": "0"} if a < _TINY else {"b": "∞"}, "nbd", NO_DROPOUT
        elif a > _HUGE and b > _HUGE:
            p = f"{a / (a + b):.3g}"
            same_p = ({"a": "∞", "b": "∞"}, {"en": f"every member appears to have the same dropout probability "
                                                   f"a/(a+b) = {p}", "zh": f"会员每次购买后的流失概率看来都相同（{p}）"})
        found = join_limits(rate_limits(r, alpha), same_p)
        return None if found is None else (found[0], None, found[1])

    def _objective(self, params, data):
        # ln L = A1 + A2 + A3 + ln(1 + exp(d)), d = A4 - A3 (FHL 2005 eq. 6 in logs), where
        # A1 + A2 depends on x alone, A3 = -(r+x) ln(alpha+T) and, when x + k > 0,
        # A4 = ln a - ln(b+x+k-1) - (r+x) ln(alpha+tx).
        r, alpha, a, b = params
        w, x, xu, xi, wx, Tu, Ti, txu, txi = data
        k = self._shift
        has4 = xu + k > 0
        b4 = np.where(has4, b + xu + k - 1, 1.0)
        bxk, abxk = b + xu + k, a + b + xu + k
        a12 = (gammaln(r + xu) - gammaln(r) + r * np.log(alpha)
               + gammaln(a + b) + gammaln(bxk) - gammaln(b) - gammaln(abxk))
        log_t, log_tx = np.log(alpha + Tu)[Ti], np.log(alpha + txu)[txi]
        rx = r + x
        d = np.where(has4, np.log(a) - np.log(b4), -np.inf)[xi] - rx * (log_tx - log_t)
        soft = np.logaddexp(0.0, d)
        w4 = w * np.exp(d - soft)  # weight times P(the member dropped out after the last purchase)
        w3 = w - w4
        total = dot(wx, a12) + dot(w, soft - rx * log_t)
        grad = np.array([
            dot(wx, digamma(r + xu) - digamma(r) + np.log(alpha)) - dot(w3, log_t) - dot(w4, log_tx),
            w.sum() * r / alpha - dot(w3 * rx, (1 / (alpha + Tu))[Ti]) - dot(w4 * rx, (1 / (alpha + txu))[txi]),
            dot(wx, digamma(a + b) - digamma(abxk)) + w4.sum() / a,
            dot(wx, digamma(a + b) + digamma(bxk) - digamma(b) - digamma(abxk)) - dot(w4, (1 / b4)[xi]),
        ])
        return total, grad

    def _log_p_alive(self, params, x, tx, T):
        r, alpha, a, b = params
        k = self._shift
        has4 = x + k > 0
        log_odds = np.where(
            has4,
            np.log(a) - np.log(np.where(has4, b + x + k - 1, 1.0))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)),
            -np.inf,
        )
        return -np.logaddexp(0.0, log_odds)

    def _expected_if_alive(self, params, t, x, T):
        # FHL (2005) eq. (10) without its P(alive) factor.
        r, alpha, a, b = params
        k = self._shift
        c = a + b + x + k - 1
        hyp = hyp2f1(r + x, b + x + k, c, t / (alpha + T + t))
        return c / (a - 1) * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp)

    def _prob_purchase_if_alive(self, params, t, x, T):
        # an active member stays active until the next purchase: P(no purchase) = E[exp(-λt)]
        r, alpha, _, _ = params
        return -np.expm1((r + x) * np.log((alpha + T) / (alpha + T + t)))

