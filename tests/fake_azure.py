"""A loopback fake of Azure ML's job REST API, with the sweep's trials in a local MLflow store.

It serves what ``MLClient.jobs.get`` and ``MLClient.jobs.begin_cancel`` call, in the service's
wire format, so the real MLClient runs end to end against 127.0.0.1:

* ``GET  /subscriptions/S/resourceGroups/RG/providers/Microsoft.MachineLearningServices/
  workspaces/WS/jobs/NAME`` (the job, or the ARM 404 error body);
* ``POST .../jobs/NAME/cancel`` (202; the job then reads as Canceled).

Submission is not faked over HTTP (``create_or_update`` uploads code and data first): the
MLClient's ``jobs.create_or_update`` is replaced by a ``create_autospec`` double that stores the
job here as the service would (code and data as asset ids, status NotStarted).

The trials live where Azure ML keeps them, in MLflow: a parent run for the sweep and one child
run per trial (named ``<sweep>_<n>``, tagged ``mlflow.parentRunId`` and ``hyperparameters``),
with the metrics logged per epoch. :meth:`FakeAzureML.finish` writes them and completes the job.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import math
import os
import random
import re
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

from tests.loopback import LoopbackFake
from tests.trainer_output import TrainerRun, trainer_run

_JOB = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/([^/]+)/jobs/([^/?]+)(/cancel)?$"
)
_COMPUTE = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/([^/]+)/computes/([^/?]+)$"
)
COMPUTES = {"cpu-cluster": "STANDARD_DS3_V2", "gpu-cluster": "STANDARD_NC6S_V3"}
"""The workspace's compute clusters and their VM sizes (the service writes them in capitals)."""
T0 = 1_740_000_000.0
"""When the fake's trials start (epoch seconds)."""


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


FAKE_TOKEN = ".".join(
    [
        _b64({"alg": "HS256", "typ": "JWT"}),
        _b64(
            {"tid": "00000000-0000-0000-0000-00000000fa6e", "aud": "fake", "note": "not a secret"}
        ),
        "ZmFrZS1zaWduYXR1cmU",
    ]
)
"""A JWT-shaped token that signs nothing (the SDK reads the tenant id out of tokens)."""


class FakeCredential:
    """A credential stub: a fixed, worthless token, so no identity service is ever asked."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return a fake AccessToken valid for an hour."""
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(FAKE_TOKEN, int(time.time()) + 3600)


# ----------------------------------------------------------------------------- MLflow store

_TEMPLATE_LOCK = threading.Lock()


def mlflow_store(folder: Path) -> str:
    """Return the URI of a fresh, empty SQLite MLflow store in ``folder``.

    Creating MLflow's schema takes seconds, so an empty store is made once per process and
    copied for each caller.
    """
    import mlflow

    with _TEMPLATE_LOCK:
        cache = Path(tempfile.gettempdir()) / f"cloudtune-mlflow-empty-{mlflow.__version__}.db"
        if not cache.exists():
            scratch = cache.with_name(f"{cache.name}.{os.getpid()}.{uuid.uuid4().hex}")
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=f"sqlite:///{scratch}")
            client.search_experiments()  # creates the schema
            _dispose(f"sqlite:///{scratch}")
            os.replace(scratch, cache)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "mlflow.db"
    shutil.copyfile(cache, target)
    return f"sqlite:///{target}"


def _dispose(uri: str) -> None:
    """Close MLflow's cached engine for ``uri`` (so the file can be moved)."""
    from mlflow.tracking._tracking_service import utils

    store = utils._get_store(uri)
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()


# ----------------------------------------------------------------------------- the fake


