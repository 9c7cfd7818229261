"""What the real trainer reports for a trial, for the service fakes (no TensorFlow involved).

The fakes do not copy the trainer's formatter: they parse the arguments a service would hand
the trainer with the trainer's own ``parse_config`` (so the trial index and seed are the ones
the trainer computes from the service's environment) and report each epoch through the
trainer's own :class:`core.training.train.EpochReport` (so the printed lines, the running best
and what reaches the hypertune file or MLflow are what the trainer writes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from core.training import train


def curve_metrics(accuracy: float) -> dict[str, float]:
    """The printed-name metrics of an epoch whose validation accuracy is ``accuracy``."""
    return {
        "train_loss": round(1.2 - accuracy, 4),
        "train_accuracy": round(accuracy - 0.02, 4),
        "val_loss": round(1 - accuracy, 4),
        "val_accuracy": round(accuracy, 4),
    }


@dataclass
class TrainerRun:
    """One trial as the trainer reports it.

    Attributes:
        config: the trainer's configuration, parsed from the service's arguments and env.
        lines: every line the trainer printed about the trial (stdout), in order.
    """

    config: train.TrainConfig
    lines: list[str] = field(default_factory=list)
    report: train.EpochReport | None = None

    def epochs(
        self,
        curve: Sequence[float],
        *,
        sinks: Sequence[train.EpochSink] = (),
        seconds: float = 2.5,
        first: int = 1,
    ) -> None:
        """Report epochs ``first``.. with validation accuracies ``curve``, as train.run does."""
        if self.report is None:
            self.report = train.EpochReport(
                sinks, self.config.objective, self.config.goal, out=self.lines.append
            )
        for offset, accuracy in enumerate(curve):
            self.report.end_epoch(first + offset, curve_metrics(accuracy), seconds)


def trainer_run(argv: Sequence[str], env: Mapping[str, str]) -> TrainerRun:
    """Parse ``argv`` and ``env`` as the trainer does and print its trial line."""
    config = train.parse_config(list(argv), dict(env))
    run = TrainerRun(config)
    run.lines.append(f"trial: {config.trial}, seed: {config.trial_seed}")
    return run


def default_curve(final: float, epochs: int) -> list[float]:
    """A rising curve ending at ``final`` (0.05 a step)."""
    return [round(final - 0.05 * (epochs - e), 4) for e in range(1, epochs + 1)]
