"""Customer-base models: who is still a customer, how much they will buy, and what they are worth.

Transaction models take an RFM summary (:mod:`crmkit.rfm`) in days or weeks:

- :class:`BetaGeo` (BG/NBD), :class:`ParetoNBD` and :class:`ModifiedBetaGeo` (MBG/NBD)
  predict P(alive), expected purchases and the chance of a purchase within a horizon;
- :class:`NBD` (no dropout) is what they become when members do not drop out, and
  :func:`fit_with_fallback` fits it, labelled as such, when their likelihood has no
  interior maximum for that reason (:class:`NoInteriorMaximum`);
- :class:`GammaGamma` predicts spend per order;
- :class:`BetaGeoBetaBinom` (BG/BB) is for discrete opportunities (events, issues, years).

:func:`customer_value` combines them into CLV with intervals; :mod:`crmkit.clv.validation`
checks a model against a holdout period.
"""
from __future__ import annotations

from ..errors import NoInteriorMaximum
from .bgbb import BetaGeoBetaBinom
from .bgnbd import BetaGeo
from .fallback import FALLBACKS, fit_with_fallback
from .gammagamma import GammaGamma
from .mbgnbd import ModifiedBetaGeo
from .nbd import NBD
from .paretonbd import ParetoNBD
from .value import customer_value, fit_value_models, forecast_purchases, total_value

#: Transaction models by their CLI name (``crmkit fit --model``). The NBD is not among them: it is
#: the no-dropout fallback (:data:`FALLBACKS`), not a model to compare or choose for churn.
MODELS = {"bgnbd": BetaGeo, "pareto": ParetoNBD, "mbgnbd": ModifiedBetaGeo}

__all__ = [
    "FALLBACKS",
    "MODELS",
    "NBD",
    "NoInteriorMaximum",
    "BetaGeo",
    "BetaGeoBetaBinom",
    "GammaGamma",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "customer_value",
    "fit_value_models",
    "fit_with_fallback",
    "forecast_purchases",
    "total_value",
]
