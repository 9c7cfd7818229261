"""The Vertex AI backend: stages the trainer and data to Cloud Storage, runs a tuning job, reads it.

The pure translation lives in :mod:`core.backends.vertex.request`; this module does the I/O
through the google-cloud-aiplatform and google-cloud-storage clients. Credentials come from
Application Default Credentials (``gcloud auth application-default login``, a service-account
file named by ``GOOGLE_APPLICATION_CREDENTIALS`` or the metadata server); only where they were
found is ever reported, never their contents.

Example:
    >>> backend = VertexBackend(store)
    >>> backend.check({"project": "my-proj", "region": "us-central1", "bucket": "my-bucket"})
    []
    >>> handle = backend.launch(spec, store.get_run(run_id))   # returns at once
    >>> backend.poll(store.get_run(run_id)).status
    'queued'
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.base import CloudBackend, PollResult
from core.backends.cloud import Assessment, CloudBackendBase, JobReport, Submitted, run_spec
from core.backends.platforms import PLATFORMS
from core.backends.vertex import readiness
from core.backends.vertex.request import (
    DEFAULT_OBJECTIVE,
    PACKAGE_NAME,
    PACKAGE_VERSION,
    PYTHON_MODULE,
    accelerator,
    build_job,
    build_request,
    container_uri,
    gcs_paths,
    job_resource,
    machine_type,
    message_to_dict,
    parent_path,
    parse_job,
    slug,
    spec_from_job,
    uses_prebuilt,
)
from core.errors import (
    BackendError,
    BackendNotReady,
    CloudTuneError,
    NotFound,
    SpecError,
)
from core.spec import METRICS, StudySpec, parse_spec
from core.training import train
from core.training.bundle import build_bundle
from core.training.data import dataset_fingerprint, stage_dataset

if TYPE_CHECKING:
    from core.store import RunRow, Store

log = logging.getLogger(__name__)

BundleBuilder = Callable[[Path], Path]
"""Writes the trainer's source folder (train.py at its top) into a folder; returns it."""
DataStager = Callable[[StudySpec, Path], Path]
"""Writes the spec's dataset into an empty folder the trainer reads; returns it."""

_PROJECT_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_DATA_MARKER = "_cloudtune_fingerprint.txt"
_ADC_HINT = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file, or run CloudTune on Google Cloud"
)


# ----------------------------------------------------------------------------- credentials


def gcloud_adc_path() -> Path:
    """Return where ``gcloud auth application-default login`` writes its credentials file.

    Returns:
        The file's path ($CLOUDSDK_CONFIG, %APPDATA%\\gcloud or ~/.config/gcloud).
    """
    config = os.environ.get("CLOUDSDK_CONFIG")
    if config:
        root = Path(config)
    elif os.name == "nt" and os.environ.get("APPDATA"):
        root = Path(os.environ["APPDATA"]) / "gcloud"
    else:
        root = Path.home() / ".config" / "gcloud"
    return root / "application_default_credentials.json"


def _on_google_cloud() -> bool:
    """Tell, without any network call, whether this machine is a Google Cloud VM."""
    if os.environ.get("NO_GCE_CHECK", "").lower() in ("1", "true", "yes"):
        return False
    if os.environ.get("GCE_METADATA_HOST"):
        return True
    try:
        product = Path("/sys/class/dmi/id/product_name").read_text(encoding="utf-8")
    except OSError:
        return False
    return product.strip().startswith("Google")


def credential_source(credentials: Any = None) -> str | None:
    """Return where Application Default Credentials would come from, or None when nowhere.

    Only file locations and environment names are looked at; no file is read.

    Args:
        credentials: credentials handed to the backend (tests), which win over the chain.

    Returns:
        A sentence fragment naming the source, or None.
    """
    if credentials is not None:
        return "credentials given to CloudTune"
    named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named:
        if Path(named).is_file():
            return f"GOOGLE_APPLICATION_CREDENTIALS ({named})"
        return None
    adc = gcloud_adc_path()
    if adc.is_file():
        return f"gcloud application-default login ({adc})"
    if _on_google_cloud():
        return "the metadata server of this Google Cloud machine"
    return None


