"""The report as one self-contained HTML page: inline SVG charts, tables, print CSS."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pandas as pd

from core.analysis import charts as ch
from core.analysis.charts import chart_svg
from core.analysis.report.gather import (
    MAX_TRIAL_ROWS,
    METRICS,
    REFERENCE_LABEL,
    TOTALS,
    StudyReport,
    load_report,
)
from core.analysis.report.tables import (
    best_table,
    descriptives_table,
    detail_sections,
    forecast_table,
    group_title,
    reference_totals,
    runs_table,
    setup_items,
    space_table,
    totals_table,
    trials_table,
    when_text,
)
from core.analysis.stats import group_words
from core.analysis.views import (
    PUBLISHED_REFERENCE,
    PUBLISHED_SOURCE,
    PUBLISHED_STATS,
)
from core.errors import CloudTuneError
from core.store import Store

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- charts


def charts(report: StudyReport) -> list[tuple[str, str, Any]]:
    """The report's charts as (key, caption, Altair chart): per-trial distributions, then totals."""
    out: list[tuple[str, str, Any]] = []
    names = {"duration_s": "Time", "cost_usd": "Cost", "objective": report.objective_name}
    domain = report.domain
    metrics = [m for m in METRICS if not (m == "cost_usd" and report.cost_note)]
    for metric in metrics:
        title = f"{names[metric]} per trial"
        chart = ch.metric_distribution(
            report.done, metric, report.group, title=title, domain=domain
        )
        out.append((metric, f"{title}: box from quartiles, one dot a trial.", chart))
    reference = None
    if report.show_reference:
        reference = PUBLISHED_REFERENCE
    for metric in metrics:
        total = TOTALS[metric]
        chart = ch.run_totals_bar(
            report.totals, total, report.group, reference=reference, domain=domain
        )
        caption = f"{ch.title_for(total)} per {group_title(report.group).lower()}."
        if metric == "objective":
            caption = (
                f"Best {report.objective_name.lower()} per {group_title(report.group).lower()}."
            )
        if reference is not None:
            caption += f" Hollow diamonds: {REFERENCE_LABEL.lower()}."
        out.append((total, caption, chart))
    return out


