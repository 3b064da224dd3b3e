"""The HTML reports in a real browser: offline, charts shown, Chinese in the bundled font.

Needs Chromium (``apt-get install chromium``) and the ``playwright`` package; skips
cleanly without them. Set ``CRMKIT_SCREENSHOTS=DIR`` to keep full-page screenshots
for a person to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures_browser import NEEDS_CHROMIUM, browser  # noqa: F401  (a module fixture)
from test_notebooks import TITLES, built_reports

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_reports_render_offline_with_charts_and_chinese(browser, base, tmp_path, lang):
    manifest, folder = built_reports(base, lang)
    shots = Path(os.environ.get("CRMKIT_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    for entry in manifest["notebooks"]:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        remote = []
        page.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(("file:", "data:"))
                                          else (remote.append(route.request.url), route.abort())))
        page.goto((folder / entry["html"]).resolve().as_uri())
        page.wait_for_load_state("load")
        assert remote == [], entry["name"]  # nothing fetched from the network
        images = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 0)")
        assert images and all(images), entry["name"]  # every chart decoded
        heading = page.inner_text("h1")
        assert heading == TITLES[entry["name"]][lang == "en"]
        faces = page.evaluate("""async () => (await document.fonts.load('16px "crmkit CJK"', '会员'))
                                 .map(f => f.family)""")
        if lang == "zh":  # Chinese text is drawn with the embedded font, not as boxes
            assert faces == ['"crmkit CJK"'] or faces == ["crmkit CJK"], entry["name"]
        text = page.inner_text("body")
        assert "Traceback" not in text and "from crmkit" not in text
        page.screenshot(path=str(shots / f"{lang}_{entry['name']}.png"), full_page=True)
        page.close()
