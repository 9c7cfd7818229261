"""A realistic, deterministic three-platform study written into a store, for tests and demos."""

from __future__ import annotations

import math
import random
from typing import Any

from core.backends.records import EpochRecord
from core.spec import parse_spec
from core.store import Store

BASE_TIME = 1_714_554_000.0  # 2024-05-01 09:00 UTC: fixed so seeded studies are reproducible

SEED_SPEC: dict[str, Any] = {
    "name": "seeded-study",
    "dataset": {"name": "digits", "validation_split": 0.2},
    "space": [
        {"name": "learning_rate", "type": "float", "min": 0.001, "max": 0.1, "scale": "linear"},
        {"name": "batch_size", "type": "choice", "values": [32, 64, 128]},
        {"name": "dropout_rate", "type": "float", "min": 0.2, "max": 0.4, "scale": "linear"},
    ],
    "strategy": "bayesian",
    "objective": {"metric": "val_accuracy", "goal": "max"},
    "budget": {"max_trials": 20, "parallel_trials": 3, "epochs": 3},
    "seed": 42,
}
"""The published study's search space and budget, under a name of its own."""

PLATFORMS: dict[str, dict[str, Any]] = {
    "sagemaker": {"instance": "ml.g4dn.xlarge", "price": 0.736, "mean_s": 2060.0, "acc": 0.0},
    "vertex": {"instance": "n1-standard-4+T4", "price": 0.54, "mean_s": 1800.0, "acc": -0.002},
    "azure": {"instance": "Standard_NC4as_T4_v3", "price": 0.526, "mean_s": 2160.0, "acc": -0.001},
}
"""Per platform: the instance type, its hourly price, the mean trial time and an accuracy offset."""

STARTUP_S = 90.0  # billed container start-up per trial


def _seeded_run(store: Store, study_id: int, backend: str, trials: int, **extra: Any) -> int:
    """A queued run of ``backend`` on its seeded machine, for ``trials`` trials."""
    info = PLATFORMS.get(backend, LOCAL)
    return store.create_run(
        study_id,
        backend,
        instance_type=info["instance"],
        settings={"region": "seeded"},
        max_trials=trials,
        **extra,
    )


def _accuracy(params: dict[str, Any], offset: float, rng: random.Random) -> float:
    """A plausible validation accuracy: best near lr 0.01 and dropout 0.3, plus noise."""
    lr_penalty = 0.02 * abs(math.log10(params["learning_rate"] / 0.01))
    drop_penalty = 0.05 * abs(params["dropout_rate"] - 0.3)
    value = 0.915 + offset - lr_penalty - drop_penalty + rng.gauss(0.0, 0.004)
    return round(min(0.995, max(0.5, value)), 4)


