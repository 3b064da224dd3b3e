"""The campaign-review app without a browser: scoped measurement, campaign and level pickers, the export."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from test_campaigns import same

import crmkit
from crmkit import campaigns, engine
from crmkit.apps import APPS, common
from crmkit.apps import campaign_review as cr
from crmkit.errors import CrmkitError

REGION = "华南"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "apps" / "campaign_review.ipynb"


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


def load(db, region=None) -> cr.CampaignData:
    s = common.AppSettings(db, engine.Scope.of(region=region), "zh")
    con, scope = common.open_app_store(s)
    try:
        return cr.load(con, scope, db)
    finally:
        con.close()


@pytest.fixture(scope="module")
def chain(scored):
    return load(scored[0])


@pytest.fixture(scope="module")
def region(scored):
    return load(scored[0], REGION)


def test_listed_last_and_notebook_is_a_parameters_cell_and_one_call():
    assert list(APPS)[-1] == "campaign_review"
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert [c["cell_type"] for c in nb["cells"]] == ["code", "code"]
    assert nb["cells"][0]["metadata"]["tags"] == ["parameters"]
    assert "campaign_review.show(" in "".join(nb["cells"][1]["source"])
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"])


def test_page_builds_with_every_part(chain):
    page = cr.CampaignReviewPage(chain, "zh")
    assert list(chain.campaigns) == [o[1] for o in page.widgets["campaign"].options]
    starts = [v[1] for v in chain.campaigns.values()]
    assert starts == sorted(starts, reverse=True)  # newest first
    assert all(f"crm-filter-{n}" in w._dom_classes for n, w in page.widgets.items())
    assert "crm-filter-lang" in page.lang_toggle._dom_classes
    assert page.kpis.value.count('class="crm-kpi"') == 5
    assert "活动复盘" in page.title.value and "结论" in page.header.value and "crm-funnel" in page.funnel.value
    assert "crm-export" in page.export.button._dom_classes
    for level in cr.LEVELS:
        page.widgets["level"].value = level
        assert "crm-lift" in page.table.value
    page.lang_toggle.value = "en"
    assert "Conversion lift" in page.kpis.value and "Verdict" in page.header.value
    assert "crm-error" not in page.table.value + page.header.value


def test_kpis_are_the_scoped_measurement(scored, chain, region):
    cid = next(iter(chain.campaigns))
    with crmkit.connect(scored[0], read_only=True) as con:
        r = campaigns.measure(con, cid, scope=engine.Scope(region=REGION))
        by_store = campaigns.lift_by(con, cid, "store", scope=engine.Scope(region=REGION))
    assert same(region.result(cid, "zh"), r.to_dict("zh")) and same(region.result(cid, "en"), r.to_dict("en"))
    pd.testing.assert_frame_equal(region.lifts[cid, "store"], by_store, check_exact=False, rtol=1e-12)  # the profile read once: the same levels
    tiles = dict((k[0], k[1]) for k in cr.kpis(region, cid, "en"))
    assert tiles["Treatment / control"] == f"{r.n_treatment:,} / {r.n_control:,}"
    assert tiles != dict((k[0], k[1]) for k in cr.kpis(chain, cid, "en"))  # the region's numbers are its own
    assert r.n_treatment < chain.result(cid, "zh")["n_treatment"]


def test_region_page_holds_no_store_of_another_region(scored, region):
    with duckdb.connect(str(scored[0]), read_only=True) as con:
        inside = {r[0] for r in con.execute("SELECT store_id FROM stores WHERE region = ?", [REGION]).fetchall()}
    page = cr.CampaignReviewPage(region, "zh")
    page.widgets["level"].value = "store"
    for cid in region.campaigns:
        assert set(region.lifts[cid, "store"]["store"]) <= inside
        page.widgets["campaign"].value = cid
        shown = cr.lift_table(region, cid, "store", "zh").iloc[:, 0]
        assert all(s.split()[0] in inside for s in shown)
        compared = int((~region.lifts[cid, "store"]["too_small"]).sum())  # the caution only over 2+ levels
        assert ("trust a difference only" in cr.lift_html(region, cid, "store", "en")) == (compared >= 2)
    assert REGION in page.title.value


def test_switching_campaign_changes_a_kpi_and_back_is_cached(chain):
    page = cr.CampaignReviewPage(chain, "zh")
    first, second = list(chain.campaigns)[:2]
    before = page.kpis.value
    page.widgets["campaign"].value = second
    assert page.kpis.value != before
    page.widgets["campaign"].value = first
    assert page.kpis.value == before
    assert set(chain.lifts) == {(c, level) for c in chain.campaigns for level in cr.LEVELS}


def test_export_parses_and_matches_the_table(region):
    page = cr.CampaignReviewPage(region, "en")
    page.widgets["level"].value = "tier"
    cid = page.campaign
    assert page.export.link.value == ""
    page.export.button.click()
    assert page.export.link.value.startswith(f'<a class="crm-download" download="campaign_review_{cid}_tier_region-')
    text = cr.export_csv(region, cid, "tier").decode("utf-8-sig")
    rows = pd.read_csv(io.StringIO(text), dtype={"campaign_id": str, "level": str})
    assert list(rows.columns) == ["campaign_id", "level", *cr.EXPORT_COLUMNS]
    lift = region.lifts[cid, "tier"]
    assert list(rows["level"]) == list(lift["tier"]) and set(rows["campaign_id"]) == {cid}
    pd.testing.assert_frame_equal(rows[cr.EXPORT_COLUMNS], lift[cr.EXPORT_COLUMNS].reset_index(drop=True),
                                  check_dtype=False)
    shown = cr.lift_table(region, cid, "tier", "en")
    assert len(shown) == len(rows)
    assert list(shown["Treatment members"]) == [f"{n:,}" for n in rows["n_treatment"]]
    small = rows["too_small"].astype(bool)
    assert list(shown["Note"] != "") == list(small)
    assert "member_id" not in text and "phone" not in text


def test_no_campaign_member_or_no_campaign_is_one_sentence(scored, tmp_path):
    db = tmp_path / "crm.duckdb"
    shutil.copy(scored[0], db)
    with crmkit.connect(db) as con:
        con.execute("DELETE FROM campaign_assignments")
    with crmkit.connect(db, read_only=True) as con:
        sentence = rf"^No campaign has a member in this scope \(.*{REGION}\), so there is no campaign to review\.$"
        with pytest.raises(CrmkitError, match=sentence):
            cr.load(con, engine.Scope(region=REGION), db, lang="en")
    with crmkit.connect(db) as con:
        con.execute("DELETE FROM campaigns")
    with crmkit.connect(db, read_only=True) as con:
        with pytest.raises(CrmkitError, match="holds no campaign yet"):
            cr.load(con, engine.CHAIN, db, lang="en")


def test_a_second_load_reads_the_cache_and_new_data_measures_afresh(scored, monkeypatch, tmp_path):
    """The next kernel reads what the first measured (crmkit's cache, keyed by data, code, scope and
    campaigns): the same page without measuring; another data fingerprint measures again."""
    from crmkit.engine import snapshots

    monkeypatch.setenv("CRMKIT_CACHE_DIR", str(tmp_path))
    measured = []
    real = cr._measure_all
    monkeypatch.setattr(cr, "_measure_all", lambda *a: measured.append(1) or real(*a))
    with crmkit.connect(scored[0], read_only=True) as con:
        first = cr.load(con, engine.Scope(region=REGION))
        second = cr.load(con, engine.Scope(region=REGION))
        assert len(measured) == 1
        assert second.results == first.results and second.campaigns == first.campaigns
        for key, frame in first.lifts.items():
            pd.testing.assert_frame_equal(second.lifts[key], frame)
            assert second.lifts[key].attrs == frame.attrs and "caution" in frame.attrs  # the page reads them
        for level in cr.LEVELS:  # the page, drawn from what the cache kept
            assert cr.lift_html(second, next(iter(second.campaigns)), level, "zh") == cr.lift_html(
                first, next(iter(first.campaigns)), level, "zh")
        assert cr.kpis(second, next(iter(second.campaigns)), "zh") == cr.kpis(first, next(iter(first.campaigns)), "zh")
        cr.load(con, engine.CHAIN)  # another scope: measured
        monkeypatch.setattr(snapshots, "data_fingerprint", lambda con: "new data")
        cr.load(con, engine.Scope(region=REGION))
    assert len(measured) == 3
