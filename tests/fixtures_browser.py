"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

``browser`` is a module fixture; a test module that uses it skips cleanly
without Chromium or the ``playwright`` package (import ``sync_api`` through
:func:`pytest.importorskip` there, and set ``pytestmark = NEEDS_CHROMIUM``).
"""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else (
    shutil.which("chromium") or shutil.which("chromium-browser"))
NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()
