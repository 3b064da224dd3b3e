import datetime as dt

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import crmkit
from crmkit import churn
from crmkit.rfm import calibration_holdout

CAL_END, OBS_END = "1997-09-30", "1998-06-30"  # CDNOW: weeks 1–39 calibrate, weeks 40–78 hold out


def cdnow_transactions(path) -> pd.DataFrame:
    """CDNOW_sample.txt (headerless, whitespace: id, original id, yyyymmdd, CDs, dollars) or
    CDNOW_master.txt (a header line, then id, yyyymmdd, CDs, dollars) as canonical transactions."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    raw = raw[raw[raw.columns[-3]].str.isdigit()].reset_index(drop=True)  # the master's header line
    ids, days, cds, dollars = raw[0], raw[raw.columns[-3]], raw[raw.columns[-2]], raw[raw.columns[-1]]
    return pd.DataFrame({
        "member_id": ids,
        "order_id": ids + "-" + raw.index.astype(str),
        "line_no": 1,
        "order_time": pd.to_datetime(days, format="%Y%m%d"),
        "quantity": cds.astype(float),
        "amount": dollars.astype(float),
        "txn_type": "sale",
    })


def store_of(tx: pd.DataFrame, con=None):
    """``tx`` inserted into the transactions of ``con`` (a new in-memory store by default)."""
    con = crmkit.connect(":memory:") if con is None else con
    con.register("_tx", tx)
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM _tx")
    con.unregister("_tx")
    return con


def load_cdnow(con, path):
    store_of(cdnow_transactions(path), con)


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_path):
    con = crmkit.connect(":memory:")
    load_cdnow(con, cdnow_sample_path)
    yield con
    con.close()


@pytest.fixture(scope="module")
def result(cdnow):
    return churn.backtest(cdnow, CAL_END, OBS_END)


# ----------------------------------------------------------------- CDNOW holdout

def test_cdnow_churn_risk_beats_bgnbd_expected_purchases(result):
    m = result.members
    assert len(m) == 2357
    assert m["churned"].sum() == 1673  # bought nothing in weeks 40–78
    # BG/NBD expected purchases in weeks 40–78 rank churners with AUC 0.7725 (the same with
    # lifetimes' BetaGeoFitter: r, alpha, a, b = 0.243, 4.414, 0.793, 2.426 on this file).
    auc, low, high = result.baseline_auc
    assert auc == pytest.approx(0.7725, abs=5e-4)
    assert auc == pytest.approx(roc_auc_score(m["churned"], -m["expected_window"]), abs=1e-12)
    assert low < auc < high
    # churn_risk (cross-fitted, members never scored by a model that saw them) does better
    assert result.auc[0] == pytest.approx(0.779, abs=0.003)
    assert result.auc[0] > auc + 0.005
    assert result.auc_gain[0] == pytest.approx(result.auc[0] - auc, abs=1e-12)
    assert result.auc_gain[1] < result.auc_gain[0] < result.auc_gain[2]


def test_cdnow_top_decile_lift(result):
    lift, low, high = result.lift
    top = result.members.nlargest(236, "churn_risk")  # ceil(2,357 / 10)
    assert lift == pytest.approx(top["churned"].mean() / result.members["churned"].mean(), abs=1e-9)
    assert lift == pytest.approx(1.29, abs=0.02)
    assert lift > result.baseline_lift[0]
    assert 1 < low < lift < high


def test_cdnow_calibration_by_decile(result):
    cal = result.calibration
    assert list(cal["decile"]) == list(range(1, 11))
    assert cal["members"].sum() == 2357
    # well calibrated: every decile's observed churn within 6 points of the prediction,
    # and inside or near its 95% interval
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.06
    assert cal["predicted"].is_monotonic_increasing
    assert cal["observed"].iloc[0] < 0.25 and cal["observed"].iloc[-1] > 0.85
    assert (cal["predicted"] * cal["members"]).sum() == pytest.approx(1673, rel=0.01)


def test_cdnow_calibration_figure_in_both_languages(result):
    for lang, title in (("zh", "流失预警校准：预测 vs 实际"), ("en", "Churn warning calibration: predicted vs observed")):
        fig = churn.plot_calibration(result, lang)
        ax = fig.axes[0]
        assert ax.get_title() == title
        assert ax.get_xlabel() == churn.t("churn.predicted", lang)
        plt.close(fig)
    summary = result.summary("en")
    assert list(summary["score"]) == ["churn_risk", "expected_purchases", "churn_risk − expected_purchases",
                                      "churn_risk", "expected_purchases"]


def test_one_time_buyers_are_not_ranked_safest(cdnow, result):
    feats = churn.churn_features(cdnow, CAL_END, window_days=273).set_index("member_id")
    one_time = feats["frequency"].eq(0)
    assert one_time.sum() == 1411  # 60% of the members
    # the flaw: BG/NBD gives every one-time buyer P(alive) = 1, so the "safest" tenth by
    # P(alive) is all one-time buyers, although 86% of them bought nothing in weeks 40–78
    assert (feats.loc[one_time, "p_alive"] == 1).all()
    assert one_time[feats.nlargest(236, "p_alive").index].all()
    m = result.members.set_index("member_id").join(one_time.rename("one_time"))
    assert m.loc[m["one_time"], "churned"].mean() == pytest.approx(0.8632, abs=1e-4)
    assert m.loc[~m["one_time"], "churned"].mean() == pytest.approx(0.4810, abs=1e-4)
    # churn_risk ranks them riskier than repeat buyers, and none of them among the safest tenth
    assert m.loc[m["one_time"], "churn_risk"].mean() > m.loc[~m["one_time"], "churn_risk"].mean() + 0.3
    assert m.nsmallest(236, "churn_risk")["one_time"].mean() < 0.01
    # so does the fallback without a classifier: the model's chance of no purchase in the window
    assert one_time[feats.nsmallest(236, "p_no_purchase").index].mean() < 0.01


def test_train_on_the_past_predict_the_future(cdnow):
    """The scoring path, as of 1997-09-30 with a 180-day window, judged on the 180 days after.

    The contract is honest whichever score wins: candidates scored on data up to 1997-04-03 and
    judged on 1997-04-03 → 1997-09-30; the chosen one at least as good as expected purchases there;
    and on the future the risk ranks at least as well as expected purchases. (Which score wins is
    not asserted: it must not hang on one fit converging.)
    """
    model = churn.ChurnRisk(window_days=180)
    feats = model.features(cdnow, CAL_END, behaviour=False)
    model.fit(cdnow, CAL_END, features=feats)
    assert model.trained_on_ == dt.date(1997, 4, 3)
    assert model.method_ in churn.SCORES
    bt = model.backtest_
    if bt is None:  # the model could not be fitted as of 1997-04-03: the general-purpose score
        assert model.method_ == "expected"
    else:
        assert (bt.scored_on, bt.judged_to) == (dt.date(1997, 4, 3), dt.date(1997, 9, 30))
        assert bt.trained_on is None  # 1996-10-05 is before CDNOW begins: no classifier candidate
        assert bt.auc[model.method_][0] >= bt.auc["expected"][0]
    if model.needs_behaviour:
        feats = model.features(cdnow, CAL_END)
    risk = model.predict(feats)
    assert ((risk >= 0) & (risk <= 1)).all()
    after = calibration_holdout(cdnow, CAL_END, "1998-03-29").set_index("member_id")  # 180 days after
    assert sorted(after.index) == sorted(feats["member_id"])
    y = after.loc[feats["member_id"], "frequency_holdout"].to_numpy() == 0
    assert roc_auc_score(y, risk) >= roc_auc_score(y, -feats["expected_window"])


def test_choose_score_needs_a_gain_beyond_chance():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.6
    base = y + rng.normal(0, 1.5, 2000)                       # a weak score
    noise = base + rng.normal(0, 1e-3, 2000)                  # the same ranking, give or take a few pairs
    better = y + rng.normal(0, 0.5, 2000)                      # a clearly better one
    chosen, auc, gain = churn.choose_score(y, {"expected": base, "model": noise})
    assert chosen == "expected" and gain["model"][1] <= 0 < gain["model"][2]
    chosen, auc, gain = churn.choose_score(y, {"expected": base, "model": noise, "classifier": better})
    assert chosen == "classifier" and gain["classifier"][1] > 0
    assert auc["classifier"][0] == pytest.approx(roc_auc_score(y, better), abs=1e-12)
    assert gain["classifier"][0] == pytest.approx(auc["classifier"][0] - auc["expected"][0], abs=1e-12)
    worse = -better
    assert churn.choose_score(y, {"expected": base, "classifier": worse})[0] == "expected"


def test_expected_purchases_curve_ranks_as_expected_purchases_and_is_calibrated():
    rng = np.random.default_rng(1)
    expected = rng.gamma(0.5, 1.0, 5000)
    p_churn = np.exp(-expected)                               # Poisson: chance of no purchase
    churned = rng.random(5000) < p_churn
    curve = churn.ExpectedPurchasesRisk().fit(expected, churned)
    risk = curve.predict_risk(expected)
    assert curve.slope_ < 0
    assert roc_auc_score(churned, risk) == pytest.approx(roc_auc_score(churned, -expected), abs=1e-12)
    # logistic with an intercept: the mean prediction equals the observed churn rate at the optimum
    assert risk.mean() == pytest.approx(churned.mean(), abs=1e-4)
    # soft labels: fitted to probabilities instead of outcomes
    soft = churn.ExpectedPurchasesRisk().fit(expected, p_churn).predict_risk(expected)
    assert soft.mean() == pytest.approx(p_churn.mean(), abs=1e-4)
    assert np.abs(soft - p_churn).max() < 0.15


# ------------------------------------------------------------ hand-made features

@pytest.fixture
def small(con):
    rows = [
        # member A: three purchase days; 10 yuan of the last order returned; two channels
        ("A", "a1", "2024-01-01 10:00", 100.0, "pos", "sale"),
        ("A", "a2", "2024-01-11 12:00", 50.0, "online", "sale"),
        ("A", "a3", "2024-01-31 09:00", 30.0, "pos", "sale"),
        ("A", "a3", "2024-02-05 09:00", -10.0, "pos", "return"),
        # member B: one purchase day, two orders on it
        ("B", "b1", "2024-02-20 08:00", 20.0, "miniapp", "sale"),
        ("B", "b2", "2024-02-20 18:00", 25.0, "miniapp", "sale"),
        # member C: buys after the as-of date only
        ("C", "c1", "2024-03-05 08:00", 80.0, "pos", "sale"),
        # A again, after the as-of date
        ("A", "a4", "2024-04-01 10:00", 40.0, "pos", "sale"),
    ]
    df = pd.DataFrame(rows, columns=["member_id", "order_id", "order_time", "amount", "channel", "txn_type"])
    df["order_time"] = pd.to_datetime(df["order_time"])
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM df")
    return con


def test_behaviour_features_by_hand(small):
    b = churn.behaviour_features(small, "2024-03-01", recent_days=31).set_index("member_id")
    assert list(b.index) == ["A", "B"]
    a = b.loc["A"]
    assert a["days_since_last"] == 30           # 2024-01-31 → 2024-03-01 (leap year)
    assert a["mean_interval_days"] == 15.0      # 30 days over 2 intervals
    assert a["last_interval_days"] == 20
    assert a["tenure_days"] == 61               # 2024-01-01 … 2024-03-01, both counted
    # net spend 100 + 50 + (30 − 10) = 170; the last 31 days (after 2024-01-30) hold 20 of it
    assert a["spend_trend"] == pytest.approx(20 / 170 - 31 / 61)
    assert a["avg_spend"] == pytest.approx(170 / 3)
    assert a["returns_share"] == pytest.approx(10 / 180)
    assert a["channels"] == 2
    bb = b.loc["B"]
    assert bb["days_since_last"] == 10 and bb["tenure_days"] == 11
    assert pd.isna(bb["mean_interval_days"]) and pd.isna(bb["last_interval_days"])
    assert bb["spend_trend"] == 0               # tenure within the recent window: no trend yet
    assert bb["avg_spend"] == 45.0 and bb["channels"] == 1


def test_design_matrix_neutral_values_for_one_time_buyers(small):
    feats = pd.DataFrame({
        "member_id": ["A", "B"], "frequency": [2, 0], "expected_window": [0.5, 0.1],
        "days_since_last": [30, 10], "mean_interval_days": [15.0, np.nan],
        "last_interval_days": [20.0, np.nan], "tenure_days": [61, 11], "spend_trend": [-0.39, 0.0],
        "avg_spend": [170 / 3, 45.0], "returns_share": [10 / 180, 0.0], "channels": [2, 1],
    })
    x = churn.design_matrix(feats)
    assert list(x.columns) == list(churn.FEATURES)
    assert x.loc[0, "log_gap_ratio"] == pytest.approx(np.log(31 / 16))
    assert x.loc[0, "log_last_interval_ratio"] == pytest.approx(np.log(21 / 16))
    assert x.loc[0, "log_channels"] == pytest.approx(np.log(2))
    assert x.loc[1, ["log_gap_ratio", "log_last_interval_ratio", "log_channels"]].tolist() == [0, 0, 0]
    assert x.loc[1, "one_time"] == 1 and x.loc[0, "one_time"] == 0
    assert not x.isna().any().any()


def test_too_little_history_falls_back_to_expected_purchases(small):
    feats = pd.DataFrame({"expected_window": [0.1, 2.0, 0.5, 1.0], "p_no_purchase": [0.9, 0.2, 0.6, 0.4]})
    model = churn.ChurnRisk(window_days=30).fit(small, "2024-03-01", features=feats)
    assert model.method_ == "expected" and model.backtest_ is None and model.classifier_ is None
    assert model.n_train_ == 1  # only A had bought by 2024-01-31
    risk = model.predict(feats)
    assert list(np.argsort(-risk)) == [0, 2, 3, 1]  # fewer expected purchases = riskier
    assert risk.mean() == pytest.approx(feats["p_no_purchase"].mean(), abs=1e-4)
    assert "too short to backtest" in model.method_note("en")
    assert "2024-01-31" in model.method_note("en") and "2024-03-01" in model.method_note("en")


# ------------------------------------------------------------ bands, metrics, list

def test_risk_bands_fixed_thresholds():
    risk = pd.Series([0.0, 0.29, 0.3, 0.59, 0.6, 1.0], index=list("abcdef"))
    bands = churn.risk_bands(risk, churn.DEFAULT_THRESHOLDS)
    assert bands.tolist() == ["low", "low", "medium", "medium", "high", "high"]
    assert list(bands.index) == list("abcdef")
    assert churn.risk_bands([0.5], (0.2, 0.5)).tolist() == ["high"]
    with pytest.raises(ValueError):
        churn.risk_bands([0.5], (0.6, 0.3))


def test_risk_bands_by_default_are_relative():
    # every member is likely to lapse in a chain people visit twice a year: bands still separate them
    risk = pd.Series(np.linspace(0.70, 0.89, 10))
    low_below, high_from = churn.band_thresholds(risk)
    assert (low_below, high_from) == pytest.approx((np.quantile(risk, 0.5), np.quantile(risk, 0.8)))
    assert churn.risk_bands(risk).value_counts().to_dict() == {"low": 5, "medium": 3, "high": 2}
    assert churn.risk_bands(risk, churn.DEFAULT_THRESHOLDS).eq("high").all()
    with pytest.raises(ValueError):
        churn.band_thresholds(risk, (0.8, 0.5))


def test_bands_are_named_by_their_range_of_churn_probability():
    assert churn.band_labels((0.52, 0.77), "zh") == {
        "high": "流失概率 77–100%", "medium": "流失概率 52–77%", "low": "流失概率 0–52%"}
    assert churn.band_labels((0.52, 0.77), "en")["high"] == "churn probability 77–100%"
    # cut-offs that round alike get a decimal, so the ranges stay apart
    assert churn.band_ranges((0.771, 0.774)) == {"high": "77.4–100%", "medium": "77.1–77.4%", "low": "0–77.1%"}
    # the keys of churn_band stay high / medium / low; their plain names no longer claim "low risk"
    assert churn.t("churn.low", "zh") != "低风险" and churn.t("churn.low", "en") != "Low risk"


def test_auc_and_delong_interval_by_hand():
    y = [True, True, False, False]
    s = [0.9, 0.4, 0.5, 0.1]
    # 3 of the 4 (churned, retained) pairs are ordered: AUC 0.75. Placements of the churned
    # (share of retained below): 1, 0.5; of the retained (share of churned above): 0.5, 1.
    # DeLong variance: var(1, 0.5)/2 + var(0.5, 1)/2 = 0.125/2 + 0.125/2 = 0.125.
    auc, low, high = churn.auc_interval(y, s)
    assert auc == 0.75
    assert low == pytest.approx(0.75 - 1.959964 * np.sqrt(0.125), abs=1e-6)
    assert high == 1.0
    diff, dlow, dhigh = churn.auc_difference(y, s, s)
    assert (diff, dlow, dhigh) == (0.0, 0.0, 0.0)
    diff, _, _ = churn.auc_difference(y, s, [0.1, 0.2, 0.3, 0.4])  # AUC 0 for the second score
    assert diff == 0.75


def test_top_decile_lift_and_calibration_by_hand():
    risk = np.arange(20) / 20          # 0.00 … 0.95
    churned = np.zeros(20, dtype=bool)
    churned[[18, 19, 10, 5]] = True    # both of the riskiest tenth churned; 4 of 20 overall
    lift, low, high = churn.top_decile_lift(churned, risk)
    assert lift == pytest.approx((2 / 2) / (4 / 20))
    assert low < lift < high
    cal = churn.calibration_table(churned, risk, bins=4)
    assert cal["members"].tolist() == [5, 5, 5, 5]
    assert cal["predicted"].tolist() == pytest.approx([0.1, 0.35, 0.6, 0.85])
    assert cal["observed"].tolist() == pytest.approx([0.0, 0.2, 0.2, 0.4])
    assert (cal["observed_low"] <= cal["observed"]).all() and (cal["observed"] <= cal["observed_high"]).all()


def test_at_risk_members_masks_pii(con):
    con.execute("INSERT INTO members (member_id, phone, name) VALUES "
                "('m1', '13812345678', '张三'), ('m2', '13900001111', '欧阳娜娜'), ('m3', '13700002222', '李四')")
    scores = pd.DataFrame({
        "member_id": ["m1", "m2", "m3", "m4"],
        "churn_risk": [0.9, 0.7, 0.2, 0.95],
        "churn_band": ["high", "high", "low", "high"],
        "clv": [100.0, 500.0, 900.0, 50.0],
        "clv_low": [80.0, 400.0, 700.0, 30.0],
        "clv_high": [130.0, 650.0, 1100.0, 70.0],
    })
    out = churn.at_risk_members(scores, con, top=2)
    assert out["member_id"].tolist() == ["m2", "m1"]           # high band, by CLV
    assert out["phone"].tolist() == ["139****1111", "138****5678"]
    assert out["name"].tolist() == ["欧***", "张*"]
    text = out.to_csv()
    assert "13900001111" not in text and "张三" not in text
