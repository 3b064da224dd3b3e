"""Scheduled reports: run the parameterized notebooks with papermill.

``run_reports`` executes each notebook of ``notebooks/`` in its own kernel
(``python3``, which jupyter_client resolves to the running interpreter), as
many side by side as there are cores (:data:`WORKERS`), and writes, for one
``as_of`` date, language and scope (:func:`report_dir`)::

    <out>/<as_of>/<lang>/<scope>/<name>.ipynb    executed notebook, code and any traceback kept
    <out>/<as_of>/<lang>/<scope>/<name>.html     the report a manager reads: no code, no tracebacks
    <out>/<as_of>/<lang>/<scope>/manifest.json   parameters, version, data fingerprint, currency, status

``<scope>`` is ``chain``, or the region, store and channel the parameters
name (``region-华南``): a region's run never replaces the chain's reports, nor
an English run the Chinese ones.

A failing notebook is recorded as ``failed`` with a one-sentence error, keeps its
executed copy, and gets an HTML showing its outputs up to the failure and the
error sentence (never a traceback); the other notebooks still run.

Reports degrade, they do not vanish. Inside a notebook, a section that cannot
be computed shows one sentence and the rest stands
(:mod:`crmkit.dashboard.sections`); the manifest lists those sentences under
``sections_skipped``. A report with nothing to report on is not run at all:
:data:`SKIP_RULES` gives, per notebook, the reason it has no subject (a store
without campaigns has no campaign to review); it is recorded as ``skipped``
with that ``reason``, writes no files, and does not make the run fail.

Everything is written into a hidden staging folder beside the target, which
then replaces the report folder as a whole: a run never leaves half-written
files, and re-running replaces the earlier output cleanly (the folder and its
manifest always describe one run).

One run, one state of the store. ``run_reports`` first copies the store into a
hidden snapshot folder beside the staging folder while holding a read-only
connection to it (:func:`crmkit.store.snapshot`): DuckDB admits one writer or
any number of readers, so no load can change the file during the copy. The
data fingerprint, the skip rules and every notebook then read that copy, so
the notebooks agree with each other and with ``data_fingerprint`` even when a
load runs meanwhile; the store is locked only for the seconds of the copy. A
load that is writing when the run starts makes it fail with one sentence, and
a load that starts during the copy fails with one sentence and can be run
again; neither mixes states. The kernels receive the snapshot's path as
``db``; the manifest records the store that was named. ``db`` and ``as_of``
come only from ``--db`` and ``--as-of`` (``--param`` cannot set them), so the
folder ``<as_of>/<lang>/<scope>/`` always holds a report of that date and store.

Scores are computed at most once per run. The notebooks that show scores
(:data:`SCORED_NOTEBOOKS`) read a score snapshot
(:mod:`crmkit.engine.snapshots`): the newest run of the as_of whose settings
(model, horizon, discount rate, margin) and data match. ``crmkit score``
records one in the store, and the copy carries it. When the store has none,
:func:`score_snapshot_copy` scores once into the copy, before any notebook
runs, and every notebook of the run reads that. The store itself is never
written by a report: it is not locked for the scoring, the scores an analyst
recorded with other settings are never replaced, and the manifest's data
fingerprint (taken before) is the store's. The cost is that the next report
scores again unless ``crmkit score`` has been run; the report header and the
manifest (``scores`` of each notebook) say which run was read, and whether it
came from the store or was made for this report.

Slow results that do not change between runs of the same data are cached
(:mod:`crmkit.cache`), keyed by everything they are computed from: the
holdout comparison of the models in ``clv_churn``
(:func:`crmkit.clv.validation.compare_models`) and the CJK font subset of
each HTML. A report therefore shows the same numbers whether they were read
from the cache or computed, and new data or new code simply compute again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path


from . import __version__
from .errors import CrmkitError
from .i18n import LANGS
from .progress import Progress
from .currency import store_currency
from .engine.store import Connection, connect, snapshot
from .engine.scope import check as scope_check
from .fonts import cjk_font_face
from .text import display_width, pad

#: The report notebooks, in the order they run and are listed.
NOTEBOOKS = ("member_overview", "clv_churn", "campaign_review", "monthly_report")
#: The notebooks that show member scores, read from a score snapshot (see the module docstring).
SCORED_NOTEBOOKS = ("clv_churn", "monthly_report")

#: How many notebooks run at the same time, each in its own kernel: one per core, at most all of them.
#: A kernel spends most of its time computing, so more than the cores would only share them.
WORKERS = min(len(NOTEBOOKS), os.cpu_count() or 1)

KERNEL = "python3"
#: Keep the kernel's own chatter (its TCP transport warning, the interrupt at shutdown) off the console;
#: errors inside a notebook still reach the manifest through papermill.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]

#: Seconds one notebook cell may run before the notebook is failed (unattended runs must end).
CELL_TIMEOUT = 1800

_TEMPLATE_FILE = "crmkit_report.html.j2"
# The lab template without anything fetched from the network (require.js, MathJax,
# mermaid, widgets): reports open offline, and nothing needs them (charts are PNGs).
# Images get their alt text.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
     alt="{{ ((output | get_metadata('alt', 'image/png')) or '') | escape_html }}">
</div>
{%- endblock data_png -%}
{%- block html_head_css -%}
<style type="text/css">
{{ resources.crmkit_css }}
</style>
{%- endblock html_head_css -%}
"""
_REPORT_CSS = """
body.jp-Notebook { max-width: 1100px; margin: 0 auto; padding: 24px; }
body, .jp-RenderedHTMLCommon, .jp-RenderedText pre {
  font-family: "crmkit CJK", -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei",
               "Noto Sans CJK SC", sans-serif;
}
.jp-RenderedHTMLCommon table { font-size: 13px; margin-left: 0; }
.jp-Notebook .jp-RenderedHTMLCommon td, .jp-Notebook .jp-RenderedHTMLCommon th {
  text-align: left; font-variant-numeric: tabular-nums;
}
.jp-RenderedImage img { max-width: 100%; height: auto; }
.crmkit-error { border-left: 4px solid #c0392b; background: #fdecea; padding: 8px 12px;
                color: #7b241c; font-size: 15px; }
.crmkit-warning { border-left: 4px solid #d4a017; background: #fdf6e3; padding: 8px 12px;
                  color: #6b4f00; margin: 6px 0; }
.crmkit-note { border-left: 4px solid #7f8c8d; background: #f4f6f6; padding: 8px 12px;
               color: #34495e; margin: 6px 0; }
"""
_HIDDEN_TAGS = {"hide-in-report", "papermill-error-cell-tag"}
_H1 = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.S | re.I)
_TITLE = re.compile(r"<title>.*?</title>", re.S | re.I)
_NETWORK_REF = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


