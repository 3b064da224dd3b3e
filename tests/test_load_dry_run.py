"""``crmkit load --dry-run``: the mapping, the rules and the first rows as they would load, and nothing written."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

import crmkit
from crmkit.io import load_files
from test_load_files import MEMBERS, NOW, load, table_counts, write

ORDERS = ("小票号,会员卡号,交易时间,实付金额,备注\n"
          "O1,C1,12/13/10 8:26,100,x\n"
          "O2,C2,12/2/10 9:30,50.5,y\n"
          "O3,C9,12/3/10 9:30,-5,z\n")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "crmkit", "--quiet", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path):
    return write(tmp_path, "members.csv", MEMBERS), write(tmp_path, "orders.csv", ORDERS)


def test_a_dry_run_reports_the_mapping_rules_and_first_rows_and_creates_no_store(tmp_path, files):
    db = tmp_path / "store.duckdb"
    report = load_files(db, list(files), progress=False, now=NOW, dry_run=True)
    assert not db.exists() and report.dry_run
    members, orders = report.files
    assert members.columns == {"card_no": "card_no", "phone": "phone", "name": "name"}
    assert members.preview[0] == {"row": 1, "card_no": "C1", "phone": "138****5678", "name": "张*", "reason": None}
    assert (orders.kind, orders.rows, orders.accepted, orders.rejected) == ("transactions", 3, 2, 1)
    assert orders.columns == {"小票号": "order_id", "会员卡号": "card_no", "交易时间": "order_time",
                              "实付金额": "amount"}
    assert orders.ignored_columns == ["备注"]
    assert orders.encoding == "utf-8" and "UTF-8" in orders.encoding_rule
    assert orders.date_rules["order_time"].startswith("month/day/two-digit year (12/13/10 8:26 → 2010-12-13)")
    assert orders.order_rule == "order numbers from the file" and "kept as further lines" in orders.duplicate_rule
    assert [(r["row"], r["member_id"], r["order_id"], r["order_time"], r["amount"], r["reason"])
            for r in orders.preview] == [
        (1, "M00000001", "O1", "2010-12-13 08:26:00", 100.0, None),
        (2, "M00000002", "O2", "2010-12-02 09:30:00", 50.5, None),
        (3, None, "O3", "2010-12-03 09:30:00", -5.0, "negative amount on a sale")]
    assert "preview" not in load_files(db, list(files), progress=False, now=NOW).files[0].to_dict()


def test_a_dry_run_leaves_the_store_file_byte_identical_and_counts_what_the_load_does(tmp_path, files):
    db = tmp_path / "store.duckdb"
    load_files(db, [files[0]], progress=False, now=NOW)
    before = digest(db)
    wal = db.with_name(db.name + ".wal")
    dry = load_files(db, [files[1]], progress=False, now=NOW, dry_run=True)
    assert digest(db) == before and not wal.exists()
    assert dry.files[0].preview[0]["member_id"] == "M00000001"  # resolved against the store's members
    real = load_files(db, [files[1]], progress=False, now=NOW)
    assert [(f.rows, f.accepted, f.rejected, f.reasons) for f in dry.files] == \
        [(f.rows, f.accepted, f.rejected, f.reasons) for f in real.files]
    assert dry.members == real.members
    again = load_files(db, [files[1]], progress=False, now=NOW, dry_run=True)
    assert again.files[0].status == "already loaded"


def test_a_dry_run_on_a_connection_is_rolled_back(con, files):
    load(con, files[0])
    before = table_counts(con)
    report = load(con, files[1], dry_run=True)
    assert report.files[0].accepted == 2 and table_counts(con) == before


def test_a_file_that_would_fail_is_reported_with_its_rows_and_exits_non_zero(tmp_path, files):
    db = tmp_path / "store.duckdb"
    bad = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\nO1,C9,2024-01-31,1\nO2,C8,2024-02-01,2\n")
    run = run_cli("load", files[0], bad, "--db", db, "--dry-run")
    assert run.returncode == 1 and not db.exists()
    assert "orders.csv: none of its 2 rows can be loaded" in run.stdout
    assert "unknown member" in run.stdout and "nothing was written" in run.stdout


def test_the_cli_dry_run_as_text_and_as_json(tmp_path, files):
    db = tmp_path / "store.duckdb"
    run_cli("load", files[0], "--db", db)
    before = digest(db)
    text = run_cli("load", files[1], "--db", db, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "小票号 → order_id" in text.stdout and "ignored: 备注" in text.stdout
    assert "first 3 rows as they would load" in text.stdout and "negative amount on a sale" in text.stdout
    assert f"nothing was written to {db}" in text.stdout
    as_json = run_cli("load", files[1], "--db", db, "--dry-run", "--json")
    data = json.loads(as_json.stdout)
    assert data["dry_run"] is True and data["files"][0]["columns"]["交易时间"] == "order_time"
    assert [r["order_id"] for r in data["files"][0]["preview"]] == ["O1", "O2", "O3"]
    assert digest(db) == before
    con = crmkit.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0
    con.close()


# -- a combined export (--kind transactions+members) keeps its contact columns ----------------------

COMBINED = ("order_id,card_no,order_time,amount,手机号,姓名,性别,生日\n"
            "O1,C1,2024-01-01 10:00,10,13812345678,张三,男,1990-05-01\n"
            "O2,C1,2024-03-01 10:00,20,+86 139-0000-0000,,,2030-01-01\n"
            "O3,C1,2024-02-01 10:00,30,12345,张叁,,\n"
            "O4,C2,2024-02-01 10:00,30,,李四,女,\n"
            "O5,C3,2024-02-01 10:00,30,not a phone,,,\n")


def test_a_combined_export_keeps_contact_columns_from_each_members_most_recent_line(con, tmp_path):
    combined = write(tmp_path, "combined.csv", COMBINED)
    dry = load(con, combined, kind="transactions+members", dry_run=True).files[0]
    assert dry.columns["手机号"] == "phone" and dry.columns["姓名"] == "name" and dry.ignored_columns == []
    assert [r["member_id"] for r in dry.preview] == ["M00000001"] * 3 + ["M00000002", "M00000003"]
    assert con.execute("SELECT count(*) FROM members").fetchone()[0] == 0
    f = load(con, combined, kind="transactions+members").files[0]
    assert (f.rows, f.accepted, f.rejected) == (5, 5, 0)  # a phone that is not a mobile does not reject the line
    assert "each takes the value of the member's most recent line that carries a valid one" in f.header_rules[-1]
    # C1: the phone of O2 (1 March, +86 written with dashes), the name of O3 (O2 has none), the gender of O1,
    # and the birth date of O1 (O2's is after the load)
    assert con.execute("SELECT phone, name, gender, CAST(birth_date AS VARCHAR) FROM members "
                       "ORDER BY member_id").fetchall() == [
        ("13900000000", "张叁", "M", "1990-05-01"), (None, "李四", "F", None), (None, None, None, None)]
    assert con.execute("SELECT phone FROM member_identities WHERE source_id = 'C1'").fetchall() == [("13900000000",)]


def test_a_derived_members_phone_merges_it_with_the_member_of_that_phone(con, tmp_path):
    load(con, write(tmp_path, "members.csv", MEMBERS))
    combined = write(tmp_path, "mall_orders.csv", "order_id,user_id,order_time,amount,mobile\n"
                                                  "W1,U7,2024-01-01 10:00,10,138 1234 5678\n")
    report = load(con, combined, kind="transactions+members")
    assert report.members == 2 and report.merged_members == 0
    assert con.execute("SELECT member_id FROM member_identities WHERE source_id = 'U7'").fetchall() == \
        con.execute("SELECT member_id FROM member_identities WHERE source_id = 'C1'").fetchall()


def test_the_preview_masks_members_personal_data_only(con, tmp_path):
    stores = write(tmp_path, "stores.csv", "store_id,name,city\nS1,王府井店,北京\n")
    members = write(tmp_path, "members.csv",
                    "open_id,phone,name\noUpF8uMuAJO_M2pxb1Q9zNjWeS6o,13812345678,欧阳娜娜\n")
    report = load(con, stores, members, dry_run=True)
    assert report.files[0].preview == [{"row": 1, "store_id": "S1", "name": "王府井店", "city": "北京",
                                        "reason": None}]
    assert report.files[1].preview == [{"row": 1, "open_id": "oUpF****eS6o", "phone": "138****5678",
                                        "name": "欧***", "reason": None}]
