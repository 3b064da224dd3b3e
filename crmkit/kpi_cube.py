"""The KPI cube: small additive aggregates of a scope, read once, that a dashboard slices per filter.

A manager's dashboard changes its region, store, tier, channel and period
many times a visit; :func:`crmkit.kpis.compare` and the tier, segment, stage
and cohort summaries each scan the store. :func:`read_cube` reads instead,
in a few engine queries, aggregates that are *additive* over a small
partition, and every filter is then a slice and a sum (:func:`totals`,
:func:`mix`, :func:`retention`), with no store access.

Windows
-------
:func:`windows`: the month, quarter and year to date at the snapshot's
as-of and the window each is compared with (:meth:`crmkit.engine.Period.comparison`),
and the 12 calendar months up to the as-of's month (the last one to date),
for the trend. A window ``start``..``end`` is counted as :func:`crmkit.kpis.kpis`
counts that period, so a slice equals its ``hq`` row for the slice's scope:

- **members** (``members_end``, ``new_members``, ``active_members``) are the
  scope universe *as of the window's end* (:mod:`crmkit.engine.scope`):
  home store, region and channel as they were then (an online sign-up whose
  first order came later had no home store yet); active = a purchase day in
  the window, purchases as of its end;
- **sales** (``net_sales``) are the lines rung up in the window (sales less
  refunds booked in it), by the store and channel of the line;
  **orders** and ``order_value`` are the engine's purchases placed in the
  window, as of its end (:mod:`crmkit.engine.activity`: the one purchase
  definition), by the store and channel of the order; AOV = order value / orders.

Purchases as of each window end are the engine's ``purchases`` relation with
that end as its as-of, read from the window's first day on (``since``); an
order begun before that day (a later return of it read alone) is left out
by its number, as it lies outside every window that starts on that day.

Partitions
----------
- members by (home ``store_id``, its ``region``, home ``channel``, ``tier``);
- sales and orders by (sale ``store_id``, its ``region``, sale ``channel``,
  the member's ``tier``);
- the score snapshot (members scored, CLV total, at risk = churn band
  ``high``) by home store, region, channel, tier, ``rfm_segment`` and
  ``lifecycle_stage``, as of the snapshot;
- cohorts (first-purchase month, :mod:`crmkit.cohorts`) by home store,
  region, channel and tier: cohort sizes, and buyers in month k.

**Tier filter**: the members whose tier in the score snapshot is that tier,
and their sales and orders; members the snapshot did not score have no tier
and are counted only under "all tiers". A **scope** (``crmkit app --region``)
is applied in every query (:meth:`crmkit.engine.Scope.sql`, bound), so the
cube holds nothing outside it.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import engine
from .cohorts import _COHORTS
from .engine import Comparison, DateRange, Period, Query, Scope
from .engine.period import PERIODS
from .lifecycle import last_complete_month, snapshot

#: The slicing keys every partition has (NULL: no home store / no region / not scored).
KEYS = ("store_id", "region", "channel", "tier")
#: Trend months.
TREND_MONTHS = 12
#: Additive member and sales measures.
MEMBER_MEASURES = ("members_end", "new_members", "active_members")
SALES_MEASURES = ("net_sales", "orders", "order_value")


def trend_months(as_of: dt.date, months: int = TREND_MONTHS) -> list[DateRange]:
    """The ``months`` calendar months up to the one holding ``as_of`` (the last one up to ``as_of``)."""
    first = as_of.replace(day=1)
    out = []
    for back in range(months - 1, -1, -1):
        total = first.year * 12 + first.month - 1 - back
        start = dt.date(total // 12, total % 12 + 1, 1)
        nxt = dt.date((total + 1) // 12, (total + 1) % 12 + 1, 1)
        out.append(DateRange(start, min(nxt - dt.timedelta(days=1), as_of)))
    return out


def windows(as_of) -> tuple[dict[str, Comparison], dict[str, DateRange]]:
    """``(comparisons, ranges)``: each period kind's :class:`Comparison` at ``as_of``, and every window
    by key (``month``, ``month:base``, ..., ``trend:2026-06``)."""
    as_of = engine.as_date(as_of)
    comparisons = {kind: Period(kind, as_of).comparison() for kind in PERIODS}
    ranges = {}
    for kind, c in comparisons.items():
        ranges[kind], ranges[f"{kind}:base"] = c.current, c.base
    for r in trend_months(as_of):
        ranges[f"trend:{r.start:%Y-%m}"] = r
    return comparisons, ranges


@dataclass
class Cube:
    """The scope's additive aggregates (see the module); ``members`` and ``sales`` have a ``window`` key."""

    as_of: dt.date
    scope: Scope
    comparisons: dict[str, Comparison]
    ranges: dict[str, DateRange]
    members: pd.DataFrame
    sales: pd.DataFrame
    scores: pd.DataFrame
    cohort_sizes: pd.DataFrame
    cohort_buyers: pd.DataFrame
    stores: pd.DataFrame


