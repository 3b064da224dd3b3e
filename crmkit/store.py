"""The member store: one DuckDB file (default ``data/crm.duckdb``).

The store says where the data lives and how to reach it; ``schema`` says what
the data is. Analyses take a DuckDB connection and run their scans and
group-bys there, pulling back only per-member results or compressed
sufficient statistics.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from .errors import CrmkitError, InputError
from .schema import TABLES

DEFAULT_DB = Path("data") / "crm.duckdb"


def default_db_path() -> Path:
    """``$CRMKIT_DB`` if set, else ``data/crm.duckdb`` under the current directory."""
    return Path(os.environ.get("CRMKIT_DB", DEFAULT_DB))


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every canonical table that is missing."""
    for table in TABLES.values():
        con.execute(table.create_sql())


def connect(db: str | os.PathLike | None = None, *, read_only: bool = False,
            create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the store at ``db`` (``":memory:"`` for a throwaway one).

    A new file gets the canonical tables. ``read_only`` opens an existing
    file without the write lock, so reports can read while nothing writes.
    """
    path = str(db) if db is not None else str(default_db_path())
    if path != ":memory:":
        p = Path(path)
        if not p.exists():
            if read_only or not create:
                raise CrmkitError(f"{path}: no member store there; load data first with `crmkit load`.")
            p.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.Error as err:  # locked, corrupt, not a DuckDB file
        raise CrmkitError(f"{path}: cannot open the member store ({str(err).splitlines()[0]}).") from err
    if not read_only:
        ensure_schema(con)
    return con


def fetch_df(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> pd.DataFrame:
    """The result of ``sql`` as a DataFrame, through Arrow.

    For a million members this is several times faster than ``.df()``, even
    with the extra copy DuckDB warns about (``con.sql`` would avoid it, but
    refuses to run while a caller's earlier result on the connection is
    unfinished). Dates stay ``datetime64``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        table = con.execute(sql, params or {}).to_arrow_table()
    return table.to_pandas(date_as_object=False)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection):
    """All-or-nothing: a failure inside leaves the store exactly as it was."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")


def open_source(source: str | os.PathLike, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A connection in which the canonical tables of ``source`` can be queried.

    ``source`` is a DuckDB store (``.duckdb``/``.db``) or a transactions file
    (CSV or Parquet) with at least ``member_id, order_time, amount``; a file
    is exposed as a view named ``transactions`` in an in-memory database.
    """
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".duckdb", ".db", ".ddb"):
        return connect(path, read_only=read_only, create=False)
    if not path.exists():
        raise InputError("no such file.", path=str(path))
    con = duckdb.connect(":memory:")
    ensure_schema(con)
    if suffix == ".parquet":
        rel = f"read_parquet('{_sql_str(path)}')"
    elif suffix in (".csv", ".txt", ".tsv"):
        rel = f"read_csv_auto('{_sql_str(path)}', header=true)"
    else:
        raise InputError("not a DuckDB store, CSV or Parquet file.", path=str(path))
    try:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
    except duckdb.Error as err:
        raise InputError(f"cannot read it ({str(err).splitlines()[0]}).", path=str(path)) from err
    for need in ("member_id", "order_time", "amount"):
        if need not in cols:
            raise InputError("missing required column.", path=str(path), column=need)
    select = [
        "CAST(member_id AS VARCHAR) AS member_id",
        "CAST(order_time AS TIMESTAMP) AS order_time",
        "CAST(amount AS DOUBLE) AS amount",
    ]
    for c in TABLES["transactions"].columns:
        if c.name in cols and c.name not in ("member_id", "order_time", "amount"):
            select.append(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"')
        elif c.name == "txn_type":
            select.append("CASE WHEN CAST(amount AS DOUBLE) < 0 THEN 'return' ELSE 'sale' END AS txn_type")
        elif c.name == "order_id":
            select.append("CAST(member_id AS VARCHAR) || '|' || CAST(order_time AS VARCHAR) AS order_id")
        elif c.name not in ("member_id", "order_time", "amount"):
            # every canonical column exists, so analyses never meet a missing name
            select.append(f'CAST(NULL AS {c.type}) AS "{c.name}"')
    con.execute("DROP TABLE IF EXISTS transactions")
    con.execute(f"CREATE VIEW transactions AS SELECT {', '.join(select)} FROM {rel}")
    return con


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")
