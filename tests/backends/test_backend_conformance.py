"""Every backend honours the Backend protocol the same way (local and the three clouds).

Each backend ships a harness (tests/harness_<name>.py) that wires it to something real that
runs here: worker processes for local, moto's server for SageMaker, a loopback fake of the
Vertex REST API, and Azure's serialised job, HTTP calls and MLflow store.
"""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from core.backends.base import BACKENDS, Backend, CloudBackend, Forecast, PollResult
from core.spec import StudySpec, parse_spec
from core.store import RUN_STATUSES, RunRow, Store

N_TRIALS = 2


def _spec(spec: StudySpec) -> StudySpec:
    data = spec.to_dict()
    data["dataset"] = {"name": "digits", "subset": 300, "validation_split": 0.2}
    data["budget"] = {"max_trials": N_TRIALS, "parallel_trials": 1, "epochs": 1}
    data["strategy"] = "random"
    return parse_spec(data)


@pytest.fixture(params=list(BACKENDS))
def harness(request: pytest.FixtureRequest, store: Store, tmp_path: Path):
    module = importlib.import_module(f"tests.harness_{request.param}")
    with module.harness(store, tmp_path) as h:
        yield request.param, h


def _launch(store: Store, h, spec: StudySpec, name: str) -> int:
    sid = store.create_study(spec)
    rid = store.create_run(sid, name, settings=h.settings, spec=spec, max_trials=N_TRIALS)
    handle = h.backend.launch(spec, store.get_run(rid))
    assert isinstance(handle, str) and handle
    assert store.get_run(rid).handle == handle
    return rid


def test_protocol_check_and_estimate(harness, store: Store, published_spec) -> None:
    name, h = harness
    assert isinstance(h.backend, Backend)
    assert h.backend.name == name and h.backend.label
    if name != "local":
        assert isinstance(h.backend, CloudBackend)
    assert h.backend.check(h.settings) == []
    missing = h.backend.check({})
    assert isinstance(missing, list) and all(isinstance(m, str) and m for m in missing)
    if name != "local":
        assert missing, "a cloud backend with no settings must say what is missing"
    forecast = h.backend.estimate(_spec(published_spec), h.settings)
    assert isinstance(forecast, Forecast) and forecast.backend == name
    assert forecast.basis and all(isinstance(b, str) for b in forecast.basis)


def test_launch_poll_complete_and_no_duplicates(harness, store: Store, published_spec) -> None:
    name, h = harness
    spec = _spec(published_spec)
    rid = _launch(store, h, spec, name)
    first = h.backend.poll(store.get_run(rid))
    assert isinstance(first, PollResult) and first.status in RUN_STATUSES
    h.finish(store.get_run(rid).handle, N_TRIALS)
    result = h.backend.poll(store.get_run(rid))
    assert result.status == "completed", result
    trials = store.list_trials(rid, status="completed")
    assert len(trials) == N_TRIALS
    for t in trials:
        assert t.objective is not None and 0 <= t.objective <= 1
        assert t.number is not None and t.seed == spec.seed + t.number
        if name != "local":
            assert h.trainer_seed(store.get_run(rid), t.trial_key) == t.seed
        assert {"learning_rate", "batch_size", "dropout_rate"} <= set(t.params)
        assert t.params["batch_size"] in (32, 64, 128) and isinstance(t.params["batch_size"], int)
    # polling again, and from a fresh backend (an app restart), adds nothing
    h.backend.poll(store.get_run(rid))
    h.fresh_backend(store).poll(store.get_run(rid))
    assert len(store.list_trials(rid)) == len(trials) + len(store.list_trials(rid, status="failed"))
    assert store.get_run(rid).status == "completed"


def test_cancel(harness, store: Store, published_spec) -> None:
    name, h = harness
    spec = _spec(published_spec)
    rid = _launch(store, h, spec, name)
    h.backend.cancel(store.get_run(rid))
    result = h.backend.poll(store.get_run(rid))
    assert result.status == "cancelled", result
    assert store.get_run(rid).status == "cancelled"