def _seed_run(
    store: Store, study_id: int, backend: str, n_trials: int, rng: random.Random, spec: Any
) -> None:
    """Write one completed run of ``n_trials`` trials, three at a time, with epochs."""
    info = PLATFORMS[backend]
    names = [p.name for p in spec.space]
    params_list = [
        {k: round(v, 5) if isinstance(v, float) else v for k, v in c.items() if k in names}
        for c in spec.sample(n_trials, seed=rng.randrange(2**31))
    ]
    slots = [BASE_TIME] * spec.budget.parallel_trials
    forecast = {
        "backend": backend,
        "instance_type": info["instance"],
        "expected_wall_s": info["mean_s"] * math.ceil(n_trials / len(slots)) * 1.05,
        "low_wall_s": info["mean_s"] * math.ceil(n_trials / len(slots)) * 0.8,
        "high_wall_s": info["mean_s"] * math.ceil(n_trials / len(slots)) * 1.3,
        "expected_cost_usd": round(
            n_trials * (info["mean_s"] + STARTUP_S) / 3600 * info["price"], 2
        ),
        "low_cost_usd": None,
        "high_cost_usd": None,
        "worst_wall_s": None,
        "worst_cost_usd": None,
        "price_per_hour": info["price"],
        "basis": [f"{info['instance']} at ${info['price']}/h (seeded catalog)."],
    }
    run_id = _seeded_run(store, study_id, backend, n_trials, forecast=forecast)
    total_cost = 0.0
    for number, params in enumerate(params_list):
        slot = min(range(len(slots)), key=lambda i: slots[i])
        started = slots[slot]
        duration = round(max(600.0, rng.gauss(info["mean_s"], 380.0)), 1)
        billable = duration + STARTUP_S
        cost = round(billable / 3600 * info["price"], 4)
        total_cost += cost
        ended = started + billable
        slots[slot] = ended
        acc = _accuracy(params, info["acc"], rng)
        metrics = {"val_accuracy": acc, "accuracy": round(min(0.999, acc + 0.02), 4)}
        trial_id = store.upsert_trial(
            run_id,
            f"{backend}-{number:03d}",
            number=number,
            params=params,
            status="completed",
            objective=acc,
            metrics=metrics,
            started_at=started,
            ended_at=ended,
            duration_s=duration,
            billable_s=billable,
            cost_usd=cost,
            seed=spec.seed,
            instance_type=info["instance"],
        )
        for epoch in range(spec.budget.epochs):
            share = (epoch + 1) / spec.budget.epochs
            metrics = {
                "val_accuracy": round(acc - 0.08 * (1 - share), 4),
                "loss": round(1.2 - share, 4),
            }
            store.add_epoch(trial_id, EpochRecord(epoch, metrics, round(duration * share, 1)))
    store.update_run(
        run_id,
        status="completed",
        started_at=BASE_TIME,
        ended_at=max(slots),
        cost_usd=round(total_cost, 2),
    )


def seed_store(store: Store, *, seed: int = 7, n_trials: int = 20, name: str | None = None) -> int:
    """Fill ``store`` with a three-platform study (SageMaker, Vertex AI, Azure ML).

    Each platform gets one completed run of ``n_trials`` completed trials with parameters,
    objective (val_accuracy), duration, billable time, cost, start and end times, three epochs
    each and a stored forecast. The same ``seed`` always writes the same numbers.

    Args:
        store: the store to write into.
        seed: seed of the random numbers (durations, accuracies).
        n_trials: completed trials per platform.
        name: the study's name (default "seeded-study").

    Returns:
        The new study's id.
    """
    data = dict(SEED_SPEC, name=name or SEED_SPEC["name"])
    data["budget"] = dict(SEED_SPEC["budget"], max_trials=n_trials)
    spec = parse_spec(data)
    study_id = store.create_study(spec)
    rng = random.Random(seed)
    for backend in PLATFORMS:
        _seed_run(store, study_id, backend, n_trials, rng, spec)
    return study_id


MIXED_RUNS: tuple[tuple[str, str], ...] = (
    ("sagemaker", "random"),
    ("sagemaker", "bayesian"),
    ("vertex", "random"),
    ("vertex", "bayesian"),
    ("azure", "random"),
    ("azure", "bayesian"),
    ("local", "random"),
    ("local", "hyperband"),
    ("local", "bayesian"),
    ("sagemaker", "hyperband"),
)
"""The platform and strategy of each run :func:`seed_mixed_study` writes, in order."""

LOCAL = {"instance": "local", "price": 0.0, "mean_s": 95.0, "acc": -0.004}
"""The local machine as :data:`PLATFORMS` describes a cloud: no hourly price by default."""


