"""The engine: the one place that builds SQL for the member store.

- :mod:`~crmkit.engine.query`: :class:`Query`, named CTEs with bound parameters;
- :mod:`~crmkit.engine.activity`: the canonical member-activity relations,
  order, purchase, purchase day and member activity, each defined once (its
  module docstring is the definition every analysis uses);
- :mod:`~crmkit.engine.members`: ``member_facts``, one row per buyer with everything
  scoring derives per member, in one aggregation;
- :mod:`~crmkit.engine.scope`: :class:`Scope`, the chain, a region, a store or a channel,
  and ``universe``, the member universe of a scope (its module states whose members and sales a scope holds);
- :mod:`~crmkit.engine.period`: :class:`Period`, a month, quarter or year to date,
  and the matched windows it is compared with (its module states the rules);
- :mod:`~crmkit.engine.snapshots`: score snapshots, each scoring run recorded once
  (``score_runs``) and read by reports and audiences whose date, settings and data match.
"""
from .activity import (HALF_CENT, RELATIONS, as_date, days, first_by, lines, member_activity, orders,
                       purchase_days, purchases, relation_sql)
from .members import member_facts, summary_sql
from .period import PERIODS, Comparison, DateRange, Period
from .query import Query, StoreRelation, one_of, series, table_columns
from .scope import CHAIN, Scope, universe

__all__ = ["CHAIN", "HALF_CENT", "PERIODS", "RELATIONS", "Comparison", "DateRange", "Period", "Query", "Scope", "StoreRelation",
           "as_date", "days", "first_by", "lines",
           "member_activity", "member_facts", "one_of", "orders", "purchase_days", "purchases", "relation_sql", "series",
           "summary_sql", "table_columns", "universe"]
