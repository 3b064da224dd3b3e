"""Load benchmark: the demo chain with 1M members (~2.6M transaction lines), loaded into a fresh store.

    python benchmarks/load.py                 # 1,000,000 members; must load in under 30 s
    python benchmarks/load.py --all           # also campaigns, assignments, coupons, points, till totals
    python benchmarks/load.py --members 200000 --data /tmp/demo-200k

Generating the exports is not timed (they are kept in --data, and reused when
that folder already holds the same members and seed). The load is: the
stores, products, the three channels' member exports and their order exports
read, validated, identities resolved, all tables written, committed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from crmkit.commands.load import summary
from crmkit.demo import generate
from crmkit.io import load_files
from crmkit.io.kinds import kind_from_name

BUDGET_S = 30.0
CORE = ("stores", "products", "members", "transactions")


def exports(folder: Path, members: int, seed: int) -> dict:
    truth_file = folder / "truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
        if truth["members"] == members and truth["seed"] == seed:
            return truth
    t0 = time.perf_counter()
    truth = generate(folder, members=members, seed=seed)
    print(f"generated {members:,} members in {time.perf_counter() - t0:.1f} s ({folder})", file=sys.stderr)
    return truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, help="folder for the exports (default: a temporary folder)")
    parser.add_argument("--all", action="store_true", help="load every export, not only members and orders")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        folder = args.data or Path(tmp) / "exports"
        truth = exports(folder, args.members, args.seed)
        db = Path(tmp) / "crm.duckdb"
        t0 = time.perf_counter()
        files = [folder / name for name in truth["files"] if args.all or kind_from_name(name).name in CORE]
        report = load_files(db, files, progress=True)
        elapsed = time.perf_counter() - t0
    print(summary(report))
    lines = sum(f.rows for f in report.files if f.kind == "transactions")
    rows = sum(f.rows for f in report.files)
    print(f"\nloaded {rows:,} rows ({lines:,} transaction lines, {report.members:,} members) "
          f"in {elapsed:.1f} s: {rows / elapsed:,.0f} rows/s")
    print(f"members: {report.members:,} loaded, {truth['members']:,} true" + (
        "" if args.all else f"; budget {BUDGET_S:.0f} s for 1M members: {'OK' if elapsed < BUDGET_S else 'OVER'}"))
    return 0 if report.members == truth["members"] else 1


if __name__ == "__main__":
    sys.exit(main())
