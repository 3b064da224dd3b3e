"""Warnings where a number should not be trusted: each check gives one sentence, or None.

The checks run in the engine, one small aggregate query each, on the
``transactions`` table of a store (or the view over a transactions file, see
:func:`crmkit.store.open_source`). Definitions:

- A *purchase line* is a line that is not a return (``txn_type`` is not
  ``'return'``). The *data dates* are the first and the last calendar day with
  a purchase line: the days the data covers.
- **As-of outside the data** (:func:`as_of_check`). An as-of after the last
  purchase day scores days the data does not cover: every member's recency
  gap grows by the days without data, so every member looks churned (and a
  CLV fit reads the gap as dropout). An as-of before the first purchase day
  leaves nothing to score. ``crmkit score`` refuses the first unless
  ``--allow-future`` is given and always refuses the second; reports show
  the sentence.
- **Outlier amounts** (:func:`amount_outliers`). An *order* and its *amount*
  (net of its returns, credit notes included) are those of
  :mod:`crmkit.engine.activity`, so a returned order nets out. The robust cut is :data:`OUTLIER_FACTOR` (1,000) × the
  median amount of the orders with a positive amount. Orders above the cut
  are kept (a real corporate order can be large) but flagged, with their
  *share of sales*: their amount over the summed amount of all positive
  orders. The median is robust: one order of ¥10¹² among orders of ¥100
  does not move it, while it moves a mean (and so a mean-based cut) at will.
  One such order makes CLV totals meaningless (issue 9: one order of ¥10¹²
  made a chain's total CLV ¥65 bn).
- **All-zero amounts** (:func:`zero_amounts_check`). When there are lines and
  every amount is zero (an export without the amounts paid), spend per
  order is zero: CLV is zero and Gamma-Gamma (Fader, Hardie & Lee 2005,
  "RFM and CLV: using iso-value curves") has no spend to fit; revenue-based
  ROI cannot be measured either.

Sentences exist in Chinese and English (:mod:`crmkit.i18n`).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass


from . import engine
from .currency import fmt_money
from .engine import Query
from .engine.store import Connection
from .i18n import register, t
from .rfm import as_date

#: Orders above this multiple of the median positive order amount are flagged.
OUTLIER_FACTOR = 1_000

register({
    "checks.after_last": (
        "评估日 {as_of} 晚于库中最后一笔购买（{last}）：此后 {gap:,} 天没有数据，所有会员都会显得已流失",
        "as-of {as_of} is after the last purchase in the store ({last}): every member looks churned, "
        "because the {gap:,} days since then hold no data"),
    "checks.before_first": (
        "评估日 {as_of} 早于库中第一笔购买（{first}）：没有可评分的会员",
        "as-of {as_of} is before the first purchase in the store ({first}): there is nothing to score"),
    "checks.no_purchases": ("库中没有任何购买记录：没有可评分的会员",
                            "the store holds no purchases: there is nothing to score"),
    "checks.allow_future": ("；评估日请不晚于 {last}，或加 --allow-future 仍然评分",
                            "; use an as-of up to {last}, or pass --allow-future to score anyway"),
    "checks.outliers": (
        "{n_orders:,} 笔订单（{n_lines:,} 行）金额超过 {cut}（订单金额中位数 {median} 的 {factor:,} 倍），"
        "占销售额 {share}：已保留（可能属实），但请先核实再看合计与 CLV",
        "{n_orders:,} order{s} ({n_lines:,} line{ls}) above {cut}, {factor:,} × the median order of {median}, "
        "make{verb} up {share} of sales: kept ({it} may be real), but check {it_obj} before trusting any total "
        "or CLV"),
    "checks.zero_amounts": (
        "库中{until}全部 {n_lines:,} 行的金额均为零：CLV 为零，Gamma-Gamma（客单价模型）无法拟合，"
        "基于销售额的 ROI 也无法衡量；导出文件可能缺少实付金额",
        "every amount in the store{until} is zero ({n_lines:,} line{s}), so CLV is zero, Gamma-Gamma (spend "
        "per order) cannot be fitted and revenue-based ROI cannot be measured; the export probably lacks "
        "the amounts paid"),
    "checks.until": ("截至 {as_of} ", " up to {as_of}"),
})

_PURCHASE = "coalesce(txn_type, 'sale') <> 'return'"


def _end(as_of) -> dt.datetime | None:
    """The first instant after ``as_of`` (inclusive day), or None for no limit."""
    if as_of is None:
        return None
    return dt.datetime.combine(as_date(as_of, "as_of") + dt.timedelta(days=1), dt.time())


def _period(s: str) -> str:
    return s if s.endswith(("。", ".")) else s + ("。" if any(ord(c) > 0x2E80 for c in s) else ".")


def data_dates(con: Connection) -> tuple[dt.date | None, dt.date | None]:
    """The first and the last day with a purchase line (both None when there is none)."""
    first, last = con.execute(
        f"SELECT CAST(min(order_time) AS DATE), CAST(max(order_time) AS DATE) FROM transactions "
        f"WHERE order_time IS NOT NULL AND member_id IS NOT NULL AND {_PURCHASE}").fetchone()
    return first, last


def as_of_position(con: Connection, as_of) -> tuple[str, dt.date | None, dt.date | None] | None:
    """Where ``as_of`` falls outside the data: ``("after" | "before" | "empty", first, last)``, or None inside."""
    day = as_date(as_of, "as_of")
    first, last = data_dates(con)
    if last is None:
        return "empty", None, None
    if day > last:
        return "after", first, last
    if day < first:
        return "before", first, last
    return None


def as_of_check(con: Connection, as_of, lang: str = "en", *,
                allow_future_hint: bool = False) -> str | None:
    """One sentence when ``as_of`` is past the last purchase day or before the first, else None.

    With ``allow_future_hint`` the sentence past the data also says how to
    proceed (``crmkit score`` refuses such an as-of without ``--allow-future``).
    """
    pos = as_of_position(con, as_of)
    if pos is None:
        return None
    kind, first, last = pos
    day = as_date(as_of, "as_of")
    if kind == "empty":
        return _period(t("checks.no_purchases", lang))
    if kind == "before":
        return _period(t("checks.before_first", lang).format(as_of=day, first=first))
    text = t("checks.after_last", lang).format(as_of=day, last=last, gap=(day - last).days)
    if allow_future_hint:
        text += t("checks.allow_future", lang).format(last=last)
    return _period(text)


def _money(x: float) -> str:
    """``¥1,235`` for a whole amount, ``¥104.50`` otherwise (a median or a cut is shown as it is),
    in the current currency (:mod:`crmkit.currency`)."""
    if x is None or not math.isfinite(x):
        return "–"
    return fmt_money(x, 0 if x == round(x) else 2)


def _share(x: float) -> str:
    """A share as people read it, never rounded to a misleading 0% or 100%."""
    if not math.isfinite(x):
        return "–"
    if 0 < x < 0.001:
        return "< 0.1%"
    if 0.999 < x < 1:
        return "> 99.9%"
    return f"{x * 100:.1f}%"


@dataclass(frozen=True)
class AmountOutliers:
    """Orders above the robust cut (see the module docstring): counts, cut and share of sales.

    ``cut`` = :data:`OUTLIER_FACTOR` × ``median_order`` (NaN without positive
    orders); ``outlier_sales`` and ``total_sales`` are money over the orders
    with a positive amount. Falsy when no order is above the cut.
    """

    n_orders: int
    n_lines: int
    outlier_sales: float
    total_sales: float
    median_order: float
    cut: float
    largest: float
    factor: int = OUTLIER_FACTOR

    @property
    def share_of_sales(self) -> float:
        """The outlier orders' share of sales, 0 when there is none."""
        return self.outlier_sales / self.total_sales if self.n_orders and self.total_sales > 0 else 0.0

    def __bool__(self) -> bool:
        return self.n_orders > 0

    def sentence(self, lang: str = "en") -> str | None:
        """One sentence naming the orders above the cut and their share of sales; None when there are none."""
        if not self.n_orders:
            return None
        many = self.n_orders != 1
        return _period(t("checks.outliers", lang).format(
            n_orders=self.n_orders, n_lines=self.n_lines, s="s" if many else "",
            ls="s" if self.n_lines != 1 else "", verb="" if many else "s", it="they" if many else "it",
            it_obj="them" if many else "it", cut=_money(self.cut),
            median=_money(self.median_order), factor=self.factor, share=_share(self.share_of_sales)))

    def to_dict(self, lang: str = "en") -> dict:
        """For ``--json``: the rule, the cut, the counts, the share of sales and the sentence."""
        def num(x):
            return float(x) if x is not None and math.isfinite(x) else None
        return {"rule": f"order amount > {self.factor:,} × the median positive order amount",
                "median_order": num(self.median_order), "cut": num(self.cut), "n_orders": self.n_orders,
                "n_lines": self.n_lines, "outlier_sales": num(self.outlier_sales),
                "share_of_sales": num(self.share_of_sales), "largest_order": num(self.largest),
                "sentence": self.sentence(lang)}


