"""RFM scores and segments: hand-made answers, and CDNOW against an independent pandas computation."""
import numpy as np
import pandas as pd
import pytest

from crmkit import segments


def add_sales(con, rows):
    """rows: (member_id, day, amount); one order per row."""
    con.executemany(
        "INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) "
        "VALUES (?, ?, 1, CAST(? AS TIMESTAMP) + INTERVAL 9 HOUR, ?, 'sale')",
        [[m, f"o{i}", d, a] for i, (m, d, a) in enumerate(rows)])


def test_quintiles_and_ties_by_hand(con):
    # ten members; member k last bought on day k of June and spent 10*k on one day,
    # except that frequency ties: six members bought on one day, two on two days, ...
    freq = {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 2, 8: 2, 9: 3, 10: 4}
    rows = []
    for k, f in freq.items():
        rows += [(f"m{k:02d}", f"2024-05-{j:02d}", 1.0) for j in range(1, f)]
        rows.append((f"m{k:02d}", f"2024-06-{k:02d}", 10.0 * k - (f - 1)))
    add_sales(con, rows)
    out = segments.rfm_scores(con, "2024-06-30").set_index("member_id")
    # distinct values: score = 1 + floor(5 * (rank - 1) / 10)
    assert out["rfm_r"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out["rfm_m"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # ties share the score of their lowest rank: F=1 -> rank 1 -> 1; F=2 -> rank 7 -> 1 + 30 // 10 = 4;
    # F=3 -> rank 9 -> 5; F=4 -> rank 10 -> 5
    assert out["rfm_f"].tolist() == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]
    assert out.loc["m10", "recency_days"] == 20
    assert out.loc["m10", "frequency"] == 4 and out.loc["m10", "monetary"] == 100.0
    # R=5 and FM=ceil((5+5)/2)=5 -> Champions; m07: R=4, FM=ceil((4+4)/2)=4 -> Loyal;
    # m01: R=1, FM=1 -> Lost; m05: R=3, FM=ceil((1+3)/2)=2 -> About to Sleep
    assert out.loc[["m10", "m07", "m01", "m05"], "rfm_segment"].tolist() == [
        "Champions", "Loyal", "Lost", "About to Sleep"]


def test_returns_net_out_and_prospects_are_not_scored(con):
    con.execute("INSERT INTO members (member_id, join_date) VALUES ('P', '2024-01-01')")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) VALUES
        ('A', 'o1', 1, '2024-03-01 10:00', 100, 'sale'), ('A', 'o1', 1, '2024-03-04 10:00', -100, 'return'),
        ('A', 'o2', 1, '2024-02-01 10:00', 30, 'sale'), ('A', 'o3', 1, '2024-02-01 15:00', 20, 'sale'),
        ('B', 'o4', 1, '2024-01-01 10:00', 500, 'sale')""")
    out = segments.rfm_scores(con, "2024-03-31").set_index("member_id")
    assert list(out.index) == ["A", "B"]
    # A: the returned order is no purchase; two orders on Feb 1 are one purchase day of ¥50
    assert (out.loc["A", "frequency"], out.loc["A", "monetary"], out.loc["A", "recency_days"]) == (1, 50.0, 59)


def test_segment_grid_is_the_documented_table():
    assert segments.SEGMENT_GRID[0] == ("New", "Potential Loyalist", "Potential Loyalist", "Champions",
                                        "Champions")
    assert segments.SEGMENT_GRID[4] == ("Lost", "Lost", "At Risk", "Can't Lose", "Can't Lose")
    assert {s for row in segments.SEGMENT_GRID for s in row} == set(segments.SEGMENTS)
    assert segments.segment_label("Can't Lose", "zh") == "不能失去"
    assert segments.segment_label("Champions", "en") == "Champions"


def test_segment_summary_and_migration(con):
    # five buyers with distinct recency/frequency/spend: m_k buys ¥10k on May k .. 2k-1
    rows = []
    for k in range(1, 6):
        rows += [(f"m{k}", f"2024-05-{j:02d}", 10.0 * k) for j in range(k, 2 * k)]
    add_sales(con, rows)
    s = segments.segment_summary(con, "2024-05-31").set_index("rfm_segment")
    # m5: R5 F5 M5 -> Champions; m4: R4 FM4 -> Loyal; m3: R3 FM3 -> Need Attention;
    # m2: R2 FM2 -> Hibernating; m1: R1 FM1 -> Lost
    assert s["members"].to_dict() == {
        "Champions": 1, "Loyal": 1, "Potential Loyalist": 0, "New": 0, "Promising": 0, "Need Attention": 1,
        "About to Sleep": 0, "At Risk": 0, "Can't Lose": 0, "Hibernating": 1, "Lost": 1}
    total = sum(10.0 * k * k for k in range(1, 6))  # 550
    assert s.loc["Champions", "revenue"] == 250.0
    assert s.loc["Champions", "revenue_share"] == pytest.approx(250 / total)
    assert s.loc["Lost", "member_share"] == pytest.approx(0.2)
    # on May 2 only m1 (¥10 on May 1) and m2 (¥20 on May 2) had bought: m1 R1 F1 M1 -> Lost,
    # m2 R = 1 + 5*1//2 = 3, F tied = 1, M = 3, FM = 2 -> About to Sleep
    mig = segments.segment_migration(con, "2024-05-02", "2024-05-31")
    assert mig.loc["Lost", "Lost"] == 1
    assert mig.loc["About to Sleep", "Hibernating"] == 1
    assert mig.loc["(no purchase)", ["Need Attention", "Loyal", "Champions"]].tolist() == [1, 1, 1]
    assert mig.to_numpy().sum() == 5
    fig = segments.plot_segments(s.reset_index(), "zh")
    assert fig.axes[0].get_title().startswith("RFM 分群")


# ------------------------------------------------------------------------- CDNOW

def load_cdnow(con, path):
    """CDNOW_master: whitespace-separated customer id, yyyymmdd, CDs, dollars (a header line if any is skipped)."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, names=["id", "date", "cds", "dollars"], dtype=str)
    raw = raw[raw["id"].str.fullmatch(r"\d+")]
    df = pd.DataFrame({
        "member_id": raw["id"].to_numpy(),
        "order_id": np.arange(len(raw)).astype(str),
        "order_time": pd.to_datetime(raw["date"], format="%Y%m%d").to_numpy(),
        "amount": raw["dollars"].astype(float).to_numpy(),
    })
    con.register("cdnow_df", df)
    con.execute("INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) "
                "SELECT member_id, order_id, 1, order_time, amount, 'sale' FROM cdnow_df")
    con.unregister("cdnow_df")
    return df


