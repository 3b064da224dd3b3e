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


def member_360(con: Connection, member_id: str, as_of, *, tiers=None,
               windows: Windows | Mapping | None = None, recent: int = 10) -> Member360:
    """The profile of ``member_id`` as of ``as_of``.

    Parameters
    ----------
    tiers, windows
        Tier rules and lifecycle windows, as in :func:`crmkit.tiers.assign_tiers`
        and :func:`crmkit.lifecycle.stages`.
    recent : int
        How many of the latest orders and coupons to list.
    """
    d = as_date(as_of)
    if not isinstance(member_id, str) or not member_id:
        raise CrmkitError("member_id must be a non-empty text id.")
    if isinstance(recent, bool) or not isinstance(recent, int) or not 1 <= recent <= 1000:
        raise CrmkitError(f"recent must be a whole number from 1 to 1000, not {recent!r}.")
    attrs = attributes_query(d, tiers=tiers, windows=windows) + Query(params={"m360_id": member_id})
    row = attrs.df(con, "SELECT * FROM member_attributes WHERE member_id = $m360_id")
    if row.empty:
        raise CrmkitError(f"member {member_id!r} is not in the store as of {d}.")
    a = row.iloc[0].to_dict()
    p = {"mid": member_id, "as_of": d, "n": recent}
    contact = _one(con, "SELECT phone, name, gender, month(birth_date) AS birth_month FROM members "
                        "WHERE member_id = $mid", {"mid": member_id}) or {}
    masked = privacy.mask_frame(pd.DataFrame([contact])).iloc[0].to_dict() if contact else {}
    store = _one(con, "SELECT name, city, region FROM stores WHERE store_id = $s", {"s": a["store_id"]}) or {}
    profile = {
        "phone": masked.get("phone"), "name": masked.get("name"), "gender": masked.get("gender"),
        "birth_month": masked.get("birth_month"), "join_date": a["join_date"],
        "home_store_id": a["store_id"], "home_store_name": store.get("name"), "city": store.get("city"),
        "region": a["region"], "channel": a["channel"],
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