def amount_outliers(con: Connection, as_of=None, *,
                    factor: float = OUTLIER_FACTOR) -> AmountOutliers:
    """Orders (up to ``as_of`` inclusive, all when None) whose amount exceeds ``factor`` × the median order.

    One aggregation over ``transactions``; see the module docstring for the
    definitions of order, amount, cut and share of sales.
    """
    q = engine.orders(as_of) + Query(
        {"cut": "  SELECT median(net) AS median, $factor * median(net) AS cut FROM orders WHERE net > 0"},
        {"factor": float(factor)})
    row = q.execute(con, """
SELECT max(c.median), max(c.cut),
       count(CASE WHEN o.net > c.cut THEN 1 END), coalesce(sum(CASE WHEN o.net > c.cut THEN o.n_lines END), 0),
       coalesce(sum(CASE WHEN o.net > c.cut THEN o.net END), 0),
       coalesce(sum(CASE WHEN o.net > 0 THEN o.net END), 0), max(o.net)
FROM orders o CROSS JOIN cut c""").fetchone()
    median, cut, n, lines, out_sales, total, largest = row
    nan = float("nan")
    return AmountOutliers(int(n or 0), int(lines or 0), float(out_sales or 0.0), float(total or 0.0),
                          nan if median is None else float(median), nan if cut is None else float(cut),
                          nan if largest is None else float(largest), int(factor) if factor == int(factor) else factor)


