"""The bundled CJK font, found without importing matplotlib, and its ``@font-face`` rule for HTML pages
(reports and apps embed it, so that Chinese renders on machines without a CJK font)."""
from __future__ import annotations

import base64
import importlib.util
import io
from pathlib import Path

CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"


def cjk_font_path() -> Path | None:
    """Path of the bundled CJK font, or None when mplfonts is not installed."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "fonts" / CJK_FONT_FILE
    return p if p.exists() else None


def cjk_font_face(text: str) -> str:
    """A ``@font-face`` rule embedding the bundled CJK font, subset to the characters of ``text``.

    Reports then show Chinese on machines without a CJK font, and stay small.
    Empty when the text has no characters outside Latin-1 or the font is missing.
    Subsetting takes a second or more, and a report's characters hardly change
    from one run to the next (digits are Latin), so the rule is cached
    (:mod:`crmkit.cache`) under the font file, its size and time, the fontTools
    version and the characters.
    """
    import fontTools

    from . import cache

    chars = "".join(sorted({c for c in text if ord(c) > 0xFF}))
    path = cjk_font_path()
    if not chars or path is None:
        return ""
    stat = path.stat()
    key = cache.digest("cjk_font_face", str(path), stat.st_size, stat.st_mtime_ns, fontTools.version, chars)
    rule = cache.read_text("cjk_font_face", key, ".css")
    if rule is None:
        rule = _subset_font_face(path, chars)
        cache.write_text("cjk_font_face", key, rule, ".css")
    return rule


def _subset_font_face(path: Path, chars: str) -> str:
    """The ``@font-face`` rule of the font at ``path`` subset to ``chars``, as a data URL."""
    from fontTools import subset

    options = subset.Options()
    options.flavor = None
    options.layout_features = ["*"]
    font = subset.load_font(str(path), options)
    sub = subset.Subsetter(options)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    subset.save_font(font, buf, options)
    data = base64.b64encode(buf.getvalue()).decode()
    return ('@font-face { font-family: "crmkit CJK"; '
            f'src: url(data:font/otf;base64,{data}) format("opentype"); }}')