class FakeAzureML(LoopbackFake):
    """The fake service; use as a context manager (it listens on 127.0.0.1, a free port).

    Args:
        tracking_uri: the local MLflow store that plays the workspace's tracking store.
        trial_seconds: how long each finished trial ran.
        epochs: epochs each trial logs (default: the job's --epochs).

    Attributes:
        jobs: job name -> the job's REST body as the service returns it.
        submitted: job name -> the SweepJob object handed to create_or_update.
        calls: (method, path) of every request, in order.
        cancels: names of the jobs a cancel was posted for.
        authorizations: the Authorization headers seen (to prove the credential was used).
    """

    def __init__(
        self, tracking_uri: str, *, trial_seconds: float = 60.0, epochs: int | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.trial_seconds = trial_seconds
        self.epochs = epochs
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submitted: dict[str, Any] = {}
        self.trainer_runs: dict[str, TrainerRun] = {}
        """"<sweep>_<n>" -> what the trainer reported for trial n (configuration, lines)."""
        self.computes: dict[str, str] = dict(COMPUTES)
        """Compute cluster name -> VM size, as the workspace reports it."""
        self.denied: set[str] = set()
        """ARM actions the caller lacks (e.g. .../workspaces/computes/read): answered 403
        AuthorizationFailed, as Azure Resource Manager does."""
        self.calls: list[tuple[str, str]] = []
        self.cancels: list[str] = []
        self.authorizations: list[str] = []
        self.cloud_name = f"CloudTuneFake{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._saved_cloud: str | None = None
        self.scope = ("sub", "rg", "ws")

    # -- lifecycle
    def start(self) -> FakeAzureML:
        """Start serving in a background thread (remembering the SDK's current cloud)."""
        super().start()
        self._saved_cloud = os.environ.get("AZUREML_CURRENT_CLOUD")
        return self

    def stop(self) -> None:
        """Stop serving and forget the fake cloud the SDK was told about."""
        from azure.ai.ml import _azure_environments

        super().stop()
        _azure_environments._environments.pop(self.cloud_name, None)
        if self._saved_cloud is None:
            os.environ.pop("AZUREML_CURRENT_CLOUD", None)
        else:
            os.environ["AZUREML_CURRENT_CLOUD"] = self._saved_cloud

    # -- the client
    def ml_client(self, settings: Mapping[str, Any]) -> Any:
        """Return a real MLClient whose management endpoint is this fake.

        The SDK takes a custom cloud's endpoints as ``cloud_metadata``; its
        ``jobs.create_or_update`` (which uploads first) is replaced by an autospec double that
        stores the job here.
        """
        from azure.ai.ml import MLClient

        self.scope = (
            str(settings["subscription_id"]),
            str(settings["resource_group"]),
            str(settings["workspace"]),
        )
        metadata = {
            "azure_portal": self.url + "/",
            "resource_manager": self.url + "/",
            "active_directory": self.url + "/",
            "aml_resource_id": self.url + "/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": self.url + "/",
        }
        client = MLClient(
            FakeCredential(),
            str(settings["subscription_id"]),
            str(settings["resource_group"]),
            str(settings["workspace"]),
            cloud=self.cloud_name,
            cloud_metadata=metadata,
            enable_telemetry=False,
        )
        client.jobs.create_or_update = create_autospec(  # type: ignore[method-assign]
            client.jobs.create_or_update, side_effect=self.submit
        )
        # MLClient hands its other operations enforce_https=False when its endpoint is plain
        # http (this fake); azure-ai-ml 1.35 forgets to for the compute operations
        rest = client.compute._operation
        rest.get = functools.partial(rest.get, enforce_https=False)
        return client

    def submit(self, job: Any, **kwargs: Any) -> Any:
        """Store a submitted SweepJob as the service would and return it."""
        name = job.name or f"sweep_{uuid.uuid4().hex[:10]}"
        self.submitted[name] = job
        self.put(job, name=name, status="NotStarted")
        stored = copy.deepcopy(job)
        stored.name = name
        return stored

    def put(self, job: Any, *, name: str, status: str = "Running") -> dict[str, Any]:
        """Store ``job`` (a SweepJob, or a CommandJob) under ``name`` as its REST body."""
        served = copy.deepcopy(job)
        served.name = name
        sub, group, ws = self.scope
        workspace = (
            f"/subscriptions/{sub}/resourceGroups/{group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{ws}"
        )
        target = served.trial if getattr(served, "trial", None) is not None else served
        target.code = f"{workspace}/codes/{uuid.uuid4()}/versions/1"
        for value in (served.inputs or {}).values():
            path = getattr(value, "path", None)
            if isinstance(path, str) and not path.startswith("azureml:"):
                value.path = "azureml://datastores/workspaceblobstore/paths/LocalUpload/data/"
        body: dict[str, Any] = served._to_rest_object().as_dict()
        body["id"] = f"{workspace}/jobs/{name}"
        body["name"] = name
        body["type"] = "Microsoft.MachineLearningServices/workspaces/jobs"
        body["properties"]["status"] = status
        body["properties"]["services"] = {
            "Studio": {
                "jobServiceType": "Studio",
                "endpoint": f"https://ml.azure.com/runs/{name}?wsid={workspace}",
            }
        }
        with self._lock:
            self.jobs[name] = body
        return body

    # -- controls for tests
    def set_status(self, name: str, status: str) -> None:
        """Move a job to an Azure ML status, e.g. Running."""
        with self._lock:
            self.jobs[name]["properties"]["status"] = status

    def status(self, name: str) -> str:
        """Return a job's status as served."""
        return str(self.jobs[name]["properties"]["status"])

    def finish(self, name: str, n: int) -> None:
        """Complete the sweep ``name`` with ``n`` finished trials in the MLflow store."""
        for index in range(n):
            self.add_trial(name, index)
        client = self.mlflow()
        parent = self.parent_run(name)
        client.set_terminated(parent, "FINISHED", end_time=int((T0 + 3600) * 1000))
        self.set_status(name, "Completed")

    def mlflow(self) -> Any:
        """Return an MlflowClient on the fake's tracking store."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def parent_run(self, name: str) -> str:
        """Return (creating it if needed) the sweep's parent MLflow run id."""
        client = self.mlflow()
        experiment = self.experiment_id(name)
        found = client.search_runs([experiment], filter_string=f"attributes.run_name = '{name}'")
        if found:
            return str(found[0].info.run_id)
        run = client.create_run(experiment, run_name=name, start_time=int(T0 * 1000))
        return str(run.info.run_id)

    def experiment_id(self, name: str) -> str:
        """Return (creating it if needed) the MLflow experiment of job ``name``."""
        client = self.mlflow()
        title = self.jobs[name]["properties"].get("experimentName") or "Default"
        found = client.get_experiment_by_name(title)
        if found is not None:
            return str(found.experiment_id)
        folder = Path(self.tracking_uri.removeprefix("sqlite:///")).parent / "artifacts"
        return str(client.create_experiment(title, artifact_location=folder.as_uri()))

    def add_trial(
        self,
        name: str,
        index: int,
        *,
        status: str = "FINISHED",
        epochs: int | None = None,
        params: Mapping[str, Any] | None = None,
        accuracy: float | None = None,
        curve: list[float] | None = None,
    ) -> str:
        """Write trial ``index`` of sweep ``name`` as a child run; return its run id.

        Args:
            name: the sweep job.
            index: the trial's number (the child run is named ``<name>_<index>``).
            status: the MLflow status (FINISHED, FAILED, KILLED, RUNNING).
            epochs: epochs logged (default: the fake's, else the job's --epochs).
            params: the hyperparameters (default: drawn from the job's search space).
            accuracy: the last epoch's val_accuracy (default: drawn).
            curve: the val_accuracy of each epoch (default: rising to ``accuracy``).

        The metrics are what the real trainer logs (tests/trainer_output.py), started with the
        job's command line, the trial's values substituted, as Azure ML starts it.
        """
        client = self.mlflow()
        experiment = self.experiment_id(name)
        parent = self.parent_run(name)
        rng = random.Random(f"{name}/{index}")
        values = dict(params) if params is not None else self.draw(name, rng)
        start = T0 + 30 + index * (self.trial_seconds + 5)
        run = client.create_run(
            experiment,
            run_name=f"{name}_{index}",
            start_time=int(start * 1000),
            tags={"mlflow.parentRunId": parent, "hyperparameters": json.dumps(values)},
        )
        run_id = str(run.info.run_id)
        trainer = self.trainer(name, index, values)
        for key, value in values.items():  # the trainer logs its params as text
            client.log_param(run_id, key, str(value))
        count = len(curve) if curve else (epochs or self.epochs or self.job_epochs(name))
        final = accuracy if accuracy is not None else round(rng.uniform(0.6, 0.95), 4)
        curve = curve or [round(final - (1 - e / count) * 0.2, 4) for e in range(1, count + 1)]

        def sink(epoch: int, metrics: Mapping[str, float]) -> None:  # MlflowLogger.sink's call
            stamp = int((start + epoch / count * self.trial_seconds * 0.9) * 1000)
            for key, value in metrics.items():
                client.log_metric(run_id, key, value, step=epoch, timestamp=stamp)

        trainer.epochs(curve, sinks=[sink])
        self.trainer_runs[f"{name}_{index}"] = trainer
        if status != "RUNNING":
            end = int((start + self.trial_seconds) * 1000)
            client.set_terminated(run_id, status, end_time=end)
        return run_id

    def trainer(self, name: str, index: int, values: Mapping[str, Any]) -> TrainerRun:
        """The trainer as Azure ML starts trial ``index``: the command with its values."""
        command = str(self.jobs[name]["properties"]["trial"]["command"])
        command = command.replace("${{inputs.data}}", "/mnt/azureml/inputs/data")
        for key, value in values.items():
            command = command.replace(f"${{{{search_space.{key}}}}}", str(value))
            command = command.replace(f"${{{{inputs.{key}}}}}", str(value))
        argv = shlex.split(command)[2:]  # python train.py ...
        return trainer_run(argv, {"AZUREML_RUN_ID": f"{name}_{index}"})

    def job_epochs(self, name: str) -> int:
        """Return the --epochs of the job's trial command (2 when absent)."""
        command = self.jobs[name]["properties"]["trial"]["command"]
        match = re.search(r"--epochs[ =](\d+)", command)
        return int(match.group(1)) if match else 2

    def draw(self, name: str, rng: random.Random) -> dict[str, Any]:
        """Draw one configuration from the job's REST search space, as Azure ML would."""
        out: dict[str, Any] = {}
        for key, (kind, args) in self.jobs[name]["properties"]["searchSpace"].items():
            out[key] = _sample(kind, args, rng)
        return out


def _sample(kind: str, args: list[Any], rng: random.Random) -> Any:
    """Sample one value of a REST search-space expression ([kind, [args]])."""
    if kind == "choice":
        return rng.choice(args[0])
    if kind == "randint":
        return rng.randrange(int(args[0]))
    low, high = args[0], args[1]
    if kind in ("uniform", "quniform"):
        value = rng.uniform(low, high)
    elif kind in ("loguniform", "qloguniform"):
        value = math.exp(rng.uniform(low, high))
    else:
        raise ValueError(f"the fake cannot sample {kind}")
    if kind.startswith("q"):
        value = round(value / args[2]) * args[2]
    return value


class _Handler(BaseHTTPRequestHandler):
    owner: FakeAzureML

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _send(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what: str) -> None:
        self._send(
            404,
            {"error": {"code": "UserError", "message": f"{what} could not be found."}},
        )

    def _route(self, method: str) -> None:
        fake = self.owner
        path = self.path.split("?", 1)[0]
        fake.calls.append((method, path))
        fake.authorizations.append(self.headers.get("Authorization", ""))
        compute = _COMPUTE.match(path)
        if compute is not None and method == "GET":
            self._compute(compute.group(4), path)
            return
        match = _JOB.match(path)
        if match is None:
            self._not_found(f"Resource {path}")
            return
        name, cancel = match.group(4), match.group(5)
        if name not in fake.jobs:
            self._not_found(f"Job {name}")
            return
        if method == "GET" and not cancel:
            with fake._lock:
                self._send(200, fake.jobs[name])
            return
        if method == "POST" and cancel:
            fake.cancels.append(name)
            fake.set_status(name, "Canceled")
            self._send(202)
            return
        self._send(405, {"error": {"code": "UserError", "message": f"{method} not supported"}})

    def _compute(self, name: str, path: str) -> None:
        """GET a compute: the ARM body of an AmlCompute cluster, with its VM size."""
        action = "Microsoft.MachineLearningServices/workspaces/computes/read"
        if action in self.owner.denied:
            message = (
                "The client 'cloudtune@example.com' with object id "
                "'00000000-0000-0000-0000-0000000000aa' does not have authorization to perform "
                f"action '{action}' over scope '{path}' or the scope is invalid. If access was "
                "recently granted, please refresh your credentials."
            )
            self._send(403, {"error": {"code": "AuthorizationFailed", "message": message}})
            return
        size = self.owner.computes.get(name)
        if size is None:
            self._not_found(f"Compute {name}")
            return
        self._send(
            200,
            {
                "id": path,
                "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/computes",
                "location": "eastus",
                "properties": {
                    "computeType": "AmlCompute",
                    "provisioningState": "Succeeded",
                    "properties": {
                        "vmSize": size,
                        "vmPriority": "Dedicated",
                        "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0},
                    },
                },
            },
        )

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")


FakeAzureML.handler = _Handler
