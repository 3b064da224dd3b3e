"""Row-level checks: every rejected row is in quarantine with its reason, and rows = accepted + rejected."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from crmkit.errors import InputError
from crmkit.io import load_files

NOW = dt.datetime(2026, 7, 1)
MEMBERS = "card_no,phone,name\nC1,13812345678,张三\nC2,13900000000,李四\n"
HEAD = "order_id,line_no,card_no,order_time,quantity,amount,txn_type\n"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def load(con, *paths, **kw):
    kw.setdefault("now", NOW)
    return load_files(con, list(paths), progress=False, **kw)


def quarantine(con):
    return con.execute("SELECT row_number, reason FROM quarantine ORDER BY source_file, row_number").fetchall()


@pytest.fixture
def members(tmp_path):
    return write(tmp_path, "members.csv", MEMBERS)


def test_each_bad_row_has_its_reason_and_counts_reconcile(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", HEAD +
                   "O1,1,C1,2024-01-31 08:00,1,100,销售\n"        # 1 good
                   "O1,1,C1,2024-01-31 08:00,1,100,销售\n"        # 2 duplicate order line
                   "O2,1,C1,2024-13-45,1,100,销售\n"             # 3 unparseable date
                   "O3,1,C1,2024-02-01,1,-20,销售\n"             # 4 negative amount on a sale
                   "O4,1,C9,2024-02-01,1,20,销售\n"              # 5 unknown member
                   "O5,1,C1,2099-01-01,1,20,销售\n"              # 6 future date
                   "O6,1,C1,2024-02-01,1,abc,销售\n"             # 7 unparseable number
                   "O7,1,,2024-02-01,1,20,销售\n"                # 8 missing member id
                   "O8,1,C2,,1,20,销售\n"                        # 9 missing order time
                   "O9,1,C2,2024-02-01,1,20,换货\n"              # 10 unknown transaction type
                   "O1,1,C1,2024-02-03 10:00,1,100,退货\n")      # 11 good: the return of O1
    report = load(con, members, orders)
    f = report.files[-1]
    assert (f.rows, f.accepted, f.rejected) == (11, 2, 9)
    assert quarantine(con) == [
        (2, "duplicate order line"), (3, "unparseable date: order_time"), (4, "negative amount on a sale"),
        (5, "unknown member"), (6, "future date: order_time"), (7, "unparseable number: amount"),
        (8, "missing member id"), (9, "missing value: order_time"), (10, "unknown value: txn_type")]
    raw = json.loads(con.execute("SELECT raw FROM quarantine WHERE row_number = 3").fetchall()[0][0])
    assert raw["order_time"] == "2024-13-45" and raw["order_id"] == "O2"
    assert con.execute("SELECT order_id, txn_type, quantity, amount FROM transactions ORDER BY txn_type DESC"
                       ).fetchall() == [("O1", "sale", 1.0, 100.0), ("O1", "return", -1.0, -100.0)]


def test_returns_are_signed_negative_whatever_the_export_does(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_no,item_no,user_id,card_no,pay_time,qty,pay_amount,trade_type\n"
                   "E1,1,,C1,2024/3/1 10:00:00,2,¥200.00,payment\n"
                   "E1,1,,C1,2024/3/5 10:00:00,2,¥200.00,refund\n"       # refund with a positive amount
                   "E2,1,,C2,2024/3/1 10:00:00,1,50,\n"
                   "E2,1,,C2,2024/3/2 10:00:00,-1,-50,\n")              # negative quantity: a return
    load(con, members, orders)
    assert con.execute("SELECT order_id, txn_type, quantity, amount FROM transactions ORDER BY 1, 2 DESC"
                       ).fetchall() == [("E1", "sale", 2.0, 200.0), ("E1", "return", -2.0, -200.0),
                                        ("E2", "sale", 1.0, 50.0), ("E2", "return", -1.0, -50.0)]


def test_duplicates_of_lines_already_in_the_store(con, tmp_path, members):
    load(con, members, write(tmp_path, "jan.csv", HEAD + "O1,1,C1,2024-01-31,1,100,\nO1,2,C1,2024-01-31,1,5,\n"))
    report = load(con, write(tmp_path, "feb.csv", HEAD + "O1,2,C1,2024-01-31,1,5,\nO2,1,C2,2024-02-01,1,7,\n"))
    assert [(f.accepted, f.rejected) for f in report.files] == [(1, 1)]
    assert quarantine(con) == [(1, "duplicate order line")]


def test_lines_are_numbered_when_the_export_has_none(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,sku\n"
                   "O1,C1,2024-01-31,10,A\nO1,C1,2024-01-31,20,B\nO2,C2,2024-02-01,5,A\n")
    load(con, members, orders)
    assert con.execute("SELECT order_id, line_no, sku FROM transactions ORDER BY 1, 2").fetchall() == [
        ("O1", 1, "A"), ("O1", 2, "B"), ("O2", 1, "A")]


def test_products_fill_missing_categories(con, tmp_path, members):
    products = write(tmp_path, "products.csv", "sku,category\nA,服装\n")
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,sku\nO1,C1,2024-01-31,10,A\n")
    load(con, members, products, orders)
    assert con.execute("SELECT category, channel FROM transactions").fetchall() == [("服装", "pos")]


def test_unknown_members_are_never_derived_by_accident(con, tmp_path):
    # every row rejected: the file is not "loaded" (issue 10, item 5), and the sentence says what to do
    orders = write(tmp_path, "orders.csv", "customer_id,order_time,amount\n7,2024-01-31,10\n7,2024-02-01,5\n")
    with pytest.raises(InputError, match=r"orders.csv: none of its 2 rows can be loaded, so nothing was loaded: "
                                         r"2 have the reason 'unknown member', the first on row 1; .*--derive-members"):
        load(con, orders)
    assert con.execute("SELECT count(*) FROM members").fetchone()[0] == 0
    assert quarantine(con) == []


@pytest.mark.parametrize("how", [{"derive_members": True}, {"kind": "transactions+members"}])
def test_members_derived_from_transactions_when_asked(con, tmp_path, how):
    orders = write(tmp_path, "orders.csv", "customer_id,order_time,amount,store_id\n"
                   "7,2024-02-01 10:00,5,S2\n7,2024-01-31 09:00,10,S1\n8,2024-03-01,1,S1\n")
    report = load(con, orders, **how)
    assert (report.members, report.derived_members, report.files[0].accepted) == (2, 2, 3)
    assert con.execute("SELECT i.source_id, m.join_date, m.join_store_id FROM members m "
                       "JOIN member_identities i USING (member_id) ORDER BY 1").fetchall() == [
        ("7", dt.date(2024, 1, 31), "S1"), ("8", dt.date(2024, 3, 1), "S1")]
    assert con.execute("SELECT count(DISTINCT member_id) FROM transactions").fetchall() == [(2,)]


def test_member_facts_resolve_through_any_id(con, tmp_path, members):
    campaigns = write(tmp_path, "campaigns.csv",
                      "campaign_id,start,end,attribution_days\nK1,2024-03-01,2024-03-14,14\n")
    assign = write(tmp_path, "campaign_assignments.csv", "campaign_id,card_no,group,contacted_at\n"
                   "K1,C1,实验组,2024-03-01 09:00\nK1,C2,对照组,\nK1,C9,treatment,\nK1,C1,control,\n")
    coupons = write(tmp_path, "coupons.csv", "coupon_id,card_no,campaign_id,value,issued_at,redeemed_at\n"
                    "K1-1,C1,K1,¥20,2024-03-01 09:00,\n")
    points = write(tmp_path, "points.csv", "card_no,event_time,points,event_type\nC1,2024-03-02,100,消费获得\n"
                   "C1,2024-03-02,100,消费获得\n")
    report = load(con, members, campaigns, assign, coupons, points)
    counts = {f.kind: (f.accepted, f.rejected) for f in report.files}
    assert counts == {"members": (2, 0), "campaigns": (1, 0), "campaign_assignments": (2, 2),
                      "coupons": (1, 0), "points": (1, 1)}
    assert quarantine(con) == [(3, "unknown member"), (4, "duplicate record"), (2, "duplicate record")]
    assert con.execute('SELECT "group", contacted_at IS NOT NULL FROM campaign_assignments ORDER BY 1').fetchall() == [
        ("control", False), ("treatment", True)]
    assert con.execute("SELECT value, event_type FROM coupons, points").fetchall() == [(20.0, "earn")]


def test_a_later_export_updates_dimension_rows(con, tmp_path):
    load(con, write(tmp_path, "stores.csv", "store_id,store_name,city,region\nS1,旧店,上海,华东\n"))
    load(con, write(tmp_path, "stores_2.csv", "门店编号,门店名称,城市,区域\nS1,新店,上海,华东\nS2,二店,杭州,华东\n"))
    assert con.execute("SELECT store_id, name FROM stores ORDER BY 1").fetchall() == [("S1", "新店"), ("S2", "二店")]


def test_cdnow_master_loads_with_one_command_and_a_column_map(con, cdnow_master_path):
    # CDNOW_master.txt (lifetimes): 23,570 customers, 69,659 purchase records, $2,500,315.63 in total.
    report = load(con, cdnow_master_path, kind="transactions+members",
                  column_map={"date": "order_time", "number_of_cds": "quantity", "dollar_value": "amount"})
    f = report.files[0]
    assert (f.rows, f.accepted, f.rejected) == (69_659, 69_659, 0)
    assert report.members == 23_570
    n, total, first, last = con.execute("SELECT count(DISTINCT member_id), round(sum(amount), 2), "
                                        "min(order_time), max(order_time) FROM transactions").fetchall()[0]
    assert (n, total) == (23_570, 2_500_315.63)
    assert (first, last) == (dt.datetime(1997, 1, 1), dt.datetime(1998, 6, 30))


def test_crmkit_member_ids_are_kept_and_synthesized_order_ids_hold_no_personal_data(con, tmp_path):
    orders = write(tmp_path, "orders.csv", "member_id,openid,order_time,amount\n"
                   "A7,,2024-01-31,10\nA7,,2024-01-31,10\n,oXYZ123456789,2024-02-01,5\n")
    report = load(con, orders, derive_members=True)
    assert report.members == 2
    ids = con.execute("SELECT member_id, order_id, line_no FROM transactions ORDER BY 2, 3").fetchall()
    # one order per member and day (issue 10, item 6): A7's two lines of 2024-01-31 are lines 1 and 2 of one order
    assert [(m, n) for m, _, n in ids[:2]] == [("A7", 1), ("A7", 2)] and ids[0][1] == ids[1][1]
    assert all("oXYZ" not in o for _, o, _ in ids)


def test_a_missing_order_id_is_a_missing_value(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", HEAD + ",1,C1,2024-01-31,1,1,\n,1,C2,2024-01-31,1,1,\n"
                   "O1,1,C1,2024-01-31,1,1,\n")  # one good row: a file with every row rejected fails (issue 10)
    load(con, members, orders)
    assert quarantine(con) == [(1, "missing value: order_id"), (2, "missing value: order_id")]


def test_personal_data_of_any_header_is_masked_in_quarantine(con, tmp_path, members):
    """A rejected order row keeps its buyer's phone, receiver and address masked, though none is a member field."""
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,买家手机号,收货人姓名,收货地址\n"
                   "O1,C1,2024-01-31 08:00,oops,13812345678,王小明,上海市浦东新区世纪大道100号\n"
                   "O2,C1,2024-02-01 08:00,10,13812345678,王小明,上海市浦东新区世纪大道100号\n")
    load(con, members, orders)
    raw = json.loads(con.execute("SELECT raw FROM quarantine WHERE source_file LIKE '%orders.csv'").fetchall()[0][0])
    assert raw["买家手机号"] == "138****5678"
    assert raw["收货人姓名"] == "王**"
    assert raw["收货地址"].startswith("上*") and "浦东" not in raw["收货地址"]


def test_phones_in_any_format_are_masked_in_quarantine(con, tmp_path, members):
    """A phone written with spaces, dashes, +86 or full-width digits, in a column that is no phone field or in
    a line too broken to split, never enters quarantine in clear (issue 14)."""
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,备注\n"
                   "O1,C1,2024-01-31 08:00,oops,请联系 +86 139 0013 9022\n"
                   "O2,C1,2024-02-01 08:00,10,改送 86-137-0013-7000\n"
                   "O3,C1,2024-02-01 08:00,10,备用１３８００１３８０００,extra field 138 0013 8000\n")
    load(con, members, orders)
    rows = con.execute("SELECT row_number, raw FROM quarantine WHERE source_file LIKE '%orders.csv' "
                       "ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [1, 3]
    text = " ".join(r[1] for r in rows)
    assert json.loads(rows[0][1])["备注"] == "请联系 +86 139 **** 9022"
    assert "138 **** 8000" in text and "１３８****８０００" in text
    for clear in ("0013 9022", "0013 8000", "００１３８"):
        assert clear not in text
