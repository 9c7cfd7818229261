"""Benchmark of the local backend against a plain KerasTuner script: time, accuracy, overhead, memory.

One command (``python -m bench.bench_local``, or ``make bench`` for every benchmark) runs, on
this machine and one after the other:

* (a) a plain KerasTuner script as a user would write it from the KerasTuner documentation
  (RandomSearch, a HyperModel whose ``fit`` applies batch_size, the same CNN, the published
  study's space, the same data, trials and epochs);
* (b) the local backend on the same spec (random search); (a) and (b) run five times,
  interleaved, each pair with its own seed (42, 43, ...: the same configurations for both, other
  initial weights and data orders), and their median times and mean best accuracies are
  compared. One seed's best of 8 short trials swings by ±0.1, so a single pair says little
  about accuracy;
* (c) the local backend with hyperband, with parallel_trials=2, and with both, each with the
  same seeds as (a), and when each first reached the best accuracy of (a) with its seed
  (per epoch; the median seed is compared with the target);
* the per-epoch overhead of a trial against a bare ``model.fit`` of the same model;
* the worker's resident memory over 30 trials (digits, 1 epoch);
* a profile of where a trial's time goes (model build, first-epoch tracing, validation batch,
  steps per execution, checkpoint writes, input pipeline).

It writes ``bench/results/local.json`` (figures, targets, machine and versions) and prints a
summary. Data: Fashion-MNIST from Debian's dataset-fashion-mnist (a subset, so that the whole
benchmark fits in minutes on two cores), digits when it is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "local.json"

TARGETS = {
    "b_time_ratio_max": 0.8,
    "c_time_to_a_best_ratio_max": 0.33,
    "epoch_overhead_max": 0.05,
    "rss_growth_mb_max": 100.0,
}

PUBLISHED_SPACE = [
    {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1, "scale": "linear"},
    {"name": "batch_size", "type": "choice", "values": [32, 64, 128]},
    {"name": "dropout_rate", "type": "float", "min": 0.2, "max": 0.4, "scale": "linear"},
]

BARE_PARAMS = {"learning_rate": 0.001, "batch_size": 64, "dropout_rate": 0.3}


# ----------------------------------------------------------------------------- set-up


def dataset_name() -> str:
    """Fashion-MNIST when Debian's package (or another copy) is there, else digits."""
    from core.training.data import available_datasets

    for info in available_datasets():
        if info.name == "fashion_mnist" and info.available:
            return "fashion_mnist"
    return "digits"


def make_spec_data(
    data: str, subset: int | None, trials: int, epochs: int, **changes: Any
) -> dict[str, Any]:
    """The published study's space on ``data``, random search, one trial at a time."""
    spec: dict[str, Any] = {
        "name": "bench-local",
        "dataset": {"name": data, "validation_split": 0.2},
        "space": PUBLISHED_SPACE,
        "strategy": "random",
        "objective": {"metric": "val_accuracy", "goal": "max"},
        "budget": {"max_trials": trials, "parallel_trials": 1, "epochs": epochs},
        "seed": 42,
    }
    if subset:
        spec["dataset"]["subset"] = subset
    budget = changes.pop("budget", {})
    spec["budget"].update(budget)
    spec.update(changes)
    return spec


