"""Pure Vertex AI translation: study spec -> HyperparameterTuningJob, and job JSON -> trial rows.

Nothing here opens a file or a socket: :func:`build_job` assembles the SDK's own
``aiplatform.CustomJob`` and ``aiplatform.HyperparameterTuningJob`` (with anonymous credentials,
so no credential lookup happens), :func:`build_request` returns the exact JSON body Vertex AI
receives, and :func:`parse_job` turns a job's JSON (as the service returns it) into trial
records with the spec's types restored.

Example:
    >>> request = build_request(spec, {"bucket": "my-bucket", "region": "us-central1"})
    >>> request["studySpec"]["metrics"]
    [{'metricId': 'val_accuracy', 'goal': 'MAXIMIZE'}]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.cloud import JobReport
from core.backends.platforms import PLATFORMS
from core.backends.records import EpochRecord, RunStatus, TrialRecord, TrialStatus
from core.errors import BackendError, SpecError
from core.spec import (
    KNOWN_PARAMS,
    MODEL_OPTIONS,
    ChoiceParam,
    FixedParam,
    FloatParam,
    IntParam,
    Param,
    StudySpec,
    parse_spec,
    typed_value,
)
from core.spec.design import configurations_argument
from core.training.train import objective_arguments

if TYPE_CHECKING:
    from google.cloud.aiplatform import HyperparameterTuningJob

log = logging.getLogger(__name__)

DEFAULT_REGION = PLATFORMS["vertex"].default_region
DEFAULT_MACHINE_TYPE = PLATFORMS["vertex"].default_instance
PACKAGE_NAME = "cloudtune_trainer"
PACKAGE_VERSION = "0.1.0"
PYTHON_MODULE = "train"
"""The trainer bundle's entry script (train.py at the bundle's top) run as ``python -m train``."""
PLACEHOLDER_BUCKET = "YOUR_BUCKET"
DEFAULT_OBJECTIVE = "val_accuracy"
"""The metric the trainer reports to Vertex AI unless told otherwise."""

JOB_STATES: dict[int, str] = {
    0: "JOB_STATE_UNSPECIFIED",
    1: "JOB_STATE_QUEUED",
    2: "JOB_STATE_PENDING",
    3: "JOB_STATE_RUNNING",
    4: "JOB_STATE_SUCCEEDED",
    5: "JOB_STATE_FAILED",
    6: "JOB_STATE_CANCELLING",
    7: "JOB_STATE_CANCELLED",
    8: "JOB_STATE_PAUSED",
    9: "JOB_STATE_EXPIRED",
    10: "JOB_STATE_UPDATING",
    11: "JOB_STATE_PARTIALLY_SUCCEEDED",
}
"""Vertex AI's JobState enum: the REST transport may send either the number or the name."""

_JOB_STATUS: dict[str, tuple[RunStatus, str | None]] = {
    "JOB_STATE_UNSPECIFIED": ("queued", "Vertex AI has not reported a state yet"),
    "JOB_STATE_QUEUED": ("queued", "queued on Vertex AI"),
    "JOB_STATE_PENDING": ("queued", "pending: Vertex AI is provisioning machines"),
    "JOB_STATE_RUNNING": ("running", None),
    "JOB_STATE_SUCCEEDED": ("completed", None),
    "JOB_STATE_PARTIALLY_SUCCEEDED": ("completed", "some trials failed"),
    "JOB_STATE_FAILED": ("failed", None),
    "JOB_STATE_CANCELLING": ("running", "cancelling"),
    "JOB_STATE_CANCELLED": ("cancelled", None),
    "JOB_STATE_PAUSED": ("running", "paused on Vertex AI"),
    "JOB_STATE_EXPIRED": ("failed", "expired: Vertex AI gave up waiting for machines"),
    "JOB_STATE_UPDATING": ("running", "updating"),
}

TRIAL_STATES: dict[int, str] = {
    0: "STATE_UNSPECIFIED",
    1: "REQUESTED",
    2: "ACTIVE",
    3: "STOPPING",
    4: "SUCCEEDED",
    5: "INFEASIBLE",
}
_TRIAL_STATUS: dict[str, TrialStatus] = {
    "STATE_UNSPECIFIED": "running",
    "REQUESTED": "running",
    "ACTIVE": "running",
    "STOPPING": "running",
    "SUCCEEDED": "completed",
    "INFEASIBLE": "failed",
}

