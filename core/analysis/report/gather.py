"""Gathering a study for its report: runs, trials, statistics (StudyReport)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.analysis.stats import Direction, StatsError, compare
from core.analysis.views import (
    compare_frame,
    run_totals,
)
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
