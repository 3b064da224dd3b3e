"""The per-member score table that ``crmkit score`` writes: one row per member who has bought.

It composes the other modules, each on the same as-of date:

- :mod:`crmkit.rfm`: frequency, recency, T, monetary (period ``W`` = weeks by default);
- :mod:`crmkit.clv`: a transaction model (BG/NBD by default) for p_alive and
  the expected purchases over the horizon, Gamma-Gamma for the expected spend
  per order, and the CLV with its prediction interval (parameters and the chance in purchases);
- :mod:`crmkit.churn`: churn_risk over ``churn_days`` (the score chosen by a
  time-split backtest, never ranking worse than expected purchases there) and its band;
- :mod:`crmkit.segments`, :mod:`crmkit.lifecycle`, :mod:`crmkit.tiers`: RFM
  scores and segment, lifecycle stage, membership tier.

Everything per member that is not a model output (the RFM summary, R/F/M
scores and segment, stage, tier and the churn behaviour features) comes from
one engine query, :func:`member_rows`, over the engine's ``member_facts``
(:mod:`crmkit.engine.members`), with each module's own SQL rule
(:func:`crmkit.segments.segment_sql`, :func:`crmkit.lifecycle.stage_sql`,
:meth:`crmkit.tiers.TierRules.rank_sql`, :data:`crmkit.churn.BEHAVIOUR_SQL`),
so the values are those of :func:`crmkit.segments.rfm_scores`,
:func:`crmkit.lifecycle.stages` and :func:`crmkit.tiers.assign_tiers`. Model
outputs are numpy arrays aligned by position with its rows (sorted by member_id).

The columns are those of :data:`crmkit.schema.MEMBER_SCORES`. Members who
registered but never bought have no row: there is nothing to model yet.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from . import engine
from .churn import (BANDS, BEHAVIOUR_SQL, DEFAULT_BAND_SHARES, DEFAULT_THRESHOLDS, DEFAULT_WINDOW_DAYS, RECENT_DAYS,
                    ChurnRisk, band_labels, band_ranges, band_thresholds, behaviour_sql, new_btyd, risk_bands)
from .clv import GammaGamma, fit_value_models
from .clv.value import interval_note, value_and_total
from .currency import fmt_money
from .defaults import DEFAULT_DISCOUNT_RATE, DEFAULT_HORIZON_DAYS, DEFAULT_MARGIN  # noqa: F401 (public here too)
from .errors import CrmkitError
from .i18n import register, t
from .engine import Query
from .engine.store import Connection, transaction
from .lifecycle import Windows, stage_sql
from .progress import Progress
from .text import fmt_pct
from .rfm import as_date, period_days
from .schema import MEMBER_SCORES
from .segments import score_sql, segment_params, segment_sql
from .tiers import TierRules

register({
    "score.members": ("位会员", "members"),
    "score.total_clv": ("CLV 合计", "Total CLV"),
    "score.interval": ("区间", "interval"),
    "score.horizon": ("预测期", "horizon"),
    "score.days": ("天", "days"),
    "score.churn_window": ("流失定义：未来 {days} 天内无购买", "churn = no purchase in the next {days} days"),
    "score.value_basis": ("CLV 为预期毛利而非销售额：预期购买次数 × 预期客单价 × 毛利率 {margin}，"
                          "按年折现率 {rate} 折现。",
                          "CLV is expected gross margin, not sales: expected purchases × expected spend per "
                          "order × a {margin} margin, discounted at {rate} a year."),
    "score.bands": ("按流失概率分档：{high}、{medium}、{low}", "bands of churn probability: {high}, {medium}, {low}"),
    "score.bands_relative": ("（按排名切分：风险最高的 {top}、其后 {middle}、其余）",
                             " (cut by rank: the riskiest {top}, the next {middle}, the rest)"),
    "score.bands_chain": ("；分档界线按全公司会员计算，本范围内各档人数占比因此可能不同",
                          "; the cut-offs are the whole chain's, so this scope's shares per band may differ"),
})


@dataclass(frozen=True)
class Scores:
    """The result of :func:`score_members`.

    ``table`` has the columns of :data:`crmkit.schema.MEMBER_SCORES`, one row
    per member, sorted by member_id (``expected_purchases`` is over the
    horizon). ``total_clv`` is the CLV summed over the members with its
    interval (:func:`crmkit.clv.total_value`), which is narrower than the sum
    of the members' bounds. ``churn`` is the fitted
    :class:`crmkit.churn.ChurnRisk`: its ``method_`` says which score churn_risk is,
    ``backtest_`` why (AUCs and dates), and ``method_note`` says it in one sentence.
    """

    as_of: dt.date
    table: pd.DataFrame
    total_clv: pd.Series
    model: object
    spend: GammaGamma
    churn: ChurnRisk
    horizon_days: int
    interval: float
    #: churn_risk cut-offs of the bands, ``(low_below, high_from)``, and whether they came from
    #: ranks (:func:`crmkit.churn.band_thresholds`) rather than being given.
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS
    relative_bands: bool = False
    margin: float = DEFAULT_MARGIN
    discount_rate: float = DEFAULT_DISCOUNT_RATE
    #: The table holds a part of the members scored (:func:`crmkit.dashboard.scoped_scores`): the band
    #: cut-offs are still those of all of them, and :meth:`band_note` says so.
    part: bool = False

    def band_counts(self, lang: str = "zh") -> pd.DataFrame:
        """Members per churn band (high, medium, low), each labelled by its range of churn probability
        (:func:`crmkit.churn.band_labels`, e.g. "churn probability 77–100%"), and their share."""
        counts = self.table["churn_band"].value_counts().reindex(list(BANDS), fill_value=0).to_numpy()
        labels = band_labels(self.thresholds, lang)
        return pd.DataFrame({"churn_band": list(BANDS), "label": [labels[b] for b in BANDS],
                             "members": counts, "share": counts / max(len(self.table), 1)})

    def value_note(self, lang: str = "zh") -> str:
        """Two sentences: what the CLV figures are (margin, not sales, discounted) and what their interval covers."""
        return (t("score.value_basis", lang).format(margin=fmt_pct(self.margin, 0),
                                                    rate=fmt_pct(self.discount_rate, 0))
                + ("" if lang == "zh" else " ") + interval_note(lang, self.interval))

    def band_note(self, lang: str = "zh") -> str:
        """One sentence: what churn means here and where the bands are cut."""
        note = (t("score.churn_window", lang).format(days=self.churn.window_days) + "; "
                + t("score.bands", lang).format(**band_ranges(self.thresholds)))
        if self.relative_bands:
            top, middle = (fmt_pct(v, 0) for v in DEFAULT_BAND_SHARES)
            note += t("score.bands_relative", lang).format(top=top, middle=middle)
        if self.part:
            note += t("score.bands_chain", lang)
        return note

    def summary_text(self, lang: str = "zh") -> str:
        """A few lines for the console: members per churn band and total CLV with its interval."""
        churn = self.churn
        lines = [f"{self.as_of}: {len(self.table):,} {t('score.members', lang)}", churn.method_note(lang)]
        lines.append(self.band_note(lang))
        lines += [f"  {row.label}: {row.members:,} ({fmt_pct(row.share)})"
                  for row in self.band_counts(lang).itertuples()]
        tot = self.total_clv
        lines.append(f"{t('score.total_clv', lang)} ({t('score.horizon', lang)} {self.horizon_days} "
                     f"{t('score.days', lang)}): {fmt_money(tot['clv'])}, {self.interval:.0%} "
                     f"{t('score.interval', lang)} {fmt_money(tot['clv_low'])}–{fmt_money(tot['clv_high'])}")
        lines.append("  " + interval_note(lang, self.interval))
        return "\n".join(lines)


#: ``rank() OVER (ORDER BY x)`` of the RFM scores, 1 + the members with a smaller x, from the distinct
#: values of x and their counts: a window over all members would sort every column of every member
#: three times. (x is never NULL for a buyer.)
_RANK_OF = """
  SELECT value, CAST(sum(n) OVER (ORDER BY value ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - n + 1
                     AS BIGINT) AS rank
  FROM (SELECT {x} AS value, count(*) AS n FROM member_facts GROUP BY {x}) counts"""

_ROWS_RANKED = """
  SELECT f.*, b.n_buyers, r.rank AS rank_r, fr.rank AS rank_f, m.rank AS rank_m,
         coalesce(round(f.window_spend, 2), 0) AS annual_spend
  FROM member_facts f
       JOIN rank_r r ON r.value = f.last_purchase
       JOIN rank_f fr ON fr.value = f.purchase_days
       JOIN rank_m m ON m.value = f.net_spend
       CROSS JOIN (SELECT count(*) AS n_buyers FROM member_facts) b"""


def member_rows_query(as_of, *, period: str = "W", recent_days: int = RECENT_DAYS,
                      windows: Windows | None = None, rules: TierRules | None = None) -> tuple[Query, str]:
    """The query of :func:`member_rows` and its final select (portable SQL, every value bound)."""
    w, r = Windows.of(windows), TierRules.load(rules)
    q = engine.member_facts(as_of, window_days=r.window_days, recent_days=recent_days, new_days=w.new_days,
                            active_days=w.active_days)
    q += Query({"rank_r": _RANK_OF.format(x="last_purchase"), "rank_f": _RANK_OF.format(x="purchase_days"),
                "rank_m": _RANK_OF.format(x="net_spend"), "member_ranked": _ROWS_RANKED, "member_scored": f"""
  SELECT *, {score_sql("rank_r", "n_buyers")} AS rfm_r, {score_sql("rank_f", "n_buyers")} AS rfm_f,
         {score_sql("rank_m", "n_buyers")} AS rfm_m, {r.rank_sql("annual_spend")} AS tier_rank
  FROM member_ranked"""}, {"scale": period_days(period), **segment_params(), **w.params(), **r.params()})
    select = f"""
SELECT member_id, {engine.summary_sql()},
       rfm_r, rfm_f, rfm_m, {segment_sql("rfm_r", "rfm_f", "rfm_m")} AS rfm_segment,
       {stage_sql("first_purchase", "last_purchase", "first_recent", "last_before")} AS lifecycle_stage,
       {r.name_sql("tier_rank")} AS tier,
       {behaviour_sql()}
FROM member_scored ORDER BY member_id"""
    return q, select


def member_rows(con: Connection, as_of, *, period: str = "W", recent_days: int = RECENT_DAYS,
                windows: Windows | None = None, rules: TierRules | None = None) -> pa.Table:
    """Everything per member that is not a model output, in one engine query, sorted by member_id.

    One row per member with a purchase day up to ``as_of``: member_id,
    frequency, recency, T, monetary (:func:`crmkit.rfm.rfm_summary`),
    rfm_r, rfm_f, rfm_m, rfm_segment (:func:`crmkit.segments.rfm_scores`),
    lifecycle_stage (:func:`crmkit.lifecycle.stages` with ``windows``), tier
    (:func:`crmkit.tiers.assign_tiers` with ``rules``) and the columns of
    :func:`crmkit.churn.behaviour_features` (``recent_days``).
    """
    q, select = member_rows_query(as_of, period=period, recent_days=recent_days, windows=windows, rules=rules)
    q = q.for_store(con)
    sql = q.sql(select)
    return con.sql(sql, params=q.bound(sql)).to_arrow_table()  # a relation: Arrow without a copy of the rows


def _column(rows: pa.Table, name: str):
    """A column of :func:`member_rows` for the score table: numbers as numpy, text as pandas strings."""
    col = rows.column(name)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.to_pandas()
    return col.to_numpy()


def score_members(con: Connection, as_of, *, model: str = "bgnbd", period: str = "W",
                  horizon_days: int = DEFAULT_HORIZON_DAYS, discount_rate: float = DEFAULT_DISCOUNT_RATE,
                  margin: float = DEFAULT_MARGIN, churn_days: int = DEFAULT_WINDOW_DAYS,
                  interval: float = 0.9, thresholds: tuple[float, float] | None = None,
                  progress: Progress | None = None) -> Scores:
    """Score every member who has bought up to ``as_of`` (inclusive).

    Parameters
    ----------
    model, period
        Transaction model (key of :data:`crmkit.clv.MODELS`) and its time unit (``W``: weeks = days / 7).
    horizon_days, discount_rate, margin, interval
        CLV horizon in days, annual discount rate, gross margin as a share of
        net sales, and the probability of the CLV intervals.
    churn_days, thresholds
        Churn window in days and the band thresholds ``(low_below, high_from)`` on churn_risk;
        by default relative (:func:`crmkit.churn.band_thresholds`: the riskiest 20% high).
    progress
        Stage messages go there (stderr) when given.
    """
    as_of = as_date(as_of, "as_of")
    progress = progress or Progress("score", enabled=False)
    churn = ChurnRisk(window_days=churn_days, model=model, period=period)
    progress.step(f"RFM summary, segments, lifecycle stages, tiers and churn features as of {as_of}")
    rows = member_rows(con, as_of, period=period, recent_days=churn.recent_days)
    if rows.num_rows == 0:
        raise CrmkitError(f"no member has a purchase up to {as_of}; nothing to score.")
    summary = pd.DataFrame({c: _column(rows, c) for c in ("member_id", "frequency", "recency", "T", "monetary")},
                           copy=False)
    progress.step(f"fitting {model} and Gamma-Gamma on {len(summary):,} members")
    fitted, spend = fit_value_models(new_btyd(model), summary)
    rfm = [summary[c] for c in ("frequency", "recency", "T", "monetary")]
    value_args = dict(horizon_days=horizon_days, discount_rate_annual=discount_rate, margin=margin,
                      period=period, interval=interval)
    value, total = value_and_total(fitted, spend, *rfm, **value_args)
    progress.step(f"choosing churn risk by a backtest on the {churn_days} days before {as_of}")
    feats = churn.features(con, as_of, summary=summary, fitted=fitted, behaviour=False)
    churn.fit(con, as_of, features=feats)
    if churn.needs_behaviour:  # the rows are the summary's, in its order
        feats = feats.assign(**{c: rows.column(c).to_pandas() for c in BEHAVIOUR_SQL})
    risk = churn.predict(feats)
    cuts = band_thresholds(risk) if thresholds is None else tuple(thresholds)
    progress.step(f"churn risk by {churn.method_}")
    columns = {
        **{c: summary[c] for c in summary.columns},
        "as_of": pd.arrays.ArrowExtensionArray(pa.array(np.full(len(summary), np.datetime64(as_of, "D")),
                                                        type=pa.date32())),
        "p_alive": feats["p_alive"].to_numpy(),
        **{c: value[c].to_numpy() for c in ("expected_purchases", "expected_spend", "clv", "clv_low", "clv_high")},
        "churn_risk": risk,
        "churn_band": risk_bands(risk, cuts).to_numpy(),
        **{c: _column(rows, c) for c in ("rfm_r", "rfm_f", "rfm_m", "rfm_segment", "lifecycle_stage", "tier")},
    }
    del feats, value, rows
    # copy=False: each column stays its own block, not stacked into one (a copy of the whole table)
    table = pd.DataFrame({c: columns.pop(c) for c in MEMBER_SCORES.names}, copy=False)
    return Scores(as_of, table, total, fitted, spend, churn, horizon_days, interval, cuts, thresholds is None,
                  margin, discount_rate)


def write_scores(con: Connection, table: pd.DataFrame) -> int:
    """Store a score table in ``member_scores``, replacing the rows of its as_of dates; returns rows written."""
    con.register("_crmkit_scores", table)
    try:
        with transaction(con):
            con.execute("DELETE FROM member_scores WHERE as_of IN (SELECT DISTINCT as_of FROM _crmkit_scores)")
            con.execute("INSERT INTO member_scores BY NAME SELECT * FROM _crmkit_scores")
    finally:
        con.unregister("_crmkit_scores")
    return len(table)
