"""Scope (chain, region, store, channel) as an engine argument: every scoped analysis counts the
scope's members and sales only, and agrees with the chain-wide analysis grouped by the same unit."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import crmkit
from crmkit import cohorts, dashboard, kpis, lifecycle, segments, tiers
from crmkit.engine import Scope
from crmkit.engine.scope import member_ids
from crmkit.errors import CrmkitError

AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def store(demo_store):
    con = crmkit.connect(demo_store[0], read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def region(store) -> str:
    """The demo region with the most home members (so that every table has rows)."""
    return lifecycle.stages(store, AS_OF).groupby("region")["member_id"].count().idxmax()


@pytest.fixture(scope="module")
def home(store) -> pd.DataFrame:
    return lifecycle.stages(store, AS_OF).set_index("member_id")


def test_scope_of_reads_blank_as_the_chain_and_text_only():
    assert Scope.of(region="", store_id=None).chain and Scope.of(None) == Scope()
    assert Scope.of({"store_id": 1001}) == Scope(store_id="1001")
    assert Scope.of(Scope(region="华南"), channel="pos") == Scope(region="华南", channel="pos")
    assert Scope(region="华南", store_id="S01").slug() == "region-华南_store-S01" and Scope().slug() == "chain"
    odd = Scope(store_id="../S 01").slug()
    assert odd.startswith("store-___S_01-") and "/" not in odd  # a folder name, never a path
    assert Scope(store_id="S.01").slug() != Scope(store_id="S_01").slug()
    with pytest.raises(CrmkitError, match="unknown scope field 'city'"):
        Scope.of({"city": "广州"})


def test_unknown_region_store_or_channel_is_one_sentence_with_the_choices(store, region):
    with pytest.raises(CrmkitError, match=r"unknown region 'Atlantis'; the stores' regions are: .*" + region):
        dashboard.report_scope(store, region="Atlantis")
    with pytest.raises(CrmkitError, match=r"unknown store 'S999'; known stores: "):
        dashboard.report_scope(store, store_id="S999")
    with pytest.raises(CrmkitError, match=r"unknown channel 'fax'; the data's channels are: .*pos"):
        dashboard.report_scope(store, channel="fax")
    other_store = store.execute("SELECT store_id FROM stores WHERE region <> $r LIMIT 1", {"r": region}).fetchone()[0]
    with pytest.raises(CrmkitError, match=rf"store '{other_store}' is in region .*, not '{region}'"):
        dashboard.report_scope(store, region=region, store_id=other_store)
    assert dashboard.report_scope(store, region=region) == Scope(region=region)


def test_scope_members_are_those_of_their_home(store, region, home):
    ids = set(member_ids(store, AS_OF, Scope(region=region)))
    assert ids == set(home.index[home["region"] == region])
    pos = set(member_ids(store, AS_OF, Scope(region=region, channel="pos")))
    assert pos == set(home.index[(home["region"] == region) & (home["channel"] == "pos")])
    assert set(member_ids(store, AS_OF, Scope())) == set(home.index)


def test_scoped_kpis_are_the_chain_tables_row_of_that_unit(store, region):
    start, end = "2026-04-01", AS_OF
    chain = kpis.kpis(store, start, end)
    scoped = kpis.kpis(store, start, end, Scope(region=region))
    assert set(scoped["region"].dropna()) == {region}  # no other region's stores or members
    mine = scoped[scoped["level"] == "hq"].iloc[0]
    theirs = chain[(chain["level"] == "region") & (chain["region"] == region)].iloc[0]
    cols = [c for c in chain.columns if c not in ("level", "region", "store_id", "store_name")]
    pd.testing.assert_series_equal(mine[cols], theirs[cols], check_names=False)
    hq = chain[chain["level"] == "hq"].iloc[0]
    assert mine["net_sales"] < hq["net_sales"] and mine["members_end"] < hq["members_end"]
    stores = scoped[scoped["level"] == "store"].set_index("store_id")
    chain_stores = chain[(chain["level"] == "store") & (chain["region"] == region)].set_index("store_id")
    pd.testing.assert_frame_equal(stores[cols], chain_stores[cols])


def test_channel_scope_keeps_sales_of_that_channel_and_drops_till_totals(store):
    start, end = "2026-04-01", AS_OF
    pos = kpis.kpis(store, start, end, Scope(channel="pos")).iloc[0]
    sales = store.execute("""SELECT sum(amount) FROM transactions WHERE channel = 'pos'
        AND order_time >= DATE '2026-04-01' AND order_time < DATE '2026-07-01'""").fetchone()[0]
    assert pos["net_sales"] == pytest.approx(sales)
    assert pd.isna(pos["till_sales"]) and pd.isna(pos["member_share_of_sales"])


def test_member_analyses_count_the_scope_members_with_chain_values(store, region, home):
    scope = Scope(region=region)
    mine = home[home["region"] == region]
    # tiers: each member keeps the tier the chain gives them
    chain_tiers = tiers.assign_tiers(store, AS_OF).set_index("member_id")["tier"]
    t = tiers.tier_summary(store, AS_OF, scope=scope).set_index("tier")["members"]
    expected = chain_tiers[mine.index].value_counts().reindex(t.index, fill_value=0)
    assert (t == expected).all() and t.sum() == len(mine)
    # RFM: ranked among the chain's buyers, counted in the scope
    chain_rfm = segments.rfm_scores(store, AS_OF).set_index("member_id")["rfm_segment"]
    s = segments.segment_summary(store, AS_OF, scope=scope).set_index("rfm_segment")["members"]
    expected = chain_rfm[chain_rfm.index.isin(mine.index)].value_counts().reindex(s.index, fill_value=0)
    assert (s == expected).all()
    # lifecycle stages and the funnel
    st = lifecycle.stage_summary(store, AS_OF, scope=scope).set_index("lifecycle_stage")["members"]
    by_region = lifecycle.stage_summary(store, AS_OF, by="region")
    assert (st == by_region[by_region["region"] == region].set_index("lifecycle_stage")["members"]).all()
    assert lifecycle.funnel(store, AS_OF, scope=scope).iloc[0]["members"] == len(mine)
    # growth
    grown = lifecycle.monthly_metrics(store, AS_OF, scope=scope)
    grouped = lifecycle.monthly_metrics(store, AS_OF, by="region")
    grouped = grouped[grouped["region"] == region].drop(columns="region").reset_index(drop=True)
    pd.testing.assert_frame_equal(grown, grouped)
    # cohorts: the scope's buyers only
    cells = cohorts.cohort_activity(store, AS_OF, scope=scope)
    sizes = cells.groupby("cohort")["members"].first().sum()
    assert sizes == int(mine["first_purchase"].notna().sum())  # June is complete on 2026-06-30


def test_scoped_scores_hold_the_scope_members_and_their_own_total(store, region, home):
    from crmkit.scoring import score_members

    scores = score_members(store, AS_OF)
    scoped = dashboard.scoped_scores(store, scores, Scope(region=region))
    buyers = home.index[(home["region"] == region) & (home["purchase_days"] > 0)]
    assert set(scoped.table["member_id"]) == set(buyers)
    chain_rows = scores.table.set_index("member_id").loc[scoped.table["member_id"]]
    np.testing.assert_array_equal(scoped.table["clv"].to_numpy(), chain_rows["clv"].to_numpy())
    total = scoped.total_clv
    assert total["members"] == len(buyers)
    assert total["clv"] == pytest.approx(scoped.table["clv"].sum(), rel=1e-9)
    assert total["clv_low"] < total["clv"] < total["clv_high"] < scores.total_clv["clv"]
    assert scoped.band_counts()["members"].sum() == len(buyers)
    assert dashboard.scoped_scores(store, scores, None) is scores
