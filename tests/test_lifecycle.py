"""Lifecycle stages, the member funnel and monthly funnel metrics, on hand-made data."""

import pandas as pd
import pytest

from crmkit import lifecycle
from crmkit.errors import CrmkitError


def add_sales(con, rows):
    """rows: (member_id, day, amount[, order_id]); one line per order, returns by negative amount."""
    for i, (member, day, amount, *order) in enumerate(rows):
        con.execute(
            "INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, amount,"
            " txn_type) VALUES (?, ?, 1, CAST(? AS TIMESTAMP) + INTERVAL 10 HOUR, 'S1', 'pos', ?, ?)",
            [member, order[0] if order else f"o{i}", day, amount, "return" if amount < 0 else "sale"])


@pytest.fixture
def stage_store(con):
    con.execute("INSERT INTO members (member_id, join_date) VALUES ('P', '2024-01-01'), ('LATE', '2024-07-05')")
    add_sales(con, [
        ("N", "2024-05-01", 50),                                  # first purchase 60 days ago: new
        ("A", "2023-12-01", 80), ("A", "2024-03-01", 90),         # recency 121, gap 91: active
        ("W", "2023-01-10", 70), ("W", "2024-05-20", 60),         # back after a 496-day gap, 41 days ago
        ("D", "2023-10-01", 40),                                  # recency 273: dormant
        ("D180", "2024-01-02", 40),                               # recency exactly 180: dormant
        ("C", "2023-05-01", 30),                                  # recency 426: churned
        ("R", "2023-01-01", 30),                                  # its only recent order was returned:
        ("R", "2024-06-01", 99, "r1"), ("R", "2024-06-05", -99, "r1"),  # still churned
        ("F", "2024-07-02", 20),                                  # after as_of: not a member yet
    ])
    return con


def test_stages_by_hand(stage_store):
    out = lifecycle.stages(stage_store, "2024-06-30").set_index("member_id")
    assert out["lifecycle_stage"].to_dict() == {
        "A": "active", "C": "churned", "D": "dormant", "D180": "dormant", "N": "new",
        "P": "prospect", "R": "churned", "W": "won_back"}
    assert out.loc["D180", "recency_days"] == 180
    assert out.loc["R", "purchase_days"] == 1
    assert out.loc["R", "last_purchase"] == pd.Timestamp("2023-01-01")
    assert out.loc["N", "join_date"] == pd.Timestamp("2024-05-01")  # no members row: first purchase


def test_windows_are_configurable(stage_store):
    out = lifecycle.stages(stage_store, "2024-06-30", {"active_days": 300}).set_index("member_id")
    # recency 273 and 180 are now active; W's 496-day gap still counts as a lapse
    assert out.loc[["D", "D180", "W"], "lifecycle_stage"].tolist() == ["active", "active", "won_back"]


@pytest.mark.parametrize("windows, match", [
    ({"new_days": 200}, "new_days <= active_days < churn_days"),
    ({"active_days": 365}, "new_days <= active_days < churn_days"),
    ({"churn_days": True}, "whole number"),
    ({"active_days": "180; DROP TABLE members"}, "whole number"),
    ({"sleep_days": 30}, "unknown lifecycle window"),
    ([("new_days", 3)], "mapping"),
])
def test_bad_windows(stage_store, windows, match):
    with pytest.raises(CrmkitError, match=match):
        lifecycle.stages(stage_store, "2024-06-30", windows)


def test_bad_as_of(con):
    with pytest.raises(CrmkitError, match="not a date"):
        lifecycle.stages(con, "last tuesday")


def test_stage_summary_and_funnel(stage_store):
    s = lifecycle.stage_summary(stage_store, "2024-06-30")
    assert s["lifecycle_stage"].tolist() == list(lifecycle.STAGES)
    assert s["members"].tolist() == [1, 1, 1, 1, 2, 2]
    assert s["share"].sum() == pytest.approx(1.0)
    f = lifecycle.funnel(stage_store, "2024-06-30").set_index("step")
    # 8 members; 7 bought; A and W bought on two days (R's second day was returned); both recent
    assert f["members"].tolist() == [8, 7, 2, 2]
    assert f.loc["repeat", "conversion"] == pytest.approx(2 / 7)
    assert f.loc["active", "share"] == pytest.approx(2 / 8)


@pytest.fixture
def monthly_store(con):
    con.execute("""INSERT INTO stores VALUES ('S1', '一店', '上海', '华东'), ('S2', '二店', '广州', '华南')""")
    con.execute("""INSERT INTO members (member_id, join_date, join_store_id, join_channel) VALUES
        ('m1', '2024-01-10', 'S1', 'pos'), ('m2', '2024-01-20', 'S1', 'pos'),
        ('m3', '2024-02-03', 'S2', 'online'), ('m4', '2023-01-01', 'S2', 'pos'),
        ('m5', '2023-06-01', 'S2', 'pos'), ('m6', '2024-01-05', 'S2', 'miniapp')""")
    add_sales(con, [
        ("m1", "2024-01-10", 10), ("m1", "2024-02-05", 10), ("m1", "2024-03-20", 10),
        ("m3", "2024-03-01", 10),
        ("m4", "2023-02-01", 10), ("m4", "2024-02-15", 10),
        ("m5", "2023-06-01", 10),
        ("m6", "2024-01-05", 10), ("m6", "2024-01-25", 10),
        ("m1", "2024-04-02", 10),  # April is not complete on 2024-04-15: not reported
    ])
    return con


