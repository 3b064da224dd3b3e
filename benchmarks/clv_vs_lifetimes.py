"""Benchmark: crmkit's CLV pipeline against lifetimes' on 1M simulated members (~2.6M transactions).

Members are simulated from the BG/NBD and Gamma-Gamma models with the CDNOW
estimates (seeded): first purchases over 12 weeks, then repeat purchases up to
week 68 until they drop out, order values Gamma-Gamma in yuan. Each side runs
in its own subprocess, from the data at rest (lifetimes: a Parquet file read
into pandas; crmkit: the DuckDB member store) to the same outputs: the RFM
summary (weeks = days / 7), BG/NBD and Gamma-Gamma fits, P(alive), expected
purchases over 365 days and 12-month CLV.

- lifetimes: ``summary_data_from_transaction_data``, ``BetaGeoFitter``,
  ``GammaGammaFitter``, ``conditional_probability_alive``,
  ``conditional_expected_number_of_purchases_up_to_time`` and
  ``customer_lifetime_value`` (12 "months" of 4.345 weeks) on a pandas frame;
- crmkit: ``rfm_summary`` in DuckDB on the member store, ``BetaGeo`` and
  ``GammaGamma`` fitted side by side (``fit_value_models``, on compressed rows,
  internally) and ``customer_value``, whose
  table holds P(alive), expected purchases and CLV (365 days in weekly steps,
  with 90% intervals).

It prints the speed ratio, each side's peak resident memory (``ru_maxrss`` of
the child), and the largest relative difference between crmkit's BG/NBD
parameters and those of lifetimes' ``BetaGeoFitter`` fitted on crmkit's own
summary (after the timed runs). Both children run with one BLAS thread
(``OPENBLAS_NUM_THREADS=1``): on a small shared machine BLAS threads only
contend.

    python benchmarks/clv_vs_lifetimes.py [--members 1000000] [--seed 42]

Targets: crmkit at least 20x faster, parameters within 1e-4, lower peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2024-01-01")
FIRST_PURCHASE_DAYS = 84          # first purchases spread over 12 weeks
AS_OF = "2025-04-20"              # the last day of week 68
HORIZON_DAYS = 365
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # per week (FHL 2005, CDNOW)
TARGET_SPEED, TARGET_PARAMS = 20.0, 1e-4
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44 * 4}                  # mean order ≈ ¥141


def purchases(members: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(member, days, amount)`` of a BG/NBD + Gamma-Gamma population: member index (0-based), days
    after START and amount of every order, first purchases first, then the repeat purchases by member."""
    end = (pd.Timestamp(AS_OF) + pd.Timedelta(days=1) - START) / pd.Timedelta(days=1)
    first = rng.uniform(0, FIRST_PURCHASE_DAYS, members)             # days after START
    weeks = (end - first) / 7                                         # time to the end, in weeks
    lam = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], members)
    drop = rng.beta(BGNBD["a"], BGNBD["b"], members)
    # repeat purchases: the first min(N, J) arrivals of a Poisson process over the window, where
    # N ~ Poisson(lam * weeks) arrivals and the member drops out after repeat purchase J ~ Geometric(p)
    n = rng.poisson(lam * weeks)
    keep = np.minimum(n, rng.geometric(drop))
    who = np.repeat(np.arange(members), n)
    at = rng.uniform(0, 1, who.size) * weeks[who]
    order = np.lexsort((at, who))
    who, at = who[order], at[order]
    rank = np.arange(who.size) - np.repeat(np.cumsum(n) - n, n)
    who, at = who[rank < keep[who]], at[rank < keep[who]]
    member = np.concatenate([np.arange(members), who])
    days = np.concatenate([first, first[who] + at * 7])
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], members)
    amount = np.round(rng.gamma(SPEND["p"], 1 / nu[member]), 2)
    return member, days, amount