# ----------------------------------------------------------------------------- the trainer package


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    if "__pycache__" in info.name or info.name.endswith(".pyc"):
        return None
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


_IMAGE_PACKAGES = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "keras")


def _image_provided(line: str) -> bool:
    """Tell whether a requirement names TensorFlow or Keras, which the prebuilt image provides.

    The package is only installed into a prebuilt image, whose TensorFlow must not be replaced
    by pip; other TensorFlow-named packages (tensorflow-datasets, ...) stay. CloudTune's custom
    container installs its pinned TensorFlow in its Dockerfile instead.
    """
    name = re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
    return name in _IMAGE_PACKAGES


def _setup_py(bundle: Path) -> str:
    modules = sorted(p.stem for p in bundle.glob("*.py") if p.name != "setup.py")
    requirements: list[str] = []
    req = bundle / "requirements.txt"
    if req.is_file():
        requirements = [
            line.strip()
            for line in req.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#") and not _image_provided(line)
        ]
    return (
        "from setuptools import find_packages, setup\n\n"
        "setup(\n"
        f"    name={PACKAGE_NAME!r},\n"
        f"    version={PACKAGE_VERSION!r},\n"
        "    description='CloudTune trainer for Vertex AI hyperparameter tuning',\n"
        f"    py_modules={modules!r},\n"
        "    packages=find_packages(),\n"
        "    include_package_data=True,\n"
        f"    install_requires={requirements!r},\n"
        ")\n"
    )


def build_package(bundle: Path, dest_dir: Path) -> Path:
    """Turn the trainer's source folder into a Python source distribution Vertex AI installs.

    The tarball is byte-for-byte reproducible (sorted names, zeroed times and owners). Vertex
    AI pip-installs it in the prebuilt container and runs ``python -m train``; TensorFlow comes
    with the container.

    Args:
        bundle: the folder from the trainer's ``build_bundle`` (train.py at its top).
        dest_dir: where to write ``cloudtune_trainer-<version>.tar.gz``.

    Returns:
        The tarball's path.

    Raises:
        BackendError: the bundle has no train.py.
    """
    if not (bundle / f"{PYTHON_MODULE}.py").is_file():
        raise BackendError(
            f"The trainer bundle at {bundle} has no {PYTHON_MODULE}.py; rebuild it with "
            "core.training.bundle.build_bundle."
        )
    root = f"{PACKAGE_NAME}-{PACKAGE_VERSION}"
    dirs = sorted(p.name for p in bundle.iterdir() if p.is_dir() and p.name != "__pycache__")
    extra = {
        "setup.py": _setup_py(bundle),
        "PKG-INFO": (
            f"Metadata-Version: 2.1\nName: {PACKAGE_NAME}\nVersion: {PACKAGE_VERSION}\n"
            "Summary: CloudTune trainer for Vertex AI hyperparameter tuning\n"
        ),
        "MANIFEST.in": "".join(f"graft {d}\n" for d in dirs)
        + "global-exclude *.pyc\nprune **/__pycache__\n",
    }
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"{root}.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in sorted(extra.items()):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for path in sorted(bundle.rglob("*")):
            rel = path.relative_to(bundle).as_posix()
            if path.is_file() and rel not in extra:
                tar.add(path, arcname=f"{root}/{rel}", recursive=False, filter=_tar_filter)
    import gzip

    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out


def _default_bundle(dest: Path) -> Path:
    return Path(build_bundle(dest))


def _default_stager(spec: StudySpec, dest: Path) -> Path:
    ds = spec.dataset
    return Path(
        stage_dataset(
            ds.name,
            path=ds.path,
            dest_dir=dest,
            subset=ds.subset,
            validation_split=ds.validation_split,
            seed=spec.seed,
        )
    )


def _fingerprint(folder: Path) -> str:
    return str(dataset_fingerprint(folder))


# ----------------------------------------------------------------------------- errors


@contextmanager
def _provider_errors(what: str) -> Iterator[None]:
    """Turn Google client errors into CloudTune sentences."""
    try:
        yield
    except CloudTuneError:
        raise
    except Exception as err:  # the SDKs raise many unrelated types
        raise _translate(err, what) from err


