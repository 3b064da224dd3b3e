"""Customer value in a report: fitted models, total CLV with its interval, scores for the pyramid."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..engine.store import Connection
from .. import viz
from ..i18n import register, t
from .tables import show_html, show_table

register({
    "model.fit": ("{label}：{members} 名会员，对数似然 {ll}，{converged}",
                  "{label}: {members} members, log-likelihood {ll}, {converged}"),
    "model.converged": ("已收敛", "converged"),
    "model.not_converged": ("未收敛", "did not converge"),
    "value.total": ("未来 {days} 天的客户终身价值（CLV）合计 {clv}，{level} 预测区间 {low} – {high}，"
                    "共 {members} 名有购买的会员。",
                    "Total customer lifetime value (CLV) over the next {days} days: {clv}, "
                    "{level} prediction interval {low} – {high}, over {members} members who have bought."),
    "churn.check_none": (
        "历史太短，无法回测各个流失风险评分（需要两个流失窗口的数据），见上方说明。",
        "The history is too short to backtest the churn-risk scores (it takes two churn windows); see the "
        "note above."),
    "churn.check_how": (
        "每个评分只用 {start} 及以前的数据计算，再以 {start} 至 {end} 间谁没有再购买来检验（{members} 名会员，"
        "其中 {churned} 名流失）。AUC：随机取一名流失与一名未流失的会员，评分把前者排得更危险的概率；"
        "提升：相对于“预期购买次数”这一基准的 AUC 差，附 95% 区间。",
        "Each score was computed with the data up to {start} only, then judged on who bought nothing from "
        "{start} to {end} ({members} members, {churned} churned). AUC: the chance that the score ranks a random "
        "churner above a random member who stayed; gain: the AUC over that of the baseline, expected "
        "purchases, with its 95% interval."),
    "model.no_dropout": (
        "会员活跃概率（P(alive)）的中位数为 {median}：模型在这些数据中几乎看不到会员流失，把几乎每位买过的会员都"
        "视为仍在购买，因此 P(alive) 分不出活跃与已流失的会员（这要看流失风险：未来 {days} 天内是否购买），"
        "CLV 也假定会员按各自过去的频率一直买下去，若部分会员其实已经流失，CLV 会偏高。",
        "The median member's P(alive) is {median}: the model sees almost no dropout in these data and counts "
        "nearly every member who has bought as still a customer, so P(alive) cannot tell active members from "
        "lapsed ones (churn risk, a purchase or none in the next {days} days, does that), and CLV assumes "
        "members keep buying at their own past rate, which overstates it if some have in fact left."),
})

#: Median P(alive) above which a report explains that the model sees almost no dropout.
NO_DROPOUT_P_ALIVE = 0.98


def _p_alive_pct(x: float) -> str:
    """A P(alive) near 1 with the digits that matter: 99.96%, not a rounded 100.0%."""
    if x >= 1:
        return "100%"
    return f"{x * 100:.2f}%" if x > 0.999 else f"{x * 100:.1f}%"


def no_dropout_note(model, p_alive, lang: str = "zh", *, frequency=None, churn_days: int = 180) -> str | None:
    """One sentence when the fitted model implies almost no dropout, else None.

    That is when the median P(alive) of the repeat buyers is above
    :data:`NO_DROPOUT_P_ALIVE`, or when the model is the no-dropout fallback
    (``fallback_from_`` set, see :func:`crmkit.clv.fit_with_fallback`), where
    every P(alive) is 1. ``p_alive`` has one value per member who has bought;
    ``frequency`` (their repeat purchases) restricts the median to those with
    at least one repeat purchase, when there are some: in BG/NBD and MBG/NBD
    a member can only drop out after a purchase, so P(alive) is 1 for every
    one-time buyer by construction, and a store of mostly one-time buyers
    would otherwise look dropout-free. The sentence says what a P(alive)
    pinned near 1 means for the numbers: it does not separate active from
    lapsed members (churn risk over ``churn_days`` does), and CLV assumes
    members keep buying.
    """
    values = np.asarray(p_alive, dtype=float)
    if frequency is not None:
        repeat = np.asarray(frequency, dtype=float) > 0
        if repeat.any():
            values = values[repeat]
    values = values[np.isfinite(values)]
    fallback = getattr(model, "fallback_from_", None) is not None
    if not values.size and not fallback:
        return None
    median = float(np.median(values)) if values.size else 1.0
    if not (fallback or median > NO_DROPOUT_P_ALIVE):
        return None
    return t("model.no_dropout", lang).format(median=_p_alive_pct(median), days=viz.fmt_int(churn_days))


def fit_note(model, lang: str = "zh") -> str | None:
    """The model's own note on its fit in ``lang`` (``fit_note_``: a fallback or a limit), or None."""
    note = getattr(model, "fit_note_", None)
    if isinstance(note, dict):
        return note.get(lang) or note.get("en")
    return note or None


