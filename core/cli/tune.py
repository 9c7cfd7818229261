"""`python -m core tune|status|cancel|resume|export-model`: run a study and follow it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, TextIO

from core.analysis.views import best_completed
from core.backends.base import BACKENDS
from core.backends.local.backend import export_best_model
from core.cli.args import run_command
from core.cli.specs import parse_settings
from core.errors import BackendError
from core.runs import cancel_run, refresh_run, resume_run, start_run
from core.spec import StudySpec
from core.spec.design import same_configurations
from core.store import ACTIVE_STATUSES, RunRow, Store

log = logging.getLogger(__name__)

POLL_S = 1.0
"""Seconds between two looks at a followed run."""

BAR_WIDTH = 20


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the tune, status, cancel, resume and export-model sub-commands.

    Args:
        sub: The CLI's sub-parser collection.
    """
    p = sub.add_parser(
        "tune",
        help="run a study on a backend (local: KerasTuner on this machine)",
        description="Check, forecast and launch a study spec, then show its progress "
        "(Ctrl-C cancels the run; --detach leaves it running in the background).",
    )
    p.add_argument("spec", help="the study spec (.json, .yaml)")
    p.add_argument("--backend", default="local", choices=list(BACKENDS), help="default: local")
    p.add_argument("--detach", action="store_true", help="start the run and return at once")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend setting for this run (e.g. threads=2); repeatable",
    )
    p.add_argument("--study", help="add the run to this study (id or name) instead of a new one")
    p.add_argument(
        "--same-configurations",
        type=int,
        metavar="N",
        help="the fair platform benchmark: train the same N configurations, drawn once from "
        "the spec's seed, on this and every other platform launched the same way",
    )
    p.set_defaults(func=cmd_tune)

    p = run_command(sub, "status", "show a run's status, trials and best result", cmd_status)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    run_command(sub, "cancel", "stop a run; its completed trials stay", cmd_cancel)
    run_command(
        sub,
        "resume",
        "continue a run whose workers died (or were stopped)",
        cmd_resume,
        detach="restart it and return at once",
    )
    p = run_command(sub, "export-model", "save the best model of a local run as .keras", cmd_export)
    p.add_argument("dest", nargs="?", help="a .keras file or a folder (or use --out)")
    p.add_argument("--out", help="a .keras file or a folder (default: the current folder)")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="train the best configuration again when its weights are not on this machine",
    )


# ----------------------------------------------------------------------------- handlers


def cmd_tune(args: argparse.Namespace) -> int:
    """Launch a spec and follow it (or return at once with --detach)."""
    spec = StudySpec.load(args.spec)
    if args.same_configurations is not None:
        spec = same_configurations(spec, args.same_configurations)
    store = Store(args.db)
    settings = store.settings_with_prefix(f"{args.backend}.")
    settings.update(parse_settings(args.set))
    study_id = store.get_study(args.study).id if args.study else None
    run_id = start_run(store, spec, args.backend, settings=settings, study_id=study_id)
    print(
        f"run {run_id}: {spec.name} on {BACKENDS[args.backend]} ({spec.budget.max_trials} trials)"
    )
    if args.detach:
        print(f"follow it with `python -m core status {run_id}`")
        return 0
    return follow(store, run_id)


