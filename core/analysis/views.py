"""Tables the pages show: run overviews, live progress, comparison frames and totals."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

import core.costs.pricing as pricing
from core.backends.platforms import platform_label
from core.backends.records import best_value
from core.store import ACTIVE_STATUSES, RunRow, Store

log = logging.getLogger(__name__)

PUBLISHED_SOURCE = "Published study (reference figures, not measured here)"
PUBLISHED_REFERENCE = pd.DataFrame(
    {
        "platform": ["AWS SageMaker", "Vertex AI", "Azure ML"],
        "published_as": ["AWS SageMaker", "GCP AI Platform", "Azure ML"],
        "wall_h": [4.0, 3.5, 4.2],
        "total_cost_usd": [50.0, 45.0, 48.0],
        "best_objective": [0.921, 0.918, 0.919],
        "source": [PUBLISHED_SOURCE] * 3,
    }
)
"""The published study's per-platform figures: a labelled reference, never a measurement."""

PUBLISHED_STATS = pd.DataFrame(
    {
        "Analysis": ["Time to completion", "Accuracy"],
        "F-statistic (df)": ["5.63 (2, 57)", "1.24 (2, 57)"],
        "p-value": ["< 0.01", "> 0.05"],
        "Conclusion": ["Significant", "Not significant"],
    }
)
"""The published study's ANOVA table, for reference only."""


def format_duration(seconds: float | None) -> str:
    """Return '1 h 02 min', '3 min 05 s' or '12 s'."""
    if seconds is None or pd.isna(seconds):
        return "–"
    s = int(round(float(seconds)))
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def goal_of(run: RunRow) -> str:
    """Return the direction of a run's objective: "max" or "min"."""
    return str((run.spec.get("objective") or {}).get("goal", "max"))


def best_completed(run: RunRow, trials: list[Any]) -> float | None:
    """Return the best objective among a run's completed trials (by its goal), or None."""
    return best_value((t.objective for t in trials if t.status == "completed"), goal_of(run))


def _run_elapsed(run: RunRow, now: float | None = None) -> float | None:
    """The run's wall time: the time it was running, not the time it sat stopped."""
    return run.wall_s(now)


def runs_overview(store: Store, *, limit: int = 50, study_id: int | None = None) -> pd.DataFrame:
    """Return the recent runs with status, platform, progress, best objective and cost."""
    rows = []
    study_names = {s.id: s.name for s in store.list_studies()}
    for run in store.list_runs(study_id)[:limit]:
        trials = store.list_trials(run.id)
        done = [t for t in trials if t.status == "completed"]
        best = best_completed(run, trials)
        cost = run.cost_usd
        if cost is None:
            costs = [t.cost_usd for t in trials if t.cost_usd is not None]
            cost = sum(costs) if costs else None
        rows.append(
            {
                "Run": run.id,
                "Study id": run.study_id,
                "Study": study_names.get(run.study_id, str(run.study_id)),
                "Strategy": str(run.spec.get("strategy", "")),
                "Platform": platform_label(run.backend),
                "Instance": run.instance_type or "",
                "Status": run.status_detail or run.status,
                "Trials": f"{len(done)} of {run.max_trials or '?'}",
                "Failed": sum(t.status == "failed" for t in trials),
                "Best objective": best,
                "Elapsed": format_duration(_run_elapsed(run)),
                "Cost (USD)": cost,
            }
        )
    columns = [
        "Run",
        "Study id",
        "Study",
        "Strategy",
        "Platform",
        "Instance",
        "Status",
        "Trials",
        "Failed",
        "Best objective",
        "Elapsed",
        "Cost (USD)",
    ]
    return pd.DataFrame(rows, columns=columns)


@dataclass
class RunProgress:
    """A running run's progress for Monitor."""

    run: RunRow
    done: int
    failed: int
    total: int
    running_trial: int | None
    epoch: int
    epochs: int
    elapsed_s: float | None
    cost_so_far: float | None
    best: float | None

    @property
    def fraction(self) -> float:
        """Trials finished (completed or failed) over the budget, 0–1."""
        return min(1.0, (self.done + self.failed) / self.total) if self.total else 0.0

    @property
    def epoch_fraction(self) -> float:
        """The current trial's epochs over its budget, 0–1."""
        return min(1.0, self.epoch / self.epochs) if self.epochs else 0.0


def run_progress(store: Store, run: RunRow, *, now: float | None = None) -> RunProgress:
    """Return the progress of ``run`` from the store (what the worker or poller wrote)."""
    trials = store.list_trials(run.id)
    done = [t for t in trials if t.status == "completed"]
    running = [t for t in trials if t.status == "running"]
    best = best_completed(run, trials)
    epochs_total = int((run.spec.get("budget") or {}).get("epochs", 0) or 0)
    epoch = 0
    current = running[-1] if running else None
    if current is not None:
        epoch = len(store.list_epochs(current.id))
    cost = run.cost_usd
    if cost is None or run.status in ACTIVE_STATUSES:
        cost = _live_cost(store, run, trials, now)
    return RunProgress(
        run=run,
        done=len(done),
        failed=sum(t.status == "failed" for t in trials),
        total=int(run.max_trials or 0),
        running_trial=None if current is None else current.number,
        epoch=epoch,
        epochs=epochs_total,
        elapsed_s=_run_elapsed(run, now),
        cost_so_far=cost,
        best=best,
    )


