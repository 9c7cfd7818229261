"""Pure SageMaker translation: study spec -> CreateHyperParameterTuningJob request, and back.

Nothing here opens a file or a socket. :func:`build_request` assembles the SageMaker Python
SDK v3's own shape classes (``sagemaker.core.shapes``) and range classes
(``sagemaker.core.parameter``), takes the TensorFlow training image from
``sagemaker.core.image_uris`` and serialises the result with the SDK's serialiser, so the
dict it returns is exactly the body the service receives. :func:`parse_training_job` and
:func:`spec_from_job` read the service's answers back with the spec's types restored.

Example:
    >>> request = build_request(spec, {"region": "us-east-1", "bucket": "b",
    ...     "role_arn": "arn:aws:iam::123456789012:role/SageMaker"})
    >>> request["HyperParameterTuningJobConfig"]["Strategy"]
    'Bayesian'
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from core.backends import containers
from core.backends.platforms import PLATFORMS
from core.backends.records import EpochRecord, RunStatus, TrialRecord, TrialStatus
from core.errors import BackendError, SpecError
from core.spec import (
    DATASET_NAMES,
    KNOWN_PARAMS,
    METRICS,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    StudySpec,
    typed_value,
)
from core.spec.design import configurations_argument
from core.training.train import BEST_SUFFIX, objective_arguments

log = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = PLATFORMS["sagemaker"].default_instance
DEFAULT_FRAMEWORK_VERSION = "2.21"
"""The newest TensorFlow in SageMaker's training images (Python 3.12), as the local trainer."""
DEFAULT_PREFIX = "cloudtune"
DEFAULT_VOLUME_GB = 30
DEFAULT_TRIAL_MINUTES = 60
ENTRY_POINT = "train.py"
CHANNEL = "train"
SOURCE_TARBALL = "sourcedir.tar.gz"
MAX_CATEGORICAL_VALUES = 30
"""SageMaker accepts at most 30 values in one categorical range."""
MIN_TUNING_RUNTIME_S = 120
PLACEHOLDER_BUCKET = "YOUR-BUCKET"
PLACEHOLDER_ROLE = "arn:aws:iam::111122223333:role/YOUR-SAGEMAKER-ROLE"
PLACEHOLDER_REGION = "us-east-1"
CONTENT_HASH = "CONTENT-HASH"
"""Stands for the dataset's or trainer's content hash where a pure preview cannot compute it."""

STRATEGIES: dict[str, str] = {
    "random": "Random",
    "bayesian": "Bayesian",
    "hyperband": "Hyperband",
    "grid": "Grid",
}
"""Our strategy names and SageMaker's."""

METRIC_LINES: dict[str, str] = {
    "val_accuracy": "val_accuracy",
    "val_loss": "val_loss",
    "accuracy": "train_accuracy",
    "loss": "train_loss",
    "epoch": "epoch",
}
"""Each metric's name in the trainer's log lines (``val_accuracy: 0.9123`` per epoch, see
core.training.train.epoch_lines); no line name is a suffix of another."""

TUNING_STATUS: dict[str, tuple[RunStatus, str | None]] = {
    "InProgress": ("running", None),
    "Completed": ("completed", None),
    "Failed": ("failed", None),
    "Stopping": ("running", "stopping: SageMaker is stopping the training jobs"),
    "Stopped": ("cancelled", None),
    "Deleting": ("failed", "the tuning job is being deleted"),
    "DeleteFailed": ("failed", "the tuning job could not be deleted"),
}
"""HyperParameterTuningJobStatus -> (run status, detail)."""

TRAINING_STATUS: dict[str, TrialStatus] = {
    "InProgress": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Stopping": "running",
    "Stopped": "stopped",
}
"""TrainingJobStatus -> trial status."""

_SECRET_WORDS = ("secret", "access_key", "token", "password", "credential")


# ----------------------------------------------------------------------------- settings


def region(settings: Mapping[str, Any]) -> str:
    """Return the AWS region of the settings, or the placeholder a preview uses."""
    return str(settings.get("region") or PLACEHOLDER_REGION).strip()


def bucket_name(settings: Mapping[str, Any]) -> str:
    """Return the bare bucket name (``s3://`` and any path removed)."""
    raw = str(settings.get("bucket") or PLACEHOLDER_BUCKET).strip().removeprefix("s3://")
    return raw.split("/", 1)[0]


def key_prefix(settings: Mapping[str, Any]) -> str:
    """Return the key prefix every object CloudTune writes lies under (no slashes around)."""
    return str(settings.get("prefix") or DEFAULT_PREFIX).strip("/")


def instance_type(settings: Mapping[str, Any]) -> str:
    """Return the training instance type (``ml.`` prefix added when missing)."""
    value = str(settings.get("instance_type") or DEFAULT_INSTANCE_TYPE).strip()
    return value if value.startswith("ml.") else f"ml.{value}"


