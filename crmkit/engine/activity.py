"""Member activity, defined once: order, purchase, purchase day, member activity.

Every analysis that counts orders, purchases or purchase days (RFM and the
BTYD summaries, lifecycle stages, RFM segments, tiers, KPIs, cohorts,
affinity, audiences, member 360, the report header) reads the relations
below, so that one member is counted the same way everywhere.

Definitions
-----------
- **Line.** A row of ``transactions`` with a member, a time and an amount,
  rung up on or before ``as_of`` (inclusive: everything up to the end of that
  day; a return made later does not reach back). A *return line* has
  ``txn_type = 'return'`` or a negative amount.
- **Order.** The lines of one member under one order number. A return line
  belongs to the order it refunds: the one with its own ``order_id`` (a return
  rung up on the original receipt), or, for a *credit note* (a return under
  its own number), the order named in its ``ref_order_id``, linked at load
  time by :mod:`crmkit.io.credit_notes`. A line without an order number is an
  order of its member and time, as the loader makes one
  (:mod:`crmkit.io.load`: ``member@time``); so is every line of a table
  without an ``order_id`` column (CDNOW). An order's *day* is the day of its
  first line, and its store and channel are those of its first line.
- **Net amount** of an order: its sales less its returns (yuan), up to
  ``as_of``; a net below half a cent in size (|net| < 0.005) is 0.
- **Purchase.** An order without return lines, or one whose net amount is
  still positive (≥ ¥0.005) after them. So:

  - a ¥0 order (a free gift, an order paid in full by a coupon or points) is a
    purchase: the member came and took something, which is what a
    transaction count (and the BTYD literature's CDNOW figures, whose sample
    has eight $0 purchase days) records;
  - an order returned in full, by a later credit note or on the same day, is
    no purchase; a partly returned order is a purchase worth what remains;
  - a return that refunds no order of the store (no shared order number, no
    credit-note link) is an order of its own with a negative net: no purchase,
    and it cancels none; it lowers the member's net spend on its day.
- **Purchase day.** A member-day with at least one purchase. Several
  purchases on one day are one purchase day, worth their summed net amount
  (``value``); ``net`` is the day's net over all its orders, unmatched
  returns included.
- **Member activity.** Per member with any order: first and last purchase
  day, number of purchase days and of purchases, purchase value, net spend
  (all orders: returns that refund nothing included).

The SQL
-------
Each function returns a :class:`~crmkit.engine.query.Query` holding the
relation and the ones it reads, with ``as_of`` bound as ``$as_of``. The SQL
is the portable subset that SQLGlot transpiles from DuckDB to Spark SQL: no
``QUALIFY``, ``ASOF JOIN``, list functions, ``struct_pack``, ``rowid``,
``GROUP BY ALL``, ``FILTER`` clauses or ``arg_min_null``; ``arg_min``
(Spark's ``min_by``) is the only aggregate beyond the standard ones. Days
between dates are ``date_diff('day', a, b)``, never ``b - a`` (DuckDB gives
days, Spark an interval); a series of values is :func:`crmkit.engine.series`.
``tests/test_portable_sql.py`` checks every analysis's statements.

A ``suffix`` gives a second set of the same relations under other names
(``orders_cal`` with ``$as_of_cal``), for a query that compares two dates.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from ..errors import CrmkitError
from ..schema import TRANSACTIONS
from .query import Query, StoreRelation

#: Nets smaller than this in size (yuan) are zero: half a cent.
HALF_CENT = 0.005

_ALL_COLUMNS = frozenset(TRANSACTIONS.names)
#: Columns of ``transactions`` that ``lines`` passes on as they are (NULL when the table lacks them).
_DETAIL_COLUMNS = ("store_id", "channel", "sku", "category", "quantity", "discount")


def first_by(value: str, order: str) -> str:
    """SQL of ``value`` at the row with the least ``order`` in a group, NULL included.

    DuckDB's ``arg_min`` (Spark's ``min_by``) skips NULL values; a missing
    store or channel of the first order must stay missing, so NULL travels as
    the empty text. ``value`` is a VARCHAR expression.
    """
    return f"nullif(arg_min(coalesce({value}, ''), {order}), '')"


def _lines_sql(columns: frozenset[str] | None, table: str, s: str, dated: bool, since: bool, member: bool) -> str:
    """Body of ``lines{s}``: the canonical line relation over ``table`` with ``columns`` (None: all)."""
    cols = _ALL_COLUMNS if columns is None else columns
    key = "CAST(member_id AS VARCHAR) || '@' || CAST(order_time AS VARCHAR)"  # no number: one per member and time
    if "order_id" in cols:
        key = f"CAST(order_id AS VARCHAR), {key}"
        if "ref_order_id" in cols:  # a credit note belongs to the order it reverses
            key = f"ref_order_id, {key}"
        key = f"coalesce({key})"
    is_return = "amount < 0 OR txn_type = 'return'" if "txn_type" in cols else "amount < 0"
    optional = ", ".join(c if c in cols else f"CAST(NULL AS {TRANSACTIONS.column(c).type}) AS {c}"
                         for c in _DETAIL_COLUMNS)
    where = ["member_id IS NOT NULL", "order_time IS NOT NULL", "amount IS NOT NULL"]
    if dated:
        where.append(f"order_time < CAST($as_of{s} AS DATE) + INTERVAL 1 DAY")
    if since:
        where.append(f"order_time >= CAST($since{s} AS DATE)")
    if member:
        where.append(f"CAST(member_id AS VARCHAR) = $member{s}")
    return f"""
  SELECT member_id, {key} AS order_id, order_time, amount,
         CASE WHEN {is_return} THEN 1 ELSE 0 END AS is_return, {optional}
  FROM "{table}"
  WHERE {' AND '.join(where)}"""


_ORDERS = f"""
  SELECT member_id, order_id, min(order_time) AS first_time, CAST(min(order_time) AS DATE) AS day,
         CASE WHEN abs(sum(amount)) < {HALF_CENT} THEN 0.0 ELSE sum(amount) END AS net,
         max(is_return) = 1 AS has_return,
         (max(is_return) = 0 OR sum(amount) >= {HALF_CENT}) AS purchase,
         count(*) AS n_lines,
         sum(CASE WHEN amount > 0 THEN amount END) AS bought,
         sum(CASE WHEN amount < 0 THEN -amount END) AS returned,
         {first_by('store_id', 'order_time')} AS store_id, {first_by('channel', 'order_time')} AS channel
  FROM lines{{s}} GROUP BY member_id, order_id"""

_PURCHASES = """
  SELECT * FROM orders{s} WHERE purchase"""

_DAYS = f"""
  SELECT member_id, day, sum(net) AS net,
         sum(CASE WHEN purchase THEN net ELSE 0.0 END) AS value,
         count(CASE WHEN purchase THEN 1 END) AS purchases,
         sum(bought) AS bought, sum(returned) AS returned,
         {first_by('store_id', 'first_time')} AS store_id, {first_by('channel', 'first_time')} AS channel
  FROM orders{{s}} GROUP BY member_id, day"""

_PURCHASE_DAYS = """
  SELECT member_id, day, value, purchases, net FROM days{s} WHERE purchases > 0"""

#: A member's purchase days summed over rows of ``days`` (or a relation with its columns): the
#: aggregates that :func:`member_activity` and :mod:`crmkit.engine.members` share.
PURCHASE_AGGREGATES = """
         min(CASE WHEN purchases > 0 THEN day END) AS first_purchase,
         max(CASE WHEN purchases > 0 THEN day END) AS last_purchase,
         count(CASE WHEN purchases > 0 THEN 1 END) AS purchase_days,
         CAST(sum(purchases) AS BIGINT) AS purchases,
         sum(value) AS purchase_value,
         arg_min(CASE WHEN purchases > 0 THEN value END, CASE WHEN purchases > 0 THEN day END) AS first_value,
         sum(net) AS net_spend"""

_ACTIVITY = f"""
  SELECT member_id, min(day) AS first_day,{PURCHASE_AGGREGATES},
         {first_by('store_id', 'day')} AS first_store, {first_by('channel', 'day')} AS first_channel
  FROM days{{s}} GROUP BY member_id"""


def as_date(value, name: str = "as_of") -> dt.date:
    """``value`` (``str``, ``date``, ``datetime`` or ``Timestamp``) as a date, or one clear error."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise CrmkitError(f"{name} {value!r} is not a date; use YYYY-MM-DD.")
    return ts.date()


