"""Loading exports into the member store: ``crmkit load`` and :func:`load_files`.

One call loads any number of files, in one DuckDB transaction, so a failure
leaves the store exactly as it was. Files are loaded in dependency order
(stores and products, then members, campaigns, transactions, store sales,
assignments, coupons, points); every member file is read before identities
are resolved, so member ids do not depend on the order of the files.

For every file: input rows = accepted + rejected, and every rejected row is
in ``quarantine`` with its reason. A file whose content (sha256) was loaded
before as the same kind adds nothing. A file of which *no* row is accepted
(and not because every row is already in the store) fails the load, in one
sentence with the most common reason: nothing is loaded, its quarantine rows
are not kept either (the load is one transaction), and the corrected file
loads on the next try, since it was never recorded as loaded.

The load summary states, per file, the rules it applied: the encoding and why
(:mod:`crmkit.io.readers`), how each date column was read
(:func:`crmkit.io.validate.decide_dates`), how orders were formed, and the
duplicate rule.

Orders and duplicates
---------------------
An *order line* is one row of a transaction export. An export without an
order number has one order per member and order time: lines of the same
member at the same time are one order, and a file whose times carry no time
of day has one order per member and day. (Each line its own order would
count every line as an order and make the average order value low.)

One *duplicate rule*, within a file and across files: an *exact repeat* of an
order line, the same order, product, quantity, amount, time and type
(sale/return), is quarantined as ``duplicate order line``. A file that carries
line numbers is matched by order, line number and type instead, since a line
number tells two equal lines apart. A file with neither line numbers nor
products cannot tell a repeated line from a second product at the same price
(CDNOW: 255 such lines among 69,659 purchases), so its equal lines are kept as
further lines of their order, and the summary counts them. Lines of a file
without line numbers are numbered in file order, after the lines of the same
order already in the store.

After a load with transactions, orders whose amount is above the robust cut
(1,000 × the median positive order amount of the store, see
:func:`crmkit.checks.amount_outliers`) are counted with their share of sales:
they are loaded, since they may be real, but the load summary flags them.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..checks import AmountOutliers, amount_outliers
from ..errors import InputError
from ..progress import Progress
from ..schema import CHANNELS, TABLES
from ..store import connect, transaction
from . import credit_notes, identity, quarantine, readers, validate
from .kinds import DERIVE_KIND, IDENTITY_SOURCES, KINDS, Kind, Mapping, all_field_names, normalize_header, recognise
from .sql import scalar


@dataclass
class FileReport:
    """One file of a load. ``rows`` = ``accepted`` + ``rejected``."""

    path: str
    kind: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    status: str = "loaded"  # loaded | already loaded
    encoding: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    #: why this encoding (text files), e.g. "it is all ASCII"
    encoding_rule: str | None = None
    #: date field → how its column was read
    date_rules: dict[str, str] = field(default_factory=dict)
    #: how order lines were grouped into orders (transactions)
    order_rule: str | None = None
    #: the duplicate rule applied (transactions)
    duplicate_rule: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "rows": self.rows, "accepted": self.accepted,
                "rejected": self.rejected, "status": self.status, "encoding": self.encoding,
                "encoding_rule": self.encoding_rule, "date_rules": dict(self.date_rules),
                "order_rule": self.order_rule, "duplicate_rule": self.duplicate_rule,
                "ignored_columns": list(self.ignored_columns), "reasons": dict(self.reasons)}


@dataclass
class LoadReport:
    """The result of :func:`load_files`: per-file counts and the member view after the load."""

    files: list[FileReport] = field(default_factory=list)
    members: int = 0
    source_records: int = 0
    resolved_members: int = 0
    new_members: int = 0
    merged_members: int = 0
    derived_members: int = 0
    skipped: list[dict] = field(default_factory=list)
    #: orders of the store above the outlier cut, after a load with transactions (else None)
    amount_outliers: AmountOutliers | None = None
    #: credit notes linked to the orders they reverse, after a load with transactions (else None)
    credit_notes: credit_notes.CreditNotes | None = None

    def to_dict(self) -> dict:
        """The ``--json`` contract: ``{"files": [{"path", "kind", "rows", "accepted", "rejected"}], "members"}``."""
        return {"files": [f.to_dict() for f in self.files], "members": self.members,
                "source_records": self.source_records, "resolved_members": self.resolved_members,
                "new_members": self.new_members, "merged_members": self.merged_members,
                "derived_members": self.derived_members, "skipped": list(self.skipped),
                "amount_outliers": self.amount_outliers.to_dict() if self.amount_outliers is not None else None,
                "credit_notes": self.credit_notes.to_dict() if self.credit_notes is not None else None}


#: Reasons that say a row is already in the store (or the file): a file of only those is loaded, adding nothing.
_DUPLICATES = {"duplicate order line", "duplicate record", "duplicate member record"}

#: What to do when every row of a file has this reason.
_FIXES = {"unknown member": "load the member exports first, or pass --derive-members (--kind transactions+members) "
                            "for transaction-only data"}


@dataclass
class _Planned:
    path: Path
    source: readers.Source
    mapping: Mapping
    derive: bool


def load_files(con_or_db: duckdb.DuckDBPyConnection | str | os.PathLike | None,
               paths: list[str | os.PathLike] | str | os.PathLike, kind: str | None = None,
               column_map: dict[str, str] | None = None, encoding: str | None = None,
               derive_members: bool = False, progress: bool = True,
               now: dt.datetime | None = None, date_format: str | None = None) -> LoadReport:
    """Load channel exports into the member store.

    Parameters
    ----------
    con_or_db : a store connection, or the path of the store (created if missing).
    paths : files, or folders whose data files are all loaded. Files that are
        not data exports (``truth.json``, ``README.md``) are skipped and listed.
    kind : the kind of every file (``stores``, ``members``, ``transactions``,
        ..., or ``transactions+members``); recognised per file when None.
    column_map : ``{header in the file: canonical field}``, e.g. ``{"date": "order_time"}``;
        for headerless files the header is the 1-based column number.
    encoding : the text encoding of every file; detected when None.
    derive_members : create members from transactions whose member is unknown
        (transaction-only data such as CDNOW) instead of quarantining them.
    now : load time; dates after it are quarantined as future dates.
    date_format : the day order of dates that are not year-first (``mdy``, ``dmy``,
        or a strptime format), for columns where the values do not tell it;
        see :func:`crmkit.io.validate.decide_dates`.

    Raises
    ------
    InputError
        For a file-level problem (unreadable, empty, a missing column, the
        wrong kind), naming the file and the column. Nothing is loaded then.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    now = now or dt.datetime.now()
    report = LoadReport()
    if date_format:  # refused before anything is read
        with duckdb.connect() as scratch:
            validate.declared_formats(scratch, date_format)
    plan = _plan(paths, kind, column_map or {}, encoding, derive_members, report)
    own = not isinstance(con_or_db, duckdb.DuckDBPyConnection)
    con = connect(con_or_db) if own else con_or_db
    try:
        with Progress("crmkit load", total=len(plan), enabled=progress) as prog, transaction(con):
            _Loader(con, report, now, prog, date_format).run(plan)
        report.members = scalar(con, "SELECT count(*) FROM members")
        if any(f.status == "loaded" and f.kind in ("transactions", DERIVE_KIND) for f in report.files):
            report.amount_outliers = amount_outliers(con)
    finally:
        if own:
            con.close()
    return report