# ------------------------------------------------------------------ reading

def _windows_query(ranges: dict[str, DateRange]) -> tuple[Query, list[tuple[dt.date, dt.date]]]:
    """``cube_windows`` (w, start_day, end_day: one row per distinct window, bound) and the distinct
    (start, end) pairs in ``w`` order."""
    pairs = sorted({(r.start, r.end) for r in ranges.values()})
    body = "\n  UNION ALL ".join(f"SELECT {i} AS w, CAST($cw_start_{i} AS DATE) AS start_day, "
                                 f"CAST($cw_end_{i} AS DATE) AS end_day" for i in range(len(pairs)))
    params = {**{f"cw_start_{i}": s for i, (s, _) in enumerate(pairs)},
              **{f"cw_end_{i}": e for i, (_, e) in enumerate(pairs)}}
    return Query({"cube_windows": "  " + body}, params), pairs


def _orders_query(pairs) -> Query:
    """``cube_orders``: (w, member_id, store_id, channel, net) of the purchases placed in each window,
    as of its end: the engine's ``purchases`` per distinct end, from the earliest start with that end."""
    ends = sorted({e for _, e in pairs})
    q, parts = Query(), []
    for k, end in enumerate(ends):
        since = min(s for s, e in pairs if e == end)
        q += engine.purchases(end, since=since, suffix=f"_e{k}")
        parts.append(f"""
  SELECT w.w, p.member_id, p.order_id, p.store_id, p.channel, p.net, CAST($since_e{k} AS DATE) AS since
  FROM purchases_e{k} p JOIN cube_windows w ON w.end_day = CAST($as_of_e{k} AS DATE) AND p.day >= w.start_day""")
    return q + Query({"cube_window_orders": "\n  UNION ALL".join(parts), "cube_orders": _ORDERS})


# an order begun before the day its window's purchases are read from is no order of that window
_ORDERS = """
  SELECT o.w, CAST(o.member_id AS VARCHAR) AS member_id, o.store_id, o.channel, o.net
  FROM cube_window_orders o
  WHERE NOT EXISTS (SELECT 1 FROM orders f WHERE f.member_id = o.member_id AND f.order_id = o.order_id
                    AND f.day < o.since)"""


_SCORES = """
  SELECT CAST(member_id AS VARCHAR) AS member_id, tier FROM member_scores WHERE as_of = $snapshot_as_of"""

# The scope universe (crmkit.engine.scope) at each window's end, from the activity as of the snapshot:
# a member's first order day and store as of an earlier end are those of today when that day is on or
# before it, and none otherwise. Dates are only compared with the windows' first days and the days after
# their ends (the cuts), so each date is replaced by the latest cut on or before it (:func:`_cut_sql`)
# and the members are counted per distinct row before the windows multiply them.
_HOME = """
  SELECT m.member_id IS NOT NULL AS listed, {join_date} AS join_date, {first_day} AS first_day,
         m.join_store_id, a.first_store, m.join_channel, a.first_channel, sc.tier, count(*) AS members
  FROM members m FULL JOIN activity a ON a.member_id = m.member_id
  LEFT JOIN cube_scores sc ON sc.member_id = CAST(coalesce(m.member_id, a.member_id) AS VARCHAR)
  GROUP BY m.member_id IS NOT NULL, {join_date}, {first_day}, m.join_store_id, a.first_store, m.join_channel,
           a.first_channel, sc.tier"""

_MEMBER_WINDOWS = """
  SELECT w.w, w.start_day, h.tier, h.members,
         coalesce(h.join_store_id, CASE WHEN h.first_day <= w.end_day THEN h.first_store END) AS store_id,
         coalesce(h.join_channel, CASE WHEN h.first_day <= w.end_day THEN h.first_channel END) AS channel,
         least(h.join_date, CASE WHEN h.first_day <= w.end_day THEN h.first_day END) AS join_date
  FROM cube_home h CROSS JOIN cube_windows w
  WHERE (h.listed OR h.first_day <= w.end_day)
    AND coalesce(least(h.join_date, CASE WHEN h.first_day <= w.end_day THEN h.first_day END), w.end_day)
        <= w.end_day"""

