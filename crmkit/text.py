"""Plain-text tables for the console, aligned by display width.

A terminal shows East Asian Wide and Fullwidth characters (Chinese, Japanese,
Korean, full-width digits and punctuation) two columns wide and combining
marks zero wide, so ``len`` misaligns any column that holds Chinese (file
names, labels). :func:`display_width` counts columns as the terminal does
(Unicode East Asian Width); :func:`pad` and :func:`text_table` align by it.

The number formats of the house style (shares, percentage points, p-values,
counts) live here too, light enough for the console and the CLI;
:mod:`crmkit.viz` re-exports them for the charts and notebooks.
"""
from __future__ import annotations

import unicodedata


def display_width(s: str) -> int:
    """Columns ``s`` takes in a terminal: 2 per Wide / Fullwidth character, 0 per combining mark, else 1."""
    width = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def pad(s: str, width: int, align: str = "left") -> str:
    """``s`` filled with spaces to ``width`` display columns, ``align`` ``left`` or ``right``."""
    fill = " " * max(width - display_width(s), 0)
    return s + fill if align == "left" else fill + s


def text_table(rows: list[list[str]] | list[tuple[str, ...]], right: set[int] | frozenset[int] = frozenset(),
               *, rule: bool = False, sep: str = "  ") -> list[str]:
    """Lines of ``rows`` (the first is the header) in columns aligned by display width.

    Columns whose index is in ``right`` are right-aligned (numbers), the
    others left-aligned; ``rule`` puts a line of dashes under the header.
    Trailing spaces are dropped.
    """
    if not rows:
        return []
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [sep.join(pad(c, w, "right" if i in right else "left") for i, (c, w) in enumerate(zip(r, widths)))
             .rstrip() for r in rows]
    if rule:
        lines.insert(1, sep.join("-" * w for w in widths))
    return lines


def fmt_pct(x: float, decimals: int = 1) -> str:
    if x is None or x != x:
        return "–"
    return f"{x * 100:.{decimals}f}%"


def fmt_pp(x: float, decimals: int = 1) -> str:
    """``0.037`` → ``3.7 pp``: a difference of two rates, in percentage points."""
    if x is None or x != x:
        return "–"
    return f"{x * 100:.{decimals}f} pp"


def fmt_p_value(p: float | None) -> str:
    """``4.4e-16`` → ``< 0.001``, ``0.0614`` → ``0.061``: a p-value as people read it."""
    if p is None or p != p:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_int(x: float) -> str:
    """``1234567`` → ``1,234,567`` (counts of members, orders...)."""
    if x is None or x != x:
        return "–"
    return f"{x:,.0f}"
