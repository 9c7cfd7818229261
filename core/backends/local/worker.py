"""The local backend's worker process: runs one run's KerasTuner search and writes the store.

``python -m core.backends.local.worker --run-id N [--db URL]`` is started (detached) by
:class:`core.backends.local.backend.LocalBackend`. It takes one of three roles:

* ``single`` (``budget.parallel_trials`` is 1): the oracle and the tuner in this process.
* ``chief`` (parallel_trials > 1): KerasTuner's chief oracle served over gRPC, plus
  ``parallel_trials`` local worker processes it starts, supervises and restarts.
* ``worker``: one tuner that asks a chief for trials. The chief starts these on this machine;
  a user may start more on other machines (``--oracle HOST:PORT``, see README).

The process running the oracle (single or chief) writes every trial start and end; the
process training a trial writes its epochs. A heartbeat thread stamps the run every few
seconds and ends the process when the run was cancelled from elsewhere.

Budget caps (``budget.max_minutes``, ``budget.max_cost_usd``) are checked before each trial
starts: the run stops when the mean trial so far would take it past a cap. Time counts the
search itself, summed over resumed sessions; a worker's start-up (importing TensorFlow,
reading the data) is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.backends.local.hypermodel import (
    MAX_CONSECUTIVE_FAILURES,
    RecycleWorker,
    failure_message,
    make_tuner,
    space_values,
    trial_epochs,
)
from core.backends.records import EpochRecord, TrialRecord, trial_seed
from core.costs.pricing import finalize_run_costs, next_trial_would_exceed, run_price
from core.errors import CloudTuneError
from core.paths import ROOT
from core.spec import StudySpec
from core.store import ACTIVE_STATUSES, Store, data_home
from core.training.data import load_dataset_cached
from core.training.model import configure_threads

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
"""Seconds between heartbeats (the backend calls a worker dead after ~60 s without one)."""

RECYCLE_MB = 64
"""A worker re-executes itself (same process id) when its memory grew this much since its
first trial: TensorFlow keeps a few MB of every traced training step for the process's life.
The run setting ``recycle_mb`` overrides it (0: never)."""

MAX_RESTARTS = 2
"""A chief restarts a crashed local worker this many times before the run fails."""


_KT_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def run_path(uid: str) -> Path:
    """Return where a run's folder is (not created): ``runs/<uid>`` in the data folder.

    The folder is named by the run's identity (``RunRow.uid``, a UUID), not its id: run ids
    restart in every database, so an id-named folder could hold another database's run.

    Raises:
        CloudTuneError: ``uid`` is not a run identity (a database from before schema 4 that
            was not upgraded, or one edited by hand).
    """
    try:
        name = str(uuid.UUID(str(uid)))
    except ValueError as err:
        raise CloudTuneError(
            f"The run identity {uid!r} is not a UUID; open the store with this CloudTune "
            "(it upgrades the database) and start the run again."
        ) from err
    return data_home() / "runs" / name


def run_folder(uid: str) -> Path:
    """Return (creating it) a run's folder: its KerasTuner project, logs and state."""
    path = run_path(uid)
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_folder(uid: str) -> Path:
    """Create a fresh run's folder; a folder already there is refused, never read.

    Raises:
        CloudTuneError: the folder exists (it is some other run's: a fresh launch must not
            reload its KerasTuner state).
    """
    path = run_path(uid)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError as err:
        raise CloudTuneError(
            f"The folder {path} of this new run already exists, so it holds some other run's "
            "state; CloudTune does not reuse it. Move it away and launch again."
        ) from err
    return path


def tuner_path(uid: str) -> Path:
    """Return the folder that holds (or will hold) a run's KerasTuner project."""
    return run_path(uid) / "kt"


