"""Membership KPIs rolled up HQ → region → store, and the CLV value pyramid.

Two attributions, each stated where it is used:

- member KPIs (growth, active rate, purchase frequency) count members in their
  home store (registration store, else the store of their first order);
- sales KPIs (net sales, orders, AOV, refund rate, member share of sales)
  count transactions in the store where they happened.

Regions come from ``stores.region``. Online orders without a store appear
under an empty store and region.

A :class:`~crmkit.engine.Scope` (a region, a store, a channel) keeps both to
its part of the chain (:mod:`crmkit.engine.scope`): its members by their home,
its sales by where they were rung up; the ``hq`` row is then the scope's total.
Till totals (``store_sales``) have no channel: under a channel scope there are
none, and no member share of sales.

A period is compared with its matched window (:func:`compare`,
:class:`crmkit.engine.Period`): a period to date with the same days of the
previous period or of last year, never with a whole period.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import viz
from .engine import Comparison, Period, Scope
from .engine.store import Connection
from .errors import CrmkitError
from .i18n import register, t
from .lifecycle import Query, activity, as_date

register({
    "kpi.hq": ("总部", "HQ"),
    "kpi.region": ("区域", "Region"),
    "kpi.store": ("门店", "Store"),
    "pyramid.title": ("会员价值金字塔（CLV）", "Member value pyramid (CLV)"),
    "pyramid.top_1": ("前 1%", "Top 1%"),
    "pyramid.top_1_5": ("1–5%", "1–5%"),
    "pyramid.top_5_20": ("5–20%", "5–20%"),
    "pyramid.top_20_50": ("20–50%", "20–50%"),
    "pyramid.bottom_50": ("后 50%", "Bottom 50%"),
    "pyramid.members": ("人", "members"),
    "pyramid.of_clv": ("占 CLV", "of CLV"),
})

_IN_SCOPE_T = Scope.sql("s.region", "t.store_id", "t.channel")
_IN_SCOPE_O = Scope.sql("s.region", "o.store_id", "o.channel")

_KPI = {
    # universe is as of the period's end, so a last purchase on or after start is activity in the period
    "kpi_members": """
  SELECT GROUPING(region, store_id) AS g, region, store_id,
         count(CASE WHEN join_date IS NULL OR join_date < CAST($start AS DATE) THEN 1 END) AS members_start,
         count(CASE WHEN join_date >= CAST($start AS DATE) THEN 1 END) AS new_members,
         count(*) AS members_end,
         count(CASE WHEN last_purchase >= CAST($start AS DATE) THEN 1 END) AS active_members
  FROM universe
  GROUP BY GROUPING SETS ((), (region), (region, store_id))""",
    "kpi_member_orders": """
  SELECT GROUPING(u.region, u.store_id) AS g, u.region, u.store_id, count(*) AS member_orders
  FROM purchases o JOIN universe u USING (member_id)
  WHERE o.day >= CAST($start AS DATE)
  GROUP BY GROUPING SETS ((), (u.region), (u.region, u.store_id))""",
    "kpi_till": """
  SELECT store_id, sum(sales) AS till_sales FROM store_sales
  WHERE day BETWEEN CAST($start AS DATE) AND CAST($as_of AS DATE)
    AND $scope_channel IS NULL AND ($scope_store IS NULL OR store_id = $scope_store)
    AND ($scope_region IS NULL OR store_id IN (SELECT store_id FROM stores WHERE region = $scope_region))
  GROUP BY store_id""",
    "kpi_sales": f"""
  SELECT GROUPING(s.region, t.store_id) AS g, s.region, t.store_id,
         sum(t.amount) AS net_sales,
         coalesce(sum(CASE WHEN t.amount > 0 THEN t.amount END), 0) AS gross_sales,
         coalesce(-sum(CASE WHEN t.amount < 0 THEN t.amount END), 0) AS refunds,
         sum(CASE WHEN k.store_id IS NOT NULL THEN t.amount END) AS member_sales_tilled
  FROM lines t LEFT JOIN stores s USING (store_id)
  LEFT JOIN (SELECT store_id FROM kpi_till) k ON k.store_id = t.store_id
  WHERE t.order_time >= CAST($start AS DATE) AND {_IN_SCOPE_T}
  GROUP BY GROUPING SETS ((), (s.region), (s.region, t.store_id))""",
    "kpi_orders": f"""
  SELECT GROUPING(s.region, o.store_id) AS g, s.region, o.store_id, count(*) AS orders,
         sum(o.net) AS order_value
  FROM purchases o LEFT JOIN stores s USING (store_id)
  WHERE o.day >= CAST($start AS DATE) AND {_IN_SCOPE_O}
  GROUP BY GROUPING SETS ((), (s.region), (s.region, o.store_id))""",
    "kpi_tills": """
  SELECT GROUPING(s.region, k.store_id) AS g, s.region, k.store_id, sum(k.till_sales) AS till_sales
  FROM kpi_till k LEFT JOIN stores s USING (store_id)
  GROUP BY GROUPING SETS ((), (s.region), (s.region, k.store_id))""",
    "kpi_keys": """
  SELECT g, region, store_id FROM kpi_members UNION SELECT g, region, store_id FROM kpi_sales
  UNION SELECT g, region, store_id FROM kpi_tills""",
}

_KPI_SELECT = """
SELECT CASE k.g WHEN 3 THEN 'hq' WHEN 1 THEN 'region' ELSE 'store' END AS level,
       k.region, k.store_id, st.name AS store_name,
       coalesce(m.members_start, 0) AS members_start, coalesce(m.new_members, 0) AS new_members,
       coalesce(m.members_end, 0) AS members_end,
       m.new_members / nullif(m.members_start, 0) AS member_growth,
       coalesce(m.active_members, 0) AS active_members,
       m.active_members / nullif(m.members_end, 0) AS active_rate,
       mo.member_orders / nullif(m.active_members, 0) AS purchase_frequency,
       coalesce(o.orders, 0) AS orders,
       coalesce(s.net_sales, 0) AS net_sales,
       o.order_value / nullif(o.orders, 0) AS aov,
       coalesce(s.gross_sales, 0) AS gross_sales, coalesce(s.refunds, 0) AS refunds,
       s.refunds / nullif(s.gross_sales, 0) AS refund_rate,
       tl.till_sales,
       s.member_sales_tilled / nullif(tl.till_sales, 0) AS member_share_of_sales
