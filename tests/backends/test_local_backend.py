"""The local backend: translation to KerasTuner, worker life cycle, CLI, failures and budget."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.backends.local import worker as worker_module
from core.backends.local.backend import Handle, LocalBackend, _setting_problems
from core.backends.local.hypermodel import (
    CHECKPOINT_NAME,
    error_sentence,
    failure_message,
    prune_checkpoints,
    space_values,
    trial_epochs,
    trial_params,
)
from core.backends.local.worker import (
    Clock,
    MemoryWatch,
    default_threads,
    recycle_limit,
    run_path,
    skip_unused_imports,
    tuner_path,
    unused_imports,
)
from core.backends.records import EpochRecord
from core.spec import StudySpec
from core.store import ACTIVE_STATUSES, Store
from tests.harness_local import harness

TINY = {"name": "digits", "subset": 300, "validation_split": 0.2}


def make_spec(**changes: Any) -> StudySpec:
    """A small random-search study on digits; ``changes`` replace top-level fields."""
    data: dict[str, Any] = {
        "name": "local-test",
        "dataset": dict(TINY),
        "strategy": "random",
        "space": [
            {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.01, "scale": "log"},
            {"name": "batch_size", "type": "choice", "values": [32, 64]},
        ],
        "budget": {"max_trials": 3, "epochs": 1, "parallel_trials": 1},
        "seed": 7,
    }
    data.update(changes)
    return StudySpec.from_dict(data)


def launch(
    store: Store, spec: StudySpec, settings: dict[str, Any] | None = None
) -> tuple[LocalBackend, int]:
    """Create a run of ``spec`` and start its worker (no forecast, to stay fast)."""
    backend = LocalBackend(store)
    run_id = store.create_run(store.create_study(spec), "local", spec=spec, settings=settings)
    backend.launch(spec, store.get_run(run_id))
    return backend, run_id


def wait_until(
    backend: LocalBackend,
    store: Store,
    run_id: int,
    done: Callable[[], bool],
    timeout: float = 150.0,
) -> None:
    """Poll the run until ``done()`` or the run ends; fail with the worker's log on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = backend.poll(store.get_run(run_id)).status
        if done():
            return
        if status not in ACTIVE_STATUSES:
            raise AssertionError(
                f"run {run_id} ended ({status}) before the awaited state:\n{log_tail(store, run_id)}"
            )
        time.sleep(0.3)
    raise AssertionError(f"timed out; run {run_id}:\n{log_tail(store, run_id)}")


def log_tail(store: Store, run_id: int) -> str:
    handle = Handle.parse(store.get_run(run_id).handle)
    if handle is None or not Path(handle.log).exists():
        return "(no log)"
    return "\n".join(Path(handle.log).read_text(errors="replace").splitlines()[-40:])


def ended(store: Store, run_id: int) -> Callable[[], bool]:
    return lambda: store.get_run(run_id).status not in ACTIVE_STATUSES


def assert_no_duplicates(store: Store, run_id: int) -> None:
    keys = [t.trial_key for t in store.list_trials(run_id)]
    assert len(keys) == len(set(keys))
    for t in store.list_trials(run_id):
        numbers = [e["epoch"] for e in store.list_epochs(t.id)]
        assert len(numbers) == len(set(numbers))


# ----------------------------------------------------------------------------- pure parts


