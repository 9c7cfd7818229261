"""A loopback fake of the Vertex AI REST API (tuning jobs) and of the Cloud Storage JSON API.

It serves what the real clients call, in the wire format the service uses, so the
google-cloud-aiplatform REST transport and google-cloud-storage run end to end:

* ``POST /v1/projects/P/locations/L/hyperparameterTuningJobs`` (create; the REST transport
  sends enums as integers), ``GET /v1/<job name>`` and ``POST /v1/<job name>:cancel``;
* ``POST /upload/storage/v1/b/B/o?uploadType=multipart`` and ``GET /storage/v1/b/B/o/NAME``
  (``alt=media`` for the bytes; ``/download/...`` too), into buckets that exist;
* for the readiness check, ``GET /storage/v1/b/B`` (the bucket, with its projectNumber),
  ``GET /storage/v1/b/B/iam`` (its IAM policy), ``GET /storage/v1/b/B/iam/testPermissions``,
  and Resource Manager's ``GET /v3/projects/P`` and ``POST /v3/projects/P:getIamPolicy``.

Buckets and projects are what :meth:`FakeVertex.create_bucket` and
:meth:`FakeVertex.add_project` made; :attr:`FakeVertex.refused` lists permissions the caller
lacks (those calls answer 403, as the services do; Resource Manager also answers 403 for a
project that does not exist) and :attr:`FakeVertex.caller_permissions` what testIamPermissions
grants. The fake does not know folder or organization grants, deny policies or what a custom
role contains.

Tests drive the jobs with :meth:`FakeVertex.finish`, :meth:`FakeVertex.set_state` and
:meth:`FakeVertex.add_trial`, and read :attr:`FakeVertex.calls` and :attr:`FakeVertex.objects`.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import random
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from core.backends import containers
from tests.loopback import LoopbackFake
from tests.trainer_output import TrainerRun, trainer_run

JOB_STATES = {
    "JOB_STATE_UNSPECIFIED": 0,
    "JOB_STATE_QUEUED": 1,
    "JOB_STATE_PENDING": 2,
    "JOB_STATE_RUNNING": 3,
    "JOB_STATE_SUCCEEDED": 4,
    "JOB_STATE_FAILED": 5,
    "JOB_STATE_CANCELLING": 6,
    "JOB_STATE_CANCELLED": 7,
}
TRIAL_STATES = {"REQUESTED": 1, "ACTIVE": 2, "STOPPING": 3, "SUCCEEDED": 4, "INFEASIBLE": 5}
_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/hyperparameterTuningJobs$")
_JOB = re.compile(
    r"^/v1/(projects/[^/]+/locations/[^/]+/hyperparameterTuningJobs/[^/:]+)(:cancel)?$"
)
_UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
_BUCKET = re.compile(r"^/storage/v1/b/([^/]+)$")
_BUCKET_IAM = re.compile(r"^/storage/v1/b/([^/]+)/iam(/testPermissions)?$")
_PROJECT = re.compile(r"^/v3/projects/([^/:]+)$")
_PROJECT_IAM = re.compile(r"^/v3/projects/([^/:]+):getIamPolicy$")
PROJECT_NUMBER = "424242424242"
"""The test project's number (the harness's project, cloudtune-test)."""
_OBJECT = re.compile(r"^/(?:download/)?storage/v1/b/([^/]+)/o/(.+)$")


def _stamp(when: datetime, nanos: int = 0) -> str:
    """RFC 3339 with nanoseconds, as Google's JSON writes timestamps."""
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


