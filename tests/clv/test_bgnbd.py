"""BG/NBD on the CDNOW sample against Fader, Hardie & Lee (2005), "Counting your customers
the easy way: an alternative to the Pareto/NBD model", Marketing Science 24(2), and lifetimes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter

from crmkit.clv import BetaGeo
from crmkit.errors import InputError, ModelError
from crmkit.rfm import compress


def test_published_parameters_and_log_likelihood(bgnbd):
    # FHL (2005) section 5: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    # (to four decimals as in Fader & Hardie's spreadsheet note: 0.2426, 4.4136, 0.7930, 2.4262)
    expected = {"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4262}
    for name, value in expected.items():
        assert bgnbd.params_[name] == pytest.approx(value, rel=1e-3)
    assert bgnbd.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert bgnbd.n_members_ == 2357
    assert bgnbd.converged_


def test_compressed_rows_give_the_same_fit(cdnow_summary, bgnbd):
    rows = compress(cdnow_summary)
    assert len(rows) < len(cdnow_summary) / 2
    m = BetaGeo().fit(rows["frequency"], rows["recency"], rows["T"], weights=rows["weight"])
    assert m.n_members_ == 2357 and m.n_rows_ == len(rows)
    for name in m.param_names:
        assert m.params_[name] == pytest.approx(bgnbd.params_[name], rel=1e-7)
    assert m.log_likelihood_ == pytest.approx(bgnbd.log_likelihood_, rel=1e-10)


def test_standard_errors_match_lifetimes(cdnow_summary, bgnbd):
    lt = BetaGeoFitter().fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    for name in bgnbd.param_names:
        assert bgnbd.standard_errors_[name] == pytest.approx(lt.summary.loc[name, "se(coef)"], rel=2e-3)
    table = bgnbd.summary()
    assert (table["low"] < table["estimate"]).all() and (table["estimate"] < table["high"]).all()


def test_predictions_match_lifetimes_with_the_same_parameters(cdnow_summary, bgnbd):
    lt = BetaGeoFitter()
    lt.params_ = pd.Series(bgnbd.params_)
    x, tx, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(bgnbd.p_alive(x, tx, T), lt.conditional_probability_alive(x, tx, T), rtol=1e-10)
    np.testing.assert_allclose(bgnbd.expected_purchases(39, x, tx, T),
                               lt.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T), rtol=1e-10)
    t = np.array([1.0, 10.0, 52.0, 78.0])
    np.testing.assert_allclose(bgnbd.expected_purchases_new(t), lt.expected_number_of_purchases_up_to_time(t),
                               rtol=1e-10)


def test_prob_purchase_within(bgnbd):
    # P(>=1 purchase in t) rises with t, stays below P(alive) and tends to it
    t = np.array([0.0, 1.0, 4.0, 52.0, 1e7])
    p = bgnbd.prob_purchase_within(t, 3, 20.0, 38.0)
    assert p[0] == 0 and np.all(np.diff(p) > 0)
    assert p[-1] == pytest.approx(bgnbd.p_alive(3, 20.0, 38.0), rel=1e-6)
    # for a member alive at T, P(no purchase in t) = E[exp(-lambda t)], lambda ~ Gamma(r + x, alpha + T)
    r, alpha = bgnbd.params_["r"], bgnbd.params_["alpha"]
    rng = np.random.default_rng(0)
    lam = rng.gamma(r + 3, 1 / (alpha + 38.0), 400_000)
    mc = bgnbd.p_alive(3, 20.0, 38.0) * (1 - np.exp(-lam * 4.0).mean())
    assert bgnbd.prob_purchase_within(4.0, 3, 20.0, 38.0) == pytest.approx(mc, rel=5e-3)


def test_time_unit_only_rescales_alpha(cdnow_con, bgnbd):
    from crmkit.rfm import rfm_summary

    days = BetaGeo().fit_summary(compress(rfm_summary(cdnow_con, "1997-09-30", period="D")))
    assert days.params_["alpha"] == pytest.approx(7 * bgnbd.params_["alpha"], rel=1e-6)
    for name in ("r", "a", "b"):
        assert days.params_[name] == pytest.approx(bgnbd.params_[name], rel=1e-6)
    # the log-likelihood of times in days differs by the Jacobian: sum of x * ln 7
    assert days.log_likelihood_ == pytest.approx(bgnbd.log_likelihood_ - 2457 * np.log(7), rel=1e-9)


def test_invalid_inputs_are_one_sentence():
    with pytest.raises(InputError, match="recency cannot exceed T"):
        BetaGeo().fit([1, 2], [5.0, 3.0], [4.0, 6.0])
    with pytest.raises(InputError, match="whole number"):
        BetaGeo().fit([1.5], [1.0], [2.0])
    with pytest.raises(InputError, match="recency must be 0"):
        BetaGeo().fit([0], [1.0], [2.0])
    with pytest.raises(ModelError, match="not fitted"):
        BetaGeo().p_alive(1, 1.0, 2.0)


def test_degenerate_data_fail_in_one_sentence():
    # nobody ever comes back: there is nothing to fit, and the sentence says so (not "did not converge")
    with pytest.raises(ModelError, match="no member has made a repeat purchase"):
        BetaGeo().fit(np.zeros(50), np.zeros(50), np.linspace(10, 30, 50))


def test_the_order_of_the_members_does_not_change_a_digit(cdnow_summary):
    # an engine's group-by returns members in any order; reports must be reproducible
    shuffled = cdnow_summary.sample(frac=1.0, random_state=7)
    assert BetaGeo().fit_summary(shuffled).params_ == BetaGeo().fit_summary(cdnow_summary).params_
