"""The CLV estimators follow scikit-learn's estimator API (issue 11).

``BaseEstimator`` subclasses whose one hyper-parameter (``max_iter``) is set
in ``__init__``; ``get_params``/``set_params`` and :func:`sklearn.clone` work;
a method that needs a fit raises ``NotFittedError`` (also crmkit's one-sentence
``ModelError``); ``fit`` returns the model; ``converged_`` is the optimiser's
own test and ``n_iter_`` its iterations. sklearn's ``check_estimator`` is not
run: these models take an RFM summary's columns, not a feature matrix ``X``.
"""
from __future__ import annotations

import json
import pickle
import warnings
from operator import attrgetter
from operator import methodcaller as call

import numpy as np
import pandas as pd
import pytest
from sklearn import clone
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from crmkit.clv import (NBD, BetaGeo, BetaGeoBetaBinom, GammaGamma, ModifiedBetaGeo, ParetoNBD,
                        fit_with_fallback)
from crmkit.errors import ModelError

from .test_convergence import nbd_summary

ESTIMATORS = [BetaGeo, ParetoNBD, ModifiedBetaGeo, NBD, GammaGamma, BetaGeoBetaBinom]
#: The published CDNOW fits (FHL 2005; Fader & Hardie's Pareto/NBD and Gamma-Gamma notes).
CDNOW = {
    BetaGeo: ({"r": 0.2426, "alpha": 4.4136, "a": 0.7930, "b": 2.4262}, -9582.43),
    ParetoNBD: ({"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.66}, -9595.0),
    GammaGamma: ({"p": 6.25, "q": 3.74, "v": 15.44}, -4055.92),
}


@pytest.fixture(scope="module")
def donations(donations_path):
    return pd.read_csv(donations_path).rename(columns={"periods": "n_periods", "weights": "weight"})


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_params_round_trip_and_clone(cls):
    est = cls()
    assert isinstance(est, BaseEstimator) and est.get_params() == {"max_iter": 1000}
    assert est.set_params(max_iter=250) is est and est.max_iter == 250
    assert est.get_params(deep=True) == {"max_iter": 250}
    copy = clone(est)
    assert copy is not est and type(copy) is cls and copy.get_params() == {"max_iter": 250}
    assert repr(copy) == f"{cls.__name__}(max_iter=250)" and repr(cls()) == f"{cls.__name__}()"
    with pytest.raises(ValueError, match="Invalid parameter 'alpha'"):
        est.set_params(alpha=1.0)  # a model parameter is fitted, not set


def test_clone_of_a_fitted_model_is_unfitted_and_fits_the_same(cdnow_summary):
    fitted = BetaGeo(max_iter=500).fit_summary(cdnow_summary)
    copy = clone(fitted)
    assert copy.get_params() == {"max_iter": 500}
    assert not [k for k in vars(copy) if k.endswith("_")]  # no fitted attribute is carried over
    with pytest.raises(NotFittedError):
        copy.p_alive(1, 2.0, 3.0)
    assert copy.fit_summary(cdnow_summary).params_ == fitted.params_


@pytest.mark.parametrize(("model", "calls"), [
    (BetaGeo(), [call("p_alive", 1, 2.0, 3.0), call("expected_purchases", 10, 1, 2.0, 3.0),
                 call("prob_purchase_within", 10, 1, 2.0, 3.0), call("expected_purchases_new", 10),
                 call("expected_purchases_if_alive", 10, 1, 3.0), call("summary"), call("as_dict"),
                 call("with_params", {"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 1.0})]),
    (ParetoNBD(), [call("p_alive", 1, 2.0, 3.0), call("expected_purchases", 10, 1, 2.0, 3.0)]),
    (NBD(), [call("prob_purchase_within", 10, 1, 2.0, 3.0)]),
    (GammaGamma(), [call("expected_spend", 2, 10.0), call("expected_spend_with_gradient", 2, 10.0),
                    attrgetter("mean_spend_")]),
    (BetaGeoBetaBinom(), [call("p_alive", 1, 2, 3), call("expected_purchases", 2, 1, 2, 3),
                          call("expected_purchases_new", 3)]),
], ids=lambda v: type(v).__name__ if isinstance(v, BaseEstimator) else None)
def test_not_fitted_error_before_fit(model, calls):
    message = (rf"this {model.label} model \({type(model).__name__}\) is not fitted yet; "
               r"call fit\(\) or fit_summary\(\) first\.")
    for use in calls:
        with pytest.raises(NotFittedError, match=message) as info:
            use(model)
        assert isinstance(info.value, ModelError)  # one sentence for the CLI and the reports, as before
    assert not hasattr(model, "params_")


def test_fit_returns_self(cdnow_summary, donations):
    for est, fit in ((BetaGeo(), lambda m: m.fit_summary(cdnow_summary)),
                     (NBD(), lambda m: m.fit(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])),
                     (GammaGamma(), lambda m: m.fit(cdnow_summary["frequency"], cdnow_summary["monetary"])),
                     (BetaGeoBetaBinom(), lambda m: m.fit_summary(donations))):
        assert fit(est) is est and est.converged_ is True


@pytest.mark.parametrize("cls", list(CDNOW))
def test_converged_on_cdnow_with_the_published_figures(cls, cdnow_summary):
    params, ll = CDNOW[cls]
    model = cls().fit_summary(cdnow_summary)
    assert model.converged_ is True and model.boundary_ is None and model.fit_note_ is None
    assert isinstance(model.n_iter_, int) and 0 < model.n_iter_ < model.max_iter
    record = next(s for s in model.starts_ if s["start"] == model.start_)
    assert record["converged"] is True and record["n_iter"] == model.n_iter_
    assert model.params_ == pytest.approx(params, rel=2e-3)
    assert model.log_likelihood_ == pytest.approx(ll, abs=0.05)
    d = model.as_dict()
    assert d["converged"] is True and d["n_iter"] == model.n_iter_


@pytest.mark.parametrize("cls", [BetaGeo, ParetoNBD, ModifiedBetaGeo, GammaGamma])
def test_not_converged_when_max_iter_is_tiny(cls, cdnow_summary):
    # one BFGS iteration, 20 of Nelder-Mead and one Newton step per start cannot meet the criteria on CDNOW:
    # the fit says so (sklearn's ConvergenceWarning, converged_ False, a note) instead of naming a limit
    with pytest.warns(ConvergenceWarning, match=r"did not converge within its iteration limit \(max_iter = 1\)"):
        model = cls(max_iter=1).fit_summary(cdnow_summary)
    assert model.converged_ is False and model.boundary_ is None
    assert not any(s["converged"] for s in model.starts_) and len(model.starts_) >= 3
    assert isinstance(model.n_iter_, int) and model.n_iter_ >= 1
    assert "max_iter" in model.fit_note_["en"] and "max_iter" in model.fit_note_["zh"]
    assert np.isfinite(model.log_likelihood_)
    d = model.as_dict()
    assert d["converged"] is False and d["fit_note"] == model.fit_note_
    json.dumps(d)
    # the same estimator with room to climb converges, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert clone(model).set_params(max_iter=1000).fit_summary(cdnow_summary).converged_ is True


@pytest.mark.parametrize("max_iter", [0, -5, 2.5, True, "100"])
def test_max_iter_is_checked_at_fit(max_iter, cdnow_summary):
    est = BetaGeo(max_iter=max_iter)  # stored as given, as sklearn asks; checked when fitting
    assert est.max_iter is max_iter
    with pytest.raises(ModelError, match=r"max_iter must be a whole number of iterations ≥ 1, not "):
        est.fit_summary(cdnow_summary)


def test_the_fallback_keeps_the_hyper_parameter():
    fitted = fit_with_fallback(BetaGeo(max_iter=300), nbd_summary(2000, seed=0))
    assert isinstance(fitted, NBD) and fitted.get_params() == {"max_iter": 300} and fitted.converged_ is True


def test_a_fitted_model_pickles_with_its_fit(bgnbd):
    # score snapshots store the fitted model pickled
    back = pickle.loads(pickle.dumps(bgnbd))
    assert back.as_dict() == bgnbd.as_dict() and back.get_params() == bgnbd.get_params()
    assert back.p_alive(2, 10.0, 20.0) == bgnbd.p_alive(2, 10.0, 20.0)
