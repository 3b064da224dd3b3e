"""``crmkit fit SOURCE``: fit a transaction model (BG/NBD, Pareto/NBD, MBG/NBD) and print its parameters."""
from __future__ import annotations

import argparse
import json
import sys

from ..defaults import MODEL_NAMES
from ..errors import CrmkitError
from ..progress import Progress

HELP = "fit a buy-till-you-die model to the transactions"
_UNITS = {"D": "days", "W": "weeks (days / 7)"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "fit", help=HELP,
        description="Fit a BG/NBD, Pareto/NBD or MBG/NBD model by maximum likelihood on the "
                    "members' RFM summary and print its parameters with standard errors.",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="member store (.duckdb) or transactions file (CSV / Parquet with "
                        "member_id, order_time, amount)")
    p.add_argument("--model", choices=MODEL_NAMES, default="bgnbd", help="model (default: bgnbd)")
    p.add_argument("--period", choices=sorted(_UNITS), default="W",
                   help="time unit: W = weeks (days / 7), D = days (default: W)")
    p.add_argument("--calibration-end", metavar="DATE",
                   help="last day of data used (inclusive; default: the last order day); a day outside "
                        "the data is refused")
    p.add_argument("--allow-future", action="store_true",
                   help="fit with a calibration end after the last purchase anyway (the days without data "
                        "read as dropout)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines (warnings are still printed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..clv import MODELS, fit_with_fallback
    from ..rfm import as_date, compress, rfm_summary
    from ..engine.store import open_source

    progress = Progress("crmkit fit", enabled=not args.quiet)
    con = open_source(args.source)
    try:
        if args.calibration_end:
            end = as_date(args.calibration_end, "--calibration-end")
            _check_end(con, end, args.allow_future)
        else:
            last = con.execute("SELECT CAST(max(order_time) AS DATE) FROM transactions").fetchone()[0]
            if last is None:
                raise CrmkitError(f"{args.source}: no transactions to fit.")
            end = last
        progress.step(f"summarising purchases up to {end} in {_UNITS[args.period]}")
        summary = rfm_summary(con, end, period=args.period)
    finally:
        con.close()
    if summary.empty:
        raise CrmkitError(f"{args.source}: no purchases on or before {end}.")
    rows = compress(summary)
    progress.step(f"fitting {MODELS[args.model].label} on {len(summary):,} members ({len(rows):,} distinct rows)")
    model = fit_with_fallback(args.model, rows)  # no interior maximum: the simpler model, labelled as such
    if model.fit_note_ and not args.json:  # a fallback, or a fit at a limit of the model
        print(f"crmkit fit: {model.fit_note_['en']}", file=sys.stderr)
    result = {**model.as_dict(), "period": args.period, "calibration_end": end.isoformat()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(_text(model, result))
    return 0


def _check_end(con, end, allow_future: bool) -> None:
    """Refuse a calibration end outside the data, in one sentence (:func:`crmkit.checks.as_of_position`)."""
    from .. import checks

    position = checks.as_of_position(con, end)
    if position is None:
        return
    kind, first, last = position
    if kind == "empty":
        raise CrmkitError("the data holds no purchases: there is nothing to fit.")
    if kind == "before":
        raise CrmkitError(f"--calibration-end {end} is before the first purchase in the data ({first}): "
                          f"there is nothing to fit.")
    if not allow_future:
        raise CrmkitError(f"--calibration-end {end} is after the last purchase in the data ({last}): the "
                          f"{(end - last).days:,} days without data would read as members dropping out; "
                          f"use a calibration end up to {last}, or pass --allow-future to fit anyway.")
    print(f"crmkit fit: --calibration-end {end} is after the last purchase in the data ({last}): the "
          f"{(end - last).days:,} days without data read as members dropping out.", file=sys.stderr)


def _text(model, result: dict) -> str:
    lines = [f"{model.label} on {result['n_members']:,} members, in {_UNITS[result['period']]}, "
             f"data up to {result['calibration_end']}"]
    for name, value in result["params"].items():
        lines.append(f"  {name:<6} {value:10.4f}   (se {result['standard_errors'][name]:.4f})")
    lines.append(f"log-likelihood {result['log_likelihood']:,.2f}")
    return "\n".join(lines)
