"""Reports degrade, they do not vanish (issue 9, Deliver 3): the report side.

- a section that cannot be computed shows one sentence (in the report language) and the rest stands;
- a model with no interior maximum falls back to the NBD, labelled; P(alive) pinned near 1 is explained;
- a store without campaigns gets no campaign report (skipped with its reason) and exit 0;
- holdout and backtest windows fit the history, or step aside with one sentence;
- every notebook parameter is listed in ``crmkit report --help``, generated from the parameters cells;
- the data warnings (as-of outside the data, outlier orders) are shown at the top.

Stores are simulated here: Poisson buyers with gamma-distributed rates and no dropout (the NBD),
over a chosen number of days. History lengths are checked against a separate pandas computation.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest

import crmkit
from crmkit import CrmkitError, dashboard, reports
from crmkit.cli import main
from crmkit.clv import validation
from crmkit.errors import ModelError
from crmkit.rfm import calibration_holdout

AS_OF = dt.date(2026, 6, 30)


def poisson_buyers(members: int, days: int, *, seed: int = 1, as_of: dt.date = AS_OF) -> pd.DataFrame:
    """Members who never drop out: each buys as a Poisson process (rate ~ Gamma(2, 1/8) a week),
    from a first purchase uniform over the ``days`` up to ``as_of`` (the first member's opens them)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(as_of) + pd.Timedelta(hours=23)
    start = end - pd.Timedelta(days=days)
    rows = []
    for i in range(members):
        rate = rng.gamma(2.0, 1 / 8)
        t = start + pd.Timedelta(days=float(rng.uniform(0, days)) if i else 0.0)  # the first opens the history
        k = 0
        while t <= end:
            rows.append((f"M{i:05d}", f"M{i:05d}-{k}", t, round(float(rng.gamma(4, 40)), 2)))
            k += 1
            t += pd.Timedelta(days=float(rng.exponential(7 / rate)))
    return pd.DataFrame(rows, columns=["member_id", "order_id", "order_time", "amount"])


def store(tx: pd.DataFrame, path=":memory:"):
    con = crmkit.connect(path)
    con.execute("INSERT INTO transactions BY NAME SELECT * FROM tx")
    return con


class Shown:
    """Captures what the dashboard displays (IPython's display), as (html, metadata) pairs."""

    def __init__(self, monkeypatch):
        import IPython.display

        self.items = []
        monkeypatch.setattr(IPython.display, "display",
                            lambda obj, metadata=None, **kw: self.items.append((obj.data, metadata or {})))

    @property
    def html(self) -> str:
        return "\n".join(h for h, _ in self.items)


# ------------------------------------------------------------------ sections

def test_a_section_that_raises_a_crmkit_error_shows_one_sentence_and_the_rest_stands(monkeypatch):
    shown = Shown(monkeypatch)
    with dashboard.section("section.validation", "en") as part:
        raise ModelError("BG/NBD did not converge to a maximum of the likelihood.")
    assert not part.ok
    assert part.sentence == ("This section could not be computed: BG/NBD did not converge to a maximum of "
                             "the likelihood.")
    heading, (box, meta) = shown.items[0][0], shown.items[1]
    assert heading == "<h2>Model validation (holdout period)</h2>"
    assert box == f'<div class="crmkit-note">{part.sentence}</div>'
    assert meta == {"crmkit": {"section_skipped": {"section": "Model validation (holdout period)",
                                                   "sentence": part.sentence}}}
    with dashboard.section("section.value", "zh") as after:  # the next section runs as usual
        dashboard.show_note("fine")
    assert after.ok and "<p>fine</p>" in shown.html
    with dashboard.section("section.model", "zh") as part:
        raise CrmkitError("no member has a purchase up to 2024-03-31; nothing to score.")
    assert part.sentence == "本节无法计算：no member has a purchase up to 2024-03-31; nothing to score."


def test_a_bug_still_fails_the_report(monkeypatch):
    Shown(monkeypatch)
    with pytest.raises(KeyError), dashboard.section("section.model", "en"):
        raise KeyError("p_alive")


def test_a_section_that_needs_a_failed_one_says_so_in_the_report_language(monkeypatch):
    shown = Shown(monkeypatch)
    for lang, sentence in [
            ("en", "this section needs the results of “Model fit”, which could not be computed."),
            ("zh", "本节依赖“模型拟合”的结果，而该节无法计算。")]:
        with dashboard.section("section.value", lang) as part:
            dashboard.needs(None, "section.model", lang)
            dashboard.show_note("never shown")
        assert part.sentence == sentence
    assert "never shown" not in shown.html
    dashboard.needs(object(), "section.model")  # present: nothing happens


def test_sections_skipped_are_read_back_from_an_executed_notebook():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", {"text/html": "<p>x</p>"}),
                    nbformat.v4.new_output("display_data", {"text/html": "<div>s</div>"},
                                           metadata={"crmkit": {"section_skipped": {"section": "A",
                                                                                    "sentence": "s."}}})]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"), cell])
    assert reports.sections_skipped(nb) == [{"section": "A", "sentence": "s."}]


