"""Benchmark: the whole ``crmkit score`` command against lifetimes' plain pipeline, as whole processes.

Both sides start as a new process from the data at rest and end with one row
per member written to a Parquet file; each is timed from start to exit (the
interpreter, its imports, reading, modelling and writing) and its peak
resident memory is the child's ``ru_maxrss`` (``os.wait4``).

- crmkit: ``python -m crmkit score SOURCE --as-of DATE --out scores.parquet``,
  everything the command does (data checks, RFM summary, BG/NBD and
  Gamma-Gamma with CLV intervals, the churn backtest and risk, RFM segments,
  lifecycle stages, tiers; into ``member_scores`` too when SOURCE is a store).
- lifetimes: a script that reads the transactions (the Parquet file with
  pandas, or the store's ``transactions`` table through DuckDB), then
  ``summary_data_from_transaction_data`` (weeks), ``BetaGeoFitter``,
  ``GammaGammaFitter`` on the repeat buyers, ``conditional_probability_alive``,
  ``conditional_expected_number_of_purchases_up_to_time`` (365 days) and
  ``customer_lifetime_value`` (12 months, 10% a year, times a 30% margin, as
  crmkit's defaults), and writes them.

The members are simulated as in ``benchmarks/clv_vs_lifetimes.py`` (BG/NBD
and Gamma-Gamma with the CDNOW estimates; 1M members make about 2.65M order
lines). The Parquet file, and the store that ``crmkit load FILE
--derive-members`` makes of it, are kept under ``data/bench/`` (git-ignored)
and reused; making them is not timed. Runs alternate crmkit and lifetimes on
the same source, so both meet the same load on a shared machine; the load
average is printed before and after.

    python benchmarks/score_vs_lifetimes.py [--members 1000000] [--seed 42] [--repeat 1] [--no-store]

Goal (issue 11): crmkit at least 20x faster than lifetimes, with a lower peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HORIZON_DAYS, DISCOUNT_RATE, MARGIN = 365, 0.10, 0.30  # crmkit score's defaults
TARGET_SPEED = 20.0


def prepare(members: int, seed: int, folder: Path, store: bool) -> dict:
    """The Parquet file (and the store loaded from it), made once per members and seed; returns their facts."""
    folder.mkdir(parents=True, exist_ok=True)
    facts_file = folder / "facts.json"
    facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
    data = folder / "transactions.parquet"
    if facts.get("members") != members or facts.get("seed") != seed or not data.exists():
        sys.path.insert(0, str(HERE))
        from clv_vs_lifetimes import AS_OF, simulate

        t0 = time.perf_counter()
        tx = simulate(members, seed)
        tx.to_parquet(data, index=False)
        facts = {"members": members, "seed": seed, "lines": len(tx), "as_of": AS_OF}
        del tx
        (folder / "crm.duckdb").unlink(missing_ok=True)
        facts_file.write_text(json.dumps(facts))
        print(f"simulated {members:,} members, {facts['lines']:,} order lines in "
              f"{time.perf_counter() - t0:.1f} s: {data}", flush=True)
    if store:
        load_store(data, folder / "crm.duckdb")
    return facts


def load_store(data: Path, db: Path) -> None:
    """``crmkit load DATA --derive-members`` into ``db``, once (not timed): the store a benchmark scores."""
    if db.exists():
        return
    t0 = time.perf_counter()
    tmp = db.with_name(db.name + ".tmp")
    tmp.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "crmkit", "load", str(data), "--db", str(tmp), "--kind",
                    "transactions", "--derive-members"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    tmp.rename(db)
    print(f"loaded {data.name} into {db} with `crmkit load --derive-members` in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)


def measure(cmd: list[str], log: Path, cwd: Path) -> dict:
    """Wall seconds and peak resident memory (KB, of the child and any children it waited for) of one process."""
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"failed (exit {proc.returncode}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return {"seconds": seconds, "peak_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}


def run_lifetimes(source: Path, as_of: str, out: Path) -> None:
    """lifetimes' plain pipeline, from the transactions at rest to a Parquet file of per-member values."""
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    if source.suffix == ".parquet":
        tx = pd.read_parquet(source, columns=["member_id", "order_time", "amount"])
    else:
        import duckdb

        con = duckdb.connect(str(source), read_only=True)
        tx = con.execute("SELECT member_id, order_time, amount FROM transactions").df()
        con.close()
    s = summary_data_from_transaction_data(tx, "member_id", "order_time", monetary_value_col="amount",
                                           observation_period_end=as_of, freq="D", freq_multiplier=7)
    del tx
    f, r, T, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
    bg = BetaGeoFitter().fit(f, r, T)
    repeat = s[f > 0]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    s["p_alive"] = bg.conditional_probability_alive(f, r, T)
    s["expected_purchases"] = bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS / 7, f, r, T)
    monthly = (1 + DISCOUNT_RATE) ** (1 / 12) - 1
    s["clv"] = MARGIN * gg.customer_lifetime_value(bg, f, r, T, m, time=12, discount_rate=monthly, freq="W")
    s.reset_index().to_parquet(out, index=False)


