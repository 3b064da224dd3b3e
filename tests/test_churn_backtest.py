"""Churn risk is never worse than its baseline: train on the past, score the future.

On a time split, :class:`crmkit.churn.ChurnRisk` is fitted with data up to an
as-of date only; its churn_risk is then judged on what members did in the
window *after* the as-of date, against the baseline, −(BTYD expected
purchases over the same window). No outcome after the as-of date is used in
fitting: the test checks that by fitting again on a store cut at the as-of date.
"""
import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crmkit import churn
from crmkit.rfm import calibration_holdout
from test_churn import cdnow_transactions, store_of


@pytest.fixture(scope="module")
def master_tx(cdnow_master_path) -> pd.DataFrame:
    return cdnow_transactions(cdnow_master_path)


@pytest.fixture(scope="module")
def master(master_tx):
    con = store_of(master_tx)
    yield con
    con.close()


def score_and_judge(con, as_of: str, window_days: int):
    """Fit on data up to ``as_of``, score as of ``as_of``; churned = no purchase day in the window after."""
    model = churn.ChurnRisk(window_days=window_days)
    feats = model.features(con, as_of, behaviour=False)
    model.fit(con, as_of, features=feats)
    if model.needs_behaviour:
        feats = model.features(con, as_of)
    risk = model.predict(feats)
    end = dt.date.fromisoformat(as_of) + dt.timedelta(days=window_days)
    after = calibration_holdout(con, as_of, end).set_index("member_id").loc[feats["member_id"]]
    churned = after["frequency_holdout"].to_numpy() == 0
    return model, feats, risk, churned


# Measured (BG/NBD; AUC of churn_risk vs −expected purchases, judged on the window after the as-of):
#   as of 1997-12-31, 90 days:  classifier chosen (backtest 0.780 vs 0.771 on 1997-10-02 → 12-31);
#                               future 0.808 vs 0.799
#   as of 1997-12-31, 180 days: expected purchases kept (the classifier, trained on features as of
#                               1997-01-05, ranked backwards: 0.286); future 0.799 = 0.799
@pytest.mark.parametrize("window_days", [90, 180])
def test_cdnow_master_churn_risk_ranks_the_future_at_least_as_well_as_expected_purchases(master, window_days):
    model, feats, risk, churned = score_and_judge(master, "1997-12-31", window_days)
    assert len(feats) == 23_570
    assert ((risk >= 0) & (risk <= 1)).all()
    bt = model.backtest_
    cut = dt.date(1997, 12, 31) - dt.timedelta(days=window_days)
    assert (bt.scored_on, bt.judged_to) == (cut, dt.date(1997, 12, 31))
    assert model.method_ == bt.chosen and bt.auc[bt.chosen][0] >= bt.auc[churn.BASELINE][0]
    auc, baseline = roc_auc_score(churned, risk), roc_auc_score(churned, -feats["expected_window"])
    assert auc >= baseline
    # the honest choice on 90 days: the behaviour classifier, which also wins on the future
    if window_days == 90:
        assert model.method_ == "classifier" and bt.trained_on == dt.date(1997, 7, 4)
        assert auc == pytest.approx(0.808, abs=0.005) and baseline == pytest.approx(0.7985, abs=0.002)
    else:
        assert model.method_ == "expected" and auc == pytest.approx(baseline, abs=1e-12)
    text = model.method_note("en")
    assert f"judged on {cut} → 1997-12-31" in text and f"{bt.auc[bt.chosen][0]:.3f}" in text


def test_cdnow_master_uses_nothing_after_the_as_of_date(master, master_tx):
    """A store that ends on the as-of date gives the same churn_risk: no outcome after it was used."""
    _, feats, risk, _ = score_and_judge(master, "1997-12-31", 90)
    cut = store_of(master_tx[master_tx["order_time"] < "1998-01-01"])
    model = churn.ChurnRisk(window_days=90).fit(cut, "1997-12-31")
    feats_cut = model.features(cut, "1997-12-31")
    again = pd.Series(model.predict(feats_cut), index=feats_cut["member_id"])
    cut.close()
    assert model.method_ == "classifier"
    # rfm_summary rows come in no particular order: compare member by member
    np.testing.assert_allclose(again.loc[feats["member_id"]].to_numpy(), risk, rtol=1e-9)


# Measured on the 3,000-member demo chain (seed 7), as of 2025-12-31 (AUC, judged on the window after):
#   180 days: expected purchases kept (backtest: P(no purchase) 0.643 vs 0.642, not beyond chance;
#             no classifier candidate); future 0.6905 = 0.6905 (P(no purchase) would have given 0.6884)
#    90 days: expected purchases kept (backtest: classifier 0.648, P(no purchase) 0.661 vs 0.661);
#             future 0.6971 = 0.6971
@pytest.mark.parametrize("window_days", [90, 180])
def test_demo_chain_churn_risk_ranks_the_future_at_least_as_well_as_expected_purchases(demo_store, window_days):
    db, _ = demo_store
    con = duckdb.connect(str(db), read_only=True)
    try:
        model, feats, risk, churned = score_and_judge(con, "2025-12-31", window_days)
    finally:
        con.close()
    assert churned.any() and not churned.all()
    bt = model.backtest_
    assert bt is not None and bt.auc[bt.chosen][0] >= bt.auc[churn.BASELINE][0]
    auc, baseline = roc_auc_score(churned, risk), roc_auc_score(churned, -feats["expected_window"])
    assert auc >= baseline


@pytest.mark.parametrize("as_of, why", [
    ("1997-03-31", "nobody had bought by the cut, 1996-12-31"),
    ("1997-04-01", "everyone had bought on one day by the cut, 1997-01-01: no model fits"),
])
def test_too_short_to_backtest_uses_expected_purchases_and_says_so(master_tx, as_of, why):
    """Three months of CDNOW and a 90-day window: too short to backtest."""
    con = store_of(master_tx[master_tx["order_time"] <= as_of])
    model = churn.ChurnRisk(window_days=90)
    feats = model.features(con, as_of, behaviour=False)
    model.fit(con, as_of, features=feats)
    con.close()
    assert model.method_ == "expected" and model.backtest_ is None
    risk = model.predict(feats)
    expected = feats["expected_window"].to_numpy()
    # ranks exactly as −expected purchases, and is a probability: on average the model's own
    # chance of no purchase (the curve is fitted to it)
    order = np.argsort(expected, kind="stable")
    assert (np.diff(risk[order]) <= 1e-12).all()
    assert risk.mean() == pytest.approx(feats["p_no_purchase"].mean(), abs=1e-4)
    assert model.method_note("en").startswith("churn risk = the model's expected purchases")
    assert "too short to backtest" in model.method_note("en")
    assert "历史太短" in model.method_note("zh") and "无法在" in model.method_note("zh")


def test_large_population_is_sampled_before_features(master):
    """Above max_train members the backtest and training run on a hashed sample of members."""
    model = churn.ChurnRisk(window_days=90, max_train=5_000)
    model.fit(master, "1997-12-31")
    assert model.sampled_
    assert 4_000 < model.n_train_ < 6_000
    temporary = master.execute("SELECT view_name FROM duckdb_views() WHERE temporary "
                               "UNION ALL SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert "_crmkit_churn_sample" not in {r[0] for r in temporary}  # the sample is dropped after the fit
