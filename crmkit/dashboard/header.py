"""The frame of every report: the store, the period, the title block, filters.

Paths are resolved here from the ``db`` parameter, never relative to the
notebook's folder (papermill and JupyterLab run notebooks from different folders).
"""
from __future__ import annotations

import datetime as dt
import html
from pathlib import Path


from .. import __version__, currency, engine, viz
from ..i18n import register, t
from ..lifecycle import as_date
from ..engine.store import Connection, connect
from .tables import column_label, show_html

PERIODS = engine.PERIODS

register({
    "report.as_of": ("数据截至", "Data as of"),
    "report.period": ("报告期", "Report period"),
    "report.data": ("数据范围", "Data"),
    "report.data_span": ("{members} 名会员，{orders} 笔订单，{first} 至 {last}",
                         "{members} members, {orders} orders, {first} to {last}"),
    "report.filter": ("筛选", "Filter"),
    "report.generated": ("生成于 {at}（crmkit {version}）", "Generated {at} (crmkit {version})"),
    "report.none": ("无", "none"),
    "report.scores": ("评分", "Scores"),
    "report.scores_now": ("为本报告现算（库中没有同一日期、同一设置、同一数据的评分快照；运行 crmkit score 可存一份供复用）",
                          "computed for this report (the store has no score snapshot of this date, settings and "
                          "data; crmkit score stores one for reuse)"),
    "report.member_overview": ("会员概览", "Member overview"),
    "report.clv_churn": ("客户价值与流失风险", "Customer value and churn risk"),
    "report.campaign_review": ("营销活动复盘", "Campaign review"),
    "report.monthly_report": ("月度会员经营报告", "Monthly membership report"),
    "section.kpis": ("核心指标（本期与对比期）", "Key figures (this period and its comparison)"),
    "section.growth": ("会员增长", "Member growth"),
    "section.tiers": ("会员等级", "Membership tiers"),
    "section.rfm": ("RFM 分群", "RFM segments"),
    "section.lifecycle": ("生命周期与转化漏斗", "Lifecycle and funnel"),
    "section.cohorts": ("首购月队列", "First-purchase cohorts"),
    "section.ranking": ("区域与门店排名", "Region and store ranking"),
    "section.model": ("模型拟合", "Model fit"),
    "section.validation": ("模型验证（留出期）", "Model validation (holdout period)"),
    "section.value": ("客户价值金字塔", "Customer value pyramid"),
    "section.risk": ("流失风险", "Churn risk"),
    "section.at_risk": ("高价值高风险会员（已脱敏）", "High-value members at risk (masked)"),
    "section.campaign": ("活动概况与结论", "Campaign and verdict"),
    "section.lifts": ("效果与 ROI（95% 区间）", "Effect and ROI (95% intervals)"),
    "section.funnel": ("活动漏斗", "Campaign funnel"),
    "section.segments": ("分群效果", "Effect by segment"),
    "section.campaigns": ("本月结束的活动", "Campaigns that ended this month"),
    "scope.chain": ("全公司基准：本节为全公司数据，未按所选范围（{scope}）筛选。",
                    "Chain benchmark: this section covers the whole chain, not only the chosen scope ({scope})."),
    "scope.chain_model": ("全公司基准：模型在全公司会员上拟合，本节的人数与参数为全公司的；每位会员的评分与所选范围（{scope}）无关。",
                          "Chain benchmark: the model is fitted on the whole chain's members, so this section's "
                          "counts and parameters are the chain's; a member's scores do not depend on the chosen "
                          "scope ({scope})."),
    "scope.chain_checks": ("（全公司数据的检查）", " (a check of the whole chain's data)"),
})


# ------------------------------------------------------------------ periods

def report_period(as_of, period: str = "month", back: int = 0) -> tuple[dt.date, dt.date]:
    """The ``period`` (month, quarter or year) to date at ``as_of``, or the whole calendar period ``back`` before it.

    A thin wrapper of :class:`crmkit.engine.Period` (``range`` and ``calendar(back)``).
    Compare periods with :meth:`crmkit.engine.Period.comparison`, which matches the
    same days; a whole earlier period is for the start of a span (cohorts since
    eleven months back), never for a comparison with a period to date.

    >>> report_period("2026-06-30", "quarter", back=1)
    (datetime.date(2026, 1, 1), datetime.date(2026, 3, 31))
    """
    p = engine.Period(period, as_of)
    return tuple(p.range if back == 0 else p.calendar(back))


def days_before(as_of, days: int) -> dt.date:
    """``as_of`` minus ``days`` calendar days (e.g. the end of a calibration period)."""
    return as_date(as_of) - dt.timedelta(days=int(days))


# ------------------------------------------------------------------ the store

def store_path(db) -> Path:
    """The store a notebook's ``db`` parameter names, independent of the notebook's folder.

    ``crmkit report`` passes an absolute path. A relative one (the default
    ``data/crm.duckdb``, for an analyst in JupyterLab) is taken from the
    current folder when it exists there, else from the project folder that
    holds ``notebooks/``.
    """
    from ..reports import notebooks_dir

    path = Path(db)
    if path.is_absolute() or path.exists():
        return path
    in_project = notebooks_dir().parent / path
    return in_project if in_project.exists() else path


def open_store(db) -> Connection:
    """The store of :func:`store_path`, read-only (reports never write).

    Its currency becomes the current one (:func:`crmkit.currency.use_store`),
    so every money figure and label of the report says the store's currency.
    """
    con = connect(store_path(db), read_only=True)
    currency.use_store(con)
    return con


# ------------------------------------------------------------------ report header

