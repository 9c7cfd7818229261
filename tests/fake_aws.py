"""A local AWS for tests: moto's server on loopback, plus the SageMaker calls moto lacks.

:func:`fake_aws` starts moto's ``ThreadedMotoServer`` on 127.0.0.1, points every boto3 client
at it through ``AWS_ENDPOINT_URL`` and gives them fake credentials, so the code under test
makes its real AWS calls over HTTP and nothing leaves the machine. moto 5.2 answers S3 and
CreateHyperParameterTuningJob / DescribeHyperParameterTuningJob / CreateTrainingJob /
DescribeTrainingJob itself; this module adds to the server the two operations it does not
implement (ListTrainingJobsForHyperParameterTuningJob and StopHyperParameterTuningJob) and
makes a new tuning job start "InProgress" (moto marks it Completed at once). A tuning job's
training jobs are real moto training jobs that :meth:`FakeAWS.add_trials` creates, as
SageMaker would.

For the readiness check it adds IAM ``SimulatePrincipalPolicy`` (moto 5.2.5 has none): the
principal's inline and attached policies, its groups' and its permissions boundary are
evaluated here (:func:`evaluate`: Allow/Deny, Action/NotAction, Resource/NotResource, the
String*/Arn* conditions on the context the request gives; any other condition, or a key the
context lacks, leaves the statement out and lists the key as missing, as IAM does). It does
not know service control policies or session policies, which the real simulation applies.
ECR ``DescribeImages`` is wrapped so that another account's registry (AWS's Deep Learning
Containers live in 763104351884) answers by its repository policy, as ECR does across
accounts; whether AWS's own DLC repositories grant DescribeImages to everyone is not
documented, so a test says so with :meth:`FakeAWS.publish_image`. A caller that is an IAM user
or an assumed role of the fake (not moto's default "testing" keys) needs
iam:SimulatePrincipalPolicy and ecr:DescribeImages in its own policies for these two calls,
and is refused with AWS's AccessDenied otherwise.

Example:
    >>> with fake_aws() as aws:
    ...     aws.create_bucket("b")
    ...     ...                                   # launch a tuning job through boto3
    ...     aws.finish("ct-demo-1-abc", 2)        # two completed training jobs, job Completed
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.trainer_output import TrainerRun, default_curve, trainer_run

ACCOUNT = "123456789012"
"""moto's default account."""
REGION = "us-east-1"
BUCKET = "cloudtune-test"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/CloudTuneSageMaker"

_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")

_ACTIVE: FakeAWS | None = None
"""The fake the server's added handlers record into (one at a time)."""