def machine() -> dict[str, Any]:
    """The machine and the versions the figures were measured with."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory_gb = None
    versions = {"python": platform.python_version()}
    for pkg in ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "numpy", "sqlalchemy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def child_env(home: Path) -> dict[str, str]:
    """Environment of every process the benchmark starts: a local worker's, on its own store."""
    from core.backends.local.worker import worker_env

    return worker_env(
        {
            "CLOUDTUNE_HOME": str(home),
            "CLOUDTUNE_DB": f"sqlite:///{home / 'cloudtune.db'}",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )


# ----------------------------------------------------------------------------- (a) plain script


def plain_kerastuner(spec: dict[str, Any], workdir: str) -> dict[str, Any]:
    """The plain KerasTuner script, as a user writes it from KerasTuner's documentation.

    RandomSearch over a HyperModel whose ``fit`` applies batch_size ("Tune model training"
    in the KerasTuner guide), with KerasTuner's defaults (progress output, a checkpoint of
    every trial's best epoch). The three hyperparameters are declared in the spec's order so
    both searches draw the same configurations from seed 42.
    """
    import keras_tuner as kt

    from core.training.data import load_dataset
    from core.training.model import build_model

    d = spec["dataset"]
    ds = load_dataset(  # the split the backend's worker makes: the spec's seed
        d["name"], subset=d.get("subset"), validation_split=d["validation_split"], seed=spec["seed"]
    )
    space = {p["name"]: p for p in spec["space"]}

    class CNNHyperModel(kt.HyperModel):
        def build(self, hp: Any) -> Any:
            lr, bs, dr = space["learning_rate"], space["batch_size"], space["dropout_rate"]
            params = {
                "learning_rate": hp.Float("learning_rate", lr["min"], lr["max"]),
                "batch_size": hp.Choice("batch_size", bs["values"]),
                "dropout_rate": hp.Float("dropout_rate", dr["min"], dr["max"]),
            }
            return build_model(params, ds.input_shape, ds.num_classes)

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)

    started = time.time()
    tuner = kt.RandomSearch(
        CNNHyperModel(),
        objective="val_accuracy",
        max_trials=spec["budget"]["max_trials"],
        seed=spec["seed"],
        directory=workdir,
        project_name="plain",
        overwrite=True,
    )
    tuner.search(
        ds.x_train,
        ds.y_train,
        epochs=spec["budget"]["epochs"],
        validation_data=(ds.x_val, ds.y_val),
    )
    trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
    return {
        "search_s": time.time() - started,
        "best": max(t.score for t in trials),
        "mean": statistics.fmean(t.score for t in trials),
        "scores": [t.score for t in trials],
        "params": [t.hyperparameters.values for t in trials],
        "disk_bytes": _folder_bytes(Path(workdir)),
    }


def bare_fit(spec: dict[str, Any], params: dict[str, Any], epochs: int) -> dict[str, Any]:
    """A bare ``model.fit`` of the same CNN and data, timed per epoch (the overhead baseline)."""
    import keras

    from core.training.data import load_dataset
    from core.training.model import build_model, configure_threads

    configure_threads(os.cpu_count() or 1)  # what a single worker sets
    d = spec["dataset"]
    ds = load_dataset(
        d["name"], subset=d.get("subset"), validation_split=d["validation_split"], seed=42
    )
    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            stamps.append(time.time())

    keras.utils.set_random_seed(42)
    started = time.time()
    model = build_model(params, ds.input_shape, ds.num_classes)
    model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=params["batch_size"],
        epochs=epochs,
        validation_data=(ds.x_val, ds.y_val),
        verbose=0,
        callbacks=[Stamp()],
    )
    return {"total_s": time.time() - started, "epoch_ends": stamps, "started": started}


def run_child(mode: str, payload: dict[str, Any], home: Path, log: Path) -> dict[str, Any]:
    """Run ``plain`` or ``bare`` in a fresh process; return its result and its wall time."""
    request = home / f"{mode}-request.json"
    result = home / f"{mode}-result.json"
    request.write_text(json.dumps(payload))
    cpu = _children_cpu()
    started = time.time()
    with open(log, "ab") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.bench_local", mode, str(request), str(result)],
            cwd=str(ROOT),
            env=child_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )
    data = json.loads(result.read_text())
    data["wall_s"] = time.time() - started
    data["cpu_s"] = _children_cpu() - cpu
    return data


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process of this one, so far.

    The machine may be shared: CPU seconds compare runs fairly when wall time cannot.
    """
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ----------------------------------------------------------------------------- (b), (c): backend


class RssSampler:
    """Samples a process's resident memory (MB) every ``every_s`` seconds in a thread."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            while not self._stop.is_set():
                self.samples.append((time.time(), proc.memory_info().rss / 2**20))
                self._stop.wait(self.every_s)
        except psutil.Error:
            return

    def at(self, when: float) -> float | None:
        """The last sample taken at or before ``when`` (the process still holding that trial)."""
        before = [mb for t, mb in self.samples if t <= when]
        return before[-1] if before else None