def simulate(members: int, seed: int) -> pd.DataFrame:
    """Transactions (member_id, order_id, order_time, amount) of a BG/NBD + Gamma-Gamma population."""
    member, days, amount = purchases(members, np.random.default_rng(seed))
    ids = np.char.add("M", np.char.zfill(member.astype(str), 7))
    return pd.DataFrame({
        "member_id": ids,
        "order_id": np.char.add("O", np.arange(member.size).astype(str)),
        "order_time": START + pd.to_timedelta(np.floor(days * 86400), unit="s"),
        "amount": amount,
    })


def run_lifetimes(data: Path, out: Path) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    t0 = time.perf_counter()
    tx = pd.read_parquet(data / "transactions.parquet")
    s = summary_data_from_transaction_data(tx, "member_id", "order_time", monetary_value_col="amount",
                                           observation_period_end=AS_OF, freq="D", freq_multiplier=7)
    t_summary = time.perf_counter()
    bg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    rep = s[s["frequency"] > 0]
    gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    t_fit = time.perf_counter()
    f, r, T, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
    p_alive = bg.conditional_probability_alive(f, r, T)
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS / 7, f, r, T)
    clv = gg.customer_lifetime_value(bg, f, r, T, m, time=12, discount_rate=0.01, freq="W")
    t_end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # untimed: lifetimes' BG/NBD on crmkit's own summary
    ours = pd.read_parquet(data / "crmkit_summary.parquet").sort_index()
    ref = BetaGeoFitter().fit(ours["frequency"], ours["recency"], ours["T"])
    mine = s.sort_index()[["frequency", "recency", "T"]].to_numpy()
    same = mine.shape == ours[["frequency", "recency", "T"]].shape and np.allclose(
        mine, ours[["frequency", "recency", "T"]].to_numpy(), rtol=0, atol=1e-9)
    out.write_text(json.dumps({
        "seconds": t_end - t0,
        "stages": {"summary": t_summary - t0, "fit": t_fit - t_summary, "predict+clv": t_end - t_fit},
        "peak_kb": peak,
        "params": bg.params_.to_dict(),
        "params_on_crmkit_summary": ref.params_.to_dict(),
        "same_summary": bool(same),
        "members": int(len(s)),
        "totals": {"p_alive": float(p_alive.sum()), "purchases": float(purchases.sum()), "clv": float(clv.sum())},
    }))


def run_crmkit(data: Path, out: Path) -> None:
    import crmkit
    from crmkit.clv import BetaGeo, customer_value, fit_value_models
    from crmkit.rfm import rfm_summary

    t0 = time.perf_counter()
    con = crmkit.connect(data / "crm.duckdb", read_only=True)
    s = rfm_summary(con, AS_OF, period="W")
    con.close()
    t_summary = time.perf_counter()
    bg, gg = fit_value_models(BetaGeo(), s)  # the two fits side by side, as `crmkit score` does
    t_fit = time.perf_counter()
    # one table: p_alive, expected purchases over the horizon, spend and CLV with its interval
    value = customer_value(bg, gg, s["frequency"], s["recency"], s["T"], s["monetary"], horizon_days=HORIZON_DAYS,
                           discount_rate_annual=1.01 ** 12 - 1, margin=1.0)  # 1% a month, as lifetimes' run
    t_end = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s[["member_id", "frequency", "recency", "T"]].set_index("member_id").to_parquet(data / "crmkit_summary.parquet")
    out.write_text(json.dumps({
        "seconds": t_end - t0,
        "stages": {"summary": t_summary - t0, "fit": t_fit - t_summary, "predict+clv": t_end - t_fit},
        "peak_kb": peak,
        "params": bg.params_,
        "members": int(len(s)),
        "rows": bg.n_rows_,
        "totals": {"p_alive": float(value["p_alive"].sum()), "purchases": float(value["expected_purchases"].sum()),
                   "clv": float(value["clv"].sum())},
    }))


