"""Train one trial inside a cloud container (SageMaker, Vertex AI, Azure ML) and report its metrics.

Run ``python train.py --learning_rate=0.01 --batch_size 64 --epochs 5`` from a bundle folder or
``python -m core.training.train ...`` in the repository. Per epoch it prints ``epoch: N``,
``train_loss``, ``train_accuracy``, ``val_loss`` and ``val_accuracy: 0.xxxx`` lines and the
objective's running best (``val_accuracy_best: 0.xxxx``; SageMaker's metric regexes read them),
appends the objective to the cloudml-hypertune metrics file (Vertex AI) and, when an MLflow
tracking URI is set (Azure ML), logs the metrics and the running best to MLflow. The model is
saved as ``model.keras`` with ``metrics.json`` beside it.

One measurement on every platform: a trial's objective is its best epoch (the running best is
what SageMaker's objective regex and Azure ML's primary metric read; Vertex AI selects its best
measurement), and a trial trains with seed = ``--seed`` + its index, which the trainer reads
from the service's own naming of the trial (:func:`trial_index`), as the local backend does.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import core
from core.errors import CloudTuneError
from core.spec import METRICS
from core.spec.design import CONFIG_INDEX, CONFIGURATIONS_FILE, config_index, configuration
from core.training.data import load_dataset, load_from_dir
from core.training.model import (
    build_model,
    configure_threads,
    default_params,
    fit_trial,
    resolve_params,
)

if TYPE_CHECKING:
    import keras

    from core.training.data import Dataset

log = logging.getLogger(__name__)

DESCRIPTION = "Train one CloudTune trial and report its metrics (SageMaker, Vertex AI, Azure ML)."
OBJECTIVE = "val_accuracy"
DEFAULT_EPOCHS = 10
GCS_MOUNT = Path("/gcs")
GCS_ROOT_ENV = "CLOUDTUNE_GCS_ROOT"
"""Names another folder for Vertex AI's /gcs mount (the container contract tests redirect it)."""
SAGEMAKER_CONFIG_DIR = "/opt/ml/input/config"
HP_METRIC_FILE = "/tmp/hypertune/output.metrics"
HP_METRIC_TAG = "training/hptuning/metric"
HP_MAX_ENTRIES = 100
DATA_ENV_VARS = ("SM_CHANNEL_TRAIN", "SM_CHANNEL_TRAINING")
AZURE_DATA_PREFIX = "AZUREML_DATAREFERENCE_"
EPOCH_KEYS = (
    ("train_loss", "loss"),
    ("train_accuracy", "accuracy"),
    ("val_loss", "val_loss"),
    ("val_accuracy", "val_accuracy"),
)
# SageMaker metric definitions matching the lines this script prints (no name is a suffix of
# another, so each regex matches only its own line).
METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": rf"{name}: ([0-9\.]+)"} for name, _ in EPOCH_KEYS
] + [{"Name": "epoch", "Regex": r"epoch: ([0-9]+)"}]
BEST_SUFFIX = "_best"
"""The running best of the objective is printed and logged as ``<name>_best`` (e.g.
``val_accuracy_best``): no other metric's regex matches that line."""

EpochSink = Callable[[int, Mapping[str, float]], None]


def objective_arguments(spec: Any) -> dict[str, str]:
    """Return the trainer's objective arguments a study needs: none for the defaults.

    Args:
        spec: a StudySpec (its objective's metric and goal).

    Returns:
        ``{"objective": ...}`` when the metric is not val_accuracy, ``{"goal": ...}`` when the
        goal is not the metric's own direction.
    """
    metric, goal = spec.objective.metric, spec.objective.goal
    out = {}
    if metric != OBJECTIVE:
        out["objective"] = str(metric)
    if goal != METRICS.get(metric, "max"):
        out["goal"] = str(goal)
    return out


class UsageError(Exception):
    """A bad argument, setting or path: printed as one sentence, exit status 2."""


