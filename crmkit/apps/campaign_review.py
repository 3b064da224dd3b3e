"""The campaign-review app: did a campaign pay in the manager's scope, by how much, and where?

What the page shows
-------------------
- **A campaign** of the store (newest start first, with its name and dates),
  measured against its randomized control group by
  :func:`crmkit.campaigns.measure` over the assigned members of the app's
  scope (their home the day before the campaign started; the rules,
  including the scope's share of the fixed cost, are in
  :mod:`crmkit.campaigns.measurement`). The verdict (pays / does not pay /
  cannot tell yet) and its sentence are the report's
  (:func:`crmkit.dashboard.campaign.verdict_html`).
- **KPI tiles**: the conversion lift (percentage points), incremental revenue,
  incremental gross margin and ROI, each with its 95% interval, and the
  treatment and control group sizes.
- **The funnel** of the treatment group (:func:`crmkit.campaigns.funnel`):
  targeted → contacted → redeemed a coupon → purchased, with each stage's
  share of the targeted members, and the coupon redemption rate.
- **Conversion lift by level** (tier, RFM segment or home store, as of the day
  before the start; :func:`crmkit.campaigns.lift_by`): each level's groups,
  rates, lift with its 95% and Bonferroni-adjusted intervals; a level with
  fewer than :data:`crmkit.campaigns.MIN_LEVEL` members in a group shows no
  lift and says "too few members".
- **The export** is the shown breakdown as CSV (:func:`export_csv`), made
  when its button is pressed (:class:`crmkit.apps.common.Export`): levels
  only, no member rows, so there is nothing personal to mask.

Speed: the page reads everything once, when the kernel starts (:func:`load`:
every campaign with members in the scope, measured, with its three
breakdowns; the day before each start's activity computed once,
:func:`crmkit.lifecycle.snapshot`, and the members' profile read once for
the three), and keeps it per (campaign, level), so
a filter change never goes back to the store. What it read is kept in
crmkit's cache (:mod:`crmkit.cache`), keyed by the store's data
fingerprint, crmkit's code, the scope and the campaigns: the next kernel
(Voila starts one after each visit) reads it back in a moment instead of
measuring again, and new data or new code measure afresh. The numbers are measured on
the store's data as the kernel starts (a campaign is not scored); like
every app, the page still needs a score snapshot to open
(:func:`crmkit.apps.common.show_page`). Campaigns without a member
in the scope are not listed; with none at all, or no campaign in the store,
the page is one sentence.
"""
from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field

import pandas as pd

from .. import campaigns, engine, lifecycle, viz
from ..campaigns.queries import UNKNOWN, campaign_info, outcome_query, pre_campaign_day, profile_query
from ..dashboard import tables
from ..dashboard.campaign import verdict_html
from ..engine.store import CatalogError
from ..errors import CrmkitError
from ..i18n import LANGS, register, t
from ..segments import segment_label
from ..tiers import tier_label
from . import common

#: The breakdowns the level picker offers: filter value -> the attribute of :func:`crmkit.campaigns.lift_by`.
LEVELS = {"tier": "tier", "segment": "segment", "store": "store"}
#: The export's columns after ``campaign_id`` and ``level``: those of :func:`crmkit.campaigns.lift_by`.
EXPORT_COLUMNS = ["n_treatment", "n_control", "treatment", "control", "lift", "lift_low", "lift_high", "lift_rel",
                  "lift_rel_low", "lift_rel_high", "adj_low", "adj_high", "too_small"]

