"""Headers of real exports (issue 10, Deliver 10): Youzan, Weimob and English retail headers load; a stated
fallback (a header with 金额 is the amount, one with 时间 or 日期 the order time) when exactly one column could
be it; messages that name a missing column by its Chinese and English names; an amount derived as quantity ×
unit price with --derive-amount; and a unit price read as the amount is a warning."""
from __future__ import annotations

import json

import pytest

from crmkit.commands.load import summary
from crmkit.errors import InputError

from test_load_files import MEMBERS, load, write  # the same small-file helpers
from test_load_real_exports import members, one_sentence, quarantine, run_cli  # noqa: F401 (members: a fixture)


def figures(con):
    """Orders, lines and revenue of the store."""
    return con.execute("SELECT count(DISTINCT order_id), count(*), round(sum(amount), 2) FROM transactions").fetchone()


# -- 1. the common exports are recognised by their headers --------------------------------------------

YOUZAN = ("订单号,订单状态,订单创建时间,买家付款时间,买家手机号,粉丝昵称,会员卡号,商品名称,商品编码,商品单价,商品数量,"
          "商品实际成交金额,订单实付金额\n"
          "E001,交易成功,2024-03-01 10:00:00,2024-03-01 10:01:00,13700000001,小张,C1,T恤,SKU1,30,1,30,50\n"
          "E001,交易成功,2024-03-01 10:00:00,2024-03-01 10:01:00,13700000001,小张,C1,袜子,SKU2,10,2,20,50\n"
          "E002,交易成功,2024-03-02 09:00:00,2024-03-02 09:05:00,13700000002,小李,C2,帽子,SKU3,45,1,45,45\n")


def test_a_youzan_order_export_loads_by_its_header(con, tmp_path, members):
    # a neutral file name: the header alone says it is transactions
    report = load(con, members, write(tmp_path, "有赞导出_0301.csv", YOUZAN))
    f = report.files[-1]
    assert (f.kind, f.rows, f.accepted, f.rejected) == ("transactions", 3, 3, 0)
    assert f.header_rules == [] and f.warnings == []  # every column by a known name
    # the line's own amount, not the order's total repeated on each line: revenue 95, not 145
    assert figures(con) == (2, 3, 95.0)
    assert con.execute("SELECT min(order_time) FROM transactions").fetchone()[0].isoformat() == "2024-03-01T10:01:00"
    assert {"买家手机号", "粉丝昵称", "商品名称", "订单实付金额"} <= set(f.ignored_columns)


def test_a_buyer_phone_in_an_order_export_never_overwrites_a_members_phone(con, tmp_path, members):
    youzan = write(tmp_path, "有赞导出_0301.csv", YOUZAN)
    load(con, members, youzan)
    assert con.execute("SELECT phone FROM members ORDER BY phone").fetchall() == [("13812345678",), ("13900000000",)]
    with pytest.raises(InputError) as err:  # read as members, each order would set the phone of its buyer
        load(con, youzan, kind="members")
    assert "looks like a transactions export, not members" in one_sentence(err)


WEIMOB = ("订单编号,下单时间,支付时间,客户手机号,会员卡号,商品名称,商品编码,商品数量,实付金额(元)\n"
          "W1,2024-03-01 08:00,2024-03-01 08:02,13700000001,C1,咖啡,K1,2,36.00\n"
          "W1,2024-03-01 08:00,2024-03-01 08:02,13700000001,C1,蛋糕,K2,1,28.50\n"
          "W2,2024-03-03 12:00,2024-03-03 12:30,13700000002,C2,咖啡,K1,1,18.00\n")


def test_a_weimob_order_export_loads_by_its_header(con, tmp_path, members):
    f = load(con, members, write(tmp_path, "weimob_export.csv", WEIMOB)).files[-1]
    assert (f.kind, f.accepted, f.rejected) == ("transactions", 3, 0)
    assert figures(con) == (2, 3, 82.5)  # 实付金额(元): a unit in brackets is no part of the name
    # the payment time, not the time the order was placed
    assert con.execute("SELECT max(order_time) FROM transactions").fetchone()[0].isoformat() == "2024-03-03T12:30:00"
    assert con.execute("SELECT sum(quantity) FROM transactions").fetchone()[0] == 4


