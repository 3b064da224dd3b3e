"""Reading exports into DuckDB: CSV (UTF-8, UTF-8 with BOM, GBK/GB18030), Excel, Parquet, whitespace text.

:func:`inspect` looks at a file's head: its format, encoding, delimiter and
header. :func:`read` then loads every row, as text, into DuckDB and exposes it
as a temporary view with a ``_row`` column (the 1-based data row: header not
counted, blank lines counted) and one column ``c0, c1, ...`` per header field.
Parsing and validation happen afterwards, in SQL.

Encodings
---------
An encoding given with ``--encoding`` is used as it is. Otherwise a byte-order
mark decides (UTF-8 or UTF-16), and without one the *whole file* is decoded
strictly both as UTF-8 and as GB18030 (a superset of GBK); the *rule*:

1. A file that only one of them decodes is in that one (a file of ASCII only is UTF-8,
   and so is valid UTF-8 whose every character is common, cost 0 below: no reading can
   be more plausible).
2. A file that both decode is in the one whose text is more plausible: every
   non-ASCII character costs 0 when it is common (a character of GB2312, the
   3,755 + 3,008 common hanzi with Chinese punctuation; a Latin-1 letter; common
   punctuation; an emoji), 1 when it is a rare Latin-1 sign (÷ ¤), 2 otherwise
   (a hanzi outside GB2312, Latin Extended, Hebrew, private use...), summed over
   the whole file. GB18030 wins only with a strictly lower cost, so UTF-8 wins
   ties. The GBK bytes of 女装 are also valid UTF-8, "Ůװ": Chinese text costs 0
   and those letters 4, so the file is GB18030. UTF-8 Chinese read as GB18030
   gives rare hanzi and private-use characters, so it stays UTF-8, and so does
   "Dvořák" (2 for ř, against 2 for the rare hanzi of its GB18030 reading).

:func:`inspect` applies the rule to the file's head, to read its header;
:func:`read` applies it again to the whole file, which decides (a header that
would read differently is refused). The choice and the rule that made it are
kept on :class:`Source` and stated in the load summary.

Rows
----
A file that DuckDB cannot read directly (not UTF-8, blank lines,
whitespace-separated) is rewritten once as UTF-8 to a temporary file. Rows with
the wrong number of fields are not dropped: they come back as *malformed* rows
for quarantine. Neither are lines longer than :data:`MAX_LINE_BYTES` (DuckDB
drops a line longer than its buffer without a word): they are cut out before
the file is read and come back as malformed rows too, so rows = accepted +
rejected holds for every file. As a backstop, the rows read are checked against
the file's records (its lines, less the line breaks inside quoted fields,
:func:`_quoted_newlines`): a file of which the reader dropped a row is refused in
one sentence. A first line longer than :data:`MAX_HEADER_CHARS` is refused in one
sentence.

Workbooks
---------
A ``.xlsx``/``.xlsm`` is read whole, as the rectangle from A1 to its farthest
value. Before it is read, what it declares and holds is checked with
:mod:`zipfile`, streaming (:func:`_check_workbook`): a sheet whose rectangle is
beyond :data:`MAX_EXCEL_CELLS`, shared strings declared beyond that number, or
a part beyond :data:`MAX_EXCEL_PART_BYTES` uncompressed, is refused in one
sentence naming the file, instead of the reader aborting the process.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import re
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.store import Connection, EngineError, scratch
from ..errors import InputError
from .kinds import normalize_header
from .sql import ident

TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".dat", ".prn"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".ods"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DATA_SUFFIXES = TEXT_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES

_HEAD_BYTES = 1 << 18
#: A data line longer than this (in bytes) is quarantined as malformed, never read (nor dropped).
MAX_LINE_BYTES = 1 << 20
#: A header longer than this (in characters) is refused: no export has one.
MAX_HEADER_CHARS = 1 << 16
_DELIMITERS = ("\t", ",", ";", "|")
_WHITESPACE = "whitespace"
_DATA_LIKE = re.compile(r"^[\s¥￥£€₩$+\-]*(?:[A-Z]{1,3}\$)?[0-9０-９][0-9０-９,.:/\s\-年月日T]*$")
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
    detected: bool = False  # the encoding was detected, not declared
    encoding_rule: str | None = None  # why this encoding, in words


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
    if len(head) == _HEAD_BYTES and b"\n" not in head:
        raise InputError(f"its first line is longer than {MAX_HEADER_CHARS:,} characters, which no export "
                         f"header is; check that this is the right file.", path=str(path))
    enc, rule = _encoding(path, head, encoding)
    text = _decode(path, head, enc, whole=len(head) < _HEAD_BYTES).lstrip("\ufeff")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError("is empty.", path=str(path))
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    if len(first_line) > MAX_HEADER_CHARS:
        raise InputError(f"its first line is longer than {MAX_HEADER_CHARS:,} characters, which no export "
                         f"header is; check that this is the right file.", path=str(path))
    delimiter = _delimiter(lines, suffix)
    first = _split(lines[0], delimiter)
    header = not _looks_like_data(first, known_headers)
    headers = _unique_headers(first) if header else [str(i + 1) for i in range(len(first))]
    return Source(path, "text", headers, header, enc, delimiter, detected=encoding is None, encoding_rule=rule)


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


def read(con: Connection, source: Source, table: str) -> list[tuple[int, str, str]]:
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


def _encoding(path: Path, head: bytes, declared: str | None) -> tuple[str, str]:
    """The encoding of the file and the rule that chose it (see the module docstring)."""
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise InputError(f"unknown encoding {declared!r}.", path=str(path)) from None
        return declared, "declared with --encoding"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "it starts with a UTF-8 byte-order mark"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "it starts with a UTF-16 byte-order mark"
    head = head if len(head) < _HEAD_BYTES else _cut(head)
    enc, rule, _ = _choose(path, head, whole=False)
    return enc, rule


_CANDIDATES = ("utf-8", "gb18030")


def _choose(path: Path, data: bytes, whole: bool) -> tuple[str, str, str]:
    """Decode ``data`` strictly as UTF-8 and as GB18030; decide by validity, then plausibility.

    Returns the encoding, the rule that chose it in words, and the text. ``whole`` says whether
    ``data`` is the whole file or its head (the head decides the header; the whole file decides).
    """
    where = "the whole file" if whole else "the head of the file"
    if data.isascii():
        return "utf-8", "it is all ASCII" if whole else "its head is all ASCII", data.decode("ascii")
    texts, seen = {}, {}
    try:  # UTF-8 first: a GBK file fails it within its first Chinese characters
        texts["utf-8"] = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # the bytes >= 0x80 of UTF-8 are exactly its multi-byte characters: count those only
        high = np.frombuffer(data, np.uint8)
        seen["utf-8"] = _char_counts(high[high >= 0x80].tobytes().decode("utf-8"))
        if not _cost(seen["utf-8"]):  # nothing rare: GB18030 cannot read it more plausibly
            return "utf-8", (f"{where} is valid UTF-8 of common characters only ({_sample(seen['utf-8'])}), "
                             f"which no other reading betters"), texts["utf-8"]
    try:
        texts["gb18030"] = data.decode("gb18030")
    except UnicodeDecodeError:
        pass
    if not texts:
        raise InputError("is neither UTF-8 nor GBK/GB18030 text; pass --encoding.", path=str(path))
    if len(texts) == 1:
        enc = next(iter(texts))
        other = next(e for e in _CANDIDATES if e != enc)
        return enc, f"{where} is valid {_NAMES[enc]} and not valid {_NAMES[other]}", texts[enc]
    seen["gb18030"] = _char_counts(texts["gb18030"])
    cost = {enc: _cost(seen[enc]) for enc in _CANDIDATES}
    enc = "gb18030" if cost["gb18030"] < cost["utf-8"] else "utf-8"
    other = next(e for e in _CANDIDATES if e != enc)
    better = "the more plausible text" if cost[enc] < cost[other] else "text as plausible (UTF-8 wins a tie)"
    return enc, (f"{where} decodes both as UTF-8 and as GB18030, and {_NAMES[enc]} gives {better} "
                 f"({_sample(seen[enc])} rather than {_sample(seen[other])}; implausibility "
                 f"{cost[enc]:,} against {cost[other]:,})"), texts[enc]


def _cost(chars: Counter) -> int:
    return sum(_implausibility(ch) * n for ch, n in chars.items())


def _char_counts(text: str) -> Counter:
    """How often each non-ASCII character occurs in ``text`` (counted with numpy, in slices)."""
    counts = np.zeros(0x110000, np.int64)
    for i in range(0, len(text), 1 << 23):
        points = np.frombuffer(text[i:i + (1 << 23)].encode("utf-32-le"), np.uint32)
        counts += np.bincount(points[points >= 0x80], minlength=0x110000)
    return Counter({chr(c): int(counts[c]) for c in np.flatnonzero(counts)})


_NAMES = {"utf-8": "UTF-8", "gb18030": "GB18030"}


def _sample(chars: Counter, n: int = 4) -> str:
    return "".join(ch for ch, _ in chars.most_common(n)) or "ASCII"


#: Latin-1 characters common in exports: letters of Western names, and ¥ £ · ° © ® « » § ± and no-break space.
_LATIN1_COMMON = frozenset(chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)) | frozenset(
    "\u00a0£¥§©«®°±·»")


def _implausibility(ch: str) -> int:
    """0 for a common character of Chinese or Western text (a character of GB2312, a Latin-1 letter, common
    punctuation, an emoji of a nickname), 1 for a rare Latin-1 sign (÷ ¤ ¦...), 2 otherwise (a rare hanzi,
    Latin Extended, Hebrew, private use...)."""
    o = ord(ch)
    if ch in _LATIN1_COMMON or 0x2000 <= o <= 0x206F or 0x20A0 <= o <= 0x20CF or 0x2600 <= o <= 0x27BF \
            or 0x1F000 <= o <= 0x1FAFF or o == 0xFE0F:
        return 0
    if 0x80 <= o <= 0xFF:
        return 1
    try:
        ch.encode("gb2312")
        return 0
    except UnicodeEncodeError:
        return 2


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
    sample = [ln for ln in lines[:50] if len(ln) <= MAX_HEADER_CHARS] or lines[:1]
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


def _read_text(con: Connection, source: Source, table: str) -> list[tuple[int, str, str]]:
    path = source.path
    data = path.read_bytes()
    data, long_rows = _cut_long_lines(path, data, source.header, source.encoding)
    if source.detected and source.encoding in _CANDIDATES:  # the head chose; the whole file decides
        enc, source.encoding_rule, text = _choose(path, data, whole=True)
        if enc != source.encoding:
            _same_header(source, text, enc)
            source.encoding = enc
    else:  # declared, or a byte-order mark: _decode names the first row it cannot read
        text = _decode(path, data, source.encoding, header=source.header)
    del data
    text = text.lstrip("\ufeff")
    # a CR is looked for first: one character is found much faster than a pair, and most files have none
    mixed_newlines = "\r" in text and "\r\n" in text and text.count("\n") != text.count("\r\n")
    if mixed_newlines:  # LF and CRLF in one file (a header typed on another machine): the reader wants one
        text = text.replace("\r\n", "\n")
    # lines whose line break is inside a quoted field: such a record spans lines
    spanned = _quoted_newlines(path, text, source.delimiter, source.header) \
        if source.delimiter != _WHITESPACE and '"' in text else np.zeros(0, np.int64)
    blank_rows = _blank_rows(text, source.header, spaces=source.delimiter == _WHITESPACE, spanned=spanned)
    if long_rows:  # cut to empty lines above: malformed rows, not blank ones
        blank_rows = [r for r in blank_rows if r not in long_rows]
    rewrite = (source.encoding != "utf-8" or source.delimiter == _WHITESPACE or bool(blank_rows)
               or mixed_newlines or bool(long_rows))
    # the rows read are checked against the records (lines, less the line breaks inside quoted fields),
    # so none is lost silently
    lines = None
    crs = text.count("\r")
    if not crs or crs == text.count("\r\n"):  # a lone CR ends a record for the reader, not here
        lines = (text.count("\n") + (0 if not text or text.endswith("\n") else 1) - int(source.header)
                 - len(spanned))
    delim, quote = source.delimiter, '"'
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
        except EngineError as err:
            raise InputError(f"cannot be read as delimited text ({_first_line(err)}).", path=str(path)) from None
    bad = con.execute(
        f"SELECT line - {int(source.header)} AS row, any_value(error_type), any_value(csv_line) "
        f"FROM {rejects} GROUP BY line ORDER BY line").fetchall()
    con.execute(f"DROP TABLE IF EXISTS {rejects}")
    con.execute(f"DROP TABLE IF EXISTS {rejects}_scan")
    malformed = [(int(r), _reject_reason(kind, len(source.headers)), (line or "").strip("\r\n"))
                 for r, kind, line in bad]
    malformed = sorted(malformed + [(r, f"malformed row: line longer than {MAX_LINE_BYTES:,} bytes", line)
                                    for r, line in long_rows.items()])
    if lines is not None:
        read = con.execute(f"SELECT count(*) FROM {table}_read").fetchall()[0][0]
        if read + len(malformed) + len(blank_rows) != lines:
            unit = "records" if len(spanned) else "lines"
            raise InputError(f"only {read + len(malformed) + len(blank_rows):,} of its {lines:,} {unit} could be "
                             f"read as rows, so nothing was loaded; check the file's format.", path=str(path))
    _number_rows(con, table, skip=sorted(set(blank_rows) | {m[0] for m in malformed}))
    return malformed


def _cut_long_lines(path: Path, data: bytes, header: bool, encoding: str) -> tuple[bytes, dict[int, str]]:
    """``data`` with every data line longer than :data:`MAX_LINE_BYTES` emptied, and those lines' data
    row numbers with the start of each line (the first 200 characters, for quarantine).

    DuckDB would drop such a line without a word when it exceeds its buffer.
    """
    if len(data) <= MAX_LINE_BYTES or encoding.startswith("utf-16"):
        return data, {}
    # a line longer than the limit covers a whole block of half the limit (blocks from the start of the
    # data): when every block holds a line break (found at C speed), no line is too long
    half = max(MAX_LINE_BYTES // 2, 1)
    if all(data.find(b"\n", at, at + half) >= 0 for at in range(0, len(data) - half + 1, half)):
        return data, {}
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    long = np.flatnonzero(stops - starts > MAX_LINE_BYTES)
    if not len(long):
        return data, {}
    first_data = 1 if header else 0
    if header and long[0] == 0:
        raise InputError(f"its first line is longer than {MAX_LINE_BYTES:,} bytes, which no export header is; "
                         f"check that this is the right file.", path=str(path))
    parts, rows, pos = [], {}, 0
    for i in long.tolist():
        a, b = int(starts[i]), int(stops[i])
        parts.append(data[pos:a])
        pos = b
        rows[i + 1 - first_data] = data[a:a + 800].decode(encoding, errors="replace")[:200] + "…"
    parts.append(data[pos:])
    return b"".join(parts), rows


def _same_header(source: Source, text: str, enc: str) -> None:
    """Raise when the header read in ``enc`` differs from the header read from the file's head."""
    if not source.header:
        return
    first = next((ln for ln in text.lstrip("\ufeff").splitlines() if ln.strip()), "")
    if _unique_headers(_split(first, source.delimiter)) != source.headers:
        raise InputError(f"its header reads differently as {_NAMES.get(source.encoding, source.encoding)} and as "
                         f"{_NAMES.get(enc, enc)}; pass --encoding.", path=str(source.path))


