"""The manager dashboard app: a scope's KPIs against their comparison period, its mix, trend, cohorts and stores.

Definitions
-----------
- **Period**: the month, quarter or year to date at the score snapshot's
  as-of, compared with its matched window (:class:`crmkit.engine.Period`:
  the same days of the previous month or quarter, the same days last year
  for a year); every tile names both ranges (:meth:`Comparison.words`).
- **Members, active rate, sales, AOV** are those of :func:`crmkit.kpis.kpis`
  for the filters' scope: members (and active members, with a purchase day
  in the period) by their home store, region and channel; net sales (sales
  less refunds booked in the period) and orders (the engine's purchases) by
  the store and channel of the sale; AOV = order value / orders. A rate's
  change is in percentage points, any other change relative.
- **Predicted CLV** (the snapshot's ``member_scores.clv``, summed) and the
  **at-risk count** (churn band ``high``) are as of the snapshot, which has
  no comparison period; their tiles say so.
- **Tier**: the members whose tier in the snapshot is that tier, and their
  sales; members the snapshot did not score count under "all tiers" only.
- **Store ranking**: the stores of the region filter (the store filter
  aside) by net sales in the period, the 5 leaders and the 5 laggards, each
  with its change.

Speed: the page reads the scope's KPI cube once (:func:`crmkit.kpi_cube.read_cube`,
when the kernel starts, i.e. Voila's preheat; later kernels read it from crmkit's
cache, :func:`load`); every filter change is a slice
and a sum of that small frame, with no store access. With ``crmkit app
--region`` / ``--store`` the cube holds the launcher's scope only, so the
filters can only narrow inside it.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .. import engine, kpi_cube, viz
from ..engine.period import PERIODS
from ..i18n import LANGS, register, t
from ..kpis import RATE_KPIS, kpi_change
from ..lifecycle import stage_label
from ..segments import segment_label
from ..schema import CHANNELS
from ..tiers import TierRules, tier_label
from . import common

#: Rows of each end of the store ranking.
RANK_ROWS = 5
#: Cohorts the heatmap shows (the latest).
HEATMAP_COHORTS = 12

register({
    "dash.title": ("经营看板", "Manager dashboard"),
    "dash.export": ("导出门店指标 CSV", "Export store KPIs as CSV"),
    "dash.f.lang": ("语言", "Language"),
    "dash.f.region": ("区域", "Region"),
    "dash.f.store": ("门店", "Store"),
    "dash.f.period": ("期间", "Period"),
    "dash.f.tier": ("等级", "Tier"),
    "dash.f.channel": ("渠道", "Channel"),
    "dash.any": ("全部", "All"),
    "dash.no_store": ("无归属门店", "No home store"),
    "dash.kpi.members": ("会员数", "Members"),
    "dash.kpi.active_rate": ("活跃率", "Active rate"),
    "dash.kpi.net_sales": ("销售额（净）", "Net sales"),
    "dash.kpi.aov": ("客单价", "AOV"),
    "dash.kpi.clv": ("预测 CLV 合计", "Predicted CLV"),
    "dash.kpi.at_risk": ("高流失风险会员", "Members at risk"),
    "dash.change": ("{words}：{change}", "{words}: {change}"),
    "dash.clv_note": ("评分快照 {as_of} 时点，{n} 名已评分会员，人均 {mean}；快照无对比期",
                      "as of the snapshot of {as_of}, {n} scored members, {mean} each; no comparison period"),
    "dash.risk_note": ("评分快照 {as_of} 时点，流失风险最高档，占已评分会员 {share}；快照无对比期",
                       "as of the snapshot of {as_of}, riskiest churn band, {share} of scored members; "
                       "no comparison period"),
    "dash.trend": ("近 12 个月趋势：销售额与活跃会员", "Last 12 months: net sales and active members"),
    "dash.trend_note": ("最后一个月截至 {as_of}。", "The last month runs to {as_of}."),
    "dash.month": ("月份", "Month"),
    "dash.active": ("活跃会员", "Active members"),
    "dash.mix": ("会员结构（评分快照）", "Member mix (score snapshot)"),
    "dash.mix.tier": ("会员等级", "Tier"),
    "dash.mix.rfm_segment": ("RFM 分群", "RFM segment"),
    "dash.mix.lifecycle_stage": ("生命周期阶段", "Lifecycle stage"),
    "dash.cohort": ("首购月留存热力图（当月有购买的会员占比）",
                    "Retention by first-purchase month (share of the cohort buying in month k)"),
    "dash.cohort_col": ("首购月", "Cohort"),
    "dash.cohort_size": ("人数", "Size"),
    "dash.ranking": ("门店排名（{period}销售额）", "Store ranking (net sales, {period})"),
    "dash.leaders": ("领先 {n} 家", "Top {n}"),
    "dash.laggards": ("落后 {n} 家", "Bottom {n}"),
    "dash.ranking_note": ("共 {n} 家门店；变化为 {words}。", "{n} stores; change {words}."),
    "dash.store": ("门店", "Store"),
    "dash.sales": ("销售额", "Net sales"),
    "dash.vs": ("变化", "Change"),
    "dash.none": ("没有数据。", "No data."),
})


@dataclass(frozen=True)
class Filters:
    """The page's filter values (empty text: any)."""

    region: str = ""
    store: str = ""
    period: str = "month"
    tier: str = ""
    channel: str = ""

    def slice(self) -> kpi_cube.Slice:
        return kpi_cube.Slice(self.region, self.store, self.channel, self.tier)


