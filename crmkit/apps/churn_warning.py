"""The churn-warning app: the at-risk, high-value members of a manager's scope, and what to do about each.

Definitions
-----------
- **At risk**: the member's churn band in the score snapshot
  (``member_scores.churn_band``, :mod:`crmkit.churn`): ``high`` by default,
  or ``high`` and ``medium``. The band cut-offs are the chain's, so a band
  means the same in every scope; the page states each band's range of churn
  risk (the probability of no purchase in the snapshot's churn window).
- **High value**: the member's spend to date (net, all orders up to the
  as-of) is in the top 10 / 20 (default) / 50 per cent of the scope's scored
  members (or any spend), the cut computed engine-side over the scope
  (:func:`crmkit.apps.common.scope_totals`). Past spend, not CLV: CLV is
  what the model expects a member to bring from now on, which is low for a
  member it expects to lapse; the value at stake is what they used to bring.
  CLV and its interval are shown beside it.
- **Last purchase**: the member's last purchase day up to the snapshot's
  as-of (:mod:`crmkit.engine.activity`).
- **Suggested action** (:data:`ACTIONS`): one per churn band.

The page reads the scope's candidates once (:func:`load`: the high and
medium bands, phones and names masked on reading), and every filter change
works on that small frame (:func:`select`), so a change never goes back to
the store. The export (:func:`export_csv`) is the filtered list, every row (not only those shown),
masked, in the columns of :data:`EXPORT_COLUMNS`; it is made when its button is pressed
(:class:`crmkit.apps.common.Export`).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field, replace

import pandas as pd

from .. import churn, engine, viz  # noqa: F401 - churn registers the band labels
from ..dashboard import tables
from ..i18n import LANGS, register, t
from ..privacy import mask_frame
from . import common

#: Columns read from the snapshot.
SCORE_COLUMNS = ("member_id", "churn_risk", "churn_band", "clv", "clv_low", "clv_high", "p_alive", "tier",
                 "rfm_segment", "lifecycle_stage")
#: The bands the page can show, riskiest first.
BANDS = ("high", "medium")
#: "High value": the top share of the scope's members by spend to date (None: any), by filter value.
VALUE_SHARES = {"10": 0.10, "20": 0.20, "50": 0.50, "all": None}
#: Sort orders: columns and directions (member id last, so ties have one order).
SORTS = {"clv": (["clv", "member_id"], [False, True]),
         "spend": (["net_spend", "member_id"], [False, True]),
         "risk": (["churn_risk", "clv", "member_id"], [False, False, True]),
         "last": (["last_purchase", "clv", "member_id"], [True, False, True])}
#: How many rows the table shows (the export has them all).
ROWS = (50, 100, 500)
#: The table's columns, in order.
TABLE_COLUMNS = ["member_id", "phone", "name", "suggested_action", "churn_band", "churn_risk", "clv", "clv_low",
                 "clv_high", "p_alive", "net_spend", "last_purchase", "tier", "rfm_segment", "lifecycle_stage",
                 "store_id"]
#: The export's columns: the table's, numbers unformatted.
EXPORT_COLUMNS = TABLE_COLUMNS

#: Suggested action per churn band.
ACTIONS = {
    "high": ("店长 48 小时内一对一电话回访，发放 14 天有效的专属回归礼券", "Store manager calls within 48 hours; "
             "send a personal come-back voucher valid 14 days"),
    "medium": ("企业微信 / 短信关怀，邀请参加会员日（双倍积分）", "Care message by WeCom / SMS; invite to the "
               "member day with double points"),
    "low": ("常规会员沟通", "Regular member communication"),
}

register({
    "col.suggested_action": ("建议动作", "Suggested action"),
    "col.net_spend": ("累计消费（{money}）", "Spend to date ({money})"),
    **{f"action.{band}": pair for band, pair in ACTIONS.items()},
    "cw.title": ("流失预警：高价值高风险会员", "Churn warning: high-value members at risk"),
    "cw.f.lang": ("语言", "Language"),
    "cw.f.band": ("风险档", "Risk band"),
    "cw.f.value": ("价值", "Value"),
    "cw.f.tier": ("等级", "Tier"),
    "cw.f.segment": ("RFM 分群", "RFM segment"),
    "cw.f.stage": ("生命周期", "Lifecycle"),
    "cw.f.store": ("门店", "Store"),
    "cw.f.sort": ("排序", "Sort by"),
    "cw.f.rows": ("显示行数", "Rows shown"),
    "cw.any": ("全部", "All"),
    "cw.band.high": ("风险最高档", "Riskiest band"),
    "cw.band.medium": ("风险最高档 + 居中档", "Riskiest and middle bands"),
    "cw.value.10": ("累计消费前 10%", "Top 10% by spend"),
    "cw.value.20": ("累计消费前 20%", "Top 20% by spend"),
    "cw.value.50": ("累计消费前 50%", "Top 50% by spend"),
    "cw.value.all": ("不限", "Any spend"),
    "cw.sort.clv": ("CLV 从高到低", "CLV, highest first"),
    "cw.sort.spend": ("累计消费从高到低", "Spend to date, highest first"),
    "cw.sort.risk": ("流失风险从高到低", "Churn risk, highest first"),
    "cw.sort.last": ("最近购买日从早到晚", "Last purchase, oldest first"),
    "cw.kpi.members": ("预警会员", "Members at risk"),
    "cw.kpi.members_note": ("范围内已评分会员 {n} 人", "of {n} scored members in scope"),
    "cw.kpi.clv": ("预警会员 CLV 合计", "Their total CLV"),
    "cw.kpi.clv_note": ("占范围 CLV 的 {share}", "{share} of the scope's CLV"),
    "cw.kpi.risk": ("平均流失风险", "Mean churn risk"),
    "cw.kpi.risk_note": ("未来 {days} 天无购买的概率", "probability of no purchase in {days} days"),
    "cw.kpi.alive": ("存活概率中位数", "Median P(alive)"),
    "cw.export": ("导出 CSV（{n} 行，已脱敏）", "Export CSV ({n} rows, masked)"),
    "cw.shown": ("显示前 {shown} 行，共 {n} 行。", "Showing the first {shown} of {n} rows."),
    "cw.none": ("没有符合筛选条件的会员。", "No member matches these filters."),
    "cw.bands": ("风险档按全公司划分：{ranges}。", "Bands are cut on the whole chain: {ranges}."),
    "cw.band_range": ("{band} 流失风险 {low}–{high}", "{band}: churn risk {low}–{high}"),
    "cw.value_cut": ("高价值：累计消费在范围内已评分会员的前 {pct}（≥ {spend}）。", "High value: spend to date "
                     "in the top {pct} of the scope's scored members (≥ {spend})."),
    "cw.value_any": ("累计消费不限。", "Any spend to date."),
    "cw.clv_interval": ("CLV 为未来 {days} 天的折现毛利，区间为 {level} 预测区间。",
                        "CLV is the discounted gross margin over the next {days} days, with its {level} "
                        "prediction interval."),
})


@dataclass(frozen=True)
class Filters:
    """The page's filter values (empty text: any)."""

    band: str = "high"
    value: str = "20"
    tier: str = ""
    segment: str = ""
    stage: str = ""
    store: str = ""
    sort: str = "clv"
    rows: int = ROWS[0]