def worker_command(run_id: int, *extra: str) -> list[str]:
    """Return the command line that starts a worker for ``run_id``.

    The store's URL travels in $CLOUDTUNE_DB, not on the command line, where any user of the
    machine could read a password in it.
    """
    return [sys.executable, "-m", "core.backends.local.worker", "--run-id", str(run_id), *extra]


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a worker: quiet TensorFlow, the repository importable."""
    env = {k: v for k, v in os.environ.items() if k not in _KT_ENV}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def default_threads(workers: int, cpus: int | None = None) -> int:
    """Return TensorFlow threads per worker so that ``workers`` processes share the cores."""
    total = cpus or os.cpu_count() or 1
    return max(1, total // max(1, workers))


# ----------------------------------------------------------------------------- elapsed time


class Clock:
    """The run's active seconds, summed over every session (a resumed run keeps counting).

    Args:
        path: the JSON file that keeps the total between sessions.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = 0.0
        try:
            self.base = float(json.loads(path.read_text())["elapsed_s"])
        except (OSError, ValueError, KeyError, TypeError):
            self.base = 0.0
        self.start = time.monotonic()

    def restart(self) -> None:
        """Start counting now (the worker's start-up is not part of the budget)."""
        self.start = time.monotonic()

    def elapsed(self) -> float:
        """Return the active seconds so far."""
        return self.base + time.monotonic() - self.start

    def save(self) -> None:
        """Write the total so far (atomically; a temporary file per process and thread, so
        two parallel trials saving at once cannot rename each other's file away)."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"elapsed_s": self.elapsed()}))
        tmp.replace(self.path)


# ----------------------------------------------------------------------------- store writer


class StoreEvents:
    """Writes trials and epochs to the store as KerasTuner reports them (see TrialEvents).

    Args:
        store: the result store.
        run_id: the run.
        spec: its study.
        clock: the run's active time (for the budget).
        rate_per_hour: what an hour of this machine costs.
    """

    def __init__(
        self, store: Store, run_id: int, spec: StudySpec, clock: Clock, rate_per_hour: float
    ) -> None:
        self.store, self.run_id, self.spec, self.clock = store, run_id, spec, clock
        self.rate = rate_per_hour
        self.started: dict[str, float] = {}
        self.ids: dict[str, int] = {}
        self.budget_detail: str | None = None
        self.last_error: str | None = None

    def trial_id(self, key: str) -> int:
        """Return the store id of trial ``key`` (creating its row if needed)."""
        if key not in self.ids:
            self.ids[key] = self.store.upsert_trial(self.run_id, key)
        return self.ids[key]

    def _record(self, trial: Any, started: float) -> TrialRecord:
        """A KerasTuner trial as the one trial record: running, with its parameters and seed."""
        values = trial.hyperparameters.values
        number = int(trial.trial_id) if str(trial.trial_id).isdigit() else None
        return TrialRecord(
            key=str(trial.trial_id),
            number=number,
            params=space_values(self.spec, values),
            started_at=started,
            seed=trial_seed(self.spec.seed, number, values),
            metrics={"epochs_planned": trial_epochs(self.spec, values)[1]},
        )

    def trial_started(self, trial: Any) -> None:
        now = time.time()
        self.started[trial.trial_id] = now
        record = self._record(trial, now)
        self.ids[trial.trial_id] = self.store.write_trial(self.run_id, record)

    def trial_ended(self, trial: Any) -> None:
        now = time.time()
        started = self.started.pop(trial.trial_id, None)
        if started is None:
            row = next(
                (t for t in self.store.list_trials(self.run_id) if t.trial_key == trial.trial_id),
                None,
            )
            started = row.started_at if row and row.started_at else now
        duration = max(0.0, now - started)
        ok = trial.status == "COMPLETED" and trial.score is not None
        message = failure_message(getattr(trial, "message", None))
        base = self._record(trial, started)
        record = replace(
            base,
            status="completed" if ok else "failed",
            objective=float(trial.score) if ok else None,  # KerasTuner's best step
            metrics={**_final_metrics(trial), **base.metrics},
            ended_at=now,
            duration_s=duration,
            billable_s=duration,
            cost_usd=duration * self.rate / 3600,
            error=None if ok else (message or self._stored_error(trial.trial_id)),
        )
        if not ok:
            self.last_error = message or self.last_error
        self.store.write_trial(self.run_id, record)
        self.clock.save()

    def _stored_error(self, trial_id: str) -> str | None:
        """The error the training process wrote for a trial (see trial_failed), if any."""
        row = next(
            (t for t in self.store.list_trials(self.run_id) if t.trial_key == trial_id), None
        )
        return row.error if row is not None else None

    def trial_failed(self, trial_id: str, sentence: str) -> None:
        """Record why a trial failed (the process that trained it knows; the chief may not)."""
        self.last_error = sentence
        self.store.upsert_trial(self.run_id, trial_id, error=sentence)

    def epoch_ended(
        self, trial_id: str, epoch: int, logs: Mapping[str, Any], wall_s: float
    ) -> None:
        self.store.add_epoch(self.trial_id(trial_id), EpochRecord(epoch, dict(logs), wall_s))

    def stop_reason(self) -> str | None:
        run = self.store.get_run(self.run_id)
        if run.status == "cancelled":
            return "cancelled"
        detail = self._budget_detail()
        if detail:
            self.budget_detail = detail
            return "budget"
        return None

    def _budget_detail(self) -> str | None:
        budget = self.spec.budget
        if budget.max_minutes is None and budget.max_cost_usd is None:
            return None
        done = [
            t.duration_s
            for t in self.store.list_trials(self.run_id)
            if t.status in ("completed", "failed") and t.duration_s is not None
        ]
        mean = sum(done) / len(done) if done else 0.0
        elapsed = self.clock.elapsed()
        return next_trial_would_exceed(
            budget,
            elapsed_s=elapsed,
            spent_usd=elapsed * self.rate / 3600,
            mean_trial_s=mean,
            parallel=budget.parallel_trials,
            price_per_hour=self.rate,
            billing="per_machine",
        )


def _final_metrics(trial: Any) -> dict[str, Any]:
    """Return a finished trial's metrics at its best epoch, and how many epochs it ran."""
    out: dict[str, Any] = {}
    tracker = trial.metrics
    for name in getattr(tracker, "metrics", {}):
        value = tracker.get_last_value(name)
        if value is not None:
            out[name] = float(value)
    if trial.score is not None:
        out["best_epoch"] = int(trial.best_step) + 1
    return out


