"""Holdout validation on the CDNOW sample: Fader, Hardie & Lee (2005), "Counting your customers
the easy way", figures 2 and 4 (calibration weeks 1-39 to 1997-09-30, holdout weeks 40-78)."""
from __future__ import annotations

import matplotlib.figure
import numpy as np
import pytest

from crmkit.clv.validation import (
    calibration_vs_holdout,
    compare_models,
    holdout_totals,
    p_alive_history,
    plot_calibration_vs_holdout,
    plot_model_comparison,
    plot_p_alive_history,
    plot_tracking,
    tracking,
)
from crmkit.errors import CrmkitError
from crmkit.viz import new_figure

from .conftest import CALIBRATION_END, OBSERVATION_END


def test_conditional_expectations_by_calibration_frequency(bgnbd, cdnow_holdout):
    # FHL (2005) figure 4: expected holdout purchases by calibration frequency 0..7+
    published = [0.225, 0.523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157]
    table = calibration_vs_holdout(bgnbd, cdnow_holdout)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    np.testing.assert_allclose(table["expected"], published, rtol=0.02)
    assert table["members"].sum() == 2357
    # the actual means, from the data: 1,411 members with no repeat purchase made 334 in the holdout
    assert table.loc["0", "members"] == 1411
    assert table.loc["0", "actual"] == pytest.approx(334 / 1411)


def test_holdout_total(bgnbd, cdnow_holdout):
    totals = holdout_totals(bgnbd, cdnow_holdout)
    assert totals["actual"] == 1882  # repeat transactions in weeks 40-78
    assert totals["expected"] == pytest.approx(1653.4, abs=0.1)
    assert totals["low"] < totals["expected"] < totals["high"]


def test_tracking(cdnow_con, bgnbd, cdnow_summary):
    table = tracking(cdnow_con, bgnbd, CALIBRATION_END, OBSERVATION_END)
    assert len(table) == 78 and str(table["date"].iloc[-1].date()) == OBSERVATION_END
    assert (np.diff(table["actual"]) >= 0).all() and (np.diff(table["expected"]) > 0).all()
    # 2,457 repeat transactions in calibration and 1,882 in the holdout
    assert table["actual"].iloc[-1] == 2457 + 1882
    # the model's total at the end is E[X(T + 39 weeks)] summed over the cohort
    horizon = (np.datetime64(OBSERVATION_END) - np.datetime64(CALIBRATION_END)) / np.timedelta64(7, "D")
    expected_end = bgnbd.expected_purchases_new(cdnow_summary["T"] + horizon).sum()
    assert table["expected"].iloc[-1] == pytest.approx(expected_end, rel=1e-10)
    assert (table["expected_low"] < table["expected"]).all() and (table["expected"] < table["expected_high"]).all()


def test_p_alive_history(cdnow_con, bgnbd, cdnow_summary):
    table = p_alive_history(cdnow_con, bgnbd, "00004", CALIBRATION_END)
    # member 00004 bought on 1997-01-01, 01-18 and 08-02
    assert table["purchase"].sum() == 3 and table["p_alive"].iloc[0] == 1.0
    row = cdnow_summary.set_index("member_id").loc["00004"]
    assert table["frequency"].iloc[-1] == row["frequency"] == 2
    assert table["p_alive"].iloc[-1] == pytest.approx(bgnbd.p_alive(row["frequency"], row["recency"], row["T"])[()])
    with pytest.raises(CrmkitError, match="no purchases"):
        p_alive_history(cdnow_con, bgnbd, "nobody", CALIBRATION_END)


def test_compare_models(cdnow_holdout, bgnbd):
    table = compare_models(cdnow_holdout)
    assert list(table.index) == ["BG/NBD", "Pareto/NBD", "MBG/NBD"]
    assert table.loc["BG/NBD", "log_likelihood"] == pytest.approx(bgnbd.log_likelihood_, rel=1e-9)
    assert table.loc["BG/NBD", "expected_total"] == pytest.approx(1653.4, abs=0.1)
    assert (table["actual_total"] == 1882).all() and (table["note"] == "").all()
    assert (table["rmse"] >= table["mae"]).all()


def test_plots_in_both_languages(cdnow_con, bgnbd, cdnow_holdout):
    tables = [
        (plot_calibration_vs_holdout, calibration_vs_holdout(bgnbd, cdnow_holdout), "Holdout purchases", "验证期"),
        (plot_tracking, tracking(cdnow_con, bgnbd, CALIBRATION_END, OBSERVATION_END), "Cumulative", "累计"),
        (plot_p_alive_history, p_alive_history(cdnow_con, bgnbd, "00004", OBSERVATION_END), "00004", "活跃概率"),
        (plot_model_comparison, compare_models(cdnow_holdout, ["bgnbd"]), "holdout error", "模型比较"),
    ]
    for plot, table, en, zh in tables:
        fig = plot(table, lang="en")
        assert isinstance(fig, matplotlib.figure.Figure) and en in fig.axes[0].get_title()
        fig, ax = new_figure()
        assert plot(table, lang="zh", ax=ax) is fig and zh in ax.get_title()


def test_holdout_checks_need_a_holdout_frame(bgnbd, cdnow_summary):
    with pytest.raises(CrmkitError, match="frequency_holdout"):
        calibration_vs_holdout(bgnbd, cdnow_summary)


def test_no_convergence_failure_on_cdnow_master(cdnow_master_path):
    from crmkit.clv import MODELS
    from crmkit.rfm import compress, rfm_summary

    from .conftest import load_cdnow

    con = load_cdnow(cdnow_master_path)
    rows = compress(rfm_summary(con, CALIBRATION_END))
    assert rows["weight"].sum() == 23570
    fitted = {name: cls().fit_summary(rows) for name, cls in MODELS.items()}
    assert all(m.converged_ and np.isfinite(m.log_likelihood_) for m in fitted.values())


def test_holdout_rows_come_in_member_order(cdnow_holdout):
    # folds and samples drawn from it (the churn backtest) must not depend on the engine's thread timing
    assert cdnow_holdout["member_id"].is_monotonic_increasing and cdnow_holdout["member_id"].is_unique
