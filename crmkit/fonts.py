"""The bundled CJK font, found without importing matplotlib (the report runner embeds it in HTML)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"


def cjk_font_path() -> Path | None:
    """Path of the bundled CJK font, or None when mplfonts is not installed."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "fonts" / CJK_FONT_FILE
    return p if p.exists() else None