# ----------------------------------------------------------------------------- memory


class MemoryWatch:
    """Says when the process has grown ``limit_mb`` since its first trial ended.

    Called before every trial: the first call is before any trial, the second right after the
    first one (the baseline, with TensorFlow warmed up).
    """

    def __init__(self, limit_mb: float) -> None:
        self.limit_mb = limit_mb
        self.calls = 0
        self.base: float | None = None

    @staticmethod
    def rss_mb() -> float:
        """This process's resident memory in MB."""
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20

    def __call__(self) -> bool:
        self.calls += 1
        if self.limit_mb <= 0 or self.calls < 2:
            return False
        rss = self.rss_mb()
        if self.base is None:
            self.base = rss
            return False
        if rss - self.base > self.limit_mb:
            log.info("memory grew %.0f MB since the first trial; recycling", rss - self.base)
            return True
        return False


def freeze_heap() -> None:
    """Exempt everything alive now (TensorFlow, Keras, the data) from garbage collection.

    Each trial ends with a full collection to free the last model; without this it walks
    every object TensorFlow and Keras created at import (about 0.4 s a trial here). A full
    collection before freezing took 0.3 s of every start and found no garbage (300,000
    objects after TensorFlow, KerasTuner and the data), so only the young generations are
    collected first.
    """
    import gc

    gc.collect(1)  # the young generations only: a full pass here found nothing to free
    gc.freeze()


