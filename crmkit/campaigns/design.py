"""Campaign design before it runs: a stratified random holdout, its balance, and the audience size needed.

- **Assignment** (:func:`assign_holdout`): within each stratum (tier and home
  store by default, as of the day of the latest transaction), members are put
  in a random order and the control group is drawn by systematic sampling
  from a random start, so every member has probability ``control_share`` of
  control and each stratum gets ⌊share·n⌋ or ⌈share·n⌉ controls. The same
  audience, strata and seed give the same assignment, whatever the input order.
- **Balance** (:func:`balance_table`): pre-period spend and purchase days (the
  engine's, :mod:`crmkit.campaigns.queries`) and the tier mix by group, with
  standardized mean differences.
- **Planning** (:func:`plan_campaign`): sample size and minimum detectable
  effect of a conversion rate, two-sided at ``alpha`` with ``power``
  (:mod:`crmkit.stats`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..engine import as_date
from ..engine.store import Connection
from ..errors import CrmkitError
from ..schema import GROUPS
from ..stats import mde_proportions, sample_size_proportions
from .queries import (ATTRIBUTES, UNKNOWN, assignments as stored_assignments, campaign_info, default_as_of,
                      pre_campaign_day, with_profile, write_assignments)


# -------------------------------------------------------------------------- assignment

def _audience_frame(audience) -> pd.DataFrame:
    frame = (audience.copy() if isinstance(audience, pd.DataFrame)
             else pd.DataFrame({"member_id": list(audience)}))
    if "member_id" not in frame.columns:
        raise CrmkitError("the audience needs a member_id column.")
    frame["member_id"] = frame["member_id"].astype(str)
    frame = frame.drop_duplicates("member_id").sort_values("member_id", ignore_index=True)
    if frame.empty:
        raise CrmkitError("the audience is empty; there is nobody to assign.")
    return frame


def _stratified_control(strata: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Control flags: within each stratum, a random order and systematic sampling from a random start.

    Every member has probability ``share`` of control, and each stratum gets
    ⌊share·n⌋ or ⌈share·n⌉ controls, so the groups are balanced on the strata.
    """
    order = np.lexsort((rng.random(len(strata)), strata))
    s = strata[order]
    first = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    sizes = np.diff(np.r_[first, len(s)])
    rank = np.arange(len(s)) - np.repeat(first, sizes)
    u = np.repeat(rng.random(len(first)), sizes)
    picked = np.floor((rank + 1) * share + u) > np.floor(rank * share + u)
    out = np.empty(len(s), dtype=bool)
    out[order] = picked
    return out


def assign_holdout(con: Connection, audience, campaign_id: str, control_share: float = 0.1,
                   strata: Sequence[str] = ("tier", "store"), seed: int = 0, *, as_of=None,
                   write: bool = False) -> pd.DataFrame:
    """Randomly hold out a control group from a planned campaign's audience, stratified and reproducible.

    Parameters
    ----------
    audience
        Member ids, or a DataFrame with ``member_id`` (and, if wanted, the strata columns).
    control_share
        Share of the audience held out, in (0, 1).
    strata
        Columns to stratify by: columns of ``audience``, or :data:`ATTRIBUTES`
        (``store`` is the home store) from the member profile as of ``as_of``.
    seed
        The same audience, strata and seed give the same assignment, whatever the input order.
    as_of
        Date of the profile used for strata (default: the day of the latest transaction).
    write
        Also insert the assignment into ``campaign_assignments`` (contacted_at
        empty), in one transaction; refused if the campaign already has assignments.

    Returns
    -------
    DataFrame
        campaign_id, member_id, group, and the strata columns; see :func:`balance_table`.
    """
    if not 0 < control_share < 1:
        raise CrmkitError(f"control_share must be between 0 and 1, not {control_share!r}.")
    frame = _audience_frame(audience)
    unknown = [s for s in strata if s not in frame.columns and s not in ATTRIBUTES]
    if unknown:
        raise CrmkitError(f"cannot stratify by {unknown[0]!r}; use audience columns or {', '.join(ATTRIBUTES)}.")
    as_of = as_date(as_of) if as_of is not None else default_as_of(con)
    frame = with_profile(con, frame, strata, as_of)
    codes = (frame.groupby(list(strata), dropna=False, sort=True).ngroup().to_numpy() if strata
             else np.zeros(len(frame), dtype=int))
    control = _stratified_control(codes, control_share, np.random.default_rng(seed))
    out = frame[["member_id", *strata]].assign(group=np.where(control, "control", "treatment"))
    out.insert(0, "campaign_id", str(campaign_id))
    if write:
        write_assignments(con, out)
    return out


# ---------------------------------------------------------------------------- balance

