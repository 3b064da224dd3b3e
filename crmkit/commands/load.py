"""``crmkit load FILE... [--db PATH] [--kind KIND] [--map SRC=DST ...] [--encoding ENC] [--date-format FMT]
[--derive-members] [--derive-amount] [--currency CODE] [--dry-run] [--json] [--quiet]``: load channel exports into the
member store."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..currency import CURRENCIES, DEFAULT as DEFAULT_CURRENCY, get as get_currency, use as use_currency
from ..errors import InputError
from ..text import text_table

if TYPE_CHECKING:
    from ..io import LoadReport

HELP = "load channel exports (CSV, Excel, Parquet, text) into the member store"


def register(subparsers) -> None:
    from ..io.kinds import DERIVE_KIND, KINDS
    from ..paths import default_db_path

    p = subparsers.add_parser(
        "load", help=HELP,
        description="Load channel exports into the member store, resolving identities into one member view. "
                    "Rejected rows go to the quarantine table with their reason; a failed load changes nothing.")
    p.add_argument("files", nargs="+", metavar="FILE", help="export files, or folders of exports")
    p.add_argument("--db", default=None, help=f"member store (default: $CRMKIT_DB or {default_db_path()})")
    p.add_argument("--kind", choices=[*KINDS, DERIVE_KIND],
                   help="kind of every file (default: recognised from each file's name or header)")
    p.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                   help="read column SRC (a header, or a 1-based column number) as field DST, e.g. date=order_time")
    p.add_argument("--encoding", help="text encoding of every file (default: detected UTF-8, BOM or GBK/GB18030)")
    p.add_argument("--date-format", metavar="FMT",
                   help="day order of dates that are not year-first, when the values do not tell it: mdy "
                        "(12/1/10 is 1 December 2010), dmy, or a strptime format such as %%d/%%m/%%Y %%H:%%M")
    p.add_argument("--derive-members", action="store_true",
                   help="create members from transactions whose member is unknown (transaction-only data)")
    p.add_argument("--derive-amount", action="store_true",
                   help="for transactions without an amount column: amount = quantity × unit price (a row "
                        "without a valid quantity or price is quarantined)")
    p.add_argument("--currency", metavar="CODE",
                   help=f"currency of the amounts, an ISO code ({', '.join(CURRENCIES)}); the first load "
                        f"records it in the store (default {DEFAULT_CURRENCY.code}), and a different one is "
                        f"refused once the store holds data")
    p.add_argument("--dry-run", action="store_true",
                   help="show what the load would do and write nothing: per file the kind, the column mapping, "
                        "the encoding, date, order and duplicate rules, the counts, and the first rows as they "
                        "would load")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines (the summary and warnings are printed)")
    p.set_defaults(func=run)


def parse_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise InputError(f"--map {item!r} is not SRC=DST (e.g. --map date=order_time).")
        out[src.strip()] = dst.strip()
    return out


def run(args) -> int:
    from ..io import load_files
    from ..paths import default_db_path

    report = load_files(args.db or default_db_path(), args.files, kind=args.kind, column_map=parse_map(args.map),
                        encoding=args.encoding, derive_members=args.derive_members, progress=not args.quiet,
                        date_format=args.date_format, currency=args.currency, derive_amount=args.derive_amount,
                        dry_run=args.dry_run)
    use_currency(report.currency)  # the summary's amounts are in the store's currency
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join([summary(report)] + (dry_run_lines(report, args.db or default_db_path())
                                              if report.dry_run else [])))
    return 1 if any(f.status == "would fail" for f in report.files) else 0


def rules(report: LoadReport) -> list[str]:
    """One line per loaded file that states the rules applied: encoding, headers, dates, orders, duplicates."""
    out = []
    for f in report.files:
        if f.status != "loaded":
            continue
        parts = []
        if f.encoding_rule:
            parts.append(f"encoding {f.encoding}, as {f.encoding_rule}")
        parts += f.header_rules
        parts += [f"{name} read as {rule}" for name, rule in f.date_rules.items()]
        if f.order_rule:
            parts.append(f"orders: {f.order_rule}")
        if f.duplicate_rule:
            parts.append(f"duplicates: {f.duplicate_rule}")
        if parts:
            out.append(f"{f.path}: " + "; ".join(parts) + ".")
    return out


def summary(report: LoadReport) -> str:
    """The human summary: a table of files, then source records → members."""
    rows = [("file", "kind", "encoding", "rows", "accepted", "rejected")]
    for f in report.files:
        if f.status == "loaded":
            rows.append((f.path, f.kind, f.encoding or "-", f"{f.rows:,}", f"{f.accepted:,}", f"{f.rejected:,}"))
        else:
            rows.append((f.path, f.kind, f.encoding or "-", "-", "-", f.status))
    lines = text_table(rows, right={3, 4, 5}, rule=True)  # aligned by display width: Chinese file names
    lines += rules(report)
    lines += [f"{f.path}: warning: {w}." for f in report.files if f.status == "loaded" for w in f.warnings]
    money = get_currency(report.currency)
    lines.append(f"amounts are in {money.code} ({money.symbol}), the store's currency (set by its first load, "
                 f"--currency).")
    lines += [f"skipped {s['path']}: {s['reason']}" for s in report.skipped]
    lines.append(f"{report.source_records:,} source records → {report.resolved_members:,} members"
                 + (f" ({report.merged_members:,} merged)" if report.merged_members else "")
                 + f"; {report.members:,} members in the store.")
    rejected = sum(f.rejected for f in report.files)
    if rejected:
        reasons: dict[str, int] = {}
        for f in report.files:
            for r, n in f.reasons.items():
                reasons[r] = reasons.get(r, 0) + n
        top = ", ".join(f"{r} ({n:,})" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
        lines.append(f"{rejected:,} rows rejected, kept in the quarantine table with their reason: {top}.")
    if report.amount_outliers:  # orders above 1,000 × the median order: loaded, but flagged
        lines.append(f"In the store, {report.amount_outliers.sentence('en')}")
    if report.credit_notes and (report.credit_notes.linked or report.credit_notes.unlinked):
        lines.append(report.credit_notes.sentence())
    return "\n".join(lines)


def dry_run_lines(report: LoadReport, db) -> list[str]:
    """What a dry run adds to the summary: per file, its column mapping, why it would fail, and its
    first rows as they would load; then that nothing was written."""
    lines = []
    for f in report.files:
        lines.append("")
        mapped = ", ".join(f"{h} → {field}" for h, field in f.columns.items())
        lines.append(f"{f.path} ({f.kind}): columns {mapped}"
                     + (f"; ignored: {', '.join(f.ignored_columns)}" if f.ignored_columns else "") + ".")
        if f.error:
            lines.append(f"it would fail the load: {f.error}")
        if f.preview:
            lines.append(f"its first {len(f.preview)} rows as they would load:")
            head = list(f.preview[0])
            lines += text_table([head] + [["" if r[k] is None else str(r[k]) for k in head] for r in f.preview],
                                rule=True)
    lines.append(f"dry run: the counts above are what the load would do; nothing was written to {db}.")
    return lines
