"""What every manager app shares: its settings, the score snapshot it reads, its page style and errors.

Rules
-----
- **Settings.** ``crmkit app`` passes the store, the scope and the language
  to the kernels in environment variables (:data:`ENV`); an app notebook's
  parameters cell names them too, for a notebook opened by hand, but the
  launcher's scope wins: a parameter may not widen it (:func:`settings`).
- **Scope where the data is read.** An app reads the scope's members only
  (:func:`scope_scores`: the snapshot's rows joined to
  :func:`crmkit.engine.universe` of the scope, the members' home store and
  region as every report counts them), so nothing outside the scope is in
  the kernel to be shown or exported; widgets can only narrow further.
- **The snapshot, never a scoring.** An app reads the newest recorded score
  run (:func:`newest_run`: the latest as-of, then the latest run, whose
  ``member_scores`` rows are all there) and never scores while a manager
  waits: without one it says in one sentence how to make one. A run made
  before data was loaded is still shown, with a sentence saying so.
- **Offline, in Chinese.** The page style (:func:`page_style`) carries the
  bundled CJK font as a web font subset to the characters the app can show
  (:func:`crmkit.fonts.cjk_font_face`), so Chinese renders on a machine
  without CJK fonts and nothing is fetched.
- **Exports are made on click** (:class:`Export`): the button (CSS class
  ``crm-export``) builds the file in the kernel only when pressed, and the
  page downloads it through a Blob (the ``crmkit`` Voila template's script
  clicks the ``a.crm-download`` link that appears), so a page does not carry
  its export in the widget state it loads, and no ``data:`` URL size limit
  applies.
- **Errors are one sentence** (:func:`error_html`): a
  :class:`crmkit.errors.CrmkitError` as it is, anything else as its type and
  first line, the traceback to the server's log only.
"""
from __future__ import annotations

import base64
import html
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import engine
from ..errors import CrmkitError
from ..i18n import LANGS, register, t

#: Environment variables ``crmkit app`` sets for the kernels: setting -> variable.
ENV = {"db": "CRMKIT_APP_DB", "region": "CRMKIT_APP_REGION", "store_id": "CRMKIT_APP_STORE",
       "lang": "CRMKIT_APP_LANG"}

register({
    "app.no_snapshot": ("{db} 里还没有评分快照：请先运行 crmkit score {db} --as-of 日期（YYYY-MM-DD），再刷新本页。",
                        "{db} has no score snapshot yet: run crmkit score {db} --as-of DATE (YYYY-MM-DD), "
                        "then reload this page."),
    "app.stale": ("此快照之后库里又载入了数据，数字未含新数据；运行 crmkit score {db} --as-of 日期 可更新。",
                  "Data was loaded after this snapshot, so its numbers leave it out; "
                  "crmkit score {db} --as-of DATE brings them up to date."),
    "app.internal": ("内部错误（{kind}：{msg}），详情见服务器日志。",
                     "Internal error ({kind}: {msg}); the server's log has the details."),
    "app.scope_wider": ("本页只能显示启动时指定的范围（{given}），不能改为 {asked}。",
                        "This page shows only the scope it was started with ({given}), not {asked}."),
    "app.scope": ("范围", "Scope"),
    "app.chain": ("全公司", "Whole chain"),
    "app.snapshot": ("评分快照", "Score snapshot"),
    "app.masked": ("手机号与姓名已脱敏。", "Phones and names are masked."),
})


@dataclass(frozen=True)
class AppSettings:
    """The store an app reads, the scope it may show and its first language."""

    db: Path
    scope: engine.Scope
    lang: str


def settings(db=None, region=None, store_id=None, lang=None) -> AppSettings:
    """The app's settings: those of ``crmkit app`` (:data:`ENV`), else the notebook's parameters.

    When the launcher set a scope, a parameter may only repeat it (or name a
    store inside the launcher's region); anything else is refused in one
    sentence rather than shown.
    """
    from ..dashboard import store_path
    from ..paths import default_db_path

    env = {k: os.environ.get(v) or None for k, v in ENV.items()}
    lang = first_lang(lang)
    given = engine.Scope.of(region=env["region"], store_id=env["store_id"])
    asked = engine.Scope.of(region=region, store_id=store_id)
    scope = engine.Scope.of(given, **asked.fields())
    if not given.chain and (scope.region != given.region
                            or (given.store_id is not None and scope.store_id != given.store_id)):
        raise CrmkitError(t("app.scope_wider", lang).format(given=scope_text(given, lang),
                                                           asked=scope_text(asked, lang)))
    return AppSettings(store_path(env["db"] or db or default_db_path()), scope, lang)


def first_lang(lang=None) -> str:
    """The page's first language: that of ``crmkit app``, else ``lang``, else Chinese."""
    lang = os.environ.get(ENV["lang"]) or lang
    return lang if lang in LANGS else "zh"