@dataclass
class DashboardData:
    """What the page shows, read once: the scope's KPI cube and the snapshot it stands on."""

    run: object
    cube: kpi_cube.Cube
    stale: str | None = None
    tiers: tuple[str, ...] = field(default_factory=tuple)


#: The cube's frames, as :func:`load` keeps them in crmkit's cache.
CUBE_FRAMES = ("members", "sales", "scores", "cohort_sizes", "cohort_buyers", "stores")


def load(con, run, scope, *, stale: str | None = None) -> DashboardData:
    """The scope's cube (:func:`crmkit.kpi_cube.read_cube`) and the tier order (highest first).

    The cube is kept in crmkit's cache (:mod:`crmkit.cache`), keyed by the
    store's data fingerprint, crmkit's code, the scope and the score run: the
    next kernel (Voila starts one after each visit) reads it back instead of
    reading the store again, and new data, code or scores read it afresh.
    """
    from .. import cache
    from ..engine.snapshots import code_fingerprint, data_fingerprint

    key = cache.digest("dashboard", data_fingerprint(con), code_fingerprint(), engine.Scope.of(scope).fields(),
                       run.run_id, run.as_of, run.settings_fingerprint)
    kept = cache.read_json("dashboard", key)
    if kept is not None:
        as_of = engine.as_date(run.as_of)
        cube = kpi_cube.Cube(as_of, engine.Scope.of(scope), *kpi_cube.windows(as_of),
                             **{n: cache.json_frame(kept[n]) for n in CUBE_FRAMES})
    else:
        cube = kpi_cube.read_cube(con, run, scope)
        cache.write_json("dashboard", key, {n: cache.frame_json(getattr(cube, n)) for n in CUBE_FRAMES})
    present = set(cube.scores["tier"].dropna())
    ranked = [n for n in reversed(TierRules.load().names) if n in present]
    return DashboardData(run, cube, stale, tuple(ranked + sorted(present - set(ranked))))


# ------------------------------------------------------------------ pure views

def _change_text(key: str, change: float) -> str:
    if change != change:
        return "–"
    return f"{change * 100:+.1f} pp" if key in RATE_KPIS else f"{change * 100:+.1f}%"


def kpis(data: DashboardData, f: Filters, lang: str) -> list[tuple[str, str, str]]:
    """The six KPI tiles: (label, value, note); the period tiles name their comparison and change."""
    cube = data.cube
    tot = kpi_cube.totals(cube, f.slice())
    now, base = tot.loc[f.period], tot.loc[f"{f.period}:base"]
    words = cube.comparisons[f.period].words(lang)
    fmt = {"members_end": viz.fmt_int, "active_rate": viz.fmt_pct, "net_sales": viz.fmt_money,
           "aov": lambda x: viz.fmt_money(x, 2)}
    names = {"members_end": "members", "active_rate": "active_rate", "net_sales": "net_sales", "aov": "aov"}
    tiles = [(t(f"dash.kpi.{names[k]}", lang), fn(now[k]),
              t("dash.change", lang).format(words=words, change=_change_text(k, kpi_change(k, now[k], base[k]))))
             for k, fn in fmt.items()]
    snap = kpi_cube.snapshot_totals(cube, f.slice())
    n = snap["members"]
    tiles.append((t("dash.kpi.clv", lang), viz.fmt_money(snap["clv"]),
                  t("dash.clv_note", lang).format(as_of=cube.as_of, n=viz.fmt_int(n),
                                                  mean=viz.fmt_money(snap["clv"] / n if n else np.nan))))
    tiles.append((t("dash.kpi.at_risk", lang), viz.fmt_int(snap["at_risk"]),
                  t("dash.risk_note", lang).format(as_of=cube.as_of,
                                                   share=viz.fmt_pct(snap["at_risk"] / n if n else np.nan))))
    return tiles


