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

Several starts. The data-driven start comes first; when its climb ends in a
clean interior maximum (gradient below 1e-5 per member, Hessian positive
definite) that is the fit, at the cost of one climb. Otherwise the model's
other starts (the first scaled by 1/10 and 10, a moment-based one) are
climbed too and the best interior maximum kept. ``start_`` names the
winning start and ``starts_`` records each start's log-likelihood, its
iterations and whether it converged; ``converged_`` is the winning climb's
own test (an interior maximum reached by the criteria of :meth:`MLEModel._climb`)
and ``n_iter_`` its iterations.

Iterations. ``max_iter`` bounds each climb: the BFGS iterations (Nelder-Mead,
when BFGS stalls, gets 20 times as many of its cheaper ones) and the Newton
steps (at most ``min(20, max_iter)``). When no start reaches an interior
maximum and a climb was stopped by that bound, the fit is returned where
the best climb stopped with ``converged_`` False, ``fit_note_`` saying so
and a :class:`sklearn.exceptions.ConvergenceWarning`, as scikit-learn's
estimators do; no limit is named, since a climb cut short cannot tell one.

scikit-learn. Every model is a :class:`sklearn.base.BaseEstimator`: its one
hyper-parameter, ``max_iter``, is set in ``__init__`` and stored as given
(``get_params``, ``set_params`` and :func:`sklearn.clone` work), fitted
attributes end in ``_`` and ``fit`` returns the model. A method that needs a
fit raises :class:`ModelNotFitted` before one: both sklearn's
:class:`~sklearn.exceptions.NotFittedError` and a :class:`crmkit.errors.ModelError`.
The inputs are not sklearn's ``X`` (an RFM summary's columns, not a feature
matrix), so sklearn's ``check_estimator`` does not apply.

Boundaries. A likelihood may have no interior maximum: its supremum lies at
a limit of the parameters. Each model names its limits (``_limits``). A
limit that leaves the model, such as BG/NBD's a → 0 (nobody drops out),
raises :class:`crmkit.errors.NoInteriorMaximum`, naming the simpler model
the limit is (the NBD, :mod:`crmkit.clv.nbd`), which
:func:`crmkit.clv.fit_with_fallback` then fits. A limit inside the model,
such as Pareto/NBD's s, β → ∞ with s/β fixed (every member drops out at the
same rate), is reported at the point where the climb stalled, whose
likelihood is within rounding of the supremum: ``converged_`` is False,
``boundary_`` names the limit and ``fit_note_`` says it in plain words.
"""
from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import ndtri
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError, ModelError, NoInteriorMaximum
from ..rfm import unique_rows

#: Newton step on the log-parameters small enough to stop after taking it: Newton converges
#: quadratically, so what remains is about its square (or the ~1e-8 rounding noise of a
#: numerical gradient).
_NEWTON_TOL = 1e-6
#: Most Newton steps after the quasi-Newton search (fewer when ``max_iter`` is smaller).
_MAX_NEWTON = 20
#: Nelder-Mead, the fallback when BFGS stalls, may take this many times ``max_iter`` iterations.
_NM_ITER_FACTOR = 20
#: A Newton step this short that gains nothing within rounding is at the optimum, not on a ridge
#: (a ridge towards a limit has little curvature along it, so its Newton steps are long).
_SHORT_STEP = 1e-4
#: Largest gradient of the mean negative log-likelihood per member (in the log-parameters) at a maximum.
_GRAD_TOL = 1e-5
#: Newton decrement (twice the mean log-likelihood per member still to gain) small enough to stop.
_DECREMENT_TOL = 1e-12
#: 95% point of χ² with one degree of freedom.
_LR_95 = 3.841

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


class ModelNotFitted(NotFittedError, ModelError):
    """A model used before it is fitted: sklearn's ``NotFittedError`` and, in one sentence, a ``ModelError``."""


