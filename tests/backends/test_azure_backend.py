"""Azure ML backend: golden sweep jobs, refusals as sentences, and the real SDKs against fakes."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import pytest

from core.backends.azure import request as ar
from core.backends.azure.backend import AzureBackend, credential_source, restore_type
from core.backends.base import Forecast
from core.backends.cloud import Assessment
from core.errors import BackendError, BackendNotReady, NotFound, SpecError
from core.spec import StudySpec, discretise
from core.spec.design import same_configurations
from core.store import RUN_STATUSES, Store
from tests.fake_azure import FAKE_TOKEN
from tests.harness import harness_fixture
from tests.harness_azure import SETTINGS, Harness, harness
from tests.specs import GRID_SPACE, every_type_spec, stored_run

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "azure"
ROOT = Path(__file__).resolve().parents[2]
BASE = {k: v for k, v in SETTINGS.items() if k != "data_uri"}


def _spec(**over: Any) -> StudySpec:
    return every_type_spec("Azure Types", 200, dropout_step=0.05, **over)


def _published() -> StudySpec:
    return StudySpec.load(ROOT / "assets" / "specs" / "published_study.json")


def _linear_space() -> list[dict[str, Any]]:
    return [
        {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1},
        {"name": "dropout_rate", "type": "float", "min": 0.15, "max": 0.45, "step": 0.1},
        {"name": "batch_size", "type": "choice", "values": [32, 64]},
        {"name": "filters", "type": "int", "min": 16, "max": 48, "step": 16},
    ]


GOLDEN_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "same_configurations": (lambda: same_configurations(_published(), 6), dict(BASE)),
    "published_bayesian": (_published, dict(BASE)),
    "random_every_type": (_spec, dict(BASE)),
    "custom_image": (
        _published,
        dict(BASE, image="cloudtunecr.azurecr.io/cloudtune-trainer:v2"),
    ),
    "grid_discrete": (
        lambda: _spec(
            strategy="grid",
            space=GRID_SPACE,
        ),
        dict(BASE),
    ),
    "hyperband_bandit": (lambda: _spec(strategy="hyperband"), dict(BASE)),
    "bayesian_discrete_train_accuracy": (
        lambda: _spec(
            strategy="bayesian",
            space=_linear_space(),
            objective={"metric": "accuracy", "goal": "max"},
        ),
        dict(BASE),
    ),
    "random_median_limits": (
        lambda: _spec(
            objective={"metric": "val_loss", "goal": "min"},
            budget={"max_trials": 8, "parallel_trials": 4, "epochs": 3, "max_minutes": 90},
        ),
        dict(
            SETTINGS,
            early_termination="median_stopping",
            trial_timeout_s=1200,
            environment="azureml:cloudtune-tf:3",
            experiment_name="my-experiment",
        ),
    ),
}


azure = harness_fixture(harness, "azure")


def _run(store: Store, spec: StudySpec, settings: dict[str, Any]) -> int:
    return stored_run(store, "azure", spec, settings)


def _launched(h: Harness, store: Store, spec: StudySpec) -> tuple[int, str]:
    run_id = _run(store, spec, h.settings)
    return run_id, h.backend.launch(spec, store.get_run(run_id))


# ----------------------------------------------------------------------------- golden jobs


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_sweep_job_matches_golden_yaml_and_rest(case: str) -> None:
    make, settings = GOLDEN_CASES[case]
    spec = make()
    yaml_text = ar.to_yaml(spec, settings)
    rest = ar.rest_body(spec, settings)
    yaml_path, rest_path = GOLDEN / f"{case}.yaml", GOLDEN / f"{case}.rest.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        yaml_path.write_text(yaml_text, encoding="utf-8")
        rest_path.write_text(json.dumps(rest, indent=2) + "\n", encoding="utf-8")
    assert yaml_text == yaml_path.read_text(encoding="utf-8")
    assert rest == json.loads(rest_path.read_text(encoding="utf-8"))


def test_log_ranges_use_natural_logarithms() -> None:
    space = ar.search_space(_spec())
    lr = space["learning_rate"]
    assert lr.type == "loguniform"
    assert lr.min_value == math.log(0.0001) and lr.max_value == math.log(0.1)
    assert lr.min_value != math.log10(0.0001)  # -9.21, not -4
    units = space["dense_units"]
    assert (units.type, units.q) == ("qloguniform", 1)
    assert (units.min_value, units.max_value) == (math.log(16), math.log(256))
    rest = ar.rest_body(_spec(), BASE)["properties"]["searchSpace"]
    assert rest["learning_rate"] == ["loguniform", [math.log(0.0001), math.log(0.1)]]
    # what Azure ML samples, exp(uniform(min, max)), lands back inside the spec's range
    assert math.isclose(math.exp(lr.min_value), 0.0001) and math.isclose(
        math.exp(lr.max_value), 0.1
    )


def test_parameter_types_map_to_sweep_distributions() -> None:
    space = ar.search_space(_spec())
    assert space["dropout_rate"].type == "quniform"  # 0.2..0.4 lies on multiples of 0.05
    assert (space["dropout_rate"].min_value, space["dropout_rate"].q) == (0.2, 0.05)
    assert (space["conv_blocks"].type, space["conv_blocks"].q) == ("quniform", 1)
    assert (space["filters"].min_value, space["filters"].max_value, space["filters"].q) == (
        16,
        64,
        16,
    )
    assert space["optimizer"].values == ["adam", "sgd"]
    assert "kernel_size" not in space  # fixed: passed on the command line instead
    request = ar.build_request(_spec(), BASE)
    assert "--kernel_size 5" in request["trial"]["command"]
    assert "--learning_rate ${{search_space.learning_rate}}" in request["trial"]["command"]
    # a step off the multiples of itself cannot be a quniform: the exact grid becomes a choice
    off_grid = ar.search_space(_spec(space=_linear_space()))
    assert off_grid["dropout_rate"].type == "choice"
    assert off_grid["dropout_rate"].values == [0.15, 0.25, 0.35, 0.45]


def test_published_study_translates_as_in_the_paper() -> None:
    request = ar.build_request(_published(), BASE)
    assert request["sampling_algorithm"] == "bayesian"
    assert "early_termination" not in request
    assert request["limits"] == {"max_concurrent_trials": 3, "max_total_trials": 20}
    # the trainer's running best: Azure ML reads the latest value, the best epoch so far
    assert request["objective"] == {"goal": "maximize", "primary_metric": "val_accuracy_best"}
    assert request["search_space"]["learning_rate"] == {
        "type": "uniform",
        "min_value": 0.001,
        "max_value": 0.1,
    }
    assert request["compute"] == "azureml:cpu-cluster"
    assert request["trial"]["environment"] == ar.CURATED_TF_ENVIRONMENT
    assert request["trial"]["code"] == "./src"


def test_keras_metric_names_become_the_names_the_trainer_logs() -> None:
    request = ar.build_request(_spec(objective={"metric": "loss", "goal": "min"}), BASE)
    assert request["objective"] == {"goal": "minimize", "primary_metric": "train_loss_best"}
    assert ar.keras_metric("train_accuracy") == "accuracy"
    assert ar.keras_metric("val_accuracy") == "val_accuracy"


def test_preview_yaml_loads_with_the_sdks_own_loader(tmp_path: Path) -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.sweep import SweepJob

    for sub in ("src", "data"):
        (tmp_path / sub).mkdir()
    spec = _spec(strategy="hyperband")
    (tmp_path / "job.yml").write_text(ar.to_yaml(spec, BASE), encoding="utf-8")
    loaded = load_job(tmp_path / "job.yml")
    assert isinstance(loaded, SweepJob)
    job: Any = loaded
    assert job.search_space["learning_rate"].min_value == math.log(0.0001)
    assert job.early_termination.type == "bandit"
    assert job.limits.max_total_trials == 6
    assert job.experiment_name == "cloudtune-Azure-Types"


# ----------------------------------------------------------------------------- refusals


def test_bayesian_refuses_log_ranges_with_a_sentence() -> None:
    with pytest.raises(SpecError) as err:
        ar.build_request(_spec(strategy="bayesian"), BASE)
    problems = err.value.problems
    assert len(problems) == 2  # learning_rate (float log) and dense_units (int log)
    assert problems[0].startswith("learning_rate: Azure ML's Bayesian sampling accepts only")
    assert "strategy random" in problems[0] and "choice" in problems[0]
    assert problems[1].startswith("dense_units:")


def test_bayesian_refuses_an_early_termination_policy() -> None:
    with pytest.raises(SpecError, match="no early termination policy with Bayesian"):
        ar.build_request(_published(), dict(BASE, early_termination="bandit"))
    with pytest.raises(SpecError, match="early_termination 'sometimes' is unknown"):
        ar.build_request(_spec(), dict(BASE, early_termination="sometimes"))


def test_grid_needs_choices_and_points_to_discretise() -> None:
    continuous = dataclasses.replace(_published(), strategy="grid")  # past parse_spec's check
    with pytest.raises(SpecError) as err:
        ar.build_request(continuous, BASE)
    text = str(err.value)
    assert "grid sampling takes only choice parameters" in text
    assert "discretise(spec, {'learning_rate': step})" in text and "dropout_rate" in text
    fixed = discretise(continuous, {"learning_rate": 0.033, "dropout_rate": 0.1})
    space = ar.build_request(fixed, BASE)["search_space"]
    assert space["learning_rate"] == {"values": [0.001, 0.034, 0.067, 0.1], "type": "choice"}
    assert space["dropout_rate"]["values"] == [0.2, 0.3, 0.4]


def test_hyperband_becomes_random_with_a_bandit_policy_and_says_so() -> None:
    spec = _spec(strategy="hyperband")
    request = ar.build_request(spec, BASE)
    assert request["sampling_algorithm"] == {"type": "random", "seed": 7}
    assert request["early_termination"]["type"] == "bandit"
    assert request["early_termination"]["slack_factor"] == ar.HYPERBAND_SLACK
    notes = ar.translation_notes(spec, BASE)
    assert any("Azure ML has no Hyperband" in n and "BanditPolicy" in n for n in notes)
    assert "# Azure ML has no Hyperband" in ar.to_yaml(spec, BASE)


def test_launch_refuses_before_touching_azure(store: Store) -> None:
    client = _double()
    backend = AzureBackend(store, client=client)
    spec = _spec(strategy="bayesian")
    with pytest.raises(SpecError):
        backend.launch(spec, store.get_run(_run(store, spec, dict(SETTINGS))))
    client.jobs.create_or_update.assert_not_called()


# ----------------------------------------------------------------------------- statuses, check


def test_every_azure_status_maps_to_a_store_status() -> None:
    from azure.ai.ml._restclient.arm_ml_service.models import JobStatus  # what jobs.get gives

    for name in ar.AZURE_STATUS:
        assert ar.map_status(name)[0] in RUN_STATUSES
    assert ar.map_status("Queued") == ("queued", "queued for compute")
    assert ar.map_status(JobStatus.COMPLETED) == ("completed", None)
    assert ar.map_status("Canceled")[0] == "cancelled"
    assert ar.map_status("CancelRequested")[0] == "running"  # trials may still finish
    assert ar.map_status("Reticulating") == ("running", "Azure ML status Reticulating")


@pytest.fixture()
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in list(os.environ):
        if var.startswith(("AZURE_", "IDENTITY_", "MSI_")):
            monkeypatch.delenv(var)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))
    return empty


def test_check_names_each_missing_thing(store: Store, no_credentials: Path) -> None:
    problems = AzureBackend(store).check({})
    assert all(isinstance(p, str) for p in problems)
    for label in ("Subscription ID", "Resource group", "Azure ML workspace", "Compute cluster"):
        assert any(p.endswith(f"set Settings → Azure ML → {label}.") for p in problems)
    assert problems[-1].startswith("No Azure credentials found: run `az login`")
    bad = AzureBackend(store).check(dict(BASE, subscription_id="my-sub", early_termination="x"))
    assert any("'my-sub' is not a subscription id" in p for p in bad)
    assert any("early_termination 'x' is unknown" in p for p in bad)


def test_credentials_are_found_without_reading_them(
    store: Store, no_credentials: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert credential_source(BASE) is None
    assert credential_source(dict(BASE, managed_identity=True)) == "managed identity"
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/f"}
    assert credential_source(BASE, env) == "workload identity"
    # the Azure CLI: installed, with a profile that lists a subscription
    az = no_credentials / "az"
    az.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    az.chmod(0o755)
    config = tmp_path / "azure-config"
    config.mkdir()
    (config / "azureProfile.json").write_text('{"subscriptions": []}', encoding="utf-8")
    assert credential_source(BASE) is None  # installed but not logged in
    (config / "azureProfile.json").write_text('{"subscriptions": [{"id": "x"}]}', encoding="utf-8")
    assert credential_source(BASE) == "Azure CLI login (az login)"
    # a service principal: found, and its secret appears in nothing we return
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "client")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t-value-xyz")
    backend = AzureBackend(store)
    # with credentials found, check() reads the compute from the workspace (tested against the
    # fake in test_readiness.py); here it would sign in to Microsoft Entra ID for real
    asked: list[Any] = []
    monkeypatch.setattr(backend, "compute_check", lambda s: asked.append(s) or Assessment())
    assert backend.check(BASE) == [] and asked == [BASE]
    said = [backend.credential_found(BASE), *backend.check({}), backend.preview(_spec(), BASE)]
    assert said[0] == "environment variables (service principal)"
    assert not any("s3cr3t" in str(s) for s in said)


# ----------------------------------------------------------------------------- submission


def _double() -> Any:
    """An MLClient test double with the SDK's own signatures (create_autospec)."""
    from azure.ai.ml import MLClient
    from azure.ai.ml.operations import ComputeOperations, JobOperations

    client = create_autospec(MLClient, instance=True)
    client.jobs = create_autospec(JobOperations, instance=True)
    client.compute = create_autospec(ComputeOperations, instance=True)
    return client


