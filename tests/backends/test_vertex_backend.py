"""Vertex AI backend: golden requests, type restoration, and the real SDKs against a loopback fake."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from core.backends.vertex import request as vr
from core.errors import BackendError, BackendNotReady, NotFound, SpecError
from core.spec import StudySpec, discretise, parse_spec
from core.spec.design import same_configurations
from core.store import RUN_STATUSES, Store
from tests.harness import harness_fixture
from tests.harness_vertex import SETTINGS, Harness, harness, stand_in_bundle
from tests.specs import GRID_SPACE, every_type_spec, stored_run

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "vertex"
ROOT = Path(__file__).resolve().parents[2]


def _spec(**over: Any) -> StudySpec:
    return every_type_spec("Vertex Types", 300, batch_sizes=(128, 32, 64), **over)


def _grid_spec() -> StudySpec:
    return _spec(
        strategy="grid",
        space=GRID_SPACE,
    )


GOLDEN_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "same_configurations": (
        lambda: same_configurations(
            StudySpec.load(ROOT / "assets" / "specs" / "published_study.json"), 6
        ),
        dict(SETTINGS),
    ),
    "published_bayesian": (
        lambda: StudySpec.load(ROOT / "assets" / "specs" / "published_study.json"),
        dict(SETTINGS),
    ),
    "random_every_type": (_spec, dict(SETTINGS, job_name="types-job")),
    "grid_discrete": (_grid_spec, dict(SETTINGS, region="europe-west4")),
    "custom_image": (
        _spec,
        dict(SETTINGS, image="us-central1-docker.pkg.dev/cloudtune-test/ml/trainer:v7"),
    ),
    "bayesian_gpu_median": (
        lambda: _spec(strategy="bayesian", objective={"metric": "val_loss", "goal": "min"}),
        dict(
            SETTINGS,
            instance_type="n1-standard-8",
            accelerator_type="NVIDIA_TESLA_T4",
            accelerator_count=1,
            early_stopping="median",
            max_failed_trials=3,
            service_account="trainer@cloudtune-test.iam.gserviceaccount.com",
        ),
    ),
}


vertex = harness_fixture(harness, "vertex")


def _run(store: Store, spec: StudySpec, settings: dict[str, Any]) -> int:
    return stored_run(store, "vertex", spec, settings)


# ----------------------------------------------------------------------------- golden requests


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_request_matches_golden(case: str) -> None:
    make, settings = GOLDEN_CASES[case]
    request = vr.build_request(make(), settings)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(request, indent=2) + "\n", encoding="utf-8")
    assert request == json.loads(path.read_text(encoding="utf-8"))


def test_published_study_translates_as_in_the_paper() -> None:
    spec = StudySpec.load(ROOT / "assets" / "specs" / "published_study.json")
    req = vr.build_request(spec, SETTINGS)
    assert (req["maxTrialCount"], req["parallelTrialCount"]) == (20, 3)
    assert "algorithm" not in req["studySpec"]  # bayesian: the service default
    params = {p["parameterId"]: p for p in req["studySpec"]["parameters"]}
    assert params["learning_rate"]["doubleValueSpec"] == {"minValue": 0.001, "maxValue": 0.1}
    assert params["learning_rate"]["scaleType"] == "UNIT_LINEAR_SCALE"
    assert params["batch_size"]["discreteValueSpec"] == {"values": [32.0, 64.0, 128.0]}
    assert req["studySpec"]["metrics"] == [{"metricId": "val_accuracy", "goal": "MAXIMIZE"}]
    pool = req["trialJobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"] == {"machineType": "n1-standard-4"}
    # No prebuilt TensorFlow training image is current (2.17's ended 2026-07-11): the trial
    # runs CloudTune's own container, whose entry point is the trainer.
    assert "pythonPackageSpec" not in pool
    container = pool["containerSpec"]
    assert container["imageUri"] == (
        "us-central1-docker.pkg.dev/cloudtune-test/cloudtune/cloudtune-trainer:latest"
    )
    assert "--epochs=3" in container["args"]


def test_a_prebuilt_image_past_end_of_availability_is_refused(store: Store) -> None:
    old = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
    settings = dict(SETTINGS, image=old)
    pool = vr.build_request(_spec(), settings)["trialJobSpec"]["workerPoolSpecs"][0]
    assert pool["pythonPackageSpec"]["executorImageUri"] == old  # a prebuilt: package mode
    from google.auth.credentials import AnonymousCredentials

    from core.backends.vertex.backend import VertexBackend

    backend = VertexBackend(store, credentials=AnonymousCredentials())
    problems = [p for p in backend.check(settings) if "end of availability" in p]
    assert len(problems) == 1 and "2026-07-11" in problems[0]
    assert "Settings → Vertex AI → Custom training image" in problems[0]
    assert not [p for p in backend.check(SETTINGS) if "end of availability" in p]


def test_an_image_near_end_of_availability_is_a_warning_not_a_refusal() -> None:
    from datetime import date

    from core.backends import containers

    old = "europe-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
    warnings, refusals = containers.image_problems("vertex", old, today=date(2026, 6, 1))
    assert refusals == [] and "reaches its end of availability on 2026-07-11" in warnings[0]
    assert containers.image_problems("vertex", old, today=date(2026, 1, 1)) == ([], [])
    assert containers.current_prebuilt("vertex", "cpu", date(2026, 7, 11)) is not None
    assert containers.current_prebuilt("vertex", "cpu", date(2026, 7, 12)) is None


def test_only_tensorflow_and_keras_are_left_to_the_prebuilt_image(tmp_path: Path) -> None:
    from core.backends.vertex.backend import _setup_py

    (tmp_path / "train.py").write_text("", encoding="utf-8")
    (tmp_path / "requirements.txt").write_text(
        "# header\ntensorflow==2.17.0\ntensorflow_cpu>=2\nkeras\ntensorflow-datasets==4.9\n"
        "pillow==13.0.0\n",
        encoding="utf-8",
    )
    setup = _setup_py(tmp_path)
    assert "install_requires=['tensorflow-datasets==4.9', 'pillow==13.0.0']" in setup


def test_every_parameter_type_maps_to_its_vertex_spec() -> None:
    params = {
        p["parameterId"]: p for p in vr.build_request(_spec(), SETTINGS)["studySpec"]["parameters"]
    }
    assert params["learning_rate"]["scaleType"] == "UNIT_LOG_SCALE"
    assert "doubleValueSpec" in params["dropout_rate"]
    assert params["batch_size"]["discreteValueSpec"]["values"] == [32.0, 64.0, 128.0]  # sorted
    assert params["optimizer"]["categoricalValueSpec"]["values"] == ["adam", "sgd"]
    assert params["conv_blocks"]["integerValueSpec"] == {"minValue": "1", "maxValue": "3"}
    assert params["filters"]["discreteValueSpec"]["values"] == [16.0, 32.0, 48.0, 64.0]
    assert params["dense_units"]["scaleType"] == "UNIT_LOG_SCALE"
    assert "kernel_size" not in params  # fixed: a plain argument
    args = vr.build_request(_spec(), SETTINGS)["trialJobSpec"]["workerPoolSpecs"][0][
        "containerSpec"
    ]["args"]
    assert "--kernel_size=5" in args and not any("batch_norm" in a for a in args)
    assert not any(a.startswith("--dataset") for a in args)  # the staged folder says it all
    plain = vr.build_request(_spec(model={"batch_norm": False}), SETTINGS)
    assert (
        "--batch_norm=false" in plain["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]
    )


def test_strategies_map_to_search_algorithms() -> None:
    assert vr.build_request(_spec(), SETTINGS)["studySpec"]["algorithm"] == "RANDOM_SEARCH"
    assert vr.build_request(_grid_spec(), SETTINGS)["studySpec"]["algorithm"] == "GRID_SEARCH"
    bayes = vr.build_request(_spec(strategy="bayesian"), SETTINGS)["studySpec"]
    assert bayes.get("algorithm", "ALGORITHM_UNSPECIFIED") == "ALGORITHM_UNSPECIFIED"


def test_grid_with_a_continuous_float_says_how_to_discretise() -> None:
    spec = dataclasses.replace(_spec(), strategy="grid")  # parse_spec would refuse it
    with pytest.raises(SpecError, match="discretise") as err:
        vr.build_request(spec, SETTINGS)
    assert "learning_rate" in str(err.value)
    fixed = discretise(_spec(), {"learning_rate": 0.02, "dropout_rate": 0.1})
    req = vr.build_request(dataclasses.replace(fixed, strategy="grid"), SETTINGS)
    assert all("doubleValueSpec" not in p for p in req["studySpec"]["parameters"])


def test_hyperband_is_refused_with_median_stopping_offered() -> None:
    spec = _spec(strategy="hyperband")
    with pytest.raises(BackendError, match="Hyperband") as err:
        vr.build_request(spec, SETTINGS)
    assert "median" in str(err.value)
    near, settings = vr.with_median_stopping(spec, SETTINGS)
    assert near.strategy == "bayesian" and settings["early_stopping"] == "median"
    study = vr.build_request(near, settings)["studySpec"]
    assert study["medianAutomatedStoppingSpec"] == {}  # use_elapsed_duration false: steps


def test_gpu_setting_selects_the_gpu_image_and_regional_registry() -> None:
    gpu = dict(SETTINGS, region="europe-west4", accelerator_type="NVIDIA_TESLA_T4")
    pool = vr.build_request(_spec(), gpu)["trialJobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] == 1
    # No GPU prebuilt is current either: CloudTune's image, in the region's Artifact Registry
    image = pool["containerSpec"]["imageUri"]
    assert image == "europe-west4-docker.pkg.dev/cloudtune-test/cloudtune/cloudtune-trainer:latest"
    assert vr._registry(gpu) == "europe" and vr._registry({"region": "asia-east1"}) == "asia"


# ----------------------------------------------------------------------------- reading jobs back


def _wire_job(state: Any, trials: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "projects/p/locations/us-central1/hyperparameterTuningJobs/9",
        "state": state,
        "studySpec": {
            "metrics": [{"metricId": "val_accuracy", "goal": 1}],
            "parameters": [
                {"parameterId": "batch_size", "discreteValueSpec": {"values": [32, 64]}},
                {"parameterId": "conv_blocks", "integerValueSpec": {"minValue": "1"}},
                {"parameterId": "optimizer", "categoricalValueSpec": {"values": ["adam"]}},
                {"parameterId": "learning_rate", "doubleValueSpec": {"minValue": 0.001}},
            ],
        },
        "trials": trials,
    }


_TRIAL = {
    "id": "3",
    "state": 4,
    "parameters": [
        {"parameterId": "batch_size", "value": 64.0},
        {"parameterId": "conv_blocks", "value": 2.0},
        {"parameterId": "optimizer", "value": "adam"},
        {"parameterId": "learning_rate", "value": 0.01},
    ],
    "finalMeasurement": {"stepCount": "2", "metrics": [{"metricId": "val_accuracy", "value": 0.9}]},
    "measurements": [
        {
            "stepCount": "1",
            "elapsedDuration": "30.5s",
            "metrics": [{"metricId": "val_accuracy", "value": 0.8}],
        }
    ],
    "startTime": "2025-03-01T09:00:00.123456789Z",
    "endTime": "2025-03-01T09:01:30.123456789Z",
}


def test_values_come_back_with_the_spec_types() -> None:
    spec = _spec(
        space=[
            {"name": "batch_size", "type": "choice", "values": [32, 64]},
            {"name": "conv_blocks", "type": "int", "min": 1, "max": 3},
            {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
            {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1},
        ]
    )
    for known in (spec, None):  # with the run's spec, and from the job's own (import)
        rec = vr.parse_job(_wire_job(4, [_TRIAL]), known).trials[0]
        assert rec.params == {
            "batch_size": 64,
            "conv_blocks": 2,
            "optimizer": "adam",
            "learning_rate": 0.01,
        }
        assert type(rec.params["batch_size"]) is int and type(rec.params["conv_blocks"]) is int
        assert (rec.key, rec.number, rec.status, rec.objective) == ("3", 2, "completed", 0.9)
        assert rec.duration_s == pytest.approx(90.0)
        assert [(e.epoch, dict(e.metrics), e.wall_s) for e in rec.epochs] == [
            (1, {"val_accuracy": 0.8}, 30.5)
        ]


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (1, "queued"),
        ("JOB_STATE_PENDING", "queued"),
        (3, "running"),
        ("JOB_STATE_SUCCEEDED", "completed"),
        (5, "failed"),
        (6, "running"),
        ("JOB_STATE_CANCELLED", "cancelled"),
        (9, "failed"),
        (11, "completed"),
    ],
)
def test_job_states_map_to_run_statuses(state: Any, status: str) -> None:
    assert vr.job_status(state)[0] == status
    assert status in RUN_STATUSES


def test_trials_left_active_by_an_ended_job_are_stopped() -> None:
    report = vr.parse_job(_wire_job(7, [dict(_TRIAL, state=2, endTime=None)]), None)
    assert report.status == "cancelled" and report.trials[0].status == "stopped"
    report = vr.parse_job(_wire_job(3, [dict(_TRIAL, state="INFEASIBLE")]), None)
    assert report.trials[0].status == "failed" and report.trials[0].error


# ----------------------------------------------------------------------------- check and credentials


def test_check_names_each_missing_setting(vertex: Harness) -> None:
    assert vertex.backend.check(vertex.settings) == []
    problems = vertex.backend.check({})
    text = " ".join(problems)
    assert len(problems) == 3 and all(isinstance(p, str) for p in problems)
    assert "project" in text and "region" in text and "bucket" in text
    bad = vertex.backend.check(dict(vertex.settings, project="My Project", accelerator_count=2))
    assert any("project ID" in p for p in bad) and any("accelerator_type" in p for p in bad)


def test_credentials_come_from_the_adc_chain_and_are_never_read(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.backends.vertex.backend import VertexBackend

    monkeypatch.setenv("NO_GCE_CHECK", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    backend = VertexBackend(store)
    missing = backend.check(SETTINGS)
    assert len(missing) == 1 and "gcloud auth application-default login" in missing[0]

    adc = tmp_path / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir()
    adc.write_text('{"refresh_token": "SECRET-REFRESH-TOKEN"}', encoding="utf-8")
    assert "application-default login" in str(backend.credentials_source())
    # found; check() then has google-auth load them (to ask Cloud Storage about the bucket),
    # which refuses this file (it has no type): one sentence with the fix, never the secret
    (unloadable,) = backend.check(SETTINGS)
    assert unloadable.startswith(
        f"The Google Cloud credentials from gcloud application-default login ({adc}) could "
        "not be loaded"
    )
    assert "gcloud auth application-default login" in unloadable
    assert "SECRET" not in unloadable

    key = tmp_path / "sa.json"
    key.write_text('{"private_key": "SECRET-PRIVATE-KEY"}', encoding="utf-8")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(backend.credentials_source())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "gone.json"))
    assert any("not a file" in p for p in backend.check(SETTINGS))
    said = " ".join(backend.check(SETTINGS)) + str(backend.credentials_source())
    assert "SECRET" not in said


# ----------------------------------------------------------------------------- end to end


def test_launch_poll_finish_and_restart(vertex: Harness, store: Store) -> None:
    from core.backends.vertex.backend import VertexBackend

    spec = StudySpec.load(ROOT / "assets" / "specs" / "published_study.json")
    run_id = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(run_id))
    run = store.get_run(run_id)
    assert run.handle == handle and run.status == "running"
    assert handle.startswith(
        "projects/cloudtune-test/locations/us-central1/hyperparameterTuningJobs/"
    )

    # the REST transport sent the translated job, enums as integers
    fake = vertex.fake
    assert fake is not None
    sent = fake.requests[handle]
    assert sent["studySpec"]["metrics"][0]["goal"] == 1
    assert {p["scaleType"] for p in sent["studySpec"]["parameters"] if "scaleType" in p} == {1}
    expected = vr.message_to_dict(
        vr.job_resource(vr.build_job(spec, run.settings)), integer_enums=True
    )
    assert sent == expected

    # the dataset was uploaded where the request points; the trainer is in CloudTune's image,
    # so no package was uploaded
    paths = vr.gcs_paths(spec, run.settings)
    assert (paths.bucket, paths.package_blob) not in fake.objects
    assert any(name.startswith(paths.data_prefix + "/") for _, name in fake.objects)
    data = {name for (_, name) in fake.objects if name.startswith(paths.data_prefix + "/")}
    assert any(n.endswith(".npz") for n in data) and any("fingerprint" in n for n in data)

    assert vertex.backend.poll(store.get_run(run_id)).status == "queued"
    fake.set_state(handle, "JOB_STATE_RUNNING")
    fake.add_trial(handle, state="ACTIVE", epochs=1)
    result = vertex.backend.poll(store.get_run(run_id))
    assert result.status == "running" and result.new_trials == 1
    assert store.list_trials(run_id)[0].status == "running"

    fake.finish(handle, 2)
    result = vertex.backend.poll(store.get_run(run_id))
    assert result.status == "completed"
    trials = store.list_trials(run_id)
    assert len(trials) == 3 and [t.status for t in trials].count("completed") == 2
    done = [t for t in trials if t.status == "completed"]
    for t in done:
        assert t.params["batch_size"] in (32, 64, 128) and type(t.params["batch_size"]) is int
        assert 0.001 <= t.params["learning_rate"] <= 0.1
        assert t.objective == t.metrics["val_accuracy"]
        assert t.duration_s == pytest.approx(fake.trial_seconds)
        assert t.cost_usd == pytest.approx(fake.trial_seconds / 3600 * _price())
        assert len(store.list_epochs(t.id)) == 2
    assert [t.status for t in trials].count("stopped") == 1  # active when the job ended
    run = store.get_run(run_id)
    assert run.cost_usd == pytest.approx(sum(t.cost_usd or 0 for t in trials))
    assert run.ended_at is not None and run.started_at is not None

    again = vertex.backend.poll(store.get_run(run_id))
    assert again.new_trials == 0 and len(store.list_trials(run_id)) == 3

    restarted = VertexBackend(store, **vertex.backend_kwargs)  # a new app process
    assert restarted.poll(store.get_run(run_id)).status == "completed"
    assert len(store.list_trials(run_id)) == 3


def _price() -> float:
    from core.costs.pricing import hourly_price

    price = hourly_price("vertex", "n1-standard-4", region="us-central1")
    assert price is not None
    return price


def test_the_dataset_is_uploaded_once(vertex: Harness, store: Store) -> None:
    spec = _spec()
    fake = vertex.fake
    assert fake is not None
    for _ in range(2):
        vertex.backend.launch(spec, store.get_run(_run(store, spec, vertex.settings)))
    prefix = f"/upload/storage/v1/b/{vr.bucket_name(vertex.settings)}/o"
    uploads = [p for m, p in fake.calls if m == "POST" and p == prefix]
    assert len(fake.jobs) == 2
    assert len(uploads) == 3  # data files and marker once; the trainer is in the image


def test_cancel_calls_the_jobs_cancel(store: Store, tmp_path: Path) -> None:
    with harness(store, tmp_path) as h:
        assert h.fake is not None
        h.fake.cancelling_reads = 1
        spec = _spec()
        run_id = _run(store, spec, h.settings)
        handle = h.backend.launch(spec, store.get_run(run_id))
        h.backend.cancel(store.get_run(run_id))
        assert h.fake.cancel_calls() == [f"/v1/{handle}:cancel"]
        run = store.get_run(run_id)
        assert run.status == "running" and str(run.status_detail).startswith("cancelling")
        assert h.backend.poll(store.get_run(run_id)).status == "cancelled"
        assert store.get_run(run_id).status == "cancelled"


def test_failed_job_and_infeasible_trial(vertex: Harness, store: Store) -> None:
    spec = _spec()
    run_id = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(run_id))
    assert vertex.fake is not None
    vertex.fake.add_trial(handle, state="INFEASIBLE")
    vertex.fake.set_state(handle, "JOB_STATE_FAILED")
    vertex.fake.job(handle)["error"] = {"code": 3, "message": "Too many failed trials."}
    result = vertex.backend.poll(store.get_run(run_id))
    assert result.status == "failed" and "Too many failed trials" in str(result.error)
    trial = store.list_trials(run_id)[0]
    assert trial.status == "failed" and "status 1" in str(trial.error)


def test_cost_cap_cancels_the_job(vertex: Harness, store: Store) -> None:
    spec = _spec(budget={"max_trials": 6, "parallel_trials": 2, "epochs": 2, "max_cost_usd": 0.001})
    run_id = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(run_id))
    assert vertex.fake is not None
    vertex.fake.set_state(handle, "JOB_STATE_RUNNING")
    vertex.fake.add_trial(handle)
    result = vertex.backend.poll(store.get_run(run_id))
    assert str(result.detail).startswith("stopped: budget reached: budget.max_cost_usd")
    assert vertex.fake.cancel_calls() == [f"/v1/{handle}:cancel"]
    result = vertex.backend.poll(store.get_run(run_id))  # the service has cancelled it
    assert result.status == "stopped" and "max_cost_usd" in str(result.detail)


def test_time_cap_cancels_the_job(vertex: Harness, store: Store) -> None:
    import time

    from core.backends.vertex.backend import VertexBackend

    spec = _spec(budget={"max_trials": 6, "parallel_trials": 2, "epochs": 2, "max_minutes": 30})
    run_id = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(run_id))
    assert vertex.backend.poll(store.get_run(run_id)).status == "queued"  # within the cap
    later = VertexBackend(store, clock=lambda: time.time() + 31 * 60, **vertex.backend_kwargs)
    result = later.poll(store.get_run(run_id))
    assert str(result.detail).startswith("stopped: budget reached: budget.max_minutes is 30 min")
    assert vertex.fake is not None and vertex.fake.cancel_calls() == [f"/v1/{handle}:cancel"]
    result = later.poll(store.get_run(run_id))
    assert result.status == "stopped" and "max_minutes" in str(result.detail)


def test_import_a_finished_job_by_resource_name_or_id(vertex: Harness, store: Store) -> None:
    spec = _spec()
    source = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(source))
    assert vertex.fake is not None
    vertex.fake.finish(handle, 3)
    study = store.create_study({"name": "imported", "space": []})
    for name in (handle, handle.rsplit("/", 1)[-1]):
        run_id = store.create_run(study, "vertex", settings=vertex.settings, spec={"name": name})
        result = vertex.backend.import_job(name, store.get_run(run_id))
        assert result.status == "completed" and result.new_trials == 3
        run = store.get_run(run_id)
        assert run.handle == handle and run.spec["strategy"] == "random"
        for t in store.list_trials(run_id):
            assert type(t.params["filters"]) is int and type(t.params["conv_blocks"]) is int
            assert t.params["optimizer"] in ("adam", "sgd")
    with pytest.raises(NotFound):
        vertex.backend.import_job("424242", store.get_run(run_id))


def test_launch_refuses_before_uploading(vertex: Harness, store: Store) -> None:
    spec = _spec(strategy="hyperband")
    with pytest.raises(BackendError, match="Hyperband"):
        vertex.backend.launch(spec, store.get_run(_run(store, spec, vertex.settings)))
    with pytest.raises(BackendNotReady, match="bucket"):
        vertex.backend.launch(_spec(), store.get_run(_run(store, _spec(), {"project": "abcdef"})))
    assert vertex.fake is not None  # only the readiness check's reads reached it
    assert {method for method, _ in vertex.fake.calls} == {"GET"} and not vertex.fake.objects


def test_objective_must_be_one_the_trainer_reports(vertex: Harness, store: Store) -> None:
    from core.backends.vertex.backend import trainer_objectives

    spec = _spec(objective={"metric": "val_loss", "goal": "min"})
    run = store.get_run(_run(store, spec, vertex.settings))
    supported = trainer_objectives()
    if supported is not None and "val_loss" not in supported:
        with pytest.raises(BackendError, match="without a measurement"):
            vertex.backend.launch(spec, run)
        assert vertex.fake is not None and vertex.fake.jobs == {}
    else:
        handle = vertex.backend.launch(spec, run)
        assert vertex.fake is not None
        args = vertex.fake.requests[handle]["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"][
            "args"
        ]
        assert "--objective=val_loss" in args


# ----------------------------------------------------------------------------- preview and export


def test_preview_is_the_request_as_json(vertex: Harness) -> None:
    text = vertex.backend.preview(_spec(), vertex.settings)  # type: ignore[attr-defined]
    assert json.loads(text) == vr.build_request(_spec(), vertex.settings)


def test_cli_previews_the_vertex_request(home: Path) -> None:
    spec = ROOT / "assets" / "specs" / "published_study.json"
    out = subprocess.run(
        [sys.executable, "-m", "core", "spec", str(spec), "--backend", "vertex",
         "--set", "bucket=gs://cli-bucket"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        env=dict(os.environ, NO_GCE_CHECK="true"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    request = json.loads(out.stdout)
    assert request["maxTrialCount"] == 20
    args = request["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]["args"]
    assert args[0].startswith("--data-dir=gs://cli-bucket/")


def test_export_bundle_is_installable(vertex: Harness, tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    where = vertex.backend.export_bundle(_spec(), vertex.settings, str(dest))  # type: ignore[attr-defined]
    assert Path(where) == dest
    request = json.loads((dest / "hyperparameter_tuning_job.json").read_text(encoding="utf-8"))
    assert request == vr.build_request(_spec(), vertex.settings)
    import yaml

    config = yaml.safe_load((dest / "hptuning_config.yaml").read_text(encoding="utf-8"))
    assert config == request
    readme = (dest / "README.txt").read_text(encoding="utf-8")
    assert vr.gcs_paths(_spec(), vertex.settings).package_uri in readme
    assert any((dest / "data").iterdir())
    tarball = dest / f"{vr.PACKAGE_NAME}-{vr.PACKAGE_VERSION}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    root = f"{vr.PACKAGE_NAME}-{vr.PACKAGE_VERSION}"
    assert f"{root}/setup.py" in names and f"{root}/{vr.PYTHON_MODULE}.py" in names

    # what Vertex AI does with it in the container: pip install, then python -m train
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(tarball)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert (target / f"{vr.PYTHON_MODULE}.py").is_file() and (target / "core").is_dir()


def test_package_parses_as_the_containers_python(tmp_path: Path) -> None:
    from core.training.bundle import build_bundle

    bundle = build_bundle(tmp_path / "bundle")
    sources = sorted(bundle.rglob("*.py"))
    assert any(p.name == f"{vr.PYTHON_MODULE}.py" for p in sources)
    for path in sources:  # the prebuilt TensorFlow 2.17 image runs Python 3.10
        ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 10))


@pytest.mark.slow
def test_a_trial_runs_the_way_vertex_runs_it(vertex: Harness, store: Store, tmp_path: Path) -> None:
    pytest.importorskip("core.training.bundle", reason="the trainer bundle has not landed")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    spec = parse_spec(
        {
            "name": "vertex-trial",
            "dataset": {"name": "digits", "subset": 120, "validation_split": 0.25},
            "space": [
                {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.01},
                {"name": "batch_size", "type": "choice", "values": [16, 32]},
                {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
            ],
            "strategy": "random",
            "budget": {"max_trials": 2, "parallel_trials": 1, "epochs": 2},
        }
    )
    run_id = _run(store, spec, vertex.settings)
    handle = vertex.backend.launch(spec, store.get_run(run_id))
    fake = vertex.fake
    assert fake is not None
    fake.set_state(handle, "JOB_STATE_RUNNING")
    trial = fake.add_trial(handle, state="ACTIVE")

    # What Vertex AI does for the trial: start CloudTune's image (its build context holds the
    # very bundle the backend builds), mount the bucket (Cloud Storage FUSE at /gcs; a folder
    # here) and append the trial's values to the container's args as --name=value.
    from core.backends import containers

    settings = store.get_run(run_id).settings
    paths = vr.gcs_paths(spec, settings)
    client = storage.Client(
        project=settings["project"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": fake.url},
    )
    bucket = client.bucket(paths.bucket)
    mount = tmp_path / "gcs"
    for _, name in list(fake.objects):
        if name.startswith(paths.data_prefix + "/"):
            local = mount / paths.bucket / name
            local.parent.mkdir(parents=True, exist_ok=True)
            bucket.blob(name).download_to_filename(str(local))
    context = containers.write_context("vertex", settings, tmp_path / "image")
    assert 'ENTRYPOINT ["python", "train.py"]' in (context / "Dockerfile").read_text()
    site = context / "trainer"
    container = fake.requests[handle]["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]
    assert container["imageUri"] == containers.image_uri_default("vertex", settings)
    args = [a.replace("gs://", f"{mount}/") for a in container["args"]]
    args += [f"--{p['parameterId']}={p['value']}" for p in trial["parameters"]]
    metrics_file = tmp_path / "hypertune" / "output.metrics"
    env = dict(
        os.environ,
        CLOUD_ML_TRIAL_ID=trial["id"],
        CLOUD_ML_HP_METRIC_FILE=str(metrics_file),
        AIP_MODEL_DIR=f"{paths.output_uri}/{trial['id']}/model",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [sys.executable, str(site / "train.py"), *args],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ignoring unknown arguments" not in out.stderr
    assert str(site) in out.stdout  # the installed package ran, not the repository
    lines = [json.loads(x) for x in metrics_file.read_text(encoding="utf-8").splitlines()]
    assert [x["global_step"] for x in lines] == ["1", "2"]
    assert all(x["trial"] == trial["id"] for x in lines)
    assert all(0.0 <= float(x[spec.objective.metric]) <= 1.0 for x in lines)


def test_module_imports_no_sdk_and_agrees_with_the_store() -> None:
    code = (
        "import sys, core.backends.vertex.backend; print('google.cloud.aiplatform' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_package_is_reproducible(tmp_path: Path) -> None:
    from core.backends.vertex.backend import build_package

    bundle = stand_in_bundle(tmp_path / "b")
    first = build_package(bundle, tmp_path / "one").read_bytes()
    assert build_package(bundle, tmp_path / "two").read_bytes() == first
    with pytest.raises(BackendError, match="train.py"):
        build_package(tmp_path, tmp_path / "three")
