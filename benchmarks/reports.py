"""Benchmark: the whole ``crmkit report`` command (all four reports) on the demo store, as a process.

The demo store is made once per members and seed under ``data/bench/`` (git-ignored) as ``make demo``
makes it (``crmkit demo-data``, then ``crmkit load``), and reused. Before the timed runs the store is
scored (``crmkit score``, not timed), so that the reports find a score snapshot, as they do after
``make demo`` or a nightly ``crmkit score``. Then

    python -m crmkit report --db STORE --as-of 2026-06-30 --out DIR --quiet

is timed from start to exit, as a new process: the interpreter and its imports, the copy of the store,
the four notebooks with their kernels, the HTML and the manifest. Wall seconds, CPU seconds (user + sys
of the command and its kernels) and peak resident memory (the largest single process, ``os.wait4``)
are printed, with each notebook's seconds from the manifest.

Reports keep slow, deterministic results in crmkit's cache (:mod:`crmkit.cache`: the holdout comparison
of the models, the CJK font subsets of the HTML), keyed by everything they are computed from. The
first run is therefore timed with an empty cache (``cold``: as after new data or new code), the
others with the cache the previous run left (``warm``: the nightly case); the benchmark uses a cache
folder of its own. The load average is printed before and after: on a shared machine, compare runs
made under the same load.

    python benchmarks/reports.py [--members 200000] [--seed 42] [--repeat 3] [--crmkit-root DIR]

Goal (issue 11): the four reports on the 200k demo in at most 20 s once a snapshot exists.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AS_OF = "2026-06-30"  # make demo's
TARGET_SECONDS = 20.0


def crmkit(args: list[str], root: Path, env: dict, **kw) -> subprocess.CompletedProcess:
    """``python -m crmkit ARGS`` with the package of ``root``, failing loudly."""
    return subprocess.run([sys.executable, "-m", "crmkit", *args], cwd=root, env=env, check=True,
                          stdout=subprocess.DEVNULL, **kw)


def prepare(members: int, seed: int, folder: Path, root: Path, env: dict) -> Path:
    """The demo store of ``members`` and ``seed`` (made once, as make demo does), scored for ``AS_OF``."""
    db = folder / "crm.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        demo = folder / "demo"
        shutil.rmtree(demo, ignore_errors=True)
        crmkit(["demo-data", str(demo), "--members", str(members), "--seed", str(seed), "--quiet"], root, env)
        tmp = folder / "crm.duckdb.tmp"
        tmp.unlink(missing_ok=True)
        crmkit(["load", *map(str, sorted(demo.iterdir())), "--db", str(tmp), "--quiet"], root, env)
        tmp.rename(db)
        print(f"made the demo store ({members:,} members, seed {seed}) in {time.perf_counter() - t0:.1f} s: {db}",
              flush=True)
    t0 = time.perf_counter()
    crmkit(["score", str(db), "--as-of", AS_OF, "--quiet"], root, env)
    print(f"scored it for {AS_OF} (crmkit score, not timed) in {time.perf_counter() - t0:.1f} s", flush=True)
    return db


def measure(cmd: list[str], root: Path, env: dict, log: Path) -> dict:
    """Wall and CPU seconds and peak resident memory (KB) of one process and the children it waited for."""
    t0 = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=err, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"failed (exit {code}): {' '.join(cmd)}\n{log.read_text()[-3000:]}")
    return {"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_kb": usage.ru_maxrss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs: the first cold, the others warm")
    ap.add_argument("--data", type=Path, help="folder of the store (default data/bench/reports-N-seed)")
    ap.add_argument("--crmkit-root", type=Path, default=ROOT, metavar="DIR",
                    help="run the crmkit package in DIR (e.g. an unpacked `git archive` of another commit), "
                         "notebooks and kernels included; default this checkout")
    args = ap.parse_args()
    root = args.crmkit_root.resolve()
    folder = (args.data or ROOT / "data" / "bench" / f"reports-{args.members}-{args.seed}").resolve()
    cache = folder / "cache"
    env = {**os.environ, "PYTHONPATH": str(root), "CRMKIT_CACHE_DIR": str(cache)}
    db = prepare(args.members, args.seed, folder, root, env)
    shutil.rmtree(cache, ignore_errors=True)  # the first run starts cold
    out = folder / "reports"
    cmd = [sys.executable, "-m", "crmkit", "report", "--db", str(db), "--as-of", AS_OF, "--out", str(out),
           "--quiet"]
    load_before = os.getloadavg()
    runs = []
    for i in range(max(1, args.repeat)):
        kind = "cold" if i == 0 else "warm"
        print(f"crmkit report ({i + 1}/{args.repeat}, {kind} cache) ...", flush=True)
        run = measure(cmd, root, env, folder / f"report-{i + 1}.log")
        manifest = json.loads((out / AS_OF / "manifest.json").read_text())
        run.update(kind=kind, notebooks={n["name"]: (n["status"], n["duration_s"]) for n in manifest["notebooks"]})
        runs.append(run)
    load_after = os.getloadavg()

    print(f"\n`{' '.join(cmd[1:])}`\n{args.members:,} members, seed {args.seed}; {os.cpu_count()} CPUs; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; crmkit from {root}")
    names = list(runs[0]["notebooks"])
    print(f"{'run':10}{'wall (s)':>10}{'cpu (s)':>10}{'peak (MB)':>11}" + "".join(f"{n:>18}" for n in names))
    for i, r in enumerate(runs, 1):
        label = f"{i} {r['kind']}"
        cells = "".join(f"{status + ' ' + format(d, '.1f') + 's':>18}" for status, d in
                        (r["notebooks"][n] for n in names))
        print(f"{label:10}{r['seconds']:10.1f}{r['cpu_s']:10.1f}{r['peak_kb'] / 1024:11.0f}{cells}")
    for kind in ("cold", "warm"):
        seconds = [r["seconds"] for r in runs if r["kind"] == kind]
        if seconds:
            median = statistics.median(seconds)
            print(f"{kind}: median {median:.1f} s against the goal of {TARGET_SECONDS:.0f} s: "
                  f"{'OK' if median <= TARGET_SECONDS else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
