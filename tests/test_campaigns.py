"""Campaign measurement on hand-made stores: values computed by hand or with statsmodels."""
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep, samplesize_proportions_2indep_onetail
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ttest_ind

import crmkit
from crmkit import campaigns
from crmkit.campaigns.design import _stratified_control
from crmkit.cli import main
from crmkit.errors import CrmkitError, ModelError

TOL = dict(rel=1e-6, abs=1e-9)


def insert(con, table, rows):
    frame = pd.DataFrame(rows)
    con.register("_rows", frame)
    con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _rows')
    con.unregister("_rows")


def add_campaign(con, cid="C1", start="2024-03-01", end="2024-03-14", attribution_days=14,
                 cost_per_contact=0.5, fixed_cost=100.0, coupon_value=10.0, margin_rate=0.4):
    insert(con, "campaigns", [dict(campaign_id=cid, name=f"campaign {cid}", start=pd.Timestamp(start),
                                   end=pd.Timestamp(end), channel="sms", cost_per_contact=cost_per_contact,
                                   fixed_cost=fixed_cost, coupon_value=coupon_value, margin_rate=margin_rate,
                                   attribution_days=attribution_days)])


def assign(con, cid, treatment, control, contacted=None):
    contacted = set(treatment if contacted is None else contacted)
    insert(con, "campaign_assignments", [
        dict(campaign_id=cid, member_id=m, group=g,
             contacted_at=pd.Timestamp("2024-03-01 09:00") if m in contacted else pd.NaT)
        for g, ms in (("treatment", treatment), ("control", control)) for m in ms])


def buy(con, rows):
    """rows: (member_id, order_id, order_time, amount[, txn_type])."""
    insert(con, "transactions", [
        dict(member_id=r[0], order_id=r[1], line_no=1, order_time=pd.Timestamp(r[2]), amount=float(r[3]),
             txn_type=r[4] if len(r) > 4 else ("return" if r[3] < 0 else "sale"), store_id="S1")
        for r in rows])


@pytest.fixture
def hand(con):
    """Six treatment (t6 not contacted) and four control members; window [2024-03-01, 2024-03-15)."""
    add_campaign(con)
    assign(con, "C1", ["t1", "t2", "t3", "t4", "t5", "t6"], ["c1", "c2", "c3", "c4"],
           contacted=["t1", "t2", "t3", "t4", "t5"])
    buy(con, [
        ("t1", "o1", "2024-03-02 10:00", 100), ("t1", "o2", "2024-03-10 10:00", 50),
        ("t2", "o3", "2024-03-05 10:00", 80), ("t2", "o3", "2024-03-20 10:00", -30),  # late return counts
        ("t3", "o4", "2024-02-28 10:00", 60), ("t3", "o4", "2024-03-03 10:00", -60),  # order before window
        ("t4", "o5", "2024-03-15 00:00", 70),  # the window's end is exclusive
        ("t5", "o6", "2024-03-14 23:59", 40),
        ("c1", "o7", "2024-03-03 10:00", 30), ("c2", "o8", "2024-03-01 00:00", 20),  # start is inclusive
    ])
    insert(con, "coupons", [
        dict(coupon_id="k1", member_id="t1", campaign_id="C1", value=10.0, issued_at=pd.Timestamp("2024-03-01"),
             redeemed_at=pd.Timestamp("2024-03-02 10:00"), order_id="o1"),
        dict(coupon_id="k2", member_id="t2", campaign_id="C1", value=None, issued_at=pd.Timestamp("2024-03-01"),
             redeemed_at=pd.Timestamp("2024-03-05 10:00"), order_id="o3"),
        dict(coupon_id="k3", member_id="t3", campaign_id="C1", value=10.0, issued_at=pd.Timestamp("2024-03-01"),
             redeemed_at=pd.NaT, order_id=None),
    ])
    return con