_MEMBERS_SELECT = f"""
SELECT mw.w, mw.store_id, st.region, mw.channel, mw.tier,
       sum(mw.members) AS members_end, sum(CASE WHEN mw.join_date >= mw.start_day THEN mw.members END) AS new_members
FROM cube_member_windows mw LEFT JOIN stores st ON st.store_id = mw.store_id
WHERE {Scope.sql("st.region", "mw.store_id", "mw.channel")}
GROUP BY mw.w, mw.store_id, st.region, mw.channel, mw.tier"""

# a member active in a window bought in it, so had their first order by its end: today's home
_ACTIVE_SELECT = """
SELECT a.w, u.store_id, u.region, u.channel, sc.tier, count(*) AS active_members
FROM (SELECT DISTINCT w, member_id FROM {orders}) a
JOIN universe u ON CAST(u.member_id AS VARCHAR) = a.member_id
LEFT JOIN cube_scores sc ON sc.member_id = a.member_id
GROUP BY a.w, u.store_id, u.region, u.channel, sc.tier"""


def _cut_sql(column: str, cuts: int) -> str:
    """SQL: the latest of the bound cuts ``$cube_cut_0`` (the earliest) .. on or before ``column`` (a day before
    the first for an earlier date, NULL for NULL), which compares with every cut as ``column`` does."""
    whens = " ".join(f"WHEN {column} >= CAST($cube_cut_{i} AS DATE) THEN CAST($cube_cut_{i} AS DATE)"
                     for i in reversed(range(cuts)))
    return f"CASE {whens} WHEN {column} IS NOT NULL THEN CAST($cube_cut_0 AS DATE) - 1 END"


def _home_query(pairs) -> Query:
    """``cube_home`` and ``cube_member_windows`` over the windows' cuts (their first days and the days
    after their ends)."""
    cuts = sorted({s for s, _ in pairs} | {e + dt.timedelta(days=1) for _, e in pairs})
    home = _HOME.format(join_date=_cut_sql("m.join_date", len(cuts)), first_day=_cut_sql("a.first_day", len(cuts)))
    return Query({"cube_home": home, "cube_member_windows": _MEMBER_WINDOWS},
                 {f"cube_cut_{i}": c for i, c in enumerate(cuts)})


_ORDERS_SELECT = f"""
SELECT o.w, o.store_id, st.region, o.channel, sc.tier, count(*) AS orders, sum(o.net) AS order_value
FROM {{orders}} o LEFT JOIN stores st ON st.store_id = o.store_id
LEFT JOIN cube_scores sc ON sc.member_id = o.member_id
WHERE {Scope.sql("st.region", "o.store_id", "o.channel")}
GROUP BY o.w, o.store_id, st.region, o.channel, sc.tier"""

_SALES_SELECT = f"""
SELECT w.w, d.store_id, st.region, d.channel, d.tier, sum(d.amount) AS net_sales
FROM (SELECT CAST(l.order_time AS DATE) AS day, l.store_id, l.channel, sc.tier, sum(l.amount) AS amount
      FROM lines_cs l LEFT JOIN cube_scores sc ON sc.member_id = CAST(l.member_id AS VARCHAR)
      GROUP BY CAST(l.order_time AS DATE), l.store_id, l.channel, sc.tier) d
JOIN cube_windows w ON d.day >= w.start_day AND d.day <= w.end_day
LEFT JOIN stores st ON st.store_id = d.store_id
WHERE {Scope.sql("st.region", "d.store_id", "d.channel")}
GROUP BY w.w, d.store_id, st.region, d.channel, d.tier"""

_SNAPSHOT_SELECT = """
SELECT u.store_id, u.region, u.channel, s.tier, s.rfm_segment, s.lifecycle_stage,
       count(*) AS members, sum(s.clv) AS clv, count(CASE WHEN s.churn_band = 'high' THEN 1 END) AS at_risk
FROM member_scores s JOIN universe u ON u.member_id = s.member_id
WHERE s.as_of = $snapshot_as_of
GROUP BY u.store_id, u.region, u.channel, s.tier, s.rfm_segment, s.lifecycle_stage"""