def test_launch_submits_the_previewed_job_with_trainer_and_data(store: Store) -> None:
    seen: dict[str, Any] = {}

    def create(job: Any, **kwargs: Any) -> Any:
        seen["job"] = job
        seen["code"] = sorted(p.name for p in Path(job.trial.code).iterdir())
        seen["data"] = sorted(p.name for p in Path(job.inputs["data"].path).iterdir())
        return SimpleNamespace(name=job.name, status="NotStarted")

    client = _double()
    client.jobs.create_or_update.side_effect = create
    client.compute.get.return_value = SimpleNamespace(size="Standard_NC4as_T4_v3")
    settings = {k: v for k, v in BASE.items() if k != "instance_type"}
    backend = AzureBackend(store, client=client)
    spec = _spec()
    run_id = _run(store, spec, settings)
    handle = backend.launch(spec, store.get_run(run_id))

    client.jobs.create_or_update.assert_called_once()
    client.compute.get.assert_called_once_with("cpu-cluster")
    job = seen["job"]
    assert job.name == handle and handle.startswith(f"cloudtune-Azure-Types-{run_id}-")
    assert "train.py" in seen["code"]
    assert "cloudtune-dataset.json" in seen["data"]  # the staged digits subset
    submitted = ar.job_to_dict(job)
    submitted["trial"]["code"] = "./src"
    submitted["inputs"]["data"]["path"] = "./data"
    assert submitted.pop("name") == handle
    assert submitted == ar.build_request(spec, settings)  # what was previewed is what is sent
    run = store.get_run(run_id)
    assert (run.handle, run.status, run.instance_type) == (
        handle,
        "running",
        "Standard_NC4as_T4_v3",
    )
    assert not Path(job.trial.code).exists()  # the upload folder is cleaned up