FROM kpi_keys k
LEFT JOIN kpi_members m ON m.g = k.g AND m.region IS NOT DISTINCT FROM k.region
                       AND m.store_id IS NOT DISTINCT FROM k.store_id
LEFT JOIN kpi_member_orders mo ON mo.g = k.g AND mo.region IS NOT DISTINCT FROM k.region
                               AND mo.store_id IS NOT DISTINCT FROM k.store_id
LEFT JOIN kpi_sales s ON s.g = k.g AND s.region IS NOT DISTINCT FROM k.region
                     AND s.store_id IS NOT DISTINCT FROM k.store_id
LEFT JOIN kpi_orders o ON o.g = k.g AND o.region IS NOT DISTINCT FROM k.region
                      AND o.store_id IS NOT DISTINCT FROM k.store_id
LEFT JOIN kpi_tills tl ON tl.g = k.g AND tl.region IS NOT DISTINCT FROM k.region
                      AND tl.store_id IS NOT DISTINCT FROM k.store_id
LEFT JOIN stores st ON k.g = 0 AND st.store_id = k.store_id
ORDER BY k.g DESC, k.region NULLS LAST, k.store_id NULLS LAST"""


def kpis(con: Connection, start, end, scope: Scope | None = None) -> pd.DataFrame:
    """Membership KPIs for the period ``start``..``end`` (both days included), HQ → region → store.

    Within ``scope`` (default: the chain): its members and its sales only, the
    ``hq`` row being the scope's total (see the module).

    Returns
    -------
    DataFrame
        One row per level (``hq``, each ``region``, each ``store``) with:

        - ``members_start`` (joined before ``start``), ``new_members`` (joined in the
          period), ``members_end``; ``member_growth`` = new / members at start;
        - ``active_members`` (a purchase day in the period), ``active_rate`` = active /
          members at end; ``purchase_frequency`` = orders per active member;
        - ``orders`` (purchases placed in the period, :mod:`crmkit.engine.activity`:
          orders not cancelled in full by their returns up to the end, ¥0 orders included),
          ``net_sales`` (money booked in the period: its sales less the refunds made
          in it, whenever the order was placed), ``aov`` = net value of the
          period's orders (after their returns up to the end) per order (money);
        - ``gross_sales``, ``refunds`` (money, booked in the period) and
          ``refund_rate`` = refunds / gross sales;
        - ``till_sales`` and ``member_share_of_sales`` = member net sales / till sales of
          all customers, over the stores with ``store_sales`` rows in the period
          (empty when no till totals are loaded).

        Member KPIs use home stores, sales KPIs the store of the sale.
    """
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    if start_d > end_d:
        raise CrmkitError(f"the KPI period starts ({start_d}) after it ends ({end_d}).")
    return (activity(end_d, scope) + Query(_KPI, {"start": start_d})).df(con, _KPI_SELECT)


#: KPIs that are shares: their change is in percentage points; every other KPI's is relative.
RATE_KPIS = ("member_growth", "active_rate", "refund_rate", "member_share_of_sales")


def kpi_change(key: str, current, base) -> float:
    """The change of KPI ``key`` from ``base`` to ``current``.

    A share (:data:`RATE_KPIS`) changes by ``current - base`` (0.05 is +5
    percentage points); any other KPI by ``current / base - 1`` (0.125 is
    +12.5%). NaN when either is missing, or for a relative change from 0.
    """
    if pd.isna(current) or pd.isna(base):
        return np.nan
    if key in RATE_KPIS:
        return float(current - base)
    return np.nan if base == 0 else float(current / base - 1)


def kpi_changes(current: pd.Series, base: pd.Series, keys) -> pd.DataFrame:
    """One row per KPI in ``keys`` (index ``kpi``): ``current``, ``base`` and their
    ``change`` (:func:`kpi_change`), from one unit's rows of two :func:`kpis` tables."""
    rows = [(k, current.get(k), base.get(k), kpi_change(k, current.get(k), base.get(k))) for k in keys]
    return pd.DataFrame(rows, columns=["kpi", "current", "base", "change"]).set_index("kpi")


