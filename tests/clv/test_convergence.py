"""Fits that converge where lifetimes converges, limits named, degenerate data in one sentence.

The reference is lifetimes (``BetaGeoFitter``, ``ParetoNBDFitter``,
``ModifiedBetaGeoFitter``) fitted on the same summaries; its log-likelihoods
are stored in ``lifetimes_cutoffs.json`` by ``lifetimes_cutoffs.py`` (lifetimes'
Pareto/NBD takes minutes), with lifetimes' own error where it could not fit.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmkit.clv import (
    NBD,
    BetaGeo,
    GammaGamma,
    ModifiedBetaGeo,
    NoInteriorMaximum,
    ParetoNBD,
    fit_value_models,
    fit_with_fallback,
)
from crmkit.errors import ModelError
from crmkit.errors import NoInteriorMaximum as NoInteriorMaximumFromErrors
from crmkit.rfm import rfm_summary

REFERENCE = json.loads((Path(__file__).parent / "lifetimes_cutoffs.json").read_text())
CUTOFFS = [d.date().isoformat() for d in pd.date_range("1997-03-31", "1998-06-30", freq="ME")]
MODELS = {"bgnbd": BetaGeo, "pareto": ParetoNBD, "mbgnbd": ModifiedBetaGeo}


def nbd_summary(n: int, seed: int, r: float = 0.5, alpha: float = 5.0) -> pd.DataFrame:
    """Members who never drop out: Poisson purchases at gamma-distributed weekly rates, whole weeks."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    T = rng.integers(20, 61, n).astype(float)
    x = rng.poisson(lam * T)
    last = np.array([T[i] * rng.random(k).max() if k else 0.0 for i, k in enumerate(x)])
    tx = np.where(x > 0, np.maximum(np.round(last), 1.0), 0.0)
    return pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T})


def test_the_reference_covers_every_monthly_cutoff():
    assert {key.split()[0] for key in REFERENCE} == set(CUTOFFS) and len(REFERENCE) == 3 * len(CUTOFFS)


def test_every_monthly_cdnow_cutoff_converges_to_lifetimes_optimum_or_better(cdnow_con):
    # Acceptance of issue 9: at every month-end from 1997-03 to 1998-06, each model either reaches
    # lifetimes' log-likelihood (or a higher one) or says why no interior maximum exists.
    outcomes = {}
    for cut in CUTOFFS:
        summary = rfm_summary(cdnow_con, cut, period="W")
        for name, cls in MODELS.items():
            ref = REFERENCE[f"{cut} {name}"]
            try:
                model = cls().fit_summary(summary)
            except NoInteriorMaximum as err:
                assert "has no interior maximum" in str(err) and err.limits and err.fallback == "nbd"
                ll = err.log_likelihood
                outcomes[cut, name] = "no interior maximum"
            else:
                ll = model.log_likelihood_
                assert model.converged_ or (model.boundary_ and model.fit_note_["en"]), (cut, name)
                if model.converged_:
                    assert model.boundary_ is None and model.fit_note_ is None
                    record = next(s for s in model.starts_ if s["start"] == model.start_)
                    assert record["converged"] and record["log_likelihood"] == pytest.approx(ll, rel=1e-9)
                outcomes[cut, name] = "converged" if model.converged_ else "limit"
            if ref["log_likelihood"] is not None:
                assert ll >= ref["log_likelihood"] - 1e-6 * abs(ref["log_likelihood"]), (cut, name, ll, ref)
    # what the optimiser found: Pareto/NBD's best fit in spring 1997 is its limit s, β → ∞ (every
    # member drops out at the same rate), which lifetimes stops short of (s ≈ 130); the rest converge
    limits = {key for key, outcome in outcomes.items() if outcome != "converged"}
    assert limits == {("1997-03-31", "pareto"), ("1997-04-30", "pareto")}
    assert all(outcomes[key] == "limit" for key in limits)


def test_bgnbd_at_the_cutoff_of_the_issue_matches_lifetimes(cdnow_con):
    # issue 9: BG/NBD raised "did not converge" here on some machines; lifetimes: r .233, α 3.30, a .562, b 1.00
    model = BetaGeo().fit_summary(rfm_summary(cdnow_con, "1997-04-03", period="W"))
    assert model.converged_ and model.start_ == "data"
    got = model.params_
    assert got["r"] == pytest.approx(0.2332, abs=1e-3) and got["alpha"] == pytest.approx(3.301, abs=1e-2)
    assert got["a"] == pytest.approx(0.562, abs=1e-3) and got["b"] == pytest.approx(1.004, abs=1e-2)