# ----------------------------------------------------------------------------- one measurement
#
# A trial's numbers mean the same thing on every platform (core/backends/records.py): these
# pin it down through each backend's real wire path, the trial's epochs reported by the real
# trainer's own reporting code (tests/trainer_output.py) or, locally, by KerasTuner's oracle.

CURVE = [0.5, 0.8, 0.6]
UNPRICED = {
    "sagemaker": {"instance_type": "ml.x9.unpriced"},
    "vertex": {"instance_type": "n9-unpriced-4"},
    "azure": {"compute": "odd-cluster"},
}
"""Settings that put each cloud's trials on a machine the price catalog does not know."""
COST_SENTENCE = re.compile(
    r"^stopped: budget reached: budget\.max_cost_usd is \$\d+\.\d\d; \$\d+\.\d\d is spent"
    r"( and the next trial would take it to about \$\d+\.\d\d)?\.$"
)
TIME_SENTENCE = re.compile(
    r"^stopped: budget reached: budget\.max_minutes is [\d.]+ min; the run has run [^;]+?"
    r"( and a trial takes about .+)?\.$"
)


def _three_epochs(spec: StudySpec, **budget: float) -> StudySpec:
    data = _spec(spec).to_dict()
    data["budget"] = {"max_trials": 4, "parallel_trials": 1, "epochs": 3, **budget}
    return parse_spec(data)


def _run_to_write_into(store: Store, h, spec: StudySpec, name: str, **settings: Any) -> RunRow:
    """A cloud run launched on its fake; a local run with no worker (the harness writes)."""
    sid = store.create_study(spec)
    merged = {**h.settings, **settings}
    rid = store.create_run(sid, name, settings=merged, spec=spec, max_trials=4)
    if name == "local":
        store.set_run_status(rid, "running")
    else:
        h.backend.launch(spec, store.get_run(rid))
    return store.get_run(rid)


def test_the_objective_is_the_best_epoch(harness, store: Store, published_spec) -> None:
    name, h = harness
    spec = _three_epochs(published_spec)
    run = _run_to_write_into(store, h, spec, name)
    service = h.add_trial(run, CURVE)
    assert service == pytest.approx(0.8), "the platform's own objective is the best epoch too"
    h.backend.poll(store.get_run(run.id))
    (trial,) = store.list_trials(run.id)
    assert trial.status == "completed"
    assert trial.objective == pytest.approx(0.8)
    epochs = store.list_epochs(trial.id)
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert [e["val_accuracy"] for e in epochs] == pytest.approx(CURVE)


def test_cost_is_billable_time_times_the_catalog_price(harness, store: Store, published_spec):
    from core.costs.pricing import run_price

    name, h = harness
    spec = _three_epochs(published_spec)
    settings = {"rate_per_hour": 3.6} if name == "local" else {"price_per_hour": 7.0}
    run = _run_to_write_into(store, h, spec, name, **settings)
    h.add_trial(run, CURVE)
    h.backend.poll(store.get_run(run.id))
    run = store.get_run(run.id)
    (trial,) = store.list_trials(run.id)
    assert trial.billable_s is not None and trial.billable_s > 0
    assert trial.duration_s is not None and trial.billable_s <= trial.duration_s + 1e-9
    price = run_price(run, store, instance_type=trial.instance_type)
    assert price is not None and price != 7.0, "the catalog's price wins over price_per_hour"
    assert trial.cost_usd == pytest.approx(trial.billable_s * price / 3600)
    if name == "local":
        return
    # a machine the catalog lacks: price_per_hour, the same way on every cloud
    if name == "azure":
        h.fake.computes["odd-cluster"] = "Standard_Q9_v9"
    spec2 = parse_spec({**spec.to_dict(), "name": "unpriced"})
    run = _run_to_write_into(store, h, spec2, name, **settings, **UNPRICED[name])
    h.add_trial(run, CURVE)
    h.backend.poll(store.get_run(run.id))
    (trial,) = store.list_trials(run.id)
    assert trial.instance_type in ("ml.x9.unpriced", "n9-unpriced-4", "Standard_Q9_v9")
    assert trial.cost_usd == pytest.approx(trial.billable_s * 7.0 / 3600)