def test_hand_computed_campaign(hand):
    r = campaigns.measure(hand, "C1")
    # orders per member: t (2, 1, 0, 0, 1, 0), c (1, 1, 0, 0); revenue: t (150, 50, 0, 0, 40, 0), c (30, 20, 0, 0)
    rev_t, rev_c = np.array([150, 50, 0, 0, 40, 0.0]), np.array([30, 20, 0, 0.0])
    d = r.to_dict()
    assert (d["n_treatment"], d["n_control"], d["n_contacted"]) == (6, 4, 5)
    assert d["conversion"]["treatment"] == 0.5 and d["conversion"]["control"] == 0.5
    assert d["conversion"]["lift_ci"] == pytest.approx(
        confint_proportions_2indep(3, 6, 2, 4, method="newcomb"), **TOL)
    assert d["orders_per_member"]["lift"] == pytest.approx(4 / 6 - 2 / 4)
    rev = d["revenue_per_member"]
    assert (rev["treatment"], rev["control"], rev["lift"], rev["lift_rel"]) == pytest.approx((40, 12.5, 27.5, 2.2))
    assert rev["lift_ci"] == pytest.approx(
        CompareMeans(DescrStatsW(rev_t), DescrStatsW(rev_c)).tconfint_diff(usevar="unequal"), **TOL)
    assert d["margin_per_member"]["lift"] == pytest.approx(0.4 * 27.5)
    assert d["margin_per_member"]["lift_ci"] == pytest.approx([0.4 * v for v in rev["lift_ci"]], **TOL)
    assert d["incremental_revenue"] == pytest.approx(6 * 27.5)
    assert d["incremental_margin"] == pytest.approx(6 * 11.0)
    # cost: 5 contacted × ¥0.5 + ¥100 fixed + 2 redeemed coupons × ¥10 (k2's value from the campaign)
    assert d["cost"] == pytest.approx(122.5)
    assert d["cost_breakdown"] == pytest.approx({"contact": 2.5, "fixed": 100.0, "coupons": 20.0})
    assert d["roi"] == pytest.approx((66 - 122.5) / 122.5)
    assert d["roi_ci"] == pytest.approx([(6 * 0.4 * v - 122.5) / 122.5 for v in rev["lift_ci"]], **TOL)
    # p-value of H0: ROI <= 0, i.e. revenue lift <= cost / (n_t × margin rate)
    _, p, _ = ttest_ind(rev_t, rev_c, usevar="unequal", value=122.5 / 6 / 0.4, alternative="larger")
    assert d["p_value"] == pytest.approx(p, **TOL)
    f = d["funnel"]
    assert [s["members"] for s in f["stages"]] == [6, 5, 2, 3]
    assert (f["coupons_issued"], f["coupons_redeemed"], f["redemption_rate"]) == (3, 2, pytest.approx(2 / 3))
    json.dumps(d)  # serialisable, no NaN


def test_tiny_control_warns_and_cannot_tell(con):
    """A clear effect with 20 controls: intervals shown, but the verdict waits for a bigger control group."""
    add_campaign(con, fixed_cost=10.0, cost_per_contact=0.0)
    t = [f"t{i}" for i in range(200)]
    c = [f"c{i}" for i in range(20)]
    assign(con, "C1", t, c)
    buy(con, [(m, f"o{m}", "2024-03-05", 200.0) for m in t[:120]] + [(m, f"o{m}", "2024-03-05", 200.0)
                                                                     for m in c[:2]])
    r = campaigns.measure(con, "C1")
    assert r.net_margin.low > 0  # the interval alone would say "pays"
    assert r.verdict == campaigns.CANNOT_TELL
    assert [k for k, _ in r.warnings] == ["campaign.warn.small_control", "campaign.warn.few_buyers"]
    assert "too small" in r.to_dict()["verdict_text"]


def test_no_control_gives_descriptive_numbers_only(hand):
    add_campaign(hand, "C2")
    assign(hand, "C2", ["t1", "t2", "t3"], [])
    d = campaigns.measure(hand, "C2").to_dict()
    assert d["incrementality"] is None and "no control group" in d["reason"]
    assert d["conversion"]["treatment"] == pytest.approx(2 / 3)
    assert d["revenue_per_member"]["treatment"] == pytest.approx(200 / 3)
    assert all(d["conversion"][k] is None for k in ("control", "lift", "lift_ci", "lift_rel", "lift_rel_ci"))
    assert d["roi"] is None and d["roi_ci"] is None and d["p_value"] is None and d["verdict"] is None
    assert d["incremental_margin"] is None
    assert d["cost"] == pytest.approx(3 * 0.5 + 100)


