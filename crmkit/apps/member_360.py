"""The member 360 app: one member's profile, found by member id, POS card number or the phone's last 4 digits.

Rules
-----
- **Lookup** (:func:`find`), engine-side: a member id is matched exactly; a
  card number is a POS card (``member_identities`` rows of source
  :data:`CARD_SOURCE`, ``source_id`` matched exactly); a phone suffix is
  exactly 4 digits matched on the end of ``members.phone``. Matches are
  listed by member id with phone and name masked, at most
  :data:`MAX_MATCHES` of them (the page says how many there are); with
  several, the manager picks one.
- **Scope where the data is read.** A candidate is kept only when it is a
  member of the launcher's scope (:func:`in_scope`: :func:`crmkit.engine.universe`
  of the scope, the home store and region as every report counts them, read
  over the candidates' own orders only). A member outside the scope, and an
  unknown one, is the same sentence, "not found in your scope", so the page
  does not tell which members exist elsewhere; a suffix lists in-scope
  members only.
- **The profile** is :func:`crmkit.member360.member_360` as of the newest
  score snapshot's as-of (:func:`crmkit.apps.common.newest_run`): tier, RFM
  segment, lifecycle stage, the snapshot's CLV with its interval, P(alive),
  churn risk and band, preferred categories, recent orders, coupons and
  points, contacts masked. Nothing is scored; without a snapshot the page
  says in one sentence how to make one. A member the snapshot did not score
  is shown without scores, with a sentence saying so.
- **Offline, in Chinese.** The web font (:func:`labels_text`) is subset once,
  when the page starts, to every label, store, city, region and product
  category, and the first character of every member's name (all a masked
  name shows), so a lookup never waits for a font.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pandas as pd

from .. import churn, engine, viz  # noqa: F401 - churn registers the band labels
from ..dashboard import tables
from ..errors import CrmkitError
from ..i18n import LANGS, labels, register, t
from ..member360 import Member360, member_360
from ..privacy import mask_frame
from . import common

#: The ways to look a member up, in the order the page offers them.
MODES = ("id", "card", "phone")
#: The ``member_identities`` source whose ids are membership card numbers.
CARD_SOURCE = "pos"
#: The most matches a lookup lists.
MAX_MATCHES = 50
#: How many recent orders and coupons the profile lists.
RECENT = 10

_SUFFIX = re.compile(r"^\d{4}$")

register({
    "m360.title": ("会员 360 查询", "Member 360 lookup"),
    "m360.f.by": ("查询方式", "Look up by"),
    "m360.f.query": ("查询内容", "Search"),
    "m360.f.pick": ("选择会员", "Member"),
    "m360.by.id": ("会员编号", "Member id"),
    "m360.by.card": ("会员卡号", "Card number"),
    "m360.by.phone": ("手机号后 4 位", "Last 4 digits of the phone"),
    "m360.find": ("查询", "Look up"),
    "m360.pick_one": ("— 请选择 —", "— pick one —"),
    "m360.hint": ("输入会员编号、会员卡号或手机号后 4 位，然后按回车或“查询”。",
                  "Type a member id, a card number or the phone's last 4 digits, then press Enter or Look up."),
    "m360.empty": ("请输入要查询的{by}。", "Type the {by} to look up."),
    "m360.bad_suffix": ("手机号后 4 位应为 4 个数字，而不是 {text!r}。",
                        "The phone's last 4 digits must be 4 digits, not {text!r}."),
    "m360.not_found": ("在你的范围（{scope}）内没有找到{by}为 {text!r} 的会员。",
                       "No member with {by} {text!r} found in your scope ({scope})."),
    "m360.matches": ("范围内有 {n} 位会员匹配，请选择一位。", "{n} members in your scope match; pick one."),
    "m360.matches_capped": ("范围内有 {n} 位会员匹配，下表列出按会员编号排序的前 {shown} 位；其他会员请按会员编号或卡号查询。",
                            "{n} members in your scope match; the first {shown} by member id are listed, "
                            "look the others up by member id or card number."),
    "m360.unscored": ("此会员不在评分快照中（快照之后才入会或没有购买），没有 CLV 与流失风险。",
                      "This member is not in the score snapshot (joined after it, or never bought), so has no "
                      "CLV or churn risk."),
    "m360.profile": ("会员档案", "Profile"),
    "m360.categories": ("偏好品类", "Preferred categories"),
    "m360.orders": ("最近订单（最多 {n} 笔）", "Recent orders (up to {n})"),
    "m360.coupons": ("优惠券（最近 {n} 张）", "Coupons (latest {n})"),
    "m360.none": ("无", "None"),
    "m360.as_of_note": ("档案按评分快照日 {as_of} 计算；CLV 为未来 {days} 天的折现毛利，区间为 {level} 预测区间。",
                        "The profile is as of the snapshot's date, {as_of}; CLV is the discounted gross margin "
                        "over the next {days} days, with its {level} prediction interval."),
    "m360.k.tier": ("会员等级", "Tier"),
    "m360.k.tier_note": ("距下一等级还差 {spend}", "{spend} to the next tier"),
    "m360.k.segment": ("RFM 分群", "RFM segment"),
    "m360.k.segment_note": ("R {r} · F {f} · M {m}", "R {r} · F {f} · M {m}"),
    "m360.k.stage": ("生命周期阶段", "Lifecycle stage"),
    "m360.k.stage_note": ("距上次购买 {days} 天", "{days} days since the last purchase"),
    "m360.k.clv": ("预测 CLV", "Predicted CLV"),
    "m360.k.clv_note": ("区间 {low} – {high}", "interval {low} – {high}"),
    "m360.k.alive": ("存活概率 P(alive)", "P(alive)"),
    "m360.k.risk": ("流失风险", "Churn risk"),
    "m360.k.spend": ("累计消费", "Spend to date"),
    "m360.k.spend_note": ("购买天数 {n}", "{n} purchase days"),
    "m360.k.points": ("积分余额", "Points balance"),
    "m360.k.points_note": ("累计获得 {earned} · 兑换 {redeemed} · 过期 {expired}",
                           "earned {earned} · redeemed {redeemed} · expired {expired}"),
    "m360.p.member_id": ("会员编号", "Member id"),
    "m360.p.name": ("姓名", "Name"),
    "m360.p.phone": ("手机号", "Phone"),
    "m360.p.gender": ("性别", "Gender"),
    "m360.p.birth_month": ("生日月份", "Birth month"),
    "m360.p.join_date": ("入会日期", "Joined"),
    "m360.p.home_store": ("归属门店", "Home store"),
    "m360.p.region": ("区域 / 城市", "Region / city"),
    "m360.p.channel": ("入会渠道", "Channel"),
    "m360.c.order_id": ("订单号", "Order"),
    "m360.c.day": ("日期", "Day"),
    "m360.c.store_id": ("门店", "Store"),
    "m360.c.channel": ("渠道", "Channel"),
    "m360.c.categories": ("品类", "Categories"),
    "m360.c.items": ("件数", "Items"),
    "m360.c.amount": ("实付（{money}）", "Paid ({money})"),
    "m360.c.discount": ("优惠（{money}）", "Discount ({money})"),
    "m360.c.purchase": ("计为购买", "Counts as a purchase"),
    "m360.c.category": ("品类", "Category"),
    "m360.c.spend": ("消费（{money}）", "Spend ({money})"),
    "m360.c.orders": ("订单数", "Orders"),
    "m360.c.share": ("占比", "Share"),
    "m360.c.coupon_id": ("券号", "Coupon"),
    "m360.c.campaign_id": ("活动", "Campaign"),
    "m360.c.value": ("面值（{money}）", "Value ({money})"),
    "m360.c.issued_at": ("发放日", "Issued"),
    "m360.c.redeemed_at": ("核销日", "Redeemed"),
    "m360.c.member_id": ("会员编号", "Member id"),
    "m360.c.phone": ("手机号", "Phone"),
    "m360.c.name": ("姓名", "Name"),
    "m360.c.region": ("区域", "Region"),
    "m360.yes": ("是", "yes"),
    "m360.gender.F": ("女", "Female"),
    "m360.gender.M": ("男", "Male"),
    "m360.export": ("导出此会员 CSV（已脱敏）", "Export this member as CSV (masked)"),
    "m360.no": ("否（已退货）", "no (returned)"),
})


# ------------------------------------------------------------------ lookup

def find(con, as_of, scope: engine.Scope, by: str, text: str, lang: str = "zh") -> tuple[pd.DataFrame, int]:
    """``(matches, n)``: the members of ``scope`` that ``text`` finds ``by`` id, card or phone suffix
    (:data:`MODES`), at most :data:`MAX_MATCHES` by member id with ``phone`` and ``name`` masked, and how many
    match in all; one sentence when the text is not a lookup or nothing in the scope matches."""
    if by not in MODES:
        raise CrmkitError(f"unknown lookup {by!r}; use one of {', '.join(MODES)}.")
    text = (text or "").strip()
    if not text:
        raise CrmkitError(t("m360.empty", lang).format(by=t(f"m360.by.{by}", lang)))
    if by == "phone" and not _SUFFIX.match(text):
        raise CrmkitError(t("m360.bad_suffix", lang).format(text=text))
    found = in_scope(con, as_of, scope, _candidates(con, by, text))
    if found.empty:
        raise CrmkitError(t("m360.not_found", lang).format(scope=common.scope_text(scope, lang),
                                                           by=t(f"m360.by.{by}", lang), text=text))
    shown = found.head(MAX_MATCHES)
    return shown.merge(_people(con, shown["member_id"]), on="member_id", how="left"), len(found)


def _candidates(con, by: str, text: str) -> list[str]:
    """The member ids ``text`` names ``by`` id, card or phone suffix, before the scope is applied."""
    if by == "id":
        return [text]
    if by == "card":
        sql = "SELECT DISTINCT member_id FROM member_identities WHERE source = $source AND source_id = $text"
        rows = con.execute(sql, {"source": CARD_SOURCE, "text": text}).fetchall()
    else:
        rows = con.execute("SELECT member_id FROM members WHERE phone LIKE '%' || $suffix",
                           {"suffix": text}).fetchall()
    return [str(r[0]) for r in rows]


def in_scope(con, as_of, scope: engine.Scope, ids: list[str]) -> pd.DataFrame:
    """``member_id, store_id, region`` of those of ``ids`` who are members of ``scope`` as of ``as_of``, by
    member id: :func:`crmkit.engine.universe` over the transactions of ``ids`` only (a member's home is
    decided by their own registration and orders, so this is the universe's answer for them)."""
    if not ids:
        return pd.DataFrame({"member_id": [], "store_id": [], "region": []}, dtype=object)
    among, params = engine.one_of("CAST(member_id AS VARCHAR)", list(dict.fromkeys(ids)), "m360_id")
    theirs = engine.Query({"m360_transactions": f"""
  SELECT * FROM transactions WHERE {among}"""}, params)
    q = (theirs + engine.member_activity(as_of, table="m360_transactions",
                                         columns=engine.table_columns(con, "transactions"))
         + engine.universe(as_of, scope))
    return q.df(con, f"""
SELECT CAST(member_id AS VARCHAR) AS member_id, store_id, region FROM universe
WHERE {among}
ORDER BY member_id""")


def _people(con, ids: pd.Series) -> pd.DataFrame:
    """Masked ``phone`` and ``name`` of the members ``ids``."""
    among, params = engine.one_of("member_id", [str(i) for i in ids], "id")
    return mask_frame(con.execute(f"SELECT member_id, phone, name FROM members WHERE {among}", params).df())



def profile(con, run, member_id: str) -> Member360:
    """The member's :func:`crmkit.member360.member_360` as of ``run``'s as-of (its scores, and R, F and M,
    are that snapshot's)."""
    return member_360(con, member_id, run.as_of, recent=RECENT, run=run)


# ------------------------------------------------------------------ rendering

def _fmt_date(v) -> str:
    return "–" if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")


def _label(column: str, value, lang: str) -> str:
    """A tier, RFM segment, lifecycle stage or churn band in ``lang``, as the reports write it."""
    if value is None or pd.isna(value):
        return "–"
    return tables.format_table(pd.DataFrame({column: [value]}), lang).iloc[0, 0]


def kpis(m: Member360, lang: str) -> list[tuple[str, str, str]]:
    """The KPI tiles of a profile: (label, value, note); the score tiles only when the snapshot scored the member."""
    st, pts = m.status, m.points
    out = [
        (t("m360.k.tier", lang), _label("tier", st["tier"], lang),
         t("m360.k.tier_note", lang).format(spend=viz.fmt_money(st["spend_to_next_tier"]))
         if st.get("spend_to_next_tier") else ""),
        (t("m360.k.segment", lang), _label("rfm_segment", st["rfm_segment"], lang),
         t("m360.k.segment_note", lang).format(r=st["rfm_r"], f=st["rfm_f"], m=st["rfm_m"])
         if st.get("rfm_r") is not None and not pd.isna(st["rfm_r"]) else ""),
        (t("m360.k.stage", lang), _label("lifecycle_stage", st["lifecycle_stage"], lang),
         t("m360.k.stage_note", lang).format(days=viz.fmt_int(st["days_since_last_purchase"]))
         if not pd.isna(st.get("days_since_last_purchase")) else ""),
    ]
    s = m.scores
    if s is not None:
        out += [
            (t("m360.k.clv", lang), viz.fmt_money(s["clv"]),
             t("m360.k.clv_note", lang).format(low=viz.fmt_money(s["clv_low"]), high=viz.fmt_money(s["clv_high"]))),
            (t("m360.k.alive", lang), viz.fmt_pct(s["p_alive"]), ""),
            (t("m360.k.risk", lang), viz.fmt_pct(s["churn_risk"]), _label("churn_band", s["churn_band"], lang)),
        ]
    out += [
        (t("m360.k.spend", lang), viz.fmt_money(st["net_spend"]),
         t("m360.k.spend_note", lang).format(n=viz.fmt_int(st["purchase_days"]))),
        (t("m360.k.points", lang), viz.fmt_int(pts.get("balance", 0)),
         t("m360.k.points_note", lang).format(**{k: viz.fmt_int(pts.get(k, 0))
                                                 for k in ("earned", "redeemed", "expired")})),
    ]
    return out


def profile_html(m: Member360, lang: str) -> str:
    """The profile's facts (contacts masked), each with its label."""
    p = m.profile
    store = " ".join(str(v) for v in (p.get("home_store_id"), p.get("home_store_name")) if v) or "–"
    where = " / ".join(str(v) for v in (p.get("region"), p.get("city")) if v) or "–"
    facts = [("member_id", m.member_id), ("name", p.get("name") or "–"), ("phone", p.get("phone") or "–"),
             ("gender", _coded("m360.gender.", p.get("gender"), lang)), ("birth_month", p.get("birth_month") or "–"),
             ("join_date", _fmt_date(p.get("join_date"))), ("home_store", store), ("region", where),
             ("channel", _coded("", p.get("channel"), lang))]
    items = "".join(f'<div class="crm-m360-fact"><span class="crm-kpi-label">{html.escape(t(f"m360.p.{k}", lang))}'
                    f'</span> <b class="crm-m360-{k}">{html.escape(str(v))}</b></div>' for k, v in facts)
    return (f'<h3>{html.escape(t("m360.profile", lang))}</h3>'
            f'<div class="crm-m360-profile" style="display:flex;flex-wrap:wrap;gap:4px 22px">{items}</div>')


#: The tables of a profile: attribute, heading key, columns and how each is formatted.
_TABLES = (
    ("preferred_categories", "m360.categories",
     (("category", "text"), ("spend", "money"), ("orders", "count"), ("share", "pct"))),
    ("recent_orders", "m360.orders",
     (("order_id", "text"), ("day", "date"), ("store_id", "text"), ("channel", "channel"), ("categories", "text"),
      ("items", "count"), ("amount", "money2"), ("discount", "money2"), ("purchase", "yes"))),
    ("coupons", "m360.coupons",
     (("coupon_id", "text"), ("campaign_id", "text"), ("value", "money"), ("issued_at", "date"),
      ("redeemed_at", "date"))),
)


def _coded(prefix: str, code, lang: str) -> str:
    """A code (gender F / M, channel pos / online / miniapp) in ``lang`` when it has a label, else as it is."""
    if code is None or pd.isna(code):
        return "–"
    key = f"{prefix}{code}"
    return t(key, lang) if key in labels() else str(code)


def _cell(kind: str, v, lang: str) -> str:
    if kind == "channel":
        return _coded("", v, lang)
    if kind == "date":
        return _fmt_date(v)
    if kind == "yes":
        return "–" if v is None or pd.isna(v) else t("m360.yes" if v else "m360.no", lang)
    return tables.FORMATS[kind](v)


def _table(df: pd.DataFrame, columns, lang: str) -> str:
    """``df``'s ``columns`` (name, kind) formatted, headers in ``lang``; one word when it is empty."""
    if df.empty:
        return f"<p>{html.escape(t('m360.none', lang))}</p>"
    heads = [t(f"m360.c.{c}", lang) for c, _ in columns]
    shown = pd.DataFrame({h: [_cell(kind, v, lang) for v in df[c].astype(object)]
                          for h, (c, kind) in zip(heads, columns)}, dtype=object)
    return f'<div class="crm-table">{shown.to_html(index=False, border=0, escape=True)}</div>'


def details_html(m: Member360, run, lang: str) -> str:
    """The profile, the note on its date and CLV, and its tables."""
    p = run.parameters
    note = t("m360.as_of_note", lang).format(as_of=run.as_of, days=viz.fmt_int(p.get("horizon_days", 365)),
                                             level=viz.fmt_pct(p.get("interval", 0.9), 0))
    parts = [profile_html(m, lang), f'<p class="crm-foot">{html.escape(note)}</p>']
    if m.scores is None:
        parts.append(f'<p class="crm-note">{html.escape(t("m360.unscored", lang))}</p>')
    for attr, key, columns in _TABLES:
        parts.append(f'<h3>{html.escape(t(key, lang).format(n=RECENT))}</h3>')
        parts.append(_table(getattr(m, attr), columns, lang))
    return "".join(parts)


def matches_html(matches: pd.DataFrame, n: int, lang: str) -> str:
    """The masked list of several matches and how many there are."""
    key = "m360.matches_capped" if n > len(matches) else "m360.matches"
    sentence = t(key, lang).format(n=viz.fmt_int(n), shown=viz.fmt_int(len(matches)))
    columns = (("member_id", "text"), ("phone", "text"), ("name", "text"), ("store_id", "text"), ("region", "text"))
    return f'<p class="crm-sub">{html.escape(sentence)}</p>{_table(matches, columns, lang)}'


def match_label(row) -> str:
    """A match as the picker lists it: ``M00000015 136****9381 毛** S020`` (masked)."""
    return " ".join(str(v) for v in (row["member_id"], row.get("phone"), row.get("name"), row.get("store_id"))
                    if v is not None and not pd.isna(v))


#: The label keys the page shows, by prefix.
_LABEL_PREFIXES = ("m360.", "app.", "col.", "churn.", "snapshot.", "report.", "tier.", "rfm.", "lifecycle.",
                   "stage.")


def labels_text(con, run) -> str:
    """Every text the page can show in either language, for the web-font subset: the labels, the tier names (of
    the default rules, which :func:`crmkit.member360.member_360` applies) and the snapshot's tiers, segments and
    stages, the stores, cities, regions and product categories, and the first character of every member's name
    (a masked name shows no more)."""
    from ..schema import CHANNELS
    from ..tiers import TierRules

    TierRules.load()  # registers the tier names
    parts = [t(k, lang) for k in labels() if k.startswith(_LABEL_PREFIXES) or k in CHANNELS for lang in LANGS]
    columns = ("tier", "rfm_segment", "lifecycle_stage")
    for row in con.execute(f"SELECT DISTINCT {', '.join(columns)} FROM member_scores WHERE as_of = $d",
                           {"d": run.as_of}).fetchall():
        parts += [_label(c, v, lang) for c, v in zip(columns, row) for lang in LANGS]
    for (value,) in con.execute("SELECT DISTINCT concat_ws(' ', name, city, region) FROM stores").fetchall():
        parts.append(str(value))
    if "category" in engine.table_columns(con, "products"):
        parts += [str(r[0]) for r in con.execute("SELECT DISTINCT category FROM products").fetchall()]
    parts += [str(r[0]) for r in con.execute("SELECT DISTINCT left(name, 1) FROM members").fetchall()]
    return "".join(parts) + "中文 English"


# ------------------------------------------------------------------ the page

def export_rows(m: Member360) -> pd.DataFrame:
    """The member's page as ``section, field, value`` rows (:meth:`crmkit.member360.Member360.to_dict`, masked):
    one row per profile, status, score and points field, and per field of each listed order, coupon and
    preferred category (``field`` ``<n>.<column>``, n from 1)."""
    rows = [("member", "member_id", m.member_id), ("member", "as_of", m.as_of)]
    for section, value in m.to_dict().items():
        if isinstance(value, dict):
            rows += [(section, k, v) for k, v in value.items()]
        elif isinstance(value, list):
            rows += [(section, f"{i}.{k}", v) for i, record in enumerate(value, 1) for k, v in record.items()]
    return pd.DataFrame(rows, columns=["section", "field", "value"])


def export_csv(m: Member360) -> bytes:
    """:func:`export_rows` as CSV (UTF-8 with a byte-order mark, for Excel)."""
    return export_rows(m).to_csv(index=False).encode("utf-8-sig")


def export_name(m: Member360) -> str:
    """``member_360_<member id>_<as_of>.csv``."""
    safe = re.sub(r"[^0-9A-Za-z_-]", "_", m.member_id)
    return f"member_360_{safe}_{m.as_of}.csv"


@dataclass
class Context:
    """What a lookup needs: the settings (the store is opened for each lookup), the checked scope, the snapshot."""

    settings: common.AppSettings
    scope: engine.Scope
    run: object
    stale: str | None = None


class Member360Page(common.Page):
    """The widgets of the page: a lookup reads the store for the members it names, and nothing else."""

    def __init__(self, ctx: Context, lang: str = "zh"):
        import ipywidgets as w

        self.ctx, self.lang = ctx, lang
        self.matches, self.total, self.member, self.message = None, 0, None, None
        self.asked = None  # the (by, text) last looked up
        self.lang_toggle = self.language_toggle(lang)
        self.by = w.Dropdown(options=self._by_options(), value=MODES[0])
        self.query = w.Text(continuous_update=False)
        self.find_button = w.Button()
        self.pick = w.Dropdown(options=[("", "")], value="")
        self.header, self.found, self.kpis, self.details = w.HTML(), w.HTML(), w.HTML(), w.HTML()
        self.export = common.Export(lambda: (export_name(self.member), export_csv(self.member)), lang)
        for name, widget in (("by", self.by), ("query", self.query), ("pick", self.pick)):
            widget.add_class(f"crm-filter-{name}")
        self.find_button.add_class("crm-find")
        for widget in (self.by, self.query, self.pick):
            widget.layout = w.Layout(width="340px")
            widget.style = {"description_width": "90px"}
        self.pick.layout.display = "none"
        self._quiet = False
        self._relabel()
        self.query.observe(lambda _c: self.lookup(), names="value")
        self.find_button.on_click(self._clicked)
        self.by.observe(self._by_changed, names="value")
        self.pick.observe(self._picked, names="value")
        self.box = w.VBox([self.lang_toggle, self.header,
                           w.HBox([self.by, self.query, self.find_button], layout=w.Layout(flex_flow="row wrap")),
                           self.found, self.pick, self.kpis, self.export.box, self.details])
        self.box.add_class("crm-app")
        self.render()

    def _by_options(self) -> list[tuple[str, str]]:
        return [(t(f"m360.by.{b}", self.lang), b) for b in MODES]

    def _pick_options(self) -> list[tuple[str, str]]:
        rows = [] if self.matches is None else [(match_label(r), r["member_id"]) for _, r in self.matches.iterrows()]
        return [(t("m360.pick_one", self.lang), "")] + rows

    def _relabel(self) -> None:
        """Set every widget's description and options in the page's language, keeping their values."""
        self._quiet = True
        try:
            by, picked = self.by.value, self.pick.value
            self.by.options, self.by.value = self._by_options(), by
            self.pick.options = self._pick_options()
            self.pick.value = picked if picked in {v for _, v in self.pick.options} else ""
            self.by.description = t("m360.f.by", self.lang)
            self.query.description = t("m360.f.query", self.lang)
            self.pick.description = t("m360.f.pick", self.lang)
            self.query.placeholder = t(f"m360.by.{by}", self.lang)
            self.find_button.description = t("m360.find", self.lang)
        finally:
            self._quiet = False

    def lookup(self) -> None:
        """Find the members the query names in the scope; one is shown, several are listed to pick from."""
        if self._quiet:
            return
        self.matches, self.total, self.member, self.message = None, 0, None, None
        self.asked = (self.by.value, self.query.value)
        try:
            con, _ = common.open_app_store(self.ctx.settings)
            try:
                matches, self.total = find(con, self.ctx.run.as_of, self.ctx.scope, self.by.value, self.query.value,
                                           self.lang)
                if len(matches) == 1:
                    self.member = profile(con, self.ctx.run, matches["member_id"].iloc[0])
                else:
                    self.matches = matches
            finally:
                con.close()
        except Exception as err:  # noqa: BLE001 - the page says one sentence, the log has the rest
            self.message = common.error_html(err, self.lang)
        self._relabel()
        self.pick.layout.display = None if self.matches is not None else "none"
        self.render()

    def _clicked(self, _button) -> None:
        """Look up, unless typing the text already did (leaving the box sends it before the click)."""
        if (self.by.value, self.query.value) != self.asked:
            self.lookup()

    def _by_changed(self, change) -> None:
        if not self._quiet:
            self.query.placeholder = t(f"m360.by.{change['new']}", self.lang)

    def _picked(self, change) -> None:
        if self._quiet or not change["new"]:
            return
        try:
            con, _ = common.open_app_store(self.ctx.settings)
            try:
                self.member, self.message = profile(con, self.ctx.run, change["new"]), None
            finally:
                con.close()
        except Exception as err:  # noqa: BLE001
            self.member, self.message = None, common.error_html(err, self.lang)
        self.render()

    def render(self) -> None:
        """Redraw the header, the matches, the KPI tiles and the profile in the page's language (no store access)."""
        lang, ctx = self.lang, self.ctx
        try:
            sub = [f"{t('app.scope', lang)}: {common.scope_text(ctx.scope, lang)}",
                   f"{t('report.as_of', lang)}: {ctx.run.as_of}",
                   f"{t('app.snapshot', lang)}: {ctx.run.caption(lang)}"]
            self.header.value = (f"<h2>{html.escape(t('m360.title', lang))}</h2>"
                                 + "".join(f'<p class="crm-sub">{html.escape(s)}</p>' for s in sub)
                                 + (f'<p class="crm-note">{html.escape(ctx.stale)}</p>' if ctx.stale else "")
                                 + f'<p class="crm-foot">{html.escape(t("m360.hint", lang))} '
                                 + f'{html.escape(t("app.masked", lang))}</p>')
            self.found.value = (self.message or "") + (matches_html(self.matches, self.total, lang)
                                                       if self.matches is not None else "")
            m = self.member
            self.kpis.value = ("" if m is None else '<div class="crm-kpis">'
                               + "".join(common.kpi_html(*k) for k in kpis(m, lang)) + "</div>")
            self.details.value = "" if m is None else details_html(m, ctx.run, lang)
            self.export.lang = lang
            self.export.relabel(t("m360.export", lang))
            self.export.box.layout.display = "none" if m is None else None
        except Exception as err:  # noqa: BLE001 - the page says one sentence, the log has the rest
            self.details.value = common.error_html(err, lang)


def show(db=None, region=None, store_id=None, lang=None) -> Member360Page | None:
    """Display the member 360 page for the settings of ``crmkit app`` (or these parameters);
    one sentence instead when it cannot be shown (unknown scope, no snapshot)."""
    def build(con, s, scope, run):
        ctx = Context(s, scope, run, common.stale_note(con, run, s.db, s.lang))
        return labels_text(con, run), lambda page_lang: Member360Page(ctx, page_lang)

    return common.show_page(build, db, region, store_id, lang)
