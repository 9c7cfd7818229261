"""Import of trials exported elsewhere, as CSV (a row per trial)."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends.records import (
    TRIAL_STATUSES,
    TrialRecord,
)
from core.errors import StoreError
from core.store.rows import ImportReport

if TYPE_CHECKING:
    from core.store.store import Store

log = logging.getLogger(__name__)


def import_trials_csv(store: Store, run_id: int, path: str | Path) -> ImportReport:
    """Load trials exported elsewhere (a CSV, a row per trial) into a run.

    Recognised columns: trial (or trial_key / TrainingJobName / id), status, objective
    (or FinalObjectiveValue / val_accuracy), duration_s (or TrainingElapsedTimeSeconds),
    billable_s, cost_usd, started_at, ended_at; any other numeric column becomes a
    parameter. Bad rows are reported by line number and good rows kept.

    Raises:
        StoreError: the file cannot be read as CSV.
    """
    report = ImportReport()
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as err:
        raise StoreError(f"Cannot read {path}: {err.strerror}.") from err
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise StoreError(f"{path} is empty: it needs a header row and a row per trial.")
        for line, row in enumerate(reader, start=2):
            try:
                record = _parse_import_row(row, line)
            except ValueError as err:
                report.errors.append((line, str(err)))
                continue
            store.write_trial(run_id, record)
            report.added += 1
    return report


_KEY_COLS = ("trial_key", "trial", "TrainingJobName", "id", "trial_id")
_OBJ_COLS = ("objective", "FinalObjectiveValue", "val_accuracy", "value")
_DUR_COLS = ("duration_s", "TrainingElapsedTimeSeconds", "duration")
_RESERVED = {
    *_KEY_COLS,
    *_OBJ_COLS,
    *_DUR_COLS,
    "status",
    "TrainingJobStatus",
    "billable_s",
    "cost_usd",
    "started_at",
    "ended_at",
    "error",
    "backend",
    "run_id",
    "number",
    "seed",
    "instance_type",
}


def _num(value: str | None, column: str, line: int) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        out = float(value)
    except ValueError as err:
        raise ValueError(f"line {line}: {column} {value!r} is not a number.") from err
    if not math.isfinite(out):
        raise ValueError(f"line {line}: {column} is {value}, not a finite number.")
    return out


def _parse_import_row(row: Mapping[str, str | None], line: int) -> TrialRecord:
    key = next((row[c] for c in _KEY_COLS if row.get(c)), None)
    if not key:
        raise ValueError(f"line {line}: no trial id (a column named trial or trial_key).")
    obj_col = next((c for c in _OBJ_COLS if c in row), None)
    dur_col = next((c for c in _DUR_COLS if c in row), None)
    objective = _num(row.get(obj_col) if obj_col else None, obj_col or "objective", line)
    status = (row.get("status") or row.get("TrainingJobStatus") or "completed").lower()
    status = {"succeeded": "completed", "complete": "completed", "stopped": "stopped"}.get(
        status, status
    )
    if status not in TRIAL_STATUSES:
        raise ValueError(
            f"line {line}: status {status!r} is not one of {', '.join(TRIAL_STATUSES)}."
        )
    if status == "completed" and objective is None:
        raise ValueError(f"line {line}: a completed trial needs an objective value.")
    params: dict[str, Any] = {}
    for col, value in row.items():
        if col is None or col in _RESERVED or value is None or value == "":
            continue
        name = col[2:] if col.startswith("p_") else col
        try:
            number = float(value)
            params[name] = int(number) if number.is_integer() and "." not in value else number
        except ValueError:
            params[name] = value
    seed = _num(row.get("seed"), "seed", line)
    return TrialRecord(
        key=str(key),
        params=params,
        status=next(s for s in TRIAL_STATUSES if s == status),
        objective=objective,
        metrics={"objective": objective} if objective is not None else {},
        started_at=_num(row.get("started_at"), "started_at", line),
        ended_at=_num(row.get("ended_at"), "ended_at", line),
        duration_s=_num(row.get(dur_col) if dur_col else None, dur_col or "duration_s", line),
        billable_s=_num(row.get("billable_s"), "billable_s", line),
        cost_usd=_num(row.get("cost_usd"), "cost_usd", line),
        seed=None if seed is None else int(seed),
        instance_type=row.get("instance_type") or None,
    )