def scope_text(scope: engine.Scope, lang: str = "zh") -> str:
    """The scope in words (``区域 = 华南``), or the whole chain."""
    from ..dashboard import scope_label

    return scope_label(scope, lang) if not scope.chain else t("app.chain", lang)


def open_app_store(s: AppSettings):
    """``(con, scope)``: the store read-only with its currency in use, and the checked scope
    (an unknown region or store is one sentence naming the valid ones)."""
    from ..dashboard import open_store, report_scope

    if not Path(s.db).exists():
        raise CrmkitError(f"{s.db}: no such store; pass crmkit app --db PATH.")
    con = open_store(s.db)
    return con, report_scope(con, s.scope.region, s.scope.store_id, s.scope.channel)


def newest_run(con, db, lang: str = "zh"):
    """The newest recorded score run (latest as-of, then latest run) whose rows are all in ``member_scores``;
    one sentence saying how to make one when there is none."""
    from ..engine import snapshots

    for run in sorted(snapshots.runs(con), key=lambda r: (r.as_of, r.run_id), reverse=True):
        rows = con.execute("SELECT count(*) FROM member_scores WHERE as_of = $d", {"d": run.as_of}).fetchall()[0][0]
        if rows == run.members:
            return run
    raise CrmkitError(t("app.no_snapshot", lang).format(db=db))


def stale_note(con, run, db, lang: str = "zh") -> str | None:
    """A sentence when data was loaded after ``run`` was scored (its data fingerprint is not today's), else None."""
    from ..engine.snapshots import data_fingerprint

    return t("app.stale", lang).format(db=db) if run.data_fingerprint != data_fingerprint(con) else None


def scope_scores(con, run, scope: engine.Scope, columns: tuple[str, ...], where: str = "TRUE") -> pd.DataFrame:
    """The ``columns`` of ``run``'s ``member_scores`` rows of the members of ``scope`` (``s.`` prefixed SQL
    ``where`` on top), with each member's home ``store_id``, ``region``, ``last_purchase`` and ``net_spend``
    (all orders up to the snapshot's as-of).

    Members are the scope's by their home (:mod:`crmkit.engine.scope`), as in
    every report; one engine query, one row per member.
    """
    q = engine.member_activity(run.as_of) + engine.universe(run.as_of, scope)
    picked = ", ".join(f's."{c}"' for c in columns)
    return q.df(con, f"""
SELECT {picked}, u.store_id, u.region, u.last_purchase, u.net_spend
FROM member_scores s JOIN universe u ON u.member_id = s.member_id
WHERE s.as_of = $snapshot_as_of AND ({where})
ORDER BY s.member_id""", snapshot_as_of=run.as_of)


def scope_totals(con, run, scope: engine.Scope, quantiles: tuple[float, ...] = ()) -> dict:
    """The scope's scored members, their total CLV, and their spend to date (``net_spend``) at each of
    ``quantiles`` (``spend_at``), engine-side."""
    q = engine.member_activity(run.as_of) + engine.universe(run.as_of, scope)
    cuts = "".join(f", quantile_cont(u.net_spend, {float(p)!r})" for p in quantiles)
    row = q.execute(con, f"""
SELECT count(*), sum(s.clv){cuts}
FROM member_scores s JOIN universe u ON u.member_id = s.member_id
WHERE s.as_of = $snapshot_as_of""", snapshot_as_of=run.as_of).fetchone()
    return {"members": int(row[0]), "clv": float(row[1] or 0.0),
            "spend_at": {p: (None if v is None else float(v)) for p, v in zip(quantiles, row[2:])}}


# ------------------------------------------------------------------ page

_CSS = """
body, .jp-Notebook, .jupyter-widgets, .widget-label, .widget-html-content, .widget-dropdown select,
.widget-toggle-button, .widget-button, .jupyter-button, select, option, input, table, h1, h2, h3, p {
  font-family: "crmkit CJK", "DejaVu Sans", "Helvetica Neue", Arial, sans-serif;
}
.crm-app h2 { margin: 4px 0 2px; font-size: 22px; }
.crm-sub { color: #555; font-size: 13px; margin: 1px 0; }
.crm-note { background: #fff6e0; border-left: 3px solid #e0a000; padding: 4px 8px; font-size: 13px; }
.crm-error { background: #fdecea; border-left: 3px solid #c62828; padding: 6px 10px; }
.crm-kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.crm-kpi { border: 1px solid #d9dee5; border-radius: 6px; padding: 8px 14px; min-width: 160px; background: #fafbfc; }
.crm-kpi .crm-kpi-value { font-size: 22px; font-weight: 600; color: #1b2b40; }
.crm-kpi .crm-kpi-label { font-size: 12px; color: #5a6675; }
.crm-kpi .crm-kpi-note { font-size: 11px; color: #8a94a0; }
a.crm-export { display: inline-block; padding: 5px 14px; border-radius: 4px; background: #1f5fbf; color: #fff;
  text-decoration: none; font-size: 13px; }
.crm-table table.dataframe { border-collapse: collapse; font-size: 12.5px; }
.crm-table table.dataframe th { background: #eef1f5; padding: 4px 8px; white-space: nowrap; }
.crm-table { overflow-x: auto; }
.crm-table table.dataframe td { padding: 3px 8px; border-bottom: 1px solid #eceff3; white-space: nowrap;
  line-height: 1.35; }
.crm-foot { color: #6b7480; font-size: 12px; margin: 1px 0; }
"""