_GOALS = {"max": "maximize", "min": "minimize"}


# ----------------------------------------------------------------------------- names and paths


def slug(text: str, limit: int = 40) -> str:
    """Return ``text`` as lowercase letters, digits and dashes (a valid label and path part).

    Args:
        text: any text, e.g. a study name.
        limit: the longest result.

    Returns:
        The slug ("study" when nothing is left).
    """
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (out[:limit].rstrip("-")) or "study"


def job_name(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """Return the job's display name: ``settings['job_name']`` or one made from the study name.

    Args:
        spec: the study.
        settings: the Vertex AI settings (launch sets job_name to a unique name).

    Returns:
        The display name, also the folder of the job's files in the bucket.
    """
    return str(settings.get("job_name") or f"cloudtune-{slug(spec.name)}")


def bucket_name(settings: Mapping[str, Any]) -> str:
    """Return the staging bucket's bare name (``gs://`` and any path removed).

    Args:
        settings: the Vertex AI settings; without a bucket, a placeholder is returned.

    Returns:
        The bucket's name.
    """
    raw = str(settings.get("bucket") or PLACEHOLDER_BUCKET).strip()
    raw = raw.removeprefix("gs://")
    return raw.split("/", 1)[0]


def dataset_key(spec: StudySpec) -> str:
    """Return the folder name the staged dataset gets in the bucket (shared by runs).

    Args:
        spec: the study; its dataset, subset, split and seed decide what is staged.

    Returns:
        A name such as ``digits-n300-v20-s7``.
    """
    ds = spec.dataset
    parts = [slug(ds.name, 20)]
    if ds.path and ds.name == "custom":
        parts.append(slug(ds.path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1], 20))
    if ds.subset:
        parts.append(f"n{ds.subset}")
    parts.append(f"v{round(ds.validation_split * 100)}")
    parts.append(f"s{spec.seed}")
    return "-".join(parts)


@dataclass(frozen=True)
class GcsPaths:
    """Where a job's files live in the staging bucket.

    Attributes:
        bucket: the bucket's name.
        package_blob: object name of the trainer package.
        data_prefix: object-name prefix of the staged dataset (no trailing slash).
        output_prefix: object-name prefix of the job's outputs (models, logs).
    """

    bucket: str
    package_blob: str
    data_prefix: str
    output_prefix: str

    @property
    def package_uri(self) -> str:
        """The trainer package's gs:// URI."""
        return f"gs://{self.bucket}/{self.package_blob}"

    @property
    def data_uri(self) -> str:
        """The staged dataset's gs:// folder."""
        return f"gs://{self.bucket}/{self.data_prefix}"

    @property
    def output_uri(self) -> str:
        """The job's base output directory."""
        return f"gs://{self.bucket}/{self.output_prefix}"


def gcs_paths(spec: StudySpec, settings: Mapping[str, Any]) -> GcsPaths:
    """Return the bucket locations of a job's package, data and outputs.

    Args:
        spec: the study.
        settings: the Vertex AI settings (bucket, job_name).

    Returns:
        The paths.
    """
    name = job_name(spec, settings)
    return GcsPaths(
        bucket=bucket_name(settings),
        package_blob=f"cloudtune/jobs/{name}/{PACKAGE_NAME}-{PACKAGE_VERSION}.tar.gz",
        data_prefix=f"cloudtune/data/{dataset_key(spec)}",
        output_prefix=f"cloudtune/jobs/{name}/output",
    )


def _registry(settings: Mapping[str, Any]) -> str:
    region = str(settings.get("region") or DEFAULT_REGION)
    return {"europe": "europe", "asia": "asia", "australia": "asia", "me": "europe"}.get(
        region.split("-", 1)[0], "us"
    )


def container_uri(settings: Mapping[str, Any]) -> str:
    """Return the training image: the one Settings names, else a current prebuilt one.

    ``settings['image']`` (or the older ``container_uri``) names it. Without one, the newest
    prebuilt TensorFlow image of the catalog (assets/containers.json) that is not past its
    end of availability is used, from the registry nearest the region (GPU variant with an
    accelerator); when none is current, CloudTune's own custom container at its default
    Artifact Registry path (core.backends.containers.build_command builds it).

    Args:
        settings: region, project, accelerator_type, accelerator_count, image.

    Returns:
        The image URI.
    """
    given = containers.custom_image(settings) or settings.get("container_uri")
    if given:
        return str(given)
    kind = "gpu" if accelerator(settings)[1] > 0 else "cpu"
    image = containers.current_prebuilt("vertex", kind)
    if image is None:
        return containers.image_uri_default("vertex", settings)
    return image.uri.replace("{registry}", _registry(settings))


