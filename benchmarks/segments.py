"""Benchmark: segmentation, lifecycle, cohorts and KPIs on 1M members / ~2.6M transaction lines.

The chain is simulated in DuckDB SQL (seeded; DuckDB's parallel random() lets
the counts vary slightly between runs): 50 stores in 5 regions, members joining
over two years, 2.6 sale lines per member on average at random times after
joining, 3% of lines returned a few days later, and daily till totals. Every
step is the public crmkit call a notebook makes, inside one
``lifecycle.snapshot`` of the date (timed as its own step), as a report does.

    python benchmarks/segments.py [--members 1000000] [--lines-per-member 2.6] [--no-snapshot]

Target: all steps together under 10 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import crmkit
from crmkit import cohorts, kpis, lifecycle, segments, tiers

AS_OF = "2026-06-30"
START = "2024-07-01"


def simulate(con, members: int, lines_per_member: float, seed: float) -> None:
    con.execute("SELECT setseed(?)", [seed])
    con.execute("""
INSERT INTO stores
SELECT printf('S%02d', i), printf('门店%02d', i), NULL,
       ['华东', '华南', '华北', '西南', '华中'][i % 5 + 1]
FROM range(50) r(i)""")
    con.execute("""
INSERT INTO members (member_id, join_date, join_store_id, join_channel)
SELECT printf('M%07d', i),
       CAST($start AS DATE) - 180 + CAST(floor(random() * 910) AS INTEGER),
       printf('S%02d', CAST(floor(random() * 50) AS INTEGER)),
       ['pos', 'online', 'miniapp'][CAST(floor(random() * 3) AS INTEGER) + 1]
FROM range($n) r(i)""", {"n": members, "start": START})
    con.execute("""
CREATE TEMP TABLE sales AS
SELECT printf('O%08d', i) AS order_id, m.member_id,
       CAST(m.join_date AS TIMESTAMP)
         + to_seconds(CAST(random() * date_diff('second', CAST(m.join_date AS TIMESTAMP),
                                                  CAST($as_of AS TIMESTAMP)) AS BIGINT)) AS order_time,
       printf('S%02d', CAST(floor(random() * 50) AS INTEGER)) AS store_id,
       ['服装', '鞋履', '美妆', '食品', '家居', '母婴', '数码', '运动'][CAST(floor(random() * 8) AS INTEGER) + 1]
         AS category,
       round(20 + 400 * random() * random(), 2) AS amount
FROM (SELECT i, CAST(floor(random() * $n) AS INTEGER) AS k FROM range(CAST($n * $lines AS BIGINT)) r(i)) s
JOIN members m ON m.member_id = printf('M%07d', s.k)""",
                {"n": members, "lines": lines_per_member, "as_of": AS_OF})
    con.execute("""
INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, channel, sku, category,
                          quantity, amount, discount, txn_type)
SELECT member_id, order_id, 1, order_time, store_id, 'pos', NULL, category, 1, amount, 0, 'sale' FROM sales
UNION ALL
SELECT member_id, order_id, 1, order_time + INTERVAL 3 DAY, store_id, 'pos', NULL, category, -1, -amount, 0,
       'return'
FROM sales WHERE random() < 0.03 AND order_time + INTERVAL 3 DAY < CAST($as_of AS TIMESTAMP)""",
                {"as_of": AS_OF})
    con.execute("""
INSERT INTO store_sales
SELECT store_id, day, 1.6 * sum(amount), NULL FROM (
  SELECT store_id, CAST(order_time AS DATE) AS day, amount FROM transactions)
GROUP BY ALL""")
    con.execute("DROP TABLE sales")


def cohort_tables(con):
    cells = cohorts.cohort_activity(con, AS_OF)
    cohorts.revenue_per_member(cells, cumulative=True)
    return cohorts.retention_matrix(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=1_000_000)
    ap.add_argument("--lines-per-member", type=float, default=2.6)
    ap.add_argument("--seed", type=float, default=0.42)
    ap.add_argument("--no-snapshot", action="store_true",
                    help="let every step rescan the transactions (for comparison)")
    args = ap.parse_args()

    con = crmkit.connect(":memory:")
    t0 = time.perf_counter()
    simulate(con, args.members, args.lines_per_member, args.seed)
    n_lines = con.execute("SELECT count(*) FROM transactions").fetchone()[0]
    print(f"simulated {args.members:,} members, {n_lines:,} transaction lines "
          f"in {time.perf_counter() - t0:.1f} s (not timed below)")

    steps = {
        "RFM scores (per member)": lambda: segments.rfm_scores(con, AS_OF),
        "RFM segment summary": lambda: segments.segment_summary(con, AS_OF),
        "tiers (per member)": lambda: tiers.assign_tiers(con, AS_OF),
        "lifecycle stages (per member)": lambda: lifecycle.stages(con, AS_OF),
        "lifecycle monthly metrics by store": lambda: lifecycle.monthly_metrics(con, AS_OF, by="store"),
        "cohorts (retention + revenue)": lambda: cohort_tables(con),
        "KPIs HQ -> region -> store": lambda: kpis.kpis(con, START, AS_OF),
    }
    total = 0.0
    with contextlib.ExitStack() as stack:
        if not args.no_snapshot:
            t = time.perf_counter()
            stack.enter_context(lifecycle.snapshot(con, AS_OF))  # the member activity, once for all steps
            total = time.perf_counter() - t
            print(f"  {'snapshot of member activity':<38} {total:6.2f} s")
        for name, step in steps.items():
            t = time.perf_counter()
            out = step()
            dt = time.perf_counter() - t
            total += dt
            print(f"  {name:<38} {dt:6.2f} s  ({len(out):,} rows)")
    verdict = "OK" if total < 10 else "SLOW"
    print(f"total {total:.2f} s for {args.members:,} members / {n_lines:,} lines: {verdict} (target < 10 s)")


if __name__ == "__main__":
    main()