def reference_scores(df: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """RFM scores computed independently in pandas, by the documented definition."""
    daily = df.assign(day=df["order_time"].dt.normalize()).groupby(["member_id", "day"])["amount"].sum()
    daily = daily.reset_index()
    # every CDNOW row is a sale (no returns), so every day with a row is a purchase day, $0.00 included
    # (a ¥0 order is a purchase: crmkit.engine.activity)
    assert (daily["amount"] >= 0).all()
    bought = daily
    ref = pd.DataFrame({
        "last": bought.groupby("member_id")["day"].max(),
        "frequency": bought.groupby("member_id").size(),
    })
    ref["monetary"] = daily.groupby("member_id")["amount"].sum()
    ref["recency_days"] = (pd.Timestamp(as_of) - ref["last"]).dt.days
    n = len(ref)
    for col, value in (("rfm_r", ref["last"].to_numpy()), ("rfm_f", ref["frequency"].to_numpy()),
                       ("rfm_m", ref["monetary"].to_numpy())):
        below = np.searchsorted(np.sort(value), value, side="left")  # members strictly lower
        ref[col] = 1 + (5 * below) // n
    table = {  # R: (FM=1, ..., FM=5), the documented grid
        5: ["New", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"],
        4: ["Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Champions"],
        3: ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],
        2: ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose"],
        1: ["Lost", "Lost", "At Risk", "Can't Lose", "Can't Lose"],
    }
    fm = np.ceil((ref["rfm_f"] + ref["rfm_m"]) / 2).astype(int)
    ref["rfm_segment"] = [table[r][f - 1] for r, f in zip(ref["rfm_r"], fm)]
    return ref


def test_cdnow_rfm_matches_pandas(con, cdnow_master_path):
    df = load_cdnow(con, cdnow_master_path)
    as_of = "1998-06-30"
    out = segments.rfm_scores(con, as_of).set_index("member_id")
    ref = reference_scores(df, as_of)
    assert df["member_id"].nunique() == 23570
    # every customer bought (68 of them only for $0.00: still purchases), so every one has an RFM score
    assert len(out) == len(ref) == 23570 and (out.index == ref.index).all()
    for col in ("rfm_r", "rfm_f", "rfm_m", "recency_days", "frequency"):
        assert (out[col].to_numpy() == ref[col].to_numpy()).all(), col
    np.testing.assert_allclose(out["monetary"], ref["monetary"], rtol=1e-12)
    assert (out["rfm_segment"] == ref["rfm_segment"]).all()
    # CDNOW: about half the customers bought once, so they all share F = 1
    assert (out["frequency"] == 1).mean() > 0.45 and set(out.loc[out["frequency"] == 1, "rfm_f"]) == {1}
    summary = segments.segment_summary(con, as_of)
    assert summary["members"].sum() == 23570
    assert summary["revenue"].sum() == pytest.approx(df["amount"].sum())
