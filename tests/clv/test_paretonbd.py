"""Pareto/NBD on the CDNOW sample against Fader & Hardie's note "A note on deriving the Pareto/NBD
model and related expressions" (2005; model of Schmittlein, Morrison & Colombo 1987) and lifetimes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter

from crmkit.clv import ParetoNBD
from crmkit.rfm import compress


@pytest.fixture(scope="module")
def pareto(cdnow_summary):
    return ParetoNBD().fit_summary(compress(cdnow_summary))


def test_published_parameters_and_log_likelihood(pareto):
    # Fader & Hardie: r = 0.553, alpha = 10.58, s = 0.606, beta = 11.67 (11.66 within rounding), LL = -9595.0
    expected = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.66}
    for name, value in expected.items():
        assert pareto.params_[name] == pytest.approx(value, rel=5e-3)
    assert pareto.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    assert all(np.isfinite(list(pareto.standard_errors_.values())))


def test_predictions_match_lifetimes_with_the_same_parameters(cdnow_summary, pareto):
    lt = ParetoNBDFitter()
    lt.params_ = pd.Series(pareto.params_)
    x, tx, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(pareto.p_alive(x, tx, T), lt.conditional_probability_alive(x, tx, T), rtol=1e-8)
    np.testing.assert_allclose(pareto.expected_purchases(39, x, tx, T),
                               lt.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T), rtol=1e-8)
    t = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(pareto.expected_purchases_new(t), lt.expected_number_of_purchases_up_to_time(t),
                               rtol=1e-8)


def test_large_frequencies_stay_finite(pareto):
    # the hypergeometric terms overflow when computed naively for heavy buyers
    x = np.array([50.0, 200.0, 500.0])
    for a, b in ((pareto.params_["alpha"], pareto.params_["beta"]), (20.0, 5.0)):
        m = pareto.with_params({**pareto.params_, "alpha": a, "beta": b})
        p = m.p_alive(x, np.array([30.0, 35.0, 38.0]), 39.0)
        assert np.all(np.isfinite(p)) and np.all((p > 0) & (p <= 1))


def test_prob_purchase_within_against_simulation(pareto):
    # for a member alive at T: lambda ~ Gamma(r + x, alpha + T), mu ~ Gamma(s, beta + T); a purchase
    # within t happens when the first purchase comes before both death and t
    r, alpha, s, beta = (pareto.params_[k] for k in ("r", "alpha", "s", "beta"))
    x, tx, T, t = 2, 20.0, 30.0, 10.0
    rng = np.random.default_rng(1)
    n = 400_000
    lam = rng.gamma(r + x, 1 / (alpha + T), n)
    mu = rng.gamma(s, 1 / (beta + T), n)
    first, death = rng.exponential(1 / lam), rng.exponential(1 / mu)
    mc = np.mean((first < death) & (first < t))
    assert pareto.prob_purchase_within(t, x, tx, T) == pytest.approx(pareto.p_alive(x, tx, T) * mc, rel=5e-3)
    # and tends to P(alive) times P(ever buying again) as t grows
    assert pareto.prob_purchase_within(1e6, x, tx, T) < pareto.p_alive(x, tx, T)


def test_s_equal_to_one_needs_no_special_case(pareto):
    near = [pareto.with_params({**pareto.params_, "s": s}).expected_purchases(10, 2, 20.0, 30.0)
            for s in (1 - 1e-7, 1.0, 1 + 1e-7)]
    assert np.all(np.isfinite(near)) and np.ptp(near) < 1e-6
