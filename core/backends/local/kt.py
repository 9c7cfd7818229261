"""CloudTune's one adapter to KerasTuner: its subclasses, callbacks and every private name used."""

# ----------------------------------------------------------------------------- private names
# KerasTuner's private names CloudTune relies on: in core/ they are used in this module only;
# tests/harness_local.py also uses the three marked (tests). ``PRIVATE_NAMES`` below lists
# them all for tests/backends/test_kt_adapter.py, which fails when the installed KerasTuner lacks one.
# Each entry: name -- where KerasTuner defines it (under keras_tuner/) -- why CloudTune needs it.
# (Keras' own private ``_compile_metrics`` and ``_compile_loss`` are read, with a fallback, by
# ``core.backends.local.hypermodel.build_state_eagerly``; they are Keras', not KerasTuner's.)
#
# Modules, their functions and classes:
#   keras_tuner.src.utils.save_json -- src/utils.py -- writes a trial's build_config.json
#       next to the weights it keeps, as KerasTuner's own save_model does.
#   keras_tuner.src.protos.get_service_grpc -- src/protos/__init__.py -- registers the chief
#       oracle's gRPC service on the chief's server (KerasTuner has no public server API).
#   keras_tuner.src.distribute.oracle_chief.OracleServicer -- src/distribute/oracle_chief.py
#       -- the chief oracle's gRPC servicer (KerasTuner serves it only from its own search).
#   OracleServicer.stop_triggered -- OracleServicer.__init__ -- set once every worker asked
#       the chief to end: the chief's supervisor waits for it.
#   keras_tuner.src.distribute.oracle_chief.exit_chief -- src/distribute/oracle_chief.py --
#       KerasTuner's own test of whether a chief may stop serving.
#   keras_tuner.src.engine.tuner_utils.convert_to_metrics_dict, .get_best_step --
#       src/engine/tuner_utils.py -- (tests) the harness turns a fake history into a
#       trial's metrics exactly as BaseTuner does.
# Tuner (keras_tuner.Tuner: src/engine/base_tuner.py and src/engine/tuner.py):
#   _populate_initial_space -- base_tuner.py -- overridden: declaring the space is enough;
#       KerasTuner's own also builds a model (seconds of TensorFlow in every process).
#   _try_build -- tuner.py -- overridden: KerasTuner clears the Keras session and collects
#       garbage twice before every build, which would drop the reused model's compiled steps.
#   _build_hypermodel -- tuner.py -- extended: hyperband loads the parent trial's weights.
#   _get_checkpoint_fname, _get_build_config_fname -- tuner.py -- where a trial's weights and
#       build config go (the paths KerasTuner itself reloads).
# Oracle (keras_tuner.Oracle: src/engine/oracle.py):
#   _retry_queue -- Oracle.__init__ -- a reloaded run re-queues trials still marked running.
#   _directory -- Oracle._set_project_dir -- tells whether the oracle has a project folder.
#   _project_dir -- Oracle (a property) -- the folder whose trial weights are pruned.
#   _set_project_dir -- Oracle -- (tests) the harness gives a bare oracle its folder.
#   _brackets -- HyperbandOracle.__init__ (src/tuners/hyperband.py) -- the trials of
#       hyperband's open brackets, whose weights a later round may continue from.

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import keras
import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.src import protos
from keras_tuner.src import utils as kt_utils
from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief

from core.backends.local.hypermodel import (
    MIN_VALIDATION_BATCH,
    DatasetLike,
    RecycleWorker,
    TrialEvents,
    build_state_eagerly,
    declare_param,
    divergence,
    error_sentence,
    load_all_weights,
    median_says_stop,
    prune_checkpoints,
    read_curves,
    trial_epochs,
    trial_number,
    trial_params,
    write_curve,
)
from core.training.model import architecture_key, build_model, reset_model

if TYPE_CHECKING:
    from core.spec import StudySpec

log = logging.getLogger(__name__)