def _plan(paths: list, kind: str | None, column_map: dict[str, str], encoding: str | None, derive: bool,
          report: LoadReport) -> list[_Planned]:
    """Inspect every file's head and recognise its kind, before anything is written."""
    if kind == DERIVE_KIND:
        kind, derive = "transactions", True
    unknown = sorted(set(column_map.values()) - all_field_names())
    if unknown:
        raise InputError(f"--map target {unknown[0]!r} is not a field crmkit knows; "
                         f"use one of: {', '.join(sorted(all_field_names()))}.")
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.iterdir() if f.is_file())
            files += [f for f in inside if readers.is_data_file(f)]
            report.skipped += [{"path": str(f), "reason": "not a data export"} for f in inside
                               if not readers.is_data_file(f)]
        elif p.exists() and not readers.is_data_file(p):
            report.skipped.append({"path": str(p), "reason": "not a data export"})
        else:
            files.append(p)
    if not files:
        raise InputError("no data files to load" + (f" among {', '.join(map(str, paths))}." if paths else "."))
    known = {normalize_header(a) for k in KINDS.values() for f in k.fields for a in (f.name,) + f.aliases}
    known |= {normalize_header(s) for s in column_map if not s.isdigit()}  # digits name columns of headerless files
    plan, used = [], set()
    for path in files:
        source = readers.inspect(path, encoding, known)
        mapping = recognise(str(path), source.headers, column_map, kind)
        used |= {s for s in column_map if _header_in(s, source.headers)}
        plan.append(_Planned(path, source, mapping, derive and mapping.kind.name == "transactions"))
    unused = [s for s in column_map if s not in used]
    if unused:
        raise InputError(f"--map source column {unused[0]!r} is in none of the files.")
    order = list(KINDS)
    return sorted(plan, key=lambda p: (order.index(p.mapping.kind.name), str(p.path)))


