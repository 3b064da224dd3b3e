"""``crmkit app`` in a real browser: the landing page, the churn-warning and member 360 apps, offline, scoped, masked.

Starts ``crmkit app --no-browser`` on a free port over a scored copy of the
demo store (once for the chain, once with ``--region 华南``) and drives
Debian's Chromium with Playwright. Needs Chromium, ``playwright``, Voila and
ipywidgets; skips cleanly without them. Set ``CRMKIT_SCREENSHOTS=DIR`` to
keep screenshots for a person to look at.
"""
from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from crmkit.apps import APPS, server
from crmkit.privacy import find_raw_phones
from fixtures_browser import NEEDS_CHROMIUM, browser  # noqa: F401  (a module fixture)

sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("voila")
pytest.importorskip("ipywidgets")
pytestmark = NEEDS_CHROMIUM
REGION = "华南"
MASKED_PHONE = r"^\d{3}\*+\d{4}$"
APP = "voila/render/churn_warning.ipynb"
#: Milliseconds to wait for the page to answer a widget (the machine may be busy).
WAIT = 90_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


class Server:
    """``crmkit app`` in its own process group; :meth:`stop` ends the group (kernels included)."""

    def __init__(self, db: Path, log: Path, *extra: str):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "crmkit", "app", "--db", str(db), "--port", str(self.port), "--no-browser",
                 *extra], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"crmkit app exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("crmkit app did not answer in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def serve(db: Path, tmp: Path, *extra: str):
    server = Server(db, tmp / "server.log", *extra)
    try:
        server.wait()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chain(scored, tmp_path_factory):
    yield from serve(scored[0], tmp_path_factory.mktemp("app_chain"))


@pytest.fixture(scope="module")
def region(scored, tmp_path_factory):
    yield from serve(scored[0], tmp_path_factory.mktemp("app_region"), "--region", REGION)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("CRMKIT_SCREENSHOTS") or tmp_path_factory.mktemp("app_shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_NAMES: dict[Path, frozenset] = {}


def full_names(db: Path) -> frozenset:
    """The members' names of two characters or more in ``db`` (read once per store)."""
    if db not in _NAMES:
        with duckdb.connect(str(db), read_only=True) as con:
            _NAMES[db] = frozenset(r[0] for r in con.execute(
                "SELECT DISTINCT name FROM members WHERE length(name) >= 2").fetchall())
    return _NAMES[db]


class Page:
    """A browser page that records every request leaving 127.0.0.1 (aborted) and every failed one."""

    def __init__(self, browser, server: Server):
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_navigation_timeout(WAIT)  # a page waits for its kernel's first run (the machine may be busy)
        self.outside, self.failed = [], []
        local = (f"http://127.0.0.1:{server.port}/", f"ws://127.0.0.1:{server.port}/", "data:", "blob:")

        def route(r):
            if r.request.url.startswith(local):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.url}"))
        self.server = server

    def open(self, path: str = "") -> None:
        self.page.goto(self.server.url + path)

    def open_app(self) -> None:
        self.open(APP)
        self.page.wait_for_selector(".crm-kpi", timeout=90_000)

    def kpi(self, i: int = 0) -> str:
        return self.page.locator(".crm-kpi .crm-kpi-value").nth(i).inner_text()

    def choose(self, name: str, label: str) -> None:
        before = self.kpi()
        self.page.locator(f".crm-filter-{name} select").select_option(label=label)
        self.page.wait_for_function("b => document.querySelector('.crm-kpi .crm-kpi-value').innerText !== b", arg=before,
                                    timeout=WAIT)

    def export(self) -> list[dict]:
        with self.page.expect_download() as done:
            self.page.locator(".crm-export").click()  # made in the kernel, downloaded through a Blob
        return list(csv.DictReader(io.StringIO(Path(done.value.path()).read_text(encoding="utf-8-sig"))))

    def check_clean(self) -> None:
        """Nothing left 127.0.0.1, nothing failed, no error, source code or raw phone on the page."""
        text = self.page.inner_text("body")
        assert self.outside == [] and self.failed == []
        assert "Traceback" not in text and "Error" not in text
        assert "from crmkit" not in text and "churn_warning.show" not in text and "import " not in text
        content = self.page.content()
        assert find_raw_phones(content) == [] and "churn_warning.show(" not in content
        self.assert_no_full_name()

    def assert_no_full_name(self) -> None:
        """No member's full name (of two characters or more) is on the page: names show masked."""
        content = self.page.content()
        assert [n for n in full_names(self.server.db) if n in content] == []

    def cjk_font(self) -> list[str]:
        return self.page.evaluate("""async () => (await document.fonts.load('16px "crmkit CJK"', '会员流失'))
                                     .map(f => f.family.replace(/"/g, ''))""")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser, chain):
    p = Page(browser, chain)
    yield p
    p.close()


def test_landing_lists_the_apps_offline(page, shots):
    page.open()
    links = page.page.locator("a.crm-app-link")
    names = server.available(server.apps_dir())
    assert {"churn_warning", "member_360"} <= set(names)
    assert links.all_inner_texts() == [APPS[n][0][0] for n in names]
    link = links.first
    assert page.cjk_font() == ["crmkit CJK"]  # Chinese in the bundled web font, not as boxes
    page.page.screenshot(path=str(shots / "landing_zh.png"), full_page=True)
    link.click()
    page.page.wait_for_selector(".crm-kpi", timeout=90_000)
    page.check_clean()


