"""CLV and forecast intervals on the CDNOW sample (BG/NBD + Gamma-Gamma)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from crmkit.clv import ModifiedBetaGeo, ParetoNBD, customer_value, forecast_purchases, total_value
from crmkit.clv.value import discount_schedule, interval_note, value_and_total
from crmkit.errors import CrmkitError
from crmkit.rfm import compress


def _rfm(summary):
    return [summary[c] for c in ("frequency", "recency", "T", "monetary")]


def test_discount_schedule_in_days():
    ends, factors = discount_schedule(365, 0.10, step_days=7)
    assert len(ends) == 53 and ends[0] == 7 and ends[-1] == 365  # 52 weeks and a one-day step
    assert factors[-1] == pytest.approx(1.1 ** (-365 / 365.25))
    ends, factors = discount_schedule(14, 0.0, step_days=7)
    np.testing.assert_array_equal(ends, [7, 14])
    np.testing.assert_array_equal(factors, [1, 1])


def test_one_undiscounted_step_is_margin_times_purchases_times_spend(cdnow_summary, bgnbd, gamma_gamma):
    x, tx, T, m = _rfm(cdnow_summary)
    v = customer_value(bgnbd, gamma_gamma, x, tx, T, m, horizon_days=7, discount_rate_annual=0.0, margin=0.3)
    expected = 0.3 * bgnbd.expected_purchases(1.0, x, tx, T) * gamma_gamma.expected_spend(x, m)
    np.testing.assert_allclose(v["clv"], expected, rtol=1e-12)
    np.testing.assert_allclose(v["expected_purchases"], bgnbd.expected_purchases(1.0, x, tx, T), rtol=1e-12)
    assert v.index.equals(cdnow_summary.index)


def test_matches_lifetimes_on_lifetimes_own_month(cdnow_summary, bgnbd, gamma_gamma):
    # lifetimes steps in "months" of 4.345 weeks and discounts monthly; the same schedule in days
    # (30.415-day steps, the monthly rate compounded to a year) must give the same values
    x, tx, T, m = _rfm(cdnow_summary)
    bg, gg = BetaGeoFitter(), GammaGammaFitter()
    bg.params_, gg.params_ = pd.Series(bgnbd.params_), pd.Series(gamma_gamma.params_)
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time
    monthly = 0.01
    ref = gg.customer_lifetime_value(bg, x, tx, T, m, time=12, discount_rate=monthly, freq="W")
    step = 4.345 * 7
    ours = customer_value(bgnbd, gamma_gamma, x, tx, T, m, horizon_days=12 * step, step_days=step,
                          discount_rate_annual=(1 + monthly) ** (365.25 / step) - 1, margin=1.0)
    np.testing.assert_allclose(ours["clv"].to_numpy(), ref.to_numpy(), rtol=1e-9)


def test_prediction_intervals_start_at_zero_when_no_purchase_is_likely(cdnow_summary, bgnbd, gamma_gamma):
    # prediction intervals hold what a member will actually bring, and most CDNOW members will buy
    # nothing in a year: their interval starts at ¥0 and ends at the 90% quantile; only members whose
    # chance of no purchase is below 5% get equal tails (5% below, 5% above)
    args = dict(horizon_days=365, discount_rate_annual=0.1, margin=0.3)
    rfm = _rfm(cdnow_summary)
    v = customer_value(bgnbd, gamma_gamma, *rfm, **args)
    assert (v["clv_low"] >= 0).all() and (v["clv_low"] <= v["clv"]).all() and (v["clv_high"] >= v["clv_low"]).all()
    nothing = 1 - bgnbd.prob_purchase_within(365 / 7, *rfm[:3])
    np.testing.assert_array_equal(v["clv_low"] == 0, nothing >= 0.05)
    np.testing.assert_array_equal(v["clv_high"] == 0, nothing >= 0.9)
    buyers = nothing < 0.5  # likely buyers: the interval holds the expectation
    assert buyers.sum() > 300 and (v.loc[buyers, "clv"] < v.loc[buyers, "clv_high"]).all()
    # far wider than the parameter uncertainty alone, which was ±2.5% around a member's CLV
    assert (v.loc[buyers, "clv_high"] / v.loc[buyers, "clv"]).min() > 1.3


def test_total_interval_and_shared_work(cdnow_summary, bgnbd, gamma_gamma):
    args = dict(horizon_days=365, discount_rate_annual=0.1, margin=0.3)
    rfm = _rfm(cdnow_summary)
    v = customer_value(bgnbd, gamma_gamma, *rfm, **args)
    total = total_value(bgnbd, gamma_gamma, *rfm, **args)
    assert total["clv"] == pytest.approx(v["clv"].sum(), rel=1e-12)
    assert total["clv_low"] < total["clv"] < total["clv_high"]
    # the members' chance variation averages out in the total: relatively far narrower than a member's
    assert (total["clv_high"] - total["clv_low"]) / total["clv"] < 0.5 * (v["clv_high"] - v["clv_low"]).sum() / v["clv"].sum()
    wider = total_value(bgnbd, gamma_gamma, *rfm, interval=0.99, **args)
    assert wider["clv_low"] < total["clv_low"] and wider["clv_high"] > total["clv_high"]
    # one pass gives both, the same numbers, every time
    both, both_total = value_and_total(bgnbd, gamma_gamma, *rfm, **args)
    pd.testing.assert_frame_equal(both, v)
    pd.testing.assert_series_equal(both_total, total)


def test_interval_note_says_what_the_interval_covers():
    en = interval_note("en", 0.9)
    assert en.startswith("90% prediction interval:") and "parameters" in en and "assuming the model is right" in en
    zh = interval_note("zh", 0.8)
    assert zh.startswith("80% 预测区间") and "模型参数的不确定性" in zh and "购买的随机性" in zh
    with pytest.raises(CrmkitError, match="interval"):
        interval_note("en", 90)


def test_forecast_interval_agrees_with_simulated_parameters(cdnow_holdout, bgnbd):
    rows = compress(cdnow_holdout, ("duration_holdout", "frequency", "recency", "T"))
    args = [rows[c] for c in ("duration_holdout", "frequency", "recency", "T")]
    fc = forecast_purchases(bgnbd, *args, weights=rows["weight"])
    full = forecast_purchases(bgnbd, *(cdnow_holdout[c] for c in ("duration_holdout", "frequency", "recency", "T")))
    assert fc["expected"] == pytest.approx(full["expected"], rel=1e-12)
    assert fc["high"] == pytest.approx(full["high"], rel=1e-9)
    # draw the log-parameters from their asymptotic normal distribution and take the 5% / 95% quantiles
    rng = np.random.default_rng(7)
    theta = np.log([bgnbd.params_[k] for k in bgnbd.param_names])
    draws = rng.multivariate_normal(theta, bgnbd.log_params_cov_, size=1000)
    totals = [rows["weight"] @ bgnbd.with_params(dict(zip(bgnbd.param_names, np.exp(d)))).expected_purchases(*args)
              for d in draws]
    low, high = np.quantile(totals, [0.05, 0.95])
    assert fc["low"] == pytest.approx(low, rel=0.01)
    assert fc["high"] == pytest.approx(high, rel=0.01)


def test_invalid_settings_are_one_sentence(cdnow_summary, bgnbd, gamma_gamma):
    rfm = _rfm(cdnow_summary)
    with pytest.raises(CrmkitError, match="margin"):
        customer_value(bgnbd, gamma_gamma, *rfm, horizon_days=365, discount_rate_annual=0.1, margin=30)
    with pytest.raises(CrmkitError, match="discount_rate_annual"):
        customer_value(bgnbd, gamma_gamma, *rfm, horizon_days=365, discount_rate_annual=-1, margin=0.3)
    with pytest.raises(CrmkitError, match="GammaGamma"):
        customer_value(bgnbd, bgnbd, *rfm, horizon_days=365, discount_rate_annual=0.1, margin=0.3)


@pytest.mark.parametrize("cls", [ParetoNBD, ModifiedBetaGeo])
def test_prediction_intervals_for_the_other_models(cls, cdnow_summary, gamma_gamma):
    model = cls().fit_summary(cdnow_summary)
    rfm = _rfm(cdnow_summary)
    v, total = value_and_total(model, gamma_gamma, *rfm, horizon_days=365, discount_rate_annual=0.1, margin=0.3)
    nothing = 1 - model.prob_purchase_within(365 / 7, *rfm[:3])
    np.testing.assert_array_equal(v["clv_low"] == 0, nothing >= 0.05)
    assert (v["clv_low"] <= v["clv"]).all() and np.isfinite(v["clv_high"]).all()
    assert total["clv_low"] < total["clv"] < total["clv_high"]


def test_spend_without_finite_variance_still_gives_finite_intervals(cdnow_summary, bgnbd, gamma_gamma):
    # q ≤ 2: a new member's spend per order has no finite variance under the Gamma-Gamma; a member's
    # interval needs none, and the total's spread uses a floor on q + p·x − 2
    heavy = gamma_gamma.with_params({**gamma_gamma.params_, "q": 1.5})
    v, total = value_and_total(bgnbd, heavy, *_rfm(cdnow_summary), horizon_days=365, discount_rate_annual=0.1,
                               margin=0.3)
    assert np.isfinite(v[["clv_low", "clv_high"]].to_numpy()).all()
    assert 0 < total["clv_low"] < total["clv"] < total["clv_high"] < np.inf
