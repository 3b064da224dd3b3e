"""Reading exports into DuckDB: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), Excel, Parquet, whitespace text.

:func:`inspect` looks at a file's head: its format, encoding, delimiter and
header. :func:`read` then loads every row, as text, into DuckDB and exposes it
as a temporary view with a ``_row`` column (the 1-based data row: header not
counted, blank lines counted) and one column ``c0, c1, ...`` per header field.
Parsing and validation happen afterwards, in SQL.

Encodings are detected by strict decoding of the bytes (UTF-8 with or without
BOM, UTF-16 with BOM, then GB18030, a superset of GBK). A file that DuckDB
cannot read directly (not UTF-8, blank lines, whitespace-separated) is
rewritten once as UTF-8 to a temporary file. Rows with the wrong number of
fields are not dropped: they come back as *malformed* rows for quarantine.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from .kinds import normalize_header
from .sql import ident

TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".prn"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DATA_SUFFIXES = TEXT_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES

_HEAD_BYTES = 1 << 18
_DELIMITERS = ("\t", ",", ";", "|")
_WHITESPACE = "whitespace"
_DATA_LIKE = re.compile(r"^[\s¥￥+\-]*[0-9０-９][0-9０-９,.:/\s\-年月日T]*$")
_MAGIC = {b"PK\x03\x04": "a zip or Excel file", b"PAR1": "a Parquet file", b"%PDF": "a PDF",
          b"\x89PNG": "a PNG image", b"\xd0\xcf\x11\xe0": "an old-style Excel (.xls) file"}


@dataclass
class Source:
    """What :func:`inspect` learned about one file."""

    path: Path
    format: str  # text | excel | parquet
    headers: list[str]
    header: bool = True
    encoding: str | None = None
    delimiter: str | None = None
    cells: list[list] | None = None  # an Excel sheet's cells, read once
    detected: bool = False  # the encoding was detected from the first bytes, not declared


def is_data_file(path: Path) -> bool:
    return path.suffix.lower() in DATA_SUFFIXES


def inspect(path: str | Path, encoding: str | None = None, known_headers: set[str] = frozenset()) -> Source:
    """Format, encoding, delimiter and header of ``path``, from its first bytes.

    ``known_headers`` (normalized names) help tell a header row from data.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file.", path=str(path))
    if path.is_dir():
        raise InputError("is a folder, not a file.", path=str(path))
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        rows = _excel_rows(path)
        return Source(path, "excel", _unique_headers([_cell(v) for v in rows[0]]), cells=rows)
    if suffix in PARQUET_SUFFIXES:
        return Source(path, "parquet", _parquet_columns(path))
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    _check_text(path, head)
    enc = _encoding(path, head, encoding)
    text = _decode(path, head, enc, whole=len(head) < _HEAD_BYTES).lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("is empty.", path=str(path))
    delimiter = _delimiter(lines, suffix)
    first = _split(lines[0], delimiter)
    header = not _looks_like_data(first, known_headers)
    headers = _unique_headers(first) if header else [str(i + 1) for i in range(len(first))]
    return Source(path, "text", headers, header, enc, delimiter, detected=encoding is None)


def _unique_headers(cells: list) -> list[str]:
    """Header cells as names: a blank one is named by its column number, a repeated one gets ``_2``, ``_3``…

    (A trailing delimiter makes a blank last header; exports repeat names such as 金额.) Only the
    first of repeated names is read as its field; the others are reported as ignored columns.
    """
    out, seen = [], set()
    for i, cell in enumerate(cells):
        name = str(cell).strip() if cell is not None else ""
        name = name or f"{i + 1}"
        base, n = name, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        out.append(name)
    return out


def read(con: duckdb.DuckDBPyConnection, source: Source, table: str) -> list[tuple[int, str, str]]:
    """Load every row of ``source`` into DuckDB, as the temporary view ``table`` (drop it with :func:`drop`).

    Returns the malformed rows as ``(row, reason, raw line)``; they are not in ``table``.
    """
    if source.format == "excel":
        return _read_excel(con, source, table)
    if source.format == "parquet":
        return _read_parquet(con, source, table)
    return _read_text(con, source, table)