def _mixed_trial(
    store: Store,
    run_id: int,
    number: int,
    params: dict[str, Any],
    *,
    backend: str,
    strategy: str,
    started: float,
    epochs: int,
    rng: random.Random,
) -> float:
    """Write one trial of a mixed run with its epochs; return when it ended."""
    info = PLATFORMS.get(backend, LOCAL)
    full = rng.choice([1, 2, epochs, epochs]) if strategy == "hyperband" else epochs
    acc = _accuracy(params, info["acc"], rng)
    diverged = params["learning_rate"] > 0.07 and rng.random() < 0.3
    if diverged:
        acc = round(0.1 + rng.uniform(-0.01, 0.012), 4)
    stopped = strategy == "bayesian" and backend == "local" and diverged and full > 2
    ran = 2 if stopped else full
    per_epoch = max(20.0, rng.gauss(info["mean_s"], info["mean_s"] * 0.18)) / epochs
    duration = round(per_epoch * ran, 1)
    billable = duration + (0.0 if backend == "local" else STARTUP_S)
    failed = rng.random() < 0.02
    metrics: dict[str, Any] = {"val_accuracy": acc, "accuracy": round(min(0.999, acc + 0.02), 4)}
    if stopped:
        metrics["early_stopped"] = 1.0
    trial_id = store.upsert_trial(
        run_id,
        f"{backend}-{strategy}-{number:04d}",
        number=number,
        params=params,
        status="failed" if failed else "completed",
        objective=None if failed else acc,
        metrics={} if failed else metrics,
        started_at=started,
        ended_at=started + billable,
        duration_s=duration,
        billable_s=billable,
        cost_usd=round(billable / 3600 * info["price"], 4),
        seed=42,
        instance_type=info["instance"],
        error="ResourceExhaustedError: out of memory on the device" if failed else None,
    )
    for epoch in range(1 if failed else ran):
        share = (epoch + 1) / ran
        curve = {"val_accuracy": round(acc - 0.08 * (1 - share), 4), "loss": round(1.2 - share, 4)}
        store.add_epoch(trial_id, EpochRecord(epoch, curve, round(per_epoch * (epoch + 1), 1)))
    return started + billable


def seed_mixed_study(
    store: Store, *, n_runs: int = 10, n_trials: int = 1000, seed: int = 11, name: str = "mixed"
) -> int:
    """Fill ``store`` with one study of ``n_runs`` runs and ``n_trials`` trials in all.

    The runs cycle through :data:`MIXED_RUNS` (SageMaker, Vertex AI, Azure ML and this machine;
    random, bayesian and hyperband), each with its own spec (its strategy; 5 epochs a trial,
    3 at a time). Hyperband trials train 1, 2 or 5 epochs; about 2 % of trials fail, some with
    a learning rate over 0.07 diverge (accuracy at chance) and the local bayesian run's diverged
    trials are early-stopped after 2 epochs. Every trial has its epochs. Each run is written in
    one transaction, so 1,000 trials take seconds. The same ``seed`` writes the same numbers.

    Returns:
        The study's id.
    """
    base = dict(SEED_SPEC, name=name)
    base["budget"] = dict(SEED_SPEC["budget"], epochs=5, max_trials=n_trials // n_runs)
    study_id = store.create_study(parse_spec(base))
    rng = random.Random(seed)
    for index in range(n_runs):
        backend, strategy = MIXED_RUNS[index % len(MIXED_RUNS)]
        count = n_trials // n_runs + (1 if index < n_trials % n_runs else 0)
        spec = parse_spec(
            dict(base, strategy=strategy, budget=dict(base["budget"], max_trials=count))
        )
        names = [p.name for p in spec.space]
        draws = spec.sample(count, seed=rng.randrange(2**31))
        slots = [BASE_TIME + 86_400.0 * index] * spec.budget.parallel_trials
        with store.transaction():
            run_id = _seeded_run(store, study_id, backend, count, spec=spec)
            for number, draw in enumerate(draws):
                params = {
                    k: round(v, 5) if isinstance(v, float) else v
                    for k, v in draw.items()
                    if k in names
                }
                slot = min(range(len(slots)), key=slots.__getitem__)
                slots[slot] = _mixed_trial(
                    store,
                    run_id,
                    number,
                    params,
                    backend=backend,
                    strategy=strategy,
                    started=slots[slot],
                    epochs=spec.budget.epochs,
                    rng=rng,
                )
        cost = sum(t.cost_usd or 0.0 for t in store.list_trials(run_id))
        store.update_run(
            run_id,
            status="completed",
            started_at=BASE_TIME + 86_400.0 * index,
            ended_at=max(slots),
            cost_usd=round(cost, 2),
        )
    return study_id