# ------------------------------------------------------------------ locating notebooks

def notebooks_dir() -> Path:
    """The folder of report notebooks: ``notebooks/`` beside the ``crmkit`` package (editable install)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def notebook_path(name: str) -> Path:
    """Path of the report notebook ``name``; a CrmkitError naming the known ones otherwise."""
    if name not in NOTEBOOKS:
        raise CrmkitError(f"no report named {name!r}; choose from {', '.join(NOTEBOOKS)}.")
    path = notebooks_dir() / f"{name}.ipynb"
    if not path.exists():
        raise CrmkitError(f"{path}: report notebook is missing from the installation.")
    return path


def notebook_parameters(name: str) -> dict:
    """The parameters declared in the ``parameters`` cell of notebook ``name``, with their defaults."""
    import papermill

    return {k: v["default"] for k, v in papermill.inspect_notebook(str(notebook_path(name))).items()}


def _parameters_cell(name: str) -> str:
    """The source of the cell tagged ``parameters`` in notebook ``name`` (empty when there is none)."""
    nb = json.loads(notebook_path(name).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    return ""


def parameter_docs(names: list[str] | tuple[str, ...] = NOTEBOOKS) -> dict[str, dict]:
    """Every parameter of the notebooks ``names``, read from their ``parameters`` cells.

    Returns ``{name: {"default": source text, "help": the comment after it,
    "notebooks": [...], "defaults": {notebook: source text}}}`` in the order
    the parameters first appear (``default`` is the first notebook's). The
    cells are read as JSON and parsed with :mod:`ast` and :mod:`tokenize`
    (papermill's own inspection costs seconds of imports, and ``crmkit
    report --help`` is built from this); a test checks that both agree.
    """
    import ast
    import tokenize

    out: dict[str, dict] = {}
    for nb_name in names:
        source = _parameters_cell(nb_name)
        comments = {}
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                continue
            key = node.targets[0].id
            default = ast.get_source_segment(source, node.value) or lines[node.lineno - 1].split("=", 1)[1].strip()
            entry = out.setdefault(key, {"default": default, "help": "", "notebooks": [], "defaults": {}})
            entry["help"] = entry["help"] or comments.get(node.end_lineno, "")
            entry["notebooks"].append(nb_name)
            entry["defaults"][nb_name] = default
    return out


def parameters_help(names: list[str] | tuple[str, ...] = NOTEBOOKS) -> str:
    """The list of report parameters for ``crmkit report --help``: name, default, meaning, notebooks.

    Generated from the notebooks' ``parameters`` cells (:func:`parameter_docs`),
    so that it lists every parameter and cannot drift from them.
    """
    docs = parameter_docs(names)
    rows = []
    for key, doc in docs.items():
        if key in ("db", "as_of"):  # set by --db and --as-of
            continue
        where = "all reports" if len(doc["notebooks"]) == len(names) else ", ".join(doc["notebooks"])
        others = [f"{nb}: {d}" for nb, d in doc["defaults"].items() if d != doc["default"]]
        if others:
            where += "; default " + ", ".join(others)
        rows.append((key, doc["default"], f"{doc['help']} [{where}]" if doc["help"] else f"[{where}]"))
    width = max(display_width(f"{k}={d}") for k, d, _ in rows) + 2
    return "\n".join(f"  {pad(f'{k}={d}', width)}{h}" for k, d, h in rows)


def check_kernel() -> None:
    """A CrmkitError unless kernel ``python3`` runs this interpreter (where crmkit is installed).

    jupyter_client starts kernelspecs whose command is plain ``python`` with the
    running interpreter; a ``python3`` kernelspec elsewhere (e.g. in the user's
    Jupyter folder) that names another Python would run the reports without crmkit.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise CrmkitError(f"no Jupyter kernel named {KERNEL}; install ipykernel into this environment.") from None
    exe = spec.argv[0]
    if exe in ("python", f"python{sys.version_info[0]}", "python%i.%i" % sys.version_info[:2]):
        return
    if Path(shutil.which(exe) or exe).resolve() != Path(sys.executable).resolve():
        raise CrmkitError(f"the Jupyter kernel {KERNEL} in {spec.resource_dir} runs {exe}, not this "
                          f"environment's {sys.executable}; remove it (jupyter kernelspec remove {KERNEL}).")


# ------------------------------------------------------------------ parameters

def parse_param(text: str) -> tuple[str, object]:
    """``"horizon=52"`` → ``("horizon", 52)``.

    Values are read as plain literals: integers, decimals, ``true``/``false``,
    ``none``/``null``; anything else is a string (so ``2026-06-30`` stays a string).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise CrmkitError(f"--param {text!r}: expected KEY=VALUE with KEY a parameter name.")
    raw = raw.strip()
    low = raw.lower()
    if low in ("true", "false"):
        return key, low == "true"
    if low in ("none", "null"):
        return key, None
    for cast in (int, float):
        try:
            return key, cast(raw)
        except ValueError:
            pass
    return key, raw


def parse_as_of(value) -> str:
    """``as_of`` as an ISO date string, or a CrmkitError."""
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise CrmkitError(f"--as-of {value!r}: expected a date like 2026-06-30.") from None


#: Parameters that only their own flag sets: the report folder, its manifest and the data must agree.
RESERVED = {"db": "--db", "as_of": "--as-of"}


def check_reserved(params) -> None:
    """A CrmkitError when ``params`` (``--param``) sets ``db`` or ``as_of``, naming the flag that does."""
    for key, flag in RESERVED.items():
        if key in params:
            raise CrmkitError(f"--param {key} is not allowed, because the report folder and its manifest "
                              f"must describe the same store and date as the notebooks; use {flag}.")


def plan_parameters(names: list[str], db: str, as_of: str, params: dict) -> dict[str, dict]:
    """The parameters to inject into each notebook, checked before any of them runs.

    Every key of ``params`` must be declared by at least one of the notebooks,
    and each notebook receives only the keys it declares.
    """
    check_reserved(params)
    declared = {name: notebook_parameters(name) for name in names}
    unknown = sorted(set(params) - set().union(*(d.keys() for d in declared.values())))
    if unknown:
        raise CrmkitError(f"unknown report parameter {unknown[0]!r} for {', '.join(names)}; "
                          f"known: {', '.join(sorted(set().union(*declared.values()) - {'db', 'as_of'}))}.")
    if params.get("lang", LANGS[0]) not in LANGS:
        raise CrmkitError(f"--param lang={params['lang']}: choose one of {', '.join(LANGS)}.")
    given = {"db": db, "as_of": as_of, **params}
    return {name: {k: v for k, v in given.items() if k in d} for name, d in declared.items()}


# ------------------------------------------------------------------ score snapshots

def score_parameters(name: str, parameters: dict) -> dict | None:
    """The scoring parameters notebook ``name`` reads scores with, or None for a notebook without scores.

    Its parameters cell's defaults, overridden by the planned ``parameters``
    (``--param``), normalised by :func:`crmkit.engine.snapshots.settings`.
    """
    import ast

    from .engine.snapshots import PARAMETERS, settings

    if name not in SCORED_NOTEBOOKS:
        return None
    docs = parameter_docs([name])
    defaults = {k: ast.literal_eval(docs[k]["default"]) for k in PARAMETERS if k in docs}
    return settings(**{**defaults, **{k: v for k, v in parameters.items() if k in PARAMETERS}})


def score_snapshot_copy(snap: Path, as_of: str, wanted: list[dict], bar: Progress) -> dict[str, str]:
    """Make sure the store copy ``snap`` holds a score run for ``wanted`` (scoring parameters, one per setting).

    When the copy (that is, the store) has a run of ``as_of`` with none of
    those parameters and its data, the first are scored once and recorded in
    the copy, which is made writable for that and read-only again after.
    Returns, per settings fingerprint, where its run came from: ``store`` or
    ``report`` (recorded for this report). A date holds one run
    (:mod:`crmkit.engine.snapshots`), so a notebook with other parameters
    (never the case with the defaults, or with ``--param``, which every
    notebook receives) scores for itself. Scoring that fails is left to the
    notebooks, whose sections then step aside with the sentence.
    """
    from .engine.snapshots import latest_run, record_run, settings_fingerprint

    origin = {}
    con = connect(snap, read_only=True)
    try:
        for params in wanted:
            if latest_run(con, as_of, params) is not None:
                origin[settings_fingerprint(params)] = "store"
    finally:
        con.close()
    if origin or not wanted:  # recording another setting would replace the store's run of the date
        return origin
    from .scoring import score_members  # the models and scikit-learn: only when scoring

    params = wanted[0]
    for f in (snap, snap.with_name(snap.name + ".wal")):
        if f.exists():
            os.chmod(f, 0o644)
    try:
        bar.step(f"scoring members once for this report ({params['model']}; the store has no score snapshot "
                 f"of {as_of} with these settings and data)")
        con = connect(snap)
        try:
            run = record_run(con, score_members(con, as_of, **params), params)
        finally:
            con.close()
        origin[run.settings_fingerprint] = "report"
        bar.step(f"scored {run.members:,} members for every notebook (run {run.run_id}, in the report's "
                 "copy of the store)")
    except Exception as err:  # noqa: BLE001 - the notebooks score for themselves and say why they cannot
        bar.step("scoring for this report failed, the notebooks will try: "
                 + error_sentence(type(err).__name__, str(err)))
    finally:
        for f in (snap, snap.with_name(snap.name + ".wal")):
            if f.exists():
                os.chmod(f, 0o444)
    return origin


def notebook_scores(con: Connection, as_of: str, params: dict | None,
                    origin: dict[str, str]) -> dict | None:
    """The manifest's ``scores`` of a notebook: the run it reads and where it came from.

    None for a notebook without scores; ``{"source": "notebook", ...}`` when
    no run matches and the notebook scores for itself.
    """
    from .engine.snapshots import latest_run

    if params is None:
        return None
    run = latest_run(con, as_of, params)
    if run is None:
        return {"source": "notebook", "run_id": None, "parameters": params}
    return {"source": origin.get(run.settings_fingerprint, "store"), **run.to_dict()}


# ------------------------------------------------------------------ data fingerprint

def data_fingerprint(con: Connection) -> str:
    """sha256 over the row count of every table plus the span and sum of transactions.

    Cheap (counts and aggregates run in DuckDB) and changes whenever data is
    loaded or scored, so two runs with the same fingerprint and parameters
    report the same numbers.
    """
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "ORDER BY table_name").fetchall()]
    facts: dict[str, object] = {
        name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    if "transactions" in tables:
        lo, hi, total = con.execute(
            "SELECT min(order_time), max(order_time), round(sum(amount), 2) FROM transactions").fetchone()
        facts["transactions.span"] = [str(lo), str(hi)]
        facts["transactions.amount"] = total
    blob = json.dumps(facts, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


# ------------------------------------------------------------------ HTML

@dataclass
class NotebookRun:
    """Outcome of one notebook: ``status`` is ``ok``, ``failed`` or ``skipped``; ``error`` one sentence.

    ``html`` and ``ipynb`` are file names in the report folder, None when not
    written. ``reason`` says in one sentence why a ``skipped`` notebook was not
    run. ``sections_skipped`` lists the sections that stepped aside, each
    ``{"section": heading, "sentence": ...}``. ``scores`` is the score run a
    notebook with scores read (:func:`notebook_scores`), None for the others.
    """

    name: str
    status: str
    error: str | None
    duration_s: float
    parameters: dict
    html: str | None
    ipynb: str | None
    reason: str | None = None
    sections_skipped: list | None = None
    scores: dict | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "error": self.error, "reason": self.reason,
                "duration_s": self.duration_s, "html": self.html, "ipynb": self.ipynb,
                "sections_skipped": list(self.sections_skipped or []), "scores": self.scores,
                "parameters": self.parameters}


def _campaign_review_subject(con: Connection, parameters: dict) -> str | None:
    from .dashboard.campaign import campaign_skip_reason

    return campaign_skip_reason(con, parameters["as_of"], parameters.get("campaign_id"))


#: Per notebook, a function of (store, parameters) giving why the report has nothing to report on
#: (one sentence), or None when it does; such a notebook is skipped, not failed.
SKIP_RULES = {"campaign_review": _campaign_review_subject}


def skip_reason(con: Connection, name: str, parameters: dict) -> str | None:
    """Why notebook ``name`` has nothing to report on with ``parameters`` (:data:`SKIP_RULES`), or None."""
    rule = SKIP_RULES.get(name)
    return rule(con, parameters) if rule is not None else None


def sections_skipped(nb: nbformat.NotebookNode) -> list[dict]:
    """The sections of an executed notebook that stepped aside (:mod:`crmkit.dashboard.sections`)."""
    from .dashboard.sections import SKIPPED_KEY

    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            mark = out.get("metadata", {}).get(SKIPPED_KEY, {}).get("section_skipped")
            if mark:
                found.append(dict(mark))
    return found


def error_sentence(ename: str, evalue: str) -> str:
    """One line for a notebook error: crmkit's own errors speak for themselves."""
    first = (evalue or "").strip().splitlines()[0] if (evalue or "").strip() else ""
    if ename in ("CrmkitError", "InputError", "ModelError"):
        return first or ename
    return f"{ename}: {first}" if first else ename


def presentable(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook fit for managers: outputs only.

    Drops code cells without outputs, cells tagged ``hide-in-report`` (notes
    for analysts), papermill's error banner and stderr streams (warnings,
    logs), and replaces each traceback by its one-sentence error in a
    highlighted box.
    """
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        if _HIDDEN_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        if cell.cell_type == "code":
            outputs = []
            for out in cell.get("outputs", []):
                if out.output_type == "stream" and out.get("name") == "stderr":
                    continue
                if out.output_type == "error":
                    message = html.escape(error_sentence(out.ename, out.evalue))
                    out = nbformat.v4.new_output(
                        "display_data", {"text/html": f'<div class="crmkit-error">{message}</div>',
                                         "text/plain": message})
                outputs.append(out)
            if not outputs:
                continue
            cell.outputs = outputs
        cells.append(cell)
    nb.cells = cells
    return nb


_EXPORTERS = threading.local()


def _exporter(lang: str):
    """The HTML exporter of ``lang``, one per thread: its templates are loaded once, not per report."""
    import jinja2
    from nbconvert import HTMLExporter

    made = getattr(_EXPORTERS, "by_lang", None)
    if made is None:
        made = _EXPORTERS.by_lang = {}
    if lang not in made:
        made[lang] = HTMLExporter(
            template_name="lab", template_file=_TEMPLATE_FILE,
            extra_loaders=[jinja2.DictLoader({_TEMPLATE_FILE: _TEMPLATE})],
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
            exclude_anchor_links=True, language_code=lang,
        )
    return made[lang]


def to_html(nb: nbformat.NotebookNode, *, lang: str = "zh") -> str:
    """Self-contained HTML of an executed notebook: no code, no prompts, no network references."""
    exporter = _exporter(lang)
    shown = presentable(nb)
    text = json.dumps([c.get("outputs", c.get("source")) for c in shown.cells], ensure_ascii=False)
    body, _ = exporter.from_notebook_node(
        shown, resources={"crmkit_css": cjk_font_face(text) + _REPORT_CSS})
    body = body.replace('class="jp-Cell jp-CodeCell ', 'class="jp-Cell jp-OutputCell ')  # outputs only, no code
    heading = _H1.search(body)
    if heading:  # the browser tab says which report this is, not "Notebook"
        title = html.escape(html.unescape(re.sub(r"<[^>]+>", "", heading.group(1))).strip())
        body = _TITLE.sub(f"<title>{title}</title>", body, count=1)
    bad = _NETWORK_REF.search(body)
    if bad:  # the template changed under us: fail rather than ship a report that needs the internet
        raise CrmkitError(f"report HTML would load {bad.group(0)!r} from the network.")
    return body


# ------------------------------------------------------------------ running

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored under a lock (notebooks run in threads, which must not see each
    other's temporary value)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; reports are shared
    os.replace(tmp, path)


def run_notebook(name: str, parameters: dict, out_dir: Path) -> NotebookRun:
    """Execute notebook ``name`` into ``out_dir`` and write its HTML; never raises for notebook errors."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    ipynb = out_dir / f"{name}.ipynb"
    t0 = time.monotonic()
    error = None
    try:
        # the kernel starts in out_dir (nbclient's resources path); papermill's cwd= would os.chdir the
        # whole process, which notebooks running side by side in threads would race on
        papermill.execute_notebook(
            str(notebook_path(name)), str(ipynb), parameters=parameters, kernel_name=KERNEL,
            resources={"metadata": {"path": str(out_dir)}}, progress_bar=False,
            request_save_on_cell_execute=False, execution_timeout=CELL_TIMEOUT, extra_arguments=KERNEL_ARGS)
    except PapermillExecutionError as err:
        error = error_sentence(err.ename, err.evalue)
    except Exception as err:  # kernel died, timed out or would not start
        error = error_sentence(type(err).__name__, str(err))
    skipped = []
    if ipynb.exists():
        try:
            executed = nbformat.read(ipynb, as_version=4)
            skipped = sections_skipped(executed)
            html_text = to_html(executed, lang=parameters.get("lang", "zh"))
        except Exception as err:  # noqa: BLE001 - one report's HTML must not stop the others
            error = error or "HTML export: " + error_sentence(type(err).__name__, str(err))
        else:
            _write_atomic(out_dir / f"{name}.html", html_text)
    html = out_dir / f"{name}.html"
    return NotebookRun(name, "failed" if error else "ok", error, round(time.monotonic() - t0, 1), parameters,
                       html.name if html.exists() else None, ipynb.name if ipynb.exists() else None,
                       sections_skipped=skipped)


def report_dir(out, as_of, params: dict | None = None) -> Path:
    """The folder a run writes: ``<out>/<as_of>/<lang>/<scope>/``, with the ``lang`` (default ``zh``)
    and the scope (``region``, ``store_id``, ``channel``; :meth:`crmkit.engine.Scope.slug`) of ``params``.

    >>> report_dir("reports", "2026-06-30", {"lang": "en", "region": "华南"}).as_posix()
    'reports/2026-06-30/en/region-华南'
    """
    params = params or {}
    return Path(out) / str(as_of) / str(params.get("lang") or "zh") / scope_of(params).slug()


def scope_of(params: dict):
    """The :class:`crmkit.engine.Scope` that report parameters name (``region``, ``store_id``, ``channel``)."""
    from .engine.scope import FIELDS, Scope

    return Scope.of({k: params[k] for k in FIELDS if params.get(k) not in (None, "")})


def run_reports(db, as_of, names: list[str] | None = None, params: dict | None = None,
                out="reports", *, progress: bool = True) -> dict:
    """Run report notebooks for ``as_of`` and write them with a manifest into :func:`report_dir`.

    Parameters
    ----------
    db : path of the member store; every notebook reads one snapshot of it (see the module
        docstring), whose absolute path they receive as ``db``.
    as_of : the report date (ISO string or date).
    names : notebooks to run (default: all of :data:`NOTEBOOKS`).
    params : further notebook parameters (``lang``, ``campaign_id``, ``horizon``...);
        each must be declared by one of the notebooks, and none may be ``db`` or ``as_of``.
    out : the reports folder.

    Returns
    -------
    dict
        The manifest (also written as ``manifest.json``): ``as_of``, ``parameters``,
        ``crmkit_version``, ``data_fingerprint``, ``currency`` (the store's ISO code, in
        which every money figure of the reports is), ``started_at``, ``duration_s``,
        ``status`` (``failed`` when a notebook failed; skipped ones do not count) and
        ``notebooks`` (name, status, error, reason, duration_s, html, ipynb,
        sections_skipped, scores, parameters).
    """
    t0 = time.monotonic()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _without_iri_grammars()
    as_of = parse_as_of(as_of)
    names = list(dict.fromkeys(names or NOTEBOOKS))
    db_path = Path(db).resolve()
    params = dict(params or {})
    plan = plan_parameters(names, str(db_path), as_of, params)
    check_kernel()
    if not db_path.exists():
        connect(db_path, read_only=True)  # its one sentence: no member store there

    target = report_dir(out, as_of, params)
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    os.chmod(staging, 0o777 & ~_umask())
    snap_dir = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.snapshot-")).resolve()
    try:
        with snapshot(db_path, snap_dir) as snap:
            con = connect(snap, read_only=True)
            try:
                scope_check(con, scope_of(params))  # a mistyped region: one sentence, before any kernel
                fingerprint = data_fingerprint(con)
                money = store_currency(con).code
            finally:
                con.close()  # kernels open the snapshot themselves, read-only
            wanted = {name: score_parameters(name, plan[name]) for name in names}
            distinct = {json.dumps(p, sort_keys=True): p for p in wanted.values() if p is not None}
            origin = score_snapshot_copy(snap, as_of, list(distinct.values()), Progress("report", enabled=progress))
            con = connect(snap, read_only=True)
            try:
                scores = {name: notebook_scores(con, as_of, params, origin) for name, params in wanted.items()}
            finally:
                con.close()
            manifest = _run_all(names, plan, staging, snap, scores, progress=progress)
        manifest.update({
            "as_of": as_of,
            "parameters": {"db": str(db_path), "as_of": as_of, **params},
            "crmkit_version": __version__,
            "data_fingerprint": fingerprint,
            "currency": money,
            "started_at": started,
            "duration_s": round(time.monotonic() - t0, 1),
        })
        manifest = {k: manifest[k] for k in ("as_of", "parameters", "crmkit_version", "data_fingerprint",
                                             "currency", "started_at", "duration_s", "status", "notebooks")}
        _write_atomic(staging / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(snap_dir, ignore_errors=True)
        for folder in made:  # a run that failed before writing leaves no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
    return manifest


def _run_all(names, plan, staging: Path, snap: Path, scores: dict, *, progress: bool) -> dict:
    """Run the notebooks ``names`` into ``staging``, each reading the snapshot ``snap``.

    Up to :data:`WORKERS` notebooks run at the same time, each in its own
    kernel, and each writes its own HTML as soon as it ends; they start in
    the order of ``names``, and the manifest lists them in that order
    whatever order they end in. A notebook's skip rule (:func:`skip_reason`)
    is checked on the snapshot when its turn comes, so that the others
    need not wait for it. ``scores`` gives, per notebook that runs, the
    score run it reads (:func:`notebook_scores`).

    The manifest keeps each notebook's parameters as planned (``db`` the
    store the user named); the kernels receive ``db`` = the snapshot.
    """
    import papermill  # noqa: F401  (imported here once, not by the threads at the same time)
    from nbconvert import HTMLExporter  # noqa: F401

    runs = {}
    with Progress("report", total=len(names), enabled=progress) as bar:

        def start(name: str) -> NotebookRun:
            if name in SKIP_RULES:
                con = connect(snap, read_only=True)
                try:
                    reason = skip_reason(con, name, plan[name])
                finally:
                    con.close()
                if reason:
                    return NotebookRun(name, "skipped", None, 0.0, plan[name], None, None, reason)
            bar.step(f"{name} running")
            injected = {**plan[name], "db": str(snap)} if "db" in plan[name] else plan[name]
            run = run_notebook(name, injected, staging)
            run.scores = scores.get(name)
            return run

        with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(names)))) as pool:
            pending = {pool.submit(start, name): name for name in names}
            try:
                for done in as_completed(pending):
                    name = pending[done]
                    run = runs[name] = done.result()
                    run.parameters = plan[name]
                    if run.status == "skipped":
                        bar.step(f"{name} skipped: {run.reason}")
                        continue
                    bar.step(f"{name} {run.status} in {run.duration_s:.1f}s"
                             + (f": {run.error}" if run.error else ""))
            except BaseException:  # an interrupt: the notebooks not started never start
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    ordered = [runs[name] for name in names]
    return {"status": "failed" if any(r.status == "failed" for r in ordered) else "ok",
            "notebooks": [r.to_dict() for r in ordered]}


def _without_iri_grammars() -> None:
    """Keep jsonschema, which nbformat imports, from importing ``rfc3987_syntax`` in this process.

    That package compiles some forty Lark grammars when it is imported (2 s
    on a quiet machine, the longest import of a report run; jsonschema
    #1392, #1521), only to check the ``iri`` and ``iri-reference`` string
    formats, which no notebook schema uses. jsonschema imports it when it is
    installed (jupyter-events asks for it) and does without it when the
    import fails; marking it missing makes the import fail. Nothing else is
    changed, and only in the process that runs the reports.
    """
    sys.modules.setdefault("rfc3987_syntax", None)


def _swap_in(staging: Path, target: Path) -> None:
    """Make ``staging`` the new ``target``: rename the old one aside, rename in, delete the old."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
