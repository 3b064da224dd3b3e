"""The engine on Spark: the same queries, transpiled, on a Parquet dataset of the canonical tables.

When a chain outgrows one machine (issue 13), its heavy part runs on Spark
with the engine's own SQL: a :class:`~crmkit.engine.query.Query` builds its
text for DuckDB as always, SQLGlot writes it in Spark's dialect
(:func:`to_spark`, unsupported features raised, never skipped), and the
parameters stay bound, as Spark named parameters (``$as_of`` becomes
``:as_of``; Spark 3.4 or later). There is no second, hand-written Spark
version of a query to drift from the DuckDB one.

- :func:`export_parquet` writes a DuckDB store's canonical tables to a
  Parquet folder (loading with quarantine stays on DuckDB);
- :func:`spark_session` is the session crmkit configures (``local[2]`` by
  default, UTC, small memory, no UI);
- :class:`SparkStore` exposes a Parquet dataset as temporary views named as
  the canonical tables, and runs queries on them (:meth:`SparkStore.df`: a
  small result as pandas; :meth:`SparkStore.frame`: a Spark DataFrame, for
  results that stay on the cluster).

Types are those of the DuckDB store (:mod:`crmkit.schema`): each view casts
the canonical columns it has to the Spark type SQLGlot gives for their DuckDB
type (DOUBLE money, so a Parquet ``DECIMAL`` amount is summed as DuckDB sums
it), and lacks the columns the files lack, so that
:class:`~crmkit.engine.query.StoreRelation` bodies are built for what is
there, as on DuckDB. A table the engine reads (``members``, ``stores``,
``products``) that the dataset does not hold is an empty view, as an empty
table of a DuckDB store. Order times are local shop time without a zone:
Spark's ``TIMESTAMP_NTZ``, as SQLGlot writes DuckDB's TIMESTAMP and as Spark
reads the files :func:`export_parquet` writes. Spark turns a zoned timestamp
(one written by Spark itself, or a ``datetime`` parameter) into one without
a zone in the session's time zone, so that zone must be UTC, where a wall-clock
is the same in both (a :class:`SparkStore` refuses any other zone).

Results come back as :func:`crmkit.engine.store.fetch_df` gives them from
DuckDB: dates as ``datetime64[ms]`` (Spark gives ``datetime.date`` objects),
timestamps as naive ``datetime64[us]`` of their wall-clock (Spark gives
nanoseconds), an integer column with NULLs as float.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CrmkitError, InputError
from ..schema import TABLES
from .query import Query, StoreRelation, table_columns

#: The canonical tables a Parquet dataset for Spark holds: what the engine's analyses read.
DATASET_TABLES = ("transactions", "members", "stores", "products")
#: The session settings crmkit needs (:func:`spark_session`); the time zone is a rule, not a tuning.
SESSION_CONF = {
    "spark.driver.memory": "2g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

_LOCK = threading.Lock()
_SESSION = None


def _sql_str(path) -> str:
    return str(path).replace("'", "''")


def export_parquet(con, folder: str | os.PathLike, tables=DATASET_TABLES) -> dict[str, int]:
    """Write the canonical ``tables`` of the DuckDB store ``con`` to ``folder/<table>.parquet``; rows per table.

    This is the dataset :class:`SparkStore` reads. Every column of the table
    is written with its store type, except the personal data the schema marks
    (:attr:`crmkit.schema.Table.pii`: members' phones and names), which no
    analysis reads and which stays in the store. A table the store lacks is
    not written. Existing files of the same names are replaced.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in tables:
        if name not in TABLES:
            raise CrmkitError(f"{name!r} is not a canonical table; use {', '.join(DATASET_TABLES)}.")
        have = table_columns(con, name)
        if not have:
            continue
        cols = ", ".join(f'"{c}"' for c in TABLES[name].names if c in have and c not in TABLES[name].pii)
        path = out / f"{name}.parquet"
        con.execute(f"COPY (SELECT {cols} FROM \"{name}\") TO '{_sql_str(path)}' (FORMAT parquet)")
        written[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    return written


def spark_session(master: str = "local[2]"):
    """The Spark session crmkit runs on, created once per process (:data:`SESSION_CONF`).

    ``master`` is used when the session is first made (``local[2]``: two
    cores of this machine; a cluster's URL, or ``yarn``); later calls return
    the same session. Nothing is fetched at run time: PySpark brings its jars.
    """
    global _SESSION
    with _LOCK:
        if _SESSION is None or _SESSION.sparkContext._jsc is None:  # none yet, or stopped
            try:
                from pyspark.sql import SparkSession
            except ImportError as err:
                raise CrmkitError("the Spark engine needs PySpark and Java 17: "
                                  "pip install 'crmkit[spark]'.") from err
            builder = SparkSession.builder.master(master).appName("crmkit")
            for key, value in SESSION_CONF.items():
                builder = builder.config(key, value)
            try:
                _SESSION = builder.getOrCreate()
            except Exception as err:  # PySpark's error when the JVM does not start (no Java, bad JAVA_HOME)
                raise CrmkitError(f"cannot start Spark ({str(err).splitlines()[0]}); "
                                  "the Spark engine needs Java 17 (java on the PATH, or JAVA_HOME).") from err
            _SESSION.sparkContext.setLogLevel("ERROR")
        return _SESSION


def to_spark(sql: str) -> str:
    """``sql``, one DuckDB statement of the portable subset, in Spark's dialect; SQLGlot raises what it cannot carry.

    Parameters ``$name`` become Spark's named parameters ``:name``.
    """
    try:
        import sqlglot
        from sqlglot.errors import ErrorLevel
    except ImportError as err:
        raise CrmkitError("the Spark engine needs SQLGlot: pip install 'crmkit[spark]'.") from err
    try:
        out = sqlglot.transpile(sql, read="duckdb", write="spark", error_level=ErrorLevel.RAISE,
                                unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as err:
        raise CrmkitError(f"the query cannot run on Spark: {str(err).splitlines()[0]}") from err
    if len(out) != 1:
        raise CrmkitError(f"one statement runs at a time on Spark, not {len(out)}.")
    return out[0]


def compress_select(relation: str = "rfm_summary", cols=("frequency", "recency", "T")) -> str:
    """A final select of the unique rows of ``cols`` in ``relation`` with ``weight``, the members sharing each,
    sorted: :func:`crmkit.rfm.compress` done by the engine (portable SQL), so that only these rows leave it."""
    keys = ", ".join(f'"{c}"' for c in cols)
    return f"SELECT {keys}, count(*) AS weight FROM {relation} GROUP BY {keys} ORDER BY {keys}"


def spark_value(name: str, value):
    """A parameter's value as Spark binds it: numpy scalars as Python ones, a naive datetime in UTC (its
    wall-clock, as the session reads timestamps); a list is outside the portable subset."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (list, tuple, set, dict, np.ndarray)):
        raise CrmkitError(f"parameter ${name} is a list; bind each value on its own (crmkit.engine.one_of).")
    return value


def _spark_type(duckdb_type: str) -> str:
    """The Spark SQL type SQLGlot writes for a DuckDB column type."""
    return to_spark(f"SELECT CAST(NULL AS {duckdb_type})").removeprefix("SELECT CAST(NULL AS ").removesuffix(")")


class SparkStore:
    """A Parquet dataset of the canonical tables, as temporary views of ``spark`` named after the tables.

    ``path`` is a folder (local, ``hdfs://``, ``s3a://`` ...) or a glob of
    folders (``/lake/2026-*``, read as one dataset) holding each table as
    ``<table>.parquet`` (a file, or a folder of part files) or a sub-folder
    ``<table>/``; :func:`export_parquet` writes one. ``transactions`` must be
    there; see the module for types and missing tables. The views are the
    session's: each query a store runs names its own tables again first.
    """

    def __init__(self, spark, path: str | os.PathLike, tables=DATASET_TABLES):
        zone = spark.conf.get("spark.sql.session.timeZone")
        if zone != "UTC":
            raise CrmkitError(f"the Spark session's time zone is {zone!r}; crmkit needs "
                              "spark.sql.session.timeZone=UTC, where order times keep their day.")
        self.spark, self.path = spark, str(path).rstrip("/")
        self.columns: dict[str, frozenset[str]] = {}
        self.views: dict = {}  # table name -> its Spark DataFrame
        for name in tables:
            frame = self._read(name)
            if frame is None and name == "transactions":
                raise InputError("no transactions.parquet or transactions/ Parquet data there.", path=self.path)
            self._register(name, frame)

    def _read(self, name: str):
        """The Parquet data of table ``name`` as a Spark DataFrame, or None when the dataset has none."""
        from pyspark.errors import AnalysisException

        for where in (f"{self.path}/{name}.parquet", f"{self.path}/{name}"):
            try:
                return self.spark.read.parquet(where)
            except AnalysisException as err:
                if "PATH_NOT_FOUND" not in str(err) and "Path does not exist" not in str(err):
                    raise InputError(f"cannot read it as Parquet ({str(err).splitlines()[0]}).", path=where) from err
        return None

    def _register(self, name: str, frame) -> None:
        """The view ``name``: the canonical columns ``frame`` has, cast to their store types (all of them,
        and no row, without ``frame``)."""
        columns = [c for c in TABLES[name].columns if frame is None or c.name in frame.columns]
        if frame is None:
            select = ", ".join(f"CAST(NULL AS {_spark_type(c.type)}) AS `{c.name}`" for c in columns)
            self.views[name] = self.spark.sql(f"SELECT {select} WHERE FALSE")
        else:
            self.views[name] = frame.selectExpr(*(f"CAST(`{c.name}` AS {_spark_type(c.type)}) AS `{c.name}`"
                                                  for c in columns))
        self.views[name].createOrReplaceTempView(name)
        self.columns[name] = frozenset(c.name for c in columns)

    def statement(self, query: Query, select: str, **params) -> tuple[str, dict]:
        """The Spark SQL of ``select`` on top of ``query``'s CTEs (built for the views' columns) and its arguments."""
        ctes = {name: body.build(self.columns.get(body.table, frozenset())) if isinstance(body, StoreRelation)
                else body for name, body in query.ctes.items()}
        q = Query(ctes, query.params)
        sql = q.sql(select)
        return to_spark(sql), {k: spark_value(k, v) for k, v in q.bound(sql, **params).items()}

    def frame(self, query: Query, select: str, **params):
        """``select`` on top of ``query``'s CTEs as a Spark DataFrame (lazy: nothing runs until it is used)."""
        text, args = self.statement(query, select, **params)
        for name, view in self.views.items():  # another store on the session may have taken the names
            view.createOrReplaceTempView(name)
        return self.spark.sql(text, args=args)

    def df(self, query: Query, select: str, **params) -> pd.DataFrame:
        """``select`` on top of ``query``'s CTEs, collected as a pandas DataFrame typed as DuckDB's (see the
        module); for small results: one row per member, per compressed row or per group."""
        return to_pandas(self.frame(query, select, **params))


def to_pandas(frame) -> pd.DataFrame:
    """A small Spark DataFrame as pandas, with dates and timestamps in the ``datetime64`` units of DuckDB's results."""
    from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

    with warnings.catch_warnings():  # PySpark 3.5 calls pandas APIs that pandas 3 deprecates
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pyspark\.")
        out = frame.toPandas()
    for field in frame.schema.fields:  # the units DuckDB's DATE and TIMESTAMP come back in
        if isinstance(field.dataType, DateType):
            out[field.name] = pd.to_datetime(out[field.name]).astype("datetime64[ms]")
        elif isinstance(field.dataType, (TimestampType, TimestampNTZType)):
            out[field.name] = out[field.name].astype("datetime64[us]")
    return out