@dataclass
class FakeAWS:
    """The running fake: its endpoint, what it was asked, and levers to move jobs along.

    Attributes:
        endpoint: http://127.0.0.1:<port>.
        created: CreateHyperParameterTuningJob requests received, by job name.
        stopped: names of tuning jobs a StopHyperParameterTuningJob call named.
        listed: names of tuning jobs whose training jobs were listed.
        page_size: at most this many training jobs per list page (tests pagination).
        logs_lag: hold back each finished trial's last epoch lines until flush_logs().
    """

    endpoint: str
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    page_size: int = 100
    logs_lag: bool = False
    trials: dict[str, list[str]] = field(default_factory=dict)
    _clients: dict[str, Any] = field(default_factory=dict)
    _streams: set[str] = field(default_factory=set)
    _clock: int = 0

    # -- moto's in-process state
    @staticmethod
    def sagemaker() -> Any:
        """Return moto's SageMaker backend for the test account and region."""
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][REGION]

    def tuning_job(self, name: str) -> Any:
        """Return moto's record of a tuning job (ResourceNotFound, as AWS, when there is none)."""
        from moto.sagemaker.exceptions import ResourceNotFound

        jobs = self.sagemaker().hyper_parameter_tuning_jobs
        if name not in jobs:
            raise ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job {name!r}.")
        return jobs[name]

    def client(self, service: str) -> Any:
        """Return a boto3 client aimed at the fake (one per service)."""
        import boto3

        if service not in self._clients:
            self._clients[service] = boto3.session.Session(region_name=REGION).client(service)
        return self._clients[service]

    def create_bucket(self, name: str = BUCKET) -> None:
        """Create an S3 bucket in the fake."""
        self.client("s3").create_bucket(Bucket=name)

    # -- identities and images for the readiness check (through the real IAM/ECR APIs)
    def create_execution_role(
        self,
        name: str = ROLE_ARN.rsplit("/", 1)[-1],
        *,
        policy: Mapping[str, Any] | None = None,
        trusted: str = "sagemaker.amazonaws.com",
        path: str = "/",
    ) -> str:
        """Create an execution role (trusting ``trusted``) with ``policy`` inline; return its ARN.

        The default policy lets it read and write the test bucket, as a SageMaker role must.
        """
        iam = self.client("iam")
        trust = policy_document(
            {"Effect": "Allow", "Principal": {"Service": trusted}, "Action": "sts:AssumeRole"}
        )
        role = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))
        document = policy if policy is not None else bucket_policy_for(BUCKET)
        iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(document))
        return str(role["Role"]["Arn"])

    def create_user(self, name: str, policy: Mapping[str, Any]) -> dict[str, str]:
        """Create an IAM user with ``policy`` inline; return boto3 Session keyword arguments
        with its access key (so GetCallerIdentity answers with this user)."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="access", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }

    def assume(self, role_arn: str, session: str = "dev") -> dict[str, str]:
        """Assume ``role_arn``; return boto3 Session keyword arguments with the session's keys
        (GetCallerIdentity then answers arn:aws:sts::<account>:assumed-role/<name>/<session>)."""
        creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)
        c = creds["Credentials"]
        return {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }

    def publish_image(self, uri: str, *, describable: bool = True) -> None:
        """Put an image with ``uri``'s tag into its registry (another account's, for a DLC).

        Args:
            uri: ``<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>``.
            describable: for another account's registry, a repository policy lets every
                principal call ecr:DescribeImages (False: pulls only, so DescribeImages from
                this account is refused, as ECR refuses it without such a policy).
        """
        from moto.ecr.models import ecr_backends

        host, _, rest = uri.partition("/")
        registry, region = host.split(".")[0], host.split(".")[3]
        repository, _, tag = rest.partition(":")
        backend = ecr_backends[registry][region]
        if repository not in backend.repositories:
            backend.create_repository(repository, registry, {}, {}, "MUTABLE", [])
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": "sha256:" + hashlib.sha256(uri.encode()).hexdigest()},
            "layers": [],
        }
        backend.put_image(repository, json.dumps(manifest), tag)
        actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        if describable:
            actions.append("ecr:DescribeImages")
        if registry != ACCOUNT:
            backend.repositories[repository].policy = json.dumps(
                policy_document({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": actions})
            )

    def objects(self, bucket: str = BUCKET, prefix: str = "") -> list[str]:
        """Return the object keys under ``prefix``."""
        pages = (
            self.client("s3")
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    # -- moving a tuning job along
    def add_trials(
        self,
        job_name: str,
        n: int,
        *,
        status: str = "Completed",
        objective: float = 0.8,
        billable_s: int = 100,
        curve: list[float] | None = None,
    ) -> list[str]:
        """Create ``n`` training jobs of a tuning job in moto, as SageMaker would; return names.

        Each trial's log is what the real trainer prints (tests/trainer_output.py) for a
        validation-accuracy curve: ``curve``, else one rising to ``objective`` + 0.01 per
        trial. Completed jobs get SageMaker's final metrics (the last match of each of the
        request's MetricDefinitions regexes in that log), start and end times and billable
        seconds; failed ones a failure reason.
        """
        job = self.tuning_job(job_name)
        names = self.trials.setdefault(job_name, [])
        for _ in range(n):
            names.append(self._create_trial(job, len(names), status, objective, billable_s, curve))
        self._update_counters(job)
        return names[-n:] if n else []

    def _create_trial(
        self,
        job: Any,
        index: int,
        status: str,
        objective: float,
        billable_s: int,
        curve: list[float] | None = None,
    ) -> str:
        definition = job.training_job_definition
        config = job.hyper_parameter_tuning_job_config
        name = _trial_name(job.hyper_parameter_tuning_job_name, index)
        tuned = _sample(config.get("ParameterRanges") or {}, index)
        trial = self.sagemaker().create_training_job(
            training_job_name=name,
            hyper_parameters={**definition.get("StaticHyperParameters", {}), **tuned},
            algorithm_specification=copy.deepcopy(definition["AlgorithmSpecification"]),
            role_arn=definition["RoleArn"],
            input_data_config=definition.get("InputDataConfig"),
            output_data_config=definition["OutputDataConfig"],
            resource_config=definition["ResourceConfig"],
            vpc_config=None,
            stopping_condition=definition.get("StoppingCondition"),
            tags=None,
            enable_network_isolation=False,
            enable_inter_container_traffic_encryption=False,
            enable_managed_spot_training=False,
            checkpoint_config=None,
            debug_hook_config=None,
            debug_rule_configurations=None,
            tensor_board_output_config=None,
            experiment_config=None,
        )
        trial.training_start_time = datetime.now(UTC) - timedelta(seconds=600 - 10 * index)
        trial.tuning_job_arn = job.arn
        trial.tuned = tuned
        trial.training_end_time = None
        trial.final_metric_data_list = []
        trial.training_job_status = trial.secondary_status = "InProgress"
        trial.epochs_logged = 0
        # moto puts a metric definition of its own on every training job: SageMaker copies the
        # tuning job's definition's
        spec = definition["AlgorithmSpecification"]
        trial.algorithm_specification["MetricDefinitions"] = copy.deepcopy(
            spec.get("MetricDefinitions") or []
        )
        trial.curve = curve or default_curve(objective + 0.01 * index, _epochs(trial))
        trial.trainer = _trainer(name, trial.hyper_parameters)
        trial.chunks = []
        self._log(name, ["Invoking script with the following command:", "dataset: digits"])
        self._log(name, list(trial.trainer.lines))
        if len(trial.curve) > 1:  # a running trial has printed its first epoch
            self._log_epochs(trial, 1)
        if status != "InProgress":
            self._end_trial(trial, index, status, objective, billable_s)
        return name

    def _end_trial(
        self, trial: Any, index: int, status: str, objective: float, billable_s: int
    ) -> None:
        start = trial.training_start_time
        seconds = billable_s + 10 * index
        trial.training_job_status = trial.secondary_status = status
        trial.training_end_time = start + timedelta(seconds=seconds + 5)
        trial.training_time_in_seconds = seconds + 5
        trial.billable_time_in_seconds = seconds
        if status == "Failed":
            trial.failure_reason = "AlgorithmError: the trainer exited with status 1"
            self._log(trial.training_job_name, ["Traceback (most recent call last):"])
            return
        total = len(trial.curve)
        self._report(trial, total)  # the final metrics come from the whole of stdout
        self._log_epochs(trial, total - 1 if self.logs_lag else total)
        trial.final_metric_data_list = _final_metrics(
            trial.algorithm_specification.get("MetricDefinitions") or [],
            trial.trainer.lines,
            start,
        )

    def flush_logs(self) -> None:
        """Deliver the last epoch lines held back while ``logs_lag`` was set."""
        self.logs_lag = False
        for names in self.trials.values():
            for name in names:
                trial = self.sagemaker().training_jobs[name]
                if trial.training_job_status == "Completed":
                    self._log_epochs(trial, len(trial.curve))

    # -- CloudWatch Logs: what the trainer prints, as SageMaker stores it
    def _log(self, training_job: str, lines: list[str]) -> None:
        logs = self.client("logs")
        group = "/aws/sagemaker/TrainingJobs"
        if not self._streams:
            logs.create_log_group(logGroupName=group)
        stream = f"{training_job}/algo-1-1700000000"
        if stream not in self._streams:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
            self._streams.add(stream)
        events = []
        for line in lines:  # strictly increasing times, as lines printed one after another
            self._clock = max(self._clock + 1, int(datetime.now(UTC).timestamp() * 1000))
            events.append({"timestamp": self._clock, "message": line})
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    @staticmethod
    def _report(trial: Any, upto: int) -> None:
        """The trainer trains (and prints) epochs up to ``upto``: its stdout."""
        while len(trial.chunks) < upto:
            epoch = len(trial.chunks) + 1
            before = len(trial.trainer.lines)
            trial.trainer.epochs([trial.curve[epoch - 1]], first=epoch)
            trial.chunks.append(trial.trainer.lines[before:])

    def _log_epochs(self, trial: Any, upto: int) -> None:
        """CloudWatch Logs receives the trainer's epoch lines after the last one, up to ``upto``."""
        self._report(trial, upto)
        lines = [line for chunk in trial.chunks[trial.epochs_logged : upto] for line in chunk]
        trial.epochs_logged = max(trial.epochs_logged, upto)
        if lines:
            self._log(trial.training_job_name, lines)

    def _update_counters(self, job: Any) -> None:
        statuses = [self.sagemaker().training_jobs[n].training_job_status for n in self._names(job)]
        job.training_job_status_counters = {
            "Completed": statuses.count("Completed"),
            "InProgress": statuses.count("InProgress"),
            "RetryableError": 0,
            "NonRetryableError": statuses.count("Failed"),
            "Stopped": statuses.count("Stopped"),
        }

    def _names(self, job: Any) -> list[str]:
        return self.trials.get(job.hyper_parameter_tuning_job_name, [])

    def complete_running(self, job_name: str) -> None:
        """End every running training job of a tuning job with a result."""
        for index, name in enumerate(self.trials.get(job_name, [])):
            trial = self.sagemaker().training_jobs[name]
            if trial.training_job_status == "InProgress":
                self._end_trial(trial, index, "Completed", 0.8, 100)
        self._update_counters(self.tuning_job(job_name))

    def finish(self, job_name: str, n: int) -> None:
        """Make the tuning job report ``n`` completed training jobs and status Completed.

        Running training jobs complete first (a finished tuning job has none running) and
        count towards ``n``; more are created until ``n`` have completed.
        """
        self.complete_running(job_name)
        done = [
            t
            for t in self.trials.get(job_name, [])
            if self.sagemaker().training_jobs[t].training_job_status == "Completed"
        ]
        self.add_trials(job_name, max(n - len(done), 0))
        self.set_status(job_name, "Completed")

    def set_status(self, job_name: str, status: str, reason: str | None = None) -> None:
        """Set a tuning job's status (and failure reason); finished jobs get an end time."""
        job = self.tuning_job(job_name)
        job.hyper_parameter_tuning_job_status = status
        job.failure_reason = reason
        if status in ("Completed", "Failed", "Stopped"):
            job.hyper_parameter_tuning_end_time = datetime.now(UTC)
        job.last_modified_time = datetime.now(UTC)

    # -- the operations moto lacks (installed on its SageMakerResponse class)
    def summaries(self, job_name: str) -> list[dict[str, Any]]:
        """Return HyperParameterTrainingJobSummary records of a tuning job's training jobs."""
        job = self.tuning_job(job_name)
        objective = job.hyper_parameter_tuning_job_config.get("HyperParameterTuningJobObjective")
        out = []
        for name in self._names(job):
            trial = self.sagemaker().training_jobs[name]
            out.append(_summary(job_name, trial, objective))
        return out

    def stop(self, job_name: str) -> None:
        """What StopHyperParameterTuningJob does here: running trials and the job stop."""
        from moto.sagemaker.exceptions import ValidationError

        job = self.tuning_job(job_name)
        if job.hyper_parameter_tuning_job_status != "InProgress":
            raise ValidationError(
                message=f"The hyperparameter tuning job {job_name} is not in progress."
            )
        self.stopped.append(job_name)
        for name in self._names(job):
            trial = self.sagemaker().training_jobs[name]
            if trial.training_job_status == "InProgress":
                trial.training_job_status = trial.secondary_status = "Stopped"
                trial.training_end_time = datetime.now(UTC)
        self._update_counters(job)
        self.set_status(job_name, "Stopped")


