"""Study specs the cloud backend tests share: one space with every parameter type.

The Azure and Vertex goldens were recorded from slightly different versions of it (a dropout
step on Azure, the batch sizes in another order on Vertex), so those two details are arguments.
"""

from __future__ import annotations

from typing import Any

from core.spec import StudySpec, parse_spec
from core.store import Store


def every_type_spec(
    name: str,
    subset: int,
    *,
    dropout_step: float | None = None,
    batch_sizes: tuple[int, ...] = (32, 64, 128),
    **over: Any,
) -> StudySpec:
    """A random-search spec on digits whose space holds every parameter type and scale.

    Args:
        name: the study's name.
        subset: how many digits examples train.
        dropout_step: the float step of dropout_rate (None: continuous).
        batch_sizes: the choice values of batch_size, in this order.
        **over: top-level spec keys that replace the defaults (strategy, budget, space...).
    """
    dropout: dict[str, Any] = {"name": "dropout_rate", "type": "float", "min": 0.2, "max": 0.4}
    if dropout_step is not None:
        dropout["step"] = dropout_step
    data: dict[str, Any] = {
        "name": name,
        "dataset": {"name": "digits", "subset": subset},
        "space": [
            {"name": "learning_rate", "type": "float", "min": 0.0001, "max": 0.1, "scale": "log"},
            dropout,
            {"name": "batch_size", "type": "choice", "values": list(batch_sizes)},
            {"name": "optimizer", "type": "choice", "values": ["adam", "sgd"]},
            {"name": "conv_blocks", "type": "int", "min": 1, "max": 3},
            {"name": "filters", "type": "int", "min": 16, "max": 64, "step": 16},
            {"name": "dense_units", "type": "int", "min": 16, "max": 256, "scale": "log"},
            {"name": "kernel_size", "type": "fixed", "value": 5},
        ],
        "strategy": "random",
        "budget": {"max_trials": 6, "parallel_trials": 2, "epochs": 2},
        "seed": 7,
    }
    data.update(over)
    return parse_spec(data)


def stored_run(store: Store, backend: str, spec: StudySpec, settings: dict[str, Any]) -> int:
    """A new study of ``spec`` with one queued run on ``backend``; return the run's id."""
    return store.create_run(store.create_study(spec), backend, settings=settings, spec=spec)


GRID_SPACE: list[dict[str, object]] = [
    {"name": "learning_rate", "type": "float", "min": 0.01, "max": 0.05, "step": 0.02},
    {"name": "batch_size", "type": "choice", "values": [32, 64]},
    {"name": "optimizer", "type": "choice", "values": ["adam", "rmsprop"]},
    {"name": "conv_blocks", "type": "int", "min": 1, "max": 2},
]
"""A small finite space (3 x 2 x 2 x 2 points) for the grid goldens."""