def recycle_limit(settings: Mapping[str, Any]) -> float:
    """The run's ``recycle_mb`` setting, else :data:`RECYCLE_MB`."""
    value = settings.get("recycle_mb")
    return float(RECYCLE_MB) if value in (None, "") else float(value)


def reexec() -> None:
    """Replace this process by a fresh run of the same command (same process id)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ["CLOUDTUNE_RECYCLED"] = str(int(os.environ.get("CLOUDTUNE_RECYCLED", "0")) + 1)
    os.execv(sys.executable, list(sys.orig_argv))


# ----------------------------------------------------------------------------- heartbeat


class Heartbeat:
    """Stamps the run every few seconds; calls ``on_cancel`` when the run stops being active.

    Args:
        store: the result store.
        run_id: the run.
        clock: saved with each beat (None: nothing saved).
        on_cancel: called (from the thread) when the run is no longer queued or running.
        beat: write heartbeats (workers only watch).
    """

    def __init__(
        self,
        store: Store,
        run_id: int,
        clock: Clock | None,
        on_cancel: Callable[[], None],
        *,
        beat: bool = True,
        every_s: float = HEARTBEAT_S,
    ) -> None:
        self.store, self.run_id, self.clock = store, run_id, clock
        self.on_cancel, self.beat, self.every_s = on_cancel, beat, every_s
        self.finishing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every_s + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.tick()
            except Exception as err:  # a locked store must not kill the study
                log.warning("heartbeat: %s", err, exc_info=err)

    def tick(self) -> None:
        """Beat once and check for a cancel."""
        if self.beat:
            self.store.heartbeat(self.run_id)
        if self.clock is not None:
            self.clock.save()
        status = self.store.get_run(self.run_id).status
        if status not in ACTIVE_STATUSES and not self.finishing:
            self.on_cancel()


def _exit_now() -> None:
    log.info("the run is no longer active; stopping")
    _flush_logs()
    os._exit(0)


# ----------------------------------------------------------------------------- roles


def _load_dataset(spec: StudySpec) -> Any:
    d = spec.dataset
    return load_dataset_cached(
        d.name, path=d.path, subset=d.subset, validation_split=d.validation_split, seed=spec.seed
    )


def _rate(store: Store, run_id: int) -> float:
    try:
        return float(run_price(store.get_run(run_id), store) or 0.0)
    except CloudTuneError:
        return 0.0


def _configure_threads(threads: int) -> None:
    configure_threads(threads)


class Session:
    """One process's share of a run: the store, the spec, the clock and the writer."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id
        run = store.get_run(run_id)
        self.spec = StudySpec.from_dict(run.spec)
        self.uid = run.uid
        self.folder = run_folder(run.uid)
        self.clock = Clock(self.folder / "state.json")
        self.events = StoreEvents(store, run_id, self.spec, self.clock, _rate(store, run_id))

    def begin(self, detail: str | None = None) -> bool:
        """Mark the run running; return False when it was cancelled before we started."""
        if self.store.get_run(self.run_id).status not in ACTIVE_STATUSES:
            return False
        self.store.set_run_status(self.run_id, "running", detail=detail)
        self.store.heartbeat(self.run_id)
        return True

    def finish(self, oracle: Any, heartbeat: Heartbeat | None) -> int:
        """Write the run's final status and cost; keep only the best weights."""
        if heartbeat is not None:
            heartbeat.finishing = True
        self.clock.save()
        try:
            oracle.prune(final=True)
        except Exception as err:  # pruning is housekeeping; never fail a run for it
            log.warning("could not prune checkpoints: %s", err, exc_info=err)
        run = self.store.get_run(self.run_id)
        if run.status == "cancelled" or oracle.stop_cause == "cancelled":
            self._stop_running_trials("cancelled")
            self.store.set_run_status(self.run_id, "cancelled", detail="cancelled")
        elif oracle.fatal:
            self._fail(self.too_many_failures())
        elif oracle.stop_cause == "budget":
            detail = self.events.budget_detail or "stopped: budget reached"
            self.store.set_run_status(self.run_id, "stopped", detail=detail)
        else:
            self.store.set_run_status(self.run_id, "completed")
        self._finalize_costs()
        return 0 if not oracle.fatal else 1

    def too_many_failures(self) -> str:
        """The sentence of a run stopped by consecutive failed trials."""
        last = self.events.last_error or "see the trials' errors"
        return (
            f"{MAX_CONSECUTIVE_FAILURES} trials in a row failed, so the run stopped "
            f"(last error: {last.rstrip('.')}). Narrow the search space, for example a lower "
            "maximum learning_rate, and start a new run."
        )

    def _fail(self, sentence: str) -> None:
        self._stop_running_trials("the run failed")
        self.store.set_run_status(self.run_id, "failed", error=sentence, detail="failed")

    def fail(self, err: BaseException) -> int:
        """Record an error that ended the whole run; return the exit status."""
        if isinstance(err, CloudTuneError):
            sentence = str(err)
        else:
            traceback.print_exc()
            log = self.folder / "worker.log"
            sentence = (
                f"The local worker crashed ({type(err).__name__}: {err}). "
                f"Its log is {log}; fix the cause and resume the run."
            )
        if self.store.get_run(self.run_id).status in ACTIVE_STATUSES:
            self._fail(sentence)
        return 1

    def _stop_running_trials(self, why: str) -> None:
        for t in self.store.list_trials(self.run_id, status="running"):
            self.store.upsert_trial(self.run_id, t.trial_key, status="stopped", error=why)

    def _finalize_costs(self) -> None:
        try:
            finalize_run_costs(self.store, self.run_id, price_per_hour=self.events.rate)
        except Exception as err:  # costs are derived data; the run's outcome stands
            log.warning("could not finalize costs: %s", err, exc_info=err)


