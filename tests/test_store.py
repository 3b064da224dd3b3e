import pytest

import crmkit
from crmkit.errors import CrmkitError, InputError
from crmkit.schema import TABLES


def test_new_store_has_every_canonical_table(tmp_path):
    con = crmkit.connect(tmp_path / "crm.duckdb")
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(TABLES) <= have


def test_transaction_rolls_back(con):
    from crmkit.store import transaction
    with pytest.raises(RuntimeError):
        with transaction(con):
            con.execute("INSERT INTO stores VALUES ('S1', 'a', 'b', 'c')")
            raise RuntimeError
    assert con.execute("SELECT count(*) FROM stores").fetchone()[0] == 0


def test_open_source_csv_needs_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("member_id,amount\n1,2\n")
    with pytest.raises(InputError, match="order_time"):
        crmkit.open_source(p)


def test_open_source_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("member_id,order_time,amount\n1,2024-01-01,20\n1,2024-02-01,-5\n")
    con = crmkit.open_source(p)
    rows = con.execute("SELECT member_id, amount, txn_type FROM transactions ORDER BY order_time").fetchall()
    assert rows == [("1", 20.0, "sale"), ("1", -5.0, "return")]


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(CrmkitError, match="no member store"):
        crmkit.connect(tmp_path / "none.duckdb", read_only=True)


def test_duckdb_progress_bar_is_off(tmp_path):
    """In a notebook DuckDB draws its progress bar as a widget: an empty black bar above an app or report."""
    from crmkit.engine.store import connect

    con = connect(tmp_path / "crm.duckdb")
    try:
        assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone()[0] is False
    finally:
        con.close()