def test_pharmacy_and_till_headers(con, tmp_path):
    members = write(tmp_path, "members.csv", "医保卡号,姓名,建档日期\nS1,张三,2017-05-01\n")
    till = write(tmp_path, "till.csv", "单据号,医保卡号,销售日期,药品编码,数量,零售价,金额\n"
                                       "D1,S1,2018-01-02,Y1,2,6.5,13\n")
    report = load(con, members, till)
    assert [(f.kind, f.accepted) for f in report.files] == [("members", 1), ("transactions", 1)]
    assert con.execute("SELECT join_date::VARCHAR FROM members").fetchone()[0] == "2017-05-01"
    assert con.execute("SELECT order_id, sku, amount FROM transactions").fetchall() == [("D1", "Y1", 13.0)]


# -- 2. the stated fallback: a header with 金额 / 时间 / 日期, when exactly one column could be it ---------

def test_the_fallback_reads_the_only_candidate_and_says_so(con, tmp_path, members):
    # 收款时间 and 应收金额 are no known names; 注册时间 (a join date) and 优惠金额 (a discount) are
    pos = write(tmp_path, "pos_0301.csv", "小票号,会员卡号,注册时间,收款时间,商品编码,优惠金额,应收金额\n"
                                          "P1,C1,2020-01-01,2024-03-01 10:00,A,1,9\n"
                                          "P2,C2,2020-01-01,2024-03-02 11:00,B,0,21\n")
    report = load(con, members, pos)
    f = report.files[-1]
    assert (f.kind, f.accepted) == ("transactions", 2) and figures(con) == (2, 2, 30.0)
    assert f.header_rules == [
        "order_time read from column '收款时间': no column is known as order_time, and it is the only one whose "
        "name contains 时间 or 日期",
        "amount read from column '应收金额': no column is known as amount, and it is the only one whose name "
        "contains 金额"]
    assert "amount read from column '应收金额'" in summary(report)
    assert report.to_dict()["files"][-1]["header_rules"] == f.header_rules
    assert con.execute("SELECT sum(discount) FROM transactions").fetchone()[0] == 1


def test_an_ambiguous_fallback_is_refused_naming_the_candidates(con, tmp_path, members):
    pos = write(tmp_path, "pos_0301.csv", "小票号,会员卡号,收款时间,应收金额,找零金额\nP1,C1,2024-03-01 10:00,9,1\n")
    with pytest.raises(InputError) as err:
        load(con, members, pos)
    assert one_sentence(err).endswith(
        "pos_0301.csv, column 'amount': no column of this transactions export is known as amount, and 2 could be "
        "it by their name ('应收金额', '找零金额'); name the right one with --map HEADER=amount.")
    assert con.execute("SELECT count(*) FROM members").fetchone()[0] == 0  # nothing loaded
    f = load(con, members, pos, column_map={"应收金额": "amount"}).files[-1]
    assert f.accepted == 1 and [r.split(":")[0] for r in f.header_rules] == ["order_time read from column '收款时间'"]


def test_the_fallback_is_for_order_lines_only(con, tmp_path):
    # a member id and a time, but nothing of an order line: not taken for transactions
    odd = write(tmp_path, "export.csv", "会员卡号,到店时间\nC1,2024-03-01\n")
    with pytest.raises(InputError, match="cannot tell what kind of export this is"):
        load(con, odd)


# -- 3. a missing column is named by its Chinese and English names --------------------------------------