def reconcile(oracle: Any, events: StoreEvents) -> None:
    """After a reload, make the store agree with the oracle, and re-queue interrupted trials.

    A trial the oracle ended while the process died before the store heard of it is written
    now; one still marked running is queued to run again (same key, so never a duplicate).
    """
    from core.backends.local.kt import requeue_interrupted  # lazy: KerasTuner and TensorFlow

    rows = {t.trial_key: t for t in events.store.list_trials(events.run_id)}
    for trial_id, trial in oracle.trials.items():
        row = rows.get(trial_id)
        if trial.status in ("COMPLETED", "FAILED") and (row is None or row.status == "running"):
            events.trial_ended(trial)
    queued = requeue_interrupted(oracle)
    if queued:
        log.info("re-running interrupted trial(s) %s", ", ".join(queued))


@contextmanager
def _phase(what: str) -> Iterator[None]:
    """Log how long a step of the worker's start took (its log shows where start-up goes)."""
    started = time.perf_counter()
    yield
    log.info("%s in %.2f s", what, time.perf_counter() - started)


def run_single(session: Session, threads: int) -> int:
    """Run the whole search in this process (parallel_trials == 1)."""
    for key in _KT_ENV:
        os.environ.pop(key, None)
    if not session.begin():
        return 0
    watch = MemoryWatch(recycle_limit(session.store.get_run(session.run_id).settings))
    with Heartbeat(session.store, session.run_id, session.clock, _exit_now) as beat:
        try:
            with _phase("TensorFlow started"):
                _configure_threads(threads)
            with _phase("data loaded"):
                dataset = _load_dataset(session.spec)
            with _phase("tuner ready"):
                folder = tuner_path(session.uid)
                tuner = make_tuner(session.spec, dataset, folder, session.events, recycle=watch)
                reconcile(tuner.oracle, session.events)
                freeze_heap()
            session.clock.restart()
            try:
                tuner.search(verbose=0)
            except RuntimeError:
                if not tuner.oracle.fatal:
                    raise
        except RecycleWorker:
            beat.finishing = True
            session.clock.save()
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
            return session.fail(err)
        else:
            return session.finish(tuner.oracle, beat)
    reexec()
    return 0


