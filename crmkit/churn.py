"""Churn early warning: who is likely to stop buying, how sure we are, who matters most.

Churn is observable here: a member *churns over a window* when they have no
purchase day (as defined in :mod:`crmkit.rfm`) in the ``window_days`` days
after the as-of date. ``churn_risk`` is the probability of that, in [0, 1].

Method
------
Buy-till-you-die models alone are poor churn scores: in BG/NBD a member who
bought once has P(alive) = 1, so ranking by P(alive) calls one-time buyers the
safest members although most of them never return. Three candidate scores,
each a probability of no purchase day in the window (:data:`SCORES`):

- ``expected``: the BTYD expected number of purchases in the window (default
  BG/NBD; Fader, Hardie & Lee 2005) through a decreasing logistic curve
  (:class:`ExpectedPurchasesRisk`), so it ranks members exactly as
  −expected purchases, the **baseline**;
- ``model``: the BTYD probability of no purchase in the window;
- ``classifier``: a logistic regression (:class:`ChurnClassifier`) on the
  model's expected purchases and behaviour-change features computed in the
  engine: time since the last purchase against the member's own mean
  interval (lengthening gaps), the last interval against the mean, the share
  of spend in the last ``recent_days`` against the share of tenure (falling
  spend), returns share, channels used, average spend per purchase day
  (Ascarza et al. 2018 review this "model + features" approach).

Which one is churn_risk is decided per store and date by an honest
time-split backtest (:class:`ChurnRisk`): every candidate scores the members
as of ``cut = as_of − window_days`` from data up to ``cut`` alone (the
classifier trained on the window before ``cut``), and is judged by AUC on
who bought nothing between ``cut`` and ``as_of``. A candidate replaces the
baseline only when its AUC gain is beyond chance (paired DeLong 95%
interval above zero, :func:`choose_score`), so churn_risk never ranks worse
than expected purchases on the backtest. The winner is refitted on the
latest window and scores members as of ``as_of``. ``method_`` and
``backtest_`` record the choice, its AUCs and dates;
:meth:`ChurnRisk.method_note` says it in one sentence. When the history is
too short to backtest, churn_risk is ``expected`` (it ranked best on
CDNOW_master), and the sentence says so.

Measured on the future (fitted on data up to the as-of date, judged on the
window after it; ``tests/test_churn_backtest.py``): CDNOW_master as of
1997-12-31, 90 days: classifier chosen (backtest AUC 0.780 against 0.771),
AUC 0.808 against 0.799 for expected purchases; 180 days: expected
purchases kept (the classifier, trained on CDNOW's first week, ranked
backwards), AUC 0.799 for both. Demo chain (200,000 members, seed 42) as of
2025-12-31, 180 days: classifier chosen by +0.0012 in the backtest, 0.6828
against 0.6819 on the future.

Bands: the riskiest 20% of the members, the next 30% and the rest by
default (:func:`band_thresholds`), or fixed cut-offs; ``churn_band`` keeps
the keys high / medium / low and :func:`band_labels` names each band by its
range of churn probability ("churn probability 77–100%").

:func:`backtest` (for the calibration chart) measures the classifier on a
calibration / holdout split by cross-fitting over members, with AUC (with
its interval), top-decile lift and a calibration table. On CDNOW (sample of
2,357; calibration to 1997-09-30, churn = no purchase in weeks 40–78) it
reaches AUC 0.779 against 0.7725 for BG/NBD expected purchases, top-decile
lift 1.29 against 1.21, and predicted churn within 3 points of the observed
in every decile. The gain in AUC is small (paired DeLong 95% interval −0.003
to 0.016): CDNOW holds little beyond recency and frequency. Cross-fitting
uses the holdout's outcomes to train (on other members), so it is not the
backtest that chooses churn_risk.

References
----------
- Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers"
  the easy way: an alternative to the Pareto/NBD model. Marketing Science 24, 275–284.
- Ascarza, E. et al. (2018). In pursuit of enhanced customer retention
  management: review, key issues, and future directions. Customer Needs and
  Solutions 5, 65–81.
- Peduzzi, P. et al. (1996). A simulation study of the number of events per
  variable in logistic regression analysis. J. Clin. Epidemiol. 49, 1373–1379.
- DeLong, E. R., DeLong, D. M. & Clarke-Pearson, D. L. (1988). Comparing the
  areas under two or more correlated receiver operating characteristic curves:
  a nonparametric approach. Biometrics 44, 837–845.
- Sun, X. & Xu, W. (2014). Fast implementation of DeLong's algorithm for
  comparing the areas under correlated receiver operating characteristic
  curves. IEEE Signal Processing Letters 21, 1389–1393.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, ndtri
from sklearn.exceptions import NotFittedError

from . import engine
from .clv import MODELS
from .defaults import DEFAULT_WINDOW_DAYS  # noqa: F401 (public here too: no purchase in the next 180 days)
from .engine import table_columns
from .engine.store import Connection
from .errors import ModelError
from .i18n import register, t
from .privacy import mask_frame
from .rfm import as_date, period_days, rfm_summary
from .stats import rate_ratio_interval, wilson_interval

#: Default length of the "recent" spend window, in days.
RECENT_DAYS = 90
#: Risk bands, from the most to the least at risk.
BANDS = ("high", "medium", "low")
#: Fixed band thresholds on churn_risk, for those who want them: low < 0.3 ≤ medium < 0.6 ≤ high.
DEFAULT_THRESHOLDS = (0.3, 0.6)
#: Default bands are relative: the riskiest 20% of the members scored are high, the next 30% medium.
#: (A fixed 60% would put most buyers of a chain that people visit twice a year in "high".)
DEFAULT_BAND_SHARES = (0.2, 0.3)

#: Inputs of the classifier, built from a feature frame by :func:`design_matrix`.
FEATURES = (
    "log_expected_purchases",  # BTYD expected purchases in the window, log
    "log_frequency",           # log(1 + repeat purchase days)
    "weeks_since_last",        # days since the last purchase day / 7
    "log_tenure",              # log days since the first purchase day
    "one_time",                # 1 when the member has bought on one day only
    "log_gap_ratio",           # log((days since last + 1) / (mean interval + 1)); 0 for one-time buyers
    "log_last_interval_ratio",  # log((last interval + 1) / (mean interval + 1)); 0 for one-time buyers
    "spend_trend",             # recent share of spend − recent share of tenure, in [−1, 1]
    "log_avg_spend",           # log(1 + net spend per purchase day, yuan)
    "returns_share",           # returned yuan / bought yuan
    "log_channels",            # log(number of channels used)
)

register({
    # the bands by rank order; their cut-offs are in :func:`band_labels`
    "churn.high": ("风险最高档", "Riskiest band"),
    "churn.medium": ("风险居中档", "Middle band"),
    "churn.low": ("风险最低档", "Least risky band"),
    "churn.band": ("流失风险分档", "Churn-risk band"),
    "churn.range": ("流失概率 {range}", "churn probability {range}"),
    "churn.risk": ("流失风险", "Churn risk"),
    "churn.predicted": ("预测流失率", "Predicted churn rate"),
    "churn.observed": ("实际流失率", "Observed churn rate"),
    "churn.perfect": ("完美校准", "Perfect calibration"),
    "churn.deciles": ("按预测风险十等分", "Deciles of predicted risk"),
    "churn.calibration_title": ("流失预警校准：预测 vs 实际", "Churn warning calibration: predicted vs observed"),
    "churn.auc": ("AUC", "AUC"),
    "churn.top_decile_lift": ("前 10% 提升度", "Top-decile lift"),
    "churn.baseline": ("对照：模型期望购买次数", "Baseline: model expected purchases"),
})


# ------------------------------------------------------------------ features

_TENURE = "(date_diff('day', first_purchase, CAST($as_of AS DATE)) + 1)"

#: The behaviour features (:func:`behaviour_features`) as SQL over the engine's ``member_facts``
#: (:mod:`crmkit.engine.members`), so that scoring selects them in its one query.
BEHAVIOUR_SQL = {
    "days_since_last": "date_diff('day', last_purchase, CAST($as_of AS DATE))",
    "mean_interval_days": "date_diff('day', first_purchase, last_purchase) / nullif(purchase_days - 1, 0)",
    "last_interval_days": "last_interval_days",
    "tenure_days": _TENURE,
    "spend_trend": f"""CASE WHEN net_spend > 0 AND {_TENURE} > $mf_recent_days
            THEN greatest(coalesce(recent_spend, 0), 0) / net_spend - $mf_recent_days / {_TENURE}
            ELSE 0 END""",
    "avg_spend": "net_spend / purchase_days",
    "returns_share": "coalesce(coalesce(returned, 0) / nullif(bought, 0), 0)",
    "channels": "channels",
}


def behaviour_sql(suffix: str = "") -> str:
    """The select list of :data:`BEHAVIOUR_SQL` (``expression AS name, ...``) over ``member_facts{suffix}``."""
    return ",\n       ".join(
        f"{sql.replace('$as_of', f'$as_of{suffix}').replace('$mf_recent_days', f'$mf_recent_days{suffix}')} AS {name}"
        for name, sql in BEHAVIOUR_SQL.items())


_HOLDOUT = """
  SELECT CAST(member_id AS VARCHAR) AS member_id, count(*) AS frequency_holdout
  FROM purchase_days_all WHERE day > CAST($as_of_cal AS DATE) GROUP BY member_id"""


def calibration_features(con: Connection, calibration_end, observation_end, *,
                         period: str = "W", recent_days: int = RECENT_DAYS,
                         table: str = "transactions") -> pd.DataFrame:
    """The churn backtest's members in one engine query: who bought by ``calibration_end``, and what followed.

    One row per member with a purchase day up to ``calibration_end``, sorted
    by member_id: ``member_id, frequency, recency, T, monetary`` and
    ``frequency_holdout`` as in :func:`crmkit.rfm.calibration_holdout`, and
    the columns of :func:`behaviour_features` as of ``calibration_end``.
    """
    cal_end = as_date(calibration_end, "calibration_end")
    obs_end = as_date(observation_end, "observation_end")
    if obs_end <= cal_end:
        raise ModelError(f"observation_end {obs_end} must come after calibration_end {cal_end}.")
    cols = table_columns(con, table)
    q = (engine.member_facts(cal_end, recent_days=recent_days, table=table, columns=cols, suffix="_cal")
         + engine.purchase_days(obs_end, table=table, columns=cols, suffix="_all")
         + engine.Query({"holdout": _HOLDOUT}, {"scale": period_days(period)}))
    out = q.execute(con, f"""
