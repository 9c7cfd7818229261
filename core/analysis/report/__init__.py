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

import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.analysis.views import (
    PUBLISHED_REFERENCE,
    PUBLISHED_SOURCE,
    PUBLISHED_STATS,
    compare_frame,
    format_duration,
    platform_label,
    run_totals,
)
from core.errors import CloudTuneError
from core.store import RunRow, Store, StudyRow

METRICS = ("duration_s", "cost_usd", "objective")
"""The per-trial metrics compared: time, cost and the objective (accuracy)."""
TOTALS = {"duration_s": "wall_h", "cost_usd": "total_cost_usd", "objective": "best_objective"}
"""The run-level total that goes with each per-trial metric."""
MAX_TRIAL_ROWS = 5000
REFERENCE_LABEL = "Published study: reference figures, not measured here"


# ----------------------------------------------------------------------------- gathering


@dataclass
class StudyReport:
    """Everything the report and the slides show about one study, read once from the store.

    Attributes:
        study: the study row (its spec is the setup).
        runs: its runs, oldest first.
        trials: every trial (a row each) with a ``platform`` column.
        done: the completed trials with a finite objective (what is compared).
        group: the grouping column (platform, strategy, instance_type...).
        alpha: the significance level.
        goal: "max" or "min", the objective's direction.
        objective_name: how the objective is called in titles ("Accuracy", "Val loss").
        totals: a row per group: runs, trials, wall_h, total_cost_usd, best_objective.
        comparison: the statistics (None when nothing can be compared yet).
        stats_note: why there is no comparison, when there is none.
        include_reference: whether the published study's figures are shown as a reference.
        generated_at: when the report was made (epoch seconds).
    """

    study: StudyRow
    runs: list[RunRow]
    trials: pd.DataFrame
    done: pd.DataFrame
    group: str
    alpha: float
    goal: str
    objective_name: str
    totals: pd.DataFrame
    comparison: Any | None
    stats_note: str = ""
    include_reference: bool = False
    generated_at: float = field(default_factory=time.time)

    @property
    def metrics(self) -> list[str]:
        """The metrics with at least one finite value among the completed trials."""
        if self.done.empty:
            return []
        return [
            m
            for m in METRICS
            if m in self.done and pd.to_numeric(self.done[m], errors="coerce").notna().any()
        ]

    @property
    def groups(self) -> list[str]:
        """The group values present, in order of appearance."""
        if self.trials.empty:
            return []
        return [str(g) for g in pd.unique(self.trials[self.group].astype(str))]

    @property
    def show_reference(self) -> bool:
        """True when the published figures are asked for and fit the grouping (platforms)."""
        return self.include_reference and self.group == "platform"


def _objective_words(spec: dict[str, Any]) -> tuple[str, str]:
    """The objective's direction and display name from the spec."""
    objective = spec.get("objective") or {}
    goal = str(objective.get("goal", "max"))
    metric = str(objective.get("metric", "val_accuracy"))
    if goal == "max" and metric in ("val_accuracy", "accuracy"):
        return goal, "Accuracy"
    return goal, metric.replace("_", " ").capitalize()


def _compare(report: StudyReport) -> tuple[Any | None, str]:
    """Run the statistics on the completed trials, or say why they cannot run."""
    from core.analysis.stats import Direction, compare

    metrics = report.metrics
    if report.done.empty or not metrics:
        return None, (
            "No completed trials yet, so there is nothing to compare; finish a run (or import "
            "trials with `python -m core import FILE.csv`) and make the report again."
        )
    direction: Direction = "higher" if report.goal == "max" else "lower"
    return (
        compare(
            report.done,
            metrics,
            group=report.group,
            alpha=report.alpha,
            names={"objective": report.objective_name},
            directions={"objective": direction},
        ),
        "",
    )


