"""AWS SageMaker backend: launch, watch, stop and import hyperparameter tuning jobs.

The request itself is built by the pure :func:`core.backends.sagemaker.request.build_request`
(golden-tested); this module does the I/O around it: it uploads the staged dataset and the
trainer to S3 under their content hashes (once; later runs reuse them), submits the request
with boto3's ``create_hyper_parameter_tuning_job`` (exactly the previewed body), and reads the
tuning job's training jobs back into the store. Credentials come from boto3's standard chain
and are never read, stored or logged here.

Example:
    >>> backend = SageMakerBackend(store)
    >>> backend.check({"region": "us-east-1"})        # what is still missing
    ['The SageMaker execution role is not set: ...', 'The S3 bucket is not set: ...']
    >>> backend.assess(settings).notes                 # what AWS would not let it check
    ['Could not check your own permissions (...): IAM refused to simulate ...']
    >>> handle = backend.launch(spec, store.get_run(run_id))   # returns at once
    >>> backend.poll(store.get_run(run_id)).status
    'running'
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.base import CloudBackend, PollResult
from core.backends.cloud import Assessment, CloudBackendBase, JobReport, Submitted
from core.backends.platforms import PLATFORMS
from core.backends.records import FINISHED_TRIAL_STATUSES, EpochRecord, TrialRecord
from core.backends.sagemaker import readiness
from core.backends.sagemaker import request as rq
from core.errors import BackendError, BackendNotReady, NotFound, SpecError
from core.spec import StudySpec, parse_spec
from core.training.bundle import build_bundle, bundle_digest
from core.training.data import MANIFEST_NAME, dataset_fingerprint, stage_dataset

if TYPE_CHECKING:
    from core.store import RunRow, Store, TrialRow

log = logging.getLogger(__name__)

SessionFactory = Callable[[Mapping[str, Any]], Any]
"""settings -> a boto3 Session (tests pass one aimed at a local fake)."""

CREDENTIAL_SOURCES: dict[str, str] = {
    "env": "environment variables",
    "shared-credentials-file": "the shared credentials file (~/.aws/credentials)",
    "config-file": "the AWS config file (~/.aws/config)",
    "sso": "AWS IAM Identity Center (SSO)",
    "assume-role": "an assumed role from the AWS config",
    "assume-role-with-web-identity": "a web identity token",
    "custom-process": "a credential process",
    "container-role": "the container's task role",
    "iam-role": "the instance's IAM role",
    "explicit": "the session's explicit credentials",
}
"""botocore credential methods in words (where credentials were found, never what they are)."""

NO_CREDENTIALS = (
    "No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run "
    "`aws configure` or `aws sso login` (and name the profile in Settings → AWS SageMaker → AWS profile), or run "
    "CloudTune on an instance with an IAM role."
)
NO_REGION = (
    "The AWS region is not set: choose the region the jobs run in (e.g. us-east-1) in "
    "Settings → AWS SageMaker → AWS region (the setting sagemaker.region; on the command line "
    "`--set region=us-east-1`), or set AWS_DEFAULT_REGION."
)
TRAINER_TOOL = "the trainer bundle (core.training.bundle)"


def default_session(settings: Mapping[str, Any]) -> Any:
    """Return a boto3 Session from the standard chain, with the settings' profile and region."""
    import boto3

    return boto3.session.Session(
        profile_name=settings.get("profile") or None,
        region_name=settings.get("region") or None,
    )


@dataclass
class Staged:
    """Local copies of what a tuning job reads from S3.

    Attributes:
        data_dir: the staged dataset (None when the user gave an s3:// URI).
        data_uri: where the dataset is (or goes) in S3.
        trainer_dir: the trainer's source folder (train.py at its top).
        tarball: the trainer as ``sourcedir.tar.gz``.
        trainer_uri: where the tarball is (or goes) in S3.
    """

    data_dir: Path | None
    data_uri: str
    trainer_dir: Path
    tarball: Path
    trainer_uri: str