SELECT f.member_id, {engine.summary_sql("_cal")},
       coalesce(h.frequency_holdout, 0) AS frequency_holdout,
       {behaviour_sql("_cal")}
FROM member_facts_cal f LEFT JOIN holdout h ON h.member_id = f.member_id
ORDER BY f.member_id""").df()
    out.attrs.update(calibration_end=cal_end.isoformat(), observation_end=obs_end.isoformat(), period=period)
    return out


def behaviour_features(con: Connection, as_of, *, recent_days: int = RECENT_DAYS,
                       table: str = "transactions") -> pd.DataFrame:
    """Per-member behaviour-change features as of ``as_of``, computed in the engine.

    One row per member with a purchase day up to ``as_of`` (inclusive), with
    purchase days, order netting and returns as in :mod:`crmkit.engine.activity`,
    sorted by member_id; the SQL is :data:`BEHAVIOUR_SQL` over the engine's
    ``member_facts`` (:mod:`crmkit.engine.members`).

    Returns
    -------
    DataFrame
        member_id; days_since_last, mean_interval_days (NULL with one purchase
        day), last_interval_days (NULL likewise), tenure_days (first purchase
        day to ``as_of``, both counted); spend_trend: share of net spend made
        in the last ``recent_days`` days minus the share of tenure they are
        (0 = steady, < 0 = falling; 0 when tenure is within the window);
        avg_spend (net yuan per purchase day, returns included), returns_share
        (returned yuan / bought yuan, over the lines with an amount),
        channels (distinct channels used; 0 when the data have no channel).
    """
    as_of = as_date(as_of, "as_of")
    q = engine.member_facts(as_of, recent_days=recent_days, table=table, columns=table_columns(con, table))
    return q.execute(con, f"SELECT member_id, {behaviour_sql()} FROM member_facts ORDER BY member_id").df()


def new_btyd(model: str = "bgnbd"):
    """A new, unfitted BTYD model by its key in :data:`crmkit.clv.MODELS`."""
    if model not in MODELS:
        raise ModelError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[model]()


def fit_btyd(summary: pd.DataFrame, model: str = "bgnbd"):
    """A BTYD model from :data:`crmkit.clv.MODELS` fitted on ``summary`` (compressed by the fit).

    When the model has no interior maximum because members do not appear to
    drop out, the NBD is returned instead, labelled by ``fallback_from_`` and
    ``fit_note_`` (:func:`crmkit.clv.fit_with_fallback`).
    """
    from .clv import fit_with_fallback

    btyd = new_btyd(model)
    if summary.empty:
        raise ModelError("no member has a purchase up to the as-of date; nothing to fit.")
    return fit_with_fallback(btyd, summary)


def churn_features(con: Connection, as_of, *, window_days: int = DEFAULT_WINDOW_DAYS,
                   model: str = "bgnbd", period: str = "W", recent_days: int = RECENT_DAYS,
                   summary: pd.DataFrame | None = None, fitted=None, behaviour: bool = True,
                   table: str = "transactions") -> pd.DataFrame:
    """Everything the churn score needs, one row per member who has bought up to ``as_of``.

    Parameters
    ----------
    window_days
        Length of the churn window after ``as_of``, in days.
    model, period
        The BTYD model (a key of :data:`crmkit.clv.MODELS`) and its time unit.
    summary, fitted
        The :func:`crmkit.rfm.rfm_summary` (or :func:`crmkit.rfm.calibration_holdout`,
        or :func:`calibration_features`) as of ``as_of`` and a model fitted on
        it, when the caller has them already; computed otherwise.
    behaviour
        Add the columns of :func:`behaviour_features` (one more pass over the
        transactions, unless ``summary`` holds them already, as
        :func:`calibration_features` does; only the classifier needs them).
    table
        The transactions table or view to read.

    Returns
    -------
    DataFrame
        One row per row of ``summary``, in its order: its columns, p_alive,
        expected_window (expected purchases in the window), p_no_purchase (the
        model's probability of no purchase in the window) and, with
        ``behaviour``, the columns of :func:`behaviour_features`.
    """
    if summary is None:
        summary = rfm_summary(con, as_of, period=period, table=table)
    if fitted is None:
        fitted = fit_btyd(summary, model)
    f, r, T = summary["frequency"], summary["recency"], summary["T"]
    t_window = window_days / period_days(period)
    out = summary.assign(
        p_alive=np.asarray(fitted.p_alive(f, r, T), dtype=float),
        expected_window=np.asarray(fitted.expected_purchases(t_window, f, r, T), dtype=float),
        p_no_purchase=1 - np.asarray(fitted.prob_purchase_within(t_window, f, r, T), dtype=float),
    )
    if not behaviour or set(BEHAVIOUR_SQL) <= set(out.columns):
        return out
    return out.merge(behaviour_features(con, as_of, recent_days=recent_days, table=table),
                     on="member_id", how="left")


def design_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """The classifier inputs (:data:`FEATURES`) from a :func:`churn_features` frame.

    Undefined ratios (one purchase day, no spend, no lines) take their neutral
    value 0; ``one_time`` carries the difference.
    """
    mean_gap = features["mean_interval_days"].astype(float)
    one_time = (features["frequency"] <= 0) | mean_gap.isna()
    since = features["days_since_last"].astype(float)
    x = pd.DataFrame({
        "log_expected_purchases": np.log(np.maximum(features["expected_window"].astype(float), 1e-6)),
        "log_frequency": np.log1p(features["frequency"].astype(float)),
        "weeks_since_last": since / 7,
        "log_tenure": np.log(features["tenure_days"].astype(float).clip(lower=1)),
        "one_time": one_time.astype(float),
        "log_gap_ratio": np.log((since + 1) / (mean_gap + 1)),
        "log_last_interval_ratio": np.log((features["last_interval_days"].astype(float) + 1) / (mean_gap + 1)),
        "spend_trend": features["spend_trend"].astype(float),
        "log_avg_spend": np.log1p(features["avg_spend"].astype(float).clip(lower=0)),
        "returns_share": features["returns_share"].astype(float).clip(0, 1),
        "log_channels": np.log(features["channels"].astype(float).clip(lower=1)),
    }, index=features.index)
    x.loc[one_time, ["log_gap_ratio", "log_last_interval_ratio"]] = 0.0
    return x[list(FEATURES)].fillna(0.0)


# ---------------------------------------------------------------- estimators

class ChurnClassifier:
    """Logistic regression of churn on :func:`design_matrix` (standardised inputs, L2 penalty).

    Parameters
    ----------
    C
        Inverse strength of the L2 penalty (scikit-learn's ``C``).
    max_train
        Members used for fitting at most; a larger frame is subsampled
        (``random_state``), which leaves a logistic fit on a dozen inputs unchanged.
    random_state
        Seed of the subsample.

    Attributes
    ----------
    pipeline_ : the fitted scikit-learn pipeline.
    coef_ : Series, coefficient per standardised feature (positive = riskier).
    n_train_, churn_rate_ : members used and their churn rate.
    """

    def __init__(self, C: float = 1.0, max_train: int = 200_000, random_state: int = 0):
        self.C, self.max_train, self.random_state = C, max_train, random_state

    def fit(self, features: pd.DataFrame, churned) -> ChurnClassifier:
        x = design_matrix(features)
        y = np.asarray(churned, dtype=bool)
        if len(y) > self.max_train:
            keep = np.random.default_rng(self.random_state).choice(len(y), self.max_train, replace=False)
            x, y = x.iloc[np.sort(keep)], y[np.sort(keep)]
        if y.all() or not y.any():
            raise ModelError("churn training data hold only one outcome (all churned or none); "
                             "use a longer history or another window.")
        from sklearn.linear_model import LogisticRegression  # scikit-learn's models: only where one is trained
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.pipeline_ = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=1000))
        self.pipeline_.fit(x.to_numpy(), y)
        self.coef_ = pd.Series(self.pipeline_[-1].coef_[0], index=list(FEATURES), name="coef")
        self.n_train_, self.churn_rate_ = len(y), float(y.mean())
        return self

    def predict_risk(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of no purchase in the window, per row of ``features``."""
        return self.pipeline_.predict_proba(design_matrix(features).to_numpy())[:, 1]


class ExpectedPurchasesRisk:
    """Churn probability as a decreasing logistic curve in the model's expected purchases.

    ``risk = 1 / (1 + exp(−(a − s · z)))`` with ``z`` the standardised log of
    the expected purchases in the window and ``s = exp(θ) > 0``: the slope is
    negative by construction, so the risk ranks members exactly as
    −expected purchases (the same AUC) while being a probability. ``a`` and
    ``θ`` minimise the cross-entropy against ``target``: observed churn (0/1)
    when the past holds outcomes, or the model's own probability of no
    purchase when it does not (soft labels).

    Attributes
    ----------
    intercept_, slope_ : ``a`` and ``−s`` (per standard deviation of log expected purchases).
    center_, scale_ : mean and standard deviation of log expected purchases used to standardise.
    """

    def fit(self, expected, target) -> ExpectedPurchasesRisk:
        x = np.log(np.maximum(np.asarray(expected, dtype=float), 1e-300))
        y = np.clip(np.asarray(target, dtype=float), 0.0, 1.0)
        if x.size == 0:
            raise ModelError("no member to fit the churn curve on.")
        order = np.lexsort((y, x))  # sorted: the fit does not depend on the order of the rows
        x, y = x[order], y[order]
        self.center_, self.scale_ = float(x.mean()), float(x.std()) or 1.0
        z = (x - self.center_) / self.scale_
        rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))

        def loss(params):
            a, theta = params
            s = np.exp(theta)
            eta = a - s * z
            # cross-entropy, written with logaddexp to stay finite for any eta
            value = np.sum(np.logaddexp(0, eta) - y * eta)
            resid = expit(eta) - y
            return value / len(z), np.array([resid.sum(), -(resid * z).sum() * s]) / len(z)

        res = optimize.minimize(loss, np.array([np.log(rate / (1 - rate)), 0.0]), jac=True, method="L-BFGS-B",
                                bounds=[(-50, 50), (-20, 5)])
        self.intercept_, self.slope_ = float(res.x[0]), -float(np.exp(res.x[1]))
        return self

    def predict_risk(self, expected) -> np.ndarray:
        """Probability of no purchase in the window, per member, from their expected purchases."""
        x = np.log(np.maximum(np.asarray(expected, dtype=float), 1e-300))
        return expit(self.intercept_ + self.slope_ * (x - self.center_) / self.scale_)


