"""Shared machinery of the customer-base models.

Every model is fitted by maximum likelihood on *compressed* rows: members
with the same sufficient statistics share one row with a weight, which gives
the same likelihood as the member rows at a fraction of the cost. The
optimiser works on log-parameters (all parameters are positive): BFGS with
analytic gradients where the model provides them (central differences
otherwise), started with the curvature at the starting point, then Newton
steps on the numerical Hessian until the step is negligible. Standard errors
come from the inverse Hessian, mapped to the original scale by the delta
method (``se(θ) = θ · se(log θ)``).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import norm

from ..errors import InputError, ModelError
from ..rfm import unique_rows

#: Newton step on the log-parameters small enough to stop after taking it: Newton converges
#: quadratically, so what remains is about its square (or the ~1e-8 rounding noise of a
#: numerical gradient).
_NEWTON_TOL = 1e-6
_MAX_NEWTON = 20

#: Below this many rows, finding the unique ones costs more than evaluating every row.
_DEDUPE_FROM = 10_000


def on_unique(fn, *cols: np.ndarray) -> np.ndarray:
    """``fn(*cols)`` evaluated once per unique row and spread back to every row."""
    if cols[0].size < _DEDUPE_FROM:
        return fn(*cols)
    uniq, inverse = unique_rows(*(c.ravel() for c in cols))
    return fn(*uniq)[inverse].reshape(cols[0].shape)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ aᵢbᵢ without BLAS, whose threads stall vector dot products on a busy machine."""
    return float(np.einsum("i,i->", a, b))


def as_float_arrays(*values) -> list[np.ndarray]:
    """Inputs as broadcast float arrays."""
    return list(np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values)))


