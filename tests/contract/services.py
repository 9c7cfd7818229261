"""What each cloud's service gives a training container, laid out in a temporary root.

Every layout is built from our own request and from the very artifact our launch uploads;
the service's side follows its own sources, read for these tests:

* SageMaker: the training toolkit that starts script-mode programs in the TensorFlow DLC,
  aws/sagemaker-training-toolkit at 33839372 (src/sagemaker_training/environment.py reads
  /opt/ml/input/config/*.json and ``json.loads`` each hyperparameter, falling back to the raw
  text; mapping.py ``to_cmd_args`` passes the non-``sagemaker_`` ones as sorted
  ``--name value`` pairs, each value ``str()`` of the decoded one, and ``to_env_vars`` writes
  the SM_* environment; entry_point.py extracts ``sagemaker_submit_directory`` into
  /opt/ml/code, pip-installs its requirements.txt and runs ``python train.py ...`` there),
  and aws/sagemaker-tensorflow-training-toolkit at 18813ea3 (training.py: ``model_dir`` only
  when ``_tuning_objective_metric`` is a hyperparameter, which our request never sets).
* Vertex AI: each trial runs the worker pool's container (or ``python -m <module>`` of the
  installed package) with the pool's args followed by one ``--<parameterId>=<value>`` per
  parameter; AIP_MODEL_DIR, AIP_CHECKPOINT_DIR and AIP_TENSORBOARD_LOG_DIR are
  ``<baseOutputDirectory>/<trial id>/{model,checkpoints,logs}/`` (the CustomJobSpec
  reference), CLOUD_ML_TRIAL_ID is the trial's id from 1, buckets are mounted under /gcs/
  (Cloud Storage FUSE), and the service reads the metric tagged with the study's metricId
  from the cloudml-hypertune file.
* Azure ML: the sweep's trial command with ``${{search_space.x}}`` replaced by the sampled
  value and ``${{inputs.data}}`` by the input's mount folder, run by bash in the uploaded code
  folder, with MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_ID and MLFLOW_RUN_ID naming the child
  run the service created for the trial (``<sweep>_<n>``, also in AZUREML_RUN_ID); the
  primary metric is the latest value logged under its name.

Paths are redirected under the test's temporary folder: the toolkit's own variables already
point the trainer at them (SM_*), ``CLOUDTUNE_GCS_ROOT`` stands for /gcs, and an MLflow file
store for the workspace's tracking server. The trainer runs under ``$CLOUDTUNE_CONTRACT_PYTHON``
(default: this interpreter): ``make cloud-contract`` points it at each target container's
Python and packages, while the service's side stays in the test process.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.spec import StudySpec

TRAINER_PYTHON_ENV = "CLOUDTUNE_CONTRACT_PYTHON"
PLATFORM_PREFIXES = (
    "SM_",
    "AIP_",
    "CLOUD_ML_",
    "MLFLOW_",
    "AZUREML_",
    "TRAINING_JOB_",
    "SAGEMAKER_",
    "CLOUDTUNE_",
    "PYTHONPATH",
)
"""Variables the test process's own environment must not lend the trainer."""
TIMEOUT_S = 300
SEED = 7
"""The contract study's seed: trial N (from 0) trains with SEED + N."""


def trainer_python() -> str:
    """The interpreter the trainer runs under: the target container's, else this one."""
    return os.environ.get(TRAINER_PYTHON_ENV) or sys.executable