def zero_amounts(con: Connection, as_of=None) -> int:
    """The number of lines (up to ``as_of``) when there are some and every amount is zero, else 0."""
    end = _end(as_of)
    where = "amount IS NOT NULL AND member_id IS NOT NULL AND order_time IS NOT NULL"
    if end is not None:
        where += " AND order_time < $end"
    lines, paid = con.execute(f"SELECT count(*), count(CASE WHEN amount <> 0 THEN 1 END) FROM transactions "
                              f"WHERE {where}", {"end": end} if end is not None else {}).fetchone()
    return int(lines) if lines and not paid else 0


def zero_amounts_check(con: Connection, as_of=None, lang: str = "en") -> str | None:
    """One sentence when every amount (up to ``as_of``) is zero: CLV is zero and Gamma-Gamma cannot be fitted."""
    n = zero_amounts(con, as_of)
    if not n:
        return None
    until = t("checks.until", lang).format(as_of=as_date(as_of, "as_of")) if as_of is not None else ""
    return _period(t("checks.zero_amounts", lang).format(until=until, n_lines=n, s="s" if n != 1 else ""))


def data_warnings(con: Connection, as_of=None, lang: str = "en") -> list[str]:
    """Every sentence above that applies to scores or reports as of ``as_of`` (data-wide checks when None)."""
    out = [as_of_check(con, as_of, lang)] if as_of is not None else []
    out += [zero_amounts_check(con, as_of, lang), amount_outliers(con, as_of).sentence(lang)]
    return [s for s in out if s]
