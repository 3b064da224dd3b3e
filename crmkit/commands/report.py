"""``crmkit report [NAME...] --db PATH --as-of DATE [--param K=V ...] [--out DIR]``."""
from __future__ import annotations

import argparse

from ..errors import CrmkitError

HELP = "run the report notebooks with papermill into DIR/<as_of>/<lang>/<scope>/"


def register(subparsers) -> None:
    from ..reports import NOTEBOOKS, parameters_help

    try:
        listed = parameters_help()
    except (CrmkitError, OSError, ValueError, SyntaxError) as err:  # notebooks missing or unreadable: the
        listed = f"  (cannot list them: {err})"                      # other commands must still start
    p = subparsers.add_parser(
        "report", help=HELP,
        description="Run the report notebooks (papermill, kernel python3) and write, into "
                    "DIR/<as_of>/<lang>/<scope>/ (scope: chain, or e.g. region-华南 from --param region=华南), "
                    "each executed .ipynb, an HTML without code and a manifest.json. "
                    "A section that cannot be computed shows one sentence and the rest of its report "
                    "stands; a report with nothing to report on (campaign_review on a store without "
                    "campaigns) is skipped with its reason. Exits non-zero when any notebook fails; "
                    "the others still run. Every notebook reads one snapshot of the store, copied at the "
                    "start while no load can write, and the manifest's data fingerprint is that "
                    "snapshot's; a load running at that moment makes the report stop with one sentence. "
                    "The value reports read the score snapshot (crmkit score) of the as-of whose model, "
                    "horizon, discount rate, margin and data match; without one, members are scored once "
                    "into the copy for all notebooks (the store is never written). Each report's header "
                    "and the manifest say which score run was used. The notebooks run side by side, one "
                    "per core; slow results that only change with the data (the models' holdout "
                    "comparison, the HTML's font subset) are kept in crmkit's cache ($CRMKIT_CACHE_DIR, "
                    "else ~/.cache/crmkit), keyed by everything they are computed from.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="notebooks: " + ", ".join(NOTEBOOKS) + "\n"
               "parameters (--param K=V; the notebooks' parameters cells, with their defaults):\n"
               + listed + "\n"
               "example: crmkit report --db data/crm.duckdb --as-of 2026-06-30 --param lang=en")
    p.add_argument("names", nargs="*", metavar="NAME", help="notebooks to run (default: all)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="member store (default: $CRMKIT_DB or data/crm.duckdb)")
    p.add_argument("--as-of", required=True, metavar="DATE", help="report date, YYYY-MM-DD")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="notebook parameter, repeatable (e.g. lang=en); every parameter is listed below "
                        "(the store and the date are set only by --db and --as-of)")
    p.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default: reports)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines (skipped reports and sections, and failures, are still printed)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reports import parse_param, report_dir, run_reports
    from ..paths import default_db_path

    params = dict(parse_param(p) for p in args.param)
    manifest = run_reports(args.db or default_db_path(), args.as_of, args.names, params, args.out,
                           progress=not args.quiet)
    folder = report_dir(args.out, manifest["as_of"], params).as_posix()
    failed = [n for n in manifest["notebooks"] if n["status"] == "failed"]
    written = [n for n in manifest["notebooks"] if n["status"] == "ok"]
    print(f"{len(written)} of {len(manifest['notebooks'])} reports written "
          f"to {folder}/ in {manifest['duration_s']:.1f}s (manifest.json).")
    for n in manifest["notebooks"]:
        if n["status"] == "skipped":
            print(f"{n['name']} skipped: {n['reason']}")
        for part in n.get("sections_skipped") or []:
            print(f"{n['name']}: section {part['section']!r} stepped aside: {part['sentence']}")
    if failed:
        raise CrmkitError("; ".join(f"{n['name']} failed: {n['error']}" for n in failed)
                          + f" (executed notebooks kept in {folder}/).")
    return 0
