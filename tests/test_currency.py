"""The store's currency: set by the first load, used by every money label and format (issue 10, item 14)."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

import crmkit
from crmkit import cohorts, currency, reports
from crmkit.cli import main
from crmkit.dashboard import column_label, format_table, open_store
from crmkit.errors import InputError
from crmkit.io import load_files
from crmkit.io.validate import _MONEY_MARKS

AS_OF = "2024-12-31"


@pytest.fixture(autouse=True)
def _restore_currency():
    """Tests that open a store make its currency the current one: put CNY back after each."""
    with currency.using("CNY"):
        yield


def _exports(tmp_path, mark: str = "£") -> list:
    """Members M0..M29 and their orders in 2024: a few each, every amount written with ``mark``."""
    members = "card_no,name\n" + "".join(f"M{i},Member {i}\n" for i in range(30))
    lines = ["order_id,card_no,order_time,amount"]
    for i in range(30):
        for k in range(1 + i % 4):
            amount = 20 + 7 * i + 13 * k
            lines.append(f'O{i}-{k},M{i},2024-{1 + (i + 3 * k) % 12:02d}-{1 + (i * k) % 27:02d} 10:00,'
                         f'"{mark}{amount * 100:,.2f}"')
    lines.append(f'Z1,M0,{AS_OF} 10:00,"{mark}1,000.00"')  # the last purchase day is the as-of
    (tmp_path / "members.csv").write_text(members, encoding="utf-8")
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [tmp_path / "members.csv", tmp_path / "orders.csv"]


def _expected_total() -> float:
    return sum((20 + 7 * i + 13 * k) * 100 for i in range(30) for k in range(1 + i % 4)) + 1000


@pytest.fixture
def gbp_store(tmp_path):
    db = tmp_path / "gbp.duckdb"
    assert main(["load", *map(str, _exports(tmp_path)), "--db", str(db), "--currency", "gbp", "--quiet"]) == 0
    return db


# ------------------------------------------------------------------ the currencies

def test_currencies_format_with_their_symbol_and_minor_units():
    assert currency.get("GBP").fmt(1234567.8) == "£1,234,568"
    assert currency.get("usd").fmt(-1234.5, 2) == "-$1,234.50"
    assert currency.get("HKD").fmt(12.5, 2) == "HK$12.50"
    assert currency.get("EUR").fmt(float("nan")) == "–"
    assert currency.get("JPY").fmt(1234.56, 2) == "¥1,235"  # yen have no minor unit
    assert currency.DEFAULT.code == "CNY" and currency.current().fmt(5) == "¥5"
    with pytest.raises(InputError) as err:
        currency.get("XYZ")
    assert str(err.value).startswith("--currency 'XYZ' is not a currency crmkit knows; use one of CNY, GBP")
    assert "\n" not in str(err.value)


def test_labels_and_formats_follow_the_current_currency():
    assert column_label("net_sales", "en") == "Net sales (¥)" and column_label("net_sales") == "净销售额（元）"
    with currency.using("GBP"):
        assert column_label("net_sales", "en") == "Net sales (£)"
        assert column_label("net_sales", "zh") == "净销售额（英镑）"
        assert column_label("aov", "zh") == "客单价（英镑/笔）"
        assert cohorts.t("cohort.revenue_title", "en").endswith("(£ per member)")
        shown = format_table(pd.DataFrame({"tier": ["Gold"], "clv": [1234.4], "aov": [12.345]}), "en")
        assert list(shown.columns) == ["Tier", "CLV (£)", "Average order value (£)"]
        assert shown.iloc[0].tolist()[1:] == ["£1,234", "£12.35"]
        assert crmkit.viz.money_formatter(25000, 0) == "£25,000"
    assert currency.current().code == "CNY"  # restored after the block


def _amounts(con, tmp_path, code, values):
    """Load one order per value into a ``code`` store: {value: amount or the quarantine reason}."""
    (tmp_path / "members.csv").write_text("card_no\nC1\n", encoding="utf-8")
    rows = "".join(f'O{i},C1,2024-01-{i + 1:02d},"{v}"\n' for i, v in enumerate(values))
    (tmp_path / "orders.csv").write_text("order_id,card_no,order_time,amount\n" + rows, encoding="utf-8")
    load_files(con, [tmp_path / "members.csv", tmp_path / "orders.csv"], progress=False, currency=code)
    got = {f"O{i}": v for i, v in enumerate(values)}
    out = {got[o]: a for o, a in con.execute("SELECT order_id, amount FROM transactions").fetchall()}
    out |= {json.loads(raw)["amount"]: reason for raw, reason in con.execute("SELECT raw, reason FROM quarantine").fetchall()}
    return out


def test_every_symbol_is_stripped_from_amounts():
    assert set(currency.SYMBOLS) <= set(_MONEY_MARKS)


def test_an_amount_in_the_stores_currency_loads_and_another_currencys_is_quarantined(con, tmp_path):
    other = "amount in another currency than the store's (EUR): amount"
    assert _amounts(con, tmp_path, "EUR", ["€12", "1,299.50", "£1,299.50", "HK$1,000", "$7.25", "￥3.00", "5 GBP"]) == {
        "€12": 12.0, "1,299.50": 1299.5, "£1,299.50": other, "HK$1,000": other, "$7.25": other, "￥3.00": other,
        "5 GBP": other}


def test_dollar_marks_are_told_apart(con, tmp_path):
    other = "amount in another currency than the store's (USD): amount"
    assert _amounts(con, tmp_path, "USD", ["US$5", "$6", "7 USD", "S$8", "HK$9"]) == {
        "US$5": 5.0, "$6": 6.0, "7 USD": 7.0, "S$8": other, "HK$9": other}


def test_yuan_marks_load_in_a_cny_store(con, tmp_path):
    assert _amounts(con, tmp_path, None, ["¥1,299.00", "￥3", "5元", "RMB 6", "£7"]) == {
        "¥1,299.00": 1299.0, "￥3": 3.0, "5元": 5.0, "RMB 6": 6.0,
        "£7": "amount in another currency than the store's (CNY): amount"}


# ------------------------------------------------------------------ a GBP store

def test_a_gbp_store_loads_pound_amounts_and_says_so(tmp_path, capsys):
    db = tmp_path / "gbp.duckdb"
    assert main(["load", *map(str, _exports(tmp_path)), "--db", str(db), "--currency", "GBP"]) == 0
    out = capsys.readouterr().out
    assert "amounts are in GBP (£), the store's currency" in out and "¥" not in out
    con = crmkit.connect(db, read_only=True)
    try:
        assert con.execute("SELECT sum(amount) FROM transactions").fetchone()[0] == pytest.approx(_expected_total())
        assert currency.store_currency(con).code == "GBP"
    finally:
        con.close()
    more = tmp_path / "more.csv"
    more.write_text("card_no,name\nM99,Late member\n", encoding="utf-8")
    assert main(["load", str(more), "--db", str(db), "--json", "--quiet"]) == 0  # no --currency: the store's
    assert json.loads(capsys.readouterr().out)["currency"] == "GBP"


def test_score_of_a_gbp_store_says_pounds(gbp_store, capsys):
    capsys.readouterr()
    assert main(["score", str(gbp_store), "--as-of", AS_OF, "--lang", "en", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Total CLV (horizon 365 days): £" in out and out.count("£") >= 3 and "¥" not in out
    assert main(["score", str(gbp_store), "--as-of", AS_OF, "--quiet"]) == 0
    assert "¥" not in capsys.readouterr().out
    assert main(["score", str(gbp_store), "--as-of", AS_OF, "--json", "--quiet"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["currency"] == "GBP" and doc["members"] == 30
    assert doc["total_clv"]["clv_low"] < doc["total_clv"]["clv"] < doc["total_clv"]["clv_high"]
    assert currency.current().code == "CNY"  # a command sets its store's currency for itself only


def test_report_of_a_gbp_store_says_pounds_and_its_manifest_the_currency(gbp_store, tmp_path):
    assert main(["score", str(gbp_store), "--as-of", AS_OF, "--quiet"]) == 0
    con = open_store(gbp_store)  # what every notebook does first
    try:
        assert currency.current().code == "GBP" and column_label("clv", "en") == "CLV (£)"
    finally:
        con.close()
    currency.use("CNY")
    manifest = reports.run_reports(gbp_store, AS_OF, ["member_overview"], {"lang": "en"}, tmp_path / "r",
                                   progress=False)
    assert manifest["currency"] == "GBP" and manifest["status"] == "ok"
    folder = reports.report_dir(tmp_path / "r", AS_OF, {"lang": "en"})
    assert json.loads((folder / "manifest.json").read_text())["currency"] == "GBP"
    html = (folder / "member_overview.html").read_text(encoding="utf-8")
    assert "(£)" in html and "£" in html and "¥" not in html and "元" not in html


# ------------------------------------------------------------------ CNY by default, and no change of currency

def test_cny_is_the_default_and_unchanged(tmp_path, capsys):
    db = tmp_path / "cny.duckdb"
    assert main(["load", *map(str, _exports(tmp_path, "¥")), "--db", str(db), "--quiet"]) == 0
    assert "amounts are in CNY (¥)" in capsys.readouterr().out
    assert main(["score", str(db), "--as-of", AS_OF, "--lang", "en", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Total CLV (horizon 365 days): ¥" in out and "£" not in out
    con = crmkit.connect(db, read_only=True)
    try:
        assert crmkit.store.read_setting(con, "currency") == "CNY"
        assert con.execute("SELECT sum(amount) FROM transactions").fetchone()[0] == pytest.approx(_expected_total())
    finally:
        con.close()


def test_a_different_currency_on_a_store_with_data_is_refused_in_one_sentence(gbp_store, tmp_path, capsys):
    con = crmkit.connect(gbp_store, read_only=True)
    before = reports.data_fingerprint(con)
    con.close()
    more = tmp_path / "more.csv"
    more.write_text("card_no,name\nM99,Late member\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["load", str(more), "--db", str(gbp_store), "--currency", "USD", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == ("crmkit load: --currency USD differs from this store's currency GBP; amounts in "
                                    "two currencies cannot be added up, so load them into a separate store (--db).")
    con = crmkit.connect(gbp_store, read_only=True)
    try:
        assert reports.data_fingerprint(con) == before and currency.store_currency(con).code == "GBP"
    finally:
        con.close()
    assert main(["load", str(more), "--db", str(gbp_store), "--currency", "GBP", "--quiet"]) == 0  # the same is fine
    assert main(["load", str(more), "--db", str(gbp_store), "--currency", "XYZ"]) == 2
    assert "is not a currency crmkit knows" in capsys.readouterr().err


def test_an_empty_store_takes_a_new_currency(con):
    assert currency.record(con, "GBP").code == "GBP"
    assert currency.record(con, None).code == "GBP"  # a load without --currency keeps the store's
    assert currency.record(con, "USD").code == "USD"  # nothing loaded yet: nothing to mix
    con.execute("INSERT INTO members (member_id) VALUES ('A')")
    with pytest.raises(InputError, match="differs from this store's currency USD"):
        currency.record(con, "EUR")


def test_a_store_from_before_the_setting_is_cny_and_gains_the_table(tmp_path):
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as old:  # a store as crmkit wrote it before the settings table
        old.execute(crmkit.schema.TABLES["transactions"].create_sql())
    con = crmkit.connect(db, read_only=True)
    try:
        assert currency.store_currency(con).code == "CNY"
    finally:
        con.close()
    con = crmkit.connect(db)  # a writer migrates it
    try:
        assert con.execute("SELECT count(*) FROM settings").fetchone()[0] == 0
        assert currency.store_currency(con).code == "CNY"
    finally:
        con.close()