def _quoted_newlines(path: Path, text: str, delimiter: str, header: bool) -> np.ndarray:
    """The (1-based) numbers of the lines whose line break lies inside a quoted field, in order (a quoted
    field may span lines: one record, many lines). Raise for a quote that opens a field and is never
    closed: the reader would take the rest of the file as one value.

    A quote is a field's opening or closing one, or one of a doubled pair, when it follows a delimiter or
    a line break or precedes one, or is next to another quote. When every quote of the file is such a
    quote and their number is even, a line break is inside a field exactly when an odd number of quotes
    come before it, counted with numpy. Otherwise (a quote inside a field, ``55" TV``, which is a plain
    character, as for the reader), the lines with a quote are read character by character.
    """
    raw = np.frombuffer(text.encode("utf-8"), np.uint8)
    quotes = np.flatnonzero(raw == ord('"'))
    if len(quotes) % 2 == 0:
        d = ord(delimiter)
        prev = np.where(quotes > 0, raw[quotes - 1], ord("\n"))
        nxt = np.where(quotes + 1 < len(raw), raw[np.minimum(quotes + 1, len(raw) - 1)], ord("\n"))
        placed = ((prev == d) | (prev == ord("\n")) | (prev == ord('"')) | (nxt == d) | (nxt == ord("\n"))
                  | (nxt == ord("\r")) | (nxt == ord('"')))
        if placed.all():
            return np.flatnonzero(np.searchsorted(quotes, np.flatnonzero(raw == ord("\n"))) % 2) + 1
    del raw
    inside, opened, spanned = False, 0, []
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        field_start, j, n = not inside, 0, len(line) if '"' in line else 0
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
        if inside and number < len(lines):
            spanned.append(number)
    if inside:
        raise InputError(f"a quote (\") opened on row {opened - int(header)} is never closed, so the rest of "
                         "the file would be read as one value; fix that row.", path=str(path))
    return np.array(spanned, np.int64)


