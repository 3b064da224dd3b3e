"""crmkit: a Jupyter-based analytics workbench for retail membership CRM (会员管理 CRM).

>>> import crmkit
>>> con = crmkit.connect("data/crm.duckdb")
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import CrmkitError, InputError, ModelError


def __getattr__(name):  # connect and open_source on first use: `import crmkit` stays light, so the
    if name in ("connect", "open_source"):  # command line answers Ctrl-C from its first moment
        from . import store

        return getattr(store, name)
    raise AttributeError(f"module 'crmkit' has no attribute {name!r}")


__all__ = [
    "__version__",
    "CrmkitError",
    "InputError",
    "ModelError",
    "connect",
    "open_source",
]
