"""Display pieces for the report notebooks in ``notebooks/``.

The notebooks stay a sequence of calls: analysis modules return DataFrames,
result objects and figures, and this package turns them into what a manager
reads — a title block, translated headings and column names with units, money
in the store's currency with thousands separators, shares in per cent, estimates with their
intervals, personal data masked.

- :mod:`.tables`: the column registry and formatted tables;
- :mod:`.header`: the store, the report period, the report's scope, the title block, filters;
- :mod:`.kpi`: this period against its matched comparison window, growth, rankings;
- :mod:`.value`: the score snapshot a report reads, fitted models, total CLV, scores for the value pyramid;
- :mod:`.campaign`: one campaign's verdict, lifts and totals;
- :mod:`.sections`: sections that step aside with one sentence instead of failing
  the report, and the data warnings at the top of a report.
"""
from __future__ import annotations

from .campaign import (campaign_header_html, campaign_lifts, campaign_overview, campaign_skip_reason,
                       campaign_totals, campaigns_ended, choose_campaign, verdict_html)
from .header import (PERIODS, data_span, days_before, header, header_html, open_store, report_period,
                     report_scope, scope_label, scope_note, scores_line, store_path, unit_filter)
from .kpi import (GROWTH_COLUMNS, HEADLINE_KPIS, kpi_comparison, kpi_row, monthly_growth, plot_growth,
                  plot_ranking, ranking, show_kpi_comparison, show_rankings)
from .tables import (COLUMNS, Col, column_label, format_table, heading, numeric_columns, show_html, show_note,
                     show_table, table_html)
from .sections import (SectionUnavailable, data_warnings, needs, note_html, section, show_notes, show_skipped,
                       show_warnings, skipped_sentence)
from .value import (NO_DROPOUT_P_ALIVE, fit_note, model_caption, no_dropout_note, report_scores, score_run,
                    scoped_scores,
                    show_band_counts, show_score_choice, show_model, show_validation, total_value_html, use_scores)

__all__ = [
    "COLUMNS", "Col", "GROWTH_COLUMNS", "HEADLINE_KPIS", "NO_DROPOUT_P_ALIVE", "PERIODS", "SectionUnavailable",
    "campaign_header_html", "campaign_lifts", "campaign_overview", "campaign_skip_reason", "campaign_totals",
    "campaigns_ended", "data_warnings", "fit_note", "needs", "no_dropout_note", "note_html", "section",
    "show_band_counts", "show_score_choice", "show_notes", "show_skipped", "show_validation", "show_warnings", "skipped_sentence",
    "choose_campaign", "column_label", "data_span", "days_before", "format_table", "header", "header_html",
    "heading", "kpi_comparison", "kpi_row", "model_caption", "monthly_growth", "numeric_columns", "open_store",
    "plot_growth", "plot_ranking", "ranking", "report_period", "report_scope", "report_scores", "score_run",
    "scope_label", "scope_note", "scoped_scores", "scores_line", "show_html", "show_kpi_comparison", "show_rankings",
    "show_model", "show_note",
    "show_table", "store_path", "table_html", "total_value_html", "unit_filter", "use_scores", "verdict_html",
]