_COHORT_SIZES = """
SELECT c.cohort, u.store_id, u.region, u.channel, sc.tier, count(*) AS members
FROM cohort_members c JOIN universe u ON u.member_id = c.member_id
LEFT JOIN cube_scores sc ON sc.member_id = CAST(c.member_id AS VARCHAR)
GROUP BY c.cohort, u.store_id, u.region, u.channel, sc.tier"""

_COHORT_BUYERS = """
SELECT mm.cohort, CAST(date_diff('month', mm.cohort, mm.month) AS INTEGER) AS months_since,
       u.store_id, u.region, u.channel, sc.tier, count(CASE WHEN mm.bought THEN 1 END) AS buyers
FROM member_months mm JOIN universe u ON u.member_id = mm.member_id
LEFT JOIN cube_scores sc ON sc.member_id = CAST(mm.member_id AS VARCHAR)
GROUP BY mm.cohort, date_diff('month', mm.cohort, mm.month), u.store_id, u.region, u.channel, sc.tier"""


def read_cube(con, run, scope: Scope | None = None) -> Cube:
    """The cube of ``scope`` (default: the chain) as of score run ``run``'s as-of: a few engine queries,
    the as-of's activity computed once (:func:`crmkit.lifecycle.snapshot`)."""
    scope = Scope.of(scope)
    as_of = engine.as_date(run.as_of)
    comparisons, ranges = windows(as_of)
    wq, pairs = _windows_query(ranges)
    base = (engine.member_activity(as_of) + engine.universe(as_of, scope) + wq
            + Query({"cube_scores": _SCORES}, {"snapshot_as_of": as_of}))
    since = min(s for s, _ in pairs)
    with snapshot(con, as_of):
        table = f"crmkit_cube_orders_{uuid.uuid4().hex[:12]}"
        oq = base + _orders_query(pairs)
        oq = oq.for_store(con)
        sql = oq.sql("SELECT * FROM cube_orders")
        con.execute(f"CREATE TEMP TABLE {table} AS {sql}", oq.bound(sql))
        try:
            members = _merge((base + _home_query(pairs)).df(con, _MEMBERS_SELECT),
                             base.df(con, _ACTIVE_SELECT.format(orders=table)),
                             MEMBER_MEASURES)
            orders = base.df(con, _ORDERS_SELECT.format(orders=table))
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        sales = (base + engine.lines(as_of, since=since, suffix="_cs")).df(con, _SALES_SELECT)
        scores = base.df(con, _SNAPSHOT_SELECT)
        cq = base + Query(_COHORTS, {"last_month": last_complete_month(as_of), "since": None})
        sizes, buyers = cq.df(con, _COHORT_SIZES), cq.df(con, _COHORT_BUYERS)
    stores = _stores(con, scope)
    keyed = {w: [k for k, r in ranges.items() if (r.start, r.end) == pair] for w, pair in enumerate(pairs)}
    return Cube(as_of, scope, comparisons, ranges, _by_window(members, keyed, MEMBER_MEASURES),
                _by_window(_merge(sales, orders, SALES_MEASURES), keyed, SALES_MEASURES), scores, sizes, buyers, stores)


def _stores(con, scope: Scope) -> pd.DataFrame:
    """The scope's stores: ``store_id, name, region``."""
    return con.execute("""
SELECT store_id, name, region FROM stores
WHERE ($scope_region IS NULL OR region = $scope_region) AND ($scope_store IS NULL OR store_id = $scope_store)
ORDER BY store_id""", {k: v for k, v in scope.params().items() if k != "scope_channel"}).df()


def _merge(left: pd.DataFrame, right: pd.DataFrame, measures) -> pd.DataFrame:
    """The two frames' measures side by side on the window and partition keys (0 where one has no row)."""
    out = left.merge(right, on=["w", *KEYS], how="outer")
    for column in measures:
        out[column] = out[column].fillna(0)
    return out


def _by_window(frame: pd.DataFrame, keyed: dict[int, list[str]], measures) -> pd.DataFrame:
    """``frame`` with its window number replaced by the window keys (a row per key sharing the window)."""
    key = pd.DataFrame([(w, k) for w, ks in keyed.items() for k in ks], columns=["w", "window"])
    out = frame.merge(key, on="w").drop(columns="w")
    return out[["window", *KEYS, *measures]].astype({m: float for m in measures}).reset_index(drop=True)


# ------------------------------------------------------------------ slicing

@dataclass(frozen=True)
class Slice:
    """A filter on the partition keys (empty text: any)."""

    region: str = ""
    store_id: str = ""
    channel: str = ""
    tier: str = ""


