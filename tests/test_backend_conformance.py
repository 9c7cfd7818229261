"""Every backend honours the Backend protocol the same way (local and the three clouds).

Each backend ships a harness (tests/harness_<name>.py) that wires it to something real that
runs here: worker processes for local, moto's server for SageMaker, a loopback fake of the
Vertex REST API, and Azure's serialised job, HTTP calls and MLflow store.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from core.backends.base import BACKENDS, Backend, CloudBackend, Forecast, PollResult
from core.spec import StudySpec, parse_spec
from core.store import RUN_STATUSES, Store

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
        assert {"learning_rate", "batch_size", "dropout_rate"} <= set(t.params)
        assert t.params["batch_size"] in (32, 64, 128) and isinstance(t.params["batch_size"], int)
    # polling again, and from a fresh backend (an app restart), adds nothing
    h.backend.poll(store.get_run(rid))
    module = importlib.import_module(f"tests.harness_{name}")
    make_fresh = getattr(module, "fresh_backend", None)
    other = make_fresh(store, h) if make_fresh else type(h.backend)(store)
    other.poll(store.get_run(rid))
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
