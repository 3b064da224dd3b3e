"""The campaign-review app in a real browser: it loads, its pickers render and change the KPI tiles, the export
downloads the shown breakdown, nothing leaves 127.0.0.1, no error or source code shows; with ``--region`` the
page and its export hold the region's stores only.

Uses the ``crmkit app`` server and page helpers of :mod:`test_app_browser` (Debian's Chromium driven by
Playwright; skips cleanly without them). Set ``CRMKIT_SCREENSHOTS=DIR`` to keep the screenshots.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from fixtures_browser import NEEDS_CHROMIUM, browser  # noqa: F401  (a module fixture)

pytest.importorskip("playwright.sync_api")
pytest.importorskip("voila")
pytest.importorskip("ipywidgets")
from test_app_browser import WAIT, Page, serve  # noqa: E402  (after the skips: it needs Playwright too)

from crmkit.apps.campaign_review import EXPORT_COLUMNS  # noqa: E402

pytestmark = NEEDS_CHROMIUM
APP = "voila/render/campaign_review.ipynb"
REGION = "华南"


@pytest.fixture(scope="module")
def chain(scored_demo, tmp_path_factory):
    yield from serve(scored_demo[0], tmp_path_factory.mktemp("app_campaign"))


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CRMKIT_SCREENSHOTS") or tmp_path_factory.mktemp("app_campaign_shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, chain):
    p = Page(browser, chain)
    yield p
    p.close()


def test_campaign_review_loads_switches_campaign_and_exports(page, shots):
    page.open(APP)
    page.page.wait_for_selector(".crm-kpi", timeout=90_000)
    for name in ("campaign", "level", "lang"):
        assert page.page.locator(f".crm-filter-{name}").count() == 1, name
    assert page.page.locator(".crm-kpi").count() == 5
    assert page.page.locator(".crm-funnel table").count() == 1 and page.page.locator(".crm-lift table").count() == 1
    assert "结论" in page.page.inner_text(".crm-app") and page.cjk_font() == ["crmkit CJK"]
    page.page.screenshot(path=str(shots / "campaign_review_zh.png"), full_page=True)
    campaigns = page.page.locator(".crm-filter-campaign option").all_inner_texts()
    assert len(campaigns) >= 2
    before = page.kpi()
    page.choose("campaign", campaigns[1])
    assert page.kpi() != before
    page.page.locator(".crm-filter-level select").select_option(label="门店")
    page.page.wait_for_function("() => document.querySelector('.crm-lift').innerText.includes('门店')", timeout=WAIT)
    rows = page.export()
    assert rows and list(rows[0]) == ["campaign_id", "level", *EXPORT_COLUMNS]
    assert len(rows) == page.page.locator(".crm-lift table tbody tr").count()
    assert {r["campaign_id"] for r in rows} == {campaigns[1].split()[0]}
    page.page.get_by_text("English", exact=True).click()
    page.page.wait_for_function("() => document.querySelector('.crm-kpis').innerText.includes('Conversion lift')",
                                timeout=WAIT)
    assert page.page.inner_text(".crm-app h2").startswith("Campaign review")
    page.page.screenshot(path=str(shots / "campaign_review_en.png"), full_page=True)
    page.check_clean()
    assert "campaign_review.show" not in page.page.content()


@pytest.fixture(scope="module")
def region(scored_demo, tmp_path_factory):
    yield from serve(scored_demo[0], tmp_path_factory.mktemp("app_campaign_region"), "--region", REGION)


def test_region_page_shows_and_exports_only_its_stores(browser, region, scored_demo, shots):
    with duckdb.connect(str(scored_demo[0]), read_only=True) as con:
        inside = {r[0] for r in con.execute("SELECT store_id FROM stores WHERE region = ?", [REGION]).fetchall()}
    p = Page(browser, region)
    try:
        p.open(APP)
        p.page.wait_for_selector(".crm-kpi", timeout=90_000)
        assert REGION in p.page.inner_text(".crm-app h2 + .crm-sub")
        p.page.locator(".crm-filter-level select").select_option(label="门店")
        p.page.wait_for_function("() => document.querySelector('.crm-lift').innerText.includes('门店')", timeout=WAIT)
        shown = p.page.locator(".crm-lift table tbody tr td:first-child").all_inner_texts()
        assert shown and all(s.split()[0] in inside for s in shown)
        rows = p.export()
        assert rows and {r["level"] for r in rows} <= inside
        p.page.screenshot(path=str(shots / "campaign_review_region_zh.png"), full_page=True)
        p.check_clean()
    finally:
        p.close()