def _translate(err: Exception, what: str) -> CloudTuneError:
    name = type(err).__name__
    text = str(err).splitlines()[0] if str(err) else name
    if name == "DefaultCredentialsError":
        return BackendNotReady(f"No Google Cloud credentials were found while {what}: {_ADC_HINT}.")
    if name in ("Unauthenticated", "RefreshError"):
        return BackendNotReady(
            f"Google Cloud refused the credentials while {what} ({text}); {_ADC_HINT}."
        )
    if name in ("PermissionDenied", "Forbidden"):
        return BackendNotReady(
            f"Permission denied while {what} ({text}): grant the account the Vertex AI User "
            "role (roles/aiplatform.user) and Storage Object Admin on the bucket, and check "
            "that the Vertex AI API is enabled in the project."
        )
    if name == "NotFound":
        return NotFound(f"Not found while {what}: {text}. Check the project, region and name.")
    if name in ("InvalidArgument", "BadRequest", "FailedPrecondition"):
        return BackendError(f"Vertex AI rejected the request while {what}: {text}")
    if name in ("ConnectionError", "ServiceUnavailable", "RetryError", "Timeout"):
        return BackendError(
            f"Cannot reach Google Cloud while {what} ({text}); check the network and try again."
        )
    return BackendError(f"Google Cloud failed while {what}: {name}: {text}")


# ----------------------------------------------------------------------------- the backend


