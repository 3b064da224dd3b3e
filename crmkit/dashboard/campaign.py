"""One campaign as a manager reads it: header, verdict, lifts and totals with their 95% intervals.

Everything is built from ``CampaignResult.to_dict(lang)`` (the JSON contract of
``crmkit campaign-roi --json``), so the report shows exactly what the CLI reports.
"""
from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable

import pandas as pd

from ..engine.store import CatalogError, Connection
from .. import campaigns, viz
from ..errors import CrmkitError
from ..i18n import register, t
from ..lifecycle import as_date
from .tables import number_format

register({
    "report.campaign_metric": ("指标", "Metric"),
    "report.campaign_item": ("项目", "Item"),
    "report.campaign_estimate": ("估计（95% 区间）", "Estimate (95% interval)"),
    "report.campaign_total_cost": ("总成本", "Total cost"),
    "report.campaign_net_margin": ("增量毛利 − 成本", "Incremental margin − cost"),
    "report.campaign_roi_short": ("ROI", "ROI"),
    "report.campaign_p_value": ("单侧 p 值（原假设：不回本）", "One-sided p-value (H0: does not pay)"),
    "report.campaign_id": ("活动编号", "Campaign"),
    "report.campaign_name": ("活动名称", "Name"),
    "report.campaign_roi_ci": ("ROI（95% 区间）", "ROI (95% interval)"),
    "report.campaign_margin_ci": ("增量毛利（95% 区间）", "Incremental margin (95% interval)"),
})

_METRIC_FORMATS = {"conversion": viz.fmt_pct, "orders_per_member": number_format(3),
                   "revenue_per_member": lambda x: viz.fmt_money(x, 2),
                   "margin_per_member": lambda x: viz.fmt_money(x, 2)}


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _signed(fmt: Callable[[object], str]) -> Callable[[object], str]:
    return lambda x: ("+" if _num(x) > 0 else "") + fmt(_num(x))


def campaign_lifts(result: dict, lang: str = "zh") -> pd.DataFrame:
    """Treatment, control and lifts with 95% intervals per metric, from ``CampaignResult.to_dict()``."""
    rows = []
    for metric, fmt in _METRIC_FORMATS.items():
        m = result[metric]
        rows.append((t(f"campaign.{metric}", lang), fmt(_num(m["treatment"])), fmt(_num(m["control"])),
                     # a difference of two rates is in percentage points, not per cent
                     viz.fmt_interval(_num(m["lift"]), m["lift_ci"],
                                      _signed(viz.fmt_pp if metric == "conversion" else fmt)),
                     viz.fmt_interval(_num(m["lift_rel"]), m["lift_rel_ci"], _signed(viz.fmt_pct))))
    return pd.DataFrame(rows, dtype=object, columns=[
        t("report.campaign_metric", lang), t("campaign.treatment", lang), t("campaign.control", lang),
        t("campaign.lift", lang), t("campaign.lift_rel", lang)])


def campaign_totals(result: dict, lang: str = "zh") -> pd.DataFrame:
    """Incremental orders, revenue and margin, cost, net margin and ROI with 95% intervals."""
    money, signed_money = viz.fmt_money, _signed(viz.fmt_money)
    rows = [
        ("campaign.incremental_orders", viz.fmt_interval(_num(result["incremental_orders"]),
                                                         result["incremental_orders_ci"], _signed(viz.fmt_int))),
        ("campaign.incremental_revenue", viz.fmt_interval(_num(result["incremental_revenue"]),
                                                          result["incremental_revenue_ci"], signed_money)),
        ("campaign.incremental_margin", viz.fmt_interval(_num(result["incremental_margin"]),
                                                         result["incremental_margin_ci"], signed_money)),
        ("report.campaign_total_cost", money(_num(result["cost"]))),
        ("report.campaign_net_margin", viz.fmt_interval(_num(result["net_margin"]), result["net_margin_ci"],
                                                 signed_money)),
        ("report.campaign_roi_short", viz.fmt_interval(_num(result["roi"]), result["roi_ci"], _signed(viz.fmt_pct))),
        ("report.campaign_p_value", viz.fmt_p_value(result["p_value"])),
    ]
    return pd.DataFrame([(t(k, lang), v) for k, v in rows], dtype=object,
                        columns=[t("report.campaign_item", lang), t("report.campaign_estimate", lang)])