def _blank_rows(text: str, header: bool, spaces: bool, spanned: np.ndarray) -> list[int]:
    """Data row numbers of the blank lines (which DuckDB skips); ``spaces`` counts blanks-only lines.

    A blank line inside a quoted field (after a line of ``spanned``, :func:`_quoted_newlines`) is part
    of its record, not a row; a record that spans lines is one row.
    """
    if not spaces and "\n\n" not in text and ("\r" not in text or "\n\r\n" not in text):
        return []
    pattern = r"(?m)^[ \t]*\r?\n" if spaces else r"(?m)^\r?\n"
    rows, pos, line = [], 0, 1
    for off in (m.start() for m in re.finditer(pattern, text)):
        line += text.count("\n", pos, off)
        pos = off
        before = int(np.searchsorted(spanned, line))  # lines before this one that end inside a field
        if before and spanned[before - 1] == line - 1:
            continue
        rows.append(line - int(header) - before)
    return rows


def _reject_reason(error_type: str, n_fields: int) -> str:
    if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        return f"malformed row: not {n_fields} fields"
    if error_type == "LINE SIZE OVER MAXIMUM":
        return f"malformed row: line longer than {MAX_LINE_BYTES:,} bytes"
    return f"malformed row: {error_type.lower()}"


def _number_rows(con: Connection, table: str, skip: list[int]) -> None:
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


