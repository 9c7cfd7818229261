"""The report's tables and formatted figures, shared by the HTML page and the slides."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core.analysis.charts import title_for
from core.analysis.posthoc import fmt_df
from core.analysis.report.gather import MAX_TRIAL_ROWS, StudyReport
from core.analysis.selection import SPEC_FIELDS, budget_text, spec_differences, values_text
from core.analysis.stats import NORMALITY_BAD_P, POSTHOC_TITLES, TEST_TITLES, format_p
from core.analysis.views import (
    PUBLISHED_REFERENCE,
    format_duration,
    platform_label,
)
from core.store import RunRow

log = logging.getLogger(__name__)

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


def when_text(ts: Any) -> str:
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
    """The column header of the grouping column ("Instance type", "Optimizer" for p_optimizer)."""
    return title_for(group)


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
    """The setup of every run as (label, value) lines: what the runs share once, and what
    differs with each run's value (strategy, objective, budget, dataset, space, seed...)."""
    if not report.runs:
        return [*_spec_items(report.study.spec), ("Platforms and instance types", "no runs yet")]
    diff = spec_differences(report.runs)
    items = [(label, value) for label, value in diff.same if label != "Search space"]
    items += [(label, values_text(values)) for label, _k, values in diff.differs]
    platforms = sorted(
        {
            f"{platform_label(r.backend)} ({r.instance_type})"
            if r.instance_type
            else platform_label(r.backend)
            for r in report.runs
        }
    )
    runs = ", ".join(str(r.id) for r in report.runs)
    return [("Runs", runs), *items, ("Platforms and instance types", "; ".join(platforms))]


def _spec_items(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """A single spec's setup lines (a study with no runs yet)."""
    return [
        (label, text(spec))
        for label, (_key, text) in SPEC_FIELDS.items()
        if label != "Search space"
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
    """One row per run: study, platform, instance type, strategy, dataset, epochs, status,
    trials, start, wall time and cost."""
    dataset_text = SPEC_FIELDS["Dataset"][1]
    rows = []
    for run in report.runs:
        part = report.trials[report.trials["run_id"] == run.id] if len(report.trials) else None
        done = 0 if part is None else int((part["status"] == "completed").sum())
        wall, cost = _run_actuals(run, report.trials)
        rows.append(
            [
                str(run.id),
                str(run.study_id),
                platform_label(run.backend),
                run.instance_type or "–",
                str(run.spec.get("strategy", "–")),
                dataset_text(run.spec),
                budget_text(run.spec),
                run.status,
                f"{done} of {run.max_trials or '?'}",
                when_text(run.started_at),
                format_duration(wall),
                fmt_usd(cost),
            ]
        )
    columns = ["Run", "Study", "Platform", "Instance type", "Strategy", "Dataset", "Budget"]
    columns += ["Status", "Completed trials"]
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
            when_text(r["started_at"]),
        ]
        for _, r in frame.head(limit).iterrows()
    ]
    return pd.DataFrame(rows, columns=columns)


def descriptives_table(report: StudyReport) -> pd.DataFrame:
    """Per metric and group: n, mean, sd, median, min, max and the confidence interval."""
    return descriptives_frame(report.comparison, report.group, report.alpha)


def descriptives_frame(cmp: Any, group: str, alpha: float) -> pd.DataFrame:
    """A comparison's descriptives as display strings (see :func:`descriptives_table`)."""
    level = f"{1 - alpha:.0%} CI of the mean"
    columns = ["Metric", group_title(group), "n", "Mean", "SD", "Median", "Min", "Max"]
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
            _reading(r["note"], r["p"], m.alpha),
        ]
        for _, r in m.shapiro.iterrows()
    ]
    return pd.DataFrame(rows, columns=["Group", "n", "W", "p", "Reading"])


def _reading(note: Any, p: Any, alpha: float) -> str:
    """What one Shapiro–Wilk row says: its note where the test was not run, else the verdict.

    A missing note can be None or NaN (pandas stores text columns with NaN for missing).
    """
    if isinstance(note, str) and note:
        return note
    try:
        x = float(p)
    except (TypeError, ValueError):
        return "not run"
    if not math.isfinite(x):
        return "not run"
    if x < NORMALITY_BAD_P:
        return "far from normal"
    return "mild departure from normal" if x < alpha else "no departure from normal"


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
    try:
        return format_p(float(p), alpha)
    except (TypeError, ValueError):
        return "n/a"


def spread_sentence(m: Any) -> str:
    """Levene's and Brown–Forsythe's tests of equal spread, in one sentence."""
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


# ----------------------------------------------------------------------------- details


@dataclass
class DetailSection:
    """One block of the statistics' details: a heading, a sentence and a table of strings."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None


def tests_frame(m: Any) -> pd.DataFrame:
    """One metric's tests, readable: Test | Statistic (df) | p | Effect size | Reading.

    The chosen test is marked "(used)"; the equal-spread tests read "similar" or "differs".
    """
    rows = []
    effects = {
        "anova": lambda r: f"η² = {fmt_number(r.eta_sq, 3)}, ω² = {fmt_number(r.omega_sq, 3)}",
        "welch": lambda r: "–",
        "kruskal": lambda r: f"ε² = {fmt_number(r.epsilon_sq, 3)}",
    }
    for name in ("anova", "welch", "kruskal"):
        res = getattr(m, name, None)
        if res is None:
            continue
        title = TEST_TITLES[name] + (" (used)" if name == m.chosen_test else "")
        verdict = "significant" if res.p < m.alpha else "not significant"
        rows.append([title, res.text(), _p_text(res.p, m.alpha), effects[name](res), verdict])
    for title, res in (
        ("Levene (spread)", m.levene),
        ("Brown–Forsythe (spread)", m.brown_forsythe),
    ):
        if res is None:
            continue
        stat = f"F({fmt_df(res.df_num)}, {fmt_df(res.df_den)}) = {fmt_number(res.statistic, 2)}"
        verdict = "spread differs" if res.p < m.alpha else "spread similar"
        rows.append([title, stat, _p_text(res.p, m.alpha), "–", verdict])
    return pd.DataFrame(rows, columns=["Test", "Statistic (df)", "p", "Effect size", "Reading"])


def detail_sections(cmp: Any, group: str, alpha: float) -> list[DetailSection]:
    """The statistics' details as readable sections, the same on Compare, Present and in the
    report: descriptives, then per metric the normality checks, the tests and the post-hoc.

    Args:
        cmp: a :class:`core.analysis.stats.Comparison` (None gives no sections).
        group: its grouping column.
        alpha: its significance level.

    Returns:
        Sections whose tables hold display strings only (no internal names, no None).
    """
    if cmp is None:
        return []
    out = [
        DetailSection(
            "Descriptive statistics",
            f"{1 - alpha:.0%} confidence interval of the mean.",
            descriptives_frame(cmp, group, alpha),
        )
    ]
    for m in cmp.metrics.values():
        out.append(DetailSection(m.info.name, m.choice_reason or m.conclusion))
        if m.shapiro is not None and not m.shapiro.empty:
            out.append(
                DetailSection("Normality within each group (Shapiro–Wilk)", "", shapiro_frame(m))
            )
        tests = tests_frame(m)
        if not tests.empty:
            out.append(DetailSection("Tests", spread_sentence(m), tests))
        if m.posthoc is not None:
            title = POSTHOC_TITLES.get(m.posthoc_name or "", "Post-hoc")
            what = "mean-rank difference" if m.posthoc_name == "dunn" else "difference of means"
            out.append(
                DetailSection(f"Post-hoc comparisons: {title} ({what})", "", posthoc_frame(m))
            )
    return out