def run_pair(source: Path, as_of: str, work: Path, tag: str, repeat: int, crmkit_root: Path) -> dict:
    """crmkit score (the package in ``crmkit_root``) and lifetimes on one source, alternating, ``repeat`` times each."""
    crmkit_out, lifetimes_out = work / f"crmkit-{tag}.parquet", work / f"lifetimes-{tag}.parquet"
    sides = {
        "crmkit": [sys.executable, "-m", "crmkit", "score", str(source), "--as-of", as_of,
                   "--out", str(crmkit_out)],
        "lifetimes": [sys.executable, __file__, "--side", "lifetimes", "--source", str(source),
                      "--as-of", as_of, "--out", str(lifetimes_out)],
    }
    roots = {"crmkit": crmkit_root, "lifetimes": ROOT}
    runs = {side: [] for side in sides}
    for i in range(repeat):
        for side, cmd in sides.items():
            print(f"{tag}: {side} ({i + 1}/{repeat}) ...", flush=True)
            runs[side].append(measure(cmd, work / f"{side}-{tag}.log", roots[side]))
    res = {side: {"seconds": statistics.median(r["seconds"] for r in rs),
                  "peak_kb": max(r["peak_kb"] for r in rs),
                  "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                  "all_seconds": [r["seconds"] for r in rs]} for side, rs in runs.items()}
    res["stages"] = [line for line in (work / f"crmkit-{tag}.log").read_text().splitlines() if line.startswith("[")]
    res["totals"] = totals(crmkit_out, lifetimes_out)
    return res


def totals(crmkit_out: Path, lifetimes_out: Path) -> dict:
    """Members and summed outputs of both sides (not timed): a check that they did the same work."""
    import pandas as pd

    ours, ref = pd.read_parquet(crmkit_out), pd.read_parquet(lifetimes_out)
    return {"crmkit": {"members": len(ours), "p_alive": ours["p_alive"].sum(),
                       "expected_purchases": ours["expected_purchases"].sum(), "clv": ours["clv"].sum()},
            "lifetimes": {"members": len(ref), "p_alive": ref["p_alive"].sum(),
                          "expected_purchases": ref["expected_purchases"].sum(), "clv": ref["clv"].sum()}}


def report(name: str, res: dict) -> None:
    ours, ref = res["crmkit"], res["lifetimes"]
    print(f"\n{name}")
    print(f"{'':26}{'lifetimes':>12}{'crmkit':>12}")
    print(f"{'wall (s)':26}{ref['seconds']:12.1f}{ours['seconds']:12.1f}")
    print(f"{'cpu, user + sys (s)':26}{ref['cpu_s']:12.1f}{ours['cpu_s']:12.1f}")
    print(f"{'peak memory (MB)':26}{ref['peak_kb'] / 1024:12.0f}{ours['peak_kb'] / 1024:12.0f}")
    for key in ("members", "p_alive", "expected_purchases", "clv"):
        print(f"{key:26}{res['totals']['lifetimes'][key]:12,.0f}{res['totals']['crmkit'][key]:12,.0f}")
    speed, memory = ref["seconds"] / ours["seconds"], ours["peak_kb"] / ref["peak_kb"]
    print(f"speed ratio (lifetimes / crmkit): {speed:.2f}x; peak memory ratio (crmkit / lifetimes): {memory:.2f}")
    print(f"targets: >= {TARGET_SPEED:.0f}x faster: {'OK' if speed >= TARGET_SPEED else 'MISSED'}; "
          f"lower peak memory: {'OK' if memory < 1 else 'MISSED'}")
    print("crmkit score's stages (its progress lines):")
    for line in res["stages"]:
        print(f"  {line}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side per source; the median is shown")
    ap.add_argument("--no-store", action="store_true", help="only the Parquet file, not the store")
    ap.add_argument("--data", type=Path, help="folder for the file and store (default data/bench/score-N-seed)")
    ap.add_argument("--crmkit-root", type=Path, default=ROOT, metavar="DIR",
                    help="run the crmkit package in DIR (e.g. an unpacked `git archive` of another commit); "
                         "default this checkout")
    ap.add_argument("--side", choices=["lifetimes"], help=argparse.SUPPRESS)
    ap.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        run_lifetimes(args.source, args.as_of, args.out)
        return 0
    folder = (args.data or ROOT / "data" / "bench" / f"score-{args.members}-{args.seed}").resolve()
    facts = prepare(args.members, args.seed, folder, store=not args.no_store)
    sources = {"Parquet file": folder / "transactions.parquet"}
    if not args.no_store:
        sources["store (crmkit load)"] = folder / "crm.duckdb"
    load_before = os.getloadavg()
    results = {name: run_pair(src, facts["as_of"], folder, "store" if src.suffix == ".duckdb" else "file",
                              args.repeat, args.crmkit_root.resolve()) for name, src in sources.items()}
    load_after = os.getloadavg()
    print(f"\n{facts['members']:,} members, {facts['lines']:,} order lines, as of {facts['as_of']}; "
          f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"crmkit from {args.crmkit_root.resolve()}")
    for name, res in results.items():
        report(f"from the {name}", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