def instance_count(settings: Mapping[str, Any]) -> int:
    """Return the number of instances per training job."""
    return _positive_int(settings, "instance_count", 1)


def _positive_int(settings: Mapping[str, Any], key: str, default: int) -> int:
    raw = settings.get(key)
    if raw is None or raw == "":
        return default
    try:
        number = float(raw)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(raw, bool) or number < 1 or not number.is_integer():
        raise BackendError(f"Setting {key} must be a whole number of at least 1, not {raw!r}.")
    return int(number)


def early_stopping(settings: Mapping[str, Any]) -> str:
    """Return SageMaker's TrainingJobEarlyStoppingType ("Off" or "Auto") from the settings."""
    raw = settings.get("early_stopping", "Off")
    if isinstance(raw, bool):
        return "Auto" if raw else "Off"
    text = str(raw).strip().lower()
    if text in ("auto", "on", "true", "yes", "1"):
        return "Auto"
    if text in ("off", "false", "no", "0", "", "none"):
        return "Off"
    raise BackendError(f"Setting early_stopping must be Off or Auto, not {raw!r}.")


def early_stopping_type(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """Return the TrainingJobEarlyStoppingType of a study: the spec's, unless a setting says.

    ``budget.early_stopping: median`` becomes Auto (Off under hyperband, which stops weak
    jobs itself and which SageMaker allows only with Off). An ``early_stopping`` setting, when
    given, overrides the spec: it is how a user turned Auto on before the spec had the field.
    """
    if settings.get("early_stopping") not in (None, ""):
        return early_stopping(settings)
    wanted = spec.budget.early_stopping == "median" and spec.strategy != "hyperband"
    return "Auto" if wanted else "Off"


def early_stopping_note(spec: StudySpec, settings: Mapping[str, Any]) -> str | None:
    """Say how SageMaker's rule differs from the local median rule (None: no early stopping)."""
    if spec.budget.early_stopping != "median":
        return None
    if spec.strategy == "hyperband":
        return (
            "SageMaker: Hyperband stops weak training jobs itself, so training-job early "
            "stopping stays Off (SageMaker allows nothing else with Hyperband)."
        )
    if early_stopping_type(spec, settings) == "Off":
        return "SageMaker: the early_stopping setting (Off) overrides the spec: no job stops early."
    return (
        "SageMaker (TrainingJobEarlyStoppingType Auto): a job stops when its objective is worse "
        "than the median of the running averages of earlier jobs' objective at the same epoch, "
        "not their best so far; SageMaker decides when enough jobs have finished."
    )


def settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """Return what is missing or wrong in SageMaker settings (no credentials), a sentence each."""
    problems: list[str] = []
    if not settings.get("region"):
        problems.append(
            "The AWS region is not set: choose one (e.g. us-east-1) in Settings → AWS SageMaker."
        )
    else:
        problems += _region_problems(settings)
    role = str(settings.get("role_arn") or "")
    if not role:
        problems.append(
            "The SageMaker execution role is not set: paste the ARN of an IAM role that "
            "SageMaker may assume (arn:aws:iam::<account>:role/<name>) in Settings → AWS SageMaker."
        )
    elif not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", role):
        problems.append(
            f"The role ARN {role!r} is not an IAM role ARN; it looks like "
            "arn:aws:iam::123456789012:role/SageMakerExecution."
        )
    if not settings.get("bucket"):
        problems.append(
            "The S3 bucket is not set: name a bucket in the same region that the role can "
            "read and write, in Settings → AWS SageMaker."
        )
    if not instance_type(settings).startswith("ml."):
        problems.append("The instance type must be a SageMaker type such as ml.m5.xlarge.")
    for key in ("instance_count", "volume_size_gb", "trial_max_minutes"):
        try:
            _positive_int(settings, key, 1)
        except BackendError as err:
            problems.append(str(err))
    try:
        early_stopping(settings)
    except BackendError as err:
        problems.append(str(err))
    secret = [k for k in settings if any(w in str(k).lower() for w in _SECRET_WORDS)]
    if secret:
        problems.append(
            f"Remove {', '.join(sorted(secret))} from the settings: CloudTune never stores "
            "secrets; give credentials through the AWS standard chain (environment, "
            "`aws configure`, `aws sso login` or an instance role)."
        )
    data_uri = settings.get("data_uri")
    if data_uri and not str(data_uri).startswith("s3://"):
        problems.append(f"Setting data_uri must be an s3:// URI, not {data_uri!r}.")
    return problems


def _region_problems(settings: Mapping[str, Any]) -> list[str]:
    name = str(settings["region"])
    regions = image_regions(DEFAULT_FRAMEWORK_VERSION)
    if regions is not None:
        known = name in regions
    else:  # the SDK's table could not be read: ask image_uris itself
        try:
            _image_uri(name, DEFAULT_FRAMEWORK_VERSION, instance_type(settings))
            known = True
        except ValueError as err:
            known = "region" not in str(err).lower()
    if known:
        return []
    return [f"The region {name!r} has no SageMaker TensorFlow images; use e.g. us-east-1."]


@functools.lru_cache(maxsize=8)
def image_regions(version: str) -> frozenset[str] | None:
    """The regions with SageMaker's TensorFlow ``version`` training images, or None.

    Read from the table ``sagemaker.core.image_uris`` itself reads
    (``image_uri_config/tensorflow.json`` in the SDK), without importing the SDK: the import
    takes 1.5-3 s, and the Settings page checks the region at every first visit. None when
    the table is not where SDK v3 keeps it; the caller then asks ``image_uris``.
    """
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("sagemaker.core")
    except ImportError:
        return None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        table = Path(folder) / "image_uri_config" / "tensorflow.json"
        try:
            training = json.loads(table.read_text(encoding="utf-8"))["training"]
            full = training.get("version_aliases", {}).get(version, version)
            return frozenset(training["versions"][full]["registries"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


@functools.lru_cache(maxsize=64)
def _image_uri(region_name: str, version: str, instance: str) -> str:
    """Return image_uris' TensorFlow training image (cached: each lookup reads botocore's
    endpoint data, which takes a while)."""
    from sagemaker.core import image_uris

    return str(
        image_uris.retrieve(
            "tensorflow",
            region=region_name,
            version=version,
            instance_type=instance,
            image_scope="training",
        )
    )


# ----------------------------------------------------------------------------- names and paths


def slug(text: str, limit: int = 40) -> str:
    """Return ``text`` as lowercase letters, digits and dashes, at most ``limit`` long."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:limit].strip("-") or "study"


def default_job_name(spec: StudySpec) -> str:
    """Return a stable tuning job name for a preview: the study's name and its spec's hash."""
    digest = hashlib.sha256(spec.to_json().encode("utf-8")).hexdigest()[:8]
    return f"ct-{slug(spec.name, 19)}-{digest}"


def unique_job_name(spec: StudySpec, run_id: int, now: float) -> str:
    """Return a new tuning job name (at most 32 characters) for run ``run_id`` at time ``now``."""
    suffix = f"-{run_id}-{_base36(int(now))}"
    room = 32 - len("ct-") - len(suffix)
    return f"ct-{slug(spec.name, max(room, 1))}{suffix}"[:32]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def dataset_slug(spec: StudySpec) -> str:
    """Return the readable part of the dataset's S3 folder (the content hash follows it)."""
    return slug(spec.dataset.name, 20)


def data_uri_for(settings: Mapping[str, Any], spec: StudySpec, fingerprint: str) -> str:
    """Return the S3 folder of a staged dataset with content hash ``fingerprint``."""
    return (
        f"s3://{bucket_name(settings)}/{key_prefix(settings)}/datasets/"
        f"{dataset_slug(spec)}-{fingerprint[:16]}/"
    )


def trainer_uri_for(settings: Mapping[str, Any], digest: str) -> str:
    """Return the S3 URI of the trainer bundle with content hash ``digest``."""
    return (
        f"s3://{bucket_name(settings)}/{key_prefix(settings)}/trainer/{digest[:16]}/"
        f"{SOURCE_TARBALL}"
    )


def output_uri(settings: Mapping[str, Any]) -> str:
    """Return where SageMaker writes each training job's model and output."""
    return f"s3://{bucket_name(settings)}/{key_prefix(settings)}/output"


def user_data_uri(spec: StudySpec, settings: Mapping[str, Any]) -> str | None:
    """Return an s3:// dataset location the user gave (settings data_uri or dataset.path)."""
    for candidate in (settings.get("data_uri"), spec.dataset.path):
        if candidate and str(candidate).startswith("s3://"):
            text = str(candidate)
            return text if text.endswith("/") else f"{text}/"
    return None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key)."""
    rest = uri.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    return bucket, key


# ----------------------------------------------------------------------------- the image


def training_image(settings: Mapping[str, Any]) -> str:
    """Return the training image: the custom one Settings names, else the catalog's DLC.

    ``settings['image']`` (or the older ``training_image``) names a custom image, such as
    CloudTune's own (core.backends.containers: the DLC with the trainer at /opt/ml/code).
    Otherwise the TensorFlow DLC tag the vendor's image list names (assets/containers.json:
    ``2.21-cpu-py312-amzn2023-sagemaker``), in the account and region the SDK's image_uris
    resolve; a ``framework_version`` other than the default is left to the SDK.

    Raises:
        BackendError: the region or framework version has no SageMaker image.
    """
    given = containers.custom_image(settings) or settings.get("training_image")
    if given:
        return str(given)
    version = str(settings.get("framework_version") or DEFAULT_FRAMEWORK_VERSION)
    try:
        sdk = _image_uri(region(settings), version, instance_type(settings))
    except ValueError as err:
        raise BackendError(
            f"SageMaker has no TensorFlow {version} training image for region "
            f"{region(settings)!r} and {instance_type(settings)}: {str(err).split('.')[0]}. "
            f"Use framework_version {DEFAULT_FRAMEWORK_VERSION} or another region."
        ) from err
    if version != DEFAULT_FRAMEWORK_VERSION:
        return sdk
    kind = "gpu" if "-gpu-" in sdk else "cpu"
    listed = containers.current_prebuilt("sagemaker", kind)
    if listed is None:
        return sdk
    registry = sdk.split("/", 1)[0]  # the SDK knows each region's DLC account
    return registry + "/" + listed.uri.split("/", 1)[1]


# ----------------------------------------------------------------------------- ranges


def grid_blockers(spec: StudySpec) -> list[str]:
    """Return the names of continuous floats, which SageMaker's grid search cannot take."""
    return [p.name for p in spec.space if isinstance(p, FloatParam) and p.step is None]


def _grid_error(names: list[str]) -> SpecError:
    return SpecError(
        [
            f"{name}: SageMaker's grid search takes categorical ranges only, and {name} is a "
            "continuous range; give it a step to discretise it (core.spec.discretise, or "
            "'Discretise' on the Launch page) or use random or bayesian search."
            for name in names
        ]
    )


def _categorical(name: str, values: list[Any]) -> Any:
    from sagemaker.core import shapes
    from sagemaker.core.parameter import CategoricalParameter

    if len(values) > MAX_CATEGORICAL_VALUES:
        raise SpecError(
            [
                f"{name}: SageMaker takes at most {MAX_CATEGORICAL_VALUES} values in a "
                f"categorical range and this one has {len(values)}; use a larger step or "
                "fewer values."
            ]
        )
    raw = CategoricalParameter(values).as_tuning_range(name)
    return shapes.CategoricalParameterRange(name=raw["Name"], values=raw["Values"])


def _scaling(scale: str) -> str:
    return "Logarithmic" if scale == "log" else "Linear"


def _numeric(param: FloatParam | IntParam) -> Any:
    from sagemaker.core import shapes
    from sagemaker.core.parameter import ContinuousParameter, IntegerParameter

    if isinstance(param, FloatParam):
        raw = ContinuousParameter(param.min, param.max, _scaling(param.scale))
        shape: Any = shapes.ContinuousParameterRange
    else:
        raw = IntegerParameter(param.min, param.max, _scaling(param.scale))
        shape = shapes.IntegerParameterRange
    d = raw.as_tuning_range(param.name)
    return shape(
        name=d["Name"],
        min_value=d["MinValue"],
        max_value=d["MaxValue"],
        scaling_type=d["ScalingType"],
    )


def range_kind(param: Param, strategy: str) -> str:
    """Return how a parameter is sent: "continuous", "integer", "categorical" or "static".

    Grid search and stepped ranges go as categorical lists (SageMaker's integer and
    continuous ranges have no step); choices are categorical; fixed values are static.
    """
    if isinstance(param, FixedParam):
        return "static"
    if isinstance(param, ChoiceParam):
        return "categorical"
    if isinstance(param, FloatParam):
        return "categorical" if param.step is not None else "continuous"
    if strategy == "grid" or param.step != 1:
        return "categorical"
    return "integer"


def parameter_ranges(spec: StudySpec) -> Any:
    """Return the spec's tuned parameters as a ``sagemaker.core.shapes.ParameterRanges``.

    Raises:
        SpecError: grid search with a continuous range, or a categorical range too long.
    """
    from sagemaker.core import shapes

    if spec.strategy == "grid" and grid_blockers(spec):
        raise _grid_error(grid_blockers(spec))
    continuous, integer, categorical = [], [], []
    for p in spec.tuned_params():
        kind = range_kind(p, spec.strategy)
        if kind == "categorical":
            categorical.append(_categorical(p.name, list(p.grid_values() or [])))
        elif kind == "continuous":
            continuous.append(_numeric(p))  # type: ignore[arg-type]
        else:
            integer.append(_numeric(p))  # type: ignore[arg-type]
    return shapes.ParameterRanges(
        integer_parameter_ranges=integer or None,
        continuous_parameter_ranges=continuous or None,
        categorical_parameter_ranges=categorical or None,
    )


# ----------------------------------------------------------------------------- the request


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


MAX_HYPERPARAMETER_CHARS = 2500
"""The longest value SageMaker accepts for one hyperparameter (CreateTrainingJob's
HyperParameters: value length at most 2,500)."""


def static_hyperparameters(
    spec: StudySpec, settings: Mapping[str, Any], trainer_uri: str
) -> dict[str, str]:
    """Return the hyperparameters every training job gets (the tuned ones are added per job).

    The TensorFlow container runs ``sagemaker_program`` from the tarball at
    ``sagemaker_submit_directory`` with ``--name value`` for every other entry. No dataset
    name is passed: the trainer then reads the train channel (SM_CHANNEL_TRAIN) with
    ``load_from_dir``, whose manifest fixes the subset, split and seed of a staged dataset;
    ``validation_split`` and ``subset`` apply to a user's own s3:// data, which has none.
    """
    out = {
        "epochs": str(spec.budget.epochs),
        "seed": str(spec.seed),
        "validation_split": _text(spec.dataset.validation_split),
    }
    if spec.dataset.subset is not None:
        out["subset"] = str(spec.dataset.subset)
    out.update(objective_arguments(spec))
    out.update({k: _text(v) for k, v in sorted(dict(spec.model).items())})
    out.update({p.name: _text(p.value) for p in spec.space if isinstance(p, FixedParam)})
    configurations = configurations_argument(spec)
    if configurations is not None:
        if len(configurations) > MAX_HYPERPARAMETER_CHARS:
            raise BackendError(
                f"The {len(spec.configurations)} configurations take {len(configurations):,} "
                f"characters, more than the {MAX_HYPERPARAMETER_CHARS:,} SageMaker allows in "
                "one hyperparameter; compare fewer configurations (about "
                f"{len(spec.configurations) * MAX_HYPERPARAMETER_CHARS // len(configurations)})."
            )
        out["configurations"] = configurations
    out.update(
        {
            "sagemaker_program": ENTRY_POINT,
            "sagemaker_submit_directory": trainer_uri,
            "sagemaker_region": region(settings),
            "sagemaker_container_log_level": "20",
        }
    )
    return out


def objective_metric(spec: StudySpec) -> str:
    """Return the tuning objective's metric name: the running best of the spec's metric.

    SageMaker keeps the last value its regex matched as a training job's final metric, so the
    objective reads the trainer's ``val_accuracy_best`` line: the last one is the best epoch,
    the objective every platform records.
    """
    return METRIC_LINES[spec.objective.metric] + BEST_SUFFIX


def spec_metric(objective_name: str) -> str:
    """Return the spec's metric of a tuning objective's name (the inverse of objective_metric)."""
    line = objective_name.removesuffix(BEST_SUFFIX)
    return next((m for m, printed in METRIC_LINES.items() if printed == line), line)


def metric_definitions(spec: StudySpec) -> list[dict[str, str]]:
    """Return the metric definitions: the objective first, the other metrics, the epoch count.

    Each regex reads one of the trainer's per-epoch lines; SageMaker keeps the last value as
    the final metric (``epoch`` shows how far Hyperband let a trial run). The objective reads
    the running best (:func:`objective_metric`); the other metrics keep the last epoch.
    """
    best = objective_metric(spec)
    return [{"Name": best, "Regex": rf"{best}: ([0-9\.]+)"}] + [
        {"Name": m, "Regex": rf"{METRIC_LINES[m]}: ([0-9\.]+)"} for m in (*METRICS, "epoch")
    ]


def _resource_limits(spec: StudySpec) -> Any:
    from sagemaker.core import shapes

    budget = spec.budget
    max_jobs = budget.max_trials
    if spec.strategy == "grid":
        combos = spec.cardinality() or 0
        if budget.max_trials < combos:
            raise BackendError(
                f"SageMaker's grid search runs every one of the {combos} combinations of the "
                f"space, more than budget.max_trials ({budget.max_trials}); raise max_trials "
                f"to {combos}, shrink the grid, or use random search."
            )
        max_jobs = combos
    limits = shapes.ResourceLimits(
        max_number_of_training_jobs=max_jobs,
        max_parallel_training_jobs=min(budget.parallel_trials, max_jobs),
    )
    if budget.max_minutes is not None:
        seconds = int(round(budget.max_minutes * 60))
        if seconds < MIN_TUNING_RUNTIME_S:
            raise BackendError(
                f"budget.max_minutes is {budget.max_minutes:g}, but a SageMaker tuning job "
                "needs at least 2 minutes; raise it to 2 or more."
            )
        limits.max_runtime_in_seconds = seconds
    return limits


def tuning_job_config(spec: StudySpec, settings: Mapping[str, Any]) -> Any:
    """Return the ``HyperParameterTuningJobConfig`` shape for ``spec``.

    Raises:
        SpecError: the space cannot be expressed (grid with continuous ranges, ...).
        BackendError: a setting or budget SageMaker refuses.
    """
    from sagemaker.core import shapes

    strategy = STRATEGIES[spec.strategy]
    stopping = early_stopping_type(spec, settings)
    if spec.seed < 0:
        raise BackendError(f"seed is {spec.seed}; SageMaker's random seed must be 0 or more.")
    ranges = parameter_ranges(spec)
    config = shapes.HyperParameterTuningJobConfig(
        strategy=strategy,
        hyper_parameter_tuning_job_objective=shapes.HyperParameterTuningJobObjective(
            type="Maximize" if spec.objective.goal == "max" else "Minimize",
            metric_name=objective_metric(spec),
        ),
        resource_limits=_resource_limits(spec),
        parameter_ranges=ranges,
        training_job_early_stopping_type=stopping,
        random_seed=spec.seed,
    )
    if strategy == "Hyperband":
        if stopping != "Off":
            raise BackendError(
                "Hyperband stops weak training jobs itself, so SageMaker requires training-job "
                "early stopping to be Off: set early_stopping to Off or use bayesian search."
            )
        low = min(_positive_int(settings, "hyperband_min_epochs", 1), spec.budget.epochs)
        config.strategy_config = shapes.HyperParameterTuningJobStrategyConfig(
            hyperband_strategy_config=shapes.HyperbandStrategyConfig(
                min_resource=low, max_resource=spec.budget.epochs
            )
        )
    return config


def training_job_definition(
    spec: StudySpec, settings: Mapping[str, Any], *, data_uri: str, trainer_uri: str
) -> Any:
    """Return the ``HyperParameterTrainingJobDefinition`` shape: image, data, machine, limits."""
    from sagemaker.core import shapes

    definition = shapes.HyperParameterTrainingJobDefinition(
        algorithm_specification=shapes.HyperParameterAlgorithmSpecification(
            training_image=training_image(settings),
            training_input_mode="File",
            metric_definitions=[
                shapes.MetricDefinition(name=m["Name"], regex=m["Regex"])
                for m in metric_definitions(spec)
            ],
        ),
        role_arn=str(settings.get("role_arn") or PLACEHOLDER_ROLE),
        input_data_config=[
            shapes.Channel(
                channel_name=CHANNEL,
                data_source=shapes.DataSource(
                    s3_data_source=shapes.S3DataSource(
                        s3_data_type="S3Prefix",
                        s3_uri=data_uri,
                        s3_data_distribution_type="FullyReplicated",
                    )
                ),
            )
        ],
        output_data_config=shapes.OutputDataConfig(
            s3_output_path=output_uri(settings), compression_type="GZIP"
        ),
        resource_config=shapes.ResourceConfig(
            instance_type=instance_type(settings),
            instance_count=instance_count(settings),
            volume_size_in_gb=_positive_int(settings, "volume_size_gb", DEFAULT_VOLUME_GB),
        ),
        stopping_condition=shapes.StoppingCondition(
            max_runtime_in_seconds=60
            * _positive_int(settings, "trial_max_minutes", DEFAULT_TRIAL_MINUTES)
        ),
        static_hyper_parameters=static_hyperparameters(spec, settings, trainer_uri),
    )
    if settings.get("mlflow_tracking_uri"):
        definition.environment = {"MLFLOW_TRACKING_URI": str(settings["mlflow_tracking_uri"])}
    return definition


def placeholder_data_uri(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """Return the data URI a pure preview shows (the user's s3:// URI, or the hash to come)."""
    return user_data_uri(spec, settings) or data_uri_for(settings, spec, CONTENT_HASH)


def build_request(
    spec: StudySpec,
    settings: Mapping[str, Any],
    *,
    job_name: str | None = None,
    data_uri: str | None = None,
    trainer_uri: str | None = None,
) -> dict[str, Any]:
    """Return the exact CreateHyperParameterTuningJob request for ``spec`` (pure).

    Args:
        spec: a validated study spec.
        settings: region, role_arn, bucket, instance_type, ... (missing ones get placeholders).
        job_name: the tuning job's name (default: stable, from the spec).
        data_uri: the training data's S3 folder (default: the user's, or the content-hash path).
        trainer_uri: the trainer bundle's S3 URI (default: the content-hash path).

    Returns:
        The request as the service receives it (PascalCase keys, strings for values).

    Raises:
        SpecError: the space cannot be expressed on SageMaker.
        BackendError: a setting or budget SageMaker refuses.
    """
    from sagemaker.core.utils.utils import serialize

    config = tuning_job_config(spec, settings)
    definition = training_job_definition(
        spec,
        settings,
        data_uri=data_uri or placeholder_data_uri(spec, settings),
        trainer_uri=trainer_uri or trainer_uri_for(settings, CONTENT_HASH),
    )
    request: dict[str, Any] = serialize(
        {
            "HyperParameterTuningJobName": job_name or default_job_name(spec),
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": definition,
        }
    )
    # The SDK's shape serialiser drops falsy values; a seed of 0 is still a seed.
    request["HyperParameterTuningJobConfig"]["RandomSeed"] = spec.seed
    return request


def to_json(request: Mapping[str, Any]) -> str:
    """Return a request as indented JSON (the preview and the exported file)."""
    return json.dumps(request, indent=2) + "\n"


# ----------------------------------------------------------------------------- reading back


def run_status(status: str) -> tuple[RunStatus, str | None]:
    """Map a HyperParameterTuningJobStatus to (run status, detail)."""
    return TUNING_STATUS.get(status, ("running", f"SageMaker status {status}"))


def trial_status(status: str) -> TrialStatus:
    """Map a TrainingJobStatus to a trial status."""
    return TRAINING_STATUS.get(status, "running")


def _unquote(raw: Any) -> Any:
    if isinstance(raw, str) and len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def restore_value(name: str, raw: Any, spec: StudySpec | None) -> Any:
    """Return a hyperparameter's value (SageMaker sends strings) with its type restored."""
    raw = _unquote(raw)
    if not isinstance(raw, str):
        return raw
    return typed_value(name, raw, spec.param(name) if spec is not None else None)


def restore_params(tuned: Mapping[str, Any], spec: StudySpec | None) -> dict[str, Any]:
    """Return a trial's parameters: the tuned ones typed back, plus the spec's fixed ones."""
    out = {name: restore_value(name, raw, spec) for name, raw in tuned.items()}
    if spec is not None:
        for p in spec.space:
            if isinstance(p, FixedParam):
                out.setdefault(p.name, p.value)
    return out


def epoch_seconds(value: Any) -> float | None:
    """Return a time from a SageMaker answer (a datetime, or seconds) as epoch seconds."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


LOG_GROUP = "/aws/sagemaker/TrainingJobs"
"""Where SageMaker sends each training job's output (streams ``<job>/algo-<n>-<time>``)."""
_EPOCH_LINE = re.compile(
    r"^(epoch|epoch_seconds|train_loss|train_accuracy|val_loss|val_accuracy): "
    r"([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?|nan|inf)\s*$"
)


def log_stream_prefix(training_job_name: str) -> str:
    """Return the prefix of the first instance's log streams of a training job."""
    return f"{training_job_name}/algo-1-"


def parse_epochs(messages: Iterable[str]) -> list[EpochRecord]:
    """Return the epochs the trainer printed (``epoch: N``, ``val_accuracy: 0.91``, ...).

    Metrics get the names the store and the local backend use (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``); every other log line is ignored.
    """
    names = {line: metric for metric, line in METRIC_LINES.items()}
    out: list[tuple[int, dict[str, float], float | None]] = []
    for message in messages:
        for line in str(message).splitlines():
            match = _EPOCH_LINE.match(line.strip())
            if not match:
                continue
            key, value = match.group(1), float(match.group(2))
            if key == "epoch":
                out.append((int(value), {}, None))
            elif out and key == "epoch_seconds":
                out[-1] = (out[-1][0], out[-1][1], value)
            elif out and math.isfinite(value):
                out[-1][1][names[key]] = value
    return [EpochRecord(n, metrics, wall) for n, metrics, wall in out if metrics]


def trial_number(training_job_name: str) -> int | None:
    """Return a trial's 0-based number from SageMaker's name ``<tuning job>-007-1a2b3c4d``."""
    match = re.search(r"-(\d{3})-[0-9a-zA-Z]{8}$", training_job_name)
    return int(match.group(1)) - 1 if match else None


def parse_training_job(
    summary: Mapping[str, Any],
    description: Mapping[str, Any] | None,
    spec: StudySpec | None,
    objective_metric: str | None,
) -> TrialRecord:
    """Turn a tuning job's training-job summary (and its description, if read) into a record.

    Args:
        summary: one HyperParameterTrainingJobSummary (ListTrainingJobsForHyperParameterTuningJob).
        description: the DescribeTrainingJob answer for it, or None.
        spec: the run's spec, to restore parameter types (None: types from the known names).
        objective_metric: the objective's metric name.
    """
    name = str(summary["TrainingJobName"])
    desc = description or {}
    status = str(desc.get("TrainingJobStatus") or summary.get("TrainingJobStatus") or "")
    metrics = {
        str(m["MetricName"]): float(m["Value"])
        for m in desc.get("FinalMetricDataList") or []
        if m.get("Value") is not None and math.isfinite(float(m["Value"]))
    }
    final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    objective = final.get("Value")
    if objective is None and objective_metric:
        objective = metrics.get(objective_metric)
    if objective is not None and final.get("MetricName"):
        metrics.setdefault(str(final["MetricName"]), float(objective))
    started = epoch_seconds(desc.get("TrainingStartTime") or summary.get("TrainingStartTime"))
    ended = epoch_seconds(desc.get("TrainingEndTime") or summary.get("TrainingEndTime"))
    duration = desc.get("TrainingTimeInSeconds")
    if started is not None and ended is not None:  # end - start, as on every platform
        duration = max(ended - started, 0.0)
    resources = desc.get("ResourceConfig") or {}
    return TrialRecord(
        key=name,
        number=trial_number(name),
        params=restore_params(summary.get("TunedHyperParameters") or {}, spec),
        status=trial_status(status),
        objective=None if objective is None else float(objective),
        metrics=metrics,
        started_at=started,
        ended_at=ended,
        duration_s=None if duration is None else float(duration),
        billable_s=_float_or_none(desc.get("BillableTimeInSeconds")),
        instance_type=resources.get("InstanceType"),
        instance_count=int(resources.get("InstanceCount") or 1),
        error=desc.get("FailureReason") or summary.get("FailureReason") or None,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def spec_from_job(description: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return a spec (as a dict for ``parse_spec``) that describes an existing tuning job.

    Used when a job launched elsewhere is imported by name: the ranges, strategy, objective
    and budget come from the job; the static hyperparameters give epochs, dataset and the
    fixed values.
    """
    config = description.get("HyperParameterTuningJobConfig") or {}
    definition = description.get("TrainingJobDefinition") or {}
    static = definition.get("StaticHyperParameters") or {}
    limits = config.get("ResourceLimits") or {}
    ranges = config.get("ParameterRanges") or {}
    space: list[dict[str, Any]] = []
    for r in ranges.get("ContinuousParameterRanges") or []:
        space.append(_numeric_item(r, "float"))
    for r in ranges.get("IntegerParameterRanges") or []:
        space.append(_numeric_item(r, "int"))
    for r in ranges.get("CategoricalParameterRanges") or []:
        values = [restore_value(r["Name"], v, None) for v in r.get("Values") or []]
        space.append({"name": r["Name"], "type": "choice", "values": values})
    tuned = {item["name"] for item in space}
    for key, raw in static.items():
        if key in KNOWN_PARAMS and key not in tuned:
            space.append({"name": key, "type": "fixed", "value": restore_value(key, raw, None)})
    objective = config.get("HyperParameterTuningJobObjective") or {}
    strategy = {v: k for k, v in STRATEGIES.items()}.get(str(config.get("Strategy")), "bayesian")
    budget: dict[str, Any] = {
        "max_trials": int(limits.get("MaxNumberOfTrainingJobs") or 1),
        "parallel_trials": int(limits.get("MaxParallelTrainingJobs") or 1),
        "epochs": int(typed_value("epochs", str(static.get("epochs", "1")), kind="int")),
    }
    if limits.get("MaxRuntimeInSeconds"):
        budget["max_minutes"] = int(limits["MaxRuntimeInSeconds"]) / 60
    if config.get("TrainingJobEarlyStoppingType") == "Auto":
        budget["early_stopping"] = "median"
    channels = definition.get("InputDataConfig") or [{}]
    source = (channels[0].get("DataSource") or {}).get("S3DataSource") or {}
    data = dataset_from_uri(str(source.get("S3Uri") or "s3://unknown/"))
    if static.get("validation_split"):
        data["validation_split"] = float(static["validation_split"])
    if static.get("subset"):
        data["subset"] = int(float(static["subset"]))
    out: dict[str, Any] = {
        "name": name,
        "dataset": data,
        "space": space,
        "strategy": strategy,
        "objective": {
            "metric": spec_metric(str(objective.get("MetricName", "val_accuracy"))),
            "goal": "min" if objective.get("Type") == "Minimize" else "max",
        },
        "budget": budget,
    }
    if config.get("RandomSeed") is not None:
        out["seed"] = int(config["RandomSeed"])
    return out


def dataset_from_uri(uri: str) -> dict[str, Any]:
    """Return the spec's dataset for a data URI: ours name the dataset, others are custom."""
    match = re.search(r"/datasets/([a-z0-9-]+)-[0-9a-f]{16}/?$", uri)
    name = match.group(1).replace("-", "_") if match else ""
    if name in DATASET_NAMES and name != "custom":
        return {"name": name}
    return {"name": "custom", "path": uri}


def _numeric_item(r: Mapping[str, Any], kind: str) -> dict[str, Any]:
    cast = float if kind == "float" else int
    return {
        "name": r["Name"],
        "type": kind,
        "min": cast(float(r["MinValue"])),
        "max": cast(float(r["MaxValue"])),
        "scale": "log" if r.get("ScalingType") == "Logarithmic" else "linear",
    }