# -- text ------------------------------------------------------------------------------------

def _check_text(path: Path, head: bytes) -> None:
    if not head.strip():
        raise InputError("is empty.", path=str(path))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"is not a text file: it looks like {what}; give it the right extension.",
                             path=str(path))
    if b"\x00" in head:
        raise InputError("is not a text file (it holds binary data).", path=str(path))


def _encoding(path: Path, head: bytes, declared: str | None) -> str:
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise InputError(f"unknown encoding {declared!r}.", path=str(path)) from None
        return declared
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for enc in ("utf-8", "gb18030"):
        try:
            _cut(head).decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    raise InputError("is neither UTF-8 nor GBK/GB18030 text; pass --encoding.", path=str(path))


def _cut(head: bytes) -> bytes:
    """The head up to its last full line (a multi-byte character may be cut at its end)."""
    cut = head.rfind(b"\n")
    return head[:cut + 1] if cut > 0 else head


def _decode(path: Path, data: bytes, enc: str, whole: bool = True, header: bool = True) -> str:
    try:
        return (data if whole else _cut(data)).decode(enc)
    except UnicodeDecodeError as err:
        row = data[:err.start].count(b"\n") + (0 if header else 1)
        where = "its header" if row == 0 and header else None
        msg = f"is not valid {enc} text{' in ' + where if where else ''}; pass --encoding with the file's encoding."
        raise InputError(msg, path=str(path), row=None if where else row) from None


def _delimiter(lines: list[str], suffix: str) -> str:
    sample = lines[:50]
    for delim in _DELIMITERS:
        counts = Counter(len(_split(ln, delim)) for ln in sample)
        fields, n = counts.most_common(1)[0]
        if fields > 1 and n >= 0.8 * len(sample):
            return delim
    if suffix not in (".csv", ".tsv"):
        counts = Counter(len(ln.split()) for ln in sample)
        fields, n = counts.most_common(1)[0]
        if fields > 1 and n >= 0.8 * len(sample):
            return _WHITESPACE
    return ","


def _split(line: str, delimiter: str) -> list[str]:
    if delimiter == _WHITESPACE:
        return line.split()
    return next(csv.reader([line], delimiter=delimiter))


def _looks_like_data(fields: list[str], known_headers: set[str]) -> bool:
    """True when the first row is data, not a header: no known column name, all numbers or dates."""
    if any(normalize_header(f) in known_headers for f in fields):
        return False
    return all(_DATA_LIKE.match(f) for f in fields if f.strip()) and any(f.strip() for f in fields)


