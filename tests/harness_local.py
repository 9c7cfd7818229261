"""The local backend's harness for the backend conformance suite: backend, settings, finish."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store import ACTIVE_STATUSES, RunRow, Store
from tests.harness import BackendHarness

FINISH_TIMEOUT_S = 120.0


@dataclass
class Harness(BackendHarness):
    """The local backend, driven by real worker processes.

    Attributes:
        store: the store (a file: the worker process opens it by URL).
        folder: a scratch folder for the in-process trials of ``add_trial``.
    """

    store: Store | None = None
    folder: Path | None = None
    oracles: dict[int, Any] = field(default_factory=dict)

    def add_trial(self, run: RunRow, curve: list[float]) -> float:
        """One completed trial whose val_accuracy goes ``curve``, written by the worker's own
        store writer through a real KerasTuner oracle; return KerasTuner's score for it."""
        assert self.store is not None and self.folder is not None
        return record_trial(self.store, run, curve, self.folder, self.oracles)


def _run_with_handle(store: Store, handle: str) -> RunRow:
    for run in store.list_runs():
        if run.handle == handle:
            return run
    raise AssertionError(f"no run in the store has the handle {handle!r}")


def _log_tail(handle: str, lines: int = 30) -> str:
    from core.backends.local.backend import Handle

    parsed = Handle.parse(handle)
    if parsed is None or not parsed.log or not Path(parsed.log).exists():
        return "(no log)"
    return "\n".join(Path(parsed.log).read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def harness(store: Store, tmp_path: Path) -> Iterator[Harness]:
    """Yield a Harness for the local backend; stop any run still active on the way out.

    Args:
        store: a store on a file (the worker process opens it by URL).
        tmp_path: a scratch folder (unused: runs live under CLOUDTUNE_HOME).
    """
    from core.backends.local.backend import LocalBackend

    backend = LocalBackend(store)

    def finish(handle: str, n: int) -> None:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        run = _run_with_handle(store, handle)
        while time.monotonic() < deadline:
            status = backend.poll(run).status
            done = store.count_trials(run.id).get("completed", 0)
            if status not in ACTIVE_STATUSES:
                if status == "completed" and done >= n:
                    return
                run = store.get_run(run.id)
                raise AssertionError(
                    f"run {run.id} ended {status} with {done} of {n} trials completed: "
                    f"{run.error}\n{_log_tail(handle)}"
                )
            time.sleep(0.5)
        raise AssertionError(
            f"run {run.id} did not complete {n} trials in {FINISH_TIMEOUT_S:.0f} s\n"
            f"{_log_tail(handle)}"
        )

    try:
        yield Harness(backend=backend, settings={}, finish=finish, store=store, folder=tmp_path)
    finally:
        for run in store.list_runs(statuses=ACTIVE_STATUSES):
            if run.backend == "local" and run.handle:
                backend.cancel(run)


def record_trial(
    store: Store, run: RunRow, curve: list[float], folder: Path, oracles: dict[int, Any]
) -> float:
    """One trial through KerasTuner's own path, without training: the oracle hands it out,
    the epochs are reported as the tuner's callback does, KerasTuner turns the history into
    the trial's metrics at its best step (as ``Tuner.run_trial``'s caller does), and the
    oracle ends it; the worker's ``StoreEvents`` writes it all. Returns KerasTuner's score.
    """
    import keras
    from keras_tuner.src.engine import tuner_utils  # what BaseTuner itself calls

    from core.backends.local.hypermodel import make_oracle
    from core.backends.local.kt import CNNHyperModel
    from core.backends.local.worker import Clock, StoreEvents
    from core.costs.pricing import run_price
    from core.spec import parse_spec

    spec = parse_spec(run.spec)
    if run.id not in oracles:  # one oracle a run, as in the worker
        rate = run_price(run, store) or 0.0
        events = StoreEvents(store, run.id, spec, Clock(folder / "clock.json"), rate)
        oracle = make_oracle(spec, events)
        oracle._set_project_dir(str(folder / f"kt{run.id}"), "record")
        hp = oracle.get_space()
        CNNHyperModel(spec, None).declare_hyperparameters(hp)
        oracle.update_space(hp)
        oracles[run.id] = oracle
    oracle = oracles[run.id]
    events = oracle.events
    trial = oracle.create_trial("tuner0")
    history = keras.callbacks.History()
    history.history = {"val_accuracy": list(curve), "loss": [1.0 - v for v in curve]}
    for epoch, value in enumerate(curve, start=1):
        events.epoch_ended(trial.trial_id, epoch, {"val_accuracy": value}, 0.5)
    metrics = tuner_utils.convert_to_metrics_dict(history, oracle.objective)
    step = tuner_utils.get_best_step(history, oracle.objective)
    oracle.update_trial(trial.trial_id, metrics, step=step)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return float(oracle.trials[trial.trial_id].score)
