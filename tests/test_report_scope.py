"""A region report holds the region's numbers only (issue 11): no chain-wide figure appears outside a
section labelled as the chain's benchmark, and the region's own figures are there."""
from __future__ import annotations

import re

import pytest

import crmkit
from crmkit import dashboard, engine, kpis, reports, segments, tiers, viz
from crmkit.engine import Scope
from crmkit.scoring import score_members

AS_OF = "2026-06-30"
SCOPED = ("member_overview", "clv_churn", "monthly_report")


def sections(page: str) -> list[str]:
    """The report's text cut at every h2 / h3 heading (the title block first)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    page = re.sub(r'src="data:image[^"]*"', "", page)
    return re.split(r"(?=<h[23]>)", page)


def pattern(number: float) -> re.Pattern:
    """A figure as reports print it (thousands separators, rounded to the unit), not inside a longer number."""
    return re.compile(rf"(?<![\d,.]){re.escape(viz.fmt_int(round(number)))}(?![\d,])")


def distinctive(values) -> dict[str, float]:
    """Figures with a thousands separator that no threshold or round count could be mistaken for."""
    return {viz.fmt_int(round(v)): v for v in values if v >= 1000 and round(v) % 1000}


@pytest.fixture(scope="module")
def region_reports(demo_store, tmp_path_factory):
    db = demo_store[0]
    con = crmkit.connect(db, read_only=True)
    region = con.execute("""SELECT s.region FROM members m JOIN stores s ON s.store_id = m.join_store_id
                            GROUP BY 1 ORDER BY count(*) DESC LIMIT 1""").fetchone()[0]
    chain, mine = figures(con, Scope()), figures(con, Scope(region=region))
    con.close()
    out = tmp_path_factory.mktemp("region_reports")
    manifest = reports.run_reports(db, AS_OF, list(SCOPED), {"lang": "zh", "region": region}, out=out,
                                   progress=False)
    assert manifest["status"] == "ok", [(n["name"], n["error"]) for n in manifest["notebooks"]]
    folder = out / AS_OF / "zh" / f"region-{region}"  # beside the chain's reports, never over them
    pages = {n: (folder / f"{n}.html").read_text(encoding="utf-8") for n in SCOPED}
    return region, chain, mine, pages


def figures(con, scope: Scope) -> dict[str, list[float]]:
    """Figures of ``scope`` that its reports print: the data span, this month's KPIs, tiers,
    RFM segments, total CLV and churn bands."""
    span = dashboard.data_span(con, AS_OF, scope)
    k = kpis.compare(con, engine.Period("month", AS_OF), scope=scope).current
    hq = k[k["level"] == "hq"].iloc[0]
    scores = dashboard.scoped_scores(con, score_members(con, AS_OF), scope)
    return {
        "span": [span["members"], span["orders"]],
        "kpis": [hq[c] for c in ("members_end", "active_members", "orders", "net_sales", "gross_sales")],
        "tiers": list(tiers.tier_summary(con, AS_OF, scope=scope)["members"]),
        "rfm": list(segments.segment_summary(con, AS_OF, scope=scope)["members"]),
        "value": [scores.total_clv["clv"], scores.total_clv["clv_low"], scores.total_clv["clv_high"]],
        "bands": list(scores.band_counts()["members"]),
    }


def test_region_reports_show_no_chain_figure_outside_a_labelled_chain_benchmark(region_reports):
    region, chain, mine, pages = region_reports
    own = {s for values in mine.values() for s in distinctive(values)}
    watched = {s: v for values in chain.values() for s, v in distinctive(values).items() if s not in own}
    assert len(watched) >= 8, watched  # the check has teeth: many chain figures are watched
    for name, page in pages.items():
        assert f"区域 = {region}" in page, name  # the filter is stated in the title block
        for part in sections(page):
            if 'class="crmkit-chain"' in part:
                continue  # a section labelled as the chain's benchmark (model fits, backtests, campaigns)
            leaked = [s for s, v in watched.items() if pattern(v).search(part)]
            assert not leaked, (name, leaked, re.sub(r"<[^>]+>", " ", part)[:400])


def test_region_reports_show_the_regions_own_figures(region_reports):
    region, chain, mine, pages = region_reports
    header = sections(pages["member_overview"])[0]
    assert pattern(mine["span"][0]).search(header) and pattern(mine["span"][1]).search(header)
    assert pattern(mine["value"][0]).search(pages["clv_churn"])
    assert pattern(mine["value"][0]).search(pages["monthly_report"])
    assert mine["span"][0] < chain["span"][0] and mine["value"][0] < chain["value"][0]
    assert "本节为全公司数据" not in pages["member_overview"]  # every member section is the region's
    overview = pages["member_overview"]
    assert "全公司基准" not in overview