register({
    "cr.title": ("活动复盘", "Campaign review"),
    "cr.f.campaign": ("活动", "Campaign"),
    "cr.f.level": ("分组", "Breakdown"),
    "cr.level.tier": ("会员等级", "Tier"),
    "cr.level.segment": ("RFM 分群", "RFM segment"),
    "cr.level.store": ("门店", "Store"),
    "cr.kpi.conversion": ("转化率提升", "Conversion lift"),
    "cr.kpi.conversion_note": ("活动组 {t} 对比对照组 {c}", "treatment {t} vs control {c}"),
    "cr.kpi.revenue": ("增量销售额", "Incremental revenue"),
    "cr.kpi.margin": ("增量毛利", "Incremental gross margin"),
    "cr.kpi.margin_note": ("成本 {cost}", "cost {cost}"),
    "cr.kpi.roi": ("ROI", "ROI"),
    "cr.kpi.roi_note": ("（增量毛利 − 成本）/ 成本", "(incremental margin − cost) / cost"),
    "cr.kpi.groups": ("活动组 / 对照组", "Treatment / control"),
    "cr.kpi.groups_note": ("人；已触达 {n}", "members; {n} contacted"),
    "cr.interval": ("方括号内为 95% 置信区间。", "Brackets hold the 95% interval."),
    "cr.scope_rule": ("只计入家乡门店在本范围内的活动会员（以活动开始前一天为准）；固定成本按活动组人数分摊。",
                      "Only assigned members whose home store is in this scope (the day before the start) "
                      "count; the fixed cost is shared by treatment members."),
    "cr.funnel": ("活动组漏斗", "Treatment funnel"),
    "cr.stage": ("阶段", "Stage"),
    "cr.members": ("人数", "Members"),
    "cr.share": ("占目标会员", "Share of targeted"),
    "cr.redemption": ("券使用率 {rate} {ci}（发放 {issued} 张，核销 {redeemed} 张）",
                      "Coupon redemption rate {rate} {ci} ({issued} issued, {redeemed} redeemed)"),
    "cr.lift_title": ("按{level}的转化率提升", "Conversion lift by {level}"),
    "cr.col.level": ("分组", "Level"),
    "cr.col.n_treatment": ("活动组人数", "Treatment members"),
    "cr.col.n_control": ("对照组人数", "Control members"),
    "cr.col.treatment": ("活动组转化率", "Treatment conversion"),
    "cr.col.control": ("对照组转化率", "Control conversion"),
    "cr.col.lift": ("提升（95% 区间）", "Lift (95% interval)"),
    "cr.col.adjusted": ("Bonferroni 校正区间", "Bonferroni-adjusted interval"),
    "cr.col.note": ("备注", "Note"),
    "cr.too_small": ("样本过少（任一组不足 {n} 人）", "Too few members (under {n} in a group)"),
    "cr.unknown": ("（未知）", "(unknown)"),
    "cr.export": ("导出 CSV（{n} 行，按{level}，无会员明细）", "Export CSV ({n} rows by {level}, no member rows)"),
    "cr.dates": ("{start} 至 {end}", "{start} to {end}"),
    "cr.not_listed": ("本范围内没有会员的活动未列出：{ids}。", "Campaigns without a member in this scope are not "
                      "listed: {ids}."),
    "cr.no_campaigns": ("{db} 里还没有活动：载入 campaigns 与 campaign_assignments 后再刷新本页。",
                        "{db} holds no campaign yet: load campaigns and campaign_assignments, then reload this page."),
    "cr.no_members": ("本范围（{scope}）内没有任何活动会员，没有可复盘的活动。",
                      "No campaign has a member in this scope ({scope}), so there is no campaign to review."),
})


@dataclass
class CampaignData:
    """What the page shows, read once: per campaign its result and breakdowns in the scope."""

    scope: engine.Scope
    #: campaign_id -> (name, start, end), newest start first
    campaigns: dict[str, tuple[str | None, dt.date, dt.date]]
    #: (campaign_id, lang) -> ``CampaignResult.to_dict(lang)`` (the JSON of ``crmkit campaign-roi --json``)
    results: dict[tuple[str, str], dict]
    #: (campaign_id, level) -> :func:`crmkit.campaigns.lift_by` of conversion
    lifts: dict[tuple[str, str], pd.DataFrame]
    store_names: dict = field(default_factory=dict)
    #: campaigns of the store without a member in the scope
    not_listed: list[str] = field(default_factory=list)

    def result(self, cid: str, lang: str) -> dict:
        """``CampaignResult.to_dict(lang)`` of ``cid``."""
        return self.results[cid, lang]


