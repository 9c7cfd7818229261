"""The local backend: KerasTuner on this machine, in detached worker processes.

``launch`` starts ``python -m core.backends.local.worker`` in its own session and returns at once; the worker
writes trials and epochs to the store itself, so ``poll`` only reads the store and notices a
worker that died (its process is gone, or it sent no heartbeat for a minute). ``cancel`` stops
the worker's whole process group within seconds; ``resume`` restarts a run whose worker died,
reloading its KerasTuner project so completed trials are neither lost nor run again.

Settings (``local.<name>`` in the store, or per run): ``threads`` (TensorFlow threads per
worker; default cores // parallel_trials), ``rate_per_hour`` (what an hour of this machine
costs, default 0), ``oracle_host`` and ``oracle_port`` (where the chief oracle of a parallel
run listens; default 127.0.0.1 and a free port; use 0.0.0.0 to let other machines join),
``recycle_mb`` (a worker re-executes itself in place once its memory grew this much; default
64, 0 never).

Example:
    >>> backend = LocalBackend(store)
    >>> backend.check({})
    []
    >>> handle = backend.launch(spec, store.get_run(run_id))
    >>> backend.poll(store.get_run(run_id)).status
    'running'
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends.base import BACKENDS, Backend, Forecast, PollResult
from core.backends.local.hypermodel import (
    PROJECT_NAME,
    checkpoint_path,
    load_all_weights,
    trial_params,
)
from core.backends.local.worker import (
    _load_dataset,
    new_run_folder,
    run_folder,
    tuner_path,
    worker_command,
    worker_env,
)
from core.costs.forecasting import forecast
from core.errors import BackendError, CloudTuneError
from core.spec import StudySpec
from core.store import ACTIVE_STATUSES, Store, data_home
from core.training.data import available_datasets
from core.training.model import build_model, clear_session

if TYPE_CHECKING:
    from core.spec import StudySpec
    from core.store import RunRow, TrialRow

log = logging.getLogger(__name__)

DEAD_AFTER_S = 60.0
"""A running run whose worker sent no heartbeat for this long is called dead."""

CANCEL_GRACE_S = 3.0
"""Seconds a cancelled worker gets to stop after SIGTERM before SIGKILL."""

REQUIRED_MODULES = ("tensorflow", "keras", "keras_tuner", "tensorboard", "grpc", "psutil")
"""What the worker imports (KerasTuner needs tensorboard and grpc with TensorFlow)."""

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Workers started by this process and not yet exited (each has a reaper thread)."""


def _adopt(proc: subprocess.Popen[bytes]) -> None:
    """Collect the worker's exit as soon as it happens, so no zombie stays under this process.

    The app server starts workers and may never poll them again (a finished run is not
    polled), so a thread waits for each one; ``wait`` and ``poll`` share Popen's lock.
    """
    _CHILDREN[proc.pid] = proc

    def reap() -> None:
        proc.wait()
        _CHILDREN.pop(proc.pid, None)

    threading.Thread(target=reap, name=f"reap-{proc.pid}", daemon=True).start()


@dataclass(frozen=True)
class Handle:
    """Where a run's worker lives: its process (and group), machine and log."""

    pid: int
    pgid: int
    host: str
    started: float
    log: str

    def to_json(self) -> str:
        """Return the JSON stored on the run."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Handle | None:
        """Read a stored handle (JSON, or a bare process id); None when there is none."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if isinstance(data, int):
            return cls(data, data, socket.gethostname(), 0.0, "")
        if not isinstance(data, dict) or "pid" not in data:
            return None
        return cls(
            pid=int(data["pid"]),
            pgid=int(data.get("pgid") or data["pid"]),
            host=str(data.get("host", "")),
            started=float(data.get("started", 0.0)),
            log=str(data.get("log", "")),
        )


