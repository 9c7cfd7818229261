"""The Azure ML backend wired to the loopback fake and a local MLflow store, for the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.store import RunRow, Store
from tests.fake_azure import FakeAzureML, mlflow_store
from tests.harness import BackendHarness, wired_to_fake

SETTINGS: dict[str, Any] = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-cloudtune-test",
    "workspace": "ws-cloudtune-test",
    "compute": "cpu-cluster",
    "instance_type": "Standard_DS3_v2",
    "region": "eastus",
    "data_uri": "azureml://datastores/workspaceblobstore/paths/cloudtune/digits/",
}
"""Settings that make check() return []; data_uri spares each launch a dataset staging."""


@dataclass
class Harness(BackendHarness):
    """What the conformance suite needs, plus the fake for Azure-specific tests.

    Attributes:
        backend: the backend wired to the fake.
        settings: settings that make ``check`` return [].
        finish: finish(handle, n) makes the fake report the sweep Completed with n trials.
        fake: the fake service (jobs, calls, cancels) and its MLflow store.
        backend_kwargs: the constructor arguments (a new instance = an app restart).
    """

    fake: FakeAzureML | None = None

    def add_trial(self, run: RunRow, curve: list[float]) -> float:
        """One FINISHED trial whose val_accuracy goes ``curve``; return the latest value of the
        sweep's primary metric for it, which is what Azure ML ranks trials by."""
        assert self.fake is not None and run.handle
        self.fake.set_status(run.handle, "Running")
        index = len(self.fake.trainer_runs)
        run_id = self.fake.add_trial(run.handle, index, curve=curve)
        primary = self.fake.jobs[run.handle]["properties"]["objective"]["primaryMetric"]
        return float(self.fake.mlflow().get_run(run_id).data.metrics[primary])

    def trainer_seed(self, run: RunRow, trial_key: str) -> int:
        """The seed the trainer computed in the child run ``trial_key`` (AZUREML_RUN_ID)."""
        assert self.fake is not None
        name = self.fake.mlflow().get_run(trial_key).info.run_name
        return int(self.fake.trainer_runs[name].config.trial_seed)


@contextmanager
def harness(store: Store, tmp_path: Path) -> Iterator[Harness]:
    """Start the fake, aim a real MLClient at it, and yield a ready :class:`Harness`."""
    from core.backends.azure.backend import AzureBackend

    fake = FakeAzureML(mlflow_store(tmp_path / "mlflow")).start()
    try:
        kwargs: dict[str, Any] = {
            "client": fake.ml_client(SETTINGS),
            "tracking_uri": fake.tracking_uri,
        }
        yield wired_to_fake(Harness, AzureBackend, store, SETTINGS, fake, kwargs)
    finally:
        fake.stop()