def _epochs(trial: Any) -> int:
    return int(float(trial.hyper_parameters.get("epochs", 1)))


def _trainer(name: str, hyper_parameters: Mapping[str, Any]) -> TrainerRun:
    """The trainer as SageMaker starts it: hyperparameters.json (JSON-encoded strings) and
    TRAINING_JOB_NAME in the container's environment."""
    with tempfile.TemporaryDirectory() as folder:
        values = {k: json.dumps(str(v)) for k, v in hyper_parameters.items()}
        (Path(folder) / "hyperparameters.json").write_text(json.dumps(values), encoding="utf-8")
        env = {"SM_INPUT_CONFIG_DIR": folder, "TRAINING_JOB_NAME": name, "SM_MODEL_DIR": folder}
        return trainer_run([], env)


def _final_metrics(
    definitions: list[dict[str, str]], lines: list[str], when: datetime
) -> list[dict[str, Any]]:
    """SageMaker's FinalMetricDataList: each definition's regex, its last match in the log."""
    out = []
    for definition in definitions:
        value = None
        for line in lines:
            match = re.search(definition["Regex"], line)
            if match:
                value = float(match.group(1))
        if value is not None:
            out.append({"MetricName": definition["Name"], "Value": value, "Timestamp": when})
    return out


def _trial_name(job_name: str, index: int) -> str:
    digest = hashlib.sha256(f"{job_name}/{index}".encode()).hexdigest()[:8]
    return f"{job_name}-{index + 1:03d}-{digest}"


