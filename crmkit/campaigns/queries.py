"""Campaign relations in the engine: the campaign, its assignment, outcomes in the attribution window, member profile.

Definitions
-----------
- **Design.** Members of a campaign are assigned to ``treatment`` or
  ``control`` in ``campaign_assignments``. Analysis is *intention-to-treat*:
  every assigned member counts in their group, contacted or not, bought or not.
- **Attribution window.** ``[start, start + attribution_days)`` in days, from
  00:00 on the start date; when ``attribution_days`` is empty,
  ``[start, end]`` with the whole end day included (:func:`attribution_window`).
- **Outcomes per assigned member.** Orders and purchases are those of
  :mod:`crmkit.engine.activity`, the one definition every analysis uses, over
  all the store's lines (a return made after the window still counts against
  its order). An order belongs to the window when its first line's
  ``order_time`` is in the window. ``orders`` counts the window's orders that
  are purchases (a ¥0 order is one; an order returned in full, later or on the
  same day, is none); a member *converted* (purchased) when ``orders > 0``;
  ``revenue`` is the net amount of the window's orders in the store's
  currency, so a return counts against the order it refunds (same
  ``order_id``, or a credit note linked by ``ref_order_id``), and a return
  refunding no order of the store, made in the window, lowers it. Members who
  did not buy count as zeros.
- **Member attributes** (tier, RFM segment, home store, region, channel,
  lifecycle stage, CLV band) are those of :mod:`crmkit.audience`, taken as of
  the day before the campaign starts; pre-period purchase days are the
  engine's purchase days.
- **Scope.** A campaign is measured over the assigned members of a scope
  (:class:`crmkit.engine.Scope`, default the chain): ``cmp_members``, those
  whose home (:func:`crmkit.engine.universe`: home store, its region, home
  channel) lies in the scope as of the day before the campaign starts, so it
  is a pre-treatment attribute. The chain keeps every assigned member (also
  one without a home by then); any other scope keeps only members with a home
  in it. Outcomes, the window's orders and coupons are those of ``cmp_members``.

The SQL is the engine's portable subset (:mod:`crmkit.engine.activity`): the
campaign id, window and dates are bound parameters.
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable
from contextlib import contextmanager

import pandas as pd

from .. import engine
from ..engine import Query, as_date
from ..engine.store import Connection, transaction
from ..errors import CrmkitError

#: Member attributes available for strata, heterogeneous effects and funnels.
ATTRIBUTES = ("tier", "segment", "store", "region", "channel", "lifecycle_stage", "clv_band")
#: The member profile's columns (:func:`profile_query`), in order.
PROFILE_COLUMNS = ("tier", "segment", "store", "region", "channel", "lifecycle_stage", "clv_band", "tenure_days",
                   "recency_days", "purchase_days", "net_spend", "pre_spend", "pre_purchase_days")
#: The level of a breakdown for members without a value.
UNKNOWN = "(unknown)"
#: The treatment funnel, in order (:func:`funnel_rows`).
FUNNEL_STAGES = ("targeted", "contacted", "redeemed", "purchased")
#: The suffix of the engine relations the outcomes read: all lines, no ``as_of``.
_ALL = "_cmp"

_CAMPAIGN_CTES = {
    "cmp_campaign": """
  SELECT campaign_id, name, "start", "end", attribution_days, margin_rate,
         coalesce(cost_per_contact, 0) AS cost_per_contact, coalesce(fixed_cost, 0) AS fixed_cost,
         coalesce(coupon_value, 0) AS coupon_value
  FROM campaigns WHERE campaign_id = $campaign_id""",
    "cmp_assigned": """
  SELECT member_id, "group", contacted_at IS NOT NULL AS contacted
  FROM campaign_assignments WHERE campaign_id = $campaign_id""",
    "cmp_member_coupons": """
  SELECT member_id, count(*) AS issued, count(redeemed_at) AS redeemed
  FROM coupons WHERE campaign_id = $campaign_id GROUP BY member_id""",
}

#: SQL: the bound campaign scope is the whole chain.
_CHAIN = "($cmp_scope_region IS NULL AND $cmp_scope_store IS NULL AND $cmp_scope_channel IS NULL)"

_SCOPE_CTES = {
    # the home's scope condition under its own parameter names: a breakdown's member profile
    # (profile_query) binds the engine's $scope_* to the chain in the same statement. "NOT chain"
    # inside the subquery is a condition on parameters only, checked before any scan, so the
    # chain never computes the homes.
    "cmp_members": f"""
  SELECT a.member_id, a."group", a.contacted FROM cmp_assigned a
  WHERE {_CHAIN}
     OR a.member_id IN (SELECT member_id FROM universe_all
                        WHERE NOT {_CHAIN} AND {engine.Scope.sql().replace("$scope_", "$cmp_scope_")})""",
}

_OUTCOME_CTES = {
    # the window's orders of assigned members: an order belongs where its first line is
    "cmp_orders": f"""
  SELECT member_id, order_id, net, purchase
  FROM orders{_ALL}
  WHERE first_time >= CAST($window_start AS TIMESTAMP) AND first_time < CAST($window_end AS TIMESTAMP)""",
    "cmp_outcomes": """
  SELECT a.member_id, a."group", a.contacted, coalesce(o.orders, 0) AS orders,
         coalesce(o.revenue, 0.0) AS revenue
  FROM cmp_members a LEFT JOIN (
    SELECT member_id, count(CASE WHEN purchase THEN 1 END) AS orders, sum(net) AS revenue
    FROM cmp_orders GROUP BY member_id) o ON o.member_id = a.member_id""",
}


def attribution_window(start, end, attribution_days) -> tuple[dt.datetime, dt.datetime]:
    """The window ``[from, to)``: ``attribution_days`` days from 00:00 on ``start``, else to the end of ``end``."""
    begin = dt.datetime.combine(as_date(start, "start"), dt.time())
    if attribution_days is None or pd.isna(attribution_days):
        return begin, dt.datetime.combine(as_date(end, "end"), dt.time()) + dt.timedelta(days=1)
    return begin, begin + dt.timedelta(days=int(attribution_days))


def campaign_query(campaign_id: str, window: tuple[dt.datetime, dt.datetime] | None = None,
                   scope: engine.Scope | None = None) -> Query:
    """CTEs of one campaign: ``cmp_campaign`` (its row), ``cmp_assigned`` (member, group,
    contacted) and ``cmp_member_coupons`` (coupons issued and redeemed per member).

    With the attribution ``window`` (:func:`attribution_window`) also ``cmp_members`` (the
    assigned members of ``scope``, :func:`scope_query`), ``cmp_orders`` (the window's orders of
    those members: net, purchase) and ``cmp_outcomes`` (one row per such member: group,
    contacted, orders, revenue in the window), over the engine's relations of their lines
    (``lines_cmp``, ``orders_cmp``: all lines, no ``as_of``).
    """
    q = Query(_CAMPAIGN_CTES, {"campaign_id": str(campaign_id)})
    if window is None:
        return q
    home_day = window[0].date() - dt.timedelta(days=1)  # the window opens at 00:00 on the start date
    return (q + scope_query(home_day, scope) + _assigned_orders()
            + Query(_OUTCOME_CTES, {"window_start": window[0], "window_end": window[1]}))


def scope_query(home_as_of, scope: engine.Scope | None = None) -> Query:
    """``cmp_members``: the assigned members of ``scope`` by their home as of ``home_as_of`` (the day
    before the start), over the engine's ``universe_all`` of that day; the scope is bound as
    ``$cmp_scope_region``, ``$cmp_scope_store`` and ``$cmp_scope_channel`` (NULL: any)."""
    home = engine.universe(home_as_of)
    params = {f"cmp_{k}": v for k, v in engine.Scope.of(scope).params().items()}
    return (engine.member_activity(home_as_of) + Query({"universe_all": home.ctes["universe_all"]})
            + Query(_SCOPE_CTES, params))


def _assigned_orders() -> Query:
    """The engine's ``lines`` and ``orders`` (suffix ``_cmp``, all lines, no ``as_of``) of the scope's
    assigned members only: an order is one member's, so keeping all of a member's lines keeps their orders whole."""
    assigned = """
  SELECT * FROM lines_all WHERE member_id IN (SELECT member_id FROM cmp_members)"""
    orders = engine.orders(None, suffix=_ALL).ctes[f"orders{_ALL}"]
    return engine.lines(None, suffix="_all") + Query({f"lines{_ALL}": assigned, f"orders{_ALL}": orders})


_PROFILE_CTES = {
    "cmp_pre": """
  SELECT member_id, sum(net) AS pre_spend, count(CASE WHEN purchases > 0 THEN 1 END) AS pre_purchase_days
  FROM days WHERE day >= CAST($pre_since AS DATE) GROUP BY member_id""",
    "cmp_profile": """
  SELECT a.member_id, a.tier, a.rfm_segment AS segment, a.store_id AS store, a.region, a.channel,
         a.lifecycle_stage, a.clv_band,
         date_diff('day', a.join_date, CAST($as_of AS DATE)) AS tenure_days,
         a.days_since_last_purchase AS recency_days, a.purchase_days, a.net_spend,
         coalesce(p.pre_spend, 0.0) AS pre_spend, coalesce(p.pre_purchase_days, 0) AS pre_purchase_days
  FROM member_attributes a LEFT JOIN cmp_pre p ON p.member_id = a.member_id""",
}


def profile_query(as_of, pre_days: int = 365, tiers=None) -> Query:
    """``cmp_profile``: one row per member as of ``as_of`` (inclusive), from the audience attributes.

    Columns: :data:`PROFILE_COLUMNS` after ``member_id``: tier, segment (RFM;
    empty for members who never bought), home store, region, channel,
    lifecycle_stage, clv_band (empty before ``crmkit score``), tenure_days,
    recency_days (empty if never bought), purchase_days and net_spend (all
    history), pre_spend (money, all orders) and pre_purchase_days (the
    engine's purchase days) over the ``pre_days`` days up to ``as_of``.
    See :func:`crmkit.audience.attributes_query`.
    """
    from ..audience import attributes_query  # on first use: audience loads every analysis (and their charts)

    since = as_date(as_of) - dt.timedelta(days=int(pre_days) - 1)
    return attributes_query(as_of, tiers=tiers) + Query(_PROFILE_CTES, {"pre_since": since})


@contextmanager
def registered(con: Connection, frame: pd.DataFrame):
    """Expose ``frame`` to SQL under a fresh name for the duration of the block."""
    name = f"_crmkit_{uuid.uuid4().hex}"
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)


@contextmanager
def level_query(con: Connection, by: str, as_of, attributes: pd.DataFrame | None):
    """A Query whose ``cmp_attrs`` CTE maps member_id to ``level`` (the value of ``by`` as of ``as_of``)."""
    if attributes is None:
        if by not in ATTRIBUTES:
            raise CrmkitError(f"cannot break results down by {by!r}; use one of {', '.join(ATTRIBUTES)} "
                              "or pass an attributes table with that column.")
        yield profile_query(as_of) + Query({"cmp_attrs": f"""
  SELECT member_id, CAST({by} AS VARCHAR) AS level FROM cmp_profile"""})
        return
    if "member_id" not in attributes.columns or by not in attributes.columns:
        raise CrmkitError(f"the attributes table needs the columns member_id and {by!r}.")
    frame = pd.DataFrame({"member_id": attributes["member_id"].astype(str),
                          "level": attributes[by].astype(str).where(attributes[by].notna())})
    with registered(con, frame) as name:
        yield Query({"cmp_attrs": f"SELECT member_id, level FROM {name}"})


def _levelled(by_level: bool) -> str:
    """The outcomes with their breakdown ``level`` (``'all'`` without one; :data:`UNKNOWN` when missing)."""
    if not by_level:
        return "SELECT 'all' AS level, o.* FROM cmp_outcomes o"
    return ("SELECT coalesce(a.level, $unknown) AS level, o.* "
            "FROM cmp_outcomes o LEFT JOIN cmp_attrs a ON a.member_id = o.member_id")


# ------------------------------------------------------------------------ campaign rows

def campaign_ids(con: Connection) -> list[str]:
    """Ids of the campaigns in the store, sorted."""
    return [r[0] for r in con.execute("SELECT campaign_id FROM campaigns ORDER BY campaign_id").fetchall()]


def campaign_info(con: Connection, campaign_id: str) -> dict:
    """The campaign's row with its attribution window (``window_start``, ``window_end``: datetimes,
    the end exclusive); one sentence listing the known ids if unknown."""
    rows = campaign_query(campaign_id).df(con, "SELECT * FROM cmp_campaign")
    if rows.empty:
        known = campaign_ids(con)
        listing = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        raise CrmkitError(f"campaign {campaign_id!r} not found; known campaigns: {listing or 'none'}.")
    if len(rows) > 1:
        raise CrmkitError(f"campaign {campaign_id!r} appears {len(rows)} times in the campaigns table.")
    info = rows.iloc[0].to_dict()
    info["name"] = None if pd.isna(info["name"]) else str(info["name"])
    info["margin_rate"] = float(info["margin_rate"]) if pd.notna(info["margin_rate"]) else math.nan
    info["window_start"], info["window_end"] = attribution_window(info["start"], info["end"],
                                                                  info["attribution_days"])
    return info


def outcome_query(info: dict, scope: engine.Scope | None = None) -> Query:
    """:func:`campaign_query` of the campaign ``info`` (:func:`campaign_info`) over its attribution window,
    for the assigned members of ``scope`` (default: the chain)."""
    return campaign_query(info["campaign_id"], (info["window_start"], info["window_end"]), scope)


def pre_campaign_day(info: dict) -> dt.date:
    """Attributes are taken as of the day before the campaign starts (inclusive)."""
    return as_date(info["start"]) - dt.timedelta(days=1)


def default_as_of(con: Connection) -> dt.date:
    """The day of the latest transaction (today when there are none)."""
    last = con.execute("SELECT max(order_time) FROM transactions").fetchall()[0][0]
    return as_date(last) if last is not None else dt.date.today()


# ---------------------------------------------------------------------- outcome figures

def group_stats(con: Connection, query: Query, by_level: bool = False) -> pd.DataFrame:
    """Per level and group: n, contacted, buyers (members with a purchase), orders_mean, orders_var,
    revenue_mean, revenue_var (variances with ddof=1); by ``cmp_attrs`` when ``by_level``, ordered by level."""
    return query.df(con, f"""
