"""The Vertex AI backend wired to the loopback fake, for the backend conformance suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store import RunRow, Store
from tests.fake_vertex import PROJECT_NUMBER, FakeVertex
from tests.harness import BackendHarness, wired_to_fake

SETTINGS: dict[str, Any] = {
    "project": "cloudtune-test",
    "region": "us-central1",
    "bucket": "gs://cloudtune-test-bucket",
    "instance_type": "n1-standard-4",
}
_ENV = {"NO_GCE_CHECK": "true", "GOOGLE_CLOUD_DISABLE_TELEMETRY": "true"}


def stand_in_bundle(dest: Path) -> Path:
    """A minimal trainer source folder, for packaging tests that need no real trainer."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "train.py").write_text(
        "import sys\n\nif __name__ == '__main__':\n    print('val_accuracy: 0.5', sys.argv[1:])\n",
        encoding="utf-8",
    )
    (dest / "core").mkdir(exist_ok=True)
    (dest / "core" / "__init__.py").write_text("", encoding="utf-8")
    return dest


@dataclass
class Harness(BackendHarness):
    """What the conformance suite needs, plus the fake for Vertex-specific tests.

    Attributes:
        backend: the backend wired to the fake.
        settings: settings that make ``check`` return [].
        finish: finish(handle, n) makes the fake report the job SUCCEEDED with n trials.
        fake: the fake service.
        backend_kwargs: the constructor arguments (a new instance = an app restart).
    """

    fake: FakeVertex | None = None

    def add_trial(self, run: RunRow, curve: list[float]) -> float:
        """One SUCCEEDED trial whose val_accuracy goes ``curve``; return the value of the final
        measurement Vertex AI selected for it (the job's measurementSelectionType)."""
        assert self.fake is not None and run.handle
        self.fake.set_state(run.handle, "JOB_STATE_RUNNING")
        trial = self.fake.add_trial(run.handle, curve=curve)
        return float(trial["finalMeasurement"]["metrics"][0]["value"])

    def trainer_seed(self, run: RunRow, trial_key: str) -> int:
        """The seed the trainer computed in trial ``trial_key`` (CLOUD_ML_TRIAL_ID)."""
        assert self.fake is not None and run.handle
        job = self.fake.job(run.handle)
        return int(self.fake.trainer_runs[f"{job['name']}/{trial_key}"].config.trial_seed)


@contextmanager
def harness(store: Store, tmp_path: Path) -> Iterator[Harness]:
    """Start the fake, point the SDKs at it, and yield a ready :class:`Harness`."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer, jobs

    from core.backends.vertex.backend import VertexBackend

    saved_env = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    saved_wait = jobs._JOB_WAIT_TIME
    jobs._JOB_WAIT_TIME = 0.05  # the SDK's own waits, should anything block
    fake = FakeVertex().start()
    fake.add_project(str(SETTINGS["project"]), PROJECT_NUMBER)
    fake.create_bucket(str(SETTINGS["bucket"]).removeprefix("gs://"), str(SETTINGS["project"]))
    try:
        credentials = AnonymousCredentials()
        aiplatform.init(
            project=SETTINGS["project"],
            location=SETTINGS["region"],
            credentials=credentials,
            api_endpoint=fake.url,
            api_transport="rest",
        )
        kwargs: dict[str, Any] = {
            "credentials": credentials,
            "api_endpoint": fake.url,
            "api_transport": "rest",
        }
        yield wired_to_fake(Harness, VertexBackend, store, SETTINGS, fake, kwargs)
    finally:
        fake.stop()
        jobs._JOB_WAIT_TIME = saved_wait
        initializer.global_config.__init__()  # back to defaults: the SDK has no reset
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
