"""Helpers of the pricing and forecasting tests: the catalog's own figures, a small spec."""

from __future__ import annotations

from typing import Any

from core.costs import pricing
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


def store_calibration(
    store: Any,
    spec: StudySpec,
    *,
    per_epoch_s: float,
    overhead_s: float,
    per_step_s: float,
    steps: int,
) -> None:
    """Keep a local calibration of digits (batch 64, 1,437 examples) in the store, as if timed."""
    from core.costs import forecasting

    cal = forecasting.Calibration(
        per_epoch_s=per_epoch_s,
        overhead_s=overhead_s,
        per_step_s=per_step_s,
        steps=steps,
        batch_size=64,
        work=forecasting.work_units(forecasting.representative_params(spec), (8, 8, 1)),
        examples=1437,
        synthetic=False,
        measured_at=0.0,
    )
    store.set_setting(forecasting.calibration_key("digits", None), cal.to_dict())