def load_report(
    store: Store,
    study_id: int,
    *,
    group: str = "platform",
    alpha: float = 0.05,
    include_reference: bool = False,
) -> StudyReport:
    """Read a study's runs and trials and compute its comparison.

    Args:
        store: the result store.
        study_id: the study's id.
        group: the column the trials are grouped by (platform, strategy, instance_type...).
        alpha: the significance level, 0 < alpha < 1.
        include_reference: show the published study's figures as a labelled reference.

    Returns:
        The gathered report data.

    Raises:
        NotFound: no such study.
        StatsError: the grouping column does not exist or alpha is out of range.
    """
    from core.analysis.stats import StatsError

    study = store.get_study(study_id)
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1 (got {alpha!r}); 0.05 is usual.")
    trials = compare_frame(store, study_id=study.id)
    if not trials.empty and group not in trials.columns:
        raise StatsError(
            f"The grouping column '{group}' is not in the trial table; use one of platform, "
            "backend, instance_type or strategy."
        )
    goal, objective_name = _objective_words(study.spec)
    done = trials
    if not trials.empty:
        objective = pd.to_numeric(trials["objective"], errors="coerce")
        done = trials[(trials["status"] == "completed") & objective.notna()]
    report = StudyReport(
        study=study,
        runs=sorted(store.list_runs(study.id), key=lambda r: r.id),
        trials=trials,
        done=done,
        group=group,
        alpha=alpha,
        goal=goal,
        objective_name=objective_name,
        totals=run_totals(store, trials, group),
        comparison=None,
        include_reference=include_reference,
    )
    report.comparison, report.stats_note = _compare(report)
    return report


# ----------------------------------------------------------------------------- formatting


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant decimals, or an en dash when missing."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–" if value is None else str(value)
    if not math.isfinite(x):
        return "–" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    return f"{x:.{digits}f}"


def fmt_usd(value: Any) -> str:
    """Dollars with cents ("$12.34"), or an en dash."""
    text = fmt_number(value, 2)
    return text if text in ("–", "∞", "−∞") else f"${text}"


def _when(ts: Any) -> str:
    """An epoch timestamp as "2024-05-01 09:00 UTC", or an en dash."""
    try:
        x = float(ts)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(x):
        return "–"
    return datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _param_text(value: Any) -> str:
    """A parameter value: floats to 5 significant digits, the rest as written."""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.5g}"
    return "–" if value is None else str(value)


def group_title(group: str) -> str:
    """The column header of the grouping column."""
    return {"platform": "Platform", "instance_type": "Instance type"}.get(
        group, group.replace("_", " ").capitalize()
    )


def _run_actuals(run: RunRow, trials: pd.DataFrame) -> tuple[float | None, float | None]:
    """A run's actual wall time (ended - started) and cost (its own, else its trials' sum)."""
    wall = run.wall_s() if run.ended_at is not None else None
    cost = run.cost_usd
    if cost is None and not trials.empty:
        mine = pd.to_numeric(trials.loc[trials["run_id"] == run.id, "cost_usd"], errors="coerce")
        cost = float(mine.sum()) if mine.notna().any() else None
    return wall, cost


def _gap(forecast: Any, actual: Any) -> str:
    """The actual's difference from the forecast in percent ("+12 %"), or an en dash."""
    try:
        f, a = float(forecast), float(actual)
    except (TypeError, ValueError):
        return "–"
    if not (math.isfinite(f) and math.isfinite(a)) or f == 0:
        return "–"
    return f"{(a - f) / f * 100:+.0f} %"


def _range(low: Any, high: Any, fmt: Any) -> str:
    """ " (low – high)" when both ends are known."""
    if low is None or high is None:
        return ""
    return f" ({fmt(low)} – {fmt(high)})"


# ----------------------------------------------------------------------------- display tables


