"""RFM summaries computed in the engine: the inputs of the buy-till-you-die models.

Everything here runs as SQL on the DuckDB connection; only one row per member
comes back to pandas. The definitions follow the literature (Fader, Hardie &
Lee 2005, "Counting your customers the easy way"):

- An order is a *purchase* unless returns cancel it: returns net out against
  the order they refund on that order's day, so an order returned in full (net
  below half a cent) is no purchase, while a zero-value sale (a gift, a fully
  discounted order) is one. A return refunds the order with its ``order_id``,
  or, for a *credit note* (a return under its own number), the order named in
  its ``ref_order_id``: the latest sale of the same member with the same
  product and the opposite quantity and amount, at most 90 days before the
  credit note, linked at load time by :mod:`crmkit.io.credit_notes`. A partly
  cancelled order keeps the value of its remaining lines. A return that
  matches no order lowers ``revenue`` only, on its own day.
- A *purchase day* is a calendar day with at least one purchase: same-day
  orders merge into one purchase, worth their summed net value. Lines count
  on the day they were rung up; orders are counted by their first line.
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

import datetime as dt
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from .errors import CrmkitError
from .store import fetch_df

#: Days per model period.
PERIODS: dict[str, float] = {"D": 1.0, "W": 7.0}


def period_days(period: str) -> float:
    """Days in one model period: ``"D"`` → 1, ``"W"`` → 7."""
    try:
        return PERIODS[period]
    except KeyError:
        raise CrmkitError(f"period must be 'D' (days) or 'W' (weeks = days / 7), not {period!r}.") from None


def as_date(value, name: str = "as_of") -> dt.date:
    """``value`` (``str``, ``date``, ``datetime`` or ``Timestamp``) as a date, or one clear error."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise CrmkitError(f"{name} {value!r} is not a date; use YYYY-MM-DD.")
    return ts.date()


def _days_sql(con: duckdb.DuckDBPyConnection, table: str, until: dt.date,
              since: dt.date | None = None, one_member: bool = False) -> str:
    """SQL of (member_id, day, value, n_orders, net): each member's days up to ``until``.

    ``n_orders`` counts the day's purchases (by their first line, ``line_no``
    1, or every line when the table has no line numbers) and ``value`` is
    their net value; ``net`` is the day's net over everything, unmatched
    returns included. With ``one_member`` only the member bound to
    ``$member`` is read.

    One aggregation over the lines does it: each line counts on its own day,
    and the few orders with a return (a negative line with the same
    ``order_id``, or a credit note whose ``ref_order_id`` names it) are
    corrected: their lines are taken back and the order is added, net, on the
    day of its first line, as a purchase if it still nets at least half a
    cent. Without returns in the window that correction is left out.
    """
    try:
        cols = {d[0] for d in con.execute(f'SELECT * FROM "{table}" LIMIT 0').description}
    except duckdb.CatalogException:
        raise CrmkitError(f"no table {table!r} in the store; load transactions first with `crmkit load`.") from None
    missing = [c for c in ("member_id", "order_time", "amount") if c not in cols]
    if missing:
        raise CrmkitError(f"table {table!r} lacks the column {missing[0]!r} needed for an RFM summary.")
    where = [f"order_time < DATE '{until.isoformat()}' + INTERVAL 1 DAY",
             "member_id IS NOT NULL", "amount IS NOT NULL", "order_time IS NOT NULL"]
    if since is not None:
        where.append(f"order_time >= DATE '{since.isoformat()}'")
    # orders with a return need netting; many exports have none, and then every line stays on its day
    has_returns = "order_id" in cols and con.execute(
        f"""SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE {' AND '.join(where)}
            AND amount < 0 AND order_id IS NOT NULL LIMIT 1)""").fetchone()[0] > 0
    if one_member:
        where.append("CAST(member_id AS VARCHAR) = $member")
    first_line = "COALESCE(line_no, 1) <= 1" if "line_no" in cols else "true"
    order_id = "order_id" if "order_id" in cols else "CAST(NULL AS VARCHAR)"
    if "ref_order_id" in cols and "order_id" in cols:  # a credit note refunds the order it reverses
        order_id = "coalesce(ref_order_id, order_id)"
    lines = f"""
        SELECT member_id, {order_id} AS order_id, CAST(order_time AS DATE) AS day, order_time, amount,
               greatest(amount, 0.0) AS value, CAST(amount >= 0 AND {first_line} AS INTEGER) AS n_orders
        FROM "{table}" WHERE {' AND '.join(where)}"""
    daily = """
        SELECT member_id, day, sum(value) AS value, CAST(sum(n_orders) AS BIGINT) AS n_orders, sum(net) AS net
        FROM corrected GROUP BY member_id, day"""
    if not has_returns:
        return f"WITH corrected AS (SELECT member_id, day, value, n_orders, amount AS net FROM ({lines})) {daily}"
    return f"""
        WITH lines AS NOT MATERIALIZED ({lines}),
        refunded AS (
            SELECT * FROM lines SEMI JOIN (
                SELECT DISTINCT member_id, order_id FROM lines WHERE amount < 0 AND order_id IS NOT NULL
            ) USING (member_id, order_id)),
        corrected AS (
            SELECT member_id, day, value, n_orders, amount AS net FROM lines
            UNION ALL
            SELECT member_id, day, -value, -n_orders, -amount FROM refunded
            UNION ALL
            SELECT member_id, CAST(min(order_time) AS DATE),
                   CASE WHEN sum(amount) >= 0.005 THEN sum(amount) ELSE 0.0 END,
                   CAST(sum(amount) >= 0.005 AS INTEGER), sum(amount)
            FROM refunded GROUP BY member_id, order_id)
        {daily}"""