def test_one_control_member_is_no_control(hand):
    add_campaign(hand, "C3")
    assign(hand, "C3", ["t1", "t2", "t3"], ["c1"])
    d = campaigns.measure(hand, "C3").to_dict()
    assert d["incrementality"] is None and "at least 2" in d["reason"] and d["roi"] is None


def test_zero_purchases(con):
    """Nobody bought: no incremental revenue, so the campaign's cost is lost (ROI = −100%)."""
    add_campaign(con)
    assign(con, "C1", [f"t{i}" for i in range(300)], [f"c{i}" for i in range(150)])
    r = campaigns.measure(con, "C1")
    d = r.to_dict()
    assert d["conversion"]["lift"] == 0 and d["conversion"]["lift_ci"] == pytest.approx(
        confint_proportions_2indep(0, 300, 0, 150, method="newcomb"), **TOL)
    assert d["conversion"]["lift_rel"] is None  # relative to a zero rate: undefined
    assert d["revenue_per_member"]["lift"] == 0 and d["revenue_per_member"]["lift_ci"] == [0, 0]
    assert d["roi"] == -1 and d["roi_ci"] == [-1, -1] and d["p_value"] == 1
    assert d["verdict"] == campaigns.DOES_NOT_PAY
    assert [k for k, _ in r.warnings] == ["campaign.warn.no_purchases"]


@pytest.fixture
def big(con):
    """2,000 treatment members of whom 30% buy ¥100; 1,000 control members of whom 10% do."""
    add_campaign(con, cost_per_contact=0.1, fixed_cost=1000.0)
    t = [f"t{i:04d}" for i in range(2000)]
    c = [f"c{i:04d}" for i in range(1000)]
    assign(con, "C1", t, c)
    buy(con, [(m, f"o{m}", "2024-03-05 12:00", 100.0) for i, m in enumerate(t) if i % 10 < 3]
        + [(m, f"o{m}", "2024-03-05 12:00", 100.0) for i, m in enumerate(c) if i % 10 < 1])
    return con, np.r_[np.full(600, 100.0), np.zeros(1400)], np.r_[np.full(100, 100.0), np.zeros(900)]


def test_a_campaign_that_pays(big):
    con, rev_t, rev_c = big
    r = campaigns.measure(con, "C1")
    d = r.to_dict()
    assert d["incremental_margin"] == pytest.approx(2000 * 0.4 * 20)
    assert d["cost"] == pytest.approx(0.1 * 2000 + 1000)
    assert d["roi"] == pytest.approx((16000 - 1200) / 1200)
    low, high = CompareMeans(DescrStatsW(rev_t), DescrStatsW(rev_c)).tconfint_diff(usevar="unequal")
    assert d["roi_ci"] == pytest.approx([(2000 * 0.4 * v - 1200) / 1200 for v in (low, high)], **TOL)
    assert d["verdict"] == campaigns.PAYS and d["p_value"] < 1e-6 and d["warnings"] == []
    assert d["verdict_label"] == "pays" and r.to_dict("zh")["verdict_label"] == "回本"
    # the relative conversion lift: 0.3 / 0.1 - 1
    assert d["conversion"]["lift_rel"] == pytest.approx(2.0)
    assert d["conversion"]["lift_rel_ci"] == pytest.approx(
        [v - 1 for v in confint_proportions_2indep(600, 2000, 100, 1000, compare="ratio")], **TOL)


def test_a_campaign_that_does_not_pay(big):
    con, *_ = big
    con.execute("UPDATE campaigns SET fixed_cost = 100000")
    r = campaigns.measure(con, "C1")
    assert r.verdict == campaigns.DOES_NOT_PAY and r.roi.high < 0 and r.p_value > 0.999