def store_campaigns(con, db, lang: str = "zh") -> dict[str, tuple[str | None, dt.date, dt.date]]:
    """The store's campaigns, newest start first (then id): id -> (name, start, end); one sentence when none."""
    try:
        rows = con.execute('SELECT campaign_id, name, "start", "end" FROM campaigns '
                           'ORDER BY "start" DESC, campaign_id DESC').fetchall()
    except CatalogError:  # a store without the campaigns table
        rows = []
    if not rows:
        raise CrmkitError(t("cr.no_campaigns", lang).format(db=db))
    return {str(cid): (name, engine.as_date(start), engine.as_date(end)) for cid, name, start, end in rows}


def load(con, scope: engine.Scope, db="", *, lang: str = "zh") -> CampaignData:
    """Every campaign of the store with members in ``scope``, measured there, with its breakdowns by
    :data:`LEVELS` (from crmkit's cache when this data, code, scope and campaigns were measured before);
    one sentence when the store has no campaign or the scope no campaign member."""
    from .. import cache
    from ..engine.snapshots import code_fingerprint, data_fingerprint

    listed = store_campaigns(con, db, lang)
    key = cache.digest("campaign_review", data_fingerprint(con), _campaign_facts(con), code_fingerprint(),
                       scope.fields(), sorted(listed.items()))
    kept = cache.read_json(CACHE_KIND, key)
    if kept is not None:
        results = {(c, lg): r for c, lg, r in kept["results"]}
        lifts = {(c, level): cache.json_frame(f) for c, level, f in kept["lifts"]}
        not_listed = kept["not_listed"]
    else:
        results, lifts, not_listed = _measure_all(con, scope, listed)
        cache.write_json(CACHE_KIND, key, {
            "results": [[c, lg, r] for (c, lg), r in results.items()],
            "lifts": [[c, level, cache.frame_json(f)] for (c, level), f in lifts.items()], "not_listed": not_listed})
    if not results:
        raise CrmkitError(t("cr.no_members", lang).format(scope=common.scope_text(scope, lang)))
    names = dict(con.execute("SELECT store_id, name FROM stores").fetchall())
    shown = {c for c, _ in results}
    return CampaignData(scope, {c: v for c, v in listed.items() if c in shown}, results, lifts, names, not_listed)


def _campaign_facts(con) -> list:
    """What the store's data fingerprint does not cover of a campaign's inputs (tables changed without a
    load): the campaigns, assignments and coupons, counted and summed, in one pass over each."""
    return [list(con.execute(sql).fetchone()) for sql in (
        'SELECT count(*), min("start"), max("end"), sum(attribution_days), sum(fixed_cost), sum(cost_per_contact), '
        "sum(coupon_value), sum(margin_rate) FROM campaigns",
        'SELECT count(*), count(DISTINCT member_id), count(contacted_at), count(CASE WHEN "group" = \'control\' '
        "THEN 1 END) FROM campaign_assignments",
        "SELECT count(*), count(redeemed_at), sum(value) FROM coupons")]


#: crmkit's cache folder for the measured campaigns (:func:`load`).
CACHE_KIND = "campaign_review"


def _measure_all(con, scope: engine.Scope, listed: dict) -> tuple[dict, dict, list[str]]:
    """``(results, lifts, not_listed)`` of :class:`CampaignData`, measured on the store."""
    results, lifts, not_listed = {}, {}, []
    for cid in listed:
        info = campaign_info(con, cid)
        with lifecycle.snapshot(con, pre_campaign_day(info)):
            result = campaigns.measure(con, cid, scope=scope)
            if result.n_treatment + result.n_control == 0:
                not_listed.append(cid)
                continue
            results.update({(cid, lg): result.to_dict(lg) for lg in LANGS})
            attrs = level_attributes(con, info, scope)
            for level, by in LEVELS.items():
                lifts[cid, level] = campaigns.lift_by(con, cid, by, scope=scope, attributes=attrs)
    return results, lifts, not_listed


def level_attributes(con, info: dict, scope: engine.Scope) -> pd.DataFrame:
    """The :data:`LEVELS` attributes of the scope's assigned members, as :func:`crmkit.campaigns.lift_by`
    takes them by itself (the member profile the day before the start), read in one query for all three."""
    q = outcome_query(info, scope) + profile_query(pre_campaign_day(info))
    return q.df(con, f"""
SELECT o.member_id, {", ".join(f"p.{by}" for by in LEVELS.values())}
FROM cmp_outcomes o LEFT JOIN cmp_profile p ON p.member_id = o.member_id ORDER BY o.member_id""")


