"""The quarantine: every rejected input row, with its reason and the row as read.

The row is kept as JSON under its original headers, so a data steward can
find and fix it in the source file (file + 1-based data row). Personal data
never enters quarantine in clear: columns that hold phones, names or open ids
(by their mapping or by their header, e.g. a receiver's phone in an order
export) are masked in SQL exactly as :mod:`crmkit.privacy` masks them for
display, and a phone number anywhere else in a row or a broken line (a
remark, a pasted contact) is masked whatever its format: spaces, dashes,
``+86``, full-width digits (:func:`crmkit.privacy.mask_phones_in_text`).
"""
from __future__ import annotations

import datetime as dt
import json
from functools import cache

import pyarrow as pa

from ..engine.store import Connection
from .kinds import KINDS, Mapping, normalize_header
from .sql import ident

#: SQL twins of privacy.mask_phone / mask_name / mask_id (tests check that they agree).
_MACROS = (
    "CREATE OR REPLACE TEMP MACRO crmkit_mask_digits(d) AS CASE WHEN length(d) < 7 THEN repeat('*', length(d)) "
    "ELSE left(d, 3) || repeat('*', length(d) - 7) || right(d, 4) END",
    "CREATE OR REPLACE TEMP MACRO crmkit_mask_phone(x) AS crmkit_mask_digits(CASE "
    "WHEN length(regexp_replace(x, '\\D', '', 'g')) > 11 AND starts_with(regexp_replace(x, '\\D', '', 'g'), '86') "
    "THEN substr(regexp_replace(x, '\\D', '', 'g'), 3) ELSE regexp_replace(x, '\\D', '', 'g') END)",
    "CREATE OR REPLACE TEMP MACRO crmkit_mask_name(x) AS CASE WHEN trim(x) = '' THEN '' "
    "WHEN length(trim(x)) = 1 THEN '*' ELSE left(trim(x), 1) || repeat('*', length(trim(x)) - 1) END",
    "CREATE OR REPLACE TEMP MACRO crmkit_mask_id(x) AS CASE WHEN length(x) <= 8 THEN left(x, 1) || "
    "repeat('*', length(x) - 1) ELSE left(x, 4) || '****' || right(x, 4) END",
)

#: Fields that hold personal data, and the macro that masks each.
PII_MASKS = {"phone": "crmkit_mask_phone", "name": "crmkit_mask_name", "open_id": "crmkit_mask_id"}


def install_masks(con: Connection) -> None:
    for sql in _MACROS:
        con.execute(sql)


@cache
def _pii_headers() -> dict[str, str]:
    """Normalized header → mask macro, for every name a phone, name or open id column goes by."""
    members = KINDS["members"]
    return {normalize_header(a): macro for f, macro in PII_MASKS.items()
            for a in (f,) + members.field(f).aliases}


#: Parts of a header that say it holds personal data although it is no member field's alias, e.g. an
#: order export's 买家手机号 or 收货人姓名: (part, mask macro), the first part found decides.
PII_HEADER_PARTS = (
    ("手机", "crmkit_mask_phone"), ("电话", "crmkit_mask_phone"), ("phone", "crmkit_mask_phone"),
    ("mobile", "crmkit_mask_phone"), ("联系方式", "crmkit_mask_phone"),
    ("姓名", "crmkit_mask_name"), ("收货人", "crmkit_mask_name"), ("收件人", "crmkit_mask_name"),
    ("联系人", "crmkit_mask_name"), ("昵称", "crmkit_mask_name"), ("地址", "crmkit_mask_name"),
    ("address", "crmkit_mask_name"), ("openid", "crmkit_mask_id"), ("身份证", "crmkit_mask_id"),
)


def _pii_macro(header: str) -> str | None:
    norm = normalize_header(header)
    if norm in _pii_headers():
        return _pii_headers()[norm]
    return next((macro for part, macro in PII_HEADER_PARTS if part in norm), None)


def pii_columns(headers: list[str], mapping: Mapping) -> dict[int, str]:
    """Column index → mask macro for the columns of a file that hold personal data: by the member
    fields' aliases, by :data:`PII_HEADER_PARTS`, and by the mapping."""
    out = {i: m for i, m in ((i, _pii_macro(h)) for i, h in enumerate(headers)) if m}
    out.update({i: PII_MASKS[f] for f, i in mapping.columns.items() if f in PII_MASKS})
    return out


def raw_json_sql(headers: list[str], mapping: Mapping) -> str:
    """SQL for the row (table alias ``r``) as JSON keyed by the original headers, the columns that hold
    personal data masked (:func:`add_rejected` masks phone numbers anywhere else)."""
    pii = pii_columns(headers, mapping)
    parts = [f"{ident(h)} := {pii[i]}(r.c{i})" if i in pii else f"{ident(h)} := r.c{i}"
             for i, h in enumerate(headers)]
    return f"to_json(struct_pack({', '.join(parts)}))"


def add_rejected(con: Connection, typed: str, raw: str, headers: list[str], mapping: Mapping,
                 source_file: str, loaded_at: dt.datetime) -> int:
    """Copy the rows of ``typed`` with a ``_reason`` into quarantine; returns how many.

    The row's JSON has its personal-data columns masked in SQL, and then every phone number left in it
    (a remark, a pasted contact) masked in any format (:func:`crmkit.privacy.mask_phones_in_text`).
    """
    rows = con.execute(f"SELECT t._row, t._reason, {raw_json_sql(headers, mapping)} "
                       f"FROM {typed} t JOIN {raw} r USING (_row) WHERE t._reason IS NOT NULL").fetchall()
    _insert(con, rows, source_file, mapping, loaded_at)
    return len(rows)


def _insert(con: Connection, rows: list[tuple[int, str, str | None]], source_file: str, mapping: Mapping,
            loaded_at: dt.datetime) -> None:
    """Insert quarantine rows ``(row, reason, raw JSON)``, phone numbers in the JSON masked in any format."""
    from ..privacy import mask_phones_in_text

    table = pa.table({"row": [r[0] for r in rows], "reason": [r[1] for r in rows],
                      "raw": pa.array([mask_phones_in_text(r[2]) for r in rows], pa.string())})
    con.register("crmkit_rejected", table)
    try:
        con.execute("INSERT INTO quarantine (source_file, row_number, reason, raw, kind, loaded_at) "
                    "SELECT ?, row, reason, raw, ?, ? FROM crmkit_rejected", [source_file, mapping.kind.name, loaded_at])
    finally:
        con.unregister("crmkit_rejected")


def add_malformed(con: Connection, rows: list[tuple[int, str, str]], headers: list[str],
                  mapping: Mapping, source_file: str, loaded_at: dt.datetime) -> int:
    """Quarantine rows the reader could not split into the header's fields.

    Their raw line is kept with phone numbers masked in any format
    (:func:`crmkit.privacy.mask_phones_in_text`); when the file carries
    names or open ids, which cannot be told apart in a broken line, the line
    is withheld.
    """
    if not rows:
        return 0
    withheld = any(m != PII_MASKS["phone"] for m in pii_columns(headers, mapping).values())
    lines = [(row, reason, json.dumps({"line": None if withheld else line}, ensure_ascii=False, separators=(",", ":")))
             for row, reason, line in rows]
    _insert(con, lines, source_file, mapping, loaded_at)
    return len(rows)
