"""Product affinity: association rules, cross-sell by RFM segment, preferred categories.

All counting runs in the engine over the purchases (:mod:`crmkit.engine.activity`)
placed in the trailing ``window_days`` days up to and including ``as_of``. An
item (category or sku) is in a purchase when its lines there are a purchase by
the same rule: not returned in full by ``as_of`` (a ¥0 gift counts). A *basket*
is a purchase, or everything a member bought in the window (``basket="member"``).
For a rule A → B over N baskets (Agrawal, Imieliński & Swami 1993; Brin et al. 1997):

- support = n(A and B) / N, confidence = n(A and B) / n(A),
- lift = confidence / (n(B) / N): above 1, B is bought with A more often than chance.
"""
from __future__ import annotations

import pandas as pd

from .errors import CrmkitError
from . import engine
from .engine import HALF_CENT, Query
from .engine.store import Connection
from .segments import rfm_query

LEVELS = {"category": "category", "sku": "sku"}
BASKETS = {"order": "order_id", "member": "member_id"}

_RULES = {
    "aff_lines": f"""
  SELECT DISTINCT {{basket}} AS basket, member_id, item FROM (
    SELECT l.member_id, l.order_id, l.{{level}} AS item
    FROM lines l JOIN purchases p ON p.member_id = l.member_id AND p.order_id = l.order_id
    WHERE l.{{level}} IS NOT NULL
      AND p.day >= CAST($as_of AS DATE) - CAST($aff_window_days AS INTEGER) + 1
    GROUP BY l.member_id, l.order_id, l.{{level}}
    HAVING max(l.is_return) = 0 OR sum(l.amount) >= {HALF_CENT}) bought""",
    "aff_items": """
  SELECT l.basket, l.item, {grp} AS grp FROM aff_lines l {join}""",
    "aff_n": "  SELECT grp, count(DISTINCT basket) AS n_baskets FROM aff_items GROUP BY grp",
    "aff_single": """
  SELECT i.grp, i.item, count(*) AS n_item FROM aff_items i JOIN aff_n USING (grp)
  GROUP BY i.grp, i.item, aff_n.n_baskets
  HAVING count(*) >= $aff_min_count AND count(*) >= $aff_min_support * aff_n.n_baskets""",
    # only frequent items can be in a frequent pair: prune before the self-join
    "aff_frequent": """
  SELECT i.* FROM aff_items i SEMI JOIN aff_single s ON s.grp = i.grp AND s.item = i.item""",
    "aff_pairs": """
  SELECT a.grp, a.item AS antecedent, b.item AS consequent, count(*) AS n_both
  FROM aff_frequent a JOIN aff_frequent b ON a.basket = b.basket AND a.grp = b.grp AND a.item <> b.item
  GROUP BY a.grp, a.item, b.item HAVING count(*) >= $aff_min_count""",
    "aff_rules": """
  SELECT p.grp, p.antecedent, p.consequent, p.n_both, sa.n_item AS n_antecedent,
         sc.n_item AS n_consequent, n.n_baskets,
         p.n_both / n.n_baskets AS support, p.n_both / sa.n_item AS confidence,
         p.n_both * n.n_baskets / (sa.n_item * sc.n_item) AS lift
  FROM aff_pairs p
  JOIN aff_single sa ON sa.grp = p.grp AND sa.item = p.antecedent
  JOIN aff_single sc ON sc.grp = p.grp AND sc.item = p.consequent
  JOIN aff_n n ON n.grp = p.grp
  WHERE p.n_both >= $aff_min_support * n.n_baskets AND p.n_both / sa.n_item >= $aff_min_confidence""",
}

_RULE_COLUMNS = """antecedent, consequent, n_both, n_antecedent, n_consequent, n_baskets, support,
       confidence, lift"""


def _rules_query(as_of, *, level: str, basket: str, window_days: int, min_support: float, min_count: int,
                 min_confidence: float, by_segment: bool) -> Query:
    if level not in LEVELS:
        raise CrmkitError(f"affinity level must be one of {', '.join(LEVELS)}, not {level!r}.")
    if basket not in BASKETS:
        raise CrmkitError(f"basket must be one of {', '.join(BASKETS)}, not {basket!r}.")
    if isinstance(window_days, bool) or not isinstance(window_days, int) or not 1 <= window_days <= 3660:
        raise CrmkitError(f"window_days must be a whole number of days from 1 to 3660, not {window_days!r}.")
    if not 0 <= min_support <= 1 or not 0 <= min_confidence <= 1 or min_count < 1:
        raise CrmkitError("min_support and min_confidence must be in [0, 1] and min_count at least 1.")
    grp, join = ("s.rfm_segment", "JOIN rfm_segments s USING (member_id)") if by_segment else ("'all'", "")
    ctes = {k: v.format(basket=BASKETS[basket], level=LEVELS[level], grp=grp, join=join)
            for k, v in _RULES.items()}
    params = {"aff_window_days": window_days, "aff_min_support": float(min_support),
              "aff_min_count": int(min_count), "aff_min_confidence": float(min_confidence)}
    base = engine.purchases(as_of) + (rfm_query(as_of) if by_segment else Query())
    return base + Query(ctes, params)