def test_bootstrap_agrees_with_welch_and_is_reproducible(big):
    con, *_ = big
    w = campaigns.measure(con, "C1").to_dict()
    b1 = campaigns.measure(con, "C1", method="bootstrap", n_resamples=400, seed=1).to_dict()
    b2 = campaigns.measure(con, "C1", method="bootstrap", n_resamples=400, seed=1).to_dict()
    for key in ("revenue_per_member", "margin_per_member", "roi_ci", "p_value"):
        assert b1[key] == b2[key]  # the same seed, the same draws
    assert b1["revenue_per_member"]["lift"] == w["revenue_per_member"]["lift"]
    assert b1["revenue_per_member"]["lift_ci"] == pytest.approx(w["revenue_per_member"]["lift_ci"], rel=0.1)
    assert b1["verdict"] == campaigns.PAYS and b1["p_value"] == pytest.approx(1 / 401)
    assert b1["incrementality"]["interval_method"] == "bootstrap"


def test_window_without_attribution_days_runs_start_to_end(con):
    add_campaign(con, end="2024-03-03", attribution_days=None)
    assign(con, "C1", ["a", "b", "c"], ["x", "y"])
    buy(con, [("a", "1", "2024-03-03 23:00", 10), ("b", "2", "2024-03-04 00:00", 10)])
    r = campaigns.measure(con, "C1")
    assert r.lifts["conversion"].treatment == pytest.approx(1 / 3)
    assert r.window[1] == pd.Timestamp("2024-03-04").to_pydatetime()


def test_outcomes_are_the_engines_purchases_across_the_window(con):
    """Orders and purchases are those of crmkit.engine.activity: a credit note counts against the order it
    reverses, wherever its own date falls, and an order refunded in full is no purchase; a ¥0 order is one."""
    from crmkit.io import credit_notes

    add_campaign(con)  # window [2024-03-01, 2024-03-15)
    assign(con, "C1", ["a", "b", "c", "d"], ["x", "y"])
    insert(con, "transactions", [
        dict(member_id=m, order_id=o, line_no=1, order_time=pd.Timestamp(ts), amount=a, sku="K",
             quantity=1 if a >= 0 else -1, txn_type="sale" if a >= 0 else "return", store_id="S1")
        for m, o, ts, a in [
            ("a", "o1", "2024-03-02 10:00", 100.0), ("a", "cn1", "2024-03-20 10:00", -100.0),  # refunded after
            ("b", "o2", "2024-02-20 10:00", 50.0), ("b", "cn2", "2024-03-05 10:00", -50.0),    # before the window
            ("c", "o3", "2024-03-03 10:00", 0.0),                                              # a free gift
            ("d", "o4", "2024-03-04 10:00", 70.0), ("d", "o4", "2024-03-04 18:00", -70.0),     # same-day return
        ]])
    assert credit_notes.link(con).linked == 2
    r = campaigns.measure(con, "C1")
    assert r.lifts["conversion"].treatment == 0.25  # only c's ¥0 order is a purchase
    assert r.lifts["orders_per_member"].treatment == 0.25
    # a's order nets to 0 after its later credit note; b's credit note reverses an order before the window
    assert r.lifts["revenue_per_member"].treatment == 0.0
    assert campaigns.funnel(con, "C1")["purchased"].tolist() == [1]