def run_backend(spec_data: dict[str, Any], *, sample_rss: bool = False) -> dict[str, Any]:
    """Launch ``spec_data`` on the local backend and wait for it; return its figures."""
    from core.backends.local.backend import Handle, LocalBackend
    from core.backends.local.worker import run_path
    from core.spec import StudySpec
    from core.store import ACTIVE_STATUSES, Store

    store = Store()
    spec = StudySpec.from_dict(spec_data)
    backend = LocalBackend(store)
    run_id = store.create_run(store.create_study(spec), "local", spec=spec)
    cpu = _children_cpu()
    started = time.time()
    handle = Handle.parse(backend.launch(spec, store.get_run(run_id)))
    assert handle is not None
    sampler = RssSampler(handle.pid) if sample_rss else None
    if sampler is not None:
        sampler.__enter__()
    try:
        while backend.poll(store.get_run(run_id)).status in ACTIVE_STATUSES:
            time.sleep(0.2)
    finally:
        if sampler is not None:
            sampler.__exit__()
    _reap(handle.pid)
    run = store.get_run(run_id)
    trials = store.list_trials(run_id)
    done = [t for t in trials if t.status == "completed" and t.objective is not None]
    ended = run.ended_at or time.time()
    out: dict[str, Any] = {
        "run_id": run_id,
        "seed": spec.seed,
        "status": run.status,
        "error": run.error,
        "wall_s": ended - started,
        "cpu_s": _children_cpu() - cpu,
        "trials": len(trials),
        "completed": len(done),
        "best": max((t.objective for t in done), default=None),  # type: ignore[type-var]
        "mean": statistics.fmean(t.objective for t in done) if done else None,  # type: ignore[misc]
        "curve": [
            (round((t.ended_at or ended) - started, 2), t.objective)
            for t in sorted(done, key=lambda t: t.ended_at or 0)
        ],
        "epoch_curve": epoch_curve(store, done, spec.objective.metric, started),
        "trial_s": [round(t.duration_s or 0, 2) for t in trials],
        "epoch_ats": [[e["at"] for e in store.list_epochs(t.id)] for t in trials],
        "disk_bytes": _folder_bytes(run_path(run.uid)),
        "started": started,
    }
    if sampler is not None:
        out["rss_after_trial_mb"] = [
            sampler.at(t.ended_at or ended) for t in sorted(trials, key=lambda t: t.number or 0)
        ]
        out["rss_peak_mb"] = max((mb for _, mb in sampler.samples), default=None)
    return out


def run_log(run_id: int) -> Path:
    """The worker log of a run in the default store."""
    from core.backends.local.worker import run_path
    from core.store import Store

    return run_path(Store().get_run(run_id).uid) / "worker.log"


def _reap(pid: int) -> None:
    """Wait for the worker to exit so its CPU time is counted."""
    from core.backends.local.backend import _CHILDREN

    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=60)


def epoch_curve(
    store: Any, trials: Sequence[Any], metric: str, started: float
) -> list[tuple[float, float]]:
    """Return (seconds from launch, metric) of every epoch of ``trials``, in time order.

    An epoch's weights are what a trial keeps when that epoch is its best, so the first epoch
    at or above a target is when the run had a model that good (a trial's end can come
    epochs later).
    """
    points = [
        (round(e["at"] - started, 2), float(e[metric]))
        for t in trials
        for e in store.list_epochs(t.id)
        if e.get("at") is not None and e.get(metric) is not None
    ]
    return sorted(points)


def time_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """Seconds from launch until a trial first reached ``target`` (None: never)."""
    return next((t for t, value in curve if value is not None and value >= target), None)


