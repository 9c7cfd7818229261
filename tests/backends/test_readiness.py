"""Readiness checks that ask the clouds' APIs: IAM simulation and ECR (moto), the staging bucket
and its readers (the Vertex fake), the compute target (the Azure ML fake). Nothing is created."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.store import Store
from tests.fake_aws import (
    ACCOUNT,
    BUCKET,
    ROLE_ARN,
    FakeAWS,
    bucket_policy_for,
    fake_aws,
    policy_document,
)
from tests.harness_sagemaker import SETTINGS as SM_SETTINGS

# ----------------------------------------------------------------------------- SageMaker

PASS_ROLE = {
    "Effect": "Allow",
    "Action": "iam:PassRole",
    "Resource": ROLE_ARN,
    "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
}


def caller_policy(*, without: str = "", extra: list[dict[str, Any]] | None = None) -> dict:
    """Everything a CloudTune user needs on SageMaker, less the action ``without``, plus
    the ``extra`` statements."""
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateHyperParameterTuningJob",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:DescribeTrainingJob",
            ],
            "Resource": "*",
        },
        copy.deepcopy(PASS_ROLE),
        *bucket_policy_for(BUCKET)["Statement"],
        {
            "Effect": "Allow",
            "Action": ["iam:SimulatePrincipalPolicy", "iam:GetRole", "ecr:DescribeImages"],
            "Resource": "*",
        },
    ]
    for st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        st["Action"] = [a for a in actions if a != without]
    kept = [s for s in statements if s["Action"]] + list(extra or [])
    return policy_document(*kept)


def dlc_image() -> str:
    from core.backends.sagemaker import request as rq

    return rq.training_image(SM_SETTINGS)


@pytest.fixture()
def aws() -> Iterator[FakeAWS]:
    with fake_aws() as fake:
        fake.create_bucket(BUCKET)
        fake.create_execution_role()
        fake.publish_image(dlc_image())
        yield fake


def _backend(store: Store, creds: dict[str, str] | None = None) -> Any:
    import boto3

    from core.backends.sagemaker.backend import SageMakerBackend

    def session(settings: Any) -> Any:
        return boto3.session.Session(region_name=settings.get("region"), **(creds or {}))

    return SageMakerBackend(store, session_factory=session)


def _as_user(aws: FakeAWS, store: Store, policy: dict, name: str = "dev") -> Any:
    return _backend(store, aws.create_user(name, policy))


def test_a_user_with_every_permission_gets_no_finding(aws: FakeAWS, store: Store) -> None:
    found = _as_user(aws, store, caller_policy()).assess(SM_SETTINGS)
    assert found.problems == [] and found.notes == []


LACKING = {
    "sagemaker:CreateHyperParameterTuningJob": "may not call sagemaker:Create",
    "sagemaker:StopHyperParameterTuningJob": "may not call sagemaker:Stop",
    "iam:PassRole": "may not pass the execution role",
    "s3:PutObject": "may not s3:PutObject on s3://cloudtune-test/cloudtune/",
    "s3:ListBucket": "may not s3:ListBucket on s3://cloudtune-test",
}
"""A permission the caller lacks -> what its sentence says (one fake, a user each)."""


def test_each_permission_the_caller_lacks_is_a_sentence_with_the_fix(
    aws: FakeAWS, store: Store
) -> None:
    for n, (missing, says) in enumerate(LACKING.items()):
        backend = _as_user(aws, store, caller_policy(without=missing), f"dev{n}")
        found = backend.assess(SM_SETTINGS)
        assert len(found.problems) == 1, (missing, found.problems)
        (problem,) = found.problems
        assert says in problem and missing in problem
        assert f"arn:aws:iam::{ACCOUNT}:user/dev{n}" in problem  # whose permission it is
        assert any(fix in problem for fix in ("attach a policy", "allow iam:PassRole", "allow s3:"))
        assert found.notes == []
        assert backend.check(SM_SETTINGS) == found.problems  # check() refuses with the same


def test_pass_role_is_simulated_with_the_service_it_is_passed_to(
    aws: FakeAWS, store: Store
) -> None:
    other = copy.deepcopy(PASS_ROLE)
    other["Condition"]["StringEquals"]["iam:PassedToService"] = "ec2.amazonaws.com"
    policy = caller_policy(without="iam:PassRole", extra=[other])
    found = _as_user(aws, store, policy).assess(SM_SETTINGS)
    assert any("iam:PassRole" in p for p in found.problems)  # a role passable to EC2 only
    tagged = copy.deepcopy(PASS_ROLE)
    tagged["Condition"] = {"StringEquals": {"aws:PrincipalTag/team": "ml"}}
    policy = caller_policy(without="iam:PassRole", extra=[tagged])
    found = _as_user(aws, store, policy, "tagged").assess(SM_SETTINGS)
    assert found.problems == []  # a condition the simulation has no value for: not a refusal
    assert any("Could not be sure" in n and "iam:PassRole" in n for n in found.notes)


def test_an_explicit_deny_wins(aws: FakeAWS, store: Store) -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    found = _as_user(aws, store, caller_policy(extra=[deny])).assess(SM_SETTINGS)
    assert any("may not s3:GetObject, s3:PutObject" in p for p in found.problems)


def test_a_bucket_policy_makes_an_s3_gap_a_note_not_a_refusal(aws: FakeAWS, store: Store) -> None:
    import json

    grant = policy_document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/dev"},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/*",
        }
    )
    aws.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(grant))
    found = _as_user(aws, store, caller_policy(without="s3:PutObject")).assess(SM_SETTINGS)
    assert found.problems == []
    assert any("Could not be sure" in n and "s3:PutObject" in n for n in found.notes)


def test_the_bucket_must_exist_in_the_jobs_region(aws: FakeAWS, store: Store) -> None:
    backend = _as_user(aws, store, caller_policy())
    (gone,) = backend.check(dict(SM_SETTINGS, bucket="no-such-bucket"))[:1]
    assert gone.startswith("The S3 bucket no-such-bucket does not exist: create it in us-east-1")
    aws.client("s3").create_bucket(
        Bucket="far-away", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    far = [p for p in backend.check(dict(SM_SETTINGS, bucket="far-away")) if "S3 bucket" in p]
    assert far == [
        "The S3 bucket far-away is in eu-west-1, but the jobs run in us-east-1: use a bucket in "
        "us-east-1, or set the region to eu-west-1 (Settings → AWS SageMaker → AWS region)."
    ]


def test_the_execution_role_must_reach_the_bucket_and_trust_sagemaker(store: Store) -> None:
    with fake_aws() as aws:
        aws.create_bucket(BUCKET)
        aws.publish_image(dlc_image())
        backend = _as_user(aws, store, caller_policy())
        (gone,) = backend.assess(SM_SETTINGS).problems
        assert gone.startswith(f"The execution role {ROLE_ARN} does not exist: create a role")
        read_only = bucket_policy_for(BUCKET)
        read_only["Statement"][0]["Action"] = ["s3:GetObject"]
        aws.create_execution_role(policy=read_only, trusted="ec2.amazonaws.com")
        problems = backend.assess(SM_SETTINGS).problems
        assert len(problems) == 2
        assert "does not let SageMaker assume it" in problems[0]
        assert "Trust relationships" in problems[0]
        assert "may not s3:PutObject on s3://cloudtune-test/cloudtune/output/" in problems[1]
        assert "the training jobs could not read the trainer" in problems[1]
        other_account = dict(SM_SETTINGS, role_arn="arn:aws:iam::210987654321:role/Elsewhere")
        elsewhere, passing = backend.assess(other_account).problems
        assert "is in account 210987654321, but your credentials are for account" in elsewhere
        assert "may not pass the execution role arn:aws:iam::210987654321:" in passing


def test_a_role_with_a_path_must_be_named_with_it(store: Store) -> None:
    with fake_aws() as aws:
        aws.create_bucket(BUCKET)
        aws.publish_image(dlc_image())
        arn = aws.create_execution_role("Pathed", path="/service-role/")
        assert arn == f"arn:aws:iam::{ACCOUNT}:role/service-role/Pathed"
        passes = dict(PASS_ROLE, Resource=f"arn:aws:iam::{ACCOUNT}:role/*")
        backend = _as_user(aws, store, caller_policy(extra=[passes]))
        bare = dict(SM_SETTINGS, role_arn=f"arn:aws:iam::{ACCOUNT}:role/Pathed")
        (problem,) = backend.assess(bare).problems
        assert f"The execution role's ARN is {arn}, not" in problem
        assert backend.assess(dict(SM_SETTINGS, role_arn=arn)).problems == []


def test_an_assumed_role_is_simulated_as_its_role(aws: FakeAWS, store: Store) -> None:
    import json

    iam = aws.client("iam")
    trust = policy_document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.create_role(RoleName="Dev", Path="/team/", AssumeRolePolicyDocument=json.dumps(trust))
    policy = caller_policy(without="iam:PassRole")
    iam.put_role_policy(RoleName="Dev", PolicyName="p", PolicyDocument=json.dumps(policy))
    backend = _backend(store, aws.assume(f"arn:aws:iam::{ACCOUNT}:role/team/Dev"))
    (problem,) = backend.assess(SM_SETTINGS).problems
    assert f"Your AWS identity (arn:aws:iam::{ACCOUNT}:role/team/Dev) may not pass" in problem


def test_what_cannot_be_simulated_is_said_and_does_not_refuse(aws: FakeAWS, store: Store) -> None:
    policy = caller_policy(without="iam:SimulatePrincipalPolicy")
    backend = _as_user(aws, store, policy)
    found = backend.assess(SM_SETTINGS)
    assert found.problems == [] and backend.check(SM_SETTINGS) == []
    role, mine = found.notes
    assert mine.startswith("Could not check your own permissions (sagemaker:Create")
    assert "IAM refused to simulate" in mine and "iam:SimulatePrincipalPolicy" in mine
    assert role.startswith("Could not check the execution role's access to s3://")
    # moto's default keys are no IAM identity: nothing to simulate, said once
    (default,) = _backend(store).assess(SM_SETTINGS).notes
    assert "is not an IAM user or role whose policies IAM can simulate" in default


def test_the_training_image_is_looked_up_in_ecr(store: Store) -> None:
    from core.backends.sagemaker.readiness import parse_image

    image = dlc_image()
    assert parse_image(image) == {
        "registry": "763104351884",
        "region": "us-east-1",
        "repository": "tensorflow-training",
        "tag": image.split(":")[-1],
    }
    with fake_aws() as aws:
        aws.create_bucket(BUCKET)
        aws.create_execution_role()
        backend = _as_user(aws, store, caller_policy())
        aws.publish_image(image.rsplit(":", 1)[0] + ":2.21-cpu-py312-sagemaker")  # another tag
        (problem,) = backend.assess(SM_SETTINGS).problems
        assert problem.startswith(f"The training image {image} does not exist")
        assert "ImageNotFoundException" in problem and "framework_version" in problem
        aws.publish_image(image, describable=False)  # the repository lets it be pulled only
        found = backend.assess(SM_SETTINGS)
        assert found.problems == []
        assert found.notes == [
            f"Could not check that the training image {image} exists (AccessDeniedException: "
            "ecr:DescribeImages on registry 763104351884 was refused)."
        ]
        custom = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/cloudtune-trainer:v1"
        (unpushed,) = backend.assess(dict(SM_SETTINGS, image=custom)).problems
        assert "does not exist (RepositoryNotFoundException): push it (`" in unpushed
        aws.client("ecr").create_repository(repositoryName="cloudtune-trainer")
        aws.publish_image(custom)
        assert backend.assess(dict(SM_SETTINGS, image=custom)).problems == []


def test_principal_arns() -> None:
    from core.backends.sagemaker.readiness import principal_arn, trusts_sagemaker

    assert principal_arn(f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Dev/alice") == (
        f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Dev",
        "AWSReservedSSO_Dev",
    )
    assert principal_arn(f"arn:aws:iam::{ACCOUNT}:user/ops/bob") == (
        f"arn:aws:iam::{ACCOUNT}:user/ops/bob",
        None,
    )
    assert principal_arn(f"arn:aws:iam::{ACCOUNT}:root") == (None, None)
    assert principal_arn(f"arn:aws:sts::{ACCOUNT}:federated-user/carol") == (None, None)
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["ec2.amazonaws.com", "sagemaker.amazonaws.com"]},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ]
    }
    assert trusts_sagemaker(trust)
    trust["Statement"][0]["Effect"] = "Deny"
    assert not trusts_sagemaker(trust)


def test_refused_credentials_are_a_problem_and_an_unreachable_sts_a_note() -> None:
    """STS's own error codes, through botocore's Stubber on a real client (no moto needed)."""
    import boto3
    from botocore.stub import Stubber

    from core.backends.sagemaker import readiness

    sts = boto3.session.Session(
        aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
    ).client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken", "The token expired.", 403)
        stub.add_client_error("get_caller_identity", "Throttling", "Rate exceeded", 400)
        expired = readiness.assess(lambda service, region=None: sts, SM_SETTINGS, "SSO")
        busy = readiness.assess(lambda service, region=None: sts, SM_SETTINGS, "SSO")
    assert expired.problems == [
        "AWS refused the credentials from SSO (ExpiredToken): The credentials expired: sign "
        "in again (e.g. `aws sso login`)."
    ]
    assert busy.problems == [] and busy.notes[0].startswith(
        "Could not ask AWS about the credentials, the execution role, the bucket or the "
        "training image (Throttling: Rate exceeded)"
    )


def test_the_launch_page_reuses_an_answer_for_a_minute(
    aws: FakeAWS, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.runs import assess

    backend = _as_user(aws, store, caller_policy(without="iam:PassRole"))
    calls: list[int] = []
    original = type(backend).assess

    def counted(self: Any, settings: Any) -> Any:
        calls.append(1)
        return original(self, settings)

    monkeypatch.setattr(type(backend), "assess", counted)
    first = assess(backend, None, SM_SETTINGS, max_age_s=60)
    again = assess(backend, None, SM_SETTINGS, max_age_s=60)
    assert first == again and len(first.problems) == 1 and len(calls) == 1
    assess(backend, None, SM_SETTINGS)  # a launch asks afresh
    assert len(calls) == 2


# ----------------------------------------------------------------------------- Vertex AI

AGENT = "service-424242424242@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"


@pytest.fixture()
def vertex(store: Store, tmp_path: Path) -> Iterator[Any]:
    from tests.harness_vertex import harness

    with harness(store, tmp_path) as h:
        yield h


def test_vertex_bucket_in_the_project_is_ready(vertex: Any) -> None:
    found = vertex.backend.assess(vertex.settings)
    assert found.problems == [] and found.notes == []
    asked = [path for _, path in vertex.fake.calls]
    assert asked == [
        "/storage/v1/b/cloudtune-test-bucket",
        "/storage/v1/b/cloudtune-test-bucket/iam/testPermissions",
        "/v3/projects/cloudtune-test",
    ]  # the agent reads its own project's buckets: no policy needs reading


def test_vertex_staging_bucket_must_exist_and_take_the_uploads(vertex: Any) -> None:
    fake = vertex.fake
    (gone,) = vertex.backend.check(dict(vertex.settings, bucket="gs://no-such-bucket"))
    assert gone.startswith("The staging bucket gs://no-such-bucket does not exist: create it")
    assert "gcloud storage buckets create gs://no-such-bucket --project=cloudtune-test" in gone
    fake.caller_permissions = {"storage.objects.get"}
    (upload,) = vertex.backend.check(vertex.settings)
    assert upload.startswith("Your Google Cloud account lacks storage.objects.create on gs://")
    assert "--role=roles/storage.objectUser" in upload
    fake.refused.add("storage.buckets.get")  # may not read the bucket: said, not refused
    found = vertex.backend.assess(vertex.settings)
    assert found.problems == [upload]  # testIamPermissions still answers
    assert found.notes == [
        "Could not check that gs://cloudtune-test-bucket exists or who may read it: your "
        "account may not read the bucket's metadata (storage.buckets.get)."
    ]


def test_vertex_agent_must_be_granted_a_bucket_of_another_project(vertex: Any) -> None:
    fake = vertex.fake
    fake.create_bucket("shared-data", "data-project")
    settings = dict(vertex.settings, bucket="gs://shared-data")
    (problem,) = vertex.backend.check(settings)
    assert problem.startswith(
        f"The Vertex AI Custom Code Service Agent ({AGENT}), which runs the trials, may not "
        "read gs://shared-data: grant it Storage Object Viewer"
    )
    assert f"--member=serviceAccount:{AGENT} --role=roles/storage.objectViewer" in problem
    viewer = {"role": "roles/storage.objectViewer", "members": [f"serviceAccount:{AGENT}"]}
    fake.buckets["shared-data"]["bindings"].append(viewer)
    assert vertex.backend.assess(settings).notes == [] and vertex.backend.check(settings) == []
    fake.buckets["shared-data"]["bindings"][-1] = dict(viewer, members=["group:ml@example.com"])
    found = vertex.backend.assess(settings)
    assert found.problems == []
    assert found.notes[0].startswith(f"Could not be sure that {AGENT} can read gs://shared-data")


def test_vertex_custom_service_account_is_the_reader(vertex: Any) -> None:
    fake = vertex.fake
    account = "trainer@cloudtune-test.iam.gserviceaccount.com"
    settings = dict(vertex.settings, service_account=account)
    (problem,) = vertex.backend.check(settings)
    assert problem.startswith(
        "The service account of Settings → Vertex AI → Service account for the trials "
        f"({account}), which runs"
    )
    grant = {"role": "roles/storage.objectViewer", "members": [f"serviceAccount:{account}"]}
    fake.projects["cloudtune-test"]["bindings"].append(grant)  # on the bucket's project
    assert vertex.backend.assess(settings).problems == []


def test_vertex_what_cannot_be_read_is_said_and_does_not_refuse(vertex: Any) -> None:
    fake = vertex.fake
    fake.create_bucket("shared-data", "data-project")
    settings = dict(vertex.settings, bucket="gs://shared-data")
    fake.refused.add("storage.buckets.getIamPolicy")
    found = vertex.backend.assess(settings)
    assert found.problems == [] and vertex.backend.check(settings) == []
    assert found.notes == [
        f"Could not check that the Vertex AI Custom Code Service Agent ({AGENT}) can read "
        "gs://shared-data: the bucket's IAM policy could not be read (Forbidden; it needs "
        "storage.buckets.getIamPolicy)."
    ]
    fake.refused.add("resourcemanager.projects.get")
    (note,) = vertex.backend.assess(settings).notes
    assert note == (
        "Could not check that the Vertex AI Custom Code Service Agent of cloudtune-test can "
        "read gs://shared-data: the project's number could not be read (Forbidden; it "
        "needs resourcemanager.projects.get)."
    )


# ----------------------------------------------------------------------------- Azure ML


@pytest.fixture()
def azure(store: Store, tmp_path: Path) -> Iterator[Any]:
    from tests.harness_azure import harness

    with harness(store, tmp_path) as h:
        yield h


def test_azure_compute_is_read_and_its_size_is_what_prices_the_run(
    azure: Any, store: Store
) -> None:
    from core.costs.pricing import hourly_price

    found = azure.backend.assess(azure.settings)
    assert found.problems == [] and found.notes == []
    assert hourly_price("azure", "Standard_DS3_v2", region="eastus") is not None
    gpu = dict(azure.settings, compute="gpu-cluster")
    (note,) = azure.backend.assess(gpu).notes
    assert note == (
        "The compute gpu-cluster runs Standard_NC6s_v3, not Standard_DS3_v2: the trials run on "
        "Standard_NC6s_v3 and are priced as it; set it as the VM size (Settings → Azure ML → "
        "VM size of the cluster) so the forecast prices the same machine."
    )
    assert azure.backend.check(gpu) == []  # a note, not a refusal
    azure.fake.computes["odd-cluster"] = "STANDARD_UNPRICED_V9"
    odd = dict(azure.settings, compute="odd-cluster", instance_type="")
    assert azure.backend.assess(odd).notes == [
        "CloudTune has no price for STANDARD_UNPRICED_V9: add one with Override a price on "
        "the Settings page (or set price_per_hour) to see the runs' cost."
    ]
    assert azure.backend.assess(dict(odd, price_per_hour=1.5)).notes == []
    from core.costs.pricing import set_price_override

    set_price_override(store, "azure", "STANDARD_UNPRICED_V9", 2.0)
    assert azure.backend.assess(odd).notes == []  # an override prices it too


def test_azure_launch_reads_the_compute_once(azure: Any, store: Store) -> None:
    from core.spec import StudySpec

    spec = StudySpec.load(Path(__file__).parents[2] / "assets" / "specs" / "published_study.json")
    run_id = store.create_run(store.create_study(spec), "azure", settings=azure.settings, spec=spec)
    azure.backend.launch(spec, store.get_run(run_id))
    computes = [p for m, p in azure.fake.calls if m == "GET" and "/computes/" in p]
    assert computes == [computes[0]] and computes[0].endswith("/computes/cpu-cluster")
    assert store.get_run(run_id).instance_type == "Standard_DS3_v2"


def test_azure_missing_compute_refuses_and_an_unreadable_one_is_said(azure: Any) -> None:
    (problem,) = azure.backend.check(dict(azure.settings, compute="no-such-cluster"))
    assert problem.startswith(
        "The compute no-such-cluster does not exist in workspace ws-cloudtune-test: create a "
        "compute cluster of that name"
    )
    assert "`az ml compute create --name no-such-cluster --type AmlCompute" in problem
    azure.fake.denied.add("Microsoft.MachineLearningServices/workspaces/computes/read")
    found = azure.backend.assess(azure.settings)
    assert found.problems == []
    (note,) = found.notes
    assert note.startswith("Could not read the compute cpu-cluster of workspace ws-cloudtune-test")
    assert "HTTP 403" in note and "the forecast prices Settings → Azure ML → VM size" in note
