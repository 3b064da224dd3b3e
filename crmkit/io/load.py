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
(:func:`crmkit.io.validate.decide_dates`), how orders were formed, the
duplicate rule, and how a column was read other than by a known name (the
fallback of :data:`crmkit.io.kinds.FALLBACKS`, an amount derived with
``--derive-amount``); a mapping that may be wrong (a unit price read as the
amount) is a warning of the file.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


from .. import privacy
from ..checks import AmountOutliers, amount_outliers
from ..currency import DEFAULT as DEFAULT_CURRENCY, get as get_currency, record as record_currency
from ..errors import InputError
from ..progress import Progress
from ..schema import CHANNELS, TABLES
from ..engine.store import Connection, connect, default_db_path, scratch, transaction
from . import credit_notes, identity, quarantine, readers, validate
from .kinds import DERIVE_KIND, IDENTITY_SOURCES, KINDS, Kind, Mapping, all_field_names, normalize_header, recognise
from .sql import ident, scalar


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
    #: how headers were read other than by a known name: the fallback (a header with 金额), --derive-amount
    header_rules: list[str] = field(default_factory=list)
    #: what may be wrong and was loaded anyway, e.g. a unit price read as the amount
    warnings: list[str] = field(default_factory=list)
    #: header → the field it is read as, in the file's column order
    columns: dict[str, str] = field(default_factory=dict)
    #: why a file of a dry run would fail the load (one sentence), else None
    error: str | None = None
    #: a dry run's first rows as they would load (parsed values, personal data masked), else None
    preview: list[dict] | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "rows": self.rows, "accepted": self.accepted,
                "rejected": self.rejected, "status": self.status, "encoding": self.encoding,
                "encoding_rule": self.encoding_rule, "date_rules": dict(self.date_rules),
                "order_rule": self.order_rule, "duplicate_rule": self.duplicate_rule,
                "header_rules": list(self.header_rules), "warnings": list(self.warnings),
                "ignored_columns": list(self.ignored_columns), "reasons": dict(self.reasons),
                "columns": dict(self.columns), "error": self.error} | (
                    {"preview": self.preview} if self.preview is not None else {})


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
    #: the store's currency (ISO code), in which its amounts are; see :mod:`crmkit.currency`
    currency: str = DEFAULT_CURRENCY.code
    #: a dry run: what the load would do, with nothing written (see :func:`load_files`)
    dry_run: bool = False

    def to_dict(self) -> dict:
        """The ``--json`` contract: ``{"files": [{"path", "kind", "rows", "accepted", "rejected"}], "members"}``."""
        return {"files": [f.to_dict() for f in self.files], "members": self.members,
                "source_records": self.source_records, "resolved_members": self.resolved_members,
                "new_members": self.new_members, "merged_members": self.merged_members,
                "derived_members": self.derived_members, "skipped": list(self.skipped),
                "amount_outliers": self.amount_outliers.to_dict() if self.amount_outliers is not None else None,
                "credit_notes": self.credit_notes.to_dict() if self.credit_notes is not None else None,
                "currency": self.currency, "dry_run": self.dry_run}


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
    #: contact columns kept for the members derived from a combined export (see :mod:`crmkit.io.identity`)
    contacts: dict[str, int] = field(default_factory=dict)


def load_files(con_or_db: Connection | str | os.PathLike | None,
               paths: list[str | os.PathLike] | str | os.PathLike, kind: str | None = None,
               column_map: dict[str, str] | None = None, encoding: str | None = None,
               derive_members: bool = False, progress: bool = True,
               now: dt.datetime | None = None, date_format: str | None = None,
               currency: str | None = None, derive_amount: bool = False,
               dry_run: bool = False) -> LoadReport:
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
    currency : the ISO code of the files' amounts (``GBP``); the first load records it in the
        store (CNY when None), and a different one is refused while the store holds data
        (:func:`crmkit.currency.record`).
    derive_amount : a transactions file without an amount column gets amount = quantity ×
        unit price (``--derive-amount``); a row without a valid quantity or unit price is
        quarantined. A file without either column is refused. Stated in ``header_rules``.

    dry_run : do everything a load would do, and write nothing: the files are loaded into an
        in-memory copy of the store (an empty one when there is no store; the store file is only
        read, under the shared read lock, and never created), or, for a connection, in a
        transaction that is rolled back. Each file's report then holds its first
        :data:`PREVIEW_ROWS` rows as they would load (``preview``), and a file of which no row
        would be accepted is reported (``status`` ``would fail``, ``error``) instead of raised.

    Raises
    ------
    InputError
        For a file-level problem (unreadable, empty, a missing column, the
        wrong kind), naming the file and the column. Nothing is loaded then.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    now = now or dt.datetime.now()
    report = LoadReport()
    if currency:  # an unknown code is refused before anything is read
        get_currency(currency)
    if date_format:  # refused before anything is read
        with scratch() as checker:
            validate.declared_formats(checker, date_format)
    plan = _plan(paths, kind, column_map or {}, encoding, derive_members, report, derive_amount)
    own = not isinstance(con_or_db, Connection)
    con = (_scratch_copy(con_or_db) if dry_run else connect(con_or_db)) if own else con_or_db
    report.dry_run = dry_run
    try:
        with Progress("crmkit load", total=len(plan), enabled=progress) as prog, \
                (_rolled_back(con) if dry_run else transaction(con)):
            report.currency = record_currency(con, currency).code
            _Loader(con, report, now, prog, date_format, PREVIEW_ROWS if dry_run else 0).run(plan)
            report.members = scalar(con, "SELECT count(*) FROM members")
            if any(f.status == "loaded" and f.kind in ("transactions", DERIVE_KIND) for f in report.files):
                report.amount_outliers = amount_outliers(con)
    finally:
        if own:
            con.close()
    return report