@dataclass
class WarningData:
    """What the page shows, read once: the scope's candidates (masked) and the scope's totals."""

    run: object
    scope: engine.Scope
    members: pd.DataFrame
    totals: dict
    band_ranges: dict
    store_names: dict = field(default_factory=dict)
    stale: str | None = None


def load(con, run, scope: engine.Scope, *, stale: str | None = None) -> WarningData:
    """The scope's members of the :data:`BANDS` in ``run`` with phone and name masked, and the scope's totals."""
    bands = ", ".join(f"'{b}'" for b in BANDS)
    members = common.scope_scores(con, run, scope, SCORE_COLUMNS, where=f"s.churn_band IN ({bands})")
    people = _people(con, members["member_id"])
    members = members.merge(people, on="member_id", how="left")
    totals = common.scope_totals(con, run, scope, quantiles=tuple(1 - s for s in VALUE_SHARES.values() if s))
    ranges = {b: (lo, hi) for b, lo, hi in con.execute(
        "SELECT churn_band, min(churn_risk), max(churn_risk) FROM member_scores WHERE as_of = $d GROUP BY 1",
        {"d": run.as_of}).fetchall()}
    names = dict(con.execute("SELECT store_id, name FROM stores").fetchall())
    return WarningData(run, scope, members, totals, ranges, names, stale)


