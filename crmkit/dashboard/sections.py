"""Reports degrade, they do not vanish: sections that step aside, and warnings at the top.

A *section* is a heading and what follows it up to the next heading. Every
report cell is a section run inside :func:`section`: when crmkit cannot
compute it (a :class:`crmkit.errors.CrmkitError`, which always says why in
one sentence), the section shows that one sentence instead of its tables and
charts, and the rest of the report stands. Any other exception is a bug and
still fails the notebook (so ``crmkit report`` exits non-zero, as it should).

A section that uses what an earlier section computed calls :func:`needs`
first: when the earlier section stepped aside, so does this one, and says so.

A section that steps aside records its sentence in the output's metadata
(``crmkit.section_skipped``), so that :func:`crmkit.reports.run_reports` can
list it in ``manifest.json`` and on the console.

The *warnings* at the top of a report are the data checks of
:mod:`crmkit.checks`, each one sentence: an as-of outside the data (every
report), and, in reports that show customer value, outlier orders with their
share of sales and amounts that are all zero.
"""
from __future__ import annotations

import html
from contextlib import contextmanager

from ..errors import CrmkitError
from ..i18n import register, t
from .tables import heading

#: The key of the output metadata that marks a section which stepped aside.
SKIPPED_KEY = "crmkit"

register({
    "section.skipped": ("本节无法计算：{reason}", "This section could not be computed: {reason}"),
    "section.churn_check": ("流失风险检验（回测）", "Churn-risk check (backtest)"),
    "section.needs": ("本节依赖“{section}”的结果，而该节无法计算",
                      "this section needs the results of “{section}”, which could not be computed"),
})


class SectionUnavailable(CrmkitError):
    """A section that cannot be computed, with its one sentence in each report language.

    ``sentences`` maps ``"zh"`` and ``"en"`` to the sentence (the exception's
    message is the English one).
    """

    def __init__(self, sentences: dict[str, str]):
        self.sentences = dict(sentences)
        super().__init__(self.sentences["en"])


def _period(text: str, lang: str) -> str:
    text = text.strip()
    if text.endswith(("。", ".", "！", "!", "？", "?")):
        return text
    return text + ("。" if lang == "zh" else ".")


def skipped_sentence(err: CrmkitError, lang: str = "zh") -> str:
    """The one sentence a section shows in place of its content when ``err`` was raised.

    A :class:`SectionUnavailable` speaks the report's language itself; any other
    crmkit error is introduced by "This section could not be computed:" in
    ``lang`` and keeps its own first line (crmkit's errors are one sentence).
    """
    sentences = getattr(err, "sentences", None)
    if isinstance(sentences, dict) and sentences.get(lang):
        return _period(sentences[lang], lang)
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return _period(t("section.skipped", lang).format(reason=reason), lang)


def note_html(text: str, kind: str = "note") -> str:
    """One sentence in a box: ``kind`` "note" (a section stepped aside, a caveat) or "warning" (data checks)."""
    return f'<div class="crmkit-{kind}">{html.escape(text)}</div>'


def _display(text: str, kind: str, metadata: dict | None = None) -> None:
    from IPython.display import HTML, display

    display(HTML(note_html(text, kind)), metadata=metadata or {})


def show_skipped(err: CrmkitError, lang: str = "zh", key: str | None = None) -> str:
    """Display the sentence of :func:`skipped_sentence`, marked for the manifest; returns it."""
    sentence = skipped_sentence(err, lang)
    _display(sentence, "note", {SKIPPED_KEY: {"section_skipped": {"section": t(key, "en") if key else None,
                                                                  "sentence": sentence}}})
    return sentence


class Section:
    """What :func:`section` yields: ``ok`` is False once the section has stepped aside."""

    def __init__(self, key: str | None):
        self.key, self.ok, self.sentence = key, True, None


@contextmanager
def section(key: str | None, lang: str = "zh", *, level: int = 2):
    """Show the heading ``key``, run the block, and on a CrmkitError show its one sentence instead.

    >>> with dashboard.section("section.validation", lang):   # doctest: +SKIP
    ...     holdout = rfm.calibration_holdout(con, calibration_end, as_of)

    ``key`` None runs the block without a heading (the report's own header).
    Other exceptions propagate: a bug must fail the report.
    """
    if key is not None:
        heading(key, lang, level)
    state = Section(key)
    try:
        yield state
    except CrmkitError as err:
        state.ok = False
        state.sentence = show_skipped(err, lang, key)


def needs(value, section_key: str, lang: str = "zh") -> None:
    """Step aside (raise :class:`SectionUnavailable`) when ``value``, made by section ``section_key``, is None."""
    if value is None:
        raise SectionUnavailable({code: t("section.needs", code).format(section=t(section_key, code))
                                  for code in ("zh", "en")})


def show_warnings(sentences) -> None:
    """Display each data-check sentence (None and empty ones are left out) as a warning box."""
    for sentence in sentences:
        if sentence:
            _display(sentence, "warning")


def show_notes(sentences) -> None:
    """Display each sentence (None and empty ones are left out) as a note box: a caveat on the numbers."""
    for sentence in sentences:
        if sentence:
            _display(sentence, "note")


def data_warnings(con, as_of, lang: str = "zh", *, value: bool = False) -> list[str]:
    """The data checks a report shows at its top (:mod:`crmkit.checks`), each one sentence.

    Every report: an as-of after the last purchase day or before the first
    (:func:`crmkit.checks.as_of_check`). With ``value`` (reports that show
    customer value): orders above the robust outlier cut with their share of
    sales (:func:`crmkit.checks.amount_outliers`), and amounts that are all
    zero (:func:`crmkit.checks.zero_amounts_check`). A check that is not
    available in this installation is left out.
    """
    from .. import checks

    out = []
    as_of_check = getattr(checks, "as_of_check", None)
    if as_of_check is not None:
        out.append(as_of_check(con, as_of, lang))
    if value:
        zero = getattr(checks, "zero_amounts_check", None)
        if zero is not None:
            out.append(zero(con, as_of, lang))
        outliers = getattr(checks, "amount_outliers", None)
        if outliers is not None:
            found = outliers(con, as_of)
            out.append(found.sentence(lang) if found is not None else None)
    return [s for s in out if s]
