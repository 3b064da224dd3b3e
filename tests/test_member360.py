"""Member 360 on a hand-made member: masked contact, status, scores, orders, coupons and points."""
import json

import pytest

from crmkit import member360, privacy
from crmkit.errors import CrmkitError


@pytest.fixture
def m_store(con):
    con.execute("INSERT INTO stores VALUES ('S1', '静安店', '上海', '华东')")
    con.execute("""INSERT INTO members (member_id, phone, name, gender, birth_date, join_date, join_store_id,
        join_channel) VALUES ('M1', '13812345678', '欧阳娜娜', 'F', '1990-08-15', '2023-03-01', 'S1', 'pos'),
        ('M2', '13900001111', '李四', 'M', NULL, '2023-03-01', 'S1', 'pos')""")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, sku,
        category, quantity, amount, discount, coupon_id, txn_type) VALUES
        ('M1', 'o1', 1, '2023-03-01 10:00', 'S1', 'pos', 'k1', '美妆', 1, 500, 0, NULL, 'sale'),
        ('M1', 'o2', 1, '2024-05-10 10:00', 'S1', 'pos', 'k1', '美妆', 2, 1200, 100, 'c1', 'sale'),
        ('M1', 'o2', 2, '2024-05-10 10:00', 'S1', 'pos', 'k2', '护肤', 1, 900, 0, 'c1', 'sale'),
        ('M1', 'o3', 1, '2024-06-01 10:00', NULL, 'online', 'k3', '服装', 1, 400, 0, NULL, 'sale'),
        ('M1', 'o3', 1, '2024-06-03 10:00', NULL, 'online', 'k3', '服装', -1, -400, 0, NULL, 'return'),
        ('M1', 'o4', 1, '2024-07-05 10:00', 'S1', 'pos', 'k2', '护肤', 1, 300, 0, NULL, 'sale'),
        ('M2', 'p1', 1, '2024-06-20 10:00', 'S1', 'pos', 'k1', '美妆', 1, 100, 0, NULL, 'sale')""")
    con.execute("""INSERT INTO coupons VALUES
        ('c1', 'M1', 'CAMP1', 50, '2024-05-01 09:00', '2024-05-10 10:00', 'o2'),
        ('c2', 'M1', 'CAMP2', 30, '2024-06-15 09:00', '2024-07-02 10:00', NULL),
        ('c3', 'M1', 'CAMP3', 20, '2024-07-01 09:00', NULL, NULL)""")
    con.execute("""INSERT INTO points VALUES
        ('M1', '2024-05-10 10:00', 2100, 'earn', 'o2'), ('M1', '2024-06-01 10:00', -500, 'redeem', NULL),
        ('M1', '2024-06-20 10:00', -100, 'expire', NULL), ('M1', '2024-07-05 10:00', 300, 'earn', 'o4')""")
    con.execute("""INSERT INTO member_scores (member_id, as_of, clv, clv_low, clv_high, p_alive, churn_risk,
        churn_band) VALUES ('M1', '2024-06-30', 1800, 1200, 2500, 0.92, 0.15, 'low'),
                           ('M1', '2024-07-31', 9999, 1, 99999, 0.1, 0.9, 'high')""")
    return con


def test_member_360_by_hand(m_store):
    m = member360.member_360(m_store, "M1", "2024-06-30")
    assert m.profile["phone"] == "138****5678" and m.profile["name"] == "欧***"
    assert (m.profile["home_store_name"], m.profile["region"], m.profile["birth_month"]) == ("静安店", "华东", 8)
    s = m.status
    # trailing 365 days: 1,200 + 900 (o2) + 400 - 400 (o3 returned) = 2,100 -> Silver
    assert (s["tier"], s["annual_spend"], s["spend_to_next_tier"]) == ("Silver", 2100.0, 5900.0)
    # purchase days: 2023-03-01 and 2024-05-10 (o3 nets to zero); last purchase 51 days ago
    assert (s["purchase_days"], s["days_since_last_purchase"], s["net_spend"]) == (2, 51, 2600.0)
    assert s["lifecycle_stage"] == "won_back"  # back on 2024-05-10 after a 436-day gap
    # ranked among the two buyers: M1 bought earlier (R), more often (F), more (M) than M2
    assert (s["rfm_r"], s["rfm_f"], s["rfm_m"], s["rfm_segment"]) == (1, 3, 3, "At Risk")
    # the scores of 2024-06-30, not the later ones
    assert m.scores["clv"] == 1800 and m.scores["churn_band"] == "low" and m.scores["clv_low"] == 1200
    assert m.preferred_categories["category"].tolist() == ["美妆", "护肤"]
    assert m.recent_orders["order_id"].tolist() == ["o3", "o2", "o1"]
    o2 = m.recent_orders.set_index("order_id").loc["o2"]
    assert (o2["amount"], o2["items"], o2["discount"], o2["categories"]) == (2100.0, 3.0, 100.0, "护肤, 美妆")
    assert bool(m.recent_orders.set_index("order_id").loc["o3", "has_return"])
    assert m.coupons["coupon_id"].tolist() == ["c2", "c1"]  # c3 not issued yet
    assert m.coupons.set_index("coupon_id")["redeemed_at"].isna().tolist() == [True, False]
    assert (m.points["balance"], m.points["earned"], m.points["redeemed"], m.points["expired"]) == (
        1500.0, 2100.0, 500.0, 100.0)
    d = m.to_dict()
    text = json.dumps(d, ensure_ascii=False)
    assert privacy.find_raw_phones(text) == [] and "欧阳娜娜" not in text
    assert d["status"]["rfm_segment"] == "At Risk" and d["recent_orders"][0]["day"] == "2024-06-01T00:00:00"


def test_member_without_scores_or_contact(m_store):
    m = member360.member_360(m_store, "M2", "2024-06-30", recent=1)
    assert m.scores is None and len(m.recent_orders) == 1
    assert m.points["balance"] == 0 and m.coupons.empty
    assert m.to_dict()["profile"]["birth_month"] is None


def test_unknown_member(m_store):
    with pytest.raises(CrmkitError, match="'nobody' is not in the store"):
        member360.member_360(m_store, "nobody", "2024-06-30")


def test_online_member_without_a_home_store(m_store):
    """A member who joined online and only bought online has no home store (it failed: NULL bound as a number)."""
    m_store.execute("""INSERT INTO members (member_id, phone, name, join_date, join_store_id, join_channel)
        VALUES ('M3', '13700002222', '王五', '2023-03-01', NULL, 'online')""")
    m_store.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, sku,
        category, quantity, amount, discount, coupon_id, txn_type) VALUES
        ('M3', 'q1', 1, '2024-06-10 10:00', NULL, 'online', 'k3', '服装', 1, 250, 0, NULL, 'sale')""")
    m = member360.member_360(m_store, "M3", "2024-06-30")
    assert m.profile["home_store_id"] is None and m.profile["home_store_name"] is None
    assert m.profile["region"] is None and m.profile["channel"] == "online"  # None, not NaN ("nan" on the page)
    assert m.status["net_spend"] == 250.0