def setup_items(report: StudyReport) -> list[tuple[str, str]]:
    """The study's setup as (label, value) lines: strategy, objective, budget, dataset, platforms."""
    spec = report.study.spec
    budget = spec.get("budget") or {}
    dataset = spec.get("dataset") or {}
    objective = spec.get("objective") or {}
    caps = []
    if budget.get("max_minutes") is not None:
        caps.append(f"stop after {budget['max_minutes']:g} min")
    if budget.get("max_cost_usd") is not None:
        caps.append(f"stop before ${budget['max_cost_usd']:g}")
    data_bits = [str(dataset.get("name", "?"))]
    if dataset.get("subset"):
        data_bits.append(f"first {dataset['subset']} examples")
    if dataset.get("validation_split") is not None:
        data_bits.append(f"{float(dataset['validation_split']):.0%} held out for validation")
    if dataset.get("path"):
        data_bits.append(f"from {dataset['path']}")
    platforms = sorted(
        {
            f"{platform_label(r.backend)} ({r.instance_type})"
            if r.instance_type
            else platform_label(r.backend)
            for r in report.runs
        }
    )
    return [
        ("Strategy", str(spec.get("strategy", "?"))),
        (
            "Objective",
            f"{objective.get('goal', 'max')}imise {objective.get('metric', 'val_accuracy')}",
        ),
        (
            "Budget",
            f"{budget.get('max_trials', '?')} trials, {budget.get('parallel_trials', 1)} at a "
            f"time, {budget.get('epochs', '?')} epochs each"
            + (f"; {', '.join(caps)}" if caps else ""),
        ),
        ("Dataset", ", ".join(data_bits)),
        ("Seed", str(spec.get("seed", "–"))),
        ("Platforms and instance types", "; ".join(platforms) if platforms else "no runs yet"),
    ]


def space_table(spec: dict[str, Any]) -> pd.DataFrame:
    """The search space: Parameter | Type | Range or values | Scale."""
    rows = []
    for p in spec.get("space") or []:
        kind = str(p.get("type", "?"))
        if kind in ("float", "int"):
            values = f"{p.get('min')} – {p.get('max')}"
            if p.get("step") is not None:
                values += f", step {p['step']}"
            scale = str(p.get("scale", "linear"))
        elif kind == "choice":
            values, scale = "{" + ", ".join(str(v) for v in p.get("values", [])) + "}", "–"
        else:
            values, scale = str(p.get("value")), "–"
        rows.append([str(p.get("name", "?")), kind, values, scale])
    return pd.DataFrame(rows, columns=["Parameter", "Type", "Range or values", "Scale"])


def runs_table(report: StudyReport) -> pd.DataFrame:
    """One row per run: platform, instance type, strategy, status, trials, start, end, wall."""
    rows = []
    for run in report.runs:
        part = report.trials[report.trials["run_id"] == run.id] if len(report.trials) else None
        done = 0 if part is None else int((part["status"] == "completed").sum())
        wall, cost = _run_actuals(run, report.trials)
        rows.append(
            [
                str(run.id),
                platform_label(run.backend),
                run.instance_type or "–",
                str(run.spec.get("strategy", "–")),
                run.status,
                f"{done} of {run.max_trials or '?'}",
                _when(run.started_at),
                format_duration(wall),
                fmt_usd(cost),
            ]
        )
    columns = ["Run", "Platform", "Instance type", "Strategy", "Status", "Completed trials"]
    return pd.DataFrame(rows, columns=[*columns, "Started", "Wall time", "Cost"])


def totals_table(report: StudyReport) -> pd.DataFrame:
    """A row per group: runs, completed trials, wall time per run, total cost, best objective."""
    rows = [
        [
            str(r[report.group]),
            str(int(r["runs"])),
            str(int(r["trials"])),
            format_duration(float(r["wall_h"]) * 3600),
            fmt_usd(r["total_cost_usd"]),
            fmt_number(r["best_objective"]),
        ]
        for _, r in report.totals.iterrows()
    ]
    columns = [group_title(report.group), "Runs", "Completed trials", "Wall time per run"]
    return pd.DataFrame(rows, columns=[*columns, "Total cost", f"Best {report.objective_name}"])


def best_table(report: StudyReport) -> pd.DataFrame:
    """The best completed trial of each group, with its configuration, time and cost."""
    params = [c for c in report.trials.columns if str(c).startswith("p_")]
    head = [group_title(report.group), "Run", "Trial", report.objective_name]
    columns = [*head, *[p[2:] for p in params], "Time", "Cost"]
    if report.done.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, part in report.done.groupby(report.group, sort=False, observed=True):
        objective = pd.to_numeric(part["objective"], errors="coerce")
        best = part.loc[objective.idxmax() if report.goal == "max" else objective.idxmin()]
        rows.append(
            [
                str(key),
                str(best["run_id"]),
                _param_text(best["trial"]),
                fmt_number(best["objective"]),
                *[_param_text(best[p]) for p in params],
                format_duration(best["duration_s"]),
                fmt_usd(best["cost_usd"]),
            ]
        )
    return pd.DataFrame(rows, columns=columns)


