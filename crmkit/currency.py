"""The store's currency: one setting, used by every money label and format.

Amounts in the store are plain numbers in the store's currency. The currency
is recorded in the store's ``settings`` table (key ``currency``) by the first
``crmkit load`` (``--currency CODE``, CNY by default); a store without the
setting (made before it existed) is CNY, as every store then was. A load that
names another currency is refused while the store holds data, since its
amounts would then mix two currencies; an empty store takes the new one.

Formatting reads the currency from one place, :func:`current`: each command
sets it once from the store it reads (:func:`use_store`), and so does every
report notebook when it opens its store (:func:`crmkit.dashboard.open_store`).
Labels say the currency through the ``{money}`` mark of :func:`crmkit.i18n.t`:
the unit name in Chinese (``净销售额（英镑）``) and the symbol in English
(``Net sales (£)``).

This module imports nothing heavy: the loader and the checks use it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from .errors import InputError

#: The key of the currency in the store's ``settings`` table.
SETTING = "currency"


@dataclass(frozen=True)
class Currency:
    """``code`` (ISO 4217), ``symbol`` (shown before amounts and in English labels),
    ``zh`` (the unit in Chinese labels) and ``decimals`` (minor units; JPY has none)."""

    code: str
    symbol: str
    zh: str
    decimals: int = 2

    def unit(self, lang: str = "zh") -> str:
        """The currency in a label: ``元`` / ``英镑`` in Chinese, ``¥`` / ``£`` in English."""
        return self.zh if lang == "zh" else self.symbol

    def fmt(self, x: float | None, decimals: int = 0) -> str:
        """``1234567.8`` → ``£1,234,568``; never more decimals than the currency has; ``–`` for none."""
        if x is None or x != x:
            return "–"
        sign = "-" if x < 0 else ""
        return f"{sign}{self.symbol}{abs(x):,.{min(decimals, self.decimals)}f}"


CURRENCIES: dict[str, Currency] = {c.code: c for c in (
    Currency("CNY", "¥", "元"),
    Currency("GBP", "£", "英镑"),
    Currency("USD", "$", "美元"),
    Currency("EUR", "€", "欧元"),
    Currency("HKD", "HK$", "港元"),
    Currency("MOP", "MOP$", "澳门元"),
    Currency("TWD", "NT$", "新台币"),
    Currency("SGD", "S$", "新加坡元"),
    Currency("AUD", "A$", "澳元"),
    Currency("CAD", "C$", "加元"),
    Currency("JPY", "¥", "日元", 0),
    Currency("KRW", "₩", "韩元", 0),
)}
DEFAULT = CURRENCIES["CNY"]

#: Every symbol an amount may carry in an export, longest first (``HK$`` before ``$``).
SYMBOLS: tuple[str, ...] = tuple(sorted({c.symbol for c in CURRENCIES.values()} | {"￥"}, key=len, reverse=True))

#: Marks of a currency in exports besides its symbol.
_ALIASES = {"CNY": ("￥", "元", "RMB", "CNY"), "USD": ("US$", "USD"), "GBP": ("GBP",), "EUR": ("EUR",),
            "HKD": ("HKD",), "JPY": ("￥", "円", "JPY")}


def marks(code: str | Currency) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(own, foreign)``: the marks an amount in ``code``'s store may carry, and those of the other
    currencies it cannot, longest first. ``¥`` is CNY's and JPY's; a bare ``$`` is any dollar's, so it
    is foreign only to a currency without ``$``. A check removes the own marks longer than one
    character first (``US$`` holds ``S$``, Singapore's), then looks for a foreign one."""
    own = get(code)
    mine = {own.symbol, *_ALIASES.get(own.code, ())} | ({"$"} if "$" in own.symbol else set())
    other = {m for c in CURRENCIES.values() for m in (c.symbol, *_ALIASES.get(c.code, ()))} | {"$"}
    longest = lambda ms: tuple(sorted(ms, key=lambda m: (-len(m), m)))  # noqa: E731
    return longest(mine), longest(other - mine)


_current = DEFAULT


def get(code: str | Currency) -> Currency:
    """The currency of an ISO code (any case); one sentence listing the known codes otherwise."""
    if isinstance(code, Currency):
        return code
    found = CURRENCIES.get(str(code).strip().upper())
    if found is None:
        raise InputError(f"--currency {code!r} is not a currency crmkit knows; use one of "
                         f"{', '.join(CURRENCIES)}.")
    return found


def current() -> Currency:
    """The currency that money is formatted and labelled in now (CNY until set)."""
    return _current


def use(currency: str | Currency) -> Currency:
    """Make ``currency`` the current one (once per command or report); returns it."""
    global _current
    _current = get(currency)
    return _current


@contextmanager
def using(currency: str | Currency):
    """``with using("GBP"): ...``: the current currency inside the block, restored after it."""
    before = _current
    try:
        yield use(currency)
    finally:
        use(before)


def fmt_money(x: float | None, decimals: int = 0) -> str:
    """An amount in the current currency: ``¥1,234,568``, ``-£1,234.50``, ``–`` for a missing value."""
    return _current.fmt(x, decimals)


# ------------------------------------------------------------------ the store's setting

def store_currency(con) -> Currency:
    """The currency recorded in the store behind ``con`` (CNY when none is, or for a transactions file)."""
    from .engine.store import read_setting

    code = read_setting(con, SETTING)
    return get(code) if code else DEFAULT


def use_store(con) -> Currency:
    """Make the store's currency the current one; returns it."""
    return use(store_currency(con))


def record(con, code: str | None) -> Currency:
    """Record the currency of a load in the store (``code`` None: keep the store's, else CNY).

    The first load records it. A different code is refused in one sentence
    while the store holds data; an empty store takes it. Call inside the
    load's transaction, so a failed load records nothing.
    """
    from .engine.store import is_empty, read_setting, write_setting

    recorded = read_setting(con, SETTING)
    wanted = get(code) if code else get(recorded or DEFAULT)
    if recorded and recorded != wanted.code and not is_empty(con):
        raise InputError(f"--currency {wanted.code} differs from this store's currency {recorded}; amounts "
                         f"in two currencies cannot be added up, so load them into a separate store (--db).")
    if recorded != wanted.code:
        write_setting(con, SETTING, wanted.code)
    return wanted
