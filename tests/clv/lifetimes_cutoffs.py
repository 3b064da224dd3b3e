"""Regenerate ``lifetimes_cutoffs.json``: lifetimes' fits of the CDNOW sample at every month-end cut-off.

For each month-end from 1997-03-31 to 1998-06-30, the CDNOW sample is
summarised by :func:`crmkit.rfm.rfm_summary` in weeks, and lifetimes'
``BetaGeoFitter``, ``ParetoNBDFitter`` and ``ModifiedBetaGeoFitter`` (default
settings) are fitted on it. The log-likelihood is lifetimes' own
``_negative_log_likelihood`` evaluated at its fitted parameters on the
unscaled data (lifetimes fits on rescaled times, whose likelihood differs
by a constant), so that it is comparable with crmkit's. A fit that lifetimes
cannot make is stored with its error. The fits take minutes (lifetimes'
Pareto/NBD is slow), hence the stored file; run from the repository root:

    .venv/bin/python tests/clv/lifetimes_cutoffs.py
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
OUT = HERE / "lifetimes_cutoffs.json"
CUTOFFS = [d.date().isoformat() for d in pd.date_range("1997-03-31", "1998-06-30", freq="ME")]


def lifetimes_log_likelihood(name: str, fitter, s: pd.DataFrame) -> tuple[float, float]:
    """lifetimes' log-likelihood of ``s`` at its optimum, in the summary's own time unit: (reported, evaluated).

    *reported* is the value lifetimes' optimiser reached on its rescaled times
    (t' = c·t), converted back: each of a member's x purchase times has a
    density 1/c times smaller in the original unit, so ln L = ln L' + Σx·ln c.
    *evaluated* is lifetimes' ``_negative_log_likelihood`` at its parameters on
    the original times (NaN where lifetimes' own ₂F₁ evaluation overflows).
    """
    x, tx, T = (s[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    w = np.ones_like(x)
    params = fitter.params_.to_numpy(dtype=float)
    # Pareto/NBD's divides the summed log-likelihood by the mean weight, the others by the total weight
    per = w.mean() if name == "pareto" else w.sum()
    reported = float(-fitter._negative_log_likelihood_ * per + x.sum() * np.log(fitter._scale))
    log_params = params if name == "pareto" else np.log(params)
    evaluated = float(-type(fitter)._negative_log_likelihood(log_params, x, tx, T, w, 0.0) * per)
    return reported, evaluated


def main() -> None:
    sys.path.insert(0, str(HERE))
    from conftest import load_cdnow
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    from crmkit.rfm import rfm_summary

    import importlib.util

    datasets = Path(list(importlib.util.find_spec("lifetimes").submodule_search_locations)[0]) / "datasets"
    con = load_cdnow(datasets / "CDNOW_sample.txt")
    fitters = {"bgnbd": BetaGeoFitter, "pareto": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}
    table = {}
    for cut in CUTOFFS:
        s = rfm_summary(con, cut, period="W")
        for name, fitter_class in fitters.items():
            fitter = fitter_class()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitter.fit(s["frequency"], s["recency"], s["T"])
                    ll, evaluated = lifetimes_log_likelihood(name, fitter, s)
                entry = {"params": fitter.params_.to_dict(), "log_likelihood": ll,
                         "log_likelihood_evaluated": evaluated if np.isfinite(evaluated) else None, "error": None}
            except Exception as err:  # noqa: BLE001 - lifetimes raises several kinds; the note is what counts
                entry = {"params": None, "log_likelihood": None, "log_likelihood_evaluated": None,
                         "error": " ".join(f"{type(err).__name__}: {err}".split())}
            table[f"{cut} {name}"] = entry
            print(cut, name, entry["log_likelihood"], entry["log_likelihood_evaluated"], entry["error"], flush=True)
    OUT.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
