"""The papermill runner's parts: parameters, data fingerprint, HTML without code, atomic swap."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys

import nbformat
import pytest

from crmkit import CrmkitError, fonts, reports
from crmkit.cli import main
from crmkit.privacy import find_raw_phones
from crmkit.schema import TABLES

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()


@pytest.mark.parametrize("text, expected", [
    ("horizon_days=365", ("horizon_days", 365)),
    ("discount_rate=0.1", ("discount_rate", 0.1)),
    ("lang=en", ("lang", "en")),
    ("region=华东", ("region", "华东")),
    ("as_of=2026-06-30", ("as_of", "2026-06-30")),  # a date stays a string literal
    ("store_id=none", ("store_id", None)),
    ("campaign_id=007", ("campaign_id", 7)),
    ("flag=True", ("flag", True)),
    ("campaign_id= C 1 ", ("campaign_id", "C 1")),
])
def test_parse_param(text, expected):
    assert reports.parse_param(text) == expected


@pytest.mark.parametrize("bad", ["horizon", "=3", "2x=1", "a-b=1"])
def test_parse_param_rejects_malformed(bad):
    with pytest.raises(CrmkitError, match="KEY=VALUE"):
        reports.parse_param(bad)


def test_parse_as_of():
    assert reports.parse_as_of("2026-06-30") == "2026-06-30"
    with pytest.raises(CrmkitError, match="expected a date"):
        reports.parse_as_of("30/06/2026")


def test_data_fingerprint_is_sha256_of_counts_and_transaction_totals(con):
    con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) VALUES "
                "('A', 'o1', '2026-01-02 10:00', 10.5), ('B', 'o2', '2026-03-04 11:30', -2.25)")
    facts = {name: 0 for name in TABLES}
    facts["transactions"] = 2
    facts["transactions.span"] = ["2026-01-02 10:00:00", "2026-03-04 11:30:00"]
    facts["transactions.amount"] = 8.25
    expected = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
    assert reports.data_fingerprint(con) == f"sha256:{expected}"
    con.execute("INSERT INTO members (member_id) VALUES ('A')")
    assert reports.data_fingerprint(con) != f"sha256:{expected}"


def _executed_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    banner = nbformat.v4.new_markdown_cell("<span>An Exception was encountered at 'In [3]'</span>")
    banner.metadata["tags"] = ["papermill-error-cell-tag"]
    params = nbformat.v4.new_code_cell('db = "x.duckdb"\nlang = "zh"')
    params.metadata["tags"] = ["parameters"]
    chart = nbformat.v4.new_code_cell("viz.show(plot_secret_source())", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something 13912345678\n"),
        nbformat.v4.new_output("display_data", {"image/png": PNG, "text/plain": "<Image>"},
                               metadata={"image/png": {"alt": '会员价值"金字塔"'}}),
        nbformat.v4.new_output("display_data", {"text/html": "<h2>会员价值</h2>", "text/plain": "h"}),
    ])
    failing = nbformat.v4.new_code_cell("measure(con, 'NOPE')", outputs=[
        nbformat.v4.new_output("error", ename="CrmkitError", evalue="campaign 'NOPE' is not in the store.",
                               traceback=["Traceback (most recent call last):", "  File x, line 1"]),
    ])
    nb.cells = [banner, params, chart, failing]
    return nb


def test_presentable_keeps_outputs_only():
    shown = reports.presentable(_executed_notebook())
    assert [c.cell_type for c in shown.cells] == ["code", "code"]  # banner and output-less cells dropped
    kinds = [[o.output_type for o in c.outputs] for c in shown.cells]
    assert kinds == [["display_data", "display_data"], ["display_data"]]  # stderr gone
    error = shown.cells[1].outputs[0].data["text/plain"]
    assert error == "campaign &#x27;NOPE&#x27; is not in the store."


def test_html_is_offline_codeless_and_shows_the_error_sentence():
    out = reports.to_html(_executed_notebook(), lang="zh")
    assert not re.search(r"""<(script|link)\b[^>]*(src|href)\s*=\s*["']?(https?:)?//""", out)
    assert "plot_secret_source" not in out and "<div class=\"jp-InputArea" not in out
    assert not re.search(r"<div[^>]*jp-CodeCell", out)  # no code cells, outputs only
    assert "Traceback" not in out and "In [3]" not in out
    assert find_raw_phones(out) == []
    assert f"""<img alt='会员价值"金字塔"' src="data:image/png;base64,{PNG}"/>""" in out  # alt escaped
    assert "<div class=\"crmkit-error\">campaign 'NOPE' is not in the store.</div>" in out
    assert '<html lang="zh">' in out
    assert 'font-family: "crmkit CJK"' in out and "data:font/otf;base64," in out  # Chinese without system fonts