class PrivateName(NamedTuple):
    """One private KerasTuner name CloudTune uses (see the list at the top of this module)."""

    owner: str
    """The dotted path of the module or class that holds it."""
    name: str
    """The attribute."""
    instance: bool = False
    """Set on each instance (by ``__init__`` or ``_set_project_dir``), not on the class."""


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    PrivateName("keras_tuner.src.utils", "save_json"),
    PrivateName("keras_tuner.src.protos", "get_service_grpc"),
    PrivateName("keras_tuner.src.distribute.oracle_chief", "OracleServicer"),
    PrivateName("keras_tuner.src.distribute.oracle_chief", "exit_chief"),
    PrivateName("keras_tuner.src.distribute.oracle_chief.OracleServicer", "stop_triggered", True),
    PrivateName("keras_tuner.src.engine.tuner_utils", "convert_to_metrics_dict"),
    PrivateName("keras_tuner.src.engine.tuner_utils", "get_best_step"),
    PrivateName("keras_tuner.Tuner", "_populate_initial_space"),
    PrivateName("keras_tuner.Tuner", "_try_build"),
    PrivateName("keras_tuner.Tuner", "_build_hypermodel"),
    PrivateName("keras_tuner.Tuner", "_get_checkpoint_fname"),
    PrivateName("keras_tuner.Tuner", "_get_build_config_fname"),
    PrivateName("keras_tuner.Oracle", "_retry_queue", True),
    PrivateName("keras_tuner.Oracle", "_directory", True),
    PrivateName("keras_tuner.Oracle", "_project_dir"),
    PrivateName("keras_tuner.Oracle", "_set_project_dir"),
    PrivateName("keras_tuner.oracles.HyperbandOracle", "_brackets", True),
)
"""The private names listed at the top of this module; tests/backends/test_kt_adapter.py checks them."""

RUNNING = trial_module.TrialStatus.RUNNING
COMPLETED = trial_module.TrialStatus.COMPLETED
STOPPED = trial_module.TrialStatus.STOPPED


# ----------------------------------------------------------------------------- callbacks


class EpochReporter(keras.callbacks.Callback):
    """Reports every finished epoch with its wall time.

    Args:
        events: where the epochs go (None: nowhere).
        trial_id: the trial being trained.
    """

    def __init__(self, events: TrialEvents | None, trial_id: str) -> None:
        super().__init__()
        self.events, self.trial_id, self.started = events, trial_id, time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        """Start the epoch's clock."""
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Report the epoch (numbered from 1), its logs and its wall time."""
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
        """Stop training when the epoch's loss is NaN or infinite."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class BestEpoch(keras.callbacks.Callback):
    """Keeps the best epoch's weights in memory (one disk write per trial at most).

    Args:
        objective: the oracle's ``keras_tuner.Objective``.
    """

    def __init__(self, objective: Any) -> None:
        super().__init__()
        self.objective = objective
        self.best_value = -math.inf if objective.direction == "max" else math.inf
        self.weights: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Keep the weights when this epoch's objective beats the best so far."""
        if not self.objective.has_value(logs or {}):
            return
        value = float(self.objective.get_value(logs))
        if math.isfinite(value) and self.objective.better_than(value, self.best_value):
            self.best_value = value
            self.weights = self.model.get_weights()


class MedianStopping(keras.callbacks.Callback):
    """The median stopping rule (``budget.early_stopping: median``), for every strategy.

    After each epoch but the last, the trial stops when its best objective so far is worse
    than the median of the completed trials' best so far at that epoch
    (:func:`core.backends.local.hypermodel.median_says_stop`). The completed trials' curves
    are read from the run's tuner folder, which every worker process of the run shares.

    Args:
        objective: the oracle's ``keras_tuner.Objective``.
        project_dir: KerasTuner's project folder of the run.
    """

    def __init__(self, objective: Any, project_dir: str) -> None:
        super().__init__()
        self.objective, self.project_dir = objective, project_dir
        self.curve: dict[int, float] = {}
        """This trial's objective by (absolute, 1-based) epoch."""
        self.stopped_epoch: int | None = None
        """The epoch after which the rule stopped the trial (None: it ran to the end)."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        """Record the epoch's objective; stop the trial when the median rule says so."""
        if not self.objective.has_value(logs or {}):
            return
        value = float(self.objective.get_value(logs))
        self.curve[epoch + 1] = value
        if epoch + 1 >= int(self.params.get("epochs", 0)):
            return  # the last epoch: stopping saves nothing
        finite = [v for v in self.curve.values() if math.isfinite(v)]
        if not finite:
            return
        goal = self.objective.direction
        best = max(finite) if goal == "max" else min(finite)
        if median_says_stop(best, epoch + 1, read_curves(self.project_dir), goal):
            self.model.stop_training = True
            self.stopped_epoch = epoch + 1

    def record(self, trial_id: str, history: Any) -> None:
        """Keep the trial's curve for later trials and flag the history when it was stopped.

        ``early_stopped`` (1.0) joins the history, so KerasTuner reports it with the trial's
        metrics to the oracle (across processes too) and the store records it.
        """
        write_curve(self.project_dir, trial_id, self.curve)
        if self.stopped_epoch is not None and history is not None:
            n = len(history.history.get("loss", [])) or 1
            history.history["early_stopped"] = [1.0] * n


