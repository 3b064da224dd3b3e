"""Scope: the part of the chain an analysis covers, decided here once.

A :class:`Scope` is the whole chain, one region, one store or one channel, or
a combination of them (a store of a region, a channel within a region). Every
analysis takes one, and every number it returns lies inside it:

- **Members** belong to the scope of their *home*: the home store (the
  registration store, else the store of their first order), its region
  (``stores.region``) and the home channel (the registration channel, else
  that of the first order). Member analyses (CLV and churn bands, at-risk
  lists, tiers, RFM segments, lifecycle stages, funnels, cohorts, growth)
  count the members of the scope with their whole history: a 华南 member's
  purchase in a 华东 store counts for that member.
- **Per-member values do not depend on the scope.** A member's RFM scores are
  ranked among all the chain's buyers, and the models are fitted on the
  chain, so one member has the same segment, tier, stage, CLV and churn risk
  in every report; a scope chooses which members are counted.
- **Sales** belong to the scope of the store and channel they were rung up in
  (an order's are those of its first line, :mod:`crmkit.engine.activity`):
  a scope's net sales, orders and AOV are those of its stores and channel.

:func:`universe` is the member universe that member analyses read: the
chain's (``universe_all``) and the scope's members (``universe``). The scope's
values are bound parameters (``$scope_region``, ``$scope_store``,
``$scope_channel``; NULL for "any"), so the SQL text is the same for every
scope and transpiles as it is.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import CrmkitError
from .query import Query, table_columns

#: Characters a scope's folder name (:meth:`Scope.slug`) does not keep.
_UNSAFE = re.compile(r"[^\w-]")
#: Scope fields, in the order a label names them.
FIELDS = ("region", "store_id", "channel")

_UNIVERSE_ALL = """
  SELECT coalesce(m.member_id, a.member_id) AS member_id,
         least(m.join_date, a.first_day) AS join_date,
         coalesce(m.join_store_id, a.first_store) AS store_id,
         s.region,
         coalesce(m.join_channel, a.first_channel) AS channel,
         a.first_purchase, a.last_purchase,
         coalesce(a.purchase_days, 0) AS purchase_days,
         coalesce(a.net_spend, 0) AS net_spend
  FROM members m
  FULL JOIN activity a ON a.member_id = m.member_id
  LEFT JOIN stores s ON s.store_id = coalesce(m.join_store_id, a.first_store)
  WHERE coalesce(least(m.join_date, a.first_day), CAST($as_of AS DATE)) <= CAST($as_of AS DATE)"""


def _in_scope(region: str, store: str, channel: str) -> str:
    """SQL: the row's ``region``, ``store`` and ``channel`` expressions lie in the bound scope."""
    return (f"($scope_region IS NULL OR {region} = $scope_region)"
            f" AND ($scope_store IS NULL OR {store} = $scope_store)"
            f" AND ($scope_channel IS NULL OR {channel} = $scope_channel)")


_UNIVERSE = f"""
  SELECT * FROM universe_all
  WHERE {_in_scope("region", "store_id", "channel")}"""