# ------------------------------------------------------------------ windows fit the history

@pytest.mark.parametrize("days, wanted, kind, expected", [
    (730, 182, "holdout", 182),     # a long history: the window as asked
    (195, 182, "holdout", 65),      # 6½ months: a third of the history
    (195, 180, "churn", 97),        # the churn check may take half
    (364, 182, "holdout", 121),     # one year
    (90, 60, "churn", 45),
])
def test_windows_shrink_to_fit_the_history(days, wanted, kind, expected):
    tx = poisson_buyers(300, days)
    con = store(tx)
    first = tx["order_time"].min().date()  # independent: pandas on the rows inserted
    history = (AS_OF - first).days
    share = 1 / 3 if kind == "holdout" else 1 / 2
    assert expected == min(wanted, int(history * share))
    window = validation.fit_window(con, AS_OF, wanted, kind=kind)
    assert (window.days, window.wanted, window.history_days) == (expected, wanted, history)
    assert window.start == AS_OF - dt.timedelta(days=expected)
    if expected == wanted:
        assert not window.shrunk and window.note("en") is None
    else:
        assert window.shrunk
        note = window.note("en")
        assert f"from {wanted} to {expected} days" in note and f"{history} days of history" in note
        assert note.count(".") == 1 and note.endswith(".")
        assert f"{wanted} 天缩短为 {expected} 天" in window.note("zh")


def test_a_window_that_cannot_fit_steps_aside_with_one_sentence():
    con = store(poisson_buyers(100, 60))
    history = validation.history_days(con, AS_OF)
    with pytest.raises(validation.WindowTooShort) as err:
        validation.fit_window(con, AS_OF, 182)
    assert err.value.sentences["en"] == (
        f"The history up to 2026-06-30 covers only {history} days, too short for this check: its holdout "
        f"period may take at most a third of it ({history // 3} days), less than the 28-day minimum.")
    assert err.value.sentences["zh"].startswith(f"截至 2026-06-30 的历史数据只有 {history} 天")
    assert dashboard.skipped_sentence(err.value, "zh") == err.value.sentences["zh"]
    assert validation.fit_window(con, AS_OF, 182, kind="churn").days == history // 2  # half still fits
    with pytest.raises(validation.WindowTooShort, match="no purchase up to 2020-01-01"):
        validation.fit_window(con, "2020-01-01", 182)


def test_returns_and_purchases_after_as_of_do_not_lengthen_the_history():
    tx = poisson_buyers(50, 100)
    early_return = pd.DataFrame([("M00000", "r", pd.Timestamp("2025-01-01"), -5.0)], columns=tx.columns)
    con = store(pd.concat([tx, early_return]))
    con.execute("UPDATE transactions SET txn_type = 'return' WHERE order_id = 'r'")
    assert validation.history_days(con, AS_OF) == (AS_OF - tx["order_time"].min().date()).days
    assert validation.history_days(con, tx["order_time"].min().date()) == 0


# ------------------------------------------------------------------ no interior maximum, P(alive) near 1

@pytest.fixture(scope="module")
def no_dropout_holdout():
    con = store(poisson_buyers(1500, 365, seed=3))
    yield calibration_holdout(con, AS_OF - dt.timedelta(days=121), AS_OF)
    con.close()