def _read_text(con: duckdb.DuckDBPyConnection, source: Source, table: str) -> list[tuple[int, str, str]]:
    path = source.path
    data = path.read_bytes()
    text = None
    if source.detected and source.encoding == "utf-8":
        # detected from the first bytes only: ASCII at the top and Chinese further down may be GBK
        for enc in ("utf-8", "gb18030"):
            try:
                text, source.encoding = data.decode(enc), enc
                break
            except UnicodeDecodeError:
                continue
    if text is None:  # declared, or neither: _decode names the first row it cannot read
        text = _decode(path, data, source.encoding, header=source.header)
    del data
    text = text.lstrip("\ufeff")
    mixed_newlines = "\r\n" in text and text.count("\n") != text.count("\r\n")
    if mixed_newlines:  # LF and CRLF in one file (a header typed on another machine): the reader wants one
        text = text.replace("\r\n", "\n")
    blank_rows = _blank_rows(text, source.header, spaces=source.delimiter == _WHITESPACE)
    rewrite = (source.encoding != "utf-8" or source.delimiter == _WHITESPACE or bool(blank_rows)
               or mixed_newlines)
    delim, quote = source.delimiter, '"'
    if source.delimiter != _WHITESPACE and text.count('"') % 2:
        _unclosed_quote(path, text, source.delimiter, source.header)
    if source.delimiter == _WHITESPACE:
        text = re.sub(r"[ \t]+", "\t", re.sub(r"(?m)^[ \t]+|[ \t]+$", "", text.replace("\r\n", "\n")))
        delim, quote = "\t", ""
    with tempfile.TemporaryDirectory(prefix="crmkit-") as tmp:
        target = path
        if rewrite:
            target = Path(tmp) / "utf8.csv"
            target.write_bytes(text.encode("utf-8"))
        del text
        cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(source.headers)))
        rejects = f"{table}_rejects"
        con.execute(f"DROP TABLE IF EXISTS {rejects}")
        con.execute(f"DROP TABLE IF EXISTS {rejects}_scan")
        try:
            con.execute(
                f"CREATE TEMP TABLE {table}_read AS SELECT * FROM read_csv(?, columns={{{cols}}}, "
                f"auto_detect=false, header={source.header}, delim=?, quote=?, escape=?, ignore_errors=true, "
                f"store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scan')",
                [str(target), delim, quote, quote])
        except duckdb.Error as err:
            raise InputError(f"cannot be read as delimited text ({_first_line(err)}).", path=str(path)) from None
    bad = con.execute(
        f"SELECT line - {int(source.header)} AS row, any_value(error_type), any_value(csv_line) "
        f"FROM {rejects} GROUP BY line ORDER BY line").fetchall()
    con.execute(f"DROP TABLE IF EXISTS {rejects}")
    con.execute(f"DROP TABLE IF EXISTS {rejects}_scan")
    malformed = [(int(r), _reject_reason(kind, len(source.headers)), (line or "").strip("\r\n"))
                 for r, kind, line in bad]
    _number_rows(con, table, skip=sorted(set(blank_rows) | {m[0] for m in malformed}))
    return malformed


def _unclosed_quote(path: Path, text: str, delimiter: str, header: bool) -> None:
    """Raise for a quote that opens a field and is never closed: the reader would take the rest of
    the file as one value. A quote inside a field (``55" TV``) is a plain character, as for the reader.

    Runs only when the file holds an odd number of quotes; lines without one are skipped.
    """
    inside, opened = False, 0
    for number, line in enumerate(text.split("\n"), 1):
        if '"' not in line:
            continue
        field_start, j, n = not inside, 0, len(line)
        while j < n:
            ch = line[j]
            if inside:
                if ch == '"':
                    if j + 1 < n and line[j + 1] == '"':  # an escaped quote
                        j += 1
                    else:
                        inside = False
            elif ch == '"' and field_start:
                inside, opened = True, number
            field_start = not inside and ch == delimiter
            j += 1
    if inside:
        raise InputError(f"a quote (\") opened on row {opened - int(header)} is never closed, so the rest of "
                         "the file would be read as one value; fix that row.", path=str(path))


def _blank_rows(text: str, header: bool, spaces: bool) -> list[int]:
    """Data row numbers of the blank lines (which DuckDB skips); ``spaces`` counts blanks-only lines."""
    if not spaces and "\n\n" not in text and "\n\r\n" not in text:
        return []
    pattern = r"(?m)^[ \t]*\r?\n" if spaces else r"(?m)^\r?\n"
    rows, pos, line = [], 0, 1
    for off in (m.start() for m in re.finditer(pattern, text)):
        line += text.count("\n", pos, off)
        pos = off
        rows.append(line - int(header))
    return rows


def _reject_reason(error_type: str, n_fields: int) -> str:
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        return f"malformed row: not {n_fields} fields"
    return f"malformed row: {error_type.lower()}"


def _number_rows(con: duckdb.DuckDBPyConnection, table: str, skip: list[int]) -> None:
    """``{table}``: the rows of ``{table}_read`` with their data row numbers, leaving out the ``skip`` rows.

    Rows are numbered in file order. Without rows to skip, ``{table}`` is a view (no copy).
    """
    low, high, n = con.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {table}_read").fetchall()[0]
    # rowids are consecutive in file order (in a transaction they start at a large base, not 0)
    order = f"rowid - {int(low or 0)} + 1" if n and high - low + 1 == n else "row_number() OVER (ORDER BY rowid)"
    if not skip:
        con.execute(f"CREATE TEMP VIEW {table} AS SELECT {order} AS _row, * FROM {table}_read")
        return
    con.register(f"{table}_skip", pa.table({"r": pa.array(skip, pa.int64())}))
    con.execute(
        f"CREATE TEMP TABLE {table}_data AS SELECT k._row, t.* EXCLUDE (_rid) FROM "
        f"(SELECT {order} AS _rid, * FROM {table}_read) t "
        f"JOIN (SELECT r AS _row, row_number() OVER (ORDER BY r) AS _rid FROM range(1, ?) s(r) "
        f"WHERE r NOT IN (SELECT r FROM {table}_skip)) k USING (_rid) ORDER BY k._row",
        [n + len(skip) + 1])
    con.unregister(f"{table}_skip")
    con.execute(f"DROP TABLE {table}_read")
    con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {table}_data")


