"""core.runs: what the CLI and pages call around a backend."""

from __future__ import annotations

from typing import Any

import pytest

import core.runs as runs
from core.backends.base import Forecast, PollResult
from core.errors import BackendError, BackendNotReady
from core.store import Store


class StubBackend:
    """A backend whose job ends at the first poll, with one trial."""

    name = "stub"
    label = "Stub cloud"

    def __init__(self, store: Store, missing: list[str] | None = None) -> None:
        self.store = store
        self.missing = missing or []

    def check(self, settings: Any) -> list[str]:
        return list(self.missing)

    def estimate(self, spec: Any, settings: Any) -> Forecast:
        return Forecast(backend="stub", expected_wall_s=100.0, expected_cost_usd=2.0, basis=["b"])

    def launch(self, spec: Any, run: Any) -> str:
        self.store.set_run_status(run.id, "running")
        return "job-1"

    def poll(self, run: Any) -> PollResult:
        self.store.upsert_trial(run.id, "t", status="completed", objective=0.9, cost_usd=1.0)
        self.store.update_run(run.id, started_at=1000.0)
        self.store.set_run_status(run.id, "completed")
        self.store.update_run(run.id, ended_at=1050.0)
        return PollResult(status="completed")

    def cancel(self, run: Any) -> None:
        self.store.set_run_status(run.id, "cancelled")


def test_start_refresh_records_the_forecast_error(
    store: Store, published_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "get_backend", lambda name, s, **kw: StubBackend(s))
    run_id = runs.start_run(store, published_spec, "stub", settings={"region": "x"})
    run = store.get_run(run_id)
    assert run.handle == "job-1" and run.forecast["expected_cost_usd"] == 2.0
    assert runs.refresh_run(store, run_id).status == "completed"
    error = store.get_run(run_id).forecast["error"]
    assert error["wall_rel_error"] == pytest.approx((100 - 50) / 50)
    assert error["cost_rel_error"] == pytest.approx((2 - 1) / 1)
    with pytest.raises(BackendError, match="already completed"):
        runs.cancel_run(store, run_id)


def test_a_backend_that_is_not_ready_launches_nothing(
    store: Store, published_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "get_backend", lambda name, s, **kw: StubBackend(s, ["No role."]))
    with pytest.raises(BackendNotReady, match="Stub cloud is not ready: No role."):
        runs.start_run(store, published_spec, "stub")
    assert store.list_runs() == []


def test_a_local_forecast_never_calibrates_unless_asked(
    store: Store, published_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.costs.forecasting as forecasting
    from core.backends.local.backend import LocalBackend
    from core.spec import StudySpec

    data = published_spec.to_dict()
    data["dataset"] = {"name": "digits", "subset": 200, "validation_split": 0.2}
    spec = StudySpec.from_dict(data)
    timed: list[str] = []
    real = forecasting.calibrate_local

    def counting(s: Any, **kw: Any) -> Any:
        timed.append(s.dataset.name)
        return real(s, **kw)

    monkeypatch.setattr(forecasting, "calibrate_local", counting)
    local = LocalBackend(store)
    first = runs.forecast_for(local, spec, {})
    assert timed == [] and first.expected_wall_s is None and runs.needs_timing(local, first)
    assert runs.needs_timing(StubBackend(store), first) is False  # only local can time here

    runs.time_this_machine(store, spec)
    runs.time_this_machine(store, spec)  # kept: timed once
    assert timed == ["digits"]
    after = runs.forecast_for(local, spec, {})
    assert after.expected_wall_s is not None and after.expected_wall_s > 0
    assert not runs.needs_timing(local, after)
    assert any("calibrat" in line.lower() or "timed" in line.lower() for line in after.basis)


class StillRunning(StubBackend):
    """A cloud job that stays running and counts how often it is asked."""

    polls = 0

    def poll(self, run: Any) -> PollResult:
        StillRunning.polls += 1
        return PollResult(status="running")


def test_a_cloud_run_is_polled_at_most_every_ten_seconds_a_local_one_always(
    store: Store, published_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "get_backend", lambda name, s, **kw: StillRunning(s))
    clock = [1000.0]
    monkeypatch.setattr(runs.time, "monotonic", lambda: clock[0])
    StillRunning.polls = 0
    study = store.create_study(published_spec)
    cloud = store.create_run(study, "sagemaker", spec=published_spec)
    local = store.create_run(study, "local", spec=published_spec)
    for run_id in (cloud, local):
        store.set_run_status(run_id, "running")

    for _ in range(3):
        assert runs.refresh_run(store, cloud).status == "running"
    assert StillRunning.polls == 1  # Monitor re-renders every 2 s; the service is asked once
    clock[0] += runs.CLOUD_POLL_S - 0.5
    runs.refresh_run(store, cloud)
    assert StillRunning.polls == 1
    clock[0] += 1.0
    runs.refresh_run(store, cloud)
    assert StillRunning.polls == 2
    runs.refresh_run(store, cloud, force=True)
    assert StillRunning.polls == 3

    StillRunning.polls = 0
    for _ in range(3):
        runs.refresh_run(store, local)
    assert StillRunning.polls == 3
