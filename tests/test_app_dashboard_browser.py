"""The manager dashboard in a real browser: widgets, a filter that changes a KPI, offline, scoped, clean.

Starts ``crmkit app --no-browser`` on a free port over a scored copy of the
demo store (once for the chain, once with ``--region 华南``) and drives
Debian's Chromium with Playwright, as ``test_app_browser.py`` does. Skips
cleanly without Chromium, ``playwright``, Voila or ipywidgets. Set
``CRMKIT_SCREENSHOTS=DIR`` to keep screenshots for a person to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from crmkit.privacy import find_raw_phones
from fixtures_browser import NEEDS_CHROMIUM, browser  # noqa: F401  (a module fixture)
from test_app_browser import Page, serve

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("voila")
pytest.importorskip("ipywidgets")
pytestmark = NEEDS_CHROMIUM
REGION = "华南"
APP = "voila/render/dashboard.ipynb"
#: Milliseconds to wait for the page (the machine may be busy).
WAIT = 90_000
FILTERS = ("region", "store", "period", "tier", "channel", "lang")


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


@pytest.fixture(scope="module")
def chain(scored, tmp_path_factory):
    yield from serve(scored[0], tmp_path_factory.mktemp("dash_chain"))


@pytest.fixture(scope="module")
def region(scored, tmp_path_factory):
    yield from serve(scored[0], tmp_path_factory.mktemp("dash_region"), "--region", REGION)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CRMKIT_SCREENSHOTS") or tmp_path_factory.mktemp("dash_shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_dashboard(p: Page) -> None:
    p.page.goto(p.server.url + APP, timeout=WAIT)  # four preheating kernels on a busy machine: allow time
    p.page.wait_for_selector(".crm-kpi", timeout=WAIT)


def check_clean(p: Page) -> None:
    """Nothing left 127.0.0.1 or failed; no error, source code or raw phone on the page."""
    text = p.page.inner_text("body")
    assert p.outside == [] and p.failed == []
    assert "Traceback" not in text and "Error" not in text and p.page.locator("p.crm-error").count() == 0
    assert "from crmkit" not in text and "dashboard.show" not in text and "import " not in text
    assert find_raw_phones(p.page.content()) == []
    p.assert_no_full_name()


def test_dashboard_loads_filters_and_switches_language(browser, chain, shots):
    p = Page(browser, chain)
    try:
        open_dashboard(p)
        for name in FILTERS:
            assert p.page.locator(f".crm-filter-{name}").count() == 1, name
        assert p.page.locator(".crm-kpi").count() == 6
        assert p.cjk_font() == ["crmkit CJK"]
        assert "对比" in p.page.locator(".crm-kpi .crm-kpi-note").first.inner_text()
        p.page.screenshot(path=str(shots / "dashboard_zh.png"), full_page=True)
        members = p.kpi()
        p.choose("region", REGION)  # waits until the first tile changes
        assert int(p.kpi().replace(",", "")) < int(members.replace(",", ""))
        stores = p.page.locator(".crm-filter-store option").all_inner_texts()
        assert len(stores) > 1
        p.page.get_by_text("English", exact=True).click()
        p.page.wait_for_function("() => document.querySelector('.crm-kpis').innerText.includes('Active rate')"
                                 " && document.querySelector('.crm-trend').parentElement.innerText"
                                 ".includes('Last 12 months')", timeout=WAIT)
        assert p.page.inner_text(".crm-app h2").startswith("Manager dashboard")
        p.page.screenshot(path=str(shots / "dashboard_en.png"), full_page=True)
        check_clean(p)
    finally:
        p.close()


def test_region_dashboard_shows_only_its_stores(browser, region, scored, shots):
    with duckdb.connect(str(scored[0]), read_only=True) as con:
        inside = {r[0] for r in con.execute("SELECT store_id FROM stores WHERE region = ?", [REGION]).fetchall()}
        others = {r[0] for r in con.execute("SELECT region FROM stores WHERE region <> ?", [REGION]).fetchall()}
    p = Page(browser, region)
    try:
        open_dashboard(p)
        text = p.page.inner_text(".crm-app")
        assert REGION in text and not any(r in text for r in others)
        shown = p.page.locator(".crm-filter-store option").all_inner_texts()
        assert shown[1:] and all(s.split()[0] in inside for s in shown[1:])  # after "全部"
        p.page.screenshot(path=str(shots / "dashboard_region_zh.png"), full_page=True)
        rows = p.export()  # the store KPIs of the region, downloaded
        assert rows and {r["store_id"] for r in rows} == inside and {r["region"] for r in rows} == {REGION}
        check_clean(p)
    finally:
        p.close()