@dataclass(frozen=True)
class Scope:
    """The whole chain (no field set), or the members and sales of one region, store and/or channel."""

    region: str | None = None
    store_id: str | None = None
    channel: str | None = None

    def __post_init__(self):
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise CrmkitError(f"scope {name} must be text, not {value!r}.")
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)  # an empty filter (a blank widget) is the whole chain

    @classmethod
    def of(cls, scope: Scope | Mapping | None = None, **fields) -> Scope:
        """A scope from a :class:`Scope` or a mapping of its fields, with keyword ``fields`` set on top
        (an empty one changes nothing); None and no fields: the chain.

        >>> Scope.of(region="华南", store_id="")
        Scope(region='华南', store_id=None, channel=None)
        """
        given = {f: getattr(scope, f) for f in FIELDS} if isinstance(scope, Scope) else dict(scope or {})
        unknown = set(given) - set(FIELDS)
        if unknown:
            raise CrmkitError(f"unknown scope field {sorted(unknown)[0]!r}; use {', '.join(FIELDS)}.")
        given.update({k: v for k, v in fields.items() if v not in (None, "")})
        return cls(**{k: None if v is None else str(v) for k, v in given.items()})

    @property
    def chain(self) -> bool:
        """True for the whole chain."""
        return all(getattr(self, f) is None for f in FIELDS)

    def fields(self) -> dict[str, str]:
        """The fields that are set, in :data:`FIELDS` order."""
        return {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}

    def params(self) -> dict[str, str | None]:
        """The bound parameters of the scope's SQL."""
        return {"scope_region": self.region, "scope_store": self.store_id, "scope_channel": self.channel}

    @staticmethod
    def sql(region: str = "region", store: str = "store_id", channel: str = "channel") -> str:
        """SQL condition: a row whose ``region``, ``store`` and ``channel`` expressions lie in the scope
        bound by :meth:`params` (the same text for every scope)."""
        return _in_scope(region, store, channel)

    def slug(self) -> str:
        """A short name for folders and files: ``chain``, or the set fields joined (``region-华南``,
        ``store-S01_channel-pos``); a character other than a letter, digit or ``-`` becomes ``_``, and
        then a short hash of the fields follows, so that two scopes never share a name."""
        if self.chain:
            return "chain"
        slug = "_".join(f"{k.replace('_id', '')}-{_UNSAFE.sub('_', v)}" for k, v in self.fields().items())
        if any(_UNSAFE.search(v) for v in self.fields().values()):  # 'S.01' and 'S_01' must not share a folder
            slug += "-" + hashlib.sha256(repr(sorted(self.fields().items())).encode()).hexdigest()[:8]
        return slug


CHAIN = Scope()


def universe(as_of, scope: Scope | None = None) -> Query:
    """``universe_all`` (every member as of ``as_of``) and ``universe`` (those of ``scope``); reads ``activity``.

    One row per member with ``join_date`` (the earlier of registration and the
    first order), home ``store_id``, ``region``, ``channel``,
    ``first_purchase``, ``last_purchase``, ``purchase_days`` and ``net_spend``
    (yuan, all history). The universe is the ``members`` table together with
    every member with an order; without ``members`` rows (transaction-only
    data such as CDNOW) it is the buyers.
    """
    return Query({"universe_all": _UNIVERSE_ALL, "universe": _UNIVERSE}, Scope.of(scope).params())


def member_ids(con, as_of, scope: Scope):
    """The ids of the members of ``scope`` as of ``as_of`` (one per member, as a NumPy array of text)."""
    from .activity import member_activity

    q = member_activity(as_of) + universe(as_of, scope)
    return q.execute(con, "SELECT CAST(member_id AS VARCHAR) AS member_id FROM universe").fetchnumpy()["member_id"]


def check(con, scope: Scope) -> Scope:
    """``scope``, or one sentence naming the valid choices when its region, store or channel is unknown
    (or the store is not in the region)."""
    def known(sql: str) -> list[str]:
        return sorted(r[0] for r in con.execute(sql).fetchall() if r[0] is not None)

    if scope.region is not None:
        regions = known("SELECT DISTINCT region FROM stores")
        if scope.region not in regions:
            raise CrmkitError(f"unknown region {scope.region!r}; the stores' regions are: "
                              f"{', '.join(regions) or 'none (the stores table has no regions)'}.")
    if scope.store_id is not None:
        row = con.execute("SELECT region FROM stores WHERE store_id = $s", {"s": scope.store_id}).fetchall()
        if not row:
            stores = known("SELECT store_id FROM stores")
            shown = ", ".join(stores[:20]) + (f" … ({len(stores)} stores)" if len(stores) > 20 else "")
            raise CrmkitError(f"unknown store {scope.store_id!r}; known stores: {shown or 'none'}.")
        if scope.region is not None and row[0][0] != scope.region:
            raise CrmkitError(f"store {scope.store_id!r} is in region {row[0][0]!r}, not {scope.region!r}.")
    if scope.channel is not None:
        sql = "SELECT DISTINCT join_channel FROM members"
        if "channel" in table_columns(con, "transactions"):
            sql += " UNION SELECT DISTINCT channel FROM transactions"
        channels = known(sql)
        if scope.channel not in channels:
            raise CrmkitError(f"unknown channel {scope.channel!r}; the data's channels are: "
                              f"{', '.join(channels) or 'none'}.")
    return scope