#: Candidate churn scores that :class:`ChurnRisk` compares by backtest, and what they are.
SCORES = {
    "expected": ("模型期望购买次数（换算为流失概率）", "the model's expected purchases (as a churn probability)"),
    "model": ("模型的无购买概率", "the model's probability of no purchase"),
    "classifier": ("行为特征分类器", "the behaviour classifier"),
}
#: The baseline every score must match: the BTYD expected purchases in the window (fewer = riskier).
BASELINE = "expected"
#: Churned and retained members needed, each, to judge scores on a window (below: no backtest).
MIN_PER_CLASS = 10

#: Short names of the candidates, for lists of AUCs.
SHORT = {"expected": ("期望购买次数", "expected purchases"), "model": ("无购买概率", "P(no purchase)"),
         "classifier": ("分类器", "classifier")}

register({f"churn.score.{k}": v for k, v in SCORES.items()})
register({f"churn.short.{k}": v for k, v in SHORT.items()})
register({
    "churn.kept": ("流失风险 = {name}：在 {start} 前的数据上评分、以 {start} 至 {end} 的实际购买检验，"
                   "没有其他评分的 AUC 显著高于它的 {auc}（{all}）。",
                   "churn risk = {name}: no other score beat its AUC of {auc} beyond chance when scored on "
                   "data up to {start} and judged on {start} → {end} ({all})."),
    "churn.chosen": ("流失风险 = {name}：在 {start} 前的数据上评分、以 {start} 至 {end} 的实际购买检验，"
                     "其 AUC 为 {auc}，对照（模型期望购买次数）为 {base}（{all}）。",
                     "churn risk = {name}, chosen because its AUC was {auc} against {base} for the baseline "
                     "(the model's expected purchases) when scored on data up to {start} and judged on "
                     "{start} → {end} ({all})."),
    "churn.no_backtest": ("流失风险 = 模型期望购买次数（按模型的无购买概率换算为流失概率）：{start} 之前的历史太短，"
                          "无法在 {start} 至 {end} 上回测，故用一般排序最好的模型评分。",
                          "churn risk = the model's expected purchases, turned into a churn probability by the "
                          "model's own chance of no purchase: the history before {start} is too short to backtest "
                          "on {start} → {end}, so the model-based score that ranks best in general is used."),
})


