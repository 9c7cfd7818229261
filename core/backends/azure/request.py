"""The pure translation of a StudySpec into an Azure ML (SDK v2) sweep job, as YAML and REST."""

from __future__ import annotations

import logging
import math
import re
import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.platforms import PLATFORMS
from core.backends.records import RunStatus
from core.errors import SpecError
from core.spec import ChoiceParam, FixedParam, FloatParam, IntParam, Param, StudySpec
from core.spec.design import configurations_argument
from core.training.train import BEST_SUFFIX, EPOCH_KEYS, objective_arguments

if TYPE_CHECKING:
    from azure.ai.ml.sweep import SweepJob

log = logging.getLogger(__name__)

CURATED_TF_ENVIRONMENT = (
    "azureml://registries/azureml/environments/tensorflow-2.16-cuda12/labels/latest"
)
"""Azure ML's curated TensorFlow environment (TF 2.16, Keras 3, azureml-mlflow, CUDA 12)."""

SCHEMA_URL = "https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json"
REQUIRED_SETTINGS: dict[str, str] = {
    "subscription_id": "the Azure subscription id (a GUID; `az account show --query id`)",
    "resource_group": "the resource group that holds the Azure ML workspace",
    "workspace": "the Azure ML workspace name",
    "compute": "the name of an Azure ML compute cluster to run the trials on",
}
"""Settings every Azure launch needs, with a phrase saying what each one is."""

_LABELS = {f.key: f.label for f in PLATFORMS["azure"].settings}

EARLY_TERMINATION: tuple[str, ...] = ("none", "bandit", "median_stopping", "truncation_selection")
BAYESIAN_DISTRIBUTIONS: tuple[str, ...] = ("choice", "uniform", "quniform")
CODE_DIR = "src"
DATA_DIR = "data"
HYPERBAND_SLACK = 0.1

AZURE_STATUS: dict[str, tuple[RunStatus, str | None]] = {
    "NotStarted": ("queued", "not started"),
    "Queued": ("queued", "queued for compute"),
    "Preparing": ("queued", "preparing the environment"),
    "Provisioning": ("queued", "provisioning compute"),
    "Starting": ("queued", "starting"),
    "Running": ("running", None),
    "Finalizing": ("running", "finalizing"),
    "CancelRequested": ("running", "cancel requested; waiting for Azure ML to stop the trials"),
    "NotResponding": ("running", "Azure ML reports the job as not responding"),
    "Paused": ("running", "paused in Azure ML"),
    "Completed": ("completed", None),
    "Failed": ("failed", None),
    "Canceled": ("cancelled", None),
}
"""Azure ML job statuses mapped to the store's run statuses, with a detail sentence."""


def logged_metric(metric: str) -> str:
    """Return the name under which the trainer logs ``metric`` (a Keras name) to MLflow.

    The trainer logs ``train_loss`` and ``train_accuracy`` for Keras' ``loss`` and
    ``accuracy``; the sweep's primary metric must be the logged name.
    """
    return {keras: logged for logged, keras in EPOCH_KEYS}.get(metric, metric)


def objective_metric(spec: StudySpec) -> str:
    """Return the sweep's primary metric: the trainer's running best of the objective.

    Azure ML reads a trial's primary metric as its latest logged value, so the trainer logs
    ``val_accuracy_best`` (the best epoch so far) beside each epoch's metrics: the latest value
    is the best epoch, the objective every platform records.
    """
    return logged_metric(spec.objective.metric) + BEST_SUFFIX


def keras_metric(name: str) -> str:
    """Return the Keras name of a metric the trainer logged (the inverse of logged_metric)."""
    return dict(EPOCH_KEYS).get(name, name)


def map_status(status: Any) -> tuple[RunStatus, str | None]:
    """Map an Azure ML job status to the store's run status and a detail.

    Args:
        status: the job's status (a string or the SDK's JobStatus enum).

    Returns:
        (one of core.store.RUN_STATUSES, a detail phrase or None). An unknown status counts as
        running, with the status named in the detail.
    """
    text = str(getattr(status, "value", status) or "NotStarted")
    for name, mapped in AZURE_STATUS.items():
        if name.lower() == text.lower():
            return mapped
    return "running", f"Azure ML status {text}"