class VertexBackend(CloudBackendBase):
    """Runs a study as one Vertex AI HyperparameterTuningJob.

    Args:
        store: the result store.
        credentials: google.auth credentials to use instead of Application Default
            Credentials (tests pass AnonymousCredentials).
        api_endpoint: the Vertex AI endpoint (tests: ``http://127.0.0.1:PORT``); default the
            region's.
        api_transport: "grpc" or "rest" (default: the SDK's; "rest" with ``api_endpoint``).
        storage_endpoint: the Cloud Storage JSON API endpoint (default ``api_endpoint`` when
            that is set, else Google's).
        bundle_builder: builds the trainer's source folder (default
            ``core.training.bundle.build_bundle``).
        data_stager: writes the dataset to upload (default ``core.training.data.stage_dataset``).
        clock: the time source (seconds), for budget caps.

    Example:
        >>> backend = VertexBackend(store, credentials=AnonymousCredentials(),
        ...                         api_endpoint="http://127.0.0.1:8123")
    """

    name = "vertex"
    label = PLATFORMS["vertex"].label

    def __init__(
        self,
        store: Store,
        *,
        credentials: Any = None,
        api_endpoint: str | None = None,
        api_transport: str | None = None,
        storage_endpoint: str | None = None,
        bundle_builder: BundleBuilder | None = None,
        data_stager: DataStager | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(store, clock=clock)
        self._credentials = credentials
        self._api_endpoint = api_endpoint
        self._api_transport = api_transport or ("rest" if api_endpoint else None)
        self._storage_endpoint = storage_endpoint or api_endpoint
        self._bundle_builder = bundle_builder or _default_bundle
        self._data_stager = data_stager or _default_stager

    # -- readiness and forecasts
    def credentials_source(self) -> str | None:
        """Return where credentials would come from (a place, never a secret), or None."""
        return credential_source(self._credentials)

    def assess(self, settings: Mapping[str, Any]) -> Assessment:
        """Return what stops a launch, and what Google Cloud would not let CloudTune check.

        The SDK, settings, image and credentials first; when they are complete, what Cloud
        Storage and Resource Manager say (core.backends.vertex.readiness): the staging bucket
        exists, your account may upload to it, and whoever runs the trials may read it.
        """
        problems = self._offline_problems(settings)
        source = self.credentials_source()
        if problems or source is None:
            return Assessment(problems)
        return readiness.assess(lambda: self._storage(settings), self._projects, settings, source)

    def _projects(self) -> Any:
        """A Resource Manager client (REST), on the fake's endpoint in tests."""
        from google.cloud import resourcemanager_v3

        options = {"api_endpoint": self._api_endpoint} if self._api_endpoint else None
        return resourcemanager_v3.ProjectsClient(
            credentials=self._credentials, transport="rest", client_options=options
        )

    def _offline_problems(self, settings: Mapping[str, Any]) -> list[str]:
        """What the settings, the installation and the credentials' whereabouts lack."""
        problems: list[str] = []
        if importlib.util.find_spec("google.cloud.aiplatform") is None:
            problems.append(
                "The Vertex AI SDK is not installed: run `pip install google-cloud-aiplatform`."
            )
        problems += _settings_problems(settings)
        problems += containers.image_problems("vertex", container_uri(settings))[1]
        if self.credentials_source() is None:
            named = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            if named:
                problems.append(
                    f"GOOGLE_APPLICATION_CREDENTIALS names {named}, which is not a file: "
                    "point it at your service-account key file, or unset it and run "
                    "`gcloud auth application-default login`."
                )
            else:
                problems.append(f"No Google Cloud credentials were found: {_ADC_HINT}.")
        return problems

    def training_image(self, settings: Mapping[str, Any]) -> str | None:
        """Return the image the trials run in."""
        return container_uri(settings)

    # -- previews and bundles
    def preview(self, spec: StudySpec, settings: Mapping[str, Any]) -> str:
        """Return the exact HyperparameterTuningJob request body as indented JSON."""
        return json.dumps(build_request(spec, settings), indent=2)

    def export_bundle(self, spec: StudySpec, settings: Mapping[str, Any], dest: str) -> str:
        """Write the request, the trainer package, the staged data and a README to ``dest``.

        Returns:
            The folder written, as text.

        Raises:
            BackendError: the folder is not empty, or the request cannot be built.
            DatasetError: the dataset cannot be staged.
        """
        folder = Path(dest)
        if folder.exists() and any(folder.iterdir()):
            raise BackendError(f"Cannot export into {folder}: it is not empty; name a new folder.")
        request = build_request(spec, settings)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hyperparameter_tuning_job.json").write_text(
            json.dumps(request, indent=2) + "\n", encoding="utf-8"
        )
        import yaml

        (folder / "hptuning_config.yaml").write_text(
            yaml.safe_dump(request, sort_keys=False), encoding="utf-8"
        )
        with tempfile.TemporaryDirectory() as tmp:
            bundle = self._bundle_builder(Path(tmp) / "trainer")
            build_package(bundle, folder)
            containers.write_context("vertex", settings, folder / "container", bundle)
        self._data_stager(spec, folder / "data")
        (folder / "README.txt").write_text(_readme(spec, settings, request), encoding="utf-8")
        return str(folder)

    # -- submitting
    def submit(self, spec: StudySpec, run: RunRow, settings: dict[str, Any]) -> Submitted:
        """Stage the trainer and data to Cloud Storage and create the tuning job.

        Raises:
            BackendError: the request or an upload failed.
            SpecError: the strategy or a parameter cannot be translated.
            DatasetError: the dataset cannot be staged.
        """
        if not settings.get("job_name"):
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self._clock()))
            settings["job_name"] = f"cloudtune-{slug(spec.name, 30)}-r{run.id}-{stamp}"
        build_request(spec, settings)  # fail on the spec before uploading anything
        _check_objective(spec)
        self._configure_sdk()
        paths = gcs_paths(spec, settings)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = self._bundle_builder(Path(tmp) / "trainer")
            if uses_prebuilt(settings):  # a custom image holds the trainer already
                package = build_package(bundle, Path(tmp) / "dist")
                with _provider_errors(f"uploading the trainer to {paths.package_uri}"):
                    self._upload(paths.bucket, paths.package_blob, package, settings)
            self._stage_data(spec, paths.bucket, paths.data_prefix, Path(tmp) / "data", settings)
        with _provider_errors("creating the Vertex AI tuning job"):
            job = build_job(spec, settings, credentials=self._credentials, anonymous=False)
            created = job.api_client.create_hyperparameter_tuning_job(
                parent=parent_path(settings), hyperparameter_tuning_job=job_resource(job)
            )
        return Submitted(str(created.name), machine_type(settings), settings)

    def _configure_sdk(self) -> None:
        if self._api_endpoint:
            from google.cloud import aiplatform

            aiplatform.init(api_endpoint=self._api_endpoint, api_transport=self._api_transport)

    def _storage(self, settings: Mapping[str, Any]) -> Any:
        from google.cloud import storage

        options = {"api_endpoint": self._storage_endpoint} if self._storage_endpoint else None
        return storage.Client(
            project=settings.get("project"),
            credentials=self._credentials,
            client_options=options,
        )

    def _upload(self, bucket: str, blob: str, path: Path, settings: Mapping[str, Any]) -> None:
        client = self._storage(settings)
        client.bucket(bucket).blob(blob).upload_from_filename(str(path))

    def _stage_data(
        self,
        spec: StudySpec,
        bucket: str,
        prefix: str,
        tmp: Path,
        settings: Mapping[str, Any],
    ) -> None:
        """Upload the staged dataset unless the bucket already holds the same files."""
        folder = self._data_stager(spec, tmp)
        fingerprint = _fingerprint(folder)
        where = f"gs://{bucket}/{prefix}"
        with _provider_errors(f"uploading the dataset to {where}"):
            client = self._storage(settings)
            marker = client.bucket(bucket).blob(f"{prefix}/{_DATA_MARKER}")
            if marker.exists() and marker.download_as_text().strip() == fingerprint:
                return
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    name = f"{prefix}/{path.relative_to(folder).as_posix()}"
                    client.bucket(bucket).blob(name).upload_from_filename(str(path))
            marker.upload_from_string(fingerprint + "\n")

    # -- reading jobs
    def _get_job(self, handle: str, settings: Mapping[str, Any]) -> dict[str, Any]:
        from google.cloud import aiplatform

        self._configure_sdk()
        name = _resource_name(handle, settings)
        with _provider_errors(f"reading the Vertex AI job {name}"):
            job = aiplatform.HyperparameterTuningJob.get(
                resource_name=name, credentials=self._credentials
            )
            return message_to_dict(job.gca_resource)

    def read_job(self, run: RunRow, spec: StudySpec | None, known: Mapping[str, Any]) -> JobReport:
        """Read the job's state, times and trials (measurements are the epochs)."""
        job = self._get_job(str(run.handle), run.settings)
        report = parse_job(job, spec)
        machine = machine_type(run.settings)
        report.trials = [replace(t, instance_type=machine) for t in report.trials]
        return report

    # -- stopping and importing
    def stop_job(self, run: RunRow) -> None:
        """Cancel the tuning job; one that already ended is not an error."""
        from google.cloud import aiplatform

        self._configure_sdk()
        name = _resource_name(str(run.handle), run.settings)
        try:
            with _provider_errors(f"cancelling the Vertex AI job {name}"):
                aiplatform.HyperparameterTuningJob.get(
                    resource_name=name, credentials=self._credentials
                ).cancel()
        except BackendError as err:
            if type(err.__cause__).__name__ != "FailedPrecondition":
                raise

    def import_job(self, job_name: str, run: RunRow) -> PollResult:
        """Attach an existing tuning job (resource name, or id in the run's project and region).

        When the run has no usable spec, one describing the job's space is stored on it so the
        parameters keep their types.

        Raises:
            NotFound: no such job.
        """
        if not job_name.startswith("projects/") and not run.settings.get("project"):
            raise BackendNotReady(
                f"Vertex AI needs the project to find the job {job_name}: set project in "
                "Settings → Vertex AI → Google Cloud project ID (the setting vertex.project; on the command line "
                "`--set project=my-project-123`), or give the job's full resource name "
                "(projects/P/locations/R/hyperparameterTuningJobs/ID)."
            )
        name = _resource_name(job_name, run.settings)
        job = self._get_job(name, run.settings)
        updates: dict[str, Any] = {"handle": name}
        if run_spec(run) is None:
            data = spec_from_job(job, str(job.get("displayName") or job_name))
            with suppress(SpecError):
                updates["spec_json"] = json.dumps(parse_spec(data).to_dict(), sort_keys=True)
        self.store.update_run(run.id, **updates)
        return self.poll(self.store.get_run(run.id))


