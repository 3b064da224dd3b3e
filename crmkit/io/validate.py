"""Parsing and row-level checks, as DuckDB SQL over the text read from an export.

Each field of a kind is parsed by one SQL expression (dates in the usual
Chinese export formats, amounts with ``¥``/thousands separators/full-width
digits, phones with ``+86``/``86`` prefixes, spaces and dashes). A row whose
value cannot be parsed, or is required and missing, or is a date in the
future, gets a *reason* and goes to quarantine; the first reason wins.

Reasons are fixed phrases, so quarantine can be grouped by them:
``missing member id``, ``missing value: <field>``, ``unparseable date: <field>``,
``unparseable number: <field>``, ``invalid phone``, ``unknown value: <field>``,
``future date: <field>``; kinds add their own (see :mod:`crmkit.io.load`).
"""
from __future__ import annotations

import datetime as dt

import duckdb

from .kinds import VOCABULARIES, Field, Mapping
from .sql import lit

#: Date and time layouts tried in order (``%m``/``%d`` also read single digits: ``2024/1/31``).
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y%m%d %H:%M:%S",
    "%Y%m%d%H%M%S", "%Y.%m.%d", "%Y.%m.%d %H:%M:%S", "%Y年%m月%d日", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M",
)

_FORMATS = "[" + ", ".join(map(lit, DATE_FORMATS)) + "]"
_FULL_WIDTH = "０１２３４５６７８９．，－＋：／　"
_HALF_WIDTH = "0123456789.,-+:/ "
_MONEY_MARKS = ("¥", "￥", "元", "，")


def _narrow(col: str) -> str:
    """Full-width digits and punctuation as ASCII, trimmed, empty as NULL.

    The translation only runs on values that are not plain ASCII, which keeps it cheap.
    """
    wide = f"translate({col}, '{_FULL_WIDTH}', '{_HALF_WIDTH}')"
    return f"nullif(trim(CASE WHEN strlen({col}) = length({col}) THEN {col} ELSE {wide} END), '')"


def parse_sql(f: Field, col: str) -> str:
    """The SQL expression that parses text column ``col`` as field ``f``: a first step, see :func:`finish_sql`.

    Dates and numbers try a plain cast first; the slower clean-up only runs on values it cannot read.
    """
    if f.parse in ("timestamp", "date"):
        ts = f"coalesce(try_cast({col} AS TIMESTAMP), try_strptime({_narrow(col)}, {_FORMATS}))"
        return f"CAST({ts} AS DATE)" if f.parse == "date" else ts
    if f.parse in ("number", "integer"):
        text = col
        for mark in _MONEY_MARKS:  # removed before the full-width check, so ¥1,299.00 stays on the fast path
            text = f"replace({text}, '{mark}', '')"
        text = _narrow(text)
        for mark in (",", "$", " ", "RMB", "CNY"):
            text = f"replace({text}, '{mark}', '')"
        return f"coalesce(try_cast({col} AS DOUBLE), try_cast({text} AS DOUBLE))"
    if f.parse == "phone":
        # a spreadsheet that saved the number as a float: 13812345678.0, or 1.3812345678E+10 when all
        # eleven digits survive (1.38E+10 lost them and stays invalid)
        v = _narrow(col)
        return (f"CASE WHEN regexp_full_match({v}, '[0-9]+\\.0+') THEN regexp_replace({v}, '\\.0+$', '') "
                f"WHEN regexp_full_match({v}, '1\\.[0-9]{{10}}[eE]\\+?10') "
                f"THEN CAST(CAST(CAST({v} AS DOUBLE) AS BIGINT) AS VARCHAR) "
                f"ELSE regexp_replace({v}, '[^0-9]', '', 'g') END")
    text = f"nullif(trim({col}), '')"
    if f.parse == "text":
        return text
    if f.parse == "id":  # a numeric card number saved as a float (880010179293.0) is the same card
        return f"CASE WHEN regexp_full_match({text}, '[0-9]+\\.0+') THEN regexp_replace({text}, '\\.0+$', '') " \
               f"ELSE {text} END"
    if f.parse in VOCABULARIES:
        return f"lower({text})"
    raise ValueError(f"unknown parser {f.parse!r} for field {f.name}")


