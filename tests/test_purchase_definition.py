"""One definition of a purchase (issue 11, item 2): every module agrees on who bought and on how many days.

A small store has one member per hard case, next to simulated buyers (so that
the models of ``crmkit score`` can be fitted):

- GIFT: one ¥0 order (a free gift): a purchase, one purchase day;
- REFUND: one order cancelled in full by a later credit note under its own number: no purchase;
- SAMEDAY: a sale and the return of all of it on the same day, on the same receipt: no purchase;
- SAMEDAY_CN: the same with a credit note of its own number, linked by the loader's rule: no purchase;
- PARTIAL: an order returned in part (worth what remains) and a later order: two purchase days;
- REPEAT: four orders on three days (two on one day): three purchase days, four purchases.

The definition is :mod:`crmkit.engine.activity`; values by hand as of 2024-06-30.
"""
from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from test_score import background

from crmkit import campaigns, cohorts, engine, kpis, lifecycle, member360, segments
from crmkit.campaigns import queries as campaign_queries
from crmkit.churn import behaviour_features
from crmkit.dashboard import data_span
from crmkit.io import credit_notes
from crmkit.rfm import calibration_holdout, purchase_days, rfm_summary
from crmkit.scoring import score_members

AS_OF = "2024-06-30"

# (member, order_id, time, sku, quantity, amount, txn_type)
LINES = [
    ("GIFT", "G1", "2024-03-01 10:00", "GIFTBOX", 1, 0.0, "sale"),
    ("REFUND", "R1", "2024-03-05 10:00", "X", 1, 100.0, "sale"),
    ("REFUND", "CR1", "2024-03-20 16:00", "X", -1, -100.0, "return"),        # credit note, own number
    ("SAMEDAY", "S1", "2024-04-02 10:00", "X", 2, 80.0, "sale"),
    ("SAMEDAY", "S1", "2024-04-02 15:00", "X", -2, -80.0, "return"),         # same receipt, same day
    ("SAMEDAY_CN", "T1", "2024-04-03 10:00", "Y", 1, 60.0, "sale"),
    ("SAMEDAY_CN", "CT1", "2024-04-03 18:00", "Y", -1, -60.0, "return"),     # credit note, same day
    ("PARTIAL", "P1", "2024-02-10 10:00", "X", 1, 50.0, "sale"),
    ("PARTIAL", "P1", "2024-02-10 10:00", "Y", 1, 30.0, "sale"),
    ("PARTIAL", "P1", "2024-02-15 10:00", "Y", -1, -30.0, "return"),
    ("PARTIAL", "P2", "2024-05-01 10:00", "Z", 1, 40.0, "sale"),
    ("REPEAT", "E1", "2024-01-10 10:00", "X", 1, 20.0, "sale"),
    ("REPEAT", "E2", "2024-02-10 09:00", "X", 1, 30.0, "sale"),
    ("REPEAT", "E3", "2024-02-10 17:00", "Y", 1, 10.0, "sale"),
    ("REPEAT", "E4", "2024-06-01 10:00", "Z", 1, 60.0, "sale"),
]

# member: (purchase days, purchases, net spend in yuan, first purchase, last purchase); None: never bought
EXPECTED = {
    "GIFT": (1, 1, 0.0, "2024-03-01", "2024-03-01"),
    "REFUND": None,
    "SAMEDAY": None,
    "SAMEDAY_CN": None,
    "PARTIAL": (2, 2, 90.0, "2024-02-10", "2024-05-01"),
    "REPEAT": (3, 4, 120.0, "2024-01-10", "2024-06-01"),
}
BUYERS = {m for m, v in EXPECTED.items() if v}
NON_BUYERS = set(EXPECTED) - BUYERS


def load_hand(con) -> None:
    con.executemany(
        "INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, sku, category, "
        "quantity, amount, txn_type) VALUES (?, ?, 1, CAST(? AS TIMESTAMP), 'S1', 'pos', ?, 'C-' || ?, ?, ?, ?)",
        [[m, o, t, sku, sku, q, a, kind] for m, o, t, sku, q, a, kind in LINES])
    con.executemany("INSERT INTO members (member_id, join_date) VALUES (?, DATE '2024-01-01')",
                    [[m] for m in EXPECTED])
    linked = credit_notes.link(con)  # as every load does
    assert linked.linked == 2 and linked.cancelled_orders == 2