def test_a_missing_amount_lists_its_chinese_and_english_names(con, tmp_path, members):
    bad = write(tmp_path, "orders.csv", "order_id,card_no,order_time\nO1,C1,2024-01-31\n")
    with pytest.raises(InputError) as err:
        load(con, members, bad)
    text = one_sentence(err)
    assert "column 'amount': missing required column for a transactions export: amount (known as amount, 金额, " \
           "实付金额, 实收金额" in text
    assert "pay_amount" in text and "--map HEADER=amount" in text


def test_a_missing_member_id_lists_its_chinese_and_english_names(con, tmp_path):
    bad = write(tmp_path, "orders.csv", "订单号,交易时间,金额\nO1,2024-01-31,10\n")
    with pytest.raises(InputError) as err:
        load(con, bad, kind="transactions")
    text = one_sentence(err)
    assert "column 'a member id': missing required column for a transactions export: a member id (known as " \
           "card_no (会员卡号, 卡号" in text
    assert "user_id (用户id" in text and "客户编号" in text and "--map HEADER=card_no" in text


# -- 4. amount = quantity × unit price, with --derive-amount --------------------------------------------

RETAIL_II = ("Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
             "489434,85048,LED BOX,12,2009-12-01 07:45,6.95,13085,United Kingdom\n"    # 83.40
             "489434,79323P,PINK LIGHTS,12,2009-12-01 07:45,6.75,13085,United Kingdom\n"  # 81.00
             "489435,22350,CAT BOWL,12,2009-12-01 07:46,2.55,13085,United Kingdom\n"  # 30.60
             "489436,48173C,DOOR MAT,10,2009-12-01 09:06,5.95,13078,United Kingdom\n"  # 59.50
             "489437,22143,XMAS DECO,,2009-12-01 09:08,2.10,13078,United Kingdom\n"   # no quantity
             "489438,22144,XMAS TREE,6,2009-12-01 09:08,,13078,United Kingdom\n"      # no price
             "489439,22145,BELL,x,2009-12-01 09:10,1.25,13078,United Kingdom\n"       # not a quantity
             "C489449,22087,PAPER BUNTING,-12,2009-12-01 10:33,2.95,16321,United Kingdom\n")  # a return: -35.40


def test_derive_amount_gives_the_hand_computed_revenue(con, tmp_path):
    retail = write(tmp_path, "online_retail_II.csv", RETAIL_II)
    report = load(con, retail, kind="transactions+members", derive_amount=True)
    f = report.files[0]
    assert (f.rows, f.accepted, f.rejected) == (8, 5, 3)
    assert quarantine(con) == [(5, "missing value: quantity"), (6, "missing value: unit_price"),
                               (7, "unparseable number: quantity")]
    sales = con.execute("SELECT count(DISTINCT order_id), round(sum(amount), 2) FROM transactions "
                        "WHERE txn_type = 'sale'").fetchone()
    assert sales == (3, 254.5)  # 83.40 + 81.00 + 30.60 + 59.50
    assert con.execute("SELECT amount FROM transactions WHERE sku = '22350'").fetchone() == (30.6,)  # not 30.5999…
    assert con.execute("SELECT quantity, round(amount, 2) FROM transactions WHERE txn_type = 'return'"
                       ).fetchall() == [(-12.0, -35.4)]
    rule = "amount derived as quantity × unit price (columns 'Quantity' × 'Price'), as asked with --derive-amount"
    assert f.header_rules == [rule] and rule in summary(report)
    assert report.to_dict()["files"][0]["header_rules"] == [rule]


RETAIL = ("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
          "536365,85123A,6,2010-12-01 08:26,2.55,17850\n"
          "536366,22633,6,2010-12-01 08:28,1.85,17850\n")