#: Rows of each file a dry run shows as they would load.
PREVIEW_ROWS = 5


def _scratch_copy(db: str | os.PathLike | None) -> Connection:
    """An in-memory store holding a copy of the store at ``db`` (empty when there is none), for a dry run.

    The store is opened read-only: a writer that holds it gets the sentence of :func:`crmkit.store.connect`.
    """
    copy = connect(":memory:")
    path = Path(db) if db is not None else default_db_path()
    if path.exists():
        connect(path, read_only=True, create=False).close()  # one sentence when a writer holds the store
        copy.execute("ATTACH ? AS crmkit_store (READ_ONLY)", [str(path)])
        present = {t for t, in copy.execute("SELECT table_name FROM duckdb_tables() "
                                            "WHERE database_name = 'crmkit_store'").fetchall()}
        for name in TABLES:
            if name in present:
                copy.execute(f'INSERT INTO memory."{name}" BY NAME SELECT * FROM crmkit_store."{name}"')
        copy.execute("DETACH crmkit_store")
    return copy


@contextmanager
def _rolled_back(con: Connection):
    """A transaction that is always rolled back: a dry run writes nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    finally:
        con.execute("ROLLBACK")


def _plan(paths: list, kind: str | None, column_map: dict[str, str], encoding: str | None, derive: bool,
          report: LoadReport, derive_amount: bool = False) -> list[_Planned]:
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
        mapping = recognise(str(path), source.headers, column_map, kind, derive_amount)
        used |= {s for s in column_map if _header_in(s, source.headers)}
        derived = derive and mapping.kind.name == "transactions"
        plan.append(_Planned(path, source, mapping, derived,
                             identity.contact_columns(source.headers, mapping, column_map) if derived else {}))
    unused = [s for s in column_map if s not in used]
    if unused:
        raise InputError(f"--map source column {unused[0]!r} is in none of the files.")
    order = list(KINDS)
    return sorted(plan, key=lambda p: (order.index(p.mapping.kind.name), str(p.path)))


def _header_in(src: str, headers: list[str]) -> bool:
    return src in headers or normalize_header(src) in {normalize_header(h) for h in headers}


def _json_value(v):
    """A preview value as JSON: dates and times as ISO text."""
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return v.isoformat() if isinstance(v, dt.date) else v


def _columns(item: _Planned) -> dict[str, str]:
    """Header → the field it is read as, in the file's column order."""
    fields = {i: f for f, i in (item.mapping.columns | item.contacts).items()}
    return {h: fields[i] for i, h in enumerate(item.source.headers) if i in fields}