@dataclass(frozen=True)
class ScoreBacktest:
    """How :class:`ChurnRisk` chose its score: candidates scored on the past, judged on what followed.

    Every candidate score uses only data up to ``scored_on``; a member has
    churned when they have no purchase day after ``scored_on`` up to
    ``judged_to`` (inclusive). The classifier candidate was trained on
    features as of ``trained_on`` with outcomes up to ``scored_on`` (None when
    the history held too few members for it). ``auc`` and ``gain`` (AUC
    minus the baseline's, paired DeLong interval) are ``(estimate, low,
    high)`` per candidate (95%); ``chosen`` is the winner.
    """

    scored_on: dt.date
    judged_to: dt.date
    trained_on: dt.date | None
    members: int
    churned: int
    auc: dict
    gain: dict
    chosen: str

    def table(self, lang: str = "zh", decimals: int = 3) -> pd.DataFrame:
        """One row per candidate: score (its name), AUC with 95% interval, gain over the baseline, chosen."""
        nothing = (np.nan, np.nan, np.nan)  # the baseline has no gain over itself
        rows = [(t(f"churn.score.{k}", lang), *self.auc[k], *(self.gain[k] if k != BASELINE else nothing),
                 k == self.chosen) for k in self.auc]
        out = pd.DataFrame(rows, columns=["score", "auc", "auc_low", "auc_high", "gain", "gain_low", "gain_high",
                                          "chosen"])
        return out.round(decimals)


