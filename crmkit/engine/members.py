"""Member facts: one row per member with a purchase day, everything per member that scoring derives from.

``member_facts`` is one aggregation of the canonical ``days`` relation
(:mod:`crmkit.engine.activity`; orders, purchases and purchase days as
defined there) plus one of its ``lines``, so that the RFM summary, the R/F/M
scores and segment, the lifecycle stage, the tier and the churn behaviour
features of every member come from one engine query instead of one scan
each. Columns (days are calendar days, money is net of returns):

- ``member_id`` (text); ``first_purchase, last_purchase`` (purchase days),
  ``purchase_days, purchases, purchase_value, first_value, net_spend`` as in
  the ``activity`` relation;
- ``window_spend``: net spend (all orders) on the days in the trailing
  ``window_days`` up to ``as_of`` (NULL without any), the tiers' annual spend;
- ``recent_spend``: the same over the trailing ``recent_days`` (NULL without
  any), the churn spend trend;
- ``first_recent``: the first purchase day in the trailing ``new_days``;
  ``last_before``: the last purchase day before them, within the
  ``active_days`` before (NULL without one): the lifecycle's win-back test;
- ``last_interval_days``: days between the last two purchase days (NULL with one);
- ``channels``: distinct channels on the member's lines (0 without a channel
  column); ``returned, bought``: yuan of the negative and of the positive
  lines (NULL without any).

The SQL is the portable subset of :mod:`crmkit.engine.activity` (window
functions and ``arg_min``/``arg_max`` only beyond the standard aggregates).
"""
from __future__ import annotations

from .activity import PURCHASE_AGGREGATES, days
from .query import Query

_PREVIOUS = """
  SELECT member_id, day, value, purchases, net,
         max(CASE WHEN purchases > 0 THEN day END) OVER (
           PARTITION BY member_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
           AS previous_purchase
  FROM days{s}"""

_LINE_FACTS = """
  SELECT member_id, count(DISTINCT channel) AS channels,
         sum(CASE WHEN amount < 0 THEN -amount END) AS returned,
         sum(CASE WHEN amount > 0 THEN amount END) AS bought
  FROM lines{s} GROUP BY member_id"""

_DAY_FACTS = """
  SELECT member_id,""" + PURCHASE_AGGREGATES + """,
         sum(CASE WHEN day > CAST($as_of{s} AS DATE) - CAST($mf_window_days{s} AS INTEGER) THEN net END)
           AS window_spend,
         sum(CASE WHEN day > CAST($as_of{s} AS DATE) - CAST($mf_recent_days{s} AS INTEGER) THEN net END)
           AS recent_spend,
         min(CASE WHEN purchases > 0 AND day > CAST($as_of{s} AS DATE) - CAST($mf_new_days{s} AS INTEGER)
                  THEN day END) AS first_recent,
         max(CASE WHEN purchases > 0 AND day <= CAST($as_of{s} AS DATE) - CAST($mf_new_days{s} AS INTEGER)
                   AND day > CAST($as_of{s} AS DATE) - CAST($mf_new_days{s} AS INTEGER)
                             - CAST($mf_active_days{s} AS INTEGER)
                  THEN day END) AS last_before,
         arg_max(CASE WHEN purchases > 0 THEN day - previous_purchase END,
                 CASE WHEN purchases > 0 AND previous_purchase IS NOT NULL THEN day END) AS last_interval_days
  FROM member_days{s} GROUP BY member_id
  HAVING count(CASE WHEN purchases > 0 THEN 1 END) > 0"""

_FACTS = """
  SELECT CAST(d.member_id AS VARCHAR) AS member_id, d.first_purchase, d.last_purchase, d.purchase_days,
         d.purchases, d.purchase_value, d.first_value, d.net_spend, d.window_spend, d.recent_spend,
         d.first_recent, d.last_before, d.last_interval_days,
         coalesce(l.channels, 0) AS channels, l.returned, l.bought
  FROM day_facts{s} d LEFT JOIN line_facts{s} l ON l.member_id = d.member_id"""


def summary_sql(suffix: str = "") -> str:
    """The select list of the RFM summary over ``member_facts{suffix}`` (:func:`crmkit.rfm.rfm_summary`'s
    ``frequency, recency, T, monetary``), with time in ``$scale`` days."""
    return f"""purchase_days - 1 AS frequency,
       date_diff('day', first_purchase, last_purchase) / $scale AS recency,
       date_diff('day', first_purchase, CAST($as_of{suffix} AS DATE)) / $scale AS "T",
       CASE WHEN purchase_days > 1 THEN (purchase_value - first_value) / (purchase_days - 1) ELSE 0.0 END
           AS monetary"""


def member_facts(as_of, *, window_days: int = 365, recent_days: int = 90, new_days: int = 90,
                 active_days: int = 180, suffix: str = "", **kw) -> Query:
    """:func:`crmkit.engine.days` plus ``member_facts{suffix}``: one row per member with a purchase day.

    ``window_days`` (tiers), ``recent_days`` (churn spend trend), ``new_days``
    and ``active_days`` (lifecycle win-back) are bound as parameters; ``kw``
    (``table``, ``columns``, ``since``) go to the relations underneath.
    """
    s = suffix
    ctes = {f"member_days{s}": _PREVIOUS, f"day_facts{s}": _DAY_FACTS, f"line_facts{s}": _LINE_FACTS,
            f"member_facts{s}": _FACTS}
    params = {f"mf_window_days{s}": int(window_days), f"mf_recent_days{s}": int(recent_days),
              f"mf_new_days{s}": int(new_days), f"mf_active_days{s}": int(active_days)}
    return days(as_of, suffix=s, **kw) + Query({k: v.format(s=s) for k, v in ctes.items()}, params)
