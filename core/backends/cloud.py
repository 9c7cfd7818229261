"""The policy every cloud shares: readiness, price, cost, caps, trial upsert, status.

A comparison across platforms is only as fair as this layer is single. SageMaker, Vertex AI
and Azure ML each subclass :class:`CloudBackendBase` and fill in only what is their own
(KerasTuner's ``BaseTuner.search`` owns the loop the same way):

* ``assess(settings)``: the settings and credentials the cloud needs, and what its APIs say
  about them without spending anything (:class:`Assessment`: problems refuse a launch, notes
  say what could not be checked); ``check`` returns its problems;
* ``submit(spec, run, settings)``: upload and create the job, return :class:`Submitted`;
* ``read_job(run, spec, known)``: describe the job and read its trials back as
  :class:`~core.backends.records.TrialRecord` (:class:`JobReport`);
* ``stop_job(run)``: ask the service to stop the job (a job already ended is not an error);
* ``instance_count(settings)``: machines per trial (default 1).

Everything else is here, the same for the three: the launch (readiness check, the status
write, "cancelled before submission"), the run's spec, the price (``pricing.run_price`` from
the machine each trial actually ran on, then the ``price_per_hour`` setting), each trial's
measurement (objective = best epoch, seed = study seed + index, duration = training wall time
once ended and None while running, billable time, cost = billable x price x machines), the
diff against the store and the upsert with epochs, one budget rule for both caps with one
sentence (``pricing.next_trial_would_exceed``), and the run's status and times (the job's own
start and end where the service gives them).

Example:
    >>> class MyCloud(CloudBackendBase):
    ...     name, label = "mycloud", "My Cloud"
    ...     def submit(self, spec, run, settings): ...
    ...     def read_job(self, run, spec, known): ...
    ...     def stop_job(self, run): ...
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.base import Forecast, PollResult
from core.backends.records import (
    ACTIVE_STATUSES,
    RunStatus,
    TrialRecord,
    trial_seed,
    with_best_objective,
)
from core.costs.forecasting import forecast
from core.costs.pricing import (
    BUDGET_STOP_DETAIL,
    billable_seconds,
    next_trial_would_exceed,
    run_price,
    trial_cost,
)
from core.errors import BackendError, BackendNotReady, CloudTuneError, SpecError
from core.spec import StudySpec, parse_spec
from core.spec.design import recorded_params

if TYPE_CHECKING:
    from core.store import RunRow, Store, TrialRow

log = logging.getLogger(__name__)

ENDED_BY_SERVICE = ("cancelled", "stopped")
"""Service states that end a job we stopped: the run then says why (budget or user)."""
CANCEL_DETAIL = "cancelled by the user"
BEFORE_SUBMISSION = "cancelled before submission"


@dataclass
class Assessment:
    """What a readiness check found.

    Attributes:
        problems: what stops a launch, a sentence each with the fix ([] when ready).
        notes: what could not be checked (no permission to look, the service unreachable)
            or is worth knowing, a sentence each; they never refuse a launch.
    """

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Assessment) -> Assessment:
        """Add ``other``'s problems and notes to this one's; return self."""
        self.problems.extend(other.problems)
        self.notes.extend(other.notes)
        return self


@dataclass
class Submitted:
    """What a cloud's ``submit`` created.

    Attributes:
        handle: the job's name (stored on the run; polling resumes from it).
        instance_type: the machine the trials run on, as the service will use it.
        settings: settings to store on the run (e.g. a generated job name), or None.
    """

    handle: str
    instance_type: str | None = None
    settings: Mapping[str, Any] | None = None


@dataclass
class JobReport:
    """One read of a cloud job.

    Attributes:
        status: the run status the job's state maps to.
        detail: a sentence about the state, or None.
        error: the job's failure, as a sentence, when it failed.
        trials: the trials read back (a cloud may leave out finished ones it knows unchanged).
        started_at: when the service started the job (None: unknown).
        ended_at: when the service ended it (None: running, or unknown).
    """

    status: RunStatus
    detail: str | None = None
    error: str | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    started_at: float | None = None
    ended_at: float | None = None


def run_spec(run: RunRow) -> StudySpec | None:
    """Return the run's spec, or None when it is not a full spec (e.g. a bare import)."""
    if not run.spec or "space" not in run.spec:
        return None
    try:
        return parse_spec(dict(run.spec))
    except SpecError:
        return None


