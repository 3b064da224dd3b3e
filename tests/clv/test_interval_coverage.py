"""Do the CLV prediction intervals hold what members actually bring, as often as they say?

Three independent references:

- brute-force simulation of the models' purchase process (Poisson purchasing with
  dropout, Gamma-Gamma order values), with parameters drawn from their asymptotic
  normal distribution: the moments of the purchases, and members' and the total's
  intervals, must hold 90% of the simulated outcomes;
- simulated members from known BG/NBD + Gamma-Gamma parameters, fitted and then
  followed for a year: 85–95% of them must fall inside their 90% interval;
- a time split of CDNOW (calibration to 1997-09-30, holdout to 1998-06-30): each
  member's actual holdout spend (margin 1, undiscounted: the sum of the holdout
  purchase days' net value) against a 90% interval over the same 273 days.

Measured (BG/NBD, 90% intervals): CDNOW sample 88.9% of members inside, CDNOW
master 88.0%; simulated members 90.7%; against brute-force simulation, members'
intervals hold 89.0–90.4% of outcomes (the most frequent buyer 83.9%), the
total's 90.9%. The CDNOW *total* is not covered: the
holdout total (¥70,976 on the sample) is above the interval (¥53,250–¥67,068)
because BG/NBD under-forecasts CDNOW's holdout purchases (1,653 expected, 1,882
actual), a misfit the interval, which assumes the model, cannot hold.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmkit.clv import BetaGeo, GammaGamma, ModifiedBetaGeo, ParetoNBD, customer_value, total_value
from crmkit.clv.value import purchase_moments
from crmkit.rfm import calibration_holdout

from .conftest import CALIBRATION_END, OBSERVATION_END, load_cdnow

HOLDOUT_DAYS = 273  # 1997-10-01 to 1998-06-30
UNDISCOUNTED = dict(discount_rate_annual=0.0, margin=1.0)


def _with_params(cls, values):
    model = cls()
    model.params_ = dict(zip(cls.param_names, map(float, values)))
    return model


def _simulate_purchases(model, t, x, tx, T, rng, alive_given=False):
    """Purchases in the next ``t`` periods, one draw per row, by simulating the model's process."""
    x, tx, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, tx, T)))
    n = x.size
    alive = np.ones(n, bool) if alive_given else rng.random(n) < model.p_alive(x, tx, T)
    if isinstance(model, BetaGeo):  # also the MBG/NBD: after each purchase, gone with probability p
        r, alpha, a, b = model._values()
        lam = rng.gamma(r + x, 1 / (alpha + T))
        drop = rng.beta(a, b + x + model._shift)
        count = np.minimum(rng.poisson(lam * t), rng.geometric(drop))
    elif model.name == "nbd":  # nobody drops out
        r, alpha = model._values()
        count = rng.poisson(rng.gamma(r + x, 1 / (alpha + T)) * t)
    else:  # Pareto/NBD: Poisson purchasing for an exponential remaining lifetime
        r, alpha, s, beta = model._values()
        lam = rng.gamma(r + x, 1 / (alpha + T))
        life = rng.exponential(1 / rng.gamma(s, 1 / (beta + T), n))
        count = rng.poisson(lam * np.minimum(life, t))
    return np.where(alive, count, 0)


def _simulate_spend(gg_params, count, x, m, rng):
    """Sum of ``count`` orders of each member: Gamma(p, ν) each, ν from the member's Gamma-Gamma posterior."""
    p, q, v = gg_params
    nu = rng.gamma(q + p * x, 1 / (v + x * m))
    return np.where(count > 0, rng.gamma(np.maximum(p * count, 1e-300), 1 / nu), 0.0)


def _simulate_values(bg, gg, t, frame, draws, rng, margin=0.3):
    """Values of the members of ``frame`` over ``t`` weeks, parameters drawn anew for each draw (draws × members)."""
    x, tx, T, m = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "monetary"))
    out = np.empty((draws, x.size))
    for d in range(draws):
        theta = np.exp(rng.multivariate_normal(np.log(bg._values()), bg.log_params_cov_))
        spend = np.exp(rng.multivariate_normal(np.log(gg._values()), gg.log_params_cov_))
        count = _simulate_purchases(_with_params(type(bg), theta), t, x, tx, T, rng)
        out[d] = margin * _simulate_spend(spend, count, x, m, rng)
    return out