def _header_in(src: str, headers: list[str]) -> bool:
    return src in headers or normalize_header(src) in {normalize_header(h) for h in headers}


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Loader:
    """One load inside one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: LoadReport, now: dt.datetime, prog: Progress,
                 date_format: str | None = None):
        self.con, self.report, self.now, self.prog = con, report, now, prog
        self.date_format = date_format
        self.pending_records = False

    def run(self, plan: list[_Planned]) -> None:
        quarantine.install_masks(self.con)
        identity.create_record_tables(self.con)
        for i, item in enumerate(plan):
            if item.mapping.kind.name != "members" and self.pending_records:
                self._resolve()
            self.report.files.append(self._file(i, item))
            self.prog.update(1)
        if self.pending_records:
            self._resolve()
        if any(f.status == "loaded" and f.kind in ("transactions", DERIVE_KIND) for f in self.report.files):
            self.report.credit_notes = credit_notes.link(self.con)  # credit notes net the orders they reverse
        self.con.execute("DROP TABLE crmkit_records")
        self.con.execute("DROP TABLE crmkit_links")

    def _resolve(self) -> None:
        self.prog.step("resolving identities")
        res = identity.resolve(self.con)
        self.pending_records = False
        self.report.source_records += res.records
        self.report.resolved_members += res.members
        self.report.new_members += res.new_members
        self.report.merged_members += res.merged_members

    def _file(self, index: int, item: _Planned) -> FileReport:
        kind = item.mapping.kind
        name = DERIVE_KIND if item.derive else kind.name
        rep = FileReport(str(item.path), name, encoding=item.source.encoding,
                         ignored_columns=list(item.mapping.ignored), encoding_rule=item.source.encoding_rule)
        sha = _sha256(item.path)
        if scalar(self.con, "SELECT count(*) FROM loads WHERE file_sha256 = ? AND kind = ?",
                            [sha, kind.name]):
            rep.status = "already loaded"
            self.prog.step(f"{item.path.name}: already loaded, skipped")
            return rep
        self.prog.step(f"{item.path.name}: reading as {name}")
        malformed = readers.read(self.con, item.source, "crmkit_raw")
        rep.encoding, rep.encoding_rule = item.source.encoding, item.source.encoding_rule  # decided on the whole file
        path = str(item.path)
        if not malformed and not scalar(self.con, "SELECT count(*) FROM crmkit_raw"):
            raise InputError("has a header but no data rows.", path=path)
        dates = validate.decide_dates(self.con, item.mapping, "crmkit_raw", item.source.headers, self.now, path,
                                      self.date_format)
        rep.date_rules = {f: r.text for f, r in dates.items()}
        validate.stage(self.con, item.mapping, "crmkit_raw", "crmkit_parsed", self.now, dates)
        if kind.name == "transactions":
            rep.order_rule, rep.duplicate_rule = self._transactions(item)
        elif kind.members == "reference":
            self._member_facts(item)
        else:
            self.con.execute("CREATE TEMP TABLE crmkit_typed AS SELECT * FROM crmkit_parsed")
            if kind.name == "members":
                self._members(index, item)
            else:
                self._dimension(kind)
        rejected = quarantine.add_rejected(self.con, "crmkit_typed", "crmkit_raw", item.source.headers,
                                           item.mapping, path, self.now)
        rejected += quarantine.add_malformed(self.con, malformed, item.source.headers, item.mapping, path, self.now)
        rep.rows = scalar(self.con, "SELECT count(*) FROM crmkit_typed") + len(malformed)
        rep.rejected, rep.accepted = rejected, rep.rows - rejected
        rep.reasons = dict(self.con.execute(
            "SELECT _reason, count(*) FROM crmkit_typed WHERE _reason IS NOT NULL GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall())
        for _, reason, _ in malformed:
            rep.reasons[reason] = rep.reasons.get(reason, 0) + 1
        if rep.rows and not rep.accepted and set(rep.reasons) - _DUPLICATES:
            top, n = max(rep.reasons.items(), key=lambda kv: kv[1])
            first = scalar(self.con, "SELECT min(_row) FROM crmkit_typed WHERE _reason = ?", [top]) \
                if top not in {r for _, r, _ in malformed} else min(r for r, why, _ in malformed if why == top)
            fix = _FIXES.get(top, "fix the file and load it again")
            rows = "its only row" if rep.rows == 1 else f"none of its {rep.rows:,} rows"
            have = "it has" if rep.rows == 1 else f"{n:,} {'has' if n == 1 else 'have'}"
            raise InputError(f"{rows} can be loaded, so nothing was loaded: {have} the reason {top!r}, the first "
                             f"on row {first}; {fix}.", path=path)
        self.con.execute("INSERT INTO loads (file_sha256, kind, path, rows, accepted, rejected, loaded_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", [sha, kind.name, path, rep.rows, rep.accepted, rep.rejected,
                                                          self.now])
        self.con.execute("DROP TABLE crmkit_typed")
        self.con.execute("DROP VIEW crmkit_parsed")
        readers.drop(self.con, "crmkit_raw")
        self.prog.step(f"{item.path.name}: {rep.accepted:,} of {rep.rows:,} rows accepted")
        return rep

    # -- helpers ---------------------------------------------------------------------------------

    def _flag(self, reason: str, where: str) -> None:
        """Give ``reason`` to the good rows of the file that satisfy ``where``."""
        self.con.execute(f"UPDATE crmkit_typed SET _reason = ? WHERE _reason IS NULL AND ({where})", [reason])

    def _flag_repeats(self, reason: str, key: list[str]) -> None:
        """Give ``reason`` to every good row whose ``key`` repeats an earlier good row of the file."""
        self._flag(reason, f"_row IN (SELECT _row FROM (SELECT _row, row_number() OVER (PARTITION BY "
                           f"{', '.join(key)} ORDER BY _row) AS n FROM crmkit_typed WHERE _reason IS NULL) "
                           f"WHERE n > 1)")

    def _checked(self, fields: list[str], checks: list[tuple[str, str]], extra: str = "") -> None:
        """The file's rows (``crmkit_typed``) with ``_member`` resolved and the first failing check as ``_reason``.

        ``checks`` are ``(condition on t, reason)`` pairs, tried in order after the parsing checks;
        ``unknown member`` comes last. ``extra`` adds select expressions.
        """
        joins, member = identity.member_sql(fields)
        whens = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in checks + [(f"{member} IS NULL",
                                                                                         "unknown member")])
        self.con.execute(f"""
            CREATE TEMP TABLE crmkit_typed AS
            SELECT t.* EXCLUDE (_reason), {member} AS _member, coalesce(t._reason, CASE {whens} END) AS _reason
                   {extra}
            FROM crmkit_parsed t {joins}""")

    # -- kinds -----------------------------------------------------------------------------------

    def _dimension(self, kind: Kind) -> None:
        """Stores, products, campaigns, store sales: a later file replaces rows with the same key."""
        key = [f'"{k}"' for k in kind.key]
        self._flag_repeats("duplicate record", key)
        self._upsert(kind, {c: f'"{c}"' for c in TABLES[kind.table].names if c in kind.field_names})

    def _upsert(self, kind: Kind, columns: dict[str, str]) -> None:
        table = kind.table
        match = " AND ".join(f'x."{k}" = {columns[k]}' for k in kind.key)
        self.con.execute(f'DELETE FROM "{table}" x WHERE EXISTS (SELECT 1 FROM crmkit_typed '
                         f'WHERE _reason IS NULL AND {match})')
        self._insert(table, columns)

    def _insert(self, table: str, columns: dict[str, str]) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        self.con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {", ".join(columns.values())} '
                         f"FROM crmkit_typed WHERE _reason IS NULL")

    def _members(self, index: int, item: _Planned) -> None:
        """Member exports: one source record per row, resolved once every member file is read."""
        fields = item.mapping.identities
        source, source_id = identity.own_identity_sql(fields)
        self._flag_repeats("duplicate member record", [source, source_id])
        rec = f"{index} * 10000000000 + t._row"
        channel = f"CASE WHEN {source} IN {tuple(CHANNELS)} THEN {source} END"
        self.con.execute(f"""
            INSERT INTO crmkit_records SELECT {rec}, {source}, {source_id}, t.phone, t.name, t.gender,
                t.birth_date, t.join_date, t.join_store_id, {channel}, ?
            FROM crmkit_typed t WHERE t._reason IS NULL""", [str(item.path)])
        for f in fields:
            self.con.execute(f"""
                INSERT INTO crmkit_links SELECT {rec}, '{IDENTITY_SOURCES[f]}', t."{f}" FROM crmkit_typed t
                WHERE t._reason IS NULL AND t."{f}" IS NOT NULL AND t."{f}" IS DISTINCT FROM {source_id}""")
        self.pending_records = True

    def _member_facts(self, item: _Planned) -> None:
        """Assignments, coupons, points: rows that name a member by one of its ids."""
        kind = item.mapping.kind
        self._checked(item.mapping.identities, [])
        key = ["_member" if k == "member_id" else f'"{k}"' for k in kind.key]
        self._flag_repeats("duplicate record", key)
        columns = {c: ("_member" if c == "member_id" else f'"{c}"')
                   for c in TABLES[kind.table].names if c in kind.field_names or c == "member_id"}
        if kind.upsert:
            self._upsert(kind, columns)
            return
        same = " AND ".join(f'x."{c}" IS NOT DISTINCT FROM {v}' for c, v in columns.items())
        self._flag("duplicate record", f'EXISTS (SELECT 1 FROM "{kind.table}" x WHERE {same})')
        self._insert(kind.table, columns)

    def _transactions(self, item: _Planned) -> tuple[str, str]:
        """Order lines: returns signed, members resolved, duplicates of a line caught in the file and the store.

        Returns the order rule and the duplicate rule applied, in words (see the module docstring).
        """
        fields = item.mapping.identities
        is_return = "(t.txn_type = 'return' OR t.quantity < 0)"
        checks = [('t."order_id" IS NULL', "missing value: order_id")] if "order_id" in item.mapping.columns else []
        checks.append(("t.amount < 0 AND NOT coalesce(" + is_return + ", false)", "negative amount on a sale"))
        if item.derive:
            self._derive_members(fields, checks)
        source, _ = identity.own_identity_sql(fields, "t")
        self._checked(fields, checks, f", CASE WHEN {is_return} THEN 'return' ELSE 'sale' END AS _type, "
                                      f"{source} AS _source")
        if "order_id" in item.mapping.columns:
            self.con.execute('ALTER TABLE crmkit_typed RENAME COLUMN "order_id" TO _order')
            order_rule = "order numbers from the file"
        else:  # exports without order ids: one order per member and time (and day, without a time of day)
            self.con.execute("ALTER TABLE crmkit_typed DROP COLUMN order_id")
            self.con.execute("""
                CREATE TEMP TABLE crmkit_ordered AS SELECT *,
                    _member || '@' || strftime(order_time, '%Y%m%d%H%M%S') AS _order
                FROM crmkit_typed""")
            self.con.execute("DROP TABLE crmkit_typed")
            self.con.execute("ALTER TABLE crmkit_ordered RENAME TO crmkit_typed")
            timed = scalar(self.con, "SELECT count(*) FROM crmkit_typed WHERE _reason IS NULL "
                                     "AND CAST(order_time AS TIME) <> TIME '00:00:00'")
            order_rule = ("no order number: one order per member and order time" if timed else
                          "no order number and no time of day: one order per member and day")
        signed = {c: f"CASE WHEN crmkit_typed._type = 'return' THEN -abs(crmkit_typed.{c}) ELSE crmkit_typed.{c} END"
                  for c in ("quantity", "amount")}
        if "line_no" in item.mapping.columns:
            if scalar(self.con, "SELECT count(*) FROM crmkit_typed WHERE line_no IS NULL"):  # lines by file order
                self.con.execute("UPDATE crmkit_typed SET line_no = n.line_no FROM (SELECT _row, row_number() OVER "
                                 "(PARTITION BY _order, _type ORDER BY _row) AS line_no FROM crmkit_typed) n "
                                 "WHERE crmkit_typed._row = n._row AND crmkit_typed.line_no IS NULL")
            self._flag_repeats("duplicate order line", ["_order", "line_no", "_type"])
            self._flag("duplicate order line", "EXISTS (SELECT 1 FROM transactions x WHERE x.order_id = _order "
                                               "AND x.line_no IS NOT DISTINCT FROM crmkit_typed.line_no "
                                               "AND x.txn_type = _type)")
            duplicate_rule = ("the file has line numbers: a line with the order, line number and type of a line "
                              "in the file or the store is a duplicate")
        elif "sku" not in item.mapping.columns:  # nothing tells a repeated line from a second item at that price
            repeats = scalar(self.con, "SELECT count(*) - count(DISTINCT (_order, _type, quantity, amount, order_time))"
                                       " FROM crmkit_typed WHERE _reason IS NULL")
            self._number_lines_after_store()
            duplicate_rule = ("the file has neither line numbers nor products, so equal lines of an order may be "
                              "different products: they are kept as further lines of the order"
                              + (f" ({repeats:,} such lines)" if repeats else ""))
        else:
            self._flag_repeats("duplicate order line", ["_order", "_type", "sku", "quantity", "amount", "order_time"])
            self._flag("duplicate order line", f"""EXISTS (SELECT 1 FROM transactions x WHERE x.order_id = _order
                AND x.txn_type = _type AND x.sku IS NOT DISTINCT FROM crmkit_typed.sku
                AND x.quantity IS NOT DISTINCT FROM {signed['quantity']} AND x.amount = {signed['amount']}
                AND x.order_time = crmkit_typed.order_time)""")
            self._number_lines_after_store()
            duplicate_rule = ("the file has no line numbers: an exact repeat of an order line (same order, product, "
                              "quantity, amount, time and type) in the file or the store is a duplicate")
        channel = "coalesce(t.channel, CASE WHEN t._source IN " + str(tuple(CHANNELS)) + " THEN t._source END)"
        self.con.execute(f"""
            INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, sku, category,
                                      quantity, amount, discount, coupon_id, txn_type, source_file)
            SELECT t._member, t._order, t.line_no, t.order_time, t.store_id, {channel}, t.sku,
                   coalesce(t.category, p.category),
                   CASE WHEN t._type = 'return' THEN -abs(t.quantity) ELSE t.quantity END,
                   CASE WHEN t._type = 'return' THEN -abs(t.amount) ELSE t.amount END,
                   t.discount, t.coupon_id, t._type, ?
            FROM crmkit_typed t LEFT JOIN (SELECT sku, any_value(category) AS category FROM products GROUP BY sku) p
                 ON p.sku = t.sku
            WHERE t._reason IS NULL""", [str(item.path)])
        return order_rule, duplicate_rule

    def _number_lines_after_store(self) -> None:
        """Number the good lines of a file without line numbers in file order, per order and type, after
        the lines of the same order already in the store."""
        self.con.execute("""
            UPDATE crmkit_typed SET line_no = n.line_no FROM (
                SELECT t._row, row_number() OVER (PARTITION BY t._order, t._type ORDER BY t._row)
                       + coalesce(s.top, 0) AS line_no
                FROM crmkit_typed t LEFT JOIN (SELECT order_id, txn_type, max(line_no) AS top FROM transactions
                                               GROUP BY ALL) s ON s.order_id = t._order AND s.txn_type = t._type
                WHERE t._reason IS NULL) n
            WHERE crmkit_typed._row = n._row""")

    def _derive_members(self, fields: list[str], checks: list[tuple[str, str]]) -> None:
        """Members made from the good transactions whose member is unknown (asked for explicitly)."""
        joins, member = identity.member_sql(fields)
        source, source_id = identity.own_identity_sql(fields, "t")
        channel = f"coalesce(t.channel, CASE WHEN {source} IN {tuple(CHANNELS)} THEN {source} END)"
        good = " AND ".join(f"NOT coalesce({cond}, false)" for cond, _ in checks)
        n = scalar(self.con, f"""
            INSERT INTO crmkit_records
            SELECT min(t._row), {source}, {source_id}, NULL, NULL, NULL, NULL, CAST(min(t.order_time) AS DATE),
                   arg_min(t.store_id, t.order_time), arg_min({channel}, t.order_time), ?
            FROM crmkit_parsed t {joins}
            WHERE t._reason IS NULL AND {good} AND {member} IS NULL AND {source_id} IS NOT NULL
            GROUP BY ALL""", ["derived from transactions"])
        if n:
            res = identity.resolve(self.con)
            self.report.derived_members += res.new_members
            self.report.source_records += res.records
            self.report.resolved_members += res.members
            self.report.new_members += res.new_members
