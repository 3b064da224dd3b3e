"""Membership tiers (会员等级) by rules that are data, applied as of a date.

A member's tier is the highest tier whose ``min_spend`` (in the store's
currency, :mod:`crmkit.currency`) is not above their *annual spend*: net spend
(returns subtracted) over the trailing ``window_days`` days up to and
including ``as_of``. Members who spent nothing
in the window, prospects included, are in the base tier. The default rules
are in ``crmkit/tiers.yaml``: 普通 / 银卡 ≥ ¥2,000 / 金卡 ≥ ¥8,000 / 钻石 ≥ ¥20,000
over 365 days, for a chain in yuan; a store in another currency gives its own rules.

Rules are a YAML file or a mapping::

    {"window_days": 365,
     "tiers": [{"name": "Regular", "zh": "普通", "min_spend": 0},
               {"name": "Silver", "zh": "银卡", "min_spend": 2000}, ...]}
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .engine.scope import Scope
from .engine.store import Connection
from .errors import CrmkitError
from .i18n import known, register, t
from .lifecycle import Query, activity
from .segments import migration_matrix

DEFAULT_RULES = Path(__file__).with_name("tiers.yaml")


@dataclass(frozen=True)
class TierRules:
    """Validated tier rules: names from the lowest tier up, their thresholds and the window."""

    names: tuple[str, ...]
    labels_zh: tuple[str, ...]
    min_spend: tuple[float, ...]
    window_days: int = 365

    @classmethod
    def load(cls, rules: TierRules | Mapping | str | os.PathLike | None = None) -> TierRules:
        """Rules from ``None`` (the default file), a YAML file path, a mapping or rules."""
        if isinstance(rules, TierRules):
            return rules
        source = "tier rules"
        if rules is None or isinstance(rules, (str, os.PathLike)):
            path = Path(rules) if rules is not None else DEFAULT_RULES
            source = str(path)
            try:
                rules = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
                raise CrmkitError(f"{path}: cannot read tier rules ({type(err).__name__}).") from err
        return cls._validate(rules, source)

    @classmethod
    def _validate(cls, rules, source: str) -> TierRules:
        def fail(msg: str):
            raise CrmkitError(f"{source}: {msg}")

        if not isinstance(rules, Mapping):
            fail("rules must be a mapping with 'tiers' and optionally 'window_days'.")
        unknown = set(rules) - {"tiers", "window_days"}
        if unknown:
            fail(f"unknown key {sorted(map(str, unknown))[0]!r}; use 'tiers' and 'window_days'.")
        window = rules.get("window_days", 365)
        if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 3660:
            fail(f"window_days must be a whole number of days from 1 to 3660, not {window!r}.")
        tiers = rules.get("tiers")
        if not isinstance(tiers, list) or not 1 <= len(tiers) <= 20:
            fail("'tiers' must be a list of 1 to 20 tiers, lowest first.")
        names, labels, mins = [], [], []
        for i, tier in enumerate(tiers, 1):
            if not isinstance(tier, Mapping) or set(tier) - {"name", "zh", "min_spend"}:
                fail(f"tier {i} must have only 'name', 'zh' and 'min_spend'.")
            name, zh, spend = tier.get("name"), tier.get("zh", tier.get("name")), tier.get("min_spend")
            if not isinstance(name, str) or not name.strip() or len(name) > 40:
                fail(f"tier {i} needs a name of 1 to 40 characters.")
            if not isinstance(zh, str) or len(zh) > 40:
                fail(f"tier {i} ({name}) has an invalid 'zh' label.")
            # a range test, not math.isfinite: NaN fails it, and a huge int cannot overflow it
            if isinstance(spend, bool) or not isinstance(spend, (int, float)) or not 0 <= spend <= 1e12:
                fail(f"tier {i} ({name}) needs a numeric min_spend (in the store's currency), from 0 to 1e12.")
            names.append(name)
            labels.append(zh)
            mins.append(float(spend))
        if len(set(names)) != len(names):
            fail("tier names must be unique.")
        if mins[0] != 0:
            fail(f"the base tier {names[0]} must have min_spend 0.")
        if any(b <= a for a, b in zip(mins, mins[1:])):
            fail("min_spend must increase from one tier to the next.")
        out = cls(tuple(names), tuple(labels), tuple(mins), window)
        register({f"tier.{n}": (zh, n) for n, zh in zip(out.names, out.labels_zh)})
        return out

    def rank_sql(self, spend: str) -> str:
        """SQL of the tier rank (0 = base tier) of an annual ``spend``; thresholds bound by :meth:`params`."""
        # the CASE shape depends only on the number of tiers; thresholds are bound
        case = " ".join(f"WHEN {spend} >= $tier_min_{i} THEN {i}" for i in range(len(self.names) - 1, 0, -1))
        return f"CAST(CASE {case} ELSE 0 END AS INTEGER)" if case else "CAST(0 AS INTEGER)"

    def name_sql(self, rank: str) -> str:
        """SQL of the tier name of a tier ``rank``."""
        return f"CASE {rank} {' '.join(f'WHEN {i} THEN $tier_name_{i}' for i in range(len(self.names)))} END"

    def next_min_sql(self, rank: str) -> str:
        """SQL of the min_spend of the tier above ``rank`` (NULL in the top tier)."""
        cells = " ".join(f"WHEN {i - 1} THEN $tier_min_{i}" for i in range(1, len(self.names)))
        return f"CASE {rank} {cells} END" if cells else "CAST(NULL AS DOUBLE)"

    def params(self) -> dict:
        """The names, thresholds and window the SQL of these rules binds."""
        return {"tier_window_days": self.window_days,
                **{f"tier_name_{i}": name for i, name in enumerate(self.names)},
                **{f"tier_min_{i}": float(spend) for i, spend in enumerate(self.min_spend)}}

    def query(self, as_of, scope: Scope | None = None, member: str | None = None) -> Query:
        """:func:`crmkit.lifecycle.activity` plus ``tiers`` (one row per member of ``scope``, default the chain;
        with ``member``, only that member's row is meaningful: a tier depends on the member's own spend only)."""
        ctes = {
            "tier_spend": """
  SELECT member_id, round(sum(net), 2) AS annual_spend FROM days
  WHERE day > CAST($as_of AS DATE) - CAST($tier_window_days AS INTEGER) GROUP BY member_id""",
            "tier_ranks": """
  SELECT u.member_id, coalesce(s.annual_spend, 0) AS annual_spend
  FROM universe u LEFT JOIN tier_spend s USING (member_id)""",
            "tiers": f"""
  SELECT member_id, annual_spend, tier_rank, {self.name_sql("tier_rank")} AS tier,
         {self.next_min_sql("tier_rank")} - annual_spend AS spend_to_next_tier
  FROM (SELECT *, {self.rank_sql("annual_spend")} AS tier_rank FROM tier_ranks)""",
        }
        return activity(as_of, scope, member) + Query(ctes, self.params())


register({
    "tier.tier": ("会员等级", "Tier"),
    "tier.members": ("会员数（人）", "Members (count)"),
})


def tier_label(tier: str, lang: str = "zh") -> str:
    """Display label of a tier name, e.g. ``Gold`` → ``金卡`` (for the loaded rules)."""
    key = f"tier.{tier}"
    if not known(key):  # scores read from a snapshot: the default rules' labels are not registered yet
        TierRules.load()
    return t(key, lang)


def assign_tiers(con: Connection, as_of, rules=None) -> pd.DataFrame:
    """The tier of every member as of ``as_of`` under ``rules`` (default: ``crmkit/tiers.yaml``).

    Returns
    -------
    DataFrame
        member_id, tier (the rule's name, e.g. ``Gold``), tier_rank (0 = base tier),
        annual_spend (money, trailing ``window_days``), spend_to_next_tier (money;
        empty in the top tier).
    """
    return TierRules.load(rules).query(as_of).df(con, """
SELECT member_id, tier, tier_rank, annual_spend, spend_to_next_tier FROM tiers ORDER BY member_id""")


def tier_summary(con: Connection, as_of, rules=None, scope: Scope | None = None) -> pd.DataFrame:
    """Members, share of members and annual spend (money) per tier, lowest tier first, over the
    members of ``scope`` (default: the chain; :mod:`crmkit.engine.scope`)."""
    r = TierRules.load(rules)
    out = r.query(as_of, scope).df(con, """
SELECT tier, count(*) AS members, sum(annual_spend) AS annual_spend, avg(annual_spend) AS mean_annual_spend
FROM tiers GROUP BY tier""").set_index("tier").reindex(list(r.names))
    out["members"] = out["members"].fillna(0).astype("int64")
    out["annual_spend"] = out["annual_spend"].fillna(0.0)
    out.insert(1, "member_share", out["members"] / max(out["members"].sum(), 1))
    return out.rename_axis("tier").reset_index()


def tier_migration(con: Connection, date_from, date_to, rules=None) -> pd.DataFrame:
    """Members by tier on ``date_from`` (rows) and ``date_to`` (columns).

    Members who had not joined by ``date_from`` are in the row ``"(not a member)"``.
    """
    r = TierRules.load(rules)
    return migration_matrix(assign_tiers(con, date_from, r), assign_tiers(con, date_to, r), "tier",
                            r.names, "(not a member)")