class MLEModel(BaseEstimator):
    """Base of every model: weighted maximum likelihood on log-parameters, a scikit-learn estimator.

    Subclasses declare ``name``, ``label`` and ``param_names``, give a starting
    point with ``_initial(data)``, and either the per-row log-likelihood
    ``_loglik(params, *cols)`` (the gradient is then numerical) or, with
    ``has_gradient = True``, ``_objective(params, data)``: the weighted total
    and its analytic gradient. ``_prepare(w, *cols)`` builds ``data`` once per
    fit (e.g. the distinct frequencies, so that terms in x alone are computed
    once per value). Optional: ``_moment_start(data)``, another start;
    ``_check_data(w, *cols)``, one sentence on data with nothing to fit;
    ``_limits(params)``, the boundaries a stalled fit can be heading for.

    Hyper-parameter: ``max_iter``, the bound on each climb's iterations (see
    the module docstring); subclasses add none, so ``__init__`` is this one.

    Fitted attributes: ``params_``, ``standard_errors_``, ``log_params_cov_``,
    ``log_likelihood_``, ``n_members_``, ``n_rows_``, ``converged_`` (the
    winning climb met its convergence criteria at an interior maximum: a bool),
    ``n_iter_`` (its iterations), ``start_`` and ``starts_`` (the winning
    start and every start's record), ``boundary_`` (None, or the limit the
    fit is reported at), ``fallback_from_`` (None, or the model this one
    replaces, set by :func:`crmkit.clv.fit_with_fallback`) and ``fit_note_``
    (None, or a plain-words sentence in ``"zh"`` and ``"en"``).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    has_gradient: ClassVar[bool] = False

    def __init__(self, *, max_iter: int = 1000):
        self.max_iter = max_iter

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return super().__repr__()  # sklearn's: the hyper-parameters that differ from their defaults
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
    def _starts(self, data: tuple) -> list[tuple[str, np.ndarray]]:
        """Named starting points, the data-driven one first.

        The others are tried only when the first does not lead to a clean
        interior maximum: the data-driven start scaled down and up tenfold
        (other shapes, same means), and the model's moment-based start if it
        has one.
        """
        first = np.asarray(self._initial(data), dtype=float)
        starts = [("data", first), ("data/10", first / 10), ("data*10", first * 10)]
        moments = self._moment_start(data)
        if moments is not None:
            starts.append(("moments", np.asarray(moments, dtype=float)))
        return starts

    def _moment_start(self, data: tuple) -> np.ndarray | None:
        return None

    def _check_data(self, w: np.ndarray, *cols: np.ndarray) -> None:
        """Raise one sentence naming why these data cannot be fitted, before optimising (subclasses)."""

    def _limits(self, params: np.ndarray) -> tuple[dict[str, str], str | None, dict[str, str]] | None:
        """Where a stalled fit is heading: (limits, fallback, cause) or None when it is no known limit.

        ``limits`` maps parameters to "0" or "∞"; ``fallback`` is the simpler
        model the limit is (``"nbd"``) when the limit leaves the model, else
        None (a limit inside the model, e.g. all members alike); ``cause`` is
        the plain-words reason, a clause: ``{"en": ..., "zh": ...}``.
        """
        return None

    #: The model this one becomes without dropout (the NBD for the BTYD models), or None.
    _simpler: ClassVar[str | None] = None

    def _check_simpler(self, cols, w, ll: float, limit) -> None:
        """At a limit inside the model, raise :class:`NoInteriorMaximum` pointing to the simpler model
        when that fits about as well: twice the log-likelihood gained over it below 3.84, the 95%
        point of χ² with one degree of freedom (a likelihood-ratio test; conservative at a boundary)."""
        from .fallback import FALLBACKS

        try:
            simpler = FALLBACKS[self._simpler](max_iter=self.max_iter)._fit_rows(cols, w)
        except ModelError:
            return
        gain = ll - simpler.log_likelihood_
        if 2 * gain < _LR_95:
            limits, cause = limit
            where = ", ".join(f"{k} → {v}" for k, v in limits.items())
            raise NoInteriorMaximum(
                f"{self.label} has no interior maximum: the best fit is at {where} ({cause['en']}), and the "
                f"{simpler.label} without dropout fits as well (log-likelihood {gain:.2g} lower).",
                model=self.name, limits=limits, fallback=self._simpler, log_likelihood=ll, cause=cause)

    def _limit_note(self, limits: dict[str, str], cause: dict[str, str]) -> dict[str, str]:
        """Plain-words note (zh, en) for a fit reported at a limit inside the model."""
        where = ", ".join(f"{k} → {v}" for k, v in limits.items())
        return {"zh": f"{self.label} 的最优解在参数边界（{where}）：{cause['zh']}；结果按此极限给出。",
                "en": f"{self.label}'s best fit is at a limit ({where}): {cause['en']}; the results are those "
                      f"of that limit."}

    def _iteration_note(self) -> dict[str, str]:
        """Plain-words note (zh, en) for a fit stopped by ``max_iter`` before it converged."""
        return {"zh": f"{self.label} 在迭代上限（max_iter = {self.max_iter}）内未收敛：结果是优化停下之处，"
                      f"不是似然的最大值；请增大 max_iter。",
                "en": f"{self.label} did not converge within its iteration limit (max_iter = {self.max_iter}): "
                      f"the results are where the climb stopped, not a maximum of the likelihood; raise max_iter."}

    def _check_max_iter(self) -> None:
        it = self.max_iter
        if isinstance(it, bool) or not isinstance(it, numbers.Integral) or it < 1:
            raise ModelError(f"max_iter must be a whole number of iterations ≥ 1, not {it!r}.")

    def _fit_rows(self, cols: Sequence[np.ndarray], weights=None):
        """Fit on member rows (``weights=None``, compressed here) or on weighted rows."""
        self._check_max_iter()
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
        self._check_data(w, *cols)
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

        theta, hess, start, records, limit, converged = self._optimise(value, value_grad, self._starts(data), total)
        if limit is not None and self._simpler is not None:
            self._check_simpler(cols, w, float(-value(theta) * total), limit)
        self.params_ = dict(zip(self.param_names, np.exp(theta).tolist()))
        self.log_params_cov_ = _covariance(hess) / total
        se = np.sqrt(np.diag(self.log_params_cov_)) * np.exp(theta)
        self.standard_errors_ = dict(zip(self.param_names, se.tolist()))
        self.log_likelihood_ = float(-value(theta) * total)
        self.n_members_ = int(total) if float(total).is_integer() else float(total)
        self.n_rows_ = int(w.size)
        self.start_ = start
        self.starts_ = records
        self.n_iter_ = next(r["n_iter"] for r in records if r["start"] == start)
        self.boundary_ = None if limit is None else dict(limit[0])
        self.converged_ = converged
        self.fallback_from_ = None
        self.fit_note_ = (self._limit_note(*limit) if limit is not None
                          else None if converged else self._iteration_note())
        if limit is None and not converged:
            warnings.warn(self.fit_note_["en"], ConvergenceWarning, stacklevel=3)
        return self

    def _optimise(self, value, value_grad, starts, total):
        """The best maximum over ``starts``: (theta, Hessian, winning start, start records, limit, converged).

        Each start is climbed by :meth:`_climb`. When the first start reaches a
        clean interior maximum (gradient negligible, Hessian positive
        definite) the others are not run: that is the common case, and it
        costs one climb. Otherwise the other starts are climbed (until two
        stalled climbs agree on a limit) and the best interior maximum kept,
        unless a stalled climb went higher: then the supremum is at a
        boundary, which :meth:`_limits` names. A limit that
        leaves the model (no dropout) raises :class:`NoInteriorMaximum`; a
        limit inside it (all members alike in one respect) is returned as
        ``limit`` = (limits, cause) and reported at the stalled point, whose
        likelihood is within rounding of the supremum. When no start reaches an
        interior maximum and ``max_iter`` stopped a climb, the best point
        reached is returned, not converged and at no limit: a climb cut short
        cannot tell where the best fit is.
        """
        records, results, stalled_at = [], [], []
        for i, (name, theta0) in enumerate(starts):
            theta0 = np.log(theta0)
            record = {"start": name, "initial": dict(zip(self.param_names, np.exp(theta0).tolist())),
                      "log_likelihood": None, "converged": False, "n_iter": 0}
            records.append(record)
            if not (np.all(np.isfinite(theta0)) and np.isfinite(value(theta0))):
                continue
            theta, hess, ok, n_iter, cut_short = self._climb(value, value_grad, theta0)
            f = value(theta)
            if not (np.all(np.isfinite(theta)) and np.isfinite(f)):
                continue
            record.update(log_likelihood=float(-f * total), converged=ok, n_iter=n_iter)
            results.append((f, ok, theta, hess, name, cut_short))
            if i == 0 and ok:
                break
            if not ok:
                limit = None if cut_short else self._limits(np.exp(theta))
                if limit is not None and limit[0] in stalled_at:
                    break  # a second start stalled at the same limit: the climbs agree on where the best fit is
                stalled_at.append(None if limit is None else limit[0])
        if not results:
            raise ModelError(f"{self.label} cannot be fitted: the likelihood is not finite at any starting "
                             f"point; check that the data are a valid RFM summary.")
        best = min(results, key=lambda r: r[0])
        interior = [r for r in results if r[1]]
        tol = 1e-9 * max(1.0, abs(best[0]))
        if interior:
            top = min(interior, key=lambda r: r[0])
            if top[0] <= best[0] + tol:
                return top[2], top[3], top[4], records, None, top[1]
        f, _, theta, hess, name, _ = best
        if any(r[5] for r in results):
            return theta, hess, name, records, None, False
        limit = self._limits(np.exp(theta))
        ll = float(-f * total)
        if limit is None:
            raise ModelError(f"{self.label} did not converge to a maximum of the likelihood from any of "
                             f"{len(records)} starting points; the data may not follow the model, try another model.")
        limits, fallback, cause = limit
        where = ", ".join(f"{k} → {v}" for k, v in limits.items())
        if fallback is not None:
            from .fallback import FALLBACKS

            raise NoInteriorMaximum(f"{self.label} has no interior maximum: the best fit is at {where} "
                                    f"({cause['en']}), where it becomes the {FALLBACKS[fallback].label} model "
                                    f"without dropout.",
                                    model=self.name, limits=limits, fallback=fallback, log_likelihood=ll, cause=cause)
        return theta, hess, name, records, (limits, cause), False

    def _climb(self, value, value_grad, theta0: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, int, bool]:
        """BFGS from ``theta0`` (Nelder-Mead if BFGS stalls), then Newton steps to a tight optimum.

        Returns the point reached, the Hessian of ``value`` there, whether it
        is a clean interior minimum of ``value`` (the criteria: the Newton step
        on the log-parameters below 1e-6 or a Newton decrement below 1e-12 per
        member, or no decrease left within rounding for a step below 1e-4, with
        the gradient below 1e-5 per member and the Hessian positive definite),
        the iterations taken (quasi-Newton, then Newton) and whether
        ``max_iter`` cut the climb short: it did not converge, and the search
        used all its iterations or the Newton steps (fewer than 20) ran out.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            options = {"maxiter": self.max_iter, "gtol": 1e-6}
            hess0 = self._hessian(value_grad, theta0, value_grad(theta0)[1], value)
            if _cholesky(hess0) is not None:  # positive definite: BFGS starts with the true curvature
                inv = np.linalg.inv(hess0)
                options["hess_inv0"] = (inv + inv.T) / 2
            res = minimize(value_grad, theta0, jac=True, method="BFGS", options=options)
            theta, n_iter, bounded = res.x, res.nit, res.nit >= self.max_iter
            if not (np.all(np.isfinite(theta)) and np.isfinite(res.fun)) or np.abs(res.jac).max() > 1e-3:
                nm_iter = _NM_ITER_FACTOR * self.max_iter
                nm = minimize(value, theta0, method="Nelder-Mead",
                              options={"maxiter": nm_iter, "xatol": 1e-10, "fatol": 1e-14})
                n_iter += nm.nit
                if np.isfinite(nm.fun) and not (np.isfinite(res.fun) and res.fun <= nm.fun):
                    theta, bounded = nm.x, nm.nit >= nm_iter
            newton_iter = min(_MAX_NEWTON, self.max_iter)
            ok, steps = False, 0
            for steps in range(1, newton_iter + 1):
                f, g = value_grad(theta)
                hess = self._hessian(value_grad, theta, g, value)
                step = _newton_step(hess, g)
                if step is None:
                    break
                size = np.abs(step).max()
                # the Newton decrement gᵀH⁻¹g bounds what is left to gain: on a flat ridge the step
                # can stay above _NEWTON_TOL (gradient rounding over a small curvature) with nothing left
                if size < _NEWTON_TOL or -dot(g, step) < _DECREMENT_TOL:
                    new = theta + step
                    if value(new) <= f + 1e-13 * max(1.0, abs(f)):
                        theta = new
                    ok = bool(np.abs(g).max() < _GRAD_TOL)
                    break
                theta_new = _backtrack(value, theta, step, f)
                if theta_new is None:  # no decrease left: at the optimum within rounding, or stuck
                    ok = bool(size < _SHORT_STEP and np.abs(g).max() < _GRAD_TOL)
                    break
                gain, theta = f - value(theta_new), theta_new
                if gain < _DECREMENT_TOL:
                    # a step that gains nothing: at the optimum when the step is short (its decrement
                    # just above the tolerance), else creeping along a ridge towards a limit
                    ok = bool(size < _SHORT_STEP and np.abs(g).max() < _GRAD_TOL)
                    break
            else:  # the Newton steps ran out
                bounded = bounded or newton_iter < _MAX_NEWTON
            return theta, hess, ok, int(n_iter + steps), not ok and bounded

    def _hessian(self, value_grad, theta: np.ndarray, grad: np.ndarray, value=None) -> np.ndarray:
        """Hessian of the objective: forward differences of an analytic gradient, else second
        differences of ``value`` (1 + 2n² evaluations, against 4n² + 2n for central differences of
        a numerical gradient, and with less rounding noise)."""
        if not self.has_gradient and value is not None:
            hess = _value_hessian(value, theta)
            if np.all(np.isfinite(hess)):
                return hess
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
        """The fitted parameters in ``param_names`` order; :class:`ModelNotFitted` before a fit."""
        try:
            check_is_fitted(self, "params_")
        except NotFittedError:
            raise ModelNotFitted(f"this {self.label} model ({type(self).__name__}) is not fitted yet; "
                                 f"call fit() or fit_summary() first.") from None
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
            "n_iter": getattr(self, "n_iter_", None),
            "start": getattr(self, "start_", None),
            "starts": [dict(s) for s in getattr(self, "starts_", [])],
            "boundary": getattr(self, "boundary_", None),
            "fallback_from": getattr(self, "fallback_from_", None),
            "fit_note": getattr(self, "fit_note_", None),
        }

    def summary(self, interval: float = 0.95) -> pd.DataFrame:
        """Parameters with standard errors and a Wald interval on the log scale."""
        self._values()
        z = ndtri(0.5 + interval / 2)
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