def run_prepare(data: Path, out: Path, members: int, seed: int) -> None:
    import crmkit

    tx = simulate(members, seed)
    tx[["member_id", "order_time", "amount"]].to_parquet(data / "transactions.parquet")
    con = crmkit.connect(data / "crm.duckdb")
    con.register("sim", tx)
    con.execute("INSERT INTO transactions (member_id, order_id, line_no, order_time, amount, txn_type) "
                "SELECT member_id, order_id, 1, order_time, amount, 'sale' FROM sim")
    con.close()
    out.write_text(json.dumps({"transactions": len(tx)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--side", choices=["prepare", "lifetimes", "crmkit"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side == "prepare":
        run_prepare(args.data, args.out, args.members, args.seed)
    elif args.side:
        {"lifetimes": run_lifetimes, "crmkit": run_crmkit}[args.side](args.data, args.out)
    else:
        report(run_all(args.members, args.seed))
    return 0


def run_all(members: int, seed: int) -> dict:
    """Each step in its own process: a child's peak memory then counts its own work only."""
    # BLAS threads only contend on a small shared machine (vector dot products stall under
    # load); both sides run with one, and DuckDB keeps its own threads.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    res = {}
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        # crmkit before lifetimes, which then fits on crmkit's summary
        for side in ("prepare", "crmkit", "lifetimes"):
            out = Path(tmp) / f"{side}.json"
            print(f"{side} ...", flush=True)
            subprocess.run([sys.executable, __file__, "--side", side, "--data", tmp, "--out", str(out),
                            "--members", str(members), "--seed", str(seed)], check=True, env=env)
            res[side] = json.loads(out.read_text())
    print(f"simulated {members:,} members, {res['prepare']['transactions']:,} transactions")
    return res


def report(res: dict) -> None:
    ours, ref = res["crmkit"], res["lifetimes"]
    print(f"\n{'':24}{'lifetimes':>12}{'crmkit':>12}")
    for stage in ("summary", "fit", "predict+clv"):
        print(f"{stage + ' (s)':24}{ref['stages'][stage]:12.2f}{ours['stages'][stage]:12.2f}")
    print(f"{'total (s)':24}{ref['seconds']:12.2f}{ours['seconds']:12.2f}")
    print(f"{'peak memory (MB)':24}{ref['peak_kb'] / 1024:12.0f}{ours['peak_kb'] / 1024:12.0f}")
    for key in ("p_alive", "purchases", "clv"):
        print(f"{'sum of ' + key:24}{ref['totals'][key]:12,.0f}{ours['totals'][key]:12,.0f}")
    print(f"\nspeed ratio (lifetimes / crmkit): {ref['seconds'] / ours['seconds']:.1f}x")
    print(f"peak memory ratio (crmkit / lifetimes): {ours['peak_kb'] / ref['peak_kb']:.2f}")
    print(f"crmkit fitted {ours['members']:,} members on {ours['rows']:,} compressed rows; "
          f"summaries identical: {'yes' if ref['same_summary'] else 'NO'}")
    print(f"{'BG/NBD':8}{'crmkit':>14}{'lifetimes':>14}{'rel. diff':>12}")
    worst = 0.0
    for name, value in ours["params"].items():
        other = ref["params_on_crmkit_summary"][name]
        diff = abs(value - other) / abs(other)
        worst = max(worst, diff)
        print(f"{name:8}{value:14.6f}{other:14.6f}{diff:12.2e}")
    print(f"largest relative parameter difference: {worst:.2e}")
    speed, memory = ref["seconds"] / ours["seconds"], ours["peak_kb"] / ref["peak_kb"]
    print(f"targets: speed >= {TARGET_SPEED:.0f}x: {'OK' if speed >= TARGET_SPEED else 'MISSED'} ({speed:.1f}x); "
          f"parameters within {TARGET_PARAMS:.0e}: {'OK' if worst <= TARGET_PARAMS else 'MISSED'}; "
          f"lower peak memory: {'OK' if memory < 1 else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