def inline_svg(svg: str, prefix: str) -> str:
    """Make a vl-convert SVG safe to inline next to others: prefixed ids, no XML prologue.

    Args:
        svg: the SVG text.
        prefix: a prefix unique to this chart within the page.

    Returns:
        The SVG element's text.
    """
    svg = re.sub(r"<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>\s*", "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)


def print_ready(chart: Any, width: int = 260) -> Any:
    """A chart sized for a third of a page, with readable type and no legend.

    Every report chart names its groups on the y axis, so the colour legend only repeats them.
    """
    return (
        chart.properties(width=width)
        .configure_legend(disable=True)
        .configure_axis(labelFontSize=12, titleFontSize=12)
        .configure_title(fontSize=14)
    )


def projector_ready(chart: Any) -> Any:
    """A chart with large type and bands, readable from the back of a meeting room."""
    import altair as alt

    if isinstance(chart, alt.LayerChart):  # a distribution: one band per group
        chart = chart.properties(height=alt.Step(64))
    return (
        chart.configure_legend(disable=True)
        .configure_axis(labelFontSize=16, titleFontSize=17, labelLimit=320)
        .configure_title(fontSize=20)
    )


def _figure(key: str, caption: str, chart: Any, index: int) -> str:
    """One chart as a <figure> with inline SVG (or a sentence if it cannot be drawn)."""
    try:
        body = inline_svg(chart_svg(print_ready(chart)), f"c{index}")
    except Exception as err:  # noqa: BLE001 - a chart that fails must not sink the report
        body = f'<p class="note">This chart could not be drawn ({_e(type(err).__name__)}).</p>'
    return (
        f'<figure class="chart" id="chart-{_e(key)}">{body}'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


# ----------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def frame_html(frame: pd.DataFrame, cls: str = "") -> str:
    """A DataFrame of display strings as an escaped HTML table."""
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    if not body:
        body = f'<tr><td colspan="{max(1, len(frame.columns))}">None yet.</td></tr>'
    klass = f' class="{_e(cls)}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list(items: Sequence[str], cls: str = "") -> str:
    if not items:
        return ""
    klass = f' class="{_e(cls)}"' if cls else ""
    return f"<ul{klass}>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def _section(key: str, title: str, body: str, cls: str = "") -> str:
    klass = f' class="{_e(cls)}"' if cls else ""
    return f'<section id="{_e(key)}"{klass}><h2>{_e(title)}</h2>{body}</section>'


def _header(report: StudyReport) -> str:
    n_done, n_all = len(report.done), len(report.trials)
    meta = (
        f"Study {', '.join(str(i) for i in sorted({r.study_id for r in report.runs}) or [report.study.id])} · {n_done} completed trials of {n_all} · grouped by "
        f"{group_title(report.group).lower()} · α = {report.alpha:g} · made "
        f"{when_text(report.generated_at)} by CloudTune"
    )
    toc = [
        ("setup", "Setup"),
        ("charts", "Time, cost and accuracy"),
        ("statistics", "Statistics"),
        ("checks", "Assumption checks and post-hoc comparisons"),
        ("best", "Best configuration"),
        ("forecast", "Forecast against actual"),
        ("trials", "Every trial"),
    ]
    if report.show_reference:
        toc.insert(3, ("reference", "Published study (reference)"))
    links = "".join(f'<li><a href="#{k}">{_e(t)}</a></li>' for k, t in toc)
    return (
        f'<header><h1>{_e(report.title)}</h1><p class="meta">{_e(meta)}</p>'
        f'<nav class="toc"><ol>{links}</ol></nav></header>'
    )


def _setup_html(report: StudyReport) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in setup_items(report))
    return _section(
        "setup",
        "Setup",
        f'<dl class="setup">{items}</dl>'
        + ("<h3>Notes</h3>" + _list(report.notes) if report.notes else "")
        + "<h3>Search space</h3>"
        + frame_html(space_table(report.study.spec))
        + "<h3>Runs</h3>"
        + frame_html(runs_table(report)),
    )


def _charts_html(report: StudyReport) -> str:
    figures = [_figure(k, c, ch, i) for i, (k, c, ch) in enumerate(charts(report))]
    half = len(figures) // 2
    note = f'<p class="note">{_e(report.cost_note)}</p>' if report.cost_note else ""
    body = (
        note + '<div class="charts">' + "".join(figures[:half]) + "</div>"
        "<h3>Totals</h3>"
        + frame_html(totals_table(report))
        + '<div class="charts">'
        + "".join(figures[half:])
        + "</div>"
    )
    return _section("charts", "Time, cost and accuracy", body, "break")


def _statistics_html(report: StudyReport) -> str:
    cmp = report.comparison
    if cmp is None:
        return _section("statistics", "Statistics", f'<p class="note">{_e(report.stats_note)}</p>')
    reasons = [f"{m.info.name}: {m.choice_reason}" for m in cmp.metrics.values() if m.choice_reason]
    body = (
        f'<p class="lead">Each metric compared between {_e(group_words(report.group)[1])} '
        f"over the completed trials, at α = {report.alpha:g}, in the published study's layout.</p>"
        + frame_html(cmp.table(), "stats")
        + "<h3>What it means</h3>"
        + _list(cmp.conclusions(), "conclusions")
        + "<h3>Which test, and why</h3>"
        + _list(reasons)
        + ("<h3>Notes</h3>" + _list(cmp.warnings) if cmp.warnings else "")
        + "<h3>Descriptive statistics</h3>"
        + frame_html(descriptives_table(report))
    )
    return _section("statistics", "Statistics", body, "break")


def _blocked_html(report: StudyReport) -> str:
    """The same-configurations design's blocked comparison, a block a metric."""
    parts = [
        '<p class="lead">Every run trained the same drawn configurations with the same seeds, '
        "so each configuration is a block: these tests compare the groups on the same "
        "configurations, with the configurations' own effect left out.</p>"
    ]
    for result in report.blocked.values():
        parts.append(f"<h3>{_e(result.name)}</h3>" + frame_html(result.table(), "stats"))
        parts.append(_list(result.conclusions, "conclusions"))
        if result.warnings:
            parts.append(_list(result.warnings))
        if not result.paired.empty:
            parts.append(f"<h4>{_e(result.name)}: paired comparisons (Holm-adjusted)</h4>")
            parts.append(frame_html(result.paired_table(), "stats"))
    return _section("blocked", "Same configurations: the blocked comparison", "".join(parts))


def _reference_html(report: StudyReport) -> str:
    body = (
        f'<p class="note">{_e(PUBLISHED_SOURCE)}. These are the figures the original study '
        "published; they are shown for orientation only and are not measurements of this "
        "study.</p>"
        + frame_html(reference_totals(), "reference")
        + frame_html(PUBLISHED_STATS.astype(str), "reference")
    )
    return _section("reference", "Published study (reference)", body, "reference")


def _checks_html(report: StudyReport) -> str:
    parts = []
    for section in detail_sections(report.comparison, report.group, report.alpha)[1:]:
        level = "h4" if section.table is not None else "h3"
        parts.append(f"<{level}>{_e(section.title)}</{level}>")
        if section.text:
            parts.append(f"<p>{_e(section.text)}</p>")
        if section.table is not None:
            parts.append(frame_html(section.table))
    return _section("checks", "Assumption checks and post-hoc comparisons", "".join(parts), "break")


def _best_html(report: StudyReport) -> str:
    word = "highest" if report.goal == "max" else "lowest"
    lead = (
        f"<p>The completed trial with the {word} {_e(report.objective_name.lower())} in each "
        f"{_e(group_title(report.group).lower())}.</p>"
    )
    return _section("best", "Best configuration", lead + frame_html(best_table(report)))


def _forecast_html(report: StudyReport) -> str:
    lead = (
        "<p>The forecast made before each run was launched, against its wall time (end minus "
        "start) and its cost (as billed, or the sum of its trials).</p>"
    )
    return _section(
        "forecast", "Forecast against actual", lead + frame_html(forecast_table(report))
    )


def _trials_html(report: StudyReport) -> str:
    note = ""
    if len(report.trials) > MAX_TRIAL_ROWS:
        note = (
            f'<p class="note">The first {MAX_TRIAL_ROWS} of {len(report.trials)} trials; '
            "`python -m core trials RUN --format csv` exports them all.</p>"
        )
    table = frame_html(trials_table(report), "trials")
    return _section("trials", "Every trial", note + table, "break")


CSS = """
:root { --ink: #1b1b1b; --muted: #555; --rule: #d0d0d0; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 1240px; padding: 24px 28px; background: #fff; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; margin-top: 34px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
h4 { font-size: 14px; margin: 14px 0 4px; color: var(--muted); }
.meta, .note, figcaption { color: var(--muted); }
.note { font-style: italic; }
.toc ol { columns: 2; margin: 8px 0 0; padding-left: 20px; }
a { color: var(--accent); }
dl.setup { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.setup dt { font-weight: 600; }
dl.setup dd { margin: 0; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--rule); padding: 4px 10px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); }
table.stats { font-size: 15px; }
table.stats td:nth-child(2), table.stats td:nth-child(3) { white-space: nowrap; }
table.trials { font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; }
figure.chart { margin: 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; }
figcaption { font-size: 12px; margin-top: 2px; }
ul.conclusions li { margin-bottom: 4px; font-weight: 500; }
section.reference { border: 2px dashed var(--muted); padding: 4px 16px 8px; margin-top: 28px; }
section.reference h2 { border: none; }
@media screen and (max-width: 760px) { .charts { grid-template-columns: 1fr; } }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  .toc { display: none; }
  section.break { break-before: page; page-break-before: always; }
  h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  table { font-size: 9pt; }
  table.trials { font-size: 7.5pt; }
  .charts { grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 8px; }
  figcaption { font-size: 8pt; }
  thead { display: table-header-group; }
  tr, dl, figure, ul { break-inside: avoid; page-break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
"""The report's style sheet: screen layout plus print rules for clean Save-as-PDF pages."""


def render_html(report: StudyReport) -> str:
    """Render gathered report data as one self-contained HTML document.

    Args:
        report: what :func:`load_report` gathered.

    Returns:
        The HTML text: no script, no external resource, charts as inline SVG.
    """
    sections = [
        _header(report),
        _setup_html(report),
        _charts_html(report),
        _statistics_html(report),
    ]
    if report.blocked:
        sections.append(_blocked_html(report))
    if report.show_reference:
        sections.append(_reference_html(report))
    sections += [
        _checks_html(report),
        _best_html(report),
        _forecast_html(report),
        _trials_html(report),
    ]
    title = f"{report.title}: CloudTune report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


class ReportOptions(TypedDict, total=False):
    """The keyword options of :func:`load_report`, which the report writers pass through."""

    run_ids: list[int] | None
    group: str
    alpha: float
    include_reference: bool


def build_report(
    store: Store, study_id: int | None = None, **options: Unpack[ReportOptions]
) -> str:
    """Make the meeting report of a study as one self-contained HTML page.

    Args:
        store: the result store.
        study_id: the study's id (every run of it), unless ``run_ids`` is given.
        **options: as :func:`load_report` (run_ids, group, alpha, include_reference).

    Returns:
        The HTML text (open it offline in any browser; print it to PDF).

    Raises:
        NotFound: no such study.
        StatsError: the grouping column does not exist or alpha is out of range.
    """
    return render_html(load_report(store, study_id, **options))


def report_file_name(study_name: str, study_id: int) -> str:
    """A safe file name for a study's report: ``report-<name>-<id>.html``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-.") or "study"
    return f"report-{slug}-{study_id}.html"


def write_report(
    store: Store, study: int | str, out_path: str | Path, **options: Unpack[ReportOptions]
) -> Path:
    """Write the report of a study (by id or name) to an HTML file.

    Args:
        store: the result store.
        study: the study's id or name (the newest study of that name).
        out_path: the file to write; its folder is created.
        **options: as :func:`load_report` (group, alpha, include_reference).

    Returns:
        The path written.

    Raises:
        NotFound: no such study.
        CloudTuneError: the file cannot be written.
    """
    text = build_report(store, store.get_study(study).id, **options)
    path = Path(out_path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise CloudTuneError(
            f"Cannot write the report to {path}: {err.strerror or err}; choose a folder you "
            "can write to with --out."
        ) from err
    return path
