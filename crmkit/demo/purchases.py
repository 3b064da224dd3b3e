"""Purchases that follow a buy-till-you-die process, and the order lines they become.

Timing is BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
way"), in days: each buyer makes a first purchase shortly after joining;
while alive, purchases follow a Poisson process with rate lambda ~ Gamma(r,
alpha); after every repeat purchase the buyer drops out with probability p ~
Beta(a, b). Spend per order is Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and
CLV"): order value ~ Gamma(p, nu), nu ~ Gamma(q, v), in yuan.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from . import world
from .people import END, ONLINE, POS, People

#: True parameters of the purchase process; time in days, money in yuan.
BTYD = {"r": 0.55, "alpha": 125.0, "a": 0.85, "b": 2.6}
SPEND = {"p": 6.0, "q": 3.5, "v": 100.0}
#: Share of members who ever buy, and the mean delay (days) from joining to the first purchase.
BUYERS, FIRST_DELAY = 0.9, 12.0
#: How a member's orders spread over the channels they have registered in.
CHANNEL_WEIGHT = np.array([0.6, 0.25, 0.15])
LINES_PER_ORDER = ([1, 2, 3], [0.55, 0.3, 0.15])


@dataclass
class Orders:
    """One row per order."""

    person: np.ndarray
    t: np.ndarray        # day (fractional: time of day included)
    channel: np.ndarray  # 0 pos, 1 online, 2 miniapp
    store: np.ndarray    # store index; -1 online
    value: np.ndarray    # order value before coupons, yuan

    def __len__(self) -> int:
        return len(self.person)

    def take(self, mask: np.ndarray) -> Orders:
        return Orders(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Orders]) -> Orders:
        return Orders(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Orders)})


@dataclass
class Lines:
    """One row per order line; ``order`` indexes :class:`Orders`."""

    order: np.ndarray
    line_no: np.ndarray
    category: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    amount: np.ndarray     # net paid, yuan
    discount: np.ndarray   # yuan
    coupon: np.ndarray     # coupon id or ""
    returned: np.ndarray   # bool: this line is returned at ``t_return``
    t_return: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    def take(self, mask: np.ndarray) -> Lines:
        return Lines(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Lines]) -> Lines:
        return Lines(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Lines)})


def spend_rates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Each member's Gamma-Gamma ``nu``: order values are Gamma(p, nu), mean p / nu yuan."""
    return rng.gamma(SPEND["q"], 1.0 / SPEND["v"], n)


def order_values(rng: np.random.Generator, nu: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(rng.gamma(SPEND["p"], 1.0 / nu), 2), 5.0)


def simulate_orders(rng: np.random.Generator, people: People, nu: np.ndarray, stores: world.Stores
                    ) -> tuple[Orders, dict]:
    """Every order of every member, from the first purchase through 2026-06-30, in days."""
    n = people.n
    lam = rng.gamma(BTYD["r"], 1.0 / BTYD["alpha"], n)
    drop = rng.beta(BTYD["a"], BTYD["b"], n)
    first = people.join + rng.exponential(FIRST_DELAY, n)
    buyer = (rng.random(n) < BUYERS) & (first < END)
    who, when = [np.flatnonzero(buyer)], [first[buyer]]
    t = first.copy()
    active = buyer.copy()
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        inside = t[idx] < END
        who.append(idx[inside])
        when.append(t[idx[inside]])
        dies = rng.random(len(idx)) < drop[idx]
        active[idx[~inside | dies]] = False
    person = np.concatenate(who)
    day = np.floor(np.concatenate(when))
    keep = day >= 0  # exports start on 2024-07-01; earlier purchases of earlier members are not in them
    person, day = person[keep], day[keep]
    channel = _channels(rng, people, person, day)
    hours = np.where(channel == POS, 10 + 12 * rng.random(len(day)), 7 + 17 * rng.random(len(day)))
    t = day + np.floor(hours * 3600) / 86400
    store = np.where(rng.random(len(t)) < 0.85, people.home_store[person],
                     rng.choice(len(stores.ids), len(t), p=stores.weights))
    store = np.where(channel == ONLINE, -1, store)
    order = np.lexsort((person, t))
    orders = Orders(person[order], t[order], channel[order], store[order], order_values(rng, nu[person[order]]))
    complete = int(np.sum(buyer & (first >= 0)))
    return orders, {"buyers": int(buyer.sum()), "buyers_with_complete_history": complete}


def _channels(rng: np.random.Generator, people: People, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """A channel the member had registered in on that day, by :data:`CHANNEL_WEIGHT`."""
    w = CHANNEL_WEIGHT[None, :] * (people.registered[person] < day[:, None] + 1)  # the join channel always is
    cum = np.cumsum(w, axis=1)
    u = rng.random(len(person)) * cum[:, -1]
    return (u[:, None] > cum).sum(axis=1)


def lines_of(rng: np.random.Generator, orders: Orders, favourite: np.ndarray, order_index: np.ndarray,
             coupon: np.ndarray | None = None, coupon_value: float = 0.0) -> Lines:
    """Split orders into 1-3 lines with categories, SKUs, discounts and return draws.

    ``order_index`` are the orders' indexes in the final order table. A
    ``coupon`` (per order) takes ``coupon_value`` off the first line.
    """
    cats = world.category_names()
    n_lines = rng.choice(LINES_PER_ORDER[0], len(orders), p=LINES_PER_ORDER[1])
    order = np.repeat(np.arange(len(orders)), n_lines)
    start = np.repeat(np.cumsum(n_lines) - n_lines, n_lines)
    line_no = np.arange(len(order)) - start + 1
    weights = rng.gamma(1.0, 1.0, len(order))
    share = weights / np.bincount(order, weights)[order]
    amount = np.round(orders.value[order] * share, 2)
    share_cat = np.array([c[1] for c in world.CATEGORIES.values()])
    popular = rng.choice(len(cats), len(order), p=share_cat / share_cat.sum())
    cat = np.where(rng.random(len(order)) < 0.6, favourite[orders.person[order]], popular)
    companion = np.array([list(cats).index(world.COMPANIONS[c]) for c in cats])
    follow = (line_no > 1) & (rng.random(len(order)) < 0.5)
    cat[follow] = companion[cat[np.flatnonzero(follow) - 1]]
    rank = np.minimum(rng.zipf(1.6, len(order)), world.SKUS_PER_CATEGORY) - 1
    sku = cat * world.SKUS_PER_CATEGORY + rank
    quantity = rng.choice([1, 2, 3], len(order), p=[0.8, 0.15, 0.05]).astype(float)
    off = rng.choice([0.0, 0.05, 0.1, 0.2], len(order), p=[0.55, 0.15, 0.2, 0.1])
    discount = np.round(amount * off / (1 - off), 2)
    coupons = np.full(len(order), "", dtype=object)
    if coupon is not None:
        first = line_no == 1
        cut = np.clip(np.minimum(coupon_value, amount[first] - 1.0), 0.0, None)
        amount[first] -= cut
        discount[first] += cut
        coupons[first] = coupon[order[first]]
    rate = np.array([c[2] for c in world.CATEGORIES.values()])
    returned = rng.random(len(order)) < rate[cat]
    t_return = orders.t[order] + 1 + rng.exponential(6.0, len(order))
    returned &= t_return < END
    return Lines(order_index[order], line_no, cat, sku, quantity, np.round(amount, 2), discount,
                 coupons, returned, np.where(returned, t_return, np.nan))
