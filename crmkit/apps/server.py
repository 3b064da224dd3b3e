"""Serving the apps with Voila: crmkit's template, the landing page, the settings the kernels read.

Rules
-----
- **One Voila server** serves ``notebooks/apps/``: ``/`` is the landing page
  listing :data:`crmkit.apps.APPS`, ``/voila/render/<app>.ipynb`` an app.
- **Sources stripped, tracebacks hidden.** Voila runs with
  ``strip_sources`` and without ``show_tracebacks``; the apps catch their
  own errors and show one sentence (:func:`crmkit.apps.common.error_html`),
  and :data:`CELL_ERROR` is the sentence for anything they did not catch.
- **Preheated.** One kernel per app is started and its notebook run before
  anyone asks (Voila's ``preheat_kernel``), so a manager gets a page that is
  already computed; after each visit Voila starts the next one.
- **Closed pages free their kernels**: a visited app's kernel idle for
  :data:`CULL_IDLE_SECONDS` with no page connected is shut down (Voila
  keeps every visited kernel otherwise); the preheated ones are kept.
- **Kernels over IPC**, not TCP: no port for another process to take
  between choosing and binding it (a kernel that dies of that leaves the
  page spinning), and no kernel port open on the machine.
- **Offline.** The ``crmkit`` Voila template (``templates/crmkit``, on top
  of ``lab``) drops the Font Awesome stylesheets ``lab`` loads from a CDN,
  and the landing page is served with the bundled CJK web font. The
  template is copied to a folder of this run, with the landing page written
  beside it, and that folder is put first on ``JUPYTER_PATH``.
- **Settings by environment.** The store, the scope and the language are
  set in :data:`crmkit.apps.common.ENV` before Voila starts; every kernel
  inherits them.
"""
from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

from . import APPS
from .. import engine
from ..i18n import register, t
from .common import ENV, scope_text

#: What Voila adds to "There was an error when executing cell [n]." for an error the apps did not catch
#: (nothing: that one sentence; the traceback goes to the server's log).
CELL_ERROR = ""

#: Seconds a visited app's kernel may sit idle with its page closed before it is shut down (Voila keeps it
#: otherwise, and at 1M members each holds hundreds of MB); an open page keeps its kernel, preheated ones stay.
CULL_IDLE_SECONDS = 600

#: Where the packaged template is.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "crmkit"

register({
    "app.landing": ("会员经营应用", "Membership apps"),
    "app.landing_sub": ("范围：{scope}；数据：{db}", "Scope: {scope}; data: {db}"),
    "app.landing_none": ("notebooks/apps/ 中没有应用。", "There is no app in notebooks/apps/."),
})


def apps_dir() -> Path:
    """``notebooks/apps/`` beside the package (as the report notebooks, :func:`crmkit.reports.notebooks_dir`)."""
    from ..reports import notebooks_dir

    return notebooks_dir() / "apps"


def available(folder: Path) -> list[str]:
    """The apps of :data:`APPS` whose notebook is in ``folder``, in the landing page's order."""
    return [name for name in APPS if (folder / f"{name}.ipynb").exists()]


def landing_html(names: list[str], scope: engine.Scope, db: Path, lang: str = "zh") -> tuple[str, str]:
    """``(title, body)`` of the landing page: one link per app, its title in ``lang`` and the other language."""
    from .common import page_style

    def text(value: str) -> str:  # the page is a Jinja template: a brace in a store's name stays text
        return html.escape(value).replace("{", "&#123;").replace("}", "&#125;")

    other = "en" if lang == "zh" else "zh"
    idx = 0 if lang == "zh" else 1
    items = []
    for name in names:
        title, line = APPS[name]
        items.append(f'<li><a class="crm-app-link" href="{{{{ base_url }}}}voila/render/{html.escape(name)}.ipynb">'
                     f'{text(title[idx])}</a> <span class="crm-other">{text(title[1 - idx])}</span>'
                     f'<p>{text(line[idx])}</p></li>')
    title = t("app.landing", lang)
    sub = t("app.landing_sub", lang).format(scope=scope_text(scope, lang), db=db.name)
    body = (f"<h1>{text(title)}</h1><p class='crm-sub'>{text(sub)}</p>"
            + (f"<ul class='crm-apps'>{''.join(items)}</ul>" if items
               else f"<p>{text(t('app.landing_none', lang))}</p>"))
    text = body + t("app.landing", other) + "".join(f"{a[0]}{a[1]}" for v in APPS.values() for a in v)
    css = (".crm-landing { max-width: 760px; margin: 40px auto; } .crm-apps { list-style: none; padding: 0; }"
           ".crm-apps li { border: 1px solid #d9dee5; border-radius: 6px; padding: 10px 16px; margin: 10px 0; }"
           ".crm-app-link { font-size: 18px; font-weight: 600; color: #1f5fbf; text-decoration: none; }"
           ".crm-other { color: #8a94a0; margin-left: 8px; } .crm-apps p { margin: 4px 0 0; color: #444; }")
    return title, f"{page_style(text)}<style>{css}</style><div class='crm-landing'>{body}</div>"


def template_folder(root: Path, names: list[str], scope: engine.Scope, db: Path, lang: str) -> Path:
    """Write ``root/voila/templates/crmkit`` (the template and this run's landing page); returns ``root``,
    the folder to put first on ``JUPYTER_PATH``."""
    target = root / "voila" / "templates" / "crmkit"
    shutil.copytree(TEMPLATE, target, dirs_exist_ok=True)
    title, body = landing_html(names, scope, db, lang)
    (target / "title.txt").write_text(html.escape(title).replace("{", "&#123;"), encoding="utf-8")
    (target / "landing.html").write_text(body, encoding="utf-8")
    return root


def environment(db: Path, scope: engine.Scope, lang: str, jupyter_path: Path) -> dict[str, str]:
    """The environment variables Voila and its kernels run with (besides the current ones)."""
    env = {ENV["db"]: str(db), ENV["region"]: scope.region or "", ENV["store_id"]: scope.store_id or "",
           ENV["lang"]: lang}
    prior = os.environ.get("JUPYTER_PATH")
    env["JUPYTER_PATH"] = os.pathsep.join([str(jupyter_path)] + ([prior] if prior else []))
    return env


def voila_argv(folder: Path, port: int, *, open_browser: bool) -> list[str]:
    """Voila's command line: the apps folder, the crmkit template, stripped sources, hidden tracebacks,
    preheated kernels, on 127.0.0.1 only."""
    return [str(folder), "--template=crmkit", "--theme=light", f"--port={port}", "--Voila.port_retries=0",
            "--Voila.ip=127.0.0.1",
            "--strip_sources=True", "--show_tracebacks=False", "--preheat_kernel=True", "--pool_size=1",
            "--KernelManager.transport=ipc",
            f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_SECONDS}", "--MappingKernelManager.cull_interval=60",
            f"--VoilaExecutor.cell_error_instruction={CELL_ERROR}",
            *([] if open_browser else ["--no-browser"])]