def _contact_rule(item: _Planned) -> list[str]:
    """The rule for the contact columns of a combined export, in words (none without such columns)."""
    if not item.contacts:
        return []
    named = ", ".join(f"{item.source.headers[i]} as {f}" for f, i in item.contacts.items())
    return [f"members created from this file keep its contact columns ({named}): each takes the value of the "
            f"member's most recent line that carries a valid one, parsed as in a member export"]


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class _Loader:
    """One load inside one transaction."""

    def __init__(self, con: Connection, report: LoadReport, now: dt.datetime, prog: Progress,
                 date_format: str | None = None, preview: int = 0):
        self.con, self.report, self.now, self.prog = con, report, now, prog
        self.date_format = date_format
        self.preview = preview  # rows of each file to keep as they would load (a dry run)
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
                         ignored_columns=[h for h in item.mapping.ignored
                                          if h not in {item.source.headers[i] for i in item.contacts.values()}],
                         encoding_rule=item.source.encoding_rule,
                         header_rules=list(item.mapping.rules) + _contact_rule(item),
                         warnings=list(item.mapping.warnings),
                         columns=_columns(item))
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
        validate.stage(self.con, item.mapping, "crmkit_raw", "crmkit_parsed", self.now, dates,
                       self.report.currency)
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
        if self.preview:
            rep.preview = self._preview(item)
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
            err = InputError(f"{rows} can be loaded, so nothing was loaded: {have} the reason {top!r}, the first "
                             f"on row {first}; {fix}.", path=path)
            if not self.preview:
                raise err
            rep.status, rep.error = "would fail", str(err)
        self.con.execute("INSERT INTO loads (file_sha256, kind, path, rows, accepted, rejected, loaded_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", [sha, kind.name, path, rep.rows, rep.accepted, rep.rejected,
                                                          self.now])
        self.con.execute("DROP TABLE crmkit_typed")
        self.con.execute("DROP VIEW crmkit_parsed")
        readers.drop(self.con, "crmkit_raw")
        self.prog.step(f"{item.path.name}: {rep.accepted:,} of {rep.rows:,} rows accepted")
        return rep

    # -- helpers ---------------------------------------------------------------------------------

    def _preview(self, item: _Planned) -> list[dict]:
        """The first rows of the file (``crmkit_typed``) as they would load: the data row, the member and
        order they resolve to, the parsed fields (a return's quantity and amount negative), and the reason
        of a row that would be rejected; members' phones, names and open ids masked as everywhere crmkit shows
        them."""
        have = {c for c, in self.con.execute("SELECT column_name FROM (DESCRIBE crmkit_typed)").fetchall()}
        cols = {"row": "_row", "member_id": "_member", "order_id": "_order", "txn_type": "_type"}
        cols = {k: v for k, v in cols.items() if v in have}
        for f in item.mapping.kind.field_names:
            if f in have and f not in cols and (f in item.mapping.columns or f == "amount"):
                cols[f] = f'"{f}"'
        if "_type" in have:
            cols |= {c: f"CASE WHEN _type = 'return' THEN -abs(\"{c}\") ELSE \"{c}\" END"
                     for c in ("quantity", "amount") if c in cols}
        cols["reason"] = "_reason"
        cur = self.con.execute(f"SELECT {', '.join(f'{v} AS {ident(k)}' for k, v in cols.items())} "
                               f"FROM crmkit_typed ORDER BY _row LIMIT {int(self.preview)}")
        masks = {"phone": privacy.mask_phone, "name": privacy.mask_name, "open_id": privacy.mask_id} \
            if item.mapping.kind.members else {}  # a store's or a campaign's name is no one's
        return [{k: _json_value(masks[k](v) if k in masks else v) for k, v in zip(cols, r)} for r in cur.fetchall()]

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
            self._derive_members(fields, checks, item.contacts)
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

    def _derive_members(self, fields: list[str], checks: list[tuple[str, str]], contacts: dict[str, int]) -> None:
        """Members made from the good transactions whose member is unknown (asked for explicitly), with the
        file's contact columns (:func:`crmkit.io.identity.derived_contacts_sql`)."""
        joins, member = identity.member_sql(fields)
        phone, name, gender, birth = identity.derived_contacts_sql(contacts, self.now)
        source, source_id = identity.own_identity_sql(fields, "t")
        channel = f"coalesce(t.channel, CASE WHEN {source} IN {tuple(CHANNELS)} THEN {source} END)"
        good = " AND ".join(f"NOT coalesce({cond}, false)" for cond, _ in checks)
        n = scalar(self.con, f"""
            INSERT INTO crmkit_records
            SELECT min(t._row), {source}, {source_id}, {phone}, {name}, {gender}, {birth},
                   CAST(min(t.order_time) AS DATE), arg_min(t.store_id, t.order_time),
                   arg_min({channel}, t.order_time), ?
            FROM crmkit_parsed t JOIN crmkit_raw r USING (_row) {joins}
            WHERE t._reason IS NULL AND {good} AND {member} IS NULL AND {source_id} IS NOT NULL
            GROUP BY ALL""", ["derived from transactions"])
        if n:
            res = identity.resolve(self.con)
            self.report.derived_members += res.new_members
            self.report.source_records += res.records
            self.report.resolved_members += res.members
            self.report.new_members += res.new_members