def kpis_html(data: DashboardData, f: Filters, lang: str) -> str:
    return '<div class="crm-kpis">' + "".join(common.kpi_html(*k) for k in kpis(data, f, lang)) + "</div>"


def _bar(value: float, top: float, color: str, width: int = 160) -> str:
    """A horizontal bar ``width`` pixels long at ``top`` (nothing for a missing or negative value)."""
    size = 0.0 if not top or value != value else max(0.0, value / top) * width
    return (f'<span style="background:{color};height:12px;width:{size:.0f}px;'
            f'display:inline-block;vertical-align:middle"></span>')


def _heading(key: str, lang: str, **kw) -> str:
    return f"<h3>{html.escape(t(key, lang).format(**kw))}</h3>"


def trend_html(data: DashboardData, f: Filters, lang: str) -> str:
    """Net sales and active members of each of the 12 months, as bars."""
    tot = kpi_cube.totals(data.cube, f.slice())
    months = tot.loc[[k for k in data.cube.ranges if k.startswith("trend:")]]
    top_s, top_a = months["net_sales"].max(), months["active_members"].max()
    rows = "".join(
        f"<tr><td>{html.escape(k.split(':')[1])}</td>"
        f'<td class="crm-bar-cell">{_bar(r.net_sales, top_s, "#1f5fbf")} {html.escape(viz.fmt_money(r.net_sales))}</td>'
        f'<td class="crm-bar-cell">{_bar(r.active_members, top_a, "#e08a00")} '
        f"{html.escape(viz.fmt_int(r.active_members))}</td></tr>" for k, r in months.iterrows())
    head = "".join(f"<th>{html.escape(t(k, lang))}</th>" for k in ("dash.month", "dash.sales", "dash.active"))
    return (_heading("dash.trend", lang) + f'<table class="crm-chart crm-trend"><tr>{head}</tr>{rows}</table>'
            + f'<p class="crm-foot">{html.escape(t("dash.trend_note", lang).format(as_of=data.cube.as_of))}</p>')


_LABELS = {"tier": tier_label, "rfm_segment": segment_label, "lifecycle_stage": stage_label}


def mix_html(data: DashboardData, f: Filters, lang: str) -> str:
    """Scored members of the filters by tier, RFM segment and lifecycle stage, as bars with their share."""
    parts = []
    for column, label in _LABELS.items():
        counts = kpi_cube.mix(data.cube, f.slice(), column)
        total = counts.sum()
        rows = "".join(
            f"<tr><td>{html.escape(label(v, lang))}</td><td class='crm-bar-cell'>{_bar(n, counts.max(), '#3a8f5c')} "
            f"{html.escape(viz.fmt_int(n))} ({html.escape(viz.fmt_pct(n / total))})</td></tr>"
            for v, n in counts.items())
        body = (f'<table class="crm-chart">{rows}</table>' if rows
                else f"<p>{html.escape(t('dash.none', lang))}</p>")
        parts.append(f'<div class="crm-mix">{_heading(f"dash.mix.{column}", lang)}{body}</div>')
    return (f"<h3>{html.escape(t('dash.mix', lang))}</h3>"
            f'<div style="display:flex;flex-wrap:wrap;gap:24px">{"".join(parts)}</div>')


