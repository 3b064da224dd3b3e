"""``crmkit score SOURCE --as-of DATE``: one row of scores per member, to a file and/or the store."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import currency
from ..defaults import DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON_DAYS, DEFAULT_MARGIN, DEFAULT_WINDOW_DAYS, MODEL_NAMES
from ..errors import CrmkitError, InputError
from ..i18n import LANGS
from ..progress import Progress

if TYPE_CHECKING:
    from ..engine.store import Connection

HELP = "score every member: p_alive, CLV with interval, churn risk, RFM, stage, tier"

WRITERS = {
    ".csv": lambda df, path: df.to_csv(path, index=False),
    ".parquet": lambda df, path: df.to_parquet(path, index=False),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score",
        help=HELP,
        description="Score every member who has bought up to --as-of: BTYD model (BG/NBD by default) "
                    "and Gamma-Gamma for CLV with its 90% interval, churn risk and band, RFM scores, "
                    "lifecycle stage and tier. A store gets the scores in member_scores and the run "
                    "(as-of, model, parameters, data fingerprint) in score_runs, which reports and audiences "
                    "of the same as-of, settings and data reuse instead of scoring again (rows and run of the "
                    "same as-of date are replaced). An as-of after the last purchase in the data is refused "
                    "(every member would look churned) unless --allow-future is given; one before the first "
                    "purchase, or data whose amounts are all zero, is refused.",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="member store (.duckdb) or transactions file (CSV / Parquet) with at least "
                        "member_id, order_time, amount")
    p.add_argument("--as-of", required=True, metavar="DATE", help="score date, YYYY-MM-DD (inclusive)")
    p.add_argument("--allow-future", action="store_true",
                   help="score an as-of after the last purchase in the data anyway (every member looks churned)")
    p.add_argument("--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS, metavar="N",
                   help=f"CLV horizon in days (default {DEFAULT_HORIZON_DAYS})")
    p.add_argument("--discount-rate", type=float, default=DEFAULT_DISCOUNT_RATE, metavar="R",
                   help=f"annual discount rate (default {DEFAULT_DISCOUNT_RATE})")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="M",
                   help=f"gross margin as a share of net sales (default {DEFAULT_MARGIN})")
    p.add_argument("--model", default="bgnbd", choices=MODEL_NAMES,
                   help="transaction model (default bgnbd: BG/NBD)")
    p.add_argument("--churn-days", type=int, default=DEFAULT_WINDOW_DAYS, metavar="N",
                   help=f"churn = no purchase in the next N days (default {DEFAULT_WINDOW_DAYS})")
    p.add_argument("--out", metavar="FILE", help="write the scores to FILE (.csv or .parquet)")
    p.add_argument("--lang", choices=LANGS, default="zh", help="language of the summary (default zh)")
    p.add_argument("--json", action="store_true",
                   help="print the summary as JSON: members, currency, total CLV with its interval, churn bands")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines on stderr (warnings about numbers not to trust are still printed)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    try:
        dt.date.fromisoformat(args.as_of)
    except ValueError:
        raise CrmkitError(f"--as-of {args.as_of!r} is not a date; use YYYY-MM-DD.") from None
    if args.horizon_days <= 0 or args.churn_days <= 0:
        raise CrmkitError("--horizon-days and --churn-days must be positive numbers of days.")
    if args.discount_rate < 0:
        raise CrmkitError("--discount-rate must be an annual rate ≥ 0, e.g. 0.1 for 10% a year.")
    if not 0 < args.margin <= 1:
        raise CrmkitError("--margin must be a share of net sales in (0, 1], e.g. 0.3.")
    if args.out and Path(args.out).suffix.lower() not in WRITERS:
        raise InputError("the output must end in .csv or .parquet.", path=args.out)
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise InputError("its folder does not exist.", path=args.out)


def _write(table, path: Path) -> None:
    """Write whole or not at all: a temporary file is renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        WRITERS[path.suffix.lower()](table, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the scores ({err.strerror or type(err).__name__}).", path=str(path)) from err


def _is_store(con: Connection) -> bool:
    """True when ``con`` is a store file (not the in-memory view over a transactions file)."""
    return con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
                       ).fetchone()[0] is not None


def run(args: argparse.Namespace) -> int:
    from ..engine.snapshots import record_run
    from ..engine.store import DataError
    from ..scoring import score_members
    from ..engine.store import open_source

    _check(args)
    run = None
    con = open_source(args.source, read_only=False)
    try:
        con.execute("SET enable_progress_bar = false")  # our own stage lines report progress
        store = _is_store(con)
        money = currency.use_store(con)  # the summary's amounts are in the store's currency (CNY for a file)
        progress = Progress("score", enabled=not args.quiet)
        try:
            notes = _data_checks(con, args)
            result = score_members(con, args.as_of, model=args.model, horizon_days=args.horizon_days,
                                   discount_rate=args.discount_rate, margin=args.margin,
                                   churn_days=args.churn_days, progress=progress)
        except DataError as err:  # a bad value in the file surfaces when the engine reads it
            raise InputError(f"cannot score it ({str(err).splitlines()[0]}).", path=args.source) from err
        if store:  # a score snapshot: reports and audiences of this date and data reuse it
            run = record_run(con, result, dict(model=args.model, horizon_days=args.horizon_days,
                                               discount_rate=args.discount_rate, margin=args.margin,
                                               churn_days=args.churn_days))
            progress.step(f"{len(result.table):,} rows written to member_scores for {result.as_of} "
                          f"(score run {run.run_id})")
    finally:
        con.close()
    if args.out:
        _write(result.table, Path(args.out))
        progress.step(f"wrote {args.out}")
    for note in notes:  # numbers not to trust: said even with --quiet, which only silences progress
        print(f"crmkit score: {note}", file=sys.stderr)
    print(json.dumps(_summary_json(result, money, notes, run), ensure_ascii=False, indent=2) if args.json
          else result.summary_text(args.lang))
    return 0


def _summary_json(result, money: currency.Currency, notes: list[str], run=None) -> dict:
    """The ``--json`` summary: what the console summary says, with the currency of every amount and
    the score run recorded in a store (``score_run``: its id and fingerprints; null for a file)."""
    total = result.total_clv
    return {"as_of": result.as_of.isoformat(), "members": len(result.table), "currency": money.code,
            "horizon_days": result.horizon_days, "interval": result.interval,
            "total_clv": {k: float(total[k]) for k in ("clv", "clv_low", "clv_high")},
            "churn_bands": {row.churn_band: int(row.members) for row in result.band_counts("en").itertuples()},
            "warnings": notes, "score_run": run.to_dict() if run is not None else None}


def _data_checks(con: Connection, args: argparse.Namespace) -> list[str]:
    """Refuse what cannot be scored, in one sentence; return the warnings to print (:mod:`crmkit.checks`).

    An as-of before the first purchase (or data without purchases) and data
    whose amounts are all zero are refused; an as-of after the last purchase
    is refused unless ``--allow-future``, and then warned about. Orders above
    the outlier cut are warned about.
    """
    from .. import checks

    notes = []
    position = checks.as_of_position(con, args.as_of)
    if position is not None:
        if position[0] != "after" or not args.allow_future:
            raise CrmkitError(checks.as_of_check(con, args.as_of, args.lang, allow_future_hint=True))
        notes.append(checks.as_of_check(con, args.as_of, args.lang))
    zero = checks.zero_amounts_check(con, args.as_of, args.lang)
    if zero:
        raise CrmkitError(zero)
    outliers = checks.amount_outliers(con, args.as_of).sentence(args.lang)
    return notes + ([outliers] if outliers else [])