def cmd_status(args: argparse.Namespace) -> int:
    """Print a run's status (polling its backend first when it is active)."""
    store = Store(args.db)
    refresh_run(store, args.run, force=True)  # one question, asked now
    summary = run_summary(store, store.get_run(args.run))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        for key, value in summary.items():
            if value not in (None, ""):
                print(f"{key:>12}: {value}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a run."""
    store = Store(args.db)
    cancel_run(store, args.run)
    run = store.get_run(args.run)
    done = store.count_trials(run.id).get("completed", 0)
    print(f"run {run.id} {run.status}; {done} completed trial(s) kept")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a run and follow it (or return at once with --detach)."""
    store = Store(args.db)
    resume_run(store, args.run)
    done = store.count_trials(args.run).get("completed", 0)
    print(f"run {args.run} resumed with {done} completed trial(s) kept")
    if args.detach:
        return 0
    return follow(store, args.run)


def cmd_export(args: argparse.Namespace) -> int:
    """Export the best model of a local run."""
    store = Store(args.db)
    run = store.get_run(args.run)
    if run.backend != "local":
        raise BackendError(
            f"Run {run.id} ran on {BACKENDS.get(run.backend, run.backend)}; its models are in "
            "that platform's storage. export-model saves the models of local runs."
        )
    dest = args.out or args.dest or "."
    path = export_best_model(store, run.id, dest, retrain=args.retrain)
    print(f"saved {path}")
    return 0


# ----------------------------------------------------------------------------- progress


def follow(store: Store, run_id: int, *, out: TextIO | None = None, every_s: float = POLL_S) -> int:
    """Show a run's progress until it ends; Ctrl-C cancels it.

    Returns:
        0 when the run completed or stopped at its budget, 1 when it failed or was cancelled,
        130 after Ctrl-C.
    """
    stream = out or sys.stdout
    tty = stream.isatty()
    last = ""
    try:
        while True:
            result = refresh_run(store, run_id)
            line = progress_line(store, store.get_run(run_id))
            if tty:
                stream.write("\r" + line.ljust(len(last)))
            elif line != last:
                stream.write(line + "\n")
            stream.flush()
            last = line
            if result.status not in ACTIVE_STATUSES:
                break
            time.sleep(every_s)
    except KeyboardInterrupt:
        cancel_run(store, run_id)
        stream.write(
            f"\ncancelled run {run_id}; completed trials are kept "
            f"(`python -m core resume {run_id}` continues it)\n"
        )
        return 130
    if tty:
        stream.write("\n")
    run = store.get_run(run_id)
    stream.write(final_line(store, run) + "\n")
    return 0 if run.status in ("completed", "stopped") else 1


def best_objective(store: Store, run: RunRow) -> float | None:
    """Return the run's best objective among completed trials (as the app shows it), or None."""
    return best_completed(run, store.list_trials(run.id))


def progress_line(store: Store, run: RunRow, now: float | None = None) -> str:
    """One line: a bar of trials done of total, the current trial's epoch, best so far."""
    trials = store.list_trials(run.id)
    done = sum(t.status in ("completed", "failed") for t in trials)
    total = run.max_trials or max(done, 1)
    filled = min(BAR_WIDTH, round(BAR_WIDTH * done / max(total, 1)))
    parts = [f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total} trials"]
    running = [t for t in trials if t.status == "running"]
    if running:
        current = running[-1]
        epochs = len(store.list_epochs(current.id))
        planned = current.metrics.get("epochs_planned") or run.spec.get("budget", {}).get("epochs")
        number = current.number + 1 if current.number is not None else current.trial_key
        extra = f" (+{len(running) - 1} more)" if len(running) > 1 else ""
        parts.append(f"trial {number} epoch {epochs}/{planned}{extra}")
    best = best_objective(store, run)
    metric = run.spec.get("objective", {}).get("metric", "objective")
    parts.append(f"best {metric} {best:.4f}" if best is not None else f"best {metric} -")
    parts.append(_clock(_elapsed(run, now)))
    parts.append(run.status)
    return " | ".join(parts)


def final_line(store: Store, run: RunRow) -> str:
    """The sentence printed when a followed run ends."""
    counts = store.count_trials(run.id)
    text = (
        f"run {run.id} {run.status}: {counts.get('completed', 0)} completed, "
        f"{counts.get('failed', 0)} failed trial(s)"
    )
    best = best_objective(store, run)
    if best is not None:
        text += f"; best {run.spec.get('objective', {}).get('metric', 'objective')} {best:.4f}"
    if run.status_detail and run.status not in ("completed", "failed"):
        text += f" ({run.status_detail})"
    if run.error:
        text += f"\n{run.error}"
    return text


def run_summary(store: Store, run: RunRow) -> dict[str, Any]:
    """Return what `status` prints about a run."""
    counts = store.count_trials(run.id)
    trials = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"
    best = best_objective(store, run)
    log = None
    if run.handle:
        try:
            log = json.loads(run.handle).get("log")
        except (ValueError, AttributeError):
            log = None
    return {
        "run": run.id,
        "study": store.get_study(run.study_id).name,
        "backend": BACKENDS.get(run.backend, run.backend),
        "status": run.status,
        "detail": run.status_detail,
        "trials": f"{trials} (of {run.max_trials})",
        "best": None if best is None else round(best, 6),
        "elapsed": _clock(_elapsed(run)),
        "cost_usd": None if run.cost_usd is None else round(run.cost_usd, 4),
        "handle": run.handle,
        "log": log,
        "error": run.error,
    }


def _elapsed(run: RunRow, now: float | None = None) -> float:
    return run.wall_s(now) or 0.0


def _clock(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