class CloudBackendBase:
    """The shared launch, poll, cancel and measurement of the three cloud backends.

    Args:
        store: the result store the poller writes trials to.
        clock: the time source (seconds), for budget caps and running trials.
    """

    name = "cloud"
    label = "a cloud"

    def __init__(self, store: Store, *, clock: Any = None) -> None:
        self.store = store
        self._clock = clock or time.time

    # ------------------------------------------------------------------ a cloud's own
    def check(self, settings: Mapping[str, Any]) -> list[str]:
        """Return what is missing before a launch can work, a sentence each; [] when ready."""
        return self.assess(settings).problems

    def assess(self, settings: Mapping[str, Any]) -> Assessment:
        """Return what stops a launch and what could not be checked (no money spent)."""
        raise NotImplementedError

    def submit(self, spec: StudySpec, run: RunRow, settings: dict[str, Any]) -> Submitted:
        """Upload what the job needs and create it; return its handle (without waiting)."""
        raise NotImplementedError

    def read_job(self, run: RunRow, spec: StudySpec | None, known: Mapping[str, Any]) -> JobReport:
        """Describe the job and read its trials (``known``: the stored trials by key)."""
        raise NotImplementedError

    def stop_job(self, run: RunRow) -> None:
        """Ask the service to stop the job; one that already ended is not an error."""
        raise NotImplementedError

    def instance_count(self, settings: Mapping[str, Any]) -> int:
        """Return how many machines one trial runs on."""
        return 1

    def training_image(self, settings: Mapping[str, Any]) -> str | None:
        """Return the image (or environment) trials run in; None where none applies."""
        return None

    def image_notes(self, settings: Mapping[str, Any]) -> list[str]:
        """Return what the Launch page says about the training image (refusals, warnings first).

        Its end of availability (assets/containers.json) and, for CloudTune's own image, the
        command that builds and pushes it.
        """
        image = self.training_image(settings)
        return [] if image is None else containers.notes(self.name, image, settings)

    def launch_settings(self, run: RunRow) -> dict[str, Any]:
        """Return the settings a launch uses (a cloud may overlay stored defaults)."""
        return dict(run.settings)

    # ------------------------------------------------------------------ shared
    def estimate(self, spec: StudySpec, settings: Mapping[str, Any]) -> Forecast:
        """Return the time and cost forecast (core.costs.forecasting: the catalog and history)."""
        return forecast(self.name, spec, settings, self.store)

    def launch(self, spec: StudySpec, run: RunRow) -> str:
        """Check readiness, submit the job and return its handle at once.

        Raises:
            BackendNotReady: credentials or settings are missing.
            SpecError: the space cannot be expressed on this cloud.
            BackendError: the cloud refused.
        """
        settings = self.launch_settings(run)
        problems = self.check(settings)
        if problems:
            raise BackendNotReady(
                f"{self.label} is not ready: " + " ".join(problems), problems=problems
            )
        done = self.submit(spec, run, settings)
        instance = done.instance_type or run.instance_type  # what the service runs on wins
        self.store.update_run(run.id, handle=done.handle, instance_type=instance)
        if done.settings is not None:
            self.store.update_run(run.id, settings=done.settings)
        self.store.set_run_status(run.id, "running", detail=f"submitted to {self.label}")
        return done.handle

    def cancel(self, run: RunRow) -> None:
        """Stop the job; finished trials stay in the store, stopped ones are read once more."""
        if not run.handle:
            self.store.set_run_status(run.id, "cancelled", detail=BEFORE_SUBMISSION)
            return
        self.stop_job(run)
        self.store.update_run(run.id, status_detail=CANCEL_DETAIL)
        self.poll(self.store.get_run(run.id))

    def poll(self, run: RunRow) -> PollResult:
        """Read the job and its trials into the store, apply the caps, write the status.

        Works from the job's name stored on the run alone, so monitoring resumes after a
        restart.

        Raises:
            BackendError: the run has no job, or the cloud cannot be read.
        """
        if not run.handle:
            raise BackendError(
                f"Run {run.id} has no {self.label} job yet; launch it, or import a job with "
                f"`python -m core import-job NAME --backend {self.name}`."
            )
        spec = run_spec(run)
        known = {t.trial_key: t for t in self.store.list_trials(run.id)}
        try:
            report = self.read_job(run, spec, known)
        except CloudTuneError as err:  # the sentence goes up; the log keeps the provider's error
            log.warning("polling run %s on %s failed: %s", run.id, self.label, err, exc_info=err)
            raise
        price = functools.cache(lambda instance: self.price(run, instance))  # one lookup a poll
        written = self.write_trials(run, spec, report.trials, known, price)
        if report.started_at is not None and run.started_at != report.started_at:
            self.store.update_run(run.id, started_at=report.started_at)
        run = self.store.get_run(run.id)
        trials = self.store.list_trials(run.id)
        status, detail = self._outcome(run, report)
        cost = self.run_cost(run, trials, price)
        if status in ACTIVE_STATUSES and spec is not None:
            stop = self.budget_stop(run, spec, trials, cost, price)
            if stop is not None:
                log.info("run %s: %s", run.id, stop)
                self.stop_job(run)
                detail = stop
        self.store.update_run(run.id, cost_usd=cost)
        self._write_status(run, status, detail, report)
        return PollResult(status=status, detail=detail, new_trials=written, error=report.error)

    def _outcome(self, run: RunRow, report: JobReport) -> tuple[RunStatus, str | None]:
        """The run's status and detail: the service's, told apart from our own stops."""
        ours = run.status_detail or ""
        budget = ours.startswith(BUDGET_STOP_DETAIL)
        if budget and report.status in ACTIVE_STATUSES:
            return "running", ours
        if budget and report.status in (*ENDED_BY_SERVICE, "completed"):
            return "stopped", ours
        if ours.startswith(("cancelling", CANCEL_DETAIL)) and report.status in ACTIVE_STATUSES:
            return "running", f"cancelling: waiting for {self.label} to stop the trials"
        if ours.startswith(("cancelling", CANCEL_DETAIL)) and report.status in ENDED_BY_SERVICE:
            return "cancelled", CANCEL_DETAIL
        return report.status, report.detail

    def _write_status(
        self, run: RunRow, status: RunStatus, detail: str | None, report: JobReport
    ) -> None:
        ended = report.ended_at if status not in ACTIVE_STATUSES else None
        changed = (status, detail) != (run.status, run.status_detail)
        if changed or (report.error is not None and report.error != run.error):
            self.store.set_run_status(run.id, status, detail=detail, error=report.error, at=ended)
        if status not in ACTIVE_STATUSES and report.started_at is not None:
            # the job's own times replace the ones seen when polling (update_run moves the span)
            if ended is None:
                self.store.update_run(run.id, started_at=report.started_at)
            else:
                self.store.update_run(run.id, started_at=report.started_at, ended_at=ended)

    # ------------------------------------------------------------------ measurement
    def price(self, run: RunRow, instance_type: str | None) -> float | None:
        """Return $/hour of one machine a trial ran on: the catalog, else ``price_per_hour``."""
        return run_price(run, self.store, instance_type=instance_type)

    def measure(
        self, run: RunRow, spec: StudySpec | None, record: TrialRecord, price: float | None
    ) -> TrialRecord:
        """Return ``record`` measured as every platform measures a trial (module docstring)."""
        if spec is not None:
            record = with_best_objective(record, spec.objective.metric, spec.objective.goal)
            seed = trial_seed(spec.seed, record.number, record.params)
            params = recorded_params(spec, record.params)
            record = replace(record, seed=seed if seed is not None else record.seed, params=params)
        instance = record.instance_type or run.instance_type
        if not record.finished:
            return replace(
                record,
                ended_at=None,
                duration_s=None,
                billable_s=None,
                cost_usd=None,
                instance_type=instance,
            )
        duration = record.duration_s
        if duration is None and record.started_at is not None and record.ended_at is not None:
            duration = max(0.0, record.ended_at - record.started_at)
        billable = record.billable_s if record.billable_s is not None else duration
        cost = None
        if billable is not None and price is not None:
            cost = trial_cost(billable, price * max(1, record.instance_count))
        return replace(
            record, duration_s=duration, billable_s=billable, cost_usd=cost, instance_type=instance
        )

    def write_trials(
        self,
        run: RunRow,
        spec: StudySpec | None,
        records: list[TrialRecord],
        known: Mapping[str, TrialRow],
        price: Callable[[str | None], float | None],
    ) -> int:
        """Measure each record and write the ones that changed; return how many were written.

        ``price(instance_type)`` is :meth:`price` for this run (memoised by the poll).
        """
        counts = self.store.epoch_counts(run.id)
        written = 0
        for raw in records:
            record = self.measure(run, spec, raw, price(raw.instance_type or run.instance_type))
            old = known.get(record.key)
            if old is not None and _unchanged(old, record, counts.get(old.id, 0)):
                continue
            self.store.write_trial(run.id, record)
            written += 1
        return written

    def run_cost(
        self,
        run: RunRow,
        trials: list[TrialRow],
        price: Callable[[str | None], float | None],
    ) -> float | None:
        """Return the run's cost so far: finished trials' costs + running trials' time so far."""
        total: float | None = None
        now = self._clock()
        count = self.instance_count(run.settings)
        for t in trials:
            cost = t.cost_usd
            if cost is None and t.status == "running":
                hourly = price(t.instance_type)
                if hourly is not None:
                    cost = billable_seconds(t, now) * hourly * count / 3600
            if cost is not None:
                total = (total or 0.0) + cost
        return total

    def budget_stop(
        self,
        run: RunRow,
        spec: StudySpec,
        trials: list[TrialRow],
        cost: float | None,
        price: Callable[[str | None], float | None],
    ) -> str | None:
        """Apply the one budget rule (pricing.next_trial_would_exceed); a sentence, or None."""
        budget = spec.budget
        if budget.max_minutes is None and budget.max_cost_usd is None:
            return None
        done = [t.duration_s for t in trials if t.duration_s is not None and t.status != "running"]
        placed = len(trials)
        mean = sum(done) / len(done) if done and placed < budget.max_trials else 0.0
        hourly = price(run.instance_type) or 0.0
        return next_trial_would_exceed(
            budget,
            elapsed_s=run.active_s(self._clock()),
            spent_usd=cost or 0.0,
            mean_trial_s=mean,
            parallel=budget.parallel_trials,
            price_per_hour=hourly * self.instance_count(run.settings),
            billing="per_trial",
        )


def _unchanged(old: TrialRow, new: TrialRecord, stored_epochs: int) -> bool:
    """True when a finished trial's row already says what ``new`` says."""
    return (
        old.status == new.status
        and new.finished
        and old.objective == new.objective
        and old.ended_at == new.ended_at
        and old.cost_usd == new.cost_usd
        and old.seed == new.seed
        and stored_epochs >= len(new.epochs)
    )