def _sample(ranges: dict[str, Any], index: int) -> dict[str, str]:
    """Pick the ``index``-th configuration inside the job's ranges (strings, as SageMaker)."""
    out: dict[str, str] = {}
    for r in ranges.get("ContinuousParameterRanges") or []:
        lo, hi = float(r["MinValue"]), float(r["MaxValue"])
        out[r["Name"]] = repr(round(lo + (hi - lo) * ((index % 4) + 1) / 5, 6))
    for r in ranges.get("IntegerParameterRanges") or []:
        lo, hi = int(r["MinValue"]), int(r["MaxValue"])
        out[r["Name"]] = str(lo + index % (hi - lo + 1))
    for r in ranges.get("CategoricalParameterRanges") or []:
        out[r["Name"]] = r["Values"][index % len(r["Values"])]
    return out


def _summary(job_name: str, trial: Any, objective: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "TrainingJobName": trial.training_job_name,
        "TrainingJobArn": trial.arn,
        "TuningJobName": job_name,
        "CreationTime": trial.creation_time,
        "TrainingStartTime": trial.training_start_time,
        "TrainingEndTime": trial.training_end_time,
        "TrainingJobStatus": trial.training_job_status,
        "TunedHyperParameters": trial.tuned,
        "FailureReason": getattr(trial, "failure_reason", None),
    }
    if objective and trial.training_job_status == "Completed":
        value = next(
            (
                m["Value"]
                for m in trial.final_metric_data_list
                if m["MetricName"] == objective["MetricName"]
            ),
            None,
        )
        if value is not None:
            out["FinalHyperParameterTuningJobObjectiveMetric"] = {**objective, "Value": value}
            out["ObjectiveStatus"] = "Succeeded"
    else:
        out["ObjectiveStatus"] = (
            "Pending" if trial.training_job_status == "InProgress" else "Failed"
        )
    return {k: v for k, v in out.items() if v is not None}


