"""SageMaker's container contract: a training job of our tuning job, from our request and tarball.

The tuning job's training job gets /opt/ml (hyperparameters.json with the request's static
values and the tuned ones as text, resourceconfig.json, inputdataconfig.json, the train
channel), the SM_* environment and ``python train.py --name value ...`` as the training
toolkit builds them (tests/contract/services.py). The trainer comes from the sourcedir.tar.gz
our launch uploads; what SageMaker reads back is the log lines its MetricDefinitions match.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.backends.sagemaker import request as rq
from core.backends.sagemaker.backend import SageMakerBackend, Staged
from core.spec import StudySpec
from core.spec.design import same_configurations
from tests.contract import services

SETTINGS = {
    "region": "us-east-1",
    "bucket": "contract-bucket",
    "role_arn": "arn:aws:iam::123456789012:role/SageMaker",
}
TRIAL_NUMBER = 3
"""The training job ``<tuning job>-003-xxxxxxxx``: trial index 2."""


def _launch(spec: StudySpec, work: Path) -> tuple[dict, Staged]:
    """Stage and build the request exactly as SageMakerBackend.submit does (nothing uploaded)."""
    backend = SageMakerBackend(None)  # type: ignore[arg-type]  # staging never reads the store
    staged = backend.stage(spec, SETTINGS, work)
    request = rq.build_request(
        spec,
        SETTINGS,
        job_name=rq.unique_job_name(spec, 12, 1_800_000_000),
        data_uri=staged.data_uri,
        trainer_uri=staged.trainer_uri,
    )
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    assert static["sagemaker_submit_directory"] == staged.trainer_uri  # the tarball's place
    channel = request["TrainingJobDefinition"]["InputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == staged.data_uri
    return request, staged


def _data(staged: Staged) -> Path:
    """The staged dataset folder, what the launch uploads to the train channel's prefix."""
    assert staged.data_dir is not None
    return staged.data_dir


def _read_back(request: dict, log: str, epochs: int) -> dict[str, list[float]]:
    """What SageMaker takes from the log: each MetricDefinition's matches, as numbers."""
    definitions = request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    found = {d["Name"]: [float(v) for v in re.findall(d["Regex"], log)] for d in definitions}
    for name, values in found.items():
        assert len(values) == epochs, f"{name}: {values} from {epochs} epoch(s)\n{log[-2000:]}"
    return found


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return services.write_digits(tmp_path_factory.mktemp("digits"))


@pytest.mark.slow
def test_training_job_reads_the_request_and_reports_through_its_metric_regexes(
    digits: Path, tmp_path: Path
) -> None:
    spec = services.contract_spec(digits)
    request, staged = _launch(spec, tmp_path / "launch")
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    tuned, expected = services.sagemaker_tuned_values(ranges)
    assert set(expected) == {p.name for p in spec.tuned_params()}
    container = services.sagemaker_container(
        tmp_path / "root", request, staged.tarball, _data(staged), tuned, TRIAL_NUMBER
    )
    assert "--batch_norm" in container.command  # the static hyperparameters reach the program
    trained = services.run(container.command, container.env, container.cwd)

    assert f"from {container.cwd / 'core'}" in trained.stdout.splitlines()[0]  # the tarball's
    params = trained.params
    for name, value in expected.items():
        assert params[name] == pytest.approx(value), name
    assert params["conv_blocks"] == 1  # the fixed value, a static hyperparameter
    assert trained.trial_and_seed == (TRIAL_NUMBER - 1, spec.seed + TRIAL_NUMBER - 1)
    summary = trained.metrics(container.model_dir)  # SM_MODEL_DIR is what SageMaker keeps
    assert summary["epochs"] == spec.budget.epochs

    found = _read_back(request, trained.log, spec.budget.epochs)
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective["MetricName"] in found
    final = found[objective["MetricName"]][-1]  # SageMaker's final value: the last match
    assert f"{final:.4f}" == f"{summary['best']:.4f}"  # printed to 4 places
    assert f"{found['val_loss'][-1]:.4f}" == f"{summary['val_loss']:.4f}"


@pytest.mark.slow
def test_same_configurations_training_job_trains_its_configuration(
    digits: Path, tmp_path: Path
) -> None:
    """The configurations list is a JSON hyperparameter: the toolkit decodes it and passes
    ``str()`` of the list on the command line, which the trainer must still read."""
    design = same_configurations(services.contract_spec(digits), 3)
    request, staged = _launch(design, tmp_path / "launch")
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert [r["Name"] for r in ranges["CategoricalParameterRanges"]] == ["config_index"]
    container = services.sagemaker_container(
        tmp_path / "root", request, staged.tarball, _data(staged), {"config_index": "2"}, 5
    )
    listed = container.command[container.command.index("--configurations") + 1]
    assert listed.startswith("[{'")  # Python's repr, not JSON: what the toolkit really passes
    trained = services.run(container.command, container.env, container.cwd)

    params = trained.params
    for name, value in design.configurations[2].items():
        assert params[name] == pytest.approx(value), name
    assert trained.trial_and_seed == (2, design.seed + 2)  # the configuration's, not job 5's
    summary = trained.metrics(container.model_dir)
    found = _read_back(request, trained.log, design.budget.epochs)
    objective = request["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert f"{found[objective['MetricName']][-1]:.4f}" == f"{summary['best']:.4f}"
