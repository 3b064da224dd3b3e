"""The member store, kept by the engine (:mod:`crmkit.engine.store`); this name stays for analysts' code
(``crmkit.store.connect``, ``from crmkit.store import transaction``)."""
from __future__ import annotations

from .engine.store import *  # noqa: F401,F403
from .engine.store import __all__  # noqa: F401
