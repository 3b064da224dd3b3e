"""``crmkit campaign-roi SOURCE --campaign ID [--json]``: did the campaign pay?

Measures the campaign against its randomized control group (see
:mod:`crmkit.campaigns.queries` for the window and the outcomes, counted on
the engine's purchases, and :mod:`crmkit.campaigns.measurement` for lifts,
cost, ROI and the verdict) and prints a readable summary,
or the JSON contract with ``--json``. A campaign without a control group
gets descriptive numbers and ``"incrementality": null`` with a reason, never
an ROI.
"""
from __future__ import annotations

import argparse
import json

from ..currency import use_store
from ..defaults import INTERVAL_METHODS
from ..i18n import LANGS

HELP = "incremental lift, ROI and verdict of a campaign against its control group"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "campaign-roi",
        help=HELP,
        description="Measure a campaign against its randomized control group: conversion, revenue and "
                    "gross-margin lift with 95% intervals, ROI with its interval and p-value, and a verdict "
                    "(pays / does not pay / cannot tell yet).",
    )
    p.add_argument("source", metavar="SOURCE", help="the member store (.duckdb)")
    p.add_argument("--campaign", required=True, metavar="ID", help="campaign id in the campaigns table")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--method", choices=INTERVAL_METHODS, default=INTERVAL_METHODS[0],
                   help="intervals for revenue and margin per member: Welch t (default) or percentile bootstrap")
    p.add_argument("--lang", choices=LANGS, default="zh", help="language of texts and labels (default: zh)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines (it prints none; accepted as by every command)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..campaigns import measure
    from ..engine.store import open_source

    con = open_source(args.source)
    try:
        money = use_store(con)  # amounts in the store's currency
        result = measure(con, args.campaign, method=args.method)
    finally:
        con.close()
    if args.json:
        print(json.dumps({**result.to_dict(args.lang), "currency": money.code}, ensure_ascii=False, indent=2))
    else:
        print(result.summary(args.lang))
    return 0
