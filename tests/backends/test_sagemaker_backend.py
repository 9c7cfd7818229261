"""SageMaker backend: golden requests, type restoration, and boto3 against moto's local server."""

from __future__ import annotations

import json
import os
import random
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.backends.sagemaker import request as rq
from core.errors import BackendError, BackendNotReady, NotFound, SpecError
from core.spec import KNOWN_PARAMS, Budget, StudySpec, discretise, parse_spec
from core.spec.design import same_configurations
from core.store import Store
from tests.fake_aws import BUCKET, REGION, ROLE_ARN, bucket_policy_for
from tests.harness_sagemaker import SETTINGS, Harness, harness

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sagemaker"
ROOT = Path(__file__).resolve().parents[2]
FIXED = {"job_name": "ct-golden", "data_uri": "s3://b/data/", "trainer_uri": "s3://b/t.tar.gz"}
BASE = {"region": "eu-west-1", "bucket": "b", "role_arn": "arn:aws:iam::123456789012:role/SM"}


def _published() -> StudySpec:
    return StudySpec.load(ROOT / "assets" / "specs" / "published_study.json")


def _spec(**changes: Any) -> StudySpec:
    data = _published().to_dict()
    data.update(changes)
    return parse_spec(data)


def _every_type() -> StudySpec:
    return _spec(
        strategy="random",
        space=[
            {"name": "learning_rate", "type": "float", "min": 1e-4, "max": 0.1, "scale": "log"},
            {"name": "dropout_rate", "type": "float", "min": 0.2, "max": 0.4},
            {"name": "conv_blocks", "type": "int", "min": 1, "max": 3},
            {"name": "filters", "type": "int", "min": 16, "max": 64, "scale": "log"},
            {"name": "dense_units", "type": "int", "min": 32, "max": 128, "step": 32},
            {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
            {"name": "kernel_size", "type": "fixed", "value": 5},
        ],
        budget={"max_trials": 12, "parallel_trials": 4, "epochs": 2, "max_minutes": 90},
        objective={"metric": "val_loss"},
        seed=0,
    )


def _hyperband() -> StudySpec:
    return _spec(strategy="hyperband", budget={"max_trials": 30, "parallel_trials": 5, "epochs": 9})


def _grid() -> StudySpec:
    return _spec(
        strategy="grid",
        space=[
            {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.021, "step": 0.01},
            {"name": "batch_size", "type": "choice", "values": [32, 64]},
            {"name": "conv_blocks", "type": "int", "min": 1, "max": 2},
        ],
        budget={"max_trials": 12, "parallel_trials": 2, "epochs": 2},
    )


GOLDEN_CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "same_configurations": (lambda: same_configurations(_published(), 6), BASE),
    "bayesian_published": (_published, BASE),
    "random_every_type": (
        _every_type,
        {**BASE, "early_stopping": "Auto", "instance_type": "ml.g5.xlarge", "volume_size_gb": 50},
    ),
    "hyperband": (_hyperband, {**BASE, "hyperband_min_epochs": 2, "trial_max_minutes": 30}),
    "grid_discrete": (_grid, {**BASE, "instance_count": 2, "prefix": "team/tuning"}),
    "custom_image": (
        _published,
        {**BASE, "image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/cloudtune-trainer:v3"},
    ),
}


# ----------------------------------------------------------------------------- golden requests


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_request_matches_golden(case: str) -> None:
    make, settings = GOLDEN_CASES[case]
    request = rq.build_request(make(), settings, **FIXED)
    path = GOLDEN / f"{case}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rq.to_json(request), encoding="utf-8")
    assert request == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_request_is_a_valid_create_hyper_parameter_tuning_job_body(case: str) -> None:
    """botocore's own model of the API accepts every golden request as it stands."""
    import botocore.session
    from botocore.validate import validate_parameters

    make, settings = GOLDEN_CASES[case]
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.operation_model("CreateHyperParameterTuningJob").input_shape
    validate_parameters(rq.build_request(make(), settings, **FIXED), shape)


