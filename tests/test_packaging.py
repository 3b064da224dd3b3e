"""The package installs as declared, and environment.yml is kept in step with pyproject.toml."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pip = [p for p in pip if not p.startswith("-e")]
    assert sorted(pip) == sorted(wanted), "environment.yml pip list must equal pyproject deps + extras"
    py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert py.replace("python", "") == project["requires-python"]


def test_console_script_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "crmkit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip().startswith("crmkit ")


def test_unknown_input_is_one_sentence_not_a_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "crmkit", "fit", str(tmp_path / "nope.csv")],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "nope.csv" in out.stderr


def test_ctrl_c_during_a_query_is_one_line_and_exit_130(monkeypatch, capsys):
    import duckdb

    from crmkit.cli import main
    from crmkit.commands import fit

    def interrupted(args):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(fit, "run", interrupted)
    assert main(["fit", "whatever.csv"]) == 130
    assert capsys.readouterr().err == "crmkit fit: interrupted.\n"