class SageMakerBackend(CloudBackendBase):
    """Hyperparameter tuning jobs on AWS SageMaker.

    Args:
        store: the result store the poller writes trials to.
        session_factory: settings -> boto3 Session (default: the standard credential chain).

    Example:
        >>> SageMakerBackend(store).preview(spec, settings)   # the exact JSON request
    """

    name = "sagemaker"
    label = PLATFORMS["sagemaker"].label

    def __init__(self, store: Store, *, session_factory: SessionFactory | None = None) -> None:
        super().__init__(store)
        self._session_factory = session_factory or default_session
        self._sessions: dict[tuple[str, str], Any] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}

    # ------------------------------------------------------------------ sessions and errors
    def _session(self, settings: Mapping[str, Any]) -> Any:
        key = (str(settings.get("region") or ""), str(settings.get("profile") or ""))
        if key not in self._sessions:
            self._sessions[key] = self._session_factory(settings)
        return self._sessions[key]

    def _client(self, service: str, settings: Mapping[str, Any]) -> Any:
        key = (service, str(settings.get("region") or ""), str(settings.get("profile") or ""))
        if key not in self._clients:
            from botocore.exceptions import NoRegionError

            try:
                self._clients[key] = self._session(settings).client(
                    service, region_name=settings.get("region") or None
                )
            except NoRegionError as err:
                raise BackendNotReady(NO_REGION) from err
        return self._clients[key]

    def _call(self, fn: Callable[..., Any], operation: str, **kwargs: Any) -> Any:
        """Call one AWS operation, turning its errors into sentences."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(**kwargs)
        except NoCredentialsError as err:
            raise BackendNotReady(NO_CREDENTIALS) from err
        except ClientError as err:
            raise _client_error(err, operation) from err
        except S3UploadFailedError as err:
            raise BackendError(
                f"Uploading {kwargs.get('Filename')} to S3 failed: {err}. Check that the bucket "
                "exists in the region and that your credentials may write to it."
            ) from err
        except BotoCoreError as err:
            raise BackendError(
                f"AWS {operation} failed: {err}. Check the region and the network connection."
            ) from err

    def credentials_source(self, settings: Mapping[str, Any]) -> str | None:
        """Return where boto3 found credentials, in words, or None when it found none.

        Only the source is reported; the credentials themselves are never read or shown.

        Raises:
            botocore.exceptions.ProfileNotFound: the settings name a profile that does not exist.
        """
        from botocore.exceptions import BotoCoreError, ProfileNotFound

        try:
            creds = self._session(settings).get_credentials()
        except ProfileNotFound:
            raise
        except BotoCoreError:
            return None
        if creds is None:
            return None
        method = str(getattr(creds, "method", "") or "")
        return CREDENTIAL_SOURCES.get(method, method or "the standard chain")

    # ------------------------------------------------------------------ check and estimate
    def assess(self, settings: Mapping[str, Any]) -> Assessment:
        """Return what stops a launch, and what AWS would not let CloudTune check.

        The settings and credentials first; when they are complete, what AWS says without
        anything being created (core.backends.sagemaker.readiness): the caller's and the
        execution role's permissions by IAM policy simulation, the role's trust, and the
        training image in ECR.
        """
        from botocore.exceptions import ProfileNotFound

        problems = rq.settings_problems(settings)
        try:
            source = self.credentials_source(settings)
        except ProfileNotFound:
            problems.insert(
                0,
                f"The AWS profile {settings.get('profile')!r} does not exist: run "
                "`aws configure --profile <name>` or clear the profile setting.",
            )
            return Assessment(problems)
        if source is None:
            problems.insert(0, NO_CREDENTIALS)
        if problems or source is None:
            return Assessment(problems)
        return readiness.assess(
            lambda service, region=None: self._check_client(service, settings, region),
            settings,
            source,
        )

    def _check_client(self, service: str, settings: Mapping[str, Any], region: str | None) -> Any:
        """A client for the readiness calls: short timeouts and one attempt (it is a check,
        run each time the Launch page asks)."""
        from botocore.config import Config

        where = region or str(settings.get("region") or "") or None
        key = (f"check:{service}", str(where or ""), str(settings.get("profile") or ""))
        if key not in self._clients:
            config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 1})
            self._clients[key] = self._session(settings).client(
                service, region_name=where, config=config
            )
        return self._clients[key]

    def instance_count(self, settings: Mapping[str, Any]) -> int:
        """Return the machines per training job (the instance_count setting, default 1)."""
        return rq.instance_count(settings)

    # ------------------------------------------------------------------ staging
    def stage(self, spec: StudySpec, settings: Mapping[str, Any], work_dir: str | Path) -> Staged:
        """Stage the dataset and build the trainer tarball in ``work_dir``; nothing is uploaded.

        Raises:
            DatasetError: the dataset cannot be found or read.
            BackendError: the trainer bundle is not available.
        """
        work = Path(work_dir)
        data_dir: Path | None = None
        data_uri = rq.user_data_uri(spec, settings)
        if data_uri is None:
            data_dir = stage_dataset(
                spec.dataset.name,
                path=spec.dataset.path,
                dest_dir=work / "data",
                subset=spec.dataset.subset,
                validation_split=spec.dataset.validation_split,
                seed=spec.seed,
            )
            data_uri = rq.data_uri_for(settings, spec, dataset_fingerprint(data_dir))
        trainer_dir, digest = _build_trainer(work / "trainer")
        tarball = make_tarball(trainer_dir, work / rq.SOURCE_TARBALL)
        return Staged(
            data_dir, data_uri, trainer_dir, tarball, rq.trainer_uri_for(settings, digest)
        )

    def _exists(self, s3: Any, uri: str) -> bool:
        bucket, key = rq.split_s3_uri(uri)
        try:
            self._call(s3.head_object, "HeadObject", Bucket=bucket, Key=key)
        except AwsError as err:
            if err.code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _check_user_data(self, s3: Any, uri: str) -> None:
        bucket, prefix = rq.split_s3_uri(uri)
        page = self._call(
            s3.list_objects_v2, "ListObjectsV2", Bucket=bucket, Prefix=prefix, MaxKeys=1
        )
        if not page.get("KeyCount"):
            raise BackendError(
                f"There is no data at {uri}: upload the dataset there (e.g. `aws s3 sync "
                f"<folder> {uri}`) or clear data_uri to let CloudTune upload it."
            )

    def upload(self, staged: Staged, settings: Mapping[str, Any]) -> int:
        """Upload what S3 lacks of ``staged`` (content-hashed keys: nothing twice); return files sent."""
        s3 = self._client("s3", settings)
        if staged.data_dir is None:
            self._check_user_data(s3, staged.data_uri)
        sent = 0
        if not self._exists(s3, staged.trainer_uri):
            bucket, key = rq.split_s3_uri(staged.trainer_uri)
            self._call(
                s3.upload_file, "S3 upload", Filename=str(staged.tarball), Bucket=bucket, Key=key
            )
            sent += 1
        if staged.data_dir is not None and not self._exists(s3, staged.data_uri + MANIFEST_NAME):
            bucket, prefix = rq.split_s3_uri(staged.data_uri)
            for relative, path in _upload_order(staged.data_dir, MANIFEST_NAME):
                self._call(
                    s3.upload_file,
                    "S3 upload",
                    Filename=str(path),
                    Bucket=bucket,
                    Key=prefix + relative,
                )
                sent += 1
        return sent

    # ------------------------------------------------------------------ preview and export
    def request(
        self, spec: StudySpec, settings: Mapping[str, Any], *, job_name: str | None = None
    ) -> dict[str, Any]:
        """Return the exact request with the real content-hashed S3 locations (nothing uploaded)."""
        with tempfile.TemporaryDirectory(prefix="cloudtune-sm-") as tmp:
            staged = self.stage(spec, settings, tmp)
        return rq.build_request(
            spec,
            settings,
            job_name=job_name,
            data_uri=staged.data_uri,
            trainer_uri=staged.trainer_uri,
        )

    def training_image(self, settings: Mapping[str, Any]) -> str | None:
        """Return the image the training jobs run in (None: the region has none)."""
        try:
            return rq.training_image(settings)
        except BackendError:
            return None

    def preview(self, spec: StudySpec, settings: Mapping[str, Any]) -> str:
        """Return the exact CreateHyperParameterTuningJob request as JSON."""
        return rq.to_json(self.request(spec, settings))

    def export_bundle(self, spec: StudySpec, settings: Mapping[str, Any], dest: str) -> str:
        """Write request.json, the trainer (tarball and folder), the data and a README to ``dest``.

        Returns:
            The folder, as a string.
        """
        import shutil

        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cloudtune-sm-") as tmp:
            staged = self.stage(spec, settings, tmp)
            request = rq.build_request(
                spec, settings, data_uri=staged.data_uri, trainer_uri=staged.trainer_uri
            )
            shutil.copyfile(staged.tarball, out / rq.SOURCE_TARBALL)
            shutil.copytree(staged.trainer_dir, out / "trainer", dirs_exist_ok=True)
            if staged.data_dir is not None:
                shutil.copytree(staged.data_dir, out / "data", dirs_exist_ok=True)
            containers.write_context("sagemaker", settings, out / "container", staged.trainer_dir)
        (out / "request.json").write_text(rq.to_json(request), encoding="utf-8")
        (out / "README.txt").write_text(
            bundle_readme(request, staged.data_dir is not None, staged), encoding="utf-8"
        )
        return str(out)

    # ------------------------------------------------------------------ submit
    def submit(self, spec: StudySpec, run: RunRow, settings: dict[str, Any]) -> Submitted:
        """Upload what S3 lacks and create the tuning job (exactly the previewed request).

        Raises:
            SpecError: the space cannot be expressed on SageMaker.
            BackendError: S3 or SageMaker refused.
        """
        job_name = rq.unique_job_name(spec, run.id, time.time())
        with tempfile.TemporaryDirectory(prefix="cloudtune-sm-") as tmp:
            staged = self.stage(spec, settings, tmp)
            request = rq.build_request(
                spec,
                settings,
                job_name=job_name,
                data_uri=staged.data_uri,
                trainer_uri=staged.trainer_uri,
            )
            self.upload(staged, settings)
        sm = self._client("sagemaker", settings)
        self._call(sm.create_hyper_parameter_tuning_job, "CreateHyperParameterTuningJob", **request)
        return Submitted(job_name, rq.instance_type(settings))

    # ------------------------------------------------------------------ poll
    def _describe_tuning_job(self, run: RunRow) -> dict[str, Any]:
        if not run.handle:
            raise BackendError(
                f"Run {run.id} has no SageMaker tuning job name; launch it or import a job by name."
            )
        sm = self._client("sagemaker", run.settings)
        desc: dict[str, Any] = self._call(
            sm.describe_hyper_parameter_tuning_job,
            "DescribeHyperParameterTuningJob",
            HyperParameterTuningJobName=run.handle,
        )
        return desc

    def _training_jobs(
        self, settings: Mapping[str, Any], job_name: str
    ) -> Iterator[dict[str, Any]]:
        sm = self._client("sagemaker", settings)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "HyperParameterTuningJobName": job_name,
                "MaxResults": 100,
                "SortBy": "CreationTime",
                "SortOrder": "Ascending",
            }
            if token:
                kwargs["NextToken"] = token
            page = self._call(
                sm.list_training_jobs_for_hyper_parameter_tuning_job,
                "ListTrainingJobsForHyperParameterTuningJob",
                **kwargs,
            )
            yield from page.get("TrainingJobSummaries") or []
            token = page.get("NextToken")
            if not token:
                return

    def read_job(
        self, run: RunRow, spec: StudySpec | None, known: Mapping[str, TrialRow]
    ) -> JobReport:
        """Describe the tuning job and read its training jobs, with their epochs from the logs.

        A finished trial already in the store is not described again; its epochs are read
        again only while CloudWatch Logs lags behind the epochs SageMaker counted.
        """
        desc = self._describe_tuning_job(run)
        config = desc.get("HyperParameterTuningJobConfig") or {}
        metric = (config.get("HyperParameterTuningJobObjective") or {}).get("MetricName")
        sm = self._client("sagemaker", run.settings)
        records: list[TrialRecord] = []
        stored = self.store.epoch_counts(run.id)
        for summary in self._training_jobs(run.settings, str(run.handle)):
            key = str(summary["TrainingJobName"])
            old = known.get(key)
            if old is not None and old.status in FINISHED_TRIAL_STATUSES:
                if _lags(old, stored.get(old.id, 0)):
                    records.append(self._from_row(old, run.settings))
                continue
            job = self._call(sm.describe_training_job, "DescribeTrainingJob", TrainingJobName=key)
            record = rq.parse_training_job(summary, job, spec, metric)
            records.append(replace(record, epochs=self._read_epochs(run.settings, key)))
        status, detail = rq.run_status(str(desc.get("HyperParameterTuningJobStatus") or ""))
        error = None
        if status == "failed":
            error = str(desc.get("FailureReason") or "SageMaker reported a failure")
        return JobReport(
            status=status,
            detail=detail,
            error=error,
            trials=records,
            started_at=rq.epoch_seconds(desc.get("HyperParameterTuningJobCreationTime")),
            ended_at=rq.epoch_seconds(desc.get("HyperParameterTuningEndTime")),
        )

    def _from_row(self, trial: TrialRow, settings: Mapping[str, Any]) -> TrialRecord:
        """A stored finished trial with its epochs read again from the logs."""
        return TrialRecord.from_row(
            trial,
            cost_usd=None,  # measured again from the job's billable time and price
            instance_count=rq.instance_count(settings),
            epochs=tuple(self._read_epochs(settings, trial.trial_key)),
        )

    def _log_messages(self, settings: Mapping[str, Any], training_job: str) -> Iterator[str]:
        """Yield the first instance's log lines of a training job (CloudWatch Logs)."""
        logs = self._client("logs", settings)
        streams = self._call(
            logs.describe_log_streams,
            "DescribeLogStreams",
            logGroupName=rq.LOG_GROUP,
            logStreamNamePrefix=rq.log_stream_prefix(training_job),
        ).get("logStreams", [])
        for stream in streams:
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": rq.LOG_GROUP,
                    "logStreamName": stream["logStreamName"],
                    "startFromHead": True,
                }
                if token:
                    kwargs["nextToken"] = token
                page = self._call(logs.get_log_events, "GetLogEvents", **kwargs)
                yield from (str(e.get("message", "")) for e in page.get("events", []))
                if not page.get("events") or page.get("nextForwardToken") in (None, token):
                    break
                token = page.get("nextForwardToken")

    def _read_epochs(
        self, settings: Mapping[str, Any], training_job: str
    ) -> tuple[EpochRecord, ...]:
        """Return a trial's epochs from the trainer's log lines.

        The curves are a view, not the result: when the logs cannot be read (no log group
        yet, or no permission for CloudWatch Logs) the trial keeps its final metrics only.
        """
        try:
            return tuple(rq.parse_epochs(self._log_messages(settings, training_job)))
        except AwsError as err:
            log.info("no epochs for %s from CloudWatch Logs: %s", training_job, err)
            return ()

    # ------------------------------------------------------------------ stop and import
    def stop_job(self, run: RunRow) -> None:
        """StopHyperParameterTuningJob; a job that already finished is not an error."""
        sm = self._client("sagemaker", run.settings)
        try:
            self._call(
                sm.stop_hyper_parameter_tuning_job,
                "StopHyperParameterTuningJob",
                HyperParameterTuningJobName=run.handle,
            )
        except AwsError as err:
            # A job that already finished cannot be stopped: the next poll shows its end.
            if err.code != "ValidationException":
                raise

    def import_job(self, job_name: str, run: RunRow) -> PollResult:
        """Attach the tuning job ``job_name`` (e.g. finished, or launched elsewhere) to ``run``.

        When the run has no search space yet, its spec is rebuilt from the job's ranges.

        Raises:
            NotFound: no tuning job of that name in the settings' region.
        """
        try:
            desc = self._describe_tuning_job(_with_handle(run, job_name))
        except AwsError as err:
            if err.code in ("ResourceNotFound", "ValidationException"):
                raise NotFound(
                    f"SageMaker has no tuning job named {job_name!r} in region "
                    f"{run.settings.get('region') or 'of your AWS configuration'}; check the "
                    "name and the region in Settings → AWS SageMaker."
                ) from err
            raise
        updates: dict[str, Any] = {"handle": job_name}
        resources = (desc.get("TrainingJobDefinition") or {}).get("ResourceConfig") or {}
        if resources.get("InstanceType") and not run.instance_type:
            updates["instance_type"] = resources["InstanceType"]
        if not run.spec.get("space"):
            try:
                rebuilt = parse_spec(rq.spec_from_job(desc, str(run.spec.get("name") or job_name)))
                updates["spec_json"] = json.dumps(rebuilt.to_dict(), sort_keys=True)
            except SpecError:
                pass  # a job whose parameters the CNN does not know keeps the run's spec
        self.store.update_run(run.id, **updates)
        return self.poll(self.store.get_run(run.id))