class LocalBackend:
    """KerasTuner on this machine: one worker process a run (a chief and workers in parallel).

    Args:
        store: the result store; its URL is handed to the worker, so it must be a file or a
            server (not an in-memory SQLite database).
        dead_after_s: seconds without a heartbeat after which a running worker is dead.
    """

    name = "local"
    label = BACKENDS["local"]

    def __init__(self, store: Store, *, dead_after_s: float = DEAD_AFTER_S) -> None:
        self.store = store
        self.dead_after_s = dead_after_s
        self._seen: dict[int, int] = {}

    # -- check and estimate
    def check(self, settings: Mapping[str, Any]) -> list[str]:
        """Return what stops a local run from working, a sentence each; [] when ready."""
        problems = []
        missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            problems.append(
                f"The local backend needs the Python packages {', '.join(missing)}; install "
                "them with `make venv` (pip install -r requirements.txt)."
            )
        if _in_memory(self.store.url):
            problems.append(
                "The result store is an in-memory database, which a worker process cannot "
                "open; use a SQLite file or a server (set CLOUDTUNE_DB or --db)."
            )
        problems.extend(_setting_problems(settings))
        try:
            home = data_home()
            writable = os.access(home, os.W_OK)
        except OSError:
            home, writable = None, False
        if not writable:
            problems.append(
                f"The data folder {home or ''} cannot be written; set CLOUDTUNE_HOME to a folder "
                "you can write."
            )
        return problems

    def dataset_problems(self, spec: StudySpec) -> list[str]:
        """Return why ``spec``'s dataset cannot be read on this machine (a sentence); [] if it can."""
        d = spec.dataset
        for info in available_datasets(d.path):
            if info.name == d.name and not info.available:
                where = f" at {d.path}" if d.path else ""
                return [f"The dataset {d.name} is not on this machine{where}. {info.how_to_get}"]
        return []

    def estimate(
        self, spec: StudySpec, settings: Mapping[str, Any], *, calibrate: bool = True
    ) -> Forecast:
        """Forecast time and cost from earlier local trials, else a calibration.

        Args:
            spec: the study.
            settings: the local settings.
            calibrate: when neither history nor a stored calibration applies, time a few
                training steps now (10-20 s with TensorFlow's import); False leaves the
                expected time unknown instead.
        """
        return forecast("local", spec, settings, self.store, calibrate=calibrate)

    # -- launch, poll, cancel, resume
    def launch(self, spec: StudySpec, run: RunRow) -> str:
        """Start the run's worker (detached) and return its handle, also stored on the run.

        The run's folder (named by its identity) is created here; one already there is some
        other run's, and is refused rather than read.

        Raises:
            BackendError: the folder exists, or the worker cannot start.
        """
        try:
            folder = new_run_folder(run.uid)
        except CloudTuneError as err:
            raise BackendError(str(err)) from err
        handle = self._start(run.id, folder)
        self.store.update_run(run.id, handle=handle)
        return handle

    def _start(self, run_id: int, folder: Path) -> str:
        log_path = folder / "worker.log"
        url = absolute_url(self.store.url)
        env = worker_env({"CLOUDTUNE_DB": url, "CLOUDTUNE_HOME": str(data_home().resolve())})
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    worker_command(run_id),
                    cwd=os.getcwd(),  # a spec's relative dataset path means the same there
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as err:
                raise BackendError(f"Cannot start the local worker: {err.strerror}.") from err
        _adopt(proc)
        started = _create_time(proc.pid)
        return Handle(proc.pid, proc.pid, socket.gethostname(), started, str(log_path)).to_json()

    def poll(self, run: RunRow) -> PollResult:
        """Read the run's progress from the store; mark it failed if its worker died."""
        run = self.store.get_run(run.id)
        if run.status in ACTIVE_STATUSES:
            reason = self._dead_reason(run)
            if reason:
                run = self.store.get_run(run.id)  # the worker may have finished as it exited
                if run.status in ACTIVE_STATUSES:
                    self._mark_dead(run, reason)
                    run = self.store.get_run(run.id)
        counts = self.store.count_trials(run.id)
        finished = counts.get("completed", 0) + counts.get("failed", 0)
        new = max(0, finished - self._seen.get(run.id, 0))
        self._seen[run.id] = finished
        return PollResult(
            status=run.status, detail=run.status_detail, new_trials=new, error=run.error
        )

    def cancel(self, run: RunRow) -> None:
        """Stop the run's workers within seconds; the run becomes cancelled, trials stay."""
        run = self.store.get_run(run.id)
        if run.status not in ACTIVE_STATUSES:
            return
        self.store.set_run_status(run.id, "cancelled", detail="cancelled by the user")
        handle = Handle.parse(run.handle)
        if handle is not None and handle.host == socket.gethostname():
            _stop_group(handle, CANCEL_GRACE_S)
        _stop_running_trials(self.store, run.id, "cancelled with the run")

    def resume(self, run: RunRow) -> str:
        """Restart a run whose worker died (or that was cancelled or stopped); return the handle.

        Completed trials are kept and not run again; an interrupted trial runs again under
        its own key, so the store never holds a duplicate.

        Raises:
            BackendError: the run is still running, already completed, failed for good, or
                its KerasTuner folder is gone.
        """
        run = self.store.get_run(run.id)
        if run.status in ACTIVE_STATUSES:
            self.poll(run)
            run = self.store.get_run(run.id)
        _check_resumable(self.store, run)
        # no handle until the new worker's: a listing must not find the old, dead one
        self.store.update_run(run.id, error=None, handle=None)
        self.store.set_run_status(run.id, "queued", detail="resumed")
        handle = self._start(run.id, run_folder(run.uid))
        self.store.update_run(run.id, handle=handle)
        return handle

    # -- export
    def export_model(self, run: RunRow, dest: str | Path, *, retrain: bool = False) -> Path:
        """Save the best trial's model of a run as a .keras file; return its path.

        Args:
            run: the run.
            dest: a .keras file, or a folder to put ``run<id>-trial<key>.keras`` in.
            retrain: when the best trial's weights are not on this machine, train its
                configuration again instead of failing.

        Raises:
            BackendError: the run has no completed trial, or its weights are missing.
        """
        return export_best_model(self.store, run.id, dest, retrain=retrain)

    # -- liveness
    def _dead_reason(self, run: RunRow) -> str | None:
        handle = Handle.parse(run.handle)
        if handle is None:
            return None
        if handle.host == socket.gethostname() and not _alive(handle):
            return (
                f"The local worker (process {handle.pid}) stopped while the run was "
                f"{run.status}: it was killed, ran out of memory, or the machine restarted."
            )
        beat = run.heartbeat_at
        if run.status == "running" and beat is not None and time.time() - beat > self.dead_after_s:
            return (
                f"The local worker sent no heartbeat for {time.time() - beat:.0f} s "
                f"(process {handle.pid} on {handle.host or 'this machine'})."
            )
        return None

    def _mark_dead(self, run: RunRow, reason: str) -> None:
        handle = Handle.parse(run.handle)
        if handle is not None and handle.host == socket.gethostname():
            _stop_group(handle, 0.0)
        log = f" Its log is {handle.log}." if handle is not None and handle.log else ""
        sentence = (
            f"{reason} Completed trials are kept; `python -m core resume {run.id}` continues "
            f"the run.{log}"
        )
        _stop_running_trials(self.store, run.id, "interrupted: the worker stopped")
        self.store.set_run_status(run.id, "failed", error=sentence, detail=interrupted(run.id))


