"""``crmkit demo-data DIR [--members N] [--seed S]``: write the demo chain's exports."""
from __future__ import annotations

import json
import time

from ..errors import InputError
from ..text import text_table

HELP = "generate a realistic demo retail chain's exports (deterministic)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-data", help=HELP,
        description="Write a demo chain's channel exports (POS in GBK, online mall, mini-program), campaigns, "
                    "coupons, points and till totals into DIR, with the hidden truth in DIR/truth.json. "
                    "Load them with `crmkit load DIR/*`.")
    p.add_argument("dir", metavar="DIR", help="folder to write into (created if missing)")
    p.add_argument("--members", type=int, default=200_000, help="number of distinct persons (default 200,000)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--json", action="store_true", help="print truth.json's summary as JSON")
    p.add_argument("--quiet", action="store_true",
                   help="no progress lines (it prints none; the list of files written is the result)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import generate

    if args.members < 100:
        raise InputError(f"--members must be at least 100, not {args.members}.")
    t0 = time.perf_counter()
    truth = generate(args.dir, members=args.members, seed=args.seed)
    if args.json:
        print(json.dumps({k: truth[k] for k in ("members", "source_records", "seed", "as_of", "files")},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"wrote {len(truth['files'])} exports to {args.dir} in {time.perf_counter() - t0:.1f} s "
          f"(seed {truth['seed']}, as of {truth['as_of']}):")
    for line in text_table([(name, f"{rows:,} rows") for name, rows in truth["files"].items()], right={1}):
        print(f"  {line}")
    print(f"{truth['members']:,} persons behind {truth['source_records']:,} member records; "
          f"{truth['transactions']['lines']:,} order lines; {len(truth['bad_rows'])} planted bad rows; "
          f"{len(truth['campaigns'])} campaigns. The truth is in {args.dir}/truth.json.")
    print(f"next: crmkit load {args.dir}/* --db data/crm.duckdb")
    return 0