def choose_score(churned, candidates: dict, alpha: float = 0.05) -> tuple[str, dict, dict]:
    """The candidate score that ranks ``churned`` best, if it beats the baseline beyond chance.

    ``candidates`` maps names to scores (higher = riskier) and holds
    :data:`BASELINE`. Returns ``(chosen, auc, gain)``: ``auc`` per candidate
    with its DeLong interval, ``gain`` = AUC − baseline AUC with the paired
    DeLong interval (``1 − alpha``). A candidate is chosen over the baseline
    only when its gain's interval lies above zero, and then the highest AUC wins.
    """
    names = list(candidates)  # one DeLong pass over every candidate: each is ranked once
    aucs, cov = _delong(np.asarray(churned, dtype=bool),
                        np.vstack([np.asarray(candidates[k], dtype=float) for k in names]))
    base = names.index(BASELINE)
    auc = {k: _interval(aucs, cov, i, alpha) for i, k in enumerate(names)}
    gain = {k: _difference(aucs, cov, i, base, alpha) if k != BASELINE else (0.0, 0.0, 0.0)
            for i, k in enumerate(names)}
    chosen = BASELINE
    for k in candidates:
        if k != BASELINE and gain[k][1] > 0 and auc[k][0] > auc[chosen][0]:
            chosen = k
    return chosen, auc, gain


def _both_classes(churned: np.ndarray, at_least: int) -> bool:
    n_churned = int(churned.sum())
    return min(n_churned, len(churned) - n_churned) >= at_least