def page_style(text: str) -> str:
    """``<style>`` for an app: the CJK web font subset to ``text`` (every label the app can show) and the house CSS."""
    from ..fonts import cjk_font_face

    return f"<style>{cjk_font_face(text)}{_CSS}</style>"


def error_html(err: BaseException, lang: str = "zh") -> str:
    """One sentence for a failure; anything but a :class:`CrmkitError` also goes, with its traceback, to stderr
    (the server's log: Voila keeps it off the page)."""
    if isinstance(err, CrmkitError):
        text = str(err)
    else:
        traceback.print_exception(err, file=sys.stderr)
        first = str(err).splitlines()[0] if str(err) else ""
        text = t("app.internal", lang).format(kind=type(err).__name__, msg=first)
    return f'<p class="crm-error">{html.escape(text)}</p>'


def kpi_html(label: str, value: str, note: str = "") -> str:
    """One KPI tile (CSS class ``crm-kpi``)."""
    extra = f'<div class="crm-kpi-note">{html.escape(note)}</div>' if note else ""
    return (f'<div class="crm-kpi"><div class="crm-kpi-label">{html.escape(label)}</div>'
            f'<div class="crm-kpi-value">{html.escape(value)}</div>{extra}</div>')


def show_page(build, db=None, region=None, store_id=None, lang=None):
    """Display an app's page for the settings of ``crmkit app`` (or these parameters), or one sentence
    instead when it cannot be shown (unknown scope, no snapshot, a bug; the log has the rest).

    ``build(con, settings, scope, run)`` reads what the page needs while the store is open and returns
    ``(text, make)``: every text the page can show (for the web-font subset, :func:`page_style`) and
    ``make(lang)``, which makes the page (its ``box`` is displayed and the page returned).
    """
    from IPython.display import HTML, display

    lang = first_lang(lang)
    try:
        s = settings(db, region, store_id, lang)
        con, scope = open_app_store(s)
        try:
            text, make = build(con, s, scope, newest_run(con, s.db, s.lang))
        finally:
            con.close()
    except Exception as err:  # noqa: BLE001 - one sentence on the page
        sentence = error_html(err, lang)
        display(HTML(page_style(sentence) + sentence))
        return None
    display(HTML(page_style(text)))
    page = make(lang)
    display(page.box)
    return page


class Page:
    """What every app page shares: the 中文 / English toggle (CSS class ``crm-filter-lang``), which sets
    ``lang`` and redraws the page in it (the page's ``_relabel`` and ``render``)."""

    def language_toggle(self, lang: str):
        import ipywidgets as w

        toggle = w.ToggleButtons(options=[("中文", "zh"), ("English", "en")], value=lang)
        toggle.add_class("crm-filter-lang")
        toggle.observe(self._lang_changed, names="value")
        return toggle

    def _lang_changed(self, change) -> None:
        self.lang = change["new"]
        self._relabel()
        self.render()


def download_html(name: str, payload: bytes, label: str, mime: str = "text/csv") -> str:
    """A link (CSS class ``crm-download``) that downloads ``payload`` as ``name``; the ``crmkit`` Voila template
    turns it into a Blob and clicks it once when it appears (:class:`Export`)."""
    data = base64.b64encode(payload).decode()
    return (f'<a class="crm-download" download="{html.escape(name)}" '
            f'href="data:{mime};charset=utf-8;base64,{data}">{html.escape(label)}</a>')


class Export:
    """The export button (CSS class ``crm-export``): ``make()`` returns ``(file name, bytes)`` and runs on click only.

    The file reaches the browser as a :func:`download_html` link, which the
    page downloads at once; :meth:`reset` (call it when the filters change)
    drops it, so a stale file is never offered.
    """

    def __init__(self, make, lang: str = "zh"):
        import ipywidgets as w

        self.make, self.lang = make, lang
        self.button = w.Button(layout=w.Layout(width="auto"))
        self.button.add_class("crm-export")
        self.link = w.HTML()
        self.box = w.HBox([self.button, self.link])
        self.button.on_click(self._clicked)

    def relabel(self, label: str) -> None:
        self.button.description = label
        self.reset()

    def reset(self) -> None:
        self.link.value = ""

    def _clicked(self, _button) -> None:
        try:
            name, payload = self.make()
            self.link.value = download_html(name, payload, name)
        except Exception as err:  # noqa: BLE001 - one sentence on the page
            self.link.value = error_html(err, self.lang)
