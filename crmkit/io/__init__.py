"""Reading channel exports into the member store: formats, column maps, validation, quarantine, identities.

>>> from crmkit.io import load_files
>>> report = load_files("data/crm.duckdb", ["data/demo"])
>>> report.members
"""
from __future__ import annotations

from .kinds import DERIVE_KIND, KINDS
from .load import FileReport, LoadReport, load_files

__all__ = ["DERIVE_KIND", "KINDS", "FileReport", "LoadReport", "load_files"]
