"""Price catalog, overrides, staleness, budget checks and live and final cost."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from core.costs import forecasting, pricing
from core.errors import CloudTuneError
from core.spec import Budget
from tests.prices import catalog_price, make_spec

REQUIRED = {
    "sagemaker": [
        "ml.m5.xlarge",
        "ml.m5.2xlarge",
        "ml.c5.2xlarge",
        "ml.g4dn.xlarge",
        "ml.g5.xlarge",
        "ml.p3.2xlarge",
    ],
    "vertex": ["n1-standard-4", "n1-standard-8", "g2-standard-4", "a2-highgpu-1g"],
    "azure": [
        "Standard_DS3_v2",
        "Standard_D4s_v3",
        "Standard_NC4as_T4_v3",
        "Standard_NC6s_v3",
        "Standard_NC24ads_A100_v4",
    ],
}


# ----------------------------------------------------------------------------- catalog


def test_catalog_has_every_required_machine_with_source_and_date() -> None:
    prices = pricing.load_catalog()
    for backend, machines in REQUIRED.items():
        assert set(machines) <= set(pricing.instance_types(backend)), backend
    assert set(pricing.accelerator_types("vertex")) == {"NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100"}
    for p in prices:
        assert p.usd_per_hour > 0 and p.source and p.url.startswith("https://")
        assert isinstance(p.as_of, date)
    speeds = pricing.catalog_data()["relative_speed"]
    for machines in REQUIRED.values():
        for m in machines:
            assert forecasting.speed_factor(m) is not None, m
    assert speeds["instances"][speeds["reference"]] == 1.0
    assert pricing.instance_types("local") == ["local"]


def test_vertex_n1_with_two_v100s_adds_both_accelerators() -> None:
    machine = catalog_price("vertex", "n1-standard-8")
    v100 = catalog_price("vertex", "*", "NVIDIA_TESLA_V100")
    price = pricing.hourly_price(
        "vertex", "n1-standard-8", accelerator_type="NVIDIA_TESLA_V100", accelerator_count=2
    )
    assert price == pytest.approx(machine + 2 * v100)
    assert pricing.hourly_price("vertex", "n1-standard-8") == pytest.approx(machine)
    q = pricing.quote(
        "vertex", "n1-standard-8", accelerator_type="NVIDIA_TESLA_V100", accelerator_count=2
    )
    assert "2 x NVIDIA_TESLA_V100" in q.sentence() and f"${machine + 2 * v100:.4g}/h" in (
        q.sentence()
    )


def test_unknown_machine_or_accelerator_has_no_price() -> None:
    assert pricing.hourly_price("sagemaker", "ml.nope.xlarge") is None
    assert (
        pricing.hourly_price(
            "vertex", "n1-standard-4", accelerator_type="TPU_V9", accelerator_count=1
        )
        is None
    )
    assert "add it in Settings" in pricing.quote("sagemaker", "ml.nope.xlarge").sentence()


def test_region_falls_back_to_the_backends_default_region() -> None:
    home = pricing.hourly_price("sagemaker", "ml.m5.xlarge")
    away = pricing.quote("sagemaker", "ml.m5.xlarge", region="eu-west-1")
    assert away.usd_per_hour == home == catalog_price("sagemaker", "ml.m5.xlarge")
    assert "no eu-west-1 price" in away.sentence() and "us-east-1" in away.sentence()
    assert not pricing.quote("sagemaker", "ml.m5.xlarge").notes


def test_trial_cost() -> None:
    assert pricing.trial_cost(1800, 0.5) == pytest.approx(0.25)
    assert pricing.trial_cost(1800, None) is None
    assert pricing.trial_cost(-5, 1.0) == 0.0


# ----------------------------------------------------------------------------- overrides


def test_overrides_in_the_store_win_and_can_be_removed(store: Any) -> None:
    base = pricing.hourly_price("azure", "Standard_D4s_v3")
    pricing.set_price_override(store, "azure", "Standard_D4s_v3", 0.5)
    assert pricing.hourly_price("azure", "Standard_D4s_v3", store=store) == 0.5
    assert pricing.hourly_price("azure", "Standard_D4s_v3") == base  # no store: catalog
    assert store.get_setting("price.azure.eastus.Standard_D4s_v3")["usd_per_hour"] == 0.5
    frame = pricing.catalog_frame(store)
    row = frame[frame.instance_type == "Standard_D4s_v3"].iloc[0]
    assert bool(row.overridden) and row.source == "set in Settings" and row.age_days == 0
    assert len(frame[frame.instance_type == "Standard_D4s_v3"]) == 1
    pricing.set_price_override(store, "azure", "Standard_D4s_v3", None)
    assert pricing.hourly_price("azure", "Standard_D4s_v3", store=store) == base


def test_region_and_accelerator_overrides(store: Any) -> None:
    pricing.set_price_override(store, "sagemaker", "ml.m5.xlarge", 0.3, region="eu-west-1")
    assert pricing.hourly_price("sagemaker", "ml.m5.xlarge", region="eu-west-1", store=store) == 0.3
    assert pricing.hourly_price("sagemaker", "ml.m5.xlarge", store=store) == catalog_price(
        "sagemaker", "ml.m5.xlarge"
    )
    pricing.set_price_override(store, "vertex", "", 1.0, accelerator="NVIDIA_TESLA_T4")
    assert store.get_setting("price.vertex.us-central1.*.NVIDIA_TESLA_T4") is not None
    price = pricing.hourly_price(
        "vertex",
        "n1-standard-4",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=2,
        store=store,
    )
    assert price == pytest.approx(catalog_price("vertex", "n1-standard-4") + 2.0)
    # a machine the catalog lacks can be priced in Settings
    pricing.set_price_override(store, "sagemaker", "ml.m5.4xlarge", 0.922)
    assert "ml.m5.4xlarge" in pricing.instance_types("sagemaker", store=store)


@pytest.mark.parametrize("bad", [-1, float("nan"), "cheap"])
def test_bad_override_is_refused_with_a_sentence(store: Any, bad: Any) -> None:
    with pytest.raises(CloudTuneError, match="dollars per hour"):
        pricing.set_price_override(store, "azure", "Standard_D4s_v3", bad)


def test_local_rate_defaults_to_zero_and_is_set_in_the_store(store: Any) -> None:
    assert pricing.hourly_price("local", "local", store=store) == 0.0
    assert pricing.hourly_price("local", "local") == 0.0
    pricing.set_local_rate(store, 0.12)
    assert store.get_setting("local.rate_per_hour") == 0.12
    assert pricing.hourly_price("local", "local", store=store) == 0.12
    frame = pricing.catalog_frame(store)
    assert frame[frame.backend == "local"].iloc[0].usd_per_hour == 0.12


# ----------------------------------------------------------------------------- staleness


def test_stale_after_six_months() -> None:
    p = pricing.Price("azure", "x", "eastus", 1.0, "s", date(2026, 1, 1))
    assert p.age_days(date(2026, 3, 1)) == 59
    assert not p.stale(date(2026, 6, 30))
    assert p.stale(date(2026, 7, 5))


def test_catalog_frame_flags_stale_prices_and_warns(store: Any) -> None:
    as_of = min(p.as_of for p in pricing.load_catalog())
    fresh_day = as_of + timedelta(days=30)
    frame = pricing.catalog_frame(store, today=fresh_day)
    assert list(frame.columns)[:10] == [
        "backend",
        "instance_type",
        "accelerator",
        "region",
        "usd_per_hour",
        "source",
        "as_of",
        "age_days",
        "stale",
        "overridden",
    ]
    assert not frame.stale.any()
    assert pricing.stale_warning(store, today=fresh_day) is None
    late = as_of + timedelta(days=400)
    frame = pricing.catalog_frame(store, today=late)
    cloud = frame[frame.backend != "local"]
    assert cloud.stale.all() and (cloud.age_days == 400).all()
    warning = pricing.stale_warning(store, today=late)
    assert warning and "older than 6 months" in warning and "400 days" in warning
    q = pricing.quote("azure", "Standard_D4s_v3")
    assert "over 6 months" in q.sentence(today=late)
    assert "over 6 months" not in q.sentence(today=fresh_day)


# ----------------------------------------------------------------------------- caps


def test_next_trial_would_exceed_time_cap() -> None:
    b = Budget(max_trials=10, max_minutes=10)
    kw = {"spent_usd": 0.0, "parallel": 1, "price_per_hour": 1.0}
    assert pricing.next_trial_would_exceed(b, elapsed_s=400, mean_trial_s=100, **kw) is None
    msg = pricing.next_trial_would_exceed(b, elapsed_s=550, mean_trial_s=100, **kw)
    assert msg and msg.startswith("stopped: budget reached") and "max_minutes" in msg
    assert pricing.next_trial_would_exceed(Budget(), elapsed_s=1e9, mean_trial_s=1e9, **kw) is None


def test_next_trial_would_exceed_cost_cap_with_parallel_trials() -> None:
    b = Budget(max_trials=10, parallel_trials=3, max_cost_usd=1.0)
    # one trial costs $0.10; alone it fits, with two others half done it still fits ...
    kw = {"elapsed_s": 0.0, "mean_trial_s": 360.0, "price_per_hour": 1.0}
    assert pricing.next_trial_would_exceed(b, spent_usd=0.85, parallel=1, **kw) is None
    # ... but 0.85 + 0.10 x (1 + 2 x 0.5) = 1.05 breaks the cap
    msg = pricing.next_trial_would_exceed(b, spent_usd=0.85, parallel=3, **kw)
    assert msg and "max_cost_usd" in msg and "$1.05" in msg
    assert (
        pricing.next_trial_would_exceed(
            b, spent_usd=0.0, parallel=3, **{**kw, "price_per_hour": 0.0}
        )
        is None
    )


def test_next_trial_would_exceed_per_machine_billing() -> None:
    b = Budget(max_trials=10, parallel_trials=2, max_cost_usd=1.0)
    kw = {"mean_trial_s": 600.0, "parallel": 2, "price_per_hour": 3.6, "billing": "per_machine"}
    # the machine costs $0.001 a second: ends at 300 + 600 s = $0.90, fits; at 500 s, $1.10
    assert pricing.next_trial_would_exceed(b, elapsed_s=300, spent_usd=0.3, **kw) is None
    assert pricing.next_trial_would_exceed(b, elapsed_s=500, spent_usd=0.5, **kw)


# ----------------------------------------------------------------------------- actual cost


def test_live_cost_counts_finished_and_running_trials(store: Any) -> None:
    spec = make_spec()
    sid = store.create_study(spec)
    rid = store.create_run(sid, "sagemaker", instance_type="ml.m5.xlarge", spec=spec)
    store.upsert_trial(rid, "a", status="completed", billable_s=100.0, duration_s=150.0)
    store.upsert_trial(rid, "b", status="failed", duration_s=50.0)
    store.upsert_trial(rid, "c", status="running", started_at=1000.0)
    run, trials = store.get_run(rid), store.list_trials(rid)
    cost = pricing.live_cost(run, trials, 3.6, now=1030.0)
    assert cost == pytest.approx((100 + 50 + 30) * 0.001)


def test_live_cost_local_bills_the_machines_wall_time(store: Any) -> None:
    spec = make_spec()
    rid = store.create_run(store.create_study(spec), "local", spec=spec)
    store.update_run(rid, started_at=1000.0)
    store.upsert_trial(rid, "a", status="running", started_at=1000.0)
    store.upsert_trial(rid, "b", status="running", started_at=1000.0)
    cost = pricing.live_cost(store.get_run(rid), store.list_trials(rid), 3.6, now=1100.0)
    assert cost == pytest.approx(0.1)  # 100 s of one machine, not 2 x 100 s
    store.upsert_trial(rid, "a", cost_usd=0.25)
    assert pricing.live_cost(store.get_run(rid), store.list_trials(rid), None) == 0.25


def test_finalize_records_costs_and_the_forecast_error(store: Any) -> None:
    spec = make_spec(max_trials=2)
    sid = store.create_study(spec)
    forecast = {"expected_wall_s": 300.0, "low_wall_s": 100.0, "high_wall_s": 500.0}
    forecast |= {"expected_cost_usd": 0.2, "low_cost_usd": 0.15, "high_cost_usd": 0.3}
    rid = store.create_run(
        sid, "sagemaker", instance_type="ml.m5.xlarge", spec=spec, forecast=forecast
    )
    store.update_run(rid, started_at=1000.0, ended_at=1400.0)
    store.upsert_trial(rid, "a", status="completed", billable_s=180.0, started_at=1000.0)
    store.upsert_trial(rid, "b", status="completed", billable_s=180.0, started_at=1010.0)
    out = pricing.finalize_run_costs(store, rid, price_per_hour=1.0)
    assert [t.cost_usd for t in store.list_trials(rid)] == [pytest.approx(0.05)] * 2
    run = store.get_run(rid)
    assert run.cost_usd == pytest.approx(0.1) and out["wall_s"] == 400.0
    error = run.forecast["error"]
    assert error["wall_rel_error"] == pytest.approx((300 - 400) / 400)
    assert error["cost_rel_error"] == pytest.approx(1.0) and error["cost_in_range"] is False
    assert error["wall_in_range"] is True


def test_forecast_error_without_an_actual_cost() -> None:
    err = pricing.forecast_error({"expected_wall_s": 90.0, "expected_cost_usd": 0.0}, 100.0, 0.0)
    assert err["wall_rel_error"] == pytest.approx(-0.1) and err["cost_rel_error"] is None
    assert err["wall_in_range"] is None