_conforms: type[Backend] = LocalBackend


# ----------------------------------------------------------------------------- helpers


def interrupted(run_id: int) -> str:
    """The status detail of a run whose worker died: what the listings show."""
    return f"interrupted: resume with `python -m core resume {run_id}`"


def absolute_url(url: str) -> str:
    """Return ``url`` with a relative SQLite file made absolute (the worker's folder may differ)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return url
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db == ":memory:":
        return url
    if Path(db).expanduser().is_absolute():
        return url
    path = str(Path(db).expanduser().resolve())
    return parsed.set(database=path).render_as_string(hide_password=False)


def _in_memory(url: str) -> bool:
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _setting_problems(settings: Mapping[str, Any]) -> list[str]:
    problems = []
    checks: dict[str, tuple[float, float, str]] = {
        "threads": (0, 4096, "a whole number of threads, 0 or more (0: automatic)"),
        "rate_per_hour": (0, float("inf"), "a number of dollars per hour, 0 or more"),
        "oracle_port": (0, 65535, "a port number from 0 to 65535 (0: any free port)"),
        "recycle_mb": (0, 1e6, "megabytes of memory growth, 0 or more (0: never recycle)"),
    }
    for key, (lo, hi, what) in checks.items():
        value = settings.get(key)
        if value is None or value == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        whole = key not in ("rate_per_hour", "recycle_mb")
        if not lo <= number <= hi or (whole and not float(number).is_integer()):
            problems.append(f"The local setting {key} is {value!r}; it must be {what}.")
    host = settings.get("oracle_host")
    if host not in (None, "") and not isinstance(host, str):
        problems.append("The local setting oracle_host must be a host name or IP address.")
    return problems


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _alive(handle: Handle) -> bool:
    """True when the handle's process runs (not a zombie, not a reused process id)."""
    import psutil

    child = _CHILDREN.get(handle.pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(handle.pid, None)
        return False
    try:
        proc = psutil.Process(handle.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return not handle.started or abs(proc.create_time() - handle.started) < 2.0
    except psutil.Error:
        return False


def _group_alive(pgid: int) -> bool:
    import psutil

    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (OSError, psutil.Error):
            continue
    return False


def _stop_group(handle: Handle, grace_s: float) -> None:
    """SIGTERM the worker's process group, then SIGKILL what is left after ``grace_s``."""
    # a dead chief may leave workers behind: they get SIGKILL at once
    signals = [signal.SIGTERM, signal.SIGKILL] if _alive(handle) else [signal.SIGKILL]
    for sig in signals:
        try:
            os.killpg(handle.pgid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline and _group_alive(handle.pgid):
            _reap(handle.pid)
            time.sleep(0.1)
        if not _group_alive(handle.pgid):
            break
    _reap(handle.pid)


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)


def _stop_running_trials(store: Store, run_id: int, why: str) -> None:
    for trial in store.list_trials(run_id, status="running"):
        store.upsert_trial(run_id, trial.trial_key, status="stopped", error=why)


def _check_resumable(store: Store, run: RunRow) -> None:
    if run.status in ACTIVE_STATUSES:
        raise BackendError(
            f"Run {run.id} is still {run.status} (its worker is alive); wait for it or cancel "
            "it first."
        )
    if run.status == "completed":
        raise BackendError(f"Run {run.id} already completed; there is nothing to resume.")
    if "in a row failed" in (run.error or ""):
        raise BackendError(
            f"Run {run.id} stopped because its trials kept failing, and would fail the same way "
            "again; narrow the search space and start a new run."
        )
    project = tuner_path(run.uid) / PROJECT_NAME
    if store.list_trials(run.id) and not (project / "oracle.json").exists():
        raise BackendError(
            f"Run {run.id}'s KerasTuner folder ({project}) is gone (deleted, or the run started "
            "before CloudTune named run folders by run identity), so its search cannot "
            "continue without repeating trials; start a new run."
        )


def best_trial(store: Store, run: RunRow) -> TrialRow:
    """Return the run's best completed trial by its spec's objective.

    Raises:
        BackendError: the run has no completed trial.
    """
    goal = run.spec.get("objective", {}).get("goal", "max")
    done = [t for t in store.list_trials(run.id, status="completed") if t.objective is not None]
    if not done:
        raise BackendError(f"Run {run.id} has no completed trial yet, so there is no model.")
    key = (lambda t: t.objective) if goal == "max" else (lambda t: -(t.objective or 0.0))
    return max(done, key=key)


def export_best_model(
    store: Store, run_id: int, dest: str | Path, *, retrain: bool = False
) -> Path:
    """Save the best model of a local run as a .keras file; see LocalBackend.export_model."""
    run = store.get_run(run_id)
    spec = StudySpec.from_dict(run.spec)
    trial = best_trial(store, run)
    weights = checkpoint_path(tuner_path(run.uid) / PROJECT_NAME, trial.trial_key)
    if not weights.exists() and not retrain:
        raise BackendError(
            f"The weights of run {run_id}'s best trial ({trial.trial_key}) are not on this "
            f"machine ({weights}); it may have trained on another worker machine. Add "
            "--retrain to train its configuration again here."
        )
    target = Path(dest)
    if target.is_dir():
        target = target / f"run{run_id}-trial{trial.trial_key}.keras"
    if target.suffix != ".keras":
        target = target.with_suffix(".keras")
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _load_dataset(spec)
    params = trial_params(spec, trial.params)
    model = build_model(params, data.input_shape, data.num_classes, spec.model)
    if weights.exists():
        load_all_weights(model, weights)
    else:
        epochs = int(trial.metrics.get("best_epoch") or spec.budget.epochs)
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=int(params["batch_size"]),
            epochs=epochs,
            verbose=0,
        )
    model.save(str(target))
    clear_session()
    return target