def data_span(con: Connection, as_of, scope: engine.Scope | None = None) -> dict:
    """Members, purchases and first / last order day up to ``as_of`` within ``scope`` (default: the chain).

    ``members`` are the scope's (:mod:`crmkit.engine.scope`: by their home),
    ``orders`` the purchases rung up in it (:mod:`crmkit.engine.activity`: an
    order cancelled in full by its returns is none), as the KPIs count them.
    """
    d = as_date(as_of)
    q = engine.member_activity(d) + engine.universe(d, scope)
    members, orders, first, last = q.execute(con, f"""
SELECT (SELECT count(*) FROM universe), count(CASE WHEN o.purchase THEN 1 END), min(o.day), max(o.day)
FROM orders o LEFT JOIN stores s ON s.store_id = o.store_id
WHERE {engine.Scope.sql("s.region", "o.store_id", "o.channel")}""").fetchone()
    return {"members": members, "orders": orders, "first": first, "last": last}


def scores_line(score_run, lang: str = "zh") -> str:
    """Which scores a report shows: the snapshot's caption (:class:`crmkit.engine.snapshots.ScoreRun`),
    or, for None, that they were computed for this report."""
    return score_run.caption(lang) if score_run is not None else t("report.scores_now", lang)


def header_html(title: str, span: dict, as_of, lang: str = "zh", *, period: tuple | None = None,
                filters: dict | None = None, generated_at: dt.datetime | None = None,
                scores: str | None = None) -> str:
    """The report's title block: date, period, data span, filters, the scores used and a generated-at line."""
    shown = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    lines = [(t("report.as_of", lang), str(as_date(as_of)))]
    if period is not None:
        lines.append((t("report.period", lang), f"{period[0]} – {period[1]}"))
    lines.append((t("report.data", lang), t("report.data_span", lang).format(
        members=viz.fmt_int(span["members"]), orders=viz.fmt_int(span["orders"]),
        first=span["first"] or "–", last=span["last"] or "–")))
    lines.append((t("report.filter", lang),
                  "; ".join(f"{column_label(k, lang)} = {v}" for k, v in shown.items())
                  or t("report.none", lang)))
    if scores is not None:
        lines.append((t("report.scores", lang), scores))
    at = (generated_at or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in lines)
    return (f"<h1>{html.escape(title)}</h1><table class='crmkit-header'>{rows}</table>"
            f"<p style='color:#777;font-size:12px'>"
            f"{html.escape(t('report.generated', lang).format(at=at, version=__version__))}</p>")


def header(con: Connection, title_key: str, as_of, lang: str = "zh", *,
           period: tuple | None = None, value: bool = False, score_run=False,
           scope: engine.Scope | None = None, **filters) -> None:
    """Display the title block of a report (see :func:`header_html`) and the data warnings under it.

    With a ``scope`` (:func:`report_scope`) the data span is the scope's and
    its fields are the filters shown; the data warnings, which check the whole
    chain's data, say so.

    ``score_run`` is, in a report that shows scores, the snapshot it reads
    (:func:`crmkit.dashboard.value.score_run`), or None when it scores for
    itself; the title block then says which (:func:`scores_line`). False (the
    default): the report shows no scores.

    The warnings (:func:`crmkit.dashboard.sections.data_warnings`) are one
    sentence each: an as-of outside the data in every report, and with
    ``value`` (reports that show customer value) outlier orders' share of
    sales and amounts that are all zero.
    """
    from .sections import data_warnings, show_warnings

    scope = engine.Scope.of(scope, **{k: v for k, v in filters.items() if k in engine.scope.FIELDS})
    shown = {**filters, **scope.fields()}
    show_html(header_html(t(title_key, lang), data_span(con, as_of, scope), as_of, lang, period=period,
                          filters=shown, scores=None if score_run is False else scores_line(score_run, lang)))
    warnings = data_warnings(con, as_of, lang, value=value)
    if not scope.chain:
        warnings = [w + t("scope.chain_checks", lang) for w in warnings]
    show_warnings(warnings)


def unit_filter(region: str | None, store_id: str | None) -> tuple[str | None, str | None]:
    """The grouping (``by`` of :mod:`crmkit.lifecycle`) and value a region / store filter selects."""
    if store_id not in (None, ""):
        return "store", store_id
    if region not in (None, ""):
        return "region", region
    return None, None


def report_scope(con: Connection, region=None, store_id=None, channel=None) -> engine.Scope:
    """The :class:`crmkit.engine.Scope` of a report's ``region``, ``store_id`` and ``channel``
    parameters (None or empty: not filtered), or one sentence naming the valid choices."""
    return engine.scope.check(con, engine.Scope.of(region=region, store_id=store_id, channel=channel))


def scope_label(scope: engine.Scope, lang: str = "zh") -> str:
    """The scope's fields in words: ``区域 = 华南; 门店 = S001``."""
    return "; ".join(f"{column_label(k, lang)} = {v}" for k, v in scope.fields().items())


def scope_note(lang: str = "zh", *, scope: engine.Scope | None = None, model: bool = False,
               region: str | None = None, store_id: str | None = None) -> None:
    """Under a section that shows the whole chain, in a scoped report, say that it is the chain's benchmark.

    ``model``: the section shows a model fitted on the chain (its counts and
    parameters are the chain's; members' scores do not depend on the scope).
    The note carries ``class="crmkit-chain"``, so that a reader (or a test) can
    tell the chain's benchmark sections from the scope's own.
    """
    scope = engine.Scope.of(scope, region=region, store_id=store_id)
    if not scope.chain:
        text = t("scope.chain_model" if model else "scope.chain", lang).format(scope=scope_label(scope, lang))
        show_html(f'<p class="crmkit-chain"><i>{html.escape(text)}</i></p>')