def cohort_html(data: DashboardData, f: Filters, lang: str) -> str:
    """The retention heatmap of the latest :data:`HEATMAP_COHORTS` cohorts (k = 0 .. 11)."""
    grid = kpi_cube.retention(data.cube, f.slice()).tail(HEATMAP_COHORTS)
    if grid.empty:
        return _heading("dash.cohort", lang) + f"<p>{html.escape(t('dash.none', lang))}</p>"
    grid = grid.iloc[:, :HEATMAP_COHORTS]
    sizes = kpi_cube.cohort_size(data.cube, f.slice()).reindex(grid.index)
    top = np.nanmax(grid.iloc[:, 1:].to_numpy()) if grid.shape[1] > 1 else 1.0
    head = (f"<th>{html.escape(t('dash.cohort_col', lang))}</th><th>{html.escape(t('dash.cohort_size', lang))}</th>"
            + "".join(f"<th>{k}</th>" for k in grid.columns))
    rows = []
    for cohort, r in grid.iterrows():
        cells = []
        for k, v in r.items():
            if v != v:
                cells.append("<td></td>")
                continue
            alpha = 1.0 if k == 0 else min(1.0, v / top) if top else 0.0
            ink = "#fff" if alpha > 0.55 else "#1b2b40"
            cells.append(f'<td style="background:rgba(31,95,191,{alpha:.2f});color:{ink}">{viz.fmt_pct(v, 0)}</td>')
        rows.append(f"<tr><td>{cohort:%Y-%m}</td><td>{viz.fmt_int(sizes.loc[cohort])}</td>{''.join(cells)}</tr>")
    return (_heading("dash.cohort", lang)
            + f'<table class="crm-chart crm-heatmap"><tr>{head}</tr>{"".join(rows)}</table>')


def _store_label(data: DashboardData, store_id) -> str:
    names = dict(zip(data.cube.stores["store_id"], data.cube.stores["name"]))
    return f"{store_id} {names.get(store_id) or ''}".strip()


def ranking(data: DashboardData, f: Filters) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """``(leaders, laggards, stores)``: the top and bottom :data:`RANK_ROWS` stores of the region filter by
    net sales in the period (laggards lowest first), and how many stores were ranked."""
    stores = kpi_cube.store_sales(data.cube, f.slice(), f.period)
    ranked = stores.sort_values(["net_sales", "store_id"], ascending=[False, True], kind="stable")
    laggards = stores.sort_values(["net_sales", "store_id"], ascending=[True, True], kind="stable")
    return ranked.head(RANK_ROWS), laggards.head(RANK_ROWS), len(stores)


def ranking_html(data: DashboardData, f: Filters, lang: str) -> str:
    leaders, laggards, n = ranking(data, f)
    period = t(f"period.{f.period}", lang)
    top = max(leaders["net_sales"].max() if n else 0.0, 0.0)

    def table(key: str, rows: pd.DataFrame) -> str:
        head = "".join(f"<th>{html.escape(t(k, lang))}</th>" for k in ("dash.store", "dash.sales", "dash.vs"))
        chosen = ' class="crm-chosen"'
        body = "".join(
            f"<tr{chosen if r.store_id == f.store else ''}>"
            f"<td>{html.escape(_store_label(data, r.store_id))}</td>"
            f"<td class='crm-bar-cell'>{_bar(r.net_sales, top, '#1f5fbf')} "
            f"{html.escape(viz.fmt_money(r.net_sales))}</td>"
            f"<td>{html.escape(_change_text('net_sales', r.change))}</td></tr>" for r in rows.itertuples())
        return (f'<div class="crm-rank">{_heading(key, lang, n=min(RANK_ROWS, n))}'
                f'<table class="crm-chart">{head}{body}</table></div>')

    note = t("dash.ranking_note", lang).format(n=viz.fmt_int(n), words=data.cube.comparisons[f.period].words(lang))
    return (_heading("dash.ranking", lang, period=period)
            + f'<div style="display:flex;flex-wrap:wrap;gap:24px">{table("dash.leaders", leaders)}'
            f'{table("dash.laggards", laggards)}</div><p class="crm-foot">{html.escape(note)}</p>')


#: The export's KPI columns, of the period and of its comparison window (``base_`` prefixed).
EXPORT_KPIS = ("members_end", "new_members", "active_members", "active_rate", "orders", "net_sales", "aov")