def test_launch_turns_azure_errors_into_sentences(store: Store) -> None:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from core.runs import start_run

    client = _double()
    kwargs = {"client": client}
    client.jobs.create_or_update.side_effect = HttpResponseError(message="Quota exceeded")
    with pytest.raises(BackendError, match="refused to submit the sweep job .*Quota exceeded"):
        start_run(store, _published(), "azure", settings=SETTINGS, backend_kwargs=kwargs)
    failed = store.list_runs()[0]
    assert failed.status == "failed" and "Quota exceeded" in (failed.error or "")
    client.jobs.create_or_update.side_effect = ClientAuthenticationError(message="expired")
    with pytest.raises(BackendNotReady, match="refused the credentials.*az login"):
        start_run(store, _published(), "azure", settings=SETTINGS, backend_kwargs=kwargs)


# ----------------------------------------------------------------------------- the real MLClient


def test_status_comes_from_the_real_mlclient_over_http(azure: Harness, store: Store) -> None:
    assert azure.fake is not None
    run_id, handle = _launched(azure, store, _published())
    expected = {
        "NotStarted": "queued",
        "Preparing": "queued",
        "Running": "running",
        "CancelRequested": "running",
        "Failed": "failed",
    }
    for status, mapped in expected.items():
        azure.fake.set_status(handle, status)
        result = azure.backend.poll(store.get_run(run_id))
        assert result.status == mapped
        assert store.get_run(run_id).status == mapped
    assert result.error is not None and f"https://ml.azure.com/runs/{handle}" in result.error
    gets = [path for method, path in azure.fake.calls if method == "GET"]
    assert gets[0].endswith("/computes/cpu-cluster")  # the launch reads the cluster's VM size
    assert len(gets) == 6 and all(path.endswith(f"/jobs/{handle}") for path in gets[1:])
    assert set(azure.fake.authorizations) == {f"Bearer {FAKE_TOKEN}"}