def show_validation(con: Connection, as_of, holdout_days: int, model: str = "bgnbd",
                    lang: str = "zh") -> None:
    """The model's validation on a holdout period: tracking, holdout by frequency, the models compared.

    The holdout is the ``holdout_days`` before ``as_of``, shrunk to fit the
    history (:func:`crmkit.clv.validation.fit_window`, with a sentence when
    it is); ``model`` is fitted on the calibration period before it, with the
    no-dropout fallback (:func:`crmkit.churn.fit_btyd`) named in a note.
    Raises a one-sentence CrmkitError when the check cannot be made.
    """
    from .. import churn, rfm
    from ..clv import validation

    window = validation.fit_window(con, as_of, holdout_days, kind="holdout")
    if window.shrunk:
        show_html(f'<div class="crmkit-note">{html.escape(window.note(lang))}</div>')
    holdout = rfm.calibration_holdout(con, window.start, as_of)
    calibrated = churn.fit_btyd(holdout, model)
    note = fit_note(calibrated, lang)
    if note:
        show_html(f'<div class="crmkit-note">{html.escape(note)}</div>')
    viz.show(validation.plot_tracking(validation.tracking(con, calibrated, window.start, as_of), lang=lang))
    viz.show(validation.plot_calibration_vs_holdout(validation.calibration_vs_holdout(calibrated, holdout),
                                                    lang=lang))
    show_table(validation.compare_models(holdout, lang=lang), lang)


def show_score_choice(churn_risk, lang: str = "zh") -> None:
    """The churn check: how ``churn_risk`` (a fitted :class:`crmkit.churn.ChurnRisk`) chose its score.

    Every candidate score was computed with data up to a past date only and
    judged by AUC on who then bought nothing up to the as-of
    (:class:`crmkit.churn.ScoreBacktest`): train on the past, judge on the
    future, never cross-fitted on the window it is judged on. Raises
    :class:`SectionUnavailable` with one sentence when the history was too
    short to backtest.
    """
    from .sections import SectionUnavailable

    bt = churn_risk.backtest_
    if bt is None:
        raise SectionUnavailable({code: t("churn.check_none", code) for code in ("zh", "en")})
    how = t("churn.check_how", lang).format(start=bt.scored_on, end=bt.judged_to, members=f"{bt.members:,}",
                                            churned=f"{bt.churned:,}")
    show_html(f"<p>{html.escape(how)}</p>")
    show_table(bt.table(lang), lang, columns=["score", "auc", "auc_low", "auc_high", "gain", "gain_low",
                                              "gain_high", "chosen"])


def show_band_counts(scores, lang: str = "zh") -> None:
    """Members per churn band, each band named by its range of churn probability."""
    show_table(scores.band_counts(lang).rename(columns={"label": "churn_band_range"}), lang,
               columns=["churn_band_range", "members", "share"])