def drop(con: Connection, table: str) -> None:
    """Drop what :func:`read` created for ``table``: a view over ``{table}_read`` or ``{table}_data``."""
    con.execute(f"DROP VIEW {table}")
    con.execute(f"DROP TABLE IF EXISTS {table}_read")
    con.execute(f"DROP TABLE IF EXISTS {table}_data")


# -- Excel -----------------------------------------------------------------------------------

#: A sheet is read as the whole rectangle from A1 to its farthest value, held in memory at once (the
#: reader asks for 32 bytes a cell): a sheet whose rectangle holds more cells than this is refused before
#: it is read. A lone value in cell XFD1048576 of a 5 KB file would ask for 512 GiB and abort the process.
#: 50 million cells are 1,048,576 rows (Excel's most) of 47 columns.
MAX_EXCEL_CELLS = 50_000_000
#: A workbook part (a sheet, the shared strings) larger than this uncompressed is refused.
MAX_EXCEL_PART_BYTES = 4 << 30
_ZIPPED_EXCEL = {".xlsx", ".xlsm"}
_XML_CHUNK = 1 << 24
_SHEET_PART = re.compile(r"xl/(worksheets|dialogsheets|macrosheets)/[^/]+\.xml", re.IGNORECASE)


def _check_workbook(path: Path) -> None:
    """Refuse, in one sentence, a .xlsx/.xlsm workbook that declares or holds more than the reader can hold.

    Read with :mod:`zipfile` before the workbook is opened, streaming: the uncompressed size that each
    sheet and the shared strings declare (at most :data:`MAX_EXCEL_PART_BYTES`); the ``count`` and
    ``uniqueCount`` the shared strings declare (the reader reserves room for that many at once; at most
    :data:`MAX_EXCEL_CELLS`, since each string is in some cell); and the extent of every sheet's values
    (:func:`_sheet_extent`; at most :data:`MAX_EXCEL_CELLS`). A sheet's declared ``<dimension ref=...>``
    does not decide, since the reader sizes a sheet by its values, not by what it declares: a sheet that
    declares ``A1:XFD1048576`` because of one formatted but empty far cell loads, and one that declares
    ``A1:B2`` but holds a value in XFD1048576 is refused.
    """
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a zip: the reader's own error names the file
    with book:
        for info in book.infolist():
            shared = info.filename.lower() == "xl/sharedstrings.xml"
            if not (shared or _SHEET_PART.fullmatch(info.filename)):
                continue
            if info.file_size > MAX_EXCEL_PART_BYTES:
                raise InputError(f"its part {info.filename} is {info.file_size:,} bytes uncompressed, more than "
                                 f"the {MAX_EXCEL_PART_BYTES:,} crmkit reads from a workbook; save the sheet as "
                                 f"CSV.", path=str(path))
            if shared:
                with book.open(info) as fh:
                    _check_shared_strings(path, fh.read(4096))
                continue
            rows, cols = _sheet_extent(lambda: book.open(info))
            if rows * cols > MAX_EXCEL_CELLS:
                raise InputError(f"its sheet {info.filename} has values as far as row {rows:,} and column "
                                 f"{_column_name(cols)}, so reading it means {rows:,} rows × {cols:,} columns "
                                 f"({rows * cols:,} cells), more than the {MAX_EXCEL_CELLS:,} crmkit reads from "
                                 f"a sheet; delete the cells beyond the data, or save the sheet as CSV.",
                                 path=str(path))


