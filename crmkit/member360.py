"""Member 360: one member's profile as of a date, with contact details masked.

Everything comes from the store in a handful of small queries: the member's
attributes (tier, RFM segment, lifecycle stage: the same definitions as the
population views, so a member's RFM scores are ranked among all buyers), the
latest ``member_scores`` row on or before ``as_of`` (CLV with its 90%
interval, P(alive), churn risk) when ``crmkit score`` has run, preferred
categories, recent orders, coupons and points. Orders are those of
:mod:`crmkit.engine.activity`: a credit note is listed with the order it
reverses, and ``purchase`` says whether the order still is a purchase.
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from .engine.store import Connection
from . import engine, privacy
from .affinity import preferred_categories
from .audience import attributes_query
from .errors import CrmkitError
from .lifecycle import Query, Windows, as_date


@dataclass
class Member360:
    """A member's profile. ``scores`` is None until ``crmkit score`` has run for the member."""

    member_id: str
    as_of: str
    profile: dict
    status: dict
    scores: dict | None
    preferred_categories: pd.DataFrame
    recent_orders: pd.DataFrame
    coupons: pd.DataFrame
    points: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict (tables as lists of records, dates as ISO text)."""
        def records(df: pd.DataFrame) -> list[dict]:
            return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]

        return {
            "member_id": self.member_id, "as_of": self.as_of,
            "profile": {k: _plain(v) for k, v in self.profile.items()},
            "status": {k: _plain(v) for k, v in self.status.items()},
            "scores": None if self.scores is None else {k: _plain(v) for k, v in self.scores.items()},
            "preferred_categories": records(self.preferred_categories),
            "recent_orders": records(self.recent_orders),
            "coupons": records(self.coupons),
            "points": {k: _plain(v) for k, v in self.points.items()},
        }


def _plain(v):
    """A JSON-ready scalar: None for missing values, ISO text for dates, Python numbers."""
    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (pd.Timestamp, dt.date)):
        return v.isoformat()
    return v.item() if hasattr(v, "item") else v  # numpy scalars


def _one(con, sql: str, params: dict) -> dict | None:
    df = con.execute(sql, params).df()
    return None if df.empty else df.iloc[0].to_dict()


_ONE_MEMBER = """
SELECT st.member_id, st.lifecycle_stage, st.recency_days AS days_since_last_purchase, st.store_id, st.region,
       st.channel, st.join_date, st.purchase_days, st.net_spend, s.rfm_r, s.rfm_f, s.rfm_m, s.rfm_segment,
       tr.tier, tr.annual_spend, tr.spend_to_next_tier
