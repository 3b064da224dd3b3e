"""RFM summaries computed in the engine: the inputs of the buy-till-you-die models.

Everything here runs as SQL on the DuckDB connection; only one row per member
comes back to pandas. Orders, purchases and purchase days are those of
:mod:`crmkit.engine.activity`, the one definition every analysis uses (a ¥0
order is a purchase; an order returned in full, by a credit note or on the
same day, is none; a partly returned one is worth what remains; a purchase
day is a day with at least one purchase, worth the summed net of its
purchases). On top of them the definitions follow the literature (Fader,
Hardie & Lee 2005, "Counting your customers the easy way"):

- ``frequency`` is the number of purchase days after the first (repeat
  purchases), ``recency`` the time from the first to the last purchase day,
  ``T`` the time from the first purchase day to ``as_of``, and ``monetary``
  the mean net value of the repeat purchase days (0 without repeats).
- Time is in days (``period="D"``) or weeks (``period="W"``, days / 7,
  fractional). A month is never assumed.
- ``as_of`` is inclusive: the summary covers everything up to the end of
  that day.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import engine
from .engine import Query, as_date, table_columns
from .engine.store import Connection
from .errors import CrmkitError

__all__ = ["PERIODS", "as_date", "calibration_holdout", "compress", "period_days", "purchase_days",
           "purchase_timeline", "rfm_summary", "unique_rows"]

#: Days per model period.
PERIODS: dict[str, float] = {"D": 1.0, "W": 7.0}


def period_days(period: str) -> float:
    """Days in one model period: ``"D"`` → 1, ``"W"`` → 7."""
    try:
        return PERIODS[period]
    except KeyError:
        raise CrmkitError(f"period must be 'D' (days) or 'W' (weeks = days / 7), not {period!r}.") from None


def _columns(con: Connection, table: str) -> frozenset[str]:
    """The columns of ``table``, or one clear error when it cannot hold an RFM summary."""
    cols = table_columns(con, table)
    if not cols:
        raise CrmkitError(f"no table {table!r} in the store; load transactions first with `crmkit load`.")
    missing = [c for c in ("member_id", "order_time", "amount") if c not in cols]
    if missing:
        raise CrmkitError(f"table {table!r} lacks the column {missing[0]!r} needed for an RFM summary.")
    return cols


_SUMMARY = """
  SELECT CAST(member_id AS VARCHAR) AS member_id,
         purchase_days - 1 AS frequency,
         date_diff('day', first_purchase, last_purchase) / $scale AS recency,
         date_diff('day', first_purchase, CAST($as_of{s} AS DATE)) / $scale AS "T",
         CASE WHEN purchase_days > 1 THEN (purchase_value - first_value) / (purchase_days - 1) ELSE 0.0 END
             AS monetary,
         first_purchase, last_purchase, purchases AS n_orders, net_spend AS revenue
  FROM activity{s} WHERE purchase_days > 0"""


def summary_query(as_of, *, period: str = "W", since=None, table: str = "transactions", columns=None,
                  suffix: str = "") -> Query:
    """:func:`crmkit.engine.member_activity` plus ``rfm_summary{suffix}``: the rows of :func:`rfm_summary`."""
    q = engine.member_activity(as_of, since=since, table=table, columns=columns, suffix=suffix)
    return q + Query({f"rfm_summary{suffix}": _SUMMARY.format(s=suffix)}, {"scale": period_days(period)})


def rfm_summary(con: Connection, as_of, *, period: str = "W", since=None,
                table: str = "transactions") -> pd.DataFrame:
    """One row per member with a purchase day on or before ``as_of``.

    Parameters
    ----------
    con : DuckDB connection holding ``table`` (``member_id, order_time, amount``
        and, optionally, ``order_id``, ``ref_order_id`` and ``txn_type``).
    as_of : date, inclusive end of the observation.
    period : ``"W"`` (weeks = days / 7) or ``"D"`` (days): unit of recency and T.
    since : optional date; transactions before it are ignored.

    Returns
    -------
    DataFrame with ``member_id, frequency, recency, T, monetary,
    first_purchase, last_purchase, n_orders`` (purchases), ``revenue`` (net
    yuan over the window, returns included), in no particular order (sorting
    a million ids costs more than the summary). ``attrs`` holds ``as_of`` and ``period``.
    """
    as_of = as_date(as_of, "as_of")
    since = as_date(since, "since") if since is not None else None
    q = summary_query(as_of, period=period, since=since, table=table, columns=_columns(con, table))
    out = q.df(con, "SELECT * FROM rfm_summary")
    out.attrs.update(as_of=as_of.isoformat(), period=period)
    return out


def calibration_holdout(con: Connection, calibration_end, observation_end, *,
                        period: str = "W", table: str = "transactions") -> pd.DataFrame:
    """Calibration summary up to ``calibration_end`` and what followed up to ``observation_end``.

    Only members with a purchase day in the calibration period appear. The
    holdout columns count purchase days after ``calibration_end`` up to and
    including ``observation_end``.

    Returns
    -------
    DataFrame with ``member_id, frequency, recency, T, monetary`` (calibration),
    ``frequency_holdout, monetary_holdout`` (mean net value of the holdout
    purchase days, 0 without any) and ``duration_holdout`` (in ``period``), sorted
    by member_id.
    """
    cal_end = as_date(calibration_end, "calibration_end")
    obs_end = as_date(observation_end, "observation_end")
    if obs_end <= cal_end:
        raise CrmkitError(f"observation_end {obs_end} must come after calibration_end {cal_end}.")
    duration = (obs_end - cal_end).days / period_days(period)
    cols = _columns(con, table)
    q = (summary_query(cal_end, period=period, table=table, columns=cols, suffix="_cal")
         + engine.purchase_days(obs_end, table=table, columns=cols, suffix="_all")
         + Query({"hold": """
  SELECT CAST(member_id AS VARCHAR) AS member_id, count(*) AS n, avg(value) AS m
  FROM purchase_days_all WHERE day > CAST($as_of_cal AS DATE)
  GROUP BY member_id"""}, {"duration": duration}))
    out = q.df(con, """
