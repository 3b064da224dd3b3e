"""Names and defaults that the command line offers, importable without any heavy library.

``crmkit COMMAND --help`` lists choices and defaults; they live here so that
the parser does not import the modules that use them (pandas, SciPy,
scikit-learn...). Those modules take their values from here, and
``tests/test_cli_startup.py`` checks that both agree.
"""
from __future__ import annotations

#: Transaction models by name (:data:`crmkit.clv.MODELS`).
MODEL_NAMES = ("bgnbd", "mbgnbd", "pareto")
#: CLV horizon, in days.
DEFAULT_HORIZON_DAYS = 365
#: Annual discount rate of future margin.
DEFAULT_DISCOUNT_RATE = 0.10
#: Gross margin as a share of net sales.
DEFAULT_MARGIN = 0.30
#: Default churn window: no purchase in the next 180 days.
DEFAULT_WINDOW_DAYS = 180
#: Interval methods for a campaign's revenue and margin per member (:mod:`crmkit.campaigns.measurement`).
INTERVAL_METHODS = ("welch", "bootstrap")