def mask(frame: pd.DataFrame, s: Slice) -> pd.Series:
    """Rows of ``frame`` inside slice ``s``."""
    keep = pd.Series(True, index=frame.index)
    for column in ("region", "store_id", "channel", "tier"):
        wanted = getattr(s, column)
        if wanted:
            keep &= frame[column] == wanted
    return keep


def totals(cube: Cube, s: Slice) -> pd.DataFrame:
    """One row per window key: the KPIs of :func:`crmkit.kpis.kpis` the cube holds (``members_end,
    new_members, active_members, active_rate, orders, net_sales, order_value, aov``) for slice ``s``."""
    m = cube.members[mask(cube.members, s)].groupby("window")[list(MEMBER_MEASURES)].sum()
    x = cube.sales[mask(cube.sales, s)].groupby("window")[list(SALES_MEASURES)].sum()
    out = pd.DataFrame(index=pd.Index(list(cube.ranges), name="window")).join(m).join(x).fillna(0.0)
    out["active_rate"] = out["active_members"] / out["members_end"].replace(0, np.nan)
    out["aov"] = out["order_value"] / out["orders"].replace(0, np.nan)
    return out


def snapshot_totals(cube: Cube, s: Slice) -> dict:
    """Scored members, their total CLV and the at-risk count (churn band high) of slice ``s``, at the snapshot."""
    rows = cube.scores[mask(cube.scores, s)]
    return {"members": int(rows["members"].sum()), "clv": float(rows["clv"].sum()),
            "at_risk": int(rows["at_risk"].sum())}


def mix(cube: Cube, s: Slice, column: str) -> pd.Series:
    """Scored members of slice ``s`` by ``column`` (``tier``, ``rfm_segment`` or ``lifecycle_stage``)."""
    rows = cube.scores[mask(cube.scores, s)]
    return rows.groupby(column)["members"].sum().astype("int64").sort_values(ascending=False)


def cohort_size(cube: Cube, s: Slice) -> pd.Series:
    """Members of each cohort (first-purchase month) of slice ``s``."""
    return cube.cohort_sizes[mask(cube.cohort_sizes, s)].groupby("cohort")["members"].sum()


def retention(cube: Cube, s: Slice) -> pd.DataFrame:
    """Share of each cohort buying in month k (rows: cohorts, columns: k) for slice ``s``, as
    :func:`crmkit.cohorts.retention_matrix`; months not complete by the as-of are empty."""
    sizes = cohort_size(cube, s)
    buyers = cube.cohort_buyers[mask(cube.cohort_buyers, s)].groupby(["cohort", "months_since"])["buyers"].sum()
    last = last_complete_month(cube.as_of)
    sizes = sizes[sizes > 0]
    months = [(last.year - c.year) * 12 + last.month - c.month for c in sizes.index]
    grid = pd.DataFrame(np.nan, index=sizes.index, columns=range(max(months, default=-1) + 1))
    for cohort, span in zip(sizes.index, months):
        grid.loc[cohort, : span] = 0.0
    for (cohort, k), n in buyers.items():
        if cohort in grid.index and k in grid.columns and not np.isnan(grid.loc[cohort, k]):
            grid.loc[cohort, k] = n
    return grid.div(sizes, axis=0).rename_axis(index="cohort", columns="months_since")


def store_sales(cube: Cube, s: Slice, kind: str) -> pd.DataFrame:
    """Each store of slice ``s`` (the store filter aside) with its net sales in period ``kind`` and its
    comparison window, and the change: ``store_id, name, region, net_sales, base_sales, change``."""
    wide = Slice(s.region, "", s.channel, s.tier)
    rows = cube.sales[mask(cube.sales, wide) & cube.sales["window"].isin([kind, f"{kind}:base"])]
    pivot = rows.groupby(["store_id", "window"])["net_sales"].sum().unstack("window")
    stores = cube.stores[cube.stores["region"] == s.region] if s.region else cube.stores
    out = stores.set_index("store_id").join(pivot).rename(columns={kind: "net_sales", f"{kind}:base": "base_sales"})
    for column in ("net_sales", "base_sales"):
        out[column] = out[column].fillna(0.0) if column in out else 0.0
    out["change"] = out["net_sales"] / out["base_sales"].replace(0, np.nan) - 1
    return out.reset_index()[["store_id", "name", "region", "net_sales", "base_sales", "change"]]