def _list_for_tuning_job(self: Any) -> Any:
    from moto.core.responses import ActionResult

    assert _ACTIVE is not None
    name = self._get_param("HyperParameterTuningJobName")
    _ACTIVE.tuning_job(name)
    _ACTIVE.listed.append(name)
    items = _ACTIVE.summaries(name)
    status = self._get_param("StatusEquals")
    if status:
        items = [s for s in items if s["TrainingJobStatus"] == status]
    reverse = self._get_param("SortOrder") == "Descending"
    items.sort(key=lambda s: (s["CreationTime"], s["TrainingJobName"]), reverse=reverse)
    start = int(self._get_param("NextToken") or 0)
    size = min(int(self._get_param("MaxResults") or 100), _ACTIVE.page_size)
    page = items[start : start + size]
    result: dict[str, Any] = {"TrainingJobSummaries": page}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return ActionResult(result)


def _stop_tuning_job(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    assert _ACTIVE is not None
    _ACTIVE.stop(self._get_param("HyperParameterTuningJobName"))
    return EmptyResult()


def _create_tuning_job(self: Any) -> Any:
    """moto's own handler, then the job starts InProgress with no trials (as on SageMaker)."""
    from moto.sagemaker.responses import SageMakerResponse

    assert _ACTIVE is not None
    result = SageMakerResponse._cloudtune_create(self)  # type: ignore[attr-defined]
    name = self._get_param("HyperParameterTuningJobName")
    _ACTIVE.created[name] = {
        key: self._get_param(key)
        for key in (
            "HyperParameterTuningJobName",
            "HyperParameterTuningJobConfig",
            "TrainingJobDefinition",
        )
    }
    job = _ACTIVE.tuning_job(name)
    job.hyper_parameter_tuning_job_status = "InProgress"
    job.hyper_parameter_tuning_end_time = None
    job.best_training_job = job.OverallBestTrainingJob = None
    job.tuning_job_completion_details = job.consumed_resources = None
    job.failure_reason = None
    _ACTIVE._update_counters(job)
    job.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    return result


# -- IAM policy simulation and ECR across accounts (for the readiness check)


def bucket_policy_for(bucket: str, prefix: str = "cloudtune") -> dict[str, Any]:
    """An identity policy that reads and writes ``bucket``'s prefix and lists the bucket."""
    return policy_document(
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
        },
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
    )