class FakeVertex(LoopbackFake):
    """The fake service; use as a context manager (it listens on 127.0.0.1, a free port).

    Attributes:
        jobs: job resource name -> the job as stored (enum values as names).
        objects: (bucket, object name) -> bytes.
        calls: (method, path) of every request, in order.
        requests: job resource name -> the create request's JSON body, as received.
        trial_seconds: how long each finished trial ran.
        base_time: when the fake's jobs start (trials follow two minutes apart).
        cancelling_reads: how many reads after a cancel still report JOB_STATE_CANCELLING
            before the job reads as JOB_STATE_CANCELLED.
    """

    def __init__(self, trial_seconds: float = 90.0, cancelling_reads: int = 0) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self.requests: dict[str, dict[str, Any]] = {}
        self.trial_seconds = trial_seconds
        self.base_time = datetime.now(UTC).replace(microsecond=0)
        self.cancelling_reads = cancelling_reads
        self._cancelling: dict[str, int] = {}
        self.trainer_runs: dict[str, TrainerRun] = {}
        """"<job name>/<trial id>" -> what the trainer reported (its configuration, lines)."""
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.buckets: dict[str, dict[str, Any]] = {}
        """Bucket name -> its resource and IAM bindings ("bindings")."""
        self.projects: dict[str, dict[str, Any]] = {}
        """Project id -> {"number": ..., "bindings": [...]}."""
        self.refused: set[str] = set()
        """Permissions the caller lacks: storage.buckets.get, storage.buckets.getIamPolicy,
        resourcemanager.projects.get, resourcemanager.projects.getIamPolicy."""
        self.caller_permissions: set[str] | None = None
        """What testIamPermissions says the caller holds on every bucket (None: all asked)."""

    # -- buckets and projects for the readiness check
    def add_project(
        self, project: str, number: str, bindings: list[dict[str, Any]] | None = None
    ) -> None:
        """A project with ``number``; its IAM policy has the Custom Code Service Agent's role
        (Vertex AI grants it when it creates the agent) and ``bindings``."""
        agent = f"service-{number}@gcp-sa-aiplatform-cc.iam.gserviceaccount.com"
        self.projects[project] = {
            "number": number,
            "bindings": [
                {
                    "role": "roles/aiplatform.customCodeServiceAgent",
                    "members": [f"serviceAccount:{agent}"],
                },
                *(bindings or []),
            ],
        }

    def create_bucket(
        self,
        name: str,
        project: str = "cloudtune-test",
        *,
        bindings: list[dict[str, Any]] | None = None,
        location: str = "US-CENTRAL1",
    ) -> None:
        """A bucket of ``project`` (added with a made-up number if unknown), with the default
        bindings a new uniform-access bucket gets and ``bindings``."""
        if project not in self.projects:
            self.add_project(project, str(100000000000 + len(self.projects)))
        self.buckets[name] = {
            "resource": {
                "kind": "storage#bucket",
                "id": name,
                "name": name,
                "projectNumber": self.projects[project]["number"],
                "metageneration": "1",
                "location": location,
                "locationType": "region",
                "storageClass": "STANDARD",
                "etag": "CAE=",
                "timeCreated": _stamp(self.base_time),
                "updated": _stamp(self.base_time),
                "iamConfiguration": {"uniformBucketLevelAccess": {"enabled": True}},
            },
            "bindings": [
                {
                    "role": "roles/storage.legacyBucketOwner",
                    "members": [f"projectEditor:{project}", f"projectOwner:{project}"],
                },
                {
                    "role": "roles/storage.legacyBucketReader",
                    "members": [f"projectViewer:{project}"],
                },
                *(bindings or []),
            ],
        }

    def _project(self, key: str) -> dict[str, Any] | None:
        """A project by id or number."""
        if key in self.projects:
            return self.projects[key]
        return next((p for p in self.projects.values() if p["number"] == key), None)

    # -- controls for tests
    def job(self, name: str) -> dict[str, Any]:
        """Return a stored job by resource name (or by id)."""
        for key, job in self.jobs.items():
            if key == name or key.rsplit("/", 1)[-1] == name:
                return job
        raise KeyError(name)

    def set_state(self, name: str, state: str) -> None:
        """Move a job to a JobState name, e.g. JOB_STATE_RUNNING."""
        with self._lock:
            job = self.job(name)
            job["state"] = state
            if state == "JOB_STATE_RUNNING" and "startTime" not in job:
                job["startTime"] = _stamp(self.base_time)
            if state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                job["endTime"] = self._end_time(job)

    def add_trial(
        self,
        name: str,
        *,
        state: str = "SUCCEEDED",
        metric_value: float | None = None,
        epochs: int = 0,
        seed: int | None = None,
        curve: list[float] | None = None,
    ) -> dict[str, Any]:
        """Add one trial (parameters drawn from the job's study spec) and return it.

        With ``curve`` (validation accuracy per epoch) or ``epochs``, the trial's measurements
        are what the real trainer writes to the hypertune metrics file, started with the
        job's arguments and the trial's parameters as Vertex AI starts it; a SUCCEEDED
        trial's final measurement is then picked as the job's measurementSelectionType says
        (the last one, or the best). Without either, it has one final measurement.
        """
        with self._lock:
            job = self.job(name)
            trials = job.setdefault("trials", [])
            number = len(trials) + 1
            rng = random.Random(seed if seed is not None else number)
            study = job["studySpec"]
            metric = study["metrics"][0]["metricId"]
            start = self.base_time + timedelta(minutes=2 * number)
            trial: dict[str, Any] = {
                "id": str(number),
                "state": state,
                "parameters": [_draw(p, rng) for p in study["parameters"]],
                "startTime": _stamp(start, 123456789),
            }
            if curve is None and epochs:
                top = metric_value if metric_value is not None else 0.5 + 0.4 * rng.random()
                curve = [
                    round(top - 0.05 * (epochs - e) - 0.001 * e, 6) for e in range(1, epochs + 1)
                ]
                curve[-1] = round(top, 6)
            measurements = self._measurements(job, trial, curve or [])
            if measurements:
                trial["measurements"] = measurements
            if state in ("SUCCEEDED", "INFEASIBLE"):
                trial["endTime"] = _stamp(start + timedelta(seconds=self.trial_seconds), 123456789)
            if state == "SUCCEEDED":
                if measurements:
                    trial["finalMeasurement"] = _select(study, measurements)
                else:
                    value = metric_value
                    if value is None:
                        value = round(0.80 + 0.15 * rng.random(), 6)
                    trial["finalMeasurement"] = {
                        "stepCount": "1",
                        "metrics": [{"metricId": metric, "value": value}],
                    }
            if state == "INFEASIBLE":
                trial["infeasibleReason"] = "The trainer exited with status 1."
            trials.append(trial)
            return trial

    def _measurements(
        self, job: dict[str, Any], trial: dict[str, Any], curve: list[float]
    ) -> list[dict[str, Any]]:
        """Run the trainer's reporting for ``curve`` and read its hypertune file back."""
        if not curve:
            return []
        from core.training.train import HypertuneReporter

        pool = job["trialJobSpec"]["workerPoolSpecs"][0]
        code = pool.get("pythonPackageSpec") or pool.get("containerSpec") or {}
        args = list(code.get("args") or [])
        args += [f"--{p['parameterId']}={p['value']}" for p in trial["parameters"]]
        with tempfile.TemporaryDirectory() as folder:
            env = {
                "CLOUD_ML_TRIAL_ID": trial["id"],
                "CLOUD_ML_HP_METRIC_FILE": str(Path(folder) / "output.metrics"),
            }
            run = trainer_run(args, env)
            reporter = HypertuneReporter(env, run.config.objective)
            run.epochs(curve, sinks=[reporter.sink], seconds=self.trial_seconds / len(curve))
            entries = [
                json.loads(line)
                for line in Path(env["CLOUD_ML_HP_METRIC_FILE"]).read_text().splitlines()
            ]
        self.trainer_runs[f"{job['name']}/{trial['id']}"] = run
        metric = job["studySpec"]["metrics"][0]["metricId"]
        return [
            {
                "stepCount": str(entry["global_step"]),
                "elapsedDuration": f"{self.trial_seconds * int(entry['global_step']) / len(curve):.1f}s",
                "metrics": [{"metricId": metric, "value": float(entry[metric])}],
            }
            for entry in entries
            if metric in entry
        ]

    def finish(self, name: str, n: int, metric: str = "val_accuracy") -> None:
        """Mark the job SUCCEEDED with ``n`` SUCCEEDED trials reporting ``metric``."""
        job = self.job(name)
        assert job["studySpec"]["metrics"][0]["metricId"] == metric, "unexpected objective metric"
        self.set_state(name, "JOB_STATE_RUNNING")
        for _ in range(n):
            self.add_trial(name, state="SUCCEEDED", epochs=2)
        self.set_state(name, "JOB_STATE_SUCCEEDED")

    def _end_time(self, job: dict[str, Any]) -> str:
        minutes = 2 * len(job.get("trials") or []) + 5
        return _stamp(self.base_time + timedelta(minutes=minutes))

    def cancel_calls(self) -> list[str]:
        """Return the paths of every cancel request received."""
        return [path for method, path in self.calls if method == "POST" and ":cancel" in path]

    # -- request handling (called from the server's threads)
    def create_job(self, parent: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problems = _validate(body)
        if problems:
            return 400, _error(400, "INVALID_ARGUMENT", "; ".join(problems))
        with self._lock:
            name = f"{parent}/hyperparameterTuningJobs/{next(self._ids)}"
            self.requests[name] = json.loads(json.dumps(body))
            job = dict(body)
            job.update(
                name=name,
                state="JOB_STATE_PENDING",
                createTime=_stamp(self.base_time),
                updateTime=_stamp(self.base_time),
            )
            self.jobs[name] = job
            return 200, job

    def get_job(self, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return 404, _error(404, "NOT_FOUND", f"HyperparameterTuningJob {name} not found.")
            if job["state"] == "JOB_STATE_CANCELLING":  # the service finishes cancelling
                left = self._cancelling.get(name, 0)
                self._cancelling[name] = left - 1
                if left <= 0:
                    job["state"] = "JOB_STATE_CANCELLED"
                    job["endTime"] = self._end_time(job)
            return 200, json.loads(json.dumps(job))

    def cancel_job(self, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get(name)
            if job is None:
                return 404, _error(404, "NOT_FOUND", f"HyperparameterTuningJob {name} not found.")
            if job["state"] in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"):
                return 400, _error(400, "FAILED_PRECONDITION", "The job has already ended.")
            job["state"] = "JOB_STATE_CANCELLING"
            self._cancelling[name] = self.cancelling_reads
            return 200, {}

    def bucket_call(
        self, bucket: str, iam: str | None, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        """GET a bucket (``iam`` None), its IAM policy ("/iam") or "/testPermissions"."""
        known = self.buckets.get(bucket)
        if iam == "/testPermissions":
            if known is None:
                return 404, _gcs_error(404, "notFound", "The specified bucket does not exist.")
            asked = query.get("permissions", [])
            held = [
                p for p in asked if self.caller_permissions is None or p in self.caller_permissions
            ]
            body: dict[str, Any] = {"kind": "storage#testIamPermissionsResponse"}
            return 200, {**body, "permissions": held} if held else body
        permission = "storage.buckets.getIamPolicy" if iam else "storage.buckets.get"
        if permission in self.refused:
            return 403, _gcs_error(
                403,
                "forbidden",
                f"caller does not have {permission} access to the Google Cloud Storage bucket. "
                f"Permission '{permission}' denied on resource (or it may not exist).",
            )
        if known is None:
            return 404, _gcs_error(404, "notFound", "The specified bucket does not exist.")
        if not iam:
            return 200, known["resource"]
        return 200, {
            "kind": "storage#policy",
            "resourceId": f"projects/_/buckets/{bucket}",
            "version": 1,
            "etag": "CAE=",
            "bindings": known["bindings"],
        }

    def project_call(self, key: str, iam: bool) -> tuple[int, Any]:
        """Resource Manager v3 projects.get or getIamPolicy (403 for an unknown project too)."""
        permission = f"resourcemanager.projects.{'getIamPolicy' if iam else 'get'}"
        project = self._project(key)
        if project is None or permission in self.refused:
            return 403, _error(403, "PERMISSION_DENIED", "The caller does not have permission")
        if iam:
            return 200, {"version": 1, "etag": "BwXhqDgJ5Gg=", "bindings": project["bindings"]}
        project_id = next(k for k, v in self.projects.items() if v is project)
        return 200, {
            "name": f"projects/{project['number']}",
            "projectId": project_id,
            "state": "ACTIVE",
            "displayName": project_id,
        }

    def put_object(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        with self._lock:
            self.objects[(bucket, name)] = data
            return _object_resource(bucket, name, data)


def _draw(param: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A parameter value as the service returns it (numbers as floats)."""
    pid = param["parameterId"]
    if "doubleValueSpec" in param:
        spec = param["doubleValueSpec"]
        value: Any = rng.uniform(float(spec["minValue"]), float(spec["maxValue"]))
    elif "integerValueSpec" in param:
        spec = param["integerValueSpec"]
        value = float(rng.randint(int(spec["minValue"]), int(spec["maxValue"])))
    elif "discreteValueSpec" in param:
        value = float(rng.choice(param["discreteValueSpec"]["values"]))
    else:
        value = str(rng.choice(param["categoricalValueSpec"]["values"]))
    return {"parameterId": pid, "value": value}


def _select(study: dict[str, Any], measurements: list[dict[str, Any]]) -> dict[str, Any]:
    """The final measurement as Vertex AI picks it: the last one, or the best for the goal."""
    selection = study.get("measurementSelectionType")
    if selection not in (2, "BEST_MEASUREMENT"):
        return measurements[-1]
    goal = study["metrics"][0].get("goal")
    sign = -1.0 if goal in (2, "MINIMIZE") else 1.0
    return max(measurements, key=lambda m: sign * float(m["metrics"][0]["value"]))


def _validate(body: dict[str, Any]) -> list[str]:
    """The checks Vertex AI makes on create that our requests could break."""
    problems = []
    study = body.get("studySpec") or {}
    if not body.get("displayName"):
        problems.append("displayName is required")
    if not study.get("metrics"):
        problems.append("studySpec.metrics is required")
    params = study.get("parameters") or []
    if not params:
        problems.append("studySpec.parameters is required")
    for p in params:
        if "scaleType" not in p and ("doubleValueSpec" in p or "integerValueSpec" in p):
            problems.append(f"{p.get('parameterId')}: scaleType is required")
        values = (p.get("discreteValueSpec") or {}).get("values")
        if values is not None and list(values) != sorted(values):
            problems.append(f"{p.get('parameterId')}: discrete values must be increasing")
    if study.get("algorithm") in (2, "GRID_SEARCH") and any("doubleValueSpec" in p for p in params):
        problems.append("grid search needs integer, discrete or categorical parameters")
    if int(body.get("maxTrialCount") or 0) < 1:
        problems.append("maxTrialCount must be positive")
    if int(body.get("parallelTrialCount") or 0) < 1:
        problems.append("parallelTrialCount must be positive")
    pools = (body.get("trialJobSpec") or {}).get("workerPoolSpecs") or []
    if not pools:
        problems.append("trialJobSpec.workerPoolSpecs is required")
    for pool in pools:
        kinds = [k for k in ("pythonPackageSpec", "containerSpec") if k in pool]
        if len(kinds) != 1:
            problems.append("a worker pool needs exactly one of pythonPackageSpec, containerSpec")
        image = (pool.get("pythonPackageSpec") or {}).get("executorImageUri") or (
            pool.get("containerSpec") or {}
        ).get("imageUri")
        if not image:
            problems.append("the worker pool names no image")
        elif containers.image_problems("vertex", str(image))[1]:
            problems.append(f"image {image} is past its end of availability")
    return problems


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _gcs_error(code: int, reason: str, message: str) -> dict[str, Any]:
    """Cloud Storage's JSON API error body."""
    errors = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": {"code": code, "message": message, "errors": errors}}


def _object_resource(bucket: str, name: str, data: bytes) -> dict[str, Any]:
    import base64

    return {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/1",
        "bucket": bucket,
        "name": name,
        "size": str(len(data)),
        "generation": "1",
        "metageneration": "1",
        "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        "contentType": "application/octet-stream",
    }


def _as_wire(job: dict[str, Any], integers: bool) -> dict[str, Any]:
    """The job as sent: enum fields as numbers when the client asked for enum-encoding=int."""
    out = json.loads(json.dumps(job))
    if integers:
        out["state"] = JOB_STATES.get(out["state"], out["state"])
        for t in out.get("trials") or []:
            t["state"] = TRIAL_STATES.get(t["state"], t["state"])
    return out


class _Handler(BaseHTTPRequestHandler):
    owner: FakeVertex
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        self.owner.calls.append(("GET", path))
        integers = "int" in " ".join(query.get("$alt", []))
        m = _JOB.match(path)
        if m and not m.group(2):
            code, body = self.owner.get_job(m.group(1))
            self._send(code, _as_wire(body, integers) if code == 200 else body)
            return
        m = _BUCKET.match(path) or _BUCKET_IAM.match(path)
        if m:
            iam = None if m.re is _BUCKET else (m.group(2) or "/iam")
            code, body = self.owner.bucket_call(m.group(1), iam, query)
            self._send(code, body)
            return
        m = _PROJECT.match(path)
        if m:
            self._send(*self.owner.project_call(m.group(1), iam=False))
            return
        m = _OBJECT.match(url.path)
        if m:
            key = (unquote(m.group(1)), unquote(m.group(2)))
            data = self.owner.objects.get(key)
            if data is None:
                self._send(404, _error(404, "NOT_FOUND", f"No such object: {key[0]}/{key[1]}"))
            elif query.get("alt") == ["media"]:
                self._send(200, data, "application/octet-stream")
            else:
                self._send(200, _object_resource(key[0], key[1], data))
            return
        self._send(404, _error(404, "NOT_FOUND", f"No route for GET {path}"))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        self.owner.calls.append(("POST", path))
        integers = "int" in " ".join(query.get("$alt", []))
        raw = self._body()
        m = _JOBS.match(path)
        if m:
            code, body = self.owner.create_job(m.group(1), json.loads(raw or b"{}"))
            self._send(code, _as_wire(body, integers) if code == 200 else body)
            return
        m = _JOB.match(path)
        if m and m.group(2):
            code, body = self.owner.cancel_job(m.group(1))
            self._send(code, body)
            return
        m = _PROJECT_IAM.match(path)
        if m:
            self._send(*self.owner.project_call(m.group(1), iam=True))
            return
        m = _UPLOAD.match(url.path)
        if m:
            bucket = unquote(m.group(1))
            if bucket not in self.owner.buckets:
                self._send(404, _gcs_error(404, "notFound", "The specified bucket does not exist."))
                return
            self._upload(bucket, query, raw)
            return
        self._send(404, _error(404, "NOT_FOUND", f"No route for POST {path}"))

    def _upload(self, bucket: str, query: dict[str, list[str]], raw: bytes) -> None:
        kind = (query.get("uploadType") or [""])[0]
        if kind == "media":
            name = query["name"][0]
            data = raw
        elif kind == "multipart":
            header = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
            parts = [p.get_payload(decode=True) for p in message.iter_parts()]
            name = json.loads(parts[0])["name"]
            data = parts[1]
        else:
            self._send(400, _error(400, "INVALID_ARGUMENT", f"uploadType {kind!r} not faked"))
            return
        self._send(200, self.owner.put_object(bucket, name, data))


FakeVertex.handler = _Handler


@contextmanager
def running() -> Iterator[FakeVertex]:
    """Start a fake for the duration of a with block."""
    fake = FakeVertex().start()
    try:
        yield fake
    finally:
        fake.stop()


__all__ = ["FakeVertex", "running"]