def store_table(data: DashboardData, f: Filters) -> pd.DataFrame:
    """Every store of the filters (the store filter aside, as the ranking) with the period's KPIs, those of
    its comparison window, both windows' dates, and the changes (:func:`crmkit.kpis.kpi_change`): one row
    per store, highest net sales first. Aggregates only: no member in it."""
    c = data.cube.comparisons[f.period]
    rows = []
    for store in kpi_cube.store_sales(data.cube, f.slice(), f.period).itertuples():
        tot = kpi_cube.totals(data.cube, replace(f, store=store.store_id).slice())
        now, base = tot.loc[f.period], tot.loc[f"{f.period}:base"]
        row = {"store_id": store.store_id, "name": store.name, "region": store.region,
               "start": c.current.start, "end": c.current.end, "base_start": c.base.start, "base_end": c.base.end}
        row.update({k: now[k] for k in EXPORT_KPIS})
        row.update({f"base_{k}": base[k] for k in EXPORT_KPIS})
        row.update({f"{k}_change": kpi_change(k, now[k], base[k]) for k in ("active_rate", "net_sales", "aov")})
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["net_sales", "store_id"], ascending=[False, True]).reset_index(drop=True) if rows else out


def export_csv(data: DashboardData, f: Filters) -> bytes:
    """:func:`store_table` as CSV (UTF-8 with a byte-order mark, for Excel)."""
    return store_table(data, f).to_csv(index=False).encode("utf-8-sig")


def export_name(data: DashboardData, f: Filters) -> str:
    """``dashboard_<scope>_<period>_<as_of>.csv`` (the filters' scope)."""
    shown = engine.Scope.of(data.cube.scope, region=f.region or None, channel=f.channel or None)
    tier = "_" + re.sub(r"[^0-9A-Za-z_-]", "_", f.tier) if f.tier else ""
    return f"dashboard_{shown.slug()}{tier}_{f.period}_{data.cube.as_of}.csv"


def header_html(data: DashboardData, f: Filters, lang: str) -> str:
    sub = [f"{t('app.scope', lang)}: {common.scope_text(data.cube.scope, lang)}",
           f"{t('app.snapshot', lang)}: {data.run.caption(lang)}",
           data.cube.comparisons[f.period].note(lang)]
    return (f"<h2>{html.escape(t('dash.title', lang))}</h2>"
            + "".join(f'<p class="crm-sub">{html.escape(s)}</p>' for s in sub)
            + (f'<p class="crm-note">{html.escape(data.stale)}</p>' if data.stale else ""))


_STYLE = """<style>
.crm-chart { border-collapse: collapse; font-size: 12.5px; }
.crm-chart th { background: #eef1f5; padding: 3px 8px; text-align: left; white-space: nowrap; }
.crm-chart td { padding: 2px 8px; border-bottom: 1px solid #eceff3; white-space: nowrap; }
.crm-bar-cell { min-width: 260px; }
.crm-heatmap td { text-align: right; min-width: 38px; }
.crm-chosen td { font-weight: 600; }
.crm-app h3 { margin: 14px 0 4px; font-size: 16px; }
</style>"""


def charts_html(data: DashboardData, f: Filters, lang: str) -> str:
    """Trend, mix, cohort heatmap and store ranking: plain HTML (no image, nothing fetched)."""
    return _STYLE + "".join(view(data, f, lang) for view in (trend_html, mix_html, cohort_html, ranking_html))


# ------------------------------------------------------------------ options

def channel_label(channel: str, lang: str) -> str:
    """A channel's label (:mod:`crmkit.i18n`'s ``pos``, ``online``, ``miniapp``), else the channel as it is."""
    return t(channel, lang) if channel in CHANNELS else channel


def options(data: DashboardData, name: str, f: Filters, lang: str) -> list[tuple[str, str]]:
    """The choices of filter ``name``: (label, value); the stores are those of the chosen region."""
    cube, anyone = data.cube, [(t("dash.any", lang), "")]
    if name == "period":  # a whole period (the as-of is its last day) is named so, as the header names it
        return [(t(f"period.{k}_full" if cube.comparisons[k].period.full else f"period.{k}", lang), k)
                for k in PERIODS]
    if name == "region":
        return anyone + [(r, r) for r in sorted(cube.stores["region"].dropna().unique())]
    if name == "store":
        stores = cube.stores[cube.stores["region"] == f.region] if f.region else cube.stores
        return anyone + [(_store_label(data, s), s) for s in stores["store_id"]]
    if name == "tier":
        return anyone + [(tier_label(v, lang), v) for v in data.tiers]
    channels = sorted(set(cube.members["channel"].dropna()) | set(cube.sales["channel"].dropna()))
    return anyone + [(channel_label(c, lang), c) for c in channels]