def policy_document(*statements: dict[str, Any]) -> dict[str, Any]:
    """An IAM policy document (identity, resource or trust policy) of ``statements``."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _like(pattern: str, value: str, *, fold: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one (actions ignore case)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if fold else 0) is not None


_CONDITIONS = {
    "stringequals": lambda want, have: have == want,
    "stringnotequals": lambda want, have: have != want,
    "stringequalsignorecase": lambda want, have: have.lower() == want.lower(),
    "stringlike": lambda want, have: _like(want, have),
    "arnequals": lambda want, have: have == want,
    "arnlike": lambda want, have: _like(want, have),
}


def _condition_holds(
    condition: Mapping[str, Any], context: Mapping[str, list[str]], missing: set[str]
) -> bool:
    """Whether a statement's Condition holds for ``context`` (keys lower-cased).

    A key the context lacks, or an operator not faked here, makes it not hold and (for a
    key) is recorded in ``missing``, as IAM lists MissingContextValues.
    """
    holds = True
    for operator, tests in condition.items():
        test = _CONDITIONS.get(str(operator).lower())
        for key, wanted in (tests or {}).items():
            have = context.get(str(key).lower())
            if have is None or test is None:
                if have is None:
                    missing.add(str(key))
                holds = False
                continue
            if not any(test(str(w), h) for w in _listed(wanted) for h in have):
                holds = False
    return holds


def evaluate(
    documents: list[Any], action: str, resource: str, context: Mapping[str, list[str]]
) -> tuple[str, set[str]]:
    """Evaluate identity policies for one action on one resource, as IAM's simulator does.

    Returns:
        ("allowed" | "explicitDeny" | "implicitDeny", the context keys conditions lacked).
    """
    allowed, missing = False, set()
    for document in documents:
        doc = json.loads(document) if isinstance(document, str) else document
        for st in _listed(doc.get("Statement")):
            if "NotAction" in st:
                hit = not any(_like(a, action, fold=True) for a in _listed(st["NotAction"]))
            else:
                hit = any(_like(a, action, fold=True) for a in _listed(st.get("Action")))
            if "NotResource" in st:
                hit = hit and not any(_like(r, resource) for r in _listed(st["NotResource"]))
            else:
                hit = hit and any(_like(r, resource) for r in _listed(st.get("Resource")))
            if not hit or not _condition_holds(st.get("Condition") or {}, context, missing):
                continue
            if st.get("Effect") == "Deny":
                return "explicitDeny", missing
            allowed = allowed or st.get("Effect") == "Allow"
    return ("allowed" if allowed else "implicitDeny"), missing


def _managed(policy: Any) -> str:
    return next(v.document for v in policy.versions if v.is_default)


def _documents(entity: Any, iam: Any) -> tuple[list[Any], list[Any]]:
    """An IAM user's, role's or group's policies (a user's groups' too) and its boundary."""
    found = [*entity.policies.values(), *(_managed(p) for p in entity.managed_policies.values())]
    if type(entity).__name__ == "User":
        for group in iam.get_groups_for_user(entity.name):
            found += [*group.policies.values()]
            found += [_managed(p) for p in group.managed_policies.values()]
    boundary_arn = getattr(entity, "permissions_boundary_arn", None)
    boundary = [_managed(iam.get_policy(boundary_arn))] if boundary_arn else []
    return found, boundary


def _decide(
    policies: tuple[list[Any], list[Any]],
    action: str,
    resource: str,
    context: Mapping[str, list[str]],
) -> tuple[str, set[str]]:
    documents, boundary = policies
    decision, missing = evaluate(documents, action, resource, context)
    if boundary and decision == "allowed":
        decision, more = evaluate(boundary, action, resource, context)
        missing |= more
    return decision, missing


