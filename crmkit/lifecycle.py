"""Member activity and lifecycle stages, computed in the engine.

This module holds the base every member segmentation builds on (tiers, RFM,
cohorts, KPIs, audiences): :func:`activity`, the member universe and its
purchase days as of a date, over the engine's relations
(:mod:`crmkit.engine.activity`). On top of it: lifecycle stages, the member
funnel and monthly funnel metrics.

Definitions used everywhere
---------------------------
- Orders, purchases and purchase days are those of
  :mod:`crmkit.engine.activity`, the one definition (a ¥0 order is a
  purchase, an order returned in full is none, a purchase day is a day with
  at least one purchase). ``as_of`` is inclusive: everything up to the end
  of that day counts, nothing after it (a return made later does not reach
  back). Recency is in days: ``as_of`` minus the last purchase day.
- The member universe and a member's home store, region and channel are
  those of :mod:`crmkit.engine.scope`, which also says which members a
  region, store or channel report counts (``universe`` is the scope's members,
  ``universe_all`` the chain's).
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields

import pandas as pd

from . import engine
from .engine import Query, as_date  # noqa: F401  (re-exported: analyses import them from here)
from .engine.scope import Scope
from .engine.store import Connection
from .engine.query import SNAPSHOTS
from .errors import CrmkitError
from .i18n import register, t

# --------------------------------------------------------------------------- base

def activity(as_of, scope: Scope | None = None, member: str | None = None) -> Query:
    """The engine's member activity as of ``as_of`` plus the member universe of ``scope``.

    With ``member``, the activity is that one member's (their own orders only):
    their row of ``universe`` and of every per-member relation built on it
    (stage, tier) is what the whole chain's would give them, and the other
    members' rows are of no use.

    From :mod:`crmkit.engine.activity`: ``orders``, ``purchases``, ``days`` (one row
    per member-day; ``purchases > 0`` is a purchase day), ``purchase_days`` and
    ``activity``. From :func:`crmkit.engine.scope.universe`: ``universe_all``,
    every member, and ``universe``, the members of ``scope`` (default: the
    chain), one row per member with ``join_date``, home ``store_id``,
    ``region``, ``channel``, ``first_purchase``, ``last_purchase``,
    ``purchase_days`` and ``net_spend`` (yuan, all history).
    """
    return (engine.purchases(as_of, member=member) + engine.purchase_days(as_of, member=member)
            + engine.member_activity(as_of, member=member) + engine.universe(as_of, scope))


@contextmanager
def snapshot(con: Connection, as_of):
    """Compute the member activity as of ``as_of`` once, for many analyses of that date.

    Inside the ``with`` block every crmkit analysis on ``con`` for this ``as_of``
    reads ``orders``, ``days`` and ``universe_all`` from temporary tables instead
    of rescanning ``transactions``: a report or a scoring run makes a dozen
    views of one date. Results are identical; the store must not change inside
    the block. The temporary tables are dropped on exit (read-only stores work too).
    """
    key = (id(con), as_date(as_of))
    if key in SNAPSHOTS:  # already inside a snapshot of this date
        yield
        return
    q, tables, swaps = activity(as_of).for_store(con), [], {}
    token = uuid.uuid4().hex[:12]
    try:
        for name in ("orders", "days", "universe_all"):
            tables.append(f"crmkit_{name}_{token}")
            sql = q.sql(f"SELECT * FROM {name}")
            con.execute(f"CREATE TEMP TABLE {tables[-1]} AS {sql}", q.bound(sql))
            swaps[name] = (activity(as_of).ctes[name], f"  SELECT * FROM {tables[-1]}")
            q = Query({**q.ctes, name: swaps[name][1]}, q.params)
        SNAPSHOTS[key] = swaps
        yield
    finally:
        SNAPSHOTS.pop(key, None)
        for table in tables:
            con.execute(f"DROP TABLE IF EXISTS {table}")


def last_complete_month(as_of) -> dt.date:
    """First day of the last calendar month that ends on or before ``as_of``."""
    d = as_date(as_of) + dt.timedelta(days=1)
    first = d.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


# ----------------------------------------------------------------- lifecycle stages

STAGES = ("prospect", "new", "active", "won_back", "dormant", "churned")

register({
    "stage.prospect": ("潜在", "Prospect"),
    "stage.new": ("新会员", "New"),
    "stage.active": ("活跃", "Active"),
    "stage.won_back": ("召回", "Won back"),
    "stage.dormant": ("沉睡", "Dormant"),
    "stage.churned": ("流失", "Churned"),
    "lifecycle.stage": ("生命周期阶段", "Lifecycle stage"),
    "lifecycle.members": ("会员数（人）", "Members (count)"),
    "lifecycle.stages_title": ("会员生命周期分布", "Members by lifecycle stage"),
    "funnel.title": ("会员转化漏斗", "Member funnel"),
    "funnel.axis": ("会员数（人）；括号内：占注册会员 | 占上一步", "Members; in brackets: share of registered | of the step before"),
    "lifecycle.windows": ("阶段定义：新会员 = 首购不足 {new} 天；活跃 = 最近一次购买不足 {active} 天；"
                          "沉睡 = {active}–{churn} 天未购买；流失 = {churn} 天及以上未购买；"
                          "召回 = 中断 {active} 天以上后于近 {new} 天内再次购买；潜在 = 注册未购买。",
                          "Stages: new = first purchase under {new} days ago; active = last purchase under "
                          "{active} days ago; dormant = no purchase for {active}–{churn} days; churned = none for "
                          "{churn} days or more; won back = bought again in the last {new} days after a gap of "
                          "{active}+ days; prospect = registered, never bought."),
    "funnel.registered": ("注册会员", "Registered"),
    "funnel.purchased": ("已首购", "Bought at least once"),
    "funnel.repeat": ("已复购", "Bought on 2+ days"),
    "funnel.active": ("复购且活跃", "Repeat and active"),
    "monthly.title": ("会员转化与留存（按月）", "Member conversion and retention by month"),
    "monthly.month": ("月份", "Month"),
    "monthly.rate": ("比率（%）", "Rate (%)"),
    "monthly.first_purchase_rate": ("新会员当月首购率", "First-purchase rate of new members"),
    "monthly.next_month_repurchase_rate": ("新客次月复购率", "Next-month repurchase rate"),
    "monthly.retention_rate": ("老客留存率（上月→本月）", "Retention (bought last month and this)"),
    "monthly.winback_rate": ("沉睡召回率", "Win-back rate of lapsed buyers"),
})


def stage_label(stage: str, lang: str = "zh") -> str:
    """Display label of a lifecycle stage key, e.g. ``dormant`` → ``沉睡``."""
    return t(f"stage.{stage}", lang)


@dataclass(frozen=True)
class Windows:
    """Lifecycle windows, in days.

    - ``new_days``: a first purchase fewer than this many days ago makes a member *new*;
      a return after a lapse, as recent as that, makes them *won back*.
    - ``active_days``: a last purchase fewer than this many days ago is *active*; a gap
      of at least this long between purchases is a lapse.
    - ``churn_days``: no purchase for at least this many days is *churned*; between
      ``active_days`` and ``churn_days`` is *dormant* (沉睡).
    """

    new_days: int = 90
    active_days: int = 180
    churn_days: int = 365

    @classmethod
    def of(cls, windows: Windows | Mapping | None) -> Windows:
        """Validated windows from ``None`` (defaults), a mapping or a :class:`Windows`."""
        if windows is None:
            return cls()
        if isinstance(windows, Windows):
            values = {f.name: getattr(windows, f.name) for f in fields(cls)}
        elif isinstance(windows, Mapping):
            unknown = set(windows) - {f.name for f in fields(cls)}
            if unknown:
                raise CrmkitError(f"unknown lifecycle window {sorted(unknown)[0]!r}; "
                                  "use new_days, active_days and churn_days.")
            values = {**{f.name: getattr(cls(), f.name) for f in fields(cls)}, **windows}
        else:
            raise CrmkitError("lifecycle windows must be a mapping such as {'active_days': 180}.")
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 3660:
                raise CrmkitError(f"lifecycle window {name} must be a whole number of days "
                                  f"from 1 to 3660, not {v!r}.")
        w = cls(**values)
        if not w.new_days <= w.active_days < w.churn_days:
            raise CrmkitError("lifecycle windows must satisfy new_days <= active_days < churn_days.")
        return w

    def describe(self, lang: str = "zh") -> str:
        """One sentence defining the stages with these windows, for a report."""
        return t("lifecycle.windows", lang).format(new=self.new_days, active=self.active_days,
                                                   churn=self.churn_days)

    def params(self) -> dict[str, int]:
        return {f"lc_{f.name}": getattr(self, f.name) for f in fields(self)}


def stage_sql(first_purchase: str, last_purchase: str, first_recent: str, last_before: str) -> str:
    """SQL of the lifecycle stage (see :func:`stages`) from a member's first and last purchase day and
    the win-back dates: the first purchase day in the last ``new_days`` and the last one in the
    ``active_days`` before them. Windows are bound by :meth:`Windows.params`."""
    recency = f"date_diff('day', {last_purchase}, CAST($as_of AS DATE))"
    return f"""CASE
      WHEN {last_purchase} IS NULL THEN 'prospect'
      WHEN {recency} >= $lc_churn_days THEN 'churned'
      WHEN {recency} >= $lc_active_days THEN 'dormant'
      WHEN date_diff('day', {first_purchase}, CAST($as_of AS DATE)) < $lc_new_days THEN 'new'
      WHEN date_diff('day', coalesce({last_before}, {first_recent} - $lc_active_days), {first_recent})
           >= $lc_active_days
        THEN 'won_back'
      ELSE 'active'
    END"""


_STAGE_CTES = {
    # No gap within the last new_days days can reach active_days (new_days <= active_days), so
    # a member is back from a lapse only through their first purchase of that period, when
    # there was no purchase in the active_days before it: only that stretch needs reading.
    "winbacks": """
  SELECT member_id,
         min(CASE WHEN day > CAST($as_of AS DATE) - $lc_new_days THEN day END) AS first_recent,
         max(CASE WHEN day <= CAST($as_of AS DATE) - $lc_new_days THEN day END) AS last_before
  FROM purchase_days
  WHERE day > CAST($as_of AS DATE) - $lc_new_days - $lc_active_days
  GROUP BY member_id""",
    "stages": f"""
  SELECT u.*, date_diff('day', u.last_purchase, CAST($as_of AS DATE)) AS recency_days,
    {stage_sql("u.first_purchase", "u.last_purchase", "w.first_recent", "w.last_before")} AS lifecycle_stage
  FROM universe u LEFT JOIN winbacks w USING (member_id)""",
}


def stages_query(as_of, windows: Windows | Mapping | None = None, scope: Scope | None = None,
                 member: str | None = None) -> Query:
    """:func:`activity` plus the ``stages`` CTE (one row per member of ``scope`` with ``lifecycle_stage``;
    with ``member``, only that member's row is meaningful)."""
    return activity(as_of, scope, member) + Query(_STAGE_CTES, Windows.of(windows).params())


def stages(con: Connection, as_of, windows: Windows | Mapping | None = None) -> pd.DataFrame:
    """Lifecycle stage of every member as of ``as_of``.

    Stages, checked in this order (windows in days, see :class:`Windows`):
    ``prospect`` (registered, never bought), ``churned`` (recency ≥ churn_days),
    ``dormant`` (recency ≥ active_days), ``new`` (first purchase < new_days ago),
    ``won_back`` (a purchase after a gap ≥ active_days, < new_days ago), else ``active``.

    Returns
    -------
    DataFrame
        member_id, lifecycle_stage, join_date, first_purchase, last_purchase,
        recency_days, purchase_days, store_id, region, channel.
    """
    return stages_query(as_of, windows).df(con, """
SELECT member_id, lifecycle_stage, join_date, first_purchase, last_purchase, recency_days,
       purchase_days, store_id, region, channel
FROM stages ORDER BY member_id""")


def stage_summary(con: Connection, as_of, windows: Windows | Mapping | None = None,
                  by: str | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Members of ``scope`` (default: the chain) per lifecycle stage (all stages, zeros included),
    optionally per home store, region or channel."""
    col = _group_column(by)
    keys = " UNION ALL ".join(f"SELECT $lc_stage_{i} AS lifecycle_stage, {i} AS pos" for i in range(len(STAGES)))
    q = stages_query(as_of, windows, scope) + Query(params={f"lc_stage_{i}": s for i, s in enumerate(STAGES)})
    out = q.df(con, f"""
SELECT g.grp, k.lifecycle_stage, count(s.member_id) AS members
FROM (SELECT DISTINCT {col} AS grp FROM stages) g
CROSS JOIN ({keys}) k
LEFT JOIN stages s ON {col} IS NOT DISTINCT FROM g.grp AND s.lifecycle_stage = k.lifecycle_stage
GROUP BY g.grp, k.lifecycle_stage, k.pos ORDER BY g.grp NULLS LAST, k.pos""")
    out["share"] = out["members"] / out.groupby("grp", dropna=False)["members"].transform("sum")
    return _finish_groups(out, by)


def funnel(con: Connection, as_of, windows: Windows | Mapping | None = None,
           scope: Scope | None = None) -> pd.DataFrame:
    """The member funnel of ``scope`` (default: the chain) as of ``as_of``: registered → bought →
    bought again → still active.

    Each step is a subset of the one before: ``purchased`` have at least one purchase
    day, ``repeat`` at least two, ``active`` are repeat buyers whose last purchase is
    fewer than ``active_days`` ago.

    ``conversion`` is each step's count over the step before; ``share`` is over registered.
    """
    w = Windows.of(windows)
    row = stages_query(as_of, w, scope).df(con, """
SELECT count(*) AS registered,
       count(CASE WHEN purchase_days >= 1 THEN 1 END) AS purchased,
       count(CASE WHEN purchase_days >= 2 THEN 1 END) AS repeat,
       count(CASE WHEN purchase_days >= 2 AND recency_days < $lc_active_days THEN 1 END) AS active
FROM stages""").iloc[0]
    out = pd.DataFrame({"step": list(row.index), "members": row.to_numpy(dtype="int64")})
    out["conversion"] = out["members"] / out["members"].shift(1).where(lambda s: s > 0)
    out.loc[0, "conversion"] = 1.0
    out["share"] = out["members"] / out["members"].iloc[0] if out["members"].iloc[0] else float("nan")
    return out


# ----------------------------------------------------------- monthly funnel metrics

GROUP_COLUMNS = {"store": "store_id", "region": "region", "channel": "channel"}


def _group_column(by: str | None) -> str:
    """SQL for the grouping column of a universe-based table (a whitelisted name, never user text)."""
    if by is None:
        return "'all'"
    if by not in GROUP_COLUMNS:
        raise CrmkitError(f"cannot group by {by!r}; use one of {', '.join(GROUP_COLUMNS)}.")
    return GROUP_COLUMNS[by]


def _finish_groups(out: pd.DataFrame, by: str | None) -> pd.DataFrame:
    if by is None:
        return out.drop(columns="grp").reset_index(drop=True)
    return out.rename(columns={"grp": GROUP_COLUMNS[by]}).reset_index(drop=True)


_MONTHLY = {
    "spine": """
  SELECT CAST(m AS DATE) AS month FROM (
    SELECT """ + engine.series("CAST($first_month AS TIMESTAMP)", "CAST($last_month AS TIMESTAMP)",
                               "INTERVAL 1 MONTH") + """ AS m) months""",
    "home": """
  SELECT member_id, {col} AS grp, last_purchase,
         CAST(date_trunc('month', join_date) AS DATE) AS join_month,
         CAST(date_trunc('month', first_purchase) AS DATE) AS first_month
  FROM universe""",
    # Every purchase day with the one before it. A buyer is lapsed at a month start s when
    # their last purchase before s is at least active_days old: from lapse_from, the first
    # month start >= prev_day + active_days, up to the month of the purchase that ends it.
    "pdays": """
  SELECT member_id, grp, first_month, day, month, prev_day,
         CAST(date_trunc('month', prev_day + $lc_active_days - 1) + INTERVAL 1 MONTH AS DATE) AS lapse_from
  FROM (SELECT d.member_id, h.grp, h.first_month, d.day, CAST(date_trunc('month', d.day) AS DATE) AS month,
               lag(d.day) OVER (PARTITION BY d.member_id ORDER BY d.day) AS prev_day
        FROM purchase_days d JOIN home h USING (member_id))""",
    "grid": """
  SELECT s.month, h.grp FROM spine s CROSS JOIN (SELECT DISTINCT grp FROM home) h""",
    "joins": """
  SELECT join_month AS month, grp, count(*) AS new_members,
         count(CASE WHEN first_month = join_month THEN 1 END) AS first_purchasers
  FROM home GROUP BY join_month, grp""",
    "firsts": """
  SELECT first_month AS month, grp, count(*) AS first_buyers FROM home
  WHERE first_month IS NOT NULL GROUP BY first_month, grp""",
    # one pass over the purchase days; "first in month" rows count each buyer once a month
    "month_stats": """
  SELECT month, grp,
    count(CASE WHEN prev_day IS NULL OR prev_day < month THEN 1 END) AS buyers,
    count(CASE WHEN prev_day < month AND prev_day >= CAST(month - INTERVAL 1 MONTH AS DATE) THEN 1 END) AS retained,
    count(CASE WHEN (prev_day IS NULL OR prev_day < month)
                    AND month = CAST(first_month + INTERVAL 1 MONTH AS DATE) THEN 1 END) AS second_month_buyers,
    avg(date_diff('day', prev_day, day)) AS repurchase_cycle_days,
    count(CASE WHEN prev_day < month AND lapse_from <= month THEN 1 END) AS won_back
  FROM pdays GROUP BY month, grp""",
    # changes of the number of lapsed buyers: +1 from lapse_from, -1 after the month that ends the lapse
    "lapse_deltas": """
  SELECT grp, month, sum(delta) AS delta FROM (
    SELECT grp, lapse_from AS month, 1 AS delta FROM pdays WHERE lapse_from <= month
    UNION ALL
    SELECT grp, CAST(month + INTERVAL 1 MONTH AS DATE), -1 FROM pdays WHERE lapse_from <= month
    UNION ALL
    SELECT grp, CAST(date_trunc('month', last_purchase + $lc_active_days - 1) + INTERVAL 1 MONTH AS DATE), 1
    FROM home WHERE last_purchase IS NOT NULL) changes
  GROUP BY grp, month""",
    # buyers lapsed at the start of each month of the grid: the changes up to it (few rows: group x month)
    "lapse_level": """
  SELECT g.grp, g.month, CAST(sum(d.delta) AS BIGINT) AS lapsed
  FROM grid g JOIN lapse_deltas d ON d.grp IS NOT DISTINCT FROM g.grp AND d.month <= g.month
  GROUP BY g.grp, g.month""",
}

_MONTHLY_SELECT = """
SELECT g.month, g.grp,
  coalesce(j.new_members, 0) AS new_members,
  coalesce(j.first_purchasers, 0) AS first_purchasers,
  j.first_purchasers / nullif(j.new_members, 0) AS first_purchase_rate,
  coalesce(f.first_buyers, 0) AS first_buyers,
  CASE WHEN g.month < $last_month THEN coalesce(nx.second_month_buyers, 0) END AS next_month_repurchasers,
  CASE WHEN g.month < $last_month THEN coalesce(nx.second_month_buyers, 0) / nullif(f.first_buyers, 0) END
    AS next_month_repurchase_rate,
  coalesce(s.buyers, 0) AS buyers,
  coalesce(sp.buyers, 0) AS buyers_prev_month,
  coalesce(s.retained, 0) AS retained,
  coalesce(s.retained, 0) / nullif(sp.buyers, 0) AS retention_rate,
  s.repurchase_cycle_days,
  coalesce(l.lapsed, 0) AS lapsed,
  coalesce(s.won_back, 0) AS won_back,
  coalesce(s.won_back, 0) / nullif(l.lapsed, 0) AS winback_rate
FROM grid g
LEFT JOIN joins j ON j.grp IS NOT DISTINCT FROM g.grp AND j.month = g.month
LEFT JOIN firsts f ON f.grp IS NOT DISTINCT FROM g.grp AND f.month = g.month
LEFT JOIN month_stats s ON s.grp IS NOT DISTINCT FROM g.grp AND s.month = g.month
LEFT JOIN month_stats sp ON sp.grp IS NOT DISTINCT FROM g.grp AND sp.month = CAST(g.month - INTERVAL 1 MONTH AS DATE)
LEFT JOIN month_stats nx ON nx.grp IS NOT DISTINCT FROM g.grp AND nx.month = CAST(g.month + INTERVAL 1 MONTH AS DATE)
LEFT JOIN lapse_level l ON l.grp IS NOT DISTINCT FROM g.grp AND l.month = g.month
ORDER BY g.grp, g.month"""


def monthly_metrics(con: Connection, as_of, *, months: int = 12, by: str | None = None,
                    windows: Windows | Mapping | None = None, scope: Scope | None = None) -> pd.DataFrame:
    """Monthly funnel metrics for the last ``months`` complete calendar months up to ``as_of``.

    Over the members of ``scope`` (default: the chain). Members are counted in
    their home store, region or channel (``by``), so that every rate's
    numerator and denominator are the same people.

    Per month M:

    - ``new_members``: members who joined in M; ``first_purchase_rate``: the share of
      them whose first purchase was in M too.
    - ``next_month_repurchase_rate``: of the members whose first purchase was in M
      (``first_buyers``), the share who bought again in M+1 (empty for the last month).
    - ``retention_rate``: of the members who bought in M-1, the share who bought in M.
    - ``repurchase_cycle_days``: mean days since the previous purchase day, over the
      repeat purchase days in M.
    - ``winback_rate``: of the buyers lapsed at the start of M (last purchase at least
      ``active_days`` earlier; ``lapsed``), the share who bought in M (``won_back``).

    Counts come with every rate, so that small groups can be read with care.
    """
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 240:
        raise CrmkitError(f"months must be a whole number from 1 to 240, not {months!r}.")
    last = last_complete_month(as_of)
    first = (pd.Timestamp(last) - pd.DateOffset(months=months - 1)).date()
    col = _group_column(by)
    params = {"first_month": first, "last_month": last, **Windows.of(windows).params()}
    q = activity(as_of, scope) + Query({k: v.format(col=col) for k, v in _MONTHLY.items()}, params)
    return _finish_groups(q.df(con, _MONTHLY_SELECT), by)


# ------------------------------------------------------------------------------ plots

def plot_stages(summary: pd.DataFrame, lang: str = "zh"):
    """Bar chart of :func:`stage_summary` (without ``by``): members per stage."""
    from matplotlib.ticker import StrMethodFormatter

    from . import viz  # matplotlib: only where a chart is drawn
    fig, ax = viz.new_figure()
    labels = [stage_label(s, lang) for s in summary["lifecycle_stage"]]
    bars = ax.bar(labels, summary["members"], color=viz.PALETTE[0])
    ax.bar_label(bars, labels=[viz.fmt_pct(x) for x in summary["share"]], fontsize=9)
    ax.set_title(t("lifecycle.stages_title", lang))
    ax.set_xlabel(t("lifecycle.stage", lang))
    ax.set_ylabel(t("lifecycle.members", lang))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    return fig


def plot_funnel(steps: pd.DataFrame, lang: str = "zh"):
    """Horizontal funnel of :func:`funnel`, each bar labelled with its count and conversion."""
    from . import viz  # matplotlib: only where a chart is drawn
    fig, ax = viz.new_figure()
    labels = [t(f"funnel.{s}", lang) for s in steps["step"]][::-1]
    widths = steps["members"].to_numpy()[::-1]
    bars = ax.barh(labels, widths, left=(widths.max() - widths) / 2, color=viz.PALETTE[0])
    ax.bar_label(bars, labels=[f"{n:,} ({viz.fmt_pct(sh)} | {viz.fmt_pct(c)})" for n, sh, c in
                               zip(widths, steps["share"].to_numpy()[::-1], steps["conversion"].to_numpy()[::-1])],
                 label_type="center", color="white", fontsize=9)
    ax.set_title(t("funnel.title", lang))
    ax.set_xlabel(t("funnel.axis", lang))
    ax.grid(False)
    ax.set_xticks([])
    return fig


MONTHLY_RATES = ("first_purchase_rate", "next_month_repurchase_rate", "retention_rate", "winback_rate")


def plot_monthly(metrics: pd.DataFrame, lang: str = "zh"):
    """Lines of the monthly rates of :func:`monthly_metrics` (without ``by``), in per cent."""
    from . import viz  # matplotlib: only where a chart is drawn
    fig, ax = viz.new_figure()
    for rate in MONTHLY_RATES:
        ax.plot(metrics["month"], metrics[rate], marker="o", label=t(f"monthly.{rate}", lang))
    ax.yaxis.set_major_formatter(viz.pct_formatter)
    ax.set_ylim(bottom=0)
    ax.set_title(t("monthly.title", lang))
    ax.set_xlabel(t("monthly.month", lang))
    ax.set_ylabel(t("monthly.rate", lang))
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return fig