def run_worker(store: Store, run_id: int, tuner_id: str, threads: int) -> int:
    """Run one tuner that takes its trials from the chief named by $KERASTUNER_ORACLE_*."""
    os.environ["KERASTUNER_TUNER_ID"] = tuner_id
    run = store.get_run(run_id)
    spec = StudySpec.from_dict(run.spec)
    folder = run_folder(run.uid)
    clock = Clock(folder / f"{tuner_id}.state.json")
    events = StoreEvents(store, run_id, spec, clock, 0.0)
    watch = MemoryWatch(recycle_limit(run.settings))
    with Heartbeat(store, run_id, None, _exit_now, beat=False) as beat:
        with _phase("TensorFlow started"):
            _configure_threads(threads)
        with _phase("data loaded"):
            dataset = _load_dataset(spec)
        with _phase("tuner ready"):
            tuner = make_tuner(spec, dataset, tuner_path(run.uid), events, recycle=watch)
            freeze_heap()
        try:
            tuner.search(verbose=0)
            return 0
        except RecycleWorker:
            beat.finishing = True
    reexec()
    return 0


# ----------------------------------------------------------------------------- the chief


class LocalWorkers:
    """The chief's local worker processes: start, watch, restart, stop."""

    def __init__(
        self, run_id: int, folder: Path, db_url: str, address: str, count: int, threads: int
    ) -> None:
        self.run_id, self.folder, self.db_url, self.address = run_id, folder, db_url, address
        self.threads = threads
        self.ids = [f"tuner{i}" for i in range(count)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.ids, 0)
        self.done: set[str] = set()

    def start(self, tuner_id: str) -> None:
        """Start (or restart) one local worker in the chief's process group."""
        log = open(self.folder / f"{tuner_id}.log", "ab")  # noqa: SIM115
        extra = ["--role", "worker", "--tuner-id", tuner_id, "--oracle", self.address]
        extra += ["--threads", str(self.threads)]
        self.procs[tuner_id] = subprocess.Popen(
            worker_command(self.run_id, *extra),
            cwd=os.getcwd(),
            env=worker_env({"CLOUDTUNE_DB": self.db_url}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def start_all(self) -> None:
        """Start every worker."""
        for tuner_id in self.ids:
            self.start(tuner_id)

    def check(self) -> str | None:
        """Restart crashed workers; return a sentence when one crashed too often."""
        for tuner_id, proc in self.procs.items():
            if tuner_id in self.done or proc.poll() is None:
                continue
            if proc.returncode == 0:
                self.done.add(tuner_id)
                continue
            if self.restarts[tuner_id] >= MAX_RESTARTS:
                self.done.add(tuner_id)
                path = self.folder / f"{tuner_id}.log"
                return (
                    f"Local worker {tuner_id} crashed {MAX_RESTARTS + 1} times (exit status "
                    f"{proc.returncode}); its log is {path}."
                )
            self.restarts[tuner_id] += 1
            log.warning("%s exited with %s; restarting it", tuner_id, proc.returncode)
            self.start(tuner_id)
        return None

    def all_done(self) -> bool:
        """True when every worker exited for good."""
        return len(self.done) == len(self.ids)

    def stop(self, grace_s: float = 3.0) -> None:
        """Terminate the workers still running (SIGKILL after ``grace_s``)."""
        live = [p for p in self.procs.values() if p.poll() is None]
        for p in live:
            p.terminate()
        deadline = time.monotonic() + grace_s
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def bind_oracle(host: str, port: int) -> tuple[Any, int]:
    """Make the chief oracle's gRPC server and bind its port (not yet serving).

    Binding first gives the workers the address at once, so they can start (and import
    TensorFlow) while the chief still builds its oracle; their calls wait until it serves.

    Returns:
        The server and the bound port.

    Raises:
        CloudTuneError: the port cannot be bound.
    """
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise CloudTuneError(
            f"The chief oracle cannot listen on {host}:{port}; choose another port in the "
            "local.oracle_port setting (0 picks a free one)."
        )
    return server, bound


def start_oracle(oracle: Any, server: Any) -> Any:
    """Serve KerasTuner's chief oracle on a bound server; return KerasTuner's servicer."""
    from core.backends.local.kt import add_oracle_service  # lazy: KerasTuner and TensorFlow

    servicer = add_oracle_service(oracle, server)
    server.start()
    return servicer


def serve_oracle(oracle: Any, host: str, port: int) -> tuple[Any, Any, int]:
    """Serve KerasTuner's chief oracle over gRPC; return (server, servicer, bound port)."""
    server, bound = bind_oracle(host, port)
    return server, start_oracle(oracle, server), bound


def _chief_finished(oracle: Any, servicer: Any) -> bool:
    from core.backends.local.kt import chief_finished  # lazy: KerasTuner and TensorFlow

    return chief_finished(oracle, servicer)


def run_chief(session: Session, db_url: str, workers: int, threads: int) -> int:
    """Serve the oracle and supervise ``workers`` local tuner processes."""
    settings = session.store.get_run(session.run_id).settings
    host = str(settings.get("oracle_host") or "127.0.0.1")
    port = int(settings.get("oracle_port") or 0)
    os.environ.update(
        KERASTUNER_TUNER_ID="chief", KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port)
    )
    if not session.store.get_run(session.run_id).active:
        return 0
    crew: LocalWorkers | None = None

    def cancelled() -> None:
        if crew is not None:
            crew.stop(grace_s=1.0)
        _exit_now()

    with Heartbeat(session.store, session.run_id, session.clock, cancelled) as beat:
        try:
            server, bound = bind_oracle(host, port)
            reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            address = f"{reach}:{bound}"
            # the workers start now and import TensorFlow while this process does; their
            # first call to the oracle waits until it serves (gRPC's wait_for_ready)
            crew = LocalWorkers(session.run_id, session.folder, db_url, address, workers, threads)
            crew.start_all()
            _configure_threads(1)
            tuner = make_tuner(session.spec, None, tuner_path(session.uid), session.events)
            reconcile(tuner.oracle, session.events)
            tuner.save()
            servicer = start_oracle(tuner.oracle, server)
            _write_oracle_file(session.folder, host, bound)
            session.begin(detail=f"running; KerasTuner chief oracle at {host}:{bound}")
            session.clock.restart()
            problem = _supervise(tuner.oracle, servicer, crew)
            crew.stop()
            server.stop(grace=1)
            if problem and not tuner.oracle.fatal:
                raise CloudTuneError(problem)
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
            if crew is not None:
                crew.stop(grace_s=1.0)
            return session.fail(err)
        return session.finish(tuner.oracle, beat)


def _supervise(oracle: Any, servicer: Any, crew: LocalWorkers) -> str | None:
    """Wait until the search ends; return a sentence when it cannot end normally."""
    from core.backends.local.kt import stop_requested  # lazy: KerasTuner and TensorFlow

    while True:
        time.sleep(0.5)
        if oracle.fatal or _chief_finished(oracle, servicer):
            return None
        problem = crew.check()
        if problem:
            return problem
        if crew.all_done() and not oracle.ongoing_trials and stop_requested(servicer):
            return None


def _write_oracle_file(folder: Path, host: str, port: int) -> None:
    info = {"host": host, "port": port, "machine": socket.gethostname()}
    (folder / "oracle.json").write_text(json.dumps(info))


# ----------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    """Return the worker's argument parser."""
    p = argparse.ArgumentParser(prog="python -m core.backends.local.worker", description=__doc__)
    p.add_argument("--run-id", type=int, required=True, help="the run to work on")
    p.add_argument("--db", help="the store's SQLAlchemy URL (default $CLOUDTUNE_DB)")
    p.add_argument(
        "--role",
        choices=("auto", "single", "chief", "worker"),
        default="auto",
        help="auto: single when parallel_trials is 1, else chief",
    )
    p.add_argument("--tuner-id", help="a worker's KerasTuner id (unique per worker)")
    p.add_argument("--oracle", help="a worker's chief oracle as HOST:PORT")
    p.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: automatic)")
    return p


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The worker's log lines (its worker.log): a timestamp, the level and the module."""


