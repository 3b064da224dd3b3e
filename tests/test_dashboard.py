"""Display pieces of the report notebooks: periods, formatted tables, KPI views."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest

from crmkit import CrmkitError, dashboard
from crmkit.tiers import TierRules

D = dt.date


@pytest.mark.parametrize("as_of, period, back, expected", [
    ("2026-06-30", "month", 0, (D(2026, 6, 1), D(2026, 6, 30))),
    ("2026-06-15", "month", 0, (D(2026, 6, 1), D(2026, 6, 15))),    # the current period ends at as_of
    ("2026-03-31", "month", 1, (D(2026, 2, 1), D(2026, 2, 28))),    # calendar months, not 30 days
    ("2024-03-10", "month", 1, (D(2024, 2, 1), D(2024, 2, 29))),    # leap year
    ("2026-01-10", "month", 1, (D(2025, 12, 1), D(2025, 12, 31))),
    ("2026-06-30", "quarter", 1, (D(2026, 1, 1), D(2026, 3, 31))),
    ("2026-02-10", "year", 1, (D(2025, 1, 1), D(2025, 12, 31))),
])
def test_report_period(as_of, period, back, expected):
    assert dashboard.report_period(as_of, period, back) == expected


def test_report_period_rejects_unknown_period():
    with pytest.raises(CrmkitError, match="period must be one of"):
        dashboard.report_period("2026-06-30", "fortnight")


def test_format_table_masks_formats_and_translates():
    TierRules.load()  # registers the tier labels of the default rules
    df = pd.DataFrame({"member_id": ["M1", "M2"], "phone": ["13812345678", None],
                       "clv": [1234567.4, float("nan")], "churn_risk": [0.1234, 0.5],
                       "tier": ["Gold", "Regular"], "visits": [1200, 3]})
    zh = dashboard.format_table(df, "zh")
    assert list(zh.columns) == ["会员编号", "手机号", "客户终身价值 CLV（元）", "流失风险", "会员等级",
                                "visits"]
    assert zh.iloc[0].tolist() == ["M1", "138****5678", "¥1,234,567", "12.3%", "金卡", "1,200"]
    assert zh.iloc[1].tolist() == ["M2", "–", "–", "50.0%", "普通", "3"]
    en = dashboard.format_table(df, "en", columns=["tier", "clv"])
    assert list(en.columns) == ["Tier", "CLV (¥)"]
    assert en["Tier"].tolist() == ["Gold", "Regular"]


def test_table_html_has_no_index_right_aligns_numbers_and_hides_phones():
    df = pd.DataFrame({"member_id": ["M1"], "phone": ["13812345678"], "net_sales": [1500.0]})
    out = dashboard.table_html(df, "en")
    assert "13812345678" not in out and "138****5678" in out
    assert re.search(r"td:nth-child\(3\),table\.crmkit-\w+ th:nth-child\(3\)\{text-align:right\}", out)
    assert "nth-child(1)" not in out and "nth-child(2)" not in out
    assert "<th></th>" not in out and "¥1,500" in out
    assert "no data" in dashboard.table_html(df.iloc[0:0], "en")


def test_numeric_columns_recognise_formatted_numbers_and_intervals():
    shown = pd.DataFrame({"metric": ["Conversion", "ROI"], "value": ["12.6%", "–"],
                          "lift": ["+2.5% [-1.5%, +6.0%]", "+¥3,243 [+¥467, +¥6,020]"],
                          "pp": ["+5.0 pp", "-¥1,500"], "mixed": ["1,200", "S01"]}, dtype=object)
    assert dashboard.numeric_columns(shown) == [1, 2, 3]


def _kpis():
    cols = ["level", "region", "store_id", "store_name", *dashboard.HEADLINE_KPIS]
    hq = ["hq", None, None, None, 1000, 100, 0.111, 400, 0.4, 1.5, 600, 90000.0, 150.0, 0.02, 0.6]
    east = ["region", "East", None, None, 600, 60, 0.111, 250, 0.4167, 1.6, 400, 60000.0, 150.0, 0.01, 0.7]
    west = ["region", "West", None, None, 400, 40, 0.111, 150, 0.375, 1.3, 200, 30000.0, 150.0, 0.03, 0.5]
    s1 = ["store", "East", "S1", "East Mall", 600, 60, 0.111, 250, 0.4167, 1.6, 400, 60000.0, 150.0, 0.01, 0.7]
    s2 = ["store", "West", "S2", "West Park", 300, 30, 0.111, 100, 0.333, 1.2, 120, 18000.0, 150.0, 0.03, 0.5]
    s3 = ["store", "West", "S3", "West Lake", 100, 10, 0.111, 50, 0.5, 1.6, 80, 12000.0, 150.0, 0.03, 0.5]
    online = ["store", None, None, None, 0, 0, None, 0, None, None, 0, 0.0, None, None, None]
    return pd.DataFrame([hq, east, west, s1, s2, s3, online], columns=cols)


def test_kpi_row_picks_hq_region_or_store():
    k = _kpis()
    assert dashboard.kpi_row(k)["members_end"] == 1000
    assert dashboard.kpi_row(k, region="West")["net_sales"] == 30000.0
    assert dashboard.kpi_row(k, store_id="S3")["orders"] == 80
    with pytest.raises(CrmkitError, match="region 'North'"):
        dashboard.kpi_row(k, region="North")


def test_kpi_comparison_changes_are_relative_for_amounts_and_points_for_rates():
    k = _kpis()
    cur, prev = k.iloc[0], k.iloc[0].copy()
    prev["net_sales"], prev["active_rate"], prev["orders"] = 80000.0, 0.35, 0
    table = dashboard.kpi_comparison(cur, prev, "en").set_index("Metric")
    assert table.loc["Net sales (¥)"].tolist() == ["¥90,000", "¥80,000", "+12.5%"]
    assert table.loc["Active rate"].tolist() == ["40.0%", "35.0%", "+5.0 pp"]
    assert table.loc["Orders"].tolist() == ["600", "0", "–"]  # no change from zero
    assert table.loc["Members at end", "Change"] == "+0.0%"


def test_ranking_orders_named_units_and_filters_by_region():
    k = _kpis()
    stores = dashboard.ranking(k, "store", by="net_sales")
    assert stores["store_id"].tolist() == ["S1", "S2", "S3"]  # the store-less online row is left out
    west = dashboard.ranking(k, "store", by="orders", region="West", top=1)
    assert west["store_id"].tolist() == ["S2"]
    # the members without a home store stand beside the regions, so that the regions add up
    regions = dashboard.ranking(k, "region", lang="en")
    assert regions["region"].tolist() == ["East", "West"]
    online = pd.DataFrame([["region", None, None, None] + [0] * 9 + [5000.0, None]], columns=k.columns)
    with_online = dashboard.ranking(pd.concat([k, online], ignore_index=True), "region", lang="en")
    assert with_online["region"].tolist() == ["East", "West", "Online (no home store)"]
    assert with_online.attrs["units"] == 3 and dashboard.ranking(k, "store", top=2).attrs["units"] == 3


def test_header_lists_period_data_and_filters(con):
    con.execute("INSERT INTO members (member_id, phone, join_date) VALUES ('A', '13800000001', '2026-01-05'),"
                "('B', NULL, '2026-07-01')")
    con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) VALUES "
                "('A', 'o1', '2026-02-01 10:00', 10), ('A', 'o1', '2026-02-01 10:00', 5),"
                "('C', 'o2', '2026-03-01 12:00', 20), ('A', 'o3', '2026-07-02 09:00', 30)")
    span = dashboard.data_span(con, "2026-06-30")
    assert span == {"members": 2, "orders": 2, "first": D(2026, 2, 1), "last": D(2026, 3, 1)}
    out = dashboard.header_html("Member overview", span, "2026-06-30", "en",
                                period=dashboard.report_period("2026-06-30"),
                                filters={"region": "East", "store_id": None},
                                generated_at=dt.datetime(2026, 7, 1, 8, 0))
    assert "<h1>Member overview</h1>" in out
    assert "2026-06-01 – 2026-06-30" in out
    assert "2 members, 2 orders, 2026-02-01 to 2026-03-01" in out
    assert "Region = East" in out and "Store ID" not in out
    assert "Generated 2026-07-01 08:00" in out


def test_store_path_does_not_depend_on_the_notebook_folder(tmp_path, monkeypatch):
    from crmkit.reports import notebooks_dir

    assert dashboard.store_path("/abs/crm.duckdb") == Path("/abs/crm.duckdb")
    monkeypatch.chdir(tmp_path)  # e.g. JupyterLab started in notebooks/
    assert dashboard.store_path("pyproject.toml") == notebooks_dir().parent / "pyproject.toml"
    (tmp_path / "here.duckdb").write_text("")
    assert dashboard.store_path("here.duckdb") == Path("here.duckdb")
    assert dashboard.store_path("nowhere.duckdb") == Path("nowhere.duckdb")
    with pytest.raises(CrmkitError, match="no member store there"):
        dashboard.open_store("nowhere.duckdb")


def _campaign_result() -> dict:
    """The parts of ``CampaignResult.to_dict("en")`` the report shows (hand-made numbers)."""
    metric = {"treatment": 0.126, "control": 0.10, "lift": 0.026, "lift_ci": [-0.015, 0.06],
              "lift_rel": 0.26, "lift_rel_ci": [-0.126, 0.762]}
    money = {"treatment": 25.64, "control": 16.33, "lift": 9.31, "lift_ci": [1.34, 17.28],
             "lift_rel": 0.57, "lift_rel_ci": [-0.1, 1.241]}
    return {
        "campaign_id": "C1", "name": "618 大促",
        "window": {"start": "2026-06-01T00:00:00", "end": "2026-06-15T00:00:00", "end_exclusive": True},
        "incrementality": {"confidence": 0.95, "interval_method": "welch"},
        "n_treatment": 1161, "n_control": 339, "n_contacted": 1100,
        "conversion": metric, "orders_per_member": {**metric, "treatment": 0.152, "control": 0.118},
        "revenue_per_member": money, "margin_per_member": money,
        "incremental_orders": 40.2, "incremental_orders_ci": [-16, 96],
        "incremental_revenue": 10811.0, "incremental_revenue_ci": [1556.0, 20067.0],
        "incremental_margin": 3243.0, "incremental_margin_ci": [467.0, 6020.0],
        "cost": 1058.0, "net_margin": 2185.0, "net_margin_ci": [-591.0, 4962.0],
        "roi": 2.065, "roi_ci": [-0.559, 4.69], "p_value": 0.0614,
        "verdict": "cannot tell yet", "verdict_label": "cannot tell yet",
        "verdict_text": "Cannot tell yet: the interval includes break-even.", "warnings": ["Few buyers."],
    }


def test_campaign_tables_show_every_estimate_with_its_interval():
    r = _campaign_result()
    lifts = dashboard.campaign_lifts(r, "en").set_index("Metric")
    assert lifts.loc["Conversion"].tolist() == ["12.6%", "10.0%", "+2.6 pp [-1.5 pp, +6.0 pp]",
                                                "+26.0% [-12.6%, +76.2%]"]
    assert lifts.loc["Revenue / member", "Lift"] == "+¥9.31 [+¥1.34, +¥17.28]"
    totals = dict(dashboard.campaign_totals(r, "en").to_numpy())
    assert totals["Incremental orders"] == "+40 [-16, +96]"
    assert totals["Incremental gross margin"] == "+¥3,243 [+¥467, +¥6,020]"
    assert totals["Incremental margin − cost"] == "+¥2,185 [-¥591, +¥4,962]"
    assert totals["ROI"] == "+206.5% [-55.9%, +469.0%]"
    assert totals["Total cost"] == "¥1,058"
    head = dashboard.campaign_header_html(r, "en")
    assert "Campaign C1 (618 大促)" in head and "2026-06-01 to 2026-06-14 (14 days)" in head
    verdict = dashboard.verdict_html(r, "en")
    assert "cannot tell yet" in verdict and "<li>Few buyers.</li>" in verdict


def test_choose_campaign_and_campaigns_ended(con):
    con.execute("""INSERT INTO campaigns (campaign_id, start, "end") VALUES
        ('A', '2026-03-01', '2026-03-15'), ('B', '2026-06-01', '2026-06-18'), ('C', '2026-06-20', '2026-07-05')""")
    assert dashboard.choose_campaign(con, "2026-06-30") == "B"  # C has not ended yet
    assert dashboard.choose_campaign(con, "2026-06-30", "A") == "A"
    assert dashboard.campaigns_ended(con, "2026-03-01", "2026-06-30") == ["A", "B"]
    assert dashboard.campaigns_ended(con, "2026-06-01", "2026-06-30") == ["B"]
    with pytest.raises(CrmkitError, match="no campaign has ended by 2026-02-28"):
        dashboard.choose_campaign(con, "2026-02-28")


def test_total_value_sentence():
    total = pd.Series({"clv": 314554.3, "clv_low": 302441.4, "clv_high": 327152.2, "members": 2865.0})
    assert dashboard.total_value_html(total, 365, 0.9, "en") == (
        "<p>Total customer lifetime value (CLV) over the next 365 days: ¥314,554, 90% prediction interval "
        "¥302,441 – ¥327,152, over 2,865 members who have bought.</p>")


def test_growth_and_ranking_charts_carry_units():
    growth = pd.DataFrame({"month": pd.to_datetime(["2026-05-01", "2026-06-01"]),
                           "new_members": [150, 120], "buyers": [640, 580]})
    fig = dashboard.plot_growth(growth, "zh")
    ax = fig.axes[0]
    assert ax.get_title() == "会员增长与购买（近 2 个月，人）"
    assert ax.get_ylabel() == "人数（人）"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2026-05", "2026-06"]
    ranked = dashboard.ranking(_kpis(), "store")
    fig = dashboard.plot_ranking(ranked, "store", "net_sales", "en")
    ax = fig.axes[0]
    assert ax.get_title() == "Store ranking by Net sales (¥) (all 3)"  # every store is shown
    assert ax.xaxis.get_major_formatter()(25000, 0) == "¥25,000"
    ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks] == ["East Mall", "West Park", "West Lake"]  # best at the top
