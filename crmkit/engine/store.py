"""The member store: one DuckDB file (default ``data/crm.duckdb``), kept by the engine.

It is the one place that opens the engine: connections, transactions, the
schema, and the engine's types and errors for the rest of crmkit
(:data:`Connection` in annotations, :data:`DataError`, :func:`is_interrupt`),
so that no module outside :mod:`crmkit.engine` imports DuckDB. The store
says where the data lives and how to reach it; ``schema`` says what the data
is. Analyses take a DuckDB connection and run their scans and
group-bys there, pulling back only per-member results or compressed
sufficient statistics.
"""
from __future__ import annotations

import os
import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

__all__ = ["DEFAULT_DB", "CatalogError", "Connection", "DataError", "EngineError", "connect", "default_db_path",
           "ensure_schema", "fetch_df", "is_empty", "is_interrupt", "open_source", "read_setting", "scratch",
           "snapshot", "transaction", "write_setting"]

#: A connection to the engine, for annotations outside the engine (``con: Connection``).
Connection = duckdb.DuckDBPyConnection
#: The engine's errors, so that callers catch them without importing DuckDB: any error, a bad value
#: met while reading data, and a table or column that does not exist.
EngineError = duckdb.Error
DataError = duckdb.DataError
CatalogError = duckdb.CatalogException

from ..errors import CrmkitError, InputError
from ..paths import DEFAULT_DB, default_db_path  # noqa: F401 (re-exported)
from ..schema import TABLES



def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every canonical table that is missing (so an older store gains the newer tables, e.g. ``settings``)."""
    for table in TABLES.values():
        con.execute(table.create_sql())


def read_setting(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The store's setting ``key`` (table ``settings``); None when unset or the store predates settings."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name = 'main' AND table_name = 'settings'").fetchone()[0]:
        return None  # a store made before the table, opened read-only (a writer's ensure_schema adds it)
    row = con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def write_setting(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set the store's setting ``key`` to ``value``."""
    con.execute("DELETE FROM settings WHERE key = ?", [key])  # the table has no key constraint to upsert on
    con.execute("INSERT INTO settings (key, value) VALUES (?, ?)", [key, value])


def is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """True when no canonical table but ``settings`` holds a row (nothing was loaded or scored yet)."""
    counts = " UNION ALL ".join(f'SELECT count(*) AS n FROM (SELECT 1 FROM "{name}" LIMIT 1)'
                                for name in TABLES if name != "settings")
    return con.execute(f"SELECT sum(n) FROM ({counts})").fetchone()[0] == 0


def connect(db: str | os.PathLike | None = None, *, read_only: bool = False,
            create: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the store at ``db`` (``":memory:"`` for a throwaway one).

    A new file gets the canonical tables. ``read_only`` opens an existing
    file without the write lock, so reports can read while nothing writes.
    DuckDB's own progress bar is off: in a notebook, a report or an app it
    would be an empty black bar widget above the page (crmkit reports its
    own progress).
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
        busy = _lock_holder(err)
        if busy is not None:
            doing = ("being written by another process{}, such as a running load" if read_only else
                     "in use by another process{}, such as a running load or report").format(busy)
            raise CrmkitError(f"{path}: the member store is {doing}; try again when it has finished.") from err
        raise CrmkitError(f"{path}: cannot open the member store ({str(err).splitlines()[0]}).") from err
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        ensure_schema(con)
    return con


def _lock_holder(err: BaseException) -> str | None:
    """For DuckDB's "Could not set lock" error, `` (PID n)`` (or ``""``); None for any other error."""
    text = str(err)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    m = re.search(r"\(PID (\d+)\)", text)
    return f" (PID {m.group(1)})" if m else ""


@contextmanager
def snapshot(db: str | os.PathLike, dest_dir: str | os.PathLike):
    """A consistent, read-only copy of the store ``db`` in ``dest_dir``; yields its path.

    The copy is taken while this process holds a read-only connection to
    ``db``. DuckDB lets a file be opened either by one writer or by any number
    of read-only connections, never both, so during the copy no load, score
    or other writer can change the file: the copy (the database file and, when
    a writer stopped without a checkpoint, its ``.wal``) is one committed state
    of the store. A writer that holds the store when the snapshot starts makes
    it fail with one sentence; a writer that starts during the copy gets one
    sentence from :func:`connect` and can simply be run again. The lock is
    held only for the copy (seconds), not for the run that reads the copy.
    The copy is made read-only on disk and deleted when the block ends.
    """
    src = Path(db)
    dest = Path(dest_dir) / "store.duckdb"
    holder = connect(src, read_only=True, create=False)  # the shared lock: no writer until closed
    try:
        shutil.copyfile(src, dest)
        wal = src.with_name(src.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, dest.with_name(dest.name + ".wal"))
    finally:
        holder.close()
    try:
        for f in (dest, dest.with_name(dest.name + ".wal")):
            if f.exists():
                os.chmod(f, 0o444)
        yield dest
    finally:
        for f in (dest, dest.with_name(dest.name + ".wal")):
            try:
                f.unlink()
            except FileNotFoundError:
                pass


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


def is_interrupt(err: BaseException) -> bool:
    """True for the engine's way of saying that Ctrl-C stopped a query."""
    return isinstance(err, duckdb.InterruptException) or "Query interrupted" in str(err)


def scratch() -> Connection:
    """An empty in-memory engine connection, for work that touches no store (checking a format, staging)."""
    return duckdb.connect()
