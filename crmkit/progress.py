"""Progress on the console for long runs (stderr, so --json output stays clean)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress("loading", total=n) as p: p.update(k)``.

    Prints at most about once a second, and a final line on exit. Quiet when
    ``enabled`` is False.
    """

    def __init__(self, desc: str, total: int | None = None, *, enabled: bool = True, stream=None):
        self.desc, self.total, self.enabled = desc, total, enabled
        self.stream = stream or sys.stderr
        self.n = 0
        self._t0 = self._last = time.monotonic()

    def __enter__(self):
        return self

    def update(self, k: int = 1, note: str = "") -> None:
        self.n += k
        now = time.monotonic()
        if self.enabled and now - self._last >= 1.0:
            self._last = now
            self._print(note)

    def step(self, note: str) -> None:
        """Report a named stage of a multi-stage job."""
        if self.enabled:
            print(f"[{time.monotonic() - self._t0:6.1f}s] {self.desc}: {note}", file=self.stream, flush=True)

    def _print(self, note: str = "") -> None:
        of = f"/{self.total:,}" if self.total else ""
        extra = f" {note}" if note else ""
        print(f"[{time.monotonic() - self._t0:6.1f}s] {self.desc}: {self.n:,}{of}{extra}",
              file=self.stream, flush=True)

    def __exit__(self, *exc):
        if self.enabled and exc[0] is None and self.n:
            self._print("done")
        return False
