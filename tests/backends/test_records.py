"""The one trial record and its typed writers, the trainer's reporting, and run wall time."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from core.backends.records import (
    EpochRecord,
    TrialRecord,
    best_value,
    trial_seed,
    with_best_objective,
)
from core.store import SCHEMA_VERSION, Store
from core.training import train


def _run(store: Store) -> int:
    sid = store.create_study({"name": "s", "space": []})
    return store.create_run(sid, "local")


def test_a_field_a_trial_does_not_have_is_a_type_error_not_sql(store: Store) -> None:
    rid = _run(store)
    with pytest.raises(TypeError, match="no field objectve"):
        store.upsert_trial(rid, "0", objectve=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown trial status"):
        store.upsert_trial(rid, "0", status="done")  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="no field colour"):
        store.update_run(rid, colour="red")  # type: ignore[call-arg]
    assert store.list_trials(rid) == []


def test_write_trial_writes_the_record_and_its_epochs_at_once(store: Store) -> None:
    rid = _run(store)
    record = TrialRecord(
        "t1",
        number=3,
        params={"learning_rate": 0.01},
        status="completed",
        objective=0.8,
        duration_s=12.0,
        billable_s=10.0,
        cost_usd=0.5,
        seed=45,
        epochs=(EpochRecord(1, {"val_accuracy": 0.5}, 4.0), EpochRecord(2, {"val_accuracy": 0.8})),
    )
    tid = store.write_trial(rid, record)
    (row,) = store.list_trials(rid)
    assert (row.id, row.number, row.seed, row.objective, row.billable_s) == (tid, 3, 45, 0.8, 10.0)
    assert [e["val_accuracy"] for e in store.list_epochs(tid)] == [0.5, 0.8]
    assert store.epoch_counts(rid) == {tid: 2}
    # written again (a re-poll): the same row, epochs replaced, not doubled
    assert store.write_trial(rid, record) == tid
    assert len(store.list_epochs(tid)) == 2


def test_the_objective_is_the_best_epoch_by_the_goal() -> None:
    epochs = tuple(EpochRecord(i + 1, {"val_loss": v}) for i, v in enumerate([0.9, 0.4, 0.6]))
    last = TrialRecord("k", status="completed", objective=0.6, epochs=epochs)
    assert with_best_objective(last, "val_loss", "min").objective == 0.4
    assert with_best_objective(last, "val_loss", "max").objective == 0.9
    bare = TrialRecord("k", status="completed", objective=0.7)  # a CSV row: nothing to pick
    assert with_best_objective(bare, "val_accuracy", "max").objective == 0.7
    assert best_value([float("nan"), None, 0.2], "max") == 0.2
    assert trial_seed(42, 6) == 48 and trial_seed(42, None) is None


def test_the_trainer_prints_and_logs_the_running_best() -> None:
    lines: list[str] = []
    logged: list[tuple[int, dict[str, float]]] = []
    report = train.EpochReport(
        [lambda e, m: logged.append((e, dict(m)))], "val_accuracy", "max", out=lines.append
    )
    for epoch, acc in enumerate([0.5, 0.8, 0.6], start=1):
        report.end_epoch(epoch, {"val_accuracy": acc, "val_loss": 1 - acc}, 1.0)
    best_lines = [line for text in lines for line in text.splitlines() if "_best" in line]
    assert best_lines == [
        "val_accuracy_best: 0.5000",
        "val_accuracy_best: 0.8000",
        "val_accuracy_best: 0.8000",
    ]
    assert [m["val_accuracy_best"] for _, m in logged] == [0.5, 0.8, 0.8]
    loss = train.EpochReport([], "val_loss", "min", out=lines.append)
    for epoch, value in enumerate([0.9, 0.4, 0.6], start=1):
        loss.end_epoch(epoch, {"val_loss": value}, 1.0)
    assert loss.best == 0.4
    summary = train.summarise(loss.rows, 3.0, "val_loss", "min")
    assert summary["best"] == 0.4 and summary["best_epoch"] == 2


@pytest.mark.parametrize(
    ("env", "index"),
    [
        ({"TRAINING_JOB_NAME": "ct-study-7-abc-007-1a2b3c4d"}, 6),  # SageMaker
        ({"CLOUD_ML_TRIAL_ID": "7"}, 6),  # Vertex AI, from 1
        ({"AZUREML_RUN_ID": "cloudtune-study-7-0a1b2c3d_6"}, 6),  # Azure ML, from 0
        ({}, 0),
    ],
)
def test_the_trainer_finds_its_trial_index_as_the_service_numbers_it(env, index) -> None:
    config = train.parse_config(["--seed", "40"], env)
    assert config.trial == index and config.trial_seed == 40 + index
    assert train.parse_config(["--seed", "40", "--trial-index", "2"], env).trial_seed == 42


def test_wall_time_counts_only_the_time_a_run_was_running(store: Store) -> None:
    rid = _run(store)
    store.set_run_status(rid, "running", at=1000.0)
    store.set_run_status(rid, "cancelled", at=1100.0)
    store.set_run_status(rid, "queued", at=5000.0)  # resumed four thousand seconds later
    store.set_run_status(rid, "running", at=5010.0)
    store.set_run_status(rid, "completed", at=5060.0)
    run = store.get_run(rid)
    assert run.segments == ((1000.0, 1100.0), (5010.0, 5060.0))
    assert run.wall_s() == 150.0 and run.started_at == 1000.0 and run.ended_at == 5060.0
    assert run.active_s(1050.0) == 50.0 and run.active_s(5020.0) == 110.0
    # a running run counts up to now; until= asks about another moment
    rid2 = _run(store)
    store.set_run_status(rid2, "running")
    assert 0 <= store.get_run(rid2).wall_s() < 5
    assert store.get_run(rid2).active_s(time.time() + 60) >= 60


def test_a_version_2_database_gets_its_runs_spans(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # make it look like schema 2, with one finished run
        conn.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN segments_json"))
        conn.execute(
            sa.text(
                "INSERT INTO studies (id, name, spec_json, created_at) VALUES (1, 's', '{}', 0)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, study_id, backend, settings_json, status, created_at, "
                "started_at, ended_at) VALUES (1, 1, 'local', '{}', 'completed', 0, 10, 70)"
            )
        )
    engine.dispose()
    store = Store(url)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.get_run(1).uid  # and, at version 4, an identity
    run = store.get_run(1)
    assert run.segments == ((10.0, 70.0),) and run.wall_s() == 60.0
    with store.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT segments_json FROM runs")).scalar()
    assert json.loads(raw) == [[10.0, 70.0]]
