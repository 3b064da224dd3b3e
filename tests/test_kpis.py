"""KPIs rolled up HQ → region → store, and the CLV value pyramid, on hand-made data."""
import numpy as np
import pytest

from crmkit import kpis
from crmkit.errors import CrmkitError


@pytest.fixture
def kpi_store(con):
    con.execute("INSERT INTO stores VALUES ('S1', '一店', '上海', '华东'), ('S2', '二店', '广州', '华南'), "
                "('S3', '三店', '深圳', '华南')")
    con.execute("""INSERT INTO members (member_id, join_date, join_store_id) VALUES
        ('a', '2023-05-01', 'S1'), ('b', '2024-03-10', 'S1'), ('c', '2023-01-01', 'S2'),
        ('d', '2024-03-05', 'S3'), ('e', '2024-04-02', 'S2')""")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, amount, txn_type)
        VALUES ('a', 'A1', 1, '2024-03-02 10:00', 'S1', 100, 'sale'),
               ('a', 'A1', 2, '2024-03-02 10:00', 'S1', 50, 'sale'),
               ('a', 'A1', 2, '2024-03-10 10:00', 'S1', -50, 'return'),
               ('a', 'A2', 1, '2024-03-03 10:00', 'S2', 200, 'sale'),
               ('b', 'B1', 1, '2024-03-12 10:00', 'S1', 300, 'sale'),
               ('c', 'C0', 1, '2024-02-20 10:00', 'S2', 80, 'sale'),
               ('c', 'C1', 1, '2024-03-25 10:00', 'S2', 120, 'sale'),
               ('e', 'E1', 1, '2024-04-02 10:00', 'S2', 999, 'sale')""")
    con.execute("INSERT INTO store_sales VALUES ('S1', '2024-03-01', 600, 30), ('S1', '2024-03-31', 400, 20), "
                "('S2', '2024-03-15', 400, 25), ('S2', '2024-04-01', 5000, 99)")
    return con


def test_kpis_by_hand(kpi_store):
    k = kpis.kpis(kpi_store, "2024-03-01", "2024-03-31")
    assert k["level"].tolist() == ["hq", "region", "region", "store", "store", "store"]
    hq = k.iloc[0]
    # members: a, c before March; b, d join in March; e joins in April (outside)
    assert (hq.members_start, hq.new_members, hq.members_end, hq.member_growth) == (2, 2, 4, 1.0)
    assert (hq.active_members, hq.active_rate) == (3, 0.75)
    assert hq.purchase_frequency == pytest.approx(4 / 3)  # A1, A2, B1, C1 by a, b, c
    # sales: 100 + 50 - 50 + 200 + 300 + 120 = 720 net over 4 orders; 50 refunded of 770
    assert (hq.orders, hq.net_sales, hq.aov) == (4, 720.0, 180.0)
    assert (hq.gross_sales, hq.refunds) == (770.0, 50.0) and hq.refund_rate == pytest.approx(50 / 770)
    assert hq.till_sales == 1400.0 and hq.member_share_of_sales == pytest.approx(720 / 1400)
    east = k[(k.level == "region") & (k.region == "华东")].iloc[0]
    assert (east.members_end, east.active_members, east.purchase_frequency) == (2, 2, 1.5)
    assert (east.net_sales, east.orders, east.aov, east.refund_rate) == (400.0, 2, 200.0, 50 / 450)
    assert east.member_share_of_sales == pytest.approx(0.4)
    south = k[(k.level == "region") & (k.region == "华南")].iloc[0]
    assert (south.members_start, south.new_members, south.active_rate) == (1, 1, 0.5)
    # A2 was bought at S2 by a member of S1: sales count where they happen
    assert (south.net_sales, south.aov, south.member_share_of_sales) == (320.0, 160.0, 0.8)
    s3 = k[k.store_id == "S3"].iloc[0]
    assert (s3.store_name, s3.new_members, s3.active_rate, s3.net_sales) == ("三店", 1, 0.0, 0.0)
    assert np.isnan(s3.member_growth) and np.isnan(s3.aov) and np.isnan(s3.member_share_of_sales)


def test_kpi_period_is_checked(kpi_store):
    with pytest.raises(CrmkitError, match="starts"):
        kpis.kpis(kpi_store, "2024-04-01", "2024-03-01")


@pytest.fixture
def scored_store(con):
    con.execute("INSERT INTO stores VALUES ('S1', '一店', '上海', '华东'), ('S2', '二店', '广州', '华南')")
    con.execute("INSERT INTO members (member_id, join_date, join_store_id) "
                "SELECT printf('m%03d', i), DATE '2024-01-01', CASE WHEN i % 2 = 0 THEN 'S2' ELSE 'S1' END "
                "FROM range(1, 101) r(i)")
    con.execute("INSERT INTO member_scores (member_id, as_of, clv, clv_low, clv_high) "
                "SELECT printf('m%03d', i), DATE '2024-03-31', i, i * 0.5, i * 1.5 FROM range(1, 101) r(i)")
    con.execute("INSERT INTO member_scores (member_id, as_of, clv, clv_low, clv_high) "
                "SELECT printf('m%03d', i), DATE '2024-01-31', 1, 0, 2 FROM range(1, 101) r(i)")
    return con


def test_clv_pyramid_by_hand(scored_store):
    p = kpis.clv_pyramid(scored_store, "2024-04-30").set_index("layer")
    # CLV 1..100: rank r of 100 is in the first layer whose cumulative share reaches r/100
    assert p["members"].tolist() == [1, 4, 15, 30, 50]
    assert p["clv"].tolist() == [100.0, 390.0, sum(range(81, 96)), sum(range(51, 81)), sum(range(1, 51))]
    assert p["clv_share"].sum() == pytest.approx(1.0) and p.loc["top_1", "clv_share"] == pytest.approx(100 / 5050)
    # no per-layer range: summed member prediction bounds are no interval of a layer's total
    assert "clv_low" not in p.columns and "clv_high" not in p.columns
    # the February view uses the January scores: every CLV is 1, ranked by member id
    feb = kpis.clv_pyramid(scored_store, "2024-02-15")
    assert feb["clv"].sum() == 100.0
    # store S2 (even members, CLV 2..100): rank r of 50; top 1% is empty, 1-5% has r <= 2.5
    s2 = kpis.clv_pyramid(scored_store, "2024-04-30", store_id="S2").set_index("layer")
    assert s2["members"].tolist() == [0, 2, 8, 15, 25] and s2.loc["top_1_5", "clv"] == 198.0
    fig = kpis.plot_pyramid(p.reset_index(), "en")
    assert fig.axes[0].get_title() == "Member value pyramid (CLV)"


def test_pyramid_needs_scores(con):
    with pytest.raises(CrmkitError, match="run `crmkit score` first"):
        kpis.clv_pyramid(con, "2024-03-31")


def test_aov_is_the_value_of_the_periods_orders(con):
    # a January order refunded in February: February's net sales carry the refund, its AOV does not
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, amount, txn_type)
        VALUES ('a', 'o1', 1, '2024-01-20 10:00', 'S1', 500, 'sale'),
               ('a', 'o1', 2, '2024-02-02 10:00', 'S1', -500, 'return'),
               ('b', 'o2', 1, '2024-02-10 10:00', 'S1', 100, 'sale')""")
    feb = kpis.kpis(con, "2024-02-01", "2024-02-29").iloc[0]
    assert (feb.orders, feb.net_sales, feb.aov) == (1, -400.0, 100.0)
    assert (feb.gross_sales, feb.refunds) == (100.0, 500.0)