def test_importing_campaigns_loads_neither_matplotlib_nor_scikit_learn():
    code = ("import sys, crmkit.campaigns as c; heavy = {'matplotlib', 'sklearn'} & set(sys.modules); "
            "c.plot_lift; c.TwoModelUplift; print(sorted(heavy), sorted({'matplotlib', 'sklearn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "['matplotlib',", "'sklearn']"]


def test_unknown_campaign_names_it_and_lists_known_ids(hand):
    with pytest.raises(CrmkitError, match=r"campaign 'NOPE' not found; known campaigns: C1\."):
        campaigns.measure(hand, "NOPE")


def test_lift_by_with_bonferroni(big):
    con, rev_t, rev_c = big
    members = con.execute('SELECT member_id FROM campaign_assignments ORDER BY member_id').df()
    members["half"] = np.where(members["member_id"].str[1:].astype(int) % 2 == 0, "even", "odd")
    out = campaigns.lift_by(con, "C1", "half", "revenue_per_member", attributes=members)
    assert list(out["half"]) == ["even", "odd"]
    even = out.iloc[0]
    # even-numbered members: treatment i % 10 in (0, 2) buy → 400 of 1,000; control i % 10 == 0 → 100 of 500
    assert (even["n_treatment"], even["n_control"]) == (1000, 500)
    assert even["lift"] == pytest.approx(40 - 20)
    x, y = np.r_[np.full(400, 100.0), np.zeros(600)], np.r_[np.full(100, 100.0), np.zeros(400)]
    cm = CompareMeans(DescrStatsW(x), DescrStatsW(y))
    assert (even["lift_low"], even["lift_high"]) == pytest.approx(cm.tconfint_diff(usevar="unequal"), **TOL)
    assert (even["adj_low"], even["adj_high"]) == pytest.approx(
        cm.tconfint_diff(alpha=0.025, usevar="unequal"), **TOL)  # two levels: Bonferroni at 0.05 / 2
    assert "Bonferroni" in out.attrs["caution"]["en"]
    fig = campaigns.plot_lift(out, "en")
    assert fig.axes[0].get_title() == "Revenue / member lift by half"
    # a level with 3 control members gets no lift, is not drawn and is not counted as compared
    members["half"] = np.where(members["member_id"].isin(["c0000", "c0001", "c0002"]) |
                               members["member_id"].str.startswith("t0000"), "tiny", members["half"])
    out = campaigns.lift_by(con, "C1", "half", "revenue_per_member", attributes=members)
    tiny = out.set_index("half").loc["tiny"]
    assert tiny["too_small"] and np.isnan(tiny["lift"]) and np.isnan(tiny["lift_low"])
    assert (~out["too_small"]).sum() == 2 and out.attrs["caution"]["en"].startswith("2 groups compared")
    ax = campaigns.plot_lift(out, "en").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["even", "odd"]


def test_lift_and_funnel_by_home_store_and_tier(hand):
    insert(hand, "stores", [dict(store_id="S1", name="A", city="Shanghai", region="East"),
                            dict(store_id="S2", name="B", city="Beijing", region="North")])
    insert(hand, "members", [dict(member_id=m, join_date=pd.Timestamp("2023-01-01"),
                                  join_store_id="S1" if m in ("t1", "t2", "c1", "c2") else "S2")
                             for m in ("t1", "t2", "t3", "t4", "t5", "t6", "c1", "c2", "c3", "c4")])
    by_store = campaigns.lift_by(hand, "C1", "store")
    assert list(by_store["store"]) == ["S1", "S2"]
    assert list(by_store["treatment"]) == [1.0, 0.25]  # t1, t2 bought; of t3..t6 only t5
    assert list(campaigns.lift_by(hand, "C1", "region")["region"]) == ["East", "North"]
    tiers = campaigns.lift_by(hand, "C1", "tier")
    assert tiers["n_treatment"].sum() == 6 and set(tiers["tier"]) == {"Regular"}
    f = campaigns.funnel(hand, "C1", by="store")
    assert list(f["targeted"]) == [2, 4] and list(f["redeemed"]) == [2, 0]
    assert list(f["coupons_issued"]) == [2, 1]
    bal = campaigns.balance_table(hand, "C1").set_index("metric")  # as of 2024-02-29: t3's ¥60 order only
    assert (bal.loc["pre_spend", "treatment"], bal.loc["pre_spend", "control"]) == (10.0, 0.0)
    assert bal.loc["tier=Regular", "treatment"] == 1.0
    with pytest.raises(CrmkitError, match="cannot break results down by 'colour'"):
        campaigns.lift_by(hand, "C1", "colour")


def test_uplift_two_model_recovers_who_responds():
    rng = np.random.default_rng(5)
    n = 4000
    X = rng.normal(size=(n, 2))
    treated = rng.random(n) < 0.5
    p = 0.2 + 0.3 * (treated & (X[:, 0] > 0))  # only members with x0 > 0 respond
    y = (rng.random(n) < p).astype(float)
    m = campaigns.TwoModelUplift().fit(X, y, treated)
    new = rng.normal(size=(2000, 2))
    u = m.predict(new)
    assert u[new[:, 0] > 0.3].mean() == pytest.approx(0.3, abs=0.05)
    assert u[new[:, 0] < -0.3].mean() == pytest.approx(0.0, abs=0.05)
    with pytest.raises(ModelError):
        campaigns.TwoModelUplift().fit(X, np.zeros(n), treated)


def test_uplift_ranking_on_the_store(con):
    """Light buyers respond to the campaign, heavy buyers do not: the ranking puts light buyers first."""
    add_campaign(con)
    rng = np.random.default_rng(11)
    members = [f"m{i:04d}" for i in range(1200)]
    light = {m: i % 2 == 0 for i, m in enumerate(members)}
    treated = {m: rng.random() < 0.5 for m in members}
    assign(con, "C1", [m for m in members if treated[m]], [m for m in members if not treated[m]])
    history = [(m, f"h{m}{k}", f"2023-{k + 1:02d}-10", 50.0) for m in members for k in range(1 if light[m] else 6)]
    p = {m: 0.5 if light[m] and treated[m] else 0.1 if light[m] else 0.3 for m in members}
    window = [(m, f"w{m}", "2024-03-05", 80.0) for m in members if rng.random() < p[m]]
    buy(con, history + window)
    ranking = campaigns.uplift_ranking(con, "C1")
    assert len(ranking) == 1200 and set(ranking.columns) == {"member_id", "group", "outcome", "uplift", "decile"}
    top = ranking[ranking["decile"] <= 3]["member_id"].map(light).mean()
    assert top > 0.9
    deciles = campaigns.uplift_deciles(ranking)
    assert list(deciles["decile"]) == list(range(1, 11))
    assert deciles["lift"].iloc[:3].mean() > 0.25 > deciles["lift"].iloc[-3:].mean()


def test_assign_holdout_is_stratified_and_reproducible(con):
    rng = np.random.default_rng(0)
    audience = pd.DataFrame({"member_id": [f"m{i}" for i in range(1000)],
                             "tier": rng.choice(["Regular", "Silver", "Gold"], 1000, p=[0.7, 0.2, 0.1]),
                             "store": rng.choice(["S1", "S2", "S3"], 1000)})
    a = campaigns.assign_holdout(con, audience, "P1", control_share=0.1, seed=42)
    b = campaigns.assign_holdout(con, audience.sample(frac=1, random_state=3), "P1", control_share=0.1, seed=42)
    pd.testing.assert_frame_equal(a, b)  # the input order does not matter
    c = campaigns.assign_holdout(con, audience, "P1", control_share=0.1, seed=43)
    assert not a["group"].equals(c["group"])
    per = a.groupby(["tier", "store"])["group"].agg(n="size", control=lambda g: (g == "control").sum())
    assert ((per["control"] >= np.floor(per["n"] * 0.1)) & (per["control"] <= np.ceil(per["n"] * 0.1))).all()
    assert abs((a["group"] == "control").sum() - 100) <= 2
    assert con.execute("SELECT count(*) FROM campaign_assignments").fetchall() == [(0,)]  # not written


def test_every_member_has_the_control_share_as_probability():
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 2])
    draws = np.array([_stratified_control(strata, 0.3, np.random.default_rng(s)) for s in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), 0.3, atol=0.03)  # SD of each share: 0.007
    counts = np.stack([draws[:, strata == k].sum(axis=1) for k in range(3)], axis=1)
    assert set(counts[:, 0]) == {1, 2} and set(counts[:, 1]) == {0, 1} and set(counts[:, 2]) == {0, 1}


