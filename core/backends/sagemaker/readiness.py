"""What AWS can tell before a SageMaker launch, without creating anything or spending money.

:func:`assess` asks, in this order:

* STS ``GetCallerIdentity``: who the credentials are (an assumed-role ARN becomes its role's
  ARN, the role's path read with ``GetRole`` where permitted);
* S3 ``GetBucketLocation``: the bucket exists, in the jobs' region;
* IAM ``GetRole`` on the execution role: it exists, in the caller's account, and trusts
  ``sagemaker.amazonaws.com``;
* IAM ``SimulatePrincipalPolicy`` for the caller: the SageMaker calls CloudTune makes
  (create, describe, list, stop), ``iam:PassRole`` on the execution role (with
  ``iam:PassedToService``) and S3 on the bucket and prefix the launch uploads to;
* the same for the execution role: S3 reads of the trainer and data, writes of the output;
* ECR ``DescribeImages`` for the training image's tag (AWS's DLC account, or your own
  registry for a custom image).

A definite "no" is a problem, a sentence with the fix, and refuses the launch. Anything that
cannot be asked (no permission to simulate, an identity IAM cannot simulate, a bucket policy
that may grant what the identity's own policies do not, a condition the simulation has no
value for) is a note that says what was not checked; it never refuses. IAM's simulation does
not see session policies, and S3 resource policies are not part of a simulation for roles
(IAM accepts a resource policy only with an IAM user as the caller).

Example:
    >>> found = assess(lambda service, region=None: session.client(service), settings)
    >>> found.problems, found.notes
    ([], ['Could not check the execution role ...'])
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from core.backends import containers
from core.backends.cloud import Assessment
from core.backends.sagemaker import request as rq
from core.errors import BackendError

ClientFor = Callable[..., Any]
"""client_for(service, region=None) -> a boto3 client (the backend's, cached)."""

PROBE_JOB = "ct-readiness-check"
"""The tuning-job name the simulation asks about (CloudTune's names start with ct-)."""
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
CREDENTIAL_CODES = {
    "ExpiredToken": "the credentials expired: sign in again (e.g. `aws sso login`)",
    "ExpiredTokenException": "the credentials expired: sign in again (e.g. `aws sso login`)",
    "InvalidClientTokenId": "the access key is not valid: create a new one or sign in again",
    "SignatureDoesNotMatch": "the secret key does not match the access key: configure them again",
    "UnrecognizedClientException": "the credentials are not valid",
}
"""STS error codes that mean the credentials themselves are refused, with the fix."""
DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


@dataclass(frozen=True)
class Need:
    """One permission the launch or the training jobs need.

    Attributes:
        action: the IAM action, e.g. ``s3:GetObject``.
        resource: the ARN it is needed on.
        what: the resource in words, for the sentence (``s3://b/cloudtune/trainer/``).
    """

    action: str
    resource: str
    what: str


class _Refused(Exception):
    """An AWS call answered with an error (code and message kept)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _ask(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Call one AWS operation; errors become :class:`_Refused` (network ones included)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as err:
        info = err.response.get("Error", {})
        raise _Refused(str(info.get("Code") or "Error"), str(info.get("Message") or err)) from err
    except BotoCoreError as err:
        raise _Refused(type(err).__name__, str(err)) from err


# ----------------------------------------------------------------------------- identities


def principal_arn(caller_arn: str) -> tuple[str | None, str | None]:
    """Return the IAM ARN whose policies a caller acts with, and its role name if a role.

    ``arn:aws:sts::A:assumed-role/NAME/SESSION`` is the role ``arn:aws:iam::A:role/NAME``
    (its path, if any, is not in the assumed-role ARN: :func:`assess` reads it with GetRole).
    An IAM user's or role's ARN is itself. The root user, federated users and anything else
    cannot be simulated: (None, None).
    """
    parts = caller_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None, None
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        name = resource.split("/")[1]
        return f"arn:{partition}:iam::{account}:role/{name}", name
    if service == "iam" and resource.startswith("user/"):
        return caller_arn, None
    if service == "iam" and resource.startswith("role/"):
        return caller_arn, resource.rsplit("/", 1)[-1]
    return None, None


def _role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


# ----------------------------------------------------------------------------- what is needed


def _s3_object(bucket: str, key: str, partition: str = "aws") -> Need:
    folder = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
    return Need("", f"arn:{partition}:s3:::{bucket}/{key}", f"s3://{bucket}/{folder}")


def _data_location(settings: Mapping[str, Any]) -> tuple[str, str]:
    """The bucket and a sample key of the dataset (the user's s3:// data or CloudTune's)."""
    given = settings.get("data_uri")
    if given and str(given).startswith("s3://"):
        bucket, key = rq.split_s3_uri(str(given).rstrip("/") + "/")
        return bucket, f"{key}{rq.CHANNEL}.npz"
    return rq.bucket_name(settings), f"{rq.key_prefix(settings)}/datasets/{PROBE_JOB}/train.npz"


def _with(need: Need, action: str) -> Need:
    return Need(action, need.resource, need.what)


def caller_needs(settings: Mapping[str, Any], account: str) -> list[Need]:
    """Return what the caller needs: the SageMaker calls, PassRole, and the uploads to S3."""
    region = rq.region(settings)
    bucket, prefix = rq.bucket_name(settings), rq.key_prefix(settings)
    role = str(settings.get("role_arn") or "")
    p = _partition(role)
    job = f"arn:{p}:sagemaker:{region}:{account}:hyper-parameter-tuning-job/{PROBE_JOB}"
    trial = f"arn:{p}:sagemaker:{region}:{account}:training-job/{PROBE_JOB}-001-0a1b2c3d"
    trainer = _s3_object(bucket, f"{prefix}/trainer/{PROBE_JOB}/{rq.SOURCE_TARBALL}", p)
    data_bucket, data_key = _data_location(settings)
    data = _s3_object(data_bucket, data_key, p)
    needs = [
        Need(f"sagemaker:{op}", job, "the tuning jobs")
        for op in (
            "CreateHyperParameterTuningJob",
            "DescribeHyperParameterTuningJob",
            "ListTrainingJobsForHyperParameterTuningJob",
            "StopHyperParameterTuningJob",
        )
    ]
    needs.append(Need("sagemaker:DescribeTrainingJob", trial, "the tuning jobs' training jobs"))
    needs.append(Need("iam:PassRole", role, f"the execution role {role}"))
    needs += [_with(trainer, "s3:PutObject"), _with(trainer, "s3:GetObject")]
    if not settings.get("data_uri"):
        needs += [_with(data, "s3:PutObject"), _with(data, "s3:GetObject")]
    for name in sorted({bucket, data_bucket}):
        needs.append(Need("s3:ListBucket", f"arn:{p}:s3:::{name}", f"s3://{name}"))
    return needs


def role_needs(settings: Mapping[str, Any]) -> list[Need]:
    """Return what the execution role needs: read the trainer and data, write the output."""
    bucket, prefix = rq.bucket_name(settings), rq.key_prefix(settings)
    p = _partition(str(settings.get("role_arn") or ""))
    trainer = _s3_object(bucket, f"{prefix}/trainer/{PROBE_JOB}/{rq.SOURCE_TARBALL}", p)
    data_bucket, data_key = _data_location(settings)
    output = f"{prefix}/output/{PROBE_JOB}-001-0a1b2c3d/output/model.tar.gz"
    needs = [
        _with(trainer, "s3:GetObject"),
        _with(_s3_object(data_bucket, data_key, p), "s3:GetObject"),
        _with(_s3_object(bucket, output, p), "s3:PutObject"),
    ]
    for name in sorted({bucket, data_bucket}):
        needs.append(Need("s3:ListBucket", f"arn:{p}:s3:::{name}", f"s3://{name}"))
    return needs


# ----------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class Decision:
    """IAM's answer for one need: allowed, explicitDeny or implicitDeny, and the context
    keys a condition needed but the simulation had no value for."""

    decision: str
    missing_context: tuple[str, ...] = ()


def simulate(
    iam: Any, source_arn: str, needs: Iterable[Need], context: Mapping[str, str]
) -> dict[Need, Decision]:
    """Ask SimulatePrincipalPolicy about each need (one call per resource, paginated).

    Raises:
        _Refused: the caller may not simulate, or IAM does not know the principal.
    """
    by_resource: dict[str, list[Need]] = {}
    for need in needs:
        by_resource.setdefault(need.resource, []).append(need)
    entries = [
        {"ContextKeyName": key, "ContextKeyValues": [value], "ContextKeyType": "string"}
        for key, value in context.items()
    ]
    out: dict[Need, Decision] = {}
    for resource, group in by_resource.items():
        actions = sorted({n.action for n in group})
        found: dict[str, Decision] = {}
        marker: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "PolicySourceArn": source_arn,
                "ActionNames": actions,
                "ResourceArns": [resource],
                "ContextEntries": entries,
            }
            if marker:
                kwargs["Marker"] = marker
            page = _ask(iam.simulate_principal_policy, **kwargs)
            for result in page.get("EvaluationResults") or []:
                found[str(result["EvalActionName"]).lower()] = _decision(result, resource)
            marker = page.get("Marker") if page.get("IsTruncated") else None
            if not marker:
                break
        for need in group:
            out[need] = found.get(need.action.lower(), Decision("implicitDeny"))
    return out


def _decision(result: Mapping[str, Any], resource: str) -> Decision:
    """One EvaluationResult's decision on ``resource`` (the per-resource one where given)."""
    for specific in result.get("ResourceSpecificResults") or []:
        if specific.get("EvalResourceName") == resource:
            missing = specific.get("MissingContextValues") or []
            return Decision(str(specific["EvalResourceDecision"]), tuple(missing))
    missing = result.get("MissingContextValues") or []
    return Decision(str(result["EvalDecision"]), tuple(missing))


# ----------------------------------------------------------------------------- sentences


def _names(needs: Iterable[Need]) -> str:
    return ", ".join(sorted({n.action for n in needs}))


def _places(needs: Iterable[Need]) -> str:
    return ", ".join(sorted({n.what for n in needs}))


def _bucket_of(need: Need) -> str:
    return need.resource.split(":::", 1)[-1].split("/", 1)[0]


def _judge(
    decisions: Mapping[Need, Decision], bucket_policies: Mapping[str, bool | None]
) -> tuple[list[Need], list[Need]]:
    """Split the denied needs into definite ones and ones a policy IAM did not see may grant.

    A need is uncertain when a condition lacked a context value, or when it is an S3 action
    denied only implicitly while its bucket has a bucket policy, or its policy is unknown
    (None in ``bucket_policies``); an explicit deny is always definite.
    """
    definite, uncertain = [], []
    for need, said in decisions.items():
        if said.decision == "allowed":
            continue
        s3 = need.action.startswith("s3:")
        if said.decision != "explicitDeny" and (
            said.missing_context or (s3 and bucket_policies.get(_bucket_of(need)) is not False)
        ):
            uncertain.append(need)
        else:
            definite.append(need)
    return definite, uncertain


def caller_sentences(who: str, denied: list[Need]) -> list[str]:
    """The problems of a caller that lacks ``denied``, one sentence per kind, with the fix."""
    out = []
    sm = [n for n in denied if n.action.startswith("sagemaker:")]
    if sm:
        out.append(
            f"Your AWS identity ({who}) may not call {_names(sm)}, which CloudTune uses to "
            "launch, watch and stop the tuning jobs: attach a policy that allows them (e.g. "
            "the AWS managed AmazonSageMakerFullAccess) to it in the IAM console."
        )
    for need in (n for n in denied if n.action == "iam:PassRole"):
        out.append(
            f"Your AWS identity ({who}) may not pass the execution role {need.resource} to "
            "SageMaker (iam:PassRole): allow iam:PassRole on that role, with condition "
            f"iam:PassedToService = {SAGEMAKER_SERVICE}, in your identity's IAM policy."
        )
    s3 = [n for n in denied if n.action.startswith("s3:")]
    if s3:
        out.append(
            f"Your AWS identity ({who}) may not {_names(s3)} on {_places(s3)}, which the launch "
            "needs to upload the trainer and the data: allow s3:GetObject and s3:PutObject "
            "on the prefix and s3:ListBucket on the bucket, in your identity's IAM policy or "
            "the bucket policy."
        )
    return out


def role_sentence(role: str, denied: list[Need]) -> str:
    """The problem of an execution role that lacks ``denied``, with the fix."""
    return (
        f"The execution role {role} may not {_names(denied)} on {_places(denied)}, so the "
        "training jobs could not read the trainer and the data or write their output: allow "
        "s3:GetObject, s3:PutObject and s3:ListBucket there in the role's policy (IAM → Roles "
        f"→ {_role_name(role)} → Add permissions)."
    )


def _unsure(who: str, needs: list[Need]) -> str:
    return (
        f"Could not be sure that {who} may {_names(needs)} on {_places(needs)}: its IAM "
        "policies do not allow it, but a bucket policy or a condition the simulation cannot "
        "evaluate may; if it does not, the launch or the trials will fail with AccessDenied."
    )


# ----------------------------------------------------------------------------- the checks


def assess(client_for: ClientFor, settings: Mapping[str, Any], source: str) -> Assessment:
    """Ask AWS what it can say about a launch with ``settings``; nothing is created.

    Args:
        client_for: client_for(service, region=None) -> a boto3 client.
        settings: SageMaker settings that passed the offline checks.
        source: where the credentials were found, in words (for a refused-credentials
            sentence).
    """
    found = Assessment()
    try:
        identity = _ask(client_for("sts").get_caller_identity)
    except _Refused as err:
        hint = CREDENTIAL_CODES.get(err.code)
        if hint:
            found.problems.append(
                f"AWS refused the credentials from {source} ({err.code}): "
                f"{hint[0].upper() + hint[1:]}."
            )
        else:
            found.notes.append(
                f"Could not ask AWS about the credentials, the execution role, the bucket or "
                f"the training image ({err.code}: {err.message.rstrip('.')}); they are checked "
                "when the launch is sent."
            )
        return found
    account, caller = str(identity["Account"]), str(identity["Arn"])
    role = str(settings["role_arn"])
    iam = client_for("iam")
    s3 = client_for("s3")
    buckets = {rq.bucket_name(settings), _data_location(settings)[0]}
    bucket_policy = {name: _bucket_policy(s3, name) for name in sorted(buckets)}
    found.problems += bucket_problems(s3, sorted(buckets), rq.region(settings))
    if _account(role) != account:
        found.problems.append(
            f"The execution role {role} is in account {_account(role)}, but your credentials "
            f"are for account {account}: SageMaker runs the jobs as a role of the account that "
            "creates them; name a role of this account in Settings → AWS SageMaker → "
            "SageMaker execution role ARN, or use that account's credentials."
        )
    else:
        found.extend(_role_checks(iam, role, settings, bucket_policy))
    found.extend(_caller_checks(iam, caller, settings, account, bucket_policy))
    found.extend(image_check(client_for, settings))
    return found


def _bucket_policy(s3: Any, bucket: str) -> bool | None:
    """Whether the bucket has a bucket policy (None: it cannot be read, or no bucket)."""
    try:
        _ask(s3.get_bucket_policy, Bucket=bucket)
    except _Refused as err:
        return False if err.code == "NoSuchBucketPolicy" else None
    return True


def bucket_problems(s3: Any, buckets: Iterable[str], region: str) -> list[str]:
    """A bucket that does not exist, or lies in another region than the jobs (SageMaker reads
    and writes S3 in the job's region); a location that cannot be read is let be."""
    out = []
    for name in buckets:
        try:
            where = _ask(s3.get_bucket_location, Bucket=name).get("LocationConstraint")
        except _Refused as err:
            if err.code == "NoSuchBucket":
                out.append(
                    f"The S3 bucket {name} does not exist: create it in {region} (`aws s3 mb "
                    f"s3://{name} --region {region}`) or fix Settings → AWS SageMaker → S3 "
                    "bucket."
                )
            continue
        located = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(where, where)
        if located != region:
            out.append(
                f"The S3 bucket {name} is in {located}, but the jobs run in {region}: use a "
                f"bucket in {region}, or set the region to {located} (Settings → AWS SageMaker → AWS "
                "region)."
            )
    return out


def _role_checks(
    iam: Any, role: str, settings: Mapping[str, Any], bucket_policy: Mapping[str, bool | None]
) -> Assessment:
    found = Assessment()
    try:
        described = _ask(iam.get_role, RoleName=_role_name(role))["Role"]
    except _Refused as err:
        if err.code == "NoSuchEntity":
            found.problems.append(
                f"The execution role {role} does not exist: create a role SageMaker may assume "
                "(IAM → Roles → Create role → AWS service → SageMaker) and paste its ARN in "
                "Settings → AWS SageMaker → SageMaker execution role ARN."
            )
            return found
        found.notes.append(
            f"Could not check that the execution role {role} trusts SageMaker ({err.code}: "
            "your identity may not call iam:GetRole)."
        )
    else:
        if str(described.get("Arn") or role) != role:
            found.problems.append(
                f"The execution role's ARN is {described['Arn']}, not {role}: paste it as IAM "
                "shows it (with its path) in Settings → AWS SageMaker → SageMaker execution "
                "role ARN."
            )
            return found
        if not trusts_sagemaker(described.get("AssumeRolePolicyDocument")):
            found.problems.append(
                f"The execution role {role} does not let SageMaker assume it: add "
                f"{SAGEMAKER_SERVICE} as a trusted service with sts:AssumeRole (IAM → Roles → "
                f"{_role_name(role)} → Trust relationships)."
            )
    needs = role_needs(settings)
    try:
        decisions = simulate(iam, role, needs, _context(settings))
    except _Refused as err:
        found.notes.append(
            f"Could not check the execution role's access to s3://{rq.bucket_name(settings)}"
            f"/{rq.key_prefix(settings)}/ ({err.code}: your identity may not call "
            "iam:SimulatePrincipalPolicy on it); a missing permission would show as failed "
            "trials."
        )
        return found
    definite, uncertain = _judge(decisions, bucket_policy)
    if definite:
        found.problems.append(role_sentence(role, definite))
    if uncertain:
        found.notes.append(_unsure(f"the execution role {role}", uncertain))
    return found


def _caller_checks(
    iam: Any,
    caller: str,
    settings: Mapping[str, Any],
    account: str,
    bucket_policy: Mapping[str, bool | None],
) -> Assessment:
    found = Assessment()
    source_arn, role_name = principal_arn(caller)
    what = "sagemaker:CreateHyperParameterTuningJob, iam:PassRole on the role and S3 uploads"
    if source_arn is None:
        found.notes.append(
            f"Could not check your own permissions ({what}): {caller} is not an IAM user or "
            "role whose policies IAM can simulate; a missing one shows when the launch is sent."
        )
        return found
    if role_name and caller.split(":")[2] == "sts":  # the role's path is not in the session ARN
        with suppress(_Refused):  # without GetRole, the ARN without a path
            source_arn = str(_ask(iam.get_role, RoleName=role_name)["Role"]["Arn"])
    try:
        decisions = simulate(iam, source_arn, caller_needs(settings, account), _context(settings))
    except _Refused as err:
        found.notes.append(
            f"Could not check your own permissions ({what}): IAM refused to simulate "
            f"{source_arn} ({err.code}; it needs iam:SimulatePrincipalPolicy); a missing one "
            "shows when the launch is sent."
        )
        return found
    definite, uncertain = _judge(decisions, bucket_policy)
    found.problems += caller_sentences(source_arn, definite)
    if uncertain:
        found.notes.append(_unsure(f"your AWS identity ({source_arn})", uncertain))
    return found


def _context(settings: Mapping[str, Any]) -> dict[str, str]:
    """The request context the real calls carry, for policies with conditions on it."""
    return {"iam:PassedToService": SAGEMAKER_SERVICE, "aws:RequestedRegion": rq.region(settings)}


def trusts_sagemaker(document: Any) -> bool:
    """Whether a role's trust policy lets ``sagemaker.amazonaws.com`` call sts:AssumeRole."""
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return False
    statements = (document or {}).get("Statement") or []
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        services = (statement.get("Principal") or {}).get("Service") or []
        services = [services] if isinstance(services, str) else services
        if SAGEMAKER_SERVICE in services:
            return True
    return False


# ----------------------------------------------------------------------------- the image


def parse_image(uri: str) -> dict[str, str] | None:
    """Split an ECR image URI into registry, region, repository and tag or digest."""
    match = _IMAGE.match(uri)
    return {k: v for k, v in match.groupdict().items() if v} if match else None


def image_check(client_for: ClientFor, settings: Mapping[str, Any]) -> Assessment:
    """ECR DescribeImages for the training image's tag (where the caller may ask)."""
    found = Assessment()
    try:
        uri = rq.training_image(settings)
    except BackendError as err:
        found.problems.append(str(err))
        return found
    image = parse_image(uri)
    if image is None:
        found.notes.append(
            f"The training image {uri} is not in Amazon ECR, so it was not looked up; "
            "SageMaker pulls training images from ECR."
        )
        return found
    image_id = {"imageDigest": image["digest"]} if "digest" in image else {}
    image_id = image_id or {"imageTag": image.get("tag", "latest")}
    ecr = client_for("ecr", image["region"])
    try:
        _ask(
            ecr.describe_images,
            registryId=image["registry"],
            repositoryName=image["repository"],
            imageIds=[image_id],
        )
    except _Refused as err:
        custom = bool(containers.custom_image(settings) or settings.get("training_image"))
        if err.code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            fix = (
                f"push it (`{containers.build_command('sagemaker', settings)}`) or clear "
                "Settings → AWS SageMaker → Custom training image"
                if custom
                else f"use framework_version {rq.DEFAULT_FRAMEWORK_VERSION} or a custom image"
            )
            found.problems.append(f"The training image {uri} does not exist ({err.code}): {fix}.")
        else:
            found.notes.append(
                f"Could not check that the training image {uri} exists ({err.code}: "
                f"ecr:DescribeImages on registry {image['registry']} was refused)."
            )
    return found