@pytest.mark.parametrize("ename, evalue, expected", [
    ("CrmkitError", "campaign 'X' is not in the store.\nmore", "campaign 'X' is not in the store."),
    ("KeyError", "'clv'", "KeyError: 'clv'"),
    ("DeadKernelError", "", "DeadKernelError"),
])
def test_error_sentence(ename, evalue, expected):
    assert reports.error_sentence(ename, evalue) == expected


def test_swap_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "2026-06-30"
    target.mkdir()
    (target / "stale.html").write_text("old")
    staging = tmp_path / ".2026-06-30.partial-x"
    staging.mkdir()
    (staging / "member_overview.html").write_text("new")
    reports._swap_in(staging, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-06-30"]
    assert sorted(p.name for p in target.iterdir()) == ["member_overview.html"]


def test_every_report_declares_the_common_parameters():
    for name in reports.NOTEBOOKS:
        declared = reports.notebook_parameters(name)
        assert {"db", "as_of", "lang"} <= set(declared), name
        assert declared["lang"] == '"zh"'


def test_plan_injects_only_declared_parameters_and_rejects_unknown_ones():
    plan = reports.plan_parameters(["member_overview", "campaign_review"], "/d.duckdb", "2026-06-30",
                                   {"campaign_id": "C1", "lang": "en"})
    assert plan["campaign_review"] == {"db": "/d.duckdb", "as_of": "2026-06-30", "campaign_id": "C1",
                                       "lang": "en"}
    assert "campaign_id" not in plan["member_overview"]
    with pytest.raises(CrmkitError, match="unknown report parameter 'horizon'"):
        reports.plan_parameters(["member_overview"], "/d.duckdb", "2026-06-30", {"horizon": 1})
    with pytest.raises(CrmkitError, match="lang=fr"):
        reports.plan_parameters(["member_overview"], "/d.duckdb", "2026-06-30", {"lang": "fr"})


def test_cli_rejects_unknown_report_and_missing_store_in_one_sentence(tmp_path, capsys):
    assert main(["report", "sales", "--db", str(tmp_path / "x.duckdb"), "--as-of", "2026-06-30"]) == 2
    assert "no report named 'sales'" in capsys.readouterr().err
    assert main(["report", "--db", str(tmp_path / "x.duckdb"), "--as-of", "2026-06-30",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no member store there" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_kernel_python3_must_run_this_interpreter(monkeypatch):
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    reports.check_kernel()  # the environment's own kernel
    other = KernelSpec(argv=["/opt/other/bin/python3", "-m", "ipykernel_launcher"], resource_dir="/home/u/k")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: other)
    with pytest.raises(CrmkitError, match="runs /opt/other/bin/python3, not this environment's"):
        reports.check_kernel()
    mine = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher"], resource_dir="/x")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: mine)
    reports.check_kernel()


def test_font_face_is_subset_once_per_character_set(monkeypatch, tmp_path):
    monkeypatch.setenv("CRMKIT_CACHE_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(fonts, "_subset_font_face", lambda path, chars: calls.append(chars) or f"/*{chars}*/")
    from crmkit.fonts import cjk_font_path

    if cjk_font_path() is None:
        pytest.skip("mplfonts is not installed")
    assert fonts.cjk_font_face("会员 2026") == fonts.cjk_font_face("员会 members") == "/*会员*/"
    assert calls == ["会员"]  # the second report with the same characters read the cache
    assert fonts.cjk_font_face("会员数") == "/*会员数*/" and calls == ["会员", "会员数"]
    assert fonts.cjk_font_face("members only") == ""


def test_report_runs_without_compiling_the_iri_grammars():
    # jsonschema (imported by nbformat) checks the iri formats with rfc3987_syntax, whose import compiles
    # some forty grammars; the report process marks it missing, and notebooks still validate
    code = ("import sys; from crmkit import reports; reports._without_iri_grammars(); import nbformat; "
            "nbformat.validate(nbformat.v4.new_notebook()); print(sys.modules['rfc3987_syntax'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"


def test_model_comparison_is_cached_under_its_inputs(monkeypatch, tmp_path):
    import numpy as np
    import pandas as pd

    from crmkit.clv import validation

    monkeypatch.setenv("CRMKIT_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(7)
    T = rng.integers(20, 60, 400).astype(float)
    recency = np.floor(T * rng.uniform(0, 1, 400))
    frequency = np.where(recency > 0, rng.integers(1, 6, 400), 0).astype(float)
    ch = pd.DataFrame({"frequency": frequency, "recency": recency, "T": T,
                       "frequency_holdout": rng.poisson(frequency / 4).astype(float), "duration_holdout": 26.0})
    fits = []
    compare = validation._compare_records
    monkeypatch.setattr(validation, "_compare_records", lambda *a: fits.append(1) or compare(*a))
    first = validation.compare_models(ch, ["bgnbd"])
    again = validation.compare_models(ch, ["bgnbd"])
    pd.testing.assert_frame_equal(first, again, check_exact=True)  # read back to the last digit
    assert len(fits) == 1 and len(list((tmp_path / "compare_models").glob("*.json"))) == 1
    changed = ch.assign(frequency_holdout=ch["frequency_holdout"] + (ch.index == 0))  # one member bought once more
    assert validation.compare_models(changed, ["bgnbd"]).loc["BG/NBD", "actual_total"] == first.iloc[0]["actual_total"] + 1
    validation.compare_models(ch, ["bgnbd"], lang="zh")  # the notes' language is part of the key
    assert len(fits) == 3


def test_a_notebook_runs_in_its_folder_without_changing_the_process_folder(monkeypatch, tmp_path):
    """Notebooks run side by side in threads: the kernel is started in the output folder (nbclient's
    resources path), never by os.chdir, which is the whole process's and would race between threads."""
    import os

    import papermill

    seen = {}

    def execute(source, target, **kw):
        seen.update(kw)
        raise RuntimeError("stop here")

    chdirs = []
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setattr(os, "chdir", lambda path: chdirs.append(path))
    run = reports.run_notebook("member_overview", {"lang": "en"}, tmp_path)
    assert run.status == "failed" and "stop here" in run.error
    assert "cwd" not in seen and seen["resources"] == {"metadata": {"path": str(tmp_path)}}
    assert chdirs == []


def test_an_unknown_region_is_one_sentence_before_any_notebook_runs(demo_store, tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(reports, "run_notebook", lambda *a, **k: ran.append(a))
    with pytest.raises(CrmkitError, match=r"unknown region 'Atlantis'; the stores' regions are: "):
        reports.run_reports(demo_store[0], "2026-06-30", ["member_overview"], {"region": "Atlantis"},
                            out=tmp_path, progress=False)
    assert ran == [] and not (tmp_path / "2026-06-30" / "zh" / "region-Atlantis").exists()