def uses_prebuilt(settings: Mapping[str, Any]) -> bool:
    """Tell whether the trial runs in a prebuilt image (the trainer package is then installed)."""
    return containers.find("vertex", container_uri(settings)) is not None


def accelerator(settings: Mapping[str, Any]) -> tuple[str | None, int]:
    """Return (accelerator type, count) from the settings; (None, 0) without one.

    Args:
        settings: accelerator_type (e.g. NVIDIA_TESLA_T4) and accelerator_count (default 1).

    Returns:
        The type and count.

    Raises:
        BackendError: the count is not a whole number.
    """
    kind = settings.get("accelerator_type") or None
    try:
        count = int(settings.get("accelerator_count") or (1 if kind else 0))
    except (TypeError, ValueError) as err:
        raise BackendError(
            f"accelerator_count {settings.get('accelerator_count')!r} is not a whole number; "
            "use 1, 2, 4 or 8 in Settings → Vertex AI → Accelerator count."
        ) from err
    if kind is None:
        return None, 0
    return str(kind), count


def machine_type(settings: Mapping[str, Any]) -> str:
    """Return the worker's machine type (``instance_type``, or ``machine_type``).

    Args:
        settings: the Vertex AI settings.

    Returns:
        The machine type, n1-standard-4 by default.
    """
    return str(
        settings.get("instance_type") or settings.get("machine_type") or DEFAULT_MACHINE_TYPE
    )


# ----------------------------------------------------------------------------- the search space


def search_algorithm(spec: StudySpec) -> str | None:
    """Return the SDK's search_algorithm for the spec's strategy (None: the service default).

    Args:
        spec: the study (bayesian, random or grid).

    Returns:
        None for bayesian (Vertex AI's default Bayesian optimisation), "random" or "grid".

    Raises:
        BackendError: hyperband, which Vertex AI does not offer.
    """
    if spec.strategy == "hyperband":
        raise BackendError(
            "Vertex AI has no Hyperband search. The nearest choice is Vertex AI's automated "
            "early stopping: set strategy to bayesian (or random) and turn on early_stopping "
            "= median in the Vertex AI settings, which stops a trial whose objective falls "
            "below the median of the completed trials; or run hyperband locally with "
            "KerasTuner."
        )
    return {"bayesian": None, "random": "random", "grid": "grid"}[spec.strategy]


def early_stopping_note(spec: StudySpec, settings: Mapping[str, Any]) -> str | None:
    """Say how Vertex AI's rule differs from the local median rule (None: no early stopping)."""
    if spec.budget.early_stopping != "median":
        return None
    if not _early_stopping(spec, settings):
        return (
            "Vertex AI: the early_stopping setting (off) overrides the spec: no trial stops early."
        )
    return (
        "Vertex AI (median automated stopping, by step): a trial stops when its best objective "
        "so far is worse than the median of the completed trials' running averages (not their "
        "best so far) up to the same epoch; Vertex AI decides when enough trials have completed."
    )


def with_median_stopping(
    spec: StudySpec, settings: Mapping[str, Any]
) -> tuple[StudySpec, dict[str, Any]]:
    """Return the nearest Vertex AI study to a hyperband one: bayesian with median stopping.

    Args:
        spec: any spec (its strategy is replaced when it is hyperband).
        settings: the Vertex AI settings.

    Returns:
        The spec (bayesian where it was hyperband) and the settings with early_stopping=median.
    """
    data = spec.to_dict()
    if data["strategy"] == "hyperband":
        data["strategy"] = "bayesian"
    return parse_spec(data), {**settings, "early_stopping": "median"}


def _kind(param: Param) -> str:
    info = KNOWN_PARAMS.get(param.name)
    return info.kind if info else "float"


