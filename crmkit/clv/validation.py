"""Does the model hold up on data it has not seen? Tables and figures.

Each check returns a table; ``plot_*`` draws it (``lang`` "zh" or "en",
into ``ax`` or a new figure) and returns the figure:

- :func:`calibration_vs_holdout`: expected vs actual holdout purchases by
  calibration frequency (Fader, Hardie & Lee 2005, figure 4), and
  :func:`holdout_totals` for the total with its interval;
- :func:`tracking`: cumulative repeat purchases of the calibration cohort
  over calibration and holdout, actual vs model (FHL 2005, figure 2);
- :func:`p_alive_history`: one member's P(alive) day by day;
- :func:`compare_models`: the transaction models side by side on holdout error;
- :func:`fit_window`: a holdout or backtest window that fits the history.

Windows fit the history. The *history* as of a date is the number of days
from the first purchase day (a day with a purchase line, up to that date) to
that date. A holdout of ``holdout_days`` needs data before it to fit the
model on: on a short history the window shrinks to at most a share of the
history (a third for the model's holdout, half for the churn check, so that
at least as much data precedes it), and when even that is shorter than
:data:`MIN_WINDOW_DAYS` the check steps aside with one sentence
(:class:`WindowTooShort`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import cache, i18n
from ..errors import CrmkitError, ModelError, NoInteriorMaximum
from ..rfm import as_date, compress, period_days, purchase_days, purchase_timeline
from ..viz import fmt_pct, int_formatter, new_figure
from . import MODELS
from ._base import RepeatBuyingModel
from .value import forecast_purchases, log_interval, log_param_gradient, log_variance

i18n.register({
    "clv.calibration_frequency": ("校准期复购次数", "Repeat purchases in calibration"),
    "clv.holdout_purchases": ("验证期人均复购次数", "Mean repeat purchases in holdout"),
    "clv.actual": ("实际", "Actual"),
    "clv.expected": ("模型预测", "Model"),
    "clv.interval": ("90% 区间", "90% interval"),
    "clv.calibration_vs_holdout": ("验证期复购：实际与预测", "Holdout purchases: actual vs model"),
    "clv.cumulative_repeat": ("累计复购次数", "Cumulative repeat purchases"),
    "clv.tracking": ("累计复购追踪", "Cumulative repeat purchases over time"),
    "clv.calibration_end": ("校准期结束", "End of calibration"),
    "clv.date": ("日期", "Date"),
    "clv.p_alive": ("活跃概率", "P(alive)"),
    "clv.purchase": ("购买", "Purchase"),
    "clv.p_alive_history": ("会员 {member} 的活跃概率", "P(alive) of member {member}"),
    "clv.mae": ("人均绝对误差", "Mean absolute error per member"),
    "clv.rmse": ("人均均方根误差", "Root mean squared error per member"),
    "clv.model_comparison": ("模型比较：验证期误差", "Model comparison: holdout error"),
    "clv.total_error": ("总量误差", "total error"),
    "clv.per_member": ("每位会员的购买次数", "Purchases per member"),
    "clv.fallback_row": ("不含流失的模型：{models} 在这些数据上没有内部最优解，故改用此模型",
                         "the model without dropout, used because {models} {have} no interior maximum on "
                         "these data"),
    "window.holdout": ("留出期", "holdout period"),
    "window.churn": ("流失检验窗口", "churn-check window"),
    "window.shrunk.holdout": (
        "留出期由 {wanted} 天缩短为 {days} 天，以适应 {history} 天的历史数据：模型用此前的 {before} 天拟合。",
        "The holdout period is shortened from {wanted} to {days} days to fit the {history} days of history, "
        "so that the model is fitted on the {before} days before it."),
    "window.shrunk.churn": (
        "流失检验的窗口由 {wanted} 天缩短为 {days} 天，以适应 {history} 天的历史数据：会员按此前的 {before} 天"
        "评分，流失指此后 {days} 天内无购买。",
        "The churn check's window is shortened from {wanted} to {days} days to fit the {history} days of "
        "history: members are scored on the {before} days before it, and churn means no purchase in the "
        "{days} days after."),
    "window.too_short": (
        "截至 {as_of} 的历史数据只有 {history} 天，不足以做这项检验：{what}最多占历史的 {share}（{cap} 天），"
        "少于最短的 {minimum} 天。",
        "The history up to {as_of} covers only {history} days, too short for this check: its {what} may take "
        "at most {share} of it ({cap} days), less than the {minimum}-day minimum."),
    "window.no_history": ("截至 {as_of} 没有任何购买，无法做这项检验。",
                          "There is no purchase up to {as_of}, so this check cannot be made."),
    "window.share.3": ("三分之一", "a third"),
    "window.share.2": ("一半", "half"),
})

#: The shortest holdout or backtest window, in days, below which a check steps aside.
MIN_WINDOW_DAYS = 28
#: Share of the history a window may take at most: the model's holdout, the churn check.
HOLDOUT_SHARE, CHURN_SHARE = 1 / 3, 1 / 2


class WindowTooShort(CrmkitError):
    """The history is too short for a holdout or backtest window; ``sentences`` holds it in zh and en."""

    def __init__(self, sentences: dict[str, str]):
        self.sentences = dict(sentences)
        super().__init__(self.sentences["en"])


@dataclass(frozen=True)
class Window:
    """A holdout or backtest window that fits the history (see the module docstring).

    ``days`` is the window used, ``wanted`` the window asked for,
    ``history_days`` the days from the first purchase day to ``as_of``, and
    ``kind`` "holdout" or "churn". The window is ``start`` (exclusive, the
    calibration end) to ``as_of`` (inclusive).
    """

    as_of: dt.date
    days: int
    wanted: int
    history_days: int
    kind: str = "holdout"

    @property
    def shrunk(self) -> bool:
        """Whether the window is shorter than asked, to fit the history."""
        return self.days < self.wanted

    @property
    def start(self) -> dt.date:
        """The last day before the window: the end of the calibration period."""
        return self.as_of - dt.timedelta(days=self.days)

    def note(self, lang: str = "zh") -> str | None:
        """One sentence when the window was shortened to fit the history, else None."""
        if not self.shrunk:
            return None
        return i18n.t(f"window.shrunk.{self.kind}", lang).format(
            wanted=f"{self.wanted:,}", days=f"{self.days:,}", history=f"{self.history_days:,}",
            before=f"{self.history_days - self.days:,}")


def history_days(con, as_of, *, table: str = "transactions") -> int | None:
    """Days from the first purchase day up to ``as_of`` to ``as_of`` (None when there is no purchase)."""
    as_of = as_date(as_of, "as_of")
    first = con.execute(
        f"SELECT CAST(min(order_time) AS DATE) FROM \"{table}\" WHERE order_time < $end "
        "AND member_id IS NOT NULL AND coalesce(txn_type, 'sale') <> 'return'",
        {"end": dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())}).fetchall()[0][0]
    return None if first is None else (as_of - first).days


def fit_window(con, as_of, days: int, *, kind: str = "holdout", share: float | None = None,
               minimum: int = MIN_WINDOW_DAYS, table: str = "transactions") -> Window:
    """The window of ``days`` before ``as_of``, shrunk to at most ``share`` of the history.

    ``kind`` is "holdout" (the model's validation; ``share`` defaults to
    :data:`HOLDOUT_SHARE`) or "churn" (the churn check; :data:`CHURN_SHARE`).
    Raises :class:`WindowTooShort` (one sentence in zh and en) when the
    shrunk window would be shorter than ``minimum`` days.
    """
    as_of = as_date(as_of, "as_of")
    wanted = int(days)
    if wanted <= 0:
        raise CrmkitError(f"a {kind} window must be a positive number of days, not {days!r}.")
    share = share if share is not None else (CHURN_SHARE if kind == "churn" else HOLDOUT_SHARE)
    history = history_days(con, as_of, table=table)
    if history is None:
        raise WindowTooShort({lang: i18n.t("window.no_history", lang).format(as_of=as_of) for lang in i18n.LANGS})
    cap = int(math.floor(history * share))
    used = min(wanted, cap)
    if used < minimum:
        share_key = f"window.share.{round(1 / share)}"
        raise WindowTooShort({lang: i18n.t("window.too_short", lang).format(
            as_of=as_of, history=f"{history:,}", what=i18n.t(f"window.{kind}", lang),
            share=i18n.t(share_key, lang) if round(1 / share) in (2, 3) else f"{share:.0%}",
            cap=f"{cap:,}", minimum=minimum) for lang in i18n.LANGS})
    return Window(as_of, used, wanted, history, kind)


def _figure(ax):
    if ax is None:
        return new_figure()
    return ax.figure, ax


def _check_holdout(ch: pd.DataFrame) -> None:
    need = ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]
    missing = [c for c in need if c not in ch.columns]
    if missing:
        raise CrmkitError(f"holdout checks need a calibration_holdout() frame; column {missing[0]!r} is missing.")


def calibration_vs_holdout(model: RepeatBuyingModel, ch: pd.DataFrame, *, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual and expected holdout purchases by calibration frequency (the last bin is ``max_frequency+``).

    ``ch`` comes from :func:`crmkit.rfm.calibration_holdout`. Returns one row
    per bin: ``members, actual, expected``.
    """
    _check_holdout(ch)
    expected = model.expected_purchases(ch["duration_holdout"], ch["frequency"], ch["recency"], ch["T"])
    bins = np.minimum(ch["frequency"].to_numpy(), max_frequency).astype(int)
    labels = [str(b) for b in range(max_frequency)] + [f"{max_frequency}+"]
    frame = pd.DataFrame({"bin": bins, "actual": ch["frequency_holdout"].to_numpy(), "expected": expected})
    table = frame.groupby("bin").agg(members=("actual", "size"), actual=("actual", "mean"),
                                     expected=("expected", "mean"))
    table = table.reindex(range(max_frequency + 1))
    table.index = pd.Index(labels, name="calibration_frequency")
    return table


