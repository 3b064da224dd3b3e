"""RFM summaries computed in DuckDB, against hand-computed answers.

The CDNOW figures (2,357 members, 1,882 holdout repeat purchases) are checked in tests/clv.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmkit.errors import CrmkitError
from crmkit.rfm import (
    calibration_holdout,
    compress,
    purchase_days,
    purchase_timeline,
    rfm_summary,
    unique_rows,
)

ROWS = [
    # member, order, line, time, amount, type
    ("A", "o1", 1, "2024-01-01 10:00", 10.0, "sale"),
    ("A", "o1", 2, "2024-01-01 10:00", 20.0, "sale"),
    ("A", "o2", 1, "2024-01-01 15:00", 5.0, "sale"),     # same day: merges with o1
    ("A", "o3", 1, "2024-01-08 12:00", 15.0, "sale"),
    ("A", "o4", 1, "2024-01-22 09:00", 40.0, "sale"),
    ("A", "o4", 1, "2024-01-25 09:00", -10.0, "return"),  # nets out on o4's day
    ("B", "o5", 1, "2024-01-03 09:00", 50.0, "sale"),
    ("B", "o5", 1, "2024-01-05 09:00", -50.0, "return"),  # returned in full: no purchase
    ("B", "o6", 1, "2024-01-10 09:00", 20.0, "sale"),
    ("C", "o7", 1, "2024-01-04 09:00", 30.0, "sale"),
    ("C", "o7", 1, "2024-01-06 09:00", -30.0, "return"),  # C never bought anything kept
    ("D", "o8", 1, "2024-01-15 09:00", 0.0, "sale"),      # a gift is a purchase
    ("E", "o9", 1, "2024-01-29 23:59:59", 8.0, "sale"),   # as_of is inclusive
    ("E", "o10", 1, "2024-01-30 00:00", 9.0, "sale"),     # the day after
    ("F", "o11", 1, "2024-01-02 09:00", 12.0, "sale"),
    ("F", "o99", 1, "2024-01-20 09:00", -5.0, "return"),  # matches no order: revenue only
]
AS_OF = "2024-01-29"


@pytest.fixture
def store(con):
    df = pd.DataFrame(ROWS, columns=["member_id", "order_id", "line_no", "order_time", "amount", "txn_type"])
    df["order_time"] = pd.to_datetime(df["order_time"], format="ISO8601")
    con.register("rows", df)
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM rows")
    con.unregister("rows")
    return con


def test_summary_in_weeks(store):
    s = rfm_summary(store, AS_OF).set_index("member_id")
    assert list(s.index) == ["A", "B", "D", "E", "F"]
    a = s.loc["A"]
    assert a["frequency"] == 2                              # days 8 and 22 after day 1
    assert a["recency"] == pytest.approx(21 / 7) and a["T"] == pytest.approx(28 / 7)
    assert a["monetary"] == pytest.approx((15 + 30) / 2)    # repeat days only, the return netted
    assert a["n_orders"] == 4 and a["revenue"] == pytest.approx(80)
    assert str(a["first_purchase"].date()) == "2024-01-01" and str(a["last_purchase"].date()) == "2024-01-22"
    b = s.loc["B"]
    assert (b["frequency"], b["recency"], b["monetary"], b["revenue"]) == (0, 0, 0, 20)
    assert b["T"] == pytest.approx(19 / 7)
    assert s.loc["D", "frequency"] == 0 and s.loc["D", "T"] == pytest.approx(2.0)
    assert s.loc["E", "T"] == 0 and s.loc["E", "revenue"] == 8
    assert s.loc["F", "revenue"] == pytest.approx(7) and s.loc["F", "n_orders"] == 1
    assert s.attrs == {"as_of": AS_OF, "period": "W"}


def test_summary_in_days_and_since(store):
    s = rfm_summary(store, AS_OF, period="D").set_index("member_id")
    assert (s.loc["A", "recency"], s.loc["A", "T"]) == (21, 28)
    s = rfm_summary(store, AS_OF, since="2024-01-05").set_index("member_id")
    assert list(s.index) == ["A", "B", "D", "E"]
    assert s.loc["A", "frequency"] == 1 and s.loc["A", "T"] == pytest.approx(3.0)
    assert s.loc["A", "monetary"] == pytest.approx(30)
    assert s.loc["B", "revenue"] == pytest.approx(-30)  # o5's sale is before the window, its return in it


def test_calibration_holdout(store):
    ch = calibration_holdout(store, "2024-01-10", AS_OF).set_index("member_id")
    assert list(ch.index) == ["A", "B", "F"]
    a = ch.loc["A"]
    assert (a["frequency"], a["recency"], a["T"], a["monetary"]) == pytest.approx((1, 1, 9 / 7, 15))
    assert a["frequency_holdout"] == 1 and a["monetary_holdout"] == pytest.approx(30)
    assert ch["duration_holdout"].tolist() == pytest.approx([19 / 7] * 3)
    assert ch.loc["B", "T"] == 0 and ch.loc["B", "frequency_holdout"] == 0
    with pytest.raises(CrmkitError, match="must come after"):
        calibration_holdout(store, AS_OF, "2024-01-10")


def test_purchase_days_and_timeline(store):
    days = purchase_days(store, "A", AS_OF)
    assert [str(d.date()) for d in days["day"]] == ["2024-01-01", "2024-01-08", "2024-01-22"]
    assert days["value"].tolist() == [35, 15, 30] and days["n_orders"].tolist() == [2, 1, 1]
    tl = purchase_timeline(store, "2024-01-10", AS_OF)
    assert tl["first_purchases"].sum() == 3  # A, B and F
    assert tl["repeat_purchases"].sum() == 2  # A's days 8 and 22


def test_table_without_order_ids(con):
    con.execute("""CREATE TABLE flat AS SELECT * FROM (VALUES
        ('X', TIMESTAMP '2024-01-01 09:00', 10.0), ('X', TIMESTAMP '2024-01-01 18:00', 5.0),
        ('X', TIMESTAMP '2024-01-15 09:00', 7.0)) t(member_id, order_time, amount)""")
    s = rfm_summary(con, "2024-01-15", table="flat")
    assert s[["frequency", "recency", "T", "monetary", "n_orders"]].iloc[0].tolist() == [1, 2, 2, 7, 3]


def test_unique_rows():
    x, t = np.array([2.0, 1.0, 2.0, 3.0, 1.0]), np.array([1.0, 1.0, 1.0, 0.0, 2.0])
    (ux, ut), inverse = unique_rows(x, t)
    assert ux.tolist() == [2, 1, 3, 1] and ut.tolist() == [1, 1, 0, 2]
    assert (ux[inverse] == x).all() and (ut[inverse] == t).all()


def test_compress():
    df = pd.DataFrame({"frequency": [0, 0, 1, 1, 1], "recency": [0, 0, 2.0, 2.0, 3.0],
                       "T": [5.0, 5.0, 6.0, 6.0, 6.0]})
    c = compress(df)
    assert c.to_dict("list") == {"frequency": [0, 1, 1], "recency": [0, 2.0, 3.0], "T": [5.0, 6.0, 6.0],
                                 "weight": [2, 2, 1]}
    assert compress(c)["weight"].tolist() == [2, 2, 1]  # weights add up, not rows
    assert compress(df, ["frequency"])["weight"].tolist() == [2, 3]


def test_errors_are_one_sentence(store):
    with pytest.raises(CrmkitError, match="period must be"):
        rfm_summary(store, AS_OF, period="M")
    with pytest.raises(CrmkitError, match="not a date"):
        rfm_summary(store, "2024-02-30")
    with pytest.raises(CrmkitError, match="no table 'orders'"):
        rfm_summary(store, AS_OF, table="orders")
    store.execute("CREATE TABLE bad AS SELECT member_id, order_time FROM transactions")
    with pytest.raises(CrmkitError, match="'amount'"):
        rfm_summary(store, AS_OF, table="bad")
