"""crmkit.stats against statsmodels (a test-only dependency), hand computations and simulation."""
import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint,
                                          samplesize_proportions_2indep_onetail)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

from crmkit import stats

TOL = dict(rel=1e-6, abs=1e-9)
COUNTS = [(0, 40, 3, 50), (7, 120, 2, 30), (45, 300, 30, 310), (500, 9000, 40, 1000), (20, 20, 19, 25)]


@pytest.mark.parametrize("count,nobs", [(0, 10), (1, 10), (37, 250), (250, 250), (480, 10_000)])
def test_wilson_matches_statsmodels(count, nobs):
    p, low, high = stats.wilson_interval(count, nobs)
    assert p == count / nobs
    assert (low, high) == pytest.approx(proportion_confint(count, nobs, method="wilson"), **TOL)


def test_wilson_is_vectorised_and_other_levels():
    count, nobs = np.array([3, 30, 300]), np.array([40, 400, 4000])
    iv = stats.wilson_interval(count, nobs, alpha=0.1)
    ref = proportion_confint(count, nobs, alpha=0.1, method="wilson")
    assert iv.low == pytest.approx(ref[0], **TOL) and iv.high == pytest.approx(ref[1], **TOL)


@pytest.mark.parametrize("c1,n1,c2,n2", COUNTS)
def test_newcombe_matches_statsmodels(c1, n1, c2, n2):
    diff, low, high = stats.newcombe_interval(c1, n1, c2, n2)
    assert diff == pytest.approx(c1 / n1 - c2 / n2)
    ref = confint_proportions_2indep(c1, n1, c2, n2, compare="diff", method="newcomb")
    assert (low, high) == pytest.approx(ref, **TOL)


@pytest.mark.parametrize("c1,n1,c2,n2", COUNTS)
def test_rate_ratio_matches_statsmodels_log_adjusted(c1, n1, c2, n2):
    ratio, low, high = stats.rate_ratio_interval(c1, n1, c2, n2)
    ref = confint_proportions_2indep(c1, n1, c2, n2, compare="ratio", method="log-adjusted")
    assert (low, high) == pytest.approx(ref, **TOL)
    assert ratio == pytest.approx((c1 / n1) / (c2 / n2))


def test_proportion_lift_relative_is_undefined_over_a_zero_control():
    lift = stats.proportion_lift([5, 5], [100, 100], [0, 4], [80, 80])
    assert np.isnan(lift.lift_rel.estimate[0]) and np.isnan(lift.lift_rel.low[0])
    assert lift.lift_rel.estimate[1] == pytest.approx(0.05 / 0.05 - 1)
    assert lift.lift.estimate[0] == pytest.approx(0.05)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(7)
    # zero-inflated, heavy-tailed spend per member, as in a campaign
    x = rng.binomial(1, 0.2, 400) * rng.lognormal(4, 1.2, 400)
    y = rng.binomial(1, 0.15, 150) * rng.lognormal(4, 1.2, 150)
    return x, y


def _summ(a):
    return a.mean(), a.var(ddof=1), len(a)


def test_welch_matches_statsmodels(samples):
    x, y = samples
    w = stats.welch_test(*_summ(x), *_summ(y))
    cm = CompareMeans(DescrStatsW(x), DescrStatsW(y))
    assert (w.low, w.high) == pytest.approx(cm.tconfint_diff(usevar="unequal"), **TOL)
    tstat, p, df = ttest_ind(x, y, usevar="unequal")
    assert (w.statistic, w.p_value, w.df) == pytest.approx((tstat, p, df), **TOL)


@pytest.mark.parametrize("alternative", ["larger", "smaller"])
def test_welch_one_sided_with_a_null_value(samples, alternative):
    x, y = samples
    w = stats.welch_test(*_summ(x), *_summ(y), value=5.0, alternative=alternative)
    tstat, p, _ = ttest_ind(x, y, usevar="unequal", value=5.0, alternative=alternative)
    assert (w.statistic, w.p_value) == pytest.approx((tstat, p), **TOL)


def test_welch_with_no_variance_is_exact():
    # nobody bought in either group: the difference is exactly 0
    w = stats.welch_test(0.0, 0.0, 200, 0.0, 0.0, 100, value=1.0, alternative="larger")
    assert (w.diff, w.low, w.high, w.p_value) == (0.0, 0.0, 0.0, 1.0)
    # one group without variance: Welch's df falls back to the other group's n - 1
    w = stats.welch_test(2.0, 0.0, 50, 1.0, 4.0, 26)
    assert w.df == pytest.approx(25) and w.se == pytest.approx(math.sqrt(4 / 26))