def campaign_header_html(result: dict, lang: str = "zh") -> str:
    """Campaign name, attribution window, group sizes and design, from ``CampaignResult.to_dict()``."""
    start = dt.datetime.fromisoformat(result["window"]["start"])
    end = dt.datetime.fromisoformat(result["window"]["end"])  # exclusive
    last = (end - dt.timedelta(days=1)).date()
    design = result["incrementality"]
    lines = [
        t("campaign.title", lang).format(id=result["campaign_id"], name=result["name"] or "–"),
        t("campaign.window", lang).format(start=start.date(), end=last, days=(end - start).days),
        t("campaign.members", lang).format(n_t=result["n_treatment"], n_c=result["n_control"],
                                           n_contacted=result["n_contacted"]),
        t("campaign.design", lang).format(level=round(100 * design["confidence"]),
                                          method=t(f"campaign.method.{design['interval_method']}", lang))
        if design else t("campaign.descriptive", lang),
    ]
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def verdict_html(result: dict, lang: str = "zh") -> str:
    """The verdict in large type, its sentence, and any warnings (``to_dict(lang)`` texts)."""
    label = result["verdict_label"] or "–"
    colour = {"pays": "#3a9e6f", "does not pay": "#c0392b"}.get(result["verdict"], "#d4a017")
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in result["warnings"])
    colon = "：" if lang == "zh" else ": "
    return (f"<p style='font-size:20px'><b>{html.escape(t('campaign.verdict', lang))}{colon}</b>"
            f"<span style='color:{colour}'><b>{html.escape(label)}</b></span></p>"
            f"<p>{html.escape(result['verdict_text'] or '')}</p>"
            + (f"<p><b>{html.escape(t('campaign.warnings', lang))}</b></p><ul>{warnings}</ul>" if warnings else ""))


def choose_campaign(con: Connection, as_of, campaign_id: str | None = None) -> str:
    """``campaign_id`` when given, else the campaign that ended last on or before ``as_of`` (ties: highest id)."""
    if campaign_id not in (None, ""):
        return str(campaign_id)
    row = con.execute('SELECT campaign_id FROM campaigns WHERE "end" <= $d ORDER BY "end" DESC, campaign_id DESC '
                      "LIMIT 1", {"d": as_date(as_of)}).fetchone()
    if row is None:
        raise CrmkitError(f"no campaign has ended by {as_date(as_of)}; name one with --param campaign_id=….")
    return row[0]


def campaign_skip_reason(con: Connection, as_of, campaign_id: str | None = None) -> str | None:
    """Why there is no campaign to review as of ``as_of``, in one sentence; None when there is one.

    A named ``campaign_id`` is always reviewed (an unknown one fails loudly in
    the report). Otherwise the report reviews the campaign that ended last
    (:func:`choose_campaign`), and there is none when the store holds no
    campaigns or none has ended by ``as_of``: ``crmkit report`` then skips
    the campaign report, names it as skipped with this reason, and exits 0.
    """
    if campaign_id not in (None, ""):
        return None
    d = as_date(as_of)
    try:
        total, ended, first_end = con.execute(
            'SELECT count(*), count(*) FILTER (WHERE "end" <= $d), min("end") FROM campaigns', {"d": d}).fetchone()
    except CatalogError:  # a store without the campaigns table
        total, ended, first_end = 0, 0, None
    if total == 0:
        return "the store holds no campaigns, so there is no campaign to review."
    if ended == 0:
        first = f" (the first ends {first_end})" if first_end is not None else ""
        return (f"no campaign has ended by {d}{first}, so there is none to review yet; "
                f"name one with --param campaign_id=… to review it before it ends.")
    return None


def campaigns_ended(con: Connection, start, end) -> list[str]:
    """Ids of the campaigns whose end date is within ``start``..``end``, by end date."""
    return [r[0] for r in con.execute(
        'SELECT campaign_id FROM campaigns WHERE "end" BETWEEN $s AND $e ORDER BY "end", campaign_id',
        {"s": as_date(start, "start"), "e": as_date(end, "end")}).fetchall()]


def campaign_overview(con: Connection, start, end, lang: str = "zh") -> pd.DataFrame:
    """Each campaign that ended within ``start``..``end``, measured: verdict, incremental margin, ROI (95%)."""
    results = [campaigns.measure(con, cid).to_dict(lang) for cid in campaigns_ended(con, start, end)]
    rows = [(r["campaign_id"], r["name"] or "–", r["verdict_label"] or "–",
             viz.fmt_interval(_num(r["incremental_margin"]), r["incremental_margin_ci"], _signed(viz.fmt_money)),
             viz.fmt_interval(_num(r["roi"]), r["roi_ci"], _signed(viz.fmt_pct))) for r in results]
    return pd.DataFrame(rows, dtype=object, columns=[
        t("report.campaign_id", lang), t("report.campaign_name", lang), t("campaign.verdict", lang),
        t("report.campaign_margin_ci", lang), t("report.campaign_roi_ci", lang)])