def _check_shared_strings(path: Path, head: bytes) -> None:
    root = re.search(rb"<(?:[\w.-]+:)?sst\b[^>]*>", head)
    for attr in ("uniqueCount", "count"):
        m = re.search(rb"\s" + attr.encode() + rb"""\s*=\s*["']\s*([0-9]+)""", root.group(0)) if root else None
        if m and int(m.group(1)) > MAX_EXCEL_CELLS:
            raise InputError(f"it declares {int(m.group(1)):,} shared strings ({attr}), more than the "
                             f"{MAX_EXCEL_CELLS:,} cells crmkit reads from a sheet; save the sheet as CSV.",
                             path=str(path))


def _column_name(col: int) -> str:
    """``1`` → ``A``, ``16384`` → ``XFD``."""
    name = ""
    while col > 0:
        col, rem = divmod(col - 1, 26)
        name = chr(65 + rem) + name
    return name


def _xml_chunks(open_part):
    """The XML of a part in chunks of about :data:`_XML_CHUNK` bytes, each cut before its last ``<``
    (so no tag is split), with the chunk's prefix of element names (``x:`` of ``<x:c>``)."""
    with open_part() as fh:
        tail, prefix = b"", None
        while chunk := fh.read(_XML_CHUNK):
            data = tail + chunk
            if prefix is None:
                root = re.search(rb"<([\w.-]+:)?worksheet\b", data[:1 << 16])
                prefix = (root.group(1) or b"") if root else b""
            cut = data.rfind(b"<")
            cut = cut if cut > 0 else len(data)
            data, tail = data[:cut], data[cut:]
            yield data, prefix
        if tail:
            yield tail, prefix or b""