def test_monthly_metrics_by_hand(monthly_store):
    m = lifecycle.monthly_metrics(monthly_store, "2024-04-15", months=3).set_index("month")
    assert list(m.index) == list(pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]))
    jan, feb, mar = (m.loc[d] for d in m.index)
    # January: m1, m2, m6 join; m1 and m6 buy in January; of those first buyers only m1 buys in February
    assert (jan.new_members, jan.first_purchase_rate) == (3, pytest.approx(2 / 3))
    assert (jan.first_buyers, jan.next_month_repurchasers, jan.next_month_repurchase_rate) == (2, 1, 0.5)
    assert jan.buyers == 2 and jan.buyers_prev_month == 0 and pd.isna(jan.retention_rate)
    assert jan.repurchase_cycle_days == 20  # m6: Jan 5 -> Jan 25
    # lapsed on Jan 1 (last purchase >= 180 days before): m4 (since 2023-08) and m5 (since 2023-12)
    assert (jan.lapsed, jan.won_back, jan.winback_rate) == (2, 0, 0.0)
    # February: m3 joins but buys only in March; m1 and m4 buy; m1 bought in January too; m4 is won back
    assert (feb.new_members, feb.first_purchase_rate, feb.first_buyers) == (1, 0.0, 0)
    assert pd.isna(feb.next_month_repurchase_rate)
    assert (feb.buyers, feb.retained, feb.retention_rate) == (2, 1, 0.5)
    assert feb.repurchase_cycle_days == pytest.approx((26 + 379) / 2)
    assert (feb.lapsed, feb.won_back, feb.winback_rate) == (2, 1, 0.5)
    # March: m3's first purchase; next month not complete yet; m5 is the only lapsed buyer left
    assert mar.new_members == 0 and pd.isna(mar.first_purchase_rate)
    assert mar.first_buyers == 1 and pd.isna(mar.next_month_repurchase_rate)
    assert (mar.buyers, mar.retained, mar.retention_rate) == (2, 1, 0.5)
    assert mar.repurchase_cycle_days == 44  # m1: Feb 5 -> Mar 20
    assert (mar.lapsed, mar.won_back, mar.winback_rate) == (1, 0, 0.0)


def test_monthly_metrics_by_store(monthly_store):
    m = lifecycle.monthly_metrics(monthly_store, "2024-04-15", months=3, by="region")
    feb = m[m["month"] == "2024-02-01"].set_index("region")
    assert feb.loc["华东", "buyers"] == 1 and feb.loc["华南", "buyers"] == 1  # m1 | m4
    assert feb.loc["华东", "retention_rate"] == 1.0  # m1 in January and February
    assert feb.loc["华南", "winback_rate"] == 0.5    # m4 of m4, m5
    with pytest.raises(CrmkitError, match="cannot group by"):
        lifecycle.monthly_metrics(monthly_store, "2024-04-15", by="store_id; --")


def test_plots(stage_store):
    fig = lifecycle.plot_stages(lifecycle.stage_summary(stage_store, "2024-06-30"), "en")
    assert fig.axes[0].get_title() == "Members by lifecycle stage"
    fig = lifecycle.plot_funnel(lifecycle.funnel(stage_store, "2024-06-30"), "zh")
    assert fig.axes[0].get_title() == "会员转化漏斗"
    fig = lifecycle.plot_monthly(lifecycle.monthly_metrics(stage_store, "2024-06-30", months=6), "en")
    assert len(fig.axes[0].get_lines()) == 4 and fig.axes[0].get_ylabel() == "Rate (%)"


def test_snapshot_gives_identical_results_and_cleans_up(monthly_store):
    con = monthly_store
    before = (lifecycle.stages(con, "2024-04-15"), lifecycle.monthly_metrics(con, "2024-04-15", months=3))
    with lifecycle.snapshot(con, "2024-04-15"):
        with lifecycle.snapshot(con, "2024-04-15"):  # nested: reuses the open one
            inside = (lifecycle.stages(con, "2024-04-15"),
                      lifecycle.monthly_metrics(con, "2024-04-15", months=3))
        temp = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
        assert temp == 3
        # another date is computed from the store as usual
        assert len(lifecycle.stages(con, "2024-01-31")) == 5
    for b, i in zip(before, inside):
        pd.testing.assert_frame_equal(b, i)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0


def test_members_of_unknown_stores_keep_their_metrics(monthly_store):
    monthly_store.execute("UPDATE members SET join_store_id = 'S9' WHERE member_id IN ('m4', 'm5')")
    m = lifecycle.monthly_metrics(monthly_store, "2024-04-15", months=3, by="region")
    feb = m[(m["month"] == "2024-02-01") & m["region"].isna()].iloc[0]
    assert (feb.buyers, feb.lapsed, feb.won_back) == (1, 2, 1)  # m4, of m4 and m5, in no known region
    s = lifecycle.stage_summary(monthly_store, "2024-04-15", by="region")
    assert s[s["region"].isna()]["members"].sum() == 2


def test_a_member_whose_first_order_was_online_has_no_home_store(con):
    # the home store is the registration store, else the first order's: an online first order has none,
    # and a later visit to a store must not rewrite where the member was counted before
    con.execute("INSERT INTO stores VALUES ('S3', '三店', '杭州', '华东')")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, amount,
        txn_type) VALUES ('u', 'o1', 1, '2024-01-15 10:00', NULL, 'online', 100, 'sale'),
                         ('u', 'o2', 1, '2024-03-10 10:00', 'S3', 'pos', 60, 'sale')""")
    row = lifecycle.stages(con, "2024-03-31").set_index("member_id").loc["u"]
    assert pd.isna(row["store_id"]) and pd.isna(row["region"]) and row["channel"] == "online"
