"""The manager dashboard without a browser: the KPI cube against the KPI tables, the mix, the scope, the page."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from crmkit import cohorts, engine, kpi_cube, kpis
from crmkit.apps import common
from crmkit.apps import dashboard as dash
from crmkit.privacy import find_raw_phones

REGION = "华南"
#: The KPIs a cube slice must reproduce from :func:`crmkit.kpis.kpis`'s hq row.
COMPARED = ("members_end", "active_members", "active_rate", "orders", "net_sales", "aov")


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


def load(db, region=None) -> dash.DashboardData:
    s = common.AppSettings(db, engine.Scope.of(region=region), "zh")
    con, scope = common.open_app_store(s)
    try:
        return dash.load(con, common.newest_run(con, db), scope)
    finally:
        con.close()


@pytest.fixture(scope="module")
def chain(scored):
    return load(scored[0])


@pytest.fixture(scope="module")
def south(scored):
    return load(scored[0], REGION)


def a_store(db) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT min(store_id) FROM stores WHERE region = ?", [REGION]).fetchone()[0]


def test_cube_slices_equal_the_kpi_tables(scored, chain):
    db, _ = scored
    store = a_store(db)
    cases = [(engine.CHAIN, kpi_cube.Slice()), (engine.Scope(region=REGION), kpi_cube.Slice(region=REGION)),
             (engine.Scope(store_id=store), kpi_cube.Slice(store_id=store)),
             (engine.Scope(region=REGION, channel="pos"), kpi_cube.Slice(region=REGION, channel="pos"))]
    windows = [k for k in chain.cube.ranges if not k.startswith("trend:")] + ["trend:" + f"{chain.cube.as_of:%Y-%m}"]
    assert len(windows) == 7  # the current and comparison windows of month, quarter and year, and a trend month
    with duckdb.connect(str(db), read_only=True) as con:
        for scope, s in cases:
            got = kpi_cube.totals(chain.cube, s)
            for key in windows:
                r = chain.cube.ranges[key]
                want = kpis.kpis(con, r.start, r.end, scope).query("level == 'hq'").iloc[0]
                for column in COMPARED:
                    assert got.loc[key, column] == pytest.approx(want[column], rel=1e-9, abs=1e-9, nan_ok=True), \
                        (scope, key, column)
            assert got.loc["month", "members_end"] > 0 and got.loc["month:base", "net_sales"] != 0


def test_windows_are_the_periods_and_their_matched_comparisons(chain):
    cube = chain.cube
    for kind in ("month", "quarter", "year"):
        c = engine.Period(kind, cube.as_of).comparison()
        assert (cube.ranges[kind], cube.ranges[f"{kind}:base"]) == (c.current, c.base)
    months = [k for k in cube.ranges if k.startswith("trend:")]
    assert len(months) == 12 and cube.ranges[months[-1]].end == cube.as_of


def test_a_scoped_cube_is_the_chain_cube_sliced(chain, south):
    got = kpi_cube.totals(south.cube, kpi_cube.Slice())
    want = kpi_cube.totals(chain.cube, kpi_cube.Slice(region=REGION))
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)
    for frame in (south.cube.members, south.cube.sales, south.cube.scores, south.cube.cohort_sizes):
        assert set(frame["region"]) == {REGION}


def test_mix_is_the_snapshots_own_group_by(scored, chain, south):
    db, _ = scored
    with duckdb.connect(str(db), read_only=True) as con:
        run = common.newest_run(con, db)
        for data, scope in ((chain, engine.CHAIN), (south, engine.Scope(region=REGION))):
            members = common.scope_scores(con, run, scope, ("member_id", "tier", "rfm_segment", "lifecycle_stage",
                                                            "clv", "churn_band"))
            for column in ("tier", "rfm_segment", "lifecycle_stage"):
                got = kpi_cube.mix(data.cube, kpi_cube.Slice(), column)
                assert got.to_dict() == members.groupby(column).size().to_dict(), column
            snap = kpi_cube.snapshot_totals(data.cube, kpi_cube.Slice())
            assert snap["members"] == len(members) and snap["clv"] == pytest.approx(members["clv"].sum(), rel=1e-12)
            assert snap["at_risk"] == int((members["churn_band"] == "high").sum())
    tier = chain.tiers[-1]
    got = kpi_cube.mix(chain.cube, kpi_cube.Slice(tier=tier), "tier")
    assert list(got.index) == [tier]


def test_retention_is_the_cohort_matrix(scored, chain):
    db, as_of = scored
    with duckdb.connect(str(db), read_only=True) as con:
        want = cohorts.retention_matrix(cohorts.cohort_activity(con, as_of))
    got = kpi_cube.retention(chain.cube, kpi_cube.Slice())
    got.index = pd.to_datetime(got.index)
    want.index = pd.to_datetime(want.index)
    np.testing.assert_allclose(got.to_numpy(), want.reindex(index=got.index, columns=got.columns).to_numpy(),
                               rtol=1e-12, equal_nan=True)


def test_store_ranking_has_leaders_and_laggards(chain):
    f = dash.Filters(region=REGION, period="quarter")
    leaders, laggards, n = dash.ranking(chain, f)
    stores = kpi_cube.store_sales(chain.cube, f.slice(), "quarter")
    assert n == len(stores) == (chain.cube.stores["region"] == REGION).sum()
    assert list(leaders["net_sales"]) == sorted(stores["net_sales"], reverse=True)[: dash.RANK_ROWS]
    assert list(laggards["net_sales"]) == sorted(stores["net_sales"])[: dash.RANK_ROWS]
    assert laggards["change"].notna().any()


def page_text(page: dash.DashboardPage) -> str:
    options = " ".join(label for w in page.widgets.values() for label, _ in w.options)
    return page.header.value + page.kpis.value + page.charts.value + options


def test_region_scoped_page_shows_nothing_outside_the_region(scored, no_env):
    db, as_of = scored
    no_env.setenv(common.ENV["region"], REGION)
    no_env.setenv(common.ENV["db"], str(db))
    s = common.settings()
    con, scope = common.open_app_store(s)
    try:
        data = dash.load(con, common.newest_run(con, db), scope)
        others = con.execute("SELECT store_id, name FROM stores WHERE region <> ?", [REGION]).fetchall()
        regions = {r[0] for r in con.execute("SELECT DISTINCT region FROM stores").fetchall()} - {REGION}
        inside = len(engine.scope.member_ids(con, as_of, engine.Scope(region=REGION)))
    finally:
        con.close()
    page = dash.DashboardPage(data, "zh")
    assert [v for _, v in page.widgets["region"].options] == ["", REGION]
    assert kpi_cube.totals(data.cube, kpi_cube.Slice()).loc["quarter", "members_end"] == inside
    for period in ("month", "quarter", "year"):
        page.widgets["period"].value = period
        text = page_text(page)
        assert REGION in text and not any(r in text for r in regions)
        assert not any(f"{sid} " in text or name in text for sid, name in others)


def test_filter_changes_change_the_kpis_and_the_store_list(chain):
    page = dash.DashboardPage(chain, "zh")
    assert all(f"crm-filter-{n}" in w._dom_classes for n, w in page.widgets.items())
    assert "crm-filter-lang" in page.lang_toggle._dom_classes
    before, stores = page.kpis.value, len(page.widgets["store"].options)
    assert before.count('class="crm-kpi"') == 6
    page.widgets["region"].value = REGION
    assert page.kpis.value != before and len(page.widgets["store"].options) < stores
    ids = set(chain.cube.stores.loc[chain.cube.stores["region"] == REGION, "store_id"])
    assert {v for _, v in page.widgets["store"].options[1:]} == ids
    store = page.widgets["store"].options[1][1]
    page.widgets["store"].value = store
    assert page.filters == dash.Filters(region=REGION, store=store)
    page.widgets["region"].value = ""  # the store list widens; the store stays chosen
    assert page.filters.store == store
    month = page.kpis.value
    page.widgets["period"].value = "year"
    assert page.kpis.value != month and "对比" in page.kpis.value
    page.lang_toggle.value = "en"
    assert "Active rate" in page.kpis.value and " vs " in page.kpis.value and "dash." not in page_text(page)


def test_page_has_no_raw_phone_or_name(scored, chain):
    with duckdb.connect(str(scored[0]), read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT name FROM members WHERE length(name) > 1").fetchall()]
    page = dash.DashboardPage(chain, "zh")
    for lang in ("zh", "en"):
        page.lang_toggle.value = lang
        text = page_text(page)
        assert find_raw_phones(text) == [] and not any(n in text for n in names)
        assert "crm-error" not in text


def test_cube_sql_is_portable(scored):
    """Every statement of the cube read is in the engine's portable subset (``test_portable_sql``'s checks)."""
    pytest.importorskip("sqlglot")
    from test_portable_sql import Recorder, _checked, portable_problems

    db, _ = scored
    with duckdb.connect(str(db), read_only=True) as con:
        schema = {}
        for table, column, kind in con.execute("SELECT table_name, column_name, data_type FROM "
                                               "information_schema.columns WHERE table_schema = 'main'").fetchall():
            schema.setdefault(table, {})[column] = kind
        rec = Recorder(con)
        kpi_cube.read_cube(rec, common.newest_run(con, db), engine.Scope(region=REGION))
    checked = [(q, params) for sql, params in rec.statements if (q := _checked(sql)) is not None]
    assert len(checked) >= 7
    problems = [p for q, params in checked for p in portable_problems(q, params, schema)]
    assert problems == []


def test_export_is_the_store_kpis_of_the_filters(scored, chain, south):
    """The export (made on click) lists every store of the filters with the period's KPIs and its comparison's:
    each row is the cube sliced to that store, and a region page's export holds that region's stores only."""
    import io

    f = dash.Filters(period="quarter")
    table = dash.store_table(chain, f)
    assert len(table) == len(chain.cube.stores) and table["net_sales"].is_monotonic_decreasing
    for row in table.head(3).itertuples():
        tot = kpi_cube.totals(chain.cube, kpi_cube.Slice(store_id=row.store_id))
        assert row.net_sales == tot.loc["quarter", "net_sales"]
        assert row.base_members_end == tot.loc["quarter:base", "members_end"]
    c = chain.cube.comparisons["quarter"]
    assert (table["start"].iloc[0], table["base_end"].iloc[0]) == (c.current.start, c.base.end)
    page = dash.DashboardPage(south, "en")
    assert "crm-export" in page.export.button._dom_classes and page.export.button.description == "Export store KPIs as CSV"
    page.export.button.click()
    assert page.export.link.value.startswith('<a class="crm-download" download="dashboard_')
    rows = pd.read_csv(io.StringIO(dash.export_csv(south, page.filters).decode("utf-8-sig")))
    assert set(rows["region"]) == {REGION} and len(rows) == len(south.cube.stores)
    assert find_raw_phones(rows.to_csv()) == []


def test_period_choices_name_a_whole_period_so(chain):
    """At a month end the month is whole (整月), not "month to date", as the header and the reports say."""
    labels = dict((v, k) for k, v in dash.options(chain, "period", dash.Filters(), "zh"))
    full = {kind: chain.cube.comparisons[kind].period.full for kind in ("month", "quarter", "year")}
    for kind, whole in full.items():
        assert labels[kind] == ({"month": "整月", "quarter": "整季度", "year": "整年"}[kind] if whole
                                else {"month": "本月至今", "quarter": "本季度至今", "year": "本年至今"}[kind])


def test_a_second_load_reads_the_cube_from_the_cache(scored, monkeypatch, tmp_path):
    """The next kernel reads the cube the first read (crmkit's cache): the same frames and page, no store read."""
    monkeypatch.setenv("CRMKIT_CACHE_DIR", str(tmp_path))
    read = []
    real = kpi_cube.read_cube
    monkeypatch.setattr(kpi_cube, "read_cube", lambda *a, **k: read.append(1) or real(*a, **k))
    first, second = load(scored[0], REGION), load(scored[0], REGION)
    assert len(read) == 1
    for name in dash.CUBE_FRAMES:
        pd.testing.assert_frame_equal(getattr(second.cube, name), getattr(first.cube, name))
    assert (second.cube.comparisons, second.cube.ranges, second.tiers) == (first.cube.comparisons,
                                                                          first.cube.ranges, first.tiers)
    f = dash.Filters(period="quarter", tier=first.tiers[0])
    assert dash.kpis(second, f, "en") == dash.kpis(first, f, "en")
    assert dash.charts_html(second, f, "zh") == dash.charts_html(first, f, "zh")  # the page, from what was kept
    load(scored[0])  # another scope: read from the store
    assert len(read) == 2