def finish_sql(f: Field, name: str) -> str:
    """The second step on the result ``name`` of :func:`parse_sql`: NULL for values that do not qualify."""
    if f.parse == "number":
        return f"CASE WHEN isfinite({name}) THEN {name} END"
    if f.parse == "integer":
        return f"CASE WHEN {name} = round({name}) AND abs({name}) < 2e9 THEN CAST({name} AS INTEGER) END"
    if f.parse == "phone":  # digits only by now: an 11-digit mainland mobile, after a +86 / 0086 prefix
        local = (f"CASE length({name}) WHEN 11 THEN {name} WHEN 13 THEN CASE WHEN starts_with({name}, '86') "
                 f"THEN substr({name}, 3) END WHEN 15 THEN CASE WHEN starts_with({name}, '0086') "
                 f"THEN substr({name}, 5) END END")
        return f"CASE WHEN regexp_full_match({local}, '1[3-9][0-9]{{9}}') THEN {local} END"
    if f.parse in VOCABULARIES:  # lower-cased by now
        words, strict = VOCABULARIES[f.parse]
        whens = " ".join(f"WHEN {name} IN ({', '.join(lit(w) for w in syn)}) THEN {lit(canon)}"
                         for canon, syn in words.items())
        return f"CASE {whens} ELSE {'NULL' if strict or f.parse == 'gender' else name} END"
    return name


def _bad_reason(f: Field) -> str | None:
    """The reason for a value that is present but does not parse; None when anything goes."""
    if f.parse in ("timestamp", "date"):
        return f"unparseable date: {f.name}"
    if f.parse in ("number", "integer"):
        return f"unparseable number: {f.name}"
    if f.parse == "phone":
        return "invalid phone"
    if f.parse in VOCABULARIES and VOCABULARIES[f.parse][1]:
        return f"unknown value: {f.name}"
    return None


def stage(con: duckdb.DuckDBPyConnection, mapping: Mapping, raw: str, out: str, now: dt.datetime) -> None:
    """Create temp view ``out``: ``_row``, every field parsed, and ``_reason`` (NULL when the row is good).

    Fields the file does not carry are NULL columns of the right type. A view,
    so that the loader materializes the rows once, with its own checks.
    """
    kind = mapping.kind
    inner, middle, checks = ["_row"], ["_row"], []
    if mapping.identities:
        checks.append((" AND ".join(f'"{f}" IS NULL' for f in mapping.identities), "missing member id"))
    for f in kind.fields:
        if f.name not in mapping.columns:
            middle.append(f'CAST(NULL AS {_sql_type(f)}) AS "{f.name}"')
            continue
        col = f"c{mapping.columns[f.name]}"
        inner += [f'{parse_sql(f, col)} AS "{f.name}"', f'{col} AS "_in_{f.name}"']
        middle += [f'{finish_sql(f, chr(34) + f.name + chr(34))} AS "{f.name}"', f'"_in_{f.name}"']
    present = {f.name: f"(\"_in_{f.name}\" IS NOT NULL AND trim(\"_in_{f.name}\") <> '')" for f in kind.fields}
    mapped = [f for f in kind.fields if f.name in mapping.columns]
    checks += [(f'"{f.name}" IS NULL AND NOT {present[f.name]}', f"missing value: {f.name}")
               for f in mapped if f.required]
    checks += [(f'"{f.name}" IS NULL AND {present[f.name]}', _bad_reason(f)) for f in mapped if _bad_reason(f)]
    for f in mapped:
        if f.no_future:
            limit = f"DATE '{now.date().isoformat()}'" if f.parse == "date" else f"TIMESTAMP '{now:%Y-%m-%d %H:%M:%S}'"
            checks.append((f'"{f.name}" > {limit}', f"future date: {f.name}"))
    reason = "CASE " + " ".join(f"WHEN {c} THEN {lit(r)}" for c, r in checks) + " END" if checks else "NULL"
    keep = ", ".join(f'"{f.name}"' for f in kind.fields)
    con.execute(f"CREATE TEMP VIEW {out} AS SELECT _row, {keep}, CAST({reason} AS VARCHAR) AS _reason "
                f"FROM (SELECT {', '.join(middle)} FROM (SELECT {', '.join(inner)} FROM {raw}))")


def _sql_type(f: Field) -> str:
    return {"timestamp": "TIMESTAMP", "date": "DATE", "number": "DOUBLE", "integer": "INTEGER"}.get(f.parse, "VARCHAR")
