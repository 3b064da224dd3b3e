"""Customer value in a report: fitted models, total CLV with its interval, scores for the pyramid."""
from __future__ import annotations

import html

import duckdb
import pandas as pd

from .. import viz
from ..i18n import register, t
from .tables import show_html, show_table

register({
    "model.fit": ("{label}：{members} 名会员，对数似然 {ll}，{converged}",
                  "{label}: {members} members, log-likelihood {ll}, {converged}"),
    "model.converged": ("已收敛", "converged"),
    "model.not_converged": ("未收敛", "did not converge"),
    "value.total": ("未来 {days} 天的客户终身价值（CLV）合计 {clv}，{level} 区间 {low} – {high}，"
                    "共 {members} 名有购买的会员。",
                    "Total customer lifetime value (CLV) over the next {days} days: {clv}, "
                    "{level} interval {low} – {high}, over {members} members who have bought."),
})


def use_scores(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame) -> None:
    """Let queries on ``con`` see ``scores`` as ``member_scores`` (a temporary view; the store is not written).

    Reports score members with their own horizon and discount rate
    (:func:`crmkit.scoring.score_members`) and then read the value pyramid from
    them, on a read-only store.
    """
    con.register("member_scores", scores)


def model_caption(model) -> dict:
    """Name and fit statistics of a fitted crmkit model (``as_dict()``), for :func:`show_model`."""
    fit = model.as_dict()
    return {"label": model.label, "members": viz.fmt_int(fit["n_members"]),
            "ll": f"{fit['log_likelihood']:,.1f}", "converged": bool(fit["converged"])}


def show_model(model, lang: str = "zh") -> None:
    """Display a fitted model: its fit statistics and parameters with 95% intervals."""
    cap = model_caption(model)
    cap["converged"] = t("model.converged" if cap["converged"] else "model.not_converged", lang)
    show_html(f"<p><b>{html.escape(t('model.fit', lang).format(**cap))}</b></p>")
    show_table(model.summary(0.95), lang)


def total_value_html(total: pd.Series, horizon_days: int, interval: float, lang: str = "zh") -> str:
    """One sentence: total CLV over the horizon with its interval (``Scores.total_clv``)."""
    return "<p>" + html.escape(t("value.total", lang).format(
        days=viz.fmt_int(horizon_days), clv=viz.fmt_yuan(total["clv"]), level=viz.fmt_pct(interval, 0),
        low=viz.fmt_yuan(total["clv_low"]), high=viz.fmt_yuan(total["clv_high"]),
        members=viz.fmt_int(total["members"]))) + "</p>"
