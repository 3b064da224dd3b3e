"""Gamma-Gamma on the CDNOW sample's 946 repeat buyers against Fader, Hardie & Lee (2005),
"RFM and CLV: using iso-value curves for customer base analysis", JMR 42(4), with the
estimates of Fader & Hardie's note "The Gamma-Gamma model of monetary value" (2013)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import GammaGammaFitter

from crmkit.clv import GammaGamma
from crmkit.errors import InputError, ModelError
from crmkit.rfm import compress


def test_published_parameters_and_log_likelihood(gamma_gamma):
    # p = 6.25, q = 3.74, gamma (v) = 15.44, LL = -4055.92 on the mean repeat-purchase value of
    # the 946 customers with repeat purchases (same-day purchases merged)
    expected = {"p": 6.25, "q": 3.74, "v": 15.44}
    for name, value in expected.items():
        assert gamma_gamma.params_[name] == pytest.approx(value, rel=5e-3)
    assert gamma_gamma.log_likelihood_ == pytest.approx(-4055.92, abs=0.01)
    assert gamma_gamma.n_members_ == 946


def test_compressed_rows_and_lifetimes(cdnow_summary, gamma_gamma):
    rows = compress(cdnow_summary, ("frequency", "monetary"))
    m = GammaGamma().fit_summary(rows)
    for name in m.param_names:
        assert m.params_[name] == pytest.approx(gamma_gamma.params_[name], rel=1e-7)
    lt = GammaGammaFitter()
    lt.params_ = pd.Series(gamma_gamma.params_)
    x, mv = cdnow_summary["frequency"], cdnow_summary["monetary"]
    np.testing.assert_allclose(gamma_gamma.expected_spend(x, mv), lt.conditional_expected_average_profit(x, mv),
                               rtol=1e-10)


def test_expected_spend_shrinks_towards_the_mean(gamma_gamma):
    p, q, v = (gamma_gamma.params_[k] for k in ("p", "q", "v"))
    assert gamma_gamma.mean_spend_ == pytest.approx(p * v / (q - 1))
    assert gamma_gamma.expected_spend(0, 0.0) == pytest.approx(gamma_gamma.mean_spend_)
    # hand-computed: weight on the member's own mean is p x / (p x + q - 1)
    w = p * 4 / (p * 4 + q - 1)
    assert gamma_gamma.expected_spend(4, 100.0) == pytest.approx(w * 100 + (1 - w) * gamma_gamma.mean_spend_)


def test_expected_spend_gradient_is_the_derivative_in_log_parameters(gamma_gamma):
    x, m = np.array([0, 1, 4, 12]), np.array([0.0, 30.0, 100.0, 7.5])
    spend, grad = gamma_gamma.expected_spend_with_gradient(x, m)
    np.testing.assert_allclose(spend, gamma_gamma.expected_spend(x, m), rtol=1e-12)
    h = 1e-6
    for j, name in enumerate(("p", "q", "v")):
        up, down = ({**gamma_gamma.params_, name: gamma_gamma.params_[name] * np.exp(s)} for s in (h, -h))
        numeric = (gamma_gamma.with_params(up).expected_spend(x, m)
                   - gamma_gamma.with_params(down).expected_spend(x, m)) / (2 * h)
        np.testing.assert_allclose(grad[j], numeric, rtol=1e-6)


def test_invalid_spend():
    with pytest.raises(InputError, match="monetary"):
        GammaGamma().fit([1, 2], [10.0, -3.0])
    with pytest.raises(ModelError, match="fewer than two"):
        GammaGamma().fit([0, 0, 1, 2], [0.0, 0.0, 5.0, 0.0])  # free repeat purchases carry no spend


def test_free_repeat_purchases_are_left_out(cdnow_summary, gamma_gamma):
    gifts = pd.DataFrame({"frequency": [3, 1], "monetary": [0.0, 0.0]})
    m = GammaGamma().fit_summary(pd.concat([cdnow_summary[["frequency", "monetary"]], gifts]))
    assert m.n_members_ == 946 and m.params_ == pytest.approx(gamma_gamma.params_, rel=1e-9)
    assert 0 < m.expected_spend(3, 0.0) < m.mean_spend_
