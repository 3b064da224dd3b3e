"""MBG/NBD: the BG/NBD in which a member may also drop out right after the first purchase.

Reference
---------
Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). Empirical validation and
comparison of models for customer base analysis. *International Journal of
Research in Marketing* 24(3), 201-209.
"""
from __future__ import annotations

from .bgnbd import BetaGeo


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007).

    As the BG/NBD, but a member may also drop out right after the first
    purchase, so members without repeat purchases are not all taken to be
    active.
    """

    name = "mbgnbd"
    label = "MBG/NBD"
    _shift = 1
