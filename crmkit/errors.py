"""User-facing errors: one clear sentence, never a traceback."""
from __future__ import annotations


class CrmkitError(Exception):
    """An error whose message is meant for the user as it stands.

    The CLI prints ``str(err)`` and exits with ``exit_code``; the notebooks and
    apps show the same sentence.
    """

    exit_code = 2


class InputError(CrmkitError):
    """A problem with an input file: names the file and, where known, the row and column."""

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.path, self.row, self.column = path, row, column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class ModelError(CrmkitError):
    """A model that cannot be fitted or used, said in one sentence."""


class NoInteriorMaximum(ModelError):
    """The likelihood has no maximum inside the parameter space: its best value lies at a boundary.

    ``limits`` maps each parameter that runs off to where it goes (``{"a": "0"}``,
    ``{"s": "∞", "beta": "∞"}``); ``model`` is the model's name (``"bgnbd"``);
    ``fallback`` names the simpler model that the boundary is, when there is
    one (``"nbd"``: no dropout), else None; ``log_likelihood`` is the best
    value reached; ``cause`` says what the limit means in plain words, a
    clause in ``"zh"`` and ``"en"``.
    """

    def __init__(self, message: str, *, model: str, limits: dict[str, str], fallback: str | None = None,
                 log_likelihood: float | None = None, cause: dict[str, str] | None = None):
        self.model, self.limits, self.fallback, self.log_likelihood = model, dict(limits), fallback, log_likelihood
        self.cause = dict(cause) if cause else {}
        super().__init__(message)