def test_declared_space_follows_the_spec() -> None:
    import keras_tuner as kt

    from core.backends.local.hypermodel import declare_param

    spec = StudySpec.from_dict(
        {
            "name": "s",
            "space": [
                {
                    "name": "learning_rate",
                    "type": "float",
                    "min": 0.001,
                    "max": 0.1,
                    "scale": "log",
                },
                {"name": "dropout_rate", "type": "float", "min": 0.1, "max": 0.3, "step": 0.1},
                {"name": "filters", "type": "int", "min": 8, "max": 32, "step": 8},
                {
                    "name": "dense_units",
                    "type": "int",
                    "min": 16,
                    "max": 64,
                    "step": 16,
                    "scale": "log",
                },
                {"name": "batch_size", "type": "choice", "values": [32, 64, 128]},
                {"name": "optimizer", "type": "fixed", "value": "sgd"},
            ],
        }
    )
    hp = kt.HyperParameters()
    for p in spec.space:
        declare_param(hp, p)
    by_name = {h.name: h for h in hp.space}
    assert by_name["learning_rate"].sampling == "log"
    assert (by_name["dropout_rate"].step, by_name["dropout_rate"].sampling) == (0.1, "linear")
    assert (by_name["filters"].min_value, by_name["filters"].step) == (8, 8)
    # a log range with an additive step is the spec's own grid, not KerasTuner's factor
    assert list(by_name["dense_units"].values) == [16, 32, 48, 64]
    assert list(by_name["batch_size"].values) == [32, 64, 128]
    assert by_name["optimizer"].value == "sgd"


def test_trial_params_and_epochs() -> None:
    spec = make_spec(space=[{"name": "optimizer", "type": "fixed", "value": "sgd"},
                            {"name": "batch_size", "type": "choice", "values": [16, 32]}])  # fmt: skip
    values = {"batch_size": 16, "tuner/epochs": 3, "tuner/initial_epoch": 1, "tuner/trial_id": "0"}
    params = trial_params(spec, values)
    assert params["optimizer"] == "sgd" and params["batch_size"] == 16
    assert not any(k.startswith("tuner/") for k in params)
    assert space_values(spec, values) == {"batch_size": 16}
    assert trial_epochs(spec, values) == (1, 3)
    assert trial_epochs(spec, {"batch_size": 16}) == (0, spec.budget.epochs)


def test_error_sentences() -> None:
    class ResourceExhaustedError(Exception):
        pass

    oom = error_sentence(ResourceExhaustedError("OOM when allocating"), {"batch_size": 128})
    assert "out of memory at batch_size 128" in oom
    assert error_sentence(ValueError("bad shape\nmore")) == "The trial raised ValueError: bad shape"
    tb = "Traceback...\n  File x\nkeras_tuner.src.errors.FailedTrialError: The loss became NaN.\n"
    assert failure_message(tb) == "The loss became NaN."
    assert failure_message(None) is None


def test_nan_and_diverged_losses_fail_a_trial() -> None:
    from core.backends.local.hypermodel import divergence

    lr = {"learning_rate": 10.0}
    assert divergence([2.3, 1.1], lr, 0, 10) is None
    assert divergence([2006.0, 3.3], lr, 0, 10) is None  # recovered by the last epoch
    nan = divergence([2.0, float("nan")], lr, 1, 10)
    assert nan is not None and "NaN in epoch 3" in nan and "learning_rate 10" in nan
    big = divergence([5e3, 2.7e3], lr, 0, 10)
    assert big is not None and "diverged to 2.7e+03 in epoch 2" in big


def test_prune_keeps_only_named_trials(tmp_path: Path) -> None:
    for key in ("0", "1", "2"):
        (tmp_path / f"trial_{key}").mkdir()
        (tmp_path / f"trial_{key}" / CHECKPOINT_NAME).write_bytes(b"w")
    assert prune_checkpoints(tmp_path, {"1"}) == 2
    assert sorted(p.parent.name for p in tmp_path.glob(f"*/{CHECKPOINT_NAME}")) == ["trial_1"]


def test_handle_round_trip_and_settings_checks() -> None:
    h = Handle(pid=12, pgid=12, host="box", started=1.5, log="/x/worker.log")
    assert Handle.parse(h.to_json()) == h
    assert Handle.parse("345") is not None and Handle.parse("345").pid == 345  # type: ignore[union-attr]
    assert Handle.parse(None) is None and Handle.parse("not json") is None
    assert _setting_problems({"threads": 2, "rate_per_hour": 0.5, "oracle_port": 0}) == []
    problems = _setting_problems({"threads": -1, "rate_per_hour": "cheap", "oracle_port": 70000})
    assert len(problems) == 3 and all("must be" in p for p in problems)


