"""``crmkit load FILE... [--db PATH] [--kind KIND] [--map SRC=DST ...] [--encoding ENC] [--date-format FMT]
[--derive-members] [--json]``: load channel exports into the member store."""
from __future__ import annotations

import json

from ..errors import InputError
from ..io import DERIVE_KIND, KINDS, LoadReport, load_files
from ..store import default_db_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "load", help="load channel exports (CSV, Excel, Parquet, text) into the member store",
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
    p.add_argument("--json", action="store_true", help="print the result as JSON")
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
    report = load_files(args.db or default_db_path(), args.files, kind=args.kind, column_map=parse_map(args.map),
                        encoding=args.encoding, derive_members=args.derive_members, progress=True,
                        date_format=args.date_format)
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else summary(report))
    return 0


def rules(report: LoadReport) -> list[str]:
    """One line per loaded file that states the rules applied: encoding, dates, orders, duplicates."""
    out = []
    for f in report.files:
        if f.status != "loaded":
            continue
        parts = []
        if f.encoding_rule:
            parts.append(f"encoding {f.encoding}, as {f.encoding_rule}")
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
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += rules(report)
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