# ------------------------------------------------------------------ formatting

def _num(x) -> float:
    return math.nan if x is None else float(x)


def _signed(fmt):
    return lambda x: ("+" if _num(x) > 0 else "") + fmt(_num(x))


def _interval(estimate, ci, fmt) -> str:
    """``+¥1,200 [+¥800, +¥1,600]``, or ``–`` when there is no estimate."""
    return "–" if not math.isfinite(_num(estimate)) else viz.fmt_interval(_num(estimate), ci, _signed(fmt))


def campaign_label(data: CampaignData, cid: str, lang: str) -> str:
    """``C2603 会员日微信活动（2026-03-08 至 2026-03-21）``."""
    name, start, end = data.campaigns[cid]
    dates = t("cr.dates", lang).format(start=start, end=end)
    head = f"{cid} {name}" if name else cid
    return f"{head}（{dates}）" if lang == "zh" else f"{head} ({dates})"


def kpis(data: CampaignData, cid: str, lang: str) -> list[tuple[str, str, str]]:
    """The KPI tiles: (label, value, note)."""
    r = data.result(cid, lang)
    conv = r["conversion"]
    return [
        (t("cr.kpi.conversion", lang), _interval(conv["lift"], conv["lift_ci"], viz.fmt_pp),
         t("cr.kpi.conversion_note", lang).format(t=viz.fmt_pct(_num(conv["treatment"])),
                                                  c=viz.fmt_pct(_num(conv["control"])))),
        (t("cr.kpi.revenue", lang), _interval(r["incremental_revenue"], r["incremental_revenue_ci"], viz.fmt_money),
         ""),
        (t("cr.kpi.margin", lang), _interval(r["incremental_margin"], r["incremental_margin_ci"], viz.fmt_money),
         t("cr.kpi.margin_note", lang).format(cost=viz.fmt_money(_num(r["cost"])))),
        (t("cr.kpi.roi", lang), _interval(r["roi"], r["roi_ci"], viz.fmt_pct), t("cr.kpi.roi_note", lang)),
        (t("cr.kpi.groups", lang), f"{viz.fmt_int(r['n_treatment'])} / {viz.fmt_int(r['n_control'])}",
         t("cr.kpi.groups_note", lang).format(n=viz.fmt_int(r["n_contacted"]))),
    ]


def funnel_html(data: CampaignData, cid: str, lang: str) -> str:
    """The treatment funnel as a table (stage, members, share of targeted) and the coupon redemption rate."""
    f = data.result(cid, lang).get("funnel")
    if not f:
        return ""
    rows = pd.DataFrame({
        t("cr.stage", lang): [t(f"campaign.{s['stage']}", lang) for s in f["stages"]],
        t("cr.members", lang): [viz.fmt_int(s["members"]) for s in f["stages"]],
        t("cr.share", lang): [viz.fmt_pct(_num(s["share_of_targeted"])) for s in f["stages"]],
    })
    ci = f["redemption_rate_ci"]
    rate = t("cr.redemption", lang).format(
        rate=viz.fmt_pct(_num(f["redemption_rate"])), ci=f"[{viz.fmt_pct(ci[0])}, {viz.fmt_pct(ci[1])}]" if ci else "",
        issued=viz.fmt_int(f["coupons_issued"]), redeemed=viz.fmt_int(f["coupons_redeemed"]))
    return (f"<h3>{html.escape(t('cr.funnel', lang))}</h3>"
            f'<div class="crm-table crm-funnel">{tables.table_html(rows, lang)}</div>'
            f'<p class="crm-foot">{html.escape(rate)}</p>')


def level_label(data: CampaignData, level: str, value: str, lang: str) -> str:
    """A level as a manager reads it: the tier's or segment's label, ``S001 店名`` for a store."""
    if value == UNKNOWN:
        return t("cr.unknown", lang)
    if level == "tier":
        return tier_label(value, lang)
    if level == "segment":
        return segment_label(value, lang)
    return f"{value} {data.store_names.get(value) or ''}".strip()


