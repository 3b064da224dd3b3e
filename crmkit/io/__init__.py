"""Reading channel exports into the member store: formats, column maps, validation, quarantine, identities.

>>> from crmkit.io import load_files
>>> report = load_files("data/crm.duckdb", ["data/demo"])
>>> report.members
"""
from __future__ import annotations

from .kinds import DERIVE_KIND, KINDS

_LOAD = ("FileReport", "LoadReport", "load_files")


def __getattr__(name: str):
    """The loader (DuckDB, pandas) is imported on first use, so ``crmkit load --help`` starts light."""
    if name in _LOAD:
        from . import load

        return getattr(load, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DERIVE_KIND", "KINDS", "FileReport", "LoadReport", "load_files"]