def test_check_wants_a_shared_store(store: Store) -> None:
    assert LocalBackend(store).check({}) == []
    memory = Store("sqlite://")
    problems = LocalBackend(memory).check({})
    assert any("in-memory" in p for p in problems)


def test_memory_watch_waits_for_a_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = iter([500.0, 560.0, 700.0])
    monkeypatch.setattr(MemoryWatch, "rss_mb", staticmethod(lambda: next(sizes)))
    watch = MemoryWatch(100)
    assert [watch(), watch(), watch(), watch()] == [False, False, False, True]
    assert not MemoryWatch(0)() and recycle_limit({"recycle_mb": 0}) == 0
    assert recycle_limit({}) > 0


def test_clock_keeps_time_across_sessions(tmp_path: Path) -> None:
    clock = Clock(tmp_path / "state.json")
    clock.base = 10.0
    clock.save()
    again = Clock(tmp_path / "state.json")
    assert 10.0 <= again.elapsed() < 11.0
    assert default_threads(2, cpus=8) == 4 and default_threads(4, cpus=2) == 1


def test_a_worker_skips_only_the_libraries_its_study_never_uses() -> None:
    fashion = {"strategy": "random", "dataset": {"name": "fashion_mnist"}}
    assert unused_imports(fashion) == ["pandas", "matplotlib", "sklearn", "scipy"]
    # KerasTuner's Gaussian process needs scikit-learn and SciPy; digits is read from
    # scikit-learn's own file
    assert unused_imports({**fashion, "strategy": "bayesian"}) == ["pandas", "matplotlib"]
    assert unused_imports({**fashion, "dataset": {"name": "digits"}}) == ["pandas", "matplotlib"]


def test_skipping_marks_absent_only_what_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    absent = "cloudtune_test_never_imported"
    monkeypatch.setattr(worker_module, "UNUSED_IMPORTS", ("numpy", absent))
    monkeypatch.setattr(worker_module, "SKLEARN_IMPORTS", ())
    try:
        assert skip_unused_imports({"strategy": "random", "dataset": {}}) == [absent]
        assert sys.modules[absent] is None  # so `import` raises ImportError, as if missing
        assert isinstance(sys.modules["numpy"], types.ModuleType)  # imported: left alone
    finally:
        sys.modules.pop(absent, None)