@pytest.mark.parametrize("cls, params", [
    (BetaGeo, (0.243, 4.414, 0.793, 2.426)),        # FHL 2005, CDNOW
    (BetaGeo, (0.5, 3.0, 2.5, 1.5)),
    (ModifiedBetaGeo, (0.5, 6.0, 1.4, 3.0)),
    (ParetoNBD, (0.553, 10.58, 0.606, 11.66)),       # FHL 2005, CDNOW
    ("nbd", (0.385, 12.1)),
])
def test_purchase_moments_match_the_simulated_process(cls, params):
    if cls == "nbd":  # the no-dropout fallback of the others
        cls = pytest.importorskip("crmkit.clv.nbd").NBD
    model = _with_params(cls, params)
    rng = np.random.default_rng(11)
    n = 400_000
    for x, T in ((0, 30.0), (2, 20.0), (10, 38.0)):
        mean, second, any_ = (float(v) for v in purchase_moments(model, 52.0, x, T))
        count = _simulate_purchases(model, 52.0, np.full(n, x), 0.0, T, rng, alive_given=True)
        factorial = count * (count - 1.0)
        assert mean == pytest.approx(count.mean(), abs=4 * count.std() / np.sqrt(n))
        assert second == pytest.approx(factorial.mean(), abs=4 * factorial.std() / np.sqrt(n))
        assert any_ == pytest.approx((count > 0).mean(), abs=4 * np.sqrt(any_ * (1 - any_) / n) + 1e-9)


def test_member_intervals_hold_90_percent_of_simulated_outcomes(cdnow_summary, bgnbd, gamma_gamma):
    ranked = cdnow_summary.sort_values(["frequency", "T", "member_id"], ignore_index=True)
    picks = ranked.iloc[[0, 700, 1700, 2000, 2200, 2300, len(ranked) - 1]]
    rfm = [picks[c] for c in ("frequency", "recency", "T", "monetary")]
    value = customer_value(bgnbd, gamma_gamma, *rfm, horizon_days=365, discount_rate_annual=0.0, margin=0.3)
    sims = _simulate_values(bgnbd, gamma_gamma, 365 / 7, picks.loc[np.repeat(picks.index, 500)], 300,
                            np.random.default_rng(5)).reshape(300, len(picks), 500)
    sims = sims.transpose(1, 0, 2).reshape(len(picks), -1)
    inside = ((sims >= value["clv_low"].to_numpy()[:, None] - 1e-9)
              & (sims <= value["clv_high"].to_numpy()[:, None] + 1e-9)).mean(axis=1)
    np.testing.assert_allclose(value["clv"], sims.mean(axis=1), rtol=0.03)
    # every member but the most frequent buyer: measured 89.0%–90.4%
    assert ((inside[:-1] > 0.87) & (inside[:-1] < 0.93)).all(), inside
    # CDNOW's most frequent buyer (29 repeat purchases) has a 3% chance of no purchase, so equal tails; whether
    # they drop out soon or keep buying makes their purchases bimodal, which the matched beta-prime only
    # approximates: the interval holds 83.9% of the simulated outcomes
    assert 0.8 < inside[-1] < 0.95, inside


def test_total_interval_holds_90_percent_of_simulated_totals(cdnow_summary, bgnbd, gamma_gamma):
    rfm = [cdnow_summary[c] for c in ("frequency", "recency", "T", "monetary")]
    total = total_value(bgnbd, gamma_gamma, *rfm, horizon_days=365, discount_rate_annual=0.0, margin=0.3)
    sims = _simulate_values(bgnbd, gamma_gamma, 365 / 7, cdnow_summary, 1000, np.random.default_rng(9)).sum(axis=1)
    inside = ((sims >= total["clv_low"]) & (sims <= total["clv_high"])).mean()
    assert 0.87 < inside < 0.93  # measured: 90.9%
    assert total["clv_low"] == pytest.approx(np.quantile(sims, 0.05), rel=0.03)
    assert total["clv_high"] == pytest.approx(np.quantile(sims, 0.95), rel=0.03)