def forecast_table(report: StudyReport) -> pd.DataFrame:
    """Each run's forecast of time and cost against what it took ("no forecast" when absent)."""
    rows = []
    for run in report.runs:
        wall, cost = _run_actuals(run, report.trials)
        fc = run.forecast or {}
        label = f"{platform_label(run.backend)} (run {run.id})"
        if not fc:
            rows.append([label, "no forecast", format_duration(wall), "–", "no forecast"])
            rows[-1] += [fmt_usd(cost), "–"]
            continue
        f_wall, f_cost = fc.get("expected_wall_s"), fc.get("expected_cost_usd")
        rows.append(
            [
                label,
                format_duration(f_wall)
                + _range(fc.get("low_wall_s"), fc.get("high_wall_s"), format_duration),
                format_duration(wall),
                _gap(f_wall, wall),
                fmt_usd(f_cost) + _range(fc.get("low_cost_usd"), fc.get("high_cost_usd"), fmt_usd),
                fmt_usd(cost),
                _gap(f_cost, cost),
            ]
        )
    columns = ["Run", "Forecast time", "Actual time", "Time vs forecast"]
    return pd.DataFrame(
        rows, columns=[*columns, "Forecast cost", "Actual cost", "Cost vs forecast"]
    )


def trials_table(report: StudyReport, limit: int = MAX_TRIAL_ROWS) -> pd.DataFrame:
    """Every trial (up to ``limit``): group, run, trial, status, objective, time, cost, params."""
    params = [c for c in report.trials.columns if str(c).startswith("p_")]
    head = [group_title(report.group), "Run", "Trial", "Status", report.objective_name]
    columns = [*head, "Time", "Billable", "Cost", *[p[2:] for p in params], "Started"]
    if report.trials.empty:
        return pd.DataFrame(columns=columns)
    frame = report.trials.sort_values([report.group, "run_id", "trial"], kind="stable")
    rows = [
        [
            str(r[report.group]),
            str(r["run_id"]),
            _param_text(r["trial"]),
            str(r["status"]),
            fmt_number(r["objective"]),
            format_duration(r["duration_s"]),
            format_duration(r["billable_s"]),
            fmt_usd(r["cost_usd"]),
            *[_param_text(r[p]) for p in params],
            _when(r["started_at"]),
        ]
        for _, r in frame.head(limit).iterrows()
    ]
    return pd.DataFrame(rows, columns=columns)


def descriptives_table(report: StudyReport) -> pd.DataFrame:
    """Per metric and group: n, mean, sd, median, min, max and the confidence interval."""
    cmp = report.comparison
    level = f"{1 - report.alpha:.0%} CI of the mean"
    columns = ["Metric", group_title(report.group), "n", "Mean", "SD", "Median", "Min", "Max"]
    if cmp is None:
        return pd.DataFrame(columns=[*columns, level])
    rows = []
    for m in cmp.metrics.values():
        for _, d in m.descriptives.iterrows():
            fmt = (lambda v: fmt_number(v, 1)) if m.metric == "duration_s" else fmt_number
            rows.append(
                [
                    m.info.name + (" (s)" if m.metric == "duration_s" else ""),
                    str(d["label"]),
                    str(int(d["n"])),
                    *[fmt(d[k]) for k in ("mean", "sd", "median", "min", "max")],
                    f"{fmt(d['ci_low'])} – {fmt(d['ci_high'])}",
                ]
            )
    return pd.DataFrame(rows, columns=[*columns, level])


def shapiro_frame(m: Any) -> pd.DataFrame:
    """One metric's Shapiro–Wilk checks: group, n, W, p and a note where it was not run."""
    rows = [
        [
            str(r["label"]),
            str(int(r["n"])),
            fmt_number(r["W"], 3),
            _p_text(r["p"], m.alpha),
            r["note"] or ("departs from normal" if r["p"] < m.alpha else "normal enough"),
        ]
        for _, r in m.shapiro.iterrows()
    ]
    return pd.DataFrame(rows, columns=["Group", "n", "W", "p", "Reading"])