def _entity(iam: Any, arn: str) -> Any:
    """The user, role or group an ARN names (NoSuchEntity, as IAM, when there is none)."""
    from moto.iam.exceptions import NotFoundException

    match = re.fullmatch(r"arn:aws:iam::(\d{12}):(user|role|group)/(?:.*/)?([^/]+)", arn)
    getter = {"user": iam.get_user, "role": iam.get_role, "group": iam.get_group}
    try:
        if match is None or match.group(1) != ACCOUNT:
            raise NotFoundException(f"The entity {arn} cannot be found.")
        entity = getter[match.group(2)](match.group(3))
    except NotFoundException:
        kind = match.group(2) if match else "entity"
        raise NotFoundException(
            f"The {kind} with name {arn.rsplit('/', 1)[-1]} cannot be found."
        ) from None
    if entity.arn != arn:
        raise NotFoundException(f"The {match.group(2)} {arn} cannot be found.")
    return entity


def _caller(response: Any) -> tuple[str, tuple[list[Any], list[Any]] | None]:
    """The caller's ARN, and its policies when it is an IAM user or assumed role of the fake
    (None for moto's default credentials, which moto lets do anything)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    key = response.get_access_key()
    iam = iam_backends[ACCOUNT]["aws"]
    sts = sts_backends[ACCOUNT]["aws"]
    assumed = sts.get_assumed_role_from_access_key(key)
    if assumed is not None:
        return assumed.arn, _documents(iam.get_role(assumed.role_arn.split("/")[-1]), iam)
    user = iam.get_user_from_access_key_id(key)
    if user is not None:
        return user.arn, _documents(user, iam)
    return sts.get_caller_identity(key, REGION)[1], None


def _simulate_principal_policy(self: Any) -> Any:
    """IAM SimulatePrincipalPolicy: one result per action, one per resource under it."""
    from moto.core.exceptions import AccessDeniedError
    from moto.core.responses import ActionResult
    from moto.iam.models import iam_backends

    source = str(self._get_param("PolicySourceArn"))
    caller, own = _caller(self)
    if own is not None and _decide(own, "iam:SimulatePrincipalPolicy", source, {})[0] != "allowed":
        raise AccessDeniedError(caller, f"iam:SimulatePrincipalPolicy on resource: {source}")
    iam = iam_backends[ACCOUNT]["aws"]
    policies = _documents(_entity(iam, source), iam)
    context = {
        str(e["ContextKeyName"]).lower(): [str(v) for v in e.get("ContextKeyValues") or []]
        for e in self._get_param("ContextEntries") or []
    }
    resources = self._get_param("ResourceArns") or ["*"]
    results = []
    for action in self._get_param("ActionNames") or []:
        each = []
        for resource in resources:
            decision, missing = _decide(policies, action, resource, context)
            each.append(
                {
                    "EvalResourceName": resource,
                    "EvalResourceDecision": decision,
                    "MatchedStatements": [],
                    "MissingContextValues": sorted(missing),
                }
            )
        decisions = {e["EvalResourceDecision"] for e in each}
        overall = (
            "explicitDeny"
            if "explicitDeny" in decisions
            else "allowed"
            if decisions == {"allowed"}
            else "implicitDeny"
        )
        results.append(
            {
                "EvalActionName": action,
                "EvalResourceName": "*",
                "EvalDecision": overall,
                "MatchedStatements": [],
                "MissingContextValues": sorted(
                    {k for e in each for k in e["MissingContextValues"]}
                ),
                "ResourceSpecificResults": each,
            }
        )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def _principal_matches(principal: Any, caller: str) -> bool:
    """Whether a resource policy's Principal names ``caller`` (``*``, its account or its ARN)."""
    if principal == "*":
        return True
    account = caller.split(":")[4]
    named = _listed((principal or {}).get("AWS") if isinstance(principal, dict) else None)
    return any(p in ("*", caller, account, f"arn:aws:iam::{account}:root") for p in named)


