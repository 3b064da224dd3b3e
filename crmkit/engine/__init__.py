"""The engine: the one place that builds SQL for the member store.

- :mod:`~crmkit.engine.query`: :class:`Query`, named CTEs with bound parameters;
- :mod:`~crmkit.engine.activity`: the canonical member-activity relations,
  order, purchase, purchase day and member activity, each defined once (its
  module docstring is the definition every analysis uses).
"""
from .activity import (HALF_CENT, RELATIONS, as_date, days, first_by, lines, member_activity, orders,
                       purchase_days, purchases, relation_sql)
from .query import Query, StoreRelation, table_columns

__all__ = ["HALF_CENT", "RELATIONS", "Query", "StoreRelation", "as_date", "days", "first_by", "lines",
           "member_activity", "orders", "purchase_days", "purchases", "relation_sql", "table_columns"]