def balance_table(con: Connection, assignments, *, as_of=None, pre_days: int = 365,
                  mix: Sequence[str] = ("tier",)) -> pd.DataFrame:
    """Pre-period balance of treatment and control: spend, purchase days and tier mix by group.

    Parameters
    ----------
    assignments
        A frame with member_id and group (as from :func:`assign_holdout`), or a
        campaign id, whose assignments are read from the store with ``as_of``
        the day before its start.
    as_of, pre_days
        The pre-period is the ``pre_days`` days up to ``as_of`` (inclusive);
        default ``as_of``: the day of the latest transaction.
    mix
        Categorical columns whose share of members is compared (one row per value).

    Returns
    -------
    DataFrame
        metric, treatment, control, difference, smd. Means per member for
        pre_spend (money) and pre_purchase_days, shares for ``mix`` values.
        ``smd`` is the standardized mean difference; |smd| < 0.1 is the usual
        mark of good balance.
    """
    if isinstance(assignments, str):
        info = campaign_info(con, assignments)
        as_of = as_of if as_of is not None else pre_campaign_day(info)
        assignments = stored_assignments(con, assignments)
    as_of = as_date(as_of) if as_of is not None else default_as_of(con)
    pre = ["pre_spend", "pre_purchase_days"]
    frame = with_profile(con, assignments[["member_id", "group", *[c for c in mix if c in assignments]]],
                         [*mix, *pre], as_of, pre_days)
    columns = {c: frame[c].astype(float).fillna(0.0) for c in pre}  # members who joined later: nothing before
    for col in mix:
        values = frame[col].astype(str).where(frame[col].notna(), UNKNOWN)
        for v in sorted(values.unique()):
            columns[f"{col}={v}"] = (values == v).astype(float)
    by_group = pd.DataFrame(columns).groupby(frame["group"].to_numpy())
    mean, var = by_group.mean().reindex(GROUPS), by_group.var().reindex(GROUPS)
    n = frame["group"].value_counts().reindex(GROUPS, fill_value=0).astype(float)
    diff = mean.loc["treatment"] - mean.loc["control"]
    sd = np.sqrt((var.loc["treatment"] + var.loc["control"]) / 2)
    out = pd.DataFrame({"treatment": mean.loc["treatment"], "control": mean.loc["control"], "difference": diff,
                        "smd": (diff / sd).where(sd > 0, np.where(diff == 0, 0.0, np.nan))})
    head = pd.DataFrame({"treatment": n["treatment"], "control": n["control"],
                         "difference": n["treatment"] - n["control"], "smd": np.nan}, index=["members"])
    return pd.concat([head, out]).rename_axis("metric").reset_index()


# ---------------------------------------------------------------------------- planning

def plan_campaign(base_rate: float, expected_lift: float, control_share: float = 0.1, *,
                  audience_size: int | None = None, alpha: float = 0.05, power: float = 0.8) -> dict:
    """Sample size and minimum detectable effect for a planned campaign's conversion rate.

    Parameters
    ----------
    base_rate
        Expected conversion of the control group in the attribution window, e.g. 0.05.
    expected_lift
        Absolute lift hoped for, e.g. 0.01 (5% → 6%).
    control_share
        Share of the audience held out.
    audience_size
        If given, also the lift detectable with that audience split by ``control_share``.

    Returns
    -------
    dict
        n_treatment, n_control, n_total (rounded up) needed to detect
        ``expected_lift`` with ``power`` in a two-sided test at ``alpha``; with
        ``audience_size``: mde (absolute) and mde_rel (relative to ``base_rate``)
        at that size, and ``enough`` (whether the audience suffices).
    """
    if not 0 < control_share < 1:
        raise CrmkitError(f"control_share must be between 0 and 1, not {control_share!r}.")
    if not 0 < base_rate < 1 or not 0 < base_rate + expected_lift <= 1 or expected_lift == 0:
        raise CrmkitError("base_rate and base_rate + expected_lift must be rates between 0 and 1, "
                          "and the lift must not be 0.")
    n_t, n_c = sample_size_proportions(base_rate, expected_lift, control_share, alpha, power)
    out = {"base_rate": base_rate, "expected_lift": expected_lift, "control_share": control_share,
           "alpha": alpha, "power": power, "n_treatment": math.ceil(n_t), "n_control": math.ceil(n_c)}
    out["n_total"] = out["n_treatment"] + out["n_control"]
    if audience_size is not None:
        n_c_have = audience_size * control_share
        mde = mde_proportions(base_rate, audience_size - n_c_have, n_c_have, alpha, power)
        out.update(audience_size=audience_size, mde=mde, mde_rel=mde / base_rate,
                   enough=bool(audience_size >= out["n_total"]))
    return out