@pytest.mark.slow
def test_keras_and_kerastuner_train_without_the_skipped_libraries() -> None:
    """A fresh process with pandas, matplotlib, scikit-learn and SciPy marked absent (as a
    fashion_mnist random-search worker starts) still imports Keras and KerasTuner and trains."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from core.backends.local.worker import skip_unused_imports\n"
        "print(skip_unused_imports({'strategy': 'hyperband', 'dataset': {'name': 'x'}}))\n"
        "import numpy as np, keras_tuner\n"
        "from core.backends.local import kt\n"
        "from core.training.model import build_model\n"
        "m = build_model({'optimizer': 'sgd'}, (8, 8, 1), 3)\n"
        "h = m.fit(np.zeros((32, 8, 8, 1), 'float32'), np.zeros(32, 'int32'), epochs=1,\n"
        "          validation_split=0.25, verbose=0)\n"
        "assert sys.modules['sklearn'] is None and 'val_accuracy' in h.history\n"
        "print('trained')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "['pandas', 'matplotlib', 'sklearn', 'scipy']" in out.stdout
    assert "trained" in out.stdout


def test_progress_line_reads_the_store(store: Store) -> None:
    from core.cli.tune import final_line, progress_line

    spec = make_spec()
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    store.set_run_status(run_id, "running")
    store.upsert_trial(run_id, "0", status="completed", objective=0.75, number=0)
    tid = store.upsert_trial(run_id, "1", status="running", number=1, metrics={"epochs_planned": 4})
    store.add_epoch(tid, EpochRecord(1, {"loss": 1.0}))
    line = progress_line(store, store.get_run(run_id), now=time.time())
    assert "1/3 trials" in line and "trial 2 epoch 1/4" in line and "0.7500" in line
    store.set_run_status(run_id, "completed")
    assert "1 completed" in final_line(store, store.get_run(run_id))


# ----------------------------------------------------------------------------- worker runs


@pytest.mark.slow
def test_published_study_runs_from_the_cli(
    store: Store, published_spec: StudySpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The published spec on digits, 5 trials x 2 epochs, its 3 trials at once (chief mode)."""
    from core.cli import main

    data = published_spec.to_dict()
    data["budget"].update(max_trials=5, epochs=2)
    data["dataset"]["subset"] = 300
    path = tmp_path / "published.json"
    path.write_text(json.dumps(data))
    assert main(["tune", str(path), "--backend", "local"]) == 0
    out = capsys.readouterr().out
    assert "5/5 trials" in out and "completed" in out
    run = store.list_runs()[0]
    assert run.status == "completed" and run.cost_usd == 0.0
    trials = store.list_trials(run.id)
    assert len(trials) == 5 and {t.status for t in trials} == {"completed"}
    assert_no_duplicates(store, run.id)
    for t in trials:
        assert set(t.params) == {
            "learning_rate",
            "batch_size",
            "dropout_rate",
            "optimizer",
            "momentum",
        }
        assert 0.001 <= t.params["learning_rate"] <= 0.1 and t.params["batch_size"] in (32, 64, 128)
        assert t.objective is not None and t.duration_s and t.duration_s > 0
        assert t.billable_s == t.duration_s and t.cost_usd == 0.0
        assert [e["epoch"] for e in store.list_epochs(t.id)] == [1, 2]
        assert all(e["wall_s"] > 0 and "val_accuracy" in e for e in store.list_epochs(t.id))
    # three workers ran (chief mode) and only the best trial's weights were kept
    folder = run_path(run.uid)
    assert sorted(p.name for p in folder.glob("tuner*.log")) == [f"tuner{i}.log" for i in range(3)]
    assert len(list(folder.glob(f"kt/study/trial_*/{CHECKPOINT_NAME}"))) == 1
    assert main(["status", str(run.id)]) == 0
    assert "completed" in capsys.readouterr().out


def _in_process_tuner(spec: StudySpec, folder: Path, recycle: Any = None) -> Any:
    from core.backends.local.hypermodel import make_tuner
    from core.training.data import load_dataset

    d = spec.dataset
    data = load_dataset(d.name, subset=d.subset, validation_split=d.validation_split, seed=1)
    return make_tuner(spec, data, folder, recycle=recycle)


@pytest.mark.slow
def test_trials_of_one_architecture_reuse_one_model_and_its_compiled_step(
    tmp_path: Path,
) -> None:
    import keras

    space = [
        {"name": "filters", "type": "choice", "values": [8, 16]},
        {"name": "batch_size", "type": "choice", "values": [32, 64]},
        {"name": "dropout_rate", "type": "choice", "values": [0.1]},
    ]
    spec = make_spec(strategy="grid", space=space, budget={"max_trials": 4, "epochs": 1})
    tuner = _in_process_tuner(spec, tmp_path)
    seen: list[tuple[int, int, int, Any]] = []
    build = tuner.hypermodel.build

    class Watch(keras.callbacks.Callback):
        def on_train_end(self, logs: Any = None) -> None:
            seen[-1] = (*seen[-1][:3], self.model.train_function)

    def spying_build(hp: Any) -> Any:
        model = build(hp)
        seen.append((hp.get("filters"), hp.get("batch_size"), id(model), None))
        return model

    fit = tuner.hypermodel.fit
    tuner.hypermodel.build = spying_build
    tuner.hypermodel.fit = lambda hp, model, **kw: fit(
        hp, model, **{**kw, "callbacks": [*kw.get("callbacks", []), Watch()]}
    )
    tuner.search(verbose=0)
    assert sorted((f, b) for f, b, _, _ in seen) == [(8, 32), (8, 64), (16, 32), (16, 64)]
    for (f1, _, id1, step1), (f2, _, id2, step2) in zip(seen, seen[1:], strict=False):
        assert (id1 == id2) == (f1 == f2)  # same architecture: the same model, reset
        assert (step1 is step2) == (f1 == f2)  # ...and its compiled step, traced once
    scores = [t.score for t in tuner.oracle.trials.values()]
    assert len(scores) == 4 and all(s is not None and 0 <= s <= 1 for s in scores)


