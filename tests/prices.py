"""Helpers of the pricing and forecasting tests: the catalog's own figures, a small spec."""

from __future__ import annotations

from typing import Any

from core import pricing
from core.spec import StudySpec


def catalog_price(backend: str, instance: str, accelerator: str | None = None) -> float:
    """The catalog's own figure, read straight from the JSON."""
    for entry in pricing.catalog_data()["prices"]:
        same = entry["backend"] == backend and entry.get("accelerator") == accelerator
        if same and (accelerator or entry["instance_type"] == instance):
            return float(entry["usd_per_hour"])
    raise AssertionError(f"{backend} {instance} {accelerator} missing from the catalog")


def make_spec(**budget: Any) -> StudySpec:
    data = {
        "name": "t",
        "dataset": {"name": "digits"},
        "space": [
            {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1},
            {"name": "batch_size", "type": "choice", "values": [32, 64, 128]},
        ],
        "budget": {"max_trials": 10, "parallel_trials": 1, "epochs": 2, **budget},
    }
    return StudySpec.from_dict(data)


# ----------------------------------------------------------------------------- catalog
