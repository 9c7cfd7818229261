"""Time and cost forecasts: how long a study's trials take on a platform, and what it costs.

A forecast says, in plain sentences, where each of its numbers comes from: the caps (worst
case), earlier trials in the store (history), a short local calibration, or the documented
relative-speed table. Prices come from :mod:`core.costs.pricing`.

Example:
    >>> fc = forecast("sagemaker", spec, {"instance_type": "ml.g4dn.xlarge"}, store)
    >>> fc.expected_cost_usd, fc.basis[0]
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.backends.base import Forecast
from core.costs.pricing import (
    backend_facts,
    catalog_data,
    fmt_duration,
    machine_quote,
    machine_settings,
)
from core.errors import CloudTuneError, DatasetError
from core.spec import ChoiceParam, FixedParam, FloatParam, IntParam, default_params
from core.training import model as cnn
from core.training.data import load_dataset
from core.training.datasets import DatasetFacts, find_dataset

if TYPE_CHECKING:
    from core.spec import StudySpec
    from core.store import RunRow, Store, TrialRow

log = logging.getLogger(__name__)

CALIBRATION_PREFIX = "calibration."
"""Store setting prefix of a local calibration (one a dataset and subset)."""
NO_HISTORY_SPREAD = 0.5
"""Without history the range is the expected value plus or minus this fraction."""
HISTORY_RUNS = 50
"""How many of the newest runs are searched for history."""
LOCAL_CORES_PER_TRIAL = 1.5
"""Cores one local trial keeps busy (compute threads plus Python and tracing), assumed."""
MIN_ERRORS_TO_WIDEN = 3
"""Earlier forecast errors needed before they widen a forecast's range."""


# ----------------------------------------------------------------------------- model size


