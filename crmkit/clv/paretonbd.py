"""Pareto/NBD: Poisson purchasing for an exponentially distributed lifetime.

References
----------
Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting Your
Customers: Who Are They and What Will They Do Next? *Management Science*
33(1), 1-24.

Fader, P. S. & Hardie, B. G. S. (2005). A Note on Deriving the Pareto/NBD
Model and Related Expressions. http://brucehardie.com/notes/009/
"""
from __future__ import annotations

import numpy as np
from scipy.special import exprel, gammaln, hyp2f1

from ..rfm import unique_rows
from ._base import _HUGE, _TINY, NO_DROPOUT, RepeatBuyingModel, dot, join_limits, nbd_moments, rate_limits

#: Gauss-Legendre rule on [0, 1] for P(purchase within t | alive).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(48)
_NODES, _WEIGHTS = (_NODES + 1) / 2, _WEIGHTS / 2


def _log_hyp2f1_c_is_a_plus_1(a, b, z):
    """ln ₂F₁(a, b; a+1; z) for 0 ≤ z < 1, via Euler's transformation.

    ₂F₁(a, b; a+1; z) = (1-z)^(1-b) ₂F₁(1, a+1-b; a+1; z); the right-hand
    series stays moderate where the left one overflows (large a, z near 1).
    """
    return (1 - b) * np.log1p(-z) + np.log(hyp2f1(1.0, a + 1 - b, a + 1, z))


class ParetoNBD(RepeatBuyingModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    While active, a member buys as a Poisson process with rate λ ~ Gamma(r,
    alpha); their lifetime is exponential with rate μ ~ Gamma(s, beta).
    Likelihood and predictions follow Fader & Hardie's 2005 note, in logs.
    """

    name = "pareto"
    label = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")
    _simpler = "nbd"

    def _initial(self, data):
        weights, x, tx, T = data[:4]
        rate = max(dot(weights, x), 1.0) / max(dot(weights, T), 1e-9)
        mean_t = max(dot(weights, T) / weights.sum(), 1e-9)
        return np.array([1.0, 1.0 / rate, 1.0, mean_t])

    def _moment_start(self, data):
        weights, x, tx, T = data[:4]
        r, alpha = nbd_moments(weights, x, T)
        return np.array([r, alpha, 1.0, 2 * max(dot(weights, T) / weights.sum(), 1e-9)])

    def _limits(self, params):
        # s → 0, or beta/s (the mean lifetime) → ∞: no dropout, the NBD remains; s, beta → ∞ with s/beta
        # fixed: every member drops out at the same rate; r, alpha → ∞: every member buys at the same rate.
        r, alpha, s, beta = params
        if s < _TINY or beta / s > 1e6 * alpha:
            return {"s": "0"} if s < _TINY else {"beta": "∞"}, "nbd", NO_DROPOUT
        same_mu = None
        if s > _HUGE:
            mu = f"{s / beta:.3g}"
            same_mu = ({"s": "∞", "beta": "∞"}, {"en": f"every member appears to drop out at the same rate "
                                                       f"s/β = {mu}", "zh": f"会员的流失速率看来都相同（s/β = {mu}）"})
        found = join_limits(rate_limits(r, alpha), same_mu)
        return None if found is None else (found[0], None, found[1])

    def _prepare(self, w, x, tx, T):
        # The ₂F₁ terms, nearly all of the cost, depend on (x, tx) and on (x, T) alone: there
        # are far fewer distinct pairs than distinct rows (recencies and ages are whole days).
        return w, x, tx, T, unique_rows(x, tx), unique_rows(x, T)

    def _objective(self, params, data):
        w, _x, _tx, _T, ((x1, tx1), at_tx), ((x2, T2), at_T) = data
        alive, gone = self._log_alive_and_gone(params, x2, T2)
        log_a0 = self._log_difference(self._log_a0_term(params, x1, tx1)[at_tx],
                                      self._log_a0_term(params, x2, T2)[at_T])
        return dot(w, np.logaddexp(alive[at_T], gone[at_T] + log_a0)), None

    @staticmethod
    def _log_a0_term(params, x, t):
        """ln of one ₂F₁ term of A₀ (Fader & Hardie's note, eqs. (19)-(20)) at t = tx or T."""
        r, alpha, s, beta = params
        rsx = r + s + x
        big = max(alpha, beta)
        b = s + 1 if alpha >= beta else r + x
        return _log_hyp2f1_c_is_a_plus_1(rsx, b, abs(alpha - beta) / (big + t)) - rsx * np.log(big + t)

    @staticmethod
    def _log_difference(log_t1, log_t2):
        """ln A₀ = ln(e^t1 - e^t2), A₀ being an integral over (tx, T]: ≥ 0, and -inf when tx = T."""
        return log_t1 + np.log(-np.expm1(np.minimum(log_t2 - log_t1, 0.0)))

    def _log_a0(self, params, x, tx, T):
        return self._log_difference(self._log_a0_term(params, x, tx), self._log_a0_term(params, x, T))

    @staticmethod
    def _log_alive_and_gone(params, x, T):
        """ln of the likelihood's term for a member still alive at T, and of the factor of A₀
        in its term for one gone before T (both depend on x and T only)."""
        r, alpha, s, beta = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = a1 - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
        return alive, a1 + np.log(s) - np.log(r + s + x)

    def _loglik(self, params, x, tx, T):
        alive, gone = self._log_alive_and_gone(params, x, T)
        return np.logaddexp(alive, gone + self._log_a0(params, x, tx, T))

    def _log_p_alive(self, params, x, tx, T):
        r, alpha, s, beta = params
        log_odds = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T)
                    + self._log_a0(params, x, tx, T))
        return -np.logaddexp(0.0, log_odds)

    def _expected_if_alive(self, params, t, x, T):
        # (r+x)/(alpha+T) · (beta+T)/(s-1) · [1 - ((beta+T)/(beta+T+t))^(s-1)], written with
        # exprel so that s = 1 (where it becomes a logarithm) needs no special case.
        r, alpha, s, beta = params
        u = np.log1p(t / (beta + T))
        return (r + x) / (alpha + T) * (beta + T) * u * exprel(-(s - 1) * u)

    def _prob_purchase_if_alive(self, params, t, x, T):
        # ∫₀ᵗ E[λ e^(-λu)] E[e^(-μu)] du with u = A(e^v - 1): ∫₀^ln(1+t/A) R e^(-Rv) (B/(B+u))^s dv,
        # R = r+x, A = alpha+T, B = beta+T; Gauss-Legendre in v.
        r, alpha, s, beta = params
        big_r, big_a, big_b = r + x, alpha + T, beta + T
        vmax = np.log1p(t / big_a)[..., None]
        v = vmax * _NODES
        u = big_a[..., None] * np.expm1(v)
        f = big_r[..., None] * np.exp(-big_r[..., None] * v
                                      - s * np.log1p(u / big_b[..., None]))
        return np.einsum("...k,k->...", f * vmax, _WEIGHTS)
