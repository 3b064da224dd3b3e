"""RFM scores and the standard named RFM segments, computed in the engine.

Scores
------
R, F and M are quintile scores from 1 to 5 over the members who have bought
up to ``as_of`` (see :mod:`crmkit.engine.activity` for purchase days and netting):

- R: the last purchase day (later = higher, so the most recent buyers score 5),
- F: the number of purchase days,
- M: the net spend over all history, in yuan (returns subtracted).

Ties are explicit and deterministic: a member's score is
``1 + floor(5 × share of buyers with a strictly lower value)``, so equal values
always share a score (SQL ``RANK()``; pandas ``rank(method="min")``). Where many
members tie (most buy once), some scores are then unused, rather than
identical customers being split across scores by an arbitrary key.

Segments
--------
The segment comes from R and FM = ceil((F + M) / 2), after the widely used
R × FM grid (Putler's eleven RFM segments, priority-resolved into one cell each;
RFM scoring after Hughes 1994, *Strategic Database Marketing*)::

    R \\ FM | 1               2                   3                   4            5
    -------+---------------------------------------------------------------------------
      5    | New             Potential Loyalist  Potential Loyalist  Champions    Champions
      4    | Promising       Potential Loyalist  Potential Loyalist  Loyal        Champions
      3    | About to Sleep  About to Sleep      Need Attention      Loyal        Loyal
      2    | Hibernating     Hibernating         At Risk             At Risk      Can't Lose
      1    | Lost            Lost                At Risk             Can't Lose   Can't Lose
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .engine.scope import Scope
from .engine.store import Connection
from .i18n import register, t
from .lifecycle import Query, activity

SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    # FM = 1           FM = 2                FM = 3                FM = 4         FM = 5
    ("New",            "Potential Loyalist", "Potential Loyalist", "Champions",   "Champions"),   # R = 5
    ("Promising",      "Potential Loyalist", "Potential Loyalist", "Loyal",       "Champions"),   # R = 4
    ("About to Sleep", "About to Sleep",     "Need Attention",     "Loyal",       "Loyal"),       # R = 3
    ("Hibernating",    "Hibernating",        "At Risk",            "At Risk",     "Can't Lose"),  # R = 2
    ("Lost",           "Lost",               "At Risk",            "Can't Lose",  "Can't Lose"),  # R = 1
)

#: The eleven segments, from the most to the least valuable.
SEGMENTS = ("Champions", "Loyal", "Potential Loyalist", "New", "Promising", "Need Attention",
            "About to Sleep", "At Risk", "Can't Lose", "Hibernating", "Lost")

register({
    "rfm.Champions": ("冠军客户", "Champions"),
    "rfm.Loyal": ("忠诚客户", "Loyal"),
    "rfm.Potential Loyalist": ("潜在忠诚", "Potential Loyalist"),
    "rfm.New": ("新客户", "New"),
    "rfm.Promising": ("有潜力", "Promising"),
    "rfm.Need Attention": ("需要关注", "Need Attention"),
    "rfm.About to Sleep": ("即将沉睡", "About to Sleep"),
    "rfm.At Risk": ("有流失风险", "At Risk"),
    "rfm.Can't Lose": ("不能失去", "Can't Lose"),
    "rfm.Hibernating": ("休眠", "Hibernating"),
    "rfm.Lost": ("流失", "Lost"),
    "rfm.segment": ("RFM 分群", "RFM segment"),
    "rfm.share": ("占比（%）", "Share (%)"),
    "rfm.member_share": ("会员占比", "Share of members"),
    "rfm.revenue_share": ("净销售额占比", "Share of net revenue"),
    "rfm.title": ("RFM 分群：会员与销售额占比", "RFM segments: share of members and of revenue"),
})


def segment_label(segment: str, lang: str = "zh") -> str:
    """Display label of an RFM segment, e.g. ``Champions`` → ``冠军客户``."""
    return t(f"rfm.{segment}", lang)


def score_sql(rank: str, buyers: str) -> str:
    """SQL of a quintile score 1–5 from a ``rank()`` among ``buyers`` (see the module docstring)."""
    return f"CAST(1 + 5 * ({rank} - 1) // {buyers} AS INTEGER)"


def segment_sql(r: str, f: str, m: str) -> str:
    """SQL of the segment (:data:`SEGMENT_GRID`) of scores ``r``, ``f``, ``m``.

    The names are bound by :func:`segment_params`."""
    cells = " ".join(f"WHEN {i} THEN $rfm_grid_{i}" for i in range(1, 26))
    return f"CASE (5 - {r}) * 5 + ({f} + {m} + 1) // 2 {cells} END"


def segment_params() -> dict[str, str]:
    """The segment names of :data:`SEGMENT_GRID`, cell by cell, as :func:`segment_sql` binds them."""
    return {f"rfm_grid_{i}": seg for i, seg in enumerate((s for row in SEGMENT_GRID for s in row), 1)}


_RFM = {
    "rfm_base": """
  SELECT member_id, last_purchase, purchase_days AS frequency, net_spend AS monetary,
         date_diff('day', last_purchase, CAST($as_of AS DATE)) AS recency_days,
         count(*) OVER () AS n_buyers,
         rank() OVER (ORDER BY last_purchase) AS rank_r,
         rank() OVER (ORDER BY purchase_days) AS rank_f,
         rank() OVER (ORDER BY net_spend) AS rank_m
  FROM universe_all WHERE purchase_days > 0""",
    "rfm": f"""
  SELECT member_id, last_purchase, frequency, monetary, recency_days,
         {score_sql("rank_r", "n_buyers")} AS rfm_r,
         {score_sql("rank_f", "n_buyers")} AS rfm_f,
         {score_sql("rank_m", "n_buyers")} AS rfm_m
  FROM rfm_base""",
    "rfm_segments": f"""
  SELECT *, {segment_sql("rfm_r", "rfm_f", "rfm_m")} AS rfm_segment
  FROM rfm""",
}


def rfm_query(as_of, scope: Scope | None = None) -> Query:
    """:func:`crmkit.lifecycle.activity` plus ``rfm_segments`` (one row per buyer of the chain: R, F and M
    are ranked among all the chain's buyers whatever the ``scope``, whose members are ``universe``)."""
    return activity(as_of, scope) + Query(_RFM, segment_params())


def rfm_scores(con: Connection, as_of) -> pd.DataFrame:
    """RFM quintile scores and segment of every member who has bought up to ``as_of``.

    Members who never bought are not scored (no row).

    Returns
    -------
    DataFrame
        member_id, rfm_r, rfm_f, rfm_m (1–5), rfm_segment (English name, see
        :data:`SEGMENTS`; labels via :func:`segment_label`), recency_days,
        frequency (purchase days), monetary (net spend, yuan), last_purchase.
    """
    return rfm_query(as_of).df(con, """
SELECT member_id, rfm_r, rfm_f, rfm_m, rfm_segment, recency_days, frequency, monetary, last_purchase
FROM rfm_segments ORDER BY member_id""")


def segment_summary(con: Connection, as_of, scope: Scope | None = None) -> pd.DataFrame:
    """Size and net revenue of each RFM segment as of ``as_of``, all eleven in :data:`SEGMENTS` order.

    Over the buyers of ``scope`` (default: the chain; :mod:`crmkit.engine.scope`),
    each in the segment the chain's ranking gives them. ``revenue`` is the
    segment's net spend over all history up to ``as_of`` (yuan);
    ``member_share`` and ``revenue_share`` are over the scope's scored buyers.
    """
    out = rfm_query(as_of, scope).df(con, """
SELECT rfm_segment, count(*) AS members, sum(monetary) AS revenue,
       avg(recency_days) AS mean_recency_days, avg(frequency) AS mean_frequency,
       avg(monetary) AS mean_monetary
FROM rfm_segments WHERE member_id IN (SELECT member_id FROM universe) GROUP BY rfm_segment""")
    out = out.set_index("rfm_segment").reindex(list(SEGMENTS))
    out["members"] = out["members"].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["member_share"] = out["members"] / max(out["members"].sum(), 1)
    total = out["revenue"].sum()
    out["revenue_share"] = out["revenue"] / total if total else np.nan
    cols = ["members", "member_share", "revenue", "revenue_share",
            "mean_recency_days", "mean_frequency", "mean_monetary"]
    return out[cols].rename_axis("rfm_segment").reset_index()


def migration_matrix(before: pd.DataFrame, after: pd.DataFrame, column: str, order: Sequence[str],
                     missing: str) -> pd.DataFrame:
    """Counts of members by their ``column`` in ``before`` (rows) and ``after`` (columns).

    Rows and columns follow ``order``. Members of ``after`` absent from ``before``
    are in the row ``missing``; members absent from ``after`` are left out.
    """
    merged = after[["member_id", column]].merge(before[["member_id", column]], on="member_id", how="left",
                                                suffixes=("", "_before"))
    rows = merged[f"{column}_before"].astype(object).where(merged[f"{column}_before"].notna(), missing)
    table = pd.crosstab(rows, merged[column].astype(object))
    return (table.reindex(index=[*order, missing], columns=list(order), fill_value=0)
            .rename_axis(index=f"{column} before", columns=f"{column} after"))


def segment_migration(con: Connection, date_from, date_to) -> pd.DataFrame:
    """Members by RFM segment on ``date_from`` (rows) and ``date_to`` (columns).

    Buyers at ``date_to`` who had not bought by ``date_from`` are in the row
    ``"(no purchase)"``.
    """
    return migration_matrix(rfm_scores(con, date_from), rfm_scores(con, date_to), "rfm_segment",
                            SEGMENTS, "(no purchase)")


def plot_segments(summary: pd.DataFrame, lang: str = "zh"):
    """Side-by-side bars of each segment's share of members and of net revenue (:func:`segment_summary`)."""
    from . import viz  # matplotlib: only where a chart is drawn
    fig, ax = viz.new_figure(figsize=(9, 4.8))
    x = np.arange(len(summary))
    ax.bar(x - 0.2, summary["member_share"], width=0.4, label=t("rfm.member_share", lang))
    ax.bar(x + 0.2, summary["revenue_share"], width=0.4, label=t("rfm.revenue_share", lang))
    ax.set_xticks(x, [segment_label(s, lang) for s in summary["rfm_segment"]], rotation=35, ha="right")
    ax.yaxis.set_major_formatter(viz.pct_formatter)
    ax.set_title(t("rfm.title", lang))
    ax.set_xlabel(t("rfm.segment", lang))
    ax.set_ylabel(t("rfm.share", lang))
    ax.legend()
    fig.tight_layout()
    return fig
