"""The manager apps without a browser: settings and scope, the snapshot they read, filters, masked export."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from crmkit import engine
from crmkit.apps import churn_warning as cw
from crmkit.apps import member_360 as m3
from crmkit.apps import common, server
from crmkit.errors import CrmkitError
from crmkit.privacy import find_raw_phones

REGION = "华南"


@pytest.fixture(scope="module")
def scored(scored_demo):
    """The scored demo store (:mod:`fixtures_demo`): ``(db, as_of)``."""
    return scored_demo


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


def test_export_is_made_on_click_only(scored):
    page = cw.ChurnWarningPage(load(scored[0]), "en")
    assert "crm-export" in page.export.button._dom_classes and page.export.link.value == ""
    assert page.export.button.description.startswith("Export CSV (")
    page.export.button.click()
    link = page.export.link.value
    assert link.startswith('<a class="crm-download" download="churn_warning_chain_') and "base64," in link
    page.widgets["value"].value = "all"  # another list: the file made for the last one is withdrawn
    assert page.export.link.value == ""


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
    # a closed page's kernel is shut down once idle (Voila keeps every visited kernel otherwise)
    assert f"--MappingKernelManager.cull_idle_timeout={server.CULL_IDLE_SECONDS}" in argv
    root = server.template_folder(tmp_path / "t", ["churn_warning"], engine.Scope(region=REGION),
                                  tmp_path / "crm.duckdb", "zh")
    folder = root / "voila" / "templates" / "crmkit"
    landing = (folder / "landing.html").read_text(encoding="utf-8")
    assert "流失预警" in landing and REGION in landing and "crmkit CJK" in landing
    for name in ("page.html", "tree-lab.html", "tree.html", "landing.html"):  # the rendered app: the browser test
        assert "https://" not in (folder / name).read_text(encoding="utf-8"), name


# ------------------------------------------------------------------ member 360

def m360_context(db, region=None) -> m3.Context:
    s = common.AppSettings(db, engine.Scope.of(region=region), "zh")
    con, scope = common.open_app_store(s)
    try:
        return m3.Context(s, scope, common.newest_run(con, db))
    finally:
        con.close()


def m360_find(db, by, text, region=None, lang="zh"):
    ctx = m360_context(db, region)
    con, _ = common.open_app_store(ctx.settings)  # as the page opens it
    try:
        return m3.find(con, ctx.run.as_of, ctx.scope, by, text, lang)
    finally:
        con.close()


def a_shared_suffix(db, region=None) -> tuple[str, set[str], set[str]]:
    """A phone suffix two or more members of ``region``'s scope share (and, in a region, one outside it too),
    with the ids of all its members and of those in the scope."""
    with duckdb.connect(str(db), read_only=True) as con:
        as_of = common.newest_run(con, db).as_of
        inside = set(engine.scope.member_ids(con, as_of, engine.Scope.of(region=region)))
        by_suffix = {}
        for mid, phone in con.execute("SELECT member_id, phone FROM members WHERE phone IS NOT NULL").fetchall():
            by_suffix.setdefault(phone[-4:], set()).add(mid)
    for suffix, ids in sorted(by_suffix.items()):
        if len(ids & inside) >= 2 and (ids - inside or region is None):
            return suffix, ids, ids & inside
    raise AssertionError("the demo store has no phone suffix that two members of the scope share")


def test_member_360_lookup_by_id_and_card_is_masked(scored):
    db, _ = scored
    with duckdb.connect(str(db), read_only=True) as con:
        mid, phone, name, card = con.execute(
            "SELECT m.member_id, m.phone, m.name, i.source_id FROM members m JOIN member_identities i "
            "ON i.member_id = m.member_id AND i.source = 'pos' WHERE m.phone IS NOT NULL AND length(m.name) > 1 "
            "ORDER BY m.member_id LIMIT 1").fetchone()
    for by, text in (("id", mid), ("card", card)):
        found, n = m360_find(db, by, text)
        assert n == 1 and list(found["member_id"]) == [mid]
        assert found["phone"].iloc[0] == f"{phone[:3]}****{phone[-4:]}" and found["name"].iloc[0] != name
    ctx = m360_context(db)
    with duckdb.connect(str(db), read_only=True) as con:
        m = m3.profile(con, ctx.run, mid)
    page = m3.details_html(m, ctx.run, "zh") + "".join(common.kpi_html(*k) for k in m3.kpis(m, "zh"))
    assert find_raw_phones(page) == [] and phone not in page and name not in page
    assert f"{phone[:3]}****{phone[-4:]}" in page and "crm-kpi" in page


def test_member_360_suffix_lists_only_the_scopes_members(scored):
    suffix, every, inside = a_shared_suffix(scored[0], REGION)
    chain, n_chain = m360_find(scored[0], "phone", suffix)
    south, n_south = m360_find(scored[0], "phone", suffix, REGION)
    assert set(chain["member_id"]) == every and n_chain == len(every)
    assert set(south["member_id"]) == inside and n_south == len(inside) and set(south["region"]) == {REGION}
    assert south["phone"].str.fullmatch(rf"\d{{3}}\*+{suffix}").all()
    with pytest.raises(CrmkitError, match="4 digits"):
        m360_find(scored[0], "phone", "12a", lang="en")


def test_member_360_outside_the_scope_is_not_found(scored):
    db, as_of = scored
    with duckdb.connect(str(db), read_only=True) as con:
        inside = set(engine.scope.member_ids(con, as_of, engine.Scope(region=REGION)))
        outside = sorted(set(engine.scope.member_ids(con, as_of, engine.CHAIN)) - inside)[0]
    assert m360_find(db, "id", outside)[1] == 1  # there, for the whole chain
    with pytest.raises(CrmkitError, match=r"^No member with Member id '\w+' found in your scope \(.*华南\)\.$"):
        m360_find(db, "id", outside, REGION, "en")
    with pytest.raises(CrmkitError, match="在你的范围（区域 = 华南）内没有找到"):
        m360_find(db, "id", "no-such-member", REGION)


def test_member_360_page_looks_up_picks_and_switches_language(scored):
    suffix, every, _ = a_shared_suffix(scored[0])
    page = m3.Member360Page(m360_context(scored[0]), "zh")
    page.query.value = sorted(every)[0]  # by member id: one match, shown at once
    assert "crm-kpi" in page.kpis.value and page.pick.layout.display == "none"
    assert all(f"crm-filter-{n}" in w._dom_classes for n, w in
               (("by", page.by), ("query", page.query), ("pick", page.pick), ("lang", page.lang_toggle)))
    page.by.value = "phone"
    page.query.value = suffix
    assert page.kpis.value == "" and len(page.pick.options) == len(every) + 1  # several: listed, none shown
    assert find_raw_phones(page.found.value) == [] and "m360." not in page.found.value  # every label registered
    page.pick.value = sorted(every)[0]
    assert "crm-kpi" in page.kpis.value and sorted(every)[0] in page.details.value
    assert "m360." not in page.kpis.value + page.details.value
    page.lang_toggle.value = "en"
    assert "Tier" in page.kpis.value and "会员等级" not in page.kpis.value
    page.query.value = "0000x"
    assert "crm-error" in page.found.value and page.kpis.value == ""


def test_member_360_find_button_does_not_repeat_the_lookup(scored, monkeypatch):
    page = m3.Member360Page(m360_context(scored[0]), "en")
    calls = []
    monkeypatch.setattr(m3, "find", lambda *a: calls.append(a) or (_ for _ in ()).throw(CrmkitError("none.")))
    page.query.value = "M-1"  # typed: looked up
    page.find_button.click()  # the same text again: not
    page.by.value = "card"
    page.find_button.click()  # another kind of lookup: looked up
    assert [c[3:5] for c in calls] == [("id", "M-1"), ("card", "M-1")]
    assert page.query.placeholder == "Card number" and "none." in page.found.value


def test_member_360_exports_the_member_masked(scored):
    db = scored[0]
    with duckdb.connect(str(db), read_only=True) as con:
        mid, phone, name = con.execute("SELECT s.member_id, m.phone, m.name FROM member_scores s JOIN members m "
                                       "USING (member_id) WHERE m.phone IS NOT NULL AND m.name IS NOT NULL "
                                       "ORDER BY s.clv DESC LIMIT 1").fetchone()
    page = m3.Member360Page(m360_context(db), "en")
    assert page.export.box.layout.display == "none"  # nobody shown, nothing to export
    page.query.value = mid
    assert page.export.box.layout.display is None and "crm-export" in page.export.button._dom_classes
    page.export.button.click()
    assert page.export.link.value.startswith(f'<a class="crm-download" download="member_360_{mid}_')
    rows = m3.export_rows(page.member)
    text = m3.export_csv(page.member).decode("utf-8-sig")
    assert list(rows.columns) == ["section", "field", "value"] and {"profile", "status", "scores"} <= set(rows.section)
    assert phone not in text and name not in text and find_raw_phones(text) == []
    assert rows.set_index(["section", "field"]).loc[("member", "member_id"), "value"] == mid


def test_landing_page_keeps_braces_in_a_store_name_as_text():
    """The landing page is included by Voila's Jinja: a store file named with braces must stay text."""
    import jinja2

    from crmkit import engine
    from crmkit.apps import server

    _, body = server.landing_html(["churn_warning"], engine.Scope.of(), Path("crm{{ x }}{% y %}.duckdb"), "en")
    shown = jinja2.Template(body).render(base_url="/")
    assert "crm&#123;&#123; x &#125;&#125;&#123;% y %&#125;.duckdb" in shown
    assert 'href="/voila/render/churn_warning.ipynb"' in shown


def test_member_360_shows_gender_and_channel_in_the_page_language(scored):
    with duckdb.connect(str(scored[0]), read_only=True) as con:
        mid = con.execute("SELECT s.member_id FROM member_scores s JOIN members m USING (member_id) "
                          "WHERE m.gender = 'F' AND m.join_channel = 'miniapp' ORDER BY 1 LIMIT 1").fetchone()[0]
    page = m3.Member360Page(m360_context(scored[0]), "zh")
    page.query.value = mid
    assert page.member.profile["channel"] == "miniapp"
    zh = m3.profile_html(page.member, "zh")
    assert '<b class="crm-m360-gender">女</b>' in zh and '<b class="crm-m360-channel">小程序</b>' in zh
    en = m3.profile_html(page.member, "en")
    assert '<b class="crm-m360-gender">Female</b>' in en and '<b class="crm-m360-channel">Mini-program</b>' in en
