"""Cohorts by first-purchase month: hand-made answers, and CDNOW against an independent pandas computation."""
import numpy as np
import pandas as pd
import pytest
from test_segments import add_sales, load_cdnow

from crmkit import cohorts


@pytest.fixture
def cohort_store(con):
    add_sales(con, [
        ("a", "2024-01-05", 100), ("a", "2024-02-10", 50), ("a", "2024-02-20", 30),
        ("b", "2024-01-20", 40), ("b", "2024-03-01", 60),
        ("c", "2024-02-02", 80),
        ("d", "2024-03-31", 10),
        ("e", "2024-04-02", 10),  # April is not complete on 2024-04-15
    ])
    con.execute("INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) VALUES "
                "('c', 'ret', 1, '2024-03-15 12:00', -20, 'return')")  # a return of another order
    return con


def test_cohort_tables_by_hand(cohort_store):
    cells = cohorts.cohort_activity(cohort_store, "2024-04-15")
    assert cohorts.cohort_sizes(cells).tolist() == [2, 1, 1]  # Jan: a, b; Feb: c; Mar: d
    ret = cohorts.retention_matrix(cells)
    expected = pd.DataFrame([[1.0, 0.5, 0.5], [1.0, 0.0, np.nan], [1.0, np.nan, np.nan]],
                            index=pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]))
    np.testing.assert_array_equal(ret.to_numpy(), expected.to_numpy())
    assert list(ret.index) == list(expected.index) and list(ret.columns) == [0, 1, 2]
    rev = cohorts.revenue_per_member(cells)
    # Jan cohort: month 0 ¥140 / 2, month 1 ¥80 (a) / 2, month 2 ¥60 (b) / 2; Feb: ¥80, then -¥20 returned
    np.testing.assert_allclose(rev.to_numpy(), [[70, 40, 30], [80, -20, np.nan], [10, np.nan, np.nan]])
    cum = cohorts.revenue_per_member(cells, cumulative=True)
    np.testing.assert_allclose(cum.to_numpy(), [[70, 110, 140], [80, 60, np.nan], [10, np.nan, np.nan]])
    since = cohorts.cohort_activity(cohort_store, "2024-04-15", since="2024-02-01")
    assert cohorts.cohort_sizes(since).tolist() == [1, 1]


def test_heatmaps(cohort_store):
    cells = cohorts.cohort_activity(cohort_store, "2024-04-15")
    fig = cohorts.plot_heatmap(cohorts.retention_matrix(cells), "en")
    assert fig.axes[0].get_xlabel() == "Months since first purchase (k)"
    fig = cohorts.plot_heatmap(cohorts.revenue_per_member(cells), "zh", kind="revenue")
    assert "元/人" in fig.axes[0].get_title()


def test_cdnow_cohorts_match_pandas(con, cdnow_master_path):
    df = load_cdnow(con, cdnow_master_path)
    cells = cohorts.cohort_activity(con, "1998-06-30")
    # independent reference: member-day net amounts, months as integers, cohorts by the first purchase day.
    # CDNOW has no returns, so every day with a row is a purchase day, $0.00 rows included (a ¥0 order is
    # a purchase: crmkit.engine.activity)
    assert (df["amount"] >= 0).all()
    daily = (df.assign(day=df["order_time"].dt.normalize())
             .groupby(["member_id", "day"], as_index=False)["amount"].sum())
    daily["m"] = daily["day"].dt.year * 12 + daily["day"].dt.month - 1
    daily["bought"] = True
    cohort = daily[daily["bought"]].groupby("member_id")["m"].min().rename("cohort")
    daily = daily.join(cohort, on="member_id", how="inner")
    daily = daily[daily["m"] >= daily["cohort"]].assign(k=lambda d: d["m"] - d["cohort"])
    per_member = daily.groupby(["cohort", "k", "member_id"]).agg(bought=("bought", "max"),
                                                                revenue=("amount", "sum"))
    sizes = cohort.value_counts().sort_index()
    buyers = per_member["bought"].groupby(["cohort", "k"]).sum().unstack(fill_value=0)
    revenue = per_member["revenue"].groupby(["cohort", "k"]).sum().unstack(fill_value=0.0)
    ref_ret = buyers.div(sizes, axis=0)
    ref_rev = revenue.div(sizes, axis=0)
    # CDNOW's cohort: all 23,570 customers first bought in January to March 1997 (the dataset's definition;
    # 68 of them bought only for $0.00 and 2 more first for $0.00); 18 complete months to June 1998
    assert [f"{m // 12}-{m % 12 + 1:02d}" for m in sizes.index] == ["1997-01", "1997-02", "1997-03"]
    assert sizes.sum() == 23_570
    assert cohorts.cohort_sizes(cells).tolist() == sizes.tolist()
    ret, rev = cohorts.retention_matrix(cells), cohorts.revenue_per_member(cells)
    assert ret.shape == (3, 18)
    for i, n_months in enumerate((18, 17, 16)):  # cells after June 1998 are empty
        np.testing.assert_allclose(ret.iloc[i, :n_months], ref_ret.iloc[i, :n_months], rtol=1e-12)
        np.testing.assert_allclose(rev.iloc[i, :n_months], ref_rev.iloc[i, :n_months], rtol=1e-9)
        assert ret.iloc[i, n_months:].isna().all()
    assert (ret[0] == 1.0).all()