def test_an_unknown_job_is_a_sentence(azure: Harness, store: Store) -> None:
    run_id = _run(store, _published(), azure.settings)
    store.update_run(run_id, handle="no-such-sweep")
    with pytest.raises(NotFound, match="found nothing to read the sweep job no-such-sweep"):
        azure.backend.poll(store.get_run(run_id))


def test_trials_are_read_through_mlflow(azure: Harness, store: Store) -> None:
    fake = azure.fake
    assert fake is not None
    spec = _spec()
    run_id, handle = _launched(azure, store, spec)
    fake.set_status(handle, "Running")
    params: dict[str, Any] = {"learning_rate": 0.01, "dropout_rate": 0.25, "batch_size": 64}
    params.update({"optimizer": "sgd", "conv_blocks": 2.0, "filters": 32.0, "dense_units": 40.0})
    fake.add_trial(handle, 0, status="RUNNING", epochs=1, params=params, accuracy=0.7)
    fake.add_trial(handle, 1, status="FAILED", epochs=1)
    parent = fake.parent_run(handle)
    fake.mlflow().create_run(  # a helper child run of the sweep that is no trial
        fake.experiment_id(handle),
        run_name=f"{handle}_preparation",
        tags={"mlflow.parentRunId": parent},
    )
    result = azure.backend.poll(store.get_run(run_id))
    assert (result.status, result.new_trials) == ("running", 2)
    first, second = store.list_trials(run_id)
    assert (first.number, first.status, first.ended_at) == (0, "running", None)
    typed = {"conv_blocks": 2, "filters": 32, "dense_units": 40, "kernel_size": 5}
    assert first.params == {**params, **typed}  # ints restored; the fixed kernel_size added
    assert isinstance(first.params["batch_size"], int) and first.params["optimizer"] == "sgd"
    assert first.objective == 0.7 and first.instance_type == "Standard_DS3_v2"
    assert (second.status, second.error) == ("failed", f"The Azure ML trial {handle}_1 failed.")
    # the running trial finishes with two epochs: re-read, no duplicate rows
    client = fake.mlflow()
    assert first.started_at is not None
    began = int(first.started_at * 1000)
    client.log_metric(first.trial_key, "val_accuracy", 0.8, step=2, timestamp=began + 80_000)
    client.set_terminated(first.trial_key, "FINISHED", end_time=began + 90_000)
    fake.set_status(handle, "Completed")
    result = azure.backend.poll(store.get_run(run_id))
    assert (result.status, result.new_trials) == ("completed", 1)
    trials = store.list_trials(run_id)
    assert [t.status for t in trials] == ["completed", "failed"]
    done = trials[0]
    assert done.objective == 0.8 and done.duration_s == pytest.approx(90.0)
    assert done.cost_usd == pytest.approx(90 / 3600 * 0.229)  # Standard_DS3_v2 in eastus
    epochs = store.list_epochs(done.id)
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert set(epochs[0]) >= {"val_accuracy", "accuracy", "loss", "val_loss", "wall_s"}
    assert epochs[1]["val_accuracy"] == 0.8
    assert done.cost_usd is not None and trials[1].cost_usd is not None
    assert store.get_run(run_id).cost_usd == pytest.approx(done.cost_usd + trials[1].cost_usd)