_conforms: type[CloudBackend] = SageMakerBackend


def _lags(trial: TrialRow, stored_epochs: int) -> bool:
    """True when a finished trial has fewer epochs stored than SageMaker counted."""
    expected = int(trial.metrics.get("epoch") or 0)
    return bool(expected) and stored_epochs < expected


# ----------------------------------------------------------------------------- helpers


def _with_handle(run: RunRow, handle: str) -> RunRow:
    from dataclasses import replace

    return replace(run, handle=handle)


_HINTS = {
    "AccessDeniedException": "the credentials or the execution role lack a permission it needs",
    "AccessDenied": "the credentials cannot use this bucket",
    "ResourceLimitExceeded": "an account quota is reached: lower parallel trials, pick another "
    "instance type or ask AWS for a quota increase",
    "ResourceInUse": "the name is taken: launch again for a new one",
    "NoSuchBucket": "the bucket does not exist: create it in the region or fix the name",
    "ExpiredTokenException": "the credentials expired: sign in again (e.g. `aws sso login`)",
    "ExpiredToken": "the credentials expired: sign in again (e.g. `aws sso login`)",
    "UnrecognizedClientException": "the credentials are not valid for this region",
    "InvalidClientTokenId": "the credentials are not valid",
}


class AwsError(BackendError):
    """An AWS call refused, as a sentence; ``code`` is AWS's error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _client_error(err: Any, operation: str) -> AwsError:
    """Turn a botocore ClientError into a sentence naming the operation and the fix."""
    info = err.response.get("Error", {}) if hasattr(err, "response") else {}
    code = str(info.get("Code") or "Error")
    message = str(info.get("Message") or err).rstrip(".")
    hint = _HINTS.get(code)
    text = f"AWS refused {operation} ({code}): {message}."
    return AwsError(f"{text} {hint[0].upper() + hint[1:]}." if hint else text, code)


def _build_trainer(dest: Path) -> tuple[Path, str]:
    folder = Path(build_bundle(dest))
    return folder, str(bundle_digest(folder))


def make_tarball(folder: Path, dest: Path) -> Path:
    """Pack ``folder``'s files (at the archive's top) into a reproducible ``.tar.gz``."""
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buf.getvalue())
    return dest


def _upload_order(folder: Path, last: str) -> list[tuple[str, Path]]:
    """Return a staged folder's files with the manifest last (its presence means 'complete')."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    return sorted(files, key=lambda item: item[0] == last)