def _sheet_extent(open_part) -> tuple[int, int]:
    """``(rows, columns)`` of the rectangle from A1 to the farthest cells of a sheet that hold a value.

    A cell holds a value when it has a non-empty ``<v>`` or an inline string ``<is>``; the reader
    skips the others (``<c r="XFD1048576" s="1"/>``). The sheet is streamed and scanned with numpy
    for its cell references ``r="B7"``; only when the rectangle of all its cells is beyond
    :data:`MAX_EXCEL_CELLS` is it streamed again for its values, each of which belongs to the last
    reference before it. A sheet whose cells do not all carry a reference (such a cell takes the
    next position) is scanned tag by tag instead (:func:`_sheet_extent_by_tags`).
    """
    top_row = top_col = 0
    for data, prefix in _xml_chunks(open_part):
        a = np.frombuffer(data + b"\0" * 16, np.uint8)
        refs = _cell_refs(a, len(data))
        if _cell_tags(a, len(data), prefix) != len(refs):
            return _sheet_extent_by_tags(open_part)
        row, col = _farthest(a, refs)
        top_row, top_col = max(top_row, row), max(top_col, col)
    if top_row * top_col <= MAX_EXCEL_CELLS:
        return top_row, top_col
    top_row = top_col = 0
    last = None  # the last reference of the chunks before
    for data, prefix in _xml_chunks(open_part):
        a = np.frombuffer(data + b"\0" * 16, np.uint8)
        refs = _cell_refs(a, len(data))
        rows, cols = _ref_values(a, refs)
        v = _find(a, len(data), b"<" + prefix + b"v>")
        v = v[a[v + len(prefix) + 3] != ord("<")]  # <v></v> is empty
        values = np.concatenate([v, _find(a, len(data), b"<" + prefix + b"is>"),
                                 _find(a, len(data), b"<" + prefix + b"is ")])
        owner = np.searchsorted(refs, values) - 1
        if last is not None and (owner < 0).any():
            top_row, top_col = max(top_row, last[0]), max(top_col, last[1])
        owner = owner[owner >= 0]
        if len(owner):
            top_row, top_col = max(top_row, int(rows[owner].max())), max(top_col, int(cols[owner].max()))
        if len(refs):
            last = (int(rows[-1]), int(cols[-1]))
    return top_row, top_col