def test_compare_models_falls_back_to_the_nbd_labelled(no_dropout_holdout):
    table = validation.compare_models(no_dropout_holdout, lang="en")
    fell = [m for m in ("BG/NBD", "Pareto/NBD", "MBG/NBD") if "no interior maximum" in table.loc[m, "note"]]
    assert fell, table["note"]  # without dropout at least one of them has its best fit at the NBD limit
    for m in fell:
        assert np.isnan(table.loc[m, "mae"])
    nbd = table.loc["NBD"]
    assert nbd["note"].startswith("the model without dropout, used because " + ", ".join(fell))
    actual = no_dropout_holdout["frequency_holdout"].sum()
    assert nbd["actual_total"] == actual
    assert nbd["total_error"] == pytest.approx(nbd["expected_total"] / actual - 1)
    key = {"BG/NBD": "bgnbd", "Pareto/NBD": "pareto", "MBG/NBD": "mbgnbd"}[fell[0]]
    zh = validation.compare_models(no_dropout_holdout, [key], lang="zh")
    assert list(zh.index) == [fell[0], "NBD"] and zh.loc["NBD", "note"].startswith("不含流失的模型：" + fell[0])


def test_p_alive_near_one_is_explained():
    fitted = SimpleNamespace(fallback_from_=None)
    p = np.r_[np.full(60, 0.9996), np.full(40, 0.5)]
    note = dashboard.no_dropout_note(fitted, p, "en", churn_days=180)
    assert note.startswith("The median member's P(alive) is 99.96%: the model sees almost no dropout")
    assert "in the next 180 days" in note and "CLV assumes" in note and note.count(".") == 2  # "99.96" + end
    assert dashboard.no_dropout_note(fitted, p, "zh").startswith("会员活跃概率（P(alive)）的中位数为 99.96%")
    assert dashboard.no_dropout_note(fitted, np.full(100, 0.9), "en") is None
    # one-time buyers have P(alive) = 1 in BG/NBD by construction: the median is of repeat buyers
    once, again = np.ones(70), np.full(30, 0.6)
    frequency = np.r_[np.zeros(70), np.ones(30)]
    assert dashboard.no_dropout_note(fitted, np.r_[once, again], "en") is not None
    assert dashboard.no_dropout_note(fitted, np.r_[once, again], "en", frequency=frequency) is None
    # the no-dropout fallback: every P(alive) is 1
    nbd = SimpleNamespace(fallback_from_="bgnbd")
    assert "is 100%:" in dashboard.no_dropout_note(nbd, np.ones(5), "en")


def test_a_fallback_model_shows_its_note(monkeypatch):
    shown = Shown(monkeypatch)
    from crmkit.clv import fit_with_fallback

    tx = poisson_buyers(1500, 365, seed=3)
    con = store(tx)
    from crmkit.rfm import rfm_summary

    model = fit_with_fallback("pareto", rfm_summary(con, AS_OF))
    if model.fallback_from_ is None:
        pytest.skip("Pareto/NBD found an interior maximum on this simulation")
    assert dashboard.fit_note(model, "en") == model.fit_note_["en"]
    dashboard.show_model(model, "en")
    assert f'<div class="crmkit-note">{model.fit_note_["en"]}</div>'.replace("'", "&#x27;") in shown.html
    assert dashboard.fit_note(SimpleNamespace(fit_note_=None), "en") is None


# ------------------------------------------------------------------ no campaigns, no campaign report

def test_campaign_skip_reason(con):
    assert dashboard.campaign_skip_reason(con, AS_OF) == (
        "the store holds no campaigns, so there is no campaign to review.")
    assert dashboard.campaign_skip_reason(con, AS_OF, "C1") is None  # a named campaign is always run
    con.execute("""INSERT INTO campaigns (campaign_id, name, start, "end") VALUES
                   ('C1', 'summer', DATE '2026-07-01', DATE '2026-07-31')""")
    assert dashboard.campaign_skip_reason(con, AS_OF) == (
        "no campaign has ended by 2026-06-30 (the first ends 2026-07-31), so there is none to review yet; "
        "name one with --param campaign_id=… to review it before it ends.")
    assert dashboard.campaign_skip_reason(con, "2026-07-31") is None