@pytest.mark.slow
def test_trials_without_dropout_train_and_get_a_model_of_their_own(tmp_path: Path) -> None:
    space = [{"name": "dropout_rate", "type": "choice", "values": [0.3, 0.0, 0.2]}]
    spec = make_spec(strategy="grid", space=space, budget={"max_trials": 3, "epochs": 1})
    tuner = _in_process_tuner(spec, tmp_path)
    models: dict[float, Any] = {}  # held, so that no two models can share an id
    build = tuner.hypermodel.build

    def spying_build(hp: Any) -> Any:
        model = build(hp)
        models[hp.get("dropout_rate")] = model
        return model

    tuner.hypermodel.build = spying_build
    tuner.search(verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 3, [t.message for t in trials]
    assert models[0.0] is not models[0.3]  # a model without dropout is not reset with some


def test_validation_data_is_batched_once_per_batch_size_and_whole(tmp_path: Path) -> None:
    tuner = _in_process_tuner(make_spec(), tmp_path)
    hypermodel = tuner.hypermodel
    data = hypermodel.data()
    small, again = hypermodel.validation_set(64), hypermodel.validation_set(64)
    assert small is again and hypermodel.validation_set(512) is not small
    batches = list(small.as_numpy_iterator())
    assert max(len(y) for _, y in batches) == 64
    assert np.array_equal(np.concatenate([x for x, _ in batches]), data.x_val)
    assert np.array_equal(np.concatenate([y for _, y in batches]), data.y_val)


@pytest.mark.slow
def test_no_recycle_once_no_trial_is_left(tmp_path: Path) -> None:
    from core.backends.local.hypermodel import RecycleWorker

    calls: list[int] = []

    def recycle() -> bool:  # as if memory had grown past the limit after the first trial
        calls.append(1)
        return len(calls) >= 2

    one = make_spec(budget={"max_trials": 1, "epochs": 1})
    _in_process_tuner(one, tmp_path / "one", recycle).search(verbose=0)
    assert len(calls) == 1  # asked before the trial; after it, none was left to run
    calls.clear()
    two = make_spec(budget={"max_trials": 2, "epochs": 1})
    with pytest.raises(RecycleWorker):
        _in_process_tuner(two, tmp_path / "two", recycle).search(verbose=0)
    assert len(calls) == 2


@pytest.mark.slow
def test_kill_mid_trial_then_resume(store: Store) -> None:
    # Trials long enough (10 epochs on 1,000 images, a few seconds each) that the poll
    # loop cannot step over the "second trial has epochs but has not finished" window.
    spec = make_spec(
        dataset={"name": "digits", "subset": 1000, "validation_split": 0.2},
        budget={"max_trials": 3, "epochs": 10, "parallel_trials": 1},
    )
    backend, run_id = launch(store, spec)

    def mid_second_trial() -> bool:
        running = store.list_trials(run_id, status="running")
        return bool(
            store.count_trials(run_id).get("completed", 0) >= 1
            and running
            and store.list_epochs(running[0].id)
        )

    wait_until(backend, store, run_id, mid_second_trial)
    handle = Handle.parse(store.get_run(run_id).handle)
    assert handle is not None
    os.kill(handle.pid, signal.SIGKILL)
    wait_until(backend, store, run_id, ended(store, run_id), timeout=30)
    run = store.get_run(run_id)
    assert run.status == "failed" and f"resume {run_id}" in (run.error or "")
    kept = {t.trial_key for t in store.list_trials(run_id, status="completed")}
    assert kept and store.count_trials(run_id).get("stopped", 0) == 1

    new_handle = backend.resume(run)
    assert Handle.parse(new_handle).pid != handle.pid  # type: ignore[union-attr]
    wait_until(backend, store, run_id, ended(store, run_id))
    run = store.get_run(run_id)
    assert run.status == "completed", run.error
    trials = store.list_trials(run_id)
    assert [t.status for t in trials] == ["completed"] * 3
    assert kept <= {t.trial_key for t in trials}
    assert_no_duplicates(store, run_id)
    with pytest.raises(Exception, match="already completed"):
        backend.resume(run)


@pytest.mark.slow
def test_cancel_in_the_middle(store: Store) -> None:
    spec = make_spec(budget={"max_trials": 6, "epochs": 1, "parallel_trials": 1})
    backend, run_id = launch(store, spec)
    wait_until(
        backend,
        store,
        run_id,
        lambda: (
            store.count_trials(run_id).get("completed", 0) >= 1
            and bool(store.list_trials(run_id, status="running"))
        ),
    )
    handle = Handle.parse(store.get_run(run_id).handle)
    assert handle is not None
    started = time.monotonic()
    backend.cancel(store.get_run(run_id))
    assert time.monotonic() - started < 6
    from core.backends.local.backend import _alive

    assert not _alive(handle)
    assert backend.poll(store.get_run(run_id)).status == "cancelled"
    counts = store.count_trials(run_id)
    assert counts.get("completed", 0) >= 1 and counts.get("running", 0) == 0
    assert counts.get("completed", 0) < 6


@pytest.mark.slow
def test_exploding_learning_rate_fails_trials_not_the_run(store: Store, tmp_path: Path) -> None:
    space = [
        {"name": "learning_rate", "type": "choice", "values": [0.005, 10.0]},
        {"name": "optimizer", "type": "choice", "values": ["sgd", "adam"]},
    ]
    spec = make_spec(strategy="grid", space=space, budget={"max_trials": 4, "epochs": 2})
    with harness(store, tmp_path) as h:  # the conformance suite's harness, exercised here
        assert h.backend.check(h.settings) == []
        run_id = store.create_run(store.create_study(spec), "local", spec=spec)
        handle = h.backend.launch(spec, store.get_run(run_id))
        assert store.get_run(run_id).handle == handle
        h.finish(handle, 2)  # the run completes with the two good trials
    fresh = LocalBackend(store)  # a new instance reads the same run from the store
    result = fresh.poll(store.get_run(run_id))
    assert result.status == "completed" and result.new_trials == 4
    assert fresh.poll(store.get_run(run_id)).new_trials == 0
    trials = store.list_trials(run_id)
    assert len(trials) == 4
    bad = [t for t in trials if t.params["learning_rate"] == 10.0]
    good = [t for t in trials if t.params["learning_rate"] == 0.005]
    assert len(bad) == 2 and len(good) == 2
    assert all(t.status == "completed" and t.objective is not None for t in good)
    for t in bad:
        if t.status == "failed":
            assert t.error and t.objective is None
            assert "NaN" in t.error or "diverged" in t.error
        else:  # stayed finite and sane (stuck near guessing): a completed, useless trial
            assert t.objective is not None and t.objective < 0.3
    assert any(t.status == "failed" for t in bad)


@pytest.mark.slow
def test_three_failures_in_a_row_fail_the_run_with_a_sentence(store: Store) -> None:
    space = [
        {"name": "learning_rate", "type": "float", "min": 8.0, "max": 10.0},
        {"name": "optimizer", "type": "fixed", "value": "adam"},
    ]
    spec = make_spec(space=space, budget={"max_trials": 6, "epochs": 1})
    # recycle_mb=1: the worker re-executes itself before its third trial; the oracle's count
    # of failures in a row must survive that
    backend, run_id = launch(store, spec, settings={"recycle_mb": 1})
    wait_until(backend, store, run_id, ended(store, run_id))
    run = store.get_run(run_id)
    assert run.status == "failed", log_tail(store, run_id)
    assert "3 trials in a row failed" in (run.error or "") and "learning_rate" in (run.error or "")
    assert store.count_trials(run_id) == {"failed": 3}
    handle = Handle.parse(store.get_run(run_id).handle)
    assert handle is not None
    log = Path(handle.log).read_text(errors="replace")
    assert "recycling" in log and log.count(f"run {run_id}: single") == 2  # same process id
    with pytest.raises(Exception, match="kept failing"):
        backend.resume(run)


@pytest.mark.slow
def test_tiny_time_cap_stops_early(store: Store) -> None:
    spec = make_spec(budget={"max_trials": 5, "epochs": 1, "max_minutes": 0.02})
    backend, run_id = launch(store, spec)
    wait_until(backend, store, run_id, ended(store, run_id))
    run = store.get_run(run_id)
    assert run.status == "stopped", (run.error, log_tail(store, run_id))
    assert (run.status_detail or "").startswith("stopped: budget reached")
    done = store.count_trials(run_id).get("completed", 0)
    assert 1 <= done < 5
    assert run.cost_usd == 0.0


@pytest.mark.slow
def test_hyperband_keeps_parents_then_exports_the_best(store: Store, tmp_path: Path) -> None:
    spec = make_spec(strategy="hyperband", budget={"max_trials": 5, "epochs": 3})
    backend, run_id = launch(store, spec)
    with harness(store, tmp_path) as h:
        h.finish(store.get_run(run_id).handle or "", 5)
    run = store.get_run(run_id)
    trials = store.list_trials(run_id)
    assert len(trials) == 5
    planned = [t.metrics.get("epochs_planned") for t in trials]
    assert min(planned) < 3  # hyperband's first rounds train fewer epochs than max_epochs
    continued = [t for t in trials if store.list_epochs(t.id)[0]["epoch"] > 1]
    assert continued, "a later round continues a trial from its parent's weights"
    folder = tuner_path(run.uid) / "study"
    assert len(list(folder.glob(f"trial_*/{CHECKPOINT_NAME}"))) == 1

    path = backend.export_model(run, tmp_path)
    assert path.suffix == ".keras" and path.stat().st_size > 0
    from core.cli import main

    assert main(["export-model", str(run_id), "--out", str(tmp_path / "best.keras")]) == 0
    assert (tmp_path / "best.keras").stat().st_size > 0
    import keras
    import numpy as np

    model = keras.models.load_model(path)
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)


