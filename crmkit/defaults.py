"""Names and defaults that the command line offers, importable without any heavy library.

``crmkit COMMAND --help`` lists choices and defaults; they live here so that
the parser does not import the modules that use them (pandas, SciPy,
scikit-learn...). Those modules take their values from here, and
``tests/test_cli_startup.py`` checks that both agree.
"""
from __future__ import annotations

#: Transaction models by name (:data:`crmkit.clv.MODELS`).
MODEL_NAMES = ("bgnbd", "mbgnbd", "pareto")
#: Interval methods for a campaign's revenue and margin per member (:mod:`crmkit.campaigns.measurement`).
INTERVAL_METHODS = ("welch", "bootstrap")
