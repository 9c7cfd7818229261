"""Forecasts: the speed table, history, local calibration, caps and their ranges."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from core.backends.records import EpochRecord
from core.costs import forecasting, pricing
from core.spec import StudySpec
from tests.prices import catalog_price, make_spec, store_calibration

# ----------------------------------------------------------------------------- forecast


def test_forecast_without_history_uses_the_speed_table_and_documents_it() -> None:
    spec = make_spec(max_trials=10, parallel_trials=1, epochs=2)
    fc = forecasting.forecast("sagemaker", spec, {"instance_type": "ml.m5.xlarge"})
    tt = forecasting.estimate_trial_time("sagemaker", spec, {"instance_type": "ml.m5.xlarge"})
    assert tt is not None and tt.source == "table"
    facts = pricing.backend_facts("sagemaker")
    price = catalog_price("sagemaker", "ml.m5.xlarge")
    assert fc.price_per_hour == price
    wall = 10 * (tt.expected_s + facts["startup_s_per_trial"])
    assert fc.expected_wall_s == pytest.approx(wall)
    billed = 10 * (tt.expected_s + facts["billed_startup_s_per_trial"])
    assert fc.expected_cost_usd == pytest.approx(billed * price / 3600)
    assert fc.low_wall_s < fc.expected_wall_s < fc.high_wall_s
    text = " ".join(fc.basis)
    assert "relative-speed table" in text and "ml.m5.xlarge in us-east-1 at $" in text
    assert "Worst case: none" in text and fc.worst_wall_s is None and fc.worst_cost_usd is None


def test_forecast_parallelism_shortens_wall_time_not_cost() -> None:
    one = forecasting.forecast("vertex", make_spec(max_trials=10, parallel_trials=1), {})
    four = forecasting.forecast("vertex", make_spec(max_trials=10, parallel_trials=4), {})
    assert one.expected_wall_s is not None and four.expected_wall_s is not None
    assert four.expected_wall_s == pytest.approx(one.expected_wall_s * 3 / 10)  # ceil(10/4)=3
    assert four.expected_cost_usd == pytest.approx(one.expected_cost_usd)
    assert "3 waves of up to 4 trials" in " ".join(four.basis)


def test_forecast_with_accelerators_costs_more_and_runs_faster() -> None:
    spec = make_spec()
    cpu = forecasting.forecast("vertex", spec, {"machine_type": "n1-standard-8"})
    gpu = forecasting.forecast(
        "vertex",
        spec,
        {
            "machine_type": "n1-standard-8",
            "accelerator_type": "NVIDIA_TESLA_V100",
            "accelerator_count": 2,
        },
    )
    assert gpu.price_per_hour == pytest.approx(
        catalog_price("vertex", "n1-standard-8")
        + 2 * catalog_price("vertex", "*", "NVIDIA_TESLA_V100")
    )
    cpu_t = forecasting.estimate_trial_time("vertex", spec, {"machine_type": "n1-standard-8"})
    gpu_t = forecasting.estimate_trial_time(
        "vertex",
        spec,
        {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_V100"},
    )
    assert cpu_t is not None and gpu_t is not None and gpu_t.expected_s < cpu_t.expected_s
    assert gpu.expected_cost_usd is not None and cpu.expected_cost_usd is not None
    assert "NVIDIA_TESLA_V100" in " ".join(gpu.basis)


def test_worst_case_from_the_caps() -> None:
    spec = make_spec(max_trials=6, parallel_trials=2, max_minutes=10, max_cost_usd=3)
    fc = forecasting.forecast("azure", spec, {"instance_type": "Standard_NC6s_v3"})
    price = catalog_price("azure", "Standard_NC6s_v3")
    assert fc.worst_cost_usd == pytest.approx(6 * 10 / 60 * price)
    facts = pricing.backend_facts("azure")
    assert fc.worst_wall_s == pytest.approx(3 * (600 + facts["startup_s_per_trial"]))
    text = " ".join(fc.basis)
    assert "per-trial runtime cap" in text and "budget.max_cost_usd" in text


def test_bigger_model_forecasts_longer() -> None:
    small = make_spec()
    data = small.to_dict()
    data["space"].append({"name": "filters", "type": "fixed", "value": 128})
    big = StudySpec.from_dict(data)
    a = forecasting.estimate_trial_time("sagemaker", small, {})
    b = forecasting.estimate_trial_time("sagemaker", big, {})
    assert a is not None and b is not None and b.expected_s > a.expected_s


def add_run(
    store: Any,
    spec: StudySpec,
    backend: str,
    trials: list[tuple[float, float]],
    monkeypatch: pytest.MonkeyPatch,
    *,
    instance: str | None = None,
    startup: float = 12.0,
) -> int:
    """Store a finished run whose trials take (fixed seconds, seconds per epoch) each.

    Trials run one after another from ``startup`` seconds after the run starts; each epoch's
    timestamp is set as a worker would record it.
    """
    import core.store.store

    epochs = spec.budget.epochs
    rid = store.create_run(store.create_study(spec), backend, instance_type=instance, spec=spec)
    clock = 1000.0 + startup
    for i, (fixed, gap) in enumerate(trials):
        duration = fixed + epochs * gap
        tid = store.upsert_trial(
            rid,
            f"t{i}",
            status="completed",
            objective=0.9,
            duration_s=duration,
            params={"batch_size": 64},
            started_at=clock,
            ended_at=clock + duration,
        )
        for e in range(epochs):
            at = clock + fixed + (e + 1) * gap
            monkeypatch.setattr(core.store.store.time, "time", lambda at=at: at)
            store.add_epoch(tid, EpochRecord(e, {"val_accuracy": 0.9}))
        monkeypatch.undo()
        clock += duration
    store.update_run(rid, status="completed", started_at=1000.0, ended_at=clock)
    return rid


def test_local_forecast_from_history(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec(max_trials=4, parallel_trials=1, epochs=2)
    trials = [(6.0, 1.0), (7.0, 1.5), (5.0, 1.2), (6.5, 0.9), (8.0, 1.1), (6.0, 1.3)]
    add_run(store, spec, "local", trials, monkeypatch, startup=12.0)
    fc = forecasting.forecast("local", spec, {}, store, calibrate=False)
    median_trial = statistics.median(f + 2 * g for f, g in trials)
    assert fc.expected_wall_s == pytest.approx(12.0 + 4 * median_trial)
    assert "from 6 earlier trials on digits on this machine with 1 at once" in fc.basis[0]
    assert "Local start-up" in fc.basis[1] and "median of 1 earlier run" in fc.basis[1]
    assert fc.expected_cost_usd == 0.0
    pricing.set_local_rate(store, 3.6)  # $0.001 a second
    fc = forecasting.forecast("local", spec, {}, store, calibrate=False)
    assert fc.expected_cost_usd == pytest.approx(fc.expected_wall_s * 0.001)


def test_local_history_separates_fixed_cost_from_epochs(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_run(store, make_spec(epochs=2), "local", [(6.0, 2.0)] * 3, monkeypatch)
    other = StudySpec.from_dict({**make_spec().to_dict(), "dataset": {"name": "mnist"}})
    add_run(store, other, "local", [(60.0, 200.0)] * 2, monkeypatch)
    tt = forecasting.estimate_trial_time("local", make_spec(epochs=4), {}, store, calibrate=False)
    assert tt is not None and tt.source == "history"
    assert tt.expected_s == pytest.approx(6.0 + 4 * 2.0)  # not (6 + 2 x 2) x 4 / 2


def test_local_history_at_other_parallelism_is_scaled(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_run(store, make_spec(epochs=2), "local", [(6.0, 2.0)] * 3, monkeypatch, startup=10.0)
    tt = forecasting.estimate_trial_time(
        "local", make_spec(epochs=2, parallel_trials=4), {}, store, calibrate=False
    )
    factor = forecasting.local_contention(4) / forecasting.local_contention(1)
    assert tt is not None and tt.expected_s == pytest.approx(10.0 * factor)
    assert tt.run_overhead_s == pytest.approx(10.0 * factor)
    assert "scaled to 4 at once" in tt.sentence


def test_cloud_history_on_another_machine_is_scaled_by_the_speed_table(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec(max_trials=2, epochs=2)
    billed_startup = pricing.backend_facts("sagemaker")["billed_startup_s_per_trial"]
    trials = [(billed_startup + 20.0, 40.0)] * 5  # 100 s + billed start-up each
    add_run(store, spec, "sagemaker", trials, monkeypatch, instance="ml.m5.xlarge")
    same = forecasting.estimate_trial_time(
        "sagemaker", spec, {"instance_type": "ml.m5.xlarge"}, store
    )
    assert same is not None and same.source == "history"
    assert same.expected_s == pytest.approx(100.0)  # billed start-up is added back later
    other = forecasting.estimate_trial_time(
        "sagemaker", spec, {"instance_type": "ml.c5.2xlarge"}, store
    )
    ratio = forecasting.speed_factor("ml.c5.2xlarge") / forecasting.speed_factor("ml.m5.xlarge")
    assert other is not None and other.source == "history-scaled"
    assert other.expected_s == pytest.approx(100.0 * ratio)
    assert "scaled to ml.c5.2xlarge by the relative-speed table" in other.sentence


def test_local_forecast_uses_a_stored_calibration(store: Any) -> None:
    spec = make_spec(max_trials=3, epochs=2)
    store_calibration(store, spec, per_epoch_s=2.0, overhead_s=1.0, per_step_s=0.05, steps=5)
    tt = forecasting.estimate_trial_time("local", spec, {}, store, calibrate=False)
    assert tt is not None and tt.source == "calibration"
    examples = forecasting.train_examples("digits", None, 0.2)
    compute = 0.05 * 1437 / 64 * examples / 1437
    fixed_epoch = 2.0 - 0.05 * 1437 / 64
    slower = forecasting.local_contention(1)
    assert tt.expected_s == pytest.approx((1.0 + 2 * (fixed_epoch + compute)) * slower)
    assert "calibration" in tt.sentence


@pytest.mark.slow
def test_local_calibration_runs_once_and_is_cached(store: Any) -> None:
    spec = StudySpec.from_dict(
        {
            "name": "cal",
            "dataset": {"name": "digits", "subset": 256},
            "space": [{"name": "batch_size", "type": "fixed", "value": 32}],
        }
    )
    cal = forecasting.cached_calibration(spec, store, steps=2)
    assert cal is not None and cal.per_epoch_s > 0 and cal.per_step_s > 0
    assert cal.examples == 256 and cal.batch_size == 32 and cal.steps == 2
    assert store.get_setting("calibration.digits.256")["per_epoch_s"] == cal.per_epoch_s
    again = forecasting.cached_calibration(spec, store, run=False)
    assert again == cal


def test_representative_params_and_work_units() -> None:
    spec = make_spec()
    params = forecasting.representative_params(spec)
    assert params["batch_size"] == 64 and params["learning_rate"] == pytest.approx(0.0505)
    # one block of 4 filters, kernel 3, on 4x4x1, pooled to 2x2, then dense 8 -> 10 classes
    tiny = {"conv_blocks": 1, "filters": 4, "kernel_size": 3, "dense_units": 8}
    assert forecasting.work_units(tiny, (4, 4, 1)) == 4 * 4 * 9 * 1 * 4 + 2 * 2 * 4 * 8 + 8 * 10
    assert forecasting.work_units({"filters": "64.0"}, (8, 8, 1)) > forecasting.work_units(
        {}, (8, 8, 1)
    )


def test_range_widens_to_cover_earlier_forecast_errors(store: Any) -> None:
    spec = make_spec()
    for err in (-0.5, -0.5, -0.5, 1.0, 1.0, 1.0):
        rid = store.create_run(store.create_study(spec), "sagemaker", spec=spec)
        store.update_run(rid, forecast={"error": {"wall_rel_error": err}})
    plain = forecasting.forecast("sagemaker", spec, {})
    fc = forecasting.forecast("sagemaker", spec, {}, store)
    assert fc.expected_wall_s == pytest.approx(plain.expected_wall_s)
    # actual = expected / (1 + error): errors of +100% and -50% mean x0.5 to x2
    assert fc.low_wall_s == pytest.approx(plain.expected_wall_s * 0.5)
    assert fc.high_wall_s == pytest.approx(plain.expected_wall_s * 2)
    assert fc.high_cost_usd == pytest.approx(plain.expected_cost_usd * 2)
    assert any("last 6 forecasts on this platform" in b for b in fc.basis)
    assert not any("forecasts on this platform" in b for b in plain.basis)
