"""The package installs exactly the lock, which pins every declared dependency; environment.yml installs the lock."""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    """requirements.lock as {canonical name: version}."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin"
            pins[_canonical(name)] = version.strip()
    return pins


def _declared() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    reqs = list(project["dependencies"]) + pyproject["build-system"]["requires"]
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


def test_lock_pins_every_declared_dependency_within_its_range():
    pins = _lock()
    for req in _declared():
        name = _canonical(req.name)
        assert name in pins, f"{req.name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject's {req}"
    assert {"pip", "setuptools", "wheel"} <= pins.keys(), "the lock pins the installer and build backend too"


def test_environment_yml_installs_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-r requirements.lock", "-e ."]
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11" and SpecifierSet(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]).contains("3.11")


def test_makefile_installs_exactly_the_lock():
    make = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -r $(LOCK)" in make
    assert "--no-deps --no-build-isolation -e ." in make


@pytest.mark.skipif(os.environ.get("CRMKIT_LOCKING") == "1", reason="`make lock` is testing a new resolution")
@pytest.mark.skipif(not (Path(sys.prefix) / ".installed-stamp").exists(), reason="not the venv `make env` builds")
def test_this_environment_is_the_lock():
    pins = _lock()
    # the environment's own site-packages, not whatever an earlier import put on sys.path (importing pyspark
    # makes setuptools put its vendored packaging, wheel and platformdirs there)
    import sysconfig

    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    installed = {_canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=site)}
    drift = {n: (v, installed.get(n)) for n, v in pins.items() if installed.get(n) != v}
    assert not drift, f"installed versions differ from requirements.lock (locked, installed): {drift}"


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