def drop(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop what :func:`read` created for ``table``: a view over ``{table}_read`` or ``{table}_data``."""
    con.execute(f"DROP VIEW {table}")
    con.execute(f"DROP TABLE IF EXISTS {table}_read")
    con.execute(f"DROP TABLE IF EXISTS {table}_data")


# -- Excel -----------------------------------------------------------------------------------

def _excel_rows(path: Path) -> list[list]:
    """The cells of the first sheet; its first row is the header."""
    from python_calamine import CalamineWorkbook

    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception as err:  # calamine raises its own types for corrupt or encrypted books
        raise InputError(f"cannot be read as an Excel workbook ({_first_line(err)}).", path=str(path)) from None
    if not rows or not any(str(v).strip() for v in rows[0]):
        raise InputError("is empty (its first sheet has no header row).", path=str(path))
    return rows


def _cell(v) -> str | None:
    if v is None or v == "":
        return None
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    return str(v)


def _text_column(values) -> pa.Array:
    """One column of cells as text: whole columns of one type are converted by Arrow, mixed ones cell by cell."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_cell(v) for v in values], pa.string())
    if pa.types.is_floating(arr.type):  # Excel keeps numbers as floats: 13812345678.0 is a phone, 1.0 a count
        valid = arr.drop_null()
        if not len(valid) or (pc.all(pc.equal(valid, pc.floor(valid))).as_py()
                              and pc.max(pc.abs(valid)).as_py() < 1e15):
            arr = arr.cast(pa.int64())
    return arr.cast(pa.string())


def _read_excel(con: duckdb.DuckDBPyConnection, source: Source, table: str) -> list[tuple[int, str, str]]:
    rows = source.cells[1:]
    source.cells = None
    width = len(source.headers)
    numbers = [i + 1 for i, r in enumerate(rows) if any(v not in (None, "") for v in r)]
    keep = [rows[i - 1] for i in numbers] if len(numbers) < len(rows) else rows
    columns = list(zip(*keep)) if keep else [()] * width
    cols = {"_row": pa.array(numbers, pa.int64())}
    for j in range(width):
        cols[f"c{j}"] = _text_column(columns[j] if j < len(columns) else [None] * len(keep))
    con.register(f"{table}_arrow", pa.table(cols))
    con.execute(f"CREATE TEMP TABLE {table}_data AS SELECT * FROM {table}_arrow")
    con.unregister(f"{table}_arrow")
    con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {table}_data")
    return []


# -- Parquet ---------------------------------------------------------------------------------

def _parquet_columns(path: Path) -> list[str]:
    try:
        with duckdb.connect() as con:
            return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    except duckdb.Error as err:
        raise InputError(f"cannot be read as Parquet ({_first_line(err)}).", path=str(path)) from None


def _read_parquet(con: duckdb.DuckDBPyConnection, source: Source, table: str) -> list[tuple[int, str, str]]:
    cols = ", ".join(f"CAST({ident(h)} AS VARCHAR) AS c{i}" for i, h in enumerate(source.headers))
    try:
        con.execute(f"CREATE TEMP TABLE {table}_data AS SELECT file_row_number + 1 AS _row, {cols} "
                    f"FROM read_parquet(?, file_row_number=true)", [str(source.path)])
    except duckdb.Error as err:
        raise InputError(f"cannot be read as Parquet ({_first_line(err)}).", path=str(source.path)) from None
    con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {table}_data")
    return []


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