@dataclass
class TrainConfig:
    """Everything one training run needs, parsed from the command line and the environment."""

    params: dict[str, Any]
    epochs: int = DEFAULT_EPOCHS
    dataset: str | None = None
    data_dir: str | None = None
    model_dir: Path = Path("outputs")
    seed: int = 0
    subset: int | None = None
    validation_split: float | None = 0.2
    threads: int = 0
    objective: str = OBJECTIVE
    goal: str = "max"
    trial: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def trial_seed(self) -> int:
        """The seed this trial trains with: the study's seed + the trial's index."""
        return self.seed + self.trial


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"Bad arguments: {message}.")


def _tunable_names() -> list[str]:
    return list(default_params())


def build_parser() -> argparse.ArgumentParser:
    """Build the parser: every tunable as ``--name``, plus the run options.

    Returns:
        A parser whose ``error`` raises ``UsageError`` instead of exiting.
    """
    parser = _Parser(prog="train.py", allow_abbrev=False, description=DESCRIPTION)
    for name in _tunable_names():
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        parser.add_argument(*flags, dest=name, default=None, metavar="VALUE")
    parser.add_argument("--epochs", default=str(DEFAULT_EPOCHS))
    parser.add_argument("--dataset", default=None, help="dataset name (default: detect)")
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", default=None)
    parser.add_argument("--model-dir", "--model_dir", dest="model_dir", default=None)
    parser.add_argument("--seed", default="0", help="the study's seed (+ the trial's index)")
    parser.add_argument(
        "--trial-index",
        "--trial_index",
        dest="trial_index",
        default="auto",
        help="the trial's index from 0 (auto: from the tuning service's environment)",
    )
    parser.add_argument(
        "--config_index",
        "--config-index",
        dest="config_index",
        default=None,
        help="a same-configurations study: train configuration N of the configurations file "
        "(its seed is the study's seed + N)",
    )
    parser.add_argument(
        "--configurations",
        default=None,
        help=f"the configurations file (default: {CONFIGURATIONS_FILE} at the bundle's top)",
    )
    parser.add_argument("--goal", default=None, help="max or min (default: the metric's own)")
    parser.add_argument("--subset", default=None, help="keep at most N training images")
    parser.add_argument(
        "--validation-split",
        "--validation_split",
        dest="validation_split",
        default="0.2",
        help="fraction held out, or 'official' for the dataset's own test split",
    )
    parser.add_argument("--threads", default="0", help="TensorFlow threads per pool (0: all)")
    parser.add_argument(
        "--objective",
        default=OBJECTIVE,
        help="the metric reported to the tuning service: val_accuracy, val_loss, accuracy, loss",
    )
    parser.add_argument(
        "--batch_norm", "--batch-norm", dest="batch_norm", default=None, help="true or false"
    )
    return parser


OBJECTIVES = {keras_name: printed for printed, keras_name in EPOCH_KEYS}
"""The objectives the trainer can report, by Keras name, with the name it prints them under."""


def _objective(raw: object) -> str:
    name = str(decode_value(raw))
    if name not in OBJECTIVES:
        raise UsageError(
            f"--objective {name!r} is not a metric this trainer reports; use one of "
            f"{', '.join(OBJECTIVES)}."
        )
    return name


def _goal(raw: object, objective: str) -> str:
    if raw is None:
        return METRICS[objective]
    goal = str(decode_value(raw)).lower()
    if goal not in ("max", "min"):
        raise UsageError(f"--goal must be max or min, not {raw!r}.")
    return goal


_SAGEMAKER_TRIAL = re.compile(r"-(\d{3})-[0-9a-zA-Z]{8}$")
_AZURE_TRIAL = re.compile(r"_(\d+)$")


def trial_index(env: Mapping[str, str]) -> int:
    """Return the trial's index from 0, as the tuning service numbers it, else 0.

    * SageMaker names a tuning job's training jobs ``<tuning job>-007-1a2b3c4d`` and passes the
      name as ``TRAINING_JOB_NAME`` (trial 7 has index 6);
    * Vertex AI passes the trial's id, counted from 1, as ``CLOUD_ML_TRIAL_ID``;
    * Azure ML runs a sweep's trial ``n`` (from 0) as the child run ``<sweep>_<n>``, named by
      ``AZUREML_RUN_ID`` (and ``MLFLOW_RUN_NAME`` where set).

    The pollers number the trials by the same names (core.backends), so the seed recorded on a
    trial is the one it trained with.
    """
    name = env.get("TRAINING_JOB_NAME")
    if name:
        match = _SAGEMAKER_TRIAL.search(name)
        if match:
            return int(match.group(1)) - 1
    vertex = str(env.get("CLOUD_ML_TRIAL_ID") or "")
    if vertex.isdigit() and int(vertex) > 0:
        return int(vertex) - 1
    for var in ("AZUREML_RUN_ID", "MLFLOW_RUN_NAME"):
        match = _AZURE_TRIAL.search(str(env.get(var) or ""))
        if match:
            return int(match.group(1))
    return 0


