"""The Azure ML backend: a study as one SDK v2 sweep job, its trials read back through MLflow.

Example:
    >>> backend = AzureBackend(store)
    >>> backend.check({"subscription_id": "...", "resource_group": "rg", "workspace": "ws",
    ...                "compute": "cpu-cluster"})
    []
    >>> print(backend.preview(spec, settings))      # the YAML `az ml job create --file` takes
    >>> handle = backend.launch(spec, store.get_run(run_id))
    >>> backend.poll(store.get_run(run_id)).status
    'running'
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.backends import containers
from core.backends.azure.request import (
    CODE_DIR,
    DATA_DIR,
    EARLY_TERMINATION,
    build_sweep_job,
    environment_image,
    experiment_name,
    keras_metric,
    map_status,
    missing_settings,
    objective_metric,
    safe_name,
    sampling,
    search_space,
    to_yaml,
    workspace_args,
)
from core.backends.base import CloudBackend, PollResult
from core.backends.cloud import Assessment, CloudBackendBase, JobReport, Submitted
from core.backends.platforms import PLATFORMS
from core.backends.records import FINISHED_TRIAL_STATUSES, EpochRecord, TrialRecord, TrialStatus
from core.costs.pricing import canonical_instance, hourly_price
from core.errors import BackendError, BackendNotReady, CloudTuneError, NotFound
from core.spec import KNOWN_PARAMS, FixedParam, Param, StudySpec, typed_value
from core.training.bundle import build_bundle
from core.training.data import stage_dataset
from core.training.train import BEST_SUFFIX

if TYPE_CHECKING:
    from core.store import RunRow, Store, TrialRow

log = logging.getLogger(__name__)

MLFLOW_STATUS: dict[str, TrialStatus] = {
    "FINISHED": "completed",
    "FAILED": "failed",
    "KILLED": "stopped",
    "RUNNING": "running",
    "SCHEDULED": "running",
}
"""MLflow run statuses of the sweep's trials mapped to the store's trial statuses."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TRIAL_SUFFIX = re.compile(r"_(\d+)$")


# ----------------------------------------------------------------------------- credentials