def _summary_sql(days: str, as_of: dt.date, scale: float) -> str:
    """SQL of the per-member summary over the CTE named ``days``."""
    return f"""
        SELECT CAST(member_id AS VARCHAR) AS member_id,
               n_days - 1 AS frequency,
               date_diff('day', first_purchase, last_purchase) / {scale} AS recency,
               date_diff('day', first_purchase, DATE '{as_of.isoformat()}') / {scale} AS "T",
               CASE WHEN n_days > 1 THEN (purchase_value - first_value) / (n_days - 1) ELSE 0.0 END
                   AS monetary,
               first_purchase, last_purchase, n_orders, revenue
        FROM (
            SELECT member_id,
                   count(*) FILTER (WHERE n_orders > 0) AS n_days,
                   min(day) FILTER (WHERE n_orders > 0) AS first_purchase,
                   max(day) FILTER (WHERE n_orders > 0) AS last_purchase,
                   sum(value) AS purchase_value,
                   arg_min(value, day) FILTER (WHERE n_orders > 0) AS first_value,
                   CAST(sum(n_orders) AS BIGINT) AS n_orders,
                   sum(net) AS revenue
            FROM {days}
            GROUP BY member_id
            HAVING count(*) FILTER (WHERE n_orders > 0) > 0
        )"""


def rfm_summary(con: duckdb.DuckDBPyConnection, as_of, *, period: str = "W", since=None,
                table: str = "transactions") -> pd.DataFrame:
    """One row per member with a purchase day on or before ``as_of``.

    Parameters
    ----------
    con : DuckDB connection holding ``table`` (``member_id, order_time, amount``
        and, optionally, ``order_id`` and ``line_no``).
    as_of : date, inclusive end of the observation.
    period : ``"W"`` (weeks = days / 7) or ``"D"`` (days): unit of recency and T.
    since : optional date; transactions before it are ignored.

    Returns
    -------
    DataFrame with ``member_id, frequency, recency, T, monetary,
    first_purchase, last_purchase, n_orders, revenue`` (net yuan over the
    window, returns included), in no particular order (sorting a million
    ids costs more than the summary). ``attrs`` holds ``as_of`` and ``period``.
    """
    as_of = as_date(as_of, "as_of")
    since = as_date(since, "since") if since is not None else None
    scale = period_days(period)
    sql = f"WITH days AS ({_days_sql(con, table, as_of, since)}) {_summary_sql('days', as_of, scale)}"
    out = fetch_df(con, sql)
    out.attrs.update(as_of=as_of.isoformat(), period=period)
    return out


def calibration_holdout(con: duckdb.DuckDBPyConnection, calibration_end, observation_end, *,
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
    scale = period_days(period)
    duration = (obs_end - cal_end).days / scale
    sql = f"""
        WITH cal_days AS ({_days_sql(con, table, cal_end)}),
             all_days AS ({_days_sql(con, table, obs_end)}),
             cal AS ({_summary_sql('cal_days', cal_end, scale)}),
             hold AS (
                 SELECT CAST(member_id AS VARCHAR) AS member_id, count(*) AS n, avg(value) AS m
                 FROM all_days
                 WHERE n_orders > 0 AND day > DATE '{cal_end.isoformat()}'
                 GROUP BY member_id)
        SELECT cal.member_id, frequency, recency, "T", monetary,
               COALESCE(hold.n, 0) AS frequency_holdout,
               COALESCE(hold.m, 0.0) AS monetary_holdout,
               CAST({duration} AS DOUBLE) AS duration_holdout
        FROM cal LEFT JOIN hold USING (member_id)
        ORDER BY cal.member_id"""  # member order: folds and samples drawn from it are reproducible
    out = fetch_df(con, sql)
    out.attrs.update(calibration_end=cal_end.isoformat(), observation_end=obs_end.isoformat(), period=period)
    return out


def purchase_days(con: duckdb.DuckDBPyConnection, member_id: str, as_of, *,
                  table: str = "transactions") -> pd.DataFrame:
    """One member's purchase days up to ``as_of``: ``day, value`` (net yuan) and ``n_orders``."""
    as_of = as_date(as_of, "as_of")
    sql = f"""WITH days AS ({_days_sql(con, table, as_of, one_member=True)})
              SELECT day, value, n_orders FROM days WHERE n_orders > 0 ORDER BY day"""
    return con.execute(sql, {"member": str(member_id)}).df()


def purchase_timeline(con: duckdb.DuckDBPyConnection, cohort_end, observation_end, *,
                      table: str = "transactions") -> pd.DataFrame:
    """Daily first and repeat purchases of the members whose first purchase is on or before ``cohort_end``.

    Returns ``day, first_purchases, repeat_purchases`` up to ``observation_end``
    (days without either are left out): what cumulative tracking plots compare
    with a model.
    """
    cohort_end = as_date(cohort_end, "cohort_end")
    obs_end = as_date(observation_end, "observation_end")
    sql = f"""
        WITH days AS ({_days_sql(con, table, obs_end)}),
             bought AS (SELECT member_id, day FROM days WHERE n_orders > 0),
             cohort AS (SELECT member_id, min(day) AS first_day FROM bought GROUP BY member_id
                        HAVING min(day) <= DATE '{cohort_end.isoformat()}')
        SELECT day,
               count(*) FILTER (WHERE day = first_day) AS first_purchases,
               count(*) FILTER (WHERE day > first_day) AS repeat_purchases
        FROM bought JOIN cohort USING (member_id)
        GROUP BY day ORDER BY day"""
    return con.execute(sql).df()


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
