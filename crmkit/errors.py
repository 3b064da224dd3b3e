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