def _find(a: np.ndarray, n: int, pattern: bytes) -> np.ndarray:
    """Positions of ``pattern`` in the first ``n`` bytes of ``a`` (padded beyond ``n``)."""
    at = np.flatnonzero(a[:n] == pattern[0])
    for k in range(1, len(pattern)):
        at = at[a[at + k] == pattern[k]]
    return at


def _cell_tags(a: np.ndarray, n: int, prefix: bytes) -> int:
    """How many cell elements (``<c>``, ``<c r="A1" ...>``) the first ``n`` bytes of ``a`` open."""
    at = _find(a, n, b"<" + prefix + b"c") + len(prefix) + 2
    nxt = a[at]
    return int(np.count_nonzero((nxt == ord(" ")) | (nxt == ord(">")) | (nxt == ord("/")) | (nxt == ord("\t"))
                                | (nxt == ord("\n")) | (nxt == ord("\r"))))


def _letter(x: np.ndarray) -> np.ndarray:
    return (x >= ord("A")) & (x <= ord("Z"))


def _digit(x: np.ndarray) -> np.ndarray:
    return (x >= ord("0")) & (x <= ord("9"))


def _cell_refs(a: np.ndarray, n: int) -> np.ndarray:
    """Positions of the cell references (``B7`` of `` r="B7"``) in the first ``n`` bytes of ``a``."""
    eq = np.flatnonzero(a[:n] == ord("="))
    eq = eq[eq >= 2]
    eq = eq[a[eq - 1] == ord("r")]
    before, quote = a[eq - 2], a[eq + 1]
    eq = eq[((before == ord(" ")) | (before == ord("\t")) | (before == ord("\n")) | (before == ord("\r")))
            & ((quote == ord('"')) | (quote == ord("'"))) & _letter(a[eq + 2])]
    return eq + 2


#: Row or column of a reference beyond Excel's last cell (more than 3 letters or 7 digits).
_BEYOND = 1 << 40


def _column_number(letters: bytes) -> int:
    return sum((ch - 64) * 26 ** i for i, ch in enumerate(reversed(letters))) if len(letters) <= 3 else _BEYOND


def _farthest(a: np.ndarray, refs: np.ndarray) -> tuple[int, int]:
    """The largest row and the largest column (1-based) of the references at ``refs``.

    Without parsing each: a longer run of letters (digits) is a larger column (row), and among runs
    of the same length the larger is the larger as bytes, compared as big-endian integers (the bytes
    after equal runs only break a tie between equal values).
    """
    if not len(refs):
        return 0, 0
    letters = np.lib.stride_tricks.sliding_window_view(a, 4)[refs]
    n_letters, four = _run(_letter(letters))
    digits = np.lib.stride_tricks.sliding_window_view(a, 8)[refs + n_letters]
    n_digits, eight = _run(_digit(digits))
    if four.any() or eight.any():
        return _BEYOND, _BEYOND
    out = []
    for window, run, width in ((digits, n_digits, 8), (letters, n_letters, 4)):
        longest = np.flatnonzero(run == run.max())
        key = window[longest].view(">u8" if width == 8 else ">u4").ravel()
        best = longest[int(np.argmax(key))]
        out.append(bytes(window[best][:run[best]]))
    return int(out[0] or 0), _column_number(out[1])


