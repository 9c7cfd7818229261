"""Vertex AI's container contract: a trial of our tuning job, from our request and our artifact.

A trial runs the worker pool's program with the pool's args and one ``--<parameterId>=<value>``
per study parameter, with CLOUD_ML_TRIAL_ID, CLOUD_ML_HP_METRIC_FILE and the AIP_* folders of
the trial, and the staging bucket mounted under /gcs/ (redirected here by CLOUDTUNE_GCS_ROOT).
The program comes from what the launch ships: by default CloudTune's custom container (its
Docker build context, run as its Dockerfile says), else the Python package a prebuilt image
installs. What Vertex AI reads back is the hypertune metrics file, under the study's metricId.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.backends import containers
from core.backends.vertex import request as vx
from core.backends.vertex.backend import VertexBackend
from tests.contract import services

SETTINGS = {"project": "contract-project", "region": "us-central1", "bucket": "contract-bucket"}
PREBUILT = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
TRIAL_ID = "3"
"""Vertex AI numbers a study's trials from 1: trial 3 has index 2."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return services.write_digits(tmp_path_factory.mktemp("digits"))


def _export(settings: dict[str, str], digits: Path, dest: Path) -> tuple[dict[str, Any], Path]:
    """The launch's own files: the request, the container context or package, the data."""
    spec = services.contract_spec(digits)
    VertexBackend(None).export_bundle(spec, settings, str(dest))  # type: ignore[arg-type]
    request = json.loads((dest / "hyperparameter_tuning_job.json").read_text())
    assert request == vx.build_request(spec, settings)  # what submit sends
    return request, dest


@dataclass
class Trial:
    """One trial as Vertex AI starts it: arguments, environment, and where its files land."""

    args: list[str]
    env: dict[str, str]
    expected: dict[str, Any]
    model_dir: Path
    metrics_file: Path


def _trial(request: dict[str, Any], export: Path, root: Path) -> Trial:
    """Lay out the trial's mounted bucket under ``root``; return its arguments and environment."""
    values = services.vertex_trial_values(request["studySpec"]["parameters"])
    gcs = root / "gcs"
    pool = request["trialJobSpec"]["workerPoolSpecs"][0]
    program = pool.get("containerSpec") or pool["pythonPackageSpec"]
    data_uri = next(a for a in program["args"] if a.startswith("--data-dir=")).split("=", 1)[1]
    assert data_uri.startswith("gs://" + SETTINGS["bucket"] + "/")
    shutil.copytree(export / "data", gcs / data_uri.removeprefix("gs://"))  # the upload, mounted
    base = request["trialJobSpec"]["baseOutputDirectory"]["outputUriPrefix"]
    metrics_file = root / "tmp" / "hypertune" / "output.metrics"
    env = services.base_env(
        CLOUDTUNE_GCS_ROOT=str(gcs),
        CLOUD_ML_TRIAL_ID=TRIAL_ID,
        CLOUD_ML_JOB_ID="1234567890123456789",
        CLOUD_ML_PROJECT_ID=SETTINGS["project"],
        CLOUD_ML_REGION=SETTINGS["region"],
        CLOUD_ML_HP_METRIC_FILE=str(metrics_file),
        AIP_MODEL_DIR=f"{base}/{TRIAL_ID}/model/",
        AIP_CHECKPOINT_DIR=f"{base}/{TRIAL_ID}/checkpoints/",
        AIP_TENSORBOARD_LOG_DIR=f"{base}/{TRIAL_ID}/logs/",
    )
    return Trial(
        args=[*program["args"], *(f"--{name}={text}" for name, (text, _) in values.items())],
        env=env,
        expected={name: value for name, (_, value) in values.items()},
        model_dir=gcs / f"{base}/{TRIAL_ID}/model".removeprefix("gs://"),
        metrics_file=metrics_file,
    )


def _read_back(request: dict[str, Any], metrics_file: Path, summary: dict[str, Any]) -> None:
    """What Vertex AI takes from the hypertune file: the study metric's best measurement."""
    metric = request["studySpec"]["metrics"][0]
    entries = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert [e["global_step"] for e in entries] == ["1"]  # one epoch, one measurement
    assert all(e["trial"] == TRIAL_ID for e in entries)
    values = [float(e[metric["metricId"]]) for e in entries]
    assert request["studySpec"]["measurementSelectionType"] == "BEST_MEASUREMENT"
    best = max(values) if metric["goal"] == "MAXIMIZE" else min(values)
    assert best == pytest.approx(summary["best"])


def _check(trained: services.Trained, trial: Trial) -> dict[str, Any]:
    """The trainer trained the trial's values with the trial's seed and saved where Vertex AI
    keeps the model; return its metrics.json."""
    params = trained.params
    for name, value in trial.expected.items():
        assert params[name] == pytest.approx(value), name
    assert params["conv_blocks"] == 1
    assert trained.trial_and_seed == (int(TRIAL_ID) - 1, services.SEED + int(TRIAL_ID) - 1)
    return trained.metrics(trial.model_dir)  # AIP_MODEL_DIR, through the bucket's mount


@pytest.mark.slow
def test_custom_container_trial_reports_through_the_hypertune_file(
    digits: Path, tmp_path: Path
) -> None:
    request, export = _export(SETTINGS, digits, tmp_path / "export")
    pool = request["trialJobSpec"]["workerPoolSpecs"][0]
    assert pool["containerSpec"]["imageUri"] == containers.image_uri_default("vertex", SETTINGS)
    trial = _trial(request, export, tmp_path / "root")
    image = services.docker_image(export / "container", tmp_path / "root")
    assert image.entrypoint[0] == "python"
    command = [services.trainer_python(), *image.entrypoint[1:], *trial.args]
    trained = services.run(command, {**trial.env, **image.env}, image.workdir)

    assert f"from {image.workdir / 'core'}" in trained.stdout.splitlines()[0]  # the image's copy
    _read_back(request, trial.metrics_file, _check(trained, trial))


@pytest.mark.slow
def test_prebuilt_image_trial_runs_the_installed_package(digits: Path, tmp_path: Path) -> None:
    """A prebuilt TensorFlow image pip-installs the package and runs ``python -m train``."""
    settings = {**SETTINGS, "image": PREBUILT}
    request, export = _export(settings, digits, tmp_path / "export")
    spec = request["trialJobSpec"]["workerPoolSpecs"][0]["pythonPackageSpec"]
    package = export / Path(spec["packageUris"][0]).name  # the tarball submit uploads there
    trial = _trial(request, export, tmp_path / "root")
    site = tmp_path / "root" / "user-site"
    pip = [services.trainer_python(), "-m", "pip", "install", "--no-deps", "--no-index"]
    pip += ["--no-build-isolation", "--quiet", "--target", str(site), str(package)]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    work = tmp_path / "root" / "work"
    work.mkdir()
    command = [services.trainer_python(), "-m", spec["pythonModule"], *trial.args]
    trained = services.run(command, {**trial.env, "PYTHONPATH": str(site)}, work)

    assert f"from {site / 'core'}" in trained.stdout.splitlines()[0]  # the installed package
    _read_back(request, trial.metrics_file, _check(trained, trial))
