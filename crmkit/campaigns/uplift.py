"""Uplift: whom the campaign moved, to choose whom to target next time.

A two-model (T-learner) uplift model, cross-fitted on the members of a
measured campaign: outcomes as :mod:`crmkit.campaigns.queries` defines them
(bought in the window, or gross margin per member), features the member
profile as of the day before the campaign starts. The references are
those of :class:`TwoModelUplift`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold

from ..engine.store import Connection
from ..errors import CrmkitError, ModelError
from ..stats import mean_lift, proportion_lift
from .queries import ATTRIBUTES, campaign_info, uplift_frame

#: The categorical attributes used (one-hot) as uplift features; ``store`` has too many levels.
_UPLIFT_CATEGORIES = tuple(a for a in ATTRIBUTES if a != "store")


class TwoModelUplift:
    """Two-model (T-learner) uplift: one model per group, uplift = prediction(treated) − prediction(control).

    Radcliffe, N. J. & Surry, P. D. (2011). Real-world uplift modelling with
    significance-based uplift trees; Künzel, S. R. et al. (2019). Metalearners
    for estimating heterogeneous treatment effects using machine learning. PNAS 116, 4156–4165.

    Parameters
    ----------
    model
        A scikit-learn estimator cloned for each group; by default a shallow,
        strongly regularised histogram gradient boosting classifier (binary
        outcome) or regressor (uplift is a difference of two noisy fits).
    """

    def __init__(self, model=None):
        self.model = model

    def fit(self, X, y, treated) -> TwoModelUplift:
        X, y, treated = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(treated, dtype=bool)
        binary = set(np.unique(y)) <= {0.0, 1.0}
        if binary and any(len(np.unique(y[mask])) < 2 for mask in (treated, ~treated)):
            raise ModelError("uplift needs members who bought and who did not in both groups.")
        base = self.model if self.model is not None else (
            HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor)(
                max_depth=3, learning_rate=0.05, max_iter=100, min_samples_leaf=100, early_stopping=False,
                random_state=0)
        self.model_treatment_ = clone(base).fit(X[treated], y[treated])
        self.model_control_ = clone(base).fit(X[~treated], y[~treated])
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted uplift per row: the outcome if treated minus the outcome if held out."""
        X = np.asarray(X, dtype=float)
        return self._outcome(self.model_treatment_, X) - self._outcome(self.model_control_, X)

    @staticmethod
    def _outcome(model, X):
        return model.predict_proba(X)[:, 1] if is_classifier(model) else model.predict(X)


def uplift_ranking(con: Connection, campaign_id: str, outcome: str = "conversion", *,
                   model=None, folds: int = 3, seed: int = 0) -> pd.DataFrame:
    """Members of the campaign ranked by cross-fitted two-model uplift, to choose whom to target next time.

    Features are the member profile as of the day before the start
    (:func:`~crmkit.campaigns.queries.profile_query`: tenure, recency, frequency, spend, pre-period spend
    and purchase days, one-hot tier, segment, region, channel, lifecycle stage
    and CLV band). Each member's score comes from models fitted on the other
    ``folds − 1`` folds, so :func:`uplift_deciles` is an honest check of the ranking.

    Parameters
    ----------
    outcome
        ``conversion`` (bought in the window) or ``margin`` (gross margin per member, money).

    Returns
    -------
    DataFrame
        member_id, group, outcome, uplift, decile (1 = the tenth with the highest uplift);
        highest uplift first. No personal data.
    """
    if outcome not in ("conversion", "margin"):
        raise CrmkitError(f"unknown uplift outcome {outcome!r}; use conversion or margin.")
    info = campaign_info(con, campaign_id)
    rate = info["margin_rate"] if outcome == "margin" else 1.0
    if not math.isfinite(rate):
        raise CrmkitError(f"campaign {campaign_id!r} has no margin_rate, so margin uplift cannot be modelled.")
    frame = uplift_frame(con, info, outcome)
    y = frame["y"].to_numpy(dtype=float) * rate
    treated = (frame["group"] == "treatment").to_numpy()
    X = pd.get_dummies(frame.drop(columns=["member_id", "group", "y"]), columns=list(_UPLIFT_CATEGORIES),
                       dtype=float).to_numpy(dtype=float)
    uplift = np.empty(len(frame))
    for fit_idx, score_idx in KFold(folds, shuffle=True, random_state=seed).split(X):
        m = TwoModelUplift(model).fit(X[fit_idx], y[fit_idx], treated[fit_idx])
        uplift[score_idx] = m.predict(X[score_idx])
    out = pd.DataFrame({"member_id": frame["member_id"], "group": frame["group"], "outcome": y, "uplift": uplift})
    out = out.sort_values(["uplift", "member_id"], ascending=[False, True], ignore_index=True)
    out["decile"] = np.arange(len(out)) * 10 // max(len(out), 1) + 1
    return out


def uplift_deciles(ranking: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Observed lift within each predicted-uplift decile of :func:`uplift_ranking`, with intervals.

    If the ranking works, the observed lift falls from decile 1 to decile 10:
    target the deciles whose lift pays for the contact.
    """
    g = ranking.groupby(["decile", "group"])["outcome"].agg(["count", "sum", "mean", "var"]).unstack("group")
    tr, ct = g.xs("treatment", axis=1, level="group"), g.xs("control", axis=1, level="group")
    binary = set(np.unique(ranking["outcome"])) <= {0.0, 1.0}
    lift = (proportion_lift(tr["sum"], tr["count"], ct["sum"], ct["count"], alpha) if binary else
            mean_lift(tr["mean"], tr["var"], tr["count"], ct["mean"], ct["var"], ct["count"], alpha))
    return pd.DataFrame({
        "decile": g.index, "mean_uplift": ranking.groupby("decile")["uplift"].mean().to_numpy(),
        "n_treatment": tr["count"].fillna(0).astype(int).to_numpy(),
        "n_control": ct["count"].fillna(0).astype(int).to_numpy(),
        "treatment": lift.treatment, "control": lift.control, "lift": lift.lift.estimate,
        "lift_low": lift.lift.low, "lift_high": lift.lift.high,
    })
