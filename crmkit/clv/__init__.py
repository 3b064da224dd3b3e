"""Customer-base models: who is still a customer, how much they will buy, and what they are worth.

Transaction models take an RFM summary (:mod:`crmkit.rfm`) in days or weeks:

- :class:`BetaGeo` (BG/NBD), :class:`ParetoNBD` and :class:`ModifiedBetaGeo` (MBG/NBD)
  predict P(alive), expected purchases and the chance of a purchase within a horizon;
- :class:`GammaGamma` predicts spend per order;
- :class:`BetaGeoBetaBinom` (BG/BB) is for discrete opportunities (events, issues, years).

:func:`customer_value` combines them into CLV with intervals; :mod:`crmkit.clv.validation`
checks a model against a holdout period.
"""
from __future__ import annotations

from .bgbb import BetaGeoBetaBinom
from .bgnbd import BetaGeo
from .gammagamma import GammaGamma
from .mbgnbd import ModifiedBetaGeo
from .paretonbd import ParetoNBD
from .value import customer_value, fit_value_models, forecast_purchases, total_value

#: Transaction models by their CLI name (``crmkit fit --model``).
MODELS = {"bgnbd": BetaGeo, "pareto": ParetoNBD, "mbgnbd": ModifiedBetaGeo}

__all__ = [
    "MODELS",
    "BetaGeo",
    "BetaGeoBetaBinom",
    "GammaGamma",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "customer_value",
    "fit_value_models",
    "forecast_purchases",
    "total_value",
]