def test_trial_seeds_are_the_study_seed_plus_the_index(harness, store, published_spec) -> None:
    name, h = harness
    spec = _three_epochs(published_spec)
    run = _run_to_write_into(store, h, spec, name)
    for _ in range(2):
        h.add_trial(run, CURVE)
    h.backend.poll(store.get_run(run.id))
    trials = store.list_trials(run.id)
    assert len(trials) == 2
    for t in trials:
        assert t.number is not None and t.seed == spec.seed + t.number
        if name != "local":  # the seed the trainer trained with, from the service's naming
            assert h.trainer_seed(run, t.trial_key) == t.seed
    assert sorted(t.number for t in trials) == [0, 1]


def _stop_sentence(name: str, h, store: Store, spec: StudySpec, **settings: Any) -> str:
    """Run ``spec`` until its budget stops it; return the run's detail."""
    if name == "local":
        rid = _launch(store, _with(h, settings), spec, name)
        deadline = time.monotonic() + 120
        while store.get_run(rid).status in ("queued", "running") and time.monotonic() < deadline:
            h.backend.poll(store.get_run(rid))
            time.sleep(0.5)
    else:
        run = _run_to_write_into(store, h, spec, name, **settings)
        rid = run.id
        h.add_trial(run, CURVE)
        h.backend.poll(store.get_run(rid))  # the rule fires: the job is asked to stop
        h.backend.poll(store.get_run(rid))  # the service has stopped it
    run = store.get_run(rid)
    assert run.status == "stopped", (run.status, run.status_detail, run.error)
    return str(run.status_detail)


def _with(h, settings: dict[str, Any]):
    from dataclasses import replace

    return replace(h, settings={**h.settings, **settings})


def test_a_cost_cap_stops_the_run_with_one_sentence(harness, store, published_spec) -> None:
    name, h = harness
    spec = _three_epochs(published_spec, max_cost_usd=0.0001)
    settings = {"rate_per_hour": 1000.0} if name == "local" else {"price_per_hour": 50.0}
    detail = _stop_sentence(name, h, store, spec, **settings)
    assert COST_SENTENCE.match(detail), detail


def test_a_time_cap_stops_the_run_with_one_sentence(harness, store, published_spec) -> None:
    name, h = harness
    spec = _three_epochs(published_spec, max_minutes=0.001 if name == "local" else 2)
    if name != "local":
        h.backend._clock = lambda: time.time() + 3600  # an hour after the launch
    detail = _stop_sentence(name, h, store, spec)
    assert TIME_SENTENCE.match(detail), detail


def test_wall_time_leaves_out_the_time_a_run_sat_stopped(harness, store, published_spec) -> None:
    name, h = harness
    spec = _spec(published_spec)
    rid = _launch(store, h, spec, name)
    if name == "local":
        _wait_for(lambda: store.count_trials(rid).get("completed", 0) >= 1, store, rid)
    h.backend.cancel(store.get_run(rid))
    h.backend.poll(store.get_run(rid))
    stopped = store.get_run(rid)
    assert stopped.status == "cancelled"
    first = stopped.wall_s()
    time.sleep(1.5)
    assert store.get_run(rid).wall_s() == pytest.approx(first), "a cancelled run's clock stops"
    if name != "local":
        from core.errors import BackendError
        from core.runs import resume_run

        with pytest.raises(BackendError, match="cannot be resumed"):
            resume_run(store, rid)
        return
    from core.runs import resume_run

    resume_run(store, rid)
    h.finish(store.get_run(rid).handle, N_TRIALS)
    run = store.get_run(rid)
    assert run.status == "completed" and len(run.segments) == 2
    assert run.ended_at is not None and run.started_at is not None
    gap = run.segments[1][0] - (run.segments[0][1] or 0)
    assert gap >= 1.5
    assert run.wall_s() == pytest.approx(run.ended_at - run.started_at - gap)


def _wait_for(condition, store: Store, rid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, store.get_run(rid)
        time.sleep(0.3)
