"""Loading exports: formats, encodings, headers, and file-level problems (one clear sentence, nothing loaded)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import duckdb
import openpyxl
import pytest

import crmkit
from crmkit.errors import InputError
from crmkit.io import load_files

NOW = dt.datetime(2026, 7, 1)
MEMBERS = "card_no,phone,name\nC1,13812345678,张三\nC2,13900000000,李四\n"
ORDERS = "order_id,card_no,order_time,amount\nO1,C1,2024-01-31 08:00,100\nO2,C2,2024-02-01 09:30,50.5\n"


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def load(con, *paths, **kw):
    kw.setdefault("now", NOW)
    return load_files(con, list(paths), progress=False, **kw)


def table_counts(con):
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in crmkit.schema.TABLES}


@pytest.fixture
def members_file(tmp_path):
    return write(tmp_path, "members.csv", MEMBERS)


# -- file-level problems: one sentence naming the file (and column), and nothing loaded ----------

@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", "", "is empty"),
    ("blank.csv", "\n\n  \n", "is empty"),
    ("header_only.csv", "order_id,card_no,order_time,amount\n", "has a header but no data rows"),
    ("hashes.csv", "order_id#card_no#order_time#amount\nO1#C1#2024-01-31#100\n", "missing required column"),
    ("no_amount.csv", "order_id,card_no,order_time\nO1,C1,2024-01-31\n", "column 'amount'"),
])
def test_bad_files_raise_one_sentence_naming_the_file(con, tmp_path, members_file, name, content, message):
    load(con, members_file)
    before = table_counts(con)
    bad = write(tmp_path, name, content)
    with pytest.raises(InputError, match=message) as err:
        load(con, bad, kind="transactions")
    assert name in str(err.value) and "\n" not in str(err.value)
    assert table_counts(con) == before


def test_an_unclosed_quote_is_refused_not_swallowed(con, tmp_path, members_file):
    # the reader would read rows 3.. as one value: ten rows in, two out, and no word of it
    rows = "".join(f"O{i},2024-03-01,C1,10\n" if i != 3 else 'O3,2024-03-01,"C1,10\n' for i in range(1, 11))
    bad = write(tmp_path, "orders.csv", "order_id,order_time,card_no,amount\n" + rows)
    load(con, members_file)
    before = table_counts(con)
    with pytest.raises(InputError, match=r"orders.csv: a quote \(\"\) opened on row 3 is never closed"):
        load(con, bad)
    assert table_counts(con) == before
    # a quote inside a field is a plain character, odd count or not
    inch = write(tmp_path, "inch.csv", 'order_id,order_time,card_no,amount,note\nO1,2024-03-01,C1,10,55" TV\n'
                                       'O2,2024-03-01,C1,10,"a ""quoted"" note"\n')
    assert [(f.accepted, f.rejected) for f in load(con, inch).files] == [(2, 0)]


def test_an_order_export_without_amounts_is_not_taken_for_products(con, tmp_path, members_file):
    bad = write(tmp_path, "export_0301.csv", "order_id,order_time,card_no,sku,category\nO1,2024-03-01,C1,FZ1,服装\n")
    with pytest.raises(InputError, match="column 'amount': missing required column for a transactions export"):
        load(con, members_file, bad)
    assert con.execute("SELECT count(*) FROM products").fetchone()[0] == 0


@pytest.mark.parametrize("name, text", [
    ("trailing_comma.csv", "order_id,order_time,card_no,amount,\nO1,2024-03-01,C1,10,\nO2,2024-03-02,C1,20,\n"),
    ("repeated_header.csv", "order_id,order_time,card_no,amount,amount\nO1,2024-03-01,C1,10,9\n"
                            "O2,2024-03-02,C1,20,19\n"),
    ("mixed_newlines.csv", "order_id,order_time,card_no,amount\nO1,2024-03-01,C1,10\r\nO2,2024-03-02,C1,20\r\n"),
])
def test_common_export_quirks_load(con, tmp_path, members_file, name, text):
    report = load(con, members_file, write(tmp_path, name, text))
    f = report.files[-1]
    assert (f.kind, f.rows, f.accepted, f.rejected) == ("transactions", 2, 2, 0)
    assert con.execute("SELECT sum(amount) FROM transactions").fetchone()[0] == 30.0  # the first amount column


def test_numbers_a_spreadsheet_saved_as_floats_are_the_same_numbers(con, tmp_path):
    members = write(tmp_path, "members.csv", "card_no,phone\n880010179293,13812345678.0\n"
                                             "880010179294,1.3812345679E+10\n880010179295,1.38E+10\n")
    orders = write(tmp_path, "orders.csv", "order_id,order_time,card_no,amount\nO1,2024-03-01,880010179293.0,10\n")
    report = load(con, members, orders)
    assert [(f.accepted, f.rejected) for f in report.files] == [(2, 1), (1, 0)]
    assert sorted(p for p, in con.execute("SELECT phone FROM members").fetchall()) == ["13812345678", "13812345679"]
    assert con.execute("SELECT reason FROM quarantine").fetchall() == [("invalid phone",)]  # 1.38E+10 lost digits


def test_wrong_delimiter_names_the_missing_column(con, tmp_path, members_file):
    bad = write(tmp_path, "orders.csv", "order_id#card_no#order_time#amount\nO1#C1#2024-01-31#100\n")
    with pytest.raises(InputError) as err:
        load(con, members_file, bad)
    assert "orders.csv" in str(err.value) and "order_time" in str(err.value)


def test_semicolon_and_tab_delimiters_are_recognised(con, tmp_path, members_file):
    semi = write(tmp_path, "orders_semi.csv", ORDERS.replace(",", ";"))
    tab = write(tmp_path, "orders_tab.tsv", ORDERS.replace(",", "\t").replace("O1", "O3").replace("O2", "O4"))
    report = load(con, members_file, semi, tab)
    assert [(f.rows, f.accepted) for f in report.files if f.kind == "transactions"] == [(2, 2), (2, 2)]


def test_binary_file_named_csv(con, tmp_path):
    bad = tmp_path / "orders.csv"
    bad.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError, match="orders.csv: is not a text file"):
        load(con, bad)


def test_excel_workbook_named_csv(con, tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["card_no", "phone"])
    book.save(tmp_path / "members.csv")
    with pytest.raises(InputError, match="looks like a zip or Excel file"):
        load(con, tmp_path / "members.csv")


def test_missing_file(con, tmp_path):
    with pytest.raises(InputError, match="nope.csv: no such file"):
        load(con, tmp_path / "nope.csv")


def test_wrong_kind_is_refused(con, tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount,store_id\nO1,C1,2024-01-31,1,S1\n")
    with pytest.raises(InputError, match="looks like a transactions export, not stores"):
        load(con, orders, kind="stores")
    with pytest.raises(InputError, match="column 'order_time'"):
        load(con, members_file, kind="transactions")
    # an order export with a receiver phone is no members file, though it has a phone column
    orders = write(tmp_path, "orders2.csv", "order_id,order_time,user_id,mobile,amount\nO1,2024-03-01,U1,13812345678,10\n")
    with pytest.raises(InputError, match="looks like a transactions export, not members"):
        load(con, orders, kind="members")


def test_unrecognisable_file_asks_for_kind(con, tmp_path):
    odd = write(tmp_path, "export.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="cannot tell what kind of export this is.*--kind"):
        load(con, odd)


def test_bad_column_maps(con, tmp_path, members_file):
    with pytest.raises(InputError, match="--map target 'when' is not a field"):
        load(con, members_file, column_map={"x": "when"})
    with pytest.raises(InputError, match="--map source column 'datum' is in none of the files"):
        load(con, members_file, column_map={"datum": "order_time"})


def test_interrupted_load_leaves_the_store_as_it_was(con, tmp_path, members_file, monkeypatch):
    load(con, members_file)
    before = table_counts(con)
    orders = write(tmp_path, "orders.csv", ORDERS)
    more = write(tmp_path, "more_members.csv", "card_no,phone\nC9,13700000000\n")
    from crmkit.io import load as loader

    real = loader._Loader._transactions

    def interrupted(self, item):
        real(self, item)
        raise KeyboardInterrupt

    monkeypatch.setattr(loader._Loader, "_transactions", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(con, more, orders)
    assert table_counts(con) == before
    monkeypatch.undo()
    report = load(con, more, orders)
    assert report.members == 3 and table_counts(con)["transactions"] == 2


def test_a_failed_file_fails_the_whole_load(con, tmp_path, members_file):
    good = write(tmp_path, "orders.csv", ORDERS)
    bad = write(tmp_path, "orders_bad.csv", "order_id,card_no,order_time\nO9,C1,2024-01-31\n")
    with pytest.raises(InputError, match="orders_bad.csv"):
        load(con, members_file, good, bad, kind=None)
    assert table_counts(con)["members"] == 0 and table_counts(con)["transactions"] == 0


# -- encodings ---------------------------------------------------------------------------------

def test_undeclared_gbk_with_chinese_headers(con, tmp_path):
    pos = write(tmp_path, "pos_members.csv", "会员卡号,手机号,姓名,性别\n8800001,138 1234 5678,张三,男\n", "gbk")
    report = load(con, pos)
    assert report.files[0].encoding == "gb18030"
    assert con.execute("SELECT phone, name, gender FROM members").fetchall() == [("13812345678", "张三", "M")]


def test_utf8_bom_does_not_pollute_the_first_header(con, tmp_path):
    p = tmp_path / "members.csv"
    p.write_bytes(b"\xef\xbb\xbf" + MEMBERS.encode())
    report = load(con, p)
    assert report.files[0].encoding == "utf-8-sig" and report.members == 2


def test_declared_encoding_and_undecodable_bytes(con, tmp_path):
    p = write(tmp_path, "members.csv", "card_no,name\nC1,张三\n", "gbk")
    assert load(con, p, encoding="gbk").members == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes("card_no,name\nC1,Zoë\n".encode("utf-8") + b"C2,\xff\xfe\xfa\n")
    with pytest.raises(InputError, match=r"latin.csv, row 2: is not valid utf-8"):
        load(con, latin, encoding="utf-8")


def test_gbk_whose_chinese_starts_far_down_is_still_detected(con, tmp_path):
    rows = "".join(f"C{i},Member {i}\n" for i in range(30_000)) + "C30000,张三\n"  # past the first 256 KiB
    p = write(tmp_path, "members.csv", "card_no,name\n" + rows, "gbk")
    report = load(con, p)
    assert report.files[0].accepted == 30_001
    assert con.execute("SELECT name FROM members WHERE member_id = (SELECT member_id FROM member_identities "
                       "WHERE source_id = 'C30000')").fetchone()[0] == "张三"


# -- values ------------------------------------------------------------------------------------

def test_three_date_formats_and_more(con, tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\n"
                   "O1,C1,20240131,1\nO2,C1,2024/1/31,1\nO3,C1,2024-01-31 08:00,1\n"
                   "O4,C1,2024年1月31日,1\nO5,C1,２０２４－０１－３１,1\nO6,C1, 2024-01-31 08:00:05 ,1\n")
    load(con, members_file, orders)
    times = dict(con.execute("SELECT order_id, order_time FROM transactions").fetchall())
    day = dt.datetime(2024, 1, 31)
    assert times == {"O1": day, "O2": day, "O3": day.replace(hour=8), "O4": day, "O5": day,
                     "O6": day.replace(hour=8, second=5)}


def test_amounts_with_yuan_signs_separators_and_full_width_digits(con, tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", 'order_id,card_no,order_time,amount,discount\n'
                   'O1,C1,2024-01-31,"¥1,299.00",0\nO2,C1,2024-01-31,"1,299.00",￥10\n'
                   'O3,C1,2024-01-31,１２９９．００,"RMB 1,000"\nO4,C1,2024-01-31,1299元,\n')
    load(con, members_file, orders)
    rows = con.execute("SELECT order_id, amount, discount FROM transactions ORDER BY order_id").fetchall()
    assert rows == [("O1", 1299.0, 0.0), ("O2", 1299.0, 10.0), ("O3", 1299.0, 1000.0), ("O4", 1299.0, None)]


def test_excel_parquet_and_whitespace_text(con, tmp_path, members_file):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["openid", "手机号", "注册时间"])
    sheet.append(["oAbc123456789", 13912345678, dt.datetime(2024, 5, 6, 7, 8)])
    book.save(tmp_path / "mini_members.xlsx")
    duckdb.execute(f"COPY (SELECT 'O7' AS order_id, 'C2' AS card_no, TIMESTAMP '2024-03-04 05:06:07' AS pay_time, "
                   f"12.5 AS amount) TO '{tmp_path / 'mall_orders.parquet'}' (FORMAT parquet)")
    write(tmp_path, "pos_orders.txt", "order_id  card_no   order_time   amount\n O8   C1  20240101   3.5\n")
    load(con, members_file, tmp_path / "mini_members.xlsx", tmp_path / "mall_orders.parquet",
         tmp_path / "pos_orders.txt")
    assert con.execute("SELECT phone, join_date FROM members WHERE phone = '13912345678'").fetchall() == [
        ("13912345678", dt.date(2024, 5, 6))]
    assert con.execute("SELECT order_id, order_time, amount FROM transactions ORDER BY 1").fetchall() == [
        ("O7", dt.datetime(2024, 3, 4, 5, 6, 7), 12.5), ("O8", dt.datetime(2024, 1, 1), 3.5)]


def test_headerless_file_with_positional_map(con, tmp_path):
    p = write(tmp_path, "sales.txt", "00001 19970101  1   11.77\r\n00002 19970112  5   77.00\r\n")
    load(con, p, kind="transactions+members", column_map={"1": "customer_id", "2": "order_time", "3": "quantity",
                                                           "4": "amount"})
    assert con.execute("SELECT count(*), sum(amount) FROM transactions").fetchall() == [(2, 88.77)]


def test_malformed_rows_are_quarantined_with_their_row_number(con, tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\n"
                   "O1,C1,2024-01-31,1\nO2,C1,2024-01-31,1,299.00\n\nO3,C1\nO4,C1,2024-01-31,4\n")
    report = load(con, members_file, orders)
    f = report.files[-1]
    assert (f.rows, f.accepted, f.rejected) == (4, 2, 2)
    rows = con.execute("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall()
    assert rows == [(2, "malformed row: not 4 fields"), (4, "malformed row: not 4 fields")]
    assert con.execute("SELECT order_id FROM transactions ORDER BY 1").fetchall() == [("O1",), ("O4",)]


def test_folders_load_in_dependency_order_and_skip_non_data_files(con, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write(folder, "a_orders.csv", ORDERS)
    write(folder, "z_members.csv", MEMBERS)
    write(folder, "truth.json", "{}")
    report = load(con, folder)
    assert [f.kind for f in report.files] == ["members", "transactions"]
    assert report.skipped == [{"path": str(folder / "truth.json"), "reason": "not a data export"}]
    assert [(f.accepted, f.rejected) for f in report.files] == [(2, 0), (2, 0)]


def test_same_file_twice_adds_nothing(con, tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", ORDERS)
    load(con, members_file, orders)
    before = table_counts(con)
    copy = write(tmp_path, "orders_copy.csv", ORDERS)
    report = load(con, members_file, copy)
    assert [f.status for f in report.files] == ["already loaded", "already loaded"]
    assert table_counts(con) == before


# -- command line ------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "crmkit", *map(str, args)], capture_output=True, text=True)


def test_cli_json_contract_and_summary(tmp_path, members_file):
    orders = write(tmp_path, "orders.csv", ORDERS + "O3,C1,2099-01-01,5\n")
    db = tmp_path / "crm.duckdb"
    out = run_cli("load", members_file, orders, "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["members"] == 2
    assert [{k: f[k] for k in ("kind", "rows", "accepted", "rejected")} for f in doc["files"]] == [
        {"kind": "members", "rows": 2, "accepted": 2, "rejected": 0},
        {"kind": "transactions", "rows": 3, "accepted": 2, "rejected": 1}]
    assert all(set(f) >= {"path", "kind", "rows", "accepted", "rejected"} for f in doc["files"])
    more = write(tmp_path, "more.csv", "card_no,phone\nC3,+86 137 0000 0000\n")
    human = run_cli("load", more, "--db", db)
    assert human.returncode == 0
    assert "1 source records → 1 members; 3 members in the store." in human.stdout


def test_cli_file_problem_is_one_sentence_without_traceback(tmp_path):
    empty = write(tmp_path, "empty.csv", "")
    out = run_cli("load", empty, "--db", tmp_path / "crm.duckdb")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "empty.csv: is empty" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    bad_map = run_cli("load", empty, "--db", tmp_path / "crm.duckdb", "--map", "nonsense")
    assert bad_map.returncode != 0 and "is not SRC=DST" in bad_map.stderr