# ----------------------------------------------------------------------------- settings


def missing_settings(settings: Mapping[str, Any]) -> list[str]:
    """Return a sentence for each required setting that is empty, naming the fix."""
    out = []
    for key, what in REQUIRED_SETTINGS.items():
        if not str(settings.get(key) or "").strip():
            out.append(f"Azure ML needs {what}: set Settings → Azure ML → {_LABELS[key]}.")
    return out


def experiment_name(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """Return the Azure ML experiment the sweep goes under (settings, else from the study)."""
    given = str(settings.get("experiment_name") or "").strip()
    return given or safe_name(f"cloudtune-{spec.name}")


def safe_name(text: str, limit: int = 200) -> str:
    """Return ``text`` reduced to what Azure ML accepts in job and experiment names."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_") or "cloudtune"
    if not cleaned[0].isalnum():
        cleaned = "c" + cleaned
    return cleaned[:limit]


# ----------------------------------------------------------------------------- search space


def _aligned(value: float, step: float) -> bool:
    ratio = value / step
    return math.isclose(ratio, round(ratio), rel_tol=0.0, abs_tol=1e-9)


def _bayesian_refusal(p: Param) -> str:
    return (
        f"{p.name}: Azure ML's Bayesian sampling accepts only choice, uniform and quniform "
        f"ranges, not a log-scale range; use strategy random (which keeps the log scale), "
        f"make {p.name} a linear range, or give it a choice of values."
    )


def distribution(p: Param, strategy: str) -> tuple[Any | None, str | None]:
    """Translate one parameter into an azure.ai.ml.sweep distribution.

    Args:
        p: the spec's parameter (FixedParam is not searched: returns (None, None)).
        strategy: the spec's strategy.

    Returns:
        (the SDK distribution or None, a problem sentence or None).
    """
    from azure.ai.ml.sweep import Choice, LogUniform, QLogUniform, QUniform, Uniform

    if isinstance(p, FixedParam):
        return None, None
    if isinstance(p, ChoiceParam):
        return Choice(values=list(p.values)), None
    if strategy == "grid":
        grid = p.grid_values()
        if grid is None:
            return None, (
                f"{p.name}: Azure ML's grid sampling takes only choice parameters, and a float "
                f"range without a step has no finite grid; give {p.name} a step (core.spec."
                f"discretise(spec, {{'{p.name}': step}}) does it) or use random or bayesian."
            )
        return Choice(values=list(grid)), None
    if p.scale == "log":
        if strategy == "bayesian":
            return None, _bayesian_refusal(p)
        lo, hi = math.log(p.min), math.log(p.max)
        if isinstance(p, IntParam):
            return QLogUniform(min_value=lo, max_value=hi, q=p.step), None
        if p.step is not None:
            return Choice(values=list(p.grid_values() or [])), None
        return LogUniform(min_value=lo, max_value=hi), None
    step = p.step
    if step is None:
        return Uniform(min_value=p.min, max_value=p.max), None
    points: list[Any] = list(p.grid_values() or [])
    if _aligned(p.min, step) and _aligned(points[-1], step):
        # The SDK hints q as int, but its schema and the service take float steps too.
        return QUniform(min_value=p.min, max_value=points[-1], q=step), None  # type: ignore[arg-type]
    return Choice(values=points), None


def search_space(spec: StudySpec, strategy: str | None = None) -> dict[str, Any]:
    """Return the sweep's search space: parameter name -> azure.ai.ml.sweep distribution.

    Raises:
        SpecError: a parameter cannot be expressed for the strategy; every problem at once.
    """
    strategy = strategy or spec.strategy
    space: dict[str, Any] = {}
    problems: list[str] = []
    for p in spec.space:
        dist, problem = distribution(p, "random" if strategy == "hyperband" else strategy)
        if problem:
            problems.append(problem)
        elif dist is not None:
            space[p.name] = dist
    if problems:
        raise SpecError(problems)
    if not space:
        raise SpecError(
            ["space: every parameter is fixed; an Azure ML sweep needs at least one to tune."]
        )
    return space


# ----------------------------------------------------------------------------- sampling


def _policy(kind: str, epochs: int) -> Any:
    from azure.ai.ml.sweep import BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy

    delay = 1 if epochs > 1 else 0
    if kind == "bandit":
        return BanditPolicy(
            slack_factor=HYPERBAND_SLACK, evaluation_interval=1, delay_evaluation=delay
        )
    if kind == "median_stopping":
        return MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=delay)
    return TruncationSelectionPolicy(
        truncation_percentage=20, evaluation_interval=1, delay_evaluation=delay
    )


def _early_termination(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """The early termination policy: the setting when given, else the spec's median rule.

    Azure ML takes no policy with Bayesian sampling: the spec's median rule is then left out
    (and :func:`early_stopping_note` says so); a setting asking for one is refused instead.
    """
    if settings.get("early_termination"):
        return str(settings["early_termination"]).lower()
    wanted = spec.budget.early_stopping == "median" and spec.strategy != "bayesian"
    return "median_stopping" if wanted else "none"


def early_stopping_note(spec: StudySpec, settings: Mapping[str, Any]) -> str | None:
    """Say how Azure ML's rule differs from the local median rule (None: no early stopping)."""
    if spec.budget.early_stopping != "median":
        return None
    if spec.strategy == "bayesian":
        return (
            "Azure ML allows no early termination policy with Bayesian sampling: this sweep "
            "runs every trial to the end; use strategy random to stop weak trials early."
        )
    if spec.strategy == "hyperband":
        return "Azure ML: hyperband's BanditPolicy stops weak trials (no MedianStoppingPolicy)."
    early = _early_termination(spec, settings)
    if early != "median_stopping":
        return (
            f"Azure ML: the early_termination setting ({early}) overrides the spec's median rule."
        )
    return (
        "Azure ML (MedianStoppingPolicy, every epoch after the first): a trial stops when its "
        "best primary metric is worse than the median of the running averages (not the best "
        "so far) of all trials' primary metric, with no wait for a number of completed trials."
    )


def sampling(spec: StudySpec, settings: Mapping[str, Any]) -> tuple[Any, Any | None]:
    """Return (sampling algorithm, early termination policy or None) for the spec.

    Raises:
        SpecError: an unknown early_termination setting, or one combined with Bayesian sampling.
    """
    from azure.ai.ml.sweep import RandomSamplingAlgorithm

    early = _early_termination(spec, settings)
    if early not in EARLY_TERMINATION:
        raise SpecError(
            [
                f"early_termination {early!r} is unknown; use one of "
                f"{', '.join(EARLY_TERMINATION)} (Settings page, azure.early_termination)."
            ]
        )
    if spec.strategy == "bayesian":
        if early != "none":
            raise SpecError(
                [
                    f"Azure ML allows no early termination policy with Bayesian sampling, but "
                    f"early_termination is {early!r}; set it to none, or use strategy random "
                    f"(or hyperband) to stop weak trials early."
                ]
            )
        return "bayesian", None
    if spec.strategy == "hyperband":
        return RandomSamplingAlgorithm(seed=spec.seed), _policy("bandit", spec.budget.epochs)
    policy = None if early == "none" else _policy(early, spec.budget.epochs)
    if spec.strategy == "grid":
        return "grid", policy
    return RandomSamplingAlgorithm(seed=spec.seed), policy


def translation_notes(spec: StudySpec, settings: Mapping[str, Any]) -> list[str]:
    """Return sentences on how the spec maps to Azure ML where it is not one to one."""
    notes = [n for n in [early_stopping_note(spec, settings)] if n]
    if spec.strategy == "hyperband":
        notes.append(
            "Azure ML has no Hyperband: this sweep uses random sampling with a BanditPolicy "
            f"(slack factor {HYPERBAND_SLACK}, checked every epoch), the nearest equivalent: "
            "trials that fall behind the best stop early."
        )
    for p in spec.space:
        if isinstance(p, FloatParam) and p.scale == "log" and p.step is None:
            notes.append(
                f"{p.name}: loguniform bounds are natural logarithms: "
                f"ln({p.min:g}) = {math.log(p.min):.6f} to ln({p.max:g}) = {math.log(p.max):.6f}."
            )
    if not settings.get("data_uri"):
        notes.append(
            f"The dataset is uploaded from ./{DATA_DIR} next to this file; set data_uri to use "
            "data already in Azure storage."
        )
    return notes


# ----------------------------------------------------------------------------- the job


def trial_arguments(spec: StudySpec, names: list[str]) -> str:
    """Return the trainer's command-line arguments: searched names as sweep expressions."""
    parts = ["--data-dir ${{inputs.data}}", f"--epochs {spec.budget.epochs}"]
    parts.append(f"--seed {spec.seed}")
    parts.append(f"--objective {spec.objective.metric}")
    goal = objective_arguments(spec).get("goal")  # only when not the metric's own direction
    if goal:
        parts.append(f"--goal {goal}")
    for name in names:
        parts.append(f"--{name} ${{{{inputs.{name}}}}}")
    for p in spec.space:
        if isinstance(p, FixedParam):
            parts.append(f"--{p.name} {p.value}")
    for key, value in sorted(spec.model.items()):
        parts.append(f"--{key} {str(value).lower() if isinstance(value, bool) else value}")
    configurations = configurations_argument(spec)
    if configurations is not None:
        parts.append(f"--configurations {shlex.quote(configurations)}")
    return " ".join(parts)


def _default(dist: Any) -> Any:
    values = getattr(dist, "values", None)
    if values:
        return values[0]
    if dist.type in ("loguniform", "qloguniform"):
        return math.exp(dist.min_value)
    return dist.min_value


def environment(settings: Mapping[str, Any]) -> Any:
    """Return the trial's environment: a Docker-image one for a custom image, else curated.

    ``settings['image']`` names a custom image (CloudTune's own: core.backends.containers,
    built by ``az acr build``); ``settings['environment']`` an Azure ML environment asset;
    without either, the curated TensorFlow environment.
    """
    image = containers.custom_image(settings)
    if image:
        from azure.ai.ml.entities import Environment

        return Environment(image=image)
    return str(settings.get("environment") or CURATED_TF_ENVIRONMENT)


def environment_image(settings: Mapping[str, Any]) -> str:
    """Return the image or environment the trials run in (for notes and readiness)."""
    return containers.custom_image(settings) or str(
        settings.get("environment") or CURATED_TF_ENVIRONMENT
    )


def build_sweep_job(
    spec: StudySpec,
    settings: Mapping[str, Any],
    *,
    code: str = f"./{CODE_DIR}",
    data: str | None = None,
    name: str | None = None,
) -> SweepJob:
    """Build the SDK's SweepJob for ``spec``: command(...).sweep(...) with its limits.

    Args:
        spec: the study.
        settings: the Azure settings (compute, environment, experiment_name, data_uri, ...).
        code: the trainer's source folder (a local path, uploaded by the SDK at submission).
        data: the staged dataset folder or URI (default: settings data_uri, else ./data).
        name: the job name (None: Azure ML picks one).

    Raises:
        SpecError: the spec cannot be expressed as an Azure ML sweep (a sentence each).
    """
    from azure.ai.ml import Input, command

    space = search_space(spec)
    algorithm, policy = sampling(spec, settings)
    names = list(space)
    trial = command(
        code=code,
        command="python train.py " + trial_arguments(spec, names),
        inputs={
            "data": Input(type="uri_folder", path=data or settings.get("data_uri") or "./data"),
            **{n: _default(space[n]) for n in names},
        },
        environment=environment(settings),
        compute=str(settings.get("compute") or ""),
        environment_variables={"TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    node = trial(**space).sweep(
        primary_metric=objective_metric(spec),
        goal="maximize" if spec.objective.goal == "max" else "minimize",
        sampling_algorithm=algorithm,
        early_termination_policy=policy,
    )
    node.set_limits(
        max_total_trials=spec.budget.max_trials,
        max_concurrent_trials=spec.budget.parallel_trials,
        timeout=int(spec.budget.max_minutes * 60) if spec.budget.max_minutes else None,
        trial_timeout=int(settings["trial_timeout_s"]) if settings.get("trial_timeout_s") else None,
    )
    job = node._to_job()
    job.experiment_name = experiment_name(spec, settings)
    job.display_name = spec.name
    job.description = f"CloudTune study {spec.name!r} ({spec.strategy} search)"
    job.tags = {"cloudtune.study": spec.name, "cloudtune.strategy": spec.strategy}
    if name:
        job.name = name
    return job


def job_to_dict(job: SweepJob, *, code: str = f"./{CODE_DIR}") -> dict[str, Any]:
    """Serialise a SweepJob with the SDK's own YAML schema, as ``az ml job create`` reads it.

    The SDK dumps a local code folder as ``azureml:<path>`` (an asset reference that
    ``az ml job create`` would then fail to resolve), so the trial's code is written back as
    the local path it is.
    """
    out: dict[str, Any] = {"$schema": SCHEMA_URL}
    out.update(_plain(job._to_dict()))
    trial = out.get("trial") or {}
    trial["code"] = _local_path(trial.get("code"), code)
    for key, value in (out.get("inputs") or {}).items():
        original = getattr((job.inputs or {}).get(key), "path", None)
        if isinstance(value, dict) and original:
            value["path"] = _local_path(value.get("path"), str(original))
    return out


def _local_path(dumped: Any, original: str) -> Any:
    """Undo the SDK's ``azureml:`` prefix on a path that is really a local folder."""
    if dumped == f"azureml:{original}" and not original.startswith(("azureml:", "/")):
        return original
    return dumped


def _plain(value: Any) -> Any:
    """Turn the SDK's OrderedDicts into plain dicts (keeping order)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def build_request(spec: StudySpec, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the exact sweep job as its YAML mapping (what ``az ml job create --file`` takes).

    The trainer is ./src and the dataset ./data next to the YAML file (or settings data_uri).

    Raises:
        SpecError: the spec cannot be expressed as an Azure ML sweep.
    """
    return job_to_dict(build_sweep_job(spec, settings))


def rest_body(spec: StudySpec, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the job's REST body (``PUT .../jobs/{name}``) from the SDK's own serialiser.

    The code and data stay local paths here; at submission the SDK uploads them and puts
    their asset ids in their place.
    """
    job = build_sweep_job(spec, settings)
    body: dict[str, Any] = _asset_ids(job._to_rest_object().as_dict())
    return body


def _asset_ids(value: Any) -> Any:
    """Write an inline Environment (a custom image) as the anonymous asset id the SDK registers
    it under at submission (``azureml:CliV2AnonymousEnvironment:<content hash>``)."""
    if isinstance(value, Mapping):
        return {k: _asset_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_asset_ids(v) for v in value]
    if hasattr(value, "image") and hasattr(value, "version") and hasattr(value, "name"):
        return f"azureml:{value.name}:{value.version}"
    return value


def to_yaml(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    """Return the sweep job as YAML text, headed by comment lines with the translation notes."""
    import yaml

    request = build_request(spec, settings)
    header = [f"# CloudTune study {spec.name!r} as an Azure ML sweep job."]
    header.append(f"# Submit with: az ml job create --file job.yml {workspace_args(settings)}")
    header += [f"# {note}" for note in translation_notes(spec, settings)]
    body = yaml.safe_dump(request, sort_keys=False, default_flow_style=False, width=100)
    return "\n".join(header) + "\n" + body


def workspace_args(settings: Mapping[str, Any]) -> str:
    """Return the az CLI arguments that name the workspace (placeholders where unset)."""
    sub = settings.get("subscription_id") or "<subscription-id>"
    rg = settings.get("resource_group") or "<resource-group>"
    ws = settings.get("workspace") or "<workspace>"
    return f"--subscription {sub} --resource-group {rg} --workspace-name {ws}"
