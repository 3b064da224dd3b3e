"""Score snapshots: every scoring run recorded once, and read by whatever needs scores.

``crmkit score STORE`` records a *run* (so do an audience on a writable store
and a report in its copy of the store, when they find none to reuse):
the per-member rows in ``member_scores`` and one row in ``score_runs``
(:data:`crmkit.schema.SCORE_RUNS`) saying when it was computed, for which as_of,
with which model and parameters, from which data, by which crmkit version.
Reports, audiences (and later apps) then read the newest run that matches and
score only when none does.

Rules
-----
- A run *matches* ``(as_of, settings)`` when its as_of is that date, its
  settings fingerprint is that of the settings (:func:`settings_fingerprint`:
  the scoring parameters and the code that scores, tier rules included) and
  its data fingerprint is the store's now (:func:`data_fingerprint`: the
  loaded files, members and transactions). New data, another setting or
  another crmkit therefore makes a new run.
- One run per as_of date. ``member_scores`` keeps one row per member and date
  (its key), and its readers (KPIs, audiences, member 360) pick rows by date,
  so the rows of a date are exactly one run's: recording a run replaces the
  run of its date and that date's rows, all in one transaction. The store
  grows by one run per scored date, as ``member_scores`` always did.
- The run also keeps what a report shows besides the rows: the fitted models,
  the total CLV with its interval, the churn check (``result``: the
  :class:`crmkit.scoring.Scores` without its table, pickled; a few kB).
  Unpickling can call any function a pickle names, so a run is read by
  :class:`_RunUnpickler`, which resolves only crmkit's own classes and the
  data constructors of numpy, pandas, pyarrow and scikit-learn that a result
  is made of: a store from elsewhere whose result names anything else (such
  as ``os.system``) is refused with a warning and the scores are computed
  again. A run is only read by the code that wrote it (the code is part of
  the settings fingerprint).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import io
import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from .. import __version__
from ..i18n import register, t
from ..schema import MEMBER_SCORES
from .activity import as_date

register({"snapshot.caption": ("第 {run} 次评分（计算于 {at}，模型 {model}）",
                               "scores of run {run}, computed {at}, model {model}")})

#: The scoring parameters a run records, with the defaults of :func:`crmkit.scoring.score_members` (a test
#: checks they agree; they are repeated here so that looking a run up does not import the models).
DEFAULTS = {"model": "bgnbd", "period": "W", "horizon_days": 365, "discount_rate": 0.10, "margin": 0.30,
            "churn_days": 180, "interval": 0.9, "thresholds": None}
PARAMETERS = tuple(DEFAULTS)


@dataclass(frozen=True)
class ScoreRun:
    """One row of ``score_runs`` (without its pickled result)."""

    run_id: int
    created_at: dt.datetime
    as_of: dt.date
    model: str
    parameters: dict
    settings_fingerprint: str
    data_fingerprint: str
    crmkit_version: str
    members: int

    def caption(self, lang: str = "zh") -> str:
        """``scores of run 3, computed 2026-12-03 13:50 UTC, model bgnbd`` (or in Chinese)."""
        return t("snapshot.caption", lang).format(run=self.run_id, at=self.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                                                  model=self.model)

    def to_dict(self) -> dict:
        """The run for a manifest: JSON types only."""
        return {"run_id": self.run_id, "created_at": self.created_at.isoformat(timespec="seconds") + "Z",
                "as_of": self.as_of.isoformat(), "model": self.model, "parameters": self.parameters,
                "settings_fingerprint": self.settings_fingerprint, "data_fingerprint": self.data_fingerprint,
                "crmkit_version": self.crmkit_version, "members": self.members}


def settings(**given) -> dict:
    """The full scoring parameters: ``given`` (keys of :data:`PARAMETERS`) over the scoring defaults.

    Numbers are normalised (``0.3`` and ``0.30``, ``365`` and ``365.0`` are
    the same setting), so that a report parameter and a CLI flag agree.
    """
    unknown = set(given) - set(PARAMETERS)
    if unknown:
        raise TypeError(f"unknown scoring parameter {sorted(unknown)[0]!r}")
    out = {**DEFAULTS, **{k: v for k, v in given.items() if v is not None or k == "thresholds"}}
    for k in ("horizon_days", "churn_days"):
        out[k] = int(out[k])
    for k in ("discount_rate", "margin", "interval"):
        out[k] = float(out[k])
    out["thresholds"] = None if out["thresholds"] is None else [float(v) for v in out["thresholds"]]
    return {k: out[k] for k in PARAMETERS}


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 of crmkit's Python sources and tier rules (a few milliseconds, once per process).

    Released versions never change their code, so this is the version; in a
    development tree any change to the code that scores makes a new run, and
    a run's pickled result is only ever read by the code that wrote it.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(root.rglob("*.py")) + [root / "tiers.yaml"]:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def settings_fingerprint(params: dict) -> str:
    """sha256 of what determines the scores besides the data: the parameters and the code (with the tier rules)."""
    blob = json.dumps({"parameters": settings(**params), "code": code_fingerprint()}, sort_keys=True)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 of the data scores are made from: the loaded files (``loads``) and the transactions.

    The transactions' row count, time span and amount total catch data that
    came without a load (a test, an import by hand); the members' count and
    last join date catch new registrations. One scan of each table, no sort
    of the transactions. Scoring itself changes nothing here.
    """
    facts = con.execute("""
SELECT (SELECT string_agg(file_sha256 || ':' || kind, ',' ORDER BY file_sha256, kind) FROM loads),
       (SELECT count(*) FROM loads),
       (SELECT count(*) FROM members), (SELECT max(join_date) FROM members),
       count(*), min(order_time), max(order_time), round(sum(amount), 2), round(sum(abs(amount)), 2)
FROM transactions""").fetchall()[0]
    blob = json.dumps(list(facts), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def _has_runs_table(con: duckdb.DuckDBPyConnection) -> bool:
    """False for a store made before score snapshots, opened read-only (a writer's schema check adds it)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                            "AND schema_name = 'main' AND table_name = 'score_runs'").fetchall()[0][0])


_RUN_COLUMNS = ("run_id, created_at, as_of, model, parameters, settings_fingerprint, data_fingerprint, "
                "crmkit_version, members")


def _run(row) -> ScoreRun:
    run_id, created, as_of, model, params, sfp, dfp, version, members = row
    return ScoreRun(int(run_id), created, as_of, model, json.loads(params), sfp, dfp, version, int(members))


def runs(con: duckdb.DuckDBPyConnection) -> list[ScoreRun]:
    """Every recorded run, newest first (empty for a store without runs)."""
    if not _has_runs_table(con):
        return []
    return [_run(r) for r in con.execute(f"SELECT {_RUN_COLUMNS} FROM score_runs ORDER BY run_id DESC").fetchall()]


def latest_run(con: duckdb.DuckDBPyConnection, as_of, params: dict | None = None) -> ScoreRun | None:
    """The newest run of ``as_of`` that matches ``params`` (any settings when None) and today's data, or None.

    A run whose ``member_scores`` rows are no longer all there (rewritten by
    something that does not record runs), or whose result could not be
    stored, does not match.
    """
    if not _has_runs_table(con):
        return None
    query = (f"SELECT {_RUN_COLUMNS} FROM score_runs WHERE as_of = $as_of AND data_fingerprint = $data "
             "AND result IS NOT NULL")
    args = {"as_of": as_date(as_of), "data": data_fingerprint(con)}
    if params is not None:
        query += " AND settings_fingerprint = $settings"
        args["settings"] = settings_fingerprint(params)
    row = next(iter(con.execute(query + " ORDER BY run_id DESC LIMIT 1", args).fetchall()), None)
    if row is None:
        return None
    run = _run(row)
    if params is None and run.settings_fingerprint != settings_fingerprint(run.parameters):
        return None  # made by other code: its pickled result is not for this one
    rows = con.execute("SELECT count(*) FROM member_scores WHERE as_of = $as_of", {"as_of": run.as_of}).fetchall()[0][0]
    return run if rows == run.members else None


def run_of_date(con: duckdb.DuckDBPyConnection, as_of) -> ScoreRun | None:
    """The run recorded for ``as_of`` whatever its settings and data, or None."""
    if not _has_runs_table(con):
        return None
    row = next(iter(con.execute(f"SELECT {_RUN_COLUMNS} FROM score_runs WHERE as_of = $as_of "
                                "ORDER BY run_id DESC LIMIT 1", {"as_of": as_date(as_of)}).fetchall()), None)
    return _run(row) if row else None


def record_run(con: duckdb.DuckDBPyConnection, scores, params: dict) -> ScoreRun:
    """Record ``scores`` (a :class:`crmkit.scoring.Scores` made with ``params``) as a new run; returns it.

    In one transaction: the run of the same as_of and its ``member_scores``
    rows are replaced (one run per date, see the module docstring). Run ids
    grow: a new run gets one more than the newest recorded.
    """
    from ..store import transaction

    params = settings(**params)
    try:
        result = pickle.dumps(dataclasses.replace(scores, table=None), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):  # rows still recorded; readers score again
        result = None
    created = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    complete = getattr(con, "complete", None)
    if complete is not None:  # DuckDB 2 refuses register() while a result of the scoring is unread
        complete()
    data = data_fingerprint(con)
    con.register("_crmkit_scores", scores.table)
    try:
        with transaction(con):
            con.execute("DELETE FROM member_scores WHERE as_of = $d", {"d": scores.as_of})
            con.execute("INSERT INTO member_scores BY NAME SELECT * FROM _crmkit_scores")
            run_id = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM score_runs").fetchall()[0][0]
            con.execute("DELETE FROM score_runs WHERE as_of = $d", {"d": scores.as_of})  # after: ids never repeat
            run = ScoreRun(int(run_id), created, scores.as_of, params["model"], params,
                           settings_fingerprint(params), data, __version__, len(scores.table))
            con.execute(f"INSERT INTO score_runs ({_RUN_COLUMNS}, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run.run_id, run.created_at, run.as_of, run.model, json.dumps(params), run.settings_fingerprint,
                         run.data_fingerprint, run.crmkit_version, run.members, result])
    finally:
        con.unregister("_crmkit_scores")
    return run


#: Packages whose classes (types only, never functions) a stored result may name.
_CLASS_PACKAGES = ("crmkit", "numpy", "pandas", "pyarrow", "sklearn", "scipy")
#: Functions a stored result may name: how numpy, pandas and pyarrow rebuild their data.
_FUNCTIONS = frozenset({
    ("copyreg", "_reconstructor"), ("builtins", "slice"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "complex"), ("builtins", "object"), ("datetime", "date"), ("datetime", "datetime"),
    ("datetime", "timedelta"), ("collections", "OrderedDict"),
    ("numpy", "dtype"), ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("pandas.core.indexes.base", "_new_Index"), ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
    ("pyarrow.lib", "_restore_array"), ("pyarrow.lib", "type_for_alias"), ("pyarrow.lib", "py_buffer"),
})


class _ForeignName(pickle.UnpicklingError):
    """A stored result names something outside :data:`_FUNCTIONS` and :data:`_CLASS_PACKAGES`."""


class _RunUnpickler(pickle.Unpickler):
    """Resolves only :data:`_FUNCTIONS` and the classes of :data:`_CLASS_PACKAGES`; a module outside
    them is not even imported."""

    def find_class(self, module: str, name: str):
        if (module, name) in _FUNCTIONS:
            return super().find_class(module, name)
        if module.split(".")[0] in _CLASS_PACKAGES and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise _ForeignName(f"{module}.{name}")


def _unpickle(blob: bytes):
    return _RunUnpickler(io.BytesIO(blob)).load()


def read_scores(con: duckdb.DuckDBPyConnection, run: ScoreRun):
    """The :class:`crmkit.scoring.Scores` of ``run``: its pickled result with its ``member_scores`` rows.

    None when this code cannot read the result (written by a development
    version of crmkit whose result had other fields): the caller scores again.
    """
    blob = con.execute("SELECT result FROM score_runs WHERE run_id = $id", {"id": run.run_id}).fetchall()[0][0]
    try:
        result = _unpickle(blob)
        complete = all(hasattr(result, f.name) for f in dataclasses.fields(result) if f.name != "table")
    except _ForeignName as err:
        warnings.warn(f"score run {run.run_id}'s stored result names {err}, which no score result holds; "
                      f"it is ignored and the scores are computed again.", stacklevel=2)
        return None
    except Exception:  # noqa: BLE001 - any other failure to unpickle means: not readable here
        return None
    if not complete:
        return None
    columns = ", ".join(f'"{c}"' for c in MEMBER_SCORES.names)
    with warnings.catch_warnings():  # the extra copy of the rows is cheap beside a pandas conversion
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        arrow = con.execute(f"SELECT {columns} FROM member_scores WHERE as_of = $d ORDER BY member_id",
                            {"d": run.as_of}).to_arrow_table()
    table = arrow.to_pandas(types_mapper={pa.date32(): pd.ArrowDtype(pa.date32())}.get)
    return dataclasses.replace(result, table=table)


def scores_for(con: duckdb.DuckDBPyConnection, as_of, params: dict | None = None, *, record: bool = True,
               progress=None):
    """``(scores, run)``: the scores of the newest matching run, else scored now.

    Scored now, they are recorded as a run when ``record`` (the connection
    must be writable), and ``run`` is that run; otherwise ``run`` is None.
    """
    from ..scoring import score_members

    params = settings(**(params or {}))
    run = latest_run(con, as_of, params)
    stored = read_scores(con, run) if run is not None else None
    if stored is not None:
        return stored, run
    scores = score_members(con, as_of, progress=progress, **params)
    return scores, (record_run(con, scores, params) if record else None)