@dataclass(frozen=True)
class KpiComparison:
    """The KPI tables (:func:`kpis`) of a period and of the window it is compared with."""

    comparison: Comparison
    current: pd.DataFrame
    base: pd.DataFrame


def compare(con: Connection, period: Period, against: str | None = None,
            scope: Scope | None = None) -> KpiComparison:
    """KPIs of ``period`` (to date) and of its matched window, :meth:`Period.comparison`
    (``against``: ``previous``, the default, or ``last_year``), both within ``scope``."""
    comparison = period.comparison(against)
    return KpiComparison(comparison, kpis(con, *comparison.current, scope), kpis(con, *comparison.base, scope))


# ------------------------------------------------------------------ CLV pyramid

#: Pyramid layers: (key, share of members ranked by CLV from the top, cumulative).
PYRAMID_LAYERS = (("top_1", 0.01), ("top_1_5", 0.05), ("top_5_20", 0.20), ("top_20_50", 0.50),
                  ("bottom_50", 1.0))


def clv_layers(as_of, *, scope: Scope | None = None, region: str | None = None,
               store_id: str | None = None) -> Query:
    """:func:`crmkit.lifecycle.activity` plus ``clv_layers``: scored members with their pyramid layer.

    Scores are the ``member_scores`` rows of the latest scoring date on or before
    ``as_of`` of the members of ``scope`` (default: the chain; ``region`` and
    ``store_id`` are shorthands for a scope of them).
    Members are ranked by CLV (highest first, ties by member_id); a member at rank
    i of N is in the first layer whose cumulative share reaches i/N.
    """
    case = " ".join(f"WHEN pos <= $pyramid_cut_{i} THEN $pyramid_key_{i}" for i in range(len(PYRAMID_LAYERS)))
    ctes = {
        "scores_asof": """
  SELECT s.* FROM member_scores s JOIN universe u USING (member_id)
  WHERE s.as_of = (SELECT max(as_of) FROM member_scores WHERE as_of <= CAST($as_of AS DATE))
    AND s.clv IS NOT NULL""",
        "clv_layers": f"""
  SELECT member_id, clv, clv_low, clv_high, p_alive, churn_risk, churn_band,
         CASE {case} END AS clv_band
  FROM (SELECT *, row_number() OVER (ORDER BY clv DESC, member_id) / count(*) OVER () AS pos
        FROM scores_asof)""",
    }
    params = {**{f"pyramid_key_{i}": k for i, (k, _) in enumerate(PYRAMID_LAYERS)},
              **{f"pyramid_cut_{i}": c for i, (_, c) in enumerate(PYRAMID_LAYERS)}}
    return activity(as_of, Scope.of(scope, region=region, store_id=store_id)) + Query(ctes, params)