def _trial(raw: object, env: Mapping[str, str]) -> int:
    if str(raw).strip().lower() in ("", "auto", "none"):
        return trial_index(env)
    return _whole("trial-index", raw, 0)


def _config_trial(ns: argparse.Namespace) -> int:
    """A same-configurations trial's index is its configuration's: the same seed everywhere."""
    index = config_index(_index(ns))
    if index is None or index < 0:
        raise UsageError(f"--config_index must be a whole number from 0, not {ns.config_index!r}.")
    return index


def _options(ns: argparse.Namespace) -> dict[str, Any]:
    if ns.batch_norm is None:
        return {}
    value = decode_value(ns.batch_norm)
    if isinstance(value, str):
        value = {"true": True, "false": False, "1": True, "0": False}.get(value.lower(), value)
    if not isinstance(value, bool | int):
        raise UsageError(f"--batch_norm must be true or false, not {ns.batch_norm!r}.")
    return {"batch_norm": bool(value)}


def decode_value(text: object) -> object:
    """Turn a hyperparameter as a platform sends it into a Python value.

    SageMaker sends strings (JSON-encoded in hyperparameters.json), Vertex AI sends numbers as
    text such as ``64.0``; ``"adam"``, ``adam``, ``0.01`` and ``64`` all come out as expected.

    Args:
        text: The raw value.

    Returns:
        An int, float, bool or str.
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        return stripped
    return value if isinstance(value, str | int | float | bool) else stripped


def _whole(flag: str, raw: object, minimum: int) -> int:
    value = decode_value(raw)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise UsageError(f"Argument --{flag} must be a whole number, got {raw!r}.")
    if int(value) < minimum:
        raise UsageError(f"Argument --{flag} must be at least {minimum}, got {raw!r}.")
    return int(value)


def _split(raw: object) -> float | None:
    value = decode_value(raw)
    if isinstance(value, str) and value.lower() in ("official", "none", "test"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise UsageError(
            f"Argument --validation-split must be a fraction between 0 and 1 or 'official', "
            f"got {raw!r}."
        )
    return float(value)


def sagemaker_hyperparameters(env: Mapping[str, str]) -> dict[str, object]:
    """Read SageMaker's hyperparameters.json when it exists (decoded values).

    Args:
        env: The environment (``SM_INPUT_CONFIG_DIR`` overrides /opt/ml/input/config).

    Returns:
        Name to value; empty outside SageMaker.

    Raises:
        UsageError: The file exists but is not a JSON object.
    """
    path = Path(env.get("SM_INPUT_CONFIG_DIR", SAGEMAKER_CONFIG_DIR)) / "hyperparameters.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"SageMaker's {path} could not be read as JSON ({err}).") from err
    if not isinstance(data, dict):
        raise UsageError(f"SageMaker's {path} must hold a JSON object.")
    return {str(k): decode_value(v) for k, v in data.items()}


def _file_tokens(parser: argparse.ArgumentParser, values: Mapping[str, object]) -> list[str]:
    known = {opt for action in parser._actions for opt in action.option_strings}
    tokens: list[str] = []
    for name, value in values.items():
        if f"--{name}" in known:
            tokens.append(f"--{name}={value}")
    return tokens


def _params_from(ns: argparse.Namespace) -> dict[str, Any]:
    given = {
        n: decode_value(getattr(ns, n)) for n in _tunable_names() if getattr(ns, n) is not None
    }
    try:
        if ns.config_index is not None:
            given = configuration(_configurations(ns.configurations), given | _index(ns))
        return resolve_params(given)
    except ValueError as err:
        raise UsageError(str(err)) from err


def _index(ns: argparse.Namespace) -> dict[str, object]:
    return {CONFIG_INDEX: decode_value(ns.config_index)}


def _configurations(raw: str | None) -> list[dict[str, Any]]:
    """The same-configurations study's configurations: inline JSON (what the clouds pass),
    a file, or the bundle's own configurations file."""
    text = str(decode_value(raw)) if raw else ""
    if text.lstrip().startswith("["):
        data = _inline_list(text)
        file = Path("--configurations")
    else:
        file = Path(text) if text else Path(__file__).resolve().parents[2] / CONFIGURATIONS_FILE
        data = _configurations_file(file)
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise UsageError(f"{file} must hold a JSON list of configurations.")
    return data


