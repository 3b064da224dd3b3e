"""BG/BB: buy-till-you-die for discrete transaction opportunities.

Reference
---------
Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). Customer-Base Analysis in a
Discrete-Time Noncontractual Setting. *Marketing Science* 29(6), 1086-1108.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp

from ..errors import InputError
from ._base import MLEModel, as_float_arrays, first_bad


def _check_opportunities(frequency, recency, n_periods) -> list[np.ndarray]:
    x, tx, n = as_float_arrays(frequency, recency, n_periods)
    checks = (
        (~np.isfinite(x + tx + n), "frequency, recency and n_periods must be finite"),
        ((x != np.round(x)) | (tx != np.round(tx)) | (n != np.round(n)),
         "frequency, recency and n_periods count opportunities and must be whole numbers"),
        ((x < 0) | (tx < x) | (n < tx), "BG/BB needs 0 ≤ frequency ≤ recency ≤ n_periods"),
        ((x == 0) & (tx > 0), "recency must be 0 when frequency is 0"),
    )
    for bad, message in checks:
        if bad.any():
            raise InputError(f"{message} ({first_bad(bad)}).")
    return [x, tx, n]


class BetaGeoBetaBinom(MLEModel):
    """BG/BB model (Fader, Hardie & Shang 2010).

    At each of ``n_periods`` discrete opportunities an active member
    transacts with probability p ~ Beta(alpha, beta), and drops out before
    the next one with probability θ ~ Beta(gamma, delta). A member's data
    are ``frequency`` (opportunities with a transaction), ``recency`` (the
    opportunity of the last one, 0 if none) and ``n_periods``.
    """

    name = "bgbb"
    label = "BG/BB"
    param_names = ("alpha", "beta", "gamma", "delta")

    def fit(self, frequency, recency, n_periods, weights=None):
        """Fit on member rows, or on compressed rows with ``weights``; returns self."""
        return self._fit_rows(_check_opportunities(frequency, recency, n_periods), weights)

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on ``frequency, recency, n_periods`` (and ``weight``) columns."""
        weights = summary["weight"] if "weight" in summary.columns else None
        return self.fit(summary["frequency"], summary["recency"], summary["n_periods"], weights)

    def _initial(self, data):
        return np.ones(4)

    def _loglik(self, params, x, tx, n):
        # FHS (2010) eq. (5): alive through n, or dropped out after opportunity tx + i.
        alpha, beta, gamma, delta = params
        base = betaln(alpha, beta) + betaln(gamma, delta)
        alive = betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n) - base
        i = np.arange(int((n - tx).max()))
        gone = (betaln(alpha + x[:, None], beta + tx[:, None] - x[:, None] + i)
                + betaln(gamma + 1, delta + tx[:, None] + i) - base)
        gone = np.where(i < (n - tx)[:, None], gone, -np.inf)
        return logsumexp(np.column_stack([alive, gone]), axis=1)

    def p_alive(self, frequency, recency, n_periods) -> np.ndarray:
        """P(the member is still active at opportunity n_periods + 1)."""
        x, tx, n = _check_opportunities(frequency, recency, n_periods)
        alpha, beta, gamma, delta = self._values()
        log_joint = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
                     + betaln(gamma, delta + n + 1) - betaln(gamma, delta))
        return np.exp(log_joint - self._loglik(self._values(), *(v.ravel() for v in (x, tx, n))).reshape(x.shape))

    def expected_purchases(self, t, frequency, recency, n_periods) -> np.ndarray:
        """Expected transactions over the next ``t`` opportunities (FHS 2010 eq. 13)."""
        x, tx, n = _check_opportunities(frequency, recency, n_periods)
        t, x, tx, n = as_float_arrays(t, x, tx, n)
        alpha, beta, gamma, delta = self._values()
        ll = self._loglik(self._values(), *(v.ravel() for v in (x, tx, n))).reshape(x.shape)
        front = np.exp(betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
                       + gammaln(gamma + delta) - gammaln(1 + delta) - ll)
        # δ/(γ-1) and the difference below change sign together at γ = 1
        return front * delta / (gamma - 1) * (np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n))
                                              - np.exp(gammaln(1 + delta + n + t) - gammaln(gamma + delta + n + t)))

    def expected_purchases_new(self, n) -> np.ndarray:
        """E[X(n)]: expected transactions over the first ``n`` opportunities (FHS 2010 eq. 7)."""
        alpha, beta, gamma, delta = self._values()
        n = np.asarray(n, dtype=float)
        ratio = np.exp(gammaln(gamma + delta) - gammaln(gamma + delta + n)
                       + gammaln(1 + delta + n) - gammaln(1 + delta))
        return alpha / (alpha + beta) * delta / (gamma - 1) * (1 - ratio)