class ChurnRisk:
    """Churn risk as of a date: the score that ranked best on the store's own past.

    Candidates (:data:`SCORES`), each a probability of no purchase day in the
    next ``window_days``:

    - ``expected``: the BTYD expected purchases in the window through a
      decreasing logistic curve (:class:`ExpectedPurchasesRisk`); it ranks
      exactly as the baseline, −expected purchases;
    - ``model``: the BTYD probability of no purchase in the window;
    - ``classifier``: :class:`ChurnClassifier` on behaviour-change features.

    The choice is an honest time-split backtest. With ``cut = as_of −
    window_days``, each candidate scores the members as of ``cut`` from data
    up to ``cut`` alone (the classifier trained on features as of ``cut −
    window_days`` and outcomes up to ``cut``: train on the past), and is
    judged by AUC on who bought nothing between ``cut`` and ``as_of``. A
    candidate replaces the baseline only when it beats it beyond chance: the
    paired DeLong 95% interval of its AUC gain lies above zero (DeLong et al.
    1988); among those the highest AUC wins. So the chosen score ranks at
    least as well as the baseline in the backtest, and a gain of 0.001 that
    is noise does not buy the classifier's cost. The winner is then refitted
    on the latest window (features as of ``cut``, outcomes up to ``as_of``)
    and scores members as of ``as_of``.

    When the history is too short to backtest (fewer than
    :data:`MIN_PER_CLASS` churned or retained members after ``cut``, a BTYD
    model that cannot be fitted as of ``cut``, or a past so short that even
    the baseline ranks no better than chance: its AUC's 95% interval reaches
    0.5), the risk is ``expected``,
    the model-based score that ranks best in general: on CDNOW_master
    (23,570 customers; cut-offs 1997-06-30, 09-30, 12-31, 1998-03-31; 90 and
    180-day windows) −expected purchases beat the probability of no purchase
    in all 8 splits, by 0.003–0.010 AUC, while on the demo chain the
    probability of no purchase was ahead by at most 0.0015. The curve is then
    fitted to the model's own probabilities of no purchase (as of ``as_of``).

    Parameters
    ----------
    window_days
        Churn window: risk = probability of no purchase day in the next ``window_days``.
    model, period
        BTYD model (key of :data:`crmkit.clv.MODELS`) and its time unit.
    recent_days
        Window of the spend trend, in days.
    C, random_state
        Passed to :class:`ChurnClassifier`.
    max_train
        Members used to backtest and train at most: a larger population is
        sampled by a seeded hash of member_id (``random_state``) before any
        feature is computed, so the cost stays that of ``max_train`` members.

    Attributes
    ----------
    method_ : the chosen score, a key of :data:`SCORES`.
    backtest_ : the :class:`ScoreBacktest` behind the choice, or None when the history was too short.
    classifier_ : the fitted :class:`ChurnClassifier` when ``method_ == "classifier"``, else None.
    curve_ : the fitted :class:`ExpectedPurchasesRisk` when ``method_ == "expected"``, else None.
    trained_on_ : ``as_of − window_days``: the date of the features the final score was fitted on.
    n_train_, n_churned_ : members (of the sample) who had bought by ``trained_on_``, and how many churned after.
    sampled_ : whether the past was sampled (population above ``max_train``).
    """

    def __init__(self, window_days: int = DEFAULT_WINDOW_DAYS, model: str = "bgnbd", period: str = "W",
                 recent_days: int = RECENT_DAYS, C: float = 1.0, max_train: int = 200_000,
                 random_state: int = 0):
        self.window_days, self.model, self.period = window_days, model, period
        self.recent_days, self.C, self.max_train, self.random_state = recent_days, C, max_train, random_state

    def features(self, con: Connection, as_of, **kw) -> pd.DataFrame:
        """:func:`churn_features` with this estimator's settings (``summary``/``fitted``/``behaviour`` pass through)."""
        return churn_features(con, as_of, window_days=self.window_days, model=self.model,
                              period=self.period, recent_days=self.recent_days, **kw)

    def fit(self, con: Connection, as_of, *, features: pd.DataFrame | None = None) -> ChurnRisk:
        """Choose the score by backtest and fit it on the latest window (see the class docstring).

        ``features``: the :meth:`features` frame as of ``as_of`` (``behaviour=False`` is enough), when
        the caller has it; it is needed only when the history is too short to backtest.
        """
        as_of = as_date(as_of, "as_of")
        window = dt.timedelta(days=int(self.window_days))
        cut, early = as_of - window, as_of - 2 * window
        self.trained_on_, self.method_ = cut, BASELINE
        self.backtest_ = self.classifier_ = self.curve_ = None
        self.n_train_ = self.n_churned_ = 0
        table, self.sampled_ = _sample_members(con, cut, self.max_train, self.random_state)
        try:
            self._backtest(con, cut, as_of, early, table)
        finally:
            if table != "transactions":
                con.execute(f'DROP TABLE IF EXISTS "{table}"')
        if self.backtest_ is None:  # too short to backtest: the curve follows the model's own probabilities
            now = features if features is not None else self.features(con, as_of, behaviour=False)
            self.curve_ = ExpectedPurchasesRisk().fit(now["expected_window"], now["p_no_purchase"])
        return self

    def _backtest(self, con, cut: dt.date, as_of: dt.date, early: dt.date, table: str) -> None:
        """Score the candidates as of ``cut``, judge them on ``cut`` → ``as_of``, keep the winner."""
        past = calibration_features(con, cut, as_of, period=self.period, recent_days=self.recent_days,
                                    table=table)
        y = past["frequency_holdout"].eq(0).to_numpy()
        self.n_train_, self.n_churned_ = len(past), int(y.sum())
        if not _both_classes(y, MIN_PER_CLASS):
            return
        # the classifier is a candidate when both windows hold ten members per input in either
        # class (Peduzzi et al. 1996): features as of `early`, outcomes up to `cut`
        need = MIN_PER_CLASS * len(FEATURES)
        older, old = None, None
        if _both_classes(y, need):
            older = calibration_features(con, early, cut, period=self.period, recent_days=self.recent_days,
                                         table=table)
            if _both_classes(older["frequency_holdout"].eq(0).to_numpy(), need):
                try:
                    old = self.features(con, early, summary=older, table=table)
                except ModelError:  # no transaction model as of `early`: no classifier candidate
                    old = None
        try:
            feats = self.features(con, cut, summary=past, behaviour=old is not None, table=table)
        except ModelError:  # the past is too thin for the transaction model itself
            return
        baseline = -feats["expected_window"].to_numpy(dtype=float)
        candidates = {BASELINE: baseline, "model": feats["p_no_purchase"].to_numpy(dtype=float)}
        trained_on = None
        if old is not None:
            y_old = older["frequency_holdout"].eq(0).to_numpy()
            clf = ChurnClassifier(self.C, self.max_train, self.random_state).fit(old, y_old)
            candidates["classifier"] = clf.predict_risk(feats)
            trained_on = early
        chosen, auc, gain = choose_score(y, candidates)
        if auc[BASELINE][1] <= 0.5:  # the past is too short to say anything: even the baseline ranks by chance
            return
        self.backtest_ = ScoreBacktest(cut, as_of, trained_on, len(y), int(y.sum()), auc, gain, chosen)
        self.method_ = chosen
        if chosen == "classifier":
            self.classifier_ = ChurnClassifier(self.C, self.max_train, self.random_state).fit(feats, y)
        elif chosen == BASELINE:
            self.curve_ = ExpectedPurchasesRisk().fit(feats["expected_window"], y)

    @property
    def needs_behaviour(self) -> bool:
        """Whether :meth:`predict` needs the behaviour features (only the classifier does)."""
        return self.method_ == "classifier"

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Churn risk per row of a :meth:`features` frame as of the scoring date."""
        if not hasattr(self, "method_"):
            raise NotFittedError("this ChurnRisk is not fitted yet; call fit first.")
        if self.method_ == "classifier":
            return self.classifier_.predict_risk(features)
        if self.method_ == "model":
            return features["p_no_purchase"].to_numpy(dtype=float)
        return self.curve_.predict_risk(features["expected_window"])

    def method_note(self, lang: str = "zh") -> str:
        """One sentence: what churn_risk is and why it was chosen (backtest AUCs and dates)."""
        if self.backtest_ is None:
            end = self.trained_on_ + dt.timedelta(days=int(self.window_days))
            return t("churn.no_backtest", lang).format(start=self.trained_on_, end=end)
        bt = self.backtest_
        sep = "，" if lang == "zh" else ", "
        every = sep.join(f"{t(f'churn.short.{k}', lang)} {bt.auc[k][0]:.3f}" for k in bt.auc)
        key = "churn.kept" if bt.chosen == BASELINE else "churn.chosen"
        return t(key, lang).format(name=t(f"churn.score.{bt.chosen}", lang), auc=f"{bt.auc[bt.chosen][0]:.3f}",
                                   base=f"{bt.auc[BASELINE][0]:.3f}", start=bt.scored_on, end=bt.judged_to,
                                   all="AUC: " + every)


def _sample_members(con: Connection, until: dt.date, max_members: int, seed: int,
                    table: str = "transactions") -> tuple[str, bool]:
    """A temporary table of ``table``'s lines for about ``max_members`` of the members who bought by ``until``
    (all their lines, chosen by a seeded hash of member_id), or ``table`` itself when there are fewer.

    The sample is copied once: the backtest reads it several times, each a fraction of a scan of ``table``."""
    n = con.execute(f'SELECT count(DISTINCT member_id) FROM "{table}" '
                    "WHERE order_time < CAST($until AS DATE) + INTERVAL 1 DAY", {"until": until}).fetchone()[0]
    if n <= max_members:
        return table, False
    sample, scale = "_crmkit_churn_sample", 1_000_000
    keep = int(scale * max_members / n)
    con.execute(f'CREATE OR REPLACE TEMP TABLE {sample} AS SELECT * FROM "{table}" '
                f"WHERE hash(CAST(member_id AS VARCHAR) || '#{int(seed)}') % {scale} < {keep}")
    return sample, True


# ------------------------------------------------------------ bands and lists

def band_thresholds(risk, shares: tuple[float, float] = DEFAULT_BAND_SHARES) -> tuple[float, float]:
    """``(low_below, high_from)``: churn_risk cut-offs that make the riskiest ``shares[0]`` of the
    members ``high`` and the next ``shares[1]`` ``medium`` (ties at a cut-off go to the riskier band)."""
    top, middle = shares
    if not (0 <= top and 0 <= middle and top + middle <= 1):
        raise ValueError(f"band shares must be two shares adding up to at most 1, not {shares}")
    r = np.asarray(risk, dtype=float)
    if r.size == 0:
        return DEFAULT_THRESHOLDS
    return float(np.quantile(r, 1 - top - middle)), float(np.quantile(r, 1 - top))


def risk_bands(risk, thresholds: tuple[float, float] | None = None) -> pd.Series:
    """``high`` / ``medium`` / ``low`` from thresholds ``(low_below, high_from)`` on churn_risk.

    Without ``thresholds`` the bands are relative (:func:`band_thresholds`, the riskiest 20%
    high, the next 30% medium); pass fixed ones such as :data:`DEFAULT_THRESHOLDS` to compare
    stores or months on one absolute scale.
    """
    low, high = band_thresholds(risk) if thresholds is None else thresholds
    if not 0 <= low <= high <= 1:
        raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, not {thresholds}")
    r = np.asarray(risk, dtype=float)
    band = np.where(r >= high, "high", np.where(r >= low, "medium", "low"))
    index = risk.index if isinstance(risk, pd.Series) else None
    return pd.Series(band, index=index, name="churn_band", dtype=object)


def band_labels(thresholds: tuple[float, float], lang: str = "zh") -> dict[str, str]:
    """Each band named by its range of churn probability, e.g. ``{"high": "流失概率 77–100%", ...}``.

    ``thresholds`` are ``(low_below, high_from)`` as in :func:`risk_bands`. The
    percentages take the fewest decimals (up to two) that keep the two
    cut-offs apart, so 77.4% and 77.9% do not both read 77%.
    """
    return {b: t("churn.range", lang).format(range=r) for b, r in band_ranges(thresholds).items()}


def band_ranges(thresholds: tuple[float, float]) -> dict[str, str]:
    """The range of churn_risk of each band in percent, e.g. ``{"high": "77–100%", "medium": "52–77%", ...}``."""
    low, high = (100 * float(v) for v in thresholds)
    for decimals in (0, 1, 2):
        if round(low, decimals) != round(high, decimals) or low == high:
            break

    def pct(v: float) -> str:
        return f"{v:.{decimals}f}"

    return {"high": f"{pct(high)}–100%", "medium": f"{pct(low)}–{pct(high)}%", "low": f"0–{pct(low)}%"}


def at_risk_members(scores: pd.DataFrame, con: Connection | None = None, *,
                    top: int = 50) -> pd.DataFrame:
    """The ``top`` high-risk members by CLV, with masked phone and name where the store has them.

    Parameters
    ----------
    scores
        The per-member score table (:func:`crmkit.scoring.score_members`):
        member_id, churn_risk, churn_band, clv, clv_low, clv_high, …
    con
        A store with ``members``; its phone and name are joined, masked.
    """
    cols = [c for c in ("member_id", "churn_risk", "clv", "clv_low", "clv_high", "p_alive",
                        "frequency", "recency", "tier", "rfm_segment", "lifecycle_stage") if c in scores]
    out = (scores.loc[scores["churn_band"] == "high", cols]
           .sort_values(["clv", "member_id"], ascending=[False, True]).head(top))
    if con is not None:  # the contacts of these few members only, never of the whole store
        among, params = engine.one_of("member_id", [str(m) for m in out["member_id"]], "risk_id")
        people = con.execute(f"SELECT member_id, phone, name FROM members WHERE {among}", params).df()
        if people[["phone", "name"]].notna().any().any():
            out = out.merge(people, on="member_id", how="left")
    return mask_frame(out.reset_index(drop=True))


# ---------------------------------------------------------------- evaluation

def _delong(churned: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of the rows of ``scores`` and their covariance (DeLong et al. 1988, Sun & Xu 2014)."""
    from scipy.stats import rankdata  # scipy.stats only where AUCs are computed

    pos, neg = scores[:, churned], scores[:, ~churned]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ModelError("AUC needs both churned and retained members in the holdout.")
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.hstack([pos, neg]), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:, :m] - tx) / n
    v10 = 1 - (tz[:, m:] - ty) / m
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return auc, cov