def _inline_list(text: str) -> Any:
    """Read an inline configurations list: JSON, or the Python form SageMaker's training
    toolkit passes (it decodes the JSON hyperparameter and puts ``str()`` of the list on the
    command line: ``[{'learning_rate': 0.01, ...}]``)."""
    try:
        return json.loads(text)
    except ValueError as err:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise UsageError(f"--configurations is not a JSON list ({err}).") from err


def _configurations_file(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(
            f"--config_index needs the configurations file {file}, which cannot be read ({err})."
        ) from err


def parse_config(argv: Sequence[str] | None, env: Mapping[str, str]) -> TrainConfig:
    """Parse the command line (both ``--name=value`` and ``--name value``) and the environment.

    Command-line values win over SageMaker's hyperparameters.json. Unknown arguments (platforms
    add their own) are kept in ``ignored`` and reported, not fatal.

    Args:
        argv: Arguments without the program name (None reads ``sys.argv``).
        env: The environment variables.

    Returns:
        The run's configuration, with every tunable cast to its type.

    Raises:
        UsageError: An argument has a bad value or a path is unusable.
    """
    parser = build_parser()
    args = list(sys.argv[1:] if argv is None else argv)
    tokens = _file_tokens(parser, sagemaker_hyperparameters(env)) + args
    ns, unknown = parser.parse_known_args(tokens)
    subset = None if ns.subset in (None, "", "None", "none") else _whole("subset", ns.subset, 1)
    objective = _objective(ns.objective)
    gcs_root = gcs_mount(env)
    return TrainConfig(
        params=_params_from(ns),
        epochs=_whole("epochs", ns.epochs, 1),
        dataset=str(decode_value(ns.dataset)) if ns.dataset else None,
        data_dir=resolve_data_dir(ns.data_dir, env, gcs_root),
        model_dir=resolve_model_dir(ns.model_dir, env, gcs_root),
        seed=_whole("seed", ns.seed, 0),
        subset=subset,
        validation_split=_split(ns.validation_split),
        threads=_whole("threads", ns.threads, 0),
        objective=objective,
        goal=_goal(ns.goal, objective),
        trial=_trial(ns.trial_index, env) if ns.config_index is None else _config_trial(ns),
        options=_options(ns),
        ignored=unknown,
    )


def gcs_mount(env: Mapping[str, str]) -> Path:
    """Return where Cloud Storage FUSE mounts buckets: /gcs, or ``$CLOUDTUNE_GCS_ROOT``."""
    return Path(env.get(GCS_ROOT_ENV) or GCS_MOUNT)


def gcs_to_local(uri: str, gcs_root: Path = GCS_MOUNT) -> str | None:
    """Map a path or URI to a local path: gs://bucket/p becomes /gcs/bucket/p (Vertex's mount).

    Args:
        uri: A local path, ``file://`` URI or ``gs://`` URI.
        gcs_root: Where Cloud Storage FUSE mounts buckets.

    Returns:
        The local path, or None for other remote URIs (s3://, https://, azureml://).
    """
    if uri.startswith("gs://"):
        return str(gcs_root / uri[len("gs://") :])
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        return None
    return uri


def _folder_of(path: str) -> str:
    """A data URI may name files (``.../training-*``): use the folder that holds them."""
    if any(ch in path for ch in "*?[") or Path(path).is_file():
        return str(Path(path).parent)
    return path


def resolve_data_dir(
    cli: str | None, env: Mapping[str, str], gcs_root: Path = GCS_MOUNT
) -> str | None:
    """Find the data folder: --data-dir, SageMaker's channel, Vertex's URI, Azure's reference.

    Args:
        cli: The --data-dir value, if any.
        env: The environment.
        gcs_root: Where Cloud Storage FUSE mounts buckets.

    Returns:
        A local folder, or None when nothing names one (then --dataset must).

    Raises:
        UsageError: --data-dir is a remote URI that no mount maps to a local path.
    """
    if cli:
        local = gcs_to_local(cli, gcs_root)
        if local is None:
            raise UsageError(
                f"Argument --data-dir {cli} is a remote URI; pass a local or mounted folder."
            )
        return local
    for var in DATA_ENV_VARS:
        if env.get(var):
            return env[var]
    vertex = env.get("AIP_TRAINING_DATA_URI")
    local = gcs_to_local(vertex, gcs_root) if vertex else None
    if local:
        return _folder_of(local)
    for var in sorted(env):
        if var.startswith(AZURE_DATA_PREFIX) and env[var]:
            return env[var]
    return None


def _mounted(uri: str, gcs_root: Path) -> str | None:
    """The local path of ``uri`` when it is local or its gs:// bucket is mounted, else None."""
    local = gcs_to_local(uri, gcs_root)
    if local and uri.startswith("gs://"):
        bucket = uri[len("gs://") :].split("/")[0]
        return local if (gcs_root / bucket).is_dir() else None
    return local


def resolve_model_dir(cli: str | None, env: Mapping[str, str], gcs_root: Path = GCS_MOUNT) -> Path:
    """Find where to save the model: SM_MODEL_DIR, AIP_MODEL_DIR, --model-dir, else ./outputs.

    AIP_MODEL_DIR (gs://) is used through the /gcs mount only when that bucket is mounted;
    a remote --model-dir (SageMaker's TensorFlow estimator passes an s3:// one) is skipped.

    Args:
        cli: The --model-dir value, if any.
        env: The environment.
        gcs_root: Where Cloud Storage FUSE mounts buckets.

    Returns:
        A local folder (``outputs`` is what Azure ML uploads).
    """
    if env.get("SM_MODEL_DIR"):
        return Path(env["SM_MODEL_DIR"])
    for candidate in (env.get("AIP_MODEL_DIR"), cli):
        local = _mounted(candidate, gcs_root) if candidate else None
        if local:
            return Path(local)
    return Path("outputs")


class HypertuneReporter:
    """Writes metrics the way the cloudml-hypertune library does, without depending on it.

    Each report appends ``{"global_step": "N", "<tag>": "value", "timestamp": t, "trial": "id"}``
    to a queue of the last 100 entries and rewrites the file (default
    /tmp/hypertune/output.metrics, or ``$CLOUD_ML_HP_METRIC_FILE``) as JSON lines, keys sorted.
    Vertex AI reads the file to get each trial's objective.
    """

    def __init__(self, env: Mapping[str, str], objective: str = OBJECTIVE) -> None:
        """Read the file path, trial id and any service-chosen tag from the environment."""
        self.objective = objective
        self.path = Path(env.get("CLOUD_ML_HP_METRIC_FILE") or HP_METRIC_FILE)
        self.trial_id = str(env.get("CLOUD_ML_TRIAL_ID", 0))
        self.extra_tag = env.get("CLOUD_ML_HP_METRIC_TAG") or ""
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=HP_MAX_ENTRIES)

    def report(self, tag: str, value: float, global_step: int | None) -> None:
        """Record one metric value and rewrite the metrics file.

        Args:
            tag: The metric name the tuning job optimises (empty: the service default tag).
            value: The metric value.
            global_step: The step (we use the epoch number).
        """
        entry: dict[str, Any] = {
            "timestamp": time.time(),
            "trial": self.trial_id,
            (tag or HP_METRIC_TAG): str(float(value)),
            "global_step": str(int(global_step) if global_step else 0),
        }
        if self.extra_tag and self.extra_tag != tag:
            entry[self.extra_tag] = str(float(value))
        self.entries.append(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as out:
            for item in self.entries:
                out.write(json.dumps(item, sort_keys=True) + "\n")

    def sink(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Report the objective of one epoch (an ``EpochSink``)."""
        printed = OBJECTIVES.get(self.objective, self.objective)
        if printed in metrics:
            self.report(self.objective, metrics[printed], epoch)


class MlflowLogger:
    """Logs params and per-epoch metrics to MLflow (Azure ML jobs set MLFLOW_TRACKING_URI)."""

    def __init__(self, mlflow: Any, started: bool) -> None:
        """Wrap the imported mlflow module; ``started``: whether we opened the run."""
        self.mlflow = mlflow
        self.started = started

    @classmethod
    def start(cls, env: Mapping[str, str], params: Mapping[str, Any]) -> MlflowLogger | None:
        """Open (or join) a run and log the params, when a tracking URI is configured.

        Args:
            env: The environment; nothing happens without MLFLOW_TRACKING_URI.
            params: The trial's parameters.

        Returns:
            A logger, or None when MLflow is not configured, not installed or failing.
        """
        if not env.get("MLFLOW_TRACKING_URI"):
            return None
        try:
            import mlflow

            mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
            started = mlflow.active_run() is None
            if started:
                mlflow.start_run()
            mlflow.log_params({k: str(v) for k, v in params.items()})
        except Exception as err:  # noqa: BLE001 - logging must never stop training
            _warn(f"MLflow logging is off ({type(err).__name__}: {err}).")
            return None
        return cls(mlflow, started)

    def sink(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Log one epoch's metrics with ``step=epoch`` (an ``EpochSink``)."""
        self.mlflow.log_metrics(dict(metrics), step=epoch)

    def finish(self, ok: bool) -> None:
        """Close the run if we opened it, marking it FINISHED or FAILED."""
        if not self.started:
            return
        try:
            self.mlflow.end_run(status="FINISHED" if ok else "FAILED")
        except Exception as err:  # noqa: BLE001
            _warn(f"MLflow could not close the run ({type(err).__name__}: {err}).")


def _warn(sentence: str) -> None:
    print(f"warning: {sentence}", file=sys.stderr, flush=True)


def _safe(sink: EpochSink, label: str) -> EpochSink:
    def call(epoch: int, metrics: Mapping[str, float]) -> None:
        try:
            sink(epoch, metrics)
        except Exception as err:  # noqa: BLE001 - reporting must never stop training
            _warn(f"{label} reporting failed at epoch {epoch} ({type(err).__name__}: {err}).")

    return call


def best_name(objective: str = OBJECTIVE) -> str:
    """Return the name the objective's running best is printed and logged under."""
    return OBJECTIVES.get(objective, objective) + BEST_SUFFIX


def epoch_lines(epoch: int, metrics: Mapping[str, float], seconds: float) -> list[str]:
    """The lines printed after an epoch (SageMaker's regexes read them).

    Args:
        epoch: The epoch number, from 1.
        metrics: train_loss, train_accuracy, val_loss, val_accuracy, and the objective's
            running best (e.g. ``val_accuracy_best``).
        seconds: The epoch's wall time.

    Returns:
        ``epoch: N``, one ``name: 0.xxxx`` line per metric, the running best, and
        ``epoch_seconds: s``.
    """
    lines = [f"epoch: {epoch}"]
    lines += [f"{name}: {metrics[name]:.4f}" for name, _ in EPOCH_KEYS if name in metrics]
    lines += [f"{k}: {v:.4f}" for k, v in metrics.items() if k.endswith(BEST_SUFFIX)]
    return lines + [f"epoch_seconds: {seconds:.3f}"]


class EpochReport:
    """What the trainer reports after each epoch, on every platform: one place, no Keras.

    It prints the epoch's lines (SageMaker's metric regexes read them), keeps the objective's
    running best (by the goal) and passes the metrics with that best to the sinks (the
    hypertune file for Vertex AI, MLflow for Azure ML). The Keras callback of
    :func:`make_epoch_callback` calls it; the tests' service fakes call it too, so what a fake
    reads is what the trainer writes.

    Args:
        sinks: called as ``sink(epoch, metrics)`` after each epoch, epoch counted from 1.
        objective: the objective's Keras name (val_accuracy, val_loss, accuracy, loss).
        goal: "max" or "min".
        out: where the lines go (default: standard output).

    Example:
        >>> report = EpochReport([], "val_accuracy", "max")
        >>> report.end_epoch(1, {"val_accuracy": 0.5}, 1.0)   # prints epoch: 1 ...
    """

    def __init__(
        self,
        sinks: Sequence[EpochSink],
        objective: str = OBJECTIVE,
        goal: str = "max",
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.printed = OBJECTIVES.get(objective, objective)
        self.best_key = best_name(objective)
        self.goal = goal
        self.best: float | None = None
        self.rows: list[dict[str, float]] = []
        self._out = out or (lambda text: print(text, flush=True))

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.goal == "max" else value < self.best

    def end_epoch(self, epoch: int, metrics: Mapping[str, float], seconds: float) -> None:
        """Report one finished epoch (numbered from 1) with its printed-name metrics."""
        values = {k: float(v) for k, v in metrics.items()}
        current = values.get(self.printed)
        if current is not None and self._better(current):
            self.best = current
        if self.best is not None:
            values[self.best_key] = self.best
        self._out("\n".join(epoch_lines(epoch, values, seconds)))
        self.rows.append({**values, "seconds": seconds})
        for sink in self.sinks:
            sink(epoch, values)


def keras_metrics(logs: Mapping[str, Any] | None) -> dict[str, float]:
    """Return Keras' epoch logs under the names the trainer prints (train_loss, ...)."""
    logs = logs or {}
    return {name: float(logs[key]) for name, key in EPOCH_KEYS if key in logs}


def make_epoch_callback(report: EpochReport) -> keras.callbacks.Callback:
    """A Keras callback that hands each finished epoch to ``report``.

    Args:
        report: the trainer's :class:`EpochReport`.

    Returns:
        The callback; ``report.rows`` holds one dict per epoch (metrics plus ``seconds``).
    """
    from core.training.callbacks import EpochReporter  # lazy: Keras and TensorFlow

    return EpochReporter(report)


def load_data(config: TrainConfig) -> Dataset:
    """Load the dataset the config names: by name (optionally from a folder) or by detection.

    Args:
        config: The run's configuration.

    Returns:
        The dataset.

    Raises:
        UsageError: Neither a dataset name nor a data folder was given.
        DatasetError: The data is missing or unreadable.
    """
    options: dict[str, Any] = {
        "subset": config.subset,
        "validation_split": config.validation_split,
        "seed": config.seed,
    }
    if config.data_dir and (Path(config.data_dir) / "cloudtune-dataset.json").is_file():
        return load_from_dir(config.data_dir, **options)  # a staged folder says what it holds
    if config.dataset:
        return load_dataset(config.dataset, path=config.data_dir, **options)
    if config.data_dir:
        return load_from_dir(config.data_dir, **options)
    raise UsageError(
        "No data: pass --data-dir (or run where SM_CHANNEL_TRAIN or AIP_TRAINING_DATA_URI is "
        "set) or name a dataset with --dataset."
    )


def summarise(
    rows: Sequence[Mapping[str, float]],
    seconds: float,
    objective: str = OBJECTIVE,
    goal: str = "max",
) -> dict[str, Any]:
    """Final metrics for metrics.json: the last epoch's, the objective's best epoch, timings.

    Args:
        rows: One dict per epoch (metrics and ``seconds``).
        seconds: Total training wall time.
        objective: The objective's Keras name.
        goal: "max" or "min".

    Returns:
        A JSON-ready dict; ``best`` is the objective's best epoch value (the trial's result).
    """
    printed = OBJECTIVES.get(objective, objective)
    last = rows[-1]
    sign = 1.0 if goal == "max" else -1.0

    def score(i: int) -> float:
        value = rows[i].get(printed)
        return sign * value if value is not None and math.isfinite(value) else float("-inf")

    best = max(range(len(rows)), key=score)
    summary: dict[str, Any] = {"objective": objective, "goal": goal, "epochs": len(rows)}
    summary.update({name: last[name] for name, _ in EPOCH_KEYS if name in last})
    summary["best"] = rows[best].get(printed)
    summary["best_val_accuracy"] = max(
        (r[OBJECTIVE] for r in rows if OBJECTIVE in r and math.isfinite(r[OBJECTIVE])),
        default=None,
    )
    summary["best_epoch"] = best + 1
    summary["train_seconds"] = round(seconds, 3)
    summary["history"] = [dict(row, epoch=i + 1) for i, row in enumerate(rows)]
    return summary


def _prepare_model_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"The model folder {path} cannot be created ({err.strerror}).") from err
    return path


def _sinks(
    env: Mapping[str, str], params: Mapping[str, Any], objective: str = OBJECTIVE
) -> tuple[list[EpochSink], Any]:
    sinks = [_safe(HypertuneReporter(env, objective).sink, "Hypertune")]
    mlflow_logger = MlflowLogger.start(env, params)
    if mlflow_logger is not None:
        sinks.append(_safe(mlflow_logger.sink, "MLflow"))
    return sinks, mlflow_logger


def run(config: TrainConfig, env: Mapping[str, str]) -> dict[str, Any]:
    """Train one trial, report each epoch, save model.keras and metrics.json.

    Args:
        config: The run's configuration.
        env: The environment (hypertune file, MLflow settings).

    Returns:
        The summary written to metrics.json.

    Raises:
        UsageError: No data was named or the model folder cannot be created.
        DatasetError: The data is missing or unreadable.
    """
    if config.threads and not configure_threads(config.threads):
        _warn("TensorFlow was already running; --threads had no effect.")
    dataset = load_data(config)
    model_dir = _prepare_model_dir(config.model_dir)
    h, w, c = dataset.input_shape
    print(
        f"dataset: {dataset.name}, {len(dataset.y_train)} train / {len(dataset.y_val)} "
        f"validation images of {h}x{w}x{c}, {dataset.num_classes} classes",
        flush=True,
    )
    print(f"params: {json.dumps(config.params, sort_keys=True)}", flush=True)
    import keras
    import numpy as np

    seed = config.trial_seed
    print(f"trial: {config.trial}, seed: {seed}", flush=True)
    # the local backend's order: seed everything with the trial's seed, then draw the weights'
    # seed from NumPy (core.backends.local.hypermodel), so one configuration starts from the same weights
    keras.utils.set_random_seed(seed % 2**31)
    model = build_model(
        config.params,
        dataset.input_shape,
        dataset.num_classes,
        config.options or None,
        seed=int(np.random.randint(0, 2**31 - 1)),
    )
    sinks, mlflow_logger = _sinks(env, {**config.params, "seed": seed}, config.objective)
    report = EpochReport(sinks, config.objective, config.goal)
    ok = False
    try:
        start = time.perf_counter()
        fit_trial(model, dataset, config.params, config.epochs, [make_epoch_callback(report)])
        summary = summarise(report.rows, time.perf_counter() - start, config.objective, config.goal)
        summary.update(
            params=config.params, dataset=dataset.name, seed=seed, trial_index=config.trial
        )
        model.save(model_dir / "model.keras")
        text = json.dumps(summary, indent=2, sort_keys=True)
        (model_dir / "metrics.json").write_text(text + "\n", encoding="utf-8")
        ok = True
    finally:
        if mlflow_logger is not None:
            mlflow_logger.finish(ok)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the entry script and return its exit status (0 ok, 2 bad arguments or data).

    Args:
        argv: Arguments without the program name (None reads ``sys.argv``).

    Returns:
        The exit status; expected errors print one ``error:`` sentence and no traceback.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env = dict(os.environ)
    print(f"cloudtune trainer {core.__version__} from {Path(core.__file__).parent}", flush=True)
    try:
        config = parse_config(argv, env)
        if config.ignored:
            _warn(f"ignoring unknown arguments: {' '.join(config.ignored)}")
        summary = run(config, env)
    except (UsageError, CloudTuneError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    best = summary["best"]
    shown = "none" if best is None else f"{best:.4f}"
    print(
        f"done: best {config.objective} {shown} at epoch {summary['best_epoch']}; model saved "
        f"in {config.model_dir}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