def _people(con, ids: pd.Series) -> pd.DataFrame:
    """Masked ``phone`` and ``name`` of the members ``ids`` (:func:`crmkit.privacy.mask_frame`)."""
    frame = pd.DataFrame({"member_id": ids.astype(str)})
    con.register("_crm_app_ids", frame)
    try:
        people = con.execute("SELECT m.member_id, m.phone, m.name FROM members m "
                             "JOIN _crm_app_ids i ON i.member_id = m.member_id").df()
    finally:
        con.unregister("_crm_app_ids")
    return mask_frame(people)


def value_cut(data: WarningData, value: str) -> float | None:
    """The spend to date at or above which a member is "high value" for the filter ``value`` (None: any)."""
    share = VALUE_SHARES[value]
    return None if share is None else data.totals["spend_at"][1 - share]


def select(data: WarningData, f: Filters) -> pd.DataFrame:
    """Every member the filters ``f`` pick, sorted, with the suggested action's band."""
    m = data.members
    keep = m["churn_band"].isin(BANDS[: 1 if f.band == "high" else 2])
    cut = value_cut(data, f.value)
    if cut is not None:
        keep &= m["net_spend"] >= cut
    for column, wanted in (("tier", f.tier), ("rfm_segment", f.segment), ("lifecycle_stage", f.stage),
                           ("store_id", f.store)):
        if wanted:
            keep &= m[column] == wanted
    columns, ascending = SORTS[f.sort]
    return m[keep].sort_values(columns, ascending=ascending, na_position="last").reset_index(drop=True)


def with_actions(chosen: pd.DataFrame, lang: str) -> pd.DataFrame:
    """``chosen`` with its ``suggested_action`` in ``lang``, in :data:`TABLE_COLUMNS`."""
    out = chosen.assign(suggested_action=chosen["churn_band"].map(lambda b: t(f"action.{b}", lang)))
    return out[TABLE_COLUMNS]


def kpis(data: WarningData, chosen: pd.DataFrame, lang: str) -> list[tuple[str, str, str]]:
    """The KPI tiles: (label, value, note)."""
    share = chosen["clv"].sum() / data.totals["clv"] if data.totals["clv"] else float("nan")
    days = data.run.parameters.get("churn_days", 180)
    return [
        (t("cw.kpi.members", lang), viz.fmt_int(len(chosen)),
         t("cw.kpi.members_note", lang).format(n=viz.fmt_int(data.totals["members"]))),
        (t("cw.kpi.clv", lang), viz.fmt_money(chosen["clv"].sum()),
         t("cw.kpi.clv_note", lang).format(share=viz.fmt_pct(share))),
        (t("cw.kpi.risk", lang), viz.fmt_pct(chosen["churn_risk"].mean()) if len(chosen) else "–",
         t("cw.kpi.risk_note", lang).format(days=viz.fmt_int(days))),
        (t("cw.kpi.alive", lang), viz.fmt_pct(chosen["p_alive"].median()) if len(chosen) else "–", ""),
    ]


def export_csv(chosen: pd.DataFrame, lang: str) -> bytes:
    """The filtered list as CSV (UTF-8 with a byte-order mark, for Excel): every row, phones and names masked
    (they were on reading, :func:`load`)."""
    return with_actions(chosen, lang)[EXPORT_COLUMNS].to_csv(index=False).encode("utf-8-sig")


def export_name(data: WarningData) -> str:
    """``churn_warning_<scope>_<as_of>.csv``."""
    return f"churn_warning_{data.scope.slug()}_{data.run.as_of}.csv"