def require_scores(con: Connection, as_of) -> None:
    """A one-sentence error unless ``member_scores`` has rows on or before ``as_of``."""
    d = as_date(as_of)
    if not con.execute("SELECT count(*) FROM member_scores WHERE as_of <= $d", {"d": d}).fetchone()[0]:
        raise CrmkitError(f"no member scores on or before {d}; run `crmkit score` first.")


def clv_pyramid(con: Connection, as_of, *, scope: Scope | None = None, region: str | None = None,
                store_id: str | None = None) -> pd.DataFrame:
    """The CLV value pyramid from ``member_scores`` (written by ``crmkit score``).

    For the members of ``scope`` (default: the chain; ``region`` and ``store_id``
    are shorthands), ranked among themselves.

    Returns
    -------
    DataFrame
        layer (see :data:`PYRAMID_LAYERS`), members, member_share, clv (total, money),
        clv_share, clv_mean. No range per layer: the members' ``clv_low`` / ``clv_high``
        are prediction intervals of each member's own value, and their sums are no
        interval of a layer's total (chance largely cancels across members, parameter
        uncertainty does not); the total's interval is :func:`crmkit.clv.total_value`'s.
    """
    require_scores(con, as_of)
    out = clv_layers(as_of, scope=scope, region=region, store_id=store_id).df(con, """
SELECT clv_band AS layer, count(*) AS members, sum(clv) AS clv, avg(clv) AS clv_mean
FROM clv_layers GROUP BY clv_band""")
    out = out.set_index("layer").reindex([k for k, _ in PYRAMID_LAYERS])
    out["members"] = out["members"].fillna(0).astype("int64")
    out["clv"] = out["clv"].fillna(0.0)
    out.insert(1, "member_share", out["members"] / max(out["members"].sum(), 1))
    total = out["clv"].sum()
    out.insert(3, "clv_share", out["clv"] / total if total else np.nan)
    return out.rename_axis("layer").reset_index()


def plot_pyramid(pyramid: pd.DataFrame, lang: str = "zh"):
    """The value pyramid: one layer per row, top value at the top, labelled with
    members, and the layer's CLV in the store's currency with its share."""
    fig, ax = viz.new_figure(figsize=(8, 4.8))
    n = len(pyramid)
    for i, row in enumerate(pyramid.itertuples()):
        width = (i + 1) / n
        ax.barh(n - 1 - i, width, left=-width / 2, height=0.9, color=viz.PALETTE[i % len(viz.PALETTE)])
        text = (f"{t(f'pyramid.{row.layer}', lang)} · {row.members:,} {t('pyramid.members', lang)} · "
                f"{viz.fmt_money(row.clv)} ({t('pyramid.of_clv', lang)} {viz.fmt_pct(row.clv_share)})")
        ax.text(0.52, n - 1 - i, text, va="center", ha="left", fontsize=8)
    ax.set_xlim(-0.55, 1.6)
    ax.set_axis_off()
    ax.set_title(t("pyramid.title", lang))
    fig.tight_layout()
    return fig