def _interval(auc: np.ndarray, cov: np.ndarray, i: int, alpha: float) -> tuple[float, float, float]:
    """AUC ``i`` of a :func:`_delong` result with its normal interval."""
    half = float(-ndtri(alpha / 2)) * np.sqrt(cov[i, i])
    return float(auc[i]), float(max(auc[i] - half, 0.0)), float(min(auc[i] + half, 1.0))


def _difference(auc: np.ndarray, cov: np.ndarray, i: int, j: int, alpha: float) -> tuple[float, float, float]:
    """AUC ``i`` minus AUC ``j`` of a :func:`_delong` result with the paired interval."""
    diff = float(auc[i] - auc[j])
    half = float(-ndtri(alpha / 2)) * np.sqrt(max(cov[i, i] + cov[j, j] - 2 * cov[i, j], 0.0))
    return diff, diff - half, diff + half


def auc_interval(churned, risk, alpha: float = 0.05) -> tuple[float, float, float]:
    """ROC AUC of ``risk`` for ``churned``, with its DeLong normal interval."""
    auc, cov = _delong(np.asarray(churned, dtype=bool), np.asarray(risk, dtype=float)[None, :])
    return _interval(auc, cov, 0, alpha)


def auc_difference(churned, risk, baseline, alpha: float = 0.05) -> tuple[float, float, float]:
    """AUC of ``risk`` minus AUC of ``baseline`` on the same members, with DeLong's paired interval."""
    y = np.asarray(churned, dtype=bool)
    auc, cov = _delong(y, np.vstack([np.asarray(risk, dtype=float), np.asarray(baseline, dtype=float)]))
    return _difference(auc, cov, 0, 1, alpha)


def _ranks(risk: np.ndarray) -> np.ndarray:
    """0-based positions of ``risk`` in ascending order, ties broken by position."""
    order = np.argsort(risk, kind="stable")
    ranks = np.empty(len(risk), dtype=int)
    ranks[order] = np.arange(len(risk))
    return ranks


def top_decile_lift(churned, risk, alpha: float = 0.05) -> tuple[float, float, float]:
    """Churn rate among the riskiest tenth over the overall rate, with a log interval (Katz et al. 1978)."""
    y = np.asarray(churned, dtype=bool)
    r = np.asarray(risk, dtype=float)
    n_top = int(np.ceil(len(y) / 10))
    top = _ranks(r) >= len(y) - n_top
    est, low, high = rate_ratio_interval(y[top].sum(), n_top, y.sum(), len(y), alpha)
    return float(est), float(low), float(high)