def _describe_images(self: Any) -> Any:
    """ECR DescribeImages; another account's registry answers by its repository policy."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.ecr.models import ecr_backends
    from moto.ecr.responses import ECRResponse

    registry = str(self._get_param("registryId") or self.current_account)
    repository = str(self._get_param("repositoryName"))
    resource = f"arn:aws:ecr:{self.region}:{registry}:repository/{repository}"
    caller, own = _caller(self)
    refusal = (
        f"User: {caller} is not authorized to perform: ecr:DescribeImages on resource: {resource}"
    )
    if own is not None and _decide(own, "ecr:DescribeImages", resource, {})[0] != "allowed":
        raise JsonRESTError(
            "AccessDeniedException",
            f"{refusal} because no identity-based policy allows the ecr:DescribeImages action",
        )
    if registry == self.current_account:
        return ECRResponse._cloudtune_describe_images(self)  # type: ignore[attr-defined]
    backend = ecr_backends[registry][self.region]
    repo = backend.repositories.get(repository)
    policy = json.loads(repo.policy) if repo is not None and repo.policy else {}
    if not any(
        st.get("Effect") == "Allow"
        and _principal_matches(st.get("Principal"), caller)
        and any(_like(a, "ecr:DescribeImages", fold=True) for a in _listed(st.get("Action")))
        for st in _listed(policy.get("Statement"))
    ):
        raise JsonRESTError(
            "AccessDeniedException",
            f"{refusal} because no resource-based policy allows the ecr:DescribeImages action",
        )
    images = backend.describe_images(repository, registry, self._get_param("imageIds"))
    return ActionResult({"imageDetails": list(images)})


def _install() -> None:
    from moto.ecr.responses import ECRResponse
    from moto.iam.responses import IamResponse
    from moto.sagemaker.responses import SageMakerResponse

    if not hasattr(SageMakerResponse, "_cloudtune_create"):
        SageMakerResponse._cloudtune_create = SageMakerResponse.create_hyper_parameter_tuning_job  # type: ignore[attr-defined]
        SageMakerResponse.create_hyper_parameter_tuning_job = _create_tuning_job  # type: ignore[method-assign]
    SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = _list_for_tuning_job  # type: ignore[attr-defined]
    SageMakerResponse.stop_hyper_parameter_tuning_job = _stop_tuning_job  # type: ignore[attr-defined]
    IamResponse.simulate_principal_policy = _simulate_principal_policy  # type: ignore[attr-defined]
    if not hasattr(ECRResponse, "_cloudtune_describe_images"):
        ECRResponse._cloudtune_describe_images = ECRResponse.describe_images  # type: ignore[attr-defined]
        ECRResponse.describe_images = _describe_images  # type: ignore[method-assign]


def _uninstall() -> None:
    from moto.ecr.responses import ECRResponse
    from moto.iam.responses import IamResponse
    from moto.sagemaker.responses import SageMakerResponse

    original = getattr(SageMakerResponse, "_cloudtune_create", None)
    if original is not None:
        SageMakerResponse.create_hyper_parameter_tuning_job = original  # type: ignore[method-assign]
        del SageMakerResponse._cloudtune_create  # type: ignore[attr-defined]
    for extra in (
        "list_training_jobs_for_hyper_parameter_tuning_job",
        "stop_hyper_parameter_tuning_job",
    ):
        if extra in vars(SageMakerResponse):
            delattr(SageMakerResponse, extra)
    if "simulate_principal_policy" in vars(IamResponse):
        delattr(IamResponse, "simulate_principal_policy")
    describe = getattr(ECRResponse, "_cloudtune_describe_images", None)
    if describe is not None:
        ECRResponse.describe_images = describe  # type: ignore[method-assign]
        del ECRResponse._cloudtune_describe_images  # type: ignore[attr-defined]


@contextmanager
def _environment(endpoint: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in (*_ENV, *_UNSET, "AWS_ENDPOINT_URL")}
    os.environ.update(_ENV)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    for key in _UNSET:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _reset_state() -> None:
    from moto.core.base_backend import BackendDict

    BackendDict.reset()
    try:
        from sagemaker.core.utils.utils import SageMakerClient

        SageMakerClient.reset()
    except ImportError:
        pass


_SERVER: Any = None
"""moto's server, started once per test process (a daemon thread on 127.0.0.1)."""


def _server_endpoint() -> str:
    global _SERVER
    if _SERVER is None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _SERVER = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        _SERVER.start()
    host, port = _SERVER.get_host_and_port()
    return f"http://{host}:{port}"


@contextmanager
def fake_aws() -> Iterator[FakeAWS]:
    """Run moto's server on loopback with the SageMaker additions; yield a fresh fake.

    Inside the block every boto3 client (and the SageMaker SDK's) talks to the fake with fake
    credentials; the environment, moto's state (emptied on entry and exit) and the SDK's
    client cache are restored after. The server itself stays up for the next test.
    """
    global _ACTIVE
    fake = FakeAWS(endpoint=_server_endpoint())
    _install()
    _ACTIVE = fake
    _reset_state()
    try:
        with _environment(fake.endpoint):
            yield fake
    finally:
        _ACTIVE = None
        _uninstall()
        _reset_state()
