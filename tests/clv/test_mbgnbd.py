"""MBG/NBD (Batislam, Denizel & Filiztekin 2007) on the CDNOW sample, against lifetimes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import ModifiedBetaGeoFitter

from crmkit.clv import ModifiedBetaGeo
from crmkit.rfm import compress


@pytest.fixture(scope="module")
def mbg(cdnow_summary):
    return ModifiedBetaGeo().fit_summary(compress(cdnow_summary))


def test_parameters_match_lifetimes(cdnow_summary, mbg):
    x, tx, T = (cdnow_summary[c] for c in ("frequency", "recency", "T"))
    lt = ModifiedBetaGeoFitter().fit(x, tx, T)
    for name in mbg.param_names:
        assert mbg.params_[name] == pytest.approx(lt.params_[name], rel=1e-3)
    # the MBG/NBD nests a dropout after the first purchase, so it fits at least as well as the BG/NBD here
    assert mbg.log_likelihood_ == pytest.approx(-9582.14, abs=0.01)


def test_predictions_match_lifetimes_with_the_same_parameters(cdnow_summary, mbg):
    lt = ModifiedBetaGeoFitter()
    lt.params_ = pd.Series(mbg.params_)
    x, tx, T = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(mbg.p_alive(x, tx, T), lt.conditional_probability_alive(x, tx, T), rtol=1e-10)
    np.testing.assert_allclose(mbg.expected_purchases(39, x, tx, T),
                               lt.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T), rtol=1e-10)
    t = np.array([1.0, 10.0, 52.0])
    np.testing.assert_allclose(mbg.expected_purchases_new(t), lt.expected_number_of_purchases_up_to_time(t),
                               rtol=1e-10)


def test_members_without_repeats_may_be_gone(mbg, bgnbd):
    # unlike the BG/NBD, where it is one, P(alive) of a one-time buyer is below one and falls with T
    T = np.array([1.0, 10.0, 40.0])
    p = mbg.p_alive(0, 0.0, T)
    assert np.all(p < 1) and np.all(np.diff(p) < 0)
    np.testing.assert_array_equal(bgnbd.p_alive(0, 0.0, T), 1.0)
