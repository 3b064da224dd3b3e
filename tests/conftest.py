"""Shared fixtures. Reference data comes from files the `lifetimes` package ships, read by path."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import crmkit
from fixtures_demo import demo_store, scored_demo  # noqa: F401  (session fixtures: the small demo store, scored)


def lifetimes_datasets_dir() -> Path:
    """The folder of data files inside the installed `lifetimes` package.

    Found without importing `lifetimes.datasets` (which fails under new setuptools).
    """
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lifetimes is not installed (pip install -e '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets"


@pytest.fixture(scope="session")
def cdnow_sample_path() -> Path:
    """CDNOW_sample.txt: 2,357 customers; headerless, whitespace-separated: id, original id, yyyymmdd, CDs, dollars."""
    return lifetimes_datasets_dir() / "CDNOW_sample.txt"


@pytest.fixture(scope="session")
def cdnow_master_path() -> Path:
    """CDNOW_master.txt: 23,570 customers, same layout without the original-id column."""
    return lifetimes_datasets_dir() / "CDNOW_master.txt"


@pytest.fixture(scope="session")
def donations_path() -> Path:
    """donations.csv: BG/BB example data (frequency, recency, periods, weights)."""
    return lifetimes_datasets_dir() / "donations.csv"


@pytest.fixture
def con():
    """An empty in-memory member store with the canonical tables."""
    c = crmkit.connect(":memory:")
    yield c
    c.close()


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Results that crmkit caches by their inputs (:mod:`crmkit.cache`) go to a folder of this test session,
    not the user's cache (kernels that reports start inherit it)."""
    import os

    old = os.environ.get("CRMKIT_CACHE_DIR")
    os.environ["CRMKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("crmkit-cache"))
    yield
    if old is None:
        os.environ.pop("CRMKIT_CACHE_DIR", None)
    else:
        os.environ["CRMKIT_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _close_figures():
    """Tests draw many charts; close them so that pyplot does not keep them all open."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def no_env(monkeypatch):
    """No setting of ``crmkit app`` in the environment (the apps' tests set the ones they need)."""
    from crmkit.apps import common

    for name in common.ENV.values():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