def trainer_objectives() -> set[str]:
    """Return the metrics the trainer can report to Vertex AI's tuning service.

    Returns:
        Metric names: every metric when the trainer takes ``--objective``, else its one.
    """
    options = {o for a in train.build_parser()._actions for o in a.option_strings}
    if "--objective" in options:
        return set(METRICS)
    return {str(getattr(train, "OBJECTIVE", DEFAULT_OBJECTIVE))}


def _check_objective(spec: StudySpec) -> None:
    supported = trainer_objectives()
    metric = spec.objective.metric
    if metric not in supported:
        raise BackendError(
            f"The trainer reports only {', '.join(sorted(supported))} to Vertex AI's tuning "
            f"service, so a {metric} objective would leave every trial without a measurement; "
            f"set objective.metric to {sorted(supported)[0]}."
        )


def _resource_name(handle: str, settings: Mapping[str, Any]) -> str:
    if handle.startswith("projects/"):
        return handle
    return f"{parent_path(settings)}/hyperparameterTuningJobs/{handle}"


def _settings_problems(settings: Mapping[str, Any]) -> list[str]:
    problems = []
    project = str(settings.get("project") or "")
    if not project:
        problems.append(
            "Vertex AI needs a Google Cloud project: enter its ID (e.g. my-project-123, shown by "
            "`gcloud config get-value project`) in Settings → Vertex AI → Google Cloud project ID."
        )
    elif not _PROJECT_RE.match(project):
        problems.append(
            f"project {project!r} is not a project ID: use the ID (6-30 lowercase letters, "
            "digits and dashes), not the display name or number."
        )
    region = str(settings.get("region") or "")
    if not region:
        problems.append(
            "Choose a Vertex AI region (e.g. us-central1) in Settings → Vertex AI → Region."
        )
    elif not _REGION_RE.match(region):
        problems.append(f"region {region!r} is not a Google Cloud region; use e.g. us-central1.")
    bucket = str(settings.get("bucket") or "")
    if not bucket:
        problems.append(
            "Name a Cloud Storage bucket for staging the trainer and data (e.g. gs://my-bucket, "
            "in the same region as the jobs) in Settings → Vertex AI → Staging bucket."
        )
    elif not _BUCKET_RE.match(bucket.removeprefix("gs://").split("/", 1)[0]):
        problems.append(f"bucket {bucket!r} is not a Cloud Storage bucket name; use gs://NAME.")
    try:
        kind, count = accelerator(settings)
    except BackendError as err:
        problems.append(str(err))
    else:
        if kind is None and int(settings.get("accelerator_count") or 0) > 0:
            problems.append(
                "accelerator_count is set without accelerator_type: set accelerator_type "
                "(e.g. NVIDIA_TESLA_T4) or set the count to 0."
            )
        elif kind is not None and count < 1:
            problems.append(f"accelerator_type {kind} needs accelerator_count of 1 or more.")
    return problems