def test_strategies_scales_and_types_map_to_sagemaker() -> None:
    config = rq.build_request(_every_type(), BASE, **FIXED)["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random" and config["RandomSeed"] == 0
    ranges = config["ParameterRanges"]
    cont = {r["Name"]: r for r in ranges["ContinuousParameterRanges"]}
    assert cont["learning_rate"]["ScalingType"] == "Logarithmic"
    assert cont["dropout_rate"]["ScalingType"] == "Linear"
    ints = {r["Name"]: r for r in ranges["IntegerParameterRanges"]}
    assert ints["filters"] == {
        "Name": "filters",
        "MinValue": "16",
        "MaxValue": "64",
        "ScalingType": "Logarithmic",
    }
    cats = {r["Name"]: r["Values"] for r in ranges["CategoricalParameterRanges"]}
    assert cats == {"dense_units": ["32", "64", "96", "128"], "optimizer": ["adam", "sgd"]}
    assert config["HyperParameterTuningJobObjective"] == {
        "Type": "Minimize",
        "MetricName": "val_loss_best",  # the trainer's running best: the last match is the best
    }
    assert config["ResourceLimits"]["MaxRuntimeInSeconds"] == 90 * 60
    static = rq.build_request(_every_type(), BASE, **FIXED)["TrainingJobDefinition"][
        "StaticHyperParameters"
    ]
    assert static["kernel_size"] == "5" and "learning_rate" not in static
    for name in ("bayesian", "random", "hyperband", "grid"):
        assert rq.STRATEGIES[name] == name.capitalize()


def test_hyperband_takes_epochs_from_the_budget_and_refuses_early_stopping() -> None:
    config = rq.build_request(_hyperband(), BASE, **FIXED)["HyperParameterTuningJobConfig"]
    assert config["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}
    }
    assert config["TrainingJobEarlyStoppingType"] == "Off"
    with pytest.raises(BackendError, match="early stopping to be Off"):
        rq.build_request(_hyperband(), {**BASE, "early_stopping": "Auto"}, **FIXED)


def test_grid_with_a_continuous_float_says_how_to_discretise() -> None:
    spec = _spec(strategy="random")  # valid spec; SageMaker's grid is stricter than ours
    grid = replace(spec, strategy="grid")
    with pytest.raises(SpecError) as err:
        rq.build_request(grid, BASE, **FIXED)
    assert {p.split(":")[0] for p in err.value.problems} == {"learning_rate", "dropout_rate"}
    assert "discretise" in str(err.value) and "step" in str(err.value)
    assert rq.grid_blockers(grid) == ["learning_rate", "dropout_rate"]
    fixed = discretise(grid, {"learning_rate": 0.033, "dropout_rate": 0.1})
    fixed = replace(fixed, budget=Budget(max_trials=4 * 3 * 3, parallel_trials=2))
    request = rq.build_request(fixed, BASE, **FIXED)
    ranges = request["HyperParameterTuningJobConfig"]["ParameterRanges"]
    assert set(ranges) == {"CategoricalParameterRanges"}
    lr = next(r for r in ranges["CategoricalParameterRanges"] if r["Name"] == "learning_rate")
    assert lr["Values"] == ["0.001", "0.034", "0.067", "0.1"]


def test_grid_runs_every_combination_so_a_smaller_budget_is_refused() -> None:
    request = rq.build_request(_grid(), BASE, **FIXED)
    assert request["HyperParameterTuningJobConfig"]["ResourceLimits"][
        "MaxNumberOfTrainingJobs"
    ] == (3 * 2 * 2)
    small = replace(_grid(), budget=Budget(max_trials=5))
    with pytest.raises(BackendError, match="12 combinations"):
        rq.build_request(small, BASE, **FIXED)


def test_limits_sagemaker_imposes_are_sentences() -> None:
    long = _spec(space=[{"name": "dense_units", "type": "int", "min": 1, "max": 40, "step": 1}])
    long = replace(long, strategy="grid")
    with pytest.raises(SpecError, match="at most 30 values"):
        rq.build_request(long, BASE, **FIXED)
    short = _spec(budget={"max_trials": 2, "parallel_trials": 1, "epochs": 1, "max_minutes": 1})
    with pytest.raises(BackendError, match="at least 2 minutes"):
        rq.build_request(short, BASE, **FIXED)
    with pytest.raises(BackendError, match="instance_count"):
        rq.build_request(_published(), {**BASE, "instance_count": 0}, **FIXED)


def test_image_comes_from_image_uris_for_region_and_instance() -> None:
    cpu = rq.training_image({"region": "eu-west-1", "instance_type": "ml.m5.xlarge"})
    gpu = rq.training_image({"region": "us-west-2", "instance_type": "ml.g5.xlarge"})
    assert cpu.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-training:")
    assert "-cpu-" in cpu and "-gpu-" in gpu and ".us-west-2." in gpu
    assert rq.training_image({"training_image": "my/image:1"}) == "my/image:1"
    assert rq.training_image({"image": "my/image:2"}) == "my/image:2"
    # the tag the vendor's image list names, not the SDK's shorter 2.21-cpu-py312
    assert cpu.endswith(":2.21-cpu-py312-amzn2023-sagemaker")
    assert gpu.endswith(":2.21-gpu-py312-cu129-amzn2023-sagemaker")
    older = rq.training_image({"region": "us-east-1", "framework_version": "2.19"})
    assert older.endswith(":2.19-cpu-py312")  # other versions: as the SDK resolves them
    with pytest.raises(BackendError, match="framework_version"):
        rq.training_image({"region": "us-east-1", "framework_version": "0.1"})


def test_job_names_fit_sagemaker() -> None:
    spec = _spec(name="A very long study name with spaces and ÜNICODE!")
    for name in (rq.default_job_name(spec), rq.unique_job_name(spec, 123456, 1.8e9)):
        assert len(name) <= 32 and name[0].isalnum()
        assert all(c.isalnum() or c == "-" for c in name)
    assert rq.default_job_name(spec) == rq.default_job_name(spec)
    assert rq.unique_job_name(spec, 1, 1.8e9) != rq.unique_job_name(spec, 1, 1.8e9 + 1)


# ----------------------------------------------------------------------------- reading back


def test_values_come_back_with_the_spec_types() -> None:
    spec = _every_type()
    summary = {
        "TrainingJobName": "ct-x-007-0123abcd",
        "TrainingJobStatus": "Completed",
        "TunedHyperParameters": {
            "learning_rate": "0.0031",
            "conv_blocks": "2",
            "filters": "32",
            "dense_units": "96",
            "optimizer": '"sgd"',
        },
        "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val_loss", "Value": 0.2},
    }
    desc = {
        "TrainingJobStatus": "Completed",
        "BillableTimeInSeconds": 360,
        "TrainingTimeInSeconds": 400,
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
        "FinalMetricDataList": [{"MetricName": "val_accuracy", "Value": 0.93}],
    }
    record = rq.parse_training_job(summary, desc, spec, "val_loss")
    assert record.number == 6 and record.status == "completed"
    assert record.params == {
        "learning_rate": 0.0031,
        "conv_blocks": 2,
        "filters": 32,
        "dense_units": 96,
        "optimizer": "sgd",
        "kernel_size": 5,
    }
    assert type(record.params["dense_units"]) is int
    assert record.objective == 0.2 and record.metrics == {"val_accuracy": 0.93, "val_loss": 0.2}
    assert record.billable_s == 360 and record.duration_s == 400
    assert record.instance_type == "ml.g5.xlarge" and record.instance_count == 2
    # the cost is the shared cloud layer's: billable seconds x the machine's price x machines
    from core.backends.cloud import CloudBackendBase

    priced = CloudBackendBase.measure(None, _fake_run(), spec, record, 1.8)  # type: ignore[arg-type]
    assert priced.cost_usd == pytest.approx(360 / 3600 * 1.8 * 2)
    assert priced.seed == spec.seed + 6
    # without a spec (an imported job), the known names still get their types
    bare = rq.parse_training_job(summary, None, None, "val_loss")
    assert bare.params["conv_blocks"] == 2 and bare.params["optimizer"] == "sgd"
    assert "kernel_size" not in bare.params and bare.cost_usd is None


