"""The Compare page's view: tables, charts and statistics for a chosen set of runs.

Apart from ``core.analysis.views`` (the light tables Home, Launch and Monitor show), because it
needs Altair and the statistics (SciPy), which those pages never load.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from core.analysis import charts
from core.analysis.blocked import design_comparisons
from core.analysis.selection import spec_differences, warmup_warnings
from core.analysis.stats import compare, group_words
from core.analysis.views import (
    COST_CHARTS,
    PUBLISHED_REFERENCE,
    compare_frame,
    cost_note,
    run_totals,
    with_progress_columns,
)
from core.errors import CloudTuneError
from core.store import Store

log = logging.getLogger(__name__)


def single_run_note(totals: pd.DataFrame, group: str) -> str | None:
    """A sentence when some group has one run: its per-run total is one measurement, not a
    sample, so per-run totals are shown but only per-trial values are tested."""
    if totals.empty or "runs" not in totals or int(totals["runs"].min()) >= 2:
        return None
    word, words = group_words(group)
    return (
        f"Time to completion per run is the run's wall time (the mean over a {word}'s runs); "
        f"with one run per {word} it is a single measurement, so the statistics compare "
        f"{words} on the time per trial instead."
    )


@dataclass
class CompareView:
    """Everything the Compare page shows for one selection, built once and cached by the page.

    Attributes:
        trials: every trial of the chosen runs (a row each).
        done: the completed trials.
        totals: a row per group (runs, trials, wall_h, total_cost_usd, best_objective).
        charts: chart name -> Altair chart (cost charts left out when everything was free).
        comparison: the statistics, or None with ``stats_error`` saying why.
        domain: the groups, in the order every chart colours them.
        cost_note: why the cost charts are missing, or None.
        notes: other sentences the page shows (per-run totals, warm-up).
        spec_diff: what differs between the chosen runs' specs.
    """

    trials: pd.DataFrame
    done: pd.DataFrame
    totals: pd.DataFrame
    charts: dict[str, Any]
    comparison: Any = None
    stats_error: str | None = None
    domain: list[str] = field(default_factory=list)
    cost_note: str | None = None
    notes: list[str] = field(default_factory=list)
    spec_diff: Any = None
    blocked: dict[str, Any] = field(default_factory=dict)


def compare_view(
    store: Store,
    run_ids: list[int],
    group: str,
    *,
    alpha: float = 0.05,
    reference: bool = False,
    goal: str = "max",
) -> CompareView:
    """Build the Compare page's tables, charts and statistics for the chosen runs.

    Args:
        store: the result store.
        run_ids: the runs to compare (from one study or several).
        group: the grouping column (platform, strategy, instance_type, a parameter...).
        alpha: the significance level of the statistics.
        reference: overlay the published figures (only when grouping by platform).
        goal: "max" or "min", the objective's direction.
    """
    runs = {int(r): store.get_run(int(r)) for r in run_ids}
    trials = with_progress_columns(compare_frame(store, run_ids=run_ids), runs)
    done = trials[trials["status"] == "completed"] if not trials.empty else trials
    totals = run_totals(store, trials, group)
    domain = charts.group_domain(trials[group]) if not trials.empty else []
    ref = PUBLISHED_REFERENCE if reference and group == "platform" else None
    free = cost_note(trials, runs)
    built: dict[str, Any] = {
        "time-to-completion": charts.run_totals_bar(
            totals, "wall_h", group, reference=ref, domain=domain
        ),
        "total-cost": charts.run_totals_bar(
            totals, "total_cost_usd", group, reference=ref, domain=domain
        ),
        "best-objective": charts.run_totals_bar(
            totals, "best_objective", group, reference=ref, domain=domain
        ),
        "trial-time": charts.metric_distribution(done, "duration_s", group, domain=domain),
        "trial-cost": charts.metric_distribution(done, "cost_usd", group, domain=domain),
        "trial-objective": charts.metric_distribution(done, "objective", group, domain=domain),
        "history": charts.optimisation_history(
            done, "trial", "objective", group, goal, x_title="Trial number", domain=domain
        ),
        "objective-vs-cost": charts.scatter(done, "cost_usd", "objective", group, domain=domain),
        "time-to-accuracy": charts.optimisation_history(
            done, "elapsed_s", "objective", group, goal, x_title="Elapsed time (s)", domain=domain
        ),
        "dollars-to-accuracy": charts.optimisation_history(
            done, "spent_usd", "objective", group, goal, x_title="Money spent (USD)", domain=domain
        ),
    }
    if free:
        for name in COST_CHARTS:
            built.pop(name)
    params = [c for c in done.columns if c.startswith("p_")]
    if params:
        built["parallel-coordinates"] = charts.parallel_coordinates(done, params, "objective")
    view = CompareView(
        trials=trials,
        done=done,
        totals=totals,
        charts=built,
        domain=domain,
        cost_note=free,
        spec_diff=spec_differences(runs.values()),
    )
    view.notes = [n for n in [single_run_note(totals, group)] if n]
    view.notes += warmup_warnings(runs.values())
    metrics = ["duration_s", "objective"] if free else ["duration_s", "cost_usd", "objective"]
    try:
        view.comparison = compare(done, metrics, group=group, alpha=alpha)
    except CloudTuneError as err:
        view.stats_error = str(err)
    view.blocked, why_not = design_comparisons(
        [r.spec for r in runs.values()], done, metrics, group, alpha
    )
    if why_not:
        view.notes.append(why_not)
    return view
