"""Cohorts by first-purchase month: retention and revenue per member, in the engine.

A member's cohort is the calendar month of their first purchase day (see
:mod:`crmkit.engine.activity` for purchase days and netting). Month ``k`` is the
k-th calendar month after the cohort month (k = 0 is the cohort month itself,
where every member bought by definition). Only calendar months that are
complete by ``as_of`` are reported; later cells are empty, not zero.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .engine import series
from .engine.scope import Scope
from .engine.store import Connection
from . import viz
from .i18n import register, t
from .lifecycle import Query, activity, as_date, last_complete_month

register({
    "cohort.retention_title": ("按首购月的留存（当月有购买的会员占比）",
                               "Retention by first-purchase month (% of cohort buying in month k)"),
    "cohort.revenue_title": ("按首购月的人均净销售额（{money}/人）",
                             "Net revenue per cohort member by first-purchase month ({money} per member)"),
    "cohort.cumulative_title": ("按首购月的人均累计净销售额（{money}/人）",
                                "Cumulative net revenue per cohort member ({money} per member)"),
    "cohort.months_since": ("首购后第 k 个月", "Months since first purchase (k)"),
    "cohort.cohort": ("首购月份", "First-purchase month"),
})

_COHORTS = {
    "cohort_members": """
  SELECT member_id, CAST(date_trunc('month', first_purchase) AS DATE) AS cohort
  FROM universe
  WHERE ($since IS NULL OR first_purchase >= CAST($since AS DATE))
    AND first_purchase < CAST($last_month AS DATE) + INTERVAL 1 MONTH""",
    "cohort_sizes": "  SELECT cohort, count(*) AS members FROM cohort_members GROUP BY cohort",
    "member_months": """
  SELECT d.member_id, c.cohort, CAST(date_trunc('month', d.day) AS DATE) AS month,
         sum(d.net) AS revenue, max(d.purchases) > 0 AS bought
  FROM days d JOIN cohort_members c USING (member_id)
  WHERE d.day >= c.cohort AND d.day < CAST($last_month AS DATE) + INTERVAL 1 MONTH
  GROUP BY d.member_id, c.cohort, CAST(date_trunc('month', d.day) AS DATE)""",
    "cohort_cells": """
  SELECT cohort, date_diff('month', cohort, month) AS months_since,
         count(CASE WHEN bought THEN 1 END) AS buyers, sum(revenue) AS revenue
  FROM member_months GROUP BY cohort, date_diff('month', cohort, month)""",
    "cohort_grid": f"""
  SELECT cohort, members, {series("0", "date_diff('month', cohort, CAST($last_month AS DATE))")} AS months_since
  FROM cohort_sizes""",
}


def cohort_activity(con: Connection, as_of, since=None, scope: Scope | None = None) -> pd.DataFrame:
    """One row per (cohort, month k) that is complete by ``as_of``.

    Parameters
    ----------
    since : date, optional
        Only cohorts whose first purchase is on or after this date.
    scope : Scope, optional
        Only the members of this scope (default: the chain; :mod:`crmkit.engine.scope`),
        with all their purchases.

    Returns
    -------
    DataFrame
        cohort (first day of the month), months_since (k), members (cohort size),
        buyers (members with a purchase day in month k), revenue (the cohort's net
        revenue in month k, in the store's currency).
    """
    params = {"last_month": last_complete_month(as_of),
              "since": as_date(since, "since") if since is not None else None}
    q = activity(as_of, scope) + Query(_COHORTS, params)
    return q.df(con, """
SELECT g.cohort, CAST(g.months_since AS INTEGER) AS months_since, g.members,
       coalesce(c.buyers, 0) AS buyers, coalesce(c.revenue, 0.0) AS revenue
FROM cohort_grid g LEFT JOIN cohort_cells c USING (cohort, months_since)
ORDER BY g.cohort, g.months_since""")


def _pivot(cells: pd.DataFrame, values: pd.Series) -> pd.DataFrame:
    out = (cells.assign(value=values)
           .pivot(index="cohort", columns="months_since", values="value"))
    return out.rename_axis(index="cohort", columns="months_since")


def retention_matrix(cells: pd.DataFrame) -> pd.DataFrame:
    """Share of each cohort buying in month k (rows: cohorts, columns: k) from :func:`cohort_activity`."""
    return _pivot(cells, cells["buyers"] / cells["members"])


def revenue_per_member(cells: pd.DataFrame, cumulative: bool = False) -> pd.DataFrame:
    """Net revenue per cohort member in month k, in the store's currency (optionally cumulative over k)."""
    out = _pivot(cells, cells["revenue"] / cells["members"])
    return out.cumsum(axis=1, skipna=False) if cumulative else out


def cohort_sizes(cells: pd.DataFrame) -> pd.Series:
    """Members per cohort, from :func:`cohort_activity`."""
    return cells.drop_duplicates("cohort").set_index("cohort")["members"]


def plot_heatmap(matrix: pd.DataFrame, lang: str = "zh", kind: str = "retention"):
    """Heatmap of a cohort matrix: ``kind`` is ``retention``, ``revenue`` or ``cumulative``.

    Retention cells are labelled in per cent, revenue cells in money per member.
    """
    if kind not in ("retention", "revenue", "cumulative"):
        raise ValueError(f"kind must be retention, revenue or cumulative, not {kind!r}")
    n_rows, n_cols = matrix.shape
    fig, ax = viz.new_figure(figsize=(max(6.0, 0.55 * n_cols + 2), max(3.5, 0.35 * n_rows + 1.5)))
    values = matrix.to_numpy(dtype=float)
    # retention in month 0 is 100% by definition: scale the colours to the months after it
    scale = values[:, 1:] if kind == "retention" and n_cols > 1 else values
    vmax = np.nanmax(scale) if np.isfinite(scale).any() else 1.0
    im = ax.imshow(values, aspect="auto", cmap="Blues", vmin=0, vmax=vmax or 1.0)
    fmt = (lambda v: viz.fmt_pct(v, 0)) if kind == "retention" else (lambda v: viz.fmt_money(v))
    if n_rows * n_cols <= 400:
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns])
    ax.set_yticks(range(n_rows), [pd.Timestamp(c).strftime("%Y-%m") for c in matrix.index])
    ax.set_xlabel(t("cohort.months_since", lang))
    ax.set_ylabel(t("cohort.cohort", lang))
    ax.set_title(t(f"cohort.{kind}_title", lang))
    ax.grid(False)
    bar = fig.colorbar(im, ax=ax)
    bar.ax.yaxis.set_major_formatter(viz.pct_formatter if kind == "retention" else viz.money_formatter)
    fig.tight_layout()
    return fig
