"""Real exports load right or not at all (issue 10): encodings, dates, duplicates, huge rows, files whose rows
are all rejected, and orders without an order number. Each test states the outcome: no lost row, no garbled
text, or one sentence naming the file (and the column)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pandas as pd
import pytest

from crmkit.commands.load import summary
from crmkit.errors import InputError
from crmkit.io import readers

from test_load_files import MEMBERS, NOW, load, write  # the same small-file helpers


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "crmkit", *map(str, args)], capture_output=True, text=True)


def one_sentence(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text.strip() and "internal error" not in text and "Traceback" not in text
    return text


@pytest.fixture
def members(tmp_path):
    return write(tmp_path, "members.csv", MEMBERS)


def quarantine(con):
    return con.execute("SELECT row_number, reason FROM quarantine ORDER BY source_file, row_number").fetchall()


# -- 1. encodings: the whole file, strict validity, then plausibility ---------------------------------

def test_gbk_that_is_also_valid_utf8_is_read_as_gbk(con, tmp_path, members):
    text = ("order_id,card_no,order_time,amount,category\nO1,C1,2024-01-31,10,女装\nO2,C1,2024-01-31,20,母婴\n"
            "O3,C2,2024-02-01,5,食品\n")
    data = text.encode("gbk")
    assert data.decode("utf-8").count("Ůװ") == 1  # the trap: these GBK bytes are valid UTF-8 too
    (tmp_path / "orders.csv").write_bytes(data)
    report = load(con, members, tmp_path / "orders.csv")
    f = report.files[-1]
    assert (f.encoding, f.rows, f.accepted) == ("gb18030", 3, 3)
    assert "decodes both as UTF-8 and as GB18030" in f.encoding_rule and "GB18030 gives" in f.encoding_rule
    assert sorted(c for c, in con.execute("SELECT category FROM transactions").fetchall()) == sorted(["女装", "母婴", "食品"])
    assert "encoding gb18030, as the whole file decodes both" in summary(report)
    assert report.to_dict()["files"][-1]["encoding_rule"] == f.encoding_rule


@pytest.mark.parametrize("text, rule", [
    ("card_no,name\nC1,Zoë Café\nC2,Naïve\n", "valid UTF-8 of common characters only"),
    ("card_no,name\nC1,张三\nC2,服装食品母婴\n", "valid UTF-8 of common characters only"),
    ("card_no,name\nC1,Dvořák 张三\nC2,服装\n", "UTF-8 gives the more plausible text"),  # one rare letter
    ("card_no,name\nC1,Dvořák\n", "UTF-8 wins a tie"),  # ř against the rare hanzi 艡 of the GB18030 reading
    ("card_no,name\nC1,Zoe\n", "all ASCII"),
])
def test_utf8_stays_utf8(con, tmp_path, text, rule):
    report = load(con, write(tmp_path, "members.csv", text))
    assert report.files[0].encoding == "utf-8" and rule in report.files[0].encoding_rule
    names = {n for n, in con.execute("SELECT name FROM members").fetchall()}
    assert names == {line.split(",")[1] for line in text.splitlines()[1:]}


def test_a_gbk_name_that_reads_as_a_latin1_sign_is_gbk(con, tmp_path):
    data = "card_no,name\nC1,梅\n".encode("gbk")
    assert data.decode("utf-8").endswith("÷\n")
    (tmp_path / "members.csv").write_bytes(data)
    assert load(con, tmp_path / "members.csv").files[0].encoding == "gb18030"
    assert con.execute("SELECT name FROM members").fetchall() == [("梅",)]


def test_gbk_after_a_utf8_valid_head_is_decided_over_the_whole_file(con, tmp_path):
    # the first 256 KiB are ASCII, then categories whose GBK bytes are valid UTF-8 as well
    rows = "".join(f"C{i},Member {i}\n" for i in range(30_000)) + "C30000,女装\n"
    report = load(con, write(tmp_path, "members.csv", "card_no,name\n" + rows, "gbk"))
    assert report.files[0].encoding == "gb18030"
    assert con.execute("SELECT count(*) FROM members WHERE name = '女装'").fetchone()[0] == 1


# -- 2. one duplicate rule, within a file and across files -------------------------------------------

def test_an_exact_repeat_is_a_duplicate_within_a_file_and_across_files(con, tmp_path, members):
    head = "order_id,card_no,order_time,sku,quantity,amount\n"
    jan = write(tmp_path, "jan.csv", head + "O1,C1,2024-01-31 08:00,A,1,100\n"
                                            "O1,C1,2024-01-31 08:00,A,1,100\n"     # exact repeat: not line 2
                                            "O1,C1,2024-01-31 08:00,B,1,50\n")
    report = load(con, members, jan)
    f = report.files[-1]
    assert (f.rows, f.accepted, f.rejected) == (3, 2, 1)
    assert quarantine(con) == [(2, "duplicate order line")]
    assert "exact repeat of an order line" in f.duplicate_rule and "duplicates:" in summary(report)
    assert con.execute("SELECT sum(amount) FROM transactions").fetchone()[0] == 150  # not 250
    # the same rule across files: the repeat is a duplicate, a new line of O1 is line 3
    feb = write(tmp_path, "feb.csv", head + "O1,C1,2024-01-31 08:00,A,1,100\nO1,C1,2024-01-31 08:00,C,2,30\n")
    f = load(con, feb).files[0]
    assert (f.accepted, f.rejected) == (1, 1)
    assert con.execute("SELECT line_no, sku FROM transactions ORDER BY 1").fetchall() == [(1, "A"), (2, "B"),
                                                                                          (3, "C")]


def test_equal_lines_are_kept_when_line_numbers_tell_them_apart(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,line_no,card_no,order_time,sku,quantity,amount\n"
                   "O1,1,C1,2024-01-31,A,1,100\nO1,2,C1,2024-01-31,A,1,100\n")
    f = load(con, members, orders).files[-1]
    assert (f.accepted, f.rejected) == (2, 0) and "line numbers" in f.duplicate_rule


# -- 3. dates: one rule per column, stated; Chinese forms; plausible years ---------------------------

def test_two_digit_year_us_dates_are_decided_for_the_whole_column(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\n"
                   "O1,C1,12/1/10 8:26,1\nO2,C1,12/13/10 9:00,1\nO3,C2,1/5/11 17:30,1\n")
    report = load(con, members, orders)
    assert report.files[-1].accepted == 3
    times = dict(con.execute("SELECT order_id, order_time FROM transactions").fetchall())
    assert times == {"O1": dt.datetime(2010, 12, 1, 8, 26), "O2": dt.datetime(2010, 12, 13, 9),
                     "O3": dt.datetime(2011, 1, 5, 17, 30)}
    rule = report.files[-1].date_rules["order_time"]
    assert rule.startswith("month/day/two-digit year (12/1/10 8:26 → 2010-12-01)") and "all 3" in rule
    assert "order_time read as month/day/two-digit year" in summary(report)


def test_an_ambiguous_day_order_is_refused_in_one_sentence_unless_declared(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,pay_time,amount\nO1,C1,1/2/10,1\nO2,C1,3/4/10,1\n")
    with pytest.raises(InputError) as err:
        load(con, members, orders)
    text = one_sentence(err)
    assert "orders.csv, column 'pay_time': dates such as '1/2/10' read both as month/day/two-digit year and as " \
           "day/month/two-digit year" in text and "--date-format" in text
    assert con.execute("SELECT count(*) FROM members").fetchone()[0] == 0  # nothing loaded
    report = load(con, members, orders, date_format="dmy")
    assert "as declared with --date-format" in report.files[-1].date_rules["order_time"]
    assert con.execute("SELECT min(order_time) FROM transactions").fetchone()[0] == dt.datetime(2010, 2, 1)
    with pytest.raises(InputError, match="--date-format 'when' is not a date format"):
        load(con, orders, date_format="when")
    out = run_cli("load", members, orders, "--db", tmp_path / "cli.duckdb", "--date-format", "mdy", "--json")
    assert out.returncode == 0, out.stderr
    assert "month/day/two-digit year" in json.loads(out.stdout)["files"][1]["date_rules"]["order_time"]


def test_chinese_date_forms_and_half_days(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\n"
                   "O1,C1,2018-01-01 星期一,1\nO2,C1,2018-01-02 周二,1\nO3,C1,2018年1月3日,1\n"
                   "O4,C1,2018/1/4 下午 3:05,1\nO5,C1,2018/1/5 上午 9:10,1\nO6,C1,2018-01-06 8:00 PM,1\n"
                   "O7,C1,2018/1/7 12:30 AM,1\nO8,C1,2018年1月8日 15时05分,1\nO9,C1,2018-01-09（星期二） 10:00,1\n"
                   "O10,C1,2018/1/10 中午 12:15,1\n")
    f = load(con, members, orders).files[-1]
    assert (f.rows, f.accepted) == (10, 10)
    times = dict(con.execute("SELECT order_id, order_time FROM transactions").fetchall())
    d = dt.datetime
    assert times == {"O1": d(2018, 1, 1), "O2": d(2018, 1, 2), "O3": d(2018, 1, 3), "O4": d(2018, 1, 4, 15, 5),
                     "O5": d(2018, 1, 5, 9, 10), "O6": d(2018, 1, 6, 20), "O7": d(2018, 1, 7, 0, 30),
                     "O8": d(2018, 1, 8, 15, 5), "O9": d(2018, 1, 9, 10), "O10": d(2018, 1, 10, 12, 15)}


def test_dates_before_1990_and_after_the_load_are_quarantined_with_their_reason(con, tmp_path):
    members = write(tmp_path, "members.csv", "card_no,birth_date,join_date\nC1,1950-03-04,2020-01-01\n"
                                             "C2,1985-01-01,1989-12-31\n")
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\n"
                   "O1,C1,0012-01-10,1\nO2,C1,1989-12-31 23:59,1\nO3,C1,2026-07-02,1\nO4,C1,1990-01-01,1\n")
    report = load(con, members, orders)
    assert [(f.rows, f.accepted, f.rejected) for f in report.files] == [(2, 1, 1), (4, 1, 3)]
    assert quarantine(con) == [(2, "date before 1990: join_date"), (1, "unparseable date: order_time"),
                               (2, "date before 1990: order_time"), (3, "future date: order_time")]
    assert con.execute("SELECT birth_date FROM members").fetchall() == [(dt.date(1950, 3, 4),)]  # births may be old


# -- 4. no row is ever lost ----------------------------------------------------------------------------

def test_a_huge_line_goes_to_quarantine_with_its_reason(con, tmp_path, members, monkeypatch):
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1000)
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,note\n"
                   "O1,C1,2024-01-31,1,x\nO2,C1,2024-01-31,2," + "y" * 5000 + "\nO3,C1,2024-01-31,3,z\n")
    f = load(con, members, orders).files[-1]
    assert (f.rows, f.accepted, f.rejected) == (3, 2, 1)
    assert quarantine(con) == [(2, "malformed row: line longer than 1,000 bytes")]
    raw = json.loads(con.execute("SELECT raw FROM quarantine").fetchone()[0])["line"]
    assert raw.startswith("O2,C1,2024-01-31,2,yyy") and len(raw) <= 201


def forty_mb_row(tmp_path):
    p = tmp_path / "orders.csv"
    with open(p, "wb") as fh:
        fh.write(b"order_id,card_no,order_time,amount\nO1,C1,2024-01-31,1\nO2,C1,2024-01-31,")
        fh.write(b"9" * 40_000_000)
        fh.write(b"\nO3,C1,2024-01-31,3\n")
    return p


def test_a_40_mb_row_is_not_lost(con, tmp_path, members):
    # DuckDB drops a line longer than its buffer without a word: 3 data rows used to report rows 2, rejected 0
    f = load(con, members, forty_mb_row(tmp_path)).files[-1]
    assert (f.rows, f.accepted, f.rejected) == (3, 2, 1)
    assert quarantine(con) == [(2, f"malformed row: line longer than {readers.MAX_LINE_BYTES:,} bytes")]


def test_rows_the_reader_drops_are_counted_against_the_lines(con, tmp_path, members, monkeypatch):
    # the safety net behind the line limit: were the 40 MB line handed to DuckDB, it would vanish
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1 << 30)
    load(con, members)
    with pytest.raises(InputError) as err:
        load(con, forty_mb_row(tmp_path))
    assert "orders.csv: only 2 of its 3 lines could be read as rows, so nothing was loaded" in one_sentence(err)
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0


def test_a_huge_header_is_one_sentence(con, tmp_path):
    p = write(tmp_path, "orders.csv", "order_id,card_no," + "h" * 2_000_000 + ",amount\nO1,C1,x,1\n")
    with pytest.raises(InputError) as err:
        load(con, p)
    assert "orders.csv: its first line is longer than 65,536 characters" in one_sentence(err)
    out = run_cli("load", p, "--db", tmp_path / "crm.duckdb")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "its first line is longer" in out.stderr and "internal error" not in out.stderr


# -- 5. a file whose rows are all rejected is not loaded --------------------------------------------------

def test_a_file_with_every_row_rejected_fails_and_its_correction_loads(tmp_path, members):
    db = tmp_path / "crm.duckdb"
    assert run_cli("load", members, "--db", db).returncode == 0
    bad = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\nO1,C1,昨天,1\nO2,C2,前天,2\n")
    out = run_cli("load", bad, "--db", db)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # progress lines, then one sentence
    assert "orders.csv: none of its 2 rows can be loaded, so nothing was loaded: 2 have the reason " \
           "'unparseable date: order_time', the first on row 1" in out.stderr.strip().splitlines()[-1]
    again = run_cli("load", bad, "--db", db)  # not "already loaded"
    assert again.returncode == 2 and "none of its 2 rows" in again.stderr
    write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\nO1,C1,2024-01-01,1\nO2,C2,2024-01-02,2\n")
    fixed = run_cli("load", bad, "--db", db, "--json")
    assert fixed.returncode == 0, fixed.stderr
    f = json.loads(fixed.stdout)["files"][0]
    assert (f["status"], f["accepted"], f["rejected"]) == ("loaded", 2, 0)


def test_a_file_of_lines_already_in_the_store_is_loaded_adding_nothing(con, tmp_path, members):
    head = "order_id,line_no,card_no,order_time,amount\n"
    load(con, members, write(tmp_path, "jan.csv", head + "O1,1,C1,2024-01-31,1\n"))
    f = load(con, write(tmp_path, "jan_again.csv", head + "O1,1,C1,2024-01-31,1\n\n")).files[0]
    assert (f.status, f.accepted, f.rejected) == ("loaded", 0, 1)


# -- 6. orders without an order number --------------------------------------------------------------------

def test_orders_without_numbers_are_one_per_member_and_time(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "card_no,order_time,sku,amount\n"
                   "C1,2024-01-31 08:00,A,10\nC1,2024-01-31 08:00,B,20\nC1,2024-01-31 19:00,A,10\n"
                   "C2,2024-01-31 08:00,A,5\n")
    report = load(con, members, orders)
    assert report.files[-1].order_rule == "no order number: one order per member and order time"
    assert con.execute("SELECT count(DISTINCT order_id), count(*) FILTER (WHERE line_no = 1) FROM transactions"
                       ).fetchone() == (3, 3)
    assert "orders: no order number: one order per member and order time" in summary(report)


def test_orders_without_numbers_or_times_are_one_per_member_and_day(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", "card_no,order_time,sku,amount\n"
                   "C1,2024-01-31,A,10\nC1,2024-01-31,B,20\nC1,2024-02-01,A,10\nC2,2024-01-31,A,5\n")
    report = load(con, members, orders)
    assert report.files[-1].order_rule == "no order number and no time of day: one order per member and day"
    assert con.execute("SELECT count(DISTINCT order_id), round(sum(amount) / count(DISTINCT order_id), 2) "
                       "FROM transactions").fetchone() == (3, 15.0)  # AOV 45 / 3, not 45 / 4


# -- acceptance: two real-world exports against hand-computed figures ----------------------------------

RETAIL = ("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID,Amount\n"
          "536365,85123A,6,12/1/10 8:26,2.55,17850,15.30\n"
          "536365,71053,6,12/1/10 8:26,3.39,17850,20.34\n"
          "536365,71053,6,12/1/10 8:26,3.39,17850,20.34\n"   # exported twice: a duplicate, not a second line
          "536366,22633,6,12/1/10 8:28,1.85,17850,11.10\n"
          "536367,84879,32,12/13/10 9:02,1.69,13047,54.08\n"
          "536368,22960,6,1/4/11 10:00,4.25,13047,25.50\n")
PHARMACY = ("社保卡号,交易日期,商品编码,销售数量,消费金额\n"
            "S001,2018-01-01 星期一,A1,1,12.5\n"
            "S001,2018-01-01 星期一,A2,2,30\n"
            "S001,2018-01-03 星期三,A1,1,12.5\n"
            "S002,2018-01-01 星期一,A3,1,8\n"
            "S002,2018-01-01 星期一,A3,1,8\n")   # an exact repeat


def test_acceptance_retail_and_pharmacy_exports(con, tmp_path):
    retail = write(tmp_path, "online_retail.csv", RETAIL)
    pharmacy = write(tmp_path, "pharmacy_sales.csv", PHARMACY, "gbk")
    report = load(con, retail, pharmacy, kind="transactions+members")
    files = {f.path.rsplit("/", 1)[-1]: f for f in report.files}
    r, p = files["online_retail.csv"], files["pharmacy_sales.csv"]
    assert (r.rows, r.accepted, r.rejected) == (6, 5, 1) and (p.rows, p.accepted, p.rejected) == (5, 4, 1)
    assert r.date_rules["order_time"].startswith("month/day/two-digit year")
    assert p.encoding == "gb18030" and p.order_rule.endswith("one order per member and day")
    assert quarantine(con) == [(3, "duplicate order line"), (5, "duplicate order line")]

    def figures(name):
        return con.execute("""
            SELECT min(order_time), max(order_time), count(DISTINCT order_id),
                   count(DISTINCT (member_id, CAST(order_time AS DATE))), round(sum(amount), 2), count(*)
            FROM transactions WHERE source_file LIKE '%' || ?""", [name]).fetchone()

    # hand-computed: 4 invoices; 17850 buys on 2010-12-01 (2 invoices, one purchase day), 13047 on two days
    assert figures("online_retail.csv") == (dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 1, 4, 10),
                                            4, 3, 126.32, 5)
    # S001: 2018-01-01 (2 lines, one order) and 2018-01-03; S002: 2018-01-01: 3 orders, ¥63, AOV ¥21
    assert figures("pharmacy_sales.csv") == (dt.datetime(2018, 1, 1), dt.datetime(2018, 1, 3), 3, 3, 63.0, 4)
    assert report.members == 4


CREDIT_NOTES = ("InvoiceNo,StockCode,Quantity,InvoiceDate,CustomerID,Amount\n"
                "1001,X,2,2010-12-01 10:00,A1,20\n1001,Y,1,2010-12-01 10:00,A1,5\n"
                "C1001,X,-2,2010-12-03 09:00,A1,-20\nC1001,Y,-1,2010-12-03 09:00,A1,-5\n"  # 1001 cancelled in full
                "1002,Z,1,2010-12-10 12:00,A1,7.5\n"
                "2001,X,3,2010-12-02 11:00,B1,30\n2001,Y,2,2010-12-02 11:00,B1,10\n"
                "C2001,X,-3,2010-12-05 11:00,B1,-30\n")                                    # 2001 cancelled in part


def test_acceptance_three_exports_dates_orders_purchases_and_revenue(tmp_path):
    """The issue's acceptance: US two-digit-year dates, Chinese weekday dates without order numbers, and
    credit notes mixed with their orders, each loaded into a store of its own and checked against
    hand-computed dates, orders, purchases (the engine's one definition) and revenue."""
    import crmkit
    from crmkit.engine import activity

    def figures(name, text, encoding="utf-8", as_of="2011-01-31"):
        with crmkit.connect(":memory:") as con:
            load(con, write(tmp_path, name, text, encoding), kind="transactions+members")
            return activity.purchases(as_of).df(con, """
                SELECT (SELECT min(first_time) FROM orders) AS first, (SELECT max(first_time) FROM orders) AS last,
                       (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM purchases) AS purchases,
                       (SELECT count(DISTINCT (member_id, day)) FROM purchases) AS purchase_days,
                       (SELECT round(sum(net), 2) FROM orders) AS revenue""").to_dict("records")[0]

    T = pd.Timestamp
    # 4 invoices, all purchases; 17850's two on 2010-12-01 are one purchase day; ¥126.32
    assert figures("online_retail.csv", RETAIL) == {
        "first": T("2010-12-01 08:26"), "last": T("2011-01-04 10:00"), "orders": 4, "purchases": 4,
        "purchase_days": 3, "revenue": 126.32}
    # no order numbers: one order per member and day: 3 orders on 3 member-days, ¥63
    assert figures("pharmacy_sales.csv", PHARMACY, "gbk", "2018-12-31") == {
        "first": T("2018-01-01"), "last": T("2018-01-03"), "orders": 3, "purchases": 3, "purchase_days": 3,
        "revenue": 63.0}
    # 1001 cancelled in full (no purchase, net 0); 1002 of 7.50; 2001 kept at 10 of 40: 2 purchases, ¥17.50
    assert figures("uk_credit_notes.csv", CREDIT_NOTES) == {
        "first": T("2010-12-01 10:00"), "last": T("2010-12-10 12:00"), "orders": 3, "purchases": 2,
        "purchase_days": 2, "revenue": 17.5}