def table_html(chosen: pd.DataFrame, f: Filters, lang: str) -> str:
    """The first ``f.rows`` rows, formatted (:func:`crmkit.dashboard.table_html`), and how many there are."""
    if chosen.empty:
        return f"<p>{html.escape(t('cw.none', lang))}</p>"
    shown = with_actions(chosen.head(f.rows), lang)
    count = t("cw.shown", lang).format(shown=viz.fmt_int(len(shown)), n=viz.fmt_int(len(chosen)))
    action = TABLE_COLUMNS.index("suggested_action") + 1  # the one long text: wrapped, in a column wide enough
    style = (f"<style>.crm-table table.dataframe td:nth-child({action}) {{ white-space: normal; min-width: 18em; }}"
             f".crm-table table.dataframe th:nth-child({action}) {{ text-align: left; }}</style>")
    return (f'{style}<p class="crm-sub">{html.escape(count)}</p>'
            f'<div class="crm-table">{tables.table_html(shown, lang)}</div>')


def notes(data: WarningData, f: Filters, lang: str) -> list[str]:
    """The sentences under the title: the bands' ranges, what "high value" is, what CLV is, masking."""
    ranges = ("；" if lang == "zh" else "; ").join(t("cw.band_range", lang).format(band=t(f"churn.{b}", lang), low=viz.fmt_pct(lo),
                                                       high=viz.fmt_pct(hi))
                       for b, (lo, hi) in sorted(data.band_ranges.items(), key=lambda kv: -kv[1][1]) if b in BANDS)
    cut = value_cut(data, f.value)
    value = (t("cw.value_any", lang) if cut is None else t("cw.value_cut", lang).format(
        pct=viz.fmt_pct(VALUE_SHARES[f.value], 0), spend=viz.fmt_money(cut)))
    p = data.run.parameters
    clv = t("cw.clv_interval", lang).format(days=viz.fmt_int(p.get("horizon_days", 365)),
                                            level=viz.fmt_pct(p.get("interval", 0.9), 0))
    return [t("cw.bands", lang).format(ranges=ranges), value, clv, t("app.masked", lang)]


#: The label keys the page shows, by prefix.
_LABEL_PREFIXES = ("cw.", "app.", "col.", "churn.", "action.", "snapshot.", "report.")


def labels_text(data: WarningData) -> str:
    """Every text the page can show in either language, for the web-font subset."""
    from ..i18n import labels

    parts = [t(k, lang) for k in labels() if k.startswith(_LABEL_PREFIXES) for lang in LANGS]
    for column in ("tier", "rfm_segment", "lifecycle_stage"):
        for value in data.members[column].dropna().unique():
            parts += [tables.format_table(pd.DataFrame({column: [value]}), lang).iloc[0, 0] for lang in LANGS]
    parts += [str(v) for v in data.store_names.values()] + [str(data.scope.region or ""), "中文 English"]
    parts += [str(v) for v in data.members["name"].dropna().unique()]  # masked: a first character each
    return "".join(parts)


# ------------------------------------------------------------------ the page

