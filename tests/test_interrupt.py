"""Ctrl-C at any moment of a command, including its first second of imports, says "interrupted." (exit 130)."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")

HEAVY = ("duckdb", "numpy", "pandas")  # shared libraries that only main()'s imports load


def _importing(pid: int) -> bool:
    """True once the process has started its heavy imports (a library of HEAVY is mapped)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return any(f"/{name}/" in maps or f"{name}." in maps for name in HEAVY)


def _as_from_a_terminal() -> None:
    """Ctrl-C's default action in the command, as in a terminal: a test run started in the background by a
    non-interactive shell (``make test &``) ignores SIGINT, and an ignored signal stays ignored across exec."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_while_importing(cmd: list[str]) -> tuple[int, str]:
    """Start ``cmd``, wait (polling, no timing) until it is importing, send SIGINT; its exit code and stderr.

    A process that finished before the signal reached it (on a busy machine it can get through its imports
    while this loop waits for the CPU) is started again, at most 5 times: one that ended on its own, with
    its own exit code and message, is no answer to the signal.
    """
    for _ in range(5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_as_from_a_terminal)
        while proc.poll() is None and not _importing(proc.pid):
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate()
        if proc.returncode == 130 or "Traceback" in err or "interrupt" in err.lower():
            return proc.returncode, err
    pytest.fail(f"{cmd} always finished before it could be interrupted")


@pytest.mark.parametrize("cmd", [
    [str(Path(sys.executable).with_name("crmkit")), "report", "--help"],  # the console entry point
    # score --help imports nothing heavy (crmkit.defaults); a run does, before it finds the store missing
    [sys.executable, "-m", "crmkit", "score", "/nonexistent/crm.duckdb", "--as-of", "2026-06-30"],
], ids=["crmkit report", "python -m crmkit score"])
def test_ctrl_c_during_the_imports_says_interrupted(cmd):
    if not Path(cmd[0]).exists():
        pytest.skip(f"{cmd[0]} is not installed")
    code, err = _interrupt_while_importing(cmd)
    assert "Traceback" not in err, err
    assert err.strip().endswith("interrupted."), err
    assert code == 130


def test_the_entry_point_imports_nothing_heavy_before_main():
    # what makes the above hold from the first moment: `import crmkit.cli` loads no heavy library
    out = subprocess.run([sys.executable, "-c", "import sys, crmkit.cli; "
                          "print(sorted(m for m in ('duckdb', 'numpy', 'pandas') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
