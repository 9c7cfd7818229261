"""The Present page's slides: a study's results one finding per screen, in large type.

Built from the same gathering as the meeting report (:func:`core.analysis.report.load_report`): setup,
time, cost, accuracy, statistics and the best configurations, each with its chart or table and,
when asked for, the published study's figure labelled as a reference.

Example:
    >>> report = load_report(store, study_id)                # doctest: +SKIP
    >>> [s.key for s in slides(report)]                      # doctest: +SKIP
    ['setup', 'time', 'cost', 'accuracy', 'statistics', 'best']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.analysis import charts as ch
from core.analysis.report.gather import REFERENCE_LABEL, TOTALS, StudyReport
from core.analysis.report.html import projector_ready
from core.analysis.report.tables import (
    DetailSection,
    best_table,
    detail_sections,
    fmt_number,
    fmt_usd,
    group_title,
    setup_items,
    space_table,
)
from core.analysis.stats import group_words
from core.analysis.views import PUBLISHED_REFERENCE, PUBLISHED_STATS, format_duration

log = logging.getLogger(__name__)


@dataclass
class Slide:
    """One screen of the presentation: a title, one finding, and what backs it.

    Attributes:
        key: a short id (setup, time, cost, accuracy, statistics, best).
        title: the screen's title.
        finding: the one sentence the screen is about.
        figures: big numbers as (label, value), e.g. a platform and its total cost.
        chart: an Altair chart, or None.
        table: a DataFrame of display strings, or None.
        bullets: extra sentences (conclusions, setup lines).
        reference: a line with the published study's figure, labelled as a reference.
        details: the statistics' readable details (descriptives, checks, post-hoc).
    """

    key: str
    title: str
    finding: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    chart: Any | None = None
    table: pd.DataFrame | None = None
    bullets: list[str] = field(default_factory=list)
    reference: str = ""
    details: list[DetailSection] = field(default_factory=list)


def _metric_finding(report: StudyReport, metric: str, fallback: str) -> str:
    cmp = report.comparison
    if cmp is not None and metric in cmp.metrics and cmp.metrics[metric].conclusion:
        return str(cmp.metrics[metric].conclusion)
    return report.stats_note or fallback


FIGURE_WORDS = {
    "wall_h": "time to completion per run",
    "total_cost_usd": "total cost",
    "best_objective": "best",
}
"""What each slide's big figure is, after the group's name ("random: total cost")."""


def _figures(report: StudyReport, column: str, fmt: Any) -> list[tuple[str, str]]:
    """Big numbers, each labelled with its group and what it measures, its value with a unit."""
    what = FIGURE_WORDS[column]
    if column == "best_objective":
        what = f"best {report.objective_name.lower()}"
    return [(f"{r[report.group]}: {what}", fmt(r[column])) for _, r in report.totals.iterrows()]


def _objective_text(report: StudyReport) -> Any:
    """Accuracies as percentages ("95.1 %"), any other objective as a plain number."""
    if report.objective_name == "Accuracy":
        return lambda v: "–" if pd.isna(v) else f"{float(v):.1%}".replace("%", " %")
    return fmt_number


def _reference_line(column: str) -> str:
    fmt = {
        "wall_h": lambda v: format_duration(v * 3600),
        "total_cost_usd": fmt_usd,
        "best_objective": lambda v: f"{v:.1%}",
    }[column]
    ref = PUBLISHED_REFERENCE
    values = ", ".join(
        f"{p} {fmt(v)}" for p, v in zip(ref["published_as"], ref[column], strict=True)
    )
    return f"{REFERENCE_LABEL}: {values}."


def _metric_slide(report: StudyReport, key: str, metric: str, title: str) -> Slide:
    total = TOTALS[metric]
    fmt = {
        "wall_h": lambda v: format_duration(float(v) * 3600),
        "total_cost_usd": fmt_usd,
        "best_objective": _objective_text(report),
    }[total]
    finding = _metric_finding(report, metric, f"No completed trials with {title.lower()} yet.")
    if metric == "cost_usd" and report.cost_note:
        finding = report.cost_note
    chart = ch.metric_distribution(
        report.done, metric, report.group, title=f"{title} per trial", domain=report.domain
    )
    return Slide(
        key=key,
        title=title,
        finding=finding,
        figures=_figures(report, total, fmt),
        chart=None if metric == "cost_usd" and report.cost_note else projector_ready(chart),
        reference=_reference_line(total) if report.show_reference else "",
    )


def slides(report: StudyReport) -> list[Slide]:
    """The presentation: setup, time, cost, accuracy, statistics, best configurations.

    Args:
        report: what :func:`load_report` gathered.

    Returns:
        Six slides, one finding each.
    """
    groups = report.groups
    who = ", ".join(groups) if groups else "no platform yet"
    setup = Slide(
        key="setup",
        title=report.title,
        finding=f"{len(report.done)} completed trials on {who}.",
        bullets=[f"{k}: {v}" for k, v in setup_items(report)] + report.notes,
        table=space_table(report.study.spec),
    )
    cmp = report.comparison
    stats = Slide(
        key="statistics",
        title="Statistics",
        finding=(
            f"{group_words(report.group)[1].capitalize()} compared at α = {report.alpha:g}."
            if cmp is not None
            else report.stats_note
        ),
        table=cmp.table() if cmp is not None else None,
        bullets=list(cmp.conclusions()) if cmp is not None else [],
        details=detail_sections(cmp, report.group, report.alpha),
        reference=(
            f"{REFERENCE_LABEL}: "
            + "; ".join(
                f"{r['Analysis'].lower()} F = {r['F-statistic (df)']}, p {r['p-value']}"
                for _, r in PUBLISHED_STATS.iterrows()
            )
            + "."
            if report.show_reference
            else ""
        ),
    )
    word = "highest" if report.goal == "max" else "lowest"
    best = Slide(
        key="best",
        title="Best configurations",
        finding=(
            f"The trial with the {word} {report.objective_name.lower()} on each "
            f"{group_title(report.group).lower()}."
        ),
        table=best_table(report),
    )
    return [
        setup,
        _metric_slide(report, "time", "duration_s", "Time"),
        _metric_slide(report, "cost", "cost_usd", "Cost"),
        _metric_slide(report, "accuracy", "objective", report.objective_name),
        stats,
        best,
    ]
