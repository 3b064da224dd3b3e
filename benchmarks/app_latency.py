"""Benchmark: each manager app's first render and filter update, in headless Chromium.

Starts ``crmkit app --no-browser`` on a free port over a scored store (``crmkit
score`` made a snapshot) and, for each app and repeat, opens the app in a new
page and times:

- **first render**: from navigation to the app's first answer on screen
  (its KPI tiles, ``.crm-kpi``; for the member 360 lookup, its search box);
- **filter update**: from choosing another value in one filter (the app's
  :data:`APPS` entry) to the first KPI tile showing another number; for the
  member 360 lookup, from pressing Enter on a member id to the member's tiles.

Voila preheats one kernel per app: it starts it and runs the app's notebook
before anyone asks, and after each visit starts the next. So a visit is
timed once the server has **settled** (it and its kernels use no CPU for a
second): a manager who arrives then gets a page already computed. How long
the server took from its start to settle (every app's first pre-render, all
at once) is printed too; a manager arriving earlier waits up to that long.

The server is stopped (SIGTERM to its process group, which shuts its kernels
down) on every exit path. The load average is printed before and after: the
machine may be shared.

    python benchmarks/app_latency.py --db data/crm.duckdb [--region 华南] [--repeat 3] [--apps dashboard,...]

A 1M-member store as ``make demo`` makes it (``crmkit demo-data DIR --members 1000000``, ``crmkit load DIR/*
--db STORE``, ``crmkit score STORE --as-of 2026-06-30``) is what the goals are stated for.

Goals (issue 12, on a 1M-member store): first render ≤ 5 s, filter update ≤ 1 s.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOALS = {"first render": 5.0, "filter update": 1.0}
#: app -> (filter to change, index of the option to choose); None: the member 360 lookup.
APPS = {"dashboard": ("region", 1), "churn_warning": ("value", -1), "member_360": None,
        "campaign_review": ("campaign", 1)}
KPI = ".crm-kpi .crm-kpi-value"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its live descendants (the kernels)."""
    stats = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(pid)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
    tree, total = {root}, 0
    for _ in range(4):  # server -> kernel -> its children
        tree |= {pid for pid, (ppid, _) in stats.items() if ppid in tree}
    total = sum(stats[pid][1] for pid in tree if pid in stats)
    return total / os.sysconf("SC_CLK_TCK")


def settle(proc: subprocess.Popen, timeout: float = 600, quiet: float = 1.0) -> None:
    """Until the server and its kernels used less than 0.05 CPU seconds in ``quiet`` seconds."""
    end = time.monotonic() + timeout
    before = tree_cpu(proc.pid)
    while time.monotonic() < end:
        time.sleep(quiet)
        if proc.poll() is not None:
            raise SystemExit(f"crmkit app exited with {proc.returncode}")
        now = tree_cpu(proc.pid)
        if now - before < 0.05:
            return
        before = now
    raise SystemExit("the server did not settle in time")


def member_id(db: str) -> str:
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return con.execute("SELECT member_id FROM member_scores ORDER BY as_of DESC, clv DESC LIMIT 1").fetchone()[0]


def visit(browser, url: str, app: str, how, who: str) -> tuple[float, float]:
    """(first render, filter update) seconds of one visit."""
    page = browser.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(f"{url}voila/render/{app}.ipynb", timeout=300_000)
        if how is None:
            box = page.locator(".crm-filter-query input")
            box.wait_for(timeout=300_000)
            first = time.perf_counter() - t0
            box.fill(who)
            t0 = time.perf_counter()
            box.press("Enter")
            page.wait_for_selector(".crm-kpi", timeout=60_000)
            return first, time.perf_counter() - t0
        page.wait_for_selector(".crm-kpi", timeout=300_000)
        first = time.perf_counter() - t0
        name, index = how
        select = page.locator(f".crm-filter-{name} select")
        before = page.locator(KPI).first.inner_text()
        options = select.locator("option").all_inner_texts()
        t0 = time.perf_counter()
        select.select_option(label=options[index])
        page.wait_for_function(f"b => document.querySelector('{KPI}').innerText !== b", arg=before, timeout=60_000)
        return first, time.perf_counter() - t0
    finally:
        page.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="a scored store")
    ap.add_argument("--region", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--apps", default=",".join(APPS), help="comma-separated apps (default: all)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    apps = [a for a in args.apps.split(",") if a]
    who = member_id(args.db)
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="app_latency-")) / "server.log"
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    t_start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "crmkit", "app", "--db", args.db, "--port", str(port),
                                 "--no-browser", *(["--region", args.region] if args.region else [])],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    times = {(a, k): [] for a in apps for k in GOALS}
    try:
        settle(proc)
        print(f"server start to settled (every app pre-rendered once): {time.perf_counter() - t_start:.1f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            for _ in range(args.repeat):
                for app in apps:
                    settle(proc)  # the app's next preheated kernel has run its notebook
                    first, update = visit(browser, f"http://127.0.0.1:{port}/", app, APPS[app], who)
                    times[(app, "first render")].append(first)
                    times[(app, "filter update")].append(update)
            browser.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    for (app, name), values in times.items():
        what = "lookup" if APPS[app] is None and name == "filter update" else name
        print(f"{app:16s} {what:13s}: median {statistics.median(values):5.2f} s "
              f"(runs: {', '.join(f'{v:.2f}' for v in values)}); goal ≤ {GOALS[name]:.0f} s on a 1M-member store")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