def posthoc_frame(m: Any) -> pd.DataFrame:
    """One metric's chosen post-hoc comparisons: pair, difference, interval, adjusted p."""
    ph = m.posthoc
    columns = ["Pair", "Difference", "Interval", "Adjusted p", "Significant"]
    if ph is None or ph.empty:
        return pd.DataFrame(columns=columns)
    fmt = (lambda v: fmt_number(v, 1)) if m.metric == "duration_s" else fmt_number
    rows = [
        [
            f"{r['label2']} − {r['label1']}",
            fmt(r["diff"]),
            "–" if pd.isna(r["ci_low"]) else f"{fmt(r['ci_low'])} – {fmt(r['ci_high'])}",
            _p_text(r["p_adj"], m.alpha),
            "yes" if bool(r["significant"]) else "no",
        ]
        for _, r in ph.iterrows()
    ]
    return pd.DataFrame(rows, columns=columns)


def _p_text(p: Any, alpha: float) -> str:
    from core.analysis.stats import format_p

    try:
        return format_p(float(p), alpha)
    except (TypeError, ValueError):
        return "n/a"


def spread_sentence(m: Any) -> str:
    """Levene's and Brown–Forsythe's tests of equal spread, in one sentence."""
    from core.analysis.posthoc import fmt_df

    bits = []
    for title, res in (("Levene", m.levene), ("Brown–Forsythe", m.brown_forsythe)):
        if res is None:
            continue
        p = _p_text(res.p, m.alpha)
        p = p if p.startswith(("<", ">")) else f"= {p}"
        bits.append(
            f"{title} F({fmt_df(res.df_num)}, {fmt_df(res.df_den)}) = "
            f"{fmt_number(res.statistic, 2)}, p {p}"
        )
    return "Equal spread: " + "; ".join(bits) + "." if bits else "Equal spread: not tested."


def reference_totals() -> pd.DataFrame:
    """The published study's per-platform figures, formatted, labelled as a reference."""
    ref = PUBLISHED_REFERENCE
    return pd.DataFrame(
        {
            "Platform (as published)": ref["published_as"],
            "Time to completion": [format_duration(h * 3600) for h in ref["wall_h"]],
            "Total cost": [fmt_usd(c) for c in ref["total_cost_usd"]],
            "Best accuracy": [f"{a:.1%}" for a in ref["best_objective"]],
        }
    )


# ----------------------------------------------------------------------------- charts


def charts(report: StudyReport) -> list[tuple[str, str, Any]]:
    """The report's charts as (key, caption, Altair chart): per-trial distributions, then totals."""
    from core.analysis import charts as ch

    out: list[tuple[str, str, Any]] = []
    names = {"duration_s": "Time", "cost_usd": "Cost", "objective": report.objective_name}
    for metric in METRICS:
        title = f"{names[metric]} per trial"
        chart = ch.metric_distribution(report.done, metric, report.group, title=title)
        out.append((metric, f"{title}: box from quartiles, one dot a trial.", chart))
    reference = None
    if report.show_reference:
        reference = PUBLISHED_REFERENCE
    for metric in METRICS:
        total = TOTALS[metric]
        chart = ch.run_totals_bar(report.totals, total, report.group, reference=reference)
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
    from core.analysis.charts import chart_svg

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
        f"Study {report.study.id} · {n_done} completed trials of {n_all} · grouped by "
        f"{group_title(report.group).lower()} · α = {report.alpha:g} · made "
        f"{_when(report.generated_at)} by CloudTune"
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
        f'<header><h1>{_e(report.study.name)}</h1><p class="meta">{_e(meta)}</p>'
        f'<nav class="toc"><ol>{links}</ol></nav></header>'
    )


def _setup_html(report: StudyReport) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in setup_items(report))
    return _section(
        "setup",
        "Setup",
        f'<dl class="setup">{items}</dl><h3>Search space</h3>'
        + frame_html(space_table(report.study.spec))
        + "<h3>Runs</h3>"
        + frame_html(runs_table(report)),
    )


