"""KPI views: this period against its matched comparison window, growth by month, region and store rankings."""
from __future__ import annotations

import pandas as pd

from .. import kpis as kpi_tables
from .. import lifecycle, viz
from ..engine import Comparison, Scope
from ..engine.store import Connection
from ..errors import CrmkitError
from ..i18n import register, t
from .header import unit_filter
from .tables import COLUMNS, FORMATS, column_label, show_note, show_table

#: The headline KPIs, in the order shown.
HEADLINE_KPIS = ("members_end", "new_members", "member_growth", "active_members", "active_rate",
                 "purchase_frequency", "orders", "net_sales", "aov", "refund_rate",
                 "member_share_of_sales")

register({
    "kpi.metric": ("指标", "Metric"),
    "kpi.this_period": ("本期", "This period"),
    "kpi.previous_period": ("上期", "Previous period"),
    "kpi.change": ("变化", "Change"),
    "kpi.range": ("{label}（{range}）", "{label} ({range})"),
    "kpi.base.previous": ("上期同期", "Same days, previous period"),
    "kpi.base.last_year": ("去年同期", "Same days last year"),
    "kpi.base.previous_full": ("上期", "Previous period"),
    "kpi.base.last_year_full": ("去年同期", "Same period last year"),
})


def kpi_row(kpis: pd.DataFrame, *, region: str | None = None, store_id: str | None = None) -> pd.Series:
    """The row of a :func:`crmkit.kpis.kpis` table for HQ, one ``region`` or one ``store_id``."""
    by, value = unit_filter(region, store_id)
    if by is None:
        rows, what = kpis[kpis["level"] == "hq"], "HQ"
    else:
        rows = kpis[(kpis["level"] == by) & (kpis[lifecycle.GROUP_COLUMNS[by]] == value)]
        what = f"{by} {value!r}"
    if rows.empty:
        raise CrmkitError(f"no KPIs for {what} in this period; check the region / store_id parameter.")
    return rows.iloc[0]


def kpi_comparison(current: pd.Series, previous: pd.Series, lang: str = "zh", *,
                   comparison: Comparison | None = None) -> pd.DataFrame:
    """Headline KPIs of two periods side by side, formatted, with the change.

    Change is relative (per cent) for counts and money, in percentage points for
    rates (:func:`crmkit.kpis.kpi_change`). With a ``comparison`` the two value
    columns name their date ranges ("本期（2026-03-01 – 03-15）").
    """
    changes = kpi_tables.kpi_changes(current, previous, HEADLINE_KPIS)
    rows = []
    for key, (cur, prev, change) in changes.iterrows():
        fmt = FORMATS[COLUMNS[key].kind]
        if pd.isna(change):
            shown = "–"
        elif key in kpi_tables.RATE_KPIS:
            shown = f"{change * 100:+.1f} pp"
        else:
            shown = f"{change * 100:+.1f}%"
        rows.append((column_label(key, lang), fmt(cur), fmt(prev), shown))
    this, base = t("kpi.this_period", lang), t("kpi.previous_period", lang)
    if comparison is not None:
        full = "_full" if comparison.period.full else ""
        this = t("kpi.range", lang).format(label=this, range=comparison.current.words())
        base = t("kpi.range", lang).format(label=t(f"kpi.base.{comparison.against}{full}", lang),
                                           range=comparison.base.words())
    return pd.DataFrame(rows, columns=[t("kpi.metric", lang), this, base, t("kpi.change", lang)], dtype=object)


def show_kpi_comparison(compared: kpi_tables.KpiComparison, lang: str = "zh", *, region: str | None = None,
                        store_id: str | None = None) -> None:
    """Both date ranges in words, then the headline KPIs of one unit (:func:`kpi_row`) compared.

    A unit without members or sales in the comparison window (a store opened
    since) shows "–" there.
    """
    current = kpi_row(compared.current, region=region, store_id=store_id)
    try:
        base = kpi_row(compared.base, region=region, store_id=store_id)
    except CrmkitError:
        base = pd.Series(dtype=object)
    show_note(compared.comparison.note(lang))
    show_table(kpi_comparison(current, base, lang, comparison=compared.comparison), lang)


def ranking(kpis: pd.DataFrame, level: str = "store", *, by: str = "net_sales", top: int = 10,
            region: str | None = None, lang: str = "zh") -> pd.DataFrame:
    """Regions or stores of a :func:`crmkit.kpis.kpis` table ranked by ``by`` (highest first).

    A store ranking holds stores only; ``region`` limits it to one region. A region
    ranking also holds the members without a home store (online and mini-program
    sign-ups), labelled as such in ``lang``, so that the regions add up to the chain.
    ``attrs["units"]`` is the number of units ranked before ``top`` cut the list.
    """
    if level not in ("store", "region"):
        raise CrmkitError(f"ranking level must be store or region, not {level!r}.")
    rows = kpis[kpis["level"] == level]
    if level == "store":
        rows = rows[rows["store_id"].notna()]
    else:
        rows = rows.assign(region=rows["region"].fillna(t("ranking.no_store", lang)))
    if region not in (None, ""):
        rows = rows[rows["region"] == region]
    keys = ["region"] if level == "region" else ["store_id", "store_name", "region"]
    cols = keys + ["members_end", "new_members", "active_rate", "orders", "net_sales", "aov"]
    ranked = (rows.sort_values([by, keys[0]], ascending=[False, True], kind="stable")
              .head(top)[cols].reset_index(drop=True))
    ranked.attrs["units"] = len(rows)
    return ranked


