"""The demo chain: deterministic, realistic, and its hidden truth is what the loader finds."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from fixtures_demo import DEMO_MEMBERS

from crmkit.demo import generate
from crmkit.io.readers import _excel_rows


@pytest.fixture(scope="module")
def store(demo_store):  # noqa: F811
    db, truth = demo_store
    con = duckdb.connect(str(db), read_only=True)
    yield con, truth
    con.close()


def test_loading_the_exports_finds_the_true_member_count(store):
    con, truth = store
    assert truth["members"] == DEMO_MEMBERS
    assert con.execute("SELECT count(*) FROM members").fetchall()[0][0] == truth["members"]
    assert con.execute("SELECT count(*) FROM member_identities").fetchall()[0][0] == truth["source_records"]


def test_every_planted_bad_row_is_quarantined_with_its_reason(store):
    con, truth = store
    found = {(Path(f).name, r, reason) for f, r, reason in
             con.execute("SELECT source_file, row_number, reason FROM quarantine").fetchall()}
    planted = {(b["file"], b["row_number"], b["reason"]) for b in truth["bad_rows"]}
    assert len(planted) == len(truth["bad_rows"]) >= 25
    assert found == planted
    reasons = {b["reason"] for b in truth["bad_rows"]}
    assert {"unparseable date: order_time", "negative amount on a sale", "duplicate order line",
            "unknown member", "future date: order_time", "duplicate member record"} <= reasons


def test_rows_reconcile_per_file(store):
    con, truth = store
    loads = {Path(p).name: (rows, acc, rej) for p, rows, acc, rej in
             con.execute("SELECT path, rows, accepted, rejected FROM loads").fetchall()}
    assert set(loads) == set(truth["files"])
    for name, rows in truth["files"].items():
        bad = sum(b["file"] == name for b in truth["bad_rows"])
        assert loads[name] == (rows, rows - bad, bad), name
    lines = con.execute("SELECT count(*) FILTER (WHERE txn_type = 'sale'), count(*) FILTER (WHERE txn_type = "
                        "'return') FROM transactions").fetchall()[0]
    assert lines == (truth["transactions"]["lines"], truth["transactions"]["return_lines"])


def test_campaigns_have_random_control_groups_and_recorded_truth(store):
    con, truth = store
    camps = truth["campaigns"]
    assert len(camps) >= 3
    for cid, c in camps.items():
        groups = dict(con.execute('SELECT "group", count(*) FROM campaign_assignments WHERE campaign_id = ? '
                                  "GROUP BY 1", [cid]).fetchall())
        assert groups == {"treatment": c["n_treatment"], "control": c["n_control"]}
        assert c["n_control"] / c["n_assigned"] == pytest.approx(c["control_share"], abs=1 / c["n_assigned"])
        issued, redeemed = con.execute("SELECT count(*), count(redeemed_at) FROM coupons WHERE campaign_id = ?",
                                       [cid]).fetchall()[0]
        assert (issued, redeemed) == (c["coupons_issued"], c["coupons_redeemed"])
        contacted = con.execute("SELECT count(contacted_at) FROM campaign_assignments WHERE campaign_id = ?",
                                [cid]).fetchall()[0][0]
        assert contacted == c["contacted"] and 0.9 < contacted / c["n_treatment"] < 1.0
        for key in ("true_conversion_lift", "true_revenue_per_member_lift", "true_margin_per_member_lift",
                    "true_incremental_revenue", "attribution_days", "margin_rate", "cost_per_contact"):
            assert key in c
    assert camps["C2503"]["true_conversion_lift"] > 0.05      # clearly positive
    assert abs(camps["C2509"]["true_conversion_lift"]) < 0.01  # near zero
    assert "intention-to-treat" in truth["campaign_definitions"]


def test_the_chain_looks_like_a_chain(store):
    con, truth = store
    regions = con.execute("SELECT count(*), count(DISTINCT region), count(DISTINCT city) FROM stores").fetchall()[0]
    assert regions[0] == truth["stores"] and 45 <= regions[0] <= 55 and regions[1] == 5 and regions[2] >= 15
    first, last = con.execute("SELECT min(order_time), max(order_time) FROM transactions").fetchall()[0]
    assert first >= dt.datetime(2024, 7, 1) and last < dt.datetime(2026, 7, 1)
    assert truth["as_of"] == "2026-06-30"
    channels = dict(con.execute("SELECT channel, count(*) FROM transactions GROUP BY 1").fetchall())
    assert set(channels) == {"pos", "online", "miniapp"}
    per_member = con.execute("SELECT count(*) / (SELECT count(*) FROM members) FROM transactions "
                             "WHERE txn_type = 'sale'").fetchall()[0][0]
    assert 2.2 < per_member < 3.0
    assert con.execute("SELECT count(DISTINCT category) FROM transactions").fetchall()[0][0] == 8
    share = con.execute("SELECT sum(t.amount) / (SELECT sum(sales) FROM store_sales) FROM transactions t "
                        "WHERE t.channel = 'pos'").fetchall()[0][0]
    assert 0.3 < share < 0.8
    assert {"r", "alpha", "a", "b"} <= set(truth["btyd"]) and truth["btyd"]["time_unit"] == "days"


def test_exports_come_in_the_shapes_of_real_channels(demo_store):  # noqa: F811
    folder = Path(demo_store[0]).parent / "exports"
    pos = (folder / "pos_transactions.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        pos.decode("utf-8")
    assert pos.decode("gbk").startswith("小票号,行号,交易时间")
    assert (folder / "mall_members.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    mall = (folder / "mall_orders.csv").read_text(encoding="utf-8")
    assert '"¥1,' in mall or "¥" in mall
    mobiles = (folder / "mall_members.csv").read_text(encoding="utf-8-sig")
    assert "+86 1" in mobiles and "86-1" in mobiles
    mini = _excel_rows(folder / "miniapp_members.xlsx")
    assert mini[0] == ["openid", "手机号", "昵称", "绑定卡号", "注册时间"]
    assert any(r[1] == "" for r in mini[1:]) and any(r[3] for r in mini[1:])


def test_generation_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", members=300, seed=11)
    b = generate(tmp_path / "b", members=300, seed=11)
    c = generate(tmp_path / "c", members=300, seed=12)
    assert a == b and a != c
    for name in a["files"]:
        if name.endswith(".xlsx"):
            assert _excel_rows(tmp_path / "a" / name) == _excel_rows(tmp_path / "b" / name)
        else:
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert json.loads((tmp_path / "a" / "truth.json").read_text(encoding="utf-8")) == a


def test_demo_data_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "crmkit", "demo-data", str(tmp_path / "d"), "--members", "200",
                          "--seed", "3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "200 persons behind" in out.stdout and (tmp_path / "d" / "truth.json").exists()
    bad = subprocess.run([sys.executable, "-m", "crmkit", "demo-data", str(tmp_path / "e"), "--members", "5"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "at least 100" in bad.stderr