def bundle_readme(request: Mapping[str, Any], has_data: bool, staged: Staged) -> str:
    """Return the README of an exported bundle: how to submit it with the AWS CLI."""
    name = request["HyperParameterTuningJobName"]
    region = request["TrainingJobDefinition"]["StaticHyperParameters"]["sagemaker_region"]
    data_step = (
        f"  aws s3 sync data/ {staged.data_uri}\n"
        if has_data
        else f"  (the data is already in S3 at {staged.data_uri})\n"
    )
    text = json.dumps(request)
    placeholders = [p for p in (rq.PLACEHOLDER_BUCKET, rq.PLACEHOLDER_ROLE) if p in text]
    note = (
        f"Before submitting, replace {' and '.join(placeholders)} in request.json and below "
        "with your bucket and SageMaker execution role (or export again with them set in "
        "Settings, or with --set bucket=... --set role_arn=...).\n\n"
        if placeholders
        else ""
    )
    return (
        "CloudTune export: a SageMaker hyperparameter tuning job you can submit yourself.\n\n"
        + note
        + "Contents\n"
        "  request.json      the exact CreateHyperParameterTuningJob request\n"
        f"  {rq.SOURCE_TARBALL}  the trainer (train.py at its top), as SageMaker downloads it\n"
        "  trainer/          the same files, unpacked, to read\n"
        + ("  data/             the staged dataset (train channel)\n" if has_data else "")
        + "\nSubmit it (AWS CLI v2, credentials from your usual profile or role):\n"
        f"  aws s3 cp {rq.SOURCE_TARBALL} {staged.trainer_uri}\n"
        + data_step
        + "  aws sagemaker create-hyper-parameter-tuning-job \\\n"
        f"      --cli-input-json file://request.json --region {region}\n\n"
        "Job names are unique per account and region: edit HyperParameterTuningJobName in\n"
        "request.json (at most 32 letters, digits and dashes) before submitting it again.\n\n"
        "Watch it and bring the results into CloudTune:\n"
        f"  aws sagemaker describe-hyper-parameter-tuning-job "
        f"--hyper-parameter-tuning-job-name {name} --region {region}\n"
        f"  python -m core import-job {name} --backend sagemaker\n"
    )
