"""Campaign charts in the house style (:mod:`crmkit.viz`): the treatment funnel and lifts by level.

The only campaign module that draws; :mod:`crmkit.campaigns` imports it (and
matplotlib) on first use of :func:`plot_funnel` or :func:`plot_lift`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import viz
from ..i18n import t
from ..segments import segment_label
from ..tiers import tier_label
from .measurement import MIN_LEVEL
from .queries import FUNNEL_STAGES


def plot_lift(table: pd.DataFrame, lang: str = "zh"):
    """Lift with its interval (dark) and Bonferroni-adjusted interval (light) per level of
    :func:`~crmkit.campaigns.measurement.lift_by`."""
    metric, by = table.attrs["metric"], table.attrs["by"]
    label = {"tier": tier_label, "segment": segment_label}.get(by, lambda v, _lang: v)
    attrs = dict(table.attrs)
    small = table[table["too_small"]]
    table = table[~table["too_small"]]
    caution = attrs["caution"][lang]
    if len(small):
        caution += " " + t("campaign.too_small_levels", lang).format(
            n=MIN_LEVEL, levels=", ".join(f"{label(v, lang)} ({a:,} / {b:,})" for v, a, b in
                                          zip(small[by], small["n_treatment"], small["n_control"])))
    fig, ax = viz.new_figure(figsize=(8, 0.45 * max(len(table), 1) + 1.8))
    y = np.arange(len(table))[::-1]
    ax.hlines(y, table["adj_low"], table["adj_high"], color=viz.PALETTE[0], alpha=0.3, linewidth=6,
              label=t("campaign.adjusted", lang))
    ax.errorbar(table["lift"], y, xerr=[table["lift"] - table["lift_low"], table["lift_high"] - table["lift"]],
                fmt="o", color=viz.PALETTE[0], capsize=3,
                label=t("campaign.interval", lang).format(level=round(100 * (1 - attrs["alpha"]))))
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, [label(v, lang) for v in table[by]])
    ax.xaxis.set_major_formatter(viz.FuncFormatter(lambda x, _pos: viz.fmt_pp(x, 0)) if metric == "conversion"
                                 else viz.money_formatter)
    by_label = t({"tier": "tier.tier", "segment": "rfm.segment"}.get(by, by), lang)
    ax.set_title(t("campaign.lift_title", lang).format(metric=t(f"campaign.{metric}", lang), by=by_label))
    ax.set_xlabel(t("campaign.lift", lang))
    ax.legend(loc="best", fontsize="small")
    fig.text(0.01, 0.01, caution, fontsize=7, wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_funnel(rows: pd.DataFrame, campaign_id: str, lang: str = "zh"):
    """Horizontal bars of the treatment funnel (first row of :func:`~crmkit.campaigns.measurement.funnel`),
    with shares of targeted."""
    r = rows.iloc[0]
    counts = [int(r[s]) for s in FUNNEL_STAGES]
    fig, ax = viz.new_figure()
    y = np.arange(len(counts))[::-1]
    ax.barh(y, counts, color=viz.PALETTE[0])
    for yi, c in zip(y, counts):
        ax.text(c, yi, f" {c:,} ({viz.fmt_pct(c / counts[0]) if counts[0] else '–'})", va="center")
    ax.set_yticks(y, [t(f"campaign.{s}", lang) for s in FUNNEL_STAGES])
    ax.set_xlabel(t("campaign.members_count", lang))
    ax.xaxis.set_major_formatter(viz.int_formatter)
    ax.set_title(t("campaign.funnel_title", lang).format(id=campaign_id))
    ax.set_xlim(0, max(counts[0], 1) * 1.25)
    fig.tight_layout()
    return fig