def score_run(con: Connection, as_of, **params):
    """The score snapshot a report reads: the newest run of ``as_of`` with these scoring ``params``
    (:func:`crmkit.engine.snapshots.settings`) and the store's data, or None when none matches."""
    from ..engine.snapshots import latest_run

    return latest_run(con, as_of, params)


def report_scores(con: Connection, as_of, run, *, scope=None, **params):
    """The :class:`crmkit.scoring.Scores` of ``run`` (:func:`score_run`), or, when it is None, scored now;
    with a ``scope``, those of its members only (:func:`scoped_scores`).

    Scored now, they are this report's only: a report reads the store
    read-only. ``crmkit report`` records a run in its copy of the store before
    it runs the notebooks (:func:`crmkit.reports.score_snapshot_copy`), so this
    happens only for a notebook run by hand, or when that scoring failed.
    """
    from ..engine.snapshots import read_scores, settings
    from ..scoring import score_members

    stored = read_scores(con, run) if run is not None else None
    scores = stored if stored is not None else score_members(con, as_of, **settings(**params))
    return scoped_scores(con, scores, scope)


def scoped_scores(con: Connection, scores, scope=None):
    """``scores`` (:class:`crmkit.scoring.Scores`) of the members of ``scope`` only (:mod:`crmkit.engine.scope`).

    Each member keeps the scores the chain's models gave them; ``table`` holds
    the scope's members, and ``total_clv`` is their total with its own interval
    (:func:`crmkit.clv.total_value` on their rows, the chain's fits). The
    churn-band cut-offs stay the chain's, so a band means the same in every
    report. The chain (None) gives ``scores`` unchanged.
    """
    import dataclasses

    from ..clv.value import total_value
    from ..engine import Scope
    from ..engine.scope import member_ids
    from ..errors import CrmkitError

    scope = Scope.of(scope)
    if scope.chain:
        return scores
    table = scores.table[scores.table["member_id"].isin(member_ids(con, scores.as_of, scope))]
    if table.empty:
        raise CrmkitError(f"no member of this scope ({', '.join(scope.fields().values())}) has bought "
                          f"by {scores.as_of}: there are no scores to show.")
    total = total_value(scores.model, scores.spend, *(table[c] for c in ("frequency", "recency", "T", "monetary")),
                        horizon_days=scores.horizon_days, discount_rate_annual=scores.discount_rate,
                        margin=scores.margin, period=scores.churn.period, interval=scores.interval)
    return dataclasses.replace(scores, table=table.reset_index(drop=True), total_clv=total, part=True)


def use_scores(con: Connection, scores: pd.DataFrame) -> None:
    """Let queries on ``con`` see ``scores`` as ``member_scores`` (a temporary view; the store is not written).

    Reports read the scores of their own horizon and discount rate
    (:func:`report_scores`) and then the value pyramid from them, on a read-only store.
    """
    complete = getattr(con, "complete", None)
    if complete is not None:  # DuckDB 2 refuses register() while a result is unread (a section that stepped
        complete()            # aside mid-query, or a fetchone); finish it first
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
    note = fit_note(model, lang)
    if note:  # the model fitted is not the one asked for, or its best fit is at a limit: say so first
        show_html(f'<div class="crmkit-note">{html.escape(note)}</div>')
    show_table(model.summary(0.95), lang)


def total_value_html(total: pd.Series, horizon_days: int, interval: float, lang: str = "zh") -> str:
    """One sentence: total CLV over the horizon with its interval (``Scores.total_clv``)."""
    return "<p>" + html.escape(t("value.total", lang).format(
        days=viz.fmt_int(horizon_days), clv=viz.fmt_money(total["clv"]), level=viz.fmt_pct(interval, 0),
        low=viz.fmt_money(total["clv_low"]), high=viz.fmt_money(total["clv_high"]),
        members=viz.fmt_int(total["members"]))) + "</p>"
