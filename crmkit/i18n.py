"""Chinese and English labels for everything a manager sees.

Each module registers its own labels with :func:`register`, so that label
tables live beside the code that uses them; :func:`t` looks a key up.

A label that names money writes ``{money}`` where the currency goes:
:func:`t` puts the current currency there (:mod:`crmkit.currency`), its unit
in Chinese and its symbol in English, so ``净销售额（{money}）`` /
``Net sales ({money})`` read ``净销售额（元）`` / ``Net sales (¥)`` in a CNY
store and ``净销售额（英镑）`` / ``Net sales (£)`` in a GBP one.
"""
from __future__ import annotations

from . import currency

#: Where a label names the currency.
MONEY = "{money}"

LANGS = ("zh", "en")

_LABELS: dict[str, dict[str, str]] = {}


def register(labels: dict[str, dict[str, str] | tuple[str, str]]) -> None:
    """Add labels: ``{"key": {"zh": "…", "en": "…"}}`` or ``{"key": ("zh", "en")}``."""
    for key, value in labels.items():
        if isinstance(value, tuple):
            value = {"zh": value[0], "en": value[1]}
        _LABELS[key] = dict(value)


def t(key: str, lang: str = "zh") -> str:
    """The label of ``key`` in ``lang``; the key itself when none is registered."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    entry = _LABELS.get(key)
    if entry is None:
        return key
    label = entry.get(lang) or entry.get("en") or key
    return label.replace(MONEY, currency.current().unit(lang)) if MONEY in label else label


def known(key: str) -> bool:
    """Whether a label is registered under ``key``."""
    return key in _LABELS


def labels() -> dict[str, dict[str, str]]:
    return {k: dict(v) for k, v in _LABELS.items()}


register({
    "member_id": ("会员编号", "Member ID"),
    "phone": ("手机号", "Phone"),
    "name": ("姓名", "Name"),
    "store": ("门店", "Store"),
    "region": ("区域", "Region"),
    "city": ("城市", "City"),
    "channel": ("渠道", "Channel"),
    "pos": ("门店POS", "POS"),
    "online": ("线上商城", "Online mall"),
    "miniapp": ("小程序", "Mini-program"),
    "currency": (MONEY, MONEY),
})
