"""Formatted tables for the reports: one registry of columns, their kinds and zh / en headers.

A column shown in any report is declared once in :data:`COLUMNS`; :func:`format_table`
turns a DataFrame into text cells (money in the store's currency with thousands separators, shares in
per cent, labels translated, personal data masked) and :func:`table_html` into HTML
with numbers right-aligned.
"""
from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .. import viz
from ..currency import SYMBOLS
from ..i18n import register, t
from ..lifecycle import stage_label
from ..privacy import mask_frame
from ..segments import segment_label
from ..tiers import tier_label

register({"report.empty": ("（无数据）", "(no data)")})


# ------------------------------------------------------------------ columns

@dataclass(frozen=True)
class Col:
    """How one column is shown.

    ``kind`` is one of money, money2 (with cents), pct, count, number, sig
    (4 significant digits), days, date, month, label (``values`` translates
    each value) or text. Headers of money columns write ``{money}`` where the
    currency goes (:func:`crmkit.i18n.t` puts it in).
    """

    kind: str
    zh: str
    en: str
    values: Callable[[str, str], str] | None = None  # (value, lang) -> display label


#: Every column a report shows, by name.
COLUMNS: dict[str, Col] = {
    # who / where
    "member_id": Col("text", "会员编号", "Member ID"),
    "phone": Col("text", "手机号", "Phone"),
    "name": Col("text", "姓名", "Name"),
    "region": Col("text", "区域", "Region"),
    "store_id": Col("text", "门店编号", "Store ID"),
    "store_name": Col("text", "门店", "Store"),
    "channel": Col("text", "渠道", "Channel"),
    "tier": Col("label", "会员等级", "Tier", tier_label),
    "rfm_segment": Col("label", "RFM 分群", "RFM segment", segment_label),
    "lifecycle_stage": Col("label", "生命周期阶段", "Lifecycle stage", stage_label),
    # member counts and rates
    "members": Col("count", "会员数（人）", "Members"),
    "members_start": Col("count", "期初会员（人）", "Members at start"),
    "new_members": Col("count", "新增会员（人）", "New members"),
    "members_end": Col("count", "期末会员（人）", "Members at end"),
    "member_growth": Col("pct", "会员增长率", "Member growth"),
    "active_members": Col("count", "活跃会员（人）", "Active members"),
    "active_rate": Col("pct", "活跃率", "Active rate"),
    "purchase_frequency": Col("number", "人均购买次数（次/人）", "Orders per active member"),
    "member_share": Col("pct", "会员占比", "Share of members"),
    # sales
    "orders": Col("count", "订单数（笔）", "Orders"),
    "net_sales": Col("money", "净销售额（{money}）", "Net sales ({money})"),
    "gross_sales": Col("money", "销售额（{money}）", "Gross sales ({money})"),
    "refunds": Col("money", "退款（{money}）", "Refunds ({money})"),
    "refund_rate": Col("pct", "退款率", "Refund rate"),
    "aov": Col("money2", "客单价（{money}/笔）", "Average order value ({money})"),
    "member_share_of_sales": Col("pct", "会员销售占比", "Member share of sales"),
    "revenue": Col("money", "净销售额（{money}）", "Net revenue ({money})"),
    "revenue_share": Col("pct", "销售额占比", "Share of revenue"),
    "annual_spend": Col("money", "近一年消费（{money}）", "Spend, last 365 days ({money})"),
    "mean_annual_spend": Col("money", "人均近一年消费（{money}）", "Mean spend, last 365 days ({money})"),
    "mean_recency_days": Col("days", "平均距上次购买（天）", "Mean days since last purchase"),
    "mean_frequency": Col("number", "平均购买天数（天）", "Mean purchase days"),
    "mean_monetary": Col("money", "人均累计消费（{money}）", "Mean spend to date ({money})"),
    "recency_days": Col("days", "距上次购买（天）", "Days since last purchase"),
    "last_purchase": Col("date", "最近购买日", "Last purchase"),
    # value and risk
    "clv": Col("money", "客户终身价值 CLV（{money}）", "CLV ({money})"),
    "clv_low": Col("money", "CLV 下限（{money}）", "CLV low ({money})"),
    "clv_high": Col("money", "CLV 上限（{money}）", "CLV high ({money})"),
    "clv_mean": Col("money", "人均 CLV（{money}）", "Mean CLV ({money})"),
    "clv_share": Col("pct", "CLV 占比", "Share of CLV"),
    "p_alive": Col("pct", "存活概率", "P(alive)"),
    "churn_risk": Col("pct", "流失风险", "Churn risk"),
    "expected_purchases": Col("number", "预期购买次数（次）", "Expected purchases"),
    # a row label of ChurnBacktest.summary: the churn risk's AUC gain over the BTYD baseline
    "churn_risk − expected_purchases": Col("text", "流失风险较预期购买次数的提升",
                                           "Churn risk's gain over expected purchases"),
    "layer": Col("label", "价值层", "Value layer", lambda v, lang: t(f"pyramid.{v}", lang)),
    "churn_band": Col("label", "流失风险等级", "Churn-risk band", lambda v, lang: t(f"churn.{v}", lang)),
    "frequency": Col("count", "重复购买次数（次）", "Repeat purchases"),
    "recency": Col("number", "首末购间隔（周）", "First to last purchase (weeks)"),
    "T": Col("number", "首购至今（周）", "Weeks since first purchase"),
    "monetary": Col("money2", "平均每单金额（{money}）", "Mean spend per repeat order ({money})"),
    "net_spend": Col("money", "累计消费（{money}）", "Spend to date ({money})"),
    "suggested_action": Col("text", "建议动作", "Suggested action"),
    # models: parameters, holdout comparison, churn backtest
    "parameter": Col("text", "参数", "Parameter"),
    "model": Col("text", "模型", "Model"),
    "log_likelihood": Col("sig", "对数似然", "Log-likelihood"),
    "aic": Col("sig", "AIC", "AIC"),
    "expected_total": Col("count", "验证期预测复购（次）", "Expected holdout purchases"),
    "actual_total": Col("count", "验证期实际复购（次）", "Actual holdout purchases"),
    "total_error": Col("pct", "总量误差", "Total error"),
    "mae": Col("number", "人均绝对误差（次）", "MAE (purchases per member)"),
    "rmse": Col("number", "均方根误差（次）", "RMSE (purchases per member)"),
    "note": Col("text", "说明", "Note"),
    "metric": Col("text", "指标", "Metric"),
    "score": Col("label", "评分", "Score", lambda v, lang: column_label(v, lang)),
    "auc": Col("sig", "AUC", "AUC"),
    "auc_low": Col("sig", "AUC 95% 下限", "AUC 95% low"),
    "auc_high": Col("sig", "AUC 95% 上限", "AUC 95% high"),
    "gain": Col("sig", "相对基准的提升", "Gain over the baseline"),
    "gain_low": Col("sig", "提升 95% 下限", "Gain 95% low"),
    "gain_high": Col("sig", "提升 95% 上限", "Gain 95% high"),
    "chosen": Col("label", "采用", "Chosen", lambda v, lang: ("采用" if lang == "zh" else "chosen") if v == "True" else ""),
    "churn_band_range": Col("text", "流失风险档（未来无购买的概率）", "Churn-risk band (probability of no purchase)"),
    "estimate": Col("sig", "估计值", "Estimate"),
    "se": Col("sig", "标准误", "Std. error"),
    "low": Col("sig", "95% 区间下限", "95% low"),
    "high": Col("sig", "95% 区间上限", "95% high"),
    # monthly growth
    "month": Col("month", "月份", "Month"),
    "first_purchase_rate": Col("pct", "当月首购率", "First-purchase rate"),
    "buyers": Col("count", "购买会员（人）", "Buyers"),
    "retention_rate": Col("pct", "环比留存率", "Month-on-month retention"),
    "next_month_repurchase_rate": Col("pct", "次月复购率", "Next-month repurchase rate"),
    "repurchase_cycle_days": Col("days", "复购间隔（天）", "Repurchase cycle (days)"),
    "winback_rate": Col("pct", "召回率", "Win-back rate"),
    # funnels
    "conversion": Col("pct", "转化率", "Conversion"),
    "share": Col("pct", "占比", "Share"),
}