def association_rules(con: Connection, as_of, *, level: str = "category",
                      basket: str = "order", window_days: int = 365, min_support: float = 0.001,
                      min_count: int = 5, min_confidence: float = 0.0) -> pd.DataFrame:
    """Association rules A → B between categories (or skus), strongest lift first.

    Rules need at least ``min_count`` baskets with both items and the given
    minimum support and confidence.

    Returns
    -------
    DataFrame
        antecedent, consequent, n_both, n_antecedent, n_consequent, n_baskets,
        support, confidence, lift.
    """
    q = _rules_query(as_of, level=level, basket=basket, window_days=window_days, min_support=min_support,
                     min_count=min_count, min_confidence=min_confidence, by_segment=False)
    return q.df(con, f"SELECT {_RULE_COLUMNS} FROM aff_rules "
                     "ORDER BY lift DESC, n_both DESC, antecedent, consequent")


def cross_sell(con: Connection, as_of, *, level: str = "category", window_days: int = 365,
               top: int = 3, min_count: int = 5, min_support: float = 0.0) -> pd.DataFrame:
    """Cross-sell suggestions per RFM segment: the ``top`` rules with lift above 1 in each.

    Rules are mined on member baskets (everything a member bought in the window)
    within each segment. ``potential`` is the number of the segment's members who
    bought the antecedent but not yet the consequent: the audience for the offer.

    Returns
    -------
    DataFrame
        rfm_segment, antecedent, consequent, support, confidence, lift, n_both,
        n_antecedent, potential.
    """
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 100:
        raise CrmkitError(f"top must be a whole number from 1 to 100, not {top!r}.")
    q = _rules_query(as_of, level=level, basket="member", window_days=window_days, min_support=min_support,
                     min_count=min_count, min_confidence=0.0, by_segment=True)
    return q.df(con, """
SELECT rfm_segment, antecedent, consequent, support, confidence, lift, n_both, n_antecedent, potential FROM (
  SELECT grp AS rfm_segment, antecedent, consequent, support, confidence, lift, n_both, n_antecedent,
         n_antecedent - n_both AS potential,
         row_number() OVER (PARTITION BY grp ORDER BY lift DESC, n_both DESC, antecedent, consequent) AS pos
  FROM aff_rules WHERE lift > 1) ranked
WHERE pos <= $top ORDER BY rfm_segment, pos""", top=top)


def preferred_categories(con: Connection, as_of, *, window_days: int = 365,
                         top: int = 1, member_id: str | None = None) -> pd.DataFrame:
    """Each member's preferred categories (or one member's): highest net spend in the window first.

    Spend is the net of the category's lines rung up in the window; ``orders``
    counts the orders in which the category's lines are a purchase
    (:mod:`crmkit.engine.activity`: not returned in full). Ties go to the
    category bought in more orders, then to the name. Only categories with a
    positive net spend count.

    Returns
    -------
    DataFrame
        member_id, rank (1 = preferred), category, spend (yuan, net), orders,
        share (of the member's net spend over those categories).
    """
    for name, v, hi in (("window_days", window_days, 3660), ("top", top, 100)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise CrmkitError(f"{name} must be a whole number from 1 to {hi}, not {v!r}.")
    q = engine.lines(as_of, member=member_id) + Query(params={"pref_window_days": window_days, "pref_top": top})
    return q.df(con, f"""
SELECT member_id, CAST(rank AS INTEGER) AS rank, category, spend, orders, share FROM (
  SELECT member_id, category, spend, orders, spend / sum(spend) OVER (PARTITION BY member_id) AS share,
         row_number() OVER (PARTITION BY member_id ORDER BY spend DESC, orders DESC, category) AS rank
  FROM (SELECT member_id, category, sum(spend) AS spend, count(CASE WHEN bought THEN 1 END) AS orders
        FROM (SELECT member_id, category, order_id, sum(amount) AS spend,
                     (max(is_return) = 0 OR sum(amount) >= {HALF_CENT}) AS bought
              FROM lines
              WHERE category IS NOT NULL
                AND order_time >= CAST($as_of AS DATE) - CAST($pref_window_days AS INTEGER) + 1
              GROUP BY member_id, category, order_id) per_order
        GROUP BY member_id, category) per_category
  WHERE spend > 0) ranked
WHERE rank <= $pref_top ORDER BY member_id, rank""")
