"""Scoring in one pass (issue 11, item 4): the one engine query gives the values of the separate analyses.

``crmkit.scoring.member_rows`` computes the RFM summary, R/F/M scores and
segment, lifecycle stage, tier and churn behaviour features of every buyer in
one query over the engine's ``member_facts``. Each value must be the one the
module that owns the rule gives on its own (:func:`crmkit.rfm.rfm_summary`,
:func:`crmkit.segments.rfm_scores`, :func:`crmkit.lifecycle.stages`,
:func:`crmkit.tiers.assign_tiers`), on the demo store (members, channels,
returns, credit notes) at several dates, and the score table must carry them.
"""
from __future__ import annotations

import datetime as dt
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmkit import engine
from crmkit.churn import BEHAVIOUR_SQL, behaviour_features, calibration_features
from crmkit.lifecycle import stages
from crmkit.rfm import calibration_holdout, purchase_days, rfm_summary
from crmkit.scoring import member_rows, member_rows_query, score_members
from crmkit.segments import rfm_scores
from crmkit.tiers import TierRules, assign_tiers

DATES = ("2025-12-31", "2025-06-30", "2024-09-15")
SUMMARY = ("frequency", "recency", "T", "monetary")


@pytest.fixture(scope="module")
def demo(demo_store):
    con = duckdb.connect(str(demo_store[0]), read_only=True)
    yield con
    con.close()


def _separately(con, as_of, **kw) -> pd.DataFrame:
    """The per-member values as each module computes them on its own, one row per buyer."""
    out = rfm_summary(con, as_of)[["member_id", *SUMMARY]]
    for extra in (rfm_scores(con, as_of)[["member_id", "rfm_r", "rfm_f", "rfm_m", "rfm_segment"]],
                  stages(con, as_of, kw.get("windows"))[["member_id", "lifecycle_stage"]],
                  assign_tiers(con, as_of, kw.get("rules"))[["member_id", "tier"]]):
        out = out.merge(extra, on="member_id", how="left")
    return out.sort_values("member_id", ignore_index=True)


def _assert_same(got: pd.DataFrame, want: pd.DataFrame, columns) -> None:
    assert got["member_id"].tolist() == want["member_id"].tolist()
    for c in columns:
        if want[c].dtype.kind in "fiu":
            np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-12, atol=1e-9,
                                       err_msg=c)
        else:
            assert got[c].tolist() == want[c].tolist(), c


@pytest.mark.parametrize("as_of", DATES)
def test_one_query_gives_each_modules_values(demo, as_of):
    got = member_rows(demo, as_of).to_pandas()
    want = _separately(demo, as_of)
    assert len(want) > 100
    _assert_same(got, want, [*SUMMARY, "rfm_r", "rfm_f", "rfm_m", "rfm_segment", "lifecycle_stage", "tier"])
    _assert_same(got, behaviour_features(demo, as_of), list(BEHAVIOUR_SQL))


def test_windows_and_rules_are_those_given(demo):
    windows = {"new_days": 30, "active_days": 60, "churn_days": 200}
    rules = {"window_days": 180, "tiers": [{"name": "Base", "min_spend": 0}, {"name": "Top", "min_spend": 500}]}
    got = member_rows(demo, "2025-12-31", windows=windows, rules=TierRules.load(rules)).to_pandas()
    want = _separately(demo, "2025-12-31", windows=windows, rules=rules)
    _assert_same(got, want, ["lifecycle_stage", "tier"])
    assert set(got["tier"]) == {"Base", "Top"} and "won_back" in set(got["lifecycle_stage"])


def test_behaviour_features_by_hand(demo):
    """Intervals and tenure from each member's purchase days, the engine's definition, counted in pandas."""
    as_of = dt.date(2025, 12, 31)
    got = member_rows(demo, as_of).to_pandas().set_index("member_id")
    for member in got.index[::97]:
        days = pd.to_datetime(purchase_days(demo, member, as_of)["day"]).dt.date.tolist()
        row = got.loc[member]
        assert row["days_since_last"] == (as_of - days[-1]).days
        assert row["tenure_days"] == (as_of - days[0]).days + 1
        if len(days) > 1:
            assert row["last_interval_days"] == (days[-1] - days[-2]).days
            assert row["mean_interval_days"] == pytest.approx((days[-1] - days[0]).days / (len(days) - 1))
        else:
            assert pd.isna(row["last_interval_days"]) and pd.isna(row["mean_interval_days"])


def test_score_table_carries_the_modules_values(demo):
    scores = score_members(demo, "2025-12-31")
    want = _separately(demo, "2025-12-31")
    _assert_same(scores.table, want, [*SUMMARY, "rfm_r", "rfm_f", "rfm_m", "rfm_segment", "lifecycle_stage", "tier"])
    assert scores.table.index.equals(pd.RangeIndex(len(want)))


def test_calibration_features_are_the_holdout_and_behaviour(demo):
    got = calibration_features(demo, "2025-03-31", "2025-09-27")
    want = calibration_holdout(demo, "2025-03-31", "2025-09-27")
    _assert_same(got, want, [*SUMMARY, "frequency_holdout"])
    _assert_same(got, behaviour_features(demo, "2025-03-31"), list(BEHAVIOUR_SQL))


_DUCKDB_ONLY = re.compile(r"\b(QUALIFY|ASOF|struct_pack|rowid|list_\w+|arg_min_null|arg_max_null|FILTER|"
                          r"GROUP BY ALL|UNION ALL BY NAME|SEMI JOIN|ANTI JOIN|unnest)\b|::", re.IGNORECASE)


def test_the_one_query_is_portable_sql_with_bound_values():
    q, select = member_rows_query("2025-12-31")
    sql = q.sql(select)
    assert not _DUCKDB_ONLY.search(sql), _DUCKDB_ONLY.search(sql)
    assert "2025" not in sql and "Champions" not in sql and "Gold" not in sql  # values are bound
    sqlglot = pytest.importorskip("sqlglot")
    assert len(sqlglot.transpile(sql, read="duckdb", write="spark")) == 1


def test_member_facts_relation_is_portable():
    sql = engine.member_facts("2025-12-31", suffix="_x").sql("SELECT * FROM member_facts_x")
    assert not _DUCKDB_ONLY.search(sql)


def test_days_carry_the_money_of_their_lines(demo):
    """``bought`` and ``returned`` of the engine's days sum, per member, to the positive and the negative
    amounts of the member's lines: member_facts reads returns from them instead of a second pass."""
    as_of = "2025-06-30"
    got = engine.days(as_of).df(demo, "SELECT CAST(member_id AS VARCHAR) AS member_id, sum(bought) AS bought, "
                                      "sum(returned) AS returned FROM days GROUP BY member_id ORDER BY member_id")
    want = demo.execute("""
SELECT CAST(member_id AS VARCHAR) AS member_id, sum(CASE WHEN amount > 0 THEN amount END) AS bought,
       sum(CASE WHEN amount < 0 THEN -amount END) AS returned
FROM transactions
WHERE member_id IS NOT NULL AND amount IS NOT NULL AND order_time < CAST($d AS DATE) + INTERVAL 1 DAY
GROUP BY 1 ORDER BY 1""", {"d": as_of}).df()
    assert want["returned"].notna().any() and want["returned"].isna().any()  # members with and without returns
    _assert_same(got, want, ["bought"])
    assert got["returned"].isna().tolist() == want["returned"].isna().tolist()
    np.testing.assert_allclose(got["returned"].fillna(0), want["returned"].fillna(0), rtol=1e-12)