def test_assign_holdout_writes_once_with_strata_from_the_store(con):
    # tier and home store from the store: 16 Gold (m0..m15) and 24 Regular members, half in S0, half in S1
    insert(con, "members", [dict(member_id=f"m{i}", join_date=pd.Timestamp("2023-01-01"),
                                 join_store_id=f"S{i % 2}") for i in range(40)])
    buy(con, [(f"m{i}", f"o{i}", "2023-06-01", 9000.0 if i < 16 else 100.0) for i in range(40)])
    a = campaigns.assign_holdout(con, [f"m{i}" for i in range(40)], "P1", 0.25, seed=1, write=True)
    assert set(a.columns) == {"campaign_id", "member_id", "group", "tier", "store"}
    per = a.groupby(["tier", "store"])["group"].apply(lambda g: int((g == "control").sum()))
    assert per.to_dict() == {("Gold", "S0"): 2, ("Gold", "S1"): 2, ("Regular", "S0"): 3, ("Regular", "S1"): 3}
    stored = con.execute('SELECT campaign_id, member_id, "group" FROM campaign_assignments ORDER BY member_id').df()
    pd.testing.assert_frame_equal(stored, a[["campaign_id", "member_id", "group"]], check_dtype=False)
    with pytest.raises(CrmkitError, match="already has assignments"):
        campaigns.assign_holdout(con, ["m1"], "P1", write=True)
    bal = campaigns.balance_table(con, a, as_of="2024-01-01").set_index("metric")
    assert bal.loc["members", "treatment"] == 30 and bal.loc["members", "control"] == 10
    spend_t = a[a["group"] == "treatment"]["member_id"].str[1:].astype(int).map(lambda i: 9000 if i < 16 else 100)
    assert bal.loc["pre_spend", "treatment"] == pytest.approx(spend_t.mean())
    assert bal.loc["pre_purchase_days", "control"] == 1
    assert bal.loc["tier=Gold", "treatment"] == bal.loc["tier=Gold", "control"] == pytest.approx(0.4)
    assert bal.loc["tier=Gold", "smd"] == 0