def credential_source(
    settings: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """Say where DefaultAzureCredential would find credentials, without asking for a token.

    The sources are tried in DefaultAzureCredential's own order (azure-identity 1.27):
    environment (service principal), workload identity, managed identity, the shared token
    cache, VS Code, the Azure CLI, Azure PowerShell, the Azure Developer CLI, and the broker
    (Windows and WSL). Only environment variables and the presence of each tool's login file
    are looked at; no secret is read, stored or logged. A managed identity without its
    endpoint variables (a VM's IMDS) cannot be seen offline: the Settings field
    ``managed_identity_client_id`` (or ``managed_identity: true``) says the app runs on Azure.

    Args:
        settings: the Azure settings.
        env: the environment (default os.environ).

    Returns:
        A phrase naming the first source found, or None when none was found.
    """
    env = os.environ if env is None else env
    settings = settings or {}
    for name, found in _CREDENTIAL_CHAIN:
        if found(env, settings):
            return name
    return None


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def _service_principal(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    has_id = bool(env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID"))
    secret = env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH")
    user = env.get("AZURE_USERNAME") and env.get("AZURE_PASSWORD") and env.get("AZURE_CLIENT_ID")
    return bool((has_id and secret) or user)


def _workload_identity(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    return bool(
        env.get("AZURE_CLIENT_ID")
        and env.get("AZURE_TENANT_ID")
        and env.get("AZURE_FEDERATED_TOKEN_FILE")
    )


def _managed_identity(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    named = settings.get("managed_identity") or settings.get("managed_identity_client_id")
    return bool(env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT") or named)


def _shared_cache(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    return (_home(env) / ".IdentityService" / "msal.cache").is_file()


def _vscode(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    return any(
        (
            _home(env) / folder / "ms-azuretools.vscode-azureresourcegroups" / "authRecord.json"
        ).is_file()
        for folder in (".azure", ".Azure")
    )


def _powershell(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    if shutil.which("pwsh") is None and shutil.which("powershell") is None:
        return False
    return any((_home(env) / f / "AzureRmContext.json").is_file() for f in (".Azure", ".azure"))


def _developer_cli(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    if shutil.which("azd") is None:
        return False
    folder = Path(env.get("AZD_CONFIG_DIR") or _home(env) / ".azd")
    return (folder / "auth").is_dir() or (folder / "config.json").is_file()


def _broker(env: Mapping[str, str], settings: Mapping[str, Any]) -> bool:
    return False  # Windows' and WSL's signed-in account: not detectable without a token call


_CREDENTIAL_CHAIN: tuple[tuple[str, Any], ...] = (
    ("environment variables (service principal)", _service_principal),
    ("workload identity", _workload_identity),
    ("managed identity", _managed_identity),
    ("the shared token cache", _shared_cache),
    ("VS Code's Azure sign-in", _vscode),
    ("Azure CLI login (az login)", lambda env, settings: _cli_logged_in(env)),
    ("Azure PowerShell login (Connect-AzAccount)", _powershell),
    ("Azure Developer CLI login (azd auth login)", _developer_cli),
    ("the Windows broker", _broker),
)
"""DefaultAzureCredential's sources in its order, each with an offline probe."""


def _cli_logged_in(env: Mapping[str, str]) -> bool:
    """True when the Azure CLI is installed and its profile lists a subscription."""
    if shutil.which("az") is None:
        return False
    folder = Path(env.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    try:
        profile = json.loads((folder / "azureProfile.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    return bool(profile.get("subscriptions"))


# ----------------------------------------------------------------------------- errors


@contextmanager
def azure_errors(action: str) -> Iterator[None]:
    """Turn Azure SDK errors raised while doing ``action`` into CloudTune sentences."""
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        yield
    except CloudTuneError:
        raise
    except ClientAuthenticationError as err:
        raise BackendNotReady(
            f"Azure refused the credentials while trying to {action}: {_first_line(err)}. "
            "Run `az login` (or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET) "
            "and check your role on the workspace."
        ) from err
    except ResourceNotFoundError as err:
        raise NotFound(
            f"Azure ML found nothing to {action}: {_first_line(err)}. Check the job name and "
            "Settings → Azure ML → Subscription ID, Resource group and Azure ML workspace."
        ) from err
    except ServiceRequestError as err:
        raise BackendError(
            f"Cannot reach Azure ML to {action}: {_first_line(err)}. Check the network."
        ) from err
    except HttpResponseError as err:
        raise BackendError(
            f"Azure ML refused to {action} (HTTP {err.status_code}): {_first_line(err)}."
        ) from err
    except AzureError as err:
        raise BackendError(f"Azure ML could not {action}: {_first_line(err)}.") from err
    except Exception as err:  # the SDK's own validation errors (MlException and friends)
        if type(err).__module__.startswith("azure."):
            raise BackendError(f"Azure ML could not {action}: {_first_line(err)}.") from err
        raise


@contextmanager
def mlflow_errors(job_name: str) -> Iterator[None]:
    """Turn MLflow errors met while reading ``job_name``'s trials into a sentence."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        raise BackendError(
            f"Cannot read the trials of {job_name} through MLflow: {_first_line(err)}. Check "
            "the workspace's tracking URI (settings mlflow_tracking_uri) and your access to it."
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", None) or err).strip()
    return text.splitlines()[0].rstrip(".") if text else type(err).__name__


# ----------------------------------------------------------------------------- the backend


class AzureBackend(CloudBackendBase):
    """Runs a study as an Azure ML sweep job and reads its trials back through MLflow.

    Args:
        store: the result store.
        client: an MLClient (or a test double) to use for every workspace.
        client_factory: builds an MLClient from the settings (default: DefaultAzureCredential).
        credential: the credential for the default factory (default DefaultAzureCredential).
        tracking_uri: the MLflow tracking URI holding the trials (default: the workspace's
            ``azureml://`` URI, from settings ``mlflow_tracking_uri`` or the workspace).
        bundle_builder: writes the trainer's source folder (default
            core.training.bundle.build_bundle).

    Example:
        >>> backend = AzureBackend(store)
        >>> handle = backend.launch(spec, run)     # the sweep job's name
    """

    name = "azure"
    label = PLATFORMS["azure"].label

    def __init__(
        self,
        store: Store,
        *,
        client: Any = None,
        client_factory: Callable[[Mapping[str, Any]], Any] | None = None,
        credential: Any = None,
        tracking_uri: str | None = None,
        bundle_builder: Callable[[Path], Path] | None = None,
    ) -> None:
        super().__init__(store)
        self._client = client
        self._factory = client_factory
        self._credential = credential
        self._tracking_uri = tracking_uri
        self._bundle_builder = bundle_builder
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._uris: dict[tuple[str, str, str], str] = {}
        self._sizes: dict[tuple[str, str, str, str], str] = {}
        """(subscription, resource group, workspace, compute) -> the VM size the check read."""

    # -- settings and clients
    def launch_settings(self, run: RunRow) -> dict[str, Any]:
        """Return the stored Azure settings overlaid with the run's (what a launch uses)."""
        return self.settings(run.settings)

    def settings(self, run_settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the stored ``azure.*`` settings overlaid with a run's own settings."""
        merged = dict(self.store.settings_with_prefix("azure."))
        merged.update({k: v for k, v in (run_settings or {}).items() if v not in (None, "")})
        return merged

    def assess(self, settings: Mapping[str, Any]) -> Assessment:
        """Return what stops a launch, and what the workspace would not let CloudTune check.

        The settings and credentials first; when they are complete, the compute target is
        read from the workspace (:meth:`compute_check`): it must exist, and its VM size is
        what the trials run on and what prices them.
        """
        problems = self._offline_problems(settings)
        if problems:
            return Assessment(problems)
        return self.compute_check(settings)

    def compute_check(self, settings: Mapping[str, Any]) -> Assessment:
        """Read the compute target: missing is a problem; its VM size, when it is not the
        instance_type setting or has no price, a note (the trials are priced by that size)."""
        found = Assessment()
        compute, workspace = str(settings["compute"]), str(settings["workspace"])
        try:
            with azure_errors(f"read the compute {compute}"):
                size = self.client(settings).compute.get(compute).size
        except NotFound:
            found.problems.append(
                f"The compute {compute} does not exist in workspace {workspace}: create a "
                "compute cluster of that name (Azure ML studio → Compute → Compute clusters, or "
                f"`az ml compute create --name {compute} --type AmlCompute --size "
                f"{settings.get('instance_type') or 'Standard_DS3_v2'} --max-instances 4 "
                f"--workspace-name {workspace} --resource-group {settings['resource_group']}`) "
                "or fix Settings → Azure ML → Compute cluster."
            )
            return found
        except BackendNotReady as err:  # the credentials were refused
            found.problems.append(str(err))
            return found
        except BackendError as err:
            found.notes.append(
                f"Could not read the compute {compute} of workspace {workspace} ({err}); until "
                "the launch reads its VM size, the forecast prices Settings → Azure ML → VM "
                "size of the cluster."
            )
            return found
        if not isinstance(size, str) or not size:
            found.notes.append(
                f"The compute {compute} reports no VM size; the trials are priced by Settings → "
                "Azure ML → VM size of the cluster (or the price_per_hour setting)."
            )
            return found
        vm = canonical_instance(self.name, size)
        self._sizes[(*_workspace_key(settings), compute)] = vm
        given = str(settings.get("instance_type") or "")
        if given and canonical_instance(self.name, given) != vm:
            found.notes.append(
                f"The compute {compute} runs {vm}, not {given}: the trials run on {vm} and are "
                f"priced as it; set it as the VM size (Settings → Azure ML → VM size of the "
                "cluster) so the forecast prices the same machine."
            )
        region = str(settings.get("region") or "") or None
        if hourly_price(
            self.name, vm, region=region, store=self.store
        ) is None and not settings.get("price_per_hour"):
            found.notes.append(
                f"CloudTune has no price for {vm}: add one with Override a price on the "
                "Settings page (or set price_per_hour) to see the runs' cost."
            )
        return found

    def _offline_problems(self, settings: Mapping[str, Any]) -> list[str]:
        """What the settings and the credentials' whereabouts lack."""
        problems = missing_settings(settings)
        sub = str(settings.get("subscription_id") or "").strip()
        if sub and not _GUID.match(sub):
            problems.append(
                f"subscription_id {sub!r} is not a subscription id (a GUID such as "
                "00000000-0000-0000-0000-000000000000); `az account show --query id` prints it."
            )
        early = str(settings.get("early_termination") or "none")
        if early.lower() not in EARLY_TERMINATION:
            problems.append(
                f"early_termination {early!r} is unknown; use one of "
                f"{', '.join(EARLY_TERMINATION)} (Settings page, azure.early_termination)."
            )
        has_own_client = self._client is not None or self._factory is not None
        if not has_own_client and self._credential is None and not credential_source(settings):
            problems.append(
                "No Azure credentials found: run `az login` (or `azd auth login`, or "
                "Connect-AzAccount in Azure PowerShell), or set AZURE_TENANT_ID, "
                "AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run on Azure with a managed "
                "identity (for a user-assigned one, set Settings → Azure ML → Managed identity "
                "client ID)."
            )
        return problems

    def credential_found(self, settings: Mapping[str, Any]) -> str | None:
        """Return where credentials come from (for the Settings page), or None."""
        if self._client is not None or self._factory is not None or self._credential is not None:
            return "supplied by the caller"
        return credential_source(settings)

    def client(self, settings: Mapping[str, Any]) -> Any:
        """Return the MLClient for the workspace named in ``settings`` (built once)."""
        if self._client is not None:
            return self._client
        key = _workspace_key(settings)
        if key not in self._clients:
            if self._factory is not None:
                self._clients[key] = self._factory(settings)
            else:
                self._clients[key] = self._default_client(settings)
        return self._clients[key]

    def _default_client(self, settings: Mapping[str, Any]) -> Any:
        problems = missing_settings(settings)
        if problems:
            raise BackendNotReady(
                "Azure ML is not set up: " + " ".join(problems), problems=problems
            )
        from azure.ai.ml import MLClient

        credential = self._credential
        if credential is None:
            from azure.identity import DefaultAzureCredential

            client_id = str(settings.get("managed_identity_client_id") or "").strip()
            credential = DefaultAzureCredential(
                exclude_interactive_browser_credential=True,
                managed_identity_client_id=client_id or None,
            )
        return MLClient(
            credential,
            str(settings["subscription_id"]),
            str(settings["resource_group"]),
            str(settings["workspace"]),
            enable_telemetry=False,
        )

    def training_image(self, settings: Mapping[str, Any]) -> str | None:
        """Return the custom image or the environment the trials run in."""
        return environment_image(settings)

    # -- preview, bundle
    def preview(self, spec: StudySpec, settings: Mapping[str, Any]) -> str:
        """Return the exact sweep job as YAML (loadable with ``az ml job create --file``).

        Raises:
            SpecError: the spec cannot be expressed as an Azure ML sweep.
        """
        return to_yaml(spec, settings)

    def export_bundle(self, spec: StudySpec, settings: Mapping[str, Any], dest: str) -> str:
        """Write job.yml, the trainer (src/), the staged dataset (data/) and a README to ``dest``.

        Returns:
            The folder written.

        Raises:
            SpecError: the spec cannot be expressed as an Azure ML sweep.
            BackendError: ``dest`` is not empty.
        """
        folder = Path(dest)
        if folder.exists() and any(folder.iterdir()):
            raise BackendError(f"Cannot export into {folder}: it is not empty; name a new folder.")
        text = to_yaml(spec, settings)  # validate before writing anything
        folder.mkdir(parents=True, exist_ok=True)
        self._build_code(folder / CODE_DIR)
        containers.write_context("azure", settings, folder / "container", folder / CODE_DIR)
        if not settings.get("data_uri"):
            _stage_data(spec, folder / DATA_DIR)
        (folder / "job.yml").write_text(text, encoding="utf-8")
        (folder / "README.txt").write_text(_readme(spec, settings), encoding="utf-8")
        return str(folder)

    # -- submit, read, stop, import
    def submit(self, spec: StudySpec, run: RunRow, settings: dict[str, Any]) -> Submitted:
        """Submit the sweep job (uploading trainer and data) without waiting for it.

        The run's machine is the compute cluster's VM size, read from the workspace: it is
        what the trials run on and what prices them.

        Raises:
            SpecError: the spec cannot be expressed as an Azure ML sweep.
            BackendError: Azure ML refused the job.
        """
        search_space(spec)
        sampling(spec, settings)
        name = safe_name(f"cloudtune-{spec.name}-{run.id}-{uuid.uuid4().hex[:8]}", limit=100)
        client = self.client(settings)
        with tempfile.TemporaryDirectory(prefix="cloudtune-azure-") as tmp:
            code = self._build_code(Path(tmp) / CODE_DIR)
            data = settings.get("data_uri") or str(_stage_data(spec, Path(tmp) / DATA_DIR))
            job = build_sweep_job(spec, settings, code=str(code), data=str(data), name=name)
            with azure_errors(f"submit the sweep job {name}"):
                created = client.jobs.create_or_update(job)
        handle = getattr(created, "name", None)
        handle = handle if isinstance(handle, str) and handle else name
        vm = self._vm_size(settings, client)
        return Submitted(handle, vm, settings)

    def read_job(
        self, run: RunRow, spec: StudySpec | None, known: Mapping[str, TrialRow]
    ) -> JobReport:
        """Read the sweep's status and its trials through MLflow (the parent run's times)."""
        settings = self.settings(run.settings)
        client = self.client(settings)
        with azure_errors(f"read the sweep job {run.handle}"):
            job = client.jobs.get(run.handle)
        status, detail = map_status(getattr(job, "status", None))
        experiment = getattr(job, "experiment_name", None) or (
            experiment_name(spec, settings) if spec else None
        )
        searched = dict(getattr(job, "search_space", None) or {})
        reader = TrialReader(run, spec, _primary_metric(job, spec), searched)
        with mlflow_errors(str(run.handle)):
            mlflow = self._mlflow(settings, client)
            trials = reader.read(mlflow, str(run.handle), experiment, known)
            started, ended = reader.sweep_times(mlflow, str(run.handle), experiment)
        error = _failure(job, str(run.handle)) if status == "failed" else None
        return JobReport(status, detail, error, trials, started, ended)

    def stop_job(self, run: RunRow) -> None:
        """Ask Azure ML to cancel the sweep (not waiting for it)."""
        settings = self.settings(run.settings)
        with azure_errors(f"cancel the sweep job {run.handle}"):
            self.client(settings).jobs.begin_cancel(run.handle)

    def import_job(self, job_name: str, run: RunRow) -> PollResult:
        """Attach the Azure ML sweep job ``job_name`` (e.g. a finished one) to ``run``.

        Raises:
            NotFound: no such job in the workspace.
            BackendError: the job is not a sweep job.
        """
        settings = self.settings(run.settings)
        with azure_errors(f"read the job {job_name}"):
            job = self.client(settings).jobs.get(job_name)
        kind = str(getattr(job, "type", "") or "")
        if kind.lower() != "sweep":
            raise BackendError(
                f"The Azure ML job {job_name} is a {kind or 'non-sweep'} job, not a sweep; "
                "import the sweep job (its trials are its child jobs)."
            )
        self.store.update_run(run.id, handle=job_name)
        return self.poll(self.store.get_run(run.id))

    # -- helpers
    def _build_code(self, dest: Path) -> Path:
        """Write the trainer bundle (train.py at its top) into ``dest``."""
        if self._bundle_builder is not None:
            return Path(self._bundle_builder(dest))
        return Path(build_bundle(dest))

    def _vm_size(self, settings: Mapping[str, Any], client: Any) -> str | None:
        """Return the compute cluster's VM size as the workspace reports it.

        That is the machine the trials run on and what prices them; the ``instance_type``
        setting is used only when the workspace cannot say (e.g. no permission to read it).
        """
        compute = str(settings.get("compute") or "")
        size = self._sizes.get((*_workspace_key(settings), compute)) if compute else None
        if compute and size is None:
            try:
                with azure_errors(f"read the compute {compute}"):
                    size = client.compute.get(compute).size
            except CloudTuneError as err:
                log.warning("the VM size of %s is unknown: %s", compute, err)
        if isinstance(size, str) and size:
            return canonical_instance(self.name, size)
        return str(settings["instance_type"]) if settings.get("instance_type") else None

    def _mlflow(self, settings: Mapping[str, Any], client: Any) -> Any:
        """Return an MlflowClient on the workspace's tracking store."""
        from mlflow.tracking import MlflowClient

        uri = self._tracking_uri or settings.get("mlflow_tracking_uri")
        if not uri:
            key = _workspace_key(settings)
            if key not in self._uris:
                with azure_errors(f"read the workspace {settings.get('workspace')}"):
                    ws = client.workspaces.get(str(settings.get("workspace")))
                self._uris[key] = str(ws.mlflow_tracking_uri)
            uri = self._uris[key]
        if str(uri).startswith("azureml:"):
            try:
                import azureml.mlflow  # noqa: F401  (registers the azureml:// scheme)
            except ImportError as err:
                raise BackendNotReady(
                    "Reading Azure ML trials needs the azureml-mlflow package; reinstall "
                    "CloudTune's requirements (`make run`)."
                ) from err
        return MlflowClient(tracking_uri=str(uri))


_conforms: type[CloudBackend] = AzureBackend


# ----------------------------------------------------------------------------- trials


class TrialReader:
    """Reads a sweep's child runs from MLflow as trial records with their epochs.

    Args:
        run: the run the trials belong to.
        spec: the run's spec (restores parameter types), or None.
        metric: the primary metric's name, as logged (the trainer's running best of the
            objective, so its latest value is the best epoch).
        searched: the names in the sweep job's search space (an imported job's may differ
            from the run's spec).
    """

    def __init__(
        self,
        run: RunRow,
        spec: StudySpec | None,
        metric: str,
        searched: Iterable[str] = (),
    ) -> None:
        self.run = run
        self.searched = set(searched)
        self.spec = spec
        self.metric = metric

    def read(
        self,
        mlflow: Any,
        job_name: str,
        experiment: str | None,
        known: Mapping[str, TrialRow] | None = None,
    ) -> list[TrialRecord]:
        """Return the sweep's trials, leaving out finished ones the store already has."""
        done = {
            key
            for key, t in (known or {}).items()
            if t.status in FINISHED_TRIAL_STATUSES and t.ended_at is not None
        }
        children = self.children(mlflow, job_name, experiment)
        ordered = sorted(children, key=lambda r: (r.info.start_time or 0, r.info.run_id))
        return [self.record(mlflow, c) for c in ordered if c.info.run_id not in done]

    def sweep_times(
        self, mlflow: Any, job_name: str, experiment: str | None
    ) -> tuple[float | None, float | None]:
        """Return the sweep's own start and end (its parent MLflow run), where known."""
        exp = mlflow.get_experiment_by_name(experiment) if experiment else None
        parent = _parent_run_id(mlflow, exp.experiment_id, job_name) if exp else None
        if parent is None:
            return None, None
        info = mlflow.get_run(parent).info
        start = info.start_time / 1000 if info.start_time else None
        end = info.end_time / 1000 if info.end_time else None
        return start, end

    def children(self, mlflow: Any, job_name: str, experiment: str | None) -> list[Any]:
        """Return the sweep's trial runs: children of the parent run, one per trial."""
        exp = mlflow.get_experiment_by_name(experiment) if experiment else None
        if exp is None:
            return []
        parent = _parent_run_id(mlflow, exp.experiment_id, job_name)
        if parent is None:
            return []
        runs = _search_all(mlflow, exp.experiment_id, f"tags.mlflow.parentRunId = '{parent}'")
        return [r for r in runs if self._is_trial(r)]

    def _is_trial(self, child: Any) -> bool:
        """True for a trial run (named <sweep>_<n>, or carrying the tuned parameters)."""
        if _TRIAL_SUFFIX.search(child.info.run_name or ""):
            return True
        return bool(self.raw_params(child))

    def raw_params(self, child: Any) -> dict[str, Any]:
        """Return the trial's hyperparameters: Azure's hyperparameters tag, then MLflow params.

        Only the spec's and the sweep's parameters are kept (the trainer logs every tunable,
        defaults too); without either, every name the CNN knows.
        """
        out: dict[str, Any] = {}
        tag = child.data.tags.get("hyperparameters")
        if tag:
            try:
                loaded = json.loads(tag)
            except ValueError:
                loaded = {}
            if isinstance(loaded, dict):
                out.update({str(k).lstrip("-"): v for k, v in loaded.items()})
        out.update(child.data.params)
        names = {p.name for p in self.spec.space} if self.spec else set()
        names = (names | self.searched) or set(KNOWN_PARAMS)
        return {k: v for k, v in out.items() if k in names}

    def params(self, child: Any) -> dict[str, Any]:
        """Return the trial's parameters with the spec's types restored."""
        raw = self.raw_params(child)
        out = {name: restore_type(name, value, self._param(name)) for name, value in raw.items()}
        if self.spec:
            for p in self.spec.space:
                if isinstance(p, FixedParam):
                    out.setdefault(p.name, p.value)
        return out

    def _param(self, name: str) -> Param | None:
        return self.spec.param(name) if self.spec else None

    def record(self, mlflow: Any, child: Any) -> TrialRecord:
        """Return one trial as a record, with its epochs."""
        info = child.info
        status = MLFLOW_STATUS.get(str(info.status), "running")
        start = info.start_time / 1000 if info.start_time else None
        end = info.end_time / 1000 if info.end_time and status != "running" else None
        match = _TRIAL_SUFFIX.search(info.run_name or "")
        error = None
        if status == "failed":
            error = f"The Azure ML trial {info.run_name or info.run_id} failed."
        return TrialRecord(
            key=str(info.run_id),
            number=int(match.group(1)) if match else None,
            params=self.params(child),
            status=status,
            objective=child.data.metrics.get(self.metric),
            metrics={keras_metric(k): v for k, v in child.data.metrics.items()},
            started_at=start,
            ended_at=end,
            instance_type=self.run.instance_type,
            error=error,
            epochs=tuple(self.epochs(mlflow, child)),
        )

    def epochs(self, mlflow: Any, child: Any) -> list[EpochRecord]:
        """Return the logged steps as epochs, with seconds since the trial started."""
        steps: dict[int, dict[str, float]] = {}
        stamps: dict[int, int] = {}
        for key in child.data.metrics:
            for m in mlflow.get_metric_history(child.info.run_id, key):
                steps.setdefault(int(m.step), {})[keras_metric(key)] = float(m.value)
                stamps[int(m.step)] = max(stamps.get(int(m.step), 0), int(m.timestamp))
        start = child.info.start_time
        out = []
        for step in sorted(steps):
            wall = (stamps[step] - start) / 1000 if start else None
            metrics = {k: v for k, v in steps[step].items() if not k.endswith(BEST_SUFFIX)}
            out.append(EpochRecord(step, metrics, wall if wall is None or wall >= 0 else None))
        return out


def restore_type(name: str, value: Any, param: Param | None) -> Any:
    """Return ``value`` (a string from MLflow, or a JSON number) with the spec's type.

    A parameter of unknown type is read as a float, as Azure ML's sweep ranges are numeric.
    """
    return typed_value(name, value, param, kind="float")


def _parent_run_id(mlflow: Any, experiment_id: str, job_name: str) -> str | None:
    """Return the sweep's MLflow run id: the job name in Azure ML, else a run named so."""
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.get_run(job_name).info.run_id)
    except MlflowException:
        pass
    runs = mlflow.search_runs([experiment_id], filter_string=f"attributes.run_name = '{job_name}'")
    return str(runs[0].info.run_id) if runs else None


def _search_all(mlflow: Any, experiment_id: str, filter_string: str) -> list[Any]:
    """Return every run matching ``filter_string``, following page tokens."""
    out: list[Any] = []
    token = None
    while True:
        page = mlflow.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        out.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return out


# ----------------------------------------------------------------------------- small helpers


def _workspace_key(settings: Mapping[str, Any]) -> tuple[str, str, str]:
    return (
        str(settings.get("subscription_id") or ""),
        str(settings.get("resource_group") or ""),
        str(settings.get("workspace") or ""),
    )


def _primary_metric(job: Any, spec: StudySpec | None) -> str:
    """Return the metric the sweep optimises, as the trainer logs it."""
    metric = getattr(getattr(job, "objective", None), "primary_metric", None)
    if isinstance(metric, str) and metric:
        return metric
    return objective_metric(spec) if spec else "val_accuracy_best"


def _failure(job: Any, name: str) -> str:
    url = getattr(job, "studio_url", None)
    where = f" Its logs are in Azure ML studio: {url}" if isinstance(url, str) and url else ""
    return f"The Azure ML sweep job {name} failed.{where}"


def _stage_data(spec: StudySpec, dest: Path) -> Path:
    """Stage the spec's dataset into ``dest`` for upload."""
    return stage_dataset(
        spec.dataset.name,
        path=spec.dataset.path,
        dest_dir=dest,
        subset=spec.dataset.subset,
        validation_split=spec.dataset.validation_split,
        seed=spec.seed,
    )


def _readme(spec: StudySpec, settings: Mapping[str, Any]) -> str:
    data = (
        f"The trials read data from {settings['data_uri']}."
        if settings.get("data_uri")
        else f"{DATA_DIR}/ holds the staged dataset; the CLI uploads it with the job."
    )
    return (
        f"CloudTune study {spec.name!r} as an Azure ML sweep job\n\n"
        f"job.yml     the sweep job (Azure ML CLI v2 YAML)\n"
        f"{CODE_DIR}/        the trainer (train.py) and the CloudTune files it needs\n"
        f"{data}\n\n"
        "Submit it with the Azure ML CLI (az extension add -n ml; az login):\n\n"
        f"    az ml job create --file job.yml {workspace_args(settings)}\n\n"
        "Then attach it to CloudTune to follow its trials:\n\n"
        "    python -m core import-job --backend azure JOB_NAME\n"
    )