def check_weights(weights, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape != (n,):
        raise InputError(f"weights must have one value per row ({n}), not {w.size}.")
    if not np.all(np.isfinite(w) & (w >= 0)) or w.sum() <= 0:
        raise InputError("weights must be finite, non-negative and not all zero.")
    return w


def first_bad(mask: np.ndarray) -> str:
    """``"row 17"``: the first row where ``mask`` is True, 0-based as in the input."""
    return f"row {int(np.flatnonzero(mask.ravel())[0])}"


class MLEModel:
    """Base of every model: weighted maximum likelihood on log-parameters.

    Subclasses declare ``name``, ``label`` and ``param_names``, give a starting
    point with ``_initial(data)``, and either the per-row log-likelihood
    ``_loglik(params, *cols)`` (the gradient is then numerical) or, with
    ``has_gradient = True``, ``_objective(params, data)``: the weighted total
    and its analytic gradient. ``_prepare(w, *cols)`` builds ``data`` once per
    fit (e.g. the distinct frequencies, so that terms in x alone are computed
    once per value).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    has_gradient: ClassVar[bool] = False

    def __init__(self, *, max_iter: int = 1000):
        self.max_iter = max_iter

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"{type(self).__name__}()"
        ps = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"{type(self).__name__}({ps}, n_members={self.n_members_:,})"

    # -- model-specific pieces -------------------------------------------------
    def _prepare(self, w: np.ndarray, *cols: np.ndarray) -> tuple:
        return (w, *cols)

    def _loglik(self, params: np.ndarray, *cols) -> np.ndarray:
        raise NotImplementedError

    def _objective(self, params: np.ndarray, data: tuple) -> tuple[float, np.ndarray | None]:
        """Weighted log-likelihood and its gradient in the parameters (None: numerical)."""
        w, *cols = data
        return dot(w, self._loglik(params, *cols)), None

    def _initial(self, data: tuple) -> np.ndarray:
        raise NotImplementedError

    # -- fitting ------------------------------------------------------------------
    def _fit_rows(self, cols: Sequence[np.ndarray], weights=None):
        """Fit on member rows (``weights=None``, compressed here) or on weighted rows."""
        cols = [np.asarray(c, dtype=float).ravel() for c in cols]
        if weights is None:
            cols, inverse = unique_rows(*cols)
            # sorted, so that the fit does not depend on the order of the members (an engine's
            # group-by returns them in any order): the same data give the same digits
            order = np.lexsort(cols[::-1])
            cols, w = [c[order] for c in cols], np.bincount(inverse).astype(float)[order]
        else:
            w = check_weights(weights, cols[0].size)
            keep = w > 0
            cols, w = [c[keep] for c in cols], w[keep]
        data = self._prepare(w, *cols)
        total = w.sum()

        def value(theta):
            """Mean negative log-likelihood per member."""
            with np.errstate(all="ignore"):
                ll = self._objective(np.exp(theta), data)[0]
            return -ll / total if np.isfinite(ll) else np.inf

        def value_grad(theta):
            """``value`` and its gradient in the log-parameters."""
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                ll, g = self._objective(params, data)
            if not np.isfinite(ll):
                return np.inf, np.zeros_like(theta)
            if g is None:
                return -ll / total, _central_gradient(value, theta)
            return -ll / total, -g * params / total

        theta, hess = self._optimise(value, value_grad, np.log(self._initial(data)))
        self.params_ = dict(zip(self.param_names, np.exp(theta).tolist()))
        self.log_params_cov_ = np.linalg.inv(hess * total)
        se = np.sqrt(np.diag(self.log_params_cov_)) * np.exp(theta)
        self.standard_errors_ = dict(zip(self.param_names, se.tolist()))
        self.log_likelihood_ = float(-value(theta) * total)
        self.n_members_ = int(total) if float(total).is_integer() else float(total)
        self.n_rows_ = int(w.size)
        self.converged_ = True
        return self

    def _optimise(self, value, value_grad, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BFGS from ``theta0`` (Nelder-Mead if BFGS stalls), then Newton steps to a tight optimum.

        Returns the optimum and the Hessian of ``value`` there.
        """
        if not np.isfinite(value(theta0)):
            raise ModelError(f"{self.label} cannot be fitted: the likelihood is not finite at the "
                             f"starting point; check that the data are a valid RFM summary.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            options = {"maxiter": self.max_iter, "gtol": 1e-6}
            hess0 = self._hessian(value_grad, theta0, value_grad(theta0)[1])
            if _cholesky(hess0) is not None:  # positive definite: BFGS starts with the true curvature
                inv = np.linalg.inv(hess0)
                options["hess_inv0"] = (inv + inv.T) / 2
            res = minimize(value_grad, theta0, jac=True, method="BFGS", options=options)
            theta = res.x
            if not (np.all(np.isfinite(theta)) and np.isfinite(res.fun)) or np.abs(res.jac).max() > 1e-3:
                theta = minimize(value, theta0, method="Nelder-Mead",
                                 options={"maxiter": 20 * self.max_iter, "xatol": 1e-10, "fatol": 1e-14}).x
            for _ in range(_MAX_NEWTON):
                f, g = value_grad(theta)
                hess = self._hessian(value_grad, theta, g)
                step = _newton_step(hess, g)
                if step is None:
                    break
                size = np.abs(step).max()
                if size < _NEWTON_TOL:
                    return theta + step, hess
                theta_new = _backtrack(value, theta, step, f)
                if theta_new is None:  # no decrease left: at the optimum within rounding, or stuck
                    if size < 1e-5:
                        return theta, hess
                    break
                theta = theta_new
        raise ModelError(f"{self.label} did not converge to a maximum of the likelihood; the data may not "
                         f"follow the model: try another model or a longer calibration period.")

    def _hessian(self, value_grad, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Hessian of the objective: forward differences of an analytic gradient, else central ones."""
        cols = []
        for j in range(theta.size):
            e = np.zeros_like(theta)
            if self.has_gradient:
                e[j] = 1e-6
                cols.append((value_grad(theta + e)[1] - grad) / e[j])
            else:
                e[j] = 1e-3  # a numerical gradient carries rounding noise of about 1e-10
                cols.append((value_grad(theta + e)[1] - value_grad(theta - e)[1]) / (2 * e[j]))
        hess = np.array(cols)
        return (hess + hess.T) / 2

    # -- fitted values ------------------------------------------------------------
    def _values(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise ModelError(f"{self.label} is not fitted yet; call fit() first.")
        return np.array([self.params_[k] for k in self.param_names])

    def with_params(self, params: dict[str, float]) -> MLEModel:
        """A copy of the fitted model with other parameter values (for scenarios and intervals)."""
        self._values()
        other = copy.copy(self)
        other.params_ = {k: float(params[k]) for k in self.param_names}
        return other

    def as_dict(self) -> dict:
        """Parameters, standard errors and fit statistics, JSON-ready."""
        self._values()
        return {
            "model": self.name,
            "params": dict(self.params_),
            "standard_errors": dict(self.standard_errors_),
            "log_likelihood": self.log_likelihood_,
            "n_members": self.n_members_,
            "n_rows": self.n_rows_,
            "converged": self.converged_,
        }

    def summary(self, interval: float = 0.95) -> pd.DataFrame:
        """Parameters with standard errors and a Wald interval on the log scale."""
        self._values()
        z = norm.ppf(0.5 + interval / 2)
        est = pd.Series(self.params_)
        se = pd.Series(self.standard_errors_)
        spread = np.exp(z * se / est)
        return pd.DataFrame({"estimate": est, "se": se, "low": est / spread, "high": est * spread})


def _central_gradient(f, theta: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.empty_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        g[j] = (f(theta + e) - f(theta - e)) / (2 * h)
    return g


def _cholesky(hess: np.ndarray) -> np.ndarray | None:
    """Cholesky factor of a finite positive definite matrix, else None."""
    if not np.all(np.isfinite(hess)):
        return None
    try:
        return np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return None


def _newton_step(hess: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """``-H⁻¹ g`` when H is positive definite, else None."""
    chol = _cholesky(hess)
    if chol is None:
        return None
    return -np.linalg.solve(chol.T, np.linalg.solve(chol, grad))


def _backtrack(f, theta: np.ndarray, step: np.ndarray, f0: float) -> np.ndarray | None:
    """``theta + step`` halved until the objective does not rise (within rounding)."""
    for _ in range(30):
        cand = theta + step
        if f(cand) <= f0 + 1e-13 * max(1.0, abs(f0)):
            return cand
        step = step / 2
    return None


def check_rfm(frequency, recency, T) -> list[np.ndarray]:
    """(frequency, recency, T) as float arrays, or one sentence on what is wrong with them."""
    x, tx, T = as_float_arrays(frequency, recency, T)
    for name, v in (("frequency", x), ("recency", tx), ("T", T)):
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise InputError(f"{name} must be a finite number ≥ 0 ({first_bad(bad)}).")
    checks = (
        (x != np.round(x), "frequency must be a whole number of repeat purchases"),
        (tx > T * (1 + 1e-12), "recency cannot exceed T"),
        ((x == 0) & (tx > 0), "recency must be 0 when frequency is 0"),
    )
    for bad, message in checks:
        if bad.any():
            raise InputError(f"{message} ({first_bad(bad)}).")
    return [x, tx, T]


class RepeatBuyingModel(MLEModel):
    """Continuous-time buy-till-you-die models of (frequency, recency, T).

    Subclasses provide, on parameter vectors and broadcast float arrays:
    ``_log_p_alive(p, x, tx, T)``; ``_expected_if_alive(p, t, x, T)``, the
    expected purchases in (T, T + t] of a member alive at T; and
    ``_prob_purchase_if_alive(p, t, x, T)``, the chance of at least one. The
    conditional predictions are P(alive) times these, and the last two depend
    on (t, x, T) only, so they are evaluated once per unique combination.
    """

    def fit(self, frequency, recency, T, weights=None):
        """Fit on member rows, or on compressed rows with ``weights``; returns self."""
        return self._fit_rows(check_rfm(frequency, recency, T), weights)

    def fit_summary(self, summary: pd.DataFrame):
        """Fit on the ``frequency, recency, T`` (and ``weight``, if any) columns of an RFM summary."""
        weights = summary["weight"] if "weight" in summary.columns else None
        return self.fit(summary["frequency"], summary["recency"], summary["T"], weights)

    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(the member is still active at T | frequency, recency, T)."""
        p = self._values()
        with np.errstate(divide="ignore"):
            return np.exp(self._log_p_alive(p, *check_rfm(frequency, recency, T)))

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` periods, given the member's history."""
        return self._conditional(self._expected_if_alive, t, frequency, recency, T)

    def prob_purchase_within(self, t, frequency, recency, T) -> np.ndarray:
        """P(at least one purchase in the next ``t`` periods), given the member's history."""
        return self._conditional(self._prob_purchase_if_alive, t, frequency, recency, T)

    def expected_purchases_new(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases in the first ``t`` periods after a first purchase."""
        return self.expected_purchases(t, 0.0, 0.0, 0.0)

    def expected_purchases_if_alive(self, t, frequency, T) -> np.ndarray:
        """Expected purchases in the next ``t`` periods of a member still active at T.

        The conditional expectation is P(alive) times this; it does not depend
        on recency, so forecasts over many horizons (CLV) compute it once per
        unique (frequency, T). Arguments broadcast.
        """
        p = self._values()
        t, x, T = as_float_arrays(t, frequency, T)
        return self._expected_if_alive(p, t, x, T)

    def _conditional(self, if_alive, t, frequency, recency, T) -> np.ndarray:
        p = self._values()
        x, tx, T = check_rfm(frequency, recency, T)
        t, x, tx, T = as_float_arrays(t, x, tx, T)
        if np.any(~np.isfinite(t) | (t < 0)):
            raise InputError("the horizon t must be a finite number of periods ≥ 0.")
        with np.errstate(divide="ignore"):
            alive = np.exp(self._log_p_alive(p, x, tx, T))
        return alive * on_unique(lambda *a: if_alive(p, *a), t, x, T)