def _fake_run() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(instance_type="ml.m5.xlarge")


@pytest.mark.parametrize(
    ("sm", "status"),
    [
        ("InProgress", "running"),
        ("Completed", "completed"),
        ("Failed", "failed"),
        ("Stopping", "running"),
        ("Stopped", "cancelled"),
    ],
)
def test_tuning_job_statuses_map_to_run_statuses(sm: str, status: str) -> None:
    assert rq.run_status(sm)[0] == status


def test_spec_is_rebuilt_from_a_job_description() -> None:
    for make in (_published, _every_type, _grid):
        spec = make()
        request = rq.build_request(spec, BASE, **FIXED)
        rebuilt = parse_spec(rq.spec_from_job(request, spec.name))
        original = spec.to_dict()
        assert rebuilt.strategy == spec.strategy and rebuilt.seed == spec.seed
        assert rebuilt.objective == spec.objective
        assert rebuilt.budget.epochs == spec.budget.epochs
        names = {p["name"] for p in original["space"]}
        assert {p.name for p in rebuilt.space} == names
        kinds = {"int": int, "float": float, "str": str}
        for p in rebuilt.space:  # values come back with the types the CNN takes
            value = p.sample(random.Random(0))
            assert type(value) is kinds[KNOWN_PARAMS[p.name].kind], (p, value)


# ----------------------------------------------------------------------------- against moto


@pytest.fixture()
def aws(store: Store, tmp_path: Path) -> Iterator[Harness]:
    with harness(store, tmp_path) as h:
        yield h


def _run(store: Store, h: Harness, spec: StudySpec, **settings: Any) -> int:
    sid = store.create_study(spec)
    return store.create_run(sid, "sagemaker", settings={**h.settings, **settings}, spec=spec)


def _small(**changes: Any) -> StudySpec:
    base: dict[str, Any] = {
        "dataset": {"name": "digits", "subset": 200, "validation_split": 0.2},
        "budget": {"max_trials": 4, "parallel_trials": 2, "epochs": 1},
        "strategy": "random",
    }
    return _spec(**{**base, **changes})