def _live_cost(store: Store, run: RunRow, trials: list[Any], now: float | None) -> float | None:
    try:
        price = pricing.run_price(run, store)
        return float(pricing.live_cost(run, trials, price, now))
    except Exception:  # the price catalog is optional for the view
        costs = [t.cost_usd for t in trials if t.cost_usd is not None]
        return sum(costs) if costs else None


def compare_frame(
    store: Store, *, study_id: int | None = None, run_ids: list[int] | None = None
) -> pd.DataFrame:
    """Return the per-trial table for Compare, with a ``platform`` label column."""
    frame = store.trials_frame(study_id=study_id, run_ids=run_ids)
    if frame.empty:
        return frame.assign(platform=pd.Series(dtype=str))
    return frame.assign(platform=frame["backend"].map(platform_label))


def run_totals(store: Store, trials: pd.DataFrame, group: str = "platform") -> pd.DataFrame:
    """Return a row per group: runs, trials, wall time (h), total cost (USD), best objective."""
    if trials.empty:
        return pd.DataFrame(
            columns=[group, "runs", "trials", "wall_h", "total_cost_usd", "best_objective"]
        )
    rows = []
    for key, part in trials.groupby(group, observed=True):
        run_ids = sorted(part["run_id"].unique())
        runs = [store.get_run(int(rid)) for rid in run_ids]
        walls = []
        for run in runs:
            elapsed = _run_elapsed(run)
            if elapsed is None:
                sub = part[part["run_id"] == run.id]
                elapsed = float(pd.to_numeric(sub["duration_s"], errors="coerce").sum())
            walls.append(elapsed)
        goal = goal_of(runs[0]) if runs else "max"
        done = part[part["status"] == "completed"]
        objective = pd.to_numeric(done["objective"], errors="coerce")
        rows.append(
            {
                group: key,
                "runs": len(run_ids),
                "trials": len(done),
                "wall_h": sum(walls) / 3600 / max(1, len(run_ids)),
                "total_cost_usd": float(pd.to_numeric(part["cost_usd"], errors="coerce").sum()),
                "best_objective": objective.max() if goal == "max" else objective.min(),
            }
        )
    return pd.DataFrame(rows)


def with_progress_columns(
    trials: pd.DataFrame, runs: Mapping[int, RunRow] | None = None
) -> pd.DataFrame:
    """Add ``elapsed_s`` (since the run's first trial started) and ``spent_usd`` (cumulative
    cost of the run's finished trials) to the per-trial table, for time- and dollars-to-accuracy.

    With ``runs``, elapsed time counts only the time each run was running: a trial that ended
    after a resume is placed without the time the run sat stopped (RunRow.active_s).
    """
    if trials.empty:
        return trials.assign(elapsed_s=pd.Series(dtype=float), spent_usd=pd.Series(dtype=float))
    out = trials.copy()
    started = pd.to_numeric(out["started_at"], errors="coerce")
    ended = pd.to_numeric(out["ended_at"], errors="coerce")
    first = started.groupby(out["run_id"]).transform("min")
    out["elapsed_s"] = ended - first
    for rid, run in (runs or {}).items():
        mine = out["run_id"] == rid
        if not run.segments or not mine.any():
            continue
        origin = run.active_s(float(first[mine].iloc[0]))
        out.loc[mine, "elapsed_s"] = [
            run.active_s(float(t)) - origin if pd.notna(t) else float("nan") for t in ended[mine]
        ]
    cost = pd.to_numeric(out["cost_usd"], errors="coerce").fillna(0.0)
    order = out.assign(_end=ended, _cost=cost).sort_values(["run_id", "_end"])
    out["spent_usd"] = order.groupby("run_id")["_cost"].cumsum().reindex(out.index)
    return out


def group_columns(runs: list[RunRow]) -> list[str]:
    """Return the columns a comparison can group by: platform first, then the parameters."""
    params: list[str] = []
    for run in runs:
        for item in run.spec.get("space") or []:
            name = f"p_{item.get('name')}"
            if name not in params:
                params.append(name)
    return ["platform", "strategy", "instance_type", "run_id", "study_id", *params]


FREE_COST_NOTE = (
    "The cost charts are empty because local runs cost $0/h by default. Set this machine's "
    "hourly rate in Settings → Platforms → Local; existing local runs are re-costed at it."
)
COST_CHARTS = ("total-cost", "trial-cost", "objective-vs-cost", "dollars-to-accuracy")
"""The Compare charts that need a cost: left out (with :data:`FREE_COST_NOTE`) when all is free."""


def cost_note(trials: pd.DataFrame, runs: Mapping[int, RunRow] | list[RunRow]) -> str | None:
    """:data:`FREE_COST_NOTE` when every recorded cost is $0 and a local run is among ``runs``."""
    rows = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    if trials.empty or not any(r.backend == "local" for r in rows):
        return None
    cost = pd.to_numeric(trials["cost_usd"], errors="coerce").fillna(0.0)
    return FREE_COST_NOTE if bool((cost == 0).all()) else None


def export_csv(frame: pd.DataFrame) -> bytes:
    """A table as CSV bytes for Excel: ISO 8601 UTC timestamps, UTF-8 with a byte order mark.

    Columns named ``*_at`` (epoch seconds in the store) become "2025-01-31T09:00:00Z".
    """
    out = frame.copy()
    for col in [c for c in out.columns if str(c).endswith("_at")]:
        seconds = pd.to_numeric(out[col], errors="coerce")
        stamps = pd.to_datetime(seconds, unit="s", utc=True)
        out[col] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").where(seconds.notna(), "")
    return out.to_csv(index=False).encode("utf-8-sig")
