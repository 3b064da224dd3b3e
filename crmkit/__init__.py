"""crmkit: a Jupyter-based analytics workbench for retail membership CRM (会员管理 CRM).

>>> import crmkit
>>> con = crmkit.connect("data/crm.duckdb")
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import CrmkitError, InputError, ModelError
from .store import connect, open_source

__all__ = [
    "__version__",
    "CrmkitError",
    "InputError",
    "ModelError",
    "connect",
    "open_source",
]
