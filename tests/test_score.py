import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

import crmkit
from crmkit.cli import main
from crmkit.clv.value import interval_note
from crmkit.schema import MEMBER_SCORES
from crmkit.scoring import score_members, write_scores

AS_OF = "2024-06-30"


def background(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Members who buy and drop out as in BG/NBD, with Gamma-Gamma spend: enough for the models to fit.

    Per member: first purchase in Jan–Feb 2024, purchase rate λ ~ Gamma(2, 0.15) a week,
    drop-out chance p ~ Beta(1, 3) after each purchase, mean spend ~ Gamma(3, 20) yuan;
    simulated to 2024-08-31, past the as-of date.
    """
    rng = np.random.default_rng(seed)
    rows, end = [], dt.datetime(2024, 8, 31)
    for i in range(n):
        t = dt.datetime(2024, 1, 1, 10) + dt.timedelta(days=int(rng.integers(0, 60)))
        lam, p, mean = rng.gamma(2.0, 0.15), rng.beta(1.0, 3.0), rng.gamma(3.0, 20.0)
        k = 0
        while t <= end:
            rows.append((f"M{i:03d}", f"M{i:03d}-{k}", t, round(float(rng.gamma(6, mean / 6)), 2)))
            k += 1
            if rng.random() < p:
                break
            t += dt.timedelta(days=float(rng.exponential(7 / lam)))
    return pd.DataFrame(rows, columns=["member_id", "order_id", "order_time", "amount"])


# Hand-made members, values worked out below (as of 2024-06-30).
HAND = pd.DataFrame([
    # H1: 3 purchase days; 20 of the 80 returned (same order) → repeat days worth 60 and 60
    ("H1", "h1-1", "2024-01-01 10:00", 100.0),
    ("H1", "h1-2", "2024-01-15 11:00", 60.0),
    ("H1", "h1-3", "2024-02-12 12:00", 80.0),
    ("H1", "h1-3", "2024-02-20 12:00", -20.0),
    # H2: bought once, 29 days before the as-of date
    ("H2", "h2-1", "2024-06-01 09:00", 500.0),
    # H3: two big orders: ¥2,700 over the trailing year → Silver tier (from ¥2,000)
    ("H3", "h3-1", "2024-03-01 15:00", 1500.0),
    ("H3", "h3-2", "2024-04-10 15:00", 1200.0),
    # H4: first buys after the as-of date: not scored
    ("H4", "h4-1", "2024-07-02 15:00", 99.0),
], columns=["member_id", "order_id", "order_time", "amount"]).assign(
    order_time=lambda d: pd.to_datetime(d["order_time"]))


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return pd.concat([background(), HAND], ignore_index=True)


def load(con, tx: pd.DataFrame) -> None:
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM tx")  # DuckDB reads the local frame


@pytest.fixture(scope="module")
def scored(transactions):
    con = crmkit.connect(":memory:")
    load(con, transactions)
    yield score_members(con, AS_OF)
    con.close()


def test_one_row_per_buyer_with_the_schema_columns(scored, transactions):
    table = scored.table
    assert list(table.columns) == MEMBER_SCORES.names
    buyers = transactions.loc[transactions["order_time"] < "2024-07-01", "member_id"].unique()
    assert sorted(table["member_id"]) == sorted(buyers)
    assert "H4" not in set(table["member_id"])
    assert table["member_id"].is_unique and table["member_id"].is_monotonic_increasing
    assert (table["as_of"] == dt.date(2024, 6, 30)).all()
    assert table[["p_alive", "expected_purchases", "expected_spend", "clv", "churn_risk"]].notna().all().all()


def test_hand_made_rfm_values(scored):
    t = scored.table.set_index("member_id")
    h1 = t.loc["H1"]
    assert h1["frequency"] == 2
    assert h1["recency"] == pytest.approx(42 / 7)     # 2024-01-01 → 2024-02-12
    assert h1["T"] == pytest.approx(181 / 7)          # 2024-01-01 → 2024-06-30
    assert h1["monetary"] == pytest.approx(60.0)      # (60 + (80 − 20)) / 2, first purchase left out
    h2 = t.loc["H2"]
    assert (h2["frequency"], h2["recency"], h2["monetary"]) == (0, 0, 0)
    assert h2["T"] == pytest.approx(29 / 7)
    h3 = t.loc["H3"]
    assert (h3["frequency"], h3["recency"], h3["T"], h3["monetary"]) == pytest.approx((1, 40 / 7, 121 / 7, 1200))


def test_hand_made_model_values(scored):
    t = scored.table.set_index("member_id")
    # BG/NBD: a one-time buyer is alive for sure; Gamma-Gamma gives them the population mean spend
    assert t.loc["H2", "p_alive"] == 1.0
    assert t.loc["H2", "expected_spend"] == pytest.approx(scored.spend.mean_spend_)
    # H3's expected spend shrinks his ¥1,200 towards the population mean
    assert scored.spend.mean_spend_ < t.loc["H3", "expected_spend"] < 1200
    horizon = 365 / 7
    for m in ("H1", "H2", "H3"):
        row = t.loc[m]
        ep = scored.model.expected_purchases(horizon, row["frequency"], row["recency"], row["T"])
        assert row["expected_purchases"] == pytest.approx(float(ep))
        # CLV = 30% margin × purchases × spend, each week's purchases discounted at 10% a year:
        # every discount factor lies in [1/1.1, 1]
        undiscounted = 0.3 * row["expected_purchases"] * row["expected_spend"]
        assert undiscounted / 1.1 <= row["clv"] <= undiscounted
        assert row["clv_low"] < row["clv"] < row["clv_high"]


def test_churn_risk_and_bands(scored):
    t = scored.table.set_index("member_id")
    assert t["churn_risk"].between(0, 1).all()
    # relative bands: the riskiest 20% high, the next 30% medium
    low, high = np.quantile(t["churn_risk"], [0.5, 0.8])
    assert scored.thresholds == pytest.approx((low, high)) and scored.relative_bands
    expect = np.where(t["churn_risk"] >= high, "high", np.where(t["churn_risk"] >= low, "medium", "low"))
    assert (t["churn_band"] == expect).all()
    assert t["churn_band"].eq("high").mean() == pytest.approx(0.2, abs=0.02)
    # bands named by their range of churn probability, with the rank rule that cut them
    cuts = [f"{100 * v:.0f}" for v in (low, high)]
    assert f"bands of churn probability: {cuts[1]}–100%, {cuts[0]}–{cuts[1]}%, 0–{cuts[0]}%" in scored.band_note("en")
    assert "riskiest 20%" in scored.band_note("en") and "风险最高的 20%" in scored.band_note("zh")
    assert scored.value_note("en") == ("CLV is expected gross margin, not sales: expected purchases × expected "
                                       "spend per order × a 30% margin, discounted at 10% a year. "
                                       + interval_note("en", 0.9))
    assert "90% 预测区间" in scored.value_note("zh")
    # the 180 days before 2024-06-30 start on 2024-01-02: too few members then to backtest, so
    # the risk ranks members by BG/NBD's expected purchases in the next 180 days (fewer = riskier)
    assert scored.churn.method_ == "expected" and scored.churn.backtest_ is None
    assert "too short to backtest" in scored.churn.method_note("en")
    expected = scored.model.expected_purchases(180 / 7, t["frequency"], t["recency"], t["T"])
    order = np.argsort(np.asarray(expected, dtype=float), kind="stable")
    assert (np.diff(t["churn_risk"].to_numpy()[order]) <= 1e-12).all()
    counts = scored.band_counts("en")
    assert counts["members"].sum() == len(t) and list(counts["churn_band"]) == ["high", "medium", "low"]
    assert counts["label"].iloc[0] == f"churn probability {cuts[1]}–100%"


def test_churn_score_chosen_by_backtest_when_history_allows(transactions):
    con = crmkit.connect(":memory:")
    load(con, transactions)
    result = score_members(con, AS_OF, churn_days=60)
    churn = result.churn
    assert churn.trained_on_ == dt.date(2024, 5, 1)
    bt = churn.backtest_
    assert (bt.scored_on, bt.judged_to) == (dt.date(2024, 5, 1), dt.date(2024, 6, 30))
    assert churn.method_ == bt.chosen and bt.auc[bt.chosen][0] >= bt.auc["expected"][0]
    assert result.table["churn_risk"].between(0, 1).all()


def test_segments_stage_and_tier(scored):
    t = scored.table.set_index("member_id")
    assert t.loc["H3", "tier"] == "Silver"
    assert t.loc["H1", "tier"] == "Regular"
    assert t.loc["H2", "lifecycle_stage"] == "new"      # first purchase 29 days ago
    assert t.loc["H1", "lifecycle_stage"] == "active"   # last purchase 139 days ago (< 180)
    assert t[["rfm_r", "rfm_f", "rfm_m"]].isin(range(1, 6)).all().all()
    assert t.loc["H3", "rfm_m"] == 5                    # ¥2,700 is the largest net spend


def test_total_clv_interval(scored):
    total = scored.total_clv
    assert total["clv"] == pytest.approx(scored.table["clv"].sum())
    assert total["members"] == len(scored.table)
    assert total["clv_low"] < total["clv"] < total["clv_high"]
    # one interval for the total, narrower than adding up the members' bounds
    assert total["clv_high"] <= scored.table["clv_high"].sum() + 1e-6
    text = scored.summary_text("en")
    assert "churn = no purchase in the next 180 days" in text and "90% interval" in text
    assert "流失概率 " in scored.summary_text("zh") and "高风险" not in scored.summary_text("zh")


# ---------------------------------------------------------------------------- CLI

def test_cli_writes_csv_and_parquet(tmp_path, transactions, scored, capsys):
    export = transactions.assign(channel="pos", store_id="S01")
    src_csv, src_parquet = tmp_path / "pos_export.csv", tmp_path / "pos_export.parquet"
    export.to_csv(src_csv, index=False)
    export.to_parquet(src_parquet, index=False)
    out_csv, out_parquet = tmp_path / "scores.csv", tmp_path / "scores.parquet"
    assert main(["score", str(src_csv), "--as-of", AS_OF, "--out", str(out_csv), "--quiet"]) == 0
    assert main(["score", str(src_parquet), "--as-of", AS_OF, "--out", str(out_parquet), "--quiet"]) == 0
    a = pd.read_csv(out_csv, dtype={"member_id": str})
    b = pd.read_parquet(out_parquet)
    assert list(a.columns) == list(b.columns) == MEMBER_SCORES.names
    assert len(a) == len(b) == len(scored.table)
    assert a["as_of"].unique().tolist() == ["2024-06-30"]
    assert b["as_of"].unique().tolist() == [dt.date(2024, 6, 30)]
    for col in ("frequency", "recency", "T", "p_alive", "clv", "clv_low", "clv_high", "churn_risk"):
        # a prediction bound whose level sits just above the member's chance of buying nothing
        # magnifies the last-bit differences of float sums over rows read in another order
        np.testing.assert_allclose(a[col], b[col], rtol=1e-6 if col in ("clv_low", "clv_high") else 1e-9)
        np.testing.assert_allclose(b[col], scored.table[col], rtol=1e-6)
    assert capsys.readouterr().out.count("¥") >= 3  # the summary: total CLV and its interval


def test_cli_bare_transactions_file(tmp_path, transactions, capsys):
    """The contract: a file with only member_id, order_time, amount is enough."""
    src = tmp_path / "bare.csv"
    transactions[["member_id", "order_time", "amount"]].to_csv(src, index=False)
    assert main(["score", str(src), "--as-of", AS_OF, "--lang", "en", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "churn probability " in out and "Total CLV (horizon 365 days)" in out


def test_cli_writes_back_to_the_store_replacing_the_same_as_of(tmp_path, transactions):
    db = tmp_path / "crm.duckdb"
    con = crmkit.connect(db)
    load(con, transactions)
    con.close()
    for _ in range(2):
        assert main(["score", str(db), "--as-of", AS_OF, "--quiet"]) == 0
    assert main(["score", str(db), "--as-of", "2024-05-31", "--churn-days", "90", "--quiet"]) == 0
    con = crmkit.connect(db, read_only=True)
    counts = dict(con.execute("SELECT as_of, count(*) FROM member_scores GROUP BY as_of").fetchall())
    n_june = con.execute("SELECT count(DISTINCT member_id) FROM transactions "
                         "WHERE order_time < DATE '2024-07-01'").fetchone()[0]
    n_may = con.execute("SELECT count(DISTINCT member_id) FROM transactions "
                        "WHERE order_time < DATE '2024-06-01'").fetchone()[0]
    assert counts == {dt.date(2024, 6, 30): n_june, dt.date(2024, 5, 31): n_may}
    h1 = con.execute("SELECT frequency, monetary, churn_band FROM member_scores "
                     "WHERE member_id = 'H1' AND as_of = DATE '2024-06-30'").fetchone()
    con.close()
    assert h1[:2] == (2, 60.0) and h1[2] in ("high", "medium", "low")


def test_write_scores_is_all_or_nothing(con, scored):
    write_scores(con, scored.table)
    bad = scored.table.assign(frequency="many")
    with pytest.raises(duckdb.ConversionException):
        write_scores(con, bad)  # fails after the delete: rolled back, nothing replaced
    assert con.execute("SELECT count(*) FROM member_scores").fetchone()[0] == len(scored.table)


@pytest.mark.parametrize("argv, names", [
    (["score", "{tmp}/missing.csv", "--as-of", AS_OF], "missing.csv: no such file."),
    (["score", "{tmp}/scores.xlsx", "--as-of", AS_OF], "scores.xlsx: not a DuckDB store, CSV or Parquet file."),
    (["score", "{tmp}/ok.csv", "--as-of", AS_OF, "--out", "{tmp}/out.txt"], "out.txt: the output must end in"),
    (["score", "{tmp}/baddate.csv", "--as-of", AS_OF], "baddate.csv: cannot"),
    (["score", "{tmp}/ok.csv", "--as-of", AS_OF, "--out", "{tmp}/no/s.csv"], "s.csv: its folder does not exist."),
    (["score", "{tmp}/ok.csv", "--as-of", "June"], "--as-of 'June' is not a date; use YYYY-MM-DD."),
])
def test_cli_bad_input_is_one_sentence(tmp_path, capsys, argv, names):
    (tmp_path / "scores.xlsx").write_text("x")
    (tmp_path / "ok.csv").write_text("member_id,order_time,amount\n1,2024-01-01,20\n")
    (tmp_path / "baddate.csv").write_text("member_id,order_time,amount\n1,2024-01-01,20\n2,soon,30\n")
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("crmkit score:")]
    assert code == 2
    assert len(errors) == 1 and names in errors[0]
    assert "Traceback" not in err
