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


@pytest.fixture(scope="session")
def scored_demo(demo_store, tmp_path_factory):
    """A copy of the demo store with one score run of its last order day: ``(db, as_of)`` (read it only)."""
    import shutil

    import crmkit
    from crmkit.cli import main

    db = tmp_path_factory.mktemp("scored_demo") / "crm.duckdb"
    shutil.copy(demo_store[0], db)
    con = crmkit.connect(db, read_only=True)
    try:
        as_of = str(con.execute("SELECT max(CAST(order_time AS DATE)) FROM transactions").fetchone()[0])
    finally:
        con.close()
    assert main(["score", str(db), "--as-of", as_of, "--quiet"]) == 0
    return db, as_of
