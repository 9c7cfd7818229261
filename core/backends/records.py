"""One trial record and one epoch record, written by every writer: local, the clouds, CSV import.

A trial's numbers mean the same thing wherever it ran (see README, "one measurement"):

* ``objective`` is the **best epoch** of the objective metric (by the study's goal);
* ``duration_s`` is the trial's training wall time once it has ended, and None while it runs;
* ``billable_s`` is what the platform bills (a cloud's billable seconds; locally the duration);
* ``cost_usd`` is ``billable_s`` x the instance's hourly price x ``instance_count``;
* ``seed`` is the study's seed + the trial's index (``number``, from 0).

The store's writers take these records (``Store.write_trial``, ``Store.add_epoch``) or, for a
partial update, keyword arguments typed by :class:`TrialFields`, so a field a trial does not
have is a type error for mypy and a ``TypeError`` at run time, never an SQL error.

Example:
    >>> record = TrialRecord("7", number=6, status="completed", epochs=(
    ...     EpochRecord(1, {"val_accuracy": 0.5}), EpochRecord(2, {"val_accuracy": 0.8})))
    >>> with_best_objective(record, "val_accuracy", "max").objective
    0.8
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict, cast, get_args

from core.spec.design import config_index

log = logging.getLogger(__name__)

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "stopped"]
"""The statuses a run can have."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
ACTIVE_STATUSES: tuple[RunStatus, ...] = ("queued", "running")
TrialStatus = Literal["running", "completed", "failed", "stopped"]
"""The statuses a trial can have."""
TRIAL_STATUSES: tuple[TrialStatus, ...] = get_args(TrialStatus)
FINISHED_TRIAL_STATUSES: tuple[TrialStatus, ...] = ("completed", "failed", "stopped")
"""A trial in one of these statuses has ended: its duration, cost and epochs are final."""


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch of a trial.

    Attributes:
        epoch: the epoch number, counted from 1.
        metrics: the epoch's metrics under their Keras names (loss, accuracy, val_loss,
            val_accuracy).
        wall_s: seconds the epoch took (or, for a cloud that only knows it, seconds since the
            trial started), when known.
    """

    epoch: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    wall_s: float | None = None


class TrialFields(TypedDict, total=False):
    """The columns of a trial row, for ``Store.upsert_trial(run_id, key, **fields)``."""

    number: int | None
    params: Mapping[str, Any]
    status: TrialStatus
    objective: float | None
    metrics: Mapping[str, Any]
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    billable_s: float | None
    cost_usd: float | None
    seed: int | None
    instance_type: str | None
    error: str | None


TRIAL_FIELDS: frozenset[str] = frozenset(TrialFields.__annotations__)


@dataclass(frozen=True)
class TrialRecord:
    """One trial as a writer knows it, with its epochs.

    Attributes:
        key: the trial's key within its run (KerasTuner's trial id, a training job's name,
            a Vertex trial id, an MLflow run id, a CSV row's id).
        number: the trial's index from 0, when the platform numbers its trials.
        params: the trial's parameters with the spec's types.
        status: running, completed, failed or stopped.
        objective: the best epoch's value of the objective metric.
        metrics: the trial's final metrics (one value each).
        started_at: epoch seconds the trial started.
        ended_at: epoch seconds the trial ended (None while it runs).
        duration_s: training wall seconds (None while it runs).
        billable_s: billed seconds (None while it runs, or when the platform does not say).
        cost_usd: billable_s x price x instance_count, when the price is known.
        seed: the trial's seed (study seed + number).
        instance_type: the machine it ran on.
        instance_count: machines per trial.
        error: why it failed.
        epochs: its finished epochs, in order.
    """

    key: str
    number: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    status: TrialStatus = "running"
    objective: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    billable_s: float | None = None
    cost_usd: float | None = None
    seed: int | None = None
    instance_type: str | None = None
    instance_count: int = 1
    error: str | None = None
    epochs: tuple[EpochRecord, ...] = ()

    @classmethod
    def from_row(cls, row: Any, **changes: Any) -> TrialRecord:
        """A stored trial (a ``TrialRow``) as a record: its key and every trial column, then
        ``changes`` (the epochs, the machines, a cost to measure again...)."""
        values = {name: getattr(row, name) for name in TRIAL_FIELDS}
        return cls(key=row.trial_key, **{**values, **changes})

    @property
    def finished(self) -> bool:
        """True once the trial has ended (completed, failed or stopped)."""
        return self.status in FINISHED_TRIAL_STATUSES

    def fields(self) -> TrialFields:
        """Return the trial row's columns (every one: None clears a stored value)."""
        values = {name: getattr(self, name) for name in TRIAL_FIELDS}
        values.update(params=dict(self.params), metrics=dict(self.metrics))
        return cast(TrialFields, values)


def check_fields(fields: Mapping[str, Any]) -> None:
    """Refuse a trial column that does not exist, as a TypeError naming it.

    Raises:
        TypeError: a name is not a field of :class:`TrialFields`.
    """
    unknown = sorted(set(fields) - TRIAL_FIELDS)
    if unknown:
        raise TypeError(
            f"a trial has no field {', '.join(unknown)}; its fields are "
            f"{', '.join(sorted(TRIAL_FIELDS))}"
        )
    status = fields.get("status")
    if status is not None and status not in TRIAL_STATUSES:
        raise ValueError(f"unknown trial status {status!r}; use one of {', '.join(TRIAL_STATUSES)}")


def best_value(values: Iterable[float | None], goal: str) -> float | None:
    """Return the best finite value (the largest for goal "max", else the smallest), or None."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None
    return max(finite) if goal == "max" else min(finite)


def with_best_objective(record: TrialRecord, metric: str, goal: str) -> TrialRecord:
    """Return ``record`` with its objective set to the best epoch of ``metric``.

    The platform's own figure counts as one more epoch value: it is the best epoch too, as each
    platform's request asks for the best so far (SageMaker's regex and Azure's primary metric
    read the trainer's running best, Vertex AI selects its best measurement, KerasTuner scores
    its best step), and it is all there is when no epoch was read (a CSV import, or a cloud
    whose logs cannot be read or still lag behind).
    """
    values = [e.metrics.get(metric) for e in record.epochs] + [record.objective]
    return replace(record, objective=best_value(values, goal))


def trial_seed(
    study_seed: int, number: int | None, params: Mapping[str, Any] | None = None
) -> int | None:
    """Return a trial's seed: the study's seed + the trial's index (None without an index).

    A same-configurations trial's index is its configuration's (``config_index`` in
    ``params``), so one configuration has one seed on every platform, whatever the order.
    """
    index = config_index(params or {})
    if index is not None:
        return int(study_seed) + index
    return None if number is None else int(study_seed) + int(number)
