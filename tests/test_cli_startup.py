"""The command line starts without its heavy libraries: `crmkit --version`, `crmkit --help` and `crmkit load --help` import none of them.

Each command module states its one-line ``HELP`` and imports pandas, DuckDB,
scikit-learn... inside ``register`` and ``run`` (:func:`crmkit.cli.build_parser`),
so only the command that is run pays for them.
"""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import crmkit.commands
from crmkit.cli import main

HEAVY = ("pandas", "duckdb", "matplotlib", "sklearn", "scipy", "papermill", "nbformat", "pyarrow")
COMMANDS = sorted(m.name for m in pkgutil.iter_modules(crmkit.commands.__path__) if not m.name.startswith("_"))


def _imported(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m crmkit ARGS``; return the process and the top-level packages it imported."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "crmkit", *args],
                         capture_output=True, text=True)
    names = {line.rpartition("|")[2].strip().split(".")[0]
             for line in out.stderr.splitlines() if line.startswith("import time:")}
    return out, names


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["--quiet", "--help"], [], ["load", "--help"],
                                  ["fit", "--help"], ["campaign-roi", "--help"], ["score", "--help"]])
def test_version_and_help_import_no_heavy_library(args):
    out, names = _imported(*args)
    assert "crmkit" in names, "-X importtime lists what was imported"
    assert not names & set(HEAVY), f"`crmkit {' '.join(args)}` imported {sorted(names & set(HEAVY))}"
    if args == ["--version"]:
        assert out.returncode == 0 and out.stdout.startswith("crmkit ")
    elif args[:1] == ["load"]:
        assert out.returncode == 0 and "--derive-amount" in out.stdout
    elif args[:1] in (["fit"], ["campaign-roi"], ["score"]):
        assert out.returncode == 0 and "--quiet" in out.stdout
    else:
        for name in COMMANDS:  # every command is listed with its one-line help
            assert name.replace("_", "-") in out.stdout


def test_command_modules_are_light_and_state_their_help():
    """Importing a command module imports no heavy library (checked in a fresh interpreter)."""
    code = (f"import sys; import {', '.join(f'crmkit.commands.{n}' for n in COMMANDS)}; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name in COMMANDS:
        help_line = importlib.import_module(f"crmkit.commands.{name}").HELP
        assert isinstance(help_line, str) and help_line and "\n" not in help_line


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_registers_under_its_module_name(name, capsys):
    """`crmkit NAME --help` shows NAME's own options: the command is registered as its module's name, - for _."""
    command = name.replace("_", "-")
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: crmkit {command} [-h]")


def test_an_unknown_command_is_refused_with_the_list():
    out = subprocess.run([sys.executable, "-m", "crmkit", "nosuch"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "invalid choice: 'nosuch'" in out.stderr and "campaign-roi" in out.stderr


def test_light_choices_are_those_of_the_modules_that_use_them():
    """The choices a parser offers from :mod:`crmkit.defaults` are the ones the heavy modules accept."""
    from crmkit import defaults
    from crmkit.campaigns import METHODS
    from crmkit.clv import MODELS

    assert set(defaults.MODEL_NAMES) == set(MODELS) and list(defaults.MODEL_NAMES) == sorted(MODELS)
    assert defaults.INTERVAL_METHODS == METHODS
