"""Audience builder: rules as data, validated, compiled to parameterized SQL.

A rule is a mapping (or its JSON / YAML text, or a file holding it)::

    {"all": [
        {"field": "rfm_segment", "op": "in", "value": ["At Risk", "Can't Lose"]},
        {"field": "days_since_last_purchase", "op": ">=", "value": 60},
        {"field": "category_bought", "op": "in", "value": ["美妆"], "window_days": 90},
        {"not": {"field": "tier", "op": "==", "value": "Regular"}}]}

Groups are ``{"all": [...]}``, ``{"any": [...]}`` and ``{"not": rule}``. A
condition names a field from :data:`FIELDS`, an operator that field allows,
and a value of the field's type and range. A condition on a value a member
does not have (a prospect's RFM segment, a CLV before ``crmkit score`` ran) is
false. A rule on scores reads the store's score snapshot of its as_of
(:func:`use_score_snapshot`), scoring only when there is none. Nothing a
user types is evaluated: field and operator names select SQL from fixed
tables, and every value is bound as a query parameter. An invalid rule
raises :class:`AudienceRuleError` before anything runs.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from . import privacy
from .engine import HALF_CENT, as_date
from .engine.store import Connection
from .errors import CrmkitError
from .kpis import PYRAMID_LAYERS, clv_layers, require_scores
from .lifecycle import STAGES, Query, Windows, stages_query
from .segments import SEGMENTS, rfm_query
from .tiers import TierRules


class AudienceRuleError(CrmkitError):
    """An audience rule that is not valid, said in one sentence."""


CHURN_BANDS = ("high", "medium", "low")
TEXT_RE = re.compile(r"^[\w\-. /&()（）·・]{1,64}$")  # store ids, regions, category names
MAX_CONDITIONS, MAX_DEPTH, MAX_VALUES, MAX_TEXT = 50, 4, 1000, 100_000

_SET_OPS = {"in": "IN", "not_in": "NOT IN", "==": "IN", "!=": "NOT IN"}
_CMP_OPS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "between": "BETWEEN"}


@dataclass(frozen=True)
class Field:
    """A field a rule may test: its kind, allowed values or range, and its SQL column."""

    kind: str                    # "choice" | "text" | "int" | "number" | "category"
    column: str                  # column of the attribute table (fixed, never user text)
    choices: tuple[str, ...] = ()
    lo: float = -math.inf
    hi: float = math.inf
    scores: bool = False         # needs member_scores

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(_CMP_OPS) if self.kind in ("int", "number") else tuple(_SET_OPS)


FIELDS: dict[str, Field] = {
    "rfm_segment": Field("choice", "rfm_segment", SEGMENTS),
    "tier": Field("choice", "tier"),  # choices: the tier rules in use
    "lifecycle_stage": Field("choice", "lifecycle_stage", STAGES),
    "days_since_last_purchase": Field("int", "days_since_last_purchase", lo=0, hi=36_500),
    "category_bought": Field("category", "member_id"),
    "store_id": Field("text", "store_id"),
    "region": Field("text", "region"),
    "churn_band": Field("choice", "churn_band", CHURN_BANDS, scores=True),
    "churn_risk": Field("number", "churn_risk", lo=0, hi=1, scores=True),
    "clv_band": Field("choice", "clv_band", tuple(k for k, _ in PYRAMID_LAYERS), scores=True),
    "clv": Field("number", "clv", lo=-1e9, hi=1e9, scores=True),
}


def _show(value) -> str:
    """``repr(value)`` cut to 40 characters, built only as far as needed (a value may be huge)."""
    text = _bounded_repr(value, 41)
    return text if len(text) <= 40 else text[:37] + "..."


def _bounded_repr(value, limit: int, depth: int = 0) -> str:
    """The first ``limit`` or so characters of ``repr(value)``, without formatting the rest."""
    if isinstance(value, (list, tuple, Mapping)) and depth < 20:
        is_map = isinstance(value, Mapping)
        opening, closing = ("{", "}") if is_map else ("[", "]") if isinstance(value, list) else ("(", ")")
        out = opening
        for i, item in enumerate(value.items() if is_map else value):
            if len(out) > limit:
                return out + "..."
            sep = ", " if i else ""
            if is_map:
                key = _bounded_repr(item[0], limit - len(out), depth + 1)
                out += sep + key + ": " + _bounded_repr(item[1], limit - len(out) - len(key), depth + 1)
            else:
                out += sep + _bounded_repr(item, limit - len(out), depth + 1)
        return out + ("," if isinstance(value, tuple) and len(value) == 1 else "") + closing
    if isinstance(value, (list, tuple, Mapping)):
        return "..."
    try:
        text = repr(value)
    except ValueError:  # an integer of thousands of digits
        return f"<{type(value).__name__}>"
    limit = max(limit, 0)
    return text if len(text) <= limit else text[:limit] + "..."


#: The most nodes (mappings, lists and scalars) a YAML rule may stand for once its aliases are
#: expanded: far above any real rule (50 conditions of 1,000 values), far below a "billion laughs".
MAX_YAML_NODES = 100_000


def _load_yaml(text: str):
    """``yaml.safe_load(text)``, refusing a document whose aliases expand beyond :data:`MAX_YAML_NODES`.

    YAML anchors and aliases let a few hundred characters stand for billions of
    nodes ("billion laughs"). The document is first composed into its node
    graph, in which an alias is the node it names (no expansion); its
    expanded size is counted over that graph, each node once, and only a
    document within the limit is turned into Python objects.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _yaml_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _yaml_size(root) -> int:
    """The number of nodes ``root`` expands to; an AudienceRuleError past :data:`MAX_YAML_NODES` or in a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            _fail("a YAML alias refers to the node that contains it.")
        on_path.add(key)
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                _fail(f"the YAML expands to more than {MAX_YAML_NODES:,} values through its aliases (&/*).")
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _fail(message: str):
    raise AudienceRuleError(f"audience rule: {message}")


def parse_rule(rule) -> Mapping:
    """A rule from a mapping, JSON or YAML text, or a ``.json`` / ``.yaml`` file (never executed)."""
    if isinstance(rule, Mapping):
        return rule
    if isinstance(rule, os.PathLike) or (isinstance(rule, str) and rule.strip().lower().endswith(
            (".json", ".yaml", ".yml")) and "\n" not in rule):
        path = Path(rule)
        try:
            rule = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            _fail(f"cannot read {path} ({type(err).__name__}).")
    if not isinstance(rule, str):
        _fail(f"expected a mapping, JSON or YAML text, not {type(rule).__name__}.")
    if len(rule) > MAX_TEXT:
        _fail(f"the rule text is longer than {MAX_TEXT:,} characters.")
    try:
        parsed = json.loads(rule)
    except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
        try:
            parsed = _load_yaml(rule)
        except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: a number of thousands of digits
            _fail("the text is neither valid JSON nor valid YAML, or it is nested or sized beyond reason.")
    if not isinstance(parsed, Mapping):
        _fail("the rule must be a mapping such as {\"all\": [...]}.")
    return parsed


class _Compiler:
    """Validates a parsed rule and builds its WHERE clause with numbered parameters."""

    def __init__(self, tier_names: tuple[str, ...]):
        self.fields = dict(FIELDS, tier=Field("choice", "tier", tier_names))
        self.params: dict[str, object] = {}
        self.n_conditions = 0
        self.uses_scores = False

    def bind(self, value) -> str:
        name = f"aud_p{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def bind_each(self, values: list) -> str:
        """``$aud_p3, $aud_p4, ...``: every value bound on its own, for an ``IN (...)`` list (a list
        parameter would need DuckDB's list functions, outside the portable SQL of :mod:`crmkit.engine`)."""
        return ", ".join(self.bind(v) for v in values)

    def node(self, rule, depth: int = 1) -> str:
        if depth > MAX_DEPTH:
            _fail(f"groups are nested deeper than {MAX_DEPTH} levels.")
        if not isinstance(rule, Mapping):
            _fail(f"expected a condition or a group, not {_show(rule)}.")
        keys = set(rule)
        if keys in ({"all"}, {"any"}):
            (key, items), = rule.items()
            if not isinstance(items, list) or not items:
                _fail(f"'{key}' needs a non-empty list of conditions.")
            joiner = " AND " if key == "all" else " OR "
            return "(" + joiner.join(self.node(item, depth + 1) for item in items) + ")"
        if keys == {"not"}:
            return f"(NOT {self.node(rule['not'], depth + 1)})"
        if keys & {"all", "any", "not"}:
            _fail("a group has exactly one key: all, any or not.")
        return self.condition(rule)

    def condition(self, cond: Mapping) -> str:
        self.n_conditions += 1
        if self.n_conditions > MAX_CONDITIONS:
            _fail(f"more than {MAX_CONDITIONS} conditions.")
        name = cond.get("field")
        if not isinstance(name, str) or name not in self.fields:
            _fail(f"unknown field {_show(name)}; use one of {', '.join(self.fields)}.")
        field = self.fields[name]
        allowed = {"field", "op", "value"} | ({"window_days"} if field.kind == "category" else set())
        if set(cond) - allowed or not {"op", "value"} <= set(cond):
            _fail(f"a condition on {name} has exactly the keys {', '.join(sorted(allowed))}.")
        op = cond["op"]
        if not isinstance(op, str) or op not in field.ops:
            _fail(f"operator {_show(op)} is not allowed for {name}; use one of {', '.join(field.ops)}.")
        self.uses_scores |= field.scores
        value = cond["value"]
        if field.kind in ("int", "number"):
            return self.compare(name, field, op, value)
        values = self.texts(name, field, op, value)
        if field.kind == "category":
            window = cond.get("window_days", 365)
            self.check_number(name + " window_days", window, 1, 3660, integer=True)
            # a purchase placed in the window whose lines of the category are a purchase too (the rule of
            # crmkit.engine.activity applied to them): not returned in full by as_of; a ¥0 gift counts
            sub = (f"SELECT l.member_id FROM lines l JOIN purchases p ON p.member_id = l.member_id "
                   f"AND p.order_id = l.order_id WHERE l.category IN ({self.bind_each(values)}) "
                   f"AND p.day >= CAST($as_of AS DATE) - CAST({self.bind(window)} AS INTEGER) + 1 "
                   f"GROUP BY l.member_id, l.order_id HAVING max(l.is_return) = 0 OR sum(l.amount) >= {HALF_CENT}")
            return f"({field.column} {_SET_OPS[op]} ({sub}))"
        return f"coalesce({field.column} {_SET_OPS[op]} ({self.bind_each(values)}), false)"

    def texts(self, name: str, field: Field, op: str, value) -> list[str]:
        values = value if op in ("in", "not_in") else [value]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            _fail(f"{name} {op} needs a list of 1 to {MAX_VALUES} values, not {_show(value)}.")
        for v in values:
            if not isinstance(v, str):
                _fail(f"{name} values are text, not {_show(v)}.")
            if field.choices and v not in field.choices:
                _fail(f"{_show(v)} is not a valid {name}; use one of {', '.join(field.choices)}.")
            if not field.choices and not TEXT_RE.fullmatch(v):
                _fail(f"{_show(v)} is not a valid {name} (letters, digits, spaces and - _ . / & ( ) only, "
                      "at most 64).")
        return list(values)

    def compare(self, name: str, field: Field, op: str, value) -> str:
        integer = field.kind == "int"
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                _fail(f"{name} between needs a list [low, high], not {_show(value)}.")
            lo, hi = (self.check_number(name, v, field.lo, field.hi, integer) for v in value)
            if lo > hi:
                _fail(f"{name} between needs low <= high, not {_show(value)}.")
            expr = f"{field.column} BETWEEN {self.bind(lo)} AND {self.bind(hi)}"
        else:
            v = self.check_number(name, value, field.lo, field.hi, integer)
            expr = f"{field.column} {_CMP_OPS[op]} {self.bind(v)}"
        return f"coalesce({expr}, false)"

    @staticmethod
    def check_number(name: str, value, lo: float, hi: float, integer: bool) -> float | int:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        # compare before math.isfinite, which overflows on a huge int
        if isinstance(value, bool) or not ok or not lo <= value <= hi or not math.isfinite(value):
            kind = "a whole number" if integer else "a number"
            _fail(f"{name} needs {kind} from {lo:g} to {hi:g}, not {_show(value)}.")
        return value


@dataclass(frozen=True)
class Audience:
    """A validated, compiled audience rule."""

    rule: Mapping
    where: str
    params: Mapping[str, object]
    uses_scores: bool


def compile_rule(rule, tiers=None) -> Audience:
    """Parse and validate ``rule``; raises :class:`AudienceRuleError` without touching any data."""
    parsed = parse_rule(rule)
    c = _Compiler(TierRules.load(tiers).names)
    where = c.node(parsed)
    return Audience(parsed, where, c.params, c.uses_scores)


def attributes_query(as_of, *, tiers=None, windows: Windows | Mapping | None = None) -> Query:
    """CTE ``member_attributes``: one row per member with every field a rule can test."""
    q = (stages_query(as_of, windows) + rfm_query(as_of) + TierRules.load(tiers).query(as_of)
         + clv_layers(as_of))
    return q + Query({"member_attributes": """
  SELECT st.member_id, st.lifecycle_stage, st.recency_days AS days_since_last_purchase,
         st.store_id, st.region, st.channel, st.join_date, st.purchase_days, st.net_spend,
         r.rfm_r, r.rfm_f, r.rfm_m, r.rfm_segment,
         tr.tier, tr.annual_spend, tr.spend_to_next_tier,
         cl.clv, cl.clv_low, cl.clv_high, cl.clv_band, cl.p_alive, cl.churn_risk, cl.churn_band
  FROM stages st
  LEFT JOIN rfm_segments r USING (member_id)
  LEFT JOIN tiers tr USING (member_id)
  LEFT JOIN clv_layers cl USING (member_id)"""})


def _read_only(con: Connection) -> bool:
    return bool(con.execute("SELECT readonly FROM duckdb_databases() "
                            "WHERE database_name = current_database()").fetchall()[0][0])


def use_score_snapshot(con: Connection, as_of) -> None:
    """Make the scores a rule tests those of ``as_of``'s score snapshot, scoring only when none matches.

    - The newest run of ``as_of`` whose data fingerprint is the store's
      (:func:`crmkit.engine.snapshots.latest_run`, any settings: an analyst's
      ``crmkit score`` choices stand) is read as it is.
    - When the date has no run, or its run is of older data, members are
      scored now with the default settings: recorded as a run on a writable
      store, else seen by the query only (a temporary ``member_scores`` view).
    - Scores of earlier dates without a run (from before snapshots) are read
      as before, the latest on or before ``as_of``; with none, and nothing to
      score, the error says to run ``crmkit score``.
    """
    from .dashboard.value import use_scores
    from .engine.snapshots import latest_run, run_of_date, scores_for

    if latest_run(con, as_of) is not None:
        return
    stale = run_of_date(con, as_of) is not None
    if not stale and con.execute("SELECT count(*) FROM member_scores WHERE as_of <= $d",
                                 {"d": as_date(as_of)}).fetchall()[0][0]:
        return
    try:
        scores, run = scores_for(con, as_of, record=not _read_only(con))
    except CrmkitError:
        require_scores(con, as_of)  # scores of earlier dates, else its one sentence
        return
    if run is None:
        use_scores(con, scores.table)


def _run(con, audience: Audience, as_of, select: str, tiers, windows) -> pd.DataFrame:
    if audience.uses_scores:
        use_score_snapshot(con, as_of)
    q = attributes_query(as_of, tiers=tiers, windows=windows) + Query(params=audience.params)
    return q.df(con, select.format(where=audience.where))


def preview(con: Connection, rule, as_of, *, tiers=None,
            windows: Windows | Mapping | None = None) -> int:
    """The number of members the rule selects as of ``as_of``."""
    audience = compile_rule(rule, tiers)
    out = _run(con, audience, as_of, "SELECT count(*) AS n FROM member_attributes WHERE {where}", tiers, windows)
    return int(out["n"].iloc[0])


EXPORT_COLUMNS = ("member_id", "phone", "name", "tier", "rfm_segment", "lifecycle_stage",
                  "days_since_last_purchase", "store_id", "region", "clv", "churn_band")


def select(con: Connection, rule, as_of, *, pii: str = "mask", tiers=None,
           windows: Windows | Mapping | None = None) -> pd.DataFrame:
    """The members the rule selects, with phones and names masked (``pii="mask"``) or hashed (``"hash"``)."""
    if pii not in ("mask", "hash"):
        raise CrmkitError(f"pii must be 'mask' or 'hash', not {pii!r}.")
    audience = compile_rule(rule, tiers)
    cols = ", ".join(f"a.{c}" if c not in ("phone", "name") else f"m.{c}" for c in EXPORT_COLUMNS)
    out = _run(con, audience, as_of, f"""
SELECT {cols} FROM member_attributes a LEFT JOIN members m USING (member_id)
WHERE {{where}} ORDER BY a.member_id""", tiers, windows)
    return privacy.mask_frame(out) if pii == "mask" else privacy.hash_frame(out)


def export(con: Connection, rule, as_of, path: str | os.PathLike, *, pii: str = "mask",
           tiers=None, windows: Windows | Mapping | None = None) -> int:
    """Write the audience to ``path`` (``.csv`` or ``.parquet``) with PII masked or hashed; returns its size.

    The file is written whole or not at all (a temporary file is renamed into place).
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise CrmkitError(f"{path}: export to a .csv or .parquet file.")
    out = select(con, rule, as_of, pii=pii, tiers=tiers, windows=windows)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            out.to_csv(tmp, index=False, encoding="utf-8-sig")  # BOM: Excel opens Chinese text correctly
        else:
            out.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CrmkitError(f"{path}: cannot write the audience ({err.strerror or type(err).__name__}).") from err
    return len(out)
