"""Periods to date and their matched comparison windows (crmkit.engine.period), and KPIs compared on them."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from crmkit import CrmkitError, dashboard, kpis
from crmkit.engine import DateRange, Period

D = dt.date


@pytest.mark.parametrize("kind, as_of, start", [
    ("month", "2026-03-15", D(2026, 3, 1)),
    ("quarter", "2026-05-15", D(2026, 4, 1)),
    ("quarter", "2026-12-31", D(2026, 10, 1)),
    ("year", "2026-03-31", D(2026, 1, 1)),
])
def test_a_period_runs_from_its_first_day_to_as_of(kind, as_of, start):
    p = Period(kind, as_of)
    assert (p.start, p.end) == (start, D.fromisoformat(as_of))
    assert tuple(p.range) == (start, D.fromisoformat(as_of))


@pytest.mark.parametrize("kind, as_of, previous", [
    ("month", "2026-03-15", (D(2026, 2, 1), D(2026, 2, 15))),    # the same days, never the whole month
    ("month", "2026-03-31", (D(2026, 2, 1), D(2026, 2, 28))),    # clipped to the shorter month
    ("month", "2026-03-30", (D(2026, 2, 1), D(2026, 2, 28))),
    ("month", "2026-04-30", (D(2026, 3, 1), D(2026, 3, 31))),    # a whole month against the whole month before
    ("month", "2026-01-10", (D(2025, 12, 1), D(2025, 12, 10))),
    ("month", "2024-03-31", (D(2024, 2, 1), D(2024, 2, 29))),    # leap year
    ("quarter", "2026-05-15", (D(2026, 1, 1), D(2026, 2, 15))),
    ("quarter", "2026-06-30", (D(2026, 1, 1), D(2026, 3, 31))),  # a whole quarter
    ("quarter", "2026-05-31", (D(2026, 1, 1), D(2026, 2, 28))),  # a month end maps to a month end
    ("year", "2026-03-31", (D(2025, 1, 1), D(2025, 3, 31))),
])
def test_the_previous_period_is_its_same_days(kind, as_of, previous):
    assert tuple(Period(kind, as_of).previous) == previous


@pytest.mark.parametrize("kind, as_of, last_year", [
    ("year", "2026-03-31", (D(2025, 1, 1), D(2025, 3, 31))),
    ("year", "2024-02-29", (D(2023, 1, 1), D(2023, 2, 28))),     # a leap day maps to February 28th
    ("year", "2025-02-28", (D(2024, 1, 1), D(2024, 2, 29))),     # a whole February against a whole February
    ("month", "2024-02-29", (D(2023, 2, 1), D(2023, 2, 28))),
    ("month", "2024-02-28", (D(2023, 2, 1), D(2023, 2, 28))),
    ("quarter", "2026-08-15", (D(2025, 7, 1), D(2025, 8, 15))),
])
def test_last_year_is_the_same_days_a_year_earlier(kind, as_of, last_year):
    assert tuple(Period(kind, as_of).last_year) == last_year


def test_full_periods_and_whole_calendar_periods():
    assert Period("month", "2026-04-30").full and not Period("month", "2026-04-29").full
    assert Period("quarter", "2026-06-30").full and not Period("quarter", "2026-05-31").full
    assert not Period("year", "2026-03-31").full
    assert tuple(Period("month", "2026-06-30").calendar(11)) == (D(2025, 7, 1), D(2025, 7, 31))
    assert tuple(Period("year", "2026-03-31").calendar(0)) == (D(2026, 1, 1), D(2026, 12, 31))
    # the dashboard's report_period is a thin wrapper
    assert dashboard.report_period("2026-03-31", "year", back=1) == (D(2025, 1, 1), D(2025, 12, 31))
    assert dashboard.report_period("2026-03-15", "month") == (D(2026, 3, 1), D(2026, 3, 15))


def test_range_words_print_a_year_once():
    assert DateRange(D(2026, 1, 1), D(2026, 3, 31)).words() == "2026-01-01 – 03-31"
    assert DateRange(D(2025, 12, 1), D(2026, 1, 15)).words() == "2025-12-01 – 2026-01-15"
    assert DateRange(D(2026, 3, 1), D(2026, 3, 1)).words() == "2026-03-01"
    assert DateRange(D(2026, 3, 1), D(2026, 3, 15)).days == 15


def test_year_at_2026_03_31_compares_with_2025_01_01_to_03_31():
    """The acceptance of issue 11: never Q1 against a whole year."""
    c = Period("year", "2026-03-31").comparison()
    assert tuple(c.base) == (D(2025, 1, 1), D(2025, 3, 31)) and c.against == "last_year"
    assert c.words("en") == "2026-01-01 – 03-31 vs 2025-01-01 – 03-31"
    assert c.words("zh") == "2026-01-01 – 03-31 对比 2025-01-01 – 03-31"
    assert c.note("en") == ("This period (year to date) 2026-01-01 – 03-31, "
                            "compared with the same days last year 2025-01-01 – 03-31")
    assert c.note("zh") == "本期（本年至今）2026-01-01 – 03-31，对比去年同期 2025-01-01 – 03-31"


def test_comparison_wording_names_what_is_compared():
    mid = Period("month", "2026-03-15").comparison()
    assert mid.words("en") == "2026-03-01 – 03-15 vs 2026-02-01 – 02-15"
    assert mid.note("zh") == "本期（本月至今）2026-03-01 – 03-15，对比上期同期 2026-02-01 – 02-15"
    assert mid.note("en") == ("This period (month to date) 2026-03-01 – 03-15, "
                              "compared with the same days of the previous period 2026-02-01 – 02-15")
    whole = Period("month", "2026-03-31").comparison()
    assert whole.note("zh") == "本期（整月）2026-03-01 – 03-31，对比上期 2026-02-01 – 02-28"
    assert whole.note("en") == ("This period (the whole month) 2026-03-01 – 03-31, "
                                "compared with the whole previous period 2026-02-01 – 02-28")
    ly = Period("quarter", "2026-06-30").comparison("last_year")
    assert ly.note("en") == ("This period (the whole quarter) 2026-04-01 – 06-30, "
                             "compared with the same period last year 2025-04-01 – 06-30")


def test_bad_periods_are_one_sentence():
    with pytest.raises(CrmkitError, match="period must be one of month, quarter, year"):
        Period("fortnight", "2026-03-31")
    with pytest.raises(CrmkitError, match="not a date"):
        Period("month", "31/03/2026x")
    with pytest.raises(CrmkitError, match="compare with one of previous, last_year"):
        Period("month", "2026-03-31").comparison("whole_year")


def test_kpi_change_is_points_for_shares_and_relative_otherwise():
    assert kpis.kpi_change("active_rate", 0.40, 0.35) == pytest.approx(0.05)
    assert kpis.kpi_change("net_sales", 90.0, 80.0) == pytest.approx(0.125)
    assert np.isnan(kpis.kpi_change("orders", 5, 0)) and np.isnan(kpis.kpi_change("aov", np.nan, 3.0))


@pytest.fixture
def two_years(con):
    con.execute("INSERT INTO stores VALUES ('S1', '一店', '上海', '华东')")
    con.execute("""INSERT INTO members (member_id, join_date, join_store_id) VALUES
        ('a', '2024-06-01', 'S1'), ('b', '2025-02-10', 'S1'), ('c', '2026-01-15', 'S1')""")
    con.execute("""INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, amount, txn_type)
        VALUES ('a', 'A1', 1, '2025-01-10 10:00', 'S1', 100, 'sale'),
               ('b', 'B1', 1, '2025-03-31 23:00', 'S1', 200, 'sale'),
               ('b', 'B2', 1, '2025-04-01 09:00', 'S1', 300, 'sale'),
               ('a', 'A2', 1, '2025-06-01 10:00', 'S1', 500, 'sale'),
               ('a', 'A3', 1, '2026-02-01 10:00', 'S1', 150, 'sale'),
               ('c', 'C1', 1, '2026-03-31 20:00', 'S1', 50, 'sale'),
               ('c', 'C2', 1, '2026-04-01 10:00', 'S1', 999, 'sale')""")
    return con


def test_year_to_date_kpis_against_the_same_days_last_year(two_years):
    compared = kpis.compare(two_years, Period("year", "2026-03-31"))
    cur, base = compared.current.iloc[0], compared.base.iloc[0]
    # 2026-01-01 – 03-31: a, b before; c joins; A3 and C1 (C2 is after as_of)
    assert (cur.members_start, cur.new_members, cur.members_end, cur.active_members) == (2, 1, 3, 2)
    assert (cur.orders, cur.net_sales, cur.aov) == (2, 200.0, 100.0)
    # 2025-01-01 – 03-31: a before; b joins; A1 and B1 (B2 and A2 are later in 2025, outside)
    assert (base.members_start, base.new_members, base.members_end, base.active_members) == (1, 1, 2, 2)
    assert (base.orders, base.net_sales, base.aov) == (2, 300.0, 150.0)
    changes = kpis.kpi_changes(cur, base, ["net_sales", "orders", "members_end", "active_rate", "aov"])
    assert changes.loc["net_sales"].tolist() == [200.0, 300.0, pytest.approx(-1 / 3)]   # not -82% against all of 2025
    assert changes.loc["orders", "change"] == 0.0
    assert changes.loc["members_end", "change"] == pytest.approx(0.5)
    assert changes.loc["active_rate", "change"] == pytest.approx(2 / 3 - 1)            # points: 66.7% vs 100%
    assert changes.loc["aov", "change"] == pytest.approx(-1 / 3)

    table = dashboard.kpi_comparison(cur, base, "en", comparison=compared.comparison).set_index("Metric")
    assert table.columns.tolist() == ["This period (2026-01-01 – 03-31)", "Same days last year (2025-01-01 – 03-31)",
                                      "Change"]
    assert table.loc["Net sales (¥)"].tolist() == ["¥200", "¥300", "-33.3%"]
    assert table.loc["Active rate"].tolist() == ["66.7%", "100.0%", "-33.3 pp"]
    zh = dashboard.kpi_comparison(cur, base, "zh", comparison=compared.comparison)
    assert zh.columns[1:3].tolist() == ["本期（2026-01-01 – 03-31）", "去年同期（2025-01-01 – 03-31）"]


def test_a_mid_month_is_compared_with_the_same_days_of_the_month_before(two_years):
    compared = kpis.compare(two_years, Period("month", "2026-02-15"))
    assert tuple(compared.comparison.base) == (D(2026, 1, 1), D(2026, 1, 15))
    assert compared.current.iloc[0].net_sales == 150.0 and compared.base.iloc[0].net_sales == 0.0
    assert compared.base.iloc[0].new_members == 1  # c joined on 01-15, the window's last day


def test_a_store_opened_since_shows_dashes_against_last_year(two_years, monkeypatch):
    two_years.execute("INSERT INTO stores VALUES ('S2', '二店', '广州', '华南')")
    two_years.execute("INSERT INTO members (member_id, join_date, join_store_id) VALUES ('d', '2026-02-01', 'S2')")
    two_years.execute("INSERT INTO transactions (member_id, order_id, line_no, order_time, store_id, amount, txn_type)"
                      " VALUES ('d', 'D1', 1, '2026-03-01 10:00', 'S2', 80, 'sale')")
    shown = []
    monkeypatch.setattr("crmkit.dashboard.kpi.show_note", shown.append)
    monkeypatch.setattr("crmkit.dashboard.kpi.show_table", lambda table, lang: shown.append(table))
    dashboard.show_kpi_comparison(kpis.compare(two_years, Period("year", "2026-03-31")), "en", store_id="S2")
    note, table = shown
    assert note.startswith("This period (year to date) 2026-01-01 – 03-31")
    assert table.set_index("Metric").loc["Net sales (¥)"].tolist() == ["¥80", "–", "–"]