def test_follow_prints_one_line_per_change(store: Store) -> None:
    from core.cli.tune import follow

    spec = make_spec()
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    store.set_run_status(run_id, "completed")
    out = io.StringIO()
    assert follow(store, run_id, out=out, every_s=0.01) == 0
    assert out.getvalue().count("\n") == 2 and "completed" in out.getvalue()


# ----------------------------------------------------------------------------- identity, state


def test_a_fresh_launch_refuses_a_folder_it_did_not_create(store: Store) -> None:
    from core.errors import BackendError

    spec = make_spec()
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    run = store.get_run(run_id)
    stale = run_path(run.uid) / "kt" / "study"
    stale.mkdir(parents=True)
    (stale / "oracle.json").write_text("{}")  # as if another run's KerasTuner state were there
    with pytest.raises(BackendError, match="already exists"):
        LocalBackend(store).launch(spec, run)
    assert store.get_run(run_id).handle is None  # no worker started on it


def test_two_databases_under_one_data_folder_get_two_folders(home: Path) -> None:
    spec = make_spec()
    one, two = Store(f"sqlite:///{home / 'one.db'}"), Store(f"sqlite:///{home / 'two.db'}")
    a = one.get_run(one.create_run(one.create_study(spec), "local", spec=spec))
    b = two.get_run(two.create_run(two.create_study(spec), "local", spec=spec))
    assert a.id == b.id and run_path(a.uid) != run_path(b.uid)
    assert run_path(a.uid).parent == home / "runs"
    from core.errors import CloudTuneError

    with pytest.raises(CloudTuneError, match="not a UUID"):
        run_path("../../etc")


