"""Writing the demo chain's exports in the shapes real channels produce, with a few planted bad rows.

Formats are built in DuckDB SQL from the generated arrays. Bad rows are
copies of good rows with exactly one thing wrong, placed among the others;
each is recorded as ``{file, row_number, reason}`` with the loader's reason.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.store import Connection, scratch

DAY0 = np.datetime64("2024-07-01T00:00:00")


def timestamps(days: np.ndarray) -> np.ndarray:
    """Days after 2024-07-01 00:00 as datetime64 seconds (NaN → NaT)."""
    secs = np.round(np.nan_to_num(days, nan=0.0) * 86400).astype("int64").astype("timedelta64[s]")
    out = DAY0 + secs
    return np.where(np.isnan(days), np.datetime64("NaT"), out)


@dataclass
class Plant:
    """One planted bad row: a copy of a random good row matching ``where``, changed by ``replace``
    (column → SQL expression) and placed right after it; without ``replace`` it is an exact duplicate."""

    reason: str
    where: str
    replace: dict[str, str] = field(default_factory=dict)


class Writer:
    """Formats frames with SQL, plants bad rows, writes files and remembers what it planted."""

    def __init__(self, out_dir: Path, rng: np.random.Generator):
        self.out_dir, self.rng = out_dir, rng
        self.con = scratch()
        self.bad_rows: list[dict] = []
        self.rows: dict[str, int] = {}

    def frame(self, name: str, df: pd.DataFrame) -> None:
        self.con.register(name, df)

    def write(self, file: str, select: str, plants: list[Plant] = (), *, encoding: str = "utf-8",
              bom: bool = False, fmt: str = "csv") -> None:
        """Write ``select`` (ordered) to ``file``, with the ``plants`` among its rows."""
        con = self.con
        con.execute(f"CREATE OR REPLACE TEMP TABLE body AS {select}")
        con.execute("CREATE OR REPLACE TEMP TABLE planted AS SELECT * FROM body LIMIT 0")
        con.execute("ALTER TABLE planted ADD COLUMN _pos DOUBLE")
        con.execute("ALTER TABLE planted ADD COLUMN _reason VARCHAR")
        taken: set[int] = set()
        for i, plant in enumerate(plants):
            rows = [r for r, in con.execute(f"SELECT rowid FROM body WHERE {plant.where}").fetchall()
                    if r not in taken]
            pos = int(self.rng.choice(rows))
            taken.add(pos)
            cols = ", ".join(f'{sql} AS "{col}"' for col, sql in plant.replace.items())
            replace = f" REPLACE ({cols})" if cols else ""
            after = 0.5 if not plant.replace else 0.25 + i / (4 * len(plants))
            con.execute(f"INSERT INTO planted SELECT *{replace}, rowid + {after}, ? FROM body WHERE rowid = ?",
                        [plant.reason, pos])
        con.execute("CREATE OR REPLACE TEMP TABLE final AS SELECT * EXCLUDE (_reason), _reason FROM ("
                    "SELECT *, rowid::DOUBLE AS _pos, NULL::VARCHAR AS _reason FROM body UNION ALL BY NAME "
                    "SELECT * FROM planted) ORDER BY _pos")
        for row, reason in con.execute("SELECT rowid + 1, _reason FROM final WHERE _reason IS NOT NULL "
                                       "ORDER BY rowid").fetchall():
            self.bad_rows.append({"file": file, "row_number": int(row), "reason": reason})
        self.rows[file] = con.execute("SELECT count(*) FROM final").fetchall()[0][0]
        path = self.out_dir / file
        body = "SELECT * EXCLUDE (_pos, _reason) FROM final ORDER BY rowid"
        if fmt == "parquet":
            con.execute(f"COPY ({body}) TO '{path}' (FORMAT parquet)")
        elif fmt == "xlsx":
            _write_xlsx(path, con.execute(body))
        else:
            con.execute(f"COPY ({body}) TO '{path}' (FORMAT csv, HEADER)")
            if encoding != "utf-8" or bom:
                text = path.read_text(encoding="utf-8")
                path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode(encoding))


def _write_xlsx(path: Path, result: Connection) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("members")
    sheet.append([d[0] for d in result.description])
    for row in result.fetchall():
        sheet.append(list(row))
    book.save(path)