@pytest.fixture(scope="module")
def store():
    import crmkit

    con = crmkit.connect(":memory:")
    bg = background()
    con.register("bg", bg)
    con.execute("INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) "
                "SELECT member_id, order_id, 1, order_time, amount, 'sale' FROM bg")
    con.unregister("bg")
    load_hand(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def bg_purchases() -> int:
    bg = background()
    return int((bg["order_time"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1)).sum())


@pytest.fixture(scope="module")
def scores(store):
    return score_members(store, AS_OF).table.set_index("member_id")


def test_rfm_summary(store):
    s = rfm_summary(store, AS_OF, period="D").set_index("member_id")
    assert BUYERS <= set(s.index) and not NON_BUYERS & set(s.index)
    for m in BUYERS:
        days, orders, spend, first, last = EXPECTED[m]
        row = s.loc[m]
        assert (row.frequency, row.n_orders, row.revenue) == (days - 1, orders, spend), m
        assert (row.first_purchase, row.last_purchase) == (pd.Timestamp(first), pd.Timestamp(last)), m
        assert row.recency == (pd.Timestamp(last) - pd.Timestamp(first)).days
    assert s.loc["PARTIAL", "monetary"] == 40.0 and s.loc["REPEAT", "monetary"] == (40.0 + 60.0) / 2
    assert s.loc["GIFT", "monetary"] == 0.0
    # one member's purchase days: the two orders of 2024-02-10 are one day worth 40
    days = purchase_days(store, "REPEAT", AS_OF)
    assert days["value"].tolist() == [20.0, 40.0, 60.0] and days["n_orders"].tolist() == [1, 2, 1]
    assert purchase_days(store, "REFUND", AS_OF).empty


def test_calibration_holdout_counts_the_same_purchase_days(store):
    h = calibration_holdout(store, "2024-02-29", AS_OF, period="D").set_index("member_id")
    assert not NON_BUYERS & set(h.index) and "GIFT" not in h.index  # GIFT first bought in March
    assert (h.loc["REPEAT", "frequency"], h.loc["REPEAT", "frequency_holdout"]) == (1, 1)
    assert (h.loc["PARTIAL", "frequency"], h.loc["PARTIAL", "frequency_holdout"]) == (0, 1)


def test_lifecycle_stages(store):
    st = lifecycle.stages(store, AS_OF).set_index("member_id")
    for m, v in EXPECTED.items():
        if v is None:
            assert (st.loc[m, "lifecycle_stage"], st.loc[m, "purchase_days"]) == ("prospect", 0), m
        else:
            assert st.loc[m, "lifecycle_stage"] != "prospect" and st.loc[m, "purchase_days"] == v[0], m
            assert st.loc[m, "last_purchase"] == pd.Timestamp(v[4])
    # every buyer of the RFM summary has a stage other than prospect, and nobody else does
    s = rfm_summary(store, AS_OF)
    assert set(st.index[st["lifecycle_stage"] != "prospect"]) == set(s["member_id"])
    assert (st["purchase_days"].reindex(s["member_id"]).to_numpy() == s["frequency"].to_numpy() + 1).all()


def test_rfm_segments(store):
    r = segments.rfm_scores(store, AS_OF).set_index("member_id")
    assert set(r.index) == set(rfm_summary(store, AS_OF)["member_id"])
    for m in BUYERS:
        assert (r.loc[m, "frequency"], r.loc[m, "monetary"]) == (EXPECTED[m][0], EXPECTED[m][2]), m


def test_member_scores(scores):
    assert BUYERS <= set(scores.index) and not NON_BUYERS & set(scores.index)
    for m in BUYERS:
        assert scores.loc[m, "frequency"] == EXPECTED[m][0] - 1, m
    # a row with a frequency and a CLV is never a prospect and always has an RFM segment
    assert (scores["lifecycle_stage"] != "prospect").all() and scores["lifecycle_stage"].notna().all()
    assert scores["rfm_segment"].notna().all() and scores["clv"].notna().all()


def test_kpis_and_header_count_purchases(store, bg_purchases):
    hand = sum(v[1] for v in EXPECTED.values() if v)
    hq = kpis.kpis(store, "2024-01-01", AS_OF).iloc[0]
    assert hq.level == "hq" and hq.orders == bg_purchases + hand
    span = data_span(store, AS_OF)
    assert span["orders"] == hq.orders
    # March: GIFT's ¥0 order is a purchase, REFUND's order is none
    march = kpis.kpis(store, "2024-03-01", "2024-03-31")
    store_s1 = march[(march.level == "store") & (march.store_id == "S1")].iloc[0]
    assert store_s1.orders == 1


def test_cohorts_first_purchase(store):
    cells = cohorts.cohort_activity(store, AS_OF)
    month0 = cells[cells["months_since"] == 0]
    assert (month0["buyers"] == month0["members"]).all()  # everyone bought in their cohort month
    # cohort sizes are the RFM summary's first purchase months: GIFT is in March, REFUND and SAMEDAY nowhere
    s = rfm_summary(store, AS_OF)
    firsts = s["first_purchase"].dt.to_period("M").dt.to_timestamp().value_counts().sort_index()
    sizes = cohorts.cohort_sizes(cells)
    assert sizes.tolist() == firsts.tolist() and list(pd.to_datetime(sizes.index)) == list(firsts.index)


def test_member360(store):
    for m, v in EXPECTED.items():
        p = member360.member_360(store, m, AS_OF)
        assert p.status["purchase_days"] == (v[0] if v else 0), m
        assert (p.status["lifecycle_stage"] == "prospect") == (v is None), m
        orders = p.recent_orders
        assert int(orders["purchase"].sum()) == (v[1] if v else 0), m
    refund = member360.member_360(store, "REFUND", AS_OF).recent_orders
    # the credit note is listed with the order it reverses: one order, net 0, returned, no purchase
    assert refund[["order_id", "amount", "has_return", "purchase"]].values.tolist() == [["R1", 0.0, True, False]]


def test_churn_features_cover_the_buyers(store):
    f = behaviour_features(store, AS_OF)
    assert set(f["member_id"]) == set(rfm_summary(store, AS_OF)["member_id"])


@pytest.fixture(scope="module")
def campaign(store):
    """A campaign over the first half of 2024 (every hand-made order, and every return, in its window):
    the hand members in treatment, two members without orders in control."""
    store.execute("""INSERT INTO campaigns (campaign_id, name, start, "end", margin_rate)
                     VALUES ('H1', 'half year', DATE '2024-01-01', DATE '2024-06-30', 0.4)""")
    store.executemany("""INSERT INTO campaign_assignments (campaign_id, member_id, "group", contacted_at)
                         VALUES ('H1', ?, ?, NULL)""",
                      [[m, "treatment"] for m in EXPECTED] + [[m, "control"] for m in ("NONE1", "NONE2")])
    return "H1"


def test_campaign_outcomes_count_purchases_as_everywhere(store, campaign):
    info = campaign_queries.campaign_info(store, campaign)
    out = campaign_queries.outcome_query(info).df(
        store, "SELECT member_id, orders, revenue FROM cmp_outcomes").set_index("member_id")
    for m, v in EXPECTED.items():
        assert out.loc[m, "orders"] == (v[1] if v else 0), m  # purchases: the ¥0 order is one, refunds are none
        assert out.loc[m, "revenue"] == (v[2] if v else 0.0), m  # a credit note counts against its order
    s = rfm_summary(store, AS_OF).set_index("member_id")
    st = lifecycle.stages(store, AS_OF).set_index("member_id")
    buyers = set(out.index[out["orders"] > 0])
    assert buyers == BUYERS == set(s.index) & set(EXPECTED) == set(st.index[st["purchase_days"] > 0]) & set(EXPECTED)
    assert (out.loc[sorted(BUYERS), "orders"] == s.loc[sorted(BUYERS), "n_orders"]).all()
    r = campaigns.measure(store, campaign)
    assert r.lifts["conversion"].treatment == pytest.approx(len(BUYERS) / len(EXPECTED))
    assert r.lifts["orders_per_member"].treatment == pytest.approx(sum(v[1] for v in EXPECTED.values() if v) / 6)
    assert campaigns.funnel(store, campaign)["purchased"].tolist() == [len(BUYERS)]


def test_campaign_pre_period_counts_purchase_days_as_everywhere(store, campaign):
    """Balance before a campaign: the engine's purchase days (GIFT's ¥0 day is one; REFUND's is none)."""
    frame = pd.DataFrame({"member_id": list(EXPECTED), "group": "treatment"})
    prof = campaign_queries.with_profile(store, frame, ["pre_purchase_days", "pre_spend"], AS_OF, 365)
    days = prof.set_index("member_id")["pre_purchase_days"]
    assert days.to_dict() == {m: (v[0] if v else 0) for m, v in EXPECTED.items()}


def test_snapshot_gives_the_same_answers(store):
    before = lifecycle.stages(store, AS_OF)
    with lifecycle.snapshot(store, AS_OF):
        inside = lifecycle.stages(store, AS_OF)
    pd.testing.assert_frame_equal(before, inside)


def test_a_store_without_credit_note_links_or_order_numbers():
    """Relations adapt to the columns a table has: no ``ref_order_id`` (an older store), or only
    ``member_id, order_time, amount`` (CDNOW): then each member and time is one order."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE transactions (member_id VARCHAR, order_time TIMESTAMP, amount DOUBLE)")
    con.execute("INSERT INTO transactions VALUES ('A', '2024-01-01 10:00', 0), ('A', '2024-01-05 10:00', 5),"
                "('A', '2024-01-05 12:00', 7), ('B', '2024-01-03 09:00', 9)")
    s = rfm_summary(con, "2024-01-31", period="D").set_index("member_id")
    assert s.loc["A", ["frequency", "n_orders", "revenue"]].tolist() == [1, 3, 12.0]
    assert s.loc["B", ["frequency", "n_orders"]].tolist() == [0, 1]
    q = engine.member_activity("2024-01-31")
    out = q.df(con, "SELECT member_id, purchase_days, purchases FROM activity ORDER BY member_id")
    assert out.values.tolist() == [["A", 2, 3], ["B", 1, 1]]


# ------------------------------------------------------------------ portable SQL

_DUCKDB_ONLY = re.compile(r"\b(QUALIFY|ASOF|struct_pack|rowid|list_\w+|arg_min_null|arg_max_null|FILTER|"
                          r"GROUP BY ALL|UNION ALL BY NAME|SEMI JOIN|ANTI JOIN)\b|::", re.IGNORECASE)


@pytest.mark.parametrize("name", sorted(engine.RELATIONS))
def test_relations_use_the_portable_subset(name):
    for kw in ({}, {"since": "2024-01-01", "member": "A", "suffix": "_x"}):
        sql = engine.relation_sql(name, dt.date(2024, 6, 30), **kw)
        assert not _DUCKDB_ONLY.search(sql), (name, _DUCKDB_ONLY.search(sql))


def _campaign_sql() -> str:
    """The campaign relations over a window, and the campaign's own member-profile CTEs."""
    window = (dt.datetime(2024, 1, 1), dt.datetime(2024, 7, 1))
    profile = campaign_queries.profile_query("2024-06-30")
    own = engine.Query({k: v for k, v in profile.ctes.items() if k.startswith("cmp_")})
    return (campaign_queries.campaign_query("C1", window) + own).sql("SELECT * FROM cmp_outcomes")


def test_campaign_relations_use_the_portable_subset():
    sql = _campaign_sql()
    assert not _DUCKDB_ONLY.search(sql), _DUCKDB_ONLY.search(sql)
    assert "2024" not in sql  # the window is bound, never formatted in
    sqlglot = pytest.importorskip("sqlglot")
    assert len(sqlglot.transpile(sql, read="duckdb", write="spark")) == 1


@pytest.mark.parametrize("name", sorted(engine.RELATIONS))
def test_relations_transpile_to_spark(name):
    sqlglot = pytest.importorskip("sqlglot")
    sql = engine.relation_sql(name, dt.date(2024, 6, 30))
    out = sqlglot.transpile(sql, read="duckdb", write="spark")
    assert len(out) == 1 and "SELECT" in out[0]


@pytest.mark.parametrize("name", sorted(engine.RELATIONS))
def test_relations_run_with_bound_parameters_only(store, name):
    q = engine.RELATIONS[name](AS_OF)
    sql = q.sql(f"SELECT count(*) FROM {name}")
    assert AS_OF not in sql and "2024" not in sql  # the date is bound, never formatted in
    assert q.execute(store, f"SELECT count(*) FROM {name}").fetchone()[0] > 0