register({f"col.{k}": (c.zh, c.en) for k, c in COLUMNS.items()})


def number_format(decimals: int) -> Callable[[object], str]:
    return lambda x: "–" if x is None or x != x else f"{x:,.{decimals}f}"


FORMATS: dict[str, Callable[[object], str]] = {
    "money": viz.fmt_money,
    "money2": lambda x: viz.fmt_money(x, 2),
    "pct": viz.fmt_pct,
    "count": viz.fmt_int,
    "number": number_format(2),
    "days": number_format(0),
    "sig": lambda x: "–" if x is None or x != x else (f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"),
    "date": lambda x: "–" if pd.isna(x) else pd.Timestamp(x).strftime("%Y-%m-%d"),
    "month": lambda x: "–" if pd.isna(x) else pd.Timestamp(x).strftime("%Y-%m"),
    "text": lambda x: "–" if pd.isna(x) else str(x),
}


def _formatter(name: str, values: pd.Series, lang: str) -> Callable[[object], str]:
    col = COLUMNS.get(name)
    if col is not None and col.kind == "label":
        return lambda x: "–" if pd.isna(x) else col.values(str(x), lang)
    if col is not None:
        return FORMATS[col.kind]
    if pd.api.types.is_integer_dtype(values):
        return FORMATS["count"]
    if pd.api.types.is_float_dtype(values):
        return FORMATS["number"]
    return FORMATS["text"]


_MASKED_PHONE = re.compile(r"^\d{3}\*+\d{4}$")


def _mask(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`crmkit.privacy.mask_frame`, leaving phones that are masked already as they are.

    (``mask_phone`` of ``138****5678`` would drop the stars and give ``1385678``.)
    """
    masked = mask_frame(df)
    done = df.map(lambda v: isinstance(v, str) and bool(_MASKED_PHONE.match(v)))
    return masked.where(~done, df)


def column_label(name: str, lang: str = "zh") -> str:
    """The header of column ``name`` in ``lang`` (the name itself when it is not registered)."""
    return t(f"col.{name}", lang) if name in COLUMNS else name


def format_table(df: pd.DataFrame, lang: str = "zh", *, columns: list[str] | None = None) -> pd.DataFrame:
    """``df`` ready to show: PII masked, values formatted as text, headers translated with units.

    Columns are formatted by their kind in :data:`COLUMNS`; unregistered
    numeric columns get thousands separators. ``columns`` picks and orders them.
    """
    if not isinstance(df.index, pd.RangeIndex):  # labelled rows (model parameters, bins): keep the labels
        df = df.rename_axis(df.index.name or "parameter").reset_index()
    shown = _mask(df if columns is None else df[columns])
    out = {column_label(name, lang): [_formatter(name, shown[name], lang)(x) for x in shown[name].astype(object)]
           for name in shown.columns}
    return pd.DataFrame(out, index=range(len(shown)), dtype=object)


#: A formatted number: ``1,234``, ``-¥5.20``, ``+£12``, ``+12.5%``, ``+3.0 pp``, optionally with ``[low, high]``.
_NUMERIC = re.compile(r"^[+\-]?(?:" + "|".join(map(re.escape, SYMBOLS)) + r")?[\d,]+(\.\d+)?(%| pp)?( \[.+\])?$")


def numeric_columns(shown: pd.DataFrame) -> list[int]:
    """Positions of the columns of a formatted table whose values are all numbers (or ``–``)."""
    out = []
    for i, name in enumerate(shown.columns):
        values = [v for v in shown[name] if v != "–"]
        if values and all(_NUMERIC.match(str(v)) for v in values):
            out.append(i)
    return out


def table_html(df: pd.DataFrame, lang: str = "zh", *, columns: list[str] | None = None) -> str:
    """HTML of :func:`format_table`, without the index, numbers right-aligned."""
    if df.empty:
        return f"<p>{html.escape(t('report.empty', lang))}</p>"
    shown = format_table(df, lang, columns=columns)
    body = shown.to_html(index=False, border=0, escape=True)
    css_class = "crmkit-" + hashlib.sha1(body.encode()).hexdigest()[:10]  # deterministic, one per table
    style = "".join(f"table.{css_class} td:nth-child({i + 1}),table.{css_class} th:nth-child({i + 1})"
                    "{text-align:right}" for i in numeric_columns(shown))
    body = body.replace('class="dataframe"', f'class="dataframe {css_class}"', 1)
    return f"<style>{style}</style>{body}" if style else body


# ------------------------------------------------------------------ notebook display

def heading(key: str, lang: str = "zh", level: int = 2) -> None:
    """Display the registered label ``key`` as a heading."""
    show_html(f"<h{level}>{html.escape(t(key, lang))}</h{level}>")


def show_table(df: pd.DataFrame, lang: str = "zh", *, columns: list[str] | None = None) -> None:
    """Display ``df`` formatted (see :func:`format_table`)."""
    show_html(table_html(df, lang, columns=columns))


def show_note(text: str) -> None:
    """Display one plain-text sentence (a definition, a caveat) as a paragraph."""
    show_html(f"<p>{html.escape(text)}</p>")


def show_html(text: str) -> None:
    """Display an HTML fragment made by this module."""
    from IPython.display import HTML, display

    display(HTML(text))
