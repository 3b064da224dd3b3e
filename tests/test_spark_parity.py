"""On the same data, the engine's queries give the same answers on Spark as on DuckDB (issue 13).

The demo store is exported to Parquet (:func:`crmkit.engine.spark.export_parquet`)
and read by a :class:`~crmkit.engine.spark.SparkStore` on a ``local[2]`` session;
the same :class:`~crmkit.engine.Query`, transpiled by SQLGlot, runs on both
engines for an ``as_of`` inside the data (later lines must be left out). Counts,
dates and labels are equal exactly, floats to 1e-9, and the column types are
DuckDB's. Skipped without PySpark (the ``spark`` extra) or Java.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil

import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("sqlglot")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("the Spark engine needs Java (17)", allow_module_level=True)

import crmkit  # noqa: E402
from crmkit import lifecycle, rfm, scoring, segments  # noqa: E402
from crmkit.engine import Query  # noqa: E402
from crmkit.engine.spark import SparkStore, compress_select, export_parquet, spark_session  # noqa: E402
from crmkit.errors import CrmkitError  # noqa: E402

#: Days before the last order day: the lines after ``as_of`` must not count.
BACK_DAYS = 45


@pytest.fixture(scope="module")
def spark():
    session = spark_session()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def engines(demo_store, spark, tmp_path_factory):
    """``(con, store, as_of)``: a copy of the demo store, its Parquet export read by Spark, and the date."""
    root = tmp_path_factory.mktemp("spark_parity")
    shutil.copyfile(demo_store[0], root / "crm.duckdb")
    con = crmkit.connect(root / "crm.duckdb", read_only=True)
    export_parquet(con, root / "parquet")
    last = con.execute("SELECT CAST(max(order_time) AS DATE) FROM transactions").fetchone()[0]
    yield con, SparkStore(spark, root / "parquet"), last - dt.timedelta(days=BACK_DAYS)
    con.close()


def same(con, store, query: Query, select: str) -> pd.DataFrame:
    """Run ``select`` on both engines and assert equal results; DuckDB's."""
    duck, spark = query.df(con, select), store.df(query, select)
    assert len(duck) > 0
    pd.testing.assert_frame_equal(spark, duck, check_exact=False, rtol=1e-9, atol=1e-9)
    return duck


def test_rfm_summary_is_duckdb_s(engines):
    con, store, as_of = engines
    out = same(con, store, rfm.summary_query(as_of), "SELECT * FROM rfm_summary ORDER BY member_id")
    assert out["last_purchase"].max() <= pd.Timestamp(as_of)


def test_compressed_rows_are_duckdb_s(engines):
    con, store, as_of = engines
    q = rfm.summary_query(as_of)
    rows = same(con, store, q, compress_select())
    expected = rfm.compress(q.df(con, "SELECT * FROM rfm_summary"))  # what `crmkit fit` fits on today
    pd.testing.assert_frame_equal(rows, expected, check_exact=False, rtol=1e-9, atol=1e-9)


def test_scoring_member_rows_are_duckdb_s(engines):
    """Everything per member ``crmkit score`` takes from the engine: the RFM summary the models fit on,
    R/F/M scores and segment, stage, tier and the churn behaviour features."""
    con, store, as_of = engines
    same(con, store, *scoring.member_rows_query(as_of))


def test_rfm_segments_are_duckdb_s(engines):
    con, store, as_of = engines
    out = same(con, store, segments.rfm_query(as_of), """
SELECT member_id, rfm_r, rfm_f, rfm_m, rfm_segment, recency_days, frequency, monetary, last_purchase
FROM rfm_segments ORDER BY member_id""")
    assert out["rfm_segment"].nunique() > 5


def test_lifecycle_stages_are_duckdb_s(engines):
    con, store, as_of = engines
    out = same(con, store, lifecycle.stages_query(as_of), """
SELECT member_id, lifecycle_stage, join_date, first_purchase, last_purchase, recency_days, purchase_days,
       store_id, region, channel
FROM stages ORDER BY member_id""")
    assert set(out["lifecycle_stage"]) == set(lifecycle.STAGES)


def test_values_are_bound_as_spark_parameters_never_written_into_the_sql(engines):
    _, store, as_of = engines
    text, args = store.statement(rfm.summary_query(as_of), "SELECT * FROM rfm_summary")
    assert ":as_of" in text and "$" not in text and as_of.isoformat() not in text
    assert args == {"as_of": as_of, "scale": 7.0}


