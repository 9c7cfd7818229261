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

from core.analysis.report.gather import StudyReport, load_report
from core.analysis.report.html import (
    build_report,
    inline_svg,
    render_html,
    report_file_name,
    write_report,
)

__all__ = [
    "StudyReport",
    "build_report",
    "inline_svg",
    "load_report",
    "render_html",
    "report_file_name",
    "write_report",
]
