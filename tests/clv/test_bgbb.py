"""BG/BB on lifetimes' donations.csv against Fader, Hardie & Shang (2010), "Customer-base analysis
in a discrete-time noncontractual setting", Marketing Science 29(6)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoBetaBinomFitter

from crmkit.clv import BetaGeoBetaBinom
from crmkit.errors import InputError


@pytest.fixture(scope="module")
def donations(donations_path):
    return pd.read_csv(donations_path).rename(columns={"periods": "n_periods", "weights": "weight"})


@pytest.fixture(scope="module")
def bgbb(donations):
    return BetaGeoBetaBinom().fit_summary(donations)


def test_published_parameters_and_log_likelihood(bgbb):
    # FHS (2010) table 2: alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783, LL = -33,225.6
    expected = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
    for name, value in expected.items():
        assert bgbb.params_[name] == pytest.approx(value, rel=2e-3)
    assert bgbb.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert bgbb.n_members_ == 11104


def test_predictions_match_lifetimes(donations, bgbb):
    lt = BetaGeoBetaBinomFitter()
    lt.params_ = pd.Series(bgbb.params_)
    x, tx, n = donations["frequency"], donations["recency"], donations["n_periods"]
    np.testing.assert_allclose(bgbb.p_alive(x, tx, n), lt.conditional_probability_alive(1, x, tx, n), rtol=1e-8)
    np.testing.assert_allclose(bgbb.expected_purchases(5, x, tx, n),
                               lt.conditional_expected_number_of_purchases_up_to_time(5, x, tx, n), rtol=1e-8)


def test_unconditional_expectation_is_the_mean_of_the_count_distribution(donations, bgbb):
    lt = BetaGeoBetaBinomFitter().fit(donations["frequency"], donations["recency"], donations["n_periods"],
                                      donations["weight"])
    lt.params_ = pd.Series(bgbb.params_)
    for n in (1, 3, 6):  # lifetimes lists frequencies up to the largest observed (6)
        dist = lt.expected_number_of_transactions_in_first_n_periods(n)
        mean = float((dist.index.to_numpy() * dist.iloc[:, 0].to_numpy()).sum() / dist.iloc[:, 0].sum())
        assert bgbb.expected_purchases_new(n) == pytest.approx(mean, rel=1e-8)


def test_invalid_opportunities():
    with pytest.raises(InputError, match="frequency ≤ recency ≤ n_periods"):
        BetaGeoBetaBinom().fit([3], [2], [6])