def test_check_names_each_missing_thing(aws: Harness) -> None:
    assert aws.backend.check(aws.settings) == []
    missing = aws.backend.check({})
    assert any("region" in m for m in missing)
    assert any("role" in m for m in missing)
    assert any("bucket" in m for m in missing)
    bad = aws.backend.check({**aws.settings, "role_arn": "SageMakerRole", "region": "mars-1"})
    assert any("not an IAM role ARN" in m for m in bad) and any("mars-1" in m for m in bad)
    leaked = aws.backend.check({**aws.settings, "aws_secret_access_key": "x"})
    assert any("never stores secrets" in m for m in leaked)


def test_region_table_is_the_one_image_uris_reads() -> None:
    """The Settings check reads the SDK's image table instead of importing the SDK; for every
    region AWS has, and a few it has not, it must say what image_uris.retrieve says."""
    import boto3

    regions = rq.image_regions(rq.DEFAULT_FRAMEWORK_VERSION)
    assert regions is not None and "us-east-1" in regions
    known = boto3.session.Session().get_available_regions("sagemaker")
    for region in [*known, "mars-1", "us-east-9", ""]:
        try:
            rq._image_uri(region, rq.DEFAULT_FRAMEWORK_VERSION, "ml.m5.xlarge")
            has_image = True
        except ValueError:
            has_image = False
        assert (region in regions) == has_image, region


def test_the_settings_check_does_not_import_the_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from core.backends.sagemaker import request as rq; "
        "assert rq.settings_problems({'region': 'mars-1'}); "
        "assert not rq._region_problems({'region': 'eu-west-1'}); "
        "print('sagemaker.core' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@contextmanager
def _no_credentials() -> Iterator[None]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    saved = {k: os.environ.pop(k, None) for k in keys}
    try:
        yield
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def test_credentials_come_from_the_standard_chain_and_are_never_shown(
    aws: Harness, store: Store
) -> None:
    from core.backends.sagemaker.backend import SageMakerBackend

    assert aws.backend.credentials_source(aws.settings) == "environment variables"  # type: ignore[attr-defined]
    with _no_credentials():
        bare = SageMakerBackend(store)
        problems = bare.check(aws.settings)
        assert problems and problems[0].startswith("No AWS credentials were found")
        assert "testing" not in " ".join(problems)
        assert bare.check({**aws.settings, "profile": "nobody"})[0].startswith("The AWS profile")
        spec = _small()
        rid = _run(store, aws, spec)
        with pytest.raises(BackendNotReady, match="No AWS credentials"):
            bare.launch(spec, store.get_run(rid))


def test_launch_uploads_once_and_sends_exactly_the_previewed_request(
    aws: Harness, store: Store
) -> None:
    spec = _small()
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    run = store.get_run(rid)
    assert run.handle == handle and run.status == "running"
    assert aws.fake is not None
    sent = aws.fake.created[handle]
    expected = aws.backend.request(spec, aws.settings, job_name=handle)  # type: ignore[attr-defined]
    assert sent == expected
    definition = sent["TrainingJobDefinition"]
    data_uri = definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    trainer_uri = definition["StaticHyperParameters"]["sagemaker_submit_directory"]
    keys = aws.fake.objects()
    assert f"s3://{BUCKET}/{keys[0]}".startswith(data_uri)
    assert f"s3://{BUCKET}/{keys[-1]}" == trainer_uri
    # a second run of the same data and trainer uploads nothing new
    other = _run(store, aws, spec)
    assert aws.backend.launch(spec, store.get_run(other)) != handle
    assert aws.fake.objects() == keys