class ChurnWarningPage(common.Page):
    """The widgets of the page; every filter change re-selects from :class:`WarningData` (no store access)."""

    def __init__(self, data: WarningData, lang: str = "zh"):
        import ipywidgets as w

        self.data, self.lang, self.filters = data, lang, Filters()
        self.lang_toggle = self.language_toggle(lang)
        self.widgets = {
            "band": w.Dropdown(), "value": w.Dropdown(), "tier": w.Dropdown(), "segment": w.Dropdown(),
            "stage": w.Dropdown(), "store": w.Dropdown(), "sort": w.Dropdown(), "rows": w.Dropdown(),
        }
        self.header, self.kpis, self.table = w.HTML(), w.HTML(), w.HTML()
        self.export = common.Export(self._export, lang)
        for name, widget in self.widgets.items():
            widget.add_class(f"crm-filter-{name}")
            widget.layout = w.Layout(width="260px")
            widget.style = {"description_width": "90px"}
        self._relabel()
        for widget in self.widgets.values():
            widget.observe(self._changed, names="value")
        filters = list(self.widgets.values())
        self.box = w.VBox([self.lang_toggle, self.header, w.HBox(filters[:4], layout=w.Layout(flex_flow="row wrap")),
                           w.HBox(filters[4:], layout=w.Layout(flex_flow="row wrap")), self.kpis, self.export.box,
                           self.table])
        self.box.add_class("crm-app")
        self.render()

    def _options(self, name: str) -> list[tuple[str, object]]:
        lang, m = self.lang, self.data.members
        anyone = [(t("cw.any", lang), "")]
        if name == "band":
            return [(t(f"cw.band.{b}", lang), b) for b in BANDS]
        if name == "value":
            return [(t(f"cw.value.{v}", lang), v) for v in VALUE_SHARES]
        if name == "sort":
            return [(t(f"cw.sort.{s}", lang), s) for s in SORTS]
        if name == "rows":
            return [(viz.fmt_int(n), n) for n in ROWS]
        if name == "store":
            ids = sorted(m["store_id"].dropna().unique())
            return anyone + [(f"{s} {self.data.store_names.get(s, '')}".strip(), s) for s in ids]
        column = {"tier": "tier", "segment": "rfm_segment", "stage": "lifecycle_stage"}[name]
        values = sorted(m[column].dropna().unique())
        return anyone + [(tables.format_table(pd.DataFrame({column: [v]}), lang).iloc[0, 0], v) for v in values]

    def _relabel(self) -> None:
        """Set every widget's description and options in the page's language, keeping their values."""
        self._quiet = True
        try:
            for name, widget in self.widgets.items():
                value = getattr(self.filters, name)
                widget.options = self._options(name)
                widget.value = value
                widget.description = t(f"cw.f.{name}", self.lang)
        finally:
            self._quiet = False

    def _changed(self, _change) -> None:
        if self._quiet:
            return
        self.filters = replace(self.filters, **{k: w.value for k, w in self.widgets.items()})
        self.render()

    def _export(self) -> tuple[str, bytes]:
        return export_name(self.data), export_csv(select(self.data, self.filters), self.lang)

    def render(self) -> None:
        """Redraw the header, KPI tiles, export and table for the current filters and language."""
        lang, data = self.lang, self.data
        try:
            chosen = select(data, self.filters)
            sub = [f"{t('app.scope', lang)}: {common.scope_text(data.scope, lang)}",
                   f"{t('report.as_of', lang)}: {data.run.as_of}",
                   f"{t('app.snapshot', lang)}: {data.run.caption(lang)}"]
            self.header.value = (f"<h2>{html.escape(t('cw.title', lang))}</h2>"
                                 + "".join(f'<p class="crm-sub">{html.escape(s)}</p>' for s in sub)
                                 + (f'<p class="crm-note">{html.escape(data.stale)}</p>' if data.stale else "")
                                 + "".join(f'<p class="crm-foot">{html.escape(n)}</p>'
                                           for n in notes(data, self.filters, lang)))
            self.kpis.value = ('<div class="crm-kpis">' + "".join(common.kpi_html(*k) for k in kpis(data, chosen, lang))
                               + "</div>")
            self.export.lang = lang
            self.export.relabel(t("cw.export", lang).format(n=viz.fmt_int(len(chosen))))
            self.table.value = table_html(chosen, self.filters, lang)
        except Exception as err:  # noqa: BLE001 - the page says one sentence, the log has the rest
            self.table.value = common.error_html(err, lang)


def show(db=None, region=None, store_id=None, lang=None) -> ChurnWarningPage | None:
    """Display the churn-warning page for the settings of ``crmkit app`` (or these parameters);
    one sentence instead when it cannot be shown (unknown scope, no snapshot)."""
    def build(con, s, scope, run):
        data = load(con, run, scope, stale=common.stale_note(con, run, s.db, s.lang))
        return labels_text(data), lambda page_lang: ChurnWarningPage(data, page_lang)

    return common.show_page(build, db, region, store_id, lang)
