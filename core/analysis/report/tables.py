"""The report's tables and formatted figures, shared by the HTML page and the slides."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from core.analysis.posthoc import fmt_df
from core.analysis.report.gather import MAX_TRIAL_ROWS, StudyReport
from core.analysis.stats import format_p
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
                when_text(run.started_at),
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
            when_text(r["started_at"]),
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
