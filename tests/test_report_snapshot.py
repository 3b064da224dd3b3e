"""A report run reads one state of the store, and only --db / --as-of choose the store and the date."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

import crmkit
from crmkit import CrmkitError, reports
from crmkit.cli import main

AS_OF = "2026-06-30"


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "crm.duckdb"
    con = crmkit.connect(path)
    con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) VALUES "
                "('A', 'o1', '2026-01-02 10:00', 10.5), ('B', 'o2', '2026-03-04 11:30', 20)")
    con.close()
    return path


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], text=True, **kw)


def _fingerprint(path, read_only=True) -> str:
    con = crmkit.connect(path, read_only=read_only)
    try:
        return reports.data_fingerprint(con)
    finally:
        con.close()


@pytest.mark.parametrize("key, flag", [("db", "--db"), ("as_of", "--as-of")])
def test_param_cannot_override_db_or_as_of(store, tmp_path, capsys, key, flag):
    out = tmp_path / "r"
    code = main(["report", "--db", str(store), "--as-of", AS_OF, "--out", str(out),
                 "--param", f"{key}=/elsewhere/2020-01-01"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"crmkit report: --param {key} is not allowed, because the report folder and its "
                   f"manifest must describe the same store and date as the notebooks; use {flag}.")
    assert not out.exists()
    with pytest.raises(CrmkitError, match=f"use {flag}"):
        reports.plan_parameters(["member_overview"], str(store), AS_OF, {key: "x"})


def test_every_notebook_reads_one_snapshot_even_when_a_load_runs_meanwhile(store, tmp_path, monkeypatch):
    before = _fingerprint(store)
    seen = []

    def fake_notebook(name, parameters, out_dir):
        seen.append((name, parameters["db"], _fingerprint(parameters["db"])))
        if len(seen) == 1:  # a load commits between the two notebooks, in another process
            loader = _python(f"""
                import crmkit
                con = crmkit.connect({str(store)!r})
                con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) "
                            "VALUES ('C', 'o3', '2026-05-05 09:00', 99)")
                con.close()""")
            assert loader.wait() == 0
        return reports.NotebookRun(name, "ok", None, 0.0, parameters, None, None)

    monkeypatch.setattr(reports, "run_notebook", fake_notebook)
    monkeypatch.setattr(reports, "WORKERS", 1)  # one after the other, so that the load falls between them
    manifest = reports.run_reports(store, AS_OF, ["member_overview", "clv_churn"], {"lang": "en"},
                                   tmp_path / "r", progress=False)
    after = _fingerprint(store)
    assert after != before  # the load went through, while the run was reading its snapshot
    assert [fp for _, _, fp in seen] == [before, before] == [manifest["data_fingerprint"]] * 2
    snap = seen[0][1]
    assert snap == seen[1][1] != str(store.resolve())
    # the manifest names the store the user chose; the snapshot is gone, nothing is left beside the report
    assert manifest["parameters"]["db"] == str(store.resolve())
    assert all(n["parameters"]["db"] == str(store.resolve()) for n in manifest["notebooks"])
    assert not (tmp_path / "r" / snap).exists()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [AS_OF]


def test_a_report_while_a_load_writes_fails_in_one_sentence_and_writes_nothing(store, tmp_path):
    writer = _python(f"""
        import sys, crmkit
        con = crmkit.connect({str(store)!r})
        print("writing", flush=True)
        sys.stdin.read()
        con.close()""", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "writing"
        with pytest.raises(CrmkitError) as info:
            reports.run_reports(store, AS_OF, ["member_overview"], {}, tmp_path / "r", progress=False)
    finally:
        writer.communicate("")
    message = str(info.value)
    assert message == (f"{store.resolve()}: the member store is being written by another process "
                       f"(PID {writer.pid}), such as a running load; try again when it has finished.")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_load_while_the_snapshot_is_taken_fails_in_one_sentence(store, tmp_path):
    with crmkit.store.snapshot(store, tmp_path) as snap:
        # the snapshot's read-only hold is modelled by an open reader, as during the copy
        reader = crmkit.connect(store, read_only=True)
        try:
            loader = _python(f"""
                import sys, crmkit
                try:
                    crmkit.connect({str(store)!r})
                except crmkit.CrmkitError as err:
                    print(err)
                    sys.exit(2)""", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = loader.communicate()
        finally:
            reader.close()
        assert loader.returncode == 2 and "Traceback" not in err
        assert out.strip() == (f"{store}: the member store is in use by another process (PID {os.getpid()}), "
                               f"such as a running load or report; try again when it has finished.")
        assert _fingerprint(snap) == _fingerprint(store)
        assert stat.S_IMODE(os.stat(snap).st_mode) == 0o444  # read-only on disk
    assert not snap.exists()


def test_notebooks_run_side_by_side_and_the_manifest_lists_them_in_order(store, tmp_path, monkeypatch):
    import threading
    import time

    running, most = set(), []
    lock = threading.Lock()

    def fake_notebook(name, parameters, out_dir):
        with lock:
            running.add(name)
            most.append(len(running))
        time.sleep(0.3 if name == "member_overview" else 0.05)  # the first one ends last
        with lock:
            running.discard(name)
        return reports.NotebookRun(name, "ok", None, 0.0, parameters, None, None)

    monkeypatch.setattr(reports, "run_notebook", fake_notebook)
    monkeypatch.setattr(reports, "WORKERS", 2)
    names = ["member_overview", "clv_churn", "campaign_review", "monthly_report"]
    manifest = reports.run_reports(store, AS_OF, names, {}, tmp_path / "r", progress=False)
    assert max(most) == 2  # two kernels at a time, never more
    # campaign_review has no campaign to review: skipped with its reason, in its place in the list
    assert [(n["name"], n["status"]) for n in manifest["notebooks"]] == [
        ("member_overview", "ok"), ("clv_churn", "ok"), ("campaign_review", "skipped"), ("monthly_report", "ok")]
    assert manifest["notebooks"][2]["reason"] and manifest["status"] == "ok"