def test_a_store_without_campaigns_skips_the_campaign_report_and_exits_0(tmp_path, capsys):
    db = tmp_path / "crm.duckdb"
    store(poisson_buyers(50, 200), db).close()
    code = main(["report", "campaign_review", "--db", str(db), "--as-of", str(AS_OF), "--out",
                 str(tmp_path / "r"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    first, second = out.splitlines()
    assert first.startswith(f"0 of 1 reports written to {tmp_path / 'r'}/2026-06-30/zh/chain/ in ")
    assert second == "campaign_review skipped: the store holds no campaigns, so there is no campaign to review."
    manifest = json.loads((tmp_path / "r" / "2026-06-30" / "zh" / "chain" / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    [entry] = manifest["notebooks"]
    assert (entry["status"], entry["reason"], entry["html"], entry["ipynb"]) == (
        "skipped", "the store holds no campaigns, so there is no campaign to review.", None, None)
    assert sorted(p.name for p in (tmp_path / "r" / "2026-06-30" / "zh" / "chain").iterdir()) == ["manifest.json"]


# ------------------------------------------------------------------ every parameter in --help

def test_every_notebook_parameter_is_listed_in_report_help(capsys):
    import papermill

    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    docs = reports.parameter_docs()
    for name in reports.NOTEBOOKS:
        declared = papermill.inspect_notebook(str(reports.notebook_path(name)))
        assert list(declared) == [k for k, d in docs.items() if name in d["notebooks"]], name
        for key, param in declared.items():
            assert docs[key]["defaults"][name] == param["default"], (name, key)
            assert param["help"], f"{name}: parameter {key} has no comment to explain it"
            if key not in ("db", "as_of"):  # those are --db and --as-of
                assert f"  {key}={docs[key]['default']}" in text and param["help"] in text, key
    assert "holdout_days=182" in text and "at most a third of the history" in text
    assert "model=\"bgnbd\"" in text and "every fit in the report" in text


def test_notebooks_are_commit_ready_with_plain_literal_parameters():
    for name in reports.NOTEBOOKS:
        nb = nbformat.read(reports.notebook_path(name), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        for node in ast.parse(code[0].source).body:
            assert isinstance(node, ast.Assign), name
            ast.literal_eval(node.value)  # plain literals only: papermill does not re-run arithmetic
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, name


# ------------------------------------------------------------------ warnings at the top

def test_data_warnings_at_the_top(monkeypatch):
    tx = poisson_buyers(100, 200)
    huge = pd.DataFrame([("M00001", "huge", pd.Timestamp("2026-06-01"), 1e12)], columns=tx.columns)
    con = store(pd.concat([tx, huge]))
    assert dashboard.data_warnings(con, AS_OF, "en") == []
    [outliers] = dashboard.data_warnings(con, AS_OF, "en", value=True)
    assert outliers.startswith("1 order (1 line) above ¥") and "of sales" in outliers
    [after] = dashboard.data_warnings(con, "2030-12-31", "en")
    assert after.startswith("as-of 2030-12-31 is after the last purchase in the store (2026-06-30)")
    shown = Shown(monkeypatch)
    dashboard.header(con, "report.clv_churn", "2030-12-31", "en", value=True)
    warnings = [h for h, _ in shown.items if 'class="crmkit-warning"' in h]
    assert len(warnings) == 2 and "after the last purchase" in warnings[0] and "of sales" in warnings[1]


# ------------------------------------------------------------------ a whole report on a thin store

def test_clv_report_on_two_months_without_dropout_degrades_and_exits_0(tmp_path, capsys):
    """Two months of buyers who never drop out: the model falls back to the NBD, P(alive) is explained,
    the validation steps aside in one sentence, the rest of the report stands."""
    db = tmp_path / "crm.duckdb"
    store(poisson_buyers(600, 60, seed=5), db).close()
    code = main(["report", "clv_churn", "--db", str(db), "--as-of", str(AS_OF), "--out", str(tmp_path / "r"),
                 "--quiet", "--param", "lang=en", "--param", "model=pareto"])
    out, err = capsys.readouterr()
    assert code == 0, err
    manifest = json.loads((tmp_path / "r" / "2026-06-30" / "en" / "chain" / "manifest.json").read_text())
    [entry] = manifest["notebooks"]
    assert entry["status"] == "ok" and entry["parameters"]["model"] == "pareto"
    skipped = {s["section"]: s["sentence"] for s in entry["sections_skipped"]}
    assert skipped["Model validation (holdout period)"].startswith("The history up to 2026-06-30 covers only")
    assert "section 'Model validation (holdout period)' stepped aside: The history up to" in out
    html = (tmp_path / "r" / "2026-06-30" / "en" / "chain" / "clv_churn.html").read_text(encoding="utf-8")
    assert "Traceback" not in html and 'class="crmkit-error"' not in html
    assert "Pareto/NBD has no interior maximum on these data" in html  # the fallback, labelled
    assert "NBD: 600 members" in html
    assert "the model sees almost no dropout in these data" in html
    for heading in ("Customer value pyramid", "Churn risk", "High-value members at risk (masked)"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count('class="crmkit-note"') >= 3
