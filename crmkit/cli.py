"""The ``crmkit`` command line.

Each sub-command lives in its own module under :mod:`crmkit.commands` and
exposes ``register(subparsers)``, which adds its parser and sets
``func=run``. Commands are discovered, so adding one is adding a file.

Every command takes ``--quiet`` (also accepted before the command:
``crmkit --quiet load ...``). It silences progress lines only: results, and
warnings that say a number is not to be trusted, are still printed.

Errors meant for the user (:class:`~crmkit.errors.CrmkitError`) print as one
sentence with a non-zero exit; set ``CRMKIT_DEBUG=1`` to see tracebacks.

Ctrl-C at any moment prints ``interrupted.`` and exits 130. This module and
``import crmkit`` import nothing heavy, so the interpreter is inside
:func:`main` (and its handlers) a few milliseconds after start; the heavy
imports (pandas, DuckDB...) happen in the named command's ``register``
(from :func:`build_parser`) and ``run``, under the same handler.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from . import __version__, currency
from .errors import CrmkitError


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser: every command listed, and the one that ``argv`` names registered in full.

    The command modules are light to import: each states its one-line
    ``HELP`` and imports its heavy libraries (pandas, DuckDB, scikit-learn,
    papermill...) inside ``register`` and ``run``. So ``crmkit --version`` and
    ``crmkit --help`` import none of them, and ``crmkit COMMAND --help`` only
    what that command's options need. A command is named as its module, with
    ``-`` for ``_`` (``campaign_roi`` is ``campaign-roi``).
    """
    parser = argparse.ArgumentParser(
        prog="crmkit",
        description="Retail membership CRM analytics: load, model, score, measure campaigns, report.",
    )
    parser.add_argument("--version", action="version", version=f"crmkit {__version__}")
    parser.add_argument("--quiet", dest="quiet_all", action="store_true",
                        help="no progress lines, for any command (warnings are still printed)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    named = _named_command(sys.argv[1:] if argv is None else argv)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        name = info.name.replace("_", "-")
        if name == named:
            module.register(sub)
        else:  # listed for --help and for argparse's choice of command, never run
            sub.add_parser(name, help=module.HELP)
    return parser


def _named_command(argv: list[str]) -> str | None:
    """The command in ``argv``: its first word that is not an option (no option before a command takes a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    try:  # the command modules import pandas, DuckDB, papermill...: a second or two Ctrl-C may land in
        parser = build_parser(argv)
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("crmkit: interrupted.", file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    args.quiet = getattr(args, "quiet", False) or args.quiet_all
    try:
        with currency.using(currency.current()):  # a command sets its store's currency for itself only
            return int(args.func(args) or 0)
    except CrmkitError as err:
        print(f"crmkit {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"crmkit {args.command}: interrupted.", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one sentence, traceback on request
        if _interrupted(err):  # Ctrl-C while DuckDB was running a query
            print(f"crmkit {args.command}: interrupted.", file=sys.stderr)
            return 130
        if os.environ.get("CRMKIT_DEBUG"):
            raise
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"crmkit {args.command}: internal error: {type(err).__name__}: {msg} "
              f"(set CRMKIT_DEBUG=1 for the traceback).", file=sys.stderr)
        return 1


def _interrupted(err: BaseException) -> bool:
    """True for the engine's way of saying that Ctrl-C stopped a query (:func:`crmkit.engine.store.is_interrupt`)."""
    from .engine.store import is_interrupt

    return is_interrupt(err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