def lift_table(data: CampaignData, cid: str, level: str, lang: str) -> pd.DataFrame:
    """The breakdown as shown: one row per level, every value formatted text."""
    lift = data.lifts[cid, level]
    pp, pct = _signed(viz.fmt_pp), viz.fmt_pct
    small = t("cr.too_small", lang).format(n=campaigns.MIN_LEVEL)
    rows = {
        "cr.col.level": [level_label(data, level, v, lang) for v in lift[LEVELS[level]]],
        "cr.col.n_treatment": [viz.fmt_int(n) for n in lift["n_treatment"]],
        "cr.col.n_control": [viz.fmt_int(n) for n in lift["n_control"]],
        "cr.col.treatment": [pct(v) for v in lift["treatment"]],
        "cr.col.control": [pct(v) for v in lift["control"]],
        "cr.col.lift": ["–" if s else viz.fmt_interval(e, (lo, hi), pp)
                        for s, e, lo, hi in zip(lift["too_small"], lift["lift"], lift["lift_low"], lift["lift_high"])],
        "cr.col.adjusted": ["–" if s else f"[{pp(lo)}, {pp(hi)}]"
                            for s, lo, hi in zip(lift["too_small"], lift["adj_low"], lift["adj_high"])],
        "cr.col.note": [small if s else "" for s in lift["too_small"]],
    }
    return pd.DataFrame({t(k, lang): v for k, v in rows.items()}, dtype=object)


def lift_html(data: CampaignData, cid: str, level: str, lang: str) -> str:
    """The breakdown's heading, table and, when two levels or more are compared, the caution about
    comparing many."""
    lift = data.lifts[cid, level]
    title = t("cr.lift_title", lang).format(level=t(f"cr.level.{level}", lang))
    caution = lift.attrs["caution"][lang] if (~lift["too_small"]).sum() >= 2 else ""
    return (f'<div class="crm-lift"><h3>{html.escape(title)}</h3>'
            f'<div class="crm-table">{tables.table_html(lift_table(data, cid, level, lang), lang)}</div>'
            + (f'<p class="crm-foot">{html.escape(caution)}</p>' if caution else "") + "</div>")


def export_csv(data: CampaignData, cid: str, level: str) -> bytes:
    """The breakdown as CSV (UTF-8 with a byte-order mark, for Excel): campaign_id, level, then
    :data:`EXPORT_COLUMNS` unformatted; levels only, no member rows."""
    lift = data.lifts[cid, level]
    out = pd.DataFrame({"campaign_id": cid, "level": lift[LEVELS[level]].astype(str)})
    return pd.concat([out, lift[EXPORT_COLUMNS]], axis=1).to_csv(index=False).encode("utf-8-sig")


def export_name(data: CampaignData, cid: str, level: str) -> str:
    """``campaign_review_<campaign>_<level>_<scope>.csv``."""
    return f"campaign_review_{cid}_{level}_{data.scope.slug()}.csv"


def export_label(data: CampaignData, cid: str, level: str, lang: str) -> str:
    """The export button's text: how many rows, by what."""
    return t("cr.export", lang).format(n=viz.fmt_int(len(data.lifts[cid, level])), level=t(f"cr.level.{level}", lang))


def title_html(data: CampaignData, lang: str) -> str:
    """The page's title and scope."""
    scope = f"{t('app.scope', lang)}: {common.scope_text(data.scope, lang)}"
    return f'<h2>{html.escape(t("cr.title", lang))}</h2><p class="crm-sub">{html.escape(scope)}</p>'


def header_html(data: CampaignData, cid: str, lang: str) -> str:
    """The campaign's window, groups and design, the verdict and its sentence, and the page's rules."""
    from ..dashboard.campaign import campaign_header_html

    r = data.result(cid, lang)
    notes = [t("cr.interval", lang)] + ([] if data.scope.chain else [t("cr.scope_rule", lang)])
    if data.not_listed:
        notes.append(t("cr.not_listed", lang).format(ids=", ".join(data.not_listed)))
    return (campaign_header_html(r, lang) + f'<div class="crm-verdict">{verdict_html(r, lang)}</div>'
            + "".join(f'<p class="crm-foot">{html.escape(n)}</p>' for n in notes))


#: The label keys the page shows, by prefix.
_LABEL_PREFIXES = ("cr.", "app.", "campaign.", "report.", "rfm.", "tier.")