def test_plan_campaign_matches_statsmodels():
    plan = campaigns.plan_campaign(0.05, 0.01, control_share=0.2, audience_size=50_000)
    n_t = samplesize_proportions_2indep_onetail(0.01, 0.05, 0.8, ratio=0.25)
    assert plan["n_treatment"] == math.ceil(n_t) and plan["n_control"] == math.ceil(n_t * 0.25)
    assert plan["enough"] is True
    assert samplesize_proportions_2indep_onetail(plan["mde"], 0.05, 0.8, ratio=0.25) == pytest.approx(40_000, rel=1e-6)
    with pytest.raises(CrmkitError):
        campaigns.plan_campaign(0.05, 0.01, control_share=1.2)


def test_funnel_plot(hand):
    fig = campaigns.plot_funnel(campaigns.funnel(hand, "C1"), "C1", "zh")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["目标会员", "已触达", "已核销优惠券", "已购买（用券或未用券）"]
    assert fig.axes[0].xaxis.get_major_formatter()(12000, 0) == "12,000"


@pytest.fixture
def store_file(tmp_path, hand):
    path = tmp_path / "crm.duckdb"
    crmkit.connect(path).close()
    hand.execute(f"ATTACH '{path}' AS f")
    for table in ("campaigns", "campaign_assignments", "transactions", "coupons"):
        hand.execute(f'INSERT INTO f."{table}" SELECT * FROM "{table}"')
    hand.execute("DETACH f")
    return path


