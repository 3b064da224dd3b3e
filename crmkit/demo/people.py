"""The demo's persons and their channel records (POS card, online-mall user, mini-program open id)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import world

#: Channels, in column order of :attr:`People.has` and :attr:`People.registered`.
POS, ONLINE, MINIAPP = 0, 1, 2
CHANNELS = ("pos", "online", "miniapp")
#: Share of persons who join in each channel, and who later register in another too.
JOIN_SHARE = (0.55, 0.25, 0.20)
EXTRA_SHARE = (0.25, 0.20, 0.15)
#: Days from day 0 (2024-07-01) to the end of the demo (exclusive): through 2026-06-30.
END = 730.0


@dataclass
class People:
    """One row per person (a real customer), arrays of length ``n``."""

    n: int
    join: np.ndarray         # day of first registration (fractional; negative = before 2024-07-01)
    has: np.ndarray          # (n, 3) bool: registered in pos / online / miniapp
    registered: np.ndarray   # (n, 3) day of registration per channel (inf when not)
    phone: np.ndarray        # int64, unique
    name: np.ndarray
    nickname: np.ndarray
    gender: np.ndarray       # "M" / "F"
    birth: np.ndarray        # day (relative to day 0) of birth
    home_store: np.ndarray   # store index
    card_no: np.ndarray      # str, "" when no POS card
    user_id: np.ndarray      # str, "" when no mall account
    open_id: np.ndarray      # str, "" when no mini-program account
    bound_card: np.ndarray   # bool: the mini-program account is bound to the POS card
    miniapp_phone: np.ndarray  # bool: the mini-program record carries the phone

    @property
    def primary_id(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One id per person for CRM exports: POS card if any, else mall user id, else open id."""
        card = np.where(self.has[:, POS], self.card_no, "")
        user = np.where(~self.has[:, POS] & self.has[:, ONLINE], self.user_id, "")
        opn = np.where(~self.has[:, POS] & ~self.has[:, ONLINE], self.open_id, "")
        return card, user, opn


def people(rng: np.random.Generator, n: int, stores: world.Stores) -> People:
    """Persons joining over two years (a fifth before 2024-07-01), with overlapping channel records.

    Every person's records are linkable: the mini-program record lacks a phone
    only when it is bound to the person's POS card, or is the person's only record.
    """
    idx = np.arange(n)
    pre = rng.random(n) < 0.2
    join = np.where(pre, -365.0 * rng.random(n), END * rng.beta(1.3, 1.0, n))
    first = rng.choice(3, n, p=JOIN_SHARE)
    has = np.zeros((n, 3), dtype=bool)
    has[idx, first] = True
    registered = np.full((n, 3), np.inf)
    registered[idx, first] = join
    for c in range(3):
        later = join + rng.exponential(120.0, n)
        add = ~has[:, c] & (rng.random(n) < EXTRA_SHARE[c]) & (later < END)
        has[add, c] = True
        registered[add, c] = later[add]
    only_mini = has[:, MINIAPP] & ~has[:, POS] & ~has[:, ONLINE]
    bound = has[:, MINIAPP] & has[:, POS] & (rng.random(n) < 0.6)
    no_phone = (bound & (rng.random(n) < 0.5)) | (only_mini & (rng.random(n) < 0.3))
    age = np.clip(rng.normal(35.0, 10.0, n), 18.0, 70.0)
    cards = world.unique_ints(rng, n, 10**7, 10**8)
    users = world.unique_ints(rng, n, 10**7, 10**8)
    return People(
        n=n, join=join, has=has, registered=registered, phone=world.phones(rng, n), name=world.names(rng, n),
        nickname=world.nicknames(rng, n), gender=np.where(rng.random(n) < 0.55, "F", "M"),
        birth=join - age * 365.25, home_store=rng.choice(len(stores.ids), n, p=stores.weights),
        card_no=np.where(has[:, POS], np.char.add("8800", cards.astype(str)), ""),
        user_id=np.where(has[:, ONLINE], users.astype(str), ""),
        open_id=np.where(has[:, MINIAPP], world.open_ids(rng, n), ""),
        bound_card=bound, miniapp_phone=has[:, MINIAPP] & ~no_phone,
    )
