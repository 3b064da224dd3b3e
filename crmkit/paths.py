"""Where the member store lives by default; light, so that ``crmkit COMMAND --help`` can say it."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = Path("data") / "crm.duckdb"


def default_db_path() -> Path:
    """``$CRMKIT_DB`` if set, else ``data/crm.duckdb`` under the current directory."""
    return Path(os.environ.get("CRMKIT_DB", DEFAULT_DB))
