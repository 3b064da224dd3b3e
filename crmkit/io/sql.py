"""Small SQL helpers shared by the loader's modules."""
from __future__ import annotations

from ..engine.store import Connection


def scalar(con: Connection, sql: str, params: list | None = None):
    """The single value of a one-row, one-column query (the result is read to its end)."""
    return con.execute(sql, params or []).fetchall()[0][0]


def lit(value) -> str:
    """An SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'