def test_a_users_s3_dataset_is_used_as_given(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small()
    rid = _run(store, aws, spec, data_uri="s3://elsewhere/my-digits")
    aws.fake.create_bucket("elsewhere")
    with pytest.raises(BackendNotReady, match="execution role .* may not s3:GetObject, s3:List"):
        aws.backend.launch(spec, store.get_run(rid))  # the role cannot read the user's data
    reads = bucket_policy_for("elsewhere", "my-digits")
    aws.fake.client("iam").put_role_policy(
        RoleName=ROLE_ARN.rsplit("/", 1)[-1], PolicyName="data", PolicyDocument=json.dumps(reads)
    )
    with pytest.raises(BackendError, match="no data at s3://elsewhere/my-digits/"):
        aws.backend.launch(spec, store.get_run(rid))
    aws.fake.client("s3").put_object(Bucket="elsewhere", Key="my-digits/data.npz", Body=b"x")
    handle = aws.backend.launch(spec, store.get_run(rid))
    channel = aws.fake.created[handle]["TrainingJobDefinition"]["InputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == "s3://elsewhere/my-digits/"
    assert not [k for k in aws.fake.objects() if "/datasets/" in k]
    assert aws.fake.objects("elsewhere") == ["my-digits/data.npz"]


def test_launch_refuses_before_uploading(aws: Harness, store: Store) -> None:
    spec = _small()
    rid = _run(store, aws, spec, bucket="")
    with pytest.raises(BackendNotReady, match="bucket"):
        aws.backend.launch(spec, store.get_run(rid))
    assert aws.fake is not None and aws.fake.objects() == [] and not aws.fake.created


def test_poll_watches_trials_live_and_resumes_after_a_restart(aws: Harness, store: Store) -> None:
    from core.backends.sagemaker.backend import SageMakerBackend

    assert aws.fake is not None
    spec = _small(budget={"max_trials": 4, "parallel_trials": 2, "epochs": 3})
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    first = aws.backend.poll(store.get_run(rid))
    assert (first.status, first.new_trials) == ("running", 0)
    aws.fake.add_trials(handle, 1)
    aws.fake.add_trials(handle, 1, status="InProgress")
    live = aws.backend.poll(store.get_run(rid))
    assert (live.status, live.new_trials) == ("running", 2)
    done, running = store.list_trials(rid)
    assert (done.status, running.status) == ("completed", "running")
    assert (done.number, running.number) == (0, 1)
    assert isinstance(done.params["batch_size"], int) and done.params["batch_size"] == 32
    assert 0.001 <= done.params["learning_rate"] <= 0.1
    assert done.objective == 0.8 and done.metrics["val_loss"] == pytest.approx(0.2)
    assert done.billable_s == 100 and done.duration_s == 105
    assert done.cost_usd == pytest.approx(100 / 3600 * SETTINGS["price_per_hour"])
    assert done.instance_type == "ml.m5.xlarge"
    assert done.ended_at is not None and done.started_at is not None
    assert done.ended_at - done.started_at == pytest.approx(105)
    # the curves come from the trainer's own log lines in CloudWatch Logs
    curve = store.list_epochs(done.id)
    assert [e["epoch"] for e in curve] == [1, 2, 3]
    assert curve[-1]["val_accuracy"] == done.objective
    assert set(curve[0]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert curve[0]["wall_s"] == pytest.approx(2.5)
    assert [e["epoch"] for e in store.list_epochs(running.id)] == [1]
    # an app restart: a new backend instance, only the job name in the store
    aws.finish(handle, 3)
    restarted = SageMakerBackend(store)
    result = restarted.poll(store.get_run(rid))
    assert (result.status, result.new_trials) == ("completed", 2)
    assert [t.status for t in store.list_trials(rid)] == ["completed"] * 3
    finished = store.list_trials(rid)[1]
    assert [e["val_accuracy"] for e in store.list_epochs(finished.id)][-1] == finished.objective
    again = restarted.poll(store.get_run(rid))
    assert again.new_trials == 0 and len(store.list_trials(rid)) == 3
    run = store.get_run(rid)
    assert run.status == "completed" and run.ended_at is not None
    assert run.cost_usd == pytest.approx(sum(t.cost_usd or 0 for t in store.list_trials(rid)))


def test_training_jobs_are_read_across_pages(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small(budget={"max_trials": 5, "parallel_trials": 1, "epochs": 1})
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    aws.fake.page_size = 2
    aws.fake.finish(handle, 5)
    assert aws.backend.poll(store.get_run(rid)).new_trials == 5
    assert [t.number for t in store.list_trials(rid)] == [0, 1, 2, 3, 4]
    assert aws.fake.listed.count(handle) >= 1


def test_cancel_stops_the_tuning_job(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small()
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    aws.fake.add_trials(handle, 1)
    aws.fake.add_trials(handle, 1, status="InProgress")
    aws.backend.cancel(store.get_run(rid))
    assert aws.fake.stopped == [handle]
    run = store.get_run(rid)
    assert run.status == "cancelled"
    assert sorted(t.status for t in store.list_trials(rid)) == ["completed", "stopped"]
    # a second stop of an ended job is not an error
    aws.backend.cancel(run)
    assert store.get_run(rid).status == "cancelled"


def test_a_failed_job_and_a_failed_trial(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small()
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    aws.fake.add_trials(handle, 1, status="Failed")
    aws.fake.set_status(handle, "Failed", "No training job succeeded.")
    result = aws.backend.poll(store.get_run(rid))
    assert result.status == "failed" and result.error == "No training job succeeded."
    (trial,) = store.list_trials(rid)
    assert trial.status == "failed" and trial.error and "AlgorithmError" in trial.error
    assert store.get_run(rid).error == "No training job succeeded."


def test_cost_cap_stops_the_job(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small(budget={"max_trials": 4, "parallel_trials": 2, "epochs": 1, "max_cost_usd": 0.01})
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    aws.fake.add_trials(handle, 2, billable_s=200)
    aws.fake.add_trials(handle, 1, status="InProgress")
    aws.backend.poll(store.get_run(rid))
    assert aws.fake.stopped == [handle]
    result = aws.backend.poll(store.get_run(rid))
    assert result.status == "stopped" and "budget" in (result.detail or "")


def test_import_a_finished_job_by_name(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small()
    name = "launched-elsewhere"
    request = rq.build_request(
        spec,
        aws.settings,
        job_name=name,
        data_uri=f"s3://{BUCKET}/d/",
        trainer_uri=f"s3://{BUCKET}/t.tar.gz",
    )
    aws.fake.client("sagemaker").create_hyper_parameter_tuning_job(**request)
    aws.fake.finish(name, 3)
    sid = store.create_study({"name": f"imported {name}", "space": []})
    rid = store.create_run(sid, "sagemaker", settings=aws.settings, spec={"name": name})
    result = aws.backend.import_job(name, store.get_run(rid))  # type: ignore[attr-defined]
    assert result.status == "completed" and result.new_trials == 3
    run = store.get_run(rid)
    assert run.handle == name and run.instance_type == "ml.m5.xlarge"
    rebuilt = parse_spec(run.spec)
    assert rebuilt.strategy == "random" and {p.name for p in rebuilt.space} == {
        "learning_rate",
        "batch_size",
        "dropout_rate",
        "optimizer",  # the published preset fixes sgd with momentum 0.9
        "momentum",
    }
    assert all(isinstance(t.params["batch_size"], int) for t in store.list_trials(rid))
    with pytest.raises(NotFound, match="no tuning job named"):
        aws.backend.import_job("no-such-job", store.get_run(rid))  # type: ignore[attr-defined]


def test_preview_is_the_request_as_json(aws: Harness) -> None:
    spec = _small()
    text = aws.backend.preview(spec, aws.settings)  # type: ignore[attr-defined]
    request = json.loads(text)
    assert request == aws.backend.request(spec, aws.settings)  # type: ignore[attr-defined]
    assert request["TrainingJobDefinition"]["RoleArn"] == ROLE_ARN
    uri = request["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert rq.CONTENT_HASH not in uri["S3Uri"] and uri["S3Uri"].startswith(
        f"s3://{BUCKET}/cloudtune/datasets/digits-"
    )
    assert aws.fake is not None and aws.fake.objects() == []  # a preview uploads nothing


def test_export_bundle_can_be_submitted_with_the_aws_cli(aws: Harness, tmp_path: Path) -> None:
    spec = _small()
    where = Path(aws.backend.export_bundle(spec, aws.settings, str(tmp_path / "out")))  # type: ignore[attr-defined]
    request = json.loads((where / "request.json").read_text())
    assert request == aws.backend.request(spec, aws.settings)  # type: ignore[attr-defined]
    with tarfile.open(where / rq.SOURCE_TARBALL) as tar:
        assert "train.py" in tar.getnames()
    assert (where / "trainer" / "train.py").is_file()
    assert any((where / "data").iterdir())
    readme = (where / "README.txt").read_text()
    assert "aws sagemaker create-hyper-parameter-tuning-job" in readme
    assert "--cli-input-json file://request.json" in readme
    assert "Before submitting, replace" not in readme  # real settings: nothing to fill in
    # the README's upload targets are the request's own S3 locations
    definition = request["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"]["sagemaker_submit_directory"] in readme
    assert definition["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] in readme
    # the exported request is one the fake service accepts as it stands
    assert aws.fake is not None
    aws.fake.client("sagemaker").create_hyper_parameter_tuning_job(**request)
    assert request["HyperParameterTuningJobName"] in aws.fake.created


def test_trainer_tarball_is_reproducible(tmp_path: Path) -> None:
    from core.backends.sagemaker.backend import make_tarball

    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('val_accuracy: 0.5')\n")
    (src / "pkg" / "m.py").write_text("x = 1\n")
    a = make_tarball(src, tmp_path / "a.tar.gz").read_bytes()
    os.utime(src / "train.py", (1, 1))
    b = make_tarball(src, tmp_path / "b.tar.gz").read_bytes()
    assert a == b
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert tar.getnames() == ["pkg/m.py", "train.py"]


def test_cli_previews_the_sagemaker_request(home: Path) -> None:
    from core.cli import main

    spec = ROOT / "assets" / "specs" / "published_study.json"
    import contextlib
    import io

    out = io.StringIO()
    args = ["spec", str(spec), "--backend", "sagemaker"]
    for key, value in (("region", REGION), ("bucket", BUCKET), ("role_arn", ROLE_ARN)):
        args += ["--set", f"{key}={value}"]
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    request = json.loads(out.getvalue())
    assert request["HyperParameterTuningJobConfig"]["Strategy"] == "Bayesian"
    assert request["TrainingJobDefinition"]["ResourceConfig"]["InstanceType"] == "ml.m5.xlarge"


def test_metric_regexes_read_the_trainers_epoch_lines() -> None:
    """Each metric definition picks its own value out of what core.training.train prints; the
    objective's last match is the best epoch (SageMaker keeps the last match)."""
    import re

    from core.training.train import EpochReport

    metrics = {
        "train_loss": 0.4321,
        "train_accuracy": 0.8765,
        "val_loss": 0.3456,
        "val_accuracy": 0.9012,
    }
    lines: list[str] = []
    report = EpochReport([], "val_accuracy", "max", out=lines.append)
    report.end_epoch(1, metrics, 1.5)
    report.end_epoch(2, {k: v - 0.1 for k, v in metrics.items()}, 1.25)
    lines = [line for text in lines for line in text.splitlines()]
    expected = {"val_accuracy": 0.8012, "val_loss": 0.2456, "accuracy": 0.7765, "loss": 0.3321}
    expected.update(epoch=2, val_accuracy_best=0.9012)
    for definition in rq.metric_definitions(_published()):
        found = [m.group(1) for line in lines if (m := re.search(definition["Regex"], line))]
        assert len(found) == 2, (definition, lines)  # one match per epoch, none elsewhere
        assert float(found[-1]) == pytest.approx(expected[definition["Name"]])


@pytest.mark.parametrize("case", ["bayesian_published", "hyperband"])
def test_the_sdks_own_tuner_sends_the_same_request(aws: Harness, case: str) -> None:
    """SageMaker SDK v3's HyperparameterTuner + ModelTrainer, set up by hand from the same
    spec, submit exactly the request build_request writes (what preview shows)."""
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter
    from sagemaker.core.shapes import HyperbandStrategyConfig, HyperParameterTuningJobStrategyConfig
    from sagemaker.core.training.configs import Compute, OutputDataConfig, StoppingCondition
    from sagemaker.train import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner

    assert aws.fake is not None
    make, settings = GOLDEN_CASES[case]
    spec, settings = make(), {**settings, "region": REGION, "bucket": BUCKET}
    name, data = f"sdk-{case[:20]}", f"s3://{BUCKET}/d/"
    ours = rq.build_request(spec, settings, job_name=name, data_uri=data, trainer_uri=data + "t")
    session = Session(boto_session=boto3.Session(region_name=REGION), default_bucket=BUCKET)
    trainer = ModelTrainer(
        training_image=rq.training_image(settings),
        role=settings["role_arn"],
        compute=Compute(instance_type="ml.m5.xlarge", instance_count=1, volume_size_in_gb=30),
        stopping_condition=StoppingCondition(
            max_runtime_in_seconds=60 * int(settings.get("trial_max_minutes", 60))
        ),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/cloudtune/output"),
        hyperparameters=rq.static_hyperparameters(spec, settings, data + "t"),
        sagemaker_session=session,
    )
    hyperband = None
    if spec.strategy == "hyperband":
        hyperband = HyperParameterTuningJobStrategyConfig(
            hyperband_strategy_config=HyperbandStrategyConfig(min_resource=2, max_resource=9)
        )
    tuner = HyperparameterTuner(
        trainer,
        rq.objective_metric(spec),
        {
            "learning_rate": ContinuousParameter(0.001, 0.1, "Linear"),
            "batch_size": CategoricalParameter([32, 64, 128]),
            "dropout_rate": ContinuousParameter(0.2, 0.4, "Linear"),
        },
        metric_definitions=rq.metric_definitions(spec),
        strategy=rq.STRATEGIES[spec.strategy],
        objective_type="Maximize",
        max_jobs=spec.budget.max_trials,
        max_parallel_jobs=spec.budget.parallel_trials,
        early_stopping_type="Off",
        random_seed=spec.seed,
        strategy_config=hyperband,
    )
    tuner.tune(inputs={"train": data}, job_name=name, wait=False)
    assert aws.fake.created[name] == ours


def test_tests_cannot_leave_loopback() -> None:
    """The conftest guard is active here: a connection outside loopback fails the test."""
    import socket

    with pytest.raises(AssertionError, match="non-loopback"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)


def test_epochs_are_parsed_from_the_trainers_lines_only() -> None:
    from core.training.train import epoch_lines

    noise = ["Invoking script", 'params: {"epochs": 2}', "epoch_seconds: 9", "val_accuracy: x"]
    one = {"train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85}
    two = {"train_loss": 0.3, "train_accuracy": 0.9, "val_loss": 0.35, "val_accuracy": 0.88}
    lines = noise + epoch_lines(1, one, 2.0) + ["1/5 [====] - loss: 9.9"] + epoch_lines(2, two, 1.5)
    epochs = rq.parse_epochs(["\n".join(lines[:3])] + lines[3:])
    assert [(e.epoch, e.wall_s) for e in epochs] == [(1, 2.0), (2, 1.5)]
    assert epochs[1].metrics == {
        "loss": 0.3,
        "accuracy": 0.9,
        "val_loss": 0.35,
        "val_accuracy": 0.88,
    }


def test_epochs_that_reach_the_logs_late_are_read_later(aws: Harness, store: Store) -> None:
    assert aws.fake is not None
    spec = _small(budget={"max_trials": 2, "parallel_trials": 1, "epochs": 3})
    rid = _run(store, aws, spec)
    handle = aws.backend.launch(spec, store.get_run(rid))
    aws.fake.logs_lag = True
    aws.fake.finish(handle, 1)
    aws.backend.poll(store.get_run(rid))
    (trial,) = store.list_trials(rid)
    assert trial.metrics["epoch"] == 3 and len(store.list_epochs(trial.id)) == 2
    aws.fake.flush_logs()
    aws.backend.poll(store.get_run(rid))
    assert [t.id for t in store.list_trials(rid)] == [trial.id]  # the same trial, completed
    assert [e["epoch"] for e in store.list_epochs(trial.id)] == [1, 2, 3]


def test_a_missing_bucket_is_a_sentence(aws: Harness, store: Store) -> None:
    spec = _small()
    rid = _run(store, aws, spec, bucket="no-such-bucket")
    with pytest.raises(BackendNotReady, match="The S3 bucket no-such-bucket does not exist"):
        aws.backend.launch(spec, store.get_run(rid))  # the readiness check asks S3 first
    assert store.get_run(rid).handle is None
    run = store.get_run(rid)  # a bucket gone between the check and the upload: still a sentence
    with pytest.raises(BackendError, match="bucket exists") as err:
        aws.backend.submit(spec, run, dict(run.settings))  # type: ignore[attr-defined]
    assert "NoSuchBucket" in str(err.value)


def _toolkit_args(hyperparameters: dict[str, str]) -> list[str]:
    """The command line SageMaker's training toolkit gives the entry script: every
    hyperparameter but sagemaker_*, JSON-decoded where it can be, as ``--name value``."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        if key.startswith("sagemaker_"):
            continue
        try:
            value: Any = json.loads(hyperparameters[key])
        except ValueError:
            value = hyperparameters[key]
        args += [f"--{key}", str(value)]
    return args


@pytest.mark.slow
def test_the_bundle_trains_as_the_tensorflow_container_runs_it(
    aws: Harness, tmp_path: Path
) -> None:
    """Unpack the uploaded tarball, give train.py the channel and arguments SageMaker gives
    it, and read its output with the request's own metric definitions."""
    import re
    import subprocess
    import sys

    from core.backends.sagemaker.backend import SageMakerBackend

    spec = _small(budget={"max_trials": 2, "parallel_trials": 1, "epochs": 2})
    backend = aws.backend
    assert isinstance(backend, SageMakerBackend)
    staged = backend.stage(spec, aws.settings, tmp_path / "work")
    assert staged.data_dir is not None
    code = tmp_path / "opt" / "ml" / "code"
    code.mkdir(parents=True)
    with tarfile.open(staged.tarball) as tar:
        tar.extractall(code, filter="data")
    request = rq.build_request(spec, aws.settings, data_uri=staged.data_uri, trainer_uri="s3://x/t")
    definition = request["TrainingJobDefinition"]
    tuned = {"learning_rate": "0.01", "batch_size": "32", "dropout_rate": "0.25"}
    argv = _toolkit_args({**definition["StaticHyperParameters"], **tuned})
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(staged.data_dir),
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": "",
    }
    done = subprocess.run(
        [sys.executable, definition["StaticHyperParameters"]["sagemaker_program"], *argv],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    finals = {}
    for metric in definition["AlgorithmSpecification"]["MetricDefinitions"]:
        values = [m.group(1) for line in lines if (m := re.search(metric["Regex"], line))]
        assert len(values) == 2, (metric, done.stdout[-2000:])  # one per epoch
        finals[metric["Name"]] = float(values[-1])
    assert 0 <= finals["val_accuracy"] <= 1 and finals["epoch"] == 2
    epochs = rq.parse_epochs(lines)
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[-1].metrics["val_accuracy"] == pytest.approx(finals["val_accuracy"])
    summary = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert summary["params"]["batch_size"] == 32 and summary["epochs"] == 2
    assert summary["dataset"] == "digits"