def holdout_totals(model: RepeatBuyingModel, ch: pd.DataFrame, *, interval: float = 0.9) -> pd.Series:
    """Total holdout purchases, actual and expected, with the interval of the expectation."""
    _check_holdout(ch)
    forecast = forecast_purchases(model, ch["duration_holdout"], ch["frequency"], ch["recency"], ch["T"],
                                  interval=interval)
    return pd.concat([pd.Series({"actual": float(ch["frequency_holdout"].sum())}), forecast])


def plot_calibration_vs_holdout(table: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Bars of actual and model holdout purchases by calibration frequency."""
    fig, ax = _figure(ax)
    pos = np.arange(len(table))
    ax.bar(pos - 0.2, table["actual"], width=0.4, label=i18n.t("clv.actual", lang))
    ax.bar(pos + 0.2, table["expected"], width=0.4, label=i18n.t("clv.expected", lang))
    ax.set_xticks(pos, table.index)
    ax.set_xlabel(i18n.t("clv.calibration_frequency", lang))
    ax.set_ylabel(i18n.t("clv.holdout_purchases", lang))
    ax.set_title(i18n.t("clv.calibration_vs_holdout", lang))
    ax.legend()
    return fig


def tracking(con, model: RepeatBuyingModel, calibration_end, observation_end, *, period: str = "W",
             table: str = "transactions", interval: float = 0.9) -> pd.DataFrame:
    """Cumulative repeat purchases of the calibration cohort, actual vs model, one row per period.

    The cohort is every member whose first purchase is on or before
    ``calibration_end``; the model's curve is Σ over first-purchase days of
    members × E[X(time since that day)], with its interval. ``period`` is the
    model's time unit, and the length of a row.

    Returns ``date`` (end of the period, inclusive), ``actual``, ``expected``,
    ``expected_low`` and ``expected_high``.
    """
    cal_end, obs_end = as_date(calibration_end, "calibration_end"), as_date(observation_end, "observation_end")
    timeline = purchase_timeline(con, cal_end, obs_end, table=table)
    if timeline.empty:
        raise CrmkitError(f"no purchases on or before {cal_end} to track.")
    step = period_days(period)
    start = timeline["day"].min()
    dates = pd.date_range(start + pd.Timedelta(days=step), pd.Timestamp(obs_end), freq=pd.Timedelta(days=step))
    if dates.empty or dates[-1] != pd.Timestamp(obs_end):
        dates = dates.append(pd.DatetimeIndex([pd.Timestamp(obs_end)]))
    days = timeline["day"].to_numpy()
    actual = np.cumsum(timeline["repeat_purchases"].to_numpy())[np.searchsorted(days, dates.to_numpy(), "right") - 1]
    cohort = timeline[timeline["first_purchases"] > 0]
    age = (dates.to_numpy()[:, None] - cohort["day"].to_numpy()[None, :]) / np.timedelta64(1, "D") / step
    sizes = cohort["first_purchases"].to_numpy(dtype=float)

    def curve(mod):
        return mod.expected_purchases_new(np.maximum(age, 0.0)) @ sizes

    expected = curve(model)
    grad = log_param_gradient(model, curve, expected)
    low, high = log_interval(expected, log_variance(expected, grad, model.log_params_cov_), interval)
    out = pd.DataFrame({"date": dates, "actual": actual, "expected": expected,
                        "expected_low": low, "expected_high": high})
    out.attrs["calibration_end"] = cal_end.isoformat()
    return out


def plot_tracking(table: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Cumulative repeat purchases, actual vs model with its interval, and the end of calibration."""
    fig, ax = _figure(ax)
    ax.plot(table["date"], table["actual"], label=i18n.t("clv.actual", lang))
    ax.plot(table["date"], table["expected"], linestyle="--", label=i18n.t("clv.expected", lang))
    ax.fill_between(table["date"], table["expected_low"], table["expected_high"], alpha=0.25,
                    color=ax.lines[-1].get_color(), label=i18n.t("clv.interval", lang))
    if "calibration_end" in table.attrs:
        ax.axvline(pd.Timestamp(table.attrs["calibration_end"]), color="grey", linewidth=1)
        ax.annotate(i18n.t("clv.calibration_end", lang), (pd.Timestamp(table.attrs["calibration_end"]), 0),
                    xytext=(4, 4), textcoords="offset points", color="grey")
    ax.set_xlabel(i18n.t("clv.date", lang))
    ax.set_ylabel(i18n.t("clv.cumulative_repeat", lang))
    ax.yaxis.set_major_formatter(int_formatter)
    ax.set_title(i18n.t("clv.tracking", lang))
    ax.legend()
    fig.autofmt_xdate()
    return fig


def p_alive_history(con, model: RepeatBuyingModel, member_id: str, as_of, *, period: str = "W",
                    table: str = "transactions") -> pd.DataFrame:
    """P(alive) of one member on every day from the first purchase to ``as_of``.

    Returns ``date, frequency, recency, T, p_alive, purchase`` (whether the
    member bought that day); recency and T are in ``period``, the model's time unit.
    """
    as_of = as_date(as_of, "as_of")
    bought = purchase_days(con, member_id, as_of, table=table)
    if bought.empty:
        raise CrmkitError(f"member {member_id} has no purchases on or before {as_of}.")
    step = period_days(period)
    days = bought["day"].to_numpy()
    grid = pd.date_range(days[0], pd.Timestamp(as_of), freq="D")
    k = np.searchsorted(days, grid.to_numpy(), "right")
    recency = (days[k - 1] - days[0]) / np.timedelta64(1, "D") / step
    age = (grid.to_numpy() - days[0]) / np.timedelta64(1, "D") / step
    out = pd.DataFrame({"date": grid, "frequency": k - 1, "recency": recency, "T": age,
                        "p_alive": model.p_alive(k - 1, recency, age), "purchase": np.isin(grid.to_numpy(), days)})
    out.attrs["member_id"] = str(member_id)
    return out


def plot_p_alive_history(table: pd.DataFrame, *, lang: str = "zh", ax=None):
    """P(alive) over time, with the purchase days marked."""
    fig, ax = _figure(ax)
    ax.plot(table["date"], table["p_alive"], label=i18n.t("clv.p_alive", lang))
    bought = table[table["purchase"]]
    ax.scatter(bought["date"], bought["p_alive"], marker="|", s=200, color="black", zorder=3,
               label=i18n.t("clv.purchase", lang))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(i18n.t("clv.date", lang))
    ax.set_ylabel(i18n.t("clv.p_alive", lang))
    ax.set_title(i18n.t("clv.p_alive_history", lang).format(member=table.attrs.get("member_id", "")))
    ax.legend()
    fig.autofmt_xdate()
    return fig


def compare_models(ch: pd.DataFrame, models: Sequence[str] = tuple(MODELS), *, lang: str = "en") -> pd.DataFrame:
    """Fit each transaction model on the calibration period and score it on the holdout.

    Returns one row per model (by label): ``log_likelihood``, ``aic``,
    ``expected_total``, ``actual_total``, ``total_error`` (expected / actual - 1),
    ``mae`` and ``rmse`` of the members' holdout purchases, and ``note``
    (why a model could not be fitted, else empty). When some of the models
    have no interior maximum because members do not appear to drop out
    (:class:`crmkit.errors.NoInteriorMaximum`), their rows say so and one more
    row, the model they become (the NBD, no dropout), is fitted and scored
    in their place, its note (in ``lang``) naming them.

    The table is cached (:mod:`crmkit.cache`) under a digest of its inputs
    (:func:`_comparison_key`): the same rows give the same table, read
    instead of fitted.
    """
    _check_holdout(ch)
    key = _comparison_key(ch, models, lang)
    records = cache.read_json("compare_models", key)
    if records is None:
        records = _compare_records(ch, models, lang)
        cache.write_json("compare_models", key, records)
    columns = ["log_likelihood", "aic", "expected_total", "actual_total", "total_error", "mae", "rmse", "note"]
    return pd.DataFrame.from_records(records, index="model").reindex(columns=columns)


#: The columns of a calibration/holdout summary that :func:`compare_models` reads (and ``weight``, when
#: there is one), in the order hashed.
_COMPARED = ("frequency", "recency", "T", "frequency_holdout", "duration_holdout")


def _comparison_key(ch: pd.DataFrame, models: Sequence[str], lang: str) -> str:
    """The cache key of :func:`compare_models`: everything its table is computed from.

    That is the members' rows themselves, in their order (the error sums
    run in it), the models and the language of the notes, crmkit's code
    (:func:`crmkit.engine.snapshots.code_fingerprint`) and the numpy and
    scipy versions. The comparison fits every model, which takes seconds
    (the Pareto/NBD most); a report of the same data reads the table
    instead, to the last digit (:mod:`crmkit.cache`).
    """
    import scipy

    from ..engine.snapshots import code_fingerprint

    columns = [c for c in (*_COMPARED, "weight") if c in ch.columns]
    arrays = [np.ascontiguousarray(ch[c].to_numpy(dtype=float)).tobytes() for c in columns]
    return cache.digest("compare_models", list(models), lang, code_fingerprint(), np.__version__,
                        scipy.__version__, columns, *arrays)


def _compare_records(ch: pd.DataFrame, models: Sequence[str], lang: str) -> list[dict]:
    """The rows of :func:`compare_models` as records (JSON types: floats, NaN, strings)."""
    from .fallback import FALLBACKS

    rows = compress(ch)
    actual = ch["frequency_holdout"].to_numpy(dtype=float)
    records, fell_back = [], {}
    for name in models:
        model = MODELS[name]()
        record = {"model": model.label, "note": ""}
        try:
            model.fit_summary(rows)
        except NoInteriorMaximum as err:
            records.append({**record, "note": str(err)})
            if err.fallback in FALLBACKS:
                fell_back.setdefault(err.fallback, []).append(model.label)
            continue
        except ModelError as err:
            records.append({**record, "note": str(err)})
            continue
        records.append(_holdout_record(model, record, ch, actual))
    for name, labels in fell_back.items():
        model = FALLBACKS[name]()
        record = {"model": model.label, "note": i18n.t("clv.fallback_row", lang).format(
            models=", ".join(labels), have="has" if len(labels) == 1 else "have")}
        try:
            model.fit_summary(rows)
        except ModelError as err:
            records.append({**record, "note": str(err)})
            continue
        records.append(_holdout_record(model, record, ch, actual))
    return records


def _holdout_record(model: RepeatBuyingModel, record: dict, ch: pd.DataFrame, actual: np.ndarray) -> dict:
    """The row of :func:`compare_models` for a fitted model."""
    error = model.expected_purchases(ch["duration_holdout"], ch["frequency"], ch["recency"], ch["T"]) - actual
    return {
        **record,
        "log_likelihood": model.log_likelihood_,
        "aic": 2 * len(model.param_names) - 2 * model.log_likelihood_,
        "expected_total": float(error.sum() + actual.sum()),
        "actual_total": float(actual.sum()),
        "total_error": float(error.sum() / actual.sum()) if actual.sum() else np.nan,
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error ** 2).mean())),
    }


def plot_model_comparison(table: pd.DataFrame, *, lang: str = "zh", ax=None):
    """Bars of each model's holdout error per member (MAE and RMSE); labels carry the error of the total."""
    fig, ax = _figure(ax)
    pos = np.arange(len(table))
    for shift, col in ((-0.2, "mae"), (0.2, "rmse")):
        bars = ax.bar(pos + shift, table[col], width=0.4, label=i18n.t(f"clv.{col}", lang))
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    label = i18n.t("clv.total_error", lang)
    ticks = [f"{name}\n{label} {fmt_pct(err)}" for name, err in table["total_error"].items()]
    ax.set_xticks(pos, ticks)
    ax.set_ylabel(i18n.t("clv.per_member", lang))
    ax.set_title(i18n.t("clv.model_comparison", lang))
    ax.legend(loc="lower center")
    return fig
