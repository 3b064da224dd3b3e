"""Campaigns with randomized control groups, and their true effects.

For every assigned member (treatment and control) both potential outcomes are
generated: the purchases without the campaign (the baseline process) and with
it (contacted with probability 0.95; a contacted member may make an extra
purchase, paying with the coupon, or use the coupon on a purchase they would
have made anyway). Treatment members get the second, control members the
first. The true effects are sample averages of the difference over all
assigned members: what an intention-to-treat comparison estimates.

Outcomes are measured in the attribution window ``[start, start +
attribution_days)`` (days from 00:00 of the start date): *conversion* = at
least one sale line in the window; *revenue* = net amount of sale lines in the
window minus returns made in the window (yuan); *margin* = revenue ×
margin_rate.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from .people import MINIAPP, ONLINE, POS, People
from .purchases import Lines, Orders, lines_of, order_values

DAY0 = dt.date(2024, 7, 1)
CONTACT_RATE = 0.95


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    channel: str            # sms | app_push | wechat
    start: dt.date
    attribution_days: int
    cost_per_contact: float
    fixed_cost: float
    coupon_value: float
    margin_rate: float
    control_share: float
    response: float         # chance a contacted member makes an extra purchase (before targeting lift)
    redeem: float           # chance a contacted member who buys anyway uses the coupon

    @property
    def day(self) -> int:
        return (self.start - DAY0).days

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.attribution_days - 1)


CAMPAIGNS = (
    Campaign("C2503", "春季焕新短信券", "sms", dt.date(2025, 3, 10), 14, 0.05, 2000.0, 30.0, 0.45, 0.2, 0.10, 0.5),
    Campaign("C2509", "周年庆APP推送", "app_push", dt.date(2025, 9, 15), 7, 0.002, 8000.0, 20.0, 0.42, 0.1, 0.003, 0.3),
    Campaign("C2603", "会员日微信活动", "wechat", dt.date(2026, 3, 8), 14, 0.01, 3000.0, 25.0, 0.45, 0.15, 0.05, 0.4),
)


@dataclass
class Run:
    """One campaign as run: who was assigned, contacted, issued and redeemed coupons."""

    campaign: Campaign
    seed: int
    person: np.ndarray         # assigned persons
    treated: np.ndarray        # bool
    contacted_at: np.ndarray   # day, NaN when not contacted
    coupon_id: np.ndarray      # per assigned member (issued to the treatment group only)
    redeemed_order: np.ndarray  # order index, -1 when not redeemed (treatment only)
    truth: dict


def eligible(c: Campaign, people: People, orders: Orders) -> np.ndarray:
    """Who a campaign targets, from what was known before it started."""
    before = c.day - 30
    if c.channel == "sms":
        reachable = people.has[:, POS] | people.has[:, ONLINE] | people.miniapp_phone
        bought = np.bincount(orders.person[orders.t < c.day], minlength=people.n) > 0
        mask = reachable & bought & (people.registered.min(axis=1) <= before)
    elif c.channel == "app_push":
        mask = people.has[:, ONLINE] & (people.registered[:, ONLINE] <= before)
    else:
        mask = people.has[:, MINIAPP] & (people.registered[:, MINIAPP] <= before)
    return np.flatnonzero(mask)


def converted(orders: Orders, lines: Lines, n: int, start: float, end: float) -> np.ndarray:
    """Per person: a sale line in ``[start, end)``."""
    on = orders.t[lines.order]
    return np.bincount(orders.person[lines.order][(on >= start) & (on < end)], minlength=n) > 0


@dataclass
class Potential:
    """What the campaign would do to each assigned member, were they treated."""

    contacted: np.ndarray
    responds: np.ndarray    # makes an extra purchase, paid with the coupon
    extra: Orders           # those purchases, one per responder
    extra_lines: Lines
    subsidy: np.ndarray     # the line of a purchase made anyway that the coupon would pay; -1 if none
    d_conv: np.ndarray      # effect on conversion in the window (0 or 1)
    d_rev: np.ndarray       # effect on net revenue in the window, yuan


def run(rng: np.random.Generator, c: Campaign, seed: int, people: People, orders: Orders, lines: Lines,
        nu: np.ndarray, favourite: np.ndarray) -> tuple[Orders, Lines, Run]:
    """Assign, contact and measure one campaign; returns the orders and lines as they happened."""
    person = eligible(c, people, orders)
    m = len(person)
    treated = np.zeros(m, dtype=bool)
    treated[np.random.default_rng(seed).permutation(m)[: m - round(c.control_share * m)]] = True
    coupon_id = np.array([f"{c.campaign_id}-{i + 1:07d}" for i in range(m)], dtype=object)
    pot = _potential(rng, c, people, orders, lines, nu, favourite, person, coupon_id)
    orders, lines, redeemed = _realize(c, orders, lines, pot, treated, coupon_id)
    contacted_at = np.where(treated & pot.contacted, c.day + (9 + 10 * rng.random(m)) / 24, np.nan)
    window_end = c.start + dt.timedelta(days=c.attribution_days)
    truth = {
        "name": c.name, "channel": c.channel, "start": c.start.isoformat(), "end": c.end.isoformat(),
        "attribution_days": c.attribution_days, "window": [c.start.isoformat(), window_end.isoformat()],
        "cost_per_contact": c.cost_per_contact, "fixed_cost": c.fixed_cost, "coupon_value": c.coupon_value,
        "margin_rate": c.margin_rate, "control_share": c.control_share, "assignment_seed": seed,
        "n_assigned": m, "n_treatment": int(treated.sum()), "n_control": int(m - treated.sum()),
        "true_conversion_lift": _mean(pot.d_conv), "true_revenue_per_member_lift": _mean(pot.d_rev),
        "true_margin_per_member_lift": _mean(pot.d_rev) * c.margin_rate,
        "true_incremental_orders": int(np.sum(treated & pot.responds)),
        "true_incremental_revenue": float(pot.d_rev[treated].sum()),
        "true_incremental_margin": float(pot.d_rev[treated].sum() * c.margin_rate),
        "contacted": int(np.sum(treated & pot.contacted)), "coupons_issued": int(treated.sum()),
        "coupons_redeemed": int(np.sum(redeemed >= 0)),
    }
    return orders, lines, Run(c, seed, person, treated, contacted_at, coupon_id, redeemed, truth)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else 0.0


def _potential(rng, c: Campaign, people: People, orders: Orders, lines: Lines, nu: np.ndarray,
               favourite: np.ndarray, person: np.ndarray, coupon_id: np.ndarray) -> Potential:
    """Both potential outcomes of every assigned member, as their difference in the attribution window."""
    m = len(person)
    start, end = float(c.day), float(c.day + c.attribution_days)
    contacted = rng.random(m) < CONTACT_RATE
    last = np.full(people.n, -np.inf)
    past = orders.t < start
    np.maximum.at(last, orders.person[past], orders.t[past])
    lift = np.where(start - last[person] <= 120, 1.6, 0.5)  # recent buyers respond more
    responds = contacted & (rng.random(m) < c.response * lift)
    extra, extra_lines = _extra_orders(rng, c, people, person[responds], nu, favourite, coupon_id[responds],
                                       first_index=len(orders), start=start)
    subsidy = _subsidies(rng, c, orders, lines, person, contacted & ~responds, start, end)
    responder = np.flatnonzero(responds)[extra_lines.order - len(orders)]
    back = extra_lines.returned & (extra_lines.t_return < end)
    d_rev = (np.bincount(responder, extra_lines.amount, minlength=m)
             - np.bincount(responder[back], extra_lines.amount[back], minlength=m)).astype(float)
    used = np.flatnonzero(subsidy >= 0)
    kept_back = lines.returned[subsidy[used]] & (lines.t_return[subsidy[used]] < end)  # the refund is smaller too
    d_rev[used] -= np.minimum(c.coupon_value, lines.amount[subsidy[used]]) * ~kept_back
    d_conv = (responds & ~converted(orders, lines, people.n, start, end)[person]).astype(float)
    return Potential(contacted, responds, extra, extra_lines, subsidy, d_conv, d_rev)


def _realize(c: Campaign, orders: Orders, lines: Lines, pot: Potential, treated: np.ndarray,
             coupon_id: np.ndarray) -> tuple[Orders, Lines, np.ndarray]:
    """The orders and lines with the treatment group's potential outcomes, and each member's redeeming order."""
    kept = treated[pot.responds]
    renumber = np.full(len(pot.extra), -1)
    renumber[kept] = len(orders) + np.arange(int(kept.sum()))
    extra_lines = pot.extra_lines.take(kept[pot.extra_lines.order - len(orders)])
    extra_lines.order = renumber[extra_lines.order - len(orders)]
    lines = lines.take(np.ones(len(lines), dtype=bool))
    got = (pot.subsidy >= 0) & treated
    idx = pot.subsidy[got]
    cut = np.minimum(c.coupon_value, lines.amount[idx])
    lines.amount[idx] = np.round(lines.amount[idx] - cut, 2)
    lines.discount[idx] = np.round(lines.discount[idx] + cut, 2)
    lines.coupon[idx] = coupon_id[got]
    redeemed = np.full(len(treated), -1)
    redeemed[got] = lines.order[idx]
    redeemed[np.flatnonzero(pot.responds)[kept]] = renumber[kept]
    return Orders.concat([orders, pot.extra.take(kept)]), Lines.concat([lines, extra_lines]), redeemed


def _extra_orders(rng, c: Campaign, people: People, who: np.ndarray, nu: np.ndarray, favourite: np.ndarray,
                  coupons: np.ndarray, first_index: int, start: float) -> tuple[Orders, Lines]:
    """The purchases the campaign causes: in the window, in the campaign's channel, paid with the coupon."""
    k = len(who)
    day = start + np.floor(c.attribution_days * rng.random(k) ** 1.5)
    t = day + (9 + 13 * rng.random(k)) / 24
    if c.channel == "sms":
        channel = np.where(people.has[who, POS], POS, np.where(people.has[who, ONLINE], ONLINE, MINIAPP))
    else:
        channel = np.full(k, ONLINE if c.channel == "app_push" else MINIAPP)
    store = np.where(channel == ONLINE, -1, people.home_store[who])
    value = order_values(rng, nu[who]) + c.coupon_value
    orders = Orders(who, t, channel, store, value)
    lines = lines_of(rng, orders, favourite, first_index + np.arange(k), coupon=coupons,
                     coupon_value=c.coupon_value)
    return orders, lines


def _subsidies(rng, c: Campaign, orders: Orders, lines: Lines, person: np.ndarray, can: np.ndarray,
               start: float, end: float) -> np.ndarray:
    """Coupons used on purchases made anyway: per assigned member, the first line of their first order in
    the window that is worth the coupon, when they would use it; -1 otherwise."""
    m = len(person)
    slot = np.full(max(int(orders.person.max()) + 1, int(person.max()) + 1) if m else 1, -1)
    slot[person] = np.arange(m)
    on = orders.t[lines.order]
    cand = np.flatnonzero((lines.line_no == 1) & (on >= start) & (on < end)
                          & (slot[orders.person[lines.order]] >= 0) & (lines.amount > c.coupon_value + 1))
    cand = cand[np.lexsort((on[cand], orders.person[lines.order[cand]]))]
    _, first = np.unique(orders.person[lines.order[cand]], return_index=True)
    cand = cand[first]
    who = slot[orders.person[lines.order[cand]]]
    use = can[who] & (rng.random(len(cand)) < c.redeem)
    line = np.full(m, -1)
    line[who[use]] = cand[use]
    return line