def labels_text(data: CampaignData) -> str:
    """Every text the page can show in either language, for the web-font subset."""
    from ..i18n import labels

    parts = [t(k, lang) for k in labels() if k.startswith(_LABEL_PREFIXES) for lang in LANGS]
    for cid in data.campaigns:
        for lang in LANGS:
            parts.append(title_html(data, lang) + campaign_label(data, cid, lang) + header_html(data, cid, lang))
            parts += [lift_html(data, cid, level, lang) for level in LEVELS]
    parts += [str(v) for v in data.store_names.values()] + [str(data.scope.region or ""), "中文 English"]
    return "".join(parts)


# ------------------------------------------------------------------ the page

class CampaignReviewPage(common.Page):
    """The widgets of the page; a filter change redraws from :class:`CampaignData` (no store access)."""

    def __init__(self, data: CampaignData, lang: str = "zh"):
        import ipywidgets as w

        self.data, self.lang = data, lang
        self.campaign, self.level = next(iter(data.campaigns)), next(iter(LEVELS))
        self.lang_toggle = self.language_toggle(lang)
        self.widgets = {"campaign": w.Dropdown(), "level": w.Dropdown()}
        self.title, self.header, self.kpis, self.funnel, self.table = (w.HTML() for _ in range(5))
        self.export = common.Export(self._export, lang)
        for name, widget in self.widgets.items():
            widget.add_class(f"crm-filter-{name}")
            widget.layout = w.Layout(width="520px" if name == "campaign" else "300px")
            widget.style = {"description_width": "90px"}
        self._relabel()
        for widget in self.widgets.values():
            widget.observe(self._changed, names="value")
        self.box = w.VBox([self.lang_toggle, self.title,
                           w.HBox(list(self.widgets.values()), layout=w.Layout(flex_flow="row wrap")),
                           self.header, self.kpis, self.funnel, self.export.box, self.table])
        self.box.add_class("crm-app")
        self.render()

    def _options(self, name: str) -> list[tuple[str, str]]:
        if name == "campaign":
            return [(campaign_label(self.data, cid, self.lang), cid) for cid in self.data.campaigns]
        return [(t(f"cr.level.{level}", self.lang), level) for level in LEVELS]

    def _relabel(self) -> None:
        """Set every widget's description and options in the page's language, keeping their values."""
        self._quiet = True
        try:
            for name, widget in self.widgets.items():
                widget.options = self._options(name)
                widget.value = getattr(self, name)
                widget.description = t(f"cr.f.{name}", self.lang)
        finally:
            self._quiet = False

    def _changed(self, _change) -> None:
        if self._quiet:
            return
        self.campaign, self.level = self.widgets["campaign"].value, self.widgets["level"].value
        self.render()

    def _export(self) -> tuple[str, bytes]:
        return export_name(self.data, self.campaign, self.level), export_csv(self.data, self.campaign, self.level)

    def render(self) -> None:
        """Redraw the title, header, KPI tiles, funnel, export and breakdown for the current campaign and level."""
        lang, data, cid, level = self.lang, self.data, self.campaign, self.level
        try:
            self.title.value = title_html(data, lang)
            self.header.value = header_html(data, cid, lang)
            self.kpis.value = ('<div class="crm-kpis">' + "".join(common.kpi_html(*k) for k in kpis(data, cid, lang))
                               + "</div>")
            self.funnel.value = funnel_html(data, cid, lang)
            self.export.lang = lang
            self.export.relabel(export_label(data, cid, level, lang))
            self.table.value = lift_html(data, cid, level, lang)
        except Exception as err:  # noqa: BLE001 - the page says one sentence, the log has the rest
            self.table.value = common.error_html(err, lang)


def show(db=None, region=None, store_id=None, lang=None) -> CampaignReviewPage | None:
    """Display the campaign-review page for the settings of ``crmkit app`` (or these parameters);
    one sentence instead when it cannot be shown (unknown scope, no snapshot, no campaign in the scope)."""
    def build(con, s, scope, run):
        data = load(con, scope, s.db, lang=s.lang)
        return labels_text(data), lambda page_lang: CampaignReviewPage(data, page_lang)

    return common.show_page(build, db, region, store_id, lang)