def test_status_from_the_snapshot_equals_the_chain_computation(scored_demo, monkeypatch):
    """With a score snapshot of the date, a member's status reads the chain-ranked R, F and M from it and
    computes stage and tier on the member's own orders: the same as computing everything over the chain."""
    import datetime as dt

    import crmkit
    from crmkit.engine import snapshots

    db, as_of = scored_demo
    con = crmkit.connect(db, read_only=True)
    try:
        d = dt.date.fromisoformat(as_of)
        assert snapshots.latest_run(con, d) is not None
        ids = [r[0] for r in con.execute("""
(SELECT member_id FROM member_scores USING SAMPLE 25 ROWS (reservoir, 7))
UNION ALL (SELECT m.member_id FROM members m ANTI JOIN member_scores s USING (member_id) ORDER BY 1 LIMIT 5)
ORDER BY 1""").fetchall()]
        fast = [member360._attributes(con, d, i, None, None) for i in ids]
        monkeypatch.setattr(snapshots, "latest_run", lambda *a, **k: None)
        slow = [member360._attributes(con, d, i, None, None) for i in ids]
    finally:
        con.close()
    import pandas as pd

    assert len(ids) == 30 and [f["member_id"] for f in fast] == ids
    assert any(pd.isna(f["rfm_segment"]) for f in fast) and any(not pd.isna(f["rfm_segment"]) for f in fast)
    for f, s in zip(fast, slow):
        assert set(f) <= set(s)
        differ = [k for k in f if not ((pd.isna(f[k]) and pd.isna(s[k])) or f[k] == s[k]
                                       or (isinstance(f[k], float) and f[k] == pytest.approx(s[k], rel=1e-12)))]
        assert differ == [], (f["member_id"], {k: (f[k], s[k]) for k in differ})