def base_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any platform's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_PREFIXES)}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def write_digits(folder: Path) -> Path:
    """Write 200 real digits (160 train, 40 test) as an MNIST-like uint8 .npz in ``folder``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype("uint8")
    labels = digits.target.astype("uint8")
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "digits.npz",
        x_train=images[:160],
        y_train=labels[:160],
        x_test=images[1000:1040],
        y_test=labels[1000:1040],
    )
    return folder


def contract_spec(data: Path, **changes: Any) -> StudySpec:
    """A small study over the digits folder: one of each kind of range, a fixed value, a
    model option and one epoch, so each service's encoding of every kind reaches the trainer."""
    raw: dict[str, Any] = {
        "name": "contract",
        "dataset": {"name": "custom", "path": str(data), "validation_split": 0.2},
        "space": [
            {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1, "scale": "log"},
            {"name": "dropout_rate", "type": "float", "min": 0.1, "max": 0.3},
            {"name": "batch_size", "type": "choice", "values": [16, 32]},
            {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
            {"name": "filters", "type": "int", "min": 8, "max": 16, "step": 8},
            {"name": "dense_units", "type": "int", "min": 8, "max": 24},
            {"name": "conv_blocks", "type": "fixed", "value": 1},
        ],
        "model": {"batch_norm": False},
        "strategy": "random",
        "objective": {"metric": "val_accuracy", "goal": "max"},
        "budget": {"max_trials": 4, "parallel_trials": 2, "epochs": 1},
        "seed": SEED,
    }
    raw.update(changes)
    return StudySpec.from_dict(raw)


@dataclass
class Trained:
    """One finished trainer process and what it printed and saved."""

    returncode: int
    stdout: str
    stderr: str
    command: list[str]

    @property
    def log(self) -> str:
        """What the service's log stream receives: standard output and standard error."""
        return self.stdout + self.stderr

    @property
    def params(self) -> dict[str, Any]:
        """The parameters the trainer trained with (its ``params:`` line)."""
        line = next(x for x in self.stdout.splitlines() if x.startswith("params: "))
        out: dict[str, Any] = json.loads(line[len("params: ") :])
        return out

    @property
    def trial_and_seed(self) -> tuple[int, int]:
        """The trial index and seed the trainer read (its ``trial: N, seed: S`` line)."""
        match = re.search(r"^trial: (\d+), seed: (\d+)$", self.stdout, re.MULTILINE)
        assert match, self.stdout[-2000:]
        return int(match.group(1)), int(match.group(2))

    def metrics(self, model_dir: Path) -> dict[str, Any]:
        """The metrics.json the trainer saved beside its model in ``model_dir``."""
        assert (model_dir / "model.keras").is_file(), f"no model.keras in {model_dir}"
        out: dict[str, Any] = json.loads((model_dir / "metrics.json").read_text())
        return out


def run(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> Trained:
    """Run the trainer as the service would; fail with its output unless it exits 0."""
    done = subprocess.run(
        list(command),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    trained = Trained(done.returncode, done.stdout, done.stderr, list(command))
    assert done.returncode == 0, (
        f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    assert "ignoring unknown arguments" not in done.stderr, done.stderr[-2000:]
    return trained


def extract(archive: Path, dest: Path) -> Path:
    """Extract a .tar.gz as the services do (no absolute or parent paths accepted)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
        tar.extractall(dest, filter="data")
    return dest


def python_on_path(folder: Path) -> str:
    """Put a ``python`` on a PATH that runs :func:`trainer_python`; return the new PATH.

    A wrapper, not a symlink: a virtual environment's interpreter finds its packages from the
    path it was started by.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "python"
    shim.write_text(f'#!/bin/sh\nexec "{trainer_python()}" "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def middle(low: float, high: float, log: bool) -> float:
    """A value inside a range, away from its ends (geometric middle on a log scale)."""
    return math.sqrt(low * high) if log else (low + high) / 2


# ----------------------------------------------------------------------------- SageMaker

SM_PARAMS = (
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_enable_cloudwatch_metrics",
    "sagemaker_region",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "default_user_module_name",
    "_tuning_objective_metric",
    "sagemaker_s3_output",
)
"""The toolkit's SAGEMAKER_HYPERPARAMETERS (params.py): with every ``sagemaker_`` name, kept
off the program's command line."""


def sm_decode(raw: str) -> Any:
    """The toolkit's read_hyperparameters: ``json.loads`` of each value, else the text."""
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw


def sm_text(value: Any) -> str:
    """The toolkit's ``mapping._decode`` of a value (``str()``, None as empty)."""
    return "" if value is None else str(value)


def sm_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """The toolkit's ``mapping.to_cmd_args``: sorted ``--name value`` pairs."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = sm_text(key)
        value = hyperparameters[key]
        if hasattr(value, "items"):
            text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            text = sm_text(value)
        args += [f"--{name}" if len(name) > 1 else f"-{name}", text]
    return args


def sm_env_value(value: Any) -> str:
    """The toolkit's ``mapping.to_env_vars`` value: text as is, anything else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass
class SageMakerContainer:
    """/opt/ml as a SageMaker training job of our tuning job gets it, under ``root``."""

    base: Path
    command: list[str]
    env: dict[str, str]
    cwd: Path
    hyperparameters: dict[str, str]

    @property
    def model_dir(self) -> Path:
        """SM_MODEL_DIR: what SageMaker packs into model.tar.gz."""
        return self.base / "model"


def sagemaker_container(
    root: Path,
    request: Mapping[str, Any],
    tarball: Path,
    data_dir: Path,
    tuned: Mapping[str, str],
    trial_number: int,
) -> SageMakerContainer:
    """Lay out one training job of ``request`` with the ``tuned`` values, as the service and the
    training toolkit do, and return the command the toolkit runs.

    Args:
        root: the temporary folder standing for the container's file system.
        request: our CreateHyperParameterTuningJob request.
        tarball: the sourcedir.tar.gz our launch uploads to ``sagemaker_submit_directory``.
        data_dir: the staged dataset our launch uploads to the channel's S3 prefix.
        tuned: the tuning job's values for this training job, as text (what the service adds
            to the static hyperparameters).
        trial_number: the training job's number, from 1 (``<tuning job>-00N-xxxxxxxx``).
    """
    definition = request["TrainingJobDefinition"]
    base = root / "opt" / "ml"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {**definition["StaticHyperParameters"], **tuned}
    assert all(isinstance(v, str) for v in hyperparameters.values())  # the API takes text only
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters), encoding="utf-8")
    resources = definition["ResourceConfig"]
    hosts = [f"algo-{i + 1}" for i in range(int(resources["InstanceCount"]))]
    group = "homogeneousCluster"
    resource_config = {
        "current_host": hosts[0],
        "current_instance_type": resources["InstanceType"],
        "current_group_name": group,
        "hosts": hosts,
        "instance_groups": [
            {
                "instance_group_name": group,
                "instance_type": resources["InstanceType"],
                "hosts": hosts,
            }
        ],
        "network_interface_name": "eth0",
    }
    (config / "resourceconfig.json").write_text(json.dumps(resource_config), encoding="utf-8")
    mode = definition["AlgorithmSpecification"]["TrainingInputMode"]
    input_config = {}
    for channel in definition["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        input_config[channel["ChannelName"]] = {
            "TrainingInputMode": channel.get("InputMode", mode),
            "S3DistributionType": source["S3DataDistributionType"],
            "RecordWrapperType": "None",
        }
        # File mode: the prefix's objects are downloaded into the channel's folder
        shutil.copytree(data_dir, base / "input" / "data" / channel["ChannelName"])
    (config / "inputdataconfig.json").write_text(json.dumps(input_config), encoding="utf-8")

    decoded = {k: sm_decode(v) for k, v in hyperparameters.items()}
    framework = {k: v for k, v in decoded.items() if k in SM_PARAMS or k.startswith("sagemaker_")}
    user = {k: v for k, v in decoded.items() if k not in framework}
    job_name = f"{request['HyperParameterTuningJobName']}-{trial_number:03d}-1a2b3c4d"
    if "_tuning_objective_metric" in decoded:  # the TensorFlow toolkit's main()
        user["model_dir"] = f"{user.get('model_dir')}/{job_name}/model"
    code = base / "code"
    extract(tarball, code)  # entry_point.run: download_and_extract(submit_directory, code_dir)
    args = sm_cmd_args(user)
    program = str(framework["sagemaker_program"])
    channels = {c: str(base / "input" / "data" / c) for c in sorted(input_config)}
    env_items: dict[str, Any] = {
        "hosts": hosts,
        "network_interface_name": "eth0",
        "hps": user,
        "user_entry_point": program,
        "framework_params": {k: v for k, v in framework.items() if k not in SM_PARAMS},
        "resource_config": resource_config,
        "input_data_config": input_config,
        "output_data_dir": str(base / "output" / "data"),
        "channels": sorted(channels),
        "current_host": hosts[0],
        "current_instance_type": resources["InstanceType"],
        "current_instance_group": group,
        "current_instance_group_hosts": hosts,
        "instance_groups": [group],
        "distribution_instance_groups": [group],
        "is_hetero": False,
        "module_name": program.removesuffix(".py"),
        "log_level": framework.get("sagemaker_container_log_level", 20),
        "framework_module": "sagemaker_tensorflow_container.training:main",
        "input_dir": str(base / "input"),
        "input_config_dir": str(config),
        "output_dir": str(base / "output"),
        "num_cpus": multiprocessing.cpu_count(),
        "num_gpus": 0,
        "num_neurons": 0,
        "model_dir": str(base / "model"),
        "module_dir": str(framework["sagemaker_submit_directory"]),
        "user_args": args,
        "output_intermediate_dir": str(base / "output" / "intermediate"),
    }
    env_items["training_env"] = {k: v for k, v in env_items.items() if k != "user_args"}
    env_items.update({f"channel_{c}": path for c, path in channels.items()})
    env_items.update({f"hp_{k}": v for k, v in user.items()})
    for folder in ("model", "output/data", "output/intermediate"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    env = base_env(
        # the platform's own variables, and the toolkit's os.environ writes
        TRAINING_JOB_NAME=job_name,
        TRAINING_JOB_ARN=f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job_name}",
        SAGEMAKER_REGION=str(framework.get("sagemaker_region") or ""),
        SAGEMAKER_JOB_NAME="",
        CURRENT_HOST=hosts[0],
        SAGEMAKER_TRAINING_MODULE="sagemaker_tensorflow_container.training:main",
        **{f"SM_{k.upper()}": sm_env_value(v) for k, v in env_items.items()},
        **dict(definition.get("Environment") or {}),
    )
    return SageMakerContainer(
        base, [trainer_python(), program, *args], env, code, dict(hyperparameters)
    )


def sagemaker_tuned_values(ranges: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Values the tuning job might pick from our request's ParameterRanges: as SageMaker
    passes them (text), and as the trainer should train with them (typed)."""
    text: dict[str, str] = {}
    typed: dict[str, Any] = {}
    for r in ranges.get("ContinuousParameterRanges") or []:
        value = middle(
            float(r["MinValue"]), float(r["MaxValue"]), r["ScalingType"] == "Logarithmic"
        )
        text[r["Name"]], typed[r["Name"]] = repr(value), value
    for r in ranges.get("IntegerParameterRanges") or []:
        value = (int(r["MinValue"]) + int(r["MaxValue"])) // 2
        text[r["Name"]], typed[r["Name"]] = str(value), value
    for r in ranges.get("CategoricalParameterRanges") or []:
        text[r["Name"]] = r["Values"][-1]  # not the first: never the trainer's default by luck
        typed[r["Name"]] = sm_decode(r["Values"][-1])
    return text, typed


# ----------------------------------------------------------------------------- Vertex AI


def vertex_trial_values(parameters: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, Any]]:
    """A value per studySpec parameter: the argument text Vertex AI passes and the typed value.

    Discrete values are doubles in the API and are passed as such (``16.0``); integer bounds
    arrive as JSON strings (int64).
    """
    out: dict[str, tuple[str, Any]] = {}
    for p in parameters:
        log = p.get("scaleType") == "UNIT_LOG_SCALE"
        if "doubleValueSpec" in p:
            spec = p["doubleValueSpec"]
            value: Any = middle(float(spec["minValue"]), float(spec["maxValue"]), log)
            out[p["parameterId"]] = (repr(value), value)
        elif "integerValueSpec" in p:
            spec = p["integerValueSpec"]
            value = (int(spec["minValue"]) + int(spec["maxValue"])) // 2
            out[p["parameterId"]] = (str(value), value)
        elif "discreteValueSpec" in p:
            value = float(p["discreteValueSpec"]["values"][-1])
            out[p["parameterId"]] = (repr(value), value)
        else:
            value = p["categoricalValueSpec"]["values"][-1]
            out[p["parameterId"]] = (str(value), value)
    return out


@dataclass
class DockerImage:
    """What a Dockerfile's COPY, ENV, WORKDIR and ENTRYPOINT lines make of a build context."""

    root: Path
    workdir: Path
    entrypoint: list[str]
    env: dict[str, str]


def docker_image(context: Path, root: Path) -> DockerImage:
    """Read the context's Dockerfile and copy its COPY sources to where the image has them,
    under ``root``; RUN lines (pip installs) are the target environment's business."""
    env: dict[str, str] = {}
    workdir = Path("/")
    entrypoint: list[str] = []
    seen = set()
    for line in (context / "Dockerfile").read_text(encoding="utf-8").splitlines():
        word, _, rest = line.strip().partition(" ")
        seen.add(word)
        if word == "COPY":
            source, target = rest.split()
            dest = root / target.lstrip("/")
            if (context / source).is_dir():
                shutil.copytree(context / source, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(context / source, dest)
        elif word == "ENV":
            env.update(pair.split("=", 1) for pair in rest.split())  # type: ignore[misc]
        elif word == "WORKDIR":
            workdir = root / rest.strip().lstrip("/")
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
    assert {"FROM", "COPY", "ENTRYPOINT"} <= seen, "the Dockerfile lacks FROM, COPY or ENTRYPOINT"
    return DockerImage(root, workdir, entrypoint, env)


# ----------------------------------------------------------------------------- Azure ML


def azure_trial_values(search_space: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """A value per sweep search-space entry (REST form ``[kind, [args]]``): the text the
    service substitutes and the typed value; quniform samples are floats (``16.0``)."""
    out: dict[str, tuple[str, Any]] = {}
    for name, (kind, args) in search_space.items():
        if kind == "choice":
            value: Any = args[0][-1]
        elif kind == "uniform":
            value = middle(args[0], args[1], False)
        elif kind == "loguniform":
            value = math.exp(middle(args[0], args[1], False))
        elif kind == "quniform":
            low, high, q = args
            value = float(round(middle(low, high, False) / q) * q)
        elif kind == "randint":
            value = args[0] // 2
        else:
            raise AssertionError(f"search space {name}: kind {kind} is not handled here")
        out[name] = (str(value), value)
    return out


def substitute(command: str, values: Mapping[str, str]) -> str:
    """Replace each ``${{search_space.x}}``, ``${{inputs.x}}`` and ``${{outputs.x}}`` by its
    value; fail on any expression left."""

    def one(match: re.Match[str]) -> str:
        key = f"{match.group(1)}.{match.group(2)}"
        assert key in values, f"the command names {match.group(0)}, which the service fills"
        return values[key]

    out = re.sub(r"\$\{\{(search_space|inputs|outputs)\.(\w+)\}\}", one, command)
    assert "${{" not in out, out
    return out
