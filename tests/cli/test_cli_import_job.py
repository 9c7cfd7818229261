"""`import-job`: a failure ends with the run failed and its reason, never a queued run."""

from __future__ import annotations

import json
import os

import pytest

from core.cli import main
from core.store import Store


def _only_run_failed(store: Store, *reason: str) -> None:
    [run] = store.list_runs()
    assert run.status == "failed" and run.status_detail == "import failed"
    assert run.error and all(text in run.error for text in reason), run.error
    assert store.list_runs(statuses=["queued", "running"]) == []


def test_no_aws_region_is_a_sentence_naming_the_setting(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # credentials found, no region
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["import-job", "my-job", "--backend", "sagemaker"]) == 2
    err = capsys.readouterr().err
    assert "The AWS region is not set" in err and "sagemaker.region" in err
    assert "--set region=us-east-1" in err and "Traceback" not in err
    _only_run_failed(store, "The AWS region is not set")


def test_no_vertex_project_is_a_sentence_naming_the_setting(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import-job", "424242", "--backend", "vertex"]) == 2
    err = capsys.readouterr().err
    assert "Vertex AI needs the project" in err and "vertex.project" in err
    assert "--set project=" in err
    _only_run_failed(store, "vertex.project")


def test_a_job_the_cloud_does_not_have_fails_the_run_with_the_reason(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fake_aws import fake_aws
    from tests.harness_sagemaker import SETTINGS

    with fake_aws():
        assert main(["import-job", "no-such-job", "--backend", "sagemaker"]) == 2
        err = capsys.readouterr().err
        assert "no tuning job named 'no-such-job'" in err
        _only_run_failed(store, "no tuning job named 'no-such-job'")
        # --set gives the run its settings; they are stored on it (the region named)
        store.delete_run(store.list_runs()[0].id)
        args = ["import-job", "gone", "--backend", "sagemaker", "--set", "region=eu-west-1"]
        assert main(args) == 2
        assert "in region eu-west-1" in capsys.readouterr().err
        [run] = store.list_runs()
        assert run.settings["region"] == "eu-west-1" and run.status == "failed"
    assert SETTINGS["region"] != "eu-west-1"


def test_an_unexpected_error_is_a_sentence_and_fails_the_run(
    store: Store, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.backends.sagemaker.backend import SageMakerBackend

    def broken(self: object, job_name: str, run: object) -> None:
        raise KeyError("TrainingJobDefinition")

    monkeypatch.setattr(SageMakerBackend, "import_job", broken)
    assert main(["import-job", "odd-job", "--backend", "sagemaker"]) == 2
    err = capsys.readouterr().err
    assert "Importing the AWS SageMaker job odd-job failed: KeyError" in err
    assert "Traceback" not in err
    _only_run_failed(store, "odd-job failed: KeyError: 'TrainingJobDefinition'")


def test_a_finished_job_imports_as_a_completed_run(
    store: Store, published_spec: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.backends.sagemaker import request as rq
    from tests.fake_aws import BUCKET, fake_aws
    from tests.harness_sagemaker import SETTINGS

    for key, value in SETTINGS.items():
        store.set_setting(f"sagemaker.{key}", value)
    with fake_aws() as aws:
        aws.create_bucket(BUCKET)
        request = rq.build_request(
            published_spec,  # type: ignore[arg-type]
            SETTINGS,
            job_name="done",
            data_uri=f"s3://{BUCKET}/d/",
            trainer_uri=f"s3://{BUCKET}/t.tar.gz",
        )
        aws.client("sagemaker").create_hyper_parameter_tuning_job(**request)
        aws.finish("done", 2)
        assert main(["import-job", "done", "--backend", "sagemaker"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "completed" and out["trials"] == {"completed": 2}
    [run] = store.list_runs()
    assert run.status == "completed" and run.error is None and run.handle == "done"
