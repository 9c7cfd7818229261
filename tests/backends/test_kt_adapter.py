"""The KerasTuner adapter: every private KerasTuner name it lists still exists."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _resolve(dotted: str) -> Any:
    """Import a dotted module, or a module's attribute (a class), by its dotted path."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError:
        module, _, name = dotted.rpartition(".")
        return getattr(importlib.import_module(module), name)


def test_every_listed_private_keras_tuner_name_exists(tmp_path: Path) -> None:
    import keras_tuner

    from core.backends.local import kt

    objective = keras_tuner.Objective("val_accuracy", direction="max")

    def oracle() -> Any:
        made = keras_tuner.Oracle(objective=objective, max_trials=1)
        made._set_project_dir(str(tmp_path), "study")  # as a tuner does
        return made

    # how to get an instance of each class whose listed names are set per instance
    instances: dict[str, Callable[[], Any]] = {
        "keras_tuner.Oracle": oracle,
        "keras_tuner.oracles.HyperbandOracle": lambda: keras_tuner.oracles.HyperbandOracle(
            objective=objective, max_epochs=2
        ),
        "keras_tuner.src.distribute.oracle_chief.OracleServicer": lambda: _resolve(
            "keras_tuner.src.distribute.oracle_chief.OracleServicer"
        )(oracle()),
    }
    assert kt.PRIVATE_NAMES
    missing = []
    for entry in kt.PRIVATE_NAMES:
        owner = instances[entry.owner]() if entry.instance else _resolve(entry.owner)
        if not hasattr(owner, entry.name):
            missing.append(f"{entry.owner}.{entry.name}")
    version = keras_tuner.__version__
    assert not missing, f"KerasTuner {version} lacks {missing}; see core/backends/local/kt.py"