def test_restore_type_follows_the_spec() -> None:
    spec = _spec()
    assert restore_type("batch_size", "64", spec.param("batch_size")) == 64
    assert restore_type("batch_size", "64.0", spec.param("batch_size")) == 64
    assert restore_type("optimizer", "sgd", spec.param("optimizer")) == "sgd"
    assert restore_type("filters", "48.0", spec.param("filters")) == 48
    assert restore_type("learning_rate", "0.01", spec.param("learning_rate")) == 0.01
    assert restore_type("kernel_size", "3", spec.param("kernel_size")) == 5  # fixed wins
    assert restore_type("dense_units", 20.0, None) == 20  # an int the CNN knows


def test_cost_cap_stops_the_sweep(azure: Harness, store: Store) -> None:
    assert azure.fake is not None
    spec = _spec(budget={"max_trials": 6, "parallel_trials": 2, "epochs": 2, "max_cost_usd": 0.005})
    run_id, handle = _launched(azure, store, spec)
    azure.fake.set_status(handle, "Running")
    for index in range(2):  # 2 x 60 s at $0.229/h = $0.0076
        azure.fake.add_trial(handle, index)
    result = azure.backend.poll(store.get_run(run_id))
    assert str(result.detail).startswith("stopped: budget reached: budget.max_cost_usd")
    assert azure.fake.cancels == [handle]
    result = azure.backend.poll(store.get_run(run_id))  # Azure ML has cancelled it
    assert result.status == "stopped" and "max_cost_usd" in str(result.detail)