# ----------------------------------------------------------------------------- hypermodel


class CNNHyperModel(keras_tuner.HyperModel):
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
        """Return the dataset.

        Returns:
            The dataset the trials train on.

        Raises:
            RuntimeError: this hypermodel has none (a chief's).
        """
        if self.dataset is None:
            raise RuntimeError("this tuner has no dataset: a chief only hands out trials")
        return self.dataset

    def declare_hyperparameters(self, hp: Any) -> None:
        """Declare every parameter of the spec's space on ``hp``."""
        for param in self.spec.space:
            declare_param(hp, param)

    def build(self, hp: Any) -> keras.Model:
        """Reset the warm model for a trial of its architecture, else build a new one.

        Either way the model starts from weights drawn with one seed taken from NumPy's
        global generator (the tuner seeds it per trial), so a trial's result does not
        depend on whether its model was reused. A new one starts a new Keras session (the
        old model's compiled steps are dropped).

        Args:
            hp: the trial's ``keras_tuner.HyperParameters``.

        Returns:
            The compiled model.
        """
        import numpy as np

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

        Args:
            batch: the batch size.

        Returns:
            A ``tf.data.Dataset`` of (images, labels) batches.
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
        """Train ``model`` with the trial's batch size; fail the trial on a NaN or diverged loss.

        Args:
            hp: the trial's ``keras_tuner.HyperParameters``.
            model: the model :meth:`build` returned.
            *args: ignored (KerasTuner's positional fit arguments).
            **kwargs: ``callbacks``, ``epochs`` and ``initial_epoch`` from the tuner.

        Returns:
            Keras' ``History``.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became NaN or diverged.
        """
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
    """Fail the trial whose training losses are NaN or diverged (see ``divergence``).

    Args:
        history: Keras' ``History`` of the trial.
        params: the trial's parameters, with ``num_classes``.
        initial: the epoch the trial started from.

    Raises:
        keras_tuner.errors.FailedTrialError: the loss became NaN or diverged.
    """
    losses = [float("nan") if v is None else float(v) for v in history.history.get("loss", [])]
    sentence = divergence(losses, params, initial, int(params.get("num_classes", 10)))
    if sentence:
        raise keras_tuner.errors.FailedTrialError(sentence)


# ----------------------------------------------------------------------------- tuner


