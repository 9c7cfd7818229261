"""Gathering a study for its report: runs, trials, statistics (StudyReport)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.analysis.blocked import design_comparisons
from core.analysis.charts import group_domain
from core.analysis.comparison import single_run_note
from core.analysis.selection import spec_differences, warmup_warnings
from core.analysis.stats import Direction, StatsError, compare
from core.analysis.views import compare_frame, cost_note, run_totals
from core.store import RunRow, Store, StudyRow

log = logging.getLogger(__name__)

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
        cost_note: why cost is not compared (every run free at $0/h), or "".
        notes: other sentences for the reader (runs outside the study, warm-up, spec
            differences).
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
    cost_note: str = ""
    notes: list[str] = field(default_factory=list)
    blocked: dict[str, Any] = field(default_factory=dict)
    generated_at: float = field(default_factory=time.time)

    @property
    def title(self) -> str:
        """The study's name, or what the chosen runs come from when they span studies."""
        studies = sorted({r.study_id for r in self.runs})
        if len(studies) <= 1:
            return self.study.name
        return f"{len(self.runs)} runs from studies " + ", ".join(str(s) for s in studies)

    @property
    def metrics(self) -> list[str]:
        """The metrics with at least one finite value among the completed trials."""
        if self.done.empty:
            return []
        return [
            m
            for m in METRICS
            if m in self.done
            and pd.to_numeric(self.done[m], errors="coerce").notna().any()
            and not (m == "cost_usd" and self.cost_note)
        ]

    @property
    def groups(self) -> list[str]:
        """The group values present, in order of appearance."""
        if self.trials.empty:
            return []
        return [str(g) for g in pd.unique(self.trials[self.group].astype(str))]

    @property
    def domain(self) -> list[str]:
        """The groups in the order every chart colours them (the same as Compare's)."""
        return group_domain(self.trials[self.group]) if not self.trials.empty else []

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
    study_id: int | None = None,
    *,
    run_ids: list[int] | None = None,
    group: str = "platform",
    alpha: float = 0.05,
    include_reference: bool = False,
) -> StudyReport:
    """Read a study's runs (or any chosen runs) and trials and compute their comparison.

    Args:
        store: the result store.
        study_id: the study's id (every run of it), unless ``run_ids`` is given.
        run_ids: the runs to report on, from one study or several (the newest one's study
            names the report).
        group: the column the trials are grouped by (platform, strategy, instance_type...).
        alpha: the significance level, 0 < alpha < 1.
        include_reference: show the published study's figures as a labelled reference.

    Returns:
        The gathered report data.

    Raises:
        NotFound: no such study or run.
        StatsError: the grouping column does not exist, alpha is out of range, or neither a
            study nor runs were given.
    """

    if not 0 < alpha < 1:
        raise StatsError(f"alpha must be between 0 and 1 (got {alpha!r}); 0.05 is usual.")
    if run_ids:
        runs = sorted((store.get_run(int(r)) for r in set(run_ids)), key=lambda r: r.id)
        study = store.get_study(max(r.study_id for r in runs))
        trials = compare_frame(store, run_ids=[r.id for r in runs])
    elif study_id is not None:
        study = store.get_study(study_id)
        runs = sorted(store.list_runs(study.id), key=lambda r: r.id)
        trials = compare_frame(store, study_id=study.id)
    else:
        raise StatsError("Name a study (its id or name) or the runs to report on.")
    if not trials.empty and group not in trials.columns:
        raise StatsError(
            f"The grouping column '{group}' is not in the trial table; use one of platform, "
            "strategy, instance_type, run_id, study_id or a parameter (p_learning_rate...)."
        )
    goal, objective_name = _objective_words(runs[0].spec if runs else study.spec)
    done = trials
    if not trials.empty:
        objective = pd.to_numeric(trials["objective"], errors="coerce")
        done = trials[(trials["status"] == "completed") & objective.notna()]
    totals = run_totals(store, trials, group)
    diff = spec_differences(runs)
    notes = [*diff.warnings, *diff.lines, *warmup_warnings(runs)]
    single = single_run_note(totals, group)
    report = StudyReport(
        study=study,
        runs=runs,
        trials=trials,
        done=done,
        group=group,
        alpha=alpha,
        goal=goal,
        objective_name=objective_name,
        totals=totals,
        comparison=None,
        include_reference=include_reference,
        cost_note=cost_note(trials, runs) or "",
        notes=[*notes, *([single] if single else [])],
    )
    report.comparison, report.stats_note = _compare(report)
    report.blocked, why_not = design_comparisons(
        [r.spec for r in runs], done, report.metrics, group, alpha
    )
    if why_not:
        report.notes.append(why_not)
    return report