def representative_params(spec: StudySpec) -> dict[str, Any]:
    """Return one configuration standing for the space: midpoints, middle choices, defaults.

    Floats take the middle of their range (geometric on a log scale), ints the rounded middle,
    choices of numbers the median value, choices of strings the first value.
    """
    params: dict[str, Any] = spec.fixed_values()
    for p in spec.space:
        if isinstance(p, FloatParam):
            mid = math.sqrt(p.min * p.max) if p.scale == "log" else (p.min + p.max) / 2
            params[p.name] = mid
        elif isinstance(p, IntParam):
            mid = math.sqrt(p.min * p.max) if p.scale == "log" else (p.min + p.max) / 2
            params[p.name] = int(round(mid))
        elif isinstance(p, ChoiceParam):
            values = list(p.values)
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            params[p.name] = sorted(values)[(len(values) - 1) // 2] if numeric else values[0]
        elif isinstance(p, FixedParam):
            params[p.name] = p.value
    return params


def work_units(params: Mapping[str, Any], shape: Sequence[int], classes: int = 10) -> float:
    """Return the multiply-adds of one forward pass of the CNN for one image.

    A proxy for model size in forecasts (the parameter count is not stored): conv blocks with
    doubling filters and 2x2 pooling while the map is at least 2x2, then the dense head, as in
    ``core.training.model.build_model``.
    """
    p = {**default_params(), **dict(params)}
    height, width, cin = (int(d) for d in shape)
    k, total = _int(p["kernel_size"]), 0.0
    for i in range(_int(p["conv_blocks"])):
        filters = _int(p["filters"]) * 2**i
        total += height * width * k * k * cin * filters
        cin = filters
        if min(height, width) >= 2:
            height, width = height // 2, width // 2
    dense = _int(p["dense_units"])
    total += height * width * cin * dense + dense * classes
    return float(total)


def _int(value: Any) -> int:
    """Cast 64, 64.0 or "64" (as clouds report parameters) to 64."""
    return int(float(value))


def _known_shape(name: str) -> DatasetFacts | None:
    """Return the registry row of a built-in dataset whose image shape is known, else None."""
    facts = find_dataset(name)
    return facts if facts is not None and facts.input_shape is not None else None


def train_examples(name: str, subset: int | None, validation_split: float) -> int | None:
    """Return how many training examples one epoch of a built-in dataset goes through."""
    facts = _known_shape(name)
    if facts is None or facts.train_examples is None:
        return subset
    full = int(facts.train_examples * (1 - validation_split))
    return min(subset, full) if subset else full


# ----------------------------------------------------------------------------- trial time


@dataclass(frozen=True)
class TrialTime:
    """Expected seconds of one trial (cloud start-up not included), its range and basis.

    Attributes:
        expected_s: the expected seconds of one trial.
        low_s: the low end of the range.
        high_s: the high end of the range.
        per_epoch_s: the seconds per epoch behind ``expected_s``.
        source: "history", "history-scaled", "calibration" or "table".
        sentence: the 'Expected time: ...' basis sentence.
        run_overhead_s: seconds once per run before the first trial (local worker start-up).
        overhead_sentence: where ``run_overhead_s`` comes from.
    """

    expected_s: float
    low_s: float
    high_s: float
    per_epoch_s: float
    source: str
    sentence: str
    run_overhead_s: float = 0.0
    overhead_sentence: str = ""


def _unmeasured(
    trial: float, per_epoch: float, source: str, sentence: str, **more: Any
) -> TrialTime:
    """A trial time with no history behind it: the range is +-NO_HISTORY_SPREAD around it."""
    return TrialTime(
        expected_s=trial,
        low_s=trial * (1 - NO_HISTORY_SPREAD),
        high_s=trial * (1 + NO_HISTORY_SPREAD),
        per_epoch_s=per_epoch,
        source=source,
        sentence=f"{sentence} (range +-{NO_HISTORY_SPREAD:.0%}).",
        **more,
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _range(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return median, low and high: 10th-90th percentile, at least +-50% with few samples."""
    mid = statistics.median(samples)
    low, high = _percentile(samples, 0.1), _percentile(samples, 0.9)
    if len(samples) < 5:
        low = min(low, mid * (1 - NO_HISTORY_SPREAD))
        high = max(high, mid * (1 + NO_HISTORY_SPREAD))
    return mid, low, high


def speed_factor(instance_type: str | None, accelerator_type: str | None = None) -> float | None:
    """Return seconds per epoch relative to ml.m5.xlarge (lower is faster), None if unknown.

    With an accelerator attached its factor is used (one device trains each trial).
    """
    table = catalog_data()["relative_speed"]
    if accelerator_type:
        return table["accelerators"].get(accelerator_type)
    if instance_type is None:
        return None
    factor = table["instances"].get(instance_type)
    return None if factor is None else float(factor)


def local_contention(parallel: int, cpus: int | None = None) -> float:
    """Return how much slower each local trial runs with ``parallel`` trials on this machine.

    Assumes one trial keeps about LOCAL_CORES_PER_TRIAL cores busy (TensorFlow's compute
    threads plus Python and graph tracing), so trials slow down once
    parallel x LOCAL_CORES_PER_TRIAL exceeds the cores. History at the same parallelism
    replaces this assumption.
    """
    cores = cpus or os.cpu_count() or 1
    return max(1.0, parallel * LOCAL_CORES_PER_TRIAL / cores)


@dataclass(frozen=True)
class _Target:
    """What a forecast is for: the machine, the data, the model and the parallelism."""

    backend: str
    instance: str
    accelerator: str | None
    dataset: str
    path: str | None
    subset: int | None
    examples: int | None
    shape: tuple[int, int, int] | None
    work: float | None
    epochs: int
    parallel: int

    @property
    def machine(self) -> str:
        """The machine's key: instance type, plus '+accelerator' when one is attached."""
        return _machine_key(self.instance, self.accelerator)


def _target(backend: str, spec: StudySpec, machine: Mapping[str, Any]) -> _Target:
    ds = spec.dataset
    facts = _known_shape(ds.name)
    shape = facts.input_shape if facts else None
    work = work_units(representative_params(spec), shape) if shape else None
    return _Target(
        backend=backend,
        instance=machine["instance_type"],
        accelerator=machine["accelerator_type"] if machine["accelerator_count"] else None,
        dataset=ds.name,
        path=ds.path,
        subset=ds.subset,
        examples=train_examples(ds.name, ds.subset, ds.validation_split),
        shape=shape,
        work=work,
        epochs=spec.budget.epochs,
        parallel=spec.budget.parallel_trials,
    )


def _machine_key(instance: str | None, accelerator: str | None) -> str:
    """Name a machine with its accelerator, e.g. 'n1-standard-8+NVIDIA_TESLA_V100'."""
    return f"{instance}+{accelerator}" if accelerator else str(instance or "")


def _run_machine(run: RunRow, trial: TrialRow) -> tuple[str, str | None]:
    """Return (machine key, accelerator) a history trial ran on."""
    if run.backend == "local":
        return "local", None
    settings = {**run.settings, "instance_type": trial.instance_type or run.instance_type}
    m = machine_settings(run.backend, settings)
    return _machine_key(m["instance_type"], m["accelerator_type"]), m["accelerator_type"]


@dataclass(frozen=True)
class _Fixed:
    """The costs that do not grow with the data: per trial (build, tracing) and per epoch."""

    trial_s: float
    epoch_s: float


def _fixed_costs(store: Store | None, target: _Target) -> _Fixed:
    """Return this machine's fixed costs: a stored calibration's (local), else the catalog's."""
    table = catalog_data()["relative_speed"]
    fixed = _Fixed(float(table["trial_fixed_s"]), float(table["epoch_fixed_s"]))
    if target.backend != "local" or store is None:
        return fixed
    stored = store.get_setting(calibration_key(target.dataset, target.subset))
    if isinstance(stored, Mapping) and "per_step_s" in stored:
        compute = stored["per_step_s"] * stored["examples"] / stored["batch_size"]
        return _Fixed(stored["overhead_s"], max(stored["per_epoch_s"] - compute, 0.0))
    return fixed


def _history_runs(store: Store, target: _Target) -> list[RunRow]:
    """Return the newest runs on the same dataset (and, for custom data, the same path)."""
    return [r for r in store.list_runs()[:HISTORY_RUNS] if _same_data(r.spec, target)]


def _history_samples(store: Store, target: _Target, runs: list[RunRow]) -> list[dict[str, Any]]:
    """Return earlier completed trials of ``runs``, scaled to the target's data and model.

    Each sample holds fixed_s (seconds a trial spends outside its epochs) and per_epoch_s,
    with its run's parallelism, machine, speed factor and backend.
    """
    if not runs:
        return []
    epoch_times = _epoch_times(store, [r.id for r in runs])
    fixed = _fixed_costs(store, target)
    out: list[dict[str, Any]] = []
    for run in runs:
        for trial in store.list_trials(run.id, status="completed"):
            sample = _sample(run, trial, epoch_times.get(trial.id, []), target, fixed)
            if sample is not None:
                out.append(sample)
    return out


def _same_data(spec: Mapping[str, Any], target: _Target) -> bool:
    ds = spec.get("dataset") or {}
    if ds.get("name") != target.dataset:
        return False
    return target.dataset != "custom" or ds.get("path") == target.path


def _epoch_times(store: Store, run_ids: list[int]) -> dict[int, list[float]]:
    """Return, per trial id, the times its epochs were recorded, in order."""
    frame = store.epochs_frame(run_ids)
    if frame.empty:
        return {}
    return {int(k): sorted(float(a) for a in part["at"]) for k, part in frame.groupby("trial_id")}


def _sample(
    run: RunRow, trial: TrialRow, epoch_at: list[float], target: _Target, fixed: _Fixed
) -> dict[str, Any] | None:
    """Split one trial's seconds into fixed and per-epoch parts and scale them to the target.

    Local trials: the gaps between their epochs' timestamps give the seconds per epoch, the
    rest of the trial is fixed. Cloud trials (no reliable epoch times): the billed start-up
    and the catalog's fixed cost per trial are taken out and the rest spread over the epochs.
    The data-bound part of an epoch is scaled by data size and model work.
    """
    seconds = trial.duration_s
    if seconds is None and trial.started_at is not None and trial.ended_at is not None:
        seconds = trial.ended_at - trial.started_at
    budget = run.spec.get("budget") or {}
    epochs = len(epoch_at) or int(budget.get("epochs") or 0)
    if not seconds or seconds <= 0 or not epochs:
        return None
    if run.backend != "local":
        startup = float(backend_facts(run.backend)["billed_startup_s_per_trial"])
        seconds = max(seconds - startup, 0.1 * seconds)
    gaps = [b - a for a, b in zip(epoch_at, epoch_at[1:], strict=False)]
    if run.backend == "local" and gaps:
        per_epoch = statistics.median(gaps)
        trial_fixed = max(seconds - epochs * per_epoch, 0.0)
    else:
        trial_fixed = min(fixed.trial_s, 0.5 * seconds)
        per_epoch = (seconds - trial_fixed) / epochs
    compute = max(per_epoch - fixed.epoch_s, 0.1 * per_epoch)
    per_epoch -= compute
    compute *= _scale(run, trial, target)
    key, accelerator = _run_machine(run, trial)
    return {
        "instance": key,
        "speed": speed_factor(key.split("+")[0], accelerator),
        "backend": run.backend,
        "parallel": int(budget.get("parallel_trials") or 1),
        "fixed_s": trial_fixed,
        "per_epoch_s": per_epoch + compute,
        "run_id": run.id,
    }


def _scale(run: RunRow, trial: TrialRow, target: _Target) -> float:
    """Return how much more data-bound work an epoch of the target does than the trial's."""
    ds = run.spec.get("dataset") or {}
    ratio = 1.0
    examples = train_examples(
        target.dataset, ds.get("subset"), float(ds.get("validation_split", 0.2))
    )
    if examples and target.examples:
        ratio *= target.examples / examples
    if target.work and target.shape:
        ratio *= target.work / work_units(trial.params, target.shape)
    return ratio


def _trial_seconds(s: Mapping[str, Any], target: _Target, factor: float = 1.0) -> float:
    return (s["fixed_s"] + target.epochs * s["per_epoch_s"]) * factor


def _from_history(store: Store, target: _Target, runs: list[RunRow]) -> TrialTime | None:
    """Estimate from earlier trials: same machine first, then other cloud machines."""
    samples = _history_samples(store, target, runs)
    same = [s for s in samples if s["instance"] == target.machine]
    if same and target.backend == "local":
        return _from_local_history(store, target, runs, same)
    if same:
        values = [_trial_seconds(s, target) for s in same]
        return _history_time(target, values, same, "history", f"on {target.machine}")
    if target.backend == "local":
        return None
    mine = speed_factor(target.instance, target.accelerator)
    usable = [s for s in samples if s["backend"] != "local" and s["speed"] and mine]
    if not usable or mine is None:
        return None
    values = [_trial_seconds(s, target, mine / s["speed"]) for s in usable]
    sources = ", ".join(sorted({s["instance"] for s in usable}))
    return _history_time(
        target,
        values,
        usable,
        "history-scaled",
        f"on {sources}, scaled to {target.machine} by the relative-speed table",
    )


def _from_local_history(
    store: Store, target: _Target, runs: list[RunRow], same: list[dict[str, Any]]
) -> TrialTime:
    """Estimate local trials, preferring earlier runs with the same parallelism."""
    at_p = [s for s in same if s["parallel"] == target.parallel]
    mine = local_contention(target.parallel)
    if at_p:
        values = [_trial_seconds(s, target) for s in at_p]
        where = f"on this machine with {target.parallel} at once"
        used = at_p
    else:
        values = [_trial_seconds(s, target, mine / local_contention(s["parallel"])) for s in same]
        where = (
            f"on this machine at other parallelism, scaled to {target.parallel} at once "
            f"(each trial keeps about {LOCAL_CORES_PER_TRIAL:g} of {os.cpu_count()} cores busy)"
        )
        used = same
    tt = _history_time(target, values, used, "history", where)
    overhead, sentence = _local_startup(store, target, runs)
    return replace(tt, run_overhead_s=overhead, overhead_sentence=sentence)


def _history_time(
    target: _Target,
    values: list[float],
    used: list[dict[str, Any]],
    source: str,
    where: str,
) -> TrialTime:
    mid, low, high = _range(values)
    fixed = statistics.median(s["fixed_s"] for s in used)
    per_epoch = statistics.median(s["per_epoch_s"] for s in used)
    n = len(values)
    return TrialTime(
        expected_s=mid,
        low_s=low,
        high_s=high,
        per_epoch_s=per_epoch,
        source=source,
        sentence=(
            f"Expected time: from {n} earlier trial{'s' if n != 1 else ''} on {target.dataset} "
            f"{where} (median {fixed:.3g} s outside epochs and {per_epoch:.3g} s per epoch, "
            f"scaled to this spec's data and model size); {target.epochs} epochs a trial = "
            f"{mid:.3g} s a trial (range {low:.3g} to {high:.3g} s: the 10th to 90th "
            f"percentile{', at least +-50%' if n < 5 else ''})."
        ),
    )


def _local_startup(store: Store | None, target: _Target, runs: list[RunRow]) -> tuple[float, str]:
    """Return the seconds a local run spends before its first trial, and their basis."""
    mine = local_contention(target.parallel)
    seen: list[tuple[int, float]] = []
    for run in runs:
        if run.backend != "local" or run.started_at is None or store is None:
            continue
        starts = [t.started_at for t in store.list_trials(run.id) if t.started_at is not None]
        if starts:
            p = int((run.spec.get("budget") or {}).get("parallel_trials") or 1)
            seen.append((p, max(min(starts) - run.started_at, 0.0)))
    same = [s for p, s in seen if p == target.parallel]
    what = "Local start-up (TensorFlow, data and tuner set-up before the first trial)"
    if same:
        value = statistics.median(same)
        return value, (
            f"{what}: {value:.3g} s, the median of {len(same)} earlier run"
            f"{'s' if len(same) != 1 else ''} with {target.parallel} at once."
        )
    if seen:
        value = statistics.median(s * mine / local_contention(p) for p, s in seen)
        return value, (
            f"{what}: {value:.3g} s, from {len(seen)} earlier run"
            f"{'s' if len(seen) != 1 else ''} at other parallelism, scaled."
        )
    base = float(backend_facts("local")["first_wave_extra_s"])
    return base * mine, (
        f"{what}: {base * mine:.3g} s, the catalog's {base:g} s measured on a 2-core machine"
        + (f", x{mine:.2g} for {target.parallel} at once." if mine > 1 else ".")
    )


def _from_table(target: _Target) -> TrialTime | None:
    """Estimate from the reference machine's timing and the relative-speed table."""
    table = catalog_data()["relative_speed"]
    ref = table["reference_compute_s_per_epoch"].get(target.dataset)
    factor = speed_factor(target.instance, target.accelerator)
    if ref is None or factor is None or target.work is None or target.shape is None:
        return None
    full = train_examples(target.dataset, None, 0.2) or 1
    compute = float(ref) * factor * (target.work / work_units({}, target.shape))
    compute *= (target.examples or full) / full
    per_epoch = compute + float(table["epoch_fixed_s"])
    trial = float(table["trial_fixed_s"]) + target.epochs * per_epoch
    return _unmeasured(
        trial,
        per_epoch,
        "table",
        f"Expected time: no earlier trials on {target.dataset} on {target.machine}, so the "
        f"relative-speed table ({table['reference']} computes an epoch of the default CNN "
        f"in {float(ref):.3g} s, {target.accelerator or target.instance} x{factor:g}, "
        f"scaled to this spec's data and model size, + {float(table['epoch_fixed_s']):g} s "
        f"fixed per epoch = {per_epoch:.3g} s per epoch); {target.epochs} epochs + "
        f"{float(table['trial_fixed_s']):g} s to build the model = {trial:.3g} s a trial",
    )


# ----------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """A short timing of the CNN on this machine.

    Attributes:
        per_epoch_s: seconds for one epoch over the whole training split (with validation).
        overhead_s: seconds a trial spends before its first epoch (build, graph tracing).
        per_step_s: seconds per training step (with its share of validation).
        steps: training steps timed.
        batch_size: the batch size timed.
        work: work units of the configuration timed.
        examples: training examples of a full epoch.
        synthetic: True when random arrays of the dataset's shape stood in for the data.
        measured_at: a Unix time.
    """

    per_epoch_s: float
    overhead_s: float
    per_step_s: float
    steps: int
    batch_size: int
    work: float
    examples: int
    synthetic: bool
    measured_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form kept in the store."""
        return dict(self.__dict__)


def calibration_key(dataset: str, subset: int | None) -> str:
    """Return the store setting key of a calibration: ``calibration.<dataset>.<subset>``."""
    return f"{CALIBRATION_PREFIX}{dataset}.{subset if subset else 'all'}"


def _calibration_arrays(spec: StudySpec, rows: int) -> tuple[Any, Any, int, bool]:
    """Return (x, y, training examples of a full epoch, synthetic?) for timing."""
    import numpy as np

    ds = spec.dataset
    try:
        data = load_dataset(
            ds.name, path=ds.path, subset=ds.subset, validation_split=ds.validation_split
        )
        x, y = np.asarray(data.x_train), np.asarray(data.y_train)
        reps = -(-rows // len(x))
        return np.concatenate([x] * reps)[:rows], np.concatenate([y] * reps)[:rows], len(x), False
    except (ImportError, DatasetError, OSError) as err:
        facts = _known_shape(ds.name)
        if facts is None or facts.input_shape is None or facts.num_classes is None:
            raise DatasetError(
                f"Cannot calibrate on {ds.name}: its data cannot be loaded here and its shape "
                "is unknown; check dataset.path or run a trial to build history."
            ) from err
        rng = np.random.default_rng(0)
        x = rng.random((rows, *facts.input_shape), dtype=np.float32)
        y = rng.integers(0, facts.num_classes, rows).astype("int32")
        examples = train_examples(ds.name, ds.subset, ds.validation_split) or rows
        return x, y, examples, True


def calibrate_local(spec: StudySpec, *, steps: int = 6) -> Calibration:
    """Time a few training steps of the spec's representative CNN on this machine.

    Fits one warm-up epoch of ``steps`` batches (building and tracing the model), then
    ``steps`` and ``3 * steps`` batches: the difference gives the seconds per step, the rest
    the fixed cost per epoch. Validation is included at the spec's split.

    Raises:
        DatasetError: the dataset can neither be loaded nor stood in for.
    """
    import keras  # noqa: F401  (imported before timing: a worker has it loaded already)

    params = representative_params(spec)
    batch = int(params.get("batch_size", 64))
    x, y, examples, synthetic = _calibration_arrays(spec, 3 * steps * batch)
    shape = tuple(int(d) for d in x.shape[1:])
    classes = max(int(y.max()) + 1, 2)
    frac = spec.dataset.validation_split

    def fit(n: int) -> float:
        rows = n * batch
        val_rows = batch * max(1, round(n * frac / (1 - frac)))
        start = time.perf_counter()
        net.fit(
            x[:rows],
            y[:rows],
            batch_size=batch,
            epochs=1,
            verbose=0,
            validation_data=(x[:val_rows], y[:val_rows]),
        )
        return time.perf_counter() - start

    start = time.perf_counter()
    net = cnn.build_model(params, shape, classes, spec.model or None)  # type: ignore[arg-type]
    warm = fit(steps) + (time.perf_counter() - start)
    short, long_ = fit(steps), fit(3 * steps)
    per_step = max((long_ - short) / (2 * steps), 1e-6)
    fixed = max(short - steps * per_step, 0.0)
    cnn.clear_session()
    return Calibration(
        per_epoch_s=fixed + per_step * examples / batch,
        overhead_s=max(warm - short, 0.0),
        per_step_s=per_step,
        steps=steps,
        batch_size=batch,
        work=work_units(params, shape, classes),
        examples=examples,
        synthetic=synthetic,
        measured_at=time.time(),
    )


def cached_calibration(
    spec: StudySpec, store: Store | None, *, run: bool = True, steps: int = 6
) -> Calibration | None:
    """Return the stored calibration for the spec's dataset, timing one when there is none.

    Args:
        spec: the study.
        store: where calibrations are kept (``calibration.<dataset>.<subset>``).
        run: time one when none is stored (False: return None instead).
        steps: training steps to time.
    """
    key = calibration_key(spec.dataset.name, spec.dataset.subset)
    stored = store.get_setting(key) if store is not None else None
    if isinstance(stored, Mapping):
        try:
            return Calibration(**stored)
        except TypeError:
            pass
    if not run:
        return None
    cal = calibrate_local(spec, steps=steps)
    if store is not None:
        store.set_setting(key, cal.to_dict())
    return cal


def _from_calibration(store: Store | None, cal: Calibration, target: _Target) -> TrialTime:
    """Estimate from a calibration, its compute scaled to the spec's model and data size."""
    compute = cal.per_step_s * cal.examples / cal.batch_size
    fixed_epoch = max(cal.per_epoch_s - compute, 0.0)
    if target.work:
        compute *= target.work / cal.work
    if target.examples:
        compute *= target.examples / cal.examples
    per_epoch = fixed_epoch + compute
    mine = local_contention(target.parallel)
    trial = (cal.overhead_s + target.epochs * per_epoch) * mine
    slower = (
        f"; {target.parallel} at once run x{mine:.2g} slower each (a trial keeps about "
        f"{LOCAL_CORES_PER_TRIAL:g} of {os.cpu_count()} cores busy)"
        if mine > 1
        else ""
    )
    overhead, sentence = _local_startup(store, target, [])
    return _unmeasured(
        trial,
        per_epoch,
        "calibration",
        f"Expected time: no earlier trials on {target.dataset} on this machine, so a "
        f"calibration of {cal.steps * 5} training steps at batch {cal.batch_size}"
        f"{' on random arrays of its shape' if cal.synthetic else ''} ({per_epoch:.3g} s "
        f"per epoch scaled to this spec's model and data size, {cal.overhead_s:.2g} s to "
        f"build and trace the model); {target.epochs} epochs a trial{slower} = "
        f"{trial:.3g} s a trial",
        run_overhead_s=overhead,
        overhead_sentence=sentence,
    )


# ----------------------------------------------------------------------------- forecast


def estimate_trial_time(
    backend: str,
    spec: StudySpec,
    settings: Mapping[str, Any],
    store: Store | None = None,
    *,
    calibrate: bool = True,
) -> TrialTime | None:
    """Return the expected compute seconds of one trial, from the best basis available.

    Order: earlier trials on the same machine type; earlier trials on other cloud machine
    types scaled by the relative-speed table; for local, a calibration (timed once and kept in
    the store); for clouds, the relative-speed table. None when nothing applies.
    """
    target = _target(backend, spec, machine_settings(backend, settings))
    if store is not None:
        found = _from_history(store, target, _history_runs(store, target))
        if found is not None:
            return found
    if backend == "local":
        try:
            cal = cached_calibration(spec, store, run=calibrate)
        except (CloudTuneError, ImportError, ValueError, RuntimeError):
            cal = None
        return _from_calibration(store, cal, target) if cal is not None else None
    return _from_table(target)


def _waves(n: int, parallel: int) -> int:
    return math.ceil(n / max(1, parallel))


def forecast(
    backend: str,
    spec: StudySpec,
    settings: Mapping[str, Any],
    store: Store | None = None,
    *,
    calibrate: bool = True,
) -> Forecast:
    """Forecast the wall time and cost of running ``spec`` on one platform.

    Wall time: ceil(max_trials / parallel_trials) waves, each one trial long plus the cloud's
    start-up (``assets/pricing.json``, per backend). Cost: clouds bill every trial's instance
    time plus its billed start-up; local bills the machine's wall time at the local rate.
    Worst case: max_trials x the per-trial runtime cap (budget.max_minutes) x price.

    Args:
        backend: "local", "sagemaker", "vertex" or "azure".
        spec: the study.
        settings: the backend's settings (instance_type, region, accelerator_type,
            accelerator_count; the backends' own names are accepted).
        store: for history, price overrides, the local rate and calibrations.
        calibrate: for local without history, time a few steps when no calibration is stored.

    Returns:
        A :class:`~core.backends.base.Forecast` whose ``basis`` says where each number comes
        from.
    """
    machine = machine_settings(backend, settings)
    q = machine_quote(backend, machine, store=store, settings=settings)
    fc = Forecast(backend=backend, instance_type=machine["instance_type"])
    fc.price_per_hour = q.usd_per_hour
    tt = estimate_trial_time(backend, spec, settings, store, calibrate=calibrate)
    fc.basis.extend(_expected(fc, tt, spec, backend_facts(backend), q.usd_per_hour))
    widened = _widen(fc, _past_errors(store, backend)) if store is not None else None
    fc.basis.extend([widened] if widened else [])
    fc.basis.append(q.sentence())
    fc.basis.extend(_worst(fc, spec, backend_facts(backend), q.usd_per_hour))
    return fc


def _past_errors(store: Store, backend: str) -> list[float]:
    """Return the wall-time errors recorded on this backend's earlier runs (newest first)."""
    errors = []
    for run in store.list_runs()[:HISTORY_RUNS]:
        error = (run.forecast or {}).get("error") if run.backend == backend else None
        value = error.get("wall_rel_error") if isinstance(error, Mapping) else None
        if value is not None and float(value) > -1:
            errors.append(float(value))
    return errors


def _widen(fc: Forecast, errors: list[float]) -> str | None:
    """Widen the ranges to cover the 10th-90th percentile of earlier forecasts' errors.

    A forecast's error is (expected - actual) / actual, so actual = expected / (1 + error).
    Needs MIN_ERRORS_TO_WIDEN earlier errors; returns the basis sentence, or None.
    """
    if len(errors) < MIN_ERRORS_TO_WIDEN or fc.expected_wall_s is None:
        return None
    low_f = 1 / (1 + _percentile(errors, 0.9))
    high_f = 1 / (1 + _percentile(errors, 0.1))
    fc.low_wall_s = min(fc.low_wall_s or fc.expected_wall_s, fc.expected_wall_s * low_f)
    fc.high_wall_s = max(fc.high_wall_s or fc.expected_wall_s, fc.expected_wall_s * high_f)
    if fc.expected_cost_usd is not None:
        cost = fc.expected_cost_usd
        fc.low_cost_usd = min(
            fc.low_cost_usd if fc.low_cost_usd is not None else cost, cost * low_f
        )
        fc.high_cost_usd = max(fc.high_cost_usd or cost, cost * high_f)
    return (
        f"Range: widened to cover how far the last {len(errors)} forecasts on this platform "
        f"missed (actual between x{low_f:.2g} and x{high_f:.2g} of expected): "
        f"{fmt_duration(fc.low_wall_s)} to {fmt_duration(fc.high_wall_s)}."
    )


def _run_totals(
    trial_s: float,
    spec: StudySpec,
    facts: Mapping[str, Any],
    price: float | None,
    once: float,
    end: int = -1,
) -> tuple[float, float | None]:
    """Return (wall seconds, cost) of the whole run for a per-trial time.

    ``once`` is the time spent once before the first wave (local worker start-up, Azure's
    cluster scale-up). ``end`` picks the start-up time: -1 the expected one, 0 or 1 the low or
    high end of the backend's start-up range.
    """
    b = spec.budget
    startup = float(facts["startup_s_per_trial"])
    if end >= 0 and facts.get("startup_range_s"):
        startup = float(facts["startup_range_s"][end])
    ratio = startup / facts["startup_s_per_trial"] if facts["startup_s_per_trial"] else 0.0
    waves = _waves(b.max_trials, b.parallel_trials)
    wall = waves * (trial_s + startup) + once
    if price is None:
        return wall, None
    if facts.get("billing") == "per_machine":
        return wall, wall * price / 3600
    machines = min(b.parallel_trials, b.max_trials)
    billed = b.max_trials * (trial_s + facts["billed_startup_s_per_trial"] * ratio)
    billed += machines * (facts["billed_tail_s_per_machine"] + facts["first_wave_extra_s"])
    return wall, billed * price / 3600


def _expected(
    fc: Forecast,
    tt: TrialTime | None,
    spec: StudySpec,
    facts: Mapping[str, Any],
    price: float | None,
) -> list[str]:
    """Fill the expected figures and return their basis sentences (time, wall, cost)."""
    if tt is None:
        return [
            "Expected time: unknown: no earlier trials on this dataset and machine, and no "
            "calibration or reference timing applies; run one trial to build history."
        ]
    local = facts.get("billing") == "per_machine"
    once = tt.run_overhead_s if local else float(facts["first_wave_extra_s"])
    fc.expected_wall_s, fc.expected_cost_usd = _run_totals(tt.expected_s, spec, facts, price, once)
    fc.low_wall_s, fc.low_cost_usd = _run_totals(tt.low_s, spec, facts, price, once, 0)
    fc.high_wall_s, fc.high_cost_usd = _run_totals(tt.high_s, spec, facts, price, once, 1)
    b = spec.budget
    waves = _waves(b.max_trials, b.parallel_trials)
    wall = (
        f"Wall time: {waves} wave{'s' if waves != 1 else ''} of up to {b.parallel_trials} "
        f"trial{'s' if b.parallel_trials != 1 else ''} x {tt.expected_s:.3g} s"
    )
    start = facts["startup_s_per_trial"]
    wall += f" + {start:g} s start-up each" if start else ""
    wall += f" + {once:.3g} s once" if once else ""
    wall += f" = {fmt_duration(fc.expected_wall_s)}."
    if local:
        wall += f" {tt.overhead_sentence}" if tt.overhead_sentence else ""
    elif start or once:
        wall += f" Start-up: {facts['overhead_basis']}"
    out = [tt.sentence, wall]
    if price is not None and fc.expected_cost_usd is not None:
        what = (
            "the machine's wall time at the local rate"
            if local
            else f"{b.max_trials} trials of billed time (start-up included) at the price below"
        )
        out.append(
            f"Expected cost: ${fc.expected_cost_usd:.2f} (range ${fc.low_cost_usd or 0:.2f} "
            f"to ${fc.high_cost_usd or 0:.2f}), {what}."
        )
    return out


def _worst(
    fc: Forecast, spec: StudySpec, facts: Mapping[str, Any], price: float | None
) -> list[str]:
    b = spec.budget
    out = []
    if b.max_minutes is None:
        out.append(
            "Worst case: none, because the spec sets no time cap; set budget.max_minutes to "
            "bound the time and cost."
        )
    else:
        cap_s = b.max_minutes * 60
        waves = _waves(b.max_trials, b.parallel_trials)
        fc.worst_wall_s = waves * cap_s + waves * facts["startup_s_per_trial"]
        sentence = (
            f"Worst case: {b.max_trials} trials x {b.max_minutes:g} min (the per-trial runtime "
            f"cap, budget.max_minutes) in {waves} waves = {fmt_duration(fc.worst_wall_s)}"
        )
        if price is not None:
            fc.worst_cost_usd = b.max_trials * cap_s * price / 3600
            sentence += f", x ${price:.4g}/h = ${fc.worst_cost_usd:.2f}"
            if facts.get("billing") == "per_machine":
                fc.worst_cost_usd = fc.worst_wall_s * price / 3600
                sentence += f" (local bills wall time: ${fc.worst_cost_usd:.2f})"
        out.append(
            sentence + f"; while CloudTune watches the run it stops at {b.max_minutes:g} min."
        )
    if b.max_cost_usd is not None:
        out.append(
            f"Cost cap: the run stops before a trial that would take spending past "
            f"${b.max_cost_usd:.2f} (budget.max_cost_usd)."
        )
    return out