class CloudTuneTuner(keras_tuner.Tuner):
    """One tuner for every strategy: trains a trial, reports epochs, keeps the best weights.

    Args:
        oracle: a recording oracle from :func:`oracle_class`.
        hypermodel: a :class:`CNNHyperModel`.
        events: where epochs are reported (None: nowhere).
        seed: the study's seed; trial ``n`` trains with seed + n.
        recycle: called before each trial; True raises ``RecycleWorker`` (None: never).
        **kwargs: ``directory``, ``project_name``, ``overwrite`` as for ``keras_tuner.Tuner``.
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
        self.keeps_all = isinstance(oracle, keras_tuner.oracles.HyperbandOracle)

    def pre_create_trial(self) -> None:
        """Between two trials, ask ``recycle`` whether the process should re-execute itself.

        Raises:
            RecycleWorker: it should (never when no trial is left).
        """
        # everything of the last trial is saved, so the process may re-execute itself and
        # reload the project (the same path as a resume); not when no trial is left, where a
        # restart would only cost a TensorFlow import
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
        """Train one trial, reporting its epochs and keeping its best weights if needed.

        Args:
            trial: the KerasTuner trial.
            *args: ignored (KerasTuner's search arguments).
            **kwargs: ignored.

        Returns:
            Keras' ``History`` of the trial.

        Raises:
            keras_tuner.errors.FailedTrialError: the trial failed (its sentence was reported).
        """
        hp = trial.hyperparameters
        initial, epochs = trial_epochs(self.hypermodel.spec, hp.values)
        try:
            keras.utils.set_random_seed((self.seed + trial_number(trial.trial_id)) % 2**31)
            model = self._try_build(hp)
            data = self.hypermodel.data()
            build_state_eagerly(model, data.x_train[:2], data.y_train[:2])
            best = BestEpoch(self.oracle.objective)
            reporter = EpochReporter(self.events, trial.trial_id)
            callbacks: list[Any] = [best, reporter]
            median = None
            if self.hypermodel.spec.budget.early_stopping == "median":
                median = MedianStopping(self.oracle.objective, self.project_dir)
                callbacks.append(median)
            history = self.hypermodel.fit(
                hp, model, callbacks=callbacks, epochs=epochs, initial_epoch=initial
            )
            if median is not None:
                median.record(trial.trial_id, history)
            self._keep_weights(trial.trial_id, model, best)
            return history
        except keras_tuner.errors.FailedTrialError as err:
            self._report_failure(trial.trial_id, str(err))
            raise
        except Exception as err:  # any trial error is recorded; the study goes on
            sentence = error_sentence(err, trial_params(self.hypermodel.spec, hp.values))
            self._report_failure(trial.trial_id, sentence)
            raise keras_tuner.errors.FailedTrialError(sentence) from err

    def _report_failure(self, trial_id: str, sentence: str) -> None:
        if self.events is not None:
            self.events.trial_failed(trial_id, sentence)

    def _keep_weights(self, trial_id: str, model: Any, best: Any) -> None:
        """Write this trial's best weights only if a later step may need them."""
        if best.weights is None or not (self.keeps_all or self._beats_best(best.best_value)):
            return
        model.set_weights(best.weights)
        model.save_weights(self._get_checkpoint_fname(trial_id))
        kt_utils.save_json(self._get_build_config_fname(trial_id), model.get_build_config())

    def _beats_best(self, value: float) -> bool:
        leaders = [
            t
            for t in self.oracle.get_best_trials(1)
            if t.status == COMPLETED and t.score is not None
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
        """Save a trial's weights where KerasTuner reloads them.

        Args:
            trial_id: the trial.
            model: its model.
            step: ignored (KerasTuner's epoch of the weights).
        """
        model.save_weights(self._get_checkpoint_fname(trial_id))


# ----------------------------------------------------------------------------- oracles


class RecordingMixin:
    """Oracle mixin: report trial starts and ends, stop on request, prune weights."""

    events: TrialEvents | None = None
    stop_cause: str | None = None
    fatal: str | None = None

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str) -> Any:
        """Hand out the next trial, or a stopped one when the events say none may start.

        Args:
            tuner_id: the tuner asking.

        Returns:
            A KerasTuner trial.
        """
        me: Any = self
        if tuner_id not in me.ongoing_trials and self.events is not None:
            reason = self.events.stop_reason()
            if reason:
                self.stop_cause = reason
                me.tuner_ids.discard(tuner_id)
                return trial_module.Trial(me.get_space(), status=STOPPED)
        trial = super().create_trial(tuner_id)  # type: ignore[misc]
        if trial.status == RUNNING and self.events is not None:
            self.events.trial_started(trial)
        return trial

    @keras_tuner.synchronized
    def end_trial(self, trial: Any) -> None:
        """Record a trial's end, report it and prune the weights no longer needed.

        Args:
            trial: the finished KerasTuner trial.

        Raises:
            RuntimeError: KerasTuner's own (too many failed trials); kept in ``fatal``.
        """
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
        """Return the trials whose weights must stay.

        Args:
            final: the search is over (only the best trial's weights stay).

        Returns:
            The trial ids.
        """
        me: Any = self
        keep: set[str] = set()
        best = [t for t in me.get_best_trials(1) if t.status == COMPLETED]
        keep.update(t.trial_id for t in best)
        if final:
            return keep
        keep.update(t.trial_id for t in me.trials.values() if t.status == RUNNING)
        for bracket in getattr(me, "_brackets", []):  # hyperband's possible parents
            for round_info in bracket["rounds"]:
                keep.update(info["id"] for info in round_info)
        return keep

    def prune(self, final: bool = False) -> int:
        """Delete the weights no later trial or export needs.

        Args:
            final: the search is over (see :meth:`keep_ids`).

        Returns:
            How many weight files went.
        """
        me: Any = self
        directory = getattr(me, "_directory", None)
        if directory is None:
            return 0
        return prune_checkpoints(me._project_dir, self.keep_ids(final))


class RecordingGridSearchOracle(RecordingMixin, keras_tuner.oracles.GridSearchOracle):
    """KerasTuner's grid search oracle, recording (see :class:`RecordingMixin`)."""


class RecordingRandomSearchOracle(RecordingMixin, keras_tuner.oracles.RandomSearchOracle):
    """KerasTuner's random search oracle, recording (see :class:`RecordingMixin`)."""


class RecordingBayesianOptimizationOracle(
    RecordingMixin, keras_tuner.oracles.BayesianOptimizationOracle
):
    """KerasTuner's Bayesian optimisation oracle, recording (see :class:`RecordingMixin`)."""


class RecordingHyperbandOracle(RecordingMixin, keras_tuner.oracles.HyperbandOracle):
    """KerasTuner's hyperband oracle, recording (see :class:`RecordingMixin`)."""


ORACLES: dict[str, type] = {
    "grid": RecordingGridSearchOracle,
    "random": RecordingRandomSearchOracle,
    "bayesian": RecordingBayesianOptimizationOracle,
    "hyperband": RecordingHyperbandOracle,
}
"""Spec strategy -> recording KerasTuner oracle class."""


def oracle_class(strategy: str) -> type:
    """Return the recording oracle class of a spec strategy.

    Args:
        strategy: "grid", "random", "bayesian" or "hyperband".

    Returns:
        The class (a :class:`RecordingMixin` over KerasTuner's oracle).

    Raises:
        KeyError: an unknown strategy.
    """
    return ORACLES[strategy]


def requeue_interrupted(oracle: Any) -> list[str]:
    """After a reload, queue every trial still marked running so it is run again, once.

    KerasTuner already re-queues the trials its saved state lists as ongoing; this also catches
    one killed between writing its trial file and the oracle's state.

    Args:
        oracle: the reloaded oracle.

    Returns:
        The queued trial ids.
    """
    queued = []
    for trial_id, trial in oracle.trials.items():
        if trial.status == "RUNNING" and trial_id not in oracle._retry_queue:
            oracle._retry_queue.append(trial_id)
            queued.append(trial_id)
    return queued


# ----------------------------------------------------------------------------- the chief


def add_oracle_service(oracle: Any, server: Any) -> Any:
    """Serve KerasTuner's chief oracle on a gRPC server (not yet started).

    Args:
        oracle: the chief's oracle.
        server: a ``grpc.server``.

    Returns:
        KerasTuner's servicer (see :func:`chief_finished`).
    """
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


def chief_finished(oracle: Any, servicer: Any) -> bool:
    """Say whether the chief may stop serving: its workers asked to end and KerasTuner agrees.

    Args:
        oracle: the chief's oracle.
        servicer: what :func:`add_oracle_service` returned.

    Returns:
        True when the search is over.
    """
    return bool(stop_requested(servicer) and exit_chief(oracle))


def stop_requested(servicer: Any) -> bool:
    """Say whether a worker told the chief's servicer that the search is over.

    Args:
        servicer: what :func:`add_oracle_service` returned.

    Returns:
        KerasTuner's ``stop_triggered`` flag.
    """
    return bool(servicer.stop_triggered)
