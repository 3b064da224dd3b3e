"""Benchmark: ``crmkit score`` at scale, 10M members (about 26M order lines), as a whole process.

The members are simulated as in ``benchmarks/clv_vs_lifetimes.py`` (BG/NBD
and Gamma-Gamma with the CDNOW estimates, first purchases over 12 weeks, as
of 2025-04-20), in chunks of 1M members with vectorised numpy, each chunk
written as a row group of one Parquet file (``member_id, order_id,
order_time, amount``) under ``data/bench/scale-N-seed/`` (git-ignored). The
file is made once per members and seed and reused; making it is not timed.

Then ``python -m crmkit score FILE --as-of 2025-04-20 --out scores.parquet``
runs as a new process, timed from start to exit (interpreter, imports,
reading, modelling, writing); its peak resident memory is the child's
``ru_maxrss`` (``os.wait4``), as in ``benchmarks/score_vs_lifetimes.py``.
With ``--store`` the file is also loaded into a store (``crmkit load
--derive-members``, not timed) and scored from there. The load average is
printed before and after: the machine may be shared.

    python benchmarks/scale.py [--members 10000000] [--seed 42] [--store] [--repeat 1]

Goal (issue 11): 10M members scored in at most 60 s and 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from clv_vs_lifetimes import AS_OF, START, purchases  # noqa: E402
from score_vs_lifetimes import load_store, measure  # noqa: E402

TARGET_SECONDS, TARGET_GB = 60.0, 4.0
CHUNK = 1_000_000


def simulate_chunk(first_member: int, members: int, first_order: int, rng: np.random.Generator):
    """One chunk of members as a pyarrow table (``clv_vs_lifetimes.purchases``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    start = np.datetime64(START.date(), "s")
    member, days, amount = purchases(members, rng)
    ids = pa.array(member + first_member).cast(pa.string())
    orders = pa.array(np.arange(first_order, first_order + member.size)).cast(pa.string())
    return pa.table({
        "member_id": pc.binary_join_element_wise("M", pc.utf8_lpad(ids, 8, "0"), ""),
        "order_id": pc.binary_join_element_wise("O", orders, ""),
        "order_time": pa.array(start + np.floor(days * 86400).astype("timedelta64[s]")),
        "amount": pa.array(amount),
    })


def prepare(members: int, seed: int, folder: Path, store: bool) -> dict:
    """The Parquet file (and the store loaded from it), made once per members and seed; returns their facts."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    facts_file, data = folder / "facts.json", folder / "transactions.parquet"
    facts = json.loads(facts_file.read_text()) if facts_file.exists() else {}
    if facts.get("members") != members or facts.get("seed") != seed or not data.exists():
        t0 = time.perf_counter()
        tmp = folder / "transactions.parquet.tmp"
        lines, writer = 0, None
        try:
            for k, lo in enumerate(range(0, members, CHUNK)):
                chunk = simulate_chunk(lo, min(CHUNK, members - lo), lines, np.random.default_rng([seed, k]))
                writer = writer or pq.ParquetWriter(tmp, chunk.schema)
                writer.write_table(chunk)
                lines += chunk.num_rows
        finally:
            if writer is not None:
                writer.close()
        tmp.rename(data)
        (folder / "crm.duckdb").unlink(missing_ok=True)
        facts = {"members": members, "seed": seed, "lines": lines, "as_of": AS_OF}
        facts_file.write_text(json.dumps(facts))
        print(f"simulated {members:,} members, {lines:,} order lines in {time.perf_counter() - t0:.1f} s: {data}",
              flush=True)
    if store:
        load_store(data, folder / "crm.duckdb")
    return facts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1, help="runs per source; the median time is shown")
    ap.add_argument("--store", action="store_true", help="also score from a store loaded from the file")
    ap.add_argument("--data", type=Path, help="folder for the file and store (default data/bench/scale-N-seed)")
    args = ap.parse_args()
    folder = (args.data or ROOT / "data" / "bench" / f"scale-{args.members}-{args.seed}").resolve()
    facts = prepare(args.members, args.seed, folder, args.store)
    sources = {"Parquet file": folder / "transactions.parquet"}
    if args.store:
        sources["store"] = folder / "crm.duckdb"
    load_before = os.getloadavg()
    results = {}
    for name, src in sources.items():
        tag = "store" if src.suffix == ".duckdb" else "file"
        cmd = [sys.executable, "-m", "crmkit", "score", str(src), "--as-of", facts["as_of"],
               "--out", str(folder / f"scores-{tag}.parquet")]
        runs = []
        for i in range(args.repeat):
            print(f"{name}: crmkit score ({i + 1}/{args.repeat}) ...", flush=True)
            runs.append(measure(cmd, folder / f"crmkit-{tag}.log", ROOT))
        stages = [line for line in (folder / f"crmkit-{tag}.log").read_text().splitlines() if line.startswith("[")]
        results[name] = (runs, stages)
    load_after = os.getloadavg()
    print(f"\n{facts['members']:,} members, {facts['lines']:,} order lines, as of {facts['as_of']}; "
          f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    for name, (runs, stages) in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        peak_gb = max(r["peak_kb"] for r in runs) / 1024 ** 2
        cpu = statistics.median(r["cpu_s"] for r in runs)
        print(f"\nfrom the {name}: wall {seconds:.1f} s (cpu {cpu:.1f} s), peak memory {peak_gb:.2f} GB")
        print(f"targets: <= {TARGET_SECONDS:.0f} s: {'OK' if seconds <= TARGET_SECONDS else 'MISSED'}; "
              f"<= {TARGET_GB:.0f} GB: {'OK' if peak_gb <= TARGET_GB else 'MISSED'}")
        print("crmkit score's stages (its progress lines):")
        for line in stages:
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
