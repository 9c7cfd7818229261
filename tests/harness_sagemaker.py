"""The SageMaker backend wired to a local moto server, for the backend conformance suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.store import RunRow, Store
from tests.fake_aws import BUCKET, REGION, ROLE_ARN, FakeAWS, fake_aws
from tests.harness import BackendHarness

SETTINGS: dict[str, Any] = {
    "region": REGION,
    "bucket": BUCKET,
    "role_arn": ROLE_ARN,
    "instance_type": "ml.m5.xlarge",
    "price_per_hour": 0.23,
}
"""Settings that make check() return [] against the fake."""


@dataclass
class Harness(BackendHarness):
    """A backend aimed at the fake, settings that satisfy it, and levers on the fake.

    Attributes:
        backend: a SageMakerBackend whose boto3 clients reach the local moto server.
        settings: settings with which check() returns [].
        finish: finish(handle, n): the tuning job reports n completed trials and Completed.
        stopped: stopped(handle): whether the fake received StopHyperParameterTuningJob.
        backend_kwargs: constructor arguments for another instance (none: the env suffices).
        fake: the running fake, for tests that need more levers.
    """

    stopped: Callable[[str], bool] = field(default=lambda handle: False)
    fake: FakeAWS | None = None

    def add_trial(self, run: RunRow, curve: list[float]) -> float:
        """One completed training job whose val_accuracy goes ``curve``; return SageMaker's
        final objective for it (the last match of the objective's regex in the log)."""
        assert self.fake is not None and run.handle
        (name,) = self.fake.add_trials(run.handle, 1, curve=curve)
        job = self.fake.tuning_job(run.handle)
        objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
        summary = self.fake.summaries(run.handle)
        mine = next(s for s in summary if s["TrainingJobName"] == name)
        metric = mine["FinalHyperParameterTuningJobObjectiveMetric"]
        assert metric["MetricName"] == objective["MetricName"]
        return float(metric["Value"])

    def trainer_seed(self, run: RunRow, trial_key: str) -> int:
        """The seed the trainer computed in the training job ``trial_key``."""
        assert self.fake is not None
        trial = self.fake.sagemaker().training_jobs[trial_key]
        return int(trial.trainer.config.trial_seed)


@contextmanager
def harness(store: Store, tmp_path: Path) -> Iterator[Harness]:
    """Start the fake, create the bucket and the execution role, yield a ready backend.

    Args:
        store: the store the backend writes to.
        tmp_path: a scratch folder (unused: staging uses temporary folders).
    """
    from core.backends.sagemaker.backend import SageMakerBackend

    with fake_aws() as aws:
        aws.create_bucket(BUCKET)
        aws.create_execution_role()  # trusts SageMaker, reads and writes the bucket
        yield Harness(
            backend=SageMakerBackend(store),
            settings=dict(SETTINGS),
            finish=aws.finish,
            stopped=lambda handle: handle in aws.stopped,
            fake=aws,
        )
