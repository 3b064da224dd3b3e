"""A small demo store for tests: ``demo_store`` → ``(db_path, truth)``.

3,000 members generated with seed 7 and loaded through ``crmkit.io.load_files``
into a DuckDB file, once per test session (a few seconds).
"""
from __future__ import annotations

import pytest

from crmkit.demo import generate
from crmkit.io import load_files

DEMO_MEMBERS, DEMO_SEED = 3_000, 7


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_store")
    truth = generate(root / "exports", members=DEMO_MEMBERS, seed=DEMO_SEED)
    db = root / "crm.duckdb"
    load_files(db, [root / "exports"], progress=False)
    return db, truth