def parameter_specs(spec: StudySpec) -> dict[str, Any]:
    """Return the SDK parameter specs (``hyperparameter_tuning.*ParameterSpec``) of the space.

    Floats become DoubleParameterSpec (DiscreteParameterSpec when they have a step), ints
    IntegerParameterSpec (DiscreteParameterSpec with a step above 1), numeric choices
    DiscreteParameterSpec and string choices CategoricalParameterSpec. Fixed parameters are
    passed to the trainer as plain arguments instead.

    Raises:
        SpecError: grid search over a continuous float (Vertex AI's grid needs finite values).
    """
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    out: dict[str, Any] = {}
    for p in spec.tuned_params():
        if isinstance(p, FloatParam):
            grid = p.grid_values()
            if grid is None:
                if spec.strategy == "grid":
                    raise SpecError(
                        [
                            f"{p.name}: Vertex AI's grid search takes only integer, discrete "
                            "and categorical parameters, and this float range is continuous; "
                            "give it a step (core.spec.discretise does it for every float) or "
                            "use random or bayesian search."
                        ]
                    )
                out[p.name] = hpt.DoubleParameterSpec(min=p.min, max=p.max, scale=p.scale)
            else:
                out[p.name] = hpt.DiscreteParameterSpec(values=sorted(grid), scale=p.scale)
        elif isinstance(p, IntParam):
            if p.step == 1:
                out[p.name] = hpt.IntegerParameterSpec(min=p.min, max=p.max, scale=p.scale)
            else:
                values = [float(v) for v in p.grid_values()]
                out[p.name] = hpt.DiscreteParameterSpec(values=values, scale=p.scale)
        elif isinstance(p, ChoiceParam):
            if _kind(p) == "str":
                out[p.name] = hpt.CategoricalParameterSpec(values=[str(v) for v in p.values])
            else:
                values = sorted(float(v) for v in p.values)
                out[p.name] = hpt.DiscreteParameterSpec(values=values, scale="linear")
    return out


def _arg_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def trainer_args(spec: StudySpec, data_uri: str) -> list[str]:
    """Return the trainer's static arguments; Vertex AI appends ``--<param>=<value>`` per trial.

    The data folder carries a manifest (name, subset, split, seed), so the trainer reads
    exactly the staged data; only model options that differ from the defaults are passed,
    and the objective only when it is not the trainer's default (val_accuracy).

    Args:
        spec: the study.
        data_uri: the staged dataset's gs:// folder.

    Returns:
        The arguments, each ``--name=value``.
    """
    args = [f"--data-dir={data_uri}", f"--epochs={spec.budget.epochs}", f"--seed={spec.seed}"]
    args += [f"--{k}={v}" for k, v in objective_arguments(spec).items()]
    options = {k: v for k, v in dict(spec.model).items() if MODEL_OPTIONS.get(k) != v}
    args += [f"--{k}={_arg_value(v)}" for k, v in sorted(options.items())]
    args += [f"--{p.name}={_arg_value(p.value)}" for p in spec.space if isinstance(p, FixedParam)]
    configurations = configurations_argument(spec)
    if configurations is not None:
        args.append(f"--configurations={configurations}")
    return args