FROM stages st LEFT JOIN tiers tr USING (member_id)
LEFT JOIN member_scores s ON s.member_id = st.member_id AND s.as_of = $m360_as_of
WHERE st.member_id = $m360_id"""


def _attributes(con: Connection, d: dt.date, member_id: str, tiers, windows, run=None) -> dict | None:
    """The member's status as of ``d`` (:func:`crmkit.audience.attributes_query`'s columns), or None.

    A lifecycle stage and a tier depend on the member's own orders only, so
    they are computed on those alone. R, F and M are ranked among all the
    chain's buyers: they are read from the score snapshot ``run`` of ``d``
    (default: the one that matches today's data and code,
    :func:`crmkit.engine.snapshots.latest_run`; scoring ranks them the same
    way), and computed over the chain without one, which reads every
    member's orders.
    """
    from .engine.snapshots import latest_run
    from .lifecycle import stages_query
    from .tiers import TierRules

    run = run if run is not None and run.as_of == d else latest_run(con, d)
    if run is None:
        q = attributes_query(d, tiers=tiers, windows=windows) + Query(params={"m360_id": member_id})
        row = q.df(con, "SELECT * FROM member_attributes WHERE member_id = $m360_id")
    else:
        q = (stages_query(d, windows, member=member_id) + TierRules.load(tiers).query(d, member=member_id)
             + Query(params={"m360_id": member_id, "m360_as_of": run.as_of}))
        row = q.df(con, _ONE_MEMBER)
    return None if row.empty else row.iloc[0].to_dict()


def member_360(con: Connection, member_id: str, as_of, *, tiers=None,
               windows: Windows | Mapping | None = None, recent: int = 10, run=None) -> Member360:
    """The profile of ``member_id`` as of ``as_of``.

    Parameters
    ----------
    tiers, windows
        Tier rules and lifecycle windows, as in :func:`crmkit.tiers.assign_tiers`
        and :func:`crmkit.lifecycle.stages`.
    recent : int
        How many of the latest orders and coupons to list.
    run : ScoreRun, optional
        The score snapshot of ``as_of`` whose R, F and M scores to show (see
        :func:`_attributes`; default: the one that matches today's data).
    """
    d = as_date(as_of)
    if not isinstance(member_id, str) or not member_id:
        raise CrmkitError("member_id must be a non-empty text id.")
    if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= 1000:
        raise CrmkitError(f"recent must be a whole number from 1 to 1000, not {recent!r}.")
    a = _attributes(con, d, member_id, tiers, windows, run)
    if a is None:
        raise CrmkitError(f"member {member_id!r} is not in the store as of {d}.")
    p = {"mid": member_id, "as_of": d, "n": recent}
    contact = _one(con, "SELECT phone, name, gender, month(birth_date) AS birth_month FROM members "
                        "WHERE member_id = $mid", {"mid": member_id}) or {}
    masked = privacy.mask_frame(pd.DataFrame([contact])).iloc[0].to_dict() if contact else {}
    home = _plain(a["store_id"])  # none for a member who joined online and never bought in a store
    store = (_one(con, "SELECT name, city, region FROM stores WHERE store_id = $s", {"s": str(home)})
             if home is not None else None) or {}
    profile = {
        "phone": masked.get("phone"), "name": masked.get("name"), "gender": masked.get("gender"),
        "birth_month": masked.get("birth_month"), "join_date": a["join_date"],
        "home_store_id": home, "home_store_name": store.get("name"), "city": store.get("city"),
        "region": _plain(a["region"]), "channel": _plain(a["channel"]),
    }
    status = {k: a[k] for k in ("tier", "annual_spend", "spend_to_next_tier", "rfm_r", "rfm_f", "rfm_m",
                                "rfm_segment", "lifecycle_stage", "days_since_last_purchase",
                                "purchase_days", "net_spend")}
    scores = _one(con, """
SELECT as_of AS scored_as_of, clv, clv_low, clv_high, p_alive, expected_purchases, churn_risk, churn_band
FROM member_scores WHERE member_id = $mid AND as_of <= $as_of ORDER BY as_of DESC LIMIT 1""",
                  {"mid": member_id, "as_of": d})
    preferred = preferred_categories(con, d, top=3, member_id=member_id).drop(columns="member_id")
    member_orders = engine.orders(d, member=member_id) + Query(params={"n": recent})
    orders = member_orders.execute(con, """
SELECT o.order_id, o.day, o.store_id, o.channel, l.items, o.net AS amount, l.discount, o.has_return, o.purchase
FROM orders o JOIN (
  SELECT order_id, sum(quantity) AS items, sum(discount) AS discount FROM lines GROUP BY order_id
) l ON l.order_id = o.order_id
ORDER BY o.first_time DESC, o.order_id LIMIT $n""").df()
    # one member's few orders: their categories are joined here (string_agg is no portable SQL)
    cats = member_orders.execute(con, "SELECT DISTINCT order_id, category FROM lines WHERE category IS NOT NULL").df()
    joined = cats.groupby("order_id")["category"].agg(lambda c: ", ".join(sorted(c)))
    orders.insert(4, "categories", orders["order_id"].map(joined).astype(object).where(
        orders["order_id"].isin(joined.index), None))
    coupons = con.execute("""
SELECT coupon_id, campaign_id, value, issued_at,
       CASE WHEN redeemed_at < CAST($as_of AS DATE) + INTERVAL 1 DAY THEN redeemed_at END AS redeemed_at
FROM coupons
WHERE member_id = $mid AND issued_at < CAST($as_of AS DATE) + INTERVAL 1 DAY
ORDER BY issued_at DESC, coupon_id LIMIT $n""", p).df()
    points = _one(con, """
SELECT coalesce(sum(points), 0) AS balance,
       coalesce(sum(CASE WHEN points > 0 THEN points END), 0) AS earned,
       coalesce(-sum(CASE WHEN event_type = 'redeem' THEN points END), 0) AS redeemed,
       coalesce(-sum(CASE WHEN event_type = 'expire' THEN points END), 0) AS expired,
       max(event_time) AS last_event
FROM points WHERE member_id = $mid AND event_time < CAST($as_of AS DATE) + INTERVAL 1 DAY""",
                  {"mid": member_id, "as_of": d})
    return Member360(member_id, d.isoformat(), profile, status, scores, preferred, orders, coupons, points)