def test_churn_app_filters_exports_and_switches_language(page, shots):
    page.open_app()
    for name in ("band", "value", "tier", "segment", "stage", "store", "sort", "rows", "lang"):
        assert page.page.locator(f".crm-filter-{name}").count() == 1, name
    assert page.page.locator(".crm-kpi").count() == 4
    assert page.cjk_font() == ["crmkit CJK"]
    page.page.screenshot(path=str(shots / "churn_warning_zh.png"), full_page=True)
    top20 = int(page.kpi().replace(",", ""))
    page.choose("value", "累计消费前 50%")  # a wider value filter: more members at risk
    assert int(page.kpi().replace(",", "")) > top20
    rows = page.export()
    assert len(rows) == int(page.kpi().replace(",", ""))
    phones = [r["phone"] for r in rows if r["phone"]]
    assert phones and all(re.match(MASKED_PHONE, p) for p in phones)
    assert all(r["name"] == "" or "*" in r["name"] or len(r["name"]) <= 1 for r in rows)
    assert {r["churn_band"] for r in rows} == {"high"}
    page.page.get_by_text("English", exact=True).click()
    page.page.wait_for_function("() => document.querySelector('.crm-kpis').innerText.includes('Members at risk')",
                                timeout=WAIT)
    assert page.page.inner_text(".crm-app h2").startswith("Churn warning")
    page.page.screenshot(path=str(shots / "churn_warning_en.png"), full_page=True)
    page.check_clean()


def test_member_360_lookup_shows_a_masked_profile(page, scored, shots):
    with duckdb.connect(str(scored[0]), read_only=True) as con:
        mid, phone = con.execute("SELECT s.member_id, m.phone FROM member_scores s JOIN members m "
                                 "ON m.member_id = s.member_id WHERE m.phone IS NOT NULL ORDER BY s.clv DESC "
                                 "LIMIT 1").fetchone()
    page.open("voila/render/member_360.ipynb")
    box = page.page.locator(".crm-filter-query input")
    box.wait_for(timeout=90_000)
    assert page.page.locator(".crm-filter-by").count() == 1 and page.cjk_font() == ["crmkit CJK"]
    box.fill(mid)
    box.press("Enter")
    page.page.wait_for_selector(".crm-kpi", timeout=WAIT)
    assert page.page.inner_text(".crm-m360-member_id") == mid
    assert re.match(MASKED_PHONE, page.page.inner_text(".crm-m360-phone"))
    assert phone not in page.page.content() and "member_360.show(" not in page.page.content()
    page.page.screenshot(path=str(shots / "member_360_zh.png"), full_page=True)
    rows = page.export()  # the member's page, masked
    assert {"section": "member", "field": "member_id", "value": mid} in rows
    assert phone not in str(rows) and find_raw_phones(str(rows)) == []
    page.check_clean()


def region_members(db: Path, as_of: str) -> set[str]:
    """The scored members whose home store is in REGION, computed apart from crmkit's engine: the
    registration store, else the store of the member's first order (none for an online one)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""
WITH first AS (SELECT member_id, store_id FROM transactions WHERE CAST(order_time AS DATE) <= CAST(? AS DATE)
               QUALIFY row_number() OVER (PARTITION BY member_id ORDER BY order_time, order_id, line_no) = 1)
SELECT s.member_id FROM member_scores s
LEFT JOIN members m ON m.member_id = s.member_id LEFT JOIN first f ON f.member_id = s.member_id
JOIN stores st ON st.store_id = coalesce(m.join_store_id, f.store_id)
WHERE s.as_of = CAST(? AS DATE) AND st.region = ?""", [as_of, as_of, REGION]).fetchall()
    return {r[0] for r in rows}


def test_region_app_shows_and_exports_only_its_members(browser, region, scored, shots):
    db, as_of = scored
    inside = region_members(db, as_of)
    p = Page(browser, region)
    try:
        p.open()
        assert REGION in p.page.inner_text("body")
        p.open_app()
        assert REGION in p.page.inner_text(".crm-app")
        note = p.page.locator(".crm-kpi .crm-kpi-note").first.inner_text()
        assert f"{len(inside):,}" in note  # the scope's scored members, no more
        p.page.screenshot(path=str(shots / "churn_warning_region_zh.png"), full_page=True)
        p.choose("value", "不限")
        p.choose("band", "风险最高档 + 居中档")
        rows = p.export()
        assert rows and {r["member_id"] for r in rows} <= inside
        with duckdb.connect(str(db), read_only=True) as con:
            stores = {r[0] for r in con.execute("SELECT store_id FROM stores WHERE region = ?", [REGION]).fetchall()}
        shown = p.page.locator(".crm-filter-store option").all_inner_texts()
        assert shown[1:] and all(s.split()[0] in stores for s in shown[1:])  # after "全部"
        p.check_clean()
    finally:
        p.close()


def test_unknown_region_is_one_sentence_and_exit_2(scored):
    out = subprocess.run([sys.executable, "-m", "crmkit", "app", "--db", str(scored[0]), "--region", "火星",
                          "--no-browser", "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert "unknown region '火星'" in out.stderr and REGION in out.stderr