SELECT c.member_id, c.frequency, c.recency, c."T", c.monetary,
       coalesce(h.n, 0) AS frequency_holdout,
       coalesce(h.m, 0.0) AS monetary_holdout,
       CAST($duration AS DOUBLE) AS duration_holdout
FROM rfm_summary_cal c LEFT JOIN hold h ON h.member_id = c.member_id
ORDER BY c.member_id""")  # member order: folds and samples drawn from it are reproducible
    out.attrs.update(calibration_end=cal_end.isoformat(), observation_end=obs_end.isoformat(), period=period)
    return out


def purchase_days(con: Connection, member_id: str, as_of, *,
                  table: str = "transactions") -> pd.DataFrame:
    """One member's purchase days up to ``as_of``: ``day, value`` (net yuan) and ``n_orders`` (purchases)."""
    q = engine.purchase_days(as_of, member=str(member_id), table=table, columns=_columns(con, table))
    return q.execute(con, "SELECT day, value, purchases AS n_orders FROM purchase_days ORDER BY day").df()


def purchase_timeline(con: Connection, cohort_end, observation_end, *,
                      table: str = "transactions") -> pd.DataFrame:
    """Daily first and repeat purchases of the members whose first purchase is on or before ``cohort_end``.

    Returns ``day, first_purchases, repeat_purchases`` up to ``observation_end``
    (days without either are left out): what cumulative tracking plots compare
    with a model.
    """
    cohort_end = as_date(cohort_end, "cohort_end")
    q = engine.purchase_days(as_date(observation_end, "observation_end"), table=table,
                             columns=_columns(con, table))
    q += Query({"cohort": """
  SELECT member_id, min(day) AS first_day FROM purchase_days GROUP BY member_id
  HAVING min(day) <= CAST($cohort_end AS DATE)"""}, {"cohort_end": cohort_end})
    return q.execute(con, """
SELECT p.day,
       count(CASE WHEN p.day = c.first_day THEN 1 END) AS first_purchases,
       count(CASE WHEN p.day > c.first_day THEN 1 END) AS repeat_purchases
FROM purchase_days p JOIN cohort c ON c.member_id = p.member_id
GROUP BY p.day ORDER BY p.day""").df()


def unique_rows(*cols) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of equal-length columns and, per row, the index of its unique row.

    Hash-based (``pandas.factorize`` per column, then on the combined codes),
    so it is linear in the number of rows; unique rows come in order of first
    appearance.
    """
    cols = [np.asarray(c).ravel() for c in cols]
    key, size = np.zeros(cols[0].size, dtype=np.int64), 1
    for col in cols:
        codes, uniques = pd.factorize(col, use_na_sentinel=False)
        if size * len(uniques) >= 2 ** 62:  # keep the combined code within int64
            key, dense = pd.factorize(key)
            size = len(dense)
        key, size = key * len(uniques) + codes, size * len(uniques)
    inverse = pd.factorize(key)[0]
    first = np.flatnonzero(np.diff(np.maximum.accumulate(inverse), prepend=-1) > 0)
    return [c[first] for c in cols], inverse


def compress(df: pd.DataFrame, cols: Sequence[str] = ("frequency", "recency", "T")) -> pd.DataFrame:
    """Unique rows of ``df[cols]``, sorted, with a ``weight`` column: how many rows share them.

    Models fit on these rows with the weights, which gives the same
    likelihood as the member rows (Fader & Hardie's compressed RFM matrix).
    An existing ``weight`` column is summed.
    """
    grouped = df.groupby(list(cols), sort=True)
    weights = grouped["weight"].sum() if "weight" in df.columns else grouped.size()
    return weights.rename("weight").reset_index()
