"""Diverged trials: a derived flag in the trials table, its CSV export and the statistics."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from core.analysis.stats import compare
from core.backends.local.hypermodel import divergence
from core.spec import StudySpec, parse_spec
from core.store import Store


def _run(store: Store, spec: StudySpec, backend: str = "local") -> int:
    return store.create_run(store.create_study(spec), backend, spec=spec.to_dict())


def _trial(store: Store, run_id: int, key: str, **fields: Any) -> None:
    store.upsert_trial(run_id, key, **{"status": "completed", **fields})


def test_the_flag_marks_lost_losses_and_chance_accuracy(store: Store, published_spec) -> None:
    rid = _run(store, published_spec)
    nan = divergence([float("nan")], {"learning_rate": 0.1}, 0, 10)
    blown = divergence([1.0, 99.0], {"learning_rate": 0.1}, 0, 10)
    assert nan and blown
    _trial(store, rid, "good", objective=0.91, metrics={"val_accuracy": 0.91})
    _trial(store, rid, "chance", objective=0.115, metrics={"val_accuracy": 0.115})
    _trial(store, rid, "just-above", objective=0.125, metrics={"val_accuracy": 0.125})
    _trial(store, rid, "nan", status="failed", error=nan)
    _trial(store, rid, "blown", status="failed", error=blown)
    _trial(store, rid, "other-failure", status="failed", error="The trial ran out of memory.")
    _trial(store, rid, "running", status="running")
    frame = store.trials_frame(run_ids=[rid]).set_index("trial_key")
    assert frame["diverged"].dtype == bool
    assert frame["diverged"].to_dict() == {
        "good": False,
        "chance": True,  # 0.115 <= 0.1 + 0.02
        "just-above": False,
        "nan": True,
        "blown": True,
        "other-failure": False,
        "running": False,
    }
    assert frame.loc["chance", "status"] == "completed"  # a flag, not a status


def test_accuracy_comes_from_the_metrics_when_the_objective_is_a_loss(store: Store) -> None:
    data = StudySpec.load("assets/specs/published_study.json").to_dict()
    data["objective"] = {"metric": "val_loss", "goal": "min"}
    rid = _run(store, parse_spec(data))
    _trial(store, rid, "a", objective=0.105, metrics={"val_accuracy": 0.5})  # a loss of 0.105
    _trial(store, rid, "b", objective=2.3, metrics={"val_accuracy": 0.1})
    flags = store.trials_frame(run_ids=[rid]).set_index("trial_key")["diverged"]
    assert flags.to_dict() == {"a": False, "b": True}


def test_custom_data_with_unknown_classes_flags_only_the_loss(store: Store) -> None:
    data = StudySpec.load("assets/specs/published_study.json").to_dict()
    data["dataset"] = {"name": "custom", "path": "/nowhere.npz"}
    rid = _run(store, parse_spec(data))
    _trial(store, rid, "a", objective=0.05)
    _trial(store, rid, "b", status="failed", error=divergence([float("inf")], {}, 0, 3))
    flags = store.trials_frame(run_ids=[rid]).set_index("trial_key")["diverged"]
    assert flags.to_dict() == {"a": False, "b": True}


def test_the_csv_export_carries_the_flag(store: Store, published_spec, capsys) -> None:
    from core.cli import main

    rid = _run(store, published_spec)
    _trial(store, rid, "x", objective=0.1)
    _trial(store, rid, "y", objective=0.9)
    assert main(["trials", str(rid), "--format", "csv"]) == 0
    exported = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert exported["diverged"].tolist() == [True, False]


def test_the_statistics_say_how_many_diverged_per_group(store: Store, published_spec) -> None:
    local, aws = _run(store, published_spec), _run(store, published_spec, "sagemaker")
    for i, acc in enumerate([0.1, 0.11, 0.9, 0.92, 0.95, 0.93]):
        _trial(store, local, f"l{i}", objective=acc, duration_s=10.0 + i)
    for i, acc in enumerate([0.9, 0.91, 0.92]):
        _trial(store, aws, f"s{i}", objective=acc, duration_s=20.0 + i)
    frame = store.trials_frame(run_ids=[local, aws])
    result = compare(frame, ["objective"], group="backend")
    diverged = [w for w in result.warnings if "diverged" in w]
    assert diverged == [
        "2 of 6 Local trials diverged (loss not finite or accuracy at chance); they count in "
        "the statistics as real outcomes."
    ]
    # they stay in: the local group's n is every trial
    desc = result.metrics["objective"].descriptives.set_index("group")
    assert int(desc.loc["local", "n"]) == 6