#: The label keys the page shows, by prefix.
_LABEL_PREFIXES = ("dash.", "app.", "period.", "tier.", "rfm.", "stage.", "snapshot.", "report.")


def labels_text(data: DashboardData) -> str:
    """Every text the page can show in either language, for the web-font subset."""
    from ..i18n import labels

    parts = [t(k, lang) for k in labels() if k.startswith(_LABEL_PREFIXES) for lang in LANGS]
    parts += [str(v) for v in data.cube.stores["name"].dropna()] + [str(v) for v in data.cube.stores["region"].dropna()]
    parts += [channel_label(c, lang) for c in CHANNELS for lang in LANGS]
    return "".join(parts) + "中文 English"


# ------------------------------------------------------------------ the page

class DashboardPage(common.Page):
    """The widgets of the page; every filter change slices :class:`DashboardData` (no store access)."""

    NAMES = ("region", "store", "period", "tier", "channel")

    def __init__(self, data: DashboardData, lang: str = "zh"):
        import ipywidgets as w

        self.data, self.lang, self.filters = data, lang, Filters()
        self.lang_toggle = self.language_toggle(lang)
        self.widgets = {name: w.Dropdown() for name in self.NAMES}
        for name, widget in self.widgets.items():
            widget.add_class(f"crm-filter-{name}")
            widget.layout = w.Layout(width="250px")
            widget.style = {"description_width": "60px"}
        self.header, self.kpis, self.charts = w.HTML(), w.HTML(), w.HTML()
        self.export = common.Export(lambda: (export_name(self.data, self.filters),
                                             export_csv(self.data, self.filters)), lang)
        self._relabel()
        for widget in self.widgets.values():
            widget.observe(self._changed, names="value")
        self.box = w.VBox([self.lang_toggle, self.header,
                           w.HBox(list(self.widgets.values()), layout=w.Layout(flex_flow="row wrap")),
                           self.kpis, self.export.box, self.charts])
        self.box.add_class("crm-app")
        self.render()

    def _relabel(self) -> None:
        """Set every widget's description and options in the page's language (the stores of the chosen
        region), keeping the values that are still offered."""
        self._quiet = True
        try:
            for name, widget in self.widgets.items():
                choices = options(self.data, name, self.filters, self.lang)
                value = getattr(self.filters, name)
                widget.options = choices
                widget.value = value if value in [v for _, v in choices] else choices[0][1]
                widget.description = t(f"dash.f.{name}", self.lang)
            self.filters = replace(self.filters, **{k: w.value for k, w in self.widgets.items()})
        finally:
            self._quiet = False

    def _changed(self, change) -> None:
        if self._quiet:
            return
        self.filters = replace(self.filters, **{k: w.value for k, w in self.widgets.items()})
        if change["owner"] is self.widgets["region"]:
            self._relabel()  # the store list follows the region
        self.render()

    def render(self) -> None:
        """Redraw the header and KPI tiles first (what a manager waits for), then the charts."""
        lang, data, f = self.lang, self.data, self.filters
        try:
            self.header.value = header_html(data, f, lang)
            self.kpis.value = kpis_html(data, f, lang)
            self.export.lang = lang
            self.export.relabel(t("dash.export", lang))
            self.charts.value = charts_html(data, f, lang)
        except Exception as err:  # noqa: BLE001 - the page says one sentence, the log has the rest
            self.charts.value = common.error_html(err, lang)


def show(db=None, region=None, store_id=None, lang=None) -> DashboardPage | None:
    """Display the dashboard for the settings of ``crmkit app`` (or these parameters);
    one sentence instead when it cannot be shown (unknown scope, no snapshot)."""
    def build(con, s, scope, run):
        data = load(con, run, scope, stale=common.stale_note(con, run, s.db, s.lang))
        return labels_text(data), lambda page_lang: DashboardPage(data, page_lang)

    return common.show_page(build, db, region, store_id, lang)
