"""``crmkit app [--db PATH] [--port N] [--store ID | --region NAME] [--lang zh|en] [--no-browser]``."""
from __future__ import annotations

import argparse

from ..i18n import LANGS

HELP = ("serve the manager apps (dashboard, churn warning, member 360 lookup, campaign review) in the browser, "
        "scoped to a region or store")

#: Voila's usual port.
DEFAULT_PORT = 8866


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app",
        help=HELP,
        description="Serve the manager apps of notebooks/apps/ with Voila on 127.0.0.1: a landing page that "
                    "lists them, each app a page of widgets over the newest score snapshot (crmkit score makes "
                    "one), with no source code, no traceback and nothing loaded from the internet. With --store "
                    "or --region every app reads, shows and exports that scope's members only. Stop it with "
                    "Ctrl-C.",
        epilog="example: crmkit app --db data/crm.duckdb --region 华南 --lang zh",
    )
    p.add_argument("--db", default=None, metavar="PATH",
                   help="member store (default: $CRMKIT_DB or data/crm.duckdb)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--store", default=None, metavar="ID", help="show one store's members only")
    where.add_argument("--region", default=None, metavar="NAME", help="show one region's members only")
    p.add_argument("--lang", choices=LANGS, default="zh", help="first language of the pages (default zh)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    import tempfile
    from pathlib import Path

    from .. import engine
    from ..apps import common, server
    from ..errors import CrmkitError
    from ..paths import default_db_path

    _check_port(args.port)
    db = Path(args.db or default_db_path()).resolve()
    settings = common.AppSettings(db, engine.Scope.of(region=args.region, store_id=args.store), args.lang)
    con, scope = common.open_app_store(settings)  # an unknown region or store: one sentence, exit 2
    try:
        try:
            run_ = common.newest_run(con, db, args.lang)
        except CrmkitError as err:  # the apps say it too; the manager who started the server should know now
            print(f"crmkit app: {err}", file=sys.stderr)
            run_ = None
    finally:
        con.close()
    try:
        from voila.app import Voila
    except ImportError:
        raise CrmkitError("crmkit app needs Voila and ipywidgets: pip install 'crmkit[apps]'.") from None
    folder = server.apps_dir()
    names = server.available(folder)
    if not names:
        raise CrmkitError(f"{folder}: no app notebook found; the installation is incomplete.")
    with tempfile.TemporaryDirectory(prefix="crmkit-app-") as tmp:
        root = server.template_folder(Path(tmp), names, scope, db, args.lang)
        os.environ.update(server.environment(db, scope, args.lang, root))
        if not args.quiet:
            shown = common.scope_text(scope, "en")
            what = f"score run {run_.run_id} of {run_.as_of}" if run_ else "no score snapshot"
            print(f"crmkit app: serving {', '.join(names)} for {shown} ({what}) at http://127.0.0.1:{args.port}/ "
                  f"(Ctrl-C stops it).", file=sys.stderr)
        Voila.launch_instance(argv=server.voila_argv(folder, args.port, open_browser=not args.no_browser))
    return 0


def _check_port(port: int) -> None:
    """One sentence when ``port`` is not a port, or is in use on 127.0.0.1 (Voila would pick another)."""
    import socket

    from ..errors import CrmkitError

    if not 0 < port < 65536:
        raise CrmkitError(f"--port {port} is not a port; use a number from 1 to 65535.")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise CrmkitError(f"port {port} is in use on 127.0.0.1; pass another with --port N.") from None
