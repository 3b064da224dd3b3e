"""Bounded inputs: a workbook is checked before it is read, and every record of a quoted file is counted.

Each workbook load that could abort the process runs in a subprocess, so an abort fails the test
instead of killing pytest.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile

import openpyxl
import pytest

from crmkit.errors import InputError
from crmkit.io import readers
from test_load_files import MEMBERS, load, write

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CELLS = ('<row r="1"><c r="A1" t="inlineStr"><is><t>card_no</t></is></c><c r="B1" t="inlineStr"><is><t>phone'
          '</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>C9</t></is></c><c r="B2"><v>13812345678'
          '</v></c></row>')


def book(path, sheet_data: str, dimension: str | None = None, sst: str | None = None):
    """A minimal .xlsx written with zipfile: one sheet of ``sheet_data``, shared strings with root attributes
    ``sst`` (and strings card_no, phone, C9) when given."""
    shared = sst is not None
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                               'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
                               'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
                               '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                               'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
                               'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
                               'worksheet+xml"/>' + ('<Override PartName="/xl/sharedStrings.xml" ContentType="'
                                                     'application/vnd.openxmlformats-officedocument.spreadsheetml.'
                                                     'sharedStrings+xml"/>' if shared else '') + '</Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                       f'relationships"><Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"'
                       f'/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook {_NS} xmlns:r="{_REL}"><sheets><sheet name="S" '
                           f'sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                                      f'package/2006/relationships"><Relationship Id="rId1" Type="{_REL}/worksheet" '
                                      f'Target="worksheets/sheet1.xml"/>' + (
                                          f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" '
                                          f'Target="sharedStrings.xml"/>' if shared else '') + '</Relationships>',
        "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet {_NS}>'
                                    + (f'<dimension ref="{dimension}"/>' if dimension else '')
                                    + f'<sheetData>{sheet_data}</sheetData></worksheet>',
    }
    if shared:
        parts["xl/sharedStrings.xml"] = (f'<?xml version="1.0"?><sst {_NS} {sst}><si><t>card_no</t></si><si><t>'
                                         f'phone</t></si><si><t>C9</t></si></sst>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return path


def load_in_subprocess(tmp_path, path):
    """``crmkit load`` of ``path`` into a fresh store, in a subprocess: an abort fails, never kills pytest."""
    return subprocess.run([sys.executable, "-m", "crmkit", "--quiet", "load", str(path), "--kind", "members",
                           "--db", str(tmp_path / "store.duckdb")], capture_output=True, text=True, timeout=300)


def refused_in_one_sentence(run, name: str) -> str:
    assert run.returncode not in (0, -6, 134), run.stderr  # -6: SIGABRT
    text = run.stderr.strip()
    assert "\n" not in text and "Traceback" not in text and "memory allocation" not in text, text
    assert name in text
    return text


# -- workbooks -----------------------------------------------------------------------------------

def test_a_5_kb_workbook_with_a_value_in_the_last_cell_is_one_sentence_not_an_abort(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["card_no", "phone"])
    ws.append(["C1", "13812345678"])
    ws["XFD1048576"] = "x"
    wb.save(tmp_path / "members.xlsx")
    assert (tmp_path / "members.xlsx").stat().st_size < 10_000
    text = refused_in_one_sentence(load_in_subprocess(tmp_path, tmp_path / "members.xlsx"), "members.xlsx")
    assert "row 1,048,576 and column XFD" in text and "17,179,869,184 cells" in text


def test_a_sheet_that_declares_a_small_dimension_is_judged_by_its_values(tmp_path):
    # the reader sizes a sheet by its values, not by the declared dimension, so a lie does not pass
    lying = book(tmp_path / "lying_members.xlsx", _CELLS + '<row r="1048576"><c r="XFD1048576" t="inlineStr">'
                                                           '<is><t>x</t></is></c></row>', "A1:B2")
    refused_in_one_sentence(load_in_subprocess(tmp_path, lying), "lying_members.xlsx")
    undeclared = book(tmp_path / "nodim_members.xlsx", _CELLS + '<row r="900000"><c r="ZZ900000"><v>1</v></c></row>')
    with pytest.raises(InputError, match=r"nodim_members.xlsx: its sheet xl/worksheets/sheet1.xml has values as "
                                         r"far as row 900,000 and column ZZ"):
        readers.inspect(undeclared)


def test_a_sparse_sheet_whose_far_cells_are_empty_loads(con, tmp_path):
    # Excel declares A1:XFD1048576 for one formatted, empty cell at the end; the reader skips it
    styled = book(tmp_path / "members.xlsx", _CELLS + '<row r="1048576"><c r="XFD1048576" s="1"/>'
                                                      '<c r="XFC1048576"><v></v></c></row>', "A1:XFD1048576")
    f = load(con, styled).files[0]
    assert (f.kind, f.rows, f.accepted) == ("members", 1, 1)
    assert con.execute("SELECT phone FROM members").fetchall() == [("13812345678",)]


def test_a_sparse_but_small_sheet_loads(con, tmp_path):
    far = book(tmp_path / "members.xlsx", _CELLS + '<row r="30"><c r="Z30" t="inlineStr"><is><t>note</t></is></c>'
                                                   '</row>', "A1:Z30")
    f = load(con, far).files[0]
    assert (f.rows, f.accepted, f.rejected) == (2, 1, 1)  # row 30 names no member


def test_cells_without_references_take_the_next_positions(con, tmp_path):
    cells = ('<row><c t="inlineStr"><is><t>card_no</t></is></c><c t="inlineStr"><is><t>phone</t></is></c></row>'
             '<row><c t="inlineStr"><is><t>C9</t></is></c><c><v>13812345678</v></c></row>')
    assert load(con, book(tmp_path / "members.xlsx", cells)).files[0].accepted == 1
    wide = book(tmp_path / "wide_members.xlsx", "<row/>" * 5000 + "<row>" + "<c><v>1</v></c>" * 16384 + "</row>")
    with pytest.raises(InputError, match=r"wide_members.xlsx: its sheet .* as far as row 5,001 and column XFD"):
        readers.inspect(wide)


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_the_extent_is_the_largest_row_and_column_holding_a_value(tmp_path, monkeypatch, prefix):
    cells = "".join(f'<{prefix}c r="{ref}"><{prefix}v>1</{prefix}v></{prefix}c>'
                    for ref in ("B100", "AA10", "Z99", "A9", "AZ1"))
    data = (f'<{prefix}row r="1">{cells}<{prefix}c r="ZZ5000" s="1"/><{prefix}c r="BA1"><{prefix}v></{prefix}v>'
            f'</{prefix}c></{prefix}row>')
    path = book(tmp_path / "x.xlsx", data)
    if prefix:  # the same sheet with its elements named x:worksheet, x:sheetData...
        with zipfile.ZipFile(path) as z:
            parts = {n: z.read(n) for n in z.namelist()}
        parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(
            b"<worksheet xmlns=", b"<x:worksheet xmlns:x=").replace(b"</worksheet>", b"</x:worksheet>").replace(
            b"sheetData>", b"x:sheetData>")
        with zipfile.ZipFile(path, "w") as z:
            for n, data in parts.items():
                z.writestr(n, data)
    with zipfile.ZipFile(path) as z:
        # the far cells ZZ5000 and BA1 hold no value; only a sheet too large is read a second time for values
        assert readers._sheet_extent(lambda: z.open("xl/worksheets/sheet1.xml")) == (5000, 702)
    monkeypatch.setattr(readers, "MAX_EXCEL_CELLS", 1000)
    with zipfile.ZipFile(path) as z:
        assert readers._sheet_extent(lambda: z.open("xl/worksheets/sheet1.xml")) == (100, 52)


def test_declared_shared_strings_beyond_the_bound_are_one_sentence(tmp_path):
    cells = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
             '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2"><v>13812345678</v></c></row>')
    ok = book(tmp_path / "ok_members.xlsx", cells, "A1:B2", 'count="3" uniqueCount="3"')
    assert readers.inspect(ok).headers == ["card_no", "phone"]
    bomb = book(tmp_path / "members.xlsx", cells, "A1:B2", 'count="4000000000" uniqueCount="4000000000"')
    text = refused_in_one_sentence(load_in_subprocess(tmp_path, bomb), "members.xlsx")
    assert "4,000,000,000 shared strings" in text


def test_a_part_larger_than_the_bound_uncompressed_is_refused(tmp_path, monkeypatch):
    big = book(tmp_path / "members.xlsx", _CELLS + "<row/>" * 1000, "A1:B2")
    monkeypatch.setattr(readers, "MAX_EXCEL_PART_BYTES", 1000)
    with pytest.raises(InputError, match=r"members.xlsx: its part xl/worksheets/sheet1.xml is [0-9,]+ bytes "
                                         r"uncompressed, more than the 1,000"):
        readers.inspect(big)


# -- quoted text: rows = accepted + rejected, with records counted across quoted line breaks ---------

@pytest.fixture
def members(tmp_path):
    return write(tmp_path, "members.csv", MEMBERS)


def test_a_quoted_field_across_lines_is_one_row(con, tmp_path, members):
    orders = write(tmp_path, "orders.csv", 'order_id,card_no,order_time,amount,note\n'
                                           'O1,C1,2024-01-31 08:00,100,"a\nthree-line\nnote"\n'
                                           'O2,C1,2024-02-01 09:30,50.5,"say ""hi"""\n'
                                           'O3,C1,2024-02-01 09:30,5,plain\n')
    f = load(con, members, orders).files[-1]
    assert (f.rows, f.accepted, f.rejected) == (3, 3, 0)
    stray = write(tmp_path, "stray_orders.csv", 'order_id,card_no,order_time,amount,note\n'
                                                'O4,C1,2024-01-31,1,55" TV\nO5,C1,2024-01-31,2,"two\nlines"\n')
    f = load(con, stray).files[-1]
    assert (f.rows, f.accepted, f.rejected) == (2, 2, 0)
    # a blank line inside a quoted field is part of its record; one outside is a (skipped) row
    blank = write(tmp_path, "blank_orders.csv", 'order_id,card_no,order_time,amount,note\n'
                                                'O6,C1,2024-01-31,1,"a\n\nb"\n\nO7,C1,2024-01-31,-2,x\n')
    f = load(con, blank).files[-1]
    assert (f.rows, f.accepted, f.rejected) == (2, 1, 1)
    assert con.execute("SELECT row_number, reason FROM quarantine").fetchall() == [(3, "negative amount on a sale")]


def test_rows_the_reader_drops_from_a_quoted_file_are_counted(con, tmp_path, members, monkeypatch):
    # the backstop used to be skipped for files with quotes: a dropped 40 MB row went unnoticed there
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1 << 30)
    load(con, members)
    p = tmp_path / "orders.csv"
    with open(p, "wb") as fh:
        fh.write(b'order_id,card_no,order_time,amount,note\nO1,C1,2024-01-31,1,"a\nb"\nO2,C1,2024-01-31,')
        fh.write(b"9" * 40_000_000)
        fh.write(b',x\nO3,C1,2024-01-31,3,"c"\n')
    with pytest.raises(InputError) as err:
        load(con, p)
    assert "orders.csv: only 2 of its 3 records could be read as rows, so nothing was loaded" in str(err.value)
    assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0
