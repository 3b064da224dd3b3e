"""Fit a transaction model, or the simpler model its likelihood's best value points to.

A BTYD likelihood can have no interior maximum: when members do not appear
to drop out, BG/NBD's best fit is at a → 0 and Pareto/NBD's at s → 0, where
the model *is* the NBD (:mod:`crmkit.clv.nbd`). The fit then raises
:class:`crmkit.errors.NoInteriorMaximum`, and :func:`fit_with_fallback` fits
the NBD instead, labelled as such (``fallback_from_`` and ``fit_note_``), so
that scores and reports go on with the model that fits.
"""
from __future__ import annotations

import pandas as pd

from ..errors import ModelError, NoInteriorMaximum
from ._base import RepeatBuyingModel
from .nbd import NBD

#: The simpler models a boundary can be, by the name ``NoInteriorMaximum.fallback`` gives.
FALLBACKS = {"nbd": NBD}


def fit_with_fallback(model: RepeatBuyingModel | str, summary: pd.DataFrame) -> RepeatBuyingModel:
    """``model`` (a new model, or its key in :data:`crmkit.clv.MODELS`) fitted on an RFM summary,
    or, when its likelihood has no interior maximum at a limit that is a simpler model, that model.

    The model returned carries ``fallback_from_`` (the name of the model it
    replaces, None when there was no fallback) and ``fit_note_`` (None, or
    one sentence each in ``"zh"`` and ``"en"`` saying what happened in plain
    words). A fit that fails for any other reason raises its own one-sentence
    :class:`crmkit.errors.ModelError`.
    """
    if isinstance(model, str):
        from . import MODELS

        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}.")
        model = MODELS[model]()
    try:
        return model.fit_summary(summary)
    except NoInteriorMaximum as err:
        if err.fallback not in FALLBACKS:
            raise
        fallback = FALLBACKS[err.fallback](max_iter=model.max_iter).fit_summary(summary)
        limits, cause = err.limits, err.cause
    where = ", ".join(f"{k} → {v}" for k, v in limits.items())
    fallback.fallback_from_ = model.name
    fallback.fit_note_ = {
        "zh": f"{model.label} 在这些数据上没有内部最优解（最优在 {where}：{cause.get('zh', '会员看来不会流失')}），"
              f"因此改用不含流失的 {fallback.label} 模型，每位会员的在网概率均为 1。",
        "en": f"{model.label} has no interior maximum on these data (its best fit is at {where}: "
              f"{cause.get('en', 'members do not appear to drop out')}), so the {fallback.label} model, which has "
              f"no dropout, is used instead and every member's P(alive) is 1.",
    }
    return fallback
