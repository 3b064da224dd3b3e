"""The query builder: named SQL common table expressions with bound parameters.

Every analysis is a :class:`Query`: named CTEs, each one relation, plus the
parameters they bind. Values are always bound, never formatted into the SQL
text. A CTE body that depends on the columns the store has (a store made
before a column existed, a transactions file with only ``member_id,
order_time, amount``) is a :class:`StoreRelation`, built for the store's
columns when the query runs.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from .store import fetch_df


class StoreRelation(str):
    """A CTE body written for the canonical schema, rebuilt for the columns ``table`` really has.

    It is the SQL text for the full schema (so queries compare, compose and
    transpile as text); :meth:`for_store` gives the text for one connection.
    """

    table: str
    build: Callable[[frozenset[str]], str]

    def __new__(cls, table: str, build: Callable[[frozenset[str] | None], str]):
        self = super().__new__(cls, build(None))
        self.table, self.build = table, build
        return self

    def for_store(self, con: duckdb.DuckDBPyConnection) -> str:
        return self.build(table_columns(con, self.table))


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> frozenset[str]:
    """The column names of ``table`` (empty when there is no such table)."""
    try:
        return frozenset(d[0] for d in con.execute(f'SELECT * FROM "{table}" LIMIT 0').description)
    except duckdb.CatalogException:
        return frozenset()


def series(start: str, stop: str, step: str | None = None) -> str:
    """SQL of a generator: one row per value from ``start`` to ``stop`` (both included) by ``step``.

    ``start``, ``stop`` and ``step`` are SQL expressions (numbers, or dates
    with an ``INTERVAL`` step; a date series comes back as timestamps, so cast
    it in an outer query). The result is a select item of its own, never
    nested in an expression, with the columns of its row repeated. In DuckDB
    it is ``unnest(generate_series(...))``; the Spark equivalent, which
    SQLGlot writes from it, is ``explode(sequence(start, stop, step))`` (Spark
    allows a generator only as a whole select item). It is the one list
    function of the portable subset (:mod:`crmkit.engine.activity`).
    """
    args = ", ".join(a for a in (start, stop, step) if a is not None)
    return f"unnest(generate_series({args}))"


def one_of(column: str, values, prefix: str) -> tuple[str, dict]:
    """SQL ``column IN ($prefix_0, ...)`` with each value bound on its own (a list parameter would need
    DuckDB's list functions, outside the portable subset), and those parameters; FALSE for no values."""
    params = {f"{prefix}_{i}": v for i, v in enumerate(values)}
    return (f"{column} IN ({', '.join('$' + k for k in params)})" if params else "FALSE"), params


#: CTE bodies replaced by temporary tables while :func:`crmkit.lifecycle.snapshot` is open:
#: (id(connection), as_of) -> {name: (body replaced, replacement)}.
SNAPSHOTS: dict[tuple, dict[str, tuple[str, str]]] = {}


@dataclass(frozen=True)
class Query:
    """Named SQL common table expressions plus the parameters they bind.

    Queries compose with ``+`` (CTEs keep their dependency order; a CTE or a
    parameter defined twice must be identical), so that an audience can join
    tiers, RFM and stages in one engine-side statement. Values are always
    bound as parameters, never formatted into the SQL text.
    """

    ctes: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, object] = field(default_factory=dict)

    def __add__(self, other: Query) -> Query:
        ctes, params = dict(self.ctes), dict(self.params)
        for name, body in other.ctes.items():
            if ctes.setdefault(name, body) != body:
                raise ValueError(f"CTE {name!r} defined twice with different SQL")
        for name, value in other.params.items():
            if params.setdefault(name, value) != value:
                raise ValueError(f"parameter {name!r} bound twice with different values")
        return Query(ctes, params)

    def sql(self, select: str) -> str:
        head = ",\n".join(f"{name} AS (\n{body}\n)" for name, body in self.ctes.items())
        return f"WITH {head}\n{select}" if head else select

    def for_store(self, con: duckdb.DuckDBPyConnection) -> Query:
        """This query as it runs on ``con``: store relations built for its columns, and inside
        :func:`crmkit.lifecycle.snapshot` for this connection and ``as_of`` the snapshot's tables."""
        swaps = SNAPSHOTS.get((id(con), self.params.get("as_of")), {})
        ctes = {}
        for name, body in self.ctes.items():
            if name in swaps and body == swaps[name][0]:
                ctes[name] = swaps[name][1]
            elif isinstance(body, StoreRelation):
                ctes[name] = body.for_store(con)
            else:
                ctes[name] = body
        return Query(ctes, self.params)

    def bound(self, sql: str, **params) -> dict:
        """The parameters ``sql`` uses (a snapshot's tables replace CTEs that used ``$as_of``).

        One scan of ``sql`` for its ``$names``, so that a query binding thousands of values (an
        audience rule's lists) costs no more than its text."""
        used = set(re.findall(r"\$(\w+)", sql))
        return {k: v for k, v in {**self.params, **params}.items() if k in used}

    def df(self, con: duckdb.DuckDBPyConnection, select: str, **params) -> pd.DataFrame:
        """Run ``select`` on top of the CTEs and return the result as a DataFrame."""
        q = self.for_store(con)
        sql = q.sql(select)
        return fetch_df(con, sql, q.bound(sql, **params))

    def execute(self, con: duckdb.DuckDBPyConnection, select: str, **params):
        """Run ``select`` on top of the CTEs; the DuckDB result (for ``fetchone`` and the like)."""
        q = self.for_store(con)
        sql = q.sql(select)
        return con.execute(sql, q.bound(sql, **params))
