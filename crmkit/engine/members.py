"""Member facts: one row per member with a purchase day, everything per member that scoring derives from.

``member_facts`` is one aggregation of the canonical ``days`` relation
(:mod:`crmkit.engine.activity`; orders, purchases and purchase days as
defined there; its ``bought`` and ``returned`` carry the lines' money up),
so that the RFM summary, the R/F/M scores and segment, the lifecycle stage,
the tier and the churn behaviour features of every member come from one
engine query instead of one scan each. Columns (days are calendar days, money is net of returns):

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
- ``channels``: distinct channels on the member's lines (0 without a channel;
  only the lines with a channel are read); ``returned, bought``: yuan of the
  negative and of the positive lines (NULL without any).

The SQL is the portable subset of :mod:`crmkit.engine.activity` (``arg_min``
only beyond the standard aggregates), written for one pass over the member-days:
no window function (the purchase day before the last is a join on the last).
"""
from __future__ import annotations

from .activity import PURCHASE_AGGREGATES, days
from .query import Query

# count(DISTINCT) ignores NULL: only the lines with a channel are grouped (none, in data without channels)
_CHANNEL_FACTS = """
  SELECT member_id, count(DISTINCT channel) AS channels
  FROM lines{s} WHERE channel IS NOT NULL GROUP BY member_id"""

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
         sum(returned) AS returned, sum(bought) AS bought
  FROM days{s} GROUP BY member_id
  HAVING count(CASE WHEN purchases > 0 THEN 1 END) > 0"""

# the purchase day before the last one: a join on the member's last purchase day (cheaper than a
# window over every member-day, which sorts them all)
_PREVIOUS = """
  SELECT d.member_id, max(d.day) AS previous_purchase
  FROM days{s} d JOIN day_facts{s} f ON f.member_id = d.member_id AND d.day < f.last_purchase
  WHERE d.purchases > 0 GROUP BY d.member_id"""

_FACTS = """
  SELECT CAST(d.member_id AS VARCHAR) AS member_id, d.first_purchase, d.last_purchase, d.purchase_days,
         d.purchases, d.purchase_value, d.first_value, d.net_spend, d.window_spend, d.recent_spend,
         d.first_recent, d.last_before,
         date_diff('day', p.previous_purchase, d.last_purchase) AS last_interval_days,
         coalesce(c.channels, 0) AS channels, d.returned, d.bought
  FROM day_facts{s} d LEFT JOIN previous_purchase{s} p ON p.member_id = d.member_id
       LEFT JOIN channel_facts{s} c ON c.member_id = d.member_id"""


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
    ctes = {f"day_facts{s}": _DAY_FACTS, f"previous_purchase{s}": _PREVIOUS,
            f"channel_facts{s}": _CHANNEL_FACTS, f"member_facts{s}": _FACTS}
    params = {f"mf_window_days{s}": int(window_days), f"mf_recent_days{s}": int(recent_days),
              f"mf_new_days{s}": int(new_days), f"mf_active_days{s}": int(active_days)}
    return days(as_of, suffix=s, **kw) + Query({k: v.format(s=s) for k, v in ctes.items()}, params)
