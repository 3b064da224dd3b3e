"""A cache of slow, deterministic results, keyed by a digest of everything they are computed from.

Reports recompute some things that do not change from one run to the next
(the holdout comparison of the transaction models, the CJK font subset of an
HTML report). Each such result is kept in a file named by the sha256 of its
inputs, so a cached result is only ever read for exactly the inputs that made
it, and new data, other parameters or other code give another key: nothing is
ever stale, and nothing needs invalidating. What a key covers is the
caller's rule, stated where the cache is used.

Rules
-----
- The folder is ``$CRMKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/crmkit``, else
  ``~/.cache/crmkit``; each kind of result has a subfolder.
- Entries are JSON or text, never pickles: reading the cache runs no code.
- An entry is written to a temporary file and renamed into place, so a reader
  never sees half of one; an entry that cannot be read (or a folder that
  cannot be written) is a miss, and the result is computed as if there were
  no cache.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """The cache folder (see the module docstring); it may not exist yet."""
    given = os.environ.get("CRMKIT_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "crmkit"


def digest(*parts) -> str:
    """sha256 (hex) over ``parts``: bytes as they are, anything else as its canonical JSON."""
    h = hashlib.sha256()
    for part in parts:
        blob = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(blob).to_bytes(8, "little") + blob)
    return h.hexdigest()


def _path(kind: str, key: str, suffix: str) -> Path:
    return cache_dir() / kind / f"{key}{suffix}"


def read_text(kind: str, key: str, suffix: str = ".txt") -> str | None:
    """The cached text of ``kind``/``key``, or None when there is none (or it cannot be read)."""
    try:
        return _path(kind, key, suffix).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def write_text(kind: str, key: str, text: str, suffix: str = ".txt") -> None:
    """Keep ``text`` as ``kind``/``key``; a folder that cannot be written is no error (the next run recomputes)."""
    path = _path(kind, key, suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def read_json(kind: str, key: str):
    """The cached JSON value of ``kind``/``key``, or None (see :func:`read_text`)."""
    text = read_text(kind, key, ".json")
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_json(kind: str, key: str, value) -> None:
    """Keep ``value`` (JSON types; floats round-trip exactly, NaN included) as ``kind``/``key``."""
    write_text(kind, key, json.dumps(value, ensure_ascii=False), ".json")


def frame_json(frame) -> dict:
    """A small DataFrame as JSON types: its ``columns``, ``dtypes`` and ``rows`` (floats exact, missing values
    None, dates ISO text) and its ``attrs`` (JSON types themselves); :func:`json_frame` reads it back with the
    same dtypes and attrs."""
    import pandas as pd

    def plain(v):
        if v is None or v is pd.NaT or (isinstance(v, float) and v != v):
            return None
        if isinstance(v, (pd.Timestamp, dt.date)):
            return v.isoformat()
        return v.item() if hasattr(v, "item") else v

    return {"columns": [str(c) for c in frame.columns], "dtypes": [str(d) for d in frame.dtypes],
            "rows": [[plain(v) for v in row] for row in frame.itertuples(index=False, name=None)],
            "attrs": dict(frame.attrs)}


def json_frame(kept: dict):
    """The DataFrame :func:`frame_json` kept, with its dtypes."""
    import pandas as pd

    frame = pd.DataFrame(kept["rows"], columns=kept["columns"], dtype=object)
    for column, dtype in zip(kept["columns"], kept["dtypes"]):
        if dtype.startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column]).astype(dtype)
        elif dtype != "object":
            frame[column] = frame[column].astype(dtype)
    frame.attrs.update(kept.get("attrs", {}))
    return frame