def worker_pool_specs(spec: StudySpec, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the trial's single worker pool: machine, accelerator, image and trainer package.

    Args:
        spec: the study.
        settings: the Vertex AI settings.

    Returns:
        The worker pool specs in the SDK's dict form.
    """
    paths = gcs_paths(spec, settings)
    machine: dict[str, Any] = {"machine_type": machine_type(settings)}
    kind, count = accelerator(settings)
    if kind:
        machine["accelerator_type"] = kind
        machine["accelerator_count"] = count
    pool: dict[str, Any] = {
        "machine_spec": machine,
        "replica_count": 1,
        "disk_spec": {
            "boot_disk_type": "pd-ssd",
            "boot_disk_size_gb": int(settings.get("boot_disk_gb") or 100),
        },
    }
    args = trainer_args(spec, paths.data_uri)
    if uses_prebuilt(settings):
        pool["python_package_spec"] = {
            "executor_image_uri": container_uri(settings),
            "package_uris": [paths.package_uri],
            "python_module": PYTHON_MODULE,
            "args": args,
        }
    else:  # CloudTune's image: its entry point is the trainer; Vertex AI appends --name=value
        pool["container_spec"] = {"image_uri": container_uri(settings), "args": args}
    return [pool]


def _early_stopping(spec: StudySpec, settings: Mapping[str, Any]) -> bool:
    """Median automated stopping: the spec's ``budget.early_stopping``, unless a setting says."""
    value = settings.get("early_stopping")
    if value in (None, ""):
        return spec.budget.early_stopping == "median"
    if value in (False, "none", "off", "false"):
        return False
    if value in (True, "median", "true", "on"):
        return True
    raise BackendError(
        f"early_stopping {value!r} is unknown; Vertex AI offers median stopping: set it to "
        "median, or leave it empty."
    )


def build_job(
    spec: StudySpec,
    settings: Mapping[str, Any],
    *,
    credentials: Any = None,
    anonymous: bool = True,
) -> HyperparameterTuningJob:
    """Build (without submitting) the SDK's HyperparameterTuningJob for ``spec``.

    Args:
        spec: a validated study spec.
        settings: project, region, bucket, instance_type, accelerator_type, accelerator_count,
            container_uri, early_stopping, max_failed_trials, service_account, job_name.
        credentials: credentials for the job's client.
        anonymous: with no ``credentials``, use anonymous ones so that building never looks
            credentials up (False: Application Default Credentials, for submitting).

    Raises:
        BackendError: a strategy or setting Vertex AI cannot take (hyperband, bad counts).
        SpecError: grid search over a continuous float.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    algorithm = search_algorithm(spec)
    params = parameter_specs(spec)
    creds = credentials
    if creds is None and anonymous:
        creds = AnonymousCredentials()
    project = str(settings.get("project") or "YOUR_PROJECT")
    region = str(settings.get("region") or DEFAULT_REGION)
    paths = gcs_paths(spec, settings)
    labels = {"app": "cloudtune", "study": slug(spec.name, 60)}
    custom = aiplatform.CustomJob(
        display_name=f"{job_name(spec, settings)}-trial",
        worker_pool_specs=worker_pool_specs(spec, settings),
        base_output_dir=paths.output_uri,
        project=project,
        location=region,
        credentials=creds,
        labels=labels,
        staging_bucket=f"gs://{paths.bucket}",
    )
    if settings.get("service_account"):
        custom.job_spec.service_account = str(settings["service_account"])
    job = aiplatform.HyperparameterTuningJob(
        display_name=job_name(spec, settings),
        custom_job=custom,
        metric_spec={spec.objective.metric: _GOALS[spec.objective.goal]},
        parameter_spec=params,
        max_trial_count=spec.budget.max_trials,
        parallel_trial_count=spec.budget.parallel_trials,
        max_failed_trial_count=_max_failed(settings),
        search_algorithm=algorithm,
        measurement_selection="best",
        project=project,
        location=region,
        credentials=creds,
        labels=labels,
    )
    if _early_stopping(spec, settings):
        study = job_resource(job).study_spec
        study.median_automated_stopping_spec = type(study).MedianAutomatedStoppingSpec(
            use_elapsed_duration=False
        )
    return job


def _max_failed(settings: Mapping[str, Any]) -> int:
    value = settings.get("max_failed_trials", 0)
    try:
        out = int(value or 0)
    except (TypeError, ValueError):
        out = -1
    if out < 0:
        raise BackendError(
            f"max_failed_trials {value!r} must be a whole number of trials (0 lets Vertex AI "
            "decide when failures end the job)."
        )
    return out


def message_to_dict(message: Any, *, integer_enums: bool = False) -> dict[str, Any]:
    """Return a proto-plus message's JSON form (camelCase keys, as the REST API writes it).

    Args:
        message: a proto-plus message, e.g. a HyperparameterTuningJob.
        integer_enums: write enums as numbers, as the REST transport sends them.

    Returns:
        JSON-ready data.
    """
    from google.protobuf import json_format

    pb = type(message).pb(message)
    out: dict[str, Any] = json_format.MessageToDict(pb, use_integers_for_enums=integer_enums)
    return out


def build_request(spec: StudySpec, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the exact HyperparameterTuningJob body Vertex AI receives, as JSON-ready data.

    Enums are written by name (the REST transport sends the same values as numbers).

    Raises:
        BackendError: a strategy or setting Vertex AI cannot take.
        SpecError: grid search over a continuous float.
    """
    return message_to_dict(job_resource(build_job(spec, settings)))


def job_resource(job: HyperparameterTuningJob) -> Any:
    """Return the job's request message (the SDK keeps it private until the job is created).

    Args:
        job: a job from :func:`build_job`.

    Returns:
        The ``aiplatform_v1.HyperparameterTuningJob`` message.
    """
    return job._gca_resource


def parent_path(settings: Mapping[str, Any]) -> str:
    """Return ``projects/P/locations/R``, where the job is created.

    Args:
        settings: project and region.

    Returns:
        The parent resource name.
    """
    return (
        f"projects/{settings.get('project') or 'YOUR_PROJECT'}/locations/"
        f"{settings.get('region') or DEFAULT_REGION}"
    )


# ----------------------------------------------------------------------------- reading jobs back


def _enum_name(value: Any, names: Mapping[int, str]) -> str:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return names.get(int(value), str(value))
    return str(value or names[0])


def job_status(state: Any) -> tuple[RunStatus, str | None]:
    """Map a Vertex AI job state (number or name) to a store run status and a detail.

    Args:
        state: e.g. 3 or "JOB_STATE_RUNNING".

    Returns:
        (status, detail): one of core.store.RUN_STATUSES and a sentence or None.
    """
    name = _enum_name(state, JOB_STATES)
    return _JOB_STATUS.get(name, ("running", f"Vertex AI state {name}"))


def trial_status(state: Any) -> TrialStatus:
    """Map a Vertex AI trial state (number or name) to a store trial status.

    Args:
        state: e.g. 4 or "SUCCEEDED".

    Returns:
        running, completed or failed.
    """
    return _TRIAL_STATUS.get(_enum_name(state, TRIAL_STATES), "running")


def parse_time(text: str | None) -> float | None:
    """Return epoch seconds of an RFC 3339 timestamp (nanoseconds allowed), or None.

    Args:
        text: e.g. "2025-03-01T09:00:00.123456789Z".

    Returns:
        Seconds since the epoch, or None when missing or unreadable.
    """
    if not text:
        return None
    match = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text.strip())
    if not match:
        return None
    base, frac, zone = match.groups()
    stamp = base + (frac[:7] if frac else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def parse_duration(text: Any) -> float | None:
    """Return seconds of a protobuf Duration's JSON form ('12.5s'), or None.

    Args:
        text: the duration as JSON writes it.

    Returns:
        Seconds, or None.
    """
    if isinstance(text, str) and text.endswith("s"):
        try:
            return float(text[:-1])
        except ValueError:
            return None
    return None


def _job_param_kinds(job: Mapping[str, Any]) -> dict[str, str]:
    kinds = {}
    for p in (job.get("studySpec") or {}).get("parameters") or []:
        pid = p.get("parameterId")
        if "integerValueSpec" in p:
            kinds[pid] = "int"
        elif "categoricalValueSpec" in p:
            kinds[pid] = "str"
        else:
            kinds[pid] = "float"
    return kinds


def restore_value(name: str, value: Any, spec: StudySpec | None, job_kind: str | None) -> Any:
    """Return a parameter value with its spec's type (Vertex AI sends numbers as floats).

    Args:
        name: the parameter.
        value: the value as Vertex AI returned it.
        spec: the run's spec (None when importing a job without one).
        job_kind: "int", "float" or "str" from the job's own study spec, when known.
    """
    param = spec.param(name) if spec is not None else None
    return typed_value(name, value, param, kind=job_kind)


def _metrics(measurement: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in (measurement or {}).get("metrics") or []:
        if "metricId" in m and m.get("value") is not None:
            out[str(m["metricId"])] = float(m["value"])
    return out


def parse_trial(
    trial: Mapping[str, Any],
    spec: StudySpec | None,
    metric: str,
    job_kinds: Mapping[str, str],
    *,
    job_finished: bool = False,
) -> TrialRecord:
    """Turn one trial of a job's JSON into a :class:`TrialRecord`.

    Args:
        trial: the trial as the service returns it (id, state, parameters, finalMeasurement,
            measurements, startTime, endTime, infeasibleReason).
        spec: the run's spec, whose types the parameters get back.
        metric: the objective's metric id.
        job_kinds: each parameter's type from the job's own study spec.
        job_finished: the job has ended, so a trial still active was stopped.
    """
    key = str(trial.get("id") or trial.get("name", "").rsplit("/", 1)[-1])
    params = {
        str(p["parameterId"]): restore_value(
            str(p["parameterId"]), p.get("value"), spec, job_kinds.get(str(p["parameterId"]))
        )
        for p in trial.get("parameters") or []
        if "parameterId" in p and p.get("value") is not None
    }
    metrics = _metrics(trial.get("finalMeasurement"))
    status = trial_status(trial.get("state"))
    if status == "running" and job_finished:
        status = "stopped"
    started = parse_time(trial.get("startTime"))
    ended = parse_time(trial.get("endTime"))
    duration = ended - started if started is not None and ended is not None else None
    epochs = []
    for m in trial.get("measurements") or []:
        step = m.get("stepCount")
        if step is not None:
            seconds = parse_duration(m.get("elapsedDuration"))
            epochs.append(EpochRecord(int(step), _metrics(m), seconds))
    error = None
    if status == "failed":
        error = str(trial.get("infeasibleReason") or "Vertex AI marked the trial infeasible.")
    return TrialRecord(
        key=key,
        number=int(key) - 1 if key.isdigit() else None,
        status=status,
        params=params,
        objective=metrics.get(metric),
        metrics=metrics,
        started_at=started,
        ended_at=ended,
        duration_s=duration,
        billable_s=duration,
        error=error,
        epochs=tuple(epochs),
    )


def parse_job(job: Mapping[str, Any], spec: StudySpec | None) -> JobReport:
    """Read a HyperparameterTuningJob's JSON into a :class:`JobReport`.

    Args:
        job: the job as the service returns it (enums as numbers or names).
        spec: the run's spec (None: types come from the job's own study spec).
    """
    status, detail = job_status(job.get("state"))
    metrics = (job.get("studySpec") or {}).get("metrics") or []
    metric = str(metrics[0].get("metricId")) if metrics else "val_accuracy"
    if spec is not None:
        metric = spec.objective.metric
    kinds = _job_param_kinds(job)
    finished = status in ("completed", "failed", "cancelled")
    trials = [
        parse_trial(t, spec, metric, kinds, job_finished=finished) for t in job.get("trials") or []
    ]
    error = None
    if status == "failed":
        err = job.get("error") or {}
        error = str(err.get("message") or detail or "The Vertex AI job failed.")
        error = f"Vertex AI reports the job failed: {error}"
    return JobReport(
        status=status,
        detail=detail,
        error=error,
        trials=trials,
        started_at=parse_time(job.get("startTime")),
        ended_at=parse_time(job.get("endTime")) if finished else None,
    )


def spec_from_job(job: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return spec data describing an imported job's search space and budget (best effort).

    Args:
        job: the job's JSON.
        name: the study's name.
    """
    study = job.get("studySpec") or {}
    space: list[dict[str, Any]] = []
    for p in study.get("parameters") or []:
        pid = str(p.get("parameterId"))
        if pid not in KNOWN_PARAMS:
            continue
        scale = "log" if p.get("scaleType") in ("UNIT_LOG_SCALE", 2) else "linear"
        if "doubleValueSpec" in p:
            v = p["doubleValueSpec"]
            space.append(
                {"name": pid, "type": "float", "min": v["minValue"], "max": v["maxValue"]}
                | {"scale": scale}
            )
        elif "integerValueSpec" in p:
            v = p["integerValueSpec"]
            space.append(
                {"name": pid, "type": "int", "min": int(v["minValue"]), "max": int(v["maxValue"])}
                | {"scale": scale}
            )
        elif "discreteValueSpec" in p or "categoricalValueSpec" in p:
            values: Sequence[Any] = (p.get("discreteValueSpec") or p["categoricalValueSpec"])[
                "values"
            ]
            if KNOWN_PARAMS[pid].kind == "int":
                values = [int(round(float(x))) for x in values]
            space.append({"name": pid, "type": "choice", "values": list(values)})
    metrics = study.get("metrics") or [{}]
    goal = str(metrics[0].get("goal", "MAXIMIZE")).lower()
    algorithm = study.get("algorithm")
    strategy = {"RANDOM_SEARCH": "random", "GRID_SEARCH": "grid", 2: "grid", 3: "random"}.get(
        algorithm, "bayesian"
    )
    return {
        "name": name,
        "space": space,
        "strategy": strategy,
        "objective": {
            "metric": metrics[0].get("metricId", "val_accuracy"),
            "goal": "min" if goal.startswith("min") or goal == "2" else "max",
        },
        "budget": {
            "max_trials": int(job.get("maxTrialCount") or 1),
            "parallel_trials": int(job.get("parallelTrialCount") or 1),
        },
    }
