"""KerasTuner wiring of the local backend: the CNN HyperModel, the tuner and the recording oracle.

The search algorithm is KerasTuner's (its four oracles), the CNN is ``core.training.model``'s; this module
only translates a :class:`~core.spec.StudySpec` into KerasTuner objects and adds three things
KerasTuner lacks: ``batch_size`` applied per trial (a HyperModel with its own ``fit``), an events
hook on the oracle (every trial start and end is reported, and the oracle can be told to stop
for a budget or a cancel), and bounded disk use (only the best trial's weights are kept).

KerasTuner and TensorFlow are imported on first use (:func:`kt_classes`), never at import.

Example:
    >>> tuner = make_tuner(spec, dataset, "/tmp/kt", events)   # events: see TrialEvents
    >>> tuner.search()
"""

from __future__ import annotations

import functools
import gc
import math
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from core.spec import Param, StudySpec

MAX_CONSECUTIVE_FAILURES = 3
"""A run fails after this many trials in a row failed (KerasTuner's own rule)."""

PROJECT_NAME = "study"
"""KerasTuner's project folder name inside a run's tuner folder."""

CHECKPOINT_NAME = "checkpoint.weights.h5"
"""KerasTuner's weights file inside each ``trial_<id>`` folder."""

MIN_VALIDATION_BATCH = 512
"""Validation batches are at least this large: same metrics, far fewer steps."""

ORACLES: dict[str, str] = {
    "grid": "GridSearchOracle",
    "random": "RandomSearchOracle",
    "bayesian": "BayesianOptimizationOracle",
    "hyperband": "HyperbandOracle",
}
"""Spec strategy -> KerasTuner oracle class."""


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
    from core.spec import ChoiceParam, FloatParam, IntParam

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
    return params


