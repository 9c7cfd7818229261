"""CLI: list studies and runs, export trials, import trials from CSV or a cloud job."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from core.backends.base import get_backend
from core.cli.specs import parse_settings
from core.errors import BackendError, CloudTuneError
from core.runs import check_liveness
from core.store import Store
from core.store.csv_import import import_csv_as_run

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add studies, runs, trials, import and import-job."""
    p = sub.add_parser("studies", help="list studies")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_studies)

    p = sub.add_parser("runs", help="list runs (of one study)")
    p.add_argument("--study", help="a study id or name")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("trials", help="export the trials of a run")
    p.add_argument("run", type=int, help="the run id")
    p.add_argument("--format", choices=["table", "csv", "json"], default="csv")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=cmd_trials)

    p = sub.add_parser(
        "import", help="load trials exported elsewhere (CSV, a row per trial) into a run"
    )
    p.add_argument("csv", help="the CSV file")
    p.add_argument("--run", type=int, help="add to this run (default: a new run)")
    p.add_argument("--study", help="study id or name for a new run (default: a new study)")
    p.add_argument("--backend", default="local", help="backend of a new run (default local)")
    p.add_argument("--name", help="name of a new study (default: the file's name)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("import-job", help="attach a finished cloud tuning job to a new run")
    p.add_argument("job", help="the job's name (Azure, SageMaker) or resource name (Vertex)")
    p.add_argument("--backend", required=True, choices=["sagemaker", "vertex", "azure"])
    p.add_argument("--study", help="study id or name to add the run to (default: a new one)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend setting for this run (e.g. region=us-east-1); repeatable",
    )
    p.set_defaults(func=cmd_import_job)


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _emit(frame: Any, fmt: str, out: str | None = None) -> None:
    if fmt == "csv":
        text = frame.to_csv(index=False)
    elif fmt == "json":
        text = frame.to_json(orient="records", indent=2)
    else:
        text = frame.to_string(index=False) if len(frame) else "(none)"
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_studies(args: argparse.Namespace) -> int:
    """List studies."""
    import pandas as pd

    store = Store(args.db)
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "strategy": s.spec.get("strategy"),
            "dataset": (s.spec.get("dataset") or {}).get("name"),
            "created": _when(s.created_at),
            "runs": len(store.list_runs(s.id)),
        }
        for s in store.list_studies()
    ]
    _emit(pd.DataFrame(rows), args.format)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs."""
    import pandas as pd

    store = Store(args.db)
    study_id = store.get_study(args.study).id if args.study else None
    check_liveness(store)
    rows = []
    for r in store.list_runs(study_id):
        counts = store.count_trials(r.id)
        rows.append(
            {
                "id": r.id,
                "study": r.study_id,
                "backend": r.backend,
                "instance": r.instance_type or "",
                "status": r.status_detail or r.status,
                "trials": f"{counts.get('completed', 0)}/{r.max_trials or '?'}",
                "failed": counts.get("failed", 0),
                "started": _when(r.started_at),
                "ended": _when(r.ended_at),
                "cost_usd": r.cost_usd,
            }
        )
    _emit(pd.DataFrame(rows), args.format)
    return 0


def cmd_trials(args: argparse.Namespace) -> int:
    """Export a run's trials."""
    store = Store(args.db)
    check_liveness(store, [store.get_run(args.run)])
    frame = store.trials_frame(run_ids=[args.run])
    _emit(frame, args.format, args.out)
    if args.out:
        print(f"{len(frame)} trials written to {args.out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import trials from CSV; bad rows reported by line, good rows kept, all in one go."""
    store = Store(args.db)
    if args.run is not None:
        run_id = store.get_run(args.run).id
        report = store.import_trials_csv(run_id, args.csv)
    else:
        study_id = store.get_study(args.study).id if args.study else None
        run_id, report = import_csv_as_run(
            store, args.csv, study_id=study_id, name=args.name, backend=args.backend
        )
    plural = "s" if report.added != 1 else ""
    print(f"imported {report.added} trial{plural} into run {run_id} ({report.summary()})")
    for _line, message in report.errors:
        print(f"  skipped {message}")
    return 1 if report.errors else 0


def cmd_import_job(args: argparse.Namespace) -> int:
    """Attach a cloud job to a new run and read its trials; on any error the run is failed."""
    store = Store(args.db)
    settings = store.settings_with_prefix(f"{args.backend}.")
    settings.update(parse_settings(args.set))
    backend: Any = get_backend(args.backend, store)
    study_id = (
        store.get_study(args.study).id
        if args.study
        else store.create_study({"name": f"imported {args.job}", "space": []})
    )
    run_id = store.create_run(study_id, args.backend, settings=settings, spec={"name": args.job})
    try:
        result = backend.import_job(args.job, store.get_run(run_id))
    except BaseException as err:
        reason = _import_failure(args.job, backend, err)
        error = str(reason) or "The import was interrupted."
        store.set_run_status(run_id, "failed", error=error, detail="import failed")
        if reason is err:
            raise
        raise reason from err
    counts = store.count_trials(run_id)
    print(
        json.dumps(
            {"run": run_id, "status": result.status, "trials": counts, "detail": result.detail}
        )
    )
    return 0


def _import_failure(job: str, backend: Any, err: BaseException) -> BaseException:
    """The error to report for a failed import-job: ours as it is, anything else as a sentence."""
    if isinstance(err, CloudTuneError | KeyboardInterrupt | SystemExit):
        return err
    log.warning("import-job %s failed", job, exc_info=err)
    return BackendError(
        f"Importing the {backend.label} job {job} failed: {type(err).__name__}: {err}. "
        "Check the job's name and the settings, then import it again."
    )