def _value_hessian(f, theta: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Hessian of ``f`` at ``theta`` by central second differences of its values (step ``h``)."""
    n = theta.size
    f0 = f(theta)
    step = np.eye(n) * h
    plus = np.array([f(theta + step[i]) for i in range(n)])
    minus = np.array([f(theta - step[i]) for i in range(n)])
    hess = np.diag((plus - 2 * f0 + minus) / h ** 2)
    if not np.all(np.isfinite(hess)):
        return hess  # the likelihood cannot be evaluated all around theta: the caller falls back
    for i in range(n):
        for j in range(i + 1, n):
            hess[i, j] = hess[j, i] = (f(theta + step[i] + step[j]) - f(theta + step[i] - step[j])
                                       - f(theta - step[i] + step[j]) + f(theta - step[i] - step[j])) / (4 * h * h)
    return hess


def _covariance(hess: np.ndarray) -> np.ndarray:
    """Inverse of the Hessian; at a limit, where it is singular along a ridge, the inverse of
    its positive part (the ridge, along which nothing the model predicts changes, gets no variance)."""
    if _cholesky(hess) is not None:
        return np.linalg.inv(hess)
    if not np.all(np.isfinite(hess)):
        return np.full_like(hess, np.nan)
    vals, vecs = np.linalg.eigh((hess + hess.T) / 2)
    keep = vals > 1e-8 * max(vals.max(), 1e-300)
    return (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T


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


#: Beyond these, a stalled fit's parameter is read as running off to 0 or ∞ (only consulted when
#: no start reached an interior maximum).
_TINY, _HUGE = 1e-3, 50.0


def nbd_moments(w: np.ndarray, x: np.ndarray, T: np.ndarray) -> tuple[float, float]:
    """Moment estimates of the NBD's (r, alpha) from repeat purchases x in time T.

    With λ ~ Gamma(r, alpha) and x | λ ~ Poisson(λT), the rate y = x/T has
    mean r/alpha and variance r/alpha² + (r/alpha)·E[1/T]; a variance no
    larger than the Poisson part gives r = 10 (nearly alike members).
    """
    pos = T > 0
    w, x, T = w[pos], x[pos], T[pos]
    if w.sum() <= 0:
        return 1.0, 1.0
    y = x / T
    mean = max(dot(w, y) / w.sum(), 1e-6)
    var = dot(w, (y - mean) ** 2) / w.sum()
    extra = var - mean * dot(w, 1 / T) / w.sum()
    r = mean ** 2 / extra if extra > 0 else 10.0
    r = float(np.clip(r, 1e-2, 10.0))
    return r, r / mean


def rate_limits(r: float, alpha: float) -> tuple[dict[str, str], dict[str, str]] | None:
    """The purchase-rate limit r, alpha → ∞ (Poisson: all members buy at the same rate), if reached."""
    if r > _HUGE:
        rate = f"{r / alpha:.3g}"
        return {"r": "∞", "alpha": "∞"}, {"en": f"every member appears to buy at the same rate r/α = {rate}",
                                           "zh": f"会员的购买频率看来都相同（r/α = {rate}）"}
    return None


def join_limits(*found) -> tuple[dict[str, str], dict[str, str]] | None:
    """Several (limits, cause) pairs as one, or None when there are none."""
    found = [f for f in found if f is not None]
    if not found:
        return None
    limits = {k: v for lim, _ in found for k, v in lim.items()}
    return limits, {"en": "; ".join(c["en"] for _, c in found), "zh": "；".join(c["zh"] for _, c in found)}


NO_DROPOUT = {"en": "members do not appear to drop out", "zh": "会员看来不会流失"}


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

    def _check_data(self, w, x, tx, T):
        """One sentence naming why the summary holds nothing to fit, if it does not."""
        if w.sum() <= 1:
            raise ModelError(f"{self.label} cannot be fitted on a single member: how members differ cannot "
                             f"be estimated from one.")
        if not np.any(x > 0) and np.all(T == T[0]):
            day = " (the as-of date)" if T[0] == 0 else ""
            raise ModelError(f"{self.label} cannot be fitted: all purchases fall on one day{day}, so there is no "
                             f"repeat-purchase information to fit.")
        if not np.any(T > 0):
            raise ModelError(f"{self.label} cannot be fitted: every member's first purchase falls on the as-of "
                             f"date, so there is no time after it in which to see repeat purchases (zero total time).")
        if not np.any(x > 0):
            raise ModelError(f"{self.label} cannot be fitted: no member has made a repeat purchase, so there is "
                             f"no repeat-purchase information to fit.")

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
