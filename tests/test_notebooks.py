"""Every report notebook runs under papermill on a small demo store, in Chinese and in English.

The store and the executed reports are built once per test session under pytest's
base temp folder; :mod:`test_report_browser` opens the same HTML files.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import crmkit
from crmkit import reports
from crmkit.cli import main
from crmkit.privacy import find_raw_phones

AS_OF = "2026-06-30"  # the end of the demo period
MEMBERS, SEED = 2000, 7
TITLES = {"member_overview": ("会员概览", "Member overview"),
          "clv_churn": ("客户价值与流失风险", "Customer value and churn risk"),
          "campaign_review": ("营销活动复盘", "Campaign review"),
          "monthly_report": ("月度会员经营报告", "Monthly membership report")}
NETWORK = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def demo_store(base: Path) -> Path:
    """A small demo store (generated and loaded once per session)."""
    from crmkit.demo import generate
    from crmkit.io import load_files

    db = base / "demo.duckdb"
    if not db.exists():
        generate(base / "demo", members=MEMBERS, seed=SEED)
        load_files(base / "demo-loading.duckdb", [base / "demo"], progress=False)
        (base / "demo-loading.duckdb").rename(db)
    return db


def built_reports(base: Path, lang: str) -> tuple[dict, Path]:
    """All four reports for the demo store in ``lang`` (run once per session): manifest and folder."""
    out = base / f"reports-{lang}"
    folder = out / AS_OF / lang / "chain"  # <out>/<as_of>/<lang>/<scope>/
    if not (folder / "manifest.json").exists():
        reports.run_reports(demo_store(base), AS_OF, params={"lang": lang}, out=out, progress=False)
    return json.loads((folder / "manifest.json").read_text()), folder


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp()


def text_outputs(nb_path: Path) -> list[str]:
    """The text and HTML outputs of an executed notebook, in order (images left out)."""
    nb = nbformat.read(nb_path, as_version=4)
    return [json.dumps({k: v for k, v in o.get("data", {}).items() if k != "image/png"}, sort_keys=True)
            + o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_report_runs_and_reads_like_a_report(base, lang):
    manifest, folder = built_reports(base, lang)
    assert manifest["status"] == "ok", [(n["name"], n["error"]) for n in manifest["notebooks"]]
    assert [n["name"] for n in manifest["notebooks"]] == list(reports.NOTEBOOKS)
    assert manifest["parameters"]["lang"] == lang and manifest["as_of"] == AS_OF
    assert manifest["crmkit_version"] == crmkit.__version__
    con = crmkit.connect(manifest["parameters"]["db"], read_only=True)
    assert manifest["data_fingerprint"] == reports.data_fingerprint(con)
    con.close()
    for entry in manifest["notebooks"]:
        html = (folder / entry["html"]).read_text(encoding="utf-8")
        assert (folder / entry["ipynb"]).exists()
        title = TITLES[entry["name"]][lang == "en"]
        assert f"<h1>{title}</h1>" in html and f"<title>{title}</title>" in html, entry["name"]
        assert "data:image/png;base64," in html  # charts embedded
        assert "Traceback" not in html and 'class="crmkit-error"' not in html
        # the demo chain has enough history, campaigns and dropout: every section stands, nothing to explain
        assert entry["sections_skipped"] == [] and entry["status"] == "ok", entry["name"]
        assert 'class="crmkit-warning"' not in html and "almost no dropout" not in html, entry["name"]
        assert "几乎看不到会员流失" not in html and "shortened from" not in html, entry["name"]
        assert "dashboard." not in html and "from crmkit" not in html  # no code
        assert not re.search(r"<div[^>]*(jp-CodeCell|jp-InputArea)", html), entry["name"]
        assert not NETWORK.search(html), entry["name"]
        assert find_raw_phones(html) == [], entry["name"]
        assert "¥" in html


def test_same_parameters_same_numbers_and_the_folder_is_replaced(base, tmp_path):
    manifest, folder = built_reports(base, "en")
    target = reports.report_dir(tmp_path, AS_OF, {"lang": "en"})
    stale = target / "stale.html"
    stale.parent.mkdir(parents=True)
    stale.write_text("left over from an earlier run")
    other = tmp_path / AS_OF / "zh" / "chain" / "manifest.json"  # another language's run stays
    other.parent.mkdir(parents=True)
    other.write_text("{}")
    again = reports.run_reports(manifest["parameters"]["db"], AS_OF, ["campaign_review"], {"lang": "en"},
                                out=tmp_path, progress=False)
    assert again["status"] == "ok"
    assert sorted(p.name for p in target.iterdir()) == [
        "campaign_review.html", "campaign_review.ipynb", "manifest.json"]
    assert [p.name for p in target.parent.iterdir()] == ["chain"]  # no staging folder left behind
    assert other.read_text() == "{}"
    generated = re.compile(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d")
    first = [generated.sub("", s) for s in text_outputs(folder / "campaign_review.ipynb")]
    second = [generated.sub("", s) for s in text_outputs(target / "campaign_review.ipynb")]
    assert first == second


def test_unknown_campaign_fails_loudly_and_the_other_reports_still_run(base, tmp_path, capsys):
    db = demo_store(base)
    code = main(["report", "campaign_review", "member_overview", "--db", str(db), "--as-of", AS_OF,
                 "--param", "campaign_id=NOPE", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0
    assert "campaign_review failed" in err and "'NOPE' not found" in err
    assert "Traceback" not in err and "member_overview failed" not in err
    folder = tmp_path / AS_OF / "zh" / "chain"
    manifest = json.loads((folder / "manifest.json").read_text())
    status = {n["name"]: (n["status"], n["error"]) for n in manifest["notebooks"]}
    assert manifest["status"] == "failed"
    assert status["member_overview"] == ("ok", None)
    assert status["campaign_review"][0] == "failed" and "'NOPE' not found" in status["campaign_review"][1]
    executed = (folder / "campaign_review.ipynb").read_text()
    assert "CrmkitError" in executed  # the executed copy keeps the error for the analyst
    html = (folder / "campaign_review.html").read_text()
    assert 'class="crmkit-error"' in html and "NOPE" in html and "Traceback" not in html