def test_cli_json_and_summary(store_file, capsys):
    assert main(["campaign-roi", str(store_file), "--campaign", "C1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("campaign_id", "n_treatment", "n_control", "conversion", "revenue_per_member",
                "incremental_revenue", "incremental_margin", "cost", "roi", "roi_ci", "p_value", "verdict"):
        assert key in d
    assert set(d["conversion"]) == {"treatment", "control", "lift", "lift_ci", "lift_rel", "lift_rel_ci"}
    assert d["verdict"] == "cannot tell yet" and d["incremental_revenue"] == pytest.approx(165)
    assert main(["campaign-roi", str(store_file), "--campaign", "C1", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: Cannot tell yet" in out and "ROI -46.1%" in out


def test_cli_unknown_campaign(store_file, capsys):
    assert main(["campaign-roi", str(store_file), "--campaign", "X9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "crmkit campaign-roi: campaign 'X9' not found; known campaigns: C1."


def test_every_demo_campaign_interval_covers_the_generators_true_effect(demo_store):
    """The demo generator records each campaign's true effects (truth.json); the 95% intervals cover them."""
    db, truth = demo_store
    con = crmkit.connect(db, read_only=True)
    try:
        for cid, c in truth["campaigns"].items():
            result = campaigns.measure(con, cid).to_dict()
            assert (result["n_treatment"], result["n_control"]) == (c["n_treatment"], c["n_control"])
            for metric in ("conversion", "revenue_per_member", "margin_per_member"):
                low, high = result[metric]["lift_ci"]
                assert low <= c[f"true_{metric}_lift"] <= high, (cid, metric)
            assert result["verdict"] in (campaigns.PAYS, campaigns.DOES_NOT_PAY, campaigns.CANNOT_TELL)
    finally:
        con.close()


def test_a_scope_measures_its_assigned_members_only(demo_store):
    """A region's measurement is that of the region's assigned members (home the day before the start),
    computed independently: their counts, and the region's level of the chain's breakdown by region;
    the chain's scope is the unscoped measurement."""
    from crmkit import engine
    from crmkit.campaigns.queries import assignments, campaign_info, pre_campaign_day

    con = crmkit.connect(demo_store[0], read_only=True)
    try:
        cid = campaigns.campaign_ids(con)[0]
        info = campaign_info(con, cid)
        chain = campaigns.measure(con, cid)
        assert same(campaigns.measure(con, cid, scope=engine.CHAIN).to_dict(), chain.to_dict())
        pd.testing.assert_frame_equal(campaigns.funnel(con, cid, scope=engine.CHAIN), campaigns.funnel(con, cid))
        pd.testing.assert_frame_equal(campaigns.lift_by(con, cid, "tier", scope=engine.CHAIN),
                                      campaigns.lift_by(con, cid, "tier"))
        region = "华南"
        scope = engine.Scope(region=region)
        home = set(engine.scope.member_ids(con, pre_campaign_day(info), scope))
        assigned = assignments(con, cid)
        mine = assigned[assigned["member_id"].isin(home)]
        r = campaigns.measure(con, cid, scope=scope)
        assert (r.n_treatment, r.n_control) == (int((mine["group"] == "treatment").sum()),
                                                int((mine["group"] == "control").sum()))
        assert 0 < r.n_treatment < chain.n_treatment and 0 < r.n_control < chain.n_control
        level = campaigns.lift_by(con, cid, "region").set_index("region").loc[region]
        assert (level["n_treatment"], level["n_control"]) == (r.n_treatment, r.n_control)
        conversion = r.lifts["conversion"]
        assert conversion.treatment == pytest.approx(level["treatment"], **TOL)
        assert conversion.control == pytest.approx(level["control"], **TOL)
        assert r.cost["fixed"] == pytest.approx(chain.cost["fixed"] * r.n_treatment / chain.n_treatment, **TOL)
        assert r.funnel["targeted"].iloc[0] == r.n_treatment
        stores = set(con.execute("SELECT store_id FROM stores WHERE region = $r", {"r": region}).df()["store_id"])
        by_store = campaigns.lift_by(con, cid, "store", scope=scope)
        assert set(by_store["store"]) <= stores
        assert by_store["n_treatment"].sum() == r.n_treatment
    finally:
        con.close()


def test_a_scope_is_bound_never_formatted_in():
    import datetime as dt

    from crmkit import engine

    window = (dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 15))
    chain = campaigns.campaign_query("C1", window)
    region = campaigns.campaign_query("C1", window, engine.Scope(region="华南", store_id="S1"))
    assert chain.sql("SELECT * FROM cmp_outcomes") == region.sql("SELECT * FROM cmp_outcomes")
    assert "华南" not in region.sql("SELECT * FROM cmp_outcomes") and region.params["cmp_scope_region"] == "华南"


def same(a, b) -> bool:
    """Equal, floats to 1e-12 relative (DuckDB's parallel sums may add in another order), through dicts and lists."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-12, nan_ok=True)
    return a == b
