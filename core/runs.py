"""Starting, refreshing, cancelling and resuming runs: what the CLI and the pages call."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from core.backends.base import BACKENDS, Backend, Forecast, PollResult, get_backend
from core.backends.cloud import Assessment, CloudBackendBase
from core.backends.local.backend import LocalBackend
from core.costs.forecasting import cached_calibration
from core.costs.pricing import forecast_error
from core.errors import BackendError, BackendNotReady, CloudTuneError
from core.spec import StudySpec
from core.store import ACTIVE_STATUSES, RunRow, Store

log = logging.getLogger(__name__)


def start_run(
    store: Store,
    spec: StudySpec,
    backend_name: str,
    *,
    settings: Mapping[str, Any] | None = None,
    instance_type: str | None = None,
    study_id: int | None = None,
    backend_kwargs: Mapping[str, Any] | None = None,
) -> int:
    """Check, forecast and launch ``spec`` on one backend; return the new run's id.

    Args:
        store: the result store.
        spec: a validated study spec.
        backend_name: "local", "sagemaker", "vertex" or "azure".
        settings: the backend's settings (region, bucket, instance type, ...), no secrets.
        instance_type: the machine type, stored on the run.
        study_id: add the run to this study (several platforms, one study); default a new one.
        backend_kwargs: extra arguments for the backend's constructor (clients, in tests).

    Raises:
        BackendNotReady: the backend's check found something missing.
        BackendError: the launch failed.
    """
    settings = dict(settings or {})
    if instance_type:
        settings.setdefault("instance_type", instance_type)
    backend = get_backend(backend_name, store, **dict(backend_kwargs or {}))
    problems = readiness(backend, spec, settings)
    if problems:
        raise BackendNotReady(
            f"{backend.label} is not ready: " + " ".join(problems), problems=problems
        )
    forecast: dict[str, Any] | None = None
    try:
        forecast = forecast_for(backend, spec, settings).to_dict()
    except CloudTuneError:
        forecast = None
    if study_id is None:
        study_id = store.create_study(spec)
    run_id = store.create_run(
        study_id,
        backend_name,
        instance_type=settings.get("instance_type"),
        settings=settings,
        spec=spec,
        max_trials=spec.budget.max_trials,
        forecast=forecast,
    )
    try:
        handle = backend.launch(spec, store.get_run(run_id))
    except CloudTuneError as err:
        store.set_run_status(run_id, "failed", error=str(err))
        raise
    store.update_run(run_id, handle=handle)
    return run_id


def readiness(backend: Backend, spec: StudySpec | None, settings: Mapping[str, Any]) -> list[str]:
    """Return what stops ``spec`` from running on ``backend``, a sentence each; [] when ready.

    The backend's own check, and for a local run its dataset on this machine: a run on a
    dataset that is not here is refused before it starts, with the way to get it.
    """
    return assess(backend, spec, settings).problems


CLOUD_CHECK_S = 60.0
"""How long the Launch page reuses a cloud's readiness answer. A cloud's check asks its APIs
(permissions, bucket, image, compute: a dozen calls, a second or two) and the page re-renders
on every widget change; a launch always checks afresh."""

_assessed: dict[tuple[str, str, str], tuple[float, Assessment]] = {}
_assess_lock = threading.Lock()


def assess(
    backend: Backend,
    spec: StudySpec | None,
    settings: Mapping[str, Any],
    *,
    max_age_s: float = 0.0,
) -> Assessment:
    """Return what stops ``spec`` from running on ``backend`` and what could not be checked.

    Problems refuse a launch (:func:`readiness` returns them); notes say what a cloud's check
    could not look at (no permission to ask, the service unreachable) and never refuse.

    Args:
        backend: the backend.
        spec: the study (a local run's dataset is looked for), or None.
        settings: the backend's settings.
        max_age_s: reuse a cloud's answer for the same settings at most this old (0: ask).
    """
    if isinstance(backend, CloudBackendBase):
        key = (str(getattr(backend.store, "url", "")), backend.name, _settings_key(settings))
        now = time.monotonic()
        with _assess_lock:
            hit = _assessed.get(key)
        if max_age_s > 0 and hit is not None and now - hit[0] < max_age_s:
            return Assessment(list(hit[1].problems), list(hit[1].notes))
        found = backend.assess(settings)
        with _assess_lock:
            _assessed[key] = (now, found)
        return Assessment(list(found.problems), list(found.notes))
    found = Assessment(list(backend.check(settings)))
    if spec is not None and isinstance(backend, LocalBackend):
        found.problems.extend(backend.dataset_problems(spec))
    return found


def _settings_key(settings: Mapping[str, Any]) -> str:
    return json.dumps({str(k): v for k, v in settings.items()}, sort_keys=True, default=str)


CLOUD_POLL_S = 10.0
"""A cloud run's service is asked for news at most this often per app or CLI process. One poll
is several API calls (job, its trials, their metrics), and Monitor re-renders every 2 s for
every open tab; between polls the store's figures are shown. Local runs are read every time."""

_last_poll: dict[tuple[str, int], float] = {}
_poll_lock = threading.Lock()


def refresh_run(
    store: Store, run_id: int, *, force: bool = False, **backend_kwargs: Any
) -> PollResult:
    """Poll one run's backend (when it is active) and return its status.

    A cloud run polled less than :data:`CLOUD_POLL_S` ago (in this process) is not polled
    again unless ``force``: its stored status is returned.
    """
    run = store.get_run(run_id)
    stored = PollResult(status=run.status, detail=run.status_detail, error=run.error)
    if run.status not in ACTIVE_STATUSES:
        return stored
    if run.backend != "local" and not force:
        now, key = time.monotonic(), (store.url, run_id)
        with _poll_lock:
            last = _last_poll.get(key)
            if last is not None and now - last < CLOUD_POLL_S:
                return stored
            _last_poll[key] = now
    backend = get_backend(run.backend, store, **backend_kwargs)
    result = backend.poll(run)
    if result.status not in ACTIVE_STATUSES:
        record_forecast_error(store, run_id)
    return result


def check_liveness(store: Store, runs: Iterable[RunRow] | None = None) -> list[int]:
    """Mark active local runs whose worker died as interrupted; return their ids.

    Every listing (`runs`, `trials`, Home, Monitor) calls this first, so none shows a run as
    running after its worker was killed. A local run's liveness is its worker's process and
    heartbeat, read from this machine and the store; cloud runs are left to :func:`refresh_run`
    (their service is asked at most every :data:`CLOUD_POLL_S`).

    Args:
        store: the result store.
        runs: the runs to check (default: every active run in the store).
    """
    todo = store.list_runs(statuses=ACTIVE_STATUSES) if runs is None else runs
    stopped = []
    for run in todo:
        local = run.backend == "local" and run.status in ACTIVE_STATUSES
        if local and refresh_run(store, run.id).status not in ACTIVE_STATUSES:
            stopped.append(run.id)
    return stopped


def failure_alert(run: RunRow) -> str | None:
    """The alert a page shows for a failed run, with its reason; None when it did not fail."""
    if run.status != "failed":
        return None
    reason = run.error or run.status_detail or "no reason was recorded"
    where = BACKENDS.get(run.backend, run.backend)
    text = f"Run {run.id} on {where} failed: {reason}"
    if run.backend == "local" and "python -m core resume" in text:
        text += " (or use its Resume button on Monitor)"
    return text


def forecast_for(
    backend: Backend, spec: StudySpec, settings: Mapping[str, Any], *, calibrate: bool = False
) -> Forecast:
    """Return ``backend``'s forecast without blocking on a local calibration by default.

    A local forecast with no history and no stored calibration leaves the expected time unknown
    (``expected_wall_s`` None) unless ``calibrate``; :func:`time_this_machine` stores one.
    """
    if isinstance(backend, LocalBackend):
        return backend.estimate(spec, settings, calibrate=calibrate)
    return backend.estimate(spec, settings)


def needs_timing(backend: Backend, forecast: Forecast) -> bool:
    """True when a local forecast lacks an expected time that :func:`time_this_machine` gives."""
    return isinstance(backend, LocalBackend) and forecast.expected_wall_s is None


def time_this_machine(store: Store, spec: StudySpec) -> None:
    """Time a few training steps of ``spec``'s model here, unless its dataset's timing is kept.

    The timing is stored per dataset and subset, and used by every later local forecast.

    Raises:
        CloudTuneError: the dataset can neither be loaded nor stood in for.
    """
    cached_calibration(spec, store, run=True)


def record_forecast_error(store: Store, run_id: int) -> dict[str, Any] | None:
    """Store, once, how far an ended run's forecast was from its actual time and cost.

    The backend has already written the trials' costs; this only compares (the local worker
    records its own through ``pricing.finalize_run_costs``).
    """
    run = store.get_run(run_id)
    if not run.forecast or "error" in run.forecast or run.started_at is None:
        return None
    trials = store.list_trials(run_id)
    cost = run.cost_usd
    if cost is None:
        cost = sum(t.cost_usd for t in trials if t.cost_usd is not None)
    wall = run.wall_s() or 0.0
    error = forecast_error(run.forecast, wall, float(cost))
    store.update_run(run_id, forecast={**run.forecast, "error": error})
    return error


def cancel_run(store: Store, run_id: int, **backend_kwargs: Any) -> None:
    """Ask the run's backend to stop it; completed trials stay."""
    run = store.get_run(run_id)
    if run.status not in ACTIVE_STATUSES:
        raise BackendError(f"Run {run_id} is already {run.status}; there is nothing to cancel.")
    get_backend(run.backend, store, **backend_kwargs).cancel(run)


def resume_run(store: Store, run_id: int, **backend_kwargs: Any) -> str:
    """Resume a run whose workers died, where its backend supports it; return the handle."""
    run = store.get_run(run_id)
    backend = get_backend(run.backend, store, **backend_kwargs)
    resume = getattr(backend, "resume", None)
    if resume is None:
        raise BackendError(
            f"{backend.label} runs cannot be resumed from here; monitoring resumes by itself "
            "from the job name in the store."
        )
    return str(resume(run))