def configure_logging() -> None:
    """Send every core module's log records, timestamped, to this process's output."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout, force=True)


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


UNUSED_IMPORTS = ("pandas", "matplotlib")
"""Libraries Keras imports at start-up when they are installed, for features a worker never
uses (DataFrame input, image plots)."""

SKLEARN_IMPORTS = ("sklearn", "scipy")
"""What Keras' scikit-learn wrappers import at start-up (scikit-learn pulls in SciPy); a
worker needs them only for bayesian (KerasTuner's Gaussian process) and digits (read from
scikit-learn's bundled file)."""


def unused_imports(spec: Mapping[str, Any]) -> list[str]:
    """The libraries a worker of ``spec`` (a spec dict) never uses."""
    names = list(UNUSED_IMPORTS)
    dataset = str((spec.get("dataset") or {}).get("name", ""))
    if spec.get("strategy") != "bayesian" and dataset != "digits":
        names += SKLEARN_IMPORTS
    return names


def skip_unused_imports(spec: Mapping[str, Any]) -> list[str]:
    """Mark the libraries a worker of ``spec`` never uses as absent, before TensorFlow loads.

    Keras imports pandas, matplotlib and scikit-learn (with SciPy) when they are installed, as
    CloudTune's environment has them: about a third of a worker's TensorFlow start (measured
    on 2 cores: 5.6-10 s without, 4-6 s with; bench/README.md). Keras and KerasTuner import
    each in ``try``/``except ImportError``, so marking one absent (``None`` in
    ``sys.modules``) only skips it. Only for a fresh worker process: a module already
    imported stays.

    Returns:
        The names marked absent.
    """
    skipped = [n for n in unused_imports(spec) if n not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    return skipped


def main(argv: Sequence[str] | None = None, *, fresh_process: bool = False) -> int:
    """Run one role of a run's worker; return the exit status.

    Args:
        argv: the command line (default ``sys.argv``).
        fresh_process: this is the worker's own process (``python -m``), whose start-up may
            skip the libraries it never uses (:func:`skip_unused_imports`).
    """
    args = build_parser().parse_args(argv)
    configure_logging()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    store = Store(args.db)
    run = store.get_run(args.run_id)
    if fresh_process and "tensorflow" not in sys.modules:
        skip_unused_imports(run.spec)
    parallel = int(run.spec.get("budget", {}).get("parallel_trials", 1))
    role = args.role if args.role != "auto" else ("single" if parallel == 1 else "chief")
    log.info("run %s: %s", args.run_id, role)
    if role == "worker":
        if args.oracle:
            host, _, port = args.oracle.rpartition(":")
            os.environ.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=port)
        tuner_id = args.tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"
        return run_worker(store, args.run_id, tuner_id, args.threads or default_threads(1))
    session = Session(store, args.run_id)
    if role == "chief":
        threads = args.threads or int(run.settings.get("threads") or 0)
        threads = threads or default_threads(parallel)
        return run_chief(session, store.url, parallel, threads)
    threads = args.threads or int(run.settings.get("threads") or 0) or default_threads(1)
    return run_single(session, threads)


if __name__ == "__main__":
    sys.exit(main(fresh_process=True))