def _readme(spec: StudySpec, settings: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    paths = gcs_paths(spec, settings)
    parent = parent_path(settings)
    region = parent.rsplit("/", 1)[-1]
    return f"""CloudTune export for Vertex AI: study {spec.name!r}

Files
  hyperparameter_tuning_job.json  the exact HyperparameterTuningJob request CloudTune sends
  hptuning_config.yaml            the same request as YAML, for gcloud --config
  {PACKAGE_NAME}-{PACKAGE_VERSION}.tar.gz  the trainer (pip-installable; entry: python -m {PYTHON_MODULE})
  data/                           the dataset, staged as the trainer reads it

1. Upload the trainer and the data to the paths the request names:
   gcloud storage cp {PACKAGE_NAME}-{PACKAGE_VERSION}.tar.gz {paths.package_uri}
   gcloud storage cp -r data/* {paths.data_uri}/

2. Submit the job with the REST API:
   curl -X POST -H "Authorization: Bearer $(gcloud auth print-access-token)" \\
     -H "Content-Type: application/json" \\
     https://{region}-aiplatform.googleapis.com/v1/{parent}/hyperparameterTuningJobs \\
     -d @hyperparameter_tuning_job.json

   or with gcloud:
   gcloud ai hp-tuning-jobs create --region={region} \\
     --display-name={request.get("displayName", "cloudtune")} --config=hptuning_config.yaml

3. Follow it in CloudTune: python -m core import-job RESOURCE_NAME --backend vertex
   (RESOURCE_NAME is the "name" the create call returns).
"""


_conforms: type[CloudBackend] = VertexBackend
