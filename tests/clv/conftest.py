"""CDNOW sample loaded into an in-memory DuckDB ``transactions`` table, and its summaries.

The published figures of the BTYD literature are for the CDNOW sample (2,357
customers), calibration to 1997-09-30 and holdout to 1998-06-30, in weeks.
"""
from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from crmkit.rfm import calibration_holdout, rfm_summary

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


def load_cdnow(path) -> duckdb.DuckDBPyConnection:
    """A connection with ``transactions(member_id, order_time, amount)`` from a CDNOW text file."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    raw = raw[raw[raw.columns[-3]].str.isdigit()]  # CDNOW_master.txt has a header line
    tx = pd.DataFrame({
        "member_id": raw[0],
        "order_time": pd.to_datetime(raw[raw.columns[-3]], format="%Y%m%d"),
        "amount": raw[raw.columns[-1]].astype(float),
    })
    con = duckdb.connect(":memory:")
    con.register("raw_tx", tx)
    con.execute("CREATE TABLE transactions AS SELECT * FROM raw_tx")
    con.unregister("raw_tx")
    return con


@pytest.fixture(scope="session")
def cdnow_con(cdnow_sample_path):
    con = load_cdnow(cdnow_sample_path)
    yield con
    con.close()


@pytest.fixture(scope="session")
def cdnow_summary(cdnow_con) -> pd.DataFrame:
    return rfm_summary(cdnow_con, CALIBRATION_END, period="W")


@pytest.fixture(scope="session")
def cdnow_holdout(cdnow_con) -> pd.DataFrame:
    return calibration_holdout(cdnow_con, CALIBRATION_END, OBSERVATION_END, period="W")


@pytest.fixture(scope="session")
def bgnbd(cdnow_summary):
    from crmkit.clv import BetaGeo

    return BetaGeo().fit_summary(cdnow_summary)


@pytest.fixture(scope="session")
def gamma_gamma(cdnow_summary):
    from crmkit.clv import GammaGamma

    return GammaGamma().fit_summary(cdnow_summary)
