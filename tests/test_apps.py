"""The manager apps without a browser: settings and scope, the snapshot they read, filters, masked export."""
from __future__ import annotations

import io
import shutil

import duckdb
import pandas as pd
import pytest

from crmkit import engine
from crmkit.apps import churn_warning as cw
from crmkit.apps import common, server
from crmkit.errors import CrmkitError
from crmkit.privacy import find_raw_phones

REGION = "华南"


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


@pytest.fixture
def no_env(monkeypatch):
    for name in common.ENV.values():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def load(db, region=None) -> cw.WarningData:
    s = common.AppSettings(db, engine.Scope.of(region=region), "zh")
    con, scope = common.open_app_store(s)
    try:
        return cw.load(con, common.newest_run(con, db), scope)
    finally:
        con.close()


def test_launcher_scope_wins_over_notebook_parameters(no_env, tmp_path):
    no_env.setenv(common.ENV["region"], REGION)
    no_env.setenv(common.ENV["db"], str(tmp_path / "crm.duckdb"))
    assert common.settings().scope == engine.Scope(region=REGION)
    assert common.settings(store_id="S017").scope == engine.Scope(region=REGION, store_id="S017")  # narrower
    with pytest.raises(CrmkitError, match="只能显示启动时指定的范围"):
        common.settings(region="华东")
    no_env.setenv(common.ENV["lang"], "en")
    with pytest.raises(CrmkitError, match="shows only the scope it was started with"):
        common.settings(region="华东")


def test_unknown_region_is_one_sentence(scored):
    s = common.AppSettings(scored[0], engine.Scope(region="火星"), "zh")
    with pytest.raises(CrmkitError, match="unknown region '火星'; the stores' regions are: .*华南"):
        common.open_app_store(s)


def test_no_snapshot_says_how_to_make_one(demo_store, tmp_path):
    db = tmp_path / "crm.duckdb"
    shutil.copy(demo_store[0], db)
    con = duckdb.connect(str(db), read_only=True)
    try:
        with pytest.raises(CrmkitError, match=r"has no score snapshot yet: run crmkit score .* --as-of DATE"):
            common.newest_run(con, db, "en")
    finally:
        con.close()


def test_scope_reads_only_its_members(scored):
    db, as_of = scored
    chain, south = load(db), load(db, REGION)
    with duckdb.connect(str(db), read_only=True) as con:
        inside = set(engine.scope.member_ids(con, as_of, engine.Scope(region=REGION)))
        stores = {r[0] for r in con.execute("SELECT store_id FROM stores WHERE region = ?", [REGION]).fetchall()}
    assert set(south.members["member_id"]) <= inside and set(south.members["store_id"]) <= stores
    assert len(south.members) < len(chain.members) and south.totals["members"] < chain.totals["members"]
    assert set(south.members["member_id"]) == set(chain.members.loc[chain.members["region"] == REGION, "member_id"])


def test_filters_narrow_and_sort(scored):
    data = load(scored[0])
    every = cw.select(data, cw.Filters(band="medium", value="all"))
    top = cw.select(data, cw.Filters())
    assert set(every["churn_band"]) == {"high", "medium"} and set(top["churn_band"]) == {"high"}
    assert 0 < len(top) < len(every)
    assert (top["net_spend"] >= cw.value_cut(data, "20")).all()
    assert top["clv"].is_monotonic_decreasing
    tier = top["tier"].iloc[0]
    assert set(cw.select(data, cw.Filters(tier=tier))["tier"]) == {tier}
    oldest = cw.select(data, cw.Filters(sort="last"))["last_purchase"]
    assert oldest.is_monotonic_increasing


def test_export_is_the_filtered_list_masked(scored):
    data = load(scored[0])
    chosen = cw.select(data, cw.Filters(band="medium", value="all"))
    text = cw.export_csv(chosen, "zh").decode("utf-8-sig")
    rows = pd.read_csv(io.StringIO(text), dtype=str)
    assert list(rows.columns) == cw.EXPORT_COLUMNS and len(rows) == len(chosen)
    assert find_raw_phones(text) == []
    assert rows["phone"].dropna().str.fullmatch(r"\d{3}\*+\d{4}").all()
    assert set(rows["suggested_action"]) == {cw.ACTIONS["high"][0], cw.ACTIONS["medium"][0]}
    link = cw.export_link(data, chosen, "en")
    assert link.startswith('<a class="crm-export" download="churn_warning_chain_') and "base64," in link


def test_page_widgets_change_the_kpis(scored):
    page = cw.ChurnWarningPage(load(scored[0]), "zh")
    before = page.kpis.value
    page.widgets["value"].value = "all"
    assert page.kpis.value != before and "crm-kpi" in page.kpis.value
    assert all(f"crm-filter-{n}" in w._dom_classes for n, w in page.widgets.items())
    page.lang_toggle.value = "en"
    assert "Members at risk" in page.kpis.value and page.widgets["value"].value == "all"


def test_errors_are_one_sentence(capsys):
    assert common.error_html(CrmkitError("no such store.")) == '<p class="crm-error">no such store.</p>'
    try:
        raise ValueError("bad value\nsecond line")
    except ValueError as err:
        shown = common.error_html(err, "en")
    assert "Internal error (ValueError: bad value)" in shown and "second line" not in shown
    assert "Traceback" in capsys.readouterr().err  # the details go to the server's log


def test_voila_runs_offline_stripped_and_local(tmp_path):
    argv = server.voila_argv(tmp_path, 8866, open_browser=False)
    assert {"--strip_sources=True", "--show_tracebacks=False", "--Voila.ip=127.0.0.1", "--no-browser",
            "--template=crmkit", "--preheat_kernel=True"} <= set(argv)
    root = server.template_folder(tmp_path / "t", ["churn_warning"], engine.Scope(region=REGION),
                                  tmp_path / "crm.duckdb", "zh")
    folder = root / "voila" / "templates" / "crmkit"
    landing = (folder / "landing.html").read_text(encoding="utf-8")
    assert "流失预警" in landing and REGION in landing and "crmkit CJK" in landing
    for name in ("page.html", "tree-lab.html", "tree.html", "landing.html"):  # the rendered app: the browser test
        assert "https://" not in (folder / name).read_text(encoding="utf-8"), name
