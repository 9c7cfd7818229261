"""Azure ML's container contract: a sweep trial of our job, from our request and code folder.

A trial runs the sweep's trial command, with each ``${{search_space.x}}`` replaced by the
sampled value and ``${{inputs.data}}`` by the data input's mount folder, through bash in the
uploaded code folder; MLflow points at the workspace's tracking store and at the child run
the service made for the trial. The code folder and the data are what the launch uploads
(AzureBackend.export_bundle writes the same src/ and data/ as submit); what Azure ML reads
back is the latest value of the sweep's primary metric in that run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.backends.azure import request as az
from core.backends.azure.backend import AzureBackend
from tests.contract import services

SETTINGS = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "contract-rg",
    "workspace": "contract-ws",
    "compute": "cpu-cluster",
}
SWEEP = "cloudtune-contract-12-1a2b3c4d"
TRIAL = 2
"""The child run ``<sweep>_2``: Azure ML numbers a sweep's trials from 0."""


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return services.write_digits(tmp_path_factory.mktemp("digits"))


@pytest.mark.slow
def test_sweep_trial_logs_its_primary_metric_to_the_trials_mlflow_run(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    spec = services.contract_spec(digits)
    export = tmp_path / "export"
    AzureBackend(None).export_bundle(spec, SETTINGS, str(export))  # type: ignore[arg-type]
    body = az.rest_body(spec, SETTINGS)  # what the SDK sends at submission
    properties = body["properties"]
    trial = properties["trial"]
    assert trial["codeId"] == f"./{az.CODE_DIR}" and properties["inputs"]["data"]["uri"] == "./data"

    # the job's folders on the compute node: the code snapshot (working folder) and the mount
    job = tmp_path / "root" / "mnt" / "azureml" / "cr" / "j" / "0a1b2c3d"
    workdir = shutil.copytree(export / az.CODE_DIR, job / "exe" / "wd")
    mount = shutil.copytree(
        export / az.DATA_DIR, job / "cap" / "data-capability" / "wd" / "INPUT_data"
    )
    values = services.azure_trial_values(properties["searchSpace"])
    filled = {f"search_space.{name}": text for name, (text, _) in values.items()}
    command = services.substitute(trial["command"], {**filled, "inputs.data": str(mount)})

    # the workspace's tracking store, with the sweep's run and the trial's child run in it
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores else
    uri = f"file:{tmp_path / 'mlruns'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(properties["experimentName"])
    parent = client.create_run(experiment, run_name=SWEEP)
    child = client.create_run(
        experiment,
        run_name=f"{SWEEP}_{TRIAL}",
        tags={"mlflow.parentRunId": parent.info.run_id},
    )
    env = services.base_env(
        PATH=services.python_on_path(tmp_path / "root" / "bin"),
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_ALLOW_FILE_STORE="true",
        MLFLOW_EXPERIMENT_ID=experiment,
        MLFLOW_EXPERIMENT_NAME=properties["experimentName"],
        MLFLOW_RUN_ID=child.info.run_id,
        AZUREML_RUN_ID=f"{SWEEP}_{TRIAL}",
        AZUREML_ARM_SUBSCRIPTION=SETTINGS["subscription_id"],
        AZUREML_ARM_RESOURCEGROUP=SETTINGS["resource_group"],
        AZUREML_ARM_WORKSPACE_NAME=SETTINGS["workspace"],
        # the trainer's Vertex AI file, kept out of this machine's /tmp
        CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "root" / "tmp" / "hypertune" / "output.metrics"),
        **trial["environmentVariables"],
    )
    trained = services.run(["bash", "-c", command], env, workdir)

    assert f"from {workdir / 'core'}" in trained.stdout.splitlines()[0]  # the uploaded code
    params = trained.params
    for name, (_, value) in values.items():
        assert params[name] == pytest.approx(value), name
    assert params["conv_blocks"] == 1
    assert trained.trial_and_seed == (TRIAL, services.SEED + TRIAL)
    summary = trained.metrics(workdir / "outputs")  # ./outputs is what Azure ML uploads

    run = client.get_run(child.info.run_id)
    assert run.info.status == "FINISHED"
    primary = properties["objective"]["primaryMetric"]
    history = client.get_metric_history(run.info.run_id, primary)
    assert [m.step for m in history] == list(range(1, spec.budget.epochs + 1))
    assert run.data.metrics[primary] == pytest.approx(summary["best"])  # the latest value
    assert run.data.params["learning_rate"] == str(params["learning_rate"])
    assert len(client.search_runs([experiment])) == 2  # the trainer made no run of its own
