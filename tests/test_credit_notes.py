"""Credit notes under their own number net the order they reverse (issue 10, item 6).

Acceptance: a hand-made export that mixes credit notes with their original
orders, loaded by the real loader, and its order counts, purchase counts and
revenue checked against values computed by hand below.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest

from crmkit import lifecycle
from crmkit.cli import main as cli_main
from crmkit.io import credit_notes, load_files
from crmkit.rfm import rfm_summary

NOW = dt.datetime(2026, 7, 1)
AS_OF = "2011-01-31"

# UK-retailer style: a credit note has its own number ("C…") and negative quantities; no txn_type column.
HEAD = "order_id,sku,quantity,amount,order_time,customer_id\n"
LINES = [
    # A: order 1001 cancelled in full three days later; a later order 1002 of 7.50 stays
    "1001,X,2,20,2010-12-01 10:00,A", "1001,Y,1,5,2010-12-01 10:00,A",
    "C1001,X,-2,-20,2010-12-03 09:00,A", "C1001,Y,-1,-5,2010-12-03 09:00,A",
    "1002,Z,1,7.5,2010-12-10 12:00,A",
    # B: order 2001 (30 + 10) cancelled in part (the 30); a repeat order 2002 of 5
    "2001,X,3,30,2010-12-02 11:00,B", "2001,Y,2,10,2010-12-02 11:00,B",
    "C2001,X,-3,-30,2010-12-05 11:00,B",
    "2002,Y,1,5,2011-01-05 11:00,B",
    # C: a credit note that reverses nothing (another product): it stays a return of its own
    "3001,X,1,10,2010-12-01 10:00,C",
    "C3001,Y,-1,-5,2010-12-04 10:00,C",
    # D: the reversed order is older than the 90-day window: no link
    "4001,X,1,10,2010-06-01 10:00,D",
    "C4001,X,-1,-10,2010-12-01 10:00,D",
    # E: cancelled in full, with amounts whose float sum is not exactly 0 (0.1 + 0.2 - 0.1 - 0.2)
    "5001,P,1,0.1,2010-12-01 10:00,E", "5001,Q,1,0.2,2010-12-01 10:00,E",
    "C5001,P,-1,-0.1,2010-12-02 10:00,E", "C5001,Q,-1,-0.2,2010-12-02 10:00,E",
    # F: two equal orders, one credit note: the latest earlier order (6002) is the one cancelled
    "6001,X,1,10,2010-11-01 10:00,F",
    "6002,X,1,10,2010-11-20 10:00,F",
    "C6001,X,-1,-10,2010-11-25 10:00,F",
]

# By hand (as_of 2011-01-31, days): purchases = orders not cancelled in full, purchase days, net revenue.
EXPECTED = {  # member: (frequency, n_orders, revenue, first_purchase, last_purchase)
    "A": (0, 1, 7.5, "2010-12-10", "2010-12-10"),          # 1001 gone; 1002
    "B": (1, 2, 15.0, "2010-12-02", "2011-01-05"),         # 2001 keeps 10; 2002: 5
    "C": (0, 1, 5.0, "2010-12-01", "2010-12-01"),          # 10 - 5 (unlinked return)
    "D": (0, 1, 0.0, "2010-06-01", "2010-06-01"),          # 10 - 10, but no link: 4001 stays a purchase
    "F": (0, 1, 10.0, "2010-11-01", "2010-11-01"),         # 6002 gone, 6001 stays
}                                                          # E: no purchase at all


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text(HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    return p


def load(con, *paths):
    return load_files(con, list(paths), kind="transactions", derive_members=True, progress=False, now=NOW)


def by_customer(con, df, col="member_id"):
    ids = dict(con.execute("SELECT member_id, source_id FROM member_identities").fetchall())
    return df.assign(customer=df[col].map(ids)).set_index("customer")


def check_store(con):
    rfm = by_customer(con, rfm_summary(con, AS_OF, period="D"))
    assert sorted(rfm.index) == sorted(EXPECTED)
    for c, (freq, n_orders, revenue, first, last) in EXPECTED.items():
        row = rfm.loc[c]
        assert row.frequency == freq, c
        assert row.n_orders == n_orders, c
        assert row.revenue == pytest.approx(revenue, abs=1e-9), c
        assert str(row.first_purchase)[:10] == first and str(row.last_purchase)[:10] == last, c
    assert rfm.loc["B", "monetary"] == pytest.approx(5.0)
    assert rfm.n_orders.sum() == 6 and rfm.revenue.sum() == pytest.approx(37.5)
    # lifecycle agrees: the same purchase days, and E (cancelled in full) never bought
    st = by_customer(con, lifecycle.stages(con, AS_OF))
    for c, (freq, *_, first, last) in EXPECTED.items():
        assert st.loc[c, "purchase_days"] == freq + 1, c
        assert str(st.loc[c, "first_purchase"])[:10] == first and str(st.loc[c, "last_purchase"])[:10] == last, c
    assert st.loc["E", "purchase_days"] == 0 and st.loc["E", "lifecycle_stage"] == "prospect"
    act = by_customer(con, lifecycle.activity(AS_OF).df(con, "SELECT * FROM activity"))
    assert act.net_spend.sum() == pytest.approx(37.5)


def test_credit_notes_net_their_orders_through_the_loader(con, tmp_path):
    rep = load(con, write(tmp_path, "invoices.csv", LINES))
    f = rep.files[0]
    assert (f.rows, f.accepted, f.rejected) == (len(LINES), len(LINES), 0)
    assert con.execute("SELECT count(DISTINCT order_id) FROM transactions").fetchone()[0] == 15  # 9 orders, 6 notes
    cn = rep.credit_notes
    assert (cn.linked, cn.cancelled_orders, cn.partly_cancelled_orders, cn.unlinked) == (6, 3, 1, 2)
    links = con.execute("SELECT order_id, sku, ref_order_id FROM transactions WHERE txn_type = 'return' "
                        "ORDER BY order_id, sku").fetchall()
    assert links == [("C1001", "X", "1001"), ("C1001", "Y", "1001"), ("C2001", "X", "2001"),
                     ("C3001", "Y", None), ("C4001", "X", None), ("C5001", "P", "5001"),
                     ("C5001", "Q", "5001"), ("C6001", "X", "6002")]
    assert rep.to_dict()["credit_notes"]["window_days"] == credit_notes.WINDOW_DAYS == 90
    check_store(con)


def test_credit_notes_loaded_before_their_orders_link_on_the_later_load(con, tmp_path):
    notes = [ln for ln in LINES if ln.startswith("C")]
    orders = [ln for ln in LINES if not ln.startswith("C")]
    first = load(con, write(tmp_path, "notes.csv", notes))
    assert (first.credit_notes.linked, first.credit_notes.unlinked) == (0, 8)
    second = load(con, write(tmp_path, "orders.csv", orders))
    cn = second.credit_notes
    assert (cn.linked, cn.cancelled_orders, cn.partly_cancelled_orders, cn.unlinked) == (6, 3, 1, 2)
    check_store(con)
    # a further load links nothing twice
    third = load(con, tmp_path / "notes.csv", write(tmp_path, "more.csv", ["7001,X,1,10,2011-01-10 10:00,A"]))
    assert third.credit_notes.linked == 0
    assert con.execute("SELECT count(*) FROM transactions WHERE ref_order_id IS NOT NULL").fetchone()[0] == 6


def test_one_sale_line_is_reversed_once(con, tmp_path):
    # two credit notes of one item each against an order of two equal lines and an earlier equal order
    rows = ["8001,X,1,10,2010-12-01 10:00,G", "8002,X,1,10,2010-12-05 10:00,G", "8002,X,1,10,2010-12-05 10:00,G",
            "C8001,X,-1,-10,2010-12-06 10:00,G", "C8002,X,-1,-10,2010-12-07 10:00,G",
            "C8003,X,-1,-10,2010-12-08 10:00,G"]
    p = tmp_path / "g.csv"
    p.write_text("order_id,line_no,sku,quantity,amount,order_time,customer_id\n"
                 + "\n".join(r.replace(",X,", f",{n},X,", 1) for r, n in zip(rows, [1, 1, 2, 1, 1, 1])) + "\n")
    rep = load(con, p)
    assert (rep.credit_notes.linked, rep.credit_notes.cancelled_orders) == (3, 2)
    refs = con.execute("SELECT order_id, ref_order_id FROM transactions WHERE txn_type = 'return' "
                       "ORDER BY order_id").fetchall()
    assert refs == [("C8001", "8002"), ("C8002", "8002"), ("C8003", "8001")]
    assert rfm_summary(con, AS_OF, period="D").empty  # every order cancelled: no purchase
    assert lifecycle.stages(con, AS_OF).purchase_days.sum() == 0


def test_cli_load_states_the_credit_note_rule(tmp_path, capsys):
    db = tmp_path / "s.duckdb"
    rc = cli_main(["load", str(write(tmp_path, "invoices.csv", LINES)), "--db", str(db),
                   "--kind", "transactions+members", "--json"])
    assert rc in (0, None)
    out = json.loads(capsys.readouterr().out)
    assert out["credit_notes"] == {"linked": 6, "cancelled_orders": 3, "partly_cancelled_orders": 1,
                                   "unlinked": 2, "window_days": 90}


def test_a_store_made_before_ref_order_id_still_reads(con):
    con.execute("ALTER TABLE transactions DROP COLUMN ref_order_id")
    con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount, txn_type) "
                "VALUES ('m', 'o', TIMESTAMP '2010-12-01 10:00', 10, 'sale')")
    assert lifecycle.stages(con, AS_OF).purchase_days.tolist() == [1]
    assert rfm_summary(con, AS_OF).n_orders.tolist() == [1]