def test_pareto_limit_is_reported_with_its_cause(cdnow_con):
    model = ParetoNBD().fit_summary(rfm_summary(cdnow_con, "1997-04-30", period="W"))
    assert not model.converged_ and model.boundary_ == {"s": "∞", "beta": "∞"}
    assert "every member appears to drop out at the same rate" in model.fit_note_["en"]
    assert "流失速率" in model.fit_note_["zh"]
    # lifetimes stops at s ≈ 114, β ≈ 1870 on this summary; the common rate s/β agrees
    ref = REFERENCE["1997-04-30 pareto"]["params"]
    assert model.params_["s"] / model.params_["beta"] == pytest.approx(ref["s"] / ref["beta"], rel=0.05)
    assert np.isfinite(model.p_alive(2, 10.0, 15.0)).all()
    d = model.as_dict()
    assert d["boundary"] == model.boundary_ and d["converged"] is False and len(d["starts"]) >= 2


def test_the_start_record(bgnbd):
    # the published CDNOW fit: the data-driven start reaches the interior maximum, no other start is run
    assert bgnbd.converged_ and bgnbd.start_ == "data" and len(bgnbd.starts_) == 1
    assert bgnbd.starts_[0]["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    d = bgnbd.as_dict()
    assert d["start"] == "data" and d["starts"] == bgnbd.starts_ and d["fallback_from"] is None
    assert d["fit_note"] is None and d["boundary"] is None
    json.dumps(d)


def test_no_dropout_has_no_interior_maximum_and_falls_back_to_the_nbd():
    summary = nbd_summary(2000, seed=0)
    nbd = NBD().fit_summary(summary)
    assert nbd.converged_
    for cls, param in ((BetaGeo, "a"), (ModifiedBetaGeo, "a")):
        with pytest.raises(NoInteriorMaximum, match=rf"has no interior maximum: the best fit is at {param} → 0 "
                                                    r"\(members do not appear to drop out") as info:
            cls().fit_summary(summary)
        err = info.value
        assert isinstance(err, ModelError) and err.limits == {param: "0"} and err.fallback == "nbd"
        assert err.model == cls.name and err.log_likelihood == pytest.approx(nbd.log_likelihood_, abs=1e-3)
        fitted = fit_with_fallback(cls(), summary)
        assert isinstance(fitted, NBD) and fitted.fallback_from_ == cls.name
        assert fitted.params_ == pytest.approx(nbd.params_)
        assert "no interior maximum" in fitted.fit_note_["en"] and "NBD" in fitted.fit_note_["en"]
        assert "没有内部最优解" in fitted.fit_note_["zh"]
    assert NoInteriorMaximumFromErrors is NoInteriorMaximum
    # by name, as the CLI and reports pass it
    assert fit_with_fallback("bgnbd", summary).fallback_from_ == "bgnbd"
    # a model that fits is returned as it is
    cdnow_like = fit_with_fallback(BetaGeo(), nbd_summary(2000, seed=1))
    assert isinstance(cdnow_like, BetaGeo) and cdnow_like.fallback_from_ is None and cdnow_like.fit_note_ is None


def test_pareto_without_dropout_falls_back_too():
    summary = nbd_summary(2000, seed=0)
    with pytest.raises(NoInteriorMaximum, match=r"the best fit is at s → 0"):
        ParetoNBD().fit_summary(summary)
    assert isinstance(fit_with_fallback(ParetoNBD(), summary), NBD)


def test_fit_value_models_falls_back(cdnow_summary):
    summary = nbd_summary(2000, seed=0).assign(monetary=20.0 + np.arange(2000) % 7)
    model, spend = fit_value_models(BetaGeo(), summary)
    assert isinstance(model, NBD) and model.fallback_from_ == "bgnbd" and spend.converged_
    model, _ = fit_value_models(BetaGeo(), cdnow_summary)
    assert isinstance(model, BetaGeo) and model.fallback_from_ is None


def test_fit_btyd_falls_back():
    from crmkit.churn import fit_btyd

    fitted = fit_btyd(nbd_summary(2000, seed=0), "bgnbd")
    assert isinstance(fitted, NBD) and fitted.fallback_from_ == "bgnbd"


def test_nbd_is_the_no_dropout_limit_of_the_bgnbd_and_pareto(cdnow_summary):
    nbd = NBD().fit_summary(cdnow_summary)
    assert nbd.converged_
    r, alpha = nbd.params_["r"], nbd.params_["alpha"]
    # the likelihood is the BG/NBD's at a → 0 and the Pareto/NBD's at s → 0
    x, tx, T = (cdnow_summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    bg_ll = BetaGeo()._objective(np.array([r, alpha, 1e-30, 1.0]), BetaGeo()._prepare(np.ones_like(x), x, tx, T))[0]
    assert nbd.log_likelihood_ == pytest.approx(bg_ll, rel=1e-9)
    pareto = ParetoNBD()
    with np.errstate(divide="ignore"):  # members with tx = T have A₀ = 0, whose log is -inf
        pareto_ll = pareto._objective(np.array([r, alpha, 1e-30, 1.0]), pareto._prepare(np.ones_like(x), x, tx, T))[0]
    assert nbd.log_likelihood_ == pytest.approx(pareto_ll, rel=1e-9)
    # and the NBD's conditional expectations are closed-form: λ | history ~ Gamma(r + x, alpha + T)
    assert nbd.p_alive(3, 20.0, 30.0) == 1.0
    assert nbd.expected_purchases(10, 3, 20.0, 30.0) == pytest.approx((r + 3) / (alpha + 30) * 10)
    assert nbd.prob_purchase_within(10, 3, 20.0, 30.0) == pytest.approx(1 - ((alpha + 30) / (alpha + 40)) ** (r + 3))
    assert nbd.expected_purchases_new(52) == pytest.approx(r / alpha * 52)
    assert nbd.expected_purchases_if_alive(10, 3, 30.0) == pytest.approx((r + 3) / (alpha + 30) * 10)
    # a separate fit of the negative binomial counts: x ~ NB(r, alpha/(alpha+T)) has the same maximum
    from scipy.optimize import minimize
    from scipy.stats import nbinom

    def nll(log_p):
        rr, aa = np.exp(log_p)
        return -nbinom.logpmf(x, rr, aa / (aa + T)).sum()

    ref = np.exp(minimize(nll, np.log([0.5, 5.0]), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-10}).x)
    assert [r, alpha] == pytest.approx(ref, rel=1e-4)


@pytest.mark.parametrize(("rows", "message"), [
    # all purchases on one day: everybody's first and only purchase on the same day
    (([0, 0, 0], [0, 0, 0], [5, 5, 5]), "all purchases fall on one day, so there is no repeat-purchase information"),
    (([0, 0, 0], [0, 0, 0], [5, 7, 9]), "no member has made a repeat purchase"),
    (([3], [2.0], [5.0]), "cannot be fitted on a single member"),
    (([0, 0], [0, 0], [0, 0]), r"all purchases fall on one day \(the as-of date\), so there is no repeat-purchase"),
    (([1, 2], [0, 0], [0, 0]), "zero total time"),
])
@pytest.mark.parametrize("cls", [BetaGeo, ParetoNBD, ModifiedBetaGeo, NBD])
def test_degenerate_inputs_name_the_real_cause(cls, rows, message):
    with pytest.raises(ModelError, match=message) as info:
        cls().fit(*rows)
    text = str(info.value)
    assert "longer calibration" not in text and "did not converge" not in text and text.count(". ") == 0


def test_degenerate_spend_names_the_real_cause():
    with pytest.raises(ModelError, match="every member's mean repeat spend is the same"):
        GammaGamma().fit([1, 2, 3], [10.0, 10.0, 10.0])
    with pytest.raises(ModelError, match="fewer than two"):
        GammaGamma().fit([1, 0], [10.0, 0.0])


def test_gamma_gamma_is_robust(gamma_gamma, cdnow_summary):
    # the published fit still comes from the first start; a poor first start is rescued by the others
    assert gamma_gamma.converged_ and gamma_gamma.start_ == "data"
    assert gamma_gamma.params_["p"] == pytest.approx(6.25, abs=0.01)
    spend = cdnow_summary.assign(monetary=cdnow_summary["monetary"] * 1e4)  # ten thousand times the money
    big = GammaGamma().fit_summary(spend)
    assert big.converged_ and big.params_["p"] == pytest.approx(6.25, abs=0.01)
    assert big.params_["v"] == pytest.approx(gamma_gamma.params_["v"] * 1e4, rel=1e-3)


def test_a_limit_no_better_than_the_nbd_falls_back_to_it():
    # on these no-dropout data MBG/NBD's best fit is at a, b → 0 (a few members drop out at once, the
    # rest never), a limit inside the model that gains almost nothing over the NBD: the NBD is used
    summary = nbd_summary(2000, seed=3)
    with pytest.raises(NoInteriorMaximum, match=r"a → 0, b → 0 \(members appear to be of two kinds.*\), and the "
                                                r"NBD without dropout fits as well") as info:
        ModifiedBetaGeo().fit_summary(summary)
    assert info.value.limits == {"a": "0", "b": "0"} and info.value.fallback == "nbd"
    fitted = fit_with_fallback("mbgnbd", summary)
    assert isinstance(fitted, NBD) and fitted.fallback_from_ == "mbgnbd" and "two kinds" in fitted.fit_note_["en"]