def _run(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``flags``: how many of its first columns are all True, and whether all of them are."""
    run, count = flags[:, 0].copy(), flags[:, 0].astype(np.int64)
    for k in range(1, flags.shape[1]):
        run &= flags[:, k]
        count += run
    return count, run


def _ref_values(a: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (1-based) of the references at ``refs`` (:data:`_BEYOND` past Excel's last cell)."""
    cols, more = a[refs].astype(np.int64) - 64, np.ones(len(refs), bool)
    for k in (1, 2):
        more &= _letter(a[refs + k])
        cols = np.where(more, cols * 26 + a[refs + k] - 64, cols)
    beyond = more & _letter(a[refs + 3])
    at = refs + 1 + _letter(a[refs + 1]) + (_letter(a[refs + 1]) & _letter(a[refs + 2]))
    rows, more = np.zeros(len(at), np.int64), np.ones(len(at), bool)
    for k in range(7):
        more &= _digit(a[at + k])
        rows = np.where(more, rows * 10 + a[at + k] - 48, rows)
    beyond |= more & _digit(a[at + 7])
    return np.where(beyond, _BEYOND, rows), np.where(beyond, _BEYOND, cols)


_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c|v|is)(?=[\s/>])([^>]*)>")
_REF = re.compile(rb"""\sr\s*=\s*["']([A-Z]*)([0-9]*)["']""")


def _sheet_extent_by_tags(open_part) -> tuple[int, int]:
    """:func:`_sheet_extent` for a sheet whose cells do not all carry a reference, tag by tag: a row
    without a reference is the next row, a cell without one the next column."""
    top_row = top_col = row = col = 0
    for data, _ in _xml_chunks(open_part):
        for m in _TAG.finditer(data):
            name, attrs = m.group(1), m.group(2)
            ref = _REF.search(b" " + attrs) if name in (b"row", b"c") else None
            if name == b"row":
                row, col = (int(ref.group(2)) if ref and ref.group(2) else row + 1), 0
            elif name == b"c":
                if ref and ref.group(1):
                    col = _column_number(ref.group(1))
                    row = int(ref.group(2)) if ref.group(2) else row
                else:
                    col += 1
            elif (name == b"is" or data[m.end():m.end() + 1] != b"<") and not attrs.endswith(b"/"):
                top_row, top_col = max(top_row, row), max(top_col, col)
    return top_row, top_col

def _excel_rows(path: Path) -> list[list]:
    """The cells of the first sheet; its first row is the header. A workbook beyond the bounds is refused
    before it is read (:func:`_check_workbook`)."""
    from python_calamine import CalamineWorkbook

    if path.suffix.lower() in _ZIPPED_EXCEL:
        _check_workbook(path)
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
        # a date-time, the usual cell of a mixed column (dates and times), without the call
        return pa.array([v.isoformat(sep=" ") if type(v) is dt.datetime else _cell(v) for v in values], pa.string())
    if pa.types.is_floating(arr.type):  # Excel keeps numbers as floats: 13812345678.0 is a phone, 1.0 a count
        valid = arr.drop_null()
        if not len(valid) or (pc.all(pc.equal(valid, pc.floor(valid))).as_py()
                              and pc.max(pc.abs(valid)).as_py() < 1e15):
            arr = arr.cast(pa.int64())
    return arr.cast(pa.string())


def _read_excel(con: Connection, source: Source, table: str) -> list[tuple[int, str, str]]:
    rows = source.cells[1:]
    source.cells = None
    width = len(source.headers)
    numbers = [i + 1 for i, r in enumerate(rows) if r.count(None) + r.count("") < len(r)]  # rows with a value
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
        with scratch() as con:
            return [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]
    except EngineError as err:
        raise InputError(f"cannot be read as Parquet ({_first_line(err)}).", path=str(path)) from None


def _read_parquet(con: Connection, source: Source, table: str) -> list[tuple[int, str, str]]:
    cols = ", ".join(f"CAST({ident(h)} AS VARCHAR) AS c{i}" for i, h in enumerate(source.headers))
    try:
        con.execute(f"CREATE TEMP TABLE {table}_data AS SELECT file_row_number + 1 AS _row, {cols} "
                    f"FROM read_parquet(?, file_row_number=true)", [str(source.path)])
    except EngineError as err:
        raise InputError(f"cannot be read as Parquet ({_first_line(err)}).", path=str(source.path)) from None
    con.execute(f"CREATE TEMP VIEW {table} AS SELECT * FROM {table}_data")
    return []


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
