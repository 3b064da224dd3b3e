"""Score snapshots: `crmkit score` records a run, reports and audiences reuse it and say which one."""
from __future__ import annotations

import inspect
import json
import shutil

import pandas as pd
import pytest

import crmkit
from crmkit import audience, dashboard, reports, scoring
from crmkit.cli import main
from crmkit.engine import snapshots
from test_score import AS_OF, background

REPORT_AS_OF = "2026-06-30"


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "crm.duckdb"
    con = crmkit.connect(db)
    tx = background()
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM tx")
    con.close()
    return db


def _runs(db) -> list[snapshots.ScoreRun]:
    con = crmkit.connect(db, read_only=True)
    try:
        return snapshots.runs(con)
    finally:
        con.close()


def _score_fails(*args, **kwargs):
    raise AssertionError("scored again although a snapshot matched")


def test_settings_defaults_are_those_of_score_members():
    signature = inspect.signature(scoring.score_members).parameters
    assert snapshots.DEFAULTS == {k: signature[k].default for k in snapshots.PARAMETERS}
    assert snapshots.settings(margin=0.3, horizon_days=365.0) == snapshots.settings()


def test_score_writes_a_run_that_reads_back_as_the_scores(store, capsys):
    assert main(["score", str(store), "--as-of", AS_OF, "--margin", "0.25", "--quiet"]) == 0
    [run] = _runs(store)
    capsys.readouterr()
    assert main(["score", str(store), "--as-of", AS_OF, "--margin", "0.25", "--quiet", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["score_run"]  # the date's run replaced, its id stated
    assert again["run_id"] == 2 and again["data_fingerprint"] == run.data_fingerprint
    [run] = _runs(store)
    assert run.run_id == 2
    assert (str(run.as_of), run.model, run.crmkit_version) == (AS_OF, "bgnbd", crmkit.__version__)
    assert run.parameters == snapshots.settings(margin=0.25)
    assert run.settings_fingerprint.startswith("sha256:") and run.data_fingerprint.startswith("sha256:")
    con = crmkit.connect(store, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM member_scores").fetchall()[0][0] == run.members
        assert snapshots.latest_run(con, AS_OF, {"margin": 0.25}) == run
        assert snapshots.latest_run(con, AS_OF) == run  # any settings
        assert snapshots.latest_run(con, AS_OF, {}) is None  # the default margin is another setting
        assert snapshots.latest_run(con, "2024-05-31", {"margin": 0.25}) is None
        stored = snapshots.read_scores(con, run)
        fresh = scoring.score_members(con, AS_OF, margin=0.25)
    finally:
        con.close()
    pd.testing.assert_frame_equal(stored.table, fresh.table, check_dtype=False)
    # the engine sums in parallel, so two scorings of the same data may differ in the last bits
    pd.testing.assert_series_equal(stored.total_clv, fresh.total_clv, rtol=1e-9)
    assert stored.churn.method_ == fresh.churn.method_ and stored.band_note("en") == fresh.band_note("en")
    assert stored.model.as_dict() == fresh.model.as_dict()


def test_one_run_per_date_and_a_changed_setting_or_new_data_makes_a_new_run(store, monkeypatch):
    assert main(["score", str(store), "--as-of", AS_OF, "--quiet"]) == 0
    assert main(["score", str(store), "--as-of", "2024-05-31", "--quiet"]) == 0
    assert main(["score", str(store), "--as-of", AS_OF, "--churn-days", "90", "--quiet"]) == 0
    runs = _runs(store)
    assert [(r.run_id, str(r.as_of), r.parameters["churn_days"]) for r in runs] == [
        (3, AS_OF, 90), (2, "2024-05-31", 180)]  # the run of AS_OF was replaced, with its rows
    con = crmkit.connect(store)
    try:
        assert snapshots.latest_run(con, AS_OF, {"churn_days": 90}) == runs[0]
        assert snapshots.latest_run(con, AS_OF, {}) is None
        _, run = snapshots.scores_for(con, AS_OF, {})  # no match: scored and recorded
        assert run.run_id == 4 and snapshots.latest_run(con, AS_OF, {}) == run
        monkeypatch.setattr(scoring, "score_members", _score_fails)
        assert snapshots.scores_for(con, AS_OF, {})[1] == run  # reused
        con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) "
                    "VALUES ('NEW', 'n1', '2024-06-10 10:00', 42)")
        assert snapshots.latest_run(con, AS_OF, {}) is None  # new data: the run no longer matches
        assert snapshots.latest_run(con, "2024-05-31") is None
        counts = dict(con.execute("SELECT as_of::VARCHAR, count(*) FROM member_scores GROUP BY ALL").fetchall())
        assert counts[AS_OF] == run.members
    finally:
        con.close()


def test_a_report_reuses_the_snapshot_and_the_manifest_says_which(store, tmp_path, monkeypatch):
    assert main(["score", str(store), "--as-of", AS_OF, "--quiet"]) == 0
    [run] = _runs(store)
    seen = {}

    def fake_notebook(name, parameters, out_dir):
        con = crmkit.connect(parameters["db"], read_only=True)
        try:
            seen[name] = dashboard.score_run(con, AS_OF, **{k: v for k, v in parameters.items()
                                                             if k in snapshots.PARAMETERS})
        finally:
            con.close()
        return reports.NotebookRun(name, "ok", None, 0.0, parameters, None, None)

    monkeypatch.setattr(reports, "run_notebook", fake_notebook)
    monkeypatch.setattr(scoring, "score_members", _score_fails)
    manifest = reports.run_reports(store, AS_OF, ["member_overview", "clv_churn", "monthly_report"], {},
                                   tmp_path / "r", progress=False)
    by_name = {n["name"]: n for n in manifest["notebooks"]}
    assert by_name["member_overview"]["scores"] is None
    for name in ("clv_churn", "monthly_report"):
        assert by_name[name]["scores"] == {"source": "store", **run.to_dict()}
        assert seen[name] == run
    written = json.loads((reports.report_dir(tmp_path / "r", AS_OF) / "manifest.json").read_text())
    assert written["notebooks"][1]["scores"]["run_id"] == 1


def test_without_a_snapshot_a_report_scores_once_in_its_copy_and_leaves_the_store_alone(store, tmp_path,
                                                                                      monkeypatch):
    calls = []
    score = scoring.score_members

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return score(*args, **kwargs)

    monkeypatch.setattr(scoring, "score_members", counted)
    monkeypatch.setattr(reports, "run_notebook", lambda name, parameters, out_dir: reports.NotebookRun(
        name, "ok", None, 0.0, parameters, None, None))
    manifest = reports.run_reports(store, AS_OF, ["clv_churn", "monthly_report"], {"margin": 0.4},
                                   tmp_path / "r", progress=False)
    assert len(calls) == 1 and calls[0]["margin"] == 0.4
    for n in manifest["notebooks"]:
        assert n["scores"]["source"] == "report" and n["scores"]["parameters"]["margin"] == 0.4
    assert _runs(store) == []  # the store is read, never written


def test_the_report_header_states_the_run(store):
    assert main(["score", str(store), "--as-of", AS_OF, "--quiet"]) == 0
    [run] = _runs(store)
    assert run.caption("en") == f"scores of run 1, computed {run.created_at:%Y-%m-%d %H:%M} UTC, model bgnbd"
    span = {"members": 1, "orders": 1, "first": None, "last": None}
    text = dashboard.header_html("CLV", span, AS_OF, "en", scores=dashboard.scores_line(run, "en"))
    assert "scores of run 1, computed" in text
    assert "computed for this report" in dashboard.header_html("CLV", span, AS_OF, "en",
                                                               scores=dashboard.scores_line(None, "en"))
    assert "Scores" not in dashboard.header_html("CLV", span, AS_OF, "en")


def test_audiences_read_the_snapshot_and_score_only_without_one(store, tmp_path, monkeypatch):
    rule = {"field": "churn_band", "op": "==", "value": "high"}
    con = crmkit.connect(store)
    try:
        n = audience.preview(con, rule, AS_OF)  # no scores yet: scored and recorded
        [run] = snapshots.runs(con)
        assert run.parameters == snapshots.settings() and n > 0
    finally:
        con.close()
    monkeypatch.setattr(scoring, "score_members", _score_fails)
    con = crmkit.connect(store, read_only=True)
    try:
        assert audience.preview(con, rule, AS_OF) == n  # read from the snapshot
    finally:
        con.close()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(store, copy)
    con = crmkit.connect(copy)
    try:
        con.execute("INSERT INTO transactions (member_id, order_id, order_time, amount) "
                    "VALUES ('NEW', 'n1', '2024-06-10 10:00', 42)")
        with pytest.raises(AssertionError, match="scored again"):  # new data: the snapshot no longer matches
            audience.preview(con, rule, AS_OF)
    finally:
        con.close()


@pytest.mark.slow
def test_a_report_notebook_states_the_snapshot_in_its_header(demo_store, tmp_path):
    db = tmp_path / "crm.duckdb"
    shutil.copyfile(demo_store[0], db)
    assert main(["score", str(db), "--as-of", REPORT_AS_OF, "--quiet"]) == 0
    [run] = _runs(db)
    manifest = reports.run_reports(db, REPORT_AS_OF, ["clv_churn"], {"lang": "en"}, tmp_path / "r",
                                   progress=False)
    [nb] = manifest["notebooks"]
    assert nb["status"] == "ok" and nb["scores"]["run_id"] == run.run_id == 1
    html = (reports.report_dir(tmp_path / "r", REPORT_AS_OF, {"lang": "en"}) / "clv_churn.html").read_text(
        encoding="utf-8")
    assert run.caption("en") in html


def test_a_store_without_runs_or_with_an_unreadable_result_is_scored(store):
    con = crmkit.connect(store)
    con.execute("DROP TABLE score_runs")  # a store made before snapshots
    con.close()
    con = crmkit.connect(store, read_only=True)
    try:
        assert snapshots.latest_run(con, AS_OF) is None and snapshots.runs(con) == []
    finally:
        con.close()
    con = crmkit.connect(store)  # a writer's schema check adds the table
    try:
        _, run = snapshots.scores_for(con, AS_OF)
        con.execute("UPDATE score_runs SET result = 'not a pickle'::BLOB")
        assert snapshots.read_scores(con, run) is None
        scores, again = snapshots.scores_for(con, AS_OF)  # scored again and recorded anew
        assert again.run_id == run.run_id + 1 and len(scores.table) == again.members
    finally:
        con.close()


class _Payload:
    """A result that would run a command when unpickled by plain pickle."""

    def __reduce__(self):
        import os
        return os.system, ("echo unpickled > pwned.txt",)


def test_a_stored_result_that_names_other_code_is_refused_with_a_warning(store, tmp_path, monkeypatch):
    import pickle

    monkeypatch.chdir(tmp_path)
    con = crmkit.connect(store)
    try:
        _, run = snapshots.scores_for(con, AS_OF)
        assert snapshots.read_scores(con, run) is not None  # the real result: classes of crmkit, numpy, pandas
        con.execute("UPDATE score_runs SET result = ?", [pickle.dumps(_Payload())])
        with pytest.warns(UserWarning, match=r"names posix\.system, which no score result holds"):
            assert snapshots.read_scores(con, run) is None
    finally:
        con.close()
    assert not (tmp_path / "pwned.txt").exists()