def _sleeper() -> Any:
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_listings_show_a_run_whose_worker_died_as_interrupted(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.backends.local.backend import _create_time
    from core.cli import main
    from core.runs import check_liveness, failure_alert

    spec = make_spec()
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    store.set_run_status(run_id, "running")
    store.heartbeat(run_id)
    store.upsert_trial(run_id, "0", status="completed", objective=0.5, number=0)
    store.upsert_trial(run_id, "1", status="running", number=1)
    worker = _sleeper()
    started = _create_time(worker.pid)
    handle = Handle(worker.pid, worker.pid, __import__("socket").gethostname(), started, "")
    store.update_run(run_id, handle=handle.to_json())
    assert check_liveness(store) == []  # alive: left alone
    assert store.get_run(run_id).status == "running"
    worker.kill()
    worker.wait()
    assert main(["runs"]) == 0  # `runs` checks liveness before it lists
    out = capsys.readouterr().out
    assert f"interrupted: resume with `python -m core resume {run_id}`" in out
    assert "running" not in out
    run = store.get_run(run_id)
    assert run.status == "failed" and "killed" in (run.error or "")
    assert store.count_trials(run_id) == {"completed": 1, "stopped": 1}
    alert = failure_alert(run)
    assert alert and "killed" in alert and f"resume {run_id}" in alert and "Resume button" in alert
    assert main(["trials", str(run_id), "--format", "json"]) == 0
    assert '"running"' not in capsys.readouterr().out


def test_a_heartbeat_older_than_a_minute_is_a_dead_worker_too(store: Store) -> None:
    from core.runs import check_liveness

    spec = make_spec()
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    store.set_run_status(run_id, "running")
    handle = Handle(1, 1, "another-machine", 0.0, "")  # not here: only the heartbeat tells
    store.update_run(run_id, handle=handle.to_json(), heartbeat_at=time.time() - 120)
    assert check_liveness(store) == [run_id]
    assert "no heartbeat for 120 s" in (store.get_run(run_id).error or "")


def _zombies(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            try:
                state = Path(f"/proc/{child}/status").read_text()
            except OSError:
                continue
            if "\nState:\tZ" in state:
                found.append(int(child))
    return found


def test_worker_starts_leave_no_zombie_under_the_starting_process(store: Store) -> None:
    """Several runs started from this process (as the app server does), never polled."""
    import psutil

    spec = make_spec()
    backend = LocalBackend(store)
    pids = []
    for _ in range(3):
        run_id = store.create_run(store.create_study(spec), "local", spec=spec)
        store.set_run_status(run_id, "cancelled")  # its worker finds that and exits at once
        handle = Handle.parse(backend.launch(spec, store.get_run(run_id)))
        assert handle is not None
        pids.append(handle.pid)
    mine = {p.pid for p in psutil.Process().children()}
    assert set(pids) <= mine

    def running() -> list[int]:  # neither gone nor a zombie
        return [p for p in pids if psutil.pid_exists(p) and p not in _zombies(os.getpid())]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and running():
        time.sleep(0.2)
    assert not running(), "the workers did not exit"
    deadline = time.monotonic() + 5  # the reaper collects an exit within moments
    while time.monotonic() < deadline and set(_zombies(os.getpid())) & set(pids):
        time.sleep(0.1)
    assert not set(_zombies(os.getpid())) & set(pids)


def test_a_local_run_on_a_missing_dataset_is_refused_before_it_starts(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import BackendNotReady
    from core.runs import start_run

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached downloads either
    spec = make_spec(dataset={"name": "cifar10", "subset": 100})
    with pytest.raises(BackendNotReady, match="cifar10 is not on this machine") as err:
        start_run(store, spec, "local")
    assert "cifar-10-python.tar.gz" in str(err.value)  # the registry's how-to-get sentence
    assert store.list_runs() == []  # refused before anything was started or stored