def test_mean_ratio_interval_delta_method_by_hand():
    # ratio 12/10; se^2 = (9/100)/10^2 + 12^2 * (16/64)/10^4 = 0.0009 + 0.0036
    ratio, low, high = stats.mean_ratio_interval(12.0, 9.0, 100, 10.0, 16.0, 64)
    half = 1.959963984540054 * math.sqrt(0.0045)
    assert (ratio, low, high) == pytest.approx((1.2, 1.2 - half, 1.2 + half), rel=1e-12)
    assert np.isnan(stats.mean_ratio_interval(1.0, 1.0, 10, 0.0, 0.0, 10).estimate)


def test_bootstrap_is_reproducible_and_near_the_analytic_standard_error(samples):
    x, _ = samples
    a = stats.bootstrap_means(x, 1000, seed=3)
    b = stats.bootstrap_means(x, 1000, seed=3, max_cells=5_000)  # other batching, same draws
    assert a.shape == (1000, 1)
    np.testing.assert_array_equal(a, b)
    assert a.mean() == pytest.approx(x.mean(), rel=0.02)
    assert a.std() == pytest.approx(x.std(ddof=0) / math.sqrt(len(x)), rel=0.08)
    low, high = stats.percentile_interval(a[:, 0])
    assert low < x.mean() < high


def test_bootstrap_p_value():
    draws = np.arange(1, 100, dtype=float)  # 1..99
    assert stats.bootstrap_p_value(draws, 0.0) == pytest.approx(1 / 100)
    assert stats.bootstrap_p_value(draws, 49.5) == pytest.approx(50 / 100)


@pytest.mark.parametrize("p,lift,share", [(0.05, 0.01, 0.1), (0.2, 0.03, 0.5), (0.6, -0.05, 0.25)])
def test_sample_size_matches_statsmodels(p, lift, share):
    n_t, n_c = stats.sample_size_proportions(p, lift, share)
    ratio = share / (1 - share)
    ref = samplesize_proportions_2indep_onetail(lift, p, 0.8, ratio=ratio, alpha=0.05)
    assert n_t == pytest.approx(ref, **TOL)
    assert n_c == pytest.approx(ref * ratio, **TOL)


def test_mde_inverts_the_sample_size():
    mde = stats.mde_proportions(0.05, 10_000, 2_500)
    assert stats.sample_size_proportions(0.05, mde, 0.2)[0] == pytest.approx(10_000, rel=1e-9)
    assert samplesize_proportions_2indep_onetail(mde, 0.05, 0.8, ratio=0.25) == pytest.approx(10_000, rel=1e-6)
    assert math.isnan(stats.mde_proportions(0.05, 3, 1))  # nothing is detectable with 4 members


def test_mde_means_has_the_power_statsmodels_computes():
    # NormalIndPower one-tailed at alpha/2 is the two-sided test without the far tail; its
    # solve_power is looser than 1e-6 (root finding), so compare its power at crmkit's MDE
    mde = stats.mde_means(25.0, 900, 25.0, 300)
    power = NormalIndPower().power(effect_size=mde / 5.0, nobs1=900, alpha=0.025, ratio=1 / 3,
                                   alternative="larger")
    assert power == pytest.approx(0.8, abs=1e-6)


def test_interval_coverage_over_400_simulated_campaigns():
    """95% intervals of the conversion lift (Newcombe) and revenue-per-member lift (Welch) cover the truth.

    400 campaigns of 4,000 treatment and 1,000 control members; treatment raises
    conversion from 8% to 10%; spend per buyer is lognormal(mu=4, sigma=1) in
    both groups. Coverage must be within two binomial SDs of 95%: [92.5%, 97.5%].
    Seed fixed once, not tuned.
    """
    rng = np.random.default_rng(20240601)
    k, n_t, n_c, p_t, p_c, mu, sigma = 400, 4000, 1000, 0.10, 0.08, 4.0, 1.0
    true_conv = p_t - p_c
    true_rev = (p_t - p_c) * math.exp(mu + sigma**2 / 2)

    def group(n, p):
        revenue = (rng.random((k, n)) < p) * rng.lognormal(mu, sigma, (k, n))
        return (revenue > 0).sum(axis=1), revenue.mean(axis=1), revenue.var(axis=1, ddof=1)

    buyers_t, mean_t, var_t = group(n_t, p_t)
    buyers_c, mean_c, var_c = group(n_c, p_c)
    conv = stats.proportion_lift(buyers_t, n_t, buyers_c, n_c).lift
    rev = stats.mean_lift(mean_t, var_t, n_t, mean_c, var_c, n_c).lift
    conv_cover = np.mean((conv.low <= true_conv) & (true_conv <= conv.high))
    rev_cover = np.mean((rev.low <= true_rev) & (true_rev <= rev.high))
    assert 0.925 <= conv_cover <= 0.975, conv_cover
    assert 0.925 <= rev_cover <= 0.975, rev_cover