def reach_curve(run: dict[str, Any]) -> Sequence[tuple[float, float]]:
    """The finest curve a run has: per epoch when recorded, else per trial."""
    return run.get("epoch_curve") or run.get("curve") or []


# ----------------------------------------------------------------------------- overhead, memory


def epoch_overhead(spec_data: dict[str, Any], home: Path, log: Path, epochs: int) -> dict[str, Any]:
    """Per-epoch time of one backend trial against a bare fit of the same model, interleaved."""
    fixed = [{"name": k, "type": "fixed", "value": v} for k, v in BARE_PARAMS.items()]
    one = {**spec_data, "space": fixed, "budget": {"max_trials": 1, "epochs": epochs}}
    bare_epochs, ours_epochs, bare_totals, ours_totals = [], [], [], []
    for _ in range(2):
        bare = run_child("bare", {"spec": one, "params": BARE_PARAMS, "epochs": epochs}, home, log)
        stamps = bare["epoch_ends"]
        bare_epochs += [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        bare_totals.append(bare["total_s"])
        ours = run_backend(one)
        ats = ours["epoch_ats"][0]
        ours_epochs += [b - a for a, b in zip(ats, ats[1:], strict=False)]
        ours_totals.append(ours["trial_s"][0])
    bare_epoch, ours_epoch = statistics.median(bare_epochs), statistics.median(ours_epochs)
    bare_total, ours_total = min(bare_totals), min(ours_totals)
    return {
        "params": BARE_PARAMS,
        "epochs": epochs,
        "bare_epoch_s": round(bare_epoch, 3),
        "backend_epoch_s": round(ours_epoch, 3),
        "epoch_overhead": round(ours_epoch / bare_epoch - 1, 4),
        "bare_trial_s": round(bare_total, 2),
        "backend_trial_s": round(ours_total, 2),
        "trial_overhead": round(ours_total / bare_total - 1, 4),
        "method": "median interval between consecutive epoch ends (epochs 2..n, two runs each, "
        "bare and backend interleaved); the backend's intervals include its callbacks and "
        "store writes. trial_*: build + fit of the bare script vs the trial's duration_s.",
    }


def rss_growth(trials: int) -> dict[str, Any]:
    """Worker memory over ``trials`` trials of digits, 1 epoch each."""
    spec = make_spec_data("digits", None, trials, 1)
    out = run_backend(spec, sample_rss=True)
    rss = [mb for mb in out["rss_after_trial_mb"] if mb is not None]
    log = run_log(out["run_id"])
    result: dict[str, Any] = {
        "trials": out["trials"],
        "status": out["status"],
        "recycles": log.read_text(errors="replace").count("recycling"),
        "rss_after_trial_mb": [round(mb, 1) for mb in rss],
        "rss_peak_mb": round(out["rss_peak_mb"] or 0, 1),
    }
    if len(rss) >= 2:
        result["growth_mb"] = round(rss[-1] - rss[0], 1)
        result["max_over_first_mb"] = round(max(rss) - rss[0], 1)
        steps = [b - a for a, b in zip(rss, rss[1:], strict=False) if b >= a]
        result["growth_per_trial_mb"] = round(statistics.median(steps), 2) if steps else 0.0
    return result


# ----------------------------------------------------------------------------- profile


def profile(spec: dict[str, Any], repeats: int = 2) -> dict[str, Any]:
    """Where a trial's time goes, measured in one process (medians of ``repeats``, interleaved)."""
    import keras

    from core.training.data import load_dataset
    from core.training.model import build_model, clear_session

    d = spec["dataset"]
    ds = load_dataset(
        d["name"], subset=d.get("subset"), validation_split=d["validation_split"], seed=42
    )
    params = dict(BARE_PARAMS)
    batch = int(params["batch_size"])
    variants: dict[str, dict[str, Any]] = {
        "keras_defaults": {"validation_batch_size": None, "steps_per_execution": 1},
        "validation_batch_512": {"validation_batch_size": 512, "steps_per_execution": 1},
        "validation_512_steps_8": {"validation_batch_size": 512, "steps_per_execution": 8},
        "async_off_terminate_on_nan": {
            "validation_batch_size": 512,
            "steps_per_execution": 1,
            "terminate_on_nan": True,
        },
    }
    timings: dict[str, dict[str, list[float]]] = {
        k: {"build": [], "first": [], "epoch": []} for k in variants
    }
    saves, copies = [], []
    for _ in range(repeats):
        for name, opts in variants.items():
            clear_session()
            keras.utils.set_random_seed(1)
            t0 = time.perf_counter()
            model = build_model(params, ds.input_shape, ds.num_classes)
            if opts["steps_per_execution"] != 1:
                config = model.get_compile_config()
                config["steps_per_execution"] = opts["steps_per_execution"]
                model.compile_from_config(config)
            timings[name]["build"].append(time.perf_counter() - t0)
            ends = _timed_fit(
                model, ds, batch, 3, opts["validation_batch_size"], opts.get("terminate_on_nan")
            )
            timings[name]["first"].append(ends[0])
            timings[name]["epoch"] += ends[1:]
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                model.save_weights(str(Path(tmp) / "w.weights.h5"))
                saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            model.get_weights()
            copies.append(time.perf_counter() - t0)
    out: dict[str, Any] = {
        name: {k: round(statistics.median(v), 3) for k, v in t.items()}
        for name, t in timings.items()
    }
    import gc

    t0 = time.perf_counter()
    gc.collect()
    out["gc_collect_s"] = round(time.perf_counter() - t0, 3)
    gc.freeze()
    t0 = time.perf_counter()
    gc.collect()
    out["gc_collect_after_freeze_s"] = round(time.perf_counter() - t0, 3)
    out["checkpoint_write_s"] = round(statistics.median(saves), 4)
    out["weights_copy_in_memory_s"] = round(statistics.median(copies), 4)
    out["params"] = params
    return out


def _timed_fit(
    model: Any, ds: Any, batch: int, epochs: int, val_batch: int | None, nan_check: Any = None
) -> list[float]:
    import keras

    marks = [time.perf_counter()]

    class Mark(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            marks.append(time.perf_counter())

    model.fit(
        ds.x_train,
        ds.y_train,
        batch_size=batch,
        epochs=epochs,
        validation_data=(ds.x_val, ds.y_val),
        validation_batch_size=val_batch,
        verbose=0,
        callbacks=[Mark(), *([keras.callbacks.TerminateOnNaN()] if nan_check else [])],
    )
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


# ----------------------------------------------------------------------------- the whole benchmark


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _step(name: str, fn: Callable[[], Any], figures: dict[str, Any]) -> Any:
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    started = time.time()
    try:
        value = fn()
    except Exception as err:  # one failed step must not lose the others' figures
        value = {"error": f"{type(err).__name__}: {err}"}
    figures[name] = value
    print(f"    {json.dumps(_short(value))[:300]} ({time.time() - started:.0f} s)", flush=True)
    return value


def _short(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not isinstance(v, list) or len(v) <= 4}
    return value


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Run every part and return the figures (also written to ``args.out``)."""
    home = Path(tempfile.mkdtemp(prefix="bench-local-"))
    os.environ.update(child_env(home))
    log = home / "children.log"
    data = args.data or dataset_name()
    spec = make_spec_data(data, args.subset, args.trials, args.epochs)
    figures: dict[str, Any] = {
        "benchmark": "local backend vs a plain KerasTuner script",
        "command": "python -m bench.bench_local " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "data": {"name": data, "subset": args.subset, "validation_split": 0.2},
        "spec": spec,
        "targets": TARGETS,
    }
    a_runs, b_runs = [], []
    for i in range(1, args.repeats + 1):  # interleaved: a drift in load hits both alike
        seeded = {**spec, "seed": int(spec["seed"]) + i - 1}
        plain = {"spec": seeded, "workdir": str(home / f"plain{i}")}
        a_runs.append(_step(f"a_run{i}", partial(run_child, "plain", plain, home, log), figures))
        b_runs.append(_step(f"b_run{i}", partial(run_backend, seeded), figures))
    a = figures["a_plain_kerastuner"] = combine(a_runs)
    b = figures["b_backend_random"] = combine(b_runs)
    hb = make_spec_data(data, args.subset, args.trials, args.epochs, strategy="hyperband")
    par = make_spec_data(data, args.subset, args.trials, args.epochs, budget={"parallel_trials": 2})
    variants = {
        "c_backend_hyperband": hb,
        "c_backend_parallel2": par,
        "c_backend_hyperband_parallel2": {**hb, "budget": {**hb["budget"], "parallel_trials": 2}},
    }
    c_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for i in range(1, args.repeats + 1):  # the seeds of (a) and (b), variants interleaved
        for name, variant in variants.items():
            seeded = {**variant, "seed": int(variant["seed"]) + i - 1}
            c_runs[name].append(_step(f"{name}_run{i}", partial(run_backend, seeded), figures))
    c = {}
    for name, runs in c_runs.items():
        c[name] = figures[name] = {**combine(runs), "per_seed": reach_per_seed(runs, a_runs)}
    b["per_seed"] = reach_per_seed(b_runs, a_runs)
    _step(
        "epoch_overhead",
        lambda: epoch_overhead(spec, home, log, args.overhead_epochs),
        figures,
    )
    _step("rss_30_trials", lambda: rss_growth(args.rss_trials), figures)
    if not args.no_profile:
        _step("profile", lambda: run_child("profile", {"spec": spec}, home, log), figures)
    figures["summary"] = summarise(a, b, c, figures)
    figures["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge repeated runs: median wall and CPU time, mean best and mean accuracy."""
    ok = [r for r in runs if "wall_s" in r]
    if not ok:
        return runs[0] if runs else {"error": "did not run"}
    ok.sort(key=lambda r: r["wall_s"])
    out = dict(ok[(len(ok) - 1) // 2])  # the median run's own curve and details
    out["walls"] = [round(r["wall_s"], 1) for r in runs if "wall_s" in r]
    out["wall_s"] = statistics.median(r["wall_s"] for r in ok)
    out["cpu_s"] = statistics.median(r.get("cpu_s", 0.0) for r in ok)
    bests = [r["best"] for r in runs if "wall_s" in r and r.get("best") is not None]  # run order
    out["bests"] = [round(v, 4) for v in bests]
    out["best"] = statistics.fmean(bests) if bests else None
    means = [r["mean"] for r in ok if r.get("mean") is not None]
    out["mean"] = statistics.fmean(means) if means else None
    out["repeats"] = len(ok)
    return out


def reach_per_seed(
    runs: Sequence[dict[str, Any]], a_runs: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """For each seed, when ``runs[i]`` first reached the best of ``a_runs[i]`` (same seed).

    Returns one row per seed: (a)'s best and wall time, the seconds from launch to the first
    epoch at or above that best (None: never), and those seconds over (a)'s wall time.
    """
    rows = []
    for run, a in zip(runs, a_runs, strict=False):
        if "wall_s" not in run or a.get("best") is None or "wall_s" not in a:
            continue
        reach = time_to_reach(reach_curve(run), a["best"])
        rows.append(
            {
                "seed": run.get("seed"),
                "a_best": round(a["best"], 4),
                "a_wall_s": round(a["wall_s"], 1),
                "best": None if run.get("best") is None else round(run["best"], 4),
                "wall_s": round(run["wall_s"], 1),
                "reach_s": None if reach is None else round(reach, 1),
                "ratio": None if reach is None else round(reach / a["wall_s"], 3),
            }
        )
    return rows


def median_ratio(rows: Sequence[dict[str, Any]]) -> float | None:
    """The median of the rows' ratios, a seed that never reached counting as infinite."""
    ratios = sorted(math.inf if r["ratio"] is None else r["ratio"] for r in rows)
    if not ratios:
        return None
    mid = statistics.median(ratios)
    return None if math.isinf(mid) else round(mid, 3)


def paired_difference(b_bests: Sequence[float], a_bests: Sequence[float]) -> dict[str, Any]:
    """Compare (b)'s and (a)'s best accuracy seed by seed: mean difference and its 95% CI.

    Each pair shares a seed (the same configurations, other initial weights), so the
    differences are what the backend changed plus training noise; a confidence interval that
    holds 0 means these seeds cannot tell the two apart.
    """
    diffs = [b - a for b, a in zip(b_bests, a_bests, strict=False)]
    if len(diffs) < 2:
        return {}
    from scipy import stats

    mean = statistics.fmean(diffs)
    sem = statistics.stdev(diffs) / math.sqrt(len(diffs))
    half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sem
    return {
        "by_seed": [round(d, 4) for d in diffs],
        "mean": round(mean, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
    }


def summarise(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, dict[str, Any]], figures: dict[str, Any]
) -> dict[str, Any]:
    """Ratios and target checks."""
    out: dict[str, Any] = {}
    if "wall_s" not in a or "wall_s" not in b:
        return {"error": "(a) or (b) did not run"}
    a_best, a_wall = a["best"], a["wall_s"]
    rows = {"a_plain_kerastuner": a, "b_backend_random": b, **c}
    for name, r in rows.items():
        if "wall_s" not in r:
            continue
        trials = r.get("trials") or len(r.get("scores", []))
        row = {
            "wall_s": round(r["wall_s"], 1),
            "trials": trials,
            "trials_per_hour": round(trials / r["wall_s"] * 3600, 1),
            "best_val_accuracy": None if r.get("best") is None else round(r["best"], 4),
            "mean_val_accuracy": None if r.get("mean") is None else round(r["mean"], 4),
            "time_ratio_to_a": round(r["wall_s"] / a_wall, 3),
            "cpu_s": round(r.get("cpu_s", 0.0), 1),
            "cpu_ratio_to_a": round(r.get("cpu_s", 0.0) / max(a.get("cpu_s", 0.0), 1e-9), 3),
        }
        seeds = r.get("per_seed")
        if seeds:
            within = TARGETS["c_time_to_a_best_ratio_max"]
            row["time_to_a_best_ratio"] = median_ratio(seeds)
            row["time_to_a_best_s_by_seed"] = [x["reach_s"] for x in seeds]
            row["seeds_reaching_a_best"] = sum(x["reach_s"] is not None for x in seeds)
            row["seeds_reaching_a_best_within_target"] = sum(
                x["ratio"] is not None and x["ratio"] <= within for x in seeds
            )
            row["seeds"] = len(seeds)
        out[name] = row
    paired = paired_difference(b.get("bests", []), a.get("bests", []))
    if paired:
        out["b_minus_a_best"] = paired
    checks = {
        "b_at_least_as_accurate_as_a": b.get("best") is not None and b["best"] >= a_best,
        "b_time_ratio_at_most_0.8": out["b_backend_random"]["time_ratio_to_a"]
        <= TARGETS["b_time_ratio_max"],
    }
    for name in c:  # the median seed reaches its (a)'s best within 0.33x (a)'s time
        ratio = out.get(name, {}).get("time_to_a_best_ratio")
        checks[f"{name}_reaches_a_best_within_0.33"] = (
            ratio is not None and ratio <= TARGETS["c_time_to_a_best_ratio_max"]
        )
    over = figures.get("epoch_overhead", {})
    if "epoch_overhead" in over:
        checks["epoch_overhead_at_most_5pct"] = (
            over["epoch_overhead"] <= TARGETS["epoch_overhead_max"]
        )
    rss = figures.get("rss_30_trials", {})
    if "growth_mb" in rss:
        worst = max(rss["growth_mb"], rss.get("max_over_first_mb", rss["growth_mb"]))
        checks["rss_growth_at_most_100mb"] = worst <= TARGETS["rss_growth_mb_max"]
    out["targets_met"] = checks
    return out


def print_summary(figures: dict[str, Any]) -> None:
    """Print the headline figures."""
    summary = figures.get("summary", {})
    print(
        "\nrun                              wall s  trials/h  best acc  mean acc  x(a)  cpu x(a)"
        "  reach (a) best: median x(a), seconds by seed"
    )
    for name, row in summary.items():
        if not isinstance(row, dict) or "wall_s" not in row:
            continue
        ratio = row.get("time_to_a_best_ratio")
        by_seed = ", ".join(
            "-" if r is None else f"{r:.0f}" for r in row.get("time_to_a_best_s_by_seed", [])
        )
        reach = (
            "" if "seeds" not in row else f"{'-' if ratio is None else f'{ratio:.2f}'} ({by_seed})"
        )
        print(
            f"{name:32s} {row['wall_s']:6.1f} {row['trials_per_hour']:9.1f} "
            f"{row['best_val_accuracy'] or 0:9.4f} {row['mean_val_accuracy'] or 0:9.4f} "
            f"{row['time_ratio_to_a']:5.2f}  {row['cpu_ratio_to_a']:8.2f}  {reach}"
        )  # fmt: skip
    over = figures.get("epoch_overhead", {})
    if "epoch_overhead" in over:
        print(
            f"per-epoch overhead vs bare fit: {over['epoch_overhead']:+.1%} "
            f"({over['backend_epoch_s']} s vs {over['bare_epoch_s']} s)"
        )
    rss = figures.get("rss_30_trials", {})
    if "growth_mb" in rss:
        print(f"worker RSS: peak {rss['rss_peak_mb']} MB, growth over {rss['trials']} trials "
              f"{rss['growth_mb']:+} MB (at most {rss.get('max_over_first_mb')} MB above the "
              f"first trial; {rss.get('recycles')} recycle(s))")  # fmt: skip
    paired = summary.get("b_minus_a_best")
    if paired:
        low, high = paired["ci95"]
        print(f"(b) - (a) best accuracy, paired by seed: {paired['mean']:+.3f} "
              f"(95% CI {low:+.3f} .. {high:+.3f})")  # fmt: skip
    for check, ok in summary.get("targets_met", {}).items():
        print(f"  {'met ' if ok else 'MISS'} {check}")


# ----------------------------------------------------------------------------- entry points


def _child(mode: str, request: str, result: str) -> int:
    payload = json.loads(Path(request).read_text())
    if mode == "plain":
        out = plain_kerastuner(payload["spec"], payload["workdir"])
    elif mode == "bare":
        out = bare_fit(payload["spec"], payload["params"], payload["epochs"])
    else:
        out = profile(payload["spec"])
    Path(result).write_text(json.dumps(out, default=float))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    p = argparse.ArgumentParser(prog="python -m bench.bench_local", description=__doc__)
    p.add_argument("--subset", type=int, default=3000, help="training examples (default 3000)")
    p.add_argument("--trials", type=int, default=8, help="trials of (a), (b), (c) (default 8)")
    p.add_argument("--epochs", type=int, default=3, help="epochs a trial (default 3)")
    p.add_argument("--rss-trials", type=int, default=30, help="trials of the memory run")
    p.add_argument(
        "--repeats", type=int, default=5, help="seeded runs of (a) and of (b), interleaved"
    )
    p.add_argument("--overhead-epochs", type=int, default=5, help="epochs of the overhead run")
    p.add_argument("--data", choices=("fashion_mnist", "digits"), help="default: fashion_mnist")
    p.add_argument("--no-profile", action="store_true", help="skip the time profile")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, internally, one of its child processes)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("plain", "bare", "profile"):
        return _child(*argv[:3])
    args = build_parser().parse_args(argv)
    if args.quick:
        args.subset, args.trials, args.epochs = 600, 3, 1
        args.rss_trials, args.overhead_epochs, args.repeats = 4, 3, 1
    figures = run_all(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print_summary(figures)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