SELECT level, "group", count(*) AS n,
       count(CASE WHEN contacted THEN 1 END) AS contacted, count(CASE WHEN orders > 0 THEN 1 END) AS buyers,
       avg(orders) AS orders_mean, var_samp(orders) AS orders_var,
       avg(revenue) AS revenue_mean, var_samp(revenue) AS revenue_var
FROM ({_levelled(by_level)}) o
GROUP BY level, "group" ORDER BY level""", unknown=UNKNOWN)


def treatment_size(con: Connection, query: Query) -> int:
    """Treatment members of the campaign in the whole chain (any scope's query)."""
    return int(query.execute(con, """SELECT count(*) FROM cmp_assigned WHERE "group" = 'treatment'""").fetchone()[0])


def member_outcomes(con: Connection, query: Query) -> pd.DataFrame:
    """One row per assigned member, by member id: group, orders, revenue."""
    return query.df(con, 'SELECT "group", orders, revenue FROM cmp_outcomes ORDER BY member_id')


def coupon_cost(con: Connection, query: Query) -> tuple[int, float]:
    """Coupons of the campaign redeemed anywhere, and their value (the coupon's, else the campaign's):
    in the chain every coupon of the campaign, in another scope those of its assigned members."""
    redeemed, value = query.execute(con, f"""
SELECT count(c.redeemed_at),
       coalesce(sum(CASE WHEN c.redeemed_at IS NOT NULL THEN coalesce(c.value, k.coupon_value) END), 0)
FROM coupons c CROSS JOIN cmp_campaign k
WHERE c.campaign_id = $campaign_id AND ({_CHAIN} OR c.member_id IN (SELECT member_id FROM cmp_members))""").fetchone()
    return int(redeemed), float(value)


def window_amounts(con: Connection, query: Query) -> tuple[int, int]:
    """Lines of the window's orders, and how many of them have a non-zero amount."""
    lines, paid = query.execute(con, f"""
SELECT count(*), count(CASE WHEN l.amount <> 0 THEN 1 END)
FROM lines{_ALL} l JOIN cmp_orders o ON o.member_id = l.member_id AND o.order_id = l.order_id""").fetchone()
    return int(lines), int(paid)


def funnel_rows(con: Connection, query: Query, by_level: bool = False) -> pd.DataFrame:
    """Treatment members per level: :data:`FUNNEL_STAGES` counts, coupons_issued, coupons_redeemed."""
    return query.df(con, f"""
SELECT o.level, count(*) AS targeted,
       count(CASE WHEN o.contacted THEN 1 END) AS contacted,
       count(CASE WHEN coalesce(k.redeemed, 0) > 0 THEN 1 END) AS redeemed,
       count(CASE WHEN o.orders > 0 THEN 1 END) AS purchased,
       coalesce(sum(k.issued), 0) AS coupons_issued, coalesce(sum(k.redeemed), 0) AS coupons_redeemed
FROM ({_levelled(by_level)}) o LEFT JOIN cmp_member_coupons k ON k.member_id = o.member_id
WHERE o."group" = 'treatment' GROUP BY o.level ORDER BY o.level""", unknown=UNKNOWN)


def uplift_frame(con: Connection, info: dict, outcome: str) -> pd.DataFrame:
    """Per assigned member, by member id: group, ``y`` (bought in the window, 0/1, for
    ``conversion``; else revenue) and the profile (:data:`PROFILE_COLUMNS` but ``store``)
    as of the day before the start."""
    y = "CASE WHEN o.orders > 0 THEN 1.0 ELSE 0.0 END" if outcome == "conversion" else "o.revenue"
    features = ", ".join(f"p.{c}" for c in PROFILE_COLUMNS if c != "store")
    return (outcome_query(info) + profile_query(pre_campaign_day(info))).df(con, f"""
SELECT o.member_id, o."group", {y} AS y, {features}
FROM cmp_outcomes o LEFT JOIN cmp_profile p ON p.member_id = o.member_id ORDER BY o.member_id""")


# ----------------------------------------------------------------------- assignments

def assignments(con: Connection, campaign_id: str) -> pd.DataFrame:
    """The campaign's assignments: member_id, group."""
    return campaign_query(campaign_id).df(con, 'SELECT member_id, "group" FROM cmp_assigned')


def with_profile(con: Connection, frame: pd.DataFrame, columns: Iterable[str], as_of,
                 pre_days: int = 365) -> pd.DataFrame:
    """``frame`` (with ``member_id``) plus the member-profile ``columns`` it lacks (as of ``as_of``)."""
    need = [c for c in columns if c not in frame.columns]
    if not need:
        return frame
    with registered(con, frame[["member_id"]]) as name:
        prof = profile_query(as_of, pre_days).df(con, f"""
SELECT f.member_id, {', '.join(f'p.{c}' for c in need)}
FROM {name} f LEFT JOIN cmp_profile p ON p.member_id = f.member_id""")
    return frame.merge(prof, on="member_id", how="left")


def write_assignments(con: Connection, assignments: pd.DataFrame) -> None:
    """Insert assignments (campaign_id, member_id, group) into ``campaign_assignments``, all or nothing.

    A campaign that already has assignments is refused: they are kept as they are.
    """
    rows = assignments[["campaign_id", "member_id", "group"]]
    with registered(con, rows) as name:
        have = con.execute(f"SELECT DISTINCT campaign_id FROM campaign_assignments "
                           f"WHERE campaign_id IN (SELECT campaign_id FROM {name}) ORDER BY campaign_id").fetchall()
        if have:
            raise CrmkitError(f"campaign {have[0][0]!r} already has assignments; they are kept as they are.")
        with transaction(con):
            con.execute(f'INSERT INTO campaign_assignments (campaign_id, member_id, "group", contacted_at) '
                        f'SELECT campaign_id, member_id, "group", NULL FROM {name}')