def test_cancel_restart_and_import(azure: Harness, store: Store) -> None:
    fake = azure.fake
    assert fake is not None
    spec = _published()
    run_id, handle = _launched(azure, store, spec)
    azure.backend.cancel(store.get_run(run_id))
    assert fake.cancels == [handle]
    assert store.get_run(run_id).status_detail == "cancelled by the user"
    restarted = AzureBackend(store, **azure.backend_kwargs)  # an app restart
    assert restarted.poll(store.get_run(run_id)).status == "cancelled"
    # a finished sweep submitted elsewhere (its own search space), imported by name
    elsewhere = _spec()
    fake.put(ar.build_sweep_job(elsewhere, SETTINGS), name="finished-sweep", status="Completed")
    for index in range(3):
        fake.add_trial("finished-sweep", index)
    other = _run(store, spec, azure.settings)
    result = restarted.import_job("finished-sweep", store.get_run(other))
    assert (result.status, result.new_trials) == ("completed", 3)
    assert store.get_run(other).handle == "finished-sweep"
    imported = store.list_trials(other)
    assert [t.number for t in imported] == [0, 1, 2]
    searched = {p.name for p in elsewhere.space if p.name != "kernel_size"} | {"momentum"}
    # momentum: the run's spec (the published preset) fixes it, so every trial records it
    assert all(set(t.params) == searched for t in imported)
    assert all(isinstance(t.params["dense_units"], int) for t in imported)


def test_import_refuses_a_job_that_is_no_sweep(azure: Harness, store: Store) -> None:
    from azure.ai.ml import command

    assert azure.fake is not None
    job = command(command="python train.py", code="./src", environment="azureml:tf:1")
    azure.fake.put(job._to_job() if hasattr(job, "_to_job") else job, name="one-command")
    run_id = _run(store, _published(), azure.settings)
    backend: Any = azure.backend
    with pytest.raises(BackendError, match="is a command job, not a sweep"):
        backend.import_job("one-command", store.get_run(run_id))
    with pytest.raises(NotFound):
        backend.import_job("missing-job", store.get_run(run_id))


def test_the_conformance_contract(azure: Harness, store: Store) -> None:
    spec = _published()
    assert azure.backend.check(azure.settings) == []
    assert isinstance(azure.backend.estimate(spec, azure.settings), Forecast)
    run_id, handle = _launched(azure, store, spec)
    assert store.get_run(run_id).handle == handle
    assert azure.backend.poll(store.get_run(run_id)).status in RUN_STATUSES
    azure.finish(handle, 2)
    assert azure.backend.poll(store.get_run(run_id)).status == "completed"
    trials = store.list_trials(run_id, status="completed")
    assert len(trials) == 2
    assert all(
        t.objective is not None and set(t.params) == {p.name for p in spec.space} for t in trials
    )
    assert azure.backend.poll(store.get_run(run_id)).new_trials == 0
    assert len(store.list_trials(run_id)) == 2


# ----------------------------------------------------------------------------- preview, export