def test_without_derive_amount_a_file_of_quantities_and_prices_is_told_about_it(con, tmp_path):
    retail = write(tmp_path, "online_retail.csv", RETAIL)
    for kind in (None, "transactions+members"):
        with pytest.raises(InputError) as err:
            load(con, retail, kind=kind)
        assert one_sentence(err).endswith(
            "online_retail.csv, column 'amount': missing required column for a transactions export: no amount, "
            "but quantity ('Quantity') and unit_price ('UnitPrice'); pass --derive-amount to compute amount as "
            "quantity × unit price, or --map HEADER=amount.")
    f = load(con, retail, kind="transactions+members", derive_amount=True).files[0]
    assert f.accepted == 2 and figures(con) == (2, 2, 26.4)  # 6 × 2.55 + 6 × 1.85


def test_derive_amount_without_a_unit_price_is_refused(con, tmp_path, members):
    bad = write(tmp_path, "orders.csv", "order_id,card_no,order_time,quantity\nO1,C1,2024-01-31,2\n")
    with pytest.raises(InputError) as err:
        load(con, members, bad, derive_amount=True)
    assert "orders.csv, column 'unit_price': cannot derive amount as quantity × unit price (--derive-amount): " \
           "no column is unit_price (known as unit_price, 成交单价, 成交价" in one_sentence(err)


def test_derive_amount_leaves_a_files_own_amount(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,quantity,单价,实付金额\n"
                                           "O1,C1,2024-01-31,2,10,18\n")
    f = load(con, members, orders, derive_amount=True).files[-1]
    assert figures(con) == (1, 1, 18.0)  # the amount paid, after a discount: not 2 × 10
    assert f.header_rules == ["--derive-amount not applied: amount is read from column '实付金额'"]


def test_a_unit_price_is_not_checked_unless_it_derives_the_amount(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,unit_price\n"
                                           "O1,C1,2024-01-31,18,n/a\n")
    f = load(con, members, orders).files[-1]
    assert (f.accepted, f.rejected) == (1, 0)


def test_derive_amount_on_the_command_line(tmp_path):
    retail = write(tmp_path, "online_retail.csv", RETAIL)
    out = run_cli("load", retail, "--db", tmp_path / "crm.duckdb", "--kind", "transactions+members",
                  "--derive-amount", "--json")
    assert out.returncode == 0, out.stderr
    f = json.loads(out.stdout)["files"][0]
    assert f["accepted"] == 2 and f["header_rules"][0].startswith("amount derived as quantity × unit price")


# -- a unit price (or an order's total) read as the amount is a warning --------------------------------

def test_a_unit_price_mapped_to_amount_is_a_warning(con, tmp_path):
    retail = write(tmp_path, "online_retail.csv", RETAIL)
    report = load(con, retail, kind="transactions+members", column_map={"UnitPrice": "amount"})
    f = report.files[0]
    assert f.accepted == 2 and len(f.warnings) == 1
    assert f.warnings[0].startswith("amount is read from column 'UnitPrice', which looks like a unit price")
    assert "--derive-amount" in f.warnings[0]
    assert f"online_retail.csv: warning: {f.warnings[0]}." in summary(report)
    assert report.to_dict()["files"][0]["warnings"] == f.warnings


def test_a_unit_price_header_known_as_an_amount_is_a_warning(con, tmp_path, members):
    # 单价金额 has 金额 in its name: the fallback reads it, and says it looks like a unit price
    orders = write(tmp_path, "pos_0301.csv", "小票号,会员卡号,收款时间,商品编码,单价金额\nP1,C1,2024-03-01,A,9\n")
    f = load(con, members, orders).files[-1]
    assert f.header_rules[-1].startswith("amount read from column '单价金额'")
    assert f.warnings and "looks like a unit price" in f.warnings[0]


def test_an_orders_total_on_order_lines_is_a_warning(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "订单号,会员卡号,付款时间,商品编码,订单实付金额\n"
                                           "E1,C1,2024-03-01,A,50\nE1,C1,2024-03-01,B,50\n")
    f = load(con, members, orders).files[-1]
    assert f.warnings == ["amount is read from column '订单实付金额', an order's total, in a file of order lines: "
                          "each line of an order carries the whole order's amount; name the line's amount with "
                          "--map HEADER=amount"]