def space_values(spec: StudySpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return only the spec's parameters of a trial (what the store records as its params)."""
    names = {p.name for p in spec.space}
    return {k: _plain(v) for k, v in values.items() if k in names}


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


# ----------------------------------------------------------------------------- KerasTuner classes


@functools.cache
def kt_classes() -> SimpleNamespace:
    """Define (once) the KerasTuner subclasses; imports KerasTuner and Keras.

    Returns:
        A namespace with ``HyperModel``, ``Tuner`` and ``oracle_class(strategy)``.
    """
    import keras
    import keras_tuner as kt
    from keras_tuner.src.engine import trial as trial_module

    running = trial_module.TrialStatus.RUNNING
    completed = trial_module.TrialStatus.COMPLETED
    stopped = trial_module.TrialStatus.STOPPED

    class EpochReporter(keras.callbacks.Callback):
        """Reports every finished epoch with its wall time."""

        def __init__(self, events: TrialEvents | None, trial_id: str) -> None:
            super().__init__()
            self.events, self.trial_id, self.started = events, trial_id, time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.events is not None:
                wall = time.perf_counter() - self.started
                self.events.epoch_ended(self.trial_id, epoch + 1, dict(logs or {}), wall)

    class StopOnNaN(keras.callbacks.Callback):
        """Stops training after an epoch whose loss is not finite.

        Keras' TerminateOnNaN checks every batch, and any batch-level callback makes Keras
        wait for each step's logs (about 10 % of a small CNN's epoch on CPU); a NaN batch
        makes the epoch's mean loss NaN anyway.
        """

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True

    class BestEpoch(keras.callbacks.Callback):
        """Keeps the best epoch's weights in memory (one disk write per trial at most)."""

        def __init__(self, objective: Any) -> None:
            super().__init__()
            self.objective = objective
            self.best_value = -math.inf if objective.direction == "max" else math.inf
            self.weights: list[Any] | None = None

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if not self.objective.has_value(logs or {}):
                return
            value = float(self.objective.get_value(logs))
            if math.isfinite(value) and self.objective.better_than(value, self.best_value):
                self.best_value = value
                self.weights = self.model.get_weights()

    class CNNHyperModel(kt.HyperModel):
        """The CNN of ``core.training.model`` over the spec's space, with ``batch_size`` applied in fit.

        Args:
            spec: the study.
            dataset: arrays and shapes (``core.training.data.Dataset``); None in a chief, which only
                hands out trials and never builds a model.
        """

        def __init__(self, spec: StudySpec, dataset: DatasetLike | None) -> None:
            super().__init__(name="cloudtune_cnn", tunable=True)
            self.spec = spec
            self.dataset = dataset
            self.warm: tuple[tuple[object, ...], keras.Model] | None = None
            """The last model built, with its architecture key: reset and reused by the
            next trial of the same architecture (see ``core.training.model.reset_model``)."""
            self.validation_tensors: tuple[Any, Any] | None = None
            """The validation arrays as TensorFlow tensors, copied once."""
            self.validation_sets: dict[int, Any] = {}
            """Validation data as a batched tf.data set, one per batch size, made once."""

        def data(self) -> DatasetLike:
            if self.dataset is None:
                raise RuntimeError("this tuner has no dataset: a chief only hands out trials")
            return self.dataset

        def declare_hyperparameters(self, hp: Any) -> None:
            for param in self.spec.space:
                declare_param(hp, param)

        def build(self, hp: Any) -> keras.Model:
            """Reset the warm model for a trial of its architecture, else build a new one.

            Either way the model starts from weights drawn with one seed taken from NumPy's
            global generator (the tuner seeds it per trial), so a trial's result does not
            depend on whether its model was reused. A new one starts a new Keras session (the
            old model's compiled steps are dropped).
            """
            import numpy as np

            from core.training.model import architecture_key, build_model, reset_model

            values = {p.name: declare_param(hp, p) for p in self.spec.space}
            params = trial_params(self.spec, values)
            data = self.data()
            height, width, channels = (int(d) for d in data.input_shape)
            shape = (height, width, channels)
            key = architecture_key(params, shape, int(data.num_classes), self.spec.model)
            seed = int(np.random.randint(0, 2**31 - 1))
            if self.warm is not None and self.warm[0] == key:
                gc.collect()  # the last trial's history and callbacks
                try:
                    reset_model(self.warm[1], params, seed=seed)
                    return self.warm[1]
                except Exception:  # a model left unusable by a failed trial: build anew
                    pass
            self.warm = None
            keras.backend.clear_session(free_memory=False)
            gc.collect()  # once: Keras' free_memory=True would run the same collection
            model = build_model(
                params, shape, int(data.num_classes), self.spec.model, reusable=True, seed=seed
            )
            self.warm = (key, model)
            return model

        def validation_set(self, batch: int) -> Any:
            """Return the validation data batched by ``batch``, as a tf.data set.

            Handed NumPy arrays, Keras builds a new input pipeline for them in every ``fit``
            (measured: 0.05-0.2 s a trial on 600 Fashion-MNIST images); this one is built once
            a batch size, over one copy of the arrays. Its order never matters.
            """
            if batch not in self.validation_sets:
                import tensorflow as tf

                if self.validation_tensors is None:
                    data = self.data()
                    self.validation_tensors = (tf.constant(data.x_val), tf.constant(data.y_val))
                self.validation_sets[batch] = tf.data.Dataset.from_tensor_slices(
                    self.validation_tensors
                ).batch(batch)
            return self.validation_sets[batch]

        def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
            params = trial_params(self.spec, hp.values)
            batch = int(params["batch_size"])
            data = self.data()
            callbacks = [*kwargs.get("callbacks", []), StopOnNaN()]
            history = model.fit(
                data.x_train,
                data.y_train,
                batch_size=batch,
                epochs=int(kwargs.get("epochs", self.spec.budget.epochs)),
                initial_epoch=int(kwargs.get("initial_epoch", 0)),
                validation_data=self.validation_set(max(batch, MIN_VALIDATION_BATCH)),
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
            )
            checked = {**params, "num_classes": data.num_classes}
            _raise_on_nan(history, checked, int(kwargs.get("initial_epoch", 0)))
            return history

    def _raise_on_nan(history: Any, params: Mapping[str, Any], initial: int) -> None:
        losses = [float("nan") if v is None else float(v) for v in history.history.get("loss", [])]
        sentence = divergence(losses, params, initial, int(params.get("num_classes", 10)))
        if sentence:
            raise kt.errors.FailedTrialError(sentence)

    class CloudTuneTuner(kt.Tuner):
        """One tuner for every strategy: trains a trial, reports epochs, keeps the best weights.

        Args:
            oracle: a recording oracle from ``oracle_class``.
            hypermodel: a ``CNNHyperModel``.
            events: where epochs are reported (None: nowhere).
            seed: the study's seed; trial ``n`` trains with seed + n.
            **kwargs: ``directory``, ``project_name``, ``overwrite`` as for ``kt.Tuner``.
        """

        def __init__(
            self,
            oracle: Any,
            hypermodel: Any,
            *,
            events: Any,
            seed: int,
            recycle: Any = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
            self.events = events
            self.seed = seed
            self.recycle = recycle
            self.keeps_all = isinstance(oracle, kt.oracles.HyperbandOracle)

        def pre_create_trial(self) -> None:
            # between two trials: everything of the last one is saved, so the process may
            # re-execute itself and reload the project (the same path as a resume); not
            # when no trial is left, where a restart would only cost a TensorFlow import
            count = getattr(self.oracle, "remaining_trials", None)  # a worker's client has none
            remaining = count() if count is not None else None
            if remaining is not None and remaining <= 0:
                return
            if self.recycle is not None and self.recycle():
                raise RecycleWorker()

        def _populate_initial_space(self) -> None:
            # The space has no conditional parameters, so declaring it is enough: KerasTuner's
            # default also builds a model (seconds of TensorFlow work in every process).
            hp = self.oracle.get_space()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.update_space(hp)

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            hp = trial.hyperparameters
            initial, epochs = trial_epochs(self.hypermodel.spec, hp.values)
            try:
                keras.utils.set_random_seed((self.seed + _trial_number(trial.trial_id)) % 2**31)
                model = self._try_build(hp)
                data = self.hypermodel.data()
                build_state_eagerly(model, data.x_train[:2], data.y_train[:2])
                best = BestEpoch(self.oracle.objective)
                reporter = EpochReporter(self.events, trial.trial_id)
                history = self.hypermodel.fit(
                    hp, model, callbacks=[best, reporter], epochs=epochs, initial_epoch=initial
                )
                self._keep_weights(trial.trial_id, model, best)
                return history
            except kt.errors.FailedTrialError as err:
                self._report_failure(trial.trial_id, str(err))
                raise
            except Exception as err:  # any trial error is recorded; the study goes on
                sentence = error_sentence(err, trial_params(self.hypermodel.spec, hp.values))
                self._report_failure(trial.trial_id, sentence)
                raise kt.errors.FailedTrialError(sentence) from None

        def _report_failure(self, trial_id: str, sentence: str) -> None:
            if self.events is not None:
                self.events.trial_failed(trial_id, sentence)

        def _keep_weights(self, trial_id: str, model: Any, best: Any) -> None:
            """Write this trial's best weights only if a later step may need them."""
            if best.weights is None or not (self.keeps_all or self._beats_best(best.best_value)):
                return
            model.set_weights(best.weights)
            model.save_weights(self._get_checkpoint_fname(trial_id))
            from keras_tuner.src import utils as kt_utils

            kt_utils.save_json(self._get_build_config_fname(trial_id), model.get_build_config())

        def _beats_best(self, value: float) -> bool:
            leaders = [
                t
                for t in self.oracle.get_best_trials(1)
                if t.status == completed and t.score is not None
            ]
            if not leaders:
                return True
            return bool(self.oracle.objective.better_than(value, leaders[0].score))

        def _try_build(self, hp: Any) -> Any:
            # KerasTuner clears the session and collects garbage twice before every build;
            # the hypermodel clears it only when it builds a new model (a reused one keeps
            # its compiled steps there) and collects once.
            return self._build_hypermodel(hp)

        def _build_hypermodel(self, hp: Any) -> Any:
            model = super()._build_hypermodel(hp)
            parent = hp.values.get("tuner/trial_id")
            if parent:  # hyperband continues a trial of the previous round
                load_all_weights(model, self._get_checkpoint_fname(parent))
            return model

        def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
            model.save_weights(self._get_checkpoint_fname(trial_id))

    class RecordingMixin:
        """Oracle mixin: report trial starts and ends, stop on request, prune weights."""

        events: TrialEvents | None = None
        stop_cause: str | None = None
        fatal: str | None = None

        @kt.synchronized
        def create_trial(self, tuner_id: str) -> Any:
            me: Any = self
            if tuner_id not in me.ongoing_trials and self.events is not None:
                reason = self.events.stop_reason()
                if reason:
                    self.stop_cause = reason
                    me.tuner_ids.discard(tuner_id)
                    return trial_module.Trial(me.get_space(), status=stopped)
            trial = super().create_trial(tuner_id)  # type: ignore[misc]
            if trial.status == running and self.events is not None:
                self.events.trial_started(trial)
            return trial

        @kt.synchronized
        def end_trial(self, trial: Any) -> None:
            me: Any = self
            try:
                super().end_trial(trial)  # type: ignore[misc]
            except RuntimeError as err:
                self.fatal = str(err).splitlines()[0]
                raise
            finally:
                if self.events is not None:
                    self.events.trial_ended(me.trials[trial.trial_id])
                self.prune()

        def keep_ids(self, final: bool = False) -> set[str]:
            """Return the trials whose weights must stay."""
            me: Any = self
            keep: set[str] = set()
            best = [t for t in me.get_best_trials(1) if t.status == completed]
            keep.update(t.trial_id for t in best)
            if final:
                return keep
            keep.update(t.trial_id for t in me.trials.values() if t.status == running)
            for bracket in getattr(me, "_brackets", []):  # hyperband's possible parents
                for round_info in bracket["rounds"]:
                    keep.update(info["id"] for info in round_info)
            return keep

        def prune(self, final: bool = False) -> int:
            """Delete the weights no later trial or export needs; return how many went."""
            me: Any = self
            directory = getattr(me, "_directory", None)
            if directory is None:
                return 0
            return prune_checkpoints(me._project_dir, self.keep_ids(final))

    @functools.cache
    def oracle_class(strategy: str) -> type:
        base = getattr(kt.oracles, ORACLES[strategy])
        return type(f"Recording{base.__name__}", (RecordingMixin, base), {})

    return SimpleNamespace(
        HyperModel=CNNHyperModel,
        Tuner=CloudTuneTuner,
        oracle_class=oracle_class,
        EpochReporter=EpochReporter,
        BestEpoch=BestEpoch,
    )


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


def _trial_number(trial_id: str) -> int:
    return int(trial_id) if str(trial_id).isdigit() else abs(hash(trial_id)) % 100_000


# ----------------------------------------------------------------------------- factories


def make_oracle(spec: StudySpec, events: TrialEvents | None = None) -> Any:
    """Build the recording KerasTuner oracle of the spec's strategy.

    Objective, seed and max_trials come from the spec; hyperband's max_epochs is the budget's
    epochs and its trial count is capped at max_trials.
    """
    import keras_tuner as kt

    cls = kt_classes().oracle_class(spec.strategy)
    objective = kt.Objective(spec.objective.metric, direction=spec.objective.goal)
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
    classes = kt_classes()
    hypermodel = classes.HyperModel(spec, dataset)
    kwargs: dict[str, Any] = {}
    if tuner_id is not None:
        kwargs["tuner_id"] = tuner_id
    return classes.Tuner(
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


def requeue_interrupted(oracle: Any) -> list[str]:
    """After a reload, queue every trial still marked running so it is run again, once.

    KerasTuner already re-queues the trials its saved state lists as ongoing; this also catches
    one killed between writing its trial file and the oracle's state. Returns the queued ids.
    """
    queued = []
    for trial_id, trial in oracle.trials.items():
        if trial.status == "RUNNING" and trial_id not in oracle._retry_queue:
            oracle._retry_queue.append(trial_id)
            queued.append(trial_id)
    return queued
