"""The engine is the one place that talks to DuckDB: no module outside crmkit/engine/ imports it."""
from __future__ import annotations

import re
from pathlib import Path

import crmkit

ROOT = Path(crmkit.__file__).parent
IMPORTS_DUCKDB = re.compile(r"^\s*(import duckdb\b|from duckdb\b)", re.M)


def test_no_module_outside_the_engine_imports_duckdb():
    outside = [p.relative_to(ROOT).as_posix() for p in sorted(ROOT.rglob("*.py"))
               if "engine" not in p.relative_to(ROOT).parts and IMPORTS_DUCKDB.search(p.read_text(encoding="utf-8"))]
    assert outside == [], f"import the engine's names from crmkit.engine.store instead: {outside}"
