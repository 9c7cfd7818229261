"""The meeting report: a study's results as one offline HTML file (slides: ``core.analysis.report.slides``).

One gathering step (:func:`load_report`) reads the store once and computes the comparison;
:func:`build_report` turns it into a self-contained HTML page (charts as inline SVG rendered
offline by vl-convert, no script, no external URL, print CSS for Save as PDF), and
:func:`core.analysis.report.slides.slides` into one-finding-per-screen slides for the Present page. The
published study's figures appear only when asked for, and always under a "reference, not
measured here" label.

Example:
    >>> html_text = build_report(store, study_id)              # doctest: +SKIP
    >>> write_report(store, "published-study", "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

from core.analysis.report.gather import (
    MAX_TRIAL_ROWS,
    METRICS,
    REFERENCE_LABEL,
    TOTALS,
    StudyReport,
    load_report,
)
from core.analysis.report.html import (
    CSS,
    build_report,
    charts,
    frame_html,
    inline_svg,
    print_ready,
    projector_ready,
    render_html,
    report_file_name,
    write_report,
)
from core.analysis.report.tables import (
    best_table,
    descriptives_table,
    fmt_number,
    fmt_usd,
    forecast_table,
    group_title,
    posthoc_frame,
    reference_totals,
    runs_table,
    setup_items,
    shapiro_frame,
    space_table,
    spread_sentence,
    totals_table,
    trials_table,
)

__all__ = [
    "CSS",
    "MAX_TRIAL_ROWS",
    "METRICS",
    "REFERENCE_LABEL",
    "StudyReport",
    "TOTALS",
    "best_table",
    "build_report",
    "charts",
    "descriptives_table",
    "fmt_number",
    "fmt_usd",
    "forecast_table",
    "frame_html",
    "group_title",
    "inline_svg",
    "load_report",
    "posthoc_frame",
    "print_ready",
    "projector_ready",
    "reference_totals",
    "render_html",
    "report_file_name",
    "runs_table",
    "setup_items",
    "shapiro_frame",
    "space_table",
    "spread_sentence",
    "totals_table",
    "trials_table",
    "write_report",
]
