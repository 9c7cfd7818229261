"""The trainer's Keras callbacks: each finished epoch handed to the trainer's report."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from core.training.train import keras_metrics

if TYPE_CHECKING:
    from core.training.train import EpochReport

log = logging.getLogger(__name__)


class EpochReporter(keras.callbacks.Callback):
    """Hands each finished epoch, with its wall time, to the trainer's report.

    Args:
        report: the trainer's :class:`~core.training.train.EpochReport`.
    """

    def __init__(self, report: EpochReport) -> None:
        super().__init__()
        self.report = report
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Start the epoch's clock.

        Args:
            epoch: Keras' epoch index (from 0).
            logs: Keras' logs (unused).
        """
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Report the epoch, numbered from 1, with its metrics under the trainer's names.

        Args:
            epoch: Keras' epoch index (from 0).
            logs: Keras' epoch logs.
        """
        seconds = time.perf_counter() - self._start
        self.report.end_epoch(epoch + 1, keras_metrics(logs), seconds)
