"""Report periods and the windows they are compared with, decided once.

A :class:`Period` is a month, quarter or year *to date*: from the first day
of the calendar month, quarter or year that holds ``as_of`` up to ``as_of``
itself (both days included). It is compared with a window of the same days,
never with a whole period it only partly covers:

- **the previous period** (:attr:`Period.previous`): the same days of the
  month, quarter or year before. Its start is the previous period's first
  day; its end is ``as_of`` moved back by one period, clipped to the end of
  a shorter month (2026-03-01 – 03-15 vs 2026-02-01 – 02-15; 2026-03-31 vs
  2026-02-01 – 02-28);
- **the same period last year** (:attr:`Period.last_year`): the same days a
  year earlier (2026-01-01 – 03-31 vs 2025-01-01 – 03-31; a leap day maps to
  February 28th).

One rule covers month ends: an ``as_of`` on the last day of its month is
compared up to the last day of the matching month, so whole months stand
against whole months. A full period as of its last day is therefore compared
with the whole previous period (2026-04-30 vs 2026-03-01 – 03-31), and a year
to 2025-02-28 with 2024-01-01 – 02-29.

The default comparison (:meth:`Period.comparison`) is the previous period's
same days. For a year that *is* the same period last year
(``period=year`` at 2026-03-31: 2026-01-01 – 03-31 vs 2025-01-01 – 03-31).

Every comparison states both ranges in words (:meth:`Comparison.words`); a
range within one year prints its year once ("2026-01-01 – 03-31").
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from ..errors import CrmkitError
from ..i18n import register, t
from .activity import as_date

#: The period kinds, and the months each spans.
PERIODS = ("month", "quarter", "year")
_MONTHS_IN = {"month": 1, "quarter": 3, "year": 12}
#: What a period can be compared with.
AGAINST = ("previous", "last_year")

register({
    "period.vs": ("{current} 对比 {base}", "{current} vs {base}"),
    "period.note": ("本期（{kind}）{current}，对比{against} {base}",
                    "This period ({kind}) {current}, compared with {against} {base}"),
    "period.month": ("本月至今", "month to date"),
    "period.quarter": ("本季度至今", "quarter to date"),
    "period.year": ("本年至今", "year to date"),
    "period.month_full": ("整月", "the whole month"),
    "period.quarter_full": ("整季度", "the whole quarter"),
    "period.year_full": ("整年", "the whole year"),
    "period.against.previous": ("上期同期", "the same days of the previous period"),
    "period.against.last_year": ("去年同期", "the same days last year"),
    "period.against.previous_full": ("上期", "the whole previous period"),
    "period.against.last_year_full": ("去年同期", "the same period last year"),
})


def _shift(d: dt.date, months: int) -> dt.date:
    """``d`` moved by ``months`` calendar months: clipped to a shorter month's end, and a
    month's last day to the last day of the month it lands in."""
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    last = calendar.monthrange(year, month + 1)[1]
    month_end = d.day == calendar.monthrange(d.year, d.month)[1]
    return dt.date(year, month + 1, last if month_end else min(d.day, last))


@dataclass(frozen=True)
class DateRange:
    """Days ``start`` .. ``end``, both included."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def words(self) -> str:
        """``2026-01-01 – 03-31``: the year once within one year; one day alone."""
        if self.start == self.end:
            return self.start.isoformat()
        end = self.end.strftime("%m-%d") if self.end.year == self.start.year else self.end.isoformat()
        return f"{self.start.isoformat()} – {end}"

    def __iter__(self):  # start, end = a_range
        return iter((self.start, self.end))


@dataclass(frozen=True)
class Comparison:
    """A period and the window it is compared with (``against``: previous or last_year)."""

    period: Period
    base: DateRange
    against: str

    @property
    def current(self) -> DateRange:
        return self.period.range

    def words(self, lang: str = "zh") -> str:
        """Both ranges: ``2026-01-01 – 03-31 vs 2025-01-01 – 03-31`` (zh: 对比)."""
        return t("period.vs", lang).format(current=self.current.words(), base=self.base.words())

    def note(self, lang: str = "zh") -> str:
        """One sentence naming the period, both ranges and what the base is."""
        full = "_full" if self.period.full else ""
        return t("period.note", lang).format(
            kind=t(f"period.{self.period.kind}{full}", lang), current=self.current.words(),
            against=t(f"period.against.{self.against}{full}", lang), base=self.base.words())


@dataclass(frozen=True)
class Period:
    """The month, quarter or year (``kind``) to date at ``as_of``; see the module for the rules."""

    kind: str
    as_of: dt.date

    def __post_init__(self):
        if self.kind not in PERIODS:
            raise CrmkitError(f"period must be one of {', '.join(PERIODS)}, not {self.kind!r}.")
        object.__setattr__(self, "as_of", as_date(self.as_of))

    @property
    def months(self) -> int:
        return _MONTHS_IN[self.kind]

    @property
    def start(self) -> dt.date:
        """The first day of the calendar month, quarter or year that holds ``as_of``."""
        n = self.months
        return dt.date(self.as_of.year, (self.as_of.month - 1) // n * n + 1, 1)

    @property
    def end(self) -> dt.date:
        return self.as_of

    @property
    def range(self) -> DateRange:
        return DateRange(self.start, self.end)

    @property
    def full(self) -> bool:
        """Whether ``as_of`` is the period's last day (the whole period is covered)."""
        return self.as_of == self.calendar(0).end

    def calendar(self, back: int = 1) -> DateRange:
        """The whole calendar period ``back`` periods before this one (0: this one, whole)."""
        start = _shift(self.start, -self.months * back)
        return DateRange(start, _shift(start, self.months) - dt.timedelta(days=1))

    @property
    def previous(self) -> DateRange:
        """The same days of the previous period."""
        return DateRange(_shift(self.start, -self.months), _shift(self.as_of, -self.months))

    @property
    def last_year(self) -> DateRange:
        """The same days a year earlier."""
        return DateRange(_shift(self.start, -12), _shift(self.as_of, -12))

    def comparison(self, against: str | None = None) -> Comparison:
        """This period against ``against`` (previous, the default, or last_year).

        A year's previous period is the same period last year, and is named so.
        """
        against = against or "previous"
        if against not in AGAINST:
            raise CrmkitError(f"compare with one of {', '.join(AGAINST)}, not {against!r}.")
        if self.kind == "year":
            against = "last_year"
        return Comparison(self, self.previous if against == "previous" else self.last_year, against)