def _charts_html(report: StudyReport) -> str:
    figures = [_figure(k, c, ch, i) for i, (k, c, ch) in enumerate(charts(report))]
    body = (
        '<div class="charts">' + "".join(figures[:3]) + "</div>"
        "<h3>Totals</h3>"
        + frame_html(totals_table(report))
        + '<div class="charts">'
        + "".join(figures[3:])
        + "</div>"
    )
    return _section("charts", "Time, cost and accuracy", body, "break")


def _statistics_html(report: StudyReport) -> str:
    cmp = report.comparison
    if cmp is None:
        return _section("statistics", "Statistics", f'<p class="note">{_e(report.stats_note)}</p>')
    reasons = [f"{m.info.name}: {m.choice_reason}" for m in cmp.metrics.values() if m.choice_reason]
    body = (
        f'<p class="lead">Each metric compared between {_e(group_title(report.group).lower())}s '
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
    from core.analysis.stats import POSTHOC_TITLES

    cmp = report.comparison
    if cmp is None:
        return _section("checks", "Assumption checks and post-hoc comparisons", "")
    parts = []
    for m in cmp.metrics.values():
        parts.append(f"<h3>{_e(m.info.name)}</h3>")
        if m.shapiro is not None and not m.shapiro.empty:
            parts.append("<h4>Normality within each group (Shapiro–Wilk)</h4>")
            parts.append(frame_html(shapiro_frame(m)))
        parts.append(f"<p>{_e(spread_sentence(m))}</p>")
        if m.choice_reason:
            parts.append(f"<p>{_e(m.choice_reason)}</p>")
        if m.posthoc is not None:
            title = POSTHOC_TITLES.get(m.posthoc_name or "", "Post-hoc")
            what = "mean-rank difference" if m.posthoc_name == "dunn" else "difference of means"
            parts.append(f"<h4>Post-hoc comparisons: {_e(title)} ({_e(what)})</h4>")
            parts.append(frame_html(posthoc_frame(m)))
        elif m.conclusion:
            parts.append(f'<p class="note">{_e(m.conclusion)}</p>')
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
    if report.show_reference:
        sections.append(_reference_html(report))
    sections += [
        _checks_html(report),
        _best_html(report),
        _forecast_html(report),
        _trials_html(report),
    ]
    title = f"{report.study.name}: CloudTune report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )


def build_report(
    store: Store,
    study_id: int,
    *,
    group: str = "platform",
    alpha: float = 0.05,
    include_reference: bool = False,
) -> str:
    """Make the meeting report of a study as one self-contained HTML page.

    Args:
        store: the result store.
        study_id: the study's id.
        group: the grouping column (platform, strategy, instance_type...).
        alpha: the significance level.
        include_reference: add the published study's figures as a labelled reference.

    Returns:
        The HTML text (open it offline in any browser; print it to PDF).

    Raises:
        NotFound: no such study.
        StatsError: the grouping column does not exist or alpha is out of range.
    """
    report = load_report(
        store, study_id, group=group, alpha=alpha, include_reference=include_reference
    )
    return render_html(report)


def report_file_name(study_name: str, study_id: int) -> str:
    """A safe file name for a study's report: ``report-<name>-<id>.html``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study_name).strip("-.") or "study"
    return f"report-{slug}-{study_id}.html"


def write_report(
    store: Store,
    study: int | str,
    out_path: str | Path,
    *,
    group: str = "platform",
    alpha: float = 0.05,
    include_reference: bool = False,
) -> Path:
    """Write the report of a study (by id or name) to an HTML file.

    Args:
        store: the result store.
        study: the study's id or name (the newest study of that name).
        out_path: the file to write; its folder is created.
        group: the grouping column.
        alpha: the significance level.
        include_reference: add the published study's figures as a labelled reference.

    Returns:
        The path written.

    Raises:
        NotFound: no such study.
        CloudTuneError: the file cannot be written.
    """
    row = store.get_study(study)
    text = build_report(
        store, row.id, group=group, alpha=alpha, include_reference=include_reference
    )
    path = Path(out_path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise CloudTuneError(
            f"Cannot write the report to {path}: {err.strerror or err}; choose a folder you "
            "can write to with --out."
        ) from None
    return path