def _params(as_of, since, member, s: str) -> dict:
    params = {} if as_of is None else {f"as_of{s}": as_date(as_of, "as_of")}
    if since is not None:
        params[f"since{s}"] = as_date(since, "since")
    if member is not None:
        params[f"member{s}"] = str(member)
    return params


def lines(as_of, *, since=None, member=None, table: str = "transactions", columns=None,
          suffix: str = "") -> Query:
    """``lines``: the lines up to ``as_of`` (None: all), from ``since`` on, of one ``member`` if given.

    Columns: ``member_id, order_id`` (the order the line belongs to, see the
    module), ``order_time, amount, is_return`` (1 or 0), ``store_id, channel,
    sku, category, quantity, discount``.
    ``columns`` are the columns ``table`` has; by default they are read from
    the store when the query runs.
    """
    s = suffix

    def build(cols):
        return _lines_sql(None if cols is None else frozenset(cols), table, s, as_of is not None,
                          since is not None, member is not None)

    body = build(columns) if columns is not None else StoreRelation(table, build)
    return Query({f"lines{s}": body}, _params(as_of, since, member, s))


def _with(base: Query, name: str, body: str, suffix: str) -> Query:
    return base + Query({f"{name}{suffix}": body.format(s=suffix)})


def orders(as_of, **kw) -> Query:
    """:func:`lines` plus ``orders``: one row per order placed up to ``as_of``.

    Columns: ``member_id, order_id, first_time, day, net`` (yuan, after its
    returns, half-cent rule), ``has_return, purchase`` (booleans), ``n_lines``,
    ``bought, returned`` (yuan of its positive lines and of its negative lines
    in size; NULL without any), ``store_id, channel``.
    """
    return _with(lines(as_of, **kw), "orders", _ORDERS, kw.get("suffix", ""))