# ------------------------------------------------------------------ growth and rankings

register({
    "growth.title": ("会员增长与购买（近 {months} 个月，人）",
                     "Member growth and buyers (last {months} months, members)"),
    "growth.month": ("月份", "Month"),
    "growth.members": ("人数（人）", "Members"),
    "growth.new_members": ("新增会员", "New members"),
    "growth.buyers": ("当月购买会员", "Buyers in the month"),
    "ranking.title": ("{unit}{metric}排名（前 {n}）", "{unit} ranking by {metric} (top {n})"),
    "ranking.store": ("门店", "Store"),
    "ranking.region": ("区域", "Region"),
    "ranking.title_all": ("{unit}{metric}排名（共 {n} 个）", "{unit} ranking by {metric} (all {n})"),
    "ranking.no_store": ("线上（无归属门店）", "Online (no home store)"),
})

#: Columns of the monthly growth table, in the order shown.
GROWTH_COLUMNS = ("month", "new_members", "first_purchase_rate", "buyers", "retention_rate",
                  "next_month_repurchase_rate", "repurchase_cycle_days", "winback_rate")


def monthly_growth(con: Connection, as_of, *, months: int = 12, scope: Scope | None = None,
                   region: str | None = None, store_id: str | None = None) -> pd.DataFrame:
    """:func:`crmkit.lifecycle.monthly_metrics` of the members of ``scope`` (default: the chain;
    ``region`` and ``store_id`` are shorthands)."""
    out = lifecycle.monthly_metrics(con, as_of, months=months,
                                    scope=Scope.of(scope, region=region, store_id=store_id))
    return out[list(GROWTH_COLUMNS)].reset_index(drop=True)


def plot_growth(growth: pd.DataFrame, lang: str = "zh"):
    """New members (bars) and buyers (line) per calendar month, from :func:`monthly_growth`."""
    fig, ax = viz.new_figure(figsize=(9, 4.5))
    labels = [pd.Timestamp(m).strftime("%Y-%m") for m in growth["month"]]
    ax.bar(labels, growth["new_members"], color=viz.PALETTE[0], label=t("growth.new_members", lang))
    ax.plot(labels, growth["buyers"], color=viz.PALETTE[1], marker="o", label=t("growth.buyers", lang))
    ax.yaxis.set_major_formatter(viz.int_formatter)
    ax.set_title(t("growth.title", lang).format(months=len(growth)))
    ax.set_xlabel(t("growth.month", lang))
    ax.set_ylabel(t("growth.members", lang))
    ax.tick_params(axis="x", rotation=45)
    ax.legend()
    fig.tight_layout()
    return fig


def show_rankings(kpis: pd.DataFrame, lang: str = "zh", *, scope: Scope | None = None, by: str = "net_sales",
                  tables: bool = True) -> None:
    """The store ranking (chart, and table with ``tables``) of a :func:`crmkit.kpis.kpis` table, and the
    region ranking when it has several regions to rank.

    ``kpis`` are those of the report's ``scope`` (:func:`crmkit.kpis.compare` with it): a region
    or store report ranks its own stores only, and shows no other region.
    """
    scope = Scope.of(scope)
    if scope.region is None and scope.store_id is None:
        regions = ranking(kpis, "region", by=by, lang=lang)
        viz.show(plot_ranking(regions, "region", by, lang))
        if tables:
            show_table(regions, lang)
    stores = ranking(kpis, "store", by=by)
    viz.show(plot_ranking(stores, "store", by, lang))
    if tables:
        show_table(stores, lang)


def plot_ranking(ranked: pd.DataFrame, level: str = "store", by: str = "net_sales", lang: str = "zh"):
    """Horizontal bars of a :func:`ranking`, best at the top, each labelled with its value."""
    fmt = FORMATS[COLUMNS[by].kind]
    names = (ranked["store_name"].fillna(ranked["store_id"]) if level == "store" else ranked["region"]).astype(str)
    fig, ax = viz.new_figure(figsize=(8, 0.4 * len(ranked) + 1.5))
    y = range(len(ranked))[::-1]
    bars = ax.barh(list(y), ranked[by], color=viz.PALETTE[0])
    ax.bar_label(bars, labels=[f" {fmt(v)}" for v in ranked[by]], fontsize=8)
    ax.set_yticks(list(y), list(names))
    ax.xaxis.set_major_formatter(viz.money_formatter if COLUMNS[by].kind.startswith("money") else viz.int_formatter)
    ax.set_xlim(0, max(float(ranked[by].max()), 1.0) * 1.2 if len(ranked) else 1.0)
    ax.set_xlabel(column_label(by, lang))
    title = "ranking.title_all" if len(ranked) >= ranked.attrs.get("units", len(ranked) + 1) else "ranking.title"
    ax.set_title(t(title, lang).format(unit=t(f"ranking.{level}", lang), metric=column_label(by, lang),
                                       n=len(ranked)))
    fig.tight_layout()
    return fig