def _simulate_chain(n, rng, *, first_weeks=39.0, calibration_weeks=39.0, holdout_weeks=52.0,
                    bgnbd=(0.243, 4.414, 0.793, 2.426), spend=(6.25, 3.74, 15.44)):
    """RFM summaries (weeks) of a BG/NBD + Gamma-Gamma population and each member's holdout spend.

    First purchases are uniform over ``first_weeks``; then members buy as a Poisson process and drop out
    after each repeat purchase with probability p, until the end of the holdout. ``monetary`` is the mean
    of the repeat purchases' values in calibration, as in :func:`crmkit.rfm.rfm_summary`.
    """
    r, alpha, a, b = bgnbd
    p, q, v = spend
    lam, drop, nu = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n), rng.gamma(q, 1 / v, n)
    first = rng.uniform(0, first_weeks, n)
    end = calibration_weeks + holdout_weeks
    now, last = first.copy(), first.copy()
    x, spent, holdout = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1 / lam[idx])
        over = now[idx] > end
        active[idx[over]] = False
        idx = idx[~over]
        amount = rng.gamma(p, 1 / nu[idx])
        cal = now[idx] <= calibration_weeks
        x[idx[cal]] += 1
        last[idx[cal]] = now[idx[cal]]
        spent[idx[cal]] += amount[cal]
        holdout[idx[~cal]] += amount[~cal]
        active[idx[rng.random(idx.size) < drop[idx]]] = False
    return pd.DataFrame({"frequency": x, "recency": last - first, "T": calibration_weeks - first,
                         "monetary": np.where(x > 0, spent / np.maximum(x, 1), 0.0), "holdout": holdout})


def test_simulated_members_with_known_truth_are_covered_90_percent():
    chain = _simulate_chain(20_000, np.random.default_rng(2026))
    bg, gg = BetaGeo().fit_summary(chain), GammaGamma().fit_summary(chain)
    value = customer_value(bg, gg, *(chain[c] for c in ("frequency", "recency", "T", "monetary")),
                           horizon_days=52 * 7, **UNDISCOUNTED)
    actual = chain["holdout"]
    inside = (actual >= value["clv_low"] - 1e-9) & (actual <= value["clv_high"] + 1e-9)
    assert 0.85 <= inside.mean() <= 0.95, inside.mean()  # measured: 90.7%
    repeaters = chain["frequency"] > 0
    assert 0.85 <= inside[repeaters].mean() <= 0.95, inside[repeaters].mean()
    # and the intervals are not wide for nothing: about one member in ten spends more than the upper bound
    assert 0.05 <= (actual > value["clv_high"] + 1e-9).mean() <= 0.15


@pytest.mark.parametrize("dataset", ["sample", "master"])
def test_cdnow_time_split_coverage(dataset, cdnow_sample_path, cdnow_master_path):
    con = load_cdnow(cdnow_sample_path if dataset == "sample" else cdnow_master_path)
    try:
        ch = calibration_holdout(con, CALIBRATION_END, OBSERVATION_END, period="W")
    finally:
        con.close()
    bg, gg = BetaGeo().fit_summary(ch), GammaGamma().fit_summary(ch)
    value = customer_value(bg, gg, *(ch[c] for c in ("frequency", "recency", "T", "monetary")),
                           horizon_days=HOLDOUT_DAYS, **UNDISCOUNTED)
    # actual value: the net value of the holdout purchase days, undiscounted, margin 1 (spend)
    actual = ch["frequency_holdout"] * ch["monetary_holdout"]
    inside = (actual >= value["clv_low"] - 1e-9) & (actual <= value["clv_high"] + 1e-9)
    assert 0.85 <= inside.mean() <= 0.95, inside.mean()  # measured: sample 88.9%, master 88.0%
