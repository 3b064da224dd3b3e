"""Warnings where a number should not be trusted (issue 9, Deliver 4): each asserts its one sentence.

Reference values for the outlier cut are computed separately with pandas from the rows inserted.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_campaigns import add_campaign, assign, buy
from test_load_files import run_cli, write
from test_score import background
from test_score import load as insert_transactions

import crmkit
from crmkit import campaigns, checks
from crmkit.cli import main
from crmkit.io import load_files

#: A small store: 20 orders of ¥100–¥119 on 20 days of January 2025, one line each.
SMALL = pd.DataFrame(
    [(f"M{i % 5}", f"o{i}", pd.Timestamp("2025-01-01 10:00") + pd.Timedelta(days=i), 100.0 + i) for i in range(20)],
    columns=["member_id", "order_id", "order_time", "amount"])
HUGE = pd.DataFrame([("M0", "huge", pd.Timestamp("2025-01-25 10:00"), 1e12)], columns=SMALL.columns)


def store(*frames) -> crmkit.connect:
    con = crmkit.connect(":memory:")
    insert_transactions(con, pd.concat(frames, ignore_index=True))
    return con


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- as-of outside the data -------------------------------------------------------------------------

def test_as_of_after_the_last_purchase_is_one_sentence():
    con = store(SMALL)  # purchases 2025-01-01 … 2025-01-20
    assert checks.data_dates(con) == (pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-01-20").date())
    assert checks.as_of_check(con, "2030-12-31") == (
        "as-of 2030-12-31 is after the last purchase in the store (2025-01-20): every member looks churned, "
        "because the 2,171 days since then hold no data.")
    assert checks.as_of_check(con, "2030-12-31", "zh") == (
        "评估日 2030-12-31 晚于库中最后一笔购买（2025-01-20）：此后 2,171 天没有数据，所有会员都会显得已流失。")


def test_as_of_before_the_first_purchase_is_one_sentence():
    con = store(SMALL)
    assert checks.as_of_check(con, "2024-03-31", "en") == (
        "as-of 2024-03-31 is before the first purchase in the store (2025-01-01): there is nothing to score.")
    assert checks.as_of_check(con, "2024-03-31", "zh") == (
        "评估日 2024-03-31 早于库中第一笔购买（2025-01-01）：没有可评分的会员。")


def test_as_of_inside_the_data_is_fine_and_returns_do_not_extend_it():
    ret = pd.DataFrame([("M0", "o0", pd.Timestamp("2025-03-01"), -50.0)], columns=SMALL.columns)
    con = store(SMALL, ret.assign(txn_type="return"))
    for day in ("2025-01-01", "2025-01-10", "2025-01-20"):  # both ends are inside
        assert checks.as_of_check(con, day) is None
    assert "after the last purchase in the store (2025-01-20)" in checks.as_of_check(con, "2025-02-01")


def test_empty_store():
    con = crmkit.connect(":memory:")
    assert checks.as_of_check(con, "2025-01-01") == "the store holds no purchases: there is nothing to score."


# -- outlier amounts --------------------------------------------------------------------------------

def reference_outliers(frame: pd.DataFrame, factor: float = 1000.0):
    """pandas: order amounts, the cut (factor × median positive order), and the orders above it."""
    orders = frame.groupby(["member_id", "order_id"])["amount"].agg(["sum", "size"])
    positive = orders.loc[orders["sum"] > 0, "sum"]
    cut = factor * float(np.median(positive))
    above = orders[orders["sum"] > cut]
    return cut, len(above), int(above["size"].sum()), above["sum"].sum() / positive.sum()


def test_an_order_of_a_trillion_in_a_tiny_store_is_flagged():
    frame = pd.concat([SMALL, HUGE, HUGE.assign(amount=5.0, order_time=HUGE["order_time"] + pd.Timedelta(hours=1))],
                      ignore_index=True)  # the huge order has a second line of ¥5
    con = store(frame)
    out = checks.amount_outliers(con)
    cut, n, lines, share = reference_outliers(frame)
    assert (out.cut, out.n_orders, out.n_lines) == (pytest.approx(cut), n, lines) == (pytest.approx(110_000), 1, 2)
    assert out.median_order == pytest.approx(110.0)
    assert out.share_of_sales == pytest.approx(share)
    assert bool(out)
    assert out.sentence("en") == (
        "1 order (2 lines) above ¥110,000, 1,000 × the median order of ¥110, makes up > 99.9% of sales: kept "
        "(it may be real), but check it before trusting any total or CLV.")
    assert out.sentence("zh") == (
        "1 笔订单（2 行）金额超过 ¥110,000（订单金额中位数 ¥110 的 1,000 倍），占销售额 > 99.9%：已保留（可能属实），"
        "但请先核实再看合计与 CLV。")
    d = out.to_dict()
    assert d["n_orders"] == 1 and d["n_lines"] == 2 and d["cut"] == pytest.approx(110_000)
    assert d["rule"] == "order amount > 1,000 × the median positive order amount"
    json.dumps(d)
    # before the huge order, nothing is flagged
    before = checks.amount_outliers(con, as_of="2025-01-24")
    assert not before and before.sentence() is None and before.share_of_sales == 0


def test_several_outliers_and_a_returned_one():
    rows = [("M1", "b1", pd.Timestamp("2025-01-05"), 2e6), ("M2", "b2", pd.Timestamp("2025-01-06"), 3e6),
            ("M3", "b3", pd.Timestamp("2025-01-07"), 9e6), ("M3", "b3", pd.Timestamp("2025-01-08"), -9e6)]
    extra = pd.DataFrame(rows, columns=SMALL.columns)
    frame = pd.concat([SMALL, extra], ignore_index=True)
    out = checks.amount_outliers(store(frame))
    cut, n, lines, share = reference_outliers(frame)
    assert (out.n_orders, out.n_lines) == (n, lines) == (2, 2)  # b3 was returned in full: nets to 0
    assert out.share_of_sales == pytest.approx(share)
    assert cut == pytest.approx(110_500)  # the median of 100 … 119, 2e6 and 3e6 is 110.5: b3 is no positive order
    assert out.sentence() == (
        "2 orders (2 lines) above ¥110,500, 1,000 × the median order of ¥110.50, make up > 99.9% of sales: kept "
        "(they may be real), but check them before trusting any total or CLV.")


def test_no_outliers_and_no_sales():
    assert checks.amount_outliers(store(SMALL)).sentence() is None
    empty = checks.amount_outliers(crmkit.connect(":memory:"))
    assert empty.n_orders == 0 and np.isnan(empty.cut) and empty.sentence("zh") is None


def test_data_warnings_gathers_every_sentence_that_applies():
    con = store(SMALL, HUGE)
    found = checks.data_warnings(con, "2030-01-01", "en")
    assert len(found) == 2
    assert found[0].startswith("as-of 2030-01-01 is after the last purchase in the store (2025-01-25)")
    assert found[1].startswith("1 order (1 line) above ¥110,000, 1,000 × the median order of ¥110,")
    assert checks.data_warnings(store(SMALL), "2025-01-10") == []


def test_load_summary_flags_outliers(tmp_path):
    text = "order_id,card_no,order_time,amount\n" + "".join(
        f"O{i},C{i % 3},2025-01-{i + 1:02d} 10:00,{100 + i}\n" for i in range(9)) + "OX,C1,2025-01-20 10:00,1000000000000\n"
    orders = write(tmp_path, "orders.csv", text)
    db = tmp_path / "crm.duckdb"
    out = run_cli("load", orders, "--db", db, "--derive-members", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)["amount_outliers"]
    assert (doc["n_orders"], doc["n_lines"], doc["median_order"], doc["cut"]) == (1, 1, 104.5, 104_500)
    assert doc["sentence"] == ("1 order (1 line) above ¥104,500, 1,000 × the median order of ¥104.50, makes up "
                               "> 99.9% of sales: kept (it may be real), but check it before trusting any total "
                               "or CLV.")
    con = crmkit.connect(db, read_only=True)
    assert con.execute("SELECT max(amount) FROM transactions").fetchone()[0] == 1e12  # loaded, not dropped
    con.close()
    more = write(tmp_path, "more.csv", "order_id,card_no,order_time,amount\nO99,C2,2025-01-21 10:00,99\n")
    human = run_cli("load", more, "--db", db, "--derive-members")
    assert human.returncode == 0, human.stderr
    assert human.stdout.strip().splitlines()[-1] == (
        "In the store, 1 order (1 line) above ¥104,000, 1,000 × the median order of ¥104, makes up > 99.9% of "
        "sales: kept (it may be real), but check it before trusting any total or CLV.")


def test_load_without_outliers_or_transactions(con, tmp_path):
    members = write(tmp_path, "members.csv", "card_no,phone,name\nC1,13812345678,张三\n")
    assert load_files(con, [members], progress=False).to_dict()["amount_outliers"] is None
    orders = write(tmp_path, "orders.csv", "order_id,card_no,order_time,amount\nO1,C1,2025-01-31 08:00,100\n")
    report = load_files(con, [orders], progress=False)
    assert report.amount_outliers.n_orders == 0 and report.to_dict()["amount_outliers"]["sentence"] is None


# -- the score and fit commands ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def score_db(tmp_path_factory):
    """Background members (purchases 2024-01-01 … 2024-08-30) and one order of ¥10^12."""
    db = tmp_path_factory.mktemp("checks") / "crm.duckdb"
    con = crmkit.connect(db)
    tx = background(300)
    insert_transactions(con, pd.concat([tx, pd.DataFrame([("M000", "BIG", pd.Timestamp("2024-05-02 12:00"), 1e12)],
                                                          columns=tx.columns)], ignore_index=True))
    con.close()
    return db


def test_score_refuses_an_as_of_past_the_data_without_allow_future(score_db, capsys):
    assert main(["score", str(score_db), "--as-of", "2030-12-31", "--lang", "en", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) == (
        "crmkit score: as-of 2030-12-31 is after the last purchase in the store (2024-08-30): every member looks "
        "churned, because the 2,314 days since then hold no data; use an as-of up to 2024-08-30, or pass "
        "--allow-future to score anyway.")
    con = crmkit.connect(score_db, read_only=True)
    assert con.execute("SELECT count(*) FROM member_scores").fetchone()[0] == 0  # nothing written
    con.close()


def test_score_refuses_an_as_of_before_the_data(score_db, capsys):
    for extra in ([], ["--allow-future"]):
        assert main(["score", str(score_db), "--as-of", "2023-12-31", "--lang", "en", "--quiet", *extra]) == 2
        assert one_line(capsys.readouterr().err) == (
            "crmkit score: as-of 2023-12-31 is before the first purchase in the store (2024-01-01): there is "
            "nothing to score.")


def test_score_with_allow_future_warns_and_names_the_outlier(score_db, capsys):
    assert main(["score", str(score_db), "--as-of", "2024-09-15", "--lang", "en", "--quiet", "--allow-future"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("crmkit score: as-of 2024-09-15 is after the last purchase in the store (2024-08-30): every "
                      "member looks churned, because the 16 days since then hold no data.")
    assert err[1].startswith("crmkit score: 1 order (1 line) above ¥") and "makes up > 99.9% of sales" in err[1]
    assert len(err) == 2


def test_fit_refuses_a_calibration_end_outside_the_data(score_db, capsys):
    assert main(["fit", str(score_db), "--calibration-end", "2023-06-30"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "crmkit fit: --calibration-end 2023-06-30 is before the first purchase in the data (2024-01-01): there "
        "is nothing to fit.")
    assert main(["fit", str(score_db), "--calibration-end", "2025-06-30"]) == 2
    assert one_line(capsys.readouterr().err) == (
        "crmkit fit: --calibration-end 2025-06-30 is after the last purchase in the data (2024-08-30): the 304 "
        "days without data would read as members dropping out; use a calibration end up to 2024-08-30, or pass "
        "--allow-future to fit anyway.")


# -- all-zero amounts -------------------------------------------------------------------------------

def test_score_on_all_zero_amounts_says_why_clv_is_zero(tmp_path, capsys):
    path = tmp_path / "zero.csv"
    background(100).assign(amount=0.0).to_csv(path, index=False)
    assert main(["score", str(path), "--as-of", "2024-06-30", "--lang", "en", "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("crmkit score: every amount in the store up to 2024-06-30 is zero (")
    assert err.endswith(" lines), so CLV is zero, Gamma-Gamma (spend per order) cannot be fitted and "
                        "revenue-based ROI cannot be measured; the export probably lacks the amounts paid.")
    con = store(SMALL.assign(amount=0.0))
    assert checks.zero_amounts_check(con, lang="zh") == (
        "库中全部 20 行的金额均为零：CLV 为零，Gamma-Gamma（客单价模型）无法拟合，基于销售额的 ROI 也无法衡量；"
        "导出文件可能缺少实付金额。")
    assert checks.zero_amounts_check(store(SMALL)) is None
    assert checks.zero_amounts_check(crmkit.connect(":memory:")) is None  # no lines: nothing to say


def zero_campaign(con, amount: float = 0.0):
    """300 treatment members of whom 90 buy, 150 control members of whom 15 do, every order at ``amount``."""
    add_campaign(con)
    t, c = [f"t{i}" for i in range(300)], [f"c{i}" for i in range(150)]
    assign(con, "C1", t, c)
    buy(con, [(m, f"o{m}", "2024-03-05", amount) for m in t[:90] + c[:15]])
    return con


def test_campaign_with_all_zero_amounts_gives_no_roi_and_says_why(con):
    r = campaigns.measure(zero_campaign(con), "C1")
    d = r.to_dict("en")
    sentence = ("Every amount of the 105 order lines in the attribution window is zero, so revenue, gross margin "
                "and ROI cannot be measured; only the conversion and order lifts stand.")
    assert d["roi"] is None and d["roi_ci"] is None and d["verdict"] is None and d["p_value"] is None
    assert d["roi_reason"] == sentence and d["verdict_text"] == sentence
    assert d["incremental_revenue"] is None and d["incremental_margin"] is None and d["net_margin"] is None
    assert d["revenue_per_member"]["lift"] is None and d["margin_per_member"]["lift_ci"] is None
    assert d["incrementality"] is not None and d["reason"] is None  # the control group is fine
    assert d["conversion"]["lift"] == pytest.approx(0.3 - 0.1)  # what can be measured still is
    text = r.summary("en")
    assert "-100" not in text and "did not pay" not in text and f"Verdict: {sentence}" in text
    assert "归因窗口内 105 行订单的金额均为零" in r.summary("zh")
    json.dumps(d)


def test_campaign_in_a_store_whose_amounts_are_all_zero(con):
    add_campaign(con)
    assign(con, "C1", [f"t{i}" for i in range(10)], [f"c{i}" for i in range(10)])
    buy(con, [("x1", "ox", "2024-01-05", 0.0)])  # a purchase outside the campaign, at zero
    d = campaigns.measure(con, "C1").to_dict("en")
    assert d["roi"] is None and d["verdict"] is None
    assert d["roi_reason"] == ("Every amount in the store is zero (1 line), so revenue, gross margin and ROI "
                               "cannot be measured; only the conversion and order lifts stand.")


def test_campaign_with_amounts_is_unchanged(con):
    d = campaigns.measure(zero_campaign(con, 100.0), "C1").to_dict("en")
    assert d["roi_reason"] is None and d["roi"] is not None and d["verdict"] is not None


def test_campaign_roi_cli_json_on_all_zero_amounts(tmp_path, con, capsys):
    zero_campaign(con)
    path = tmp_path / "crm.duckdb"
    crmkit.connect(path).close()
    con.execute(f"ATTACH '{path}' AS f")
    for table in ("campaigns", "campaign_assignments", "transactions"):
        con.execute(f'INSERT INTO f."{table}" SELECT * FROM "{table}"')
    con.execute("DETACH f")
    assert main(["campaign-roi", str(path), "--campaign", "C1", "--json", "--lang", "en"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["roi"] is None and d["roi_reason"].startswith("Every amount of the 105 order lines")
    assert main(["campaign-roi", str(path), "--campaign", "C1", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "ROI" not in out.replace("ROI cannot", "") and "did not pay" not in out
