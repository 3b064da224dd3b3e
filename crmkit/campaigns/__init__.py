"""Campaign ROI: did the campaign pay? Incremental lift against a randomized control group.

A campaign assigns members to ``treatment`` or a randomly held-out
``control`` group; it is measured intention-to-treat, on the purchases of
:mod:`crmkit.engine.activity` (the one definition of an order and a purchase
every analysis uses), in its attribution window. The package, by step:

- :mod:`~crmkit.campaigns.queries`: the engine-side relations: the campaign
  and its attribution window, the assignment, the outcomes per assigned
  member (orders, conversion, revenue), member attributes. It defines the
  design, the window and the outcomes.
- :mod:`~crmkit.campaigns.measurement`: lifts with their intervals, totals,
  cost, ROI, the verdict (:func:`measure`), lifts by level (:func:`lift_by`)
  and the funnel. It defines the estimands, cost, ROI and verdict.
- :mod:`~crmkit.campaigns.result`: :class:`CampaignResult`, its text and the
  JSON contract of ``crmkit campaign-roi --json``.
- :mod:`~crmkit.campaigns.design`: before a campaign runs: a stratified
  holdout (:func:`assign_holdout`), its balance, the audience size needed.
- :mod:`~crmkit.campaigns.uplift`: whom the campaign moved (two-model uplift);
  imported, with scikit-learn, on first use.
- :mod:`~crmkit.campaigns.plotting`: the funnel and lift charts; imported, with
  matplotlib, on first use (compute modules never import matplotlib).

Sources: intervals are Wilson (1927) and Newcombe (1998) for rates, Welch
(1947) or a percentile bootstrap (Efron & Tibshirani 1993) for means
(:mod:`crmkit.stats`); uplift is the T-learner of Künzel et al. (2019).
"""
from __future__ import annotations

import importlib

from .design import assign_holdout, balance_table, plan_campaign
from .measurement import MIN_BUYERS, MIN_CONTROL, MIN_LEVEL, METHODS, METRICS, funnel, lift_by, measure
from .queries import (ATTRIBUTES, FUNNEL_STAGES, UNKNOWN, campaign_ids, campaign_info, campaign_query,
                      profile_query, write_assignments)
from .result import CANNOT_TELL, DOES_NOT_PAY, PAYS, CampaignResult, funnel_dict, funnel_line

#: Names whose module (and its heavy library) is imported on first use.
_LAZY = {"plot_funnel": "plotting", "plot_lift": "plotting",
         "TwoModelUplift": "uplift", "uplift_ranking": "uplift", "uplift_deciles": "uplift"}

__all__ = ["ATTRIBUTES", "CANNOT_TELL", "DOES_NOT_PAY", "FUNNEL_STAGES", "METHODS", "METRICS", "MIN_BUYERS",
           "MIN_CONTROL", "MIN_LEVEL", "PAYS", "UNKNOWN", "CampaignResult", "assign_holdout", "balance_table",
           "campaign_ids", "campaign_info", "campaign_query", "funnel", "funnel_dict", "funnel_line", "lift_by",
           "measure", "plan_campaign", "profile_query", "write_assignments", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
