"""KerasTuner wiring of the local backend: the factories of its tuner and oracle, and their helpers.

The search algorithm is KerasTuner's (its four oracles), the CNN is ``core.training.model``'s; the
local backend only translates a :class:`~core.spec.StudySpec` into KerasTuner objects and adds three
things KerasTuner lacks: ``batch_size`` applied per trial (a HyperModel with its own ``fit``), an
events hook on the oracle (every trial start and end is reported, and the oracle can be told to
stop for a budget or a cancel), and bounded disk use (only the best trial's weights are kept).

The KerasTuner subclasses and Keras callbacks live in :mod:`core.backends.local.kt`, the one
module that imports KerasTuner at its top and uses its private names. This module holds what
needs no KerasTuner and the factories, which import KerasTuner and that module on first use, so
that KerasTuner and TensorFlow are never imported with this one.

Example:
    >>> tuner = make_tuner(spec, dataset, "/tmp/kt", events)   # events: see TrialEvents
    >>> tuner.search()
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.spec import ChoiceParam, FloatParam, IntParam
from core.spec.design import configuration, recorded_params

if TYPE_CHECKING:
    from core.spec import Param, StudySpec

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3
"""A run fails after this many trials in a row failed (KerasTuner's own rule)."""

PROJECT_NAME = "study"
"""KerasTuner's project folder name inside a run's tuner folder."""

CHECKPOINT_NAME = "checkpoint.weights.h5"
"""KerasTuner's weights file inside each ``trial_<id>`` folder."""

MIN_VALIDATION_BATCH = 512
"""Validation batches are at least this large: same metrics, far fewer steps."""


class RecycleWorker(Exception):
    """Raised between two trials when the worker should re-execute itself to free memory."""


class TrialEvents(Protocol):
    """What the tuner and oracle report to (the worker's store writer implements it)."""

    def trial_started(self, trial: Any) -> None:
        """A KerasTuner trial was handed to a tuner (also when a trial is retried)."""

    def trial_ended(self, trial: Any) -> None:
        """The oracle recorded a trial's end (status COMPLETED or FAILED, with its score)."""

    def epoch_ended(
        self, trial_id: str, epoch: int, logs: Mapping[str, Any], wall_s: float
    ) -> None:
        """A trial finished an epoch (1-based, counted from the trial's first epoch)."""

    def trial_failed(self, trial_id: str, sentence: str) -> None:
        """The process that trained a trial says why it failed (the chief cannot see it)."""

    def stop_reason(self) -> str | None:
        """Return why no further trial may start ("budget", "cancelled"), or None."""


class DatasetLike(Protocol):
    """What the hypermodel needs of a dataset (``core.training.data.Dataset`` satisfies it)."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    input_shape: tuple[int, ...]
    num_classes: int


# ----------------------------------------------------------------------------- pure helpers


def declare_param(hp: Any, param: Param) -> Any:
    """Declare one spec parameter on KerasTuner's ``hp`` and return its value for this trial.

    Linear ranges map to ``hp.Float`` / ``hp.Int`` (with the spec's additive step). KerasTuner
    reads a step on a log range as a multiplying factor, so a log range with a step becomes a
    ``hp.Choice`` of the spec's own grid instead.

    Args:
        hp: a ``keras_tuner.HyperParameters``.
        param: one parameter of the spec's space.

    Returns:
        The value KerasTuner chose (or the default while the space is being declared).
    """
    if isinstance(param, FloatParam):
        if param.step is not None and param.scale == "log":
            return hp.Choice(param.name, sorted(param.grid_values() or []))
        return hp.Float(param.name, param.min, param.max, step=param.step, sampling=param.scale)
    if isinstance(param, IntParam):
        if param.scale == "log":
            if param.step == 1:
                return hp.Int(param.name, param.min, param.max, sampling="log")
            return hp.Choice(param.name, param.grid_values())
        return hp.Int(param.name, param.min, param.max, step=param.step)
    if isinstance(param, ChoiceParam):
        return hp.Choice(param.name, _one_type(list(param.values)))
    return hp.Fixed(param.name, param.value)


def _one_type(values: list[Any]) -> list[Any]:
    """KerasTuner's Choice takes one value type: mixed ints and floats become floats."""
    kinds = {type(v) for v in values}
    if kinds <= {int, float} and len(kinds) > 1:
        return [float(v) for v in values]
    return values


def trial_params(spec: StudySpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the CNN parameters of a trial: defaults, the spec's fixed values, then ``values``.

    KerasTuner's own entries (``tuner/epochs`` and friends) are left out.
    """
    params = spec.fixed_values()
    params.update({k: v for k, v in values.items() if not str(k).startswith("tuner/")})
    return configuration(spec.configurations, params) if spec.configurations else params


def space_values(spec: StudySpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return only the spec's parameters of a trial (what the store records as its params)."""
    names = {p.name for p in spec.space}
    return recorded_params(spec, {k: _plain(v) for k, v in values.items() if k in names})


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def trial_epochs(spec: StudySpec, values: Mapping[str, Any]) -> tuple[int, int]:
    """Return (initial_epoch, epochs) of a trial: hyperband's own, else (0, budget.epochs)."""
    if "tuner/epochs" in values:
        return int(values.get("tuner/initial_epoch", 0)), int(values["tuner/epochs"])
    return 0, int(spec.budget.epochs)


def error_sentence(err: BaseException, params: Mapping[str, Any] | None = None) -> str:
    """Turn an exception raised while training one trial into a sentence for the store."""
    name = type(err).__name__
    first = (str(err).strip().splitlines() or [""])[0][:300]
    if name in ("ResourceExhaustedError", "MemoryError") or "out of memory" in first.lower():
        batch = (params or {}).get("batch_size")
        where = f" at batch_size {batch}" if batch is not None else ""
        return (
            f"The trial ran out of memory{where}; lower batch_size, filters or dense_units "
            "in the search space."
        )
    return f"The trial raised {name}: {first}" if first else f"The trial raised {name}."


DIVERGED_FACTOR = 10.0
"""A trial whose last training loss is this many times a uniform guess's (ln classes) diverged."""


def divergence(
    losses: list[float], params: Mapping[str, Any], initial: int, num_classes: int
) -> str | None:
    """Say why a trial's training losses mean it failed: NaN, or diverged; None when fine.

    A NaN loss fails the trial. So does a last epoch whose mean loss is more than
    :data:`DIVERGED_FACTOR` times that of guessing every class alike (ln of the number of
    classes): the weights have blown up even though the numbers stayed finite.

    Args:
        losses: the training loss of each epoch.
        params: the trial's parameters (for the sentence).
        initial: the epoch the trial started from (hyperband continues trials).
        num_classes: the number of classes.
    """
    lr = params.get("learning_rate")
    hint = f"(learning_rate {float(lr):g} is probably too high)" if lr is not None else ""
    fix = "lower the maximum learning_rate of the search space."
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            return f"The loss became NaN in epoch {initial + i + 1} {hint}; {fix}"
    guess = math.log(max(num_classes, 2))
    if losses and losses[-1] > DIVERGED_FACTOR * guess:
        return (
            f"The loss diverged to {losses[-1]:.3g} in epoch {initial + len(losses)}, over "
            f"{DIVERGED_FACTOR:g} times that of guessing {hint}; {fix}"
        )
    return None


MEDIAN_GRACE_TRIALS = 3
"""The median stopping rule waits for this many completed trials that reached an epoch."""

CURVES_FOLDER = "curves"
"""Inside KerasTuner's project folder: each completed trial's objective per epoch (JSON)."""


def best_so_far(curve: Mapping[int, float], epoch: int, goal: str) -> float | None:
    """Return a curve's best value over its epochs up to ``epoch``, or None when it has none.

    Args:
        curve: objective value by epoch (1-based, absolute: hyperband continues trials).
        epoch: the last epoch counted.
        goal: "max" or "min".
    """
    values = [v for e, v in curve.items() if e <= epoch and math.isfinite(v)]
    if not values:
        return None
    return max(values) if goal == "max" else min(values)


def median_says_stop(
    best: float,
    epoch: int,
    completed: Sequence[Mapping[int, float]],
    goal: str,
    grace: int = MEDIAN_GRACE_TRIALS,
) -> bool:
    """The median stopping rule: is a trial's best so far worse than the completed trials'?

    Among the completed trials that reached ``epoch``, take each one's best so far at
    ``epoch``; once there are ``grace`` of them, a trial whose best so far is strictly worse
    than their median stops.

    Args:
        best: the running trial's best objective so far.
        epoch: the epoch it just finished (1-based, absolute).
        completed: the completed trials' curves (objective by epoch).
        goal: "max" or "min".
        grace: how many completed trials must have reached ``epoch`` first.

    Example:
        >>> median_says_stop(0.2, 1, [{1: 0.5}, {1: 0.6}, {1: 0.7}], "max")
        True
    """
    values = sorted(
        v for c in completed if epoch in c for v in [best_so_far(c, epoch, goal)] if v is not None
    )
    if len(values) < max(1, grace) or not math.isfinite(best):
        return False
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return best < median if goal == "max" else best > median


def curve_path(project_dir: str | Path, trial_id: str) -> Path:
    """Return where a completed trial's objective curve is kept."""
    return Path(project_dir) / CURVES_FOLDER / f"{trial_id}.json"


def write_curve(project_dir: str | Path, trial_id: str, curve: Mapping[int, float]) -> None:
    """Keep a completed trial's objective by epoch, for the median rule of later trials.

    Written whole under a temporary name and renamed, so a reader never sees half a file; a
    folder shared by the run's worker processes lets every worker see every completed trial.
    """
    import json

    path = curve_path(project_dir, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([[int(e), float(v)] for e, v in sorted(curve.items())]))
    tmp.replace(path)


def read_curves(project_dir: str | Path) -> list[dict[int, float]]:
    """Return every completed trial's objective curve kept in ``project_dir``."""
    import json

    out = []
    for path in sorted((Path(project_dir) / CURVES_FOLDER).glob("*.json")):
        try:
            out.append({int(e): float(v) for e, v in json.loads(path.read_text())})
        except (OSError, ValueError, TypeError):  # a file being replaced: skip it this time
            continue
    return out


def early_stopping_note(spec: StudySpec, settings: Mapping[str, Any] | None = None) -> str | None:
    """Say how the local backend stops trials early under ``spec`` (None: it does not).

    Args:
        spec: the study.
        settings: the local settings (unused: no setting changes the rule).
    """
    if spec.budget.early_stopping != "median":
        return None
    return (
        f"Local: once {MEDIAN_GRACE_TRIALS} trials have completed, a trial stops after epoch k "
        "when its best so far is worse than the median of the completed trials' best so far "
        "at epoch k (never in its last epoch); it is recorded as completed, early_stopped, "
        "with its best epoch."
    )


def failure_message(message: str | None) -> str | None:
    """Return the sentence inside a KerasTuner trial message (a traceback), if any."""
    if not message:
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    marker = "FailedTrialError: "
    if marker in last:
        return last.split(marker, 1)[1]
    return last[:500]


def checkpoint_path(project_dir: str | Path, trial_id: str) -> Path:
    """Return where KerasTuner keeps a trial's best weights."""
    return Path(project_dir) / f"trial_{trial_id}" / CHECKPOINT_NAME


def prune_checkpoints(project_dir: str | Path, keep: set[str]) -> int:
    """Delete the weights of every trial not in ``keep``; return how many files went.

    Args:
        project_dir: KerasTuner's project folder (holding ``trial_<id>`` folders).
        keep: trial ids whose weights stay (the best, running ones, hyperband's parents).
    """
    removed = 0
    for path in Path(project_dir).glob(f"trial_*/{CHECKPOINT_NAME}"):
        trial_id = path.parent.name[len("trial_") :]
        if trial_id not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# ----------------------------------------------------------------------------- model helpers


def build_state_eagerly(model: Any, x_sample: Any, y_sample: Any) -> None:
    """Create the optimizer's and the metrics' variables now, outside ``fit``'s traced step.

    Created inside the traced step, each variable leaves initialisation functions in
    TensorFlow's function library for the life of the process (about 7 MB a trial for our
    CNN); created here they do not. Nothing trains: the forward pass runs in inference mode.
    Private Keras attributes are used, so any failure only skips the saving.
    """
    try:
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        y_pred = model(x_sample, training=False)
        for name in ("_compile_metrics", "_compile_loss"):
            part = getattr(model, name, None)
            if part is not None and not part.built:
                part.build(y_sample, y_pred)
    except Exception:  # pragma: no cover - a newer Keras; fit builds them as usual
        return


def load_all_weights(model: Any, path: str | Path) -> None:
    """Load a checkpoint into a compiled model, optimizer state included."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(path))


def trial_number(trial_id: str) -> int:
    """Return a trial's number: its id when numeric, else one drawn from the id's hash."""
    return int(trial_id) if str(trial_id).isdigit() else abs(hash(trial_id)) % 100_000


# ----------------------------------------------------------------------------- factories


def make_oracle(spec: StudySpec, events: TrialEvents | None = None) -> Any:
    """Build the recording KerasTuner oracle of the spec's strategy.

    Objective, seed and max_trials come from the spec; hyperband's max_epochs is the budget's
    epochs and its trial count is capped at max_trials.

    Args:
        spec: the study.
        events: receives trial starts and ends, and says when no trial may start (None: none).

    Returns:
        A :class:`core.backends.local.kt.RecordingMixin` oracle of KerasTuner's.
    """
    import keras_tuner

    from core.backends.local import kt  # lazy: KerasTuner and TensorFlow

    cls = kt.oracle_class(spec.strategy)
    objective = keras_tuner.Objective(spec.objective.metric, direction=spec.objective.goal)
    common: dict[str, Any] = {
        "objective": objective,
        "seed": spec.seed,
        "max_consecutive_failed_trials": MAX_CONSECUTIVE_FAILURES,
    }
    if spec.strategy == "hyperband":
        # iterations without end: the trial budget (max_trials) is what stops the search
        oracle = cls(
            max_epochs=max(1, spec.budget.epochs), factor=3, hyperband_iterations=None, **common
        )
        oracle.max_trials = spec.budget.max_trials
    else:
        oracle = cls(max_trials=spec.budget.max_trials, **common)
    oracle.events = events
    return oracle


def make_tuner(
    spec: StudySpec,
    dataset: DatasetLike | None,
    directory: str | Path,
    events: TrialEvents | None = None,
    *,
    tuner_id: str | None = None,
    recycle: Any = None,
) -> Any:
    """Build (or reload, when ``directory`` holds one) the tuner of a study.

    Args:
        spec: the study.
        dataset: the data the trials train on (None in a chief, which trains nothing).
        directory: the run's tuner folder; an existing project there is resumed.
        events: receives trial starts/ends (through the oracle) and epochs.
        tuner_id: KerasTuner's tuner id (default: $KERASTUNER_TUNER_ID or "tuner0").
        recycle: called before each trial; when it returns True, ``search`` raises
            :class:`RecycleWorker` so the process can re-execute itself.

    Returns:
        A ``CloudTuneTuner``; call ``search()`` on it.
    """
    from core.backends.local import kt  # lazy: KerasTuner and TensorFlow

    hypermodel = kt.CNNHyperModel(spec, dataset)
    kwargs: dict[str, Any] = {}
    if tuner_id is not None:
        kwargs["tuner_id"] = tuner_id
    return kt.CloudTuneTuner(
        make_oracle(spec, events),
        hypermodel,
        events=events,
        seed=spec.seed,
        recycle=recycle,
        directory=str(directory),
        project_name=PROJECT_NAME,
        overwrite=False,
        **kwargs,
    )