def test_export_bundle_is_submittable(store: Store, tmp_path: Path) -> None:
    from azure.ai.ml import load_job

    backend = AzureBackend(store, client=_double())
    dest = tmp_path / "bundle"
    spec = _spec()
    assert backend.export_bundle(spec, BASE, str(dest)) == str(dest)
    assert (dest / "src" / "train.py").is_file()
    assert (dest / "data" / "cloudtune-dataset.json").is_file()
    readme = (dest / "README.txt").read_text(encoding="utf-8")
    assert "az ml job create --file job.yml --subscription 00000000-0000" in readme
    assert (dest / "job.yml").read_text(encoding="utf-8") == backend.preview(spec, BASE)
    job: Any = load_job(dest / "job.yml")
    assert (dest / job.trial.code).resolve() == (dest / "src").resolve()
    with pytest.raises(BackendError, match="not empty"):
        backend.export_bundle(spec, BASE, str(dest))
    remote = tmp_path / "remote"
    backend.export_bundle(spec, SETTINGS, str(remote))
    assert not (remote / "data").exists()  # data_uri: the data is already in Azure


def test_importing_the_backend_loads_no_sdk() -> None:
    code = (
        "import sys, core.backends.azure.backend, core.backends.azure.request;"
        "print(sorted(m for m in ('azure.ai.ml', 'mlflow', 'azure.identity') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_what_the_trainer_logs_is_what_the_reader_reads(
    azure: Harness, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's own MLflow logging (in a trial job's run) read back by poll."""
    from core.training.model import resolve_params
    from core.training.train import MlflowLogger

    fake = azure.fake
    assert fake is not None
    run_id, handle = _launched(azure, store, _published())
    fake.set_status(handle, "Running")
    child = fake.mlflow().create_run(  # Azure ML opens each trial job's run, named <sweep>_<n>
        fake.experiment_id(handle),
        run_name=f"{handle}_0",
        tags={"mlflow.parentRunId": fake.parent_run(handle)},
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", fake.tracking_uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", child.info.run_id)
    params = resolve_params({"learning_rate": "0.02", "batch_size": "64.0", "dropout_rate": 0.3})
    logger = MlflowLogger.start(dict(os.environ), params)
    assert logger is not None
    for epoch, accuracy in ((1, 0.55), (2, 0.61)):
        metrics = {"train_loss": 1.0 / epoch, "train_accuracy": accuracy - 0.05}
        logger.sink(epoch, {**metrics, "val_loss": 1.2 / epoch, "val_accuracy": accuracy})
    logger.finish(True)
    fake.set_status(handle, "Completed")

    assert azure.backend.poll(store.get_run(run_id)).status == "completed"
    (trial,) = store.list_trials(run_id)
    assert (trial.number, trial.status, trial.objective) == (0, "completed", 0.61)
    fixed = {"optimizer": "sgd", "momentum": 0.9}  # the published preset's fixed values
    assert trial.params == {"learning_rate": 0.02, "batch_size": 64, "dropout_rate": 0.3} | fixed
    epochs = store.list_epochs(trial.id)
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[1]["accuracy"] == pytest.approx(0.56) and epochs[1]["loss"] == 0.5
    assert trial.metrics["val_accuracy"] == 0.61 and "train_loss" not in trial.metrics


def test_an_unreadable_tracking_store_is_a_sentence(azure: Harness, store: Store) -> None:
    run_id, handle = _launched(azure, store, _published())
    broken = dict(azure.backend_kwargs, tracking_uri="file:///nonexistent/mlruns")
    with pytest.raises(BackendError, match=f"Cannot read the trials of {handle} through MLflow"):
        AzureBackend(store, **broken).poll(store.get_run(run_id))


def test_trials_are_priced_by_the_clusters_real_vm_size(azure: Harness, store: Store) -> None:
    """The workspace's compute says what the trials run on, whatever instance_type says."""
    from core.costs.pricing import hourly_price

    assert azure.fake is not None
    spec = _spec(budget={"max_trials": 2, "parallel_trials": 1, "epochs": 2})
    settings = {**azure.settings, "compute": "gpu-cluster", "instance_type": "Standard_DS3_v2"}
    run_id = _run(store, spec, settings)
    handle = azure.backend.launch(spec, store.get_run(run_id))
    run = store.get_run(run_id)
    assert run.instance_type == "Standard_NC6s_v3"  # STANDARD_NC6S_V3, as the catalog spells it
    azure.fake.finish(handle, 1)
    azure.backend.poll(store.get_run(run_id))
    (trial,) = store.list_trials(run_id)
    price = hourly_price("azure", "Standard_NC6s_v3", region="eastus")
    assert price is not None and price > 10 * (hourly_price("azure", "Standard_DS3_v2") or 0)
    assert trial.instance_type == "Standard_NC6s_v3"
    assert trial.cost_usd == pytest.approx(trial.billable_s * price / 3600)
