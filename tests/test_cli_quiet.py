"""``--quiet`` on every command, and console tables aligned by display width (issue 10, item 19)."""
from __future__ import annotations

import json

import pytest

from crmkit import currency
from crmkit.cli import build_parser, main
from crmkit.commands.load import summary
from crmkit.io import load_files
from crmkit.text import display_width, pad, text_table

#: The least each command needs to parse; every command of the CLI must be here.
MINIMAL = {
    "app": [],
    "campaign-roi": ["crm.duckdb", "--campaign", "C1"],
    "demo-data": ["out"],
    "fit": ["crm.duckdb"],
    "load": ["members.csv"],
    "report": ["--as-of", "2024-12-31"],
    "score": ["crm.duckdb", "--as-of", "2024-12-31"],
}

MEMBERS = "card_no,name\n" + "".join(f"M{i},会员{i}\n" for i in range(12))
ORDERS = "order_id,card_no,order_time,amount\n" + "".join(
    f"O{i}-{k},M{i},2024-{1 + (i + 4 * k) % 12:02d}-{1 + 2 * k:02d} 10:00,{30 + 5 * i + k}\n"
    for i in range(12) for k in range(1 + i % 3)) + "Z,M0,2024-12-31 10:00,40\n"


@pytest.fixture(autouse=True)
def _restore_currency():
    with currency.using("CNY"):
        yield


@pytest.fixture
def exports(tmp_path, monkeypatch):
    """Members in a file with a Chinese name and their orders, in the current folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "会员资料.csv").write_text(MEMBERS, encoding="utf-8")
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    return ["会员资料.csv", "orders.csv"]


def test_every_command_accepts_quiet():
    sub = next(a for a in build_parser([])._actions if a.dest == "command")
    assert set(sub.choices) == set(MINIMAL), "a new command: add it to MINIMAL, with --quiet"
    for name, args in MINIMAL.items():
        parser = build_parser([name])
        assert parser.parse_args([name, *args]).quiet is False
        assert parser.parse_args([name, *args, "--quiet"]).quiet is True, name
        assert parser.parse_args(["--quiet", name, *args]).quiet_all is True  # also before the command
        command = next(a for a in parser._actions if a.dest == "command").choices[name]
        assert "--quiet" in command.format_help()


def test_quiet_load_prints_the_summary_but_no_progress(exports, capsys):
    assert main(["load", *exports, "--db", "crm.duckdb", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "12 source records → 12 members" in out
    assert main(["load", *exports, "--db", "loud.duckdb"]) == 0
    assert "crmkit load: " in capsys.readouterr().err  # progress lines without --quiet
    assert main(["--quiet", "load", *exports, "--db", "quiet.duckdb"]) == 0
    assert capsys.readouterr().err == ""


def test_quiet_fit_and_score_keep_their_warnings(exports, capsys):
    assert main(["load", *exports, "--db", "crm.duckdb", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["fit", "crm.duckdb", "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["calibration_end"] == "2024-12-31" and "crmkit fit: [" not in err and "s] " not in err
    assert main(["fit", "crm.duckdb"]) == 0
    assert "crmkit fit: summarising purchases" in capsys.readouterr().err
    # a score past the data: its warning is no progress line, so --quiet still prints it
    assert main(["score", "crm.duckdb", "--as-of", "2025-02-28", "--allow-future", "--quiet", "--lang", "en"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("crmkit score: ") and "after the last purchase" in err and "s] score:" not in err


def test_quiet_demo_data(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "demo"), "--members", "100", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "wrote " in out and (tmp_path / "demo" / "truth.json").exists()


# ------------------------------------------------------------------ display width

def test_display_width_counts_wide_characters_twice():
    assert display_width("orders.csv") == 10
    assert display_width("会员资料.csv") == 12
    assert display_width("ＡＢ１２") == 8  # full-width forms
    assert display_width("e\u0301") == 1  # a combining accent takes no column
    assert pad("会员", 6) == "会员  " and pad("会员", 6, "right") == "  会员"
    assert pad("会员资料", 2) == "会员资料"  # never cut


def test_text_table_aligns_by_display_width():
    lines = text_table([("file", "rows"), ("会员资料.csv", "1,200"), ("a.csv", "3")], right={1}, rule=True)
    assert lines == ["file           rows",
                     "------------  -----",
                     "会员资料.csv  1,200",
                     "a.csv             3"]
    assert len({display_width(line) for line in lines}) == 1


def test_load_summary_aligns_chinese_file_names(exports, con):
    report = load_files(con, exports, progress=False)
    lines = summary(report).splitlines()
    table = lines[:2 + len(report.files)]
    assert table[2].startswith("会员资料.csv") and table[3].startswith("orders.csv")
    assert len({display_width(line) for line in table}) == 1  # every column ends where it ends in the header
    for line, kind in zip(table[2:], ("members", "transactions")):
        assert display_width(line[:line.index(kind)]) == display_width(table[0][:table[0].index("kind")])