def purchases(as_of, **kw) -> Query:
    """:func:`orders` plus ``purchases``: the orders that are purchases (same columns)."""
    return _with(orders(as_of, **kw), "purchases", _PURCHASES, kw.get("suffix", ""))


def days(as_of, **kw) -> Query:
    """:func:`orders` plus ``days``: one row per member-day with an order.

    Columns: ``member_id, day, net`` (all the day's orders), ``value`` (its
    purchases' net), ``purchases`` (their number; > 0 makes a purchase day),
    ``bought, returned`` (summed over the day's orders), ``store_id, channel``
    (of the day's first order).
    """
    return _with(orders(as_of, **kw), "days", _DAYS, kw.get("suffix", ""))


def purchase_days(as_of, **kw) -> Query:
    """:func:`days` plus ``purchase_days``: ``member_id, day, value, purchases, net`` of each purchase day."""
    return _with(days(as_of, **kw), "purchase_days", _PURCHASE_DAYS, kw.get("suffix", ""))


def member_activity(as_of, **kw) -> Query:
    """:func:`days` plus ``activity``: one row per member with an order up to ``as_of``.

    Columns: ``member_id, first_day`` (first order of any kind),
    ``first_purchase, last_purchase`` (purchase days; NULL without one),
    ``purchase_days, purchases, purchase_value`` (yuan, summed ``value``),
    ``first_value`` (value of the first purchase day), ``net_spend`` (yuan,
    all orders), ``first_store, first_channel``.
    """
    return _with(days(as_of, **kw), "activity", _ACTIVITY, kw.get("suffix", ""))


#: The canonical relations by name: each function's Query defines the CTE of that name.
RELATIONS: dict[str, Callable[..., Query]] = {
    "lines": lines, "orders": orders, "purchases": purchases, "days": days,
    "purchase_days": purchase_days, "activity": member_activity,
}


def relation_sql(name: str, as_of: dt.date | str, **kw) -> str:
    """The SQL text selecting relation ``name`` as of ``as_of`` (for the schema's columns)."""
    q = RELATIONS[name](as_of, **kw)
    return q.sql(f"SELECT * FROM {name}{kw.get('suffix', '')}")