def test_a_datetime_parameter_is_a_wall_clock_as_in_duckdb(engines):
    con, store, _ = engines
    t = con.execute("SELECT order_time FROM transactions ORDER BY order_time LIMIT 1 OFFSET 3000").fetchone()[0]
    out = same(con, store, Query(params={"t": t}),
               "SELECT count(*) AS n, max(order_time) AS last FROM transactions WHERE order_time <= $t")
    assert out["last"][0] == t
    with pytest.raises(CrmkitError, match="is a list"):
        store.statement(Query(params={"ids": ["a", "b"]}), "SELECT * FROM members WHERE member_id IN $ids")


def test_the_export_leaves_personal_data_in_the_store(engines, tmp_path):
    con, _, _ = engines
    export_parquet(con, tmp_path, tables=("members",))
    cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM '{tmp_path / 'members.parquet'}'").fetchall()}
    assert "member_id" in cols and "join_date" in cols
    assert not cols & {"phone", "name"}


def test_a_dataset_of_transactions_only_reads_like_a_store_without_members(engines, spark, tmp_path):
    """Missing tables are empty views and missing columns are absent, as in a DuckDB store of CDNOW data."""
    con, _, as_of = engines
    con.execute(f"COPY (SELECT member_id, order_time, amount FROM transactions) "
                f"TO '{tmp_path / 'transactions'}' (FORMAT parquet, PER_THREAD_OUTPUT)")
    store = SparkStore(spark, tmp_path)
    assert store.columns["transactions"] == {"member_id", "order_time", "amount"}
    assert spark.sql("SELECT count(*) FROM members").collect()[0][0] == 0
    bare = crmkit.connect(":memory:")
    bare.execute(f"INSERT INTO transactions (member_id, order_time, amount) "
                 f"SELECT * FROM '{tmp_path / 'transactions'}/*.parquet'")
    q = rfm.summary_query(as_of)
    pd.testing.assert_frame_equal(store.df(q, "SELECT * FROM rfm_summary ORDER BY member_id"),
                                  q.df(bare, "SELECT * FROM rfm_summary ORDER BY member_id"),
                                  check_exact=False, rtol=1e-9, atol=1e-9)
    bare.close()


def test_a_folder_without_transactions_is_one_sentence(spark, tmp_path):
    with pytest.raises(CrmkitError, match="no transactions.parquet"):
        SparkStore(spark, tmp_path)


def test_a_session_outside_utc_is_refused(engines, spark):
    spark.conf.set("spark.sql.session.timeZone", "Asia/Shanghai")
    try:
        with pytest.raises(CrmkitError, match="time zone"):
            SparkStore(spark, "unused")
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_a_glob_of_dataset_folders_is_one_dataset(engines, spark, tmp_path):
    con, _, _ = engines
    for part, cond in (("2025", "< DATE '2026-01-01'"), ("2026", ">= DATE '2026-01-01'")):
        (tmp_path / part).mkdir()
        con.execute(f"COPY (SELECT * FROM transactions WHERE order_time {cond}) "
                    f"TO '{tmp_path / part / 'transactions.parquet'}' (FORMAT parquet)")
    SparkStore(spark, f"{tmp_path}/20*")
    total = con.execute("SELECT count(*), sum(amount) FROM transactions").fetchone()
    got = spark.sql("SELECT count(*), sum(amount) FROM transactions").collect()[0]
    assert got[0] == total[0] and got[1] == pytest.approx(total[1], rel=1e-12)


@pytest.mark.xfail(strict=True, reason="round(DOUBLE, 2) differs: DuckDB rounds the double's exact binary value "
                   "(1999.995 is 1999.99499…: 1999.99), Spark its shortest decimal text half up (2000.00); "
                   "tiers round the annual spend so (crmkit/tiers.py, crmkit/scoring.py)")
def test_tiers_of_a_sub_cent_spend_are_duckdb_s(spark, tmp_path):
    from crmkit.tiers import TierRules

    con = crmkit.connect(tmp_path / "crm.duckdb")
    con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) "
                "VALUES ('m1', 'o1', TIMESTAMP '2026-06-30 10:00:00', 1999.995)")
    export_parquet(con, tmp_path / "parquet")
    q = TierRules.load().query(dt.date(2026, 6, 30))
    try:
        same(con, SparkStore(spark, tmp_path / "parquet"), q, "SELECT member_id, annual_spend, tier FROM tiers")
    finally:
        con.close()