def calibration_table(churned, risk, bins: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Predicted against observed churn by ``bins`` equal-count groups of risk (1 = lowest risk).

    Returns
    -------
    DataFrame
        decile, members, predicted (mean risk), observed (churn rate),
        observed_low, observed_high (Wilson interval).
    """
    y = np.asarray(churned, dtype=bool)
    r = np.asarray(risk, dtype=float)
    group = _ranks(r) * bins // len(r) + 1
    df = pd.DataFrame({"decile": group, "risk": r, "churned": y})
    out = df.groupby("decile").agg(members=("risk", "size"), predicted=("risk", "mean"),
                                   churned=("churned", "sum")).reset_index()
    observed, low, high = wilson_interval(out["churned"], out["members"], alpha)
    return out.assign(observed=observed, observed_low=low, observed_high=high).drop(columns="churned")


@dataclass(frozen=True)
class ChurnBacktest:
    """Churn risk against what happened in a holdout window.

    ``members`` holds member_id, churned, churn_risk and expected_window (the
    BTYD baseline). ``auc``, ``baseline_auc``, ``auc_gain`` (risk − baseline,
    paired), ``lift`` and ``baseline_lift`` are (estimate, low, high) with 95%
    intervals; ``calibration`` is :func:`calibration_table` of the risk.
    """

    calibration_end: dt.date
    observation_end: dt.date
    members: pd.DataFrame
    auc: tuple[float, float, float]
    baseline_auc: tuple[float, float, float]
    auc_gain: tuple[float, float, float]
    lift: tuple[float, float, float]
    baseline_lift: tuple[float, float, float]
    calibration: pd.DataFrame

    def summary(self, lang: str = "zh", decimals: int = 3) -> pd.DataFrame:
        """AUC and top-decile lift of the churn risk and of the BTYD baseline, with 95% intervals,
        rounded to ``decimals`` (the figures' own precision; exact values are attributes)."""
        auc, lift = t("churn.auc", lang), t("churn.top_decile_lift", lang)
        rows = [(auc, "churn_risk", *self.auc), (auc, "expected_purchases", *self.baseline_auc),
                (auc, "churn_risk − expected_purchases", *self.auc_gain),
                (lift, "churn_risk", *self.lift), (lift, "expected_purchases", *self.baseline_lift)]
        out = pd.DataFrame(rows, columns=["metric", "score", "estimate", "low", "high"])
        return out.round({"estimate": decimals, "low": decimals, "high": decimals})


def backtest(con: Connection, calibration_end, observation_end, *, folds: int = 5,
             repeats: int = 5, model: str = "bgnbd", period: str = "W", recent_days: int = RECENT_DAYS,
             C: float = 1.0, random_state: int = 0) -> ChurnBacktest:
    """Evaluate the churn risk on a holdout window: does it pick those who bought nothing?

    Features come from data up to ``calibration_end``; a member has churned
    when they have no purchase day after it up to ``observation_end``.

    The classifier is cross-fitted over members: each member's risk is the
    mean over ``repeats`` stratified ``folds``-fold splits (seeded) of the
    prediction of a model trained on the other folds, so no member is scored
    by a model that saw their outcome; repeating only removes the luck of one
    split. The BTYD model is fitted on calibration data alone (no outcomes).
    The baseline ranks members by the BTYD expected number of purchases in
    the holdout window (fewer = riskier).
    """
    cal_end, obs_end = as_date(calibration_end, "calibration_end"), as_date(observation_end, "observation_end")
    window = (obs_end - cal_end).days
    if window <= 0:
        raise ModelError(f"observation_end {obs_end} must come after calibration_end {cal_end}.")
    past = calibration_features(con, cal_end, obs_end, period=period, recent_days=recent_days)
    feats = churn_features(con, cal_end, window_days=window, model=model, period=period,
                           recent_days=recent_days, summary=past)
    y = past["frequency_holdout"].eq(0).to_numpy()
    risk = np.zeros(len(y))
    from sklearn.model_selection import StratifiedKFold

    for rep in range(repeats):
        split = StratifiedKFold(folds, shuffle=True, random_state=random_state + rep).split(feats, y)
        for train, test in split:
            clf = ChurnClassifier(C, random_state=random_state).fit(feats.iloc[train], y[train])
            risk[test] += clf.predict_risk(feats.iloc[test]) / repeats
    baseline = -feats["expected_window"].to_numpy(dtype=float)
    members = pd.DataFrame({"member_id": feats["member_id"], "churned": y, "churn_risk": risk,
                            "expected_window": feats["expected_window"]})
    return ChurnBacktest(cal_end, obs_end, members,
                         auc_interval(y, risk), auc_interval(y, baseline), auc_difference(y, risk, baseline),
                         top_decile_lift(y, risk), top_decile_lift(y, baseline),
                         calibration_table(y, risk))


def plot_calibration(result: ChurnBacktest, lang: str = "zh"):
    """Reliability diagram: observed churn (with 95% intervals) against predicted, by decile of risk."""
    from . import viz  # matplotlib: only where a chart is drawn
    cal = result.calibration
    fig, ax = viz.new_figure(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color=viz.PALETTE[5], label=t("churn.perfect", lang))
    ax.errorbar(cal["predicted"], cal["observed"],
                yerr=[cal["observed"] - cal["observed_low"], cal["observed_high"] - cal["observed"]],
                marker="o", linestyle="-", capsize=3, label=t("churn.deciles", lang))
    auc, lift, base = result.auc, result.lift, result.baseline_auc
    ax.text(0.02, 0.97, f"{t('churn.auc', lang)} {auc[0]:.3f} ({auc[1]:.3f}–{auc[2]:.3f})\n"
            f"{t('churn.top_decile_lift', lang)} {lift[0]:.2f} ({lift[1]:.2f}–{lift[2]:.2f})\n"
            f"{t('churn.baseline', lang)}: {t('churn.auc', lang)} {base[0]:.3f} ({base[1]:.3f}–{base[2]:.3f})",
            transform=ax.transAxes, va="top")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(viz.pct_formatter)
    ax.yaxis.set_major_formatter(viz.pct_formatter)
    ax.set_xlabel(t("churn.predicted", lang))
    ax.set_ylabel(t("churn.observed", lang))
    ax.set_title(t("churn.calibration_title", lang))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
